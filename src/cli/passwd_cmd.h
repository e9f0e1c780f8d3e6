// `petrel passwd USER`: sets USER's password in the users file of
// `[auth] users` (or --file), as a yescrypt hash. The password is read from
// standard input: one line; on a terminal, asked twice without echo.
#pragma once

#include <string>

namespace petrel::cli {

int Passwd(const std::string& config_path, const std::string& file,
           const std::string& user);

}  // namespace petrel::cli
