#ifndef HERALD_ENGINE_REQUEST_HPP
#define HERALD_ENGINE_REQUEST_HPP

#include <herald/delivery.hpp>
#include <herald/log.hpp>
#include <herald/signature.hpp>
#include <herald/time.hpp>
#include <herald/transport.hpp>
#include <herald/version.hpp>
#include <herald/webhook.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

/**
 * What one attempt sends and what its log entry starts as, without I/O: the request for a
 * delivery to the webhook as it is now, signed at `now` (Standard Webhooks headers), and the
 * entry that the attempt's result then completes.
 */
namespace herald::detail {

inline void add_header(std::vector<http_header>& h, char const* name, std::string value) {
    h.push_back(http_header{name, std::move(value)});
}

/// The request of `d`'s next attempt to `hook`, signed at `now`; `delivery_text` is
/// `d.id_string()` (the attempt's log entry has it already).
inline http_request make_request(delivery const& d, webhook const& hook, time_point now,
                                 std::string_view delivery_text) {
    auto const& ev = *d.event;
    http_request req;
    req.url = hook.url;
    req.content_type = ev.body.content_type;
    req.body = std::shared_ptr<std::string const>(d.event, &ev.body.body);
    req.headers.reserve(7 + ev.body.headers.size() + hook.headers.size());
    auto const timestamp = to_unix_seconds(now);
    // One field per name: a webhook's own User-Agent replaces herald's, here and so in the log.
    auto const hook_has = [&](std::string_view name) {
        for (auto const& h : hook.headers)
            if (iequals(h.name, name))
                return true;
        return false;
    };
    if (!hook_has("User-Agent"))
        add_header(req.headers, "User-Agent", user_agent);
    add_header(req.headers, "webhook-id", ev.event.id);
    add_header(req.headers, "webhook-timestamp", std::to_string(timestamp));
    if (!hook.secrets.empty())
        add_header(req.headers, "webhook-signature",
                   sign(ev.event.id, timestamp, ev.body.body, hook.secrets));
    add_header(req.headers, "herald-event", std::string(to_string(ev.event.type)));
    add_header(req.headers, "herald-delivery", std::string(delivery_text));
    add_header(req.headers, "herald-attempt", std::to_string(d.attempts + 1));
    for (auto const& h : ev.body.headers)
        if (!hook_has(h.name)) // the webhook's header of that name replaces the serializer's
            req.headers.push_back(h);
    for (auto const& h : hook.headers)
        req.headers.push_back(h);
    req.connect_timeout = hook.connect_timeout.value_or(duration{0});
    req.timeout = hook.timeout.value_or(duration{0});
    req.verify_tls = hook.verify_tls;
    req.ca_file = hook.ca_file;
    req.allow_private = hook.allow_private;
    return req;
}

/// The log entry of `d`'s next attempt to `hook_ref`, started at `started`; failed until
/// told. Its text shares the event's and the snapshot's (no copies but the delivery's id).
inline log_entry make_entry(delivery const& d, std::shared_ptr<webhook const> const& hook_ref,
                            time_point started) {
    auto const& hook = *hook_ref;
    log_entry e;
    auto const& ev = d.event->event;
    // d.id_string(), on the stack rather than in a string of its own
    constexpr auto prefix = delivery_id_prefix.size();
    char id[prefix + 26];
    delivery_id_prefix.copy(id, prefix);
    d.id.write_digits(id + prefix);
    e.delivery_id = std::string_view(id, sizeof id);
    e.event_id = shared_text::alias(d.event, ev.id);
    e.webhook = hook.id;
    e.webhook_name = shared_text::alias(hook_ref, hook.name);
    e.url = shared_text::alias(hook_ref, hook.url);
    e.type = ev.type;
    e.object_id = shared_text::alias(d.event, ev.object_id);
    e.attempt = d.attempts + 1;
    e.started_at = started;
    e.result = outcome::failed;
    return e;
}

/// Moves what was sent and what came back into the attempt's log entry.
inline void take_exchange(log_entry& entry, http_request& req, send_result& r, time_point now) {
    entry.request_headers = headers_as_sent(req);
    entry.request_body = std::move(req.body);
    entry.elapsed = r.elapsed.count() > 0
                        ? r.elapsed
                        : std::chrono::duration_cast<duration>(now - entry.started_at);
    entry.status = r.status;
    entry.response_excerpt = std::move(r.excerpt);
    if (!r.note.empty())
        entry.warning += (entry.warning.empty() ? "" : "; ") + r.note;
}

} // namespace herald::detail

#endif
