// herald-receiver: a tiny webhook receiver for demos and scripts.
//
// Listens on a loopback address, answers every request with a fixed status and prints one JSON
// line per request to stdout:
//   {"method":..,"target":..,"headers":{..},"body":..,"received_at":"2024-01-01T00:00:00.000Z"}

#include <herald/detail/json_writer.hpp>
#include <herald/detail/utf8.hpp>
#include <herald/signature.hpp>
#include <herald/time.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include <array>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

constexpr std::string_view program = "herald-receiver";
constexpr std::size_t max_body_bytes = 1024 * 1024;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

constexpr std::string_view usage = R"(usage: herald-receiver [options]

Receives webhooks on a loopback address and prints one JSON line per request to stdout.

options:
  --host ADDR        loopback address to listen on (default 127.0.0.1; 127.0.0.0/8 or ::1)
  --port N           port to listen on (default 0: any free port)
  --port-file FILE   write the chosen port number to FILE once listening
  --count N          exit 0 after N requests were answered (default: run until signalled)
  --status CODE      status code to answer with, 200-599 (default 204)
  --secret whsec_... verify Standard Webhooks signatures with this secret (repeatable);
                     each line gains "signature": {"valid", "reason", "message"}; a bad one gets 401
  --help             show this help and exit
)";

struct usage_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct options {
    std::string host = "127.0.0.1";
    std::uint16_t port = 0;
    std::string port_file;
    std::optional<std::uint64_t> count;
    unsigned status = 204;
    std::vector<herald::secret> secrets;
};

template <class Int>
Int parse_number(std::string_view option, std::string_view text, Int min, Int max) {
    Int value{};
    auto const [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size() || value < min || value > max) {
        std::string const range =
            max == std::numeric_limits<Int>::max()
                ? "of at least " + std::to_string(min)
                : "from " + std::to_string(min) + " to " + std::to_string(max);
        throw usage_error("option " + std::string(option) + " expects a number " + range +
                          ", got '" + std::string(text) + "'");
    }
    return value;
}

// Returns nullopt when --help was requested.
std::optional<options> parse_options(int argc, char** argv) {
    options opts;
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        if (arg == "--help" || arg == "-h") {
            return std::nullopt;
        }
        // Accept both "--opt value" and "--opt=value".
        std::optional<std::string_view> inline_value;
        if (auto eq = arg.find('='); arg.starts_with("--") && eq != std::string_view::npos) {
            inline_value = arg.substr(eq + 1);
            arg = arg.substr(0, eq);
        }
        auto value = [&]() -> std::string_view {
            if (inline_value) {
                return *inline_value;
            }
            if (i + 1 >= argc) {
                throw usage_error("option " + std::string(arg) + " requires a value");
            }
            return argv[++i];
        };

        if (arg == "--host") {
            opts.host = value();
        } else if (arg == "--port") {
            opts.port = static_cast<std::uint16_t>(parse_number<unsigned>(arg, value(), 0, 65535));
        } else if (arg == "--port-file") {
            opts.port_file = value();
            if (opts.port_file.empty()) {
                throw usage_error("option --port-file requires a non-empty file name");
            }
        } else if (arg == "--count") {
            opts.count = parse_number<std::uint64_t>(arg, value(), 1,
                                                     std::numeric_limits<std::uint64_t>::max());
        } else if (arg == "--status") {
            opts.status = parse_number<unsigned>(arg, value(), 200, 599);
        } else if (arg == "--secret") {
            auto s = herald::secret::parse(value(), "--secret");
            if (!s)
                throw usage_error(s.error().what());
            opts.secrets.push_back(std::move(*s));
        } else {
            throw usage_error("unknown option '" + std::string(arg) + "'");
        }
    }
    return opts;
}

asio::ip::address loopback_address(std::string const& host) {
    error_code ec;
    auto const address = asio::ip::make_address(host, ec);
    if (ec || !address.is_loopback()) {
        throw usage_error("option --host must be a loopback address (127.0.0.0/8 or ::1), got '" +
                          host + "'");
    }
    return address;
}

// Write-then-rename, so a script polling for the file never reads it half-written.
void write_port_file(std::string const& path, std::uint16_t port) {
    std::string const temp = path + ".tmp";
    {
        std::ofstream out(temp, std::ios::trunc);
        out << port << '\n';
        if (!out.flush()) {
            throw std::runtime_error("cannot write port file '" + temp + "'");
        }
    }
    std::error_code ec;
    std::filesystem::rename(temp, path, ec);
    if (ec) {
        throw std::runtime_error("cannot write port file '" + path + "': " + ec.message());
    }
}

// Invalid UTF-8 becomes U+FFFD: Boost.JSON copies string bytes verbatim, and one stray byte in
// a header or body would otherwise make the whole line invalid JSON.
std::string valid_utf8(std::string_view in) {
    std::string out;
    out.reserve(in.size());
    herald::detail::append_utf8(out, in);
    return out;
}

// The receiver's side of Standard Webhooks: herald::verify over the request as received.
std::optional<herald::verify_failure> check_signature(http::request<http::string_body> const& req,
                                                      std::vector<herald::secret> const& secrets) {
    auto verdict = herald::verify(req, req.body(), secrets);
    if (verdict)
        return std::nullopt;
    return verdict.error();
}

std::string describe(http::request<http::string_body> const& req,
                     std::chrono::system_clock::time_point received_at,
                     std::vector<herald::secret> const& secrets,
                     std::optional<herald::verify_failure> const& failure) {
    json::object headers;
    for (auto const& field : req) {
        std::string name = valid_utf8(field.name_string());
        for (auto& c : name) {
            if (c >= 'A' && c <= 'Z') {
                c = static_cast<char>(c - 'A' + 'a');
            }
        }
        std::string const value = valid_utf8(field.value());
        if (auto* existing = headers.if_contains(name)) {
            // Repeated fields combine into one comma-separated value (RFC 9110, 5.3).
            existing->as_string().append(", ");
            existing->as_string().append(value);
        } else {
            headers.emplace(name, value);
        }
    }

    json::object line;
    line["method"] = req.method_string();
    line["target"] = valid_utf8(req.target());
    line["headers"] = std::move(headers);
    error_code ec;
    json::value body = json::parse(req.body(), ec);
    if (ec) {
        body = valid_utf8(req.body());
    }
    line["body"] = std::move(body);
    line["received_at"] = herald::format_rfc3339(received_at);
    if (!secrets.empty()) {
        json::object sig;
        sig["valid"] = !failure;
        if (failure) {
            sig["reason"] = herald::to_string(failure->reason);
            sig["message"] = failure->message;
        }
        line["signature"] = std::move(sig);
    }
    return herald::detail::serialize_json(line); // 2.5, not Boost.JSON's 2.5E0
}

class receiver {
public:
    receiver(asio::io_context& ioc, tcp::endpoint const& endpoint, options const& opts)
        : ioc_(ioc)
        , acceptor_(ioc)
        , opts_(opts) {
        acceptor_.open(endpoint.protocol());
        acceptor_.set_option(tcp::acceptor::reuse_address(true));
        acceptor_.bind(endpoint);
        acceptor_.listen(asio::socket_base::max_listen_connections);
    }

    tcp::endpoint local_endpoint() const { return acceptor_.local_endpoint(); }

    void start() { asio::co_spawn(ioc_, accept_loop(), asio::detached); }

private:
    asio::awaitable<void> accept_loop() {
        for (;;) {
            auto [ec, socket] = co_await acceptor_.async_accept(use_tuple);
            if (ec) {
                if (ec == asio::error::operation_aborted) {
                    co_return;
                }
                continue; // e.g. the peer reset before we accepted
            }
            asio::co_spawn(ioc_, session(std::move(socket)), asio::detached);
        }
    }

    asio::awaitable<void> session(tcp::socket socket) {
        try {
            co_await serve(socket);
        } catch (std::exception const& e) {
            std::cerr << program << ": connection error: " << e.what() << '\n';
        }
    }

    asio::awaitable<void> serve(tcp::socket& socket) {
        beast::flat_buffer buffer; // kept across requests: it may hold pipelined bytes
        for (;;) {
            http::request_parser<http::string_body> parser;
            parser.body_limit(max_body_bytes);

            error_code ec;
            std::tie(ec, std::ignore) =
                co_await http::async_read_header(socket, buffer, parser, use_tuple);
            if (!ec && expects_continue(parser.get())) {
                http::response<http::empty_body> go_on{http::status::continue_, 11};
                std::tie(ec, std::ignore) = co_await http::async_write(socket, go_on, use_tuple);
            }
            if (!ec) {
                std::tie(ec, std::ignore) =
                    co_await http::async_read(socket, buffer, parser, use_tuple);
            }
            if (ec) {
                if (auto const status = rejection_status(ec)) {
                    auto const& req = parser.get();
                    std::cerr << program << ": rejected ";
                    if (req.target().empty()) {
                        std::cerr << "malformed request";
                    } else {
                        std::cerr << req.method_string() << ' ' << req.target();
                    }
                    std::cerr << ": " << ec.message() << " (" << static_cast<unsigned>(*status)
                              << ")\n";
                    co_await reject(socket, *status);
                }
                co_return; // otherwise the peer went away
            }
            auto const received_at = std::chrono::system_clock::now();

            if (opts_.count && taken_ >= *opts_.count) {
                co_return; // the last counted request is being answered; we are about to exit
            }
            bool const last = opts_.count && ++taken_ == *opts_.count;

            auto const& req = parser.get();
            auto const failure =
                opts_.secrets.empty() ? std::nullopt : check_signature(req, opts_.secrets);
            std::cout << describe(req, received_at, opts_.secrets, failure)
                      << std::endl; // endl: flush for pipes

            http::response<http::empty_body> res;
            res.version(req.version());
            unsigned const status = failure ? 401 : opts_.status;
            res.result(status);
            if (http::int_to_status(status) == http::status::unknown) {
                res.reason(generic_reason(status)); // Beast would say "<unknown-status>"
            }
            // Telling the client we close lets it retry elsewhere instead of reusing a dead socket.
            res.keep_alive(req.keep_alive() && !last);
            if (status != 204 && status != 304) {
                res.content_length(0);
            }
            std::tie(ec, std::ignore) = co_await http::async_write(socket, res, use_tuple);
            if (last) {
                socket.shutdown(tcp::socket::shutdown_send, ec);
                ioc_.stop();
                co_return;
            }
            if (ec || !res.keep_alive()) {
                socket.shutdown(tcp::socket::shutdown_send, ec);
                co_return;
            }
        }
    }

    static std::string_view generic_reason(unsigned status) {
        switch (status / 100) {
        case 2:
            return "Success";
        case 3:
            return "Redirection";
        case 4:
            return "Client Error";
        default:
            return "Server Error";
        }
    }

    static bool expects_continue(http::request<http::string_body> const& req) {
        return req.version() >= 11 && beast::iequals(req[http::field::expect], "100-continue");
    }

    // Status to answer a failed read with, or nullopt if the peer is gone (nothing to answer).
    static std::optional<http::status> rejection_status(error_code const& ec) {
        if (ec == http::error::body_limit) {
            return http::status::payload_too_large;
        }
        if (ec == http::error::header_limit) {
            return http::status::request_header_fields_too_large;
        }
        if (ec.category() == http::make_error_code(http::error::bad_method).category() &&
            ec != http::error::end_of_stream && ec != http::error::partial_message) {
            return http::status::bad_request;
        }
        return std::nullopt;
    }

    // Answers with `status` and closes. The client may still be sending a body we will not
    // read; closing at once would reset the connection and lose the response, so input is
    // discarded until the peer closes or a short grace period ends.
    asio::awaitable<void> reject(tcp::socket& socket, http::status status) {
        http::response<http::empty_body> res{status, 11};
        res.keep_alive(false);
        res.content_length(0);
        error_code ec;
        std::tie(ec, std::ignore) = co_await http::async_write(socket, res, use_tuple);
        socket.shutdown(tcp::socket::shutdown_send, ec);

        // `done` keeps a timer handler that was already queued from touching a dead socket.
        auto done = std::make_shared<bool>(false);
        asio::steady_timer grace(socket.get_executor(), std::chrono::seconds(2));
        grace.async_wait([&socket, done](error_code timer_ec) {
            if (!timer_ec && !*done) {
                error_code ignored;
                socket.close(ignored);
            }
        });
        std::array<char, 16 * 1024> scratch;
        while (!ec) {
            std::tie(ec, std::ignore) =
                co_await socket.async_read_some(asio::buffer(scratch), use_tuple);
        }
        *done = true;
    }

    asio::io_context& ioc_;
    tcp::acceptor acceptor_;
    options opts_;
    std::uint64_t taken_ = 0; // requests accepted for answering, for --count
};

} // namespace

int main(int argc, char** argv) {
    options opts;
    tcp::endpoint endpoint;
    try {
        auto parsed = parse_options(argc, argv);
        if (!parsed) {
            std::cout << usage;
            return 0;
        }
        opts = std::move(*parsed);
        endpoint = tcp::endpoint(loopback_address(opts.host), opts.port);
    } catch (usage_error const& e) {
        std::cerr << program << ": " << e.what() << "\n(see " << program << " --help)\n";
        return 2;
    }

    try {
        asio::io_context ioc(1);
        receiver server(ioc, endpoint, opts);

        asio::signal_set signals(ioc, SIGINT, SIGTERM);
        signals.async_wait([&ioc](error_code ec, int) {
            if (!ec) {
                ioc.stop();
            }
        });

        auto const local = server.local_endpoint();
        if (!opts.port_file.empty()) {
            write_port_file(opts.port_file, local.port());
        }
        auto const host = local.address().is_v6() ? "[" + local.address().to_string() + "]"
                                                  : local.address().to_string();
        std::cerr << program << " listening on http://" << host << ':' << local.port() << std::endl;

        server.start();
        ioc.run();
        return 0;
    } catch (std::exception const& e) {
        std::cerr << program << ": " << e.what() << '\n';
        return 1;
    }
}
