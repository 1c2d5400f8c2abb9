#ifndef HERALD_TIME_HPP
#define HERALD_TIME_HPP

#include <herald/error.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>

namespace herald {

/// Wall-clock time: event times, log times and retry deadlines are all in this clock.
using clock = std::chrono::system_clock;
using time_point = clock::time_point;
using duration = std::chrono::milliseconds;

/// Milliseconds since the Unix epoch.
inline std::int64_t to_unix_ms(time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

/// Whole seconds since the Unix epoch (the `webhook-timestamp` header).
inline std::int64_t to_unix_seconds(time_point t) {
    return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

/** RFC 3339 in UTC with milliseconds: `2026-11-27T15:52:54.123Z`. */
inline std::string format_rfc3339(time_point t) {
    using namespace std::chrono;
    auto const ms = floor<milliseconds>(t);
    auto const day = floor<days>(ms);
    year_month_day const ymd{day};
    hh_mm_ss const hms{ms - day};
    int const y = static_cast<int>(ymd.year());
    if (y >= 0 && y <= 9999) {
        // Digits by hand: this runs for every body and every log line, and snprintf costs
        // about thirty times as much. (libstdc++'s nanosecond clock spans 1677 to 2262, so
        // only a coarser clock, such as libc++'s microseconds, reaches the snprintf below.)
        std::string out(24, '\0');
        auto put = [&](std::size_t at, unsigned v, std::size_t width) {
            for (std::size_t i = width; i-- > 0; v /= 10)
                out[at + i] = static_cast<char>('0' + v % 10);
        };
        put(0, static_cast<unsigned>(y), 4);
        out[4] = '-';
        put(5, static_cast<unsigned>(ymd.month()), 2);
        out[7] = '-';
        put(8, static_cast<unsigned>(ymd.day()), 2);
        out[10] = 'T';
        put(11, static_cast<unsigned>(hms.hours().count()), 2);
        out[13] = ':';
        put(14, static_cast<unsigned>(hms.minutes().count()), 2);
        out[16] = ':';
        put(17, static_cast<unsigned>(hms.seconds().count()), 2);
        out[19] = '.';
        put(20, static_cast<unsigned>(hms.subseconds().count()), 3);
        out[23] = 'Z';
        return out;
    }
    char buf[32];
    int const n = std::snprintf(
        buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", static_cast<int>(ymd.year()),
        static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
        static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
        static_cast<int>(hms.seconds().count()), static_cast<int>(hms.subseconds().count()));
    return std::string(buf, static_cast<std::size_t>(n));
}

namespace detail {
inline bool parse_uint(std::string_view s, std::uint64_t& out) {
    if (s.empty() || s.size() > 18)
        return false;
    std::uint64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9')
            return false;
        v = v * 10 + static_cast<std::uint64_t>(c - '0');
    }
    out = v;
    return true;
}
} // namespace detail

/**
 * Parses a duration written as a number and a unit: `250ms`, `5s`, `2m`, `1h`, `1d`.
 * @param field the name used in the error message.
 */
inline result<duration> parse_duration(std::string_view text, std::string_view field = "duration") {
    std::size_t i = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9')
        ++i;
    std::uint64_t n = 0;
    auto const unit = text.substr(i);
    auto bad = [&](std::string why) {
        return make_problem(error::invalid_field, std::string(field),
                            "'" + std::string(text) + "' " + why);
    };
    if (i == 0 || !detail::parse_uint(text.substr(0, i), n))
        return bad("is not a duration (expected a number and a unit: 250ms, 5s, 2m, 1h, 1d)");
    std::uint64_t factor = 0;
    if (unit == "ms")
        factor = 1;
    else if (unit == "s")
        factor = 1000;
    else if (unit == "m")
        factor = 60'000;
    else if (unit == "h")
        factor = 3'600'000;
    else if (unit == "d")
        factor = 86'400'000;
    else
        return bad("has no unit or an unknown one (use ms, s, m, h or d)");
    if (n > (std::uint64_t{1} << 40) / factor)
        return bad("is too long");
    return duration(static_cast<std::int64_t>(n * factor));
}

/** The shortest exact spelling of a duration in the units parse_duration reads. */
inline std::string format_duration(duration d) {
    auto const ms = d.count();
    if (ms != 0 && ms % 86'400'000 == 0)
        return std::to_string(ms / 86'400'000) + "d";
    if (ms != 0 && ms % 3'600'000 == 0)
        return std::to_string(ms / 3'600'000) + "h";
    if (ms != 0 && ms % 60'000 == 0)
        return std::to_string(ms / 60'000) + "m";
    if (ms % 1000 == 0)
        return std::to_string(ms / 1000) + "s";
    return std::to_string(ms) + "ms";
}

/**
 * Parses an HTTP-date (RFC 9110 section 5.6.7): IMF-fixdate `Sun, 06 Nov 1994 08:49:37 GMT`,
 * the obsolete RFC 850 form `Sunday, 06-Nov-94 08:49:37 GMT` and asctime `Sun Nov  6 08:49:37
 * 1994`.
 */
inline std::optional<std::chrono::sys_seconds> parse_http_date_seconds(std::string_view s) {
    static constexpr std::string_view months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    auto month_of = [&](std::string_view m) -> int {
        for (int i = 0; i < 12; ++i)
            if (months[i] == m)
                return i + 1;
        return 0;
    };
    auto num = [](std::string_view v, int& out) {
        std::uint64_t n = 0;
        if (!detail::parse_uint(v, n))
            return false;
        out = static_cast<int>(n);
        return true;
    };
    int day = 0, mon = 0, year = 0, hh = 0, mm = 0, ss = 0;
    auto parse_clock = [&](std::string_view c) {
        return c.size() == 8 && c[2] == ':' && c[5] == ':' && num(c.substr(0, 2), hh) &&
               num(c.substr(3, 2), mm) && num(c.substr(6, 2), ss);
    };
    auto const comma = s.find(',');
    if (comma == 3) {
        // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
        if (s.size() != 29 || s.substr(25) != " GMT" || !num(s.substr(5, 2), day) ||
            !(mon = month_of(s.substr(8, 3))) || !num(s.substr(12, 4), year) ||
            !parse_clock(s.substr(17, 8)))
            return std::nullopt;
    } else if (comma != std::string_view::npos) {
        // RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT"
        auto r = s.substr(comma + 1);
        if (r.size() != 23 || r[0] != ' ' || r[3] != '-' || r[7] != '-' || r.substr(19) != " GMT" ||
            !num(r.substr(1, 2), day) || !(mon = month_of(r.substr(4, 3))) ||
            !num(r.substr(8, 2), year) || !parse_clock(r.substr(11, 8)))
            return std::nullopt;
        year += year < 70 ? 2000 : 1900;
    } else {
        // asctime: "Sun Nov  6 08:49:37 1994"
        if (s.size() != 24 || !(mon = month_of(s.substr(4, 3))))
            return std::nullopt;
        auto d = s.substr(8, 2);
        if (d[0] == ' ')
            d.remove_prefix(1);
        if (!num(d, day) || !parse_clock(s.substr(11, 8)) || !num(s.substr(20, 4), year))
            return std::nullopt;
    }
    using namespace std::chrono;
    year_month_day const ymd{std::chrono::year{year},
                             std::chrono::month{static_cast<unsigned>(mon)},
                             std::chrono::day{static_cast<unsigned>(day)}};
    if (!ymd.ok() || hh > 23 || mm > 59 || ss > 60)
        return std::nullopt;
    return sys_days{ymd} + hours{hh} + minutes{mm} + seconds{ss};
}

/// parse_http_date_seconds as a time_point; nothing for dates the clock cannot hold.
inline std::optional<time_point> parse_http_date(std::string_view s) {
    using namespace std::chrono;
    auto const at = parse_http_date_seconds(s);
    // Seconds cannot overflow; the clock's nanoseconds span only about 1678 to 2261.
    if (!at || *at < floor<seconds>(time_point::min()) + hours{24} ||
        *at > floor<seconds>(time_point::max()) - hours{24})
        return std::nullopt;
    return time_point{*at};
}

} // namespace herald

#endif
