#ifndef HERALD_DETAIL_IDS_HPP
#define HERALD_DETAIL_IDS_HPP

#include <herald/time.hpp>

#include <atomic>
#include <cstdint>
#include <random>
#include <string>

namespace herald::detail {

/// A fast per-thread generator for jitter and the random half of ids (not for secrets).
inline std::uint64_t random_u64() {
    thread_local std::uint64_t state = [] {
        std::random_device rd;
        return (std::uint64_t{rd()} << 32) ^ rd() ^ 0x9e3779b97f4a7c15ull;
    }();
    // splitmix64
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/**
 * A 128-bit id that sorts by creation time: 48 bits of Unix milliseconds, a 16-bit sequence
 * that keeps ids made in the same millisecond in order, and 64 random bits. Written as 26
 * Crockford base-32 characters (the ULID alphabet), so string order is time order.
 */
struct id128 {
    std::uint64_t hi = 0;
    std::uint64_t lo = 0;

    friend bool operator==(id128 const&, id128 const&) = default;
    friend auto operator<=>(id128 const&, id128 const&) = default;
    explicit operator bool() const noexcept { return hi != 0 || lo != 0; }

    static id128 make(time_point now = clock::now()) {
        // hi = ms << 16 | seq, strictly increasing across all threads of the process
        static std::atomic<std::uint64_t> last{0};
        auto const want = static_cast<std::uint64_t>(to_unix_ms(now)) << 16;
        auto prev = last.load(std::memory_order_relaxed);
        std::uint64_t next;
        do {
            next = want > prev ? want : prev + 1;
        } while (!last.compare_exchange_weak(prev, next, std::memory_order_relaxed));
        return {next, random_u64()};
    }

    /// The 26 characters of the id (Crockford base 32), written to `out`.
    void write_digits(char* out) const {
        static constexpr char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
        // 128 bits as 26 five-bit digits (the first digit carries the top 3 bits)
        for (int i = 25; i >= 0; --i) {
            int const bit = (25 - i) * 5; // position of this digit's lowest bit
            std::uint64_t v;
            if (bit >= 64)
                v = hi >> (bit - 64);
            else if (bit > 59)
                v = (lo >> bit) | (hi << (64 - bit));
            else
                v = lo >> bit;
            out[i] = alphabet[v & 31];
        }
    }

    void append_to(std::string& out) const {
        char buf[26];
        write_digits(buf);
        out.append(buf, 26);
    }

    std::string to_string(char const* prefix = "") const {
        std::string s(prefix);
        append_to(s);
        return s;
    }
};

} // namespace herald::detail

#endif
