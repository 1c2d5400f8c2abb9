#ifndef HERALD_SQLITE_STORE_HPP
#define HERALD_SQLITE_STORE_HPP

#include <herald/address_policy.hpp>
#include <herald/concepts.hpp>
#include <herald/delivery.hpp>
#include <herald/error.hpp>
#include <herald/sqlite/detail/connection.hpp>
#include <herald/time.hpp>
#include <herald/webhook.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
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

/**
 * A durable webhook store: the webhooks table and the delivery queue in one SQLite file (WAL
 * mode), so that an event acknowledged by `publish` is delivered, or ends as failed in the
 * log, even when the process is killed. See docs/durability.md.
 *
 * - The table is a write-through cache (cached_table) over the file: `get`, `list` and `match`
 *   never touch the file. `create`, `update` and `remove` change the memory copy, then wait
 *   until the file has the change (undoing it and returning the problem when the write fails);
 *   `disable`, which the dispatcher calls on its strand, does not wait.
 * - All SQLite work runs on the store's own thread (a background writer), which commits
 *   whatever is queued in one transaction (group commit): the deliveries of many events, the
 *   completions and retries of many attempts. `enqueue` waits for its commit, `async_enqueue`
 *   completes after it, and `reschedule` / `complete` only queue.
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
    static result<sqlite_store> open(sqlite_store_params p);

    sqlite_store(sqlite_store&&) noexcept;
    sqlite_store& operator=(sqlite_store&&) noexcept;
    /// Commits everything queued, then closes the file.
    ~sqlite_store();

    /// Validates and stores a new webhook; returns once the file has it.
    result<webhook> create(webhook_params p);
    std::shared_ptr<webhook const> get(webhook_id id) const;
    std::vector<webhook> list() const;
    webhook_list match(object_event const& e) const;
    /// Replaces a webhook's params; returns once the file has the change.
    result<webhook> update(webhook_id id, webhook_params p);
    /// Deletes a webhook; returns once the file has the change. Its pending deliveries end
    /// as failed when their turn comes ("the webhook was deleted").
    result<void> remove(webhook_id id);
    /// Switches a webhook off (410 Gone, failing too long). Does not wait for the file: the
    /// dispatcher calls it on its strand.
    result<webhook> disable(webhook_id id, std::string reason);

    /// Records new deliveries and returns once they are committed (blocks the caller).
    result<void> enqueue(std::span<delivery const> ds);

    /**
     * Records new deliveries without blocking; completes with `void(result<void>)` once they
     * are committed (or could not be), on the handler's associated executor.
     */
    template <class CompletionToken>
    auto async_enqueue(std::vector<delivery> ds, CompletionToken&& token);

    /// The attempt failed and the delivery waits for `d.due` (queued, not waited for).
    void reschedule(delivery const& d);
    /// The delivery ended: it leaves the queue (queued, not waited for).
    void complete(delivery const& d, outcome);

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
    auto async_claim(time_point now, std::size_t max, CompletionToken&& token);

    /// As async_claim, blocking the caller (tools and tests); nothing when the file cannot be
    /// read (the failure is counted, and the rest waits for a restart).
    std::vector<delivery> claim(time_point now, std::size_t max);

    /// Deliveries that were in the file when it was opened and are not claimed yet.
    std::size_t recovered() const;

    /// The highest journal seq in the file when it was opened: a dispatcher numbers the events
    /// it enqueues from the next one (delivery::seq).
    std::uint64_t journal_seq() const noexcept;

    /**
     * Reads back deliveries of webhook `id` whose seq is in (after, upto], at most `max`, in
     * seq order, with their event, attempt count and due time: a backlog the dispatcher keeps
     * in the file only while the webhook's lane is full. Completes with
     * `void(result<std::vector<delivery>>)` on the handler's associated executor.
     */
    template <class CompletionToken>
    auto async_load(webhook_id id, std::uint64_t after, std::uint64_t upto, std::size_t max,
                    CompletionToken&& token);

    /**
     * Waits until everything queued so far is committed.
     * @return the first write that failed since the previous flush, if any (a reschedule or
     * completion that failed is retried by nobody: its delivery is sent again after a restart).
     */
    result<void> flush();

    sqlite_store_stats stats() const;

    /**
     * Makes every commit that holds completions or retries wait for `barrier` first (on the
     * database thread, before the transaction begins, so a log in the same file can write
     * meanwhile). With a log's barrier (sqlite_log::barrier), the attempt that ended a
     * delivery is in the log before the delivery leaves the queue, since the dispatcher
     * records an attempt before it completes or reschedules its delivery: after a crash,
     * every delivery has its outcome in the log or is still in the queue. Call it before the
     * dispatcher runs; it replaces `sqlite_store_params::before_commit`.
     */
    void wait_for_log(std::function<void()> barrier);

    std::string const& path() const noexcept;

private:
    struct state;

    explicit sqlite_store(std::unique_ptr<state> s);

    std::unique_ptr<state> s_;
};

} // namespace herald

#include <herald/sqlite/impl/sqlite_store.hpp>

#endif
