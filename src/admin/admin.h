// The admin socket: how `petrel queue ...` and `petrel sendmail` reach the
// running server (interface.md: commands talk over `server.admin_socket`).
//
// Protocol (one request per connection, on a Unix stream socket that only
// its owner may use, mode 0600):
//   client: one line of JSON, {"cmd": "...", ...}, then, when the request
//           has "payload_octets": N, exactly N octets (a message's content)
//   server: one line of JSON, {"ok": true, ...} or {"ok": false,
//           "error": "..."}; then it closes.
// Requests are at most 1 MiB of JSON; payloads at most the configured
// message size limit. Untrusted-ish input (local users with access to the
// socket); every error is a clear message, never a crash.
// Thread safety: AdminServer runs on the io_context given; the handler is
// called on it, one request at a time per connection.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <memory>
#include <string>

#include "base/status.h"

namespace petrel::admin {

class Handler {
 public:
  virtual ~Handler() = default;
  // `request` is the JSON line; `payload` the octets that followed it.
  // Returns the JSON reply line (without newline).
  virtual boost::asio::awaitable<std::string> Handle(std::string request,
                                                     std::string payload) = 0;
};

class AdminServer {
 public:
  // Binds `path` (removing a stale socket file first). Fails with a Status
  // that names the path.
  static Result<std::unique_ptr<AdminServer>> Listen(
      boost::asio::io_context& io, const std::string& path, Handler& handler,
      std::uint64_t max_payload_octets);
  ~AdminServer();
  void Close();

  struct Impl;

 private:
  explicit AdminServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Client side (blocking; for the CLI): sends one request, returns the reply
// line. Unavailable if nothing listens at `path` ("is petrel running?").
Result<std::string> Call(const std::string& path, const std::string& request,
                         const std::string& payload = {});

}  // namespace petrel::admin
