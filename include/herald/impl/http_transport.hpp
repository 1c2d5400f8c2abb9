#ifndef HERALD_IMPL_HTTP_TRANSPORT_HPP
#define HERALD_IMPL_HTTP_TRANSPORT_HPP

#include <herald/detail/utf8.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/url/parse.hpp>

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <atomic>
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
    if (ec == http::error::end_of_stream || ec == boost::asio::error::eof ||
        ec == boost::asio::ssl::error::stream_truncated)
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
           ec == boost::asio::error::connection_aborted ||
           ec == boost::asio::ssl::error::stream_truncated;
}

} // namespace detail

namespace detail {
// A name lookup raced against a deadline. getaddrinfo cannot be interrupted, so whichever of
// the answer and the timer comes first wakes the waiting coroutine through a thread-safe
// channel; the state is shared by both handlers and outlives the coroutine's frame.
struct pending_lookup {
    explicit pending_lookup(boost::asio::any_io_executor ex)
        : resolver(ex)
        , timer(boost::asio::make_strand(ex))
        , signal(ex, 2) {}
    boost::asio::ip::tcp::resolver resolver;
    boost::asio::steady_timer timer;
    boost::asio::experimental::concurrent_channel<void(boost::system::error_code)> signal;
    boost::system::error_code ec;
    boost::asio::ip::tcp::resolver::results_type results;
    std::atomic<bool> done{false};
};
} // namespace detail

inline http_transport::connection_ptr http_transport::take_idle(std::string const& key) {
    auto const now = std::chrono::steady_clock::now();
    std::lock_guard lock(pool_->mutex);
    auto it = pool_->idle.find(key);
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

inline void http_transport::give_back(std::string const& key, connection_ptr c) {
    c->idle_since = std::chrono::steady_clock::now();
    c->layer().expires_never();
    std::lock_guard lock(pool_->mutex);
    auto& v = pool_->idle[key];
    if (v.size() < p_->max_idle_per_origin)
        v.push_back(std::move(c));
}

// One TLS context per trust configuration, built once: loading a CA bundle is file I/O.
inline result<std::shared_ptr<boost::asio::ssl::context>>
http_transport::tls_context(http_request const& req) {
    namespace ssl = boost::asio::ssl;
    std::string const key = std::string(req.verify_tls ? "verify:" : "noverify:") +
                            (req.verify_tls && req.ca_file ? *req.ca_file : "");
    std::lock_guard lock(pool_->mutex);
    if (auto it = pool_->contexts.find(key); it != pool_->contexts.end())
        return it->second;
    auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
    ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                     ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
    boost::system::error_code ec;
    if (req.verify_tls) {
        ctx->set_verify_mode(ssl::verify_peer, ec);
        if (req.ca_file)
            ctx->load_verify_file(*req.ca_file, ec);
        else
            ctx->set_default_verify_paths(ec);
        if (ec)
            return make_problem(
                error::tls_failed, "ca_file",
                req.ca_file ? "cannot load CA bundle '" + *req.ca_file + "': " + ec.message()
                            : "cannot load the system trust store: " + ec.message());
    } else {
        ctx->set_verify_mode(ssl::verify_none, ec);
    }
    pool_->contexts.emplace(key, ctx);
    return ctx;
}

template <class Stream>
boost::asio::awaitable<http_transport::exchange_end> http_transport::exchange(
    Stream& stream, connection& c, bool reused,
    boost::beast::http::request<boost::beast::http::span_body<char const>> const& msg,
    duration total, send_result& res) {
    namespace asio = boost::asio;
    namespace http = boost::beast::http;
    auto fail = [&](boost::system::error_code ec, std::string_view phase) {
        auto [code, why] = detail::describe_io_error(ec, phase, total);
        res.ec = code;
        res.error = std::move(why);
        return exchange_end::failed;
    };
    auto [wec, wn] = co_await http::async_write(stream, msg, asio::as_tuple(asio::use_awaitable));
    if (wec) {
        if (reused && detail::is_stale_connection(wec))
            co_return exchange_end::stale;
        co_return fail(wec, "while sending the request");
    }
    http::response_parser<http::buffer_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(p_->max_header));
    parser.body_limit(std::numeric_limits<std::uint64_t>::max()); // capped below
    auto [hec, hn] = co_await http::async_read_header(stream, c.buffer, parser,
                                                      asio::as_tuple(asio::use_awaitable));
    if (hec) {
        if (reused && hn == 0 && c.buffer.size() == 0 && detail::is_stale_connection(hec))
            co_return exchange_end::stale;
        co_return fail(hec, "while waiting for the response");
    }
    auto const& head = parser.get();
    res.status = head.result_int();
    if (auto it = head.find(http::field::location); it != head.end())
        detail::append_utf8(res.location, it->value().substr(0, 2048));
    if (auto it = head.find(http::field::retry_after); it != head.end())
        res.retry_after = std::string(it->value().substr(0, 128));

    // Read the body: keep the start for the log, drain the rest up to a bound so that the
    // connection can be reused. A body that never ends is cut by the total timeout.
    std::string raw;
    bool complete = true;
    std::size_t drained = 0;
    char buf[8192];
    while (!parser.is_done()) {
        parser.get().body().data = buf;
        parser.get().body().size = sizeof buf;
        auto [bec, bn] = co_await http::async_read(stream, c.buffer, parser,
                                                   asio::as_tuple(asio::use_awaitable));
        std::size_t const got = sizeof buf - parser.get().body().size;
        if (raw.size() < p_->max_excerpt)
            raw.append(buf, std::min(got, p_->max_excerpt - raw.size()));
        drained += got;
        if (bec && bec != http::error::need_buffer) {
            complete = false;
            res.note = bec == boost::beast::error::timeout
                           ? "response body cut off at the " + format_duration(total) + " timeout"
                           : "response body incomplete: " + bec.message();
            break;
        }
        if (drained > p_->max_drain) {
            complete = false;
            res.note = "response body longer than " + std::to_string(p_->max_drain) +
                       " bytes: the rest was not read";
            break;
        }
    }
    detail::append_utf8(res.excerpt, raw);
    co_return complete&& parser.keep_alive() ? exchange_end::keep : exchange_end::close;
}

inline boost::asio::awaitable<send_result> http_transport::async_send(http_request const& req) {
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
    auto finish = [&]() -> send_result {
        res.elapsed = std::chrono::duration_cast<duration>(steady::now() - t0);
        return std::move(res);
    };

    auto const parsed = boost::urls::parse_uri(req.url);
    if (!parsed) {
        fail(parsed.error(), "invalid URL '" + req.url + "': " + parsed.error().message());
        co_return finish();
    }
    auto const& u = *parsed;
    bool const https = detail::iequals(u.scheme(), "https");
    if (!https && !detail::iequals(u.scheme(), "http")) {
        fail(make_error_code(error::unsupported_scheme),
             "scheme '" + std::string(u.scheme()) + "' is not supported by this transport");
        co_return finish();
    }
    if (!https && p_->https_only) {
        fail(make_error_code(error::unsupported_scheme),
             "plain http is refused (the transport is https_only)");
        co_return finish();
    }
    std::string const host = u.host_address();
    std::string const port = u.has_port() ? std::string(u.port()) : https ? "443" : "80";
    bool const ip_host = u.host_type() == boost::urls::host_type::ipv4 ||
                         u.host_type() == boost::urls::host_type::ipv6;
    std::string target(u.encoded_target());
    if (target.empty() || target.front() != '/')
        target.insert(0, "/");
    // A pooled connection was vetted under its request's allow-list: only a request with the
    // same allow-list (and the same TLS trust) may reuse it.
    std::string key =
        std::string(https ? "https://" : "http://") + host + ":" + port +
        (https ? (req.verify_tls ? "|v|" + req.ca_file.value_or("") : "|n") : std::string());
    for (auto const& c : req.allow_private)
        key += "|" + c.to_string();

    std::shared_ptr<asio::ssl::context> tls;
    if (https) {
        auto ctx = tls_context(req);
        if (!ctx) {
            fail(ctx.error().code, ctx.error().message);
            co_return finish();
        }
        tls = *ctx;
    }

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
        connection_ptr c = round == 0 ? take_idle(key) : nullptr;
        bool const reused = c != nullptr;
        if (!c) {
            c = std::make_unique<connection>();
            // getaddrinfo cannot be interrupted: wait for it until the connect deadline at
            // most, and let a late answer fall on the floor (the state outlives this frame).
            auto lookup = std::make_shared<detail::pending_lookup>(ex);
            lookup->timer.expires_at(std::min(steady::now() + connect_limit, deadline));
            lookup->timer.async_wait([lookup](boost::system::error_code) {
                lookup->signal.try_send(boost::system::error_code{});
            });
            lookup->resolver.async_resolve(
                host, port, [lookup](boost::system::error_code ec, auto results) {
                    lookup->ec = ec;
                    lookup->results = std::move(results);
                    lookup->done.store(true, std::memory_order_release);
                    lookup->signal.try_send(boost::system::error_code{});
                    // the timer lives on its own strand: cancel it there
                    asio::post(lookup->timer.get_executor(), [lookup] { lookup->timer.cancel(); });
                });
            {
                auto [ignored] =
                    co_await lookup->signal.async_receive(asio::as_tuple(asio::use_awaitable));
                (void)ignored;
            }
            if (!lookup->done.load(std::memory_order_acquire)) {
                bool const total_first = deadline <= t0 + connect_limit;
                fail(make_error_code(total_first ? error::timeout : error::connect_timeout),
                     "could not resolve '" + host + "' within " +
                         format_duration(total_first ? total : connect_limit));
                break;
            }
            if (lookup->ec) {
                fail(lookup->ec, "could not resolve '" + host + "': " + lookup->ec.message());
                break;
            }
            auto const endpoints = lookup->results;
            // The SSRF guard: every address the name resolved to must pass, and the
            // connection goes to these addresses only (no second lookup to rebind).
            auto const policy = p_->addresses.with(req.allow_private);
            std::optional<std::string> refused;
            for (auto const& e : endpoints)
                if ((refused = policy.refusal(e.endpoint().address())))
                    break;
            if (refused) {
                fail(make_error_code(error::address_refused),
                     "refused to connect to " + host + ": " + *refused);
                break;
            }
            if (https) {
                c->context = tls;
                c->tls.emplace(ex, *tls);
            } else {
                c->plain.emplace(ex);
            }
            auto const connect_deadline = std::min(steady::now() + connect_limit, deadline);
            c->layer().expires_at(connect_deadline);
            auto [cec, ep] =
                co_await c->layer().async_connect(endpoints, asio::as_tuple(asio::use_awaitable));
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
            {
                std::lock_guard lock(pool_->mutex);
                ++pool_->opened;
            }
            if (https) {
                c->layer().expires_at(deadline);
                SSL* ssl = c->tls->native_handle();
                if (!ip_host)
                    SSL_set_tlsext_host_name(ssl, host.c_str()); // SNI
                if (req.verify_tls) {
                    if (ip_host)
                        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host.c_str());
                    else
                        SSL_set1_host(ssl, host.c_str());
                }
                auto [hec] = co_await c->tls->async_handshake(asio::ssl::stream_base::client,
                                                              asio::as_tuple(asio::use_awaitable));
                if (hec) {
                    long const verdict = SSL_get_verify_result(ssl);
                    if (hec == beast::error::timeout)
                        fail(make_error_code(error::timeout),
                             "no TLS handshake within " + format_duration(total));
                    else if (req.verify_tls && verdict != X509_V_OK)
                        fail(make_error_code(error::tls_failed),
                             "TLS certificate of " + host +
                                 " rejected: " + X509_verify_cert_error_string(verdict));
                    else
                        fail(make_error_code(error::tls_failed),
                             "TLS handshake with " + host + " failed: " + hec.message());
                    break;
                }
            }
        }
        c->layer().expires_at(deadline);
        exchange_end end;
        if (c->tls)
            end = co_await exchange(*c->tls, *c, reused, msg, total, res);
        else
            end = co_await exchange(*c->plain, *c, reused, msg, total, res);
        if (end == exchange_end::stale)
            continue;
        if (end == exchange_end::keep) {
            give_back(key, std::move(c));
        } else {
            boost::system::error_code ignored;
            c->layer().socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
        }
        break;
    }
    co_return finish();
}

} // namespace herald

#endif
