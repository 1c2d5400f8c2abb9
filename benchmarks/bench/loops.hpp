// herald-bench: the clients herald is measured against, each on its own keep-alive
// connections: the minimal Beast loop (limit), the same loop signing each event (signed), and
// the libcurl multi interface.

#ifndef HERALD_BENCH_LOOPS_HPP
#define HERALD_BENCH_LOOPS_HPP

#include "common.hpp"
#include "endpoints.hpp"
#include "events.hpp"
#include "meters.hpp"
#include "options.hpp"
#include "report.hpp"

#include <herald/event.hpp>
#include <herald/serializer/json_serializer.hpp>
#include <herald/signature.hpp>
#include <herald/time.hpp>
#include <herald/version.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/span_body.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#ifdef HERALD_BENCH_LIBCURL
#include <curl/curl.h>
#endif

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace herald_bench {

// ---------------------------------------------------------------------------------------------
// limit: a minimal Beast client

struct loop_counters {
    std::size_t started = 0;
    std::size_t ok = 0;
    std::size_t failed = 0;
    std::string first_error{};
};

/// A connection to the sink with Nagle off, or nullopt (the error in `c`).
inline asio::awaitable<std::optional<tcp::socket>>
open_connection(tcp::resolver::results_type const& endpoints, loop_counters& c) {
    tcp::socket socket(co_await asio::this_coro::executor);
    auto [ec, ep] = co_await asio::async_connect(socket, endpoints, use_tuple);
    (void)ep;
    if (ec) {
        c.first_error = "connect: " + ec.message();
        co_return std::nullopt;
    }
    socket.set_option(tcp::no_delay(true));
    co_return std::move(socket);
}

/// Sends `msg` and reads the answer, counting it in `c`; false once the connection is done.
template <class Body>
asio::awaitable<bool> exchange(tcp::socket& socket, beast::flat_buffer& buffer,
                               http::request<Body> const& msg, loop_counters& c) {
    auto [wec, wn] = co_await http::async_write(socket, msg, use_tuple);
    (void)wn;
    http::response<http::string_body> res;
    boost::system::error_code rec = wec;
    if (!wec)
        std::tie(rec, std::ignore) = co_await http::async_read(socket, buffer, res, use_tuple);
    if (rec) {
        ++c.failed;
        if (c.first_error.empty())
            c.first_error = rec.message();
        co_return false;
    }
    if (res.result_int() / 100 == 2)
        ++c.ok;
    else
        ++c.failed;
    co_return res.keep_alive();
}

inline asio::awaitable<void> limit_worker(tcp::resolver::results_type const& endpoints,
                                          http::request<http::span_body<char const>> const& msg,
                                          std::size_t total, steady::time_point deadline,
                                          loop_counters& c) {
    auto socket = co_await open_connection(endpoints, c);
    if (!socket)
        co_return;
    beast::flat_buffer buffer;
    while (c.started < total && steady::now() < deadline) {
        ++c.started;
        if (!co_await exchange(*socket, buffer, msg, c))
            co_return;
    }
}

/// The minimal request: Host, Content-Type, Content-Length and the body herald sends.
inline http::request<http::span_body<char const>> minimal_post(target const& t,
                                                               std::string const& body) {
    http::request<http::span_body<char const>> msg{http::verb::post, t.path, 11};
    msg.set(http::field::host, t.host);
    msg.set(http::field::content_type, "application/json");
    msg.body() = std::span<char const>(body.data(), body.size());
    msg.prepare_payload();
    return msg;
}

/**
 * Runs `worker(deadline)` on each of the connections in one thread until they are done and
 * reports what `c` counted, as `scenario` (the rate in requests/s).
 */
template <class Worker>
report run_loop(options const& o, char const* scenario, std::string what, loop_counters const& c,
                Worker worker) {
    asio::io_context io(1);
    cpu_meter const cpu;
    thread_meter const thread;
    auto const t0 = steady::now();
    auto const deadline = t0 + o.timeout;
    for (std::size_t i = 0; i < o.connections; ++i)
        asio::co_spawn(io, worker(deadline), asio::detached);
    io.run();
    double const s = seconds_since(t0);
    auto const used = thread.used();

    report r{scenario, double(c.ok) / s, "requests/s"};
    r.summary = grouped(double(c.ok)) + " requests in " + fixed(s, 2) + " s, " +
                std::to_string(o.connections) + " connections, " + std::move(what);
    if (c.failed || c.ok < o.events)
        r.summary += " (" + grouped(double(c.failed)) + " failed" +
                     (c.first_error.empty() ? "" : ": " + c.first_error) + ")";
    r.add("requests", std::int64_t(c.ok))
        .add("failed", std::int64_t(c.failed))
        .add("seconds", s)
        .add("connections", std::int64_t(o.connections));
    cpu.finish(r, used, double(c.ok + c.failed));
    return r;
}

inline tcp::resolver::results_type resolve(target const& t) {
    asio::io_context io;
    return tcp::resolver(io).resolve(t.address, t.port);
}

inline report run_limit(options const& o, target const& t, std::string const& body) {
    auto const endpoints = resolve(t);
    auto const msg = minimal_post(t, body);
    loop_counters c;
    auto r = run_loop(o, "limit", "body " + grouped(double(body.size())) + " B", c,
                      [&](steady::time_point deadline) {
                          return limit_worker(endpoints, msg, o.events, deadline, c);
                      });
    r.add("body_bytes", std::int64_t(body.size()));
    return r;
}

// ---------------------------------------------------------------------------------------------
// signed: the limit loop doing the per-event work every signed webhook sender must do

struct signed_loop {
    std::vector<herald::object_event> events{};
    std::size_t next = 0;
    std::vector<herald::secret> secrets{herald::secret::generate()};
    herald::json_serializer serializer{};
    loop_counters c{};
};

inline asio::awaitable<void> signed_worker(tcp::resolver::results_type const& endpoints,
                                           target const& t, steady::time_point deadline,
                                           signed_loop& loop) {
    auto socket = co_await open_connection(endpoints, loop.c);
    if (!socket)
        co_return;
    beast::flat_buffer buffer;
    while (loop.next < loop.events.size() && steady::now() < deadline) {
        ++loop.c.started;
        // What herald does for each event and no sender can skip: an id and a timestamp
        // (prepare_event), the body (the same serializer), the signature, the headers.
        herald::object_event e = std::move(loop.events[loop.next++]);
        (void)herald::prepare_event(e);
        auto body = loop.serializer.serialize(e);
        auto const now = herald::to_unix_seconds(herald::clock::now());
        http::request<http::string_body> msg{http::verb::post, t.path, 11};
        msg.set(http::field::host, t.host);
        msg.set(http::field::content_type, body.content_type);
        msg.set(http::field::user_agent, herald::user_agent);
        msg.set("webhook-id", e.id);
        msg.set("webhook-timestamp", std::to_string(now));
        msg.set("webhook-signature", herald::sign(e.id, now, body.body, loop.secrets));
        msg.body() = std::move(body.body);
        msg.prepare_payload();
        if (!co_await exchange(*socket, buffer, msg, loop.c))
            co_return;
    }
}

inline report run_signed(options const& o, target const& t, event_factory const& f) {
    auto const endpoints = resolve(t);
    signed_loop loop;
    loop.events = f.make_many(o.events);
    return run_loop(
        o, "signed", "each event serialized, signed and sent with the webhook headers", loop.c,
        [&](steady::time_point deadline) { return signed_worker(endpoints, t, deadline, loop); });
}

// ---------------------------------------------------------------------------------------------
// libcurl: the multi interface

#ifdef HERALD_BENCH_LIBCURL
inline std::size_t discard_response(char*, std::size_t size, std::size_t n, void*) {
    return size * n;
}

inline report run_libcurl(options const& o, target const& t, std::string const& body) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURLM* multi = curl_multi_init();
    auto const conns = static_cast<long>(o.connections);
    curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, conns);
    curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, conns);
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, conns);
    curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
    headers = curl_slist_append(headers, "Expect:"); // no 100-continue round trip
    std::vector<CURL*> easy(o.connections);
    std::size_t started = 0, ok = 0, failed = 0;
    std::string first_error;
    for (auto& e : easy) {
        e = curl_easy_init();
        curl_easy_setopt(e, CURLOPT_URL, t.url.c_str());
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body.data());
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard_response);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
        if (started < o.events) {
            curl_multi_add_handle(multi, e);
            ++started;
        }
    }
    cpu_meter const cpu;
    thread_meter const thread;
    auto const t0 = steady::now();
    auto const deadline = t0 + o.timeout;
    long connects = 0;
    while (ok + failed < started && steady::now() < deadline) {
        int running = 0;
        curl_multi_perform(multi, &running);
        int left = 0;
        while (CURLMsg* m = curl_multi_info_read(multi, &left)) {
            if (m->msg != CURLMSG_DONE)
                continue;
            CURL* e = m->easy_handle;
            long code = 0, n = 0;
            curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
            curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &n);
            connects += n;
            if (m->data.result == CURLE_OK && code / 100 == 2) {
                ++ok;
            } else {
                ++failed;
                if (first_error.empty())
                    first_error = m->data.result != CURLE_OK ? curl_easy_strerror(m->data.result)
                                                             : "HTTP " + std::to_string(code);
            }
            curl_multi_remove_handle(multi, e);
            if (started < o.events) {
                curl_multi_add_handle(multi, e); // same handle: its connection is reused
                ++started;
            }
        }
        if (ok + failed < started)
            curl_multi_poll(multi, nullptr, 0, 100, nullptr);
    }
    double const s = seconds_since(t0);
    auto const used = thread.used();
    for (auto* e : easy) {
        curl_multi_remove_handle(multi, e);
        curl_easy_cleanup(e);
    }
    curl_slist_free_all(headers);
    curl_multi_cleanup(multi);
    curl_global_cleanup();

    report r{"libcurl", double(ok) / s, "requests/s"};
    r.summary = grouped(double(ok)) + " requests in " + fixed(s, 2) + " s, " +
                std::to_string(o.connections) + " connections (" + std::to_string(connects) +
                " opened)";
    if (failed || ok < o.events)
        r.summary += " (" + grouped(double(failed)) + " failed" +
                     (first_error.empty() ? "" : ": " + first_error) + ")";
    r.add("requests", std::int64_t(ok))
        .add("failed", std::int64_t(failed))
        .add("seconds", s)
        .add("connections", std::int64_t(o.connections))
        .add("connections_opened", std::int64_t(connects))
        .add("body_bytes", std::int64_t(body.size()))
        .add("version", std::string("libcurl/") + curl_version_info(CURLVERSION_NOW)->version);
    cpu.finish(r, used, double(ok + failed));
    return r;
}
#else
inline report run_libcurl(options const&, target const&, std::string const&) {
    report r{"libcurl", 0, "requests/s", "skipped (libcurl not installed)"};
    r.skipped = true;
    r.add("reason", std::string("libcurl not installed"));
    return r;
}
#endif

} // namespace herald_bench

#endif
