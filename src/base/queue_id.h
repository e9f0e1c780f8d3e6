// Queue IDs: the name of one accepted message in logs, the spool and replies
// ("250 2.0.0 Ok: queued as ID").
//
// 16 characters from [0-9A-Z] without I, L, O, U (Crockford base32): 10 for
// the microseconds since the epoch at creation, 6 for a per-process random
// start incremented per ID. Sortable by arrival, unique across restarts
// without stored state. Thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace petrel {

std::string NewQueueId();
bool IsValidQueueId(std::string_view id);

}  // namespace petrel
