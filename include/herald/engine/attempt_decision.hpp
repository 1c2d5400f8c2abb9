#ifndef HERALD_ENGINE_ATTEMPT_DECISION_HPP
#define HERALD_ENGINE_ATTEMPT_DECISION_HPP

#include <herald/engine/circuit_breaker.hpp>
#include <herald/engine/retry.hpp>
#include <herald/error.hpp>
#include <herald/log.hpp>
#include <herald/time.hpp>
#include <herald/transport.hpp>
#include <herald/webhook.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

/**
 * What an attempt's result means, without I/O: the dispatcher sends, feeds the result and the
 * circuit's answer in, and carries out the actions that come back (in the manner of
 * Boost.Redis's `exec_fsm` and Boost.MySQL's sans-I/O connection). Every branch and every
 * sentence of the log text is here, so tests cover them without a socket, a timer or a store.
 */
namespace herald {

/// What the dispatcher does next with a delivery whose attempt came back.
enum class attempt_action {
    /// Switch the webhook off for `disable_reason()` (410 Gone, or failing for too long), then
    /// `resume` with what the table answered.
    disable,
    /// The delivery ended (`result()`: delivered or failed): log it and complete it.
    complete,
    /// Log it as retrying and reschedule it for `next()`.
    retry,
    /// Abandoned at shutdown, but the journal keeps it (a durable one): log it as retrying and
    /// reschedule it as it is; it is sent again after the next start.
    keep,
};

/// Everything the decision needs to know about one attempt that was sent.
struct attempt_facts {
    send_result const& sent;
    std::uint32_t attempts = 1; ///< attempts made so far, this one included
    retry_decision retry{};     ///< retry_policy::decide on this attempt
    /// What the failure did to the webhook's circuit (scheduler::done); ignored on success.
    circuit_breaker::failure_effect health{};
    bool abandoning = false; ///< past the drain deadline: no retry waits any more
    bool durable = false;    ///< the journal keeps what is not completed across a restart
};

/** Why the receiver's answer is not a delivery, for the log: `receiver answered HTTP 503`. */
inline std::string describe_failure(send_result const& r) {
    if (r.ec || r.status == 0)
        return r.error.empty() ? r.ec.message() : r.error;
    if (r.status >= 300 && r.status < 400)
        return "redirect " + std::to_string(r.status) + " to " +
               (r.location.empty() ? std::string("(no Location)") : r.location) +
               " not followed (herald never follows redirects)";
    return "receiver answered HTTP " + std::to_string(r.status);
}

/**
 * The decision after one attempt. `resume()` gives the first action; after `disable`,
 * `resume(answer)` gives the last. Then `result()`, `error()` and `next()` are what the log
 * entry says, and `abandoned()` whether the stop report lists the delivery.
 */
class attempt_decision {
public:
    attempt_decision(attempt_facts const& f, health_params const& h)
        : f_(f)
        , h_(h) {}

    attempt_action resume() {
        if (f_.retry.kind == verdict::delivered) {
            result_ = outcome::delivered;
            return attempt_action::complete;
        }
        error_ = describe_failure(f_.sent);
        if (f_.sent.status == 410 && h_.disable_on_gone)
            disable_reason_ = "the receiver answered 410 Gone";
        else if (f_.health.disable)
            disable_reason_ = "no successful delivery for " + format_duration(h_.disable_after);
        if (!disable_reason_.empty())
            return attempt_action::disable;
        if (f_.health.opened)
            error_ += "; circuit opened: deliveries wait " + format_duration(h_.cool_down) +
                      " for a probe";
        return settle();
    }

    /// After `disable`: the table's answer (a problem when it could not switch the webhook off).
    attempt_action resume(result<void> const& disabled) {
        if (disabled)
            error_ += "; webhook disabled: " + disable_reason_;
        else
            error_ += "; could not disable the webhook (" + disable_reason_ +
                      "): " + disabled.error().what();
        return settle();
    }

    outcome result() const noexcept { return result_; }
    std::string const& error() const noexcept { return error_; }
    std::string take_error() noexcept { return std::move(error_); }
    std::optional<time_point> next() const noexcept { return next_; }
    std::string const& disable_reason() const noexcept { return disable_reason_; }
    bool abandoned() const noexcept { return abandoned_; }

private:
    attempt_action settle() {
        if (f_.abandoning) {
            error_ += "; abandoned at shutdown";
            abandoned_ = true;
            if (f_.durable) {
                error_ += " (sent again after the next start)";
                result_ = outcome::retrying;
                return attempt_action::keep;
            }
            return attempt_action::complete;
        }
        bool const disabling = !disable_reason_.empty();
        if (f_.retry.kind == verdict::retryable && !disabling) {
            if (f_.retry.used_retry_after)
                error_ += "; Retry-After " + f_.sent.retry_after + " honoured";
            result_ = outcome::retrying;
            next_ = f_.retry.next;
            return attempt_action::retry;
        }
        // Out of attempts (a final answer says why by itself).
        if (classify(f_.sent) == verdict::retryable && !disabling)
            error_ += " (gave up after " + std::to_string(f_.attempts) +
                      (f_.attempts == 1 ? " attempt)" : " attempts)");
        return attempt_action::complete;
    }

    attempt_facts f_;
    health_params const& h_;
    outcome result_ = outcome::failed;
    std::string error_;
    std::string disable_reason_;
    std::optional<time_point> next_;
    bool abandoned_ = false;
};

/**
 * Why a delivery is not sent to the webhook as it is now (`now` is null once it was
 * deleted), or nothing when it may go: an attempt goes to the webhook as it is at that time.
 * @param retried whether an attempt was made before (then it is "not retried").
 */
inline std::optional<std::string> why_not_sent(webhook const* now, bool retried) {
    if (now && now->active)
        return std::nullopt;
    std::string why = retried ? "not retried: " : "not sent: ";
    if (!now)
        why += "the webhook was deleted";
    else if (!now->disabled_reason.empty())
        why += "the webhook was disabled (" + now->disabled_reason + ")";
    else
        why += "the webhook was deactivated";
    return why;
}

/// What the log warns about an attempt to `hook`; `by_hand` for the Test and Redeliver buttons.
inline std::string attempt_warning(webhook const& hook, bool by_hand) {
    std::string w;
    if (by_hand && !hook.active)
        w = hook.disabled_reason.empty()
                ? "sent by hand while the webhook is inactive"
                : "sent by hand while the webhook is disabled (" + hook.disabled_reason + ")";
    if (!hook.verify_tls)
        w += std::string(w.empty() ? "" : "; ") +
             "TLS certificate verification is disabled for this webhook";
    return w;
}

/// The outcome and log text of a request sent by hand: never retried.
inline std::pair<outcome, std::string> decide_by_hand(send_result const& r) {
    if (classify(r) == verdict::delivered)
        return {outcome::delivered, {}};
    return {outcome::failed, describe_failure(r) + " (sent by hand: not retried)"};
}

} // namespace herald

#endif
