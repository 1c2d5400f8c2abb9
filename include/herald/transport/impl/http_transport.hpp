#ifndef HERALD_IMPL_HTTP_TRANSPORT_HPP
#define HERALD_IMPL_HTTP_TRANSPORT_HPP

#include <herald/detail/utf8.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/url/parse.hpp>

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <limits>

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
    boost::system::error_code ec{};
    boost::asio::ip::tcp::resolver::results_type results{};
    std::atomic<bool> done{false};
};
} // namespace detail

namespace detail {

/**
 * Reads a response without keeping its header fields: the status, Location and Retry-After
 * go to the send_result, the start of the body to `raw`, and the rest is only counted (up to
 * `max_drain`, then the read stops). No allocation per header field.
 */
class response_reader : public boost::beast::http::basic_parser<false> {
public:
    response_reader(send_result& res, std::string& raw, std::size_t max_excerpt,
                    std::size_t max_drain)
        : res_(res)
        , raw_(raw)
        , max_excerpt_(max_excerpt)
        , max_drain_(max_drain) {}

    /// True when the body was longer than max_drain and the read stopped there.
    bool drain_exceeded() const { return drain_exceeded_; }

private:
    using string_view = boost::beast::string_view;
    using error_code = boost::system::error_code;

    void on_request_impl(boost::beast::http::verb, string_view, string_view, int,
                         error_code& ec) override {
        ec = boost::beast::http::error::bad_version;
    }
    void on_response_impl(int code, string_view, int, error_code&) override {
        res_.status = static_cast<unsigned>(code);
    }
    void on_field_impl(boost::beast::http::field name, string_view, string_view value,
                       error_code&) override {
        if (name == boost::beast::http::field::location) {
            res_.location.clear();
            append_utf8(res_.location,
                        std::string_view(value.data(), std::min<std::size_t>(value.size(), 2048)));
        } else if (name == boost::beast::http::field::retry_after) {
            res_.retry_after.assign(value.data(), std::min<std::size_t>(value.size(), 128));
        }
    }
    void on_header_impl(error_code&) override {}
    void on_body_init_impl(boost::optional<std::uint64_t> const&, error_code&) override {}
    std::size_t on_body_impl(string_view body, error_code& ec) override { return take(body, ec); }
    void on_chunk_header_impl(std::uint64_t, string_view, error_code&) override {}
    std::size_t on_chunk_body_impl(std::uint64_t, string_view body, error_code& ec) override {
        return take(body, ec);
    }
    void on_finish_impl(error_code&) override {}

    std::size_t take(string_view body, error_code& ec) {
        if (raw_.size() < max_excerpt_)
            raw_.append(body.data(), std::min(body.size(), max_excerpt_ - raw_.size()));
        drained_ += body.size();
        if (drained_ > max_drain_) {
            drain_exceeded_ = true;
            ec = boost::beast::http::error::body_limit;
        }
        return body.size();
    }

    send_result& res_;
    std::string& raw_;
    std::size_t max_excerpt_;
    std::size_t max_drain_;
    std::size_t drained_ = 0;
    bool drain_exceeded_ = false;
};

/// Interim (1xx) responses read and dropped before a final one; one more fails the attempt.
inline constexpr std::size_t max_interim_responses = 16;

// The transport frames the message itself: these never come from the request's headers.
inline bool is_framing_header(std::string_view name) {
    return iequals(name, "Host") || iequals(name, "Content-Length") ||
           iequals(name, "Transfer-Encoding") || iequals(name, "Connection");
}

// A header line must not be able to end early or start another one.
inline bool is_safe_header_text(std::string_view s) {
    for (char const c : s)
        if (c == '\r' || c == '\n' || c == '\0')
            return false;
    return true;
}

/**
 * Writes the request head into `head` (reusing its capacity): request line, Host,
 * Content-Type, the request's headers, User-Agent unless given, Content-Length. One field per
 * name (case-insensitive): of two headers with one name the later is written, and
 * a Content-Type among the headers replaces the request's. Returns the name of an unsafe
 * header, if any, and writes nothing usable then.
 */
inline std::optional<std::string> format_head(std::string& head, std::string_view target,
                                              std::string_view host_and_port,
                                              http_request const& req, std::size_t body_size) {
    head.clear();
    head.append("POST ").append(target).append(" HTTP/1.1\r\nHost: ").append(host_and_port);
    auto const& hs = req.headers;
    auto const later = [&](std::size_t i, std::string_view name) {
        for (std::size_t j = i; j < hs.size(); ++j)
            if (iequals(hs[j].name, name))
                return true;
        return false;
    };
    if (!req.content_type.empty() && !later(0, "Content-Type")) {
        if (!is_safe_header_text(req.content_type))
            return std::string("Content-Type");
        head.append("\r\nContent-Type: ").append(req.content_type);
    }
    bool agent = false;
    for (std::size_t i = 0; i < hs.size(); ++i) {
        auto const& h = hs[i];
        if (h.name.empty() || !is_safe_header_text(h.name) || !is_safe_header_text(h.value) ||
            h.name.find(':') != std::string::npos)
            return h.name;
        if (is_framing_header(h.name) || later(i + 1, h.name))
            continue;
        agent = agent || iequals(h.name, "User-Agent");
        head.append("\r\n").append(h.name).append(": ").append(h.value);
    }
    if (!agent)
        head.append("\r\nUser-Agent: ").append(user_agent);
    char digits[24];
    auto const [end, ec] = std::to_chars(digits, digits + sizeof digits, body_size);
    (void)ec;
    head.append("\r\nContent-Length: ").append(digits, end).append("\r\n\r\n");
    return std::nullopt;
}

} // namespace detail

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
    std::string_view target = u.encoded_target();
    std::string rooted;
    if (target.empty() || target.front() != '/') {
        rooted.append("/").append(target);
        target = rooted;
    }
    // A pooled connection was vetted under its request's allow-list: only a request with the
    // same allow-list (and the same TLS trust) may reuse it.
    std::string key;
    key.reserve(32 + host.size());
    key.append(https ? "https://" : "http://").append(host).append(":").append(port);
    if (https) {
        key.append(req.verify_tls ? "|v|" : "|n");
        if (req.verify_tls && req.ca_file)
            key.append(*req.ca_file);
    }
    for (auto const& c : req.allow_private)
        key.append("|").append(c.to_string());

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
        if (auto bad =
                detail::format_head(c->head, target, u.encoded_host_and_port(), req, body.size())) {
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
