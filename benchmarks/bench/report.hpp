// herald-bench: what a scenario reports (its rate, a summary, named figures) and how the
// numbers are written, in the table and in JSON.

#ifndef HERALD_BENCH_REPORT_HPP
#define HERALD_BENCH_REPORT_HPP

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace herald_bench {

using value = std::variant<std::int64_t, double, std::string, bool>;

struct report {
    std::string scenario{};
    double per_second = 0;
    std::string unit{};    // "requests/s", "deliveries/s", ...
    std::string summary{}; // the table's last column
    std::vector<std::pair<std::string, value>> fields{};
    bool skipped = false;

    report& add(std::string key, value v) {
        fields.emplace_back(std::move(key), std::move(v));
        return *this;
    }
};

inline std::string json_escape(std::string_view s) {
    std::string out;
    for (char c : s) {
        switch (c) {
        case '"':
            out += "\\\"";
            break;
        case '\\':
            out += "\\\\";
            break;
        case '\n':
            out += "\\n";
            break;
        default:
            if (static_cast<unsigned char>(c) < 0x20) {
                char buf[8];
                std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
                out += buf;
            } else {
                out += c;
            }
        }
    }
    return out;
}

inline std::string json_number(double d) {
    if (!std::isfinite(d))
        return "null";
    char buf[32];
    if (std::fabs(d) >= 1000 || d == std::floor(d))
        std::snprintf(buf, sizeof buf, "%.0f", d);
    else
        std::snprintf(buf, sizeof buf, "%.4g", d);
    return buf;
}

inline std::string to_json(report const& r) {
    std::string out = "{\"scenario\":\"" + json_escape(r.scenario) +
                      "\",\"per_second\":" + json_number(std::round(r.per_second));
    if (r.skipped)
        out += ",\"skipped\":true";
    for (auto const& [k, v] : r.fields) {
        out += ",\"" + json_escape(k) + "\":";
        if (auto const* i = std::get_if<std::int64_t>(&v))
            out += std::to_string(*i);
        else if (auto const* d = std::get_if<double>(&v))
            out += json_number(*d);
        else if (auto const* s = std::get_if<std::string>(&v))
            out += "\"" + json_escape(*s) + "\"";
        else
            out += std::get<bool>(v) ? "true" : "false";
    }
    return out + "}";
}

// 1234567.8 -> "1,234,568"
inline std::string grouped(double v) {
    auto n = static_cast<long long>(std::llround(v));
    bool const negative = n < 0;
    std::string digits = std::to_string(negative ? -n : n);
    std::string out;
    for (std::size_t i = 0; i < digits.size(); ++i) {
        if (i > 0 && (digits.size() - i) % 3 == 0)
            out += ',';
        out += digits[i];
    }
    return negative ? "-" + out : out;
}

inline std::string fixed(double v, int decimals) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    return buf;
}

} // namespace herald_bench

#endif
