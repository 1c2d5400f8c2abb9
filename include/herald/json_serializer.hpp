#ifndef HERALD_JSON_SERIALIZER_HPP
#define HERALD_JSON_SERIALIZER_HPP

#include <herald/concepts.hpp>
#include <herald/delivery.hpp>
#include <herald/event.hpp>

#include <boost/json/serialize.hpp>
#include <boost/json/serializer.hpp>
#include <boost/json/string.hpp>

#include <algorithm>
#include <string>

namespace herald {

/**
 * herald's own envelope (the default serializer):
 * ```json
 * {"id": "evt_...", "type": "update", "timestamp": "2026-11-27T15:52:54.123Z",
 *  "object_id": "42", "object_type": "server", "actor": "alice",
 *  "object": {...}, "changes": {"hostname": {"old": "a", "new": "b"}}}
 * ```
 * `object` is the created object, the updated object, or the object as it was before
 * deletion. `changes` appears on updates only. Absent optional fields are omitted.
 * Stateless and thread-safe.
 */
namespace detail {
/// Serializes `v` straight into the end of `out` (no temporary string).
template <class Json>
void append_json(std::string& out, Json const& v) {
    boost::json::serializer sr;
    sr.reset(&v);
    while (!sr.done()) {
        std::size_t const used = out.size();
        if (out.capacity() - used < 256)
            out.reserve(std::max(out.capacity() * 2, used + 512));
        out.resize(out.capacity());
        auto const written = sr.read(out.data() + used, out.size() - used);
        out.resize(used + written.size());
    }
}
} // namespace detail

struct json_serializer {
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
            detail::append_json(out, *obj);
        }
        if (e.type == event_type::update && e.changes) {
            out += ",\"changes\":";
            detail::append_json(out, *e.changes);
        }
        out += '}';
        return p;
    }
};

static_assert(serializer<json_serializer>);

} // namespace herald

#endif
