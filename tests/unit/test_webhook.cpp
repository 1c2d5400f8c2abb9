#include "models.hpp"

#include <herald/store/memory_store.hpp>
#include <herald/webhook.hpp>

#include <catch2/catch.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/url/parse.hpp>

#include <netdb.h>
#include <netinet/in.h>

#include <algorithm>
#include <chrono>
#include <set>
#include <string>
#include <vector>

// One namespace a file: the unit tests build as one translation unit (unity).
namespace herald_test_webhook {

using namespace std::chrono_literals;
namespace json = boost::json;
using herald::test::hook_params;

namespace {

void check_invalid(herald::webhook_params const& p, std::string_view field,
                   std::string_view message_part) {
    auto const r = herald::validate(p);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == herald::error::invalid_field);
    CHECK(r.error().field == field);
    CHECK_FALSE(r.error().message.empty());
    CHECK_THAT(r.error().message, Catch::Contains(std::string(message_part)));
}

void check_bad_url(std::string url, std::string_view message_part) {
    INFO("url: " << url);
    check_invalid(hook_params("hook", std::move(url)), "url", message_part);
}

herald::result<herald::webhook_params> parse(std::string_view text,
                                             std::string const& prefix = "") {
    return herald::parse_webhook_params(json::parse(text), prefix);
}

void check_parse_error(std::string_view text, std::string_view field, std::string_view message_part,
                       std::string const& prefix = "") {
    INFO("json: " << text << " prefix: '" << prefix << "'");
    auto const r = parse(text, prefix);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == herald::error::invalid_field);
    CHECK(r.error().field == field);
    CHECK_THAT(r.error().message, Catch::Contains(std::string(message_part)));
}

herald::object_event event_of(herald::event_type t) {
    herald::object_event e;
    e.type = t;
    e.object_id = "1";
    return e;
}

std::set<herald::webhook_id> ids_of(herald::webhook_list const& list) {
    REQUIRE(list != nullptr);
    std::set<herald::webhook_id> out;
    for (auto const& w : *list)
        out.insert(w->id);
    return out;
}

} // namespace

// ---- validate ----

TEST_CASE("validate accepts well-formed webhooks", "[webhook][validation]") {
    for (char const* url : {
             "http://example.com", "https://example.com/hook", "HTTPS://Example.COM/Hook",
             "http://example.com:8080/hooks/incoming?token=abc&x=1", "https://93.184.216.34:8443/",
             "http://[2606:4700::1111]/hook", "https://[2606:4700:4700::1111]:8443/path?q=1",
             "http://localhost:65535", // a name: checked when it resolves, at send time
         }) {
        INFO("url: " << url);
        CHECK(herald::validate(hook_params("hook", url)).has_value());
    }
    // loopback literals are refused by the SSRF guard unless allowed
    for (char const* url : {"https://127.0.0.1:8443/", "http://[::1]/hook"}) {
        INFO("url: " << url);
        auto const refused = herald::validate(hook_params("hook", url));
        REQUIRE_FALSE(refused.has_value());
        CHECK(refused.error().message.find("loopback") != std::string::npos);
        herald::address_policy local;
        local.allow.push_back(herald::cidr::parse("127.0.0.1/32").value());
        local.allow.push_back(herald::cidr::parse("::1").value());
        CHECK(herald::validate(hook_params("hook", url), local).has_value());
    }
    auto p = hook_params(std::string(herald::max_webhook_name, 'n'));
    p.events = {herald::event_type::remove};
    p.active = false;
    p.connect_timeout = 1ms;
    p.timeout = 10min;
    CHECK(herald::validate(p).has_value());
    CHECK(herald::validate(hook_params("  leading and inner spaces ")).has_value());
}

TEST_CASE("validate checks the name", "[webhook][validation]") {
    check_invalid(hook_params(""), "name", "required");
    check_invalid(hook_params("   "), "name", "required");
    check_invalid(hook_params(" \t "), "name", "required");
    check_invalid(hook_params(std::string(herald::max_webhook_name + 1, 'n')), "name", "128");
    check_invalid(hook_params("bad\nname"), "name", "control character");
    check_invalid(hook_params("bad\tname"), "name", "control character");
    check_invalid(hook_params(std::string("nul\0name", 8)), "name", "control character");
    check_invalid(hook_params("del\x7fname"), "name", "control character");
}

TEST_CASE("validate checks the url", "[webhook][validation]") {
    check_bad_url("", "required");
    check_bad_url("https://example.com/" + std::string(herald::max_webhook_url, 'a'), "2048");
    check_bad_url("example.com/hook", "absolute");
    check_bad_url("/hook", "absolute");
    check_bad_url("//example.com/hook", "absolute");
    check_bad_url("http://exa mple.com/", "absolute");
    check_bad_url("ftp://example.com/file", "scheme 'ftp'");
    check_bad_url("file:///etc/passwd", "scheme 'file'");
    check_bad_url("mailto:ops@example.com", "scheme 'mailto'");
    check_bad_url("http:///path", "no host");
    check_bad_url("http:path", "no host");
    check_bad_url("http://:8080/hook", "no host");
    check_bad_url("https://user:secret@example.com/hook", "user-info");
    check_bad_url("https://token@example.com/hook", "user-info");
    check_bad_url("https://example.com/hook#section", "fragment");
    check_bad_url("https://example.com/hook#", "fragment");
    check_bad_url("http://example.com:0/", "port");
    check_bad_url("http://example.com:65536/", "port");
}

TEST_CASE("validate checks events and timeouts", "[webhook][validation]") {
    check_invalid(hook_params("hook", "https://example.com", {}), "events", "at least one");

    auto p = hook_params("hook");
    p.connect_timeout = 0ms;
    check_invalid(p, "connect_timeout", "between");
    p.connect_timeout = -1ms;
    check_invalid(p, "connect_timeout", "between");
    p.connect_timeout = 10min + 1ms;
    check_invalid(p, "connect_timeout", "between");
    p.connect_timeout = 10min;
    CHECK(herald::validate(p).has_value());

    p.timeout = 0ms;
    check_invalid(p, "timeout", "between");
    p.timeout = 1h;
    check_invalid(p, "timeout", "between");
    p.timeout = 1ms;
    CHECK(herald::validate(p).has_value());
}

// ---- parse_webhook_params ----

TEST_CASE("parse_webhook_params reads every field", "[webhook][parse]") {
    auto const r = parse(R"({"name":"CMDB sync","url":"https://example.com/hook",)"
                         R"("events":["create","delete"],"active":false,)"
                         R"("connect_timeout":"2s","timeout":"1m"})");
    REQUIRE(r.has_value());
    CHECK(r->name == "CMDB sync");
    CHECK(r->url == "https://example.com/hook");
    CHECK(r->events ==
          herald::event_type_set{herald::event_type::create, herald::event_type::remove});
    CHECK_FALSE(r->active);
    CHECK(r->connect_timeout == herald::duration(2s));
    CHECK(r->timeout == herald::duration(1min));

    SECTION("optional fields take their defaults") {
        auto const m = parse(R"({"name":"a","url":"http://h","events":["update"]})");
        REQUIRE(m.has_value());
        CHECK(m->active);
        CHECK_FALSE(m->connect_timeout.has_value());
        CHECK_FALSE(m->timeout.has_value());
        CHECK(m->events == herald::event_type_set{herald::event_type::update});
    }
}

TEST_CASE("parse_webhook_params names the bad key", "[webhook][parse][validation]") {
    check_parse_error(R"({"name":"a","url":"http://h","events":["create"],"secret":"x"})", "secret",
                      "not a known field");
    check_parse_error(R"({"name":1,"url":"http://h","events":["create"]})", "name", "string");
    check_parse_error(R"({"name":"a","url":null,"events":["create"]})", "url", "string");
    check_parse_error(R"({"name":"a","url":"http://h","events":"create"})", "events", "array");
    check_parse_error(R"({"name":"a","url":"http://h","events":["create",2]})", "events[1]",
                      "string");
    check_parse_error(R"({"name":"a","url":"http://h","events":["create","insert"]})", "events[1]",
                      "'insert'");
    check_parse_error(R"({"name":"a","url":"http://h","events":["create"],"active":"yes"})",
                      "active", "true or false");
    check_parse_error(R"({"name":"a","url":"http://h","events":["create"],"timeout":5})", "timeout",
                      "duration");
    check_parse_error(R"({"name":"a","url":"http://h","events":["create"],"timeout":"5"})",
                      "timeout", "'5'");
    check_parse_error(
        R"({"name":"a","url":"http://h","events":["create"],"connect_timeout":"fast"})",
        "connect_timeout", "'fast'");
    check_parse_error(R"({"name":"a","url":"http://h"})", "events", "required");
    // the rules of validate() apply too
    check_parse_error(R"({"name":"a","url":"http://h","events":[]})", "events", "at least one");
    check_parse_error(R"({"url":"http://h","events":["create"]})", "name", "required");
    check_parse_error(R"({"name":"a","url":"ftp://h","events":["create"]})", "url", "scheme");
    check_parse_error(R"({"name":"a","url":"http://h","events":["create"],"timeout":"11m"})",
                      "timeout", "between");
    check_parse_error(R"(["not","an","object"])", "webhook", "JSON object");
}

TEST_CASE("parse_webhook_params prefixes field names", "[webhook][parse][validation]") {
    std::string const prefix = "webhooks[2].";
    check_parse_error(R"({"name":"a","url":"http://h","events":["create"],"x":1})", "webhooks[2].x",
                      "not a known field", prefix);
    check_parse_error(R"({"name":"a","url":"mailto:a@b","events":["create"]})", "webhooks[2].url",
                      "scheme", prefix);
    check_parse_error(R"({"name":"a","url":"http://h","events":["update","nope"]})",
                      "webhooks[2].events[1]", "'nope'", prefix);
    check_parse_error(R"({"name":"a","url":"http://h","events":[true]})", "webhooks[2].events[0]",
                      "string", prefix);
    check_parse_error(R"({"name":"a","url":"http://h","events":["create"],"timeout":"9"})",
                      "webhooks[2].timeout", "'9'", prefix);
    check_parse_error(R"({"name":"a","url":"http://h"})", "webhooks[2].events", "required", prefix);
    check_parse_error(R"({"name":" ","url":"http://h","events":["create"]})", "webhooks[2].name",
                      "required", prefix);
    // the element itself is not an object: the field is the element, without a dangling dot
    check_parse_error("42", "webhooks[2]", "JSON object", prefix);
}

// ---- memory_store ----
// What every webhooks table does is in test_conformance_table.cpp; here what is memory_store's.

TEST_CASE("memory_store holds 10,000 webhooks", "[webhook][store][scale]") {
    herald::memory_store store;
    constexpr int count = 10'000;
    for (int i = 1; i <= count; ++i) {
        auto const r = store.create(
            hook_params("hook-" + std::to_string(i), "https://h" + std::to_string(i) + ".example/",
                        i % 2 ? herald::event_type_set::all()
                              : herald::event_type_set{herald::event_type::create}));
        REQUIRE(r.has_value());
        REQUIRE(r->id == static_cast<herald::webhook_id>(i));
    }
    CHECK(store.list().size() == count);
    CHECK(store.match(event_of(herald::event_type::create))->size() == count);
    CHECK(store.match(event_of(herald::event_type::update))->size() == count / 2);
    CHECK(store.create(hook_params("HOOK-5000")).error().code == herald::error::duplicate_name);
    REQUIRE(store.get(5000) != nullptr);
    CHECK(store.get(5000)->name == "hook-5000");
}

TEST_CASE("memory_store can be moved with its webhooks", "[webhook][store]") {
    herald::memory_store store;
    auto const a = store.create(hook_params("a", "http://h", {herald::event_type::create})).value();
    herald::memory_store moved(std::move(store));
    REQUIRE(moved.get(a.id) != nullptr);
    CHECK(ids_of(moved.match(event_of(herald::event_type::create))) ==
          std::set<herald::webhook_id>{a.id});
    CHECK(moved.create(hook_params("A")).error().code == herald::error::duplicate_name);
    CHECK(moved.create(hook_params("b")).value().id == 2);
}

// ---- to_json ----

TEST_CASE("to_json(webhook) writes the params, id and times", "[webhook][json]") {
    using namespace std::chrono;
    herald::webhook w;
    w.id = 7;
    w.name = "CMDB \"sync\"";
    w.url = "https://example.com/hook";
    w.events = {herald::event_type::update, herald::event_type::create};
    w.active = false;
    w.created_at = herald::time_point{sys_days{2026y / November / 27}} + 15h + 52min + 54s + 123ms;
    w.updated_at = w.created_at + 1h;

    SECTION("without timeouts") {
        auto const o = herald::to_json(w);
        CHECK(o.size() == 11);
        CHECK(
            json::serialize(o) ==
            R"({"id":7,"name":"CMDB \"sync\"","url":"https://example.com/hook",)"
            R"("events":["create","update"],"active":false,"secrets":[],"headers":{},)"
            R"("verify_tls":true,"allow_private":[],)"
            R"("created_at":"2026-11-27T15:52:54.123Z","updated_at":"2026-11-27T16:52:54.123Z"})");
    }
    SECTION("with timeouts, written as durations") {
        w.connect_timeout = 2s;
        w.timeout = 90s;
        auto const o = herald::to_json(w);
        CHECK(o.size() == 13);
        CHECK(o.at("connect_timeout") == "2s");
        CHECK(o.at("timeout") == "90s");
    }
    SECTION("the params part reads back with parse_webhook_params") {
        w.timeout = 1500ms;
        auto o = herald::to_json(w);
        o.erase("id");
        o.erase("created_at");
        o.erase("updated_at");
        auto const p = herald::parse_webhook_params(o);
        REQUIRE(p.has_value());
        CHECK(p->name == w.name);
        CHECK(p->url == w.url);
        CHECK(p->events == w.events);
        CHECK(p->active == w.active);
        CHECK(p->timeout == w.timeout);
        CHECK_FALSE(p->connect_timeout.has_value());
    }
}

// ---- issue 12: what the attack found ----

namespace {
herald::address_policy no_guard() {
    herald::address_policy a;
    a.allow_all = true;
    return a;
}

void check_bad_url_unguarded(std::string const& url, std::string_view message_part) {
    INFO("url: " << url);
    // with the SSRF guard off too: these are about which host is meant, not where it is
    for (auto const& policy : {herald::address_policy{}, no_guard()}) {
        auto const r = herald::validate(hook_params("hook", url), policy);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().field == "url");
        CHECK_THAT(r.error().message, Catch::Contains(std::string(message_part)));
    }
}

// How the transport reads a URL (impl/http_transport.hpp, async_send): the host it resolves,
// the port it dials, the target it writes in the request line.
struct connection_target {
    std::string host, port, target;
};
connection_target as_transport_reads(std::string const& url) {
    auto const u = boost::urls::parse_uri(url).value();
    bool const https = herald::detail::iequals(u.scheme(), "https");
    connection_target t;
    t.host = u.host_address();
    t.port = u.has_port() ? std::string(u.port()) : https ? "443" : "80";
    t.target = u.encoded_target();
    if (t.target.empty() || t.target.front() != '/')
        t.target = "/" + t.target;
    return t;
}

// The same, read off the text by hand (RFC 3986: authority up to the first / ? or #).
connection_target as_written(std::string const& url) {
    auto const begin = url.find("://") + 3;
    auto const end = std::min(url.find_first_of("/?#", begin), url.size());
    auto const authority = url.substr(begin, end - begin);
    connection_target t;
    auto const colon = authority.rfind(':');
    bool const has_port =
        colon != std::string::npos && authority.find(']', colon) == std::string::npos;
    t.host = authority.substr(0, has_port ? colon : authority.size());
    if (!t.host.empty() && t.host.front() == '[')
        t.host = t.host.substr(1, t.host.size() - 2);
    t.port = has_port ? authority.substr(colon + 1) : url.rfind("https", 0) == 0 ? "443" : "80";
    t.target = url.substr(end);
    if (t.target.empty() || t.target.front() != '/')
        t.target = "/" + t.target;
    return t;
}
} // namespace

TEST_CASE("validate refuses a URL whose host the transport would read otherwise",
          "[webhook][validation][ssrf][issue12]") {
    // Boost.URL 1.81 takes the longest IPv4 prefix as the host: each of these was sent to the
    // address at its start, on port 80, with the rest as the path.
    for (char const* url :
         {"http://127.0.0.1.nip.io:18490/nip", "http://8.8.8.8.example.com:8443/hook",
          "http://127.0.0.1x:18490/x", "http://127.0.0.1%00.example.com:18490/",
          "http://93.184.216.34.nip.io/", "http://1.2.3.4:80:90/", "http://[::1]x/",
          "http://[2606:4700::1111].example.com/", "http://127.0.0.1./", "http://1.2.3.4.5/"})
        check_bad_url_unguarded(url, "not a valid host");
}

TEST_CASE("validate accepts only IP literals and DNS names as hosts",
          "[webhook][validation][ssrf][issue12]") {
    check_bad_url_unguarded("http://ex%41mple.com/", "not a valid DNS name");
    check_bad_url_unguarded("http://example%2ecom/", "not a valid DNS name");
    check_bad_url_unguarded("http://a%00b.example.com/", "not a valid DNS name");
    check_bad_url_unguarded("http://a_b.example.com/hook", "not a valid DNS name");
    check_bad_url_unguarded("http://exa!mple.com/", "not a valid DNS name");
    check_bad_url_unguarded("http://a..b/", "empty label");
    check_bad_url_unguarded("http://.example.com/", "empty label");
    check_bad_url_unguarded("http://example.com./", "ends with a dot");
    check_bad_url_unguarded("http://-a.example.com/", "hyphen");
    check_bad_url_unguarded("http://a-.example.com/", "hyphen");
    check_bad_url_unguarded("http://" + std::string(64, 'a') + ".example.com/", "63");
    std::string const name253 = std::string(63, 'a') + "." + std::string(63, 'b') + "." +
                                std::string(63, 'c') + "." + std::string(61, 'd');
    REQUIRE(name253.size() == 253);
    check_bad_url_unguarded("http://" + name253 + "e/", "253");
    check_bad_url_unguarded("http://[v1.x]/", "not an IP address or a DNS name");
    check_bad_url_unguarded("http://example.com:/", "port");
    check_bad_url_unguarded("http://example.com:080/", "port");
    check_bad_url_unguarded("http://example.com:99999/", "port");
    check_bad_url_unguarded("http://example.com:100000/", "port");

    for (std::string const& url :
         {std::string("https://example.com/h"), std::string("http://localhost:1/"),
          std::string("http://a-b.c-d.example/x?y=1"), std::string("HTTPS://Example.COM:443/Hook"),
          std::string("http://xn--bcher-kva.example/"), std::string("http://1.example.com/"),
          std::string("http://1.1.1.1?q"), std::string("http://example.com?q=1"),
          "http://" + std::string(63, 'a') + ".example.com/", "http://" + name253 + "/",
          std::string("http://my-service:8080/in"), std::string("https://93.184.216.34:65535/")}) {
        INFO("url: " << url);
        CHECK(herald::validate(hook_params("hook", url)).has_value());
    }
    herald::address_policy local;
    local.allow.push_back(herald::cidr::parse("::1").value());
    CHECK(herald::validate(hook_params("hook", "http://[::1]:8080/"), local).has_value());
}

TEST_CASE("validate refuses IPv4 addresses written in another form than four decimals",
          "[webhook][validation][ssrf][issue12]") {
    // getaddrinfo reads each of these as an IPv4 address (inet_aton) before it asks DNS;
    // Boost.URL calls them names, so the SSRF guard never judged them as addresses.
    struct spelling {
        char const* host;
        char const* reads_as;
    };
    for (auto const& [host, reads_as] :
         {spelling{"127.1", "127.0.0.1"}, spelling{"2130706433", "127.0.0.1"},
          spelling{"0x7f000001", "127.0.0.1"}, spelling{"0X7F000001", "127.0.0.1"},
          spelling{"0177.0.0.1", "127.0.0.1"}, spelling{"0", "0.0.0.0"},
          spelling{"8.8.8.010", "8.8.8.8"}, spelling{"10.0x10.1", "10.16.0.1"},
          spelling{"01.2.3.4", "1.2.3.4"}, spelling{"169.254.43518", "169.254.169.254"}}) {
        check_bad_url_unguarded(std::string("http://") + host + ":18490/x",
                                std::string("non-canonical form (getaddrinfo reads it as ") +
                                    reads_as + ")");
        auto const a = herald::detail::parse_inet_aton(host);
        REQUIRE(a.has_value());
        CHECK(herald::detail::dotted_quad(*a) == reads_as);
    }
    // Numbers that are no IPv4 address are no DNS name either (no top-level domain is numeric).
    for (char const* host :
         {"300.1.1.1", "1.2.3.256", "example.123", "0x", "0x1g.0x10", "09.1.1.1"})
        check_bad_url_unguarded(std::string("http://") + host + "/", "ends in a number");
    // inet_aton's own limits
    for (char const* text : {"256.1.1.1", "1.256.1.1", "1.2.65536", "4294967296", "1..2", "1.2.",
                             "", "0x1g", "08", "1.2.3.4.5"}) {
        INFO(text);
        CHECK_FALSE(herald::detail::parse_inet_aton(text).has_value());
    }
}

TEST_CASE("parse_inet_aton reads hosts as getaddrinfo does", "[webhook][ssrf][issue12]") {
    // AI_NUMERICHOST: the C library's own reading, without asking DNS
    for (char const* host : {"127.1",
                             "2130706433",
                             "0x7f000001",
                             "0177.0.0.1",
                             "0",
                             "0x",
                             "00",
                             "8.8.8.010",
                             "10.0x10.1",
                             "01.2.3.4",
                             "169.254.43518",
                             "127.0.0.1.",
                             "300.1.1.1",
                             "1.2.3.4.5",
                             "127.0.0.1x",
                             "1.2.65535",
                             "1.2.65536",
                             "4294967295",
                             "4294967296",
                             "0xffffffff",
                             "0x100000000",
                             "1..2",
                             ".1",
                             "09",
                             "0x1g",
                             "1.0xff.0377.1",
                             "example.com",
                             ""}) {
        INFO("host: '" << host << "'");
        addrinfo hints{};
        hints.ai_family = AF_INET;
        hints.ai_flags = AI_NUMERICHOST;
        addrinfo* res = nullptr;
        bool const numeric = ::getaddrinfo(host, "80", &hints, &res) == 0;
        std::optional<std::uint32_t> libc;
        if (numeric) {
            libc = ntohl(reinterpret_cast<sockaddr_in const*>(res->ai_addr)->sin_addr.s_addr);
            ::freeaddrinfo(res);
        }
        CHECK(herald::detail::parse_inet_aton(host) == libc);
        if (numeric)
            CHECK(herald::detail::ends_in_number(host)); // so validate refuses it
    }
}

TEST_CASE("every URL validate accepts is connected exactly as written",
          "[webhook][validation][issue12]") {
    for (char const* const url :
         {"https://example.com/h", "http://example.com", "http://example.com?x=1",
          "http://localhost:1/", "http://[::1]:8080/", "https://[2606:4700::1111]/a/b?c=d&e",
          "http://93.184.216.34:8443/x/%2e%2e/y?z=%00", "https://Example.COM:443/Hook",
          "http://a.b.c.d.example:65535/p;q?r", "http://127.0.0.1:18490/nip"}) {
        INFO("url: " << url);
        REQUIRE(herald::validate(hook_params("hook", url), no_guard()).has_value());
        auto const read = as_transport_reads(url);
        auto const written = as_written(url);
        CHECK(read.host == written.host);
        CHECK(read.port == written.port);
        CHECK(read.target == written.target);
    }
    // and the ones refused above are those where the two readings part
    auto const nip = as_transport_reads("http://127.0.0.1.nip.io:18490/nip");
    CHECK(nip.host == "127.0.0.1");
    CHECK(nip.port == "80");
    CHECK(nip.target == "/.nip.io:18490/nip");
}

TEST_CASE("names are trimmed, and invisible characters refused", "[webhook][validation][issue12]") {
    CHECK(herald::detail::trim_name("  a b \t") == "a b");
    CHECK(herald::detail::trim_name("\u00a0a\u3000") == "a");
    CHECK(herald::detail::trim_name("\u2003") == "");
    CHECK(herald::detail::trim_name("caf\u00e9") == "caf\u00e9");
    check_invalid(hook_params("\u00a0\u2002"), "name", "required");
    check_invalid(hook_params("a\u0085b"), "name", "U+0085, a control character");
    check_invalid(hook_params("a\u009fb"), "name", "U+009F, a control character");
    for (char const* cp :
         {"\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069",
          "\u200e", "\u200f", "\u061c", "\u200b", "\u2060", "\ufeff", "\u2028", "\u00ad"}) {
        INFO("code point bytes: " << cp);
        check_invalid(hook_params(std::string("billing") + cp + "gnillib"), "name", "invisible");
    }
    check_invalid(hook_params("bad\xff"), "name", "UTF-8");
    check_invalid(hook_params("bad\xc0\xaf"), "name", "UTF-8");     // overlong '/'
    check_invalid(hook_params("bad\xed\xa0\x80"), "name", "UTF-8"); // a surrogate
    // letters of every script, emoji sequences (zero-width joiner) and inner spaces stay
    for (char const* ok : {"Zahlungseingänge", "請求", "مدفوعات", "👩‍💻 team", "a  b"}) {
        INFO(ok);
        CHECK(herald::validate(hook_params(ok)).has_value());
    }

    auto const r = parse(R"({"name":"  CMDB sync  ","url":"http://h","events":["create"]})");
    REQUIRE(r.has_value());
    CHECK(r->name == "CMDB sync");
    check_parse_error(R"({"name":"x\u202Ey","url":"http://h","events":["create"]})", "name",
                      "U+202E");
    // the stores trim what they are given too: test_conformance_table.cpp
}

TEST_CASE("events, secrets and headers may not repeat", "[webhook][validation][issue12]") {
    check_parse_error(R"({"name":"a","url":"http://h","events":["create","update","create"]})",
                      "events[2]", "duplicates 'create'");
    check_parse_error(R"({"name":"a","url":"http://h","events":["delete","delete"]})",
                      "webhooks[0].events[1]", "duplicates 'delete'", "webhooks[0].");

    auto const s1 = herald::secret::generate();
    auto const s2 = herald::secret::generate();
    auto p = hook_params("hook");
    p.secrets = {s1, s2, s1};
    check_invalid(p, "secrets[2]", "duplicates secrets[0]");
    p.secrets = {s1, s2};
    CHECK(herald::validate(p).has_value());
    check_parse_error(R"({"name":"a","url":"http://h","events":["create"],"secrets":[")" +
                          s1.reveal() + R"(",")" + s1.reveal() + R"("]})",
                      "secrets[1]", "duplicates secrets[0]");

    p = hook_params("hook");
    p.headers = {{"X-A", "1"}, {"X-B", "2"}, {"x-a", "3"}};
    check_invalid(p, "headers.x-a", "duplicates X-A");
    p.headers = {{"User-Agent", "mine/1"}, {"USER-AGENT", "mine/2"}};
    check_invalid(p, "headers.USER-AGENT", "duplicates User-Agent");
    p.headers = {{"User-Agent", "mine/1"}, {"X-A", "1"}};
    CHECK(herald::validate(p).has_value()); // a custom User-Agent is allowed: it replaces herald's
    check_parse_error(
        R"({"name":"a","url":"http://h","events":["create"],"headers":{"X-A":"1","x-A":"2"}})",
        "headers.x-A", "duplicates X-A");
}

TEST_CASE("credentials are masked by name and show nothing when short",
          "[webhook][json][mask][issue12]") {
    for (char const* name :
         {"Authorization", "Proxy-Authorization", "Authentication", "X-Auth", "X-Auth-Token",
          "Cookie", "X-Api-Key", "apikey", "X-Secret", "X-Signature", "X-Hub-Signature-256",
          "X-Password", "X-Passwd", "X-Pwd", "X-Session-Id", "X-Credential", "X-Credentials",
          "X-JWT", "X-CSRF"}) {
        INFO(name);
        CHECK(herald::is_sensitive_header(name));
    }
    for (char const* name : {"X-Tenant", "Accept", "User-Agent", "X-Request-Id", "webhook-id",
                             "webhook-signature", "herald-delivery"}) {
        INFO(name);
        CHECK_FALSE(herald::is_sensitive_header(name));
    }
    // shorter than 16: not one character shown
    for (char const* value : {"", "a", "abcd", "12345", "k-123456", "fifteen-chars-x"}) {
        INFO(value);
        CHECK(herald::mask_header_value(value) == "…");
    }
    CHECK(herald::mask_header_value("sixteen-chars-xy") == "sixt…");
    CHECK(herald::mask_header_value("Bearer s3cr3t-token") == "Bear…");
    CHECK(herald::mask_header_value("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9-long-enough-value") == "…");

    herald::webhook w;
    w.headers = {{"X-Tiny-Token", "abcd"},
                 {"X-Hub-Signature-256", "sha256=0123456789abcdef"},
                 {"X-Tenant", "acme"}};
    auto const o = herald::to_json(w);
    CHECK(json::serialize(o.at("headers")) ==
          R"({"X-Tiny-Token":"…","X-Hub-Signature-256":"sha2…","X-Tenant":"acme"})");
}

TEST_CASE("mask_url hides credential-looking query values and user-info",
          "[webhook][json][mask][issue12]") {
    struct masked {
        char const* url;
        char const* shown;
    };
    for (auto const& [url, shown] : {
             masked{"https://example.com/hook", "https://example.com/hook"},
             masked{"https://example.com/hook?token=abc&x=1",
                    "https://example.com/hook?token=…&x=1"},
             masked{"https://example.com/?key=k&api_key=a&apikey=b&secret=c&password=d&sig=e",
                    "https://example.com/?key=…&api_key=…&apikey=…&secret=…&password=…&sig=…"},
             masked{"https://example.com/?signature=1&access_token=2&auth=3&X-Amz-Signature=4",
                    "https://example.com/?signature=…&access_token=…&auth=…&X-Amz-Signature=…"},
             masked{"https://example.com/?%74oken=abc", "https://example.com/?%74oken=…"},
             masked{"https://example.com/?TOKEN=abc;page=2", "https://example.com/?TOKEN=…"},
             masked{"https://example.com/?page=2&token=&q", "https://example.com/?page=2&token=&q"},
             masked{"https://example.com/?q=token%3Dabc", "https://example.com/?q=token%3Dabc"},
             masked{"https://example.com?token=abc", "https://example.com?token=…"},
             masked{"https://u:p@example.com/?a=1", "https://…@example.com/?a=1"},
             masked{"https://example.com/a@b?k=v", "https://example.com/a@b?k=v"},
             masked{"https://example.com/p?token=a#f", "https://example.com/p?token=…#f"},
         }) {
        INFO(url);
        CHECK(herald::mask_url(url) == shown);
    }

    herald::webhook w;
    w.url = "https://example.com/hook?token=t0ps3cret&tenant=acme";
    CHECK(herald::to_json(w).at("url") == "https://example.com/hook?token=…&tenant=acme");
    CHECK(w.url == "https://example.com/hook?token=t0ps3cret&tenant=acme"); // what is sent
}

} // namespace herald_test_webhook
