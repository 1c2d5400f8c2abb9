#ifndef HERALD_LOG_HPP
#define HERALD_LOG_HPP

#include <herald/error.hpp>
#include <herald/event.hpp>
#include <herald/shared_text.hpp>
#include <herald/time.hpp>
#include <herald/transport.hpp>
#include <herald/version.hpp>
#include <herald/webhook.hpp>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace herald {

/** How an attempt ended for its delivery. */
enum class outcome : std::uint8_t {
    delivered, ///< a 2xx arrived
    retrying,  ///< it failed and another attempt is scheduled (next_attempt_at)
    failed,    ///< it failed and no attempt follows
};

inline constexpr std::string_view to_string(outcome o) noexcept {
    switch (o) {
    case outcome::delivered:
        return "delivered";
    case outcome::retrying:
        return "retrying";
    case outcome::failed:
        return "failed";
    }
    return "unknown";
}

inline result<outcome> parse_outcome(std::string_view s, std::string_view field = "outcome") {
    if (s == "delivered")
        return outcome::delivered;
    if (s == "retrying")
        return outcome::retrying;
    if (s == "failed")
        return outcome::failed;
    return make_problem(error::invalid_field, std::string(field),
                        "unknown outcome '" + std::string(s) +
                            "' (expected delivered, retrying or failed)");
}

/**
 * One attempt to deliver one event to one webhook: a row of "View Logs". The webhook's name
 * and URL are kept as they were, so the entry stays readable after the webhook changes. The
 * text fields share the event's and the webhook snapshot's characters (`shared_text`) rather
 * than copy them per attempt; assign a `std::string` to give an entry text of its own.
 */
struct log_entry {
    std::uint64_t seq = 0; ///< assigned by the sink, increasing; the paging cursor
    shared_text delivery_id{};
    shared_text event_id{};
    webhook_id webhook = 0;
    shared_text webhook_name{};
    shared_text url{};
    event_type type = event_type::create;
    shared_text object_id{};
    std::uint32_t attempt = 0; ///< 1 for the first attempt
    time_point started_at{};
    duration elapsed{0};
    unsigned status = 0; ///< HTTP status, 0 when no response arrived
    herald::outcome result = herald::outcome::failed;
    std::string error{}; ///< why it failed, empty when delivered
    std::string response_excerpt{};
    std::optional<time_point> next_attempt_at{};
    std::string warning{}; ///< something the user should know even when delivered (TLS unverified)
    /// The request's header fields as sent, in order (`Content-Type`, herald's, the
    /// serializer's, the webhook's own: `detail::headers_as_sent`), empty when no request was
    /// sent. Not the transport's framing (`Host`, `Content-Length`), which follows from `url`
    /// and `request_body`. Shown with credential-looking values masked (`to_json`).
    std::vector<http_header> request_headers{};
    /// The body as sent, shared with the event's payload (and every other attempt of it).
    std::shared_ptr<std::string const> request_body{};
};

namespace detail {
/**
 * Takes `req`'s header fields as http_transport writes them, for the log: `Content-Type` (the
 * request's `content_type`, unless a header of that name replaces it) first, then the headers
 * in order, one field per name (a later one replaces an earlier one), without the fields the
 * transport frames the message with (`Host`, `Content-Length`, `Transfer-Encoding`,
 * `Connection`), and herald's `User-Agent` last unless one is given (the dispatcher always
 * gives one). A redelivery reads the content type back from there. Leaves `req.headers` empty.
 */
inline std::vector<http_header> headers_as_sent(http_request& req) {
    auto& hs = req.headers;
    auto const named_from = [&](std::size_t i, std::string_view name) {
        for (; i < hs.size(); ++i)
            if (iequals(hs[i].name, name))
                return true;
        return false;
    };
    auto const framing = [](std::string_view name) {
        return iequals(name, "Host") || iequals(name, "Content-Length") ||
               iequals(name, "Transfer-Encoding") || iequals(name, "Connection");
    };
    bool const typed = named_from(0, "Content-Type");
    // Compacted in place: what the transport skips is rare, and usually nothing moves.
    std::size_t kept = 0;
    for (std::size_t i = 0; i < hs.size(); ++i) {
        if (framing(hs[i].name) || named_from(i + 1, hs[i].name))
            continue;
        if (kept != i)
            hs[kept] = std::move(hs[i]);
        ++kept;
    }
    hs.resize(kept);
    if (!named_from(0, "User-Agent"))
        hs.push_back(http_header{"User-Agent", user_agent});
    if (!typed && !req.content_type.empty())
        hs.insert(hs.begin(), http_header{"Content-Type", req.content_type});
    return std::move(hs);
}
} // namespace detail

/** What a log entry's view includes beyond the summary. */
enum class log_detail : std::uint8_t {
    summary, ///< the row of "View Logs": no request headers, no body
    full,    ///< also `request.headers` (credentials masked) and `request.body`
};

/** The relay's JSON line and the admin API's log object for one entry. */
inline boost::json::object to_json(log_entry const& e, log_detail detail = log_detail::summary) {
    boost::json::object o;
    o["delivery_id"] = e.delivery_id.view();
    o["event_id"] = e.event_id.view();
    o["webhook_id"] = e.webhook;
    o["webhook_name"] = e.webhook_name.view();
    o["url"] = mask_url(e.url); // query credentials masked, as in to_json(webhook)
    o["event_type"] = to_string(e.type);
    o["object_id"] = e.object_id.view();
    o["attempt"] = e.attempt;
    o["started_at"] = format_rfc3339(e.started_at);
    o["duration_ms"] = e.elapsed.count();
    o["status"] = e.status;
    o["outcome"] = to_string(e.result);
    o["error"] = e.error;
    o["response_excerpt"] = e.response_excerpt;
    if (e.next_attempt_at)
        o["next_attempt_at"] = format_rfc3339(*e.next_attempt_at);
    else
        o["next_attempt_at"] = nullptr;
    if (!e.warning.empty())
        o["warning"] = e.warning;
    if (detail == log_detail::full) {
        boost::json::array headers;
        for (auto const& h : e.request_headers)
            headers.push_back(boost::json::object{
                {"name", h.name},
                {"value", is_sensitive_header(h.name) ? mask_header_value(h.value) : h.value}});
        boost::json::object request;
        request["headers"] = std::move(headers);
        if (e.request_body)
            request["body"] = *e.request_body;
        else
            request["body"] = nullptr;
        o["request"] = std::move(request);
    }
    return o;
}

/** A "View Logs" query: every filter is optional; results come newest first. */
struct log_query {
    std::optional<webhook_id> webhook{};
    std::optional<event_type> type{};
    std::optional<herald::outcome> result{};
    std::optional<time_point> since{};         ///< started_at >= since
    std::optional<time_point> until{};         ///< started_at < until
    std::size_t limit = 50;                    ///< page size, at most max_limit
    std::optional<std::uint64_t> before_seq{}; ///< the cursor: entries older than this one
    /// The webhook's name as the entry recorded it, case-insensitive: finds the entries of a
    /// webhook that was deleted (or renamed) since.
    std::optional<std::string> webhook_name{};
    /// One delivery's attempts (`dlv_…`, exact).
    std::optional<std::string> delivery_id{};

    static constexpr std::size_t max_limit = 1000;

    bool matches(log_entry const& e) const {
        return (!webhook || e.webhook == *webhook) && (!type || e.type == *type) &&
               (!result || e.result == *result) && (!since || e.started_at >= *since) &&
               (!until || e.started_at < *until) && (!before_seq || e.seq < *before_seq) &&
               (!webhook_name || same_name(e.webhook_name, *webhook_name)) &&
               (!delivery_id || e.delivery_id == *delivery_id);
    }

private:
    static bool same_name(std::string_view a, std::string_view b) {
        auto lower = [](char c) {
            return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c;
        };
        if (a.size() != b.size())
            return false;
        for (std::size_t i = 0; i < a.size(); ++i)
            if (lower(a[i]) != lower(b[i]))
                return false;
        return true;
    }
};

/** One page of results. `next` is the cursor for the following (older) page, if any. */
struct log_page {
    std::vector<log_entry> entries{};
    std::optional<std::uint64_t> next{};
};

} // namespace herald

#endif
