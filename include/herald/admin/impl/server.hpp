#ifndef HERALD_ADMIN_IMPL_SERVER_HPP
#define HERALD_ADMIN_IMPL_SERVER_HPP

#include <herald/admin/detail/http.hpp>
#include <herald/admin/detail/util.hpp>
#include <herald/admin/handlers/static.hpp>
#include <herald/admin/metrics.hpp>

#include <boost/beast/http/verb.hpp>
#include <boost/url/parse.hpp>

#include <exception>
#include <optional>
#include <string_view>

namespace herald::admin {

template <class Dispatcher>
server<Dispatcher>::server(boost::asio::any_io_executor ex, Dispatcher& dispatcher,
                           server_params params)
    : d_(dispatcher)
    , p_(std::move(params))
    , webhooks_(d_)
    , logs_(d_.log())
    , deliveries_(d_)
    , events_(d_)
    , routes_(make_routes())
    , listener_(std::move(ex), p_, *this) {}

template <class Dispatcher>
std::string server<Dispatcher>::url() const {
    auto const a = local_endpoint().address();
    auto const host = a.is_v6() ? "[" + a.to_string() + "]" : a.to_string();
    return "http://" + host + ":" + std::to_string(local_endpoint().port()) + "/";
}

template <class Dispatcher>
route_table server<Dispatcher>::make_routes() {
    using boost::beast::http::verb;
    using detail::ready;
    auto id = [](path_params const& p) {
        return *detail::parse_id(p["id"]);
    }; // checked
    route_table r;
    r.check("/api/webhooks/{id}", [](std::string_view s) -> std::optional<response> {
        if (detail::parse_id(s))
            return std::nullopt;
        return detail::problem_response(404, "not_found", "id",
                                        "'" + std::string(s) + "' is not a webhook id");
    });
    // The page and its assets, and the health check: public, they hold no data.
    r.add(verb::get, "/", [](auto&, auto&) { return ready(detail::get_page()); });
    r.add(verb::get, "/assets/{name}",
          [](auto&, auto& p) { return ready(detail::get_asset(p["name"])); });
    r.add(verb::get, "/healthz", [](auto&, auto&) { return ready(detail::get_health()); });
    r.add(verb::get, "/metrics", [this](auto&, auto&) {
        return ready(
            detail::make_response(200, detail::metrics_text(d_), detail::metrics_content_type));
    });
    // /api/...: the token was checked before.
    r.add(verb::get, "/api/webhooks", [this](auto& q, auto&) { return ready(webhooks_.list(q)); });
    r.add(verb::post, "/api/webhooks",
          [this](auto& q, auto&) { return ready(webhooks_.create(q)); });
    r.add(verb::get, "/api/webhooks/{id}",
          [this, id](auto& q, auto& p) { return ready(webhooks_.get(q, id(p))); });
    r.add(verb::put, "/api/webhooks/{id}",
          [this, id](auto& q, auto& p) { return ready(webhooks_.replace(q, id(p))); });
    r.add(verb::patch, "/api/webhooks/{id}",
          [this, id](auto& q, auto& p) { return ready(webhooks_.patch(q, id(p))); });
    r.add(verb::delete_, "/api/webhooks/{id}",
          [this, id](auto& q, auto& p) { return ready(webhooks_.remove(q, id(p))); });
    r.add(verb::post, "/api/webhooks/{id}/test",
          [this, id](auto& q, auto& p) { return webhooks_.test(q, id(p)); });
    r.add(verb::get, "/api/logs", [this](auto& q, auto&) { return ready(logs_.list(q)); });
    r.add(verb::get, "/api/logs/{id}",
          [this](auto& q, auto& p) { return ready(logs_.get(q, std::string(p["id"]))); });
    r.add(verb::post, "/api/deliveries/{id}/redeliver",
          [this](auto& q, auto& p) { return deliveries_.redeliver(q, std::string(p["id"])); });
    r.add(verb::post, "/api/events", [this](auto& q, auto&) { return events_.publish(q); });
    return r;
}

template <class Dispatcher>
boost::asio::awaitable<response> server<Dispatcher>::answer(request const& req) {
    auto const target = boost::urls::parse_origin_form(req.target());
    if (!target)
        co_return detail::problem_response(400, "bad_request", "target",
                                           "is not a valid request target");
    auto const seg = detail::path_segments(*target);
    if (detail::needs_token(seg, p_.public_metrics) && !detail::token_ok(req, p_.token))
        co_return detail::unauthorized(!req[boost::beast::http::field::authorization].empty());
    std::string const path = target->path();
    co_return co_await routes_.dispatch(req, seg, path);
}

template <class Dispatcher>
boost::asio::awaitable<response> server<Dispatcher>::handle(request req) {
    std::optional<response> res;
    try {
        response r = co_await answer(req);
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

} // namespace herald::admin

#endif
