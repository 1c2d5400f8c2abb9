#include "fixtures.hpp"

#include <herald/detail/ids.hpp>
#include <herald/event.hpp>

#include <catch2/catch.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <set>
#include <string>
#include <thread>
#include <vector>

// One namespace a file: the unit tests build as one translation unit (unity).
namespace herald_test_event {

using namespace std::chrono_literals;
namespace json = boost::json;

using herald::test::fixed_time;

namespace {

constexpr std::string_view crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

json::object obj(std::string_view text) {
    return json::parse(text).as_object();
}

// Decodes Crockford base-32 digits (the ULID alphabet) into a number.
std::uint64_t decode_crockford(std::string_view digits) {
    std::uint64_t v = 0;
    for (char c : digits) {
        auto const pos = crockford.find(c);
        REQUIRE(pos != std::string_view::npos);
        v = v * 32 + pos;
    }
    return v;
}

bool is_crockford(std::string_view s) {
    return std::all_of(s.begin(), s.end(),
                       [](char c) { return crockford.find(c) != std::string_view::npos; });
}

} // namespace

TEST_CASE("make_event_id is evt_ and 26 Crockford characters encoding the time", "[event][ids]") {
    // Runs first in this file: later tests push the process-wide id clock forward within the
    // current millisecond only, so the time part of an id made now is now's milliseconds.
    auto const now = herald::clock::now();
    auto const id = herald::make_event_id(now);
    REQUIRE(id.size() == 4 + 26);
    CHECK(id.substr(0, 4) == "evt_");
    CHECK(is_crockford(id.substr(4)));
    // 26 digits hold 130 bits: the first digit carries only the top 3 bits
    CHECK(id[4] <= '7');
    // the first 10 digits are the 48-bit Unix milliseconds
    CHECK(decode_crockford(std::string_view(id).substr(4, 10)) ==
          static_cast<std::uint64_t>(herald::to_unix_ms(now)));
}

TEST_CASE("id128 writes all 128 bits in Crockford base 32", "[event][ids]") {
    herald::detail::id128 const zero{};
    CHECK(zero.to_string() == std::string(26, '0'));
    CHECK_FALSE(static_cast<bool>(zero));

    herald::detail::id128 const all{~std::uint64_t{0}, ~std::uint64_t{0}};
    CHECK(all.to_string() == "7" + std::string(25, 'Z'));

    herald::detail::id128 const one{0, 1};
    CHECK(one.to_string("p_") == "p_" + std::string(25, '0') + "1");
    CHECK(static_cast<bool>(one));

    // bit 64 (the lowest bit of hi) sits in the digit that straddles both halves
    herald::detail::id128 const straddle{1, 0};
    // 2^64 = 16 * 32^12, so digit 13 (from the left, 0-based) is 16 = 'G'
    CHECK(straddle.to_string() == std::string(13, '0') + "G" + std::string(12, '0'));

    herald::detail::id128 const low_top{0, std::uint64_t{0xF} << 60};
    // the top 4 bits of lo are bits 60..63: digit 13 holds bits 60..64
    CHECK(low_top.to_string() == std::string(13, '0') + "F" + std::string(12, '0'));
}

TEST_CASE("ids made in the same millisecond are unique and strictly increasing", "[event][ids]") {
    auto const now = herald::clock::now();
    std::string previous = herald::make_event_id(now);
    std::set<std::string> seen{previous};
    for (int i = 0; i < 10'000; ++i) {
        auto id = herald::make_event_id(now);
        REQUIRE(id > previous);
        previous = id;
        seen.insert(std::move(id));
    }
    CHECK(seen.size() == 10'001);

    SECTION("also as id128 values, and an earlier time never goes back") {
        auto const a = herald::detail::id128::make(now);
        auto const b = herald::detail::id128::make(now - 1h);
        auto const c = herald::detail::id128::make(now);
        CHECK(a < b);
        CHECK(b < c);
        CHECK(a.to_string() < b.to_string());
        CHECK(b.to_string() < c.to_string());
    }
}

TEST_CASE("ids made on many threads at once are all distinct", "[event][ids]") {
    constexpr int threads = 4;
    constexpr int per_thread = 10'000;
    std::vector<std::vector<std::string>> made(threads);
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t)
        workers.emplace_back([&made, t] {
            auto& out = made[static_cast<std::size_t>(t)];
            out.reserve(per_thread);
            for (int i = 0; i < per_thread; ++i)
                out.push_back(herald::make_event_id(herald::clock::now()));
        });
    for (auto& w : workers)
        w.join();

    std::set<std::string> all;
    for (auto const& ids : made) {
        // each thread sees its own ids in increasing order
        CHECK(std::is_sorted(ids.begin(), ids.end()));
        CHECK(std::adjacent_find(ids.begin(), ids.end()) == ids.end());
        all.insert(ids.begin(), ids.end());
    }
    CHECK(all.size() == std::size_t{threads * per_thread});
}

TEST_CASE("event_type wire names", "[event]") {
    CHECK(herald::to_string(herald::event_type::create) == "create");
    CHECK(herald::to_string(herald::event_type::update) == "update");
    CHECK(herald::to_string(herald::event_type::remove) == "delete");
    CHECK(herald::parse_event_type("create").value() == herald::event_type::create);
    CHECK(herald::parse_event_type("update").value() == herald::event_type::update);
    CHECK(herald::parse_event_type("delete").value() == herald::event_type::remove);

    auto const bad = herald::parse_event_type("remove", "events[0]");
    REQUIRE_FALSE(bad.has_value());
    CHECK(bad.error().code == herald::error::invalid_field);
    CHECK(bad.error().field == "events[0]");
    CHECK_THAT(bad.error().message, Catch::Contains("'remove'"));
    CHECK(herald::parse_event_type("CREATE").error().field == "type");
}

TEST_CASE("event_type_set holds a subset of the three types", "[event]") {
    herald::event_type_set s;
    CHECK(s.empty());
    s.insert(herald::event_type::update);
    CHECK(s.contains(herald::event_type::update));
    CHECK_FALSE(s.contains(herald::event_type::create));
    CHECK_FALSE(s.contains(herald::event_type::remove));
    s.erase(herald::event_type::update);
    CHECK(s.empty());
    auto const all = herald::event_type_set::all();
    CHECK(all == herald::event_type_set{herald::event_type::create, herald::event_type::update,
                                        herald::event_type::remove});
    CHECK(all.bits() == 0b111);
}

TEST_CASE("object() is the after object, or the before object for a delete", "[event]") {
    auto const c = herald::object_event::created("1", obj(R"({"v":"after"})"));
    REQUIRE(c.object() != nullptr);
    CHECK(c.object()->at("v") == "after");
    auto const u =
        herald::object_event::updated("1", obj(R"({"v":"before"})"), obj(R"({"v":"after"})"));
    REQUIRE(u.object() != nullptr);
    CHECK(u.object()->at("v") == "after");
    auto const d = herald::object_event::deleted("1", obj(R"({"v":"before"})"));
    REQUIRE(d.object() != nullptr);
    CHECK(d.object()->at("v") == "before");
    herald::object_event empty;
    CHECK(empty.object() == nullptr);
}

TEST_CASE("derive_changes lists changed, added and removed top-level fields", "[event][changes]") {
    SECTION("a changed field has old and new values") {
        auto const c = herald::derive_changes(obj(R"({"hostname":"a","ram":16})"),
                                              obj(R"({"hostname":"b","ram":16})"));
        CHECK(json::serialize(c) == R"({"hostname":{"old":"a","new":"b"}})");
    }
    SECTION("an added field has old null") {
        auto const c = herald::derive_changes(obj(R"({"a":1})"), obj(R"({"a":1,"b":2})"));
        CHECK(json::serialize(c) == R"({"b":{"old":null,"new":2}})");
    }
    SECTION("a removed field has new null") {
        auto const c = herald::derive_changes(obj(R"({"a":1,"b":2})"), obj(R"({"a":1})"));
        CHECK(json::serialize(c) == R"({"b":{"old":2,"new":null}})");
    }
    SECTION("unchanged fields are omitted; nothing changed gives an empty object") {
        auto const c = herald::derive_changes(obj(R"({"a":1,"b":[1,2],"c":{"x":true}})"),
                                              obj(R"({"c":{"x":true},"b":[1,2],"a":1})"));
        CHECK(c.empty());
        CHECK(herald::derive_changes(json::object{}, json::object{}).empty());
    }
    SECTION("nested objects and arrays are compared by value") {
        auto const c = herald::derive_changes(
            obj(R"({"net":{"ip":"10.0.0.1","mask":24},"tags":["a","b"],"same":{"k":[1]}})"),
            obj(R"({"net":{"ip":"10.0.0.2","mask":24},"tags":["b","a"],"same":{"k":[1]}})"));
        CHECK(json::serialize(c) ==
              R"({"net":{"old":{"ip":"10.0.0.1","mask":24},"new":{"ip":"10.0.0.2","mask":24}},)"
              R"("tags":{"old":["a","b"],"new":["b","a"]}})");
    }
    SECTION("a value that changes type is a change; null is a value") {
        auto const c =
            herald::derive_changes(obj(R"({"a":"1","b":null})"), obj(R"({"a":1,"b":false})"));
        CHECK(json::serialize(c) == R"({"a":{"old":"1","new":1},"b":{"old":null,"new":false}})");
    }
    SECTION("fields are listed in after's order, then removed ones") {
        auto const c = herald::derive_changes(obj(R"({"gone":0,"x":1,"y":1})"),
                                              obj(R"({"y":2,"new":3,"x":2})"));
        CHECK(json::serialize(c) == R"({"y":{"old":1,"new":2},"new":{"old":null,"new":3},)"
                                    R"("x":{"old":1,"new":2},"gone":{"old":0,"new":null}})");
    }
}

namespace {

void check_rejected(herald::object_event e, std::string_view field, std::string_view part) {
    auto const before = e;
    auto const r = herald::prepare_event(e, fixed_time());
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == herald::error::invalid_field);
    CHECK(r.error().field == field);
    CHECK_THAT(r.error().message, Catch::Contains(std::string(part)));
    // the event is left exactly as it was
    CHECK(e.id == before.id);
    CHECK(e.type == before.type);
    CHECK(e.object_id == before.object_id);
    CHECK(e.before == before.before);
    CHECK(e.after == before.after);
    CHECK(e.changes == before.changes);
    CHECK(e.occurred_at == before.occurred_at);
}

} // namespace

TEST_CASE("prepare_event requires what each event type needs", "[event][prepare][validation]") {
    auto const o = obj(R"({"hostname":"a"})");

    SECTION("object_id is required") {
        check_rejected(herald::object_event::created("", o), "object_id", "required");
        check_rejected(herald::object_event::deleted("", o), "object_id", "required");
    }
    SECTION("object_id and id are at most 256 characters") {
        check_rejected(herald::object_event::created(std::string(257, 'x'), o), "object_id", "256");
        auto e = herald::object_event::created("1", o);
        e.id = std::string(257, 'x');
        check_rejected(e, "id", "256");
        auto ok = herald::object_event::created(std::string(256, 'x'), o);
        ok.id = std::string(256, 'y');
        CHECK(herald::prepare_event(ok, fixed_time()).has_value());
    }
    SECTION("create needs after") {
        herald::object_event e;
        e.type = herald::event_type::create;
        e.object_id = "42";
        e.before = o; // before alone is not enough
        check_rejected(e, "after", "create");
    }
    SECTION("update needs after") {
        herald::object_event e;
        e.type = herald::event_type::update;
        e.object_id = "42";
        e.before = o;
        check_rejected(e, "after", "update");
    }
    SECTION("delete needs before") {
        herald::object_event e;
        e.type = herald::event_type::remove;
        e.object_id = "42";
        e.after = o; // after alone is not enough
        check_rejected(e, "before", "delete");
    }
    SECTION("an unknown type is refused") {
        auto e = herald::object_event::created("42", o);
        e.type = static_cast<herald::event_type>(7);
        check_rejected(e, "type", "create, update or delete");
    }
}

TEST_CASE("prepare_event fills in id and time only when empty", "[event][prepare]") {
    auto const now = fixed_time();

    SECTION("empty id and time are filled") {
        auto e = herald::object_event::created("42", obj(R"({"a":1})"));
        REQUIRE(herald::prepare_event(e, now).has_value());
        REQUIRE(e.id.size() == 30);
        CHECK(e.id.substr(0, 4) == "evt_");
        CHECK(is_crockford(e.id.substr(4)));
        CHECK(e.occurred_at == now);
        CHECK_FALSE(e.changes.has_value()); // only updates get changes
    }
    SECTION("a given id and time are kept") {
        auto e = herald::object_event::deleted("42", obj(R"({"a":1})"));
        e.id = "my-event-1";
        e.occurred_at = now - 1h;
        REQUIRE(herald::prepare_event(e, now).has_value());
        CHECK(e.id == "my-event-1");
        CHECK(e.occurred_at == now - 1h);
    }
    SECTION("two events prepared at the same time get different ids") {
        auto a = herald::object_event::created("1", obj("{}"));
        auto b = herald::object_event::created("1", obj("{}"));
        REQUIRE(herald::prepare_event(a, now).has_value());
        REQUIRE(herald::prepare_event(b, now).has_value());
        CHECK(a.id != b.id);
    }
}

TEST_CASE("prepare_event derives changes for an update without them", "[event][prepare][changes]") {
    SECTION("derived from before and after") {
        auto e = herald::object_event::updated("42", obj(R"({"hostname":"a","ram":16})"),
                                               obj(R"({"hostname":"b","ram":16,"cpu":4})"));
        REQUIRE(herald::prepare_event(e, fixed_time()).has_value());
        REQUIRE(e.changes.has_value());
        CHECK(json::serialize(*e.changes) ==
              R"({"hostname":{"old":"a","new":"b"},"cpu":{"old":null,"new":4}})");
        // before and after are untouched
        CHECK(json::serialize(*e.before) == R"({"hostname":"a","ram":16})");
        CHECK(json::serialize(*e.after) == R"({"hostname":"b","ram":16,"cpu":4})");
    }
    SECTION("given changes are kept as they are") {
        auto e = herald::object_event::updated("42", obj(R"({"hostname":"a"})"),
                                               obj(R"({"hostname":"b"})"));
        e.changes = obj(R"({"note":"custom"})");
        REQUIRE(herald::prepare_event(e, fixed_time()).has_value());
        CHECK(json::serialize(*e.changes) == R"({"note":"custom"})");
    }
    SECTION("given empty changes are kept empty") {
        auto e = herald::object_event::updated("42", obj(R"({"hostname":"a"})"),
                                               obj(R"({"hostname":"b"})"));
        e.changes = json::object{};
        REQUIRE(herald::prepare_event(e, fixed_time()).has_value());
        REQUIRE(e.changes.has_value());
        CHECK(e.changes->empty());
    }
    SECTION("an update without before is accepted and gets no changes") {
        herald::object_event e;
        e.type = herald::event_type::update;
        e.object_id = "42";
        e.after = obj(R"({"hostname":"b"})");
        REQUIRE(herald::prepare_event(e, fixed_time()).has_value());
        CHECK_FALSE(e.changes.has_value());
    }
}

} // namespace herald_test_event
