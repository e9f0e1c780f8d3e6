// `petrel spool ...`: read the spool directly while the server is stopped
// (an extension to interface.md, for operators and the crash tests; the
// `queue` commands talk to a running server instead).
#pragma once

#include <string>

namespace petrel::cli {

// Lists every message: one line each, or a JSON array with --json.
int SpoolList(const std::string& config_path, bool json);
// Writes the content of message `id` to stdout, exactly as stored.
int SpoolCat(const std::string& config_path, const std::string& id);

}  // namespace petrel::cli
