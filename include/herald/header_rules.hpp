#ifndef HERALD_HEADER_RULES_HPP
#define HERALD_HEADER_RULES_HPP

// Which request headers a user may set on a webhook, and which values (headers, URL query
// parameters) are credentials that herald shows masked.

#include <herald/error.hpp>
#include <herald/transport.hpp>

#include <algorithm>
#include <string>
#include <string_view>

namespace herald {

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
} // namespace herald

#endif
