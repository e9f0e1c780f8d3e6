// Enhanced mail system status codes, RFC 3463 ("class.subject.detail").
//
// class is 2, 4 or 5; subject and detail are 0..999 without leading zeros
// (RFC 3463 section 2). Pure; takes untrusted input (peer replies).
#pragma once

#include <compare>
#include <optional>
#include <string>
#include <string_view>

namespace petrel::smtp {

struct EnhancedStatus {
  int klass = 0;    // 2 success, 4 persistent transient, 5 permanent
  int subject = 0;  // 0..999
  int detail = 0;   // 0..999

  std::string ToString() const;  // "5.1.1"
  auto operator<=>(const EnhancedStatus&) const = default;
};

// Parses "X.Y.Z" exactly (the whole of `text`); nullopt if it is not one.
std::optional<EnhancedStatus> ParseEnhancedStatus(std::string_view text);

// If `text` starts with an enhanced status followed by a space or the end,
// returns it and sets `rest` to the text after it and the space.
std::optional<EnhancedStatus> SplitEnhancedStatus(std::string_view text,
                                                  std::string_view& rest);

}  // namespace petrel::smtp
