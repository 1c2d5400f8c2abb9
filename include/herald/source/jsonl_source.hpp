#ifndef HERALD_JSONL_SOURCE_HPP
#define HERALD_JSONL_SOURCE_HPP

#include <herald/concepts.hpp>
#include <herald/error.hpp>
#include <herald/event.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <iostream>
#include <istream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace herald {

struct jsonl_source_params {
    int fd =
        STDIN_FILENO; ///< the file descriptor read (standard input); never closed by the source
    std::size_t max_line_bytes = 1024 * 1024; ///< the longest line; a longer one is skipped unread
    std::size_t read_ahead = 256;             ///< lines read and parsed ahead of the receiver
    std::size_t read_ahead_bytes =
        4 * 1024 * 1024;     ///< ... and their text, at most (one line always)
    std::size_t batch = 256; ///< lines handed over at once
    /// Told of each line async_receive drops (not an event, or too long), on the receiving
    /// coroutine; when empty, the line goes to standard error as "herald: line N: problem".
    std::function<void(std::size_t line, problem const&)> on_problem{};
};

/** One line of the input: its number and its event, or what is wrong with it. */
struct jsonl_line {
    std::size_t number = 0;                      ///< from 1, counting every line (blank ones too)
    result<object_event> event = object_event{}; ///< prepared (prepare_event), or the problem
    bool too_long = false; ///< longer than max_line_bytes: skipped without being kept
};

namespace detail {

/**
 * Lines from a file descriptor or a stream, at most `max` bytes each (without the newline). A
 * longer line is skipped up to its newline without being kept, so no line costs more memory
 * than the cap. A file descriptor is waited on with poll(), so that a stop request ends the
 * wait within 100 ms: a line is read whole, or not at all. A stream is read as it comes (a
 * stop cannot end a wait inside it).
 */
class line_reader {
public:
    enum class status { line, too_long, end, stopped };

    line_reader(int fd, std::istream* in, std::size_t max)
        : fd_(fd)
        , in_(in)
        , max_(max)
        , buf_(64 * 1024) {}

    /// The next line into `line` (too_long leaves it empty); stops waiting once `stop` is set.
    status next(std::string& line, std::atomic<bool> const& stop) {
        line.clear();
        bool too_long = false;
        for (;;) {
            if (begin_ < end_) {
                auto const* start = buf_.data() + begin_;
                auto const* nl = static_cast<char const*>(std::memchr(start, '\n', end_ - begin_));
                std::size_t const n = nl ? static_cast<std::size_t>(nl - start) : end_ - begin_;
                if (!too_long && line.size() + n > max_) {
                    too_long = true;
                    line.clear();
                    line.shrink_to_fit();
                }
                if (!too_long)
                    line.append(start, n);
                begin_ += n + (nl ? 1 : 0);
                if (nl)
                    return too_long ? status::too_long : status::line;
            }
            if (eof_) // a last line without a newline still counts
                return too_long ? status::too_long : !line.empty() ? status::line : status::end;
            if (!(in_ ? fill_stream() : fill_fd(stop)))
                return status::stopped; // a line cut short by the stop is not taken
        }
    }

private:
    // Waits for input (or the stop) and reads what is there. False when stopped.
    bool fill_fd(std::atomic<bool> const& stop) {
        begin_ = end_ = 0;
        for (;;) {
            if (stop.load())
                return false;
            pollfd p{fd_, POLLIN, 0};
            int const r = ::poll(&p, 1, 100);
            if (r < 0 && errno != EINTR) {
                eof_ = true; // not readable at all: treat as the end
                return true;
            }
            if (r <= 0)
                continue;
            auto const n = ::read(fd_, buf_.data(), buf_.size());
            if (n < 0 && (errno == EINTR || errno == EAGAIN))
                continue;
            if (n <= 0)
                eof_ = true;
            else
                end_ = static_cast<std::size_t>(n);
            return true;
        }
    }

    // What the stream has at hand, or one character (which may wait): never waits for a
    // whole buffer, so lines typed one by one are read one by one.
    bool fill_stream() {
        begin_ = end_ = 0;
        auto* sb = in_->rdbuf();
        auto const avail = sb ? sb->in_avail() : -1;
        if (avail > 0) {
            auto const want = std::min<std::streamsize>(avail, std::streamsize(buf_.size()));
            end_ = static_cast<std::size_t>(sb->sgetn(buf_.data(), want));
            return true;
        }
        auto const c = sb ? sb->sbumpc() : std::char_traits<char>::eof();
        if (c == std::char_traits<char>::eof())
            eof_ = true;
        else
            buf_[end_++] = std::char_traits<char>::to_char_type(c);
        return true;
    }

    int fd_;
    std::istream* in_;
    std::size_t max_;
    std::vector<char> buf_;
    std::size_t begin_ = 0;
    std::size_t end_ = 0;
    bool eof_ = false;
};

} // namespace detail

/**
 * An event source reading one JSON event per line (herald-relay's standard input) from a file
 * descriptor or a stream. Lines are read, parsed (parse_event_json, so a key given twice is
 * refused) and prepared (prepare_event) on a thread of its own, started by the first receive,
 * at most `read_ahead` lines ahead: a slow receiver makes it stop reading, which holds back
 * the writer of the pipe. Blank lines (spaces, tabs) are skipped; a line may end in CRLF.
 *
 * Two ways to take what it reads:
 * - `async_receive(batch)`, the event_source: the events, in order; each line that is not an
 *   event goes to jsonl_source_params::on_problem with its number. As a dispatcher's Source it
 *   is built from the dispatcher's executor and reads standard input with the default params
 *   (derive from it to choose others). At the end of the input it returns false: the
 *   dispatcher takes no more events and delivers what it has until async_stop.
 * - `async_receive_lines(lines)`: every line with its number, good or bad, in order, for a
 *   program that publishes them itself and reports on each (herald-relay).
 *
 * `close()` stops the reading (a file descriptor within 100 ms); lines already read are
 * still handed over, then both return false. `at_end()` tells the end of the input from a
 * close.
 *
 * Thread safety: `close`, `at_end`, `lines_read` and `problems` from any thread; the receives
 * by one consumer at a time. Lifetimes: a stream given must outlive the source; the
 * destructor stops and joins the reading thread (a stream's read in progress is waited for).
 */
class jsonl_source {
    // A one-slot thread-safe signal: a send when full is a no-op, a wake is never lost.
    using signal = boost::asio::experimental::concurrent_channel<void(boost::system::error_code)>;

public:
    /// Reads the file descriptor `p.fd` (standard input by default).
    explicit jsonl_source(boost::asio::any_io_executor ex, jsonl_source_params p = {})
        : s_(std::make_unique<state>(std::move(ex), std::move(p), nullptr)) {}

    /// Reads `in` (which must outlive the source); `p.fd` is not used.
    jsonl_source(boost::asio::any_io_executor ex, std::istream& in, jsonl_source_params p = {})
        : s_(std::make_unique<state>(std::move(ex), std::move(p), &in)) {}

    jsonl_source(jsonl_source&&) noexcept = default;
    jsonl_source& operator=(jsonl_source&&) noexcept = default;
    ~jsonl_source() = default;

    /**
     * Moves the lines read since the last call (at most `batch`) into `out`, waiting while
     * there are none; each with its number and its prepared event or its problem.
     * @return false once the input has ended or the source is closed, and every line read
     * has been handed over.
     */
    boost::asio::awaitable<bool> async_receive_lines(std::vector<jsonl_line>& out) {
        auto& s = *s_;
        s.start();
        for (;;) {
            {
                std::unique_lock lock(s.mutex);
                if (!s.queue.empty()) {
                    auto const n = std::min(s.queue.size(), s.p.batch);
                    for (std::size_t i = 0; i < n; ++i) {
                        s.queued_bytes -= s.queue.front().bytes;
                        out.push_back(std::move(s.queue.front().line));
                        s.queue.pop_front();
                    }
                    lock.unlock();
                    s.room.notify_all();
                    co_return true;
                }
                if (s.closed || s.finished)
                    co_return false;
                s.receiver_waiting = true;
            }
            auto [ec] =
                co_await s.wake.async_receive(boost::asio::as_tuple(boost::asio::use_awaitable));
            (void)ec;
        }
    }

    /**
     * Appends the events of the next lines to `batch` (at least one), waiting while there is
     * none; a line that is not an event goes to `on_problem` (or standard error).
     * @return false once the input has ended or the source is closed, and every event read
     * has been handed over.
     */
    boost::asio::awaitable<bool> async_receive(std::vector<object_event>& batch) {
        std::vector<jsonl_line> lines;
        for (;;) {
            lines.clear();
            bool const more = co_await async_receive_lines(lines);
            if (!more)
                co_return false;
            bool got = false;
            for (auto& l : lines) {
                if (l.event) {
                    batch.push_back(std::move(*l.event));
                    got = true;
                    continue;
                }
                s_->problems.fetch_add(1, std::memory_order_relaxed);
                if (s_->p.on_problem)
                    s_->p.on_problem(l.number, l.event.error());
                else
                    std::cerr << "herald: line " << l.number << ": " << l.event.error().what()
                              << "\n";
            }
            if (got)
                co_return true;
        }
    }

    /// Stops reading; the lines already read are still handed over.
    void close() {
        auto& s = *s_;
        {
            std::lock_guard lock(s.mutex);
            s.closed = true;
            s.receiver_waiting = false;
        }
        s.stop.store(true);
        s.room.notify_all();
        s.wake.try_send(boost::system::error_code{});
    }

    /// True once the reading reached the end of the input (not a close).
    bool at_end() const { return s_->ended.load(); }

    /// Lines read so far, blank and bad ones included (some may not be handed over yet).
    std::size_t lines_read() const { return s_->lines_read.load(); }

    /// Lines async_receive dropped, not being events.
    std::size_t problems() const { return s_->problems.load(); }

    jsonl_source_params const& params() const { return s_->p; }

private:
    struct entry {
        jsonl_line line{};
        std::size_t bytes = 0;
    };

    struct state {
        state(boost::asio::any_io_executor ex, jsonl_source_params params, std::istream* stream)
            : p(std::move(params))
            , in(stream)
            , wake(std::move(ex), 1) {
            if (p.read_ahead == 0)
                p.read_ahead = 1;
            if (p.batch == 0)
                p.batch = 1;
        }
        ~state() {
            stop.store(true);
            {
                std::lock_guard lock(mutex);
                closed = true;
            }
            room.notify_all();
            if (reader.joinable())
                reader.join();
        }

        void start() {
            std::lock_guard lock(mutex);
            if (started || closed)
                return;
            started = true;
            reader = std::thread([this] { read_loop(); });
        }

        void read_loop() {
            detail::line_reader lines(p.fd, in, p.max_line_bytes);
            std::string text;
            std::size_t number = 0;
            for (;;) {
                auto const st = lines.next(text, stop);
                if (st == detail::line_reader::status::end ||
                    st == detail::line_reader::status::stopped) {
                    if (st == detail::line_reader::status::end)
                        ended.store(true);
                    finish();
                    return;
                }
                lines_read.store(++number);
                entry e{.line = {.number = number}, .bytes = text.size()};
                if (st == detail::line_reader::status::too_long) {
                    e.line.too_long = true;
                    e.line.event =
                        make_problem(error::invalid_field, "",
                                     "longer than max_line_bytes (" +
                                         std::to_string(p.max_line_bytes) + " bytes): skipped");
                } else {
                    if (!text.empty() && text.back() == '\r')
                        text.pop_back(); // CRLF
                    if (text.find_first_not_of(" \t\r") == std::string::npos)
                        continue;
                    e.line.event = parse(text);
                }
                std::unique_lock lock(mutex);
                room.wait(lock, [&] {
                    return closed || queue.empty() ||
                           (queue.size() < p.read_ahead &&
                            queued_bytes + e.bytes <= p.read_ahead_bytes);
                });
                if (closed) { // a line read after the close is not handed over
                    lock.unlock();
                    finish();
                    return;
                }
                queued_bytes += e.bytes;
                queue.push_back(std::move(e));
                bool const wake_now = std::exchange(receiver_waiting, false);
                lock.unlock();
                if (wake_now)
                    wake.try_send(boost::system::error_code{});
            }
        }

        static result<object_event> parse(std::string const& text) {
            auto e = parse_event_json(text);
            if (!e)
                return e.error();
            if (auto r = prepare_event(*e); !r)
                return r.error();
            return e;
        }

        void finish() {
            {
                std::lock_guard lock(mutex);
                finished = true;
                receiver_waiting = false;
            }
            wake.try_send(boost::system::error_code{});
        }

        jsonl_source_params p;
        std::istream* in;
        signal wake;
        std::mutex mutex{};
        std::condition_variable room{};
        std::deque<entry> queue{};
        std::size_t queued_bytes = 0;
        bool receiver_waiting = false;
        bool started = false;
        bool closed = false;   // close(): nothing more is read
        bool finished = false; // the reading thread is done
        std::atomic<bool> stop{false};
        std::atomic<bool> ended{false};
        std::atomic<std::size_t> lines_read{0};
        std::atomic<std::size_t> problems{0};
        std::thread reader{};
    };

    std::unique_ptr<state> s_;
};

static_assert(event_source<jsonl_source>);

} // namespace herald

#endif
