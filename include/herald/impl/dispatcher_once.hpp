#ifndef HERALD_IMPL_DISPATCHER_ONCE_HPP
#define HERALD_IMPL_DISPATCHER_ONCE_HPP

// basic_dispatcher's one-off attempts: the Test and Redeliver buttons (async_deliver_once).

#include <herald/engine/attempt_decision.hpp>
#include <herald/engine/request.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>

#include <exception>
#include <memory>
#include <tuple>

namespace herald {

// ---- One-off attempts: the Test and Redeliver buttons ----

template <class Store, class Source, class Serializer, class Transport, class Log, class Clock>
template <class CompletionToken>
auto basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::initiate_once(
    webhook_id id, object_event e, std::shared_ptr<prepared_event const> ev,
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
            auto const slot = flights_.acquire();
            boost::asio::co_spawn(
                strand_, deliver_once(hook, std::move(event), std::move(prepared)),
                boost::asio::bind_cancellation_slot(
                    flights_.signal(slot).slot(),
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
basic_dispatcher<Store, Source, Serializer, Transport, Log, Clock>::deliver_once(
    webhook_id id, object_event e, std::shared_ptr<prepared_event const> ev) {
    std::shared_ptr<webhook const> hook = store_.get(id);
    if (!hook)
        co_return make_problem(error::not_found, "id", "no webhook with id " + std::to_string(id));
    auto const started = Clock::now();
    if (!ev) {
        auto const format = detail::format_table<Serializer>::find(serializer_, hook->format);
        if (!format)
            co_return check_format(*hook).error();
        if (auto r = prepare_event(e, started); !r)
            co_return r.error();
        ev = prepare_body(e, *format);
    }
    delivery d{make_delivery_id(started), std::move(ev), hook, 0, started};
    auto entry = detail::make_entry(d, hook, started);
    entry.warning = attempt_warning(*hook, true);
    n_.attempts.fetch_add(1, std::memory_order_relaxed);
    n_.in_flight.fetch_add(1, std::memory_order_relaxed);
    http_request request = detail::make_request(d, *hook, started, entry.delivery_id);
    send_result r = co_await transport_.async_send(request);
    n_.in_flight.fetch_sub(1, std::memory_order_relaxed);
    detail::take_exchange(entry, request, r, Clock::now());
    std::tie(entry.result, entry.error) = decide_by_hand(r);
    // The caller links to the entry by its seq, which the sink assigns.
    entry.seq = log_.record(entry);
    co_return entry;
}

} // namespace herald

#endif
