#ifndef HERALD_DETAIL_JSON_WRITER_HPP
#define HERALD_DETAIL_JSON_WRITER_HPP

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serializer.hpp>
#include <boost/json/string.hpp>
#include <boost/json/string_view.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <string>
#include <system_error>

namespace herald::detail {

/// The longest number `append_json_number` writes: `-1.2345678901234567e-308` is 24.
inline constexpr std::size_t json_number_max = 32;

/**
 * Writes `d` as Python's `repr` (and `json.dumps`) does: the fewest digits that read back as
 * exactly `d`, in fixed notation from 1e-4 up to 1e16 with a `.0` on integral values (`2.4`,
 * `12.0`, `-0.0`), otherwise in exponent notation (`1e+16`, `5e-324`). Not JavaScript's
 * `12`, so that the value reads back as a double, not an integer. NaN and infinities have no
 * JSON spelling: `null`, as JavaScript writes them. Boost.JSON 1.81 writes `2.4E0` and
 * `Infinity`.
 * @return one past the last character written (at most `json_number_max` of them).
 */
inline char* format_json_double(double d, char* out) {
    if (!std::isfinite(d)) {
        std::memcpy(out, "null", 4);
        return out + 4;
    }
    // Shortest round-trip digits, as "-d.ddde+XX": Python's exponent form exactly.
    char sci[json_number_max];
    auto const r = std::to_chars(sci, sci + sizeof sci, d, std::chars_format::scientific);
    char const* p = sci;
    char const* const end = r.ptr;
    char const* const e_pos = std::find(p, end, 'e');
    int exp = 0;
    std::from_chars(e_pos + (e_pos[1] == '+' ? 2 : 1), end, exp);
    if (exp < -4 || exp >= 16)
        return std::copy(p, end, out);
    if (*p == '-')
        *out++ = *p++;
    // the significant digits without the point
    char digits[20];
    std::size_t n = 0;
    for (; p != e_pos; ++p)
        if (*p != '.')
            digits[n++] = *p;
    if (exp < 0) {
        *out++ = '0';
        *out++ = '.';
        for (int i = -1; i > exp; --i)
            *out++ = '0';
        return std::copy(digits, digits + n, out);
    }
    auto const whole = static_cast<std::size_t>(exp) + 1;
    for (std::size_t i = 0; i < whole; ++i)
        *out++ = i < n ? digits[i] : '0';
    *out++ = '.';
    if (n <= whole)
        *out++ = '0';
    else
        out = std::copy(digits + whole, digits + n, out);
    return out;
}

/// Appends `d` as `format_json_double` writes it.
inline void append_json_double(std::string& out, double d) {
    char buf[json_number_max];
    out.append(buf, format_json_double(d, buf));
}

/// Whether a double occurs anywhere in `v`.
inline bool contains_double(boost::json::value const& v) {
    switch (v.kind()) {
    case boost::json::kind::double_:
        return true;
    case boost::json::kind::array:
        for (auto const& e : v.get_array())
            if (contains_double(e))
                return true;
        return false;
    case boost::json::kind::object:
        for (auto const& kv : v.get_object())
            if (contains_double(kv.value()))
                return true;
        return false;
    default:
        return false;
    }
}

inline bool contains_double(boost::json::object const& o) {
    for (auto const& kv : o)
        if (contains_double(kv.value()))
            return true;
    return false;
}

inline bool contains_double(boost::json::array const& a) {
    for (auto const& e : a)
        if (contains_double(e))
            return true;
    return false;
}

/// Runs Boost.JSON's serializer, already reset, straight into the end of `out`.
inline void drain_serializer(boost::json::serializer& sr, std::string& out) {
    while (!sr.done()) {
        std::size_t const used = out.size();
        if (out.capacity() - used < 256)
            out.reserve(std::max(out.capacity() * 2, used + 512));
        out.resize(out.capacity());
        auto const written = sr.read(out.data() + used, out.size() - used);
        out.resize(used + written.size());
    }
}

/**
 * A JSON writer that differs from Boost.JSON's only in its doubles (`format_json_double`):
 * strings are escaped by Boost.JSON's serializer, integers written as they are.
 */
class json_writer {
public:
    explicit json_writer(std::string& out)
        : out_(out) {}

    void write(boost::json::value const& v) {
        switch (v.kind()) {
        case boost::json::kind::null:
            out_ += "null";
            break;
        case boost::json::kind::bool_:
            out_ += v.get_bool() ? "true" : "false";
            break;
        case boost::json::kind::int64:
            integer(v.get_int64());
            break;
        case boost::json::kind::uint64:
            integer(v.get_uint64());
            break;
        case boost::json::kind::double_:
            append_json_double(out_, v.get_double());
            break;
        case boost::json::kind::string:
            string(v.get_string());
            break;
        case boost::json::kind::array:
            write(v.get_array());
            break;
        case boost::json::kind::object:
            write(v.get_object());
            break;
        }
    }

    void write(boost::json::array const& a) {
        out_ += '[';
        bool first = true;
        for (auto const& e : a) {
            if (!first)
                out_ += ',';
            first = false;
            write(e);
        }
        out_ += ']';
    }

    void write(boost::json::object const& o) {
        out_ += '{';
        bool first = true;
        for (auto const& kv : o) {
            if (!first)
                out_ += ',';
            first = false;
            string(kv.key());
            out_ += ':';
            write(kv.value());
        }
        out_ += '}';
    }

private:
    template <class Int>
    void integer(Int i) {
        char buf[24];
        out_.append(buf, std::to_chars(buf, buf + sizeof buf, i).ptr);
    }

    void string(boost::json::string_view s) {
        // Most keys and values need no escape: copy those; leave the rest to Boost.JSON.
        bool plain = true;
        for (unsigned char c : s)
            if (c < 0x20 || c == '"' || c == '\\') {
                plain = false;
                break;
            }
        if (plain) {
            out_ += '"';
            out_.append(s.data(), s.size());
            out_ += '"';
            return;
        }
        sr_.reset(s);
        drain_serializer(sr_, out_);
    }

    std::string& out_;
    boost::json::serializer sr_;
};

/**
 * Appends `v` as JSON to `out`: what `boost::json::serialize` writes, except that doubles are
 * written as `format_json_double` says. A document without doubles goes through Boost.JSON's
 * serializer as it is (one scan decides), so it costs what it did.
 * Every body and line herald sends goes through here.
 */
template <class Json>
void serialize_json(Json const& v, std::string& out) {
    if (!contains_double(v)) {
        boost::json::serializer sr;
        sr.reset(&v);
        drain_serializer(sr, out);
        return;
    }
    json_writer(out).write(v);
}

/// `serialize_json` into a new string.
template <class Json>
std::string serialize_json(Json const& v) {
    std::string out;
    serialize_json(v, out);
    return out;
}

} // namespace herald::detail

#endif
