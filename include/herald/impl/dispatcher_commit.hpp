#ifndef HERALD_IMPL_DISPATCHER_COMMIT_HPP
#define HERALD_IMPL_DISPATCHER_COMMIT_HPP

// basic_dispatcher's durable publish path (docs/durability.md): the publishing thread stages
// and commits an event's deliveries, then hands them to the strand.

#include <boost/asio/post.hpp>

#include <exception>
#include <string>
#include <vector>

namespace herald {

// ---- The durable publish path ----

template <class Store, class Source, class Serializer, class Transport, class Log, class Clock>
result<std::vector<delivery>>
basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::stage(object_event& e) {
    // Counted before the check, so that a stop that sees no commit in progress also makes
    // every later publish see the intake closed.
    committing_.fetch_add(1);
    if (intake_closed_.load()) {
        release_commit();
        return make_problem(error::stopped, "", "the dispatcher is stopping; no new events");
    }
    std::vector<delivery> ds, refused;
    webhook_list hooks;
    bool any = false; // deliveries staged: the caller commits them, then hands them over
    try {
        auto const now = Clock::now();
        any = admit(e, now, hooks, ds, refused);
        if (!refused.empty()) {
            // Logged on the strand, as a commit in progress of its own, counted before this
            // one is released: a stop never sees none in progress while they wait.
            committing_.fetch_add(1);
            try {
                boost::asio::post(strand_, [this, now, refused = std::move(refused)]() mutable {
                    fail_refused(refused, now);
                    release_commit();
                });
            } catch (...) {
                release_commit();
                throw;
            }
        }
    } catch (std::exception const& ex) {
        n_.rejected.fetch_add(1, std::memory_order_relaxed);
        auto why = make_problem(error::invalid_field, "",
                                std::string("the event could not be accepted: internal error: ") +
                                    ex.what());
        if (any)
            hand_over(std::move(ds), why, false); // their seqs come back on the strand
        else
            release_commit();
        return why;
    }
    if (!any)
        release_commit();
    return ds;
}

template <class Store, class Source, class Serializer, class Transport, class Log, class Clock>
void basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::hand_over(
    std::vector<delivery> ds, result<void> committed, bool log_failures) {
    if (!committed && !log_failures && !keeps_backlog) {
        release_commit(); // the caller has the problem; nothing was queued
        return;
    }
    boost::asio::post(strand_,
                      [this, ds = std::move(ds), committed = std::move(committed),
                       log_failures]() mutable { take_committed(ds, committed, log_failures); });
}

template <class Store, class Source, class Serializer, class Transport, class Log, class Clock>
void basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::take_committed(
    std::vector<delivery>& ds, result<void> const& committed, bool log_failures) {
    arrived_all(ds);
    if (committed) {
        if (is_abandoning(state_)) {
            report_.drained = false;
            if constexpr (durable) {
                // Past the drain: they wait in the journal for the next start.
                for (auto const& d : ds)
                    report_.abandoned.push_back(d.id_string());
            } else {
                n_.pending.fetch_add(ds.size(), std::memory_order_relaxed);
                abandon(ds, Clock::now());
            }
        } else {
            auto const now = Clock::now();
            n_.pending.fetch_add(ds.size(), std::memory_order_relaxed);
            for (auto& d : ds)
                place(std::move(d), now);
            n_.parked.store(sched_.parked(), std::memory_order_relaxed);
        }
    } else if (log_failures) {
        fail_unqueued(ds, "could not be queued: " + committed.error().what(), Clock::now(), true);
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
bool basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::committing()
    const noexcept {
    if constexpr (journaled)
        return committing_.load() != 0;
    else
        return false;
}

} // namespace herald

#endif
