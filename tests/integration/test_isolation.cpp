// Isolation under sustained load (issue 12, defect 0): a webhook whose endpoint refuses
// connections and one whose endpoint never answers must not stall a healthy one, however long
// the load lasts, and every delivery of theirs must still end in the log.
#include "harness.hpp"
#include "loopback_server.hpp"

#include <boost/asio/ip/tcp.hpp>

#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
#include <set>

namespace herald_test_isolation {

using namespace herald;
using namespace herald::test;
using steady = std::chrono::steady_clock;

/// A log sink that keeps, per (event, webhook), the outcome of every entry recorded.
struct tally_log {
    struct state {
        std::mutex m;
        std::map<std::pair<std::string, webhook_id>, std::vector<outcome>> outcomes;
        std::map<std::string, std::size_t> errors; // error text before the first ':' -> count
        std::uint64_t seq = 0;
    };
    std::shared_ptr<state> s = std::make_shared<state>();

    std::uint64_t record(log_entry e) {
        std::lock_guard lock(s->m);
        s->outcomes[{e.event_id, e.webhook}].push_back(e.result);
        if (!e.error.empty())
            ++s->errors[e.error.substr(0, e.error.find(':'))];
        return ++s->seq;
    }
    log_page query(log_query const&) const { return {}; }
};

using dispatcher_type =
    basic_dispatcher<memory_store, channel_source, json_serializer, http_transport, tally_log>;

std::uint16_t refused_port() {
    boost::asio::io_context io;
    boost::asio::ip::tcp::acceptor a(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
    auto const port = a.local_endpoint().port();
    a.close();
    return port;
}

webhook_params hook(std::string name, std::string url) {
    webhook_params p;
    p.name = std::move(name);
    p.url = std::move(url);
    p.events = event_type_set::all();
    p.timeout = 2s;
    return p;
}

struct run_result {
    std::size_t events = 0, refused_publishes = 0;
    std::vector<double> latency_ms; // the healthy webhook's, publish to receipt
    double longest_gap_ms = 0;      // between two receipts at the healthy webhook
    dispatcher_stats stats;
    std::size_t max_parked = 0;
};

/**
 * Publishes `rate` events a second for `length` to the webhooks `urls` (the first one healthy,
 * on `healthy`), then waits for the healthy one to have them all and stops.
 */
run_result run_load(dispatcher_params p, std::vector<std::pair<std::string, std::string>> urls,
                    loopback_server& healthy, int rate, std::chrono::seconds length, tally_log log,
                    std::vector<webhook_id>& ids) {
    http_transport_params tp;
    tp.addresses.allow.push_back(cidr::parse("127.0.0.1/32").value());
    address_policy loopback;
    loopback.allow.push_back(cidr::parse("127.0.0.1/32").value());
    boost::asio::io_context io;
    dispatcher_type d(
        io.get_executor(), p,
        {.store = memory_store({loopback, false}), .transport = http_transport(tp), .log = log});
    for (auto const& [name, url] : urls)
        ids.push_back(d.store().create(hook(name, url)).value().id);
    d.async_run(boost::asio::detached);
    std::thread thread([&] { io.run(); }), second([&] { io.run(); });

    run_result out;
    std::map<std::string, steady::time_point> published;
    auto const start = steady::now();
    auto const tick = 10ms;
    int const per_tick = std::max(1, rate / 100);
    for (auto next = start; next < start + length; next += tick) {
        std::this_thread::sleep_until(next);
        for (int i = 0; i < per_tick; ++i) {
            auto const now = steady::now();
            auto r = d.publish(object_event::created(std::to_string(out.events), {{"n", 1}}));
            ++out.events;
            if (r)
                published[*r] = now;
            else
                ++out.refused_publishes;
        }
        out.max_parked = std::max<std::size_t>(out.max_parked, d.stats().parked);
    }
    healthy.wait_for(published.size(), "/ok", 10s);
    out.stats = d.stats();
    auto f = d.async_stop(500ms, boost::asio::use_future);
    REQUIRE(f.wait_for(30s) == std::future_status::ready);
    thread.join();
    second.join();

    auto const got = healthy.requests("/ok");
    std::optional<steady::time_point> last;
    for (auto const& r : got) {
        auto it = published.find(r.header("webhook-id"));
        REQUIRE(it != published.end());
        out.latency_ms.push_back(
            std::chrono::duration<double, std::milli>(r.at - it->second).count());
        if (last)
            out.longest_gap_ms =
                std::max(out.longest_gap_ms,
                         std::chrono::duration<double, std::milli>(r.at - *last).count());
        last = r.at;
    }
    CHECK(got.size() == published.size());
    std::sort(out.latency_ms.begin(), out.latency_ms.end());
    return out;
}

double percentile(std::vector<double> const& sorted, double q) {
    if (sorted.empty())
        return 0;
    return sorted[std::min(sorted.size() - 1, std::size_t(q * double(sorted.size())))];
}

TEST_CASE("a refusing and a hanging endpoint never stall a healthy one under sustained load",
          "[integration][isolation][slow]") {
    loopback_server healthy(2);
    healthy.on("/ok", [](received_request const&) { return reply{.status = 200}; });
    loopback_server hanging(2);
    hanging.on("/hang", [](received_request const&) { return reply{.hang = true}; });

    // A small budget, so that the old global stall would come within a second (two bad lanes
    // growing by 800 deliveries a second), and a small parked bound, so that shedding happens.
    dispatcher_params p;
    p.retry.schedule = {0ms, 200ms, 1s};
    p.max_pending = 512;
    p.max_parked = 2048;
    tally_log log;
    std::vector<webhook_id> ids;
    auto const r =
        run_load(p,
                 {{"healthy", healthy.url("/ok")},
                  {"refusing", "http://127.0.0.1:" + std::to_string(refused_port()) + "/x"},
                  {"hanging", hanging.url("/hang")}},
                 healthy, 400, 20s, log, ids);

    WARN("events " << r.events << ", healthy p50 " << percentile(r.latency_ms, 0.5) << " ms, p99 "
                   << percentile(r.latency_ms, 0.99) << " ms, max " << percentile(r.latency_ms, 1.0)
                   << " ms, longest gap " << r.longest_gap_ms << " ms; parked at most "
                   << r.max_parked << ", shed " << r.stats.shed);
    // Nothing was refused at the door, and the healthy webhook never waited a second.
    CHECK(r.refused_publishes == 0);
    CHECK(r.latency_ms.size() == r.events);
    CHECK(percentile(r.latency_ms, 1.0) < 1000);
    CHECK(r.longest_gap_ms < 1000);
    // The bad lanes' backlog was parked, bounded, and shed beyond the bound.
    CHECK(r.max_parked > 0);
    CHECK(r.max_parked <= 3 * p.max_parked + p.max_pending + 12); // see the dispatcher's test
    CHECK(r.stats.shed > 0);

    // Every delivery of every webhook ends in the log with a final outcome.
    std::lock_guard lock(log.s->m);
    std::size_t shed_logged = 0;
    for (auto const& [key, outcomes] : log.s->outcomes)
        REQUIRE(!outcomes.empty());
    std::set<std::string> events;
    for (auto const& [key, outcomes] : log.s->outcomes)
        events.insert(key.first);
    CHECK(events.size() == r.events);
    for (auto const& e : events) {
        for (auto id : ids) {
            auto it = log.s->outcomes.find({e, id});
            REQUIRE(it != log.s->outcomes.end());
            auto const last = it->second.back();
            CHECK((last == outcome::delivered || last == outcome::failed));
            if (id == ids[0])
                CHECK(last == outcome::delivered);
            else
                CHECK(last == outcome::failed);
        }
    }
    for (auto const& [text, n] : log.s->errors)
        if (text.rfind("shed", 0) == 0)
            shed_logged += n;
    CHECK(shed_logged == r.stats.shed);
}

} // namespace herald_test_isolation
