// Compiles and links against the installed package; checks a webhook round-trips the store.
#include <herald/json_serializer.hpp>
#include <herald/memory_store.hpp>
#include <herald/version.hpp>

#include <iostream>

int main() {
    herald::memory_store store;
    auto hook = store.create({.name = "consumer",
                              .url = "https://example.com/hooks",
                              .events = {herald::event_type::create}});
    if (!hook || store.list().size() != 1) {
        std::cerr << "herald-consumer: store round-trip failed\n";
        return 1;
    }
    auto e = herald::object_event::created("1", {{"name", "x"}});
    if (!herald::prepare_event(e) || herald::json_serializer{}.serialize(e).body.empty())
        return 1;
    std::cout << "herald " << herald::version << " found by find_package\n";
    return 0;
}
