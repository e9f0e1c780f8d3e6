// Credentials for AUTH towards smarthosts: the file of `[delivery]
// credentials`, in Postfix's sasl_passwd format, one next hop a line:
//
//   [smarthost.example.net]:587  user@example.net:secret password
//   relay.example.org            relayuser:pw
//
// The key is "[host]:port", "host:port" or "host" (any port); the value is
// "user:password" (the password is everything after the first ':'). '#'
// comments and blank lines are ignored. Errors name the file and line; the
// passwords never appear in them. Pure after loading; thread-compatible.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"
#include "delivery/client_machine.h"

namespace petrel::delivery {

class Credentials {
 public:
  static Result<Credentials> Load(const std::string& path);
  static Result<Credentials> Parse(std::string_view text,
                                   const std::string& path);

  // For a next hop: "host:port" first, then "host".
  std::optional<ClientCredentials> Find(std::string_view host,
                                        std::uint16_t port) const;
  bool empty() const { return entries_.empty(); }

 private:
  std::map<std::string, ClientCredentials, std::less<>> entries_;
};

}  // namespace petrel::delivery
