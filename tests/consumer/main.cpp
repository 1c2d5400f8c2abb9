// Compiles and links against the installed package; checks a webhook round-trips the store,
// and that a dispatcher instantiated in another translation unit (dispatcher.cpp) runs here.
#include "dispatcher.hpp"

#include <herald/serializer/json_serializer.hpp>
#include <herald/store/memory_store.hpp>
#include <herald/version.hpp>
#ifdef HERALD_CONSUMER_SQLITE
#include <herald/sqlite/sqlite_store.hpp>

#include <cstdio>
#include <filesystem>
#include <unistd.h>
#endif

#include <boost/asio/io_context.hpp>

#include <iostream>

int main() {
    {
        boost::asio::io_context io;
        herald::dispatcher d(io.get_executor());
        auto id = d.publish(herald::object_event::created("1", {{"name", "x"}}));
        if (!id || d.formats().size() != 2 || d.stats().published != 1) {
            std::cerr << "herald-consumer: the dispatcher instantiated in dispatcher.cpp failed\n";
            return 1;
        }
    }
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
#ifdef HERALD_CONSUMER_SQLITE
    // herald::sqlite: a webhook survives closing and reopening the file.
    auto const path = (std::filesystem::temp_directory_path() /
                       ("herald-consumer-" + std::to_string(::getpid()) + ".db"))
                          .string();
    {
        auto s = herald::sqlite_store::open({.path = path});
        if (!s || !s->create({.name = "durable",
                              .url = "https://example.com/hooks",
                              .events = {herald::event_type::create}})) {
            std::cerr << "herald-consumer: sqlite_store failed\n";
            return 1;
        }
    }
    bool kept = false;
    {
        auto reopened = herald::sqlite_store::open({.path = path});
        kept = reopened && reopened->list().size() == 1;
    }
    for (auto const* suffix : {"", "-wal", "-shm"})
        std::remove((path + suffix).c_str());
    if (!kept) {
        std::cerr << "herald-consumer: sqlite_store round-trip failed\n";
        return 1;
    }
#endif
    std::cout << "herald " << herald::version << " found by find_package\n";
    return 0;
}
