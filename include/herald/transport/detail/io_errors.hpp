#ifndef HERALD_TRANSPORT_DETAIL_IO_ERRORS_HPP
#define HERALD_TRANSPORT_DETAIL_IO_ERRORS_HPP

// How http_transport words a failure while talking to the receiver, which failures of a
// pooled connection mean the server closed it while idle, and a name lookup raced against a
// deadline.

#include <herald/error.hpp>
#include <herald/time.hpp>

#include <boost/asio/error.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>

#include <atomic>
#include <string>
#include <string_view>
#include <utility>

namespace herald::detail {

// A failure while talking to the receiver, as a herald error where one fits and a sentence.
inline std::pair<boost::system::error_code, std::string>
describe_io_error(boost::system::error_code ec, std::string_view phase, duration timeout) {
    namespace http = boost::beast::http;
    if (ec == boost::beast::error::timeout)
        return {make_error_code(error::timeout), "no complete response within " +
                                                     format_duration(timeout) + " (timed out " +
                                                     std::string(phase) + ")"};
    if (ec == http::error::header_limit)
        return {make_error_code(error::response_too_large), "response headers too large"};
    if (ec == http::error::end_of_stream || ec == boost::asio::error::eof ||
        ec == boost::asio::ssl::error::stream_truncated)
        return {ec, "the receiver closed the connection " + std::string(phase)};
    if (ec.category() == http::make_error_code(http::error::bad_version).category())
        return {make_error_code(error::malformed_response),
                "malformed HTTP response: " + ec.message()};
    if (ec == boost::asio::error::operation_aborted)
        return {ec, "cancelled " + std::string(phase)};
    return {ec, ec.message() + " (" + std::string(phase) + ")"};
}

// A pooled connection that fails before any byte of a response was read was most likely
// closed by the server while idle: the request can go again on a fresh connection.
inline bool is_stale_connection(boost::system::error_code ec) {
    namespace http = boost::beast::http;
    return ec == http::error::end_of_stream || ec == boost::asio::error::eof ||
           ec == boost::asio::error::connection_reset || ec == boost::asio::error::broken_pipe ||
           ec == boost::asio::error::connection_aborted ||
           ec == boost::asio::ssl::error::stream_truncated;
}

// A name lookup raced against a deadline. getaddrinfo cannot be interrupted, so whichever of
// the answer and the timer comes first wakes the waiting coroutine through a thread-safe
// channel; the state is shared by both handlers and outlives the coroutine's frame.
struct pending_lookup {
    explicit pending_lookup(boost::asio::any_io_executor ex)
        : resolver(ex)
        , timer(boost::asio::make_strand(ex))
        , signal(ex, 2) {}
    boost::asio::ip::tcp::resolver resolver;
    boost::asio::steady_timer timer;
    boost::asio::experimental::concurrent_channel<void(boost::system::error_code)> signal;
    boost::system::error_code ec{};
    boost::asio::ip::tcp::resolver::results_type results{};
    std::atomic<bool> done{false};
};

} // namespace herald::detail

#endif
