// The recipe of docs/building.md for a project with many translation units: they include this
// header, which tells the compiler that herald::dispatcher is instantiated elsewhere (in
// dispatcher.cpp, once), so each of them costs the headers' parsing only.
#ifndef HERALD_CONSUMER_DISPATCHER_HPP
#define HERALD_CONSUMER_DISPATCHER_HPP

#include <herald/dispatcher.hpp>

extern template class herald::basic_dispatcher<>;

#endif
