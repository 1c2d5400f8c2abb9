#ifndef HERALD_ADMIN_DETAIL_LISTENER_HPP
#define HERALD_ADMIN_DETAIL_LISTENER_HPP

#include <herald/admin/detail/connections.hpp>
#include <herald/admin/params.hpp>
#include <herald/admin/session.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>

namespace herald::admin::detail {

/**
 * The admin server's accept loop and the connections it holds: one session per connection, on
 * a strand of its own, admitted by a connection_table (a new connection displaces the one that
 * has waited longest when the slots are full), and closed on stop.
 *
 * Thread safety: `stop` and `local_endpoint` from any thread; `run` once, on `get_executor()`.
 * Lifetimes: the params and the handler must outlive the completion of `run`.
 */
class listener final : public session_slots {
public:
    using tcp = boost::asio::ip::tcp;
    using strand_type = boost::asio::strand<boost::asio::any_io_executor>;

    /**
     * Binds and listens on `params.address:params.port`.
     * @throws std::invalid_argument when the token is missing or short or the address is not
     * an IP address; boost::system::system_error when the address cannot be bound.
     */
    listener(boost::asio::any_io_executor ex, server_params const& params, request_handler& handler)
        : ex_(ex)
        , strand_(boost::asio::make_strand(ex))
        , p_(params)
        , handler_(handler)
        , acceptor_(strand_)
        , drained_(strand_, std::chrono::steady_clock::time_point::max())
        , table_(p_.max_connections, p_.max_connections_per_peer) {
        if (p_.token.size() < 16)
            throw std::invalid_argument("admin: the token must be at least 16 characters long");
        boost::system::error_code ec;
        auto const address = boost::asio::ip::make_address(p_.address, ec);
        if (ec)
            throw std::invalid_argument("admin: '" + p_.address + "' is not an IP address");
        tcp::endpoint const ep(address, p_.port);
        acceptor_.open(ep.protocol(), ec);
        if (!ec)
            acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
        if (!ec)
            acceptor_.bind(ep, ec);
        if (!ec)
            acceptor_.listen(boost::asio::socket_base::max_listen_connections, ec);
        if (ec)
            throw boost::system::system_error(
                ec, "admin: cannot listen on " +
                        (address.is_v6() ? "[" + p_.address + "]" : p_.address) + ":" +
                        std::to_string(p_.port));
        endpoint_ = acceptor_.local_endpoint();
    }

    listener(listener const&) = delete;
    listener& operator=(listener const&) = delete;

    strand_type const& get_executor() const noexcept { return strand_; }
    tcp::endpoint local_endpoint() const { return endpoint_; }

    /// Accepts connections until `stop`, then waits for the open ones to close.
    boost::asio::awaitable<void> run();

    /// Stops accepting and closes every connection; requests being answered are cut.
    void stop() {
        std::lock_guard lock(mutex_);
        if (stopping_)
            return;
        stopping_ = true;
        boost::asio::post(strand_, [this] {
            boost::system::error_code ec;
            acceptor_.close(ec);
            std::lock_guard inner(mutex_);
            if (sessions_.empty())
                drained_.cancel();
        });
        for (auto& kv : sessions_)
            close_session(kv.first);
    }

    // session_slots
    void attach(std::uint64_t id, tcp::socket& socket) override {
        std::lock_guard lock(mutex_);
        sessions_[id].second = &socket;
        if (stopping_ || table_.displaced(id)) {
            boost::system::error_code ec;
            socket.close(ec);
        }
    }
    void waiting(std::uint64_t id) override {
        std::lock_guard lock(mutex_);
        table_.waiting(id, std::chrono::steady_clock::now());
    }
    bool busy(std::uint64_t id) override {
        std::lock_guard lock(mutex_);
        return table_.busy(id);
    }
    void detach(std::uint64_t id, tcp::socket& socket) override {
        std::lock_guard lock(mutex_);
        boost::system::error_code ec;
        socket.close(ec);
        sessions_.erase(id);
        table_.remove(id);
        if (stopping_ && sessions_.empty())
            boost::asio::post(strand_, [this] { drained_.cancel(); });
    }

private:
    /// Closes connection `id` on its strand. Called with mutex_ held.
    void close_session(std::uint64_t id) {
        auto it = sessions_.find(id);
        if (it == sessions_.end())
            return;
        boost::asio::post(it->second.first, [this, id] {
            std::lock_guard inner(mutex_);
            // null: the connection has not started yet, and closes itself when it sees
            // stopping_ or that it was displaced
            if (auto s = sessions_.find(id); s != sessions_.end() && s->second.second) {
                boost::system::error_code ec;
                s->second.second->close(ec);
            }
        });
    }

    /// Admits a connection just accepted: its id, or 0 when it is refused.
    std::uint64_t admit(tcp::socket& socket, tcp::endpoint const& peer) {
        std::lock_guard lock(mutex_);
        if (stopping_)
            return 0; // the socket closes as it goes out of scope
        auto const id = ++next_session_;
        // Full slots: the longest-waiting connection that has not sent a request makes room
        // (a slowloris must not keep out a client that sends its request at once).
        auto const a = table_.admit(id, peer.address(), std::chrono::steady_clock::now());
        if (!a.accepted)
            return 0; // every slot it could take is answering a request
        if (a.shed)
            close_session(*a.shed);
        // the socket's executor is the connection's strand
        sessions_.emplace(id, std::make_pair(socket.get_executor(), nullptr));
        return id;
    }

    boost::asio::any_io_executor ex_;
    strand_type strand_;
    server_params const& p_;
    request_handler& handler_;
    tcp::acceptor acceptor_;
    tcp::endpoint endpoint_;
    boost::asio::steady_timer drained_; ///< cancelled when the last connection ends after stop

    mutable std::mutex mutex_;
    bool stopping_ = false;
    std::uint64_t next_session_ = 0;
    /// Open connections, so stop can close them on their own strands.
    std::map<std::uint64_t, std::pair<boost::asio::any_io_executor, tcp::socket*>> sessions_;
    connection_table table_; ///< who holds the slots, and whom a new connection displaces
};

inline boost::asio::awaitable<void> listener::run() {
    constexpr auto use_tuple = boost::asio::as_tuple(boost::asio::use_awaitable);
    for (;;) {
        tcp::socket socket(boost::asio::make_strand(ex_));
        auto [ec] = co_await acceptor_.async_accept(socket, use_tuple);
        if (ec == boost::asio::error::operation_aborted || !acceptor_.is_open())
            break;
        if (ec)
            continue; // a connection that failed while being accepted (reset, out of files)
        auto const peer = socket.remote_endpoint(ec);
        if (ec)
            continue;
        auto const id = admit(socket, peer);
        if (id == 0)
            continue;
        auto ex = socket.get_executor();
        boost::asio::co_spawn(ex, run_session(std::move(socket), id, *this, handler_, p_),
                              boost::asio::detached);
    }
    // Wait for the connections stop closed to finish.
    for (;;) {
        {
            std::lock_guard lock(mutex_);
            if (sessions_.empty())
                break;
        }
        auto [ec] = co_await drained_.async_wait(use_tuple);
        (void)ec;
    }
}

} // namespace herald::admin::detail

#endif
