#ifndef HERALD_CONCEPTS_HPP
#define HERALD_CONCEPTS_HPP

#include <herald/address_policy.hpp>
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
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
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
 * The webhooks table as the dispatcher reads it: on every event and every attempt, so all
 * three answer from memory (a durable table keeps a write-through cache).
 *
 * - `t.match(event)` -> `webhook_list`: the active webhooks subscribed to the event's type.
 * - `t.get(id)` -> `std::shared_ptr<webhook const>`: the webhook as it is now, null when
 *   there is none (every attempt goes to the webhook as it is now).
 * - `t.disable(id, reason)` -> `result<webhook>`: herald switches a webhook off (410 Gone,
 *   failing for too long); the reason stays on it until an update activates it. Must not wait
 *   for a disk or a network: it is called on the dispatcher's strand.
 * Thread safety: any thread.
 */
template <class T>
concept webhook_table = requires(T& t, T const& ct, webhook_id id, object_event const& e) {
    { ct.match(e) } -> std::same_as<webhook_list>;
    { ct.get(id) } -> std::same_as<std::shared_ptr<webhook const>>;
    { t.disable(id, std::string()) } -> std::same_as<result<webhook>>;
};

/**
 * The webhooks table as users edit it (the admin server, the relay's file): a webhook_table
 * plus
 * - `t.create(params)` -> `result<webhook>`: validates, stores, assigns id and times;
 * - `t.update(id, params)` -> `result<webhook>`; `t.remove(id)` -> `result<void>`: nothing
 *   changes when they return a problem;
 * - `t.list()` -> `std::vector<webhook>`, by id.
 * Thread safety: any thread.
 */
template <class T>
concept editable_webhook_table = webhook_table<T> &&
    requires(T& t, T const& ct, webhook_params p, webhook_id id) {
    { t.create(p) } -> std::same_as<result<webhook>>;
    { t.update(id, p) } -> std::same_as<result<webhook>>;
    { t.remove(id) } -> std::same_as<result<void>>;
    { ct.list() } -> std::same_as<std::vector<webhook>>;
};

/**
 * The delivery journal: where deliveries wait outside memory, so that they outlive the
 * process or are shared by several. Its operations never block the dispatcher's strand: the
 * ones that wait for a disk or a network are asynchronous (any completion token), the others
 * queue their write.
 *
 * - `j.async_enqueue(deliveries, token)`, completing with `void(result<void>)`: records new
 *   deliveries (a `std::vector<delivery>`); a durable journal completes once they are
 *   committed, and the event counts as accepted only then.
 * - `j.async_claim(now, max, token)`, completing with
 *   `void(result<std::vector<delivery>>)`: at most `max` deliveries nobody holds (left by an
 *   earlier run, or by another process), each handed out once; a journal may hand out only
 *   those due by `now` (postgres_store), or all whatever their due time (sqlite_store: the
 *   dispatcher waits for due times itself). The dispatcher claims when it is built and then
 *   every dispatcher_params::claim_interval.
 * - `j.reschedule(d)`: the delivery failed and waits for `d.due`;
 *   `j.complete(d, outcome)`: it ended (delivered or failed). Both queue their write.
 * A store that has a journal gives it by `store.journal()` (journaled_store); a store that has
 * none gets null_journal, which keeps nothing: the dispatcher's memory is then the queue.
 */
template <class J>
concept delivery_journal = requires(J& j, std::vector<delivery> ds, delivery const& d, outcome o,
                                    time_point now, std::size_t max) {
    j.async_enqueue(std::move(ds), boost::asio::use_awaitable);
    j.async_claim(now, max, boost::asio::use_awaitable);
    j.reschedule(d);
    j.complete(d, o);
};

/// A journal whose enqueue completes only once the deliveries are committed, so that they
/// survive a crash: `static constexpr bool durable = true;` (sqlite_store). The dispatcher
/// then acknowledges a publish after the commit, and sheds nothing.
template <class J>
concept durable_journal = delivery_journal<J> && requires {
    requires J::durable;
};

/**
 * A durable journal that can give a webhook's deliveries back, so that the dispatcher keeps
 * in memory only what a lane has room for and leaves the rest of a backlog in the journal
 * (docs/durability.md, "A backlog larger than memory"):
 * - `j.journal_seq()` -> `std::uint64_t`: the highest delivery::seq the journal held when it
 *   was opened; the dispatcher numbers the bodies it enqueues from the next one, and the
 *   journal keeps that number (every delivery of one body has the same: an event sent in two
 *   formats has two bodies, each its own number, consecutive in the enqueued vector).
 * - `j.async_load(webhook, after, upto, max, token)`, completing with
 *   `void(result<std::vector<delivery>>)`: the webhook's queued deliveries with
 *   after < seq <= upto, at most `max`, in seq order, each with its seq.
 */
template <class J>
concept backlog_journal = durable_journal<J> &&
    requires(J& j, webhook_id id, std::uint64_t n, std::size_t max) {
    { j.journal_seq() } -> std::same_as<std::uint64_t>;
    j.async_load(id, n, n, max, boost::asio::use_awaitable);
};

/**
 * A journal shared by several processes that can tell when deliveries became claimable (a
 * process stopped and gave its own back, or its leases lapsed and were requeued):
 * `j.on_claimable(f)`, `f` a `std::function<void()>` the journal calls from any thread, and
 * no more once `on_claimable({})` has returned. The dispatcher then claims at once instead of
 * at its next claim_interval (postgres_store: a notification, with the interval as backstop).
 */
template <class J>
concept waking_journal = delivery_journal<J> && requires(J& j, std::function<void()> f) {
    j.on_claimable(std::move(f));
};

/// A store with a delivery journal of its own: `store.journal()` returns it (by reference).
template <class S>
concept journaled_store = webhook_table<S> && requires(S& s) {
    requires std::is_lvalue_reference_v<decltype(s.journal())>;
    requires delivery_journal<std::remove_reference_t<decltype(s.journal())>>;
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

/// A source that can wait for room: `co_await src.async_publish(e)` -> `result<void>`
/// (channel_source). async_publish uses it; otherwise it tries once.
template <class S>
concept waiting_source = publishable_source<S> && requires(S& src, object_event& e) {
    { src.async_publish(e) } -> std::same_as<boost::asio::awaitable<result<void>>>;
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

/// A transport that keeps connections: `t.close_idle()` closes the idle ones (the dispatcher
/// calls it when async_run ends, so that the io_context's run() can return).
template <class T>
concept pooling_transport = transport<T> && requires(T& t) {
    t.close_idle();
};

/// A policy that checks destinations against an address_policy (memory_store at create and
/// update, http_transport at connect): `p.guard(addresses)`. dispatcher_params::addresses
/// sets the one policy on the table and the transport.
template <class P>
concept address_guarded = requires(P& p, address_policy const& a) {
    p.guard(a);
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
