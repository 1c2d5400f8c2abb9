#ifndef HERALD_ADMIN_DETAIL_UTIL_HPP
#define HERALD_ADMIN_DETAIL_UTIL_HPP

#include <herald/error.hpp>
#include <herald/time.hpp>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace herald::admin::detail {

/**
 * Compares a presented token with the expected one in time that depends on neither: both are
 * hashed first, so the comparison always covers 32 bytes whatever the lengths, and
 * CRYPTO_memcmp does not stop at the first difference.
 */
inline bool token_matches(std::string_view presented, std::string_view expected) {
    unsigned char a[SHA256_DIGEST_LENGTH], b[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<unsigned char const*>(presented.data()), presented.size(), a);
    SHA256(reinterpret_cast<unsigned char const*>(expected.data()), expected.size(), b);
    return CRYPTO_memcmp(a, b, sizeof a) == 0 && !expected.empty();
}

/**
 * Reads an RFC 3339 time (`2026-11-27T15:52:54Z`, `2026-11-27T15:52:54.123+02:00`; a space for
 * the `T` is accepted) or milliseconds since the Unix epoch.
 */
inline result<time_point> parse_time(std::string_view s, std::string const& field) {
    auto bad = [&] {
        return make_problem(error::invalid_field, field,
                            "'" + std::string(s) +
                                "' is not a time (RFC 3339 such as 2026-11-27T15:52:54Z, or "
                                "milliseconds since 1970)");
    };
    std::uint64_t ms = 0;
    if (!s.empty() && s.find_first_not_of("0123456789") == std::string_view::npos) {
        if (s.size() > 15 || !herald::detail::parse_uint(s, ms))
            return bad();
        return time_point(std::chrono::milliseconds(ms));
    }
    auto num = [&](std::size_t pos, std::size_t len, int& out) {
        if (pos + len > s.size())
            return false;
        out = 0;
        for (std::size_t i = pos; i < pos + len; ++i) {
            if (s[i] < '0' || s[i] > '9')
                return false;
            out = out * 10 + (s[i] - '0');
        }
        return true;
    };
    int y, mo, d, h, mi, sec;
    if (s.size() < 20 || !num(0, 4, y) || s[4] != '-' || !num(5, 2, mo) || s[7] != '-' ||
        !num(8, 2, d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !num(11, 2, h) ||
        s[13] != ':' || !num(14, 2, mi) || s[16] != ':' || !num(17, 2, sec))
        return bad();
    std::size_t pos = 19;
    long frac_ms = 0;
    if (pos < s.size() && s[pos] == '.') {
        ++pos;
        long scale = 100;
        std::size_t digits = 0;
        while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
            frac_ms += (s[pos] - '0') * scale;
            scale /= 10;
            ++pos;
            ++digits;
        }
        if (digits == 0)
            return bad();
    }
    int offset_min = 0;
    if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
        ++pos;
    } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
        int oh, om;
        if (!num(pos + 1, 2, oh) || pos + 3 >= s.size() || s[pos + 3] != ':' ||
            !num(pos + 4, 2, om) || oh > 23 || om > 59)
            return bad();
        offset_min = (s[pos] == '-' ? -1 : 1) * (oh * 60 + om);
        pos += 6;
    } else {
        return bad();
    }
    if (pos != s.size())
        return bad();
    using namespace std::chrono;
    year_month_day const ymd{year(y), month(unsigned(mo)), day(unsigned(d))};
    if (!ymd.ok() || h > 23 || mi > 59 || sec > 60)
        return bad();
    if (y < 1970 || y > 2200) // the clock counts nanoseconds: it ends in 2262
        return make_problem(error::invalid_field, field,
                            "'" + std::string(s) + "' is outside 1970 to 2200");
    auto const t = sys_days(ymd) + hours(h) + minutes(mi) + seconds(sec) + milliseconds(frac_ms) -
                   minutes(offset_min);
    return time_point(duration_cast<clock::duration>(t.time_since_epoch()));
}

/// Reads a decimal id from a path segment or a query parameter.
inline std::optional<std::uint64_t> parse_id(std::string_view s) {
    std::uint64_t v = 0;
    if (s.empty() || s.size() > 19 || !herald::detail::parse_uint(s, v))
        return std::nullopt;
    return v;
}

/// The problem type name for an error code: `invalid_field`, `not_found`, ...
inline std::string code_name(boost::system::error_code const& ec) {
    if (ec.category() != error_category())
        return "internal";
    switch (static_cast<error>(ec.value())) {
    case error::invalid_field:
        return "invalid_field";
    case error::duplicate_name:
        return "duplicate_name";
    case error::not_found:
        return "not_found";
    case error::queue_full:
        return "queue_full";
    case error::stopped:
        return "stopped";
    case error::storage_failed:
        return "storage_failed";
    default:
        return "delivery_error";
    }
}

/// The HTTP status a problem maps to.
inline unsigned status_for(boost::system::error_code const& ec) {
    if (ec.category() != error_category())
        return 500;
    switch (static_cast<error>(ec.value())) {
    case error::invalid_field:
        return 400;
    case error::duplicate_name:
        return 409;
    case error::not_found:
        return 404;
    case error::queue_full:
    case error::stopped:
        return 503;
    default:
        return 500;
    }
}

} // namespace herald::admin::detail

#endif
