#ifndef HERALD_CHANNEL_SOURCE_HPP
#define HERALD_CHANNEL_SOURCE_HPP

#include <herald/concepts.hpp>
#include <herald/error.hpp>
#include <herald/event.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <deque>
#include <memory>
#include <mutex>
#include <vector>

namespace herald {

struct channel_params {
    std::size_t capacity = 65'536; ///< events accepted and not yet taken by the dispatcher
    std::size_t batch = 256;       ///< events the dispatcher takes at once
};

/**
 * The default event source: an in-process bounded queue fed by `try_publish` (never blocks;
 * a full queue is an error) and `async_publish` (waits for room).
 *
 * Thread safety: `try_publish`, `async_publish` and `close` may be called from any thread;
 * `async_receive` by one consumer at a time (the dispatcher).
 */
class channel_source {
    // A one-slot thread-safe signal: a send when full is a no-op, a wake is never lost.
    using signal = boost::asio::experimental::concurrent_channel<void(boost::system::error_code)>;

public:
    explicit channel_source(boost::asio::any_io_executor ex, channel_params p = {})
        : p_(p)
        , wake_(std::make_unique<signal>(ex, 1)) {
        if (p_.capacity == 0)
            p_.capacity = 1;
        if (p_.batch == 0)
            p_.batch = 1;
        state_ = std::make_unique<state>();
    }

    /**
     * Queues an event without blocking.
     * @return error::queue_full when the queue is full, error::stopped once closed; the event
     * is left untouched in both cases.
     */
    result<void> try_publish(object_event& e) {
        std::unique_lock lock(state_->mutex);
        if (state_->closed)
            return stopped();
        if (state_->queue.size() >= p_.capacity)
            return make_problem(error::queue_full, "",
                                "the intake queue is full (" + std::to_string(p_.capacity) +
                                    " events); retry later or use async_publish");
        state_->queue.push_back(std::move(e));
        bool const wake = std::exchange(state_->receiver_waiting, false);
        lock.unlock();
        if (wake)
            wake_->try_send(boost::system::error_code{});
        return {};
    }

    /// Queues an event, waiting for room when the queue is full.
    boost::asio::awaitable<result<void>> async_publish(object_event& e) {
        auto ex = co_await boost::asio::this_coro::executor;
        for (;;) {
            std::shared_ptr<signal> room;
            {
                auto r = try_publish(e);
                if (r || r.error().code != error::queue_full)
                    co_return r;
                std::lock_guard lock(state_->mutex);
                // the queue may have drained between the two locks: try again at once
                if (state_->queue.size() < p_.capacity || state_->closed)
                    continue;
                room = std::make_shared<signal>(ex, 1);
                state_->space_waiters.push_back(room);
            }
            auto [ec] =
                co_await room->async_receive(boost::asio::as_tuple(boost::asio::use_awaitable));
            (void)ec;
        }
    }

    /**
     * Moves up to `batch` queued events into `out`, waiting while the queue is empty.
     * @return false once the source is closed and every queued event has been taken.
     */
    boost::asio::awaitable<bool> async_receive(std::vector<object_event>& out) {
        for (;;) {
            std::vector<std::shared_ptr<signal>> waiters;
            {
                std::lock_guard lock(state_->mutex);
                auto& q = state_->queue;
                if (!q.empty()) {
                    auto const n = std::min(q.size(), p_.batch);
                    for (std::size_t i = 0; i < n; ++i) {
                        out.push_back(std::move(q.front()));
                        q.pop_front();
                    }
                    waiters.swap(state_->space_waiters);
                } else if (state_->closed) {
                    co_return false;
                } else {
                    state_->receiver_waiting = true;
                }
            }
            if (!out.empty()) {
                for (auto& w : waiters)
                    w->try_send(boost::system::error_code{});
                co_return true;
            }
            auto [ec] =
                co_await wake_->async_receive(boost::asio::as_tuple(boost::asio::use_awaitable));
            (void)ec;
        }
    }

    /// Refuses new events; those already queued are still handed to the dispatcher.
    void close() {
        std::vector<std::shared_ptr<signal>> waiters;
        {
            std::lock_guard lock(state_->mutex);
            state_->closed = true;
            state_->receiver_waiting = false;
            waiters.swap(state_->space_waiters);
        }
        wake_->try_send(boost::system::error_code{});
        for (auto& w : waiters)
            w->try_send(boost::system::error_code{});
    }

    /// Events queued and not yet taken.
    std::size_t size() const {
        std::lock_guard lock(state_->mutex);
        return state_->queue.size();
    }

    channel_params const& params() const { return p_; }

private:
    static problem stopped() {
        return make_problem(error::stopped, "", "the dispatcher is stopping; no new events");
    }

    struct state {
        mutable std::mutex mutex;
        std::deque<object_event> queue{};
        std::vector<std::shared_ptr<signal>> space_waiters{};
        bool receiver_waiting = false;
        bool closed = false;
    };

    channel_params p_;
    std::unique_ptr<signal> wake_;
    std::unique_ptr<state> state_;
};

static_assert(waiting_source<channel_source>);

} // namespace herald

#endif
