#ifndef HERALD_SQLITE_DETAIL_STORE_FILE_HPP
#define HERALD_SQLITE_DETAIL_STORE_FILE_HPP

// The SQL of sqlite_store: its prepared statements, the writes its database thread applies
// (store_op) and the reads of the queue. No threads here: sqlite_store runs it on its writer.

#include <herald/delivery.hpp>
#include <herald/error.hpp>
#include <herald/sqlite/detail/connection.hpp>
#include <herald/store/cached_table.hpp>
#include <herald/store/detail/webhook_codec.hpp>
#include <herald/webhook.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace herald::detail {

/// A delivery id as a 16-byte big-endian key: time-ordered like the id itself.
inline std::array<unsigned char, 16> id_key(delivery_id const& id) {
    std::array<unsigned char, 16> k{};
    for (int i = 0; i < 8; ++i) {
        k[static_cast<std::size_t>(i)] = static_cast<unsigned char>(id.hi >> (56 - 8 * i));
        k[static_cast<std::size_t>(8 + i)] = static_cast<unsigned char>(id.lo >> (56 - 8 * i));
    }
    return k;
}

inline delivery_id id_from_key(std::string const& k) {
    delivery_id id;
    for (std::size_t i = 0; i < 8 && k.size() == 16; ++i) {
        id.hi = id.hi << 8 | static_cast<unsigned char>(k[i]);
        id.lo = id.lo << 8 | static_cast<unsigned char>(k[8 + i]);
    }
    return id;
}

/// One write (or read) for the database thread, applied inside its transaction.
struct store_op {
    // A scoped enum: clang's -Wshadow takes plain enumerators for the store's members.
    enum class kind_t { put_hook, remove_hook, enqueue, reschedule, complete, flush, read };
    kind_t kind = kind_t::flush;
    webhook hook{};
    std::vector<delivery> deliveries{};
    delivery_id id{};
    std::uint32_t attempts = 0;
    time_point due{};
    std::function<void(result<void>)> done{};          ///< told once it is committed, or failed
    std::function<void()> read{};                      ///< a query, on the database thread
    std::chrono::steady_clock::time_point queued_at{}; ///< completions and retries
};

/// The store's connection and statements. Used by one thread at a time: the opening one, then
/// the database thread.
class store_file {
public:
    store_file() = default;
    explicit store_file(sqlite::connection c)
        : db(std::move(c)) {}

    /// The webhooks table, and the highest id ever given (on the opening thread).
    result<stored_table> load_table(std::string const& path, duration busy_timeout) {
        stored_table out;
        try {
            out.last_id = static_cast<webhook_id>(
                db.pragma_int("SELECT value FROM meta WHERE key = 'last_webhook_id'"));
            auto hooks = db.prepare("SELECT id, params, created_at, updated_at, "
                                    "disabled_reason, disabled_at FROM webhooks ORDER BY id");
            while (hooks.step()) {
                auto const id = static_cast<webhook_id>(hooks.int64(0));
                auto params = load_params(hooks.text(1), "webhooks[id=" + std::to_string(id) + "]");
                if (!params) {
                    auto e = params.error();
                    e.message = "'" + path + "': stored webhook " + e.field + " " + e.message;
                    e.field = "path";
                    return e;
                }
                webhook w;
                static_cast<webhook_params&>(w) = std::move(*params);
                w.id = id;
                w.created_at = sqlite::from_column(hooks.int64(2));
                w.updated_at = sqlite::from_column(hooks.int64(3));
                w.disabled_reason = hooks.text(4);
                if (!hooks.is_null(5))
                    w.disabled_at = sqlite::from_column(hooks.int64(5));
                out.hooks.push_back(std::move(w));
            }
            hooks.reset();
        } catch (sqlite::sqlite_error const& e) {
            return sqlite::describe(path, e.code(), e.what(), busy_timeout);
        }
        return out;
    }

    /// What the queue holds when the file is opened (on the opening thread), then prepares
    /// the statements.
    result<void> open_queue(std::string const& path, duration busy_timeout) {
        try {
            // A crash cannot leave these (each write is one transaction); a file edited by
            // hand might.
            db.exec("DELETE FROM deliveries WHERE event_seq NOT IN (SELECT seq FROM events);"
                    "DELETE FROM events WHERE seq NOT IN (SELECT event_seq FROM deliveries)");
            // The deliveries stay in the file: claim reads them page by page.
            open_seq = static_cast<std::uint64_t>(
                db.pragma_int("SELECT coalesce(max(seq), 0) FROM events"));
            recovered_total =
                static_cast<std::size_t>(db.pragma_int("SELECT count(*) FROM deliveries"));
            prepare();
        } catch (sqlite::sqlite_error const& e) {
            return sqlite::describe(path, e.code(), e.what(), busy_timeout);
        }
        return {};
    }

    /// Deliveries of what was in the file when it was opened, after (seq, key), in journal
    /// order.
    std::vector<delivery> read_recovered(std::uint64_t seq, std::string const& key,
                                         std::size_t max) {
        claim_stmt.bind(1, std::int64_t(open_seq))
            .bind(2, std::int64_t(seq))
            .bind_blob(3, key.data(), key.size())
            .bind(4, std::int64_t(max));
        return read_deliveries(claim_stmt);
    }

    /// Deliveries of webhook `id` whose seq is in (after, upto], in seq order.
    std::vector<delivery> read_lane(webhook_id id, std::uint64_t after, std::uint64_t upto,
                                    std::size_t max) {
        lane_stmt.bind(1, std::int64_t(id))
            .bind(2, std::int64_t(after))
            .bind(3, std::int64_t(upto))
            .bind(4, std::int64_t(max));
        return read_deliveries(lane_stmt);
    }

    void apply(store_op& o) {
        using sqlite::to_column;
        switch (o.kind) {
        case store_op::kind_t::put_hook: {
            auto const& w = o.hook;
            put_hook_stmt.bind(1, std::int64_t(w.id))
                .bind(2, w.name)
                .bind(3, stored_params(w))
                .bind(4, to_column(w.created_at))
                .bind(5, to_column(w.updated_at))
                .bind(6, w.disabled_reason);
            if (w.disabled_at)
                put_hook_stmt.bind(7, to_column(*w.disabled_at));
            put_hook_stmt.run();
            last_id_stmt.bind(1, std::int64_t(w.id)).run();
            break;
        }
        case store_op::kind_t::remove_hook:
            remove_hook_stmt.bind(1, std::int64_t(o.hook.id)).run();
            break;
        case store_op::kind_t::enqueue: {
            // Deliveries of one event share its row (and its body).
            prepared_event const* last = nullptr;
            std::int64_t seq = 0;
            for (auto const& d : o.deliveries) {
                if (d.event.get() != last) {
                    auto const& ev = *d.event;
                    event_stmt.bind(1, ev.event.id)
                        .bind(2, std::int64_t(ev.event.type))
                        .bind(3, ev.event.object_id);
                    if (ev.event.object_type)
                        event_stmt.bind(4, *ev.event.object_type);
                    if (ev.event.actor)
                        event_stmt.bind(5, *ev.event.actor);
                    event_stmt.bind(6, to_column(ev.event.occurred_at))
                        .bind_blob(7, ev.body.body.data(), ev.body.body.size())
                        .bind(8, ev.body.content_type)
                        .bind(9, sqlite::header_list(ev.body.headers));
                    if (d.seq != 0) // numbered by the dispatcher; else the next rowid
                        event_stmt.bind(10, static_cast<std::int64_t>(d.seq));
                    event_stmt.run();
                    seq = sqlite3_last_insert_rowid(db.get());
                    last = d.event.get();
                }
                auto const key = id_key(d.id);
                delivery_stmt.bind_blob(1, key.data(), key.size())
                    .bind(2, seq)
                    .bind(3, std::int64_t(d.hook->id))
                    .bind(4, d.hook->name)
                    .bind(5, d.hook->url)
                    .bind(6, std::int64_t(d.attempts))
                    .bind(7, to_column(d.due));
                delivery_stmt.run();
            }
            break;
        }
        case store_op::kind_t::reschedule: {
            auto const key = id_key(o.id);
            reschedule_stmt.bind_blob(1, key.data(), key.size())
                .bind(2, std::int64_t(o.attempts))
                .bind(3, to_column(o.due));
            reschedule_stmt.run();
            break;
        }
        case store_op::kind_t::complete: {
            auto const key = id_key(o.id);
            complete_stmt.bind_blob(1, key.data(), key.size());
            std::optional<std::int64_t> seq;
            while (complete_stmt.step())
                seq = complete_stmt.int64(0);
            complete_stmt.reset();
            if (seq)
                event_done_stmt.bind(1, *seq).run();
            break;
        }
        case store_op::kind_t::read:
            o.read(); // again from the start if the transaction is tried again
            break;
        case store_op::kind_t::flush:
            break;
        }
    }

    sqlite::connection db{};
    /// The webhook a stored delivery names, as the table has it now (null: deleted since).
    std::function<std::shared_ptr<webhook const>(webhook_id)> find_hook{};
    std::uint64_t open_seq = 0;      ///< the highest event seq when the file was opened
    std::size_t recovered_total = 0; ///< deliveries in the file when it was opened

private:
    /// The deliveries `rows` yields (columns as in delivery_columns), with their events.
    std::vector<delivery> read_deliveries(sqlite::statement& rows) {
        std::vector<delivery> out;
        std::unordered_map<std::int64_t, std::shared_ptr<prepared_event const>> events;
        while (rows.step()) {
            auto const seq = rows.int64(1);
            auto& ev = events[seq];
            if (!ev) {
                prepared_event pe;
                pe.event.id = rows.text(7);
                pe.event.type = static_cast<event_type>(rows.int64(8) % 3);
                pe.event.object_id = rows.text(9);
                if (!rows.is_null(10))
                    pe.event.object_type = rows.text(10);
                if (!rows.is_null(11))
                    pe.event.actor = rows.text(11);
                pe.event.occurred_at = sqlite::from_column(rows.int64(12));
                pe.body.body = rows.blob(13);
                pe.body.content_type = rows.text(14);
                pe.body.headers = sqlite::load_header_list(rows.text(15));
                ev = std::make_shared<prepared_event const>(std::move(pe));
            }
            delivery d;
            d.id = id_from_key(rows.blob(0));
            d.seq = static_cast<std::uint64_t>(seq);
            d.event = ev;
            auto const hook_id = static_cast<webhook_id>(rows.int64(2));
            d.hook = find_hook ? find_hook(hook_id) : nullptr;
            if (!d.hook) {
                // Deleted since: what the log needs to name it.
                auto gone = std::make_shared<webhook>();
                gone->id = hook_id;
                gone->name = rows.text(3);
                gone->url = rows.text(4);
                d.hook = std::move(gone);
            }
            d.attempts = static_cast<std::uint32_t>(rows.int64(5));
            d.due = sqlite::from_column(rows.int64(6));
            out.push_back(std::move(d));
        }
        rows.reset();
        return out;
    }

    void prepare() {
        static constexpr char const* delivery_columns =
            "SELECT d.id, d.event_seq, d.webhook_id, d.webhook_name, d.url, d.attempts, "
            "d.due, e.id, e.type, e.object_id, e.object_type, e.actor, e.occurred_at, "
            "e.body, e.content_type, e.headers FROM deliveries d JOIN events e ON "
            "e.seq = d.event_seq ";
        claim_stmt = db.prepare(std::string(delivery_columns) +
                                "WHERE d.event_seq <= ?1 AND (d.event_seq, d.id) > (?2, ?3) "
                                "ORDER BY d.event_seq, d.id LIMIT ?4");
        lane_stmt = db.prepare(std::string(delivery_columns) +
                               "WHERE d.webhook_id = ?1 AND d.event_seq > ?2 AND "
                               "d.event_seq <= ?3 ORDER BY d.event_seq LIMIT ?4");
        put_hook_stmt =
            db.prepare("INSERT INTO webhooks(id, name_key, params, created_at, updated_at, "
                       "disabled_reason, disabled_at) VALUES(?1, lower(?2), ?3, ?4, ?5, ?6, ?7) "
                       "ON CONFLICT(id) DO UPDATE SET name_key = excluded.name_key, params = "
                       "excluded.params, updated_at = excluded.updated_at, disabled_reason = "
                       "excluded.disabled_reason, disabled_at = excluded.disabled_at");
        last_id_stmt = db.prepare("INSERT INTO meta(key, value) VALUES('last_webhook_id', ?1) "
                                  "ON CONFLICT(key) DO UPDATE SET value = "
                                  "max(value, excluded.value)");
        remove_hook_stmt = db.prepare("DELETE FROM webhooks WHERE id = ?1");
        event_stmt = db.prepare(
            "INSERT INTO events(id, type, object_id, object_type, actor, occurred_at, body, "
            "content_type, headers, seq) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)");
        delivery_stmt = db.prepare(
            "INSERT OR REPLACE INTO deliveries(id, event_seq, webhook_id, webhook_name, url, "
            "attempts, due) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)");
        reschedule_stmt = db.prepare("UPDATE deliveries SET attempts = ?2, due = ?3 WHERE id = ?1");
        complete_stmt = db.prepare("DELETE FROM deliveries WHERE id = ?1 RETURNING event_seq");
        event_done_stmt = db.prepare("DELETE FROM events WHERE seq = ?1 AND NOT EXISTS "
                                     "(SELECT 1 FROM deliveries WHERE event_seq = ?1)");
    }

    sqlite::statement put_hook_stmt, last_id_stmt, remove_hook_stmt, event_stmt, delivery_stmt,
        reschedule_stmt, complete_stmt, event_done_stmt, claim_stmt, lane_stmt;
};

} // namespace herald::detail

#endif
