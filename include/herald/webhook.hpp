#ifndef HERALD_WEBHOOK_HPP
#define HERALD_WEBHOOK_HPP

#include <herald/address_policy.hpp>
#include <herald/error.hpp>
#include <herald/event.hpp>
#include <herald/signature.hpp>
#include <herald/time.hpp>
#include <herald/transport.hpp>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <boost/url/parse.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace herald {

using webhook_id = std::uint64_t;

/** What a user sets on a webhook: the fields of the create and edit forms. */
struct webhook_params {
    std::string name;
    std::string url;
    event_type_set events;
    bool active = true;
    std::optional<duration> connect_timeout; ///< overrides the transport's default
    std::optional<duration> timeout;         ///< total per request; overrides the default
    /// Standard Webhooks secrets; each request is signed with every one (rotation).
    std::vector<secret> secrets;
    /// Extra request headers (an API key, a tenant id); never herald's own headers.
    std::vector<http_header> headers;
    std::optional<std::string> ca_file; ///< PEM bundle to trust instead of the system's
    bool verify_tls = true;             ///< false: no certificate check, marked in every log entry
    /// Ranges this webhook may reach although they are not globally routable.
    std::vector<cidr> allow_private;
};

/** A registered webhook: its params plus what the store assigns. Immutable once stored. */
struct webhook : webhook_params {
    webhook_id id = 0;
    time_point created_at{};
    time_point updated_at{};
    /// Why herald switched it off (410 Gone, failing for too long); empty while it is active
    /// or was switched off by a user. Cleared when an update activates it again.
    std::string disabled_reason;
    std::optional<time_point> disabled_at;
};

inline constexpr std::size_t max_webhook_name = 128;
inline constexpr std::size_t max_webhook_url = 2048;

namespace detail {
inline bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size())
        return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        auto lower = [](char c) {
            return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c;
        };
        if (lower(a[i]) != lower(b[i]))
            return false;
    }
    return true;
}

// Reads a JSON array of strings, each through `parse` (which names `field[i]` in its problem).
template <class T, class Parse>
result<void> parse_each(boost::json::value const& val, std::string const& field,
                        char const* not_array, std::vector<T>& out, Parse parse) {
    auto const* arr = val.if_array();
    if (!arr)
        return make_problem(error::invalid_field, field, not_array);
    for (std::size_t i = 0; i < arr->size(); ++i) {
        auto item = field + "[" + std::to_string(i) + "]";
        if (!(*arr)[i].is_string())
            return make_problem(error::invalid_field, item, "must be a string");
        auto r = parse((*arr)[i].get_string(), std::move(item));
        if (!r)
            return r.error();
        out.push_back(std::move(*r));
    }
    return {};
}
} // namespace detail

/// Headers herald writes itself or that would break the message's framing.
inline bool is_reserved_header(std::string_view name) {
    auto starts = [&](std::string_view prefix) {
        return name.size() >= prefix.size() &&
               detail::iequals(name.substr(0, prefix.size()), prefix);
    };
    for (auto const* owned :
         {"host", "content-length", "content-type", "transfer-encoding", "connection", "keep-alive",
          "upgrade", "te", "trailer", "expect", "proxy-connection"})
        if (detail::iequals(name, owned))
            return true;
    return starts("webhook-") || starts("herald-");
}

/// Headers whose values are credentials: shown masked, like secrets.
inline bool is_sensitive_header(std::string_view name) {
    std::string lower(name);
    for (auto& c : lower)
        if (c >= 'A' && c <= 'Z')
            c = char(c - 'A' + 'a');
    for (auto const* word : {"authorization", "cookie", "token", "secret", "key", "password"})
        if (lower.find(word) != std::string::npos)
            return true;
    return false;
}

/** A credential shown without giving it away: its first four characters, then an ellipsis. */
inline std::string mask_header_value(std::string_view value) {
    return std::string(value.substr(0, 4)) + "…";
}

/**
 * Checks one custom header: a token name (RFC 9110), a value without CR, LF or other control
 * characters, and none of the headers herald owns.
 */
inline result<void> validate_header(http_header const& h, std::string const& field) {
    auto bad = [&](std::string why) {
        return make_problem(error::invalid_field, field, std::move(why));
    };
    if (h.name.empty())
        return bad("has an empty name");
    if (h.name.size() > 256)
        return bad("name is longer than 256 characters");
    for (unsigned char c : h.name) {
        bool const tchar =
            (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
            std::string_view("!#$%&'*+-.^_`|~").find(char(c)) != std::string_view::npos;
        if (!tchar)
            return bad("name '" + h.name + "' is not a valid header name");
    }
    if (is_reserved_header(h.name))
        return bad("'" + h.name + "' is set by herald and cannot be overridden");
    if (h.value.size() > 8192)
        return bad("value is longer than 8192 characters");
    for (unsigned char c : h.value)
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return bad(c == '\r' || c == '\n' ? "value contains CR or LF"
                                              : "value contains a control character");
    return {};
}

/**
 * Checks a webhook's fields, everything but the uniqueness of the name (the store checks that).
 * A URL whose host is an IP literal must pass `addresses` plus the webhook's allow_private;
 * with `https_only`, the URL must be https.
 * @return the first problem found, naming the field.
 */
inline result<void> validate(webhook_params const& p, address_policy const& addresses = {},
                             bool https_only = false) {
    auto bad = [](char const* field, std::string why) {
        return make_problem(error::invalid_field, field, std::move(why));
    };
    if (p.name.empty() || p.name.find_first_not_of(" \t") == std::string::npos)
        return bad("name", "is required");
    if (p.name.size() > max_webhook_name)
        return bad("name", "is longer than " + std::to_string(max_webhook_name) + " characters");
    for (unsigned char c : p.name)
        if (c < 0x20 || c == 0x7f)
            return bad("name", "contains a control character");
    if (p.url.empty())
        return bad("url", "is required");
    if (p.url.size() > max_webhook_url)
        return bad("url", "is longer than " + std::to_string(max_webhook_url) + " characters");
    auto const u = boost::urls::parse_uri(p.url);
    if (!u)
        return bad("url", "'" + p.url + "' is not an absolute URL (" + u.error().message() + ")");
    if (!detail::iequals(u->scheme(), "http") && !detail::iequals(u->scheme(), "https"))
        return bad("url", "scheme '" + std::string(u->scheme()) + "' is not http or https");
    if (https_only && !detail::iequals(u->scheme(), "https"))
        return bad("url", "must be https (plain http is refused here)");
    if (!u->has_authority() || u->encoded_host().empty())
        return bad("url", "has no host");
    if (u->has_userinfo())
        return bad("url", "must not contain user-info (credentials belong in headers)");
    if (u->has_fragment())
        return bad("url", "must not contain a fragment");
    if (u->has_port() && (u->port_number() == 0))
        return bad("url", "has an invalid port");
    if (u->host_type() == boost::urls::host_type::ipv4 ||
        u->host_type() == boost::urls::host_type::ipv6) {
        boost::system::error_code ec;
        auto const a = boost::asio::ip::make_address(u->host_address(), ec);
        if (!ec)
            if (auto why = addresses.with(p.allow_private).refusal(a))
                return bad("url", "refused: " + *why);
    }
    if (p.events.empty())
        return bad("events", "must name at least one event type (create, update, delete)");
    auto check_timeout = [&](std::optional<duration> const& d, char const* field) -> result<void> {
        if (d && (d->count() <= 0 || *d > std::chrono::minutes(10)))
            return bad(field, "must be between 1ms and 10m");
        return {};
    };
    if (auto r = check_timeout(p.connect_timeout, "connect_timeout"); !r)
        return r;
    if (auto r = check_timeout(p.timeout, "timeout"); !r)
        return r;
    if (p.secrets.size() > 8)
        return bad("secrets", "holds more than 8 secrets");
    if (p.headers.size() > 32)
        return bad("headers", "holds more than 32 headers");
    for (std::size_t i = 0; i < p.headers.size(); ++i) {
        auto const& name = p.headers[i].name;
        auto const field = name.empty() ? "headers[" + std::to_string(i) + "]" : "headers." + name;
        if (auto r = validate_header(p.headers[i], field); !r)
            return r;
    }
    if (p.ca_file && p.ca_file->empty())
        return bad("ca_file", "is empty");
    if (p.ca_file && !detail::iequals(u->scheme(), "https"))
        return bad("ca_file", "applies to https URLs only");
    if (p.ca_file && !p.verify_tls)
        return bad("ca_file", "has no effect when verify_tls is false");
    return {};
}

/**
 * Reads webhook params from JSON: `{"name", "url", "events": ["create", ...], "active",
 * "connect_timeout": "5s", "timeout": "10s", "secrets": ["whsec_..."], "headers": {...},
 * "ca_file", "verify_tls", "allow_private": ["10.0.0.0/8"]}`. Unknown keys and wrong types are
 * errors naming the key (prefixed with `prefix`, e.g. `webhooks[2].`), and so is every rule of
 * validate().
 */
inline result<webhook_params> parse_webhook_params(boost::json::value const& v,
                                                   std::string const& prefix = "",
                                                   address_policy const& addresses = {},
                                                   bool https_only = false) {
    auto bad = [&](std::string const& field, std::string why) {
        return make_problem(error::invalid_field, prefix + field, std::move(why));
    };
    auto const* o = v.if_object();
    if (!o) {
        // the element itself: "webhooks[2]", not "webhooks[2]."
        auto const self = prefix.empty() ? std::string("webhook")
                                         : prefix.substr(0, prefix.size() - (prefix.back() == '.'));
        return make_problem(error::invalid_field, self, "must be a JSON object");
    }
    webhook_params p;
    bool has_events = false;
    for (auto const& kv : *o) {
        std::string const key(kv.key());
        auto const& val = kv.value();
        if (key == "name" || key == "url") {
            if (!val.is_string())
                return bad(key, "must be a string");
            (key == "name" ? p.name : p.url) = std::string(val.get_string());
        } else if (key == "events") {
            auto const* arr = val.if_array();
            if (!arr)
                return bad(key, "must be an array of event types");
            has_events = true;
            for (std::size_t i = 0; i < arr->size(); ++i) {
                auto const field = key + "[" + std::to_string(i) + "]";
                if (!(*arr)[i].is_string())
                    return bad(field, "must be a string (create, update or delete)");
                auto t = parse_event_type((*arr)[i].get_string(), prefix + field);
                if (!t)
                    return t.error();
                p.events.insert(*t);
            }
        } else if (key == "active") {
            if (!val.is_bool())
                return bad(key, "must be true or false");
            p.active = val.get_bool();
        } else if (key == "secrets") {
            auto r = detail::parse_each(val, prefix + key, "must be an array of whsec_ secrets",
                                        p.secrets, [](std::string_view s, std::string field) {
                                            return secret::parse(s, std::move(field));
                                        });
            if (!r)
                return r.error();
        } else if (key == "headers") {
            auto const* obj = val.if_object();
            if (!obj)
                return bad(key, "must be an object of header names to string values");
            for (auto const& h : *obj) {
                if (!h.value().is_string())
                    return bad(key + "." + std::string(h.key()), "must be a string");
                p.headers.push_back(
                    http_header{std::string(h.key()), std::string(h.value().get_string())});
            }
        } else if (key == "ca_file") {
            if (!val.is_string())
                return bad(key, "must be a path");
            p.ca_file = std::string(val.get_string());
        } else if (key == "verify_tls") {
            if (!val.is_bool())
                return bad(key, "must be true or false");
            p.verify_tls = val.get_bool();
        } else if (key == "allow_private") {
            auto r = detail::parse_each(
                val, prefix + key, "must be an array of CIDR ranges such as \"10.0.0.0/8\"",
                p.allow_private,
                [](std::string_view s, std::string field) { return cidr::parse(s, field); });
            if (!r)
                return r.error();
        } else if (key == "connect_timeout" || key == "timeout") {
            if (!val.is_string())
                return bad(key, "must be a duration string such as \"5s\"");
            auto d = parse_duration(val.get_string(), prefix + key);
            if (!d)
                return d.error();
            (key == "timeout" ? p.timeout : p.connect_timeout) = *d;
        } else {
            // an empty key would leave the problem naming no field
            return bad(key.empty() ? "\"\"" : key, "is not a known field");
        }
    }
    if (!has_events)
        return bad("events", "is required (an array of create, update, delete)");
    if (auto r = validate(p, addresses, https_only); !r) {
        auto e = r.error();
        e.field = prefix + e.field;
        return e;
    }
    return p;
}

/// The webhook as JSON: the keys parse_webhook_params reads, plus id, times and the disable
/// reason. Secrets and credential headers are masked, so this output does not parse back.
inline boost::json::object to_json(webhook const& w) {
    boost::json::object o;
    o["id"] = w.id;
    o["name"] = w.name;
    o["url"] = w.url;
    boost::json::array events;
    for (auto t : {event_type::create, event_type::update, event_type::remove})
        if (w.events.contains(t))
            events.emplace_back(to_string(t));
    o["events"] = std::move(events);
    o["active"] = w.active;
    if (w.connect_timeout)
        o["connect_timeout"] = format_duration(*w.connect_timeout);
    if (w.timeout)
        o["timeout"] = format_duration(*w.timeout);
    boost::json::array secrets; // masked: a secret is shown once, when it is made
    for (auto const& s : w.secrets)
        secrets.emplace_back(s.to_string());
    o["secrets"] = std::move(secrets);
    boost::json::object headers; // credentials masked like secrets
    for (auto const& h : w.headers)
        headers[h.name] = is_sensitive_header(h.name) ? mask_header_value(h.value) : h.value;
    o["headers"] = std::move(headers);
    if (w.ca_file)
        o["ca_file"] = *w.ca_file;
    o["verify_tls"] = w.verify_tls;
    boost::json::array allow;
    for (auto const& c : w.allow_private)
        allow.emplace_back(c.to_string());
    o["allow_private"] = std::move(allow);
    if (!w.disabled_reason.empty()) {
        o["disabled_reason"] = w.disabled_reason;
        if (w.disabled_at)
            o["disabled_at"] = format_rfc3339(*w.disabled_at);
    }
    o["created_at"] = format_rfc3339(w.created_at);
    o["updated_at"] = format_rfc3339(w.updated_at);
    return o;
}

} // namespace herald

#endif
