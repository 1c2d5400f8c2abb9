// herald-relay run as a process, the way non-C++ users drive herald.
#include "loopback_server.hpp"
#include "process.hpp"

#include <catch2/catch.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <cstdio>
#include <fstream>
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
