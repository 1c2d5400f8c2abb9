#ifndef HERALD_TRANSPORT_HTTP_TRANSPORT_PARAMS_HPP
#define HERALD_TRANSPORT_HTTP_TRANSPORT_PARAMS_HPP

// http_transport's settings, without Beast or OpenSSL: a configuration parser (the relay's
// options) includes this alone.

#include <herald/address_policy.hpp>
#include <herald/time.hpp>

#include <chrono>
#include <cstddef>

namespace herald {

using namespace std::chrono_literals;

struct http_transport_params {
    duration connect_timeout = 5s;  ///< per request, unless the webhook sets its own
    duration timeout = 10s;         ///< connect, TLS, send and receive in all; per webhook too
    std::size_t max_excerpt = 4096; ///< response body bytes kept for the log
    /// Response body bytes read to keep the connection reusable; a longer body is cut off
    /// and the connection closed (the status still counts).
    std::size_t max_drain = 1 << 20;
    std::size_t max_header = 16 * 1024; ///< response header bytes; more is a failure
    std::size_t max_idle_per_origin = 64;
    duration idle_timeout = 30s; ///< pooled connections older than this are not reused
    /// Which resolved addresses a request may connect to (the SSRF guard): by default only
    /// globally routable ones. A webhook's allow_private adds to it.
    address_policy addresses{};
    bool https_only = false; ///< refuse plain http
};

} // namespace herald

#endif
