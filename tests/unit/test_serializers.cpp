#include "fixtures.hpp"

#include <herald/detail/json_writer.hpp>
#include <herald/serializer/datagerry_serializer.hpp>
#include <herald/serializer/json_serializer.hpp>

#include <catch2/catch.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

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

// ---- numbers (detail::format_json_double, detail::serialize_json) ----

namespace {

std::string number(double d) {
    std::string s;
    herald::detail::append_json_double(s, d);
    return s;
}

std::uint64_t bits_of(double d) {
    std::uint64_t b;
    std::memcpy(&b, &d, sizeof b);
    return b;
}

// The text is a JSON number that a reader takes for a double (not an integer), and a correctly
// rounding reader (strtod, as Python's and JavaScript's) reads it back as the very same double,
// sign of zero included. (Boost.JSON 1.81's own parser is not correctly rounded: it reads
// several thousand of the values below one unit in the last place off, whatever their text.)
bool reads_back(std::string const& text, double d) {
    auto const v = json::parse(text);
    return v.is_double() && bits_of(std::strtod(text.c_str(), nullptr)) == bits_of(d);
}

// No text with fewer significant digits reads back as `d`: the form is the shortest.
bool is_shortest(std::string const& text, double d) {
    auto const round_trips = [&](int precision) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.*e", precision, d);
        return bits_of(std::strtod(buf, nullptr)) == bits_of(d);
    };
    int needed = 1; // significant digits
    while (needed < 17 && !round_trips(needed - 1))
        ++needed;
    // the text's significant digits: "12.0" and "0.001" carry zeros that are not
    std::string sig;
    for (char c : text.substr(0, text.find('e')))
        if (c >= '0' && c <= '9')
            sig += c;
    auto const first = sig.find_first_not_of('0');
    sig = first == std::string::npos ? "0" : sig.substr(first);
    while (sig.size() > 1 && sig.back() == '0')
        sig.pop_back();
    return sig.size() == static_cast<std::size_t>(needed);
}

} // namespace

TEST_CASE("format_json_double writes what Python's repr writes", "[serializer][number]") {
    CHECK(number(2.4) == "2.4");
    CHECK(number(12.0) == "12.0");
    CHECK(number(1.0) == "1.0");
    CHECK(number(0.1) == "0.1");
    CHECK(number(0.1 + 0.2) == "0.30000000000000004");
    CHECK(number(-2.5) == "-2.5");
    CHECK(number(0.0) == "0.0");
    CHECK(number(-0.0) == "-0.0");
    CHECK(number(100.0) == "100.0");
    CHECK(number(123.456) == "123.456");
    // fixed notation from 1e-4 up to 1e16, as repr
    CHECK(number(0.0001) == "0.0001");
    CHECK(number(0.00001) == "1e-05");
    CHECK(number(1e15) == "1000000000000000.0");
    CHECK(number(9999999999999998.0) == "9999999999999998.0");
    CHECK(number(1e16) == "1e+16");
    CHECK(number(123456789012345680000.0) == "1.2345678901234568e+20");
    CHECK(number(1e21) == "1e+21");
    CHECK(number(5e-324) == "5e-324");
    CHECK(number(2.2250738585072014e-308) == "2.2250738585072014e-308");
    CHECK(number(1.7976931348623157e308) == "1.7976931348623157e+308");
    CHECK(number(-1.5e-10) == "-1.5e-10");
    // no JSON spelling: null, as JavaScript's JSON.stringify
    CHECK(number(std::numeric_limits<double>::infinity()) == "null");
    CHECK(number(-std::numeric_limits<double>::infinity()) == "null");
    CHECK(number(std::numeric_limits<double>::quiet_NaN()) == "null");
}

TEST_CASE("format_json_double reads back exactly in the fewest digits", "[serializer][number]") {
    std::vector<double> values = {0.1,
                                  1e21,
                                  5e-324,
                                  -0.0,
                                  0.0,
                                  1.7976931348623157e308,
                                  -1.7976931348623157e308,
                                  123456789012345680000.0,
                                  2.2250738585072014e-308,
                                  2.225073858507201e-308,
                                  4.35,
                                  1e23,
                                  9007199254740993.0,
                                  0.30000000000000004,
                                  1e-5,
                                  1e-4,
                                  1e16,
                                  1e15};
    // every bit pattern is equally likely: subnormals, huge and tiny exponents
    std::mt19937_64 rng(20261127);
    for (int i = 0; i < 20000; ++i) {
        std::uint64_t b = rng();
        double d;
        std::memcpy(&d, &b, sizeof d);
        if (std::isfinite(d))
            values.push_back(d);
    }
    // and values of the size objects carry: prices, loads, ratios, whole numbers
    std::uniform_real_distribution<double> mantissa(-10.0, 10.0);
    std::uniform_int_distribution<int> exponent(-8, 20);
    for (int i = 0; i < 20000; ++i) {
        double const d = mantissa(rng) * std::pow(10.0, exponent(rng));
        values.push_back(d);
        values.push_back(std::round(d));
    }
    std::size_t failures = 0;
    for (double d : values) {
        auto const text = number(d);
        if (!reads_back(text, d) || !is_shortest(text, d)) {
            if (++failures < 10)
                FAIL_CHECK(text << " for the double with bits " << std::hex << bits_of(d));
        }
    }
    CHECK(failures == 0);
}

TEST_CASE("serialize_json differs from Boost.JSON only in doubles", "[serializer][number]") {
    auto const doc =
        json::parse(R"({"s":"a\"b\\c\n\t\u0001\u001f/\u00e9","i":-9223372036854775808,)"
                    R"("u":18446744073709551615,"z":0,"t":true,"f":false,"n":null,"e":{},"a":[],)"
                    R"("nested":[{"k":[1,[2,[3]]]},"x"],"\u0000key":"v"})");
    auto const expected = json::serialize(doc);
    CHECK(herald::detail::serialize_json(doc) == expected);
    // the writer that doubles take, on the same document
    std::string out;
    herald::detail::json_writer(out).write(doc);
    CHECK(out == expected);

    auto const with = json::parse(R"({"load":2.4,"ram":12.0,"one":1.0,"n":[1.5e300,-0.0,7],)"
                                  R"("s":"2.4E0"})");
    CHECK(herald::detail::serialize_json(with) ==
          R"({"load":2.4,"ram":12.0,"one":1.0,"n":[1.5e+300,-0.0,7],"s":"2.4E0"})");
    CHECK(json::parse(herald::detail::serialize_json(with)) == with);
    std::string appended = "prefix:";
    herald::detail::serialize_json(with.as_object(), appended);
    CHECK(appended.rfind("prefix:{\"load\":2.4,", 0) == 0);
}

TEST_CASE("both serializers write doubles as senders do", "[serializer][number]") {
    auto const before = obj(R"({"load":2.4,"ram":12.0,"cpus":4})");
    auto const after = obj(R"({"load":1.0,"ram":12.0,"cpus":4})");
    auto const e = prepared(herald::object_event::updated("42", before, after));
    auto const body = herald::json_serializer{}.serialize(e).body;
    CHECK(body == R"({"id":"evt_01KB0Q3M5V8Z9X4N2R7T6Y1W0C","type":"update",)"
                  R"("timestamp":"2026-11-27T15:52:54.123Z","object_id":"42",)"
                  R"("object":{"load":1.0,"ram":12.0,"cpus":4},)"
                  R"("changes":{"load":{"old":2.4,"new":1.0}}})");
    auto const dg = herald::datagerry_serializer{}.serialize(e).body;
    CHECK(dg == R"({"event_time":{"$date":1795794774123},"operation":"UPDATE",)"
                R"("object_before":{"load":2.4,"ram":12.0,"cpus":4},)"
                R"("object_after":{"load":1.0,"ram":12.0,"cpus":4},)"
                R"("changes":{"old":[{"name":"load","value":2.4}],)"
                R"("new":[{"name":"load","value":1.0}]}})");
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

TEST_CASE("datagerry_serializer passes changes that are not {old, new} through unchanged",
          "[serializer][datagerry]") {
    // DATAGERRY's state toggle: a CmdbObject.to_json() whose fields did not change, with
    // {"state": false} as its changes
    auto const before = obj(R"({"public_id":42,"type_id":3,"active":true,"author_id":1,)"
                            R"("creation_time":{"$date":1733230000000},"version":"1.0.0",)"
                            R"("fields":[{"name":"hostname","value":"a"}]})");
    auto after = before;
    after["active"] = false;
    auto toggle = herald::object_event::updated("42", before, after);
    toggle.changes = obj(R"({"state":false})");
    toggle = prepared(std::move(toggle));
    auto const p = herald::datagerry_serializer{}.serialize(toggle);
    CHECK(p.body == R"({"event_time":{"$date":1795794774123},"operation":"UPDATE",)"
                    R"("object_before":{"public_id":42,"type_id":3,"active":true,"author_id":1,)"
                    R"("creation_time":{"$date":1733230000000},"version":"1.0.0",)"
                    R"("fields":[{"name":"hostname","value":"a"}]},)"
                    R"("object_after":{"public_id":42,"type_id":3,"active":false,"author_id":1,)"
                    R"("creation_time":{"$date":1733230000000},"version":"1.0.0",)"
                    R"("fields":[{"name":"hostname","value":"a"}]},)"
                    R"("changes":{"state":false}})");
    // herald's envelope carries it unchanged as well
    CHECK(json::parse(herald::json_serializer{}.serialize(toggle).body).at("changes") ==
          json::value(obj(R"({"state":false})")));

    SECTION("without fields arrays") {
        auto plain = herald::object_event::updated("42", obj(R"({"active":true})"),
                                                   obj(R"({"active":false})"));
        plain.changes = obj(R"({"state":false})");
        plain = prepared(std::move(plain));
        auto const v = json::parse(herald::datagerry_serializer{}.serialize(plain).body);
        CHECK(json::serialize(v.at("changes")) == R"({"state":false})");
    }
    SECTION("one entry that is not {old, new} is enough") {
        auto mixed = herald::object_event::updated("42", obj(R"({"a":1})"), obj(R"({"a":2})"));
        mixed.changes = obj(R"({"a":{"old":1,"new":2},"note":"bulk edit","b":{"old":1}})");
        mixed = prepared(std::move(mixed));
        auto const v = json::parse(herald::datagerry_serializer{}.serialize(mixed).body);
        CHECK(json::serialize(v.at("changes")) ==
              R"({"a":{"old":1,"new":2},"note":"bulk edit","b":{"old":1}})");
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
