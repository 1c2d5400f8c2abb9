#ifndef HERALD_SIGNATURE_HPP
#define HERALD_SIGNATURE_HPP

#include <herald/detail/base64.hpp>
#include <herald/error.hpp>
#include <herald/time.hpp>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <ostream>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>

namespace herald {

/**
 * A Standard Webhooks signing secret: `whsec_` and the base64 of 24 to 64 random bytes. The
 * HMAC key is the decoded bytes.
 *
 * It never prints itself: `to_string` and `operator<<` show `whsec_…` with the key masked;
 * `reveal` gives the full text, for the one place that must show it to its owner.
 */
class secret {
public:
    static constexpr std::size_t min_bytes = 24;
    static constexpr std::size_t max_bytes = 64;

    /// Reads `whsec_<base64>`; the problem names `field` and never repeats the secret.
    static result<secret> parse(std::string_view text, std::string field = "secret") {
        auto bad = [&](char const* why) {
            return make_problem(error::invalid_field, field, why);
        };
        if (text.substr(0, 6) != "whsec_")
            return bad("must start with whsec_ followed by base64");
        auto key = detail::base64_decode(text.substr(6));
        if (!key)
            return bad("is not valid base64 after whsec_");
        if (key->size() < min_bytes || key->size() > max_bytes)
            return bad("must encode 24 to 64 bytes");
        return secret(std::move(*key));
    }

    /// A new random secret of `bytes` bytes (24 to 64) from OpenSSL's generator.
    static secret generate(std::size_t bytes = 32) {
        bytes = std::clamp(bytes, min_bytes, max_bytes);
        std::string key(bytes, '\0');
        if (RAND_bytes(reinterpret_cast<unsigned char*>(key.data()), static_cast<int>(bytes)) != 1)
            throw boost::system::system_error(make_error_code(error::invalid_field),
                                              "no randomness available for a secret");
        return secret(std::move(key));
    }

    /// The full `whsec_...` text. Show it to its owner once; never log it.
    std::string reveal() const { return "whsec_" + detail::base64_encode(key_); }

    /// Masked: `whsec_abcd…` (the first four characters, enough to tell secrets apart).
    std::string to_string() const { return reveal().substr(0, 10) + "…"; }

    std::string_view key() const { return key_; }

    friend bool operator==(secret const& a, secret const& b) {
        return a.key_.size() == b.key_.size() &&
               CRYPTO_memcmp(a.key_.data(), b.key_.data(), a.key_.size()) == 0;
    }
    friend std::ostream& operator<<(std::ostream& os, secret const& s) {
        return os << s.to_string();
    }

private:
    explicit secret(std::string key)
        : key_(std::move(key)) {}
    std::string key_;
};

namespace detail {

struct mac_ctx_free {
    void operator()(EVP_MAC_CTX* c) const noexcept { EVP_MAC_CTX_free(c); }
};
using mac_ctx_ptr = std::unique_ptr<EVP_MAC_CTX, mac_ctx_free>;

struct string_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
        return std::hash<std::string_view>{}(s);
    }
};

/**
 * An HMAC-SHA256 context keyed with `key`, from this thread's cache: keying (fetching the
 * digest, hashing the padded key) happens once per secret and thread, not once per request.
 * The cache is bounded; when full it starts over.
 */
inline EVP_MAC_CTX* keyed_hmac(std::string_view key) {
    static EVP_MAC* const mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    thread_local std::unordered_map<std::string, mac_ctx_ptr, string_hash, std::equal_to<>> cache;
    if (auto it = cache.find(key); it != cache.end())
        return it->second.get();
    mac_ctx_ptr ctx(mac ? EVP_MAC_CTX_new(mac) : nullptr);
    if (!ctx)
        throw std::runtime_error("OpenSSL HMAC is unavailable");
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", digest, 0),
                           OSSL_PARAM_construct_end()};
    if (EVP_MAC_init(ctx.get(), reinterpret_cast<unsigned char const*>(key.data()), key.size(),
                     params) != 1)
        throw std::runtime_error("OpenSSL HMAC failed");
    if (cache.size() >= 4096)
        cache.clear();
    return cache.emplace(std::string(key), std::move(ctx)).first->second.get();
}

/// HMAC-SHA256 over `id.timestamp.body` without copying the body; the raw 32 bytes.
inline std::array<unsigned char, 32> hmac_sha256(std::string_view key, std::string_view id,
                                                 std::string_view ts, std::string_view body) {
    EVP_MAC_CTX* ctx = keyed_hmac(key);
    std::array<unsigned char, 32> out{};
    std::size_t out_len = 0;
    auto feed = [&](std::string_view s) {
        return EVP_MAC_update(ctx, reinterpret_cast<unsigned char const*>(s.data()), s.size()) == 1;
    };
    // Init without a key restarts from the keyed state.
    bool const ok = EVP_MAC_init(ctx, nullptr, 0, nullptr) == 1 && feed(id) && feed(".") &&
                    feed(ts) && feed(".") && feed(body) &&
                    EVP_MAC_final(ctx, out.data(), &out_len, out.size()) == 1 &&
                    out_len == out.size();
    if (!ok)
        throw std::runtime_error("OpenSSL HMAC failed");
    return out;
}

} // namespace detail

/**
 * The `webhook-signature` header value: `v1,<base64 HMAC-SHA256>` for each secret, separated
 * by spaces, over `{id}.{timestamp}.{body}` (Standard Webhooks). Several secrets let a
 * receiver move from an old secret to a new one without a gap.
 */
inline std::string sign(std::string_view id, std::int64_t timestamp, std::string_view body,
                        std::span<secret const> secrets) {
    char digits[24];
    auto const [end, ec] = std::to_chars(digits, digits + sizeof digits, timestamp);
    (void)ec;
    std::string_view const ts(digits, static_cast<std::size_t>(end - digits));
    std::string out;
    out.reserve(secrets.size() * 48);
    for (auto const& s : secrets) {
        if (!out.empty())
            out += ' ';
        out += "v1,";
        auto const mac = detail::hmac_sha256(s.key(), id, ts, body);
        detail::base64_append(
            out, std::string_view(reinterpret_cast<char const*>(mac.data()), mac.size()));
    }
    return out;
}

/** Why a request failed verification. */
enum class verify_error {
    no_signature = 1, ///< webhook-id, webhook-timestamp or webhook-signature is missing
    malformed_header, ///< a header is there but cannot be read
    stale_timestamp,  ///< older than the tolerance
    future_timestamp, ///< further in the future than the tolerance
    bad_signature,    ///< no v1 signature matches any secret
};

inline std::string_view to_string(verify_error e) {
    switch (e) {
    case verify_error::no_signature:
        return "no signature";
    case verify_error::malformed_header:
        return "malformed header";
    case verify_error::stale_timestamp:
        return "stale timestamp";
    case verify_error::future_timestamp:
        return "future timestamp";
    case verify_error::bad_signature:
        return "bad signature";
    }
    return "unknown";
}

/** The verdict on one request: the reason and a sentence naming the header at fault. */
struct verify_failure {
    verify_error reason{};
    std::string message{};
};

/** The three headers a Standard Webhooks request carries. */
struct signed_headers {
    std::string_view id{};        ///< webhook-id
    std::string_view timestamp{}; ///< webhook-timestamp
    std::string_view signature{}; ///< webhook-signature
};

/**
 * Checks a request the way a receiver should: all three headers present, the timestamp
 * within `tolerance` of `now`, and at least one `v1` signature matching one of `secrets`
 * (compared in constant time). Other versions (`v1a`, ...) in the header are skipped.
 */
inline boost::system::result<void, verify_failure>
verify(signed_headers const& h, std::string_view body, std::span<secret const> secrets,
       std::chrono::seconds tolerance = std::chrono::minutes(5), time_point now = clock::now()) {
    auto fail = [](verify_error r, std::string m) {
        return verify_failure{r, std::move(m)};
    };
    if (h.id.empty())
        return fail(verify_error::no_signature, "webhook-id is missing");
    if (h.timestamp.empty())
        return fail(verify_error::no_signature, "webhook-timestamp is missing");
    if (h.signature.empty())
        return fail(verify_error::no_signature, "webhook-signature is missing");
    std::uint64_t ts = 0;
    if (!detail::parse_uint(h.timestamp, ts))
        return fail(verify_error::malformed_header, "webhook-timestamp is not Unix seconds");
    auto const age = to_unix_seconds(now) - static_cast<std::int64_t>(ts);
    if (age > tolerance.count())
        return fail(verify_error::stale_timestamp, "webhook-timestamp is " + std::to_string(age) +
                                                       " s old (tolerance " +
                                                       std::to_string(tolerance.count()) + " s)");
    if (-age > tolerance.count())
        return fail(verify_error::future_timestamp,
                    "webhook-timestamp is " + std::to_string(-age) + " s in the future");
    bool any_v1 = false;
    std::string_view rest = h.signature;
    while (!rest.empty()) {
        auto const sp = rest.find(' ');
        auto const item = rest.substr(0, sp);
        rest = sp == std::string_view::npos ? std::string_view{} : rest.substr(sp + 1);
        if (item.empty())
            continue;
        auto const comma = item.find(',');
        if (comma == std::string_view::npos)
            return fail(verify_error::malformed_header,
                        "webhook-signature entries must be version,base64");
        if (item.substr(0, comma) != "v1")
            continue;
        any_v1 = true;
        auto const given = detail::base64_decode(item.substr(comma + 1));
        if (!given)
            continue;
        for (auto const& s : secrets) {
            auto const want = detail::hmac_sha256(s.key(), h.id, h.timestamp, body);
            if (want.size() == given->size() &&
                CRYPTO_memcmp(want.data(), given->data(), want.size()) == 0)
                return {};
        }
    }
    return fail(verify_error::bad_signature, any_v1 ? "no v1 signature matches any secret"
                                                    : "webhook-signature has no v1 signature");
}

/**
 * verify() over a header container read with `h[name]`, such as Beast's `http::fields`.
 */
template <class Headers>
requires requires(Headers const& h) {
    { h["webhook-id"] } -> std::convertible_to<std::string_view>;
}
boost::system::result<void, verify_failure>
verify(Headers const& h, std::string_view body, std::span<secret const> secrets,
       std::chrono::seconds tolerance = std::chrono::minutes(5), time_point now = clock::now()) {
    std::string_view const id = h["webhook-id"];
    std::string_view const ts = h["webhook-timestamp"];
    std::string_view const sig = h["webhook-signature"];
    return verify(signed_headers{id, ts, sig}, body, secrets, tolerance, now);
}

[[noreturn]] inline void throw_exception_from_error(verify_failure const& f,
                                                    boost::source_location const& loc) {
    boost::throw_exception(std::runtime_error(f.message), loc);
}

} // namespace herald

#endif
