#include "smtp/params.h"

#include <limits>
#include <optional>
#include <utility>
#include <vector>

#include "smtp/utf8.h"

namespace petrel::smtp {
namespace {

// RFC 3461 4.4 and 4.2: the longest ENVID and ORCPT values, encoded.
constexpr std::size_t kMaxEnvidOctets = 100;
// AUTH=: an xtext mailbox; the 512-octet command line bounds it anyway.
constexpr std::size_t kMaxAuthOctets = 500;
constexpr std::size_t kMaxOrcptOctets = 500;
// How much of a peer's keyword we echo in a reply (Format() CHECKs 512).
constexpr std::size_t kMaxEchoOctets = 32;

bool IsAlpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

char ToUpper(char c) {
  return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c;
}
char ToLower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (ToUpper(a[i]) != ToUpper(b[i])) return false;
  }
  return true;
}

bool StartsWithIgnoreCase(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() &&
         EqualsIgnoreCase(text.substr(0, prefix.size()), prefix);
}

int HexValue(char c) {
  if (IsDigit(c)) return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;  // RFC 3461 4: upper-case hex only
}

tl::unexpected<Reply> Refuse(int code, EnhancedStatus status,
                             std::string text) {
  return tl::unexpected(MakeReply(code, status, std::move(text)));
}

tl::unexpected<Reply> SyntaxError(std::string text) {
  return Refuse(501, {5, 5, 4}, std::move(text));
}

tl::unexpected<Reply> NotSupported(std::string_view keyword) {
  std::string upper;
  for (char c : keyword.substr(0, kMaxEchoOctets)) upper += ToUpper(c);
  return Refuse(555, {5, 5, 4}, "Unsupported parameter: " + upper);
}

// xtext decoding, optionally also passing raw UTF-8 through (RFC 6533
// utf-8-addr-unitext, for ORCPT with SMTPUTF8). Decoded octets must be
// printable ASCII (RFC 3461 4.2, 4.4: these values end up in DSN fields),
// or UTF-8 when allowed.
std::optional<std::string> DecodeValue(std::string_view text, bool utf8) {
  std::string out;
  for (std::size_t i = 0; i < text.size();) {
    const char c = text[i];
    if (c == '+') {
      if (text.size() - i < 3) return std::nullopt;
      const int hi = HexValue(text[i + 1]), lo = HexValue(text[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      const int octet = hi * 16 + lo;
      if (octet < 0x20 || octet > 0x7E) return std::nullopt;
      out += static_cast<char>(octet);
      i += 3;
    } else if (c >= '!' && c <= '~' && c != '=') {
      out += c;
      ++i;
    } else if (utf8 && static_cast<unsigned char>(c) >= 0x80) {
      const std::size_t n = Utf8SequenceLength(text, i);
      if (n == 0) return std::nullopt;
      out.append(text.substr(i, n));
      i += n;
    } else {
      return std::nullopt;
    }
  }
  return out;
}

struct Param {
  std::string_view keyword;
  std::optional<std::string_view> value;
};

// The argument after "FROM:" or "TO:": the path, then the parameters.
struct SplitArgument {
  std::string_view path;
  std::vector<Param> params;
};

// Splits `rest` (spaces after the colon already skipped) into the path and
// its parameters: Mail-parameters = esmtp-param *(SP esmtp-param),
// esmtp-param = esmtp-keyword ["=" esmtp-value] (RFC 5321 4.1.2). Runs of
// spaces between parameters are tolerated, as by Postfix.
tl::expected<SplitArgument, Reply> Split(std::string_view rest,
                                         const OfferedExtensions& offered,
                                         bool utf8_values) {
  SplitArgument split;
  // The path ends at the first '>' outside a quoted string, so that
  // <"a> b"@example.org> is one path.
  std::size_t end = std::string_view::npos;
  if (!rest.empty() && rest[0] == '<') {
    bool quoted = false;
    for (std::size_t i = 1; i < rest.size(); ++i) {
      const char c = rest[i];
      if (quoted && c == '\\') {
        ++i;
      } else if (c == '"') {
        quoted = !quoted;
      } else if (!quoted && c == '>') {
        end = i + 1;
        break;
      }
    }
  }
  if (end == std::string_view::npos ||
      (end < rest.size() && rest[end] != ' ')) {
    // No well-delimited path: hand the first word to ParsePath, which says
    // what is wrong with it.
    end = rest.find(' ', end == std::string_view::npos ? 0 : end);
  }
  split.path = rest.substr(0, end);
  std::string_view params =
      end == std::string_view::npos ? std::string_view() : rest.substr(end);

  while (!params.empty()) {
    const std::size_t start = params.find_first_not_of(' ');
    if (start == std::string_view::npos) break;
    params.remove_prefix(start);
    const std::size_t space = params.find(' ');
    const std::string_view token = params.substr(0, space);
    params = space == std::string_view::npos ? std::string_view()
                                             : params.substr(space);
    if (!offered.esmtp) {
      // RFC 5321 4.1.1.11: no parameters without EHLO.
      return Refuse(555, {5, 5, 4}, "Parameters not supported after HELO");
    }
    Param param;
    const std::size_t eq = token.find('=');
    param.keyword = token.substr(0, eq);
    // esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
    if (param.keyword.empty() || param.keyword[0] == '-') {
      return SyntaxError("Syntax error in parameters");
    }
    for (char c : param.keyword) {
      if (!IsAlpha(c) && !IsDigit(c) && c != '-') {
        return SyntaxError("Syntax error in parameters");
      }
    }
    if (eq != std::string_view::npos) {
      // esmtp-value = 1*(%d33-60 / %d62-126), plus UTF-8 with SMTPUTF8
      // (RFC 6531 3.3).
      const std::string_view value = token.substr(eq + 1);
      if (value.empty()) return SyntaxError("Syntax error in parameters");
      for (std::size_t i = 0; i < value.size();) {
        const char c = value[i];
        if (c >= 33 && c <= 126 && c != '=') {
          ++i;
        } else if (utf8_values && static_cast<unsigned char>(c) >= 0x80 &&
                   Utf8SequenceLength(value, i) > 0) {
          i += Utf8SequenceLength(value, i);
        } else {
          return SyntaxError("Syntax error in parameters");
        }
      }
      param.value = value;
    }
    split.params.push_back(param);
  }
  return split;
}

// "FROM:" / "TO:" and any spaces after the colon.
bool SkipPrefix(std::string_view& arg, std::string_view prefix) {
  if (!StartsWithIgnoreCase(arg, prefix)) return false;
  arg.remove_prefix(prefix.size());
  const std::size_t start = arg.find_first_not_of(' ');
  arg.remove_prefix(start == std::string_view::npos ? arg.size() : start);
  return true;
}

// SIZE=, RFC 1870: size-value = 1*20DIGIT. Values past 2^64-1 saturate:
// they are over any limit we could have.
bool ParseSizeValue(std::string_view text, std::uint64_t& out) {
  if (text.empty() || text.size() > 20) return false;
  constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();
  std::uint64_t value = 0;
  for (char c : text) {
    if (!IsDigit(c)) return false;
    const auto digit = static_cast<std::uint64_t>(c - '0');
    value = value > (kMax - digit) / 10 ? kMax : value * 10 + digit;
  }
  out = value;
  return true;
}

}  // namespace

tl::expected<MailCommand, Reply> ParseMailArgument(
    std::string_view arg, const OfferedExtensions& offered) {
  if (!SkipPrefix(arg, "FROM:")) {
    return SyntaxError("Syntax: MAIL FROM:<address>");
  }
  auto split = Split(arg, offered, offered.smtputf8);
  if (!split) return tl::unexpected(std::move(split.error()));

  MailCommand mail;
  MailParams& p = mail.params;
  bool seen_size = false, seen_body = false, seen_utf8 = false,
       seen_ret = false, seen_envid = false, seen_auth = false;
  auto duplicate = [](bool& seen) {
    const bool was = seen;
    seen = true;
    return was;
  };
  for (const Param& param : split->params) {
    const std::string_view k = param.keyword;
    const std::optional<std::string_view>& v = param.value;
    if (EqualsIgnoreCase(k, "SIZE") && offered.size) {
      if (duplicate(seen_size)) return SyntaxError("Duplicate SIZE parameter");
      std::uint64_t size = 0;
      if (!v || !ParseSizeValue(*v, size)) {
        return SyntaxError("Bad SIZE parameter");
      }
      if (offered.max_message_size != 0 && size > offered.max_message_size) {
        return Refuse(552, {5, 3, 4},
                      "Message size exceeds fixed maximum message size");
      }
      p.size = size;
    } else if (EqualsIgnoreCase(k, "BODY") && offered.eight_bit_mime) {
      if (duplicate(seen_body)) return SyntaxError("Duplicate BODY parameter");
      if (v && EqualsIgnoreCase(*v, "7BIT")) {
        p.body = Body::k7Bit;
      } else if (v && EqualsIgnoreCase(*v, "8BITMIME")) {
        p.body = Body::k8BitMime;
      } else if (v && EqualsIgnoreCase(*v, "BINARYMIME")) {
        // RFC 3030 3: only with BINARYMIME offered, which we do not.
        return Refuse(555, {5, 5, 4}, "BODY=BINARYMIME is not supported");
      } else {
        return SyntaxError("Bad BODY parameter");
      }
    } else if (EqualsIgnoreCase(k, "SMTPUTF8") && offered.smtputf8) {
      if (duplicate(seen_utf8)) {
        return SyntaxError("Duplicate SMTPUTF8 parameter");
      }
      if (v) return SyntaxError("SMTPUTF8 takes no value");
      p.smtputf8 = true;
    } else if (EqualsIgnoreCase(k, "RET") && offered.dsn) {
      if (duplicate(seen_ret)) return SyntaxError("Duplicate RET parameter");
      if (v && EqualsIgnoreCase(*v, "FULL")) {
        p.ret = DsnRet::kFull;
      } else if (v && EqualsIgnoreCase(*v, "HDRS")) {
        p.ret = DsnRet::kHeaders;
      } else {
        return SyntaxError("Bad RET parameter");
      }
    } else if (EqualsIgnoreCase(k, "ENVID") && offered.dsn) {
      if (duplicate(seen_envid)) {
        return SyntaxError("Duplicate ENVID parameter");
      }
      std::optional<std::string> envid;
      if (v && v->size() <= kMaxEnvidOctets) envid = DecodeValue(*v, false);
      if (!envid || envid->empty()) return SyntaxError("Bad ENVID parameter");
      p.envid = std::move(*envid);
    } else if (EqualsIgnoreCase(k, "AUTH") && offered.auth) {
      if (duplicate(seen_auth)) return SyntaxError("Duplicate AUTH parameter");
      std::optional<std::string> who;
      if (v && *v == "<>") {
        who = "<>";
      } else if (v && v->size() <= kMaxAuthOctets) {
        who = DecodeValue(*v, false);
      }
      if (!who || who->empty()) return SyntaxError("Bad AUTH parameter");
      p.auth = std::move(*who);
    } else {
      return NotSupported(k);
    }
  }

  auto path = ParsePath(split->path, PathRole::kSender, p.smtputf8);
  if (!path) return tl::unexpected(std::move(path.error()));
  mail.reverse_path = std::move(*path);
  return mail;
}

tl::expected<RcptCommand, Reply> ParseRcptArgument(
    std::string_view arg, const OfferedExtensions& offered, bool utf8_allowed) {
  if (!SkipPrefix(arg, "TO:")) return SyntaxError("Syntax: RCPT TO:<address>");
  auto split = Split(arg, offered, utf8_allowed);
  if (!split) return tl::unexpected(std::move(split.error()));

  auto path = ParsePath(split->path, PathRole::kRecipient, utf8_allowed);
  if (!path) return tl::unexpected(std::move(path.error()));
  if (!*path) {  // ParsePath never gives the null path to a recipient
    return Refuse(501, {5, 1, 3}, "Bad recipient address syntax");
  }
  RcptCommand rcpt;
  rcpt.forward_path = std::move(**path);

  RcptParams& p = rcpt.params;
  bool seen_notify = false, seen_orcpt = false;
  for (const Param& param : split->params) {
    const std::string_view k = param.keyword;
    const std::optional<std::string_view>& v = param.value;
    if (EqualsIgnoreCase(k, "NOTIFY") && offered.dsn) {
      if (seen_notify) return SyntaxError("Duplicate NOTIFY parameter");
      seen_notify = true;
      if (!v) return SyntaxError("Bad NOTIFY parameter");
      // "NEVER" / 1#( "SUCCESS" / "FAILURE" / "DELAY" ), RFC 3461 4.1.
      std::string_view list = *v;
      std::uint8_t flags = 0;
      while (true) {
        const std::size_t comma = list.find(',');
        const std::string_view item = list.substr(0, comma);
        std::uint8_t flag = 0;
        if (EqualsIgnoreCase(item, "NEVER")) {
          flag = kNotifyNever;
        } else if (EqualsIgnoreCase(item, "SUCCESS")) {
          flag = kNotifySuccess;
        } else if (EqualsIgnoreCase(item, "FAILURE")) {
          flag = kNotifyFailure;
        } else if (EqualsIgnoreCase(item, "DELAY")) {
          flag = kNotifyDelay;
        }
        if (flag == 0 || (flags & flag) != 0) {
          return SyntaxError("Bad NOTIFY parameter");
        }
        flags |= flag;
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
      }
      if ((flags & kNotifyNever) != 0 && flags != kNotifyNever) {
        return SyntaxError("Bad NOTIFY parameter: NEVER must be alone");
      }
      p.notify = flags;
    } else if (EqualsIgnoreCase(k, "ORCPT") && offered.dsn) {
      if (seen_orcpt) return SyntaxError("Duplicate ORCPT parameter");
      seen_orcpt = true;
      // ORCPT=addr-type ";" xtext, RFC 3461 4.2; addr-type = atom.
      const std::size_t semi = v ? v->find(';') : std::string_view::npos;
      if (!v || v->size() > kMaxOrcptOctets || semi == 0 ||
          semi == std::string_view::npos) {
        return SyntaxError("Bad ORCPT parameter");
      }
      std::string type;
      for (char c : v->substr(0, semi)) {
        if (!IsAlpha(c) && !IsDigit(c) && c != '-') {
          return SyntaxError("Bad ORCPT parameter");
        }
        type += ToLower(c);
      }
      std::optional<std::string> address =
          DecodeValue(v->substr(semi + 1), utf8_allowed);
      if (!address || address->empty()) {
        return SyntaxError("Bad ORCPT parameter");
      }
      p.orcpt_type = std::move(type);
      p.orcpt_address = std::move(*address);
    } else {
      return NotSupported(k);
    }
  }
  return rcpt;
}

std::optional<std::string> DecodeXtext(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size();) {
    const char c = text[i];
    if (c == '+') {
      if (text.size() - i < 3) return std::nullopt;
      const int hi = HexValue(text[i + 1]), lo = HexValue(text[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 3;
    } else if (c >= '!' && c <= '~' && c != '=') {
      out += c;
      ++i;
    } else {
      return std::nullopt;
    }
  }
  return out;
}

std::string EncodeXtext(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : text) {
    if (c >= '!' && c <= '~' && c != '+' && c != '=') {
      out += c;
    } else {
      const auto octet = static_cast<unsigned char>(c);
      out += '+';
      out += kHex[octet >> 4];
      out += kHex[octet & 0xF];
    }
  }
  return out;
}

}  // namespace petrel::smtp
