#ifndef HERALD_TEE_LOG_HPP
#define HERALD_TEE_LOG_HPP

#include <herald/concepts.hpp>
#include <herald/log.hpp>
#include <herald/log/jsonl_log.hpp>
#include <herald/log/log_failures.hpp>
#include <herald/log/memory_log.hpp>
#include <herald/log/metered_log.hpp>

#include <cstdint>
#include <utility>

namespace herald {

/// Where a tee_log copies each attempt: `copy.record(entry)` (what it returns is not used).
/// jsonl_log is one; so is any log_sink.
template <class C>
concept log_copy = requires(C& c, log_entry e) {
    c.record(std::move(e));
};

/**
 * A log sink decorator that records every attempt in `Log`, which numbers it and answers the
 * queries, and also hands a copy to `Copy`: by default JSON lines to a stream (herald-relay
 * keeps its attempts in memory or in SQLite and prints each on standard output). The copy
 * carries the seq that `Log` assigned.
 *
 * What `Log` offers besides record and query is offered too, forwarded to it: `metrics()`
 * (metrics_log), `activity(id, now)` and `forget(id)` (activity_log), `write_stats()`
 * (write_counting_log; the copy's failures are added when it counts them too), and `flush()`
 * flushes whichever of the two has one.
 *
 * Thread safety: as `Log` and `Copy` (both jsonl_log and memory_log take any thread).
 */
template <class Log = memory_log, class Copy = jsonl_log>
class tee_log {
    static_assert(log_sink<Log>, "Log must model herald::log_sink");
    static_assert(log_copy<Copy>, "Copy must have record(log_entry)");

public:
    explicit tee_log(Log inner = Log(), Copy copy = Copy())
        : inner_(std::move(inner))
        , copy_(std::move(copy)) {}

    /// Records the attempt in the wrapped log, then hands the copy its entry with that seq.
    /// @return the seq the wrapped log assigned.
    std::uint64_t record(log_entry e) {
        auto const seq = inner_.record(e);
        e.seq = seq;
        copy_.record(std::move(e));
        return seq;
    }

    log_page query(log_query const& q) const { return inner_.query(q); }

    /// Flushes the wrapped log and the copy, each when it has a flush (jsonl_log, sqlite_log).
    void flush() requires(
        requires(Log& l) { l.flush(); } || requires(Copy & c) { c.flush(); }) {
        if constexpr (requires { inner_.flush(); })
            inner_.flush();
        if constexpr (requires { copy_.flush(); })
            copy_.flush();
    }

    log_metrics metrics() const requires metrics_log<Log> { return inner_.metrics(); }

    webhook_activity activity(webhook_id id,
                              time_point now = clock::now()) const requires activity_log<Log> {
        return inner_.activity(id, now);
    }

    void forget(webhook_id id) requires activity_log<Log> { inner_.forget(id); }

    /// The failed writes of the wrapped log and of the copy, summed (those that count them).
    log_write_stats write_stats() const
        requires(write_counting_log<Log> || write_counting_log<Copy>) {
        log_write_stats out;
        auto add = [&](log_write_stats const& s) {
            out.failures += s.failures;
            out.entries_lost += s.entries_lost;
            if (!s.last_error.empty())
                out.last_error = s.last_error;
        };
        if constexpr (write_counting_log<Log>)
            add(inner_.write_stats());
        if constexpr (write_counting_log<Copy>)
            add(copy_.write_stats());
        return out;
    }

    Log& inner() noexcept { return inner_; }
    Log const& inner() const noexcept { return inner_; }
    Copy& copy() noexcept { return copy_; }
    Copy const& copy() const noexcept { return copy_; }

private:
    Log inner_;
    Copy copy_;
};

static_assert(log_sink<tee_log<>>);
static_assert(log_sink<tee_log<metered_log<>>> && metrics_log<tee_log<metered_log<>>> &&
              activity_log<tee_log<metered_log<>>> && write_counting_log<tee_log<metered_log<>>>);

} // namespace herald

#endif
