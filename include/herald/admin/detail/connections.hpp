#ifndef HERALD_ADMIN_DETAIL_CONNECTIONS_HPP
#define HERALD_ADMIN_DETAIL_CONNECTIONS_HPP

#include <boost/asio/ip/address.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>

namespace herald::admin::detail {

/**
 * Who holds the admin server's connection slots, and which connection to close to make room
 * for a new one: the logic of admission, without sockets, driven by the times passed in.
 *
 * A connection is *waiting* while it waits for a request or reads its head (or the body of a
 * request without a valid token), and *busy* while a request it sent is read or answered. A new
 * connection never finds the slots closed while a waiting one holds a slot: it takes the slot of
 * the waiting connection that has waited longest, from its own peer's when that peer is at its
 * cap, otherwise from the peer holding the most connections. So clients that only open
 * connections and drip bytes (a slowloris) cannot keep out a client that sends its request:
 * that one is the newest, and its request is busy within moments. Only when every slot
 * is busy is the new connection refused.
 *
 * Not thread-safe: the server calls it under its mutex.
 */
class connection_table {
public:
    using time_point = std::chrono::steady_clock::time_point;
    using address = boost::asio::ip::address;

    struct admission {
        bool accepted = false;
        std::optional<std::uint64_t> shed{}; ///< the connection to close to make room
    };

    /// `total` slots in all, `per_peer` for the connections of one address (both at least 1).
    connection_table(std::size_t total, std::size_t per_peer)
        : total_(total ? total : 1)
        , per_peer_(per_peer ? per_peer : 1) {}

    /**
     * A new connection `id` from `peer` at `now`: accepted (waiting) or refused, and which
     * waiting connection, if any, it displaces. A displaced connection no longer counts; it
     * stays in the table until `remove`, and `busy` refuses it.
     */
    admission admit(std::uint64_t id, address const& peer, time_point now) {
        auto const key = normalize(peer);
        admission a;
        if (count(key) >= per_peer_)
            a.shed = pick([&](entry const& e) { return e.peer == key ? 1 : 0; });
        else if (live_ >= total_)
            a.shed = pick([&](entry const& e) { return count(e.peer); });
        else
            a.accepted = true;
        if (!a.accepted && !a.shed)
            return a; // every slot it could take is busy
        if (a.shed)
            mark_shed(*a.shed);
        entries_[id] = entry{key, now, true, false};
        ++per_peer_count_[key];
        ++live_;
        a.accepted = true;
        return a;
    }

    /// `id` waits for its next request from `now` (its answer is written): it may be displaced.
    void waiting(std::uint64_t id, time_point now) {
        if (auto it = entries_.find(id); it != entries_.end() && !it->second.shed) {
            it->second.waiting = true;
            it->second.since = now;
        }
    }

    /// `id` reads or answers a request: it keeps its slot. False when it was displaced.
    bool busy(std::uint64_t id) {
        auto it = entries_.find(id);
        if (it == entries_.end() || it->second.shed)
            return false;
        it->second.waiting = false;
        return true;
    }

    /// True when `id` was displaced (it is to close).
    bool displaced(std::uint64_t id) const {
        auto it = entries_.find(id);
        return it == entries_.end() || it->second.shed;
    }

    void remove(std::uint64_t id) {
        auto it = entries_.find(id);
        if (it == entries_.end())
            return;
        if (!it->second.shed)
            release(it->second.peer);
        entries_.erase(it);
    }

    /// Connections that hold a slot (displaced ones excluded).
    std::size_t size() const { return live_; }
    /// Slots held by `peer`.
    std::size_t count(address const& peer) const {
        auto it = per_peer_count_.find(normalize(peer));
        return it == per_peer_count_.end() ? 0 : it->second;
    }

private:
    struct entry {
        address peer{};
        time_point since{}; ///< when it began to wait
        bool waiting = true;
        bool shed = false;
    };

    /// An IPv4 client reaching an IPv6 socket is the same peer as over IPv4.
    static address normalize(address const& a) {
        if (a.is_v6() && a.to_v6().is_v4_mapped())
            return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, a.to_v6());
        return a;
    }

    /// The waiting connection of highest `weight` (0: not a candidate), the oldest among equals.
    template <class Weight>
    std::optional<std::uint64_t> pick(Weight weight) const {
        std::optional<std::uint64_t> best;
        std::size_t best_weight = 0;
        time_point best_since{};
        for (auto const& [id, e] : entries_) {
            if (!e.waiting || e.shed)
                continue;
            std::size_t const w = weight(e);
            if (w > best_weight || (w != 0 && w == best_weight && e.since < best_since)) {
                best = id;
                best_weight = w;
                best_since = e.since;
            }
        }
        return best;
    }

    void mark_shed(std::uint64_t id) {
        auto& e = entries_.at(id);
        e.shed = true;
        release(e.peer);
    }

    void release(address const& peer) {
        --live_;
        if (auto it = per_peer_count_.find(peer); it != per_peer_count_.end() && --it->second == 0)
            per_peer_count_.erase(it);
    }

    std::size_t total_;
    std::size_t per_peer_;
    std::size_t live_ = 0;
    std::map<std::uint64_t, entry> entries_;
    std::map<address, std::size_t> per_peer_count_;
};

} // namespace herald::admin::detail

#endif
