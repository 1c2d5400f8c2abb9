// herald-bench: sqlite and postgres, the herald scenario on a durable store (a SQLite file; a
// PostgreSQL database, with one node, and with two nodes sharing it: postgres2).

#ifndef HERALD_BENCH_DURABLE_RUN_HPP
#define HERALD_BENCH_DURABLE_RUN_HPP

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
#include <herald/postgres/postgres_store.hpp>
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
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace herald_bench {

template <class Store>
using durable_dispatcher =
    herald::basic_dispatcher<Store, herald::channel_source, herald::json_serializer,
                             herald::http_transport, herald::memory_log>;

/// One of a durable scenario's producers: publishes the events of `batch` (built before the
/// clock starts, as in the herald scenario) that `next` hands it, to node `i % nodes`, each
/// acknowledged only once committed.
template <class Dispatcher>
asio::awaitable<void>
durable_producer(std::vector<std::unique_ptr<Dispatcher>>& nodes,
                 std::vector<herald::object_event>& batch, std::atomic<std::size_t>& next,
                 std::atomic<std::size_t>& acknowledged, std::atomic<std::size_t>& refused) {
    for (;;) {
        auto const i = next.fetch_add(1);
        if (i >= batch.size())
            co_return;
        auto publish = nodes[i % nodes.size()]->async_publish(std::move(batch[i]));
        auto r = co_await std::move(publish);
        (r ? acknowledged : refused).fetch_add(1);
    }
}

/**
 * The herald scenario on durable stores: `nodes` dispatchers, each on a store `open()` gives
 * (the same database for all), each on its own thread, the events spread over them. Every
 * publish is acknowledged once committed. `what` names the store in the summary.
 */
template <class Store>
report run_durable(std::string const& name, std::string const& what, options const& o,
                   target const& t, event_factory const& f, std::function<Store()> const& open,
                   std::size_t node_count = 1) {
    constexpr std::size_t producers = 64;
    using dispatcher = durable_dispatcher<Store>;
    herald::dispatcher_params p;
    p.scheduling.lane_concurrency = o.connections;
    std::vector<std::unique_ptr<asio::io_context>> ios;
    std::vector<std::unique_ptr<dispatcher>> nodes;
    for (std::size_t i = 0; i < node_count; ++i) {
        ios.push_back(std::make_unique<asio::io_context>(1));
        nodes.push_back(std::make_unique<dispatcher>(
            ios.back()->get_executor(), p,
            typename dispatcher::policies{
                .store = open(), .transport = herald::http_transport(transport_params(o))}));
    }
    herald::webhook_params hook;
    hook.name = "bench";
    hook.url = t.url;
    hook.events = herald::event_type_set::all();
    hook.secrets = {herald::secret::generate()};
    if (auto r = nodes.front()->store().create(std::move(hook)); !r)
        throw std::runtime_error("cannot create webhook: " + r.error().what());
    // The other nodes see it once their table is read again (a notification).
    auto const probe = herald::object_event::created("probe", {});
    for (auto& n : nodes) {
        auto const until = steady::now() + 10s;
        while (n->store().match(probe)->empty() && steady::now() < until)
            std::this_thread::sleep_for(1ms);
        if (n->store().match(probe)->empty())
            throw std::runtime_error(name + ": a node never saw the webhook");
    }
    std::vector<std::thread> threads;
    std::vector<pid_t> tids;
    for (std::size_t i = 0; i < node_count; ++i) {
        nodes[i]->async_run(asio::detached);
        auto [th, tid] = start_thread([io = ios[i].get()] { io->run(); });
        threads.push_back(std::move(th));
        tids.push_back(tid);
    }
    auto const delivered = [&] {
        herald::dispatcher_stats sum;
        for (auto& n : nodes) {
            auto const s = n->stats();
            sum.delivered += s.delivered;
            sum.failed += s.failed;
            sum.attempts += s.attempts;
            sum.published += s.published;
        }
        return sum;
    };

    // The application's side: its own thread, many publishes awaiting their commits at once.
    asio::io_context app{1};
    std::atomic<std::size_t> next{0}, acknowledged{0}, refused{0};
    // The warm-up, as the herald scenario's (untimed): its producers run here until done.
    if (std::size_t const warm = o.warm_deliveries()) {
        auto warm_batch = f.make_many(warm);
        for (std::size_t i = 0; i < producers; ++i)
            asio::co_spawn(app, durable_producer(nodes, warm_batch, next, acknowledged, refused),
                           asio::detached);
        app.run();
        app.restart();
        auto const until = steady::now() + o.timeout;
        while (delivered().delivered + delivered().failed < warm && steady::now() < until)
            std::this_thread::sleep_for(200us);
        next = 0;
        acknowledged = 0;
        refused = 0;
    }
    auto const base = delivered();
    std::uint64_t commits_base = 0, writes_base = 0;
    for (auto& n : nodes) {
        commits_base += n->store().stats().commits;
        writes_base += n->store().stats().operations;
    }
    std::size_t const events = o.events;
    auto batch = f.make_many(events);
    for (std::size_t i = 0; i < producers; ++i)
        asio::co_spawn(app, durable_producer(nodes, batch, next, acknowledged, refused),
                       asio::detached);
    thread_meter const dispatcher_meter(threads.front(), tids.front());
    cpu_meter const cpu;
    auto const t0 = steady::now();
    std::thread app_thread([&] { app.run(); });
    steady::time_point published_at{}, t1{};
    herald::dispatcher_stats s;
    for (;;) {
        s = delivered();
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
    for (std::size_t i = 0; i < node_count; ++i) {
        auto stop = nodes[i]->async_stop(0ms, asio::use_future);
        if (stop.wait_for(30s) != std::future_status::ready)
            ios[i]->stop();
        threads[i].join();
    }
    std::uint64_t commits = 0, writes = 0;
    std::string store_problem;
    for (auto& n : nodes) {
        if (auto flushed = n->store().flush(); !flushed && store_problem.empty())
            store_problem = ", store: " + flushed.error().what();
        commits += n->store().stats().commits;
        writes += n->store().stats().operations;
    }
    commits -= commits_base;
    writes -= writes_base;

    report out{name, double(s.delivered) / secs, "events/s"};
    out.summary =
        grouped(double(s.delivered)) + " events in " + fixed(secs, 2) + " s, signed, durable (" +
        what + "): " + std::to_string(producers) + " producers, " + grouped(double(commits)) +
        " commits (" + fixed(commits ? double(writes) / double(commits) : 0.0, 1) +
        " writes each)" + failures(s, events) +
        (refused ? ", " + grouped(double(refused)) + " publishes REFUSED" : "") + store_problem;
    out.add("events", std::int64_t(events))
        .add("delivered", std::int64_t(s.delivered))
        .add("failed", std::int64_t(s.failed))
        .add("seconds", secs)
        .add("publish_seconds", published_at == steady::time_point{}
                                    ? secs
                                    : std::chrono::duration<double>(published_at - t0).count())
        .add("producers", std::int64_t(producers))
        .add("nodes", std::int64_t(node_count))
        .add("commits", std::int64_t(commits))
        .add("writes", std::int64_t(writes))
        .add("lane_concurrency", std::int64_t(o.connections))
        .add("signed", true);
    cpu.finish(out, dispatcher_used, double(s.delivered + s.failed));
    return out;
}

inline report run_sqlite(options const& o, target const& t, event_factory const& f) {
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
    return run_durable<herald::sqlite_store>("sqlite", "a SQLite file", o, t, f, [&] {
        auto store = herald::sqlite_store::open(
            {.path = (dir / "bench.db").string(), .addresses = allowed_addresses(o)});
        if (!store)
            throw std::runtime_error("sqlite: " + store.error().what());
        return std::move(*store);
    });
}

/// A throwaway PostgreSQL cluster (scripts/pg-cluster) for the postgres scenarios, unless
/// --postgres gave a database; stopped with the object.
class bench_cluster {
public:
    explicit bench_cluster(options const& o) {
        if (!o.postgres.empty()) {
            conninfo_ = o.postgres;
            return;
        }
        dir_ = (std::filesystem::temp_directory_path() /
                ("herald-bench-pg-" + std::to_string(::getpid())))
                   .string();
        auto const script = std::string(HERALD_SOURCE_DIR) + "/scripts/pg-cluster";
        auto const cmd = "\"" + script + "\" start \"" + dir_ + "\" >/dev/null";
        if (std::system(cmd.c_str()) != 0)
            throw std::runtime_error("postgres: cannot start a cluster with " + script +
                                     " (or pass --postgres CONNINFO)");
        std::ifstream in(dir_ + "/conninfo");
        std::getline(in, conninfo_);
    }
    bench_cluster(bench_cluster const&) = delete;
    bench_cluster& operator=(bench_cluster const&) = delete;
    ~bench_cluster() {
        if (!dir_.empty())
            (void)std::system(("\"" + std::string(HERALD_SOURCE_DIR) +
                               "/scripts/pg-cluster\" stop \"" + dir_ + "\"")
                                  .c_str());
    }
    std::string const& conninfo() const noexcept { return conninfo_; }

private:
    std::string dir_, conninfo_;
};

/// postgres (one node) or postgres2 (two nodes on one database): a fresh database each.
inline report run_postgres(options const& o, target const& t, event_factory const& f,
                           bench_cluster const& cluster, std::size_t node_count) {
    static int n = 0;
    auto const db = "herald_bench_" + std::to_string(::getpid()) + "_" + std::to_string(++n);
    auto const admin = cluster.conninfo();
    auto const psql = [&](std::string const& sql) {
        auto const cmd = "psql -q -X \"" + admin + "\" -c \"" + sql + "\" >/dev/null 2>&1";
        return std::system(cmd.c_str()) == 0;
    };
    if (!psql("CREATE DATABASE " + db))
        throw std::runtime_error("postgres: cannot create database " + db + " on " + admin);
    struct drop {
        std::function<void()> f;
        ~drop() { f(); }
    } const cleanup{[&] {
        psql("DROP DATABASE IF EXISTS " + db + " WITH (FORCE)");
    }};
    auto const name =
        node_count == 1 ? std::string("postgres") : "postgres" + std::to_string(node_count);
    return run_durable<herald::postgres_store>(
        name,
        node_count == 1 ? std::string("PostgreSQL")
                        : "PostgreSQL, " + std::to_string(node_count) + " nodes",
        o, t, f,
        [&] {
            herald::postgres_store_params p;
            p.conninfo = admin + " dbname=" + db;
            p.addresses = allowed_addresses(o);
            auto store = herald::postgres_store::open(std::move(p));
            if (!store)
                throw std::runtime_error("postgres: " + store.error().what());
            return std::move(*store);
        },
        node_count);
}

} // namespace herald_bench

#endif
