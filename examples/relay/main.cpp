// herald-relay: webhooks from a JSON file, events as JSON lines on standard input, one JSON
// line per delivery attempt on standard output. Lets any language use herald.
//
//   herald-relay --webhooks hooks.json [--format herald|datagerry]
//                [--retry-schedule 0s,1s,5s] [--timeout 10s] [--connect-timeout 5s]
//                [--drain-timeout 30s] [--queue 65536]
//                [--allow-private CIDR]... [--https-only]
//                [--store memory|sqlite:PATH] [--log stdout|sqlite:PATH]
//                [--admin 127.0.0.1:PORT --admin-token-file FILE]
//
// With --store sqlite:PATH the webhooks and the pending deliveries live in PATH: an event is
// acknowledged once committed there, and what was pending when the relay stopped or died is
// delivered at its next start. --webhooks then adds or updates webhooks by name (and may be
// left out). With --log sqlite:PATH every attempt is also kept in PATH.
//
// With --admin it also serves the admin API and web page (herald::admin::server), takes events
// on POST /api/events, and keeps running after standard input closes, until SIGINT / SIGTERM.
//
// Exit status: 0 when every input line was an event, 1 when some line was not (each is
// reported on standard error with its number), 2 for bad options or a bad webhooks file
// (nothing is sent then).
#include <herald/admin/server.hpp>
#include <herald/basic_dispatcher.hpp>
#include <herald/datagerry_serializer.hpp>
#include <herald/http_transport.hpp>
#include <herald/json_serializer.hpp>
#include <herald/jsonl_log.hpp>
#include <herald/metered_log.hpp>
#include <herald/sqlite_log.hpp>
#include <herald/sqlite_store.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json/value.hpp>
#include <herald/detail/json_strict.hpp>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdio>
#include <deque>
#include <fstream>
#include <future>
#include <iostream>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

namespace {

using namespace std::chrono_literals;

struct options {
    std::string webhooks_file;
    std::string format = "herald";
    herald::retry_params retry;
    herald::http_transport_params transport;
    herald::duration drain_timeout = 30s;
    std::size_t queue = 65'536;
    std::string store_path; ///< --store sqlite:PATH; empty: in memory
    std::string log_path;   ///< --log sqlite:PATH; empty: standard output only
    std::optional<herald::admin::server_params> admin; ///< --admin: serve the API and the page
    std::string admin_token_file;
};

constexpr char const* usage_line =
    "herald-relay [--webhooks FILE] [--format herald|datagerry] [--retry-schedule 0s,1s,5s] "
    "[--timeout 10s] [--connect-timeout 5s] [--drain-timeout 30s] [--queue N] "
    "[--allow-private CIDR]... [--https-only] [--store memory|sqlite:PATH] "
    "[--log stdout|sqlite:PATH] [--admin 127.0.0.1:PORT --admin-token-file FILE]\n";

/**
 * Attempts go to standard output as JSON lines and, with --log sqlite:PATH, to the file too.
 */
class relay_log {
public:
    relay_log(herald::jsonl_log lines, std::optional<herald::sqlite_log> kept)
        : lines_(std::move(lines))
        , kept_(std::move(kept)) {}

    /// Returns the seq of the log that answers queries, so Test and Redeliver link to it.
    std::uint64_t record(herald::log_entry e) {
        if (!kept_)
            return lines_.record(std::move(e));
        auto const seq = kept_->record(e);
        lines_.record(std::move(e));
        return seq;
    }
    herald::log_page query(herald::log_query const& q) const {
        return kept_ ? kept_->query(q) : lines_.query(q);
    }
    void flush() {
        lines_.flush();
        if (kept_)
            kept_->flush();
    }

private:
    herald::jsonl_log lines_;
    std::optional<herald::sqlite_log> kept_;
};
static_assert(herald::log_sink<relay_log>);

[[noreturn]] void usage_error(std::string const& what) {
    std::cerr << "herald-relay: " << what << "\n"
              << "usage: " << usage_line;
    std::exit(2);
}

herald::duration duration_option(std::string const& name, std::string const& text) {
    auto d = herald::parse_duration(text, name);
    if (!d)
        usage_error(d.error().what());
    return *d;
}

options parse_options(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        std::string const arg = argv[i];
        if (arg == "--help" || arg == "-h") {
            std::cout << usage_line
                      << "Reads events as JSON lines on stdin, delivers them to the webhooks in "
                         "FILE (and, with --store sqlite:PATH, those kept in PATH), prints one "
                         "JSON line per attempt on stdout.\n"
                         "With --admin, also serves the admin API and web page on that address "
                         "(events on POST /api/events) and runs until SIGINT or SIGTERM.\n";
            std::exit(0);
        }
        if (arg == "--https-only") {
            o.transport.https_only = true;
            continue;
        }
        static std::set<std::string> const with_value = {
            "--webhooks",        "--format",        "--retry-schedule", "--timeout",
            "--connect-timeout", "--drain-timeout", "--queue",          "--allow-private",
            "--store",           "--log",           "--admin",          "--admin-token-file"};
        if (!with_value.contains(arg))
            usage_error("unknown option " + arg);
        if (i + 1 >= argc)
            usage_error(arg + " needs a value");
        std::string const value = argv[++i];
        if (arg == "--webhooks")
            o.webhooks_file = value;
        else if (arg == "--format") {
            if (value != "herald" && value != "datagerry")
                usage_error("--format: '" + value + "' is not herald or datagerry");
            o.format = value;
        } else if (arg == "--retry-schedule") {
            o.retry.schedule.clear();
            std::stringstream ss(value);
            std::string item;
            while (std::getline(ss, item, ','))
                o.retry.schedule.push_back(duration_option("--retry-schedule", item));
            if (auto r = herald::validate(o.retry); !r)
                usage_error("--retry-schedule: " + r.error().message);
        } else if (arg == "--timeout")
            o.transport.timeout = duration_option(arg, value);
        else if (arg == "--connect-timeout")
            o.transport.connect_timeout = duration_option(arg, value);
        else if (arg == "--drain-timeout")
            o.drain_timeout = duration_option(arg, value);
        else if (arg == "--allow-private") {
            auto c = herald::cidr::parse(value, "--allow-private");
            if (!c)
                usage_error(c.error().what());
            o.transport.addresses.allow.push_back(*c);
        } else if (arg == "--store" || arg == "--log") {
            auto& path = arg == "--store" ? o.store_path : o.log_path;
            if (value == (arg == "--store" ? "memory" : "stdout"))
                path.clear();
            else if (value.starts_with("sqlite:") && value.size() > 7)
                path = value.substr(7);
            else
                usage_error(arg + ": '" + value + "' is not " +
                            (arg == "--store" ? "memory" : "stdout") + " or sqlite:PATH");
        } else if (arg == "--admin") {
            // HOST:PORT, IPv6 in brackets: 127.0.0.1:8080, [::1]:8080; port 0 picks a free one
            auto const colon = value.rfind(':');
            std::uint64_t port = 0;
            if (colon == std::string::npos || colon == 0 ||
                !herald::detail::parse_uint(value.substr(colon + 1), port) || port > 65535)
                usage_error("--admin: '" + value + "' is not HOST:PORT (e.g. 127.0.0.1:8080)");
            auto host = value.substr(0, colon);
            if (host.size() > 2 && host.front() == '[' && host.back() == ']')
                host = host.substr(1, host.size() - 2);
            herald::admin::server_params p;
            p.address = host;
            p.port = static_cast<std::uint16_t>(port);
            o.admin = p;
        } else if (arg == "--admin-token-file") {
            o.admin_token_file = value;
        } else if (arg == "--queue") {
            std::uint64_t n = 0;
            if (!herald::detail::parse_uint(value, n) || n == 0)
                usage_error("--queue: '" + value + "' is not a positive number");
            o.queue = n;
        } else
            usage_error("unknown option " + arg);
    }
    if (o.webhooks_file.empty() && o.store_path.empty() && !o.admin)
        usage_error("--webhooks FILE is required (unless --store sqlite:PATH holds them, or "
                    "--admin manages them)");
    if (o.admin && o.admin_token_file.empty())
        usage_error("--admin needs --admin-token-file FILE (the bearer token for the API)");
    if (!o.admin && !o.admin_token_file.empty())
        usage_error("--admin-token-file is only used with --admin");
    if (o.admin) {
        std::ifstream in(o.admin_token_file);
        if (!in)
            usage_error("--admin-token-file: cannot read '" + o.admin_token_file + "'");
        std::stringstream text;
        text << in.rdbuf();
        auto token = text.str();
        while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back())))
            token.pop_back();
        if (token.size() < 16 || token.find_first_of(" \t\r\n") != std::string::npos)
            usage_error("--admin-token-file: the token in '" + o.admin_token_file +
                        "' must be one line of at least 16 characters without spaces");
        o.admin->token = token;
    }
    if (o.transport.timeout.count() <= 0 || o.transport.connect_timeout.count() <= 0)
        usage_error("timeouts must be longer than 0ms");
    return o;
}

// The whole file is checked before any webhook is created, so a bad file changes nothing.
std::vector<herald::webhook_params> read_webhooks(std::string const& path, options const& o) {
    if (path.empty())
        return {}; // --store or --admin without a file: webhooks come from there
    std::ifstream in(path);
    if (!in) {
        std::cerr << "herald-relay: cannot read webhooks file '" << path << "'\n";
        std::exit(2);
    }
    std::stringstream text;
    text << in.rdbuf();
    auto fail = [&](std::string const& what) {
        std::cerr << "herald-relay: webhooks file '" << path << "': " << what << "\n";
        std::exit(2);
    };
    auto const parsed = herald::detail::parse_json_strict(text.str(), "");
    if (!parsed)
        fail(parsed.error().what());
    auto const& doc = *parsed;
    if (!doc.is_array())
        fail("must be a JSON array of webhooks");
    std::vector<herald::webhook_params> hooks;
    auto const& arr = doc.get_array();
    for (std::size_t i = 0; i < arr.size(); ++i) {
        auto p = herald::parse_webhook_params(arr[i], "webhooks[" + std::to_string(i) + "].",
                                              o.transport.addresses, o.transport.https_only);
        if (!p)
            fail(p.error().what());
        hooks.push_back(std::move(*p));
    }
    return hooks;
}

/// Adds the file's webhooks, or updates those the store already has by the same name.
template <class Store>
bool apply_webhooks(Store& store, options const& o,
                    std::vector<herald::webhook_params> const& hooks) {
    auto const existing = store.list();
    for (std::size_t i = 0; i < hooks.size(); ++i) {
        auto same = std::find_if(existing.begin(), existing.end(), [&](herald::webhook const& w) {
            return herald::detail::iequals(w.name, hooks[i].name);
        });
        auto r = same == existing.end() ? store.create(hooks[i]) : store.update(same->id, hooks[i]);
        if (!r) {
            std::cerr << "herald-relay: webhooks file '" << o.webhooks_file << "': webhooks[" << i
                      << "]." << r.error().what() << "\n";
            return false;
        }
    }
    return true;
}

template <class Serializer, class Store>
int run(options const& o, std::vector<herald::webhook_params> const& hooks, Store store,
        std::optional<herald::sqlite_log> kept) {
    using relay_dispatcher =
        herald::basic_dispatcher<Store, herald::channel_source, Serializer, herald::http_transport,
                                 herald::metered_log<relay_log>>;
    constexpr bool durable = std::is_same_v<Store, herald::sqlite_store>;
    if (!apply_webhooks(store, o, hooks))
        return 2;
    if constexpr (durable)
        if (auto n = store.recovered())
            std::cerr << "herald-relay: " << n << " deliveries pending in '" << o.store_path
                      << "' from an earlier run\n";
    // A SQLite log's rows commit before the store's completions (docs/durability.md); its
    // failed writes show in /metrics.
    auto const log_writes = kept ? kept->observer() : std::function<herald::log_write_stats()>();
    if constexpr (durable)
        if (kept)
            store.wait_for_log(kept->barrier());
    boost::asio::io_context io;
    herald::dispatcher_params params;
    params.retry = o.retry;
    params.intake.capacity = o.queue;
    relay_dispatcher d(
        io.get_executor(), params, std::move(store), herald::http_transport(o.transport),
        herald::metered_log<relay_log>(relay_log(herald::jsonl_log(stdout), std::move(kept))));
    if (log_writes)
        d.log().watch_writes(log_writes);

    std::optional<herald::admin::server<relay_dispatcher>> admin;
    if (o.admin) {
        try {
            admin.emplace(io.get_executor(), d, *o.admin);
        } catch (std::exception const& ex) {
            std::cerr << "herald-relay: " << ex.what() << "\n";
            return 2;
        }
        admin->async_run(boost::asio::detached);
        std::cerr << "herald-relay: admin page and API on " << admin->url() << "\n";
    }

    std::atomic<bool> stop_requested{false};
    auto request_stop = [&] {
        if (admin && !stop_requested)
            admin->stop();
        if (!stop_requested.exchange(true))
            d.async_stop(o.drain_timeout, [&](std::exception_ptr, herald::stop_report report) {
                if (!report.drained)
                    std::cerr << "herald-relay: stopped with " << report.abandoned.size()
                              << " deliveries undelivered ("
                              << (durable ? "kept in '" + o.store_path + "' for the next start"
                                          : std::string("logged as failed"))
                              << "): the drain timeout came first, or nothing more could fall "
                                 "due before it\n";
            });
    };

    boost::asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](boost::system::error_code ec, int) {
        if (!ec)
            request_stop();
    });

    d.async_run([&](std::exception_ptr e) {
        signals.cancel();
        if (e) {
            try {
                std::rethrow_exception(e);
            } catch (std::exception const& ex) {
                std::cerr << "herald-relay: " << ex.what() << "\n";
            }
        }
    });

    // Standard input is read on its own thread: a blocking read must not hold up delivery.
    std::atomic<std::size_t> bad_lines{0};
    std::atomic<bool> input_done{false};
    std::thread reader([&] {
        std::string line;
        std::size_t number = 0;
        auto reject = [&](std::size_t at, std::string const& why) {
            std::cerr << "herald-relay: line " << at << ": " << why << "\n";
            ++bad_lines;
        };
        // Up to 256 publishes are awaited at once: with a durable store they share commits.
        std::deque<std::pair<std::size_t, std::future<herald::result<std::string>>>> waiting;
        bool stopped = false;
        auto settle_oldest = [&] {
            auto [at, f] = std::move(waiting.front());
            waiting.pop_front();
            auto published = f.get();
            if (!published) {
                if (published.error().code == herald::error::stopped)
                    stopped = true;
                else
                    reject(at, published.error().what());
            }
        };
        while (!stopped && !stop_requested && std::getline(std::cin, line)) {
            ++number;
            if (line.find_first_not_of(" \t\r") == std::string::npos)
                continue;
            auto e = herald::parse_event_json(line); // a key given twice is refused too
            if (!e) {
                reject(number, e.error().what());
                continue;
            }
            // Waits for room when the queue is full: backpressure on the producer.
            waiting.emplace_back(number, boost::asio::co_spawn(io, d.async_publish(std::move(*e)),
                                                               boost::asio::use_future));
            while (!waiting.empty() &&
                   (waiting.size() >= 256 ||
                    waiting.front().second.wait_for(0s) == std::future_status::ready))
                settle_oldest();
        }
        while (!waiting.empty())
            settle_oldest();
        input_done = true;
        auto const accepted = d.stats().published;
        std::cerr << "herald-relay: end of input after " << number
                  << (number == 1 ? " line, " : " lines, ") << accepted
                  << (accepted == 1 ? " event accepted\n" : " events accepted\n");
        // With the admin server, events also come from POST /api/events: keep running.
        if (!admin)
            boost::asio::post(io, request_stop);
    });

    io.run();
    d.log().flush();
    auto const s = d.stats();
    std::cerr << "herald-relay: " << s.published << " events, " << s.delivered << " delivered, "
              << s.failed << " failed, " << s.attempts << " attempts\n";
    int const status = bad_lines > 0 ? 1 : 0;
    if (!input_done) {
        // Stopped by a signal while the reader blocks on stdin: nothing can wake it portably,
        // and everything that matters is written.
        std::fflush(stdout);
        std::_Exit(status);
    }
    reader.join();
    return status;
}

} // namespace

int main(int argc, char** argv) {
    auto const o = parse_options(argc, argv);
    auto const hooks = read_webhooks(o.webhooks_file, o);
    std::optional<herald::sqlite_log> kept;
    if (!o.log_path.empty()) {
        auto log = herald::sqlite_log::open({.path = o.log_path});
        if (!log) {
            std::cerr << "herald-relay: --log: " << log.error().message << "\n";
            return 2;
        }
        kept.emplace(std::move(*log));
    }
    bool const datagerry = o.format == "datagerry";
    if (!o.store_path.empty()) {
        auto store = herald::sqlite_store::open(
            {o.store_path, o.transport.addresses, o.transport.https_only});
        if (!store) {
            std::cerr << "herald-relay: --store: " << store.error().message << "\n";
            return 2;
        }
        return datagerry
                   ? run<herald::datagerry_serializer>(o, hooks, std::move(*store), std::move(kept))
                   : run<herald::json_serializer>(o, hooks, std::move(*store), std::move(kept));
    }
    herald::memory_store store({o.transport.addresses, o.transport.https_only});
    return datagerry
               ? run<herald::datagerry_serializer>(o, hooks, std::move(store), std::move(kept))
               : run<herald::json_serializer>(o, hooks, std::move(store), std::move(kept));
}
