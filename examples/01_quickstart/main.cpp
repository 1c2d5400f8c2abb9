// Quickstart: register a webhook, publish one event, drain, print the delivery log.
//
//   ./01_quickstart http://127.0.0.1:8080/hooks
#include <herald/dispatcher.hpp>

#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json/serialize.hpp>

#include <iostream>

int main(int argc, char** argv) {
    using namespace std::chrono_literals;
    std::string const url = argc > 1 ? argv[1] : "http://127.0.0.1:8080/hooks";

    boost::asio::io_context io;
    // The SSRF guard refuses loopback and private addresses by default; this example's
    // receiver runs on 127.0.0.1, so it allows exactly that address (for the table and the
    // transport at once).
    herald::address_policy local;
    local.allow.push_back(herald::cidr::parse("127.0.0.1/32").value());
    herald::dispatcher dispatcher(io.get_executor(), {.addresses = local});

    // The webhooks table: validated, so a bad URL or an empty name is refused here.
    auto hook = dispatcher.store().create({
        .name = "inventory sync",
        .url = url,
        .events = {herald::event_type::create, herald::event_type::update},
    });
    if (!hook) {
        std::cerr << "cannot create webhook: " << hook.error().what() << "\n";
        return 2;
    }

    dispatcher.async_run(boost::asio::detached);

    // The application says an object was created; herald POSTs it to every subscriber.
    auto event = herald::object_event::created(
        "42", {{"hostname", "db-1"}, {"ip", "10.0.0.7"}, {"rack", "B3"}});
    event.object_type = "server";
    auto id = dispatcher.publish(std::move(event));
    if (!id) {
        std::cerr << "publish refused: " << id.error().what() << "\n";
        return 1;
    }

    // Drain: deliver what is due within 10 s, then stop.
    dispatcher.async_stop(10s, [](std::exception_ptr, herald::stop_report report) {
        std::cerr << (report.drained ? "drained\n" : "stopped with undelivered work\n");
    });
    io.run();

    // "View Logs": every attempt, newest first.
    for (auto const& entry : dispatcher.log().query({}).entries)
        std::cout << boost::json::serialize(herald::to_json(entry)) << "\n";
    return dispatcher.stats().delivered == 1 ? 0 : 1;
}
