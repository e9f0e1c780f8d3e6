// RFC 5322 3.3 date-time in UTC ("Mon, 23 Nov 2026 03:37:02 +0000"), for
// Received:, Date: and DSN fields. Pure; thread-safe.
#pragma once

#include <cstdint>
#include <string>

namespace petrel {

std::string Rfc5322Date(std::int64_t unix_seconds);
std::string Rfc5322Now();

}  // namespace petrel
