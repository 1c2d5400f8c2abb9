#ifndef HERALD_DETAIL_BASE64_HPP
#define HERALD_DETAIL_BASE64_HPP

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace herald::detail {

/// Appends standard base64 (RFC 4648 section 4) with padding to `out`.
inline void base64_append(std::string& out, std::string_view in) {
    static constexpr char table[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    out.reserve(out.size() + (in.size() + 2) / 3 * 4);
    auto const* p = reinterpret_cast<unsigned char const*>(in.data());
    std::size_t i = 0;
    for (; i + 3 <= in.size(); i += 3) {
        std::uint32_t const v =
            (std::uint32_t{p[i]} << 16) | (std::uint32_t{p[i + 1]} << 8) | p[i + 2];
        out += table[v >> 18];
        out += table[(v >> 12) & 63];
        out += table[(v >> 6) & 63];
        out += table[v & 63];
    }
    if (std::size_t const rest = in.size() - i; rest > 0) {
        std::uint32_t v = std::uint32_t{p[i]} << 16;
        if (rest == 2)
            v |= std::uint32_t{p[i + 1]} << 8;
        out += table[v >> 18];
        out += table[(v >> 12) & 63];
        out += rest == 2 ? table[(v >> 6) & 63] : '=';
        out += '=';
    }
}

/// Standard base64 (RFC 4648 section 4) with padding.
inline std::string base64_encode(std::string_view in) {
    std::string out;
    base64_append(out, in);
    return out;
}

/// Decodes standard base64; padding is optional. Nothing on any other character.
inline std::optional<std::string> base64_decode(std::string_view in) {
    while (!in.empty() && in.back() == '=')
        in.remove_suffix(1);
    if (in.size() % 4 == 1)
        return std::nullopt;
    auto value = [](char c) -> int {
        if (c >= 'A' && c <= 'Z')
            return c - 'A';
        if (c >= 'a' && c <= 'z')
            return c - 'a' + 26;
        if (c >= '0' && c <= '9')
            return c - '0' + 52;
        if (c == '+')
            return 62;
        if (c == '/')
            return 63;
        return -1;
    };
    std::string out;
    out.reserve(in.size() * 3 / 4);
    std::uint32_t acc = 0;
    int bits = 0;
    for (char c : in) {
        int const v = value(c);
        if (v < 0)
            return std::nullopt;
        acc = (acc << 6) | static_cast<std::uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((acc >> bits) & 0xff);
        }
    }
    return out;
}

} // namespace herald::detail

#endif
