#ifndef HERALD_MEMORY_LOG_HPP
#define HERALD_MEMORY_LOG_HPP

#include <herald/concepts.hpp>
#include <herald/log.hpp>

#include <algorithm>
#include <deque>
#include <mutex>

namespace herald {

struct memory_log_params {
    std::size_t capacity = 10'000; ///< entries kept; the oldest go first
};

/**
 * The default log sink: the most recent attempts in memory.
 *
 * Thread safety: every member function may be called from any thread.
 */
class memory_log {
public:
    explicit memory_log(memory_log_params p = {})
        : p_(p) {}

    memory_log(memory_log const&) = delete;
    memory_log& operator=(memory_log const&) = delete;
    /// Moves the entries (to hand a configured log to a dispatcher).
    memory_log(memory_log&& other) {
        std::lock_guard lock(other.mutex_);
        p_ = other.p_;
        entries_ = std::move(other.entries_);
        last_seq_ = other.last_seq_;
        other.entries_.clear();
    }

    /// Stores one attempt, dropping the oldest entry when full; returns the `seq` it assigned.
    std::uint64_t record(log_entry e) {
        std::lock_guard lock(mutex_);
        auto const seq = e.seq = ++last_seq_;
        if (p_.capacity == 0)
            return seq;
        if (entries_.size() == p_.capacity)
            entries_.pop_front();
        entries_.push_back(std::move(e));
        return seq;
    }

    /// The entries matching `q`, newest first, at most `q.limit` of them.
    log_page query(log_query const& q) const {
        log_page page;
        auto const limit = std::clamp<std::size_t>(q.limit, 1, log_query::max_limit);
        std::lock_guard lock(mutex_);
        auto it = entries_.rbegin();
        if (q.before_seq) {
            // entries are in seq order: skip straight to the cursor
            auto const pos =
                std::lower_bound(entries_.begin(), entries_.end(), *q.before_seq,
                                 [](log_entry const& e, std::uint64_t s) { return e.seq < s; });
            it = std::make_reverse_iterator(pos);
        }
        for (; it != entries_.rend(); ++it) {
            if (!q.matches(*it))
                continue;
            if (page.entries.size() == limit) {
                page.next = page.entries.back().seq;
                break;
            }
            page.entries.push_back(*it);
        }
        return page;
    }

    std::size_t size() const {
        std::lock_guard lock(mutex_);
        return entries_.size();
    }

private:
    memory_log_params p_;
    mutable std::mutex mutex_;
    std::deque<log_entry> entries_;
    std::uint64_t last_seq_ = 0;
};

static_assert(log_sink<memory_log>);

} // namespace herald

#endif
