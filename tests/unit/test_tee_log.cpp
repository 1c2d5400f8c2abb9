#include "fixtures.hpp"

#include <herald/log/jsonl_log.hpp>
#include <herald/log/memory_log.hpp>
#include <herald/log/metered_log.hpp>
#include <herald/log/tee_log.hpp>

#include <catch2/catch.hpp>

#include <boost/json/parse.hpp>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

// One namespace a file: the unit tests build as one translation unit (unity).
namespace herald_test_tee_log {

using namespace std::chrono_literals;
using herald::test::fixed_time;
using herald::test::make_log_entry;
using herald::test::seqs;

namespace {

/// A copy that keeps what it is given, shared between copies, and counts failed writes.
struct keeping_copy {
    std::shared_ptr<std::vector<herald::log_entry>> got =
        std::make_shared<std::vector<herald::log_entry>>();
    void record(herald::log_entry e) { got->push_back(std::move(e)); }
    herald::log_write_stats write_stats() const { return {1, 2, "copy: disk full"}; }
};

/// A log whose seqs start at 100, that counts failed writes and can be flushed.
struct counting_log {
    herald::memory_log recent{};
    std::uint64_t offset = 99;
    int* flushes = nullptr;
    std::uint64_t record(herald::log_entry e) { return offset + recent.record(std::move(e)); }
    herald::log_page query(herald::log_query const& q) const { return recent.query(q); }
    herald::log_write_stats write_stats() const { return {3, 4, "log: read-only"}; }
    void flush() { ++*flushes; }
};

template <class T>
concept flushable = requires(T& t) {
    t.flush();
};

herald::log_entry entry(int i, herald::outcome o = herald::outcome::delivered) {
    return make_log_entry(static_cast<herald::webhook_id>(1 + i % 2), herald::event_type::create, o,
                          fixed_time() + std::chrono::seconds(i), std::to_string(i));
}

} // namespace

TEST_CASE("tee_log: both sinks get every entry; the seq is the inner log's, the copy has it",
          "[log][tee_log]") {
    int flushes = 0;
    keeping_copy copy;
    herald::tee_log<counting_log, keeping_copy> log(counting_log{.flushes = &flushes}, copy);
    for (int i = 0; i < 5; ++i)
        CHECK(log.record(entry(i)) == 100u + static_cast<unsigned>(i));
    REQUIRE(copy.got->size() == 5);
    for (std::size_t i = 0; i < 5; ++i) {
        CHECK((*copy.got)[i].seq == 100 + i);
        CHECK((*copy.got)[i].delivery_id == "dlv_" + std::to_string(i));
    }
    auto const page = log.query({});
    CHECK(page.entries.size() == 5); // answered by the inner log
    CHECK(log.inner().recent.query({}).entries.size() == 5);

    log.flush();
    CHECK(flushes == 1);

    // Failed writes of both, summed.
    auto const w = log.write_stats();
    CHECK(w.failures == 4);
    CHECK(w.entries_lost == 6);
    CHECK(w.last_error == "copy: disk full");
}

TEST_CASE("tee_log: the inner log's capabilities are forwarded, and only those", "[log][tee_log]") {
    using metered_tee = herald::tee_log<herald::metered_log<>, keeping_copy>;
    STATIC_REQUIRE(herald::metrics_log<metered_tee>);
    STATIC_REQUIRE(herald::activity_log<metered_tee>);
    STATIC_REQUIRE(herald::write_counting_log<metered_tee>);
    using plain_tee = herald::tee_log<herald::memory_log, herald::memory_log>;
    STATIC_REQUIRE(herald::log_sink<plain_tee>);
    STATIC_REQUIRE_FALSE(herald::metrics_log<plain_tee>);
    STATIC_REQUIRE_FALSE(herald::activity_log<plain_tee>);
    STATIC_REQUIRE_FALSE(herald::write_counting_log<plain_tee>);
    STATIC_REQUIRE_FALSE(flushable<plain_tee>);

    metered_tee log;
    log.record(entry(0, herald::outcome::delivered));
    log.record(entry(2, herald::outcome::failed));
    log.record(entry(1, herald::outcome::retrying));
    auto const m = log.metrics();
    CHECK(m.count == 3);
    CHECK(m.attempts[static_cast<std::size_t>(herald::outcome::failed)] == 1);
    auto const a = log.activity(1, fixed_time() + 5s);
    REQUIRE(a.last);
    CHECK(a.last->delivery_id == "dlv_2");
    log.forget(1);
    CHECK_FALSE(log.activity(1).last);
    CHECK(log.copy().got->size() == 3);
    CHECK(seqs(log.query({})) == std::vector<std::uint64_t>{3, 2, 1});
}

TEST_CASE("tee_log: with jsonl_log as the copy, one JSON line per attempt", "[log][tee_log]") {
    std::FILE* f = std::tmpfile();
    REQUIRE(f);
    {
        herald::tee_log<> log(herald::memory_log(), herald::jsonl_log(f, {.capacity = 0}));
        for (int i = 0; i < 3; ++i)
            log.record(entry(i));
        log.flush(); // the copy's: every line written
        CHECK(log.query({}).entries.size() == 3);
        CHECK(log.copy().query({}).entries.empty()); // it keeps none itself
    }
    std::rewind(f);
    std::vector<std::string> lines;
    char buf[4096];
    while (std::fgets(buf, sizeof buf, f))
        lines.emplace_back(buf);
    std::fclose(f);
    REQUIRE(lines.size() == 3);
    for (std::size_t i = 0; i < lines.size(); ++i)
        CHECK(boost::json::parse(lines[i]).at("delivery_id").as_string() ==
              "dlv_" + std::to_string(i));
}

} // namespace herald_test_tee_log
