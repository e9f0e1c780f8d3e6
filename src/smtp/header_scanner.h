// Watches the header section of message content as it streams past (RFC
// 5322 2.2): counts Received: fields (for loop detection) and measures the
// header section. The header ends at the first empty line, or (as in
// Postfix) at the first line that is neither a header field "name:" (name
// of printable ASCII, optional WSP before the colon, RFC 5322 4.5.3) nor a
// continuation line (starting with WSP) after one; that line belongs to the
// body. A bare LF ends a line here too. Feed any split. Untrusted input;
// memory bounded (one field name). Not thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace petrel::smtp {

class HeaderScanner {
 public:
  // Content with CRLF line ends, as DataReader produces it.
  void Feed(std::string_view content);

  bool in_header() const { return in_header_; }
  int received_count() const { return received_count_; }
  // Octets and lines of the complete header field lines, line ends
  // included; the empty line that ends the header is not counted.
  std::size_t header_octets() const { return header_octets_; }
  std::size_t header_lines() const { return header_lines_; }

 private:
  enum class State : unsigned char {
    kLineStart,  // at the start of a line
    kStartCr,    // a CR at the start of a line: an empty line if LF follows
    kName,       // inside a field name
    kNameWsp,    // WSP after a field name, before the colon (obsolete form)
    kRest,       // after the colon, or in a continuation line
  };
  bool in_header_ = true;
  State state_ = State::kLineStart;
  int received_count_ = 0;
  std::size_t header_octets_ = 0;
  std::size_t header_lines_ = 0;
  std::size_t line_octets_ = 0;  // octets of the current line so far
  std::string name_;  // field name so far on the current line, lower-cased,
                      // at most 9 octets (enough to tell "received")
};

}  // namespace petrel::smtp
