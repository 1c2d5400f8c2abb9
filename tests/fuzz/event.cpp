// herald-relay's input: lines, each read as an event (parse_event_json, as the relay does), then
// prepared as publish prepares it and serialized in both payload formats. Properties: nothing
// crashes, and every body herald would send is JSON that carries the event's object unchanged.
#include "fuzz.hpp"

#include <herald/event.hpp>
#include <herald/serializer/datagerry_serializer.hpp>
#include <herald/serializer/json_serializer.hpp>

#include <boost/json/parse.hpp>

#include <cmath>

namespace herald_fuzz_event {

// A fixed clock: the same input must take the same path.
inline herald::time_point const now{std::chrono::seconds(1'750'000'000)};

// What a receiver reads back: JSON has no spelling for infinities (`1E400` parses as one), so
// a writer sends null for them, as JavaScript does.
inline boost::json::value as_sent(boost::json::value v) {
    if (v.is_double() && !std::isfinite(v.get_double()))
        return nullptr;
    if (auto* o = v.if_object())
        for (auto& kv : *o)
            kv.value() = as_sent(std::move(kv.value()));
    if (auto* a = v.if_array())
        for (auto& x : *a)
            x = as_sent(std::move(x));
    return v;
}

// Equal, but doubles within a few units in the last place: Boost.JSON 1.81's parser, which reads
// the body back here, is not exact (`3.3333333333333334E78`, the right shortest spelling, reads
// back one ulp off); a receiver's parser is.
inline bool same(boost::json::value const& a, boost::json::value const& b) {
    if (a.is_double() && b.is_double()) {
        double lo = a.get_double(), hi = a.get_double();
        for (int i = 0; i < 4; ++i) {
            lo = std::nextafter(lo, -HUGE_VAL);
            hi = std::nextafter(hi, HUGE_VAL);
        }
        return b.get_double() >= lo && b.get_double() <= hi;
    }
    if (a.is_object() && b.is_object()) {
        auto const &x = a.get_object(), &y = b.get_object();
        if (x.size() != y.size())
            return false;
        for (auto const& kv : x) {
            auto const* other = y.if_contains(kv.key());
            if (!other || !same(kv.value(), *other))
                return false;
        }
        return true;
    }
    if (a.is_array() && b.is_array()) {
        auto const &x = a.get_array(), &y = b.get_array();
        if (x.size() != y.size())
            return false;
        for (std::size_t i = 0; i < x.size(); ++i)
            if (!same(x[i], y[i]))
                return false;
        return true;
    }
    return a == b;
}

inline void check_body(std::string const& body, herald::object_event const& e, bool has_object) {
    boost::system::error_code ec;
    auto const v = boost::json::parse(body, ec);
    HERALD_FUZZ_CHECK("event", !ec, body);
    HERALD_FUZZ_CHECK("event", v.is_object(), body);
    if (!has_object)
        return;
    auto const* obj = e.object();
    auto const* sent = v.get_object().if_contains("object");
    HERALD_FUZZ_CHECK("event", obj && sent && same(as_sent(*obj), *sent), body);
}

inline void check_line(std::string_view line) {
    // The relay's own reader: strict JSON (a key given twice is refused), then parse_event.
    auto e = herald::parse_event_json(line);
    boost::system::error_code ec;
    auto const lax = boost::json::parse(line, ec);
    if (!e) {
        HERALD_FUZZ_CHECK("event", !e.error().message.empty(), line);
        if (!ec) // JSON Boost.JSON reads: refused for a key given twice or by parse_event
            HERALD_FUZZ_CHECK("event",
                              e.error().message.starts_with("duplicate key") ||
                                  !herald::parse_event(lax).has_value(),
                              line);
        return;
    }
    // Never laxer than Boost.JSON, and the same event it reads.
    HERALD_FUZZ_CHECK("event", !ec, line);
    auto const again = herald::parse_event(lax);
    HERALD_FUZZ_CHECK("event", again && again->object_id == e->object_id && again->type == e->type,
                      line);
    if (!herald::prepare_event(*e, now))
        return;
    HERALD_FUZZ_CHECK("event", !e->id.empty() && e->occurred_at == now, line);
    check_body(herald::json_serializer{}.serialize(*e).body, *e, true);
    check_body(herald::datagerry_serializer{}.serialize(*e).body, *e, false);
}

} // namespace herald_fuzz_event

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    using namespace herald_fuzz_event;
    // line by line, as herald-relay reads its standard input
    std::string_view rest = herald_fuzz::text_of(data, size);
    while (!rest.empty()) {
        auto const nl = rest.find('\n');
        auto const line = rest.substr(0, nl);
        rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
        if (line.find_first_not_of(" \t\r") != std::string_view::npos)
            check_line(line);
    }
    return 0;
}
