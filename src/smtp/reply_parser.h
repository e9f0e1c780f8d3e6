// Incremental parser of SMTP replies (RFC 5321 4.2), for the client side.
//
// Feed() takes bytes exactly as they arrive (any split, any pause: seed
// 002, a multiline 354 arriving line by line); Next() returns each complete
// reply once its last line ("CODE " or a bare "CODE") has arrived, or nullopt
// while more bytes are needed. Lines end in CRLF; a bare LF is tolerated.
// Errors are final (the connection must be dropped, the attempt deferred):
//  - kMalformed: a line that does not start with three digits and
//    ' ', '-' or end of line, or a code outside 200..599;
//  - kInconsistentCode: a continuation line with another code;
//  - kLineTooLong: a line over the safety cap (default 4096 octets);
//  - kTooManyLines: more lines in one reply than the cap.
// A line's length counts its line end. An enhanced status is taken from the
// first line only if its class matches the code ("250 2.0.0 Ok"), and is
// removed from every line that starts with it. Call Next() until it returns
// nullopt after each Feed(); an error is returned by every later Next()
// until Reset(). Untrusted input; memory bounded by the caps (plus what one
// Feed() brings). Not thread-safe.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <tl/expected.hpp>

#include "smtp/limits.h"
#include "smtp/reply.h"

namespace petrel::smtp {

enum class ReplyError {
  kMalformed,
  kInconsistentCode,
  kLineTooLong,
  kTooManyLines
};
std::string_view ReplyErrorName(ReplyError e);

class ReplyParser {
 public:
  explicit ReplyParser(std::size_t max_line_octets = kReplyLineSafetyCapOctets,
                       std::size_t max_lines = kMaxReplyLines);

  void Feed(std::string_view bytes);
  tl::expected<std::optional<Reply>, ReplyError> Next();

  // Octets received but not yet part of a returned reply. After the reply to
  // STARTTLS this must be zero, or the peer injected plaintext.
  std::size_t Buffered() const { return buffer_.size() - start_; }
  // Drops everything buffered, any partial reply and any error.
  void Reset();

 private:
  std::size_t max_line_octets_;
  std::size_t max_lines_;
  std::string buffer_;            // octets not yet dropped
  std::size_t start_ = 0;         // start of the current reply in buffer_
  std::size_t scan_ = 0;          // start of the first line not yet parsed
  std::size_t tail_octets_ = 0;   // octets after the last LF in buffer_
  std::optional<Reply> partial_;  // lines of the current reply so far
  std::optional<ReplyError> error_;
};

}  // namespace petrel::smtp
