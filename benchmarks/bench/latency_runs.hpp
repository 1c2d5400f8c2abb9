// herald-bench: the latency scenarios: publish() to 2xx at a steady pace beside the minimal
// Beast client at the same pace (latency), a healthy webhook beside dead ones (isolation), and
// the machine's own stalls they are up against.

#ifndef HERALD_BENCH_LATENCY_RUNS_HPP
#define HERALD_BENCH_LATENCY_RUNS_HPP

#include "common.hpp"
#include "endpoints.hpp"
#include "events.hpp"
#include "loops.hpp"
#include "options.hpp"
#include "report.hpp"
#include "rig.hpp"

#include <herald/dispatcher_params.hpp>
#include <herald/log/memory_log.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/span_body.hpp>

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace herald_bench {

/**
 * The latency scenario's control: the minimal Beast client sending at the same pace, over the
 * same number of connections, to the same sink, right after herald. Connection k sends
 * requests k, k + C, k + 2C, ... each at its slot; the time from the slot to the response is
 * what this machine adds by itself (scheduling, loopback, the sink) at that moment. It is timed
 * from the slot, not from the moment it was sent: a request that waits (for a late timer, or
 * for its connection's previous answer) is late by that wait, as an event waiting in herald's
 * queue is (timing from the send would leave out exactly the stalls: coordinated omission).
 */
inline asio::awaitable<void> paced_worker(tcp::resolver::results_type const& endpoints,
                                          http::request<http::span_body<char const>> const& msg,
                                          std::size_t k, std::size_t stride,
                                          steady::time_point start,
                                          std::chrono::duration<double> interval,
                                          std::vector<double>& us) {
    loop_counters c;
    auto socket = co_await open_connection(endpoints, c);
    if (!socket)
        co_return;
    beast::flat_buffer buffer;
    asio::steady_timer timer(socket->get_executor());
    for (std::size_t i = k; i < us.size(); i += stride) {
        auto const slot =
            start + std::chrono::duration_cast<steady::duration>(interval * double(i));
        timer.expires_at(slot);
        auto [tec] = co_await timer.async_wait(use_tuple);
        (void)tec;
        bool const more = co_await exchange(*socket, buffer, msg, c);
        if (c.failed)
            co_return;
        us[i] = std::chrono::duration<double, std::micro>(steady::now() - slot).count();
        if (!more)
            co_return;
    }
}

/// Sorted latencies (µs) of `n` minimal requests at `rate` per second; empty on failure.
inline std::vector<double> paced_control(options const& o, target const& t, std::string const& body,
                                         double rate, std::size_t n) {
    asio::io_context io(1);
    auto const endpoints = resolve(t);
    auto const msg = minimal_post(t, body);
    std::vector<double> us(n, -1.0);
    auto const start = steady::now() + 20ms; // connections are open by then
    auto const interval = std::chrono::duration<double>(1.0 / rate);
    for (std::size_t k = 0; k < o.connections; ++k)
        asio::co_spawn(io, paced_worker(endpoints, msg, k, o.connections, start, interval, us),
                       asio::detached);
    io.run_for(o.timeout);
    std::erase_if(us, [](double x) { return x < 0; });
    std::sort(us.begin(), us.end());
    return us;
}

inline double percentile(std::vector<double> const& sorted, double q) {
    if (sorted.empty())
        return 0;
    auto const k = static_cast<std::size_t>(std::ceil(q * double(sorted.size())));
    return sorted[std::min(k == 0 ? 0 : k - 1, sorted.size() - 1)];
}

inline report run_latency(options const& o, target const& t, event_factory const& f,
                          double max_rate) {
    double const rate = max_rate * o.latency_load;
    // At most about 5 s of paced publishing, at least 1,000 events (unless --events is smaller).
    std::size_t const n =
        std::min(o.events, std::max<std::size_t>(1'000, static_cast<std::size_t>(rate * 5)));
    auto probe = std::make_shared<latency_probe>(n);
    herald::dispatcher_params p;
    p.scheduling.lane_concurrency = o.connections;
    rig<timing_log> r(p, allowed_addresses(o), transport_params(o), timing_log(probe));
    r.add_hook("bench", t.url);
    auto const deadline = steady::now() + o.timeout;
    // From a cold start, the arena's growth while the log fills held p99 at 20-150 ms for the
    // first second at this rate; the connections are opened in any case.
    std::size_t const warm = std::max<std::size_t>(4 * o.connections, o.warm_deliveries());
    r.warm_up(f, warm, warm, o.timeout);

    std::vector<std::int64_t> published_ns(n), slot_ns(n);
    auto const interval = std::chrono::duration<double>(1.0 / rate);
    auto const start = steady::now() + 1ms;
    for (std::size_t i = 0; i < n; ++i) {
        auto const due = start + std::chrono::duration_cast<steady::duration>(interval * double(i));
        if (steady::now() < due)
            std::this_thread::sleep_until(due);
        auto e = f.make(i, std::string(latency_probe::prefix) + std::to_string(i));
        slot_ns[i] =
            std::chrono::duration_cast<std::chrono::nanoseconds>(due.time_since_epoch()).count();
        published_ns[i] = now_ns();
        auto res = r.d.publish(std::move(e));
        if (!res) // the queue cannot fill at half the maximum rate; if it does, say so
            throw std::runtime_error("latency: publish failed: " + res.error().what());
    }
    double const paced_s = seconds_since(start);
    while (probe->done.load(std::memory_order_acquire) < n && steady::now() < deadline &&
           r.d.stats().failed == 0)
        std::this_thread::sleep_for(1ms);
    auto const completed = probe->done.load(std::memory_order_acquire);
    auto const s = r.d.stats();
    r.stop(0ms, 30s);

    // From publish() (the figure), and from the slot, as the control is timed: that
    // also counts the publishing thread's late wake-ups, as the control counts its timer's.
    std::vector<double> us, us_slot;
    us.reserve(n);
    us_slot.reserve(n);
    for (std::size_t i = 0; i < n; ++i)
        if (probe->done_ns[i] != 0) {
            us.push_back(double(probe->done_ns[i] - published_ns[i]) / 1000.0);
            us_slot.push_back(double(probe->done_ns[i] - slot_ns[i]) / 1000.0);
        }
    std::sort(us.begin(), us.end());
    std::sort(us_slot.begin(), us_slot.end());
    auto pct = [&](double q) {
        return percentile(us, q);
    };
    auto const control = paced_control(o, t, f.body(), rate, n);
    double const achieved = double(n) / paced_s;
    report out{"latency", achieved, "events/s"};
    out.summary = "p50 " + grouped(pct(0.50)) + " us, p99 " + grouped(pct(0.99)) + " us, max " +
                  grouped(us.empty() ? 0 : us.back()) + " us over " + grouped(double(completed)) +
                  " events at " + grouped(rate) + "/s (" +
                  (o.latency_load == 0.5 ? std::string("half") : fixed(o.latency_load, 2) + " x") +
                  " of " + grouped(max_rate) + "); timed from each slot: p50 " +
                  grouped(percentile(us_slot, 0.5)) + " us, p99 " +
                  grouped(percentile(us_slot, 0.99)) + " us";
    if (completed < n)
        out.summary += ", " + grouped(double(n - completed)) + " NOT DELIVERED";
    if (!control.empty())
        out.summary += "; minimal Beast client at the same pace, timed from each slot: p50 " +
                       grouped(percentile(control, 0.5)) + " us, p99 " +
                       grouped(percentile(control, 0.99)) + " us, max " + grouped(control.back()) +
                       " us";
    out.add("events", std::int64_t(n))
        .add("completed", std::int64_t(completed))
        .add("failed", std::int64_t(s.failed))
        .add("target_per_second", rate)
        .add("load", o.latency_load)
        .add("p50_us", pct(0.50))
        .add("p90_us", pct(0.90))
        .add("p99_us", pct(0.99))
        .add("p999_us", pct(0.999))
        .add("max_us", us.empty() ? 0.0 : us.back())
        .add("slot_p50_us", percentile(us_slot, 0.5))
        .add("slot_p99_us", percentile(us_slot, 0.99))
        .add("control_p50_us", percentile(control, 0.5))
        .add("control_p99_us", percentile(control, 0.99))
        .add("control_max_us", control.empty() ? 0.0 : control.back());
    return out;
}

/// The healthy webhook's latencies (us, sorted) at `rate` events/s, with `bad` webhooks beside.
struct isolation_run {
    std::vector<double> us{};
    herald::dispatcher_stats stats{};
    std::size_t events = 0;
};

inline isolation_run paced_isolation(options const& o, target const& t, event_factory const& f,
                                     double rate, std::size_t n,
                                     std::vector<std::string> const& bad) {
    auto probe = std::make_shared<latency_probe>(n);
    herald::dispatcher_params p;
    p.scheduling.lane_concurrency = o.connections;
    rig<timing_log> r(p, allowed_addresses(o), transport_params(o), timing_log(probe));
    r.add_hook("healthy", t.url);
    // Warmed up alone (connections open, the log full), as the latency scenario is.
    std::size_t const warm = std::max<std::size_t>(4 * o.connections, o.warm_deliveries());
    r.warm_up(f, warm, warm, o.timeout);
    for (std::size_t i = 0; i < bad.size(); ++i)
        r.add_hook("bad-" + std::to_string(i), bad[i], std::chrono::seconds(10));
    std::vector<std::int64_t> published_ns(n);
    auto const interval = std::chrono::duration<double>(1.0 / rate);
    auto const start = steady::now() + 1ms;
    for (std::size_t i = 0; i < n; ++i) {
        auto const due = start + std::chrono::duration_cast<steady::duration>(interval * double(i));
        if (steady::now() < due)
            std::this_thread::sleep_until(due);
        auto e = f.make(i, std::string(latency_probe::prefix) + std::to_string(i));
        published_ns[i] = now_ns();
        // A refused publish is a stall too: it counts as never delivered.
        if (!r.d.publish(std::move(e)))
            published_ns[i] = 0;
    }
    auto const deadline = steady::now() + o.timeout;
    while (probe->done.load(std::memory_order_acquire) < n && steady::now() < deadline &&
           steady::now() <
               start + std::chrono::duration_cast<steady::duration>(interval * double(n)) + 10s)
        std::this_thread::sleep_for(1ms);
    isolation_run out;
    out.stats = r.d.stats();
    out.events = n;
    r.stop(0ms, 30s);
    for (std::size_t i = 0; i < n; ++i)
        if (probe->done_ns[i] != 0 && published_ns[i] != 0)
            out.us.push_back(double(probe->done_ns[i] - published_ns[i]) / 1000.0);
    std::sort(out.us.begin(), out.us.end());
    return out;
}

inline report run_isolation(options const& o, target const& t, event_factory const& f) {
    double const rate = 1000;
    std::size_t const n = std::min<std::size_t>(o.events, 8'000);
    auto const alone = paced_isolation(o, t, f, rate, n, {});
    silent_listener hanging;
    auto const beside = paced_isolation(o, t, f, rate, n, {refused_url(), hanging.url() + "/hang"});
    auto const p99_alone = percentile(alone.us, 0.99), p99_beside = percentile(beside.us, 0.99);
    double const ratio = p99_alone > 0 ? p99_beside / p99_alone : 0;
    report out{"isolation", rate, "events/s"};
    out.summary = "healthy webhook p99 " + grouped(p99_alone) + " us alone, " +
                  grouped(p99_beside) + " us beside a refusing and a hanging one (" +
                  fixed(ratio, 2) + " x); max " + grouped(alone.us.empty() ? 0 : alone.us.back()) +
                  " / " + grouped(beside.us.empty() ? 0 : beside.us.back()) + " us; " +
                  grouped(double(beside.stats.parked)) + " parked, " +
                  grouped(double(beside.stats.shed)) + " shed at the end";
    auto const lost = n - beside.us.size();
    if (lost != 0 || alone.us.size() != n)
        out.summary += ", " + grouped(double(lost)) + " NOT DELIVERED beside";
    out.add("events", std::int64_t(n))
        .add("alone_p50_us", percentile(alone.us, 0.5))
        .add("alone_p99_us", p99_alone)
        .add("beside_p50_us", percentile(beside.us, 0.5))
        .add("beside_p99_us", p99_beside)
        .add("beside_max_us", beside.us.empty() ? 0.0 : beside.us.back())
        .add("beside_delivered", std::int64_t(beside.us.size()))
        .add("parked", std::int64_t(beside.stats.parked))
        .add("shed", std::int64_t(beside.stats.shed))
        .add("p99_ratio", ratio);
    return out;
}

/**
 * The machine alone, no I/O: one thread pinned to each CPU spins for `seconds`, reading the
 * clock; a jump of more than 1 ms is a moment the CPU was taken away (by the hypervisor, an
 * interrupt, another process). Their share of the time and the longest is what the latency
 * scenario's p99 is up against: a stop of S ms leaves the events published meanwhile waiting,
 * and at half load herald needs about S ms more to catch up.
 */
inline report run_stalls(double seconds) {
    struct cpu_result {
        double stopped = 0, longest = 0;
        std::size_t stops = 0;
    };
    unsigned const cpus = std::max(1u, std::thread::hardware_concurrency());
    std::vector<cpu_result> per_cpu(cpus);
    std::vector<std::thread> threads;
    for (unsigned cpu = 0; cpu < cpus; ++cpu)
        threads.emplace_back([cpu, seconds, &r = per_cpu[cpu]] {
            cpu_set_t set;
            CPU_ZERO(&set);
            CPU_SET(cpu, &set);
            (void)::sched_setaffinity(0, sizeof set, &set);
            auto const start = steady::now();
            auto const end = start + std::chrono::duration_cast<steady::duration>(
                                         std::chrono::duration<double>(seconds));
            auto last = start;
            for (auto t = start; t < end; t = steady::now()) {
                double const gap = std::chrono::duration<double, std::milli>(t - last).count();
                if (gap > 1.0) {
                    r.stopped += gap;
                    r.longest = std::max(r.longest, gap);
                    ++r.stops;
                }
                last = t;
            }
        });
    for (auto& t : threads)
        t.join();
    double stopped = 0, longest = 0;
    std::size_t stops = 0;
    std::string each;
    for (unsigned cpu = 0; cpu < cpus; ++cpu) {
        auto const& r = per_cpu[cpu];
        stopped += r.stopped;
        longest = std::max(longest, r.longest);
        stops += r.stops;
        each += (cpu ? ", CPU " : "CPU ") + std::to_string(cpu) + " " +
                fixed(r.stopped / (seconds * 10.0), 2) + " %";
    }
    double const share = stopped / (seconds * 1000.0 * cpus);
    report out{"stalls", double(stops) / (seconds * cpus), "stops/s per CPU"};
    out.summary = grouped(double(stops)) + " stops over 1 ms in " + fixed(seconds, 0) + " s on " +
                  std::to_string(cpus) + " CPUs, " + fixed(share * 100.0, 2) + " % of the time (" +
                  each + "), longest " + fixed(longest, 1) + " ms";
    out.add("cpus", std::int64_t(cpus))
        .add("seconds", seconds)
        .add("stops", std::int64_t(stops))
        .add("stopped_share", share)
        .add("longest_ms", longest);
    return out;
}

} // namespace herald_bench

#endif
