// http_transport's routes: what a request's URL and trust settings imply, made once and shared.
#include <herald/transport/detail/request_head.hpp>
#include <herald/transport/detail/route.hpp>

#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <thread>
#include <vector>

// One namespace a file: the unit tests build as one translation unit (unity).
namespace herald_test_route {

using namespace herald;

http_request to(std::string url) {
    http_request r;
    r.url = std::move(url);
    return r;
}

TEST_CASE("a route is the URL's host, port, head start and pool key", "[transport][route]") {
    SECTION("http with a port and a query") {
        auto const r = detail::make_route(to("http://Example.test:8080/hook/a?x=1&y=%20"));
        REQUIRE(r.has_value());
        CHECK_FALSE(r->https);
        CHECK_FALSE(r->ip_host);
        CHECK(r->host == "Example.test");
        CHECK(r->port == "8080");
        CHECK(r->head_start == "POST /hook/a?x=1&y=%20 HTTP/1.1\r\nHost: Example.test:8080");
        CHECK(r->pool_key == "http://Example.test:8080");
        CHECK(r->tls_key.empty());
    }
    SECTION("https without a path: the target is rooted, the port the scheme's") {
        auto const r = detail::make_route(to("HTTPS://receiver.test"));
        REQUIRE(r.has_value());
        CHECK(r->https);
        CHECK(r->port == "443");
        CHECK(r->head_start == "POST / HTTP/1.1\r\nHost: receiver.test");
        CHECK(r->pool_key == "https://receiver.test:443|v|");
        CHECK(r->tls_key == "verify:");
    }
    SECTION("a query without a path") {
        auto const r = detail::make_route(to("http://receiver.test?a=b"));
        REQUIRE(r.has_value());
        CHECK(r->head_start == "POST /?a=b HTTP/1.1\r\nHost: receiver.test");
        CHECK(r->port == "80");
    }
    SECTION("an IPv6 literal: resolved without brackets, Host with them") {
        auto const r = detail::make_route(to("https://[::1]:8443/x"));
        REQUIRE(r.has_value());
        CHECK(r->ip_host);
        CHECK(r->host == "::1");
        CHECK(r->head_start == "POST /x HTTP/1.1\r\nHost: [::1]:8443");
    }
    SECTION("trust settings are part of the pool key") {
        auto req = to("https://10.0.0.5/x");
        req.ca_file = "/etc/ca.pem";
        req.allow_private = {cidr::parse("10.0.0.0/8").value()};
        auto const r = detail::make_route(req);
        REQUIRE(r.has_value());
        CHECK(r->ip_host);
        CHECK(r->pool_key == "https://10.0.0.5:443|v|/etc/ca.pem|10.0.0.0/8");
        CHECK(r->tls_key == "verify:/etc/ca.pem");
        req.verify_tls = false;
        auto const n = detail::make_route(req);
        REQUIRE(n.has_value());
        CHECK(n->pool_key == "https://10.0.0.5:443|n|10.0.0.0/8");
        CHECK(n->tls_key == "noverify:");
    }
}

TEST_CASE("a URL that is no route fails with the sentence the log shows", "[transport][route]") {
    auto const bad = detail::make_route(to("not a url"));
    REQUIRE_FALSE(bad.has_value());
    CHECK(bad.error().message.rfind("invalid URL 'not a url': ", 0) == 0);
    auto const ftp = detail::make_route(to("ftp://receiver.test/x"));
    REQUIRE_FALSE(ftp.has_value());
    CHECK(ftp.error().code == make_error_code(error::unsupported_scheme));
    CHECK(ftp.error().message == "scheme 'ftp' is not supported by this transport");
}

TEST_CASE("the route cache makes a route once per URL and trust settings", "[transport][route]") {
    detail::route_cache cache;
    auto const a = cache.get(to("http://receiver.test/a"));
    auto const again = cache.get(to("http://receiver.test/a"));
    REQUIRE(a.has_value());
    REQUIRE(again.has_value());
    CHECK(*a == *again); // the same shared route
    CHECK(cache.size() == 1);

    auto trusted = to("http://receiver.test/a");
    trusted.allow_private = {cidr::parse("10.0.0.0/8").value()};
    auto const t = cache.get(trusted);
    REQUIRE(t.has_value());
    CHECK(*t != *a);
    CHECK((*t)->pool_key == "http://receiver.test:80|10.0.0.0/8");
    auto unverified = to("http://receiver.test/a");
    unverified.verify_tls = false;
    auto const u = cache.get(unverified);
    REQUIRE(u.has_value());
    CHECK(*u != *a);
    CHECK(cache.size() == 3);
    CHECK(*cache.get(trusted) == *t);

    SECTION("a bad URL is not kept") {
        CHECK_FALSE(cache.get(to("nope")).has_value());
        CHECK_FALSE(cache.get(to("nope")).has_value());
        CHECK(cache.size() == 3);
    }
}

TEST_CASE("the route cache is bounded", "[transport][route]") {
    detail::route_cache cache(4);
    std::vector<std::shared_ptr<detail::route const>> made;
    for (int i = 0; i < 4; ++i)
        made.push_back(cache.get(to("http://r.test/" + std::to_string(i))).value());
    CHECK(cache.size() == 4);
    auto const fifth = cache.get(to("http://r.test/4"));
    REQUIRE(fifth.has_value());
    CHECK(cache.size() == 1); // started afresh
    // a route made before stays valid for whoever holds it, and is made again when asked
    CHECK(made[0]->head_start == "POST /0 HTTP/1.1\r\nHost: r.test");
    auto const first = cache.get(to("http://r.test/0"));
    REQUIRE(first.has_value());
    CHECK(*first != made[0]);
    CHECK((*first)->head_start == made[0]->head_start);
}

TEST_CASE("the route cache may be used from several threads", "[transport][route]") {
    detail::route_cache cache(8);
    std::vector<std::thread> threads;
    std::vector<int> failures(4, 0);
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&cache, &failures, t] {
            for (int i = 0; i < 200; ++i) {
                auto const url = "http://r.test/" + std::to_string(i % 10);
                auto const r = cache.get(to(url));
                if (!r || (*r)->url != url)
                    ++failures[static_cast<std::size_t>(t)];
            }
        });
    for (auto& th : threads)
        th.join();
    CHECK(failures == std::vector<int>(4, 0));
}

TEST_CASE("the head starts with the route's request line and Host", "[transport][route]") {
    auto req = to("http://receiver.test:81/in?k=v");
    req.content_type = "application/json";
    req.headers = {{"webhook-id", "evt_1"}, {"User-Agent", "custom/1"}};
    auto const r = detail::make_route(req);
    REQUIRE(r.has_value());
    std::string head;
    REQUIRE_FALSE(detail::format_head(head, r->head_start, req, 12));
    CHECK(head == "POST /in?k=v HTTP/1.1\r\nHost: receiver.test:81\r\nContent-Type: "
                  "application/json\r\nwebhook-id: evt_1\r\nUser-Agent: custom/1\r\n"
                  "Content-Length: 12\r\n\r\n");
    std::string same;
    REQUIRE_FALSE(detail::format_head(same, "in?k=v", "receiver.test:81", req, 12));
    CHECK(same == head);
}

} // namespace herald_test_route
