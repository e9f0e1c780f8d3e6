// Test helpers for the smtp parsers (GoogleTest only; never linked into
// petrel itself).
//
// ExpectSameForEverySplit(input, run): the Beast "parsegrind" idea. `run`
// feeds a sequence of chunks to a fresh incremental parser and returns a
// transcript of what came out (replies, lines, content, consumed counts,
// flags: anything comparable with ==). The helper runs it on the whole
// input, on every 2-way split (including empty pieces), on every 3-way
// split when the input is short, and byte by byte, and EXPECTs every
// transcript to equal the one for the whole input. Returns that transcript
// so the caller can also check what it is.
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "smtp/reply.h"

namespace petrel::smtp::testing {

using Chunks = std::vector<std::string_view>;

// Inputs up to this many octets also get every 3-way split (O(n^3) work).
inline constexpr std::size_t kMaxThreeWaySplitOctets = 64;

template <class Run>
auto ExpectSameForEverySplit(
    std::string_view input, Run run,
    std::size_t max_three_way = kMaxThreeWaySplitOctets) {
  const auto whole = run(Chunks{input});
  // Stops at the first difference: one failure says all there is to say.
  auto same = [&](const Chunks& chunks, const std::string& how) {
    const auto got = run(chunks);
    EXPECT_EQ(got, whole) << "when split " << how;
    return got == whole;
  };
  for (std::size_t i = 0; i <= input.size(); ++i) {
    if (!same({input.substr(0, i), input.substr(i)},
              "at " + std::to_string(i))) {
      return whole;
    }
  }
  if (input.size() <= max_three_way) {
    for (std::size_t i = 0; i <= input.size(); ++i) {
      for (std::size_t j = i; j <= input.size(); ++j) {
        if (!same({input.substr(0, i), input.substr(i, j - i), input.substr(j)},
                  "at " + std::to_string(i) + " and " + std::to_string(j))) {
          return whole;
        }
      }
    }
  }
  Chunks bytes;
  for (std::size_t i = 0; i < input.size(); ++i) {
    bytes.push_back(input.substr(i, 1));
  }
  same(bytes, "byte by byte");
  return whole;
}

// Bytes made visible: \r \n \t \\ and \xNN for the rest of the unprintables.
inline std::string Escape(std::string_view text) {
  std::string out;
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\r') {
      out += "\\r";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\\') {
      out += "\\\\";
    } else if (u < 0x20 || u >= 0x7F) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02X", u);
      out += hex;
    } else {
      out += c;
    }
  }
  return out;
}

// "501 5.1.3 Path too long": a reply as one line, lines joined by '|'.
inline std::string ReplyLine(const Reply& reply) {
  std::string out = std::to_string(reply.code);
  if (reply.status) out += " " + reply.status->ToString();
  for (std::size_t i = 0; i < reply.lines.size(); ++i) {
    out += i == 0 ? " " : "|";
    out += Escape(reply.lines[i]);
  }
  return out;
}

}  // namespace petrel::smtp::testing
