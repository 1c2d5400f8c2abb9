#include "fixtures.hpp"

#include <herald/engine/scheduler.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <vector>

// One namespace a file: the unit tests build as one translation unit (unity).
namespace herald_test_scheduler {

using namespace std::chrono_literals;

using herald::test::fixed_time;

namespace {

// Builds deliveries by hand: one shared event, one shared webhook per id.
struct deliveries {
    std::shared_ptr<herald::prepared_event const> event = [] {
        auto p = std::make_shared<herald::prepared_event>();
        p->event = herald::object_event::created("42", {{"hostname", "a"}});
        p->event.id = "evt_test";
        p->body.body = R"({"id":"evt_test"})";
        return p;
    }();
    std::map<herald::webhook_id, std::shared_ptr<herald::webhook const>> hooks;

    herald::delivery make(herald::webhook_id hook, herald::time_point due) {
        auto& w = hooks[hook];
        if (!w) {
            auto h = std::make_shared<herald::webhook>();
            h->id = hook;
            h->name = "hook-" + std::to_string(hook);
            h->url = "http://example.com/" + std::to_string(hook);
            h->events = herald::event_type_set::all();
            w = std::move(h);
        }
        return herald::delivery{herald::make_delivery_id(), event, w, 0, due};
    }

    /// Pushes `n` deliveries for `hook` due at `due`; returns their ids in push order.
    std::vector<herald::delivery_id> push(herald::scheduler& s, herald::webhook_id hook,
                                          herald::time_point due, int n = 1,
                                          herald::time_point now = {}) {
        std::vector<herald::delivery_id> ids;
        for (int i = 0; i < n; ++i) {
            auto d = make(hook, due);
            ids.push_back(d.id);
            s.push(std::move(d), now);
        }
        return ids;
    }
};

/// Pops until nothing is ready (without calling done), returning what came out.
std::vector<herald::delivery> drain(herald::scheduler& s, herald::time_point now) {
    std::vector<herald::delivery> out;
    while (auto d = s.pop_ready(now))
        out.push_back(std::move(*d));
    return out;
}

std::size_t count_for(std::vector<herald::delivery> const& ds, herald::webhook_id id) {
    return static_cast<std::size_t>(
        std::count_if(ds.begin(), ds.end(), [id](auto const& d) { return d.target() == id; }));
}

} // namespace

TEST_CASE("scheduler hands out a delivery only once it is due", "[scheduler]") {
    herald::scheduler s;
    deliveries ds;
    auto const t0 = fixed_time();
    auto const ids = ds.push(s, 1, t0 + 5s);
    CHECK(s.pending() == 1);
    CHECK(s.in_flight() == 0);
    CHECK_FALSE(s.pop_ready(t0).has_value());
    CHECK_FALSE(s.pop_ready(t0 + 5s - 1ms).has_value());
    CHECK(s.pending() == 1);

    auto const d = s.pop_ready(t0 + 5s);
    REQUIRE(d.has_value());
    CHECK(d->id == ids[0]);
    CHECK(d->target() == 1);
    CHECK(d->due == t0 + 5s);
    CHECK(d->event == ds.event);
    CHECK(d->attempts == 0);
    CHECK(s.pending() == 0);
    CHECK(s.in_flight() == 1);
    CHECK_FALSE(s.pop_ready(t0 + 1h).has_value());

    s.done(1);
    CHECK(s.in_flight() == 0);
    CHECK(s.lanes() == 0);

    SECTION("a delivery due in the past is ready at once") {
        ds.push(s, 2, t0 - 1h);
        CHECK(s.pop_ready(t0).has_value());
    }
}

TEST_CASE("scheduler keeps FIFO order within a lane", "[scheduler][order]") {
    herald::scheduler s;
    deliveries ds;
    auto const t0 = fixed_time();
    auto const ids = ds.push(s, 1, t0, 20);

    std::vector<herald::delivery_id> popped;
    while (popped.size() < ids.size()) {
        auto const batch = drain(s, t0);
        REQUIRE_FALSE(batch.empty());
        for (auto const& d : batch)
            popped.push_back(d.id);
        for (std::size_t i = 0; i < batch.size(); ++i)
            s.done(1);
    }
    CHECK(popped == ids);
    CHECK(s.pending() == 0);
    CHECK(s.in_flight() == 0);
}

TEST_CASE("scheduler orders by due time, and same-due deliveries by push order",
          "[scheduler][order]") {
    herald::scheduler s(herald::scheduler_params{1000, 1000});
    deliveries ds;
    auto const t0 = fixed_time();
    std::vector<herald::delivery_id> early, late;
    // interleave two due times, pushed late first
    for (int i = 0; i < 50; ++i) {
        late.push_back(ds.push(s, 1, t0 + 2s)[0]);
        early.push_back(ds.push(s, 1, t0 + 1s)[0]);
    }
    CHECK(s.next_due() == t0 + 1s);
    auto const first = drain(s, t0 + 1s);
    REQUIRE(first.size() == 50);
    for (std::size_t i = 0; i < 50; ++i)
        CHECK(first[i].id == early[i]);
    CHECK(s.next_due() == t0 + 2s);
    auto const second = drain(s, t0 + 10s);
    REQUIRE(second.size() == 50);
    for (std::size_t i = 0; i < 50; ++i)
        CHECK(second[i].id == late[i]);

    SECTION("promoted together, earlier dues still come first") {
        herald::scheduler s2(herald::scheduler_params{1000, 1000});
        auto const c = ds.push(s2, 1, t0 + 3s);
        auto const a = ds.push(s2, 1, t0 + 1s);
        auto const b = ds.push(s2, 1, t0 + 2s);
        auto const all = drain(s2, t0 + 1h);
        REQUIRE(all.size() == 3);
        CHECK(all[0].id == a[0]);
        CHECK(all[1].id == b[0]);
        CHECK(all[2].id == c[0]);
    }
}

TEST_CASE("scheduler caps the attempts in flight per lane", "[scheduler][concurrency]") {
    deliveries ds;
    auto const t0 = fixed_time();

    SECTION("the default cap is 8") {
        herald::scheduler s;
        CHECK(s.params().lane_concurrency == 8);
        ds.push(s, 1, t0, 100);
        CHECK(drain(s, t0).size() == 8);
        CHECK(s.in_flight() == 8);
        CHECK(s.pending() == 92);
        CHECK_FALSE(s.pop_ready(t0 + 1h).has_value());
        s.done(1);
        CHECK(s.pop_ready(t0).has_value());
        CHECK_FALSE(s.pop_ready(t0).has_value());
        s.done(1);
        s.done(1);
        CHECK(drain(s, t0).size() == 2);
        CHECK(s.in_flight() == 8);
        CHECK(s.pending() == 89);
    }
    SECTION("a custom cap") {
        herald::scheduler s(herald::scheduler_params{3, 512});
        ds.push(s, 1, t0, 100);
        CHECK(drain(s, t0).size() == 3);
        s.done(1);
        CHECK(drain(s, t0).size() == 1);
        CHECK(s.in_flight() == 3);
    }
    SECTION("a cap of 0 is taken as 1") {
        herald::scheduler s(herald::scheduler_params{0, 0});
        CHECK(s.params().lane_concurrency == 1);
        CHECK(s.params().global_concurrency == 1);
        ds.push(s, 1, t0, 5);
        CHECK(drain(s, t0).size() == 1);
        s.done(1);
        CHECK(drain(s, t0).size() == 1);
    }
    SECTION("the cap is per lane") {
        herald::scheduler s(herald::scheduler_params{2, 512});
        for (herald::webhook_id id = 1; id <= 5; ++id)
            ds.push(s, id, t0, 10);
        auto const out = drain(s, t0);
        CHECK(out.size() == 10);
        for (herald::webhook_id id = 1; id <= 5; ++id)
            CHECK(count_for(out, id) == 2);
        CHECK(s.lanes() == 5);
    }
}

TEST_CASE("scheduler caps the attempts in flight in all", "[scheduler][concurrency]") {
    herald::scheduler s(herald::scheduler_params{8, 5});
    deliveries ds;
    auto const t0 = fixed_time();
    for (herald::webhook_id id = 1; id <= 3; ++id)
        ds.push(s, id, t0, 10);
    auto const out = drain(s, t0);
    REQUIRE(out.size() == 5);
    CHECK(s.in_flight() == 5);
    CHECK(s.pending() == 25);
    CHECK(s.has_ready());
    // the global cap does not favour one lane
    CHECK(count_for(out, 1) == 2);
    CHECK(count_for(out, 2) == 2);
    CHECK(count_for(out, 3) == 1);

    s.done(out[0].target());
    auto const next = s.pop_ready(t0);
    REQUIRE(next.has_value());
    CHECK_FALSE(s.pop_ready(t0).has_value());
    CHECK(s.in_flight() == 5);
}

TEST_CASE("scheduler lanes take turns so a busy lane cannot starve another",
          "[scheduler][fairness]") {
    deliveries ds;
    auto const t0 = fixed_time();

    for (std::size_t cap : {std::size_t{8}, std::size_t{1000}}) {
        INFO("lane cap " << cap);
        herald::scheduler s(herald::scheduler_params{cap, 1000});
        ds.push(s, 1, t0, 100); // lane A: pushed first, 100 ready
        auto const b = ds.push(s, 2, t0, 3);

        std::vector<herald::delivery> first;
        for (int i = 0; i < 6; ++i) {
            auto d = s.pop_ready(t0);
            REQUIRE(d.has_value());
            first.push_back(std::move(*d));
        }
        // every one of B's deliveries is out within the first six pops, in order
        std::vector<herald::delivery_id> b_out;
        for (auto const& d : first)
            if (d.target() == 2)
                b_out.push_back(d.id);
        CHECK(b_out == b);
        CHECK(count_for(first, 1) == 3);
    }

    SECTION("a lane that becomes ready later waits at most one turn") {
        herald::scheduler s(herald::scheduler_params{1000, 1000});
        ds.push(s, 1, t0, 100);
        REQUIRE(s.pop_ready(t0).has_value()); // lane 1 is now in the rotation
        ds.push(s, 2, t0 + 1s);
        auto const a = s.pop_ready(t0 + 1s);
        auto const b = s.pop_ready(t0 + 1s);
        REQUIRE(a.has_value());
        REQUIRE(b.has_value());
        CHECK(a->target() == 1);
        CHECK(b->target() == 2);
        CHECK(s.pending() == 98);
    }
}

TEST_CASE("scheduler: a hanging lane does not block the others", "[scheduler][fairness]") {
    herald::scheduler s; // lane cap 8
    deliveries ds;
    auto const t0 = fixed_time();
    ds.push(s, 1, t0, 50); // lane 1's endpoint hangs: its attempts never finish
    auto const hung = drain(s, t0);
    REQUIRE(hung.size() == 8);
    CHECK(count_for(hung, 1) == 8);

    // other lanes keep flowing, at later times too, while lane 1 holds its 8 slots
    for (int round = 0; round < 20; ++round) {
        auto const now = t0 + std::chrono::seconds(round);
        ds.push(s, 2, now, 3);
        ds.push(s, 3, now, 1);
        auto const out = drain(s, now);
        REQUIRE(out.size() == 4);
        CHECK(count_for(out, 1) == 0);
        CHECK(count_for(out, 2) == 3);
        CHECK(count_for(out, 3) == 1);
        for (auto const& d : out)
            s.done(d.target());
    }
    CHECK(s.in_flight() == 8);
    CHECK(s.pending() == 42);
    CHECK(s.lanes() == 1);
}

TEST_CASE("scheduler next_due is the earliest waiting due time", "[scheduler][timers]") {
    herald::scheduler s;
    deliveries ds;
    auto const t0 = fixed_time();
    CHECK_FALSE(s.next_due().has_value());
    ds.push(s, 1, t0 + 30s);
    CHECK(s.next_due() == t0 + 30s);
    ds.push(s, 2, t0 + 10s);
    CHECK(s.next_due() == t0 + 10s);
    ds.push(s, 3, t0 + 20s);
    CHECK(s.next_due() == t0 + 10s);
    CHECK_FALSE(s.has_ready());

    CHECK_FALSE(s.pop_ready(t0 + 9s).has_value());
    CHECK(s.next_due() == t0 + 10s);
    auto const d = s.pop_ready(t0 + 15s);
    REQUIRE(d.has_value());
    CHECK(d->target() == 2);
    CHECK(s.next_due() == t0 + 20s);
    CHECK(s.pop_ready(t0 + 1h)->target() == 3);
    CHECK(s.pop_ready(t0 + 1h)->target() == 1);
    CHECK_FALSE(s.next_due().has_value());
}

TEST_CASE("scheduler counts pending and in-flight deliveries", "[scheduler]") {
    herald::scheduler s(herald::scheduler_params{2, 512});
    deliveries ds;
    auto const t0 = fixed_time();
    ds.push(s, 1, t0, 3);
    ds.push(s, 2, t0 + 1min, 2);
    CHECK(s.pending() == 5);
    CHECK(s.in_flight() == 0);
    CHECK(s.lanes() == 2); // both webhooks have work, though none of it is due yet

    CHECK(drain(s, t0).size() == 2);
    CHECK(s.pending() == 3);
    CHECK(s.in_flight() == 2);
    CHECK(s.lanes() == 2);
    CHECK(s.has_ready() == false); // lane 1 is at its cap

    s.done(1);
    CHECK(s.in_flight() == 1);
    CHECK(s.has_ready());
    CHECK(drain(s, t0 + 1min).size() == 3);
    CHECK(s.pending() == 0);
    CHECK(s.in_flight() == 4);
    s.done(1);
    s.done(1);
    s.done(2);
    s.done(2);
    CHECK(s.in_flight() == 0);
    CHECK(s.lanes() == 0);
}

TEST_CASE("scheduler take_all returns everything not in flight", "[scheduler][shutdown]") {
    herald::scheduler s(herald::scheduler_params{2, 512});
    deliveries ds;
    auto const t0 = fixed_time();
    auto const lane1 = ds.push(s, 1, t0, 5);      // 2 go in flight, 3 ready
    auto const lane2 = ds.push(s, 2, t0 + 1h, 4); // waiting on the timer
    auto const taken = drain(s, t0);
    REQUIRE(taken.size() == 2);

    auto const rest = s.take_all();
    CHECK(rest.size() == 7);
    CHECK(count_for(rest, 1) == 3);
    CHECK(count_for(rest, 2) == 4);
    std::vector<herald::delivery_id> rest_ids;
    for (auto const& d : rest)
        rest_ids.push_back(d.id);
    std::sort(rest_ids.begin(), rest_ids.end());
    std::vector<herald::delivery_id> expected(lane1.begin() + 2, lane1.end());
    expected.insert(expected.end(), lane2.begin(), lane2.end());
    std::sort(expected.begin(), expected.end());
    CHECK(rest_ids == expected);

    CHECK(s.pending() == 0);
    CHECK(s.in_flight() == 2);
    CHECK_FALSE(s.next_due().has_value());
    CHECK_FALSE(s.has_ready());
    CHECK_FALSE(s.pop_ready(t0 + 2h).has_value());
    CHECK(s.take_all().empty());

    SECTION("in-flight accounting still works afterwards") {
        s.done(1);
        CHECK(s.in_flight() == 1);
        s.done(1);
        CHECK(s.in_flight() == 0);
        CHECK(s.lanes() == 0);
    }
    SECTION("the lane still honours its cap for new work") {
        ds.push(s, 1, t0, 3);
        CHECK_FALSE(s.pop_ready(t0).has_value()); // 2 of 2 still in flight
        s.done(1);
        CHECK(drain(s, t0).size() == 1);
        CHECK(s.in_flight() == 2);
        CHECK(s.pending() == 2);
    }
}

TEST_CASE("take_unstartable removes what cannot start before a deadline, and keeps the rest",
          "[scheduler][budget][shutdown]") {
    herald::health_params h;
    h.failure_threshold = 1;
    h.cool_down = 30s;
    herald::scheduler_params p{2, 512};
    p.stall_after = 1s;
    herald::scheduler s(p, h, 100);
    deliveries ds;
    auto const t0 = fixed_time();
    // Lane 2: both slots taken at t0 and nothing finishes: stalled from t0 + 1s.
    ds.push(s, 2, t0, 2, t0);
    auto stuck = drain(s, t0);
    REQUIRE(stuck.size() == 2);
    // Lane 1: its circuit opens at t0 and may probe only at t0 + 30s.
    ds.push(s, 1, t0, 1, t0);
    REQUIRE(s.pop_ready(t0));
    REQUIRE(s.done(1, herald::scheduler::attempt_result::failed, t0).opened);
    ds.push(s, 1, t0, 4, t0);
    ds.push(s, 2, t0, 3, t0);
    // Lane 3: healthy, one due now, two due in an hour.
    auto const due_now = ds.push(s, 3, t0, 1, t0);
    ds.push(s, 3, t0 + 1h, 2, t0);
    REQUIRE(s.pending() == 10);
    auto const now = t0 + 2s;

    SECTION("a deadline before the probe and the hour: only lane 3's due one is kept") {
        auto lost = s.take_unstartable(now, now + 5s);
        std::map<herald::webhook_id, int> by_lane;
        for (auto const& d : lost)
            ++by_lane[d.target()];
        CHECK(by_lane[1] == 4); // the circuit stays open past the deadline
        CHECK(by_lane[2] == 3); // stalled: nothing it holds can start
        CHECK(by_lane[3] == 2); // due after the deadline
        CHECK(s.pending() == 1);
        CHECK(s.parked() + s.budgeted() == 1);
        auto d = s.pop_ready(now);
        REQUIRE(d);
        CHECK(d->id == due_now[0]);
        CHECK_FALSE(s.pop_ready(now + 1h));
    }
    SECTION("a deadline after the probe and the hour: only the stalled lane's go") {
        auto lost = s.take_unstartable(now, t0 + 2h);
        REQUIRE(lost.size() == 3);
        for (auto const& d : lost)
            CHECK(d.target() == 2);
        CHECK(s.pending() == 7);
        CHECK(s.held() == 4); // lane 1 keeps its backlog for the probe
    }
    SECTION("the counts stay right for work that comes after") {
        REQUIRE(s.take_unstartable(now, now + 5s).size() == 9);
        for (auto const& d : stuck)
            s.done(d.target(), herald::scheduler::attempt_result::delivered, now);
        ds.push(s, 2, now, 1, now);
        CHECK(s.pending() == 2);
        CHECK(s.budgeted() == 2);
        auto const went = drain(s, now);
        CHECK(went.size() == 2);
        CHECK(s.pending() == 0);
        CHECK(s.in_flight() == 2);
    }
}

} // namespace herald_test_scheduler

// ---- The pending budget: shares, parking (issue 12, defect 0) ----
namespace herald_test_scheduler {

TEST_CASE("without a budget nothing is parked", "[scheduler][budget]") {
    herald::scheduler s(herald::scheduler_params{2, 512});
    deliveries ds;
    ds.push(s, 1, fixed_time(), 100);
    CHECK(s.budgeted() == 100);
    CHECK(s.parked() == 0);
    CHECK(s.parks(1, fixed_time()) == herald::park_reason::none);
}

TEST_CASE("a lane alone may fill the whole budget", "[scheduler][budget]") {
    herald::scheduler s(herald::scheduler_params{2, 512}, {}, 16);
    deliveries ds;
    auto const t0 = fixed_time();
    ds.push(s, 1, t0, 16, t0);
    CHECK(s.budgeted() == 16); // the dispatcher's intake stops here: backpressure
    CHECK(s.parked() == 0);
    CHECK(s.parks(1, t0) == herald::park_reason::over_share);
    ds.push(s, 1, t0, 1, t0); // one event's fan-out may pass it
    CHECK(s.budgeted() == 16);
    CHECK(s.parked() == 1);
    CHECK(s.pending() == 17);
}

TEST_CASE("lanes share the budget: one backlog leaves room for the others", "[scheduler][budget]") {
    herald::scheduler s(herald::scheduler_params{2, 512}, {}, 16);
    deliveries ds;
    auto const t0 = fixed_time();
    ds.push(s, 1, t0 + 1h, 8, t0); // alone: its share is the whole budget
    CHECK(s.share() == 16);
    CHECK(s.share(1) == 8); // another lane coming: half each
    // A second lane arrives: the share is now 8, and lane 1 holds it all.
    CHECK(s.parks(1, t0) == herald::park_reason::none); // alone it still could
    ds.push(s, 2, t0 + 1h, 1, t0);
    CHECK(s.share() == 8);
    CHECK(s.parks(1, t0) == herald::park_reason::over_share);
    ds.push(s, 1, t0 + 1h, 100, t0);
    CHECK(s.budgeted() == 9);
    CHECK(s.parked() == 100);
    CHECK(s.waiting(1) == std::pair<std::size_t, std::size_t>{108, 100});
    // Lane 2 still gets its share.
    ds.push(s, 2, t0 + 1h, 7, t0);
    CHECK(s.budgeted() == 16);
    CHECK(s.parked() == 100);
    CHECK(s.waiting(2) == std::pair<std::size_t, std::size_t>{8, 0});
    // A lane never gets less than its concurrency.
    herald::scheduler tiny(herald::scheduler_params{4, 512}, {}, 4);
    ds.push(tiny, 1, t0, 1, t0);
    ds.push(tiny, 2, t0, 1, t0);
    CHECK(tiny.share() == 4);
}

TEST_CASE("a lane's parked deliveries leave first, and all counts return to zero",
          "[scheduler][budget]") {
    herald::scheduler s(herald::scheduler_params{1, 512}, {}, 4);
    deliveries ds;
    auto const t0 = fixed_time();
    ds.push(s, 1, t0, 10, t0);
    CHECK(s.budgeted() == 4);
    CHECK(s.parked() == 6);
    for (int i = 0; i < 10; ++i) {
        auto d = s.pop_ready(t0);
        REQUIRE(d);
        if (i < 6)
            CHECK(s.budgeted() == 4); // its place in the budget is the last thing it gives up
        s.done(1, herald::scheduler::attempt_result::delivered, t0);
    }
    CHECK(s.budgeted() == 0);
    CHECK(s.parked() == 0);
    CHECK(s.pending() == 0);
    CHECK(s.lanes() == 0);
}

TEST_CASE("a lane whose circuit opens leaves the budget", "[scheduler][budget][health]") {
    herald::health_params h;
    h.failure_threshold = 2;
    h.cool_down = 30s;
    herald::scheduler s(herald::scheduler_params{1, 512}, h, 100);
    deliveries ds;
    auto const t0 = fixed_time();
    ds.push(s, 1, t0, 12, t0);
    ds.push(s, 2, t0 + 1h, 3, t0);
    CHECK(s.budgeted() == 15);
    for (int i = 0; i < 2; ++i) {
        auto d = s.pop_ready(t0);
        REQUIRE(d);
        REQUIRE(d->target() == 1);
        auto const fx = s.done(1, herald::scheduler::attempt_result::failed, t0);
        CHECK(fx.opened == (i == 1));
    }
    // Its ten waiting deliveries are parked; the other lane keeps its place.
    CHECK(s.parked() == 10);
    CHECK(s.budgeted() == 3);
    CHECK(s.parks(1, t0) == herald::park_reason::circuit);
    ds.push(s, 1, t0, 5, t0);
    CHECK(s.parked() == 15);
    CHECK(s.budgeted() == 3);
    CHECK(s.parks(2, t0) == herald::park_reason::none);
    CHECK(s.held() == 15);
    CHECK(s.behind() == 0);
    // The probe succeeds: what it held drains first, and what comes meanwhile waits with it.
    auto const t1 = t0 + 31s;
    auto probe = s.pop_ready(t1);
    REQUIRE(probe);
    CHECK(probe->target() == 1);
    s.done(1, herald::scheduler::attempt_result::delivered, t1);
    CHECK(s.parks(1, t1) == herald::park_reason::draining);
    ds.push(s, 1, t1, 1, t1); // behind what it held: it answers, so it is not shed
    CHECK(s.budgeted() == 3);
    CHECK(s.held() == 14); // the probe was one of them
    CHECK(s.behind() == 1);
    for (int i = 0; i < 15; ++i) {
        auto d = s.pop_ready(t1);
        REQUIRE(d);
        REQUIRE(d->target() == 1);
        s.done(1, herald::scheduler::attempt_result::delivered, t1);
    }
    // Drained: new deliveries count against the budget again.
    CHECK(s.held() == 0);
    CHECK(s.behind() == 0);
    CHECK(s.parks(1, t1) == herald::park_reason::none);
    ds.push(s, 1, t1 + 1h, 1, t1);
    CHECK(s.budgeted() == 4);
    CHECK(s.parked() == 0);
}

TEST_CASE("a lane whose slots are all taken and that finishes nothing is stalled",
          "[scheduler][budget]") {
    herald::scheduler_params p{2, 512};
    p.stall_after = 1s;
    herald::scheduler s(p, {}, 100);
    deliveries ds;
    auto const t0 = fixed_time();
    ds.push(s, 1, t0, 2, t0);
    REQUIRE(drain(s, t0).size() == 2); // both slots taken at t0, nothing finishes
    ds.push(s, 1, t0 + 1h, 5, t0 + 500ms);
    CHECK(s.budgeted() == 5); // not yet a second without progress
    CHECK(s.parks(1, t0 + 999ms) == herald::park_reason::none);
    CHECK(s.parks(1, t0 + 1s) == herald::park_reason::stalled);
    ds.push(s, 1, t0 + 1h, 1, t0 + 1s);
    CHECK(s.budgeted() == 0); // everything it held leaves the budget
    CHECK(s.parked() == 6);
    CHECK(s.held() == 6);
    // One attempt finishes: progress, so it is no longer stalled, but what it held is sent
    // before anything else.
    s.done(1, herald::scheduler::attempt_result::failed, t0 + 2s);
    CHECK(s.parks(1, t0 + 2s) == herald::park_reason::draining);
    // A lane with a free slot is never stalled: it can still send.
    CHECK(s.parks(1, t0 + 1h) == herald::park_reason::draining);
}

TEST_CASE("refresh_stalls finds a stalled lane without a push, and says when the next stalls",
          "[scheduler][budget]") {
    herald::scheduler_params p{1, 512};
    p.stall_after = 1s;
    herald::scheduler s(p, {}, 100);
    deliveries ds;
    auto const t0 = fixed_time();
    ds.push(s, 1, t0, 4, t0);
    ds.push(s, 2, t0, 1, t0);
    REQUIRE(drain(s, t0).size() == 2); // one in flight per lane
    CHECK(s.budgeted() == 3);          // lane 2 has nothing waiting
    CHECK(s.refresh_stalls(t0 + 500ms) == t0 + 1s);
    CHECK(s.budgeted() == 3);
    CHECK_FALSE(s.refresh_stalls(t0 + 1s).has_value()); // lane 1 stalled; lane 2 has nothing
    CHECK(s.budgeted() == 0);
    CHECK(s.held() == 3);
    // A lane below its cap is dropped from the watch list.
    s.done(2, herald::scheduler::attempt_result::delivered, t0 + 1s);
    CHECK_FALSE(s.refresh_stalls(t0 + 2s).has_value());
}

TEST_CASE("a working lane beyond its share waits behind, apart from what failing lanes hold",
          "[scheduler][budget]") {
    herald::health_params h;
    h.failure_threshold = 1;
    herald::scheduler s(herald::scheduler_params{1, 512}, h, 8);
    deliveries ds;
    auto const t0 = fixed_time();
    ds.push(s, 1, t0, 1, t0);
    ds.push(s, 2, t0, 1, t0);
    REQUIRE(drain(s, t0).size() == 2);
    s.done(2, herald::scheduler::attempt_result::failed, t0); // lane 2's circuit opens
    ds.push(s, 2, t0 + 1h, 10, t0);                           // all held: its circuit is open
    ds.push(s, 1, t0 + 1h, 10, t0); // a share of 8 over two lanes with work: 4
    CHECK(s.budgeted() == 4);
    CHECK(s.behind() == 6);
    CHECK(s.held() == 10);
    CHECK(s.parked() == 16);
    CHECK(s.parks(1, t0) == herald::park_reason::over_share);
    CHECK(s.parks(2, t0) == herald::park_reason::circuit);
}

TEST_CASE("take_all clears the budget's counts", "[scheduler][budget][shutdown]") {
    herald::scheduler s(herald::scheduler_params{1, 512}, {}, 4);
    deliveries ds;
    auto const t0 = fixed_time();
    ds.push(s, 1, t0, 10, t0);
    REQUIRE(s.pop_ready(t0));
    CHECK(s.take_all().size() == 9);
    CHECK(s.budgeted() == 0);
    CHECK(s.parked() == 0);
    CHECK(s.pending() == 0);
    s.done(1, herald::scheduler::attempt_result::delivered, t0);
    CHECK(s.lanes() == 0);
}

} // namespace herald_test_scheduler
