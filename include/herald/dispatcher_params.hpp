#ifndef HERALD_HPP_DISPATCHER_PARAMS
#define HERALD_HPP_DISPATCHER_PARAMS

#include <herald/engine/circuit_breaker.hpp>
#include <herald/engine/retry.hpp>
#include <herald/engine/scheduler.hpp>
#include <herald/source/channel_source.hpp>

#include <herald/address_policy.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace herald {

/** Everything a dispatcher can be told, with the defaults in place. */
struct dispatcher_params {
    channel_params intake{};       ///< the bounded publish queue
    scheduler_params scheduling{}; ///< per-webhook and global caps on requests in flight
    retry_params retry{};          ///< schedule, jitter, Retry-After bound
    health_params health{};        ///< circuit breaker and automatic disabling
    /**
     * The pending budget: deliveries waiting in memory within their webhooks' shares. While it
     * is full, the dispatcher takes no new events from its source: the intake queue fills,
     * `publish` reports queue_full and `async_publish` waits (backpressure instead of unbounded
     * memory). It also keeps a burst from being serialized far ahead of the network, which
     * keeps the working set in cache. 0: no bound (and nothing is parked). An event is always
     * taken whole, so the bound may be passed by one event's fan-out.
     *
     * Each webhook counts against it only up to its share (max_pending over the webhooks with
     * work, at least scheduling.lane_concurrency), and not at all while its circuit is open or
     * its endpoint stalls (scheduling.stall_after): the rest of its backlog is parked, so one
     * dead or slow endpoint cannot stop the intake for the others. The default keeps the
     * memory store's pending deliveries to a few megabytes.
     */
    std::size_t max_pending = 8192;
    /**
     * Parked deliveries in memory at most, counted apart for failing or stalled webhooks (what
     * they *hold*) and for webhooks that answer but are behind their share. Once failing ones
     * hold this many, a new delivery for one of them is logged as failed ("shed") instead of
     * held, and counted in dispatcher_stats::shed: the backlog of what is broken stays bounded
     * and falls on it alone. Once this many wait behind webhooks that answer, the intake stops
     * instead. A durable store sheds nothing and stops no intake for it: what a parked webhook
     * has beyond its share stays in the store only (dispatcher_stats::stored).
     * 0: no bound.
     */
    std::size_t max_parked = 65536;
    /**
     * How often a journaled store's journal is asked for deliveries nobody holds (claim):
     * what another process sharing the journal left when its lease lapsed. The first claim
     * runs when the dispatcher is built (an earlier run's deliveries). 0: only then.
     */
    duration claim_interval = std::chrono::seconds(1);
    /**
     * Which destinations webhooks may have, set once for the table and the transport: a
     * literal-IP URL is checked when a webhook is stored, and every address the transport
     * resolves when it connects. Unset: each keeps its own (memory_store_params::addresses,
     * http_transport_params::addresses), whose default lets only globally routable addresses
     * through. A webhook's allow_private adds to either.
     */
    std::optional<address_policy> addresses{};
};

/** The dispatcher's counters, read at any time from any thread. */
struct dispatcher_stats {
    std::uint64_t published = 0;     ///< events accepted by publish
    std::uint64_t unmatched = 0;     ///< events no active webhook was subscribed to
    std::uint64_t rejected = 0;      ///< events a source delivered that failed validation
    std::uint64_t queued = 0;        ///< events accepted and not yet matched
    std::uint64_t pending = 0;       ///< deliveries not finished (waiting, retrying or in flight)
    std::uint64_t in_flight = 0;     ///< attempts on the wire now
    std::uint64_t retrying = 0;      ///< deliveries waiting for a retry
    std::uint64_t delivered = 0;     ///< deliveries that got a 2xx
    std::uint64_t failed = 0;        ///< deliveries that ended without one
    std::uint64_t attempts = 0;      ///< requests sent, retries included
    std::uint64_t open_circuits = 0; ///< webhooks whose circuit breaker is open or half-open
    std::uint64_t parked = 0;        ///< deliveries waiting outside the pending budget
    std::uint64_t shed = 0;          ///< deliveries failed at once because max_parked was full
    /// Pending deliveries kept only in a durable journal (backlog_journal): a lane's backlog
    /// beyond its share of max_pending, loaded back as the lane makes room. Part of `pending`.
    std::uint64_t stored = 0;
};

/** What async_stop reports. */
struct stop_report {
    bool drained = true;                  ///< everything finished before the deadline
    std::vector<std::string> abandoned{}; ///< delivery ids logged as failed at shutdown
    /// Deliveries a durable store keeps for the next start that were never loaded from it
    /// (a lane's backlog beyond memory): not in `abandoned`, which lists what was in memory.
    std::size_t left_in_store = 0;
};

} // namespace herald

#endif
