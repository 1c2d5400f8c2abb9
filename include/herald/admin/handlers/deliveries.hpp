#ifndef HERALD_ADMIN_HANDLERS_DELIVERIES_HPP
#define HERALD_ADMIN_HANDLERS_DELIVERIES_HPP

#include <herald/admin/detail/http.hpp>
#include <herald/admin/handlers/logs.hpp>
#include <herald/admin/message.hpp>
#include <herald/delivery.hpp>
#include <herald/log.hpp>
#include <herald/webhook.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/string.hpp>

#include <algorithm>
#include <memory>
#include <optional>
#include <string>

namespace herald::admin::detail {

/// The request a logged attempt sent, to send again: the same event id and body; herald's
/// headers are made afresh, the webhook's own are its current ones. Nothing when the log did
/// not keep the body.
inline std::optional<prepared_event> resend_of(log_entry const& e, webhook const& hook) {
    if (!e.request_body)
        return std::nullopt;
    object_event ev;
    ev.id = e.event_id;
    ev.type = e.type;
    ev.object_id = e.object_id;
    payload body;
    body.body = *e.request_body;
    for (auto const& h : e.request_headers) {
        if (boost::beast::iequals(h.name, "content-type")) {
            body.content_type = h.value;
            continue;
        }
        bool const from_webhook =
            std::any_of(hook.headers.begin(), hook.headers.end(), [&](http_header const& mine) {
                return boost::beast::iequals(mine.name, h.name);
            });
        // What is left is what the serializer added (CloudEvents' ce-* headers).
        if (!is_reserved_header(h.name) && !boost::beast::iequals(h.name, "user-agent") &&
            !from_webhook)
            body.headers.push_back(h);
    }
    return prepared_event{std::move(ev), std::move(body)};
}

/** POST /api/deliveries/{id}/redeliver: sends a logged attempt's request once more. */
template <class Dispatcher>
class delivery_handlers {
public:
    explicit delivery_handlers(Dispatcher& d)
        : d_(d) {}

    /// `id` is a log entry's seq or a delivery id (its newest attempt).
    boost::asio::awaitable<response> redeliver(request const&, std::string id) {
        auto e = find_entry(d_.log(), id);
        if (!e)
            co_return problem_response(404, "not_found", "id",
                                       "no log entry or delivery '" + id +
                                           "' (or it is no longer kept)");
        auto hook = d_.store().get(e->webhook);
        if (!hook)
            co_return problem_response(404, "not_found", "webhook_id",
                                       "webhook " + std::to_string(e->webhook) +
                                           " of this delivery no longer exists");
        auto again = resend_of(*e, *hook);
        if (!again)
            co_return problem_response(409, "no_body", "id",
                                       "the log does not keep the request body of '" + id +
                                           "', so it cannot be sent again");
        auto prepared = std::make_shared<prepared_event const>(std::move(*again));
        auto r = co_await d_.async_deliver_once(hook->id, std::move(prepared),
                                                boost::asio::use_awaitable);
        if (!r)
            co_return problem_response(r.error());
        co_return json_response(200, entry_json(*r, log_detail::full));
    }

private:
    Dispatcher& d_;
};

} // namespace herald::admin::detail

#endif
