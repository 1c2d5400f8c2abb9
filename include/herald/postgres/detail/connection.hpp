#ifndef HERALD_POSTGRES_DETAIL_CONNECTION_HPP
#define HERALD_POSTGRES_DETAIL_CONNECTION_HPP

// libpq in nonblocking mode, driven by Asio: one connection, its statements as coroutines that
// wait on the libpq socket (never a blocking libpq call), each with a deadline. Used by
// postgres_store and postgres_log on their own io_context (herald/postgres/detail/runtime.hpp).
//
// What the pitfalls of libpq's asynchronous API ask for (docs/deployment.md):
// - the socket can change between PQconnectPoll steps: it is assigned again at each;
// - the descriptor is released before PQfinish, which closes it;
// - while PQflush returns 1, wait for the socket to be readable or writable, and consume input;
// - every PQgetResult is drained before the next statement;
// - PQcancel blocks, so a statement that overruns its deadline drops the connection instead
//   (the server ends its side by statement_timeout, set on every connection).

#include <herald/error.hpp>
#include <herald/time.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <libpq-fe.h>

#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace herald::detail::pg {

/// A statement or connection that failed: the server's message and SQLSTATE (empty when no
/// server answered), and whether the connection is gone (then the work may be tried again on
/// a new one).
class pg_error : public std::runtime_error {
public:
    pg_error(std::string const& what, std::string state, bool lost)
        : std::runtime_error(what)
        , state_(std::move(state))
        , lost_(lost) {}
    std::string const& sqlstate() const noexcept { return state_; }
    /// The connection broke (or the server is shutting down): not the statement's fault.
    bool connection_lost() const noexcept { return lost_; }
    /// Another transaction holds what this one needed (serialization, deadlock, unique key).
    bool unique_violation() const noexcept { return state_ == "23505"; }

private:
    std::string state_;
    bool lost_;
};

/// SQLSTATEs that mean the server went away rather than that the statement was wrong: class
/// 08 (connection exception), 57P01..57P03 (admin or crash shutdown, cannot connect now).
inline bool is_lost_state(std::string_view s) {
    return s.starts_with("08") || s == "57P01" || s == "57P02" || s == "57P03";
}

/// Where a connection string points, without its password: for messages.
inline std::string describe_target(std::string const& conninfo) {
    char* err = nullptr;
    PQconninfoOption* opts = PQconninfoParse(conninfo.c_str(), &err);
    if (!opts) {
        std::string why = err ? err : "cannot be parsed";
        PQfreemem(err);
        while (!why.empty() && (why.back() == '\n' || why.back() == ' '))
            why.pop_back();
        return "a connection string that " + (err ? "is not valid: " + why : why);
    }
    std::string host, port, db, user;
    for (auto* o = opts; o->keyword; ++o) {
        if (!o->val)
            continue;
        std::string_view k = o->keyword;
        if (k == "host" || (k == "hostaddr" && host.empty()))
            host = o->val;
        else if (k == "port")
            port = o->val;
        else if (k == "dbname")
            db = o->val;
        else if (k == "user")
            user = o->val;
    }
    PQconninfoFree(opts);
    std::string out = "postgresql://";
    if (!user.empty())
        out += user + "@";
    out += host.empty() ? "(default host)" : host;
    if (!port.empty())
        out += ":" + port;
    out += "/" + (db.empty() ? std::string("(default database)") : db);
    return out;
}

/// The message libpq left on a connection, on one line.
inline std::string last_message(PGconn const* c) {
    std::string m = c ? PQerrorMessage(c) : "out of memory";
    while (!m.empty() && (m.back() == '\n' || m.back() == ' '))
        m.pop_back();
    for (auto& ch : m)
        if (ch == '\n')
            ch = ' ';
    return m.empty() ? "the connection failed" : m;
}

/// A statement's parameters: text, or binary for bytea; kept alive until the call returns.
class params {
public:
    params() = default;
    params(params&&) = default;
    params& operator=(params&&) = default;

    params& text(std::string_view v) {
        owned_.emplace_back(v);
        push(nullptr, static_cast<int>(v.size()), 0, owned_.size() - 1);
        return *this;
    }
    params& integer(std::int64_t v) { return text(std::to_string(v)); }
    params& boolean(bool v) { return text(v ? "t" : "f"); }
    /// A bytea, sent as binary (no escaping).
    params& bytes(std::string_view v) {
        owned_.emplace_back(v);
        push(nullptr, static_cast<int>(v.size()), 1, owned_.size() - 1);
        return *this;
    }
    params& null() {
        push(nullptr, 0, 0, none);
        return *this;
    }
    template <class T>
    params& optional_text(std::optional<T> const& v) {
        return v ? text(*v) : null();
    }

    int size() const noexcept { return static_cast<int>(lengths_.size()); }
    /// The pointers libpq reads, valid until the next change.
    char const* const* values() {
        values_.assign(lengths_.size(), nullptr);
        for (std::size_t i = 0; i < lengths_.size(); ++i)
            if (index_[i] != none)
                values_[i] = owned_[index_[i]].data();
        return values_.data();
    }
    int const* lengths() const noexcept { return lengths_.data(); }
    int const* formats() const noexcept { return formats_.data(); }

private:
    static constexpr std::size_t none = static_cast<std::size_t>(-1);
    void push(char const*, int len, int fmt, std::size_t idx) {
        lengths_.push_back(len);
        formats_.push_back(fmt);
        index_.push_back(idx);
    }
    std::vector<std::string> owned_;
    std::vector<char const*> values_;
    std::vector<int> lengths_, formats_;
    std::vector<std::size_t> index_;
};

/// A statement's result (text format), freed with it.
class rows {
public:
    rows() = default;
    explicit rows(PGresult* r)
        : r_(r) {}

    int size() const noexcept { return r_ ? PQntuples(r_.get()) : 0; }
    bool empty() const noexcept { return size() == 0; }
    bool is_null(int row, int col) const { return PQgetisnull(r_.get(), row, col) != 0; }
    std::string_view text(int row, int col) const {
        return {PQgetvalue(r_.get(), row, col),
                static_cast<std::size_t>(PQgetlength(r_.get(), row, col))};
    }
    std::int64_t int64(int row, int col) const {
        auto const t = text(row, col);
        std::int64_t v = 0;
        auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
        if (ec != std::errc() || p != t.data() + t.size())
            throw pg_error("column " + std::to_string(col) + " is not an integer: '" +
                               std::string(t) + "'",
                           "", false);
        return v;
    }
    bool boolean(int row, int col) const { return text(row, col) == "t"; }
    /// A bytea column, decoded from the server's hex text.
    std::string bytes(int row, int col) const {
        std::size_t n = 0;
        auto* raw = reinterpret_cast<unsigned char const*>(PQgetvalue(r_.get(), row, col));
        unsigned char* out = PQunescapeBytea(raw, &n);
        if (!out)
            throw pg_error("a bytea column could not be decoded", "", false);
        std::string s(reinterpret_cast<char const*>(out), n);
        PQfreemem(out);
        return s;
    }
    /// Rows the command changed (UPDATE, DELETE, INSERT).
    std::uint64_t affected() const {
        if (!r_)
            return 0;
        char const* t = PQcmdTuples(r_.get());
        std::uint64_t v = 0;
        std::from_chars(t, t + std::strlen(t), v);
        return v;
    }

private:
    struct clear {
        void operator()(PGresult* r) const noexcept { PQclear(r); }
    };
    std::unique_ptr<PGresult, clear> r_;
};

/// What every connection is set up with, whatever the connection string says.
struct session_settings {
    duration connect_timeout{5000};
    /// The server cancels a statement that runs longer (statement_timeout); herald drops the
    /// connection a second after that.
    duration statement_timeout{10000};
    /// TCP keepalives: a dead peer is noticed after about idle + interval × count seconds.
    int keepalive_idle_s = 10;
    int keepalive_interval_s = 5;
    int keepalive_count = 3;
    std::string application_name = "herald";
};

/**
 * One libpq connection in nonblocking mode on an Asio executor. Its coroutines must run one at
 * a time (a connection runs one statement at a time), on the executor's thread.
 */
class connection {
public:
    explicit connection(boost::asio::any_io_executor ex)
        : sock_(ex)
        , timer_(ex) {}
    connection(connection const&) = delete;
    connection& operator=(connection const&) = delete;
    ~connection() { close(); }

    bool ok() const noexcept { return conn_ && PQstatus(conn_) == CONNECTION_OK; }
    PGconn* native() const noexcept { return conn_; }

    void close() noexcept {
        boost::system::error_code ignored;
        timer_.cancel();
        if (sock_.is_open()) {
            sock_.cancel(ignored);
            (void)sock_.release(); // PQfinish closes the descriptor
        }
        if (conn_) {
            PQfinish(conn_);
            conn_ = nullptr;
        }
        prepared_.clear(); // a new session knows none
    }

    /**
     * Connects (closing any earlier connection), then sets the session up: statement and
     * idle-in-transaction timeouts, the application name. Throws pg_error naming the target.
     */
    boost::asio::awaitable<void> connect(std::string const& conninfo, session_settings const& s) {
        close();
        auto const keep_idle = std::to_string(s.keepalive_idle_s);
        auto const keep_interval = std::to_string(s.keepalive_interval_s);
        auto const keep_count = std::to_string(s.keepalive_count);
        // Ours first: the connection string, expanded in place of dbname, overrides them.
        char const* keys[] = {"keepalives",
                              "keepalives_idle",
                              "keepalives_interval",
                              "keepalives_count",
                              "application_name",
                              "dbname",
                              nullptr};
        char const* vals[] = {"1",
                              keep_idle.c_str(),
                              keep_interval.c_str(),
                              keep_count.c_str(),
                              s.application_name.c_str(),
                              conninfo.c_str(),
                              nullptr};
        conn_ = PQconnectStartParams(keys, vals, 1);
        if (!conn_ || PQstatus(conn_) == CONNECTION_BAD)
            throw lost("cannot connect to " + describe_target(conninfo) + ": " +
                       last_message(conn_));
        arm(s.connect_timeout);
        auto st = PGRES_POLLING_WRITING;
        while (st != PGRES_POLLING_OK) {
            if (st == PGRES_POLLING_FAILED)
                throw lost("cannot connect to " + describe_target(conninfo) + ": " +
                           last_message(conn_));
            assign_socket();
            bool const timed_out = st == PGRES_POLLING_READING ? co_await wait(true, false)
                                                               : co_await wait(false, true);
            if (timed_out)
                throw lost("cannot connect to " + describe_target(conninfo) + ": no answer in " +
                           std::to_string(s.connect_timeout.count()) + " ms");
            st = PQconnectPoll(conn_);
        }
        assign_socket();
        // The server's notices (NOTICE, WARNING) are not errors: they go nowhere.
        PQsetNoticeProcessor(
            conn_, [](void*, char const*) {}, nullptr);
        if (PQsetnonblocking(conn_, 1) != 0)
            throw lost("cannot switch the connection to nonblocking mode: " + last_message(conn_));
        auto const ms = [](duration d) {
            return std::to_string(d.count());
        };
        co_await script(
            "SET statement_timeout = " + ms(s.statement_timeout) +
                "; SET idle_in_transaction_session_timeout = " + ms(s.statement_timeout * 2) +
                "; SET lock_timeout = " + ms(s.statement_timeout),
            s.connect_timeout);
        statement_timeout_ = s.statement_timeout;
    }

    /// Ends a wait of notifications() at once (it throws); on the connection's thread. Both
    /// waits are cancelled: wait() ends at the first that succeeds, or once both failed.
    void interrupt() {
        boost::system::error_code ignored;
        timer_.cancel();
        if (sock_.is_open())
            sock_.cancel(ignored);
    }

    /// Runs one statement with parameters; returns its rows. Throws pg_error.
    boost::asio::awaitable<rows> exec(std::string_view sql, params p = {}) {
        check_open();
        std::string const q(sql);
        if (!PQsendQueryParams(conn_, q.c_str(), p.size(), nullptr, p.values(), p.lengths(),
                               p.formats(), 0))
            throw lost(last_message(conn_));
        co_return co_await finish(q);
    }

    /**
     * Runs one statement as a named prepared statement of this session: prepared the first
     * time (and again after a reconnect), planned once. Throws pg_error.
     */
    boost::asio::awaitable<rows> exec_prepared(std::string const& name, std::string_view sql,
                                               params p = {}) {
        check_open();
        if (!prepared_.contains(name)) {
            std::string const q(sql);
            if (!PQsendPrepare(conn_, name.c_str(), q.c_str(), p.size(), nullptr))
                throw lost(last_message(conn_));
            (void)co_await finish(q);
            prepared_.insert(name);
        }
        if (!PQsendQueryPrepared(conn_, name.c_str(), p.size(), p.values(), p.lengths(),
                                 p.formats(), 0))
            throw lost(last_message(conn_));
        co_return co_await finish(name);
    }

    /// Ends a failed transaction: ROLLBACK when still connected; a connection that cannot is
    /// closed (a new one starts clean). Never throws.
    boost::asio::awaitable<void> rollback() {
        if (!ok())
            co_return;
        try {
            co_await script("ROLLBACK");
        } catch (std::exception const&) {
            close();
        }
    }

    /// Runs statements without parameters (several, separated by `;`); throws pg_error.
    boost::asio::awaitable<void> script(std::string const& sql,
                                        std::optional<duration> timeout = std::nullopt) {
        check_open();
        if (!PQsendQuery(conn_, sql.c_str()))
            throw lost(last_message(conn_));
        (void)co_await finish(sql, timeout);
    }

    /**
     * Waits up to `max_wait` for notifications (after LISTEN on this connection); returns the
     * channels that were notified, with their payloads, as (channel, payload) pairs, or none
     * when the time passed. Throws pg_error when the connection breaks.
     */
    boost::asio::awaitable<std::vector<std::pair<std::string, std::string>>>
    notifications(duration max_wait) {
        check_open();
        std::vector<std::pair<std::string, std::string>> out;
        take_notifications(out);
        if (!out.empty())
            co_return out;
        arm(max_wait);
        if (co_await wait(true, false))
            co_return out; // nothing came
        if (!PQconsumeInput(conn_))
            throw lost(last_message(conn_));
        take_notifications(out);
        co_return out;
    }

private:
    void check_open() const {
        if (!ok())
            throw pg_error("not connected", "", true);
    }

    static pg_error lost(std::string const& what) { return pg_error(what, "", true); }

    void take_notifications(std::vector<std::pair<std::string, std::string>>& out) {
        while (PGnotify* n = PQnotifies(conn_)) {
            out.emplace_back(n->relname ? n->relname : "", n->extra ? n->extra : "");
            PQfreemem(n);
        }
    }

    void assign_socket() {
        int const fd = PQsocket(conn_);
        if (fd < 0)
            throw lost("the connection has no socket: " + last_message(conn_));
        if (sock_.is_open() && sock_.native_handle() == fd)
            return;
        if (sock_.is_open()) {
            boost::system::error_code ignored;
            sock_.cancel(ignored);
            (void)sock_.release();
        }
        sock_.assign(fd);
    }

    void arm(duration d) { timer_.expires_after(d); }

    /// Waits until the socket is readable (`r`) or writable (`w`), or the timer fires.
    /// @return true when the timer fired first.
    boost::asio::awaitable<bool> wait(bool r, bool w) {
        using namespace boost::asio::experimental::awaitable_operators;
        using boost::asio::use_awaitable;
        using sd = boost::asio::posix::stream_descriptor;
        if (r && w) {
            auto x = co_await (sock_.async_wait(sd::wait_read, use_awaitable) ||
                               sock_.async_wait(sd::wait_write, use_awaitable) ||
                               timer_.async_wait(use_awaitable));
            co_return x.index() == 2;
        }
        auto x = co_await (sock_.async_wait(r ? sd::wait_read : sd::wait_write, use_awaitable) ||
                           timer_.async_wait(use_awaitable));
        co_return x.index() == 1;
    }

    /// Sends what is buffered, reads every result of the statement sent; the last one is
    /// returned, the first error thrown (once all are drained).
    boost::asio::awaitable<rows> finish(std::string const& sql,
                                        std::optional<duration> timeout = std::nullopt) {
        // The server stops the statement at statement_timeout; a second later, the connection.
        arm(timeout.value_or(statement_timeout_ + std::chrono::seconds(1)));
        auto const overran = [&] {
            auto const t = timeout.value_or(statement_timeout_ + std::chrono::seconds(1));
            close();
            return lost("no answer from the server in " + std::to_string(t.count()) +
                        " ms; the connection is dropped");
        };
        for (;;) {
            int const f = PQflush(conn_);
            if (f == 0)
                break;
            if (f < 0)
                throw lost(last_message(conn_));
            if (co_await wait(true, true))
                throw overran();
            if (!PQconsumeInput(conn_))
                throw lost(last_message(conn_));
        }
        rows last;
        std::optional<pg_error> failed;
        for (;;) {
            while (PQisBusy(conn_)) {
                if (co_await wait(true, false))
                    throw overran();
                if (!PQconsumeInput(conn_))
                    throw lost(last_message(conn_));
            }
            PGresult* r = PQgetResult(conn_);
            if (!r)
                break;
            auto const st = PQresultStatus(r);
            if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY) {
                last = rows(r);
                continue;
            }
            // Both copied before PQclear frees them.
            char const* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
            std::string s = state ? state : "";
            std::string msg = PQresultErrorMessage(r);
            PQclear(r);
            while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' '))
                msg.pop_back();
            if (!failed) {
                auto const head = sql.substr(0, 60);
                failed.emplace(msg + " (in: " + head + (sql.size() > 60 ? "...)" : ")"), s,
                               is_lost_state(s) || !ok());
            }
        }
        timer_.cancel();
        if (failed)
            throw *failed;
        if (!ok())
            throw lost(last_message(conn_));
        co_return last;
    }

    PGconn* conn_ = nullptr;
    std::set<std::string> prepared_; // this session's prepared statements
    boost::asio::posix::stream_descriptor sock_;
    boost::asio::steady_timer timer_;
    duration statement_timeout_{10000};
};

} // namespace herald::detail::pg

#endif
