#ifndef HERALD_ADMIN_PARAMS_HPP
#define HERALD_ADMIN_PARAMS_HPP

#include <herald/time.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

namespace herald::admin {

/** How the admin server listens and what it accepts. */
struct server_params {
    /// Loopback by default: the API manages where the application's data goes.
    std::string address = "127.0.0.1";
    std::uint16_t port = 0; ///< 0: any free port (see local_endpoint)
    /// The bearer token every /api call must present. Required, at least 16 characters.
    std::string token{};
    std::size_t body_limit = 1024 * 1024; ///< larger request bodies get 413
    std::size_t header_limit = 16 * 1024; ///< larger request headers get 431
    /// From its first byte, a request's head and body must arrive within this (one deadline,
    /// not renewed by each byte), and then its response be written within this.
    duration request_timeout = std::chrono::seconds(10);
    /// A connection may wait this long for the first byte of its next request.
    duration idle_timeout = std::chrono::seconds(30);
    /// Connection slots. When they are full, a new connection takes the slot of the connection
    /// that has waited longest for (or in) a request head; it is refused only when every slot
    /// is answering a request.
    std::size_t max_connections = 256;
    /// Slots one client address may hold; beyond them, its own longest-waiting connection
    /// makes room, so one address cannot displace the others' connections.
    std::size_t max_connections_per_peer = 64;
    /// Serve /metrics without the token (for a scraper on a trusted network).
    bool public_metrics = false;
};

} // namespace herald::admin

#endif
