#ifndef HERALD_MANUAL_CLOCK_HPP
#define HERALD_MANUAL_CLOCK_HPP

#include <herald/time.hpp>

#include <boost/asio/wait_traits.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>

namespace herald {

/**
 * A clock that moves only when told, for tests: `basic_dispatcher<..., manual_clock>` times
 * retries, circuit cool-downs and the drain deadline on it, so a test of a five-minute retry
 * calls `advance(5min)` instead of sleeping. Its time points are herald::time_point, so
 * everything it stamps (log entries, `next_attempt_at`) reads as wall-clock time.
 *
 * One clock per process (it is static, as a clock is): a test may set it first.
 * Asio's timers on it check the time at least every millisecond (see the wait_traits below),
 * so a timer it made due fires at once, in real time.
 * Thread safety: any thread.
 */
class manual_clock {
public:
    using duration = herald::clock::duration;
    using rep = duration::rep;
    using period = duration::period;
    using time_point = herald::time_point;
    static constexpr bool is_steady = false;

    static time_point now() noexcept { return time_point(duration(ticks().load())); }
    static void set(time_point t) noexcept { ticks().store(t.time_since_epoch().count()); }
    /// Moves the clock on; never back (a negative `d` is ignored).
    template <class Rep, class Period>
    static void advance(std::chrono::duration<Rep, Period> d) noexcept {
        if (d.count() > 0)
            ticks().fetch_add(std::chrono::duration_cast<duration>(d).count());
    }

private:
    static std::atomic<rep>& ticks() noexcept {
        // Starts at a fixed time, 2025-01-01T00:00:00Z: runs are reproducible, and what it
        // stamps stays behind the real time, so that ids made from its times (which never go
        // back within a process) do not run ahead of the ids of the rest of the program.
        static std::atomic<rep> t{
            std::chrono::duration_cast<duration>(std::chrono::seconds(1'735'689'600)).count()};
        return t;
    }
};

} // namespace herald

/// Timers on the manual clock wait at most a millisecond before looking at it again.
template <>
struct boost::asio::wait_traits<herald::manual_clock> {
    static herald::manual_clock::duration
    to_wait_duration(herald::manual_clock::duration const& d) {
        return std::clamp<herald::manual_clock::duration>(d, herald::manual_clock::duration::zero(),
                                                          std::chrono::milliseconds(1));
    }
    static herald::manual_clock::duration
    to_wait_duration(herald::manual_clock::time_point const& t) {
        return to_wait_duration(t - herald::manual_clock::now());
    }
};

#endif
