// MAIL FROM and RCPT TO: the path and the ESMTP parameters (RFC 5321 4.1.1.2
// and 4.1.1.3, SIZE RFC 1870, BODY RFC 6152, SMTPUTF8 RFC 6531, DSN RFC 3461
// RET/ENVID/NOTIFY/ORCPT, AUTH RFC 4954).
//
// ParseMailArgument() takes the argument of a MAIL command ("FROM:<a@b>
// SIZE=10"), ParseRcptArgument() that of RCPT ("TO:<a@b> NOTIFY=NEVER").
// "FROM:" and "TO:" are case-insensitive and a space after the colon is
// tolerated (as Postfix does). Errors are the Reply to send:
//   501 5.5.4  syntax of a parameter, a duplicate parameter, bad xtext
//   501 5.1.7 / 501 5.1.3  the sender / recipient path (see address.h)
//   555 5.5.4  a parameter of an extension that was not offered or is unknown
//   552 5.3.4  SIZE over `max_message_size` (when non-zero)
//   553 5.6.7  a non-ASCII address without SMTPUTF8
// Untrusted input; pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <tl/expected.hpp>

#include "smtp/address.h"
#include "smtp/reply.h"

namespace petrel::smtp {

// What the server offered in its EHLO reply; with HELO, nothing.
struct OfferedExtensions {
  bool esmtp = true;  // false after HELO: no parameters at all (555)
  bool size = true;
  bool eight_bit_mime = true;
  bool smtputf8 = true;
  bool dsn = true;
  bool auth = false;                   // RFC 4954 5: AUTH= on MAIL
  std::uint64_t max_message_size = 0;  // 0: no limit checked here
};

enum class Body { k7Bit, k8BitMime };
enum class DsnRet { kUnspecified, kFull, kHeaders };

struct MailParams {
  std::optional<std::uint64_t> size;  // SIZE=, as declared
  Body body = Body::k7Bit;
  bool smtputf8 = false;
  DsnRet ret = DsnRet::kUnspecified;
  std::string envid;  // ENVID=, decoded from xtext ("" if absent)
  // AUTH=, RFC 4954 5, decoded from xtext; "<>" as sent. Informational:
  // petrel trusts only its own authentication of the session.
  std::optional<std::string> auth;
};

// NOTIFY=, RFC 3461 4.1: NEVER alone, or any of SUCCESS, FAILURE, DELAY.
enum NotifyFlags : std::uint8_t {
  kNotifyUnspecified = 0,  // default: FAILURE,DELAY per RFC 3461
  kNotifyNever = 1,
  kNotifySuccess = 2,
  kNotifyFailure = 4,
  kNotifyDelay = 8,
};

struct RcptParams {
  std::uint8_t notify = kNotifyUnspecified;
  // ORCPT=, RFC 3461 4.2: "addr-type;address" with the address decoded from
  // xtext; empty if absent. orcpt_type is e.g. "rfc822" (lower-cased).
  std::string orcpt_type;
  std::string orcpt_address;
};

struct MailCommand {
  std::optional<Mailbox> reverse_path;  // nullopt: the null sender <>
  MailParams params;
};

struct RcptCommand {
  Mailbox forward_path;  // domain empty for <Postmaster>
  RcptParams params;
};

tl::expected<MailCommand, Reply> ParseMailArgument(
    std::string_view arg, const OfferedExtensions& offered);
// `utf8_allowed`: the transaction's MAIL had SMTPUTF8.
tl::expected<RcptCommand, Reply> ParseRcptArgument(
    std::string_view arg, const OfferedExtensions& offered, bool utf8_allowed);

// xtext, RFC 3461 4: "+" followed by two upper-case hex digits encodes an
// octet; other octets must be "!".."~" except "+" and "=".
std::optional<std::string> DecodeXtext(std::string_view text);
std::string EncodeXtext(std::string_view text);

}  // namespace petrel::smtp
