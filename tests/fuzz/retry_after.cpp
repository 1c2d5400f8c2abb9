// A receiver's Retry-After, and HTTP-dates: parse_retry_after at several clock values (the
// epoch, now-ish, the clock's ends), parse_http_date_seconds and parse_http_date, and the
// retry policy's decision on a 429 or 503 carrying the value. Properties: nothing crashes or
// overflows (UBSan), a delay is never negative nor longer than ten years, a decision's next
// attempt is no later than max_retry_after, and a date that parses prints back as IMF-fixdate
// that parses to the same second.
#include "fuzz.hpp"

#include <herald/engine/retry.hpp>
#include <herald/time.hpp>

#include <chrono>
#include <string>

namespace herald_fuzz_retry_after {

inline std::string imf_fixdate(std::chrono::sys_seconds t) {
    using namespace std::chrono;
    static constexpr char const* days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static constexpr char const* months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                             "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    auto const d = floor<std::chrono::days>(t);
    year_month_day const ymd{d};
    hh_mm_ss const hms{t - d};
    char buf[64];
    std::snprintf(buf, sizeof buf, "%s, %02u %s %04d %02d:%02d:%02d GMT",
                  days[weekday{d}.c_encoding()], static_cast<unsigned>(ymd.day()),
                  months[static_cast<unsigned>(ymd.month()) - 1], static_cast<int>(ymd.year()),
                  static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                  static_cast<int>(hms.seconds().count()));
    return buf;
}

} // namespace herald_fuzz_retry_after

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    using namespace herald_fuzz_retry_after;
    using namespace std::chrono;
    auto const text = herald_fuzz::text_of(data, size);
    std::string const shown(text);
    herald::time_point const nows[] = {
        herald::time_point{},
        herald::time_point{seconds(1'750'000'000)},
        herald::time_point::min() + hours(48),
        herald::time_point::max() - hours(48),
    };
    for (auto const now : nows) {
        auto const d = herald::parse_retry_after(text, now);
        if (d)
            HERALD_FUZZ_CHECK("retry_after", d->count() >= 0 && *d <= hours(24 * 3660), shown);
    }
    if (auto const at = herald::parse_http_date_seconds(text)) {
        auto const year = static_cast<int>(year_month_day{floor<days>(*at)}.year());
        // four digits: IMF-fixdate holds the year in four characters
        if (year >= 0 && year <= 9999) {
            auto const again = herald::parse_http_date_seconds(imf_fixdate(*at));
            HERALD_FUZZ_CHECK("retry_after", again && *again == *at, shown);
        }
    }
    (void)herald::parse_http_date(text);

    herald::retry_policy const policy;
    for (unsigned status : {429u, 503u}) {
        herald::send_result r;
        r.status = status;
        r.retry_after = shown;
        auto const now = nows[1];
        auto const v = policy.decide(r, 1, now, 0.5);
        if (v.next)
            HERALD_FUZZ_CHECK("retry_after", *v.next >= now, shown);
        if (v.used_retry_after)
            HERALD_FUZZ_CHECK("retry_after", *v.next - now <= policy.params().max_retry_after,
                              shown);
    }
    return 0;
}
