// The admin server's route table on requests made in memory (no sockets): which handler
// answers, the `{name}` segments it gets, and the 404, 405 and segment-check answers the table
// gives itself.
#include <herald/admin/routes.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json/parse.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

// One namespace a file: the unit tests build as one translation unit (unity).
namespace herald_test_admin_routes {

using boost::beast::http::verb;
using herald::admin::path_params;
using herald::admin::request;
using herald::admin::response;
using herald::admin::route_table;

namespace {

/// A handler that answers 200 with its name and the captures it was given.
herald::admin::route_handler answering(std::string name) {
    return [name](request const& req, path_params const& p) -> boost::asio::awaitable<response> {
        std::string body = name + " " + std::string(req.method_string());
        for (auto const* key : {"id", "delivery"})
            if (!p[key].empty())
                body += std::string(" ") + key + "=" + std::string(p[key]);
        co_return herald::admin::detail::make_response(200, body, "text/plain");
    };
}

response dispatch(route_table const& table, verb method, std::vector<std::string> seg) {
    std::string path;
    for (auto const& s : seg)
        path += "/" + s;
    if (path.empty())
        path = "/";
    request req{method, path, 11};
    boost::asio::io_context ctx;
    auto done = boost::asio::co_spawn(ctx, table.dispatch(req, seg, path), boost::asio::use_future);
    ctx.run();
    return done.get();
}

route_table admin_like() {
    route_table t;
    t.add(verb::get, "/", answering("page"))
        .add(verb::get, "/api/webhooks", answering("list"))
        .add(verb::post, "/api/webhooks", answering("create"))
        .add(verb::get, "/api/webhooks/{id}", answering("show"))
        .add(verb::put, "/api/webhooks/{id}", answering("replace"))
        .add(verb::delete_, "/api/webhooks/{id}", answering("remove"))
        .add(verb::post, "/api/webhooks/{id}/test", answering("test"))
        .add(verb::post, "/api/deliveries/{delivery}/redeliver", answering("redeliver"))
        .check("/api/webhooks/{id}", [](std::string_view s) -> std::optional<response> {
            for (char c : s)
                if (c < '0' || c > '9')
                    return herald::admin::detail::problem_response(400, "invalid_field", "id",
                                                                   "not a webhook id");
            return std::nullopt;
        });
    return t;
}

std::string field(response const& r, std::string_view key) {
    return std::string(boost::json::parse(r.body()).as_object().at(key).as_string());
}

} // namespace

TEST_CASE("route_table: the handler of the method and pattern answers, with its captures",
          "[admin][routes]") {
    auto const t = admin_like();
    auto r = dispatch(t, verb::get, {});
    CHECK(r.result_int() == 200);
    CHECK(r.body() == "page GET");
    CHECK(dispatch(t, verb::get, {"api", "webhooks"}).body() == "list GET");
    CHECK(dispatch(t, verb::post, {"api", "webhooks"}).body() == "create POST");
    CHECK(dispatch(t, verb::get, {"api", "webhooks", "42"}).body() == "show GET id=42");
    CHECK(dispatch(t, verb::put, {"api", "webhooks", "7"}).body() == "replace PUT id=7");
    CHECK(dispatch(t, verb::delete_, {"api", "webhooks", "7"}).body() == "remove DELETE id=7");
    CHECK(dispatch(t, verb::post, {"api", "webhooks", "9", "test"}).body() == "test POST id=9");
    CHECK(dispatch(t, verb::post, {"api", "deliveries", "dlv_01ABC", "redeliver"}).body() ==
          "redeliver POST delivery=dlv_01ABC");
}

TEST_CASE("route_table: GET's handler answers HEAD, and Allow lists HEAD with GET",
          "[admin][routes]") {
    auto const t = admin_like();
    auto r = dispatch(t, verb::head, {"api", "webhooks", "3"});
    CHECK(r.result_int() == 200);
    CHECK(r.body() == "show HEAD id=3"); // the caller drops the body
    auto refused = dispatch(t, verb::patch, {"api", "webhooks", "3"});
    CHECK(refused.result_int() == 405);
    CHECK(refused[boost::beast::http::field::allow] == "GET, HEAD, PUT, DELETE");
}

TEST_CASE("route_table: a path no pattern matches is 404 naming it; a known path with another "
          "method is 405 with Allow",
          "[admin][routes]") {
    auto const t = admin_like();
    auto r = dispatch(t, verb::get, {"api", "nothing", "here"});
    CHECK(r.result_int() == 404);
    CHECK(field(r, "detail").find("/api/nothing/here") != std::string::npos);
    // One segment more or fewer than any pattern is no match either.
    CHECK(dispatch(t, verb::post, {"api", "webhooks", "9", "test", "again"}).result_int() == 404);
    CHECK(dispatch(t, verb::post, {"api", "deliveries", "dlv_1"}).result_int() == 404);
    auto m = dispatch(t, verb::delete_, {"api", "webhooks"});
    CHECK(m.result_int() == 405);
    CHECK(m[boost::beast::http::field::allow] == "GET, HEAD, POST");
    auto test = dispatch(t, verb::get, {"api", "webhooks", "9", "test"});
    CHECK(test.result_int() == 405);
    CHECK(test[boost::beast::http::field::allow] == "POST");
}

TEST_CASE("route_table: a segment that fails its check gets the check's answer, whatever the "
          "method and whatever follows",
          "[admin][routes]") {
    auto const t = admin_like();
    for (auto method : {verb::get, verb::put, verb::delete_, verb::patch}) {
        auto r = dispatch(t, method, {"api", "webhooks", "abc"});
        CHECK(r.result_int() == 400);
        CHECK(field(r, "field") == "id");
    }
    auto r = dispatch(t, verb::post, {"api", "webhooks", "abc", "test"});
    CHECK(r.result_int() == 400);
    CHECK(field(r, "detail") == "id: not a webhook id");
    // Only routes under the checked prefix: a delivery id is not a webhook id.
    CHECK(dispatch(t, verb::post, {"api", "deliveries", "abc", "redeliver"}).result_int() == 200);
}

TEST_CASE("route_table: a literal route matches in full before a failed check answers",
          "[admin][routes]") {
    auto t = admin_like();
    t.add(verb::get, "/api/webhooks/export", answering("export"));
    auto r = dispatch(t, verb::get, {"api", "webhooks", "export"});
    CHECK(r.result_int() == 200);
    CHECK(r.body() == "export GET");
    CHECK(dispatch(t, verb::get, {"api", "webhooks", "exports"}).result_int() == 400);
}

} // namespace herald_test_admin_routes
