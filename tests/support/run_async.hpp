#ifndef HERALD_TEST_RUN_ASYNC_HPP
#define HERALD_TEST_RUN_ASYNC_HPP

// Runs a coroutine test on an io_context with a deadline: the test fails, instead of hanging,
// when the coroutine does not finish in time. Exceptions from the coroutine reach Catch.

#include <catch2/catch.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

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

} // namespace herald::test

#endif
