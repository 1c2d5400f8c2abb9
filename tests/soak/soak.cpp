// herald_soak: the chaos soak. herald-relay on a SQLite store and log publishes a seeded random
// stream of events to loopback receivers that misbehave at random (2xx, 5xx, 429 with
// Retry-After, hanging past the timeout, resets, slow drips, garbage, 410), is SIGKILLed and
// restarted at random moments on the same files, and at the end every event is reconciled
// exactly against the log, the store and what the receivers saw (see docs/building.md, "The
// chaos soak").
//
//   herald_soak --relay PATH [--seed S] [--events N | --seconds N] [--rate N] [--kills N]
//               [--receivers N] [--deadline N] [--dir DIR] [--keep]
//
// Exit status: 0 when everything reconciles, 1 at the first discrepancy (printed with the
// event, webhook and webhook-id), 2 for bad options or a setup failure.
#include <herald/detail/base64.hpp>
#include <herald/signature.hpp>
#include <herald/sqlite/detail/connection.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

extern char** environ;

namespace soak {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

// ---- Options ----

struct options {
    std::string relay;
    std::uint64_t seed = 0;
    bool seed_given = false;
    std::size_t events = 3000;
    double rate = 150; ///< events per second fed on standard input
    std::size_t kills = 6;
    bool kills_given = false;
    std::size_t receivers = 5;
    double deadline_s = 0; ///< wall-time bound of the whole run; 0: from the feed's length
    std::string dir;
    bool keep = false;
};

[[noreturn]] void usage(std::string const& what) {
    std::cerr << "herald_soak: " << what << "\n"
              << "usage: herald_soak --relay PATH [--seed S] [--events N | --seconds N] "
                 "[--rate N] [--kills N] [--receivers N] [--deadline SECONDS] [--dir DIR] "
                 "[--keep]\n";
    std::exit(2);
}

std::uint64_t number(std::string const& name, std::string const& v) {
    std::uint64_t n = 0;
    if (!herald::detail::parse_uint(v, n))
        usage(name + ": '" + v + "' is not a number");
    return n;
}

options parse_options(int argc, char** argv) {
    options o;
    double seconds = 0;
    for (int i = 1; i < argc; ++i) {
        std::string const a = argv[i];
        if (a == "--keep") {
            o.keep = true;
            continue;
        }
        if (i + 1 >= argc)
            usage(a + " needs a value (or is unknown)");
        std::string const v = argv[++i];
        if (a == "--relay")
            o.relay = v;
        else if (a == "--seed") {
            o.seed = number(a, v);
            o.seed_given = true;
        } else if (a == "--events")
            o.events = number(a, v);
        else if (a == "--seconds")
            seconds = static_cast<double>(number(a, v));
        else if (a == "--rate")
            o.rate = static_cast<double>(std::max<std::uint64_t>(number(a, v), 1));
        else if (a == "--kills") {
            o.kills = number(a, v);
            o.kills_given = true;
        } else if (a == "--receivers")
            o.receivers = std::clamp<std::size_t>(number(a, v), 2, 16);
        else if (a == "--deadline")
            o.deadline_s = static_cast<double>(number(a, v));
        else if (a == "--dir")
            o.dir = v;
        else
            usage("unknown option " + a);
    }
    if (o.relay.empty())
        usage("--relay PATH is required");
    if (seconds > 0)
        o.events = static_cast<std::size_t>(seconds * o.rate);
    if (o.events == 0)
        usage("--events: must be at least 1");
    double const feed_s = static_cast<double>(o.events) / o.rate;
    if (!o.kills_given) // about one kill every 3 s of feeding
        o.kills = static_cast<std::size_t>(std::max(1.0, feed_s / 3));
    if (o.deadline_s <= 0)
        o.deadline_s = feed_s * 2 + 120;
    if (!o.seed_given)
        o.seed = std::random_device{}() % 1'000'000;
    return o;
}

// ---- Deterministic randomness ----

/// splitmix64: the behaviour of a request is a function of the seed and the request alone.
std::uint64_t mix(std::uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}
std::uint64_t hash_of(std::uint64_t seed, std::string_view s) {
    std::uint64_t h = mix(seed);
    for (unsigned char c : s)
        h = mix(h ^ c);
    return h;
}

// ---- The receivers ----

/// What a receiver does with one request.
enum class mode : int { ok, error, too_many, hang, reset, drip, slow_drip, garbage, gone, count };
constexpr char const* mode_names[] = {"2xx",  "5xx",  "429",     "hang", "reset",
                                      "drip", "slow", "garbage", "410"};

/// One request as a receiver read it, and what it answered.
struct receipt {
    std::size_t receiver = 0;
    std::string event_id;    ///< webhook-id
    std::string delivery_id; ///< herald-delivery
    std::uint64_t attempt = 0;
    mode how = mode::ok;
    unsigned status = 0;   ///< the status answered (0: none)
    bool answered = false; ///< the whole response was written
    bool late = false;     ///< ... but past half the relay's timeout (a busy machine)
    std::size_t run = 0;   ///< the relay run live when it arrived
    steady::time_point at;
    std::string signature_problem; ///< empty when the signature verified
};

struct receiver_config {
    std::size_t index = 0;
    std::string name;
    std::vector<std::string> types;
    std::string secret_text;
    std::optional<herald::secret> secret;
    std::array<unsigned, static_cast<int>(mode::gone)> weights{}; ///< per mode but 410
    unsigned total = 0;
    bool gone = false; ///< answers 410 once armed
    unsigned short port = 0;
};

class receivers {
public:
    receivers(std::vector<receiver_config>& cfg, std::uint64_t seed,
              std::chrono::milliseconds timeout)
        : cfg_(cfg)
        , seed_(seed)
        , timeout_(timeout) {
        for (auto& c : cfg_) {
            auto& a =
                acceptors_.emplace_back(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
            c.port = a.local_endpoint().port();
        }
        for (std::size_t i = 0; i < cfg_.size(); ++i)
            asio::co_spawn(io_, accept(i), asio::detached);
        for (int t = 0; t < 2; ++t)
            threads_.emplace_back([this] { io_.run(); });
    }
    ~receivers() {
        io_.stop();
        for (auto& t : threads_)
            t.join();
    }

    void set_run(std::size_t r) { run_ = r; }
    void arm_gone() { gone_armed_ = true; }
    bool gone_armed() const { return gone_armed_; }

    /// The receipts from the `from`-th on.
    std::vector<receipt> snapshot(std::size_t from = 0) const {
        std::lock_guard lock(mutex_);
        return {receipts_.begin() + static_cast<std::ptrdiff_t>(std::min(from, receipts_.size())),
                receipts_.end()};
    }

private:
    asio::awaitable<void> accept(std::size_t i) {
        for (;;) {
            auto [ec, sock] =
                co_await acceptors_[i].async_accept(asio::as_tuple(asio::use_awaitable));
            if (ec)
                co_return;
            // a connection belongs to the run that made it (the relay it came from is alive)
            asio::co_spawn(io_, serve(i, std::move(sock), run_.load()), asio::detached);
        }
    }

    mode choose(receiver_config const& c, std::string const& event, std::uint64_t attempt) const {
        if (c.gone && gone_armed_)
            return mode::gone;
        // by event and attempt, not the delivery id (random): the same seed, the same answers
        auto const h =
            hash_of(seed_ ^ (c.index * 0x1000193), event + "/" + std::to_string(attempt));
        auto pick = static_cast<unsigned>(h % c.total);
        for (int m = 0; m < static_cast<int>(mode::gone); ++m) {
            if (pick < c.weights[static_cast<std::size_t>(m)])
                return static_cast<mode>(m);
            pick -= c.weights[static_cast<std::size_t>(m)];
        }
        return mode::ok;
    }

    static std::string lower(std::string s) {
        for (auto& ch : s)
            ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        return s;
    }

    asio::awaitable<void> serve(std::size_t i, tcp::socket sock, std::size_t run) {
        using namespace asio::experimental::awaitable_operators;
        auto const& c = cfg_[i];
        std::string buf;
        char tmp[16384];
        for (;;) {
            std::size_t head_end;
            while ((head_end = buf.find("\r\n\r\n")) == std::string::npos) {
                auto [ec, n] = co_await sock.async_read_some(asio::buffer(tmp),
                                                             asio::as_tuple(asio::use_awaitable));
                if (ec)
                    co_return;
                buf.append(tmp, n);
                if (buf.size() > (1u << 20))
                    co_return;
            }
            std::map<std::string, std::string> h;
            std::istringstream lines(buf.substr(0, head_end));
            std::string line;
            std::getline(lines, line); // request line
            while (std::getline(lines, line)) {
                if (!line.empty() && line.back() == '\r')
                    line.pop_back();
                auto const colon = line.find(':');
                if (colon == std::string::npos)
                    continue;
                auto v = line.substr(colon + 1);
                v.erase(0, v.find_first_not_of(' '));
                h[lower(line.substr(0, colon))] = v;
            }
            std::uint64_t length = 0;
            herald::detail::parse_uint(h["content-length"], length);
            while (buf.size() < head_end + 4 + length) {
                auto [ec, n] = co_await sock.async_read_some(asio::buffer(tmp),
                                                             asio::as_tuple(asio::use_awaitable));
                if (ec)
                    co_return;
                buf.append(tmp, n);
            }
            std::string const body = buf.substr(head_end + 4, length);
            buf.erase(0, head_end + 4 + length);

            receipt r;
            r.receiver = i;
            r.event_id = h["webhook-id"];
            r.delivery_id = h["herald-delivery"];
            herald::detail::parse_uint(h["herald-attempt"], r.attempt);
            r.run = run;
            r.at = steady::now();
            std::array<herald::secret, 1> const secrets{*c.secret};
            if (auto v = herald::verify(
                    {h["webhook-id"], h["webhook-timestamp"], h["webhook-signature"]}, body,
                    secrets);
                !v)
                r.signature_problem = v.error().message;
            r.how = choose(c, r.event_id, r.attempt);
            auto const pick = hash_of(seed_ + 7, r.event_id + std::to_string(r.attempt));

            std::string response;
            bool keep = true;
            switch (r.how) {
            case mode::ok:
            case mode::drip: {
                static constexpr unsigned ok[] = {200, 201, 202, 204};
                r.status = ok[pick % 4];
                response = r.status == 204 ? "HTTP/1.1 204 No Content\r\n\r\n"
                                           : "HTTP/1.1 " + std::to_string(r.status) +
                                                 " OK\r\nContent-Length: 2\r\n\r\nok";
                break;
            }
            case mode::error: {
                static constexpr unsigned bad[] = {500, 502, 503, 504};
                r.status = bad[pick % 4];
                response = "HTTP/1.1 " + std::to_string(r.status) + " Error\r\n" +
                           (r.status == 503 && pick % 3 == 0 ? "Retry-After: 1\r\n" : "") +
                           "Content-Length: 4\r\n\r\noops";
                break;
            }
            case mode::too_many:
                r.status = 429;
                response = "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Length: "
                           "4\r\n\r\nslow";
                break;
            case mode::slow_drip:
                r.status = 503; // never a 2xx: it outlasts the relay's timeout
                response = "HTTP/1.1 503 Busy\r\nContent-Length: 12\r\n\r\nbusy busy ok";
                break;
            case mode::gone:
                r.status = 410;
                response = "HTTP/1.1 410 Gone\r\nContent-Length: 4\r\n\r\ngone";
                break;
            case mode::garbage:
                response = "\x16\x03\x01 this is not HTTP at all \x00\xff\r\n\r\n";
                keep = false;
                break;
            default:
                keep = false;
                break;
            }
            auto const index = [&] {
                std::lock_guard lock(mutex_);
                receipts_.push_back(r);
                return receipts_.size() - 1;
            }();
            auto mark_answered = [&] {
                std::lock_guard lock(mutex_);
                receipts_[index].answered = true;
                receipts_[index].late = steady::now() - r.at > timeout_ / 2;
            };

            if (r.how == mode::hang) {
                // Holds the request past the relay's timeout: it gives up and closes.
                asio::steady_timer t(sock.get_executor(), timeout_ * 4);
                co_await (
                    sock.async_read_some(asio::buffer(tmp), asio::as_tuple(asio::use_awaitable)) ||
                    t.async_wait(asio::as_tuple(asio::use_awaitable)));
                co_return;
            }
            if (r.how == mode::reset) {
                boost::system::error_code ec;
                sock.set_option(asio::socket_base::linger(true, 0), ec);
                sock.close(ec);
                co_return;
            }
            if (r.how == mode::drip || r.how == mode::slow_drip) {
                // drip: the whole answer well within the timeout; slow: past it
                auto const total = r.how == mode::drip ? timeout_ / 4 : timeout_ * 2;
                auto const step = total / static_cast<long>(response.size());
                asio::steady_timer t(sock.get_executor());
                bool broken = false;
                for (char ch : response) {
                    t.expires_after(step);
                    co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
                    auto [ec, n] = co_await asio::async_write(sock, asio::buffer(&ch, 1),
                                                              asio::as_tuple(asio::use_awaitable));
                    if (ec) {
                        broken = true;
                        break;
                    }
                }
                if (broken)
                    co_return;
                mark_answered();
                continue;
            }
            auto [ec, n] = co_await asio::async_write(sock, asio::buffer(response),
                                                      asio::as_tuple(asio::use_awaitable));
            if (ec)
                co_return;
            mark_answered();
            if (!keep) {
                boost::system::error_code ignored;
                sock.shutdown(tcp::socket::shutdown_both, ignored);
                co_return;
            }
        }
    }

    std::vector<receiver_config>& cfg_;
    std::uint64_t seed_;
    std::chrono::milliseconds timeout_;
    asio::io_context io_;
    std::vector<tcp::acceptor> acceptors_;
    std::vector<std::thread> threads_;
    std::atomic<std::size_t> run_{0};
    std::atomic<bool> gone_armed_{false};
    mutable std::mutex mutex_;
    std::vector<receipt> receipts_;
};

// ---- The relay as a process ----

class relay_process {
public:
    /// Starts `args` with standard input from a pipe (or /dev/null), output into files.
    relay_process(std::vector<std::string> const& args, bool with_input, std::string const& out,
                  std::string const& err) {
        int in[2] = {-1, -1};
        if (with_input && pipe2(in, O_CLOEXEC) != 0)
            throw std::runtime_error("pipe failed");
        int const null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        int const out_fd = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        int const err_fd = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, with_input ? in[0] : null_fd, 0);
        posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
        posix_spawn_file_actions_adddup2(&fa, err_fd, 2);
        std::vector<char*> argv;
        for (auto const& a : args)
            argv.push_back(const_cast<char*>(a.c_str()));
        argv.push_back(nullptr);
        int const rc = posix_spawn(&pid_, argv[0], &fa, nullptr, argv.data(), environ);
        posix_spawn_file_actions_destroy(&fa);
        close(null_fd);
        close(out_fd);
        close(err_fd);
        if (with_input) {
            close(in[0]);
            in_ = in[1];
            fcntl(in_, F_SETFL, O_NONBLOCK);
        }
        if (rc != 0)
            throw std::runtime_error("cannot start " + args[0] + ": " + std::strerror(rc));
        started_ = steady::now();
    }
    ~relay_process() {
        close_input();
        if (!exited_) {
            kill(pid_, SIGKILL);
            wait();
        }
    }

    /// Writes what the pipe takes of `data`; returns how many bytes.
    std::size_t write_some(std::string_view data) {
        if (in_ < 0 || data.empty())
            return 0;
        auto const n = ::write(in_, data.data(), data.size());
        return n > 0 ? static_cast<std::size_t>(n) : 0;
    }
    void close_input() {
        if (in_ >= 0)
            close(in_);
        in_ = -1;
    }
    bool input_open() const { return in_ >= 0; }
    void kill9() {
        if (!exited_) {
            kill(pid_, SIGKILL);
            killed_at_ = steady::now();
        }
        wait();
    }
    /// True once it has exited (waited for, without blocking).
    bool poll() {
        if (exited_)
            return true;
        int st = 0;
        if (waitpid(pid_, &st, WNOHANG) == pid_)
            finish(st);
        return exited_;
    }
    void wait() {
        if (exited_)
            return;
        int st = 0;
        while (waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
        }
        finish(st);
    }
    int status() const { return status_; }
    /// Seconds since the start, or from the start to the kill or exit once it ended.
    double seconds() const {
        return std::chrono::duration<double>((exited_ ? ended_ : steady::now()) - started_).count();
    }
    steady::time_point ended() const { return ended_; }

private:
    void finish(int st) {
        exited_ = true;
        ended_ = killed_at_ ? *killed_at_ : steady::now();
        status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
    pid_t pid_ = -1;
    int in_ = -1;
    bool exited_ = false;
    int status_ = -1;
    steady::time_point started_, ended_;
    std::optional<steady::time_point> killed_at_;
};

// ---- What the files hold ----

struct log_row {
    std::int64_t seq = 0;
    std::string event_id, delivery_id, error;
    std::int64_t webhook_id = 0, attempt = 0, status = 0,
                 outcome = 0; ///< 0 delivered, 1 retrying, 2 failed
};

struct store_view {
    std::set<std::string> events; ///< ids of events with deliveries pending
    std::vector<std::pair<std::string, std::int64_t>> pending; ///< (event id, webhook id)
    std::map<std::string, std::int64_t> webhook_ids;           ///< name_key -> id
    std::map<std::int64_t, std::string> disabled;              ///< id -> reason
};

herald::detail::sqlite::connection open_file(std::string const& path) {
    auto c = herald::detail::sqlite::connection::open(path, {});
    if (!c)
        throw std::runtime_error(c.error().message);
    return std::move(*c);
}

store_view read_store(std::string const& path) {
    store_view v;
    if (!std::filesystem::exists(path))
        return v;
    auto c = open_file(path);
    auto ev = c.prepare("SELECT id FROM events");
    while (ev.step())
        v.events.insert(ev.text(0));
    auto d = c.prepare(
        "SELECT e.id, d.webhook_id FROM deliveries d JOIN events e ON e.seq = d.event_seq");
    while (d.step())
        v.pending.emplace_back(d.text(0), d.int64(1));
    auto w = c.prepare("SELECT id, name_key, disabled_reason FROM webhooks");
    while (w.step()) {
        v.webhook_ids[w.text(1)] = w.int64(0);
        if (!w.text(2).empty())
            v.disabled[w.int64(0)] = w.text(2);
    }
    return v;
}

std::vector<log_row> read_log(std::string const& path, std::int64_t after = 0) {
    std::vector<log_row> rows;
    if (!std::filesystem::exists(path))
        return rows;
    auto c = open_file(path);
    auto s = c.prepare("SELECT seq, event_id, delivery_id, webhook_id, attempt, status, outcome, "
                       "error FROM log WHERE seq > ?1 ORDER BY seq");
    s.bind(1, after);
    while (s.step())
        rows.push_back({s.int64(0), s.text(1), s.text(2), s.text(7), s.int64(3), s.int64(4),
                        s.int64(5), s.int64(6)});
    return rows;
}

std::string read_text(std::string const& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// ---- The soak ----

struct soak_event {
    std::string id;
    std::string type;
    std::string line;                     ///< the JSON line fed to the relay, with its newline
    std::vector<std::size_t> subscribers; ///< receiver indexes whose webhook matches the type
    bool acked = false;
    std::size_t sends = 0;
};

/// A boundary between two relay runs: a SIGKILL, or the relay exiting by itself.
struct boundary {
    std::size_t run = 0; ///< the run that ended
    bool crash = false;
    double at_s = 0;         ///< seconds into that run
    std::size_t written = 0; ///< event lines fully written in that run
    steady::time_point end;  ///< the kill, or when it was seen to have exited
};

class soak {
public:
    explicit soak(options o)
        : o_(std::move(o))
        , rng_(o_.seed) {}

    int run() {
        setup();
        std::cout << "herald_soak: seed " << o_.seed << ", " << events_.size() << " events at "
                  << o_.rate << "/s to " << cfg_.size() << " receivers, up to " << o_.kills
                  << " kills, deadline " << o_.deadline_s << " s, files in " << dir_ << "\n"
                  << "  relay runs: --timeout " << timeout_.count() << "ms, --drain-timeout "
                  << drain_timeout_.count() << "s"
                  << (finish_timeout_
                          ? ", --finish-timeout " + std::to_string(finish_timeout_->count()) + "s"
                          : std::string(" (no --finish-timeout: exits at the end of input)"))
                  << "\n";
        for (auto const& c : cfg_) {
            std::cout << "  receiver " << c.index << " (webhook '" << c.name << "', port " << c.port
                      << ", types";
            for (auto const& t : c.types)
                std::cout << " " << t;
            std::cout << "):";
            for (int m = 0; m < static_cast<int>(mode::gone); ++m)
                if (c.weights[static_cast<std::size_t>(m)])
                    std::cout << " " << mode_names[m] << " "
                              << c.weights[static_cast<std::size_t>(m)] << "%";
            if (c.gone)
                std::cout << ", 410 once the input is all published";
            std::cout << "\n";
        }
        if (!feed() || !drain())
            return finish(false);
        return finish(reconcile());
    }

private:
    void setup() {
        if (o_.dir.empty()) {
            char tmpl[] = "/tmp/herald-soak-XXXXXX";
            if (!mkdtemp(tmpl))
                throw std::runtime_error("mkdtemp failed");
            dir_ = tmpl;
        } else {
            dir_ = o_.dir;
            std::filesystem::create_directories(dir_);
            for (auto const* f :
                 {"store.db", "store.db-wal", "store.db-shm", "log.db", "log.db-wal", "log.db-shm"})
                std::filesystem::remove(dir_ + "/" + f);
        }
        store_ = dir_ + "/store.db";
        log_ = dir_ + "/log.db";
        static char const* const types[] = {"create", "update", "delete"};
        std::uniform_int_distribution<unsigned> pct(0, 99);
        for (std::size_t i = 0; i < o_.receivers; ++i) {
            receiver_config c;
            c.index = i;
            c.name = "soak-" + std::to_string(i);
            // receiver 0 takes every type, so every event has a subscriber
            for (auto const* t : types)
                if (i == 0 || pct(rng_) < 60)
                    c.types.push_back(t);
            if (c.types.empty())
                c.types.push_back(types[i % 3]);
            std::string key(32, '\0');
            for (auto& ch : key)
                ch = static_cast<char>(rng_() & 0xff);
            c.secret_text = "whsec_" + herald::detail::base64_encode(key);
            c.secret = *herald::secret::parse(c.secret_text);
            // mostly 2xx; the rest of the misbehaviour in seeded shares
            unsigned const healthy = 55 + pct(rng_) % 30;
            c.weights[static_cast<std::size_t>(mode::ok)] = healthy;
            std::array<unsigned, static_cast<std::size_t>(mode::gone)> draw{};
            unsigned drawn = 0;
            for (std::size_t m = 1; m < draw.size(); ++m)
                // a hang or a slow drip holds a slot for the whole timeout: fewer of them
                drawn += draw[m] =
                    1 + pct(rng_) % (m == static_cast<std::size_t>(mode::hang) ||
                                             m == static_cast<std::size_t>(mode::slow_drip)
                                         ? 3
                                         : 10);
            unsigned given = 0;
            for (std::size_t m = 1; m < draw.size(); ++m)
                given += c.weights[m] = (100 - healthy) * draw[m] / drawn;
            c.weights[static_cast<std::size_t>(mode::ok)] += 100 - healthy - given;
            c.total = 100;
            cfg_.push_back(std::move(c));
        }
        // one receiver (not 0) answers 410 once everything is published: the webhook is
        // disabled with deliveries still pending (see drain())
        cfg_[1 + rng_() % (cfg_.size() - 1)].gone = true;
        recv_.emplace(cfg_, o_.seed, timeout_);

        std::ofstream hooks(dir_ + "/webhooks.json");
        hooks << "[\n";
        for (auto const& c : cfg_) {
            hooks << (c.index ? ",\n" : "") << R"(  {"name": ")" << c.name
                  << R"(", "url": "http://127.0.0.1:)" << c.port << "/hook/" << c.index
                  << R"(", "events": [)";
            for (std::size_t t = 0; t < c.types.size(); ++t)
                hooks << (t ? ", " : "") << '"' << c.types[t] << '"';
            hooks << R"(], "secrets": [")" << c.secret_text << "\"]}";
        }
        hooks << "\n]\n";

        std::uniform_int_distribution<int> type_of(0, 2), size_of(0, 40);
        for (std::size_t n = 0; n < o_.events; ++n) {
            soak_event e;
            e.id = "evt_soak-" + std::to_string(o_.seed) + "-" + std::to_string(n);
            e.type = types[type_of(rng_)];
            std::string payload = "{\"n\": " + std::to_string(n) + ", \"pad\": \"" +
                                  std::string(static_cast<std::size_t>(size_of(rng_)) * 8, 'x') +
                                  "\"}";
            e.line = R"({"id": ")" + e.id + R"(", "type": ")" + e.type + R"(", "object_id": )" +
                     std::to_string(n) +
                     (e.type == "delete" ? R"(, "before": )" : R"(, "after": )") + payload + "}\n";
            for (auto const& c : cfg_)
                if (std::find(c.types.begin(), c.types.end(), e.type) != c.types.end())
                    e.subscribers.push_back(c.index);
            index_[e.id] = events_.size();
            events_.push_back(std::move(e));
        }
        deadline_ =
            steady::now() + std::chrono::milliseconds(static_cast<long>(o_.deadline_s * 1000));
        // Only a relay that has the option gets it (it keeps running until nothing is pending).
        if (auto* help = popen(("'" + o_.relay + "' --help").c_str(), "r")) {
            std::string text;
            char buf[4096];
            while (auto n = std::fread(buf, 1, sizeof buf, help))
                text.append(buf, n);
            pclose(help);
            if (text.find("--finish-timeout") != std::string::npos)
                finish_timeout_ = std::chrono::seconds(15);
        }
    }

    std::vector<std::string> relay_args(bool with_webhooks) const {
        std::vector<std::string> a = {o_.relay,
                                      "--store",
                                      "sqlite:" + store_,
                                      "--log",
                                      "sqlite:" + log_,
                                      "--allow-private",
                                      "127.0.0.1/32",
                                      "--timeout",
                                      std::to_string(timeout_.count()) + "ms",
                                      "--connect-timeout",
                                      "1s",
                                      "--retry-schedule",
                                      "0s,100ms,300ms,1s,2s",
                                      "--drain-timeout",
                                      std::to_string(drain_timeout_.count()) + "s"};
        if (finish_timeout_) {
            a.push_back("--finish-timeout");
            a.push_back(std::to_string(finish_timeout_->count()) + "s");
        }
        if (with_webhooks) {
            a.push_back("--webhooks");
            a.push_back(dir_ + "/webhooks.json");
        }
        return a;
    }

    bool webhooks_in_store() const { return read_store(store_).webhook_ids.size() == cfg_.size(); }

    /// A kill moment: seconds into a run, drawn from the seed.
    double kill_delay() {
        std::uniform_real_distribution<double> d(0.4, 4.5);
        return d(rng_);
    }

    std::string run_files(std::size_t r, char const* what) const {
        return dir_ + "/run" + std::to_string(r) + "." + what;
    }

    void note_stderr(std::size_t r) {
        auto const err = read_text(run_files(r, "err"));
        std::istringstream lines(err);
        std::string line;
        while (std::getline(lines, line))
            if (line.find("line ") != std::string::npos && line.find(": ") != std::string::npos &&
                line.find("end of input") == std::string::npos)
                relay_complaints_.push_back("run " + std::to_string(r) + ": " + line);
    }

    /// Which written, unacknowledged events reached the file (or a receiver).
    void acknowledge(std::vector<std::size_t> const& written) {
        auto const store = read_store(store_);
        // the log and the receipts only grow: read what is new since the last kill
        for (auto const& row : read_log(log_, log_seen_seq_)) {
            seen_.insert(row.event_id);
            log_seen_seq_ = std::max(log_seen_seq_, row.seq);
        }
        auto const fresh = recv_->snapshot(receipts_seen_);
        for (auto const& r : fresh)
            seen_.insert(r.event_id);
        receipts_seen_ += fresh.size();
        for (auto i : written)
            if (store.events.contains(events_[i].id) || seen_.contains(events_[i].id))
                events_[i].acked = true;
    }

    /// Runs relays on standard input until every event is acknowledged.
    bool feed() {
        std::size_t next = 0; // the next never-sent event
        std::vector<std::size_t> resend;
        auto const feed_start = steady::now();
        std::size_t fed_new = 0;
        for (;;) {
            if (steady::now() > deadline_) {
                fail_ = "deadline passed while feeding (" + std::to_string(next) + " of " +
                        std::to_string(events_.size()) + " events sent)";
                return false;
            }
            std::size_t const r = runs_++;
            recv_->set_run(r);
            bool const kill_this = kills_done_ < o_.kills;
            double const kill_at = kill_this ? kill_delay() : 0;
            relay_process p(relay_args(r == 0 || !webhooks_in_store()), true, run_files(r, "out"),
                            run_files(r, "err"));
            // the resends first, then new events at the rate
            std::string pending_bytes;
            std::vector<std::pair<std::size_t, std::size_t>> ends; // (end offset, event)
            std::size_t offset_base = 0, written_bytes = 0;
            std::vector<std::size_t> written;
            for (auto i : resend) {
                pending_bytes += events_[i].line;
                ends.emplace_back(pending_bytes.size(), i);
            }
            resend.clear();
            std::size_t ends_done = 0;
            bool killed = false;
            bool saw_end = false;
            // Half the kills come right after a burst written ahead of the rate, so that lines
            // are in the pipe and publishes wait for their commit when the relay dies.
            bool const burst = kill_this && rng_() % 2 == 0;
            std::size_t const burst_lines = burst ? 100 + rng_() % 400 : 0;
            while (true) {
                if (kill_this && p.seconds() >= kill_at) {
                    p.kill9();
                    killed = true;
                    break;
                }
                if (p.poll())
                    break;
                if (steady::now() > deadline_) {
                    p.kill9();
                    fail_ = "deadline passed in run " + std::to_string(r);
                    return false;
                }
                // new events due by the rate since the feed started (across runs)
                auto due = static_cast<std::size_t>(
                    std::chrono::duration<double>(steady::now() - feed_start).count() * o_.rate);
                if (burst && p.seconds() >= kill_at - 0.05)
                    due += burst_lines;
                while (next < events_.size() && fed_new < due &&
                       pending_bytes.size() - (written_bytes - offset_base) < (1u << 16)) {
                    pending_bytes += events_[next].line;
                    ends.emplace_back(offset_base + pending_bytes.size(), next);
                    ++next;
                    ++fed_new;
                }
                if (p.input_open()) {
                    auto const n = p.write_some(
                        std::string_view(pending_bytes).substr(written_bytes - offset_base));
                    written_bytes += n;
                    // keep the buffer short
                    if (written_bytes - offset_base > (1u << 20)) {
                        pending_bytes.erase(0, written_bytes - offset_base);
                        offset_base = written_bytes;
                    }
                    while (ends_done < ends.size() && ends[ends_done].first <= written_bytes) {
                        auto const ev = ends[ends_done++].second;
                        events_[ev].sends++;
                        written.push_back(ev);
                    }
                    if (next == events_.size() && ends_done == ends.size())
                        p.close_input(); // everything is on the pipe: the relay drains and exits
                } else if (!saw_end && read_text(run_files(r, "err")).find("end of input after") !=
                                           std::string::npos) {
                    saw_end = true;
                    // all lines are published: the 410 receiver may now disable its webhook
                    if (next == events_.size() && !recv_->gone_armed()) {
                        recv_->arm_gone();
                        std::cout << "  run " << r << ": end of input seen at " << p.seconds()
                                  << " s; receiver 410 armed\n";
                    }
                }
                std::this_thread::sleep_for(2ms);
            }
            p.wait();
            // lines not wholly written before the kill: the relay cannot have read them
            for (std::size_t k = ends_done; k < ends.size(); ++k)
                resend.push_back(ends[k].second);
            note_stderr(r);
            auto const err = read_text(run_files(r, "err"));
            if (err.find("end of input after") != std::string::npos)
                for (auto i : written)
                    events_[i].acked = true; // the relay says every line was accepted
            acknowledge(written);
            std::size_t unacked = 0;
            for (auto i : written)
                if (!events_[i].acked && !events_[i].subscribers.empty()) {
                    resend.push_back(i);
                    ++unacked;
                }
            std::sort(resend.begin(), resend.end());
            resend.erase(std::unique(resend.begin(), resend.end()), resend.end());
            resent_ += unacked;
            boundaries_.push_back({r, killed, p.seconds(), written.size(), p.ended()});
            std::cout << "  run " << r << (killed ? ": SIGKILL at " : ": exited by itself after ")
                      << p.seconds() << " s (status " << p.status() << "), " << written.size()
                      << " lines written, " << unacked << " not acknowledged (sent again)\n";
            if (killed)
                ++kills_done_;
            else if (p.status() != 0) {
                fail_ = "run " + std::to_string(r) + ": herald-relay exited with status " +
                        std::to_string(p.status()) + ":\n" + err;
                return false;
            }
            if (next == events_.size() && resend.empty() && !killed)
                return true;
        }
    }

    /// Runs the relay on an empty input until the store holds nothing pending.
    bool drain() {
        if (!recv_->gone_armed())
            recv_->arm_gone();
        std::size_t drain_kills = 0;
        for (;;) {
            auto const store = read_store(store_);
            if (store.pending.empty())
                return true;
            if (steady::now() > deadline_) {
                auto const& [e, w] = store.pending.front();
                fail_ = std::to_string(store.pending.size()) +
                        " deliveries still pending at the deadline, the first: event " + e +
                        " to webhook " + std::to_string(w);
                return false;
            }
            std::size_t const r = runs_++;
            recv_->set_run(r);
            bool const kill_this = drain_kills < 2 && rng_() % 2 == 0;
            double const kill_at = kill_this ? kill_delay() / 2 : 0;
            relay_process p(relay_args(false), false, run_files(r, "out"), run_files(r, "err"));
            bool killed = false;
            auto const limit =
                std::chrono::duration<double>(drain_timeout_).count() +
                (finish_timeout_ ? static_cast<double>(finish_timeout_->count()) : 0) + 30;
            while (!p.poll()) {
                if (kill_this && p.seconds() >= kill_at) {
                    p.kill9();
                    killed = true;
                    break;
                }
                if (p.seconds() > limit) {
                    p.kill9();
                    fail_ = "run " + std::to_string(r) + " (empty input, " +
                            std::to_string(store.pending.size()) +
                            " deliveries pending) did not exit by itself within " +
                            std::to_string(limit) + " s";
                    return false;
                }
                std::this_thread::sleep_for(5ms);
            }
            note_stderr(r);
            boundaries_.push_back({r, killed, p.seconds(), 0, p.ended()});
            std::cout << "  run " << r << " (drain, " << store.pending.size() << " pending)"
                      << (killed ? ": SIGKILL at " : ": exited by itself after ") << p.seconds()
                      << " s (status " << p.status() << ")\n";
            if (killed) {
                ++drain_kills;
                ++kills_done_;
            } else if (p.status() != 0) {
                fail_ = "run " + std::to_string(r) + ": herald-relay exited with status " +
                        std::to_string(p.status()) + ":\n" + read_text(run_files(r, "err"));
                return false;
            }
        }
    }

    /// Every discrepancy is kept, counted by its kind; the first of each kind is printed.
    void discrepancy(std::string what, std::string const& kind = "other") {
        if (problems_.empty())
            first_ = what;
        auto& k = kinds_[kind];
        if (k.first++ == 0)
            k.second = what;
        problems_.push_back(std::move(what));
    }

    bool reconcile() {
        auto const store = read_store(store_);
        auto const log = read_log(log_);
        auto const got = recv_->snapshot();
        std::map<std::int64_t, std::size_t> receiver_of; // webhook id -> receiver
        for (auto const& c : cfg_) {
            auto it = store.webhook_ids.find(c.name);
            if (it == store.webhook_ids.end()) {
                discrepancy("webhook '" + c.name + "' is not in the store",
                            "webhook missing from the store");
                continue;
            }
            receiver_of[it->second] = c.index;
        }
        auto const name_of = [&](std::size_t rcv) {
            return "webhook '" + cfg_[rcv].name + "'";
        };

        // receipts: published, subscribed, signed
        std::map<std::pair<std::string, std::size_t>, std::vector<receipt const*>> by_pair;
        std::map<std::tuple<std::string, std::size_t, std::string, std::uint64_t>,
                 std::vector<receipt const*>>
            by_attempt;
        std::array<std::size_t, static_cast<std::size_t>(mode::count)> modes{};
        for (auto const& r : got) {
            modes[static_cast<std::size_t>(r.how)]++;
            auto it = index_.find(r.event_id);
            if (it == index_.end() || events_[it->second].sends == 0) {
                discrepancy(name_of(r.receiver) + " received webhook-id '" + r.event_id +
                                "', which was never published",
                            "received, never published");
                continue;
            }
            auto const& e = events_[it->second];
            if (std::find(e.subscribers.begin(), e.subscribers.end(), r.receiver) ==
                e.subscribers.end())
                discrepancy(name_of(r.receiver) + " received event " + e.id + " of type " + e.type +
                                ", to which it is not subscribed",
                            "received, not subscribed");
            if (!r.signature_problem.empty())
                discrepancy(name_of(r.receiver) + ": event " + e.id + " attempt " +
                                std::to_string(r.attempt) + ": signature: " + r.signature_problem,
                            "bad signature");
            by_pair[{r.event_id, r.receiver}].push_back(&r);
            by_attempt[{r.event_id, r.receiver, r.delivery_id, r.attempt}].push_back(&r);
        }

        // the log: published, subscribed; each delivered was received with that 2xx
        std::map<std::pair<std::string, std::size_t>, std::vector<log_row const*>> finals;
        std::array<std::size_t, 3> outcomes{};
        std::map<std::string, std::size_t> reasons;
        for (auto const& row : log) {
            outcomes[static_cast<std::size_t>(std::clamp<std::int64_t>(row.outcome, 0, 2))]++;
            auto w = receiver_of.find(row.webhook_id);
            if (w == receiver_of.end()) {
                discrepancy("log seq " + std::to_string(row.seq) + ": webhook id " +
                                std::to_string(row.webhook_id) + " is none of the soak's",
                            "log: unknown webhook");
                continue;
            }
            auto it = index_.find(row.event_id);
            if (it == index_.end() || events_[it->second].sends == 0) {
                discrepancy("log seq " + std::to_string(row.seq) + ": event '" + row.event_id +
                                "' to " + name_of(w->second) + " was never published",
                            "log: never published");
                continue;
            }
            auto const& e = events_[it->second];
            if (std::find(e.subscribers.begin(), e.subscribers.end(), w->second) ==
                e.subscribers.end())
                discrepancy("log seq " + std::to_string(row.seq) + ": event " + e.id + " of type " +
                                e.type + " logged for " + name_of(w->second) +
                                ", not subscribed to it",
                            "log: not subscribed");
            if (row.outcome == 0) {
                auto const a = by_attempt.find({row.event_id, w->second, row.delivery_id,
                                                static_cast<std::uint64_t>(row.attempt)});
                bool seen = false;
                if (a != by_attempt.end())
                    for (auto const* r : a->second)
                        seen = seen ||
                               (r->answered && r->status == row.status && r->status / 100 == 2);
                if (!seen)
                    discrepancy("log seq " + std::to_string(row.seq) + ": event " + e.id + " (" +
                                    row.delivery_id + ", attempt " + std::to_string(row.attempt) +
                                    ") logged delivered with " + std::to_string(row.status) +
                                    " to " + name_of(w->second) + ", which never answered it so",
                                "log: delivered, not answered so");
            }
            if (row.outcome == 0 || row.outcome == 2)
                finals[{row.event_id, w->second}].push_back(&row);
            if (row.outcome == 2) {
                if (row.error.empty())
                    discrepancy("log seq " + std::to_string(row.seq) + ": event " + e.id +
                                    " failed without a reason",
                                "log: failed without a reason");
                std::string reason;
                for (char ch : row.error)
                    if (!std::isdigit(static_cast<unsigned char>(ch)))
                        reason += ch;
                reasons[reason.substr(0, 90)]++;
            }
        }

        // attempts that reached a receiver but have no row in the log (reported, not judged:
        // an attempt in flight at a SIGKILL is never logged). By (event, webhook, delivery,
        // attempt): a recovered attempt keeps its number, and the transport sends a request
        // again on a new connection when a reused one was reset, as one attempt.
        std::set<std::tuple<std::string, std::size_t, std::string, std::int64_t>> logged;
        for (auto const& row : log)
            if (auto w = receiver_of.find(row.webhook_id); w != receiver_of.end())
                logged.insert({row.event_id, w->second, row.delivery_id, row.attempt});
        std::map<std::tuple<std::string, std::size_t, std::string, std::int64_t>, std::size_t>
            unlogged_keys;
        for (auto const& r : got) {
            std::tuple<std::string, std::size_t, std::string, std::int64_t> key{
                r.event_id, r.receiver, r.delivery_id, static_cast<std::int64_t>(r.attempt)};
            if (!logged.contains(key))
                unlogged_keys.emplace(key, r.run); // the first run it reached a receiver in
        }
        std::vector<std::size_t> unlogged(runs_, 0);
        for (auto const& [key, run] : unlogged_keys)
            if (run < unlogged.size())
                unlogged[run]++;

        // every (published event, subscribed webhook): a final outcome
        std::set<std::pair<std::string, std::int64_t>> pending(store.pending.begin(),
                                                               store.pending.end());
        std::size_t pairs = 0, published = 0, unmatched = 0;
        for (auto const& e : events_) {
            if (e.sends == 0)
                continue;
            if (e.subscribers.empty()) {
                ++unmatched;
                continue;
            }
            ++published;
            for (auto rcv : e.subscribers) {
                ++pairs;
                if (finals.contains({e.id, rcv}))
                    continue;
                std::int64_t wid = 0;
                for (auto const& [id, ix] : receiver_of)
                    if (ix == rcv)
                        wid = id;
                auto const got_it = by_pair.find({e.id, rcv});
                std::string seen =
                    got_it == by_pair.end()
                        ? "never received"
                        : "received " + std::to_string(got_it->second.size()) + " times";
                discrepancy("event " + e.id + " (webhook-id " + e.id + ") to " + name_of(rcv) +
                                ": no final outcome in the log" +
                                (pending.contains({e.id, wid})
                                     ? " and still pending in the store"
                                     : " and nothing pending in the store") +
                                " (" + seen + ")",
                            "no final outcome in the log");
            }
        }

        // duplicates: a second 2xx for one (event, webhook) after a crash, within the bound of
        // docs/durability.md: the requests in flight plus the deliveries that ended within the
        // commit window before the kill (2 x commit_interval and the log's commit: tens of
        // milliseconds; a generous window here, for sanitizers on a busy machine)
        std::size_t const in_flight =
            std::min<std::size_t>(global_concurrency_, lane_concurrency_ * cfg_.size());
        auto const window = std::chrono::milliseconds(500);
        std::vector<std::size_t> ended_in_window(runs_, 0);
        for (auto const& r : got)
            if (r.answered && r.status / 100 == 2 && r.run < boundaries_.size() &&
                r.at <= boundaries_[r.run].end && boundaries_[r.run].end - r.at <= window)
                ++ended_in_window[r.run];
        std::vector<std::size_t> dups(runs_, 0);
        std::vector<double> oldest(runs_, 0); // how long before the kill the first 2xx came
        std::size_t duplicates = 0, late_again = 0;
        for (auto const& [key, rs] : by_pair) {
            std::vector<receipt const*> ok;
            for (auto const* r : rs)
                if (r->answered && r->status / 100 == 2)
                    ok.push_back(r);
            std::sort(ok.begin(), ok.end(), [](auto a, auto b) { return a->at < b->at; });
            for (std::size_t k = 1; k < ok.size(); ++k) {
                ++duplicates;
                if (ok[k]->delivery_id != ok[k - 1]->delivery_id)
                    // the soak sends a line again only when nothing in the files or at the
                    // receivers shows its event: a second delivery id means an event the
                    // relay had committed was not in the store after the kill
                    discrepancy("event " + key.first + " (webhook-id " + key.first +
                                    ") answered 2xx by " + name_of(key.second) +
                                    " under two delivery ids, " + ok[k - 1]->delivery_id +
                                    " (run " + std::to_string(ok[k - 1]->run) + ") and " +
                                    ok[k]->delivery_id + " (run " + std::to_string(ok[k]->run) +
                                    "): it was published twice",
                                "published twice");
                else if (ok[k - 1]->late)
                    ++late_again; // the relay may have timed out before the answer was whole
                else if (ok[k]->run == ok[k - 1]->run)
                    discrepancy("event " + key.first + " (webhook-id " + key.first +
                                    ") answered 2xx twice by " + name_of(key.second) +
                                    " within run " + std::to_string(ok[k]->run) +
                                    " (no crash or restart between)",
                                "2xx twice within a run");
                else {
                    auto const b = ok[k]->run - 1;
                    dups[b]++;
                    if (b < boundaries_.size())
                        oldest[b] = std::max(oldest[b], std::chrono::duration<double>(
                                                            boundaries_[b].end - ok[k - 1]->at)
                                                            .count());
                }
            }
        }
        std::size_t crashes = 0;
        std::ostringstream per_crash;
        for (auto const& b : boundaries_) {
            if (b.crash)
                ++crashes;
            if (b.run >= dups.size())
                continue;
            if (b.crash || dups[b.run])
                per_crash << " " << (b.crash ? "kill" : "stop") << "@run" << b.run << "="
                          << dups[b.run];
            if (dups[b.run])
                per_crash << " (first 2xx up to " << static_cast<long>(oldest[b.run] * 1000)
                          << " ms before)";
            auto const bound = in_flight + ended_in_window[b.run];
            if (dups[b.run] > bound)
                discrepancy(std::string(b.crash ? "SIGKILL of" : "stop of") + " run " +
                                std::to_string(b.run) + " (at " + std::to_string(b.at_s) +
                                " s): " + std::to_string(dups[b.run]) +
                                " webhook-ids answered 2xx again after it, more than the " +
                                std::to_string(in_flight) + " deliveries that can be in flight (" +
                                std::to_string(lane_concurrency_) + " per webhook, " +
                                std::to_string(global_concurrency_) + " in all) plus the " +
                                std::to_string(ended_in_window[b.run]) + " answered 2xx in the " +
                                std::to_string(window.count()) + " ms before it",
                            "duplicates over the bound");
        }

        std::size_t sent_again = 0;
        for (auto const& e : events_)
            sent_again += e.sends > 1 ? e.sends - 1 : 0;
        std::cout << "herald_soak: seed " << o_.seed << ": " << published << " events published ("
                  << unmatched << " matched no webhook; " << sent_again
                  << " lines sent again after a kill), " << pairs << " (event, webhook) pairs\n"
                  << "  log: " << log.size() << " attempts: " << outcomes[0] << " delivered, "
                  << outcomes[1] << " retrying, " << outcomes[2] << " failed\n"
                  << "  receivers: " << got.size() << " requests:";
        for (std::size_t m = 0; m < modes.size(); ++m)
            if (modes[m])
                std::cout << " " << mode_names[m] << " " << modes[m];
        std::cout << "\n  runs " << runs_ << ", crashes " << crashes << ", duplicates "
                  << duplicates << " (bound per crash " << in_flight << " in flight + 2xx in the "
                  << window.count() << " ms before):" << per_crash.str();
        if (late_again)
            std::cout << "; " << late_again << " after a late answer (not judged)";
        std::cout << "\n";
        std::cout << "  attempts received but not in the log, by run:";
        for (std::size_t r = 0; r < unlogged.size(); ++r)
            if (unlogged[r])
                std::cout << " run" << r
                          << (boundaries_.size() > r && boundaries_[r].crash ? "(killed)=" : "=")
                          << unlogged[r];
        std::cout << "\n";
        for (auto const& [id, reason] : store.disabled)
            std::cout << "  webhook " << id << " disabled: " << reason << "\n";
        std::cout << "  failures by reason:\n";
        for (auto const& [reason, n] : reasons)
            std::cout << "    " << n << " x " << reason << "\n";
        for (auto const& c : relay_complaints_)
            discrepancy("the relay refused a line: " + c, "relay refused a line");
        return problems_.empty();
    }

    int finish(bool ok) {
        if (!fail_.empty())
            discrepancy(fail_, "run failed");
        if (ok && problems_.empty()) {
            std::cout << "herald_soak: seed " << o_.seed << ": OK, everything reconciles\n";
            if (!o_.keep && o_.dir.empty())
                std::filesystem::remove_all(dir_);
            return 0;
        }
        if (recv_) {
            // what the receivers saw, for the discrepancies above
            std::ofstream out(dir_ + "/receipts.tsv");
            out << "receiver\tevent_id\tdelivery_id\tattempt\tmode\tstatus\tanswered\trun\tms\n";
            auto const t0 = start_;
            for (auto const& r : recv_->snapshot())
                out << r.receiver << '\t' << r.event_id << '\t' << r.delivery_id << '\t'
                    << r.attempt << '\t' << mode_names[static_cast<int>(r.how)] << '\t' << r.status
                    << '\t' << r.answered << '\t' << r.run << '\t'
                    << std::chrono::duration_cast<std::chrono::milliseconds>(r.at - t0).count()
                    << '\n';
        }
        std::cout << "herald_soak: seed " << o_.seed << ": FAILED, " << problems_.size()
                  << " discrepancies; the first:\n  " << first_ << "\n";
        std::cout << "  by kind (count: the first):\n";
        for (auto const& [kind, k] : kinds_)
            std::cout << "    " << kind << " " << k.first << ": " << k.second << "\n";
        std::cout << "  files kept in " << dir_ << " (rerun: --seed " << o_.seed << ")\n";
        return 1;
    }

    options o_;
    std::mt19937_64 rng_;
    std::string dir_, store_, log_;
    std::chrono::milliseconds timeout_{500};
    std::chrono::seconds drain_timeout_{3};
    /// A relay that keeps running after the end of input while deliveries are pending
    /// (--finish-timeout) is bounded, so that restarts and kills still come while draining.
    std::optional<std::chrono::seconds> finish_timeout_;
    // herald's defaults (scheduler_params), as docs/durability.md states them
    std::size_t lane_concurrency_ = 8, global_concurrency_ = 512;
    std::vector<receiver_config> cfg_;
    std::optional<receivers> recv_;
    std::vector<soak_event> events_;
    std::unordered_map<std::string, std::size_t> index_;
    std::vector<boundary> boundaries_;
    std::size_t runs_ = 0, kills_done_ = 0, resent_ = 0;
    std::int64_t log_seen_seq_ = 0;
    std::size_t receipts_seen_ = 0;
    std::set<std::string> seen_; ///< events the log or a receiver has shown
    steady::time_point deadline_;
    steady::time_point start_ = steady::now();
    std::vector<std::string> relay_complaints_;
    std::string fail_, first_;
    std::vector<std::string> problems_;
    std::map<std::string, std::pair<std::size_t, std::string>> kinds_;
};

} // namespace soak

int main(int argc, char** argv) {
    signal(SIGPIPE, SIG_IGN);
    try {
        soak::soak s(soak::parse_options(argc, argv));
        return s.run();
    } catch (std::exception const& e) {
        std::cerr << "herald_soak: " << e.what() << "\n";
        return 2;
    }
}
