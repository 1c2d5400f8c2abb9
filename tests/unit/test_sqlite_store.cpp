#include "models.hpp"
#include "temp_db.hpp"

#include <herald/sqlite/sqlite_log.hpp>
#include <herald/sqlite/sqlite_store.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <fstream>
#include <string>
#include <vector>

// The file and its webhooks table; the delivery queue, and a dispatcher over it:
// test_sqlite_journal.cpp.
// One namespace a file: the unit tests build as one translation unit (unity).
namespace herald_test_sqlite_store {

using namespace std::chrono_literals;
using herald::test::hook_params;
using herald::test::raw_db;
using herald::test::temp_dir;

using herald::test::open_store;

TEST_CASE("sqlite_store keeps the webhooks table in its file", "[sqlite][store]") {
    temp_dir dir;
    auto const path = dir.file("herald.db");
    herald::webhook_id first = 0, second = 0, third = 0;
    auto const secret = herald::secret::generate();
    {
        auto s = open_store(path);
        CHECK(s.list().empty());
        auto p = hook_params("Inventory", "https://inventory.example.com/hooks",
                             {herald::event_type::create, herald::event_type::update});
        p.secrets.push_back(secret);
        p.headers.push_back({"X-Api-Key", "k-123"});
        p.timeout = 7s;
        p.connect_timeout = 1500ms;
        p.allow_private.push_back(herald::cidr::parse("10.0.0.0/8").value());
        p.verify_tls = false;
        p.format = "datagerry";
        p.retry_schedule = {0ms, 90s, 2h};
        auto a = s.create(p);
        REQUIRE(a.has_value());
        first = a->id;
        auto b = s.create(hook_params("audit"));
        REQUIRE(b.has_value());
        second = b->id;
        auto c = s.create(hook_params("to be deleted"));
        REQUIRE(c.has_value());
        third = c->id;
        // the table's rules, as every table's: test_conformance_table.cpp

        auto renamed = hook_params("audit trail", "https://audit.example.com/in",
                                   {herald::event_type::remove});
        REQUIRE(s.update(second, renamed).has_value());
        REQUIRE(s.disable(second, "the receiver answered 410 Gone").has_value());
        REQUIRE(s.remove(third).has_value());
        CHECK(s.get(third) == nullptr);
        REQUIRE(s.flush().has_value());
    }
    auto s = open_store(path);
    auto const all = s.list();
    REQUIRE(all.size() == 2);
    auto const& a = all[0];
    CHECK(a.id == first);
    CHECK(a.name == "Inventory");
    CHECK(a.url == "https://inventory.example.com/hooks");
    CHECK(a.events.contains(herald::event_type::create));
    CHECK_FALSE(a.events.contains(herald::event_type::remove));
    REQUIRE(a.secrets.size() == 1);
    CHECK(a.secrets[0] == secret);
    REQUIRE(a.headers.size() == 1);
    CHECK(a.headers[0].name == "X-Api-Key");
    CHECK(a.headers[0].value == "k-123");
    CHECK(a.timeout == herald::duration(7000));
    CHECK(a.connect_timeout == herald::duration(1500));
    REQUIRE(a.allow_private.size() == 1);
    CHECK(a.allow_private[0].to_string() == "10.0.0.0/8");
    CHECK_FALSE(a.verify_tls);
    CHECK(a.active);
    CHECK(a.format == "datagerry");
    CHECK(a.retry_schedule == std::vector<herald::duration>{0ms, 90s, 2h});
    auto const& b = all[1];
    CHECK(b.format.empty()); // not set: the dispatcher's
    CHECK(b.retry_schedule.empty());
    CHECK(b.id == second);
    CHECK(b.name == "audit trail");
    CHECK(b.url == "https://audit.example.com/in");
    CHECK_FALSE(b.active);
    CHECK(b.disabled_reason == "the receiver answered 410 Gone");
    CHECK(b.disabled_at.has_value());
    CHECK(herald::to_unix_ms(b.created_at) <= herald::to_unix_ms(b.updated_at));

    // matching is served from memory and follows the reloaded table
    auto const created = herald::object_event::created("1", {});
    auto const matched = s.match(created);
    REQUIRE(matched);
    REQUIRE(matched->size() == 1);
    CHECK((*matched)[0]->id == first);

    // a deleted webhook's id is never given again, even after a restart
    auto d = s.create(hook_params("newcomer"));
    REQUIRE(d.has_value());
    CHECK(d->id == third + 1);
    // names are still unique, case-insensitively, after the reload
    CHECK(s.create(hook_params("AUDIT TRAIL")).error().code == herald::error::duplicate_name);
}

TEST_CASE("sqlite_store and sqlite_log refuse files they cannot use, naming the file",
          "[sqlite][store][errors]") {
    temp_dir dir;

    SECTION("a newer schema version") {
        auto const path = dir.file("newer.db");
        {
            raw_db raw(path);
            raw.exec("CREATE TABLE future (x); PRAGMA user_version = 7");
        }
        auto s = herald::sqlite_store::open({.path = path});
        REQUIRE_FALSE(s.has_value());
        CHECK(s.error().code == herald::error::storage_failed);
        CHECK(s.error().field == "path");
        CHECK(s.error().what() == "path: '" + path +
                                      "' has schema version 7, newer than this herald "
                                      "understands (4); use a newer herald or another file");
        auto l = herald::sqlite_log::open({.path = path});
        REQUIRE_FALSE(l.has_value());
        CHECK_THAT(l.error().message, Catch::Contains("schema version 7"));
        raw_db raw(path);
        CHECK(raw.value("PRAGMA user_version") == 7); // left alone
        CHECK(raw.text("PRAGMA journal_mode") == "delete");
    }
    SECTION("another application's database") {
        auto const path = dir.file("theirs.db");
        {
            raw_db raw(path);
            raw.exec("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)");
        }
        auto s = herald::sqlite_store::open({.path = path});
        REQUIRE_FALSE(s.has_value());
        CHECK(s.error().message ==
              "'" + path +
                  "' is a SQLite database of another application (it has tables but no herald "
                  "schema version); use another file");
        raw_db raw(path);
        CHECK(raw.value("SELECT count(*) FROM sqlite_master") == 1); // untouched
        CHECK(raw.text("PRAGMA journal_mode") != "wal");
    }
    SECTION("a file that is not a database") {
        auto const path = dir.file("garbage.db");
        {
            std::ofstream out(path, std::ios::binary);
            for (int i = 0; i < 4096; ++i)
                out.put(static_cast<char>((i * 7919) % 251));
        }
        auto s = herald::sqlite_store::open({.path = path});
        REQUIRE_FALSE(s.has_value());
        CHECK(s.error().code == herald::error::storage_failed);
        CHECK_THAT(s.error().message,
                   Catch::StartsWith("'" + path + "' is not a herald database or is corrupt"));
        auto l = herald::sqlite_log::open({.path = path});
        REQUIRE_FALSE(l.has_value());
        CHECK_THAT(l.error().message, Catch::Contains("is not a herald database or is corrupt"));
    }
    SECTION("a file locked by another connection") {
        auto const path = dir.file("locked.db");
        {
            auto s = open_store(path); // a valid herald file
        }
        raw_db other(path);
        other.exec("BEGIN EXCLUSIVE");
        auto s = herald::sqlite_store::open({.path = path, .busy_timeout = 100ms});
        REQUIRE_FALSE(s.has_value());
        CHECK(s.error().code == herald::error::storage_failed);
        CHECK_THAT(s.error().message,
                   Catch::StartsWith("'" + path +
                                     "' is locked by another connection or process (waited "
                                     "100ms)"));
        other.exec("COMMIT");
        CHECK(herald::sqlite_store::open({.path = path, .busy_timeout = 100ms}).has_value());
    }
    SECTION("a directory that does not exist") {
        auto const path = dir.file("missing/dir/x.db");
        auto s = herald::sqlite_store::open({.path = path});
        REQUIRE_FALSE(s.has_value());
        CHECK_THAT(s.error().message, Catch::StartsWith("cannot open '" + path + "'"));
    }
}

TEST_CASE("sqlite_store migrates a version 1 file", "[sqlite][store][migration]") {
    temp_dir dir;
    auto const path = dir.file("v1.db");
    {
        // The first schema, as herald 0.1 wrote it: the log has no request columns.
        raw_db raw(path);
        raw.exec(R"sql(
PRAGMA journal_mode=WAL;
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE webhooks (id INTEGER PRIMARY KEY, name_key TEXT NOT NULL UNIQUE,
    params TEXT NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
    disabled_reason TEXT NOT NULL DEFAULT '', disabled_at INTEGER);
CREATE TABLE events (seq INTEGER PRIMARY KEY, id TEXT NOT NULL, type INTEGER NOT NULL,
    object_id TEXT NOT NULL, object_type TEXT, actor TEXT, occurred_at INTEGER NOT NULL,
    body BLOB NOT NULL, content_type TEXT NOT NULL, headers TEXT NOT NULL);
CREATE TABLE deliveries (id BLOB PRIMARY KEY, event_seq INTEGER NOT NULL,
    webhook_id INTEGER NOT NULL, webhook_name TEXT NOT NULL, url TEXT NOT NULL,
    attempts INTEGER NOT NULL, due INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX deliveries_event ON deliveries(event_seq);
CREATE TABLE log (seq INTEGER PRIMARY KEY, delivery_id TEXT NOT NULL, event_id TEXT NOT NULL,
    webhook_id INTEGER NOT NULL, webhook_name TEXT NOT NULL, url TEXT NOT NULL,
    type INTEGER NOT NULL, object_id TEXT NOT NULL, attempt INTEGER NOT NULL,
    started_at INTEGER NOT NULL, elapsed_ms INTEGER NOT NULL, status INTEGER NOT NULL,
    outcome INTEGER NOT NULL, error TEXT NOT NULL, response_excerpt TEXT NOT NULL,
    next_attempt_at INTEGER, warning TEXT NOT NULL);
CREATE INDEX log_webhook ON log(webhook_id, seq);
CREATE INDEX log_type ON log(type, seq);
CREATE INDEX log_outcome ON log(outcome, seq);
CREATE INDEX log_started ON log(started_at);
INSERT INTO meta VALUES('last_webhook_id', 4);
INSERT INTO webhooks VALUES(4, 'legacy', '{"name":"Legacy","url":"https://legacy.example.com/h",
    "events":1,"active":true,"secrets":[],"headers":[],"verify_tls":true,"allow_private":[]}',
    1700000000000, 1700000000000, '', NULL);
INSERT INTO events VALUES(1, 'evt_old', 0, '42', NULL, NULL, 1700000000000,
    CAST('{"old":true}' AS BLOB), 'application/json', '[]');
INSERT INTO deliveries VALUES(x'0000000000000001000000000000000A', 1, 4, 'Legacy',
    'https://legacy.example.com/h', 2, 1700000005000);
INSERT INTO log VALUES(1, 'dlv_old', 'evt_old', 4, 'Legacy', 'https://legacy.example.com/h', 0,
    '42', 1, 1700000000000, 12, 503, 1, 'receiver answered HTTP 503', '', 1700000005000, '');
PRAGMA user_version = 1;
)sql");
    }
    {
        auto s = open_store(path);
        auto const all = s.list();
        REQUIRE(all.size() == 1);
        CHECK(all[0].id == 4);
        CHECK(all[0].name == "Legacy");
        CHECK(all[0].events.contains(herald::event_type::create));
        auto got = s.claim(herald::clock::now(), 10);
        REQUIRE(got.size() == 1);
        CHECK(got[0].event->event.id == "evt_old");
        CHECK(got[0].event->body.body == "{\"old\":true}");
        CHECK(got[0].attempts == 2);
        CHECK(got[0].hook->name == "Legacy");
        CHECK(s.create(hook_params("next")).value().id == 5);
    }
    raw_db raw(path);
    CHECK(raw.value("PRAGMA user_version") == herald::detail::sqlite::schema_version);
    CHECK(raw.value("SELECT count(*) FROM sqlite_master WHERE name = 'deliveries_webhook'") == 1);
    CHECK(raw.value("SELECT count(*) FROM pragma_table_info('log') WHERE name IN "
                    "('request_headers', 'request_body_id')") == 2);
    CHECK(raw.value("SELECT count(*) FROM sqlite_master WHERE name = 'log_bodies'") == 1);
    CHECK(raw.value("SELECT count(*) FROM sqlite_master WHERE name = 'log_webhook_name'") == 1);
    CHECK(raw.value("SELECT count(*) FROM sqlite_master WHERE name = 'log_delivery'") == 1);
    CHECK(raw.text("PRAGMA journal_mode") == "wal");

    // the old log entry reads back through sqlite_log, with the new columns' defaults
    auto log = herald::sqlite_log::open({.path = path});
    REQUIRE(log.has_value());
    auto page = log->query({});
    REQUIRE(page.entries.size() == 1);
    CHECK(page.entries[0].seq == 1);
    CHECK(page.entries[0].status == 503);
    CHECK(page.entries[0].result == herald::outcome::retrying);
    CHECK(page.entries[0].webhook_name == "Legacy");
    CHECK(page.entries[0].request_headers.empty());
    CHECK(page.entries[0].request_body == nullptr);
}

} // namespace herald_test_sqlite_store
