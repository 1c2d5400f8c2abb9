// herald-bench: a dispatcher on its own thread for the scenarios that drive herald (rig), the
// log sink that times the latency scenarios' deliveries, and the parameters they share.

#ifndef HERALD_BENCH_RIG_HPP
#define HERALD_BENCH_RIG_HPP

#include "common.hpp"
#include "events.hpp"
#include "meters.hpp"
#include "options.hpp"
#include "report.hpp"

#include <herald/address_policy.hpp>
#include <herald/basic_dispatcher.hpp>
#include <herald/concepts.hpp>
#include <herald/dispatcher_params.hpp>
#include <herald/error.hpp>
#include <herald/event.hpp>
#include <herald/log.hpp>
#include <herald/log/memory_log.hpp>
#include <herald/serializer/json_serializer.hpp>
#include <herald/signature.hpp>
#include <herald/source/channel_source.hpp>
#include <herald/store/memory_store.hpp>
#include <herald/time.hpp>
#include <herald/transport/http_transport.hpp>
#include <herald/webhook.hpp>

#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <sys/types.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <future>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

namespace herald_bench {

/// Completion times of the latency scenario's events, written on the dispatcher's strand.
struct latency_probe {
    static constexpr std::string_view prefix = "evt_bench_";
    std::vector<std::int64_t> done_ns{};
    std::atomic<std::size_t> done{0};

    explicit latency_probe(std::size_t n)
        : done_ns(n, 0) {}
};

inline std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now().time_since_epoch())
        .count();
}

/**
 * A log sink that timestamps delivered entries of the latency scenario's events (their ids
 * carry their index) and keeps everything in a memory_log, as the default dispatcher does.
 */
class timing_log {
public:
    explicit timing_log(std::shared_ptr<latency_probe> probe = nullptr)
        : probe_(std::move(probe)) {}

    std::uint64_t record(herald::log_entry e) {
        if (probe_ && e.result == herald::outcome::delivered &&
            e.event_id.starts_with(latency_probe::prefix)) {
            std::string_view const digits =
                std::string_view(e.event_id).substr(latency_probe::prefix.size());
            std::size_t i = 0;
            auto const [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), i);
            if (ec == std::errc{} && i < probe_->done_ns.size()) {
                probe_->done_ns[i] = now_ns();
                probe_->done.fetch_add(1, std::memory_order_release);
            }
        }
        return inner_.record(std::move(e));
    }

    herald::log_page query(herald::log_query const& q) const { return inner_.query(q); }

private:
    herald::memory_log inner_;
    std::shared_ptr<latency_probe> probe_;
};
static_assert(herald::log_sink<timing_log>);

/// A dispatcher on its own io_context thread; publishing happens on the caller's thread.
template <class Log>
struct rig {
    using dispatcher_type =
        herald::basic_dispatcher<herald::memory_store, herald::channel_source,
                                 herald::json_serializer, herald::http_transport, Log>;

    asio::io_context io{1};
    dispatcher_type d{};
    std::thread thread{};
    pid_t tid = 0; // the thread's kernel id
    std::size_t ahead = 65'536;

    rig(herald::dispatcher_params p, herald::address_policy addresses,
        herald::http_transport_params tp, Log log)
        : d(io.get_executor(), std::move(p),
            {.store = herald::memory_store({addresses, false}),
             .transport = herald::http_transport(std::move(tp)),
             .log = std::move(log)}) {}

    ~rig() {
        if (thread.joinable()) {
            io.stop();
            thread.join();
        }
    }

    void start() {
        d.async_run(asio::detached);
        std::tie(thread, tid) = start_thread([this] { io.run(); });
    }

    /// Stops the dispatcher (what is still pending after `drain` is abandoned); false when it
    /// did not finish within `wait`, in which case the io_context is stopped outright.
    bool stop(herald::duration drain, std::chrono::seconds wait) {
        auto f = d.async_stop(drain, asio::use_future);
        bool const ok = f.wait_for(wait) == std::future_status::ready;
        if (!ok)
            io.stop();
        thread.join();
        return ok;
    }

    void add_hook(std::string name, std::string url, std::optional<herald::duration> timeout = {}) {
        herald::webhook_params p;
        p.name = std::move(name);
        p.url = std::move(url);
        p.events = herald::event_type_set::all();
        p.secrets = {herald::secret::generate()}; // signing on, always
        p.timeout = timeout;
        p.connect_timeout = timeout;
        auto r = d.store().create(std::move(p));
        if (!r)
            throw std::runtime_error("cannot create webhook: " + r.error().what());
    }

    /// Publishes, waiting for room when the intake queue is full: nothing is dropped.
    void publish(herald::object_event e) {
        auto const capacity = std::min(ahead, d.source().params().capacity);
        for (;;) {
            // `ahead` events are queued: the dispatcher has work for a while, so this thread
            // sleeps long enough not to compete with it for the CPU.
            while (d.stats().queued >= capacity)
                std::this_thread::sleep_for(500us);
            auto r = d.publish(std::move(e));
            if (r)
                return;
            if (r.error().code != herald::error::queue_full)
                throw std::runtime_error("publish: " + r.error().what());
        }
    }
    void publish(event_factory const& f, std::size_t i, std::string id = {}) {
        publish(f.make(i, std::move(id)));
    }

    /// Waits until `n` deliveries ended (delivered or failed) or the deadline passes.
    herald::dispatcher_stats wait_finished(std::uint64_t n, steady::time_point deadline,
                                           steady::time_point* finished_at = nullptr) {
        for (;;) {
            auto const s = d.stats();
            if (s.delivered + s.failed >= n || steady::now() >= deadline) {
                if (finished_at)
                    *finished_at = steady::now();
                return s;
            }
            std::this_thread::sleep_for(200us);
        }
    }

    /**
     * Brings the dispatcher to its steady state before a timed run, untimed: `events` events
     * making `deliveries` deliveries open the connections and fill the log to its capacity (its
     * 10,000 entries keep their requests), so that the heap has its steady size. A cold
     * dispatcher thread grows its glibc arena page by page while the log fills: about 45 MB in
     * 11,500 mprotect calls and as many page faults (strace), all in the first 10,000 deliveries.
     */
    void warm_up(event_factory const& f, std::size_t events, std::uint64_t deliveries,
                 std::chrono::seconds timeout) {
        if (!thread.joinable())
            start();
        if (events == 0)
            return;
        auto const s = d.stats();
        for (std::size_t i = 0; i < events; ++i)
            publish(f, i);
        wait_finished(s.delivered + s.failed + deliveries, steady::now() + timeout);
    }

    /// What a timed run measured: from the first publish to the last delivery's end.
    struct timed {
        herald::dispatcher_stats stats{};
        double seconds = 0;         // wall time
        double publish_seconds = 0; // until the last publish() returned
        thread_use thread_used{};   // what the dispatcher thread used
    };

    /// Starts the dispatcher, publishes `batch` and waits for `deliveries` to end (bounded by
    /// `timeout`), on the clock.
    timed run_timed(std::vector<herald::object_event>& batch, std::uint64_t deliveries,
                    std::chrono::seconds timeout) {
        if (!thread.joinable())
            start();
        auto const base = d.stats(); // what a warm-up did
        thread_meter const meter(thread, tid);
        auto const t0 = steady::now();
        for (auto& e : batch)
            publish(std::move(e));
        timed out;
        out.publish_seconds = seconds_since(t0);
        steady::time_point t1;
        out.stats = wait_finished(base.delivered + base.failed + deliveries, t0 + timeout, &t1);
        out.seconds = std::chrono::duration<double>(t1 - t0).count();
        out.thread_used = meter.used();
        out.stats.published -= base.published;
        out.stats.delivered -= base.delivered;
        out.stats.failed -= base.failed;
        out.stats.attempts -= base.attempts;
        return out;
    }
};

inline herald::address_policy allowed_addresses(options const& o) {
    herald::address_policy a;
    a.allow.push_back(herald::cidr::parse("127.0.0.1/32").value());
    a.allow_all = !o.url.empty(); // the user's own sink, wherever it is
    return a;
}

inline herald::http_transport_params transport_params(options const& o) {
    herald::http_transport_params tp;
    tp.addresses = allowed_addresses(o);
    tp.max_idle_per_origin = std::max<std::size_t>(tp.max_idle_per_origin, o.connections);
    return tp;
}

inline std::string failures(herald::dispatcher_stats const& s, std::uint64_t expected) {
    std::string out;
    if (s.failed)
        out += ", " + grouped(double(s.failed)) + " FAILED";
    if (s.delivered + s.failed < expected)
        out += ", TIMED OUT with " + grouped(double(expected - s.delivered - s.failed)) +
               " unfinished";
    return out;
}

} // namespace herald_bench

#endif
