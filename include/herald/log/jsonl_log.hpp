#ifndef HERALD_JSONL_LOG_HPP
#define HERALD_JSONL_LOG_HPP

#include <herald/concepts.hpp>
#include <herald/detail/background_writer.hpp>
#include <herald/detail/utf8.hpp>
#include <herald/log.hpp>
#include <herald/log/memory_log.hpp>

#include <boost/json/serialize.hpp>

#include <cstdio>
#include <limits>
#include <memory>
#include <span>
#include <string>

namespace herald {

/**
 * A log sink that writes every attempt as one JSON line (the keys of to_json(log_entry)) to a
 * file or a stream such as stdout, and keeps the recent ones in a memory_log for queries.
 *
 * Writing happens on a thread of its own, so a slow disk or a full pipe never stalls the
 * dispatcher's I/O; `flush` waits until every recorded line is written.
 *
 * Thread safety: every member function may be called from any thread.
 */
class jsonl_log {
public:
    /// Writes to `out` (not closed by the log), e.g. stdout.
    explicit jsonl_log(std::FILE* out, memory_log_params keep = {})
        : s_(std::make_unique<state>(out, false, keep)) {}

    /// Appends to the file at `path`, created when missing.
    static result<jsonl_log> open(std::string const& path, memory_log_params keep = {}) {
        std::FILE* f = std::fopen(path.c_str(), "a");
        if (!f)
            return make_problem(error::invalid_field, "path",
                                "cannot open '" + path + "' for appending");
        jsonl_log log(f, keep);
        log.s_->owns = true;
        return log;
    }

    jsonl_log(jsonl_log&&) noexcept = default;
    jsonl_log& operator=(jsonl_log&&) noexcept = default;
    ~jsonl_log() = default;

    /// Queues the attempt's line and keeps it among the recent ones; returns its `seq`.
    std::uint64_t record(log_entry e) {
        // Anything an application put in an id or a name reaches the line: keep it valid UTF-8.
        std::string line;
        detail::append_utf8(line, boost::json::serialize(to_json(e)));
        line += '\n';
        auto const seq = s_->recent.record(std::move(e));
        s_->writer.push(std::move(line));
        return seq;
    }

    log_page query(log_query const& q) const { return s_->recent.query(q); }

    /// Blocks until every line recorded so far is written and flushed.
    void flush() { s_->writer.flush(); }

private:
    struct state {
        state(std::FILE* f, bool own, memory_log_params keep)
            : out(f)
            , owns(own)
            , recent(keep) {
            // Whatever is queued at once, then one fflush.
            writer.start([this](std::span<std::string> lines, std::size_t) { return write(lines); },
                         {.max_batch = std::numeric_limits<std::size_t>::max()});
        }
        ~state() {
            writer.close();
            if (owns)
                std::fclose(out);
        }

        std::size_t write(std::span<std::string const> lines) {
            for (auto const& l : lines)
                std::fwrite(l.data(), 1, l.size(), out);
            std::fflush(out);
            return lines.size();
        }

        std::FILE* out{};
        bool owns{};
        memory_log recent{};
        detail::background_writer<std::string> writer{}; // last: started once the rest is built
    };
    std::unique_ptr<state> s_;
};

static_assert(log_sink<jsonl_log>);

} // namespace herald

#endif
