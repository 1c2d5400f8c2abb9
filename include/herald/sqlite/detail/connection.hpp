#ifndef HERALD_DETAIL_SQLITE_HPP
#define HERALD_DETAIL_SQLITE_HPP

// A thin RAII layer over the SQLite C API for sqlite_store and sqlite_log, and the migration to
// the one schema both use (schema.hpp: a herald database file holds the webhooks, the delivery
// queue and the log; either class may use a file of its own or share one with the other).
//
// Errors inside a unit of work are thrown as sqlite_error and turned into herald::problem at
// the boundary; open() returns the problem directly, naming the file.

#include <herald/error.hpp>
#include <herald/sqlite/detail/schema.hpp>
#include <herald/store/detail/webhook_codec.hpp>
#include <herald/time.hpp>
#include <herald/transport.hpp>

#include <boost/json/array.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <sqlite3.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace herald {

/** How hard a commit tries to reach the disk (SQLite's `PRAGMA synchronous`, in WAL mode). */
enum class sqlite_sync {
    /// A commit survives the process being killed, not a power cut (no fsync per commit;
    /// the WAL is synced at checkpoints). The default.
    normal,
    /// Every commit is fsynced: it also survives a power cut, at a cost of a disk flush.
    full,
};

namespace detail::sqlite {

class sqlite_error : public std::runtime_error {
public:
    sqlite_error(int rc, std::string const& what)
        : std::runtime_error(what)
        , rc_(rc) {}
    int code() const noexcept { return rc_; }

private:
    int rc_;
};

/// One prepared statement; reset after every use so it can run again.
class statement {
public:
    statement() = default;
    statement(sqlite3* db, std::string_view sql)
        : db_(db) {
        if (int rc = sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()),
                                        SQLITE_PREPARE_PERSISTENT, &s_, nullptr);
            rc != SQLITE_OK)
            throw sqlite_error(rc, std::string(sqlite3_errmsg(db)) + " in: " + std::string(sql));
    }
    statement(statement&& o) noexcept
        : db_(o.db_)
        , s_(std::exchange(o.s_, nullptr)) {}
    statement& operator=(statement&& o) noexcept {
        std::swap(db_, o.db_);
        std::swap(s_, o.s_);
        return *this;
    }
    ~statement() { sqlite3_finalize(s_); }

    statement& bind(int i, std::int64_t v) {
        check(sqlite3_bind_int64(s_, i, v));
        return *this;
    }
    statement& bind(int i, std::string_view v) {
        check(sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
        return *this;
    }
    statement& bind_blob(int i, void const* p, std::size_t n) {
        check(sqlite3_bind_blob(s_, i, p, static_cast<int>(n), SQLITE_TRANSIENT));
        return *this;
    }
    statement& bind_null(int i) {
        check(sqlite3_bind_null(s_, i));
        return *this;
    }

    /// One step: true while a row is available, false when done.
    bool step() {
        int const rc = sqlite3_step(s_);
        if (rc == SQLITE_ROW)
            return true;
        if (rc == SQLITE_DONE)
            return false;
        throw sqlite_error(rc, sqlite3_errmsg(db_));
    }
    /// Runs a statement that returns no rows, then resets it.
    void run() {
        while (step()) {
        }
        reset();
    }
    void reset() {
        sqlite3_reset(s_);
        sqlite3_clear_bindings(s_);
    }

    bool is_null(int c) const { return sqlite3_column_type(s_, c) == SQLITE_NULL; }
    std::int64_t int64(int c) const { return sqlite3_column_int64(s_, c); }
    std::string text(int c) const {
        auto const* p = reinterpret_cast<char const*>(sqlite3_column_text(s_, c));
        return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(s_, c)))
                 : std::string();
    }
    std::string blob(int c) const {
        auto const* p = static_cast<char const*>(sqlite3_column_blob(s_, c));
        return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(s_, c)))
                 : std::string();
    }

private:
    void check(int rc) {
        if (rc != SQLITE_OK)
            throw sqlite_error(rc, sqlite3_errmsg(db_));
    }
    sqlite3* db_ = nullptr;
    sqlite3_stmt* s_ = nullptr;
};

struct open_options {
    duration busy_timeout{5000};
    sqlite_sync sync = sqlite_sync::normal;
    bool read_only = false; ///< a second connection for queries; the schema is left alone
};

/// A connection to a herald database file, closed on destruction.
class connection {
public:
    connection() = default;
    connection(connection&& o) noexcept
        : db_(std::exchange(o.db_, nullptr))
        , path_(std::move(o.path_)) {}
    connection& operator=(connection&& o) noexcept {
        std::swap(db_, o.db_);
        std::swap(path_, o.path_);
        return *this;
    }
    ~connection() { sqlite3_close_v2(db_); }

    sqlite3* get() const noexcept { return db_; }
    std::string const& path() const noexcept { return path_; }

    void exec(char const* sql) {
        char* msg = nullptr;
        if (int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &msg); rc != SQLITE_OK) {
            std::string what = msg ? msg : sqlite3_errstr(rc);
            sqlite3_free(msg);
            throw sqlite_error(rc, what);
        }
    }

    statement prepare(std::string_view sql) { return statement(db_, sql); }

    std::int64_t pragma_int(char const* sql) {
        auto s = prepare(sql);
        std::int64_t v = s.step() ? s.int64(0) : 0;
        s.reset();
        return v;
    }

    /**
     * Opens (creating when missing) the file at `path`: WAL mode, busy timeout, synchronous
     * level, and the schema brought to schema_version by migrate(). A file that is not a
     * database, is corrupt, is locked past the busy timeout or was written by a newer herald is
     * refused with a problem naming the file.
     */
    static result<connection> open(std::string const& path, open_options const& o);

private:
    sqlite3* db_ = nullptr;
    std::string path_;
};

/// The problem for a failure on `path`, in words a user can act on.
inline problem describe(std::string const& path, int rc, std::string const& what,
                        duration busy_timeout) {
    std::string msg = "'" + path + "' ";
    switch (rc & 0xff) {
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
        msg += "is not a herald database or is corrupt (" + what + ")";
        break;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        msg += "is locked by another connection or process (waited " +
               format_duration(busy_timeout) + "): " + what;
        break;
    case SQLITE_CANTOPEN:
        msg = "cannot open '" + path + "' (" + what + ")";
        break;
    case SQLITE_READONLY:
    case SQLITE_PERM:
        msg += "cannot be written (" + what + ")";
        break;
    case SQLITE_FULL:
        msg += "cannot grow: the disk is full (" + what + ")";
        break;
    default:
        msg += "failed: " + what;
    }
    return make_problem(error::storage_failed, "path", std::move(msg));
}

/// Brings the schema to schema_version inside the caller's write transaction (schema.hpp).
inline void migrate(connection& c, int from) {
    for (int v = std::max(from, 0); v < schema_version; ++v)
        c.exec(schema_steps[static_cast<std::size_t>(v)]);
}

inline result<connection> connection::open(std::string const& path, open_options const& o) {
    connection c;
    c.path_ = path;
    int const flags =
        (o.read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
        SQLITE_OPEN_NOMUTEX;
    int rc = sqlite3_open_v2(path.c_str(), &c.db_, flags, nullptr);
    if (rc != SQLITE_OK) {
        std::string what = c.db_ ? sqlite3_errmsg(c.db_) : sqlite3_errstr(rc);
        return describe(path, rc, what, o.busy_timeout);
    }
    sqlite3_extended_result_codes(c.db_, 1);
    sqlite3_busy_timeout(c.db_, static_cast<int>(o.busy_timeout.count()));
    try {
        if (o.read_only) {
            // Reading the version reads the header: a bad file is refused here as well.
            auto const v = c.pragma_int("PRAGMA user_version");
            if (v > schema_version)
                throw sqlite_error(-1, std::to_string(v));
            return c;
        }
        // The first read of the file: one that is not a database fails here, and a newer
        // one is refused before anything in it changes.
        // one read transaction: both answers from the same state of the file
        c.exec("BEGIN");
        auto const found = c.pragma_int("PRAGMA user_version");
        bool const foreign = found == 0 && c.pragma_int("SELECT count(*) FROM sqlite_master") > 0;
        c.exec("COMMIT");
        if (found > schema_version)
            throw sqlite_error(-1, std::to_string(found));
        if (foreign)
            throw sqlite_error(-2, "");
        // Switching to WAL needs a lock, so a locked file waits here (or at BEGIN below).
        auto mode = c.prepare("PRAGMA journal_mode=WAL");
        std::string const got = mode.step() ? mode.text(0) : std::string();
        mode.reset();
        if (got != "wal")
            throw sqlite_error(SQLITE_ERROR,
                               "cannot switch to WAL mode (journal_mode is '" + got + "')");
        c.exec(o.sync == sqlite_sync::full ? "PRAGMA synchronous=FULL"
                                           : "PRAGMA synchronous=NORMAL");
        c.exec("BEGIN IMMEDIATE");
        try {
            auto const v = c.pragma_int("PRAGMA user_version");
            if (v > schema_version)
                throw sqlite_error(-1, std::to_string(v));
            if (v < schema_version) {
                migrate(c, static_cast<int>(v));
                c.exec(("PRAGMA user_version=" + std::to_string(schema_version)).c_str());
            }
            c.exec("COMMIT");
        } catch (...) {
            sqlite3_exec(c.db_, "ROLLBACK", nullptr, nullptr, nullptr);
            throw;
        }
    } catch (sqlite_error const& e) {
        if (e.code() == -1)
            return make_problem(error::storage_failed, "path",
                                "'" + path + "' has schema version " + e.what() +
                                    ", newer than this herald understands (" +
                                    std::to_string(schema_version) +
                                    "); use a newer herald or another file");
        if (e.code() == -2)
            return make_problem(error::storage_failed, "path",
                                "'" + path +
                                    "' is a SQLite database of another application (it has "
                                    "tables but no herald schema version); use another file");
        return describe(path, e.code(), e.what(), o.busy_timeout);
    }
    return c;
}

/// A write transaction that rolls back unless committed.
class transaction {
public:
    explicit transaction(connection& c)
        : c_(c) {
        c_.exec("BEGIN IMMEDIATE");
    }
    transaction(transaction const&) = delete;
    transaction& operator=(transaction const&) = delete;
    ~transaction() {
        if (!done_)
            sqlite3_exec(c_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
    }
    void commit() {
        c_.exec("COMMIT");
        done_ = true;
    }

private:
    connection& c_;
    bool done_ = false;
};

using detail::header_list;
using detail::load_header_list;

/// Milliseconds since the epoch for a column, and back.
inline std::int64_t to_column(time_point t) {
    return to_unix_ms(t);
}
inline time_point from_column(std::int64_t ms) {
    return time_point(std::chrono::duration_cast<clock::duration>(std::chrono::milliseconds(ms)));
}

} // namespace detail::sqlite
} // namespace herald

#endif
