// The admin server over real HTTP on loopback: every route, authentication, bad input, limits,
// keep-alive and timeouts, with a real dispatcher delivering to an in-process receiver.
#include "harness.hpp"
#include "loopback_server.hpp"
#include "process.hpp"

#include "temp_db.hpp"

#include <herald/admin/server.hpp>
#include <herald/log/metered_log.hpp>
#include <herald/sqlite/sqlite_log.hpp>
#include <herald/sqlite/sqlite_store.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <future>
#include <map>
#include <string>

using namespace herald;
using namespace herald::test;
namespace http = boost::beast::http;
namespace json = boost::json;
using tcp = boost::asio::ip::tcp;

namespace {

std::string const token = "test-token-0123456789abcdef";

struct reply_t {
    unsigned status = 0;
    std::map<std::string, std::string> headers; // lower-case names
    std::string body;

    json::value json() const {
        boost::system::error_code ec;
        auto v = json::parse(body, ec);
        if (ec)
            FAIL("not JSON (" << ec.message() << "): " << body);
        return v;
    }
    json::object object() const { return json().as_object(); }
    std::string header(std::string const& name) const {
        auto it = headers.find(name);
        return it == headers.end() ? "" : it->second;
    }
};

reply_t read_reply(tcp::socket& s, boost::beast::flat_buffer& buf) {
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 * 1024 * 1024);
    http::read(s, buf, parser);
    auto res = parser.release();
    reply_t r;
    r.status = res.result_int();
    for (auto const& f : res) {
        std::string name(f.name_string());
        for (auto& c : name)
            c = char(std::tolower(static_cast<unsigned char>(c)));
        r.headers[name] = std::string(f.value());
    }
    r.body = res.body();
    return r;
}

/// One request on a new connection. `auth` empty: no Authorization header.
reply_t call(unsigned short port, http::verb method, std::string const& target,
             std::string const& body = "", std::string const& auth = "Bearer " + token,
             char const* content_type = "application/json") {
    boost::asio::io_context io;
    tcp::socket s(io);
    s.connect({boost::asio::ip::make_address("127.0.0.1"), port});
    http::request<http::string_body> req{method, target, 11};
    req.set(http::field::host, "127.0.0.1");
    if (!auth.empty())
        req.set(http::field::authorization, auth);
    if (!body.empty()) {
        req.set(http::field::content_type, content_type);
        req.body() = body;
    }
    req.keep_alive(false);
    req.prepare_payload();
    http::write(s, req);
    boost::beast::flat_buffer buf;
    return read_reply(s, buf);
}

template <class Log, class Store = memory_store>
struct admin_fixture {
    // The default serializers: herald's format and DATAGERRY's, a webhook picking one.
    using dispatcher_type = basic_dispatcher<Store, channel_source,
                                             serializer_set<json_serializer, datagerry_serializer>,
                                             http_transport, Log>;

    loopback_server receiver;
    boost::asio::io_context io;
    dispatcher_type d;
    admin::server<dispatcher_type> srv;
    std::vector<std::thread>
        threads; // two: the server must be right on a multi-threaded io_context

    static admin::server_params params(admin::server_params p) {
        p.token = token;
        return p;
    }

    explicit admin_fixture(admin::server_params p = {})
        : admin_fixture(memory_store({harness<>::loopback_only(), false}), Log(), std::move(p)) {}

    admin_fixture(Store store, Log log, admin::server_params p = {})
        : d(io.get_executor(), fast_params({0ms, 50ms}),
            {.store = std::move(store),
             .transport = http_transport(harness<>::with_loopback({})),
             .log = std::move(log)})
        , srv(io.get_executor(), d, params(std::move(p))) {
        d.async_run(boost::asio::detached);
        srv.async_run(boost::asio::detached);
        for (int i = 0; i < 2; ++i)
            threads.emplace_back([this] { io.run(); });
    }

    ~admin_fixture() {
        srv.stop();
        auto f = d.async_stop(1s, boost::asio::use_future);
        f.wait_for(15s);
        for (auto& t : threads)
            t.join();
    }

    unsigned short port() const { return srv.local_endpoint().port(); }

    reply_t get(std::string const& target) { return call(port(), http::verb::get, target); }
    reply_t post(std::string const& target, std::string const& body = "") {
        return call(port(), http::verb::post, target, body);
    }

    json::object create(std::string const& name, std::string const& path,
                        std::string const& extra = "") {
        auto r =
            post("/api/webhooks", R"({"name": ")" + name + R"(", "url": ")" + receiver.url(path) +
                                      R"(", "events": ["create"])" + extra + "}");
        if (r.status != 201)
            FAIL("create " << name << ": " << r.status << " " << r.body);
        return r.object();
    }

    /// Polls GET /api/logs?QUERY until it lists `n` entries (generous: CI machines are slow).
    json::array wait_logs(std::string const& query, std::size_t n) {
        auto const until = std::chrono::steady_clock::now() + 20s;
        for (;;) {
            auto r = get("/api/logs?" + query);
            REQUIRE(r.status == 200);
            auto entries = r.object()["entries"].as_array();
            if (entries.size() >= n || std::chrono::steady_clock::now() > until)
                return entries;
            std::this_thread::sleep_for(10ms);
        }
    }
};

using fixture = admin_fixture<metered_log<memory_log>>;

std::string problem_field(reply_t const& r) {
    CHECK(r.header("content-type") == "application/problem+json");
    auto o = r.object();
    auto const* f = o.if_contains("field");
    return f ? std::string(f->as_string()) : "";
}

} // namespace

TEST_CASE("admin: every API call needs the bearer token; the page and health do not",
          "[admin][auth]") {
    fixture f;
    auto const port = f.port();

    auto none = call(port, http::verb::get, "/api/webhooks", "", "");
    CHECK(none.status == 401);
    CHECK(none.header("www-authenticate") == R"(Bearer realm="herald")");
    CHECK(problem_field(none) == "Authorization");

    auto wrong = call(port, http::verb::get, "/api/webhooks", "", "Bearer " + token + "x");
    CHECK(wrong.status == 401);
    CHECK(wrong.header("www-authenticate").find(R"(error="invalid_token")") != std::string::npos);
    CHECK(call(port, http::verb::get, "/api/webhooks", "", "Bearer ").status == 401);
    CHECK(call(port, http::verb::get, "/api/webhooks", "", "Basic " + token).status == 401);
    CHECK(call(port, http::verb::get, "/api/logs", "", "Bearer short").status == 401);
    CHECK(call(port, http::verb::post, "/api/events", R"({"type":"create"})", "").status == 401);
    CHECK(call(port, http::verb::delete_, "/api/webhooks/1", "", "").status == 401);
    CHECK(call(port, http::verb::get, "/metrics", "", "").status == 401);
    // the scheme is case-insensitive (RFC 9110)
    CHECK(call(port, http::verb::get, "/api/webhooks", "", "bearer " + token).status == 200);
    CHECK(f.get("/api/webhooks").status == 200);

    auto page = call(port, http::verb::get, "/", "", "");
    CHECK(page.status == 200);
    CHECK(page.header("content-type") == "text/html; charset=utf-8");
    CHECK(page.header("content-security-policy").find("script-src 'self'") != std::string::npos);
    CHECK(page.body.find("Create Webhook") != std::string::npos);
    auto js = call(port, http::verb::get, "/assets/admin.js", "", "");
    CHECK(js.status == 200);
    CHECK(js.header("content-type") == "text/javascript; charset=utf-8");
    CHECK(call(port, http::verb::get, "/assets/admin.css", "", "").status == 200);
    CHECK(call(port, http::verb::get, "/assets/favicon.svg", "", "").status == 200);
    CHECK(call(port, http::verb::get, "/assets/nope.js", "", "").status == 404);
    auto health = call(port, http::verb::get, "/healthz", "", "");
    CHECK(health.status == 200);
    CHECK(health.object()["status"] == "ok");
    CHECK(call(port, http::verb::get, "/nowhere", "", "").status == 404);
}

TEST_CASE("admin: the server refuses a short token and a bad address", "[admin][auth]") {
    boost::asio::io_context io;
    harness<> h({}, {}, false);
    using server_type = admin::server<harness<>::dispatcher_type>;
    admin::server_params p;
    p.token = "short";
    CHECK_THROWS_WITH(server_type(io.get_executor(), h.d, p),
                      Catch::Contains("at least 16 characters"));
    p.token = token;
    p.address = "localhost";
    CHECK_THROWS_WITH(server_type(io.get_executor(), h.d, p),
                      Catch::Contains("'localhost' is not an IP address"));
    p.address = "127.0.0.1";
    server_type ok(io.get_executor(), h.d, p);
    CHECK(ok.local_endpoint().address().is_loopback());
    CHECK(ok.url() == "http://127.0.0.1:" + std::to_string(ok.local_endpoint().port()) + "/");
    p.port = ok.local_endpoint().port();
    CHECK_THROWS_WITH(server_type(io.get_executor(), h.d, p), Catch::Contains("cannot listen on"));
}

TEST_CASE("admin: webhooks are created, read, replaced, patched and deleted", "[admin][webhooks]") {
    fixture f;
    auto created = f.post("/api/webhooks", R"({"name": "Sync to External CMDB", "url": ")" +
                                               f.receiver.url("/cmdb") +
                                               R"(", "events": ["create", "delete"],
         "secrets": ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
         "headers": {"X-Tenant": "acme", "X-Api-Key": "k-123456"}, "timeout": "3s"})");
    REQUIRE(created.status == 201);
    auto w = created.object();
    auto const id = w["id"].as_int64();
    CHECK(created.header("location") == "/api/webhooks/" + std::to_string(id));
    CHECK(w["name"] == "Sync to External CMDB");
    CHECK(w["events"] == json::array{"create", "delete"});
    CHECK(w["active"] == true);
    CHECK(w["timeout"] == "3s");
    CHECK(w["secrets"].as_array()[0] == "whsec_MfKQ…"); // masked
    CHECK(w["headers"].as_object()["X-Api-Key"] == "…");
    CHECK(w["headers"].as_object()["X-Tenant"] == "acme");
    CHECK(w["activity"].as_object()["last"].is_null());
    CHECK(w["activity"].as_object()["success_rate_24h"].is_null());

    auto const path = "/api/webhooks/" + std::to_string(id);
    auto list = f.get("/api/webhooks");
    REQUIRE(list.status == 200);
    REQUIRE(list.object()["webhooks"].as_array().size() == 1);
    CHECK(f.get(path).object()["url"].as_string() == f.receiver.url("/cmdb"));
    CHECK(f.get("/api/webhooks/").status == 200); // a trailing slash is the same resource

    // PATCH merges: only the keys given change; secrets and headers stay.
    auto patched = call(f.port(), http::verb::patch, path, R"({"active": false})");
    REQUIRE(patched.status == 200);
    auto p = patched.object();
    CHECK(p["active"] == false);
    CHECK(p["name"] == "Sync to External CMDB");
    CHECK(p["timeout"] == "3s");
    REQUIRE(f.d.store().get(id)->secrets.size() == 1);
    CHECK(f.d.store().get(id)->headers.size() == 2);
    // null resets a key; masked values sent back stand for the stored ones
    patched =
        call(f.port(), http::verb::patch, path,
             R"({"timeout": null, "secrets": ["whsec_MfKQ…", ")" + secret::generate().reveal() +
                 R"("], "headers": {"X-Api-Key": "…", "X-New": "1"}})");
    REQUIRE(patched.status == 200);
    CHECK_FALSE(patched.object().contains("timeout"));
    auto stored = f.d.store().get(id);
    REQUIRE(stored->secrets.size() == 2);
    CHECK(stored->secrets[0].reveal() == "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    REQUIRE(stored->headers.size() == 2);
    CHECK(stored->headers[0].value == "k-123456");
    CHECK(stored->headers[1].name == "X-New");

    // PUT replaces: what is not given is back to its default.
    auto put = call(f.port(), http::verb::put, path,
                    R"({"name": "renamed", "url": ")" + f.receiver.url("/new") +
                        R"(", "events": ["update"]})");
    REQUIRE(put.status == 200);
    auto r = put.object();
    CHECK(r["name"] == "renamed");
    CHECK(r["events"] == json::array{"update"});
    CHECK(r["active"] == true);
    CHECK(r["secrets"].as_array().empty());
    CHECK(r["headers"].as_object().empty());

    auto del = call(f.port(), http::verb::delete_, path);
    CHECK(del.status == 204);
    CHECK(del.body.empty());
    CHECK(f.get(path).status == 404);
    CHECK(call(f.port(), http::verb::delete_, path).status == 404);
    CHECK(call(f.port(), http::verb::put, path, R"({"name": "x", "url": "http://127.0.0.1:1/",
        "events": ["create"]})")
              .status == 404);
    CHECK(call(f.port(), http::verb::patch, path, R"({"active": true})").status == 404);
}

TEST_CASE("admin: a webhook's format and retry schedule, checked against the dispatcher's formats",
          "[admin][webhooks][formats]") {
    fixture f;
    auto list = f.get("/api/webhooks");
    REQUIRE(list.status == 200);
    CHECK(json::serialize(list.object().at("formats")) == R"(["herald","datagerry"])");

    auto const dg =
        f.create("legacy", "/legacy", R"(, "format": "datagerry", "retry_schedule": ["0s", "1m"])");
    CHECK(dg.at("format") == "datagerry");
    CHECK(json::serialize(dg.at("retry_schedule")) == R"(["0s","1m"])");
    auto const plain = f.create("plain", "/plain");
    CHECK_FALSE(plain.contains("format"));

    // A format the dispatcher does not offer: a problem naming the field, nothing stored.
    auto bad = f.post("/api/webhooks", R"({"name": "x", "url": ")" + f.receiver.url("/x") +
                                           R"(", "events": ["create"], "format": "xml"})");
    CHECK(bad.status == 400);
    CHECK(problem_field(bad) == "format");
    CHECK(bad.object().at("detail").as_string() ==
          "format: 'xml' is not a format this dispatcher offers (herald, datagerry)");
    auto const id = std::to_string(dg.at("id").as_int64());
    auto patch_bad =
        call(f.port(), http::verb::patch, "/api/webhooks/" + id, R"({"format": "xml"})");
    CHECK(patch_bad.status == 400);
    CHECK(f.get("/api/webhooks").object().at("webhooks").as_array().size() == 2);

    // One event, two formats, one webhook-id.
    auto pub = f.post("/api/events", R"({"type": "create", "object_id": "7", "after": {"a": 1}})");
    REQUIRE(pub.status == 202);
    REQUIRE(f.receiver.wait_for(1, "/legacy", 10s));
    REQUIRE(f.receiver.wait_for(1, "/plain", 10s));
    auto const legacy_body = json::parse(f.receiver.requests("/legacy").front().body);
    auto const plain_body = json::parse(f.receiver.requests("/plain").front().body);
    CHECK(legacy_body.at("operation") == "CREATE");
    CHECK(plain_body.at("object_id") == "7");
    CHECK(f.receiver.requests("/legacy").front().header("webhook-id") ==
          f.receiver.requests("/plain").front().header("webhook-id"));

    // PATCH null resets both to the dispatcher's.
    auto reset = call(f.port(), http::verb::patch, "/api/webhooks/" + id,
                      R"({"format": null, "retry_schedule": null})");
    REQUIRE(reset.status == 200);
    CHECK_FALSE(reset.object().contains("format"));
    CHECK_FALSE(reset.object().contains("retry_schedule"));
}

TEST_CASE("admin: a URL's query credentials are masked, and kept when sent back masked",
          "[admin][mask]") {
    fixture f;
    auto const url = f.receiver.url("/q") + "?token=t0ps3cret-value&tenant=acme";
    auto created =
        f.post("/api/webhooks", R"({"name": "q", "url": ")" + url + R"(", "events": ["create"]})");
    REQUIRE(created.status == 201);
    auto const shown = f.receiver.url("/q") + "?token=…&tenant=acme";
    CHECK(created.object()["url"] == shown.c_str());
    auto const id = created.object()["id"].as_int64();
    auto const path = "/api/webhooks/" + std::to_string(id);
    CHECK(f.get(path).object()["url"] == shown.c_str());
    CHECK(f.get("/api/webhooks").body.find("t0ps3cret") == std::string::npos);

    // PATCH of another key, and PUT with the URL as shown: the stored URL stays whole
    REQUIRE(call(f.port(), http::verb::patch, path, R"({"active": false})").status == 200);
    CHECK(f.d.store().get(id)->url == url);
    auto put = call(f.port(), http::verb::put, path,
                    R"({"name": "q", "url": ")" + shown + R"(", "events": ["create"]})");
    REQUIRE(put.status == 200);
    CHECK(f.d.store().get(id)->url == url);

    // what is sent is the URL as stored; the log shows it masked
    REQUIRE(call(f.port(), http::verb::patch, path, R"({"active": true})").status == 200);
    REQUIRE(f.post("/api/events", R"({"type": "create", "object_id": "1", "after": {}})").status ==
            202);
    REQUIRE(f.receiver.wait_for(1, "/q", 10s));
    CHECK(f.receiver.requests("/q").at(0).target == "/q?token=t0ps3cret-value&tenant=acme");
    auto const logs = f.wait_logs("webhook=" + std::to_string(id), 1);
    REQUIRE(logs.size() == 1);
    CHECK(logs[0].as_object().at("url") == shown.c_str());
}

TEST_CASE("admin: bad input is a problem naming the field", "[admin][validation]") {
    admin::server_params small;
    small.body_limit = 4096;
    fixture f(small);
    auto const port = f.port();
    auto bad = [&](http::verb m, std::string const& target, std::string const& body,
                   unsigned status, std::string const& field) {
        auto r = call(port, m, target, body);
        INFO(target << " " << body << " -> " << r.status << " " << r.body);
        CHECK(r.status == status);
        CHECK(problem_field(r) == field);
        CHECK(r.object()["status"] == status);
        CHECK(r.object()["detail"].as_string().starts_with(field));
        return r;
    };
    auto const post = http::verb::post;
    auto const url = f.receiver.url("/x");
    bad(post, "/api/webhooks", R"({"name": "a", "url": )", 400, "body");
    bad(post, "/api/webhooks", "", 400, "body");
    bad(post, "/api/webhooks", "[1, 2]", 400, "body");
    // a key given twice: refused, not "the last one wins"
    auto dup = bad(post, "/api/webhooks",
                   R"({"name": "a", "url": ")" + url + R"(", "events": ["create"], "name": "b"})",
                   400, "body");
    CHECK(dup.object()["detail"] == "body: has duplicate key 'name'");
    CHECK(call(port, http::verb::get, "/api/webhooks").body.find(R"("name":"b")") ==
          std::string::npos);
    bad(post, "/api/webhooks", R"({"name": "a", "url": ")" + url + R"(", "events": ["create"],
        "colour": "red"})",
        400, "colour");
    auto r = bad(post, "/api/webhooks", R"({"name": "a", "url": "ftp://x/", "events": ["create"]})",
                 400, "url");
    CHECK(r.object()["code"] == "invalid_field");
    bad(post, "/api/webhooks", R"({"name": "a", "url": "not a url", "events": ["create"]})", 400,
        "url");
    // the store's address policy: only 127.0.0.1 is allowed here
    bad(post, "/api/webhooks", R"({"name": "a", "url": "http://10.0.0.1/", "events": ["create"]})",
        400, "url");
    bad(post, "/api/webhooks", R"({"name": "a", "url": ")" + url + R"("})", 400, "events");
    bad(post, "/api/webhooks", R"({"name": "a", "url": ")" + url + R"(", "events": ["merge"]})",
        400, "events[0]");
    bad(post, "/api/webhooks", R"({"name": "", "url": ")" + url + R"(", "events": ["create"]})",
        400, "name");
    bad(post, "/api/webhooks", R"({"name": "a", "url": ")" + url + R"(", "events": ["create"],
        "secrets": ["nope"]})",
        400, "secrets[0]");
    bad(post, "/api/webhooks", R"({"name": "a", "url": ")" + url + R"(", "events": ["create"],
        "headers": {"webhook-id": "x"}})",
        400, "headers.webhook-id");
    bad(post, "/api/webhooks", R"({"name": "a", "url": ")" + url + R"(", "events": ["create"],
        "timeout": "soon"})",
        400, "timeout");
    f.create("taken", "/x");
    r = bad(post, "/api/webhooks", R"({"name": "TAKEN", "url": ")" + url + R"(",
        "events": ["create"]})",
            409, "name");
    CHECK(r.object()["code"] == "duplicate_name");
    bad(http::verb::patch, "/api/webhooks/1", R"({"active": "yes"})", 400, "active");
    bad(http::verb::patch, "/api/webhooks/1", R"({"id": 7})", 400, "id");
    bad(http::verb::put, "/api/webhooks/1", R"({"name": "b"})", 400, "events");
    bad(http::verb::get, "/api/webhooks/abc", "", 404, "id");
    CHECK(f.get("/api/webhooks/1").object()["active"] == true); // nothing changed

    // Oversized: refused from Content-Length before the body is read, and the connection closes.
    auto big = call(port, post, "/api/webhooks", std::string(5000, ' '));
    CHECK(big.status == 413);
    CHECK(problem_field(big) == "body");
    CHECK(big.header("connection") == "close");

    // Events
    bad(post, "/api/events", R"({"type": "create", "object_id": 1})", 400, "after");
    bad(post, "/api/events", R"({"type": "explode", "object_id": 1, "after": {}})", 400, "type");
    bad(post, "/api/events", R"({"type": "create", "object_id": 1, "after": {}, "x": 1})", 400,
        "x");
    bad(post, "/api/events", "{", 400, "body");

    // Log queries
    bad(http::verb::get, "/api/logs?webhook=x", "", 400, "webhook");
    bad(http::verb::get, "/api/logs?event=merge", "", 400, "event");
    bad(http::verb::get, "/api/logs?outcome=maybe", "", 400, "outcome");
    bad(http::verb::get, "/api/logs?since=yesterday", "", 400, "since");
    bad(http::verb::get, "/api/logs?until=2026-13-01T00:00:00Z", "", 400, "until");
    bad(http::verb::get, "/api/logs?until=2999-01-01T00:00:00Z", "", 400, "until");
    bad(http::verb::get, "/api/logs?since=2026-11-27T10:00:00", "", 400, "since"); // no zone
    bad(http::verb::get, "/api/logs?limit=0", "", 400, "limit");
    bad(http::verb::get, "/api/logs?delivery=17", "", 400, "delivery");
    bad(http::verb::get, "/api/logs?limit=1001", "", 400, "limit");
    bad(http::verb::get, "/api/logs?cursor=-1", "", 400, "cursor");
    bad(http::verb::get, "/api/logs?page=2", "", 400, "page");
    bad(http::verb::get, "/api/logs/12345", "", 404, "id");
    bad(post, "/api/deliveries/dlv_nothing/redeliver", "", 404, "id");
    bad(post, "/api/webhooks/99/test", "", 404, "id");
    bad(post, "/api/webhooks/1/test", R"({"type": "merge"})", 400, "type");
    bad(post, "/api/webhooks/1/test", R"({"kind": "create"})", 400, "kind");

    auto wrong_method = call(port, http::verb::delete_, "/api/webhooks");
    CHECK(wrong_method.status == 405);
    CHECK(wrong_method.header("allow") == "GET, HEAD, POST");
    CHECK(call(port, http::verb::get, "/api/events").status == 405);
    CHECK(call(port, http::verb::get, "/api/nothing").status == 404);
}

TEMPLATE_TEST_CASE("admin: events, logs, test and redeliver over real HTTP",
                   "[admin][logs][deliveries]", metered_log<memory_log>, memory_log) {
    admin_fixture<TestType> f;
    auto const hook = f.create("inventory", "/inventory",
                               R"(, "headers": {"Authorization": "Bearer receiver-secret"})");
    auto const hook_id = hook.at("id").as_int64();

    // Publish through the API, the way non-C++ producers do.
    auto pub = f.post("/api/events", R"({"type": "create", "object_id": 1001,
        "object_type": "server", "after": {"hostname": "web-01"}})");
    REQUIRE(pub.status == 202);
    auto const event_id = std::string(pub.object()["id"].as_string());
    CHECK(event_id.starts_with("evt_"));

    auto entries = f.wait_logs("webhook=" + std::to_string(hook_id), 1);
    REQUIRE(entries.size() == 1);
    auto first = entries[0].as_object();
    CHECK(first["event_id"].as_string() == event_id);
    CHECK(first["outcome"] == "delivered");
    CHECK(first["status"] == 204);
    CHECK(first["attempt"] == 1);
    auto const entry_id = first["id"].as_int64();
    auto const delivery_id = std::string(first["delivery_id"].as_string());
    REQUIRE(f.receiver.wait_for(1, "/inventory", 10s));

    // One attempt in full; the credential header is masked.
    auto one = f.get("/api/logs/" + std::to_string(entry_id));
    REQUIRE(one.status == 200);
    auto detail = one.object();
    CHECK(detail["id"] == entry_id);
    CHECK(detail["delivery_id"].as_string() == delivery_id);
    REQUIRE(detail.contains("request"));
    auto const& request = detail["request"].as_object();
    {
        auto const sent = f.receiver.requests("/inventory").front();
        CHECK(request.at("body").as_string() == sent.body);
        bool masked = false;
        for (auto const& h : request.at("headers").as_array()) {
            auto const& o = h.as_object();
            if (o.at("name") == "Authorization") {
                masked = true;
                CHECK(o.at("value") == "Bear…");
            }
            CHECK(o.at("value").as_string().find("receiver-secret") == std::string::npos);
        }
        CHECK(masked);

        // Redeliver by delivery id: same event id and body, a new delivery id, attempt 1.
        auto again = f.post("/api/deliveries/" + delivery_id + "/redeliver");
        REQUIRE(again.status == 200);
        auto re = again.object();
        CHECK(re["event_id"].as_string() == event_id);
        CHECK(re["delivery_id"].as_string() != delivery_id);
        CHECK(re["outcome"] == "delivered");
        CHECK(re["id"].as_int64() > entry_id);
        REQUIRE(f.receiver.wait_for(2, "/inventory", 10s));
        auto const got = f.receiver.requests("/inventory");
        CHECK(got[1].header("webhook-id") == event_id);
        CHECK(got[1].body == got[0].body);
        CHECK(got[1].header("herald-delivery") != got[0].header("herald-delivery"));
        CHECK(got[1].header("Authorization") == "Bearer receiver-secret");
        // and by log entry id
        CHECK(f.post("/api/deliveries/" + std::to_string(entry_id) + "/redeliver").status == 200);
        REQUIRE(f.receiver.wait_for(3, "/inventory", 10s));
        // View Logs for one delivery: the first one's single attempt, not the redeliveries
        auto one_delivery = f.wait_logs("delivery=" + delivery_id, 1);
        REQUIRE(one_delivery.size() == 1);
        CHECK(one_delivery[0].as_object().at("id") == entry_id);
    }

    // Test: a synthetic event, answered with its log entry, even while inactive.
    auto test = f.post("/api/webhooks/" + std::to_string(hook_id) + "/test");
    REQUIRE(test.status == 200);
    auto t = test.object();
    CHECK(t["outcome"] == "delivered");
    CHECK(t["object_id"] == "herald-test");
    CHECK(t["event_type"] == "create");
    REQUIRE(call(f.port(), http::verb::patch, "/api/webhooks/" + std::to_string(hook_id),
                 R"({"active": false})")
                .status == 200);
    auto inactive =
        f.post("/api/webhooks/" + std::to_string(hook_id) + "/test", R"({"type": "delete"})");
    REQUIRE(inactive.status == 200);
    CHECK(inactive.object()["warning"] == "sent by hand while the webhook is inactive");
    CHECK(inactive.object()["event_type"] == "delete");
    auto const tests = f.receiver.requests("/inventory");
    CHECK(tests.back().header("herald-event") == "delete");
    CHECK(tests.back().body.find("herald-test") != std::string::npos);

    // Filters, newest first, and the cursor.
    auto const all = f.wait_logs("webhook=" + std::to_string(hook_id), 3);
    CHECK(all[0].as_object().at("id").as_int64() > all[1].as_object().at("id").as_int64());
    auto page = f.get("/api/logs?limit=1&webhook=" + std::to_string(hook_id));
    auto const p1 = page.object();
    REQUIRE(p1.at("entries").as_array().size() == 1);
    REQUIRE(p1.at("next").is_string());
    auto page2 = f.get("/api/logs?limit=1&webhook=" + std::to_string(hook_id) +
                       "&cursor=" + std::string(p1.at("next").as_string()));
    auto const p2 = page2.object();
    REQUIRE(p2.at("entries").as_array().size() == 1);
    CHECK(p2.at("entries").as_array()[0].as_object().at("id").as_int64() <
          p1.at("entries").as_array()[0].as_object().at("id").as_int64());
    CHECK(f.wait_logs("event=delete", 1).size() == 1);
    CHECK(f.get("/api/logs?outcome=failed").object()["entries"].as_array().empty());
    CHECK(f.get("/api/logs?since=2200-01-01T00:00:00Z").object()["entries"].as_array().empty());
    CHECK(f.get("/api/logs?until=2000-01-01T00:00:00%2B02:00")
              .object()["entries"]
              .as_array()
              .empty());
    auto const now_ms = std::to_string(to_unix_ms(clock::now()) + 60'000);
    CHECK(f.get("/api/logs?until=" + now_ms).object()["entries"].as_array().size() == all.size());

    // The table's activity: last status and the day's success rate.
    auto listed = f.get("/api/webhooks").object()["webhooks"].as_array()[0].as_object();
    auto const& a = listed["activity"].as_object();
    CHECK(a.at("last").as_object().at("status") == 204);
    CHECK(a.at("success_rate_24h").as_double() == Approx(1.0));
    CHECK(a.at("delivered_24h").as_int64() == std::int64_t(all.size()));

    // Deleting the webhook drops its activity counts; its log entries stay readable.
    if constexpr (requires { f.d.log().webhooks_kept(); }) {
        CHECK(f.d.log().webhooks_kept() == 1);
        REQUIRE(call(f.port(), http::verb::delete_, "/api/webhooks/" + std::to_string(hook_id))
                    .status == 204);
        CHECK(f.d.log().webhooks_kept() == 0);
        CHECK(f.get("/api/logs/" + std::to_string(entry_id)).status == 200);
    }
}

namespace {
/// An attempt sent with a content type of its own (CloudEvents, structured), then redelivered
/// through the API: the receiver gets that type both times, and each log entry names it.
template <class Fixture>
void redelivery_keeps_content_type(Fixture& f) {
    std::string const type = "application/cloudevents+json; charset=utf-8";
    auto const hook_id = webhook_id(f.create("events", "/ce").at("id").as_int64());
    object_event e;
    e.id = "evt_01M8F3Q9KX000J9W7T0FRJ4EZA";
    e.type = event_type::create;
    e.object_id = "42";
    payload body;
    body.body = R"({"specversion":"1.0","type":"com.example.object.created","id":"1"})";
    body.content_type = type;
    body.headers = {{"ce-specversion", "1.0"}};
    auto sent = f.d.async_deliver_once(
        hook_id, std::make_shared<prepared_event const>(prepared_event{std::move(e), body}),
        boost::asio::use_future);
    REQUIRE(sent.wait_for(20s) == std::future_status::ready);
    auto const first = sent.get();
    REQUIRE(first.has_value());
    REQUIRE(first->result == outcome::delivered);
    REQUIRE(f.receiver.wait_for(1, "/ce", 10s));
    CHECK(f.receiver.requests("/ce")[0].header("Content-Type") == type);

    // The attempt's detail names the type among the headers as sent.
    REQUIRE(f.wait_logs("delivery=" + first->delivery_id, 1).size() == 1);
    auto const opened = f.get("/api/logs/" + first->delivery_id);
    REQUIRE(opened.status == 200);
    auto const logged = opened.object().at("request").at("headers").as_array();
    REQUIRE_FALSE(logged.empty());
    CHECK(logged[0].as_object().at("name") == "Content-Type");
    CHECK(logged[0].as_object().at("value") == type.c_str());

    auto again = f.post("/api/deliveries/" + first->delivery_id + "/redeliver");
    REQUIRE(again.status == 200);
    auto re = again.object();
    CHECK(re["outcome"] == "delivered");
    auto const& re_headers = re["request"].as_object().at("headers").as_array();
    REQUIRE_FALSE(re_headers.empty());
    CHECK(re_headers[0].as_object().at("name") == "Content-Type");
    CHECK(re_headers[0].as_object().at("value") == type.c_str());
    REQUIRE(f.receiver.wait_for(2, "/ce", 10s));
    auto const got = f.receiver.requests("/ce");
    std::size_t types = 0;
    for (auto const& [name, value] : got[1].headers)
        types += boost::beast::iequals(name, "Content-Type") ? 1 : 0;
    CHECK(types == 1);
    CHECK(got[1].header("Content-Type") == type);
    CHECK(got[1].header("ce-specversion") == "1.0");
    CHECK(got[1].body == body.body);
    CHECK(got[1].header("webhook-id") == "evt_01M8F3Q9KX000J9W7T0FRJ4EZA");
}
} // namespace

TEST_CASE("admin: a redelivery is sent with the logged attempt's content type (issue 12, "
          "defect 12)",
          "[admin][deliveries][headers]") {
    SECTION("memory log") {
        fixture f;
        redelivery_keeps_content_type(f);
    }
    SECTION("SQLite log and store") {
        temp_dir dir;
        sqlite_store_params sp;
        sp.path = dir.file("herald.db");
        sp.addresses = harness<>::loopback_only();
        auto store = sqlite_store::open(sp);
        REQUIRE(store.has_value());
        auto log = sqlite_log::open({.path = sp.path});
        REQUIRE(log.has_value());
        admin_fixture<sqlite_log, sqlite_store> f(std::move(*store), std::move(*log));
        redelivery_keeps_content_type(f);
    }
}

TEST_CASE("admin on SQLite: publish answers after the commit; Test and Redeliver link to entries "
          "the log writes later",
          "[admin][logs][deliveries][sqlite]") {
    temp_dir dir;
    sqlite_store_params sp;
    sp.path = dir.file("herald.db");
    sp.addresses = harness<>::loopback_only();
    auto store = sqlite_store::open(sp);
    REQUIRE(store.has_value());
    auto log = sqlite_log::open({.path = sp.path});
    REQUIRE(log.has_value());
    admin_fixture<sqlite_log, sqlite_store> f(std::move(*store), std::move(*log));
    auto const hook_id = f.create("inventory", "/inventory").at("id").as_int64();

    auto pub = f.post("/api/events", R"({"type": "create", "object_id": 7,
        "object_type": "server", "after": {"hostname": "db-7"}})");
    REQUIRE(pub.status == 202);
    auto const event_id = std::string(pub.object()["id"].as_string());
    REQUIRE(f.receiver.wait_for(1, "/inventory", 10s));
    auto const first = f.wait_logs("webhook=" + std::to_string(hook_id), 1);
    REQUIRE(first.size() == 1);
    auto const delivery_id = std::string(first[0].as_object().at("delivery_id").as_string());
    CHECK(first[0].as_object().at("event_id").as_string() == event_id);

    // The entry a manual attempt answers with carries the id the log gave it, though the log
    // writes it on its own thread afterwards: that id opens it.
    auto test = f.post("/api/webhooks/" + std::to_string(hook_id) + "/test");
    REQUIRE(test.status == 200);
    auto const test_id = test.object()["id"].as_int64();
    CHECK(test_id > first[0].as_object().at("id").as_int64());
    CHECK(f.wait_logs("webhook=" + std::to_string(hook_id), 2).size() == 2);
    auto opened = f.get("/api/logs/" + std::to_string(test_id));
    REQUIRE(opened.status == 200);
    CHECK(opened.object()["object_id"] == "herald-test");

    // Redeliver by delivery id, found through the log's delivery index.
    auto again = f.post("/api/deliveries/" + delivery_id + "/redeliver");
    REQUIRE(again.status == 200);
    CHECK(again.object()["event_id"].as_string() == event_id);
    CHECK(again.object()["id"].as_int64() > test_id);
    REQUIRE(f.receiver.wait_for(3, "/inventory", 10s));
    auto const sent = f.receiver.requests("/inventory");
    CHECK(sent[2].body == sent[0].body);
    CHECK(sent[2].header("webhook-id") == event_id);
    auto const mine = f.wait_logs("delivery=" + delivery_id, 1);
    REQUIRE(mine.size() == 1);
    CHECK(mine[0].as_object().at("id") == first[0].as_object().at("id"));
}

TEST_CASE("admin: /metrics in Prometheus text format", "[admin][metrics]") {
    fixture f;
    f.receiver.on("/down", [](received_request const&) { return reply{503}; });
    f.create("up", "/up");
    f.create("down", "/down");
    REQUIRE(f.post("/api/events", R"({"type": "create", "object_id": 1, "after": {}})").status ==
            202);
    // fast_params: 2 attempts to /down (503, 503 -> failed), 1 to /up
    f.wait_logs("outcome=failed", 1);
    reply_t m;
    auto const until = std::chrono::steady_clock::now() + 20s;
    do { // the counters follow the log entry by a moment
        m = f.get("/metrics");
        REQUIRE(m.status == 200);
    } while (m.body.find(R"(herald_deliveries_total{outcome="failed"} 1)") == std::string::npos &&
             std::chrono::steady_clock::now() < until);
    CHECK(m.header("content-type") == "text/plain; version=0.0.4; charset=utf-8");
    auto has = [&](std::string const& line) {
        INFO(m.body);
        CHECK(m.body.find("\n" + line + "\n") != std::string::npos);
    };
    has("# TYPE herald_deliveries_total counter");
    has(R"(herald_deliveries_total{outcome="delivered"} 1)");
    has(R"(herald_deliveries_total{outcome="failed"} 1)");
    has(R"(herald_attempts_total{outcome="retrying"} 1)");
    has("herald_events_published_total 1");
    has("herald_requests_total 3");
    has("herald_queue_depth 0");
    has("herald_open_circuits 0");
    has("herald_deliveries_parked 0");
    has("herald_deliveries_shed_total 0");
    has("herald_deliveries_stored 0");
    has(R"(herald_webhooks{state="active"} 2)");
    has("# TYPE herald_attempt_duration_seconds histogram");
    has(R"(herald_attempt_duration_seconds_bucket{le="+Inf"} 3)");
    has("herald_attempt_duration_seconds_count 3");

    admin::server_params open;
    open.public_metrics = true;
    fixture g(open);
    CHECK(call(g.port(), http::verb::get, "/metrics", "", "").status == 200);
    CHECK(call(g.port(), http::verb::get, "/api/webhooks", "", "").status == 401);
}

TEST_CASE("admin: keep-alive, and a slow client holds only its own connection",
          "[admin][connections]") {
    admin::server_params p;
    p.request_timeout = 500ms;
    p.idle_timeout = 1s;
    fixture f(p);
    boost::asio::io_context io;

    // Two requests on one connection.
    tcp::socket s(io);
    s.connect(f.srv.local_endpoint());
    boost::beast::flat_buffer buf;
    for (int i = 0; i < 2; ++i) {
        http::request<http::string_body> req{http::verb::get, "/api/webhooks", 11};
        req.set(http::field::host, "x");
        req.set(http::field::authorization, "Bearer " + token);
        http::write(s, req);
        auto r = read_reply(s, buf);
        CHECK(r.status == 200);
        CHECK(r.header("connection") != "close");
    }

    // A client that starts a request and stalls: others are served meanwhile, and the stalled
    // connection is closed once the request timeout passes.
    tcp::socket slow(io);
    slow.connect(f.srv.local_endpoint());
    boost::asio::write(slow, boost::asio::buffer(std::string("GET /api/webhooks HTTP/1.1\r\nHo")));
    auto const started = std::chrono::steady_clock::now();
    CHECK(f.get("/healthz").status == 200);
    CHECK(std::chrono::steady_clock::now() - started < 400ms);
    char byte;
    boost::system::error_code ec;
    boost::asio::read(slow, boost::asio::buffer(&byte, 1), ec); // returns when the server closes
    CHECK(ec == boost::asio::error::eof);
    CHECK(std::chrono::steady_clock::now() - started >= 400ms);

    // An idle kept-alive connection is closed after the idle timeout.
    boost::asio::read(s, boost::asio::buffer(&byte, 1), ec);
    CHECK((ec == boost::asio::error::eof || ec == boost::asio::error::connection_reset));

    // Headers over the limit: 431.
    auto huge =
        call(f.port(), http::verb::get, "/api/webhooks", "", "Bearer " + std::string(20000, 'a'));
    CHECK(huge.status == 431);
}

#ifdef HERALD_RELAY_PATH
TEST_CASE("admin: herald-relay refuses bad --admin options before serving anything",
          "[admin][relay]") {
    char name[] = "/tmp/herald-admin-token-XXXXXX";
    int const fd = mkstemp(name);
    REQUIRE(fd >= 0);
    close(fd);
    std::string const file = name;
    auto relay = [&](std::vector<std::string> args) {
        args.insert(args.begin(), HERALD_RELAY_PATH);
        return run_process(args, "", 30s);
    };
    auto expect = [&](std::vector<std::string> args, std::string const& message) {
        auto const r = relay(std::move(args));
        INFO(r.err);
        CHECK(r.status == 2);
        CHECK(r.err.find("herald-relay: " + message) != std::string::npos);
        CHECK(r.out.empty());
    };
    expect({"--admin", "127.0.0.1:0"}, "--admin needs --admin-token-file FILE");
    expect({"--admin", "localhost", "--admin-token-file", file},
           "--admin: 'localhost' is not HOST:PORT (e.g. 127.0.0.1:8080)");
    expect({"--admin", "127.0.0.1:70000", "--admin-token-file", file},
           "--admin: '127.0.0.1:70000'");
    expect({"--admin-token-file", file, "--webhooks", file},
           "--admin-token-file is only used with --admin");
    expect({"--admin", "127.0.0.1:0", "--admin-token-file", file + ".missing"},
           "--admin-token-file: cannot read");
    std::ofstream(file) << "short\n";
    expect({"--admin", "127.0.0.1:0", "--admin-token-file", file},
           "--admin-token-file: the token in '" + file +
               "' must be one line of at least 16 characters without spaces");
    std::ofstream(file) << token << "\n";
    expect({"--admin", "host.example:8080", "--admin-token-file", file},
           "admin: 'host.example' is not an IP address");
    expect({"--admin", "[::1:8080", "--admin-token-file", file}, "admin: '[::1' is not an IP");
    std::remove(file.c_str());
}
#endif

// ---- The connection: timeouts, slots under a slowloris, and HTTP/1.1 framing ----

namespace admin_wire {

using clock_type = std::chrono::steady_clock;
constexpr auto use_tuple = boost::asio::as_tuple(boost::asio::use_awaitable);

/// What a raw exchange received before the server closed, or the client's deadline passed.
struct raw_reply {
    std::string data;
    bool closed = false; ///< the server closed (EOF or reset), as opposed to the deadline
    std::chrono::milliseconds elapsed{};
};

/// Sends `bytes` on a new connection, then reads until the server closes or `timeout`.
raw_reply raw_exchange(tcp::endpoint ep, std::string const& bytes,
                       std::chrono::milliseconds timeout = 5000ms) {
    boost::asio::io_context io;
    boost::beast::tcp_stream s(io);
    s.connect(ep);
    raw_reply r;
    auto const started = clock_type::now();
    boost::asio::write(s.socket(), boost::asio::buffer(bytes));
    s.expires_after(timeout);
    auto buf = boost::asio::dynamic_buffer(r.data);
    boost::system::error_code ec;
    boost::asio::async_read(s, buf, [&](boost::system::error_code e, std::size_t) { ec = e; });
    io.run();
    r.closed = ec != boost::beast::error::timeout;
    r.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - started);
    return r;
}

/// One GET (or HEAD) on a new connection from `local` (127.0.0.x), with a deadline: the
/// status, or 0 when the connection failed or was closed without an answer.
unsigned timed_request(tcp::endpoint ep, std::string const& local, http::verb method,
                       std::string const& target, std::chrono::milliseconds timeout = 5000ms) {
    boost::asio::io_context io;
    boost::beast::tcp_stream s(io);
    boost::system::error_code ec;
    s.socket().open(tcp::v4(), ec);
    s.socket().bind({boost::asio::ip::make_address(local), 0}, ec);
    if (ec)
        FAIL("cannot bind " << local << ": " << ec.message());
    http::request<http::empty_body> req{method, target, 11};
    req.set(http::field::host, "127.0.0.1");
    req.set(http::field::authorization, "Bearer " + token);
    req.keep_alive(false);
    http::response_parser<http::string_body> parser;
    parser.skip(method == http::verb::head);
    boost::beast::flat_buffer buf;
    unsigned status = 0;
    s.expires_after(timeout);
    s.async_connect(ep, [&](boost::system::error_code cec) {
        if (cec)
            return;
        http::async_write(s, req, [&](boost::system::error_code wec, std::size_t) {
            if (wec)
                return;
            http::async_read(s, buf, parser, [&](boost::system::error_code rec, std::size_t) {
                if (!rec)
                    status = parser.get().result_int();
            });
        });
    });
    io.run();
    return status;
}

/// `count` connections that each send a request head one byte every `interval` and never
/// finish it, from the given local addresses in turn, reconnecting `reconnect` after the
/// server closes one; on a thread of their own until destroyed (or `limit` passes).
class slowloris {
public:
    slowloris(tcp::endpoint server, std::vector<std::string> const& locals, std::size_t count,
              std::chrono::milliseconds interval, std::chrono::milliseconds reconnect = 250ms,
              std::chrono::seconds limit = 30s)
        : until_(clock_type::now() + limit) {
        for (std::size_t i = 0; i < count; ++i)
            boost::asio::co_spawn(io_,
                                  drip(server,
                                       boost::asio::ip::make_address(locals[i % locals.size()]),
                                       interval, reconnect),
                                  boost::asio::detached);
        thread_ = std::thread([this] { io_.run(); });
    }
    ~slowloris() {
        io_.stop();
        thread_.join();
    }

    /// Waits until every dripper has connected once and sent its first bytes.
    bool wait_started(std::size_t count, std::chrono::seconds timeout = 20s) {
        auto const until = clock_type::now() + timeout;
        while (started_.load() < count && clock_type::now() < until)
            std::this_thread::sleep_for(10ms);
        return started_.load() >= count;
    }
    std::size_t connects() const { return connects_.load(); }
    std::size_t closed_by_server() const { return closed_.load(); }

private:
    boost::asio::awaitable<void> drip(tcp::endpoint server, boost::asio::ip::address local,
                                      std::chrono::milliseconds interval,
                                      std::chrono::milliseconds reconnect) {
        using namespace boost::asio::experimental::awaitable_operators;
        auto ex = co_await boost::asio::this_coro::executor;
        std::string const head = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Drip: ";
        bool first = true;
        boost::asio::steady_timer timer(ex);
        while (clock_type::now() < until_) {
            tcp::socket s(ex);
            boost::system::error_code ec;
            s.open(tcp::v4(), ec);
            s.bind({local, 0}, ec);
            auto [cec] = co_await s.async_connect(server, use_tuple);
            if (!cec) {
                ++connects_;
                for (std::size_t i = 0; clock_type::now() < until_; ++i) {
                    char const c = i < head.size() ? head[i] : 'a';
                    auto [wec, wn] =
                        co_await boost::asio::async_write(s, boost::asio::buffer(&c, 1), use_tuple);
                    (void)wn;
                    if (wec)
                        break;
                    if (first && i == 0) {
                        first = false;
                        ++started_;
                    }
                    // Drip the next byte after `interval`, unless the server closes first.
                    char sink[256];
                    timer.expires_after(interval);
                    auto r = co_await (s.async_read_some(boost::asio::buffer(sink), use_tuple) ||
                                       timer.async_wait(use_tuple));
                    if (r.index() == 0)
                        break; // an answer, EOF or a reset: the server let this one go
                }
                ++closed_;
            }
            timer.expires_after(reconnect);
            auto [tec] = co_await timer.async_wait(use_tuple);
            (void)tec;
        }
    }

    boost::asio::io_context io_;
    clock_type::time_point until_;
    std::atomic<std::size_t> started_{0}, connects_{0}, closed_{0};
    std::thread thread_;
};

std::vector<std::string> loopback_addresses(int first, int n) {
    std::vector<std::string> v;
    for (int i = 0; i < n; ++i)
        v.push_back("127.0.0." + std::to_string(first + i));
    return v;
}

} // namespace admin_wire

TEST_CASE("admin: dripping connections do not lock out a client that sends its request",
          "[admin][connections][slowloris]") {
    using namespace admin_wire;
    auto legit = [](fixture& f, std::string const& local) {
        // several requests spread over the attack, each on a new connection
        for (int i = 0; i < 4; ++i) {
            INFO("request " << i << " from " << local);
            CHECK(timed_request(f.srv.local_endpoint(), local, http::verb::get, "/api/webhooks") ==
                  200);
            std::this_thread::sleep_for(150ms);
        }
    };

    SECTION("the defaults: 300 connections from ten addresses against 256 slots") {
        fixture f; // 256 slots, 64 per address, request_timeout 10 s: they drip all along
        slowloris attack(f.srv.local_endpoint(), loopback_addresses(2, 10), 300, 1000ms);
        REQUIRE(attack.wait_started(300));
        legit(f, "127.0.0.1");
        legit(f, "127.0.0.2");                         // an attacker's address too
        CHECK(attack.closed_by_server() >= 300 - 256); // the slots were full: some made room
    }
    SECTION("300 connections from the client's own address, slots full") {
        admin::server_params p;
        p.max_connections = 32;
        p.max_connections_per_peer = 32;
        p.request_timeout = 1s;
        fixture f(p);
        slowloris attack(f.srv.local_endpoint(), {"127.0.0.1"}, 300, 200ms);
        REQUIRE(attack.wait_started(300));
        legit(f, "127.0.0.1");
        CHECK(attack.closed_by_server() >= 300 - 32);
    }
    SECTION("one address over its cap gives up its own connections, not the others'") {
        admin::server_params p;
        p.max_connections = 64;
        p.max_connections_per_peer = 8;
        p.request_timeout = 1s;
        fixture f(p);
        // A kept-alive connection from another address, opened before the attack.
        boost::asio::io_context io;
        tcp::socket kept(io);
        kept.open(tcp::v4());
        kept.bind({boost::asio::ip::make_address("127.0.0.9"), 0});
        kept.connect(f.srv.local_endpoint());
        boost::beast::flat_buffer buf;
        auto get_on_kept = [&] {
            http::request<http::string_body> req{http::verb::get, "/api/webhooks", 11};
            req.set(http::field::host, "x");
            req.set(http::field::authorization, "Bearer " + token);
            http::write(kept, req);
            return read_reply(kept, buf).status;
        };
        REQUIRE(get_on_kept() == 200);
        {
            slowloris attack(f.srv.local_endpoint(), {"127.0.0.1"}, 300, 200ms);
            REQUIRE(attack.wait_started(300));
            legit(f, "127.0.0.1");
            legit(f, "127.0.0.2");
            CHECK(attack.closed_by_server() >= 300 - 8);
        }
        CHECK(get_on_kept() == 200);
    }
}

TEST_CASE("admin: idle time until a request's first byte, then request_timeout for all of it",
          "[admin][connections][timeouts]") {
    using namespace admin_wire;
    admin::server_params p;
    p.idle_timeout = 2s;
    p.request_timeout = 300ms;
    fixture f(p);
    auto const ep = f.srv.local_endpoint();

    SECTION("a head dripped slower than request_timeout allows is cut at request_timeout") {
        boost::asio::io_context io;
        tcp::socket s(io);
        s.connect(ep);
        std::string const head = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaa";
        auto const started = clock_type::now();
        std::atomic<bool> closed{false};
        std::thread reader([&] {
            char c;
            boost::system::error_code ec;
            boost::asio::read(s, boost::asio::buffer(&c, 1), ec);
            closed = true;
        });
        for (char c : head) {
            if (closed)
                break;
            boost::system::error_code ec;
            boost::asio::write(s, boost::asio::buffer(&c, 1), ec);
            std::this_thread::sleep_for(50ms);
        }
        reader.join();
        auto const took = clock_type::now() - started;
        INFO("closed after " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                             << " ms");
        CHECK(took >= 250ms);
        CHECK(took < 1500ms); // well before the idle timeout of 2 s
    }
    SECTION("a silent connection waits for the idle timeout, not request_timeout") {
        auto r = raw_exchange(ep, "", 1000ms);
        CHECK_FALSE(r.closed); // still open after 1 s, over three request timeouts
        auto silent = raw_exchange(ep, "", 4000ms);
        CHECK(silent.closed);
        CHECK(silent.elapsed >= 1500ms);
    }
    SECTION("the body counts against the same deadline as the head") {
        boost::asio::io_context io;
        tcp::socket s(io);
        s.connect(ep);
        std::string const head = "POST /api/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                                 token + "\r\nContent-Length: 100\r\n\r\n";
        auto const started = clock_type::now();
        boost::asio::write(s, boost::asio::buffer(head));
        std::atomic<bool> closed{false};
        std::thread reader([&] {
            char c;
            boost::system::error_code ec;
            boost::asio::read(s, boost::asio::buffer(&c, 1), ec);
            closed = true;
        });
        for (int i = 0; i < 60 && !closed; ++i) {
            boost::system::error_code ec;
            boost::asio::write(s, boost::asio::buffer(" ", 1), ec);
            std::this_thread::sleep_for(50ms);
        }
        reader.join();
        auto const took = clock_type::now() - started;
        CHECK(took >= 250ms);
        CHECK(took < 1500ms);
    }
}

TEST_CASE("admin: a request without a valid token gets 401 before its body is read",
          "[admin][auth][http]") {
    using namespace admin_wire;
    fixture f; // request_timeout 10 s: an answer within seconds did not wait for the body
    auto const ep = f.srv.local_endpoint();
    std::string const post = "POST /api/events HTTP/1.1\r\nHost: x\r\n"
                             "Content-Type: application/json\r\nContent-Length: 500000\r\n";

    // No 100 Continue: the body is not invited.
    auto r = raw_exchange(ep, post + "Expect: 100-continue\r\n\r\n", 3000ms);
    INFO(r.data);
    CHECK(r.data.starts_with("HTTP/1.1 401 "));
    CHECK(r.data.find("100 Continue") == std::string::npos);
    CHECK(r.data.find("Connection: close") != std::string::npos);
    CHECK(r.closed);

    // A wrong token and part of the body: answered at once, not after the body.
    auto wrong = raw_exchange(
        ep, post + "Authorization: Bearer " + token + "x\r\n\r\n" + std::string(1000, ' '), 3000ms);
    INFO(wrong.data);
    CHECK(wrong.data.starts_with("HTTP/1.1 401 "));
    CHECK(wrong.data.find(R"(error="invalid_token")") != std::string::npos);
    CHECK(wrong.closed);

    // With the token, 100 Continue and then the answer, as before.
    boost::asio::io_context io;
    tcp::socket s(io);
    s.connect(ep);
    std::string const event = R"({"type": "create", "object_id": 1, "after": {}})";
    boost::asio::write(s, boost::asio::buffer("POST /api/events HTTP/1.1\r\nHost: x\r\n"
                                              "Authorization: Bearer " +
                                              token +
                                              "\r\nContent-Type: application/json\r\n"
                                              "Content-Length: " +
                                              std::to_string(event.size()) +
                                              "\r\nExpect: 100-continue\r\n\r\n"));
    std::string got;
    boost::asio::read_until(s, boost::asio::dynamic_buffer(got), "\r\n\r\n");
    CHECK(got.starts_with("HTTP/1.1 100 Continue\r\n"));
    got.erase(0, got.find("\r\n\r\n") + 4);
    boost::asio::write(s, boost::asio::buffer(event));
    boost::beast::flat_buffer buf;
    boost::asio::buffer_copy(buf.prepare(got.size()), boost::asio::buffer(got));
    buf.commit(got.size());
    CHECK(read_reply(s, buf).status == 202);

    // Without a body, a 401 keeps the connection (the page retries with another token).
    auto keep = raw_exchange(ep, "GET /api/webhooks HTTP/1.1\r\nHost: x\r\n\r\n", 1000ms);
    CHECK(keep.data.starts_with("HTTP/1.1 401 "));
    CHECK_FALSE(keep.closed);
}

TEST_CASE("admin: HEAD is answered wherever GET is, with GET's headers and no body",
          "[admin][http]") {
    using namespace admin_wire;
    fixture f;
    auto const ep = f.srv.local_endpoint();
    CHECK(timed_request(ep, "127.0.0.1", http::verb::head, "/") == 200);
    CHECK(timed_request(ep, "127.0.0.1", http::verb::head, "/assets/admin.js") == 200);
    CHECK(timed_request(ep, "127.0.0.1", http::verb::head, "/healthz") == 200);
    CHECK(timed_request(ep, "127.0.0.1", http::verb::head, "/metrics") == 200);
    CHECK(timed_request(ep, "127.0.0.1", http::verb::head, "/api/logs") == 200);
    CHECK(timed_request(ep, "127.0.0.1", http::verb::head, "/api/webhooks/7") == 404);
    CHECK(timed_request(ep, "127.0.0.1", http::verb::head, "/api/events") == 405);

    // Pipelined on one connection: HEAD, then GET; the HEAD answer has GET's Content-Length.
    boost::asio::io_context io;
    tcp::socket s(io);
    s.connect(ep);
    std::string const get =
        "GET /api/webhooks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token + "\r\n\r\n";
    std::string const head = "HEAD" + get.substr(3);
    boost::asio::write(s, boost::asio::buffer(head + get));
    boost::beast::flat_buffer buf;
    http::response_parser<http::string_body> hp;
    hp.skip(true);
    http::read(s, buf, hp);
    auto const h = hp.release();
    CHECK(h.result_int() == 200);
    CHECK(h.body().empty());
    CHECK(h[http::field::content_type] == "application/json");
    auto const g = read_reply(s, buf);
    CHECK(g.status == 200);
    CHECK(h[http::field::content_length] == std::to_string(g.body.size()));
    CHECK(g.body.find("\"webhooks\"") != std::string::npos);

    auto wrong = call(f.port(), http::verb::delete_, "/healthz");
    CHECK(wrong.status == 405);
    CHECK(wrong.header("allow") == "GET, HEAD");
}

TEST_CASE("admin: a missing or repeated Host and a malformed request get 400", "[admin][http]") {
    using namespace admin_wire;
    fixture f;
    auto const ep = f.srv.local_endpoint();
    auto bad = [&](std::string const& bytes) {
        auto r = raw_exchange(ep, bytes, 3000ms);
        INFO(bytes << " -> " << r.data);
        CHECK(r.data.starts_with("HTTP/1.1 400 "));
        CHECK(r.data.find("application/problem+json") != std::string::npos);
        CHECK(r.closed);
        return r.data;
    };
    CHECK(bad("GET /healthz HTTP/1.1\r\n\r\n").find(R"("field":"Host")") != std::string::npos);
    CHECK(bad("GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n").find("more than once") !=
          std::string::npos);
    // HTTP/1.0 needs no Host
    CHECK(raw_exchange(ep, "GET /healthz HTTP/1.0\r\n\r\n").data.starts_with("HTTP/1.1 200 "));

    bad("GET /healthz\r\nHost: x\r\n\r\n");                               // no version
    bad("G(T /healthz HTTP/1.1\r\nHost: x\r\n\r\n");                      // not a method
    bad("GET /healthz HTTP/1.1 now\r\nHost: x\r\n\r\n");                  // junk after the version
    bad("GET /healthz HTTP/x.y\r\nHost: x\r\n\r\n");                      // not a version
    bad("GET /healthz HTTP/1.1\r\nBad Field: x\r\nHost: x\r\n\r\n");      // a space in a name
    bad(std::string("\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", 11)); // a TLS ClientHello
    // TE + CL together, and two Content-Lengths: refused (RFC 9112 §6.3)
    bad("POST /api/events HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
        "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
    bad("POST /api/events HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n");
    CHECK(f.get("/healthz").status == 200);
}
