// UTF-8 well-formedness (RFC 3629 section 4), shared by the parsers that
// accept SMTPUTF8 text (address.cc) and by SanitizeText (reply.cc).
//
// Rejects overlong forms, surrogates (U+D800..U+DFFF) and code points above
// U+10FFFF. Untrusted input; pure inline functions; never reads past `text`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace petrel::smtp {

// Length (1..4) of the well-formed UTF-8 sequence that starts at text[pos],
// or 0 if there is none (a stray continuation byte, a truncated or overlong
// sequence, a surrogate, or pos out of range).
inline std::size_t Utf8SequenceLength(std::string_view text, std::size_t pos) {
  if (pos >= text.size()) return 0;
  auto byte = [&](std::size_t i) -> std::uint8_t {
    return static_cast<std::uint8_t>(text[i]);
  };
  const std::uint8_t b0 = byte(pos);
  if (b0 < 0x80) return 1;
  std::size_t len = 0;
  std::uint8_t lo = 0x80, hi = 0xBF;  // range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
  } else if (b0 == 0xE0) {
    len = 3, lo = 0xA0;  // no overlong
  } else if (b0 == 0xED) {
    len = 3, hi = 0x9F;  // no surrogates
  } else if (b0 >= 0xE1 && b0 <= 0xEF) {
    len = 3;
  } else if (b0 == 0xF0) {
    len = 4, lo = 0x90;  // no overlong
  } else if (b0 >= 0xF1 && b0 <= 0xF3) {
    len = 4;
  } else if (b0 == 0xF4) {
    len = 4, hi = 0x8F;  // nothing above U+10FFFF
  } else {
    return 0;  // 0x80..0xC1, 0xF5..0xFF
  }
  if (text.size() - pos < len) return 0;
  const std::uint8_t b1 = byte(pos + 1);
  if (b1 < lo || b1 > hi) return 0;
  for (std::size_t i = 2; i < len; ++i) {
    const std::uint8_t b = byte(pos + i);
    if (b < 0x80 || b > 0xBF) return 0;
  }
  return len;
}

// True if all of `text` is well-formed UTF-8.
inline bool IsValidUtf8(std::string_view text) {
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t n = Utf8SequenceLength(text, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

}  // namespace petrel::smtp
