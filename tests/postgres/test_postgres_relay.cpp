// herald-relay processes on one PostgreSQL database, against a real loopback receiver: three
// relays with one killed by SIGKILL mid-run (its leases taken over by the others), the database
// restarted mid-run (pg_ctl restart -m fast), and a webhook deactivated in one process that
// stops the deliveries of another within a second.
#include "loopback_server.hpp"
#include "pg_cluster.hpp"
#include "process.hpp"
#include "temp_db.hpp"

#include <herald/postgres/postgres_store.hpp>

#include <catch2/catch.hpp>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#ifdef HERALD_RELAY_PATH

namespace postgres_relay_tests {

using namespace std::chrono_literals;
using herald::test::background_relay;
using herald::test::temp_database;
using herald::test::temp_dir;

namespace {

using herald::test::poll_until;
using herald::test::read_text_file;

/// Event lines `evt_<prefix>_<i>` for i in [0, n).
std::string event_lines(std::string const& prefix, int n) {
    std::string out;
    for (int i = 0; i < n; ++i)
        out += R"({"type": "create", "id": "evt_)" + prefix + "_" + std::to_string(i) +
               R"(", "object_id": )" + std::to_string(i) + R"(, "after": {"n": )" +
               std::to_string(i) + "}}\n";
    return out;
}

/// What the receiver saw: every request's webhook-id, in arrival order, with its time.
struct seen_requests {
    mutable std::mutex mutex;
    std::vector<std::pair<std::string, std::chrono::steady_clock::time_point>> all;

    void add(std::string id) {
        std::lock_guard lock(mutex);
        all.emplace_back(std::move(id), std::chrono::steady_clock::now());
    }
    std::size_t size() const {
        std::lock_guard lock(mutex);
        return all.size();
    }
    std::map<std::string, int> per_id() const {
        std::lock_guard lock(mutex);
        std::map<std::string, int> out;
        for (auto const& [id, at] : all)
            ++out[id];
        return out;
    }
    /// Records every request to /hook and answers 204 after `delay`.
    void answer_on(herald::test::loopback_server& server, std::chrono::milliseconds delay) {
        server.on("/hook", [this, delay](herald::test::received_request const& r) {
            add(r.header("webhook-id"));
            herald::test::reply out;
            out.delay = delay;
            return out;
        });
    }
    std::set<std::string> ids() const {
        std::set<std::string> out;
        for (auto const& [id, n] : per_id())
            out.insert(id);
        return out;
    }
};

/// GET `target` from a relay's admin server (its URL as it printed it), with the bearer token;
/// the status and the body.
std::pair<unsigned, std::string> admin_get(std::string const& err, std::string const& target) {
    namespace http = boost::beast::http;
    auto const at = err.find("admin page and API on http://");
    if (at == std::string::npos)
        return {0, "no admin URL in: " + err};
    auto const host_at = at + std::string_view("admin page and API on http://").size();
    auto const colon = err.find(':', host_at);
    auto const slash = err.find('/', colon);
    auto const host = err.substr(host_at, colon - host_at);
    auto const port = err.substr(colon + 1, slash - colon - 1);
    boost::asio::io_context io;
    boost::asio::ip::tcp::socket sock(io);
    boost::asio::ip::tcp::resolver resolver(io);
    boost::asio::connect(sock, resolver.resolve(host, port));
    http::request<http::empty_body> req(http::verb::get, target, 11);
    req.set(http::field::host, host);
    req.set(http::field::authorization, "Bearer relay-test-token-0123456789abcdef");
    http::write(sock, req);
    boost::beast::flat_buffer buf;
    http::response<http::string_body> res;
    http::read(sock, buf, res);
    return {res.result_int(), res.body()};
}

/// A relay on the database as a long-running service (--admin: it runs until SIGTERM).
struct relay_setup {
    temp_dir dir;
    std::string conninfo, hooks, token;

    relay_setup(temp_database const& db, std::string const& url) {
        conninfo = db.conninfo();
        hooks = dir.file("hooks.json");
        token = dir.file("token");
        std::ofstream(hooks) << R"([{"name": "receiver", "url": ")" << url
                             << R"(", "events": ["create", "update", "delete"]}])";
        std::ofstream(token) << "relay-test-token-0123456789abcdef\n";
    }

    std::vector<std::string> args(std::vector<std::string> extra = {}) const {
        std::vector<std::string> a = {HERALD_RELAY_PATH,
                                      "--store",
                                      "postgres:" + conninfo,
                                      "--log",
                                      "postgres:" + conninfo,
                                      "--webhooks",
                                      hooks,
                                      "--allow-private",
                                      "127.0.0.1/32",
                                      "--admin",
                                      "127.0.0.1:0",
                                      "--admin-token-file",
                                      token,
                                      "--lease",
                                      "8s",
                                      "--connect-timeout",
                                      "1s",
                                      "--timeout",
                                      "2s",
                                      "--retry-schedule",
                                      "0s,100ms,200ms,400ms,800ms,1s,2s,4s"};
        a.insert(a.end(), extra.begin(), extra.end());
        return a;
    }

    /// A relay reading `lines` (a file), standard error to `name`.err.
    background_relay start(std::string const& name, std::string const& lines) {
        auto const in = dir.file(name + ".jsonl");
        std::ofstream(in) << lines;
        return background_relay(args(), in, dir.file(name + ".err"));
    }
    std::string err(std::string const& name) { return read_text_file(dir.file(name + ".err")); }
};

} // namespace

TEST_CASE("three relays on one database, one killed by SIGKILL mid-run: every event arrives, "
          "the duplicates are the killed relay's deliveries in flight",
          "[postgres][relay][crash]") {
    constexpr int per_relay = 3334; // 10,002 events in all
    temp_database db;
    herald::test::loopback_server server(2);
    seen_requests seen;
    server.on("/hook", [&](herald::test::received_request const& r) {
        auto const id = r.header("webhook-id");
        seen.add(id);
        herald::test::reply out;
        // The relay to be killed is slow, so that it is mid-run when it dies.
        if (id.starts_with("evt_b_"))
            out.delay = 15ms;
        return out;
    });
    relay_setup setup(db, server.url("/hook"));
    std::set<std::string> expected;
    for (auto const* p : {"a", "b", "c"})
        for (int i = 0; i < per_relay; ++i)
            expected.insert(std::string("evt_") + p + "_" + std::to_string(i));

    auto a = setup.start("a", event_lines("a", per_relay));
    // the first creates the webhook; the others find it (or race for it and update it)
    REQUIRE(
        poll_until([&] { return setup.err("a").find("admin page") != std::string::npos; }, 60s));
    auto b = setup.start("b", event_lines("b", per_relay));
    auto c = setup.start("c", event_lines("c", per_relay));

    // b has taken all its events (committed) and sent part of them: kill it
    REQUIRE(poll_until(
        [&] {
            auto const ids = seen.ids();
            return setup.err("b").find("events accepted") != std::string::npos &&
                   std::count_if(ids.begin(), ids.end(),
                                 [](auto const& id) { return id.starts_with("evt_b_"); }) > 300;
        },
        120s));
    auto const b_pid = b.pid;
    INFO(setup.err("b"));
    CHECK(b.kill_now() == 128 + SIGKILL);
    auto const before_kill = seen.per_id();
    // what b held when it died: those are re-sent by the others once the lease lapses
    auto const held =
        std::stoul(db.value("SELECT count(*) FROM herald_deliveries WHERE lease_owner LIKE '%:" +
                            std::to_string(b_pid) + ":%'"));
    CHECK(held > 0);

    bool const all_arrived = poll_until(
        [&] {
            auto const ids = seen.ids();
            return std::includes(ids.begin(), ids.end(), expected.begin(), expected.end());
        },
        180s);
    INFO(setup.err("a"));
    INFO(setup.err("c"));
    CHECK(all_arrived);
    bool const queue_empty =
        poll_until([&] { return db.value("SELECT count(*) FROM herald_deliveries") == "0"; }, 30s);
    CHECK(queue_empty);
    CHECK(a.stop() == 0);
    CHECK(c.stop() == 0);

    // At least once, nothing unknown. An event sent more than once was either retried (an
    // attempt that failed, a timeout on a slow machine: it is in the shared log) or one of b's
    // sent before the kill (in flight, or delivered without its completion committed); those
    // are at most what b held.
    auto const per = seen.per_id();
    CHECK(per.size() == expected.size());
    auto const retrying = std::to_string(static_cast<int>(herald::outcome::retrying));
    std::set<std::string> retried;
    for (auto const& row :
         db.query("SELECT DISTINCT event_id FROM herald_log WHERE outcome = " + retrying))
        retried.insert(row.at(0));
    std::size_t by_kill = 0, by_retry = 0;
    for (auto const& [id, n] : per) {
        if (n == 1)
            continue;
        if (retried.contains(id)) {
            by_retry += static_cast<std::size_t>(n - 1);
            continue;
        }
        by_kill += static_cast<std::size_t>(n - 1);
        CHECK(id.starts_with("evt_b_"));
        CHECK(before_kill.contains(id));
    }
    CHECK(by_kill <= held);
    WARN(held << " deliveries held by the killed relay, " << by_kill
              << " sent again after the kill, " << by_retry << " more by retries, " << per.size()
              << " events");
    CHECK(db.value("SELECT count(*) FROM herald_events") == "0"); // b's events too
    // every delivery ends in the shared log: each event has a delivered attempt there
    auto const delivered = std::to_string(static_cast<int>(herald::outcome::delivered));
    CHECK(db.value("SELECT count(DISTINCT event_id) FROM herald_log WHERE outcome = " +
                   delivered) == std::to_string(expected.size()));
}

TEST_CASE("the database restarted mid-run: the relay keeps going and loses nothing it took",
          "[postgres][relay][restart]") {
    char const* cluster = std::getenv("PG_CLUSTER_DIR");
    REQUIRE(cluster != nullptr); // set by ctest's fixture
    constexpr int events = 2000;
    temp_database db;
    herald::test::loopback_server server(2);
    seen_requests seen;
    seen.answer_on(server, 3ms);
    relay_setup setup(db, server.url("/hook"));
    auto relay = setup.start("r", event_lines("r", events));
    REQUIRE(poll_until([&] { return seen.size() > 300; }, 120s));
    auto const restarted = std::system(("\"" + std::string(HERALD_SOURCE_DIR) +
                                        "/scripts/pg-cluster\" restart \"" + cluster + "\"")
                                           .c_str());
    REQUIRE(restarted == 0);
    bool const all = poll_until([&] { return seen.ids().size() == std::size_t(events); }, 180s);
    INFO(setup.err("r"));
    CHECK(all);
    CHECK(
        poll_until([&] { return db.value("SELECT count(*) FROM herald_deliveries") == "0"; }, 60s));
    CHECK(relay.stop() == 0);
    auto const err = setup.err("r");
    CHECK(err.find(std::to_string(events) + " events accepted") != std::string::npos);
    CHECK(err.find("not (reported above)") == std::string::npos); // no publish refused
    auto const delivered = std::to_string(static_cast<int>(herald::outcome::delivered));
    CHECK(db.value("SELECT count(DISTINCT event_id) FROM herald_log WHERE outcome = " +
                   delivered) == std::to_string(events));
}

TEST_CASE("a webhook deactivated through one process stops the deliveries of another within "
          "a second",
          "[postgres][relay][table]") {
    temp_database db;
    herald::test::loopback_server server(2);
    seen_requests seen;
    seen.answer_on(server, 2ms);
    relay_setup setup(db, server.url("/hook"));
    // The relay reads a FIFO the test writes one event into every 10 ms.
    auto const fifo = setup.dir.file("events.fifo");
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    // Opened first, read-write (which never waits): the relay's open for reading, in
    // posix_spawn's child, then does not wait either.
    int const fd = ::open(fifo.c_str(), O_RDWR);
    REQUIRE(fd >= 0);
    background_relay relay(setup.args(), fifo, setup.dir.file("r.err"));
    std::atomic<bool> writing{true};
    std::thread feeder([&] {
        ::signal(SIGPIPE, SIG_IGN);
        for (int i = 0; writing; ++i) {
            auto const line = event_lines("f" + std::to_string(i), 1);
            if (::write(fd, line.data(), line.size()) < 0)
                break;
            std::this_thread::sleep_for(10ms);
        }
    });
    bool const flowing = poll_until([&] { return seen.size() >= 30; }, 60s);

    // This process is another one on the database: it deactivates the webhook.
    herald::postgres_store_params p;
    p.conninfo = db.conninfo();
    p.addresses.allow.push_back(herald::cidr::parse("127.0.0.1/32", "allow").value());
    auto mine = herald::postgres_store::open(p);
    REQUIRE(mine.has_value());
    auto const hooks = mine->list();
    REQUIRE(hooks.size() == 1);
    herald::webhook_params off = hooks[0];
    off.active = false;
    REQUIRE(mine->update(hooks[0].id, off).has_value());
    auto const deactivated = std::chrono::steady_clock::now();
    std::this_thread::sleep_for(2500ms);
    writing = false;
    feeder.join();
    ::close(fd);
    // The admin API answers from the shared log: ids a JavaScript number holds exactly, and
    // each entry found again by its id.
    auto const [status, body] = admin_get(setup.err("r"), "/api/logs?limit=5");
    CHECK(status == 200);
    auto const page = boost::json::parse(body);
    auto const& entries = page.at("entries").as_array();
    CHECK(entries.size() == 5);
    for (auto const& e : entries) {
        auto const id = e.at("id").to_number<std::uint64_t>();
        CHECK(id < (std::uint64_t(1) << 53));
        auto const [one_status, one] = admin_get(setup.err("r"), "/api/logs/" + std::to_string(id));
        CHECK(one_status == 200);
        CHECK(boost::json::parse(one).at("id").to_number<std::uint64_t>() == id);
    }
    CHECK(relay.stop() == 0);
    INFO(setup.err("r"));
    REQUIRE(flowing);
    std::size_t after_a_second = 0;
    {
        std::lock_guard lock(seen.mutex);
        for (auto const& [id, at] : seen.all)
            if (at > deactivated + 1s)
                ++after_a_second;
    }
    CHECK(after_a_second == 0);
}

} // namespace postgres_relay_tests

#endif
