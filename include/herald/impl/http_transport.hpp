#ifndef HERALD_IMPL_HTTP_TRANSPORT_HPP
#define HERALD_IMPL_HTTP_TRANSPORT_HPP

#include <herald/detail/utf8.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/url/parse.hpp>

#include <algorithm>
#include <limits>
#include <span>

namespace herald {

namespace detail {

// A failure while talking to the receiver, as a herald error where one fits and a sentence.
inline std::pair<boost::system::error_code, std::string>
describe_io_error(boost::system::error_code ec, std::string_view phase, duration timeout) {
    namespace http = boost::beast::http;
    if (ec == boost::beast::error::timeout)
        return {make_error_code(error::timeout), "no complete response within " +
                                                     format_duration(timeout) + " (timed out " +
                                                     std::string(phase) + ")"};
    if (ec == http::error::header_limit)
        return {make_error_code(error::response_too_large), "response headers too large"};
    if (ec == http::error::end_of_stream || ec == boost::asio::error::eof)
        return {ec, "the receiver closed the connection " + std::string(phase)};
    if (ec.category() == http::make_error_code(http::error::bad_version).category())
        return {make_error_code(error::malformed_response),
                "malformed HTTP response: " + ec.message()};
    if (ec == boost::asio::error::operation_aborted)
        return {ec, "cancelled " + std::string(phase)};
    return {ec, ec.message() + " (" + std::string(phase) + ")"};
}

// A pooled connection that fails before any byte of a response was read was most likely
// closed by the server while idle: the request can go again on a fresh connection.
inline bool is_stale_connection(boost::system::error_code ec) {
    namespace http = boost::beast::http;
    return ec == http::error::end_of_stream || ec == boost::asio::error::eof ||
           ec == boost::asio::error::connection_reset || ec == boost::asio::error::broken_pipe ||
           ec == boost::asio::error::connection_aborted;
}

} // namespace detail

inline http_transport::connection_ptr http_transport::take_idle(std::string const& origin) {
    auto const now = std::chrono::steady_clock::now();
    std::lock_guard lock(pool_->mutex);
    auto it = pool_->idle.find(origin);
    if (it == pool_->idle.end())
        return nullptr;
    auto& v = it->second;
    while (!v.empty()) {
        auto c = std::move(v.back());
        v.pop_back();
        if (now - c->idle_since < p_->idle_timeout)
            return c;
        // too old: the server has probably closed it; drop it (closing is local and quick)
    }
    return nullptr;
}

inline void http_transport::give_back(std::string const& origin, connection_ptr c) {
    c->idle_since = std::chrono::steady_clock::now();
    c->stream.expires_never();
    std::lock_guard lock(pool_->mutex);
    auto& v = pool_->idle[origin];
    if (v.size() < p_->max_idle_per_origin)
        v.push_back(std::move(c));
}

inline boost::asio::awaitable<send_result> http_transport::async_send(http_request req) {
    namespace asio = boost::asio;
    namespace beast = boost::beast;
    namespace http = beast::http;
    using steady = std::chrono::steady_clock;
    auto const t0 = steady::now();
    send_result res;
    auto fail = [&](boost::system::error_code ec, std::string why) {
        res.ec = ec;
        res.error = std::move(why);
    };

    auto const parsed = boost::urls::parse_uri(req.url);
    if (!parsed) {
        fail(parsed.error(), "invalid URL '" + req.url + "': " + parsed.error().message());
        co_return res;
    }
    auto const& u = *parsed;
    if (!detail::iequals(u.scheme(), "http")) {
        fail(make_error_code(error::unsupported_scheme),
             "scheme '" + std::string(u.scheme()) + "' is not supported by this transport");
        co_return res;
    }
    std::string const host = u.host_address();
    std::string const port = u.has_port() ? std::string(u.port()) : std::string("80");
    std::string const origin = "http://" + host + ":" + port;
    std::string target(u.encoded_target());
    if (target.empty() || target.front() != '/')
        target.insert(0, "/");

    auto const total = req.timeout.count() > 0 ? req.timeout : p_->timeout;
    auto const connect_limit =
        req.connect_timeout.count() > 0 ? req.connect_timeout : p_->connect_timeout;
    auto const deadline = t0 + total;

    static std::string const empty_body;
    std::string const& body = req.body ? *req.body : empty_body;
    http::request<http::span_body<char const>> msg{http::verb::post, target, 11};
    msg.set(http::field::host, u.encoded_host_and_port());
    if (!req.content_type.empty())
        msg.set(http::field::content_type, req.content_type);
    for (auto const& h : req.headers)
        msg.set(h.name, h.value);
    if (req.header("User-Agent").empty())
        msg.set(http::field::user_agent, user_agent);
    msg.body() = std::span<char const>(body.data(), body.size());
    msg.prepare_payload();

    auto ex = co_await asio::this_coro::executor;
    for (int round = 0; round < 2; ++round) {
        // A second round only follows a stale pooled connection, and always dials afresh.
        connection_ptr c = round == 0 ? take_idle(origin) : nullptr;
        bool const reused = c != nullptr;
        if (!c) {
            c = std::make_unique<connection>(ex);
            asio::ip::tcp::resolver resolver(ex);
            auto [rec, endpoints] =
                co_await resolver.async_resolve(host, port, asio::as_tuple(asio::use_awaitable));
            if (rec) {
                fail(rec, "could not resolve '" + host + "': " + rec.message());
                break;
            }
            auto const connect_deadline = std::min(steady::now() + connect_limit, deadline);
            c->stream.expires_at(connect_deadline);
            auto [cec, ep] =
                co_await c->stream.async_connect(endpoints, asio::as_tuple(asio::use_awaitable));
            if (cec == beast::error::timeout) {
                bool const total_first = deadline <= connect_deadline;
                fail(make_error_code(total_first ? error::timeout : error::connect_timeout),
                     "no connection to " + host + ":" + port + " within " +
                         format_duration(total_first ? total : connect_limit));
                break;
            }
            if (cec) {
                fail(cec, "could not connect to " + host + ":" + port + ": " + cec.message());
                break;
            }
            std::lock_guard lock(pool_->mutex);
            ++pool_->opened;
        }
        c->stream.expires_at(deadline);
        auto [wec, wn] =
            co_await http::async_write(c->stream, msg, asio::as_tuple(asio::use_awaitable));
        if (wec) {
            if (reused && detail::is_stale_connection(wec))
                continue;
            auto [ec, why] = detail::describe_io_error(wec, "while sending the request", total);
            fail(ec, std::move(why));
            break;
        }
        http::response_parser<http::buffer_body> parser;
        parser.header_limit(static_cast<std::uint32_t>(p_->max_header));
        parser.body_limit(std::numeric_limits<std::uint64_t>::max()); // capped below
        auto [hec, hn] = co_await http::async_read_header(c->stream, c->buffer, parser,
                                                          asio::as_tuple(asio::use_awaitable));
        if (hec) {
            if (reused && hn == 0 && c->buffer.size() == 0 && detail::is_stale_connection(hec))
                continue;
            auto [ec, why] =
                detail::describe_io_error(hec, "while waiting for the response", total);
            fail(ec, std::move(why));
            break;
        }
        auto const& head = parser.get();
        res.status = head.result_int();
        if (auto it = head.find(http::field::location); it != head.end())
            detail::append_utf8(res.location, it->value().substr(0, 2048));
        if (auto it = head.find(http::field::retry_after); it != head.end())
            res.retry_after = std::string(it->value().substr(0, 128));

        // Read the body: keep the start for the log, drain the rest up to a bound so that the
        // connection can be reused.
        std::string raw;
        bool complete = true;
        std::size_t drained = 0;
        char buf[8192];
        while (!parser.is_done()) {
            parser.get().body().data = buf;
            parser.get().body().size = sizeof buf;
            auto [bec, bn] = co_await http::async_read(c->stream, c->buffer, parser,
                                                       asio::as_tuple(asio::use_awaitable));
            std::size_t const got = sizeof buf - parser.get().body().size;
            if (raw.size() < p_->max_excerpt)
                raw.append(buf, std::min(got, p_->max_excerpt - raw.size()));
            drained += got;
            if (bec && bec != http::error::need_buffer) {
                complete = false;
                break;
            }
            if (drained > p_->max_drain) {
                complete = false;
                break;
            }
        }
        detail::append_utf8(res.excerpt, raw);
        if (complete && parser.keep_alive())
            give_back(origin, std::move(c));
        else {
            boost::system::error_code ignored;
            c->stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
        }
        break;
    }
    res.elapsed = std::chrono::duration_cast<duration>(steady::now() - t0);
    co_return res;
}

} // namespace herald

#endif
