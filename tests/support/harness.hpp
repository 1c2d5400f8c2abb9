#ifndef HERALD_TEST_HARNESS_HPP
#define HERALD_TEST_HARNESS_HPP

// A dispatcher running on its own io_context, run by two threads (the dispatcher's strand and the
// transport's connections must be right on a multi-threaded io_context: the tsan preset checks
// it), for integration tests that publish from the test thread and watch a loopback_server and
// the log.

#include <herald/basic_dispatcher.hpp>
#include <herald/transport/http_transport.hpp>

#include <catch2/catch.hpp>

#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <chrono>
#include <thread>
#include <vector>

namespace herald::test {

using namespace std::chrono_literals;

/// Short retry delays so that retry tests finish in well under a second.
inline dispatcher_params fast_params(std::vector<duration> schedule = {0ms, 50ms}) {
    dispatcher_params p;
    p.retry.schedule = std::move(schedule);
    return p;
}

template <class Serializer = json_serializer>
struct harness {
    using dispatcher_type =
        basic_dispatcher<memory_store, channel_source, Serializer, http_transport, memory_log>;

    static constexpr int io_threads = 2;

    boost::asio::io_context io{};
    dispatcher_type d{};
    std::vector<std::thread> threads{};
    bool stopped = false;

    /// The SSRF guard stays on; the tests' receivers on 127.0.0.1 are all it lets through.
    static address_policy loopback_only() {
        address_policy a;
        a.allow.push_back(cidr::parse("127.0.0.1/32").value());
        return a;
    }
    static http_transport_params with_loopback(http_transport_params tp) {
        tp.addresses.allow.push_back(cidr::parse("127.0.0.1/32").value());
        return tp;
    }

    explicit harness(dispatcher_params p = fast_params(), http_transport_params tp = {},
                     bool start = true)
        : d(io.get_executor(), std::move(p),
            {.store = memory_store({loopback_only(), false}),
             .transport = http_transport(with_loopback(std::move(tp)))}) {
        if (start)
            run();
    }

    void run() {
        d.async_run(boost::asio::detached);
        for (int i = 0; i < io_threads; ++i)
            threads.emplace_back([this] { io.run(); });
    }

    ~harness() {
        if (!stopped && !threads.empty())
            stop(0ms);
        for (auto& t : threads)
            t.join();
    }

    webhook hook(std::string name, std::string url, event_type_set events = event_type_set::all(),
                 bool active = true, std::optional<duration> timeout = std::nullopt) {
        webhook_params p;
        p.name = std::move(name);
        p.url = std::move(url);
        p.events = events;
        p.active = active;
        p.timeout = timeout;
        auto r = d.store().create(std::move(p));
        if (!r)
            FAIL("create webhook: " << r.error().what());
        return *r;
    }

    std::string publish(object_event e) {
        auto r = d.publish(std::move(e));
        if (!r)
            FAIL("publish: " << r.error().what());
        return *r;
    }

    stop_report stop(duration drain = 5s) {
        stopped = true;
        auto f = d.async_stop(drain, boost::asio::use_future);
        REQUIRE(f.wait_for(drain + 10s) == std::future_status::ready);
        return f.get();
    }

    /// Waits until the log holds at least `n` entries matching `q`; returns them, oldest first.
    std::vector<log_entry> wait_log(std::size_t n, log_query q = {},
                                    std::chrono::milliseconds timeout = 10s) {
        q.limit = log_query::max_limit;
        auto const until = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            auto page = d.log().query(q);
            if (page.entries.size() >= n || std::chrono::steady_clock::now() > until) {
                std::reverse(page.entries.begin(), page.entries.end());
                return page.entries;
            }
            std::this_thread::sleep_for(5ms);
        }
    }
};

} // namespace herald::test

#endif
