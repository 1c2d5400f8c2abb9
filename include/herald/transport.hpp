#ifndef HERALD_TRANSPORT_HPP
#define HERALD_TRANSPORT_HPP

#include <herald/address_policy.hpp>
#include <herald/time.hpp>

#include <boost/system/error_code.hpp>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace herald {

struct http_header {
    std::string name{};
    std::string value{};
};

/**
 * One POST to send. The body is shared with every other delivery of the same event, so a
 * transport may keep the pointer for as long as it needs the bytes.
 */
struct http_request {
    std::string url{};
    std::string content_type{};
    std::shared_ptr<std::string const> body{};
    std::vector<http_header> headers{}; ///< herald's headers; a transport adds Host, Content-Length
    duration connect_timeout{0};        ///< 0: the transport's default
    duration timeout{0};                ///< total for connect, send and receive; 0: default
    bool verify_tls = true;             ///< false: accept any certificate (the log says so)
    std::optional<std::string> ca_file{}; ///< PEM bundle to trust instead of the system's
    std::vector<cidr> allow_private{}; ///< ranges this request may reach beyond the global policy

    /// The value of a header this request carries, "" when absent (case-insensitive).
    std::string_view header(std::string_view name) const {
        for (auto const& h : headers)
            if (h.name.size() == name.size() &&
                std::equal(h.name.begin(), h.name.end(), name.begin(),
                           [](char a, char b) { return (a | 0x20) == (b | 0x20); }))
                return h.value;
        return {};
    }
};

/**
 * What came back. Either a response arrived (`status` != 0, `ec` empty) or the request failed
 * before one did (`status` == 0, `ec` and `error` say why). A non-2xx status is an outcome,
 * not an error.
 */
struct send_result {
    unsigned status = 0;
    boost::system::error_code ec{};
    std::string error{};       ///< readable reason when ec is set
    std::string excerpt{};     ///< the start of the response body, capped by the transport
    std::string location{};    ///< the Location header of a 3xx, which is never followed
    std::string retry_after{}; ///< the Retry-After header, verbatim
    std::string note{};        ///< worth knowing although a status arrived (body cut off)
    duration elapsed{0};

    bool ok() const { return !ec && status >= 200 && status < 300; }
};

} // namespace herald

#endif
