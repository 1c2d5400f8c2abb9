#ifndef HERALD_HTTP_TRANSPORT_HPP
#define HERALD_HTTP_TRANSPORT_HPP

#include <herald/concepts.hpp>
#include <herald/error.hpp>
#include <herald/transport.hpp>
#include <herald/version.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/span_body.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace herald {

using namespace std::chrono_literals;

struct http_transport_params {
    duration connect_timeout = 5s;  ///< per request, unless the webhook sets its own
    duration timeout = 10s;         ///< connect, send and receive in all; per webhook too
    std::size_t max_excerpt = 4096; ///< response body bytes kept for the log
    /// Response body bytes read to keep the connection reusable; a longer body is cut off
    /// and the connection closed (the status still counts).
    std::size_t max_drain = 1 << 20;
    std::size_t max_header = 16 * 1024; ///< response header bytes; more is a failure
    std::size_t max_idle_per_origin = 64;
    duration idle_timeout = 30s; ///< pooled connections older than this are not reused
};

/**
 * The default transport: HTTP/1.1 POST over Boost.Beast, with a keep-alive connection pool
 * per origin (scheme, host, port). A connection goes back to the pool only after a complete
 * response that allows keep-alive; a pooled connection the server closed meanwhile is
 * replaced once, transparently. Redirects are never followed.
 *
 * Plain `http` only in this version; `https` URLs fail with error::unsupported_scheme.
 *
 * Copies share one pool. Thread safety: async_send may be called concurrently from any
 * executor; each call's I/O runs on the calling coroutine's executor.
 */
class http_transport {
public:
    explicit http_transport(http_transport_params p = {})
        : p_(std::make_shared<http_transport_params const>(p))
        , pool_(std::make_shared<pool>()) {}

    http_transport_params const& params() const { return *p_; }

    /// Sends `req`; the outcome, failures included, is in the send_result.
    boost::asio::awaitable<send_result> async_send(http_request req);

    /// Connections opened so far (a measure of keep-alive reuse).
    std::uint64_t connections_opened() const {
        std::lock_guard lock(pool_->mutex);
        return pool_->opened;
    }

    /// Connections idle in the pool now.
    std::size_t idle_connections() const {
        std::lock_guard lock(pool_->mutex);
        std::size_t n = 0;
        for (auto const& [origin, v] : pool_->idle)
            n += v.size();
        return n;
    }

private:
    struct connection {
        explicit connection(boost::asio::any_io_executor ex)
            : stream(std::move(ex)) {}
        boost::beast::tcp_stream stream;
        boost::beast::flat_buffer buffer;
        std::chrono::steady_clock::time_point idle_since;
    };
    using connection_ptr = std::unique_ptr<connection>;

    struct pool {
        std::mutex mutex;
        std::map<std::string, std::vector<connection_ptr>, std::less<>> idle;
        std::uint64_t opened = 0;
    };

    connection_ptr take_idle(std::string const& origin);
    void give_back(std::string const& origin, connection_ptr c);

    std::shared_ptr<http_transport_params const> p_;
    std::shared_ptr<pool> pool_;
};

static_assert(transport<http_transport>);

} // namespace herald

#include <herald/impl/http_transport.hpp>

#endif
