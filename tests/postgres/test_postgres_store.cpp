// postgres_store beyond the conformance suites: its schema, leases and fencing tokens, the
// takeover of a lapsed lease, the table shared by several processes (each store object here
// stands for a process: its own connections, node name and cache), and its errors.
#include "models.hpp"
#include "pg_cluster.hpp"

#include <herald/dispatcher.hpp>
#include <herald/postgres/postgres_store.hpp>
#include <herald/transport/recording_transport.hpp>

#include <catch2/catch.hpp>

#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace postgres_store_tests {

using namespace std::chrono_literals;
using herald::test::delivery_for;
using herald::test::hook_params;
using herald::test::prepared;
using herald::test::temp_database;

namespace {

herald::postgres_store open_store(temp_database const& db, std::string node = {},
                                  herald::duration lease = std::chrono::seconds(60)) {
    herald::postgres_store_params p;
    p.conninfo = db.conninfo();
    p.node = std::move(node);
    p.lease = lease;
    p.poll_interval = 100ms;
    auto r = herald::postgres_store::open(std::move(p));
    if (!r)
        FAIL("cannot open the store: " << r.error().what());
    return std::move(*r);
}

using pg_dispatcher = herald::basic_dispatcher<herald::postgres_store, herald::channel_source,
                                               herald::json_serializer, herald::recording_transport,
                                               herald::memory_log>;

herald::time_point const later{std::chrono::milliseconds(2'000'000'000'000)};

std::vector<herald::delivery> claim(herald::postgres_store& s, herald::time_point now,
                                    std::size_t max) {
    auto r = s.async_claim(now, max, boost::asio::use_future).get();
    REQUIRE(r.has_value());
    return std::move(*r);
}

herald::result<void> enqueue(herald::postgres_store& s, std::vector<herald::delivery> ds) {
    return s.async_enqueue(std::move(ds), boost::asio::use_future).get();
}

/// Waits up to `limit` for `cond`, polling.
template <class F>
bool eventually(F cond, herald::duration limit = 5000ms) {
    auto const until = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < until) {
        if (cond())
            return true;
        std::this_thread::sleep_for(10ms);
    }
    return cond();
}

} // namespace

TEST_CASE("postgres_store creates its schema once, and refuses one from a newer herald",
          "[postgres]") {
    temp_database db;
    { auto a = open_store(db); }
    { auto b = open_store(db); } // already there: nothing to do
    CHECK(db.value("SELECT value FROM herald_meta WHERE key = 'schema_version'") ==
          std::to_string(herald::detail::pg::schema_version));
    db.query("UPDATE herald_meta SET value = 99 WHERE key = 'schema_version'");
    herald::postgres_store_params p;
    p.conninfo = db.conninfo();
    auto r = herald::postgres_store::open(p);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == herald::error::storage_failed);
    CHECK(r.error().field == "conninfo");
    CHECK_THAT(r.error().message,
               Catch::Contains("version 99") &&
                   Catch::Contains("newer than this herald's " +
                                   std::to_string(herald::detail::pg::schema_version)) &&
                   Catch::Contains(db.name()));
}

TEST_CASE("postgres_store's bad connection string or unreachable server is a clear error",
          "[postgres]") {
    herald::postgres_store_params p;
    p.conninfo = "host=127.0.0.1 port=1 user=herald password=hunter2 dbname=nowhere";
    p.connect_timeout = 2000ms;
    auto r = herald::postgres_store::open(p);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().field == "conninfo");
    CHECK_THAT(r.error().message, Catch::Contains("postgresql://herald@127.0.0.1:1/nowhere"));
    CHECK_THAT(r.error().message, !Catch::Contains("hunter2")); // never the password

    p.conninfo = "host=127.0.0.1 nonsense=1";
    r = herald::postgres_store::open(p);
    REQUIRE_FALSE(r.has_value());
    CHECK_THAT(r.error().message, Catch::Contains("nonsense"));
}

TEST_CASE("postgres_store refuses a lease shorter than the longest attempt plus the margin",
          "[postgres]") {
    herald::postgres_store_params p;
    p.conninfo = herald::test::cluster_conninfo();
    p.lease = 12s;
    p.longest_attempt = 10s; // + 5 s margin = 15 s
    auto r = herald::postgres_store::open(p);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == herald::error::invalid_field);
    CHECK(r.error().field == "lease");
    CHECK_THAT(r.error().message, Catch::Contains("12000 ms") && Catch::Contains("10000 ms") &&
                                      Catch::Contains("5000 ms"));
    CHECK(herald::check_lease(15s, 10s).has_value());
}

TEST_CASE("postgres_store holds what it enqueues under its own lease, and a finished delivery "
          "leaves the queue with its event",
          "[postgres]") {
    temp_database db;
    auto a = open_store(db, "node-a");
    auto const h = a.create(hook_params("one")).value();
    auto const h2 = a.create(hook_params("two")).value();
    // "1" goes to two webhooks: its event is one row of herald_events, shared; "2" goes to one:
    // its event is in its delivery's row
    auto const ev = prepared("1");
    std::vector<herald::delivery> ds{delivery_for(ev, h), delivery_for(ev, h2),
                                     delivery_for(prepared("2"), h)};
    REQUIRE(enqueue(a, ds).has_value());
    CHECK(db.value("SELECT count(*) FROM herald_deliveries WHERE lease_owner = 'node-a' AND "
                   "lease_until > now() + interval '50 seconds'") == "3");
    CHECK(db.value("SELECT count(*) FROM herald_events") == "1");
    CHECK(db.value("SELECT count(*) FROM herald_deliveries WHERE event_key IS NULL AND "
                   "event_id = 'evt_2' AND body IS NOT NULL") == "1");
    CHECK(db.value("SELECT count(*) FROM herald_deliveries WHERE event_key IS NOT NULL AND "
                   "body IS NULL") == "2");
    // held: nobody can claim them, this process included
    CHECK(claim(a, later, 10).empty());
    ds[0].attempts = 2;
    ds[0].due = herald::time_point(std::chrono::milliseconds(1'900'000'000'000));
    a.reschedule(ds[0]);
    a.complete(ds[1], herald::outcome::delivered);
    a.complete(ds[2], herald::outcome::delivered);
    REQUIRE(a.flush().has_value());
    auto rows = db.query("SELECT attempts, due FROM herald_deliveries");
    REQUIRE(rows.size() == 1);
    CHECK(rows[0][0] == "2");
    CHECK(rows[0][1] == "1900000000000");
    CHECK(db.value("SELECT count(*) FROM herald_events") == "1"); // ds[0] still needs it
    a.complete(ds[0], herald::outcome::failed);
    REQUIRE(a.flush().has_value());
    CHECK(db.value("SELECT count(*) FROM herald_deliveries") == "0");
    CHECK(db.value("SELECT count(*) FROM herald_events") == "0");
    CHECK(a.stats().fenced == 0);
}

TEST_CASE("a lapsed lease is taken over: the old token's writes change nothing, and the "
          "delivery is sent again with the same webhook-id",
          "[postgres]") {
    temp_database db;
    auto a = open_store(db, "node-a");
    auto const h = a.create(hook_params("one", "https://example.com/hook")).value();
    auto const h2 = a.create(hook_params("two", "https://example.com/other")).value();
    // 42 is for one webhook (kept in its delivery's row), 43 for two (kept in herald_events)
    auto d = delivery_for(prepared("42", R"({"n":42})"), h);
    d.due = herald::clock::now();
    auto const shared = prepared("43", R"({"n":43})");
    auto d2 = delivery_for(shared, h);
    auto d3 = delivery_for(shared, h2);
    d2.due = d3.due = d.due;
    REQUIRE(enqueue(a, {d}).has_value());
    REQUIRE(enqueue(a, {d2, d3}).has_value());

    // node-a is gone for longer than its lease: back-date the lease, then any node requeues
    db.query("UPDATE herald_deliveries SET lease_until = now() - interval '1 second'");
    herald::postgres_store b = open_store(db, "node-b");
    REQUIRE(b.requeue_expired().value() == 3);
    CHECK(b.stats().requeued == 3);
    CHECK(db.value("SELECT count(*) FROM herald_deliveries WHERE lease_token IS NULL") == "3");

    // node-b's dispatcher claims it (at construction) and sends it
    herald::recording_transport sent;
    boost::asio::io_context io;
    pg_dispatcher dispatch(io.get_executor(), {}, {.store = std::move(b), .transport = sent});
    dispatch.async_run(boost::asio::detached);
    std::thread t([&] { io.run(); });
    bool const arrived = eventually([&] { return sent.requests().size() == 3; });
    bool const completed =
        eventually([&] { return db.value("SELECT count(*) FROM herald_deliveries") == "0"; });
    (void)dispatch.async_stop(1000ms, boost::asio::use_future).get();
    t.join();
    REQUIRE(arrived);
    CHECK(completed); // node-b completed them with its token
    CHECK(db.value("SELECT count(*) FROM herald_events") == "0");
    std::map<std::string, std::string> sent_to; // url + webhook-id -> body
    for (auto const& req : sent.requests()) {
        CHECK(req.header("ce-id") == req.header("webhook-id").substr(4)); // the event's headers
        sent_to[req.url + " " + std::string(req.header("webhook-id"))] = *req.body;
    }
    CHECK(sent_to ==
          std::map<std::string, std::string>{{"https://example.com/hook evt_42", R"({"n":42})"},
                                             {"https://example.com/hook evt_43", R"({"n":43})"},
                                             {"https://example.com/other evt_43", R"({"n":43})"}});

    // node-a comes back and writes with its old token: refused
    a.reschedule(d);
    REQUIRE(a.flush().has_value());
    a.complete(d, herald::outcome::delivered);
    REQUIRE(a.flush().has_value());
    CHECK(a.stats().fenced == 2);
}

TEST_CASE("the old holder's writes do not touch a row another node holds now, nor does its "
          "renewal",
          "[postgres]") {
    temp_database db;
    auto a = open_store(db, "node-a");
    auto const h = a.create(hook_params("one")).value();
    auto d = delivery_for(prepared("7"), h);
    REQUIRE(enqueue(a, {d}).has_value());
    db.query("UPDATE herald_deliveries SET lease_until = now() - interval '1 second'");
    auto b = open_store(db, "node-b");
    REQUIRE(a.requeue_expired().value() == 1); // any node requeues, the lapsed one too
    auto got = claim(b, later, 10);
    REQUIRE(got.size() == 1);
    CHECK(got[0].id == d.id);
    CHECK(got[0].lease != 0);
    auto const token = db.value("SELECT lease_token FROM herald_deliveries");
    CHECK(token == std::to_string(got[0].lease));
    CHECK(db.value("SELECT lease_owner FROM herald_deliveries") == "node-b");

    d.attempts = 5;
    a.reschedule(d);
    REQUIRE(a.flush().has_value());
    CHECK(db.value("SELECT attempts FROM herald_deliveries") == "0");
    // a renews only its own leases
    db.query("UPDATE herald_deliveries SET lease_until = now() + interval '1 second'");
    CHECK(a.renew_leases().value() == 0);
    CHECK(b.renew_leases().value() == 1);
    CHECK(db.value("SELECT lease_until > now() + interval '50 seconds' FROM "
                   "herald_deliveries") == "t");
    // b's own writes go through with its token
    got[0].attempts = 1;
    b.reschedule(got[0]);
    REQUIRE(b.flush().has_value());
    CHECK(db.value("SELECT attempts FROM herald_deliveries") == "1");
    CHECK(a.stats().fenced == 1);
    CHECK(b.stats().fenced == 0);
}

TEST_CASE("a store that closes gives its leases back and tells the others, who claim at once",
          "[postgres]") {
    temp_database db;
    auto b = open_store(db, "node-b");
    std::atomic<int> told{0};
    b.on_claimable([&] { ++told; });
    herald::webhook h;
    {
        auto a = open_store(db, "node-a");
        h = a.create(hook_params("one")).value();
        auto d = delivery_for(prepared("1"), h);
        d.due = herald::clock::now();
        REQUIRE(enqueue(a, {d}).has_value());
        told = 0;
    }
    CHECK(db.value("SELECT count(*) FROM herald_deliveries WHERE lease_token IS NULL") == "1");
    CHECK(eventually([&] { return told.load() > 0; }));
    b.on_claimable({});
    CHECK(claim(b, herald::clock::now(), 10).size() == 1);
}

TEST_CASE("a webhook changed through one process reaches the others' caches within a second",
          "[postgres]") {
    temp_database db;
    auto a = open_store(db, "node-a");
    auto b = open_store(db, "node-b");
    auto const created = a.create(hook_params("shared")).value();
    CHECK(eventually([&] { return b.get(created.id) != nullptr; }, 1000ms));
    auto const e = herald::object_event::created("obj-1", {});
    CHECK(eventually([&] { return b.match(e)->size() == 1; }, 1000ms));

    auto p = hook_params("shared");
    p.active = false;
    REQUIRE(a.update(created.id, p).has_value());
    CHECK(eventually([&] { return b.match(e)->empty(); }, 1000ms));
    CHECK(b.get(created.id)->active == false);

    REQUIRE(a.disable(created.id, "410 Gone").has_value());
    CHECK(eventually(
        [&] { return b.get(created.id) && b.get(created.id)->disabled_reason == "410 Gone"; },
        1000ms));

    REQUIRE(b.remove(created.id).has_value());
    CHECK(eventually([&] { return a.get(created.id) == nullptr; }, 1000ms));
    // the name is free again everywhere; ids are never given twice
    auto const again = a.create(hook_params("shared")).value();
    CHECK(again.id > created.id);
}

TEST_CASE("a name taken in another process is refused by the database", "[postgres]") {
    temp_database db;
    auto a = open_store(db, "node-a");
    auto b = open_store(db, "node-b");
    // b's cache has not seen a's webhook yet when it tries the same name
    REQUIRE(a.create(hook_params("Same")).has_value());
    auto r = b.create(hook_params("same"));
    if (!r) { // refused by the database, or already by b's cache: either names the field
        INFO(r.error().what());
        CHECK(r.error().code == herald::error::duplicate_name);
        CHECK(r.error().field == "name");
    } else {
        FAIL("two webhooks named 'same' in one database");
    }
    CHECK(db.value("SELECT count(*) FROM herald_webhooks") == "1");
}

TEST_CASE("a table changed behind the cache with no notification is seen by the version check",
          "[postgres]") {
    temp_database db;
    auto a = open_store(db, "node-a");
    auto const h = a.create(hook_params("quiet")).value();
    // an operator's edit in SQL: no NOTIFY, only the version
    db.query("DELETE FROM herald_webhooks; UPDATE herald_meta SET value = value + 1 WHERE key = "
             "'table_version'");
    CHECK(eventually([&] { return a.get(h.id) == nullptr; }, 1000ms));
}

} // namespace postgres_store_tests

namespace postgres_store_outage {

using namespace std::chrono_literals;
using herald::test::delivery_for;
using herald::test::hook_params;
using herald::test::prepared;
using herald::test::temp_database;

TEST_CASE("while the database refuses connections, a publish fails after publish_timeout with "
          "a clear error, and queued writes are committed once it is back",
          "[postgres][outage]") {
    temp_database db;
    herald::postgres_store_params p;
    p.conninfo = db.conninfo();
    p.publish_timeout = 1500ms;
    p.poll_interval = 100ms;
    auto store = herald::postgres_store::open(p);
    REQUIRE(store.has_value());
    auto& s = *store;
    auto const h = s.create(hook_params("one")).value();
    auto d1 = delivery_for(prepared("1"), h);
    REQUIRE(s.async_enqueue({d1}, boost::asio::use_future).get().has_value());

    auto const& cluster = herald::test::cluster_conninfo();
    herald::test::sql(cluster, "ALTER DATABASE " + db.name() + " ALLOW_CONNECTIONS false");
    herald::test::sql(cluster, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                               "datname = '" +
                                   db.name() + "'");
    auto const t0 = std::chrono::steady_clock::now();
    auto const r = s.async_enqueue({delivery_for(prepared("2"), h)}, boost::asio::use_future).get();
    auto const waited = std::chrono::steady_clock::now() - t0;
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == herald::error::storage_failed);
    CHECK(r.error().field == "conninfo");
    CHECK_THAT(r.error().message, Catch::Contains(db.name()) && Catch::Contains("not committed"));
    CHECK(waited >= 1400ms);
    CHECK(waited < 15s);
    s.complete(d1, herald::outcome::delivered); // queued: waits for the database

    herald::test::sql(cluster, "ALTER DATABASE " + db.name() + " ALLOW_CONNECTIONS true");
    auto const until = std::chrono::steady_clock::now() + 15s;
    while (db.value("SELECT count(*) FROM herald_deliveries") != "0" &&
           std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(20ms);
    CHECK(db.value("SELECT count(*) FROM herald_deliveries") == "0");
    CHECK(s.async_enqueue({delivery_for(prepared("3"), h)}, boost::asio::use_future)
              .get()
              .has_value());
    CHECK(s.stats().reconnects > 0);
    CHECK(db.value("SELECT count(*) FROM herald_deliveries") == "1");
}

} // namespace postgres_store_outage
