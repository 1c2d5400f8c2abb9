#ifndef HERALD_ERROR_HPP
#define HERALD_ERROR_HPP

#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

#include <ostream>
#include <string>
#include <type_traits>
#include <utility>

namespace herald {

/** The errors herald reports, as a `boost::system` error enum. */
enum class error {
    invalid_field = 1,  ///< a field failed validation (problem::field names it)
    duplicate_name,     ///< another webhook already has this name (case-insensitive)
    not_found,          ///< no webhook with this id
    queue_full,         ///< the bounded intake queue is full; try again or use async_publish
    stopped,            ///< the dispatcher is stopping or stopped
    connect_timeout,    ///< the connection was not established within the connect timeout
    timeout,            ///< the request did not complete within the total timeout
    redirect_refused,   ///< the receiver answered 3xx; redirects are never followed
    http_status,        ///< the receiver answered with a status that is not 2xx
    response_too_large, ///< the response headers exceeded the transport's cap
    malformed_response, ///< the response could not be parsed as HTTP/1.1
    unsupported_scheme, ///< the transport cannot send to this URL's scheme
    shutdown,           ///< the attempt was abandoned because the dispatcher shut down
    tls_failed,         ///< the TLS handshake failed or the certificate was rejected
    address_refused,    ///< the destination is not globally routable and not allowed (SSRF)
    storage_failed,     ///< a durable store or log could not open, read or write its file
};

namespace detail {
class error_category_impl final : public boost::system::error_category {
public:
    constexpr error_category_impl() noexcept
        : boost::system::error_category(0x6865726c64ull) {}
    char const* name() const noexcept override { return "herald"; }
    std::string message(int ev) const override { return message(ev, nullptr, 0); }
    char const* message(int ev, char*, std::size_t) const noexcept override {
        switch (static_cast<error>(ev)) {
        case error::invalid_field:
            return "invalid field";
        case error::duplicate_name:
            return "duplicate name";
        case error::not_found:
            return "not found";
        case error::queue_full:
            return "intake queue is full";
        case error::stopped:
            return "dispatcher is stopped";
        case error::connect_timeout:
            return "connect timeout";
        case error::timeout:
            return "request timed out";
        case error::redirect_refused:
            return "redirect not followed";
        case error::http_status:
            return "non-2xx response";
        case error::response_too_large:
            return "response too large";
        case error::malformed_response:
            return "malformed response";
        case error::unsupported_scheme:
            return "unsupported URL scheme";
        case error::shutdown:
            return "abandoned at shutdown";
        case error::tls_failed:
            return "TLS failed";
        case error::address_refused:
            return "destination address refused";
        case error::storage_failed:
            return "storage failed";
        }
        return "unknown herald error";
    }
};
} // namespace detail

/** The category of herald::error. */
inline boost::system::error_category const& error_category() noexcept {
    static constexpr detail::error_category_impl instance;
    return instance;
}

inline boost::system::error_code make_error_code(error e) noexcept {
    return {static_cast<int>(e), error_category()};
}

/**
 * What went wrong, for people: an error code, the field it concerns (empty when none)
 * and a sentence naming the field and the problem. The error type of every herald
 * `boost::system::result`.
 */
struct problem {
    boost::system::error_code code{};
    std::string field{};
    std::string message{};

    /// "field: message", or the message alone when no field applies.
    std::string what() const { return field.empty() ? message : field + ": " + message; }
};

inline problem make_problem(error e, std::string field, std::string message) {
    return problem{make_error_code(e), std::move(field), std::move(message)};
}

inline std::ostream& operator<<(std::ostream& os, problem const& p) {
    return os << p.what();
}

/// Lets `result<T, problem>::value()` throw a system_error carrying the message.
[[noreturn]] inline void throw_exception_from_error(problem const& p,
                                                    boost::source_location const& loc) {
    boost::throw_exception(boost::system::system_error(p.code, p.what()), loc);
}

/// The result type of validation and parsing: a value or a problem, never an exception.
template <class T>
using result = boost::system::result<T, problem>;

} // namespace herald

namespace boost::system {
template <>
struct is_error_code_enum<herald::error> : std::true_type {};
} // namespace boost::system

#endif
