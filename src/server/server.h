// The SMTP server process: listeners, sessions, the spool, signals.
//
// One io_context served by a small pool of threads; every session is a C++20
// coroutine on its own strand. Spool writes happen on the spool's writer
// thread (group commit), never on an I/O thread. Connection limits
// (max_connections, max_connections_per_ip) answer 421 4.7.0 and close.
// SIGTERM/SIGINT: stop accepting, end idle sessions with 421, let messages
// in flight finish (up to a grace period), exit 0. SIGHUP: reload the
// config for new sessions (listener changes need a restart; logged).
// Every address bound comes from the config; tests bind loopback only.
#pragma once

#include <memory>
#include <string>

#include "base/status.h"

namespace petrel::config {
struct Config;
}

namespace petrel::server {

struct ServerOptions {
  int io_threads = 2;
};

// Runs until a stop signal. Logs "ready" once every listener is bound and
// the spool is open. Returns the process exit code.
int RunServer(std::shared_ptr<const config::Config> config,
              const ServerOptions& options);

}  // namespace petrel::server
