// The dispatcher over recording_transport: matching, fan-out, backpressure, retries against
// the webhook as it is now, stop and drain, custom policies. No sockets.
#include "run_async.hpp"
#include "temp_db.hpp"

#include <herald/basic_dispatcher.hpp>
#include <herald/manual_clock.hpp>
#include <herald/serializer/datagerry_serializer.hpp>
#include <herald/sqlite/sqlite_log.hpp>
#include <herald/transport/recording_transport.hpp>

#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include <algorithm>
#include <atomic>
#include <optional>
#include <set>
#include <thread>

// One namespace a file: the unit tests build as one translation unit (unity).
namespace herald_test_dispatcher {

using namespace herald;
using herald::test::until;
using namespace std::chrono_literals;
namespace asio = boost::asio;

namespace {

template <class Serializer = json_serializer, class Store = memory_store,
          class Clock = herald::clock>
using test_dispatcher =
    basic_dispatcher<Store, channel_source, Serializer, recording_transport, memory_log, Clock>;
// Retries timed on a clock the test moves: a five-minute retry costs no time.
using manual_dispatcher = test_dispatcher<json_serializer, memory_store, manual_clock>;

webhook_params hook(std::string name, event_type_set events = event_type_set::all(),
                    bool active = true) {
    webhook_params p;
    p.url = "http://receiver.test/" + name;
    p.name = std::move(name);
    p.events = events;
    p.active = active;
    return p;
}

dispatcher_params quick(std::vector<duration> schedule = {0ms, 20ms, 20ms}) {
    dispatcher_params p;
    p.retry.schedule = std::move(schedule);
    p.retry.jitter = 0;
    return p;
}

template <class D>
asio::awaitable<stop_report> stop(D& d, duration drain = 5s) {
    co_return co_await d.async_stop(drain, asio::use_awaitable);
}

} // namespace

TEMPLATE_TEST_CASE("one body per event, shared by every subscribed webhook", "[dispatcher][fanout]",
                   json_serializer, datagerry_serializer) {
    asio::io_context io;
    recording_transport transport;
    test_dispatcher<TestType> d(io.get_executor(), quick(), {.transport = transport});
    for (int i = 0; i < 50; ++i)
        REQUIRE(
            d.store().create(hook("fan-" + std::to_string(i), {event_type::update})).has_value());
    REQUIRE(d.store().create(hook("creates-only", {event_type::create})).has_value());
    REQUIRE(d.store().create(hook("inactive", event_type_set::all(), false)).has_value());

    test::run_async(io, [&]() -> asio::awaitable<void> {
        d.async_run(asio::detached);
        auto id = d.publish(object_event::updated("9", {{"a", 1}}, {{"a", 2}}));
        REQUIRE(id.has_value());
        co_await until([&] { return d.stats().delivered == 50; });
        auto report = co_await stop(d);
        CHECK(report.drained);
    });

    auto const reqs = transport.requests();
    REQUIRE(reqs.size() == 50);
    std::set<std::string> urls, deliveries;
    for (auto const& r : reqs) {
        CHECK(r.body.get() == reqs[0].body.get()); // the same bytes, not a copy per webhook
        CHECK(r.header("webhook-id") == reqs[0].header("webhook-id"));
        urls.insert(r.url);
        deliveries.insert(std::string(r.header("herald-delivery")));
    }
    CHECK(urls.size() == 50);
    CHECK(deliveries.size() == 50); // one delivery id per webhook
    CHECK(urls.count("http://receiver.test/creates-only") == 0);
    CHECK(urls.count("http://receiver.test/inactive") == 0);
    CHECK(d.serializations() == 1);
    CHECK(d.stats().published == 1);
    CHECK(d.stats().pending == 0);

    // Each log entry keeps the request as sent: its headers and the shared body.
    auto const page = d.log().query({});
    REQUIRE(page.entries.size() == 50);
    for (auto const& e : page.entries) {
        CHECK(e.request_body.get() == reqs[0].body.get());
        http_request sent;
        sent.headers = e.request_headers;
        CHECK(sent.header("webhook-id") == e.event_id);
        CHECK(sent.header("herald-delivery") == e.delivery_id);
        CHECK(sent.header("herald-attempt") == "1");
        CHECK_FALSE(sent.header("webhook-timestamp").empty());
        // The serializer's content type first, as http_transport writes it, then the request's
        // own headers in order (issue 12, defect 12: the log had no Content-Type).
        REQUIRE_FALSE(e.request_headers.empty());
        CHECK(e.request_headers.front().name == "Content-Type");
        CHECK(e.request_headers.front().value == "application/json");
        auto const it = std::find_if(reqs.begin(), reqs.end(), [&](http_request const& r) {
            return r.header("herald-delivery") == e.delivery_id;
        });
        REQUIRE(it != reqs.end());
        CHECK(it->content_type == "application/json");
        REQUIRE(e.request_headers.size() == it->headers.size() + 1);
        for (std::size_t i = 0; i < it->headers.size(); ++i) {
            CHECK(e.request_headers[i + 1].name == it->headers[i].name);
            CHECK(e.request_headers[i + 1].value == it->headers[i].value);
        }
    }
}

TEST_CASE("an event nobody subscribed to is counted, not sent", "[dispatcher][matching]") {
    asio::io_context io;
    recording_transport transport;
    test_dispatcher<> d(io.get_executor(), quick(), {.transport = transport});
    REQUIRE(d.store().create(hook("deletes", {event_type::remove})).has_value());
    test::run_async(io, [&]() -> asio::awaitable<void> {
        d.async_run(asio::detached);
        REQUIRE(d.publish(object_event::created("1", {{"x", 1}})).has_value());
        co_await stop(d);
    });
    CHECK(transport.requests().empty());
    CHECK(d.stats().unmatched == 1);
    CHECK(d.serializations() == 0);
}

TEST_CASE("publish refuses an invalid event and queues nothing", "[dispatcher][validation]") {
    asio::io_context io;
    test_dispatcher<> d(io.get_executor(), quick());
    auto r = d.publish(object_event::deleted("1", {}));
    REQUIRE(r.has_value()); // an empty object is still an object
    object_event bad;
    bad.type = event_type::update;
    bad.object_id = "2";
    auto const refused = d.publish(bad);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().code == error::invalid_field);
    CHECK(refused.error().field == "after");
    object_event no_id = object_event::created("", {});
    CHECK(d.publish(no_id).error().field == "object_id");
    CHECK(d.stats().published == 1);
    CHECK(d.source().size() == 1);
}

TEST_CASE("a full queue is an error from publish and a wait in async_publish",
          "[dispatcher][backpressure]") {
    asio::io_context io;
    recording_transport transport;
    dispatcher_params p = quick();
    p.intake.capacity = 2;
    test_dispatcher<> d(io.get_executor(), p, {.transport = transport});
    REQUIRE(d.store().create(hook("all")).has_value());

    // Not running yet: nothing drains the queue.
    REQUIRE(d.publish(object_event::created("1", {})).has_value());
    REQUIRE(d.publish(object_event::created("2", {})).has_value());
    auto const full = d.publish(object_event::created("3", {}));
    REQUIRE_FALSE(full.has_value());
    CHECK(full.error().code == error::queue_full);
    CHECK(full.error().message.find("full") != std::string::npos);
    CHECK(d.stats().published == 2);

    test::run_async(io, [&]() -> asio::awaitable<void> {
        bool published = false;
        // async_publish waits for room instead of failing...
        asio::co_spawn(
            io,
            [&]() -> asio::awaitable<void> {
                auto r = co_await d.async_publish(object_event::created("4", {}));
                CHECK(r.has_value());
                published = true;
            },
            asio::detached);
        asio::steady_timer t(io, 20ms);
        co_await t.async_wait(asio::use_awaitable);
        CHECK_FALSE(published);
        // ...and gets it once the dispatcher runs.
        d.async_run(asio::detached);
        co_await until([&] { return published && d.stats().delivered == 3; });
        co_await stop(d);
    });
    std::set<std::string> objects;
    for (auto const& e : d.log().query({}).entries)
        objects.insert(e.object_id);
    CHECK(objects == std::set<std::string>{"1", "2", "4"});

    // After stop, publish says so.
    auto const after = d.publish(object_event::created("5", {}));
    REQUIRE_FALSE(after.has_value());
    CHECK(after.error().code == error::stopped);
}

TEST_CASE("max_pending keeps events in the intake queue while deliveries wait",
          "[dispatcher][backpressure]") {
    asio::io_context io;
    recording_transport transport;
    transport.latency([](http_request const&) { return duration(5ms); });
    dispatcher_params p = quick();
    p.intake.capacity = 3;
    p.scheduling.lane_concurrency = 1;
    p.max_pending = 2;
    test_dispatcher<> d(io.get_executor(), p, {.transport = transport});
    REQUIRE(d.store().create(hook("slow")).has_value());

    std::uint64_t most_pending = 0, most_queued = 0;
    test::run_async(io, [&]() -> asio::awaitable<void> {
        d.async_run(asio::detached);
        for (int i = 0; i < 12; ++i) {
            auto r = co_await d.async_publish(object_event::created(std::to_string(i), {}));
            CHECK(r.has_value());
            auto const s = d.stats();
            most_pending = std::max(most_pending, s.pending);
            most_queued = std::max(most_queued, s.queued);
        }
        co_await until([&] { return d.stats().delivered == 12; });
        co_await stop(d);
    });
    // Two waiting plus the one on the wire; the rest waited as events: in the intake queue
    // (3) or taken by the dispatcher and not yet matched (at most one batch, here 3).
    CHECK(most_pending <= 3);
    CHECK(most_queued >= 3);
    CHECK(most_queued <= 6);
    auto const sent = transport.requests();
    REQUIRE(sent.size() == 12);
    std::vector<std::string> order;
    for (auto const& e : d.log().query({.limit = 100}).entries)
        order.insert(order.begin(), e.object_id);
    CHECK(order ==
          std::vector<std::string>{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11"});
}

TEST_CASE("a retry goes to the webhook as it is now", "[dispatcher][retry]") {
    asio::io_context io;
    recording_transport transport;
    transport.respond([](http_request const& r) {
        send_result s;
        s.status = r.url.find("/new") != std::string::npos ? 200 : 500;
        return s;
    });
    manual_dispatcher d(io.get_executor(), quick({0ms, 5min, 5min}), {.transport = transport});
    auto const moved = d.store().create(hook("moved")).value();
    auto const paused = d.store().create(hook("paused")).value();
    auto const removed = d.store().create(hook("removed")).value();

    test::run_async(io, [&]() -> asio::awaitable<void> {
        d.async_run(asio::detached);
        REQUIRE(d.publish(object_event::created("1", {})).has_value());
        co_await until([&] { return d.stats().retrying == 3; });
        // While they wait: one webhook moves, one is switched off, one is deleted.
        auto p = hook("moved");
        p.url = "http://receiver.test/new";
        REQUIRE(d.store().update(moved.id, p).has_value());
        auto off = hook("paused");
        off.active = false;
        REQUIRE(d.store().update(paused.id, off).has_value());
        REQUIRE(d.store().remove(removed.id).has_value());
        CHECK(transport.requests().size() == 3); // nothing retried before its time
        manual_clock::advance(5min);
        co_await until([&] { return d.stats().pending == 0; });
        co_await stop(d);
    });

    auto entries_for = [&](webhook_id id) {
        log_query q;
        q.webhook = id;
        return d.log().query(q).entries; // newest first
    };
    auto m = entries_for(moved.id);
    REQUIRE(m.size() == 2);
    CHECK(m[0].result == outcome::delivered);
    CHECK(m[0].url == "http://receiver.test/new");
    CHECK(m[1].url == "http://receiver.test/moved");
    auto pa = entries_for(paused.id);
    REQUIRE(pa.size() == 2);
    CHECK(pa[0].result == outcome::failed);
    CHECK(pa[0].error == "not retried: the webhook was deactivated");
    auto rm = entries_for(removed.id);
    REQUIRE(rm.size() == 2);
    CHECK(rm[0].result == outcome::failed);
    CHECK(rm[0].error == "not retried: the webhook was deleted");
    CHECK(rm[0].webhook_name == "removed");  // readable after deletion
    CHECK(transport.requests().size() == 4); // 3 first attempts + 1 retry to the new URL
}

TEST_CASE("retries follow the schedule and then fail", "[dispatcher][retry]") {
    asio::io_context io;
    recording_transport transport;
    transport.respond([](http_request const&) {
        send_result s;
        s.status = 503;
        return s;
    });
    manual_dispatcher d(io.get_executor(), quick({0ms, 5min, 30min}), {.transport = transport});
    REQUIRE(d.store().create(hook("down")).has_value());
    test::run_async(io, [&]() -> asio::awaitable<void> {
        d.async_run(asio::detached);
        REQUIRE(d.publish(object_event::created("1", {})).has_value());
        co_await until([&] { return d.stats().retrying == 1; });
        manual_clock::advance(5min - 1ms);
        co_await test::settle(io);
        CHECK(d.stats().attempts == 1); // not a millisecond early
        manual_clock::advance(1ms);
        co_await until([&] { return d.stats().attempts == 2 && d.stats().retrying == 1; });
        manual_clock::advance(30min);
        co_await until([&] { return d.stats().failed == 1; });
        co_await stop(d);
    });
    auto log = d.log().query({}).entries;
    REQUIRE(log.size() == 3);
    std::reverse(log.begin(), log.end());
    CHECK(log[0].result == outcome::retrying);
    CHECK(log[1].result == outcome::retrying);
    CHECK(log[2].result == outcome::failed);
    CHECK(log[2].error == "receiver answered HTTP 503 (gave up after 3 attempts)");
    // jitter is 0 and the clock moves only when told: each next attempt is exactly the
    // scheduled delay after the failure, and starts exactly then
    CHECK(*log[0].next_attempt_at - log[0].started_at == 5min);
    CHECK(log[1].started_at == *log[0].next_attempt_at);
    CHECK(*log[1].next_attempt_at - log[1].started_at == 30min);
    CHECK(log[2].started_at == *log[1].next_attempt_at);
    auto const reqs = transport.requests();
    REQUIRE(reqs.size() == 3);
    for (std::size_t i = 0; i < 3; ++i)
        CHECK(reqs[i].header("herald-attempt") == std::to_string(i + 1));
}

TEST_CASE("stop abandons what cannot finish and logs it", "[dispatcher][lifecycle]") {
    asio::io_context io;
    recording_transport transport;
    transport.latency([](http_request const& r) {
        return r.url.find("slow") != std::string::npos ? duration(10s) : duration(0);
    });
    test_dispatcher<> d(io.get_executor(), quick({0ms}), {.transport = transport});
    REQUIRE(d.store().create(hook("slow")).has_value());
    REQUIRE(d.store().create(hook("fast")).has_value());
    stop_report report;
    test::run_async(io, [&]() -> asio::awaitable<void> {
        d.async_run(asio::detached);
        for (int i = 0; i < 10; ++i)
            REQUIRE(d.publish(object_event::created(std::to_string(i), {})).has_value());
        co_await until([&] { return d.stats().delivered == 10; });
        report = co_await stop(d, 50ms); // far less than the slow receiver's 10 s
    });
    CHECK_FALSE(report.drained);
    CHECK(report.abandoned.size() == 10); // 8 in flight cancelled + 2 never started
    auto const s = d.stats();
    CHECK(s.delivered == 10);
    CHECK(s.failed == 10);
    CHECK(s.pending == 0);
    CHECK(s.in_flight == 0);
    log_query q;
    q.result = outcome::failed;
    auto const failed = d.log().query(q).entries;
    REQUIRE(failed.size() == 10);
    for (auto const& e : failed)
        CHECK(e.error.find("abandoned at shutdown") != std::string::npos);
}

TEST_CASE("stop without run reports nothing pending", "[dispatcher][lifecycle]") {
    asio::io_context io;
    test_dispatcher<> d(io.get_executor(), quick());
    auto f = d.async_stop(1s, asio::use_future);
    io.run();
    CHECK(f.get().drained);
}

TEST_CASE("a transport that throws cannot lose a delivery", "[dispatcher][robustness]") {
    asio::io_context io;
    recording_transport transport;
    transport.respond(
        [](http_request const&) -> send_result { throw std::runtime_error("transport exploded"); });
    test_dispatcher<> d(io.get_executor(), quick(), {.transport = transport});
    REQUIRE(d.store().create(hook("x")).has_value());
    test::run_async(io, [&]() -> asio::awaitable<void> {
        d.async_run(asio::detached);
        REQUIRE(d.publish(object_event::created("1", {})).has_value());
        co_await until([&] { return d.stats().failed == 1; });
        co_await stop(d);
    });
    auto const log = d.log().query({}).entries;
    REQUIRE(log.size() == 1);
    CHECK(log[0].error == "internal error: transport exploded");
}

TEST_CASE("an io_context run by several threads delivers everything once",
          "[dispatcher][threads]") {
    asio::io_context io;
    recording_transport transport;
    transport.latency([](http_request const&) { return duration(1); });
    test_dispatcher<> d(io.get_executor(), quick(), {.transport = transport});
    for (int i = 0; i < 3; ++i)
        REQUIRE(d.store().create(hook("h" + std::to_string(i))).has_value());
    d.async_run(asio::detached);
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; ++i)
        threads.emplace_back([&] { io.run(); });
    // two producers on their own threads (Catch's assertions are not thread-safe: counted here,
    // checked on this thread)
    std::vector<std::thread> producers;
    std::atomic<int> refused{0};
    for (int p = 0; p < 2; ++p)
        producers.emplace_back([&, p] {
            for (int i = 0; i < 500; ++i) {
                auto e = object_event::created(std::to_string(p * 1000 + i), {});
                auto f = asio::co_spawn(io, d.async_publish(std::move(e)), asio::use_future);
                if (!f.get().has_value())
                    ++refused;
            }
        });
    for (auto& t : producers)
        t.join();
    CHECK(refused == 0);
    auto const until_time = std::chrono::steady_clock::now() + 20s;
    while (d.stats().delivered < 3000 && std::chrono::steady_clock::now() < until_time)
        std::this_thread::sleep_for(5ms);
    auto report = d.async_stop(5s, asio::use_future).get();
    for (auto& t : threads)
        t.join();
    CHECK(report.drained);
    auto const s = d.stats();
    CHECK(s.published == 1000);
    CHECK(s.delivered == 3000);
    CHECK(s.attempts == 3000);
    CHECK(s.pending == 0);
    CHECK(transport.requests().size() == 3000);
    log_query q;
    q.limit = 1000;
    std::set<std::string> ids;
    std::optional<std::uint64_t> cursor;
    do {
        q.before_seq = cursor;
        auto page = d.log().query(q);
        for (auto const& e : page.entries)
            ids.insert(e.delivery_id);
        cursor = page.next;
    } while (cursor);
    CHECK(ids.size() == 3000);
}

namespace {
// A custom store: the memory store plus a journal (not a durable one) that notes what the
// dispatcher told it.
struct journaling_store : memory_store {
    std::shared_ptr<std::vector<std::string>> calls = std::make_shared<std::vector<std::string>>();
    journaling_store& journal() { return *this; }
    template <class Token>
    auto async_enqueue(std::vector<delivery> ds, Token&& token) {
        for (auto const& d : ds)
            calls->push_back("enqueue " + d.hook->name);
        return async_ready(result<void>(), std::forward<Token>(token));
    }
    template <class Token>
    auto async_claim(time_point, std::size_t, Token&& token) {
        return async_ready(result<std::vector<delivery>>(std::vector<delivery>()),
                           std::forward<Token>(token));
    }
    void reschedule(delivery const& d) {
        calls->push_back("reschedule " + d.hook->name + " after " + std::to_string(d.attempts));
    }
    void complete(delivery const& d, outcome o) {
        calls->push_back("complete " + d.hook->name + " " + std::string(to_string(o)));
    }
};
static_assert(journaled_store<journaling_store> && !durable_journal<journaling_store>);
} // namespace

TEST_CASE("a custom store sees every delivery enqueued, rescheduled and completed",
          "[dispatcher][policies]") {
    asio::io_context io;
    recording_transport transport;
    int n = 0;
    transport.respond([&](http_request const&) {
        send_result s;
        s.status = ++n == 1 ? 500 : 204;
        return s;
    });
    journaling_store store;
    auto calls = store.calls;
    REQUIRE(store.create(hook("j")).has_value());
    test_dispatcher<json_serializer, journaling_store> d(
        io.get_executor(), quick(), {.store = std::move(store), .transport = transport});
    test::run_async(io, [&]() -> asio::awaitable<void> {
        d.async_run(asio::detached);
        REQUIRE(d.publish(object_event::created("1", {})).has_value());
        co_await until([&] { return d.stats().delivered == 1; });
        co_await stop(d);
    });
    CHECK(*calls ==
          std::vector<std::string>{"enqueue j", "reschedule j after 1", "complete j delivered"});
}

TEST_CASE("async_deliver_once sends one request to one webhook, even an inactive one",
          "[dispatcher][manual]") {
    asio::io_context io;
    recording_transport transport;
    transport.respond([](http_request const& r) {
        send_result s;
        s.status = r.url.find("/down") != std::string::npos ? 503 : 200;
        return s;
    });
    test_dispatcher<> d(io.get_executor(), quick(), {.transport = transport});
    auto const up = d.store().create(hook("up")).value();
    auto const paused = d.store().create(hook("paused", event_type_set::all(), false)).value();
    auto const down = d.store().create(hook("down")).value();
    auto const other = d.store().create(hook("other")).value(); // must receive nothing

    // A named event per call: g++ 12 mishandles temporaries inside co_await expressions.
    auto const probe = object_event::created("t", {{"test", true}});
    auto once = [&](webhook_id id) -> asio::awaitable<result<log_entry>> {
        auto r = co_await d.async_deliver_once(id, probe, asio::use_awaitable);
        co_return r;
    };

    // Before async_run there is nobody to wait for the attempt: refused, nothing sent.
    test::run_async(io, [&]() -> asio::awaitable<void> {
        auto r = co_await once(up.id);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().code == error::stopped);
    });
    CHECK(transport.requests().empty());

    std::string first_event;
    test::run_async(io, [&]() -> asio::awaitable<void> {
        d.async_run(asio::detached);
        auto ok = co_await once(up.id);
        REQUIRE(ok.has_value());
        CHECK(ok->result == outcome::delivered);
        CHECK(ok->seq != 0); // found again in the log
        CHECK(ok->attempt == 1);
        first_event = ok->event_id;

        auto off = co_await once(paused.id);
        REQUIRE(off.has_value());
        CHECK(off->result == outcome::delivered);
        CHECK(off->warning == "sent by hand while the webhook is inactive");

        auto bad = co_await once(down.id);
        REQUIRE(bad.has_value());
        CHECK(bad->result == outcome::failed); // not retrying: a manual attempt is one attempt
        CHECK(bad->status == 503);
        CHECK(bad->error == "receiver answered HTTP 503 (sent by hand: not retried)");

        auto missing = co_await once(999);
        REQUIRE_FALSE(missing.has_value());
        CHECK(missing.error().code == error::not_found);

        auto const no_id = object_event::created("", {});
        auto invalid = co_await d.async_deliver_once(up.id, no_id, asio::use_awaitable);
        REQUIRE_FALSE(invalid.has_value());
        CHECK(invalid.error().field == "object_id");

        // Redelivery: the same event id and body under a new delivery id.
        auto const sent = transport.requests().front();
        object_event replay;
        replay.id = first_event;
        replay.object_id = "t";
        payload body;
        body.body = *sent.body;
        body.content_type = sent.content_type;
        auto ev = std::make_shared<prepared_event const>(
            prepared_event{std::move(replay), std::move(body)});
        auto again = co_await d.async_deliver_once(up.id, ev, asio::use_awaitable);
        REQUIRE(again.has_value());
        CHECK(again->event_id == first_event);
        CHECK(again->delivery_id != ok->delivery_id);
        co_await stop(d);
    });

    auto const reqs = transport.requests();
    REQUIRE(reqs.size() == 4);
    CHECK(reqs[3].header("webhook-id") == first_event);
    CHECK(*reqs[3].body == *reqs[0].body);
    CHECK(reqs[3].header("herald-delivery") != reqs[0].header("herald-delivery"));
    for (auto const& r : reqs)
        CHECK(r.url != "http://receiver.test/other");
    (void)other;
    auto const s = d.stats();
    CHECK(s.attempts == 4);
    CHECK(s.in_flight == 0);
    CHECK(s.delivered == 0); // counters of published deliveries; manual ones are in the log
}

TEST_CASE("an attempt's log entry names the content type it was sent with (issue 12, defect 12)",
          "[dispatcher][manual][log][headers]") {
    asio::io_context io;
    recording_transport transport;
    test_dispatcher<> d(io.get_executor(), quick(), {.transport = transport});
    auto const up = d.store().create(hook("up")).value();
    object_event e;
    e.id = "evt_01M8F3Q9KX000J9W7T0FRJ4EZA";
    e.object_id = "42";
    payload body;
    body.body = R"({"specversion":"1.0"})";
    body.content_type = "application/cloudevents+json; charset=utf-8";
    body.headers = {{"ce-specversion", "1.0"}};
    auto const ev =
        std::make_shared<prepared_event const>(prepared_event{std::move(e), std::move(body)});
    std::optional<log_entry> entry;
    test::run_async(io, [&]() -> asio::awaitable<void> {
        d.async_run(asio::detached);
        auto r = co_await d.async_deliver_once(up.id, ev, asio::use_awaitable);
        REQUIRE(r.has_value());
        entry = std::move(*r);
        co_await stop(d);
    });
    REQUIRE(transport.requests().size() == 1);
    CHECK(transport.requests()[0].content_type == "application/cloudevents+json; charset=utf-8");
    REQUIRE(entry);
    REQUIRE_FALSE(entry->request_headers.empty());
    CHECK(entry->request_headers.front().name == "Content-Type");
    CHECK(entry->request_headers.front().value == "application/cloudevents+json; charset=utf-8");
    CHECK(entry->request_headers.back().name == "ce-specversion");
    auto const logged = d.log().query({});
    REQUIRE(logged.entries.size() == 1);
    CHECK(logged.entries[0].request_headers.front().value ==
          "application/cloudevents+json; charset=utf-8");
}

/// A sink whose `record` does not report the seq it assigns is not a log_sink: Test and
/// Redeliver link to the entry by it, and no log is searched for it again.
class void_record_log {
public:
    void record(log_entry e) { inner_.record(std::move(e)); }
    log_page query(log_query const& q) const { return inner_.query(q); }

private:
    memory_log inner_;
};
static_assert(!log_sink<void_record_log>);

/// Two manual attempts through a dispatcher logging to `log`: the entries they handed back,
/// and the log afterwards in `log_out`.
template <class Log>
std::vector<log_entry> deliver_twice(Log log, std::optional<Log>& log_out) {
    asio::io_context io;
    recording_transport transport;
    basic_dispatcher<memory_store, channel_source, json_serializer, recording_transport, Log> d(
        io.get_executor(), quick(), {.transport = transport, .log = std::move(log)});
    auto const up = d.store().create(hook("up")).value();
    auto const probe = object_event::created("t", {{"test", true}});
    std::vector<log_entry> out;
    test::run_async(io, [&]() -> asio::awaitable<void> {
        d.async_run(asio::detached);
        for (int i = 0; i < 2; ++i) {
            auto r = co_await d.async_deliver_once(up.id, probe, asio::use_awaitable);
            REQUIRE(r.has_value());
            out.push_back(std::move(*r));
        }
        co_await stop(d);
    });
    log_out.emplace(std::move(d.log()));
    return out;
}

TEST_CASE("async_deliver_once hands back the entry with the seq its log assigned",
          "[dispatcher][manual][log]") {
    SECTION("sqlite_log: written later on its own thread, the seq is known at once") {
        test::temp_dir dir;
        sqlite_log_params p;
        p.path = dir.file("log.db");
        std::optional<sqlite_log> kept;
        auto const got = deliver_twice(sqlite_log::open(p).value(), kept);
        REQUIRE(got.size() == 2);
        CHECK(got[0].seq != 0);
        CHECK(got[1].seq > got[0].seq);
        kept->flush();
        for (auto const& e : got) {
            log_query q;
            q.before_seq = e.seq + 1;
            q.limit = 1;
            auto const page = kept->query(q);
            REQUIRE(page.entries.size() == 1);
            CHECK(page.entries[0].seq == e.seq);
            CHECK(page.entries[0].delivery_id == e.delivery_id);
        }
    }
    SECTION("memory_log") {
        std::optional<memory_log> kept;
        auto const got = deliver_twice(memory_log(), kept);
        REQUIRE(got.size() == 2);
        auto const page = kept->query(log_query{});
        REQUIRE(page.entries.size() == 2);
        CHECK(got[1].seq == page.entries[0].seq); // newest first
        CHECK(got[0].seq == page.entries[1].seq);
        CHECK(got[0].seq != 0);
    }
}

} // namespace herald_test_dispatcher

namespace herald_test_dispatcher {

TEST_CASE("a dead and a hanging webhook park their backlog and shed beyond max_parked; the "
          "healthy one never waits",
          "[dispatcher][backpressure][isolation]") {
    asio::io_context io;
    recording_transport transport;
    transport.respond([](http_request const& r) {
        send_result s;
        s.status = r.url.ends_with("/dead") ? 500 : 200;
        return s;
    });
    transport.latency([](http_request const& r) {
        return r.url.ends_with("/hang") ? duration(10min) : duration(0ms);
    });
    dispatcher_params p = quick({0ms});
    p.max_pending = 16;
    p.max_parked = 40;
    p.health.failure_threshold = 2;
    p.scheduling.lane_concurrency = 2;
    p.scheduling.stall_after = 30ms;
    test_dispatcher<> d(io.get_executor(), p, {.transport = transport});
    auto const ok = d.store().create(hook("ok")).value().id;
    auto const dead = d.store().create(hook("dead")).value().id;
    auto const hang = d.store().create(hook("hang")).value().id;

    int const events = 300;
    std::size_t most_parked = 0;
    stop_report report;
    test::run_async(io, [&]() -> asio::awaitable<void> {
        d.async_run(asio::detached);
        asio::steady_timer pace(io);
        for (int i = 0; i < events; ++i) {
            // Before the fix the intake stopped once the hanging lane held max_pending: this
            // wait never ended.
            auto r = co_await d.async_publish(object_event::created(std::to_string(i), {}));
            CHECK(r.has_value());
            if (i % 10 == 9) {
                pace.expires_after(2ms);
                co_await pace.async_wait(asio::use_awaitable);
            }
            most_parked = std::max<std::size_t>(most_parked, d.stats().parked);
        }
        log_query q;
        q.webhook = ok;
        q.result = outcome::delivered;
        q.limit = log_query::max_limit;
        co_await until([&] { return d.log().query(q).entries.size() == std::size_t(events); });
        report = co_await stop(d, 0ms);
    });
    auto const s = d.stats();
    CHECK(s.delivered == std::uint64_t(events));
    CHECK(s.shed > 0);
    CHECK(most_parked > 0);
    // What failing lanes hold (shed beyond max_parked) and what waits behind working ones (the
    // intake waits beyond max_parked), each passed by one event's fan-out at most, plus what a
    // lane brings along when it becomes impaired (what it had behind and in the budget).
    CHECK(most_parked <= 3 * p.max_parked + p.max_pending + 4 * 3);
    CHECK(s.parked == 0); // all ended at the stop
    CHECK(s.pending == 0);

    // Every (event, webhook) ends in the log exactly once with a final outcome.
    std::map<std::pair<std::string, webhook_id>, std::vector<log_entry>> by;
    log_query all;
    all.limit = log_query::max_limit;
    for (;;) {
        auto page = d.log().query(all);
        for (auto& e : page.entries)
            by[{e.object_id, e.webhook}].push_back(std::move(e));
        if (!page.next)
            break;
        all.before_seq = page.next;
    }
    std::size_t shed = 0;
    for (int i = 0; i < events; ++i) {
        for (auto id : {ok, dead, hang}) {
            auto const& es = by[{std::to_string(i), id}];
            REQUIRE(es.size() == 1);
            auto const& e = es.front();
            if (id == ok) {
                CHECK(e.result == outcome::delivered);
                continue;
            }
            CHECK(e.result == outcome::failed);
            if (e.error.starts_with("shed, not queued: ")) {
                ++shed;
                CHECK(e.attempt == 0);
                CHECK(e.error.find(id == dead ? "is failing (its circuit is open or half-open)"
                                              : "is not answering (2 attempts in flight") !=
                      std::string::npos);
                CHECK(e.error.find("what failing webhooks hold reached max_parked (40)") !=
                      std::string::npos);
            }
        }
    }
    CHECK(shed == s.shed);
    CHECK_FALSE(report.drained);
}

} // namespace herald_test_dispatcher
