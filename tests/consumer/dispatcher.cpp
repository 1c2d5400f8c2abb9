// The one translation unit that instantiates herald::dispatcher (see dispatcher.hpp).
#include "dispatcher.hpp"

template class herald::basic_dispatcher<>;
