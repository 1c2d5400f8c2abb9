// herald-microbench: the CPU cost of what happens once per event before any I/O.
//
//   herald-microbench [--webhooks 10000] [--events 1000000] [--json]
//
// matching:  events matched per second against N registered webhooks (index by event type)
// serialize: bodies per second for a 1 KiB object, herald envelope and DATAGERRY format
#include <herald/serializer/datagerry_serializer.hpp>
#include <herald/serializer/json_serializer.hpp>
#include <herald/store/memory_store.hpp>

#include <boost/json/serialize.hpp>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <string>

namespace {

struct figures {
    std::string scenario;
    double per_second;
    std::string extra;
};

void print(figures const& f, bool json) {
    if (json)
        std::cout << "{\"scenario\":\"" << f.scenario << "\",\"per_second\":" << f.per_second
                  << f.extra << "}\n";
    else
        std::cout << f.scenario << ": " << static_cast<long long>(f.per_second) << " /s\n";
}

template <class F>
double rate(std::size_t n, F&& f) {
    auto const t0 = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < n; ++i)
        f(i);
    std::chrono::duration<double> const s = std::chrono::steady_clock::now() - t0;
    return double(n) / s.count();
}

herald::object_event sample_event(std::size_t body_bytes) {
    boost::json::object o;
    o["hostname"] = "db-1.example.net";
    o["ip"] = "10.0.0.7";
    std::size_t i = 0;
    while (boost::json::serialize(o).size() < body_bytes) {
        o["field_" + std::to_string(i)] = "value-value-value-" + std::to_string(i);
        ++i;
    }
    auto before = o;
    o["hostname"] = "db-2.example.net";
    auto e = herald::object_event::updated("42", std::move(before), std::move(o));
    (void)herald::prepare_event(e);
    return e;
}

} // namespace

int main(int argc, char** argv) {
    std::size_t webhooks = 10'000, events = 1'000'000;
    bool json = false;
    for (int i = 1; i < argc; ++i) {
        std::string const a = argv[i];
        if (a == "--json")
            json = true;
        else if (a == "--webhooks" && i + 1 < argc)
            webhooks = std::strtoull(argv[++i], nullptr, 10);
        else if (a == "--events" && i + 1 < argc)
            events = std::strtoull(argv[++i], nullptr, 10);
        else {
            std::cerr << "usage: herald-microbench [--webhooks N] [--events N] [--json]\n";
            return 2;
        }
    }

    herald::memory_store_params sp; // the sink of the I/O benchmarks lives on loopback
    sp.addresses.allow.push_back(herald::cidr::parse("127.0.0.1/32").value());
    herald::memory_store store(sp);
    for (std::size_t i = 0; i < webhooks; ++i) {
        herald::webhook_params p;
        p.name = "hook-" + std::to_string(i);
        p.url = "http://127.0.0.1:9/h/" + std::to_string(i);
        // a third on each type, so matching must pick, not scan
        p.events.insert(static_cast<herald::event_type>(i % 3));
        if (auto r = store.create(std::move(p)); !r) {
            std::cerr << "cannot create webhook " << i << ": " << r.error().what() << "\n";
            return 1;
        }
    }
    auto e = sample_event(1024);
    std::size_t matched = 0;
    double const match_rate = rate(events, [&](std::size_t) { matched += store.match(e)->size(); });
    print({"matching", match_rate,
           ",\"webhooks\":" + std::to_string(webhooks) +
               ",\"matched_per_event\":" + std::to_string(matched / (events ? events : 1))},
          json);

    std::size_t const n = std::max<std::size_t>(events / 10, 1);
    std::size_t bytes = 0;
    herald::json_serializer js;
    double const js_rate = rate(n, [&](std::size_t) { bytes += js.serialize(e).body.size(); });
    print({"serialize_herald", js_rate, ",\"body_bytes\":" + std::to_string(bytes / n)}, json);
    bytes = 0;
    herald::datagerry_serializer dg;
    double const dg_rate = rate(n, [&](std::size_t) { bytes += dg.serialize(e).body.size(); });
    print({"serialize_datagerry", dg_rate, ",\"body_bytes\":" + std::to_string(bytes / n)}, json);
    return 0;
}
