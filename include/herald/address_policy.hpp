#ifndef HERALD_ADDRESS_POLICY_HPP
#define HERALD_ADDRESS_POLICY_HPP

#include <herald/error.hpp>
#include <herald/time.hpp>

#include <boost/asio/ip/address.hpp>

#include <array>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace herald {

/** An address range such as `10.0.0.0/8` or `fd00::/8`. */
class cidr {
public:
    cidr() = default;

    /**
     * Reads `address/prefix`, or a bare address (a single host). The address must be the
     * network's first address: `10.1.2.3/8` is refused as ambiguous.
     */
    static result<cidr> parse(std::string_view text, std::string const& field = "cidr") {
        auto bad = [&](std::string why) {
            std::string message;
            message.reserve(text.size() + why.size() + 3);
            message.append(1, '\'').append(text).append("' ").append(why);
            return make_problem(error::invalid_field, field, std::move(message));
        };
        auto const slash = text.find('/');
        boost::system::error_code ec;
        auto const addr = boost::asio::ip::make_address(std::string(text.substr(0, slash)), ec);
        if (ec)
            return bad("is not an IP address or CIDR range");
        unsigned const max = addr.is_v4() ? 32 : 128;
        unsigned prefix = max;
        if (slash != std::string_view::npos) {
            std::uint64_t n = 0;
            if (!detail::parse_uint(text.substr(slash + 1), n) || n > max)
                return bad("has an invalid prefix length (0 to " + std::to_string(max) + ")");
            prefix = static_cast<unsigned>(n);
        }
        cidr c(addr, prefix);
        if (c.network_ != bytes_of(addr))
            return bad("has host bits set; the range starts at " + c.to_string());
        return c;
    }

    cidr(boost::asio::ip::address const& a, unsigned prefix)
        : v4_(a.is_v4())
        , prefix_(prefix)
        , network_(mask(bytes_of(a), prefix)) {}

    bool contains(boost::asio::ip::address const& a) const {
        if (a.is_v4() != v4_)
            return false;
        return mask(bytes_of(a), prefix_) == network_;
    }

    std::string to_string() const {
        boost::asio::ip::address a;
        if (v4_) {
            boost::asio::ip::address_v4::bytes_type b;
            std::copy_n(network_.begin(), 4, b.begin());
            a = boost::asio::ip::address_v4(b);
        } else {
            a = boost::asio::ip::address_v6(network_);
        }
        return a.to_string() + "/" + std::to_string(prefix_);
    }

    friend bool operator==(cidr const&, cidr const&) = default;
    friend std::ostream& operator<<(std::ostream& os, cidr const& c) { return os << c.to_string(); }

private:
    using bytes = std::array<unsigned char, 16>;

    static bytes bytes_of(boost::asio::ip::address const& a) {
        bytes b{};
        if (a.is_v4()) {
            auto const v4 = a.to_v4().to_bytes();
            std::copy(v4.begin(), v4.end(), b.begin());
        } else {
            b = a.to_v6().to_bytes();
        }
        return b;
    }
    static bytes mask(bytes b, unsigned prefix) {
        for (unsigned i = 0; i < 16; ++i) {
            unsigned const keep = prefix >= (i + 1) * 8 ? 8 : prefix > i * 8 ? prefix - i * 8 : 0;
            b[i] &= static_cast<unsigned char>(keep == 0 ? 0 : 0xff << (8 - keep));
        }
        return b;
    }

    bool v4_ = true;
    unsigned prefix_ = 0;
    bytes network_{};
};

namespace detail {
struct named_range {
    char const* range;
    char const* what;
};

// Not globally routable (IANA special-purpose registries), per the SSRF reference.
inline constexpr named_range reserved_ranges[] = {
    {"0.0.0.0/8", "the 'this network' range"},
    {"10.0.0.0/8", "a private range"},
    {"100.64.0.0/10", "the carrier-grade NAT range"},
    {"127.0.0.0/8", "the loopback range"},
    {"169.254.0.0/16", "the link-local range (cloud metadata lives here)"},
    {"172.16.0.0/12", "a private range"},
    {"192.0.0.0/24", "the IETF protocol assignments range"},
    {"192.0.2.0/24", "a documentation range"},
    {"192.168.0.0/16", "a private range"},
    {"198.18.0.0/15", "the benchmarking range"},
    {"198.51.100.0/24", "a documentation range"},
    {"203.0.113.0/24", "a documentation range"},
    {"224.0.0.0/4", "the multicast range"},
    {"240.0.0.0/4", "the reserved range"},
    {"255.255.255.255/32", "the broadcast address"},
    {"::/128", "the unspecified address"},
    {"::1/128", "the loopback address"},
    {"::/96", "the deprecated IPv4-compatible range"},
    {"64:ff9b::/96", "the NAT64 range"},
    {"64:ff9b:1::/48", "the local-use NAT64 range"},
    {"100::/64", "the discard-only range"},
    {"2001::/32", "the Teredo range"},
    {"2001:db8::/32", "a documentation range"},
    {"2002::/16", "the 6to4 range"},
    {"fc00::/7", "the unique-local (private) range"},
    {"fe80::/10", "the link-local range"},
    {"ff00::/8", "the multicast range"},
};
} // namespace detail

namespace detail {
/// The IPv4 address an IPv6 one stands for on the wire: IPv4-mapped `::ffff:0:0/96` (RFC 4291)
/// and IPv4-translated `::ffff:0:0:0/96` (RFC 6145; `::ffff:0:127.0.0.1` is 127.0.0.1 to a
/// SIIT translator).
inline std::optional<boost::asio::ip::address> carried_v4(boost::asio::ip::address const& a) {
    if (!a.is_v6())
        return std::nullopt;
    auto const b = a.to_v6().to_bytes();
    for (int i = 0; i < 8; ++i)
        if (b[i] != 0)
            return std::nullopt;
    bool const mapped = b[8] == 0 && b[9] == 0 && b[10] == 0xff && b[11] == 0xff;
    bool const translated = b[8] == 0xff && b[9] == 0xff && b[10] == 0 && b[11] == 0;
    if (!mapped && !translated)
        return std::nullopt;
    return boost::asio::ip::address_v4(
        boost::asio::ip::address_v4::bytes_type{b[12], b[13], b[14], b[15]});
}
} // namespace detail

/**
 * Which destinations a request may go to. By default only globally routable addresses:
 * private, loopback, link-local (cloud metadata), multicast and the other special ranges are
 * refused, and an IPv4-mapped (`::ffff:0:0/96`) or IPv4-translated (`::ffff:0:0:0/96`) IPv6
 * address is judged as the IPv4 address it carries. `allow`
 * lets chosen ranges through (e.g. `127.0.0.1/32` for a local receiver).
 */
struct address_policy {
    std::vector<cidr> allow{};
    bool allow_all = false; ///< no guard at all (tests, trusted networks)

    /// Why `a` may not be used, or nothing when it may.
    std::optional<std::string> refusal(boost::asio::ip::address a) const {
        if (allow_all)
            return std::nullopt;
        if (auto carried = detail::carried_v4(a))
            a = *carried;
        for (auto const& c : allow)
            if (c.contains(a))
                return std::nullopt;
        static auto const ranges = [] {
            std::vector<std::pair<cidr, char const*>> v;
            for (auto const& r : detail::reserved_ranges)
                v.emplace_back(cidr::parse(r.range).value(), r.what);
            return v;
        }();
        for (auto const& [range, what] : ranges) {
            if (range.contains(a))
                // "::1 is the loopback address", "127.0.0.1 is in the loopback range"
                return a.to_string() +
                       (std::string_view(what).ends_with(" address") ? " is " : " is in ") + what +
                       " (" + range.to_string() + "); allow it with allow_private [\"" +
                       cidr(a, a.is_v4() ? 32 : 128).to_string() + "\"]";
        }
        return std::nullopt;
    }

    /// A policy that also allows `more` (a webhook's own allow-list on top of the global one).
    address_policy with(std::vector<cidr> const& more) const {
        address_policy p = *this;
        p.allow.insert(p.allow.end(), more.begin(), more.end());
        return p;
    }
};

} // namespace herald

#endif
