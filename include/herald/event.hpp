#ifndef HERALD_EVENT_HPP
#define HERALD_EVENT_HPP

#include <herald/detail/ids.hpp>
#include <herald/detail/json_strict.hpp>
#include <herald/error.hpp>
#include <herald/time.hpp>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace herald {

/** What happened to an object. The wire names are `create`, `update` and `delete`. */
enum class event_type : std::uint8_t { create = 0, update = 1, remove = 2 };

inline constexpr std::size_t event_type_count = 3;

/// The wire name: "create", "update" or "delete".
inline constexpr std::string_view to_string(event_type t) noexcept {
    switch (t) {
    case event_type::create:
        return "create";
    case event_type::update:
        return "update";
    case event_type::remove:
        return "delete";
    }
    return "unknown";
}

/// Reads a wire name; anything else is an error naming `field`.
inline result<event_type> parse_event_type(std::string_view s, std::string_view field = "type") {
    if (s == "create")
        return event_type::create;
    if (s == "update")
        return event_type::update;
    if (s == "delete")
        return event_type::remove;
    return make_problem(error::invalid_field, std::string(field),
                        "unknown event type '" + std::string(s) +
                            "' (expected create, update or delete)");
}

/** A set of event types, as a bit mask. */
class event_type_set {
public:
    constexpr event_type_set() = default;
    constexpr event_type_set(std::initializer_list<event_type> types) {
        for (auto t : types)
            insert(t);
    }
    static constexpr event_type_set all() {
        return {event_type::create, event_type::update, event_type::remove};
    }
    constexpr void insert(event_type t) { bits_ |= bit(t); }
    constexpr void erase(event_type t) { bits_ &= static_cast<std::uint8_t>(~bit(t)); }
    constexpr bool contains(event_type t) const { return (bits_ & bit(t)) != 0; }
    constexpr bool empty() const { return bits_ == 0; }
    constexpr std::uint8_t bits() const { return bits_; }
    friend constexpr bool operator==(event_type_set, event_type_set) = default;

private:
    static constexpr std::uint8_t bit(event_type t) {
        return static_cast<std::uint8_t>(1u << static_cast<unsigned>(t));
    }
    std::uint8_t bits_ = 0;
};

/**
 * One change to one object, as the application reports it.
 *
 * `before` is the object before the change (update, delete), `after` the object after it
 * (create, update). `changes` maps each changed top-level field to `{"old": ..., "new": ...}`;
 * when an update leaves it empty, herald derives it from `before` and `after`.
 * `id` and `occurred_at` are filled in by `publish` when left empty.
 */
struct object_event {
    std::string id{}; ///< unique, time-sortable; the `webhook-id` header
    event_type type = event_type::create;
    std::string object_id{};
    std::optional<std::string> object_type{};
    std::optional<boost::json::object> before{};
    std::optional<boost::json::object> after{};
    std::optional<boost::json::object> changes{};
    time_point occurred_at{};
    std::optional<std::string> actor{};

    static object_event created(std::string object_id, boost::json::object after) {
        object_event e;
        e.type = event_type::create;
        e.object_id = std::move(object_id);
        e.after = std::move(after);
        return e;
    }
    static object_event updated(std::string object_id, boost::json::object before,
                                boost::json::object after) {
        object_event e;
        e.type = event_type::update;
        e.object_id = std::move(object_id);
        e.before = std::move(before);
        e.after = std::move(after);
        return e;
    }
    static object_event deleted(std::string object_id, boost::json::object before) {
        object_event e;
        e.type = event_type::remove;
        e.object_id = std::move(object_id);
        e.before = std::move(before);
        return e;
    }

    /// The object the payload carries: `after` for create and update, `before` for delete.
    boost::json::object const* object() const {
        auto const& o = type == event_type::remove ? before : after;
        return o ? &*o : nullptr;
    }
};

/// A new event id: `evt_` and 26 characters that sort by time.
inline std::string make_event_id(time_point now = clock::now()) {
    return detail::id128::make(now).to_string("evt_");
}

/**
 * The top-level fields that differ between `before` and `after`, each as
 * `{"old": value, "new": value}`. A field only in `after` has `"old": null`; a field only in
 * `before` has `"new": null`. Fields are listed in `after`'s order, then removed ones.
 */
inline boost::json::object derive_changes(boost::json::object const& before,
                                          boost::json::object const& after) {
    boost::json::object out;
    auto entry = [](boost::json::value o, boost::json::value n) {
        boost::json::object c;
        c["old"] = std::move(o);
        c["new"] = std::move(n);
        return c;
    };
    for (auto const& kv : after) {
        auto const* old = before.if_contains(kv.key());
        if (!old)
            out[kv.key()] = entry(nullptr, kv.value());
        else if (*old != kv.value())
            out[kv.key()] = entry(*old, kv.value());
    }
    for (auto const& kv : before)
        if (!after.contains(kv.key()))
            out[kv.key()] = entry(kv.value(), nullptr);
    return out;
}

/**
 * Checks that an event carries what its type needs and fills in what publish owes it:
 * an id, the time, and for an update without `changes` the derived changes.
 * @return the problem naming the field, and the event unchanged, when it is not valid.
 */
inline result<void> prepare_event(object_event& e, time_point now = clock::now()) {
    auto missing = [](char const* field, char const* why) {
        return make_problem(error::invalid_field, field, why);
    };
    if (e.object_id.empty())
        return missing("object_id", "is required");
    if (e.object_id.size() > 256)
        return missing("object_id", "is longer than 256 characters");
    if (e.id.size() > 256)
        return missing("id", "is longer than 256 characters");
    // the id travels in the webhook-id header: visible ASCII only, so nothing can be injected
    for (unsigned char c : e.id)
        if (c < 0x21 || c > 0x7e)
            return missing("id", "may contain only visible ASCII characters (no spaces)");
    switch (e.type) {
    case event_type::create:
        if (!e.after)
            return missing("after", "is required for a create event (the created object)");
        break;
    case event_type::update:
        if (!e.after)
            return missing("after", "is required for an update event (the updated object)");
        break;
    case event_type::remove:
        if (!e.before)
            return missing("before", "is required for a delete event (the object before deletion)");
        break;
    default:
        return missing("type", "is not create, update or delete");
    }
    if (e.id.empty())
        e.id = make_event_id(now);
    if (e.occurred_at == time_point{})
        e.occurred_at = now;
    if (e.type == event_type::update && !e.changes && e.before)
        e.changes = derive_changes(*e.before, *e.after);
    return {};
}

/**
 * Reads an event from JSON, the relay's event lines and the admin API's body:
 * `{"type", "object_id", "object_type", "before", "after", "changes", "actor", "id"}`.
 * `type` and `object_id` (a string or an integer) are required; `before`, `after` and
 * `changes` are objects or null. Unknown keys and wrong types are errors naming the key.
 * The event is not prepared: publish checks what its type needs.
 */
inline result<object_event> parse_event(boost::json::value const& v) {
    auto bad = [](std::string field, std::string why) {
        return make_problem(error::invalid_field, std::move(field), std::move(why));
    };
    auto const* o = v.if_object();
    if (!o)
        return bad("event", "must be a JSON object");
    object_event e;
    bool has_type = false;
    for (auto const& kv : *o) {
        std::string const key(kv.key());
        auto const& val = kv.value();
        auto optional_string = [&](std::optional<std::string>& out) -> result<void> {
            if (val.is_null())
                return {};
            if (!val.is_string())
                return bad(key, "must be a string");
            out = std::string(val.get_string());
            return {};
        };
        auto optional_object = [&](std::optional<boost::json::object>& out) -> result<void> {
            if (val.is_null())
                return {};
            if (!val.is_object())
                return bad(key, "must be a JSON object or null");
            out = val.get_object();
            return {};
        };
        result<void> r;
        if (key == "type") {
            if (!val.is_string())
                return bad(key, "must be a string (create, update or delete)");
            auto t = parse_event_type(val.get_string(), "type");
            if (!t)
                return t.error();
            e.type = *t;
            has_type = true;
        } else if (key == "object_id") {
            if (val.is_string())
                e.object_id = std::string(val.get_string());
            else if (val.is_int64())
                e.object_id = std::to_string(val.get_int64());
            else if (val.is_uint64())
                e.object_id = std::to_string(val.get_uint64());
            else
                return bad(key, "must be a string or an integer");
        } else if (key == "id") {
            std::optional<std::string> id;
            r = optional_string(id);
            if (id)
                e.id = std::move(*id);
        } else if (key == "object_type") {
            r = optional_string(e.object_type);
        } else if (key == "actor") {
            r = optional_string(e.actor);
        } else if (key == "before") {
            r = optional_object(e.before);
        } else if (key == "after") {
            r = optional_object(e.after);
        } else if (key == "changes") {
            r = optional_object(e.changes);
        } else {
            // an empty key would leave the problem naming no field
            return bad(key.empty() ? "\"\"" : key, "is not a known field");
        }
        if (!r)
            return r.error();
    }
    if (!has_type)
        return bad("type", "is required (create, update or delete)");
    if (e.object_id.empty())
        return bad("object_id", "is required");
    return e;
}

/**
 * Reads an event from JSON text (a relay line, an admin API body): parse_event on the text as
 * detail::parse_json_strict reads it, so a key given twice is refused ("duplicate key 'type'")
 * instead of the last one winning. The nesting limit is 32.
 */
inline result<object_event> parse_event_json(std::string_view text) {
    auto v = detail::parse_json_strict(text, "");
    if (!v)
        return v.error();
    return parse_event(*v);
}

} // namespace herald

#endif
