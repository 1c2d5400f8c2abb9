// herald-relay's standard input: lines read with a length cap and a way to stop, and the
// problems with them reported once per run of the same problem.
#ifndef HERALD_RELAY_INPUT_HPP
#define HERALD_RELAY_INPUT_HPP

#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

namespace relay {

/**
 * Lines from a file descriptor, at most `max` bytes each (without the newline). A longer
 * line is skipped up to its newline without being kept, so no line costs more memory than
 * the cap. Waits for input with poll() so that a stop request ends the wait: a line is
 * either read whole, or not at all.
 */
class line_reader {
public:
    enum class status { line, too_long, end, stopped };

    line_reader(int fd, std::size_t max)
        : fd_(fd)
        , max_(max)
        , buf_(64 * 1024) {}

    /// The next line into `line`; too_long leaves it empty. Stops waiting once `stop` is set.
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
            if (!fill(stop))
                return status::stopped; // a line cut short by the stop is not taken
        }
    }

private:
    // Waits for input (or the stop) and reads what is there. False when stopped.
    bool fill(std::atomic<bool> const& stop) {
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

    int fd_;
    std::size_t max_;
    std::vector<char> buf_;
    std::size_t begin_ = 0;
    std::size_t end_ = 0;
    bool eof_ = false;
};

/**
 * Problems with input lines on standard error: each new problem at once, with its line
 * number; the same problem again on later lines is counted and reported as one range when
 * another problem comes, at the end, or at most every few seconds (a full disk fails every
 * line the same way: one line for the whole run, not one per line).
 */
class line_problems {
public:
    explicit line_problems(std::ostream& out = std::cerr)
        : out_(out) {}
    line_problems(line_problems const&) = delete;
    line_problems& operator=(line_problems const&) = delete;
    ~line_problems() { flush(); }

    void report(std::size_t line, std::string const& what) {
        ++total_;
        auto const now = std::chrono::steady_clock::now();
        if (what == last_) {
            if (!runs_.empty() && runs_.back().second + 1 == line)
                runs_.back().second = line;
            else
                runs_.emplace_back(line, line);
            ++repeats_;
            if (now - since_ >= std::chrono::seconds(5))
                flush();
            return;
        }
        flush();
        out_ << "herald-relay: line " << line << ": " << what << "\n";
        last_ = what;
        since_ = now;
    }

    /// Reports the repeats counted so far: every line, as ranges ("lines 4-9, 12: the same").
    void flush() {
        if (repeats_ == 0)
            return;
        out_ << "herald-relay: " << (repeats_ == 1 ? "line " : "lines ");
        for (std::size_t i = 0; i < runs_.size(); ++i) {
            out_ << (i ? ", " : "") << runs_[i].first;
            if (runs_[i].second != runs_[i].first)
                out_ << "-" << runs_[i].second;
        }
        out_ << ": the same (" << repeats_ << (repeats_ == 1 ? " line)\n" : " lines)\n");
        repeats_ = 0;
        runs_.clear();
        since_ = std::chrono::steady_clock::now();
    }

    std::size_t total() const { return total_; }

private:
    std::ostream& out_;
    std::string last_;
    std::size_t repeats_ = 0;
    std::vector<std::pair<std::size_t, std::size_t>> runs_; // the repeats' lines, as ranges
    std::size_t total_ = 0;
    std::chrono::steady_clock::time_point since_{};
};

} // namespace relay

#endif
