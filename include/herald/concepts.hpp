#ifndef HERALD_CONCEPTS_HPP
#define HERALD_CONCEPTS_HPP

#include <herald/delivery.hpp>
#include <herald/error.hpp>
#include <herald/event.hpp>
#include <herald/log.hpp>
#include <herald/transport.hpp>
#include <herald/webhook.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

/**
 * The five policies of basic_dispatcher, as the expressions each must support. Every default
 * model is checked against its concept where it is defined (see the static_asserts at the end
 * of this file's includers, e.g. herald/dispatcher.hpp). docs/policies.md shows custom models.
 */
namespace herald {

/// The active webhooks subscribed to one event type, shared and immutable.
using webhook_list = std::shared_ptr<std::vector<std::shared_ptr<webhook const>> const>;

/**
 * The webhooks table and the delivery journal.
 *
 * - `s.create(params)` -> `result<webhook>`: validates, stores, assigns id and times.
 * - `s.get(id)` -> `std::shared_ptr<webhook const>`: null when there is none.
 * - `s.list()` -> `std::vector<webhook>`, by id.
 * - `s.update(id, params)` -> `result<webhook>`; `s.remove(id)` -> `result<void>`.
 * - `s.disable(id, reason)` -> `result<webhook>`: herald switches a webhook off (410 Gone,
 *   failing for too long); the reason stays on the webhook until an update activates it.
 * - `s.match(event)` -> `webhook_list`: the active webhooks subscribed to the event's type.
 * - `s.enqueue(deliveries)` -> `result<void>`: records new deliveries; a durable store
 *   persists them before returning, and the event counts as accepted only then.
 * - `s.reschedule(d)`: the delivery failed and waits for `d.due`;
 *   `s.complete(d, outcome)`: it ended (delivered or failed).
 * - `s.claim(now, max)` -> `std::vector<delivery>`: due deliveries nobody holds (after a
 *   restart, or left by another process); the in-memory store has none.
 * Thread safety: calls come from the dispatcher's strand and, for the table, from any thread.
 */
template <class S>
concept webhook_store = requires(S& s, S const& cs, webhook_params p, webhook_id id,
                                 object_event const& e, std::span<delivery const> ds,
                                 delivery const& d, outcome o, time_point now, std::size_t max) {
    { s.create(p) } -> std::same_as<result<webhook>>;
    { cs.get(id) } -> std::same_as<std::shared_ptr<webhook const>>;
    { cs.list() } -> std::same_as<std::vector<webhook>>;
    { s.update(id, p) } -> std::same_as<result<webhook>>;
    { s.remove(id) } -> std::same_as<result<void>>;
    { s.disable(id, std::string()) } -> std::same_as<result<webhook>>;
    { cs.match(e) } -> std::same_as<webhook_list>;
    { s.enqueue(ds) } -> std::same_as<result<void>>;
    s.reschedule(d);
    s.complete(d, o);
    { s.claim(now, max) } -> std::same_as<std::vector<delivery>>;
};

namespace detail {
/// A store that persists deliveries before enqueue returns says so: `static constexpr bool
/// durable = true` (sqlite_store).
template <class S>
constexpr bool is_durable() {
    if constexpr (requires { S::durable; })
        return S::durable;
    else
        return false;
}
} // namespace detail

/**
 * A durable store that can give a webhook's deliveries back from its journal, so that the
 * dispatcher keeps in memory only what a lane has room for and leaves the rest of a backlog in
 * the store (docs/durability.md, "A backlog larger than memory"):
 * - `s.journal_seq()` -> `std::uint64_t`: the highest delivery::seq the journal held when it
 *   was opened; the dispatcher numbers the events it enqueues from the next one, and the store
 *   keeps that number (every delivery of one event has the same).
 * - `s.async_load(webhook, after, upto, max, token)`, completing with
 *   `void(result<std::vector<delivery>>)`: the webhook's queued deliveries with
 *   after < seq <= upto, at most `max`, in seq order, each with its seq.
 * sqlite_store models it.
 */
template <class S>
concept backlog_store =
    detail::is_durable<S>() && requires(S& s, webhook_id id, std::uint64_t n, std::size_t max) {
        { s.journal_seq() } -> std::same_as<std::uint64_t>;
        s.async_load(id, n, n, max, boost::asio::use_awaitable);
    };

/**
 * Where events come from.
 *
 * - `co_await src.async_receive(batch)` -> `bool`: appends at least one event to `batch`, waiting
 *   while there is none; false once the source is closed and has nothing left.
 * - `src.close()`: no new events; what is already queued is still received.
 * The dispatcher constructs the source from `(executor, channel_params)` when it can (its strand
 * is the executor), so a source's internal waits run where the dispatcher runs.
 */
template <class S>
concept event_source = requires(S& src, std::vector<object_event>& batch) {
    { src.async_receive(batch) } -> std::same_as<boost::asio::awaitable<bool>>;
    src.close();
};

/**
 * An event source the application pushes into: `src.try_publish(e)` -> `result<void>`,
 * thread-safe and non-blocking; it takes the event only on success.
 */
template <class S>
concept publishable_source = event_source<S> && requires(S& src, object_event& e) {
    { src.try_publish(e) } -> std::same_as<result<void>>;
};

/**
 * Turns an event into the body every subscribed webhook receives.
 * - `ser.serialize(event)` -> `payload`: body, content type, extra headers. Called once per
 *   event, whatever the number of webhooks.
 */
template <class S>
concept serializer = requires(S const& ser, object_event const& e) {
    { ser.serialize(e) } -> std::same_as<payload>;
};

/**
 * Sends one request and brings back what happened.
 * - `co_await t.async_send(request)` -> `send_result`: never throws for anything the receiver
 *   does; a failure is a send_result with `ec` set. Must honour the request's timeouts and
 *   should stop promptly when the awaiting coroutine is cancelled. The request is an lvalue
 *   that outlives the awaited call: take it by `const&` (no copy) or by value.
 */
template <class T>
concept transport = requires(T& t, http_request const& req) {
    { t.async_send(req) } -> std::same_as<boost::asio::awaitable<send_result>>;
};

/**
 * Keeps every attempt and answers "View Logs".
 * - `log.record(entry)` -> `std::uint64_t`: stores one attempt and returns the `seq` it
 *   assigned (increasing; the paging cursor, and how Test and Redeliver link to the entry).
 *   Must not block for long: it runs on the dispatcher's strand.
 * - `log.query(q)` -> `log_page`: newest first, filtered and paged; any thread.
 */
template <class L>
concept log_sink = requires(L& log, L const& clog, log_entry e, log_query const& q) {
    { log.record(std::move(e)) } -> std::same_as<std::uint64_t>;
    { clog.query(q) } -> std::same_as<log_page>;
};

} // namespace herald

#endif
