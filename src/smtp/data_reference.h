// The definition of DATA's end and content (RFC 5321 4.1.1.4, 4.5.2),
// written the slow and obvious way, for tests and fuzzers to hold
// DataReader and the session against: the data ends at the first CRLF "."
// CRLF (or at "." CRLF as the first line); the content is what precedes it,
// with the leading dot of each CRLF-delimited line removed. Header-only; not
// used by petrel itself.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace petrel::smtp {

struct DataReference {
  bool done = false;          // the end of data is in the input
  std::size_t consumed = 0;   // up to and including it (all input if not done)
  std::string content;        // when done
  bool bare_newline = false;  // a CR or LF in content outside a CRLF pair
};

inline DataReference StrictDataReference(std::string_view in) {
  DataReference r;
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
    return r;  // content of an unfinished stream is not compared
  }
  bool line_start = true;
  for (std::size_t i = 0; i < data.size(); ++i) {
    if (!(line_start && data[i] == '.')) r.content += data[i];
    line_start = i >= 1 && data[i - 1] == '\r' && data[i] == '\n';
  }
  for (std::size_t i = 0; i < r.content.size(); ++i) {
    const bool cr = r.content[i] == '\r', lf = r.content[i] == '\n';
    if (cr && (i + 1 == r.content.size() || r.content[i + 1] != '\n')) {
      r.bare_newline = true;
    }
    if (lf && (i == 0 || r.content[i - 1] != '\r')) r.bare_newline = true;
  }
  return r;
}

}  // namespace petrel::smtp
