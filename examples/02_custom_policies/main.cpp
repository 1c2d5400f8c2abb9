// Custom policies: a read-only webhook store and a transport that prints instead of sending,
// written from scratch and plugged into herald::basic_dispatcher. No network: exits 0 only when
// both deliveries end delivered, so a script can run it as a check.
//
//   ./02_custom_policies
#include <herald/basic_dispatcher.hpp>

#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json/serialize.hpp>

#include <array>
#include <iostream>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace {

/**
 * Webhooks fixed at startup (say, from a configuration file): the table cannot be edited at
 * run time, so it needs no lock. The journal only tracks which deliveries are open, because
 * this store keeps nothing across restarts (claim has nothing to hand back).
 */
class static_store {
public:
    /// Validates every webhook and numbers them from 1; the first problem names its entry.
    static herald::result<static_store> from(std::vector<herald::webhook_params> const& params) {
        static_store s;
        for (std::size_t i = 0; i < params.size(); ++i) {
            if (auto r = herald::validate(params[i]); !r) {
                auto p = r.error();
                p.field = "webhooks[" + std::to_string(i) + "]." + p.field;
                return p;
            }
            auto w = std::make_shared<herald::webhook>();
            static_cast<herald::webhook_params&>(*w) = params[i];
            w->id = i + 1;
            w->created_at = w->updated_at = herald::clock::now();
            s.hooks_.push_back(std::move(w));
        }
        // One immutable list per event type: match() is then a copy of a shared pointer.
        for (std::size_t t = 0; t < herald::event_type_count; ++t) {
            auto list = std::make_shared<std::vector<std::shared_ptr<herald::webhook const>>>();
            for (auto const& w : s.hooks_)
                if (w->active && w->events.contains(static_cast<herald::event_type>(t)))
                    list->push_back(w);
            s.by_type_[t] = std::move(list);
        }
        return s;
    }

    // ---- the webhooks table: read-only ----
    herald::result<herald::webhook> create(herald::webhook_params const&) { return read_only(); }
    herald::result<herald::webhook> update(herald::webhook_id, herald::webhook_params const&) {
        return read_only();
    }
    herald::result<void> remove(herald::webhook_id) { return read_only(); }
    herald::result<herald::webhook> disable(herald::webhook_id, std::string) { return read_only(); }

    std::shared_ptr<herald::webhook const> get(herald::webhook_id id) const {
        // Retries call this to see the webhook as it is now; here it never changes.
        return id >= 1 && id <= hooks_.size() ? hooks_[id - 1] : nullptr;
    }

    std::vector<herald::webhook> list() const {
        std::vector<herald::webhook> out;
        for (auto const& w : hooks_)
            out.push_back(*w);
        return out;
    }

    /// The active webhooks subscribed to the event's type.
    herald::webhook_list match(herald::object_event const& e) const {
        return by_type_[static_cast<std::size_t>(e.type)];
    }

    // ---- the delivery journal: called from the dispatcher's strand only ----
    herald::result<void> enqueue(std::span<herald::delivery const> ds) {
        for (auto const& d : ds)
            open_.insert(d.id);
        return {}; // a durable store would persist here before returning
    }
    void reschedule(herald::delivery const&) { ++rescheduled_; }
    void complete(herald::delivery const& d, herald::outcome o) {
        open_.erase(d.id);
        ++(o == herald::outcome::delivered ? delivered_ : failed_);
    }
    std::vector<herald::delivery> claim(herald::time_point, std::size_t) { return {}; }

    std::size_t open() const { return open_.size(); }
    std::size_t delivered() const { return delivered_; }
    std::size_t rescheduled() const { return rescheduled_; }
    std::size_t failed() const { return failed_; }

private:
    static herald::problem read_only() {
        return herald::make_problem(herald::error::invalid_field, "store",
                                    "is read-only: webhooks come from the configuration");
    }

    std::vector<std::shared_ptr<herald::webhook const>> hooks_;
    std::array<herald::webhook_list, herald::event_type_count> by_type_;
    std::set<herald::delivery_id> open_;
    std::size_t rescheduled_ = 0, delivered_ = 0, failed_ = 0;
};

static_assert(herald::webhook_store<static_store>);

/**
 * Prints each request as it would go on the wire and answers 202 Accepted. Nothing can fail and
 * nothing waits, so the request's timeouts and cancellation have nothing to act on.
 */
struct stdout_transport {
    boost::asio::awaitable<herald::send_result> async_send(herald::http_request req) {
        std::string_view const body = req.body ? std::string_view(*req.body) : std::string_view();
        std::cout << "POST " << req.url << "\n"
                  << "Content-Type: " << req.content_type << "\n"
                  << "Content-Length: " << body.size() << "\n";
        for (auto const& h : req.headers)
            std::cout << h.name << ": " << h.value << "\n";
        std::cout << "\n" << body << "\n\n";
        herald::send_result r;
        r.status = 202;
        co_return r;
    }
};

static_assert(herald::transport<stdout_transport>);

using custom_dispatcher =
    herald::basic_dispatcher<static_store, herald::channel_source, herald::json_serializer,
                             stdout_transport, herald::memory_log>;

} // namespace

int main() {
    using namespace std::chrono_literals;
    using herald::event_type;

    auto store = static_store::from({
        {.name = "inventory sync",
         .url = "http://inventory.example/hooks",
         .events = {event_type::create, event_type::update}},
        {.name = "audit trail",
         .url = "http://audit.example/deleted",
         .events = {event_type::remove}},
    });
    if (!store) {
        std::cerr << "bad configuration: " << store.error().what() << "\n";
        return 2;
    }

    boost::asio::io_context io;
    // Parameter order: executor, params, Store, Transport (then Log, Serializer).
    custom_dispatcher dispatcher(io.get_executor(), {}, std::move(*store), stdout_transport{});

    // The policy decides what the table allows: this one refuses edits, naming itself.
    if (auto edit = dispatcher.store().create({.name = "x", .url = "http://x.example/"}); !edit)
        std::cerr << "create refused: " << edit.error().what() << "\n";

    dispatcher.async_run(boost::asio::detached);

    auto publish = [&](herald::object_event e) {
        e.object_type = "server";
        auto id = dispatcher.publish(std::move(e));
        if (!id)
            std::cerr << "publish refused: " << id.error().what() << "\n";
        return id.has_value();
    };
    boost::json::object const server{{"hostname", "db-1"}, {"rack", "B3"}};
    if (!publish(herald::object_event::created("42", server)) ||
        !publish(herald::object_event::deleted("42", server)))
        return 1;

    dispatcher.async_stop(5s, [](std::exception_ptr, herald::stop_report report) {
        std::cerr << (report.drained ? "drained\n" : "stopped with undelivered work\n");
    });
    io.run();

    // "View Logs", newest first.
    for (auto const& entry : dispatcher.log().query({}).entries)
        std::cout << boost::json::serialize(herald::to_json(entry)) << "\n";

    auto const& journal = dispatcher.store();
    std::cerr << "journal: " << journal.delivered() << " delivered, " << journal.failed()
              << " failed, " << journal.rescheduled() << " rescheduled, " << journal.open()
              << " open\n";
    bool const ok =
        dispatcher.stats().delivered == 2 && journal.delivered() == 2 && journal.open() == 0;
    return ok ? 0 : 1;
}
