#include <herald/engine/request.hpp>
#include <herald/shared_text.hpp>

#include <catch2/catch.hpp>

#include <memory>
#include <set>
#include <string>
#include <utility>

namespace shared_text_tests {

using herald::shared_text;

TEST_CASE("shared_text aliases its owner's characters and keeps them alive", "[shared_text][log]") {
    auto owner = std::make_shared<std::string const>("evt_0123456789abcdefghijklmnop");
    auto const* chars = owner->data();
    auto t = shared_text::alias(owner, *owner);
    CHECK(t.data() == chars); // no copy
    CHECK(owner.use_count() == 2);
    owner.reset();
    CHECK(t == "evt_0123456789abcdefghijklmnop"); // still alive through t
    CHECK(t.data() == chars);
}

TEST_CASE("shared_text reads, compares and converts like a string", "[shared_text][log]") {
    shared_text const a = std::string("alpha");
    shared_text const b = "beta";
    CHECK(a == "alpha");
    CHECK(std::string("alpha") == a);
    CHECK(a != b);
    CHECK(a < b);
    CHECK(a.size() == 5);
    CHECK(a.starts_with("al"));
    std::string const copied = a;
    CHECK(copied == "alpha");
    std::set<std::string> ids;
    ids.insert(b);
    CHECK(ids.count("beta") == 1);
    CHECK("id " + a == "id alpha");
    CHECK(a + "!" == "alpha!");
    CHECK(std::string("<") + a + b == "<alphabeta");
    CHECK(a + b == "alphabeta");
    auto c = a; // copies share
    CHECK(c.data() == a.data());
}

TEST_CASE("An empty or moved-from shared_text is \"\", never a null pointer",
          "[shared_text][log]") {
    shared_text empty;
    REQUIRE(empty.data() != nullptr);
    CHECK(empty.empty());
    auto owner = std::make_shared<std::string const>("");
    CHECK(shared_text::alias(owner, *owner).data() != nullptr);
    CHECK(owner.use_count() == 1); // an empty alias holds nothing
    shared_text from = "something long enough to leave the short buffer";
    shared_text to = std::move(from);
    CHECK(to == "something long enough to leave the short buffer");
    CHECK(from.empty()); // NOLINT(bugprone-use-after-move): the documented state
    CHECK(from.data() != nullptr);
}

TEST_CASE("An attempt's log entry shares the event's and the webhook's text",
          "[shared_text][log]") {
    auto ev = std::make_shared<herald::prepared_event>();
    ev->event = herald::object_event::updated("cmdb-object-00042", {}, {});
    ev->event.id = "evt_shared_text_test_0000000000";
    herald::webhook w;
    w.id = 7;
    w.name = "a webhook name longer than sixteen";
    w.url = "http://127.0.0.1:9/hooks/receive";
    auto hook = std::make_shared<herald::webhook const>(w);
    herald::delivery d;
    d.id = herald::make_delivery_id();
    d.event = ev;
    d.hook = hook;
    auto const e = herald::detail::make_entry(d, hook, herald::clock::now());
    CHECK(e.event_id.data() == ev->event.id.data());
    CHECK(e.object_id.data() == ev->event.object_id.data());
    CHECK(e.webhook_name.data() == hook->name.data());
    CHECK(e.url.data() == hook->url.data());
    CHECK(e.delivery_id == d.id_string());
    CHECK(e.webhook == 7);
    CHECK(e.attempt == 1);
    // The entry outlives the delivery and the snapshot, readable as it was.
    d = {};
    ev.reset();
    hook.reset();
    CHECK(e.webhook_name == "a webhook name longer than sixteen");
    CHECK(e.object_id == "cmdb-object-00042");
}

} // namespace shared_text_tests
