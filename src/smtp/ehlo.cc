#include "smtp/ehlo.h"

#include <algorithm>
#include <string_view>

namespace petrel::smtp {
namespace {

// Bounds on what we keep from an untrusted peer.
constexpr std::size_t kMaxAuthMechanisms = 32;
constexpr std::size_t kMaxAuthMechanismOctets = 40;  // RFC 4422: 20

char ToUpper(char c) {
  return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c;
}

std::string Upper(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = ToUpper(c);
  return out;
}

// Splits on runs of spaces (and tabs, which some servers send).
std::vector<std::string_view> Words(std::string_view text) {
  std::vector<std::string_view> words;
  while (true) {
    const std::size_t start = text.find_first_not_of(" \t");
    if (start == std::string_view::npos) break;
    text.remove_prefix(start);
    const std::size_t end = text.find_first_of(" \t");
    words.push_back(text.substr(0, end));
    if (end == std::string_view::npos) break;
    text.remove_prefix(end);
  }
  return words;
}

// A decimal without sign; false if empty, not digits, or over `max`.
bool ParseDecimal(std::string_view text, std::uint64_t max,
                  std::uint64_t& out) {
  if (text.empty()) return false;
  std::uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    const auto digit = static_cast<std::uint64_t>(c - '0');
    if (value > (max - digit) / 10) return false;
    value = value * 10 + digit;
  }
  out = value;
  return true;
}

void AddAuthMechanism(EhloExtensions& ext, std::string_view mechanism) {
  if (mechanism.empty() || mechanism.size() > kMaxAuthMechanismOctets) return;
  if (ext.auth_mechanisms.size() >= kMaxAuthMechanisms) return;
  std::string upper = Upper(mechanism);
  if (std::find(ext.auth_mechanisms.begin(), ext.auth_mechanisms.end(),
                upper) == ext.auth_mechanisms.end()) {
    ext.auth_mechanisms.push_back(std::move(upper));
  }
}

}  // namespace

EhloExtensions ParseEhloReply(const Reply& reply) {
  EhloExtensions ext;
  // The first line is the server's name and greeting, not a keyword.
  for (std::size_t i = 1; i < reply.lines.size(); ++i) {
    const std::vector<std::string_view> words = Words(reply.lines[i]);
    if (words.empty()) continue;
    const std::string keyword = Upper(words[0]);
    if (keyword == "PIPELINING") {
      ext.pipelining = true;
    } else if (keyword == "SIZE") {
      ext.size = true;
      // RFC 1870: "SIZE" alone or "SIZE 0" means no fixed maximum; a value
      // we cannot read counts as none.
      std::uint64_t limit = 0;
      if (words.size() >= 2 && ParseDecimal(words[1], UINT64_MAX, limit)) {
        ext.size_limit = limit;
      }
    } else if (keyword == "8BITMIME") {
      ext.eight_bit_mime = true;
    } else if (keyword == "SMTPUTF8") {
      ext.smtputf8 = true;
    } else if (keyword == "CHUNKING") {
      ext.chunking = true;
    } else if (keyword == "STARTTLS") {
      ext.starttls = true;
    } else if (keyword == "DSN") {
      ext.dsn = true;
    } else if (keyword == "ENHANCEDSTATUSCODES") {
      ext.enhanced_status_codes = true;
    } else if (keyword == "AUTH") {
      for (std::size_t w = 1; w < words.size(); ++w) {
        AddAuthMechanism(ext, words[w]);
      }
    } else if (keyword.starts_with("AUTH=")) {
      // The pre-RFC 2554 form some servers still send: "AUTH=LOGIN PLAIN".
      AddAuthMechanism(ext, words[0].substr(5));
      for (std::size_t w = 1; w < words.size(); ++w) {
        AddAuthMechanism(ext, words[w]);
      }
    } else if (keyword == "LIMITS") {
      // RFC 9422: limit-name "=" limit-value pairs; unknown names ignored,
      // a zero or unreadable value ignored (it would stop all mail).
      for (std::size_t w = 1; w < words.size(); ++w) {
        const std::string_view pair = words[w];
        const std::size_t eq = pair.find('=');
        if (eq == std::string_view::npos) continue;
        const std::string name = Upper(pair.substr(0, eq));
        std::uint64_t value = 0;
        if (!ParseDecimal(pair.substr(eq + 1), UINT32_MAX, value) ||
            value == 0) {
          continue;
        }
        if (name == "RCPTMAX") {
          ext.limits_rcptmax = static_cast<std::uint32_t>(value);
        } else if (name == "MAILMAX") {
          ext.limits_mailmax = static_cast<std::uint32_t>(value);
        }
      }
    }
  }
  return ext;
}

}  // namespace petrel::smtp
