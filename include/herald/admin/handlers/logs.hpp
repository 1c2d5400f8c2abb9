#ifndef HERALD_ADMIN_HANDLERS_LOGS_HPP
#define HERALD_ADMIN_HANDLERS_LOGS_HPP

#include <herald/admin/detail/http.hpp>
#include <herald/admin/detail/util.hpp>
#include <herald/admin/message.hpp>
#include <herald/delivery.hpp>
#include <herald/log.hpp>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/url/params_view.hpp>
#include <boost/url/parse.hpp>

#include <optional>
#include <string>

namespace herald::admin::detail {

/// The log entry for the API: its id (the sink's seq) first, then to_json's keys; in full,
/// with `request` (headers as sent, credentials masked, and the body).
inline boost::json::object entry_json(log_entry const& e, log_detail detail) {
    boost::json::object o;
    o["id"] = e.seq;
    for (auto& kv : to_json(e, detail))
        o[kv.key()] = std::move(kv.value());
    return o;
}

/// The log query of GET /api/logs' parameters, or the problem with one of them.
inline result<log_query> parse_log_query(boost::urls::params_view params) {
    log_query q;
    auto bad = [](std::string const& field, std::string const& why) {
        return make_problem(error::invalid_field, field, why);
    };
    for (auto const& param : params) {
        std::string const key = param.key;
        std::string const value = param.value;
        if (key == "webhook") {
            auto id = parse_id(value);
            if (!id)
                return bad(key, "'" + value + "' is not a webhook id");
            q.webhook = *id;
        } else if (key == "event") {
            auto t = parse_event_type(value, "event");
            if (!t)
                return t.error();
            q.type = *t;
        } else if (key == "outcome") {
            auto o = parse_outcome(value, "outcome");
            if (!o)
                return o.error();
            q.result = *o;
        } else if (key == "since" || key == "until") {
            auto t = parse_time(value, key);
            if (!t)
                return t.error();
            (key == "since" ? q.since : q.until) = *t;
        } else if (key == "limit") {
            auto n = parse_id(value);
            if (!n || *n == 0 || *n > log_query::max_limit)
                return bad(key,
                           "must be a number from 1 to " + std::to_string(log_query::max_limit));
            q.limit = *n;
        } else if (key == "cursor") {
            auto c = parse_id(value);
            if (!c)
                return bad(key, "'" + value + "' is not a cursor (the `next` of a page)");
            q.before_seq = *c;
        } else if (key == "delivery") {
            if (!value.starts_with(delivery_id_prefix))
                return bad(key, "'" + value + "' is not a delivery id (dlv_…)");
            q.delivery_id = value;
        } else {
            return bad(key, "is not a known parameter (webhook, event, outcome, delivery, since, "
                            "until, limit, cursor)");
        }
    }
    return q;
}

/// The log entry `id` names: a seq, or a delivery id (`dlv_…`, its newest attempt).
template <class Log>
std::optional<log_entry> find_entry(Log const& log, std::string const& id) {
    if (auto seq = parse_id(id)) {
        log_query q;
        q.before_seq = *seq + 1;
        q.limit = 1;
        auto page = log.query(q);
        if (!page.entries.empty() && page.entries.front().seq == *seq)
            return std::move(page.entries.front());
        return std::nullopt;
    }
    if (!id.starts_with(delivery_id_prefix))
        return std::nullopt;
    log_query q;
    q.delivery_id = id;
    q.limit = 1;
    auto page = log.query(q);
    if (page.entries.empty())
        return std::nullopt;
    if (page.entries.front().delivery_id == id)
        return std::move(page.entries.front());
    // A sink that does not know the delivery_id filter: look through it a page at a time.
    q.delivery_id.reset();
    q.limit = log_query::max_limit;
    for (;;) {
        page = log.query(q);
        for (auto& e : page.entries)
            if (e.delivery_id == id)
                return std::move(e);
        if (!page.next)
            return std::nullopt;
        q.before_seq = page.next;
    }
}

/** GET /api/logs (a page of summaries, filtered) and GET /api/logs/{id} (one in full). */
template <class Log>
class log_handlers {
public:
    explicit log_handlers(Log const& log)
        : log_(log) {}

    response list(request const& req) const {
        auto const target = boost::urls::parse_origin_form(req.target()); // the router's
        auto q = parse_log_query(target ? target->params() : boost::urls::params_view());
        if (!q)
            return problem_response(q.error());
        auto page = log_.query(*q);
        boost::json::array entries;
        for (auto const& e : page.entries)
            entries.push_back(entry_json(e, log_detail::summary));
        boost::json::object o;
        o["entries"] = std::move(entries);
        if (page.next)
            o["next"] = std::to_string(*page.next);
        else
            o["next"] = nullptr;
        return json_response(200, o);
    }

    response get(request const&, std::string const& id) const {
        auto e = find_entry(log_, id);
        if (!e)
            return problem_response(404, "not_found", "id",
                                    "no log entry '" + id + "' (or it is no longer kept)");
        return json_response(200, entry_json(*e, log_detail::full));
    }

private:
    Log const& log_;
};

} // namespace herald::admin::detail

#endif
