#ifndef HERALD_ADMIN_HANDLERS_STATIC_HPP
#define HERALD_ADMIN_HANDLERS_STATIC_HPP

#include <herald/admin/detail/http.hpp>
#include <herald/admin/message.hpp>
#include <herald/admin/page.hpp>
#include <herald/version.hpp>

#include <boost/json/object.hpp>

#include <string>
#include <string_view>

// GET /, GET /assets/{name} and GET /healthz: public, they hold no data.
namespace herald::admin::detail {

/// The page's resources may come from the server itself only.
inline constexpr char const* page_csp =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

inline response page_response(std::string_view body, char const* type) {
    auto res = make_response(200, std::string(body), type);
    res.set("Content-Security-Policy", page_csp);
    return res;
}

/// GET /: the admin page.
inline response get_page() {
    return page_response(page_html, "text/html; charset=utf-8");
}

/// GET /assets/{name}: its style sheet, script and icon.
inline response get_asset(std::string_view name) {
    if (name == "admin.css")
        return page_response(page_css, "text/css; charset=utf-8");
    if (name == "admin.js")
        return page_response(page_js, "text/javascript; charset=utf-8");
    if (name == "favicon.svg")
        return page_response(page_icon, "image/svg+xml");
    return problem_response(404, "not_found", "", "no such asset");
}

/// GET /healthz: the server answers, and its version.
inline response get_health() {
    boost::json::object o;
    o["status"] = "ok";
    o["version"] = version;
    return json_response(200, o);
}

} // namespace herald::admin::detail

#endif
