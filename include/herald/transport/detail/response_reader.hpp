#ifndef HERALD_TRANSPORT_DETAIL_RESPONSE_READER_HPP
#define HERALD_TRANSPORT_DETAIL_RESPONSE_READER_HPP

// http_transport's response parser: what the log keeps of a response, without its fields.

#include <herald/detail/utf8.hpp>
#include <herald/transport.hpp>

#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/field.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace herald::detail {

/**
 * Reads a response without keeping its header fields: the status, Location and Retry-After
 * go to the send_result, the start of the body to `raw`, and the rest is only counted (up to
 * `max_drain`, then the read stops). No allocation per header field.
 */
class response_reader : public boost::beast::http::basic_parser<false> {
public:
    response_reader(send_result& res, std::string& raw, std::size_t max_excerpt,
                    std::size_t max_drain)
        : res_(res)
        , raw_(raw)
        , max_excerpt_(max_excerpt)
        , max_drain_(max_drain) {}

    /// True when the body was longer than max_drain and the read stopped there.
    bool drain_exceeded() const { return drain_exceeded_; }

private:
    using string_view = boost::beast::string_view;
    using error_code = boost::system::error_code;

    void on_request_impl(boost::beast::http::verb, string_view, string_view, int,
                         error_code& ec) override {
        ec = boost::beast::http::error::bad_version;
    }
    void on_response_impl(int code, string_view, int, error_code&) override {
        res_.status = static_cast<unsigned>(code);
    }
    void on_field_impl(boost::beast::http::field name, string_view, string_view value,
                       error_code&) override {
        if (name == boost::beast::http::field::location) {
            res_.location.clear();
            append_utf8(res_.location,
                        std::string_view(value.data(), std::min<std::size_t>(value.size(), 2048)));
        } else if (name == boost::beast::http::field::retry_after) {
            res_.retry_after.assign(value.data(), std::min<std::size_t>(value.size(), 128));
        }
    }
    void on_header_impl(error_code&) override {}
    void on_body_init_impl(boost::optional<std::uint64_t> const&, error_code&) override {}
    std::size_t on_body_impl(string_view body, error_code& ec) override { return take(body, ec); }
    void on_chunk_header_impl(std::uint64_t, string_view, error_code&) override {}
    std::size_t on_chunk_body_impl(std::uint64_t, string_view body, error_code& ec) override {
        return take(body, ec);
    }
    void on_finish_impl(error_code&) override {}

    std::size_t take(string_view body, error_code& ec) {
        if (raw_.size() < max_excerpt_)
            raw_.append(body.data(), std::min(body.size(), max_excerpt_ - raw_.size()));
        drained_ += body.size();
        if (drained_ > max_drain_) {
            drain_exceeded_ = true;
            ec = boost::beast::http::error::body_limit;
        }
        return body.size();
    }

    send_result& res_;
    std::string& raw_;
    std::size_t max_excerpt_;
    std::size_t max_drain_;
    std::size_t drained_ = 0;
    bool drain_exceeded_ = false;
};

/// Interim (1xx) responses read and dropped before a final one; one more fails the attempt.
inline constexpr std::size_t max_interim_responses = 16;

} // namespace herald::detail

#endif
