#ifndef HERALD_IMPL_DISPATCHER_LOOPS_HPP
#define HERALD_IMPL_DISPATCHER_LOOPS_HPP

// basic_dispatcher's loops, all on its strand: the intake takes events from the source, the
// pump starts what is due, each flight runs attempts one after another, and stop drains. What
// an attempt's result means is decided in engine/attempt_decision.hpp; what is kept in the
// journal only, in engine/backlog.hpp.

#include <herald/engine/attempt_decision.hpp>
#include <herald/engine/request.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <exception>

namespace herald {

namespace detail {
inline double unit_random() {
    return double(random_u64() >> 11) * 0x1.0p-53;
}
} // namespace detail

template <class Store, class Source, class Serializer, class Transport, class Log, class Clock>
boost::asio::awaitable<void>
basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::run() {
    if (state_ != lifecycle::idle)
        throw boost::system::system_error(make_error_code(error::stopped),
                                          "async_run: the dispatcher is already running or done");
    state_ = lifecycle::running;
    using namespace boost::asio::experimental::awaitable_operators;
    co_await (intake_loop() && pump_loop());
    // Pooled connections keep timers armed; closing them lets the io_context's run() return.
    if constexpr (requires { transport_.close_idle(); })
        transport_.close_idle();
    state_ = lifecycle::done;
    stopped_timer_.cancel();
}

template <class Store, class Source, class Serializer, class Transport, class Log, class Clock>
boost::asio::awaitable<stop_report>
basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::stop(duration drain) {
    bool const never_ran = state_ == lifecycle::idle;
    if (state_ == lifecycle::idle || state_ == lifecycle::running) {
        state_ = never_ran ? lifecycle::done : lifecycle::draining;
        intake_closed_.store(true);
        deadline_ = Clock::now() + drain;
        source_.close();
        wake_pump();
        wake_intake();
    }
    if (never_ran) {
        // Never ran: events accepted by publish were promised delivery. Match them, so each
        // delivery they owe ends in the log (as abandoned) and in the report.
        std::vector<object_event> events;
        auto const now = Clock::now();
        while (co_await source_.async_receive(events)) {
            for (auto& e : events)
                accept(e, now);
            events.clear();
        }
        abandon_pending(now);
        co_return report_;
    }
    // The timer is never re-armed: run() cancels it once, waking every waiting stop.
    while (state_ != lifecycle::done) {
        auto [ec] =
            co_await stopped_timer_.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
        (void)ec;
    }
    co_return report_;
}

template <class Store, class Source, class Serializer, class Transport, class Log, class Clock>
boost::asio::awaitable<void>
basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::intake_loop() {
    std::vector<object_event> events;
    std::size_t next = 0; // events before it are accepted
    bool more = true;
    for (;;) {
        if (next == events.size()) {
            events.clear();
            next = 0;
            if (!more)
                break;
            more = co_await source_.async_receive(events);
            continue;
        }
        if (!has_room())
            sched_.refresh_stalls(Clock::now()); // a stalled lane gives its room back
        while (!has_room()) {
            wake_pump(); // it times the next stall, which may make room
            co_await intake_wait_.sleep_until(time_point::max());
        }
        auto const now = Clock::now();
        while (next < events.size() && has_room())
            accept(events[next++], now);
        wake_pump();
    }
    intake_done_ = true;
    wake_pump();
}

template <class Store, class Source, class Serializer, class Transport, class Log, class Clock>
boost::asio::awaitable<void>
basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::pump_loop() {
    for (;;) {
        auto const now = Clock::now();
        bool const draining = state_ == lifecycle::draining;
        if (draining && now >= deadline_)
            abandon_pending(now);
        else if (draining && now >= next_cull_)
            abandon_unstartable(now); // logged now, not all at the deadline: it keeps the bound
        while (auto d = sched_.pop_ready(now))
            start_flight(std::move(*d));
        std::optional<time_point> load_at;
        if constexpr (keeps_backlog)
            load_at = load_stored(now);
        std::optional<time_point> claim_at;
        if constexpr (journaled)
            claim_at = claim_more(now);
        // A full budget may be held by lanes that stall only as time passes: look at them
        // while the intake waits, and wake when the next would stall.
        std::optional<time_point> stall_at;
        if (intake_wait_.waiting())
            stall_at = sched_.refresh_stalls(now);
        n_.parked.store(sched_.parked(), std::memory_order_relaxed);
        wake_intake();
        if (is_stopping(state_) && intake_done_) {
            if (sched_.pending() == 0 && flights_.active() == 0 && !committing() &&
                backlog_.loading() == 0 && backlog_.stored() == 0 && !claiming_)
                co_return;
            // Nothing in flight, nothing due before the deadline and nothing to load from the
            // store: waiting is pointless.
            auto const next = sched_.next_due();
            if (state_ == lifecycle::draining && sched_.in_flight() == 0 && !sched_.has_ready() &&
                (!next || *next > deadline_) && !committing() && backlog_.loading() == 0 &&
                !claiming_) {
                abandon_pending(now);
                continue;
            }
        }
        auto wake_at = sched_.next_due().value_or(time_point::max());
        if (stall_at && intake_wait_.waiting())
            wake_at = std::min(wake_at, *stall_at);
        if (load_at)
            wake_at = std::min(wake_at, *load_at);
        if (claim_at)
            wake_at = std::min(wake_at, *claim_at);
        if (state_ == lifecycle::draining)
            wake_at = std::min({wake_at, deadline_, std::max(next_cull_, now)});
        co_await pump_.sleep_until(wake_at);
    }
}

template <class Store, class Source, class Serializer, class Transport, class Log, class Clock>
void basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::count_start(
    delivery const& d) {
    if (d.attempts > 0)
        n_.retrying.fetch_sub(1, std::memory_order_relaxed);
    n_.in_flight.fetch_add(1, std::memory_order_relaxed);
}

template <class Store, class Source, class Serializer, class Transport, class Log, class Clock>
void basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::start_flight(delivery d) {
    count_start(d);
    auto const slot = flights_.acquire();
    boost::asio::co_spawn(strand_, flight(std::move(d)),
                          boost::asio::bind_cancellation_slot(
                              flights_.signal(slot).slot(),
                              [this, slot](std::exception_ptr) { release_flight(slot); }));
}

template <class Store, class Source, class Serializer, class Transport, class Log, class Clock>
void basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::release_flight(
    std::size_t slot) {
    // Asio may still touch the slot until the completion handler returns: free it afterwards.
    // The pump waits for every flight to end, so `this` outlives the posted release.
    boost::asio::post(strand_, [this, slot] {
        flights_.release(slot);
        wake_pump();
    });
}

template <class Store, class Source, class Serializer, class Transport, class Log, class Clock>
boost::asio::awaitable<void>
basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::flight(delivery d) {
    // One flight runs attempts one after another: when one ends, its slot goes straight to
    // the next ready delivery (the pump would pick the same one), which saves waking the pump
    // and spawning a coroutine per request. Stopping is left to the pump, and so is anything
    // an attempt that was not a plain delivery changed (a retry's timer, a circuit's
    // cool-down, a lane parked or freed).
    for (;;) {
        bool const replan = co_await attempt_once(std::move(d));
        if (replan)
            wake_pump();
        if (is_stopping(state_))
            break;
        auto next = sched_.pop_ready(Clock::now());
        if (!next)
            break;
        count_start(*next);
        // More could start than this flight takes (a lane whose circuit just closed has up to
        // lane_concurrency to send): the pump starts them.
        if (!replan && sched_.has_ready() &&
            sched_.in_flight() < params_.scheduling.global_concurrency)
            wake_pump();
        wake_intake(); // the attempt that ended may have made room
        d = std::move(*next);
    }
    wake_pump();
}

template <class Store, class Source, class Serializer, class Transport, class Log, class Clock>
boost::asio::awaitable<bool>
basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::attempt_once(delivery d) {
    using attempt_result = scheduler::attempt_result;
    auto const lane = d.target();
    bool lane_released = false;
    bool replan = true; // false only for a plain delivery
    try {
        auto const started = Clock::now();
        // Every attempt goes to the webhook as it is now: edits apply; deletion,
        // deactivation and herald's own disabling stop it.
        std::shared_ptr<webhook const> hook = store_.get(lane);
        if (auto why = why_not_sent(hook.get(), d.attempts > 0)) {
            auto entry = detail::make_entry(d, hook ? hook : d.hook, started);
            entry.error = std::move(*why);
            finish(d, std::move(entry), outcome::failed);
        } else {
            d.hook = hook;
            auto entry = detail::make_entry(d, hook, started);
            entry.warning = attempt_warning(*hook, false);
            n_.attempts.fetch_add(1, std::memory_order_relaxed);
            http_request req = detail::make_request(d, *hook, started, entry.delivery_id);
            send_result r = co_await transport_.async_send(req);
            auto const now = Clock::now();
            detail::take_exchange(entry, req, r, now);
            ++d.attempts;
            auto const retry = retry_.decide(r, d.attempts, now, detail::unit_random(), *d.hook);
            bool const delivered = retry.kind == verdict::delivered;
            auto const health = sched_.done(
                lane, delivered ? attempt_result::delivered : attempt_result::failed, now);
            lane_released = true;
            attempt_decision decision(
                {r, d.attempts, retry, health, is_abandoning(state_), durable}, params_.health);
            auto action = decision.resume();
            if (action == attempt_action::disable) {
                auto off = store_.disable(lane, decision.disable_reason());
                if (off)
                    sched_.reset_health(lane, now); // re-activated later, it starts afresh
                action = decision.resume(off ? result<void>() : result<void>(off.error()));
            }
            entry.error = decision.take_error();
            if (decision.abandoned()) {
                report_.drained = false;
                report_.abandoned.push_back(entry.delivery_id);
            }
            switch (action) {
            case attempt_action::retry:
                entry.next_attempt_at = decision.next();
                entry.result = outcome::retrying;
                d.due = *decision.next();
                log_.record(std::move(entry));
                journal().reschedule(d);
                n_.retrying.fetch_add(1, std::memory_order_relaxed);
                sched_.push(std::move(d), now);
                break;
            case attempt_action::keep: // still in the store: sent again after the next start
                entry.result = outcome::retrying;
                log_.record(std::move(entry));
                journal().reschedule(d);
                n_.pending.fetch_sub(1, std::memory_order_relaxed);
                break;
            default:
                replan = decision.result() != outcome::delivered;
                finish(d, std::move(entry), decision.result());
                break;
            }
        }
    } catch (std::exception const& ex) {
        // A policy threw: the delivery still ends in the log, if the log itself can take it.
        try {
            auto entry = detail::make_entry(d, d.hook, Clock::now());
            entry.error = std::string("internal error: ") + ex.what();
            finish(d, std::move(entry), outcome::failed);
        } catch (...) {
        }
    }
    if (!lane_released)
        sched_.done(lane, attempt_result::not_sent, Clock::now());
    n_.open_circuits.store(sched_.open_circuits(), std::memory_order_relaxed);
    n_.parked.store(sched_.parked(), std::memory_order_relaxed);
    n_.in_flight.fetch_sub(1, std::memory_order_relaxed);
    co_return replan;
}

template <class Store, class Source, class Serializer, class Transport, class Log, class Clock>
void basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::finish(delivery& d,
                                                                                log_entry entry,
                                                                                outcome o) {
    entry.result = o;
    entry.next_attempt_at.reset();
    log_.record(std::move(entry));
    journal().complete(d, o);
    n_.pending.fetch_sub(1, std::memory_order_relaxed);
    (o == outcome::delivered ? n_.delivered : n_.failed).fetch_add(1, std::memory_order_relaxed);
}

// ---- Stop and drain ----

template <class Store, class Source, class Serializer, class Transport, class Log, class Clock>
void basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::abandon_pending(
    time_point now) {
    if (!is_abandoning(state_))
        state_ = lifecycle::abandoning;
    leave_stored();
    auto rest = sched_.take_all();
    if (!rest.empty() || sched_.in_flight() != 0)
        report_.drained = false;
    abandon(rest, now);
    flights_.cancel_all();
}

template <class Store, class Source, class Serializer, class Transport, class Log, class Clock>
void basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::abandon_unstartable(
    time_point now) {
    next_cull_ = now + std::chrono::milliseconds(250);
    auto lost = sched_.take_unstartable(now, deadline_);
    if (lost.empty())
        return;
    report_.drained = false;
    abandon(lost, now);
}

template <class Store, class Source, class Serializer, class Transport, class Log, class Clock>
void basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::abandon(
    std::vector<delivery>& rest, time_point now) {
    for (auto& d : rest) {
        if (d.attempts > 0)
            n_.retrying.fetch_sub(1, std::memory_order_relaxed);
        if constexpr (durable) {
            // Still recorded in the journal: delivered after the next start.
            report_.abandoned.push_back(d.id_string());
            n_.pending.fetch_sub(1, std::memory_order_relaxed);
        } else {
            auto entry = detail::make_entry(d, d.hook, now);
            entry.attempt = d.attempts; // no attempt was made now
            entry.error = "abandoned at shutdown: not delivered before the drain deadline (" +
                          std::to_string(d.attempts) +
                          (d.attempts == 1 ? " attempt made)" : " attempts made)");
            report_.abandoned.push_back(entry.delivery_id);
            finish(d, std::move(entry), outcome::failed);
        }
    }
}

// ---- The journal: periodic claims, and a backlog beyond memory ----

template <class Store, class Source, class Serializer, class Transport, class Log, class Clock>
std::optional<time_point>
basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::claim_more(time_point now) {
    // What another process left (its lease lapsed), or what a journal hands out in pages.
    if (claiming_ || is_stopping(state_) || params_.claim_interval.count() <= 0)
        return std::nullopt;
    if (now < next_claim_)
        return next_claim_;
    claiming_ = true;
    journal().async_claim(
        now, claim_page,
        boost::asio::bind_executor(
            strand_, [this](result<std::vector<delivery>> r) { take_claimed(std::move(r)); }));
    return std::nullopt;
}

template <class Store, class Source, class Serializer, class Transport, class Log, class Clock>
void basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::take_claimed(
    result<std::vector<delivery>> r) {
    claiming_ = false;
    auto const now = Clock::now();
    // A full page: there may be more at once. A failed claim is tried again at the next
    // interval; the deliveries wait in the journal meanwhile.
    next_claim_ = r && r->size() == claim_page ? now : now + params_.claim_interval;
    if (r && !r->empty()) {
        n_.pending.fetch_add(r->size(), std::memory_order_relaxed);
        for (auto& d : *r) {
            if (d.attempts > 0)
                n_.retrying.fetch_add(1, std::memory_order_relaxed);
            if (is_abandoning(state_)) {
                std::vector<delivery> one{std::move(d)};
                abandon(one, now);
            } else {
                place(std::move(d), now);
            }
        }
        n_.parked.store(sched_.parked(), std::memory_order_relaxed);
    }
    wake_pump();
}

template <class Store, class Source, class Serializer, class Transport, class Log, class Clock>
void basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::place(delivery d,
                                                                               time_point now) {
    if constexpr (keeps_backlog) {
        if (backlog_.keep(d, sched_, now)) {
            count_stored();
            return;
        }
    }
    push_pending(std::move(d), now);
}

template <class Store, class Source, class Serializer, class Transport, class Log, class Clock>
void basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::push_pending(
    delivery d, time_point now) {
    if constexpr (keeps_backlog)
        backlog_.pushed(d);
    sched_.push(std::move(d), now);
}

template <class Store, class Source, class Serializer, class Transport, class Log, class Clock>
std::optional<time_point>
basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::load_stored(time_point now) {
    std::optional<time_point> retry;
    if constexpr (keeps_backlog) {
        if (is_abandoning(state_))
            return retry;
        loads_.clear();
        retry = backlog_.plan(now, sched_, is_stopping(state_), loads_);
        for (auto const& l : loads_)
            journal().async_load(l.lane, l.after, l.upto, l.max,
                                 boost::asio::bind_executor(
                                     strand_, [this, l](result<std::vector<delivery>> r) mutable {
                                         take_loaded(l, std::move(r));
                                     }));
    } else {
        (void)now;
    }
    return retry;
}

template <class Store, class Source, class Serializer, class Transport, class Log, class Clock>
void basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::take_loaded(
    detail::journal_backlog::load const& l, result<std::vector<delivery>> r) {
    auto const now = Clock::now();
    // Past the drain deadline the backlog keeps no lane: they stay in the store (left_in_store).
    if (backlog_.loaded(l, r, now) && !is_abandoning(state_)) {
        for (auto& d : *r)
            push_pending(std::move(d), now);
        count_stored();
        n_.parked.store(sched_.parked(), std::memory_order_relaxed);
    }
    wake_pump();
}

template <class Store, class Source, class Serializer, class Transport, class Log, class Clock>
void basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::leave_stored() {
    // At the drain deadline: what only the store holds stays there for the next start.
    auto const left = backlog_.leave();
    if (left == 0)
        return;
    report_.drained = false;
    report_.left_in_store += left;
    n_.pending.fetch_sub(left, std::memory_order_relaxed);
    count_stored();
}

} // namespace herald

#endif
