// The decision after an attempt, branch by branch, without a socket, a timer or a store: the
// action, the outcome and every sentence the log entry says.
#include <herald/engine/attempt_decision.hpp>

#include <catch2/catch.hpp>

#include <boost/asio/error.hpp>

// One namespace a file: the unit tests build as one translation unit (unity).
namespace herald_test_attempt_decision {

using namespace herald;
using namespace std::chrono_literals;

namespace {

time_point const t0 = time_point{} + 1'000'000s;

send_result answered(unsigned status, std::string retry_after = {}) {
    send_result r;
    r.status = status;
    r.retry_after = std::move(retry_after);
    return r;
}

send_result refused() {
    send_result r;
    r.ec = make_error_code(boost::asio::error::connection_refused);
    r.error = "connect to 127.0.0.1:9 failed: Connection refused";
    return r;
}

// A decision over what retry_policy itself says about attempt `attempts` (schedule 0, 5s, 5m).
struct decided {
    send_result sent;
    retry_policy policy{retry_params{{0s, 5s, 5min}, 0.0, 1h}};
    health_params health;
    std::optional<attempt_decision> d;

    decided(send_result r, std::uint32_t attempts, circuit_breaker::failure_effect fx = {},
            bool abandoning = false, bool durable = false)
        : sent(std::move(r)) {
        d.emplace(attempt_facts{sent, attempts, policy.decide(sent, attempts, t0, 0.5), fx,
                                abandoning, durable},
                  health);
    }
    attempt_decision* operator->() { return &*d; }
};

} // namespace

TEST_CASE("a 2xx completes the delivery as delivered, with nothing to say", "[engine][decision]") {
    decided a(answered(204), 1);
    CHECK(a->resume() == attempt_action::complete);
    CHECK(a->result() == outcome::delivered);
    CHECK(a->error().empty());
    CHECK_FALSE(a->next());
    CHECK_FALSE(a->abandoned());
}

TEST_CASE("a retryable failure with attempts left is retried at the schedule's next delay",
          "[engine][decision][retry]") {
    SECTION("a 503") {
        decided a(answered(503), 1);
        CHECK(a->resume() == attempt_action::retry);
        CHECK(a->result() == outcome::retrying);
        CHECK(a->error() == "receiver answered HTTP 503");
        REQUIRE(a->next());
        CHECK(*a->next() == t0 + 5s); // jitter 0
    }
    SECTION("a refused connection names the address") {
        decided a(refused(), 2);
        CHECK(a->resume() == attempt_action::retry);
        CHECK(a->error() == "connect to 127.0.0.1:9 failed: Connection refused");
        CHECK(*a->next() == t0 + 5min);
    }
    SECTION("a transport error without a sentence falls back to the code's message") {
        send_result r;
        r.ec = make_error_code(boost::asio::error::timed_out);
        decided a(r, 1);
        CHECK(a->resume() == attempt_action::retry);
        CHECK(a->error() == r.ec.message());
    }
    SECTION("Retry-After on a 429 sets the time and is said") {
        decided a(answered(429, "7"), 1);
        CHECK(a->resume() == attempt_action::retry);
        CHECK(*a->next() == t0 + 7s);
        CHECK(a->error() == "receiver answered HTTP 429; Retry-After 7 honoured");
    }
}

TEST_CASE("a retryable failure on the last attempt gives up and says after how many",
          "[engine][decision][retry]") {
    SECTION("three attempts") {
        decided a(answered(500), 3);
        CHECK(a->resume() == attempt_action::complete);
        CHECK(a->result() == outcome::failed);
        CHECK(a->error() == "receiver answered HTTP 500 (gave up after 3 attempts)");
        CHECK_FALSE(a->next());
    }
    SECTION("one attempt, in the singular") {
        decided a(answered(500), 1);
        a.policy = retry_policy(retry_params{{0s}, 0.0, 1h});
        a.d.emplace(attempt_facts{a.sent, 1, a.policy.decide(a.sent, 1, t0, 0.5), {}, false, false},
                    a.health);
        CHECK(a->resume() == attempt_action::complete);
        CHECK(a->error() == "receiver answered HTTP 500 (gave up after 1 attempt)");
    }
}

TEST_CASE("a final answer fails at once and says what it was", "[engine][decision]") {
    SECTION("a 4xx") {
        decided a(answered(404), 1);
        CHECK(a->resume() == attempt_action::complete);
        CHECK(a->result() == outcome::failed);
        CHECK(a->error() == "receiver answered HTTP 404");
    }
    SECTION("a redirect is never followed, with or without a Location") {
        auto r = answered(302);
        r.location = "https://elsewhere.test/";
        decided a(r, 1);
        CHECK(a->resume() == attempt_action::complete);
        CHECK(a->error() == "redirect 302 to https://elsewhere.test/ not followed (herald "
                            "never follows redirects)");
        decided b(answered(301), 1);
        b->resume();
        CHECK(b->error() ==
              "redirect 301 to (no Location) not followed (herald never follows redirects)");
    }
    SECTION("a destination the address policy refuses") {
        send_result r;
        r.ec = make_error_code(error::address_refused);
        r.error = "127.0.0.1 is a loopback address";
        decided a(r, 1);
        CHECK(a->resume() == attempt_action::complete);
        CHECK(a->error() == "127.0.0.1 is a loopback address"); // no "gave up": it was final
    }
}

TEST_CASE("410 Gone disables the webhook, and the table's answer is in the log",
          "[engine][decision][disable]") {
    SECTION("disabled") {
        decided a(answered(410), 1);
        REQUIRE(a->resume() == attempt_action::disable);
        CHECK(a->disable_reason() == "the receiver answered 410 Gone");
        CHECK(a->resume(result<void>()) == attempt_action::complete);
        CHECK(a->result() == outcome::failed);
        CHECK(a->error() ==
              "receiver answered HTTP 410; webhook disabled: the receiver answered 410 Gone");
    }
    SECTION("the table could not") {
        decided a(answered(410), 1);
        REQUIRE(a->resume() == attempt_action::disable);
        auto const no = make_problem(error::storage_failed, "", "disk I/O error");
        CHECK(a->resume(result<void>(no)) == attempt_action::complete);
        CHECK(a->error() == "receiver answered HTTP 410; could not disable the webhook (the "
                            "receiver answered 410 Gone): disk I/O error");
    }
    SECTION("not when disable_on_gone is off") {
        decided a(answered(410), 1);
        a.health.disable_on_gone = false;
        CHECK(a->resume() == attempt_action::complete);
        CHECK(a->error() == "receiver answered HTTP 410");
    }
}

TEST_CASE("failing for disable_after disables the webhook instead of retrying",
          "[engine][decision][disable]") {
    decided a(answered(503), 1, {.opened = true, .disable = true});
    REQUIRE(a->resume() == attempt_action::disable);
    CHECK(a->disable_reason() == "no successful delivery for 5d");
    CHECK(a->resume(result<void>()) == attempt_action::complete); // not retried
    CHECK(a->result() == outcome::failed);
    // the disable says it all: neither the circuit nor "gave up"
    CHECK(a->error() ==
          "receiver answered HTTP 503; webhook disabled: no successful delivery for 5d");
    CHECK_FALSE(a->next());
}

TEST_CASE("a failure that opens the circuit says how long deliveries wait",
          "[engine][decision][circuit]") {
    decided a(answered(503), 1, {.opened = true, .disable = false});
    CHECK(a->resume() == attempt_action::retry);
    CHECK(a->error() == "receiver answered HTTP 503; circuit opened: deliveries wait 30s for a "
                        "probe");
}

TEST_CASE("past the drain deadline a failure is abandoned, or kept by a durable journal",
          "[engine][decision][lifecycle]") {
    SECTION("in memory: failed") {
        decided a(answered(503), 1, {}, true, false);
        CHECK(a->resume() == attempt_action::complete);
        CHECK(a->result() == outcome::failed);
        CHECK(a->abandoned());
        CHECK(a->error() == "receiver answered HTTP 503; abandoned at shutdown");
        CHECK_FALSE(a->next());
    }
    SECTION("durable: kept for the next start") {
        decided a(answered(503), 1, {}, true, true);
        CHECK(a->resume() == attempt_action::keep);
        CHECK(a->result() == outcome::retrying);
        CHECK(a->abandoned());
        CHECK(a->error() == "receiver answered HTTP 503; abandoned at shutdown (sent again "
                            "after the next start)");
    }
    SECTION("a delivery is a delivery, even then") {
        decided a(answered(200), 1, {}, true, true);
        CHECK(a->resume() == attempt_action::complete);
        CHECK(a->result() == outcome::delivered);
        CHECK_FALSE(a->abandoned());
    }
}

TEST_CASE("an attempt goes to the webhook as it is now, or says why not",
          "[engine][decision][webhook]") {
    webhook w;
    w.active = true;
    CHECK_FALSE(why_not_sent(&w, false));
    CHECK(why_not_sent(nullptr, false) == "not sent: the webhook was deleted");
    CHECK(why_not_sent(nullptr, true) == "not retried: the webhook was deleted");
    w.active = false;
    CHECK(why_not_sent(&w, true) == "not retried: the webhook was deactivated");
    w.disabled_reason = "the receiver answered 410 Gone";
    CHECK(why_not_sent(&w, false) ==
          "not sent: the webhook was disabled (the receiver answered 410 Gone)");
}

TEST_CASE("what is sent by hand is never retried and warns about what a user switched off",
          "[engine][decision][by_hand]") {
    auto [ok, none] = decide_by_hand(answered(200));
    CHECK(ok == outcome::delivered);
    CHECK(none.empty());
    auto [no, why] = decide_by_hand(answered(503));
    CHECK(no == outcome::failed);
    CHECK(why == "receiver answered HTTP 503 (sent by hand: not retried)");

    webhook w;
    w.active = true;
    CHECK(attempt_warning(w, true).empty());
    w.verify_tls = false;
    CHECK(attempt_warning(w, false) == "TLS certificate verification is disabled for this webhook");
    w.active = false;
    CHECK(attempt_warning(w, false) == "TLS certificate verification is disabled for this webhook");
    CHECK(attempt_warning(w, true) == "sent by hand while the webhook is inactive; TLS "
                                      "certificate verification is disabled for this webhook");
    w.verify_tls = true;
    w.disabled_reason = "the receiver answered 410 Gone";
    CHECK(attempt_warning(w, true) ==
          "sent by hand while the webhook is disabled (the receiver answered 410 Gone)");
}

} // namespace herald_test_attempt_decision
