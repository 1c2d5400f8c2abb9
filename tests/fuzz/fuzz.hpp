// What every fuzz harness shares. A harness is one file with the libFuzzer entry point
// `extern "C" int LLVMFuzzerTestOneInput(uint8_t const*, size_t)`; the regression runner
// (runner.cpp) includes them all in one translation unit, renaming each entry point, so every
// harness keeps its helpers in a namespace of its own.
#ifndef HERALD_TESTS_FUZZ_HPP
#define HERALD_TESTS_FUZZ_HPP

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace herald_fuzz {

inline std::string_view text_of(std::uint8_t const* data, std::size_t size) {
    return {reinterpret_cast<char const*>(data), size};
}

/// A property of herald's code that the input broke: abort, so libFuzzer (and the runner)
/// report it as a crash with the input that caused it.
[[noreturn]] inline void broken(char const* harness, char const* what, std::string_view detail) {
    std::fprintf(stderr, "fuzz %s: %s\n  %.*s\n", harness, what, static_cast<int>(detail.size()),
                 detail.data());
    std::abort();
}

} // namespace herald_fuzz

#define HERALD_FUZZ_CHECK(harness, cond, detail)                                                   \
    do {                                                                                           \
        if (!(cond))                                                                               \
            ::herald_fuzz::broken(harness, "property does not hold: " #cond, detail);              \
    } while (false)

#endif
