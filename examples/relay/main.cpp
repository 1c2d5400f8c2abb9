// herald-relay: webhooks from a JSON file, events as JSON lines on standard input, one JSON
// line per delivery attempt on standard output. Lets any language use herald.
// `herald-relay --help` lists the options with their defaults; docs/relay.md tells the rest.
//
// With --store sqlite:PATH the webhooks and the pending deliveries live in PATH: an event is
// acknowledged once committed there, and what was pending when the relay stopped or died is
// delivered at its next start. --webhooks then adds or updates webhooks by name (and may be
// left out). With --log sqlite:PATH every attempt is also kept in PATH.
//
// With --admin it also serves the admin API and web page (herald::admin::server), takes events
// on POST /api/events, and keeps running after standard input closes, until SIGINT / SIGTERM.
//
// Every line read ends accepted as an event or reported on standard error with its number.
// Exit status: 0 when every line read was accepted, 1 when some line was not, 2 for bad
// options or a bad webhooks file (nothing is sent then).
#include "input.hpp"
#include "options.hpp"

#include <herald/admin/server.hpp>
#include <herald/basic_dispatcher.hpp>
#include <herald/serializer/datagerry_serializer.hpp>
#include <herald/transport/http_transport.hpp>
#include <herald/serializer/json_serializer.hpp>
#include <herald/log/jsonl_log.hpp>
#include <herald/log/metered_log.hpp>
#include <herald/sqlite/sqlite_log.hpp>
#include <herald/sqlite/sqlite_store.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
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
using relay::options;

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
    relay_dispatcher d(io.get_executor(), params,
                       {.store = std::move(store),
                        .transport = herald::http_transport(o.transport),
                        .log = herald::metered_log<relay_log>(
                            relay_log(herald::jsonl_log(stdout), std::move(kept)))});
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
                    std::cerr << "herald-relay: stopped with "
                              << report.abandoned.size() + report.left_in_store
                              << " deliveries undelivered ("
                              << (durable ? "kept in '" + o.store_path + "' for the next start"
                                          : std::string("logged as failed"))
                              << "): the drain timeout came first, or they could not be sent "
                                 "before it\n";
            });
    };

    boost::asio::signal_set signals(io, SIGINT, SIGTERM);
    char const* stopped_by = nullptr;
    signals.async_wait([&](boost::system::error_code ec, int sig) {
        if (!ec) {
            stopped_by = sig == SIGINT ? "SIGINT" : "SIGTERM";
            request_stop();
        }
    });

    boost::asio::steady_timer finish_timer(io);
    d.async_run([&](std::exception_ptr e) {
        signals.cancel();
        finish_timer.cancel();
        stop_requested = true; // the reader stops too
        if (e) {
            try {
                std::rethrow_exception(e);
            } catch (std::exception const& ex) {
                std::cerr << "herald-relay: " << ex.what() << "\n";
            }
        }
    });

    // A durable relay at the end of input keeps running while deliveries are pending (retries
    // and circuit cool-downs may be minutes away), until they end or --finish-timeout.
    auto finish_then_stop = [&]() -> boost::asio::awaitable<void> {
        auto const started = std::chrono::steady_clock::now();
        auto const limit = o.finish_timeout ? " or for at most --finish-timeout " +
                                                  herald::format_duration(*o.finish_timeout)
                                            : std::string();
        bool said = false;
        while (!stop_requested) {
            auto const s = d.stats();
            if (s.queued == 0 && s.pending == 0) {
                if (said)
                    std::cerr << "herald-relay: every pending delivery has ended\n";
                break;
            }
            if (o.finish_timeout &&
                std::chrono::steady_clock::now() - started >= *o.finish_timeout) {
                std::cerr << "herald-relay: --finish-timeout " +
                                 herald::format_duration(*o.finish_timeout)
                          << " reached with " << s.pending << " deliveries pending\n";
                break;
            }
            if (!said) {
                std::cerr << "herald-relay: " << s.pending << " deliveries pending: running until "
                          << "they end" << limit << " (SIGTERM stops now; they stay in '"
                          << o.store_path << "')\n";
                said = true;
            }
            finish_timer.expires_after(200ms);
            auto [ec] =
                co_await finish_timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
            (void)ec;
        }
        request_stop();
    };

    // Standard input is read on its own thread: a blocking read must not hold up delivery. It
    // holds work on the io_context until every line it read is accepted or reported.
    relay::line_problems problems;
    std::size_t lines_read = 0;
    std::size_t lines_accepted = 0;
    bool input_ended = false;
    auto input_work = boost::asio::make_work_guard(io);
    std::thread reader([&] {
        relay::line_reader in(STDIN_FILENO, o.max_line_bytes);
        std::string line;
        std::size_t number = 0;
        bool refused = false; // the dispatcher takes no more events
        // Up to 256 publishes are awaited at once: with a durable store they share commits.
        std::deque<std::pair<std::size_t, std::future<herald::result<std::string>>>> waiting;
        auto settle_oldest = [&] {
            auto [at, f] = std::move(waiting.front());
            waiting.pop_front();
            auto published = f.get();
            if (published) {
                ++lines_accepted;
            } else if (published.error().code == herald::error::stopped) {
                refused = true;
                problems.report(at, "not accepted: the relay stopped before there was room for "
                                    "it (send it again)");
            } else {
                problems.report(at, published.error().what());
            }
        };
        auto const too_long = "longer than --max-line-bytes (" + std::to_string(o.max_line_bytes) +
                              " bytes): skipped";
        while (!refused && !stop_requested) {
            auto const st = in.next(line, stop_requested);
            if (st == relay::line_reader::status::end)
                input_ended = true;
            if (st == relay::line_reader::status::end || st == relay::line_reader::status::stopped)
                break;
            ++number;
            if (st == relay::line_reader::status::too_long) {
                problems.report(number, too_long);
                continue;
            }
            if (line.find_first_not_of(" \t\r") == std::string::npos)
                continue;
            auto e = herald::parse_event_json(line); // a key given twice is refused too
            if (!e) {
                if (waiting.empty()) {
                    problems.report(number, e.error().what());
                } else { // after the lines before it, which publish may still refuse
                    std::promise<herald::result<std::string>> refused_now;
                    refused_now.set_value(e.error());
                    waiting.emplace_back(number, refused_now.get_future());
                }
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
        problems.flush();
        lines_read = number;
        boost::asio::post(io, [&] {
            auto const refused_lines = problems.total();
            std::cerr << "herald-relay: "
                      << (input_ended ? "end of input after " : "stopped reading after ")
                      << lines_read << (lines_read == 1 ? " line: " : " lines: ") << lines_accepted
                      << (lines_accepted == 1 ? " event accepted" : " events accepted");
            if (refused_lines > 0)
                std::cerr << ", " << refused_lines << " not (reported above)";
            std::cerr << "\n";
            // With the admin server, events also come from POST /api/events: keep running.
            if (!input_ended || admin || stop_requested)
                return;
            if constexpr (durable)
                // On the dispatcher's strand: after the hand-overs of the last commits, so
                // that what they queued is counted as pending.
                boost::asio::co_spawn(d.get_executor(), finish_then_stop(), boost::asio::detached);
            else
                request_stop();
        });
        input_work.reset();
    });

    io.run();
    reader.join();
    d.log().flush();
    auto const s = d.stats();
    if (stopped_by)
        std::cerr << "herald-relay: stopped by " << stopped_by << "\n";
    std::cerr << "herald-relay: " << s.published << " events, " << s.delivered << " delivered, "
              << s.failed << " failed, " << s.attempts << " attempts\n";
    return problems.total() > 0 ? 1 : 0;
}

} // namespace

int main(int argc, char** argv) {
    auto const o = relay::parse_options(argc, argv);
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
