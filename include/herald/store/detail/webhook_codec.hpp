#ifndef HERALD_STORE_DETAIL_WEBHOOK_CODEC_HPP
#define HERALD_STORE_DETAIL_WEBHOOK_CODEC_HPP

// A webhook's params as the durable tables store them (the `params` column of SQLite's and
// PostgreSQL's webhooks table): JSON, with its secrets in full; and a body's headers as JSON.

#include <herald/error.hpp>
#include <herald/transport.hpp>
#include <herald/webhook.hpp>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <cstdint>
#include <exception>
#include <string>
#include <vector>

namespace herald::detail {

/// A webhook's params as stored: secrets in full (the file is the secret's home), durations in ms.
inline std::string stored_params(webhook_params const& p) {
    boost::json::object o;
    o["name"] = p.name;
    o["url"] = p.url;
    o["events"] = p.events.bits();
    o["active"] = p.active;
    if (p.connect_timeout)
        o["connect_timeout_ms"] = p.connect_timeout->count();
    if (p.timeout)
        o["timeout_ms"] = p.timeout->count();
    boost::json::array secrets;
    for (auto const& s : p.secrets)
        secrets.emplace_back(s.reveal());
    o["secrets"] = std::move(secrets);
    boost::json::array headers;
    for (auto const& h : p.headers)
        headers.emplace_back(boost::json::array{h.name, h.value});
    o["headers"] = std::move(headers);
    if (p.ca_file)
        o["ca_file"] = *p.ca_file;
    o["verify_tls"] = p.verify_tls;
    boost::json::array allow;
    for (auto const& c : p.allow_private)
        allow.emplace_back(c.to_string());
    o["allow_private"] = std::move(allow);
    // Optional keys: a file written before they existed reads as the defaults.
    if (!p.format.empty())
        o["format"] = p.format;
    if (!p.retry_schedule.empty()) {
        boost::json::array delays;
        for (auto const d : p.retry_schedule)
            delays.emplace_back(d.count());
        o["retry_schedule_ms"] = std::move(delays);
    }
    return boost::json::serialize(o);
}

/// Reads stored_params back. Not validated again: the webhook was valid when it was stored,
/// and a later, stricter policy applies when it is sent (the transport's SSRF guard).
inline result<webhook_params> load_params(std::string const& text, std::string const& field) {
    auto bad = [&](std::string why) {
        return make_problem(error::storage_failed, field, std::move(why));
    };
    boost::system::error_code ec;
    auto const v = boost::json::parse(text, ec);
    if (ec || !v.is_object())
        return bad("is not valid JSON");
    try {
        auto const& o = v.get_object();
        webhook_params p;
        p.name = std::string(o.at("name").as_string());
        p.url = std::string(o.at("url").as_string());
        auto const bits = o.at("events").to_number<unsigned>();
        for (auto t : {event_type::create, event_type::update, event_type::remove})
            if (bits & (1u << static_cast<unsigned>(t)))
                p.events.insert(t);
        p.active = o.at("active").as_bool();
        if (auto const* c = o.if_contains("connect_timeout_ms"))
            p.connect_timeout = duration(c->to_number<std::int64_t>());
        if (auto const* t = o.if_contains("timeout_ms"))
            p.timeout = duration(t->to_number<std::int64_t>());
        for (auto const& s : o.at("secrets").as_array()) {
            auto sec = secret::parse(s.as_string(), field + ".secrets");
            if (!sec)
                return sec.error();
            p.secrets.push_back(std::move(*sec));
        }
        for (auto const& h : o.at("headers").as_array()) {
            auto const& pair = h.as_array();
            p.headers.push_back(http_header{std::string(pair.at(0).as_string()),
                                            std::string(pair.at(1).as_string())});
        }
        if (auto const* ca = o.if_contains("ca_file"))
            p.ca_file = std::string(ca->as_string());
        p.verify_tls = o.at("verify_tls").as_bool();
        for (auto const& c : o.at("allow_private").as_array()) {
            auto range = cidr::parse(c.as_string(), field + ".allow_private");
            if (!range)
                return range.error();
            p.allow_private.push_back(*range);
        }
        if (auto const* f = o.if_contains("format"))
            p.format = std::string(f->as_string());
        if (auto const* r = o.if_contains("retry_schedule_ms"))
            for (auto const& d : r->as_array())
                p.retry_schedule.push_back(duration(d.to_number<std::int64_t>()));
        return p;
    } catch (std::exception const& e) {
        return bad(std::string("is missing a field or has a wrong type (") + e.what() + ")");
    }
}

/// Headers as a JSON array of [name, value] pairs, and back (unreadable text gives none).
inline std::string header_list(std::vector<http_header> const& headers) {
    boost::json::array a;
    for (auto const& h : headers)
        a.emplace_back(boost::json::array{h.name, h.value});
    return boost::json::serialize(a);
}

inline std::vector<http_header> load_header_list(std::string const& text) {
    std::vector<http_header> out;
    boost::system::error_code ec;
    auto const v = boost::json::parse(text, ec);
    if (ec || !v.is_array())
        return out;
    for (auto const& h : v.get_array()) {
        auto const* pair = h.if_array();
        if (pair && pair->size() == 2 && (*pair)[0].is_string() && (*pair)[1].is_string())
            out.push_back(http_header{std::string((*pair)[0].get_string()),
                                      std::string((*pair)[1].get_string())});
    }
    return out;
}

} // namespace herald::detail

#endif
