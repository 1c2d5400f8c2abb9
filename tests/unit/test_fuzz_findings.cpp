// Defects the fuzz harnesses (tests/fuzz) found, each pinned by an ordinary test.
#include <herald/event.hpp>
#include <herald/webhook.hpp>

#include <catch2/catch.hpp>

#include <boost/json/parse.hpp>

TEST_CASE("an empty key is named in the problem, not left blank", "[event][webhook][parse][fuzz]") {
    // found by the event harness: `{"type":"create","":{}}` was refused with an empty field,
    // so the relay printed "line 1: is not a known field" without saying which
    auto const e = herald::parse_event(boost::json::parse(R"({"type":"create","":{}})"));
    REQUIRE_FALSE(e.has_value());
    CHECK(e.error().field == R"("")");
    CHECK(e.error().what() == R"("": is not a known field)");

    auto const w = herald::parse_webhook_params(
        boost::json::parse(R"({"name":"a","url":"https://h","events":["create"],"":1})"));
    REQUIRE_FALSE(w.has_value());
    CHECK(w.error().field == R"("")");
    auto const in_file = herald::parse_webhook_params(
        boost::json::parse(R"({"name":"a","url":"https://h","events":["create"],"":1})"),
        "webhooks[0].");
    REQUIRE_FALSE(in_file.has_value());
    CHECK(in_file.error().field == R"(webhooks[0]."")");
}
