#ifndef HERALD_LOG_FAILURES_HPP
#define HERALD_LOG_FAILURES_HPP

// What a log sink that writes on a thread of its own (sqlite_log) reports of the writes that
// failed: counted for metrics, and told to a person without repeating the same line.

#include <herald/time.hpp>

#include <chrono>
#include <concepts>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace herald {

/** Writes of a log that failed (the disk full, the file read-only, ...), since it was opened. */
struct log_write_stats {
    std::uint64_t failures = 0;     ///< transactions (or retention runs) that failed
    std::uint64_t entries_lost = 0; ///< attempts recorded but never written
    std::string last_error{};       ///< the newest failure's text; empty when none
};

/// A log that counts its failed writes: `log.write_stats()` -> log_write_stats (sqlite_log,
/// metered_log). The admin server's /metrics shows them.
template <class L>
concept write_counting_log = requires(L const& log) {
    { log.write_stats() } -> std::convertible_to<log_write_stats>;
};

namespace detail {

/**
 * Turns a stream of failure messages into few lines: a message unlike the previous one is
 * told at once, the same one again only counted, and the count told as "(repeated N times)"
 * once `interval` has passed since the last line (or when another message comes, or at
 * flush). A full disk fails every write with the same text: thousands of identical lines would
 * bury everything else on stderr.
 *
 * Thread safety: none (its owner's writer thread uses it).
 */
class repeat_limiter {
public:
    using steady = std::chrono::steady_clock;

    explicit repeat_limiter(duration interval = std::chrono::seconds(5))
        : interval_(interval) {}

    /// The message to tell now for `what` occurring at `now`, if any.
    std::optional<std::string> note(std::string const& what, steady::time_point now) {
        if (what == last_ && told_at_) {
            ++repeats_;
            if (now - *told_at_ < interval_)
                return std::nullopt;
            return take_repeats(now);
        }
        std::optional<std::string> out;
        if (repeats_ > 0)
            out = repeated() + "\n";
        last_ = what;
        repeats_ = 0;
        told_at_ = now;
        return out.value_or("") + what;
    }

    /// The count of repeats not told yet, if any (at shutdown, or when the failures stop).
    std::optional<std::string> flush(steady::time_point now) {
        if (repeats_ == 0)
            return std::nullopt;
        return take_repeats(now);
    }

    /// Repeats of the last message not told yet.
    std::uint64_t pending() const noexcept { return repeats_; }

private:
    std::string repeated() const {
        return last_ + " (repeated " + std::to_string(repeats_) +
               (repeats_ == 1 ? " time)" : " times)");
    }
    std::string take_repeats(steady::time_point now) {
        auto out = repeated();
        repeats_ = 0;
        told_at_ = now;
        return out;
    }

    duration interval_;
    std::string last_;
    std::uint64_t repeats_ = 0;
    std::optional<steady::time_point> told_at_;
};

} // namespace detail
} // namespace herald

#endif
