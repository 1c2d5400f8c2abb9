#ifndef HERALD_POSTGRES_IMPL_POSTGRES_STORE_HPP
#define HERALD_POSTGRES_IMPL_POSTGRES_STORE_HPP

// Included at the bottom of <herald/postgres/postgres_store.hpp>.

#include <herald/detail/post_back.hpp>
#include <herald/postgres/detail/runtime.hpp>
#include <herald/store/cached_table.hpp>
#include <herald/store/detail/webhook_codec.hpp>

#include <boost/asio/async_result.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <exception>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>

namespace herald {

struct postgres_store::state {
    using connection = detail::pg::connection;
    using pg_error = detail::pg::pg_error;
    using steady = std::chrono::steady_clock;
    template <class T>
    using awaitable = boost::asio::awaitable<T>;

    /// The table's backend: its writes go through the writer like every other.
    struct hooks_backend {
        state* s = nullptr;
        result<stored_table> load_table() {
            try {
                if (!s->running) // opening: the pool is the opening thread's
                    return s->rt.run([this]() -> awaitable<result<stored_table>> {
                        co_return co_await s->read_table(*s->readers.front());
                    });
                // in the read queue, like every read of a running store
                auto r = s->read_now<result<stored_table>>(
                    [st = s](connection& c) { return st->read_table(c); });
                if (!r)
                    return r.error();
                return std::move(*r);
            } catch (std::exception const& e) {
                return detail::pg::describe(s->p.conninfo, e);
            }
        }
        std::future<result<void>> write_hook(webhook const& w) {
            write_op o;
            o.kind = write_op::kind_t::put_hook;
            o.hook = w;
            return s->push_waited(std::move(o));
        }
        std::future<result<void>> remove_hook(webhook_id id) {
            write_op o;
            o.kind = write_op::kind_t::remove_hook;
            o.hook.id = id;
            return s->push_waited(std::move(o));
        }
    };

    struct write_op {
        enum class kind_t { put_hook, remove_hook, enqueue, reschedule, complete, flush };
        kind_t kind = kind_t::flush;
        webhook hook{};
        std::vector<delivery> deliveries{};
        delivery_id id{};
        std::int64_t token = 0;
        std::uint32_t attempts = 0;
        time_point due{};
        std::function<void(result<void>)> done{};
        steady::time_point deadline = steady::time_point::max(); ///< enqueues: publish_timeout
    };

    /// A read on a pool connection; `fail` is told when it could not run.
    struct read_op {
        std::function<awaitable<void>(connection&)> run;
        std::function<void(problem)> fail;
    };

    explicit state(postgres_store_params params)
        : p(std::move(params))
        , node(p.node.empty() ? detail::pg::node_name() : p.node)
        , node_token(detail::pg::random_token())
        , table(hooks_backend{this}, memory_store_params{p.addresses, p.https_only})
        , write_signal(rt.io())
        , read_signal(rt.io())
        , tick(rt.io())
        , barrier_wait(rt.io()) {
        settings.connect_timeout = p.connect_timeout;
        settings.statement_timeout = p.statement_timeout;
        writer = std::make_unique<connection>(rt.executor());
        listener = std::make_unique<connection>(rt.executor());
        for (std::size_t i = 1; i < std::max<std::size_t>(p.pool_size, 2); ++i)
            readers.push_back(std::make_unique<connection>(rt.executor()));
    }

    /// Connects every pool connection, migrates, loads the table, then starts the loops.
    result<void> open() {
        if (p.longest_attempt)
            if (auto r = check_lease(p.lease, *p.longest_attempt); !r)
                return r;
        if (p.lease < std::chrono::seconds(1))
            return make_problem(error::invalid_field, "lease",
                                "the lease (" + std::to_string(p.lease.count()) +
                                    " ms) must be at least 1000 ms");
        rt.start();
        try {
            rt.run([this]() -> awaitable<void> {
                co_await writer->connect(p.conninfo, settings);
                co_await detail::pg::migrate(*writer);
                for (auto& r : readers)
                    co_await r->connect(p.conninfo, settings);
            });
        } catch (std::exception const& e) {
            return detail::pg::describe(p.conninfo, e);
        }
        if (auto r = table.load(); !r)
            return r;
        reloads.fetch_add(1);
        auto spawn = [this](awaitable<void> a) {
            ++loops;
            boost::asio::co_spawn(rt.io(), std::move(a), [this](std::exception_ptr) { --loops; });
        };
        running = true;
        rt.run([this, spawn]() -> awaitable<void> {
            spawn(write_loop());
            for (auto& r : readers)
                spawn(read_loop(*r));
            spawn(listen_loop());
            spawn(tick_loop());
            co_return;
        });
        return {};
    }

    /// Drains the writes, gives back this process's leases, stops the loops and the thread.
    void close() {
        boost::asio::post(rt.io(), [this] {
            closing = true;
            close_deadline = steady::now() + p.publish_timeout;
            take_incoming();
            for (auto& o : writes)
                o.deadline = std::min(o.deadline, close_deadline);
            write_signal.cancel();
            read_signal.cancel();
            tick.cancel();
            barrier_wait.cancel();
            listener->interrupt();
        });
        rt.stop();
    }

    // ---- queueing (any thread) ----

    /// Hands `o` to the writer. Writes wait in `incoming` until the write loop takes them all
    /// at once, before each batch; only a write that finds the loop idle posts to wake it. A
    /// post per write cost the publishing thread a syscall and the store's thread a return from
    /// epoll each, during every commit.
    void push(write_op o) {
        queued.fetch_add(1);
        bool wake = false;
        {
            std::lock_guard lock(incoming_mutex);
            incoming.push_back(std::move(o));
            wake = writer_idle && !take_posted;
            take_posted = take_posted || wake;
        }
        if (wake)
            boost::asio::post(rt.io(), [this] { take_incoming(); });
    }

    /// On the store's thread: moves the handed writes to `writes`, in order.
    void take_incoming() {
        std::deque<write_op> got;
        {
            std::lock_guard lock(incoming_mutex);
            got.swap(incoming);
            take_posted = false;
            writer_idle = false;
        }
        if (got.empty())
            return;
        for (auto& o : got) {
            if (closing && o.kind == write_op::kind_t::flush && writes.empty()) {
                queued.fetch_sub(1);
                if (o.done)
                    o.done({});
                continue;
            }
            if (closing)
                o.deadline = std::min(o.deadline, close_deadline);
            writes.push_back(std::move(o));
        }
        write_signal.cancel();
    }

    std::future<result<void>> push_waited(write_op o) {
        auto promise = std::make_shared<std::promise<result<void>>>();
        auto f = promise->get_future();
        o.done = [promise](result<void> r) {
            promise->set_value(std::move(r));
        };
        if (o.kind == write_op::kind_t::put_hook || o.kind == write_op::kind_t::remove_hook) {
            hook_write_gen.fetch_add(1);
            hook_writes.fetch_add(1);
        }
        push(std::move(o));
        return f;
    }

    void push_read(read_op r) {
        boost::asio::post(rt.io(), [this, r = std::move(r)]() mutable {
            if (closing) {
                r.fail(make_problem(error::storage_failed, "conninfo", "the store is closing"));
                return;
            }
            reads.push_back(std::move(r));
            read_signal.cancel();
        });
    }

    /// A blocking read for tools and tests: runs `f` on a pool connection and waits.
    template <class T>
    result<T> read_now(std::function<awaitable<T>(connection&)> f) {
        auto promise = std::make_shared<std::promise<result<T>>>();
        auto fut = promise->get_future();
        push_read(
            {[promise, f](connection& c) -> awaitable<void> { promise->set_value(co_await f(c)); },
             [promise](problem e) {
                 promise->set_value(result<T>(boost::system::in_place_error, std::move(e)));
             }});
        return fut.get();
    }

    void claimable_now() {
        std::lock_guard lock(claimable_mutex);
        if (claimable)
            claimable();
    }

    // ---- the loops (on the store's thread) ----

    /// Reconnects `c` with backoff until it works or the store closes. @return connected.
    awaitable<bool> reconnect(connection& c,
                              steady::time_point give_up = steady::time_point::max()) {
        detail::pg::backoff wait;
        boost::asio::steady_timer t(rt.io());
        while (!c.ok()) {
            if (&c == writer.get())
                fail_overdue_queued(); // publishes queued behind the batch get their answer
            try {
                co_await c.connect(p.conninfo, settings);
                reconnects.fetch_add(1);
                co_return true;
            } catch (std::exception const& e) {
                note_down(e.what());
            }
            if (steady::now() >= give_up || (closing && steady::now() >= close_deadline))
                co_return false;
            t.expires_after(wait.next());
            boost::system::error_code ec;
            co_await t.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ec));
        }
        co_return true;
    }

    void note_down(std::string const& what) {
        std::lock_guard lock(failure_mutex);
        last_down = what;
    }

    awaitable<void> write_loop() {
        std::vector<write_op> batch;
        for (;;) {
            take_incoming();
            if (writes.empty()) {
                if (closing)
                    break;
                {
                    std::lock_guard lock(incoming_mutex);
                    writer_idle = incoming.empty();
                }
                if (!writer_idle)
                    continue;
                write_signal.expires_at(steady::time_point::max());
                boost::system::error_code ec;
                co_await write_signal.async_wait(
                    boost::asio::redirect_error(boost::asio::use_awaitable, ec));
                continue;
            }
            batch.clear();
            while (!writes.empty() && batch.size() < p.max_batch) {
                batch.push_back(std::move(writes.front()));
                writes.pop_front();
            }
            co_await commit(batch);
        }
        // Closing: this process's leases go back to the queue, and the others are told.
        if (writer->ok() || co_await reconnect(*writer, steady::now() + p.connect_timeout)) {
            try {
                auto r = co_await writer->exec(
                    "UPDATE herald_deliveries SET lease_token = NULL, lease_owner = NULL, "
                    "lease_until = NULL WHERE lease_owner = $1 AND lease_token IS NOT NULL",
                    std::move(detail::pg::params().text(node)));
                if (r.affected() > 0)
                    co_await writer->script(std::string("NOTIFY ") + detail::pg::work_channel);
            } catch (std::exception const&) {
                // they lapse after the lease instead
            }
        }
        writer->close();
        for (auto& c : readers)
            c->close();
    }

    /// A thread that runs the log's barrier, so that the store's I/O thread never blocks.
    class barrier_thread {
    public:
        ~barrier_thread() {
            {
                std::lock_guard lock(m_);
                stop_ = true;
            }
            cv_.notify_one();
            if (th_.joinable())
                th_.join();
        }
        void push(std::function<void()> job) {
            {
                std::lock_guard lock(m_);
                jobs_.push_back(std::move(job));
                if (!th_.joinable())
                    th_ = std::thread([this] { run(); });
            }
            cv_.notify_one();
        }

    private:
        void run() {
            for (;;) {
                std::function<void()> job;
                {
                    std::unique_lock lock(m_);
                    cv_.wait(lock, [&] { return stop_ || !jobs_.empty(); });
                    if (jobs_.empty())
                        return;
                    job = std::move(jobs_.front());
                    jobs_.pop_front();
                }
                job();
            }
        }
        std::mutex m_;
        std::condition_variable cv_;
        std::deque<std::function<void()>> jobs_;
        bool stop_ = false;
        std::thread th_;
    };

    /// Before a batch with completions or retries: the log's barrier, on the barrier thread,
    /// waited for here without blocking (a closing store stops waiting at its deadline).
    awaitable<void> wait_barrier(std::vector<write_op> const& batch) {
        std::function<void()> b;
        {
            std::lock_guard lock(barrier_mutex);
            b = barrier;
        }
        if (!b || std::none_of(batch.begin(), batch.end(), [](write_op const& o) {
                return o.kind == write_op::kind_t::complete ||
                       o.kind == write_op::kind_t::reschedule;
            }))
            co_return;
        auto done = std::make_shared<std::atomic<bool>>(false);
        barrier_runner.push([b, done, this] {
            b();
            done->store(true);
            boost::asio::post(rt.io(), [this] { barrier_wait.cancel(); });
        });
        while (!done->load()) {
            if (closing && steady::now() >= close_deadline)
                co_return;
            barrier_wait.expires_at(closing ? close_deadline : steady::time_point::max());
            boost::system::error_code ec;
            co_await barrier_wait.async_wait(
                boost::asio::redirect_error(boost::asio::use_awaitable, ec));
        }
    }

    /// Commits `batch`: in one transaction when it can, each write alone when one fails;
    /// across a broken connection, again once reconnected (every write is idempotent), until
    /// an enqueue's deadline.
    awaitable<void> commit(std::vector<write_op>& batch) {
        co_await wait_barrier(batch);
        for (;;) {
            fail_overdue(batch);
            if (batch.empty())
                co_return;
            if (!writer->ok() && !co_await reconnect(*writer, earliest_deadline(batch))) {
                fail_overdue(batch, true);
                continue;
            }
            bool lost = false;
            try {
                co_await apply(batch);
                finished(batch, {});
                co_return;
            } catch (pg_error const& e) {
                lost = e.connection_lost() || !writer->ok();
                note_down(e.what());
            } catch (std::exception const& e) {
                note_down(e.what());
            }
            if (lost) {
                writer->close();
                continue;
            }
            // A write the database refuses: each alone, so that it fails only itself.
            co_await writer->rollback();
            for (auto& o : batch) {
                std::vector<write_op> one;
                one.push_back(std::move(o));
                co_await commit_one(one);
            }
            batch.clear();
            co_return;
        }
    }

    awaitable<void> commit_one(std::vector<write_op>& one) {
        for (;;) {
            fail_overdue(one);
            if (one.empty())
                co_return;
            if (!writer->ok() && !co_await reconnect(*writer, earliest_deadline(one))) {
                fail_overdue(one, true);
                continue;
            }
            std::optional<problem> why;
            bool lost = false;
            try {
                co_await apply(one);
                finished(one, {});
                co_return;
            } catch (pg_error const& e) {
                lost = e.connection_lost() || !writer->ok();
                why = refused(one.front(), e);
            } catch (std::exception const& e) {
                why = detail::pg::describe(p.conninfo, e);
            }
            if (lost) {
                writer->close();
                continue;
            }
            co_await writer->rollback();
            finished(one, std::move(*why));
            co_return;
        }
    }

    static std::string id_taken_message(webhook_id id) {
        return "webhook id " + std::to_string(id) +
               " was given to another webhook by another process at the same time";
    }

    problem refused(write_op const& o, pg_error const& e) {
        if (o.kind == write_op::kind_t::put_hook && e.what() == id_taken_message(o.hook.id))
            return make_problem(error::storage_failed, "id", e.what()); // cached_table retries
        if (o.kind == write_op::kind_t::put_hook && e.unique_violation())
            return make_problem(error::duplicate_name, "name",
                                "another webhook is already named '" + o.hook.name +
                                    "' (created by another process)");
        return detail::pg::describe(p.conninfo, e);
    }

    static steady::time_point earliest_deadline(std::vector<write_op> const& batch) {
        auto t = steady::time_point::max();
        for (auto const& o : batch)
            t = std::min(t, o.deadline);
        return t;
    }

    /// Fails the queued (not yet taken) writes whose deadline passed.
    void fail_overdue_queued() {
        take_incoming();
        std::vector<write_op> due;
        auto const now = steady::now();
        for (auto it = writes.begin(); it != writes.end();) {
            if (it->deadline <= now) {
                due.push_back(std::move(*it));
                it = writes.erase(it);
            } else {
                ++it;
            }
        }
        fail_overdue(due, true);
    }

    /// Fails the writes whose deadline passed (all that have one when `now_all`); a closing
    /// store gives every write one.
    void fail_overdue(std::vector<write_op>& batch, bool now_all = false) {
        if (closing)
            for (auto& o : batch)
                o.deadline = std::min(o.deadline, close_deadline);
        auto const now = steady::now();
        std::string why;
        {
            std::lock_guard lock(failure_mutex);
            why = last_down;
        }
        auto it = std::remove_if(batch.begin(), batch.end(), [&](write_op& o) {
            if (o.deadline == steady::time_point::max() || (!now_all && o.deadline > now))
                return false;
            auto e = make_problem(
                error::storage_failed, "conninfo",
                detail::pg::describe_target(p.conninfo) + ": not committed: " +
                    (why.empty() ? std::string("the database cannot be reached") : why));
            note_failure(e);
            done_one(o, e);
            return true;
        });
        batch.erase(it, batch.end());
    }

    void note_failure(problem const& e) {
        failures.fetch_add(1);
        std::lock_guard lock(failure_mutex);
        if (!first_failure)
            first_failure = e;
    }

    void done_one(write_op& o, result<void> r) {
        queued.fetch_sub(1);
        if (o.kind == write_op::kind_t::put_hook || o.kind == write_op::kind_t::remove_hook) {
            if (hook_writes.fetch_sub(1) == 1 && reload_wanted.exchange(false))
                queue_reload();
        }
        if (o.done)
            o.done(std::move(r));
    }

    void finished(std::vector<write_op>& batch, result<void> r) {
        if (r) {
            commits.fetch_add(1);
            operations.fetch_add(batch.size());
        } else {
            note_failure(r.error());
        }
        for (auto& o : batch)
            done_one(o, r);
        batch.clear();
    }

    /// A batch's delivery writes as the arrays of the write statement's parameters.
    struct delivery_writes {
        detail::pg::array_literal ev_key, ev_id, ev_type, ev_object, ev_otype, ev_actor, ev_at,
            ev_ctype, ev_headers, ev_inline;
        detail::pg::bytea_array ev_body;
        detail::pg::array_literal d_id, d_event, d_hook, d_name, d_url, d_attempts, d_due, d_token;
        detail::pg::array_literal r_id, r_tok, r_att, r_due, c_id, c_tok;
        std::size_t rows = 0;        ///< deliveries, retries and completions
        std::uint64_t addressed = 0; ///< retries and completions: rows their token must hold
    };

    /// New events and deliveries, then retries, then completions; the last write for one id
    /// wins (a completion over a retry of the same delivery).
    delivery_writes collect(std::vector<write_op> const& batch) const {
        delivery_writes w;
        std::map<std::string, write_op const*> retries;
        std::map<std::string, std::int64_t> completions;
        for (auto const& o : batch) {
            if (o.kind == write_op::kind_t::enqueue) {
                prepared_event const* last = nullptr;
                std::string key;
                auto const& ds = o.deliveries;
                for (std::size_t i = 0; i < ds.size(); ++i) {
                    auto const& d = ds[i];
                    if (d.event.get() != last) {
                        last = d.event.get();
                        key = detail::pg::uuid_text(d.id); // the event's first delivery's id
                        // an event for one webhook goes into its delivery's row
                        bool const alone = (i + 1 == ds.size() || ds[i + 1].event != d.event) &&
                                           (i == 0 || ds[i - 1].event != d.event);
                        w.ev_inline.add(alone ? "t" : "f");
                        auto const& ev = *d.event;
                        w.ev_key.add(key);
                        w.ev_id.add(ev.event.id);
                        w.ev_type.add(static_cast<std::int64_t>(ev.event.type));
                        w.ev_object.add(ev.event.object_id);
                        w.ev_otype.add_optional(ev.event.object_type);
                        w.ev_actor.add_optional(ev.event.actor);
                        w.ev_at.add(to_unix_ms(ev.event.occurred_at));
                        w.ev_body.add(ev.body.body);
                        w.ev_ctype.add(ev.body.content_type);
                        w.ev_headers.add(detail::header_list(ev.body.headers));
                    }
                    w.d_id.add(detail::pg::uuid_text(d.id));
                    w.d_event.add(key);
                    w.d_hook.add(static_cast<std::int64_t>(d.hook->id));
                    w.d_name.add(d.hook->name);
                    w.d_url.add(d.hook->url);
                    w.d_attempts.add(static_cast<std::int64_t>(d.attempts));
                    w.d_due.add(to_unix_ms(d.due));
                    w.d_token.add(token_of(d));
                    ++w.rows;
                }
            } else if (o.kind == write_op::kind_t::reschedule) {
                retries[detail::pg::uuid_text(o.id)] = &o;
            } else if (o.kind == write_op::kind_t::complete) {
                completions[detail::pg::uuid_text(o.id)] = o.token;
            }
        }
        for (auto const& [id, o] : retries) {
            if (completions.contains(id))
                continue;
            w.r_id.add(id);
            w.r_tok.add(o->token);
            w.r_att.add(static_cast<std::int64_t>(o->attempts));
            w.r_due.add(to_unix_ms(o->due));
            ++w.addressed;
        }
        for (auto const& [id, tok] : completions) {
            w.c_id.add(id);
            w.c_tok.add(tok);
            ++w.addressed;
        }
        w.rows += w.addressed;
        return w;
    }

    /// The batch's writes (throws pg_error): the deliveries' in one statement; with changes
    /// to the webhooks table, in one transaction with them.
    awaitable<void> apply(std::vector<write_op>& batch) {
        using detail::pg::params;
        auto& c = *writer;
        auto const w = collect(batch);
        bool const any_hooks = std::any_of(batch.begin(), batch.end(), [](write_op const& o) {
            return o.kind == write_op::kind_t::put_hook || o.kind == write_op::kind_t::remove_hook;
        });
        if (!any_hooks) {
            if (w.rows > 0)
                co_await apply_deliveries(c, w);
            co_return; // or flushes only
        }
        co_await c.script("BEGIN");
        if (w.rows > 0)
            co_await apply_deliveries(c, w);
        for (auto const& o : batch) {
            if (o.kind == write_op::kind_t::put_hook) {
                auto const& h = o.hook;
                params ps;
                ps.integer(static_cast<std::int64_t>(h.id))
                    .text(h.name)
                    .text(detail::stored_params(h))
                    .integer(to_unix_ms(h.created_at))
                    .integer(to_unix_ms(h.updated_at))
                    .text(h.disabled_reason);
                if (h.disabled_at)
                    ps.integer(to_unix_ms(*h.disabled_at));
                else
                    ps.null();
                // An update applies to the webhook it was made to (same creation time); a
                // create whose id another process gave meanwhile changes nothing.
                auto r = co_await c.exec(
                    "INSERT INTO herald_webhooks (id, name_key, params, created_at, updated_at, "
                    "disabled_reason, disabled_at) VALUES ($1, lower($2), $3, $4, $5, $6, $7) "
                    "ON CONFLICT (id) DO UPDATE SET name_key = excluded.name_key, params = "
                    "excluded.params, updated_at = excluded.updated_at, disabled_reason = "
                    "excluded.disabled_reason, disabled_at = excluded.disabled_at WHERE "
                    "herald_webhooks.created_at = excluded.created_at",
                    std::move(ps));
                if (r.affected() == 0)
                    throw pg_error(id_taken_message(h.id), "", false);
                co_await c.exec("UPDATE herald_meta SET value = greatest(value, $1) WHERE key = "
                                "'last_webhook_id'",
                                std::move(params().integer(static_cast<std::int64_t>(h.id))));
            } else if (o.kind == write_op::kind_t::remove_hook) {
                co_await c.exec("DELETE FROM herald_webhooks WHERE id = $1",
                                std::move(params().integer(static_cast<std::int64_t>(o.hook.id))));
            }
        }
        co_await c.script("UPDATE herald_meta SET value = value + 1 WHERE key = "
                          "'table_version'; NOTIFY " +
                          std::string(detail::pg::table_channel));
        co_await c.script("COMMIT");
    }

    /**
     * The deliveries' writes as one statement, so one round trip (and no explicit
     * transaction when alone): new events and deliveries (an event for one webhook in its
     * delivery's row, the others in herald_events), retries and completions (by id and
     * token: those whose token no longer holds the row are counted as fenced), and the events
     * left without a delivery by those completions (a statement sees the rows it deletes, so
     * they are left out by id; two processes finishing an event's last two deliveries at once
     * may both miss it: the sweep takes those). Rows are found by `id = ANY(...)`, which the
     * primary key answers: a join with the unnest alone is planned as a scan of the table.
     */
    awaitable<void> apply_deliveries(connection& c, delivery_writes const& w) {
        static constexpr char const* sql =
            "WITH e AS (SELECT * FROM unnest($1::uuid[], $2::text[], $3::smallint[], "
            "$4::text[], $5::text[], $6::text[], $7::bigint[], $8::bytea[], $9::text[], "
            "$10::text[], $27::boolean[]) AS e(key, id, type, object_id, object_type, actor, "
            "occurred_at, body, content_type, headers, alone)), "
            "ev AS (INSERT INTO herald_events (key, id, type, object_id, object_type, actor, "
            "occurred_at, body, content_type, headers) SELECT key, id, type, object_id, "
            "object_type, actor, occurred_at, body, content_type, headers FROM e WHERE NOT "
            "alone ON CONFLICT (key) DO NOTHING), "
            "dl AS (INSERT INTO herald_deliveries (id, event_key, webhook_id, webhook_name, url, "
            "attempts, due, lease_token, lease_owner, lease_until, event_id, type, object_id, "
            "object_type, actor, occurred_at, body, content_type, headers) SELECT x.id, CASE "
            "WHEN e.key IS NULL THEN x.ek END, x.wid, x.wn, x.url, x.att, x.due, x.tok, $19, "
            "now() + $20 * interval '1 millisecond', e.id, e.type, e.object_id, e.object_type, "
            "e.actor, e.occurred_at, e.body, e.content_type, e.headers FROM unnest($11::uuid[], "
            "$12::uuid[], $13::bigint[], $14::text[], $15::text[], $16::integer[], "
            "$17::bigint[], $18::bigint[]) WITH ORDINALITY AS x(id, ek, wid, wn, url, att, due, "
            "tok, n) LEFT JOIN e ON e.alone AND e.key = x.ek ORDER BY x.n ON CONFLICT (id) DO "
            "NOTHING), "
            "rs AS (UPDATE herald_deliveries d SET attempts = x.att, due = x.due FROM "
            "unnest($21::uuid[], $22::bigint[], $23::integer[], $24::bigint[]) AS x(id, tok, "
            "att, due) WHERE d.id = ANY($21::uuid[]) AND d.id = x.id AND d.lease_token = x.tok "
            "RETURNING 1), "
            "cd AS (DELETE FROM herald_deliveries d USING unnest($25::uuid[], $26::bigint[]) AS "
            "x(id, tok) WHERE d.id = ANY($25::uuid[]) AND d.id = x.id AND d.lease_token = x.tok "
            "RETURNING d.id, d.event_key), "
            "ge AS (DELETE FROM herald_events e WHERE e.key IN (SELECT event_key FROM cd) AND "
            "NOT EXISTS (SELECT 1 FROM herald_deliveries d WHERE d.event_key = e.key AND d.id "
            "NOT IN (SELECT id FROM cd))) "
            "SELECT (SELECT count(*) FROM rs), (SELECT count(*) FROM cd)";
        auto r = co_await c.exec_prepared("herald_write", sql,
                                          std::move(detail::pg::params()
                                                        .text(w.ev_key.str())
                                                        .text(w.ev_id.str())
                                                        .text(w.ev_type.str())
                                                        .text(w.ev_object.str())
                                                        .text(w.ev_otype.str())
                                                        .text(w.ev_actor.str())
                                                        .text(w.ev_at.str())
                                                        .bytes(w.ev_body.str())
                                                        .text(w.ev_ctype.str())
                                                        .text(w.ev_headers.str())
                                                        .text(w.d_id.str())
                                                        .text(w.d_event.str())
                                                        .text(w.d_hook.str())
                                                        .text(w.d_name.str())
                                                        .text(w.d_url.str())
                                                        .text(w.d_attempts.str())
                                                        .text(w.d_due.str())
                                                        .text(w.d_token.str())
                                                        .text(node)
                                                        .integer(p.lease.count())
                                                        .text(w.r_id.str())
                                                        .text(w.r_tok.str())
                                                        .text(w.r_att.str())
                                                        .text(w.r_due.str())
                                                        .text(w.c_id.str())
                                                        .text(w.c_tok.str())
                                                        .text(w.ev_inline.str())));
        auto const applied =
            static_cast<std::uint64_t>(r.int64(0, 0)) + static_cast<std::uint64_t>(r.int64(0, 1));
        if (w.addressed > applied)
            fenced.fetch_add(w.addressed - applied);
    }

    awaitable<void> read_loop(connection& c) {
        for (;;) {
            if (reads.empty()) {
                if (closing)
                    co_return;
                read_signal.expires_at(steady::time_point::max());
                boost::system::error_code ec;
                co_await read_signal.async_wait(
                    boost::asio::redirect_error(boost::asio::use_awaitable, ec));
                continue;
            }
            auto op = std::move(reads.front());
            reads.pop_front();
            if (closing) {
                op.fail(make_problem(error::storage_failed, "conninfo", "the store is closing"));
                continue;
            }
            if (!c.ok() && !co_await reconnect(c, steady::now())) {
                std::string why;
                {
                    std::lock_guard lock(failure_mutex);
                    why = last_down;
                }
                op.fail(make_problem(error::storage_failed, "conninfo",
                                     detail::pg::describe_target(p.conninfo) + ": " + why));
                continue;
            }
            try {
                co_await op.run(c);
            } catch (std::exception const& e) {
                if (auto const* pe = dynamic_cast<pg_error const*>(&e);
                    pe && (pe->connection_lost() || !c.ok()))
                    c.close();
                op.fail(detail::pg::describe(p.conninfo, e));
            }
        }
    }

    /// Every poll_interval: the table's version, expired leases; renewals every lease / 4;
    /// the sweep of events left without deliveries every 30 s.
    awaitable<void> tick_loop() {
        auto next_renew = steady::now() + p.lease / 4;
        auto next_sweep = steady::now() + std::chrono::seconds(30);
        while (!closing) {
            tick.expires_after(p.poll_interval);
            boost::system::error_code ec;
            co_await tick.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ec));
            if (closing)
                break;
            auto const now = steady::now();
            bool const renew = now >= next_renew, sweep = now >= next_sweep;
            if (renew)
                next_renew = now + p.lease / 4;
            if (sweep)
                next_sweep = now + std::chrono::seconds(30);
            push_read({[this, renew, sweep](connection& c) -> awaitable<void> {
                           co_await check_version(c);
                           if (co_await requeue(c) > 0)
                               claimable_now();
                           if (renew)
                               co_await renew_held(c);
                           if (sweep)
                               co_await c.exec("DELETE FROM herald_events e WHERE NOT EXISTS "
                                               "(SELECT 1 FROM herald_deliveries d WHERE "
                                               "d.event_key = e.key)");
                       },
                       [](problem) {
                       }});
        }
    }

    /// LISTEN for the others' notifications; after every (re)connect, the table is read again
    /// and the dispatcher told to claim (what was missed while disconnected).
    awaitable<void> listen_loop() {
        auto const wait = std::min(p.poll_interval, duration(1000));
        while (!closing) {
            if (!listener->ok()) {
                if (!co_await reconnect(*listener, steady::now() + wait))
                    continue;
                try {
                    co_await listener->script(std::string("LISTEN ") + detail::pg::work_channel +
                                              "; LISTEN " + detail::pg::table_channel);
                } catch (std::exception const& e) {
                    note_down(e.what());
                    listener->close();
                    continue;
                }
                queue_reload();
                claimable_now();
            }
            try {
                auto notes = co_await listener->notifications(wait);
                bool work = false, hooks = false;
                for (auto const& [channel, payload] : notes) {
                    work = work || channel == detail::pg::work_channel;
                    hooks = hooks || channel == detail::pg::table_channel;
                }
                if (hooks)
                    queue_reload();
                if (work)
                    claimable_now();
            } catch (std::exception const& e) {
                note_down(e.what());
                listener->close();
            }
        }
        listener->close();
    }

    void queue_reload() {
        if (reload_queued.exchange(true))
            return;
        push_read({[this](connection& c) -> awaitable<void> {
                       reload_queued = false;
                       co_await reload_table(c);
                   },
                   [this](problem) {
                       reload_queued = false;
                   }});
    }

    awaitable<void> check_version(connection& c) {
        auto r = co_await c.exec("SELECT value FROM herald_meta WHERE key = 'table_version'");
        if (!r.empty() && r.int64(0, 0) != table_version.load())
            co_await reload_table(c);
    }

    /// Reads the table and puts it in the cache, unless this process's own changes are on
    /// their way (then once they are committed).
    awaitable<void> reload_table(connection& c) {
        // A snapshot may miss only what this process wrote meanwhile: skipped when a write of
        // its own was pending when the read began or was queued since, and read again once
        // they are committed (done_one).
        auto const gen = hook_write_gen.load();
        if (hook_writes.load() > 0) {
            reload_wanted = true;
            co_return;
        }
        auto t = co_await read_table(c);
        if (!t)
            co_return;
        if (hook_writes.load() > 0 || hook_write_gen.load() != gen) {
            reload_wanted = true;
            if (hook_writes.load() == 0 && reload_wanted.exchange(false))
                queue_reload();
            co_return;
        }
        table.replace(std::move(*t));
        reloads.fetch_add(1);
    }

    awaitable<result<stored_table>> read_table(connection& c) {
        auto v = co_await c.exec("SELECT key, value FROM herald_meta WHERE key IN "
                                 "('last_webhook_id', 'table_version')");
        stored_table out;
        std::int64_t seen_version = 0;
        for (int i = 0; i < v.size(); ++i) {
            if (v.text(i, 0) == "last_webhook_id")
                out.last_id = static_cast<webhook_id>(v.int64(i, 1));
            else
                seen_version = v.int64(i, 1);
        }
        auto rows = co_await c.exec("SELECT id, params, created_at, updated_at, disabled_reason, "
                                    "disabled_at FROM herald_webhooks ORDER BY id");
        for (int i = 0; i < rows.size(); ++i) {
            auto const id = static_cast<webhook_id>(rows.int64(i, 0));
            auto params = detail::load_params(std::string(rows.text(i, 1)),
                                              "herald_webhooks[id=" + std::to_string(id) + "]");
            if (!params) {
                auto e = params.error();
                e.message = detail::pg::describe_target(p.conninfo) + ": stored webhook " +
                            e.field + " " + e.message;
                e.field = "conninfo";
                co_return e;
            }
            webhook w;
            static_cast<webhook_params&>(w) = std::move(*params);
            w.id = id;
            w.created_at = from_unix_ms(rows.int64(i, 2));
            w.updated_at = from_unix_ms(rows.int64(i, 3));
            w.disabled_reason = std::string(rows.text(i, 4));
            if (!rows.is_null(i, 5))
                w.disabled_at = from_unix_ms(rows.int64(i, 5));
            out.hooks.push_back(std::move(w));
        }
        table_version = seen_version;
        co_return out;
    }

    static time_point from_unix_ms(std::int64_t ms) {
        return time_point(
            std::chrono::duration_cast<clock::duration>(std::chrono::milliseconds(ms)));
    }

    awaitable<std::size_t> requeue(connection& c) {
        auto r = co_await c.exec(
            "WITH x AS MATERIALIZED (SELECT id FROM herald_deliveries WHERE lease_token IS NOT "
            "NULL AND lease_until < now() LIMIT 10000 FOR UPDATE SKIP LOCKED) UPDATE "
            "herald_deliveries d SET lease_token = NULL, lease_owner = NULL, lease_until = "
            "NULL FROM x WHERE d.id = x.id");
        auto const n = r.affected();
        if (n > 0) {
            requeued.fetch_add(n);
            co_await c.script(std::string("NOTIFY ") + detail::pg::work_channel);
        }
        co_return static_cast<std::size_t>(n);
    }

    awaitable<std::size_t> renew_held(connection& c) {
        auto r = co_await c.exec(
            "UPDATE herald_deliveries SET lease_until = now() + $2 * interval '1 millisecond' "
            "WHERE lease_owner = $1 AND lease_token IS NOT NULL AND lease_until < now() + $2 / "
            "2 * interval '1 millisecond'",
            std::move(detail::pg::params().text(node).integer(p.lease.count())));
        renewed.fetch_add(r.affected());
        co_return static_cast<std::size_t>(r.affected());
    }

    /// Claims up to `max` free, due rows under a new token, with their events.
    awaitable<std::vector<delivery>> claim(connection& c, time_point now, std::size_t max) {
        std::vector<delivery> out;
        if (max == 0)
            co_return out;
        auto const token = detail::pg::random_token();
        auto r = co_await c.exec(
            "WITH c AS MATERIALIZED (SELECT id FROM herald_deliveries WHERE lease_token IS NULL "
            "AND due <= $1 ORDER BY due, seq LIMIT $2 FOR UPDATE SKIP LOCKED) UPDATE "
            "herald_deliveries d SET lease_token = $3, lease_owner = $4, lease_until = now() + "
            "$5 * interval '1 millisecond' FROM c WHERE d.id = c.id RETURNING d.id, "
            "d.event_key, d.webhook_id, d.webhook_name, d.url, d.attempts, d.due, d.seq, "
            "d.event_id, d.type, d.object_id, d.object_type, d.actor, d.occurred_at, d.body, "
            "d.content_type, d.headers",
            std::move(detail::pg::params()
                          .integer(to_unix_ms(now))
                          .integer(static_cast<std::int64_t>(max))
                          .integer(token)
                          .text(node)
                          .integer(p.lease.count())));
        if (r.empty())
            co_return out;
        // Events for one webhook are in their rows (no event_key); the others in herald_events.
        detail::pg::array_literal keys;
        std::set<std::string> seen;
        for (int i = 0; i < r.size(); ++i)
            if (!r.is_null(i, 1) && seen.insert(std::string(r.text(i, 1))).second)
                keys.add(r.text(i, 1));
        std::unordered_map<std::string, std::shared_ptr<prepared_event const>> events;
        if (!keys.empty()) {
            auto e = co_await c.exec("SELECT key, id, type, object_id, object_type, actor, "
                                     "occurred_at, body, content_type, headers FROM "
                                     "herald_events WHERE key = ANY($1::uuid[])",
                                     std::move(detail::pg::params().text(keys.str())));
            for (int i = 0; i < e.size(); ++i)
                events.emplace(std::string(e.text(i, 0)), event_of(e, i, 1));
        }
        std::vector<std::pair<std::int64_t, delivery>> sorted;
        for (int i = 0; i < r.size(); ++i) {
            delivery d;
            if (r.is_null(i, 1)) {
                d.event = event_of(r, i, 8);
            } else {
                auto ev = events.find(std::string(r.text(i, 1)));
                if (ev == events.end())
                    continue; // cannot be: an event leaves after its deliveries
                d.event = ev->second;
            }
            d.id = detail::pg::uuid_from_text<delivery_id>(r.text(i, 0));
            auto const hook_id = static_cast<webhook_id>(r.int64(i, 2));
            d.hook = table.get(hook_id);
            if (!d.hook) {
                // Deleted since: what the log needs to name it.
                auto gone = std::make_shared<webhook>();
                gone->id = hook_id;
                gone->name = std::string(r.text(i, 3));
                gone->url = std::string(r.text(i, 4));
                d.hook = std::move(gone);
            }
            d.attempts = static_cast<std::uint32_t>(r.int64(i, 5));
            d.due = from_unix_ms(r.int64(i, 6));
            d.lease = static_cast<std::uint64_t>(token);
            sorted.emplace_back(r.int64(i, 7), std::move(d));
        }
        std::sort(sorted.begin(), sorted.end(), [](auto const& a, auto const& b) {
            return a.second.due != b.second.due ? a.second.due < b.second.due : a.first < b.first;
        });
        for (auto& [seq, d] : sorted)
            out.push_back(std::move(d));
        claimed.fetch_add(out.size());
        co_return out;
    }

    /// The event in columns `col` to `col + 8` of row `i`: id, type, object id and type, actor,
    /// time, body, content type, headers.
    static std::shared_ptr<prepared_event const> event_of(detail::pg::rows const& e, int i,
                                                          int col) {
        prepared_event pe;
        pe.event.id = std::string(e.text(i, col));
        pe.event.type = static_cast<event_type>(e.int64(i, col + 1) % 3);
        pe.event.object_id = std::string(e.text(i, col + 2));
        if (!e.is_null(i, col + 3))
            pe.event.object_type = std::string(e.text(i, col + 3));
        if (!e.is_null(i, col + 4))
            pe.event.actor = std::string(e.text(i, col + 4));
        pe.event.occurred_at = from_unix_ms(e.int64(i, col + 5));
        pe.body.body = e.bytes(i, col + 6);
        pe.body.content_type = std::string(e.text(i, col + 7));
        pe.body.headers = detail::load_header_list(std::string(e.text(i, col + 8)));
        return std::make_shared<prepared_event const>(std::move(pe));
    }

    std::int64_t token_of(delivery const& d) const {
        return d.lease != 0 ? static_cast<std::int64_t>(d.lease) : node_token;
    }

    postgres_store_params p;
    std::string node;
    std::int64_t node_token;
    detail::pg::runtime rt; // before the rest: they are built on its io_context
    detail::pg::session_settings settings{};
    std::unique_ptr<connection> writer, listener;
    std::vector<std::unique_ptr<connection>> readers;
    cached_table<hooks_backend> table;

    // on the store's thread
    std::deque<write_op> writes;
    std::deque<read_op> reads;
    // any thread: writes handed over (push), not yet taken by the store's thread
    std::mutex incoming_mutex;
    std::deque<write_op> incoming;
    bool take_posted = false;
    bool writer_idle = false; ///< the write loop waits for writes (incoming_mutex)
    boost::asio::steady_timer write_signal, read_signal, tick, barrier_wait;
    bool closing = false;
    steady::time_point close_deadline = steady::time_point::max();
    int loops = 0;
    std::atomic<bool> running{false}; ///< the loops run: reads go through the read queue

    std::atomic<bool> reload_queued{false}, reload_wanted{false};
    std::atomic<std::int64_t> hook_writes{0}, hook_write_gen{0}, table_version{-1};
    std::mutex claimable_mutex;
    std::function<void()> claimable{};
    std::mutex barrier_mutex;
    std::function<void()> barrier{};
    barrier_thread barrier_runner; // stopped before the runtime: its jobs post to it
    std::mutex failure_mutex;
    std::optional<problem> first_failure{};
    std::string last_down{};
    std::atomic<std::uint64_t> commits{0}, operations{0}, failures{0}, fenced{0}, claimed{0},
        requeued{0}, renewed{0}, reconnects{0}, reloads{0}, queued{0};
};

inline result<postgres_store> postgres_store::open(postgres_store_params p) {
    auto s = std::make_shared<state>(std::move(p));
    if (auto r = s->open(); !r) {
        s->close();
        return r.error();
    }
    return postgres_store(std::move(s));
}

inline postgres_store::postgres_store(std::shared_ptr<state> s)
    : s_(std::move(s)) {}
inline postgres_store::postgres_store(postgres_store&&) noexcept = default;
inline postgres_store& postgres_store::operator=(postgres_store&& o) noexcept {
    if (this != &o) {
        if (s_)
            s_->close();
        s_ = std::move(o.s_);
    }
    return *this;
}
inline postgres_store::~postgres_store() {
    if (s_)
        s_->close();
}

inline result<webhook> postgres_store::create(webhook_params p) {
    return s_->table.create(std::move(p));
}
inline std::shared_ptr<webhook const> postgres_store::get(webhook_id id) const {
    return s_->table.get(id);
}
inline std::vector<webhook> postgres_store::list() const {
    return s_->table.list();
}
inline webhook_list postgres_store::match(object_event const& e) const {
    return s_->table.match(e);
}
inline result<webhook> postgres_store::update(webhook_id id, webhook_params p) {
    return s_->table.update(id, std::move(p));
}
inline result<void> postgres_store::remove(webhook_id id) {
    return s_->table.remove(id);
}
inline result<webhook> postgres_store::disable(webhook_id id, std::string reason) {
    return s_->table.disable(id, std::move(reason));
}
inline void postgres_store::guard(address_policy const& a) {
    s_->table.guard(a);
}

template <class CompletionToken>
auto postgres_store::async_enqueue(std::vector<delivery> ds, CompletionToken&& token) {
    return boost::asio::async_initiate<CompletionToken, void(result<void>)>(
        [s = s_.get()](auto handler, std::vector<delivery> v) {
            state::write_op o;
            o.kind = state::write_op::kind_t::enqueue;
            o.deliveries = std::move(v);
            o.deadline = state::steady::now() + s->p.publish_timeout;
            o.done = detail::post_back<result<void>>(std::move(handler));
            s->push(std::move(o));
        },
        token, std::move(ds));
}

inline result<void> postgres_store::enqueue(std::span<delivery const> ds) {
    state::write_op o;
    o.kind = state::write_op::kind_t::enqueue;
    o.deliveries.assign(ds.begin(), ds.end());
    o.deadline = state::steady::now() + s_->p.publish_timeout;
    return s_->push_waited(std::move(o)).get();
}

template <class CompletionToken>
auto postgres_store::async_claim(time_point now, std::size_t max, CompletionToken&& token) {
    return boost::asio::async_initiate<CompletionToken, void(result<std::vector<delivery>>)>(
        [s = s_.get(), now, max](auto handler) {
            auto done = detail::post_back<result<std::vector<delivery>>>(std::move(handler));
            s->push_read({[s, now, max, done](state::connection& c) -> state::awaitable<void> {
                              done(co_await s->claim(c, now, max));
                          },
                          [done](problem e) {
                              done(std::move(e));
                          }});
        },
        token);
}

inline void postgres_store::reschedule(delivery const& d) {
    state::write_op o;
    o.kind = state::write_op::kind_t::reschedule;
    o.id = d.id;
    o.token = s_->token_of(d);
    o.attempts = d.attempts;
    o.due = d.due;
    s_->push(std::move(o));
}

inline void postgres_store::complete(delivery const& d, outcome) {
    state::write_op o;
    o.kind = state::write_op::kind_t::complete;
    o.id = d.id;
    o.token = s_->token_of(d);
    s_->push(std::move(o));
}

inline void postgres_store::on_claimable(std::function<void()> f) {
    std::lock_guard lock(s_->claimable_mutex);
    s_->claimable = std::move(f);
}

inline void postgres_store::wait_for_log(std::function<void()> barrier) {
    std::lock_guard lock(s_->barrier_mutex);
    s_->barrier = std::move(barrier);
}

inline result<std::size_t> postgres_store::requeue_expired() {
    return s_->read_now<std::size_t>(
        [s = s_.get()](state::connection& c) { return s->requeue(c); });
}

inline result<std::size_t> postgres_store::renew_leases() {
    return s_->read_now<std::size_t>(
        [s = s_.get()](state::connection& c) { return s->renew_held(c); });
}

inline result<void> postgres_store::flush() {
    state::write_op o;
    o.kind = state::write_op::kind_t::flush;
    auto r = s_->push_waited(std::move(o)).get();
    std::lock_guard lock(s_->failure_mutex);
    if (s_->first_failure) {
        auto e = std::move(*s_->first_failure);
        s_->first_failure.reset();
        return e;
    }
    return r;
}

inline result<void> postgres_store::reload() {
    auto r = s_->read_now<bool>([s = s_.get()](state::connection& c) -> state::awaitable<bool> {
        co_await s->reload_table(c);
        co_return true;
    });
    if (!r)
        return r.error();
    return {};
}

inline postgres_store_stats postgres_store::stats() const {
    auto& s = *s_;
    return {s.commits.load(), s.operations.load(), s.failures.load(), s.fenced.load(),
            s.claimed.load(), s.requeued.load(),   s.renewed.load(),  s.reconnects.load(),
            s.reloads.load(), s.queued.load()};
}

inline std::string const& postgres_store::node() const noexcept {
    return s_->node;
}

static_assert(editable_webhook_table<postgres_store> && journaled_store<postgres_store> &&
              durable_journal<postgres_store> && address_guarded<postgres_store>);

} // namespace herald

#endif
