// Values and builders the unit tests share: the fixed "now", a log entry as the dispatcher
// records one, the sequence numbers of a log page.
#ifndef HERALD_TEST_FIXTURES_HPP
#define HERALD_TEST_FIXTURES_HPP

#include <herald/log.hpp>
#include <herald/time.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace herald::test {

/// 2026-11-27T15:52:54.123Z, 1795794774123 ms since the epoch: the tests' fixed "now".
inline time_point fixed_time() {
    using namespace std::chrono;
    return time_point{sys_days{2026y / November / 27}} + 15h + 52min + 54s + 123ms;
}

/**
 * A log entry as the dispatcher records an attempt: ids and object id from `tag`, webhook
 * `hook` named "Hook <hook>" at https://example.com/<hook>, 42 ms; delivered answers 204, the
 * rest 503 with an error, and retrying ones are due again 5 s after `started_at`.
 */
inline log_entry make_log_entry(webhook_id hook, event_type type, outcome result,
                                time_point started_at, std::string const& tag = "") {
    using namespace std::chrono_literals;
    log_entry e;
    e.delivery_id = "dlv_" + tag;
    e.event_id = "evt_" + tag;
    e.webhook = hook;
    e.webhook_name = "Hook " + std::to_string(hook);
    e.url = "https://example.com/" + std::to_string(hook);
    e.type = type;
    e.object_id = tag;
    e.attempt = 1;
    e.started_at = started_at;
    e.elapsed = 42ms;
    e.status = result == outcome::delivered ? 204 : 503;
    e.result = result;
    if (result != outcome::delivered)
        e.error = "receiver answered HTTP 503";
    if (result == outcome::retrying)
        e.next_attempt_at = started_at + 5s;
    e.response_excerpt = "excerpt " + tag;
    return e;
}

/// The sequence numbers of a page's entries, in the page's order.
inline std::vector<std::uint64_t> seqs(log_page const& page) {
    std::vector<std::uint64_t> out;
    for (auto const& e : page.entries)
        out.push_back(e.seq);
    return out;
}

} // namespace herald::test

#endif
