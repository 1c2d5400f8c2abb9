#include <herald/memory_store.hpp>
#include <herald/webhook.hpp>

#include <catch2/catch.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <chrono>
#include <set>
#include <string>
#include <vector>

// One namespace a file: the unit tests build as one translation unit (unity).
namespace herald_test_webhook {

using namespace std::chrono_literals;
namespace json = boost::json;

namespace {

herald::webhook_params params(std::string name, std::string url = "https://example.com/hook",
                              herald::event_type_set events = herald::event_type_set::all()) {
    herald::webhook_params p;
    p.name = std::move(name);
    p.url = std::move(url);
    p.events = events;
    return p;
}

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
    check_invalid(params("hook", std::move(url)), "url", message_part);
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

std::vector<herald::webhook_id> ids_of(std::vector<herald::webhook> const& list) {
    std::vector<herald::webhook_id> out;
    for (auto const& w : list)
        out.push_back(w.id);
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
        CHECK(herald::validate(params("hook", url)).has_value());
    }
    // loopback literals are refused by the SSRF guard unless allowed
    for (char const* url : {"https://127.0.0.1:8443/", "http://[::1]/hook"}) {
        INFO("url: " << url);
        auto const refused = herald::validate(params("hook", url));
        REQUIRE_FALSE(refused.has_value());
        CHECK(refused.error().message.find("loopback") != std::string::npos);
        herald::address_policy local;
        local.allow.push_back(herald::cidr::parse("127.0.0.1/32").value());
        local.allow.push_back(herald::cidr::parse("::1").value());
        CHECK(herald::validate(params("hook", url), local).has_value());
    }
    auto p = params(std::string(herald::max_webhook_name, 'n'));
    p.events = {herald::event_type::remove};
    p.active = false;
    p.connect_timeout = 1ms;
    p.timeout = 10min;
    CHECK(herald::validate(p).has_value());
    CHECK(herald::validate(params("  leading and inner spaces ")).has_value());
}

TEST_CASE("validate checks the name", "[webhook][validation]") {
    check_invalid(params(""), "name", "required");
    check_invalid(params("   "), "name", "required");
    check_invalid(params(" \t "), "name", "required");
    check_invalid(params(std::string(herald::max_webhook_name + 1, 'n')), "name", "128");
    check_invalid(params("bad\nname"), "name", "control character");
    check_invalid(params("bad\tname"), "name", "control character");
    check_invalid(params(std::string("nul\0name", 8)), "name", "control character");
    check_invalid(params("del\x7fname"), "name", "control character");
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
    check_invalid(params("hook", "https://example.com", {}), "events", "at least one");

    auto p = params("hook");
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

TEST_CASE("memory_store create assigns increasing ids and times", "[webhook][store]") {
    herald::memory_store store;
    auto const a = store.create(params("a"));
    auto const b = store.create(params("b"));
    auto const c = store.create(params("c"));
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

TEST_CASE("memory_store get, list, update and remove", "[webhook][store]") {
    herald::memory_store store;
    auto const a = store.create(params("alpha", "https://a.example/hook")).value();
    auto const b = store.create(params("beta", "https://b.example/hook")).value();

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
        CHECK(ids_of(all) == std::vector<herald::webhook_id>{a.id, b.id});
    }
    SECTION("update replaces the params and keeps id and created_at") {
        auto p = params("alpha2", "http://new.example/x", {herald::event_type::update});
        p.active = false;
        p.timeout = 3s;
        auto const u = store.update(a.id, p);
        REQUIRE(u.has_value());
        CHECK(u->id == a.id);
        CHECK(u->name == "alpha2");
        CHECK(u->url == "http://new.example/x");
        CHECK(u->events == herald::event_type_set{herald::event_type::update});
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
        REQUIRE(store.update(a.id, params("renamed")).has_value());
        CHECK(old->name == "alpha");
        CHECK(store.get(a.id)->name == "renamed");
    }
    SECTION("update of an unknown id is not_found") {
        auto const r = store.update(42, params("x"));
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().code == herald::error::not_found);
        CHECK(r.error().field == "id");
        CHECK_THAT(r.error().message, Catch::Contains("42"));
    }
    SECTION("remove deletes the webhook and frees its name") {
        REQUIRE(store.remove(a.id).has_value());
        CHECK(store.get(a.id) == nullptr);
        CHECK(ids_of(store.list()) == std::vector<herald::webhook_id>{b.id});
        auto const again = store.create(params("ALPHA"));
        REQUIRE(again.has_value());
        CHECK(again->id == 3); // ids are never reused
    }
    SECTION("remove of an unknown id is not_found") {
        auto const r = store.remove(77);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().code == herald::error::not_found);
        CHECK(r.error().field == "id");
        CHECK_THAT(r.error().message, Catch::Contains("77"));
        REQUIRE(store.remove(a.id).has_value());
        CHECK(store.remove(a.id).error().code == herald::error::not_found);
        CHECK(store.list().size() == 1);
    }
}

TEST_CASE("memory_store names are unique, case-insensitively", "[webhook][store][validation]") {
    herald::memory_store store;
    auto const a = store.create(params("Inventory Sync")).value();
    auto const b = store.create(params("billing")).value();
    auto const list_before = ids_of(store.list());

    auto check_duplicate = [&](herald::result<herald::webhook> const& r) {
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().code == herald::error::duplicate_name);
        CHECK(r.error().field == "name");
        CHECK_THAT(r.error().message, Catch::Contains("already used"));
    };

    SECTION("on create") {
        check_duplicate(store.create(params("inventory sync")));
        check_duplicate(store.create(params("INVENTORY SYNC")));
        check_duplicate(store.create(params("Inventory Sync")));
        CHECK(ids_of(store.list()) == list_before);
        // the failed creates used no id
        CHECK(store.create(params("third")).value().id == 3);
    }
    SECTION("on update") {
        check_duplicate(store.update(b.id, params("INVENTORY sync")));
        auto const g = store.get(b.id);
        REQUIRE(g != nullptr);
        CHECK(g->name == "billing");
        CHECK(g->updated_at == b.updated_at);
        // the name "billing" still belongs to b
        check_duplicate(store.create(params("Billing")));
    }
    SECTION("renaming a webhook to its own name in another case is allowed") {
        auto const r = store.update(a.id, params("INVENTORY SYNC"));
        REQUIRE(r.has_value());
        CHECK(r->name == "INVENTORY SYNC");
        check_duplicate(store.create(params("inventory sync")));
    }
    SECTION("a renamed webhook frees its old name") {
        REQUIRE(store.update(a.id, params("Inventory v2")).has_value());
        CHECK(store.create(params("inventory sync")).has_value());
        check_duplicate(store.create(params("INVENTORY V2")));
    }
}

TEST_CASE("memory_store changes nothing when create or update fails", "[webhook][store]") {
    herald::memory_store store;
    auto const a =
        store.create(params("a", "https://a.example", {herald::event_type::create})).value();
    auto const created = ids_of(store.match(event_of(herald::event_type::create)));

    auto const bad_create = store.create(params("b", "not a url"));
    REQUIRE_FALSE(bad_create.has_value());
    CHECK(bad_create.error().field == "url");
    CHECK(ids_of(store.list()) == std::vector<herald::webhook_id>{a.id});
    CHECK(ids_of(store.match(event_of(herald::event_type::create))) == created);

    auto const bad_update =
        store.update(a.id, params("a-renamed", "https://a.example", herald::event_type_set{}));
    REQUIRE_FALSE(bad_update.has_value());
    CHECK(bad_update.error().field == "events");
    auto const g = store.get(a.id);
    REQUIRE(g != nullptr);
    CHECK(g->name == "a");
    CHECK(g->events == herald::event_type_set{herald::event_type::create});
    CHECK(g->updated_at == a.updated_at);
    CHECK(ids_of(store.match(event_of(herald::event_type::create))) == created);
    // the failed rename did not take the new name
    CHECK(store.create(params("a-renamed")).has_value());
    // and the old one is still taken
    CHECK(store.create(params("A")).error().code == herald::error::duplicate_name);
}

TEST_CASE("memory_store match returns the active webhooks subscribed to the type",
          "[webhook][store][match]") {
    herald::memory_store store;
    using herald::event_type;
    auto const all = store.create(params("all")).value();
    auto const creates = store.create(params("creates", "http://h", {event_type::create})).value();
    auto const updates =
        store.create(params("updates", "http://h", {event_type::update, event_type::remove}))
            .value();
    auto inactive_params = params("inactive");
    inactive_params.active = false;
    auto const inactive = store.create(inactive_params).value();

    CHECK(ids_of(store.match(event_of(event_type::create))) ==
          std::set<herald::webhook_id>{all.id, creates.id});
    CHECK(ids_of(store.match(event_of(event_type::update))) ==
          std::set<herald::webhook_id>{all.id, updates.id});
    CHECK(ids_of(store.match(event_of(event_type::remove))) ==
          std::set<herald::webhook_id>{all.id, updates.id});

    SECTION("deactivating removes a webhook from matches; activating adds it") {
        auto p = params("all");
        p.active = false;
        REQUIRE(store.update(all.id, p).has_value());
        CHECK(ids_of(store.match(event_of(event_type::create))) ==
              std::set<herald::webhook_id>{creates.id});
        auto q = inactive_params;
        q.active = true;
        REQUIRE(store.update(inactive.id, q).has_value());
        CHECK(ids_of(store.match(event_of(event_type::create))) ==
              std::set<herald::webhook_id>{creates.id, inactive.id});
    }
    SECTION("changing events changes matches") {
        REQUIRE(store.update(creates.id, params("creates", "http://h", {event_type::remove}))
                    .has_value());
        CHECK(ids_of(store.match(event_of(event_type::create))) ==
              std::set<herald::webhook_id>{all.id});
        CHECK(ids_of(store.match(event_of(event_type::remove))) ==
              std::set<herald::webhook_id>{all.id, creates.id, updates.id});
    }
    SECTION("matched webhooks carry their current params") {
        REQUIRE(store.update(creates.id, params("creates", "http://moved", {event_type::create}))
                    .has_value());
        auto const list = store.match(event_of(event_type::create));
        auto it = std::find_if(list->begin(), list->end(),
                               [&](auto const& w) { return w->id == creates.id; });
        REQUIRE(it != list->end());
        CHECK((*it)->url == "http://moved");
    }
    SECTION("a removed webhook is no longer matched") {
        REQUIRE(store.remove(all.id).has_value());
        CHECK(ids_of(store.match(event_of(event_type::create))) ==
              std::set<herald::webhook_id>{creates.id});
        CHECK(ids_of(store.match(event_of(event_type::update))) ==
              std::set<herald::webhook_id>{updates.id});
    }
    SECTION("a list already matched is a snapshot that later changes leave alone") {
        auto const snapshot = store.match(event_of(event_type::create));
        REQUIRE(store.remove(all.id).has_value());
        CHECK(ids_of(snapshot) == std::set<herald::webhook_id>{all.id, creates.id});
    }
    SECTION("an empty store matches nothing") {
        herald::memory_store empty;
        auto const list = empty.match(event_of(event_type::create));
        REQUIRE(list != nullptr);
        CHECK(list->empty());
    }
}

TEST_CASE("memory_store fans an event out to every matching webhook", "[webhook][store][match]") {
    herald::memory_store store;
    std::set<herald::webhook_id> expected;
    for (int i = 0; i < 50; ++i)
        expected.insert(
            store
                .create(params("update-" + std::to_string(i), "http://h/" + std::to_string(i),
                               {herald::event_type::update}))
                .value()
                .id);
    for (int i = 0; i < 10; ++i)
        store
            .create(params("create-" + std::to_string(i), "http://h", {herald::event_type::create}))
            .value();
    auto inactive = params("inactive-update", "http://h", {herald::event_type::update});
    inactive.active = false;
    REQUIRE(store.create(inactive).has_value());

    auto const list = store.match(event_of(herald::event_type::update));
    REQUIRE(list->size() == 50);
    CHECK(ids_of(list) == expected);
    CHECK(store.match(event_of(herald::event_type::create))->size() == 10);
    CHECK(store.match(event_of(herald::event_type::remove))->empty());
}

TEST_CASE("memory_store holds 10,000 webhooks", "[webhook][store][scale]") {
    herald::memory_store store;
    constexpr int count = 10'000;
    for (int i = 1; i <= count; ++i) {
        auto const r = store.create(
            params("hook-" + std::to_string(i), "https://h" + std::to_string(i) + ".example/",
                   i % 2 ? herald::event_type_set::all()
                         : herald::event_type_set{herald::event_type::create}));
        REQUIRE(r.has_value());
        REQUIRE(r->id == static_cast<herald::webhook_id>(i));
    }
    CHECK(store.list().size() == count);
    CHECK(store.match(event_of(herald::event_type::create))->size() == count);
    CHECK(store.match(event_of(herald::event_type::update))->size() == count / 2);
    CHECK(store.create(params("HOOK-5000")).error().code == herald::error::duplicate_name);
    REQUIRE(store.get(5000) != nullptr);
    CHECK(store.get(5000)->name == "hook-5000");
}

TEST_CASE("memory_store can be moved with its webhooks", "[webhook][store]") {
    herald::memory_store store;
    auto const a = store.create(params("a", "http://h", {herald::event_type::create})).value();
    herald::memory_store moved(std::move(store));
    REQUIRE(moved.get(a.id) != nullptr);
    CHECK(ids_of(moved.match(event_of(herald::event_type::create))) ==
          std::set<herald::webhook_id>{a.id});
    CHECK(moved.create(params("A")).error().code == herald::error::duplicate_name);
    CHECK(moved.create(params("b")).value().id == 2);
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

} // namespace herald_test_webhook
