// The delivery agent: one attempt at a spooled message's pending recipients.
//
// For each pending recipient: route it (router.h); deliver local ones to
// their Maildir, the rest over SMTP to the next hop (static route, or MX
// hosts in preference order, falling back to the next host when one is
// unreachable or answers 4xx/421 at connect; implicit MX; null MX and
// NXDOMAIN fail at once). Every outcome is persisted in the spool as it
// arrives (SmtpConnection reports each transaction before it starts the
// next), so a crash never re-sends a delivered recipient. Recipients that
// failed in this attempt get one DSN (RFC 3464) per message, queued from the
// null sender; pending recipients older than delay_warning_after get one
// "delayed" DSN; after max_queue_lifetime the rest fail with 4.4.7.
// An unparseable or unroutable recipient fails alone (seed 003); nothing one
// message does blocks another.
// Thread-safe: attempts of different messages run concurrently.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <functional>
#include <memory>
#include <string>

#include "base/status.h"
#include "queue/scheduler.h"

namespace petrel {
class BlockingPool;
}
namespace petrel::config {
struct Config;
}
namespace petrel::spool {
class Spool;
}

namespace petrel::delivery {

class Agent : public queue::DeliveryAgent {
 public:
  // `petrel queue bounce`: fails every pending recipient of `id` now
  // (5.0.0, "bounced by the operator") and sends the DSN.
  virtual boost::asio::awaitable<Status> BounceAll(std::string id) = 0;
};

// Called with the queue ID of each message the agent queues itself (DSNs).
using OnNewMessage = std::function<void(const std::string& id)>;

// Fails only if the DNS resolver cannot be set up (names the [dns] key).
Result<std::unique_ptr<Agent>> NewAgent(
    boost::asio::io_context& io, std::shared_ptr<const config::Config> config,
    spool::Spool& spool, BlockingPool& pool, OnNewMessage on_new_message);

}  // namespace petrel::delivery
