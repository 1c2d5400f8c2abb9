#ifndef HERALD_ENGINE_WAKEUP_HPP
#define HERALD_ENGINE_WAKEUP_HPP

#include <herald/time.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/basic_waitable_timer.hpp>
#include <boost/asio/experimental/channel.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace herald::detail {

/**
 * Where one loop of the dispatcher sleeps: until a time, or until woken. Used from one strand.
 *
 * It sleeps on the timer only when there is a time to wake at (a retry is due), otherwise on a
 * signal: re-arming a timer per wake-up costs a timerfd_settime call whenever it is the only
 * timer of its clock, which made one system call per delivery.
 */
template <class Clock>
class wakeup {
public:
    explicit wakeup(boost::asio::any_io_executor const& ex)
        : timer_(ex)
        , signal_(ex, 1) {}

    bool waiting() const noexcept { return waiting_; }

    /// Sleeps until `at` (time_point::max(): until woken), or until `wake`.
    boost::asio::awaitable<void> sleep_until(time_point at) {
        constexpr auto tuple = boost::asio::as_tuple(boost::asio::use_awaitable);
        waiting_ = true;
        on_signal_ = at == time_point::max();
        if (on_signal_) {
            auto [ec] = co_await signal_.async_receive(tuple);
            (void)ec;
        } else {
            timer_.expires_at(at);
            auto [ec] = co_await timer_.async_wait(tuple);
            (void)ec;
        }
        waiting_ = false;
    }

    /// Ends the sleep, if there is one.
    void wake() {
        if (!waiting_)
            return;
        waiting_ = false;
        if (on_signal_)
            signal_.try_send(boost::system::error_code{});
        else
            timer_.cancel();
    }

private:
    boost::asio::basic_waitable_timer<Clock> timer_;
    boost::asio::experimental::channel<void(boost::system::error_code)> signal_;
    bool waiting_ = false;
    bool on_signal_ = false;
};

} // namespace herald::detail

#endif
