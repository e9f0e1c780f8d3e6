#include "base/units.h"

#include <charconv>

namespace petrel {
namespace {

// Splits "123abc" into 123 and "abc"; false if there is no leading number or
// it overflows.
bool SplitNumber(std::string_view text, std::uint64_t& number,
                 std::string_view& suffix) {
  auto [ptr, ec] =
      std::from_chars(text.data(), text.data() + text.size(), number);
  if (ec != std::errc() || ptr == text.data()) return false;
  suffix = text.substr(ptr - text.data());
  return true;
}

}  // namespace

Result<Seconds> ParseDuration(std::string_view text) {
  std::uint64_t n = 0;
  std::string_view unit;
  if (!SplitNumber(text, n, unit)) {
    return Error(
        Status::InvalidArgument("expected a duration such as \"90s\", \"5m\", "
                                "\"4h\" or \"5d\", got \"" +
                                std::string(text) + "\""));
  }
  std::uint64_t mult = 0;
  if (unit.empty() && n == 0) return Seconds(0);
  if (unit == "s")
    mult = 1;
  else if (unit == "m")
    mult = 60;
  else if (unit == "h")
    mult = 3600;
  else if (unit == "d")
    mult = 86400;
  if (mult == 0) {
    return Error(Status::InvalidArgument("unknown duration unit in \"" +
                                         std::string(text) +
                                         "\" (use s, m, h or d)"));
  }
  constexpr std::uint64_t kMaxSeconds = 10ull * 365 * 86400;  // ten years
  if (n > kMaxSeconds / mult) {
    return Error(Status::InvalidArgument("duration \"" + std::string(text) +
                                         "\" is too long"));
  }
  return Seconds(static_cast<std::int64_t>(n * mult));
}

Result<std::uint64_t> ParseSize(std::string_view text) {
  std::uint64_t n = 0;
  std::string_view unit;
  if (!SplitNumber(text, n, unit)) {
    return Error(Status::InvalidArgument(
        "expected a size such as 1048576 or \"50MiB\", got \"" +
        std::string(text) + "\""));
  }
  std::uint64_t mult = 0;
  if (unit.empty() || unit == "B")
    mult = 1;
  else if (unit == "KiB")
    mult = 1024;
  else if (unit == "MiB")
    mult = 1024 * 1024;
  else if (unit == "GiB")
    mult = 1024ull * 1024 * 1024;
  if (mult == 0) {
    return Error(Status::InvalidArgument("unknown size unit in \"" +
                                         std::string(text) +
                                         "\" (use B, KiB, MiB or GiB)"));
  }
  if (n > UINT64_MAX / mult) {
    return Error(Status::InvalidArgument("size \"" + std::string(text) +
                                         "\" is too large"));
  }
  return n * mult;
}

std::string FormatDuration(Seconds d) {
  auto s = d.count();
  if (s != 0 && s % 86400 == 0) return std::to_string(s / 86400) + "d";
  if (s != 0 && s % 3600 == 0) return std::to_string(s / 3600) + "h";
  if (s != 0 && s % 60 == 0) return std::to_string(s / 60) + "m";
  return std::to_string(s) + "s";
}

}  // namespace petrel
