// HTTPS against an in-process server whose CA and certificates the test generates, the SSRF
// guard at send time, signatures end to end, and responses that drip or never end.
#include "harness.hpp"
#include "loopback_server.hpp"
#include "test_pki.hpp"

#include <herald/signature.hpp>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>

using namespace herald;
using namespace herald::test;

namespace {

boost::json::object obj() {
    return {{"hostname", "db-1"}};
}

webhook_params tls_hook(std::string name, std::string url, std::optional<std::string> ca_file,
                        bool verify = true) {
    webhook_params p;
    p.name = std::move(name);
    p.url = std::move(url);
    p.events = event_type_set::all();
    p.ca_file = std::move(ca_file);
    p.verify_tls = verify;
    // localhost resolves to both loopback addresses; every one must be allowed
    p.allow_private = {cidr::parse("127.0.0.1/32").value(), cidr::parse("::1").value()};
    return p;
}

log_entry deliver_once(harness<>& h, webhook_params p) {
    auto const w = h.d.store().create(std::move(p));
    if (!w)
        FAIL("create: " << w.error().what());
    h.publish(object_event::created("1", obj()));
    log_query q;
    q.webhook = w->id;
    auto const log = h.wait_log(1, q);
    REQUIRE(log.size() == 1);
    return log[0];
}

} // namespace

TEST_CASE("https to a certificate from a trusted CA is delivered; the connection is reused",
          "[integration][tls]") {
    test_pki pki;
    auto const leaf = pki.issue({"localhost"}, {"127.0.0.1"});
    loopback_server server(loopback_server::tls_options{leaf.cert_pem, leaf.key_pem});
    harness<> h(fast_params({0ms}));
    auto const w =
        h.d.store().create(tls_hook("tls", server.url_for_host("localhost", "/s"), pki.ca_file()));
    REQUIRE(w.has_value());
    for (int i = 0; i < 5; ++i) {
        h.publish(object_event::created(std::to_string(i), obj()));
        REQUIRE(server.wait_for(static_cast<std::size_t>(i + 1), "/s", 10s));
        h.wait_log(static_cast<std::size_t>(i + 1));
    }
    h.stop();
    for (auto const& e : h.d.log().query({}).entries) {
        CHECK(e.result == outcome::delivered);
        CHECK(e.warning.empty());
    }
    CHECK(h.d.transport().connections_opened() == 1);
    CHECK(server.wait_for_completed_handshakes(1, 5s));
    CHECK(server.handshakes_completed() == 1);
    // the Host header (and SNI) carry the name from the URL
    auto const first = server.requests("/s").at(0);
    CHECK(first.header("host") == "localhost:" + std::to_string(server.port()));
}

TEST_CASE("a certificate that fails verification is logged with the reason", "[integration][tls]") {
    test_pki pki;
    struct tls_case {
        char const* name;
        pem_pair cert;
        char const* reason;
    };
    std::vector<tls_case> cases;
    cases.push_back(
        {"untrusted", pki.self_signed({"localhost"}, {"127.0.0.1"}), "self-signed certificate"});
    cases.push_back({"wrong-name", pki.issue({"other.test"}, {}), "hostname mismatch"});
    cases.push_back({"expired", pki.issue({"localhost"}, {"127.0.0.1"}, -48h, -24h),
                     "certificate has expired"});
    for (auto const& c : cases) {
        INFO(c.name);
        loopback_server server(loopback_server::tls_options{c.cert.cert_pem, c.cert.key_pem});
        harness<> h(fast_params({0ms}));
        auto const e = deliver_once(
            h, tls_hook(c.name, server.url_for_host("localhost", "/x"), pki.ca_file()));
        CHECK(e.result == outcome::failed);
        CHECK(e.status == 0);
        CHECK(e.error == std::string("TLS certificate of localhost rejected: ") + c.reason +
                             " (gave up after 1 attempt)");
        CHECK(server.requests().empty()); // nothing was sent over an untrusted connection
    }
}

TEST_CASE("without a custom CA the system trust store is used", "[integration][tls]") {
    test_pki pki;
    auto const leaf = pki.issue({"localhost"}, {"127.0.0.1"});
    loopback_server server(loopback_server::tls_options{leaf.cert_pem, leaf.key_pem});
    harness<> h(fast_params({0ms}));
    auto const e = deliver_once(h, tls_hook("system", server.url_for_host("localhost", "/x"), {}));
    CHECK(e.result == outcome::failed);
    CHECK(e.error.find("unable to get local issuer certificate") != std::string::npos);
}

TEST_CASE("opting out of verification delivers and says so in every entry", "[integration][tls]") {
    test_pki pki;
    auto const bad = pki.self_signed({"elsewhere.test"}, {});
    loopback_server server(loopback_server::tls_options{bad.cert_pem, bad.key_pem});
    harness<> h(fast_params({0ms}));
    auto const e = deliver_once(
        h, tls_hook("insecure", server.url_for_host("localhost", "/x"), {}, /*verify=*/false));
    CHECK(e.result == outcome::delivered);
    CHECK(e.warning == "TLS certificate verification is disabled for this webhook");
    CHECK(server.requests("/x").size() == 1);
}

TEST_CASE("a name resolving to loopback is refused unless allowed", "[integration][ssrf]") {
    loopback_server server;
    boost::asio::io_context io;
    // the default guard: nothing private allowed anywhere
    basic_dispatcher<> d(io.get_executor(), fast_params({0ms}));
    webhook_params p;
    p.name = "sneaky";
    p.url = server.url_for_host("localhost", "/internal");
    p.events = event_type_set::all();
    auto const sneaky = d.store().create(p); // a name passes creation: it resolves at send time
    REQUIRE(sneaky.has_value());
    p.name = "allowed";
    p.url = server.url_for_host("localhost", "/allowed");
    p.allow_private = {cidr::parse("127.0.0.1/32").value(), cidr::parse("::1").value()};
    REQUIRE(d.store().create(p).has_value());
    d.async_run(boost::asio::detached);
    REQUIRE(d.publish(object_event::created("1", obj())).has_value());
    auto stopped = d.async_stop(10s, boost::asio::use_future);
    io.run();
    CHECK(stopped.get().drained);
    log_query q;
    q.webhook = sneaky->id;
    auto const refused = d.log().query(q).entries;
    REQUIRE(refused.size() == 1);
    CHECK(refused[0].result == outcome::failed);
    CHECK(refused[0].error.find("refused to connect to localhost: ") == 0);
    CHECK(refused[0].error.find("is in the loopback") != std::string::npos);
    CHECK(refused[0].error.find("allow it with allow_private") != std::string::npos);
    CHECK(server.requests("/internal").empty());
    CHECK(server.requests("/allowed").size() == 1);
}

TEST_CASE("signatures verify at the receiver end to end", "[integration][signature]") {
    loopback_server server;
    harness<> h;
    auto const s = secret::generate();
    webhook_params p;
    p.name = "signed";
    p.url = server.url("/signed");
    p.events = event_type_set::all();
    p.secrets = {s};
    REQUIRE(h.d.store().create(p).has_value());
    h.publish(object_event::created("1", obj()));
    REQUIRE(server.wait_for(1, "/signed", 10s));
    auto const r = server.requests("/signed").at(0);
    auto const id = r.header("webhook-id");
    auto const ts = r.header("webhook-timestamp");
    auto const sig = r.header("webhook-signature");
    secret const secrets[] = {s};
    CHECK(verify(signed_headers{id, ts, sig}, r.body, secrets).has_value());
    auto const tampered = r.body + " ";
    CHECK(verify(signed_headers{id, ts, sig}, tampered, secrets).error().reason ==
          verify_error::bad_signature);
}

TEST_CASE("a response that drips is cut at the total timeout", "[integration][limits]") {
    boost::asio::io_context raw_io;
    boost::asio::ip::tcp::acceptor acceptor(raw_io,
                                            {boost::asio::ip::make_address("127.0.0.1"), 0});
    auto const port = acceptor.local_endpoint().port();
    std::atomic<bool> stop{false};
    std::thread raw([&] {
        boost::asio::ip::tcp::socket s(raw_io);
        acceptor.accept(s);
        char buf[4096];
        boost::system::error_code ec;
        s.read_some(boost::asio::buffer(buf), ec);
        boost::asio::write(
            s, boost::asio::buffer(std::string("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")),
            ec);
        for (int i = 0; i < 100 && !stop && !ec; ++i) {
            boost::asio::write(s, boost::asio::buffer("x", 1), ec);
            std::this_thread::sleep_for(50ms);
        }
    });
    harness<> h(fast_params({0ms}));
    webhook_params p;
    p.name = "drip";
    p.url = "http://127.0.0.1:" + std::to_string(port) + "/";
    p.events = event_type_set::all();
    p.timeout = 600ms;
    REQUIRE(h.d.store().create(p).has_value());
    h.publish(object_event::created("1", obj()));
    auto const log = h.wait_log(1);
    stop = true;
    raw.join();
    REQUIRE(log.size() == 1);
    CHECK(log[0].status == 200);
    CHECK(log[0].result == outcome::delivered); // the receiver said 200 before it dripped
    CHECK(log[0].warning == "response body cut off at the 600ms timeout");
    CHECK(log[0].elapsed < 2s);
    CHECK(log[0].response_excerpt.find_first_not_of('x') == std::string::npos);
}
