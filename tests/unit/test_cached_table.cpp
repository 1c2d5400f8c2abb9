#include "models.hpp"

#include <herald/store/cached_table.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

// One namespace a file: the unit tests build as one translation unit (unity).
namespace herald_test_cached_table {

using namespace std::chrono_literals;
using herald::test::hook_params;

namespace {

/// A backend whose table is a map the test edits behind the cache's back, and which records
/// every write; its writes fail while `failing` is set, or wait for the test while `held`.
struct fake_backend {
    struct state {
        std::mutex m{};
        std::map<herald::webhook_id, herald::webhook> table{};
        herald::webhook_id last_id = 0;
        std::vector<std::string> writes{}; // "put 1", "remove 1"
        bool failing = false;
        bool unreadable = false;
        bool held = false;
        std::vector<std::promise<herald::result<void>>> waiting{};
    };
    std::shared_ptr<state> s = std::make_shared<state>();

    herald::result<herald::stored_table> load_table() {
        std::lock_guard lock(s->m);
        if (s->unreadable)
            return herald::make_problem(herald::error::storage_failed, "path", "unreadable");
        herald::stored_table t;
        for (auto const& kv : s->table)
            t.hooks.push_back(kv.second);
        t.last_id = s->last_id;
        return t;
    }
    std::future<herald::result<void>> write_hook(herald::webhook const& w) {
        std::lock_guard lock(s->m);
        s->writes.push_back("put " + std::to_string(w.id));
        if (!s->failing) {
            s->table[w.id] = w;
            s->last_id = std::max(s->last_id, w.id);
        }
        return finish();
    }
    std::future<herald::result<void>> remove_hook(herald::webhook_id id) {
        std::lock_guard lock(s->m);
        s->writes.push_back("remove " + std::to_string(id));
        if (!s->failing)
            s->table.erase(id);
        return finish();
    }

    std::future<herald::result<void>> finish() { // under s->m
        std::promise<herald::result<void>> p;
        auto f = p.get_future();
        if (s->held)
            s->waiting.push_back(std::move(p));
        else if (s->failing)
            p.set_value(herald::make_problem(herald::error::storage_failed, "path", "disk full"));
        else
            p.set_value(herald::result<void>());
        return f;
    }
    std::vector<std::string> writes() const {
        std::lock_guard lock(s->m);
        return s->writes;
    }
};

static_assert(herald::table_backend<fake_backend>);

using table = herald::cached_table<fake_backend>;

} // namespace

TEST_CASE("cached_table over null_table_backend is a table like memory_store", "[cached_table]") {
    herald::cached_table<herald::null_table_backend> t;
    REQUIRE(t.load().has_value());
    auto a = t.create(hook_params("a"));
    REQUIRE(a.has_value());
    CHECK(t.get(a->id)->name == "a");
    CHECK(t.list().size() == 1);
    CHECK(t.create(hook_params("A")).error().code == herald::error::duplicate_name);
    auto const matched = t.match(herald::object_event::created("1", {}));
    REQUIRE(matched);
    CHECK(matched->size() == 1);
    REQUIRE(t.update(a->id, hook_params("b")).has_value());
    CHECK(t.get(a->id)->name == "b");
    REQUIRE(t.disable(a->id, "gone").has_value());
    CHECK_FALSE(t.get(a->id)->active);
    CHECK(t.match(herald::object_event::created("1", {}))->empty());
    REQUIRE(t.remove(a->id).has_value());
    CHECK(t.get(a->id) == nullptr);
    CHECK(t.remove(a->id).error().code == herald::error::not_found);
}

TEST_CASE("cached_table writes every change through to its backend, in order", "[cached_table]") {
    fake_backend b;
    table t(b);
    REQUIRE(t.load().has_value());
    auto a = t.create(hook_params("a")).value();
    auto c = t.create(hook_params("c")).value();
    REQUIRE(t.update(a.id, hook_params("a2")).has_value());
    REQUIRE(t.disable(c.id, "410 Gone").has_value());
    REQUIRE(t.remove(a.id).has_value());
    // invalid changes never reach the backend
    CHECK_FALSE(t.create(hook_params("")).has_value());
    CHECK_FALSE(t.update(c.id, hook_params("")).has_value());
    CHECK_FALSE(t.remove(99).has_value());
    auto const id = [](herald::webhook const& w) {
        return std::to_string(w.id);
    };
    CHECK(b.writes() == std::vector<std::string>{"put " + id(a), "put " + id(c), "put " + id(a),
                                                 "put " + id(c), "remove " + id(a)});
    std::lock_guard lock(b.s->m);
    REQUIRE(b.s->table.size() == 1);
    CHECK(b.s->table.at(c.id).disabled_reason == "410 Gone");
}

TEST_CASE("cached_table waits for the backend on create, update and remove, not on disable",
          "[cached_table]") {
    fake_backend b;
    table t(b);
    auto a = t.create(hook_params("a")).value();
    {
        std::lock_guard lock(b.s->m);
        b.s->held = true;
    }
    // disable returns with its write still pending
    REQUIRE(t.disable(a.id, "failing too long").has_value());
    CHECK_FALSE(t.get(a.id)->active);
    std::atomic<bool> created{false};
    std::thread creator([&] {
        (void)t.create(hook_params("b"));
        created = true;
    });
    auto const until = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < until) {
        std::lock_guard lock(b.s->m);
        if (b.s->waiting.size() == 2)
            break;
    }
    std::this_thread::sleep_for(20ms);
    CHECK_FALSE(created); // waiting for its write
    // Meanwhile, readers are served from memory.
    CHECK(t.list().size() == 2);
    {
        std::lock_guard lock(b.s->m);
        REQUIRE(b.s->waiting.size() == 2);
        for (auto& p : b.s->waiting)
            p.set_value(herald::result<void>());
        b.s->waiting.clear();
        b.s->held = false;
    }
    creator.join();
    CHECK(created);
}

TEST_CASE("cached_table undoes a change its backend refuses", "[cached_table][errors]") {
    fake_backend b;
    table t(b);
    auto a = t.create(hook_params("a", "https://a.example.com/x")).value();
    {
        std::lock_guard lock(b.s->m);
        b.s->failing = true;
    }

    SECTION("create") {
        auto r = t.create(hook_params("b"));
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().message == "disk full");
        CHECK(t.list().size() == 1);
        CHECK(t.match(herald::object_event::created("1", {}))->size() == 1);
    }
    SECTION("update") {
        auto r = t.update(a.id, hook_params("renamed", "https://b.example.com/x"));
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().code == herald::error::storage_failed);
        CHECK(t.get(a.id)->name == "a");
        CHECK(t.get(a.id)->url == "https://a.example.com/x");
        // the old name is still taken
        CHECK(t.create(hook_params("A")).error().code == herald::error::duplicate_name);
    }
    SECTION("remove") {
        auto r = t.remove(a.id);
        REQUIRE_FALSE(r.has_value());
        REQUIRE(t.get(a.id) != nullptr);
        CHECK(t.get(a.id)->name == "a");
        CHECK(t.match(herald::object_event::created("1", {}))->size() == 1);
    }
}

TEST_CASE("cached_table's load replaces the cache with what the backend holds",
          "[cached_table][invalidation]") {
    fake_backend b;
    table t(b);
    auto a = t.create(hook_params("a")).value();
    auto c = t.create(hook_params("c")).value();
    CHECK(t.match(herald::object_event::created("1", {}))->size() == 2);
    {
        // Another process changed the table: c deleted, a renamed, d added with a high id.
        std::lock_guard lock(b.s->m);
        b.s->table.erase(c.id);
        b.s->table[a.id].name = "a from elsewhere";
        herald::webhook d = b.s->table[a.id];
        d.id = 40;
        d.name = "d";
        b.s->table[d.id] = d;
        b.s->last_id = 50; // 41..50 were given and deleted meanwhile
    }
    REQUIRE(t.load().has_value());
    auto const all = t.list();
    REQUIRE(all.size() == 2);
    CHECK(all[0].name == "a from elsewhere");
    CHECK(all[1].name == "d");
    CHECK(t.get(c.id) == nullptr);
    CHECK(t.match(herald::object_event::created("1", {}))->size() == 2); // the index follows
    CHECK(t.create(hook_params("c")).value().id == 51);                  // c's name is free

    // A backend that cannot be read leaves the cache as it was.
    {
        std::lock_guard lock(b.s->m);
        b.s->unreadable = true;
        b.s->table.clear();
    }
    auto r = t.load();
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().message == "unreadable");
    CHECK(t.list().size() == 3);
}

} // namespace herald_test_cached_table
