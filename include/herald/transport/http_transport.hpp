#ifndef HERALD_HTTP_TRANSPORT_HPP
#define HERALD_HTTP_TRANSPORT_HPP

#include <herald/address_policy.hpp>
#include <herald/concepts.hpp>
#include <herald/error.hpp>
#include <herald/transport.hpp>
#include <herald/transport/detail/route.hpp>
#include <herald/transport/http_transport_params.hpp>
#include <herald/version.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace herald {

using namespace std::chrono_literals;

/**
 * The default transport: HTTP/1.1 POST over Boost.Beast, plain or TLS, with a keep-alive
 * connection pool per origin (scheme, host, port and TLS settings). A connection goes back to
 * the pool only after a complete response that allows keep-alive; a pooled connection the
 * server closed meanwhile is replaced once, transparently. Redirects are never followed.
 *
 * TLS: 1.2 or newer, SNI, the peer's certificate checked against the system trust store (or
 * the request's CA bundle) with host-name verification; a request may opt out of the check.
 *
 * SSRF guard: the host is resolved once, every resolved address must pass `addresses` (plus
 * the request's allow_private), and the connection goes only to those vetted addresses.
 *
 * Copies share one pool. Thread safety: async_send may be called concurrently from any
 * executor; each call's I/O runs on the calling coroutine's executor, and so does the
 * deadline timer of a connection it opens: with an io_context run by several threads, call it
 * from a strand (the dispatcher does).
 */
class http_transport {
public:
    explicit http_transport(http_transport_params p = {})
        : p_(std::make_shared<http_transport_params const>(std::move(p)))
        , pool_(std::make_shared<pool>()) {}

    http_transport_params const& params() const { return *p_; }

    /// Sets which resolved addresses requests may connect to (dispatcher_params::addresses
    /// sets it for the table and the transport at once). Call before sending.
    void guard(address_policy const& a) {
        auto p = *p_;
        p.addresses = a;
        p_ = std::make_shared<http_transport_params const>(std::move(p));
    }

    /// Sends `req`; the outcome, failures included, is in the send_result.
    boost::asio::awaitable<send_result> async_send(http_request const& req);

    /// Connections opened so far (a measure of keep-alive reuse).
    std::uint64_t connections_opened() const {
        std::lock_guard lock(pool_->mutex);
        return pool_->opened;
    }

    /**
     * Closes every idle pooled connection (of this transport and its copies). An idle
     * connection keeps its deadline timer armed until the timer next fires, which keeps an
     * io_context's run() busy: the dispatcher calls this when it finishes, so run() returns.
     */
    void close_idle() {
        std::map<std::string, std::vector<connection_ptr>, std::less<>> idle;
        {
            std::lock_guard lock(pool_->mutex);
            idle.swap(pool_->idle);
        }
        for (auto& [origin, v] : idle)
            for (auto& c : v)
                boost::asio::post(c->timer.get_executor(), [c] { c->close(); });
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
    using socket_type = boost::asio::ip::tcp::socket;
    using tls_stream = boost::asio::ssl::stream<socket_type>;

    /**
     * One connection, plain or TLS. Its deadline is watched by one timer that is re-armed
     * lazily: an exchange only moves `deadline` forward, and the timer, when it fires, either
     * cancels the socket (the deadline passed) or sleeps until the current deadline. Keep-alive
     * traffic therefore arms no timer per request (no timerfd_settime per request).
     */
    struct connection : std::enable_shared_from_this<connection> {
        explicit connection(boost::asio::any_io_executor const& ex)
            : timer(ex) {}

        std::optional<socket_type> plain{}; // http
        std::optional<tls_stream> tls{};    // https, over its own socket
        boost::asio::steady_timer timer;
        std::chrono::steady_clock::time_point deadline =
            std::chrono::steady_clock::time_point::max();
        std::chrono::steady_clock::time_point armed_for =
            std::chrono::steady_clock::time_point::max();
        bool timer_armed = false;
        bool timed_out = false;
        std::string head{};                 // the request head, rebuilt in place per request
        boost::beast::flat_buffer buffer{}; // response bytes read ahead
        std::chrono::steady_clock::time_point idle_since{};
        std::shared_ptr<boost::asio::ssl::context> context{}; // outlives the TLS stream

        /// Watches `until`: cancels the socket's operations once it passes.
        void watch(std::chrono::steady_clock::time_point until);
        /// Stops watching: the connection goes idle (the timer may still fire, harmlessly).
        void unwatch() { deadline = std::chrono::steady_clock::time_point::max(); }
        void close();
        socket_type& socket() { return tls ? tls->next_layer() : *plain; }
    };
    using connection_ptr = std::shared_ptr<connection>;

    struct pool {
        std::mutex mutex{};
        std::map<std::string, std::vector<connection_ptr>, std::less<>> idle{};
        std::map<std::string, std::shared_ptr<boost::asio::ssl::context>, std::less<>> contexts{};
        std::uint64_t opened = 0;
        detail::route_cache routes{}; // what each request's URL and trust settings imply
    };

    /** How one exchange on a connection ended. */
    enum class exchange_end { keep, close, stale, failed };

    connection_ptr take_idle(std::string const& key);
    void give_back(std::string const& key, connection_ptr c);
    /// The TLS context of `req`'s trust settings, `key` naming them (detail::route::tls_key).
    result<std::shared_ptr<boost::asio::ssl::context>> tls_context(http_request const& req,
                                                                   std::string const& key);

    template <class Stream>
    boost::asio::awaitable<exchange_end> exchange(Stream& stream, connection& c, bool reused,
                                                  std::string_view body, duration total,
                                                  send_result& res);

    std::shared_ptr<http_transport_params const> p_;
    std::shared_ptr<pool> pool_;
};

static_assert(pooling_transport<http_transport> && address_guarded<http_transport>);

} // namespace herald

#include <herald/transport/impl/http_transport.hpp>

#endif
