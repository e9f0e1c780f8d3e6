// Mailboxes and paths, RFC 5321 4.1.2 and RFC 6531 3.3 (SMTPUTF8).
//
// Grammar: Mailbox = Local-part "@" ( Domain / address-literal ); Local-part
// is a Dot-string or a Quoted-string; Domain is dot-separated sub-domains of
// letters, digits and hyphens (or UTF-8 U-labels when SMTPUTF8 is allowed);
// address-literal is "[" IPv4 "]", "[IPv6:" IPv6 "]" or "[" tag ":" text "]".
// A source route ("@a,@b:") before the mailbox is accepted and dropped
// (RFC 5321 4.1.2, C.). Limits from limits.h: local-part 64 octets, domain
// 255, whole path 256 including the angle brackets.
//
// Errors are the Reply that refuses the address (interface.md): 501 5.1.3
// (recipient) or 501 5.1.7 (sender) for syntax, with "Path too long",
// "Local part too long" or "Domain too long" at the limits (a path over 256
// octets names the local-part or domain limit if that is what it breaks);
// 553 5.6.7 for a non-ASCII address without SMTPUTF8. Untrusted input; pure
// functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <tl/expected.hpp>

#include "smtp/reply.h"

namespace petrel::smtp {

struct Mailbox {
  std::string local_part;  // as on the wire: dot-string, or quoted with quotes
  std::string domain;      // as on the wire; a literal keeps its brackets

  std::string ToString() const { return local_part + "@" + domain; }
  bool IsAddressLiteral() const { return !domain.empty() && domain[0] == '['; }
  bool NeedsSmtpUtf8() const;  // any octet >= 0x80
  // The local-part without quoting ("\"a b\"" -> "a b"; "a.b" stays).
  std::string UnquotedLocalPart() const;
  // The domain lower-cased (ASCII only), for routing and comparisons.
  std::string DomainLower() const;
  bool operator==(const Mailbox&) const = default;
};

enum class PathRole { kSender, kRecipient };  // picks 5.1.7 or 5.1.3

// Parses "<...>" (brackets required, source route allowed). For the sender
// "<>" is the null reverse-path (nullopt). "<Postmaster>" (any case, no
// domain) is accepted for the recipient only, with domain left empty.
using PathResult = tl::expected<std::optional<Mailbox>, Reply>;
PathResult ParsePath(std::string_view text, PathRole role, bool utf8_allowed);

// Parses a bare mailbox "local@domain" (no brackets), for configuration,
// sendmail arguments and the client's routing of stored addresses. The
// local-part and domain limits apply; the path limit does not (a domain of
// 255 octets is valid here, though it can never fit in a path).
tl::expected<Mailbox, Reply> ParseMailbox(std::string_view text, PathRole role,
                                          bool utf8_allowed);

// True if `text` is a valid Domain (not an address literal), for EHLO/HELO
// arguments and configuration.
bool IsValidDomain(std::string_view text, bool utf8_allowed);
// True if `text` is a valid address literal with its brackets.
bool IsValidAddressLiteral(std::string_view text);

}  // namespace petrel::smtp
