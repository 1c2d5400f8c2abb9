#ifndef HERALD_POSTGRES_IMPL_POSTGRES_LOG_HPP
#define HERALD_POSTGRES_IMPL_POSTGRES_LOG_HPP

// Included at the bottom of <herald/postgres/postgres_log.hpp>.

#include <herald/detail/background_writer.hpp>
#include <herald/detail/utf8.hpp>
#include <herald/postgres/detail/runtime.hpp>
#include <herald/store/detail/webhook_codec.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <atomic>
#include <climits>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <exception>
#include <future>
#include <mutex>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace herald {

namespace detail::pg {

/// Where the log's seq numbers count from: 2025-01-01T00:00:00Z. Their 41 bits of
/// milliseconds from there last until 2094 (2^41 ms is about 69.7 years).
inline constexpr std::int64_t log_seq_epoch_ms = 1'735'689'600'000;

/// The slots of a seq (5 bits): processes that have the log open on one database at once.
inline constexpr unsigned log_slots = 32;
/// Numbers of one millisecond in one slot (7 bits); the next borrows from the next millisecond.
inline constexpr unsigned log_seq_counters = 128;
/// Every seq is below this: 2^53, so that JavaScript (the admin page) reads it exactly.
inline constexpr std::uint64_t log_seq_limit = std::uint64_t(1) << 53;

/**
 * The session-level advisory lock a log holds for its slot, `pg_try_advisory_lock(key, slot)`
 * ("hlog" in ASCII; the two-key form, apart from every single-key lock such as
 * migration_lock).
 */
inline constexpr int log_slot_lock = 0x686c'6f67;

/// The advisory lock a retention run holds (pg_try_advisory_xact_lock): one process at a time.
inline constexpr long long log_retention_lock = migration_lock + 1;

/**
 * How long a body row that no entry refers to any more stays: the writer refers again to a
 * body row it wrote for at most half of this (then it writes the row again), so the retention
 * rule never deletes a row a batch is about to refer to, whichever process runs it.
 */
inline constexpr std::chrono::milliseconds log_body_grace = std::chrono::hours(1);

/// Bodies a batch sends at most (it holds at least one entry).
inline constexpr std::size_t log_batch_body_bytes = 8 * 1024 * 1024;

/**
 * The seq numbers of one process: `(ms since log_seq_epoch_ms) << 12 | slot << 7 | counter`
 * (41 + 5 + 7 bits: below log_seq_limit until 2094), strictly increasing: when the counter
 * overflows, the next millisecond is taken (a burst runs ahead of the clock, and the clock
 * catches up), and when the clock steps back the last millisecond goes on. Starts past
 * `after`; move_to() changes the slot and goes on past both.
 *
 * Thread safety: none (postgres_log calls it under its queue's lock).
 */
class log_seq_clock {
public:
    log_seq_clock(unsigned slot, std::uint64_t after)
        : slot_(slot % log_slots)
        , ms_(after >> 12) {}

    /// The next number at wall-clock time `unix_ms` (ms since the Unix epoch).
    std::uint64_t next(std::int64_t unix_ms) {
        auto const ms =
            static_cast<std::uint64_t>(std::max<std::int64_t>(unix_ms - log_seq_epoch_ms, 0));
        if (ms > ms_) {
            ms_ = ms;
            counter_ = 0;
        } else if (counter_ == log_seq_counters) {
            ++ms_; // borrowed: the clock catches up
            counter_ = 0;
        }
        return ms_ << 12 | slot_ << 7 | counter_++;
    }

    /**
     * Numbers with `slot` from now on, from the millisecond after the last one numbered (and
     * after `after`'s): past every number given so far, whichever slot they had, and past
     * `after`.
     */
    void move_to(unsigned slot, std::uint64_t after = 0) {
        slot_ = slot % log_slots;
        ms_ = std::max(ms_, after >> 12) + 1;
        counter_ = 0;
    }

private:
    std::uint64_t slot_;
    std::uint64_t ms_;
    std::uint64_t counter_ = log_seq_counters; // the next number in ms_ bumps it: past `after`
};

/// Adds `s` to an array of text: valid UTF-8 without NUL (which PostgreSQL's text refuses),
/// each byte that is not becoming U+FFFD. Receivers answer with anything.
inline void add_text(array_literal& a, std::string_view s) {
    bool const plain = std::none_of(s.begin(), s.end(), [](char ch) {
        return ch == '\0' || static_cast<unsigned char>(ch) >= 0x80;
    });
    if (plain) {
        a.add(s);
        return;
    }
    std::string valid;
    append_utf8(valid, s);
    std::string out;
    out.reserve(valid.size());
    for (char ch : valid) {
        if (ch == '\0')
            out += "\xEF\xBF\xBD";
        else
            out += ch;
    }
    a.add(std::string_view(out));
}

/// The columns read_log_entry reads, in its order; the last, the entry's row in
/// herald_log_bodies (read apart: a page's entries share few bodies).
inline constexpr char const* log_columns =
    "l.seq, l.delivery_id, l.event_id, l.webhook_id, l.webhook_name, l.url, l.type, "
    "l.object_id, l.attempt, l.started_at, l.elapsed_ms, l.status, l.outcome, l.error, "
    "l.response_excerpt, l.next_attempt_at, l.warning, l.request_headers, l.body_id";

inline time_point log_time(std::int64_t ms) {
    return time_point(std::chrono::duration_cast<clock::duration>(std::chrono::milliseconds(ms)));
}

/// Row `i` of a query of log_columns, without its body.
inline log_entry read_log_entry(rows const& r, int i) {
    log_entry e;
    e.seq = static_cast<std::uint64_t>(r.int64(i, 0));
    e.delivery_id = r.text(i, 1);
    e.event_id = r.text(i, 2);
    e.webhook = static_cast<webhook_id>(r.int64(i, 3));
    e.webhook_name = r.text(i, 4);
    e.url = r.text(i, 5);
    e.type = static_cast<event_type>(r.int64(i, 6) % 3);
    e.object_id = r.text(i, 7);
    e.attempt = static_cast<std::uint32_t>(r.int64(i, 8));
    e.started_at = log_time(r.int64(i, 9));
    e.elapsed = duration(r.int64(i, 10));
    e.status = static_cast<unsigned>(r.int64(i, 11));
    e.result = static_cast<outcome>(r.int64(i, 12) % 3);
    e.error = std::string(r.text(i, 13));
    e.response_excerpt = std::string(r.text(i, 14));
    if (!r.is_null(i, 15))
        e.next_attempt_at = log_time(r.int64(i, 15));
    e.warning = std::string(r.text(i, 16));
    e.request_headers = load_header_list(std::string(r.text(i, 17)));
    return e;
}

/// The SQLSTATE classes of a statement the database refuses for what the entries hold (data,
/// integrity, a limit): written again alone, and lost if refused alone. Anything else (the
/// connection, resources, a timeout, the schema) is waited out and tried again.
inline bool refuses_entries(std::string_view state) {
    return state.starts_with("22") || state.starts_with("23") || state.starts_with("54");
}

} // namespace detail::pg

struct postgres_log::state {
    using connection = detail::pg::connection;
    using pg_error = detail::pg::pg_error;
    using steady = std::chrono::steady_clock;
    template <class T>
    using awaitable = boost::asio::awaitable<T>;

    /// A statement on a pool connection; `fail` is told when it could not run.
    struct read_op {
        std::function<awaitable<void>(connection&)> run;
        std::function<void(problem)> fail;
    };

    /// The row this process last wrote for a body, while that body lives at that address.
    struct body_row {
        std::weak_ptr<std::string const> alive;
        std::int64_t id = 0;
        steady::time_point reuse_until{};
    };

    explicit state(postgres_log_params params)
        : p(std::move(params))
        , limiter(p.report_interval)
        , signal(rt.io())
        , linger(rt.io())
        , pause(rt.io())
        , read_signal(rt.io())
        , tick(rt.io())
        , slot_pause(rt.io()) {
        if (!p.now)
            p.now = [] {
                return clock::now();
            };
        settings.connect_timeout = p.connect_timeout;
        settings.statement_timeout = p.statement_timeout;
        writer = std::make_unique<connection>(rt.executor());
        slot_conn = std::make_unique<connection>(rt.executor());
        for (std::size_t i = 0; i < std::max<std::size_t>(p.pool_size, 1); ++i)
            readers.push_back(std::make_unique<connection>(rt.executor()));
    }

    ~state() { close(); }

    /// Connects, migrates, takes a slot, then starts the loops.
    result<void> open() {
        rt.start();
        std::optional<unsigned> got;
        std::uint64_t after = 0;
        try {
            rt.run([this, &got, &after]() -> awaitable<void> {
                co_await writer->connect(p.conninfo, settings);
                co_await detail::pg::migrate(*writer);
                co_await slot_conn->connect(p.conninfo, settings);
                got = co_await take_slot(*slot_conn, 0);
                if (!got)
                    co_return;
                // Read once the slot is ours: whoever had it before wrote all it numbered.
                after = co_await newest_seq(*slot_conn);
                for (auto& c : readers)
                    co_await c->connect(p.conninfo, settings);
            });
        } catch (std::exception const& e) {
            return detail::pg::describe(p.conninfo, e);
        }
        if (!got)
            return slots_taken();
        slot.store(*got);
        seqs.emplace(*got, after);
        rt.run([this]() -> awaitable<void> {
            boost::asio::co_spawn(rt.io(), write_loop(), boost::asio::detached);
            boost::asio::co_spawn(rt.io(), slot_loop(), boost::asio::detached);
            for (auto& r : readers)
                boost::asio::co_spawn(rt.io(), read_loop(*r), boost::asio::detached);
            if (has_retention())
                boost::asio::co_spawn(rt.io(), retention_loop(), boost::asio::detached);
            co_return;
        });
        return {};
    }

    problem slots_taken() const {
        return make_problem(error::storage_failed, "conninfo",
                            detail::pg::describe_target(p.conninfo) + ": all " +
                                std::to_string(detail::pg::log_slots) +
                                " seq slots of the log are taken: at most " +
                                std::to_string(detail::pg::log_slots) +
                                " processes can have the log open on one database at once");
    }

    /// Writes what is queued (or gives up after close_timeout without the database), stops
    /// the loops and the thread. Never on the log's thread.
    void close() {
        if (closed.exchange(true))
            return;
        boost::asio::post(rt.io(), [this] {
            closing = true;
            close_deadline = steady::now() + p.close_timeout;
            signal.cancel();
            linger.cancel();
            pause.cancel();
            read_signal.cancel();
            tick.cancel();
        });
        rt.stop();
        // The thread is gone: what it had not told yet.
        if (auto rest = limiter.flush(steady::now()))
            tell(*rest);
    }

    // ---- any thread ----

    std::uint64_t record(log_entry e) {
        bool wake = false;
        std::uint64_t seq = 0;
        {
            std::lock_guard lock(queue_mutex);
            seq = e.seq = seqs->next(to_unix_ms(clock::now()));
            queue.push_back(std::move(e));
            ++recorded;
            wake = !std::exchange(signalled, true);
        }
        if (wake)
            boost::asio::post(rt.io(), [this] { signal.cancel(); });
        return seq;
    }

    void wait_written() {
        std::unique_lock lock(queue_mutex);
        auto const target = recorded;
        done_cv.wait(lock, [&] { return done >= target; });
    }

    log_write_stats write_stats() const {
        log_write_stats out;
        out.failures = failures.count();
        out.entries_lost = entries_lost.load();
        out.last_error = failures.last();
        return out;
    }

    void push_read(read_op r) {
        boost::asio::post(rt.io(), [this, r = std::move(r)]() mutable {
            if (closing) {
                r.fail(make_problem(error::storage_failed, "conninfo", "the log is closing"));
                return;
            }
            reads.push_back(std::move(r));
            read_signal.cancel();
        });
    }

    /// Runs `f` on a pool connection and waits; `tell_failure`: a failure is reported too
    /// (otherwise only counted).
    template <class T>
    result<T> read_now(std::function<awaitable<T>(connection&)> f, bool tell_failure,
                       std::string const& what = {}) {
        auto promise = std::make_shared<std::promise<result<T>>>();
        auto fut = promise->get_future();
        push_read(
            {[promise, f](connection& c) -> awaitable<void> { promise->set_value(co_await f(c)); },
             [this, promise, tell_failure, what](problem e) {
                 e.message += what;
                 note_failure(e, tell_failure);
                 promise->set_value(result<T>(boost::system::in_place_error, std::move(e)));
             }});
        return fut.get();
    }

    bool has_retention() const { return p.max_age || p.max_per_webhook; }

    // ---- the log's thread ----

    static awaitable<void> wait(boost::asio::steady_timer& t) {
        boost::system::error_code ec;
        co_await t.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ec));
    }

    awaitable<void> write_loop() {
        std::vector<log_entry> batch;
        for (;;) {
            std::size_t waiting = 0;
            {
                std::lock_guard lock(queue_mutex);
                waiting = queue.size();
                if (waiting == 0)
                    signalled = false; // the next record wakes the loop
            }
            if (waiting == 0) {
                if (closing)
                    break;
                signal.expires_at(steady::time_point::max());
                co_await wait(signal);
                continue;
            }
            if (!closing && p.commit_interval.count() > 0 && waiting < p.max_batch) {
                linger.expires_after(p.commit_interval);
                co_await wait(linger);
            }
            take(batch);
            auto const n = batch.size();
            co_await write_batch(batch);
            batch.clear();
            {
                std::lock_guard lock(queue_mutex);
                done += n;
            }
            done_cv.notify_all();
        }
        writer->close();
        // Everything numbered with the slot is written (or lost): it may go to another process.
        slot_done = true;
        slot_pause.cancel();
        slot_conn->interrupt();
    }

    /// Takes a free slot on `c` (session-level advisory lock): `preferred` if it is free, else
    /// the first free one. None when all are taken. Throws.
    awaitable<std::optional<unsigned>> take_slot(connection& c, unsigned preferred) {
        using detail::pg::params;
        // One statement per slot: a statement trying several could take more than one.
        for (unsigned i = 0; i <= detail::pg::log_slots; ++i) {
            unsigned const s = i == 0 ? preferred : i - 1;
            if (i > 0 && s == preferred)
                continue;
            auto r =
                co_await c.exec("SELECT pg_try_advisory_lock($1::integer, $2::integer)",
                                std::move(params().integer(detail::pg::log_slot_lock).integer(s)));
            if (r.boolean(0, 0))
                co_return s;
        }
        co_return std::nullopt;
    }

    /// The newest seq in the table (0 when empty). One at or past log_seq_limit (none is) is
    /// not followed. Throws.
    static awaitable<std::uint64_t> newest_seq(connection& c) {
        auto r = co_await c.exec("SELECT coalesce(max(seq), 0) FROM herald_log WHERE seq < $1",
                                 std::move(detail::pg::params().integer(
                                     static_cast<std::int64_t>(detail::pg::log_seq_limit))));
        co_return static_cast<std::uint64_t>(r.int64(0, 0));
    }

    /**
     * Holds the slot for the log's lifetime: waits on its connection, which ends only when it
     * breaks (the lock is gone with it). Then connects again and takes the same slot if it is
     * free, else another one, and the seqs go on from the next millisecond (and past the
     * newest in the table). Until then record() goes on numbering with the slot it had. Ends
     * once the writer has written everything (slot_done).
     */
    awaitable<void> slot_loop() {
        detail::pg::backoff delay;
        while (!slot_done) {
            if (!slot_conn->ok()) {
                std::optional<problem> why;
                try {
                    co_await slot_conn->connect(p.conninfo, settings);
                    auto const got = co_await take_slot(*slot_conn, slot.load());
                    if (got) {
                        auto const after = co_await newest_seq(*slot_conn);
                        std::lock_guard lock(queue_mutex);
                        seqs->move_to(*got, after);
                        slot.store(*got);
                    } else {
                        why = slots_taken();
                    }
                } catch (std::exception const& e) {
                    why = detail::pg::describe(p.conninfo, e);
                }
                if (slot_done)
                    break;
                if (why) {
                    slot_conn->close();
                    // The same as the writer's while the database is away: told as repeats.
                    note_failure(std::move(*why));
                    slot_pause.expires_after(delay.next());
                    co_await wait(slot_pause);
                    continue;
                }
                reconnects.fetch_add(1);
                delay.reset();
            }
            bool broken = false;
            try {
                (void)co_await slot_conn->notifications(std::chrono::hours(24));
            } catch (std::exception const&) {
                broken = true; // or interrupted: slot_done
            }
            if (broken)
                slot_conn->close();
        }
        slot_conn->close();
    }

    /// The next batch from the queue: at most max_batch entries, at most
    /// log_batch_body_bytes of bodies (but one entry at least).
    void take(std::vector<log_entry>& batch) {
        std::lock_guard lock(queue_mutex);
        auto const max = std::max<std::size_t>(p.max_batch, 1);
        std::size_t bytes = 0;
        std::string const* last_body = nullptr;
        while (!queue.empty() && batch.size() < max) {
            auto const& body = queue.front().request_body;
            if (body && body.get() != last_body) {
                last_body = body.get();
                if (!batch.empty() && bytes + body->size() > detail::pg::log_batch_body_bytes)
                    break;
                bytes += body->size();
            }
            batch.push_back(std::move(queue.front()));
            queue.pop_front();
        }
    }

    /// Writes `batch` until it is committed: across broken connections and any failure but
    /// the database refusing the entries (then each alone; one refused alone is lost). Gives
    /// up only when closing, close_timeout after the first failure.
    awaitable<void> write_batch(std::vector<log_entry>& batch) {
        detail::pg::backoff delay;
        for (;;) {
            if (given_up) {
                lose(batch.size());
                co_return;
            }
            std::optional<problem> why;
            bool refused = false, lost = false;
            if (!writer->ok()) {
                try {
                    co_await writer->connect(p.conninfo, settings);
                    reconnects.fetch_add(1);
                } catch (std::exception const& e) {
                    why = detail::pg::describe(p.conninfo, e);
                    lost = true;
                }
            }
            if (!why) {
                try {
                    co_await insert(batch);
                    committed(batch.size());
                    co_return;
                } catch (pg_error const& e) {
                    lost = e.connection_lost() || !writer->ok();
                    refused = !lost && detail::pg::refuses_entries(e.sqlstate());
                    why = detail::pg::describe(p.conninfo, e);
                } catch (std::exception const& e) {
                    why = detail::pg::describe(p.conninfo, e);
                }
            }
            failing_now = true;
            note_failure(std::move(*why));
            if (lost)
                writer->close();
            if (refused) {
                if (batch.size() == 1) {
                    entries_lost.fetch_add(1);
                    co_return;
                }
                for (auto& e : batch) {
                    std::vector<log_entry> one;
                    one.push_back(std::move(e));
                    co_await write_batch(one);
                }
                co_return;
            }
            auto d = delay.next();
            if (closing) {
                auto const now = steady::now();
                if (now >= close_deadline) {
                    given_up = true;
                    continue;
                }
                d = std::min<duration>(d, std::chrono::ceil<duration>(close_deadline - now));
            }
            pause.expires_after(d);
            co_await wait(pause);
        }
    }

    /// What could not be written before the log closed.
    void lose(std::size_t n) {
        entries_lost.fetch_add(n);
        note_failure(make_problem(error::storage_failed, "conninfo",
                                  detail::pg::describe_target(p.conninfo) + ": " +
                                      std::to_string(n) + (n == 1 ? " entry" : " entries") +
                                      " not written: the log closed while the "
                                      "database could not be reached"));
    }

    void committed(std::size_t n) {
        commits.fetch_add(1);
        written.fetch_add(n);
        if (failing_now) {
            failing_now = false;
            if (limiter.pending() > 0)
                if (auto rest = limiter.flush(steady::now()))
                    tell(*rest); // the failures stopped: their count, once
        }
    }

    /// The batch in one statement: the bodies it refers to that this process has not written
    /// lately (one row per body object, not per attempt), then its rows. Throws pg_error.
    awaitable<void> insert(std::vector<log_entry> const& batch) {
        using detail::pg::add_text;
        using detail::pg::array_literal;
        array_literal seq, did, eid, hook, name, url, type, object, attempt, started, elapsed,
            status, outcome, error, excerpt, next, warning, headers, body_id, new_id, new_body;
        auto const stamp = steady::now();
        std::unordered_map<std::string const*, std::int64_t> in_batch;
        std::vector<std::pair<std::string const*, body_row>> wrote;
        for (auto const& e : batch) {
            seq.add(static_cast<std::int64_t>(e.seq));
            add_text(did, e.delivery_id);
            add_text(eid, e.event_id);
            hook.add(static_cast<std::int64_t>(e.webhook));
            add_text(name, e.webhook_name);
            add_text(url, e.url);
            type.add(static_cast<std::int64_t>(e.type));
            add_text(object, e.object_id);
            attempt.add(static_cast<std::int64_t>(e.attempt));
            started.add(to_unix_ms(e.started_at));
            elapsed.add(static_cast<std::int64_t>(e.elapsed.count()));
            status.add(static_cast<std::int64_t>(e.status));
            outcome.add(static_cast<std::int64_t>(e.result));
            add_text(error, e.error);
            add_text(excerpt, e.response_excerpt);
            if (e.next_attempt_at)
                next.add(to_unix_ms(*e.next_attempt_at));
            else
                next.null();
            add_text(warning, e.warning);
            add_text(headers, detail::header_list(e.request_headers));
            if (!e.request_body) {
                body_id.null();
                continue;
            }
            auto const* key = e.request_body.get();
            auto it = in_batch.find(key);
            if (it == in_batch.end()) {
                std::int64_t id = static_cast<std::int64_t>(e.seq); // a new row: unique
                auto c = bodies.find(key);
                bool const same = c != bodies.end() && c->second.alive.lock() == e.request_body;
                if (same)
                    id = c->second.id;
                if (!same || c->second.reuse_until <= stamp) {
                    // Written (again: refreshed), in the same statement as the rows.
                    new_id.add(id);
                    new_body.add_bytes(*e.request_body);
                    wrote.emplace_back(
                        key, body_row{e.request_body, id, stamp + detail::pg::log_body_grace / 2});
                }
                it = in_batch.emplace(key, id).first;
            }
            body_id.add(it->second);
        }
        co_await writer->exec(
            "WITH b AS (INSERT INTO herald_log_bodies (id, body) SELECT * FROM "
            "unnest($20::bigint[], $21::bytea[]) ON CONFLICT (id) DO UPDATE SET touched = now()) "
            "INSERT INTO herald_log (seq, delivery_id, event_id, webhook_id, webhook_name, url, "
            "type, object_id, attempt, started_at, elapsed_ms, status, outcome, error, "
            "response_excerpt, next_attempt_at, warning, request_headers, body_id) SELECT * FROM "
            "unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], "
            "$7::smallint[], $8::text[], $9::bigint[], $10::bigint[], $11::bigint[], "
            "$12::bigint[], $13::smallint[], $14::text[], $15::text[], $16::bigint[], "
            "$17::text[], $18::text[], $19::bigint[]) ON CONFLICT (seq) DO NOTHING",
            std::move(detail::pg::params()
                          .text(seq.str())
                          .text(did.str())
                          .text(eid.str())
                          .text(hook.str())
                          .text(name.str())
                          .text(url.str())
                          .text(type.str())
                          .text(object.str())
                          .text(attempt.str())
                          .text(started.str())
                          .text(elapsed.str())
                          .text(status.str())
                          .text(outcome.str())
                          .text(error.str())
                          .text(excerpt.str())
                          .text(next.str())
                          .text(warning.str())
                          .text(headers.str())
                          .text(body_id.str())
                          .text(new_id.str())
                          .text(new_body.str())));
        for (auto& [key, row] : wrote)
            remember(key, std::move(row));
    }

    void remember(std::string const* key, body_row row) {
        // Swept when it has doubled since the last sweep (as sqlite_log's cache).
        if (bodies.size() >= sweep_at && !bodies.contains(key)) {
            std::erase_if(bodies, [](auto const& kv) { return kv.second.alive.expired(); });
            sweep_at = std::max<std::size_t>(4096, 2 * bodies.size());
        }
        bodies.insert_or_assign(key, std::move(row));
    }

    awaitable<void> read_loop(connection& c) {
        for (;;) {
            if (reads.empty()) {
                if (closing)
                    break;
                read_signal.expires_at(steady::time_point::max());
                co_await wait(read_signal);
                continue;
            }
            auto op = std::move(reads.front());
            reads.pop_front();
            // A connection found broken when used (the server ended it while idle) is made
            // again and the read run once more: reads can be repeated.
            std::optional<problem> failed;
            for (int attempt = 0; attempt < 2; ++attempt) {
                failed.reset();
                if (!c.ok()) {
                    try {
                        co_await c.connect(p.conninfo, settings);
                        reconnects.fetch_add(1);
                    } catch (std::exception const& e) {
                        failed = detail::pg::describe(p.conninfo, e);
                        break;
                    }
                }
                bool lost = false;
                try {
                    co_await op.run(c);
                } catch (std::exception const& e) {
                    auto const* pe = dynamic_cast<pg_error const*>(&e);
                    lost = pe && (pe->connection_lost() || !c.ok());
                    failed = detail::pg::describe(p.conninfo, e);
                }
                if (!lost)
                    break;
                c.close();
            }
            if (failed)
                op.fail(std::move(*failed));
        }
        c.close();
    }

    awaitable<void> retention_loop() {
        while (!closing) {
            tick.expires_after(p.retention_interval);
            co_await wait(tick);
            if (closing)
                break;
            push_read({[this](connection& c) -> awaitable<void> { (void)co_await retain(c); },
                       [this](problem e) {
                           e.message += " (retention)";
                           note_failure(std::move(e));
                       }});
        }
    }

    /// The retention rule, unless another process is applying it; then the body rows that no
    /// entry has referred to for log_body_grace. @return the entries deleted. Throws.
    awaitable<std::size_t> retain(connection& c) {
        using detail::pg::params;
        if (!has_retention())
            co_return 0;
        std::size_t deleted = 0;
        std::optional<pg_error> failed;
        co_await c.script("BEGIN");
        try {
            auto got = co_await c.exec("SELECT pg_try_advisory_xact_lock($1)",
                                       std::move(params().integer(detail::pg::log_retention_lock)));
            if (got.boolean(0, 0)) {
                if (p.max_age) {
                    auto r = co_await c.exec(
                        "DELETE FROM herald_log WHERE started_at < $1",
                        std::move(params().integer(to_unix_ms(p.now() - *p.max_age))));
                    deleted += static_cast<std::size_t>(r.affected());
                }
                if (p.max_per_webhook) {
                    auto r = co_await c.exec(
                        "WITH over AS (SELECT webhook_id FROM herald_log GROUP BY webhook_id "
                        "HAVING count(*) > $1), cut AS (SELECT o.webhook_id, (SELECT l.seq FROM "
                        "herald_log l WHERE l.webhook_id = o.webhook_id ORDER BY l.seq DESC "
                        "OFFSET $1 LIMIT 1) AS seq FROM over o) DELETE FROM herald_log l USING "
                        "cut WHERE l.webhook_id = cut.webhook_id AND l.seq <= cut.seq",
                        std::move(params().integer(static_cast<std::int64_t>(*p.max_per_webhook))));
                    deleted += static_cast<std::size_t>(r.affected());
                }
                co_await c.exec("DELETE FROM herald_log_bodies b WHERE b.touched < now() - $1 * "
                                "interval '1 millisecond' AND NOT EXISTS (SELECT 1 FROM "
                                "herald_log l WHERE l.body_id = b.id)",
                                std::move(params().integer(detail::pg::log_body_grace.count())));
            }
            co_await c.script("COMMIT");
        } catch (pg_error const& e) {
            failed = e;
        }
        if (failed) {
            co_await c.rollback();
            throw *failed;
        }
        co_return deleted;
    }

    /// Counts a failure, and tells it unless `tell_it` is false (a query's). On the log's
    /// thread.
    void note_failure(problem failure, bool tell_it = true) {
        auto const what = failure.what();
        failures.note(std::move(failure));
        if (!tell_it)
            return;
        if (auto line = limiter.note(what, steady::now()))
            tell(*line);
    }

    void tell(std::string const& line) {
        if (p.report) {
            try {
                p.report(line);
            } catch (...) {
            }
            return;
        }
        std::size_t at = 0;
        while (at <= line.size()) {
            auto const end = std::min(line.find('\n', at), line.size());
            std::fprintf(stderr, "herald: log: %.*s\n", int(end - at), line.data() + at);
            at = end + 1;
        }
    }

    postgres_log_params p;
    detail::repeat_limiter limiter; // the log's thread's (and close's, once it stopped)
    detail::pg::runtime rt;         // before the rest: they are built on its io_context
    detail::pg::session_settings settings{};
    std::unique_ptr<connection> writer;
    std::unique_ptr<connection> slot_conn; ///< holds the slot's advisory lock
    std::vector<std::unique_ptr<connection>> readers;
    std::atomic<unsigned> slot{0}; ///< the slot of the seqs record() gives now

    // the queue: any thread, under queue_mutex
    std::mutex queue_mutex;
    std::condition_variable done_cv;
    std::optional<detail::pg::log_seq_clock> seqs;
    std::deque<log_entry> queue;
    std::uint64_t recorded = 0, done = 0;
    bool signalled = false; ///< the writer was woken since it last found the queue empty

    // the log's thread's
    boost::asio::steady_timer signal, linger, pause, read_signal, tick, slot_pause;
    std::deque<read_op> reads;
    std::unordered_map<std::string const*, body_row> bodies;
    std::size_t sweep_at = 4096;
    bool closing = false, failing_now = false, given_up = false;
    bool slot_done = false; ///< the writer is done: the slot can go
    steady::time_point close_deadline = steady::time_point::max();

    std::atomic<bool> closed{false};
    detail::write_failures failures;
    std::atomic<std::uint64_t> written{0}, commits{0}, entries_lost{0}, reconnects{0};
};

inline result<postgres_log> postgres_log::open(postgres_log_params p) {
    auto s = std::make_shared<state>(std::move(p));
    if (auto r = s->open(); !r) {
        s->close();
        return r.error();
    }
    return postgres_log(std::move(s));
}

inline postgres_log::postgres_log(std::shared_ptr<state> s)
    : s_(std::move(s)) {}
inline postgres_log::postgres_log(postgres_log&&) noexcept = default;
inline postgres_log& postgres_log::operator=(postgres_log&& o) noexcept {
    if (this != &o) {
        if (s_)
            s_->close();
        s_ = std::move(o.s_);
    }
    return *this;
}
inline postgres_log::~postgres_log() {
    if (s_)
        s_->close();
}

inline std::uint64_t postgres_log::record(log_entry e) {
    return s_->record(std::move(e));
}

namespace detail::pg {

/// The statement of a log query: its filters as in sqlite_log, newest first, `limit` + 1 rows
/// (the one more says whether there is a next page).
inline std::string log_query_sql(log_query const& q, std::size_t limit, params& ps) {
    std::string sql = std::string("SELECT ") + log_columns + " FROM herald_log l WHERE true";
    int n = 0;
    auto const arg = [&n] {
        return "$" + std::to_string(++n);
    };
    if (q.webhook) {
        sql += " AND l.webhook_id = " + arg();
        ps.integer(static_cast<std::int64_t>(*q.webhook));
    }
    if (q.type) {
        sql += " AND l.type = " + arg();
        ps.integer(static_cast<std::int64_t>(*q.type));
    }
    if (q.result) {
        sql += " AND l.outcome = " + arg();
        ps.integer(static_cast<std::int64_t>(*q.result));
    }
    if (q.since) {
        sql += " AND l.started_at >= " + arg();
        ps.integer(to_unix_ms(*q.since));
    }
    if (q.until) {
        sql += " AND l.started_at < " + arg();
        ps.integer(to_unix_ms(*q.until));
    }
    if (q.before_seq) {
        sql += " AND l.seq < " + arg();
        ps.integer(static_cast<std::int64_t>(std::min<std::uint64_t>(*q.before_seq, INT64_MAX)));
    }
    if (q.webhook_name) {
        // ASCII letters only, as memory_log and sqlite_log (NOCASE) compare names.
        sql +=
            " AND lower(l.webhook_name COLLATE \"C\") = lower(" + arg() + "::text COLLATE \"C\")";
        ps.text(*q.webhook_name);
    }
    if (q.delivery_id) {
        sql += " AND l.delivery_id = " + arg();
        ps.text(*q.delivery_id);
    }
    sql += " ORDER BY l.seq DESC LIMIT " + arg();
    ps.integer(static_cast<std::int64_t>(limit + 1));
    return sql;
}

} // namespace detail::pg

inline log_page postgres_log::query(log_query const& q) const {
    using detail::pg::rows;
    struct answer {
        rows entries, bodies; // bodies: (id, body) of those the entries refer to
    };
    auto const limit = std::clamp<std::size_t>(q.limit, 1, log_query::max_limit);
    auto r = s_->read_now<answer>(
        [q, limit](state::connection& c) -> state::awaitable<answer> {
            answer out;
            detail::pg::params ps;
            auto const sql = detail::pg::log_query_sql(q, limit, ps);
            out.entries = co_await c.exec(sql, std::move(ps));
            detail::pg::array_literal ids;
            std::unordered_set<std::string_view> seen;
            for (int i = 0; i < out.entries.size() && i < static_cast<int>(limit); ++i)
                if (!out.entries.is_null(i, 18) && seen.insert(out.entries.text(i, 18)).second)
                    ids.add(out.entries.text(i, 18));
            if (!ids.empty())
                out.bodies = co_await c.exec(
                    "SELECT id, body FROM herald_log_bodies WHERE id = ANY($1::bigint[])",
                    std::move(detail::pg::params().text(ids.str())));
            co_return out;
        },
        false);
    log_page page;
    if (!r)
        return page; // "View Logs" shows nothing rather than failing the caller
    try {
        // Entries of one event share its body, as they did when recorded.
        std::unordered_map<std::int64_t, std::shared_ptr<std::string const>> bodies;
        for (int i = 0; i < r->bodies.size(); ++i)
            bodies.emplace(r->bodies.int64(i, 0),
                           std::make_shared<std::string const>(r->bodies.bytes(i, 1)));
        auto const& found = r->entries;
        for (int i = 0; i < found.size(); ++i) {
            if (page.entries.size() == limit) {
                page.next = page.entries.back().seq;
                break;
            }
            auto e = detail::pg::read_log_entry(found, i);
            if (!found.is_null(i, 18))
                if (auto b = bodies.find(found.int64(i, 18)); b != bodies.end())
                    e.request_body = b->second;
            page.entries.push_back(std::move(e));
        }
    } catch (std::exception const&) {
        return {};
    }
    return page;
}

inline std::function<void()> postgres_log::barrier() const {
    return [w = std::weak_ptr<state>(s_)] {
        if (auto s = w.lock())
            s->wait_written();
    };
}

inline std::function<log_write_stats()> postgres_log::observer() const {
    return [w = std::weak_ptr<state>(s_)] {
        auto s = w.lock();
        return s ? s->write_stats() : log_write_stats{};
    };
}

inline log_write_stats postgres_log::write_stats() const {
    return s_->write_stats();
}

inline void postgres_log::flush() {
    s_->wait_written();
}

inline std::size_t postgres_log::apply_retention() {
    auto r = s_->read_now<std::size_t>(
        [s = s_.get()](state::connection& c) { return s->retain(c); }, true, " (retention)");
    return r ? *r : 0;
}

inline std::size_t postgres_log::size() const {
    auto r = s_->read_now<std::size_t>(
        [](state::connection& c) -> state::awaitable<std::size_t> {
            auto rows = co_await c.exec("SELECT count(*) FROM herald_log");
            co_return static_cast<std::size_t>(rows.int64(0, 0));
        },
        false);
    return r ? *r : 0;
}

inline postgres_log_stats postgres_log::stats() const {
    auto& s = *s_;
    postgres_log_stats out;
    out.written = s.written.load();
    out.commits = s.commits.load();
    out.failures = s.failures.count();
    out.entries_lost = s.entries_lost.load();
    out.reconnects = s.reconnects.load();
    std::lock_guard lock(s.queue_mutex);
    out.queued = s.recorded - s.done;
    return out;
}

inline unsigned postgres_log::slot() const noexcept {
    return s_->slot.load();
}

static_assert(log_sink<postgres_log> && write_counting_log<postgres_log>);

} // namespace herald

#endif
