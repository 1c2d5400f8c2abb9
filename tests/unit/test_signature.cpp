// Standard Webhooks signing and verification.
#include <herald/signature.hpp>

#include <catch2/catch.hpp>

#include <map>
#include <sstream>

// One namespace a file: the unit tests build as one translation unit (unity).
namespace herald_test_signature {

using namespace herald;

namespace {
secret spec_secret() {
    return secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").value();
}
constexpr char spec_id[] = "msg_p5jXN8AQM9LWM0D4loKWxJek";
constexpr char spec_body[] = R"({"test": 2432232314})";
constexpr std::int64_t spec_ts = 1614265330;
time_point spec_now() {
    return time_point{std::chrono::seconds(spec_ts)};
}
} // namespace

TEST_CASE("the Standard Webhooks test vector", "[signature]") {
    secret const s[] = {spec_secret()};
    CHECK(sign(spec_id, spec_ts, spec_body, s) ==
          "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

TEST_CASE("rotation: one signature per secret, either verifies", "[signature][rotation]") {
    auto const old_secret = spec_secret();
    auto const new_secret = secret::generate();
    secret const both[] = {old_secret, new_secret};
    auto const header = sign(spec_id, spec_ts, spec_body, both);
    auto const space = header.find(' ');
    REQUIRE(space != std::string::npos);
    CHECK(header.substr(0, space) == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    CHECK(header.substr(space + 1).rfind("v1,", 0) == 0);
    signed_headers const h{spec_id, "1614265330", header};
    secret const only_old[] = {old_secret};
    secret const only_new[] = {new_secret};
    CHECK(verify(h, spec_body, only_old, std::chrono::minutes(5), spec_now()).has_value());
    CHECK(verify(h, spec_body, only_new, std::chrono::minutes(5), spec_now()).has_value());
    secret const other[] = {secret::generate()};
    CHECK(verify(h, spec_body, other, std::chrono::minutes(5), spec_now()).error().reason ==
          verify_error::bad_signature);
}

TEST_CASE("verify says why a request fails", "[signature][verify]") {
    secret const s[] = {spec_secret()};
    auto const good = sign(spec_id, spec_ts, spec_body, s);
    auto reason = [&](signed_headers h, std::string_view body = spec_body,
                      time_point now = spec_now()) {
        auto r = verify(h, body, s, std::chrono::minutes(5), now);
        return r ? std::optional<verify_error>{} : std::optional{r.error().reason};
    };
    CHECK_FALSE(reason({spec_id, "1614265330", good}));
    CHECK(reason({"", "1614265330", good}) == verify_error::no_signature);
    CHECK(reason({spec_id, "", good}) == verify_error::no_signature);
    CHECK(reason({spec_id, "1614265330", ""}) == verify_error::no_signature);
    CHECK(reason({spec_id, "yesterday", good}) == verify_error::malformed_header);
    CHECK(reason({spec_id, "1614265330", "g0hM9SsE"}) == verify_error::malformed_header);
    CHECK(reason({spec_id, "1614265330", good}, R"({"test": 2432232315})") ==
          verify_error::bad_signature);
    CHECK(reason({spec_id, "1614265330", "v1a,abc"}) == verify_error::bad_signature);
    CHECK(reason({spec_id, "1614265330", "v1,!!!!"}) == verify_error::bad_signature);
    // the timestamp is part of what is signed, and must be within five minutes of now
    CHECK(reason({spec_id, "1614265331", good}) == verify_error::bad_signature);
    CHECK(reason({spec_id, "1614265330", good}, spec_body,
                 spec_now() + std::chrono::seconds(301)) == verify_error::stale_timestamp);
    CHECK(reason({spec_id, "1614265330", good}, spec_body,
                 spec_now() - std::chrono::seconds(301)) == verify_error::future_timestamp);
    CHECK_FALSE(
        reason({spec_id, "1614265330", good}, spec_body, spec_now() + std::chrono::seconds(299)));
    // other versions before a good v1 are skipped
    CHECK_FALSE(reason({spec_id, "1614265330", "v1a,xyz " + good}));
}

TEST_CASE("verify reads headers from a container", "[signature][verify]") {
    secret const s[] = {spec_secret()};
    struct fields {
        std::map<std::string, std::string, std::less<>> m;
        std::string_view operator[](std::string_view k) const {
            auto it = m.find(k);
            return it == m.end() ? std::string_view{} : std::string_view(it->second);
        }
    } h{{{"webhook-id", spec_id},
         {"webhook-timestamp", "1614265330"},
         {"webhook-signature", sign(spec_id, spec_ts, spec_body, s)}}};
    CHECK(verify(h, spec_body, s, std::chrono::minutes(5), spec_now()).has_value());
}

TEST_CASE("secrets are validated and never printed", "[signature][secret]") {
    auto const s = spec_secret();
    CHECK(s.reveal() == "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    CHECK(s.to_string() == "whsec_MfKQ…");
    std::ostringstream os;
    os << s;
    CHECK(os.str().find("9r8GKYqrTwjUPD8ILPZIo2LaLaSw") == std::string::npos);

    auto const bad = [](std::string_view text) {
        return secret::parse(text, "secrets[0]");
    };
    CHECK(bad("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").error().message.find("whsec_") !=
          std::string::npos);
    CHECK(bad("whsec_not*base64").error().message.find("base64") != std::string::npos);
    CHECK(bad("whsec_c2hvcnQ=").error().message.find("24 to 64 bytes") != std::string::npos);
    CHECK(bad("whsec_c2hvcnQ=").error().field == "secrets[0]");
    // the problem never repeats the secret it refused
    CHECK(bad("whsec_c2hvcnQ=").error().what().find("c2hvcnQ") == std::string::npos);

    auto const a = secret::generate();
    auto const b = secret::generate(64);
    CHECK(a.key().size() == 32);
    CHECK(b.key().size() == 64);
    CHECK_FALSE(a == b);
    CHECK(secret::parse(a.reveal()).value() == a);
}

TEST_CASE("base64 round-trips every length", "[signature][base64]") {
    std::string bytes;
    for (int n = 0; n < 70; ++n) {
        auto const enc = detail::base64_encode(bytes);
        CHECK(enc.size() % 4 == 0);
        CHECK(detail::base64_decode(enc) == bytes);
        bytes += static_cast<char>(n * 37);
    }
    CHECK(detail::base64_encode("foobar") == "Zm9vYmFy");
    CHECK(detail::base64_encode("fo") == "Zm8=");
    CHECK(detail::base64_decode("Zm8") == "fo");
    CHECK_FALSE(detail::base64_decode("Zm9v$mFy"));
    CHECK_FALSE(detail::base64_decode("Z"));
}

} // namespace herald_test_signature
