// What every log sink does, whatever keeps the entries (tests/support/models.hpp): numbers
// them, gives them back newest first, filtered and paged by seq. What a sink does beyond that
// (memory_log's capacity, sqlite_log's file and retention, jsonl_log's lines) is tested with
// the sink.
//
// A sink numbers its entries as it likes, increasing (memory_log and sqlite_log count from 1,
// postgres_log takes time-based numbers shared by several processes): the suite names each
// entry by its place among the entries the test recorded (`number`: 1 for the first), and
// checks what the queries answer in those numbers.
#include "fixtures.hpp"
#include "models.hpp"

#include <herald/concepts.hpp>
#include <herald/log.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

// One namespace a file: the unit tests build as one translation unit (unity).
namespace conformance_log {

using namespace std::chrono_literals;
using herald::event_type;
using herald::outcome;
using herald::test::fixed_time;
using herald::test::make_log_entry;
using seq_list = std::vector<std::uint64_t>;

namespace {

/// The seqs the sink returned since the test opened it, in recording order (increasing).
std::vector<std::uint64_t> recorded_seqs;

/// The model's sink, checked against the concept it models: the one place that names it.
template <class Model>
typename Model::type open_log(Model& model) {
    static_assert(herald::log_sink<typename Model::type>);
    recorded_seqs.clear();
    return model.make();
}

/// Records one entry; returns the seq the sink says it assigned.
template <class Log>
std::uint64_t record(Log& log, herald::log_entry e) {
    auto const seq = log.record(std::move(e));
    recorded_seqs.push_back(seq);
    return seq;
}

/// The place of the entry numbered `seq` among those recorded (1 for the first), 0 for none.
std::uint64_t number(std::uint64_t seq) {
    auto const it = std::lower_bound(recorded_seqs.begin(), recorded_seqs.end(), seq);
    if (it == recorded_seqs.end() || *it != seq)
        return 0;
    return static_cast<std::uint64_t>(it - recorded_seqs.begin()) + 1;
}

/// The seqs of a page's entries, in its order.
seq_list seqs_of(herald::log_page const& page) {
    seq_list out;
    for (auto const& e : page.entries)
        out.push_back(e.seq);
    return out;
}

/// The numbers of a page's entries, in its order.
seq_list numbers(herald::log_page const& page) {
    seq_list out;
    for (auto const& e : page.entries)
        out.push_back(number(e.seq));
    return out;
}

/// The number of a page's cursor, if it has one.
std::optional<std::uint64_t> next_number(herald::log_page const& page) {
    if (!page.next)
        return std::nullopt;
    return number(*page.next);
}

/// Waits until what was recorded is visible to query (a sink that writes on a thread of its
/// own has `flush`).
template <class Log>
void settle(Log& log) {
    if constexpr (requires { log.flush(); })
        log.flush();
}

/// The entries a sink holds, for the sinks that count them.
template <class Log>
void check_size(Log const& log, std::size_t n) {
    if constexpr (requires { log.size(); })
        CHECK(log.size() == n);
}

/// Entry `i` of the entries fill records: number i + 1 in a new log, tagged with that number
/// (`dlv_<i + 1>`), for webhook 1 + i % 3 ("Hook <id>"), started i seconds after
/// fixed_time(); types change every two entries, outcomes rotate by four.
herald::log_entry entry(int i) {
    static constexpr event_type types[] = {event_type::create, event_type::update,
                                           event_type::remove};
    static constexpr outcome outcomes[] = {outcome::delivered, outcome::retrying, outcome::failed,
                                           outcome::delivered};
    return make_log_entry(static_cast<herald::webhook_id>(1 + i % 3), types[(i / 2) % 3],
                          outcomes[i % 4], fixed_time() + std::chrono::seconds(i),
                          std::to_string(i + 1));
}

/// Records entries 0 to n - 1 and waits until they are visible.
template <class Log>
void fill(Log& log, int n) {
    for (int i = 0; i < n; ++i)
        record(log, entry(i));
    settle(log);
}

/// The numbers of entries 0 to n - 1 that `keep` selects, newest first: what a query answers.
seq_list expected(int n, std::function<bool(herald::log_entry const&)> const& keep) {
    seq_list out;
    for (int i = n - 1; i >= 0; --i)
        if (keep(entry(i)))
            out.push_back(static_cast<std::uint64_t>(i + 1));
    return out;
}

/// Queries `q`, which fits one page; checks it answers `want` and no next page.
template <class Log>
herald::log_page check_query(Log const& log, herald::log_query const& q, seq_list const& want) {
    auto page = log.query(q);
    CHECK(numbers(page) == want);
    CHECK_FALSE(page.next.has_value());
    return page;
}

} // namespace

TEMPLATE_TEST_CASE("a log's record assigns increasing seq numbers and returns them",
                   "[conformance][log]", HERALD_TEST_LOG_MODELS) {
    TestType model;
    auto log = open_log(model);
    check_size(log, 0);
    CHECK(log.query({}).entries.empty());
    CHECK_FALSE(log.query({}).next.has_value());
    std::uint64_t last = 0;
    for (int i = 0; i < 5; ++i) {
        auto const seq = record(log, entry(i));
        CHECK(seq > last);
        last = seq;
    }
    settle(log);
    check_size(log, 5);
    auto const page = log.query({});
    CHECK(numbers(page) == seq_list{5, 4, 3, 2, 1});
    // each entry has the seq record returned for it
    CHECK(seqs_of(page) == seq_list(recorded_seqs.rbegin(), recorded_seqs.rend()));
    CHECK(page.entries[0].object_id == "5");
    CHECK(page.entries[4].object_id == "1");
    CHECK_FALSE(page.next.has_value());
}

TEMPLATE_TEST_CASE("a log gives back every field it recorded", "[conformance][log]",
                   HERALD_TEST_LOG_MODELS) {
    TestType model;
    auto log = open_log(model);
    auto e = make_log_entry(7, event_type::update, outcome::retrying, fixed_time(), "x");
    e.warning = "TLS certificate verification is disabled for this webhook";
    e.attempt = 3;
    e.request_headers = {{"User-Agent", "herald/0.1.0"}, {"X-Api-Key", "k-123"}};
    e.request_body = std::make_shared<std::string const>(R"({"id":"evt_x"})");
    auto const seq = record(log, e);
    settle(log);
    auto const page = log.query({});
    REQUIRE(page.entries.size() == 1);
    auto const& got = page.entries[0];
    CHECK(got.seq == seq);
    CHECK(got.delivery_id == "dlv_x");
    CHECK(got.event_id == "evt_x");
    CHECK(got.webhook == 7);
    CHECK(got.webhook_name == "Hook 7");
    CHECK(got.url == "https://example.com/7");
    CHECK(got.type == event_type::update);
    CHECK(got.object_id == "x");
    CHECK(got.attempt == 3);
    CHECK(got.started_at == fixed_time());
    CHECK(got.elapsed == 42ms);
    CHECK(got.status == 503);
    CHECK(got.result == outcome::retrying);
    CHECK(got.error == "receiver answered HTTP 503");
    CHECK(got.response_excerpt == "excerpt x");
    REQUIRE(got.next_attempt_at.has_value());
    CHECK(*got.next_attempt_at == fixed_time() + 5s);
    CHECK(got.warning == e.warning);
    REQUIRE(got.request_headers.size() == 2);
    CHECK(got.request_headers[1].name == "X-Api-Key");
    CHECK(got.request_headers[1].value == "k-123");
    REQUIRE(got.request_body);
    CHECK(*got.request_body == *e.request_body);
}

TEMPLATE_TEST_CASE("a log filters by webhook, type and outcome", "[conformance][log]",
                   HERALD_TEST_LOG_MODELS) {
    TestType model;
    auto log = open_log(model);
    auto const t0 = fixed_time();
    record(log, make_log_entry(1, event_type::create, outcome::delivered, t0, "a")); // 1
    record(log, make_log_entry(2, event_type::update, outcome::retrying, t0, "b"));  // 2
    record(log, make_log_entry(1, event_type::update, outcome::failed, t0, "c"));    // 3
    record(log, make_log_entry(2, event_type::remove, outcome::delivered, t0, "d")); // 4
    record(log, make_log_entry(1, event_type::update, outcome::delivered, t0, "e")); // 5
    settle(log);

    herald::log_query q;
    q.webhook = 1;
    CHECK(numbers(log.query(q)) == seq_list{5, 3, 1});
    q.webhook = 3;
    CHECK(log.query(q).entries.empty());

    q = {};
    q.type = event_type::update;
    CHECK(numbers(log.query(q)) == seq_list{5, 3, 2});

    q = {};
    q.result = outcome::delivered;
    CHECK(numbers(log.query(q)) == seq_list{5, 4, 1});

    q = {};
    q.webhook = 1;
    q.type = event_type::update;
    q.result = outcome::delivered;
    CHECK(numbers(log.query(q)) == seq_list{5});
}

TEMPLATE_TEST_CASE("a log answers every filter, alone and combined", "[conformance][log]",
                   HERALD_TEST_LOG_MODELS) {
    TestType model;
    auto log = open_log(model);
    fill(log, 60);
    check_size(log, 60);

    auto const all = log.query({});
    CHECK(all.entries.size() == 50); // the default page
    CHECK(next_number(all) == std::optional<std::uint64_t>(11));
    CHECK(number(all.entries.front().seq) == 60);

    herald::log_query q;
    q.limit = 1000;
    q.webhook = 2;
    auto const by_hook =
        check_query(log, q, expected(60, [](auto const& e) { return e.webhook == 2; }));
    CHECK(by_hook.entries.size() == 20);
    for (auto const& e : by_hook.entries)
        CHECK(e.webhook == 2);

    q = {};
    q.type = event_type::remove;
    auto const by_type = check_query(
        log, q, expected(60, [](auto const& e) { return e.type == event_type::remove; }));
    CHECK(by_type.entries.size() == 20);
    for (auto const& e : by_type.entries)
        CHECK(e.type == event_type::remove);

    q = {};
    q.result = outcome::failed;
    auto const failed = check_query(
        log, q, expected(60, [](auto const& e) { return e.result == outcome::failed; }));
    CHECK(failed.entries.size() == 15);

    q = {};
    q.since = fixed_time() + 10s;
    q.until = fixed_time() + 20s;
    check_query(log, q, seq_list{20, 19, 18, 17, 16, 15, 14, 13, 12, 11});

    q = {};
    q.webhook = 1;
    q.result = outcome::delivered;
    q.type = event_type::create;
    check_query(log, q, seq_list{49, 37, 25, 13, 1});

    q = {};
    q.webhook_name = "HOOK 3"; // case-insensitive
    auto const by_name =
        check_query(log, q, expected(60, [](auto const& e) { return e.webhook == 3; }));
    CHECK(by_name.entries.size() == 20);

    q = {};
    q.delivery_id = "dlv_8";
    check_query(log, q, seq_list{8});
    q.delivery_id = "dlv_nothing";
    check_query(log, q, seq_list{});
}

TEMPLATE_TEST_CASE("a log filters by time: since inclusive, until exclusive", "[conformance][log]",
                   HERALD_TEST_LOG_MODELS) {
    TestType model;
    auto log = open_log(model);
    fill(log, 10); // entry seq n started at t0 + (n - 1) s
    auto const t0 = fixed_time();
    herald::log_query q;
    q.since = t0 + 3s;
    CHECK(numbers(log.query(q)) == seq_list{10, 9, 8, 7, 6, 5, 4});
    q = {};
    q.until = t0 + 3s;
    CHECK(numbers(log.query(q)) == seq_list{3, 2, 1});
    q.since = t0 + 1s;
    CHECK(numbers(log.query(q)) == seq_list{3, 2});
    q.since = t0 + 3s;
    CHECK(log.query(q).entries.empty()); // empty window
    q.since = t0 + 1s + 1ms;
    CHECK(numbers(log.query(q)) == seq_list{3});
}

TEMPLATE_TEST_CASE("a log pages through every match exactly once", "[conformance][log]",
                   HERALD_TEST_LOG_MODELS) {
    TestType model;
    auto log = open_log(model);
    fill(log, 95);

    auto walk = [&](herald::log_query q) {
        seq_list all;
        std::size_t pages = 0;
        for (;;) {
            auto const page = log.query(q);
            ++pages;
            REQUIRE(page.entries.size() <= q.limit);
            for (auto const& e : page.entries)
                all.push_back(number(e.seq));
            if (!page.next)
                break;
            REQUIRE(page.entries.size() == q.limit);
            CHECK(*page.next == page.entries.back().seq);
            q.before_seq = page.next;
            REQUIRE(pages < 1000);
        }
        return std::make_pair(all, pages);
    };

    SECTION("all entries, 10 per page") {
        herald::log_query q;
        q.limit = 10;
        auto const [all, pages] = walk(q);
        CHECK(pages == 10);
        REQUIRE(all.size() == 95);
        for (std::size_t i = 0; i < all.size(); ++i)
            CHECK(all[i] == 95 - i);
    }
    SECTION("an exact multiple of the page size leaves no empty page") {
        herald::log_query q;
        q.limit = 19;
        auto const [all, pages] = walk(q);
        CHECK(all.size() == 95);
        CHECK(pages == 5);
    }
    SECTION("filtered, 7 per page") {
        herald::log_query q;
        q.webhook = 2;
        q.limit = 7;
        auto const [all, pages] = walk(q);
        seq_list want;
        for (std::uint64_t s = 95; s >= 1; --s)
            if ((s - 1) % 3 == 1)
                want.push_back(s);
        CHECK(all == want);
        CHECK(pages == (want.size() + 6) / 7);
    }
    SECTION("entries recorded between pages are not seen twice nor skip older ones") {
        herald::log_query q;
        q.limit = 10;
        seq_list all;
        for (int page_no = 0;; ++page_no) {
            auto const page = log.query(q);
            for (auto const& e : page.entries)
                all.push_back(number(e.seq));
            // new attempts arrive while the user reads
            fill(log, 4);
            if (!page.next)
                break;
            q.before_seq = page.next;
            REQUIRE(page_no < 100);
        }
        REQUIRE(all.size() == 95);
        CHECK(std::set<std::uint64_t>(all.begin(), all.end()).size() == 95);
        CHECK(all.front() == 95);
        CHECK(all.back() == 1);
        CHECK(std::is_sorted(all.rbegin(), all.rend()));
    }
}

TEMPLATE_TEST_CASE("a log clamps the page size to [1, 1000]", "[conformance][log]",
                   HERALD_TEST_LOG_MODELS) {
    TestType model;
    auto log = open_log(model);
    fill(log, 1'200);
    herald::log_query q;
    CHECK(q.limit == 50);
    CHECK(log.query(q).entries.size() == 50);
    q.limit = 0;
    auto const one = log.query(q);
    CHECK(numbers(one) == seq_list{1'200});
    CHECK(next_number(one) == std::uint64_t{1'200});
    q.limit = 1'000;
    CHECK(log.query(q).entries.size() == 1'000);
    q.limit = 5'000;
    auto const capped = log.query(q);
    CHECK(capped.entries.size() == herald::log_query::max_limit);
    REQUIRE(capped.next.has_value());
    CHECK(number(*capped.next) == 201);
}

TEMPLATE_TEST_CASE("a log finds every attempt of one delivery, newest first", "[conformance][log]",
                   HERALD_TEST_LOG_MODELS) {
    TestType model;
    auto log = open_log(model);
    fill(log, 10);
    for (std::uint32_t attempt = 2; attempt <= 3; ++attempt) {
        auto e = make_log_entry(2, event_type::update, outcome::retrying,
                                fixed_time() + std::chrono::seconds(20 + attempt), "5");
        e.attempt = attempt;
        record(log, e);
    }
    settle(log);
    herald::log_query q;
    q.delivery_id = "dlv_5";
    auto const a = check_query(log, q, seq_list{12, 11, 5});
    REQUIRE(a.entries.size() == 3);
    CHECK(a.entries[0].attempt == 3);
    CHECK(a.entries[2].attempt == 1);
    q.limit = 1; // the newest attempt alone, as Redeliver looks it up
    CHECK(numbers(log.query(q)) == seq_list{12});
}

} // namespace conformance_log
