#ifndef HERALD_SQLITE_IMPL_SQLITE_STORE_HPP
#define HERALD_SQLITE_IMPL_SQLITE_STORE_HPP

// Included at the bottom of <herald/sqlite/sqlite_store.hpp>.

#include <herald/detail/background_writer.hpp>
#include <herald/detail/post_back.hpp>
#include <herald/sqlite/detail/store_file.hpp>
#include <herald/store/cached_table.hpp>
#include <herald/store/null_journal.hpp>

#include <boost/asio/async_result.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <exception>
#include <future>
#include <mutex>

namespace herald {

struct sqlite_store::state {
    using op = detail::store_op;

    /// The table's backend: its writes go through the database thread like every other.
    struct hooks_backend {
        state* s = nullptr;
        result<stored_table> load_table() {
            return s->file.load_table(s->p.path, s->p.busy_timeout);
        }
        std::future<result<void>> write_hook(webhook const& w) {
            op o;
            o.kind = op::kind_t::put_hook;
            o.hook = w;
            return s->push_waited(std::move(o));
        }
        std::future<result<void>> remove_hook(webhook_id id) {
            op o;
            o.kind = op::kind_t::remove_hook;
            o.hook.id = id;
            return s->push_waited(std::move(o));
        }
    };

    state(sqlite_store_params params, detail::sqlite::connection c)
        : p(std::move(params))
        , file(std::move(c))
        , table(hooks_backend{this}, memory_store_params{p.addresses, p.https_only})
        , before_commit(p.before_commit) {
        file.find_hook = [this](webhook_id id) {
            return table.get(id);
        };
    }

    ~state() { writer.close(); } // commits what is queued while the rest is alive

    /// Loads the table and the queue (on the opening thread), then starts the database thread.
    result<void> open() {
        if (auto r = table.load(); !r)
            return r;
        if (auto r = file.open_queue(p.path, p.busy_timeout); !r)
            return r;
        writer.start(
            [this](std::span<op> batch, std::size_t urgent) { return write(batch, urgent); },
            {.max_batch = p.max_batch});
        return {};
    }

    std::future<result<void>> push_waited(op o) {
        auto promise = std::make_shared<std::promise<result<void>>>();
        auto f = promise->get_future();
        o.done = [promise](result<void> r) {
            promise->set_value(std::move(r));
        };
        writer.push(std::move(o));
        return f;
    }

    /// A completion or retry: committed ahead of queued enqueues.
    void push_urgent(op o) {
        o.queued_at = std::chrono::steady_clock::now();
        writer.push_urgent(std::move(o));
    }

    /// The next page of claim, and the cursor moved past it (on the database thread).
    std::vector<delivery> claim_page(std::size_t max) {
        std::lock_guard lock(claim_mutex);
        if (claimed >= file.recovered_total || max == 0)
            return {};
        auto out = file.read_recovered(claim_seq, claim_key, max);
        if (out.empty()) {
            claimed = file.recovered_total;
        } else {
            claimed += out.size();
            claim_seq = out.back().seq;
            auto const key = detail::id_key(out.back().id);
            claim_key.assign(key.begin(), key.end());
        }
        return out;
    }

    bool all_claimed() const {
        std::lock_guard lock(claim_mutex);
        return claimed >= file.recovered_total;
    }

    /// Runs `query` on the database thread, in the order of the writes; `done` gets what it
    /// read, or the problem (on the database thread).
    using read_done = std::function<void(result<std::vector<delivery>>)>;
    void queue_read(std::function<std::vector<delivery>()> query, read_done done) {
        auto out = std::make_shared<std::vector<delivery>>();
        op o;
        o.kind = op::kind_t::read;
        o.read = [out, query = std::move(query)] {
            *out = query();
        };
        o.done = [out, done = std::move(done)](result<void> r) {
            if (!r)
                done(r.error());
            else
                done(std::move(*out));
        };
        writer.push(std::move(o));
    }

    /// The next page of claim: what claim and async_claim both read.
    void read_claim(std::size_t max, read_done done) {
        queue_read([this, max] { return claim_page(max); }, std::move(done));
    }

    // ---- on the database thread ----

    /// The writer's batch: the barrier first when it holds completions or retries (outside
    /// any transaction: a log in this file may be writing), then run.
    std::size_t write(std::span<op> batch, std::size_t urgent) {
        std::function<void()> barrier;
        if (urgent > 0) {
            std::lock_guard lock(barrier_mutex);
            barrier = before_commit;
        }
        if (barrier)
            barrier();
        return run(batch, urgent);
    }

    /// One transaction for the batch, or for the part of it applied within commit_interval
    /// (the completions and retries at its head always); when it fails, each operation
    /// alone, so that one bad write fails only itself.
    /// @return how many operations of the batch were done (committed or failed).
    std::size_t run(std::span<op> batch, std::size_t urgent_count) {
        using steady = std::chrono::steady_clock;
        std::size_t n = batch.size();
        try {
            detail::sqlite::transaction t(file.db);
            auto const until = steady::now() + p.commit_interval;
            for (std::size_t i = 0; i < batch.size(); ++i) {
                if (i > 0 && i >= urgent_count && steady::now() >= until) {
                    n = i;
                    break;
                }
                file.apply(batch[i]);
            }
            t.commit();
            commits.fetch_add(1, std::memory_order_relaxed);
            operations.fetch_add(n, std::memory_order_relaxed);
            note_latency(batch, urgent_count);
            for (std::size_t i = 0; i < n; ++i)
                if (batch[i].done)
                    batch[i].done({});
            return n;
        } catch (std::exception const&) {
            n = batch.size();
            if (batch.size() == 1) {
                run_one(batch.front());
                note_latency(batch, urgent_count);
                return 1;
            }
        }
        for (auto& o : batch)
            run_one(o);
        note_latency(batch, urgent_count);
        return n;
    }

    void note_latency(std::span<op const> batch, std::size_t urgent_count) {
        if (urgent_count == 0)
            return;
        // The head of the urgent queue waited longest.
        auto const waited = std::chrono::duration_cast<duration>(std::chrono::steady_clock::now() -
                                                                 batch.front().queued_at);
        auto const ms = static_cast<std::uint64_t>(std::max<std::int64_t>(waited.count(), 0));
        auto seen = max_latency_ms.load(std::memory_order_relaxed);
        while (ms > seen && !max_latency_ms.compare_exchange_weak(seen, ms))
            ;
    }

    void run_one(op& o) {
        problem failure;
        try {
            detail::sqlite::transaction t(file.db);
            file.apply(o);
            t.commit();
            commits.fetch_add(1, std::memory_order_relaxed);
            operations.fetch_add(1, std::memory_order_relaxed);
            if (o.done)
                o.done({});
            return;
        } catch (detail::sqlite::sqlite_error const& e) {
            failure = detail::sqlite::describe(p.path, e.code(), e.what(), p.busy_timeout);
        } catch (std::exception const& e) {
            failure =
                make_problem(error::storage_failed, "path", "'" + p.path + "' failed: " + e.what());
        }
        writer.failures().note(failure);
        if (o.done)
            o.done(failure);
    }

    sqlite_store_params p{};
    detail::store_file file{}; // the database thread's, once it runs
    cached_table<hooks_backend> table;

    mutable std::mutex claim_mutex;
    std::size_t claimed = 0;
    std::uint64_t claim_seq = 0; // where the next page of claim starts
    std::string claim_key{};

    std::mutex barrier_mutex;
    std::function<void()> before_commit{};
    std::atomic<std::uint64_t> commits{0}, operations{0}, max_latency_ms{0};
    detail::background_writer<op> writer{}; // last: stopped first, the rest still alive
};

inline result<sqlite_store> sqlite_store::open(sqlite_store_params p) {
    auto c = detail::sqlite::connection::open(p.path, {p.busy_timeout, p.sync, false});
    if (!c)
        return c.error();
    auto s = std::make_unique<state>(std::move(p), std::move(*c));
    if (auto r = s->open(); !r)
        return r.error();
    return sqlite_store(std::move(s));
}

inline sqlite_store::sqlite_store(std::unique_ptr<state> s)
    : s_(std::move(s)) {}
inline sqlite_store::sqlite_store(sqlite_store&&) noexcept = default;
inline sqlite_store& sqlite_store::operator=(sqlite_store&&) noexcept = default;
inline sqlite_store::~sqlite_store() = default;

inline result<webhook> sqlite_store::create(webhook_params p) {
    return s_->table.create(std::move(p));
}
inline std::shared_ptr<webhook const> sqlite_store::get(webhook_id id) const {
    return s_->table.get(id);
}
inline std::vector<webhook> sqlite_store::list() const {
    return s_->table.list();
}
inline webhook_list sqlite_store::match(object_event const& e) const {
    return s_->table.match(e);
}
inline result<webhook> sqlite_store::update(webhook_id id, webhook_params p) {
    return s_->table.update(id, std::move(p));
}
inline result<void> sqlite_store::remove(webhook_id id) {
    return s_->table.remove(id);
}
inline result<webhook> sqlite_store::disable(webhook_id id, std::string reason) {
    return s_->table.disable(id, std::move(reason));
}

inline result<void> sqlite_store::enqueue(std::span<delivery const> ds) {
    state::op o;
    o.kind = state::op::kind_t::enqueue;
    o.deliveries.assign(ds.begin(), ds.end());
    return s_->push_waited(std::move(o)).get();
}

template <class CompletionToken>
auto sqlite_store::async_enqueue(std::vector<delivery> ds, CompletionToken&& token) {
    return boost::asio::async_initiate<CompletionToken, void(result<void>)>(
        [s = s_.get()](auto handler, std::vector<delivery> v) {
            state::op o;
            o.kind = state::op::kind_t::enqueue;
            o.deliveries = std::move(v);
            o.done = detail::post_back<result<void>>(std::move(handler));
            s->writer.push(std::move(o));
        },
        token, std::move(ds));
}

inline void sqlite_store::reschedule(delivery const& d) {
    state::op o;
    o.kind = state::op::kind_t::reschedule;
    o.id = d.id;
    o.attempts = d.attempts;
    o.due = d.due;
    s_->push_urgent(std::move(o));
}

inline void sqlite_store::complete(delivery const& d, outcome) {
    state::op o;
    o.kind = state::op::kind_t::complete;
    o.id = d.id;
    s_->push_urgent(std::move(o));
}

template <class CompletionToken>
auto sqlite_store::async_claim(time_point, std::size_t max, CompletionToken&& token) {
    return boost::asio::async_initiate<CompletionToken, void(result<std::vector<delivery>>)>(
        [s = s_.get(), max](auto handler) {
            if (s->all_claimed()) { // the usual case after the first claims: no I/O
                async_ready(result<std::vector<delivery>>(std::vector<delivery>()),
                            std::move(handler));
                return;
            }
            s->read_claim(max,
                          detail::post_back<result<std::vector<delivery>>>(std::move(handler)));
        },
        token);
}

inline std::vector<delivery> sqlite_store::claim(time_point, std::size_t max) {
    auto promise = std::make_shared<std::promise<result<std::vector<delivery>>>>();
    auto f = promise->get_future();
    s_->read_claim(
        max, [promise](result<std::vector<delivery>> r) { promise->set_value(std::move(r)); });
    auto r = f.get();
    if (!r)
        return {}; // the file cannot be read: recorded, and the rest waits for a restart
    return std::move(*r);
}

inline std::size_t sqlite_store::recovered() const {
    std::lock_guard lock(s_->claim_mutex);
    auto const total = s_->file.recovered_total;
    return total - std::min(s_->claimed, total);
}

inline std::uint64_t sqlite_store::journal_seq() const noexcept {
    return s_->file.open_seq;
}

template <class CompletionToken>
auto sqlite_store::async_load(webhook_id id, std::uint64_t after, std::uint64_t upto,
                              std::size_t max, CompletionToken&& token) {
    return boost::asio::async_initiate<CompletionToken, void(result<std::vector<delivery>>)>(
        [s = s_.get(), id, after, upto, max](auto handler) {
            s->queue_read(
                [s, id, after, upto, max] { return s->file.read_lane(id, after, upto, max); },
                detail::post_back<result<std::vector<delivery>>>(std::move(handler)));
        },
        token);
}

inline result<void> sqlite_store::flush() {
    state::op o;
    o.kind = state::op::kind_t::flush;
    auto r = s_->push_waited(std::move(o)).get();
    if (auto e = s_->writer.failures().take_first())
        return std::move(*e);
    return r;
}

inline sqlite_store_stats sqlite_store::stats() const {
    return {s_->commits.load(), s_->operations.load(), s_->writer.failures().count(),
            s_->writer.queued(), duration(s_->max_latency_ms.load())};
}

inline void sqlite_store::wait_for_log(std::function<void()> barrier) {
    std::lock_guard lock(s_->barrier_mutex);
    s_->before_commit = std::move(barrier);
}

inline std::string const& sqlite_store::path() const noexcept {
    return s_->p.path;
}

static_assert(editable_webhook_table<sqlite_store> && journaled_store<sqlite_store> &&
              backlog_journal<sqlite_store>);

} // namespace herald

#endif
