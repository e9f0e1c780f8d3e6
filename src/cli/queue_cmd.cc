#include "cli/queue_cmd.h"

#include <pwd.h>
#include <unistd.h>

#include <ctime>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "admin/admin.h"
#include "config/config.h"
#include "smtp/address.h"

namespace petrel::cli {

using nlohmann::json;

namespace {

// Sends one request; prints an error and returns nullopt on failure.
std::optional<json> Request(const std::string& config_path, const json& req,
                            const std::string& payload = {}) {
  auto config = config::LoadConfig(config_path);
  if (!config) {
    std::cerr << config.error().message() << "\n";
    return std::nullopt;
  }
  auto reply = admin::Call(config->server.admin_socket, req.dump(), payload);
  if (!reply) {
    std::cerr << "petrel: " << reply.error().message() << "\n";
    return std::nullopt;
  }
  json j = json::parse(*reply, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    std::cerr << "petrel: the server's answer is not JSON: " << *reply << "\n";
    return std::nullopt;
  }
  if (!j.value("ok", false)) {
    std::cerr << "petrel: " << j.value("error", std::string("failed")) << "\n";
    return std::nullopt;
  }
  return j;
}

std::string Age(std::int64_t arrival) {
  std::int64_t s = static_cast<std::int64_t>(std::time(nullptr)) - arrival;
  if (s < 0) s = 0;
  if (s < 120) return std::to_string(s) + "s";
  if (s < 7200) return std::to_string(s / 60) + "m";
  if (s < 172800) return std::to_string(s / 3600) + "h";
  return std::to_string(s / 86400) + "d";
}

std::string NextAttempt(const json& m) {
  if (m.value("held", false)) return "held";
  if (m.value("running", false)) return "now";
  auto due = m.value("next_attempt", std::int64_t{0});
  std::int64_t in = due - static_cast<std::int64_t>(std::time(nullptr));
  if (in <= 0) return "due";
  return "in " + std::to_string(in) + "s";
}

}  // namespace

int QueueList(const std::string& config_path, bool as_json) {
  auto j = Request(config_path, {{"cmd", "list"}});
  if (!j) return 1;
  const auto& messages = (*j)["messages"];
  if (as_json) {
    std::cout << messages.dump(2) << "\n";
    return 0;
  }
  std::printf("%-16s %6s %9s %-9s %-10s %s\n", "ID", "AGE", "SIZE", "RCPTS",
              "NEXT", "SENDER / LAST ERROR");
  for (const auto& m : messages) {
    int pending = 0;
    std::string last_error;
    for (const auto& r : m["recipients_detail"]) {
      if (r.value("state", "") == "pending") {
        ++pending;
        if (last_error.empty()) last_error = r.value("last_reply", "");
      }
    }
    std::string rcpts =
        std::to_string(pending) + "/" + std::to_string(m["recipients"].size());
    std::string sender = m.value("sender", "");
    std::printf("%-16s %6s %9llu %-9s %-10s <%s>\n", m.value("id", "").c_str(),
                Age(m.value("arrival", 0)).c_str(),
                static_cast<unsigned long long>(m.value("size", 0ull)),
                rcpts.c_str(), NextAttempt(m).c_str(), sender.c_str());
    if (!last_error.empty()) std::printf("%50s%s\n", "", last_error.c_str());
  }
  std::printf("-- %zu message(s)\n", messages.size());
  return 0;
}

int QueueShow(const std::string& config_path, const std::string& id,
              bool as_json) {
  auto j = Request(config_path, {{"cmd", "show"}, {"id", id}});
  if (!j) return 1;
  if (as_json) {
    std::cout << j->dump(2) << "\n";
    return 0;
  }
  const auto& m = (*j)["message"];
  std::cout << "id: " << m.value("id", "") << "\n"
            << "sender: <" << m.value("sender", "") << ">\n"
            << "size: " << m.value("size", 0ull) << "\n"
            << "arrival: " << m.value("arrival", 0) << " ("
            << Age(m.value("arrival", 0)) << " ago)\n"
            << "client: " << m.value("helo", "") << " ["
            << m.value("client_address", "") << "] " << m.value("protocol", "")
            << "\n"
            << "held: " << (m.value("held", false) ? "yes" : "no") << "\n";
  for (const auto& r : m["recipients_detail"]) {
    std::cout << "recipient: <" << r.value("address", "") << "> "
              << r.value("state", "") << ", attempts "
              << r.value("attempts", 0);
    if (!r.value("last_reply", "").empty()) {
      std::cout << ", last: " << r.value("last_reply", "");
    }
    std::cout << "\n";
  }
  std::cout << "\n" << (*j).value("headers", "");
  return 0;
}

int QueueAction(const std::string& config_path, const std::string& action,
                const std::string& id) {
  json req{{"cmd", action}};
  if (!id.empty()) req["id"] = id;
  return Request(config_path, req) ? 0 : 1;
}

namespace {

// The addresses of an RFC 5322 3.4 address-list: display names, comments
// "(...)", quoted strings and groups ("team: a@b, c@d;", "undisclosed-
// recipients:;") are understood; each mailbox's addr-spec is returned.
std::vector<std::string> AddressList(std::string_view value) {
  std::vector<std::string> out;
  std::string item;   // the current mailbox, comments removed
  std::string angle;  // inside <...>
  bool in_angle = false, quoted = false, has_angle = false;
  int comment = 0;
  auto flush = [&] {
    std::string addr = has_angle ? angle : item;
    std::string trimmed;
    bool q = false;
    for (char c : addr) {
      if (c == '"') q = !q;
      if (q || !std::isspace(static_cast<unsigned char>(c))) trimmed += c;
    }
    if (!trimmed.empty()) out.push_back(trimmed);
    item.clear();
    angle.clear();
    has_angle = false;
  };
  for (std::size_t i = 0; i < value.size(); ++i) {
    char c = value[i];
    if (comment > 0) {
      if (c == '\\' && i + 1 < value.size())
        ++i;
      else if (c == '(')
        ++comment;
      else if (c == ')')
        --comment;
      continue;
    }
    if (quoted) {
      if (c == '\\' && i + 1 < value.size()) {
        (in_angle ? angle : item) += value.substr(i, 2);
        ++i;
        continue;
      }
      if (c == '"') quoted = false;
      (in_angle ? angle : item) += c;
      continue;
    }
    if (in_angle) {
      if (c == '>')
        in_angle = false;
      else if (c == '"') {
        quoted = true;
        angle += c;
      } else
        angle += c;
      continue;
    }
    switch (c) {
      case '(':
        ++comment;
        break;
      case '"':
        quoted = true;
        item += c;
        break;
      case '<':
        in_angle = true;
        has_angle = true;
        angle.clear();
        break;
      case ':':
        item.clear();
        break;  // a group's display name
      case ',':
      case ';':
        flush();
        break;
      default:
        item += c;
    }
  }
  flush();
  return out;
}

// Addresses from To:, Cc: and Bcc: (for -t): "<a@b>" or bare "a@b", comma
// separated; display names and comments are skipped. Folded lines are
// joined. Returns the header with Bcc: lines removed.
std::string TakeHeaderRecipients(const std::string& message,
                                 std::vector<std::string>& out) {
  std::size_t end = message.find("\n\n");
  std::size_t end_crlf = message.find("\r\n\r\n");
  if (end_crlf != std::string::npos &&
      (end == std::string::npos || end_crlf < end)) {
    end = end_crlf;
  }
  std::string header = message.substr(0, end);
  std::string rest = end == std::string::npos ? "" : message.substr(end);
  std::string kept;
  std::size_t pos = 0;
  while (pos < header.size()) {
    std::size_t eol = header.find('\n', pos);
    std::size_t next = eol == std::string::npos ? header.size() : eol + 1;
    // Gather continuation lines.
    while (next < header.size() &&
           (header[next] == ' ' || header[next] == '\t')) {
      std::size_t e2 = header.find('\n', next);
      next = e2 == std::string::npos ? header.size() : e2 + 1;
    }
    std::string field = header.substr(pos, next - pos);
    std::string lower = field.substr(0, 4);
    for (auto& c : lower)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const bool to = lower.rfind("to:", 0) == 0;
    const bool cc = lower.rfind("cc:", 0) == 0;
    const bool bcc = lower.rfind("bcc:", 0) == 0;
    if (to || cc || bcc) {
      for (auto& a : AddressList(field.substr(field.find(':') + 1))) {
        out.push_back(std::move(a));
      }
    }
    if (!bcc) kept += field;
    pos = next;
  }
  return kept + rest;
}

std::string DefaultSender(const config::Config& config) {
  std::string user = "root";
  if (passwd* pw = getpwuid(getuid()); pw != nullptr && pw->pw_name) {
    user = pw->pw_name;
  }
  std::string domain = config.relay.local_domains.empty()
                           ? config.server.hostname
                           : config.relay.local_domains.front();
  return user + "@" + domain;
}

}  // namespace

int Sendmail(const std::string& config_path, const SendmailOptions& options) {
  auto config = config::LoadConfig(config_path);
  if (!config) {
    std::cerr << config.error().message() << "\n";
    return 1;
  }
  std::string message((std::istreambuf_iterator<char>(std::cin)),
                      std::istreambuf_iterator<char>());
  if (!options.ignore_dots) {
    // Traditional sendmail: a line of a single "." ends the input.
    for (const char* end : {"\n.\n", "\n.\r\n"}) {
      if (message.rfind(".\n", 0) == 0 || message.rfind(".\r\n", 0) == 0) {
        message.clear();
        break;
      }
      if (auto p = message.find(end); p != std::string::npos) {
        message.resize(p + 1);
      }
    }
  }
  std::vector<std::string> recipients = options.recipients;
  if (options.recipients_from_headers) {
    message = TakeHeaderRecipients(message, recipients);
  }
  if (recipients.empty()) {
    std::cerr << "petrel sendmail: no recipients (give them as arguments, or "
                 "use -t)\n";
    return 1;
  }
  std::string sender =
      options.sender.empty() ? DefaultSender(*config) : options.sender;
  if (sender == "<>") sender.clear();
  json req{{"cmd", "submit"},
           {"sender", sender},
           {"recipients", recipients},
           {"payload_octets", message.size()}};
  auto j = Request(config_path, req, message);
  if (!j) return 75;  // EX_TEMPFAIL, as sendmail does
  return 0;
}

}  // namespace petrel::cli
