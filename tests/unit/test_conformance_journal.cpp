// What every delivery journal does (enqueue, claim, reschedule, complete), whatever keeps it
// (tests/support/models.hpp): one in memory keeps nothing, a durable one gives back after a
// restart what was still queued, in journal order and in pages. What a model does beyond
// that (its file's rows, its commits, its thread) is tested with the model.
#include "models.hpp"

#include <herald/concepts.hpp>
#include <herald/delivery.hpp>
#include <herald/store/null_journal.hpp>

#include <catch2/catch.hpp>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

// One namespace a file: the unit tests build as one translation unit (unity).
namespace conformance_journal {

using herald::webhook_id;
using herald::test::delivery_for;
using herald::test::prepared;

namespace {

/// The model's store (a webhooks table, for deliveries to go to, and its journal if it has
/// one), checked against the concepts it models: the one place that names them.
template <class Model>
typename Model::type open_journal(Model& model) {
    static_assert(herald::editable_webhook_table<typename Model::type>);
    return model.make();
}

/// The store's journal, as a dispatcher over it would have: its own, or a null_journal.
template <class Store>
auto& journal_of(Store& s) {
    if constexpr (herald::journaled_store<Store>) {
        return s.journal();
    } else {
        static herald::null_journal none;
        return none;
    }
}

template <class Store>
constexpr bool is_durable =
    herald::durable_journal<std::remove_reference_t<decltype(journal_of(std::declval<Store&>()))>>;

/// Runs one asynchronous journal operation to completion on an io_context of its own.
template <class Result, class Start>
Result finish(Start start) {
    boost::asio::io_context io;
    std::optional<Result> out;
    start(boost::asio::bind_executor(io, [&](Result r) { out = std::move(r); }));
    io.run();
    REQUIRE(out.has_value());
    return std::move(*out);
}

template <class Store>
herald::result<void> enqueue(Store& store, std::vector<herald::delivery> ds) {
    return finish<herald::result<void>>(
        [&](auto handler) { journal_of(store).async_enqueue(std::move(ds), std::move(handler)); });
}

template <class Store>
std::vector<herald::delivery> claim(Store& store, herald::time_point now, std::size_t max) {
    auto r = finish<herald::result<std::vector<herald::delivery>>>(
        [&](auto handler) { journal_of(store).async_claim(now, max, std::move(handler)); });
    REQUIRE(r.has_value());
    return std::move(*r);
}

/// Creates a webhook in the store's table, for deliveries to go to.
herald::webhook hook_in(auto& store, std::string name,
                        std::string url = "https://example.com/hook") {
    return store.create(herald::test::hook_params(std::move(name), std::move(url))).value();
}

/// Past every due time the tests give (a journal may hand out only what is due by `now`).
herald::time_point const later{std::chrono::milliseconds(2'000'000'000'000)};

std::vector<std::string> event_ids(std::vector<herald::delivery> const& ds) {
    std::vector<std::string> out;
    for (auto const& d : ds)
        out.push_back(d.event->event.id);
    return out;
}

} // namespace

// ---- every journal ----

TEMPLATE_TEST_CASE("a journal's claim hands out nothing enqueued since it was opened",
                   "[conformance][journal]", HERALD_TEST_JOURNAL_MODELS) {
    TestType model;
    auto store = open_journal(model);
    auto const now = herald::clock::now();
    CHECK(claim(store, now, 10).empty());
    auto const h = hook_in(store, "one");
    std::vector<herald::delivery> ds{delivery_for(prepared("1"), h),
                                     delivery_for(prepared("2"), h)};
    REQUIRE(enqueue(store, ds).has_value());
    CHECK(claim(store, now, 10).empty());
    ds[0].attempts = 1;
    ds[0].due = now;
    journal_of(store).reschedule(ds[0]);
    journal_of(store).complete(ds[1], herald::outcome::delivered);
    CHECK(claim(store, now, 10).empty());
    CHECK(claim(store, now, 0).empty());
}

TEMPLATE_TEST_CASE("after a restart a journal hands back what it still held: all for a "
                   "durable one, nothing for one in memory",
                   "[conformance][journal]", HERALD_TEST_JOURNAL_MODELS) {
    TestType model;
    std::set<std::string> queued;
    {
        auto store = open_journal(model);
        auto const h = hook_in(store, "one");
        std::vector<herald::delivery> ds;
        for (int i = 0; i < 3; ++i) {
            ds.push_back(delivery_for(prepared(std::to_string(i)), h));
            queued.insert(ds.back().event->event.id);
        }
        REQUIRE(enqueue(store, ds).has_value());
    }
    auto store = open_journal(model);
    auto const claimed = event_ids(claim(store, later, 10));
    if constexpr (is_durable<typename TestType::type>)
        CHECK(std::set<std::string>(claimed.begin(), claimed.end()) == queued);
    else
        CHECK(claimed.empty());
    CHECK(claim(store, later, 10).empty());
}

// ---- a durable journal ----

#ifdef HERALD_TEST_DURABLE_JOURNAL_MODELS

TEMPLATE_TEST_CASE("a durable journal keeps what was enqueued or rescheduled, not what "
                   "completed, and hands it out once",
                   "[conformance][journal]", HERALD_TEST_DURABLE_JOURNAL_MODELS) {
    TestType model;
    herald::delivery_id kept_id;
    std::string const body(3000, 'x');
    {
        auto store = open_journal(model);
        auto const h1 = hook_in(store, "one");
        auto const h2 = hook_in(store, "two");
        auto const e1 = prepared("1", body);
        auto const e2 = prepared("2", "{\"second\":true}");
        std::vector<herald::delivery> ds{delivery_for(e1, h1), delivery_for(e1, h2),
                                         delivery_for(e2, h1)};
        REQUIRE(enqueue(store, ds).has_value());
        // e1 to h1 delivered; e2 to h1 failed for good; e1 to h2 waits for a retry
        journal_of(store).complete(ds[0], herald::outcome::delivered);
        journal_of(store).complete(ds[2], herald::outcome::failed);
        ds[1].attempts = 3;
        ds[1].due = herald::time_point(std::chrono::milliseconds(1'900'000'000'000));
        journal_of(store).reschedule(ds[1]);
        kept_id = ds[1].id;
    }
    auto store = open_journal(model);
    auto got = claim(store, later, 10);
    REQUIRE(got.size() == 1);
    auto const& d = got[0];
    CHECK(d.id == kept_id);
    CHECK(d.attempts == 3);
    CHECK(herald::to_unix_ms(d.due) == 1'900'000'000'000);
    CHECK(d.event->event.id == "evt_1");
    CHECK(d.event->event.object_id == "obj-1");
    CHECK(d.event->event.type == herald::event_type::create);
    CHECK(d.event->event.object_type == std::optional<std::string>("server"));
    CHECK(d.event->body.body == body);
    CHECK(d.event->body.content_type == "application/json");
    REQUIRE(d.event->body.headers.size() == 1);
    CHECK(d.event->body.headers[0].name == "ce-id");
    REQUIRE(d.hook);
    CHECK(d.hook->name == "two");
    CHECK(d.hook == store.get(d.hook->id)); // the webhook as it is now
    // handed out once
    CHECK(claim(store, later, 10).empty());
}

TEMPLATE_TEST_CASE("a durable journal claims in pages, in journal order, and keeps a deleted "
                   "webhook's name for the log",
                   "[conformance][journal]", HERALD_TEST_DURABLE_JOURNAL_MODELS) {
    TestType model;
    std::vector<std::string> enqueued;
    {
        auto store = open_journal(model);
        auto const h = hook_in(store, "soon gone", "https://gone.example.com/x");
        std::vector<herald::delivery> ds;
        for (int i = 0; i < 5; ++i) {
            ds.push_back(delivery_for(prepared(std::to_string(i)), h));
            enqueued.push_back(ds.back().event->event.id);
        }
        REQUIRE(enqueue(store, ds).has_value());
        REQUIRE(store.remove(h.id).has_value());
    }
    auto store = open_journal(model);
    CHECK(store.get(1) == nullptr);
    auto const a = claim(store, later, 2);
    auto const b = claim(store, later, 2);
    auto const c = claim(store, later, 2);
    CHECK(a.size() == 2);
    CHECK(b.size() == 2);
    REQUIRE(c.size() == 1);
    CHECK(claim(store, later, 2).empty());
    std::vector<std::string> claimed;
    for (auto const* page : {&a, &b, &c})
        for (auto const& d : *page) {
            claimed.push_back(d.event->event.id);
            REQUIRE(d.hook);
            CHECK(d.hook->id == 1);
            CHECK(d.hook->name == "soon gone");
            CHECK(d.hook->url == "https://gone.example.com/x");
        }
    CHECK(claimed == enqueued);
}

#endif

#ifdef HERALD_TEST_BACKLOG_JOURNAL_MODELS

namespace {

/// The same for a durable journal that gives a webhook's deliveries back by seq.
template <class Model>
typename Model::type open_backlog(Model& model) {
    static_assert(herald::backlog_journal<typename Model::type>);
    return open_journal(model);
}

/// What async_load completes with, the io_context run until it does.
template <class Store>
std::vector<herald::delivery> load(Store& store, webhook_id id, std::uint64_t after,
                                   std::uint64_t upto, std::size_t max) {
    auto r = finish<herald::result<std::vector<herald::delivery>>>([&](auto handler) {
        journal_of(store).async_load(id, after, upto, max, std::move(handler));
    });
    REQUIRE(r.has_value());
    return std::move(*r);
}

std::vector<std::uint64_t> seqs(std::vector<herald::delivery> const& ds) {
    std::vector<std::uint64_t> out;
    for (auto const& d : ds)
        out.push_back(d.seq);
    return out;
}

} // namespace

TEMPLATE_TEST_CASE("a durable journal keeps the dispatcher's seq and loads a webhook's "
                   "deliveries back by it",
                   "[conformance][journal]", HERALD_TEST_BACKLOG_JOURNAL_MODELS) {
    TestType model;
    webhook_id h1 = 0, h2 = 0;
    {
        auto store = open_backlog(model);
        CHECK(journal_of(store).journal_seq() == 0); // a new journal
        auto const one = hook_in(store, "one");
        auto const two = hook_in(store, "two");
        h1 = one.id;
        h2 = two.id;
        // events 1..6 to "one", the even ones to "two" as well: one seq for both deliveries
        for (std::uint64_t seq = 1; seq <= 6; ++seq) {
            auto const ev = prepared(std::to_string(seq));
            std::vector<herald::delivery> ds{delivery_for(ev, one, seq)};
            if (seq % 2 == 0)
                ds.push_back(delivery_for(ev, two, seq));
            REQUIRE(enqueue(store, ds).has_value());
            if (seq == 3)
                journal_of(store).complete(ds[0],
                                           herald::outcome::delivered); // gone from the journal
        }
    }
    auto store = open_backlog(model);
    CHECK(journal_of(store).journal_seq() == 6);

    auto const all = load(store, h1, 0, 6, 10);
    CHECK(seqs(all) == std::vector<std::uint64_t>{1, 2, 4, 5, 6});
    CHECK(event_ids(all) == std::vector<std::string>{"evt_1", "evt_2", "evt_4", "evt_5", "evt_6"});
    for (auto const& d : all) {
        REQUIRE(d.hook);
        CHECK(d.hook->id == h1);
        CHECK(d.attempts == 0);
        CHECK(herald::to_unix_ms(d.due) == 1'800'000'000'000);
    }
    CHECK(seqs(load(store, h2, 0, 6, 10)) == std::vector<std::uint64_t>{2, 4, 6});
    // after < seq <= upto, at most max, in seq order
    CHECK(seqs(load(store, h1, 2, 5, 10)) == std::vector<std::uint64_t>{4, 5});
    CHECK(seqs(load(store, h1, 0, 6, 2)) == std::vector<std::uint64_t>{1, 2});
    CHECK(seqs(load(store, h1, 2, 6, 2)) == std::vector<std::uint64_t>{4, 5});
    CHECK(load(store, h1, 6, 10, 10).empty());
    CHECK(load(store, 99, 0, 6, 10).empty());
    // loading takes nothing out: the same again
    CHECK(seqs(load(store, h1, 0, 6, 10)) == seqs(all));
}

#endif

} // namespace conformance_journal
