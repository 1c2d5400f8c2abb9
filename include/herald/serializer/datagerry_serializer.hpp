#ifndef HERALD_DATAGERRY_SERIALIZER_HPP
#define HERALD_DATAGERRY_SERIALIZER_HPP

#include <herald/concepts.hpp>
#include <herald/delivery.hpp>
#include <herald/detail/json_writer.hpp>
#include <herald/event.hpp>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <string_view>

namespace herald {

/**
 * The body DATAGERRY's webhooks send (`build_payload`):
 * ```json
 * {"event_time": {"$date": 1733230000000}, "operation": "UPDATE",
 *  "object_before": {...}, "object_after": {...},
 *  "changes": {"old": [{"name": "hostname", "value": "a"}],
 *              "new": [{"name": "hostname", "value": "b"}]}}
 * ```
 * - `event_time` is the event's time in MongoDB extended JSON; `operation` is CREATE, UPDATE
 *   or DELETE; `object_before` / `object_after` are the event's `before` / `after` or null
 *   (create has no before, delete no after).
 * - `changes` is null except on updates. A `changes` the application gave that is not herald's
 *   `{"field": {"old", "new"}}` shape (DATAGERRY's own `{old: [...], new: [...]}`, its state
 *   toggle's `{"state": false}`) is passed through as is. Otherwise, when both objects carry
 *   DATAGERRY's `fields` array (`[{"name", "value"}]`), it lists the entries that differ, as
 *   DATAGERRY does; else the event's top-level changes are written as
 *   `{"name": field, "value": old|new}` entries.
 * - The objects are written as they are: the body is DATAGERRY's document only when they are
 *   DATAGERRY objects (`CmdbObject.to_json()`, with `fields` and `{"$date": ms}` dates).
 * Numbers are written as `detail::format_json_double` says (`2.4`, `12.0`, `1e+16`).
 * Stateless and thread-safe.
 */
struct datagerry_serializer {
    /// The name a webhook's `format` gives it.
    static constexpr std::string_view format = "datagerry";

    payload serialize(object_event const& e) const {
        boost::json::object body;
        body["event_time"] = boost::json::object{{"$date", to_unix_ms(e.occurred_at)}};
        body["operation"] = operation(e.type);
        body["object_before"] = e.type == event_type::create || !e.before
                                    ? boost::json::value(nullptr)
                                    : boost::json::value(*e.before);
        body["object_after"] = e.type == event_type::remove || !e.after
                                   ? boost::json::value(nullptr)
                                   : boost::json::value(*e.after);
        body["changes"] = e.type == event_type::update ? changes(e) : boost::json::value(nullptr);
        return payload{detail::serialize_json(body), "application/json", {}};
    }

    static char const* operation(event_type t) {
        switch (t) {
        case event_type::create:
            return "CREATE";
        case event_type::update:
            return "UPDATE";
        case event_type::remove:
            return "DELETE";
        }
        return "UNKNOWN";
    }

private:
    static boost::json::array const* fields_of(std::optional<boost::json::object> const& o) {
        if (!o)
            return nullptr;
        auto const* f = o->if_contains("fields");
        return f ? f->if_array() : nullptr;
    }

    static boost::json::value const* find_field(boost::json::array const& fields,
                                                boost::json::value const& name) {
        for (auto const& f : fields)
            if (auto const* fo = f.if_object())
                if (auto const* n = fo->if_contains("name"); n && *n == name)
                    return &f;
        return nullptr;
    }

    // Every entry is `{"old": ..., "new": ...}`, as derive_changes writes them.
    static bool herald_shaped(boost::json::object const& changes) {
        for (auto const& kv : changes) {
            auto const* c = kv.value().if_object();
            if (!c || !c->contains("old") || !c->contains("new"))
                return false;
        }
        return true;
    }

    static boost::json::value changes(object_event const& e) {
        boost::json::array old_values, new_values;
        auto const* given = e.changes ? &*e.changes : nullptr;
        // Only herald's own shape can be mapped: anything else is the application's to say
        // (DATAGERRY's `{old: [...], new: [...]}`, its state toggle's `{"state": false}`).
        if (given && !herald_shaped(*given))
            return *given;
        auto const* bf = fields_of(e.before);
        auto const* af = fields_of(e.after);
        if (bf && af) {
            for (auto const& f : *bf) {
                auto const* fo = f.if_object();
                auto const* name = fo ? fo->if_contains("name") : nullptr;
                if (!name)
                    continue;
                auto const* other = find_field(*af, *name);
                if (!other || *other != f)
                    old_values.push_back(f);
            }
            for (auto const& f : *af) {
                auto const* fo = f.if_object();
                auto const* name = fo ? fo->if_contains("name") : nullptr;
                if (!name)
                    continue;
                auto const* other = find_field(*bf, *name);
                if (!other || *other != f)
                    new_values.push_back(f);
            }
        } else if (given) {
            for (auto const& kv : *given) {
                auto const* c = kv.value().if_object();
                auto pick = [&](char const* side) {
                    auto const* v = c ? c->if_contains(side) : nullptr;
                    return v ? *v : boost::json::value(nullptr);
                };
                old_values.push_back(
                    boost::json::object{{"name", kv.key()}, {"value", pick("old")}});
                new_values.push_back(
                    boost::json::object{{"name", kv.key()}, {"value", pick("new")}});
            }
        }
        return boost::json::object{{"old", std::move(old_values)}, {"new", std::move(new_values)}};
    }
};

static_assert(serializer<datagerry_serializer>);

} // namespace herald

#endif
