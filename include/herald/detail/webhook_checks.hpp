#ifndef HERALD_DETAIL_WEBHOOK_CHECKS_HPP
#define HERALD_DETAIL_WEBHOOK_CHECKS_HPP

// The checks of a webhook's name and URL, and the reading of its JSON arrays: the parts of
// validate() and parse_webhook_params() (webhook.hpp) that need no webhook type.

#include <herald/address_policy.hpp>
#include <herald/detail/host.hpp>
#include <herald/detail/utf8.hpp>
#include <herald/error.hpp>
#include <herald/header_rules.hpp>

#include <boost/asio/ip/address.hpp>
#include <boost/json/value.hpp>
#include <boost/url/parse.hpp>

#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace herald {

inline constexpr std::size_t max_webhook_name = 128;
inline constexpr std::size_t max_webhook_url = 2048;

namespace detail {

// Reads a JSON array of strings, each through `parse` (which names `field[i]` in its problem).
template <class T, class Parse>
result<void> parse_each(boost::json::value const& val, std::string const& field,
                        char const* not_array, std::vector<T>& out, Parse parse) {
    auto const* arr = val.if_array();
    if (!arr)
        return make_problem(error::invalid_field, field, not_array);
    for (std::size_t i = 0; i < arr->size(); ++i) {
        auto item = field + "[" + std::to_string(i) + "]";
        if (!(*arr)[i].is_string())
            return make_problem(error::invalid_field, item, "must be a string");
        auto r = parse((*arr)[i].get_string(), std::move(item));
        if (!r)
            return r.error();
        out.push_back(std::move(*r));
    }
    return {};
}
// Unicode spaces a name may not begin or end with (trimmed): the ASCII ones and the Zs
// category, so " a" and "a\u00A0" are the name "a".
inline bool is_name_space(long cp) {
    return cp == ' ' || (cp >= 0x09 && cp <= 0x0d) || cp == 0xa0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200a) || cp == 0x202f || cp == 0x205f || cp == 0x3000;
}

// Characters that are invisible or reorder the text around them: a name that shows as
// "billing" in a list may not be another. C0 and C1 controls, the bidi embeddings,
// overrides, isolates and marks (U+202A-U+202E, U+2066-U+2069, U+200E, U+200F, U+061C), zero
// width space, word joiner and invisible operators (U+200B, U+2060-U+2064), line and paragraph
// separators, the soft hyphen, U+180E, the BOM and the interlinear annotation characters.
// Zero-width (non-)joiners stay: scripts and emoji sequences need them.
inline bool is_invisible_in_name(long cp) {
    return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0xad || cp == 0x61c || cp == 0x180e ||
           cp == 0x200b || cp == 0x200e || cp == 0x200f || (cp >= 0x2028 && cp <= 0x202e) ||
           (cp >= 0x2060 && cp <= 0x2064) || (cp >= 0x2066 && cp <= 0x2069) || cp == 0xfeff ||
           (cp >= 0xfff9 && cp <= 0xfffb);
}

/// `name` without the spaces around it (ASCII and Unicode, see is_name_space).
inline std::string trim_name(std::string_view name) {
    std::size_t begin = 0, end = 0;
    bool found = false;
    for (std::size_t i = 0; i < name.size();) {
        auto const at = i;
        if (!is_name_space(next_code_point(name, i))) {
            if (!found)
                begin = at;
            found = true;
            end = i;
        }
    }
    return found ? std::string(name.substr(begin, end - begin)) : std::string();
}

inline std::optional<std::string> name_problem(std::string_view name) {
    if (trim_name(name).empty())
        return "is required";
    if (name.size() > max_webhook_name)
        return "is longer than " + std::to_string(max_webhook_name) + " characters";
    for (std::size_t i = 0; i < name.size();) {
        auto const cp = next_code_point(name, i);
        if (cp < 0)
            return "is not valid UTF-8";
        if (is_invisible_in_name(cp)) {
            char code[24];
            std::snprintf(code, sizeof code, "U+%04lX", static_cast<unsigned long>(cp));
            return std::string("contains ") + code +
                   (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)
                        ? ", a control character"
                        : ", an invisible or text-reordering character");
        }
    }
    return std::nullopt;
}

/**
 * Why `url` may not be a webhook's, or nothing. Beyond what Boost.URL checks: the authority
 * must end where the text says (Boost.URL 1.81 takes the longest IPv4 prefix as the host, so
 * `http://127.0.0.1.nip.io:18490/x` would be host 127.0.0.1, port 80, path
 * `.nip.io:18490/x`), the host must be an IP literal or a DNS name (see dns_name_problem;
 * nothing percent-encoded, nothing getaddrinfo would read as IPv4), and the port a number
 * from 1 to 65535. So the transport connects to exactly the host and port the text names and
 * sends exactly its path and query.
 */
inline std::optional<std::string> url_problem(std::string const& url, bool https_only,
                                              address_policy const& addresses) {
    if (url.empty())
        return "is required";
    if (url.size() > max_webhook_url)
        return "is longer than " + std::to_string(max_webhook_url) + " characters";
    auto const u = boost::urls::parse_uri(url);
    if (!u)
        return "'" + url + "' is not an absolute URL (" + u.error().message() + ")";
    if (!iequals(u->scheme(), "http") && !iequals(u->scheme(), "https"))
        return "scheme '" + std::string(u->scheme()) + "' is not http or https";
    if (https_only && !iequals(u->scheme(), "https"))
        return "must be https (plain http is refused here)";
    if (!u->has_authority() || u->encoded_host().empty())
        return "has no host";
    if (u->has_userinfo())
        return "must not contain user-info (credentials belong in headers)";
    if (u->has_fragment())
        return "must not contain a fragment";
    auto const auth_begin = u->scheme().size() + 3; // "scheme://"
    auto const auth_end = auth_begin + u->encoded_authority().size();
    if (url.compare(u->scheme().size(), 3, "://") != 0 ||
        (auth_end < url.size() && url[auth_end] != '/' && url[auth_end] != '?')) {
        auto const raw = std::string_view(url).substr(auth_begin);
        return "host and port '" + std::string(raw.substr(0, raw.find_first_of("/?#"))) +
               "' are not a valid host (an IP address or a DNS name) and an optional port";
    }
    if (u->has_port()) {
        auto const port = u->port();
        bool ok = !port.empty() && port.size() <= 5 && port.front() != '0';
        for (char const c : port)
            ok = ok && c >= '0' && c <= '9';
        if (!ok || std::stoul(std::string(port)) > 65535)
            return "has an invalid port '" + std::string(port) + "' (1 to 65535)";
    }
    switch (u->host_type()) {
    case boost::urls::host_type::ipv4:
    case boost::urls::host_type::ipv6: {
        boost::system::error_code ec;
        auto const a = boost::asio::ip::make_address(u->host_address(), ec);
        if (ec)
            return "host '" + std::string(u->encoded_host()) + "' is not a valid IP address";
        if (auto why = addresses.refusal(a))
            return "refused: " + *why;
        break;
    }
    case boost::urls::host_type::name:
        if (auto why = dns_name_problem(u->encoded_host()))
            return why;
        break;
    default:
        return "host '" + std::string(u->encoded_host()) + "' is not an IP address or a DNS name";
    }
    return std::nullopt;
}
} // namespace detail
} // namespace herald

#endif
