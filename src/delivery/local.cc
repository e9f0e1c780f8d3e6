#include "delivery/local.h"

#include <algorithm>

#include "config/config.h"
#include "delivery/maildir.h"
#include "spool/spool.h"

namespace petrel::delivery {

Outcome DeliverLocal(const config::Config& config,
                     const spool::Envelope& envelope, std::size_t index,
                     const RouteDecision& route, std::string_view content) {
  const std::string& rcpt = envelope.recipients.at(index).address;
  Outcome o;
  o.remote_mta = "";
  if (config.local.users && route.user != "postmaster" &&
      std::find(config.local.users->begin(), config.local.users->end(),
                route.user) == config.local.users->end()) {
    o.verdict = Verdict::kFailed;
    o.status = {5, 1, 1};
    o.diagnostic = "x-petrel; <" + rcpt + ">: user unknown";
    o.detail = o.diagnostic;
    return o;
  }
  auto path = MaildirPathFor(config.local.maildir, rcpt);
  MaildirResult r =
      path ? DeliverToMaildir(*path, envelope.sender, rcpt, content)
           : path.error();
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

}  // namespace petrel::delivery
