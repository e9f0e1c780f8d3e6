#include "smtp/header_scanner.h"

#include <climits>

namespace petrel::smtp {
namespace {

// ftext, RFC 5322 3.6.8: printable US-ASCII except ':'.
bool IsFieldNameChar(char c) { return c >= 33 && c <= 126 && c != ':'; }

}  // namespace

void HeaderScanner::Feed(std::string_view content) {
  constexpr std::string_view kReceived = "received";
  for (std::size_t i = 0; i < content.size() && in_header_; ++i) {
    const char c = content[i];
    ++line_octets_;
    switch (state_) {
      case State::kLineStart:
        if (c == '\n') {
          in_header_ = false;  // an empty line (bare LF)
        } else if (c == '\r') {
          state_ = State::kStartCr;
        } else if (c == ' ' || c == '\t') {
          // A continuation line continues a field; before any field the
          // line is not a header.
          if (header_lines_ == 0) {
            in_header_ = false;
          } else {
            state_ = State::kRest;
          }
        } else if (IsFieldNameChar(c)) {
          name_.clear();
          name_ += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
          state_ = State::kName;
        } else {
          in_header_ = false;
        }
        break;
      case State::kStartCr:
        in_header_ = false;  // "\r\n" is the empty line; anything else is body
        break;
      case State::kName:
        if (IsFieldNameChar(c)) {
          if (name_.size() <= kReceived.size()) {
            name_ +=
                static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
          }
          break;
        }
        [[fallthrough]];
      case State::kNameWsp:
        if (c == ' ' || c == '\t') {
          state_ = State::kNameWsp;
        } else if (c == ':') {
          if (name_ == kReceived && received_count_ < INT_MAX) {
            ++received_count_;
          }
          state_ = State::kRest;
        } else {
          in_header_ = false;  // not "name:": the body has started
        }
        break;
      case State::kRest:
        if (c == '\n') {
          ++header_lines_;
          header_octets_ += line_octets_;
          line_octets_ = 0;
          state_ = State::kLineStart;
        }
        break;
    }
  }
}

}  // namespace petrel::smtp
