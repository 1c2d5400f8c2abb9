#ifndef HERALD_DETAIL_UTF8_HPP
#define HERALD_DETAIL_UTF8_HPP

#include <string>
#include <string_view>

namespace herald::detail {

/**
 * Appends `in` to `out` as valid UTF-8: each byte that does not start a well-formed sequence
 * becomes U+FFFD, and so does a sequence cut short at the end. Receivers answer with anything;
 * the log and the relay's JSON lines must stay readable.
 */
inline void append_utf8(std::string& out, std::string_view in) {
    static constexpr char replacement[] = "\xEF\xBF\xBD";
    auto const* p = reinterpret_cast<unsigned char const*>(in.data());
    std::size_t const n = in.size();
    std::size_t i = 0;
    while (i < n) {
        unsigned char const c = p[i];
        std::size_t len = 0;
        unsigned char lo = 0x80, hi = 0xBF;
        if (c < 0x80)
            len = 1;
        else if (c >= 0xC2 && c <= 0xDF)
            len = 2;
        else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            if (c == 0xE0)
                lo = 0xA0;
            if (c == 0xED)
                hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            if (c == 0xF0)
                lo = 0x90;
            if (c == 0xF4)
                hi = 0x8F;
        }
        bool ok = len != 0 && i + len <= n;
        for (std::size_t k = 1; ok && k < len; ++k) {
            unsigned char const b = p[i + k];
            ok = k == 1 ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xBF);
        }
        if (ok) {
            out.append(in.data() + i, len);
            i += len;
        } else {
            out.append(replacement, 3);
            ++i;
        }
    }
}

/**
 * Reads the code point that starts at `i` and moves `i` past it. Returns -1 (and moves past
 * one byte) where the bytes are not well-formed UTF-8: overlong forms, surrogates and values
 * above U+10FFFF included.
 */
inline long next_code_point(std::string_view s, std::size_t& i) {
    auto const* p = reinterpret_cast<unsigned char const*>(s.data());
    unsigned char const c = p[i];
    std::size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    long cp = 0;
    if (c < 0x80) {
        ++i;
        return c;
    } else if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        cp = c & 0x0F;
        if (c == 0xE0)
            lo = 0xA0;
        if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        cp = c & 0x07;
        if (c == 0xF0)
            lo = 0x90;
        if (c == 0xF4)
            hi = 0x8F;
    }
    bool ok = len != 0 && i + len <= s.size();
    for (std::size_t k = 1; ok && k < len; ++k) {
        unsigned char const b = p[i + k];
        ok = k == 1 ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xBF);
        cp = (cp << 6) | (b & 0x3F);
    }
    if (!ok) {
        ++i;
        return -1;
    }
    i += len;
    return cp;
}

} // namespace herald::detail

#endif
