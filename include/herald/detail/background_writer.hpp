#ifndef HERALD_DETAIL_BACKGROUND_WRITER_HPP
#define HERALD_DETAIL_BACKGROUND_WRITER_HPP

// One writer thread with a queue: how sqlite_store, sqlite_log and jsonl_log keep the disk off
// the dispatcher's strand. What the items are and how a batch of them is written is the
// owner's; the thread, the two queues (urgent items first), batching, flush and close, and the
// failure counts are here.

#include <herald/error.hpp>
#include <herald/time.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace herald::detail {

/**
 * The failures of a writer: how many, the reason of the last one, and the first one since
 * take_first (what a flush reports).
 *
 * Thread safety: every member function may be called from any thread.
 */
class write_failures {
public:
    void note(problem p) {
        count_.fetch_add(1, std::memory_order_relaxed);
        std::lock_guard lock(mutex_);
        last_ = p.what();
        if (!first_)
            first_ = std::move(p);
    }

    std::uint64_t count() const noexcept { return count_.load(std::memory_order_relaxed); }

    /// The last failure's reason, empty when there was none.
    std::string last() const {
        std::lock_guard lock(mutex_);
        return last_;
    }

    /// The first failure since the previous call, if any (and forgets it).
    std::optional<problem> take_first() {
        std::lock_guard lock(mutex_);
        return std::exchange(first_, std::nullopt);
    }

private:
    std::atomic<std::uint64_t> count_{0};
    mutable std::mutex mutex_;
    std::string last_{};
    std::optional<problem> first_{};
};

struct background_writer_params {
    std::size_t max_batch = 8192; ///< items handed to `write` at once at most (0 counts as 1)
    /// How often `tick` runs on the writer thread (the first one interval after start); never
    /// when empty.
    std::optional<duration> tick_interval{};
};

/**
 * A thread that writes what other threads queue, in batches.
 *
 * `write(items, urgent)` runs on the writer thread with up to max_batch items taken from the
 * queues, the `urgent` ones (push_urgent) first, then the others in the order they were
 * pushed. It returns how many of them, from the front, are done, written or failed (at least
 * one); the others go back to the head of their queue for the next call. A failure is the
 * owner's to count (failures()).
 *
 * Thread safety: push, push_urgent, flush, call, queued and failures may be called from any
 * thread but the writer's; start and close from the owner's.
 */
template <class Item>
class background_writer {
public:
    using write_function = std::function<std::size_t(std::span<Item>, std::size_t)>;

    background_writer() = default;
    background_writer(background_writer const&) = delete;
    background_writer& operator=(background_writer const&) = delete;
    /// Writes everything queued, then stops the thread.
    ~background_writer() { close(); }

    /// Starts the thread. `tick`, when given, runs every params.tick_interval.
    void start(write_function write, background_writer_params p = {},
               std::function<void()> tick = {}) {
        write_ = std::move(write);
        tick_ = std::move(tick);
        p_ = p;
        thread_ = std::thread([this] { loop(); });
    }

    /// Queues an item behind the others.
    void push(Item item) { put(std::move(item), false); }

    /// Queues an item ahead of every item queued by push.
    void push_urgent(Item item) { put(std::move(item), true); }

    /// Blocks until every item queued before the call is done.
    void flush() {
        std::unique_lock lock(mutex_);
        auto const normal = lanes_[0].pushed, urgent = lanes_[1].pushed;
        done_cv_.wait(lock, [&] { return lanes_[0].done >= normal && lanes_[1].done >= urgent; });
    }

    /**
     * Runs `f` on the writer thread, after the batch being written, and waits for it (on the
     * calling thread when the writer is closed).
     */
    void call(std::function<void()> f) {
        std::unique_lock lock(mutex_);
        if (!thread_.joinable()) {
            lock.unlock();
            f();
            return;
        }
        auto const ticket = ++calls_requested_;
        calls_.push_back(std::move(f));
        cv_.notify_all();
        done_cv_.wait(lock, [&] { return calls_done_ >= ticket; });
    }

    /// Items queued and not done yet (waiting, or being written).
    std::uint64_t queued() const noexcept { return queued_.load(std::memory_order_relaxed); }

    write_failures& failures() noexcept { return failures_; }
    write_failures const& failures() const noexcept { return failures_; }

    /// Writes everything queued, then stops the thread. Nothing may be queued after it.
    void close() {
        if (!thread_.joinable())
            return;
        {
            std::lock_guard lock(mutex_);
            stopping_ = true;
        }
        cv_.notify_all();
        thread_.join();
    }

private:
    struct lane {
        std::deque<Item> items{};
        std::uint64_t pushed = 0;
        std::uint64_t done = 0;
    };

    void put(Item item, bool urgent) {
        queued_.fetch_add(1, std::memory_order_relaxed);
        {
            std::lock_guard lock(mutex_);
            auto& l = lanes_[urgent ? 1 : 0];
            l.items.push_back(std::move(item));
            ++l.pushed;
        }
        cv_.notify_one();
    }

    bool has_items() const { return !lanes_[0].items.empty() || !lanes_[1].items.empty(); }

    void loop() {
        using steady = std::chrono::steady_clock;
        std::vector<Item> batch;
        std::optional<steady::time_point> next_tick;
        if (tick_ && p_.tick_interval)
            next_tick = steady::now() + *p_.tick_interval;
        auto const max = std::max<std::size_t>(p_.max_batch, 1);
        std::unique_lock lock(mutex_);
        for (;;) {
            auto ready = [&] {
                return stopping_ || has_items() || !calls_.empty();
            };
            if (next_tick)
                cv_.wait_until(lock, *next_tick, ready);
            else
                cv_.wait(lock, ready);
            if (has_items()) {
                take(lanes_[1], batch, max);
                std::size_t const urgent = batch.size();
                take(lanes_[0], batch, max);
                lock.unlock();
                auto const n = std::clamp<std::size_t>(
                    write_(std::span<Item>(batch.data(), batch.size()), urgent), 1, batch.size());
                queued_.fetch_sub(n, std::memory_order_relaxed);
                lock.lock();
                // What was not done goes back to the head of its queue, in order.
                for (auto i = batch.size(); i > n; --i)
                    lanes_[i - 1 < urgent ? 1 : 0].items.push_front(std::move(batch[i - 1]));
                lanes_[1].done += std::min(n, urgent);
                lanes_[0].done += n - std::min(n, urgent);
                batch.clear();
                done_cv_.notify_all();
            }
            run_calls(lock);
            if (next_tick && steady::now() >= *next_tick) {
                lock.unlock();
                tick_();
                lock.lock();
                next_tick = steady::now() + *p_.tick_interval;
            }
            if (stopping_ && !has_items()) {
                run_calls(lock);
                return;
            }
        }
    }

    static void take(lane& l, std::vector<Item>& batch, std::size_t max) {
        while (!l.items.empty() && batch.size() < max) {
            batch.push_back(std::move(l.items.front()));
            l.items.pop_front();
        }
    }

    void run_calls(std::unique_lock<std::mutex>& lock) {
        while (!calls_.empty()) {
            auto f = std::move(calls_.front());
            calls_.pop_front();
            lock.unlock();
            f();
            lock.lock();
            ++calls_done_;
            done_cv_.notify_all();
        }
    }

    write_function write_{};
    std::function<void()> tick_{};
    background_writer_params p_{};
    write_failures failures_{};
    std::atomic<std::uint64_t> queued_{0};

    mutable std::mutex mutex_;
    std::condition_variable cv_{};      // the writer waits for work
    std::condition_variable done_cv_{}; // flush and call wait for the writer
    lane lanes_[2]{};                   // [0] pushed, [1] urgent
    std::deque<std::function<void()>> calls_{};
    std::uint64_t calls_requested_ = 0;
    std::uint64_t calls_done_ = 0;
    bool stopping_ = false;
    std::thread thread_{};
};

} // namespace herald::detail

#endif
