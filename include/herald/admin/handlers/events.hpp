#ifndef HERALD_ADMIN_HANDLERS_EVENTS_HPP
#define HERALD_ADMIN_HANDLERS_EVENTS_HPP

#include <herald/admin/detail/http.hpp>
#include <herald/admin/message.hpp>
#include <herald/concepts.hpp>
#include <herald/error.hpp>
#include <herald/event.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/json/object.hpp>

#include <string>

namespace herald::admin::detail {

/**
 * POST /api/events: publishes an event, when the dispatcher's source takes events from
 * publish (publishable_source); 501 otherwise.
 */
template <class Dispatcher>
class event_handlers {
public:
    explicit event_handlers(Dispatcher& d)
        : d_(d) {}

    boost::asio::awaitable<response> publish(request const& req) {
        if constexpr (publishable_source<typename Dispatcher::source_type>) {
            auto body = parse_body(req);
            if (!body)
                co_return problem_response(body.error());
            auto e = parse_event(*body);
            if (!e)
                co_return problem_response(e.error());
            result<std::string> id;
            if constexpr (Dispatcher::durable) {
                // The answer waits for the commit, without holding up this I/O thread (which
                // may be the dispatcher's too).
                id = co_await d_.async_publish(std::move(*e));
            } else {
                id = d_.publish(std::move(*e)); // never waits: a full queue is 503 + Retry-After
            }
            if (!id) {
                auto res = problem_response(id.error());
                if (id.error().code == error::queue_full)
                    res.set(boost::beast::http::field::retry_after, "1");
                co_return res;
            }
            boost::json::object o;
            o["id"] = *id;
            co_return json_response(202, o);
        } else {
            (void)req;
            co_return problem_response(
                501, "not_implemented", "",
                "this dispatcher's event source does not take events from publish");
        }
    }

private:
    Dispatcher& d_;
};

} // namespace herald::admin::detail

#endif
