// What every webhooks table does, whatever keeps it (tests/support/models.hpp): the table
// (get, match, disable) and the editable table (create, update, remove, list). What one model
// does beyond that (a file that survives a restart, 10,000 webhooks in memory) is tested with
// the model.
#include "models.hpp"

#include <herald/concepts.hpp>
#include <herald/webhook.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <set>
#include <string>
#include <vector>

// One namespace a file: the unit tests build as one translation unit (unity).
namespace conformance_table {

using namespace std::chrono_literals;
using herald::event_type;
using herald::webhook_id;
using herald::test::hook_params;

namespace {

/// The model's table, checked against the concept it models: the one place that names it.
template <class Model>
typename Model::type open_table(Model& model) {
    static_assert(herald::editable_webhook_table<typename Model::type>);
    return model.make();
}

herald::object_event event_of(event_type t) {
    herald::object_event e;
    e.type = t;
    e.object_id = "1";
    return e;
}

std::set<webhook_id> ids_of(herald::webhook_list const& list) {
    REQUIRE(list != nullptr);
    std::set<webhook_id> out;
    for (auto const& w : *list)
        out.insert(w->id);
    return out;
}

std::vector<webhook_id> ids_of(std::vector<herald::webhook> const& list) {
    std::vector<webhook_id> out;
    for (auto const& w : list)
        out.push_back(w.id);
    return out;
}

/// The ids the table matches for an event of type `t`.
template <class Table>
std::set<webhook_id> matched(Table const& table, event_type t) {
    return ids_of(table.match(event_of(t)));
}

void check_duplicate(herald::result<herald::webhook> const& r) {
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == herald::error::duplicate_name);
    CHECK(r.error().field == "name");
    CHECK_THAT(r.error().message, Catch::Contains("already used"));
}

void check_not_found(herald::problem const& p, std::string const& id) {
    CHECK(p.code == herald::error::not_found);
    CHECK(p.field == "id");
    CHECK_THAT(p.message, Catch::Contains(id));
}

} // namespace

// ---- the editable table: create, update, remove, list ----

TEMPLATE_TEST_CASE("a table's create assigns increasing ids and times", "[conformance][table]",
                   HERALD_TEST_TABLE_MODELS) {
    TestType model;
    auto store = open_table(model);
    auto const a = store.create(hook_params("a"));
    auto const b = store.create(hook_params("b"));
    auto const c = store.create(hook_params("c"));
    REQUIRE(a.has_value());
    REQUIRE(b.has_value());
    REQUIRE(c.has_value());
    CHECK(a->id == 1);
    CHECK(b->id == 2);
    CHECK(c->id == 3);
    CHECK(a->created_at != herald::time_point{});
    CHECK(a->created_at == a->updated_at);
    CHECK(a->created_at <= b->created_at);
    CHECK(b->created_at <= c->created_at);
    CHECK(a->name == "a");
    CHECK(a->url == "https://example.com/hook");
    CHECK(a->events == herald::event_type_set::all());
    CHECK(a->active);
}

TEMPLATE_TEST_CASE("a table gets, lists, updates and removes webhooks", "[conformance][table]",
                   HERALD_TEST_TABLE_MODELS) {
    TestType model;
    auto store = open_table(model);
    auto const a = store.create(hook_params("alpha", "https://a.example/hook")).value();
    auto const b = store.create(hook_params("beta", "https://b.example/hook")).value();

    SECTION("get returns the stored webhook, or null") {
        auto const g = store.get(a.id);
        REQUIRE(g != nullptr);
        CHECK(g->id == a.id);
        CHECK(g->name == "alpha");
        CHECK(g->url == "https://a.example/hook");
        CHECK(store.get(999) == nullptr);
        CHECK(store.get(0) == nullptr);
    }
    SECTION("list returns every webhook by id") {
        auto const all = store.list();
        REQUIRE(all.size() == 2);
        CHECK(all[0].name == "alpha");
        CHECK(all[1].name == "beta");
        CHECK(ids_of(all) == std::vector<webhook_id>{a.id, b.id});
    }
    SECTION("update replaces the params and keeps id and created_at") {
        auto p = hook_params("alpha2", "http://new.example/x", {event_type::update});
        p.active = false;
        p.timeout = 3s;
        auto const u = store.update(a.id, p);
        REQUIRE(u.has_value());
        CHECK(u->id == a.id);
        CHECK(u->name == "alpha2");
        CHECK(u->url == "http://new.example/x");
        CHECK(u->events == herald::event_type_set{event_type::update});
        CHECK_FALSE(u->active);
        CHECK(u->timeout == herald::duration(3s));
        CHECK(u->created_at == a.created_at);
        CHECK(u->updated_at >= a.updated_at);
        auto const g = store.get(a.id);
        REQUIRE(g != nullptr);
        CHECK(g->name == "alpha2");
        CHECK(g->url == "http://new.example/x");
        CHECK(store.list().size() == 2);
    }
    SECTION("a webhook got before an update keeps its old values") {
        auto const old = store.get(a.id);
        REQUIRE(store.update(a.id, hook_params("renamed")).has_value());
        CHECK(old->name == "alpha");
        CHECK(store.get(a.id)->name == "renamed");
    }
    SECTION("update of an unknown id is not_found") {
        auto const r = store.update(42, hook_params("x"));
        REQUIRE_FALSE(r.has_value());
        check_not_found(r.error(), "42");
    }
    SECTION("remove deletes the webhook and frees its name") {
        REQUIRE(store.remove(a.id).has_value());
        CHECK(store.get(a.id) == nullptr);
        CHECK(ids_of(store.list()) == std::vector<webhook_id>{b.id});
        auto const again = store.create(hook_params("ALPHA"));
        REQUIRE(again.has_value());
        CHECK(again->id == 3); // ids are never reused
    }
    SECTION("remove of an unknown id is not_found") {
        auto const r = store.remove(77);
        REQUIRE_FALSE(r.has_value());
        check_not_found(r.error(), "77");
        REQUIRE(store.remove(a.id).has_value());
        CHECK(store.remove(a.id).error().code == herald::error::not_found);
        CHECK(store.list().size() == 1);
    }
}

TEMPLATE_TEST_CASE("a table's names are unique, case-insensitively", "[conformance][table]",
                   HERALD_TEST_TABLE_MODELS) {
    TestType model;
    auto store = open_table(model);
    auto const a = store.create(hook_params("Inventory Sync")).value();
    auto const b = store.create(hook_params("billing")).value();
    auto const list_before = ids_of(store.list());

    SECTION("on create") {
        check_duplicate(store.create(hook_params("inventory sync")));
        check_duplicate(store.create(hook_params("INVENTORY SYNC")));
        check_duplicate(store.create(hook_params("Inventory Sync")));
        CHECK(ids_of(store.list()) == list_before);
        // the failed creates used no id
        CHECK(store.create(hook_params("third")).value().id == 3);
    }
    SECTION("on update") {
        check_duplicate(store.update(b.id, hook_params("INVENTORY sync")));
        auto const g = store.get(b.id);
        REQUIRE(g != nullptr);
        CHECK(g->name == "billing");
        CHECK(g->updated_at == b.updated_at);
        // the name "billing" still belongs to b
        check_duplicate(store.create(hook_params("Billing")));
    }
    SECTION("renaming a webhook to its own name in another case is allowed") {
        auto const r = store.update(a.id, hook_params("INVENTORY SYNC"));
        REQUIRE(r.has_value());
        CHECK(r->name == "INVENTORY SYNC");
        check_duplicate(store.create(hook_params("inventory sync")));
    }
    SECTION("a renamed webhook frees its old name") {
        REQUIRE(store.update(a.id, hook_params("Inventory v2")).has_value());
        CHECK(store.create(hook_params("inventory sync")).has_value());
        check_duplicate(store.create(hook_params("INVENTORY V2")));
    }
}

TEMPLATE_TEST_CASE("a table trims the names it is given before it compares them",
                   "[conformance][table]", HERALD_TEST_TABLE_MODELS) {
    TestType model;
    auto store = open_table(model);
    auto const a = store.create(hook_params("a"));
    REQUIRE(a.has_value());
    auto const spaced = store.create(hook_params(" a\u00a0"));
    REQUIRE_FALSE(spaced.has_value());
    CHECK(spaced.error().code == herald::error::duplicate_name);
    auto const b = store.create(hook_params("\tb "));
    REQUIRE(b.has_value());
    CHECK(b->name == "b");
    auto const renamed = store.update(b->id, hook_params(" A "));
    REQUIRE_FALSE(renamed.has_value());
    CHECK(renamed.error().code == herald::error::duplicate_name);
    auto const kept = store.update(b->id, hook_params(" b  "));
    REQUIRE(kept.has_value());
    CHECK(kept->name == "b");
}

TEMPLATE_TEST_CASE("a table changes nothing when create or update fails", "[conformance][table]",
                   HERALD_TEST_TABLE_MODELS) {
    TestType model;
    auto store = open_table(model);
    auto const a =
        store.create(hook_params("a", "https://a.example", {event_type::create})).value();
    auto const created = matched(store, event_type::create);

    for (char const* url : {"not a url", "ftp://example.com"}) {
        INFO("url: " << url);
        auto const bad_create = store.create(hook_params("b", url));
        REQUIRE_FALSE(bad_create.has_value());
        CHECK(bad_create.error().field == "url");
    }
    CHECK(ids_of(store.list()) == std::vector<webhook_id>{a.id});
    CHECK(matched(store, event_type::create) == created);

    auto const bad_update =
        store.update(a.id, hook_params("a-renamed", "https://a.example", herald::event_type_set{}));
    REQUIRE_FALSE(bad_update.has_value());
    CHECK(bad_update.error().field == "events");
    auto const g = store.get(a.id);
    REQUIRE(g != nullptr);
    CHECK(g->name == "a");
    CHECK(g->events == herald::event_type_set{event_type::create});
    CHECK(g->updated_at == a.updated_at);
    CHECK(matched(store, event_type::create) == created);
    // the failed rename did not take the new name
    CHECK(store.create(hook_params("a-renamed")).has_value());
    // and the old one is still taken
    CHECK(store.create(hook_params("A")).error().code == herald::error::duplicate_name);
}

// ---- the table: get, match, disable ----

TEMPLATE_TEST_CASE("a table's disable switches a webhook off until an update activates it",
                   "[conformance][table]", HERALD_TEST_TABLE_MODELS) {
    TestType model;
    auto store = open_table(model);
    auto const a =
        store.create(hook_params("a", "https://a.example/x", {event_type::create})).value();
    auto const b =
        store.create(hook_params("b", "https://b.example/x", {event_type::create})).value();

    auto const off = store.disable(a.id, "the receiver answered 410 Gone");
    REQUIRE(off.has_value());
    CHECK(off->id == a.id);
    CHECK_FALSE(off->active);
    CHECK(off->disabled_reason == "the receiver answered 410 Gone");
    REQUIRE(off->disabled_at.has_value());
    CHECK(*off->disabled_at >= a.updated_at);
    CHECK(off->updated_at >= a.updated_at);
    // the rest is as it was
    CHECK(off->name == "a");
    CHECK(off->url == "https://a.example/x");
    CHECK(off->events == herald::event_type_set{event_type::create});
    CHECK(off->created_at == a.created_at);
    auto const g = store.get(a.id);
    REQUIRE(g != nullptr);
    CHECK_FALSE(g->active);
    CHECK(g->disabled_reason == "the receiver answered 410 Gone");
    CHECK(matched(store, event_type::create) == std::set<webhook_id>{b.id});
    CHECK(store.list().size() == 2);

    auto const unknown = store.disable(99, "gone");
    REQUIRE_FALSE(unknown.has_value());
    check_not_found(unknown.error(), "99");

    SECTION("an update that leaves it inactive keeps the reason") {
        auto p = hook_params("a2", "https://a.example/x", {event_type::create});
        p.active = false;
        auto const u = store.update(a.id, p);
        REQUIRE(u.has_value());
        CHECK(u->name == "a2");
        CHECK(u->disabled_reason == "the receiver answered 410 Gone");
        CHECK(u->disabled_at.has_value());
        CHECK(matched(store, event_type::create) == std::set<webhook_id>{b.id});
    }
    SECTION("an update that activates it clears the reason") {
        auto const u =
            store.update(a.id, hook_params("a", "https://a.example/x", {event_type::create}));
        REQUIRE(u.has_value());
        CHECK(u->active);
        CHECK(u->disabled_reason.empty());
        CHECK_FALSE(u->disabled_at.has_value());
        CHECK(store.get(a.id)->disabled_reason.empty());
        CHECK(matched(store, event_type::create) == std::set<webhook_id>{a.id, b.id});
    }
}

TEMPLATE_TEST_CASE("a table matches the active webhooks subscribed to the type",
                   "[conformance][table]", HERALD_TEST_TABLE_MODELS) {
    TestType model;
    auto store = open_table(model);
    auto const all = store.create(hook_params("all")).value();
    auto const creates =
        store.create(hook_params("creates", "http://h", {event_type::create})).value();
    auto const updates =
        store.create(hook_params("updates", "http://h", {event_type::update, event_type::remove}))
            .value();
    auto inactive_params = hook_params("inactive");
    inactive_params.active = false;
    auto const inactive = store.create(inactive_params).value();

    CHECK(matched(store, event_type::create) == std::set<webhook_id>{all.id, creates.id});
    CHECK(matched(store, event_type::update) == std::set<webhook_id>{all.id, updates.id});
    CHECK(matched(store, event_type::remove) == std::set<webhook_id>{all.id, updates.id});

    SECTION("deactivating removes a webhook from matches; activating adds it") {
        auto p = hook_params("all");
        p.active = false;
        REQUIRE(store.update(all.id, p).has_value());
        CHECK(matched(store, event_type::create) == std::set<webhook_id>{creates.id});
        auto q = inactive_params;
        q.active = true;
        REQUIRE(store.update(inactive.id, q).has_value());
        CHECK(matched(store, event_type::create) == std::set<webhook_id>{creates.id, inactive.id});
    }
    SECTION("changing events changes matches") {
        REQUIRE(store.update(creates.id, hook_params("creates", "http://h", {event_type::remove}))
                    .has_value());
        CHECK(matched(store, event_type::create) == std::set<webhook_id>{all.id});
        CHECK(matched(store, event_type::remove) ==
              std::set<webhook_id>{all.id, creates.id, updates.id});
    }
    SECTION("matched webhooks carry their current params") {
        REQUIRE(
            store.update(creates.id, hook_params("creates", "http://moved", {event_type::create}))
                .has_value());
        auto const list = store.match(event_of(event_type::create));
        auto it = std::find_if(list->begin(), list->end(),
                               [&](auto const& w) { return w->id == creates.id; });
        REQUIRE(it != list->end());
        CHECK((*it)->url == "http://moved");
    }
    SECTION("a removed webhook is no longer matched") {
        REQUIRE(store.remove(all.id).has_value());
        CHECK(matched(store, event_type::create) == std::set<webhook_id>{creates.id});
        CHECK(matched(store, event_type::update) == std::set<webhook_id>{updates.id});
    }
    SECTION("a list already matched is a snapshot that later changes leave alone") {
        auto const snapshot = store.match(event_of(event_type::create));
        REQUIRE(store.remove(all.id).has_value());
        CHECK(ids_of(snapshot) == std::set<webhook_id>{all.id, creates.id});
    }
    SECTION("an empty table matches nothing") {
        TestType other;
        auto empty = open_table(other);
        auto const list = empty.match(event_of(event_type::create));
        REQUIRE(list != nullptr);
        CHECK(list->empty());
    }
}

TEMPLATE_TEST_CASE("a table fans an event out to every matching webhook", "[conformance][table]",
                   HERALD_TEST_TABLE_MODELS) {
    TestType model;
    auto store = open_table(model);
    std::set<webhook_id> expected;
    for (int i = 0; i < 50; ++i)
        expected.insert(
            store
                .create(hook_params("update-" + std::to_string(i), "http://h/" + std::to_string(i),
                                    {event_type::update}))
                .value()
                .id);
    for (int i = 0; i < 10; ++i)
        store.create(hook_params("create-" + std::to_string(i), "http://h", {event_type::create}))
            .value();
    auto inactive = hook_params("inactive-update", "http://h", {event_type::update});
    inactive.active = false;
    REQUIRE(store.create(inactive).has_value());

    auto const list = store.match(event_of(event_type::update));
    REQUIRE(list->size() == 50);
    CHECK(ids_of(list) == expected);
    CHECK(store.match(event_of(event_type::create))->size() == 10);
    CHECK(store.match(event_of(event_type::remove))->empty());
}

} // namespace conformance_table
