// The admin API's webhook body and herald-relay's webhooks file: JSON read by
// parse_webhook_params under the default address policy, under one that allows everything
// and https-only. Properties: nothing crashes, a refusal names a field, an accepted webhook
// passes validate() again and its JSON (to_json, as GET shows it) is valid.
#include "fuzz.hpp"

#include <herald/webhook.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace herald_fuzz_webhook {

inline void check(boost::json::value const& v, herald::address_policy const& policy,
                  bool https_only, std::string_view input) {
    auto p = herald::parse_webhook_params(v, "webhooks[0].", policy, https_only);
    if (!p) {
        HERALD_FUZZ_CHECK("webhook", p.error().field.starts_with("webhooks[0]"), input);
        return;
    }
    HERALD_FUZZ_CHECK("webhook", herald::validate(*p, policy, https_only).has_value(), input);
    herald::webhook w;
    static_cast<herald::webhook_params&>(w) = std::move(*p);
    w.id = 1;
    auto const shown = boost::json::serialize(herald::to_json(w));
    boost::system::error_code ec;
    auto const back = boost::json::parse(shown, ec);
    HERALD_FUZZ_CHECK("webhook", !ec && back.is_object(), shown);
}

} // namespace herald_fuzz_webhook

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    using namespace herald_fuzz_webhook;
    auto const text = herald_fuzz::text_of(data, size);
    boost::system::error_code ec;
    auto const v = boost::json::parse(text, ec);
    if (ec)
        return 0;
    check(v, {}, false, text);
    herald::address_policy everything;
    everything.allow_all = true;
    check(v, everything, false, text);
    check(v, {}, true, text);
    return 0;
}
