#include "fixtures.hpp"

#include <herald/datagerry_serializer.hpp>
#include <herald/json_serializer.hpp>

#include <catch2/catch.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <chrono>
#include <string>

// One namespace a file: the unit tests build as one translation unit (unity).
namespace herald_test_serializers {

using namespace std::chrono_literals;
namespace json = boost::json;

using herald::test::fixed_time;

namespace {

constexpr char const* event_id = "evt_01KB0Q3M5V8Z9X4N2R7T6Y1W0C";

json::object obj(std::string_view text) {
    return json::parse(text).as_object();
}

// A prepared event with a fixed id and time, as publish() would hand it to the serializer.
herald::object_event prepared(herald::object_event e) {
    e.id = event_id;
    REQUIRE(herald::prepare_event(e, fixed_time()).has_value());
    REQUIRE(e.occurred_at == fixed_time());
    return e;
}

herald::object_event sample_create() {
    return prepared(
        herald::object_event::created("42", obj(R"({"hostname":"web-1","ram":16,"tags":["a"]})")));
}

herald::object_event sample_update() {
    return prepared(herald::object_event::updated("42", obj(R"({"hostname":"web-1","ram":16})"),
                                                  obj(R"({"hostname":"web-2","ram":16})")));
}

herald::object_event sample_delete() {
    return prepared(herald::object_event::deleted("42", obj(R"({"hostname":"web-2","ram":16})")));
}

} // namespace

// ---- json_serializer ----

TEST_CASE("json_serializer golden body for create", "[serializer][json]") {
    auto e = sample_create();
    e.object_type = "server";
    e.actor = "alice";
    auto const p = herald::json_serializer{}.serialize(e);
    CHECK(p.body == R"({"id":"evt_01KB0Q3M5V8Z9X4N2R7T6Y1W0C","type":"create",)"
                    R"("timestamp":"2026-11-27T15:52:54.123Z","object_id":"42",)"
                    R"("object_type":"server","actor":"alice",)"
                    R"("object":{"hostname":"web-1","ram":16,"tags":["a"]}})");
    CHECK(p.content_type == "application/json");
    CHECK(p.headers.empty());
}

TEST_CASE("json_serializer golden body for update", "[serializer][json]") {
    auto e = sample_update();
    e.object_type = "server";
    e.actor = "alice";
    auto const p = herald::json_serializer{}.serialize(e);
    CHECK(p.body == R"({"id":"evt_01KB0Q3M5V8Z9X4N2R7T6Y1W0C","type":"update",)"
                    R"("timestamp":"2026-11-27T15:52:54.123Z","object_id":"42",)"
                    R"("object_type":"server","actor":"alice",)"
                    R"("object":{"hostname":"web-2","ram":16},)"
                    R"("changes":{"hostname":{"old":"web-1","new":"web-2"}}})");
    CHECK(p.content_type == "application/json");
}

TEST_CASE("json_serializer golden body for delete", "[serializer][json]") {
    auto const p = herald::json_serializer{}.serialize(sample_delete());
    CHECK(p.body == R"({"id":"evt_01KB0Q3M5V8Z9X4N2R7T6Y1W0C","type":"delete",)"
                    R"("timestamp":"2026-11-27T15:52:54.123Z","object_id":"42",)"
                    R"("object":{"hostname":"web-2","ram":16}})");
    CHECK(p.content_type == "application/json");
}

TEST_CASE("json_serializer omits absent optional fields", "[serializer][json]") {
    SECTION("no object_type, no actor") {
        auto const p = herald::json_serializer{}.serialize(sample_update());
        CHECK(p.body == R"({"id":"evt_01KB0Q3M5V8Z9X4N2R7T6Y1W0C","type":"update",)"
                        R"("timestamp":"2026-11-27T15:52:54.123Z","object_id":"42",)"
                        R"("object":{"hostname":"web-2","ram":16},)"
                        R"("changes":{"hostname":{"old":"web-1","new":"web-2"}}})");
    }
    SECTION("actor without object_type") {
        auto e = sample_create();
        e.actor = "bob";
        auto const v = json::parse(herald::json_serializer{}.serialize(e).body).as_object();
        CHECK(v.at("actor") == "bob");
        CHECK_FALSE(v.contains("object_type"));
    }
    SECTION("an update without changes has no changes key") {
        herald::object_event e;
        e.type = herald::event_type::update;
        e.object_id = "42";
        e.after = obj(R"({"a":1})");
        e = prepared(std::move(e)); // no before: nothing to derive
        auto const v = json::parse(herald::json_serializer{}.serialize(e).body).as_object();
        CHECK_FALSE(v.contains("changes"));
        CHECK(v.at("object") == json::value(obj(R"({"a":1})")));
    }
}

TEST_CASE("json_serializer writes changes on updates only", "[serializer][json]") {
    // changes set on a create or delete by mistake stay out of the body
    auto c = sample_create();
    c.changes = obj(R"({"x":{"old":1,"new":2}})");
    CHECK_FALSE(
        json::parse(herald::json_serializer{}.serialize(c).body).as_object().contains("changes"));
    auto d = sample_delete();
    d.changes = obj(R"({"x":{"old":1,"new":2}})");
    CHECK_FALSE(
        json::parse(herald::json_serializer{}.serialize(d).body).as_object().contains("changes"));
    // an update with given changes writes them as given
    auto u = sample_update();
    u.changes = obj(R"({"ram":{"old":8,"new":16}})");
    CHECK(json::parse(herald::json_serializer{}.serialize(u).body).at("changes") ==
          json::value(obj(R"({"ram":{"old":8,"new":16}})")));
}

TEST_CASE("json_serializer escapes strings and is deterministic", "[serializer][json]") {
    auto e = sample_create();
    e.object_id = "a\"b\\c\n";
    e.actor = "\xC3\xA9ve";
    herald::json_serializer const s;
    auto const first = s.serialize(e);
    auto const second = s.serialize(e);
    CHECK(first.body == second.body);
    auto const v = json::parse(first.body).as_object();
    CHECK(v.at("object_id") == "a\"b\\c\n");
    CHECK(v.at("actor") == "\xC3\xA9ve");
    CHECK(v.at("id") == event_id);
}

TEST_CASE("json_serializer carries the id prepare_event generated", "[serializer][json]") {
    auto e = herald::object_event::created("7", obj("{}"));
    REQUIRE(herald::prepare_event(e, fixed_time()).has_value());
    auto const v = json::parse(herald::json_serializer{}.serialize(e).body).as_object();
    CHECK(v.at("id") == json::value(e.id));
    CHECK(v.at("timestamp") == "2026-11-27T15:52:54.123Z");
}

// ---- datagerry_serializer ----

TEST_CASE("datagerry_serializer golden body for create", "[serializer][datagerry]") {
    auto const p = herald::datagerry_serializer{}.serialize(sample_create());
    CHECK(p.body == R"({"event_time":{"$date":1795794774123},"operation":"CREATE",)"
                    R"("object_before":null,)"
                    R"("object_after":{"hostname":"web-1","ram":16,"tags":["a"]},)"
                    R"("changes":null})");
    CHECK(p.content_type == "application/json");
    CHECK(p.headers.empty());
}

TEST_CASE("datagerry_serializer golden body for update with fields arrays",
          "[serializer][datagerry]") {
    auto const before = obj(R"({"public_id":42,"type_id":3,"active":true,"version":"1.0.0",)"
                            R"("author_id":1,"fields":[{"name":"hostname","value":"a"},)"
                            R"({"name":"ip","value":"10.0.0.1"},{"name":"os","value":"linux"}]})");
    auto const after = obj(R"({"public_id":42,"type_id":3,"active":true,"version":"1.0.1",)"
                           R"("author_id":1,"fields":[{"name":"hostname","value":"b"},)"
                           R"({"name":"ip","value":"10.0.0.1"},{"name":"os","value":"bsd"}]})");
    auto const e = prepared(herald::object_event::updated("42", before, after));
    auto const p = herald::datagerry_serializer{}.serialize(e);
    CHECK(p.body ==
          R"({"event_time":{"$date":1795794774123},"operation":"UPDATE",)"
          R"("object_before":{"public_id":42,"type_id":3,"active":true,"version":"1.0.0",)"
          R"("author_id":1,"fields":[{"name":"hostname","value":"a"},)"
          R"({"name":"ip","value":"10.0.0.1"},{"name":"os","value":"linux"}]},)"
          R"("object_after":{"public_id":42,"type_id":3,"active":true,"version":"1.0.1",)"
          R"("author_id":1,"fields":[{"name":"hostname","value":"b"},)"
          R"({"name":"ip","value":"10.0.0.1"},{"name":"os","value":"bsd"}]},)"
          R"("changes":{"old":[{"name":"hostname","value":"a"},{"name":"os","value":"linux"}],)"
          R"("new":[{"name":"hostname","value":"b"},{"name":"os","value":"bsd"}]}})");
    CHECK(p.content_type == "application/json");
}

TEST_CASE("datagerry_serializer field diffs cover added, removed and reordered fields",
          "[serializer][datagerry]") {
    auto const before = obj(R"({"fields":[{"name":"a","value":1},{"name":"b","value":2},)"
                            R"({"name":"gone","value":3}]})");
    auto const after = obj(R"({"fields":[{"name":"b","value":2},{"name":"a","value":1},)"
                           R"({"name":"added","value":4}]})");
    auto const e = prepared(herald::object_event::updated("1", before, after));
    auto const v = json::parse(herald::datagerry_serializer{}.serialize(e).body);
    CHECK(json::serialize(v.at("changes")) == R"({"old":[{"name":"gone","value":3}],)"
                                              R"("new":[{"name":"added","value":4}]})");

    SECTION("no differing entries gives empty lists") {
        auto const same = prepared(herald::object_event::updated("1", before, before));
        auto const s = json::parse(herald::datagerry_serializer{}.serialize(same).body);
        CHECK(json::serialize(s.at("changes")) == R"({"old":[],"new":[]})");
    }
}

TEST_CASE("datagerry_serializer maps herald changes without fields arrays",
          "[serializer][datagerry]") {
    auto const e = prepared(
        herald::object_event::updated("42", obj(R"({"hostname":"a","ram":16,"old_key":true})"),
                                      obj(R"({"hostname":"b","ram":16,"cpu":4})")));
    auto const p = herald::datagerry_serializer{}.serialize(e);
    CHECK(p.body == R"({"event_time":{"$date":1795794774123},"operation":"UPDATE",)"
                    R"("object_before":{"hostname":"a","ram":16,"old_key":true},)"
                    R"("object_after":{"hostname":"b","ram":16,"cpu":4},)"
                    R"("changes":{"old":[{"name":"hostname","value":"a"},)"
                    R"({"name":"cpu","value":null},{"name":"old_key","value":true}],)"
                    R"("new":[{"name":"hostname","value":"b"},)"
                    R"({"name":"cpu","value":4},{"name":"old_key","value":null}]}})");

    SECTION("fields arrays on one side only are not enough") {
        auto const one = prepared(herald::object_event::updated(
            "42", obj(R"({"fields":[{"name":"x","value":1}]})"), obj(R"({"x":2})")));
        auto const v = json::parse(herald::datagerry_serializer{}.serialize(one).body);
        // herald's derived changes: fields removed, x added
        CHECK(
            json::serialize(v.at("changes")) ==
            R"({"old":[{"name":"x","value":null},{"name":"fields","value":[{"name":"x","value":1}]}],)"
            R"("new":[{"name":"x","value":2},{"name":"fields","value":null}]})");
    }
    SECTION("an update without before or changes has empty lists") {
        herald::object_event u;
        u.type = herald::event_type::update;
        u.object_id = "42";
        u.after = obj(R"({"hostname":"b"})");
        u = prepared(std::move(u));
        auto const v = json::parse(herald::datagerry_serializer{}.serialize(u).body);
        CHECK(v.at("object_before").is_null());
        CHECK(json::serialize(v.at("changes")) == R"({"old":[],"new":[]})");
    }
}

TEST_CASE("datagerry_serializer passes DATAGERRY-shaped changes through",
          "[serializer][datagerry]") {
    auto e =
        herald::object_event::updated("42", obj(R"({"hostname":"a"})"), obj(R"({"hostname":"b"})"));
    e.changes = obj(R"({"old":[{"name":"hostname","value":"a"}],)"
                    R"("new":[{"name":"hostname","value":"b"}]})");
    e = prepared(std::move(e));
    auto const p = herald::datagerry_serializer{}.serialize(e);
    CHECK(p.body == R"({"event_time":{"$date":1795794774123},"operation":"UPDATE",)"
                    R"("object_before":{"hostname":"a"},"object_after":{"hostname":"b"},)"
                    R"("changes":{"old":[{"name":"hostname","value":"a"}],)"
                    R"("new":[{"name":"hostname","value":"b"}]}})");

    SECTION("herald-shaped changes about fields named old and new are mapped, not passed") {
        auto h = herald::object_event::updated("42", obj(R"({"old":1,"new":1})"),
                                               obj(R"({"old":2,"new":3})"));
        h = prepared(std::move(h));
        auto const v = json::parse(herald::datagerry_serializer{}.serialize(h).body);
        CHECK(json::serialize(v.at("changes")) ==
              R"({"old":[{"name":"old","value":1},{"name":"new","value":1}],)"
              R"("new":[{"name":"old","value":2},{"name":"new","value":3}]})");
    }
}

TEST_CASE("datagerry_serializer golden body for delete", "[serializer][datagerry]") {
    auto const p = herald::datagerry_serializer{}.serialize(sample_delete());
    CHECK(p.body == R"({"event_time":{"$date":1795794774123},"operation":"DELETE",)"
                    R"("object_before":{"hostname":"web-2","ram":16},)"
                    R"("object_after":null,"changes":null})");
    CHECK(p.content_type == "application/json");
}

TEST_CASE("datagerry_serializer keeps to its wire format", "[serializer][datagerry]") {
    SECTION("event_time is MongoDB extended JSON in epoch milliseconds") {
        auto e = sample_create();
        e.occurred_at = herald::time_point{};
        auto const v = json::parse(herald::datagerry_serializer{}.serialize(e).body);
        CHECK(json::serialize(v.at("event_time")) == R"({"$date":0})");
    }
    SECTION("operation is upper case") {
        CHECK(std::string(herald::datagerry_serializer::operation(herald::event_type::create)) ==
              "CREATE");
        CHECK(std::string(herald::datagerry_serializer::operation(herald::event_type::update)) ==
              "UPDATE");
        CHECK(std::string(herald::datagerry_serializer::operation(herald::event_type::remove)) ==
              "DELETE");
    }
    SECTION("no herald-only fields in the body") {
        auto e = sample_update();
        e.actor = "alice";
        e.object_type = "server";
        auto const v = json::parse(herald::datagerry_serializer{}.serialize(e).body).as_object();
        CHECK(v.size() == 5);
        CHECK_FALSE(v.contains("id"));
        CHECK_FALSE(v.contains("actor"));
        CHECK_FALSE(v.contains("object_type"));
    }
    SECTION("the body is the same when serialized twice") {
        herald::datagerry_serializer const s;
        auto const e = sample_update();
        CHECK(s.serialize(e).body == s.serialize(e).body);
    }
    SECTION("changes given on a create or delete stay out") {
        auto c = sample_create();
        c.changes = obj(R"({"old":[],"new":[]})");
        CHECK(
            json::parse(herald::datagerry_serializer{}.serialize(c).body).at("changes").is_null());
        auto d = sample_delete();
        d.after = obj(R"({"x":1})");
        auto const v = json::parse(herald::datagerry_serializer{}.serialize(d).body);
        CHECK(v.at("object_after").is_null());
        CHECK(v.at("changes").is_null());
    }
}

} // namespace herald_test_serializers
