#include "delivery/dsn.h"

#include <algorithm>
#include <cstdio>
#include <ctime>

#include "base/check.h"
#include "base/date.h"
#include "smtp/header_scanner.h"
#include "smtp/reply.h"
#include "smtp/utf8.h"
#include "spool/spool.h"

namespace petrel::delivery {
namespace {

// RFC 5322 2.1.1: at most 998 octets a line, excluding CRLF; 78 preferred.
constexpr std::size_t kHardLineOctets = 998;
constexpr std::size_t kSoftLineOctets = 78;
// Addresses and identifiers are cut to this, so that with their field name
// they always fit on one line and are never folded (folding would insert
// white space into an address).
constexpr std::size_t kMaxAddressOctets = 900;
// Diagnostic text, before folding.
constexpr std::size_t kMaxDiagnosticOctets = 1000;
// The human-readable text is wrapped at this width.
constexpr std::size_t kTextWidth = 76;

bool IsAscii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    return static_cast<unsigned char>(c) < 0x80;
  });
}

// SanitizeText, then every non-ASCII character as one '?': for the 7-bit
// message/delivery-status part.
std::string AsciiOnly(std::string_view sanitized) {
  std::string out;
  out.reserve(sanitized.size());
  for (char c : sanitized) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x80) {
      out += c;
    } else if (u >= 0xC0) {
      out += '?';  // a lead octet; its continuation octets are dropped
    }
  }
  return out;
}

// Peer text for a field or a text line: no controls, no line ends, runs of
// white space as one space, trimmed. Valid UTF-8 is kept unless `ascii`.
std::string CleanText(std::string_view text, std::size_t max_octets,
                      bool ascii) {
  std::string s = smtp::SanitizeText(text, max_octets);
  if (ascii) s = AsciiOnly(s);
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == ' ' && (out.empty() || out.back() == ' ')) continue;
    out += c;
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

// An address or identifier: no controls or line ends, white space kept (it
// may be inside a quoted local-part), cut so that it is never folded.
std::string CleanAddress(std::string_view text, bool ascii) {
  std::string s = smtp::SanitizeText(text, kMaxAddressOctets);
  return ascii ? AsciiOnly(s) : s;
}

// A host name for Message-ID, From:, Reporting-MTA and the boundary:
// letters, digits, '.', '-'; anything else becomes '-'.
std::string CleanHost(std::string_view host) {
  std::string out;
  for (char c : host.substr(0, 255)) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    (c >= '0' && c <= '9') || c == '.' || c == '-';
    out += ok ? c : '-';
  }
  return out.empty() ? std::string("localhost") : out;
}

// A queue ID for Message-ID and the boundary: [0-9A-Za-z_.-] as spool ids.
std::string CleanId(std::string_view id) {
  std::string out;
  for (char c : id.substr(0, 64)) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
    out += ok ? c : '_';
  }
  return out.empty() ? std::string("0") : out;
}

// Backs `pos` up to the start of a UTF-8 sequence, so that a cut there
// does not split one (at most 3 octets back: other octets are not UTF-8).
std::size_t Utf8Boundary(std::string_view s, std::size_t pos) {
  for (int i = 0; i < 3 && pos > 0 && pos < s.size() &&
                  (static_cast<unsigned char>(s[pos]) & 0xC0) == 0x80;
       ++i) {
    --pos;
  }
  return pos;
}

// Appends "Name: value" CRLF (RFC 5322 2.2.3). `value` has no CR, LF or
// other control character (CleanText, CleanAddress). A line that would
// pass 78 octets is folded before a single space between two non-space
// octets, so unfolding gives back the value and no continuation line is
// white space only; a piece longer than 998 octets is cut by a fold (which
// adds a space), and a cut-off tail of white space only is dropped.
void AppendField(std::string& out, std::string_view name,
                 std::string_view value) {
  CHECK(value.find_first_of("\r\n") == std::string_view::npos);
  auto is_fold_point = [&](std::size_t i) {
    return value[i] == ' ' && i > 0 && value[i - 1] != ' ' &&
           i + 1 < value.size() && value[i + 1] != ' ';
  };
  std::vector<std::string> lines;
  std::string line(name);
  line += ": ";
  std::size_t pos = 0;
  while (pos < value.size()) {
    std::size_t end = pos + 1;
    while (end < value.size() && !is_fold_point(end)) ++end;
    const std::string_view piece = value.substr(pos, end - pos);
    if (pos > 0 && line.size() + piece.size() > kSoftLineOctets) {
      lines.push_back(std::move(line));
      line.clear();  // the piece's own space starts the continuation
    }
    line += piece;
    pos = end;
  }
  lines.push_back(std::move(line));
  for (std::string& l : lines) {
    std::string_view rest = l;
    bool first = true;
    while (!rest.empty()) {
      if (!first) {
        if (rest.find_first_not_of(' ') == std::string_view::npos) break;
        out += ' ';
      }
      const std::size_t room = kHardLineOctets - (first ? 0 : 1);
      std::size_t take = rest.size();
      if (take > room) {
        take = Utf8Boundary(rest, room);
        if (take == 0) take = room;
      }
      out += rest.substr(0, take);
      out += "\r\n";
      rest.remove_prefix(take);
      first = false;
    }
  }
}

// Wraps a text paragraph at kTextWidth (continuation lines indented by
// `indent` spaces) and appends it with CRLF; a word too long for a line of
// 998 octets is cut. `text` has no control characters (CleanText).
void AppendWrapped(std::string& out, std::string_view text,
                   std::size_t indent) {
  std::string line;
  bool has_word = false;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find(' ', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view word = text.substr(pos, end - pos);
    pos = end + 1;
    if (word.empty()) continue;
    if (has_word && line.size() + 1 + word.size() > kTextWidth) {
      out += line;
      out += "\r\n";
      line.assign(indent, ' ');
      has_word = false;
    }
    if (has_word) line += ' ';
    while (line.size() + word.size() > kHardLineOctets) {
      std::size_t take = Utf8Boundary(word, kHardLineOctets - line.size());
      if (take == 0) take = kHardLineOctets - line.size();
      out += line;
      out += word.substr(0, take);
      out += "\r\n";
      line.assign(indent, ' ');
      word.remove_prefix(take);
    }
    line += word;
    has_word = true;
  }
  if (has_word) {
    out += line;
    out += "\r\n";
  }
}

// RFC 2045 6.7 quoted-printable of text with CRLF line ends; lines of at
// most 76 octets.
std::string QuotedPrintable(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t eol = text.find("\r\n", pos);
    if (eol == std::string_view::npos) eol = text.size();
    const std::string_view line = text.substr(pos, eol - pos);
    std::string encoded_line;
    for (std::size_t i = 0; i < line.size(); ++i) {
      const auto c = static_cast<unsigned char>(line[i]);
      const bool last = i + 1 == line.size();
      std::string piece;
      if ((c >= 33 && c <= 126 && c != '=') ||
          ((c == ' ' || c == '\t') && !last)) {
        piece = static_cast<char>(c);
      } else {
        piece = {'=', kHex[c >> 4], kHex[c & 15]};
      }
      if (encoded_line.size() + piece.size() > 75) {
        out += encoded_line;
        out += "=\r\n";  // soft line break
        encoded_line.clear();
      }
      encoded_line += piece;
    }
    out += encoded_line;
    out += "\r\n";
    pos = eol + 2;
  }
  return out;
}

// A token of RFC 3464's diagnostic-type / mta-name-type: atom characters.
bool IsTypeToken(std::string_view s) {
  if (s.empty() || s.size() > 32) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '-' || c == '_';
  });
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

struct Diagnostic {
  std::string type;       // "smtp", "X-Petrel"
  std::string text;       // CleanText, ASCII
  std::string text_utf8;  // CleanText, for the human-readable part
};

Diagnostic SplitDiagnostic(std::string_view code) {
  Diagnostic d;
  std::string_view text = code;
  d.type = "X-Petrel";
  const std::size_t semi = code.find(';');
  if (semi != std::string_view::npos &&
      IsTypeToken(Trim(code.substr(0, semi)))) {
    d.type = std::string(Trim(code.substr(0, semi)));
    text = code.substr(semi + 1);
  }
  d.text = CleanText(text, kMaxDiagnosticOctets, /*ascii=*/true);
  d.text_utf8 = CleanText(text, kMaxDiagnosticOctets, /*ascii=*/false);
  return d;
}

// "host[ip]" -> "host"; "[ip]" -> "ip"; "host" -> "host".
std::string RemoteMtaName(std::string_view remote) {
  const std::size_t open = remote.find('[');
  std::string_view name = remote.substr(0, open);
  if (name.empty() && open != std::string_view::npos) {
    std::string_view rest = remote.substr(open + 1);
    name = rest.substr(0, rest.find(']'));
  }
  std::string out = CleanText(name, 255, /*ascii=*/true);
  std::replace(out.begin(), out.end(), ' ', '-');
  return out;
}

// "\x{HEX}" for every character of `s` that is not printable ASCII (or,
// with `specials`, is one of '+', '=', '\\'); "\x{FFFD}" for an octet that
// is not UTF-8. RFC 6533 3.
std::string EscapeUtf8(std::string_view s, bool specials) {
  std::string out;
  char buf[16];
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x21 && c <= 0x7E &&
        !(specials && (c == '+' || c == '=' || c == '\\'))) {
      out += static_cast<char>(c);
      ++i;
      continue;
    }
    std::uint32_t cp = 0xFFFD;
    std::size_t n = smtp::Utf8SequenceLength(s, i);
    if (n == 1) {
      cp = c;
    } else if (n > 1) {
      cp = c & (0xFF >> (n + 1));
      for (std::size_t k = 1; k < n; ++k) {
        cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
      }
    } else {
      n = 1;  // not UTF-8: one replacement character per octet
    }
    std::snprintf(buf, sizeof buf, "\\x{%02X}", static_cast<unsigned>(cp));
    out += buf;
    i += n;
  }
  return out;
}

// A typed address for Final-Recipient / Original-Recipient (RFC 3464
// 2.3.1, 2.3.2): "rfc822; a@b" for ASCII. Non-ASCII goes in the "utf-8"
// type as utf-8-addr-xtext (RFC 6533 3), so the part stays 7-bit. An
// ORCPT of type utf-8 is already utf-8-addr-xtext (or unitext, with
// SMTPUTF8): only its non-ASCII characters are escaped.
std::string TypedAddress(std::string_view type, std::string_view address) {
  const std::string clean = smtp::SanitizeText(address, kMaxAddressOctets);
  std::string lower_type = CleanText(type, 32, /*ascii=*/true);
  std::transform(lower_type.begin(), lower_type.end(), lower_type.begin(),
                 [](unsigned char c) {
                   return static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
                 });
  if (!IsTypeToken(lower_type)) lower_type = "rfc822";
  const bool ascii = IsAscii(clean);
  if (ascii && lower_type != "utf-8") return lower_type + "; " + clean;
  std::string xtext = lower_type == "utf-8" ? EscapeUtf8(clean, false)
                                            : EscapeUtf8(clean, true);
  if (xtext.size() > kMaxAddressOctets) {
    // Cut at the end of a whole character or escape.
    std::size_t cut = kMaxAddressOctets;
    const std::size_t esc = xtext.rfind('\\', cut);
    if (esc != std::string::npos && xtext.find('}', esc) >= cut) cut = esc;
    xtext.resize(cut);
  }
  return "utf-8; " + xtext;
}

// The header section of `content` (at most kDsnMaxReturnedOctets), each
// line with CRLF, NUL and stray CR as '?', cut at 998 octets.
std::string HeaderSection(std::string_view content) {
  const std::string_view capped = content.substr(0, kDsnMaxReturnedOctets);
  smtp::HeaderScanner scanner;
  scanner.Feed(capped);
  const std::string_view header = capped.substr(0, scanner.header_octets());
  std::string out;
  std::size_t pos = 0;
  while (pos < header.size()) {
    std::size_t eol = header.find('\n', pos);
    if (eol == std::string_view::npos) eol = header.size();
    std::string_view line = header.substr(pos, eol - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    std::string clean(line.substr(0, kHardLineOctets));
    clean.resize(Utf8Boundary(line, clean.size()));
    std::replace(clean.begin(), clean.end(), '\0', '?');
    std::replace(clean.begin(), clean.end(), '\r', '?');
    out += clean;
    out += "\r\n";
    pos = eol + 1;
  }
  return out;
}

// Whether `content` can be returned whole as message/rfc822: within the
// cap, every line ends in CRLF and has at most 998 octets, no NUL.
bool ReturnableWhole(std::string_view content) {
  if (content.size() > kDsnMaxReturnedOctets) return false;
  if (content.size() < 2 || content.substr(content.size() - 2) != "\r\n") {
    return false;
  }
  std::size_t line_start = 0;
  for (std::size_t i = 0; i < content.size(); ++i) {
    const char c = content[i];
    if (c == '\0') return false;
    if (c == '\r') {
      if (i + 1 >= content.size() || content[i + 1] != '\n') return false;
      if (i - line_start > kHardLineOctets) return false;
      ++i;
      line_start = i + 1;
    } else if (c == '\n') {
      return false;  // bare LF
    }
  }
  return true;
}

DsnEvent EventOf(const std::vector<DsnRecipientReport>& recipients) {
  bool delayed = false;
  for (const DsnRecipientReport& r : recipients) {
    if (r.action == DsnAction::kFailed) return DsnEvent::kFailure;
    if (r.action == DsnAction::kDelayed) delayed = true;
  }
  return delayed ? DsnEvent::kDelay : DsnEvent::kSuccess;
}

// "3 minutes", "4.0 hours", "2.5 days".
std::string Elapsed(std::int64_t seconds) {
  if (seconds < 0) seconds = 0;
  char buf[64];
  if (seconds < 3600) {
    std::snprintf(buf, sizeof buf, "%lld minutes",
                  static_cast<long long>(seconds / 60));
  } else if (seconds < 2 * 86400) {
    std::snprintf(buf, sizeof buf, "%.1f hours",
                  static_cast<double>(seconds) / 3600.0);
  } else {
    std::snprintf(buf, sizeof buf, "%.1f days",
                  static_cast<double>(seconds) / 86400.0);
  }
  return buf;
}

// One recipient's paragraph in the text part, Postfix style:
// "<rcpt> (expanded from <orig>): host mx[ip] said: 550 ...".
std::string RecipientLine(const DsnRecipientReport& r) {
  std::string line =
      "<" + CleanText(r.final_recipient, kMaxAddressOctets, false) + ">";
  if (!r.original_address.empty()) {
    const std::string orig =
        CleanText(r.original_address, kMaxAddressOctets, false);
    std::string a = orig, b = r.final_recipient;
    auto lower = [](std::string& s) {
      for (char& c : s) {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
      }
    };
    lower(a);
    lower(b);
    if (a != b) line += " (expanded from <" + orig + ">)";
  }
  line += ": ";
  const Diagnostic d = SplitDiagnostic(r.diagnostic_code);
  const std::string host = RemoteMtaName(r.remote_mta);
  const std::string status = r.status.ToString();
  switch (r.action) {
    case DsnAction::kFailed:
    case DsnAction::kDelayed:
      if (!host.empty()) line += "host " + host + " said: ";
      if (!d.text_utf8.empty()) {
        line += d.text_utf8;
      } else {
        line += r.action == DsnAction::kFailed ? "delivery failed"
                                               : "delivery temporarily "
                                                 "deferred";
        line += " (status " + status + ")";
      }
      break;
    case DsnAction::kDelivered:
    case DsnAction::kRelayed:
      line += r.action == DsnAction::kDelivered ? "delivered" : "relayed";
      if (!host.empty()) line += " via " + host;
      if (!d.text_utf8.empty()) line += ": " + d.text_utf8;
      break;
    case DsnAction::kExpanded:
      line += "expanded";
      if (!d.text_utf8.empty()) line += ": " + d.text_utf8;
      break;
  }
  return line;
}

std::string HumanText(const DsnRequest& req, DsnEvent event,
                      const std::string& host, bool headers_for_full) {
  std::string t;
  t += "This is the mail system at host " + host + ".\r\n\r\n";
  switch (event) {
    case DsnEvent::kFailure:
      t += "I'm sorry to have to inform you that your message could not\r\n"
           "be delivered to one or more recipients. It's attached below.\r\n";
      if (headers_for_full) {
        t +=
            "\r\nThe message was too large (or not suitable) to be returned\r\n"
            "in full: only its header section is attached.\r\n";
      }
      break;
    case DsnEvent::kDelay: {
      t +=
          "####################################################################"
          "\r\n"
          "# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #"
          "\r\n"
          "####################################################################"
          "\r\n\r\n";
      if (req.arrival_unix > 0 && req.now_unix >= req.arrival_unix) {
        t += "Your message could not be delivered for " +
             Elapsed(req.now_unix - req.arrival_unix) + ".\r\n";
      } else {
        t += "Your message could not be delivered yet.\r\n";
      }
      std::int64_t until = 0;
      for (const DsnRecipientReport& r : req.recipients) {
        until = std::max(until, r.will_retry_until_unix);
      }
      if (until > 0) {
        t += "It will be retried until " + FormatRfc5322Date(until) + ".\r\n";
      }
      break;
    }
    case DsnEvent::kSuccess:
      t += "Your message was successfully delivered to the destination(s)\r\n"
           "listed below. If the message was delivered to mailbox you will\r\n"
           "receive no further notifications. Otherwise you may still "
           "receive\r\n"
           "notifications of mail delivery errors from other systems.\r\n";
      break;
  }
  if (event != DsnEvent::kSuccess) {
    t += "\r\nFor further assistance, please send mail to postmaster.\r\n\r\n"
         "If you do so, please include this problem report. You can\r\n"
         "delete your own text from the attached returned message.\r\n";
  }
  t += "\r\n                   The mail system\r\n";
  for (const DsnRecipientReport& r : req.recipients) {
    t += "\r\n";
    AppendWrapped(t, RecipientLine(r), 4);
  }
  return t;
}

std::string DeliveryStatus(const DsnRequest& req, const std::string& host) {
  std::string s;
  AppendField(s, "Reporting-MTA", "dns; " + host);
  AppendField(s, "X-Petrel-Queue-ID", CleanId(req.queue_id));
  AppendField(s, "X-Petrel-Sender", TypedAddress("rfc822", req.sender));
  if (!req.envid.empty()) {
    AppendField(s, "Original-Envelope-Id", CleanAddress(req.envid, true));
  }
  if (req.arrival_unix > 0) {
    AppendField(s, "Arrival-Date", FormatRfc5322Date(req.arrival_unix));
  }
  for (const DsnRecipientReport& r : req.recipients) {
    s += "\r\n";
    if (!r.original_address.empty()) {
      AppendField(
          s, "Original-Recipient",
          TypedAddress(r.original_type.empty() ? "rfc822" : r.original_type,
                       r.original_address));
    }
    AppendField(s, "Final-Recipient",
                TypedAddress("rfc822", r.final_recipient));
    AppendField(s, "Action", DsnActionName(r.action));
    AppendField(s, "Status", r.status.ToString());
    const std::string host_name = RemoteMtaName(r.remote_mta);
    if (!host_name.empty()) AppendField(s, "Remote-MTA", "dns; " + host_name);
    if (!r.diagnostic_code.empty()) {
      const Diagnostic d = SplitDiagnostic(r.diagnostic_code);
      AppendField(s, "Diagnostic-Code", d.type + "; " + d.text);
    }
    if (r.last_attempt_unix > 0) {
      AppendField(s, "Last-Attempt-Date",
                  FormatRfc5322Date(r.last_attempt_unix));
    }
    if (r.action == DsnAction::kDelayed && r.will_retry_until_unix > 0) {
      AppendField(s, "Will-Retry-Until",
                  FormatRfc5322Date(r.will_retry_until_unix));
    }
  }
  return s;
}

// "20240101120000" for Message-ID.
std::string CompactTime(std::int64_t unix_seconds) {
  const std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d%02d%02d%02d%02d%02d", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

}  // namespace

std::string_view DsnActionName(DsnAction action) {
  switch (action) {
    case DsnAction::kFailed:
      return "failed";
    case DsnAction::kDelayed:
      return "delayed";
    case DsnAction::kDelivered:
      return "delivered";
    case DsnAction::kRelayed:
      return "relayed";
    case DsnAction::kExpanded:
      return "expanded";
  }
  return "failed";
}

bool ShouldSendDsn(std::string_view sender, std::uint8_t notify,
                   DsnEvent event) {
  if (sender.empty()) return false;  // never bounce a bounce
  if (notify & smtp::kNotifyNever) return false;
  switch (event) {
    case DsnEvent::kFailure:
      return notify == smtp::kNotifyUnspecified ||
             (notify & smtp::kNotifyFailure) != 0;
    case DsnEvent::kDelay:
      return notify == smtp::kNotifyUnspecified ||
             (notify & smtp::kNotifyDelay) != 0;
    case DsnEvent::kSuccess:
      return (notify & smtp::kNotifySuccess) != 0;
  }
  return false;
}

std::string FormatRfc5322Date(std::int64_t unix_seconds) {
  return Rfc5322Date(unix_seconds);
}

std::string EncodeUtf8AddrXtext(std::string_view address) {
  return EscapeUtf8(address, /*specials=*/true);
}

Dsn BuildDsn(const DsnRequest& req) {
  CHECK(!req.sender.empty());
  CHECK(!req.recipients.empty());
  const DsnEvent event = EventOf(req.recipients);
  const std::string host = CleanHost(req.reporting_mta);
  const std::string id = CleanId(req.queue_id);

  // The returned content (RFC 3461 4.3: whole only for failures, on
  // request, and when it fits).
  const bool want_full =
      event == DsnEvent::kFailure && req.ret == smtp::DsnRet::kFull;
  const bool full = want_full && ReturnableWhole(req.content);
  std::string returned;
  std::string returned_header;  // to tell whether it has UTF-8
  if (full) {
    returned = std::string(req.content);
    smtp::HeaderScanner scanner;
    scanner.Feed(req.content);
    returned_header = returned.substr(0, scanner.header_octets());
  } else {
    returned = HeaderSection(req.content);
    returned_header = returned;
  }
  const bool returned_8bit = !IsAscii(returned);
  const bool returned_header_utf8 = !IsAscii(returned_header);
  const bool global = req.smtputf8 && returned_header_utf8;

  const std::string sender = CleanAddress(req.sender, /*ascii=*/false);
  const bool to_utf8 = !IsAscii(sender);

  const std::string text = HumanText(req, event, host, want_full && !full);
  const bool text_ascii = IsAscii(text);
  const std::string text_body = text_ascii ? text : QuotedPrintable(text);
  const std::string status = DeliveryStatus(req, host);

  std::string part3_head;
  switch (event) {
    case DsnEvent::kFailure:
      part3_head = full ? "Content-Description: Undelivered Message\r\n"
                        : "Content-Description: Undelivered Message "
                          "Headers\r\n";
      break;
    case DsnEvent::kDelay:
      part3_head = "Content-Description: Delayed Message Headers\r\n";
      break;
    case DsnEvent::kSuccess:
      part3_head = "Content-Description: Delivered Message Headers\r\n";
      break;
  }
  if (full) {
    part3_head += global ? "Content-Type: message/global\r\n"
                         : "Content-Type: message/rfc822\r\n";
  } else {
    part3_head += global ? "Content-Type: message/global-headers\r\n"
                         : "Content-Type: text/rfc822-headers\r\n";
  }
  if (returned_8bit) part3_head += "Content-Transfer-Encoding: 8bit\r\n";

  // A boundary found nowhere in the parts (RFC 2046 5.1.1).
  const std::string base =
      (id + "." + std::to_string(req.now_unix) + "/" + host).substr(0, 60);
  std::string boundary = base;
  for (unsigned k = 1;; ++k) {
    const std::string delimiter = "--" + boundary;
    if (text_body.find(delimiter) == std::string::npos &&
        status.find(delimiter) == std::string::npos &&
        returned.find(delimiter) == std::string::npos) {
      break;
    }
    boundary = base + "=" + std::to_string(k);
  }

  Dsn dsn;
  dsn.eight_bit = returned_8bit || to_utf8;
  dsn.smtputf8 = req.smtputf8 && (to_utf8 || returned_header_utf8);
  std::string event_name;
  std::string subject;
  switch (event) {
    case DsnEvent::kFailure:
      event_name = "failed";
      subject = "Undelivered Mail Returned to Sender";
      break;
    case DsnEvent::kDelay:
      event_name = "delayed";
      subject = "Delayed Mail (still being retried)";
      break;
    case DsnEvent::kSuccess:
      event_name = "delivered";
      subject = "Successful Mail Delivery Report";
      break;
  }
  dsn.message_id = "<" + CompactTime(req.now_unix) + "." + id + "." +
                   event_name + "@" + host.substr(0, kMaxAddressOctets - 100) +
                   ">";

  std::string& m = dsn.message;
  m.reserve(text_body.size() + status.size() + returned.size() + 2048);
  AppendField(m, "From",
              "\"Mail Delivery System\" <MAILER-DAEMON@" + host + ">");
  AppendField(m, "To", "<" + sender + ">");
  AppendField(m, "Subject", subject);
  AppendField(m, "Date", FormatRfc5322Date(req.now_unix));
  AppendField(m, "Message-ID", dsn.message_id);
  AppendField(m, "MIME-Version", "1.0");
  AppendField(m, "Auto-Submitted", "auto-replied");
  AppendField(m, "Content-Type",
              "multipart/report; report-type=delivery-status; boundary=\"" +
                  boundary + "\"");
  AppendField(m, "Content-Transfer-Encoding", returned_8bit ? "8bit" : "7bit");
  m += "\r\nThis is a MIME-encapsulated message.\r\n";

  m += "\r\n--" + boundary + "\r\n";
  m += "Content-Description: Notification\r\n";
  m += text_ascii ? "Content-Type: text/plain; charset=us-ascii\r\n"
                  : "Content-Type: text/plain; charset=utf-8\r\n"
                    "Content-Transfer-Encoding: quoted-printable\r\n";
  m += "\r\n";
  m += text_body;

  m += "\r\n--" + boundary + "\r\n";
  m += "Content-Description: Delivery report\r\n";
  m += "Content-Type: message/delivery-status\r\n\r\n";
  m += status;

  m += "\r\n--" + boundary + "\r\n";
  m += part3_head;
  m += "\r\n";
  m += returned;

  m += "\r\n--" + boundary + "--\r\n";
  return dsn;
}

Result<std::string> ReadContentForDsn(spool::Spool& spool,
                                      const std::string& id) {
  std::string out;
  bool enough = false;
  Status s = spool.ReadContent(id, [&](std::string_view piece) {
    const std::size_t room = kDsnContentReadOctets - out.size();
    out.append(piece.substr(0, room));
    if (out.size() >= kDsnContentReadOctets) {
      enough = true;
      return Status::Unavailable("enough for a DSN");  // stops the read
    }
    return Status::Ok();
  });
  if (!s.ok() && !enough) return Error(std::move(s));
  return out;
}

}  // namespace petrel::delivery
