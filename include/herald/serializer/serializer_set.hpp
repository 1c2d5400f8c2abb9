#ifndef HERALD_SERIALIZER_SET_HPP
#define HERALD_SERIALIZER_SET_HPP

#include <herald/concepts.hpp>
#include <herald/delivery.hpp>
#include <herald/error.hpp>
#include <herald/event.hpp>

#include <array>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>

namespace herald {

namespace detail {
/// "herald, datagerry": the names as problems list them.
inline std::string list_formats(std::span<std::string_view const> names) {
    std::string out;
    for (auto const name : names)
        out.append(out.empty() ? "" : ", ").append(name);
    return out;
}
} // namespace detail

/// A serializer with a format name, `S::format` (`json_serializer`: "herald"), which a
/// webhook's `format` field names.
template <class S>
concept named_serializer = serializer<S> && requires {
    { S::format } -> std::convertible_to<std::string_view>;
};

/**
 * The formats a dispatcher offers, each webhook picking one by its `format` field:
 * - `ser.formats()` -> `std::span<std::string_view const>`: the names, the default first;
 * - `ser.serialize(event, i)` -> `payload`: the body in the i-th format.
 * A plain serializer is one format (its `S::format`, or "default"); serializer_set is several.
 */
template <class S>
concept multi_format_serializer = requires(S const& s, object_event const& e, std::size_t i) {
    { s.formats() } -> std::convertible_to<std::span<std::string_view const>>;
    { s.serialize(e, i) } -> std::same_as<payload>;
};

/**
 * Several serializers as one policy: the dispatcher serializes each event once per format its
 * matched webhooks use, and a webhook without a `format` gets the first. Each member names its
 * format (named_serializer), and no name is given twice.
 * ```cpp
 * herald::basic_dispatcher<herald::memory_store, herald::channel_source,
 *     herald::serializer_set<herald::json_serializer, herald::datagerry_serializer>> d(ex);
 * ```
 */
template <named_serializer... S>
requires(sizeof...(S) > 0) class serializer_set {
public:
    static constexpr std::array<std::string_view, sizeof...(S)> names{
        std::string_view(S::format)...};

    serializer_set() = default;
    explicit serializer_set(S... members)
        : members_(std::move(members)...) {}

    /// The names, the default first: `names` in order, or as prefer() arranged them.
    std::span<std::string_view const> formats() const noexcept { return shown_; }

    /**
     * Makes `format` the default (the first of formats(), what a webhook without a `format`
     * gets); the others keep their order. herald-relay's `--format` does this.
     * @return a problem naming `format` when no member has that name (nothing changes).
     */
    result<void> prefer(std::string_view format) {
        std::size_t at = names.size();
        for (std::size_t i = 0; i < names.size(); ++i)
            if (names[i] == format)
                at = i;
        if (at == names.size())
            return make_problem(error::invalid_field, "format",
                                "'" + std::string(format) + "' is not one of " +
                                    detail::list_formats(names));
        std::size_t k = 0;
        order_[k++] = at;
        for (std::size_t i = 0; i < names.size(); ++i)
            if (i != at)
                order_[k++] = i;
        for (std::size_t i = 0; i < names.size(); ++i)
            shown_[i] = names[order_[i]];
        return {};
    }

    /// The body in the format numbered `i` (an index into formats()).
    payload serialize(object_event const& e, std::size_t i) const {
        return serialize_at(e, order_[i], std::index_sequence_for<S...>{});
    }
    /// The body in the default format: a serializer_set is a serializer too.
    payload serialize(object_event const& e) const { return serialize(e, 0); }

    template <std::size_t I>
    auto& get() noexcept {
        return std::get<I>(members_);
    }
    template <std::size_t I>
    auto const& get() const noexcept {
        return std::get<I>(members_);
    }

private:
    static constexpr bool unique_names() {
        for (std::size_t i = 0; i < names.size(); ++i)
            for (std::size_t j = 0; j < i; ++j)
                if (names[i] == names[j])
                    return false;
        return true;
    }
    static_assert(unique_names(), "serializer_set: two serializers have one format name");

    template <std::size_t... I>
    payload serialize_at(object_event const& e, std::size_t i, std::index_sequence<I...>) const {
        payload out;
        (void)((i == I ? (out = std::get<I>(members_).serialize(e), true) : false) || ...);
        return out;
    }

    static constexpr std::array<std::size_t, sizeof...(S)> identity() {
        std::array<std::size_t, sizeof...(S)> out{};
        for (std::size_t i = 0; i < out.size(); ++i)
            out[i] = i;
        return out;
    }

    std::tuple<S...> members_;
    std::array<std::size_t, sizeof...(S)> order_ = identity(); // formats()[i] is member order_[i]
    std::array<std::string_view, sizeof...(S)> shown_ = names;
};

namespace detail {
/// The formats of any serializer policy: serializer_set and other multi-format ones as they
/// are, a single serializer as one format.
template <class S>
struct format_table {
    static std::span<std::string_view const> names(S const& s) {
        if constexpr (multi_format_serializer<S>) {
            return s.formats();
        } else {
            static constexpr std::array<std::string_view, 1> one{[] {
                if constexpr (named_serializer<S>)
                    return std::string_view(S::format);
                else
                    return std::string_view("default");
            }()};
            return one;
        }
    }
    static payload serialize(S const& s, object_event const& e, std::size_t i) {
        if constexpr (multi_format_serializer<S>)
            return s.serialize(e, i);
        else
            return s.serialize(e);
    }
    /// The index of a webhook's format: empty is the first; nothing when it is not offered.
    static std::optional<std::size_t> find(S const& s, std::string_view format) {
        auto const all = names(s);
        if (all.empty()) // a multi-format serializer that offers none
            return std::nullopt;
        if (format.empty())
            return 0;
        for (std::size_t i = 0; i < all.size(); ++i)
            if (all[i] == format)
                return i;
        return std::nullopt;
    }
};
} // namespace detail

} // namespace herald

#endif
