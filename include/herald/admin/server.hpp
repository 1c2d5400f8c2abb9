#ifndef HERALD_ADMIN_SERVER_HPP
#define HERALD_ADMIN_SERVER_HPP

#include <herald/admin/detail/listener.hpp>
#include <herald/admin/handlers/deliveries.hpp>
#include <herald/admin/handlers/events.hpp>
#include <herald/admin/handlers/logs.hpp>
#include <herald/admin/handlers/webhooks.hpp>
#include <herald/admin/message.hpp>
#include <herald/admin/params.hpp>
#include <herald/admin/routes.hpp>
#include <herald/admin/session.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <string>
#include <utility>

/**
 * The admin server: herald's REST API and the web page of the seed's Toolbox → Webhooks
 * (webhooks table, create and edit forms, View Logs), served over HTTP/1.1 from any
 * application that runs a dispatcher. docs/api.md describes every route.
 */
namespace herald::admin {

/**
 * The admin HTTP server over one dispatcher.
 *
 * `Dispatcher` is a basic_dispatcher (any policies): the routes use its store (create, get,
 * list, update, remove), its log (query), `publish` for POST /api/events (when its source is
 * publishable), `async_deliver_once` for Test and Redeliver, and `stats`. When the log is a
 * metrics_log, /metrics adds the attempt histogram, and when it is an activity_log (both:
 * metered_log) the webhooks table reads last status and success rate from it; otherwise those
 * are computed from log queries. A write_counting_log adds its failed writes to /metrics.
 *
 * The parts: a listener accepts connections (detail/listener.hpp), a session reads each one's
 * requests (session.hpp) and hands them to `handle`, which authenticates and dispatches them
 * through a route table (routes.hpp) to the handlers of each resource (handlers/) and the
 * Prometheus output (metrics.hpp).
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
class server : private request_handler {
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

    boost::asio::ip::tcp::endpoint local_endpoint() const { return listener_.local_endpoint(); }

    /// `http://ADDRESS:PORT/`, the page's address (IPv6 in brackets).
    std::string url() const;

    /**
     * Accepts connections until `stop`, then waits for the open ones to close. Completes with
     * `void(std::exception_ptr)`.
     */
    template <class CompletionToken>
    auto async_run(CompletionToken&& token) {
        return boost::asio::co_spawn(listener_.get_executor(), listener_.run(),
                                     std::forward<CompletionToken>(token));
    }

    /// Stops accepting and closes every connection; requests being answered are cut.
    void stop() { listener_.stop(); }

    /**
     * Answers one request, without a socket: routing, authentication, the handlers. The
     * connection loop calls it; tests and applications with an HTTP server of their own may too.
     */
    boost::asio::awaitable<response> handle(request req) override;

private:
    /// The routes of docs/api.md, to the handlers of each resource.
    route_table make_routes();
    /// handle without the catch: authentication, then the route table.
    boost::asio::awaitable<response> answer(request const& req);

    Dispatcher& d_;
    server_params p_;
    detail::webhook_handlers<Dispatcher> webhooks_;
    detail::log_handlers<typename Dispatcher::log_type> logs_;
    detail::delivery_handlers<Dispatcher> deliveries_;
    detail::event_handlers<Dispatcher> events_;
    route_table routes_;
    detail::listener listener_; ///< the accept loop and the connections, last: it starts them
};

template <class Dispatcher>
server(boost::asio::any_io_executor, Dispatcher&, server_params) -> server<Dispatcher>;

} // namespace herald::admin

#include <herald/admin/impl/server.hpp>

#endif
