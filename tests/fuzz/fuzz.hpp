// What every fuzz harness shares. A harness is one file with the libFuzzer entry point
// `extern "C" int LLVMFuzzerTestOneInput(uint8_t const*, size_t)`; the regression runner
// (runner.cpp) includes them all in one translation unit, renaming each entry point, so every
// harness keeps its helpers in a namespace of its own.
#ifndef HERALD_TESTS_FUZZ_HPP
#define HERALD_TESTS_FUZZ_HPP

#include <boost/assert.hpp>

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

// Boost's assertions, with BOOST_ENABLE_ASSERT_HANDLER (tests/fuzz/CMakeLists.txt sets it):
// they abort as assert() does, but one. Beast 1.81's chunked parser asserts `n >= 5` when
// put() is called again on a final chunk `0\r\n\r` still waiting for its last byte; the code
// after it handles that case (the assertion is wrong: boostorg/beast#2861, fixed in Boost
// 1.86). A receiver can send that; in a Release build nothing happens.
namespace boost {
void assertion_failed_msg(char const* expr, char const* msg, char const* function, char const* file,
                          long line) {
    std::string_view const f = file;
    if (std::string_view(expr) == "n >= 5" && f.ends_with("beast/http/impl/basic_parser.ipp"))
        return;
    std::fprintf(stderr, "%s:%ld: %s: Assertion `%s' failed%s%s\n", file, line, function, expr,
                 msg ? ": " : "", msg ? msg : "");
    std::abort();
}
void assertion_failed(char const* expr, char const* function, char const* file, long line) {
    assertion_failed_msg(expr, nullptr, function, file, line);
}
} // namespace boost

#define HERALD_FUZZ_CHECK(harness, cond, detail)                                                   \
    do {                                                                                           \
        if (!(cond))                                                                               \
            ::herald_fuzz::broken(harness, "property does not hold: " #cond, detail);              \
    } while (false)

#endif
