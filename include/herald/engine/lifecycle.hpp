#ifndef HERALD_ENGINE_LIFECYCLE_HPP
#define HERALD_ENGINE_LIFECYCLE_HPP

namespace herald {

/**
 * Where a dispatcher is in its life, one state at a time (the dispatcher's strand owns it):
 *
 *     idle --async_run--> running --async_stop--> draining --deadline--> abandoning --> done
 *       \                                            \_____ everything finished ______/^
 *        \--async_stop (never ran): what publish accepted is logged as abandoned --> done
 *
 * - running: events are taken and delivered.
 * - draining: no new event; what is due before the drain deadline is still attempted.
 * - abandoning: past the deadline; what is pending is logged (or left to a durable journal)
 *   and attempts in flight are cancelled.
 * - done: async_run has completed; nothing runs again.
 */
enum class lifecycle { idle, running, draining, abandoning, done };

/// No new events: draining, abandoning or done.
constexpr bool is_stopping(lifecycle s) noexcept {
    return s >= lifecycle::draining;
}

/// Past the drain deadline (or done): nothing waits for a retry any more.
constexpr bool is_abandoning(lifecycle s) noexcept {
    return s >= lifecycle::abandoning;
}

} // namespace herald

#endif
