#ifndef HERALD_SQLITE_STORE_HPP
#define HERALD_SQLITE_STORE_HPP

#include <herald/concepts.hpp>
#include <herald/delivery.hpp>
#include <herald/sqlite/detail/connection.hpp>
#include <herald/error.hpp>
#include <herald/store/memory_store.hpp>
#include <herald/store/null_journal.hpp>
#include <herald/webhook.hpp>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace herald {

struct sqlite_store_params {
    std::string path{}; ///< the database file, created when missing
    /// Literal-IP webhook URLs must pass this (plus the webhook's allow_private) to be stored.
    address_policy addresses{};
    bool https_only = false; ///< refuse webhooks with plain http URLs
    /// How long a write waits for another connection's lock before it fails.
    duration busy_timeout{5000};
    sqlite_sync sync = sqlite_sync::normal; ///< normal survives a kill; full a power cut
    std::size_t max_batch = 8192;           ///< operations in one commit at most
    /// How long one transaction takes in new writes before it commits. Completions and retries
    /// go into the next one ahead of every queued enqueue, so the completion of a delivery is
    /// in the file about 2 × commit_interval after its attempt ended, however much intake is
    /// waiting (while the disk keeps up): that, with the requests in flight, is what a crash
    /// can send twice. Enqueues are not held back for it: a transaction commits as soon as the
    /// queue is empty.
    duration commit_interval{10};
    /// Called on the database thread before it begins a transaction that holds completions or
    /// retries, and waited for (see wait_for_log). Empty: none.
    std::function<void()> before_commit{};
};

/** Counters of the database thread, for tests and monitoring. */
struct sqlite_store_stats {
    std::uint64_t commits = 0; ///< transactions committed
    /// Writes committed (an enqueue of one event's deliveries is one write).
    std::uint64_t operations = 0;
    std::uint64_t failures = 0; ///< writes that failed
    std::uint64_t queued = 0;   ///< writes not committed yet (waiting, or being committed)
    /// The longest a completion or retry waited from being queued to being committed.
    duration max_completion_latency{0};
};

namespace detail {

/// A webhook's params as stored: secrets in full (the file is the secret's home), durations in ms.
inline std::string stored_params(webhook_params const& p) {
    boost::json::object o;
    o["name"] = p.name;
    o["url"] = p.url;
    o["events"] = p.events.bits();
    o["active"] = p.active;
    if (p.connect_timeout)
        o["connect_timeout_ms"] = p.connect_timeout->count();
    if (p.timeout)
        o["timeout_ms"] = p.timeout->count();
    boost::json::array secrets;
    for (auto const& s : p.secrets)
        secrets.emplace_back(s.reveal());
    o["secrets"] = std::move(secrets);
    boost::json::array headers;
    for (auto const& h : p.headers)
        headers.emplace_back(boost::json::array{h.name, h.value});
    o["headers"] = std::move(headers);
    if (p.ca_file)
        o["ca_file"] = *p.ca_file;
    o["verify_tls"] = p.verify_tls;
    boost::json::array allow;
    for (auto const& c : p.allow_private)
        allow.emplace_back(c.to_string());
    o["allow_private"] = std::move(allow);
    return boost::json::serialize(o);
}

/// Reads stored_params back. Not validated again: the webhook was valid when it was stored,
/// and a later, stricter policy applies when it is sent (the transport's SSRF guard).
inline result<webhook_params> load_params(std::string const& text, std::string const& field) {
    auto bad = [&](std::string why) {
        return make_problem(error::storage_failed, field, std::move(why));
    };
    boost::system::error_code ec;
    auto const v = boost::json::parse(text, ec);
    if (ec || !v.is_object())
        return bad("is not valid JSON");
    try {
        auto const& o = v.get_object();
        webhook_params p;
        p.name = std::string(o.at("name").as_string());
        p.url = std::string(o.at("url").as_string());
        auto const bits = o.at("events").to_number<unsigned>();
        for (auto t : {event_type::create, event_type::update, event_type::remove})
            if (bits & (1u << static_cast<unsigned>(t)))
                p.events.insert(t);
        p.active = o.at("active").as_bool();
        if (auto const* c = o.if_contains("connect_timeout_ms"))
            p.connect_timeout = duration(c->to_number<std::int64_t>());
        if (auto const* t = o.if_contains("timeout_ms"))
            p.timeout = duration(t->to_number<std::int64_t>());
        for (auto const& s : o.at("secrets").as_array()) {
            auto sec = secret::parse(s.as_string(), field + ".secrets");
            if (!sec)
                return sec.error();
            p.secrets.push_back(std::move(*sec));
        }
        for (auto const& h : o.at("headers").as_array()) {
            auto const& pair = h.as_array();
            p.headers.push_back(http_header{std::string(pair.at(0).as_string()),
                                            std::string(pair.at(1).as_string())});
        }
        if (auto const* ca = o.if_contains("ca_file"))
            p.ca_file = std::string(ca->as_string());
        p.verify_tls = o.at("verify_tls").as_bool();
        for (auto const& c : o.at("allow_private").as_array()) {
            auto range = cidr::parse(c.as_string(), field + ".allow_private");
            if (!range)
                return range.error();
            p.allow_private.push_back(*range);
        }
        return p;
    } catch (std::exception const& e) {
        return bad(std::string("is missing a field or has a wrong type (") + e.what() + ")");
    }
}

/// A delivery id as a 16-byte big-endian key: time-ordered like the id itself.
inline std::array<unsigned char, 16> id_key(delivery_id const& id) {
    std::array<unsigned char, 16> k{};
    for (int i = 0; i < 8; ++i) {
        k[static_cast<std::size_t>(i)] = static_cast<unsigned char>(id.hi >> (56 - 8 * i));
        k[static_cast<std::size_t>(8 + i)] = static_cast<unsigned char>(id.lo >> (56 - 8 * i));
    }
    return k;
}

inline delivery_id id_from_key(std::string const& k) {
    delivery_id id;
    for (std::size_t i = 0; i < 8 && k.size() == 16; ++i) {
        id.hi = id.hi << 8 | static_cast<unsigned char>(k[i]);
        id.lo = id.lo << 8 | static_cast<unsigned char>(k[8 + i]);
    }
    return id;
}

/// A one-shot result a thread waits for.
struct waiter {
    std::mutex mutex{};
    std::condition_variable cv{};
    std::optional<result<void>> value{};

    void set(result<void> r) {
        {
            std::lock_guard lock(mutex);
            value = std::move(r);
        }
        cv.notify_all();
    }
    result<void> wait() {
        std::unique_lock lock(mutex);
        cv.wait(lock, [&] { return value.has_value(); });
        return std::move(*value);
    }
};

} // namespace detail

/**
 * A durable webhook store: the webhooks table and the delivery queue in one SQLite file (WAL
 * mode), so that an event acknowledged by `publish` is delivered, or ends as failed in the
 * log, even when the process is killed. See docs/durability.md.
 *
 * - The table is kept in memory as well (a memory_store): `get`, `list` and `match` never touch
 *   the file. `create`, `update` and `remove` change the memory copy, then wait until the file
 *   has the change (undoing it and returning the problem when the write fails); `disable`, which
 *   the dispatcher calls on its strand, does not wait.
 * - All SQLite work runs on the store's own thread, which commits whatever is queued in one
 *   transaction (group commit): the deliveries of many events, the completions and retries of
 *   many attempts. `enqueue` waits for its commit, `async_enqueue` completes after it, and
 *   `reschedule` / `complete` only queue.
 * - Deliveries found in the file when it is opened (pending or in flight when the last process
 *   stopped or died) are handed to the dispatcher by `claim` when it starts, with their event
 *   id, attempt count and due time, so receivers see the same `webhook-id` again.
 *
 * One dispatcher process per file: the queue has no leases.
 *
 * Thread safety: every member function may be called from any thread.
 */
class sqlite_store {
public:
    /// Its enqueue completes once the deliveries are committed (durable_journal).
    static constexpr bool durable = true;

    /**
     * Opens or creates the file, brings its schema up to date and loads the table and the
     * pending deliveries.
     * @return the store, or a problem (error::storage_failed, field "path") naming the file:
     * not a database or corrupt, locked by another process, written by a newer herald, or a
     * stored webhook that cannot be read.
     */
    static result<sqlite_store> open(sqlite_store_params p) {
        auto c = detail::sqlite::connection::open(p.path, {p.busy_timeout, p.sync, false});
        if (!c)
            return c.error();
        auto s = std::make_unique<state>(std::move(p), std::move(*c));
        if (auto r = s->load(); !r)
            return r.error();
        s->start();
        return sqlite_store(std::move(s));
    }

    sqlite_store(sqlite_store&&) noexcept = default;
    sqlite_store& operator=(sqlite_store&&) noexcept = default;
    /// Commits everything queued, then closes the file.
    ~sqlite_store() = default;

    /// Validates and stores a new webhook; returns once the file has it.
    result<webhook> create(webhook_params p) {
        result<webhook> r = make_problem(error::storage_failed, "", "");
        std::shared_ptr<detail::waiter> w;
        {
            std::lock_guard lock(s_->table_mutex);
            r = s_->cache.create(std::move(p));
            if (!r)
                return r;
            w = s_->push_hook(*r, true);
        }
        if (auto done = w->wait(); !done) {
            (void)s_->cache.remove(r->id);
            return done.error();
        }
        return r;
    }

    std::shared_ptr<webhook const> get(webhook_id id) const { return s_->cache.get(id); }
    std::vector<webhook> list() const { return s_->cache.list(); }
    webhook_list match(object_event const& e) const { return s_->cache.match(e); }

    /// Replaces a webhook's params; returns once the file has the change.
    result<webhook> update(webhook_id id, webhook_params p) {
        result<webhook> r = make_problem(error::storage_failed, "", "");
        std::shared_ptr<webhook const> old;
        std::shared_ptr<detail::waiter> w;
        {
            std::lock_guard lock(s_->table_mutex);
            old = s_->cache.get(id);
            r = s_->cache.update(id, std::move(p));
            if (!r)
                return r;
            w = s_->push_hook(*r, true);
        }
        if (auto done = w->wait(); !done) {
            s_->cache.restore(*old);
            return done.error();
        }
        return r;
    }

    /// Deletes a webhook; returns once the file has the change. Its pending deliveries end
    /// as failed when their turn comes ("the webhook was deleted").
    result<void> remove(webhook_id id) {
        std::shared_ptr<webhook const> old;
        std::shared_ptr<detail::waiter> w;
        {
            std::lock_guard lock(s_->table_mutex);
            old = s_->cache.get(id);
            if (auto r = s_->cache.remove(id); !r)
                return r;
            op o;
            o.kind = op::kind_t::remove_hook;
            o.hook.id = id;
            w = s_->push_waited(std::move(o));
        }
        if (auto done = w->wait(); !done) {
            s_->cache.restore(*old);
            return done.error();
        }
        return {};
    }

    /// Switches a webhook off (410 Gone, failing too long). Does not wait for the file: the
    /// dispatcher calls it on its strand.
    result<webhook> disable(webhook_id id, std::string reason) {
        std::lock_guard lock(s_->table_mutex);
        auto r = s_->cache.disable(id, std::move(reason));
        if (r)
            s_->push_hook(*r, false);
        return r;
    }

    /// Records new deliveries and returns once they are committed (blocks the caller).
    result<void> enqueue(std::span<delivery const> ds) {
        op o;
        o.kind = op::kind_t::enqueue;
        o.deliveries.assign(ds.begin(), ds.end());
        return s_->push_waited(std::move(o))->wait();
    }

    /**
     * Records new deliveries without blocking; completes with `void(result<void>)` once they
     * are committed (or could not be), on the handler's associated executor.
     */
    template <class CompletionToken>
    auto async_enqueue(std::vector<delivery> ds, CompletionToken&& token) {
        return boost::asio::async_initiate<CompletionToken, void(result<void>)>(
            [s = s_.get()](auto handler, std::vector<delivery> v) {
                op o;
                o.kind = op::kind_t::enqueue;
                o.deliveries = std::move(v);
                o.done = post_back(std::move(handler), [](result<void> r) { return r; });
                s->push(std::move(o));
            },
            token, std::move(ds));
    }

    /// The attempt failed and the delivery waits for `d.due` (queued, not waited for).
    void reschedule(delivery const& d) {
        op o;
        o.kind = op::kind_t::reschedule;
        o.id = d.id;
        o.attempts = d.attempts;
        o.due = d.due;
        s_->push_urgent(std::move(o));
    }

    /// The delivery ended: it leaves the queue (queued, not waited for).
    void complete(delivery const& d, outcome) {
        op o;
        o.kind = op::kind_t::complete;
        o.id = d.id;
        s_->push_urgent(std::move(o));
    }

    /// The store is its own delivery journal (the same file and writer thread).
    sqlite_store& journal() noexcept { return *this; }

    /**
     * The deliveries that were in the file when it was opened, `max` at a time in journal
     * order, each handed out once (whatever `now`: the dispatcher waits for their due times
     * itself); nothing after that, since the file belongs to this process alone. Read from the
     * file page by page, on the database thread, so that a large backlog is never in memory
     * whole. Completes with `void(result<std::vector<delivery>>)` on the handler's associated
     * executor.
     */
    template <class CompletionToken>
    auto async_claim(time_point, std::size_t max, CompletionToken&& token) {
        return boost::asio::async_initiate<CompletionToken,
                                           void(result<std::vector<delivery>>)>(
            [s = s_.get(), max](auto handler) {
                if (s->all_claimed()) { // the usual case after the first claims: no I/O
                    async_ready(result<std::vector<delivery>>(std::vector<delivery>()),
                                std::move(handler));
                    return;
                }
                auto out = std::make_shared<std::vector<delivery>>();
                op o;
                o.kind = op::kind_t::read;
                o.read = [out, max](state& st) { *out = st.claim_page(max); };
                o.done = post_back(std::move(handler),
                                   [out](result<void> r) -> result<std::vector<delivery>> {
                                       if (!r)
                                           return r.error();
                                       return std::move(*out);
                                   });
                s->push(std::move(o));
            },
            token);
    }

    /// As async_claim, blocking the caller (tools and tests).
    std::vector<delivery> claim(time_point, std::size_t max) {
        auto out = std::make_shared<std::vector<delivery>>();
        op o;
        o.kind = op::kind_t::read;
        o.read = [out, max](state& st) { *out = st.claim_page(max); };
        if (auto r = s_->push_waited(std::move(o))->wait(); !r)
            return {}; // the file cannot be read: recorded, and the rest waits for a restart
        return std::move(*out);
    }

    /// Deliveries that were in the file when it was opened and are not claimed yet.
    std::size_t recovered() const {
        std::lock_guard lock(s_->claim_mutex);
        return s_->recovered_total - std::min(s_->claimed, s_->recovered_total);
    }

    /// The highest journal seq in the file when it was opened: a dispatcher numbers the events
    /// it enqueues from the next one (delivery::seq).
    std::uint64_t journal_seq() const noexcept { return s_->open_seq; }

    /**
     * Reads back deliveries of webhook `id` whose seq is in (after, upto], at most `max`, in
     * seq order, with their event, attempt count and due time: a backlog the dispatcher keeps
     * in the file only while the webhook's lane is full. Completes with
     * `void(result<std::vector<delivery>>)` on the handler's associated executor.
     */
    template <class CompletionToken>
    auto async_load(webhook_id id, std::uint64_t after, std::uint64_t upto, std::size_t max,
                    CompletionToken&& token) {
        return boost::asio::async_initiate<CompletionToken,
                                           void(result<std::vector<delivery>>)>(
            [s = s_.get(), id, after, upto, max](auto handler) {
                auto out = std::make_shared<std::vector<delivery>>();
                op o;
                o.kind = op::kind_t::read;
                o.read = [out, id, after, upto, max](state& st) {
                    *out = st.read_lane(id, after, upto, max);
                };
                o.done = post_back(std::move(handler),
                                   [out](result<void> r) -> result<std::vector<delivery>> {
                                       if (!r)
                                           return r.error();
                                       return std::move(*out);
                                   });
                s->push(std::move(o));
            },
            token);
    }

    /**
     * Waits until everything queued so far is committed.
     * @return the first write that failed since the previous flush, if any (a reschedule or
     * completion that failed is retried by nobody: its delivery is sent again after a restart).
     */
    result<void> flush() {
        op o;
        o.kind = op::kind_t::flush;
        auto r = s_->push_waited(std::move(o))->wait();
        std::lock_guard lock(s_->mutex);
        if (s_->first_error) {
            auto e = std::move(*s_->first_error);
            s_->first_error.reset();
            return e;
        }
        return r;
    }

    sqlite_store_stats stats() const {
        return {s_->commits.load(), s_->operations.load(), s_->failures.load(),
                s_->uncommitted.load(), duration(s_->max_latency_ms.load())};
    }

    /**
     * Makes every commit that holds completions or retries wait for `barrier` first (on the
     * database thread, before the transaction begins, so a log in the same file can write
     * meanwhile). With a log's barrier (sqlite_log::barrier), the attempt that ended a
     * delivery is in the log before the delivery leaves the queue, since the dispatcher
     * records an attempt before it completes or reschedules its delivery: after a crash,
     * every delivery has its outcome in the log or is still in the queue. Call it before the
     * dispatcher runs; it replaces `sqlite_store_params::before_commit`.
     */
    void wait_for_log(std::function<void()> barrier) {
        std::lock_guard lock(s_->mutex);
        s_->p.before_commit = std::move(barrier);
    }

    std::string const& path() const noexcept { return s_->p.path; }

private:
    struct state;

    /**
     * What the database thread calls when an operation is done: posts `handler` to its
     * associated executor with make(the result). The handler's executor has work until then,
     * released last, once nothing here touches the executor any more: until then its
     * io_context keeps running (and alive).
     */
    template <class Handler, class Make>
    static std::function<void(result<void>)> post_back(Handler handler, Make make) {
        auto tracked = boost::asio::prefer(boost::asio::get_associated_executor(handler),
                                           boost::asio::execution::outstanding_work.tracked);
        auto work = std::make_shared<decltype(tracked)>(std::move(tracked));
        auto held = std::make_shared<Handler>(std::move(handler));
        return [held, work, make = std::move(make)](result<void> r) mutable {
            {
                auto target =
                    boost::asio::prefer(*work, boost::asio::execution::outstanding_work.untracked);
                boost::asio::post(target, [h = std::move(held), v = make(std::move(r))]() mutable {
                    auto run = std::move(*h);
                    run(std::move(v));
                });
            }
            work.reset();
        };
    }

    struct op {
        // A scoped enum: clang's -Wshadow takes plain enumerators for the store's members.
        enum class kind_t { put_hook, remove_hook, enqueue, reschedule, complete, flush, read };
        kind_t kind = kind_t::flush;
        webhook hook{};
        std::vector<delivery> deliveries{};
        delivery_id id{};
        std::uint32_t attempts = 0;
        time_point due{};
        std::function<void(result<void>)> done;
        std::function<void(state&)> read; // a query, on the database thread
        std::chrono::steady_clock::time_point queued_at{}; // completions and retries
    };

    struct state {
        state(sqlite_store_params params, detail::sqlite::connection c)
            : p(std::move(params))
            , db(std::move(c))
            , cache(memory_store_params{p.addresses, p.https_only}) {}

        ~state() {
            if (!thread.joinable())
                return;
            {
                std::lock_guard lock(mutex);
                stopping = true;
            }
            cv.notify_all();
            thread.join();
        }

        void start() {
            prepare();
            thread = std::thread([this] { loop(); });
        }

        void push(op o) {
            uncommitted.fetch_add(1);
            {
                std::lock_guard lock(mutex);
                ops.push_back(std::move(o));
            }
            cv.notify_one();
        }

        /// A completion or retry: committed ahead of queued enqueues.
        void push_urgent(op o) {
            o.queued_at = std::chrono::steady_clock::now();
            uncommitted.fetch_add(1);
            {
                std::lock_guard lock(mutex);
                urgent.push_back(std::move(o));
            }
            cv.notify_one();
        }

        std::shared_ptr<detail::waiter> push_waited(op o) {
            auto w = std::make_shared<detail::waiter>();
            o.done = [w](result<void> r) {
                w->set(std::move(r));
            };
            push(std::move(o));
            return w;
        }

        std::shared_ptr<detail::waiter> push_hook(webhook const& w, bool wait) {
            op o;
            o.kind = op::kind_t::put_hook;
            o.hook = w;
            if (wait)
                return push_waited(std::move(o));
            push(std::move(o));
            return nullptr;
        }

        // ---- on the opening thread, before the database thread starts ----

        result<void> load() {
            try {
                cache.reserve_ids(static_cast<webhook_id>(
                    db.pragma_int("SELECT value FROM meta WHERE key = 'last_webhook_id'")));
                auto hooks = db.prepare("SELECT id, params, created_at, updated_at, "
                                        "disabled_reason, disabled_at FROM webhooks ORDER BY id");
                while (hooks.step()) {
                    auto const id = static_cast<webhook_id>(hooks.int64(0));
                    auto params = detail::load_params(hooks.text(1),
                                                      "webhooks[id=" + std::to_string(id) + "]");
                    if (!params) {
                        auto e = params.error();
                        e.message = "'" + p.path + "': stored webhook " + e.field + " " + e.message;
                        e.field = "path";
                        return e;
                    }
                    webhook w;
                    static_cast<webhook_params&>(w) = std::move(*params);
                    w.id = id;
                    w.created_at = detail::sqlite::from_column(hooks.int64(2));
                    w.updated_at = detail::sqlite::from_column(hooks.int64(3));
                    w.disabled_reason = hooks.text(4);
                    if (!hooks.is_null(5))
                        w.disabled_at = detail::sqlite::from_column(hooks.int64(5));
                    cache.restore(std::move(w));
                }
                hooks.reset();
                // A crash cannot leave these (each write is one transaction); a file edited by
                // hand might.
                db.exec("DELETE FROM deliveries WHERE event_seq NOT IN (SELECT seq FROM events);"
                        "DELETE FROM events WHERE seq NOT IN (SELECT event_seq FROM deliveries)");
                // The deliveries stay in the file: claim reads them page by page.
                open_seq = static_cast<std::uint64_t>(
                    db.pragma_int("SELECT coalesce(max(seq), 0) FROM events"));
                recovered_total = static_cast<std::size_t>(
                    db.pragma_int("SELECT count(*) FROM deliveries"));
            } catch (detail::sqlite::sqlite_error const& e) {
                return detail::sqlite::describe(p.path, e.code(), e.what(), p.busy_timeout);
            }
            return {};
        }

        // ---- on the database thread (and claim's pages) ----

        /// The deliveries `rows` yields (columns as in delivery_columns), with their events.
        std::vector<delivery> read_deliveries(detail::sqlite::statement& rows) {
            std::vector<delivery> out;
            std::unordered_map<std::int64_t, std::shared_ptr<prepared_event const>> events;
            while (rows.step()) {
                auto const seq = rows.int64(1);
                auto& ev = events[seq];
                if (!ev) {
                    prepared_event pe;
                    pe.event.id = rows.text(7);
                    pe.event.type = static_cast<event_type>(rows.int64(8) % 3);
                    pe.event.object_id = rows.text(9);
                    if (!rows.is_null(10))
                        pe.event.object_type = rows.text(10);
                    if (!rows.is_null(11))
                        pe.event.actor = rows.text(11);
                    pe.event.occurred_at = detail::sqlite::from_column(rows.int64(12));
                    pe.body.body = rows.blob(13);
                    pe.body.content_type = rows.text(14);
                    pe.body.headers = detail::sqlite::load_header_list(rows.text(15));
                    ev = std::make_shared<prepared_event const>(std::move(pe));
                }
                delivery d;
                d.id = detail::id_from_key(rows.blob(0));
                d.seq = static_cast<std::uint64_t>(seq);
                d.event = ev;
                auto const hook_id = static_cast<webhook_id>(rows.int64(2));
                d.hook = cache.get(hook_id);
                if (!d.hook) {
                    // Deleted since: what the log needs to name it.
                    auto gone = std::make_shared<webhook>();
                    gone->id = hook_id;
                    gone->name = rows.text(3);
                    gone->url = rows.text(4);
                    d.hook = std::move(gone);
                }
                d.attempts = static_cast<std::uint32_t>(rows.int64(5));
                d.due = detail::sqlite::from_column(rows.int64(6));
                out.push_back(std::move(d));
            }
            rows.reset();
            return out;
        }

        /// The next page of what was in the file when it was opened, after (seq, key).
        std::vector<delivery> read_recovered(std::uint64_t seq, std::string const& key,
                                             std::size_t max) {
            claim_stmt.bind(1, std::int64_t(open_seq))
                .bind(2, std::int64_t(seq))
                .bind_blob(3, key.data(), key.size())
                .bind(4, std::int64_t(max));
            return read_deliveries(claim_stmt);
        }

        /// The next page of claim, and the cursor moved past it (on the database thread).
        std::vector<delivery> claim_page(std::size_t max) {
            std::lock_guard lock(claim_mutex);
            if (claimed >= recovered_total || max == 0)
                return {};
            auto out = read_recovered(claim_seq, claim_key, max);
            if (out.empty()) {
                claimed = recovered_total;
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
            return claimed >= recovered_total;
        }

        std::vector<delivery> read_lane(webhook_id id, std::uint64_t after, std::uint64_t upto,
                                        std::size_t max) {
            lane_stmt.bind(1, std::int64_t(id))
                .bind(2, std::int64_t(after))
                .bind(3, std::int64_t(upto))
                .bind(4, std::int64_t(max));
            return read_deliveries(lane_stmt);
        }

        void prepare() {
            static constexpr char const* delivery_columns =
                "SELECT d.id, d.event_seq, d.webhook_id, d.webhook_name, d.url, d.attempts, "
                "d.due, e.id, e.type, e.object_id, e.object_type, e.actor, e.occurred_at, "
                "e.body, e.content_type, e.headers FROM deliveries d JOIN events e ON "
                "e.seq = d.event_seq ";
            claim_stmt = db.prepare(std::string(delivery_columns) +
                                    "WHERE d.event_seq <= ?1 AND (d.event_seq, d.id) > (?2, ?3) "
                                    "ORDER BY d.event_seq, d.id LIMIT ?4");
            lane_stmt = db.prepare(std::string(delivery_columns) +
                                   "WHERE d.webhook_id = ?1 AND d.event_seq > ?2 AND "
                                   "d.event_seq <= ?3 ORDER BY d.event_seq LIMIT ?4");
            put_hook_stmt = db.prepare(
                "INSERT INTO webhooks(id, name_key, params, created_at, updated_at, "
                "disabled_reason, disabled_at) VALUES(?1, lower(?2), ?3, ?4, ?5, ?6, ?7) "
                "ON CONFLICT(id) DO UPDATE SET name_key = excluded.name_key, params = "
                "excluded.params, updated_at = excluded.updated_at, disabled_reason = "
                "excluded.disabled_reason, disabled_at = excluded.disabled_at");
            last_id_stmt = db.prepare("INSERT INTO meta(key, value) VALUES('last_webhook_id', ?1) "
                                      "ON CONFLICT(key) DO UPDATE SET value = "
                                      "max(value, excluded.value)");
            remove_hook_stmt = db.prepare("DELETE FROM webhooks WHERE id = ?1");
            event_stmt = db.prepare(
                "INSERT INTO events(id, type, object_id, object_type, actor, occurred_at, body, "
                "content_type, headers, seq) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)");
            delivery_stmt = db.prepare(
                "INSERT OR REPLACE INTO deliveries(id, event_seq, webhook_id, webhook_name, url, "
                "attempts, due) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)");
            reschedule_stmt =
                db.prepare("UPDATE deliveries SET attempts = ?2, due = ?3 WHERE id = ?1");
            complete_stmt = db.prepare("DELETE FROM deliveries WHERE id = ?1 RETURNING event_seq");
            event_done_stmt = db.prepare("DELETE FROM events WHERE seq = ?1 AND NOT EXISTS "
                                         "(SELECT 1 FROM deliveries WHERE event_seq = ?1)");
        }

        // ---- the database thread ----

        void loop() {
            std::vector<op> batch;
            std::unique_lock lock(mutex);
            for (;;) {
                cv.wait(lock, [&] { return stopping || !ops.empty() || !urgent.empty(); });
                if (ops.empty() && urgent.empty())
                    return; // stopping, and everything is written
                // Completions and retries first: they must not wait behind a backlog of
                // enqueues (each holding an event's body), or a crash re-sends what they ended.
                auto const max = std::max<std::size_t>(p.max_batch, 1);
                while (!urgent.empty() && batch.size() < max) {
                    batch.push_back(std::move(urgent.front()));
                    urgent.pop_front();
                }
                std::size_t const urgent_count = batch.size();
                while (!ops.empty() && batch.size() < max) {
                    batch.push_back(std::move(ops.front()));
                    ops.pop_front();
                }
                auto barrier = urgent_count > 0 ? p.before_commit : std::function<void()>();
                lock.unlock();
                if (barrier)
                    barrier(); // outside any transaction: a log in this file may be writing
                auto const applied = run(batch, urgent_count);
                uncommitted.fetch_sub(applied);
                lock.lock();
                // What did not fit in the interval goes back to the front of its queue.
                for (auto i = batch.size(); i > applied; --i)
                    ops.push_front(std::move(batch[i - 1]));
                batch.clear();
            }
        }

        /// One transaction for the batch, or for the part of it applied within commit_interval
        /// (the completions and retries at its head always); when it fails, each operation
        /// alone, so that one bad write fails only itself.
        /// @return how many operations of the batch were done (committed or failed).
        std::size_t run(std::vector<op>& batch, std::size_t urgent_count) {
            using steady = std::chrono::steady_clock;
            std::size_t n = batch.size();
            try {
                detail::sqlite::transaction t(db);
                auto const until = steady::now() + p.commit_interval;
                for (std::size_t i = 0; i < batch.size(); ++i) {
                    if (i > 0 && i >= urgent_count && steady::now() >= until) {
                        n = i;
                        break;
                    }
                    apply(batch[i]);
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

        void note_latency(std::vector<op> const& batch, std::size_t urgent_count) {
            if (urgent_count == 0)
                return;
            // The head of the urgent queue waited longest.
            auto const waited = std::chrono::duration_cast<duration>(
                std::chrono::steady_clock::now() - batch.front().queued_at);
            auto const ms = static_cast<std::uint64_t>(std::max<std::int64_t>(waited.count(), 0));
            auto seen = max_latency_ms.load(std::memory_order_relaxed);
            while (ms > seen && !max_latency_ms.compare_exchange_weak(seen, ms))
                ;
        }

        void run_one(op& o) {
            problem failure;
            try {
                detail::sqlite::transaction t(db);
                apply(o);
                t.commit();
                commits.fetch_add(1, std::memory_order_relaxed);
                operations.fetch_add(1, std::memory_order_relaxed);
                if (o.done)
                    o.done({});
                return;
            } catch (detail::sqlite::sqlite_error const& e) {
                failure = detail::sqlite::describe(p.path, e.code(), e.what(), p.busy_timeout);
            } catch (std::exception const& e) {
                failure = make_problem(error::storage_failed, "path",
                                       "'" + p.path + "' failed: " + e.what());
            }
            failures.fetch_add(1, std::memory_order_relaxed);
            {
                std::lock_guard lock(mutex);
                if (!first_error)
                    first_error = failure;
            }
            if (o.done)
                o.done(failure);
        }

        void apply(op& o) {
            using detail::sqlite::to_column;
            switch (o.kind) {
            case op::kind_t::put_hook: {
                auto const& w = o.hook;
                put_hook_stmt.bind(1, std::int64_t(w.id))
                    .bind(2, w.name)
                    .bind(3, detail::stored_params(w))
                    .bind(4, to_column(w.created_at))
                    .bind(5, to_column(w.updated_at))
                    .bind(6, w.disabled_reason);
                if (w.disabled_at)
                    put_hook_stmt.bind(7, to_column(*w.disabled_at));
                put_hook_stmt.run();
                last_id_stmt.bind(1, std::int64_t(w.id)).run();
                break;
            }
            case op::kind_t::remove_hook:
                remove_hook_stmt.bind(1, std::int64_t(o.hook.id)).run();
                break;
            case op::kind_t::enqueue: {
                // Deliveries of one event share its row (and its body).
                prepared_event const* last = nullptr;
                std::int64_t seq = 0;
                for (auto const& d : o.deliveries) {
                    if (d.event.get() != last) {
                        auto const& ev = *d.event;
                        event_stmt.bind(1, ev.event.id)
                            .bind(2, std::int64_t(ev.event.type))
                            .bind(3, ev.event.object_id);
                        if (ev.event.object_type)
                            event_stmt.bind(4, *ev.event.object_type);
                        if (ev.event.actor)
                            event_stmt.bind(5, *ev.event.actor);
                        event_stmt.bind(6, to_column(ev.event.occurred_at))
                            .bind_blob(7, ev.body.body.data(), ev.body.body.size())
                            .bind(8, ev.body.content_type)
                            .bind(9, detail::sqlite::header_list(ev.body.headers));
                        if (d.seq != 0) // numbered by the dispatcher; else the next rowid
                            event_stmt.bind(10, static_cast<std::int64_t>(d.seq));
                        event_stmt.run();
                        seq = sqlite3_last_insert_rowid(db.get());
                        last = d.event.get();
                    }
                    auto const key = detail::id_key(d.id);
                    delivery_stmt.bind_blob(1, key.data(), key.size())
                        .bind(2, seq)
                        .bind(3, std::int64_t(d.hook->id))
                        .bind(4, d.hook->name)
                        .bind(5, d.hook->url)
                        .bind(6, std::int64_t(d.attempts))
                        .bind(7, to_column(d.due));
                    delivery_stmt.run();
                }
                break;
            }
            case op::kind_t::reschedule: {
                auto const key = detail::id_key(o.id);
                reschedule_stmt.bind_blob(1, key.data(), key.size())
                    .bind(2, std::int64_t(o.attempts))
                    .bind(3, to_column(o.due));
                reschedule_stmt.run();
                break;
            }
            case op::kind_t::complete: {
                auto const key = detail::id_key(o.id);
                complete_stmt.bind_blob(1, key.data(), key.size());
                std::optional<std::int64_t> seq;
                while (complete_stmt.step())
                    seq = complete_stmt.int64(0);
                complete_stmt.reset();
                if (seq)
                    event_done_stmt.bind(1, *seq).run();
                break;
            }
            case op::kind_t::read:
                o.read(*this); // again from the start if the transaction is tried again
                break;
            case op::kind_t::flush:
                break;
            }
        }

        sqlite_store_params p{};
        detail::sqlite::connection db{}; // the database thread's, once it runs
        memory_store cache{};
        std::mutex table_mutex{}; // a table change and its write are queued in the same order

        mutable std::mutex claim_mutex;
        std::uint64_t open_seq = 0;      // the highest event seq when the file was opened
        std::size_t recovered_total = 0; // deliveries in the file when it was opened
        std::size_t claimed = 0;
        std::uint64_t claim_seq = 0; // where the next page of claim starts
        std::string claim_key{};

        std::mutex mutex{};
        std::condition_variable cv{};
        std::deque<op> ops{};
        std::deque<op> urgent{}; // completions and retries
        bool stopping = false;
        std::optional<problem> first_error{};
        std::atomic<std::uint64_t> commits{0}, operations{0}, failures{0}, uncommitted{0},
            max_latency_ms{0};

        detail::sqlite::statement put_hook_stmt, last_id_stmt, remove_hook_stmt, event_stmt,
            delivery_stmt, reschedule_stmt, complete_stmt, event_done_stmt, claim_stmt, lane_stmt;
        std::thread thread{}; // last: started by start() once the rest is built
    };

    explicit sqlite_store(std::unique_ptr<state> s)
        : s_(std::move(s)) {}

    std::unique_ptr<state> s_;
};

static_assert(editable_webhook_table<sqlite_store> && journaled_store<sqlite_store> &&
              backlog_journal<sqlite_store>);

} // namespace herald

#endif
