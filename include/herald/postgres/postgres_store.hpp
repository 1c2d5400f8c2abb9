#ifndef HERALD_POSTGRES_STORE_HPP
#define HERALD_POSTGRES_STORE_HPP

#include <herald/address_policy.hpp>
#include <herald/concepts.hpp>
#include <herald/delivery.hpp>
#include <herald/error.hpp>
#include <herald/time.hpp>
#include <herald/webhook.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace herald {

struct postgres_store_params {
    /// A libpq connection string (`host=... dbname=...` or `postgresql://...`).
    std::string conninfo{};
    /// Literal-IP webhook URLs must pass this (plus the webhook's allow_private) to be stored.
    address_policy addresses{};
    bool https_only = false; ///< refuse webhooks with plain http URLs
    /**
     * How long a claim holds a delivery before any process may take it over. This process
     * renews the leases it holds (every lease / 4, those with less than half left), so a lease
     * lapses only when the process is gone or cut off from the database for that long.
     */
    duration lease = std::chrono::seconds(60);
    /// When set, open() refuses a lease shorter than this plus lease_margin: the longest an
    /// attempt may take (the transport's or a webhook's connect + total timeout), so that a
    /// lease never lapses while the attempt it covers is still running.
    std::optional<duration> longest_attempt{};
    /// Connections for statements: the first commits the writes, the others claim and read.
    /// One more is opened for LISTEN.
    std::size_t pool_size = 2;
    duration connect_timeout = std::chrono::seconds(5);
    /// Every statement's timeout (the server's statement_timeout on each connection).
    duration statement_timeout = std::chrono::seconds(10);
    /// The backstop of the notifications: how often the table's version and expired leases
    /// are looked at without one.
    duration poll_interval = std::chrono::seconds(1);
    /// How long an enqueue waits while the database cannot be reached before it fails (the
    /// publish then returns the problem: never a silent drop).
    duration publish_timeout = std::chrono::seconds(10);
    std::size_t max_batch = 4096; ///< writes in one transaction at most
    /// This process's name in the lease_owner column. Empty: host:pid:random.
    std::string node{};
};

/// The margin a lease must have beyond postgres_store_params::longest_attempt.
inline constexpr duration lease_margin = std::chrono::seconds(5);

/**
 * Checks that a lease outlasts the longest attempt plus lease_margin.
 * @return a problem (error::invalid_field, field "lease") naming both values when it does not.
 */
inline result<void> check_lease(duration lease, duration longest_attempt) {
    if (lease >= longest_attempt + lease_margin)
        return {};
    return make_problem(error::invalid_field, "lease",
                        "the lease (" + std::to_string(lease.count()) +
                            " ms) must be longer than the longest attempt (" +
                            std::to_string(longest_attempt.count()) + " ms) plus " +
                            std::to_string(lease_margin.count()) +
                            " ms: otherwise another process may take over a delivery "
                            "while its attempt is still running");
}

/** Counters of the store, for tests and monitoring. */
struct postgres_store_stats {
    std::uint64_t commits = 0; ///< write transactions committed
    std::uint64_t operations =
        0;                      ///< writes committed (one enqueue of an event's deliveries is one)
    std::uint64_t failures = 0; ///< writes that failed for good
    /// Completions and retries the database refused because their lease token no longer
    /// held the row (another process had taken the delivery over).
    std::uint64_t fenced = 0;
    std::uint64_t claimed = 0;    ///< deliveries claimed from the shared queue
    std::uint64_t requeued = 0;   ///< expired leases this process put back in the queue
    std::uint64_t renewed = 0;    ///< leases this process renewed
    std::uint64_t reconnects = 0; ///< connections made again after one broke
    std::uint64_t reloads = 0;    ///< times the webhooks table was read again
    std::uint64_t queued = 0;     ///< writes not committed yet
};

/**
 * A durable webhook store on PostgreSQL, shared by every herald process that opens the same
 * database: the webhooks table, and the delivery queue with leases. See docs/deployment.md.
 *
 * - The table is a write-through cache (cached_table) over `herald_webhooks`: `get`, `list`
 *   and `match` never touch the database. A change made by any process reaches the others
 *   within about a second: each is told by a notification, and checks the table's version
 *   every poll_interval as well.
 * - The queue: every delivery a process enqueues is held by that process's lease, and the
 *   process sends it (no claim round trip). A process that is gone stops renewing its leases;
 *   once one lapses, any process puts the row back in the queue, tells the others, and the
 *   first to claim it (FOR UPDATE SKIP LOCKED, in batches) sends it again, with the same
 *   `webhook-id`. Each claim has a fresh fencing token: a reschedule or completion with a
 *   token that no longer holds the row changes nothing.
 * - Finished deliveries leave the queue (their outcome is in the log).
 * - All database work runs on the store's own thread, over libpq in nonblocking mode; writes
 *   are committed in batches (group commit). The database restarting or the network to it
 *   dropping is survived: connections come back with backoff, queued writes are committed
 *   then (they are idempotent), and an enqueue that cannot commit within publish_timeout
 *   fails with a problem.
 *
 * Thread safety: every member function may be called from any thread.
 */
class postgres_store {
public:
    /// Its enqueue completes once the deliveries are committed (durable_journal).
    static constexpr bool durable = true;

    /**
     * Connects, brings the schema up to date (or refuses a newer one), and loads the table.
     * @return the store, or a problem (error::storage_failed, field "conninfo") naming the
     * database without its password; or error::invalid_field, field "lease", for a lease
     * shorter than longest_attempt + lease_margin.
     */
    static result<postgres_store> open(postgres_store_params p);

    postgres_store(postgres_store&&) noexcept;
    postgres_store& operator=(postgres_store&&) noexcept;
    /// Commits what is queued (waiting at most publish_timeout for the database), gives the
    /// leases this process holds back to the queue, tells the others, and disconnects.
    ~postgres_store();

    // ---- the webhooks table (editable_webhook_table) ----
    result<webhook> create(webhook_params p);
    std::shared_ptr<webhook const> get(webhook_id id) const;
    std::vector<webhook> list() const;
    webhook_list match(object_event const& e) const;
    result<webhook> update(webhook_id id, webhook_params p);
    result<void> remove(webhook_id id);
    result<webhook> disable(webhook_id id, std::string reason);
    void guard(address_policy const& a);

    // ---- the delivery journal (durable_journal) ----
    postgres_store& journal() noexcept { return *this; }

    /// Records new deliveries, held by this process; completes with `void(result<void>)`
    /// once committed, or with a problem after publish_timeout without the database.
    template <class CompletionToken>
    auto async_enqueue(std::vector<delivery> ds, CompletionToken&& token);

    /// Records new deliveries and returns once they are committed (blocks the caller).
    result<void> enqueue(std::span<delivery const> ds);

    /**
     * Claims at most `max` deliveries that nobody holds and that are due by `now` (left by a
     * process that is gone, or given back by one that stopped), oldest due first, each under
     * a fresh lease token (delivery::lease). Completes with
     * `void(result<std::vector<delivery>>)` on the handler's associated executor.
     */
    template <class CompletionToken>
    auto async_claim(time_point now, std::size_t max, CompletionToken&& token);

    /// The attempt failed and the delivery waits for `d.due`, still held (queued).
    void reschedule(delivery const& d);
    /// The delivery ended: it leaves the queue (queued).
    void complete(delivery const& d, outcome);

    /// Calls `f` (from the store's thread) when deliveries may have become claimable: another
    /// process gave them back or its leases were requeued. Empty: none. The dispatcher claims
    /// at once then instead of at its next claim_interval (waking_journal).
    void on_claimable(std::function<void()> f);

    /**
     * Makes every commit that holds completions or retries wait for `barrier` first (run on a
     * thread of its own, never on the store's I/O thread). With a log's barrier
     * (postgres_log::barrier, sqlite_log::barrier), the attempt that ended a delivery is in the
     * log before the delivery leaves the queue, since the dispatcher records an attempt before
     * it completes or reschedules its delivery: when a process dies, each of its deliveries
     * has its outcome in the log or is still in the queue for another to take over. Call it
     * before the dispatcher runs. Empty: none.
     */
    void wait_for_log(std::function<void()> barrier);

    // ---- operations and tests ----

    /// Puts every expired lease back in the queue now (any process does it every
    /// poll_interval). @return how many. Blocks the caller.
    result<std::size_t> requeue_expired();
    /// Renews now the leases this process holds that have less than half left. Blocks.
    result<std::size_t> renew_leases();
    /// Waits until everything queued so far is committed; the first write that failed since
    /// the previous flush, if any.
    result<void> flush();
    /// Reads the webhooks table again now (as a notification would make it). Blocks.
    result<void> reload();

    postgres_store_stats stats() const;
    /// This process's name in the lease_owner column.
    std::string const& node() const noexcept;

private:
    struct state;
    explicit postgres_store(std::shared_ptr<state> s);
    std::shared_ptr<state> s_;
};

} // namespace herald

#include <herald/postgres/impl/postgres_store.hpp>

#endif
