#ifndef HERALD_IMPL_HTTP_TRANSPORT_HPP
#define HERALD_IMPL_HTTP_TRANSPORT_HPP

#include <herald/detail/utf8.hpp>
#include <herald/transport/detail/io_errors.hpp>
#include <herald/transport/detail/request_head.hpp>
#include <herald/transport/detail/response_reader.hpp>
#include <herald/transport/detail/route.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/read.hpp>

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <limits>

namespace herald {

inline void http_transport::connection::watch(std::chrono::steady_clock::time_point until) {
    timed_out = false;
    deadline = until;
    if (timer_armed && armed_for <= until)
        return; // it fires in time and then sleeps on until the current deadline
    armed_for = until;
    timer_armed = true;
    timer.expires_at(until); // a wait armed for later ends as operation_aborted
    timer.async_wait([weak = weak_from_this(), until](boost::system::error_code ec) {
        auto self = weak.lock();
        if (!self || ec || self->armed_for != until)
            return; // gone, closed, or superseded by a wait armed for an earlier time
        self->timer_armed = false;
        if (self->deadline == std::chrono::steady_clock::time_point::max())
            return; // idle: nothing to watch until the next exchange
        if (std::chrono::steady_clock::now() >= self->deadline) {
            // Closing (not only cancelling) also fails any operation started after this.
            self->timed_out = true;
            boost::system::error_code ignored;
            self->socket().close(ignored);
        } else {
            self->watch(self->deadline);
        }
    });
}

inline void http_transport::connection::close() {
    unwatch();
    timer.cancel();
    if (!plain && !tls)
        return;
    boost::system::error_code ignored;
    auto& s = socket();
    if (s.is_open()) {
        s.shutdown(boost::asio::ip::tcp::socket::shutdown_both, ignored);
        s.close(ignored);
    }
}

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
    c->unwatch();
    std::lock_guard lock(pool_->mutex);
    auto& v = pool_->idle[key];
    if (v.size() < p_->max_idle_per_origin)
        v.push_back(std::move(c));
}

// One TLS context per trust configuration, built once: loading a CA bundle is file I/O.
inline result<std::shared_ptr<boost::asio::ssl::context>>
http_transport::tls_context(http_request const& req, std::string const& key) {
    namespace ssl = boost::asio::ssl;
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
boost::asio::awaitable<http_transport::exchange_end>
http_transport::exchange(Stream& stream, connection& c, bool reused, std::string_view body,
                         duration total, send_result& res) {
    namespace asio = boost::asio;
    namespace http = boost::beast::http;
    // The watchdog closes the socket at the deadline: what fails then failed by timing out.
    auto io_error = [&](boost::system::error_code ec) {
        return c.timed_out ? make_error_code(boost::beast::error::timeout) : ec;
    };
    auto fail = [&](boost::system::error_code ec, std::string_view phase) {
        auto [code, why] = detail::describe_io_error(io_error(ec), phase, total);
        res.ec = code;
        res.error = std::move(why);
        return exchange_end::failed;
    };
    // Head and body in one gather write: one system call for a small request.
    std::array<asio::const_buffer, 2> const out{asio::buffer(c.head),
                                                asio::buffer(body.data(), body.size())};
    auto [wec, wn] = co_await asio::async_write(stream, out, asio::as_tuple(asio::use_awaitable));
    if (wec) {
        if (reused && !c.timed_out && detail::is_stale_connection(wec))
            co_return exchange_end::stale;
        co_return fail(wec, "while sending the request");
    }

    std::string raw;
    // Interim responses (100 Continue, 102, 103) come before the final one and say nothing
    // about it (RFC 9110 15.2): each is read whole and dropped, with a fresh parser for the
    // next response, up to a bound so that an endless stream of them cannot hold the request.
    std::optional<detail::response_reader> reader;
    boost::system::error_code rec;
    for (std::size_t interim = 0;; ++interim) {
        reader.emplace(res, raw, p_->max_excerpt, p_->max_drain);
        reader->header_limit(static_cast<std::uint32_t>(p_->max_header));
        reader->body_limit(std::numeric_limits<std::uint64_t>::max()); // the reader caps the drain
        std::size_t const buffered = c.buffer.size();
        auto [read_ec, rn] = co_await http::async_read(stream, c.buffer, *reader,
                                                       asio::as_tuple(asio::use_awaitable));
        rec = read_ec;
        if (rec && !reader->is_header_done()) {
            res.status = 0;
            res.location.clear();
            res.retry_after.clear();
            if (reused && interim == 0 && !c.timed_out && rn == 0 && buffered == 0 &&
                c.buffer.size() == 0 && detail::is_stale_connection(rec))
                co_return exchange_end::stale;
            co_return fail(rec, interim == 0 ? "while waiting for the response"
                                             : "while waiting for the response after an "
                                               "interim (1xx) response");
        }
        if (rec || res.status < 100 || res.status >= 200)
            break;
        if (res.status == 101) {
            // an upgrade herald never asked for: the connection no longer speaks HTTP/1.1
            res.ec = make_error_code(error::malformed_response);
            res.error = "the receiver answered 101 Switching Protocols to a request that "
                        "asked for no upgrade";
            co_return exchange_end::failed;
        }
        if (interim == detail::max_interim_responses) {
            res.ec = make_error_code(error::malformed_response);
            res.error = "the receiver sent more than " +
                        std::to_string(detail::max_interim_responses) +
                        " interim (1xx) responses before a final one";
            co_return exchange_end::failed;
        }
        res.location.clear();
        res.retry_after.clear();
    }
    bool complete = !rec;
    if (rec) {
        if (reader->drain_exceeded())
            res.note = "response body longer than " + std::to_string(p_->max_drain) +
                       " bytes: the rest was not read";
        else if (io_error(rec) == boost::beast::error::timeout)
            res.note = "response body cut off at the " + format_duration(total) + " timeout";
        else
            res.note = "response body incomplete: " + rec.message();
    }
    detail::append_utf8(res.excerpt, raw);
    co_return complete && reader->keep_alive() ? exchange_end::keep : exchange_end::close;
}

inline boost::asio::awaitable<send_result> http_transport::async_send(http_request const& req) {
    namespace asio = boost::asio;
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

    // The URL's parse, the pool key and the head's start: made once per distinct URL and
    // trust settings (detail::route_cache), shared by every attempt with them.
    auto const routed = pool_->routes.get(req);
    if (!routed) {
        fail(routed.error().code, routed.error().message);
        co_return finish();
    }
    detail::route const& route = **routed;
    bool const https = route.https;
    if (!https && p_->https_only) {
        fail(make_error_code(error::unsupported_scheme),
             "plain http is refused (the transport is https_only)");
        co_return finish();
    }
    std::string const& host = route.host;
    std::string const& port = route.port;
    std::string const& key = route.pool_key;

    std::shared_ptr<asio::ssl::context> tls;
    if (https) {
        auto ctx = tls_context(req, route.tls_key);
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
    std::string_view const body = req.body ? std::string_view(*req.body) : std::string_view();

    auto ex = co_await asio::this_coro::executor;
    for (int round = 0; round < 2; ++round) {
        // A second round only follows a stale pooled connection, and always dials afresh.
        connection_ptr c = round == 0 ? take_idle(key) : nullptr;
        bool const reused = c != nullptr;
        if (!c) {
            c = std::make_shared<connection>(ex);
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
            c->watch(connect_deadline);
            auto [cec, ep] = co_await asio::async_connect(c->socket(), endpoints,
                                                          asio::as_tuple(asio::use_awaitable));
            if (cec && c->timed_out) {
                bool const total_first = deadline <= connect_deadline;
                fail(make_error_code(total_first ? error::timeout : error::connect_timeout),
                     "no connection to " + host + ":" + port + " within " +
                         format_duration(total_first ? total : connect_limit));
                c->close();
                break;
            }
            if (cec) {
                fail(cec, "could not connect to " + host + ":" + port + ": " + cec.message());
                c->close();
                break;
            }
            {
                boost::system::error_code ignored;
                c->socket().set_option(asio::ip::tcp::no_delay(true), ignored);
            }
            {
                std::lock_guard lock(pool_->mutex);
                ++pool_->opened;
            }
            if (https) {
                c->watch(deadline);
                SSL* ssl = c->tls->native_handle();
                if (!route.ip_host)
                    SSL_set_tlsext_host_name(ssl, host.c_str()); // SNI
                if (req.verify_tls) {
                    if (route.ip_host)
                        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host.c_str());
                    else
                        SSL_set1_host(ssl, host.c_str());
                }
                auto [hec] = co_await c->tls->async_handshake(asio::ssl::stream_base::client,
                                                              asio::as_tuple(asio::use_awaitable));
                if (hec) {
                    long const verdict = SSL_get_verify_result(ssl);
                    if (c->timed_out)
                        fail(make_error_code(error::timeout),
                             "no TLS handshake within " + format_duration(total));
                    else if (req.verify_tls && verdict != X509_V_OK)
                        fail(make_error_code(error::tls_failed),
                             "TLS certificate of " + host +
                                 " rejected: " + X509_verify_cert_error_string(verdict));
                    else
                        fail(make_error_code(error::tls_failed),
                             "TLS handshake with " + host + " failed: " + hec.message());
                    c->close();
                    break;
                }
            }
        }
        if (auto bad = detail::format_head(c->head, route.head_start, req, body.size())) {
            fail(make_error_code(error::invalid_field),
                 "header '" + *bad + "' has an invalid name or a CR, LF or NUL in its value");
            give_back(key, std::move(c)); // nothing was sent on it
            break;
        }
        c->watch(deadline);
        exchange_end end;
        if (c->tls)
            end = co_await exchange(*c->tls, *c, reused, body, total, res);
        else
            end = co_await exchange(*c->plain, *c, reused, body, total, res);
        c->unwatch();
        if (end == exchange_end::stale) {
            c->close();
            continue;
        }
        if (end == exchange_end::keep)
            give_back(key, std::move(c));
        else
            c->close();
        break;
    }
    co_return finish();
}

} // namespace herald

#endif
