#ifndef HERALD_POSTGRES_LOG_HPP
#define HERALD_POSTGRES_LOG_HPP

#include <herald/concepts.hpp>
#include <herald/error.hpp>
#include <herald/log.hpp>
#include <herald/log/log_failures.hpp>
#include <herald/time.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace herald {

struct postgres_log_params {
    /// A libpq connection string (`host=... dbname=...` or `postgresql://...`): the database
    /// postgres_store uses, or another one.
    std::string conninfo{};
    /// Entries that started longer ago than this are deleted (none when empty).
    std::optional<duration> max_age{};
    /// Only the newest this many entries of each webhook are kept (all when empty).
    std::optional<std::size_t> max_per_webhook{};
    /// How often the retention rule runs, on the log's thread (first one interval after open).
    /// Every process sharing the table runs it; one at a time does the work.
    duration retention_interval{60'000};
    /// The clock max_age is measured against; clock::now when empty (tests pass a fake one).
    /// (`seq` numbers always come from the real clock.)
    std::function<time_point()> now{};
    std::size_t max_batch = 4096; ///< entries in one commit at most
    /// How long the writer gathers entries once one is queued before it commits them all in
    /// one statement (group commit): an entry is written about commit_interval after it is
    /// recorded, while the database keeps up. A store waiting for the log (barrier) waits this
    /// long. Zero: each batch is whatever is queued when the previous commit returns.
    duration commit_interval{10};
    /// Where a write that failed is told: the first of its kind at once, the same again as a
    /// count at most every report_interval. Standard error when empty ("herald: log: ...");
    /// an empty function body to say nothing (the failures are counted in write_stats()
    /// anyway). Called on the log's thread: it must not call the log.
    std::function<void(std::string const&)> report{};
    duration report_interval{5000};
    duration connect_timeout = std::chrono::seconds(5);
    /// Every statement's timeout (the server's statement_timeout on each connection).
    duration statement_timeout = std::chrono::seconds(10);
    /// Connections for queries and the retention rule (one more commits the writes, and one
    /// holds the seq slot).
    std::size_t pool_size = 1;
    /// How long the destructor keeps trying to write what is queued while the database cannot
    /// be reached; what is left then is counted lost and reported.
    duration close_timeout = std::chrono::seconds(10);
};

/** Counters of a postgres_log, for tests and monitoring. */
struct postgres_log_stats {
    std::uint64_t written = 0;      ///< entries committed (or found already there)
    std::uint64_t commits = 0;      ///< batches committed
    std::uint64_t failures = 0;     ///< writes (retention runs, slot reconnects) that failed
    std::uint64_t entries_lost = 0; ///< entries the database refused, or left at close
    std::uint64_t reconnects = 0;   ///< connections made again after one broke
    std::uint64_t queued = 0;       ///< entries recorded and not written yet
};

/**
 * A log sink in PostgreSQL, shared by every herald process that opens the same database: each
 * process writes its attempts to `herald_log`, and a query from any of them sees them all
 * (filtered like memory_log and sqlite_log, newest first, paged by `seq`). Request bodies are
 * stored once per event (`herald_log_bodies`). See docs/deployment.md, "The shared log".
 *
 * `record` never blocks and never touches the database: it numbers the entry and queues it.
 * A writer on the log's own thread commits what is queued in batches, one statement each
 * (`INSERT ... SELECT FROM unnest(...) ON CONFLICT (seq) DO NOTHING`, so that a batch whose
 * commit was not confirmed can be written again). While the database cannot be reached, the
 * writer keeps the entries and tries again with backoff (100 ms doubling to 5 s), counting and
 * reporting the failures: an entry is lost only if the database refuses it for what it holds
 * (then alone: the others of its batch are written), or if it is still queued when the log
 * closes and the database stays away for close_timeout.
 *
 * `seq` is unique across processes without asking the database for each entry, and below
 * 2^53 (JavaScript's Number.MAX_SAFE_INTEGER: the admin page reads it exactly): a 53-bit
 * number `(ms since 2025-01-01 UTC) << 12 | slot << 7 | counter`. 41 bits of milliseconds
 * last until 2094. `slot` (5 bits) is unique among the processes that have the log open on
 * the database: the log takes it at open with a session-level advisory lock
 * (`pg_try_advisory_lock(log_slot_lock, slot)`, the first free of 0 to 31) on a connection of
 * its own, held until it closes; with all 32 taken, open fails. `counter` (7 bits) numbers the
 * entries of one millisecond: the 129th borrows the next millisecond (under a burst the seqs
 * run ahead of the clock, which catches up). Within a process seq strictly increases (also
 * when the clock steps back); at open it starts past the newest `seq` in the table. When the
 * slot's connection breaks, the lock is gone with it: the log connects again at once and takes
 * the same slot if it is free, else another, and goes on from the next millisecond. (Entries
 * recorded between the break and that are numbered with the old slot: should another process
 * take it meanwhile, the two could meet in a millisecond, and the later row would not be
 * written.) Across processes, seq order is start order within the clocks' skew. An entry
 * appears once its process has written it: a page read meanwhile may have passed its place
 * (paging never repeats an entry, but may miss one that another process is still writing).
 *
 * `query` runs on a pool connection on the log's thread; the caller waits for it.
 *
 * Thread safety: every member function may be called from any thread but the log's own
 * (where `report` is called).
 */
class postgres_log {
public:
    /**
     * Connects, brings the schema up to date (or refuses a newer one), takes a seq slot.
     * @return the log, or a problem (error::storage_failed, field "conninfo") naming the
     * database without its password; also when the 32 slots are all taken (32 processes have
     * the log open on the database).
     */
    static result<postgres_log> open(postgres_log_params p);

    postgres_log(postgres_log&&) noexcept;
    postgres_log& operator=(postgres_log&&) noexcept;
    /// Writes everything recorded (waiting at most close_timeout for the database when it
    /// cannot be reached), then disconnects.
    ~postgres_log();

    /// Queues one attempt and returns the `seq` it assigned (the row has it once written).
    std::uint64_t record(log_entry e);

    /// The entries matching `q`, newest first, at most `q.limit` of them (1 to 1000). None
    /// when the database cannot be reached (the failure is counted in write_stats()).
    log_page query(log_query const& q) const;

    /**
     * A function that blocks until every entry recorded before it was called is written (or
     * lost): what sqlite_store::wait_for_log takes. It holds the log weakly: once the log is
     * gone it returns at once.
     */
    std::function<void()> barrier() const;

    /// What write_stats() answers, as a function that holds the log weakly (zeros once it is
    /// gone): for metered_log::watch_writes.
    std::function<log_write_stats()> observer() const;

    /// Writes that failed: how many, the entries they lost, the last reason.
    log_write_stats write_stats() const;

    /// Blocks until every entry recorded so far is written (or lost). While the database
    /// cannot be reached, that is until it comes back.
    void flush();

    /// Runs the retention rule now and waits for it. @return the entries it deleted (0 when
    /// another process was applying it at that moment, or it failed).
    std::size_t apply_retention();

    /// Entries in the table (every process's).
    std::size_t size() const;

    postgres_log_stats stats() const;
    /// The slot in the `seq` numbers record() gives now (0 to 31): another one after the
    /// slot's connection broke and another process took the slot meanwhile.
    unsigned slot() const noexcept;

private:
    struct state;
    explicit postgres_log(std::shared_ptr<state> s);
    // Shared only with barrier() and observer(), which hold it weakly.
    std::shared_ptr<state> s_;
};

} // namespace herald

#include <herald/postgres/impl/postgres_log.hpp>

#endif
