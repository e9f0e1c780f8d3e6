#include "cli/passwd_cmd.h"

#include <termios.h>
#include <unistd.h>

#include <fstream>
#include <iostream>
#include <sstream>

#include "auth/users.h"
#include "config/config.h"

namespace petrel::cli {

namespace {

bool ReadLine(const char* prompt, bool tty, std::string& out) {
  termios saved{};
  if (tty) {
    std::cerr << prompt << std::flush;
    tcgetattr(STDIN_FILENO, &saved);
    termios quiet = saved;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
  }
  const bool ok = static_cast<bool>(std::getline(std::cin, out));
  if (tty) {
    tcsetattr(STDIN_FILENO, TCSANOW, &saved);
    std::cerr << "\n";
  }
  if (!out.empty() && out.back() == '\r') out.pop_back();
  return ok;
}

}  // namespace

int Passwd(const std::string& config_path, const std::string& file,
           const std::string& user) {
  std::string path = file;
  if (path.empty()) {
    // The users file may not exist yet: parse without checking files.
    std::ifstream in(config_path, std::ios::binary);
    if (!in) {
      std::cerr << "petrel passwd: cannot read " << config_path
                << " (give --file USERS to name the users file)\n";
      return 1;
    }
    std::stringstream ss;
    ss << in.rdbuf();
    auto config = config::ParseConfig(ss.str(), config_path);
    if (!config) {
      std::cerr << config.error().message() << "\n";
      return 1;
    }
    if (!config->auth) {
      std::cerr << "petrel passwd: " << config_path
                << " has no [auth] section naming the users file (or give "
                   "--file USERS)\n";
      return 1;
    }
    path = config->auth->users;
  }
  const bool tty = isatty(STDIN_FILENO) != 0;
  std::string password, again;
  if (!ReadLine("Password: ", tty, password) || password.empty()) {
    std::cerr << "petrel passwd: no password given\n";
    return 1;
  }
  if (tty && (!ReadLine("Again: ", tty, again) || again != password)) {
    std::cerr << "petrel passwd: the passwords differ\n";
    return 1;
  }
  auto hash = auth::HashPassword(password);
  password.assign(password.size(), '\0');
  if (!hash) {
    std::cerr << "petrel passwd: " << hash.error().ToString() << "\n";
    return 1;
  }
  Status st = auth::SetPassword(path, user, *hash);
  if (!st.ok()) {
    std::cerr << "petrel passwd: " << st.ToString() << "\n";
    return 1;
  }
  std::cout << "petrel passwd: " << user << " set in " << path << "\n";
  return 0;
}

}  // namespace petrel::cli
