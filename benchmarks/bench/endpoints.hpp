// herald-bench: where requests go: the sink's URL (target), and the two endpoints that never
// answer (a listener that never accepts, a port that refuses).

#ifndef HERALD_BENCH_ENDPOINTS_HPP
#define HERALD_BENCH_ENDPOINTS_HPP

#include "common.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/url/parse.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <stdexcept>
#include <string>

namespace herald_bench {

struct target {
    std::string url{};     // as given, e.g. http://127.0.0.1:4321/
    std::string host{};    // for the Host header
    std::string address{}; // to resolve
    std::string port{};
    std::string path{}; // request target, at least "/"

    static target parse(std::string const& url) {
        auto const u = boost::urls::parse_uri(url);
        if (!u || u->scheme() != "http")
            throw std::runtime_error("--url must be an absolute http:// URL, got '" + url + "'");
        target t;
        t.url = url;
        t.host = std::string(u->encoded_host_and_port());
        t.address = u->host_address();
        t.port = u->has_port() ? std::string(u->port()) : "80";
        t.path = std::string(u->encoded_target());
        if (t.path.empty() || t.path.front() != '/')
            t.path.insert(0, "/");
        return t;
    }

    /// The URL of the i-th of many webhooks on the same sink: `<url>/hook/<i>`.
    std::string hook_url(std::size_t i) const {
        std::string u = url;
        auto const q = u.find('?');
        if (q != std::string::npos)
            u.resize(q);
        if (!u.empty() && u.back() == '/')
            u.pop_back();
        return u + "/hook/" + std::to_string(i);
    }
};

/// A loopback listener that never accepts: connections complete in the kernel's backlog, the
/// request is written, and no answer ever comes.
class silent_listener {
public:
    silent_listener() {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
            ::listen(fd_, 64) != 0 ||
            ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0)
            throw std::runtime_error(std::string("silent listener: ") + std::strerror(errno));
        port_ = ntohs(a.sin_port);
    }
    silent_listener(silent_listener const&) = delete;
    silent_listener& operator=(silent_listener const&) = delete;
    ~silent_listener() { ::close(fd_); }

    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

private:
    int fd_ = -1;
    unsigned short port_ = 0;
};

/// A loopback port nothing listens on: connections are refused at once.
inline std::string refused_url() {
    asio::io_context io;
    tcp::acceptor a(io, {asio::ip::make_address("127.0.0.1"), 0});
    auto const port = a.local_endpoint().port();
    a.close();
    return "http://127.0.0.1:" + std::to_string(port) + "/refused";
}

} // namespace herald_bench

#endif
