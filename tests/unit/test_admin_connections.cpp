// The admin server's connection slots: who is admitted, and whom a new connection displaces,
// on times passed in (no sockets).
#include <herald/admin/detail/connections.hpp>

#include <catch2/catch.hpp>

// One namespace a file: the unit tests build as one translation unit (unity).
namespace herald_test_admin_connections {

using herald::admin::detail::connection_table;
using namespace std::chrono_literals;

namespace {
connection_table::time_point t(int ms) {
    return connection_table::time_point{} + std::chrono::milliseconds(ms);
}
boost::asio::ip::address ip(char const* s) {
    return boost::asio::ip::make_address(s);
}
} // namespace

TEST_CASE("full slots: the longest-waiting connection makes room, busy ones never",
          "[admin][connections]") {
    connection_table table(3, 3);
    auto const a = ip("127.0.0.1");
    CHECK(table.admit(1, a, t(0)).accepted);
    CHECK(table.admit(2, a, t(1)).accepted);
    CHECK(table.admit(3, a, t(2)).accepted);
    CHECK(table.busy(2)); // answering a request

    auto r = table.admit(4, a, t(3));
    CHECK(r.accepted);
    REQUIRE(r.shed);
    CHECK(*r.shed == 1); // the oldest waiting one
    CHECK(table.displaced(1));
    CHECK_FALSE(table.busy(1)); // its request, should it arrive now, is not answered
    CHECK(table.size() == 3);

    // 3 waits again from t(4): newer than 4, so 3 goes first, then 4, then 3's successor
    table.waiting(3, t(4));
    r = table.admit(5, a, t(5));
    REQUIRE(r.shed);
    CHECK(*r.shed == 4);
    CHECK(table.busy(3));
    CHECK(table.busy(5));
    // every slot busy: refused, nobody displaced
    r = table.admit(6, a, t(6));
    CHECK_FALSE(r.accepted);
    CHECK_FALSE(r.shed);
    CHECK(table.size() == 3);

    // displaced entries leave without freeing a slot twice
    table.remove(1);
    table.remove(4);
    CHECK(table.size() == 3);
    table.remove(2);
    CHECK(table.size() == 2);
    CHECK(table.admit(7, a, t(7)).accepted);
    CHECK(table.size() == 3);
}

TEST_CASE("an address at its cap gives up its own connection; full slots take from the "
          "address holding most",
          "[admin][connections]") {
    connection_table table(4, 2);
    auto const a = ip("127.0.0.1"), b = ip("127.0.0.2"), c = ip("127.0.0.3");
    CHECK(table.admit(1, b, t(0)).accepted); // b's kept-alive connection, the oldest
    CHECK(table.admit(2, a, t(1)).accepted);
    CHECK(table.admit(3, a, t(2)).accepted);
    // a is at its cap: its own oldest goes, not b's older one
    auto r = table.admit(4, a, t(3));
    REQUIRE(r.shed);
    CHECK(*r.shed == 2);
    CHECK(table.count(a) == 2);
    CHECK(table.count(b) == 1);
    // a's connections all busy: a is refused even though slots are free
    CHECK(table.busy(3));
    CHECK(table.busy(4));
    CHECK_FALSE(table.admit(5, a, t(4)).accepted);
    CHECK(table.admit(6, c, t(5)).accepted); // 4 slots full now: b, a, a, c
    table.waiting(3, t(6));
    // d arrives with every slot taken: a holds the most, so a's waiting one goes, not b's
    r = table.admit(7, ip("::ffff:127.0.0.4"), t(7));
    REQUIRE(r.shed);
    CHECK(*r.shed == 3);
    CHECK(table.count(ip("127.0.0.4")) == 1); // IPv4-mapped is the same peer as IPv4
    CHECK(table.size() == 4);
}

} // namespace herald_test_admin_connections
