#ifndef HERALD_SCHEDULER_HPP
#define HERALD_SCHEDULER_HPP

#include <herald/delivery.hpp>
#include <herald/time.hpp>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <optional>
#include <unordered_map>
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
 * Thread safety: none; the dispatcher calls it from its strand.
 */
class scheduler {
public:
    explicit scheduler(scheduler_params p = {})
        : p_(p) {
        p_.lane_concurrency = std::max<std::size_t>(p_.lane_concurrency, 1);
        p_.global_concurrency = std::max<std::size_t>(p_.global_concurrency, 1);
    }

    scheduler_params const& params() const { return p_; }

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
                continue; // re-queued by done() or push when it can run again
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

    /// An attempt taken with pop_ready finished; frees its slots.
    void done(webhook_id id) {
        --in_flight_;
        auto it = lanes_.find(id);
        if (it == lanes_.end())
            return;
        auto& l = it->second;
        --l.in_flight;
        if (l.ready.empty() && l.in_flight == 0)
            lanes_.erase(it);
        else
            enqueue_if_runnable(id, l);
    }

    /// When the earliest waiting delivery becomes due, if any waits.
    std::optional<time_point> next_due() const {
        if (timers_.empty())
            return std::nullopt;
        return timers_.front().d.due;
    }

    /// Whether some delivery is due and could start now if a global slot were free.
    bool has_ready() const { return !runnable_.empty(); }

    std::size_t pending() const { return pending_; }     ///< waiting or ready, not in flight
    std::size_t in_flight() const { return in_flight_; } ///< taken and not done
    std::size_t lanes() const { return lanes_.size(); }

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

    static bool later(timed const& a, timed const& b) {
        return a.d.due != b.d.due ? a.d.due > b.d.due : a.seq > b.seq;
    }

    void promote_due(time_point now) {
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
    std::vector<timed> timers_; // min-heap by (due, seq)
    std::unordered_map<webhook_id, lane> lanes_;
    std::deque<webhook_id> runnable_; // lanes with ready work and a free slot, in turn order
    std::size_t pending_ = 0;
    std::size_t in_flight_ = 0;
    std::uint64_t seq_ = 0;
};

} // namespace herald

#endif
