// A receiver's side of Standard Webhooks: verify() of webhook-id, webhook-timestamp and
// webhook-signature values taken from the input (its first three lines; the rest is the
// body), and secret::parse of the first line. Properties, besides not crashing: a signature
// sign() made verifies; one made with another secret or over another body does not; base64
// reads back what it wrote.
#include "fuzz.hpp"

#include <herald/signature.hpp>

#include <string>
#include <vector>

namespace herald_fuzz_signature {

inline herald::time_point const now{std::chrono::seconds(1'750'000'000)};

inline std::vector<herald::secret> const& secrets() {
    static std::vector<herald::secret> const s = {
        herald::secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").value(),
        herald::secret::parse("whsec_QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODk=").value(),
    };
    return s;
}

inline std::string_view next_line(std::string_view& rest) {
    auto const nl = rest.find('\n');
    auto const line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
    return line;
}

} // namespace herald_fuzz_signature

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    using namespace herald_fuzz_signature;
    std::string_view rest = herald_fuzz::text_of(data, size);
    std::string const shown(rest);
    auto const id = next_line(rest);
    auto const ts = next_line(rest);
    auto const sig = next_line(rest);
    auto const body = rest;

    (void)herald::verify(herald::signed_headers{id, ts, sig}, body, secrets(),
                         std::chrono::minutes(5), now);
    (void)herald::verify(herald::signed_headers{id, ts, sig}, body, secrets(),
                         std::chrono::seconds(0), now);
    if (auto s = herald::secret::parse(id)) {
        auto const again = herald::secret::parse(s->reveal());
        HERALD_FUZZ_CHECK("signature", again && *again == *s, shown);
    }

    auto const decoded = herald::detail::base64_decode(sig);
    if (decoded) {
        auto const back = herald::detail::base64_decode(herald::detail::base64_encode(*decoded));
        HERALD_FUZZ_CHECK("signature", back && *back == *decoded, shown);
    }
    auto const raw = herald::detail::base64_decode(herald::detail::base64_encode(body));
    HERALD_FUZZ_CHECK("signature", raw && *raw == body, shown);

    if (id.empty())
        return 0;
    auto const at = herald::to_unix_seconds(now);
    auto const stamp = std::to_string(at);
    std::span<herald::secret const> const all(secrets());
    auto const good = herald::sign(id, at, body, all.subspan(1));
    HERALD_FUZZ_CHECK("signature",
                      herald::verify(herald::signed_headers{id, stamp, good}, body, all,
                                     std::chrono::minutes(5), now)
                          .has_value(),
                      shown);
    // the other entries of a header do not matter when one matches
    auto const rotated = "v1a,xyz " + herald::sign(id, at, body, all);
    HERALD_FUZZ_CHECK("signature",
                      herald::verify(herald::signed_headers{id, stamp, rotated}, body,
                                     all.subspan(1), std::chrono::minutes(5), now)
                          .has_value(),
                      shown);
    auto const wrong_key = herald::sign(id, at, body, all.subspan(0, 1));
    HERALD_FUZZ_CHECK("signature",
                      !herald::verify(herald::signed_headers{id, stamp, wrong_key}, body,
                                      all.subspan(1), std::chrono::minutes(5), now)
                           .has_value(),
                      shown);
    std::string const other_body = std::string(body) + "x";
    HERALD_FUZZ_CHECK("signature",
                      !herald::verify(herald::signed_headers{id, stamp, good}, other_body, all,
                                      std::chrono::minutes(5), now)
                           .has_value(),
                      shown);
    return 0;
}
