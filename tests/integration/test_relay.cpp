// herald-relay run as a process, the way non-C++ users drive herald.
#include "loopback_server.hpp"
#include "process.hpp"
#include "temp_db.hpp"

#include <catch2/catch.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#ifdef HERALD_RELAY_PATH

using namespace herald::test;
using namespace std::chrono_literals;

namespace {

struct temp_file {
    std::string path;
    explicit temp_file(std::string const& content) {
        char name[] = "/tmp/herald-relay-test-XXXXXX";
        int fd = mkstemp(name);
        REQUIRE(fd >= 0);
        close(fd);
        path = name;
        std::ofstream(path) << content;
    }
    ~temp_file() { std::remove(path.c_str()); }
};

std::vector<boost::json::object> json_lines(std::string const& text) {
    std::vector<boost::json::object> out;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line))
        if (!line.empty())
            out.push_back(boost::json::parse(line).as_object());
    return out;
}

/// A loopback port nothing listens on: connections to it are refused.
std::uint16_t refused_port() {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    close(fd);
    return ntohs(a.sin_port);
}

/// The relay fed `input` on a pipe it keeps open, sent SIGTERM after `after`.
process_result run_sigterm(std::vector<std::string> const& args, std::string const& input,
                           std::chrono::milliseconds after) {
    return run_process(args, input, 60s, after);
}

/// Numbers of the lines the relay reported, from "line N: what" and "lines A-B, C: the same".
std::set<std::size_t> reported_lines(std::string const& err, std::string const& what) {
    std::set<std::size_t> out;
    std::istringstream in(err);
    std::string l;
    bool in_run = false;
    std::string const one = "herald-relay: line ", many = "herald-relay: lines ";
    while (std::getline(in, l)) {
        auto const same = l.find(": the same (");
        if (same != std::string::npos && in_run && (l.starts_with(one) || l.starts_with(many))) {
            std::istringstream list(
                l.substr(l.starts_with(many) ? many.size() : one.size(),
                         same - (l.starts_with(many) ? many.size() : one.size())));
            std::string range;
            while (std::getline(list, range, ',')) {
                std::size_t a = 0, b = 0;
                auto const n = std::sscanf(range.c_str(), "%zu-%zu", &a, &b);
                REQUIRE(n >= 1);
                for (auto i = a; i <= (n == 2 ? b : a); ++i)
                    out.insert(i);
            }
        } else if (l.starts_with(one)) {
            auto const colon = l.find(": ", one.size());
            REQUIRE(colon != std::string::npos);
            in_run = l.compare(colon + 2, what.size(), what) == 0;
            if (in_run)
                out.insert(std::stoul(l.substr(one.size(), colon - one.size())));
        }
    }
    return out;
}

/// "2026-12-02T16:40:01.123Z" as a time point.
std::chrono::system_clock::time_point utc_time(std::string const& t) {
    std::tm tm{};
    int ms = 0;
    REQUIRE(std::sscanf(t.c_str(), "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                        &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) == 7);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return std::chrono::system_clock::from_time_t(timegm(&tm)) + std::chrono::milliseconds(ms);
}

std::string numbered_events(std::size_t n) {
    std::string input;
    for (std::size_t i = 1; i <= n; ++i)
        input += R"({"id": "evt-line-)" + std::to_string(i) +
                 R"(", "type": "create", "object_id": ")" + std::to_string(i) +
                 R"(", "after": {"n": )" + std::to_string(i) + "}}\n";
    return input;
}

} // namespace

TEST_CASE("the relay delivers stdin events and prints one line per attempt", "[relay][e2e]") {
    loopback_server server;
    int flaky_calls = 0;
    server.on("/flaky", [&](received_request const&) {
        return ++flaky_calls == 1 ? reply{.status = 503} : reply{};
    });
    temp_file hooks(R"([
        {"name": "inventory sync", "url": ")" +
                    server.url("/inventory") + R"(", "events": ["create"]},
        {"name": "audit log", "url": ")" +
                    server.url("/flaky") + R"(", "events": ["delete"], "active": true},
        {"name": "switched off", "url": ")" +
                    server.url("/off") + R"(", "events": ["create", "delete"], "active": false}
    ])");
    std::string const input =
        R"({"type": "create", "object_id": 42, "object_type": "server", "after": {"hostname": "db-1"}})"
        "\n"
        R"({"type": "delete", "object_id": "42", "before": {"hostname": "db-1"}, "actor": "alice"})"
        "\n";
    auto const r =
        run_process({HERALD_RELAY_PATH, "--allow-private", "127.0.0.1/32", "--webhooks", hooks.path,
                     "--retry-schedule", "0s,100ms", "--drain-timeout", "10s"},
                    input);
    INFO(r.err);
    REQUIRE_FALSE(r.timed_out);
    CHECK(r.status == 0);

    auto const lines = json_lines(r.out);
    REQUIRE(lines.size() == 3); // create delivered; delete 503 then delivered
    for (auto const& l : lines)
        for (auto key : {"delivery_id", "event_id", "webhook_id", "webhook_name", "url",
                         "event_type", "object_id", "attempt", "started_at", "duration_ms",
                         "status", "outcome", "error", "response_excerpt", "next_attempt_at"})
            CHECK(l.contains(key));
    auto find = [&](char const* name, std::int64_t attempt) {
        for (auto const& l : lines)
            if (l.at("webhook_name") == name && l.at("attempt") == attempt)
                return l;
        FAIL("no line for " << name << " attempt " << attempt);
        return boost::json::object{};
    };
    auto const created = find("inventory sync", 1);
    CHECK(created.at("outcome") == "delivered");
    CHECK(created.at("status") == 204);
    CHECK(created.at("event_type") == "create");
    CHECK(created.at("object_id") == "42");
    auto const first = find("audit log", 1);
    CHECK(first.at("outcome") == "retrying");
    CHECK(first.at("status") == 503);
    CHECK(first.at("next_attempt_at").is_string());
    auto const second = find("audit log", 2);
    CHECK(second.at("outcome") == "delivered");
    CHECK(second.at("delivery_id") == first.at("delivery_id"));
    CHECK(second.at("next_attempt_at").is_null());

    REQUIRE(server.requests("/inventory").size() == 1);
    auto const body = boost::json::parse(server.requests("/inventory")[0].body).as_object();
    CHECK(body.at("object") == boost::json::parse(R"({"hostname":"db-1"})"));
    CHECK(body.at("object_type") == "server");
    CHECK(server.requests("/off").empty());
    CHECK(server.requests("/flaky").size() == 2);
}

TEST_CASE("the relay speaks DATAGERRY's format on request", "[relay][e2e][datagerry]") {
    loopback_server server;
    temp_file hooks(R"([{"name": "dg", "url": ")" + server.url("/dg") +
                    R"(", "events": ["update"]}])");
    std::string const input =
        R"({"type": "update", "object_id": "5", "before": {"fields": [{"name": "ip", "value": "10.0.0.1"}, {"name": "os", "value": "linux"}]}, )"
        R"("after": {"fields": [{"name": "ip", "value": "10.0.0.2"}, {"name": "os", "value": "linux"}]}})"
        "\n";
    auto const r = run_process({HERALD_RELAY_PATH, "--allow-private", "127.0.0.1/32", "--webhooks",
                                hooks.path, "--format", "datagerry"},
                               input);
    INFO(r.err);
    CHECK(r.status == 0);
    REQUIRE(server.requests("/dg").size() == 1);
    auto const body = boost::json::parse(server.requests("/dg")[0].body).as_object();
    CHECK(body.at("operation") == "UPDATE");
    CHECK(body.at("event_time").as_object().at("$date").is_int64());
    CHECK(
        body.at("changes") ==
        boost::json::parse(
            R"({"old":[{"name":"ip","value":"10.0.0.1"}],"new":[{"name":"ip","value":"10.0.0.2"}]})"));
}

TEST_CASE("the relay sends each webhook its own format and retry schedule, one event once each",
          "[relay][e2e][formats]") {
    loopback_server server;
    std::atomic<int> flaky_calls{0}; // the first request fails
    server.on("/flaky", [&](received_request const&) {
        return ++flaky_calls == 1 ? reply{.status = 503} : reply{};
    });
    temp_file hooks(R"([{"name": "dg", "url": ")" + server.url("/dg") +
                    R"(", "events": ["create"], "format": "datagerry"},
                       {"name": "herald", "url": ")" +
                    server.url("/h") +
                    R"(", "events": ["create"]},
                       {"name": "flaky", "url": ")" +
                    server.url("/flaky") +
                    R"(", "events": ["create"], "retry_schedule": ["0s", "200ms"]}])");
    auto const r = run_process({HERALD_RELAY_PATH, "--allow-private", "127.0.0.1/32", "--webhooks",
                                hooks.path, "--retry-schedule", "0s,1h"},
                               R"({"type": "create", "object_id": "9", "after": {"a": 1}})"
                               "\n");
    INFO(r.err);
    CHECK(r.status == 0);
    REQUIRE(server.requests("/dg").size() == 1);
    REQUIRE(server.requests("/h").size() == 1);
    auto const dg = boost::json::parse(server.requests("/dg")[0].body).as_object();
    auto const h = boost::json::parse(server.requests("/h")[0].body).as_object();
    CHECK(dg.at("operation") == "CREATE");
    CHECK(h.at("object_id") == "9");
    CHECK(server.requests("/dg")[0].header("webhook-id") ==
          server.requests("/h")[0].header("webhook-id"));
    // Its own schedule: retried after 200 ms, not the options' hour (the relay drained in time).
    CHECK(server.requests("/flaky").size() == 2);

    temp_file bad(R"([{"name": "x", "url": "https://x.example/h", "events": ["create"],
                       "format": "xml"}])");
    auto const refused = run_process({HERALD_RELAY_PATH, "--webhooks", bad.path}, "");
    CHECK(refused.status == 2);
    CHECK(refused.err.find("webhooks[0].format: 'xml' is not a format herald-relay offers "
                           "(herald, datagerry)") != std::string::npos);
}

TEST_CASE("a bad event line is reported with its number and skipped", "[relay][e2e][validation]") {
    loopback_server server;
    temp_file hooks(R"([{"name": "all", "url": ")" + server.url("/all") +
                    R"(", "events": ["create", "update", "delete"]}])");
    std::string const input =
        R"({"type": "create", "object_id": "1", "after": {}})"
        "\n"
        "this is not json\n"
        R"({"type": "explode", "object_id": "2"})"
        "\n"
        R"({"type": "delete", "object_id": "3"})"
        "\n"
        R"({"type": "create", "object_id": "4", "after": {"a": 1}})"
        "\n"
        // a key given twice: refused, not "the last one wins"
        R"({"type": "create", "object_id": "5", "type": "delete", "before": {}})"
        "\n"
        R"({"type": "create", "object_id": "6", "after": {"a": 1, "a": 2}})"
        "\n";
    auto const r = run_process(
        {HERALD_RELAY_PATH, "--allow-private", "127.0.0.1/32", "--webhooks", hooks.path}, input);
    CHECK(r.status == 1);
    CHECK(r.err.find("line 2: not valid JSON") != std::string::npos);
    CHECK(r.err.find("line 3: type: unknown event type 'explode'") != std::string::npos);
    CHECK(r.err.find("line 4: before: is required for a delete event") != std::string::npos);
    CHECK(r.err.find("line 6: duplicate key 'type'") != std::string::npos);
    CHECK(r.err.find("line 7: duplicate key 'a'") != std::string::npos);
    CHECK(json_lines(r.out).size() == 2);
    CHECK(server.requests("/all").size() == 2);
}

TEST_CASE("a bad webhooks file exits 2 and sends nothing", "[relay][e2e][validation]") {
    loopback_server server;
    auto const good =
        R"({"name": "ok", "url": ")" + server.url("/ok") + R"(", "events": ["create"]})";
    struct bad_case {
        std::string file;
        std::string message;
    };
    std::vector<bad_case> cases = {
        {"[" + good + R"(, {"name": "x", "url": "ftp://h/", "events": ["create"]}])",
         "webhooks[1].url: scheme 'ftp' is not http or https"},
        {"[" + good + R"(, {"name": "OK", "url": "http://h/", "events": ["create"]}])",
         "webhooks[1].name: 'OK' is already used"},
        {"[" + good + R"(, {"name": "y", "url": "http://h/", "events": ["create", "merge"]}])",
         "webhooks[1].events[1]: unknown event type 'merge'"},
        {"[" + good + R"(, {"name": "", "url": "http://h/", "events": ["create"]}])",
         "webhooks[1].name: is required"},
        {"[" + good + R"(, {"name": "z", "url": "http://user:pw@h/", "events": ["create"]}])",
         "webhooks[1].url: must not contain user-info"},
        {"[" + good + R"(, {"name": "z", "url": "http://h/", "events": []}])",
         "webhooks[1].events: must name at least one event type"},
        {"{}", "must be a JSON array"},
        {"[", "not valid JSON"},
        {"[" + good.substr(0, good.size() - 1) + R"(, "url": "http://other/"}])",
         "duplicate key 'url'"},
    };
    for (auto const& c : cases) {
        temp_file hooks(c.file);
        auto const r = run_process(
            {HERALD_RELAY_PATH, "--allow-private", "127.0.0.1/32", "--webhooks", hooks.path},
            R"({"type": "create", "object_id": "1", "after": {}})"
            "\n");
        INFO(c.file);
        CHECK(r.status == 2);
        CHECK(r.err.find(c.message) != std::string::npos);
        CHECK(r.out.empty());
    }
    CHECK(server.requests().empty());
}

TEST_CASE("bad relay options exit 2 naming the option", "[relay][e2e][validation]") {
    auto const r1 =
        run_process({HERALD_RELAY_PATH, "--webhooks", "/nonexistent", "--timeout", "soon"}, "");
    CHECK(r1.status == 2);
    CHECK(r1.err.find("--timeout") != std::string::npos);
    auto const r2 =
        run_process({HERALD_RELAY_PATH, "--retry-schedule", "0s,-1s", "--webhooks", "x"}, "");
    CHECK(r2.status == 2);
    CHECK(r2.err.find("--retry-schedule") != std::string::npos);
    auto const r3 = run_process({HERALD_RELAY_PATH, "--format", "xml", "--webhooks", "x"}, "");
    CHECK(r3.status == 2);
    CHECK(r3.err.find("--format") != std::string::npos);
}

TEST_CASE("SIGTERM: every line read is accepted or reported with its number, exit 1",
          "[relay][e2e][shutdown][issue12]") {
    // A dead endpoint and a queue of one: lines wait for room when the signal comes.
    temp_file hooks(R"([{"name": "dead", "url": "http://127.0.0.1:)" +
                    std::to_string(refused_port()) + R"(/d", "events": ["create"]}])");
    std::size_t const n = 20'000;
    auto const s = run_sigterm({HERALD_RELAY_PATH, "--allow-private", "127.0.0.1/32", "--webhooks",
                                hooks.path, "--queue", "1", "--drain-timeout", "1s"},
                               numbered_events(n), 1500ms);
    INFO(s.err.substr(0, 2000));
    REQUIRE_FALSE(s.timed_out);
    std::size_t read = 0, accepted = 0;
    auto const at = s.err.find("stopped reading after ");
    REQUIRE(at != std::string::npos);
    REQUIRE(std::sscanf(s.err.c_str() + at, "stopped reading after %zu lines: %zu events accepted",
                        &read, &accepted) == 2);
    CHECK(read < n); // the signal came before the end of the input
    // Each accepted line's event is in the log with a final outcome; the others are reported.
    std::set<std::size_t> logged, ended;
    for (auto const& l : json_lines(s.out)) {
        auto const id = std::string(l.at("event_id").as_string());
        REQUIRE(id.starts_with("evt-line-"));
        logged.insert(std::stoul(id.substr(9)));
        if (l.at("outcome").as_string() == "failed")
            ended.insert(std::stoul(id.substr(9)));
    }
    CHECK(ended == logged); // each with its final outcome
    CHECK(logged.size() == accepted);
    auto const refused = reported_lines(s.err, "not accepted: the relay stopped");
    CHECK(refused.size() + accepted == read);
    for (std::size_t i = 1; i <= read; ++i) {
        INFO("line " << i);
        CHECK(logged.contains(i) != refused.contains(i));
    }
    if (!refused.empty())
        CHECK(s.status == 1);
    else
        CHECK(s.status == 0);
}

TEST_CASE("the drain timeout bounds the exit: what cannot go is logged at once, not at the end",
          "[relay][e2e][shutdown][issue12]") {
    auto const dead = std::to_string(refused_port());
    loopback_server hanging;
    hanging.on("/hang", [](received_request const&) { return reply{.hang = true}; });
    temp_file hooks(R"([{"name": "dead", "url": "http://127.0.0.1:)" + dead +
                    R"(/d", "events": ["create"]},
                        {"name": "hanging", "url": ")" +
                    hanging.url("/hang") + R"(", "events": ["create"]}])");
    auto const s = run_sigterm({HERALD_RELAY_PATH, "--allow-private", "127.0.0.1/32", "--webhooks",
                                hooks.path, "--drain-timeout", "4s", "--timeout", "30s"},
                               numbered_events(5'000), 2500ms);
    INFO(s.err);
    REQUIRE_FALSE(s.timed_out);
    CHECK(s.exit_seconds < 4.0 + 2.0); // the bound, with room for a slow machine
    // The deadline is 4 s after the signal. What could not go before it, the dead webhook's
    // deliveries behind its open circuit, is logged at once; the hanging webhook's wait for
    // the deadline (its requests have hung for less than stall_after, 10 s).
    std::size_t early_dead = 0, late_dead = 0, hanging_cut = 0;
    for (auto const& l : json_lines(s.out)) {
        auto const error = std::string(l.at("error").as_string());
        if (error.find("abandoned at shutdown") == std::string::npos)
            continue;
        if (l.at("webhook_name").as_string() == "hanging") {
            ++hanging_cut;
            continue;
        }
        auto const when = utc_time(std::string(l.at("started_at").as_string()));
        ++(when < s.signalled_at + 2s ? early_dead : late_dead);
    }
    CHECK(early_dead > 4'900); // all but the few attempts made before its circuit opened
    CHECK(late_dead == 0);
    CHECK(hanging_cut == 5'000);
}

TEST_CASE("a line longer than --max-line-bytes is skipped unread and reported",
          "[relay][e2e][validation][issue12]") {
    loopback_server server;
    temp_file hooks(R"([{"name": "all", "url": ")" + server.url("/all") +
                    R"(", "events": ["create"]}])");
    std::string const big = R"({"type": "create", "object_id": "2", "after": {"x": ")" +
                            std::string(300'000, 'x') + "\"}}\n";
    std::string const input = R"({"type": "create", "object_id": "1", "after": {}})"
                              "\n" +
                              big + R"({"type": "create", "object_id": "3", "after": {}})";
    auto const r = run_process({HERALD_RELAY_PATH, "--allow-private", "127.0.0.1/32", "--webhooks",
                                hooks.path, "--max-line-bytes=100000"},
                               input); // the last line has no newline: still a line
    INFO(r.err);
    CHECK(r.status == 1);
    CHECK(r.err.find("line 2: longer than --max-line-bytes (100000 bytes): skipped") !=
          std::string::npos);
    CHECK(r.err.find("end of input after 3 lines: 2 events accepted, 1 not") != std::string::npos);
    REQUIRE(server.requests("/all").size() == 2);
    auto const small = run_process(
        {HERALD_RELAY_PATH, "--allow-private", "127.0.0.1/32", "--webhooks", hooks.path},
        big); // the default cap is 1 MiB: this one passes
    CHECK(small.status == 0);
}

TEST_CASE("the same problem on many lines is reported once, with a count",
          "[relay][e2e][validation][issue12]") {
    loopback_server server;
    temp_file hooks(R"([{"name": "all", "url": ")" + server.url("/all") +
                    R"(", "events": ["create"]}])");
    std::string input;
    for (int i = 0; i < 500; ++i)
        input += "{\"type\": \"create\", \"object_id\": \"1\"}\n"; // no after: refused
    input += "not json\n";
    auto const r = run_process(
        {HERALD_RELAY_PATH, "--allow-private", "127.0.0.1/32", "--webhooks", hooks.path}, input);
    INFO(r.err);
    CHECK(r.status == 1);
    CHECK(r.err.find("line 1: after: is required for a create event") != std::string::npos);
    CHECK(r.err.find("lines 2-500: the same (499 lines)") != std::string::npos);
    CHECK(r.err.find("line 501: not valid JSON: ") != std::string::npos);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') < 8);
}

TEST_CASE("relay --help gives every option its text and real default; --opt=value is read",
          "[relay][e2e][issue12]") {
    auto const h = run_process({HERALD_RELAY_PATH, "--help"}, "");
    CHECK(h.status == 0);
    for (auto const* o :
         {"--webhooks FILE", "--format herald|datagerry", "--retry-schedule", "--timeout D",
          "--connect-timeout D", "--drain-timeout D", "--finish-timeout D", "--queue N",
          "--max-line-bytes N", "--allow-private CIDR", "--https-only", "--store", "--log",
          "--admin HOST:PORT", "--admin-token-file FILE"})
        CHECK(h.out.find(std::string("  ") + o) != std::string::npos);
    // The defaults are those of the code, not examples.
    CHECK(h.out.find("(default 0s,5s,5m,30m,2h,5h,10h,10h)") != std::string::npos);
    CHECK(h.out.find("(default 10s)") != std::string::npos);
    CHECK(h.out.find("(default 30s)") != std::string::npos);
    CHECK(h.out.find("(default 65536)") != std::string::npos);
    loopback_server server;
    temp_file hooks(R"([{"name": "all", "url": ")" + server.url("/all") +
                    R"(", "events": ["create"]}])");
    auto const r = run_process({HERALD_RELAY_PATH, "--allow-private=127.0.0.1/32",
                                "--webhooks=" + hooks.path, "--timeout=2s"},
                               R"({"type": "create", "object_id": "1", "after": {}})"
                               "\n");
    INFO(r.err);
    CHECK(r.status == 0);
    CHECK(server.requests("/all").size() == 1);
    auto const bad = run_process({HERALD_RELAY_PATH, "--timeout=", "--webhooks", hooks.path}, "");
    CHECK(bad.status == 2);
    CHECK(bad.err.find("--timeout") != std::string::npos);
}

TEST_CASE("a durable relay at the end of input runs until what is pending has ended",
          "[relay][e2e][shutdown][sqlite][issue12]") {
    herald::test::temp_dir dir;
    auto const db = "sqlite:" + dir.file("relay.db");
    std::atomic<bool> up{false};
    loopback_server server;
    server.on("/later",
              [&](received_request const&) { return up ? reply{} : reply{.status = 503}; });
    temp_file hooks(R"([{"name": "later", "url": ")" + server.url("/later") +
                    R"(", "events": ["create"]}])");
    // First run: every first attempt fails and the retry is 3 s away; the relay gives up
    // waiting after --finish-timeout and keeps the deliveries.
    auto const first = run_process(
        {HERALD_RELAY_PATH, "--allow-private", "127.0.0.1/32", "--webhooks", hooks.path, "--store",
         db, "--retry-schedule", "0s,3s", "--finish-timeout", "500ms", "--drain-timeout", "100ms"},
        numbered_events(20));
    INFO(first.err);
    CHECK(first.status == 0);
    CHECK(first.err.find("20 deliveries pending: running until they end or for at most "
                         "--finish-timeout 500ms") != std::string::npos);
    CHECK(first.err.find("--finish-timeout 500ms reached with 20 deliveries pending") !=
          std::string::npos);
    CHECK(first.err.find("kept in '" + dir.file("relay.db") + "'") != std::string::npos);
    // Second run, empty input and a drain timeout shorter than the wait for the retries: it
    // still delivers everything before it exits.
    up = true;
    auto const second =
        run_process({HERALD_RELAY_PATH, "--allow-private", "127.0.0.1/32", "--store", db,
                     "--retry-schedule", "0s,3s", "--drain-timeout", "1s"},
                    "");
    INFO(second.err);
    CHECK(second.status == 0);
    CHECK(second.err.find("20 deliveries pending in '") != std::string::npos);
    CHECK(second.err.find("every pending delivery has ended") != std::string::npos);
    CHECK(second.err.find("0 events, 20 delivered, 0 failed") != std::string::npos);
    std::set<std::string> ids;
    std::size_t answered_ok = 0;
    for (auto const& rq : server.requests("/later"))
        ids.insert(rq.header("webhook-id"));
    answered_ok = ids.size();
    CHECK(answered_ok == 20); // the same webhook-ids as the first run's attempts
}

#ifdef HERALD_RECEIVER_PATH
TEST_CASE("herald-receiver --secret verifies what the relay signs", "[relay][e2e][signature]") {
    char dir[] = "/tmp/herald-receiver-test-XXXXXX";
    REQUIRE(mkdtemp(dir) != nullptr);
    std::string const port_file = std::string(dir) + "/port";
    std::string const good = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    std::string const other = "whsec_dGhpcyBpcyBhbm90aGVyIHNlY3JldCBrZXkhIQ==";
    process_result receiver;
    std::thread t([&] {
        receiver = run_process({HERALD_RECEIVER_PATH, "--port", "0", "--port-file", port_file,
                                "--count", "2", "--secret", good},
                               "", 60s);
    });
    std::string port;
    for (int i = 0; i < 400 && port.empty(); ++i) {
        std::this_thread::sleep_for(25ms);
        std::ifstream(port_file) >> port;
    }
    REQUIRE_FALSE(port.empty());
    auto const base = "http://127.0.0.1:" + port;
    temp_file hooks(R"([
        {"name": "right secret", "url": ")" +
                    base + R"(/a", "events": ["create"], "secrets": [")" + good +
                    R"("], "headers": {"X-Tenant": "acme"}},
        {"name": "wrong secret", "url": ")" +
                    base + R"(/b", "events": ["create"], "secrets": [")" + other + R"("]}
    ])");
    auto const relay = run_process({HERALD_RELAY_PATH, "--allow-private", "127.0.0.1/32",
                                    "--webhooks", hooks.path, "--retry-schedule", "0s"},
                                   R"({"type": "create", "object_id": "1", "after": {"a": 1}})"
                                   "\n");
    t.join();
    std::remove(port_file.c_str());
    rmdir(dir);
    INFO(relay.err << receiver.err);
    CHECK(relay.status == 0);
    CHECK(receiver.status == 0);
    auto const received = json_lines(receiver.out);
    REQUIRE(received.size() == 2);
    for (auto const& r : received) {
        auto const& sig = r.at("signature").as_object();
        if (r.at("target") == "/a") {
            CHECK(sig.at("valid") == true);
            CHECK(r.at("headers").as_object().at("x-tenant") == "acme");
        } else {
            CHECK(sig.at("valid") == false);
            CHECK(sig.at("reason") == "bad signature");
        }
    }
    auto const attempts = json_lines(relay.out);
    REQUIRE(attempts.size() == 2);
    for (auto const& a : attempts) {
        if (a.at("webhook_name") == "right secret") {
            CHECK(a.at("outcome") == "delivered");
        } else {
            CHECK(a.at("status") == 401); // the receiver refused the forged signature
            CHECK(a.at("outcome") == "failed");
        }
    }
    // the relay never prints a secret
    CHECK(relay.out.find("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw") == std::string::npos);
    CHECK(relay.err.find("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw") == std::string::npos);
}

TEST_CASE("the relay refuses plain http with --https-only and private literals by default",
          "[relay][e2e][ssrf]") {
    temp_file plain(R"([{"name": "p", "url": "http://example.com/", "events": ["create"]}])");
    auto const r1 = run_process({HERALD_RELAY_PATH, "--https-only", "--webhooks", plain.path}, "");
    CHECK(r1.status == 2);
    CHECK(r1.err.find("webhooks[0].url: must be https") != std::string::npos);
    temp_file internal(R"([{"name": "i", "url": "http://192.168.1.10/", "events": ["create"]}])");
    auto const r2 = run_process({HERALD_RELAY_PATH, "--webhooks", internal.path}, "");
    CHECK(r2.status == 2);
    CHECK(r2.err.find("192.168.1.10 is in a private range") != std::string::npos);
    auto const r3 = run_process(
        {HERALD_RELAY_PATH, "--allow-private", "192.168.1.0/24", "--webhooks", internal.path}, "");
    CHECK(r3.status == 0);
    auto const r4 = run_process(
        {HERALD_RELAY_PATH, "--allow-private", "192.168.1.1/24", "--webhooks", internal.path}, "");
    CHECK(r4.status == 2);
    CHECK(r4.err.find("--allow-private") != std::string::npos);
}
#endif
#endif
