#ifndef HERALD_CIRCUIT_BREAKER_HPP
#define HERALD_CIRCUIT_BREAKER_HPP

#include <herald/time.hpp>

#include <chrono>
#include <cstdint>
#include <optional>

namespace herald {

using namespace std::chrono_literals;

/** When an endpoint counts as unhealthy, and what herald does about it. */
struct health_params {
    std::uint32_t failure_threshold = 5; ///< consecutive failed attempts that open the circuit
    duration cool_down = 30s;            ///< how long it stays open before one probe
    /// Failing without a success this long (and at least failure_threshold times): disabled.
    duration disable_after = 120h;
    bool disable_on_gone = true; ///< 410 Gone disables the webhook at once
};

/**
 * One webhook's circuit breaker. Sans-I/O: told the time, it says whether an attempt may
 * start. Closed: everything goes. After `failure_threshold` failures in a row it opens: its
 * deliveries wait (they do not burn attempts) until `cool_down` has passed; then one probe
 * goes (half-open). A success closes it, a failure opens it again.
 */
class circuit_breaker {
public:
    enum class state { closed, open, half_open };

    explicit circuit_breaker(health_params p = {})
        : p_(p) {}

    state current() const { return state_; }
    std::uint32_t consecutive_failures() const { return failures_; }
    std::optional<time_point> failing_since() const { return failing_since_; }

    /// Whether an attempt may start at `now`. When open and cooled down, lets one probe go.
    bool allow(time_point now) {
        switch (state_) {
        case state::closed:
            return true;
        case state::half_open:
            return !probe_in_flight_;
        case state::open:
            if (now < reopen_at_)
                return false;
            state_ = state::half_open;
            probe_in_flight_ = false;
            return true;
        }
        return true;
    }

    /// Tells the breaker an allowed attempt started (the probe, when half-open).
    void started() {
        if (state_ == state::half_open)
            probe_in_flight_ = true;
    }

    /// The half-open probe was taken but never sent: another may go.
    void unblock() { probe_in_flight_ = false; }

    /// When an open circuit lets a probe through.
    time_point reopen_at() const { return reopen_at_; }

    void success() {
        state_ = state::closed;
        failures_ = 0;
        probe_in_flight_ = false;
        failing_since_.reset();
    }

    /** What a failure changed. */
    struct failure_effect {
        bool opened = false;  ///< the circuit opened (or re-opened after a failed probe)
        bool disable = false; ///< failing for disable_after: the webhook should be disabled
    };

    failure_effect failure(time_point now) {
        failure_effect fx;
        if (!failing_since_)
            failing_since_ = now;
        ++failures_;
        probe_in_flight_ = false;
        if (state_ == state::half_open ||
            (state_ == state::closed && failures_ >= p_.failure_threshold)) {
            state_ = state::open;
            reopen_at_ = now + p_.cool_down;
            fx.opened = true;
        }
        // Continuous failure: the whole window, and at least as many attempts as open the
        // circuit (an idle webhook with one old failure is not "failing for days").
        fx.disable = now - *failing_since_ >= p_.disable_after && failures_ >= p_.failure_threshold;
        return fx;
    }

    /// Healthy and nothing to remember: the scheduler may forget this breaker.
    bool idle() const { return state_ == state::closed && failures_ == 0; }

private:
    health_params p_;
    state state_ = state::closed;
    std::uint32_t failures_ = 0;
    bool probe_in_flight_ = false;
    time_point reopen_at_{};
    std::optional<time_point> failing_since_;
};

} // namespace herald

#endif
