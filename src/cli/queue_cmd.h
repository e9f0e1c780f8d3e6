// `petrel queue ...` and `petrel sendmail`: clients of the running server's
// admin socket (interface.md). Each returns the process exit code and says
// clearly when the server is not running.
#pragma once

#include <string>
#include <vector>

namespace petrel::cli {

int QueueList(const std::string& config_path, bool json);
int QueueShow(const std::string& config_path, const std::string& id, bool json);
// "flush" (id may be empty), "hold", "release", "delete", "bounce".
int QueueAction(const std::string& config_path, const std::string& action,
                const std::string& id);

struct SendmailOptions {
  bool recipients_from_headers = false;  // -t
  bool ignore_dots = false;              // -i / -oi
  std::string sender;                    // -f; default: the user at hostname
  std::vector<std::string> recipients;
};
// Reads the message from stdin; exit 0 only once it is durably queued.
int Sendmail(const std::string& config_path, const SendmailOptions& options);

}  // namespace petrel::cli
