// What a receiver answers: the input is the byte stream of a connection, read with the
// transport's detail::response_reader through Beast's http::read, with the transport's header
// limit and drain cap, response after response while the connection stays reusable (the next
// exchange on a pooled connection starts from what is left in the buffer). The stream is read
// twice, all at once and a few bytes at a time. Properties, besides not crashing: the outcome
// the transport logs does not depend on how the bytes arrive, and the excerpt, Location and
// Retry-After stay within their caps.
#include "fuzz.hpp"

#include <herald/transport/http_transport.hpp>

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>

#include <algorithm>
#include <limits>
#include <string>
#include <vector>

namespace herald_fuzz_http_response {

// A SyncReadStream over fixed bytes, giving at most `step` bytes per read, then end of file.
class byte_stream {
public:
    byte_stream(std::string_view bytes, std::size_t step)
        : rest_(bytes)
        , step_(step) {}

    template <class MutableBufferSequence>
    std::size_t read_some(MutableBufferSequence const& buffers, boost::system::error_code& ec) {
        if (rest_.empty()) {
            ec = boost::asio::error::eof;
            return 0;
        }
        ec = {};
        auto const n = boost::asio::buffer_copy(
            buffers, boost::asio::buffer(rest_.data(), std::min(step_, rest_.size())));
        rest_.remove_prefix(n);
        return n;
    }
    template <class MutableBufferSequence>
    std::size_t read_some(MutableBufferSequence const& buffers) {
        boost::system::error_code ec;
        auto const n = read_some(buffers, ec);
        if (ec)
            throw boost::system::system_error(ec);
        return n;
    }

private:
    std::string_view rest_;
    std::size_t step_;
};

struct exchange {
    herald::send_result res;
    boost::system::error_code ec;
    // what the transport logs for ec: Beast reports some malformed input differently when it
    // arrives in pieces (partial_message for bad_version), herald's error is the same
    boost::system::error_code logged;
    bool header_done = false;
    bool keep_alive = false;
    bool drain_exceeded = false;
    friend bool operator==(exchange const& a, exchange const& b) {
        return a.res.status == b.res.status && a.res.excerpt == b.res.excerpt &&
               a.res.location == b.res.location && a.res.retry_after == b.res.retry_after &&
               a.logged == b.logged && a.header_done == b.header_done &&
               a.keep_alive == b.keep_alive && a.drain_exceeded == b.drain_exceeded;
    }
};

// The transport's defaults are larger; smaller caps let short inputs reach them.
constexpr std::size_t max_header = 2048;
constexpr std::size_t max_excerpt = 64;
constexpr std::size_t max_drain = 1024;

inline std::vector<exchange> read_all(std::string_view bytes, std::size_t step) {
    byte_stream stream(bytes, step);
    boost::beast::flat_buffer buffer;
    std::vector<exchange> out;
    for (int i = 0; i < 8; ++i) {
        exchange x;
        std::string raw;
        herald::detail::response_reader reader(x.res, raw, max_excerpt, max_drain);
        reader.header_limit(static_cast<std::uint32_t>(max_header));
        reader.body_limit(std::numeric_limits<std::uint64_t>::max());
        boost::beast::http::read(stream, buffer, reader, x.ec);
        x.header_done = reader.is_header_done();
        if (x.ec && !x.header_done) {
            // as the transport does: a head that failed to parse gave no status
            x.res.status = 0;
            x.res.location.clear();
            x.res.retry_after.clear();
        }
        x.keep_alive = !x.ec && reader.keep_alive();
        x.drain_exceeded = reader.drain_exceeded();
        herald::detail::append_utf8(x.res.excerpt, raw);
        if (x.ec)
            x.logged = herald::detail::describe_io_error(x.ec, "while waiting for the response",
                                                         std::chrono::seconds(10))
                           .first;
        out.push_back(std::move(x));
        if (!out.back().keep_alive)
            break;
    }
    return out;
}

} // namespace herald_fuzz_http_response

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    using namespace herald_fuzz_http_response;
    auto const bytes = herald_fuzz::text_of(data, size);
    auto const whole = read_all(bytes, std::max<std::size_t>(size, 1));
    auto const split = read_all(bytes, 3);
    HERALD_FUZZ_CHECK("http_response", whole == split, bytes);
    for (auto const& x : whole) {
        // the excerpt is UTF-8 made safe: a replaced byte may take three
        HERALD_FUZZ_CHECK("http_response", x.res.excerpt.size() <= 3 * max_excerpt, bytes);
        HERALD_FUZZ_CHECK("http_response", x.res.location.size() <= 3 * 2048, bytes);
        HERALD_FUZZ_CHECK("http_response", x.res.retry_after.size() <= 128, bytes);
    }
    return 0;
}
