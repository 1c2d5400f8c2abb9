#ifndef HERALD_CACHED_TABLE_HPP
#define HERALD_CACHED_TABLE_HPP

#include <herald/concepts.hpp>
#include <herald/error.hpp>
#include <herald/store/detail/webhook_codec.hpp>
#include <herald/store/memory_store.hpp>
#include <herald/webhook.hpp>

#include <concepts>
#include <cstdint>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace herald {

/// What a table backend holds: every stored webhook, and the highest id it ever assigned.
struct stored_table {
    std::vector<webhook> hooks{};
    webhook_id last_id = 0; ///< ids up to this one are never given again
};

/**
 * Where a cached_table keeps its webhooks (a SQLite file, a PostgreSQL table):
 * - `b.load_table()` -> `result<stored_table>`: everything stored (a problem when it cannot be
 *   read).
 * - `b.write_hook(w)` -> `std::future<result<void>>`: queues storing `w` whole (new or changed)
 *   and completes once it is stored, or could not be.
 * - `b.remove_hook(id)` -> `std::future<result<void>>`: the same for deleting a webhook.
 *
 * The table calls write_hook and remove_hook under its lock, so that writes are queued in the
 * order of the changes: they must queue, not wait.
 */
template <class B>
concept table_backend = requires(B& b, webhook const& w, webhook_id id) {
    { b.load_table() } -> std::same_as<result<stored_table>>;
    { b.write_hook(w) } -> std::same_as<std::future<result<void>>>;
    { b.remove_hook(id) } -> std::same_as<std::future<result<void>>>;
};

/** A backend that stores nothing: every write succeeds at once (for tests). */
struct null_table_backend {
    result<stored_table> load_table() { return stored_table{}; }
    std::future<result<void>> write_hook(webhook const&) { return done(); }
    std::future<result<void>> remove_hook(webhook_id) { return done(); }

    static std::future<result<void>> done() {
        std::promise<result<void>> p;
        p.set_value(result<void>());
        return p.get_future();
    }
};

static_assert(table_backend<null_table_backend>);

/**
 * The webhooks table as a write-through cache over a backend: `get`, `list` and `match` are
 * answered from memory (a memory_store, with its matching index) and never touch the backend;
 * `create`, `update` and `remove` change the memory copy, then wait until the backend has the
 * change, and undo it when the backend refuses it (returning the backend's problem); `disable`,
 * which the dispatcher calls on its strand, does not wait.
 *
 * `load` reads the backend's table into the cache: once when the store opens, and again
 * whenever the backend's table changed behind the cache (another process's write).
 *
 * Thread safety: every member function may be called from any thread.
 */
template <class Backend>
requires table_backend<Backend>
class cached_table {
public:
    explicit cached_table(Backend backend = {}, memory_store_params p = {})
        : backend_(std::move(backend))
        , cache_(std::move(p)) {}

    /**
     * Replaces the cached copy with the backend's table: webhooks it no longer has leave the
     * cache, the others are put back as stored.
     * @return the backend's problem when its table cannot be read (the cache is unchanged).
     */
    result<void> load() {
        auto t = backend_.load_table();
        if (!t)
            return t.error();
        replace(std::move(*t));
        return {};
    }

    /**
     * Replaces the cached copy with `t`, a table the backend read (load, or a backend that
     * reads it itself when another process changed it): webhooks it does not have leave the
     * cache, the others are put back as stored, and a webhook whose stored copy is the same as
     * the cached one is left alone (what get() returned stays the same object).
     */
    void replace(stored_table t) {
        std::lock_guard lock(mutex_);
        std::set<webhook_id> kept;
        for (auto const& w : t.hooks)
            kept.insert(w.id);
        for (auto const& w : cache_.list())
            if (!kept.contains(w.id))
                (void)cache_.remove(w.id);
        cache_.reserve_ids(t.last_id);
        for (auto& w : t.hooks) {
            if (auto now = cache_.get(w.id); now && same_stored(*now, w))
                continue;
            cache_.restore(std::move(w));
        }
    }

    /**
     * Validates and stores a new webhook; returns once the backend has it. A backend shared by
     * several processes refuses an id another process has just given (a problem with field
     * "id"): the cache then reads the backend's table again and tries the next id, up to 3
     * times (the reread table may also hold the name: then that is the problem).
     */
    result<webhook> create(webhook_params p) {
        for (int attempt = 0;; ++attempt) {
            std::future<result<void>> stored;
            result<webhook> r = make_problem(error::storage_failed, "", "");
            {
                std::lock_guard lock(mutex_);
                r = cache_.create(p);
                if (!r)
                    return r;
                stored = backend_.write_hook(*r);
            }
            auto done = stored.get();
            if (done)
                return r;
            {
                std::lock_guard lock(mutex_);
                (void)cache_.remove(r->id);
            }
            if (done.error().field != "id" || attempt == 2)
                return done.error();
            if (auto reread = load(); !reread)
                return reread.error();
        }
    }

    std::shared_ptr<webhook const> get(webhook_id id) const { return cache_.get(id); }
    std::vector<webhook> list() const { return cache_.list(); }
    webhook_list match(object_event const& e) const { return cache_.match(e); }

    /// Replaces a webhook's params; returns once the backend has the change.
    result<webhook> update(webhook_id id, webhook_params p) {
        std::future<result<void>> stored;
        std::shared_ptr<webhook const> old;
        result<webhook> r = make_problem(error::storage_failed, "", "");
        {
            std::lock_guard lock(mutex_);
            old = cache_.get(id);
            r = cache_.update(id, std::move(p));
            if (!r)
                return r;
            stored = backend_.write_hook(*r);
        }
        if (auto done = stored.get(); !done) {
            std::lock_guard lock(mutex_);
            cache_.restore(*old);
            return done.error();
        }
        return r;
    }

    /// Deletes a webhook; returns once the backend has the change.
    result<void> remove(webhook_id id) {
        std::future<result<void>> stored;
        std::shared_ptr<webhook const> old;
        {
            std::lock_guard lock(mutex_);
            old = cache_.get(id);
            if (auto r = cache_.remove(id); !r)
                return r;
            stored = backend_.remove_hook(id);
        }
        if (auto done = stored.get(); !done) {
            std::lock_guard lock(mutex_);
            cache_.restore(*old);
            return done.error();
        }
        return {};
    }

    /// Switches a webhook off (410 Gone, failing too long). Does not wait for the backend.
    result<webhook> disable(webhook_id id, std::string reason) {
        std::lock_guard lock(mutex_);
        auto r = cache_.disable(id, std::move(reason));
        if (r)
            (void)backend_.write_hook(*r); // not waited for: a dropped future does not block
        return r;
    }

    /// Sets which literal-IP URLs webhooks may have from now on.
    void guard(address_policy const& a) { cache_.guard(a); }

    Backend& backend() noexcept { return backend_; }

private:
    /// Whether the cached `a` is what the backend stored as `b`: times as a backend keeps
    /// them, in milliseconds (the cached copy keeps the finer time it was made with).
    static bool same_stored(webhook const& a, webhook const& b) {
        auto const ms = [](std::optional<time_point> t) {
            return t ? std::optional<std::int64_t>(to_unix_ms(*t)) : std::nullopt;
        };
        return ms(a.created_at) == ms(b.created_at) && ms(a.updated_at) == ms(b.updated_at) &&
               a.disabled_reason == b.disabled_reason && ms(a.disabled_at) == ms(b.disabled_at) &&
               detail::stored_params(a) == detail::stored_params(b);
    }

    Backend backend_;
    memory_store cache_;
    std::mutex mutex_; // a change and its write are queued in the same order
};

static_assert(editable_webhook_table<cached_table<null_table_backend>> &&
              address_guarded<cached_table<null_table_backend>>);

} // namespace herald

#endif
