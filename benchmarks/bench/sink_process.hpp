// herald-bench: the herald-bench-sink process a run starts, and stops, unless --url is given.

#ifndef HERALD_BENCH_SINK_PROCESS_HPP
#define HERALD_BENCH_SINK_PROCESS_HPP

#include "common.hpp"

#include <signal.h>
#include <spawn.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

extern char** environ;

namespace herald_bench {

/// herald-bench-sink, started with posix_spawn and stopped (SIGTERM, then SIGKILL) on scope exit.
/// It also dies with this process (--parent), so an interrupted benchmark leaves nothing behind.
class sink_process {
public:
    sink_process(std::string const& path, unsigned threads) {
        try {
            start(path, threads);
        } catch (...) {
            stop(); // no half-started sink, no temporary directory left behind
            throw;
        }
    }
    sink_process(sink_process const&) = delete;
    sink_process& operator=(sink_process const&) = delete;
    ~sink_process() { stop(); }

    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/"; }
    pid_t pid() const { return pid_; }

private:
    void start(std::string const& path, unsigned threads) {
        char dir_template[] = "/tmp/herald-bench-XXXXXX";
        if (!::mkdtemp(dir_template))
            throw std::runtime_error(std::string("mkdtemp: ") + std::strerror(errno));
        dir_ = dir_template;
        std::string const port_file = dir_ + "/port";
        std::vector<std::string> args{path,
                                      "--port",
                                      "0",
                                      "--port-file",
                                      port_file,
                                      "--threads",
                                      std::to_string(threads),
                                      "--parent",
                                      std::to_string(::getpid())};
        std::vector<char*> argv;
        for (auto& a : args)
            argv.push_back(a.data());
        argv.push_back(nullptr);
        if (int rc = ::posix_spawn(&pid_, path.c_str(), nullptr, nullptr, argv.data(), environ))
            throw std::runtime_error("cannot start " + path + ": " + std::strerror(rc));
        auto const until = steady::now() + 10s;
        for (;;) {
            {
                std::ifstream in(port_file);
                unsigned p = 0;
                if (in >> p && p != 0) {
                    port_ = static_cast<unsigned short>(p);
                    break;
                }
            }
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = 0;
                throw std::runtime_error(path + " exited before listening");
            }
            if (steady::now() > until)
                throw std::runtime_error(path + " did not write its port file within 10 s");
            std::this_thread::sleep_for(10ms);
        }
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }

    void stop() {
        std::error_code ec;
        if (!dir_.empty())
            std::filesystem::remove_all(dir_, ec);
        if (pid_ <= 0)
            return;
        ::kill(pid_, SIGTERM);
        auto const until = steady::now() + 3s;
        int status = 0;
        while (::waitpid(pid_, &status, WNOHANG) == 0) {
            if (steady::now() > until) {
                ::kill(pid_, SIGKILL);
                ::waitpid(pid_, &status, 0);
                break;
            }
            std::this_thread::sleep_for(5ms);
        }
        pid_ = 0;
    }

    pid_t pid_ = 0;
    unsigned short port_ = 0;
    std::string dir_;
};

inline std::string default_sink_path() {
    std::error_code ec;
    auto const self = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (ec)
        return "herald-bench-sink";
    return (self.parent_path() / "herald-bench-sink").string();
}

} // namespace herald_bench

#endif
