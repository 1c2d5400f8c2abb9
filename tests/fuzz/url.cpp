// The SSRF guard at creation: validate() of a webhook whose URL is the input, and the address
// policy on addresses and ranges read from it. Properties, besides not crashing:
//  - an accepted URL is the one the transport connects to: its authority ends at `/`, `?` or
//    the end (Boost.URL reads `http://127.0.0.1.nip.io/` as host 127.0.0.1 and path
//    `.nip.io/`, which the transport would root and send to 127.0.0.1), and a host that
//    getaddrinfo reads as an IPv4 address (inet_aton: `127.1`, `0x7f000001`) is judged as
//    that address;
//  - an IPv6 address that carries an IPv4 one (mapped ::ffff:0:0/96, translated
//    ::ffff:0:0:0/96) is judged as the IPv4 address;
//  - a range that parses prints as a range that parses back to itself.
#include "fuzz.hpp"

#include <herald/webhook.hpp>

#include <boost/url/parse.hpp>

#include <arpa/inet.h>

#include <algorithm>

#include <string>

namespace herald_fuzz_url {

inline bool carries_v4(boost::asio::ip::address const& a) {
    if (!a.is_v6())
        return false;
    auto const b = a.to_v6().to_bytes();
    bool const zeros = std::all_of(b.begin(), b.begin() + 8, [](auto x) { return x == 0; });
    bool const mapped = b[8] == 0 && b[9] == 0 && b[10] == 0xff && b[11] == 0xff;
    bool const translated = b[8] == 0xff && b[9] == 0xff && b[10] == 0 && b[11] == 0;
    return zeros && (mapped || translated);
}

inline void check_url(std::string const& url) {
    herald::webhook_params p;
    p.name = "fuzz";
    p.url = url;
    p.events = herald::event_type_set::all();
    herald::address_policy const policy; // the default: globally routable addresses only
    if (!herald::validate(p, policy))
        return;
    auto const u = boost::urls::parse_uri(url);
    HERALD_FUZZ_CHECK("url", u.has_value(), url);
    auto const path = u->encoded_path();
    HERALD_FUZZ_CHECK("url", path.empty() || path.front() == '/', url);
    if (u->host_type() == boost::urls::host_type::name) {
        // getaddrinfo tries inet_aton before DNS: the name is that address on the wire
        std::string const host = u->host_address();
        in_addr a{};
        if (inet_aton(host.c_str(), &a) != 0) {
            auto const v4 = boost::asio::ip::address_v4(ntohl(a.s_addr));
            HERALD_FUZZ_CHECK("url", !policy.refusal(v4), url);
        }
    }
}

inline void check_address(std::uint8_t const* data, std::size_t size) {
    if (size < 16)
        return;
    boost::asio::ip::address_v6::bytes_type b{};
    std::copy_n(data, 16, b.begin());
    herald::address_policy const policy;
    // make the address carry an IPv4 one, mapped or translated (RFC 4291, RFC 6145)
    for (int form = 0; form < 2; ++form) {
        std::fill_n(b.begin(), 8, 0);
        b[8] = form == 0 ? 0 : 0xff;
        b[9] = form == 0 ? 0 : 0xff;
        b[10] = form == 0 ? 0xff : 0;
        b[11] = form == 0 ? 0xff : 0;
        boost::asio::ip::address_v6 const v6(b);
        boost::asio::ip::address_v4 const v4({b[12], b[13], b[14], b[15]});
        HERALD_FUZZ_CHECK("url", policy.refusal(v6).has_value() == policy.refusal(v4).has_value(),
                          v6.to_string());
    }
}

inline void check_range(std::string const& text) {
    auto const c = herald::cidr::parse(text);
    if (!c)
        return;
    auto const again = herald::cidr::parse(c->to_string());
    HERALD_FUZZ_CHECK("url", again && *again == *c, text);
    herald::address_policy policy;
    policy.allow.push_back(*c);
    boost::system::error_code ec;
    auto const a = boost::asio::ip::make_address(text.substr(0, text.find('/')), ec);
    HERALD_FUZZ_CHECK("url", !ec && c->contains(a), text);
    // an address that carries an IPv4 one is judged as that: allowing the IPv6 form is moot
    if (!carries_v4(a))
        HERALD_FUZZ_CHECK("url", !policy.refusal(a), text);
}

} // namespace herald_fuzz_url

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    using namespace herald_fuzz_url;
    std::string const text(herald_fuzz::text_of(data, size));
    check_url(text);
    // the same bytes as a host, bare and bracketed, behind each scheme
    check_url("http://" + text + "/hook");
    check_url("https://[" + text + "]:8443/");
    check_address(data, size);
    check_range(text);
    boost::system::error_code ec;
    auto const a = boost::asio::ip::make_address(text, ec);
    if (!ec)
        (void)herald::address_policy{}.refusal(a);
    return 0;
}
