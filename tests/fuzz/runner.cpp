// The fuzz corpora as regression tests: every harness, built into this one program with its
// entry point renamed, runs every file given (or found under a directory given). A broken
// property aborts with the harness's message; the runner first names the harness and file.
//
//   herald_fuzz_runner [--harness NAME] PATH...
#include <algorithm>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include <unistd.h>

#define LLVMFuzzerTestOneInput herald_fuzz_run_event
#include "event.cpp"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput herald_fuzz_run_webhook
#include "webhook.cpp"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput herald_fuzz_run_url
#include "url.cpp"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput herald_fuzz_run_http_response
#include "http_response.cpp"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput herald_fuzz_run_retry_after
#include "retry_after.cpp"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput herald_fuzz_run_signature
#include "signature.cpp"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput herald_fuzz_run_admin
#include "admin.cpp"
#undef LLVMFuzzerTestOneInput

namespace {

struct harness {
    char const* name;
    int (*run)(std::uint8_t const*, std::size_t);
};

constexpr harness harnesses[] = {
    {"event", herald_fuzz_run_event},
    {"webhook", herald_fuzz_run_webhook},
    {"url", herald_fuzz_run_url},
    {"http_response", herald_fuzz_run_http_response},
    {"retry_after", herald_fuzz_run_retry_after},
    {"signature", herald_fuzz_run_signature},
    {"admin", herald_fuzz_run_admin},
};

// What runs now, named when it aborts (a broken property, or a sanitizer with abort_on_error).
char current[4096];

void name_current(int) {
    constexpr char const lead[] = "herald_fuzz_runner: crashed on ";
    (void)!write(STDERR_FILENO, lead, sizeof lead - 1);
    (void)!write(STDERR_FILENO, current, std::strlen(current));
    (void)!write(STDERR_FILENO, "\n", 1);
    std::signal(SIGABRT, SIG_DFL);
    std::raise(SIGABRT);
}

void collect(std::filesystem::path const& p, std::vector<std::filesystem::path>& out) {
    if (std::filesystem::is_directory(p)) {
        for (auto const& e : std::filesystem::recursive_directory_iterator(p))
            if (e.is_regular_file())
                out.push_back(e.path());
    } else {
        out.push_back(p);
    }
}

} // namespace

int main(int argc, char** argv) {
    std::string_view only;
    std::vector<std::filesystem::path> files;
    for (int i = 1; i < argc; ++i) {
        std::string_view const arg = argv[i];
        if (arg == "--harness" && i + 1 < argc) {
            only = argv[++i];
        } else if (arg.starts_with("-")) {
            std::fprintf(stderr, "usage: %s [--harness NAME] PATH...\n", argv[0]);
            return 2;
        } else {
            if (!std::filesystem::exists(arg)) {
                std::fprintf(stderr, "herald_fuzz_runner: no such file or directory: %s\n",
                             argv[i]);
                return 2;
            }
            collect(arg, files);
        }
    }
    if (files.empty()) {
        std::fprintf(stderr, "herald_fuzz_runner: no inputs\n");
        return 2;
    }
    std::sort(files.begin(), files.end());
    std::signal(SIGABRT, name_current);
    std::signal(SIGSEGV, name_current);
    std::size_t runs = 0;
    for (auto const& h : harnesses) {
        if (!only.empty() && only != h.name)
            continue;
        for (auto const& f : files) {
            std::ifstream in(f, std::ios::binary);
            std::string const bytes{std::istreambuf_iterator<char>(in),
                                    std::istreambuf_iterator<char>()};
            std::snprintf(current, sizeof current, "harness %s, input %s", h.name, f.c_str());
            h.run(reinterpret_cast<std::uint8_t const*>(bytes.data()), bytes.size());
            ++runs;
        }
    }
    if (runs == 0) {
        std::fprintf(stderr, "herald_fuzz_runner: no harness named '%.*s'\n",
                     static_cast<int>(only.size()), only.data());
        return 2;
    }
    std::printf("%zu runs: %zu files through %zu harnesses, all passed\n", runs, files.size(),
                runs / files.size());
    return 0;
}
