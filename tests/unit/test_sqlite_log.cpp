#include "fixtures.hpp"

#include "temp_db.hpp"

#include <herald/sqlite/sqlite_log.hpp>
#include <herald/sqlite/sqlite_store.hpp>

#include <catch2/catch.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

// One namespace a file: the unit tests build as one translation unit (unity).
namespace herald_test_sqlite_log {

using namespace std::chrono_literals;
using herald::test::raw_db;
using herald::test::temp_dir;

using herald::test::make_log_entry;
using herald::test::seqs;

namespace {

herald::time_point t0() {
    using namespace std::chrono;
    return herald::time_point{sys_days{2026y / November / 27}} + 15h;
}

/// Records the same `n` entries in both logs: webhooks 1..3, types and outcomes rotating.
template <class... Logs>
void fill(int n, Logs&... logs) {
    static constexpr herald::event_type types[] = {
        herald::event_type::create, herald::event_type::update, herald::event_type::remove};
    static constexpr herald::outcome outcomes[] = {
        herald::outcome::delivered, herald::outcome::retrying, herald::outcome::failed,
        herald::outcome::delivered};
    for (int i = 0; i < n; ++i) {
        auto const e =
            make_log_entry(static_cast<herald::webhook_id>(1 + i % 3), types[(i / 2) % 3],
                           outcomes[i % 4], t0() + std::chrono::seconds(i), std::to_string(i));
        (logs.record(e), ...);
    }
}

herald::sqlite_log open_log(herald::sqlite_log_params p) {
    auto l = herald::sqlite_log::open(std::move(p));
    if (!l)
        FAIL("open log: " << l.error().what());
    return std::move(*l);
}

} // namespace

TEST_CASE("sqlite_log records every field and reads it back after a restart", "[sqlite][log]") {
    temp_dir dir;
    auto const path = dir.file("log.db");
    {
        auto log = open_log({.path = path});
        CHECK(log.query({}).entries.empty());
        auto e =
            make_log_entry(7, herald::event_type::update, herald::outcome::retrying, t0(), "x");
        e.warning = "TLS certificate verification is disabled for this webhook";
        e.attempt = 3;
        log.record(e);
        log.flush();
        CHECK(log.size() == 1);
    }
    auto log = open_log({.path = path});
    auto page = log.query({});
    REQUIRE(page.entries.size() == 1);
    auto const& e = page.entries[0];
    CHECK(e.seq == 1);
    CHECK(e.delivery_id == "dlv_x");
    CHECK(e.event_id == "evt_x");
    CHECK(e.webhook == 7);
    CHECK(e.webhook_name == "Hook 7");
    CHECK(e.url == "https://example.com/7");
    CHECK(e.type == herald::event_type::update);
    CHECK(e.object_id == "x");
    CHECK(e.attempt == 3);
    CHECK(e.started_at == t0());
    CHECK(e.elapsed == 42ms);
    CHECK(e.status == 503);
    CHECK(e.result == herald::outcome::retrying);
    CHECK(e.error == "receiver answered HTTP 503");
    CHECK(e.response_excerpt == "excerpt x");
    REQUIRE(e.next_attempt_at.has_value());
    CHECK(*e.next_attempt_at == t0() + 5s);
    CHECK(e.warning == "TLS certificate verification is disabled for this webhook");
    CHECK_FALSE(page.next.has_value());

    // numbering goes on where the file left off
    log.record(
        make_log_entry(7, herald::event_type::create, herald::outcome::delivered, t0(), "y"));
    log.flush();
    CHECK(seqs(log.query({})) == std::vector<std::uint64_t>{2, 1});
}

TEST_CASE("sqlite_log keeps the request as sent, one body row per event", "[sqlite][log]") {
    temp_dir dir;
    auto const path = dir.file("requests.db");
    auto body = std::make_shared<std::string const>(R"({"id":"evt_1","object":{"n":1}})");
    auto other = std::make_shared<std::string const>(R"({"id":"evt_2"})");
    std::vector<herald::http_header> const headers{
        {"User-Agent", "herald/0.1.0"}, {"webhook-id", "evt_1"}, {"X-Api-Key", "k-123"}};
    {
        auto log = open_log({.path = path, .max_per_webhook = 2, .retention_interval = 24h});
        // three attempts of one event (two webhooks, a retry), one of another, one unsent
        for (auto hook : {1, 2, 1}) {
            auto e =
                make_log_entry(static_cast<herald::webhook_id>(hook), herald::event_type::create,
                               herald::outcome::delivered, t0(), "1");
            e.request_headers = headers;
            e.request_body = body;
            log.record(e);
        }
        auto e =
            make_log_entry(1, herald::event_type::create, herald::outcome::delivered, t0(), "2");
        e.request_body = other;
        log.record(e);
        log.record(
            make_log_entry(1, herald::event_type::create, herald::outcome::failed, t0(), "3"));
        log.flush();
        raw_db raw(path);
        CHECK(raw.value("SELECT count(*) FROM log_bodies") == 2);
    }
    auto log = open_log({.path = path, .max_per_webhook = 2, .retention_interval = 24h});
    auto const page = log.query({});
    REQUIRE(page.entries.size() == 5);
    // newest first: the unsent one, the other event, then the three of evt_1
    CHECK(page.entries[0].request_body == nullptr);
    CHECK(page.entries[0].request_headers.empty());
    REQUIRE(page.entries[1].request_body);
    CHECK(*page.entries[1].request_body == *other);
    for (std::size_t i = 2; i < 5; ++i) {
        REQUIRE(page.entries[i].request_body);
        CHECK(*page.entries[i].request_body == *body);
        CHECK(page.entries[i].request_body == page.entries[2].request_body); // shared
        REQUIRE(page.entries[i].request_headers.size() == 3);
        CHECK(page.entries[i].request_headers[2].name == "X-Api-Key");
        CHECK(page.entries[i].request_headers[2].value == "k-123");
    }
    // retention drops webhook 1's two oldest entries; evt_1's body stays for webhook 2's
    CHECK(log.apply_retention() == 2);
    raw_db raw(path);
    CHECK(raw.value("SELECT count(*) FROM log_bodies") == 2);
    herald::log_query q;
    q.webhook = 2;
    auto const kept = log.query(q);
    REQUIRE(kept.entries.size() == 1);
    REQUIRE(kept.entries[0].request_body);
    CHECK(*kept.entries[0].request_body == *body);
}

TEST_CASE("sqlite_log keeps a deleted webhook's entries, readable by name", "[sqlite][log]") {
    temp_dir dir;
    auto const path = dir.file("shared.db");
    // the store and the log share one file
    auto store = herald::sqlite_store::open({.path = path});
    REQUIRE(store.has_value());
    auto log = open_log({.path = path});
    herald::webhook_params p;
    p.name = "Billing";
    p.url = "https://billing.example.com/hooks";
    p.events = herald::event_type_set::all();
    auto hook = store->create(p);
    REQUIRE(hook.has_value());
    auto e =
        make_log_entry(hook->id, herald::event_type::create, herald::outcome::delivered, t0(), "b");
    e.webhook_name = hook->name;
    e.url = hook->url;
    log.record(e);
    log.flush();
    REQUIRE(store->remove(hook->id).has_value());
    CHECK(store->list().empty());

    herald::log_query q;
    q.webhook_name = "billing";
    auto page = log.query(q);
    REQUIRE(page.entries.size() == 1);
    CHECK(page.entries[0].webhook == hook->id);
    CHECK(page.entries[0].url == "https://billing.example.com/hooks");
    q = {};
    q.webhook = hook->id;
    CHECK(log.query(q).entries.size() == 1);
}

TEST_CASE("sqlite_log retention by age and by count per webhook, with a fake clock",
          "[sqlite][log][retention]") {
    temp_dir dir;
    std::atomic<std::int64_t> fake_ms{herald::to_unix_ms(t0())};
    auto fake_now = [&] {
        return herald::time_point(std::chrono::milliseconds(fake_ms.load()));
    };

    SECTION("max_age deletes what started too long ago, when the clock says so") {
        auto log = open_log({.path = dir.file("age.db"),
                             .max_age = 1h,
                             .retention_interval = 24h, // only when asked
                             .now = fake_now});
        // entries at t0 - 3h, t0 - 2h, t0 - 30 min, t0
        for (auto ago : {180min, 120min, 30min, 0min})
            log.record(make_log_entry(1, herald::event_type::create, herald::outcome::delivered,
                                      t0() - ago, std::to_string(ago.count())));
        log.flush();
        CHECK(log.apply_retention() == 2);
        CHECK(seqs(log.query({})) == std::vector<std::uint64_t>{4, 3});
        CHECK(log.apply_retention() == 0);
        fake_ms += std::chrono::milliseconds(45min).count(); // t0 + 45 min: the 30-min one is out
        CHECK(log.apply_retention() == 1);
        CHECK(seqs(log.query({})) == std::vector<std::uint64_t>{4});
        fake_ms += std::chrono::milliseconds(1h).count();
        CHECK(log.apply_retention() == 1);
        CHECK(log.size() == 0);
    }
    SECTION("max_per_webhook keeps the newest entries of each webhook") {
        auto log = open_log({.path = dir.file("count.db"),
                             .max_per_webhook = 4,
                             .retention_interval = 24h,
                             .now = fake_now});
        fill(30, log); // 10 per webhook
        log.flush();
        CHECK(log.apply_retention() == 18);
        CHECK(log.size() == 12);
        for (herald::webhook_id h = 1; h <= 3; ++h) {
            herald::log_query q;
            q.webhook = h;
            auto const page = log.query(q);
            REQUIRE(page.entries.size() == 4);
            // webhook h has seqs h, h+3, ..., h+27: the newest four are kept
            CHECK(seqs(page) == std::vector<std::uint64_t>{h + 27, h + 24, h + 21, h + 18});
        }
    }
    SECTION("the rule runs in the background") {
        auto log = open_log({.path = dir.file("background.db"),
                             .max_age = 1h,
                             .retention_interval = 20ms,
                             .now = fake_now});
        for (int i = 0; i < 10; ++i)
            log.record(make_log_entry(1, herald::event_type::create, herald::outcome::delivered,
                                      t0(), std::to_string(i)));
        log.flush();
        CHECK(log.size() == 10); // nothing is old yet
        fake_ms += std::chrono::milliseconds(2h).count();
        auto const until = std::chrono::steady_clock::now() + 20s;
        while (log.size() != 0 && std::chrono::steady_clock::now() < until)
            std::this_thread::sleep_for(10ms);
        CHECK(log.size() == 0);
    }
}

TEST_CASE("sqlite_log writes off the recording thread, many entries per commit", "[sqlite][log]") {
    temp_dir dir;
    auto log = open_log({.path = dir.file("many.db")});
    std::vector<std::thread> writers;
    for (int w = 0; w < 4; ++w)
        writers.emplace_back([&, w] {
            for (int i = 0; i < 500; ++i)
                log.record(make_log_entry(static_cast<herald::webhook_id>(w + 1),
                                          herald::event_type::create, herald::outcome::delivered,
                                          t0(), std::to_string(i)));
        });
    for (auto& w : writers)
        w.join();
    log.flush();
    CHECK(log.size() == 2000);
    CHECK(log.write_failures() == 0);
    herald::log_query q;
    q.limit = 1;
    CHECK(seqs(log.query(q)) == std::vector<std::uint64_t>{2000});
}

TEST_CASE("a sqlite_log that cannot write counts and reports it once, with a count of repeats, "
          "and never holds up record",
          "[sqlite][log][errors]") {
    // Issue 12, defect 17: a full disk printed 18,633 identical lines, and a log that could not
    // write was otherwise silent. The disk is "full" here as for a process over its file size
    // limit (RLIMIT_FSIZE): every write past the limit fails.
    temp_dir dir;
    auto const path = dir.file("full.db");
    std::mutex mutex;
    std::vector<std::string> told;
    auto log = open_log({.path = path,
                         .report =
                             [&](std::string const& line) {
                                 std::lock_guard lock(mutex);
                                 told.push_back(line);
                             },
                         .report_interval = std::chrono::hours(1)});
    log.record(
        make_log_entry(1, herald::event_type::create, herald::outcome::delivered, t0(), "a"));
    log.flush();
    REQUIRE(log.write_stats().failures == 0);

    auto const wal = std::filesystem::path(path + "-wal");
    auto const limit = std::max(std::filesystem::file_size(path),
                                std::filesystem::exists(wal) ? std::filesystem::file_size(wal)
                                                             : std::uintmax_t(0)) +
                       4096;
    auto const old_handler = std::signal(SIGXFSZ, SIG_IGN);
    rlimit old_limit{};
    REQUIRE(getrlimit(RLIMIT_FSIZE, &old_limit) == 0);
    rlimit full = old_limit;
    full.rlim_cur = static_cast<rlim_t>(limit);
    REQUIRE(setrlimit(RLIMIT_FSIZE, &full) == 0);
    constexpr int lost = 40;
    auto const started = std::chrono::steady_clock::now();
    for (int i = 0; i < lost; ++i) {
        auto e = make_log_entry(1, herald::event_type::create, herald::outcome::delivered, t0(),
                                "big" + std::to_string(i));
        e.request_body = std::make_shared<std::string const>(64 * 1024, char('a' + i % 26));
        log.record(std::move(e));
        log.flush(); // one failed transaction each
    }
    auto const took = std::chrono::steady_clock::now() - started;
    REQUIRE(setrlimit(RLIMIT_FSIZE, &old_limit) == 0);
    std::signal(SIGXFSZ, old_handler);

    auto const w = log.write_stats();
    CHECK(w.failures == std::uint64_t(lost));
    CHECK(w.entries_lost == std::uint64_t(lost));
    CHECK(w.last_error.find("'" + path + "'") != std::string::npos);
    CHECK(took < 30s); // nothing waited for a disk that does not answer
    {
        std::lock_guard lock(mutex);
        REQUIRE(told.size() == 1); // the first occurrence, then only counted
        CHECK(told[0] == w.last_error);
    }
    // The disk has room again: the next write succeeds, and the repeats are told as a count.
    log.record(
        make_log_entry(1, herald::event_type::create, herald::outcome::delivered, t0(), "b"));
    log.flush();
    CHECK(log.write_stats().failures == std::uint64_t(lost));
    CHECK(log.size() == 2);
    std::lock_guard lock(mutex);
    REQUIRE(told.size() == 2);
    CHECK(told[1] == w.last_error + " (repeated " + std::to_string(lost - 1) + " times)");
}

TEST_CASE("sqlite_log's barrier waits for what was recorded, and outlives the log",
          "[sqlite][log][order]") {
    temp_dir dir;
    auto const path = dir.file("barrier.db");
    std::function<void()> barrier;
    std::function<herald::log_write_stats()> observer;
    {
        auto log = open_log({.path = path});
        barrier = log.barrier();
        observer = log.observer();
        fill(500, log);
        barrier(); // returns once the 500 are committed
        raw_db raw(path);
        CHECK(raw.value("SELECT count(*) FROM log") == 500);
        CHECK(observer().failures == 0);
    }
    barrier(); // the log is gone: nothing to wait for
    CHECK(observer().failures == 0);
}

} // namespace herald_test_sqlite_log
