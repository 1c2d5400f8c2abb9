// herald-bench: CPU time, of one thread (thread_meter), of this process and of the sink
// (cpu_meter), from the clocks and the /proc stat files.

#ifndef HERALD_BENCH_METERS_HPP
#define HERALD_BENCH_METERS_HPP

#include "report.hpp"

#include <pthread.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <fstream>
#include <future>
#include <iterator>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>

namespace herald_bench {

inline double cpu_seconds(clockid_t id) {
    timespec ts{};
    ::clock_gettime(id, &ts);
    return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

/// CPU time used so far, from a /proc stat file: {user, system} seconds ({0, 0} when unknown).
/// The kernel counts them in ticks (10 ms), so they suit runs of a second or more.
inline std::pair<double, double> stat_times(std::string const& path) {
    std::ifstream in(path);
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto const close = stat.rfind(')');
    if (close == std::string::npos)
        return {0, 0};
    std::istringstream fields(stat.substr(close + 2));
    std::string skip;
    for (int i = 3; i < 14; ++i) // fields 3 to 13 come before utime (14) and stime (15)
        fields >> skip;
    double utime = 0, stime = 0;
    fields >> utime >> stime;
    double const tick = double(::sysconf(_SC_CLK_TCK));
    return {utime / tick, stime / tick};
}

/// CPU time used so far by another process (user + system); 0 when unknown.
inline double process_cpu_seconds(pid_t pid) {
    auto const [user, sys] = stat_times("/proc/" + std::to_string(pid) + "/stat");
    return user + sys;
}

/// What one thread used over a run: CPU seconds (exact), and user and system seconds (ticks).
struct thread_use {
    double cpu = 0;
    double user = 0;
    double sys = 0;
};

/// Runs `f` on a new thread; returns the thread and its kernel id (for thread_meter).
template <class F>
std::pair<std::thread, pid_t> start_thread(F f) {
    std::promise<pid_t> tid;
    auto got = tid.get_future();
    std::thread t([tid = std::move(tid), f = std::move(f)]() mutable {
        tid.set_value(::gettid());
        f();
    });
    return {std::move(t), got.get()};
}

/// Measures one thread of this process from construction to `used()`.
class thread_meter {
public:
    /// The calling thread (`used()` must be called on it too).
    thread_meter()
        : thread_meter(::gettid(), CLOCK_THREAD_CPUTIME_ID) {}

    /// Thread `t`, whose kernel id is `tid`.
    thread_meter(std::thread& t, pid_t tid)
        : thread_meter(tid, clock_of(t)) {}

    thread_use used() const {
        auto const now = sample();
        return {now.cpu - start_.cpu, now.user - start_.user, now.sys - start_.sys};
    }

private:
    thread_meter(pid_t tid, clockid_t clock)
        : tid_(tid)
        , clock_(clock)
        , start_(sample()) {}

    static clockid_t clock_of(std::thread& t) {
        clockid_t id{};
        if (::pthread_getcpuclockid(t.native_handle(), &id) != 0)
            throw std::runtime_error("no CPU clock for a thread");
        return id;
    }

    thread_use sample() const {
        auto const [user, sys] = stat_times("/proc/self/task/" + std::to_string(tid_) + "/stat");
        return {cpu_seconds(clock_), user, sys};
    }

    pid_t tid_;
    clockid_t clock_;
    thread_use start_;
};

/// The sink this run started, if any: its CPU time is part of each I/O scenario's figures.
inline pid_t sink_pid = 0;

/**
 * CPU time per request, which a busy shared machine disturbs much less than the rates: the
 * sending thread (the Beast loop, curl's loop, the dispatcher's io thread), the whole
 * benchmark process (for herald this includes the thread that builds and publishes events),
 * and the sink.
 */
class cpu_meter {
public:
    cpu_meter()
        : process0_(cpu_seconds(CLOCK_PROCESS_CPUTIME_ID))
        , sink0_(sink_pid ? process_cpu_seconds(sink_pid) : 0) {}

    /// `sender`: what the sending thread used over the run.
    void finish(report& r, thread_use const& sender, double requests) const {
        if (requests <= 0)
            return;
        double const sender_s = sender.cpu;
        double const process_s = cpu_seconds(CLOCK_PROCESS_CPUTIME_ID) - process0_;
        auto us = [&](double x) {
            return x / requests * 1e6;
        };
        r.add("sender_cpu_us", us(sender_s))
            .add("sender_user_us", us(sender.user))
            .add("sender_sys_us", us(sender.sys))
            .add("process_cpu_us", us(process_s));
        r.summary += "; CPU per request: sender " + fixed(us(sender_s), 1) + " us (user " +
                     fixed(us(sender.user), 1) + ", system " + fixed(us(sender.sys), 1) + ")";
        if (process_s > sender_s * 1.05)
            r.summary += ", process " + fixed(us(process_s), 1) + " us";
        if (sink_pid) {
            double const sink_s = process_cpu_seconds(sink_pid) - sink0_;
            r.add("sink_cpu_us", us(sink_s));
            r.summary += ", sink " + fixed(us(sink_s), 1) + " us";
        }
    }

private:
    double process0_;
    double sink0_;
};

} // namespace herald_bench

#endif
