#ifndef HERALD_MEMORY_STORE_HPP
#define HERALD_MEMORY_STORE_HPP

#include <herald/concepts.hpp>
#include <herald/delivery.hpp>
#include <herald/error.hpp>
#include <herald/event.hpp>
#include <herald/log.hpp>
#include <herald/webhook.hpp>

#include <algorithm>
#include <array>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

namespace herald {

/**
 * The default webhook store: the webhooks table in memory, with an index per event type so
 * that matching an event costs one lock and one shared pointer copy, whatever the number of
 * webhooks.
 *
 * It has no delivery journal: a dispatcher over it uses null_journal, so its in-memory queue
 * is the queue and pending deliveries live as long as the process (sqlite_store keeps them in
 * a file).
 *
 * Thread safety: every member function may be called from any thread.
 */
struct memory_store_params {
    /// Literal-IP webhook URLs must pass this (plus the webhook's allow_private) to be stored.
    address_policy addresses{};
    bool https_only = false; ///< refuse webhooks with plain http URLs
};

class memory_store {
public:
    explicit memory_store(memory_store_params p = {})
        : p_(std::move(p)) {}
    memory_store(memory_store const&) = delete;
    memory_store& operator=(memory_store const&) = delete;
    /// Moves the table (to hand a prepared store to a dispatcher); `other` is left empty.
    memory_store(memory_store&& other) {
        std::lock_guard lock(other.mutex_);
        p_ = other.p_;
        hooks_ = std::move(other.hooks_);
        names_ = std::move(other.names_);
        last_id_ = other.last_id_;
        other.hooks_.clear();
        other.names_.clear();
        other.stale_.fill(true);
    }

    /// Sets which literal-IP URLs webhooks may have from now on (dispatcher_params::addresses
    /// sets it for the table and the transport at once).
    void guard(address_policy const& a) {
        std::lock_guard lock(mutex_);
        p_.addresses = a;
    }

    /// Validates and stores a new webhook. Nothing is stored when it returns a problem.
    result<webhook> create(webhook_params p) {
        p.name = detail::trim_name(p.name); // " a" and "a" are one name
        std::lock_guard lock(mutex_);
        if (auto r = validate(p, p_.addresses, p_.https_only); !r)
            return r.error();
        if (auto r = check_unique(p.name, 0); !r)
            return r.error();
        auto w = std::make_shared<webhook>();
        static_cast<webhook_params&>(*w) = std::move(p);
        w->id = ++last_id_;
        w->created_at = w->updated_at = clock::now();
        hooks_.emplace(w->id, w);
        names_.emplace(lower(w->name), w->id);
        invalidate_index();
        return *w;
    }

    /// The webhook with this id, or null.
    std::shared_ptr<webhook const> get(webhook_id id) const {
        std::lock_guard lock(mutex_);
        auto it = hooks_.find(id);
        return it == hooks_.end() ? nullptr : it->second;
    }

    /// Every webhook, by id.
    std::vector<webhook> list() const {
        std::lock_guard lock(mutex_);
        std::vector<webhook> out;
        out.reserve(hooks_.size());
        for (auto const& [id, w] : hooks_)
            out.push_back(*w);
        return out;
    }

    /// Replaces a webhook's params. Nothing changes when it returns a problem.
    result<webhook> update(webhook_id id, webhook_params p) {
        p.name = detail::trim_name(p.name);
        std::lock_guard lock(mutex_);
        if (auto r = validate(p, p_.addresses, p_.https_only); !r)
            return r.error();
        auto it = hooks_.find(id);
        if (it == hooks_.end())
            return not_found(id);
        if (auto r = check_unique(p.name, id); !r)
            return r.error();
        auto w = std::make_shared<webhook>(*it->second);
        names_.erase(lower(w->name));
        static_cast<webhook_params&>(*w) = std::move(p);
        names_.emplace(lower(w->name), id);
        if (w->active) {
            // re-activated by a user: whatever switched it off no longer applies
            w->disabled_reason.clear();
            w->disabled_at.reset();
        }
        w->updated_at = clock::now();
        it->second = w;
        invalidate_index();
        return *w;
    }

    /// Switches a webhook off on herald's own account (410 Gone, failing too long).
    result<webhook> disable(webhook_id id, std::string reason) {
        std::lock_guard lock(mutex_);
        auto it = hooks_.find(id);
        if (it == hooks_.end())
            return not_found(id);
        auto w = std::make_shared<webhook>(*it->second);
        w->active = false;
        w->disabled_reason = std::move(reason);
        w->disabled_at = w->updated_at = clock::now();
        it->second = w;
        invalidate_index();
        return *w;
    }

    result<void> remove(webhook_id id) {
        std::lock_guard lock(mutex_);
        auto it = hooks_.find(id);
        if (it == hooks_.end())
            return not_found(id);
        names_.erase(lower(it->second->name));
        hooks_.erase(it);
        invalidate_index();
        return {};
    }

    /**
     * Puts a webhook back exactly as given (id, times, disable reason), replacing the one with
     * its id: how a durable store built on this one reloads its table, or undoes a change its
     * file refused. Not validated.
     */
    void restore(webhook w) {
        std::lock_guard lock(mutex_);
        if (auto it = hooks_.find(w.id); it != hooks_.end()) {
            // Its old name, unless another webhook has it by now (two renamed at once, put back
            // one after the other).
            if (auto n = names_.find(lower(it->second->name));
                n != names_.end() && n->second == w.id)
                names_.erase(n);
        }
        names_.insert_or_assign(lower(w.name), w.id);
        last_id_ = std::max(last_id_, w.id);
        auto const id = w.id;
        hooks_.insert_or_assign(id, std::make_shared<webhook const>(std::move(w)));
        invalidate_index();
    }

    /// Ids up to `last` are never assigned again (they belonged to webhooks since deleted).
    void reserve_ids(webhook_id last) {
        std::lock_guard lock(mutex_);
        last_id_ = std::max(last_id_, last);
    }

    /// The active webhooks subscribed to the event's type.
    webhook_list match(object_event const& e) const {
        auto const t = static_cast<std::size_t>(e.type);
        std::lock_guard lock(mutex_);
        if (stale_[t])
            rebuild_index(t);
        return index_[t];
    }

private:
    static problem not_found(webhook_id id) {
        return make_problem(error::not_found, "id", "no webhook with id " + std::to_string(id));
    }

    static std::string lower(std::string s) {
        for (auto& c : s)
            if (c >= 'A' && c <= 'Z')
                c = char(c - 'A' + 'a');
        return s;
    }

    result<void> check_unique(std::string const& name, webhook_id self) const {
        auto it = names_.find(lower(name));
        if (it != names_.end() && it->second != self)
            return make_problem(error::duplicate_name, "name",
                                "'" + name + "' is already used by webhook " +
                                    std::to_string(it->second) + " (names are case-insensitive)");
        return {};
    }

    // The index is rebuilt lazily, by the first match after a change: registering 10,000
    // webhooks costs no rebuild at all, and matching stays one lock and one pointer copy.
    void invalidate_index() { stale_.fill(true); }

    void rebuild_index(std::size_t t) const {
        auto v = std::make_shared<std::vector<std::shared_ptr<webhook const>>>();
        for (auto const& [id, w] : hooks_)
            if (w->active && w->events.contains(static_cast<event_type>(t)))
                v->push_back(w);
        index_[t] = std::move(v);
        stale_[t] = false;
    }

    memory_store_params p_;
    mutable std::mutex mutex_;
    std::map<webhook_id, std::shared_ptr<webhook const>> hooks_;
    std::map<std::string, webhook_id> names_; // lower-cased name -> id
    mutable std::array<webhook_list, event_type_count> index_;
    mutable std::array<bool, event_type_count> stale_{true, true, true};
    webhook_id last_id_ = 0;
};

static_assert(editable_webhook_table<memory_store> && !journaled_store<memory_store> &&
              address_guarded<memory_store>);

} // namespace herald

#endif
