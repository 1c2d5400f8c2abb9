#include <herald/detail/background_writer.hpp>
#include <herald/detail/post_back.hpp>

#include <catch2/catch.hpp>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

// One namespace a file: the unit tests build as one translation unit (unity).
namespace herald_test_background_writer {

using namespace std::chrono_literals;
using herald::detail::background_writer;

namespace {

/// What the writer thread saw, read by the test thread once the writer is flushed or closed
/// (Catch's assertions stay on the test thread).
struct sink {
    std::mutex m{};
    std::condition_variable cv{};
    bool held = false; // the writer waits in write() while true
    bool waiting = false;
    std::vector<std::vector<int>> batches{};
    std::vector<std::size_t> urgent{};
    std::vector<int> written{};
    std::size_t per_call = 0; // items done per call; 0: all
    std::thread::id thread{};

    std::size_t write(std::span<int> items, std::size_t urgent_count) {
        std::unique_lock lock(m);
        thread = std::this_thread::get_id();
        waiting = true;
        cv.notify_all();
        cv.wait(lock, [&] { return !held; });
        waiting = false;
        batches.emplace_back(items.begin(), items.end());
        urgent.push_back(urgent_count);
        auto const n = per_call == 0 ? items.size() : std::min(per_call, items.size());
        written.insert(written.end(), items.begin(), items.begin() + long(n));
        return n;
    }
    void hold() {
        std::lock_guard lock(m);
        held = true;
    }
    /// Waits until the writer is inside write(), held.
    bool wait_held() {
        std::unique_lock lock(m);
        return cv.wait_for(lock, 10s, [&] { return waiting; });
    }
    void release() {
        {
            std::lock_guard lock(m);
            held = false;
        }
        cv.notify_all();
    }
};

void start(background_writer<int>& w, sink& s, herald::detail::background_writer_params p = {}) {
    w.start([&s](std::span<int> items, std::size_t urgent) { return s.write(items, urgent); }, p);
}

} // namespace

TEST_CASE("background_writer batches what is queued while it writes", "[writer]") {
    sink s;
    background_writer<int> w;
    start(w, s, {.max_batch = 4});
    s.hold();
    w.push(0);
    REQUIRE(s.wait_held()); // the first item alone, the writer held inside write()
    for (int i = 1; i <= 9; ++i)
        w.push(i);
    CHECK(w.queued() == 10);
    s.release();
    w.flush();
    CHECK(w.queued() == 0);
    REQUIRE(s.batches.size() == 4);
    CHECK(s.batches[0] == std::vector<int>{0});
    CHECK(s.batches[1] == std::vector<int>{1, 2, 3, 4}); // max_batch at most
    CHECK(s.batches[2] == std::vector<int>{5, 6, 7, 8});
    CHECK(s.batches[3] == std::vector<int>{9});
    CHECK(s.written == std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
    CHECK(s.thread != std::this_thread::get_id());
}

TEST_CASE("background_writer puts urgent items first, and what was not done back in order",
          "[writer]") {
    sink s;
    background_writer<int> w;
    start(w, s);
    s.hold();
    w.push(0);
    REQUIRE(s.wait_held());
    {
        std::lock_guard lock(s.m);
        s.per_call = 2; // the sink does two items a call, the rest comes back
    }
    w.push(1);
    w.push(2);
    w.push(3);
    w.push_urgent(100);
    w.push_urgent(101);
    w.push_urgent(102);
    s.release();
    w.flush();
    REQUIRE(s.batches.size() >= 4);
    CHECK(s.batches[1] == std::vector<int>{100, 101, 102, 1, 2, 3});
    CHECK(s.urgent[1] == 3);
    // The undone urgent one goes back ahead of the others, still counted as urgent.
    CHECK(s.batches[2] == std::vector<int>{102, 1, 2, 3});
    CHECK(s.urgent[2] == 1);
    CHECK(s.batches[3] == std::vector<int>{2, 3});
    CHECK(s.urgent[3] == 0);
    CHECK(s.written == std::vector<int>{0, 100, 101, 102, 1, 2, 3});
}

TEST_CASE("background_writer's flush waits for what was queued before it, urgent or not",
          "[writer]") {
    sink s;
    background_writer<int> w;
    start(w, s);
    w.flush(); // nothing queued: at once
    s.hold();
    w.push(1);
    REQUIRE(s.wait_held());
    w.push_urgent(2);
    std::atomic<bool> flushed{false};
    std::thread t([&] {
        w.flush();
        flushed = true;
    });
    std::this_thread::sleep_for(50ms);
    CHECK_FALSE(flushed);
    s.release();
    t.join();
    CHECK(flushed);
    std::lock_guard lock(s.m);
    CHECK(s.written == std::vector<int>{1, 2});
}

TEST_CASE("background_writer writes everything queued when it closes", "[writer]") {
    sink s;
    {
        background_writer<int> w;
        start(w, s, {.max_batch = 3});
        s.hold();
        w.push(0);
        REQUIRE(s.wait_held());
        for (int i = 1; i < 100; ++i)
            (i % 10 ? w.push(i) : w.push_urgent(i));
        s.release();
    } // the destructor closes: drains, then joins
    CHECK(s.written.size() == 100);
    background_writer<int> never_started;
    never_started.close(); // nothing to stop
    never_started.close();
}

TEST_CASE("background_writer runs calls and ticks on its thread", "[writer]") {
    sink s;
    std::atomic<int> ticks{0};
    std::thread::id tick_thread{};
    background_writer<int> w;
    w.start([&s](std::span<int> items, std::size_t urgent) { return s.write(items, urgent); },
            {.tick_interval = herald::duration(1)},
            [&] {
                tick_thread = std::this_thread::get_id();
                ++ticks;
            });
    std::thread::id call_thread{};
    w.push(7);
    w.call([&] { call_thread = std::this_thread::get_id(); });
    CHECK(call_thread != std::thread::id());
    CHECK(call_thread != std::this_thread::get_id());
    auto const until = std::chrono::steady_clock::now() + 10s;
    while (ticks < 3 && std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(1ms);
    CHECK(ticks >= 3);
    w.flush();
    w.close();
    CHECK(tick_thread == call_thread);
    CHECK(s.thread == call_thread);
    // After close, a call runs on the caller's thread.
    w.call([&] { call_thread = std::this_thread::get_id(); });
    CHECK(call_thread == std::this_thread::get_id());
}

TEST_CASE("write_failures counts, keeps the last reason and hands out the first once",
          "[writer][errors]") {
    herald::detail::write_failures f;
    CHECK(f.count() == 0);
    CHECK(f.last().empty());
    CHECK_FALSE(f.take_first().has_value());
    f.note(herald::make_problem(herald::error::storage_failed, "path", "first"));
    f.note(herald::make_problem(herald::error::storage_failed, "path", "second"));
    CHECK(f.count() == 2);
    CHECK(f.last() == "path: second");
    auto first = f.take_first();
    REQUIRE(first.has_value());
    CHECK(first->message == "first");
    CHECK_FALSE(f.take_first().has_value()); // taken
    f.note(herald::problem{{}, {}, "third"});
    CHECK(f.count() == 3);
    CHECK(f.last() == "third");
    CHECK(f.take_first()->message == "third");
}

TEST_CASE("post_back completes the handler on its executor, keeping it busy until then",
          "[writer][post_back]") {
    boost::asio::io_context io;
    auto strand = boost::asio::make_strand(io);
    std::thread::id ran_on{};
    bool on_strand = false;
    int got = 0, calls = 0;
    auto done = herald::detail::post_back<int>(boost::asio::bind_executor(strand, [&](int v) {
        ran_on = std::this_thread::get_id();
        on_strand = strand.running_in_this_thread();
        got = v;
        ++calls;
    }));
    auto copy = done;
    std::atomic<bool> returned{false};
    // The io_context has work (the handler to come): run() does not return before it ran.
    std::thread runner([&] {
        io.run();
        returned = true;
    });
    std::this_thread::sleep_for(50ms);
    CHECK_FALSE(returned);
    auto const runner_id = runner.get_id();
    std::thread writer([&] { done(42); }); // as a writer thread does
    writer.join();
    runner.join();
    CHECK(returned);
    CHECK(got == 42);
    CHECK(on_strand);
    CHECK(ran_on == runner_id);
    copy(7); // the copies share the handler: the first call took it
    io.restart();
    io.run();
    CHECK(calls == 1);
    CHECK(got == 42);
}

} // namespace herald_test_background_writer
