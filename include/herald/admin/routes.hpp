#ifndef HERALD_ADMIN_ROUTES_HPP
#define HERALD_ADMIN_ROUTES_HPP

#include <herald/admin/detail/http.hpp>
#include <herald/admin/message.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/verb.hpp>

#include <algorithm>
#include <array>
#include <functional>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace herald::admin {

/// The `{name}` segments of the route a request took, by name.
class path_params {
public:
    /// The segment `{name}` stood for; empty when the route has none of that name.
    std::string_view operator[](std::string_view name) const {
        for (auto const& [key, value] : values_)
            if (key == name)
                return value;
        return {};
    }

    void add(std::string_view name, std::string_view value) {
        values_.emplace_back(std::string(name), std::string(value));
    }

private:
    std::vector<std::pair<std::string, std::string>> values_;
};

/// Answers a request the route table sent it, with the route's `{name}` segments.
using route_handler =
    std::function<boost::asio::awaitable<response>(request const&, path_params const&)>;

/// Checks a `{name}` segment: nothing when it is valid, otherwise the answer to give.
using segment_check = std::function<std::optional<response>(std::string_view)>;

/**
 * Which handler answers a request: routes are a method and a path pattern, literal segments
 * and `{name}` segments that stand for any one (`/api/webhooks/{id}/test`). The table answers
 * the rest itself: 404 when no pattern matches the path, 405 with `Allow` when one does but
 * not with that method. GET answers HEAD too (the body is dropped by the caller).
 *
 * A `{name}` may have a check (`/api/webhooks/{id}`: a webhook id is a number): a path whose
 * segments match a pattern up to one that fails its check gets the check's answer when no
 * route matches it in full, whatever the method and whatever follows (`/api/webhooks/abc/...`
 * is "not a webhook id").
 *
 * Not thread-safe while routes are added; `dispatch` from any thread after.
 */
class route_table {
public:
    /// Adds `handler` for `method` on `pattern` ("/", "/api/logs/{id}").
    route_table& add(boost::beast::http::verb method, std::string_view pattern,
                     route_handler handler) {
        auto segments = parse_pattern(pattern);
        auto it = std::find_if(resources_.begin(), resources_.end(),
                               [&](resource const& r) { return r.pattern == segments; });
        if (it == resources_.end()) {
            resources_.push_back(resource{std::move(segments), {}});
            it = std::prev(resources_.end());
        }
        it->methods.emplace_back(method, std::move(handler));
        return *this;
    }

    /// The last segment of `prefix`, a `{name}`, is checked by `fn` in every route that
    /// starts with `prefix`.
    route_table& check(std::string_view prefix, segment_check fn) {
        checks_.emplace_back(parse_pattern(prefix), std::move(fn));
        return *this;
    }

    /**
     * The answer to `req`, whose path is `path` and its segments `seg` (path_segments): the
     * handler's, or 404, 405 or a segment check's.
     */
    boost::asio::awaitable<response>
    dispatch(request const& req, std::vector<std::string> const& seg, std::string_view path) const {
        std::optional<response> refused; // the first failed segment check
        for (auto const& r : resources_) {
            path_params params;
            if (!match(r.pattern, seg, params, refused))
                continue;
            auto const m = req.method();
            for (auto const& [verb, handler] : r.methods)
                if (verb == m ||
                    (m == boost::beast::http::verb::head && verb == boost::beast::http::verb::get))
                    co_return co_await handler(req, params);
            co_return detail::method_not_allowed(allow(r));
        }
        if (refused)
            co_return std::move(*refused);
        co_return detail::problem_response(404, "not_found", "",
                                           "no route for " + std::string(path));
    }

private:
    struct segment {
        std::string text{}; ///< the literal, or the name of a `{name}`
        bool capture = false;
        bool operator==(segment const&) const = default;
    };

    struct resource {
        std::vector<segment> pattern{};
        std::vector<std::pair<boost::beast::http::verb, route_handler>> methods{};
    };

    static std::vector<segment> parse_pattern(std::string_view pattern) {
        std::vector<segment> out;
        while (!pattern.empty()) {
            if (pattern.front() == '/')
                pattern.remove_prefix(1);
            auto const end = pattern.find('/');
            auto const s = pattern.substr(0, end);
            if (s.size() >= 2 && s.front() == '{' && s.back() == '}')
                out.push_back(segment{std::string(s.substr(1, s.size() - 2)), true});
            else if (!s.empty())
                out.push_back(segment{std::string(s), false});
            pattern = end == std::string_view::npos ? std::string_view() : pattern.substr(end);
        }
        return out;
    }

    /// The check of the capture that ends `pattern[0, n)`, if any.
    segment_check const* check_for(std::vector<segment> const& pattern, std::size_t n) const {
        for (auto const& [prefix, fn] : checks_)
            if (prefix.size() == n && std::equal(prefix.begin(), prefix.end(), pattern.begin()))
                return &fn;
        return nullptr;
    }

    /// Whether `seg` is `pattern`, its captures in `params`; records in `refused` the answer of
    /// the first check that fails on a matching prefix.
    bool match(std::vector<segment> const& pattern, std::vector<std::string> const& seg,
               path_params& params, std::optional<response>& refused) const {
        for (std::size_t i = 0; i < pattern.size(); ++i) {
            if (i >= seg.size())
                return false;
            if (!pattern[i].capture) {
                if (seg[i] != pattern[i].text)
                    return false;
                continue;
            }
            if (auto const* fn = check_for(pattern, i + 1)) {
                if (auto answer = (*fn)(seg[i])) {
                    if (!refused)
                        refused = std::move(answer);
                    return false;
                }
            }
            params.add(pattern[i].text, seg[i]);
        }
        return seg.size() == pattern.size();
    }

    /// The methods of `r` in the order Allow lists them: GET, HEAD, POST, PUT, PATCH, DELETE.
    static std::string allow(resource const& r) {
        using boost::beast::http::verb;
        static constexpr std::array<verb, 6> order = {verb::get, verb::head,  verb::post,
                                                      verb::put, verb::patch, verb::delete_};
        auto has = [&](verb v) {
            for (auto const& kv : r.methods)
                if (kv.first == v || (v == verb::head && kv.first == verb::get))
                    return true;
            return false;
        };
        std::string out;
        for (auto v : order)
            if (has(v))
                out += (out.empty() ? "" : ", ") + std::string(boost::beast::http::to_string(v));
        return out;
    }

    std::vector<resource> resources_;
    std::vector<std::pair<std::vector<segment>, segment_check>> checks_;
};

namespace detail {

/// An awaitable of an answer already made, for handlers that never wait.
inline boost::asio::awaitable<response> ready(response res) {
    co_return res;
}

} // namespace detail
} // namespace herald::admin

#endif
