// Reads message text after DATA (RFC 5321 4.1.1.4, 4.5.2): finds the end of
// data and removes dot-stuffing, incrementally.
//
// The data ends only at <CRLF>.<CRLF> (the CRLF that ends the last line, a
// dot, CRLF; or ".<CRLF>" as the very first line). Bare LF and bare CR never
// end the data and never start a line for the end-of-data check (the SMTP
// smuggling class, 2023): "\n.\n", "\r.\r", "\n.\r\n", "\r\n.\n" and the rest
// are data. A bare CR or LF is recorded (bare_newline()); petrel's policy
// rejects such a message with 550 5.5.2 after reading it to its end
// (docs/decisions.md). A line that starts with "." has that dot removed.
//
// Feed() consumes bytes up to and including the end of data (or all of them)
// and returns how many; the rest belong to the next command (PIPELINING).
// Unstuffed content is appended to an internal buffer the caller drains with
// TakeContent(); once content_octets() exceeds `max_octets` the excess is
// dropped (too_big() is set) but the reader keeps reading to the end, so the
// session stays in step and can answer 552. Memory is bounded by what the
// caller leaves undrained plus one line start. Untrusted input. Not
// thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace petrel::smtp {

class DataReader {
 public:
  // `max_octets`: content kept at most (exactly that many is not too big);
  // pass UINT64_MAX for no limit.
  explicit DataReader(std::uint64_t max_octets) : max_octets_(max_octets) {}

  std::size_t Feed(std::string_view bytes);
  bool done() const { return done_; }

  // Content since the last call, CRLF line ends, dots unstuffed.
  std::string TakeContent();
  std::size_t pending_content() const { return content_.size(); }

  // All content octets seen, including those dropped as too big.
  std::uint64_t content_octets() const { return content_octets_; }
  bool too_big() const { return too_big_; }
  bool bare_newline() const { return bare_newline_; }
  // Longest line seen, in octets including CRLF (for logs; never enforced).
  std::size_t longest_line() const { return longest_line_; }

 private:
  std::uint64_t max_octets_;
  std::string content_;
  std::uint64_t content_octets_ = 0;
  bool too_big_ = false;
  bool bare_newline_ = false;
  bool done_ = false;
  std::size_t longest_line_ = 0;
  // Position within the current line, for the end-of-data and unstuffing
  // checks: see data_reader.cc.
  enum class State : unsigned char { kLineStart, kDot, kDotCr, kMid, kCr };
  State state_ = State::kLineStart;
  std::size_t line_octets_ = 0;  // content octets of the current line

  // Appends unstuffed content, dropping what is over max_octets_.
  void Emit(std::string_view octets);
};

// Checks raw BDAT chunks (RFC 3030) for bare CR or LF across chunk
// boundaries, with the same policy as DATA. Not thread-safe.
class BareNewlineScanner {
 public:
  void Feed(std::string_view bytes);
  // Call at the end of the message: a trailing CR without LF counts as bare.
  void Finish();
  bool bare_newline() const { return bare_newline_; }

 private:
  bool last_was_cr_ = false;
  bool bare_newline_ = false;
};

}  // namespace petrel::smtp
