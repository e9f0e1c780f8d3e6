#include "smtp/address.h"

#include <utility>

#include "smtp/limits.h"
#include "smtp/utf8.h"

namespace petrel::smtp {
namespace {

bool IsAlpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsLetDig(char c) { return IsAlpha(c) || IsDigit(c); }
bool IsHex(char c) {
  return IsDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
bool IsNonAscii(char c) { return static_cast<unsigned char>(c) >= 0x80; }

// atext, RFC 5322 3.2.3 (as RFC 5321 4.1.2 uses it).
bool IsAtext(char c) {
  if (IsLetDig(c)) return true;
  constexpr std::string_view kSpecials = "!#$%&'*+-/=?^_`{|}~";
  return kSpecials.find(c) != std::string_view::npos;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

bool HasNonAscii(std::string_view text) {
  for (char c : text) {
    if (IsNonAscii(c)) return true;
  }
  return false;
}

tl::unexpected<Reply> Refuse(PathRole role, std::string text) {
  const EnhancedStatus status = role == PathRole::kSender
                                    ? EnhancedStatus{5, 1, 7}
                                    : EnhancedStatus{5, 1, 3};
  return tl::unexpected(MakeReply(501, status, std::move(text)));
}

tl::unexpected<Reply> SyntaxError(PathRole role) {
  return Refuse(role, role == PathRole::kSender
                          ? "Bad sender address syntax"
                          : "Bad recipient address syntax");
}

// RFC 6531 3.7.4.1 (reply code) with RFC 6531 3.5 (status 5.6.7).
tl::unexpected<Reply> NeedsUtf8Error() {
  return tl::unexpected(MakeReply(
      553, {5, 6, 7}, "SMTPUTF8 is required for a non-ASCII address"));
}

// Length of the Local-part (RFC 5321 4.1.2, RFC 6531 3.3) at the start of
// `s`, or 0 if there is none.
std::size_t ScanLocalPart(std::string_view s, bool utf8_allowed) {
  if (s.empty()) return 0;
  std::size_t i = 0;
  if (s[0] == '"') {
    // Quoted-string = DQUOTE *QcontentSMTP DQUOTE
    for (i = 1; i < s.size();) {
      const char c = s[i];
      if (c == '"') return i + 1;
      if (c == '\\') {
        // quoted-pairSMTP = %d92 %d32-126
        if (i + 1 >= s.size() || s[i + 1] < 32 || s[i + 1] > 126) return 0;
        i += 2;
      } else if (c >= 32 && c <= 126) {
        ++i;  // qtextSMTP: %d32-33 / %d35-91 / %d93-126
      } else if (utf8_allowed && IsNonAscii(c)) {
        const std::size_t n = Utf8SequenceLength(s, i);
        if (n == 0) return 0;
        i += n;
      } else {
        return 0;
      }
    }
    return 0;  // no closing quote
  }
  // Dot-string = Atom *("." Atom)
  while (true) {
    const std::size_t atom_start = i;
    while (i < s.size()) {
      if (IsAtext(s[i])) {
        ++i;
      } else if (utf8_allowed && IsNonAscii(s[i])) {
        const std::size_t n = Utf8SequenceLength(s, i);
        if (n == 0) return 0;
        i += n;
      } else {
        break;
      }
    }
    if (i == atom_start) return 0;  // empty atom: "", ".a", "a..b", "a."
    if (i < s.size() && s[i] == '.') {
      ++i;
      continue;
    }
    return i;
  }
}

// sub-domain = Let-dig [Ldh-str], or a U-label with SMTPUTF8.
bool IsValidLabel(std::string_view label, bool utf8_allowed) {
  if (label.empty()) return false;
  if (label.front() == '-' || label.back() == '-') return false;
  bool ascii = true;
  for (std::size_t i = 0; i < label.size();) {
    const char c = label[i];
    if (IsLetDig(c) || c == '-') {
      ++i;
    } else if (utf8_allowed && IsNonAscii(c)) {
      const std::size_t n = Utf8SequenceLength(label, i);
      if (n == 0) return false;
      ascii = false;
      i += n;
    } else {
      return false;
    }
  }
  // RFC 1035 2.3.4: 63 octets a label. A U-label's limit is that of its
  // A-label, which we do not compute; the domain's 255 still holds.
  return !ascii || label.size() <= 63;
}

bool IsIpv4(std::string_view s) {
  // IPv4-address-literal = Snum 3("." Snum); Snum = 1*3DIGIT (0..255)
  int parts = 0;
  std::size_t i = 0;
  while (true) {
    int value = 0, digits = 0;
    while (i < s.size() && IsDigit(s[i]) && digits < 4) {
      value = value * 10 + (s[i] - '0');
      ++digits;
      ++i;
    }
    if (digits == 0 || digits > 3 || value > 255) return false;
    ++parts;
    if (i == s.size()) return parts == 4;
    if (s[i] != '.' || parts == 4) return false;
    ++i;
  }
}

// A ':'-separated list of 1*4HEXDIG groups, possibly empty; the last item
// may be an IPv4 address (counted as two groups).
bool CountIpv6Groups(std::string_view s, bool v4_allowed, std::size_t& groups) {
  groups = 0;
  if (s.empty()) return true;
  std::size_t start = 0;
  while (true) {
    const std::size_t colon = s.find(':', start);
    const std::string_view group = s.substr(start, colon - start);
    if (colon == std::string_view::npos && v4_allowed &&
        group.find('.') != std::string_view::npos) {
      if (!IsIpv4(group)) return false;
      groups += 2;
      return true;
    }
    if (group.empty() || group.size() > 4) return false;
    for (char c : group) {
      if (!IsHex(c)) return false;
    }
    ++groups;
    if (colon == std::string_view::npos) return true;
    start = colon + 1;
  }
}

// IPv6-addr, RFC 5321 4.1.3: full (8 groups, or 6 and an IPv4), or
// compressed, where "::" stands for at least two groups and at most six
// others (an IPv4 counting as two) may be present.
bool IsIpv6(std::string_view s) {
  const std::size_t dc = s.find("::");
  std::size_t n = 0;
  if (dc == std::string_view::npos) {
    return CountIpv6Groups(s, true, n) && n == 8;
  }
  if (s.find("::", dc + 1) != std::string_view::npos) return false;
  std::size_t left = 0, right = 0;
  if (!CountIpv6Groups(s.substr(0, dc), false, left)) return false;
  if (!CountIpv6Groups(s.substr(dc + 2), true, right)) return false;
  return left + right <= 6;
}

tl::expected<Mailbox, Reply> ParseMailboxImpl(std::string_view text,
                                              PathRole role,
                                              bool utf8_allowed) {
  const std::size_t n = ScanLocalPart(text, utf8_allowed);
  if (n == 0 || n >= text.size() || text[n] != '@') return SyntaxError(role);
  const std::string_view local = text.substr(0, n);
  const std::string_view domain = text.substr(n + 1);
  if (local.size() > kMaxLocalPartOctets) {
    return Refuse(role, "Local part too long");
  }
  if (domain.size() > kMaxDomainOctets) return Refuse(role, "Domain too long");
  const bool valid = !domain.empty() && domain[0] == '['
                         ? IsValidAddressLiteral(domain)
                         : IsValidDomain(domain, utf8_allowed);
  if (!valid) return SyntaxError(role);
  return Mailbox{std::string(local), std::string(domain)};
}

// Why an over-long path is refused: the most specific of the three limits
// (interface.md gives the reason), judged on the structure alone.
tl::unexpected<Reply> PathTooLong(std::string_view text, PathRole role) {
  if (!text.empty() && text.front() == '<') text.remove_prefix(1);
  if (!text.empty() && text.back() == '>') text.remove_suffix(1);
  if (!text.empty() && text.front() == '@') {
    const std::size_t colon = text.find(':');
    if (colon != std::string_view::npos) text.remove_prefix(colon + 1);
  }
  const std::size_t n = ScanLocalPart(text, /*utf8_allowed=*/true);
  if (n > 0 && n < text.size() && text[n] == '@') {
    if (n > kMaxLocalPartOctets) return Refuse(role, "Local part too long");
    if (text.size() - n - 1 > kMaxDomainOctets) {
      return Refuse(role, "Domain too long");
    }
  }
  return Refuse(role, "Path too long");
}

}  // namespace

bool Mailbox::NeedsSmtpUtf8() const {
  return HasNonAscii(local_part) || HasNonAscii(domain);
}

std::string Mailbox::UnquotedLocalPart() const {
  if (local_part.size() < 2 || local_part.front() != '"' ||
      local_part.back() != '"') {
    return local_part;
  }
  std::string out;
  const std::string_view inner =
      std::string_view(local_part).substr(1, local_part.size() - 2);
  for (std::size_t i = 0; i < inner.size(); ++i) {
    if (inner[i] == '\\' && i + 1 < inner.size()) ++i;
    out += inner[i];
  }
  return out;
}

std::string Mailbox::DomainLower() const {
  std::string out = domain;
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

PathResult ParsePath(std::string_view text, PathRole role, bool utf8_allowed) {
  if (text.size() > kMaxPathOctets) return PathTooLong(text, role);
  if (text.size() < 2 || text.front() != '<' || text.back() != '>') {
    return SyntaxError(role);
  }
  std::string_view inner = text.substr(1, text.size() - 2);
  if (inner.empty()) {
    // Reverse-path = Path / "<>"; a forward-path is never null.
    if (role == PathRole::kSender) return std::optional<Mailbox>();
    return SyntaxError(role);
  }
  if (!utf8_allowed && HasNonAscii(inner)) return NeedsUtf8Error();
  if (inner[0] == '@') {
    // A-d-l = At-domain *( "," At-domain ) ":" ; accepted and dropped
    // (RFC 5321 4.1.2 and appendix C).
    const std::size_t colon = inner.find(':');
    if (colon == std::string_view::npos) return SyntaxError(role);
    std::string_view adl = inner.substr(0, colon);
    while (true) {
      const std::size_t comma = adl.find(',');
      const std::string_view at_domain = adl.substr(0, comma);
      if (at_domain.size() < 2 || at_domain[0] != '@' ||
          !IsValidDomain(at_domain.substr(1), utf8_allowed)) {
        return SyntaxError(role);
      }
      if (comma == std::string_view::npos) break;
      adl.remove_prefix(comma + 1);
    }
    inner.remove_prefix(colon + 1);
  }
  if (role == PathRole::kRecipient && EqualsIgnoreCase(inner, "postmaster")) {
    // RFC 5321 4.1.1.3: "<Postmaster>" without a domain, any case.
    return std::optional<Mailbox>(Mailbox{std::string(inner), {}});
  }
  auto mailbox = ParseMailboxImpl(inner, role, utf8_allowed);
  if (!mailbox) return tl::unexpected(std::move(mailbox.error()));
  return std::optional<Mailbox>(std::move(*mailbox));
}

tl::expected<Mailbox, Reply> ParseMailbox(std::string_view text, PathRole role,
                                          bool utf8_allowed) {
  if (!utf8_allowed && HasNonAscii(text)) return NeedsUtf8Error();
  return ParseMailboxImpl(text, role, utf8_allowed);
}

bool IsValidDomain(std::string_view text, bool utf8_allowed) {
  // Domain = sub-domain *("." sub-domain), RFC 5321 4.1.2.
  if (text.empty() || text.size() > kMaxDomainOctets) return false;
  while (true) {
    const std::size_t dot = text.find('.');
    if (!IsValidLabel(text.substr(0, dot), utf8_allowed)) return false;
    if (dot == std::string_view::npos) return true;
    text.remove_prefix(dot + 1);
  }
}

bool IsValidAddressLiteral(std::string_view text) {
  if (text.size() < 3 || text.size() > kMaxDomainOctets) return false;
  if (text.front() != '[' || text.back() != ']') return false;
  const std::string_view inner = text.substr(1, text.size() - 2);
  if (IsIpv4(inner)) return true;
  const std::size_t colon = inner.find(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  const std::string_view tag = inner.substr(0, colon);
  const std::string_view content = inner.substr(colon + 1);
  if (EqualsIgnoreCase(tag, "IPv6")) return IsIpv6(content);
  // General-address-literal = Standardized-tag ":" 1*dcontent
  // Standardized-tag = Ldh-str; dcontent = %d33-90 / %d94-126
  if (!IsLetDig(tag.back())) return false;
  for (char c : tag) {
    if (!IsLetDig(c) && c != '-') return false;
  }
  if (content.empty()) return false;
  for (char c : content) {
    if (c < 33 || c > 126 || c == '[' || c == '\\' || c == ']') return false;
  }
  return true;
}

}  // namespace petrel::smtp
