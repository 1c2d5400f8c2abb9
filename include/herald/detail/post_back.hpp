#ifndef HERALD_DETAIL_POST_BACK_HPP
#define HERALD_DETAIL_POST_BACK_HPP

// Completing an Asio handler from a thread of our own (a background writer): the handler runs
// on its associated executor, never on the writer thread.

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <utility>

namespace herald::detail {

/**
 * A function, called once from any thread, that posts `handler(args...)` to the handler's
 * associated executor. The executor counts work from now until the handler is posted (its
 * io_context keeps running, and alive, meanwhile); the work is released last, once nothing
 * here touches the executor any more.
 *
 * Copyable (it goes into a std::function), whatever the handler: the copies share it, and only
 * the first call posts it.
 */
template <class... Args, class Handler>
std::function<void(Args...)> post_back(Handler handler) {
    auto tracked = boost::asio::prefer(boost::asio::get_associated_executor(handler),
                                       boost::asio::execution::outstanding_work.tracked);
    struct held {
        std::optional<Handler> handler{};
        std::optional<decltype(tracked)> work{};
    };
    auto h = std::make_shared<held>(held{std::move(handler), std::move(tracked)});
    return [h](Args... args) {
        if (!h->handler)
            return; // called already
        {
            auto target =
                boost::asio::prefer(*h->work, boost::asio::execution::outstanding_work.untracked);
            boost::asio::post(target,
                              [run = std::move(*h->handler), ... a = std::move(args)]() mutable {
                                  std::move(run)(std::move(a)...);
                              });
        }
        h->handler.reset();
        h->work.reset(); // last: the io_context may stop (and go) from here on
    };
}

} // namespace herald::detail

#endif
