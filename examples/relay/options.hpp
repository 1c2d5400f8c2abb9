// herald-relay's command line: every option with its text and its real default, read as
// "--opt value" or "--opt=value". Bad options exit with status 2 and a message naming them.
#ifndef HERALD_RELAY_OPTIONS_HPP
#define HERALD_RELAY_OPTIONS_HPP

#include <herald/address_policy.hpp>
#include <herald/admin/server.hpp>
#include <herald/engine/retry.hpp>
#include <herald/source/channel_source.hpp>
#include <herald/time.hpp>
#include <herald/transport/http_transport.hpp>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace relay {

using namespace std::chrono_literals;

struct options {
    std::string webhooks_file{};
    std::string format = "herald";
    herald::retry_params retry{};
    herald::http_transport_params transport{};
    herald::duration drain_timeout = 30s;
    /// With a durable store, how long the relay keeps running after the end of input while
    /// deliveries are pending; nullopt: until none is.
    std::optional<herald::duration> finish_timeout{};
    std::size_t queue = herald::channel_params{}.capacity;
    std::size_t max_line_bytes = 1024 * 1024;
    std::string store_path{}; ///< --store sqlite:PATH; empty: in memory
    std::string store_pg{};   ///< --store postgres:CONNINFO; empty: not on PostgreSQL
    herald::duration lease = std::chrono::seconds(60); ///< --lease, with --store postgres
    std::string log_path{}; ///< --log sqlite:PATH; empty: standard output only
    std::string log_pg{};   ///< --log postgres:CONNINFO; empty: not in PostgreSQL
    std::optional<herald::admin::server_params> admin{}; ///< --admin: serve the API and the page
    std::string admin_token_file{};
};

inline std::string join_schedule(std::vector<herald::duration> const& s) {
    std::string out;
    for (auto d : s)
        out += (out.empty() ? "" : ",") + herald::format_duration(d);
    return out;
}

struct option_doc {
    std::string_view name{};
    std::string_view value{}; ///< empty: a flag
    std::string text{};
};

inline std::vector<option_doc> option_docs() {
    options const d;
    auto const bytes = std::to_string(d.max_line_bytes);
    return {
        {"--webhooks", "FILE",
         "the webhooks, a JSON array (docs/relay.md); required unless --store sqlite:PATH "
         "holds them or --admin manages them. With a store, adds or updates them by name"},
        {"--format", "herald|datagerry",
         "the payload format of webhooks that name none (default " + d.format +
             "); a webhook's \"format\" picks its own"},
        {"--retry-schedule", "D,D,...",
         "delay before the first attempt, then after each failed one; used up, the delivery "
         "fails (default " +
             join_schedule(d.retry.schedule) + ")"},
        {"--timeout", "D",
         "a whole request: connect, TLS, send and answer (default " +
             herald::format_duration(d.transport.timeout) + "); a webhook may set its own"},
        {"--connect-timeout", "D",
         "the TCP connect and TLS handshake (default " +
             herald::format_duration(d.transport.connect_timeout) + ")"},
        {"--drain-timeout", "D",
         "after SIGINT or SIGTERM (and, with the memory store, after the end of input), how "
         "long deliveries may still be attempted; the relay exits within it (default " +
             herald::format_duration(d.drain_timeout) + ")"},
        {"--finish-timeout", "D",
         "with --store sqlite:PATH, how long the relay keeps running after the end of input "
         "while deliveries are pending; what is left stays in PATH (default: until none is)"},
        {"--queue", "N",
         "events accepted and not yet taken by the dispatcher; when full, reading waits "
         "(default " +
             std::to_string(d.queue) + ")"},
        {"--max-line-bytes", "N",
         "longest input line (one event); a longer one is refused unread, with its number "
         "(default " +
             bytes + ")"},
        {"--allow-private", "CIDR",
         "let webhooks reach this private or loopback range (repeatable; default none)"},
        {"--https-only", "", "refuse webhooks with plain http URLs"},
        {"--store", "memory|sqlite:PATH|postgres:CONNINFO",
         "where webhooks and pending deliveries live (default memory); with sqlite an event "
         "is acknowledged once committed, and what was pending is delivered at the next start; "
         "with postgres (a libpq connection string) several relays share the webhooks and the "
         "queue, and take over what a relay that is gone held (docs/deployment.md)"},
        {"--lease", "DURATION",
         "with --store postgres, how long a relay holds a delivery before another may take it "
         "over (default 60s; at least the longest attempt plus 5s)"},
        {"--log", "stdout|sqlite:PATH|postgres:CONNINFO",
         "also keep every attempt in PATH, or in the PostgreSQL database (shared by the relays "
         "that use it), for the admin API (default stdout only)"},
        {"--admin", "HOST:PORT",
         "serve the admin API and web page there (port 0: any free one), take events on POST "
         "/api/events, and run until SIGINT or SIGTERM"},
        {"--admin-token-file", "FILE", "the API's bearer token (required with --admin)"},
        {"--help", "", "show this help and exit"},
    };
}

inline std::string usage_text() {
    std::string out = "usage: herald-relay [options] < events.jsonl\n\n"
                      "Reads events as JSON lines on standard input, delivers them to the "
                      "webhooks,\nand prints one JSON line per delivery attempt on standard "
                      "output.\n\noptions (D is a duration: 500ms, 10s, 5m, 2h, 1d):\n";
    for (auto const& o : option_docs()) {
        std::string head = "  " + std::string(o.name);
        if (!o.value.empty())
            head += " " + std::string(o.value);
        out += head;
        // The text wrapped at about 100 columns, indented under its option.
        std::string line;
        std::istringstream words(o.text);
        std::string word;
        std::string const indent(8, ' ');
        out += "\n" + indent;
        std::size_t col = 0;
        while (words >> word) {
            if (word == "(default") { // "(default 30s)" is not split across lines
                std::string next;
                if (words >> next)
                    word += " " + next;
            }
            if (col > 0 && col + 1 + word.size() > 88) {
                out += "\n" + indent;
                col = 0;
            } else if (col > 0) {
                out += ' ';
                ++col;
            }
            out += word;
            col += word.size();
        }
        out += "\n";
    }
    out += "\nExit status: 0 when every line read was accepted as an event, 1 when some line "
           "was not\n(each reported on standard error with its number), 2 for bad options or a "
           "bad\nwebhooks file (nothing is sent then).\n";
    return out;
}

[[noreturn]] inline void usage_error(std::string const& what) {
    std::cerr << "herald-relay: " << what << "\n(herald-relay --help lists the options)\n";
    std::exit(2);
}

inline herald::duration duration_option(std::string const& name, std::string const& text) {
    auto d = herald::parse_duration(text, name);
    if (!d)
        usage_error(d.error().what());
    return *d;
}

inline std::size_t count_option(std::string const& name, std::string const& text) {
    std::uint64_t n = 0;
    if (!herald::detail::parse_uint(text, n) || n == 0)
        usage_error(name + ": '" + text + "' is not a positive number");
    return static_cast<std::size_t>(n);
}

inline std::string read_token(std::string const& path) {
    std::ifstream in(path);
    if (!in)
        usage_error("--admin-token-file: cannot read '" + path + "'");
    std::stringstream text;
    text << in.rdbuf();
    auto token = text.str();
    while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back())))
        token.pop_back();
    if (token.size() < 16 || token.find_first_of(" \t\r\n") != std::string::npos)
        usage_error("--admin-token-file: the token in '" + path +
                    "' must be one line of at least 16 characters without spaces");
    return token;
}

inline options parse_options(int argc, char** argv) {
    options o;
    auto const docs = option_docs();
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        if (arg == "--help" || arg == "-h") {
            std::cout << usage_text();
            std::exit(0);
        }
        std::optional<std::string> inline_value;
        if (auto eq = arg.find('='); arg.starts_with("--") && eq != std::string::npos) {
            inline_value = arg.substr(eq + 1);
            arg.resize(eq);
        }
        auto doc = std::find_if(docs.begin(), docs.end(),
                                [&](option_doc const& d) { return d.name == arg; });
        if (doc == docs.end())
            usage_error("unknown option " + arg);
        if (doc->value.empty()) {
            if (inline_value)
                usage_error(arg + " takes no value");
            if (arg == "--https-only")
                o.transport.https_only = true;
            continue;
        }
        if (!inline_value && i + 1 >= argc)
            usage_error(arg + " needs a value (" + std::string(doc->value) + ")");
        std::string const value = inline_value ? *inline_value : argv[++i];
        if (arg == "--webhooks")
            o.webhooks_file = value;
        else if (arg == "--format") {
            if (value != "herald" && value != "datagerry")
                usage_error("--format: '" + value + "' is not herald or datagerry");
            o.format = value;
        } else if (arg == "--retry-schedule") {
            o.retry.schedule.clear();
            std::stringstream ss(value);
            std::string item;
            while (std::getline(ss, item, ','))
                o.retry.schedule.push_back(duration_option("--retry-schedule", item));
            if (auto r = herald::validate(o.retry); !r)
                usage_error("--retry-schedule: " + r.error().message);
        } else if (arg == "--timeout")
            o.transport.timeout = duration_option(arg, value);
        else if (arg == "--connect-timeout")
            o.transport.connect_timeout = duration_option(arg, value);
        else if (arg == "--drain-timeout")
            o.drain_timeout = duration_option(arg, value);
        else if (arg == "--finish-timeout")
            o.finish_timeout = duration_option(arg, value);
        else if (arg == "--allow-private") {
            auto c = herald::cidr::parse(value, "--allow-private");
            if (!c)
                usage_error(c.error().what());
            o.transport.addresses.allow.push_back(*c);
        } else if (arg == "--store" && value.starts_with("postgres:")) {
            if (value.size() == 9)
                usage_error("--store: 'postgres:' needs a connection string (e.g. "
                            "postgres:host=127.0.0.1 dbname=herald)");
            o.store_pg = value.substr(9);
            o.store_path.clear();
        } else if (arg == "--log" && value.starts_with("postgres:")) {
            if (value.size() == 9)
                usage_error("--log: 'postgres:' needs a connection string (e.g. "
                            "postgres:host=127.0.0.1 dbname=herald)");
            o.log_pg = value.substr(9);
            o.log_path.clear();
        } else if (arg == "--lease") {
            o.lease = duration_option(arg, value);
        } else if (arg == "--store" || arg == "--log") {
            auto& path = arg == "--store" ? o.store_path : o.log_path;
            if (arg == "--store")
                o.store_pg.clear();
            else
                o.log_pg.clear();
            if (value == (arg == "--store" ? "memory" : "stdout"))
                path.clear();
            else if (value.starts_with("sqlite:") && value.size() > 7)
                path = value.substr(7);
            else
                usage_error(arg + ": '" + value + "' is not " +
                            (arg == "--store" ? "memory, sqlite:PATH or postgres:CONNINFO"
                                              : "stdout, sqlite:PATH or postgres:CONNINFO"));
        } else if (arg == "--admin") {
            // HOST:PORT, IPv6 in brackets: 127.0.0.1:8080, [::1]:8080; port 0 picks a free one
            auto const colon = value.rfind(':');
            std::uint64_t port = 0;
            if (colon == std::string::npos || colon == 0 ||
                !herald::detail::parse_uint(value.substr(colon + 1), port) || port > 65535)
                usage_error("--admin: '" + value + "' is not HOST:PORT (e.g. 127.0.0.1:8080)");
            auto host = value.substr(0, colon);
            if (host.size() > 2 && host.front() == '[' && host.back() == ']')
                host = host.substr(1, host.size() - 2);
            herald::admin::server_params p;
            p.address = host;
            p.port = static_cast<std::uint16_t>(port);
            o.admin = p;
        } else if (arg == "--admin-token-file")
            o.admin_token_file = value;
        else if (arg == "--queue")
            o.queue = count_option(arg, value);
        else if (arg == "--max-line-bytes")
            o.max_line_bytes = count_option(arg, value);
    }
    if (o.webhooks_file.empty() && o.store_path.empty() && o.store_pg.empty() && !o.admin)
        usage_error("--webhooks FILE is required (unless --store sqlite:PATH or "
                    "postgres:CONNINFO holds them, or --admin manages them)");
    if (o.admin && o.admin_token_file.empty())
        usage_error("--admin needs --admin-token-file FILE (the bearer token for the API)");
    if (!o.admin && !o.admin_token_file.empty())
        usage_error("--admin-token-file is only used with --admin");
    if (o.finish_timeout && o.store_path.empty() && o.store_pg.empty())
        usage_error("--finish-timeout is only used with --store sqlite:PATH or "
                    "postgres:CONNINFO (with the memory store, --drain-timeout bounds the end)");
    if (o.admin)
        o.admin->token = read_token(o.admin_token_file);
    if (o.transport.timeout.count() <= 0 || o.transport.connect_timeout.count() <= 0)
        usage_error("timeouts must be longer than 0ms");
    return o;
}

} // namespace relay

#endif
