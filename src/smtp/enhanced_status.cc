#include "smtp/enhanced_status.h"

namespace petrel::smtp {
namespace {

// RFC 3463 section 2: subject and detail are 1*3digit; we also refuse
// leading zeros ("01") so that every status has one spelling.
bool ParseNumber(std::string_view text, int& out) {
  if (text.empty() || text.size() > 3) return false;
  if (text.size() > 1 && text[0] == '0') return false;
  int value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + (c - '0');
  }
  out = value;
  return true;
}

}  // namespace

std::string EnhancedStatus::ToString() const {
  return std::to_string(klass) + "." + std::to_string(subject) + "." +
         std::to_string(detail);
}

std::optional<EnhancedStatus> ParseEnhancedStatus(std::string_view text) {
  // class: exactly one of 2, 4, 5.
  if (text.size() < 5) return std::nullopt;
  if (text[0] != '2' && text[0] != '4' && text[0] != '5') return std::nullopt;
  if (text[1] != '.') return std::nullopt;
  EnhancedStatus status;
  status.klass = text[0] - '0';
  text.remove_prefix(2);
  const std::size_t dot = text.find('.');
  if (dot == std::string_view::npos) return std::nullopt;
  if (!ParseNumber(text.substr(0, dot), status.subject)) return std::nullopt;
  if (!ParseNumber(text.substr(dot + 1), status.detail)) return std::nullopt;
  return status;
}

std::optional<EnhancedStatus> SplitEnhancedStatus(std::string_view text,
                                                  std::string_view& rest) {
  // The longest status is "5.999.999": 9 octets.
  const std::size_t end = text.find(' ');
  const std::string_view word = text.substr(0, end);
  if (word.size() > 9) return std::nullopt;
  std::optional<EnhancedStatus> status = ParseEnhancedStatus(word);
  if (!status) return std::nullopt;
  rest =
      end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
  return status;
}

}  // namespace petrel::smtp
