// Small string helpers for the line-oriented files petrel reads (users,
// credentials): ASCII lower-casing and trimming blanks. Pure; header-only.
#pragma once

#include <string>
#include <string_view>

namespace petrel {

inline std::string AsciiLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// Without leading spaces and tabs, and trailing spaces, tabs and a CR.
inline std::string_view TrimBlanks(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

}  // namespace petrel
