// The models of each policy, as the conformance suites (tests/unit/test_conformance_*.cpp)
// build them: one traits struct per model, whose `make()` opens the model, on a temporary
// file for the SQLite ones. Calling `make()` again on the same traits object opens the same
// file again, as a restart would; a memory model comes back empty, as it does after one.
// A new model joins the suites by a traits struct here and its name in the lists at the end.
// Also what the suites and the models' own tests put in a store: webhooks, events, deliveries.
#ifndef HERALD_TEST_MODELS_HPP
#define HERALD_TEST_MODELS_HPP

#include <herald/delivery.hpp>
#include <herald/log/jsonl_log.hpp>
#include <herald/log/memory_log.hpp>
#include <herald/store/memory_store.hpp>
#include <herald/webhook.hpp>

// Like the test_sqlite_*.cpp files, which CMake leaves out without SQLite.
#if __has_include(<sqlite3.h>)
#define HERALD_TEST_SQLITE 1
#include "temp_db.hpp"

#include <herald/sqlite/sqlite_log.hpp>
#include <herald/sqlite/sqlite_store.hpp>
#else
#define HERALD_TEST_SQLITE 0
#endif

// The PostgreSQL models run in the postgres test program only (tests/postgres, against the
// fixture's cluster): it compiles the conformance suites again with HERALD_TEST_POSTGRES_ONLY.
#if HERALD_TEST_POSTGRES_ONLY
#include "pg_cluster.hpp"

#include <herald/postgres/postgres_log.hpp>
#include <herald/postgres/postgres_store.hpp>
#endif

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

namespace herald::test {

// ---- the models ----

/// A model that keeps everything in memory: each `make()` is a new, empty one.
template <class T>
struct in_memory {
    using type = T;
    type make() { return type{}; }
};

using memory_store_model = in_memory<memory_store>;
using memory_log_model = in_memory<memory_log>;

#if HERALD_TEST_SQLITE
/// A model on a SQLite file of its own, in a temporary directory removed with the traits.
template <class T>
struct on_sqlite_file {
    using type = T;
    temp_dir dir{};
    type make() {
        auto r = T::open({.path = dir.file("herald.db")});
        if (!r)
            throw std::runtime_error("cannot open the model: " + r.error().what());
        return std::move(*r);
    }
};

using sqlite_store_model = on_sqlite_file<sqlite_store>;
using sqlite_log_model = on_sqlite_file<sqlite_log>;
#endif

#if HERALD_TEST_POSTGRES_ONLY
/// A model on a database of its own on the test cluster, dropped with the traits; each
/// `make()` is another process opening the same database.
template <class T, class Params>
struct on_postgres {
    using type = T;
    temp_database db{};
    type make() {
        Params p;
        p.conninfo = db.conninfo();
        if constexpr (requires { p.poll_interval; })
            p.poll_interval = std::chrono::milliseconds(200);
        auto r = T::open(std::move(p));
        if (!r)
            throw std::runtime_error("cannot open the model: " + r.error().what());
        return std::move(*r);
    }
};

using postgres_store_model = on_postgres<postgres_store, postgres_store_params>;
using postgres_log_model = on_postgres<postgres_log, postgres_log_params>;
#endif

/// Its lines go to a temporary file that is gone once closed (what it writes is tested in
/// test_parse_event.cpp); it answers queries from the recent entries it keeps.
struct jsonl_log_model {
    using type = jsonl_log;
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> file{std::tmpfile(), &std::fclose};
    type make() {
        if (!file)
            throw std::runtime_error("tmpfile failed");
        return type(file.get());
    }
};

// ---- what goes in a store ----

/// A webhook subscribed to `events`, to create in a table.
inline webhook_params hook_params(std::string name, std::string url = "https://example.com/hook",
                                  event_type_set events = event_type_set::all()) {
    webhook_params p;
    p.name = std::move(name);
    p.url = std::move(url);
    p.events = events;
    return p;
}

/// An event with a body, as the dispatcher would make it: `evt_<id>` about server
/// `obj-<id>`, with a `ce-id` header.
inline std::shared_ptr<prepared_event const> prepared(std::string id, std::string body = "{}") {
    prepared_event pe;
    pe.event = object_event::created("obj-" + id, {{"n", id}});
    pe.event.id = "evt_" + id;
    pe.event.object_type = "server";
    pe.event.occurred_at = clock::now();
    pe.body.body = std::move(body);
    pe.body.headers.push_back({"ce-id", id});
    return std::make_shared<prepared_event const>(std::move(pe));
}

/// A first delivery of `ev` to `w`, due at a fixed time; `seq` as the dispatcher numbers it
/// (0: the journal's own order).
inline delivery delivery_for(std::shared_ptr<prepared_event const> ev, webhook const& w,
                             std::uint64_t seq = 0) {
    delivery d{make_delivery_id(), std::move(ev), std::make_shared<webhook const>(w), 0,
               time_point(std::chrono::milliseconds(1'800'000'000'000))};
    d.seq = seq;
    return d;
}

} // namespace herald::test

// The lists TEMPLATE_TEST_CASE takes (a test's name ends with its model's).
#if HERALD_TEST_POSTGRES_ONLY
#define HERALD_TEST_TABLE_MODELS herald::test::postgres_store_model
#define HERALD_TEST_DURABLE_JOURNAL_MODELS herald::test::postgres_store_model
#define HERALD_TEST_LOG_MODELS herald::test::postgres_log_model
#elif HERALD_TEST_SQLITE
#define HERALD_TEST_TABLE_MODELS herald::test::memory_store_model, herald::test::sqlite_store_model
#define HERALD_TEST_DURABLE_JOURNAL_MODELS herald::test::sqlite_store_model
#define HERALD_TEST_BACKLOG_JOURNAL_MODELS herald::test::sqlite_store_model
#define HERALD_TEST_LOG_MODELS                                                                     \
    herald::test::memory_log_model, herald::test::sqlite_log_model, herald::test::jsonl_log_model
#else
#define HERALD_TEST_TABLE_MODELS herald::test::memory_store_model
#define HERALD_TEST_LOG_MODELS herald::test::memory_log_model, herald::test::jsonl_log_model
#endif
#define HERALD_TEST_JOURNAL_MODELS HERALD_TEST_TABLE_MODELS

#endif
