#ifndef HERALD_SQLITE_LOG_HPP
#define HERALD_SQLITE_LOG_HPP

#include <herald/concepts.hpp>
#include <herald/detail/background_writer.hpp>
#include <herald/log.hpp>
#include <herald/log/log_failures.hpp>
#include <herald/sqlite/detail/connection.hpp>
#include <herald/sqlite/detail/log_rows.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace herald {

struct sqlite_log_params {
    std::string path{}; ///< the database file (may be the sqlite_store's), created when missing
    /// Entries that started longer ago than this are deleted (none when empty).
    std::optional<duration> max_age{};
    /// Only the newest this many entries of each webhook are kept (all when empty).
    std::optional<std::size_t> max_per_webhook{};
    /// How often the retention rule runs, on the writer thread (first one interval after open).
    duration retention_interval{60'000};
    /// The clock max_age is measured against; clock::now when empty (tests pass a fake one).
    std::function<time_point()> now{};
    /// How long a write waits for another connection's lock before it fails.
    duration busy_timeout{5000};
    sqlite_sync sync = sqlite_sync::normal;
    std::size_t max_batch = 8192; ///< entries in one commit at most
    /// How long one transaction takes in entries before it commits (the rest go in the next):
    /// an entry is written about commit_interval after it is recorded, whatever the backlog,
    /// while the disk keeps up. A store waiting for the log (barrier) waits this long.
    duration commit_interval{10};
    /// Where a write that failed is told: the first of its kind at once, the same again as a
    /// count at most every report_interval. Standard error when empty ("herald: log: ...");
    /// an empty function body to say nothing (the failures are counted in stats() anyway).
    std::function<void(std::string const&)> report{};
    duration report_interval{5000};
};

/**
 * A log sink in SQLite: every attempt, queried like memory_log (by webhook, webhook name,
 * event type, outcome and time, newest first, paged by `seq`) through indexes, kept as long as
 * the retention rule says. Entries name their webhook, so they stay readable after it is
 * deleted (query them by `webhook` id or by `webhook_name`).
 *
 * `record` only queues: a writer thread of its own commits what is queued in one transaction,
 * so the dispatcher's strand never waits for the disk. An entry is visible to `query` once it
 * is written (normally within milliseconds); `flush` waits for that. `query` reads on the
 * calling thread through a second connection, which WAL mode lets read while the writer
 * writes.
 *
 * Thread safety: every member function may be called from any thread.
 */
class sqlite_log {
public:
    /**
     * Opens or creates the file and brings its schema up to date.
     * @return the log, or a problem (error::storage_failed, field "path") naming the file.
     */
    static result<sqlite_log> open(sqlite_log_params p) {
        detail::sqlite::open_options const o{p.busy_timeout, p.sync, false};
        auto writer = detail::sqlite::connection::open(p.path, o);
        if (!writer)
            return writer.error();
        auto reader = detail::sqlite::connection::open(p.path, {p.busy_timeout, p.sync, true});
        if (!reader)
            return reader.error();
        auto s = std::make_shared<state>(std::move(p), std::move(*writer), std::move(*reader));
        if (auto r = s->start(); !r)
            return r.error();
        return sqlite_log(std::move(s));
    }

    sqlite_log(sqlite_log&&) noexcept = default;
    sqlite_log& operator=(sqlite_log&&) noexcept = default;
    /// Writes everything recorded, then closes the file.
    ~sqlite_log() = default;

    /**
     * A function that blocks until every entry recorded before it was called is written (or
     * failed to be): what sqlite_store::wait_for_log takes. It holds the log weakly: once the
     * log is gone (it wrote everything when it closed) it returns at once.
     */
    std::function<void()> barrier() const {
        return [w = std::weak_ptr<state>(s_)] {
            if (auto s = w.lock())
                s->wait_written();
        };
    }

    /// What stats() answers, as a function that holds the log weakly (zeros once it is gone):
    /// for metered_log::watch_writes.
    std::function<log_write_stats()> observer() const {
        return [w = std::weak_ptr<state>(s_)] {
            auto s = w.lock();
            return s ? s->write_stats() : log_write_stats{};
        };
    }

    /// Writes that failed: how many, the entries they lost, the last reason.
    log_write_stats write_stats() const { return s_->write_stats(); }

    /// Queues one attempt and returns the `seq` it assigned (the row has it once written).
    std::uint64_t record(log_entry e) {
        std::lock_guard lock(s_->record_mutex); // queued in seq order
        auto const seq = e.seq = ++s_->last_seq;
        s_->writer.push(std::move(e));
        return seq;
    }

    /// The entries matching `q`, newest first, at most `q.limit` of them.
    log_page query(log_query const& q) const {
        auto const limit = std::clamp<std::size_t>(q.limit, 1, log_query::max_limit);
        std::string sql = "SELECT " + std::string(detail::sqlite::log_columns) +
                          " FROM log LEFT JOIN log_bodies b ON b.id = log.request_body_id WHERE 1";
        if (q.webhook)
            sql += " AND webhook_id = ?1";
        if (q.type)
            sql += " AND type = ?2";
        if (q.result)
            sql += " AND outcome = ?3";
        if (q.since)
            sql += " AND started_at >= ?4";
        if (q.until)
            sql += " AND started_at < ?5";
        if (q.before_seq)
            sql += " AND seq < ?6";
        if (q.webhook_name)
            sql += " AND webhook_name = ?7 COLLATE NOCASE";
        if (q.delivery_id)
            sql += " AND delivery_id = ?9";
        sql += " ORDER BY seq DESC LIMIT ?8";
        log_page page;
        std::lock_guard lock(s_->reader_mutex);
        try {
            auto st = s_->reader.prepare(sql);
            if (q.webhook)
                st.bind(1, std::int64_t(*q.webhook));
            if (q.type)
                st.bind(2, std::int64_t(*q.type));
            if (q.result)
                st.bind(3, std::int64_t(*q.result));
            if (q.since)
                st.bind(4, detail::sqlite::to_column(*q.since));
            if (q.until)
                st.bind(5, detail::sqlite::to_column(*q.until));
            if (q.before_seq)
                st.bind(6, std::int64_t(std::min<std::uint64_t>(*q.before_seq, INT64_MAX)));
            if (q.webhook_name)
                st.bind(7, *q.webhook_name);
            if (q.delivery_id)
                st.bind(9, *q.delivery_id);
            st.bind(8, std::int64_t(limit + 1));
            // Entries of one event share its body, as they did when recorded.
            std::unordered_map<std::int64_t, std::shared_ptr<std::string const>> bodies;
            while (st.step()) {
                if (page.entries.size() == limit) {
                    page.next = page.entries.back().seq;
                    break;
                }
                auto e = detail::sqlite::read_entry(st);
                if (!st.is_null(18)) {
                    auto& body = bodies[st.int64(18)];
                    if (!body)
                        body = std::make_shared<std::string const>(st.blob(19));
                    e.request_body = body;
                }
                page.entries.push_back(std::move(e));
            }
        } catch (detail::sqlite::sqlite_error const& e) {
            // "View Logs" shows nothing rather than failing the caller; the file's problem
            // is what the next write reports too.
            s_->note_failure(problem{{}, {}, e.what()}, false);
            page = {};
        }
        return page;
    }

    /// Blocks until every entry recorded so far is written (or failed to be).
    void flush() { s_->writer.flush(); }

    /// Runs the retention rule now, on the writer thread, and waits for it.
    /// @return the entries it deleted.
    std::size_t apply_retention() {
        std::size_t deleted = 0;
        s_->writer.call([&] { deleted = s_->retain(); });
        return deleted;
    }

    /// Entries in the file.
    std::size_t size() const {
        std::lock_guard lock(s_->reader_mutex);
        try {
            return static_cast<std::size_t>(s_->reader.pragma_int("SELECT count(*) FROM log"));
        } catch (detail::sqlite::sqlite_error const&) {
            return 0;
        }
    }

    /// Batches that could not be written, and the last reason (empty when none).
    std::uint64_t write_failures() const { return s_->writer.failures().count(); }
    std::string last_error() const { return s_->writer.failures().last(); }

    std::string const& path() const noexcept { return s_->p.path; }

private:
    struct state {
        state(sqlite_log_params params, detail::sqlite::connection w, detail::sqlite::connection r)
            : p(std::move(params))
            , db(std::move(w))
            , reader(std::move(r)) {
            if (!p.now)
                p.now = [] {
                    return clock::now();
                };
        }

        ~state() {
            writer.close(); // writes what is queued while the rest is alive
            if (auto rest = limiter.flush(std::chrono::steady_clock::now()))
                tell(*rest);
        }

        void wait_written() { writer.flush(); }

        log_write_stats write_stats() const {
            log_write_stats out;
            out.failures = writer.failures().count();
            out.entries_lost = entries_lost.load();
            out.last_error = writer.failures().last();
            return out;
        }

        result<void> start() {
            try {
                last_seq = static_cast<std::uint64_t>(
                    db.pragma_int("SELECT coalesce(max(seq), 0) FROM log"));
                insert = db.prepare(detail::sqlite::log_insert);
                insert_body = db.prepare("INSERT INTO log_bodies(body) VALUES(?1)");
            } catch (detail::sqlite::sqlite_error const& e) {
                return detail::sqlite::describe(p.path, e.code(), e.what(), p.busy_timeout);
            }
            std::optional<duration> tick;
            if (has_retention())
                tick = p.retention_interval;
            writer.start([this](std::span<log_entry> batch, std::size_t) { return write(batch); },
                         {.max_batch = p.max_batch, .tick_interval = tick}, [this] { retain(); });
            return {};
        }

        bool has_retention() const { return p.max_age || p.max_per_webhook; }

        /// One transaction of the writer's batch; told before the entries count as written,
        /// so that a flush() sees it done.
        std::size_t write(std::span<log_entry const> batch) {
            auto const n = write_some(batch, 0);
            if (!failing_now && limiter.pending() > 0)
                if (auto rest = limiter.flush(std::chrono::steady_clock::now()))
                    tell(*rest); // the failures stopped: their count, once
            return n;
        }

        /// One transaction from batch[from]: the entries it applied within commit_interval.
        std::size_t write_some(std::span<log_entry const> batch, std::size_t from) {
            using steady = std::chrono::steady_clock;
            std::size_t i = from;
            try {
                detail::sqlite::transaction t(db);
                auto const until = steady::now() + p.commit_interval;
                for (; i < batch.size(); ++i) {
                    if (i > from && steady::now() >= until)
                        break;
                    auto const& e = batch[i];
                    detail::sqlite::bind_entry(insert, e);
                    if (e.request_body)
                        insert.bind(19, body_id(e.request_body));
                    insert.run();
                }
                t.commit();
                failing_now = false;
                return i - from;
            } catch (detail::sqlite::sqlite_error const& e) {
                insert.reset();
                insert_body.reset();
                bodies.clear(); // ids from the rolled-back transaction are void
                // The whole transaction is lost: what it applied and the entry that failed.
                auto const lost = std::min(i + 1, batch.size()) - from;
                entries_lost.fetch_add(lost, std::memory_order_relaxed);
                failing_now = true;
                note_failure(detail::sqlite::describe(p.path, e.code(), e.what(), p.busy_timeout));
                return lost;
            }
        }

        /// The row of a body: one per body object, however many attempts sent it. A cached id
        /// is used only while the body it was written for is still alive at that address.
        std::int64_t body_id(std::shared_ptr<std::string const> const& body) {
            auto it = bodies.find(body.get());
            if (it != bodies.end() && it->second.first.lock() == body)
                return it->second.second;
            // Swept when it has doubled since the last sweep: sweeping at a fixed size scanned
            // the whole map at every new body once that many were alive (a backlog of pending
            // events), which made the writer fall seconds behind.
            if (bodies.size() >= sweep_at) {
                std::erase_if(bodies, [](auto const& kv) { return kv.second.first.expired(); });
                sweep_at = std::max<std::size_t>(4096, 2 * bodies.size());
            }
            insert_body.bind_blob(1, body->data(), body->size()).run();
            auto const id = sqlite3_last_insert_rowid(db.get());
            bodies.insert_or_assign(body.get(), std::pair{std::weak_ptr(body), id});
            return id;
        }

        std::size_t retain() {
            if (!has_retention())
                return 0;
            std::size_t deleted = 0;
            try {
                detail::sqlite::transaction t(db);
                if (p.max_age) {
                    auto del = db.prepare("DELETE FROM log WHERE started_at < ?1");
                    del.bind(1, detail::sqlite::to_column(p.now() - *p.max_age)).run();
                    deleted += static_cast<std::size_t>(sqlite3_changes(db.get()));
                }
                if (p.max_per_webhook) {
                    auto const keep = std::int64_t(*p.max_per_webhook);
                    auto over = db.prepare("SELECT webhook_id FROM log GROUP BY webhook_id "
                                           "HAVING count(*) > ?1");
                    over.bind(1, keep);
                    std::vector<std::int64_t> hooks;
                    while (over.step())
                        hooks.push_back(over.int64(0));
                    over.reset();
                    auto del = db.prepare(
                        "DELETE FROM log WHERE webhook_id = ?1 AND seq <= (SELECT seq FROM log "
                        "WHERE webhook_id = ?1 ORDER BY seq DESC LIMIT 1 OFFSET ?2)");
                    for (auto id : hooks) {
                        del.bind(1, id).bind(2, keep).run();
                        deleted += static_cast<std::size_t>(sqlite3_changes(db.get()));
                    }
                }
                if (deleted > 0)
                    db.exec("DELETE FROM log_bodies WHERE NOT EXISTS (SELECT 1 FROM log WHERE "
                            "log.request_body_id = log_bodies.id)");
                t.commit();
                bodies.clear(); // a body still alive may have lost its row
            } catch (detail::sqlite::sqlite_error const& e) {
                bodies.clear();
                auto failure = detail::sqlite::describe(p.path, e.code(), e.what(), p.busy_timeout);
                failure.message += " (retention)";
                note_failure(std::move(failure));
                return 0;
            }
            return deleted;
        }

        /// Counts a failure and tells it (on the writer thread; from query, only counted).
        void note_failure(problem failure, bool tell_it = true) {
            auto const what = failure.what();
            writer.failures().note(std::move(failure));
            if (!tell_it)
                return;
            if (auto line = limiter.note(what, std::chrono::steady_clock::now()))
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
            // One line per message (a count may precede a new one): each with the prefix.
            std::size_t at = 0;
            while (at <= line.size()) {
                auto const end = std::min(line.find('\n', at), line.size());
                std::fprintf(stderr, "herald: log: %.*s\n", int(end - at), line.data() + at);
                at = end + 1;
            }
        }

        sqlite_log_params p{};
        detail::sqlite::connection db{}; // the writer thread's
        detail::sqlite::statement insert, insert_body;
        // the writer thread's: body object -> its row in log_bodies
        std::unordered_map<std::string const*,
                           std::pair<std::weak_ptr<std::string const>, std::int64_t>>
            bodies;
        std::size_t sweep_at = 4096; // the writer thread's
        mutable std::mutex reader_mutex;
        detail::sqlite::connection reader{};

        std::mutex record_mutex;
        std::uint64_t last_seq = 0;
        std::atomic<std::uint64_t> entries_lost{0};
        detail::repeat_limiter limiter{p.report_interval}; // the writer thread's
        bool failing_now = false;                          // the writer thread's
        detail::background_writer<log_entry> writer{};     // last: stopped first
    };

    explicit sqlite_log(std::shared_ptr<state> s)
        : s_(std::move(s)) {}

    // Shared only with barrier() and observer(), which hold it weakly.
    std::shared_ptr<state> s_;
};

static_assert(log_sink<sqlite_log> && write_counting_log<sqlite_log>);

} // namespace herald

#endif
