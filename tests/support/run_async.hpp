#ifndef HERALD_TEST_RUN_ASYNC_HPP
#define HERALD_TEST_RUN_ASYNC_HPP

// Runs a coroutine test on an io_context with a deadline: the test fails, instead of hanging,
// when the coroutine does not finish in time. Exceptions from the coroutine reach Catch.

#include <catch2/catch.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <exception>

namespace herald::test {

template <class MakeAwaitable>
void run_async(boost::asio::io_context& io, MakeAwaitable&& make,
               std::chrono::milliseconds deadline = std::chrono::seconds(20)) {
    bool done = false;
    std::exception_ptr failure;
    boost::asio::co_spawn(io, make(), [&](std::exception_ptr e) {
        done = true;
        failure = e;
    });
    auto const until = std::chrono::steady_clock::now() + deadline;
    while (!done && std::chrono::steady_clock::now() < until) {
        if (io.stopped())
            io.restart();
        io.run_one_until(until);
    }
    if (!done) {
        io.stop();
        FAIL("the coroutine did not finish within " << deadline.count() << " ms");
    }
    if (failure)
        std::rethrow_exception(failure);
}

/// Waits, without blocking the io_context, until `pred` holds (run_async's deadline bounds it).
template <class Pred>
boost::asio::awaitable<void> until(Pred pred) {
    boost::asio::steady_timer t(co_await boost::asio::this_coro::executor);
    while (!pred()) {
        t.expires_after(std::chrono::milliseconds(2));
        co_await t.async_wait(boost::asio::use_awaitable);
    }
}

/// Lets a few milliseconds of real time pass: enough for anything already due to happen (a
/// timer on manual_clock looks at it every millisecond), to check that nothing else did.
inline boost::asio::awaitable<void>
settle(boost::asio::io_context&, std::chrono::milliseconds d = std::chrono::milliseconds(20)) {
    boost::asio::steady_timer t(co_await boost::asio::this_coro::executor, d);
    co_await t.async_wait(boost::asio::use_awaitable);
}

} // namespace herald::test

#endif
