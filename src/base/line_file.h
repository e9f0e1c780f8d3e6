// The line files petrel keeps beside its config (the users file, the client
// credentials file): one entry a line, blanks trimmed (base/strings.h),
// empty lines and '#' comments skipped, every error naming "PATH:LINE".
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "base/status.h"

namespace petrel {

// Records one error for the line being handled: "PATH:LINE: why".
using LineFail = std::function<void(std::string_view why)>;

// Calls `each(line, fail)` for every entry line of `text`. Returns the
// errors, one a line, or "" if there were none.
std::string ParseLines(std::string_view text, const std::string& path,
                       const std::function<void(std::string_view line,
                                                const LineFail& fail)>& each);

// The whole file; NotFound "PATH: cannot read <what>: <strerror>".
Result<std::string> ReadLineFile(const std::string& path,
                                 std::string_view what);

}  // namespace petrel
