// One header field per name on the wire (issue 12, defect 5): a webhook's User-Agent replaces
// herald's, and the transport never writes one name twice.
#include "harness.hpp"
#include "loopback_server.hpp"
#include "run_async.hpp"

#include <boost/beast/core/string.hpp>

#include <string>

// One namespace a file: the integration tests build as one translation unit (unity).
namespace herald_test_header_fields {

using namespace herald;
using namespace herald::test;

namespace {
std::size_t count_fields(received_request const& r, std::string_view name) {
    std::size_t n = 0;
    for (auto const& [k, v] : r.headers)
        n += boost::beast::iequals(k, name) ? 1 : 0;
    return n;
}
} // namespace

TEST_CASE("a webhook's User-Agent replaces herald's, on the wire and in the log",
          "[integration][http][headers]") {
    loopback_server server;
    harness<> h;
    webhook_params p;
    p.name = "agent";
    p.url = server.url("/agent");
    p.events = event_type_set::all();
    p.headers = {{"user-agent", "inventory-sync/2.0"}, {"X-Tenant", "acme"}};
    REQUIRE(h.d.store().create(std::move(p)).has_value());
    h.publish(object_event::created("1", {{"a", 1}}));
    REQUIRE(server.wait_for(1, "/agent", 10s));
    auto const log = h.wait_log(1);
    h.stop();
    auto const r = server.requests("/agent").at(0);
    CHECK(count_fields(r, "User-Agent") == 1);
    CHECK(r.header("User-Agent") == "inventory-sync/2.0");
    CHECK(r.header("X-Tenant") == "acme");
    REQUIRE(log.size() == 1);
    std::size_t agents = 0;
    for (auto const& hd : log[0].request_headers)
        if (boost::beast::iequals(hd.name, "User-Agent")) {
            ++agents;
            CHECK(hd.value == "inventory-sync/2.0");
        }
    CHECK(agents == 1);
}

TEST_CASE("http_transport writes one field per name, the later one",
          "[integration][http][headers]") {
    loopback_server server;
    http_transport transport(harness<>::with_loopback({}));
    http_request req;
    req.url = server.url("/twice");
    req.body = std::make_shared<std::string const>("{}");
    req.content_type = "application/json";
    // validate() refuses these; a request built by hand must still not put two on the wire
    req.headers = {{"X-A", "first"},         {"x-a", "second"},       {"User-Agent", "mine/1"},
                   {"user-agent", "mine/2"}, {"content-type", "a/b"}, {"X-B", "only"}};
    boost::asio::io_context io;
    send_result res;
    run_async(io,
              [&]() -> boost::asio::awaitable<void> { res = co_await transport.async_send(req); });
    transport.close_idle();
    REQUIRE(res.ec == boost::system::error_code{});
    REQUIRE(server.requests("/twice").size() == 1);
    auto const r = server.requests("/twice").at(0);
    CHECK(count_fields(r, "X-A") == 1);
    CHECK(r.header("X-A") == "second");
    CHECK(count_fields(r, "User-Agent") == 1);
    CHECK(r.header("User-Agent") == "mine/2");
    CHECK(count_fields(r, "Content-Type") == 1);
    CHECK(r.header("Content-Type") == "a/b");
    CHECK(r.header("X-B") == "only");
}

} // namespace herald_test_header_fields
