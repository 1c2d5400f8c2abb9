#ifndef HERALD_SCHEDULER_HPP
#define HERALD_SCHEDULER_HPP

#include <herald/circuit_breaker.hpp>
#include <herald/delivery.hpp>
#include <herald/time.hpp>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

namespace herald {

struct scheduler_params {
    std::size_t lane_concurrency = 8;     ///< requests in flight per webhook
    std::size_t global_concurrency = 512; ///< requests in flight in all
};

/**
 * Decides which delivery starts next. Sans-I/O: it holds deliveries and counts, and is told
 * the time; the dispatcher does the waiting and the sending.
 *
 * Every webhook has a lane: deliveries that are due wait in their lane's FIFO, and a lane
 * never has more than `lane_concurrency` attempts in flight. Lanes with work take turns, so a
 * webhook whose endpoint hangs fills its own lane and nothing else: the others keep their
 * slots and their order. Deliveries not yet due wait in one timer heap.
 *
 * Each webhook with recent failures has a circuit_breaker: while it is open the lane is
 * parked and its deliveries wait without using attempts; when it cools down one probe goes.
 *
 * Thread safety: none; the dispatcher calls it from its strand.
 */
class scheduler {
public:
    /** How an attempt went, for the webhook's circuit breaker. */
    enum class attempt_result { delivered, failed, not_sent };

    explicit scheduler(scheduler_params p = {}, health_params h = {})
        : p_(p)
        , health_(h) {
        p_.lane_concurrency = std::max<std::size_t>(p_.lane_concurrency, 1);
        p_.global_concurrency = std::max<std::size_t>(p_.global_concurrency, 1);
    }

    scheduler_params const& params() const { return p_; }
    health_params const& health() const { return health_; }

    /// Adds a delivery; it becomes ready at `d.due`.
    void push(delivery d) {
        ++pending_;
        timers_.push_back(timed{std::move(d), ++seq_});
        std::push_heap(timers_.begin(), timers_.end(), later);
    }

    /**
     * The next delivery that may start at `now`, or nothing. The caller owns the returned
     * delivery's slot until it calls `done` with its webhook's id.
     */
    std::optional<delivery> pop_ready(time_point now) {
        promote_due(now);
        if (in_flight_ >= p_.global_concurrency)
            return std::nullopt;
        while (!runnable_.empty()) {
            auto const id = runnable_.front();
            runnable_.pop_front();
            auto it = lanes_.find(id);
            if (it == lanes_.end())
                continue;
            auto& l = it->second;
            l.queued = false;
            if (l.ready.empty() || l.in_flight >= p_.lane_concurrency)
                continue; // re-queued by done() or promote_due when it can run again
            if (auto b = breakers_.find(id); b != breakers_.end()) {
                if (!b->second.allow(now)) {
                    // open: wait for the cool-down; half-open: the probe's done() re-queues it
                    if (b->second.current() == circuit_breaker::state::open)
                        park(id, b->second.reopen_at());
                    continue;
                }
                b->second.started();
            }
            delivery d = std::move(l.ready.front());
            l.ready.pop_front();
            ++l.in_flight;
            ++in_flight_;
            --pending_;
            enqueue_if_runnable(id, l);
            return d;
        }
        return std::nullopt;
    }

    /**
     * An attempt taken with pop_ready finished at `now`: frees its slots and feeds the
     * webhook's circuit breaker.
     * @return what a failure changed: the circuit opened, or the webhook should be disabled.
     */
    circuit_breaker::failure_effect done(webhook_id id, attempt_result r = attempt_result::not_sent,
                                         time_point now = {}) {
        circuit_breaker::failure_effect fx;
        auto b = breakers_.find(id);
        if (r == attempt_result::failed)
            fx = (b != breakers_.end() ? b : breakers_.try_emplace(id, health_).first)
                     ->second.failure(now);
        else if (r == attempt_result::delivered && b != breakers_.end())
            breakers_.erase(b); // healthy again: nothing to remember
        else if (b != breakers_.end() && b->second.current() == circuit_breaker::state::half_open)
            b->second.unblock(); // the probe was never sent: let another one go
        --in_flight_;
        auto it = lanes_.find(id);
        if (it == lanes_.end())
            return fx;
        auto& l = it->second;
        --l.in_flight;
        if (l.ready.empty() && l.in_flight == 0)
            lanes_.erase(it);
        else
            enqueue_if_runnable(id, l);
        return fx;
    }

    /// When the earliest waiting delivery becomes due or a parked lane may probe, if any.
    std::optional<time_point> next_due() const {
        std::optional<time_point> t;
        if (!timers_.empty())
            t = timers_.front().d.due;
        if (!parked_.empty() && (!t || parked_.front().first < *t))
            t = parked_.front().first;
        return t;
    }

    /// Whether some delivery is due and could start now if a global slot were free.
    bool has_ready() const { return !runnable_.empty(); }

    std::size_t pending() const { return pending_; }     ///< waiting or ready, not in flight
    std::size_t in_flight() const { return in_flight_; } ///< taken and not done
    std::size_t lanes() const { return lanes_.size(); }

    /// The circuit breaker of a webhook, or null when it has no recent failures.
    circuit_breaker const* breaker(webhook_id id) const {
        auto it = breakers_.find(id);
        return it == breakers_.end() ? nullptr : &it->second;
    }

    /// Webhooks whose circuit is open or half-open now.
    std::size_t open_circuits() const {
        std::size_t n = 0;
        for (auto const& [id, b] : breakers_)
            n += b.current() != circuit_breaker::state::closed;
        return n;
    }

    /// Forgets a webhook's failures (a user re-activated it: start afresh).
    void reset_health(webhook_id id) {
        breakers_.erase(id);
        if (auto it = lanes_.find(id); it != lanes_.end())
            enqueue_if_runnable(id, it->second);
    }

    /// Removes and returns every delivery that is not in flight (at shutdown).
    std::vector<delivery> take_all() {
        std::vector<delivery> out;
        out.reserve(pending_);
        for (auto& t : timers_)
            out.push_back(std::move(t.d));
        timers_.clear();
        for (auto it = lanes_.begin(); it != lanes_.end();) {
            for (auto& d : it->second.ready)
                out.push_back(std::move(d));
            it->second.ready.clear();
            it = it->second.in_flight == 0 ? lanes_.erase(it) : std::next(it);
        }
        runnable_.clear();
        parked_.clear();
        for (auto& [id, l] : lanes_)
            l.queued = false;
        pending_ = 0;
        return out;
    }

private:
    struct timed {
        delivery d;
        std::uint64_t seq; // keeps deliveries due at the same time in arrival order
    };
    struct lane {
        std::deque<delivery> ready;
        std::size_t in_flight = 0;
        bool queued = false; // in runnable_
    };
    using parked_lane = std::pair<time_point, webhook_id>;

    static bool later(timed const& a, timed const& b) {
        return a.d.due != b.d.due ? a.d.due > b.d.due : a.seq > b.seq;
    }

    void park(webhook_id id, time_point until) {
        parked_.emplace_back(until, id);
        std::push_heap(parked_.begin(), parked_.end(), std::greater<>{});
    }

    void promote_due(time_point now) {
        while (!parked_.empty() && parked_.front().first <= now) {
            std::pop_heap(parked_.begin(), parked_.end(), std::greater<>{});
            auto const id = parked_.back().second;
            parked_.pop_back();
            if (auto it = lanes_.find(id); it != lanes_.end())
                enqueue_if_runnable(id, it->second);
        }
        while (!timers_.empty() && timers_.front().d.due <= now) {
            std::pop_heap(timers_.begin(), timers_.end(), later);
            delivery d = std::move(timers_.back().d);
            timers_.pop_back();
            auto const id = d.target();
            auto& l = lanes_[id];
            l.ready.push_back(std::move(d));
            enqueue_if_runnable(id, l);
        }
    }

    void enqueue_if_runnable(webhook_id id, lane& l) {
        if (!l.queued && !l.ready.empty() && l.in_flight < p_.lane_concurrency) {
            l.queued = true;
            runnable_.push_back(id);
        }
    }

    scheduler_params p_;
    health_params health_;
    std::unordered_map<webhook_id, circuit_breaker> breakers_; // webhooks with recent failures
    std::vector<parked_lane> parked_; // min-heap: lanes waiting for their circuit to cool down
    std::vector<timed> timers_;       // min-heap by (due, seq)
    std::unordered_map<webhook_id, lane> lanes_;
    std::deque<webhook_id> runnable_; // lanes with ready work and a free slot, in turn order
    std::size_t pending_ = 0;
    std::size_t in_flight_ = 0;
    std::uint64_t seq_ = 0;
};

} // namespace herald

#endif
