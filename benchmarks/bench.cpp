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

#include <herald/basic_dispatcher.hpp>
#include <herald/http_transport.hpp>
#include <herald/signature.hpp>
#include <herald/sqlite_store.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/span_body.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/serialize.hpp>
#include <boost/url/parse.hpp>

#ifdef HERALD_BENCH_LIBCURL
#include <curl/curl.h>
#endif

#include <arpa/inet.h>
#include <malloc.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <utility>
#include <variant>
#include <vector>

extern char** environ;

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using steady = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t fanout_webhooks = 1'000;
constexpr std::size_t matching_webhooks = 10'000;
constexpr std::size_t memory_deliveries = 1'000'000;

double seconds_since(steady::time_point t0) {
    return std::chrono::duration<double>(steady::now() - t0).count();
}

double cpu_seconds(clockid_t id) {
    timespec ts{};
    ::clock_gettime(id, &ts);
    return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

/// CPU time used so far, from a /proc stat file: {user, system} seconds ({0, 0} when unknown).
/// The kernel counts them in ticks (10 ms), so they suit runs of a second or more.
std::pair<double, double> stat_times(std::string const& path) {
    std::ifstream in(path);
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto const close = stat.rfind(')');
    if (close == std::string::npos)
        return {0, 0};
    std::istringstream fields(stat.substr(close + 2));
    std::string skip;
    for (int i = 3; i < 14; ++i) // fields 3 to 13 come before utime (14) and stime (15)
        fields >> skip;
    double utime = 0, stime = 0;
    fields >> utime >> stime;
    double const tick = double(::sysconf(_SC_CLK_TCK));
    return {utime / tick, stime / tick};
}

/// CPU time used so far by another process (user + system); 0 when unknown.
double process_cpu_seconds(pid_t pid) {
    auto const [user, sys] = stat_times("/proc/" + std::to_string(pid) + "/stat");
    return user + sys;
}

/// What one thread used over a run: CPU seconds (exact), and user and system seconds (ticks).
struct thread_use {
    double cpu = 0;
    double user = 0;
    double sys = 0;
};

/// Runs `f` on a new thread; returns the thread and its kernel id (for thread_meter).
template <class F>
std::pair<std::thread, pid_t> start_thread(F f) {
    std::promise<pid_t> tid;
    auto got = tid.get_future();
    std::thread t([tid = std::move(tid), f = std::move(f)]() mutable {
        tid.set_value(::gettid());
        f();
    });
    return {std::move(t), got.get()};
}

/// Measures one thread of this process from construction to `used()`.
class thread_meter {
public:
    /// The calling thread (`used()` must be called on it too).
    thread_meter()
        : thread_meter(::gettid(), CLOCK_THREAD_CPUTIME_ID) {}

    /// Thread `t`, whose kernel id is `tid`.
    thread_meter(std::thread& t, pid_t tid)
        : thread_meter(tid, clock_of(t)) {}

    thread_use used() const {
        auto const now = sample();
        return {now.cpu - start_.cpu, now.user - start_.user, now.sys - start_.sys};
    }

private:
    thread_meter(pid_t tid, clockid_t clock)
        : tid_(tid)
        , clock_(clock)
        , start_(sample()) {}

    static clockid_t clock_of(std::thread& t) {
        clockid_t id{};
        if (::pthread_getcpuclockid(t.native_handle(), &id) != 0)
            throw std::runtime_error("no CPU clock for a thread");
        return id;
    }

    thread_use sample() const {
        auto const [user, sys] = stat_times("/proc/self/task/" + std::to_string(tid_) + "/stat");
        return {cpu_seconds(clock_), user, sys};
    }

    pid_t tid_;
    clockid_t clock_;
    thread_use start_;
};

// ---------------------------------------------------------------------------------------------
// Options

struct options {
    std::string url; // empty: start the sink
    std::size_t connections = 8;
    std::size_t events = 200'000;
    bool events_given = false;
    std::size_t body_bytes = 1024;
    std::vector<std::string> scenarios; // empty: all
    bool json = false;
    std::chrono::seconds timeout = 120s;
    std::string sink_path;
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

constexpr std::string_view all_scenarios[] = {"limit",  "libcurl",  "signed",  "herald",
                                              "fanout", "stalls",   "latency", "isolation",
                                              "memory", "matching", "sqlite"};

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
                      matching, sqlite
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

std::optional<options> parse_options(int argc, char** argv) {
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

// ---------------------------------------------------------------------------------------------
// Results: a table row and a JSON line per scenario

using value = std::variant<std::int64_t, double, std::string, bool>;

struct report {
    std::string scenario;
    double per_second = 0;
    std::string unit;    // "requests/s", "deliveries/s", ...
    std::string summary; // the table's last column
    std::vector<std::pair<std::string, value>> fields;
    bool skipped = false;

    report& add(std::string key, value v) {
        fields.emplace_back(std::move(key), std::move(v));
        return *this;
    }
};

std::string json_escape(std::string_view s) {
    std::string out;
    for (char c : s) {
        switch (c) {
        case '"':
            out += "\\\"";
            break;
        case '\\':
            out += "\\\\";
            break;
        case '\n':
            out += "\\n";
            break;
        default:
            if (static_cast<unsigned char>(c) < 0x20) {
                char buf[8];
                std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
                out += buf;
            } else {
                out += c;
            }
        }
    }
    return out;
}

std::string json_number(double d) {
    if (!std::isfinite(d))
        return "null";
    char buf[32];
    if (std::fabs(d) >= 1000 || d == std::floor(d))
        std::snprintf(buf, sizeof buf, "%.0f", d);
    else
        std::snprintf(buf, sizeof buf, "%.4g", d);
    return buf;
}

std::string to_json(report const& r) {
    std::string out = "{\"scenario\":\"" + json_escape(r.scenario) +
                      "\",\"per_second\":" + json_number(std::round(r.per_second));
    if (r.skipped)
        out += ",\"skipped\":true";
    for (auto const& [k, v] : r.fields) {
        out += ",\"" + json_escape(k) + "\":";
        if (auto const* i = std::get_if<std::int64_t>(&v))
            out += std::to_string(*i);
        else if (auto const* d = std::get_if<double>(&v))
            out += json_number(*d);
        else if (auto const* s = std::get_if<std::string>(&v))
            out += "\"" + json_escape(*s) + "\"";
        else
            out += std::get<bool>(v) ? "true" : "false";
    }
    return out + "}";
}

// 1234567.8 -> "1,234,568"
std::string grouped(double v) {
    auto n = static_cast<long long>(std::llround(v));
    bool const negative = n < 0;
    std::string digits = std::to_string(negative ? -n : n);
    std::string out;
    for (std::size_t i = 0; i < digits.size(); ++i) {
        if (i > 0 && (digits.size() - i) % 3 == 0)
            out += ',';
        out += digits[i];
    }
    return negative ? "-" + out : out;
}

std::string fixed(double v, int decimals) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    return buf;
}

/**
 * Prints each scenario as it finishes (a table row, and a JSON line with --json) and judges it
 * against the issue's targets, using the rates of the scenarios that ran before it.
 */
class results {
public:
    explicit results(bool json)
        : json_(json) {}

    void add(report r) {
        judge(r);
        std::ostream& table = json_ ? std::cerr : std::cout;
        if (json_)
            std::cout << to_json(r) << std::endl;
        if (!header_printed_) {
            table << pad("scenario", 10) << pad("rate", 26) << "figures\n";
            header_printed_ = true;
        }
        std::string const rate =
            r.skipped ? std::string("-") : grouped(r.per_second) + " " + r.unit;
        table << pad(r.scenario, 10) << pad(rate, 26) << r.summary << std::endl;
        rates_[r.scenario] = r.skipped ? 0.0 : r.per_second;
    }

    /// The rate a scenario measured in this run, if it ran and was not skipped.
    std::optional<double> rate(std::string const& scenario) const {
        auto it = rates_.find(scenario);
        if (it == rates_.end() || it->second <= 0)
            return std::nullopt;
        return it->second;
    }

    /// The targets of the scenarios that ran, each with its figure from this run.
    void print_targets() const {
        if (verdicts_.empty())
            return;
        std::ostream& table = json_ ? std::cerr : std::cout;
        table << "targets (one run):\n";
        for (auto const& v : verdicts_)
            table << "  " << pad(v.what, 16) << pad(v.figure, 14) << pad(v.target, 16)
                  << (v.met ? "met" : "MISSED") << "\n";
        for (auto const& n : notes_)
            table << "  " << n << "\n";
        table << std::flush;
    }

private:
    struct verdict {
        std::string what, figure, target;
        bool met;
    };

    static std::optional<double> field(report const& r, std::string_view key) {
        for (auto const& [k, v] : r.fields) {
            if (k != key)
                continue;
            if (auto const* d = std::get_if<double>(&v))
                return *d;
            if (auto const* i = std::get_if<std::int64_t>(&v))
                return double(*i);
        }
        return std::nullopt;
    }

    void judge(report& r) {
        if (r.skipped)
            return;
        bool any = false, met = true;
        auto check = [&](std::string what, std::string figure, std::string target, bool ok) {
            verdicts_.push_back({std::move(what), std::move(figure), std::move(target), ok});
            any = true;
            met = met && ok;
        };
        auto ratio = [&](char const* name, char const* key, char const* base, double at_least) {
            auto const b = rate(base);
            if (!b)
                return;
            double const x = r.per_second / *b;
            r.add(key, x);
            check(name, fixed(x, 2), ">= " + fixed(at_least, 1), x >= at_least);
        };
        if (r.scenario == "herald") {
            ratio("herald/limit", "vs_limit", "limit", 0.9);
            ratio("herald/libcurl", "vs_libcurl", "libcurl", 1.8);
            if (auto const b = rate("signed")) {
                double const x = r.per_second / *b;
                r.add("vs_signed", x);
                notes_.push_back("herald/signed   " + fixed(x, 2) +
                                 " (no target: herald against a loop doing only the per-event "
                                 "work every signed sender must do)");
            }
        } else if (r.scenario == "fanout") {
            ratio("fanout/herald", "vs_herald", "herald", 0.8);
            auto const n = field(r, "serializations"), events = field(r, "events");
            if (n && events)
                check("serializations", grouped(*n), "= " + grouped(*events) + " events",
                      *n == *events);
        } else if (r.scenario == "latency") {
            auto const load = field(r, "load");
            if (auto p99 = field(r, "p99_us"); p99 && load && *load == 0.5)
                check("latency p99", grouped(*p99) + " us", "<= 2,000 us", *p99 <= 2000);
        } else if (r.scenario == "isolation") {
            if (auto x = field(r, "p99_ratio"))
                check("isolation p99 beside dead/alone", fixed(*x, 2), "<= 3.0", *x <= 3.0);
        } else if (r.scenario == "memory") {
            if (auto b = field(r, "bytes_per_delivery"))
                check("memory", grouped(*b) + " B", "<= 512 B", *b <= 512);
        } else if (r.scenario == "sqlite") {
            ratio("sqlite/herald", "vs_herald", "herald", 0.5);
        } else if (r.scenario == "matching") {
            check("matching", grouped(r.per_second) + "/s", ">= 1,000,000/s", r.per_second >= 1e6);
        }
        if (any)
            r.add("target_met", met);
    }

    static std::string pad(std::string s, std::size_t width) {
        // every column is ASCII, so bytes are columns
        if (s.size() < width)
            s.append(width - s.size(), ' ');
        else
            s += ' ';
        return s;
    }

    bool json_;
    bool header_printed_ = false;
    std::vector<std::string> notes_;
    std::map<std::string, double> rates_;
    std::vector<verdict> verdicts_;
};

// ---------------------------------------------------------------------------------------------
// The sink process and the target

/// herald-bench-sink, started with posix_spawn and stopped (SIGTERM, then SIGKILL) on scope exit.
/// It also dies with this process (--parent), so an interrupted benchmark leaves nothing behind.
class sink_process {
public:
    sink_process(std::string const& path, unsigned threads) {
        try {
            start(path, threads);
        } catch (...) {
            stop(); // no half-started sink, no temporary directory left behind
            throw;
        }
    }
    sink_process(sink_process const&) = delete;
    sink_process& operator=(sink_process const&) = delete;
    ~sink_process() { stop(); }

    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/"; }
    pid_t pid() const { return pid_; }

private:
    void start(std::string const& path, unsigned threads) {
        char dir_template[] = "/tmp/herald-bench-XXXXXX";
        if (!::mkdtemp(dir_template))
            throw std::runtime_error(std::string("mkdtemp: ") + std::strerror(errno));
        dir_ = dir_template;
        std::string const port_file = dir_ + "/port";
        std::vector<std::string> args{path,
                                      "--port",
                                      "0",
                                      "--port-file",
                                      port_file,
                                      "--threads",
                                      std::to_string(threads),
                                      "--parent",
                                      std::to_string(::getpid())};
        std::vector<char*> argv;
        for (auto& a : args)
            argv.push_back(a.data());
        argv.push_back(nullptr);
        if (int rc = ::posix_spawn(&pid_, path.c_str(), nullptr, nullptr, argv.data(), environ))
            throw std::runtime_error("cannot start " + path + ": " + std::strerror(rc));
        auto const until = steady::now() + 10s;
        for (;;) {
            {
                std::ifstream in(port_file);
                unsigned p = 0;
                if (in >> p && p != 0) {
                    port_ = static_cast<unsigned short>(p);
                    break;
                }
            }
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = 0;
                throw std::runtime_error(path + " exited before listening");
            }
            if (steady::now() > until)
                throw std::runtime_error(path + " did not write its port file within 10 s");
            std::this_thread::sleep_for(10ms);
        }
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }

    void stop() {
        std::error_code ec;
        if (!dir_.empty())
            std::filesystem::remove_all(dir_, ec);
        if (pid_ <= 0)
            return;
        ::kill(pid_, SIGTERM);
        auto const until = steady::now() + 3s;
        int status = 0;
        while (::waitpid(pid_, &status, WNOHANG) == 0) {
            if (steady::now() > until) {
                ::kill(pid_, SIGKILL);
                ::waitpid(pid_, &status, 0);
                break;
            }
            std::this_thread::sleep_for(5ms);
        }
        pid_ = 0;
    }

    pid_t pid_ = 0;
    unsigned short port_ = 0;
    std::string dir_;
};

struct target {
    std::string url;     // as given, e.g. http://127.0.0.1:4321/
    std::string host;    // for the Host header
    std::string address; // to resolve
    std::string port;
    std::string path; // request target, at least "/"

    static target parse(std::string const& url) {
        auto const u = boost::urls::parse_uri(url);
        if (!u || u->scheme() != "http")
            throw std::runtime_error("--url must be an absolute http:// URL, got '" + url + "'");
        target t;
        t.url = url;
        t.host = std::string(u->encoded_host_and_port());
        t.address = u->host_address();
        t.port = u->has_port() ? std::string(u->port()) : "80";
        t.path = std::string(u->encoded_target());
        if (t.path.empty() || t.path.front() != '/')
            t.path.insert(0, "/");
        return t;
    }

    /// The URL of the i-th of many webhooks on the same sink: `<url>/hook/<i>`.
    std::string hook_url(std::size_t i) const {
        std::string u = url;
        auto const q = u.find('?');
        if (q != std::string::npos)
            u.resize(q);
        if (!u.empty() && u.back() == '/')
            u.pop_back();
        return u + "/hook/" + std::to_string(i);
    }
};

/// The sink this run started, if any: its CPU time is part of each I/O scenario's figures.
pid_t sink_pid = 0;

/**
 * CPU time per request, which a busy shared machine disturbs much less than the rates: the
 * sending thread (the Beast loop, curl's loop, the dispatcher's io thread), the whole
 * benchmark process (for herald this includes the thread that builds and publishes events),
 * and the sink.
 */
class cpu_meter {
public:
    cpu_meter()
        : process0_(cpu_seconds(CLOCK_PROCESS_CPUTIME_ID))
        , sink0_(sink_pid ? process_cpu_seconds(sink_pid) : 0) {}

    /// `sender`: what the sending thread used over the run.
    void finish(report& r, thread_use const& sender, double requests) const {
        if (requests <= 0)
            return;
        double const sender_s = sender.cpu;
        double const process_s = cpu_seconds(CLOCK_PROCESS_CPUTIME_ID) - process0_;
        auto us = [&](double x) {
            return x / requests * 1e6;
        };
        r.add("sender_cpu_us", us(sender_s))
            .add("sender_user_us", us(sender.user))
            .add("sender_sys_us", us(sender.sys))
            .add("process_cpu_us", us(process_s));
        r.summary += "; CPU per request: sender " + fixed(us(sender_s), 1) + " us (user " +
                     fixed(us(sender.user), 1) + ", system " + fixed(us(sender.sys), 1) + ")";
        if (process_s > sender_s * 1.05)
            r.summary += ", process " + fixed(us(process_s), 1) + " us";
        if (sink_pid) {
            double const sink_s = process_cpu_seconds(sink_pid) - sink0_;
            r.add("sink_cpu_us", us(sink_s));
            r.summary += ", sink " + fixed(us(sink_s), 1) + " us";
        }
    }

private:
    double process0_;
    double sink0_;
};

// ---------------------------------------------------------------------------------------------
// What is sent

/// The events every scenario publishes: a created object whose JSON is about `bytes` long.
struct event_factory {
    boost::json::object object;

    explicit event_factory(std::size_t bytes) {
        object["hostname"] = "db-1.example.net";
        object["ip"] = "10.0.0.7";
        object["rack"] = "B3";
        for (std::size_t i = 0; boost::json::serialize(object).size() < bytes; ++i)
            object["field_" + std::to_string(i)] = "value-value-value-" + std::to_string(i);
    }

    /// Builds `n` events before a timed run: building an object is the application's work,
    /// not herald's (the limit and libcurl scenarios also send a body built beforehand).
    std::vector<herald::object_event> make_many(std::size_t n) const {
        std::vector<herald::object_event> out;
        out.reserve(n);
        for (std::size_t i = 0; i < n; ++i)
            out.push_back(make(i));
        return out;
    }

    herald::object_event make(std::size_t i, std::string id = {}) const {
        auto e = herald::object_event::created(std::to_string(i), object);
        e.object_type = "server";
        e.id = std::move(id);
        return e;
    }

    /// The body herald sends for one of these events: the limit and libcurl send the same.
    std::string body() const {
        auto e = make(0);
        (void)herald::prepare_event(e);
        return herald::json_serializer().serialize(e).body;
    }
};

// ---------------------------------------------------------------------------------------------
// limit: a minimal Beast client

struct loop_counters {
    std::size_t started = 0;
    std::size_t ok = 0;
    std::size_t failed = 0;
    std::string first_error;
};

/// A connection to the sink with Nagle off, or nullopt (the error in `c`).
asio::awaitable<std::optional<tcp::socket>>
open_connection(tcp::resolver::results_type const& endpoints, loop_counters& c) {
    tcp::socket socket(co_await asio::this_coro::executor);
    auto [ec, ep] = co_await asio::async_connect(socket, endpoints, use_tuple);
    (void)ep;
    if (ec) {
        c.first_error = "connect: " + ec.message();
        co_return std::nullopt;
    }
    socket.set_option(tcp::no_delay(true));
    co_return std::move(socket);
}

/// Sends `msg` and reads the answer, counting it in `c`; false once the connection is done.
template <class Body>
asio::awaitable<bool> exchange(tcp::socket& socket, beast::flat_buffer& buffer,
                               http::request<Body> const& msg, loop_counters& c) {
    auto [wec, wn] = co_await http::async_write(socket, msg, use_tuple);
    (void)wn;
    http::response<http::string_body> res;
    boost::system::error_code rec = wec;
    if (!wec)
        std::tie(rec, std::ignore) = co_await http::async_read(socket, buffer, res, use_tuple);
    if (rec) {
        ++c.failed;
        if (c.first_error.empty())
            c.first_error = rec.message();
        co_return false;
    }
    if (res.result_int() / 100 == 2)
        ++c.ok;
    else
        ++c.failed;
    co_return res.keep_alive();
}

asio::awaitable<void> limit_worker(tcp::resolver::results_type const& endpoints,
                                   http::request<http::span_body<char const>> const& msg,
                                   std::size_t total, steady::time_point deadline,
                                   loop_counters& c) {
    auto socket = co_await open_connection(endpoints, c);
    if (!socket)
        co_return;
    beast::flat_buffer buffer;
    while (c.started < total && steady::now() < deadline) {
        ++c.started;
        if (!co_await exchange(*socket, buffer, msg, c))
            co_return;
    }
}

/// The minimal request: Host, Content-Type, Content-Length and the body herald sends.
http::request<http::span_body<char const>> minimal_post(target const& t, std::string const& body) {
    http::request<http::span_body<char const>> msg{http::verb::post, t.path, 11};
    msg.set(http::field::host, t.host);
    msg.set(http::field::content_type, "application/json");
    msg.body() = std::span<char const>(body.data(), body.size());
    msg.prepare_payload();
    return msg;
}

/**
 * Runs `worker(deadline)` on each of the connections in one thread until they are done and
 * reports what `c` counted, as `scenario` (the rate in requests/s).
 */
template <class Worker>
report run_loop(options const& o, char const* scenario, std::string what, loop_counters const& c,
                Worker worker) {
    asio::io_context io(1);
    cpu_meter const cpu;
    thread_meter const thread;
    auto const t0 = steady::now();
    auto const deadline = t0 + o.timeout;
    for (std::size_t i = 0; i < o.connections; ++i)
        asio::co_spawn(io, worker(deadline), asio::detached);
    io.run();
    double const s = seconds_since(t0);
    auto const used = thread.used();

    report r{scenario, double(c.ok) / s, "requests/s"};
    r.summary = grouped(double(c.ok)) + " requests in " + fixed(s, 2) + " s, " +
                std::to_string(o.connections) + " connections, " + std::move(what);
    if (c.failed || c.ok < o.events)
        r.summary += " (" + grouped(double(c.failed)) + " failed" +
                     (c.first_error.empty() ? "" : ": " + c.first_error) + ")";
    r.add("requests", std::int64_t(c.ok))
        .add("failed", std::int64_t(c.failed))
        .add("seconds", s)
        .add("connections", std::int64_t(o.connections));
    cpu.finish(r, used, double(c.ok + c.failed));
    return r;
}

tcp::resolver::results_type resolve(target const& t) {
    asio::io_context io;
    return tcp::resolver(io).resolve(t.address, t.port);
}

report run_limit(options const& o, target const& t, std::string const& body) {
    auto const endpoints = resolve(t);
    auto const msg = minimal_post(t, body);
    loop_counters c;
    auto r = run_loop(o, "limit", "body " + grouped(double(body.size())) + " B", c,
                      [&](steady::time_point deadline) {
                          return limit_worker(endpoints, msg, o.events, deadline, c);
                      });
    r.add("body_bytes", std::int64_t(body.size()));
    return r;
}

// ---------------------------------------------------------------------------------------------
// signed: the limit loop doing the per-event work every signed webhook sender must do

struct signed_loop {
    std::vector<herald::object_event> events;
    std::size_t next = 0;
    std::vector<herald::secret> secrets{herald::secret::generate()};
    herald::json_serializer serializer;
    loop_counters c;
};

asio::awaitable<void> signed_worker(tcp::resolver::results_type const& endpoints, target const& t,
                                    steady::time_point deadline, signed_loop& loop) {
    auto socket = co_await open_connection(endpoints, loop.c);
    if (!socket)
        co_return;
    beast::flat_buffer buffer;
    while (loop.next < loop.events.size() && steady::now() < deadline) {
        ++loop.c.started;
        // What herald does for each event and no sender can skip: an id and a timestamp
        // (prepare_event), the body (the same serializer), the signature, the headers.
        herald::object_event e = std::move(loop.events[loop.next++]);
        (void)herald::prepare_event(e);
        auto body = loop.serializer.serialize(e);
        auto const now = herald::to_unix_seconds(herald::clock::now());
        http::request<http::string_body> msg{http::verb::post, t.path, 11};
        msg.set(http::field::host, t.host);
        msg.set(http::field::content_type, body.content_type);
        msg.set(http::field::user_agent, herald::user_agent);
        msg.set("webhook-id", e.id);
        msg.set("webhook-timestamp", std::to_string(now));
        msg.set("webhook-signature", herald::sign(e.id, now, body.body, loop.secrets));
        msg.body() = std::move(body.body);
        msg.prepare_payload();
        if (!co_await exchange(*socket, buffer, msg, loop.c))
            co_return;
    }
}

report run_signed(options const& o, target const& t, event_factory const& f) {
    auto const endpoints = resolve(t);
    signed_loop loop;
    loop.events = f.make_many(o.events);
    return run_loop(
        o, "signed", "each event serialized, signed and sent with the webhook headers", loop.c,
        [&](steady::time_point deadline) { return signed_worker(endpoints, t, deadline, loop); });
}

// ---------------------------------------------------------------------------------------------
// libcurl: the multi interface

#ifdef HERALD_BENCH_LIBCURL
std::size_t discard_response(char*, std::size_t size, std::size_t n, void*) {
    return size * n;
}

report run_libcurl(options const& o, target const& t, std::string const& body) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURLM* multi = curl_multi_init();
    auto const conns = static_cast<long>(o.connections);
    curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, conns);
    curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, conns);
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, conns);
    curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
    headers = curl_slist_append(headers, "Expect:"); // no 100-continue round trip
    std::vector<CURL*> easy(o.connections);
    std::size_t started = 0, ok = 0, failed = 0;
    std::string first_error;
    for (auto& e : easy) {
        e = curl_easy_init();
        curl_easy_setopt(e, CURLOPT_URL, t.url.c_str());
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body.data());
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard_response);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
        if (started < o.events) {
            curl_multi_add_handle(multi, e);
            ++started;
        }
    }
    cpu_meter const cpu;
    thread_meter const thread;
    auto const t0 = steady::now();
    auto const deadline = t0 + o.timeout;
    long connects = 0;
    while (ok + failed < started && steady::now() < deadline) {
        int running = 0;
        curl_multi_perform(multi, &running);
        int left = 0;
        while (CURLMsg* m = curl_multi_info_read(multi, &left)) {
            if (m->msg != CURLMSG_DONE)
                continue;
            CURL* e = m->easy_handle;
            long code = 0, n = 0;
            curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
            curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &n);
            connects += n;
            if (m->data.result == CURLE_OK && code / 100 == 2) {
                ++ok;
            } else {
                ++failed;
                if (first_error.empty())
                    first_error = m->data.result != CURLE_OK ? curl_easy_strerror(m->data.result)
                                                             : "HTTP " + std::to_string(code);
            }
            curl_multi_remove_handle(multi, e);
            if (started < o.events) {
                curl_multi_add_handle(multi, e); // same handle: its connection is reused
                ++started;
            }
        }
        if (ok + failed < started)
            curl_multi_poll(multi, nullptr, 0, 100, nullptr);
    }
    double const s = seconds_since(t0);
    auto const used = thread.used();
    for (auto* e : easy) {
        curl_multi_remove_handle(multi, e);
        curl_easy_cleanup(e);
    }
    curl_slist_free_all(headers);
    curl_multi_cleanup(multi);
    curl_global_cleanup();

    report r{"libcurl", double(ok) / s, "requests/s"};
    r.summary = grouped(double(ok)) + " requests in " + fixed(s, 2) + " s, " +
                std::to_string(o.connections) + " connections (" + std::to_string(connects) +
                " opened)";
    if (failed || ok < o.events)
        r.summary += " (" + grouped(double(failed)) + " failed" +
                     (first_error.empty() ? "" : ": " + first_error) + ")";
    r.add("requests", std::int64_t(ok))
        .add("failed", std::int64_t(failed))
        .add("seconds", s)
        .add("connections", std::int64_t(o.connections))
        .add("connections_opened", std::int64_t(connects))
        .add("body_bytes", std::int64_t(body.size()))
        .add("version", std::string("libcurl/") + curl_version_info(CURLVERSION_NOW)->version);
    cpu.finish(r, used, double(ok + failed));
    return r;
}
#else
report run_libcurl(options const&, target const&, std::string const&) {
    report r{"libcurl", 0, "requests/s", "skipped (libcurl not installed)"};
    r.skipped = true;
    r.add("reason", std::string("libcurl not installed"));
    return r;
}
#endif

// ---------------------------------------------------------------------------------------------
// The dispatcher scenarios

/// Completion times of the latency scenario's events, written on the dispatcher's strand.
struct latency_probe {
    static constexpr std::string_view prefix = "evt_bench_";
    std::vector<std::int64_t> done_ns;
    std::atomic<std::size_t> done{0};

    explicit latency_probe(std::size_t n)
        : done_ns(n, 0) {}
};

std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now().time_since_epoch())
        .count();
}

/**
 * A log sink that timestamps delivered entries of the latency scenario's events (their ids
 * carry their index) and keeps everything in a memory_log, as the default dispatcher does.
 */
class timing_log {
public:
    explicit timing_log(std::shared_ptr<latency_probe> probe = nullptr)
        : probe_(std::move(probe)) {}

    std::uint64_t record(herald::log_entry e) {
        if (probe_ && e.result == herald::outcome::delivered &&
            e.event_id.starts_with(latency_probe::prefix)) {
            std::string_view const digits =
                std::string_view(e.event_id).substr(latency_probe::prefix.size());
            std::size_t i = 0;
            auto const [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), i);
            if (ec == std::errc{} && i < probe_->done_ns.size()) {
                probe_->done_ns[i] = now_ns();
                probe_->done.fetch_add(1, std::memory_order_release);
            }
        }
        return inner_.record(std::move(e));
    }

    herald::log_page query(herald::log_query const& q) const { return inner_.query(q); }

private:
    herald::memory_log inner_;
    std::shared_ptr<latency_probe> probe_;
};
static_assert(herald::log_sink<timing_log>);

/// A dispatcher on its own io_context thread; publishing happens on the caller's thread.
template <class Log>
struct rig {
    using dispatcher_type =
        herald::basic_dispatcher<herald::memory_store, herald::channel_source,
                                 herald::json_serializer, herald::http_transport, Log>;

    asio::io_context io{1};
    dispatcher_type d;
    std::thread thread;
    pid_t tid = 0; // the thread's kernel id
    std::size_t ahead = 65'536;

    rig(herald::dispatcher_params p, herald::address_policy addresses,
        herald::http_transport_params tp, Log log)
        : d(io.get_executor(), std::move(p), herald::memory_store({addresses, false}),
            herald::http_transport(std::move(tp)), std::move(log)) {}

    ~rig() {
        if (thread.joinable()) {
            io.stop();
            thread.join();
        }
    }

    void start() {
        d.async_run(asio::detached);
        std::tie(thread, tid) = start_thread([this] { io.run(); });
    }

    /// Stops the dispatcher (what is still pending after `drain` is abandoned); false when it
    /// did not finish within `wait`, in which case the io_context is stopped outright.
    bool stop(herald::duration drain, std::chrono::seconds wait) {
        auto f = d.async_stop(drain, asio::use_future);
        bool const ok = f.wait_for(wait) == std::future_status::ready;
        if (!ok)
            io.stop();
        thread.join();
        return ok;
    }

    void add_hook(std::string name, std::string url, std::optional<herald::duration> timeout = {}) {
        herald::webhook_params p;
        p.name = std::move(name);
        p.url = std::move(url);
        p.events = herald::event_type_set::all();
        p.secrets = {herald::secret::generate()}; // signing on, always
        p.timeout = timeout;
        p.connect_timeout = timeout;
        auto r = d.store().create(std::move(p));
        if (!r)
            throw std::runtime_error("cannot create webhook: " + r.error().what());
    }

    /// Publishes, waiting for room when the intake queue is full: nothing is dropped.
    void publish(herald::object_event e) {
        auto const capacity = std::min(ahead, d.source().params().capacity);
        for (;;) {
            // `ahead` events are queued: the dispatcher has work for a while, so this thread
            // sleeps long enough not to compete with it for the CPU.
            while (d.stats().queued >= capacity)
                std::this_thread::sleep_for(500us);
            auto r = d.publish(std::move(e));
            if (r)
                return;
            if (r.error().code != herald::error::queue_full)
                throw std::runtime_error("publish: " + r.error().what());
        }
    }
    void publish(event_factory const& f, std::size_t i, std::string id = {}) {
        publish(f.make(i, std::move(id)));
    }

    /// Waits until `n` deliveries ended (delivered or failed) or the deadline passes.
    herald::dispatcher_stats wait_finished(std::uint64_t n, steady::time_point deadline,
                                           steady::time_point* finished_at = nullptr) {
        for (;;) {
            auto const s = d.stats();
            if (s.delivered + s.failed >= n || steady::now() >= deadline) {
                if (finished_at)
                    *finished_at = steady::now();
                return s;
            }
            std::this_thread::sleep_for(200us);
        }
    }

    /**
     * Brings the dispatcher to its steady state before a timed run, untimed: `events` events
     * making `deliveries` deliveries open the connections and fill the log to its capacity (its
     * 10,000 entries keep their requests), so that the heap has its steady size. A cold
     * dispatcher thread grows its glibc arena page by page while the log fills: about 45 MB in
     * 11,500 mprotect calls and as many page faults (strace), all in the first 10,000 deliveries.
     */
    void warm_up(event_factory const& f, std::size_t events, std::uint64_t deliveries,
                 std::chrono::seconds timeout) {
        if (!thread.joinable())
            start();
        if (events == 0)
            return;
        auto const s = d.stats();
        for (std::size_t i = 0; i < events; ++i)
            publish(f, i);
        wait_finished(s.delivered + s.failed + deliveries, steady::now() + timeout);
    }

    /// What a timed run measured: from the first publish to the last delivery's end.
    struct timed {
        herald::dispatcher_stats stats;
        double seconds = 0;         // wall time
        double publish_seconds = 0; // until the last publish() returned
        thread_use thread_used;     // what the dispatcher thread used
    };

    /// Starts the dispatcher, publishes `batch` and waits for `deliveries` to end (bounded by
    /// `timeout`), on the clock.
    timed run_timed(std::vector<herald::object_event>& batch, std::uint64_t deliveries,
                    std::chrono::seconds timeout) {
        if (!thread.joinable())
            start();
        auto const base = d.stats(); // what a warm-up did
        thread_meter const meter(thread, tid);
        auto const t0 = steady::now();
        for (auto& e : batch)
            publish(std::move(e));
        timed out;
        out.publish_seconds = seconds_since(t0);
        steady::time_point t1;
        out.stats = wait_finished(base.delivered + base.failed + deliveries, t0 + timeout, &t1);
        out.seconds = std::chrono::duration<double>(t1 - t0).count();
        out.thread_used = meter.used();
        out.stats.published -= base.published;
        out.stats.delivered -= base.delivered;
        out.stats.failed -= base.failed;
        out.stats.attempts -= base.attempts;
        return out;
    }
};

herald::address_policy allowed_addresses(options const& o) {
    herald::address_policy a;
    a.allow.push_back(herald::cidr::parse("127.0.0.1/32").value());
    a.allow_all = !o.url.empty(); // the user's own sink, wherever it is
    return a;
}

herald::http_transport_params transport_params(options const& o) {
    herald::http_transport_params tp;
    tp.addresses = allowed_addresses(o);
    tp.max_idle_per_origin = std::max<std::size_t>(tp.max_idle_per_origin, o.connections);
    return tp;
}

std::string failures(herald::dispatcher_stats const& s, std::uint64_t expected) {
    std::string out;
    if (s.failed)
        out += ", " + grouped(double(s.failed)) + " FAILED";
    if (s.delivered + s.failed < expected)
        out += ", TIMED OUT with " + grouped(double(expected - s.delivered - s.failed)) +
               " unfinished";
    return out;
}

report run_herald(options const& o, target const& t, event_factory const& f, std::size_t events) {
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

report run_fanout(options const& o, target const& t, event_factory const& f) {
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

/**
 * The latency scenario's control: the minimal Beast client sending at the same pace, over the
 * same number of connections, to the same sink, right after herald. Connection k sends
 * requests k, k + C, k + 2C, ... each at its slot; the time from the slot to the response is
 * what this machine adds by itself (scheduling, loopback, the sink) at that moment. It is timed
 * from the slot, not from the moment it was sent: a request that waits (for a late timer, or
 * for its connection's previous answer) is late by that wait, as an event waiting in herald's
 * queue is (timing from the send would leave out exactly the stalls: coordinated omission).
 */
asio::awaitable<void> paced_worker(tcp::resolver::results_type const& endpoints,
                                   http::request<http::span_body<char const>> const& msg,
                                   std::size_t k, std::size_t stride, steady::time_point start,
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
std::vector<double> paced_control(options const& o, target const& t, std::string const& body,
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

double percentile(std::vector<double> const& sorted, double q) {
    if (sorted.empty())
        return 0;
    auto const k = static_cast<std::size_t>(std::ceil(q * double(sorted.size())));
    return sorted[std::min(k == 0 ? 0 : k - 1, sorted.size() - 1)];
}

report run_latency(options const& o, target const& t, event_factory const& f, double max_rate) {
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

    // From publish() (the issue's figure), and from the slot, as the control is timed: that
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

std::int64_t rss_bytes() {
    std::ifstream in("/proc/self/statm");
    std::int64_t size = 0, resident = 0;
    in >> size >> resident;
    return resident * ::sysconf(_SC_PAGESIZE);
}

/// A loopback listener that never accepts: connections complete in the kernel's backlog, the
/// request is written, and no answer ever comes.
class silent_listener {
public:
    silent_listener() {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
            ::listen(fd_, 64) != 0 ||
            ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0)
            throw std::runtime_error(std::string("silent listener: ") + std::strerror(errno));
        port_ = ntohs(a.sin_port);
    }
    silent_listener(silent_listener const&) = delete;
    silent_listener& operator=(silent_listener const&) = delete;
    ~silent_listener() { ::close(fd_); }

    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

private:
    int fd_ = -1;
    unsigned short port_ = 0;
};

report run_memory(options const& o, event_factory const& f) {
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

/// A loopback port nothing listens on: connections are refused at once.
std::string refused_url() {
    asio::io_context io;
    tcp::acceptor a(io, {asio::ip::make_address("127.0.0.1"), 0});
    auto const port = a.local_endpoint().port();
    a.close();
    return "http://127.0.0.1:" + std::to_string(port) + "/refused";
}

/// The healthy webhook's latencies (us, sorted) at `rate` events/s, with `bad` webhooks beside.
struct isolation_run {
    std::vector<double> us;
    herald::dispatcher_stats stats;
    std::size_t events = 0;
};

isolation_run paced_isolation(options const& o, target const& t, event_factory const& f,
                              double rate, std::size_t n, std::vector<std::string> const& bad) {
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

report run_isolation(options const& o, target const& t, event_factory const& f) {
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
report run_stalls(double seconds) {
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

report run_matching(options const& o) {
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

std::string default_sink_path() {
    std::error_code ec;
    auto const self = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (ec)
        return "herald-bench-sink";
    return (self.parent_path() / "herald-bench-sink").string();
}

} // namespace

// ---------------------------------------------------------------------------------------------
// sqlite: the herald scenario with the durable store

using sqlite_dispatcher =
    herald::basic_dispatcher<herald::sqlite_store, herald::channel_source, herald::json_serializer,
                             herald::http_transport, herald::memory_log>;

/// One of the sqlite scenario's producers: publishes events `next++` until `total`, each
/// acknowledged only once committed.
/// Publishes the events of `batch` (built before the clock starts, as in the herald scenario)
/// that `next` hands it, awaiting each commit.
asio::awaitable<void> sqlite_producer(sqlite_dispatcher& d,
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

report run_sqlite(options const& o, target const& t, event_factory const& f) {
    constexpr std::size_t producers = 64;
    namespace fs = std::filesystem;
    auto const dir = fs::temp_directory_path() / ("herald-bench-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    struct remove_dir {
        fs::path p;
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
    sqlite_dispatcher d(io.get_executor(), p, std::move(*store),
                        herald::http_transport(transport_params(o)));
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

int main(int argc, char** argv) {
    auto parsed = parse_options(argc, argv);
    if (!parsed)
        return 2;
    options const o = std::move(*parsed);
    ::signal(SIGPIPE, SIG_IGN);

    try {
        bool const needs_sink = o.wants("limit") || o.wants("libcurl") || o.wants("signed") ||
                                o.wants("herald") || o.wants("fanout") || o.wants("latency") ||
                                o.wants("isolation") || o.wants("sqlite");
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
        res.print_targets();
        return 0;
    } catch (std::exception const& e) {
        std::cerr << "herald-bench: " << e.what() << "\n";
        return 1;
    }
}
