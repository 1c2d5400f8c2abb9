#ifndef HERALD_ADMIN_METRICS_HPP
#define HERALD_ADMIN_METRICS_HPP

#include <herald/dispatcher_params.hpp>
#include <herald/log.hpp>
#include <herald/log/log_failures.hpp>
#include <herald/log/metered_log.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>

// GET /metrics: the dispatcher's counters and gauges in the Prometheus text format (0.0.4),
// and what the log counts when it does (metrics_log, write_counting_log).
namespace herald::admin::detail {

inline constexpr char const* metrics_content_type = "text/plain; version=0.0.4; charset=utf-8";

inline void append_metric(std::string& out, char const* name, char const* type, char const* help) {
    out += "# HELP ";
    out += name;
    out += ' ';
    out += help;
    out += "\n# TYPE ";
    out += name;
    out += ' ';
    out += type;
    out += '\n';
}

inline void append_sample(std::string& out, char const* name, std::string const& labels,
                          double value) {
    out += name;
    if (!labels.empty())
        out += '{' + labels + '}';
    char buf[64];
    std::snprintf(buf, sizeof buf, " %.17g\n", value);
    out += buf;
}

/// One metric of one sample without labels.
inline void append_single(std::string& out, char const* name, char const* type, char const* help,
                          double value) {
    append_metric(out, name, type, help);
    append_sample(out, name, "", value);
}

/// The dispatcher's counters and gauges (dispatcher_stats), and its webhooks by state.
inline void append_dispatcher_metrics(std::string& out, dispatcher_stats const& s,
                                      std::size_t active, std::size_t inactive) {
    append_single(out, "herald_events_published_total", "counter", "Events accepted by publish.",
                  double(s.published));
    append_single(out, "herald_events_unmatched_total", "counter",
                  "Events no active webhook was subscribed to.", double(s.unmatched));
    append_single(out, "herald_events_rejected_total", "counter",
                  "Events from a source that failed validation.", double(s.rejected));
    append_metric(out, "herald_deliveries_total", "counter",
                  "Deliveries (one event to one webhook) that ended, by outcome.");
    append_sample(out, "herald_deliveries_total", R"(outcome="delivered")", double(s.delivered));
    append_sample(out, "herald_deliveries_total", R"(outcome="failed")", double(s.failed));
    append_single(out, "herald_requests_total", "counter",
                  "Requests sent to receivers, retries and manual sends included.",
                  double(s.attempts));
    append_single(out, "herald_queue_depth", "gauge",
                  "Events accepted and waiting in the intake queue.", double(s.queued));
    append_single(out, "herald_deliveries_pending", "gauge",
                  "Deliveries not finished: waiting, retrying or in flight.", double(s.pending));
    append_single(out, "herald_deliveries_retrying", "gauge", "Deliveries waiting for a retry.",
                  double(s.retrying));
    append_single(out, "herald_requests_in_flight", "gauge", "Requests on the wire now.",
                  double(s.in_flight));
    append_single(out, "herald_open_circuits", "gauge",
                  "Webhooks whose circuit breaker is open or half-open.", double(s.open_circuits));
    append_single(out, "herald_deliveries_parked", "gauge",
                  "Deliveries waiting outside the pending budget (failing, stalled or behind).",
                  double(s.parked));
    append_single(out, "herald_deliveries_shed_total", "counter",
                  "Deliveries logged as failed at once because max_parked was full.",
                  double(s.shed));
    append_single(out, "herald_deliveries_stored", "gauge",
                  "Pending deliveries kept only in the durable store (a backlog beyond memory).",
                  double(s.stored));
    append_metric(out, "herald_webhooks", "gauge", "Registered webhooks by state.");
    append_sample(out, "herald_webhooks", R"(state="active")", double(active));
    append_sample(out, "herald_webhooks", R"(state="inactive")", double(inactive));
}

/// The attempts a metrics_log counted: by outcome, and the duration histogram.
inline void append_attempt_metrics(std::string& out, log_metrics const& m) {
    append_metric(out, "herald_attempts_total", "counter", "Logged attempts by outcome.");
    for (auto o : {outcome::delivered, outcome::retrying, outcome::failed})
        append_sample(out, "herald_attempts_total", "outcome=\"" + std::string(to_string(o)) + "\"",
                      double(m.attempts[static_cast<std::size_t>(o)]));
    append_metric(out, "herald_attempt_duration_seconds", "histogram",
                  "How long each logged attempt took, connection and response included.");
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < m.buckets.size(); ++i) {
        cumulative += m.buckets[i];
        std::string le = "+Inf";
        if (i < log_metrics::bounds.size()) {
            char buf[32];
            std::snprintf(buf, sizeof buf, "%g", log_metrics::bounds[i]);
            le = buf;
        }
        append_sample(out, "herald_attempt_duration_seconds_bucket", "le=\"" + le + "\"",
                      double(cumulative));
    }
    append_sample(out, "herald_attempt_duration_seconds_sum", "", m.seconds);
    append_sample(out, "herald_attempt_duration_seconds_count", "", double(m.count));
}

/// The writes a write_counting_log failed: a log that cannot write (disk full, read-only
/// file) does not stop deliveries, it shows here.
inline void append_log_write_metrics(std::string& out, log_write_stats const& w) {
    append_single(out, "herald_log_write_failures_total", "counter",
                  "Writes of the log that failed (disk full, read-only file, ...).",
                  double(w.failures));
    append_single(out, "herald_log_entries_lost_total", "counter",
                  "Logged attempts that could not be written to the log.", double(w.entries_lost));
}

/**
 * The body of GET /metrics: the dispatcher's `stats`, its webhooks (`active` and `inactive`
 * of them) and what `log` counts, if anything.
 */
template <class Log>
std::string metrics_text(dispatcher_stats const& s, std::size_t active, std::size_t inactive,
                         Log const& log) {
    std::string out;
    out.reserve(4096);
    append_dispatcher_metrics(out, s, active, inactive);
    if constexpr (metrics_log<Log>)
        append_attempt_metrics(out, log.metrics());
    if constexpr (write_counting_log<Log>)
        append_log_write_metrics(out, log.write_stats());
    return out;
}

/// metrics_text of a dispatcher.
template <class Dispatcher>
std::string metrics_text(Dispatcher& d) {
    auto const s = d.stats();
    std::size_t active = 0, inactive = 0;
    for (auto const& w : d.store().list())
        ++(w.active ? active : inactive);
    return metrics_text(s, active, inactive, std::as_const(d.log()));
}

} // namespace herald::admin::detail

#endif
