// In-process HTTP/1.1 server for integration tests.
//
// It runs on its own io_context and thread(s), so the code under test never shares an event loop
// with it: a stalled client cannot stall the server and vice versa.
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

namespace herald::test {

struct received_request {
    std::string method, target;
    std::vector<std::pair<std::string, std::string>> headers; // in arrival order, names as sent
    std::string body;
    std::chrono::steady_clock::time_point at; // when the full request was read
    std::size_t connection_index = 0;         // which accepted connection carried it (0-based)

    // Case-insensitive lookup of the first occurrence; "" if absent.
    std::string header(std::string_view name) const {
        for (auto const& [n, v] : headers) {
            if (boost::beast::iequals(n, name)) {
                return v;
            }
        }
        return {};
    }
};

struct reply {
    unsigned status = 204;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    // Wait before answering (asio timer, never blocks the server).
    std::chrono::milliseconds delay{0};
    // Never answer; keep the socket open until the server stops.
    bool hang = false;
    // Close the socket right after reading the request.
    bool close_without_response = false;
    // false: answer with Connection: close, then close.
    bool keep_alive = true;
};

class loopback_server {
public:
    using handler = std::function<reply(received_request const&)>;

    static constexpr std::size_t max_body_bytes = 16 * 1024 * 1024;

    // Binds 127.0.0.1 on an ephemeral port and starts accepting at once.
    explicit loopback_server(unsigned threads = 1)
        : acceptor_(boost::asio::make_strand(ioc_)) {
        tcp::endpoint const endpoint{boost::asio::ip::address_v4::loopback(), 0};
        acceptor_.open(endpoint.protocol());
        acceptor_.bind(endpoint);
        acceptor_.listen(boost::asio::socket_base::max_listen_connections);
        port_ = acceptor_.local_endpoint().port();

        accepting_ = true;
        boost::asio::co_spawn(acceptor_.get_executor(), accept_loop(), boost::asio::detached);
        for (unsigned i = 0; i < std::max(threads, 1u); ++i) {
            threads_.emplace_back([this] { ioc_.run(); });
        }
    }

    loopback_server(loopback_server const&) = delete;
    loopback_server& operator=(loopback_server const&) = delete;

    // Closes the acceptor and every live socket, then stops the io_context and joins. Hanging and
    // delayed replies are cancelled, so this returns promptly unless a user handler blocks.
    ~loopback_server() {
        std::vector<std::shared_ptr<connection>> live;
        {
            std::lock_guard lock(mutex_);
            stopping_ = true;
            for (auto const& entry : live_) {
                live.push_back(entry.second);
            }
        }
        // The acceptor and sockets are only ever touched on their own strands.
        boost::asio::post(acceptor_.get_executor(), [this] {
            error_code ec;
            acceptor_.close(ec);
        });
        for (auto const& conn : live) {
            boost::asio::post(conn->socket.get_executor(), [conn] { conn->close(); });
        }
        {
            // Let the coroutines unwind on their own; ioc_.stop() below is only the backstop.
            std::unique_lock lock(mutex_);
            cv_.wait_for(lock, std::chrono::seconds(2),
                         [this] { return !accepting_ && live_.empty(); });
        }
        ioc_.stop();
        for (auto& t : threads_) {
            t.join();
        }
    }

    unsigned short port() const { return port_; }

    // "http://127.0.0.1:<port><path>"; path starts with '/'.
    std::string url(std::string_view path) const {
        return "http://127.0.0.1:" + std::to_string(port_) + std::string(path);
    }

    // Handler for an exact path (target without query string). Unknown paths get reply{} (204).
    // Handlers run on a server thread.
    void on(std::string path, handler h) {
        std::lock_guard lock(mutex_);
        handlers_[std::move(path)] = std::move(h);
    }

    // Snapshot of the requests received so far, in arrival order; all paths if `path` is empty.
    std::vector<received_request> requests(std::string_view path = {}) const {
        std::lock_guard lock(mutex_);
        std::vector<received_request> out;
        for (auto const& r : requests_) {
            if (matches(r, path)) {
                out.push_back(r);
            }
        }
        return out;
    }

    // Blocks until at least `count` requests on `path` (all paths if empty) have arrived, or
    // `timeout` elapsed. Returns whether the count was reached.
    bool wait_for(std::size_t count, std::string_view path,
                  std::chrono::milliseconds timeout) const {
        std::unique_lock lock(mutex_);
        return cv_.wait_for(lock, timeout, [&] {
            auto const n = std::count_if(requests_.begin(), requests_.end(),
                                         [&](auto const& r) { return matches(r, path); });
            return static_cast<std::size_t>(n) >= count;
        });
    }

    std::size_t connections_accepted() const {
        std::lock_guard lock(mutex_);
        return accepted_;
    }

private:
    using tcp = boost::asio::ip::tcp;
    using error_code = boost::system::error_code;
    using request_parser = boost::beast::http::request_parser<boost::beast::http::string_body>;
    using request = boost::beast::http::request<boost::beast::http::string_body>;
    using response = boost::beast::http::response<boost::beast::http::string_body>;

    static constexpr auto use_tuple = boost::asio::as_tuple(boost::asio::use_awaitable);

    // One accepted connection. Its socket and timer share a strand, and everything that touches
    // them (the session coroutine, close()) runs on that strand.
    struct connection {
        connection(tcp::socket s, std::size_t i)
            : socket(std::move(s))
            , timer(socket.get_executor())
            , index(i) {}

        void close() {
            closed = true;
            error_code ec;
            socket.shutdown(tcp::socket::shutdown_both, ec);
            socket.close(ec);
            timer.cancel();
        }

        tcp::socket socket;
        boost::asio::steady_timer timer; // delayed and hanging replies wait on this
        std::size_t index;
        bool closed = false;
    };

    static std::string_view path_of(std::string_view target) {
        return target.substr(0, target.find('?'));
    }

    static bool matches(received_request const& r, std::string_view path) {
        return path.empty() || path_of(r.target) == path;
    }

    static bool has_no_body(unsigned status) {
        return status < 200 || status == 204 || status == 304;
    }

    boost::asio::awaitable<void> accept_loop() {
        for (;;) {
            boost::asio::any_io_executor strand = boost::asio::make_strand(ioc_);
            auto [ec, socket] = co_await acceptor_.async_accept(strand, use_tuple);
            if (ec) {
                if (!acceptor_.is_open() || ec == boost::asio::error::operation_aborted) {
                    break;
                }
                // Transient (e.g. out of descriptors): back off instead of spinning.
                boost::asio::steady_timer backoff(acceptor_.get_executor(),
                                                  std::chrono::milliseconds(10));
                co_await backoff.async_wait(use_tuple);
                continue;
            }
            std::shared_ptr<connection> conn;
            {
                std::lock_guard lock(mutex_);
                if (stopping_) {
                    break;
                }
                conn = std::make_shared<connection>(std::move(socket), accepted_++);
                live_.emplace(conn->index, conn);
            }
            boost::asio::co_spawn(conn->socket.get_executor(), session(conn),
                                  boost::asio::detached);
        }
        std::lock_guard lock(mutex_);
        accepting_ = false;
        cv_.notify_all();
    }

    boost::asio::awaitable<void> session(std::shared_ptr<connection> conn) {
        try {
            co_await serve(*conn);
        } catch (...) {
            // A failure only ends this session; the test sees it from the client side.
        }
        conn->close();
        std::lock_guard lock(mutex_);
        live_.erase(conn->index);
        cv_.notify_all();
    }

    boost::asio::awaitable<void> serve(connection& conn) {
        namespace http = boost::beast::http;
        boost::beast::flat_buffer buffer; // outlives each request: it may hold pipelined bytes
        for (;;) {
            request_parser parser;
            parser.header_limit(64 * 1024);
            parser.body_limit(max_body_bytes);

            error_code ec;
            std::tie(ec, std::ignore) =
                co_await http::async_read_header(conn.socket, buffer, parser, use_tuple);
            if (!ec && expects_continue(parser.get())) {
                http::response<http::empty_body> go_on{http::status::continue_, 11};
                std::tie(ec, std::ignore) =
                    co_await http::async_write(conn.socket, go_on, use_tuple);
            }
            if (!ec) {
                std::tie(ec, std::ignore) =
                    co_await http::async_read(conn.socket, buffer, parser, use_tuple);
            }
            if (ec == http::error::body_limit) {
                response too_large{http::status::payload_too_large, parser.get().version()};
                too_large.keep_alive(false);
                too_large.prepare_payload();
                std::tie(ec, std::ignore) =
                    co_await http::async_write(conn.socket, too_large, use_tuple);
                // The client may still be sending the body: closing now would reset the
                // connection and lose the 413, so discard input until the peer closes.
                conn.socket.shutdown(tcp::socket::shutdown_send, ec);
                std::array<char, 64 * 1024> scratch;
                while (!ec) {
                    std::tie(ec, std::ignore) = co_await conn.socket.async_read_some(
                        boost::asio::buffer(scratch), use_tuple);
                }
                co_return;
            }
            if (ec) {
                co_return; // peer closed, server stopping, or garbage: just drop the connection
            }

            request req = parser.release();
            received_request const rec = record(req, conn.index);
            reply const rep = compute_reply(rec);

            if (rep.close_without_response) {
                co_return;
            }
            if (rep.hang || rep.delay.count() > 0) {
                if (conn.closed) {
                    co_return;
                }
                if (rep.hang) {
                    conn.timer.expires_at(boost::asio::steady_timer::time_point::max());
                } else {
                    conn.timer.expires_after(rep.delay);
                }
                auto [wait_ec] = co_await conn.timer.async_wait(use_tuple);
                if (wait_ec || conn.closed || rep.hang) {
                    co_return;
                }
            }

            response res = make_response(rep, req);
            std::tie(ec, std::ignore) = co_await http::async_write(conn.socket, res, use_tuple);
            if (ec || !res.keep_alive()) {
                co_return;
            }
        }
    }

    static bool expects_continue(request const& req) {
        auto const expect = req[boost::beast::http::field::expect];
        return req.version() >= 11 && boost::beast::iequals(expect, "100-continue");
    }

    // Stores the request and wakes waiters; returns a copy that stays valid without the lock.
    received_request record(request const& req, std::size_t connection_index) {
        received_request rec;
        rec.method = std::string(req.method_string());
        rec.target = std::string(req.target());
        for (auto const& field : req) {
            rec.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
        }
        rec.body = req.body();
        rec.at = std::chrono::steady_clock::now();
        rec.connection_index = connection_index;

        std::lock_guard lock(mutex_);
        requests_.push_back(rec);
        cv_.notify_all();
        return rec;
    }

    reply compute_reply(received_request const& rec) {
        handler h;
        {
            std::lock_guard lock(mutex_);
            auto it = handlers_.find(path_of(rec.target));
            if (it == handlers_.end()) {
                return reply{};
            }
            h = it->second; // a copy, so the handler runs without the lock held
        }
        try {
            return h(rec);
        } catch (std::exception const& e) {
            // Surface the failure to the client instead of silently dropping the connection.
            reply failure;
            failure.status = 500;
            failure.headers.emplace_back("Content-Type", "text/plain");
            failure.body = std::string("loopback_server handler threw: ") + e.what();
            return failure;
        }
    }

    static response make_response(reply const& rep, request const& req) {
        namespace http = boost::beast::http;
        response res;
        res.version(req.version());
        res.result(rep.status);
        bool sized = false;
        for (auto const& [name, value] : rep.headers) {
            res.insert(name, value);
            sized = sized || boost::beast::iequals(name, "Content-Length") ||
                    boost::beast::iequals(name, "Transfer-Encoding");
        }
        res.keep_alive(req.keep_alive() && rep.keep_alive);
        if (has_no_body(rep.status)) {
            return res; // no body and, per RFC 9110, no Content-Length either
        }
        if (req.method() == http::verb::head) {
            if (!sized) {
                res.content_length(rep.body.size());
            }
            return res;
        }
        res.body() = rep.body;
        if (!sized) {
            res.prepare_payload();
        }
        return res;
    }

    // ioc_ is declared first so it is destroyed last: coroutine frames it still owns after
    // stop() hold sockets that must be destroyed while their io_context exists.
    boost::asio::io_context ioc_;
    tcp::acceptor acceptor_;
    unsigned short port_ = 0;

    mutable std::mutex mutex_;
    mutable std::condition_variable cv_;
    std::map<std::string, handler, std::less<>> handlers_;
    std::vector<received_request> requests_;
    std::unordered_map<std::size_t, std::shared_ptr<connection>> live_;
    std::size_t accepted_ = 0;
    bool accepting_ = false;
    bool stopping_ = false;

    std::vector<std::thread> threads_;
};

} // namespace herald::test
