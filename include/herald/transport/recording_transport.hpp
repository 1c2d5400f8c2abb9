#ifndef HERALD_RECORDING_TRANSPORT_HPP
#define HERALD_RECORDING_TRANSPORT_HPP

#include <herald/concepts.hpp>
#include <herald/transport.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <functional>
#include <memory>
#include <mutex>
#include <vector>

namespace herald {

/**
 * A transport for users' own tests: it sends nothing, keeps every request, and answers what
 * `respond` says (204 by default), after `latency` if one is set.
 *
 * Copies share their state, so a test keeps a copy to inspect the one the dispatcher owns.
 * Thread safety: every member function may be called from any thread; `respond` and `latency`
 * must be set before the dispatcher runs.
 */
class recording_transport {
public:
    using responder = std::function<send_result(http_request const&)>;
    using latency_fn = std::function<duration(http_request const&)>;

    recording_transport()
        : s_(std::make_shared<state>()) {}

    /// Sets what every request gets back.
    void respond(responder r) { s_->respond = std::move(r); }
    /// Sets how long each request takes (a timer, not a sleep).
    void latency(latency_fn l) { s_->latency = std::move(l); }

    boost::asio::awaitable<send_result> async_send(http_request req) {
        auto const wait = s_->latency ? s_->latency(req) : duration{0};
        send_result r;
        if (s_->respond)
            r = s_->respond(req);
        else
            r.status = 204;
        if (wait.count() > 0) {
            boost::asio::steady_timer t(co_await boost::asio::this_coro::executor, wait);
            auto [ec] = co_await t.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
            if (ec) {
                r = send_result{};
                r.ec = ec;
                r.error = "cancelled";
            }
        }
        r.elapsed = wait;
        {
            std::lock_guard lock(s_->mutex);
            s_->requests.push_back(std::move(req));
        }
        co_return r;
    }

    /// Every request sent so far, in order.
    std::vector<http_request> requests() const {
        std::lock_guard lock(s_->mutex);
        return s_->requests;
    }

private:
    struct state {
        std::mutex mutex{};
        std::vector<http_request> requests{};
        responder respond{};
        latency_fn latency{};
    };
    std::shared_ptr<state> s_;
};

static_assert(transport<recording_transport>);

} // namespace herald

#endif
