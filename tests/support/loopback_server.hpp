// In-process HTTP/1.1 server (plain or over TLS) for integration tests.
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
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream_base.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <openssl/ssl.h>

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
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

namespace herald::test {

struct received_request {
    std::string method, target;
    std::vector<std::pair<std::string, std::string>> headers{}; // in arrival order, names as sent
    std::string body{};
    std::chrono::steady_clock::time_point at{}; // when the full request was read
    std::size_t connection_index = 0;           // which accepted connection carried it (0-based)

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
    std::vector<std::pair<std::string, std::string>> headers{};
    std::string body{};
    // Wait before answering (asio timer, never blocks the server).
    std::chrono::milliseconds delay{0};
    // Never answer; keep the socket open until the server stops.
    bool hang = false;
    // Close the socket right after reading the request.
    bool close_without_response = false;
    // false: answer with Connection: close, then close.
    bool keep_alive = true;
    // Raw bytes written before the response, `interim_times` times: interim responses such as
    // "HTTP/1.1 100 Continue\r\n\r\n". With `interim_forever`, written again and again until
    // the client goes away, and no response follows.
    std::string interim{};
    std::size_t interim_times = 1;
    bool interim_forever = false;
};

class loopback_server {
public:
    using handler = std::function<reply(received_request const&)>;

    static constexpr std::size_t max_body_bytes = 16 * 1024 * 1024;

    // The server's certificate chain (leaf first) and its private key, both PEM.
    struct tls_options {
        std::string cert_pem{};
        std::string key_pem{};
    };

    // Plain HTTP: binds 127.0.0.1 on an ephemeral port and starts accepting at once.
    explicit loopback_server(unsigned threads = 1)
        : acceptor_(boost::asio::make_strand(ioc_)) {
        start(threads);
    }

    // HTTPS (TLS 1.2 or later) on 127.0.0.1, otherwise the same as the plain server. Throws
    // (boost::system::system_error) if the certificate or key cannot be loaded or do not match.
    explicit loopback_server(tls_options tls, unsigned threads = 1)
        : ssl_ctx_(make_ssl_context(tls))
        , acceptor_(boost::asio::make_strand(ioc_)) {
        start(threads);
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
            boost::asio::post(conn->timer.get_executor(), [conn] { conn->close(); });
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

    bool is_tls() const { return ssl_ctx_.has_value(); }

    // "http://127.0.0.1:<port><path>", or "https://..." for a TLS server; path starts with '/'.
    std::string url(std::string_view path) const { return url_for_host("127.0.0.1", path); }

    // The same URL with another host, e.g. "https://localhost:<port>/x" to exercise host-name
    // verification. The host must still resolve to 127.0.0.1. IPv6 literals get brackets.
    std::string url_for_host(std::string_view host, std::string_view path) const {
        std::string out = is_tls() ? "https://" : "http://";
        bool const ipv6 = host.find(':') != std::string_view::npos && host.front() != '[';
        out += ipv6 ? "[" + std::string(host) + "]" : std::string(host);
        out += ':' + std::to_string(port_) + std::string(path);
        return out;
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

    // TLS only (always 0 for plain HTTP). A handshake fails when the client rejects our
    // certificate (it sends an alert and closes), speaks plain HTTP, or closes before finishing.
    // Connections the server itself closes while stopping are not counted. The client usually
    // learns of its own rejection before the server does: use wait_for_failed_handshakes().
    std::size_t handshakes_completed() const {
        std::lock_guard lock(mutex_);
        return handshakes_completed_;
    }

    std::size_t handshakes_failed() const {
        std::lock_guard lock(mutex_);
        return handshake_errors_.size();
    }

    // Server-side error message of each failed handshake, in order, e.g.
    // "tlsv1 alert unknown ca (SSL routines)".
    std::vector<std::string> handshake_errors() const {
        std::lock_guard lock(mutex_);
        return handshake_errors_;
    }

    // Blocks until at least `count` handshakes have completed, or `timeout` elapsed. Needed only
    // when no request followed: with TLS 1.3 the client finishes its handshake first.
    bool wait_for_completed_handshakes(std::size_t count, std::chrono::milliseconds timeout) const {
        std::unique_lock lock(mutex_);
        return cv_.wait_for(lock, timeout, [&] { return handshakes_completed_ >= count; });
    }

    // Blocks until at least `count` handshakes have failed, or `timeout` elapsed.
    bool wait_for_failed_handshakes(std::size_t count, std::chrono::milliseconds timeout) const {
        std::unique_lock lock(mutex_);
        return cv_.wait_for(lock, timeout, [&] { return handshake_errors_.size() >= count; });
    }

private:
    using tcp = boost::asio::ip::tcp;
    using error_code = boost::system::error_code;
    using request_parser = boost::beast::http::request_parser<boost::beast::http::string_body>;
    using request = boost::beast::http::request<boost::beast::http::string_body>;
    using response = boost::beast::http::response<boost::beast::http::string_body>;
    using tls_stream = boost::beast::ssl_stream<boost::beast::tcp_stream>;

    static constexpr auto use_tuple = boost::asio::as_tuple(boost::asio::use_awaitable);

    template <class Stream>
    static constexpr bool is_tls_stream = std::is_same_v<Stream, tls_stream>;

    // One accepted connection. Its stream and timer share a strand, and everything that touches
    // them (the session coroutine, close()) runs on that strand.
    struct connection {
        connection(boost::asio::any_io_executor strand, std::size_t i)
            : timer(std::move(strand))
            , index(i) {}
        connection(connection const&) = delete;
        connection& operator=(connection const&) = delete;
        virtual ~connection() = default;

        // Closes the TCP socket at once (no TLS close_notify) and cancels the timer.
        virtual void close() = 0;

        boost::asio::steady_timer timer; // delayed and hanging replies wait on this
        std::size_t index{};
        bool closed = false;
    };

    // Stream is tcp::socket (plain HTTP) or tls_stream.
    template <class Stream>
    struct basic_connection final : connection {
        template <class... Args>
        basic_connection(boost::asio::any_io_executor strand, std::size_t i, Args&&... args)
            : connection(std::move(strand), i)
            , stream(std::forward<Args>(args)...) {}

        void close() override {
            closed = true;
            error_code ec;
            socket().shutdown(tcp::socket::shutdown_both, ec);
            if constexpr (is_tls_stream<Stream>) {
                boost::beast::get_lowest_layer(stream).close(); // also cancels its expiry timer
            } else {
                stream.close(ec);
            }
            timer.cancel();
        }

        tcp::socket& socket() {
            if constexpr (is_tls_stream<Stream>) {
                return boost::beast::get_lowest_layer(stream).socket();
            } else {
                return stream;
            }
        }

        Stream stream;
    };

    static boost::asio::ssl::context make_ssl_context(tls_options const& tls) {
        namespace ssl = boost::asio::ssl;
        ssl::context ctx(ssl::context::tls_server);
        ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                        ssl::context::no_sslv3 | ssl::context::single_dh_use);
        if (SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION) != 1) {
            throw std::runtime_error("loopback_server: cannot require TLS 1.2");
        }
        ctx.use_certificate_chain(boost::asio::buffer(tls.cert_pem));
        ctx.use_private_key(boost::asio::buffer(tls.key_pem), ssl::context::pem);
        return ctx;
    }

    void start(unsigned threads) {
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
            bool const started =
                ssl_ctx_ ? start_session<tls_stream>(strand, std::move(socket), *ssl_ctx_)
                         : start_session<tcp::socket>(strand, std::move(socket));
            if (!started) {
                break;
            }
        }
        std::lock_guard lock(mutex_);
        accepting_ = false;
        cv_.notify_all();
    }

    // Registers the connection and spawns its session; false if the server is stopping.
    template <class Stream, class... Args>
    bool start_session(boost::asio::any_io_executor const& strand, Args&&... args) {
        std::shared_ptr<basic_connection<Stream>> conn;
        {
            std::lock_guard lock(mutex_);
            if (stopping_) {
                return false;
            }
            conn = std::make_shared<basic_connection<Stream>>(strand, accepted_++,
                                                              std::forward<Args>(args)...);
            live_.emplace(conn->index, conn);
        }
        boost::asio::co_spawn(strand, session(conn), boost::asio::detached);
        return true;
    }

    template <class Stream>
    boost::asio::awaitable<void> session(std::shared_ptr<basic_connection<Stream>> conn) {
        try {
            bool ready = true;
            if constexpr (is_tls_stream<Stream>) {
                ready = co_await handshake(*conn);
            }
            if (ready) {
                co_await serve(*conn);
            }
        } catch (...) {
            // A failure only ends this session; the test sees it from the client side.
        }
        conn->close();
        std::lock_guard lock(mutex_);
        live_.erase(conn->index);
        cv_.notify_all();
    }

    boost::asio::awaitable<bool> handshake(basic_connection<tls_stream>& conn) {
        auto [ec] =
            co_await conn.stream.async_handshake(boost::asio::ssl::stream_base::server, use_tuple);
        std::lock_guard lock(mutex_);
        if (!ec) {
            ++handshakes_completed_;
        } else if (!conn.closed) {
            handshake_errors_.push_back(ec.message());
        }
        cv_.notify_all();
        co_return !ec;
    }

    // Before a close the server chooses: on TLS, send close_notify so that the client sees a clean
    // end of stream rather than a truncated one. Does not wait for the client's close_notify.
    template <class Stream>
    boost::asio::awaitable<void> end_of_output(basic_connection<Stream>& conn) {
        if constexpr (is_tls_stream<Stream>) {
            if (conn.closed) {
                co_return;
            }
            // Pretend the peer's close_notify already arrived: SSL_shutdown then only writes ours.
            SSL* const ssl = conn.stream.native_handle();
            SSL_set_shutdown(ssl, SSL_get_shutdown(ssl) | SSL_RECEIVED_SHUTDOWN);
            auto& lowest = boost::beast::get_lowest_layer(conn.stream);
            lowest.expires_after(std::chrono::seconds(1)); // a client that never reads
            auto [ec] = co_await conn.stream.async_shutdown(use_tuple);
            (void)ec; // the client may well not answer the close_notify
            if (!conn.closed) {
                lowest.expires_never();
            }
        } else {
            co_return;
        }
    }

    template <class Stream>
    boost::asio::awaitable<void> serve(basic_connection<Stream>& conn) {
        namespace http = boost::beast::http;
        boost::beast::flat_buffer buffer; // outlives each request: it may hold pipelined bytes
        for (;;) {
            request_parser parser;
            parser.header_limit(64 * 1024);
            parser.body_limit(max_body_bytes);

            error_code ec;
            std::tie(ec, std::ignore) =
                co_await http::async_read_header(conn.stream, buffer, parser, use_tuple);
            if (!ec && expects_continue(parser.get())) {
                http::response<http::empty_body> go_on{http::status::continue_, 11};
                std::tie(ec, std::ignore) =
                    co_await http::async_write(conn.stream, go_on, use_tuple);
            }
            if (!ec) {
                std::tie(ec, std::ignore) =
                    co_await http::async_read(conn.stream, buffer, parser, use_tuple);
            }
            if (ec == http::error::body_limit) {
                response too_large{http::status::payload_too_large, parser.get().version()};
                too_large.keep_alive(false);
                too_large.prepare_payload();
                std::tie(ec, std::ignore) =
                    co_await http::async_write(conn.stream, too_large, use_tuple);
                // The client may still be sending the body: closing now would reset the
                // connection and lose the 413, so discard input until the peer closes. (On TLS
                // the discarded bytes are still encrypted; nothing needs to decrypt them.)
                if (!ec) {
                    co_await end_of_output(conn);
                }
                conn.socket().shutdown(tcp::socket::shutdown_send, ec);
                std::array<char, 64 * 1024> scratch;
                while (!ec) {
                    std::tie(ec, std::ignore) = co_await conn.socket().async_read_some(
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
                co_await end_of_output(conn);
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

            if (!rep.interim.empty()) {
                for (std::size_t i = 0; !ec && (rep.interim_forever || i < rep.interim_times);
                     ++i) {
                    std::tie(ec, std::ignore) = co_await boost::asio::async_write(
                        conn.stream, boost::asio::buffer(rep.interim), use_tuple);
                }
                if (ec || rep.interim_forever) {
                    co_return;
                }
            }

            response res = make_response(rep, req);
            std::tie(ec, std::ignore) = co_await http::async_write(conn.stream, res, use_tuple);
            if (ec) {
                co_return;
            }
            if (!res.keep_alive()) {
                co_await end_of_output(conn);
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

    // Set for HTTPS. Declared before ioc_ so that it outlives the TLS streams held by the
    // coroutine frames ioc_ destroys.
    std::optional<boost::asio::ssl::context> ssl_ctx_;
    // ioc_ is declared before the rest so it is destroyed after them: coroutine frames it still
    // owns after stop() hold sockets that must be destroyed while their io_context exists.
    boost::asio::io_context ioc_;
    tcp::acceptor acceptor_;
    unsigned short port_ = 0;

    mutable std::mutex mutex_;
    mutable std::condition_variable cv_;
    std::map<std::string, handler, std::less<>> handlers_;
    std::vector<received_request> requests_;
    std::unordered_map<std::size_t, std::shared_ptr<connection>> live_;
    std::size_t accepted_ = 0;
    std::size_t handshakes_completed_ = 0;
    std::vector<std::string> handshake_errors_;
    bool accepting_ = false;
    bool stopping_ = false;

    std::vector<std::thread> threads_;
};

} // namespace herald::test
