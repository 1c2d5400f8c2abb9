#include "run_async.hpp"

#include <herald/basic_dispatcher.hpp>
#include <herald/source/jsonl_source.hpp>
#include <herald/transport/recording_transport.hpp>

#include <catch2/catch.hpp>

#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <unistd.h>

#include <chrono>
#include <sstream>
#include <string>
#include <vector>

// One namespace a file: the unit tests build as one translation unit (unity).
namespace herald_test_jsonl_source {

using namespace std::chrono_literals;
using herald::jsonl_line;
using herald::jsonl_source;
using herald::test::run_async;

namespace {

std::string const create_line =
    R"({"type": "create", "object_id": 1, "after": {"hostname": "web-01"}})";

/// Every line of `src` until the end, as the relay takes them.
boost::asio::awaitable<std::vector<jsonl_line>> all_lines(jsonl_source& src,
                                                          std::size_t* calls = nullptr) {
    std::vector<jsonl_line> out;
    for (;;) {
        auto const before = out.size();
        bool const more = co_await src.async_receive_lines(out);
        if (!more)
            break;
        if (calls)
            ++*calls;
        CHECK(out.size() > before); // a receive that returns true hands something over
    }
    co_return out;
}

std::vector<jsonl_line> read_all(std::string const& text, herald::jsonl_source_params p = {}) {
    boost::asio::io_context io;
    std::istringstream in(text);
    jsonl_source src(io.get_executor(), in, std::move(p));
    std::vector<jsonl_line> lines;
    run_async(io, [&]() -> boost::asio::awaitable<void> { lines = co_await all_lines(src); });
    CHECK(src.at_end());
    return lines;
}

/// A pipe whose ends close with it.
struct pipe_fds {
    int read_end = -1;
    int write_end = -1;
    pipe_fds() {
        int fds[2];
        REQUIRE(::pipe(fds) == 0);
        read_end = fds[0];
        write_end = fds[1];
    }
    pipe_fds(pipe_fds const&) = delete;
    pipe_fds& operator=(pipe_fds const&) = delete;
    ~pipe_fds() {
        close_write();
        ::close(read_end);
    }
    void put(std::string const& s) const {
        REQUIRE(::write(write_end, s.data(), s.size()) == static_cast<ssize_t>(s.size()));
    }
    void close_write() {
        if (write_end >= 0)
            ::close(write_end);
        write_end = -1;
    }
};

} // namespace

TEST_CASE("jsonl_source: good lines become prepared events, in order, with their numbers",
          "[jsonl_source]") {
    auto const lines = read_all(
        create_line + "\n" +
        R"({"type": "update", "object_id": "2", "before": {"ip": "a"}, "after": {"ip": "b"}})" +
        "\n" + R"({"type": "delete", "object_id": "3", "id": "evt-3", "before": {}})" + "\n");
    REQUIRE(lines.size() == 3);
    for (std::size_t i = 0; i < lines.size(); ++i) {
        INFO("line " << i + 1);
        CHECK(lines[i].number == i + 1);
        CHECK_FALSE(lines[i].too_long);
        REQUIRE(lines[i].event.has_value());
        CHECK_FALSE(lines[i].event->id.empty()); // prepared: an id and a time
        CHECK(lines[i].event->occurred_at != herald::time_point{});
    }
    CHECK(lines[0].event->type == herald::event_type::create);
    CHECK(lines[0].event->object_id == "1");
    CHECK(lines[1].event->type == herald::event_type::update);
    REQUIRE(lines[1].event->changes); // derived for an update without them
    CHECK(lines[1].event->changes->contains("ip"));
    CHECK(lines[2].event->id == "evt-3");
}

TEST_CASE("jsonl_source: a bad line is handed over with its number and a problem naming the field",
          "[jsonl_source][validation]") {
    auto const lines = read_all(create_line + "\n" +                               // 1
                                "{\"type\": \"create\", oops}\n" +                 // 2
                                R"({"type": "explode", "object_id": 1})" + "\n" +  // 3
                                R"({"type": "delete", "object_id": 1})" + "\n" +   // 4
                                R"({"type": "create", "type": "delete"})" + "\n" + // 5
                                R"({"type": "create", "object_id": 1, "colour": 1})" + "\n" +
                                create_line + "\n"); // 7
    REQUIRE(lines.size() == 7);
    CHECK(lines[0].event.has_value());
    CHECK(lines[6].event.has_value());
    auto problem = [&](std::size_t number) {
        REQUIRE(lines[number - 1].number == number);
        REQUIRE_FALSE(lines[number - 1].event.has_value());
        return lines[number - 1].event.error().what();
    };
    CHECK(problem(2).starts_with("not valid JSON: "));
    CHECK(problem(3).starts_with("type: unknown event type 'explode'"));
    CHECK(problem(4).starts_with("before: is required for a delete event"));
    CHECK(problem(5) == "duplicate key 'type'");
    CHECK(problem(6) == "colour: is not a known field");
}

TEST_CASE("jsonl_source: blank lines are skipped and counted; CRLF ends a line too",
          "[jsonl_source]") {
    auto const lines = read_all("\n   \n\t\r\n" + create_line + "\r\n\r\n" + create_line +
                                "\n\n\n"); // 9 lines, the last three blank
    REQUIRE(lines.size() == 2);
    CHECK(lines[0].number == 4);
    CHECK(lines[1].number == 6);
    CHECK(lines[0].event.has_value());
    CHECK(lines[1].event.has_value());

    boost::asio::io_context io;
    std::istringstream in("\n" + create_line + "\n\n \n");
    jsonl_source src(io.get_executor(), in);
    run_async(io, [&]() -> boost::asio::awaitable<void> { co_await all_lines(src); });
    CHECK(src.lines_read() == 4); // the blank lines at the end too
}

TEST_CASE("jsonl_source: a line over max_line_bytes is skipped and reported; the rest is read",
          "[jsonl_source][validation]") {
    std::string const huge = R"({"type": "create", "object_id": 1, "after": {"x": ")" +
                             std::string(300'000, 'x') + "\"}}";
    auto const lines = read_all(create_line + "\n" + huge + "\n" + create_line + "\n" + huge,
                                {.max_line_bytes = 1000}); // the last without a newline
    REQUIRE(lines.size() == 4);
    CHECK(lines[0].event.has_value());
    CHECK(lines[1].too_long);
    REQUIRE_FALSE(lines[1].event.has_value());
    CHECK(lines[1].event.error().what() == "longer than max_line_bytes (1000 bytes): skipped");
    CHECK(lines[2].event.has_value());
    CHECK(lines[2].number == 3);
    CHECK(lines[3].too_long);
    CHECK(lines[3].number == 4);

    // Exactly at the limit is not too long.
    auto const exact = read_all(create_line + "\n", {.max_line_bytes = create_line.size()});
    REQUIRE(exact.size() == 1);
    CHECK(exact[0].event.has_value());
}

TEST_CASE("jsonl_source: a last line without a newline counts; an empty input ends at once",
          "[jsonl_source]") {
    auto const lines = read_all(create_line + "\n" + create_line);
    REQUIRE(lines.size() == 2);
    CHECK(lines[1].number == 2);
    CHECK(read_all("").empty());
}

TEST_CASE("jsonl_source: hands over at most batch lines at once, every line once, in order",
          "[jsonl_source]") {
    std::string text;
    for (int i = 1; i <= 100; ++i)
        text +=
            R"({"type": "create", "object_id": )" + std::to_string(i) + R"(, "after": {}})" + "\n";
    boost::asio::io_context io;
    std::istringstream in(text);
    jsonl_source src(io.get_executor(), in, {.read_ahead = 4, .batch = 3});
    std::size_t calls = 0;
    std::vector<jsonl_line> lines;
    run_async(io,
              [&]() -> boost::asio::awaitable<void> { lines = co_await all_lines(src, &calls); });
    REQUIRE(lines.size() == 100);
    CHECK(calls >= 34); // 100 lines, 3 at a time
    for (std::size_t i = 0; i < lines.size(); ++i)
        CHECK(lines[i].event->object_id == std::to_string(i + 1));
}

TEST_CASE("jsonl_source: as an event_source, events only; bad lines go to on_problem",
          "[jsonl_source]") {
    boost::asio::io_context io;
    std::istringstream in(create_line + "\nnot json\n" + R"({"type": "create"})" + "\n" +
                          create_line + "\n");
    std::vector<std::pair<std::size_t, std::string>> told;
    jsonl_source src(io.get_executor(), in,
                     {.on_problem = [&](std::size_t line, herald::problem const& p) {
                         told.emplace_back(line, p.what());
                     }});
    std::vector<herald::object_event> events;
    run_async(io, [&]() -> boost::asio::awaitable<void> {
        for (;;) {
            auto const before = events.size();
            bool const more = co_await src.async_receive(events);
            if (!more)
                break;
            CHECK(events.size() > before); // at least one event per receive
        }
    });
    CHECK(events.size() == 2);
    REQUIRE(told.size() == 2);
    CHECK(told[0].first == 2);
    CHECK(told[0].second.starts_with("not valid JSON"));
    CHECK(told[1].first == 3);
    CHECK(told[1].second == "object_id: is required");
    CHECK(src.problems() == 2);
    CHECK(src.at_end());
}

TEST_CASE("jsonl_source: a file descriptor is read as lines arrive; the end of input ends it",
          "[jsonl_source]") {
    boost::asio::io_context io;
    pipe_fds p;
    jsonl_source src(io.get_executor(), {.fd = p.read_end});
    // Each co_await binds a named variable: GCC 12 miscompiles it inside Catch's macros.
    run_async(io, [&]() -> boost::asio::awaitable<void> {
        std::vector<jsonl_line> got;
        p.put(create_line + "\n" + create_line.substr(0, 10)); // the second line comes in parts
        bool const more1 = co_await src.async_receive_lines(got);
        CHECK(more1);
        REQUIRE(got.size() == 1);
        CHECK(got[0].number == 1);
        p.put(create_line.substr(10) + "\n");
        got.clear();
        bool const more2 = co_await src.async_receive_lines(got);
        CHECK(more2);
        REQUIRE(got.size() == 1);
        CHECK(got[0].number == 2);
        CHECK(got[0].event.has_value());
        p.close_write();
        got.clear();
        bool const more3 = co_await src.async_receive_lines(got);
        CHECK_FALSE(more3);
        CHECK(got.empty());
    });
    CHECK(src.at_end());
    CHECK(src.lines_read() == 2);
}

TEST_CASE("jsonl_source: close ends a wait for input; what was read is still handed over",
          "[jsonl_source][shutdown]") {
    boost::asio::io_context io;
    pipe_fds p; // its writer never closes: only close() ends the reading
    jsonl_source src(io.get_executor(), {.fd = p.read_end});
    run_async(
        io,
        [&]() -> boost::asio::awaitable<void> {
            std::vector<jsonl_line> got;
            p.put(create_line + "\n" + create_line + "\n");
            while (got.size() < 2) {
                bool const more4 = co_await src.async_receive_lines(got);
                CHECK(more4);
            }
            src.close();
            got.clear();
            bool const more5 = co_await src.async_receive_lines(got);
            CHECK_FALSE(more5); // within 100 ms, not never
            CHECK(got.empty());
        },
        5s);
    CHECK_FALSE(src.at_end()); // closed, not the end of the input
}

TEST_CASE("jsonl_source: closed before any receive, it reads nothing", "[jsonl_source][shutdown]") {
    boost::asio::io_context io;
    pipe_fds p;
    p.put(create_line + "\n");
    jsonl_source src(io.get_executor(), {.fd = p.read_end});
    src.close();
    std::vector<herald::object_event> events;
    run_async(io, [&]() -> boost::asio::awaitable<void> {
        bool const more6 = co_await src.async_receive(events);
        CHECK_FALSE(more6);
    });
    CHECK(events.empty());
    CHECK(src.lines_read() == 0);
}

namespace {
int dispatcher_input = -1; // the dispatcher builds its source: this is how it finds the pipe

struct pipe_source : jsonl_source {
    explicit pipe_source(boost::asio::any_io_executor ex)
        : jsonl_source(std::move(ex), {.fd = dispatcher_input}) {}
};
} // namespace

TEST_CASE("jsonl_source: a dispatcher's Source, delivering every line's event",
          "[jsonl_source][dispatcher]") {
    boost::asio::io_context io;
    pipe_fds p;
    dispatcher_input = p.read_end;
    herald::recording_transport sent;
    herald::basic_dispatcher<herald::memory_store, pipe_source, herald::json_serializer,
                             herald::recording_transport>
        d(io.get_executor(), {}, {.transport = sent});
    auto const hook = d.store().create(
        {.name = "all", .url = "https://example.com/hook", .events = {herald::event_type::create}});
    REQUIRE(hook.has_value());
    d.async_run(boost::asio::detached);
    for (int i = 1; i <= 5; ++i)
        p.put(R"({"type": "create", "object_id": "srv-)" + std::to_string(i) +
              R"(", "after": {}})" + "\n");
    p.close_write();
    run_async(io, [&]() -> boost::asio::awaitable<void> {
        co_await herald::test::until([&] { return d.source().at_end(); });
        co_await herald::test::until([&] { return d.stats().delivered == 5; });
        co_await d.async_stop(5s, boost::asio::use_awaitable);
    });
    auto const requests = sent.requests();
    REQUIRE(requests.size() == 5);
    for (std::size_t i = 0; i < requests.size(); ++i)
        CHECK(requests[i].body->find("\"srv-" + std::to_string(i + 1) + "\"") != std::string::npos);
}

} // namespace herald_test_jsonl_source
