#ifndef HERALD_SHARED_TEXT_HPP
#define HERALD_SHARED_TEXT_HPP

#include <compare>
#include <cstddef>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace herald {

/**
 * An immutable string that shares its characters instead of copying them: a view plus the
 * owner that keeps them alive. A log entry's ids, webhook name and URL are `shared_text`s that
 * point into the event and the webhook snapshot the delivery already holds (`alias`), so an
 * attempt's entry costs a reference count per field, not an allocation; an entry read back
 * from a database owns its text (built from a `std::string`). Copies share; nothing mutates.
 *
 * It reads like a `std::string_view` and compares with strings and views; it converts
 * implicitly to either (to a `std::string` by copying, as `str()` does).
 */
class shared_text {
    template <class S>
    static constexpr bool text_like =
        std::is_convertible_v<S const&, std::string_view> && !std::is_same_v<S, shared_text>;

public:
    shared_text() = default;
    shared_text(std::string s) { own(std::move(s)); }
    shared_text(std::string_view s) { copy(s); }
    shared_text(char const* s) { copy(s); }
    shared_text(shared_text const&) = default;
    shared_text& operator=(shared_text const&) = default;
    /// A moved-from text is empty (its view does not outlive the owner it gave away).
    shared_text(shared_text&& o) noexcept
        : owner_(std::move(o.owner_))
        , view_(std::exchange(o.view_, std::string_view(""))) {}
    shared_text& operator=(shared_text&& o) noexcept {
        owner_ = std::move(o.owner_);
        view_ = std::exchange(o.view_, std::string_view(""));
        return *this;
    }

    /// The text `s`, a member of what `owner` holds, kept alive by `owner`: no copy.
    template <class T>
    static shared_text alias(std::shared_ptr<T const> const& owner, std::string const& s) {
        shared_text t;
        if (!s.empty()) {
            t.owner_ = owner;
            t.view_ = s;
        }
        return t;
    }

    std::string_view view() const noexcept { return view_; }
    operator std::string_view() const noexcept { return view_; }
    /// A copy, where a `std::string` is wanted (a container of ids, say).
    operator std::string() const { return std::string(view_); }
    std::string str() const { return std::string(view_); }

    char const* data() const noexcept { return view_.data(); }
    std::size_t size() const noexcept { return view_.size(); }
    bool empty() const noexcept { return view_.empty(); }
    bool starts_with(std::string_view p) const noexcept { return view_.starts_with(p); }

    friend bool operator==(shared_text const& a, shared_text const& b) noexcept {
        return a.view_ == b.view_;
    }
    friend std::strong_ordering operator<=>(shared_text const& a, shared_text const& b) noexcept {
        return a.view_ <=> b.view_;
    }
    template <class S>
    requires text_like<S>
    friend bool operator==(shared_text const& a, S const& b) noexcept {
        return a.view_ == std::string_view(b);
    }
    template <class S>
    requires text_like<S>
    friend std::strong_ordering operator<=>(shared_text const& a, S const& b) noexcept {
        return a.view_ <=> std::string_view(b);
    }
    /// Concatenation makes a `std::string`, as with `std::string`s.
    template <class S>
    requires text_like<S>
    friend std::string operator+(S const& a, shared_text const& b) { return cat(a, b.view_); }
    template <class S>
    requires text_like<S>
    friend std::string operator+(shared_text const& a, S const& b) { return cat(a.view_, b); }
    friend std::string operator+(shared_text const& a, shared_text const& b) {
        return cat(a.view_, b.view_);
    }
    friend std::ostream& operator<<(std::ostream& os, shared_text const& t) {
        return os << t.view_;
    }

private:
    static std::string cat(std::string_view a, std::string_view b) {
        std::string out;
        out.reserve(a.size() + b.size());
        out.append(a).append(b);
        return out;
    }

    /// One allocation: the characters and the reference count together.
    void copy(std::string_view s) {
        if (s.empty())
            return;
        auto p = std::make_shared_for_overwrite<char[]>(s.size());
        s.copy(p.get(), s.size());
        view_ = std::string_view(p.get(), s.size());
        owner_ = std::move(p);
    }

    /// One allocation: the string (its characters move) and the reference count together.
    void own(std::string s) {
        if (s.empty())
            return;
        auto p = std::make_shared<std::string const>(std::move(s));
        view_ = *p;
        owner_ = std::move(p);
    }

    std::shared_ptr<void const> owner_{};
    // Never a null data(): an empty text is "", as an empty std::string is (C APIs such as
    // sqlite3_bind_text take a null pointer for NULL).
    std::string_view view_{""};
};

} // namespace herald

#endif
