#ifndef HERALD_IMPL_BASIC_DISPATCHER_HPP
#define HERALD_IMPL_BASIC_DISPATCHER_HPP

// basic_dispatcher: construction, publish and the event pipeline. The durable publish path is in
// impl/dispatcher_commit.hpp, the one-off attempts of the Test and Redeliver buttons in
// impl/dispatcher_once.hpp, the loops in impl/dispatcher_loops.hpp.

#include <herald/engine/attempt_decision.hpp>
#include <herald/engine/request.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include <exception>
#include <tuple>
#include <type_traits>

namespace herald {

namespace detail {
// A strand over an io_context's executor type fits in any_io_executor's small buffer; a
// strand over any_io_executor does not, and every copy of it (one per handler) allocates.
inline boost::asio::any_io_executor make_dispatcher_strand(boost::asio::any_io_executor const& ex) {
    using io_executor = boost::asio::io_context::executor_type;
    if (auto const* io = ex.target<io_executor>())
        return boost::asio::make_strand(*io);
    return boost::asio::make_strand(ex);
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
} // namespace detail

template <class Store, class Source, class Serializer, class Transport, class Log, class Clock>
basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::basic_dispatcher(
    boost::asio::any_io_executor ex, dispatcher_params params, Store store, Serializer serializer,
    Transport transport, Log log)
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
    if (params_.addresses) {
        if constexpr (address_guarded<Store>)
            store_.guard(*params_.addresses);
        if constexpr (address_guarded<Transport>)
            transport_.guard(*params_.addresses);
    }
    if constexpr (keeps_backlog)
        backlog_.open(journal().journal_seq());
    if constexpr (journaled) {
        // Deliveries the journal holds from an earlier run, claimed before any publish can
        // reach the strand (a lane's backlog beyond its share stays in the journal). The
        // constructing thread waits for them; later claims run on the strand (claim_more).
        auto const now = Clock::now();
        for (;;) {
            auto r = journal().async_claim(now, claim_page, boost::asio::use_future).get();
            if (!r)
                throw boost::system::system_error(r.error().code, "the journal's claim failed: " +
                                                                      r.error().what());
            n_.pending.fetch_add(r->size(), std::memory_order_relaxed);
            for (auto& d : *r) {
                if (d.attempts > 0)
                    n_.retrying.fetch_add(1, std::memory_order_relaxed);
                place(std::move(d), now);
            }
            if (r->size() < claim_page)
                break;
        }
        next_claim_ = now + params_.claim_interval;
        n_.parked.store(sched_.parked(), std::memory_order_relaxed);
        if constexpr (waking_journal<journal_type>) {
            // Deliveries became claimable (another process's leases lapsed, or it stopped and
            // gave its own back): claim at once rather than at the next interval.
            journal().on_claimable([this] {
                boost::asio::post(strand_, [this] {
                    next_claim_ = std::min(next_claim_, Clock::now());
                    wake_pump();
                });
            });
        }
    }
}

template <class Store, class Source, class Serializer, class Transport, class Log, class Clock>
Source basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::make_source(
    executor_type const& ex, channel_params const& p) {
    if constexpr (std::is_constructible_v<Source, boost::asio::any_io_executor, channel_params>)
        return Source(boost::asio::any_io_executor(ex), p);
    else if constexpr (std::is_constructible_v<Source, boost::asio::any_io_executor>)
        return Source(boost::asio::any_io_executor(ex));
    else
        return Source();
}

template <class Store, class Source, class Serializer, class Transport, class Log, class Clock>
result<std::string> basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::publish(
    object_event e) requires publishable_source<Source> {
    if (auto r = prepare_event(e, Clock::now()); !r)
        return r.error();
    std::string id = e.id;
    if constexpr (durable) {
        auto ds = stage(e);
        if (!ds)
            return ds.error();
        if (!ds->empty()) {
            auto r = journal().async_enqueue(*ds, boost::asio::use_future).get(); // the commit
            hand_over(std::move(*ds), r, false);
            if (!r)
                return r.error();
        }
    } else {
        if (auto r = source_.try_publish(e); !r)
            return r.error();
        n_.queued.fetch_add(1, std::memory_order_relaxed);
    }
    n_.published.fetch_add(1, std::memory_order_relaxed);
    return id;
}

template <class Store, class Source, class Serializer, class Transport, class Log, class Clock>
boost::asio::awaitable<result<std::string>>
basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::async_publish(
    object_event e) requires publishable_source<Source> {
    if (auto r = prepare_event(e, Clock::now()); !r)
        co_return r.error();
    std::string id = e.id;
    if constexpr (durable) {
        auto ds = stage(e);
        if (!ds)
            co_return ds.error();
        if (!ds->empty()) {
            auto commit = journal().async_enqueue(*ds, boost::asio::use_awaitable);
            result<void> r = co_await std::move(commit);
            hand_over(std::move(*ds), r, false);
            if (!r)
                co_return r.error();
        }
    } else {
        result<void> r;
        if constexpr (waiting_source<Source>)
            r = co_await source_.async_publish(e);
        else
            r = source_.try_publish(e);
        if (!r)
            co_return r.error();
        n_.queued.fetch_add(1, std::memory_order_relaxed);
    }
    n_.published.fetch_add(1, std::memory_order_relaxed);
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

// ---- The event pipeline ----

template <class Store, class Source, class Serializer, class Transport, class Log, class Clock>
std::shared_ptr<prepared_event const>
basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::prepare_body(
    object_event& e, std::size_t format) {
    payload body = detail::format_table<Serializer>::serialize(serializer_, e, format);
    serializations_.fetch_add(1, std::memory_order_relaxed);
    // The body carries the objects from now on: the deliveries (and the log entries that share
    // the body) keep only the event's metadata alive, not its JSON.
    e.before.reset();
    e.after.reset();
    e.changes.reset();
    return std::make_shared<prepared_event const>(prepared_event{std::move(e), std::move(body)});
}

template <class Store, class Source, class Serializer, class Transport, class Log, class Clock>
result<void> basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::check_format(
    webhook_params const& p) const {
    if (detail::format_table<Serializer>::find(serializer_, p.format))
        return {};
    return make_problem(error::invalid_field, "format",
                        "'" + p.format + "' is not a format this dispatcher offers (" +
                            detail::list_formats(formats()) + ")");
}

template <class Store, class Source, class Serializer, class Transport, class Log, class Clock>
std::string basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::format_refusal(
    webhook const& hook) const {
    return "not sent: the webhook's format " + check_format(hook).error().message;
}

template <class Store, class Source, class Serializer, class Transport, class Log, class Clock>
bool basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::admit(
    object_event& e, time_point now, webhook_list& hooks, std::vector<delivery>& out,
    std::vector<delivery>& refused) {
    out.clear();
    refused.clear();
    hooks = store_.match(e);
    if (!hooks || hooks->empty()) {
        n_.unmatched.fetch_add(1, std::memory_order_relaxed);
        return false;
    }
    using table = detail::format_table<Serializer>;
    constexpr std::size_t none = std::size_t(-1); // a format this dispatcher does not offer
    auto format_at = [&](std::size_t i) {
        auto const f = table::find(serializer_, (*hooks)[i]->format);
        return f ? *f : none;
    };
    auto add = [&](std::shared_ptr<prepared_event const> const& ev,
                   std::shared_ptr<webhook const> const& h) {
        out.push_back(delivery{make_delivery_id(now), ev, h, 0, now + retry_.initial_delay(*h)});
    };
    // Most events go out in one format: one body, shared by every delivery.
    auto const first = format_at(0);
    bool uniform = first != none;
    for (std::size_t i = 1; uniform && i < hooks->size(); ++i)
        uniform = format_at(i) == first;
    if (uniform) {
        out.reserve(hooks->size());
        auto const ev = prepare_body(e, first);
        for (auto const& h : *hooks)
            add(ev, h);
    } else {
        // One body per format in use, all serialized before the event lets go of its JSON, in
        // the order of their first webhook; the deliveries are grouped by format (a durable
        // journal keeps one row per body).
        std::vector<std::size_t> format_of(hooks->size());
        std::vector<std::shared_ptr<prepared_event>> bodies(formats().size());
        std::vector<std::size_t> order;
        for (std::size_t i = 0; i < hooks->size(); ++i) {
            auto const k = format_of[i] = format_at(i);
            if (k != none && !bodies[k]) {
                bodies[k] = std::make_shared<prepared_event>(
                    prepared_event{object_event{}, table::serialize(serializer_, e, k)});
                serializations_.fetch_add(1, std::memory_order_relaxed);
                order.push_back(k);
            }
        }
        e.before.reset();
        e.after.reset();
        e.changes.reset();
        for (auto const k : order)
            bodies[k]->event = e;
        out.reserve(hooks->size());
        for (auto const k : order)
            for (std::size_t i = 0; i < hooks->size(); ++i)
                if (format_of[i] == k)
                    add(bodies[k], (*hooks)[i]);
        // The refused keep the event's metadata for their log entries.
        auto const meta =
            order.empty() ? std::make_shared<prepared_event const>(prepared_event{std::move(e), {}})
                          : std::shared_ptr<prepared_event const>(bodies[order[0]]);
        for (std::size_t i = 0; i < hooks->size(); ++i)
            if (format_of[i] == none)
                refused.push_back(delivery{make_delivery_id(now), meta, (*hooks)[i], 0, now});
        if (out.empty())
            return false;
    }
    if constexpr (keeps_backlog) {
        // Last: from here the seqs reach the strand's backlog (take_committed, or accept's
        // own note), or what has come back after them would wait for them for ever. One seq
        // per body: a durable journal keeps one row per body.
        std::uint64_t seq = 0;
        prepared_event const* last = nullptr;
        for (auto& d : out) {
            if (d.event.get() != last) {
                seq = backlog_.next_seq();
                last = d.event.get();
            }
            d.seq = seq;
        }
    }
    return true;
}

template <class Store, class Source, class Serializer, class Transport, class Log, class Clock>
void basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::arrived_all(
    std::vector<delivery> const& ds) {
    if constexpr (keeps_backlog) {
        std::uint64_t last = 0;
        for (auto const& d : ds)
            if (d.seq != last)
                backlog_.arrived(last = d.seq);
    }
}

template <class Store, class Source, class Serializer, class Transport, class Log, class Clock>
void basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::fail_unqueued(
    std::vector<delivery> const& ds, std::string const& why, time_point now, bool no_attempt) {
    // Deliveries that cannot be queued still end in the log, each as failed.
    for (auto const& d : ds) {
        auto entry = detail::make_entry(d, d.hook, now);
        if (no_attempt)
            entry.attempt = 0;
        entry.error = why;
        n_.failed.fetch_add(1, std::memory_order_relaxed);
        log_.record(std::move(entry));
    }
}

template <class Store, class Source, class Serializer, class Transport, class Log, class Clock>
void basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::fail_refused(
    std::vector<delivery>& ds, time_point now) {
    // Each leaves `ds` as it is logged: on an exception, what is left was not.
    while (!ds.empty()) {
        auto const d = std::move(ds.back());
        ds.pop_back();
        auto entry = detail::make_entry(d, d.hook, now);
        entry.attempt = 0;
        entry.error = format_refusal(*d.hook);
        n_.failed.fetch_add(1, std::memory_order_relaxed);
        log_.record(std::move(entry));
    }
}

template <class Store, class Source, class Serializer, class Transport, class Log, class Clock>
void basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::accept(object_event& e,
                                                                                time_point now) {
    if constexpr (publishable_source<Source>) {
        n_.queued.fetch_sub(1, std::memory_order_relaxed); // publish prepared it
    } else if (auto r = prepare_event(e, now); !r) {
        n_.rejected.fetch_add(1, std::memory_order_relaxed); // a source of its own: checked here
        return;
    }
    webhook_list hooks;
    bool owe_seqs = false; // this event's seqs, not yet noted as come back
    bool admitted = false; // matched and serialized: batch_ and refused_ hold every webhook
    try {
        bool const any = admit(e, now, hooks, batch_, refused_);
        admitted = true;
        owe_seqs = keeps_backlog && any;
        if (!refused_.empty())
            fail_refused(refused_, now);
        if (!any)
            return;
        if constexpr (!durable)
            shed_parked(batch_, now); // a durable journal keeps them all
        if constexpr (journaled) {
            // No disk on the strand: the deliveries join the scheduler once the journal has
            // them (take_committed notes the seq).
            if (batch_.empty())
                return;
            std::vector<delivery> ds(batch_.begin(), batch_.end());
            committing_.fetch_add(1);
            owe_seqs = false;
            journal().async_enqueue(
                std::move(ds), boost::asio::bind_executor(strand_, [this, mine = std::move(batch_)](
                                                                       result<void> r) mutable {
                    take_committed(mine, r, true);
                }));
            batch_ = {};
            return;
        }
    } catch (std::exception const& ex) {
        if (owe_seqs)
            arrived_all(batch_); // never reached the store
        auto const why = std::string("internal error: ") + ex.what();
        if (!batch_.empty() || !refused_.empty()) {
            fail_unqueued(batch_, why, now, false);
            fail_unqueued(refused_, why, now, false); // those fail_refused had not logged
            batch_.clear();
            refused_.clear();
        } else if (!admitted && hooks && !hooks->empty()) {
            // Matched, not serialized: one entry per webhook, with the event's metadata.
            auto const ev =
                std::make_shared<prepared_event const>(prepared_event{std::move(e), {}});
            for (auto const& h : *hooks)
                batch_.push_back(delivery{make_delivery_id(now), ev, h, 0, now});
            fail_unqueued(batch_, why, now, false);
            batch_.clear();
        } else if (!admitted) {
            n_.rejected.fetch_add(1, std::memory_order_relaxed);
        }
        return;
    }
    n_.pending.fetch_add(batch_.size(), std::memory_order_relaxed);
    for (auto& d : batch_)
        place(std::move(d), now);
    batch_.clear();
    n_.parked.store(sched_.parked(), std::memory_order_relaxed);
}

template <class Store, class Source, class Serializer, class Transport, class Log, class Clock>
void basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::shed_parked(
    std::vector<delivery>& ds, time_point now) {
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
        auto entry = detail::make_entry(d, d.hook, now);
        entry.attempt = 0;
        entry.error = detail::describe_shed(why, sched_, d.target(), params_);
        n_.failed.fetch_add(1, std::memory_order_relaxed);
        n_.shed.fetch_add(1, std::memory_order_relaxed);
        log_.record(std::move(entry));
    }
    ds.erase(keep, ds.end());
}

} // namespace herald

#endif
