#ifndef HERALD_SCHEDULER_HPP
#define HERALD_SCHEDULER_HPP

#include <herald/delivery.hpp>
#include <herald/engine/circuit_breaker.hpp>
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
    /**
     * A lane whose attempts have filled its `lane_concurrency` for this long without any of
     * them finishing counts as stalled (an endpoint that accepts and never answers): its
     * waiting deliveries leave the pending budget, as those of a lane whose circuit is open
     * do. Keep it at or above the receivers' normal response time (the default is
     * http_transport's default request timeout): a receiver that pauses this long is treated
     * as dead until it answers.
     */
    duration stall_after = std::chrono::seconds(10);
};

/** Why a delivery pushed to a lane now would be parked outside the pending budget. */
enum class park_reason {
    none,       ///< within its lane's share of the budget
    circuit,    ///< held: the lane's circuit breaker is open or half-open
    stalled,    ///< held: its attempts fill its slots and none has finished for `stall_after`
    draining,   ///< behind: the lane works again, but what it held while failing still waits
    over_share, ///< behind: the lane works and already holds its share of the budget
};

/// Whether `r` is one of the reasons a lane's deliveries are held (the lane is impaired).
constexpr bool is_held(park_reason r) {
    return r == park_reason::circuit || r == park_reason::stalled;
}

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
 * The pending budget (`budget`, dispatcher_params::max_pending) bounds the deliveries that
 * wait in memory, and the dispatcher stops taking events while it is full. So that a slow lane
 * cannot exhaust it for the others, a lane counts against it only up to its share (the budget
 * divided among the lanes that hold work, at least `lane_concurrency`): what a working lane
 * has beyond that waits *behind* (`behind()`, which the dispatcher bounds by stopping the
 * intake). A lane whose circuit is open or that is stalled counts against neither: all it has
 * is *held* (`held()`, which the dispatcher bounds by shedding that lane's new deliveries).
 * Once it works again, what it is given waits behind until what it held has drained. Both are
 * *parked* (docs/delivery.md).
 *
 * Thread safety: none; the dispatcher calls it from its strand.
 */
class scheduler {
public:
    /** How an attempt went, for the webhook's circuit breaker. */
    enum class attempt_result { delivered, failed, not_sent };

    /// @param budget deliveries waiting in memory the lanes share; 0: no bound, nothing parks.
    explicit scheduler(scheduler_params p = {}, health_params h = {}, std::size_t budget = 0)
        : p_(p)
        , health_(h)
        , budget_(budget) {
        p_.lane_concurrency = std::max<std::size_t>(p_.lane_concurrency, 1);
        p_.global_concurrency = std::max<std::size_t>(p_.global_concurrency, 1);
    }

    scheduler_params const& params() const { return p_; }
    health_params const& health() const { return health_; }

    /**
     * Adds a delivery; it becomes ready at `d.due`. It counts against the budget, or is parked
     * when park_reason(its webhook, now) says so.
     */
    void push(delivery d, time_point now = {}) {
        auto const id = d.target();
        auto& l = lanes_[id];
        ++pending_;
        ++l.waiting;
        auto const why = refresh(id, l, now);
        if (why == park_reason::none) {
            ++l.in_budget;
            ++budgeted_;
        } else if (is_held(why)) {
            ++l.held;
            ++held_;
        } else {
            ++l.behind;
            ++behind_;
        }
        timers_.push_back(timed{std::move(d), ++seq_});
        std::push_heap(timers_.begin(), timers_.end(), later);
    }

    /// Whether a delivery for `id` pushed at `now` would be parked, and why.
    park_reason parks(webhook_id id, time_point now) const {
        static lane const empty{};
        auto it = lanes_.find(id);
        return reason(id, it == lanes_.end() ? empty : it->second, now, it == lanes_.end() ? 1 : 0);
    }

    /// A lane's share of the budget now: the budget over the lanes with work, at least its
    /// concurrency. `extra` counts lanes about to get work.
    std::size_t share(std::size_t extra = 0) const {
        auto const n = std::max<std::size_t>(lanes_.size() + extra, 1);
        return std::max(budget_ / n, p_.lane_concurrency);
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
            if (l.in_flight++ == 0)
                l.progress = now; // a stall is timed from the first attempt of a busy spell
            if (l.in_flight >= p_.lane_concurrency) {
                l.progress = now; // and from the moment its slots are all taken
                if (!l.at_cap) {
                    l.at_cap = true;
                    if (at_cap_.size() > 2 * lanes_.size() + 16)
                        compact_at_cap(); // lanes erased since, or below their cap again
                    at_cap_.push_back(id);
                }
            }
            ++in_flight_;
            leave(l);
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
        if (r == attempt_result::failed) {
            if (b == breakers_.end())
                b = breakers_.try_emplace(id, health_).first;
            bool const was_open = is_open(b->second);
            fx = b->second.failure(now);
            open_ += is_open(b->second) && !was_open; // counted as it changes, never scanned
        } else if (r == attempt_result::delivered && b != breakers_.end()) {
            forget_breaker(b); // healthy again: nothing to remember
        } else if (b != breakers_.end() && b->second.current() == circuit_breaker::state::half_open)
            b->second.unblock(); // the probe was never sent: let another one go
        --in_flight_;
        auto it = lanes_.find(id);
        if (it == lanes_.end())
            return fx;
        auto& l = it->second;
        --l.in_flight;
        l.progress = now;
        if (l.in_flight < p_.lane_concurrency)
            l.at_cap = false; // its entry in at_cap_ goes at the next look
        refresh(id, l, now);
        if (l.waiting == 0 && l.in_flight == 0)
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
        if (!cooling_.empty() && (!t || cooling_.front().first < *t))
            t = cooling_.front().first;
        return t;
    }

    /**
     * Marks the lanes that have stalled by `now` (their waiting deliveries leave the budget),
     * without waiting for their next push. Cheap: only lanes with every slot taken are looked
     * at. @return when the next of those would stall, if one has deliveries waiting.
     */
    std::optional<time_point> refresh_stalls(time_point now) {
        std::optional<time_point> next;
        std::erase_if(at_cap_, [&](webhook_id id) {
            auto it = lanes_.find(id);
            if (it == lanes_.end() || !it->second.at_cap)
                return true;
            auto& l = it->second;
            if ((l.in_budget | l.behind) != 0 && refresh(id, l, now) != park_reason::stalled) {
                auto const at = l.progress + p_.stall_after;
                next = next ? std::min(*next, at) : at;
            }
            return false;
        });
        return next;
    }

    /// Whether some delivery is due and could start now if a global slot were free.
    bool has_ready() const { return !runnable_.empty(); }

    std::size_t pending() const { return pending_; }       ///< waiting or ready, not in flight
    std::size_t budgeted() const { return budgeted_; }     ///< pending within the lanes' shares
    std::size_t parked() const { return behind_ + held_; } ///< pending outside the budget
    /// Parked for lanes whose circuit is open, that stalled, or that still drain that backlog.
    std::size_t held() const { return held_; }
    /// Parked for working lanes beyond their share.
    std::size_t behind() const { return behind_; }
    std::size_t in_flight() const { return in_flight_; } ///< taken and not done
    std::size_t lanes() const { return lanes_.size(); }  ///< webhooks with work
    std::size_t budget() const { return budget_; }

    /// Deliveries of a webhook waiting (not in flight), and how many of them are parked.
    std::pair<std::size_t, std::size_t> waiting(webhook_id id) const {
        auto it = lanes_.find(id);
        return it == lanes_.end()
                   ? std::pair<std::size_t, std::size_t>{}
                   : std::pair{it->second.waiting, it->second.behind + it->second.held};
    }

    /// The circuit breaker of a webhook, or null when it has no recent failures.
    circuit_breaker const* breaker(webhook_id id) const {
        auto it = breakers_.find(id);
        return it == breakers_.end() ? nullptr : &it->second;
    }

    /// Webhooks whose circuit is open or half-open now (kept as breakers change: O(1)).
    std::size_t open_circuits() const noexcept { return open_; }

    /// Forgets a webhook's failures (a user re-activated it: start afresh).
    void reset_health(webhook_id id, time_point now = {}) {
        if (auto b = breakers_.find(id); b != breakers_.end())
            forget_breaker(b);
        if (auto it = lanes_.find(id); it != lanes_.end()) {
            refresh(id, it->second, now);
            enqueue_if_runnable(id, it->second);
        }
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
        cooling_.clear();
        at_cap_.clear();
        for (auto& [id, l] : lanes_) {
            l.queued = l.at_cap = false;
            l.waiting = l.in_budget = l.behind = l.held = 0;
        }
        pending_ = budgeted_ = behind_ = held_ = 0;
        return out;
    }

    /**
     * Removes and returns the waiting deliveries that cannot start before `deadline` (at
     * shutdown, so that what is abandoned is logged while the drain runs, not all at its end):
     * those due after it, and all those of a webhook whose circuit stays open past it or that
     * has stalled. The rest may still go before the deadline.
     */
    std::vector<delivery> take_unstartable(time_point now, time_point deadline) {
        std::vector<delivery> out;
        std::unordered_map<webhook_id, bool> hopeless;
        auto lost = [&](webhook_id id, lane const& l) {
            auto [it, fresh] = hopeless.try_emplace(id, false);
            if (fresh) {
                auto b = breakers_.find(id);
                it->second =
                    (b != breakers_.end() && b->second.current() == circuit_breaker::state::open &&
                     b->second.reopen_at() > deadline) ||
                    (l.in_flight >= p_.lane_concurrency && now - l.progress >= p_.stall_after);
            }
            return it->second;
        };
        auto keep = timers_.begin();
        for (auto it = timers_.begin(); it != timers_.end(); ++it) {
            auto const id = it->d.target();
            auto& l = lanes_[id];
            if (it->d.due > deadline || lost(id, l)) {
                leave(l);
                out.push_back(std::move(it->d));
            } else if (keep != it) {
                *keep++ = std::move(*it);
            } else {
                ++keep;
            }
        }
        timers_.erase(keep, timers_.end());
        std::make_heap(timers_.begin(), timers_.end(), later);
        for (auto it = lanes_.begin(); it != lanes_.end();) {
            auto& l = it->second;
            if (!l.ready.empty() && lost(it->first, l)) {
                for (auto& d : l.ready) {
                    leave(l);
                    out.push_back(std::move(d));
                }
                l.ready.clear();
            }
            it = l.waiting == 0 && l.in_flight == 0 ? lanes_.erase(it) : std::next(it);
        }
        return out;
    }

private:
    struct timed {
        delivery d{};
        std::uint64_t seq{}; // keeps deliveries due at the same time in arrival order
    };
    struct lane {
        std::deque<delivery> ready{};
        std::size_t in_flight = 0;
        std::size_t waiting = 0;   // pushed and not yet taken: in the timer heap or ready
        std::size_t in_budget = 0; // of those, counted against the budget,
        std::size_t behind = 0;    // parked beyond its share while it worked,
        std::size_t held = 0;      // and parked while it was impaired (the three add up)
        time_point progress{};     // an attempt last finished, or started after an idle spell
        bool at_cap = false;       // listed in at_cap_
        bool queued = false;       // in runnable_
    };
    using cooling_lane = std::pair<time_point, webhook_id>;

    park_reason reason(webhook_id id, lane const& l, time_point now, std::size_t extra = 0) const {
        if (budget_ == 0)
            return park_reason::none;
        if (auto b = breakers_.find(id);
            b != breakers_.end() && b->second.current() != circuit_breaker::state::closed)
            return park_reason::circuit;
        if (l.in_flight >= p_.lane_concurrency && now - l.progress >= p_.stall_after)
            return park_reason::stalled;
        if (l.held > 0)
            return park_reason::draining; // they are sent first anyway: the new ones wait too
        if (l.in_budget >= share(extra))
            return park_reason::over_share;
        return park_reason::none;
    }

    /**
     * Returns where a delivery pushed to the lane now goes. A lane found impaired gives up its
     * place in the budget and behind it: all it has is held. One that recovers keeps what is
     * held until that has drained (it is sent first anyway).
     */
    park_reason refresh(webhook_id id, lane& l, time_point now) {
        auto const why = reason(id, l, now);
        if ((why == park_reason::circuit || why == park_reason::stalled) &&
            (l.in_budget | l.behind) != 0) {
            budgeted_ -= l.in_budget;
            behind_ -= l.behind;
            held_ += l.in_budget + l.behind;
            l.held += l.in_budget + l.behind;
            l.in_budget = l.behind = 0;
        }
        return why;
    }

    // Rebuilt from the lanes: drops those erased since, below their cap again, or listed twice
    // (a lane that left its cap and reached it again before refresh_stalls looked).
    void compact_at_cap() {
        at_cap_.clear();
        for (auto const& [id, l] : lanes_)
            if (l.at_cap)
                at_cap_.push_back(id);
    }

    // One of the lane's waiting deliveries was taken: the parked go first, so that the lane's
    // place in the budget is the last thing it gives up.
    void leave(lane& l) {
        --pending_;
        --l.waiting;
        if (l.held > 0) {
            --l.held;
            --held_;
        } else if (l.behind > 0) {
            --l.behind;
            --behind_;
        } else {
            --l.in_budget;
            --budgeted_;
        }
    }

    static bool later(timed const& a, timed const& b) {
        return a.d.due != b.d.due ? a.d.due > b.d.due : a.seq > b.seq;
    }

    void park(webhook_id id, time_point until) {
        cooling_.emplace_back(until, id);
        std::push_heap(cooling_.begin(), cooling_.end(), std::greater<>{});
    }

    void promote_due(time_point now) {
        while (!cooling_.empty() && cooling_.front().first <= now) {
            std::pop_heap(cooling_.begin(), cooling_.end(), std::greater<>{});
            auto const id = cooling_.back().second;
            cooling_.pop_back();
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
    static bool is_open(circuit_breaker const& b) {
        return b.current() != circuit_breaker::state::closed;
    }
    void forget_breaker(std::unordered_map<webhook_id, circuit_breaker>::iterator b) {
        open_ -= is_open(b->second);
        breakers_.erase(b);
    }

    std::unordered_map<webhook_id, circuit_breaker> breakers_; // webhooks with recent failures
    std::size_t open_ = 0; // breakers_ not closed: open, or half-open (see open_circuits)
    std::vector<cooling_lane> cooling_; // min-heap: lanes waiting for their circuit to cool down
    std::vector<timed> timers_;         // min-heap by (due, seq)
    std::unordered_map<webhook_id, lane> lanes_;
    std::deque<webhook_id> runnable_; // lanes with ready work and a free slot, in turn order
    std::vector<webhook_id> at_cap_;  // lanes that had every slot taken (checked lazily)
    std::size_t budget_ = 0;
    std::size_t pending_ = 0;
    std::size_t budgeted_ = 0;
    std::size_t behind_ = 0;
    std::size_t held_ = 0;
    std::size_t in_flight_ = 0;
    std::uint64_t seq_ = 0;
};

} // namespace herald

#endif
