#ifndef HERALD_DETAIL_HOST_HPP
#define HERALD_DETAIL_HOST_HPP

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace herald::detail {

/**
 * What `inet_aton` (and so getaddrinfo, which tries it before DNS) makes of `s`: one to four
 * numbers separated by dots, each decimal, octal (a leading 0) or hex (0x), the last filling
 * the remaining bytes. `127.1`, `2130706433`, `0x7f000001` and `0177.0.0.1` all read as
 * 127.0.0.1; `0` as 0.0.0.0.
 */
inline std::optional<std::uint32_t> parse_inet_aton(std::string_view s) {
    std::uint32_t parts[4] = {};
    std::size_t count = 0;
    std::size_t i = 0;
    while (true) {
        if (count == 4 || i == s.size())
            return std::nullopt;
        unsigned base = 10;
        if (s[i] == '0') {
            base = 8;
            if (i + 1 < s.size() && (s[i + 1] == 'x' || s[i + 1] == 'X')) {
                base = 16;
                i += 2;
            }
        }
        std::uint64_t v = 0;
        std::size_t digits = 0;
        for (; i < s.size() && s[i] != '.'; ++i, ++digits) {
            char const c = s[i];
            unsigned d = 0;
            if (c >= '0' && c <= '9')
                d = unsigned(c - '0');
            else if (base == 16 && c >= 'a' && c <= 'f')
                d = unsigned(c - 'a' + 10);
            else if (base == 16 && c >= 'A' && c <= 'F')
                d = unsigned(c - 'A' + 10);
            else
                return std::nullopt;
            if (d >= base)
                return std::nullopt;
            v = v * base + d;
            if (v > 0xffffffffu)
                return std::nullopt;
        }
        // an empty part ("1..2", "1.", "0x") is not a number (glibc's getaddrinfo agrees)
        if (digits == 0)
            return std::nullopt;
        parts[count++] = static_cast<std::uint32_t>(v);
        if (i == s.size())
            break;
        ++i; // the dot
    }
    std::uint32_t const last_max[] = {0xffffffffu, 0xffffffu, 0xffffu, 0xffu};
    for (std::size_t k = 0; k + 1 < count; ++k)
        if (parts[k] > 0xff)
            return std::nullopt;
    if (parts[count - 1] > last_max[count - 1])
        return std::nullopt;
    std::uint32_t a = parts[count - 1];
    for (std::size_t k = 0; k + 1 < count; ++k)
        a |= parts[k] << (24 - 8 * k);
    return a;
}

inline std::string dotted_quad(std::uint32_t a) {
    return std::to_string(a >> 24) + "." + std::to_string((a >> 16) & 0xff) + "." +
           std::to_string((a >> 8) & 0xff) + "." + std::to_string(a & 0xff);
}

/**
 * Whether a host's last label is a number (all digits, or 0x and hex digits), as the WHATWG
 * URL standard defines it: such a host is an IPv4 address or nothing, never a DNS name (no
 * top-level domain is numeric). Catches every spelling inet_aton accepts and more
 * (`1.2.3.4.5`, `300.1.1.1`).
 */
inline bool ends_in_number(std::string_view host) {
    if (!host.empty() && host.back() == '.')
        host.remove_suffix(1);
    auto const dot = host.rfind('.');
    auto last = dot == std::string_view::npos ? host : host.substr(dot + 1);
    if (last.empty())
        return false;
    bool hex = false;
    if (last.size() >= 2 && last[0] == '0' && (last[1] == 'x' || last[1] == 'X')) {
        hex = true;
        last.remove_prefix(2);
    }
    for (char const c : last) {
        bool const digit = c >= '0' && c <= '9';
        bool const hex_digit = (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
        if (!digit && !(hex && hex_digit))
            return false;
    }
    return true;
}

/**
 * Why `host` is not a DNS name herald connects to, or nothing when it is one: labels of 1 to
 * 63 letters, digits and hyphens, none starting or ending with a hyphen, at most 253
 * characters in all, no trailing dot (it would change the Host header and the TLS name),
 * and not ending in a number (an IPv4 address in another spelling).
 */
inline std::optional<std::string> dns_name_problem(std::string_view host) {
    if (host.empty())
        return "has no host";
    auto const quoted = "host '" + std::string(host) + "' ";
    if (host.size() > 253)
        return "host is longer than 253 characters";
    if (ends_in_number(host)) {
        if (auto a = parse_inet_aton(host))
            return quoted + "is an IPv4 address written in a non-canonical form (getaddrinfo " +
                   "reads it as " + dotted_quad(*a) + "); write it as " + dotted_quad(*a);
        return quoted + "ends in a number but is not an IPv4 address (write IPv4 addresses as " +
               "four decimal numbers, e.g. 192.0.2.1)";
    }
    if (host.back() == '.')
        return quoted + "ends with a dot (write the name without it)";
    std::size_t start = 0;
    while (start <= host.size()) {
        auto const dot = host.find('.', start);
        auto const label = host.substr(start, dot == std::string_view::npos ? dot : dot - start);
        if (label.empty())
            return quoted + "has an empty label";
        if (label.size() > 63)
            return quoted + "has a label longer than 63 characters";
        for (char const c : label) {
            bool const ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                            (c >= '0' && c <= '9') || c == '-';
            if (!ok)
                return quoted + "is not a valid DNS name (letters, digits, hyphens and dots " +
                       "only; no percent-encoding, no underscores; write an internationalized " +
                       "name in its xn-- form)";
        }
        if (label.front() == '-' || label.back() == '-')
            return quoted + "has a label that starts or ends with a hyphen";
        if (dot == std::string_view::npos)
            break;
        start = dot + 1;
    }
    return std::nullopt;
}

} // namespace herald::detail

#endif
