// The EHLO reply's keywords (RFC 5321 4.1.1.1), as a client reads them.
//
// ParseEhloReply() reads the lines after the first of a 250 reply to EHLO:
// each "KEYWORD [params]". Keywords are case-insensitive; unknown ones are
// ignored. SIZE without a number means no fixed limit. LIMITS is RFC 9422
// (RCPTMAX=, MAILMAX=). Untrusted input; pure function.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "smtp/reply.h"

namespace petrel::smtp {

struct EhloExtensions {
  bool pipelining = false;
  bool size = false;
  std::uint64_t size_limit = 0;  // 0: none declared
  bool eight_bit_mime = false;
  bool smtputf8 = false;
  bool chunking = false;
  bool starttls = false;
  bool dsn = false;
  bool enhanced_status_codes = false;
  std::optional<std::uint32_t> limits_rcptmax;
  std::optional<std::uint32_t> limits_mailmax;
  std::vector<std::string> auth_mechanisms;  // upper-cased
};

EhloExtensions ParseEhloReply(const Reply& reply);

}  // namespace petrel::smtp
