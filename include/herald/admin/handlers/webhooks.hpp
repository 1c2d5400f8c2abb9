#ifndef HERALD_ADMIN_HANDLERS_WEBHOOKS_HPP
#define HERALD_ADMIN_HANDLERS_WEBHOOKS_HPP

#include <herald/admin/detail/http.hpp>
#include <herald/admin/handlers/logs.hpp>
#include <herald/admin/message.hpp>
#include <herald/log.hpp>
#include <herald/log/metered_log.hpp>
#include <herald/time.hpp>
#include <herald/webhook.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <optional>
#include <string>

namespace herald::admin::detail {

/// A webhook's params as JSON with the keys parse_webhook_params reads, except the secrets
/// and headers (to_json masks those): what a PATCH is merged into.
inline boost::json::object editable_json(webhook const& w) {
    auto o = to_json(w);
    for (auto const* key :
         {"id", "created_at", "updated_at", "disabled_reason", "disabled_at", "secrets", "headers"})
        o.erase(key);
    return o;
}

/// Accepts every address when parsing: the store judges URLs with its own address policy.
inline address_policy parse_everything() {
    address_policy a;
    a.allow_all = true;
    return a;
}

inline std::string mask_header(std::string const& name, std::string const& value) {
    return is_sensitive_header(name) ? mask_header_value(value) : value;
}

/**
 * GET shows stored secrets, credential header values and URL query credentials masked, so
 * they cannot be sent back as they are. In a PUT or PATCH body, a masked value equal to a stored
 * one's mask stands for the stored value: a form can send back what it was given and add or remove
 * entries.
 */
inline void unmask(boost::json::object& body, webhook const& current) {
    // GET shows the URL with its query credentials masked (mask_url): sent back as shown, it
    // stands for the stored URL; a PATCH starts from that shown form too (editable_json).
    if (auto* url = body.if_contains("url");
        url && url->is_string() && url->get_string() == mask_url(current.url))
        *url = current.url;
    if (auto* secrets = body.if_contains("secrets"); secrets && secrets->is_array())
        for (auto& v : secrets->get_array())
            if (v.is_string())
                for (auto const& s : current.secrets)
                    if (v.get_string() == s.to_string()) {
                        v = s.reveal();
                        break;
                    }
    if (auto* headers = body.if_contains("headers"); headers && headers->is_object())
        for (auto& kv : headers->get_object())
            if (kv.value().is_string())
                for (auto const& h : current.headers)
                    if (is_sensitive_header(h.name) && boost::beast::iequals(h.name, kv.key()) &&
                        kv.value().get_string() == mask_header(h.name, h.value)) {
                        kv.value() = h.value;
                        break;
                    }
}

/// A synthetic event for the Test button: the first type the webhook subscribes to.
inline object_event test_event(webhook const& w, std::optional<event_type> type) {
    object_event e;
    e.type = type ? *type
                  : (w.events.contains(event_type::create)   ? event_type::create
                     : w.events.contains(event_type::update) ? event_type::update
                                                             : event_type::remove);
    e.object_id = "herald-test";
    e.object_type = "herald.test";
    e.actor = "herald admin";
    boost::json::object obj;
    obj["test"] = true;
    obj["message"] = "A test event sent from the herald admin page";
    obj["webhook"] = w.name;
    if (e.type == event_type::remove) {
        e.before = obj;
    } else {
        e.after = obj;
        if (e.type == event_type::update) {
            obj["test"] = false;
            e.before = std::move(obj);
        }
    }
    return e;
}

/// The `type` of a Test request's optional body ({"type": "update"}).
inline result<std::optional<event_type>> test_type(request const& req) {
    std::optional<event_type> type;
    if (req.body().find_first_not_of(" \t\r\n") == std::string::npos)
        return type;
    auto body = parse_body(req);
    if (!body)
        return body.error();
    for (auto const& kv : body->get_object()) {
        if (kv.key() != "type")
            return make_problem(error::invalid_field, std::string(kv.key()),
                                "is not a known field (only \"type\")");
        if (!kv.value().is_string())
            return make_problem(error::invalid_field, "type", "must be create, update or delete");
        auto t = parse_event_type(kv.value().get_string(), "type");
        if (!t)
            return t.error();
        type = *t;
    }
    return type;
}

/// What the webhooks table shows of a webhook's deliveries: the log's counts when it keeps
/// them (activity_log), otherwise a scan of what the log still holds of the day.
template <class Log>
boost::json::object activity_json(Log const& log, webhook_id id, time_point now) {
    webhook_activity a;
    if constexpr (activity_log<Log>) {
        a = log.activity(id, now);
    } else {
        log_query q;
        q.webhook = id;
        q.limit = 1;
        auto newest = log.query(q);
        if (!newest.entries.empty())
            a.last = std::move(newest.entries.front());
        q.since = now - a.window;
        q.limit = log_query::max_limit;
        for (auto const& e : log.query(q).entries) {
            if (e.result == outcome::delivered)
                ++a.delivered;
            else if (e.result == outcome::failed)
                ++a.failed;
        }
    }
    boost::json::object o;
    if (a.last) {
        boost::json::object last;
        last["delivery_id"] = a.last->delivery_id.view();
        last["started_at"] = format_rfc3339(a.last->started_at);
        last["status"] = a.last->status;
        last["outcome"] = to_string(a.last->result);
        last["error"] = a.last->error;
        o["last"] = std::move(last);
    } else {
        o["last"] = nullptr;
    }
    o["delivered_24h"] = a.delivered;
    o["failed_24h"] = a.failed;
    if (auto r = a.success_rate())
        o["success_rate_24h"] = *r;
    else
        o["success_rate_24h"] = nullptr;
    return o;
}

inline response no_webhook(webhook_id id) {
    return problem_response(404, "not_found", "id", "no webhook with id " + std::to_string(id));
}

/**
 * /api/webhooks and /api/webhooks/{id}: list, create, get, replace (PUT), merge-patch (PATCH),
 * delete, and POST /api/webhooks/{id}/test, over the dispatcher's store.
 */
template <class Dispatcher>
class webhook_handlers {
public:
    explicit webhook_handlers(Dispatcher& d)
        : d_(d) {}

    response list(request const&) {
        auto const now = clock::now();
        boost::json::array all;
        for (auto const& w : d_.store().list())
            all.push_back(webhook_json(w, now));
        boost::json::object o;
        o["webhooks"] = std::move(all);
        boost::json::array formats; // what a webhook's format may name, the default first
        for (auto const name : d_.formats())
            formats.emplace_back(name);
        o["formats"] = std::move(formats);
        return json_response(200, o);
    }

    response create(request const& req) {
        auto body = parse_body(req);
        if (!body)
            return problem_response(body.error());
        auto p = read_params(*body);
        if (!p)
            return problem_response(p.error());
        auto w = d_.store().create(std::move(*p));
        if (!w)
            return problem_response(w.error());
        auto res = json_response(201, webhook_json(*w, clock::now()));
        res.set(boost::beast::http::field::location, "/api/webhooks/" + std::to_string(w->id));
        return res;
    }

    response get(request const&, webhook_id id) {
        auto w = d_.store().get(id);
        if (!w)
            return no_webhook(id);
        return json_response(200, webhook_json(*w, clock::now()));
    }

    response replace(request const& req, webhook_id id) {
        auto body = parse_body(req);
        if (!body)
            return problem_response(body.error());
        if (auto current = d_.store().get(id))
            unmask(body->get_object(), *current);
        auto p = read_params(*body);
        if (!p)
            return problem_response(p.error());
        return stored(d_.store().update(id, std::move(*p)));
    }

    response patch(request const& req, webhook_id id) {
        auto body = parse_body(req);
        if (!body)
            return problem_response(body.error());
        auto current = d_.store().get(id);
        if (!current)
            return no_webhook(id);
        // JSON merge patch (RFC 7396) over the stored params: a key replaces, null resets it.
        auto merged = editable_json(*current);
        auto const& changes = body->get_object();
        for (auto const& kv : changes) {
            if (kv.value().is_null())
                merged.erase(kv.key());
            else
                merged[kv.key()] = kv.value();
        }
        unmask(merged, *current);
        auto p = read_params(merged);
        if (!p)
            return problem_response(p.error());
        // Secrets and headers are never shown in full: kept unless the patch sets them.
        if (!changes.contains("secrets"))
            p->secrets = current->secrets;
        if (!changes.contains("headers"))
            p->headers = current->headers;
        return stored(d_.store().update(id, std::move(*p)));
    }

    response remove(request const&, webhook_id id) {
        auto r = d_.store().remove(id);
        if (!r)
            return problem_response(r.error());
        if constexpr (forgetting_log<typename Dispatcher::log_type>)
            d_.log().forget(id); // its activity counts (metered_log); the log keeps its entries
        return no_content();
    }

    /// POST /api/webhooks/{id}/test: one attempt of a synthetic event, its log entry in full.
    boost::asio::awaitable<response> test(request const& req, webhook_id id) {
        auto w = d_.store().get(id);
        if (!w)
            co_return no_webhook(id);
        auto type = test_type(req);
        if (!type)
            co_return problem_response(type.error());
        auto r =
            co_await d_.async_deliver_once(id, test_event(*w, *type), boost::asio::use_awaitable);
        if (!r)
            co_return problem_response(r.error());
        co_return json_response(200, entry_json(*r, log_detail::full));
    }

private:
    /// A body's params, with a format this dispatcher offers (the store cannot tell).
    result<webhook_params> read_params(boost::json::value const& body) const {
        auto p = parse_webhook_params(body, "", parse_everything());
        if (!p)
            return p;
        if (auto f = d_.check_format(*p); !f)
            return f.error();
        return p;
    }

    /// A webhook as the API shows it: to_json and its recent activity.
    boost::json::object webhook_json(webhook const& w, time_point now) const {
        auto o = to_json(w);
        o["activity"] = activity_json(d_.log(), w.id, now);
        return o;
    }

    template <class Result>
    response stored(Result w) const {
        if (!w)
            return problem_response(w.error());
        return json_response(200, webhook_json(*w, clock::now()));
    }

    Dispatcher& d_;
};

} // namespace herald::admin::detail

#endif
