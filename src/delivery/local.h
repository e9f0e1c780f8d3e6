// Local delivery of one recipient of a local domain: alias expansion
// ([local] aliases, aliases.h), then the Maildir named by [local] maildir
// (maildir.h) of each local target, durable before it reports delivered.
// Targets in other domains are handed back in `forward`: the caller queues
// one forwarded copy for them (only when the outcome is delivered). With
// [local] users set, an unknown user with no alias fails with 5.1.1 (mail
// submitted with `petrel sendmail` is not checked at RCPT).
// Known limit: when an alias has several local targets and a later one
// fails temporarily, the retry delivers again to the earlier ones.
// Blocking (file I/O and fsync): call it off the I/O threads. Thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "delivery/aliases.h"
#include "delivery/outcome.h"
#include "delivery/router.h"

namespace petrel::config {
struct Config;
}
namespace petrel::spool {
struct Envelope;
}

namespace petrel::delivery {

Outcome DeliverLocal(const config::Config& config, const Aliases& aliases,
                     const spool::Envelope& envelope, std::size_t index,
                     const RouteDecision& route, std::string_view content,
                     std::vector<std::string>& forward);

}  // namespace petrel::delivery
