// What a delivery attempt means for each recipient: the one place that
// classifies SMTP replies and client-side troubles (Postfix smtp_trouble.c,
// chasquid courier.go). Everything else asks here; no other file decides
// whether a reply is temporary or permanent, or which recipients it concerns.
//
// ClassifyReply() takes the reply to one command and says what it does:
// proceed, fall back from EHLO to HELO, settle one recipient, stop adding
// recipients (too many), settle the transaction, or end the connection
// (scope: recipient, transaction/message, site). The rules:
//  - 421 anywhere: the site: connection unusable, the rest deferred.
//  - RCPT: 2xx accepted; "too many recipients" is 452, or an enhanced status
//    X.5.3, or 552/522 once a recipient of this transaction was accepted
//    (RFC 5321 4.5.3.1.10, seeds 000 and 001: Exchange's 522, the RFC 821
//    552); other 4xx deferred, other 5xx failed (552/522 included).
//  - MAIL 4xx/5xx: the whole message deferred/failed. DATA, BDAT and the
//    reply to the end of data: 4xx deferred, 5xx failed, for the recipients
//    accepted in the transaction (552 after the data: too big, permanent).
//  - A reply of a class the command cannot have (3xx to MAIL, 2xx to DATA):
//    a protocol error, the site, deferred.
//  - STARTTLS: 2xx proceed to the handshake; any other reply but 421 is a
//    refusal, and what follows is the TLS policy's choice (RFC 3207 4;
//    "may": carry on in plaintext), not the reply's.
//  - AUTH (client, towards a smarthost): 235 done, 334 continue; any other
//    reply is the site, deferred (a refused login is our configuration's
//    problem, never the message's: Postfix's smtp_sasl_auth_soft_bounce).
//  - EHLO refused with 5xx: HELO (RFC 5321 3.2); greeting or HELO refused:
//    the site, deferred (Postfix's smtp_skip_5xx_greeting: another MX host,
//    or a later try, may do better).
// Troubles without a reply (connection refused, lost, timed out, a
// malformed reply, a local refusal such as SIZE) go through TroubleOutcome().
// A malformed reply or a lost connection is never permanent; after the end
// of data it is a possible duplicate (RFC 1047).
//
// The Diagnostic-Code (RFC 3464 2.3.6) of a reply is "smtp; CODE X.Y.Z text"
// with the peer text sanitised (smtp::SanitizeText); a local trouble is
// "x-petrel; text". The status is the reply's enhanced status, or X.0.0 of
// the reply's class; its class always agrees with the verdict (a deferral
// caused by a 5xx "too many recipients" is reported 4.X.X).
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "smtp/enhanced_status.h"
#include "smtp/reply.h"

namespace petrel::delivery {

enum class Verdict : std::uint8_t { kDelivered, kDeferred, kFailed };
// Postfix's status= words: "sent", "deferred", "bounced".
std::string_view VerdictName(Verdict verdict);

struct Outcome {
  Verdict verdict = Verdict::kDeferred;
  smtp::EnhancedStatus status{4, 0, 0};
  // RFC 3464 Diagnostic-Code value: "smtp; 550 5.1.1 <x@y>: user unknown",
  // or "x-petrel; connect to mx[192.0.2.1]:25: Connection refused".
  std::string diagnostic;
  // Who answered, "mx.example.net[192.0.2.1]:25" ("" when nobody did).
  std::string remote_mta;
  // For logs and the spool's last_reply, Postfix style: "host
  // mx[192.0.2.1]:25 said: 550 5.1.1 unknown (in reply to RCPT TO command)".
  std::string detail;
  // The connection was lost (or the reply unreadable) after the end of the
  // data was sent: the peer may have taken the message (RFC 1047).
  bool possible_duplicate = false;
};

// The command a reply answers.
enum class Stage : std::uint8_t {
  kGreeting,
  kEhlo,
  kHelo,
  kStartTls,  // RFC 3207, expecting 220
  kMail,
  kRcpt,
  kData,       // DATA, expecting 354
  kBdat,       // a BDAT chunk that is not the last
  kEndOfData,  // "." after DATA, or BDAT ... LAST
  kRset,
  kQuit,
  kAuth,  // RFC 4954: 334 continues, 235 done
};
// "MAIL FROM", "RCPT TO", "end of DATA"...: for "(in reply to X command)".
std::string_view StageCommandName(Stage stage);

enum class Effect : std::uint8_t {
  kProceed,            // the positive reply the command expects
  kHeloFallback,       // EHLO refused with 5xx: try HELO
  kStartTlsRefused,    // STARTTLS refused: the TLS policy decides
  kRecipient,          // RCPT: this recipient alone gets the verdict
  kTooManyRecipients,  // RCPT: stop adding recipients, retry this one later
  kTransaction,        // MAIL: every recipient of the message not yet
                       // settled; DATA, BDAT, end of data: those accepted
  kSite,               // connection unusable: everything unsettled deferred
};

struct Classification {
  Effect effect = Effect::kSite;
  Verdict verdict = Verdict::kDeferred;  // for kProceed: kDelivered
};

// `some_accepted`: (RCPT only) a recipient of this transaction was already
// accepted, which makes 552/522 mean "too many recipients".
Classification ClassifyReply(Stage stage, const smtp::Reply& reply,
                             bool some_accepted = false);

// The Outcome for a reply with the given verdict: status from the reply (or
// X.0.0), class set to agree with the verdict; diagnostic and detail built
// from the sanitised reply text.
Outcome ReplyOutcome(Verdict verdict, Stage stage, const smtp::Reply& reply,
                     std::string_view remote_mta);

enum class Trouble : std::uint8_t {
  kConnectFailed,       // 4.4.1 deferred: refused, unreachable, timed out
  kLostConnection,      // 4.4.2 deferred
  kTimeout,             // 4.4.2 deferred
  kMalformedReply,      // 4.5.0 deferred: never failed on a reply we can't read
  kProtocolError,       // 4.5.0 deferred: a reply out of place
  kMessageTooBig,       // 5.3.4 failed: over the peer's SIZE
  kSmtputf8Required,    // 5.6.7 failed: SMTPUTF8 needed, not offered
  kBadRecipient,        // 5.1.3 failed: an address we cannot send
  kBadSender,           // 5.1.7 failed: a sender we cannot send
  kConnectionUnusable,  // 4.4.2 deferred: Deliver() on a closed connection
  kTlsRequired,         // 4.7.4 deferred: policy encrypt/verify, no TLS
  kTlsNotVerified,      // 4.7.5 deferred: policy verify, bad certificate
  kAuthWithoutTls,      // 4.7.0 deferred: credentials are never sent in clear
};

// `text` is the human-readable reason ("lost connection with mx[ip]:25
// while sending RCPT TO"); `after_end_of_data` makes a lost connection,
// timeout or unreadable reply a possible duplicate.
Outcome TroubleOutcome(Trouble trouble, std::string_view text,
                       std::string_view remote_mta,
                       bool after_end_of_data = false);

// The deferral of the recipients left over when a transaction cannot take a
// single recipient ("too many recipients" to its first RCPT): the reply's
// text, status 4.5.3 unless the reply has one (then of class 4).
Outcome TooManyRecipientsOutcome(const smtp::Reply& reply,
                                 std::string_view remote_mta);

}  // namespace petrel::delivery
