#include "delivery/outcome.h"

#include <string>

namespace petrel::delivery {
namespace {

int ClassOf(Verdict verdict) {
  switch (verdict) {
    case Verdict::kDelivered:
      return 2;
    case Verdict::kDeferred:
      return 4;
    case Verdict::kFailed:
      return 5;
  }
  return 4;
}

Classification Proceed() { return {Effect::kProceed, Verdict::kDelivered}; }
Classification Site() { return {Effect::kSite, Verdict::kDeferred}; }
Classification Settle(Effect effect, const smtp::Reply& reply) {
  return {effect, reply.IsPermanent() ? Verdict::kFailed : Verdict::kDeferred};
}

// RFC 5321 4.5.3.1.10 and seeds 000/001: the ways servers say "no more
// recipients in this transaction". 552 is RFC 821's code for it and 522 is
// Exchange 5.0's; both also mean "mailbox full" (552) or nothing standard
// (522), so they count only once this transaction has a recipient (a server
// whose buffer is full has taken at least one).
bool IsTooManyRecipients(const smtp::Reply& reply, bool some_accepted) {
  if (reply.code == 452) return true;
  if (reply.status && reply.status->subject == 5 && reply.status->detail == 3) {
    return true;  // X.5.3 "too many recipients" (RFC 3463 3.6)
  }
  return some_accepted && (reply.code == 552 || reply.code == 522);
}

std::string ReplyText(const smtp::Reply& reply) {
  std::string text = std::to_string(reply.code);
  const std::string rest = reply.Text();  // status and lines, sanitised
  if (!rest.empty()) text += " " + rest;
  return text;
}

}  // namespace

std::string_view VerdictName(Verdict verdict) {
  switch (verdict) {
    case Verdict::kDelivered:
      return "sent";
    case Verdict::kDeferred:
      return "deferred";
    case Verdict::kFailed:
      return "bounced";
  }
  return "deferred";
}

std::string_view StageCommandName(Stage stage) {
  switch (stage) {
    case Stage::kGreeting:
      return "initial greeting";
    case Stage::kEhlo:
      return "EHLO";
    case Stage::kHelo:
      return "HELO";
    case Stage::kStartTls:
      return "STARTTLS";
    case Stage::kMail:
      return "MAIL FROM";
    case Stage::kRcpt:
      return "RCPT TO";
    case Stage::kData:
      return "DATA";
    case Stage::kBdat:
      return "BDAT";
    case Stage::kEndOfData:
      return "end of DATA";
    case Stage::kRset:
      return "RSET";
    case Stage::kQuit:
      return "QUIT";
    case Stage::kAuth:
      return "AUTH";
  }
  return "unknown";
}

Classification ClassifyReply(Stage stage, const smtp::Reply& reply,
                             bool some_accepted) {
  // 421: the server is closing the connection, whatever the command.
  if (reply.code == 421) return Site();
  switch (stage) {
    case Stage::kGreeting:
    case Stage::kHelo:
    case Stage::kRset:
      return reply.IsPositive() ? Proceed() : Site();
    case Stage::kEhlo:
      if (reply.IsPositive()) return Proceed();
      // RFC 5321 3.2: a server that does not know EHLO says 500/502; a 4xx
      // is a temporary refusal of the session.
      return reply.IsPermanent()
                 ? Classification{Effect::kHeloFallback, Verdict::kDeferred}
                 : Site();
    case Stage::kStartTls:
      if (reply.IsPositive()) return Proceed();
      return {Effect::kStartTlsRefused, Verdict::kDeferred};
    case Stage::kMail:
      if (reply.IsPositive()) return Proceed();
      if (reply.IsIntermediate()) return Site();
      return Settle(Effect::kTransaction, reply);
    case Stage::kRcpt:
      if (reply.IsPositive()) return Proceed();
      if (reply.IsIntermediate()) return Site();
      if (IsTooManyRecipients(reply, some_accepted)) {
        return {Effect::kTooManyRecipients, Verdict::kDeferred};
      }
      return Settle(Effect::kRecipient, reply);
    case Stage::kData:
      if (reply.IsIntermediate()) return Proceed();  // 354
      if (reply.IsPositive()) return Site();  // out of protocol: out of sync
      return Settle(Effect::kTransaction, reply);
    case Stage::kBdat:
    case Stage::kEndOfData:
      if (reply.IsPositive()) return Proceed();
      if (reply.IsIntermediate()) return Site();
      return Settle(Effect::kTransaction, reply);
    case Stage::kQuit:
      return Proceed();  // nothing depends on it
    case Stage::kAuth:
      return reply.IsPositive() || reply.IsIntermediate() ? Proceed() : Site();
  }
  return Site();
}

Outcome ReplyOutcome(Verdict verdict, Stage stage, const smtp::Reply& reply,
                     std::string_view remote_mta) {
  Outcome out;
  out.verdict = verdict;
  out.status =
      reply.status.value_or(smtp::EnhancedStatus{reply.code / 100, 0, 0});
  out.status.klass = ClassOf(verdict);
  const std::string text = ReplyText(reply);
  out.diagnostic = "smtp; " + text;
  out.remote_mta = std::string(remote_mta);
  if (verdict == Verdict::kDelivered) {
    out.detail = text;  // Postfix: "status=sent (250 2.0.0 Ok: queued as X)"
  } else if (stage == Stage::kGreeting) {
    out.detail = "host " + out.remote_mta + " refused to talk to me: " + text;
  } else {
    out.detail = "host " + out.remote_mta + " said: " + text +
                 " (in reply to " + std::string(StageCommandName(stage)) +
                 " command)";
  }
  return out;
}

Outcome TooManyRecipientsOutcome(const smtp::Reply& reply,
                                 std::string_view remote_mta) {
  Outcome out =
      ReplyOutcome(Verdict::kDeferred, Stage::kRcpt, reply, remote_mta);
  if (!reply.status) out.status = {4, 5, 3};
  return out;
}

Outcome TroubleOutcome(Trouble trouble, std::string_view text,
                       std::string_view remote_mta, bool after_end_of_data) {
  Outcome out;
  out.remote_mta = std::string(remote_mta);
  out.detail = smtp::SanitizeText(text);
  out.diagnostic = "x-petrel; " + out.detail;
  switch (trouble) {
    case Trouble::kConnectFailed:
      out.verdict = Verdict::kDeferred;
      out.status = {4, 4, 1};
      out.remote_mta.clear();  // nobody answered
      break;
    case Trouble::kLostConnection:
    case Trouble::kTimeout:
    case Trouble::kConnectionUnusable:
      out.verdict = Verdict::kDeferred;
      out.status = {4, 4, 2};
      break;
    case Trouble::kMalformedReply:
    case Trouble::kProtocolError:
      out.verdict = Verdict::kDeferred;
      out.status = {4, 5, 0};
      break;
    case Trouble::kMessageTooBig:
      out.verdict = Verdict::kFailed;
      out.status = {5, 3, 4};
      break;
    case Trouble::kSmtputf8Required:
      out.verdict = Verdict::kFailed;
      out.status = {5, 6, 7};
      break;
    case Trouble::kBadRecipient:
      out.verdict = Verdict::kFailed;
      out.status = {5, 1, 3};
      break;
    case Trouble::kBadSender:
      out.verdict = Verdict::kFailed;
      out.status = {5, 1, 7};
      break;
    case Trouble::kTlsRequired:
      out.verdict = Verdict::kDeferred;
      out.status = {4, 7, 4};
      break;
    case Trouble::kTlsNotVerified:
      out.verdict = Verdict::kDeferred;
      out.status = {4, 7, 5};
      break;
    case Trouble::kAuthWithoutTls:
      out.verdict = Verdict::kDeferred;
      out.status = {4, 7, 0};
      break;
  }
  if (after_end_of_data && out.verdict == Verdict::kDeferred) {
    out.possible_duplicate = true;
    out.detail += " -- message may be sent more than once";
    out.diagnostic = "x-petrel; " + out.detail;
  }
  return out;
}

}  // namespace petrel::delivery
