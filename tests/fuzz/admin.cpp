// The admin server's request handling, from the socket in: the input is what a client sends on
// one loopback connection to a fresh admin::server (memory store with one webhook, a metered
// memory log, recording_transport: nothing leaves the process), which then half-closes. The
// connection's whole path runs: the request parser and its limits, Expect, authentication,
// routing, every handler (pipelined requests in one input reach several). Properties, besides
// not crashing: the server answers within its deadlines, every answer is well-formed HTTP, and
// none is a 500 (a handler that threw: with a memory store nothing else gives one).
#include "fuzz.hpp"

#include <herald/admin/server.hpp>
#include <herald/basic_dispatcher.hpp>
#include <herald/log/memory_log.hpp>
#include <herald/log/metered_log.hpp>
#include <herald/transport/recording_transport.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>

#include <memory>
#include <string>
#include <vector>

namespace herald_fuzz_admin {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using dispatcher_type =
    herald::basic_dispatcher<herald::memory_store, herald::channel_source, herald::json_serializer,
                             herald::recording_transport, herald::metered_log<herald::memory_log>>;

inline constexpr char const* token = "fuzz-token-0123456789abcdef";

inline herald::webhook_params first_hook() {
    herald::webhook_params p;
    p.name = "first";
    p.url = "https://receiver.test/hook";
    p.events = herald::event_type_set::all();
    p.secrets.push_back(herald::secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").value());
    p.headers.push_back({"X-Api-Key", "abcdef0123456789"});
    return p;
}

// Sends the input, half-closes, and reads until the server closes.
inline asio::awaitable<void> client(tcp::endpoint to, std::string_view input, std::string& got) {
    // shared with the writer, which may still be running when the reader is done
    auto const s = std::make_shared<tcp::socket>(co_await asio::this_coro::executor);
    auto [cec] = co_await s->async_connect(to, asio::as_tuple(asio::use_awaitable));
    if (cec)
        herald_fuzz::broken("admin", "cannot connect to the server", cec.message());
    // the writer runs beside the reader: answers to pipelined requests may fill the socket
    asio::co_spawn(
        s->get_executor(),
        [s, input]() -> asio::awaitable<void> {
            auto [wec, wn] = co_await asio::async_write(
                *s, asio::buffer(input.data(), input.size()), asio::as_tuple(asio::use_awaitable));
            (void)wn;
            boost::system::error_code ignored;
            if (!wec)
                s->shutdown(tcp::socket::shutdown_send, ignored);
        },
        asio::detached);
    char chunk[16 * 1024];
    for (;;) {
        auto [rec, n] =
            co_await s->async_read_some(asio::buffer(chunk), asio::as_tuple(asio::use_awaitable));
        if (got.size() < 4 * 1024 * 1024)
            got.append(chunk, n);
        if (rec)
            break;
    }
}

// Which of the requests the input holds, in order, are HEAD (their answers have no body), as
// far as the input parses as requests: the server answers the first malformed or incomplete
// one and closes.
inline std::vector<bool> head_requests(std::string_view input) {
    std::vector<bool> out;
    boost::beast::flat_buffer buffer;
    auto const n = boost::asio::buffer_copy(buffer.prepare(input.size()),
                                            boost::asio::buffer(input.data(), input.size()));
    buffer.commit(n);
    while (buffer.size() > 0) {
        boost::beast::http::request_parser<boost::beast::http::string_body> parser;
        parser.body_limit(64 * 1024 * 1024);
        parser.header_limit(64 * 1024);
        parser.eager(true);
        boost::system::error_code ec;
        while (!parser.is_done()) {
            auto const used = parser.put(buffer.data(), ec);
            buffer.consume(used);
            if (ec || used == 0)
                break;
        }
        // The server answers some requests from their head alone (a 400 for two Host
        // fields, a 401, a 413 from Content-Length), the body never read: such an answer to
        // HEAD has no body either, however much of the request's body the input holds.
        if (parser.is_header_done())
            out.push_back(parser.get().method() == boost::beast::http::verb::head);
        if (!parser.is_done())
            break;
    }
    return out;
}

// Every answer on the connection parses as a response, and none is a 500.
inline void check_answers(std::string const& got, std::string_view input) {
    boost::beast::flat_buffer buffer;
    auto const n = boost::asio::buffer_copy(buffer.prepare(got.size()),
                                            boost::asio::buffer(got.data(), got.size()));
    buffer.commit(n);
    auto const heads = head_requests(input);
    for (std::size_t answer = 0; buffer.size() > 0; ++answer) {
        boost::beast::http::response_parser<boost::beast::http::string_body> parser;
        parser.body_limit(8 * 1024 * 1024);
        // An answer to HEAD has GET's headers (Content-Length included) and no body.
        parser.skip(answer < heads.size() && heads[answer]);
        boost::system::error_code ec;
        auto const used = parser.put(buffer.data(), ec);
        buffer.consume(used);
        if (ec == boost::beast::http::error::need_more) {
            parser.put_eof(ec);
            if (ec && got.size() < 4 * 1024 * 1024)
                herald_fuzz::broken("admin", "an answer is cut short", input);
            break;
        }
        if (ec)
            herald_fuzz::broken("admin", ("an answer is not HTTP: " + ec.message()).c_str(), input);
        if (!parser.is_done()) {
            // the body spans more than one put
            while (!parser.is_done() && buffer.size() > 0) {
                auto const more = parser.put(buffer.data(), ec);
                buffer.consume(more);
                if (ec)
                    break;
            }
            if (!parser.is_done())
                herald_fuzz::broken("admin", "an answer is cut short", input);
        }
        HERALD_FUZZ_CHECK("admin", parser.get().result_int() != 500,
                          parser.get().body() + "\n  input: " + std::string(input));
    }
}

// A function of its own, not the extern "C" entry: g++ 12 gives coroutine lambdas in an
// extern "C" function clashing symbol names.
inline void run(std::uint8_t const* data, std::size_t size) {
    using namespace std::chrono_literals;
    auto const input = herald_fuzz::text_of(data, size);
    asio::io_context io;
    herald::dispatcher_params dp;
    dp.retry.schedule = {0ms, 10ms};
    dp.retry.jitter = 0;
    dispatcher_type d(io.get_executor(), dp,
                      {.transport = herald::recording_transport(),
                       .log = herald::metered_log<herald::memory_log>()});
    if (!d.store().create(first_hook()))
        herald_fuzz::broken("admin", "the first webhook is refused", "");
    herald::admin::server_params sp;
    sp.token = token;
    sp.body_limit = 64 * 1024;
    sp.request_timeout = 5s;
    sp.idle_timeout = 5s;
    herald::admin::server srv(io.get_executor(), d, sp);
    d.async_run(asio::detached);
    srv.async_run(asio::detached);

    std::string got;
    bool done = false;
    asio::steady_timer guard(io, 20s);
    guard.async_wait([&](boost::system::error_code ec) {
        if (!ec)
            herald_fuzz::broken("admin", "no answer within 20 s", input);
    });
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            co_await client(srv.local_endpoint(), input, got);
            done = true;
            srv.stop();
            co_await d.async_stop(0ms, asio::use_awaitable);
            guard.cancel();
        },
        asio::detached);
    io.run();
    HERALD_FUZZ_CHECK("admin", done, input);
    check_answers(got, input);
}

} // namespace herald_fuzz_admin

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    herald_fuzz_admin::run(data, size);
    return 0;
}
