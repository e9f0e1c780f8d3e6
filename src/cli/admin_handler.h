// What the running server answers on its admin socket (admin/admin.h):
//   {"cmd":"ping"}
//   {"cmd":"list"}                      -> {"ok":true,"messages":[...]}
//   {"cmd":"show","id":ID}              ->
//   {"ok":true,"message":{...},"headers":"..."}
//   {"cmd":"flush"[,"id":ID]}
//   {"cmd":"hold"|"release"|"delete"|"bounce","id":ID}
//   {"cmd":"submit","sender":S,"recipients":[R...],"payload_octets":N} + N
//       octets of message -> {"ok":true,"id":ID} once durably queued
// Blocking spool work runs on the BlockingPool. Thread-safe.
#pragma once

#include <boost/asio/io_context.hpp>
#include <memory>

#include "admin/admin.h"

namespace petrel {
class BlockingPool;
}
namespace petrel::config {
struct Config;
}
namespace petrel::spool {
class Spool;
}
namespace petrel::queue {
class Scheduler;
}
namespace petrel::delivery {
class Agent;
}

namespace petrel::cli {

class AdminHandler : public admin::Handler {
 public:
  AdminHandler(boost::asio::io_context& io,
               std::shared_ptr<const config::Config> config,
               spool::Spool& spool, queue::Scheduler& scheduler,
               delivery::Agent& agent, BlockingPool& pool);
  boost::asio::awaitable<std::string> Handle(std::string request,
                                             std::string payload) override;

 private:
  boost::asio::io_context& io_;
  std::shared_ptr<const config::Config> config_;
  spool::Spool& spool_;
  queue::Scheduler& scheduler_;
  delivery::Agent& agent_;
  BlockingPool& pool_;
};

}  // namespace petrel::cli
