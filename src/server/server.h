// The SMTP server: listeners and sessions over the spool.
//
// One io_context (the caller's) served by a small pool of threads; every
// session is a C++20 coroutine on its own strand. Spool writes happen on the
// spool's writer thread (group commit), never on an I/O thread. Connection
// limits (max_connections, max_connections_per_ip) answer 421 4.7.0 and
// close. Stopping: StopAccepting() closes the listeners, StopSessions()
// ends idle sessions with 421 and lets messages in flight finish; the
// caller waits for sessions() to reach 0 (with a grace period). Reload()
// takes a new config (and TLS certificate) for new sessions; listener
// changes need a restart. Every address bound comes from the config.
// Thread-safe.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "base/status.h"

namespace boost::asio {
class io_context;
}
namespace petrel::config {
struct Config;
}
namespace petrel::spool {
class Spool;
}

namespace petrel::server {

class SmtpServer {
 public:
  // Called (on an I/O thread) after a message was committed to the spool.
  using OnQueued = std::function<void(const std::string& id)>;

  // Binds every listener (an error names the address) and starts accepting.
  static Result<std::unique_ptr<SmtpServer>> Start(
      boost::asio::io_context& io, std::shared_ptr<const config::Config> config,
      spool::Spool& spool, OnQueued on_queued);
  ~SmtpServer();

  Status Reload(std::shared_ptr<const config::Config> config);
  void StopAccepting();
  void StopSessions();
  long sessions() const;

  struct Impl;

 private:
  explicit SmtpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace petrel::server
