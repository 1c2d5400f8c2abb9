#ifndef HERALD_ADMIN_SESSION_HPP
#define HERALD_ADMIN_SESSION_HPP

#include <herald/admin/detail/http.hpp>
#include <herald/admin/detail/util.hpp>
#include <herald/admin/message.hpp>
#include <herald/admin/params.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/url/parse.hpp>

#include <algorithm>
#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace herald::admin {

/**
 * What answers the requests a session reads: routing, authentication and the handlers
 * (server<Dispatcher> is one). The session knows nothing of the dispatcher behind it.
 */
class request_handler {
public:
    /// The full answer to `req`; never throws (a failure is a 500 problem).
    virtual boost::asio::awaitable<response> handle(request req) = 0;

protected:
    // Virtual: server derives from it and is not final (clang's
    // -Wdelete-non-abstract-non-virtual-dtor, when a std::optional<server> is destroyed).
    virtual ~request_handler() = default;
};

namespace detail {

/// Whether a path needs the token: /api/... always, /metrics unless it is public.
inline bool needs_token(std::vector<std::string> const& seg, bool public_metrics) {
    return !seg.empty() &&
           (seg[0] == "api" || (seg.size() == 1 && seg[0] == "metrics" && !public_metrics));
}

/// Whether `req` carries `Authorization: Bearer <token>`.
inline bool token_ok(request const& req, std::string_view token) {
    auto const auth = req[boost::beast::http::field::authorization];
    constexpr std::string_view scheme = "Bearer ";
    return auth.size() > scheme.size() &&
           boost::beast::iequals(auth.substr(0, scheme.size()), scheme) &&
           token_matches(auth.substr(scheme.size()), token);
}

/// Whether `req` carries the token and is for a path that needs it: the only requests whose
/// bodies are read (others are answered from their head).
inline bool reads_body(request const& req, server_params const& p) {
    auto const target = boost::urls::parse_origin_form(req.target());
    return target && needs_token(path_segments(*target), p.public_metrics) &&
           token_ok(req, p.token);
}

/// A parse error of the request itself, as opposed to the connection ending or timing out.
inline bool is_malformed(boost::system::error_code const& ec) {
    namespace http = boost::beast::http;
    return ec && ec.category() == make_error_code(http::error::bad_method).category() &&
           ec != http::error::end_of_stream && ec != http::error::partial_message &&
           ec != http::error::short_read;
}

/// 400 for a request that is not HTTP/1.1 as RFC 9112 writes it (request line, fields, chunks).
inline response bad_request(boost::system::error_code const& ec) {
    return problem_response(400, "bad_request", "",
                            "the request cannot be read as HTTP/1.1: " + ec.message());
}

/**
 * The slot a session holds in the listener (connection_table): a waiting connection may be
 * displaced by a new one, a busy one keeps its slot. Thread safety: any thread.
 */
class session_slots {
public:
    /// Connection `id` runs on `socket` (from now on, stop and displacement close it); closes
    /// it at once when the listener stopped or displaced it before it started.
    virtual void attach(std::uint64_t id, boost::asio::ip::tcp::socket& socket) = 0;
    /// `id` waits for its next request: it may be displaced from now on.
    virtual void waiting(std::uint64_t id) = 0;
    /// `id` reads or answers a request; false when it was displaced (it is to close).
    virtual bool busy(std::uint64_t id) = 0;
    /// `id` has ended: closes `socket` (so that nothing closes it twice) and frees the slot.
    virtual void detach(std::uint64_t id, boost::asio::ip::tcp::socket& socket) = 0;

protected:
    ~session_slots() = default;
};

/**
 * One connection: reads requests under the limits and deadlines of server_params, answers each
 * through the request_handler, keeps the connection alive while the client asks to.
 *
 * A request whose body would not be read by a handler (no valid token, or a path that needs
 * none) is answered from its head, and the connection closed; so are requests over a limit
 * (413, 431) and malformed ones (400).
 */
class session {
public:
    session(boost::asio::ip::tcp::socket socket, std::uint64_t id, session_slots& slots,
            request_handler& handler, server_params const& params)
        : stream_(std::move(socket))
        , id_(id)
        , slots_(slots)
        , handler_(handler)
        , p_(params) {}

    /// Runs until the connection ends; never throws.
    boost::asio::awaitable<void> run();

private:
    using parser_type = boost::beast::http::request_parser<boost::beast::http::string_body>;

    struct read_result {
        std::optional<response> early{}; ///< to answer at once, the request unread, and close
        bool closed = false;             ///< ended or timed out, or displaced: nobody to answer
        bool head_read = false;          ///< the request's head was read
    };

    /// Reads the next request into `parser`: in full, unless the result says otherwise.
    boost::asio::awaitable<read_result> read(parser_type& parser);
    /// Writes an answer given before the request was read, then closes gently.
    boost::asio::awaitable<void> answer_early(response res, bool head);

    response too_large() const {
        return problem_response(413, "body_too_large", "body",
                                "is larger than " + std::to_string(p_.body_limit) + " bytes");
    }

    boost::beast::tcp_stream stream_;
    boost::beast::flat_buffer buffer_;
    std::uint64_t id_;
    session_slots& slots_;
    request_handler& handler_;
    server_params const& p_;
};

inline boost::asio::awaitable<session::read_result> session::read(parser_type& parser) {
    namespace http = boost::beast::http;
    constexpr auto use_tuple = boost::asio::as_tuple(boost::asio::use_awaitable);
    read_result r;
    stream_.expires_after(p_.request_timeout);
    parser.header_limit(static_cast<std::uint32_t>(p_.header_limit));
    parser.body_limit(p_.body_limit);
    auto [ec, n] = co_await http::async_read_header(stream_, buffer_, parser, use_tuple);
    (void)n;
    if (ec == http::error::header_limit) {
        r.early = problem_response(431, "headers_too_large", "",
                                   "the request headers exceed " + std::to_string(p_.header_limit) +
                                       " bytes");
    } else if (ec == http::error::body_limit) { // a Content-Length over the limit
        r.early = too_large();
    } else if (is_malformed(ec)) {
        r.early = bad_request(ec);
    } else if (ec) {
        r.closed = true;
    }
    if (ec)
        co_return r;
    r.head_read = true;
    if (parser.content_length() && *parser.content_length() > p_.body_limit) {
        r.early = too_large();
        co_return r;
    }
    if (auto const hosts = parser.get().count(http::field::host);
        hosts > 1 || (hosts == 0 && parser.get().version() >= 11)) {
        // RFC 9112 §3.2: exactly one Host in HTTP/1.1, never two
        r.early = problem_response(400, "bad_request", "Host",
                                   hosts ? "is given more than once"
                                         : "is required in an HTTP/1.1 request");
        co_return r;
    }
    if (parser.is_done())
        co_return r;
    if (!reads_body(parser.get(), p_)) {
        // No valid token for a path that needs one (401), or a route that reads no body:
        // answered from the head, the body neither invited (no 100) nor read.
        request head = parser.get();
        response res = co_await handler_.handle(std::move(head));
        r.early = std::move(res);
        co_return r;
    }
    if (!slots_.busy(id_)) {
        r.closed = true;
        co_return r;
    }
    if (boost::beast::iequals(parser.get()[http::field::expect], "100-continue")) {
        http::response<http::empty_body> cont{http::status::continue_, 11};
        auto [wec, wn] = co_await http::async_write(stream_, cont, use_tuple);
        (void)wn;
        if (wec) {
            r.closed = true;
            co_return r;
        }
    }
    auto [rec, rn] = co_await http::async_read(stream_, buffer_, parser, use_tuple);
    (void)rn;
    if (rec == http::error::body_limit)
        r.early = too_large();
    else if (is_malformed(rec))
        r.early = bad_request(rec);
    else if (rec)
        r.closed = true;
    co_return r;
}

inline boost::asio::awaitable<void> session::answer_early(response res, bool head) {
    namespace http = boost::beast::http;
    constexpr auto use_tuple = boost::asio::as_tuple(boost::asio::use_awaitable);
    // The rest of the request is unread: answer and close. An answer to HEAD never has a body
    // (RFC 9110 §9.3.2), not even an error's: the client would read it as the next response.
    if (head)
        res.body().clear();
    res.keep_alive(false);
    stream_.expires_after(p_.request_timeout);
    auto [wec, wn] = co_await http::async_write(stream_, res, use_tuple);
    (void)wn;
    if (wec)
        co_return;
    // Closing with unread input would reset the connection, and the client could lose the
    // answer: stop sending, then drain what it still sends.
    slots_.waiting(id_);
    boost::system::error_code sec;
    stream_.socket().shutdown(boost::asio::ip::tcp::socket::shutdown_send, sec);
    stream_.expires_after(std::min<duration>(p_.request_timeout, std::chrono::seconds(2)));
    std::size_t drained = 0;
    std::vector<char> scratch(16 * 1024);
    while (drained < 16 * p_.body_limit) {
        auto [dec, dn] = co_await stream_.async_read_some(boost::asio::buffer(scratch), use_tuple);
        if (dec)
            break;
        drained += dn;
    }
}

inline boost::asio::awaitable<void> session::run() {
    namespace http = boost::beast::http;
    constexpr auto use_tuple = boost::asio::as_tuple(boost::asio::use_awaitable);
    slots_.attach(id_, stream_.socket());
    try {
        for (;;) {
            // Waiting for a request is idle time. From its first byte, its head and body must
            // arrive within request_timeout: one deadline, which drip-fed bytes do not renew.
            if (buffer_.size() == 0) {
                stream_.expires_after(p_.idle_timeout);
                auto [ec, n] = co_await stream_.async_read_some(buffer_.prepare(4096), use_tuple);
                if (ec)
                    break;
                buffer_.commit(n);
            }
            parser_type parser;
            read_result r = co_await read(parser);
            if (r.early) {
                bool const head = r.head_read && parser.get().method() == http::verb::head;
                co_await answer_early(std::move(*r.early), head);
                break;
            }
            if (r.closed || !slots_.busy(id_))
                break;
            request req = parser.release();
            bool const keep_alive = req.keep_alive();
            stream_.expires_never(); // Test and Redeliver wait for the receiver
            response res = co_await handler_.handle(std::move(req));
            res.keep_alive(keep_alive);
            stream_.expires_after(p_.request_timeout);
            auto [wec, wn] = co_await http::async_write(stream_, res, use_tuple);
            (void)wn;
            if (wec || !keep_alive)
                break;
            slots_.waiting(id_);
        }
    } catch (std::exception const&) {
        // handle() answers every failure itself; anything else only ends this connection
    }
    boost::system::error_code ec;
    stream_.socket().shutdown(boost::asio::ip::tcp::socket::shutdown_both, ec);
    slots_.detach(id_, stream_.socket());
}

/// Runs a session over `socket` until the connection ends.
inline boost::asio::awaitable<void> run_session(boost::asio::ip::tcp::socket socket,
                                                std::uint64_t id, session_slots& slots,
                                                request_handler& handler,
                                                server_params const& params) {
    session s(std::move(socket), id, slots, handler, params);
    co_await s.run();
}

} // namespace detail
} // namespace herald::admin

#endif
