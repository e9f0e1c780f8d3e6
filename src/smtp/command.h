// SMTP commands, RFC 5321 4.1 (and RFC 3030 BDAT, RFC 3207 STARTTLS,
// RFC 4954 AUTH): the verb and the argument of one command line.
//
// ParseCommand() takes a line without its CRLF. It refuses a line with a NUL,
// a CR or another control character other than TAB (500 5.5.2 "Invalid
// character"), and an unknown verb (500 5.5.1 "Command unrecognized").
// Verbs are case-insensitive. The argument is everything after the verb and
// one space, verbatim. Untrusted input; pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <tl/expected.hpp>

#include "smtp/reply.h"

namespace petrel::smtp {

enum class Verb {
  kEhlo,
  kHelo,
  kMail,
  kRcpt,
  kData,
  kBdat,
  kRset,
  kNoop,
  kQuit,
  kVrfy,
  kExpn,
  kHelp,
  kStartTls,
  kAuth,
};
std::string_view VerbName(Verb v);  // "EHLO"

struct Command {
  Verb verb;
  std::string argument;
};

tl::expected<Command, Reply> ParseCommand(std::string_view line);

// EHLO/HELO argument: a domain or an address literal (501 5.5.4 otherwise).
// '_' is allowed in the domain: many Windows host names carry one, and
// Postfix accepts any HELO name by default.
tl::expected<std::string, Reply> ParseHeloArgument(std::string_view arg);

// BDAT argument: "size" or "size LAST" (RFC 3030 2); size is a decimal of at
// most 19 digits (501 5.5.4 otherwise, including "-1" and 2^64).
struct BdatArgument {
  std::uint64_t size = 0;
  bool last = false;
};
tl::expected<BdatArgument, Reply> ParseBdatArgument(std::string_view arg);

// Commands that take no argument (DATA, RSET, QUIT, STARTTLS): 501 5.5.4 if
// one is given. NOOP, HELP and VRFY take any argument.
bool TakesNoArgument(Verb v);

}  // namespace petrel::smtp
