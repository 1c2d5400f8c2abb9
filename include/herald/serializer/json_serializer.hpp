#ifndef HERALD_JSON_SERIALIZER_HPP
#define HERALD_JSON_SERIALIZER_HPP

#include <herald/concepts.hpp>
#include <herald/delivery.hpp>
#include <herald/detail/json_writer.hpp>
#include <herald/event.hpp>

#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>

#include <string>
#include <string_view>

namespace herald {

/**
 * herald's own envelope, format `herald` (the default format of the default serializer_set):
 * ```json
 * {"id": "evt_...", "type": "update", "timestamp": "2026-11-27T15:52:54.123Z",
 *  "object_id": "42", "object_type": "server", "actor": "alice",
 *  "object": {...}, "changes": {"hostname": {"old": "a", "new": "b"}}}
 * ```
 * `object` is the created object, the updated object, or the object as it was before
 * deletion. `changes` appears on updates only. Absent optional fields are omitted.
 * Numbers are written as `detail::format_json_double` says (`2.4`, `12.0`, `1e+16`).
 * Stateless and thread-safe.
 */
struct json_serializer {
    /// The name a webhook's `format` gives it.
    static constexpr std::string_view format = "herald";

    payload serialize(object_event const& e) const {
        payload p;
        std::string& out = p.body;
        auto const* obj = e.object();
        out.reserve(192 + e.id.size() + e.object_id.size() + (obj ? obj->size() * 40 : 0));
        auto str = [&](std::string_view s) {
            out += boost::json::serialize(boost::json::string_view(s));
        };
        out += "{\"id\":";
        str(e.id);
        out += ",\"type\":";
        str(to_string(e.type));
        out += ",\"timestamp\":\"";
        out += format_rfc3339(e.occurred_at);
        out += "\",\"object_id\":";
        str(e.object_id);
        if (e.object_type) {
            out += ",\"object_type\":";
            str(*e.object_type);
        }
        if (e.actor) {
            out += ",\"actor\":";
            str(*e.actor);
        }
        if (obj) {
            out += ",\"object\":";
            detail::serialize_json(*obj, out);
        }
        if (e.type == event_type::update && e.changes) {
            out += ",\"changes\":";
            detail::serialize_json(*e.changes, out);
        }
        out += '}';
        return p;
    }
};

static_assert(serializer<json_serializer>);

} // namespace herald

#endif
