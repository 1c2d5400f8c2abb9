// Signing, custom headers, the SSRF rules at creation, 410 and automatic disabling, through
// the dispatcher over recording_transport. No sockets.
#include "run_async.hpp"

#include <herald/basic_dispatcher.hpp>
#include <herald/transport/recording_transport.hpp>

#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>

// One namespace a file: the unit tests build as one translation unit (unity).
namespace herald_test_trust {

using namespace herald;
using herald::test::until;
using namespace std::chrono_literals;
namespace asio = boost::asio;

namespace {

using test_dispatcher = basic_dispatcher<memory_store, channel_source, json_serializer,
                                         recording_transport, memory_log>;

webhook_params hook(std::string name) {
    webhook_params p;
    p.url = "https://receiver.test/" + name;
    p.name = std::move(name);
    p.events = event_type_set::all();
    return p;
}

dispatcher_params quick() {
    dispatcher_params p;
    p.retry.schedule = {0ms, 10ms, 10ms, 10ms, 10ms, 10ms};
    p.retry.jitter = 0;
    return p;
}

send_result status(unsigned s) {
    send_result r;
    r.status = s;
    return r;
}

} // namespace

TEST_CASE("every request is signed with every secret of its webhook", "[trust][signature]") {
    asio::io_context io;
    recording_transport transport;
    test_dispatcher d(io.get_executor(), quick(), {.transport = transport});
    auto const old_secret = secret::generate();
    auto const new_secret = secret::generate();
    auto signed_hook = hook("signed");
    signed_hook.secrets = {old_secret, new_secret};
    REQUIRE(d.store().create(signed_hook).has_value());
    REQUIRE(d.store().create(hook("unsigned")).has_value());
    test::run_async(io, [&]() -> asio::awaitable<void> {
        d.async_run(asio::detached);
        REQUIRE(d.publish(object_event::created("1", {{"a", 1}})).has_value());
        co_await until([&] { return d.stats().delivered == 2; });
        co_await d.async_stop(1s, asio::use_awaitable);
    });
    auto const reqs = transport.requests();
    REQUIRE(reqs.size() == 2);
    for (auto const& r : reqs) {
        if (r.url.ends_with("/unsigned")) {
            CHECK(r.header("webhook-signature").empty());
            continue;
        }
        auto const sig = r.header("webhook-signature");
        CHECK(std::count(sig.begin(), sig.end(), ' ') == 1); // two signatures
        signed_headers const h{r.header("webhook-id"), r.header("webhook-timestamp"), sig};
        secret const only_old[] = {old_secret};
        secret const only_new[] = {new_secret};
        CHECK(verify(h, *r.body, only_old).has_value());
        CHECK(verify(h, *r.body, only_new).has_value());
    }
    // secrets never reach the log
    for (auto const& e : d.log().query({}).entries) {
        auto const line = boost::json::serialize(to_json(e));
        CHECK(line.find(old_secret.reveal().substr(6)) == std::string::npos);
    }
    auto const listed = boost::json::serialize(to_json(d.store().list().at(0)));
    CHECK(listed.find(old_secret.reveal().substr(6)) == std::string::npos);
    CHECK(listed.find(old_secret.to_string()) != std::string::npos); // masked form only
}

TEST_CASE("custom headers travel; herald's own cannot be overridden", "[trust][headers]") {
    asio::io_context io;
    recording_transport transport;
    test_dispatcher d(io.get_executor(), quick(), {.transport = transport});
    auto p = hook("with-headers");
    p.headers = {{"Authorization", "Bearer t0ken"}, {"X-Tenant", "acme"}};
    REQUIRE(d.store().create(p).has_value());
    test::run_async(io, [&]() -> asio::awaitable<void> {
        d.async_run(asio::detached);
        REQUIRE(d.publish(object_event::created("1", {})).has_value());
        co_await until([&] { return d.stats().delivered == 1; });
        co_await d.async_stop(1s, asio::use_awaitable);
    });
    auto const r = transport.requests().at(0);
    CHECK(r.header("authorization") == "Bearer t0ken");
    CHECK(r.header("x-tenant") == "acme");

    struct bad_case {
        http_header h;
        char const* words;
    };
    bad_case const cases[] = {
        {{"X-Evil", "a\r\nInjected: yes"}, "CR or LF"},
        {{"X-Evil", "a\nb"}, "CR or LF"},
        {{"X-Bell", "ding\x07"}, "control character"},
        {{"Host", "evil.test"}, "set by herald"},
        {{"content-length", "0"}, "set by herald"},
        {{"Content-Type", "text/plain"}, "set by herald"},
        {{"webhook-id", "forged"}, "set by herald"},
        {{"Webhook-Signature", "v1,forged"}, "set by herald"},
        {{"herald-attempt", "9"}, "set by herald"},
        {{"Transfer-Encoding", "chunked"}, "set by herald"},
        {{"Bad Name", "x"}, "not a valid header name"},
        {{"", "x"}, "empty name"},
    };
    for (auto const& c : cases) {
        INFO(c.h.name << ": " << c.h.value);
        auto q = hook("bad-" + std::to_string(&c - cases));
        q.headers = {c.h};
        auto const created = d.store().create(q);
        REQUIRE_FALSE(created.has_value());
        CHECK(created.error().field.rfind("headers", 0) == 0);
        CHECK(created.error().field == (c.h.name.empty() ? "headers[0]" : "headers." + c.h.name));
        CHECK(created.error().message.find(c.words) != std::string::npos);
    }
    CHECK(d.store().list().size() == 1);
}

TEST_CASE("literal private addresses are refused at creation unless allowed", "[trust][ssrf]") {
    memory_store store;
    auto p = hook("internal");
    p.url = "http://10.1.2.3:8080/hook";
    auto const refused = store.create(p);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().field == "url");
    CHECK(refused.error().message ==
          "refused: 10.1.2.3 is in a private range (10.0.0.0/8); allow it with allow_private "
          "[\"10.1.2.3/32\"]");
    for (auto const* url : {"http://127.0.0.1/", "http://[::1]/", "http://169.254.169.254/latest",
                            "http://[::ffff:192.168.0.1]/", "http://0.0.0.0/"}) {
        p.url = url;
        INFO(url);
        CHECK_FALSE(store.create(p).has_value());
    }
    CHECK(store.list().empty());
    // a per-webhook allow-list lets exactly that range through
    p.url = "http://10.1.2.3:8080/hook";
    p.allow_private = {cidr::parse("10.1.0.0/16").value()};
    CHECK(store.create(p).has_value());
    // so does the store's own policy; names resolve at send time, not here
    memory_store_params sp;
    sp.addresses.allow.push_back(cidr::parse("127.0.0.1/32").value());
    memory_store local(sp);
    auto l = hook("local");
    l.url = "http://127.0.0.1:9000/";
    CHECK(local.create(l).has_value());
    l.name = "by-name";
    l.url = "http://localhost:9000/";
    CHECK(local.create(l).has_value());
    // https_only refuses plain http
    memory_store_params tls_only;
    tls_only.https_only = true;
    memory_store strict(tls_only);
    auto h = hook("plain");
    h.url = "http://example.com/";
    CHECK(strict.create(h).error().message.find("must be https") != std::string::npos);
}

TEST_CASE("410 Gone disables the webhook at once; re-activating resumes", "[trust][disable]") {
    asio::io_context io;
    recording_transport transport;
    bool gone = true;
    transport.respond([&](http_request const&) { return status(gone ? 410 : 204); });
    test_dispatcher d(io.get_executor(), quick(), {.transport = transport});
    auto const w = d.store().create(hook("moved-away")).value();
    test::run_async(io, [&]() -> asio::awaitable<void> {
        d.async_run(asio::detached);
        REQUIRE(d.publish(object_event::created("1", {})).has_value());
        co_await until([&] { return d.stats().failed == 1; });
        auto const now_off = d.store().get(w.id);
        CHECK_FALSE(now_off->active);
        CHECK(now_off->disabled_reason == "the receiver answered 410 Gone");
        CHECK(now_off->disabled_at.has_value());
        // new events no longer match it
        REQUIRE(d.publish(object_event::created("2", {})).has_value());
        co_await until([&] { return d.stats().unmatched == 1; });
        // a user turns it back on: the reason goes, deliveries flow again
        gone = false;
        auto p = hook("moved-away");
        REQUIRE(d.store().update(w.id, p).has_value());
        CHECK(d.store().get(w.id)->disabled_reason.empty());
        REQUIRE(d.publish(object_event::created("3", {})).has_value());
        co_await until([&] { return d.stats().delivered == 1; });
        co_await d.async_stop(1s, asio::use_awaitable);
    });
    auto log = d.log().query({}).entries;
    REQUIRE(log.size() == 2);
    CHECK(log[1].status == 410);
    CHECK(log[1].result == outcome::failed);
    CHECK(log[1].error == "receiver answered HTTP 410; webhook disabled: the receiver answered "
                          "410 Gone");
    CHECK(log[0].result == outcome::delivered);
    CHECK(transport.requests().size() == 2);
}

TEST_CASE("a circuit opens after repeated failures and deliveries wait instead of burning "
          "attempts",
          "[trust][breaker]") {
    asio::io_context io;
    recording_transport transport;
    transport.respond([](http_request const&) { return status(503); });
    auto p = quick();
    p.health.failure_threshold = 3;
    p.health.cool_down = 200ms;
    p.scheduling.lane_concurrency = 1;
    test_dispatcher d(io.get_executor(), p, {.transport = transport});
    REQUIRE(d.store().create(hook("down")).has_value());
    test::run_async(io, [&]() -> asio::awaitable<void> {
        d.async_run(asio::detached);
        for (int i = 0; i < 5; ++i)
            REQUIRE(d.publish(object_event::created(std::to_string(i), {})).has_value());
        co_await until([&] { return d.stats().attempts >= 3; });
        // the third failure opened the circuit: for the cool-down, nothing is sent
        asio::steady_timer t(io, 120ms);
        co_await t.async_wait(asio::use_awaitable);
        CHECK(d.stats().attempts == 3);
        co_await until([&] { return d.stats().attempts >= 4; }); // the probe
        co_await d.async_stop(0ms, asio::use_awaitable);
    });
    log_query q;
    auto const log = d.log().query(q).entries;
    bool opened = false;
    for (auto const& e : log)
        opened = opened || e.error.find("circuit opened: deliveries wait 200ms for a probe") !=
                               std::string::npos;
    CHECK(opened);
}

TEST_CASE("once its probe succeeds, a webhook's backlog goes out at the lane's full concurrency",
          "[trust][breaker]") {
    asio::io_context io;
    recording_transport transport;
    bool healthy = false;
    std::size_t started = 0, most_in_flight = 0;
    transport.latency([](http_request const&) { return duration(20ms); });
    transport.respond([&](http_request const&) {
        ++started; // requests() lists those that ended: the rest are in flight
        if (healthy)
            most_in_flight = std::max(most_in_flight, started - transport.requests().size());
        return status(healthy ? 204 : 503);
    });
    auto p = quick();
    p.retry.schedule = {0ms}; // one attempt each
    p.health.failure_threshold = 2;
    p.health.cool_down = 100ms;
    p.scheduling.lane_concurrency = 4;
    test_dispatcher d(io.get_executor(), p, {.transport = transport});
    REQUIRE(d.store().create(hook("flaky")).has_value());
    test::run_async(io, [&]() -> asio::awaitable<void> {
        d.async_run(asio::detached);
        for (int i = 0; i < 2; ++i)
            REQUIRE(d.publish(object_event::created(std::to_string(i), {})).has_value());
        co_await until([&] { return d.stats().failed >= 2; });
        REQUIRE(d.stats().open_circuits == 1);
        healthy = true; // the backlog piles up behind the open circuit, then the probe passes
        for (int i = 2; i < 14; ++i)
            REQUIRE(d.publish(object_event::created(std::to_string(i), {})).has_value());
        co_await until([&] { return d.stats().delivered >= 12; });
        co_await d.async_stop(0ms, asio::use_awaitable);
    });
    CHECK(d.stats().delivered == 12);
    CHECK(d.stats().open_circuits == 0);
    CHECK(most_in_flight == 4); // the probe alone, then four at a time, not one by one
}

TEST_CASE("failing for the whole window disables the webhook", "[trust][disable]") {
    asio::io_context io;
    recording_transport transport;
    transport.respond([](http_request const&) { return status(500); });
    auto p = quick();
    p.health.failure_threshold = 3;
    p.health.cool_down = 1ms; // the circuit barely holds deliveries back: the window decides
    p.health.disable_after = 30ms;
    p.retry.schedule = std::vector<duration>(50, 5ms);
    test_dispatcher d(io.get_executor(), p, {.transport = transport});
    auto const w = d.store().create(hook("flapping")).value();
    test::run_async(io, [&]() -> asio::awaitable<void> {
        d.async_run(asio::detached);
        REQUIRE(d.publish(object_event::created("1", {})).has_value());
        co_await until([&] { return !d.store().get(w.id)->active; });
        co_await until([&] { return d.stats().pending == 0; });
        co_await d.async_stop(1s, asio::use_awaitable);
    });
    auto const off = d.store().get(w.id);
    CHECK(off->disabled_reason == "no successful delivery for 30ms");
    auto const last = d.log().query({}).entries.at(0);
    CHECK(last.result == outcome::failed);
    CHECK(last.error.find("webhook disabled: no successful delivery for 30ms") !=
          std::string::npos);
}

} // namespace herald_test_trust
