// The throwaway PostgreSQL cluster of the tests labelled `postgres` (scripts/pg-cluster, started
// by ctest's fixture): where it is, a database of its own for each test, and blocking SQL for
// the tests to look at and change what the store keeps (back-date a lease, count rows).
#ifndef HERALD_TEST_PG_CLUSTER_HPP
#define HERALD_TEST_PG_CLUSTER_HPP

#include <libpq-fe.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <unistd.h>
#include <vector>

namespace herald::test {

/// The cluster's connection string: $HERALD_PG_CONNINFO, or the file the fixture wrote
/// ($HERALD_PG_CONNINFO_FILE). Throws when neither is there: these tests need the cluster.
inline std::string const& cluster_conninfo() {
    static std::string const info = [] {
        if (char const* v = std::getenv("HERALD_PG_CONNINFO"); v && *v)
            return std::string(v);
        if (char const* f = std::getenv("HERALD_PG_CONNINFO_FILE"); f && *f) {
            std::ifstream in(f);
            std::string line;
            if (std::getline(in, line) && !line.empty())
                return line;
            throw std::runtime_error(std::string("no connection string in ") + f +
                                     ": is the cluster running (ctest -L postgres starts it)?");
        }
        throw std::runtime_error("HERALD_PG_CONNINFO is not set: run the postgres tests with "
                                 "ctest (its fixture starts scripts/pg-cluster)");
    }();
    return info;
}

/// Rows of text, NULL as "<null>".
using sql_rows = std::vector<std::vector<std::string>>;

/// Runs `query` on a connection of its own (blocking); throws with the server's message.
inline sql_rows sql(std::string const& conninfo, std::string const& query) {
    std::unique_ptr<PGconn, void (*)(PGconn*)> c(PQconnectdb(conninfo.c_str()), &PQfinish);
    if (PQstatus(c.get()) != CONNECTION_OK)
        throw std::runtime_error("cannot connect: " + std::string(PQerrorMessage(c.get())));
    std::unique_ptr<PGresult, void (*)(PGresult*)> r(PQexec(c.get(), query.c_str()), &PQclear);
    auto const st = PQresultStatus(r.get());
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        throw std::runtime_error(query + ": " + PQresultErrorMessage(r.get()));
    sql_rows out;
    for (int i = 0; i < PQntuples(r.get()); ++i) {
        std::vector<std::string> row;
        for (int j = 0; j < PQnfields(r.get()); ++j)
            row.push_back(PQgetisnull(r.get(), i, j) ? "<null>" : PQgetvalue(r.get(), i, j));
        out.push_back(std::move(row));
    }
    return out;
}

/// The one value a query returns.
inline std::string sql_value(std::string const& conninfo, std::string const& query) {
    auto rows = sql(conninfo, query);
    if (rows.empty() || rows[0].empty())
        throw std::runtime_error(query + ": no value");
    return rows[0][0];
}

/// A database of its own on the cluster, dropped with the object (its connections ended).
class temp_database {
public:
    temp_database() {
        static std::atomic<int> n{0};
        name_ = "herald_t" + std::to_string(::getpid()) + "_" + std::to_string(++n);
        sql(cluster_conninfo(), "CREATE DATABASE " + name_);
    }
    temp_database(temp_database const&) = delete;
    temp_database& operator=(temp_database const&) = delete;
    ~temp_database() {
        try {
            sql(cluster_conninfo(), "DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
        } catch (std::exception const&) {
        }
    }
    std::string const& name() const noexcept { return name_; }
    /// The cluster's connection string with this database.
    std::string conninfo() const { return cluster_conninfo() + " dbname=" + name_; }
    sql_rows query(std::string const& q) const { return sql(conninfo(), q); }
    std::string value(std::string const& q) const { return sql_value(conninfo(), q); }

private:
    std::string name_;
};

} // namespace herald::test

#endif
