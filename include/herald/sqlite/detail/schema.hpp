#ifndef HERALD_SQLITE_DETAIL_SCHEMA_HPP
#define HERALD_SQLITE_DETAIL_SCHEMA_HPP

// The one schema of a herald database file: the webhooks, the delivery queue and the log
// (sqlite_store and sqlite_log may share a file, or each use one of its own).

namespace herald::detail::sqlite {

/// The first version this library wrote, and the one it writes now. See schema_steps.
inline constexpr int schema_version = 4;

/**
 * The steps from one schema version to the next, in order: schema_steps[v] brings a version v
 * file to v + 1 (migrate() runs them in the caller's write transaction; a new file is
 * version 0 and takes them all).
 *
 * - to 1: the first schema (webhooks, events, deliveries, log).
 * - to 2: the log keeps the request as sent: its headers, and its body once per event in
 *   log_bodies (every attempt of an event, to every webhook, sent the same bytes); and it is
 *   searchable by webhook name (the name stays when the webhook is deleted).
 * - to 3: the log is indexed by delivery id (Redeliver and the admin's links name a delivery).
 * - to 4: the queue is indexed by webhook and event seq (a lane's backlog is read back from
 *   the file in order, sqlite_store::async_load).
 */
inline constexpr char const* schema_steps[schema_version] = {
    // 0 -> 1
    R"sql(
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE webhooks (
    id INTEGER PRIMARY KEY,
    name_key TEXT NOT NULL UNIQUE,
    params TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    disabled_reason TEXT NOT NULL DEFAULT '',
    disabled_at INTEGER);
CREATE TABLE events (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    type INTEGER NOT NULL,
    object_id TEXT NOT NULL,
    object_type TEXT,
    actor TEXT,
    occurred_at INTEGER NOT NULL,
    body BLOB NOT NULL,
    content_type TEXT NOT NULL,
    headers TEXT NOT NULL);
CREATE TABLE deliveries (
    id BLOB PRIMARY KEY,
    event_seq INTEGER NOT NULL,
    webhook_id INTEGER NOT NULL,
    webhook_name TEXT NOT NULL,
    url TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    due INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX deliveries_event ON deliveries(event_seq);
CREATE TABLE log (
    seq INTEGER PRIMARY KEY,
    delivery_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    webhook_id INTEGER NOT NULL,
    webhook_name TEXT NOT NULL,
    url TEXT NOT NULL,
    type INTEGER NOT NULL,
    object_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    started_at INTEGER NOT NULL,
    elapsed_ms INTEGER NOT NULL,
    status INTEGER NOT NULL,
    outcome INTEGER NOT NULL,
    error TEXT NOT NULL,
    response_excerpt TEXT NOT NULL,
    next_attempt_at INTEGER,
    warning TEXT NOT NULL);
CREATE INDEX log_webhook ON log(webhook_id, seq);
CREATE INDEX log_type ON log(type, seq);
CREATE INDEX log_outcome ON log(outcome, seq);
CREATE INDEX log_started ON log(started_at);
)sql",
    // 1 -> 2
    R"sql(
CREATE TABLE log_bodies (id INTEGER PRIMARY KEY, body BLOB NOT NULL);
ALTER TABLE log ADD COLUMN request_headers TEXT NOT NULL DEFAULT '[]';
ALTER TABLE log ADD COLUMN request_body_id INTEGER;
CREATE INDEX log_body ON log(request_body_id);
CREATE INDEX log_webhook_name ON log(webhook_name COLLATE NOCASE, seq);
)sql",
    // 2 -> 3
    "CREATE INDEX log_delivery ON log(delivery_id, seq);",
    // 3 -> 4
    "CREATE INDEX deliveries_webhook ON deliveries(webhook_id, event_seq);",
};

} // namespace herald::detail::sqlite

#endif
