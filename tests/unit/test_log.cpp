#include "fixtures.hpp"

#include <herald/log.hpp>
#include <herald/log/log_failures.hpp>
#include <herald/log/memory_log.hpp>
#include <herald/log/metered_log.hpp>

#include <catch2/catch.hpp>

#include <boost/json/serialize.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

// One namespace a file: the unit tests build as one translation unit (unity).
namespace herald_test_log {

using namespace std::chrono_literals;
namespace json = boost::json;

using herald::test::fixed_time;
using herald::test::make_log_entry;
using herald::test::seqs;

namespace {

/// Records `n` entries at times t0, t0+1s, ...: webhook 1..3, types and outcomes rotating.
void fill(herald::memory_log& log, int n) {
    static constexpr herald::event_type types[] = {
        herald::event_type::create, herald::event_type::update, herald::event_type::remove};
    static constexpr herald::outcome outcomes[] = {
        herald::outcome::delivered, herald::outcome::retrying, herald::outcome::failed,
        herald::outcome::delivered};
    for (int i = 0; i < n; ++i)
        log.record(make_log_entry(static_cast<herald::webhook_id>(1 + i % 3),
                                  types[i % 3 == 0 ? 0 : i % 2 + 1], outcomes[i % 4],
                                  fixed_time() + std::chrono::seconds(i), std::to_string(i + 1)));
}

} // namespace

TEST_CASE("memory_log drops the oldest entries when full", "[log][capacity]") {
    herald::memory_log log(herald::memory_log_params{3});
    fill(log, 5);
    CHECK(log.size() == 3);
    auto const page = log.query({});
    CHECK(seqs(page) == std::vector<std::uint64_t>{5, 4, 3});
    log.record(
        make_log_entry(9, herald::event_type::create, herald::outcome::delivered, fixed_time()));
    CHECK(log.size() == 3);
    CHECK(seqs(log.query({})) == std::vector<std::uint64_t>{6, 5, 4});

    SECTION("a capacity of 0 keeps nothing but still numbers entries") {
        herald::memory_log none(herald::memory_log_params{0});
        fill(none, 3);
        CHECK(none.size() == 0);
        CHECK(none.query({}).entries.empty());
    }
    SECTION("the default capacity is 10,000") {
        CHECK(herald::memory_log_params{}.capacity == 10'000);
        herald::memory_log big;
        fill(big, 10'005);
        CHECK(big.size() == 10'000);
        herald::log_query q;
        q.limit = 1;
        CHECK(seqs(big.query(q)) == std::vector<std::uint64_t>{10'005});
        q.before_seq = 7;
        CHECK(seqs(big.query(q)) == std::vector<std::uint64_t>{6});
        q.before_seq = 6;
        CHECK(big.query(q).entries.empty()); // 1..5 were dropped
    }
}

TEST_CASE("memory_log can be moved with its entries", "[log]") {
    herald::memory_log log(herald::memory_log_params{4});
    fill(log, 3);
    herald::memory_log moved(std::move(log));
    CHECK(moved.size() == 3);
    moved.record(
        make_log_entry(1, herald::event_type::create, herald::outcome::delivered, fixed_time()));
    moved.record(
        make_log_entry(1, herald::event_type::create, herald::outcome::delivered, fixed_time()));
    CHECK(seqs(moved.query({})) == std::vector<std::uint64_t>{5, 4, 3, 2});
}

TEST_CASE("to_json(log_entry) has exactly the relay's keys", "[log][json]") {
    auto e =
        make_log_entry(7, herald::event_type::update, herald::outcome::retrying, fixed_time(), "x");
    e.seq = 12;
    e.delivery_id = "dlv_01KB0Q3M5V8Z9X4N2R7T6Y1W0C";
    e.event_id = "evt_01KB0Q3M5V8Z9X4N2R7T6Y1W0D";
    e.webhook_name = "CMDB sync";
    e.url = "https://example.com/hook";
    e.object_id = "42";
    e.attempt = 3;
    e.elapsed = 250ms;
    e.status = 503;
    e.error = "non-2xx response";
    e.response_excerpt = "busy";
    e.next_attempt_at = fixed_time() + 5min;

    auto const o = herald::to_json(e);
    std::set<std::string> keys;
    for (auto const& kv : o)
        keys.insert(std::string(kv.key()));
    CHECK(keys == std::set<std::string>{"delivery_id", "event_id", "webhook_id", "webhook_name",
                                        "url", "event_type", "object_id", "attempt", "started_at",
                                        "duration_ms", "status", "outcome", "error",
                                        "response_excerpt", "next_attempt_at"});
    CHECK(json::serialize(o) ==
          R"({"delivery_id":"dlv_01KB0Q3M5V8Z9X4N2R7T6Y1W0C",)"
          R"("event_id":"evt_01KB0Q3M5V8Z9X4N2R7T6Y1W0D","webhook_id":7,)"
          R"("webhook_name":"CMDB sync","url":"https://example.com/hook","event_type":"update",)"
          R"("object_id":"42","attempt":3,"started_at":"2026-11-27T15:52:54.123Z",)"
          R"("duration_ms":250,"status":503,"outcome":"retrying","error":"non-2xx response",)"
          R"("response_excerpt":"busy","next_attempt_at":"2026-11-27T15:57:54.123Z"})");

    SECTION("next_attempt_at is null when no attempt follows") {
        e.next_attempt_at.reset();
        e.result = herald::outcome::delivered;
        e.type = herald::event_type::remove;
        auto const d = herald::to_json(e);
        CHECK(d.size() == 15);
        REQUIRE(d.contains("next_attempt_at"));
        CHECK(d.at("next_attempt_at").is_null());
        CHECK(d.at("outcome") == "delivered");
        CHECK(d.at("event_type") == "delete");
    }
}

TEST_CASE("to_json(log_entry, full) adds the request with credentials masked", "[log][json]") {
    auto e =
        make_log_entry(7, herald::event_type::create, herald::outcome::delivered, fixed_time());
    CHECK_FALSE(herald::to_json(e).contains("request"));

    auto const empty = herald::to_json(e, herald::log_detail::full);
    REQUIRE(empty.contains("request"));
    CHECK(empty.at("request").at("headers").as_array().empty());
    CHECK(empty.at("request").at("body").is_null());

    e.request_headers = {{"webhook-id", "evt_1"},
                         {"webhook-signature", "v1,abc="},
                         {"Authorization", "Bearer s3cr3t-token"},
                         {"X-Api-Key", "k-123456"}};
    e.request_body = std::make_shared<std::string const>(R"({"id":"1"})");
    auto const full = herald::to_json(e, herald::log_detail::full);
    auto const& request = full.at("request").as_object();
    CHECK(request.at("body") == R"({"id":"1"})");
    CHECK(json::serialize(request.at("headers")) ==
          R"([{"name":"webhook-id","value":"evt_1"},)"
          R"({"name":"webhook-signature","value":"v1,abc="},)"
          R"({"name":"Authorization","value":"Bear…"},{"name":"X-Api-Key","value":"…"}])");
}

namespace {
std::string fields(std::vector<herald::http_header> const& hs) {
    std::string s;
    for (auto const& h : hs)
        s += h.name + ": " + h.value + "\n";
    return s;
}
} // namespace

TEST_CASE("the logged headers are the fields as sent, Content-Type first (issue 12, defect 12)",
          "[log][headers]") {
    herald::http_request req;
    req.content_type = "application/cloudevents+json; charset=utf-8";
    req.headers = {{"User-Agent", "herald/0.1.0"},
                   {"webhook-id", "evt_1"},
                   {"ce-specversion", "1.0"},
                   {"X-Tenant", "acme"}};
    CHECK(fields(herald::detail::headers_as_sent(req)) ==
          "Content-Type: application/cloudevents+json; charset=utf-8\n"
          "User-Agent: herald/0.1.0\nwebhook-id: evt_1\nce-specversion: 1.0\nX-Tenant: acme\n");
    CHECK(req.headers.empty());

    SECTION("a header named Content-Type replaces the request's, where it stands") {
        req.headers = {{"webhook-id", "evt_1"}, {"content-type", "text/plain"}, {"X-A", "a"}};
        CHECK(fields(herald::detail::headers_as_sent(req)) ==
              "webhook-id: evt_1\ncontent-type: text/plain\nX-A: a\nUser-Agent: " +
                  std::string(herald::user_agent) + "\n");
    }
    SECTION("one field per name, the later; never the transport's framing") {
        req.content_type.clear();
        req.headers = {{"X-A", "first"},
                       {"Host", "elsewhere"},
                       {"x-a", "second"},
                       {"Content-Length", "1"},
                       {"Connection", "close"},
                       {"Transfer-Encoding", "chunked"},
                       {"X-B", "b"}};
        CHECK(fields(herald::detail::headers_as_sent(req)) ==
              "x-a: second\nX-B: b\nUser-Agent: " + std::string(herald::user_agent) + "\n");
    }
    SECTION("a User-Agent given replaces herald's, where it stands") {
        req.content_type.clear();
        req.headers = {{"user-agent", "mine/1"}, {"X-A", "a"}};
        CHECK(fields(herald::detail::headers_as_sent(req)) == "user-agent: mine/1\nX-A: a\n");
    }
}

TEST_CASE("outcome names round-trip; unknown names are errors", "[log]") {
    for (auto o :
         {herald::outcome::delivered, herald::outcome::retrying, herald::outcome::failed}) {
        auto const r = herald::parse_outcome(herald::to_string(o));
        REQUIRE(r.has_value());
        CHECK(*r == o);
    }
    CHECK(herald::to_string(herald::outcome::delivered) == "delivered");
    CHECK(herald::to_string(herald::outcome::retrying) == "retrying");
    CHECK(herald::to_string(herald::outcome::failed) == "failed");

    auto const bad = herald::parse_outcome("Delivered", "filter.outcome");
    REQUIRE_FALSE(bad.has_value());
    CHECK(bad.error().code == herald::error::invalid_field);
    CHECK(bad.error().field == "filter.outcome");
    CHECK_THAT(bad.error().message, Catch::Contains("'Delivered'"));
    CHECK(herald::parse_outcome("").error().field == "outcome");
}

TEST_CASE("metered_log counts attempts by outcome, their durations and each webhook's last day",
          "[log][metrics]") {
    using namespace herald;
    metered_log<memory_log> log;
    auto const now = clock::now();
    auto entry = [&](webhook_id hook, outcome o, duration took, time_point at, unsigned status) {
        log_entry e;
        e.webhook = hook;
        e.result = o;
        e.elapsed = took;
        e.started_at = at;
        e.status = status;
        e.delivery_id = "dlv_" + std::to_string(hook) + std::to_string(to_unix_ms(at));
        return e;
    };
    log.record(entry(1, outcome::retrying, 3ms, now - 2s, 503));
    log.record(entry(1, outcome::delivered, 40ms, now - 1s, 200));
    log.record(entry(1, outcome::failed, 2000ms, now, 410));
    log.record(entry(2, outcome::delivered, 60s, now, 204));

    // Forwarded: the wrapped log holds every entry and answers queries.
    CHECK(log.query({}).entries.size() == 4);
    CHECK(log.inner().size() == 4);

    auto const m = log.metrics();
    CHECK(m.count == 4);
    CHECK(m.attempts[std::size_t(outcome::delivered)] == 2);
    CHECK(m.attempts[std::size_t(outcome::retrying)] == 1);
    CHECK(m.attempts[std::size_t(outcome::failed)] == 1);
    CHECK(m.buckets[0] == 1);                          // 3 ms <= 5 ms
    CHECK(m.buckets[3] == 1);                          // 40 ms <= 50 ms
    CHECK(m.buckets[8] == 1);                          // 2 s <= 2.5 s
    CHECK(m.buckets[log_metrics::bounds.size()] == 1); // 60 s: above every bound
    CHECK(m.seconds == Approx(62.043));

    auto const a = log.activity(1, now);
    REQUIRE(a.last.has_value());
    CHECK(a.last->status == 410); // the newest attempt
    CHECK(a.delivered == 1);      // the retrying attempt is not an ended delivery
    CHECK(a.failed == 1);
    CHECK(a.success_rate().value() == Approx(0.5));
    // A day and a half later the window is empty; the last attempt is still known.
    auto const later = log.activity(1, now + 36h);
    CHECK(later.delivered + later.failed == 0);
    CHECK_FALSE(later.success_rate().has_value());
    CHECK(later.last.has_value());
    CHECK_FALSE(log.activity(3, now).last.has_value());

    // A deleted webhook's counts go; the totals and the log's entries stay.
    CHECK(log.webhooks_kept() == 2);
    log.forget(1);
    CHECK(log.webhooks_kept() == 1);
    CHECK_FALSE(log.activity(1, now).last.has_value());
    CHECK(log.activity(2, now).delivered == 1);
    CHECK(log.metrics().count == 4);
    CHECK(log.query({}).entries.size() == 4);
}

TEST_CASE("repeat_limiter tells a failure once, then its repeats as a count at most every "
          "interval",
          "[log][errors]") {
    // Issue 12, defect 17: a full disk printed 18,633 identical lines.
    using steady = std::chrono::steady_clock;
    herald::detail::repeat_limiter limiter(5s);
    steady::time_point const t{};
    CHECK(limiter.note("disk full", t) == std::optional<std::string>("disk full"));
    for (int i = 1; i <= 1000; ++i)
        CHECK_FALSE(limiter.note("disk full", t + std::chrono::milliseconds(i)).has_value());
    CHECK(limiter.pending() == 1000);
    CHECK(limiter.note("disk full", t + 5s) ==
          std::optional<std::string>("disk full (repeated 1001 times)"));
    CHECK_FALSE(limiter.note("disk full", t + 6s).has_value());
    // another message: the count of the first, then it
    CHECK(limiter.note("read-only", t + 7s) ==
          std::optional<std::string>("disk full (repeated 1 time)\nread-only"));
    CHECK_FALSE(limiter.flush(t + 8s).has_value());
    CHECK_FALSE(limiter.note("read-only", t + 9s).has_value());
    CHECK(limiter.flush(t + 10s) == std::optional<std::string>("read-only (repeated 1 time)"));
    CHECK(limiter.pending() == 0);
}

TEST_CASE("metered_log sums the write failures of the logs it watches", "[log][metrics]") {
    herald::metered_log<> log;
    CHECK(log.write_stats().failures == 0);
    log.watch_writes([] { return herald::log_write_stats{2, 10, "'a.db' cannot grow"}; });
    log.watch_writes([] { return herald::log_write_stats{1, 3, ""}; });
    auto const w = log.write_stats();
    CHECK(w.failures == 3);
    CHECK(w.entries_lost == 13);
    CHECK(w.last_error == "'a.db' cannot grow");
}

} // namespace herald_test_log
