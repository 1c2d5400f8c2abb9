// A custom event source: servers an application polls for (made up here), handed over two per
// poll, then the end. recording_transport sends nothing; exits 0 when each reached the webhook
// once, in order.
#include <herald/basic_dispatcher.hpp>
#include <herald/transport/recording_transport.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <iostream>
#include <string>
#include <vector>

namespace asio = boost::asio;
using namespace std::chrono_literals;

/// Built by the dispatcher from its strand's executor, which runs both members: no lock.
class polling_source {
public:
    explicit polling_source(asio::any_io_executor ex)
        : timer_(ex) {}

    /// Waits for the next poll and appends what it found; false at the end (no more reading).
    asio::awaitable<bool> async_receive(std::vector<herald::object_event>& batch) {
        auto const before = batch.size();
        timer_.expires_after(20ms);
        auto [ec] = co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));
        (void)ec; // cancelled by close
        for (int i = 0; i < 2 && !closed_ && next_ <= 6; ++i)
            batch.push_back(
                herald::object_event::created("srv-" + std::to_string(next_++), {{"rack", "B3"}}));
        done_ = batch.size() == before;
        co_return !done_;
    }
    void close() { // async_stop: no more polls
        closed_ = true;
        timer_.cancel();
    }
    bool done() const { return done_; }

private:
    asio::steady_timer timer_;
    int next_ = 1;
    bool done_ = false;
    bool closed_ = false;
};
static_assert(herald::event_source<polling_source>);

int main() {
    asio::io_context io;
    herald::recording_transport sent; // copies share the requests
    herald::basic_dispatcher<herald::memory_store, polling_source, herald::json_serializer,
                             herald::recording_transport>
        d(io.get_executor(), {}, {.transport = sent});
    if (!d.store().create({.name = "new servers",
                           .url = "http://cmdb.example/hooks",
                           .events = {herald::event_type::create}}))
        return 2;
    d.async_run(asio::detached);
    auto stop_at_end = [&]() -> asio::awaitable<void> { // named: it outlives its coroutine
        for (asio::steady_timer t(io); !d.source().done(); t.expires_after(5ms))
            co_await t.async_wait(asio::use_awaitable);
        co_await d.async_stop(5s, asio::use_awaitable); // delivers what the source gave
    };
    asio::co_spawn(io, stop_at_end(), asio::detached);
    io.run();

    auto const requests = sent.requests();
    for (std::size_t i = 0; i < requests.size(); ++i)
        if (requests[i].body->find("\"srv-" + std::to_string(i + 1) + "\"") == std::string::npos)
            return 1;
    std::cout << requests.size() << " servers delivered, in order\n";
    return requests.size() == 6 ? 0 : 1;
}
