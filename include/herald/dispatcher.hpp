#ifndef HERALD_HPP_DISPATCHER
#define HERALD_HPP_DISPATCHER

#include <herald/basic_dispatcher.hpp>
#include <herald/transport/http_transport.hpp>

namespace herald {

/// The dispatcher with every default: memory store and log, in-process channel, herald's JSON
/// envelope, HTTP transport.
using dispatcher = basic_dispatcher<>;

} // namespace herald

#endif
