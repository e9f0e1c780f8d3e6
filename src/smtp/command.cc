#include "smtp/command.h"

#include <array>
#include <utility>

#include "smtp/address.h"

namespace petrel::smtp {
namespace {

struct VerbEntry {
  Verb verb;
  std::string_view name;
};

constexpr std::array<VerbEntry, 14> kVerbs = {{
    {Verb::kEhlo, "EHLO"},
    {Verb::kHelo, "HELO"},
    {Verb::kMail, "MAIL"},
    {Verb::kRcpt, "RCPT"},
    {Verb::kData, "DATA"},
    {Verb::kBdat, "BDAT"},
    {Verb::kRset, "RSET"},
    {Verb::kNoop, "NOOP"},
    {Verb::kQuit, "QUIT"},
    {Verb::kVrfy, "VRFY"},
    {Verb::kExpn, "EXPN"},
    {Verb::kHelp, "HELP"},
    {Verb::kStartTls, "STARTTLS"},
    {Verb::kAuth, "AUTH"},
}};

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'a' && x <= 'z') x = static_cast<char>(x - 'a' + 'A');
    if (y >= 'a' && y <= 'z') y = static_cast<char>(y - 'a' + 'A');
    if (x != y) return false;
  }
  return true;
}

tl::unexpected<Reply> Refuse(int code, EnhancedStatus status,
                             std::string text) {
  return tl::unexpected(MakeReply(code, status, std::move(text)));
}

// A decimal of 1..19 digits: always below 2^64 (RFC 3030 allows larger
// chunk sizes in theory; no real chunk comes near).
bool ParseChunkSize(std::string_view text, std::uint64_t& out) {
  if (text.empty() || text.size() > 19) return false;
  std::uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<std::uint64_t>(c - '0');
  }
  out = value;
  return true;
}

}  // namespace

std::string_view VerbName(Verb v) {
  for (const VerbEntry& e : kVerbs) {
    if (e.verb == v) return e.name;
  }
  return "?";
}

tl::expected<Command, Reply> ParseCommand(std::string_view line) {
  for (char ch : line) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c < 0x20 && c != '\t') || c == 0x7F) {
      return Refuse(500, {5, 5, 2}, "Invalid character");
    }
  }
  const std::size_t space = line.find(' ');
  const std::string_view word = line.substr(0, space);
  for (const VerbEntry& e : kVerbs) {
    if (EqualsIgnoreCase(word, e.name)) {
      Command command{e.verb, {}};
      if (space != std::string_view::npos) {
        command.argument = std::string(line.substr(space + 1));
      }
      return command;
    }
  }
  return Refuse(500, {5, 5, 1}, "Command unrecognized");
}

tl::expected<std::string, Reply> ParseHeloArgument(std::string_view arg) {
  if (IsValidAddressLiteral(arg)) return std::string(arg);
  // Postfix accepts any HELO name by default; we ask for a domain, but allow
  // '_' in it as many Windows host names carry one (docs/decisions.md).
  std::string domain(arg);
  for (char& c : domain) {
    if (c == '_') c = 'x';
  }
  if (!arg.empty() && IsValidDomain(domain, /*utf8_allowed=*/false)) {
    return std::string(arg);
  }
  return Refuse(501, {5, 5, 4}, "Syntax: EHLO hostname");
}

tl::expected<BdatArgument, Reply> ParseBdatArgument(std::string_view arg) {
  // bdat-cmd = "BDAT" SP chunk-size [ SP end-marker ] CRLF (RFC 3030 2).
  BdatArgument result;
  const std::size_t space = arg.find(' ');
  if (!ParseChunkSize(arg.substr(0, space), result.size)) {
    return Refuse(501, {5, 5, 4}, "Syntax: BDAT size [LAST]");
  }
  if (space != std::string_view::npos) {
    if (!EqualsIgnoreCase(arg.substr(space + 1), "LAST")) {
      return Refuse(501, {5, 5, 4}, "Syntax: BDAT size [LAST]");
    }
    result.last = true;
  }
  return result;
}

bool TakesNoArgument(Verb v) {
  return v == Verb::kData || v == Verb::kRset || v == Verb::kQuit ||
         v == Verb::kStartTls;
}

}  // namespace petrel::smtp
