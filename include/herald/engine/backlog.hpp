#ifndef HERALD_ENGINE_BACKLOG_HPP
#define HERALD_ENGINE_BACKLOG_HPP

#include <herald/delivery.hpp>
#include <herald/engine/scheduler.hpp>
#include <herald/error.hpp>
#include <herald/time.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <unordered_map>
#include <vector>

namespace herald::detail {

/**
 * A journal's backlog beyond memory (docs/durability.md, "A backlog larger than memory"),
 * without I/O: which deliveries stay in the journal only, and which to load back, when.
 *
 * What a lane would hold beyond its share of the budget while it is parked waits in the
 * journal only, and is loaded back, in journal order, as the lane makes room. Every event
 * enqueued gets the next seq (`next_seq`, any thread); the strand notes each seq as its commit
 * comes back (`arrived`: all seqs up to it have come back), and loads only what has come back,
 * so that a delivery is in memory once: pushed when it came back, or loaded, never both.
 * Everything but next_seq runs on the dispatcher's strand.
 */
class journal_backlog {
public:
    /// One load to start: the lane's journaled deliveries with after < seq <= upto, at most max.
    struct load {
        webhook_id lane = 0;
        std::uint64_t after = 0;
        std::uint64_t upto = 0;
        std::size_t max = 0;
    };

    /// The journal held seqs up to `seq` when it was opened; new events are numbered after it.
    void open(std::uint64_t seq) {
        arrived_ = seq;
        next_seq_.store(seq + 1);
    }

    /// The seq of a new event. Thread safety: any thread.
    std::uint64_t next_seq() { return next_seq_.fetch_add(1); }

    /// The commit of the event numbered `seq` came back (or never reached the journal).
    void arrived(std::uint64_t seq) {
        if (seq <= arrived_)
            return;
        if (seq != arrived_ + 1) {
            early_.push_back(seq);
            std::push_heap(early_.begin(), early_.end(), std::greater<>());
            return;
        }
        arrived_ = seq;
        while (!early_.empty() && early_.front() <= arrived_ + 1) {
            arrived_ = std::max(arrived_, early_.front());
            std::pop_heap(early_.begin(), early_.end(), std::greater<>());
            early_.pop_back();
        }
    }

    /// Whether `d` stays in the journal only (counted as stored), rather than in memory.
    bool keep(delivery const& d, scheduler const& sched, time_point now) {
        auto const id = d.target();
        auto it = lanes_.find(id);
        if (it == lanes_.end()) {
            // A lane starts keeping its backlog in the journal once it is parked and already
            // holds its share of the budget in memory.
            if (d.seq == 0 || sched.parks(id, now) == park_reason::none ||
                sched.waiting(id).first < sched.share())
                return false;
            lane s;
            // Past every seq of the lane in memory, so that what the journal gives back from
            // `from` on was never pushed. One that comes back late, below it, is pushed.
            auto const top = top_seq_[id];
            s.from = std::max(top + 1, d.seq);
            s.cursor = s.from - 1;
            it = lanes_.emplace(id, s).first;
        }
        auto& s = it->second;
        if (d.seq < s.from)
            return false;
        ++s.stored;
        ++stored_;
        return true;
    }

    /// `d` goes to memory (the scheduler).
    void pushed(delivery const& d) {
        auto& top = top_seq_[d.target()];
        top = std::max(top, d.seq);
    }

    /**
     * The loads to start now (appended to `out`, each counted as loading until `loaded`), and
     * when to look again for a lane whose last load failed.
     * @param stopping a stopping dispatcher loads nothing for a lane that cannot send anyway.
     */
    std::optional<time_point> plan(time_point now, scheduler const& sched, bool stopping,
                                   std::vector<load>& out) {
        std::optional<time_point> retry;
        auto const share = sched.share();
        for (auto it = lanes_.begin(); it != lanes_.end();) {
            auto const id = it->first;
            auto& st = it->second;
            if (st.stored == 0 && !st.loading) {
                it = lanes_.erase(it); // all in memory again: the lane is as any other
                continue;
            }
            ++it;
            if (st.loading || st.stored == 0 || st.tried_upto == arrived_)
                continue;
            if (now < st.retry_at) {
                retry = retry ? std::min(*retry, st.retry_at) : st.retry_at;
                continue;
            }
            auto const waiting = sched.waiting(id).first;
            if (waiting * 2 > share)
                continue; // loaded when half of its share has gone
            if (stopping && is_held(sched.parks(id, now)))
                continue; // it cannot go before the deadline anyway
            st.loading = true;
            ++loads_;
            out.push_back(
                load{id, st.cursor, arrived_, std::min<std::size_t>(share - waiting, 1024)});
        }
        return retry;
    }

    /**
     * A load came back: its deliveries (`r`'s value) are to be pushed, unless the lane is no
     * longer kept (the dispatcher is past its drain deadline: they stay in the journal). A
     * failed load is tried again a second later.
     * @return whether to push what was loaded.
     */
    bool loaded(load const& l, result<std::vector<delivery>> const& r, time_point now) {
        --loads_;
        auto it = lanes_.find(l.lane);
        if (it == lanes_.end())
            return false;
        auto& s = it->second;
        s.loading = false;
        if (!r) {
            s.retry_at = now + std::chrono::seconds(1);
            return false;
        }
        auto const n = std::min(r->size(), s.stored);
        s.stored -= n;
        stored_ -= n;
        for (auto const& d : *r)
            s.cursor = std::max(s.cursor, d.seq);
        if (r->size() < l.max)
            s.tried_upto = l.upto; // the rest has not come back yet: look again once more has
        return true;
    }

    /// At the drain deadline: what only the journal holds stays there. @return how many.
    std::size_t leave() {
        auto const n = stored_;
        stored_ = 0;
        lanes_.clear();
        return n;
    }

    std::size_t stored() const noexcept { return stored_; } ///< in the journal only
    std::size_t loading() const noexcept { return loads_; } ///< loads not come back

private:
    struct lane {
        std::uint64_t from = 0;       // its deliveries with seq >= from go to the journal only
        std::uint64_t cursor = 0;     // loaded back up to this seq
        std::size_t stored = 0;       // in the journal only now
        std::uint64_t tried_upto = 0; // arrived_ when a load last came back short
        time_point retry_at{};        // after a load failed
        bool loading = false;
    };
    std::unordered_map<webhook_id, lane> lanes_;
    std::unordered_map<webhook_id, std::uint64_t> top_seq_; // highest seq put in memory
    std::atomic<std::uint64_t> next_seq_{1};
    std::uint64_t arrived_ = 0;
    std::vector<std::uint64_t> early_; // a min-heap of seqs come back above arrived_ + 1
    std::size_t loads_ = 0;
    std::size_t stored_ = 0;
};

} // namespace herald::detail

#endif
