// herald-relay's problems with input lines (herald::jsonl_source reads them), reported once
// per run of the same problem.
#ifndef HERALD_RELAY_PROBLEMS_HPP
#define HERALD_RELAY_PROBLEMS_HPP

#include <chrono>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

namespace relay {

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
