// Who may send mail to whom through this server (interface.md [relay]).
//
// A recipient is accepted when its domain is local or a relay domain, or the
// client is trusted. Never an open relay: the address forms that other MTAs
// have re-routed in the past ("v%ext@local", "ext!v@local", "\"v@ext\"@local")
// are refused from untrusted clients (554 5.7.1), address literals are not
// local unless they name one of our own addresses, and source routes were
// already dropped by the parser. With [local] users set, an unknown
// local-part of a local domain gets 550 5.1.1. Thread-safe after
// construction (immutable).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "smtp/address.h"
#include "smtp/reply.h"

namespace petrel::config {
struct Config;
}

namespace petrel::server {

class RelayPolicy {
 public:
  explicit RelayPolicy(const config::Config& config);

  // nullopt: accept. Otherwise the reply that refuses the recipient.
  std::optional<smtp::Reply> CheckRecipient(const smtp::Mailbox& rcpt,
                                            bool client_trusted) const;
  bool IsLocalDomain(std::string_view domain_lower) const;
  bool IsRelayDomain(std::string_view domain_lower) const;

 private:
  std::vector<std::string> local_domains_;
  std::vector<std::string> relay_domains_;
  std::vector<std::string> own_literals_;  // "[127.0.0.1]", "[ipv6:::1]"
  std::optional<std::vector<std::string>> users_;
};

}  // namespace petrel::server
