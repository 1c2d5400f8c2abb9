#ifndef HERALD_POSTGRES_DETAIL_SCHEMA_HPP
#define HERALD_POSTGRES_DETAIL_SCHEMA_HPP

// The schema of a herald PostgreSQL database: the webhooks, the delivery queue with its leases,
// and the log; shared by every herald process that uses the database (postgres_store,
// postgres_log). Migrated like the SQLite one: versioned steps, run by the first process that
// opens the database, under an advisory lock so that processes starting together take turns.

namespace herald::detail::pg {

/// The version this library writes. See schema_steps.
inline constexpr int schema_version = 3;

/// The advisory lock every migration holds (pg_advisory_xact_lock): "herald" in ASCII.
inline constexpr long long migration_lock = 0x68657261'6c64;

/**
 * The steps from one version to the next: schema_steps[v] brings a version v database to v + 1,
 * in the migrating transaction. A database without herald's tables is version 0.
 *
 * - to 1: meta (schema version, last webhook id, the table's version), webhooks, events,
 *   deliveries with their leases (a partial index of the free rows by due time for claims, one
 *   of the held rows by expiry for the requeue and for renewals, which take those of this
 *   process that expire soon).
 * - to 2: the log (postgres_log): herald_log, one row per attempt keyed by its seq, indexed for
 *   every filter of a query (webhook, type, outcome, start time, webhook name ignoring ASCII
 *   case, delivery id), newest first; herald_log_bodies, one row per request body (every
 *   attempt of an event sent the same bytes), swept by the retention rule once no entry has
 *   referred to it for an hour (`touched`). A process's slot in the seqs is an advisory lock,
 *   not a row (see postgres_log).
 * - to 3: an event sent to one webhook is kept in its delivery's row (the event's columns,
 *   `event_key` NULL) rather than in herald_events: one row to insert and to delete per
 *   delivery instead of two, and no entry in the index by event. herald_events keeps the
 *   events shared by several deliveries.
 */
inline constexpr char const* schema_steps[schema_version] = {
    // 0 -> 1
    R"sql(
CREATE TABLE IF NOT EXISTS herald_meta (key text PRIMARY KEY, value bigint NOT NULL);
CREATE TABLE herald_webhooks (
    id bigint PRIMARY KEY,
    name_key text NOT NULL UNIQUE,
    params text NOT NULL,
    created_at bigint NOT NULL,
    updated_at bigint NOT NULL,
    disabled_reason text NOT NULL DEFAULT '',
    disabled_at bigint);
CREATE TABLE herald_events (
    key uuid PRIMARY KEY,
    id text NOT NULL,
    type smallint NOT NULL,
    object_id text NOT NULL,
    object_type text,
    actor text,
    occurred_at bigint NOT NULL,
    body bytea NOT NULL,
    content_type text NOT NULL,
    headers text NOT NULL);
CREATE SEQUENCE herald_delivery_seq;
CREATE TABLE herald_deliveries (
    id uuid PRIMARY KEY,
    seq bigint NOT NULL DEFAULT nextval('herald_delivery_seq'),
    event_key uuid NOT NULL,
    webhook_id bigint NOT NULL,
    webhook_name text NOT NULL,
    url text NOT NULL,
    attempts integer NOT NULL,
    due bigint NOT NULL,
    lease_token bigint,
    lease_owner text,
    lease_until timestamptz);
CREATE INDEX herald_deliveries_free ON herald_deliveries (due, seq) WHERE lease_token IS NULL;
CREATE INDEX herald_deliveries_expiry ON herald_deliveries (lease_until)
    WHERE lease_token IS NOT NULL;
CREATE INDEX herald_deliveries_event ON herald_deliveries (event_key);
INSERT INTO herald_meta (key, value) VALUES ('last_webhook_id', 0), ('table_version', 0)
    ON CONFLICT (key) DO NOTHING;
)sql",
    // 1 -> 2
    R"sql(
CREATE TABLE herald_log_bodies (
    id bigint PRIMARY KEY,
    body bytea NOT NULL,
    touched timestamptz NOT NULL DEFAULT now());
CREATE TABLE herald_log (
    seq bigint PRIMARY KEY,
    delivery_id text NOT NULL,
    event_id text NOT NULL,
    webhook_id bigint NOT NULL,
    webhook_name text NOT NULL,
    url text NOT NULL,
    type smallint NOT NULL,
    object_id text NOT NULL,
    attempt bigint NOT NULL,
    started_at bigint NOT NULL,
    elapsed_ms bigint NOT NULL,
    status bigint NOT NULL,
    outcome smallint NOT NULL,
    error text NOT NULL,
    response_excerpt text NOT NULL,
    next_attempt_at bigint,
    warning text NOT NULL,
    request_headers text NOT NULL,
    body_id bigint);
CREATE INDEX herald_log_webhook ON herald_log (webhook_id, seq);
CREATE INDEX herald_log_type ON herald_log (type, seq);
CREATE INDEX herald_log_outcome ON herald_log (outcome, seq);
CREATE INDEX herald_log_started ON herald_log (started_at);
CREATE INDEX herald_log_webhook_name ON herald_log (lower(webhook_name COLLATE "C"), seq);
CREATE INDEX herald_log_delivery ON herald_log (delivery_id, seq);
CREATE INDEX herald_log_body ON herald_log (body_id) WHERE body_id IS NOT NULL;
CREATE INDEX herald_log_bodies_touched ON herald_log_bodies (touched);
)sql",
    // 2 -> 3
    R"sql(
ALTER TABLE herald_deliveries
    ALTER COLUMN event_key DROP NOT NULL,
    ADD COLUMN event_id text,
    ADD COLUMN type smallint,
    ADD COLUMN object_id text,
    ADD COLUMN object_type text,
    ADD COLUMN actor text,
    ADD COLUMN occurred_at bigint,
    ADD COLUMN body bytea,
    ADD COLUMN content_type text,
    ADD COLUMN headers text,
    ADD CONSTRAINT herald_deliveries_event_where CHECK ((event_key IS NULL) = (body IS NOT NULL));
DROP INDEX herald_deliveries_event;
CREATE INDEX herald_deliveries_event ON herald_deliveries (event_key) WHERE event_key IS NOT NULL;
)sql",
};

/// The channels herald's processes notify each other on.
inline constexpr char const* work_channel = "herald_work";   ///< deliveries became claimable
inline constexpr char const* table_channel = "herald_table"; ///< the webhooks table changed

} // namespace herald::detail::pg

#endif
