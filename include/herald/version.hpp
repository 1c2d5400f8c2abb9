#ifndef HERALD_VERSION_HPP
#define HERALD_VERSION_HPP

/// herald's version as a string, and the User-Agent every request carries.
#define HERALD_VERSION_MAJOR 0
#define HERALD_VERSION_MINOR 1
#define HERALD_VERSION_PATCH 0
#define HERALD_VERSION_STRING "0.1.0"

namespace herald {
inline constexpr char const* version = HERALD_VERSION_STRING;
inline constexpr char const* user_agent = "herald/" HERALD_VERSION_STRING;
} // namespace herald

#endif
