#ifndef HERALD_DELIVERY_HPP
#define HERALD_DELIVERY_HPP

#include <herald/detail/ids.hpp>
#include <herald/event.hpp>
#include <herald/transport.hpp>
#include <herald/webhook.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace herald {

/** A serializer's output: the body every webhook receives for one event. */
struct payload {
    std::string body{};
    std::string content_type = "application/json";
    std::vector<http_header> headers{}; ///< extra headers the format defines (CloudEvents binary)
};

/**
 * An event with its body, built once and shared by all of its deliveries. Once serialized,
 * the event keeps its metadata (id, type, object id and type, actor, time); its JSON
 * (`before`, `after`, `changes`) is released, since the body carries it.
 */
struct prepared_event {
    object_event event{};
    payload body{};
};

using delivery_id = detail::id128;

/// What every delivery id starts with: `dlv_` and then the id's 26 characters.
inline constexpr std::string_view delivery_id_prefix = "dlv_";

/**
 * One event on its way to one webhook. Small on purpose: the event and its body are shared,
 * the webhook is shared, so a pending delivery costs a few dozen bytes.
 */
struct delivery {
    delivery_id id{};
    std::shared_ptr<prepared_event const> event{};
    std::shared_ptr<webhook const> hook{}; ///< the webhook as it was when the event matched
    std::uint32_t attempts = 0;            ///< attempts made so far
    time_point due{};                      ///< when the next attempt may start
    /// The event's place in a durable store's journal, numbered by the dispatcher (every
    /// delivery of one event has the same); 0 with a store that keeps no journal.
    std::uint64_t seq = 0;
    /// The fencing token of the claim that holds this delivery in a journal with leases
    /// (postgres_store): the journal applies later writes for it (reschedule, complete) only
    /// while the token still holds the row. 0 for a journal without leases, and for the
    /// deliveries a process enqueued itself (they are held by its own token).
    std::uint64_t lease = 0;

    webhook_id target() const { return hook->id; }
    /// `dlv_` and 26 characters; the `herald-delivery` header.
    std::string id_string() const { return id.to_string(delivery_id_prefix.data()); }
};

inline delivery_id make_delivery_id(time_point now = clock::now()) {
    return detail::id128::make(now);
}

} // namespace herald

#endif
