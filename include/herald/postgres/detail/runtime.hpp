#ifndef HERALD_POSTGRES_DETAIL_RUNTIME_HPP
#define HERALD_POSTGRES_DETAIL_RUNTIME_HPP

// What postgres_store and postgres_log run on: an io_context and its one thread, where every
// libpq connection of the object lives (no libpq call on any other thread), and the helpers
// to run a coroutine there from another thread and wait for it.

#include <herald/error.hpp>
#include <herald/postgres/detail/connection.hpp>
#include <herald/postgres/detail/schema.hpp>
#include <herald/time.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_future.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <random>
#include <string>
#include <thread>
#include <unistd.h>
#include <utility>

namespace herald::detail::pg {

/// The io_context of one store or log, run by its own thread from start() to stop().
class runtime {
public:
    runtime() = default;
    runtime(runtime const&) = delete;
    runtime& operator=(runtime const&) = delete;
    ~runtime() { stop(); }

    boost::asio::io_context& io() noexcept { return io_; }
    boost::asio::any_io_executor executor() { return io_.get_executor(); }

    void start() {
        if (!thread_.joinable())
            thread_ = std::thread([this] { io_.run(); });
    }

    /// Lets the thread end once its work is done, and waits for it (never on the thread).
    void stop() {
        work_.reset();
        if (thread_.joinable()) {
            if (thread_.get_id() == std::this_thread::get_id())
                thread_.detach();
            else
                thread_.join();
        }
    }

    /// Runs `make()` (a coroutine) on the io thread and waits for what it returns; rethrows.
    template <class F>
    auto run(F make) {
        return boost::asio::co_spawn(io_, std::move(make), boost::asio::use_future).get();
    }

private:
    boost::asio::io_context io_{1};
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_{
        io_.get_executor()};
    std::thread thread_;
};

/// A random positive 63-bit number (lease tokens, node names).
inline std::int64_t random_token() {
    static thread_local std::mt19937_64 gen{std::random_device{}() ^
                                            static_cast<std::uint64_t>(::getpid()) << 32};
    std::int64_t v = 0;
    while (v == 0)
        v = static_cast<std::int64_t>(gen() >> 1);
    return v;
}

/// A name for this process in the lease_owner column: host, pid and a random suffix.
inline std::string node_name() {
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) != 0)
        host[0] = '\0';
    char tail[24];
    std::snprintf(tail, sizeof tail, "%08llx",
                  static_cast<unsigned long long>(random_token()) & 0xffffffffULL);
    return std::string(host[0] ? host : "node") + ":" + std::to_string(::getpid()) + ":" + tail;
}

/// A delay that doubles from 100 ms to 5 s between reconnects, and starts over once connected.
class backoff {
public:
    duration next() {
        auto const d = delay_;
        delay_ = std::min(delay_ * 2, duration(5000));
        return d;
    }
    void reset() { delay_ = duration(100); }

private:
    duration delay_{100};
};

/// Brings a database to schema_version, in one transaction under the migration lock. Throws
/// pg_error; a database written by a newer herald is a pg_error naming both versions.
inline boost::asio::awaitable<void> migrate(connection& c) {
    co_await c.script("BEGIN");
    std::optional<pg_error> failed;
    try {
        co_await c.exec("SELECT pg_advisory_xact_lock($1)",
                        std::move(params().integer(migration_lock)));
        co_await c.script("CREATE TABLE IF NOT EXISTS herald_meta (key text PRIMARY KEY, "
                          "value bigint NOT NULL)");
        auto v = co_await c.exec("SELECT value FROM herald_meta WHERE key = 'schema_version'");
        int const have = v.empty() ? 0 : static_cast<int>(v.int64(0, 0));
        if (have > schema_version)
            throw pg_error("the database's herald schema is version " + std::to_string(have) +
                               ", newer than this herald's " + std::to_string(schema_version) +
                               " (written by a newer herald)",
                           "", false);
        for (int step = have; step < schema_version; ++step)
            co_await c.script(schema_steps[step]);
        if (have < schema_version)
            co_await c.exec("INSERT INTO herald_meta (key, value) VALUES ('schema_version', $1) "
                            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                            std::move(params().integer(schema_version)));
        co_await c.script("COMMIT");
    } catch (pg_error const& e) {
        failed = e;
    }
    if (failed) {
        co_await c.rollback();
        throw *failed;
    }
}

/// A problem naming the database (never its password) for what `e` says.
inline problem describe(std::string const& conninfo, std::exception const& e) {
    return make_problem(error::storage_failed, "conninfo",
                        describe_target(conninfo) + ": " + std::string(e.what()));
}

/// Rows of `uuid` text for a 128-bit id (8-4-4-4-12 hex digits), and back.
template <class Id>
std::string uuid_text(Id const& id) {
    char buf[37];
    auto const hex = [](std::uint64_t v, char* out, int digits) {
        for (int i = digits - 1; i >= 0; --i, v >>= 4)
            out[i] = "0123456789abcdef"[v & 0xf];
    };
    hex(id.hi >> 32, buf, 8);
    buf[8] = '-';
    hex(id.hi >> 16 & 0xffff, buf + 9, 4);
    buf[13] = '-';
    hex(id.hi & 0xffff, buf + 14, 4);
    buf[18] = '-';
    hex(id.lo >> 48, buf + 19, 4);
    buf[23] = '-';
    hex(id.lo & 0xffffffffffffULL, buf + 24, 12);
    return std::string(buf, 36);
}

template <class Id>
Id uuid_from_text(std::string_view t) {
    Id id;
    int n = 0;
    for (char ch : t) {
        int v = -1;
        if (ch >= '0' && ch <= '9')
            v = ch - '0';
        else if (ch >= 'a' && ch <= 'f')
            v = ch - 'a' + 10;
        else if (ch >= 'A' && ch <= 'F')
            v = ch - 'A' + 10;
        if (v < 0)
            continue;
        auto& half = n < 16 ? id.hi : id.lo;
        half = half << 4 | static_cast<std::uint64_t>(v);
        ++n;
    }
    return id;
}

/// A PostgreSQL array literal of text elements (quoted, `\` and `"` escaped); a missing one
/// is NULL.
class array_literal {
public:
    array_literal& add(std::string_view v) {
        sep();
        out_ += '"';
        for (char ch : v) {
            if (ch == '"' || ch == '\\')
                out_ += '\\';
            out_ += ch;
        }
        out_ += '"';
        return *this;
    }
    array_literal& add(std::int64_t v) {
        sep();
        out_ += std::to_string(v);
        return *this;
    }
    array_literal& null() {
        sep();
        out_ += "NULL";
        return *this;
    }
    template <class T>
    array_literal& add_optional(std::optional<T> const& v) {
        return v ? add(std::string_view(*v)) : null();
    }
    /// A bytea element in hex form.
    array_literal& add_bytes(std::string_view v) {
        sep();
        out_ += "\"\\\\x";
        for (unsigned char ch : v) {
            out_ += "0123456789abcdef"[ch >> 4];
            out_ += "0123456789abcdef"[ch & 0xf];
        }
        out_ += '"';
        return *this;
    }
    std::string str() const { return out_ + "}"; }
    bool empty() const noexcept { return out_.size() == 1; }

private:
    void sep() {
        if (out_.size() > 1)
            out_ += ',';
    }
    std::string out_ = "{";
};

/**
 * A bytea[] parameter in PostgreSQL's binary array format (sent with params::bytes): the
 * bodies travel as they are, with no hex to encode here nor to decode on the server.
 */
class bytea_array {
public:
    bytea_array& add(std::string_view v) {
        put32(static_cast<std::uint32_t>(v.size()), elements_);
        elements_.append(v);
        ++n_;
        return *this;
    }
    /// One dimension (none when empty), no NULLs, elements of type bytea (oid 17).
    std::string str() const {
        std::string out;
        out.reserve(20 + elements_.size());
        put32(n_ == 0 ? 0 : 1, out); // dimensions
        put32(0, out);               // no NULLs
        put32(17, out);              // bytea
        if (n_ > 0) {
            put32(n_, out); // length
            put32(1, out);  // lower bound
        }
        out += elements_;
        return out;
    }

private:
    static void put32(std::uint32_t v, std::string& out) {
        out += static_cast<char>(v >> 24);
        out += static_cast<char>(v >> 16 & 0xff);
        out += static_cast<char>(v >> 8 & 0xff);
        out += static_cast<char>(v & 0xff);
    }
    std::string elements_;
    std::uint32_t n_ = 0;
};

} // namespace herald::detail::pg

#endif
