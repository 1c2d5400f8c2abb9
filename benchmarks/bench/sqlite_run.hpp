// herald-bench: sqlite, the herald scenario with the durable store.

#ifndef HERALD_BENCH_SQLITE_RUN_HPP
#define HERALD_BENCH_SQLITE_RUN_HPP

#include "common.hpp"
#include "endpoints.hpp"
#include "events.hpp"
#include "meters.hpp"
#include "options.hpp"
#include "report.hpp"
#include "rig.hpp"

#include <herald/basic_dispatcher.hpp>
#include <herald/dispatcher_params.hpp>
#include <herald/event.hpp>
#include <herald/log/memory_log.hpp>
#include <herald/serializer/json_serializer.hpp>
#include <herald/signature.hpp>
#include <herald/source/channel_source.hpp>
#include <herald/sqlite/sqlite_store.hpp>
#include <herald/transport/http_transport.hpp>
#include <herald/webhook.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <future>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace herald_bench {

using sqlite_dispatcher =
    herald::basic_dispatcher<herald::sqlite_store, herald::channel_source, herald::json_serializer,
                             herald::http_transport, herald::memory_log>;

/// One of the sqlite scenario's producers: publishes the events of `batch` (built before the
/// clock starts, as in the herald scenario) that `next` hands it, each acknowledged only once
/// committed.
inline asio::awaitable<void> sqlite_producer(sqlite_dispatcher& d,
                                             std::vector<herald::object_event>& batch,
                                             std::atomic<std::size_t>& next,
                                             std::atomic<std::size_t>& acknowledged,
                                             std::atomic<std::size_t>& refused) {
    for (;;) {
        auto const i = next.fetch_add(1);
        if (i >= batch.size())
            co_return;
        auto publish = d.async_publish(std::move(batch[i]));
        auto r = co_await std::move(publish);
        (r ? acknowledged : refused).fetch_add(1);
    }
}

inline report run_sqlite(options const& o, target const& t, event_factory const& f) {
    constexpr std::size_t producers = 64;
    namespace fs = std::filesystem;
    auto const dir = fs::temp_directory_path() / ("herald-bench-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    struct remove_dir {
        fs::path p{};
        ~remove_dir() {
            std::error_code ec;
            fs::remove_all(p, ec);
        }
    } const cleanup{dir};

    auto store = herald::sqlite_store::open(
        {.path = (dir / "bench.db").string(), .addresses = allowed_addresses(o)});
    if (!store)
        throw std::runtime_error("sqlite: " + store.error().what());
    herald::dispatcher_params p;
    p.scheduling.lane_concurrency = o.connections;
    asio::io_context io{1};
    sqlite_dispatcher d(
        io.get_executor(), p,
        {.store = std::move(*store), .transport = herald::http_transport(transport_params(o))});
    herald::webhook_params hook;
    hook.name = "bench";
    hook.url = t.url;
    hook.events = herald::event_type_set::all();
    hook.secrets = {herald::secret::generate()};
    if (auto r = d.store().create(std::move(hook)); !r)
        throw std::runtime_error("cannot create webhook: " + r.error().what());
    d.async_run(asio::detached);
    auto [dispatcher_thread, dispatcher_tid] = start_thread([&] { io.run(); });

    // The application's side: its own thread, many publishes awaiting their commits at once.
    asio::io_context app{1};
    std::atomic<std::size_t> next{0}, acknowledged{0}, refused{0};
    // The warm-up, as the herald scenario's (untimed): its producers run here until done.
    if (std::size_t const warm = o.warm_deliveries()) {
        auto warm_batch = f.make_many(warm);
        for (std::size_t i = 0; i < producers; ++i)
            asio::co_spawn(app, sqlite_producer(d, warm_batch, next, acknowledged, refused),
                           asio::detached);
        app.run();
        app.restart();
        auto const until = steady::now() + o.timeout;
        while (d.stats().delivered + d.stats().failed < warm && steady::now() < until)
            std::this_thread::sleep_for(200us);
        next = 0;
        acknowledged = 0;
        refused = 0;
    }
    auto const base = d.stats();
    auto const db_base = d.store().stats();
    std::size_t const events = o.events;
    auto batch = f.make_many(events);
    for (std::size_t i = 0; i < producers; ++i)
        asio::co_spawn(app, sqlite_producer(d, batch, next, acknowledged, refused), asio::detached);
    thread_meter const dispatcher_meter(dispatcher_thread, dispatcher_tid);
    cpu_meter const cpu;
    auto const t0 = steady::now();
    std::thread app_thread([&] { app.run(); });
    steady::time_point published_at{}, t1{};
    herald::dispatcher_stats s;
    for (;;) {
        s = d.stats();
        s.delivered -= base.delivered;
        s.failed -= base.failed;
        if (published_at == steady::time_point{} && acknowledged + refused >= events)
            published_at = steady::now();
        if (s.delivered + s.failed >= events || steady::now() >= t0 + o.timeout) {
            t1 = steady::now();
            break;
        }
        std::this_thread::sleep_for(200us);
    }
    double const secs = std::chrono::duration<double>(t1 - t0).count();
    auto const dispatcher_used = dispatcher_meter.used();
    app.stop();
    app_thread.join();
    auto stop = d.async_stop(0ms, asio::use_future);
    if (stop.wait_for(30s) != std::future_status::ready)
        io.stop();
    dispatcher_thread.join();
    auto const flushed = d.store().flush();
    auto db = d.store().stats();
    db.commits -= db_base.commits;
    db.operations -= db_base.operations;

    report out{"sqlite", double(s.delivered) / secs, "events/s"};
    out.summary = grouped(double(s.delivered)) + " events in " + fixed(secs, 2) +
                  " s, signed, durable: " + std::to_string(producers) + " producers, " +
                  grouped(double(db.commits)) + " commits (" +
                  fixed(db.commits ? double(db.operations) / double(db.commits) : 0.0, 1) +
                  " writes each)" + failures(s, events) +
                  (refused ? ", " + grouped(double(refused)) + " publishes REFUSED" : "") +
                  (flushed ? "" : ", store: " + flushed.error().what());
    out.add("events", std::int64_t(events))
        .add("delivered", std::int64_t(s.delivered))
        .add("failed", std::int64_t(s.failed))
        .add("seconds", secs)
        .add("publish_seconds", published_at == steady::time_point{}
                                    ? secs
                                    : std::chrono::duration<double>(published_at - t0).count())
        .add("producers", std::int64_t(producers))
        .add("commits", std::int64_t(db.commits))
        .add("writes", std::int64_t(db.operations))
        .add("lane_concurrency", std::int64_t(o.connections))
        .add("signed", true);
    cpu.finish(out, dispatcher_used, double(s.delivered + s.failed));
    return out;
}

} // namespace herald_bench

#endif
