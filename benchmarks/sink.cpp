// herald-bench-sink: the receiving end of herald-bench. An HTTP/1.1 keep-alive server on
// loopback that answers 204 to every request, as fast as it reasonably can, so that the
// benchmark measures the sender.
//
//   herald-bench-sink [--port 0] [--port-file FILE] [--threads 1] [--parent PID]
//
// Why it is fast: one fixed read buffer per connection, a header parser that keeps no fields
// (Beast's basic_parser with empty callbacks: no allocation per request), the body skipped in
// place, and one write answering every request a read completed (pipelined requests included).
// The only request header it looks at is Expect (100-continue is answered).
//
// SIGUSR1 pauses reading (connections stay open, requests wait unanswered), a second SIGUSR1
// resumes. SIGINT and SIGTERM end it; with --parent PID it also ends when that process does.

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>

#include <sys/prctl.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::string_view no_content = "HTTP/1.1 204 No Content\r\n\r\n";
constexpr std::string_view no_content_close =
    "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n";
constexpr std::string_view go_on = "HTTP/1.1 100 Continue\r\n\r\n";
constexpr std::size_t read_buffer_bytes = 64 * 1024;
constexpr std::size_t batch_answers = 64; // answers one write can carry from the canned buffer

std::atomic<bool> paused{false};

// A request parser that keeps nothing: the header is checked and dropped, the body skipped.
class discarding_parser : public http::basic_parser<true> {
public:
    discarding_parser() {
        eager(true);
        body_limit(boost::none);
    }

    bool expects_continue() const { return expects_continue_; }

private:
    void on_request_impl(http::verb, boost::beast::string_view, boost::beast::string_view, int,
                         error_code&) override {}
    void on_response_impl(int, boost::beast::string_view, int, error_code&) override {}
    void on_field_impl(http::field name, boost::beast::string_view, boost::beast::string_view value,
                       error_code&) override {
        if (name == http::field::expect && value.size() == 12 &&
            (value[0] | 0x20) == '1') // "100-continue", the only expectation there is
            expects_continue_ = true;
    }
    void on_header_impl(error_code&) override {}
    void on_body_init_impl(boost::optional<std::uint64_t> const&, error_code&) override {}
    std::size_t on_body_impl(boost::beast::string_view body, error_code&) override {
        return body.size();
    }
    void on_chunk_header_impl(std::uint64_t, boost::beast::string_view, error_code&) override {}
    std::size_t on_chunk_body_impl(std::uint64_t, boost::beast::string_view body,
                                   error_code&) override {
        return body.size();
    }
    void on_finish_impl(error_code&) override {}

    bool expects_continue_ = false;
};

// `batch_answers` copies of the 204, so that n answers go out in one write without building
// anything.
std::string const& canned_answers() {
    static std::string const s = [] {
        std::string r;
        for (std::size_t i = 0; i < batch_answers; ++i)
            r += no_content;
        return r;
    }();
    return s;
}

asio::awaitable<void> wait_while_paused(tcp::socket& socket) {
    asio::steady_timer timer(socket.get_executor());
    while (paused.load(std::memory_order_relaxed)) {
        timer.expires_after(std::chrono::milliseconds(20));
        auto [ec] = co_await timer.async_wait(use_tuple);
        (void)ec;
    }
}

asio::awaitable<void> session(tcp::socket socket) {
    error_code ec;
    socket.set_option(tcp::no_delay(true), ec);
    auto buf = std::make_unique<char[]>(read_buffer_bytes);
    std::size_t have = 0;
    std::optional<discarding_parser> parser;
    parser.emplace();
    bool continue_sent = false;
    std::string const& answers = canned_answers();
    for (;;) {
        if (paused.load(std::memory_order_relaxed))
            co_await wait_while_paused(socket);
        // Buffers bound to names: g++ 12 mishandles temporaries in co_await (GCC bug 107288).
        auto const room = asio::buffer(buf.get() + have, read_buffer_bytes - have);
        auto [rec, n] = co_await socket.async_read_some(room, use_tuple);
        if (rec)
            co_return; // the peer went away
        have += n;

        // Answer every request this read completed.
        std::size_t off = 0;
        std::size_t done = 0;
        bool close = false;
        while (off < have && !close) {
            error_code pec;
            auto const used = parser->put(asio::buffer(buf.get() + off, have - off), pec);
            off += used;
            if (pec == http::error::need_more)
                break;
            if (pec) {
                close = true; // malformed: answer what came before it, then close
                break;
            }
            if (parser->is_done()) {
                ++done;
                close = !parser->keep_alive();
                parser.emplace();
                continue_sent = false;
            } else if (used == 0) {
                break;
            }
        }
        if (off > 0 && off < have)
            std::memmove(buf.get(), buf.get() + off, have - off);
        have -= off;
        if (have == read_buffer_bytes) {
            close = true; // a header that does not fit (the parser's limit is far below this)
        }

        // The last answer of a closing connection says so.
        std::size_t const plain = close && done > 0 ? done - 1 : done;
        for (std::size_t left = plain; left > 0;) {
            auto const k = std::min(left, batch_answers);
            auto const msg = asio::buffer(answers.data(), k * no_content.size());
            auto [wec, wn] = co_await asio::async_write(socket, msg, use_tuple);
            if (wec)
                co_return;
            left -= k;
        }
        // A request whose header asked to go on before sending its body.
        if (!close && parser->is_header_done() && parser->expects_continue() && !continue_sent) {
            continue_sent = true;
            auto const msg = asio::buffer(go_on);
            auto [wec, wn] = co_await asio::async_write(socket, msg, use_tuple);
            if (wec)
                co_return;
        }
        if (close) {
            if (done > 0) {
                auto const msg = asio::buffer(no_content_close);
                auto [wec, wn] = co_await asio::async_write(socket, msg, use_tuple);
                (void)wec;
            }
            socket.shutdown(tcp::socket::shutdown_send, ec);
            co_return;
        }
    }
}

struct options {
    unsigned short port = 0;
    std::string port_file;
    unsigned threads = 1;
    long parent = 0;
};

bool parse_number(std::string_view text, auto& out, long long min, long long max) {
    long long v = 0;
    auto const [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc{} || end != text.data() + text.size() || v < min || v > max)
        return false;
    out = static_cast<std::remove_reference_t<decltype(out)>>(v);
    return true;
}

void write_port_file(std::string const& path, unsigned short port) {
    // Write-then-rename: a reader polling for the file never sees it half-written.
    std::string const temp = path + ".tmp";
    {
        std::ofstream out(temp, std::ios::trunc);
        out << port << '\n';
        if (!out.flush())
            throw std::runtime_error("cannot write port file '" + temp + "'");
    }
    std::filesystem::rename(temp, path);
}

} // namespace

int main(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        std::string_view const a = argv[i];
        bool const has_value = i + 1 < argc;
        bool ok = has_value;
        if (a == "--port" && has_value)
            ok = parse_number(argv[++i], o.port, 0, 65535);
        else if (a == "--port-file" && has_value)
            o.port_file = argv[++i];
        else if (a == "--threads" && has_value)
            ok = parse_number(argv[++i], o.threads, 1, 64);
        else if (a == "--parent" && has_value)
            ok = parse_number(argv[++i], o.parent, 1, 1 << 30);
        else
            ok = false;
        if (!ok) {
            std::cerr << "usage: herald-bench-sink [--port N] [--port-file FILE] [--threads N] "
                         "[--parent PID]\n";
            return 2;
        }
    }
    if (o.parent != 0) {
        // End with the benchmark even when it is killed without a chance to clean up.
        ::prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (::getppid() != o.parent)
            return 0; // it is already gone
    }

    try {
        // One io_context per thread, each run by one thread: no locking inside Asio, and a
        // connection stays on the thread that accepted it.
        std::vector<std::unique_ptr<asio::io_context>> contexts;
        for (unsigned i = 0; i < o.threads; ++i)
            contexts.push_back(std::make_unique<asio::io_context>(1));
        auto& main_ctx = *contexts.front();

        tcp::acceptor acceptor(main_ctx);
        tcp::endpoint const ep(asio::ip::make_address_v4("127.0.0.1"), o.port);
        acceptor.open(ep.protocol());
        acceptor.set_option(tcp::acceptor::reuse_address(true));
        acceptor.bind(ep);
        acceptor.listen(asio::socket_base::max_listen_connections);

        auto stop_all = [&] {
            for (auto& c : contexts)
                c->stop();
        };
        asio::signal_set stop_signals(main_ctx, SIGINT, SIGTERM);
        stop_signals.async_wait([&](error_code ec, int) {
            if (!ec)
                stop_all();
        });
        asio::signal_set pause_signal(main_ctx, SIGUSR1);
        std::function<void(error_code, int)> on_pause = [&](error_code ec, int) {
            if (ec)
                return;
            paused.store(!paused.load());
            pause_signal.async_wait(on_pause);
        };
        pause_signal.async_wait(on_pause);

        asio::co_spawn(
            main_ctx,
            [&]() -> asio::awaitable<void> {
                for (std::size_t next = 0;; ++next) {
                    auto& ctx = *contexts[next % contexts.size()];
                    auto [ec, socket] = co_await acceptor.async_accept(ctx, use_tuple);
                    if (ec == asio::error::operation_aborted)
                        co_return;
                    if (!ec)
                        asio::co_spawn(ctx, session(std::move(socket)), asio::detached);
                }
            },
            asio::detached);

        auto const port = acceptor.local_endpoint().port();
        if (!o.port_file.empty())
            write_port_file(o.port_file, port);
        std::cerr << "herald-bench-sink listening on http://127.0.0.1:" << port << " (" << o.threads
                  << (o.threads == 1 ? " thread)\n" : " threads)\n");

        std::vector<std::thread> threads;
        for (std::size_t i = 1; i < contexts.size(); ++i)
            threads.emplace_back([&ctx = *contexts[i]] {
                auto guard = asio::make_work_guard(ctx);
                ctx.run();
            });
        main_ctx.run();
        stop_all();
        for (auto& t : threads)
            t.join();
        return 0;
    } catch (std::exception const& e) {
        std::cerr << "herald-bench-sink: " << e.what() << "\n";
        return 1;
    }
}
