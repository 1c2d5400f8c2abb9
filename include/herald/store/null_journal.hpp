#ifndef HERALD_NULL_JOURNAL_HPP
#define HERALD_NULL_JOURNAL_HPP

#include <herald/concepts.hpp>
#include <herald/delivery.hpp>
#include <herald/error.hpp>
#include <herald/log.hpp>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>

#include <cstddef>
#include <utility>
#include <vector>

namespace herald {

/**
 * Completes an asynchronous operation whose result is known at once: `value` goes to the
 * handler through its associated executor (never from inside the initiating call, as Asio
 * requires). For journals that keep nothing, or keep it in memory.
 */
template <class T, class CompletionToken>
auto async_ready(T value, CompletionToken&& token) {
    return boost::asio::async_initiate<CompletionToken, void(T)>(
        [](auto handler, T v) {
            auto ex = boost::asio::get_associated_executor(handler);
            boost::asio::post(ex, [h = std::move(handler), v = std::move(v)]() mutable {
                std::move(h)(std::move(v));
            });
        },
        token, std::move(value));
}

/**
 * The journal of a store that has none (memory_store, a custom read-only table): it keeps
 * nothing, claims nothing, and the dispatcher's memory is the queue, as Beast's
 * `unlimited_rate_policy` limits nothing. The dispatcher never calls it: it sees the type and
 * leaves the journal out of the hot path.
 */
struct null_journal {
    static constexpr bool durable = false;

    template <class CompletionToken>
    auto async_enqueue(std::vector<delivery>, CompletionToken&& token) {
        return async_ready(result<void>(), std::forward<CompletionToken>(token));
    }
    template <class CompletionToken>
    auto async_claim(time_point, std::size_t, CompletionToken&& token) {
        return async_ready(result<std::vector<delivery>>(std::vector<delivery>()),
                           std::forward<CompletionToken>(token));
    }
    void reschedule(delivery const&) {}
    void complete(delivery const&, outcome) {}
};

static_assert(delivery_journal<null_journal> && !durable_journal<null_journal>);

} // namespace herald

#endif
