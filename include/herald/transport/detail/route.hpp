#ifndef HERALD_TRANSPORT_DETAIL_ROUTE_HPP
#define HERALD_TRANSPORT_DETAIL_ROUTE_HPP

// What http_transport derives from a request's URL and trust settings, once per distinct
// (url, verify_tls, ca_file, allow_private) instead of once per attempt: every attempt to a
// webhook as it is now carries the same ones, so the parse, the pool key and the static part
// of the request head are shared.

#include <herald/address_policy.hpp>
#include <herald/error.hpp>
#include <herald/header_rules.hpp>
#include <herald/transport.hpp>

#include <boost/url/parse.hpp>

#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace herald::detail {

/**
 * One destination as http_transport reaches it. Immutable once made, shared by every attempt
 * whose request has the same URL and trust settings.
 */
struct route {
    // The request fields it was made from (the cache's match).
    std::string url{};
    bool verify_tls = true;
    std::optional<std::string> ca_file{};
    std::vector<cidr> allow_private{};

    bool https = false;
    bool ip_host = false; ///< an IP literal: no SNI, the certificate is checked by address
    std::string host{};   ///< as resolved: an IPv6 literal without brackets
    std::string port{};   ///< given or the scheme's default
    /// The static start of the request head: `POST <target> HTTP/1.1\r\nHost: <host[:port]>`,
    /// the target rooted ("/" when the URL has no path).
    std::string head_start{};
    /// The connection pool's key: origin and trust. A pooled connection was vetted under its
    /// request's allow-list: only a request with the same allow-list (and the same TLS trust)
    /// may reuse it.
    std::string pool_key{};
    /// The key of the TLS context (one per trust configuration); empty for http.
    std::string tls_key{};

    /// True when `req` would make this route.
    bool matches(http_request const& req) const {
        return url == req.url && verify_tls == req.verify_tls && ca_file == req.ca_file &&
               allow_private == req.allow_private;
    }
};

/// `POST <target> HTTP/1.1\r\nHost: <host_and_port>`, the target rooted.
inline std::string head_start(std::string_view target, std::string_view host_and_port) {
    std::string s;
    s.reserve(32 + target.size() + host_and_port.size());
    s.append("POST ");
    if (target.empty() || target.front() != '/')
        s.push_back('/');
    s.append(target).append(" HTTP/1.1\r\nHost: ").append(host_and_port);
    return s;
}

/**
 * Parses `req.url` and derives the route. Fails (with the sentence the log shows) for a URL
 * that does not parse and for a scheme other than http and https.
 */
inline result<route> make_route(http_request const& req) {
    auto const parsed = boost::urls::parse_uri(req.url);
    if (!parsed)
        return problem{
            parsed.error(), {}, "invalid URL '" + req.url + "': " + parsed.error().message()};
    auto const& u = *parsed;
    route r;
    r.https = iequals(u.scheme(), "https");
    if (!r.https && !iequals(u.scheme(), "http"))
        return problem{make_error_code(error::unsupported_scheme),
                       {},
                       "scheme '" + std::string(u.scheme()) +
                           "' is not supported by this transport"};
    r.url = req.url;
    r.verify_tls = req.verify_tls;
    r.ca_file = req.ca_file;
    r.allow_private = req.allow_private;
    r.host = u.host_address();
    r.port = u.has_port() ? std::string(u.port()) : r.https ? "443" : "80";
    r.ip_host = u.host_type() == boost::urls::host_type::ipv4 ||
                u.host_type() == boost::urls::host_type::ipv6;
    r.head_start = head_start(u.encoded_target(), u.encoded_host_and_port());
    auto& key = r.pool_key;
    key.reserve(32 + r.host.size());
    key.append(r.https ? "https://" : "http://").append(r.host).append(":").append(r.port);
    if (r.https) {
        key.append(req.verify_tls ? "|v|" : "|n");
        if (req.verify_tls && req.ca_file)
            key.append(*req.ca_file);
        r.tls_key = std::string(req.verify_tls ? "verify:" : "noverify:") +
                    (req.verify_tls && req.ca_file ? *req.ca_file : "");
    }
    for (auto const& c : req.allow_private)
        key.append("|").append(c.to_string());
    return r;
}

/**
 * The routes made so far, by URL, bounded: past `capacity` routes it starts afresh (a table
 * with more distinct destinations than that parses as it did before the cache, no worse).
 * Only routes that could be made are kept: a bad URL fails again, with its sentence, each
 * time. Thread safety: any thread.
 */
class route_cache {
public:
    static constexpr std::size_t default_capacity = 4096;

    explicit route_cache(std::size_t capacity = default_capacity)
        : capacity_(capacity) {}

    /// The route of `req`: the kept one, or one made now (and kept).
    result<std::shared_ptr<route const>> get(http_request const& req) {
        {
            std::lock_guard lock(mutex_);
            if (auto it = by_url_.find(std::string_view(req.url)); it != by_url_.end())
                for (auto const& r : it->second)
                    if (r->matches(req))
                        return r;
        }
        auto made = make_route(req); // outside the lock: parsing needs no shared state
        if (!made)
            return made.error();
        auto r = std::make_shared<route const>(std::move(*made));
        std::lock_guard lock(mutex_);
        if (size_ >= capacity_) {
            by_url_.clear();
            size_ = 0;
        }
        auto& v = by_url_[req.url];
        for (auto const& kept : v)
            if (kept->matches(req))
                return kept; // made meanwhile by another thread
        v.push_back(r);
        ++size_;
        return r;
    }

    /// Routes kept now.
    std::size_t size() const {
        std::lock_guard lock(mutex_);
        return size_;
    }

private:
    struct url_hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const {
            return std::hash<std::string_view>{}(s);
        }
    };

    std::size_t capacity_;
    mutable std::mutex mutex_{};
    std::unordered_map<std::string, std::vector<std::shared_ptr<route const>>, url_hash,
                       std::equal_to<>>
        by_url_{};
    std::size_t size_ = 0;
};

} // namespace herald::detail

#endif
