#include "smtp/reply.h"

#include <utility>

#include "base/check.h"
#include "smtp/limits.h"
#include "smtp/utf8.h"

namespace petrel::smtp {

std::string Reply::Format() const {
  CHECK(code >= 200 && code <= 599);
  const std::string code_text = std::to_string(code);
  const std::string status_text = status ? status->ToString() : std::string();
  const std::size_t count = lines.empty() ? 1 : lines.size();
  std::string out;
  for (std::size_t i = 0; i < count; ++i) {
    const std::string_view text =
        lines.empty() ? std::string_view() : std::string_view(lines[i]);
    // A CR or LF in the text would end the line early and let whoever
    // chose the text inject a reply: always our bug, never the peer's.
    CHECK(text.find_first_of("\r\n") == std::string_view::npos);
    const std::size_t start = out.size();
    out += code_text;
    // "CODE-text" on all but the last line, "CODE text" on the last. A last
    // line without text or status is the bare "CODE" (RFC 5321 4.2: the SP
    // goes with the textstring).
    const bool last = i + 1 == count;
    const bool has_text = !status_text.empty() || !text.empty();
    if (!last) {
      out += '-';
    } else if (has_text) {
      out += ' ';
    }
    out += status_text;
    if (!status_text.empty() && !text.empty()) out += ' ';
    out += text;
    out += "\r\n";
    CHECK(out.size() - start <= kMaxReplyLineOctets);
  }
  return out;
}

std::string Reply::Text() const {
  std::string joined;
  if (status) joined = status->ToString();
  for (const std::string& line : lines) {
    if (line.empty()) continue;
    if (!joined.empty()) joined += ' ';
    joined += line;
  }
  return SanitizeText(joined);
}

Reply MakeReply(int code, EnhancedStatus status, std::string text) {
  Reply reply;
  reply.code = code;
  reply.status = status;
  reply.lines.push_back(std::move(text));
  return reply;
}

Reply MakeReply(int code, std::string text) {
  Reply reply;
  reply.code = code;
  reply.lines.push_back(std::move(text));
  return reply;
}

std::string SanitizeText(std::string_view text, std::size_t max_octets) {
  std::string out;
  out.reserve(text.size() < max_octets ? text.size() : max_octets);
  std::size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    std::size_t take = 1;    // input octets consumed
    std::string_view piece;  // what they become
    if (c < 0x80) {
      static constexpr std::string_view kSpace = " ", kQuestion = "?";
      if (c == '\t' || c == '\r' || c == '\n') {
        piece = kSpace;  // whitespace and line ends become one space
      } else if (c < 0x20 || c == 0x7F) {
        piece = kQuestion;
      } else {
        piece = text.substr(i, 1);
      }
    } else {
      const std::size_t n = Utf8SequenceLength(text, i);
      if (n == 0) {
        piece = "?";  // one '?' per octet that starts no valid sequence
      } else {
        take = n;
        piece = text.substr(i, n);
        const auto c1 = static_cast<unsigned char>(text[i + 1]);
        if (c == 0xC2 && c1 >= 0x80 && c1 <= 0x9F) {
          // C1 controls; U+0085 (NEL) ends a line in some readers.
          piece = c1 == 0x85 ? std::string_view(" ") : std::string_view("?");
        } else if (c == 0xE2 && c1 == 0x80 &&
                   (static_cast<unsigned char>(text[i + 2]) == 0xA8 ||
                    static_cast<unsigned char>(text[i + 2]) == 0xA9)) {
          piece = " ";  // U+2028 LINE SEPARATOR, U+2029 PARAGRAPH SEPARATOR
        }
      }
    }
    // Never cut a UTF-8 sequence: stop before a piece that does not fit.
    if (out.size() + piece.size() > max_octets) break;
    out += piece;
    i += take;
  }
  return out;
}

}  // namespace petrel::smtp
