// Events read from JSON (the relay's event lines) and the JSON lines log.
#include <herald/event.hpp>
#include <herald/log/jsonl_log.hpp>

#include <catch2/catch.hpp>

#include <boost/json/parse.hpp>

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

// One namespace a file: the unit tests build as one translation unit (unity).
namespace herald_test_parse_event {

using namespace herald;

namespace {
result<object_event> parse(char const* text) {
    return parse_event(boost::json::parse(text));
}
} // namespace

TEST_CASE("parse_event reads every key of an event line", "[event][json]") {
    auto const e = parse(R"({"type": "update", "object_id": 42, "object_type": "server",
        "before": {"a": 1}, "after": {"a": 2}, "changes": {"a": {"old": 1, "new": 2}},
        "actor": "alice", "id": "evt_custom-1"})");
    REQUIRE(e.has_value());
    CHECK(e->type == event_type::update);
    CHECK(e->object_id == "42"); // an integer id becomes its decimal string
    CHECK(e->object_type == "server");
    CHECK(e->before == boost::json::parse(R"({"a": 1})").as_object());
    CHECK(e->after == boost::json::parse(R"({"a": 2})").as_object());
    CHECK(e->changes->at("a").at("new") == 2);
    CHECK(e->actor == "alice");
    CHECK(e->id == "evt_custom-1");
    CHECK(e->occurred_at == time_point{}); // publish fills it in
}

TEST_CASE("parse_event accepts nulls for optional keys", "[event][json]") {
    auto const e = parse(R"({"type": "create", "object_id": "x", "object_type": null,
        "before": null, "after": {}, "changes": null, "actor": null})");
    REQUIRE(e.has_value());
    CHECK_FALSE(e->object_type);
    CHECK_FALSE(e->before);
    CHECK(e->after);
    CHECK_FALSE(e->actor);
}

TEST_CASE("parse_event names the key that is wrong", "[event][json][validation]") {
    struct bad {
        char const* json;
        char const* field;
        char const* words;
    };
    bad const cases[] = {
        {R"([1, 2])", "event", "must be a JSON object"},
        {R"({"object_id": "1"})", "type", "is required"},
        {R"({"type": "merge", "object_id": "1"})", "type", "unknown event type 'merge'"},
        {R"({"type": 3, "object_id": "1"})", "type", "must be a string"},
        {R"({"type": "create"})", "object_id", "is required"},
        {R"({"type": "create", "object_id": 1.5})", "object_id", "must be a string or an integer"},
        {R"({"type": "create", "object_id": "1", "after": [1]})", "after", "must be a JSON object"},
        {R"({"type": "create", "object_id": "1", "before": "x"})", "before",
         "must be a JSON object"},
        {R"({"type": "create", "object_id": "1", "actor": 7})", "actor", "must be a string"},
        {R"({"type": "create", "object_id": "1", "colour": "red"})", "colour",
         "is not a known field"},
    };
    for (auto const& c : cases) {
        INFO(c.json);
        auto const r = parse(c.json);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().code == error::invalid_field);
        CHECK(r.error().field == c.field);
        CHECK(r.error().message.find(c.words) != std::string::npos);
    }
}

TEST_CASE("jsonl_log writes one JSON line per attempt and answers queries", "[log][jsonl]") {
    char path[] = "/tmp/herald-jsonl-XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    close(fd);
    {
        auto log = jsonl_log::open(path);
        REQUIRE(log.has_value());
        for (int i = 0; i < 3; ++i) {
            log_entry e;
            e.delivery_id = "dlv_" + std::to_string(i);
            e.webhook = static_cast<webhook_id>(i % 2 + 1);
            e.result = i == 2 ? outcome::failed : outcome::delivered;
            e.object_id = "bad \xff byte"; // an application's bytes, not UTF-8
            log->record(std::move(e));
        }
        log->flush();
        log_query q;
        q.webhook = 1;
        auto const page = log->query(q);
        REQUIRE(page.entries.size() == 2);
        CHECK(page.entries[0].delivery_id == "dlv_2");
    }
    std::ifstream in(path);
    std::string line;
    std::vector<boost::json::object> lines;
    while (std::getline(in, line))
        lines.push_back(boost::json::parse(line).as_object());
    std::remove(path);
    REQUIRE(lines.size() == 3);
    CHECK(lines[0].at("delivery_id") == "dlv_0");
    CHECK(lines[2].at("outcome") == "failed");
    CHECK(lines[1].at("webhook_id") == 2);
    CHECK(lines[0].at("object_id") == "bad \xEF\xBF\xBD byte"); // still valid JSON
}

TEST_CASE("jsonl_log::open names the path it cannot open", "[log][jsonl]") {
    auto const r = jsonl_log::open("/nonexistent-dir/x.jsonl");
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().field == "path");
    CHECK(r.error().message.find("/nonexistent-dir/x.jsonl") != std::string::npos);
}

TEST_CASE("parse_json_strict refuses a key given twice, at any depth", "[event][json][issue12]") {
    using herald::detail::parse_json_strict;
    struct twice {
        char const* json;
        char const* key;
    };
    for (auto const& [text, key] : {
             twice{R"({"name":"a","name":"b"})", "name"},
             twice{R"({"a":1,"b":2,"c":3,"b":4})", "b"},
             twice{R"({"after":{"x":1,"y":2,"x":3}})", "x"},
             twice{R"([1,{"k":[{"z":0,"z":0}]}])", "z"},
             twice{R"({"\u0061":1,"a":2})", "a"}, // one key, spelled two ways
             twice{R"({"":1,"":2})", ""},
         }) {
        INFO(text);
        auto const r = parse_json_strict(text);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().code == herald::error::invalid_field);
        CHECK(r.error().field == "body");
        CHECK(r.error().message == std::string("has duplicate key '") + key + "'");
    }
    // what the same text means to Boost.JSON alone: the last one, silently
    CHECK(boost::json::parse(R"({"name":"a","name":"b"})").at("name") == "b");

    // the same keys in different objects, and the same values, are fine
    auto const ok = parse_json_strict(R"({"a":{"a":1},"b":[{"a":1},{"a":2}],"c":"a","d":"a"})");
    REQUIRE(ok.has_value());
    CHECK(*ok == boost::json::parse(R"({"a":{"a":1},"b":[{"a":1},{"a":2}],"c":"a","d":"a"})"));
    // a wide object: sorted, not compared pairwise
    std::string wide = "{";
    for (int i = 0; i < 50000; ++i)
        wide += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":" + std::to_string(i);
    CHECK(parse_json_strict(wide + "}").has_value());
    auto const dup = parse_json_strict(wide + ",\"k123\":0}");
    REQUIRE_FALSE(dup.has_value());
    CHECK(dup.error().message == "has duplicate key 'k123'");
    // a long key is quoted cut short
    auto const longkey = std::string(100, 'q');
    auto const cut = parse_json_strict("{\"" + longkey + "\":1,\"" + longkey + "\":2}");
    REQUIRE_FALSE(cut.has_value());
    CHECK(cut.error().message == "has duplicate key '" + std::string(64, 'q') + "…'");
}

TEST_CASE("parse_json_strict keeps Boost.JSON's limits", "[event][json][issue12]") {
    using herald::detail::parse_json_strict;
    auto nested = [](int depth) {
        return std::string(std::size_t(depth), '[') + std::string(std::size_t(depth), ']');
    };
    CHECK(parse_json_strict(nested(32)).has_value());
    auto const deep = parse_json_strict(nested(33));
    REQUIRE_FALSE(deep.has_value());
    CHECK(deep.error().message == "is not valid JSON: nested deeper than 32 levels");
    // Said by name and place: Boost.JSON calls both a syntax error.
    CHECK(parse_json_strict("\"\xff\"").error().message ==
          "is not valid JSON: invalid UTF-8 at byte 2");
    CHECK(parse_json_strict("{\"k\":\"ab\xc3\x28\"}").error().message ==
          "is not valid JSON: invalid UTF-8 at byte 9");
    CHECK(parse_json_strict("{\"k\":\"\xed\xa0\x80\"}").error().message ==
          "is not valid JSON: invalid UTF-8 at byte 7"); // a UTF-16 surrogate
    CHECK(parse_json_strict("{\"a\":1,}").error().message ==
          "is not valid JSON: syntax error at byte 8");
    CHECK(parse_json_strict("[1] [2]").error().message ==
          "is not valid JSON: extra data after byte 4");
    CHECK(herald::detail::invalid_utf8_at("h\xc3\xa9llo \xf0\x9f\x98\x80") ==
          std::string_view::npos);
    CHECK(herald::detail::invalid_utf8_at("\xc0\x80") == 0);           // overlong
    CHECK(herald::detail::invalid_utf8_at("ab\xf4\x90\x80\x80") == 2); // above U+10FFFF
    CHECK(herald::detail::invalid_utf8_at("ab\xe2\x82") == 2);         // cut short
    for (char const* bad : {"", "{", "{\"a\":1,}", "[1] [2]", "{\"a\":1}x", "// c\n1", "NaN"}) {
        INFO(bad);
        auto const r = parse_json_strict(bad);
        REQUIRE_FALSE(r.has_value());
        CHECK_THAT(r.error().message, Catch::StartsWith("is not valid JSON: "));
        boost::system::error_code ec;
        (void)boost::json::parse(bad, ec);
        CHECK(ec); // what boost::json::parse refuses too
        CHECK_THAT(r.error().message, Catch::StartsWith("is not valid JSON: " + ec.message()));
    }
    auto const line = parse_json_strict("{", "");
    REQUIRE_FALSE(line.has_value());
    CHECK(line.error().field.empty());
    CHECK_THAT(line.error().message, Catch::StartsWith("not valid JSON: "));
    for (char const* good : {"1", "null", "\"s\"", "[]", "{}", " {\"a\" : [1, 2.5, -3, true]} "}) {
        INFO(good);
        auto const r = parse_json_strict(good);
        REQUIRE(r.has_value());
        CHECK(*r == boost::json::parse(good));
    }
}

TEST_CASE("parse_event_json reads an event line and refuses a key given twice",
          "[event][json][issue12]") {
    auto const e = herald::parse_event_json(R"({"type":"create","object_id":"7","after":{}})");
    REQUIRE(e.has_value());
    CHECK(e->object_id == "7");
    // the relay would have published a delete of object 2: the last key wins in Boost.JSON
    auto const twice =
        herald::parse_event_json(R"({"type":"create","object_id":"1","type":"delete",)"
                                 R"("object_id":"2","before":{},"after":{}})");
    REQUIRE_FALSE(twice.has_value());
    CHECK(twice.error().what() == "duplicate key 'object_id'");
    auto const inner = herald::parse_event_json(
        R"({"type":"update","object_id":"1","after":{"ip":"10.0.0.1","ip":"10.0.0.2"}})");
    REQUIRE_FALSE(inner.has_value());
    CHECK(inner.error().what() == "duplicate key 'ip'");
    CHECK(herald::parse_event_json("{").error().what() == "not valid JSON: " + [] {
        boost::system::error_code ec;
        (void)boost::json::parse("{", ec);
        return ec.message();
    }() + " at the end");
    CHECK(herald::parse_event_json(R"({"type":"nope","object_id":"1"})").error().field == "type");
}

} // namespace herald_test_parse_event
