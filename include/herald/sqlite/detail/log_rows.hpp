#ifndef HERALD_SQLITE_DETAIL_LOG_ROWS_HPP
#define HERALD_SQLITE_DETAIL_LOG_ROWS_HPP

// A log_entry as a row of the `log` table (schema.hpp), and back: what sqlite_log writes and
// queries.

#include <herald/log.hpp>
#include <herald/sqlite/detail/connection.hpp>

#include <cstdint>

namespace herald::detail::sqlite {

/// The columns read_entry reads, in its order (b: the entry's row in log_bodies).
inline constexpr char const* log_columns =
    "seq, delivery_id, event_id, webhook_id, webhook_name, url, type, object_id, attempt, "
    "started_at, elapsed_ms, status, outcome, error, response_excerpt, next_attempt_at, "
    "warning, request_headers, request_body_id, b.body";

/// The insert bind_entry fills; ?19 is the row of the request body in log_bodies.
inline constexpr char const* log_insert =
    "INSERT INTO log(seq, delivery_id, event_id, webhook_id, webhook_name, url, "
    "type, object_id, attempt, started_at, elapsed_ms, status, outcome, error, "
    "response_excerpt, next_attempt_at, warning, request_headers, "
    "request_body_id) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, "
    "?13, ?14, ?15, ?16, ?17, ?18, ?19)";

/// Binds every column of log_insert but the body's (?19).
inline void bind_entry(statement& insert, log_entry const& e) {
    insert.bind(1, std::int64_t(e.seq))
        .bind(2, e.delivery_id)
        .bind(3, e.event_id)
        .bind(4, std::int64_t(e.webhook))
        .bind(5, e.webhook_name)
        .bind(6, e.url)
        .bind(7, std::int64_t(e.type))
        .bind(8, e.object_id)
        .bind(9, std::int64_t(e.attempt))
        .bind(10, to_column(e.started_at))
        .bind(11, std::int64_t(e.elapsed.count()))
        .bind(12, std::int64_t(e.status))
        .bind(13, std::int64_t(e.result))
        .bind(14, e.error)
        .bind(15, e.response_excerpt)
        .bind(17, e.warning)
        .bind(18, header_list(e.request_headers));
    if (e.next_attempt_at)
        insert.bind(16, to_column(*e.next_attempt_at));
}

/// The entry of a row of log_columns (without its body).
inline log_entry read_entry(statement const& st) {
    log_entry e;
    e.seq = static_cast<std::uint64_t>(st.int64(0));
    e.delivery_id = st.text(1);
    e.event_id = st.text(2);
    e.webhook = static_cast<webhook_id>(st.int64(3));
    e.webhook_name = st.text(4);
    e.url = st.text(5);
    e.type = static_cast<event_type>(st.int64(6) % 3);
    e.object_id = st.text(7);
    e.attempt = static_cast<std::uint32_t>(st.int64(8));
    e.started_at = from_column(st.int64(9));
    e.elapsed = duration(st.int64(10));
    e.status = static_cast<unsigned>(st.int64(11));
    e.result = static_cast<outcome>(st.int64(12) % 3);
    e.error = st.text(13);
    e.response_excerpt = st.text(14);
    if (!st.is_null(15))
        e.next_attempt_at = from_column(st.int64(15));
    e.warning = st.text(16);
    e.request_headers = load_header_list(st.text(17));
    return e;
}

} // namespace herald::detail::sqlite

#endif
