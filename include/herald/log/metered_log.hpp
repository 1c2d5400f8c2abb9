#ifndef HERALD_METERED_LOG_HPP
#define HERALD_METERED_LOG_HPP

#include <herald/concepts.hpp>
#include <herald/log.hpp>
#include <herald/log/log_failures.hpp>
#include <herald/log/memory_log.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

namespace herald {

/** Counters a metered_log keeps over every attempt it saw since it was made. */
struct log_metrics {
    /// Upper bounds, in seconds, of the attempt-duration histogram's buckets (then +Inf).
    static constexpr std::array<double, 12> bounds = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                      0.5,   1,    2.5,   5,    10,  30};
    std::array<std::uint64_t, 3> attempts{}; ///< by outcome: delivered, retrying, failed
    /// Attempts per bucket, not cumulative; the last one is above every bound.
    std::array<std::uint64_t, bounds.size() + 1> buckets{};
    double seconds = 0; ///< sum of every attempt's duration
    std::uint64_t count = 0;
};

/** What the webhooks table shows of one webhook's recent deliveries. */
struct webhook_activity {
    std::optional<log_entry> last{}; ///< its newest attempt (response excerpt dropped)
    std::uint64_t delivered = 0;     ///< deliveries that ended delivered in the window
    std::uint64_t failed = 0;        ///< deliveries that ended failed in the window
    duration window = std::chrono::hours(24);

    /// delivered / (delivered + failed), or nothing when no delivery ended in the window.
    std::optional<double> success_rate() const {
        auto const n = delivered + failed;
        return n == 0 ? std::nullopt : std::optional<double>(double(delivered) / double(n));
    }
};

/// A log that counts attempts as they pass: `log.metrics()` -> log_metrics (metered_log). The
/// admin server's /metrics shows them.
template <class L>
concept metrics_log = requires(L const& log) {
    { log.metrics() } -> std::convertible_to<log_metrics>;
};

/// A log that knows each webhook's recent activity: `log.activity(id, now)` ->
/// webhook_activity, and `log.forget(id)` when the webhook is deleted (metered_log). The admin
/// server's webhooks table shows the last status and the 24-hour success rate from it.
template <class L>
concept activity_log = requires(L& log, L const& clog, webhook_id id, time_point now) {
    { clog.activity(id, now) } -> std::convertible_to<webhook_activity>;
    log.forget(id);
};

/// A log that keeps something of each webhook to drop when the webhook is deleted:
/// `log.forget(id)` (metered_log's activity counts; every activity_log). The admin server calls
/// it after DELETE /api/webhooks/{id}; the log's entries stay.
template <class L>
concept forgetting_log = requires(L& log, webhook_id id) {
    log.forget(id);
};

/**
 * A log sink decorator: forwards every attempt to `Log` and counts it on the way, for the
 * admin server's `/metrics` and the webhooks table's last status and 24-hour success rate.
 *
 * Counting as attempts pass costs a lock and a few additions per attempt, and answers in
 * constant time whatever the size of the log; scanning the log instead would cost a query per
 * webhook per page view and would only see what a bounded log still holds. The counts start
 * when the decorator is made: after a restart a durable log still has its history, while these
 * counters begin at zero.
 *
 * The success window is kept in ten-minute buckets per webhook, so "the last 24 hours" is
 * 24 hours to 24 hours and ten minutes, and a webhook's counts cost about 2 KiB.
 *
 * Thread safety: as `Log` for record and query; metrics and activity from any thread.
 */
template <class Log = memory_log>
class metered_log {
    static_assert(log_sink<Log>, "Log must model herald::log_sink");

public:
    explicit metered_log(Log inner = Log())
        : inner_(std::move(inner))
        , s_(std::make_unique<state>()) {}

    metered_log(metered_log&&) noexcept = default;
    metered_log& operator=(metered_log&&) noexcept = default;

    /// Counts the attempt, then records it in the wrapped log; returns the `seq` that log
    /// assigned.
    std::uint64_t record(log_entry e) {
        observe(e, clock::now());
        return inner_.record(std::move(e));
    }

    log_page query(log_query const& q) const { return inner_.query(q); }

    /// Forwards to the wrapped log's flush (jsonl_log), when it has one.
    void flush() requires requires(Log& l) { l.flush(); }
    { inner_.flush(); }

    Log& inner() noexcept { return inner_; }
    Log const& inner() const noexcept { return inner_; }

    log_metrics metrics() const {
        std::lock_guard lock(s_->mutex);
        return s_->totals;
    }

    /**
     * Writes that failed in the log(s) behind it, summed: the wrapped log's, when it has
     * `write_stats()` (sqlite_log), and those of every source given to watch_writes. The
     * admin server's /metrics shows them.
     */
    log_write_stats write_stats() const {
        log_write_stats out;
        if constexpr (write_counting_log<Log>)
            add(out, inner_.write_stats());
        std::vector<std::function<log_write_stats()>> sources;
        {
            std::lock_guard lock(s_->mutex);
            sources = s_->write_sources;
        }
        for (auto const& f : sources)
            add(out, f());
        return out;
    }

    /// Counts the write failures `source` reports too (e.g. sqlite_log::observer() of a log
    /// that `Log` holds inside, where write_stats cannot see it).
    void watch_writes(std::function<log_write_stats()> source) {
        std::lock_guard lock(s_->mutex);
        s_->write_sources.push_back(std::move(source));
    }

    /// Drops what it keeps of one webhook (its last attempt and day of counts, about 2 KiB):
    /// the admin server calls it when the webhook is deleted. The totals keep its attempts.
    void forget(webhook_id id) {
        std::lock_guard lock(s_->mutex);
        s_->hooks.erase(id);
    }

    /// Webhooks it keeps counts of (each about 2 KiB).
    std::size_t webhooks_kept() const {
        std::lock_guard lock(s_->mutex);
        return s_->hooks.size();
    }

    /// The newest attempt and the last 24 hours' delivered and failed counts of one webhook.
    webhook_activity activity(webhook_id id, time_point now = clock::now()) const {
        webhook_activity a;
        auto const slot_now = slot_of(now);
        std::lock_guard lock(s_->mutex);
        auto it = s_->hooks.find(id);
        if (it == s_->hooks.end())
            return a;
        a.last = it->second.last;
        for (auto const& b : it->second.slots)
            if (b.slot + std::int64_t(window_slots) > slot_now && b.slot <= slot_now) {
                a.delivered += b.delivered;
                a.failed += b.failed;
            }
        return a;
    }

private:
    static constexpr auto slot_length = std::chrono::minutes(10);
    static constexpr std::size_t window_slots = 24 * 6 + 1; // the current, partial one too

    static std::int64_t slot_of(time_point t) {
        return std::chrono::duration_cast<std::chrono::minutes>(t.time_since_epoch()).count() /
               slot_length.count();
    }

    struct slot_counts {
        std::int64_t slot = -1;
        std::uint32_t delivered = 0;
        std::uint32_t failed = 0;
    };
    struct per_webhook {
        std::optional<log_entry> last{};
        std::array<slot_counts, window_slots> slots{};
    };
    struct state {
        mutable std::mutex mutex;
        log_metrics totals{};
        std::map<webhook_id, per_webhook> hooks{};
        std::vector<std::function<log_write_stats()>> write_sources;
    };

    static void add(log_write_stats& to, log_write_stats const& from) {
        to.failures += from.failures;
        to.entries_lost += from.entries_lost;
        if (!from.last_error.empty())
            to.last_error = from.last_error;
    }

    void observe(log_entry const& e, time_point now) {
        auto const secs = std::chrono::duration<double>(e.elapsed).count();
        std::size_t bucket = 0;
        while (bucket < log_metrics::bounds.size() && secs > log_metrics::bounds[bucket])
            ++bucket;
        std::lock_guard lock(s_->mutex);
        auto& t = s_->totals;
        ++t.attempts[static_cast<std::size_t>(e.result)];
        ++t.buckets[bucket];
        t.seconds += secs;
        ++t.count;
        auto& h = s_->hooks[e.webhook];
        if (!h.last || h.last->started_at <= e.started_at) {
            h.last = log_entry{};
            auto& l = *h.last; // the table needs these, not the bodies
            l.delivery_id = e.delivery_id;
            l.event_id = e.event_id;
            l.webhook = e.webhook;
            l.type = e.type;
            l.attempt = e.attempt;
            l.started_at = e.started_at;
            l.elapsed = e.elapsed;
            l.status = e.status;
            l.result = e.result;
            l.error = e.error;
        }
        if (e.result == outcome::retrying)
            return;
        auto const s = slot_of(now);
        auto& b = h.slots[static_cast<std::size_t>(s) % window_slots];
        if (b.slot != s)
            b = slot_counts{s, 0, 0};
        ++(e.result == outcome::delivered ? b.delivered : b.failed);
    }

    Log inner_;
    std::unique_ptr<state> s_;
};

static_assert(log_sink<metered_log<>>);
static_assert(metrics_log<metered_log<>> && activity_log<metered_log<>> &&
              write_counting_log<metered_log<>>);
static_assert(forgetting_log<metered_log<>>);

} // namespace herald

#endif
