// Where a recipient's mail goes next (interface.md [relay], [routes]).
//
// In order: an address that does not parse fails at once (5.1.3, seed 003);
// a local domain goes to the local delivery agent; an address literal goes
// to that address (unless it is one of ours: then it is local); a static
// route (exact domain, then the longest ".parent" suffix, then "*" for
// non-local domains) names host and port; anything else is looked up in the
// DNS (MX, then implicit MX). Pure; thread-safe (immutable input).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "config/config.h"
#include "smtp/enhanced_status.h"

namespace petrel::delivery {

struct RouteDecision {
  enum class Kind { kLocal, kStatic, kMx, kFail };
  Kind kind = Kind::kFail;
  std::string domain;      // recipient domain, lower-cased (kLocal, kMx)
  std::string user;        // local-part for kLocal: lower-cased, no +detail
  std::string host;        // kStatic: host name or IP literal (no brackets)
  std::uint16_t port = 0;  // kStatic / kMx: port to connect to
  // kStatic / kMx: [tls_policy] for the recipient domain (exact, longest
  // ".parent", "*"), else [delivery] tls_policy.
  config::TlsPolicy tls_policy = config::TlsPolicy::kMay;
  // kFail: why.
  smtp::EnhancedStatus status;
  std::string diagnostic;

  // Recipients with equal keys share a next hop (and a connection); the
  // TLS policy is part of the key.
  std::string NextHopKey() const;
};

RouteDecision Route(const config::Config& config, std::string_view address);

}  // namespace petrel::delivery
