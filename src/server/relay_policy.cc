#include "server/relay_policy.h"

#include <algorithm>

#include "config/config.h"

namespace petrel::server {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string StripDot(std::string s) {
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

bool Contains(const std::vector<std::string>& v, std::string_view s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

smtp::Reply RelayDenied(const smtp::Mailbox& rcpt) {
  return smtp::MakeReply(554, {5, 7, 1},
                         "<" + rcpt.ToString() + ">: Relay access denied");
}

}  // namespace

RelayPolicy::RelayPolicy(const config::Config& config)
    : users_(config.local.users) {
  for (const auto& d : config.relay.local_domains) {
    local_domains_.push_back(StripDot(Lower(d)));
  }
  for (const auto& d : config.relay.relay_domains) {
    relay_domains_.push_back(StripDot(Lower(d)));
  }
  for (const auto& l : config.listeners) {
    if (l.host.find(':') != std::string::npos) {
      own_literals_.push_back("[ipv6:" + Lower(l.host) + "]");
    } else {
      own_literals_.push_back("[" + l.host + "]");
    }
  }
  for (const auto& a : config.delivery.own_addresses) {
    own_literals_.push_back(a.find(':') != std::string::npos
                                ? "[ipv6:" + Lower(a) + "]"
                                : "[" + a + "]");
  }
}

bool RelayPolicy::IsLocalDomain(std::string_view domain_lower) const {
  std::string d = StripDot(std::string(domain_lower));
  if (!d.empty() && d.front() == '[') return Contains(own_literals_, d);
  return Contains(local_domains_, d);
}

bool RelayPolicy::IsRelayDomain(std::string_view domain_lower) const {
  return Contains(relay_domains_, StripDot(std::string(domain_lower)));
}

std::optional<smtp::Reply> RelayPolicy::CheckRecipient(
    const smtp::Mailbox& rcpt, bool client_trusted) const {
  // <Postmaster> (RFC 5321 4.5.1) has no domain and is always local.
  if (rcpt.domain.empty()) return std::nullopt;
  const std::string domain = rcpt.DomainLower();
  const bool local = IsLocalDomain(domain);
  if (!client_trusted) {
    if (!local && !IsRelayDomain(domain)) return RelayDenied(rcpt);
    // Re-routing syntaxes inside the local-part (percent hack, UUCP bang
    // paths, a quoted address) are how open relays were made out of MTAs
    // that honoured them. We never honour them; from an untrusted client they
    // are refused outright (docs/decisions.md).
    const std::string local_part = rcpt.UnquotedLocalPart();
    if (local_part.find_first_of("@%!") != std::string::npos) {
      return RelayDenied(rcpt);
    }
  }
  if (local && users_) {
    std::string user = Lower(rcpt.UnquotedLocalPart());
    if (auto plus = user.find('+'); plus != std::string::npos)
      user.resize(plus);
    if (user != "postmaster" && !Contains(*users_, user)) {
      return smtp::MakeReply(550, {5, 1, 1},
                             "<" + rcpt.ToString() +
                                 ">: Recipient address rejected: User unknown");
    }
  }
  return std::nullopt;
}

}  // namespace petrel::server
