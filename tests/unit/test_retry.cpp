#include <herald/engine/retry.hpp>

#include <catch2/catch.hpp>

#include <boost/asio/error.hpp>

#include <chrono>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

// One namespace a file: the unit tests build as one translation unit (unity).
namespace herald_test_retry {

using namespace std::chrono_literals;

namespace {

// 2026-11-27T15:52:54.000Z: whole seconds, so HTTP-dates land exactly
herald::time_point fixed_now() {
    using namespace std::chrono;
    return herald::time_point{sys_days{2026y / November / 27}} + 15h + 52min + 54s;
}

herald::send_result status(unsigned code, std::string retry_after = "") {
    herald::send_result r;
    r.status = code;
    r.retry_after = std::move(retry_after);
    return r;
}

herald::send_result transport_error() {
    herald::send_result r;
    r.ec = boost::asio::error::connection_refused;
    r.error = "connection refused";
    return r;
}

std::vector<herald::duration> const default_schedule{0s, 5s, 5min, 30min, 2h, 5h, 10h, 10h};

} // namespace

TEST_CASE("classify follows Standard Webhooks", "[retry][classify]") {
    for (unsigned code : {200u, 201u, 202u, 204u, 299u}) {
        INFO("status " << code);
        CHECK(herald::classify(status(code)) == herald::verdict::delivered);
    }
    for (unsigned code : {301u, 302u, 303u, 307u, 308u}) {
        INFO("status " << code);
        CHECK(herald::classify(status(code)) == herald::verdict::final);
    }
    for (unsigned code : {400u, 401u, 403u, 404u, 405u, 409u, 410u, 413u, 422u}) {
        INFO("status " << code);
        CHECK(herald::classify(status(code)) == herald::verdict::final);
    }
    for (unsigned code : {408u, 429u, 500u, 501u, 502u, 503u, 504u, 599u}) {
        INFO("status " << code);
        CHECK(herald::classify(status(code)) == herald::verdict::retryable);
    }
    CHECK(herald::classify(transport_error()) == herald::verdict::retryable);
    CHECK(herald::classify(herald::send_result{}) == herald::verdict::retryable);

    SECTION("an error code wins over a status") {
        auto r = status(200);
        r.ec = herald::error::timeout;
        CHECK(herald::classify(r) == herald::verdict::retryable);
        CHECK_FALSE(r.ok());
    }
}

TEST_CASE("the default schedule is Standard Webhooks'", "[retry][schedule]") {
    herald::retry_params const p;
    CHECK(p.schedule == default_schedule);
    CHECK(p.jitter == 0.2);
    CHECK(p.max_retry_after == herald::duration(1h));
    herald::retry_policy const policy;
    CHECK(policy.max_attempts() == 8);
    CHECK(policy.initial_delay() == 0ms);
    CHECK(policy.params().schedule == default_schedule);
    CHECK(herald::validate(p).has_value());
}

TEST_CASE("decide waits schedule[attempt] after a retryable failure", "[retry][decide]") {
    herald::retry_policy const policy;
    auto const now = fixed_now();
    for (std::uint32_t attempt = 1; attempt < 8; ++attempt) {
        INFO("attempt " << attempt);
        for (auto const& r :
             {status(500), status(503), status(429), status(408), transport_error()}) {
            auto const d = policy.decide(r, attempt, now, 0.5);
            CHECK(d.kind == herald::verdict::retryable);
            REQUIRE(d.next.has_value());
            CHECK(*d.next == now + default_schedule[attempt]);
            CHECK_FALSE(d.used_retry_after);
        }
    }
}

TEST_CASE("decide ends deliveries that succeed or fail for good", "[retry][decide]") {
    herald::retry_policy const policy;
    auto const now = fixed_now();
    auto const delivered = policy.decide(status(204), 1, now, 0.5);
    CHECK(delivered.kind == herald::verdict::delivered);
    CHECK_FALSE(delivered.next.has_value());
    CHECK_FALSE(delivered.used_retry_after);

    for (unsigned code : {302u, 400u, 410u}) {
        auto const d = policy.decide(status(code, "10"), 1, now, 0.5);
        CHECK(d.kind == herald::verdict::final);
        CHECK_FALSE(d.next.has_value());
        CHECK_FALSE(d.used_retry_after);
    }
    // a success on the last attempt is still a success
    CHECK(policy.decide(status(200), 8, now, 0.5).kind == herald::verdict::delivered);
}

TEST_CASE("decide turns a retryable failure after the last attempt into final", "[retry][decide]") {
    herald::retry_policy const policy;
    auto const now = fixed_now();
    CHECK(policy.decide(status(500), 7, now, 0.5).kind == herald::verdict::retryable);
    for (auto const& r : {status(500), status(429, "5"), status(503, "5"), transport_error()}) {
        auto const d = policy.decide(r, 8, now, 0.5);
        CHECK(d.kind == herald::verdict::final);
        CHECK_FALSE(d.next.has_value());
        CHECK_FALSE(d.used_retry_after);
    }
    CHECK(policy.decide(status(500), 9, now, 0.5).kind == herald::verdict::final);

    SECTION("a custom schedule sets the number of attempts") {
        herald::retry_policy const two(herald::retry_params{{1s, 30s}, 0.0, 1h});
        CHECK(two.max_attempts() == 2);
        CHECK(two.initial_delay() == 1s);
        auto const d = two.decide(status(502), 1, now, 0.9);
        REQUIRE(d.next.has_value());
        CHECK(*d.next == now + 30s); // no jitter
        CHECK(two.decide(status(502), 2, now, 0.5).kind == herald::verdict::final);
        herald::retry_policy const once(herald::retry_params{{0s}, 0.2, 1h});
        CHECK(once.decide(status(500), 1, now, 0.5).kind == herald::verdict::final);
    }
}

TEST_CASE("jitter moves a retry by at most 20 percent either way", "[retry][jitter]") {
    herald::retry_policy const policy;
    auto const now = fixed_now();

    SECTION("the ends of the range are reached") {
        auto const low = policy.decide(status(500), 1, now, 0.0);
        auto const high = policy.decide(status(500), 1, now, 0.999999);
        REQUIRE(low.next.has_value());
        REQUIRE(high.next.has_value());
        CHECK(*low.next == now + 4s);  // 5s - 20%
        CHECK(*high.next == now + 6s); // 5s + 20% (rounded to the millisecond)
        for (std::uint32_t attempt = 1; attempt < 8; ++attempt) {
            INFO("attempt " << attempt);
            auto const base = default_schedule[attempt];
            auto const lo = policy.decide(status(503), attempt, now, 0.0).next.value() - now;
            auto const hi = policy.decide(status(503), attempt, now, 0.999999).next.value() - now;
            CHECK(lo == base * 4 / 5);
            CHECK(hi <= base * 6 / 5);
            // within a millionth of the top of the range
            CHECK(hi >= base * 6 / 5 - herald::duration(base.count() / 1'000'000 + 1));
        }
    }
    SECTION("random values stay within bounds") {
        std::mt19937_64 gen(12345);
        std::uniform_real_distribution<double> unit(0.0, 1.0);
        for (int i = 0; i < 10'000; ++i) {
            auto const attempt = static_cast<std::uint32_t>(1 + i % 7);
            auto const base = default_schedule[attempt];
            auto const u = unit(gen);
            auto const d = policy.decide(status(500), attempt, now, u);
            REQUIRE(d.next.has_value());
            auto const delay = *d.next - now;
            INFO("attempt " << attempt << " u " << u);
            REQUIRE(delay >= base * 4 / 5);
            REQUIRE(delay <= base * 6 / 5);
        }
    }
    SECTION("jittered() is monotonic in the random number") {
        herald::duration previous{0};
        for (int i = 0; i <= 100; ++i) {
            auto const d = policy.jittered(30min, i / 101.0);
            CHECK(d >= previous);
            previous = d;
        }
    }
    SECTION("no jitter keeps the schedule exact") {
        herald::retry_policy const exact(herald::retry_params{default_schedule, 0.0, 1h});
        for (double u : {0.0, 0.3, 0.999999}) {
            CHECK(exact.decide(status(500), 2, now, u).next == now + 5min);
        }
    }
}

TEST_CASE("decide honours Retry-After on 429 and 503", "[retry][retry-after]") {
    herald::retry_policy const policy;
    auto const now = fixed_now();

    for (unsigned code : {429u, 503u}) {
        INFO("status " << code);
        SECTION("delay-seconds, status " + std::to_string(code)) {
            auto const d = policy.decide(status(code, "120"), 1, now, 0.0);
            CHECK(d.kind == herald::verdict::retryable);
            CHECK(d.next == now + 120s);
            CHECK(d.used_retry_after);
        }
        SECTION("an HTTP-date, status " + std::to_string(code)) {
            auto const d =
                policy.decide(status(code, "Fri, 27 Nov 2026 16:02:54 GMT"), 3, now, 0.0);
            CHECK(d.kind == herald::verdict::retryable);
            CHECK(d.next == now + 10min);
            CHECK(d.used_retry_after);
        }
        SECTION("a date in the past means now, status " + std::to_string(code)) {
            auto const d =
                policy.decide(status(code, "Fri, 27 Nov 2026 15:00:00 GMT"), 1, now, 0.0);
            CHECK(d.next == now);
            CHECK(d.used_retry_after);
        }
        SECTION("longer than max_retry_after is cut to it, status " + std::to_string(code)) {
            auto const secs = policy.decide(status(code, "7200"), 1, now, 0.5);
            CHECK(secs.next == now + 1h);
            CHECK(secs.used_retry_after);
            auto const date =
                policy.decide(status(code, "Fri, 27 Nov 2026 23:00:00 GMT"), 1, now, 0.5);
            CHECK(date.next == now + 1h);
            CHECK(date.used_retry_after);
            herald::retry_policy const short_cap(
                herald::retry_params{default_schedule, 0.2, 10min});
            CHECK(short_cap.decide(status(code, "3600"), 1, now, 0.5).next == now + 10min);
        }
        SECTION("unparseable values fall back to the schedule, status " + std::to_string(code)) {
            for (char const* v : {"soon", "1.5", "-5", "5s", "Fri, 27 Nov 2026 16:02:54 UTC"}) {
                INFO("Retry-After: " << v);
                auto const d = policy.decide(status(code, v), 2, now, 0.5);
                CHECK(d.kind == herald::verdict::retryable);
                CHECK(d.next == now + 5min);
                CHECK_FALSE(d.used_retry_after);
            }
        }
    }
    SECTION("a date beyond what the clock can hold is cut to max_retry_after, not now") {
        // a receiver asking to be left alone "forever" must not get an immediate retry
        for (char const* far : {"Fri, 31 Dec 9999 23:59:59 GMT", "Sat, 01 Jan 2300 00:00:00 GMT"}) {
            INFO("Retry-After: " << far);
            auto const d = policy.decide(status(503, far), 1, now, 0.5);
            CHECK(d.kind == herald::verdict::retryable);
            REQUIRE(d.next.has_value());
            CHECK(*d.next == now + 1h);
            CHECK(d.used_retry_after);
        }
    }
    SECTION("ignored on other statuses") {
        for (unsigned code : {500u, 502u, 504u, 408u}) {
            INFO("status " << code);
            auto const d = policy.decide(status(code, "120"), 1, now, 0.5);
            CHECK(d.next == now + 5s);
            CHECK_FALSE(d.used_retry_after);
        }
    }
}

TEST_CASE("validate(retry_params) names the bad field", "[retry][validation]") {
    auto check = [](herald::retry_params const& p, std::string_view field) {
        auto const r = herald::validate(p);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().code == herald::error::invalid_field);
        CHECK(r.error().field == field);
        CHECK_FALSE(r.error().message.empty());
    };
    herald::retry_params p;
    p.schedule.clear();
    check(p, "retry_schedule");

    p.schedule = {0s, -1s, 5s};
    check(p, "retry_schedule[1]");
    CHECK_THAT(herald::validate(p).error().message, Catch::Contains("negative"));

    p.schedule = {0s, 5s};
    CHECK(herald::validate(p).has_value());
    for (double bad : {-0.01, 1.0, 1.5, std::numeric_limits<double>::quiet_NaN(),
                       std::numeric_limits<double>::infinity()}) {
        INFO("jitter " << bad);
        p.jitter = bad;
        check(p, "jitter");
    }
    for (double good : {0.0, 0.5, 0.99}) {
        p.jitter = good;
        CHECK(herald::validate(p).has_value());
    }
    p.max_retry_after = -1ms;
    check(p, "max_retry_after");
    p.max_retry_after = 0ms;
    CHECK(herald::validate(p).has_value());
}

TEST_CASE("parse_retry_after reads delay-seconds and HTTP-dates", "[retry][retry-after]") {
    auto const now = fixed_now();
    CHECK(herald::parse_retry_after("120", now) == herald::duration(120s));
    CHECK(herald::parse_retry_after("0", now) == herald::duration(0));
    CHECK(herald::parse_retry_after("  120\t", now) == herald::duration(120s));
    CHECK(herald::parse_retry_after("\t 7 ", now) == herald::duration(7s));
    CHECK(herald::parse_retry_after("Fri, 27 Nov 2026 16:02:54 GMT", now) ==
          herald::duration(10min));
    CHECK(herald::parse_retry_after(" Fri, 27 Nov 2026 16:02:54 GMT ", now) ==
          herald::duration(10min));
    CHECK(herald::parse_retry_after("Friday, 27-Nov-26 15:53:54 GMT", now) ==
          herald::duration(1min));
    CHECK(herald::parse_retry_after("Fri Nov 27 15:52:55 2026", now) == herald::duration(1s));
    // a date in the past is no delay at all
    CHECK(herald::parse_retry_after("Fri, 27 Nov 2026 15:52:53 GMT", now) == herald::duration(0));
    CHECK(herald::parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now) == herald::duration(0));
    // a date before what the clock can hold is still in the past
    auto const ancient = herald::parse_retry_after("Mon, 01 Jan 1600 00:00:00 GMT", now);
    CHECK((!ancient || *ancient == herald::duration(0)));
    // an absurd delay is capped at ten years
    CHECK(herald::parse_retry_after("999999999999", now) ==
          herald::duration(std::chrono::seconds(10ll * 365 * 86400)));

    for (char const* bad : {"", "   ", "soon", "-1", "+5", "1.5", "5 s", "0x10", "1e3",
                            "Fri, 27 Nov 2026 16:02:54"}) {
        INFO("value: '" << bad << "'");
        CHECK_FALSE(herald::parse_retry_after(bad, now).has_value());
    }
}

} // namespace herald_test_retry
