// Splits the server's input stream into command lines (RFC 5321 2.3.8).
//
// Feed() consumes bytes up to and including the first LF (or all of them if
// there is none) and returns how many it consumed; the caller then calls
// Take(), so that it can switch to reading message data right after a DATA
// or BDAT line. While a line waits to be taken, Feed() consumes nothing. Lines
// end in CRLF; a bare LF also ends a command line (as in Postfix; a bare CR
// does not). A line longer than `max_line_octets` (counting its CRLF) is read
// to its end and discarded, and reported once as kTooLong, so the session stays
// in step (interface.md: 500 5.5.2). Memory is bounded by max_line_octets.
// Untrusted input. Not thread-safe.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "smtp/limits.h"

namespace petrel::smtp {

struct CommandLine {
  enum class Kind { kLine, kTooLong };
  Kind kind = Kind::kLine;
  std::string text;  // without the line end; empty for kTooLong
};

class LineReader {
 public:
  explicit LineReader(std::size_t max_line_octets = kMaxCommandLineOctets)
      : max_line_octets_(max_line_octets) {}

  std::size_t Feed(std::string_view bytes);
  std::optional<CommandLine> Take();
  // True while part of a line is buffered.
  bool HasPartialLine() const { return !partial_.empty() || discarding_; }

 private:
  std::size_t max_line_octets_;
  std::string partial_;
  bool discarding_ = false;
  std::optional<CommandLine> ready_;
};

}  // namespace petrel::smtp
