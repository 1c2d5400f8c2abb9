#ifndef HERALD_ADMIN_SERVER_HPP
#define HERALD_ADMIN_SERVER_HPP

#include <herald/admin/detail/connections.hpp>
#include <herald/concepts.hpp>
#include <herald/error.hpp>
#include <herald/log.hpp>
#include <herald/time.hpp>
#include <herald/webhook.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/json/object.hpp>
#include <boost/url/params_view.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>

/**
 * The admin server: herald's REST API and the web page of the seed's Toolbox → Webhooks
 * (webhooks table, create and edit forms, View Logs), served over HTTP/1.1 from any
 * application that runs a dispatcher. docs/api.md describes every route.
 */
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

using request = boost::beast::http::request<boost::beast::http::string_body>;
using response = boost::beast::http::response<boost::beast::http::string_body>;

/**
 * The admin HTTP server over one dispatcher.
 *
 * `Dispatcher` is a basic_dispatcher (any policies): the routes use its store (create, get,
 * list, update, remove), its log (query), `publish` for POST /api/events (when its source is
 * publishable), `async_deliver_once` for Test and Redeliver, and `stats`. When the log offers
 * `metrics()` and `activity(id, now)` (metered_log), /metrics adds the attempt histogram and
 * the webhooks table reads last status and success rate from it; otherwise both are computed
 * from log queries.
 *
 * Every connection is a coroutine of its own on a strand, with read, write and idle
 * timeouts, so a slow or silent client holds only its own connection, and a client that holds
 * many without sending a request gives up their slots to new connections (server_params).
 *
 * Thread safety: `local_endpoint`, `url` and `stop` from any thread; the io_context may be run
 * by several threads. Lifetimes: the server and the dispatcher must outlive the completion of
 * `async_run`.
 */
template <class Dispatcher>
class server {
public:
    /**
     * Binds and listens on `params.address:params.port`.
     * @throws std::invalid_argument when the token is missing or short or the address is not
     * an IP address; boost::system::system_error when the address cannot be bound. The message
     * says which.
     */
    server(boost::asio::any_io_executor ex, Dispatcher& dispatcher, server_params params);

    server(server const&) = delete;
    server& operator=(server const&) = delete;

    boost::asio::ip::tcp::endpoint local_endpoint() const { return endpoint_; }

    /// `http://ADDRESS:PORT/`, the page's address (IPv6 in brackets).
    std::string url() const;

    /**
     * Accepts connections until `stop`, then waits for the open ones to close. Completes with
     * `void(std::exception_ptr)`.
     */
    template <class CompletionToken>
    auto async_run(CompletionToken&& token) {
        return boost::asio::co_spawn(strand_, run(), std::forward<CompletionToken>(token));
    }

    /// Stops accepting and closes every connection; requests being answered are cut.
    void stop();

    /**
     * Answers one request, without a socket: routing, authentication, the handlers. The
     * connection loop calls it; tests and applications with an HTTP server of their own may too.
     */
    boost::asio::awaitable<response> handle(request req);

private:
    using tcp = boost::asio::ip::tcp;
    using strand_type = boost::asio::strand<boost::asio::any_io_executor>;

    boost::asio::awaitable<void> run();
    boost::asio::awaitable<void> session(tcp::socket socket, std::uint64_t id);
    void session_ended(std::uint64_t id);
    /// Closes connection `id` on its strand. Called with mutex_ held.
    void close_session(std::uint64_t id);
    /// Whether `req` carries the token and is for a route that needs it: the only requests
    /// whose bodies are read (others are answered from their head).
    bool reads_body(request const& req) const;
    bool token_ok(request const& req) const;

    // Routes; each returns the full response.
    boost::asio::awaitable<response> route(request const& req);
    response list_webhooks(request const& req);
    response create_webhook(request const& req);
    response get_webhook(request const& req, webhook_id id);
    response replace_webhook(request const& req, webhook_id id);
    response patch_webhook(request const& req, webhook_id id);
    response delete_webhook(request const& req, webhook_id id);
    boost::asio::awaitable<response> test_webhook(request const& req, webhook_id id);
    response list_logs(request const& req, boost::urls::params_view params);
    response get_log(request const& req, std::string const& id);
    boost::asio::awaitable<response> redeliver(request const& req, std::string const& id);
    boost::asio::awaitable<response> publish_event(request const& req);
    response metrics(request const& req);

    boost::json::object webhook_json(webhook const& w, time_point now) const;
    boost::json::object activity_json(webhook_id id, time_point now) const;
    std::optional<log_entry> find_entry(std::string const& id) const;

    boost::asio::any_io_executor ex_;
    strand_type strand_;
    Dispatcher& d_;
    server_params p_;
    tcp::acceptor acceptor_;
    tcp::endpoint endpoint_;
    boost::asio::steady_timer drained_; ///< cancelled when the last connection ends after stop

    mutable std::mutex mutex_;
    bool stopping_ = false;
    std::uint64_t next_session_ = 0;
    /// Open connections, so stop can close them on their own strands.
    std::map<std::uint64_t, std::pair<boost::asio::any_io_executor, tcp::socket*>> sessions_;
    detail::connection_table table_; ///< who holds the slots, and whom a new connection displaces
};

template <class Dispatcher>
server(boost::asio::any_io_executor, Dispatcher&, server_params) -> server<Dispatcher>;

} // namespace herald::admin

#include <herald/admin/impl/server.hpp>

#endif
