// herald-bench: the scenarios of the dispatcher and its store in memory: herald (throughput
// to one webhook), fanout (to 1,000), memory (bytes per pending delivery) and matching.

#ifndef HERALD_BENCH_HERALD_RUNS_HPP
#define HERALD_BENCH_HERALD_RUNS_HPP

#include "common.hpp"
#include "endpoints.hpp"
#include "events.hpp"
#include "meters.hpp"
#include "options.hpp"
#include "report.hpp"
#include "rig.hpp"

#include <herald/address_policy.hpp>
#include <herald/dispatcher_params.hpp>
#include <herald/event.hpp>
#include <herald/log/memory_log.hpp>
#include <herald/store/memory_store.hpp>
#include <herald/time.hpp>
#include <herald/transport/http_transport.hpp>
#include <herald/webhook.hpp>

#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>

namespace herald_bench {

constexpr std::size_t fanout_webhooks = 1'000;
constexpr std::size_t matching_webhooks = 10'000;
constexpr std::size_t memory_deliveries = 1'000'000;

inline report run_herald(options const& o, target const& t, event_factory const& f,
                         std::size_t events) {
    herald::dispatcher_params p;
    p.scheduling.lane_concurrency = o.connections;
    p.max_pending = o.max_pending;
    rig<herald::memory_log> r(p, allowed_addresses(o), transport_params(o), herald::memory_log());
    r.ahead = o.ahead;
    r.add_hook("bench", t.url);
    r.warm_up(f, o.warm_deliveries(), o.warm_deliveries(), o.timeout);
    auto batch = f.make_many(events);
    cpu_meter const cpu;
    auto const run = r.run_timed(batch, events, o.timeout);
    auto const& s = run.stats;
    double const secs = run.seconds;
    auto const opened = r.d.transport().connections_opened();
    r.stop(0ms, 30s);

    report out{"herald", double(s.delivered) / secs, "events/s"};
    out.summary = grouped(double(s.delivered)) + " events in " + fixed(secs, 2) + " s, signed, " +
                  std::to_string(o.connections) + " in flight, " + std::to_string(opened) +
                  " connections opened" + failures(s, events);
    out.add("events", std::int64_t(events))
        .add("delivered", std::int64_t(s.delivered))
        .add("failed", std::int64_t(s.failed))
        .add("seconds", secs)
        .add("publish_seconds", run.publish_seconds)
        .add("lane_concurrency", std::int64_t(o.connections))
        .add("connections_opened", std::int64_t(opened))
        .add("signed", true)
        .add("ahead", std::int64_t(o.ahead))
        .add("max_pending", std::int64_t(o.max_pending));
    cpu.finish(out, run.thread_used, double(s.delivered + s.failed));
    return out;
}

inline report run_fanout(options const& o, target const& t, event_factory const& f) {
    std::size_t const hooks = fanout_webhooks;
    std::size_t const events = std::max<std::size_t>(1, o.events / hooks);
    std::uint64_t const deliveries = events * hooks;
    herald::dispatcher_params p;
    // The same number of requests in flight (and so of connections) as the herald scenario.
    p.scheduling.lane_concurrency = o.connections;
    p.scheduling.global_concurrency = o.connections;
    p.max_pending = o.max_pending;
    rig<herald::memory_log> r(p, allowed_addresses(o), transport_params(o), herald::memory_log());
    r.ahead = o.ahead;
    for (std::size_t i = 0; i < hooks; ++i)
        r.add_hook("fanout-" + std::to_string(i), t.hook_url(i));
    auto const warm_events = (o.warm_deliveries() + hooks - 1) / hooks;
    r.warm_up(f, warm_events, warm_events * hooks, o.timeout);
    auto const serialized_before = r.d.serializations();
    auto batch = f.make_many(events);
    cpu_meter const cpu;
    auto const run = r.run_timed(batch, deliveries, o.timeout);
    auto const& s = run.stats;
    double const secs = run.seconds;
    auto const serializations = r.d.serializations() - serialized_before;
    auto const opened = r.d.transport().connections_opened();
    r.stop(0ms, 30s);

    report out{"fanout", double(s.delivered) / secs, "deliveries/s"};
    out.summary =
        grouped(double(events)) + (events == 1 ? " event x " : " events x ") +
        grouped(double(hooks)) + " webhooks = " + grouped(double(s.delivered)) + " deliveries in " +
        fixed(secs, 2) + " s, " + grouped(double(serializations)) +
        (serializations == events ? " serializations (one per event)"
                                  : " serializations (EXPECTED " + grouped(double(events)) + ")") +
        failures(s, deliveries);
    out.add("events", std::int64_t(events))
        .add("webhooks", std::int64_t(hooks))
        .add("deliveries", std::int64_t(s.delivered))
        .add("failed", std::int64_t(s.failed))
        .add("seconds", secs)
        .add("serializations", std::int64_t(serializations))
        .add("global_concurrency", std::int64_t(o.connections))
        .add("connections_opened", std::int64_t(opened));
    cpu.finish(out, run.thread_used, double(s.delivered + s.failed));
    return out;
}

inline std::int64_t rss_bytes() {
    std::ifstream in("/proc/self/statm");
    std::int64_t size = 0, resident = 0;
    in >> size >> resident;
    return resident * ::sysconf(_SC_PAGESIZE);
}

inline report run_memory(options const& o, event_factory const& f) {
    std::size_t const count =
        o.events_given ? std::min(memory_deliveries, o.events) : memory_deliveries;
    // Many webhooks per event, so the shared body weighs little per delivery and the figure
    // is the cost of a pending delivery itself.
    std::size_t const hooks = std::min(fanout_webhooks, count);
    std::size_t const events = std::max<std::size_t>(1, count / hooks);
    std::uint64_t const deliveries = events * hooks;

    silent_listener silent;
    herald::dispatcher_params p;
    p.scheduling.lane_concurrency = 1;
    p.scheduling.global_concurrency = 1; // one attempt hangs; everything else waits its turn
    p.max_pending = 0;                   // every delivery pending at once is the point here
    herald::address_policy a;
    a.allow.push_back(herald::cidr::parse("127.0.0.1/32").value());
    herald::http_transport_params tp;
    tp.addresses = a;
    rig<herald::memory_log> r(p, a, tp, herald::memory_log());
    for (std::size_t i = 0; i < hooks; ++i)
        r.add_hook("memory-" + std::to_string(i), silent.url() + "/hook/" + std::to_string(i),
                   herald::duration(std::chrono::minutes(10)));
    r.start();
    auto const deadline = steady::now() + o.timeout;

    // Live memory only: what earlier scenarios freed must not be reused unseen.
    ::malloc_trim(0);
    auto const before = rss_bytes();
    auto const t0 = steady::now();
    for (std::size_t i = 0; i < events; ++i)
        r.publish(f, i);
    herald::dispatcher_stats s;
    for (;;) {
        s = r.d.stats();
        if ((s.pending >= deliveries && s.queued == 0) || steady::now() >= deadline)
            break;
        std::this_thread::sleep_for(1ms);
    }
    double const secs = seconds_since(t0);
    ::malloc_trim(0);
    auto const after = rss_bytes();
    auto const stop_t0 = steady::now();
    r.stop(0ms, std::chrono::duration_cast<std::chrono::seconds>(o.timeout));
    double const stop_s = seconds_since(stop_t0);

    double const per = double(after - before) / double(deliveries);
    report out{"memory", double(s.pending) / secs, "queued/s"};
    out.summary = grouped(per) + " B per pending delivery (" + grouped(double(s.pending)) +
                  " pending = " + grouped(double(events)) + " events x " + grouped(double(hooks)) +
                  " webhooks, RSS +" + fixed(double(after - before) / 1048576.0, 1) + " MiB)";
    if (s.pending < deliveries)
        out.summary += ", TIMED OUT at " + grouped(double(s.pending)) + " pending";
    out.add("bytes_per_delivery", per)
        .add("pending", std::int64_t(s.pending))
        .add("events", std::int64_t(events))
        .add("webhooks", std::int64_t(hooks))
        .add("rss_before", before)
        .add("rss_after", after)
        .add("seconds", secs)
        .add("stop_seconds", stop_s);
    return out;
}

inline report run_matching(options const& o) {
    herald::memory_store_params sp;
    sp.addresses.allow.push_back(herald::cidr::parse("127.0.0.1/32").value());
    herald::memory_store store(sp);
    for (std::size_t i = 0; i < matching_webhooks; ++i) {
        herald::webhook_params p;
        p.name = "hook-" + std::to_string(i);
        p.url = "http://127.0.0.1:9/hook/" + std::to_string(i);
        // a third on each type, so matching must pick, not scan
        p.events.insert(static_cast<herald::event_type>(i % 3));
        if (auto r = store.create(std::move(p)); !r)
            throw std::runtime_error("cannot create webhook: " + r.error().what());
    }
    event_factory const small(64);
    herald::object_event const e = small.make(0);
    std::size_t const n = std::max<std::size_t>(1'000'000, 5 * o.events);
    std::size_t matched = 0;
    (void)store.match(e); // builds the index
    auto const t0 = steady::now();
    for (std::size_t i = 0; i < n; ++i)
        matched += store.match(e)->size();
    double const s = seconds_since(t0);
    report out{"matching", double(n) / s, "events/s"};
    out.summary = grouped(double(matching_webhooks)) + " webhooks, " +
                  grouped(double(matched / n)) + " matched per event, " + grouped(double(n)) +
                  " events, no I/O";
    out.add("webhooks", std::int64_t(matching_webhooks))
        .add("matched_per_event", std::int64_t(matched / n))
        .add("events", std::int64_t(n))
        .add("seconds", s);
    return out;
}

} // namespace herald_bench

#endif
