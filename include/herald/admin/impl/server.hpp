#ifndef HERALD_ADMIN_IMPL_SERVER_HPP
#define HERALD_ADMIN_IMPL_SERVER_HPP

#include <herald/admin/detail/util.hpp>
#include <herald/admin/page.hpp>
#include <herald/delivery.hpp>
#include <herald/detail/json_strict.hpp>
#include <herald/detail/json_writer.hpp>
#include <herald/log/metered_log.hpp>
#include <herald/version.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/url/parse.hpp>

#include <algorithm>
#include <cstdio>
#include <stdexcept>
#include <vector>

namespace herald::admin {

namespace detail {

namespace http = boost::beast::http;
namespace json = boost::json;

inline void common_headers(response& res) {
    res.set(http::field::server, user_agent);
    res.set(http::field::cache_control, "no-store");
    res.set("X-Content-Type-Options", "nosniff");
    res.set("Referrer-Policy", "no-referrer");
    res.set("X-Frame-Options", "DENY");
}

inline response make_response(unsigned status, std::string body, char const* content_type) {
    response res{static_cast<http::status>(status), 11};
    common_headers(res);
    res.set(http::field::content_type, content_type);
    res.body() = std::move(body);
    res.prepare_payload();
    return res;
}

inline response json_response(unsigned status, json::value const& v) {
    return make_response(status, herald::detail::serialize_json(v), "application/json");
}

/// RFC 9457 problem details, with `field` naming what was wrong and `code` herald's error name.
inline response problem_response(unsigned status, std::string const& code, std::string const& field,
                                 std::string const& detail) {
    json::object o;
    o["type"] = "about:blank";
    o["title"] = std::string(http::obsolete_reason(static_cast<http::status>(status)));
    o["status"] = status;
    o["code"] = code;
    if (!field.empty())
        o["field"] = field;
    o["detail"] = field.empty() ? detail : field + ": " + detail;
    return make_response(status, json::serialize(o), "application/problem+json");
}

inline response problem_response(problem const& p) {
    return problem_response(status_for(p.code), code_name(p.code), p.field, p.message);
}

inline response unauthorized(bool presented) {
    auto res = problem_response(401, "unauthorized", "Authorization",
                                presented ? "the bearer token is not valid"
                                          : "a bearer token is required (Authorization: Bearer …)");
    res.set(http::field::www_authenticate, presented
                                               ? R"(Bearer realm="herald", error="invalid_token")"
                                               : R"(Bearer realm="herald")");
    return res;
}

inline response method_not_allowed(char const* allow) {
    auto res = problem_response(405, "method_not_allowed", "",
                                std::string("this resource accepts ") + allow);
    res.set(http::field::allow, allow);
    return res;
}

/// 400 for a request that is not HTTP/1.1 as RFC 9112 writes it (request line, fields, chunks).
inline response bad_request(boost::system::error_code const& ec) {
    return problem_response(400, "bad_request", "",
                            "the request cannot be read as HTTP/1.1: " + ec.message());
}

/// A parse error of the request itself, as opposed to the connection ending or timing out.
inline bool is_malformed(boost::system::error_code const& ec) {
    return ec && ec.category() == make_error_code(http::error::bad_method).category() &&
           ec != http::error::end_of_stream && ec != http::error::partial_message &&
           ec != http::error::short_read;
}

/// The path's segments, without the empty last one of a trailing slash.
inline std::vector<std::string> path_segments(boost::urls::url_view const& target) {
    std::vector<std::string> seg;
    for (auto s : target.segments())
        seg.push_back(s);
    if (!seg.empty() && seg.back().empty())
        seg.pop_back(); // "/api/webhooks/" is "/api/webhooks"
    return seg;
}

/// Whether a route needs the token: /api/... always, /metrics unless it is public.
inline bool needs_token(std::vector<std::string> const& seg, bool public_metrics) {
    return !seg.empty() &&
           (seg[0] == "api" || (seg.size() == 1 && seg[0] == "metrics" && !public_metrics));
}

/// The request body as JSON: `body` names the problem when it is missing or malformed.
inline result<json::value> parse_body(request const& req) {
    auto const& b = req.body();
    if (b.find_first_not_of(" \t\r\n") == std::string::npos)
        return make_problem(error::invalid_field, "body", "is required (a JSON object)");
    auto v = herald::detail::parse_json_strict(
        b, "body"); // a key given twice is refused, not "last wins"
    if (!v)
        return v.error();
    if (!v->is_object())
        return make_problem(error::invalid_field, "body", "must be a JSON object");
    return v;
}

/// A webhook's params as JSON with the keys parse_webhook_params reads, except the secrets
/// and headers (to_json masks those): what a PATCH is merged into.
inline json::object editable_json(webhook const& w) {
    auto o = to_json(w);
    for (auto const* key :
         {"id", "created_at", "updated_at", "disabled_reason", "disabled_at", "secrets", "headers"})
        o.erase(key);
    return o;
}

/// Accepts every address when parsing: the store judges URLs with its own address policy.
inline address_policy parse_everything() {
    address_policy a;
    a.allow_all = true;
    return a;
}

inline std::string mask_header(std::string const& name, std::string const& value) {
    return is_sensitive_header(name) ? mask_header_value(value) : value;
}

/**
 * GET shows stored secrets, credential header values and URL query credentials masked, so
 * they cannot be sent back as they are. In a PUT or PATCH body, a masked value equal to a stored
 * one's mask stands for the stored value: a form can send back what it was given and add or remove
 * entries.
 */
inline void unmask(json::object& body, webhook const& current) {
    // GET shows the URL with its query credentials masked (mask_url): sent back as shown, it
    // stands for the stored URL; a PATCH starts from that shown form too (editable_json).
    if (auto* url = body.if_contains("url");
        url && url->is_string() && url->get_string() == mask_url(current.url))
        *url = current.url;
    if (auto* secrets = body.if_contains("secrets"); secrets && secrets->is_array())
        for (auto& v : secrets->get_array())
            if (v.is_string())
                for (auto const& s : current.secrets)
                    if (v.get_string() == s.to_string()) {
                        v = s.reveal();
                        break;
                    }
    if (auto* headers = body.if_contains("headers"); headers && headers->is_object())
        for (auto& kv : headers->get_object())
            if (kv.value().is_string())
                for (auto const& h : current.headers)
                    if (is_sensitive_header(h.name) && boost::beast::iequals(h.name, kv.key()) &&
                        kv.value().get_string() == mask_header(h.name, h.value)) {
                        kv.value() = h.value;
                        break;
                    }
}

/// The log entry for the API: its id (the sink's seq) first, then to_json's keys; in full,
/// with `request` (headers as sent, credentials masked, and the body).
inline json::object entry_json(log_entry const& e, log_detail detail) {
    json::object o;
    o["id"] = e.seq;
    for (auto& kv : to_json(e, detail))
        o[kv.key()] = std::move(kv.value());
    return o;
}

/// A synthetic event for the Test button: the first type the webhook subscribes to.
inline object_event test_event(webhook const& w, std::optional<event_type> type) {
    object_event e;
    e.type = type ? *type
                  : (w.events.contains(event_type::create)   ? event_type::create
                     : w.events.contains(event_type::update) ? event_type::update
                                                             : event_type::remove);
    e.object_id = "herald-test";
    e.object_type = "herald.test";
    e.actor = "herald admin";
    json::object obj;
    obj["test"] = true;
    obj["message"] = "A test event sent from the herald admin page";
    obj["webhook"] = w.name;
    if (e.type == event_type::remove) {
        e.before = obj;
    } else {
        e.after = obj;
        if (e.type == event_type::update) {
            obj["test"] = false;
            e.before = std::move(obj);
        }
    }
    return e;
}

inline void append_metric(std::string& out, char const* name, char const* type, char const* help) {
    out += "# HELP ";
    out += name;
    out += ' ';
    out += help;
    out += "\n# TYPE ";
    out += name;
    out += ' ';
    out += type;
    out += '\n';
}

inline void append_sample(std::string& out, char const* name, std::string const& labels,
                          double value) {
    out += name;
    if (!labels.empty())
        out += '{' + labels + '}';
    char buf[64];
    std::snprintf(buf, sizeof buf, " %.17g\n", value);
    out += buf;
}

} // namespace detail

#define HERALD_ADMIN_TEMPLATE template <class Dispatcher>
#define HERALD_ADMIN server<Dispatcher>

HERALD_ADMIN_TEMPLATE
HERALD_ADMIN::server(boost::asio::any_io_executor ex, Dispatcher& dispatcher, server_params params)
    : ex_(ex)
    , strand_(boost::asio::make_strand(ex))
    , d_(dispatcher)
    , p_(std::move(params))
    , acceptor_(strand_)
    , drained_(strand_, std::chrono::steady_clock::time_point::max())
    , table_(p_.max_connections, p_.max_connections_per_peer) {
    auto fail = [](std::string what) {
        throw std::invalid_argument(what);
    };
    if (p_.token.size() < 16)
        fail("admin: the token must be at least 16 characters long");
    boost::system::error_code ec;
    auto const address = boost::asio::ip::make_address(p_.address, ec);
    if (ec)
        fail("admin: '" + p_.address + "' is not an IP address");
    tcp::endpoint const ep(address, p_.port);
    auto where = [&] {
        return (address.is_v6() ? "[" + p_.address + "]" : p_.address) + ":" +
               std::to_string(p_.port);
    };
    acceptor_.open(ep.protocol(), ec);
    if (!ec)
        acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec)
        acceptor_.bind(ep, ec);
    if (!ec)
        acceptor_.listen(boost::asio::socket_base::max_listen_connections, ec);
    if (ec)
        throw boost::system::system_error(ec, "admin: cannot listen on " + where());
    endpoint_ = acceptor_.local_endpoint();
}

HERALD_ADMIN_TEMPLATE
std::string HERALD_ADMIN::url() const {
    auto const a = endpoint_.address();
    auto host = a.to_string();
    if (a.is_v6())
        host = "[" + host + "]";
    return "http://" + host + ":" + std::to_string(endpoint_.port()) + "/";
}

HERALD_ADMIN_TEMPLATE
void HERALD_ADMIN::stop() {
    std::lock_guard lock(mutex_);
    if (stopping_)
        return;
    stopping_ = true;
    boost::asio::post(strand_, [this] {
        boost::system::error_code ec;
        acceptor_.close(ec);
        std::lock_guard inner(mutex_);
        if (sessions_.empty())
            drained_.cancel();
    });
    for (auto& kv : sessions_)
        close_session(kv.first);
}

HERALD_ADMIN_TEMPLATE
void HERALD_ADMIN::close_session(std::uint64_t id) {
    auto it = sessions_.find(id);
    if (it == sessions_.end())
        return;
    boost::asio::post(it->second.first, [this, id] {
        std::lock_guard inner(mutex_);
        // null: the connection has not started yet, and closes itself when it sees stopping_
        // or that it was displaced
        if (auto s = sessions_.find(id); s != sessions_.end() && s->second.second) {
            boost::system::error_code ec;
            s->second.second->close(ec);
        }
    });
}

HERALD_ADMIN_TEMPLATE
boost::asio::awaitable<void> HERALD_ADMIN::run() {
    for (;;) {
        tcp::socket socket(boost::asio::make_strand(ex_));
        auto [ec] = co_await acceptor_.async_accept(
            socket, boost::asio::as_tuple(boost::asio::use_awaitable));
        if (ec == boost::asio::error::operation_aborted || !acceptor_.is_open())
            break;
        if (ec)
            continue; // a connection that failed while being accepted (reset, out of files)
        auto const peer = socket.remote_endpoint(ec);
        if (ec)
            continue;
        std::uint64_t id = 0;
        {
            std::lock_guard lock(mutex_);
            if (stopping_)
                continue; // the socket closes as it goes out of scope
            id = ++next_session_;
            // Full slots: the longest-waiting connection that has not sent a request makes room
            // (a slowloris must not keep out a client that sends its request at once).
            auto const a = table_.admit(id, peer.address(), std::chrono::steady_clock::now());
            if (!a.accepted)
                continue; // every slot it could take is answering a request
            if (a.shed)
                close_session(*a.shed);
            // the socket's executor is the connection's strand
            sessions_.emplace(id, std::make_pair(socket.get_executor(), nullptr));
        }
        auto ex = socket.get_executor();
        boost::asio::co_spawn(ex, session(std::move(socket), id), boost::asio::detached);
    }
    // Wait for the connections stop closed to finish.
    for (;;) {
        {
            std::lock_guard lock(mutex_);
            if (sessions_.empty())
                break;
        }
        auto [ec] = co_await drained_.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
        (void)ec;
    }
}

HERALD_ADMIN_TEMPLATE
void HERALD_ADMIN::session_ended(std::uint64_t id) {
    std::lock_guard lock(mutex_);
    sessions_.erase(id);
    table_.remove(id);
    if (stopping_ && sessions_.empty())
        boost::asio::post(strand_, [this] { drained_.cancel(); });
}

HERALD_ADMIN_TEMPLATE
boost::asio::awaitable<void> HERALD_ADMIN::session(tcp::socket socket, std::uint64_t id) {
    namespace http = boost::beast::http;
    constexpr auto use_tuple = boost::asio::as_tuple(boost::asio::use_awaitable);
    boost::beast::tcp_stream stream(std::move(socket));
    {
        std::lock_guard lock(mutex_);
        sessions_[id].second = &stream.socket();
        if (stopping_ || table_.displaced(id)) {
            boost::system::error_code ec;
            stream.socket().close(ec);
        }
    }
    // Waiting connections may be displaced by new ones; busy() fails when this one was.
    auto waiting = [&] {
        std::lock_guard lock(mutex_);
        table_.waiting(id, std::chrono::steady_clock::now());
    };
    auto busy = [&] {
        std::lock_guard lock(mutex_);
        return table_.busy(id);
    };
    auto too_large = [&] {
        return detail::problem_response(413, "body_too_large", "body",
                                        "is larger than " + std::to_string(p_.body_limit) +
                                            " bytes");
    };
    boost::beast::flat_buffer buffer;
    try {
        for (;;) {
            // Waiting for a request is idle time. From its first byte, its head and body must
            // arrive within request_timeout: one deadline, which drip-fed bytes do not renew.
            if (buffer.size() == 0) {
                stream.expires_after(p_.idle_timeout);
                auto [ec, n] = co_await stream.async_read_some(buffer.prepare(4096), use_tuple);
                if (ec)
                    break;
                buffer.commit(n);
            }
            stream.expires_after(p_.request_timeout);
            http::request_parser<http::string_body> parser;
            parser.header_limit(static_cast<std::uint32_t>(p_.header_limit));
            parser.body_limit(p_.body_limit);
            auto [ec, n] = co_await http::async_read_header(stream, buffer, parser, use_tuple);
            (void)n;
            std::optional<response> early;
            if (ec == http::error::header_limit) {
                early = detail::problem_response(431, "headers_too_large", "",
                                                 "the request headers exceed " +
                                                     std::to_string(p_.header_limit) + " bytes");
            } else if (ec == http::error::body_limit) { // a Content-Length over the limit
                early = too_large();
            } else if (detail::is_malformed(ec)) {
                early = detail::bad_request(ec);
            } else if (ec) {
                break; // closed or timed out: nobody to answer
            } else if (parser.content_length() && *parser.content_length() > p_.body_limit) {
                early = too_large();
            } else if (auto const hosts = parser.get().count(http::field::host);
                       hosts > 1 || (hosts == 0 && parser.get().version() >= 11)) {
                // RFC 9112 §3.2: exactly one Host in HTTP/1.1, never two
                early = detail::problem_response(400, "bad_request", "Host",
                                                 hosts ? "is given more than once"
                                                       : "is required in an HTTP/1.1 request");
            } else if (!parser.is_done() && !reads_body(parser.get())) {
                // No valid token for a route that needs one (401), or a route that reads no
                // body: answered from the head, the body neither invited (no 100) nor read.
                request head = parser.get();
                response res = co_await handle(std::move(head));
                early = std::move(res);
            }
            if (!early && !parser.is_done()) {
                if (!busy())
                    break;
                if (boost::beast::iequals(parser.get()[http::field::expect], "100-continue")) {
                    http::response<http::empty_body> cont{http::status::continue_, 11};
                    auto [wec, wn] = co_await http::async_write(stream, cont, use_tuple);
                    (void)wn;
                    if (wec)
                        break;
                }
                auto [rec, rn] = co_await http::async_read(stream, buffer, parser, use_tuple);
                (void)rn;
                if (rec == http::error::body_limit)
                    early = too_large();
                else if (detail::is_malformed(rec))
                    early = detail::bad_request(rec);
                else if (rec)
                    break;
            }
            if (early) {
                // The rest of the request is unread: answer and close. An answer to HEAD
                // never has a body (RFC 9110 §9.3.2), not even an error's: the client would
                // read it as the next response.
                if (!ec && parser.get().method() == http::verb::head)
                    early->body().clear();
                early->keep_alive(false);
                stream.expires_after(p_.request_timeout);
                auto [wec, wn] = co_await http::async_write(stream, *early, use_tuple);
                (void)wn;
                if (!wec) {
                    // Closing with unread input would reset the connection, and the client
                    // could lose the answer: stop sending, then drain what it still sends.
                    waiting();
                    boost::system::error_code sec;
                    stream.socket().shutdown(tcp::socket::shutdown_send, sec);
                    stream.expires_after(
                        std::min<duration>(p_.request_timeout, std::chrono::seconds(2)));
                    std::size_t drained = 0;
                    std::vector<char> scratch(16 * 1024);
                    while (drained < 16 * p_.body_limit) {
                        auto [dec, dn] = co_await stream.async_read_some(
                            boost::asio::buffer(scratch), use_tuple);
                        if (dec)
                            break;
                        drained += dn;
                    }
                }
                break;
            }
            if (!busy())
                break;
            request req = parser.release();
            bool const keep_alive = req.keep_alive();
            stream.expires_never(); // Test and Redeliver wait for the receiver
            response res = co_await handle(std::move(req));
            res.keep_alive(keep_alive);
            stream.expires_after(p_.request_timeout);
            auto [wec, wn] = co_await http::async_write(stream, res, use_tuple);
            (void)wn;
            if (wec || !keep_alive)
                break;
            waiting();
        }
    } catch (std::exception const&) {
        // handle() answers every failure itself; anything else only ends this connection
    }
    boost::system::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_both, ec);
    {
        std::lock_guard lock(mutex_);
        stream.socket().close(ec);
    }
    session_ended(id);
}

HERALD_ADMIN_TEMPLATE
bool HERALD_ADMIN::token_ok(request const& req) const {
    auto const auth = req[boost::beast::http::field::authorization];
    constexpr std::string_view scheme = "Bearer ";
    return auth.size() > scheme.size() &&
           boost::beast::iequals(auth.substr(0, scheme.size()), scheme) &&
           detail::token_matches(auth.substr(scheme.size()), p_.token);
}

HERALD_ADMIN_TEMPLATE
bool HERALD_ADMIN::reads_body(request const& req) const {
    auto const target = boost::urls::parse_origin_form(req.target());
    return target && detail::needs_token(detail::path_segments(*target), p_.public_metrics) &&
           token_ok(req);
}

HERALD_ADMIN_TEMPLATE
boost::asio::awaitable<response> HERALD_ADMIN::handle(request req) {
    std::optional<response> res;
    try {
        response r = co_await route(req);
        res = std::move(r);
    } catch (std::exception const& ex) {
        res = detail::problem_response(500, "internal", "",
                                       std::string("internal error: ") + ex.what());
    }
    // HEAD is GET without the body (RFC 9110 §9.3.2): the same headers, Content-Length included.
    if (req.method() == boost::beast::http::verb::head)
        res->body().clear();
    co_return std::move(*res);
}

HERALD_ADMIN_TEMPLATE
boost::asio::awaitable<response> HERALD_ADMIN::route(request const& req) {
    namespace http = boost::beast::http;
    using detail::method_not_allowed;
    auto const target = boost::urls::parse_origin_form(req.target());
    if (!target)
        co_return detail::problem_response(400, "bad_request", "target",
                                           "is not a valid request target");
    auto const seg = detail::path_segments(*target);
    auto const m = req.method();
    bool const get = m == http::verb::get || m == http::verb::head; // HEAD wherever GET

    // The page and its assets: public, they hold no data.
    if (seg.empty() || (seg.size() == 2 && seg[0] == "assets")) {
        if (!get)
            co_return method_not_allowed("GET, HEAD");
        std::string_view body;
        char const* type = nullptr;
        if (seg.empty()) {
            body = page_html;
            type = "text/html; charset=utf-8";
        } else if (seg[1] == "admin.css") {
            body = page_css;
            type = "text/css; charset=utf-8";
        } else if (seg[1] == "admin.js") {
            body = page_js;
            type = "text/javascript; charset=utf-8";
        } else if (seg[1] == "favicon.svg") {
            body = page_icon;
            type = "image/svg+xml";
        } else {
            co_return detail::problem_response(404, "not_found", "", "no such asset");
        }
        auto res = detail::make_response(200, std::string(body), type);
        res.set("Content-Security-Policy",
                "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                "connect-src 'self'; base-uri 'none'; form-action 'none'; "
                "frame-ancestors 'none'");
        co_return res;
    }
    if (seg.size() == 1 && seg[0] == "healthz") {
        if (!get)
            co_return method_not_allowed("GET, HEAD");
        boost::json::object o;
        o["status"] = "ok";
        o["version"] = version;
        co_return detail::json_response(200, o);
    }

    bool const is_api = seg[0] == "api";
    bool const is_metrics = seg.size() == 1 && seg[0] == "metrics";
    if (!is_api && !is_metrics)
        co_return detail::problem_response(404, "not_found", "",
                                           "no route for " + std::string(target->path()));
    if (detail::needs_token(seg, p_.public_metrics) && !token_ok(req))
        co_return detail::unauthorized(!req[http::field::authorization].empty());
    if (is_metrics) {
        if (!get)
            co_return method_not_allowed("GET, HEAD");
        co_return metrics(req);
    }

    // /api/...
    if (seg.size() == 2 && seg[1] == "webhooks") {
        if (get)
            co_return list_webhooks(req);
        if (m == http::verb::post)
            co_return create_webhook(req);
        co_return method_not_allowed("GET, HEAD, POST");
    }
    if (seg.size() >= 3 && seg[1] == "webhooks") {
        auto const id = detail::parse_id(seg[2]);
        if (!id)
            co_return detail::problem_response(404, "not_found", "id",
                                               "'" + seg[2] + "' is not a webhook id");
        if (seg.size() == 3) {
            if (get)
                co_return get_webhook(req, *id);
            if (m == http::verb::put)
                co_return replace_webhook(req, *id);
            if (m == http::verb::patch)
                co_return patch_webhook(req, *id);
            if (m == http::verb::delete_)
                co_return delete_webhook(req, *id);
            co_return method_not_allowed("GET, HEAD, PUT, PATCH, DELETE");
        }
        if (seg.size() == 4 && seg[3] == "test") {
            if (m != http::verb::post)
                co_return method_not_allowed("POST");
            response res = co_await test_webhook(req, *id);
            co_return res;
        }
    }
    if (seg.size() == 2 && seg[1] == "logs") {
        if (!get)
            co_return method_not_allowed("GET, HEAD");
        co_return list_logs(req, target->params());
    }
    if (seg.size() == 3 && seg[1] == "logs") {
        if (!get)
            co_return method_not_allowed("GET, HEAD");
        co_return get_log(req, seg[2]);
    }
    if (seg.size() == 4 && seg[1] == "deliveries" && seg[3] == "redeliver") {
        if (m != http::verb::post)
            co_return method_not_allowed("POST");
        response res = co_await redeliver(req, seg[2]);
        co_return res;
    }
    if (seg.size() == 2 && seg[1] == "events") {
        if (m != http::verb::post)
            co_return method_not_allowed("POST");
        response res = co_await publish_event(req);
        co_return res;
    }
    co_return detail::problem_response(404, "not_found", "",
                                       "no route for " + std::string(target->path()));
}

HERALD_ADMIN_TEMPLATE
boost::json::object HERALD_ADMIN::activity_json(webhook_id id, time_point now) const {
    webhook_activity a;
    auto const& log = d_.log();
    if constexpr (requires { log.activity(id, now); }) {
        a = log.activity(id, now);
    } else {
        // No counters kept: the log itself answers, as far as it still holds the day.
        log_query q;
        q.webhook = id;
        q.limit = 1;
        auto newest = log.query(q);
        if (!newest.entries.empty())
            a.last = std::move(newest.entries.front());
        q.since = now - a.window;
        q.limit = log_query::max_limit;
        for (auto const& e : log.query(q).entries) {
            if (e.result == outcome::delivered)
                ++a.delivered;
            else if (e.result == outcome::failed)
                ++a.failed;
        }
    }
    boost::json::object o;
    if (a.last) {
        boost::json::object last;
        last["delivery_id"] = a.last->delivery_id;
        last["started_at"] = format_rfc3339(a.last->started_at);
        last["status"] = a.last->status;
        last["outcome"] = to_string(a.last->result);
        last["error"] = a.last->error;
        o["last"] = std::move(last);
    } else {
        o["last"] = nullptr;
    }
    o["delivered_24h"] = a.delivered;
    o["failed_24h"] = a.failed;
    if (auto r = a.success_rate())
        o["success_rate_24h"] = *r;
    else
        o["success_rate_24h"] = nullptr;
    return o;
}

HERALD_ADMIN_TEMPLATE
boost::json::object HERALD_ADMIN::webhook_json(webhook const& w, time_point now) const {
    auto o = to_json(w);
    o["activity"] = activity_json(w.id, now);
    return o;
}

HERALD_ADMIN_TEMPLATE
response HERALD_ADMIN::list_webhooks(request const&) {
    auto const now = clock::now();
    boost::json::array list;
    for (auto const& w : d_.store().list())
        list.push_back(webhook_json(w, now));
    boost::json::object o;
    o["webhooks"] = std::move(list);
    return detail::json_response(200, o);
}

HERALD_ADMIN_TEMPLATE
response HERALD_ADMIN::create_webhook(request const& req) {
    auto body = detail::parse_body(req);
    if (!body)
        return detail::problem_response(body.error());
    auto p = parse_webhook_params(*body, "", detail::parse_everything());
    if (!p)
        return detail::problem_response(p.error());
    auto w = d_.store().create(std::move(*p));
    if (!w)
        return detail::problem_response(w.error());
    auto res = detail::json_response(201, webhook_json(*w, clock::now()));
    res.set(boost::beast::http::field::location, "/api/webhooks/" + std::to_string(w->id));
    return res;
}

HERALD_ADMIN_TEMPLATE
response HERALD_ADMIN::get_webhook(request const&, webhook_id id) {
    auto w = d_.store().get(id);
    if (!w)
        return detail::problem_response(404, "not_found", "id",
                                        "no webhook with id " + std::to_string(id));
    return detail::json_response(200, webhook_json(*w, clock::now()));
}

HERALD_ADMIN_TEMPLATE
response HERALD_ADMIN::replace_webhook(request const& req, webhook_id id) {
    auto body = detail::parse_body(req);
    if (!body)
        return detail::problem_response(body.error());
    if (auto current = d_.store().get(id))
        detail::unmask(body->get_object(), *current);
    auto p = parse_webhook_params(*body, "", detail::parse_everything());
    if (!p)
        return detail::problem_response(p.error());
    auto w = d_.store().update(id, std::move(*p));
    if (!w)
        return detail::problem_response(w.error());
    return detail::json_response(200, webhook_json(*w, clock::now()));
}

HERALD_ADMIN_TEMPLATE
response HERALD_ADMIN::patch_webhook(request const& req, webhook_id id) {
    auto body = detail::parse_body(req);
    if (!body)
        return detail::problem_response(body.error());
    auto current = d_.store().get(id);
    if (!current)
        return detail::problem_response(404, "not_found", "id",
                                        "no webhook with id " + std::to_string(id));
    // JSON merge patch (RFC 7396) over the stored params: a key replaces, null resets it.
    auto merged = detail::editable_json(*current);
    auto const& patch = body->get_object();
    for (auto const& kv : patch) {
        if (kv.value().is_null())
            merged.erase(kv.key());
        else
            merged[kv.key()] = kv.value();
    }
    detail::unmask(merged, *current);
    auto p = parse_webhook_params(merged, "", detail::parse_everything());
    if (!p)
        return detail::problem_response(p.error());
    // Secrets and headers are never shown in full, so they are kept unless the patch sets them.
    if (!patch.contains("secrets"))
        p->secrets = current->secrets;
    if (!patch.contains("headers"))
        p->headers = current->headers;
    auto w = d_.store().update(id, std::move(*p));
    if (!w)
        return detail::problem_response(w.error());
    return detail::json_response(200, webhook_json(*w, clock::now()));
}

HERALD_ADMIN_TEMPLATE
response HERALD_ADMIN::delete_webhook(request const&, webhook_id id) {
    auto r = d_.store().remove(id);
    if (!r)
        return detail::problem_response(r.error());
    if constexpr (requires { d_.log().forget(id); })
        d_.log().forget(id); // its activity counts (metered_log); the log keeps its entries
    response res{boost::beast::http::status::no_content, 11};
    detail::common_headers(res);
    res.prepare_payload();
    return res;
}

HERALD_ADMIN_TEMPLATE
boost::asio::awaitable<response> HERALD_ADMIN::test_webhook(request const& req, webhook_id id) {
    auto w = d_.store().get(id);
    if (!w)
        co_return detail::problem_response(404, "not_found", "id",
                                           "no webhook with id " + std::to_string(id));
    std::optional<event_type> type;
    if (req.body().find_first_not_of(" \t\r\n") != std::string::npos) {
        auto body = detail::parse_body(req);
        if (!body)
            co_return detail::problem_response(body.error());
        for (auto const& kv : body->get_object()) {
            if (kv.key() != "type")
                co_return detail::problem_response(400, "invalid_field", std::string(kv.key()),
                                                   "is not a known field (only \"type\")");
            if (!kv.value().is_string())
                co_return detail::problem_response(400, "invalid_field", "type",
                                                   "must be create, update or delete");
            auto t = parse_event_type(kv.value().get_string(), "type");
            if (!t)
                co_return detail::problem_response(t.error());
            type = *t;
        }
    }
    object_event event = detail::test_event(*w, type);
    auto r = co_await d_.async_deliver_once(id, std::move(event), boost::asio::use_awaitable);
    if (!r)
        co_return detail::problem_response(r.error());
    co_return detail::json_response(200, detail::entry_json(*r, log_detail::full));
}

HERALD_ADMIN_TEMPLATE
response HERALD_ADMIN::list_logs(request const&, boost::urls::params_view params) {
    log_query q;
    auto bad = [](std::string const& field, std::string const& why) {
        return detail::problem_response(400, "invalid_field", field, why);
    };
    for (auto const& param : params) {
        std::string const key = param.key;
        std::string const value = param.value;
        if (key == "webhook") {
            auto id = detail::parse_id(value);
            if (!id)
                return bad(key, "'" + value + "' is not a webhook id");
            q.webhook = *id;
        } else if (key == "event") {
            auto t = parse_event_type(value, "event");
            if (!t)
                return detail::problem_response(t.error());
            q.type = *t;
        } else if (key == "outcome") {
            auto o = parse_outcome(value, "outcome");
            if (!o)
                return detail::problem_response(o.error());
            q.result = *o;
        } else if (key == "since" || key == "until") {
            auto t = detail::parse_time(value, key);
            if (!t)
                return detail::problem_response(t.error());
            (key == "since" ? q.since : q.until) = *t;
        } else if (key == "limit") {
            auto n = detail::parse_id(value);
            if (!n || *n == 0 || *n > log_query::max_limit)
                return bad(key,
                           "must be a number from 1 to " + std::to_string(log_query::max_limit));
            q.limit = *n;
        } else if (key == "cursor") {
            auto c = detail::parse_id(value);
            if (!c)
                return bad(key, "'" + value + "' is not a cursor (the `next` of a page)");
            q.before_seq = *c;
        } else if (key == "delivery") {
            if (!value.starts_with("dlv_"))
                return bad(key, "'" + value + "' is not a delivery id (dlv_…)");
            q.delivery_id = value;
        } else {
            return bad(key, "is not a known parameter (webhook, event, outcome, delivery, since, "
                            "until, limit, cursor)");
        }
    }
    auto page = d_.log().query(q);
    boost::json::array entries;
    for (auto const& e : page.entries)
        entries.push_back(detail::entry_json(e, log_detail::summary));
    boost::json::object o;
    o["entries"] = std::move(entries);
    if (page.next)
        o["next"] = std::to_string(*page.next);
    else
        o["next"] = nullptr;
    return detail::json_response(200, o);
}

HERALD_ADMIN_TEMPLATE
std::optional<log_entry> HERALD_ADMIN::find_entry(std::string const& id) const {
    if (auto seq = detail::parse_id(id)) {
        log_query q;
        q.before_seq = *seq + 1;
        q.limit = 1;
        auto page = d_.log().query(q);
        if (!page.entries.empty() && page.entries.front().seq == *seq)
            return std::move(page.entries.front());
        return std::nullopt;
    }
    if (!id.starts_with("dlv_"))
        return std::nullopt;
    // A delivery id: its newest attempt.
    log_query q;
    q.delivery_id = id;
    q.limit = 1;
    auto page = d_.log().query(q);
    if (page.entries.empty())
        return std::nullopt;
    if (page.entries.front().delivery_id == id)
        return std::move(page.entries.front());
    // A sink that does not know the delivery_id filter: look through it a page at a time.
    q.delivery_id.reset();
    q.limit = log_query::max_limit;
    for (;;) {
        page = d_.log().query(q);
        for (auto& e : page.entries)
            if (e.delivery_id == id)
                return std::move(e);
        if (!page.next)
            return std::nullopt;
        q.before_seq = page.next;
    }
}

HERALD_ADMIN_TEMPLATE
response HERALD_ADMIN::get_log(request const&, std::string const& id) {
    auto e = find_entry(id);
    if (!e)
        return detail::problem_response(404, "not_found", "id",
                                        "no log entry '" + id + "' (or it is no longer kept)");
    return detail::json_response(200, detail::entry_json(*e, log_detail::full));
}

HERALD_ADMIN_TEMPLATE
boost::asio::awaitable<response> HERALD_ADMIN::redeliver(request const&, std::string const& id) {
    auto e = find_entry(id);
    if (!e)
        co_return detail::problem_response(404, "not_found", "id",
                                           "no log entry or delivery '" + id +
                                               "' (or it is no longer kept)");
    auto hook = d_.store().get(e->webhook);
    if (!hook)
        co_return detail::problem_response(404, "not_found", "webhook_id",
                                           "webhook " + std::to_string(e->webhook) +
                                               " of this delivery no longer exists");
    // The same event id and body as the logged attempt; herald's headers are made afresh.
    object_event ev;
    ev.id = e->event_id;
    ev.type = e->type;
    ev.object_id = e->object_id;
    payload body;
    bool has_body = false;
    if (e->request_body) {
        has_body = true;
        body.body = *e->request_body;
        for (auto const& h : e->request_headers) {
            if (boost::beast::iequals(h.name, "content-type")) {
                body.content_type = h.value;
                continue;
            }
            bool const from_webhook = std::any_of(
                hook->headers.begin(), hook->headers.end(),
                [&](http_header const& mine) { return boost::beast::iequals(mine.name, h.name); });
            // What is left is what the serializer added (CloudEvents' ce-* headers).
            if (!is_reserved_header(h.name) && !boost::beast::iequals(h.name, "user-agent") &&
                !from_webhook)
                body.headers.push_back(h);
        }
    }
    if (!has_body)
        co_return detail::problem_response(409, "no_body", "id",
                                           "the log does not keep the request body of '" + id +
                                               "', so it cannot be sent again");
    auto prepared =
        std::make_shared<prepared_event const>(prepared_event{std::move(ev), std::move(body)});
    auto r =
        co_await d_.async_deliver_once(hook->id, std::move(prepared), boost::asio::use_awaitable);
    if (!r)
        co_return detail::problem_response(r.error());
    co_return detail::json_response(200, detail::entry_json(*r, log_detail::full));
}

HERALD_ADMIN_TEMPLATE
boost::asio::awaitable<response> HERALD_ADMIN::publish_event(request const& req) {
    if constexpr (requires(object_event e) { d_.publish(std::move(e)); }) {
        auto body = detail::parse_body(req);
        if (!body)
            co_return detail::problem_response(body.error());
        auto e = parse_event(*body);
        if (!e)
            co_return detail::problem_response(e.error());
        result<std::string> id;
        if constexpr (Dispatcher::durable) {
            // The answer waits for the commit, without holding up this I/O thread (which may
            // be the dispatcher's too).
            id = co_await d_.async_publish(std::move(*e));
        } else {
            id = d_.publish(std::move(*e)); // never waits: a full queue is 503 + Retry-After
        }
        if (!id) {
            auto res = detail::problem_response(id.error());
            if (id.error().code == error::queue_full)
                res.set(boost::beast::http::field::retry_after, "1");
            co_return res;
        }
        boost::json::object o;
        o["id"] = *id;
        co_return detail::json_response(202, o);
    } else {
        (void)req;
        co_return detail::problem_response(
            501, "not_implemented", "",
            "this dispatcher's event source does not take events from publish");
    }
}

HERALD_ADMIN_TEMPLATE
response HERALD_ADMIN::metrics(request const&) {
    using detail::append_metric;
    using detail::append_sample;
    auto const s = d_.stats();
    std::string out;
    out.reserve(4096);
    append_metric(out, "herald_events_published_total", "counter", "Events accepted by publish.");
    append_sample(out, "herald_events_published_total", "", double(s.published));
    append_metric(out, "herald_events_unmatched_total", "counter",
                  "Events no active webhook was subscribed to.");
    append_sample(out, "herald_events_unmatched_total", "", double(s.unmatched));
    append_metric(out, "herald_events_rejected_total", "counter",
                  "Events from a source that failed validation.");
    append_sample(out, "herald_events_rejected_total", "", double(s.rejected));
    append_metric(out, "herald_deliveries_total", "counter",
                  "Deliveries (one event to one webhook) that ended, by outcome.");
    append_sample(out, "herald_deliveries_total", R"(outcome="delivered")", double(s.delivered));
    append_sample(out, "herald_deliveries_total", R"(outcome="failed")", double(s.failed));
    append_metric(out, "herald_requests_total", "counter",
                  "Requests sent to receivers, retries and manual sends included.");
    append_sample(out, "herald_requests_total", "", double(s.attempts));
    append_metric(out, "herald_queue_depth", "gauge",
                  "Events accepted and waiting in the intake queue.");
    append_sample(out, "herald_queue_depth", "", double(s.queued));
    append_metric(out, "herald_deliveries_pending", "gauge",
                  "Deliveries not finished: waiting, retrying or in flight.");
    append_sample(out, "herald_deliveries_pending", "", double(s.pending));
    append_metric(out, "herald_deliveries_retrying", "gauge", "Deliveries waiting for a retry.");
    append_sample(out, "herald_deliveries_retrying", "", double(s.retrying));
    append_metric(out, "herald_requests_in_flight", "gauge", "Requests on the wire now.");
    append_sample(out, "herald_requests_in_flight", "", double(s.in_flight));
    append_metric(out, "herald_open_circuits", "gauge",
                  "Webhooks whose circuit breaker is open or half-open.");
    append_sample(out, "herald_open_circuits", "", double(s.open_circuits));
    append_metric(out, "herald_deliveries_parked", "gauge",
                  "Deliveries waiting outside the pending budget (failing, stalled or behind).");
    append_sample(out, "herald_deliveries_parked", "", double(s.parked));
    append_metric(out, "herald_deliveries_shed_total", "counter",
                  "Deliveries logged as failed at once because max_parked was full.");
    append_sample(out, "herald_deliveries_shed_total", "", double(s.shed));
    append_metric(out, "herald_deliveries_stored", "gauge",
                  "Pending deliveries kept only in the durable store (a backlog beyond memory).");
    append_sample(out, "herald_deliveries_stored", "", double(s.stored));
    std::size_t active = 0, inactive = 0;
    for (auto const& w : d_.store().list())
        ++(w.active ? active : inactive);
    append_metric(out, "herald_webhooks", "gauge", "Registered webhooks by state.");
    append_sample(out, "herald_webhooks", R"(state="active")", double(active));
    append_sample(out, "herald_webhooks", R"(state="inactive")", double(inactive));
    auto const& log = d_.log();
    if constexpr (requires { log.metrics(); }) {
        log_metrics const m = log.metrics();
        append_metric(out, "herald_attempts_total", "counter", "Logged attempts by outcome.");
        for (auto o : {outcome::delivered, outcome::retrying, outcome::failed})
            append_sample(out, "herald_attempts_total",
                          "outcome=\"" + std::string(to_string(o)) + "\"",
                          double(m.attempts[static_cast<std::size_t>(o)]));
        append_metric(out, "herald_attempt_duration_seconds", "histogram",
                      "How long each logged attempt took, connection and response included.");
        std::uint64_t cumulative = 0;
        for (std::size_t i = 0; i < m.buckets.size(); ++i) {
            cumulative += m.buckets[i];
            std::string le = "+Inf";
            if (i < log_metrics::bounds.size()) {
                char buf[32];
                std::snprintf(buf, sizeof buf, "%g", log_metrics::bounds[i]);
                le = buf;
            }
            append_sample(out, "herald_attempt_duration_seconds_bucket", "le=\"" + le + "\"",
                          double(cumulative));
        }
        append_sample(out, "herald_attempt_duration_seconds_sum", "", m.seconds);
        append_sample(out, "herald_attempt_duration_seconds_count", "", double(m.count));
    }
    if constexpr (requires { log.write_stats(); }) {
        // A log that cannot write (disk full, read-only file) does not stop deliveries: it
        // shows here.
        auto const w = log.write_stats();
        append_metric(out, "herald_log_write_failures_total", "counter",
                      "Writes of the log that failed (disk full, read-only file, ...).");
        append_sample(out, "herald_log_write_failures_total", "", double(w.failures));
        append_metric(out, "herald_log_entries_lost_total", "counter",
                      "Logged attempts that could not be written to the log.");
        append_sample(out, "herald_log_entries_lost_total", "", double(w.entries_lost));
    }
    return detail::make_response(200, std::move(out), "text/plain; version=0.0.4; charset=utf-8");
}

#undef HERALD_ADMIN
#undef HERALD_ADMIN_TEMPLATE

} // namespace herald::admin

#endif
