// SMTP replies (RFC 5321 4.2): what the server sends, what the client reads.
//
// A Reply is a code, an optional enhanced status (RFC 2034/3463) and one or
// more lines of text. Format() writes the wire form: every line
// "CODE-[STATUS ]text" and the last "CODE [STATUS ]text", each ending CRLF;
// the status is repeated on every line as RFC 2034 requires. Text is written
// as given: callers keep each line under kMaxReplyLineOctets, without CR or
// LF, and the code in 200..599 (all CHECKed: never echo unbounded peer text).
// A last line without text or status is the bare "CODE".
// Pure values; thread-compatible.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "smtp/enhanced_status.h"

namespace petrel::smtp {

struct Reply {
  int code = 0;                          // 200..599
  std::optional<EnhancedStatus> status;  // from the first line, if any
  std::vector<std::string> lines;        // text of each line, status removed

  std::string Format() const;
  // All lines joined by a space, status first if any, sanitised: for logs
  // and DSN Diagnostic-Code fields.
  std::string Text() const;

  bool IsPositive() const { return code >= 200 && code < 300; }
  bool IsIntermediate() const { return code >= 300 && code < 400; }
  bool IsTransient() const { return code >= 400 && code < 500; }
  bool IsPermanent() const { return code >= 500 && code < 600; }
};

// A one-line reply: MakeReply(250, {2,0,0}, "Ok").
Reply MakeReply(int code, EnhancedStatus status, std::string text);
// A reply without enhanced status (greeting, EHLO, or HELO sessions).
Reply MakeReply(int code, std::string text);

// Replaces control characters (C0, DEL), bytes that are not valid UTF-8, and
// anything that could end a line with '?' or a space, and caps the length at
// `max_octets`: for peer text that goes into logs, spool records and DSNs.
std::string SanitizeText(std::string_view text, std::size_t max_octets = 1000);

}  // namespace petrel::smtp
