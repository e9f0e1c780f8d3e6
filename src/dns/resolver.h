// DNS lookups for delivery: MX records (RFC 5321 5.1, RFC 7505 null MX) and
// the A/AAAA addresses of a host, through c-ares. resolver.cc is the only
// file that includes ares.h.
//
// One Resolver owns one c-ares channel and one thread that runs its event
// loop; requests are queued to that thread. Every lookup calls its callback
// exactly once, on the resolver thread, also when the Resolver is destroyed
// with the lookup still in flight (then with kRetry). Callbacks must be short
// and must not throw: post the result to your own executor. Thread safety:
// Lookup* may be called from any number of threads at once; the *Sync
// wrappers block the caller and must not be called from a callback.
//
// Queries go to the configured servers (UDP, and TCP when an answer is
// truncated) or, with none configured, to those in /etc/resolv.conf. Names
// are sent as given: no search list, no /etc/hosts. They are
// case-insensitive; one trailing dot is allowed. A name that is not a valid
// host name (RFC 1123 labels: letters, digits, '-' inside, '_' as Postfix
// allows; at most 253 octets; labels of 1 to 63; not all-numeric at the end;
// ASCII only, so IDNs must arrive as A-labels) fails at once with kFail and
// is never sent. Answers are untrusted input: MX host names are validated
// the same way and invalid ones dropped.
//
// Results and whether they are transient (as Postfix src/dns/dns_lookup.c):
//   kOk        the records were found.                          -
//   kNotFound  NXDOMAIN: the name does not exist.             permanent
//              (delivery: 5.1.2)
//   kNoData    the name exists but has no record of the type. permanent
//              For MX: use the implicit MX, the domain's own A/AAAA
//              (RFC 5321 5.1). For addresses: the host has none.
//   kNullMx    MX only: the domain says it accepts no mail     permanent
//              (RFC 7505 "MX 0 ."; delivery: 5.1.10).
//   kRetry     SERVFAIL, REFUSED, timeout, no server reachable, transient
//              a malformed or truncated answer, out of memory,
//              resolver shut down.
//   kFail      the name is invalid, or every MX host in the   permanent
//              answer is an invalid name.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace petrel::dns {

enum class DnsStatus { kOk, kNotFound, kNoData, kNullMx, kRetry, kFail };

// "ok", "not found", "no data", "null MX", "retry", "fail".
std::string_view DnsStatusName(DnsStatus status);
// True only for kRetry: the one result that asks to try again later.
inline bool IsTransient(DnsStatus status) {
  return status == DnsStatus::kRetry;
}

struct MxHost {
  uint16_t preference = 0;
  std::string host;  // lower case, no trailing dot

  friend bool operator==(const MxHost&, const MxHost&) = default;
};

struct MxResult {
  DnsStatus status = DnsStatus::kFail;
  // kOk only: never empty, ascending preference, equal preferences in random
  // order (RFC 5321 5.1) so that load spreads over them.
  std::vector<MxHost> hosts;
  // Not kOk: for the log and the DSN, e.g. "Name service error for
  // name=example.test type=MX: Host not found". Empty with kOk.
  std::string detail;
};

struct AddrResult {
  DnsStatus status = DnsStatus::kFail;  // never kNullMx
  // kOk only: never empty; IPv4 literals ("192.0.2.1") first, then IPv6
  // ("2001:db8::1"), each in the server's order, duplicates removed.
  // kOk if either query found addresses, even if the other failed.
  std::vector<std::string> addresses;
  std::string detail;  // as in MxResult
};

struct ResolverOptions {
  // Name servers as IP literals: "127.0.0.1", "127.0.0.1:5353", "::1",
  // "[::1]", "[::1]:53". Port 53 when omitted. Host names are not accepted
  // (they would need a resolver). Empty: the servers in /etc/resolv.conf.
  std::vector<std::string> servers;
  // Time to wait for the first answer from one server; c-ares doubles it on
  // every later round over the server list. Default 5s as res_init(3).
  std::chrono::milliseconds timeout{5000};
  // Rounds over the server list before giving up with kRetry. Default 2 as
  // res_init(3). Worst case for one query with one server and the
  // defaults: 5s + 10s. A and AAAA run in parallel.
  int tries = 2;
};

class Resolver {
 public:
  using MxCallback = std::function<void(MxResult)>;
  using AddrCallback = std::function<void(AddrResult)>;

  // Starts the resolver thread. Fails (kInvalidArgument) on a malformed
  // server, timeout < 1ms or tries < 1; (kInternal) when c-ares cannot start.
  static Result<std::unique_ptr<Resolver>> Create(ResolverOptions options);

  // Stops the thread: lookups still queued or in flight get kRetry first.
  // REQUIRES: no concurrent Lookup* call; not called from a callback.
  ~Resolver();
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  // The MX records of `domain`. A single "MX 0 ." gives kNullMx; so does a
  // null MX next to other records (invalid per RFC 7505 2; Postfix does the
  // same). kNoData when the domain exists without MX records.
  void LookupMx(std::string domain, MxCallback done);

  // The A and AAAA records of `host`, queried in parallel. An IP literal
  // ("192.0.2.1", "::1") is returned as is, without a query.
  void LookupAddresses(std::string host, AddrCallback done);

  // Blocking wrappers, for tests and tools.
  MxResult LookupMxSync(std::string domain);
  AddrResult LookupAddressesSync(std::string host);

 private:
  class Impl;
  explicit Resolver(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Checks and normalises a domain or host name as described above: lower
// case, without the trailing dot. nullopt when the name is invalid.
std::optional<std::string> NormaliseName(std::string_view name);

}  // namespace petrel::dns
