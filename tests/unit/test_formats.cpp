// Per-webhook choices: the payload format (one of the dispatcher's serializers, each event
// serialized once per format in use) and the retry schedule (the params' by default).
#include "run_async.hpp"

#include <herald/basic_dispatcher.hpp>
#include <herald/manual_clock.hpp>
#include <herald/serializer/datagerry_serializer.hpp>
#include <herald/serializer/serializer_set.hpp>
#include <herald/transport/recording_transport.hpp>

#include <catch2/catch.hpp>

#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json/parse.hpp>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

// One namespace a file: the unit tests build as one translation unit (unity).
namespace herald_test_formats {

using namespace herald;
using herald::test::until;
using namespace std::chrono_literals;
namespace asio = boost::asio;
namespace json = boost::json;

namespace {

using formats = serializer_set<json_serializer, datagerry_serializer>;
using format_dispatcher = basic_dispatcher<memory_store, channel_source, formats,
                                           recording_transport, memory_log, manual_clock>;

webhook_params hook(std::string name, std::string format = "",
                    std::vector<duration> schedule = {}) {
    webhook_params p;
    p.url = "http://receiver.test/" + name;
    p.name = std::move(name);
    p.events = event_type_set::all();
    p.format = std::move(format);
    p.retry_schedule = std::move(schedule);
    return p;
}

dispatcher_params no_jitter(std::vector<duration> schedule = {0ms, 5min, 5min}) {
    dispatcher_params p;
    p.retry.schedule = std::move(schedule);
    p.retry.jitter = 0;
    return p;
}

result<webhook_params> parse(std::string const& text) {
    return parse_webhook_params(json::parse(text));
}

// Attempt times of one webhook's deliveries, oldest first.
template <class D>
std::vector<time_point> attempt_times(D const& d, webhook_id id) {
    log_query q;
    q.webhook = id;
    std::vector<time_point> out;
    for (auto const& e : d.log().query(q).entries)
        out.push_back(e.started_at);
    std::reverse(out.begin(), out.end());
    return out;
}

} // namespace

TEST_CASE("a webhook's format and retry schedule are read, checked and written as JSON",
          "[formats][webhook][json]") {
    auto p = parse(R"({"name": "cmdb", "url": "https://a.example/h", "events": ["create"],
                       "format": "datagerry", "retry_schedule": ["0s", "30s", "10m", "2h"]})");
    REQUIRE(p.has_value());
    CHECK(p->format == "datagerry");
    CHECK(p->retry_schedule == std::vector<duration>{0s, 30s, 10min, 2h});
    webhook w;
    static_cast<webhook_params&>(w) = *p;
    auto const o = to_json(w);
    CHECK(o.at("format").as_string() == "datagerry");
    CHECK(json::serialize(o.at("retry_schedule")) == R"(["0s","30s","10m","2h"])");

    // Left out: the dispatcher's; and to_json leaves them out too.
    auto plain = parse(R"({"name": "a", "url": "https://a.example/h", "events": ["create"]})");
    REQUIRE(plain.has_value());
    CHECK(plain->format.empty());
    CHECK(plain->retry_schedule.empty());
    webhook pw;
    static_cast<webhook_params&>(pw) = *plain;
    CHECK_FALSE(to_json(pw).contains("format"));
    CHECK_FALSE(to_json(pw).contains("retry_schedule"));

    auto problem = [](std::string const& extra) {
        auto r = parse(R"({"name": "a", "url": "https://a.example/h", "events": ["create"], )" +
                       extra + "}");
        REQUIRE_FALSE(r.has_value());
        return r.error().what();
    };
    CHECK(problem(R"("format": 3)") ==
          R"(format: must be a string (a format name such as "datagerry"))");
    CHECK(problem(R"("format": "Data Gerry")") ==
          "format: 'Data Gerry' is not a format name (lower-case letters, digits, '-', '_' and "
          "'.')");
    CHECK(problem(R"("retry_schedule": "5m")") ==
          R"(retry_schedule: must be an array of durations such as ["0s", "5m"])");
    CHECK(problem(R"("retry_schedule": [])") ==
          "retry_schedule: must hold at least one delay (leave it out for the default)");
    CHECK(problem(R"("retry_schedule": ["0s", "soon"])") ==
          "retry_schedule[1]: 'soon' is not a duration (expected a number and a unit: 250ms, "
          "5s, 2m, 1h, 1d)");
    CHECK(problem(R"("retry_schedule": ["0s", "31d"])") ==
          "retry_schedule[1]: is longer than 30 days");
    std::string many = R"("retry_schedule": [)";
    for (int i = 0; i < 33; ++i)
        many += std::string(i ? "," : "") + "\"1s\"";
    CHECK(problem(many + "]") == "retry_schedule: holds more than 32 delays");
}

TEST_CASE("serializer_set offers its members' formats, the first the default",
          "[formats][serializer]") {
    formats set;
    REQUIRE(set.formats().size() == 2);
    CHECK(set.formats()[0] == "herald");
    CHECK(set.formats()[1] == "datagerry");
    auto const e = object_event::created("7", {{"hostname", "db1"}});
    CHECK(set.serialize(e, 0).body == json_serializer{}.serialize(e).body);
    CHECK(set.serialize(e, 1).body == datagerry_serializer{}.serialize(e).body);
    CHECK(set.serialize(e).body == set.serialize(e, 0).body);
    static_assert(multi_format_serializer<formats>);
    static_assert(serializer<formats>);
    static_assert(named_serializer<json_serializer> && named_serializer<datagerry_serializer>);

    // This set (the default dispatcher's) offers both; a single serializer offers its name.
    asio::io_context io;
    dispatcher_params p;
    basic_dispatcher<memory_store, channel_source, formats, recording_transport> all(
        io.get_executor(), p);
    REQUIRE(all.formats().size() == 2);
    CHECK(all.check_format(hook("a", "datagerry")).has_value());
    CHECK(all.check_format(hook("a", "")).has_value());
    auto const bad = all.check_format(hook("a", "cloudevents"));
    REQUIRE_FALSE(bad.has_value());
    CHECK(bad.error().what() ==
          "format: 'cloudevents' is not a format this dispatcher offers (herald, datagerry)");
    basic_dispatcher<memory_store, channel_source, datagerry_serializer, recording_transport> one(
        io.get_executor(), p);
    REQUIRE(one.formats().size() == 1);
    CHECK(one.formats()[0] == "datagerry");
    CHECK_FALSE(one.check_format(hook("a", "herald")).has_value());
}

TEST_CASE("serializer_set::prefer makes another format the default", "[formats][serializer]") {
    formats set;
    auto const bad = set.prefer("xml");
    REQUIRE_FALSE(bad.has_value());
    CHECK(bad.error().what() == "format: 'xml' is not one of herald, datagerry");
    CHECK(set.formats()[0] == "herald"); // unchanged
    REQUIRE(set.prefer("datagerry").has_value());
    REQUIRE(set.formats().size() == 2);
    CHECK(set.formats()[0] == "datagerry");
    CHECK(set.formats()[1] == "herald");
    auto const e = object_event::created("7", {{"hostname", "db1"}});
    CHECK(set.serialize(e, 0).body == datagerry_serializer{}.serialize(e).body);
    CHECK(set.serialize(e, 1).body == json_serializer{}.serialize(e).body);

    // In a dispatcher: a webhook without a format gets the preferred one, "herald" still herald's.
    asio::io_context io;
    recording_transport transport;
    format_dispatcher d(io.get_executor(), no_jitter(),
                        {.serializer = set, .transport = transport});
    CHECK(d.formats()[0] == "datagerry");
    REQUIRE(d.store().create(hook("plain")).has_value());
    REQUIRE(d.store().create(hook("own", "herald")).has_value());
    test::run_async(io, [&]() -> asio::awaitable<void> {
        d.async_run(asio::detached);
        REQUIRE(d.publish(object_event::created("8", {{"a", 1}})).has_value());
        co_await until([&] { return d.stats().delivered == 2; });
        co_await d.async_stop(5s, asio::use_awaitable);
    });
    std::map<std::string, std::string> body_by_url;
    for (auto const& r : transport.requests())
        body_by_url[r.url] = *r.body;
    CHECK(json::parse(body_by_url.at("http://receiver.test/plain")).at("operation") == "CREATE");
    CHECK(json::parse(body_by_url.at("http://receiver.test/own")).at("object_id") == "8");
}

TEST_CASE("one dispatcher sends each webhook its format, serializing once per format in use",
          "[formats][dispatcher]") {
    asio::io_context io;
    recording_transport transport;
    format_dispatcher d(io.get_executor(), no_jitter(), {.transport = transport});
    auto const h1 = d.store().create(hook("herald-1")).value();
    auto const h2 = d.store().create(hook("dg-1", "datagerry")).value();
    auto const h3 = d.store().create(hook("herald-2", "herald")).value();
    auto const h4 = d.store().create(hook("dg-2", "datagerry")).value();
    auto const odd = d.store().create(hook("odd", "cloudevents")).value();

    std::string event_id;
    test::run_async(io, [&]() -> asio::awaitable<void> {
        d.async_run(asio::detached);
        auto id = d.publish(object_event::updated("42", {{"hostname", "a"}}, {{"hostname", "b"}}));
        REQUIRE(id.has_value());
        event_id = *id;
        co_await until([&] { return d.stats().delivered == 4 && d.stats().failed == 1; });
        // An event only herald's webhooks get is serialized once more, in that format alone.
        REQUIRE(d.store().remove(h2.id).has_value());
        REQUIRE(d.store().remove(h4.id).has_value());
        REQUIRE(d.publish(object_event::created("43", {{"hostname", "c"}})).has_value());
        co_await until([&] { return d.stats().delivered == 6; });
        co_await d.async_stop(5s, asio::use_awaitable);
    });
    CHECK(d.serializations() == 3); // two formats for the first event, one for the second

    std::map<std::string, http_request> by_url;
    for (auto const& r : transport.requests())
        if (r.header("webhook-id") == event_id)
            by_url[r.url] = r;
    REQUIRE(by_url.size() == 4);
    auto const& herald1 = by_url.at("http://receiver.test/herald-1");
    auto const& herald2 = by_url.at("http://receiver.test/herald-2");
    auto const& dg1 = by_url.at("http://receiver.test/dg-1");
    auto const& dg2 = by_url.at("http://receiver.test/dg-2");
    // One body per format, shared by its webhooks; one webhook-id for the one change.
    CHECK(herald1.body.get() == herald2.body.get());
    CHECK(dg1.body.get() == dg2.body.get());
    CHECK(herald1.body.get() != dg1.body.get());
    auto const hb = json::parse(*herald1.body);
    CHECK(hb.at("object_id").as_string() == "42");
    CHECK(hb.at("object").at("hostname").as_string() == "b");
    CHECK(hb.at("changes").at("hostname").at("old").as_string() == "a");
    auto const db = json::parse(*dg1.body);
    CHECK(db.at("operation").as_string() == "UPDATE");
    CHECK(db.at("object_before").at("hostname").as_string() == "a");
    CHECK(db.at("object_after").at("hostname").as_string() == "b");
    for (auto const* r : {&herald1, &herald2, &dg1, &dg2})
        CHECK(r->header("webhook-id") == event_id);

    // The webhook whose format this dispatcher does not offer: failed in the log, not sent.
    log_query q;
    q.webhook = odd.id;
    auto const entries = d.log().query(q).entries; // newest first: one per event
    REQUIRE(entries.size() == 2);
    CHECK(entries[1].event_id == event_id);
    for (auto const& e : entries) {
        CHECK(e.result == outcome::failed);
        CHECK(e.attempt == 0);
        CHECK(e.error == "not sent: the webhook's format 'cloudevents' is not a format this "
                         "dispatcher offers (herald, datagerry)");
    }
    for (auto const& r : transport.requests())
        CHECK(r.url != "http://receiver.test/odd");
    (void)h1;
    (void)h3;
}

TEST_CASE("Test sends a webhook's own format, and refuses one the dispatcher does not offer",
          "[formats][dispatcher][once]") {
    asio::io_context io;
    recording_transport transport;
    format_dispatcher d(io.get_executor(), no_jitter(), {.transport = transport});
    auto const dg = d.store().create(hook("dg", "datagerry")).value();
    auto const odd = d.store().create(hook("odd", "xml")).value();
    test::run_async(io, [&]() -> asio::awaitable<void> {
        d.async_run(asio::detached);
        // (An initializer list inside a co_await expression trips g++ 12.)
        auto e = object_event::created("1", {{"a", 1}});
        auto sent = co_await d.async_deliver_once(dg.id, std::move(e), asio::use_awaitable);
        REQUIRE(sent.has_value());
        CHECK(sent->result == outcome::delivered);
        auto refused = co_await d.async_deliver_once(odd.id, object_event::created("1", {}),
                                                     asio::use_awaitable);
        REQUIRE_FALSE(refused.has_value());
        CHECK(refused.error().field == "format");
        co_await d.async_stop(5s, asio::use_awaitable);
    });
    REQUIRE(transport.requests().size() == 1);
    CHECK(json::parse(*transport.requests()[0].body).at("operation").as_string() == "CREATE");
}

TEST_CASE("a webhook's retry schedule times its attempts; the others keep the dispatcher's",
          "[formats][dispatcher][retry]") {
    asio::io_context io;
    recording_transport transport;
    transport.respond([](http_request const&) {
        send_result s;
        s.status = 503;
        return s;
    });
    format_dispatcher d(io.get_executor(), no_jitter({0ms, 5min, 5min}), {.transport = transport});
    auto const own = d.store().create(hook("own", "", {1min, 10s})).value();
    auto const dflt = d.store().create(hook("default")).value();
    auto const t0 = manual_clock::now();
    std::uint64_t early = 0;
    test::run_async(io, [&]() -> asio::awaitable<void> {
        d.async_run(asio::detached);
        REQUIRE(d.publish(object_event::created("1", {})).has_value());
        co_await until([&] { return d.stats().attempts == 1; }); // the default's, at once
        manual_clock::advance(1min - 1ms);
        co_await test::settle(io);
        early = d.stats().attempts; // `own` waits its first delay
        manual_clock::advance(1ms);
        co_await until([&] { return d.stats().attempts == 2; });
        manual_clock::advance(10s);
        // `own` has used its two attempts; the default's second is due at 5 min.
        co_await until([&] { return d.stats().attempts == 3 && d.stats().failed == 1; });
        manual_clock::advance(5min);
        co_await until([&] { return d.stats().attempts == 4; });
        manual_clock::advance(5min);
        co_await until([&] { return d.stats().failed == 2; });
        co_await d.async_stop(5s, asio::use_awaitable);
    });
    CHECK(early == 1);
    CHECK(attempt_times(d, own.id) == std::vector<time_point>{t0 + 1min, t0 + 1min + 10s});
    // The default's second attempt was due at 5 min and ran when the clock got there.
    CHECK(attempt_times(d, dflt.id) ==
          std::vector<time_point>{t0, t0 + 6min + 10s, t0 + 11min + 10s});
}

} // namespace herald_test_formats
