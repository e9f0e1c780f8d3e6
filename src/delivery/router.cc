#include "delivery/router.h"

#include <algorithm>

#include "config/config.h"
#include "smtp/address.h"

namespace petrel::delivery {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) {
    return static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  });
  return out;
}

RouteDecision Fail(smtp::EnhancedStatus status, std::string diagnostic) {
  RouteDecision d;
  d.kind = RouteDecision::Kind::kFail;
  d.status = status;
  d.diagnostic = std::move(diagnostic);
  return d;
}

RouteDecision Static(const config::Route& r) {
  RouteDecision d;
  d.kind = RouteDecision::Kind::kStatic;
  d.host = r.host;
  d.port = r.port;
  return d;
}

bool Contains(const std::vector<std::string>& v, std::string_view s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

config::TlsPolicy PolicyFor(const config::Config& config,
                            const std::string& domain) {
  const auto& p = config.tls_policies;
  if (auto it = p.find(domain); it != p.end()) return it->second;
  for (std::size_t dot = domain.find('.'); dot != std::string::npos;
       dot = domain.find('.', dot + 1)) {
    if (auto it = p.find(domain.substr(dot)); it != p.end()) return it->second;
  }
  if (auto it = p.find("*"); it != p.end()) return it->second;
  return config.delivery.tls_policy;
}

RouteDecision RouteWithoutPolicy(const config::Config& config,
                                 std::string_view address, std::string& domain);

}  // namespace

std::string RouteDecision::NextHopKey() const {
  const std::string tls = "/" + std::string(config::TlsPolicyName(tls_policy));
  switch (kind) {
    case Kind::kLocal:
      return "local:";
    case Kind::kStatic:
      return "static:" + host + ":" + std::to_string(port) + tls;
    case Kind::kMx:
      return "mx:" + domain + ":" + std::to_string(port) + tls;
    case Kind::kFail:
      return "fail:";
  }
  return "";
}

RouteDecision Route(const config::Config& config, std::string_view address) {
  std::string domain;
  RouteDecision d = RouteWithoutPolicy(config, address, domain);
  if (d.kind == RouteDecision::Kind::kStatic ||
      d.kind == RouteDecision::Kind::kMx) {
    d.tls_policy = PolicyFor(config, domain);
  }
  return d;
}

namespace {

RouteDecision RouteWithoutPolicy(const config::Config& config,
                                 std::string_view address,
                                 std::string& domain) {
  auto box = smtp::ParseMailbox(address, smtp::PathRole::kRecipient,
                                /*utf8_allowed=*/true);
  if (!box) {
    // Seed 003: a recipient the gateway cannot parse fails alone, with a
    // diagnostic that says why; the rest of the queue goes on.
    return Fail({5, 1, 3}, "x-petrel; bad recipient address syntax: " +
                               box.error().Text());
  }
  domain = Lower(box->domain);
  if (!domain.empty() && domain.back() == '.') domain.pop_back();

  auto local = [&] {
    RouteDecision d;
    d.kind = RouteDecision::Kind::kLocal;
    d.domain = domain;
    std::string user = Lower(box->UnquotedLocalPart());
    if (auto plus = user.find('+'); plus != std::string::npos)
      user.resize(plus);
    d.user = user;
    return d;
  };

  if (Contains(config.relay.local_domains, domain)) return local();

  if (box->IsAddressLiteral()) {
    std::string inner = domain.substr(1, domain.size() - 2);
    if (inner.rfind("ipv6:", 0) == 0) inner = inner.substr(5);
    if (Contains(config.delivery.own_addresses, inner)) {
      // user@[our own address] is user@ our first local domain (Postfix
      // treats it as $myhostname): aliases and Maildirs see a real local
      // domain, and nothing is ever forwarded back to us (that looped).
      RouteDecision d = local();
      d.domain = config.relay.local_domains.empty()
                     ? Lower(config.server.hostname)
                     : config.relay.local_domains.front();
      return d;
    }
    RouteDecision d;
    d.kind = RouteDecision::Kind::kStatic;
    d.host = inner;
    d.port = config.delivery.smtp_port;
    return d;
  }

  if (auto it = config.routes.find(domain); it != config.routes.end()) {
    return Static(it->second);
  }
  // The longest ".parent" route that matches a subdomain.
  for (std::size_t dot = domain.find('.'); dot != std::string::npos;
       dot = domain.find('.', dot + 1)) {
    if (auto it = config.routes.find(domain.substr(dot));
        it != config.routes.end()) {
      return Static(it->second);
    }
  }
  if (auto it = config.routes.find("*"); it != config.routes.end()) {
    return Static(it->second);
  }
  RouteDecision d;
  d.kind = RouteDecision::Kind::kMx;
  d.domain = domain;
  d.port = config.delivery.smtp_port;
  return d;
}

}  // namespace
}  // namespace petrel::delivery
