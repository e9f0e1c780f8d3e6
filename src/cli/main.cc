// petrel: the one binary. Subcommands as in interface.md; this file only
// parses arguments and hands over to the modules.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <boost/version.hpp>
#include <cstdlib>
#include <iostream>
#include <thread>

#include "base/log.h"
#include "cli/passwd_cmd.h"
#include "cli/queue_cmd.h"
#include "cli/serve.h"
#include "cli/spool_cmd.h"
#include "config/config.h"

namespace {

// --config, else $PETREL_CONFIG, else petrel.toml in the working directory.
std::string ConfigPath(const std::string& flag) {
  if (!flag.empty()) return flag;
  if (const char* env = std::getenv("PETREL_CONFIG"); env && *env) return env;
  return "petrel.toml";
}

int CheckConfig(const std::string& path) {
  auto config = petrel::config::LoadConfig(path);
  if (!config) {
    std::cerr << config.error().message() << "\n";
    return 1;
  }
  std::cout << path << ": ok\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"petrel: a mail transfer agent"};
  app.require_subcommand(1);
  std::string config_flag;
  auto add_config = [&config_flag](CLI::App* cmd) {
    cmd->add_option("--config", config_flag, "configuration file (TOML)");
  };
  add_config(&app);

  auto* serve = app.add_subcommand("serve", "run the MTA in the foreground");
  add_config(serve);
  std::string log_level = "info";
  // Half the cores for I/O: the spool's writer thread (fsync) and the
  // kernel's network work need the rest. Measured on 2 cores: 1 I/O thread
  // accepts ~20% more than 2 (bench/README.md).
  int threads = static_cast<int>(
      std::clamp(std::thread::hardware_concurrency() / 2, 1u, 8u));
  serve->add_option("--log-level", log_level, "debug, info or warning")
      ->check(CLI::IsMember({"debug", "info", "warning"}));
  serve->add_option("--threads", threads, "I/O threads")
      ->check(CLI::Range(1, 64));

  auto* check =
      app.add_subcommand("check-config", "parse and validate the config");
  add_config(check);

  auto* version = app.add_subcommand("version", "print versions");

  // queue: talks to the running server.
  auto* queue = app.add_subcommand("queue", "inspect and act on the queue");
  queue->require_subcommand(1);
  bool json = false;
  std::string id;
  auto* q_list = queue->add_subcommand("list", "one row per queued message");
  auto* q_show = queue->add_subcommand("show", "envelope, recipients, headers");
  auto* q_flush = queue->add_subcommand("flush", "retry now (all, or one)");
  auto* q_hold = queue->add_subcommand("hold", "keep a message from delivery");
  auto* q_release = queue->add_subcommand("release", "undo hold");
  auto* q_delete = queue->add_subcommand("delete", "remove a message");
  auto* q_bounce =
      queue->add_subcommand("bounce", "fail pending recipients with a DSN");
  for (auto* c :
       {q_list, q_show, q_flush, q_hold, q_release, q_delete, q_bounce}) {
    add_config(c);
  }
  q_list->add_flag("--json", json, "JSON output");
  q_show->add_flag("--json", json, "JSON output");
  q_show->add_option("id", id, "queue ID")->required();
  q_flush->add_option("id", id, "queue ID (default: all)");
  for (auto* c : {q_hold, q_release, q_delete, q_bounce}) {
    c->add_option("id", id, "queue ID")->required();
  }

  // sendmail: local submission.
  auto* sendmail = app.add_subcommand(
      "sendmail", "sendmail-compatible submission: the message on stdin");
  add_config(sendmail);
  petrel::cli::SendmailOptions sm;
  sendmail->add_flag("-t", sm.recipients_from_headers,
                     "recipients from To:, Cc:, Bcc:");
  sendmail->add_flag("-i,--oi", sm.ignore_dots,
                     "a line with a single dot does not end the message");
  sendmail->add_option("-f", sm.sender, "envelope sender");
  sendmail->add_option("recipients", sm.recipients, "recipients");
  sendmail->allow_extras(false);

  auto* spool_cmd = app.add_subcommand(
      "spool", "read the spool of a stopped server (list, cat)");
  spool_cmd->require_subcommand(1);
  auto* spool_list = spool_cmd->add_subcommand("list", "one row per message");
  add_config(spool_list);
  spool_list->add_flag("--json", json, "JSON output");
  std::string cat_id;
  auto* spool_cat =
      spool_cmd->add_subcommand("cat", "print a message's content");
  spool_cat->add_option("id", cat_id, "queue ID")->required();
  add_config(spool_cat);

  auto* passwd = app.add_subcommand(
      "passwd", "set a user's password in the [auth] users file (stdin)");
  add_config(passwd);
  std::string passwd_user, passwd_file;
  passwd->add_option("user", passwd_user, "user name")->required();
  passwd->add_option("--file", passwd_file,
                     "users file (default: [auth] users of the config)");

  CLI11_PARSE(app, argc, argv);
  const std::string path = ConfigPath(config_flag);
  if (serve->parsed()) {
    petrel::log::Init(log_level);
    return petrel::cli::Serve(path, threads);
  }
  if (check->parsed()) return CheckConfig(path);
  if (q_list->parsed()) return petrel::cli::QueueList(path, json);
  if (q_show->parsed()) return petrel::cli::QueueShow(path, id, json);
  if (q_flush->parsed()) return petrel::cli::QueueAction(path, "flush", id);
  if (q_hold->parsed()) return petrel::cli::QueueAction(path, "hold", id);
  if (q_release->parsed()) return petrel::cli::QueueAction(path, "release", id);
  if (q_delete->parsed()) return petrel::cli::QueueAction(path, "delete", id);
  if (q_bounce->parsed()) return petrel::cli::QueueAction(path, "bounce", id);
  if (sendmail->parsed()) return petrel::cli::Sendmail(path, sm);
  if (spool_list->parsed()) return petrel::cli::SpoolList(path, json);
  if (spool_cat->parsed()) return petrel::cli::SpoolCat(path, cat_id);
  if (passwd->parsed()) {
    return petrel::cli::Passwd(path, passwd_file, passwd_user);
  }
  if (version->parsed()) {
    std::cout << "petrel 0.1.0\n"
              << "boost " << BOOST_VERSION / 100000 << "."
              << BOOST_VERSION / 100 % 1000 << "." << BOOST_VERSION % 100
              << "\n";
    return 0;
  }
  return 0;
}
