#ifndef HERALD_RETRY_HPP
#define HERALD_RETRY_HPP

#include <herald/error.hpp>
#include <herald/time.hpp>
#include <herald/transport.hpp>
#include <herald/webhook.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace herald {

using namespace std::chrono_literals;

/** How a send result counts: delivered, worth another try, or final. */
enum class verdict { delivered, retryable, final };

/**
 * Standard Webhooks classification: 2xx delivered; connection errors, timeouts, TLS failures,
 * 408, 429 and 5xx retryable; 3xx (never followed), every other 4xx, a destination the SSRF
 * guard refuses and an unsupported scheme final.
 */
inline verdict classify(send_result const& r) {
    // A destination the SSRF guard refuses, or a scheme the transport cannot speak, will be
    // refused again: retrying only burns attempts.
    if (r.ec == error::address_refused || r.ec == error::unsupported_scheme)
        return verdict::final;
    if (r.ec || r.status == 0)
        return verdict::retryable;
    if (r.status >= 200 && r.status < 300)
        return verdict::delivered;
    if (r.status == 408 || r.status == 429 || r.status >= 500)
        return verdict::retryable;
    return verdict::final;
}

/**
 * When to try again. `schedule[0]` is the delay before the first attempt, `schedule[i]` the
 * delay after the i-th failed attempt; when the schedule is used up the delivery fails. Retry
 * delays get ±`jitter` (a fraction) so that many failed deliveries do not return at once.
 */
struct retry_params {
    std::vector<duration> schedule{0s, 5s, 5min, 30min, 2h, 5h, 10h, 10h};
    double jitter = 0.2;
    /// Retry-After on 429 and 503 is honoured up to this bound (longer asks are cut to it).
    duration max_retry_after = 1h;
};

/** Validates a schedule: non-empty, no negative delay. */
inline result<void> validate(retry_params const& p) {
    if (p.schedule.empty())
        return make_problem(error::invalid_field, "retry_schedule",
                            "must have at least one entry (the delay before the first attempt)");
    for (std::size_t i = 0; i < p.schedule.size(); ++i)
        if (p.schedule[i].count() < 0)
            return make_problem(error::invalid_field, "retry_schedule[" + std::to_string(i) + "]",
                                "is negative");
    if (!(p.jitter >= 0.0 && p.jitter < 1.0))
        return make_problem(error::invalid_field, "jitter", "must be in [0, 1)");
    if (p.max_retry_after.count() < 0)
        return make_problem(error::invalid_field, "max_retry_after", "is negative");
    return {};
}

/**
 * Parses a `Retry-After` value, delay-seconds or an HTTP-date, into a delay from `now`.
 * @return nothing when the value is neither.
 */
inline std::optional<duration> parse_retry_after(std::string_view v, time_point now) {
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t'))
        v.remove_prefix(1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t'))
        v.remove_suffix(1);
    std::uint64_t secs = 0;
    if (detail::parse_uint(v, secs))
        return std::chrono::duration_cast<duration>(std::chrono::seconds(
            static_cast<std::int64_t>(std::min<std::uint64_t>(secs, 10ull * 365 * 86400))));
    if (auto at = parse_http_date_seconds(v)) {
        // in seconds: a date in year 9999 must not overflow, just mean "a long time"
        auto const delta = *at - std::chrono::floor<std::chrono::seconds>(now);
        auto const capped =
            std::clamp(delta, std::chrono::seconds{0}, std::chrono::seconds{10ll * 365 * 86400});
        return std::chrono::duration_cast<duration>(capped);
    }
    return std::nullopt;
}

/** The decision after one attempt. */
struct retry_decision {
    verdict kind{};                   ///< delivered, retryable (next is set) or final
    std::optional<time_point> next{}; ///< when to try again
    bool used_retry_after = false;    ///< the delay came from the receiver's Retry-After
};

/**
 * The retry policy: pure logic over a clock value and a random number, so tests drive it
 * with fixed times and no sleeping.
 */
class retry_policy {
public:
    explicit retry_policy(retry_params p = {})
        : p_(std::move(p)) {}

    retry_params const& params() const { return p_; }

    /// The delays a webhook's deliveries follow: its own retry_schedule, or the params'.
    std::span<duration const> schedule(webhook const& w) const noexcept {
        return w.retry_schedule.empty() ? std::span<duration const>(p_.schedule)
                                        : std::span<duration const>(w.retry_schedule);
    }

    /// How many attempts a delivery gets in all (with the params' schedule, or a webhook's).
    std::uint32_t max_attempts() const { return static_cast<std::uint32_t>(p_.schedule.size()); }
    std::uint32_t max_attempts(webhook const& w) const {
        return static_cast<std::uint32_t>(schedule(w).size());
    }

    /// The delay before the first attempt.
    duration initial_delay() const { return first_of(p_.schedule); }
    duration initial_delay(webhook const& w) const { return first_of(schedule(w)); }

    /**
     * Decides what follows attempt number `attempt` (1-based) that ended with `r` at `now`,
     * on the params' schedule or on `w`'s.
     * @param unit_random a number in [0, 1) that picks the jitter.
     */
    retry_decision decide(send_result const& r, std::uint32_t attempt, time_point now,
                          double unit_random) const {
        return decide(r, attempt, now, unit_random, p_.schedule);
    }
    retry_decision decide(send_result const& r, std::uint32_t attempt, time_point now,
                          double unit_random, webhook const& w) const {
        return decide(r, attempt, now, unit_random, schedule(w));
    }
    retry_decision decide(send_result const& r, std::uint32_t attempt, time_point now,
                          double unit_random, std::span<duration const> schedule) const {
        auto const v = classify(r);
        if (v != verdict::retryable)
            return {v, std::nullopt};
        if (attempt >= schedule.size())
            return {verdict::final, std::nullopt};
        if ((r.status == 429 || r.status == 503) && !r.retry_after.empty())
            if (auto d = parse_retry_after(r.retry_after, now))
                return {verdict::retryable, now + std::min(*d, p_.max_retry_after), true};
        return {verdict::retryable, now + jittered(schedule[attempt], unit_random)};
    }

    /// `base` moved by up to ±jitter, uniformly by `unit_random` in [0, 1).
    duration jittered(duration base, double unit_random) const {
        double const factor = 1.0 + p_.jitter * (2.0 * unit_random - 1.0);
        return duration(static_cast<duration::rep>(std::llround(double(base.count()) * factor)));
    }

private:
    static duration first_of(std::span<duration const> s) { return s.empty() ? duration{0} : s[0]; }

    retry_params p_;
};

} // namespace herald

#endif
