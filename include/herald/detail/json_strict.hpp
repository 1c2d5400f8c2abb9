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
                                ec.message());
    return p.handler().st.release();
}

} // namespace herald::detail

#endif
