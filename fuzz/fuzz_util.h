// Helpers shared by the fuzz targets: input splits derived from the input
// itself, so that every input replays the same way (libFuzzer and the
// replay runner alike).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace petrel::fuzz {

// A deterministic, input-dependent cut of `input` into pieces of 0..max
// octets (empty pieces included: Feed("") must be harmless).
inline std::vector<std::string_view> Split(std::string_view input,
                                           std::size_t max_piece = 17) {
  std::uint64_t state = 0xcbf29ce484222325u;  // FNV-1a of the input
  for (unsigned char c : input) state = (state ^ c) * 0x100000001b3u;
  std::vector<std::string_view> pieces;
  std::size_t pos = 0;
  while (pos < input.size()) {
    state ^= state << 13;  // xorshift64
    state ^= state >> 7;
    state ^= state << 17;
    // Mostly short pieces, sometimes a long one.
    std::size_t n = state % (max_piece + 1);
    if ((state >> 32) % 8 == 0) n = (state >> 40) % (input.size() + 1);
    if (n > input.size() - pos) n = input.size() - pos;
    pieces.push_back(input.substr(pos, n));
    pos += n;
  }
  return pieces;
}

inline std::vector<std::string_view> Bytes(std::string_view input) {
  std::vector<std::string_view> pieces;
  for (std::size_t i = 0; i < input.size(); ++i) {
    pieces.push_back(input.substr(i, 1));
  }
  return pieces;
}

// The strict reference for message data (RFC 5321 4.1.1.4, 4.5.2), written
// the obvious way: the data ends at the first CRLF "." CRLF (or "." CRLF as
// the first line); the content is what precedes it with the leading dot of
// each CRLF-delimited line removed.
struct Reference {
  bool done = false;
  std::size_t consumed = 0;
  std::string content;  // when done
};

inline Reference Strict(std::string_view in) {
  Reference r;
  std::string_view data;
  if (in.substr(0, 3) == ".\r\n") {
    r.done = true;
    r.consumed = 3;
  } else if (const std::size_t p = in.find("\r\n.\r\n");
             p != std::string_view::npos) {
    r.done = true;
    r.consumed = p + 5;
    data = in.substr(0, p + 2);
  } else {
    r.consumed = in.size();
  }
  bool line_start = true;
  for (std::size_t i = 0; i < data.size(); ++i) {
    if (!(line_start && data[i] == '.')) r.content += data[i];
    line_start = data[i] == '\n' && i > 0 && data[i - 1] == '\r';
  }
  return r;
}

}  // namespace petrel::fuzz
