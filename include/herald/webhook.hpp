#ifndef HERALD_WEBHOOK_HPP
#define HERALD_WEBHOOK_HPP

#include <herald/address_policy.hpp>
#include <herald/detail/host.hpp>
#include <herald/detail/utf8.hpp>
#include <herald/error.hpp>
#include <herald/event.hpp>
#include <herald/signature.hpp>
#include <herald/time.hpp>
#include <herald/transport.hpp>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <boost/url/parse.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>

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
    bool verify_tls = true;             ///< false: no certificate check, marked in every log entry
    /// Ranges this webhook may reach although they are not globally routable.
    std::vector<cidr> allow_private{};
};

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

namespace detail {
// A credential by its name: these words anywhere in it, case-insensitive ("X-Hub-Signature-256",
// "X-Session-Id", "api_key"). A false alarm only hides a value from view; a miss shows a secret.
inline bool is_credential_name(std::string_view name) {
    std::string lower(name);
    for (auto& c : lower)
        if (c >= 'A' && c <= 'Z')
            c = char(c - 'A' + 'a');
    for (auto const* word : {"auth", "cookie", "token", "secret", "key", "pass", "pwd", "sig",
                             "session", "credential", "jwt", "csrf"})
        if (lower.find(word) != std::string::npos)
            return true;
    return false;
}
} // namespace detail

/// Headers whose values are credentials: shown masked, like secrets. herald's own headers
/// (`webhook-signature` signs one message only) are shown as sent.
inline bool is_sensitive_header(std::string_view name) {
    return !is_reserved_header(name) && detail::is_credential_name(name);
}

/// Below this many characters a credential is shown as `…` alone.
inline constexpr std::size_t mask_shows_prefix_from = 16;

/**
 * A credential shown without giving it away. A value of fewer than 16 characters shows none
 * of them (`…`): four characters of `abcd` or `12345` are most or all of it. A longer one
 * shows its first four characters and `…`, enough to tell two apart (`Bear…`, `sk_l…`).
 */
inline std::string mask_header_value(std::string_view value) {
    if (value.size() < mask_shows_prefix_from)
        return "…";
    auto const head = value.substr(0, 4);
    for (unsigned char c : head)
        if (c >= 0x80) // a cut UTF-8 sequence would not be valid text
            return "…";
    return std::string(head) + "…";
}

/**
 * A URL as herald shows it (webhooks, log entries): the value of each query parameter whose
 * name looks like a credential (`token`, `key`, `api_key`, `secret`, `password`, `sig`,
 * `access_token`, `auth`, the words of is_sensitive_header) becomes `…`, and so does any
 * user-info. Requests still go to the URL as stored.
 */
inline std::string mask_url(std::string_view url) {
    std::string out;
    out.reserve(url.size());
    auto const hash = url.find('#');
    auto const body = url.substr(0, hash);
    auto const scheme_end = body.find("://");
    std::size_t pos = 0;
    if (scheme_end != std::string_view::npos) {
        auto const auth_begin = scheme_end + 3;
        auto const auth_end = std::min(body.find_first_of("/?", auth_begin), body.size());
        auto const at = body.substr(0, auth_end).rfind('@');
        out.append(body.substr(0, auth_begin));
        if (at != std::string_view::npos && at >= auth_begin) {
            out.append("…");
            pos = at; // from the '@'
        } else {
            pos = auth_begin;
        }
    }
    auto const q = body.find('?', pos);
    out.append(body.substr(pos, q == std::string_view::npos ? body.size() - pos : q + 1 - pos));
    if (q != std::string_view::npos) {
        auto query = body.substr(q + 1);
        for (bool first = true;; first = false) {
            auto const amp = query.find('&');
            auto const pair = query.substr(0, amp);
            if (!first)
                out.push_back('&');
            auto const eq = pair.find('=');
            std::string name; // percent-decoded: "%74oken" is a token too
            auto const name_end = std::min(eq, pair.size());
            for (std::size_t i = 0; i < name_end; ++i) {
                auto hex = [](char c) {
                    return c >= '0' && c <= '9'   ? c - '0'
                           : c >= 'a' && c <= 'f' ? c - 'a' + 10
                           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                                  : -1;
                };
                if (pair[i] == '%' && i + 2 < name_end && hex(pair[i + 1]) >= 0 &&
                    hex(pair[i + 2]) >= 0) {
                    name.push_back(char(hex(pair[i + 1]) * 16 + hex(pair[i + 2])));
                    i += 2;
                } else {
                    name.push_back(pair[i]);
                }
            }
            if (eq != std::string_view::npos && eq + 1 < pair.size() &&
                detail::is_credential_name(name))
                out.append(pair.substr(0, eq + 1)).append("…");
            else
                out.append(pair);
            if (amp == std::string_view::npos)
                break;
            query = query.substr(amp + 1);
        }
    }
    if (hash != std::string_view::npos)
        out.append(url.substr(hash));
    return out;
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

namespace detail {
// Unicode spaces a name may not begin or end with (trimmed): the ASCII ones and the Zs
// category, so " a" and "a\u00A0" are the name "a".
inline bool is_name_space(long cp) {
    return cp == ' ' || (cp >= 0x09 && cp <= 0x0d) || cp == 0xa0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200a) || cp == 0x202f || cp == 0x205f || cp == 0x3000;
}

// Characters that are invisible or reorder the text around them: a name that shows as
// "billing" in a list may not be another. C0 and C1 controls, the bidi embeddings,
// overrides, isolates and marks (U+202A-U+202E, U+2066-U+2069, U+200E, U+200F, U+061C), zero
// width space, word joiner and invisible operators (U+200B, U+2060-U+2064), line and paragraph
// separators, the soft hyphen, U+180E, the BOM and the interlinear annotation characters.
// Zero-width (non-)joiners stay: scripts and emoji sequences need them.
inline bool is_invisible_in_name(long cp) {
    return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0xad || cp == 0x61c || cp == 0x180e ||
           cp == 0x200b || cp == 0x200e || cp == 0x200f || (cp >= 0x2028 && cp <= 0x202e) ||
           (cp >= 0x2060 && cp <= 0x2064) || (cp >= 0x2066 && cp <= 0x2069) || cp == 0xfeff ||
           (cp >= 0xfff9 && cp <= 0xfffb);
}

/// `name` without the spaces around it (ASCII and Unicode, see is_name_space).
inline std::string trim_name(std::string_view name) {
    std::size_t begin = 0, end = 0;
    bool found = false;
    for (std::size_t i = 0; i < name.size();) {
        auto const at = i;
        if (!is_name_space(next_code_point(name, i))) {
            if (!found)
                begin = at;
            found = true;
            end = i;
        }
    }
    return found ? std::string(name.substr(begin, end - begin)) : std::string();
}

inline std::optional<std::string> name_problem(std::string_view name) {
    if (trim_name(name).empty())
        return "is required";
    if (name.size() > max_webhook_name)
        return "is longer than " + std::to_string(max_webhook_name) + " characters";
    for (std::size_t i = 0; i < name.size();) {
        auto const cp = next_code_point(name, i);
        if (cp < 0)
            return "is not valid UTF-8";
        if (is_invisible_in_name(cp)) {
            char code[24];
            std::snprintf(code, sizeof code, "U+%04lX", static_cast<unsigned long>(cp));
            return std::string("contains ") + code +
                   (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)
                        ? ", a control character"
                        : ", an invisible or text-reordering character");
        }
    }
    return std::nullopt;
}

/**
 * Why `url` may not be a webhook's, or nothing. Beyond what Boost.URL checks: the authority
 * must end where the text says (Boost.URL 1.81 takes the longest IPv4 prefix as the host, so
 * `http://127.0.0.1.nip.io:18490/x` would be host 127.0.0.1, port 80, path
 * `.nip.io:18490/x`), the host must be an IP literal or a DNS name (see dns_name_problem;
 * nothing percent-encoded, nothing getaddrinfo would read as IPv4), and the port a number
 * from 1 to 65535. So the transport connects to exactly the host and port the text names and
 * sends exactly its path and query.
 */
inline std::optional<std::string> url_problem(std::string const& url, bool https_only,
                                              address_policy const& addresses) {
    if (url.empty())
        return "is required";
    if (url.size() > max_webhook_url)
        return "is longer than " + std::to_string(max_webhook_url) + " characters";
    auto const u = boost::urls::parse_uri(url);
    if (!u)
        return "'" + url + "' is not an absolute URL (" + u.error().message() + ")";
    if (!iequals(u->scheme(), "http") && !iequals(u->scheme(), "https"))
        return "scheme '" + std::string(u->scheme()) + "' is not http or https";
    if (https_only && !iequals(u->scheme(), "https"))
        return "must be https (plain http is refused here)";
    if (!u->has_authority() || u->encoded_host().empty())
        return "has no host";
    if (u->has_userinfo())
        return "must not contain user-info (credentials belong in headers)";
    if (u->has_fragment())
        return "must not contain a fragment";
    auto const auth_begin = u->scheme().size() + 3; // "scheme://"
    auto const auth_end = auth_begin + u->encoded_authority().size();
    if (url.compare(u->scheme().size(), 3, "://") != 0 ||
        (auth_end < url.size() && url[auth_end] != '/' && url[auth_end] != '?')) {
        auto const raw = std::string_view(url).substr(auth_begin);
        return "host and port '" + std::string(raw.substr(0, raw.find_first_of("/?#"))) +
               "' are not a valid host (an IP address or a DNS name) and an optional port";
    }
    if (u->has_port()) {
        auto const port = u->port();
        bool ok = !port.empty() && port.size() <= 5 && port.front() != '0';
        for (char const c : port)
            ok = ok && c >= '0' && c <= '9';
        if (!ok || std::stoul(std::string(port)) > 65535)
            return "has an invalid port '" + std::string(port) + "' (1 to 65535)";
    }
    switch (u->host_type()) {
    case boost::urls::host_type::ipv4:
    case boost::urls::host_type::ipv6: {
        boost::system::error_code ec;
        auto const a = boost::asio::ip::make_address(u->host_address(), ec);
        if (ec)
            return "host '" + std::string(u->encoded_host()) + "' is not a valid IP address";
        if (auto why = addresses.refusal(a))
            return "refused: " + *why;
        break;
    }
    case boost::urls::host_type::name:
        if (auto why = dns_name_problem(u->encoded_host()))
            return why;
        break;
    default:
        return "host '" + std::string(u->encoded_host()) + "' is not an IP address or a DNS name";
    }
    return std::nullopt;
}
} // namespace detail

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
    return {};
}

/**
 * Reads webhook params from JSON: `{"name", "url", "events": ["create", ...], "active",
 * "connect_timeout": "5s", "timeout": "10s", "secrets": ["whsec_..."], "headers": {...},
 * "ca_file", "verify_tls", "allow_private": ["10.0.0.0/8"]}`. Unknown keys and wrong types are
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
