// postgres_log beyond the log conformance suite: several processes (each log object here
// stands for one: its own connections, seq slot and queue) writing one table, the seq numbers
// and their slots, retention, bodies stored once, writes across a broken connection or a
// database that cannot be reached, and its errors.
#include "fixtures.hpp"
#include "pg_cluster.hpp"

#include <herald/postgres/postgres_log.hpp>

#include <catch2/catch.hpp>
#include <libpq-fe.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace postgres_log_tests {

using namespace std::chrono_literals;
using herald::test::make_log_entry;
using herald::test::temp_database;
using seq_list = std::vector<std::uint64_t>;
using herald::detail::pg::log_seq_limit;
using herald::detail::pg::log_slot_lock;

namespace {

herald::time_point t0() {
    using namespace std::chrono;
    return herald::time_point{sys_days{2026y / November / 27}} + 15h;
}

herald::postgres_log open_log(herald::postgres_log_params p) {
    auto l = herald::postgres_log::open(std::move(p));
    if (!l)
        FAIL("cannot open the log: " << l.error().what());
    return std::move(*l);
}

herald::postgres_log open_log(temp_database const& db) {
    herald::postgres_log_params p;
    p.conninfo = db.conninfo();
    return open_log(std::move(p));
}

herald::log_entry entry(herald::webhook_id hook, std::string const& tag,
                        herald::time_point at = t0()) {
    return make_log_entry(hook, herald::event_type::create, herald::outcome::delivered, at, tag);
}

/// Every entry matching `q`, page by page (the cursor), newest first.
std::vector<herald::log_entry> walk(herald::postgres_log const& log, herald::log_query q,
                                    std::size_t* pages = nullptr) {
    std::vector<herald::log_entry> all;
    std::size_t n = 0;
    for (;;) {
        auto page = log.query(q);
        ++n;
        for (auto& e : page.entries)
            all.push_back(std::move(e));
        if (!page.next || n > 10'000)
            break;
        q.before_seq = page.next;
    }
    if (pages)
        *pages = n;
    return all;
}

/// The page's seqs, in its order.
seq_list seqs_of(std::vector<herald::log_entry> const& entries) {
    seq_list out;
    for (auto const& e : entries)
        out.push_back(e.seq);
    return out;
}

/// Waits up to `limit` for `cond`, polling.
template <class F>
bool eventually(F cond, herald::duration limit = 10'000ms) {
    auto const until = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < until) {
        if (cond())
            return true;
        std::this_thread::sleep_for(10ms);
    }
    return cond();
}

/// Ends every connection to `db` but the caller's.
void break_connections(temp_database const& db) {
    db.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = "
             "current_database() AND pid <> pg_backend_pid()");
}

/// `db` refuses new connections (`allowed` false) and its connections are ended, or it takes
/// them again: the database is down for the log, as far as it can tell.
void allow_connections(temp_database const& db, bool allowed) {
    auto const& cluster = herald::test::cluster_conninfo();
    herald::test::sql(cluster, "ALTER DATABASE " + db.name() + " ALLOW_CONNECTIONS " +
                                   (allowed ? "true" : "false"));
    if (!allowed)
        herald::test::sql(cluster, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                   "WHERE datname = '" +
                                       db.name() + "'");
}

/// The slot in a seq.
unsigned slot_of(std::uint64_t seq) {
    return static_cast<unsigned>(seq >> 7 & 31);
}

/// Strictly increasing, and every one below 2^53.
bool increasing_below_limit(seq_list const& seqs) {
    return std::adjacent_find(seqs.begin(), seqs.end(), std::greater_equal<>()) == seqs.end() &&
           std::all_of(seqs.begin(), seqs.end(), [](auto s) { return s < log_seq_limit; });
}

/// One connection to `db` kept open (herald::test::sql makes one per call): session-level
/// advisory locks stay taken while it lives.
class session {
public:
    explicit session(temp_database const& db)
        : c_(PQconnectdb(db.conninfo().c_str()), &PQfinish) {
        if (PQstatus(c_.get()) != CONNECTION_OK)
            throw std::runtime_error("cannot connect: " + std::string(PQerrorMessage(c_.get())));
    }
    /// The first value of the last statement's result ("" when none); throws.
    std::string value(std::string const& query) {
        std::unique_ptr<PGresult, void (*)(PGresult*)> r(PQexec(c_.get(), query.c_str()), &PQclear);
        auto const st = PQresultStatus(r.get());
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
            throw std::runtime_error(query + ": " + PQresultErrorMessage(r.get()));
        return PQntuples(r.get()) > 0 ? PQgetvalue(r.get(), 0, 0) : "";
    }

private:
    std::unique_ptr<PGconn, void (*)(PGconn*)> c_;
};

/// The pid of the session of `db` that holds slot `slot`'s advisory lock ("" when none).
std::string slot_holder(temp_database const& db, unsigned slot) {
    return db.value("SELECT coalesce(min(pid)::text, '') FROM pg_locks WHERE locktype = "
                    "'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE "
                    "datname = current_database()) AND objsubid = 2 AND classid = " +
                    std::to_string(static_cast<std::uint32_t>(log_slot_lock)) +
                    " AND objid = " + std::to_string(slot));
}

bool slot_held(temp_database const& db, unsigned slot) {
    return !slot_holder(db, slot).empty();
}

/// What a log reports, for a test to look at.
struct reports {
    std::mutex mutex;
    std::vector<std::string> lines;
    std::function<void(std::string const&)> sink() {
        return [this](std::string const& line) {
            std::lock_guard lock(mutex);
            lines.push_back(line);
        };
    }
    std::vector<std::string> taken() {
        std::lock_guard lock(mutex);
        return lines;
    }
};

} // namespace

TEST_CASE("postgres_log's seq numbers: milliseconds, slot and counter in 53 bits, strictly "
          "increasing",
          "[postgres][log]") {
    using herald::detail::pg::log_seq_clock;
    using herald::detail::pg::log_seq_epoch_ms;
    std::int64_t const now = herald::to_unix_ms(t0());
    auto const at = [&](std::uint64_t seq) {
        return static_cast<std::int64_t>(seq >> 12) + log_seq_epoch_ms;
    };
    log_seq_clock c(5, 0);
    auto const first = c.next(now);
    CHECK(at(first) == now);
    CHECK(slot_of(first) == 5);
    CHECK((first & 0x7f) == 0);
    CHECK(first < log_seq_limit);
    // 128 numbers in one millisecond, then the next millisecond is borrowed
    std::uint64_t last = first;
    for (int i = 1; i < 128; ++i) {
        auto const s = c.next(now);
        CHECK(s == last + 1);
        last = s;
    }
    CHECK((last & 0x7f) == 0x7f);
    auto const bumped = c.next(now);
    CHECK(at(bumped) == now + 1);
    CHECK(slot_of(bumped) == 5);
    CHECK((bumped & 0x7f) == 0);
    // a burst runs ahead of the clock...
    last = bumped;
    for (int i = 0; i < 3 * 128; ++i) {
        auto const s = c.next(now);
        CHECK(s > last);
        last = s;
    }
    CHECK(at(last) == now + 4);
    // ...which catches up
    CHECK(c.next(now + 3) == last + 1);
    auto const caught = c.next(now + 10);
    CHECK(at(caught) == now + 10);
    CHECK((caught & 0x7f) == 0);
    // the clock steps back: still increasing
    CHECK(c.next(now - 60'000) == caught + 1);

    // another slot (the lock was lost and another process took it): from the next millisecond
    c.move_to(2);
    auto const moved = c.next(now + 10);
    CHECK(moved > caught + 1);
    CHECK(at(moved) == now + 11);
    CHECK(slot_of(moved) == 2);
    CHECK((moved & 0x7f) == 0);
    // the same slot again: the next millisecond too, and past the newest given
    auto const newest = std::uint64_t(now + 500 - log_seq_epoch_ms) << 12 | 9 << 7 | 3;
    c.move_to(2, newest);
    auto const past = c.next(now + 11);
    CHECK(past > newest);
    CHECK(at(past) == now + 501);
    CHECK(slot_of(past) == 2);

    // it starts past a given number (the newest in the table); the slot is mod 32
    auto const ahead = std::uint64_t(now + 5000 - log_seq_epoch_ms) << 12 | 31 << 7 | 127;
    log_seq_clock later(37, ahead);
    auto const s = later.next(now);
    CHECK(s > ahead);
    CHECK(at(s) == now + 5001);
    CHECK(slot_of(s) == 5);

    // the last millisecond of the 41 bits (in 2094), slot 31, all 128: still below 2^53
    std::int64_t const end = log_seq_epoch_ms + (std::int64_t(1) << 41) - 1;
    CHECK(end > herald::to_unix_ms(
                    herald::time_point{std::chrono::sys_days{std::chrono::year(2094) / 1 / 1}}));
    log_seq_clock top(31, 0);
    std::uint64_t highest = 0;
    for (int i = 0; i < 128; ++i)
        highest = top.next(end);
    CHECK(highest == log_seq_limit - 1);
}

TEST_CASE("two postgres_logs on one database write at once; each sees the other's entries, "
          "every seq once, and the cursor pages through all of them exactly once",
          "[postgres][log]") {
    temp_database db;
    auto a = open_log(db);
    auto b = open_log(db);
    CHECK(a.slot() != b.slot());
    CHECK(a.slot() < 32);
    CHECK(b.slot() < 32);
    constexpr int per_log = 1500;
    std::vector<std::uint64_t> from_a, from_b;
    auto writer = [](herald::postgres_log& log, std::vector<std::uint64_t>& out,
                     herald::webhook_id hook, std::string const& prefix) {
        for (int i = 0; i < per_log; ++i) {
            out.push_back(log.record(
                entry(hook, prefix + std::to_string(i), t0() + std::chrono::milliseconds(i))));
            if (i % 200 == 0)
                std::this_thread::sleep_for(1ms); // the other gets ahead now and then
        }
    };
    std::thread ta(writer, std::ref(a), std::ref(from_a), 1, "a");
    std::thread tb(writer, std::ref(b), std::ref(from_b), 2, "b");
    ta.join();
    tb.join();
    a.flush();
    b.flush();
    // each process numbers its own entries in order, with its slot, below 2^53 (1,500 in
    // about 10 ms: the counter overflows, the next millisecond is borrowed)
    CHECK(increasing_below_limit(from_a));
    CHECK(increasing_below_limit(from_b));
    CHECK(
        std::all_of(from_a.begin(), from_a.end(), [&](auto s) { return slot_of(s) == a.slot(); }));
    CHECK(
        std::all_of(from_b.begin(), from_b.end(), [&](auto s) { return slot_of(s) == b.slot(); }));
    CHECK(a.size() == 2 * per_log);
    CHECK(b.size() == 2 * per_log);

    std::set<std::uint64_t> recorded(from_a.begin(), from_a.end());
    recorded.insert(from_b.begin(), from_b.end());
    REQUIRE(recorded.size() == 2 * per_log); // unique across the two

    for (auto const* log : {&a, &b}) {
        herald::log_query q;
        q.limit = 77;
        std::size_t pages = 0;
        auto const all = walk(*log, q, &pages);
        auto const seqs = seqs_of(all);
        REQUIRE(seqs.size() == 2 * per_log);
        CHECK(pages == (2 * per_log + 76) / 77);
        CHECK(std::is_sorted(seqs.rbegin(), seqs.rend())); // newest first
        CHECK(std::set<std::uint64_t>(seqs.begin(), seqs.end()) == recorded);
        std::map<std::string, int> tags;
        for (auto const& e : all)
            ++tags[std::string(e.object_id)];
        CHECK(tags.size() == 2 * per_log);
    }
    // one process's entries, through the other
    herald::log_query q;
    q.webhook = 2;
    q.limit = 1000;
    auto const bs = walk(a, q);
    REQUIRE(bs.size() == per_log);
    CHECK(bs.front().seq == from_b.back());
    CHECK(bs.back().seq == from_b.front());
    CHECK(bs.front().object_id == "b" + std::to_string(per_log - 1));

    // a process that opens later numbers past every entry there
    auto c = open_log(db);
    CHECK(c.slot() != a.slot());
    CHECK(c.slot() != b.slot());
    auto const newest = std::max(from_a.back(), from_b.back());
    auto const seq_c = c.record(entry(3, "c"));
    CHECK(seq_c > newest);
    CHECK(seq_c < log_seq_limit);
    c.flush();
    herald::log_query one;
    one.limit = 1;
    CHECK(a.query(one).entries.at(0).object_id == "c");
}

TEST_CASE("postgres_log starts past the newest seq in the table, even one from a clock ahead",
          "[postgres][log]") {
    temp_database db;
    { auto first = open_log(db); }
    // a process whose clock was an hour ahead wrote an entry
    auto const ahead = static_cast<std::uint64_t>(herald::to_unix_ms(herald::clock::now()) +
                                                  3'600'000 - herald::detail::pg::log_seq_epoch_ms)
                           << 12 |
                       31 << 7 | 77;
    db.query("INSERT INTO herald_log SELECT " + std::to_string(ahead) +
             ", 'dlv_x', 'evt_x', 1, 'Hook 1', 'https://example.com/1', 0, 'x', 1, 0, 0, 204, 0, "
             "'', '', NULL, '', '[]', NULL");
    auto log = open_log(db);
    auto const seq = log.record(entry(1, "y"));
    CHECK(seq > ahead);
    log.flush();
    herald::log_query q;
    q.limit = 1;
    CHECK(log.query(q).entries.at(0).object_id == "y");
}

TEST_CASE("postgres_log takes a slot of its own while it is open; with all 32 taken, open "
          "fails",
          "[postgres][log]") {
    temp_database db;
    auto a = open_log(db);
    REQUIRE(slot_held(db, a.slot()));
    // another process holds every other slot
    session other(db);
    CHECK(other.value("SELECT count(*) FROM generate_series(0, 31) s WHERE "
                      "pg_try_advisory_lock(" +
                      std::to_string(log_slot_lock) + ", s)") == "31");
    herald::postgres_log_params p;
    p.conninfo = db.conninfo();
    auto r = herald::postgres_log::open(p);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == herald::error::storage_failed);
    CHECK(r.error().field == "conninfo");
    CHECK_THAT(r.error().message, Catch::Contains("all 32") &&
                                      Catch::Contains("at most 32 processes") &&
                                      Catch::Contains(db.name()));

    // one is let go: the next log takes it
    unsigned const freed = a.slot() == 7 ? 8 : 7;
    CHECK(other.value("SELECT pg_advisory_unlock(" + std::to_string(log_slot_lock) + ", " +
                      std::to_string(freed) + ")") == "t");
    auto b = open_log(db);
    CHECK(b.slot() == freed);
    auto const seq = b.record(entry(1, "b"));
    CHECK(slot_of(seq) == freed);
    CHECK(seq < log_seq_limit);
    // a log that closes lets its slot go, once it has written what it numbered with it
    auto const slot_a = a.slot();
    for (int i = 0; i < 100; ++i)
        a.record(entry(1, "a" + std::to_string(i)));
    { auto gone = std::move(a); }
    CHECK_FALSE(slot_held(db, slot_a));
    b.flush();
    CHECK(b.size() == 101);
    auto c = open_log(db);
    CHECK(c.slot() == slot_a);
    CHECK(c.record(entry(1, "c")) > seq);
}

TEST_CASE("a postgres_log whose slot connection was ended keeps recording, with unique "
          "increasing seqs",
          "[postgres][log][faults]") {
    temp_database db;
    session other(db);
    reports told; // the writer's broken connection
    herald::postgres_log_params p;
    p.conninfo = db.conninfo();
    p.report = told.sink();
    auto log = open_log(p);
    auto const first_slot = log.slot();
    REQUIRE(slot_held(db, first_slot));

    // a writer records all along, the connections ended in the middle
    std::atomic<bool> stop{false};
    seq_list seqs;
    std::thread recorder([&] {
        for (int i = 0; !stop.load() || i < 200; ++i) {
            seqs.push_back(log.record(entry(1, std::to_string(i))));
            if (i % 20 == 0)
                std::this_thread::sleep_for(1ms);
        }
    });
    std::this_thread::sleep_for(50ms);

    SECTION("it takes its slot again") {
        auto const before = slot_holder(db, first_slot);
        break_connections(db);
        CHECK(eventually([&] {
            auto const now = slot_holder(db, first_slot);
            return !now.empty() && now != before;
        }));
        stop = true;
        recorder.join();
        CHECK(log.slot() == first_slot);
        // held by the log: another log takes another slot
        auto b = open_log(db);
        CHECK(b.slot() != first_slot);
    }
    SECTION("another process took its slot meanwhile: it takes another") {
        // the other session waits for the lock, and has it once the log's session is gone
        other.value("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = "
                    "current_database() AND pid <> pg_backend_pid(); SELECT pg_advisory_lock(" +
                    std::to_string(log_slot_lock) + ", " + std::to_string(first_slot) + ")");
        CHECK(eventually([&] { return log.slot() != first_slot; }));
        auto const moved_to = log.slot();
        CHECK(slot_held(db, moved_to));
        std::this_thread::sleep_for(20ms);
        stop = true;
        recorder.join();
        CHECK(slot_of(seqs.back()) == moved_to);
        CHECK(slot_of(log.record(entry(2, "last"))) == moved_to);
    }
    log.flush();
    REQUIRE(seqs.size() > 200);
    CHECK(increasing_below_limit(seqs));
    CHECK(log.write_stats().entries_lost == 0);
    herald::log_query q;
    q.webhook = 1;
    q.limit = 1000;
    auto const written = seqs_of(walk(log, q));
    CHECK(seq_list(written.rbegin(), written.rend()) == seqs);
}

TEST_CASE("postgres_log keeps the request as sent, one body row per event, swept once unused",
          "[postgres][log]") {
    temp_database db;
    auto body = std::make_shared<std::string const>(R"({"id":"evt_1","object":{"n":1}})");
    auto other = std::make_shared<std::string const>(std::string("\x00\xff{\"id\":2}", 10));
    std::vector<herald::http_header> const headers{
        {"User-Agent", "herald/0.1.0"}, {"webhook-id", "evt_1"}, {"X-Api-Key", "k-123"}};
    herald::postgres_log_params p;
    p.conninfo = db.conninfo();
    p.max_per_webhook = 2;
    p.retention_interval = 24h;
    auto log = open_log(p);
    // three attempts of one event (two webhooks, a retry), in two batches; one of another
    // event, one unsent
    for (auto hook : {1, 2, 1}) {
        auto e = entry(static_cast<herald::webhook_id>(hook), "1");
        e.request_headers = headers;
        e.request_body = body;
        log.record(e);
        log.flush();
    }
    auto e = entry(1, "2");
    e.request_body = other;
    log.record(e);
    log.record(make_log_entry(1, herald::event_type::create, herald::outcome::failed, t0(), "3"));
    log.flush();
    CHECK(db.value("SELECT count(*) FROM herald_log_bodies") == "2");

    auto const page = log.query({});
    REQUIRE(page.entries.size() == 5);
    CHECK(page.entries[0].request_body == nullptr);
    CHECK(page.entries[0].request_headers.empty());
    REQUIRE(page.entries[1].request_body);
    CHECK(*page.entries[1].request_body == *other); // bytes as sent, NUL and all
    for (std::size_t i = 2; i < 5; ++i) {
        REQUIRE(page.entries[i].request_body);
        CHECK(*page.entries[i].request_body == *body);
        CHECK(page.entries[i].request_body == page.entries[2].request_body); // shared
        REQUIRE(page.entries[i].request_headers.size() == 3);
        CHECK(page.entries[i].request_headers[2].value == "k-123");
    }

    // retention drops webhook 1's two oldest entries (both of evt_1); its body stays for
    // webhook 2's
    CHECK(log.apply_retention() == 2);
    CHECK(db.value("SELECT count(*) FROM herald_log_bodies") == "2");
    // webhook 2's entry goes too: evt_1's body is unused, but kept for the grace period...
    db.query("DELETE FROM herald_log WHERE webhook_id = 2");
    CHECK(log.apply_retention() == 0);
    CHECK(db.value("SELECT count(*) FROM herald_log_bodies") == "2");
    // ...after which the sweep takes it, and only it
    db.query("UPDATE herald_log_bodies SET touched = now() - interval '2 hours'");
    CHECK(log.apply_retention() == 0);
    CHECK(db.value("SELECT count(*) FROM herald_log_bodies") == "1");
    herald::log_query q;
    q.delivery_id = "dlv_2";
    auto const kept = log.query(q);
    REQUIRE(kept.entries.size() == 1);
    REQUIRE(kept.entries[0].request_body);
    CHECK(*kept.entries[0].request_body == *other);
}

TEST_CASE("postgres_log writes text PostgreSQL would refuse as valid UTF-8", "[postgres][log]") {
    temp_database db;
    auto log = open_log(db);
    auto e = entry(1, "x");
    e.response_excerpt = std::string("ok\0then \xff\xfe bytes", 16);
    e.error = "caf\xc3\xa9"; // valid: kept
    log.record(e);
    log.flush();
    auto const page = log.query({});
    REQUIRE(page.entries.size() == 1);
    CHECK(page.entries[0].response_excerpt == "ok\xEF\xBF\xBDthen \xEF\xBF\xBD\xEF\xBF\xBD bytes");
    CHECK(page.entries[0].error == "caf\xc3\xa9");
    CHECK(log.write_stats().failures == 0);
}

TEST_CASE("postgres_log retention by age and by count per webhook, with a fake clock",
          "[postgres][log][retention]") {
    temp_database db;
    std::atomic<std::int64_t> fake_ms{herald::to_unix_ms(t0())};
    auto fake_now = [&] {
        return herald::time_point(std::chrono::milliseconds(fake_ms.load()));
    };
    herald::postgres_log_params p;
    p.conninfo = db.conninfo();
    p.retention_interval = 24h; // only when asked
    p.now = fake_now;

    SECTION("max_age deletes what started too long ago, when the clock says so") {
        p.max_age = 1h;
        auto log = open_log(p);
        std::vector<std::uint64_t> seqs;
        for (auto ago : {180min, 120min, 30min, 0min})
            seqs.push_back(log.record(entry(1, std::to_string(ago.count()), t0() - ago)));
        log.flush();
        CHECK(log.apply_retention() == 2);
        CHECK(herald::test::seqs(log.query({})) == seq_list{seqs[3], seqs[2]});
        CHECK(log.apply_retention() == 0);
        fake_ms += std::chrono::milliseconds(45min).count();
        CHECK(log.apply_retention() == 1);
        CHECK(herald::test::seqs(log.query({})) == seq_list{seqs[3]});
        fake_ms += std::chrono::milliseconds(1h).count();
        CHECK(log.apply_retention() == 1);
        CHECK(log.size() == 0);
    }
    SECTION("max_per_webhook keeps the newest entries of each webhook, whoever wrote them") {
        p.max_per_webhook = 4;
        auto a = open_log(p);
        auto b = open_log(p);
        std::map<herald::webhook_id, seq_list> by_hook;
        for (int i = 0; i < 30; ++i) {
            auto const hook = static_cast<herald::webhook_id>(1 + i % 3);
            auto& log = i % 2 == 0 ? a : b;
            by_hook[hook].push_back(log.record(entry(hook, std::to_string(i))));
        }
        a.flush();
        b.flush();
        CHECK(a.apply_retention() == 18);
        CHECK(b.size() == 12);
        for (auto& [hook, seqs] : by_hook) {
            std::sort(seqs.begin(), seqs.end());
            herald::log_query q;
            q.webhook = hook;
            seq_list const newest(seqs.rbegin(), seqs.rbegin() + 4);
            CHECK(herald::test::seqs(b.query(q)) == newest);
        }
    }
    SECTION("the rule runs in the background") {
        p.max_age = 1h;
        p.retention_interval = 20ms;
        auto log = open_log(p);
        for (int i = 0; i < 10; ++i)
            log.record(entry(1, std::to_string(i)));
        log.flush();
        CHECK(log.size() == 10); // nothing is old yet
        fake_ms += std::chrono::milliseconds(2h).count();
        CHECK(eventually([&] { return log.size() == 0; }));
    }
}

TEST_CASE("a postgres_log record made while its connection is broken is written once it is "
          "back",
          "[postgres][log][faults]") {
    temp_database db;
    reports told;
    herald::postgres_log_params p;
    p.conninfo = db.conninfo();
    p.report = told.sink();
    auto log = open_log(p);
    log.record(entry(1, "before"));
    log.flush();
    REQUIRE(log.write_stats().failures == 0);

    SECTION("the server ends the connections") {
        break_connections(db);
        auto const seq = log.record(entry(1, "after"));
        log.flush();
        CHECK(log.stats().reconnects >= 1);
        herald::log_query q;
        q.limit = 1;
        auto const page = log.query(q);
        REQUIRE(page.entries.size() == 1);
        CHECK(page.entries[0].seq == seq);
        CHECK(page.entries[0].object_id == "after");
        CHECK(log.size() == 2);
        CHECK(log.write_stats().entries_lost == 0);
    }
    SECTION("the database cannot be reached for a while") {
        allow_connections(db, false);
        for (int i = 0; i < 10; ++i)
            log.record(entry(1, "down" + std::to_string(i)));
        // kept, retried, counted and told once
        CHECK(eventually([&] { return log.write_stats().failures >= 5; }));
        CHECK(log.stats().queued == 10);
        CHECK(log.query({}).entries.empty()); // a query cannot be answered either
        allow_connections(db, true);
        log.flush();
        CHECK(log.stats().queued == 0);
        CHECK(log.size() == 11);
        CHECK(log.write_stats().entries_lost == 0);
        auto const lines = told.taken();
        REQUIRE_FALSE(lines.empty());
        CHECK_THAT(lines[0], Catch::Contains(db.name()));
        CHECK_THAT(lines.back(), Catch::Contains("repeated"));
        herald::log_query q;
        q.limit = 1;
        CHECK(log.query(q).entries.at(0).object_id == "down9");
    }
}

TEST_CASE("a postgres_log that closes while the database cannot be reached gives up after "
          "close_timeout and says what it lost",
          "[postgres][log][faults]") {
    temp_database db;
    reports told;
    herald::postgres_log_params p;
    p.conninfo = db.conninfo();
    p.report = told.sink();
    p.close_timeout = 300ms;
    p.connect_timeout = 1000ms;
    auto log = open_log(p);
    allow_connections(db, false);
    for (int i = 0; i < 3; ++i)
        log.record(entry(1, std::to_string(i)));
    auto const observer = log.observer();
    auto const started = std::chrono::steady_clock::now();
    { auto gone = std::move(log); }
    CHECK(std::chrono::steady_clock::now() - started < 5s);
    CHECK(observer().failures == 0); // gone: zeros
    auto const lines = told.taken();
    CHECK(std::any_of(lines.begin(), lines.end(), [](std::string const& l) {
        return l.find("3 entries not written") != std::string::npos;
    }));
    allow_connections(db, true);
}

TEST_CASE("an entry the database refuses is lost alone; the rest of its batch is written",
          "[postgres][log][faults]") {
    temp_database db;
    reports told;
    herald::postgres_log_params p;
    p.conninfo = db.conninfo();
    p.report = told.sink();
    p.commit_interval = 200ms; // one batch
    auto log = open_log(p);
    db.query("ALTER TABLE herald_log ADD CONSTRAINT no_poison CHECK (object_id <> 'poison')");
    log.record(entry(1, "a"));
    log.record(entry(1, "poison"));
    log.record(entry(1, "b"));
    log.flush();
    CHECK(log.size() == 2);
    auto const w = log.write_stats();
    CHECK(w.entries_lost == 1);
    CHECK_THAT(w.last_error, Catch::Contains("no_poison"));
    CHECK_FALSE(told.taken().empty());
}

TEST_CASE("postgres_log's barrier waits for what was recorded, and outlives the log",
          "[postgres][log]") {
    temp_database db;
    std::function<void()> barrier;
    std::function<herald::log_write_stats()> observer;
    {
        auto log = open_log(db);
        barrier = log.barrier();
        observer = log.observer();
        for (int i = 0; i < 500; ++i)
            log.record(entry(1, std::to_string(i)));
        barrier();
        CHECK(db.value("SELECT count(*) FROM herald_log") == "500");
        CHECK(observer().failures == 0);
        CHECK(log.stats().written == 500);
        CHECK(log.stats().commits < 500); // batched
    }
    barrier(); // the log is gone: nothing to wait for
    CHECK(observer().failures == 0);
}

TEST_CASE("postgres_log's bad connection string or unreachable server is a clear error, "
          "without the password",
          "[postgres][log]") {
    herald::postgres_log_params p;
    p.conninfo = "host=127.0.0.1 port=1 user=herald password=hunter2 dbname=nowhere";
    p.connect_timeout = 2000ms;
    auto r = herald::postgres_log::open(p);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == herald::error::storage_failed);
    CHECK(r.error().field == "conninfo");
    CHECK_THAT(r.error().message, Catch::Contains("postgresql://herald@127.0.0.1:1/nowhere"));
    CHECK_THAT(r.error().message, !Catch::Contains("hunter2"));

    p.conninfo = "host=127.0.0.1 nonsense=1 password=hunter2";
    r = herald::postgres_log::open(p);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().field == "conninfo");
    CHECK_THAT(r.error().message, Catch::Contains("nonsense"));
    CHECK_THAT(r.error().message, !Catch::Contains("hunter2"));

    temp_database db;
    { auto first = open_log(db); }
    db.query("UPDATE herald_meta SET value = 99 WHERE key = 'schema_version'");
    p.conninfo = db.conninfo();
    r = herald::postgres_log::open(p);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().field == "conninfo");
    CHECK_THAT(r.error().message, Catch::Contains("version 99") && Catch::Contains(db.name()));
}

} // namespace postgres_log_tests
