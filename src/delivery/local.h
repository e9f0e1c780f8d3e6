// Local delivery of one recipient of a local domain: the Maildir named by
// [local] maildir (maildir.h), durable before it reports delivered. With
// [local] users set, an unknown user fails with 5.1.1 (mail submitted with
// `petrel sendmail` is not checked at RCPT). Blocking (file I/O and fsync):
// call it off the I/O threads. Thread-safe.
#pragma once

#include <cstddef>
#include <string_view>

#include "delivery/outcome.h"
#include "delivery/router.h"

namespace petrel::config {
struct Config;
}
namespace petrel::spool {
struct Envelope;
}

namespace petrel::delivery {

Outcome DeliverLocal(const config::Config& config,
                     const spool::Envelope& envelope, std::size_t index,
                     const RouteDecision& route, std::string_view content);

}  // namespace petrel::delivery
