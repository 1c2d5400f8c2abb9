#include "models.hpp"
#include "run_async.hpp"
#include "temp_db.hpp"

#include <herald/basic_dispatcher.hpp>
#include <herald/serializer/datagerry_serializer.hpp>
#include <herald/serializer/serializer_set.hpp>
#include <herald/sqlite/sqlite_log.hpp>
#include <herald/sqlite/sqlite_store.hpp>
#include <herald/transport/recording_transport.hpp>

#include <catch2/catch.hpp>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

// The delivery queue in the file, and a dispatcher over it (backlog, recovery, group commit).

// One namespace a file: the unit tests build as one translation unit (unity).
namespace herald_test_sqlite_journal {

using namespace std::chrono_literals;
using herald::test::delivery_for;
using herald::test::hook_params;
using herald::test::prepared;
using herald::test::raw_db;
using herald::test::temp_dir;

using herald::test::open_store;

TEST_CASE("sqlite_store keeps the delivery queue in its file: a row per delivery, one per event",
          "[sqlite][store][queue]") {
    // What the journal hands back after the restart: test_conformance_journal.cpp.
    temp_dir dir;
    auto const path = dir.file("queue.db");
    herald::delivery_id kept_id;
    {
        auto s = open_store(path);
        auto h1 = s.create(hook_params("one")).value();
        auto h2 = s.create(hook_params("two")).value();
        auto e1 = prepared("1", std::string(3000, 'x'));
        auto e2 = prepared("2", "{\"second\":true}");
        std::vector<herald::delivery> ds{delivery_for(e1, h1), delivery_for(e1, h2),
                                         delivery_for(e2, h1)};
        REQUIRE(s.enqueue(ds).has_value());
        {
            raw_db raw(path);
            CHECK(raw.value("SELECT count(*) FROM deliveries") == 3);
            CHECK(raw.value("SELECT count(*) FROM events") == 2); // one row per event
        }
        // e1 to h1 delivered; e2 to h1 failed for good; e1 to h2 waits for a retry
        s.complete(ds[0], herald::outcome::delivered);
        s.complete(ds[2], herald::outcome::failed);
        ds[1].attempts = 3;
        ds[1].due = herald::time_point(std::chrono::milliseconds(1'900'000'000'000));
        s.reschedule(ds[1]);
        kept_id = ds[1].id;
        REQUIRE(s.flush().has_value());
        raw_db raw(path);
        CHECK(raw.value("SELECT count(*) FROM deliveries") == 1);
        CHECK(raw.value("SELECT count(*) FROM events") == 1); // e2 has nothing left
        auto const st = s.stats();
        CHECK(st.failures == 0);
        CHECK(st.operations >= 6);
        CHECK(st.commits >= 1);
        CHECK(st.commits <= st.operations);
    }
    auto s = open_store(path);
    CHECK(s.recovered() == 1);
    auto got = s.claim(herald::clock::now(), 10);
    REQUIRE(got.size() == 1);
    CHECK(got[0].id == kept_id);
    CHECK(s.recovered() == 0);
}

TEST_CASE("sqlite_store async_enqueue completes on the caller's executor after the commit",
          "[sqlite][store][queue]") {
    temp_dir dir;
    auto const path = dir.file("async.db");
    boost::asio::io_context io; // outlives the store, whose thread completes on it
    auto s = open_store(path);
    auto h = s.create(hook_params("one")).value();
    herald::test::run_async(io, [&]() -> boost::asio::awaitable<void> {
        std::vector<herald::delivery> ds{delivery_for(prepared("a", "{}"), h),
                                         delivery_for(prepared("b", "{}"), h)};
        auto op = s.async_enqueue(std::move(ds), boost::asio::use_awaitable);
        auto r = co_await std::move(op);
        CHECK(r.has_value());
        raw_db raw(path);
        CHECK(raw.value("SELECT count(*) FROM deliveries") == 2);
    });
}

// ---- with a dispatcher ----

namespace {

using sqlite_dispatcher =
    herald::basic_dispatcher<herald::sqlite_store, herald::channel_source, herald::json_serializer,
                             herald::recording_transport, herald::memory_log>;

herald::dispatcher_params params(std::vector<herald::duration> schedule) {
    herald::dispatcher_params p;
    p.retry.schedule = std::move(schedule);
    p.retry.jitter = 0;
    return p;
}

} // namespace

TEST_CASE("a dispatcher on sqlite_store acknowledges publish after the commit and resends "
          "after a restart with the same webhook-id",
          "[sqlite][dispatcher][recovery]") {
    temp_dir dir;
    auto const path = dir.file("dispatch.db");
    std::vector<std::string> ids;
    {
        auto store = open_store(path);
        REQUIRE(store.create(hook_params("receiver")).has_value());
        // A receiver that never answers: every attempt is in flight when the process stops.
        herald::recording_transport hanging;
        hanging.latency([](herald::http_request const&) { return herald::duration(1h); });
        boost::asio::io_context io;
        sqlite_dispatcher d(io.get_executor(), params({0ms, 1h}),
                            {.store = std::move(store), .transport = hanging});

        // Before async_run: publish returns once the event is in the file.
        for (int i = 0; i < 3; ++i) {
            auto id = d.publish(herald::object_event::created(std::to_string(i), {{"i", i}}));
            REQUIRE(id.has_value());
            ids.push_back(*id);
            raw_db raw(path);
            CHECK(raw.value("SELECT count(*) FROM deliveries") == i + 1);
            CHECK(raw.text("SELECT id FROM events ORDER BY seq DESC LIMIT 1") == *id);
        }
        // async_publish too, from a coroutine
        herald::test::run_async(io, [&]() -> boost::asio::awaitable<void> {
            auto op = d.async_publish(herald::object_event::created("3", {{"i", 3}}));
            auto id = co_await std::move(op);
            REQUIRE(id.has_value());
            ids.push_back(*id);
        });
        {
            raw_db raw(path);
            CHECK(raw.value("SELECT count(*) FROM deliveries") == 4);
        }
        d.async_run(boost::asio::detached);
        std::thread t([&] { io.run(); });
        auto const until = std::chrono::steady_clock::now() + 20s;
        while (d.stats().in_flight < 4 && std::chrono::steady_clock::now() < until)
            std::this_thread::sleep_for(5ms);
        CHECK(d.stats().in_flight == 4);
        auto report = d.async_stop(0ms, boost::asio::use_future).get();
        t.join();
        CHECK_FALSE(report.drained);
        CHECK(report.abandoned.size() == 4);
        // nothing was logged as failed: the cancelled attempts stay in the file
        herald::log_query q;
        q.result = herald::outcome::failed;
        CHECK(d.log().query(q).entries.empty());
        q.result = herald::outcome::retrying;
        auto const cancelled = d.log().query(q).entries;
        REQUIRE(cancelled.size() == 4);
        for (auto const& e : cancelled)
            CHECK_THAT(e.error, Catch::EndsWith("; abandoned at shutdown (sent again after the "
                                                "next start)"));
        CHECK(d.publish(herald::object_event::created("late", {})).error().code ==
              herald::error::stopped);
        REQUIRE(d.store().flush().has_value());
        raw_db raw(path);
        CHECK(raw.value("SELECT count(*) FROM deliveries WHERE attempts = 1") == 4);
    }
    // The next process: the same file, a receiver that answers 204.
    auto store = open_store(path);
    CHECK(store.recovered() == 4);
    herald::recording_transport ok;
    boost::asio::io_context io;
    sqlite_dispatcher d(io.get_executor(), params({0ms, 1h}),
                        {.store = std::move(store), .transport = ok});
    d.async_run(boost::asio::detached);
    std::thread t([&] { io.run(); });
    auto const until = std::chrono::steady_clock::now() + 20s;
    while (d.stats().delivered < 4 && std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(5ms);
    auto report = d.async_stop(5s, boost::asio::use_future).get();
    t.join();
    CHECK(report.drained);
    auto const sent = ok.requests();
    REQUIRE(sent.size() == 4);
    std::set<std::string> seen;
    for (auto const& r : sent) {
        seen.insert(std::string(r.header("webhook-id")));
        CHECK(r.header("herald-attempt") == "2"); // the second attempt of each
        CHECK_THAT(*r.body, Catch::Contains("\"object_id\":\""));
    }
    CHECK(seen == std::set<std::string>(ids.begin(), ids.end()));
    auto const entries = d.log().query({}).entries;
    REQUIRE(entries.size() == 4);
    for (auto const& e : entries) {
        CHECK(e.result == herald::outcome::delivered);
        CHECK(e.attempt == 2);
        CHECK(e.webhook_name == "receiver");
    }
    REQUIRE(d.store().flush().has_value());
    raw_db raw(path);
    CHECK(raw.value("SELECT count(*) FROM deliveries") == 0);
    CHECK(raw.value("SELECT count(*) FROM events") == 0);
}

TEST_CASE("a dispatcher on sqlite_store delivers while it runs and empties the queue",
          "[sqlite][dispatcher]") {
    temp_dir dir;
    auto const path = dir.file("run.db");
    auto store = open_store(path);
    REQUIRE(store.create(hook_params("a")).has_value());
    REQUIRE(store.create(hook_params("b", "https://b.example.com/x", {herald::event_type::update}))
                .has_value());
    herald::recording_transport ok;
    boost::asio::io_context io;
    sqlite_dispatcher d(io.get_executor(), params({0ms}),
                        {.store = std::move(store), .transport = ok});
    d.async_run(boost::asio::detached);
    std::thread t([&] { io.run(); });
    // many publishers at once: their commits are shared
    std::vector<std::thread> producers;
    std::atomic<int> refused{0}; // Catch's assertions are not thread-safe: checked after the join
    for (int p = 0; p < 4; ++p)
        producers.emplace_back([&, p] {
            for (int i = 0; i < 25; ++i) {
                auto e = i % 2 ? herald::object_event::updated("o", {{"v", i}}, {{"v", i + 1}})
                               : herald::object_event::created("o", {{"p", p}});
                if (!d.publish(std::move(e)).has_value())
                    ++refused;
            }
        });
    for (auto& p : producers)
        p.join();
    CHECK(refused == 0);
    auto const until = std::chrono::steady_clock::now() + 20s;
    // 100 events to "a", the 48 updates also to "b"
    while (d.stats().delivered < 148 && std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(5ms);
    auto report = d.async_stop(5s, boost::asio::use_future).get();
    t.join();
    CHECK(report.drained);
    auto const s = d.stats();
    CHECK(s.published == 100);
    CHECK(s.delivered == 148);
    CHECK(s.failed == 0);
    CHECK(d.serializations() == 100);
    REQUIRE(d.store().flush().has_value());
    CHECK(d.store().stats().failures == 0);
    raw_db raw(path);
    CHECK(raw.value("SELECT count(*) FROM deliveries") == 0);
    CHECK(raw.value("SELECT count(*) FROM events") == 0);
}

TEST_CASE("publishes waiting at the same time share one commit", "[sqlite][dispatcher][group]") {
    temp_dir dir;
    auto const path = dir.file("group.db");
    auto store = herald::sqlite_store::open({.path = path, .busy_timeout = 60s});
    REQUIRE(store.has_value());
    REQUIRE(store->create(hook_params("receiver")).has_value());
    herald::recording_transport ok;
    boost::asio::io_context io;
    sqlite_dispatcher d(io.get_executor(), params({0ms}),
                        {.store = std::move(*store), .transport = ok});
    auto const before = d.store().stats().commits;

    // Another connection holds the write lock: the store's thread waits in its first commit
    // while the other publishes queue up behind it.
    constexpr int publishers = 16;
    raw_db other(path);
    other.exec("BEGIN EXCLUSIVE");
    std::vector<std::string> ids(publishers);
    std::vector<std::thread> threads;
    for (int i = 0; i < publishers; ++i)
        threads.emplace_back([&, i] {
            auto id = d.publish(herald::object_event::created(std::to_string(i), {{"i", i}}));
            if (id)
                ids[std::size_t(i)] = *id;
        });
    auto const until = std::chrono::steady_clock::now() + 20s;
    while (d.store().stats().queued < publishers && std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(2ms);
    CHECK(d.store().stats().queued == publishers);
    CHECK(d.stats().published == 0); // nobody is acknowledged before the commit
    other.exec("COMMIT");
    for (auto& t : threads)
        t.join();
    for (auto const& id : ids)
        CHECK_THAT(id, Catch::StartsWith("evt_"));
    CHECK(d.stats().published == publishers);
    auto const st = d.store().stats();
    CHECK(st.commits - before <= 2); // the one that was waiting, then all the others
    CHECK(st.failures == 0);
    raw_db raw(path);
    CHECK(raw.value("SELECT count(*) FROM deliveries") == publishers);
}

TEST_CASE("sqlite_store commits a completion ahead of a backlog of enqueues",
          "[sqlite][store][queue][latency]") {
    // Issue 12, defect 14: completions queued behind thousands of enqueues (each with its
    // event's body) reached the file seconds after their 2xx, and a crash re-sent them.
    temp_dir dir;
    auto const path = dir.file("backlog.db");
    boost::asio::io_context io; // the enqueues' handlers, run once everything is written
    auto s = herald::sqlite_store::open({.path = path, .max_batch = 100, .commit_interval = 1ms})
                 .value();
    auto const done_hook = s.create(hook_params("done")).value();
    auto const backlog_hook = s.create(hook_params("backlog")).value();
    auto const x = delivery_for(prepared("x", "{}"), done_hook);
    REQUIRE(s.enqueue(std::vector<herald::delivery>{x}).has_value());
    constexpr long long backlog = 4000;
    std::string const body(4096, 'b');
    std::vector<herald::delivery> waiting;
    for (long long i = 0; i < backlog; ++i)
        waiting.push_back(delivery_for(prepared("b" + std::to_string(i), body), backlog_hook));
    std::atomic<long long> enqueued{0};
    raw_db raw(path);
    // Another connection holds the write lock while they are queued, so that they are a
    // backlog (not written one by one as they come), and the completion is queued last. The
    // batch the database thread took before the lock let go is at most max_batch (100).
    raw.exec("BEGIN IMMEDIATE");
    for (auto& d : waiting)
        s.async_enqueue(std::vector<herald::delivery>{std::move(d)},
                        boost::asio::bind_executor(
                            io, [&](herald::result<void> r) { enqueued += r.has_value(); }));
    s.complete(x, herald::outcome::delivered); // queued after all of them
    raw.exec("COMMIT");
    // Watch the file: when x leaves it, how much of the backlog is in it?
    auto const hx = std::to_string(done_hook.id);
    auto const hb = std::to_string(backlog_hook.id);
    long long backlog_at_completion = -1;
    auto const until = std::chrono::steady_clock::now() + 60s;
    while (std::chrono::steady_clock::now() < until) {
        raw.exec("BEGIN"); // both counts from one snapshot
        auto const left = raw.value("SELECT count(*) FROM deliveries WHERE webhook_id = " + hx);
        auto const in_file = raw.value("SELECT count(*) FROM deliveries WHERE webhook_id = " + hb);
        raw.exec("COMMIT");
        if (left == 0) {
            backlog_at_completion = in_file;
            break;
        }
    }
    REQUIRE(s.flush().has_value());
    io.run();
    CHECK(enqueued == backlog);
    INFO("backlog committed before the completion: " << backlog_at_completion);
    REQUIRE(backlog_at_completion >= 0);
    // First in line, it went into the next transaction: not after 4,000 writes of 4 KiB.
    CHECK(backlog_at_completion < backlog / 2);
    CHECK(s.stats().max_completion_latency < 30s); // set, and sane
}

TEST_CASE("with a log's barrier, a completion leaves the store only after its attempt is in "
          "the log",
          "[sqlite][store][log][order]") {
    // Issue 12, defect 14: after a crash, every delivery has its outcome in the log or is still
    // in the queue (and is then sent and logged again).
    temp_dir dir;
    auto const store_path = dir.file("store.db");
    auto const log_path = dir.file("log.db");
    auto s = open_store(store_path);
    auto log = herald::sqlite_log::open({.path = log_path}).value();
    s.wait_for_log(log.barrier());
    auto const h = s.create(hook_params("one")).value();
    auto const x = delivery_for(prepared("x", "{}"), h);
    REQUIRE(s.enqueue(std::vector<herald::delivery>{x}).has_value());
    raw_db store_file(store_path);
    {
        // Another connection holds the log file's write lock: the log cannot write for now.
        raw_db lock(log_path);
        lock.exec("BEGIN IMMEDIATE");
        herald::log_entry e;
        e.delivery_id = x.id_string();
        e.event_id = x.event->event.id;
        e.webhook = h.id;
        e.result = herald::outcome::delivered;
        e.status = 204;
        log.record(e);                             // as the dispatcher does: first the log,
        s.complete(x, herald::outcome::delivered); // then the store
        std::this_thread::sleep_for(300ms);
        // Without the barrier the completion is committed at once, while the log's row is not.
        CHECK(store_file.value("SELECT count(*) FROM deliveries") == 1);
        lock.exec("ROLLBACK");
    }
    REQUIRE(s.flush().has_value());
    CHECK(store_file.value("SELECT count(*) FROM deliveries") == 0);
    raw_db log_file(log_path);
    CHECK(log_file.value("SELECT count(*) FROM log WHERE outcome = 0") == 1);
    CHECK(log.write_stats().failures == 0);
}

TEST_CASE("a dead webhook's backlog beyond its share waits in the file, not in memory, and is "
          "all delivered, in order, once it answers",
          "[sqlite][dispatcher][backlog]") {
    // Issue 12, defect 15: with --store sqlite, intake against a dead endpoint took memory
    // without bound (353 MiB at 300,000 events).
    temp_dir dir;
    auto const path = dir.file("backlog.db");
    auto store = open_store(path);
    REQUIRE(store.create(hook_params("dead", "https://dead.example.com/x")).has_value());
    REQUIRE(store.create(hook_params("healthy", "https://ok.example.com/x")).has_value());
    std::atomic<bool> answers{false};
    std::mutex m;
    std::vector<std::string> late; // first attempts to the dead one once it answers, in order
    herald::recording_transport t;
    t.respond([&](herald::http_request const& r) {
        herald::send_result s;
        bool const dead = r.url.find("dead") != std::string::npos;
        s.status = !dead || answers ? 204 : 503;
        if (dead && answers && r.header("herald-attempt") == "1") {
            std::lock_guard lock(m);
            late.emplace_back(r.header("webhook-id"));
        }
        return s;
    });
    auto p = params({0ms,  20ms, 20ms, 20ms, 20ms, 20ms, 20ms, 20ms, 20ms, 20ms,
                     20ms, 20ms, 20ms, 20ms, 20ms, 20ms, 20ms, 20ms, 20ms, 20ms});
    p.max_pending = 64;
    p.scheduling.lane_concurrency = 2;
    p.health.failure_threshold = 3;
    p.health.cool_down = 50ms;
    boost::asio::io_context io;
    sqlite_dispatcher d(io.get_executor(), p, {.store = std::move(store), .transport = t});
    d.async_run(boost::asio::detached);
    std::thread th([&] { io.run(); });
    constexpr int events = 3000;
    std::uint64_t most_in_memory = 0, most_stored = 0;
    std::vector<std::string> ids;
    for (int i = 0; i < events; ++i) {
        auto id = d.publish(herald::object_event::created(std::to_string(i), {{"i", i}}));
        REQUIRE(id.has_value());
        ids.push_back(*id);
        auto const s = d.stats();
        most_in_memory = std::max(most_in_memory, s.pending - s.stored);
        most_stored = std::max(most_stored, s.stored);
    }
    // The healthy webhook had every event meanwhile.
    auto const until = std::chrono::steady_clock::now() + 30s;
    while (d.stats().delivered < events && std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(5ms);
    auto before = d.stats();
    INFO("most in memory " << most_in_memory << ", most stored " << most_stored);
    CHECK(before.delivered == events); // the healthy ones; none of the dead one's
    // Memory holds about max_pending (each lane its share, 32, and what is in flight); the
    // rest of the dead webhook's backlog is in the file only. stats() reads its counters one
    // at a time: an event's two deliveries count as pending a moment before the dead one's
    // counts as stored, so a sample taken then sees one more in memory than there is.
    CHECK(most_in_memory <= 2 * p.max_pending + 1);
    CHECK(before.stored >= events - 2 * p.max_pending);
    CHECK(before.pending == events); // the stored ones count as pending
    REQUIRE(d.store().flush().has_value());
    {
        raw_db raw(path);
        CHECK(raw.value("SELECT count(*) FROM deliveries WHERE webhook_id = 1") == events);
    }
    // It answers again: everything is loaded back as its lane makes room, and delivered.
    answers = true;
    auto const until2 = std::chrono::steady_clock::now() + 60s;
    while (d.stats().delivered < 2 * events && std::chrono::steady_clock::now() < until2)
        std::this_thread::sleep_for(5ms);
    auto report = d.async_stop(5s, boost::asio::use_future).get();
    th.join();
    CHECK(report.drained);
    CHECK(report.left_in_store == 0);
    auto const s = d.stats();
    CHECK(s.delivered == 2 * events);
    CHECK(s.failed == 0);
    CHECK(s.pending == 0);
    CHECK(s.stored == 0);
    // Each event reached the dead webhook; those that waited in the file went on their first
    // attempt once it answered, in publish order (loaded in journal order), bar neighbours
    // that swap places in a lane of two.
    std::set<std::string> want(ids.begin(), ids.end());
    std::set<std::string> got;
    for (auto const& r : t.requests())
        if (r.url.find("dead") != std::string::npos)
            got.insert(std::string(r.header("webhook-id")));
    CHECK(got == want);
    std::map<std::string, std::size_t> position;
    for (std::size_t i = 0; i < ids.size(); ++i)
        position[ids[i]] = i;
    std::lock_guard lock(m);
    INFO("first attempts once it answered: " << late.size());
    CHECK(late.size() >= events - 2 * p.max_pending);
    std::size_t far_back = 0;
    for (std::size_t i = 1; i < late.size(); ++i)
        far_back += position[late[i]] + 4 < position[late[i - 1]];
    CHECK(far_back == 0);
    REQUIRE(d.store().flush().has_value());
    raw_db raw(path);
    CHECK(raw.value("SELECT count(*) FROM deliveries") == 0);
    CHECK(raw.value("SELECT count(*) FROM events") == 0);
}

TEST_CASE("after a restart, a backlog larger than a lane's share stays in the file until it "
          "is loaded",
          "[sqlite][dispatcher][backlog][recovery]") {
    temp_dir dir;
    auto const path = dir.file("restart.db");
    constexpr int events = 2000;
    {
        auto s = open_store(path);
        auto h = s.create(hook_params("one")).value();
        std::vector<herald::delivery> ds;
        for (int i = 0; i < events; ++i) {
            ds.push_back(delivery_for(prepared(std::to_string(i), "{}"), h));
            ds.back().due = herald::clock::now();
        }
        REQUIRE(s.enqueue(ds).has_value());
    }
    auto store = open_store(path);
    CHECK(store.recovered() == events);
    herald::recording_transport ok;
    auto p = params({0ms});
    p.max_pending = 100;
    p.scheduling.lane_concurrency = 4;
    boost::asio::io_context io;
    sqlite_dispatcher d(io.get_executor(), p, {.store = std::move(store), .transport = ok});
    auto const at_start = d.stats();
    CHECK(at_start.pending == events);
    CHECK(at_start.stored >= events - p.max_pending - 1); // the lane's share is in memory
    d.async_run(boost::asio::detached);
    std::thread t([&] { io.run(); });
    auto const until = std::chrono::steady_clock::now() + 30s;
    while (d.stats().delivered < events && std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(5ms);
    auto report = d.async_stop(5s, boost::asio::use_future).get();
    t.join();
    CHECK(report.drained);
    CHECK(d.stats().delivered == events);
    CHECK(d.stats().pending == 0);
    auto const sent = ok.requests();
    REQUIRE(sent.size() == std::size_t(events));
    std::set<std::string> seen;
    for (auto const& r : sent)
        seen.insert(std::string(r.header("webhook-id")));
    CHECK(seen.size() == std::size_t(events));
}

} // namespace herald_test_sqlite_journal

namespace herald_test_sqlite_journal {

TEST_CASE("a durable dispatcher keeps one row per body of an event in two formats, and resends "
          "each webhook its format and schedule after a restart",
          "[sqlite][dispatcher][formats][recovery]") {
    using formats = herald::serializer_set<herald::json_serializer, herald::datagerry_serializer>;
    using formats_dispatcher =
        herald::basic_dispatcher<herald::sqlite_store, herald::channel_source, formats,
                                 herald::recording_transport, herald::memory_log>;
    temp_dir dir;
    auto const path = dir.file("formats.db");
    std::string event_id;
    {
        auto store = open_store(path);
        auto dg = hook_params("dg", "https://receiver.example.com/dg");
        dg.format = "datagerry";
        dg.retry_schedule = {0ms, 1h};
        REQUIRE(store.create(dg).has_value());
        REQUIRE(
            store.create(hook_params("plain", "https://receiver.example.com/plain")).has_value());
        boost::asio::io_context io;
        formats_dispatcher d(io.get_executor(), params({0ms, 1h}), {.store = std::move(store)});
        // Not run: the deliveries wait in the file.
        auto id = d.publish(herald::object_event::updated("5", {{"a", 1}}, {{"a", 2}}));
        REQUIRE(id.has_value());
        event_id = *id;
        CHECK(d.serializations() == 2);
        REQUIRE(d.store().flush().has_value());
        raw_db raw(path);
        CHECK(raw.value("SELECT count(*) FROM deliveries") == 2);
        // one row per body, each with its own seq; both the one event
        CHECK(raw.value("SELECT count(*) FROM events") == 2);
        CHECK(raw.value("SELECT count(DISTINCT seq) FROM events") == 2);
        CHECK(raw.value("SELECT count(DISTINCT id) FROM events") == 1);
    }
    auto store = open_store(path);
    CHECK(store.recovered() == 2);
    herald::recording_transport ok;
    boost::asio::io_context io;
    formats_dispatcher d(io.get_executor(), params({0ms, 1h}),
                         {.store = std::move(store), .transport = ok});
    CHECK(d.serializations() == 0); // the bodies come from the file
    d.async_run(boost::asio::detached);
    std::thread t([&] { io.run(); });
    auto const until = std::chrono::steady_clock::now() + 20s;
    while (d.stats().delivered < 2 && std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(5ms);
    auto report = d.async_stop(5s, boost::asio::use_future).get();
    t.join();
    CHECK(report.drained);
    auto const sent = ok.requests();
    REQUIRE(sent.size() == 2);
    std::map<std::string, std::string> body_by_url;
    for (auto const& r : sent) {
        CHECK(r.header("webhook-id") == event_id);
        body_by_url[r.url] = *r.body;
    }
    CHECK_THAT(body_by_url.at("https://receiver.example.com/dg"),
               Catch::Contains("\"operation\":\"UPDATE\""));
    CHECK_THAT(body_by_url.at("https://receiver.example.com/plain"),
               Catch::Contains("\"object_id\":\"5\""));
    auto const dg = d.store().list().front();
    CHECK(dg.format == "datagerry");
    CHECK(d.retries().max_attempts(dg) == 2);
    REQUIRE(d.store().flush().has_value());
    raw_db raw(path);
    CHECK(raw.value("SELECT count(*) FROM deliveries") == 0);
    CHECK(raw.value("SELECT count(*) FROM events") == 0);
}

} // namespace herald_test_sqlite_journal
