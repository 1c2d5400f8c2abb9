// herald-relay: webhooks from a JSON file, events as JSON lines on standard input, one JSON
// line per delivery attempt on standard output. Lets any language use herald.
// `herald-relay --help` lists the options with their defaults; docs/relay.md tells the rest.
//
// With --store sqlite:PATH the webhooks and the pending deliveries live in PATH: an event is
// acknowledged once committed there, and what was pending when the relay stopped or died is
// delivered at its next start. --webhooks then adds or updates webhooks by name (and may be
// left out). With --store postgres:CONNINFO several relays share the webhooks and the queue
// in one PostgreSQL database (docs/deployment.md). With --log sqlite:PATH every attempt is
// also kept in PATH.
//
// With --admin it also serves the admin API and web page (herald::admin::server), takes events
// on POST /api/events, and keeps running after standard input closes, until SIGINT / SIGTERM.
//
// Every line read ends accepted as an event or reported on standard error with its number.
// Exit status: 0 when every line read was accepted, 1 when some line was not, 2 for bad
// options or a bad webhooks file (nothing is sent then).
#include "options.hpp"
#include "problems.hpp"

#include <herald/admin/server.hpp>
#include <herald/basic_dispatcher.hpp>
#include <herald/log/jsonl_log.hpp>
#include <herald/log/metered_log.hpp>
#include <herald/log/tee_log.hpp>
#include <herald/postgres/postgres_log.hpp>
#include <herald/postgres/postgres_store.hpp>
#include <herald/serializer/datagerry_serializer.hpp>
#include <herald/serializer/json_serializer.hpp>
#include <herald/serializer/serializer_set.hpp>
#include <herald/source/jsonl_source.hpp>
#include <herald/sqlite/sqlite_log.hpp>
#include <herald/sqlite/sqlite_store.hpp>
#include <herald/transport/http_transport.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/value.hpp>
#include <herald/detail/json_strict.hpp>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <deque>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

namespace {

using namespace std::chrono_literals;
using relay::options;

/**
 * Where the relay keeps attempts for queries (the admin page's View Logs, Test, Redeliver): in
 * memory, with --log sqlite:PATH in the file, or with --log postgres:CONNINFO in the database
 * (shared by every relay that uses it). A tee_log prints each on standard output too.
 */
class kept_log {
public:
    explicit kept_log(std::optional<herald::sqlite_log> file,
                      std::optional<herald::postgres_log> shared = std::nullopt)
        : file_(std::move(file))
        , shared_(std::move(shared)) {}

    std::uint64_t record(herald::log_entry e) {
        if (shared_)
            return shared_->record(std::move(e));
        return file_ ? file_->record(std::move(e)) : recent_.record(std::move(e));
    }
    herald::log_page query(herald::log_query const& q) const {
        if (shared_)
            return shared_->query(q);
        return file_ ? file_->query(q) : recent_.query(q);
    }
    void flush() {
        if (file_)
            file_->flush();
        if (shared_)
            shared_->flush();
    }
    /// The file's or database's failed writes, for /metrics (none in memory).
    herald::log_write_stats write_stats() const {
        if (shared_)
            return shared_->write_stats();
        return file_ ? file_->write_stats() : herald::log_write_stats{};
    }

private:
    std::optional<herald::sqlite_log> file_;
    std::optional<herald::postgres_log> shared_;
    herald::memory_log recent_{
        {.capacity = file_ || shared_ ? 0 : herald::memory_log_params{}.capacity}};
};
static_assert(herald::log_sink<kept_log> && herald::write_counting_log<kept_log>);

/// Both payload formats, a webhook picking one (`format`); --format is the default.
using relay_formats = herald::serializer_set<herald::json_serializer, herald::datagerry_serializer>;

/// Each attempt kept, then printed as a JSON line (the printer keeps none for queries).
using relay_log = herald::metered_log<herald::tee_log<kept_log>>;

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
        if (!herald::detail::format_table<relay_formats>::find(relay_formats{}, p->format))
            fail("webhooks[" + std::to_string(i) + "].format: '" + p->format +
                 "' is not a format herald-relay offers (" +
                 herald::detail::list_formats(relay_formats::names) + ")");
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
        bool const earlier_in_file = std::any_of(
            hooks.begin(), hooks.begin() + static_cast<std::ptrdiff_t>(i),
            [&](auto const& h) { return herald::detail::iequals(h.name, hooks[i].name); });
        if (!r && r.error().code == herald::error::duplicate_name && same == existing.end() &&
            !earlier_in_file) {
            // Created meanwhile by another relay on the same database: update that one.
            for (auto const& w : store.list())
                if (herald::detail::iequals(w.name, hooks[i].name))
                    r = store.update(w.id, hooks[i]);
        }
        if (!r) {
            std::cerr << "herald-relay: webhooks file '" << o.webhooks_file << "': webhooks[" << i
                      << "]." << r.error().what() << "\n";
            return false;
        }
    }
    return true;
}

struct feed_result {
    std::size_t lines_read = 0; ///< the number of the last line taken (every line at the end)
    std::size_t accepted = 0;
    bool input_ended = false; ///< else stopped (a signal, or the dispatcher refused)
};

/**
 * Publishes the events of the input's lines in order, up to 256 awaited at once (with a
 * durable store they share commits): when the queue is full, or 256 commits are pending, no
 * more lines are taken (and the source stops reading ahead). Each line taken ends accepted or
 * reported with its number, in line order. Runs on io's one thread, as do the handlers of the
 * publishes it waits for.
 */
template <class Dispatcher>
boost::asio::awaitable<feed_result> feed(Dispatcher& d, herald::jsonl_source& in,
                                         relay::line_problems& problems, options const& o,
                                         bool const& stop_requested) {
    using published = std::optional<herald::result<std::string>>;
    struct waiting_line {
        std::size_t number = 0;
        std::shared_ptr<published> done{};
    };
    auto const ex = co_await boost::asio::this_coro::executor;
    // A condition variable: each publish that ends cancels the wait.
    boost::asio::steady_timer settled(ex);
    std::deque<waiting_line> waiting;
    feed_result r;
    bool refused = false; // the dispatcher takes no more events
    auto const too_long =
        "longer than --max-line-bytes (" + std::to_string(o.max_line_bytes) + " bytes): skipped";
    auto settle_ended = [&] {
        while (!waiting.empty() && waiting.front().done->has_value()) {
            auto const at = waiting.front().number;
            auto const got = std::move(**waiting.front().done);
            waiting.pop_front();
            if (got) {
                ++r.accepted;
            } else if (got.error().code == herald::error::stopped) {
                refused = true;
                problems.report(at, "not accepted: the relay stopped before there was room for "
                                    "it (send it again)");
            } else {
                problems.report(at, got.error().what());
            }
        }
    };
    auto const forever = boost::asio::steady_timer::time_point::max();

    std::vector<herald::jsonl_line> lines;
    bool more = true;
    while (more && !refused && !stop_requested) {
        lines.clear();
        more = co_await in.async_receive_lines(lines);
        for (auto& l : lines) {
            if (refused || stop_requested)
                break; // the lines not taken are not counted as read
            r.lines_read = l.number;
            if (!l.event) {
                auto p = l.too_long
                             ? herald::make_problem(herald::error::invalid_field, "", too_long)
                             : l.event.error();
                if (waiting.empty()) // else after the lines before it, which may be refused
                    problems.report(l.number, p.what());
                else
                    waiting.push_back({l.number, std::make_shared<published>(std::move(p))});
                continue;
            }
            auto slot = std::make_shared<published>();
            waiting.push_back({l.number, slot});
            // Waits for room when the queue is full: backpressure on the producer.
            boost::asio::co_spawn(
                ex, d.async_publish(std::move(*l.event)),
                [slot, &settled](std::exception_ptr e, herald::result<std::string> got) {
                    if (e)
                        got = herald::make_problem(herald::error::invalid_field, "",
                                                   "not accepted: internal error");
                    *slot = std::move(got);
                    settled.cancel();
                });
            for (settle_ended(); waiting.size() >= 256; settle_ended()) {
                settled.expires_at(forever);
                auto [ec] =
                    co_await settled.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
                (void)ec;
            }
        }
    }
    for (settle_ended(); !waiting.empty(); settle_ended()) {
        settled.expires_at(forever);
        auto [ec] = co_await settled.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
        (void)ec;
    }
    problems.flush();
    r.input_ended = !more && in.at_end();
    if (r.input_ended)
        r.lines_read = in.lines_read(); // blank lines at the end too
    co_return r;
}

template <class Store>
int run(options const& o, std::vector<herald::webhook_params> const& hooks, Store store,
        std::optional<herald::sqlite_log> kept, std::optional<herald::postgres_log> shared) {
    using relay_dispatcher = herald::basic_dispatcher<Store, herald::channel_source, relay_formats,
                                                      herald::http_transport, relay_log>;
    constexpr bool durable = herald::durable_journal<Store>;
    constexpr bool on_file = std::is_same_v<Store, herald::sqlite_store>;
    // Where what is left waits for the next start (messages).
    std::string const kept_in =
        o.store_pg.empty()
            ? "'" + o.store_path + "'"
            : "the database (" + herald::detail::pg::describe_target(o.store_pg) + ")";
    if (!apply_webhooks(store, o, hooks))
        return 2;
    if constexpr (on_file)
        if (auto n = store.recovered())
            std::cerr << "herald-relay: " << n << " deliveries pending in '" << o.store_path
                      << "' from an earlier run\n";
    // A SQLite log's rows commit before the store's completions (docs/durability.md); its
    // failed writes show in /metrics (kept_log::write_stats, through the tee).
    if constexpr (on_file)
        if (kept)
            store.wait_for_log(kept->barrier());
    // The same with the log in the database: an attempt is logged before its delivery leaves
    // the queue, so every delivery of a relay that dies has its outcome logged or stays queued.
    if constexpr (std::is_same_v<Store, herald::postgres_store>) {
        if (kept)
            store.wait_for_log(kept->barrier());
        if (shared)
            store.wait_for_log(shared->barrier());
    }
    boost::asio::io_context io;
    herald::dispatcher_params params;
    params.retry = o.retry;
    params.intake.capacity = o.queue;
    relay_formats formats;
    formats.prefer(o.format).value(); // parse_options took herald or datagerry only
    relay_dispatcher d(
        io.get_executor(), params,
        {.store = std::move(store),
         .serializer = formats,
         .transport = herald::http_transport(o.transport),
         .log = relay_log(herald::tee_log<kept_log>(kept_log(std::move(kept), std::move(shared)),
                                                    herald::jsonl_log(stdout, {.capacity = 0})))});

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

    // Standard input is read on a thread of the source's own: a blocking read must not hold
    // up delivery. Its lines are published here, each one accepted or reported.
    herald::jsonl_source in(io.get_executor(),
                            {.fd = STDIN_FILENO, .max_line_bytes = o.max_line_bytes});
    bool stop_requested = false; // on io's thread only, as everything below
    auto request_stop = [&] {
        in.close(); // the reading stops at once
        if (admin && !stop_requested)
            admin->stop();
        if (!std::exchange(stop_requested, true))
            d.async_stop(o.drain_timeout, [&](std::exception_ptr, herald::stop_report report) {
                if (!report.drained)
                    std::cerr << "herald-relay: stopped with "
                              << report.abandoned.size() + report.left_in_store
                              << " deliveries undelivered ("
                              << (durable ? "kept in " + kept_in + " for the next start"
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
        stop_requested = true; // the feeding stops too
        in.close();
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
                          << "they end" << limit << " (SIGTERM stops now; they stay in " << kept_in
                          << ")\n";
                said = true;
            }
            finish_timer.expires_after(200ms);
            auto [ec] =
                co_await finish_timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
            (void)ec;
        }
        request_stop();
    };

    relay::line_problems problems;
    bool feed_failed = false;
    boost::asio::co_spawn(
        io, feed(d, in, problems, o, stop_requested), [&](std::exception_ptr e, feed_result r) {
            if (e) { // a failed allocation, say
                try {
                    std::rethrow_exception(e);
                } catch (std::exception const& ex) {
                    std::cerr << "herald-relay: reading standard input: " << ex.what() << "\n";
                }
                feed_failed = true;
                request_stop();
                return;
            }
            std::cerr << "herald-relay: "
                      << (r.input_ended ? "end of input after " : "stopped reading after ")
                      << r.lines_read << (r.lines_read == 1 ? " line: " : " lines: ") << r.accepted
                      << (r.accepted == 1 ? " event accepted" : " events accepted");
            if (problems.total() > 0)
                std::cerr << ", " << problems.total() << " not (reported above)";
            std::cerr << "\n";
            // With the admin server, events also come from POST /api/events: keep running.
            if (!r.input_ended || admin || stop_requested)
                return;
            if constexpr (durable)
                // On the dispatcher's strand: after the hand-overs of the last commits, so that
                // what they queued is counted as pending.
                boost::asio::co_spawn(d.get_executor(), finish_then_stop(), boost::asio::detached);
            else
                request_stop();
        });

    io.run();
    d.log().flush();
    auto const s = d.stats();
    if (stopped_by)
        std::cerr << "herald-relay: stopped by " << stopped_by << "\n";
    std::cerr << "herald-relay: " << s.published << " events, " << s.delivered << " delivered, "
              << s.failed << " failed, " << s.attempts << " attempts\n";
    return problems.total() > 0 || feed_failed ? 1 : 0;
}

} // namespace

int main(int argc, char** argv) {
    auto const o = relay::parse_options(argc, argv);
    auto const hooks = read_webhooks(o.webhooks_file, o);
    std::optional<herald::sqlite_log> kept;
    std::optional<herald::postgres_log> shared;
    if (!o.log_pg.empty()) {
        auto log = herald::postgres_log::open({.conninfo = o.log_pg});
        if (!log) {
            std::cerr << "herald-relay: --log: " << log.error().message << "\n";
            return 2;
        }
        shared.emplace(std::move(*log));
    }
    if (!o.log_path.empty()) {
        auto log = herald::sqlite_log::open({.path = o.log_path});
        if (!log) {
            std::cerr << "herald-relay: --log: " << log.error().message << "\n";
            return 2;
        }
        kept.emplace(std::move(*log));
    }
    if (!o.store_pg.empty()) {
        // The lease must outlast the longest attempt: the transport's, or a webhook's own.
        auto longest = o.transport.connect_timeout + o.transport.timeout;
        for (auto const& h : hooks)
            longest = std::max(longest, h.connect_timeout.value_or(o.transport.connect_timeout) +
                                            h.timeout.value_or(o.transport.timeout));
        herald::postgres_store_params p;
        p.conninfo = o.store_pg;
        p.addresses = o.transport.addresses;
        p.https_only = o.transport.https_only;
        p.lease = o.lease;
        p.longest_attempt = longest;
        auto store = herald::postgres_store::open(std::move(p));
        if (!store) {
            std::cerr << "herald-relay: --" << (store.error().field == "lease" ? "lease" : "store")
                      << ": " << store.error().message << "\n";
            return 2;
        }
        return run(o, hooks, std::move(*store), std::move(kept), std::move(shared));
    }
    if (!o.store_path.empty()) {
        auto store = herald::sqlite_store::open(
            {o.store_path, o.transport.addresses, o.transport.https_only});
        if (!store) {
            std::cerr << "herald-relay: --store: " << store.error().message << "\n";
            return 2;
        }
        return run(o, hooks, std::move(*store), std::move(kept), std::move(shared));
    }
    herald::memory_store store({o.transport.addresses, o.transport.https_only});
    return run(o, hooks, std::move(store), std::move(kept), std::move(shared));
}
