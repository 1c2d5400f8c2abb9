#ifndef HERALD_TEST_PROCESS_HPP
#define HERALD_TEST_PROCESS_HPP

// Runs a program as a child process with the given standard input, collecting its standard
// output, standard error and exit status. Killed when it outlives the timeout.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

extern char** environ;

namespace herald::test {

struct process_result {
    int status = -1; ///< exit status, or 128 + signal
    std::string out{};
    std::string err{};
    bool timed_out = false;
    std::chrono::system_clock::time_point signalled_at{}; ///< with sigterm_after
    double exit_seconds = 0;                              ///< from the signal to the exit
};

/// A child process with standard input, output and error on pipes (the parent's ends).
struct piped_child {
    pid_t pid = 0;
    int in = -1, out = -1, err = -1;
};

inline piped_child spawn_piped(std::vector<std::string> const& args) {
    int in[2], out[2], err[2];
    if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC))
        throw std::runtime_error("pipe failed");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    std::vector<char*> argv;
    for (auto const& a : args)
        argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    piped_child c;
    int const rc = posix_spawn(&c.pid, argv[0], &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(out[1]);
    close(err[1]);
    if (rc != 0) {
        close(in[1]);
        close(out[0]);
        close(err[0]);
        throw std::runtime_error("cannot start " + args[0]);
    }
    c.in = in[1];
    c.out = out[0];
    c.err = err[0];
    return c;
}

/**
 * Runs a program with `input` on its standard input and collects its output. With
 * `sigterm_after`, standard input stays open (the program never sees its end) and SIGTERM is
 * sent that long after the start; `signalled_at` and `exit_seconds` then say when, and how long
 * the program took to exit after it.
 */
inline process_result run_process(std::vector<std::string> const& args, std::string const& input,
                                  std::chrono::milliseconds timeout = std::chrono::seconds(60),
                                  std::optional<std::chrono::milliseconds> sigterm_after = {}) {
    auto const child = spawn_piped(args);
    signal(SIGPIPE, SIG_IGN);
    fcntl(child.in, F_SETFL, O_NONBLOCK);
    process_result r;
    std::size_t written = 0;
    int in_fd = child.in;
    auto const close_input = [&] {
        if (in_fd >= 0)
            close(in_fd);
        in_fd = -1;
    };
    if (input.empty() && !sigterm_after)
        close_input();
    auto const start = std::chrono::steady_clock::now();
    auto const deadline = start + timeout;
    std::optional<std::chrono::steady_clock::time_point> signalled;
    bool out_open = true, err_open = true;
    while (out_open || err_open) {
        auto const now = std::chrono::steady_clock::now();
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
        if (left.count() <= 0) {
            kill(child.pid, SIGKILL);
            r.timed_out = true;
            break;
        }
        if (sigterm_after && !signalled) {
            if (now - start >= *sigterm_after) {
                kill(child.pid, SIGTERM);
                signalled = now;
                r.signalled_at = std::chrono::system_clock::now();
            } else {
                left = std::min(left, std::chrono::milliseconds(20));
            }
        }
        bool const writing = in_fd >= 0 && written < input.size();
        pollfd fds[3] = {{out_open ? child.out : -1, POLLIN, 0},
                         {err_open ? child.err : -1, POLLIN, 0},
                         {writing ? in_fd : -1, POLLOUT, 0}};
        poll(fds, 3, static_cast<int>(left.count()));
        char buf[65536];
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            auto const n = read(fds[i].fd, buf, sizeof buf);
            if (n > 0)
                (i == 0 ? r.out : r.err).append(buf, static_cast<std::size_t>(n));
            else
                (i == 0 ? out_open : err_open) = false;
        }
        if (writing && (fds[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
            auto const n = write(in_fd, input.data() + written, input.size() - written);
            if (n > 0)
                written += static_cast<std::size_t>(n);
            if (n < 0 || (written == input.size() && !sigterm_after))
                close_input();
        }
    }
    close_input();
    close(child.out);
    close(child.err);
    int st = 0;
    waitpid(child.pid, &st, 0);
    if (signalled)
        r.exit_seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - *signalled).count();
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return r;
}

/// A relay started in the background: stdin from a file, stdout discarded, stderr to a file.
struct background_relay {
    pid_t pid = -1;

    background_relay(std::vector<std::string> const& args, std::string const& in,
                     std::string const& err) {
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 0, in.c_str(), O_RDONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        std::vector<char*> argv;
        for (auto const& a : args)
            argv.push_back(const_cast<char*>(a.c_str()));
        argv.push_back(nullptr);
        int const rc = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ);
        posix_spawn_file_actions_destroy(&fa);
        if (rc != 0)
            throw std::runtime_error("cannot start " + args[0]);
    }
    ~background_relay() {
        if (pid > 0) {
            kill(pid, SIGKILL);
            waitpid(pid, nullptr, 0);
        }
    }
    background_relay(background_relay const&) = delete;
    background_relay& operator=(background_relay const&) = delete;
    background_relay(background_relay&& o) noexcept
        : pid(std::exchange(o.pid, -1)) {}

    bool running() const { return pid > 0 && ::kill(pid, 0) == 0; }

    /// SIGTERM, then waits; the status it ended with (128 + signal), or -1 after `limit`
    /// (then SIGKILL).
    int stop(std::chrono::seconds limit = std::chrono::seconds(60)) {
        ::kill(pid, SIGTERM);
        auto const until = std::chrono::steady_clock::now() + limit;
        int st = 0;
        while (::waitpid(pid, &st, WNOHANG) == 0) {
            if (std::chrono::steady_clock::now() > until) {
                kill_now();
                return -1;
            }
            ::usleep(10'000);
        }
        pid = -1;
        return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
    }

    /// SIGKILL, and the status it ended with (128 + signal).
    int kill_now() {
        kill(pid, SIGKILL);
        int st = 0;
        waitpid(pid, &st, 0);
        pid = -1;
        return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
    }
};

/// The whole of a text file ("" when it cannot be read).
inline std::string read_text_file(std::string const& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

/// Polls `pred` every 10 ms until it holds or `timeout` passes; whether it held.
template <class Pred>
bool poll_until(Pred pred, std::chrono::seconds timeout) {
    auto const until = std::chrono::steady_clock::now() + timeout;
    while (!pred()) {
        if (std::chrono::steady_clock::now() > until)
            return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return true;
}

} // namespace herald::test

#endif
