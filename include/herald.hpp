#ifndef HERALD_HPP
#define HERALD_HPP

/// The whole library. Include single headers instead to keep Beast out of a translation unit
/// that does not send (everything but herald/transport/http_transport.hpp and
/// herald/dispatcher.hpp).

#include <herald/address_policy.hpp>
#include <herald/basic_dispatcher.hpp>
#include <herald/concepts.hpp>
#include <herald/delivery.hpp>
#include <herald/dispatcher.hpp>
#include <herald/dispatcher_params.hpp>
#include <herald/engine/attempt_decision.hpp>
#include <herald/engine/circuit_breaker.hpp>
#include <herald/engine/lifecycle.hpp>
#include <herald/engine/retry.hpp>
#include <herald/engine/scheduler.hpp>
#include <herald/error.hpp>
#include <herald/event.hpp>
#include <herald/header_rules.hpp>
#include <herald/log.hpp>
#include <herald/log/jsonl_log.hpp>
#include <herald/log/log_failures.hpp>
#include <herald/log/memory_log.hpp>
#include <herald/log/metered_log.hpp>
#include <herald/log/tee_log.hpp>
#include <herald/manual_clock.hpp>
#include <herald/serializer/datagerry_serializer.hpp>
#include <herald/serializer/json_serializer.hpp>
#include <herald/serializer/serializer_set.hpp>
#include <herald/signature.hpp>
#include <herald/source/channel_source.hpp>
#include <herald/source/jsonl_source.hpp>
#include <herald/store/cached_table.hpp>
#include <herald/store/memory_store.hpp>
#include <herald/store/null_journal.hpp>
#include <herald/time.hpp>
#include <herald/transport.hpp>
#include <herald/transport/http_transport.hpp>
#include <herald/transport/http_transport_params.hpp>
#include <herald/transport/recording_transport.hpp>
#include <herald/version.hpp>
#include <herald/webhook.hpp>

#endif
