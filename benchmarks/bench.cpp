// herald-bench: dispatch throughput at the loopback limit, side by side with the alternatives.
//
//   herald-bench [--url URL] [--connections 8] [--events 200000] [--body-bytes 1024]
//                [--scenario NAME[,NAME...]] [--json] [--timeout 120] [--sink PATH]
//                [--sink-threads 1] [--ahead 65536]
//
// Unless --url is given it starts herald-bench-sink (from its own directory) on a free loopback
// port, runs every scenario against it and stops it. Scenarios:
//
//   limit     a minimal Beast keep-alive POST loop: C coroutines, each on its own connection,
//             the same body herald sends; what this machine can do over loopback
//   libcurl   the libcurl multi interface with C keep-alive connections (when built with it)
//   signed    the limit loop doing the least any signed webhook sender must do for each event:
//             give it an id and timestamp, serialize it (json_serializer), sign it (HMAC-SHA256,
//             Standard Webhooks headers), send it; no queue, no retry, no log. herald/signed is
//             what herald's machinery costs on top of that work
//   herald    publish() to 2xx through basic_dispatcher: memory store and log, JSON envelope,
//             http_transport, HMAC signing on, one webhook, lane_concurrency = C
//   fanout    each event to 1,000 webhooks (same sink, different paths); counts serializations
//   latency   publish() to 2xx at half of herald's measured rate (--latency-load): p50, p99,
//             max; then the minimal Beast client at the same pace (timed from each slot), as a
//             control
//   stalls    the machine alone: a thread pinned to each CPU spins for 2 s and counts the
//             moments it did not run (clock jumps over 1 ms); what latency's p99 is up against
//   isolation the healthy webhook's latency at 1,000 events/s for 8 s, alone and then beside
//             one whose endpoint refuses connections and one whose endpoint never answers:
//             p99 beside the two as a ratio of p99 alone (a dead lane must not stall the others)
//   memory    1,000,000 deliveries pending for a listener that never answers: bytes each
//   matching  store.match against 10,000 webhooks, no I/O
//   sqlite    the herald scenario on sqlite_store (a file in the temporary directory): each
//             publish returns once committed, 64 producers publishing at once so that their
//             commits are shared; the rate as a ratio of herald's in the same run
//
// memory runs first, on a heap the other scenarios have not churned; the rest in this order.
// The I/O scenarios also report CPU time per request (sending thread, whole process, sink),
// which a busy shared machine disturbs much less than the rates do.
//
// The table goes to stdout; with --json, one JSON object per scenario goes to stdout instead
// and the table to stderr. The table ends with each target of the benchmark issue, met or
// missed in this run. Every scenario is bounded by --timeout and stops by itself.
//
// One translation unit: the parts, split by concern into bench/*.hpp, are included only here.

#include "bench/durable_run.hpp"
#include "bench/endpoints.hpp"
#include "bench/events.hpp"
#include "bench/herald_runs.hpp"
#include "bench/latency_runs.hpp"
#include "bench/loops.hpp"
#include "bench/meters.hpp"
#include "bench/options.hpp"
#include "bench/results.hpp"
#include "bench/sink_process.hpp"

#include <signal.h>

#include <algorithm>
#include <cstddef>
#include <exception>
#include <iostream>
#include <memory>
#include <string>
#include <utility>

using namespace herald_bench;

int main(int argc, char** argv) {
    auto parsed = parse_options(argc, argv);
    if (!parsed)
        return 2;
    options const o = std::move(*parsed);
    ::signal(SIGPIPE, SIG_IGN);

    try {
        bool const needs_sink = o.wants("limit") || o.wants("libcurl") || o.wants("signed") ||
                                o.wants("herald") || o.wants("fanout") || o.wants("latency") ||
                                o.wants("isolation") || o.wants("sqlite") || o.wants("postgres") ||
                                o.wants("postgres2");
        std::unique_ptr<sink_process> sink;
        std::string url = o.url;
        if (url.empty() && needs_sink) {
            sink = std::make_unique<sink_process>(
                o.sink_path.empty() ? default_sink_path() : o.sink_path, o.sink_threads);
            url = sink->url();
            sink_pid = sink->pid();
        }
        target const t = url.empty() ? target{} : target::parse(url);
        event_factory const f(o.body_bytes);
        std::string const body = f.body();
        if (!url.empty())
            std::cerr << "herald-bench: " << url << ", " << o.connections << " connections, "
                      << o.events << " events, body " << body.size() << " B"
                      << (sink ? "" : " (--url: not started here)") << "\n";

        results res(o.json);
        auto run = [&](char const* name, auto&& scenario) {
            if (!o.wants(name))
                return;
            std::cerr << "herald-bench: " << name << "..." << std::endl;
            res.add(scenario());
        };
        run("memory", [&] { return run_memory(o, f); });
        run("limit", [&] { return run_limit(o, t, body); });
        run("libcurl", [&] { return run_libcurl(o, t, body); });
        run("signed", [&] { return run_signed(o, t, f); });
        run("herald", [&] { return run_herald(o, t, f, o.events); });
        run("fanout", [&] { return run_fanout(o, t, f); });
        run("stalls", [] { return run_stalls(2.0); });
        run("latency", [&] {
            auto max_rate = res.rate("herald");
            if (!max_rate) {
                // Run alone: measure the maximum first, briefly.
                std::cerr << "herald-bench: latency needs herald's maximum rate; measuring it\n";
                max_rate = run_herald(o, t, f, std::min<std::size_t>(o.events, 20'000)).per_second;
            }
            return run_latency(o, t, f, *max_rate);
        });
        run("isolation", [&] { return run_isolation(o, t, f); });
        run("matching", [&] { return run_matching(o); });
        run("sqlite", [&] { return run_sqlite(o, t, f); });
        if (o.wants("postgres") || o.wants("postgres2")) {
            bench_cluster const cluster(o);
            run("postgres", [&] { return run_postgres(o, t, f, cluster, 1); });
            run("postgres2", [&] { return run_postgres(o, t, f, cluster, 2); });
        }
        res.print_targets();
        return 0;
    } catch (std::exception const& e) {
        std::cerr << "herald-bench: " << e.what() << "\n";
        return 1;
    }
}
