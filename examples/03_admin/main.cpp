// The admin page and REST API mounted in an application: a dispatcher whose log is metered
// (for /metrics and the webhooks table), and herald::admin::server beside it on 127.0.0.1.
//
//   03_admin [PORT]      then open the printed address; SIGINT or SIGTERM stops it
#include <herald/admin/server.hpp>
#include <herald/dispatcher.hpp>
#include <herald/log/metered_log.hpp>

#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <cstdlib>
#include <iostream>

int main(int argc, char** argv) {
    using namespace std::chrono_literals;
    using app_dispatcher = herald::basic_dispatcher<herald::memory_store, herald::channel_source,
                                                    herald::json_serializer, herald::http_transport,
                                                    herald::metered_log<herald::memory_log>>;

    boost::asio::io_context io;
    app_dispatcher dispatcher(io.get_executor());

    // A real application reads its token from its configuration or a secret store.
    auto const token = herald::secret::generate(24).reveal().substr(6);
    std::uint16_t const port = argc > 1 ? static_cast<std::uint16_t>(std::atoi(argv[1])) : 0;
    herald::admin::server admin(io.get_executor(), dispatcher, {.port = port, .token = token});

    dispatcher.async_run(boost::asio::detached);
    admin.async_run(boost::asio::detached);
    std::cout << "open " << admin.url() << "#token=" << token << "\n" << std::flush;

    boost::asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](boost::system::error_code, int) {
        admin.stop();
        dispatcher.async_stop(10s, [](std::exception_ptr, herald::stop_report) {});
    });
    io.run();
}
