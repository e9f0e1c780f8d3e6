// Durations and sizes as operators write them in the config.
//
// Durations: "0" or an integer followed by s, m, h or d ("90s", "5m", "4h",
// "5d"). Sizes: an integer of bytes, or an integer followed by B, KiB, MiB or
// GiB ("50MiB"). Untrusted input: anything else is an error that says what
// was expected. Pure functions.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"

namespace petrel {

using Seconds = std::chrono::seconds;

Result<Seconds> ParseDuration(std::string_view text);
Result<std::uint64_t> ParseSize(std::string_view text);
std::string FormatDuration(Seconds d);

}  // namespace petrel
