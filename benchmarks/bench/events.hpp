// herald-bench: what is sent: the events every scenario publishes, and the body they make.

#ifndef HERALD_BENCH_EVENTS_HPP
#define HERALD_BENCH_EVENTS_HPP

#include <herald/event.hpp>
#include <herald/serializer/json_serializer.hpp>

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace herald_bench {

/// The events every scenario publishes: a created object whose JSON is about `bytes` long.
struct event_factory {
    boost::json::object object{};

    explicit event_factory(std::size_t bytes) {
        object["hostname"] = "db-1.example.net";
        object["ip"] = "10.0.0.7";
        object["rack"] = "B3";
        for (std::size_t i = 0; boost::json::serialize(object).size() < bytes; ++i)
            object["field_" + std::to_string(i)] = "value-value-value-" + std::to_string(i);
    }

    /// Builds `n` events before a timed run: building an object is the application's work,
    /// not herald's (the limit and libcurl scenarios also send a body built beforehand).
    std::vector<herald::object_event> make_many(std::size_t n) const {
        std::vector<herald::object_event> out;
        out.reserve(n);
        for (std::size_t i = 0; i < n; ++i)
            out.push_back(make(i));
        return out;
    }

    herald::object_event make(std::size_t i, std::string id = {}) const {
        auto e = herald::object_event::created(std::to_string(i), object);
        e.object_type = "server";
        e.id = std::move(id);
        return e;
    }

    /// The body herald sends for one of these events: the limit and libcurl send the same.
    std::string body() const {
        auto e = make(0);
        (void)herald::prepare_event(e);
        return herald::json_serializer().serialize(e).body;
    }
};

} // namespace herald_bench

#endif
