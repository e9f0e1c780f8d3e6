// Delivery status notifications: RFC 3464 reports, RFC 3461 rules for when
// to send them, RFC 3834 Auto-Submitted, RFC 6533 for UTF-8 addresses.
//
// BuildDsn() writes the complete message (RFC 5322, CRLF line ends) that the
// queue submits from the null sender to the original sender: a
// multipart/report; report-type=delivery-status with (1) a text/plain
// explanation in the style of Postfix's bounce text, (2) the
// message/delivery-status fields, (3) the original message: whole as
// message/rfc822 for a failure report with RET=FULL if it fits in
// kDsnMaxReturnedOctets (else, and for RET=HDRS, no RET, delays and
// successes, only its header section as text/rfc822-headers, RFC 3461 4.3).
// One DSN per message and event: the caller passes every recipient of that
// event (all failed, or all delayed, or all delivered/relayed/expanded).
//
// Untrusted input: addresses, ENVID, ORCPT, diagnostic text and the content
// come from peers. No control character, CR or LF from any of them reaches a
// header field or a report field (they become '?' or a space); every line
// written is at most 998 octets (RFC 5322 2.1.1: long fields are folded at
// spaces, a word too long for a line is cut by a fold, returned header lines
// over the limit are cut); the MIME boundary never occurs in the parts.
// The message/delivery-status part is 7-bit: non-ASCII addresses are written
// as RFC 6533 utf-8-addr-xtext ("utf-8; \x{E9}..."), other non-ASCII text as
// '?'. The text/plain part is quoted-printable when it is not ASCII.
//
// ShouldSendDsn() is the RFC 3461 NOTIFY rule, with "never bounce a bounce".
// Pure functions; thread-safe. ReadContentForDsn() reads the spool.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "smtp/enhanced_status.h"
#include "smtp/params.h"

namespace petrel::spool {
class Spool;
}

namespace petrel::delivery {

// RFC 3464 2.3.3.
enum class DsnAction { kFailed, kDelayed, kDelivered, kRelayed, kExpanded };
std::string_view DsnActionName(DsnAction action);  // "failed", ...

// The event a notification reports; picks the NOTIFY keyword.
enum class DsnEvent { kFailure, kDelay, kSuccess };

// RFC 3461 4.1 and 6.2: whether the sender asked for this DSN. Never for the
// null sender (a DSN is never sent about a DSN); NOTIFY=NEVER: never;
// failure and delay when NOTIFY is unspecified or names them; success only
// when NOTIFY names SUCCESS. `notify` is smtp::NotifyFlags bits.
bool ShouldSendDsn(std::string_view sender, std::uint8_t notify,
                   DsnEvent event);

struct DsnRecipientReport {
  // Final-Recipient: the address we delivered or tried to, local@domain.
  std::string final_recipient;
  // Original-Recipient from ORCPT (type, decoded address); omitted when
  // original_address is empty. The type defaults to "rfc822".
  std::string original_type;
  std::string original_address;
  DsnAction action = DsnAction::kFailed;
  smtp::EnhancedStatus status{5, 0, 0};
  // Remote-MTA: a host name, or "host[ip]" as spool::Recipient::remote_mta
  // stores it (the bracketed address is dropped, or used if there is no
  // name); empty: omitted.
  std::string remote_mta;
  // Diagnostic-Code as "type; text", e.g. "smtp; 550 5.1.1 <a@b>: unknown".
  // Text without a valid "type;" prefix is typed "X-Petrel". Empty: omitted.
  std::string diagnostic_code;
  std::int64_t last_attempt_unix = 0;  // Last-Attempt-Date; 0: omitted
  // Will-Retry-Until, written for action delayed only; 0: omitted.
  std::int64_t will_retry_until_unix = 0;
};

// Content returned in a DSN is capped at this (whole message, or header
// section). RFC 5321 4.5.3.1.7: every server takes 64 KiB.
inline constexpr std::size_t kDsnMaxReturnedOctets = 64 * 1024;
// How much of the content BuildDsn needs: one octet more than the cap, so
// that it can tell "exactly the cap" from "longer".
inline constexpr std::size_t kDsnContentReadOctets = kDsnMaxReturnedOctets + 1;

struct DsnRequest {
  std::string reporting_mta;  // our host name ([server] hostname)
  std::string queue_id;       // of the original message
  // From the original envelope (spool::Envelope).
  std::string sender;  // the DSN goes To: it; must not be empty
  bool smtputf8 = false;
  smtp::DsnRet ret = smtp::DsnRet::kUnspecified;
  std::string envid;              // decoded; "" none
  std::int64_t arrival_unix = 0;  // Arrival-Date; 0: omitted
  // The stored content (CRLF), or at least its first kDsnContentReadOctets
  // octets (longer content counts as over the cap whatever its size).
  std::string_view content;
  std::vector<DsnRecipientReport> recipients;  // at least one
  std::int64_t now_unix = 0;                   // Date:, Message-ID
};

struct Dsn {
  std::string message;     // the whole RFC 5322 message, CRLF
  std::string message_id;  // "<...>", as in the Message-ID field
  // Submit the DSN with BODY=8BITMIME: an octet >= 0x80 is in it (returned
  // content, or a UTF-8 sender in To:).
  bool eight_bit = false;
  // Submit with SMTPUTF8: the original had SMTPUTF8 and the DSN carries
  // UTF-8 in a header (To:, or the returned header section).
  bool smtputf8 = false;
};

// Builds the notification. CHECKs that `sender` and `recipients` are not
// empty (a bug in the caller: ShouldSendDsn says no for the null sender).
Dsn BuildDsn(const DsnRequest& request);

// RFC 5322 3.3 date-time in UTC: "Tue, 1 Jul 2003 10:52:37 +0000".
std::string FormatRfc5322Date(std::int64_t unix_seconds);

// RFC 6533 3 utf-8-addr-xtext: printable ASCII except '+', '=', '\' as is;
// everything else (controls, space, those three, non-ASCII code points) as
// "\x{HEX}"; octets that are not UTF-8 become "\x{FFFD}".
std::string EncodeUtf8AddrXtext(std::string_view address);

// Reads what BuildDsn needs of a stored message: its first
// kDsnContentReadOctets octets (all of it if shorter). Blocking.
Result<std::string> ReadContentForDsn(spool::Spool& spool,
                                      const std::string& id);

}  // namespace petrel::delivery
