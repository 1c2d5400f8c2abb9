// Custom policies: a read-only webhooks table and a transport that prints instead of sending,
// written from scratch and plugged into herald::basic_dispatcher. No network: exits 0 only when
// both deliveries end delivered, so a script can run it as a check.
//
//   ./02_custom_policies
#include <herald/basic_dispatcher.hpp>

#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json/serialize.hpp>

#include <array>
#include <iostream>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace {

/**
 * Webhooks fixed at startup (say, from a configuration file): a read-only webhooks table,
 * which is all a dispatcher needs (herald::webhook_table). Nothing changes after `from`, so
 * nothing needs a lock, and it has no journal: the dispatcher's memory is the queue.
 */
class static_table {
public:
    /// Validates every webhook and numbers them from 1; the first problem names its entry.
    static herald::result<static_table> from(std::vector<herald::webhook_params> const& params) {
        static_table t;
        std::array<std::vector<std::shared_ptr<herald::webhook const>>, 3> by_type;
        for (std::size_t i = 0; i < params.size(); ++i) {
            if (auto r = herald::validate(params[i]); !r)
                return herald::problem{r.error().code,
                                       "webhooks[" + std::to_string(i) + "]." + r.error().field,
                                       r.error().message};
            auto w = std::make_shared<herald::webhook>();
            static_cast<herald::webhook_params&>(*w) = params[i];
            w->id = i + 1;
            t.hooks_.push_back(w);
            for (std::size_t type = 0; type < by_type.size(); ++type) // match is then a copy
                if (w->events.contains(herald::event_type(type)))
                    by_type[type].push_back(w);
        }
        for (std::size_t type = 0; type < by_type.size(); ++type)
            t.by_type_[type] = std::make_shared<decltype(by_type)::value_type>(by_type[type]);
        return t;
    }
    herald::webhook_list match(herald::object_event const& e) const {
        return by_type_[std::size_t(e.type)];
    }
    std::shared_ptr<herald::webhook const> get(herald::webhook_id id) const {
        return id >= 1 && id <= hooks_.size() ? hooks_[id - 1] : nullptr;
    }
    herald::result<herald::webhook> disable(herald::webhook_id, std::string) {
        return herald::make_problem(herald::error::invalid_field, "webhooks",
                                    "are read-only: they come from the configuration");
    }

private:
    std::vector<std::shared_ptr<herald::webhook const>> hooks_;
    std::array<herald::webhook_list, 3> by_type_;
};

static_assert(herald::webhook_table<static_table>);

/**
 * Prints each request as it would go on the wire and answers 202 Accepted. Nothing can fail and
 * nothing waits, so the request's timeouts and cancellation have nothing to act on.
 */
struct stdout_transport {
    boost::asio::awaitable<herald::send_result> async_send(herald::http_request req) {
        std::string_view const body = req.body ? std::string_view(*req.body) : std::string_view();
        std::cout << "POST " << req.url << "\n"
                  << "Content-Type: " << req.content_type << "\n"
                  << "Content-Length: " << body.size() << "\n";
        for (auto const& h : req.headers)
            std::cout << h.name << ": " << h.value << "\n";
        std::cout << "\n" << body << "\n\n";
        herald::send_result r;
        r.status = 202;
        co_return r;
    }
};

static_assert(herald::transport<stdout_transport>);

using custom_dispatcher =
    herald::basic_dispatcher<static_table, herald::channel_source, herald::json_serializer,
                             stdout_transport, herald::memory_log>;

} // namespace

int main() {
    using namespace std::chrono_literals;
    using herald::event_type;

    auto table = static_table::from({
        {.name = "inventory sync",
         .url = "http://inventory.example/hooks",
         .events = {event_type::create, event_type::update}},
        {.name = "audit trail",
         .url = "http://audit.example/deleted",
         .events = {event_type::remove}},
    });
    if (!table) {
        std::cerr << "bad configuration: " << table.error().what() << "\n";
        return 2;
    }

    boost::asio::io_context io;
    // Parameter order: executor, params, Store, Transport (then Log, Serializer).
    custom_dispatcher dispatcher(io.get_executor(), {},
                                 {.store = std::move(*table), .transport = stdout_transport{}});

    dispatcher.async_run(boost::asio::detached);

    auto publish = [&](herald::object_event e) {
        e.object_type = "server";
        auto id = dispatcher.publish(std::move(e));
        if (!id)
            std::cerr << "publish refused: " << id.error().what() << "\n";
        return id.has_value();
    };
    boost::json::object const server{{"hostname", "db-1"}, {"rack", "B3"}};
    if (!publish(herald::object_event::created("42", server)) ||
        !publish(herald::object_event::deleted("42", server)))
        return 1;

    dispatcher.async_stop(5s, [](std::exception_ptr, herald::stop_report report) {
        std::cerr << (report.drained ? "drained\n" : "stopped with undelivered work\n");
    });
    io.run();

    // "View Logs", newest first.
    for (auto const& entry : dispatcher.log().query({}).entries)
        std::cout << boost::json::serialize(herald::to_json(entry)) << "\n";

    auto const stats = dispatcher.stats();
    std::cerr << stats.delivered << " delivered, " << stats.failed << " failed, " << stats.pending
              << " pending\n";
    return stats.delivered == 2 && stats.pending == 0 ? 0 : 1;
}
