#ifndef HERALD_ENGINE_FLIGHTS_HPP
#define HERALD_ENGINE_FLIGHTS_HPP

#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/cancellation_type.hpp>

#include <cstddef>
#include <memory>
#include <vector>

namespace herald::detail {

/**
 * The attempts in flight, each with the cancellation signal that stops it, from a pool: a
 * signal keeps the memory of the handler it held, so reusing one costs no allocation. Used
 * from the dispatcher's strand only.
 */
class flights {
public:
    /// A slot for a new flight; its signal() goes to the flight's cancellation slot.
    std::size_t acquire() {
        std::size_t slot;
        if (free_.empty()) {
            slot = all_.size();
            all_.push_back(std::make_unique<flight>());
        } else {
            slot = free_.back();
            free_.pop_back();
        }
        all_[slot]->active = true;
        ++active_;
        return slot;
    }

    /// The flight of `slot` ended. Asio may touch its signal until the flight's completion
    /// handler returns: call this afterwards (post it).
    void release(std::size_t slot) {
        all_[slot]->active = false;
        free_.push_back(slot);
        --active_;
    }

    boost::asio::cancellation_signal& signal(std::size_t slot) { return all_[slot]->signal; }
    std::size_t active() const noexcept { return active_; }

    /// Cancels every flight (past the drain deadline).
    void cancel_all() {
        for (auto& f : all_)
            if (f->active)
                f->signal.emit(boost::asio::cancellation_type::terminal);
    }

private:
    struct flight {
        boost::asio::cancellation_signal signal{};
        bool active = false;
    };
    std::vector<std::unique_ptr<flight>> all_;
    std::vector<std::size_t> free_;
    std::size_t active_ = 0;
};

} // namespace herald::detail

#endif
