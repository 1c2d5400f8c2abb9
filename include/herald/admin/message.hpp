#ifndef HERALD_ADMIN_MESSAGE_HPP
#define HERALD_ADMIN_MESSAGE_HPP

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

namespace herald::admin {

/// A request to the admin server, body read in full (at most server_params::body_limit).
using request = boost::beast::http::request<boost::beast::http::string_body>;
/// An answer of the admin server, Content-Length set.
using response = boost::beast::http::response<boost::beast::http::string_body>;

} // namespace herald::admin

#endif
