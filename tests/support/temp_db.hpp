#ifndef HERALD_TEST_TEMP_DB_HPP
#define HERALD_TEST_TEMP_DB_HPP

// A temporary directory for database files, removed with everything in it, and a raw SQLite
// connection for tests that look into (or damage) a file behind herald's back.

#include <herald/sqlite/sqlite_store.hpp>

#include <catch2/catch.hpp>

#include <sqlite3.h>

#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>

namespace herald::test {

struct temp_dir {
    std::filesystem::path dir{};

    temp_dir() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "herald-test-XXXXXX").string();
        if (!mkdtemp(tmpl.data()))
            throw std::runtime_error("mkdtemp failed");
        dir = tmpl;
    }
    ~temp_dir() {
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }
    temp_dir(temp_dir const&) = delete;
    temp_dir& operator=(temp_dir const&) = delete;

    std::string file(std::string const& name) const { return (dir / name).string(); }
};

/// A sqlite_store on `path`; the test fails when the file cannot be opened.
inline sqlite_store open_store(std::string const& path) {
    auto s = sqlite_store::open({.path = path});
    if (!s)
        FAIL("open " << path << ": " << s.error().what());
    return std::move(*s);
}

/// A plain connection; exec throws with SQLite's message.
struct raw_db {
    sqlite3* db = nullptr;

    explicit raw_db(std::string const& path) {
        if (sqlite3_open(path.c_str(), &db) != SQLITE_OK)
            throw std::runtime_error("cannot open " + path);
    }
    ~raw_db() { sqlite3_close_v2(db); }
    raw_db(raw_db const&) = delete;
    raw_db& operator=(raw_db const&) = delete;

    void exec(std::string const& sql) {
        char* msg = nullptr;
        if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &msg) != SQLITE_OK) {
            std::string what = msg ? msg : "error";
            sqlite3_free(msg);
            throw std::runtime_error(what + " in: " + sql);
        }
    }

    /// The first column of the first row, as an integer (0 when there is none).
    long long value(std::string const& sql) {
        sqlite3_stmt* st = nullptr;
        if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) != SQLITE_OK)
            throw std::runtime_error(std::string(sqlite3_errmsg(db)) + " in: " + sql);
        long long v = 0;
        if (sqlite3_step(st) == SQLITE_ROW)
            v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        return v;
    }

    std::string text(std::string const& sql) {
        sqlite3_stmt* st = nullptr;
        if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) != SQLITE_OK)
            throw std::runtime_error(std::string(sqlite3_errmsg(db)) + " in: " + sql);
        std::string v;
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
            v = reinterpret_cast<char const*>(sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
        return v;
    }
};

} // namespace herald::test

#endif
