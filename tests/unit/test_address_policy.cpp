// The SSRF guard's address ranges.
#include <herald/address_policy.hpp>

#include <catch2/catch.hpp>

// One namespace a file: the unit tests build as one translation unit (unity).
namespace herald_test_address_policy {

using namespace herald;
namespace ip = boost::asio::ip;

TEST_CASE("every reserved range is refused by default", "[ssrf]") {
    address_policy const p;
    char const* refused[] = {
        "0.0.0.0",
        "0.1.2.3",
        "10.0.0.1",
        "10.255.255.255",
        "100.64.0.1",
        "100.127.255.254",
        "127.0.0.1",
        "127.8.9.10",
        "169.254.169.254",
        "172.16.0.1",
        "172.31.255.255",
        "192.0.0.8",
        "192.0.2.1",
        "192.168.1.1",
        "198.18.0.1",
        "198.19.255.255",
        "198.51.100.7",
        "203.0.113.9",
        "224.0.0.1",
        "239.255.255.250",
        "240.0.0.1",
        "255.255.255.255",
        "::",
        "::1",
        "64:ff9b::a00:1",
        "fc00::1",
        "fd12:3456::1",
        "fe80::1",
        "febf::1",
        "ff02::1",
        "::ffff:10.0.0.1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "::127.0.0.1",
        "64:ff9b:1::a00:1",
        "100::1",
        "2001:0:4136::1",
        "2001:db8::1",
        "2002:c000:204::1",
    };
    for (auto const* a : refused) {
        INFO(a);
        CHECK(p.refusal(ip::make_address(a)).has_value());
    }
}

TEST_CASE("globally routable addresses pass", "[ssrf]") {
    address_policy const p;
    for (auto const* a :
         {"8.8.8.8", "1.1.1.1", "100.63.255.255", "100.128.0.1", "172.15.255.255", "172.32.0.1",
          "192.0.1.1", "192.169.0.1", "198.17.255.255", "223.255.255.255", "2001:4860:4860::8888",
          "2606:4700::1111", "::ffff:8.8.8.8", "fec0::1"}) {
        INFO(a);
        CHECK_FALSE(p.refusal(ip::make_address(a)).has_value());
    }
}

TEST_CASE("a refusal names the address, the range and how to allow it", "[ssrf]") {
    address_policy const p;
    auto const why = p.refusal(ip::make_address("10.1.2.3"));
    REQUIRE(why);
    CHECK(*why == "10.1.2.3 is in a private range (10.0.0.0/8); allow it with allow_private "
                  "[\"10.1.2.3/32\"]");
    auto const mapped = p.refusal(ip::make_address("::ffff:127.0.0.1"));
    REQUIRE(mapped);
    CHECK(mapped->find("127.0.0.1 is in the loopback range") == 0);
    // a range of one address is that address, not something it is "in"
    auto const one = p.refusal(ip::make_address("::1"));
    REQUIRE(one);
    CHECK(one->find("::1 is the loopback address (::1/128)") == 0);
}

TEST_CASE("allow-lists let chosen ranges through", "[ssrf][allow]") {
    address_policy p;
    p.allow.push_back(cidr::parse("127.0.0.1/32").value());
    CHECK_FALSE(p.refusal(ip::make_address("127.0.0.1")));
    CHECK(p.refusal(ip::make_address("127.0.0.2")));
    CHECK_FALSE(p.refusal(ip::make_address("::ffff:127.0.0.1")));
    auto const per_webhook = p.with({cidr::parse("10.20.0.0/16").value()});
    CHECK_FALSE(per_webhook.refusal(ip::make_address("10.20.3.4")));
    CHECK(per_webhook.refusal(ip::make_address("10.21.0.1")));
    CHECK(p.refusal(ip::make_address("10.20.3.4"))); // the global policy is unchanged
    address_policy open;
    open.allow_all = true;
    CHECK_FALSE(open.refusal(ip::make_address("169.254.169.254")));
}

TEST_CASE("cidr parsing", "[ssrf][cidr]") {
    CHECK(cidr::parse("10.0.0.0/8").value().to_string() == "10.0.0.0/8");
    CHECK(cidr::parse("192.168.1.7").value().to_string() == "192.168.1.7/32");
    CHECK(cidr::parse("fd00::/8").value().to_string() == "fd00::/8");
    CHECK(cidr::parse("::1").value().to_string() == "::1/128");
    CHECK(cidr::parse("0.0.0.0/0").value().contains(ip::make_address("8.8.8.8")));
    CHECK_FALSE(cidr::parse("0.0.0.0/0").value().contains(ip::make_address("::1")));
    auto const host_bits = cidr::parse("10.1.2.3/8", "allow_private[0]");
    REQUIRE_FALSE(host_bits);
    CHECK(host_bits.error().field == "allow_private[0]");
    CHECK(host_bits.error().message.find("10.0.0.0/8") != std::string::npos);
    CHECK(cidr::parse("10.0.0.0/33").error().message.find("prefix") != std::string::npos);
    CHECK(cidr::parse("example.com/8").error().message.find("not an IP address") !=
          std::string::npos);
    CHECK_FALSE(cidr::parse("10.0.0.0/"));
    CHECK_FALSE(cidr::parse("fe80::/129"));
}

TEST_CASE("an IPv4-translated address is judged as the IPv4 address it carries",
          "[ssrf][issue12]") {
    // ::ffff:0:0:0/96 (RFC 6145): a SIIT translator sends ::ffff:0:127.0.0.1 to 127.0.0.1
    address_policy const p;
    for (auto const* a : {"::ffff:0:127.0.0.1", "::ffff:0:10.0.0.1", "::ffff:0:169.254.169.254",
                          "::ffff:0:0.0.0.0", "::ffff:0:192.168.1.1", "::ffff:0:7f00:1"}) {
        INFO(a);
        auto const why = p.refusal(ip::make_address(a));
        REQUIRE(why);
        CHECK_THAT(*why, !Catch::Contains("::ffff")); // named as the IPv4 address
    }
    auto const loop = p.refusal(ip::make_address("::ffff:0:127.0.0.1"));
    CHECK(loop->find("127.0.0.1 is in the loopback range") == 0);
    CHECK_FALSE(p.refusal(ip::make_address("::ffff:0:8.8.8.8")));
    address_policy local;
    local.allow.push_back(cidr::parse("127.0.0.1/32").value());
    CHECK_FALSE(local.refusal(ip::make_address("::ffff:0:127.0.0.1")));
    // neighbours of the two ranges are IPv6 addresses of their own
    CHECK_FALSE(detail::carried_v4(ip::make_address("::fffe:0:127.0.0.1")));
    CHECK_FALSE(detail::carried_v4(ip::make_address("::1:ffff:0:127.0.0.1")));
    CHECK_FALSE(detail::carried_v4(ip::make_address("::ffff:1:127.0.0.1")));
    CHECK(detail::carried_v4(ip::make_address("::ffff:127.0.0.1")) ==
          ip::make_address("127.0.0.1"));
    CHECK(detail::carried_v4(ip::make_address("::ffff:0:1.2.3.4")) == ip::make_address("1.2.3.4"));
}

} // namespace herald_test_address_policy
