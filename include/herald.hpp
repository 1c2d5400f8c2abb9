#ifndef HERALD_HPP
#define HERALD_HPP

/// The whole library. Include single headers instead to keep Beast out of a translation unit
/// that does not send (everything but herald/http_transport.hpp and herald/dispatcher.hpp).

#include <herald/address_policy.hpp>
#include <herald/basic_dispatcher.hpp>
#include <herald/channel_source.hpp>
#include <herald/circuit_breaker.hpp>
#include <herald/concepts.hpp>
#include <herald/datagerry_serializer.hpp>
#include <herald/delivery.hpp>
#include <herald/dispatcher.hpp>
#include <herald/dispatcher_params.hpp>
#include <herald/error.hpp>
#include <herald/event.hpp>
#include <herald/http_transport.hpp>
#include <herald/json_serializer.hpp>
#include <herald/jsonl_log.hpp>
#include <herald/log.hpp>
#include <herald/memory_log.hpp>
#include <herald/memory_store.hpp>
#include <herald/recording_transport.hpp>
#include <herald/retry.hpp>
#include <herald/scheduler.hpp>
#include <herald/signature.hpp>
#include <herald/time.hpp>
#include <herald/transport.hpp>
#include <herald/version.hpp>
#include <herald/webhook.hpp>

#endif
