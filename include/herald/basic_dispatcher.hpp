#ifndef HERALD_BASIC_DISPATCHER_HPP
#define HERALD_BASIC_DISPATCHER_HPP

#include <herald/concepts.hpp>
#include <herald/delivery.hpp>
#include <herald/dispatcher_params.hpp>
#include <herald/engine/backlog.hpp>
#include <herald/engine/flights.hpp>
#include <herald/engine/lifecycle.hpp>
#include <herald/engine/retry.hpp>
#include <herald/engine/scheduler.hpp>
#include <herald/engine/wakeup.hpp>
#include <herald/log.hpp>
#include <herald/log/memory_log.hpp>
#include <herald/serializer/datagerry_serializer.hpp>
#include <herald/serializer/json_serializer.hpp>
#include <herald/serializer/serializer_set.hpp>
#include <herald/source/channel_source.hpp>
#include <herald/store/memory_store.hpp>
#include <herald/store/null_journal.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/basic_waitable_timer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/strand.hpp>

#include <atomic>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace herald {

class http_transport; // herald/transport/http_transport.hpp; include herald/dispatcher.hpp for the
                      // alias

namespace detail {
/// A store's journal type: its own, or null_journal.
template <class Store>
struct journal_of {
    using type = null_journal;
};
template <journaled_store Store>
struct journal_of<Store> {
    using type = std::remove_reference_t<decltype(std::declval<Store&>().journal())>;
};
} // namespace detail

/**
 * Delivers object events to the webhooks subscribed to them.
 *
 * The five policies (see herald/concepts.hpp) say where webhooks and deliveries are kept
 * (Store), where events come from (Source), what the body looks like (Serializer), how a
 * request is sent (Transport) and where attempts are recorded (Log). `herald::dispatcher`
 * is this class with the defaults.
 *
 * Thread safety: `publish`, `async_publish`, `stats`, `store()` and `log()` may be used from
 * any thread; everything else runs on the dispatcher's strand, so the io_context may be run
 * by one thread or several.
 *
 * Lifetimes: the dispatcher must outlive the completion of `async_run`.
 */
template <class Store = memory_store, class Source = channel_source,
          class Serializer = serializer_set<json_serializer, datagerry_serializer>,
          class Transport = http_transport, class Log = memory_log, class Clock = herald::clock>
class basic_dispatcher {
    static_assert(webhook_table<Store>, "Store must model herald::webhook_table");
    static_assert(event_source<Source>, "Source must model herald::event_source");
    static_assert(serializer<Serializer> || multi_format_serializer<Serializer>,
                  "Serializer must model herald::serializer or herald::multi_format_serializer");
    static_assert(transport<Transport>, "Transport must model herald::transport");
    static_assert(log_sink<Log>, "Log must model herald::log_sink");
    static_assert(std::is_same_v<typename Clock::time_point, time_point>,
                  "Clock must tell herald::time_point (herald::clock, or manual_clock in tests)");

public:
    /// A strand over the executor given to the constructor (held concretely when that is an
    /// io_context's executor, so that copying it never allocates).
    using executor_type = boost::asio::any_io_executor;
    using store_type = Store;
    using source_type = Source;
    using serializer_type = Serializer;
    using transport_type = Transport;
    using log_type = Log;
    /// Retries, circuit cool-downs and the drain deadline are timed on it (manual_clock in tests).
    using clock_type = Clock;
    /// Where deliveries wait outside memory: the store's own (`store.journal()`), or
    /// null_journal, which keeps nothing.
    using journal_type = typename detail::journal_of<Store>::type;
    /// Publishes are acknowledged once the journal has committed their deliveries.
    static constexpr bool durable = durable_journal<journal_type>;

    /**
     * The policy objects a dispatcher is built with, by name: those not given are
     * default-constructed, so `{.transport = t}` overrides the transport alone. (The source is
     * built by the dispatcher, from its strand and params.intake when it can be.)
     */
    struct policies {
        Store store{};
        Serializer serializer{};
        Transport transport{};
        Log log{};
    };

    /**
     * Builds a dispatcher on `ex`: `basic_dispatcher d(ex, params, {.store = s, .log = l})`.
     * @throws boost::system::system_error when params are invalid (the message names the
     * field), or when the journal cannot hand back what it holds.
     */
    explicit basic_dispatcher(boost::asio::any_io_executor ex, dispatcher_params params = {},
                              policies p = {})
        : basic_dispatcher(std::move(ex), std::move(params), std::move(p.store),
                           std::move(p.serializer), std::move(p.transport), std::move(p.log)) {}

    /// The same with the policies in the template's order (Source is left out: it is built).
    basic_dispatcher(boost::asio::any_io_executor ex, dispatcher_params params, Store store,
                     Serializer serializer = Serializer(), Transport transport = Transport(),
                     Log log = Log());

    basic_dispatcher(basic_dispatcher const&) = delete;
    basic_dispatcher& operator=(basic_dispatcher const&) = delete;
    /// Stops listening to the journal (a waking_journal calls no more once this begins).
    ~basic_dispatcher() {
        if constexpr (waking_journal<journal_type>)
            journal().on_claimable({});
    }

    executor_type get_executor() const noexcept { return strand_; }

    /**
     * Accepts an event for delivery without blocking: validates it, gives it an id and a time
     * if it has none, derives `changes` for an update that has none, and queues it.
     * @return the event id (the `webhook-id` every receiver sees), or a problem: an invalid
     * field (named), error::queue_full, error::stopped. Nothing is queued on a problem.
     * Thread safety: any thread.
     *
     * With a durable store (`Store::durable`), publish matches and serializes the event on the
     * calling thread and returns only once the store has committed its deliveries (many
     * publishes share one commit), so the event survives a crash once the id is returned. It
     * then blocks for that commit: prefer async_publish on threads that run I/O. A failed
     * commit is returned as the store's problem (error::storage_failed) and nothing is queued.
     */
    result<std::string> publish(object_event e) requires publishable_source<Source>;

    /**
     * Like publish, but waits for room when the queue is full; with a durable store, waits
     * (without blocking a thread) for the commit.
     * Thread safety: any thread; the awaiting coroutine may run on any executor.
     */
    boost::asio::awaitable<result<std::string>>
    async_publish(object_event e) requires publishable_source<Source>;

    /**
     * Runs the dispatcher until async_stop finishes draining. Completes with
     * `void(std::exception_ptr)`; nothing a receiver does makes it fail.
     * @param token any completion token (use_awaitable, detached, a callback, use_future).
     */
    template <class CompletionToken>
    auto async_run(CompletionToken&& token) {
        return boost::asio::co_spawn(strand_, run(), std::forward<CompletionToken>(token));
    }

    /**
     * Stops taking events and drains: deliveries due before `drain` elapses are attempted;
     * what is still pending then is logged as failed ("abandoned at shutdown") and listed in the
     * report, and attempts in flight are cancelled. Completes with `void(std::exception_ptr,
     * stop_report)` once async_run has finished.
     */
    template <class CompletionToken>
    auto async_stop(duration drain, CompletionToken&& token) {
        return boost::asio::co_spawn(strand_, stop(drain), std::forward<CompletionToken>(token));
    }

    /**
     * Sends `e` to the webhook `id` once, now: the admin page's Test button. The event is
     * prepared and serialized like a published one, but matches no other webhook.
     *
     * A one-off request a user asked for: it goes out even while the webhook is inactive or
     * disabled (checking an endpoint before switching it on is the point of a test; the log
     * entry says so in `warning`), it is not retried, it neither waits for nor feeds the
     * circuit breaker, and it does not count against the lane's cap.
     *
     * Completes with `void(std::exception_ptr, result<log_entry>)`: the attempt as logged
     * (`seq` set when the log can find it again), or a problem: error::not_found,
     * error::stopped (async_run not started, or stopping), an invalid event field.
     * Cancellation: async_stop cancels it like any attempt in flight.
     * Thread safety: any thread; the handler runs on its associated executor.
     */
    template <class CompletionToken>
    auto async_deliver_once(webhook_id id, object_event e, CompletionToken&& token) {
        return initiate_once(id, std::move(e), nullptr, std::forward<CompletionToken>(token));
    }

    /**
     * Like the other overload, with an event and body prepared elsewhere: redelivery sends the
     * logged attempt's event id (the `webhook-id`), body and content type again, under a new
     * delivery id.
     */
    template <class CompletionToken>
    auto async_deliver_once(webhook_id id, std::shared_ptr<prepared_event const> ev,
                            CompletionToken&& token) {
        return initiate_once(id, object_event{}, std::move(ev),
                             std::forward<CompletionToken>(token));
    }

    /// A snapshot of the counters. Thread safety: any thread.
    dispatcher_stats stats() const;

    Store& store() noexcept { return store_; }
    Store const& store() const noexcept { return store_; }
    Log& log() noexcept { return log_; }
    Log const& log() const noexcept { return log_; }
    Transport& transport() noexcept { return transport_; }
    /// The source, to look at (events go in through publish, which prepares them).
    Source const& source() const noexcept { return source_; }
    retry_policy const& retries() const noexcept { return retry_; }

    /// How many times the serializer ran: once per matched event and format in use, whatever
    /// the fan-out.
    std::uint64_t serializations() const noexcept { return serializations_.load(); }

    /// The payload formats a webhook's `format` may name, the default first (`herald`,
    /// `datagerry` with the default serializer_set).
    std::span<std::string_view const> formats() const noexcept {
        return detail::format_table<Serializer>::names(serializer_);
    }
    /// Whether `p.format` is one this dispatcher offers: the admin API and the relay check a
    /// webhook with it before storing it (the table cannot know the dispatcher's formats).
    result<void> check_format(webhook_params const& p) const;

private:
    static Source make_source(executor_type const& ex, channel_params const& p);

    // ---- The event pipeline (impl/basic_dispatcher.hpp): once per event, wherever it
    // enters. publish prepares it (or the intake, for a source of its own), admit matches it,
    // serializes it once and makes one delivery per webhook; the intake (accept), or for a
    // durable store the publishing thread (stage), queues them.
    std::shared_ptr<prepared_event const> prepare_body(object_event& e, std::size_t format);
    /// Matches `e` and fills `out` with its deliveries, grouped by format (each group one
    /// body and, with a backlog, one seq); the webhooks whose format is not offered go to
    /// `refused` (logged as failed by the caller, on the strand). True when `out` has any.
    bool admit(object_event& e, time_point now, webhook_list& hooks, std::vector<delivery>& out,
               std::vector<delivery>& refused);
    /// What a refused delivery's log entry says; fail_refused logs them as failed (strand).
    std::string format_refusal(webhook const& hook) const;
    void fail_refused(std::vector<delivery>& ds, time_point now);
    /// The backlog notes every seq of `ds` as come back (one per format group).
    void arrived_all(std::vector<delivery> const& ds);
    void accept(object_event& e, time_point now);
    void fail_unqueued(std::vector<delivery> const& ds, std::string const& why, time_point now,
                       bool no_attempt);
    /// Logs as failed, and removes, the deliveries of `ds` that impaired lanes would hold while
    /// what they hold fills max_parked (memory stores; a durable store keeps them).
    void shed_parked(std::vector<delivery>& ds, time_point now);

    // The durable publish path (docs/durability.md): the caller stages and commits the
    // deliveries, then hands them to the strand. committing_ counts the publishes between
    // staging and hand-over, so that a stopping dispatcher waits for them.
    result<std::vector<delivery>> stage(object_event& e);
    void hand_over(std::vector<delivery> ds, result<void> committed, bool log_failures);
    void take_committed(std::vector<delivery>& ds, result<void> const& committed,
                        bool log_failures);
    void release_commit();
    bool committing() const noexcept;

    template <class CompletionToken>
    auto initiate_once(webhook_id id, object_event e, std::shared_ptr<prepared_event const> ev,
                       CompletionToken&& token);
    boost::asio::awaitable<result<log_entry>>
    deliver_once(webhook_id id, object_event e, std::shared_ptr<prepared_event const> ev);

    // ---- The loops (impl/dispatcher_loops.hpp): intake, pump, flights, stop.
    boost::asio::awaitable<void> run();
    boost::asio::awaitable<stop_report> stop(duration drain);
    boost::asio::awaitable<void> intake_loop();
    boost::asio::awaitable<void> pump_loop();
    boost::asio::awaitable<void> flight(delivery d);
    /// One attempt of `d`; true when it did more than deliver (the pump must look again).
    boost::asio::awaitable<bool> attempt_once(delivery d);
    void start_flight(delivery d);
    void release_flight(std::size_t slot);
    void count_start(delivery const& d);
    void finish(delivery& d, log_entry entry, outcome o);
    void abandon_pending(time_point now);
    void abandon_unstartable(time_point now);
    void abandon(std::vector<delivery>& rest, time_point now);
    void wake_pump() { pump_.wake(); }
    void wake_intake() {
        if (intake_wait_.waiting() && has_room())
            intake_wait_.wake();
    }
    /// Backpressure: no new event while max_pending deliveries wait within their lanes'
    /// shares, or max_parked behind them in lanes that work (unless stopping: every event
    /// publish acknowledged must then be taken, to be delivered or logged). What a failing or
    /// stalled lane holds does not count: it is bounded by shedding instead (shed_parked).
    bool has_room() const noexcept {
        if (params_.max_pending == 0 || is_stopping(state_))
            return true;
        if (sched_.budgeted() >= params_.max_pending)
            return false;
        if (params_.max_parked == 0 || keeps_backlog)
            return true; // a backlog journal keeps what lanes have beyond their share
        // A durable store sheds nothing: what failing lanes hold stops the intake too, so that
        // memory stays bounded (the store keeps them).
        auto const bounded = durable ? sched_.parked() : sched_.behind();
        return bounded < params_.max_parked;
    }

    // The journal. With null_journal it is left out altogether; a journal of another kind gets
    // every delivery (async_enqueue) before the scheduler does.
    static constexpr bool journaled = !std::is_same_v<journal_type, null_journal>;
    journal_type& journal() noexcept {
        if constexpr (journaled_store<Store>)
            return store_.journal();
        else
            return null_journal_;
    }
    static constexpr std::size_t claim_page = 1024; // deliveries per claim
    /// Claims what nobody holds, every claim_interval (and at construction).
    std::optional<time_point> claim_more(time_point now);
    void take_claimed(result<std::vector<delivery>> r);

    // A backlog journal's backlog beyond memory (engine/backlog.hpp): the dispatcher places
    // each delivery in memory or leaves it in the journal, and starts the loads it plans.
    static constexpr bool keeps_backlog = backlog_journal<journal_type>;
    void place(delivery d, time_point now);
    void push_pending(delivery d, time_point now);
    std::optional<time_point> load_stored(time_point now);
    void take_loaded(detail::journal_backlog::load const& l, result<std::vector<delivery>> r);
    void leave_stored();
    void count_stored() { n_.stored.store(backlog_.stored(), std::memory_order_relaxed); }

    executor_type strand_;
    dispatcher_params params_;
    retry_policy retry_;
    [[no_unique_address]] Serializer serializer_;
    Store store_;
    Transport transport_;
    Log log_;
    Source source_;
    scheduler sched_;
    [[no_unique_address]] null_journal null_journal_;
    detail::journal_backlog backlog_;
    bool claiming_ = false;
    time_point next_claim_{};
    std::vector<detail::journal_backlog::load> loads_; // reused by load_stored

    // Where the pump waits for work (or a retry's time), and the intake for room.
    detail::wakeup<Clock> pump_;
    detail::wakeup<Clock> intake_wait_;
    boost::asio::basic_waitable_timer<Clock> stopped_timer_; // cancelled once, when done
    lifecycle state_ = lifecycle::idle;
    bool intake_done_ = false; // the source has nothing left (stopping)
    time_point deadline_ = time_point::max();
    time_point next_cull_{}; // while stopping: when to look again for what cannot go in time
    stop_report report_;
    detail::flights flights_;
    std::vector<delivery> batch_;              // reused by accept
    std::vector<delivery> refused_;            // reused by accept
    std::atomic<std::uint64_t> committing_{0}; // journaled only
    std::atomic<bool> intake_closed_{false};   // durable only: publish refuses

    struct counters {
        std::atomic<std::uint64_t> published{0}, unmatched{0}, rejected{0}, queued{0}, pending{0},
            in_flight{0}, retrying{0}, delivered{0}, failed{0}, attempts{0}, open_circuits{0},
            parked{0}, shed{0}, stored{0};
    };
    counters n_;
    std::atomic<std::uint64_t> serializations_{0};
};

} // namespace herald

#include <herald/impl/basic_dispatcher.hpp>
#include <herald/impl/dispatcher_commit.hpp>
#include <herald/impl/dispatcher_loops.hpp>
#include <herald/impl/dispatcher_once.hpp>

#endif
