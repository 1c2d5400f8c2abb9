#ifndef HERALD_WEBHOOK_HPP
#define HERALD_WEBHOOK_HPP

#include <herald/address_policy.hpp>
#include <herald/detail/webhook_checks.hpp>
#include <herald/error.hpp>
#include <herald/event.hpp>
#include <herald/header_rules.hpp>
#include <herald/signature.hpp>
#include <herald/time.hpp>
#include <herald/transport.hpp>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace herald {

using webhook_id = std::uint64_t;

/** What a user sets on a webhook: the fields of the create and edit forms. */
struct webhook_params {
    std::string name{};
    std::string url{};
    event_type_set events{};
    bool active = true;
    std::optional<duration> connect_timeout{}; ///< overrides the transport's default
    std::optional<duration> timeout{};         ///< total per request; overrides the default
    /// Standard Webhooks secrets; each request is signed with every one (rotation).
    std::vector<secret> secrets{};
    /// Extra request headers (an API key, a tenant id); never herald's own headers.
    std::vector<http_header> headers{};
    std::optional<std::string> ca_file{}; ///< PEM bundle to trust instead of the system's
    bool verify_tls = true; ///< false: no certificate check, marked in every log entry
    /// Ranges this webhook may reach although they are not globally routable.
    std::vector<cidr> allow_private{};
    /// The payload format: the name of one of the dispatcher's serializers (`herald`,
    /// `datagerry`; see basic_dispatcher::formats). Empty: the dispatcher's first.
    std::string format{};
    /// When this webhook's attempts start (see retry_params::schedule): `[0]` the delay before
    /// the first, `[i]` after the i-th failure. Empty: the dispatcher's schedule.
    std::vector<duration> retry_schedule{};
};

/// At most this many entries in a webhook's retry_schedule, each at most max_retry_delay.
inline constexpr std::size_t max_retry_schedule = 32;
inline constexpr duration max_retry_delay = std::chrono::hours(24 * 30);
/// A format name: 1 to 32 of a-z, 0-9, '-', '_' and '.'.
inline constexpr std::size_t max_format_name = 32;

namespace detail {
inline std::optional<std::string> format_problem(std::string_view name) {
    if (name.size() > max_format_name)
        return "is longer than " + std::to_string(max_format_name) + " characters";
    for (char c : name)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'))
            return "'" + std::string(name) +
                   "' is not a format name (lower-case letters, digits, '-', '_' and '.')";
    return std::nullopt;
}
} // namespace detail

/** A registered webhook: its params plus what the store assigns. Immutable once stored. */
struct webhook : webhook_params {
    webhook_id id = 0;
    time_point created_at{};
    time_point updated_at{};
    /// Why herald switched it off (410 Gone, failing for too long); empty while it is active
    /// or was switched off by a user. Cleared when an update activates it again.
    std::string disabled_reason{};
    std::optional<time_point> disabled_at{};
};

/**
 * Checks a webhook's fields, everything but the uniqueness of the name (the store checks that).
 * The name: not only spaces (parse_webhook_params and the stores trim the ones around it), no
 * control or invisible characters, valid UTF-8. The URL: see detail::url_problem; a URL whose host
 * is an IP literal must pass `addresses` plus the webhook's allow_private; with `https_only`, the
 * URL must be https. No secret twice, no header name twice (case-insensitive).
 * @return the first problem found, naming the field.
 */
inline result<void> validate(webhook_params const& p, address_policy const& addresses = {},
                             bool https_only = false) {
    auto bad = [](char const* field, std::string why) {
        return make_problem(error::invalid_field, field, std::move(why));
    };
    if (auto why = detail::name_problem(p.name))
        return bad("name", std::move(*why));
    if (auto why = detail::url_problem(p.url, https_only, addresses.with(p.allow_private)))
        return bad("url", std::move(*why));
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
    for (std::size_t i = 0; i < p.secrets.size(); ++i)
        for (std::size_t j = 0; j < i; ++j)
            if (p.secrets[i].reveal() == p.secrets[j].reveal())
                return make_problem(error::invalid_field, "secrets[" + std::to_string(i) + "]",
                                    "duplicates secrets[" + std::to_string(j) + "]");
    if (p.headers.size() > 32)
        return bad("headers", "holds more than 32 headers");
    for (std::size_t i = 0; i < p.headers.size(); ++i) {
        auto const& name = p.headers[i].name;
        auto const field = name.empty() ? "headers[" + std::to_string(i) + "]" : "headers." + name;
        if (auto r = validate_header(p.headers[i], field); !r)
            return r;
        // One field per name on the wire (RFC 9110 5.3): X-A and x-a are one header.
        for (std::size_t j = 0; j < i; ++j)
            if (detail::iequals(name, p.headers[j].name))
                return make_problem(error::invalid_field, field,
                                    "duplicates " + p.headers[j].name +
                                        " (header names are case-insensitive)");
    }
    if (p.ca_file && p.ca_file->empty())
        return bad("ca_file", "is empty");
    if (p.ca_file && !detail::iequals(std::string_view(p.url).substr(0, 6), "https:"))
        return bad("ca_file", "applies to https URLs only");
    if (p.ca_file && !p.verify_tls)
        return bad("ca_file", "has no effect when verify_tls is false");
    if (auto why = detail::format_problem(p.format))
        return bad("format", std::move(*why));
    if (p.retry_schedule.size() > max_retry_schedule)
        return bad("retry_schedule",
                   "holds more than " + std::to_string(max_retry_schedule) + " delays");
    for (std::size_t i = 0; i < p.retry_schedule.size(); ++i)
        if (p.retry_schedule[i].count() < 0 || p.retry_schedule[i] > max_retry_delay)
            return make_problem(error::invalid_field, "retry_schedule[" + std::to_string(i) + "]",
                                p.retry_schedule[i].count() < 0 ? "is negative"
                                                                : "is longer than 30 days");
    return {};
}

/**
 * Reads webhook params from JSON: `{"name", "url", "events": ["create", ...], "active",
 * "connect_timeout": "5s", "timeout": "10s", "secrets": ["whsec_..."], "headers": {...},
 * "ca_file", "verify_tls", "allow_private": ["10.0.0.0/8"], "format": "datagerry",
 * "retry_schedule": ["0s", "1m", "1h"]}`. Unknown keys and wrong types are
 * errors naming the key (prefixed with `prefix`, e.g. `webhooks[2].`), and so is every rule of
 * validate() and an event type given twice. The name is trimmed. A key given twice cannot be
 * seen in a parsed value: read the text with detail::parse_json_strict.
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
            // a name is stored trimmed, so " a" and "a" are one name to the uniqueness check
            if (key == "name")
                p.name = detail::trim_name(val.get_string());
            else
                p.url = std::string(val.get_string());
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
                if (p.events.contains(*t))
                    return bad(field, "duplicates '" + std::string(to_string(*t)) + "'");
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
        } else if (key == "format") {
            if (!val.is_string())
                return bad(key, "must be a string (a format name such as \"datagerry\")");
            p.format = std::string(val.get_string());
        } else if (key == "retry_schedule") {
            auto r = detail::parse_each(
                val, prefix + key, "must be an array of durations such as [\"0s\", \"5m\"]",
                p.retry_schedule,
                [](std::string_view s, std::string field) { return parse_duration(s, field); });
            if (!r)
                return r.error();
            if (p.retry_schedule.empty())
                return bad(key, "must hold at least one delay (leave it out for the default)");
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
    o["url"] = mask_url(w.url); // query credentials masked
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
    if (!w.format.empty())
        o["format"] = w.format;
    if (!w.retry_schedule.empty()) {
        boost::json::array delays;
        for (auto const d : w.retry_schedule)
            delays.emplace_back(format_duration(d));
        o["retry_schedule"] = std::move(delays);
    }
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
