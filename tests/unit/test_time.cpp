#include "fixtures.hpp"

#include <herald/time.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <string>

// One namespace a file: the unit tests build as one translation unit (unity).
namespace herald_test_time {

using namespace std::chrono_literals;

using herald::test::fixed_time;

namespace {

// 1994-11-06T08:49:37Z, the example of RFC 9110 section 5.6.7
herald::time_point rfc9110_example() {
    using namespace std::chrono;
    return herald::time_point{sys_days{1994y / November / 6}} + 8h + 49min + 37s;
}

void check_duration_error(std::string_view text, std::string_view field,
                          std::string_view message_part) {
    INFO("text: '" << text << "'");
    auto const r = herald::parse_duration(text, field);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == herald::error::invalid_field);
    CHECK(r.error().field == field);
    CHECK_THAT(r.error().message, Catch::Contains(std::string(text)));
    CHECK_THAT(r.error().message, Catch::Contains(std::string(message_part)));
}

} // namespace

TEST_CASE("format_rfc3339 writes UTC with milliseconds", "[time][rfc3339]") {
    CHECK(herald::format_rfc3339(fixed_time()) == "2026-11-27T15:52:54.123Z");
    CHECK(herald::format_rfc3339(herald::time_point{}) == "1970-01-01T00:00:00.000Z");
    CHECK(herald::format_rfc3339(rfc9110_example()) == "1994-11-06T08:49:37.000Z");
    // sub-millisecond precision is truncated, not rounded
    CHECK(herald::format_rfc3339(fixed_time() + 999us) == "2026-11-27T15:52:54.123Z");
    // single-digit fields are zero padded
    CHECK(herald::format_rfc3339(herald::time_point{} + 24h * 31 + 1h + 2min + 3s + 4ms) ==
          "1970-02-01T01:02:03.004Z");
    // before the epoch, the fields still count forward within the day
    CHECK(herald::format_rfc3339(herald::time_point{} - 1ms) == "1969-12-31T23:59:59.999Z");
    // the ends of what a time_point holds (nanoseconds in 64 bits: 1677 to 2262)
    using namespace std::chrono;
    CHECK(herald::format_rfc3339(sys_days{year{1700} / March / 4} + 5h + 6min + 7s + 89ms) ==
          "1700-03-04T05:06:07.089Z");
    CHECK(herald::format_rfc3339(sys_days{year{2261} / December / 31} + 23h + 59min + 59s +
                                 999ms) == "2261-12-31T23:59:59.999Z");
}

TEST_CASE("to_unix_ms and to_unix_seconds count from the epoch", "[time]") {
    CHECK(herald::to_unix_ms(herald::time_point{}) == 0);
    CHECK(herald::to_unix_ms(fixed_time()) == 1795794774123);
    CHECK(herald::to_unix_seconds(fixed_time()) == 1795794774);
}

TEST_CASE("parse_duration reads a number and a unit", "[time][duration]") {
    CHECK(herald::parse_duration("250ms").value() == 250ms);
    CHECK(herald::parse_duration("5s").value() == 5s);
    CHECK(herald::parse_duration("2m").value() == 2min);
    CHECK(herald::parse_duration("1h").value() == 1h);
    CHECK(herald::parse_duration("1d").value() == 24h);
    CHECK(herald::parse_duration("0s").value() == 0ms);
    CHECK(herald::parse_duration("90s").value() == 90s);
    CHECK(herald::parse_duration("1099511627776ms").value() == herald::duration(1099511627776));
}

TEST_CASE("parse_duration rejects malformed text, naming the field", "[time][duration]") {
    check_duration_error("", "timeout", "is not a duration");
    check_duration_error("5", "connect_timeout", "unit");
    check_duration_error("5x", "timeout", "unit");
    check_duration_error("5 s", "timeout", "unit");
    check_duration_error("5S", "timeout", "unit");
    check_duration_error("-1s", "retry", "is not a duration");
    check_duration_error("s", "retry", "is not a duration");
    check_duration_error("ms", "retry", "is not a duration");
    check_duration_error(" 5s", "retry", "is not a duration");
    check_duration_error("1.5s", "retry", "unit");
    // overflow: more than 2^40 ms, and more digits than fit in 64 bits
    check_duration_error("1099511627777ms", "limit", "too long");
    check_duration_error("12731d", "limit", "too long");
    check_duration_error("99999999999999999999s", "limit", "is not a duration");

    SECTION("the default field name is 'duration'") {
        auto const r = herald::parse_duration("5x");
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().field == "duration");
        CHECK(r.error().what() == "duration: " + r.error().message);
    }
}

TEST_CASE("format_duration writes the shortest exact spelling", "[time][duration]") {
    CHECK(herald::format_duration(0ms) == "0s");
    CHECK(herald::format_duration(250ms) == "250ms");
    CHECK(herald::format_duration(1500ms) == "1500ms");
    CHECK(herald::format_duration(5s) == "5s");
    CHECK(herald::format_duration(90s) == "90s");
    CHECK(herald::format_duration(2min) == "2m");
    CHECK(herald::format_duration(90min) == "90m");
    CHECK(herald::format_duration(1h) == "1h");
    CHECK(herald::format_duration(36h) == "36h");
    CHECK(herald::format_duration(48h) == "2d");
}

TEST_CASE("format_duration and parse_duration round-trip", "[time][duration]") {
    for (herald::duration d :
         {herald::duration(0ms), herald::duration(1ms), herald::duration(250ms),
          herald::duration(999ms), herald::duration(1001ms), herald::duration(5s),
          herald::duration(61s), herald::duration(2min), herald::duration(59min),
          herald::duration(1h), herald::duration(25h), herald::duration(24h * 7),
          herald::duration(10h + 1ms)}) {
        auto const text = herald::format_duration(d);
        INFO("duration " << d.count() << "ms written as " << text);
        auto const back = herald::parse_duration(text);
        REQUIRE(back.has_value());
        CHECK(*back == d);
    }
}

TEST_CASE("parse_http_date reads the three forms of RFC 9110", "[time][http-date]") {
    auto const imf = herald::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT");
    auto const rfc850 = herald::parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT");
    auto const asctime = herald::parse_http_date("Sun Nov  6 08:49:37 1994");
    REQUIRE(imf.has_value());
    REQUIRE(rfc850.has_value());
    REQUIRE(asctime.has_value());
    CHECK(*imf == rfc9110_example());
    CHECK(*rfc850 == rfc9110_example());
    CHECK(*asctime == rfc9110_example());
    CHECK(herald::to_unix_seconds(*imf) == 784111777);
}

TEST_CASE("parse_http_date handles other dates", "[time][http-date]") {
    using namespace std::chrono;
    auto const expected = time_point_cast<herald::time_point::duration>(
        herald::time_point{sys_days{2026y / November / 27}} + 16h + 2min + 54s);
    CHECK(herald::parse_http_date("Fri, 27 Nov 2026 16:02:54 GMT") == expected);
    // a two-digit year below 70 is in this century
    CHECK(herald::parse_http_date("Friday, 27-Nov-26 16:02:54 GMT") == expected);
    CHECK(herald::parse_http_date("Fri Nov 27 16:02:54 2026") == expected);
    CHECK(herald::parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT") == herald::time_point{});
    CHECK(herald::parse_http_date("Thu, 29 Feb 2024 23:59:59 GMT") ==
          herald::time_point{sys_days{2024y / February / 29}} + 23h + 59min + 59s);
}

TEST_CASE("parse_http_date rejects anything else", "[time][http-date]") {
    for (char const* text : {
             "",
             "garbage",
             "120",
             "2026-11-27T16:02:54Z",
             "Sun, 06 Nov 1994 08:49:37 UTC",
             "Sun, 06 Nov 1994 08:49:37 GMT ",
             " Sun, 06 Nov 1994 08:49:37 GMT",
             "Sun, 6 Nov 1994 08:49:37 GMT",
             "Sun, 06 Foo 1994 08:49:37 GMT",
             "Sun, 06 nov 1994 08:49:37 GMT",
             "Sun, 31 Feb 1994 08:49:37 GMT",
             "Sun, 00 Nov 1994 08:49:37 GMT",
             "Sun, 06 Nov 1994 24:00:00 GMT",
             "Sun, 06 Nov 1994 08:60:37 GMT",
             "Sun, 06 Nov 1994 08:49:61 GMT",
             "Sun, 06 Nov 1994 08.49.37 GMT",
             "Sun, 06 Nov 19x4 08:49:37 GMT",
             "Sunday, 06-Nov-94 08:49:37",
             "Sunday, 06-Nov-1994 08:49:37 GMT",
             "Sunday, 06 Nov 94 08:49:37 GMT",
             "Sun Nov  6 08:49:37 94",
             "Sun Xyz  6 08:49:37 1994",
             "Sun Nov    08:49:37 1994",
             "Sun Nov  6 08:49:37 1994 GMT",
         }) {
        INFO("text: '" << text << "'");
        CHECK_FALSE(herald::parse_http_date(text).has_value());
    }
}

TEST_CASE("parse_http_date never returns a wrong time for dates the clock cannot hold",
          "[time][http-date]") {
    // herald::time_point counts nanoseconds in 64 bits on libstdc++: about 1677 to 2262.
    // A date outside that range comes back as nothing, never as another date.
    CHECK_FALSE(herald::parse_http_date("Fri, 31 Dec 9999 23:59:59 GMT").has_value());
    CHECK_FALSE(herald::parse_http_date("Sat, 01 Jan 2300 00:00:00 GMT").has_value());
    CHECK_FALSE(herald::parse_http_date("Mon, 01 Jan 1600 00:00:00 GMT").has_value());
    // inside the range, the exact time
    auto const y2200 = herald::parse_http_date("Wed, 01 Jan 2200 00:00:00 GMT");
    REQUIRE(y2200.has_value());
    CHECK(herald::format_rfc3339(*y2200) == "2200-01-01T00:00:00.000Z");
    // the seconds form holds any year
    auto const s9999 = herald::parse_http_date_seconds("Fri, 31 Dec 9999 23:59:59 GMT");
    REQUIRE(s9999.has_value());
    CHECK(s9999->time_since_epoch().count() == 253402300799);
}

} // namespace herald_test_time
