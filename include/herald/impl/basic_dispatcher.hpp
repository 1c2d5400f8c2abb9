#ifndef HERALD_IMPL_BASIC_DISPATCHER_HPP
#define HERALD_IMPL_BASIC_DISPATCHER_HPP

#include <herald/engine/attempt_decision.hpp>
#include <herald/version.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <exception>
#include <functional>
#include <tuple>
#include <type_traits>

namespace herald {

namespace detail {
/// A store that commits off the calling thread: `s.async_enqueue(deliveries, token)`
/// completing with `void(result<void>)` (sqlite_store).
template <class S>
constexpr bool has_async_enqueue() {
    return requires(S & s, std::vector<delivery> v) {
        s.async_enqueue(std::move(v), boost::asio::use_awaitable);
    };
}

// A strand over an io_context's executor type fits in any_io_executor's small buffer; a
// strand over any_io_executor does not, and every copy of it (one per handler) allocates.
inline boost::asio::any_io_executor make_dispatcher_strand(boost::asio::any_io_executor const& ex) {
    using io_executor = boost::asio::io_context::executor_type;
    if (auto const* io = ex.target<io_executor>())
        return boost::asio::make_strand(*io);
    return boost::asio::make_strand(ex);
}

inline double unit_random() {
    return double(random_u64() >> 11) * 0x1.0p-53;
}

/// Why a new delivery was shed instead of parked (see dispatcher_params::max_parked).
inline std::string describe_shed(park_reason why, scheduler const& s, webhook_id id,
                                 dispatcher_params const& p) {
    auto const [waiting, parked] = s.waiting(id);
    std::string out = "shed, not queued: the webhook ";
    switch (why) {
    case park_reason::circuit:
        out += "is failing (its circuit is open or half-open)";
        break;
    case park_reason::stalled:
        out += "is not answering (" + std::to_string(p.scheduling.lane_concurrency) +
               " attempts in flight, none finished for " +
               format_duration(p.scheduling.stall_after) + ")";
        break;
    default:
        out += "is still sending what it held while failing";
        break;
    }
    out += ", " + std::to_string(waiting) + " of its deliveries wait (" + std::to_string(parked) +
           " parked), and what failing webhooks hold reached max_parked (" +
           std::to_string(p.max_parked) + ")";
    return out;
}

inline void add_header(std::vector<http_header>& h, char const* name, std::string value) {
    h.push_back(http_header{name, std::move(value)});
}
} // namespace detail

template <class Store, class Source, class Serializer, class Transport, class Log, class Clock>
basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::basic_dispatcher(boost::asio::any_io_executor ex, dispatcher_params params,
                                    Store store, Transport transport, Log log,
                                    Serializer serializer)
    : strand_(detail::make_dispatcher_strand(ex))
    , params_(std::move(params))
    , retry_((validate(params_.retry).value(), params_.retry))
    , serializer_(std::move(serializer))
    , store_(std::move(store))
    , transport_(std::move(transport))
    , log_(std::move(log))
    , source_(make_source(strand_, params_.intake))
    , sched_(params_.scheduling, params_.health, params_.max_pending)
    , pump_(strand_)
    , intake_wait_(strand_)
    , stopped_timer_(strand_, time_point::max()) {
    if constexpr (keeps_backlog) {
        arrived_ = store_.journal_seq();
        next_seq_.store(arrived_ + 1);
    }
    // Deliveries a durable store holds from an earlier run, taken before any publish can
    // reach the strand (a lane's backlog beyond its share stays in the store).
    auto const now = Clock::now();
    for (;;) {
        auto recovered = store_.claim(now, 1024);
        n_.pending.fetch_add(recovered.size(), std::memory_order_relaxed);
        for (auto& d : recovered) {
            if (d.attempts > 0)
                n_.retrying.fetch_add(1, std::memory_order_relaxed);
            place(std::move(d), now);
        }
        if (recovered.size() < 1024)
            break;
    }
    n_.parked.store(sched_.parked(), std::memory_order_relaxed);
}

template <class Store, class Source, class Serializer, class Transport, class Log, class Clock>
Source basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::make_source(executor_type const& ex, channel_params const& p) {
    if constexpr (std::is_constructible_v<Source, boost::asio::any_io_executor, channel_params>)
        return Source(boost::asio::any_io_executor(ex), p);
    else if constexpr (std::is_constructible_v<Source, boost::asio::any_io_executor>)
        return Source(boost::asio::any_io_executor(ex));
    else
        return Source();
}

template <class Store, class Source, class Serializer, class Transport, class Log, class Clock>
result<std::string> basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::publish(object_event e) requires publishable_source<Source> {
    if (auto r = prepare_event(e); !r)
        return r.error();
    std::string id = e.id;
    if constexpr (detail::is_durable<Store>()) {
        auto ds = stage(e);
        if (!ds)
            return ds.error();
        if (!ds->empty()) {
            auto r = store_.enqueue(*ds); // waits for the commit
            hand_over(std::move(*ds), r, false);
            if (!r)
                return r.error();
        }
        n_.published.fetch_add(1, std::memory_order_relaxed);
    } else {
        if (auto r = source_.try_publish(e); !r)
            return r.error();
        n_.published.fetch_add(1, std::memory_order_relaxed);
        n_.queued.fetch_add(1, std::memory_order_relaxed);
    }
    return id;
}

template <class Store, class Source, class Serializer, class Transport, class Log, class Clock>
boost::asio::awaitable<result<std::string>>
basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::async_publish(object_event e) requires publishable_source<Source> {
    if (auto r = prepare_event(e); !r)
        co_return r.error();
    std::string id = e.id;
    if constexpr (detail::is_durable<Store>()) {
        auto ds = stage(e);
        if (!ds)
            co_return ds.error();
        if (!ds->empty()) {
            result<void> r;
            if constexpr (detail::has_async_enqueue<Store>()) {
                auto commit = store_.async_enqueue(*ds, boost::asio::use_awaitable);
                r = co_await std::move(commit);
            } else {
                r = store_.enqueue(*ds);
            }
            hand_over(std::move(*ds), r, false);
            if (!r)
                co_return r.error();
        }
        n_.published.fetch_add(1, std::memory_order_relaxed);
        co_return id;
    } else if constexpr (requires { source_.async_publish(e); }) {
        auto r = co_await source_.async_publish(e);
        if (!r)
            co_return r.error();
    } else {
        auto r = source_.try_publish(e);
        if (!r)
            co_return r.error();
    }
    n_.published.fetch_add(1, std::memory_order_relaxed);
    n_.queued.fetch_add(1, std::memory_order_relaxed);
    co_return id;
}

template <class Store, class Source, class Serializer, class Transport, class Log, class Clock>
dispatcher_stats basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::stats() const {
    auto r = [](std::atomic<std::uint64_t> const& a) {
        return a.load(std::memory_order_relaxed);
    };
    return dispatcher_stats{r(n_.published), r(n_.unmatched), r(n_.rejected),      r(n_.queued),
                            r(n_.pending),   r(n_.in_flight), r(n_.retrying),      r(n_.delivered),
                            r(n_.failed),    r(n_.attempts),  r(n_.open_circuits), r(n_.parked),
                            r(n_.shed),      r(n_.stored)};
}

template <class Store, class Source, class Serializer, class Transport, class Log, class Clock>
boost::asio::awaitable<void> basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::run() {
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
boost::asio::awaitable<stop_report> basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::stop(duration drain) {
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
boost::asio::awaitable<void> basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::intake_loop() {
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
void basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::accept(object_event& e, time_point now) {
    if constexpr (publishable_source<Source>)
        n_.queued.fetch_sub(1, std::memory_order_relaxed);
    // Events from publish are already prepared; a custom source's are checked here.
    if (auto r = prepare_event(e, now); !r) {
        n_.rejected.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    webhook_list hooks;
    std::shared_ptr<prepared_event const> ev;
    // Deliveries that cannot be queued still end in the log, each as failed.
    auto fail_all = [&](std::string const& why) {
        if (!ev)
            ev = std::make_shared<prepared_event const>(prepared_event{std::move(e), {}});
        for (auto const& h : *hooks) {
            delivery d{make_delivery_id(now), ev, h, 0, now};
            auto entry = make_entry(d, *h, now);
            entry.error = why;
            n_.failed.fetch_add(1, std::memory_order_relaxed);
            log_.record(std::move(entry));
        }
    };
    // Once the deliveries are built (and some perhaps shed, already logged): those left.
    auto fail_batch = [&](std::string const& why) {
        for (auto const& d : batch_) {
            auto entry = make_entry(d, *d.hook, now);
            entry.error = why;
            n_.failed.fetch_add(1, std::memory_order_relaxed);
            log_.record(std::move(entry));
        }
        batch_.clear();
    };
    bool batched = false;
    std::uint64_t seq = 0; // given to this event's deliveries, and not yet noted as come back
    try {
        hooks = store_.match(e);
        if (!hooks || hooks->empty()) {
            n_.unmatched.fetch_add(1, std::memory_order_relaxed);
            return;
        }
        // One body per event, shared by every delivery.
        payload body = serializer_.serialize(e);
        serializations_.fetch_add(1, std::memory_order_relaxed);
        // The body carries the objects from now on: the deliveries (and the log entries that
        // share the body) keep only the event's metadata alive, not its JSON.
        e.before.reset();
        e.after.reset();
        e.changes.reset();
        ev = std::make_shared<prepared_event const>(prepared_event{std::move(e), std::move(body)});
        auto const due = now + retry_.initial_delay();
        batch_.clear();
        batch_.reserve(hooks->size());
        for (auto const& h : *hooks)
            batch_.push_back(delivery{make_delivery_id(now), ev, h, 0, due});
        batched = true;
        if constexpr (keeps_backlog) {
            seq = next_seq_.fetch_add(1);
            for (auto& d : batch_)
                d.seq = seq;
        }
        if constexpr (detail::is_durable<Store>() && detail::has_async_enqueue<Store>()) {
            // No disk on the strand: the deliveries join the scheduler once committed.
            std::vector<delivery> ds(batch_.begin(), batch_.end());
            committing_.fetch_add(1);
            seq = 0; // take_committed notes it
            store_.async_enqueue(
                std::move(ds), boost::asio::bind_executor(strand_, [this, mine = std::move(batch_)](
                                                                       result<void> r) mutable {
                    take_committed(mine, r, true);
                }));
            batch_ = {};
            return;
        } else {
            if constexpr (!detail::is_durable<Store>())
                shed_parked(batch_, now); // a durable store keeps them all
            auto r = store_.enqueue(batch_);
            if constexpr (keeps_backlog) {
                note_arrived(seq);
                seq = 0;
            }
            if (!r) {
                fail_batch("could not be queued: " + r.error().what());
                return;
            }
        }
    } catch (std::exception const& ex) {
        if (seq != 0)
            note_arrived(seq); // never reached the store
        if (batched)
            fail_batch(std::string("internal error: ") + ex.what());
        else if (hooks)
            fail_all(std::string("internal error: ") + ex.what());
        else
            n_.rejected.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    n_.pending.fetch_add(batch_.size(), std::memory_order_relaxed);
    for (auto& d : batch_)
        place(std::move(d), now);
    n_.parked.store(sched_.parked(), std::memory_order_relaxed);
}

template <class Store, class Source, class Serializer, class Transport, class Log, class Clock>
void basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::shed_parked(std::vector<delivery>& ds, time_point now) {
    if (params_.max_parked == 0 || sched_.held() < params_.max_parked)
        return;
    // The deliveries parked for failing or stalled lanes fill their bound: new ones for such
    // lanes are logged as failed instead of held, so that the backlog of what is broken stays
    // bounded without stopping the intake of what is not.
    auto keep = ds.begin();
    for (auto& d : ds) {
        auto const why = sched_.parks(d.target(), now);
        if (!is_held(why)) {
            *keep++ = std::move(d);
            continue;
        }
        auto entry = make_entry(d, *d.hook, now);
        entry.attempt = 0;
        entry.error = detail::describe_shed(why, sched_, d.target(), params_);
        n_.failed.fetch_add(1, std::memory_order_relaxed);
        n_.shed.fetch_add(1, std::memory_order_relaxed);
        log_.record(std::move(entry));
    }
    ds.erase(keep, ds.end());
}

template <class Store, class Source, class Serializer, class Transport, class Log, class Clock>
boost::asio::awaitable<void> basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::pump_loop() {
    for (;;) {
        auto const now = Clock::now();
        bool const draining = state_ == lifecycle::draining;
        if (draining && now >= deadline_)
            abandon_pending(now);
        else if (draining && now >= next_cull_)
            abandon_unstartable(now); // logged now, not all at the deadline: it keeps the bound
        while (auto d = sched_.pop_ready(now))
            start_attempt(std::move(*d));
        std::optional<time_point> load_at;
        if constexpr (keeps_backlog)
            load_at = load_stored(now);
        // A full budget may be held by lanes that stall only as time passes: look at them
        // while the intake waits, and wake when the next would stall.
        std::optional<time_point> stall_at;
        if (intake_wait_.waiting())
            stall_at = sched_.refresh_stalls(now);
        n_.parked.store(sched_.parked(), std::memory_order_relaxed);
        wake_intake();
        if (is_stopping(state_) && intake_done_) {
            if (sched_.pending() == 0 && active_flights_ == 0 && !committing() && loads_ == 0 &&
                stored_total_ == 0)
                co_return;
            // Nothing in flight, nothing due before the deadline and nothing to load from the
            // store: waiting is pointless.
            auto const next = sched_.next_due();
            if (state_ == lifecycle::draining && sched_.in_flight() == 0 && !sched_.has_ready() &&
                (!next || *next > deadline_) && !committing() && loads_ == 0) {
                abandon_pending(now);
                continue;
            }
        }
        auto wake_at = sched_.next_due().value_or(time_point::max());
        if (stall_at && intake_wait_.waiting())
            wake_at = std::min(wake_at, *stall_at);
        if (load_at)
            wake_at = std::min(wake_at, *load_at);
        if (state_ == lifecycle::draining)
            wake_at = std::min({wake_at, deadline_, std::max(next_cull_, now)});
        co_await pump_.sleep_until(wake_at);
    }
}

template <class Store, class Source, class Serializer, class Transport, class Log, class Clock>
void basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::wake_intake() {
    if (intake_wait_.waiting() && has_room())
        intake_wait_.wake();
}

template <class Store, class Source, class Serializer, class Transport, class Log, class Clock>
void basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::wake_pump() {
    pump_.wake();
}

template <class Store, class Source, class Serializer, class Transport, class Log, class Clock>
void basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::count_start(delivery const& d) {
    if (d.attempts > 0)
        n_.retrying.fetch_sub(1, std::memory_order_relaxed);
    n_.in_flight.fetch_add(1, std::memory_order_relaxed);
}

template <class Store, class Source, class Serializer, class Transport, class Log, class Clock>
void basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::start_attempt(delivery d) {
    count_start(d);
    auto const slot = acquire_flight();
    boost::asio::co_spawn(strand_, attempt(std::move(d)),
                          boost::asio::bind_cancellation_slot(
                              flights_[slot]->signal.slot(),
                              [this, slot](std::exception_ptr) { release_flight(slot); }));
}

template <class Store, class Source, class Serializer, class Transport, class Log, class Clock>
std::size_t basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::acquire_flight() {
    std::size_t slot;
    if (free_flights_.empty()) {
        slot = flights_.size();
        flights_.push_back(std::make_unique<flight>());
    } else {
        slot = free_flights_.back();
        free_flights_.pop_back();
    }
    flights_[slot]->active = true;
    ++active_flights_;
    return slot;
}

template <class Store, class Source, class Serializer, class Transport, class Log, class Clock>
void basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::release_flight(std::size_t slot) {
    // Asio may still touch the slot until the completion handler returns: free it afterwards.
    // The pump waits for every flight to end, so `this` outlives the posted release.
    boost::asio::post(strand_, [this, slot] {
        flights_[slot]->active = false;
        free_flights_.push_back(slot);
        --active_flights_;
        wake_pump();
    });
}

template <class Store, class Source, class Serializer, class Transport, class Log, class Clock>
http_request basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::make_request(delivery const& d, webhook const& hook) const {
    auto const& ev = *d.event;
    http_request req;
    req.url = hook.url;
    req.content_type = ev.body.content_type;
    req.body = std::shared_ptr<std::string const>(d.event, &ev.body.body);
    req.headers.reserve(7 + ev.body.headers.size() + hook.headers.size());
    auto const timestamp = to_unix_seconds(Clock::now());
    // One field per name: a webhook's own User-Agent replaces herald's, here and so in the log.
    auto const hook_has = [&](std::string_view name) {
        for (auto const& h : hook.headers)
            if (detail::iequals(h.name, name))
                return true;
        return false;
    };
    if (!hook_has("User-Agent"))
        detail::add_header(req.headers, "User-Agent", user_agent);
    detail::add_header(req.headers, "webhook-id", ev.event.id);
    detail::add_header(req.headers, "webhook-timestamp", std::to_string(timestamp));
    if (!hook.secrets.empty())
        detail::add_header(req.headers, "webhook-signature",
                           sign(ev.event.id, timestamp, ev.body.body, hook.secrets));
    detail::add_header(req.headers, "herald-event", std::string(to_string(ev.event.type)));
    detail::add_header(req.headers, "herald-delivery", d.id_string());
    detail::add_header(req.headers, "herald-attempt", std::to_string(d.attempts + 1));
    for (auto const& h : ev.body.headers)
        if (!hook_has(h.name)) // the webhook's header of that name replaces the serializer's
            req.headers.push_back(h);
    for (auto const& h : hook.headers)
        req.headers.push_back(h);
    req.connect_timeout = hook.connect_timeout.value_or(duration{0});
    req.timeout = hook.timeout.value_or(duration{0});
    req.verify_tls = hook.verify_tls;
    req.ca_file = hook.ca_file;
    req.allow_private = hook.allow_private;
    return req;
}

template <class Store, class Source, class Serializer, class Transport, class Log, class Clock>
log_entry basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::make_entry(delivery const& d, webhook const& hook,
                                        time_point started) const {
    log_entry e;
    e.delivery_id = d.id_string();
    e.event_id = d.event->event.id;
    e.webhook = hook.id;
    e.webhook_name = hook.name;
    e.url = hook.url;
    e.type = d.event->event.type;
    e.object_id = d.event->event.object_id;
    e.attempt = d.attempts + 1;
    e.started_at = started;
    e.result = outcome::failed;
    return e;
}

namespace detail {
/// Moves what was sent and what came back into the attempt's log entry.
inline void take_exchange(log_entry& entry, http_request& req, send_result& r, time_point now) {
    entry.request_headers = headers_as_sent(req);
    entry.request_body = std::move(req.body);
    entry.elapsed = r.elapsed.count() > 0
                        ? r.elapsed
                        : std::chrono::duration_cast<duration>(now - entry.started_at);
    entry.status = r.status;
    entry.response_excerpt = std::move(r.excerpt);
    if (!r.note.empty())
        entry.warning += (entry.warning.empty() ? "" : "; ") + r.note;
}
} // namespace detail

template <class Store, class Source, class Serializer, class Transport, class Log, class Clock>
boost::asio::awaitable<void> basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::attempt(delivery d) {
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
boost::asio::awaitable<bool> basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::attempt_once(delivery d) {
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
            auto entry = make_entry(d, hook ? *hook : *d.hook, started);
            entry.error = std::move(*why);
            finish(d, std::move(entry), outcome::failed);
        } else {
            d.hook = hook;
            auto entry = make_entry(d, *hook, started);
            entry.warning = attempt_warning(*hook, false);
            n_.attempts.fetch_add(1, std::memory_order_relaxed);
            http_request req = make_request(d, *hook);
            send_result r = co_await transport_.async_send(req);
            auto const now = Clock::now();
            detail::take_exchange(entry, req, r, now);
            ++d.attempts;
            auto const retry = retry_.decide(r, d.attempts, now, detail::unit_random());
            bool const delivered = retry.kind == verdict::delivered;
            auto const health = sched_.done(
                lane, delivered ? attempt_result::delivered : attempt_result::failed, now);
            lane_released = true;
            attempt_decision decision({r, d.attempts, retry, health, is_abandoning(state_),
                                       detail::is_durable<Store>()},
                                      params_.health);
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
                store_.reschedule(d);
                n_.retrying.fetch_add(1, std::memory_order_relaxed);
                sched_.push(std::move(d), now);
                break;
            case attempt_action::keep: // still in the store: sent again after the next start
                entry.result = outcome::retrying;
                log_.record(std::move(entry));
                store_.reschedule(d);
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
            auto entry = make_entry(d, *d.hook, Clock::now());
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
void basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::finish(delivery& d, log_entry entry, outcome o) {
    entry.result = o;
    entry.next_attempt_at.reset();
    log_.record(std::move(entry));
    store_.complete(d, o);
    n_.pending.fetch_sub(1, std::memory_order_relaxed);
    (o == outcome::delivered ? n_.delivered : n_.failed).fetch_add(1, std::memory_order_relaxed);
}

template <class Store, class Source, class Serializer, class Transport, class Log, class Clock>
void basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::abandon_pending(time_point now) {
    if (!is_abandoning(state_))
        state_ = lifecycle::abandoning;
    leave_stored();
    auto rest = sched_.take_all();
    if (!rest.empty() || sched_.in_flight() != 0)
        report_.drained = false;
    abandon(rest, now);
    for (auto& f : flights_)
        if (f->active)
            f->signal.emit(boost::asio::cancellation_type::terminal);
}

template <class Store, class Source, class Serializer, class Transport, class Log, class Clock>
void basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::abandon_unstartable(time_point now) {
    next_cull_ = now + std::chrono::milliseconds(250);
    auto lost = sched_.take_unstartable(now, deadline_);
    if (lost.empty())
        return;
    report_.drained = false;
    abandon(lost, now);
}

template <class Store, class Source, class Serializer, class Transport, class Log, class Clock>
void basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::abandon(std::vector<delivery>& rest, time_point now) {
    for (auto& d : rest) {
        if (d.attempts > 0)
            n_.retrying.fetch_sub(1, std::memory_order_relaxed);
        if constexpr (detail::is_durable<Store>()) {
            // Still recorded in the store: delivered after the next start.
            report_.abandoned.push_back(d.id_string());
            n_.pending.fetch_sub(1, std::memory_order_relaxed);
        } else {
            auto entry = make_entry(d, *d.hook, now);
            entry.attempt = d.attempts; // no attempt was made now
            entry.error = "abandoned at shutdown: not delivered before the drain deadline (" +
                          std::to_string(d.attempts) +
                          (d.attempts == 1 ? " attempt made)" : " attempts made)");
            report_.abandoned.push_back(entry.delivery_id);
            finish(d, std::move(entry), outcome::failed);
        }
    }
}

template <class Store, class Source, class Serializer, class Transport, class Log, class Clock>
void basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::place(delivery d, time_point now) {
    if (!keep_in_store(d, now))
        push_pending(std::move(d), now);
}

template <class Store, class Source, class Serializer, class Transport, class Log, class Clock>
void basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::push_pending(delivery d, time_point now) {
    if constexpr (keeps_backlog) {
        auto& top = top_seq_[d.target()];
        top = std::max(top, d.seq);
    }
    sched_.push(std::move(d), now);
}

template <class Store, class Source, class Serializer, class Transport, class Log, class Clock>
bool basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::keep_in_store(delivery const& d, time_point now) {
    if constexpr (!keeps_backlog) {
        (void)d;
        (void)now;
        return false;
    } else {
        auto const id = d.target();
        auto it = stored_.find(id);
        if (it == stored_.end()) {
            // A lane starts keeping its backlog in the store once it is parked and already
            // holds its share of the budget in memory.
            if (d.seq == 0 || sched_.parks(id, now) == park_reason::none ||
                sched_.waiting(id).first < sched_.share())
                return false;
            stored_lane s;
            // Past every seq of the lane in memory, so that what the store gives back from
            // `from` on was never pushed. One that comes back late, below it, is pushed.
            auto const top = top_seq_[id];
            s.from = std::max(top + 1, d.seq);
            s.cursor = s.from - 1;
            it = stored_.emplace(id, s).first;
        }
        auto& s = it->second;
        if (d.seq < s.from)
            return false;
        ++s.stored;
        ++stored_total_;
        n_.stored.store(stored_total_, std::memory_order_relaxed);
        return true;
    }
}

template <class Store, class Source, class Serializer, class Transport, class Log, class Clock>
void basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::note_arrived(std::uint64_t seq) {
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

template <class Store, class Source, class Serializer, class Transport, class Log, class Clock>
std::optional<time_point> basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::load_stored(time_point now) {
    std::optional<time_point> retry;
    if constexpr (keeps_backlog) {
        if (is_abandoning(state_))
            return retry;
        auto const share = sched_.share();
        for (auto it = stored_.begin(); it != stored_.end();) {
            auto const lane = it->first;
            auto& st = it->second;
            if (st.stored == 0 && !st.loading) {
                it = stored_.erase(it); // all in memory again: the lane is as any other
                continue;
            }
            ++it;
            if (st.loading || st.stored == 0 || st.tried_upto == arrived_)
                continue;
            if (now < st.retry_at) {
                retry = retry ? std::min(*retry, st.retry_at) : st.retry_at;
                continue;
            }
            auto const waiting = sched_.waiting(lane).first;
            if (waiting * 2 > share)
                continue; // loaded when half of its share has gone
            if (is_stopping(state_) && is_held(sched_.parks(lane, now)))
                continue; // it cannot go before the deadline anyway
            auto const asked = std::min<std::size_t>(share - waiting, 1024);
            auto const upto = arrived_;
            st.loading = true;
            ++loads_;
            store_.async_load(lane, st.cursor, upto, asked,
                              boost::asio::bind_executor(
                                  strand_, [this, lane, asked, upto](
                                               result<std::vector<delivery>> r) mutable {
                                      take_loaded(lane, asked, upto, std::move(r));
                                  }));
        }
    } else {
        (void)now;
    }
    return retry;
}

template <class Store, class Source, class Serializer, class Transport, class Log, class Clock>
void basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::take_loaded(webhook_id id, std::size_t asked, std::uint64_t upto,
                                    result<std::vector<delivery>> r) {
    --loads_;
    auto const now = Clock::now();
    auto it = stored_.find(id);
    if (is_abandoning(state_) || it == stored_.end()) {
        wake_pump(); // past the drain deadline: they stay in the store (left_in_store)
        return;
    }
    auto& s = it->second;
    s.loading = false;
    if (!r) {
        s.retry_at = now + std::chrono::seconds(1);
        wake_pump();
        return;
    }
    auto const n = std::min(r->size(), s.stored);
    s.stored -= n;
    stored_total_ -= n;
    for (auto& d : *r) {
        s.cursor = std::max(s.cursor, d.seq);
        push_pending(std::move(d), now);
    }
    if (r->size() < asked)
        s.tried_upto = upto; // the rest has not come back yet: look again once more has
    n_.stored.store(stored_total_, std::memory_order_relaxed);
    n_.parked.store(sched_.parked(), std::memory_order_relaxed);
    wake_pump();
}

template <class Store, class Source, class Serializer, class Transport, class Log, class Clock>
void basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::leave_stored() {
    // At the drain deadline: what only the store holds stays there for the next start.
    if (stored_total_ == 0)
        return;
    report_.drained = false;
    report_.left_in_store += stored_total_;
    n_.pending.fetch_sub(stored_total_, std::memory_order_relaxed);
    stored_total_ = 0;
    stored_.clear();
    n_.stored.store(0, std::memory_order_relaxed);
}

template <class Store, class Source, class Serializer, class Transport, class Log, class Clock>
result<std::vector<delivery>> basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::stage(object_event& e) {
    // Counted before the check, so that a stop that sees no commit in progress also makes
    // every later publish see the intake closed.
    committing_.fetch_add(1);
    if (intake_closed_.load()) {
        release_commit();
        return make_problem(error::stopped, "", "the dispatcher is stopping; no new events");
    }
    std::vector<delivery> ds;
    try {
        auto const hooks = store_.match(e);
        if (!hooks || hooks->empty()) {
            n_.unmatched.fetch_add(1, std::memory_order_relaxed);
            release_commit();
            return ds;
        }
        payload body = serializer_.serialize(e);
        serializations_.fetch_add(1, std::memory_order_relaxed);
        // As in accept: the body carries the objects from now on.
        e.before.reset();
        e.after.reset();
        e.changes.reset();
        auto const now = Clock::now();
        auto ev =
            std::make_shared<prepared_event const>(prepared_event{std::move(e), std::move(body)});
        auto const due = now + retry_.initial_delay();
        ds.reserve(hooks->size());
        for (auto const& h : *hooks)
            ds.push_back(delivery{make_delivery_id(now), ev, h, 0, due});
        if constexpr (keeps_backlog) {
            // Last: from here every seq given reaches take_committed (hand_over posts even a
            // failed commit), or arrived_ would wait for it for ever.
            auto const seq = next_seq_.fetch_add(1);
            for (auto& d : ds)
                d.seq = seq;
        }
    } catch (std::exception const& ex) {
        n_.rejected.fetch_add(1, std::memory_order_relaxed);
        release_commit();
        return make_problem(error::invalid_field, "",
                            std::string("the event could not be accepted: internal error: ") +
                                ex.what());
    }
    return ds;
}

template <class Store, class Source, class Serializer, class Transport, class Log, class Clock>
void basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::hand_over(std::vector<delivery> ds, result<void> committed,
                                  bool log_failures) {
    if (!committed && !log_failures && !keeps_backlog) {
        release_commit(); // the caller has the problem; nothing was queued
        return;
    }
    boost::asio::post(strand_,
                      [this, ds = std::move(ds), committed = std::move(committed),
                       log_failures]() mutable { take_committed(ds, committed, log_failures); });
}

template <class Store, class Source, class Serializer, class Transport, class Log, class Clock>
void basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::take_committed(std::vector<delivery>& ds, result<void> const& committed,
                                       bool log_failures) {
    if constexpr (keeps_backlog)
        if (!ds.empty())
            note_arrived(ds.front().seq); // one event: one seq
    if (committed) {
        if (is_abandoning(state_)) {
            // Past the drain: they wait in the store for the next start.
            report_.drained = false;
            for (auto const& d : ds)
                report_.abandoned.push_back(d.id_string());
        } else {
            auto const now = Clock::now();
            n_.pending.fetch_add(ds.size(), std::memory_order_relaxed);
            for (auto& d : ds)
                place(std::move(d), now);
            n_.parked.store(sched_.parked(), std::memory_order_relaxed);
        }
    } else if (log_failures) {
        auto const now = Clock::now();
        for (auto const& d : ds) {
            auto entry = make_entry(d, *d.hook, now);
            entry.attempt = 0;
            entry.error = "could not be queued: " + committed.error().what();
            n_.failed.fetch_add(1, std::memory_order_relaxed);
            log_.record(std::move(entry));
        }
    }
    committing_.fetch_sub(1);
    wake_pump();
}

template <class Store, class Source, class Serializer, class Transport, class Log, class Clock>
void basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::release_commit() {
    // The last commit in progress of a stopping dispatcher: its pump may be waiting for it.
    if (committing_.fetch_sub(1) == 1 && intake_closed_.load())
        boost::asio::post(strand_, [this] { wake_pump(); });
}

template <class Store, class Source, class Serializer, class Transport, class Log, class Clock>
bool basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::committing() const noexcept {
    if constexpr (detail::is_durable<Store>())
        return committing_.load() != 0;
    else
        return false;
}

template <class Store, class Source, class Serializer, class Transport, class Log, class Clock>
template <class CompletionToken>
auto basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::initiate_once(webhook_id id, object_event e,
                                      std::shared_ptr<prepared_event const> ev,
                                      CompletionToken&& token) {
    using signature = void(std::exception_ptr, result<log_entry>);
    auto init = [this](auto handler, webhook_id hook, object_event event,
                       std::shared_ptr<prepared_event const> prepared) {
        auto work = boost::asio::make_work_guard(boost::asio::get_associated_executor(handler));
        boost::asio::dispatch(strand_, [this, hook, event = std::move(event),
                                        prepared = std::move(prepared), h = std::move(handler),
                                        work = std::move(work)]() mutable {
            // The handler runs on its own executor, whichever thread finishes the attempt.
            auto complete = [](auto& done, auto& guard, std::exception_ptr ex,
                               result<log_entry> r) {
                auto hex = guard.get_executor();
                boost::asio::dispatch(hex, [h2 = std::move(done), ex, r = std::move(r)]() mutable {
                    std::move(h2)(ex, std::move(r));
                });
                guard.reset();
            };
            if (state_ != lifecycle::running) {
                complete(h, work, nullptr,
                         make_problem(error::stopped, "",
                                      "the dispatcher is not running (or is stopping)"));
                return;
            }
            // A flight like a scheduled attempt, so async_stop cancels it and waits for it.
            auto const slot = acquire_flight();
            boost::asio::co_spawn(
                strand_, deliver_once(hook, std::move(event), std::move(prepared)),
                boost::asio::bind_cancellation_slot(
                    flights_[slot]->signal.slot(),
                    [this, slot, complete, h = std::move(h),
                     work = std::move(work)](std::exception_ptr ex, result<log_entry> r) mutable {
                        release_flight(slot);
                        complete(h, work, ex, std::move(r));
                    }));
        });
    };
    return boost::asio::async_initiate<CompletionToken, signature>(std::move(init), token, id,
                                                                   std::move(e), std::move(ev));
}

template <class Store, class Source, class Serializer, class Transport, class Log, class Clock>
boost::asio::awaitable<result<log_entry>>
basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::deliver_once(webhook_id id, object_event e,
                                std::shared_ptr<prepared_event const> ev) {
    std::shared_ptr<webhook const> hook = store_.get(id);
    if (!hook)
        co_return make_problem(error::not_found, "id", "no webhook with id " + std::to_string(id));
    auto const started = Clock::now();
    if (!ev) {
        if (auto r = prepare_event(e, started); !r)
            co_return r.error();
        payload body = serializer_.serialize(e);
        serializations_.fetch_add(1, std::memory_order_relaxed);
        ev = std::make_shared<prepared_event const>(prepared_event{std::move(e), std::move(body)});
    }
    delivery d{make_delivery_id(started), std::move(ev), hook, 0, started};
    auto entry = make_entry(d, *hook, started);
    entry.warning = attempt_warning(*hook, true);
    n_.attempts.fetch_add(1, std::memory_order_relaxed);
    n_.in_flight.fetch_add(1, std::memory_order_relaxed);
    http_request request = make_request(d, *hook);
    send_result r = co_await transport_.async_send(request);
    n_.in_flight.fetch_sub(1, std::memory_order_relaxed);
    detail::take_exchange(entry, request, r, Clock::now());
    std::tie(entry.result, entry.error) = decide_by_hand(r);
    // The caller links to the entry by its seq, which the sink assigns.
    if (auto const seq = detail::record_seq(log_, entry)) {
        entry.seq = seq;
        co_return entry;
    }
    // A sink that does not report it: find the entry again among the webhook's latest.
    log_query q;
    q.webhook = id;
    q.limit = 32;
    for (auto& logged : log_.query(q).entries)
        if (logged.delivery_id == entry.delivery_id)
            co_return std::move(logged);
    co_return entry;
}

} // namespace herald

#endif
