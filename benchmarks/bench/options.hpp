// herald-bench: the command line.

#ifndef HERALD_BENCH_OPTIONS_HPP
#define HERALD_BENCH_OPTIONS_HPP

#include "common.hpp"

#include <herald/dispatcher_params.hpp>
#include <herald/log/memory_log.hpp>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <iostream>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace herald_bench {

struct options {
    std::string url{}; // empty: start the sink
    std::size_t connections = 8;
    std::size_t events = 200'000;
    bool events_given = false;
    std::size_t body_bytes = 1024;
    std::vector<std::string> scenarios{}; // empty: all
    std::string postgres{};               // --postgres CONNINFO; empty: a throwaway cluster
    bool json = false;
    std::chrono::seconds timeout = 120s;
    std::string sink_path{};
    unsigned sink_threads = 1;
    std::size_t ahead = 65'536; // events the publisher keeps queued at most (the queue's capacity)
    // dispatcher_params::max_pending in the throughput scenarios: the library's default
    std::size_t max_pending = herald::dispatcher_params{}.max_pending;
    bool cold = false;         // no warm-up before the herald, fanout, latency and sqlite scenarios
    double latency_load = 0.5; // the latency scenario's rate, as a share of herald's maximum

    /// Deliveries before a timed run: enough to fill the memory log (as in steady state).
    std::size_t warm_deliveries() const {
        return cold ? 0
                    : std::min<std::size_t>(events, herald::memory_log_params{}.capacity + 1'000);
    }

    bool wants(std::string_view s) const {
        return scenarios.empty() ||
               std::find(scenarios.begin(), scenarios.end(), s) != scenarios.end();
    }
};

constexpr std::string_view all_scenarios[] = {
    "limit",     "libcurl", "signed",   "herald", "fanout",   "stalls",   "latency",
    "isolation", "memory",  "matching", "sqlite", "postgres", "postgres2"};

constexpr std::string_view usage =
    R"(usage: herald-bench [options]

  --url URL           send to this sink instead of starting herald-bench-sink (the SSRF guard
                      is off for it: you chose it)
  --connections N     keep-alive connections (and herald's lane concurrency), default 8
  --events N          events (requests) per throughput scenario, default 200000; also caps
                      the memory scenario's 1,000,000 pending deliveries when smaller
  --body-bytes N      size of the JSON object in each event, default 1024
  --scenario NAME     run only NAME (comma-separated list allowed):
                      limit, libcurl, signed, herald, fanout, stalls, latency, isolation, memory,
                      matching, sqlite, postgres, postgres2
  --postgres CONNINFO the database server of the postgres scenarios (each makes a database of
                      its own there); default: a throwaway cluster (scripts/pg-cluster)
  --json              one JSON object per scenario on stdout (the table goes to stderr)
  --timeout S         bound on each scenario, default 120
  --sink PATH         the sink binary (default: herald-bench-sink next to this program)
  --sink-threads N    threads of the sink it starts, default 1
  --max-pending N     dispatcher_params::max_pending for the herald and fanout scenarios:
                      deliveries held in memory before the dispatcher stops taking events,
                      default 8192 (the library's default; 0: no bound)
  --ahead N           events the publisher keeps queued ahead of the dispatcher, default
                      65536 (the intake queue's capacity: publish until queue_full, wait, retry)
  --latency-load F    the latency scenario's rate as a share of herald's measured maximum,
                      from 0.01 to 1, default 0.5 (the target applies at 0.5 only)
  --cold              measure herald from a cold start: without the warm-up that first fills
                      the memory log (11,000 deliveries, untimed) in the herald, fanout,
                      latency and sqlite scenarios
)";

inline std::optional<options> parse_options(int argc, char** argv) {
    options o;
    auto number = [](std::string_view text, std::size_t min, std::size_t max, std::size_t& out) {
        std::size_t v = 0;
        auto const [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
        if (ec != std::errc{} || end != text.data() + text.size() || v < min || v > max)
            return false;
        out = v;
        return true;
    };
    for (int i = 1; i < argc; ++i) {
        std::string_view const a = argv[i];
        if (a == "--help" || a == "-h") {
            std::cout << usage;
            std::exit(0);
        }
        if (a == "--json") {
            o.json = true;
            continue;
        }
        if (a == "--cold") {
            o.cold = true;
            continue;
        }
        if (i + 1 >= argc) {
            std::cerr << "herald-bench: " << a << " needs a value (or is unknown)\n" << usage;
            return std::nullopt;
        }
        std::string_view const v = argv[++i];
        bool ok = true;
        std::size_t n = 0;
        if (a == "--url") {
            o.url = v;
        } else if (a == "--postgres") {
            o.postgres = v;
        } else if (a == "--connections") {
            ok = number(v, 1, 1024, o.connections);
        } else if (a == "--events") {
            ok = number(v, 1, 100'000'000, o.events);
            o.events_given = true;
        } else if (a == "--body-bytes") {
            ok = number(v, 0, 1 << 20, o.body_bytes);
        } else if (a == "--scenario") {
            std::string_view rest = v;
            while (ok && !rest.empty()) {
                auto const comma = rest.find(',');
                auto const name = rest.substr(0, comma);
                ok = std::find(std::begin(all_scenarios), std::end(all_scenarios), name) !=
                     std::end(all_scenarios);
                o.scenarios.emplace_back(name);
                rest =
                    comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
            }
        } else if (a == "--timeout") {
            ok = number(v, 1, 3600, n);
            o.timeout = std::chrono::seconds(n);
        } else if (a == "--latency-load") {
            std::string const text(v);
            char* end = nullptr;
            double const f = std::strtod(text.c_str(), &end);
            ok = !text.empty() && end == text.c_str() + text.size() && f >= 0.01 && f <= 1.0;
            if (ok)
                o.latency_load = f;
        } else if (a == "--max-pending") {
            ok = number(v, 0, 100'000'000, o.max_pending);
        } else if (a == "--ahead") {
            ok = number(v, 1, 65'536, o.ahead);
        } else if (a == "--sink") {
            o.sink_path = v;
        } else if (a == "--sink-threads") {
            ok = number(v, 1, 64, n);
            o.sink_threads = static_cast<unsigned>(n);
        } else {
            std::cerr << "herald-bench: unknown option '" << a << "'\n" << usage;
            return std::nullopt;
        }
        if (!ok) {
            std::cerr << "herald-bench: invalid value '" << v << "' for " << a << "\n" << usage;
            return std::nullopt;
        }
    }
    return o;
}

} // namespace herald_bench

#endif
