#include "smtp/data_reader.h"

#include <algorithm>
#include <utility>

namespace petrel::smtp {

// The state is where we are in the current line of the raw (stuffed) stream:
//   kLineStart  after CRLF, or at the very start: a '.' here is special;
//   kDot        after a '.' at line start (removed, whatever follows);
//   kDotCr      after ".\r" at line start: an LF ends the data, anything
//               else makes the held CR a bare CR of the content;
//   kMid        inside a line;
//   kCr         after a CR inside a line: LF completes CRLF and starts a
//               line, anything else makes that CR bare.
// A bare LF never leads to kLineStart, which is what keeps "\n.\n" and the
// other smuggling variants in the data.
std::size_t DataReader::Feed(std::string_view bytes) {
  if (done_) return 0;
  const std::size_t n = bytes.size();
  std::size_t i = 0;
  while (i < n) {
    const char c = bytes[i];
    switch (state_) {
      case State::kLineStart:
        if (c == '.') {
          state_ = State::kDot;
          ++i;
          continue;
        }
        state_ = State::kMid;
        break;
      case State::kDot:
        if (c == '\r') {
          state_ = State::kDotCr;
          ++i;
          continue;
        }
        state_ = State::kMid;  // the dot is dropped; c is ordinary content
        break;
      case State::kDotCr:
        if (c == '\n') {
          done_ = true;
          return i + 1;
        }
        bare_newline_ = true;
        Emit("\r");
        state_ = State::kMid;
        break;
      case State::kCr:
        if (c == '\n') {
          Emit("\n");
          longest_line_ = std::max(longest_line_, line_octets_);
          line_octets_ = 0;
          state_ = State::kLineStart;
          ++i;
          continue;
        }
        bare_newline_ = true;
        state_ = State::kMid;
        break;
      case State::kMid:
        break;
    }
    // Inside a line: copy the run up to the next CR or LF in one go.
    const std::size_t end = std::min(bytes.find_first_of("\r\n", i), n);
    if (end > i) {
      Emit(bytes.substr(i, end - i));
      i = end;
      continue;
    }
    if (c == '\r') {
      Emit("\r");
      state_ = State::kCr;
    } else {  // a bare LF: content, but it starts no line
      Emit("\n");
      bare_newline_ = true;
    }
    ++i;
  }
  return n;
}

void DataReader::Emit(std::string_view octets) {
  const std::uint64_t before = content_octets_;
  content_octets_ += octets.size();
  line_octets_ += octets.size();
  if (content_octets_ > max_octets_) too_big_ = true;
  if (before >= max_octets_) return;  // already full: drop it all
  const std::uint64_t room = max_octets_ - before;
  content_.append(octets.substr(
      0,
      static_cast<std::size_t>(std::min<std::uint64_t>(room, octets.size()))));
}

std::string DataReader::TakeContent() {
  std::string out = std::move(content_);
  content_.clear();
  return out;
}

void BareNewlineScanner::Feed(std::string_view bytes) {
  for (const char c : bytes) {
    if (last_was_cr_ ? c != '\n' : c == '\n') bare_newline_ = true;
    last_was_cr_ = c == '\r';
  }
}

void BareNewlineScanner::Finish() {
  if (last_was_cr_) bare_newline_ = true;
  last_was_cr_ = false;
}

}  // namespace petrel::smtp
