#ifndef HERALD_ADMIN_DETAIL_HTTP_HPP
#define HERALD_ADMIN_DETAIL_HTTP_HPP

#include <herald/admin/detail/util.hpp>
#include <herald/admin/message.hpp>
#include <herald/detail/json_strict.hpp>
#include <herald/detail/json_writer.hpp>
#include <herald/error.hpp>
#include <herald/version.hpp>

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <boost/url/url_view.hpp>

#include <string>
#include <utility>
#include <vector>

// The admin server's responses: the headers every answer carries, JSON bodies and RFC 9457
// problem details; and what every handler reads of a request (its path, its JSON body).
namespace herald::admin::detail {

/// The headers of every answer: no caching, no sniffing, no framing, no referrer.
inline void common_headers(response& res) {
    namespace http = boost::beast::http;
    res.set(http::field::server, user_agent);
    res.set(http::field::cache_control, "no-store");
    res.set("X-Content-Type-Options", "nosniff");
    res.set("Referrer-Policy", "no-referrer");
    res.set("X-Frame-Options", "DENY");
}

inline response make_response(unsigned status, std::string body, char const* content_type) {
    namespace http = boost::beast::http;
    response res{static_cast<http::status>(status), 11};
    common_headers(res);
    res.set(http::field::content_type, content_type);
    res.body() = std::move(body);
    res.prepare_payload();
    return res;
}

inline response json_response(unsigned status, boost::json::value const& v) {
    return make_response(status, herald::detail::serialize_json(v), "application/json");
}

/// 204, no body.
inline response no_content() {
    response res{boost::beast::http::status::no_content, 11};
    common_headers(res);
    res.prepare_payload();
    return res;
}

/// RFC 9457 problem details, with `field` naming what was wrong and `code` herald's error name.
inline response problem_response(unsigned status, std::string const& code, std::string const& field,
                                 std::string const& detail) {
    namespace http = boost::beast::http;
    boost::json::object o;
    o["type"] = "about:blank";
    o["title"] = std::string(http::obsolete_reason(static_cast<http::status>(status)));
    o["status"] = status;
    o["code"] = code;
    if (!field.empty())
        o["field"] = field;
    o["detail"] = field.empty() ? detail : field + ": " + detail;
    return make_response(status, boost::json::serialize(o), "application/problem+json");
}

inline response problem_response(problem const& p) {
    return problem_response(status_for(p.code), code_name(p.code), p.field, p.message);
}

/// 401 with the challenge: `presented` when a token was sent but is not the right one.
inline response unauthorized(bool presented) {
    namespace http = boost::beast::http;
    auto res = problem_response(401, "unauthorized", "Authorization",
                                presented ? "the bearer token is not valid"
                                          : "a bearer token is required (Authorization: Bearer …)");
    res.set(http::field::www_authenticate, presented
                                               ? R"(Bearer realm="herald", error="invalid_token")"
                                               : R"(Bearer realm="herald")");
    return res;
}

/// 405 with `Allow: allow`.
inline response method_not_allowed(std::string const& allow) {
    auto res = problem_response(405, "method_not_allowed", "", "this resource accepts " + allow);
    res.set(boost::beast::http::field::allow, allow);
    return res;
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

/// The request body as JSON: `body` names the problem when it is missing or malformed.
inline result<boost::json::value> parse_body(request const& req) {
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

} // namespace herald::admin::detail

#endif
