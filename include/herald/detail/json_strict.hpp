#ifndef HERALD_DETAIL_JSON_STRICT_HPP
#define HERALD_DETAIL_JSON_STRICT_HPP

#include <herald/error.hpp>

#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/error.hpp>
#include <boost/json/parse_options.hpp>
#include <boost/json/value.hpp>
#include <boost/json/value_stack.hpp>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace herald::detail {

/**
 * Builds a value as Boost.JSON's own parser does (a value_stack), and also refuses an object
 * that holds one key twice: Boost.JSON keeps the last one silently, so `{"url": "a", "url":
 * "b"}` would mean whatever the last reader decides.
 */
class strict_json_handler {
public:
    static constexpr std::size_t max_object_size = boost::json::object::max_size();
    static constexpr std::size_t max_array_size = boost::json::array::max_size();
    static constexpr std::size_t max_key_size = boost::json::string::max_size();
    static constexpr std::size_t max_string_size = boost::json::string::max_size();

    boost::json::value_stack st;
    std::optional<std::string> duplicate; ///< the key found twice, when that stopped the parse

    bool on_document_begin(boost::system::error_code&) { return true; }
    bool on_document_end(boost::system::error_code&) { return true; }
    bool on_object_begin(boost::system::error_code&) {
        starts_.push_back(keys_.size());
        return true;
    }
    bool on_object_end(std::size_t n, boost::system::error_code& ec) {
        auto const first = keys_.begin() + static_cast<std::ptrdiff_t>(starts_.back());
        starts_.pop_back();
        if (n > 1) {
            // Sorted, not compared pairwise: an object of 100,000 keys costs n log n.
            std::sort(first, keys_.end());
            if (auto d = std::adjacent_find(first, keys_.end()); d != keys_.end()) {
                duplicate.emplace(std::move(*d));
                ec = boost::json::make_error_code(boost::json::error::syntax);
                return false;
            }
        }
        keys_.erase(first, keys_.end());
        st.push_object(n);
        return true;
    }
    bool on_array_begin(boost::system::error_code&) { return true; }
    bool on_array_end(std::size_t n, boost::system::error_code&) {
        st.push_array(n);
        return true;
    }
    bool on_key_part(boost::json::string_view s, std::size_t, boost::system::error_code&) {
        key_.append(s.data(), s.size());
        st.push_chars(s);
        return true;
    }
    bool on_key(boost::json::string_view s, std::size_t, boost::system::error_code&) {
        key_.append(s.data(), s.size());
        keys_.push_back(std::move(key_));
        key_.clear();
        st.push_key(s);
        return true;
    }
    bool on_string_part(boost::json::string_view s, std::size_t, boost::system::error_code&) {
        st.push_chars(s);
        return true;
    }
    bool on_string(boost::json::string_view s, std::size_t, boost::system::error_code&) {
        st.push_string(s);
        return true;
    }
    bool on_number_part(boost::json::string_view, boost::system::error_code&) { return true; }
    bool on_int64(std::int64_t i, boost::json::string_view, boost::system::error_code&) {
        st.push_int64(i);
        return true;
    }
    bool on_uint64(std::uint64_t u, boost::json::string_view, boost::system::error_code&) {
        st.push_uint64(u);
        return true;
    }
    bool on_double(double d, boost::json::string_view, boost::system::error_code&) {
        st.push_double(d);
        return true;
    }
    bool on_bool(bool b, boost::system::error_code&) {
        st.push_bool(b);
        return true;
    }
    bool on_null(boost::system::error_code&) {
        st.push_null();
        return true;
    }
    bool on_comment_part(boost::json::string_view, boost::system::error_code&) { return true; }
    bool on_comment(boost::json::string_view, boost::system::error_code&) { return true; }

private:
    std::string key_;               // the key being read, when it arrives in parts
    std::vector<std::string> keys_; // the keys of every open object, innermost last
    std::vector<std::size_t> starts_;
};

/// A key as a problem quotes it: at most 64 bytes, cut on a UTF-8 boundary.
inline std::string quote_key(std::string_view key) {
    if (key.size() <= 64)
        return "'" + std::string(key) + "'";
    std::size_t n = 64;
    while (n > 0 && (static_cast<unsigned char>(key[n]) & 0xC0) == 0x80)
        --n;
    return "'" + std::string(key.substr(0, n)) + "…'";
}

/// The offset of the first byte that is not valid UTF-8 (RFC 3629), or npos.
inline std::size_t invalid_utf8_at(std::string_view s) {
    auto const* p = reinterpret_cast<unsigned char const*>(s.data());
    std::size_t i = 0;
    auto const n = s.size();
    while (i < n) {
        unsigned const c = p[i];
        std::size_t len = 0;
        unsigned lo = 0x80, hi = 0xBF; // the allowed range of the second byte
        if (c < 0x80) {
            ++i;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            lo = c == 0xE0 ? 0xA0 : 0x80; // no overlong forms
            hi = c == 0xED ? 0x9F : 0xBF; // no surrogates
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            lo = c == 0xF0 ? 0x90 : 0x80;
            hi = c == 0xF4 ? 0x8F : 0xBF; // nothing above U+10FFFF
        } else {
            return i;
        }
        if (i + len > n || p[i + 1] < lo || p[i + 1] > hi)
            return i;
        for (std::size_t k = 2; k < len; ++k)
            if ((p[i + k] & 0xC0) != 0x80)
                return i;
        i += len;
    }
    return std::string_view::npos;
}

/// Boost.JSON's error in words a user can act on: the nesting limit by its number, bad
/// UTF-8 by name (Boost.JSON says only "syntax error"), and where, as a 1-based byte number.
inline std::string describe_json_error(std::string_view text, std::size_t at,
                                       boost::system::error_code const& ec,
                                       boost::json::parse_options const& opt) {
    if (ec == boost::json::error::too_deep)
        return "nested deeper than " + std::to_string(opt.max_depth) + " levels";
    if (ec == boost::json::error::syntax) {
        auto const bad = invalid_utf8_at(text);
        // the parser stops at the character it refuses, or a few bytes into it
        if (bad != std::string_view::npos && bad <= at + 4)
            return "invalid UTF-8 at byte " + std::to_string(bad + 1);
    }
    auto what = ec.message();
    if (ec != boost::json::error::extra_data && at < text.size())
        what += " at byte " + std::to_string(at + 1);
    else if (ec != boost::json::error::extra_data)
        what += " at the end";
    else
        what += " after byte " + std::to_string(at);
    return what;
}

/**
 * Parses one JSON document as `boost::json::parse` does with `opt` (by default standard JSON,
 * valid UTF-8, nesting at most 32 deep), and also refuses an object with a key given twice.
 * @param field what the problem names (`body` for the admin API; empty for the relay's lines,
 *        which report the line number instead)
 * @return the value, or a problem: "is not valid JSON: too deep", "has duplicate key 'name'"
 */
inline result<boost::json::value> parse_json_strict(std::string_view text,
                                                    std::string const& field = "body",
                                                    boost::json::parse_options const& opt = {}) {
    boost::json::basic_parser<strict_json_handler> p(opt);
    p.handler().st.reset();
    boost::system::error_code ec;
    auto const n = p.write_some(false, text.data(), text.size(), ec);
    if (!ec && n < text.size())
        ec = boost::json::make_error_code(boost::json::error::extra_data);
    auto const prefix = field.empty() ? std::string() : std::string("has ");
    if (p.handler().duplicate)
        return make_problem(error::invalid_field, field,
                            prefix + "duplicate key " + quote_key(*p.handler().duplicate));
    if (ec)
        return make_problem(error::invalid_field, field,
                            (field.empty() ? "not valid JSON: " : "is not valid JSON: ") +
                                describe_json_error(text, n, ec, opt));
    return p.handler().st.release();
}

} // namespace herald::detail

#endif
