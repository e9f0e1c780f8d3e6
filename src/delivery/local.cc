#include "delivery/local.h"

#include <algorithm>

#include "config/config.h"
#include "delivery/maildir.h"
#include "spool/spool.h"

namespace petrel::delivery {
namespace {

bool InList(const std::vector<std::string>& v, std::string_view s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

std::string DomainOf(std::string_view address) {
  auto at = address.rfind('@');
  std::string d(at == std::string_view::npos ? "" : address.substr(at + 1));
  std::transform(d.begin(), d.end(), d.begin(), [](unsigned char c) {
    return static_cast<char>(std::tolower(c));
  });
  return d;
}

Outcome FromMaildir(const MaildirResult& r) {
  Outcome o;
  o.status = r.status;
  if (r.ok()) {
    o.verdict = Verdict::kDelivered;
    o.detail = "delivered to maildir";
    o.diagnostic = "x-petrel; delivered to maildir";
  } else {
    o.verdict = r.kind == MaildirResult::Kind::kPermanent ? Verdict::kFailed
                                                          : Verdict::kDeferred;
    o.diagnostic = "x-petrel; " + r.text;
    o.detail = r.text;
  }
  return o;
}

}  // namespace

Outcome DeliverLocal(const config::Config& config, const Aliases& aliases,
                     const spool::Envelope& envelope, std::size_t index,
                     const RouteDecision& route, std::string_view content,
                     std::vector<std::string>& forward) {
  std::string rcpt = envelope.recipients.at(index).address;
  // v@[our own address] (router.h): the route's local domain stands in for
  // the literal, so the address stays local instead of being forwarded.
  if (const auto at = rcpt.rfind('@'); at != std::string::npos &&
                                       !route.domain.empty() &&
                                       DomainOf(rcpt) != route.domain) {
    rcpt = rcpt.substr(0, at + 1) + route.domain;
  }
  auto expanded = aliases.Expand(rcpt, config.relay.local_domains);
  if (!expanded) {
    Outcome o;
    o.verdict = Verdict::kFailed;
    o.status = expanded.error().status;
    o.diagnostic = "x-petrel; " + expanded.error().text;
    o.detail = expanded.error().text;
    return o;
  }
  const bool is_alias = !(expanded->size() == 1 && expanded->front() == rcpt);
  if (!is_alias && config.local.users && route.user != "postmaster" &&
      !InList(*config.local.users, route.user)) {
    Outcome o;
    o.verdict = Verdict::kFailed;
    o.status = {5, 1, 1};
    o.diagnostic = "x-petrel; <" + rcpt + ">: user unknown";
    o.detail = o.diagnostic;
    return o;
  }
  Outcome last;
  last.verdict = Verdict::kDelivered;
  last.status = {2, 0, 0};
  std::vector<std::string> remote;
  for (const std::string& target : *expanded) {
    if (!InList(config.relay.local_domains, DomainOf(target))) {
      remote.push_back(target);
      continue;
    }
    auto path = MaildirPathFor(config.local.maildir, target);
    Outcome o = FromMaildir(
        path ? DeliverToMaildir(*path, envelope.sender, target, content)
             : path.error());
    if (o.verdict != Verdict::kDelivered) return o;
    last = o;
  }
  if (is_alias) {
    last.detail = "alias expanded to " + std::to_string(expanded->size()) +
                  " address(es)";
    last.diagnostic = "x-petrel; " + last.detail;
  }
  forward = std::move(remote);
  return last;
}

}  // namespace petrel::delivery
