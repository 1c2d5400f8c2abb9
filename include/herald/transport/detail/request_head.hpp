#ifndef HERALD_TRANSPORT_DETAIL_REQUEST_HEAD_HPP
#define HERALD_TRANSPORT_DETAIL_REQUEST_HEAD_HPP

// The head of the POST http_transport writes: which of the request's headers go on the wire,
// in which order, and the framing it adds itself.

#include <herald/header_rules.hpp>
#include <herald/transport.hpp>
#include <herald/transport/detail/route.hpp>
#include <herald/version.hpp>

#include <charconv>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace herald::detail {

// The transport frames the message itself: these never come from the request's headers.
inline bool is_framing_header(std::string_view name) {
    return iequals(name, "Host") || iequals(name, "Content-Length") ||
           iequals(name, "Transfer-Encoding") || iequals(name, "Connection");
}

// A header line must not be able to end early or start another one.
inline bool is_safe_header_text(std::string_view s) {
    for (char const c : s)
        if (c == '\r' || c == '\n' || c == '\0')
            return false;
    return true;
}

/**
 * Writes the request head into `head` (reusing its capacity): `start` (the request line and
 * Host, from the route), Content-Type, the request's headers, User-Agent unless given,
 * Content-Length. One field per name (case-insensitive): of two headers with one name the
 * later is written, and a Content-Type among the headers replaces the request's. Returns the
 * name of an unsafe header, if any, and writes nothing usable then.
 */
inline std::optional<std::string> format_head(std::string& head, std::string_view start,
                                              http_request const& req, std::size_t body_size) {
    using namespace std::string_view_literals;
    head.assign(start);
    auto const& hs = req.headers;
    auto const later = [&](std::size_t i, std::string_view name) {
        for (std::size_t j = i; j < hs.size(); ++j)
            if (iequals(hs[j].name, name))
                return true;
        return false;
    };
    if (!req.content_type.empty() && !later(0, "Content-Type")) {
        if (!is_safe_header_text(req.content_type))
            return std::string("Content-Type");
        head.append("\r\nContent-Type: "sv).append(req.content_type);
    }
    bool agent = false;
    for (std::size_t i = 0; i < hs.size(); ++i) {
        auto const& h = hs[i];
        if (h.name.empty() || !is_safe_header_text(h.name) || !is_safe_header_text(h.value) ||
            h.name.find(':') != std::string::npos)
            return h.name;
        if (is_framing_header(h.name) || later(i + 1, h.name))
            continue;
        agent = agent || iequals(h.name, "User-Agent");
        head.append("\r\n"sv).append(h.name).append(": "sv).append(h.value);
    }
    if (!agent)
        head.append("\r\nUser-Agent: "sv).append(user_agent);
    char digits[24];
    auto const [end, ec] = std::to_chars(digits, digits + sizeof digits, body_size);
    (void)ec;
    head.append("\r\nContent-Length: "sv).append(digits, end).append("\r\n\r\n"sv);
    return std::nullopt;
}

/// The same, the request line and Host from `target` (rooted here) and `host_and_port`.
inline std::optional<std::string> format_head(std::string& head, std::string_view target,
                                              std::string_view host_and_port,
                                              http_request const& req, std::size_t body_size) {
    return format_head(head, head_start(target, host_and_port), req, body_size);
}

} // namespace herald::detail

#endif
