// `petrel serve`: runs the MTA in the foreground until SIGTERM/SIGINT.
#pragma once

#include <string>

namespace petrel::cli {

// Returns the process exit code.
int Serve(const std::string& config_path, int io_threads);

}  // namespace petrel::cli
