// Helpers shared by the fuzz targets: input splits derived from the input
// itself, so that every input replays the same way (libFuzzer and the
// replay runner alike).
#pragma once

#include <cstddef>
#include <cstdint>
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

}  // namespace petrel::fuzz
