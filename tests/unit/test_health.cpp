// Endpoint health: the circuit breaker and the scheduler's parked lanes, on a fake clock.
#include <herald/engine/circuit_breaker.hpp>
#include <herald/engine/scheduler.hpp>

#include <catch2/catch.hpp>

// One namespace a file: the unit tests build as one translation unit (unity).
namespace herald_test_health {

using namespace herald;
using namespace std::chrono_literals;

namespace {
time_point t0() {
    return time_point{std::chrono::seconds(1'800'000'000)};
}

health_params params(std::uint32_t threshold = 3, duration cool = 30s, duration window = 1h) {
    health_params p;
    p.failure_threshold = threshold;
    p.cool_down = cool;
    p.disable_after = window;
    return p;
}
} // namespace

TEST_CASE("the circuit opens after consecutive failures and probes after the cool-down",
          "[health][breaker]") {
    circuit_breaker b(params());
    auto now = t0();
    CHECK(b.allow(now));
    CHECK_FALSE(b.failure(now).opened);
    CHECK_FALSE(b.failure(now + 1s).opened);
    CHECK(b.current() == circuit_breaker::state::closed);
    auto const third = b.failure(now + 2s);
    CHECK(third.opened);
    CHECK_FALSE(third.disable);
    CHECK(b.current() == circuit_breaker::state::open);
    CHECK(b.reopen_at() == now + 2s + 30s);
    // open: nothing goes until the cool-down has passed
    CHECK_FALSE(b.allow(now + 31s));
    CHECK(b.allow(now + 32s));
    CHECK(b.current() == circuit_breaker::state::half_open);
    b.started();
    CHECK_FALSE(b.allow(now + 32s)); // one probe at a time
    // the probe fails: open again for another cool-down
    CHECK(b.failure(now + 33s).opened);
    CHECK_FALSE(b.allow(now + 62s));
    CHECK(b.allow(now + 63s));
    b.started();
    b.success();
    CHECK(b.current() == circuit_breaker::state::closed);
    CHECK(b.consecutive_failures() == 0);
    CHECK(b.allow(now + 63s));
    CHECK(b.idle());
}

TEST_CASE("a success in between resets the count", "[health][breaker]") {
    circuit_breaker b(params(3));
    b.failure(t0());
    b.failure(t0());
    b.success();
    CHECK_FALSE(b.failure(t0()).opened);
    CHECK_FALSE(b.failure(t0()).opened);
    CHECK(b.failure(t0()).opened);
}

TEST_CASE("failing without a success for the whole window asks for disabling",
          "[health][disable]") {
    circuit_breaker b(params(3, 30s, 5 * 24h));
    auto const start = t0();
    CHECK_FALSE(b.failure(start).disable);
    CHECK(b.failing_since() == start);
    CHECK_FALSE(b.failure(start + 4 * 24h).disable);
    CHECK(b.failure(start + 5 * 24h).disable);
    // a success starts the window afresh
    b.success();
    CHECK_FALSE(b.failing_since());
    CHECK_FALSE(b.failure(start + 6 * 24h).disable);
    CHECK_FALSE(b.failure(start + 10 * 24h + 23h).disable);
    CHECK(b.failure(start + 11 * 24h).disable);
}

namespace {
struct fixture {
    std::shared_ptr<prepared_event const> ev = std::make_shared<prepared_event const>();
    std::vector<std::shared_ptr<webhook const>> hooks;
    explicit fixture(int n) {
        for (int i = 1; i <= n; ++i) {
            auto w = std::make_shared<webhook>();
            w->id = static_cast<webhook_id>(i);
            hooks.push_back(w);
        }
    }
    delivery make(int hook, time_point due) {
        return delivery{make_delivery_id(), ev, hooks.at(static_cast<std::size_t>(hook - 1)), 0,
                        due};
    }
};
} // namespace

TEST_CASE("open circuits are counted as breakers change: a failed probe, a reset, two webhooks",
          "[health][scheduler]") {
    fixture f(2);
    scheduler s({}, params(2, 10s));
    auto now = t0();
    auto fail_twice = [&](int hook) {
        s.push(f.make(hook, now));
        s.push(f.make(hook, now));
        REQUIRE(s.pop_ready(now));
        REQUIRE(s.pop_ready(now));
        s.done(webhook_id(hook), scheduler::attempt_result::failed, now);
        s.done(webhook_id(hook), scheduler::attempt_result::failed, now);
    };
    fail_twice(1);
    CHECK(s.open_circuits() == 1);
    fail_twice(2);
    CHECK(s.open_circuits() == 2);
    // webhook 1's probe fails: open again, still one circuit
    s.push(f.make(1, now));
    REQUIRE(s.pop_ready(now + 10s));
    CHECK(s.open_circuits() == 2); // half-open counts as open
    CHECK(s.done(1, scheduler::attempt_result::failed, now + 10s).opened);
    CHECK(s.open_circuits() == 2);
    // a probe that was never sent changes nothing; a reset forgets the breaker
    s.reset_health(2, now + 10s);
    CHECK(s.open_circuits() == 1);
    s.reset_health(2, now + 10s); // twice: nothing left to forget
    CHECK(s.open_circuits() == 1);
    s.push(f.make(1, now + 10s));
    CHECK_FALSE(s.pop_ready(now + 20s - 1ms)); // cooling down again
    REQUIRE(s.pop_ready(now + 20s));
    CHECK(s.open_circuits() == 1);
    s.done(1, scheduler::attempt_result::delivered, now + 21s);
    CHECK(s.open_circuits() == 0);
}

TEST_CASE("an open circuit parks its lane; other lanes keep going", "[health][scheduler]") {
    fixture f(2);
    scheduler s({}, params(2, 10s));
    auto now = t0();
    for (int i = 0; i < 5; ++i)
        s.push(f.make(1, now));
    // two attempts on webhook 1 fail: the circuit opens
    auto a = s.pop_ready(now);
    auto b = s.pop_ready(now);
    REQUIRE(a);
    REQUIRE(b);
    CHECK_FALSE(s.done(1, scheduler::attempt_result::failed, now).opened);
    CHECK(s.done(1, scheduler::attempt_result::failed, now).opened);
    CHECK(s.open_circuits() == 1);
    // webhook 1's three other deliveries wait; webhook 2's go at once
    s.push(f.make(2, now));
    auto c = s.pop_ready(now);
    REQUIRE(c);
    CHECK(c->target() == 2);
    CHECK_FALSE(s.pop_ready(now + 5s));
    CHECK(s.pending() == 3);
    REQUIRE(s.next_due());
    CHECK(*s.next_due() == now + 10s); // when the parked lane may probe
    // after the cool-down exactly one probe goes
    auto probe = s.pop_ready(now + 10s);
    REQUIRE(probe);
    CHECK(probe->target() == 1);
    CHECK_FALSE(s.pop_ready(now + 10s));
    // it succeeds: the circuit closes and the rest flows
    s.done(1, scheduler::attempt_result::delivered, now + 11s);
    CHECK(s.open_circuits() == 0);
    CHECK(s.pop_ready(now + 11s));
    CHECK(s.pop_ready(now + 11s));
    CHECK(s.pending() == 0);
}

TEST_CASE("a probe that was never sent lets another go", "[health][scheduler]") {
    fixture f(1);
    scheduler s({}, params(1, 10s));
    auto now = t0();
    s.push(f.make(1, now));
    s.push(f.make(1, now));
    s.push(f.make(1, now));
    auto first = s.pop_ready(now);
    s.done(1, scheduler::attempt_result::failed, now);
    auto probe = s.pop_ready(now + 10s);
    REQUIRE(probe);
    s.done(1, scheduler::attempt_result::not_sent, now + 10s);
    CHECK(s.pop_ready(now + 10s));
}

TEST_CASE("reset_health forgets a webhook's failures", "[health][scheduler]") {
    fixture f(1);
    scheduler s({}, params(1, 1h));
    auto now = t0();
    s.push(f.make(1, now));
    s.push(f.make(1, now));
    REQUIRE(s.pop_ready(now));
    s.done(1, scheduler::attempt_result::failed, now);
    CHECK_FALSE(s.pop_ready(now + 1s));
    s.reset_health(1);
    CHECK(s.breaker(1) == nullptr);
    CHECK(s.pop_ready(now + 1s));
}

} // namespace herald_test_health
