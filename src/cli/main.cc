// petrel: the one binary. Subcommands as in interface.md; this file only
// parses arguments and hands over to the modules.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <boost/version.hpp>
#include <cstdlib>
#include <iostream>
#include <thread>

#include "base/log.h"
#include "cli/spool_cmd.h"
#include "config/config.h"
#include "server/server.h"

namespace {

// --config, else $PETREL_CONFIG, else petrel.toml in the working directory.
std::string ConfigPath(const std::string& flag) {
  if (!flag.empty()) return flag;
  if (const char* env = std::getenv("PETREL_CONFIG"); env && *env) return env;
  return "petrel.toml";
}

int Serve(const std::string& path, const std::string& log_level, int threads) {
  petrel::log::Init(log_level);
  auto config = petrel::config::LoadConfig(path);
  if (!config) {
    std::cerr << config.error().message() << "\n";
    return 1;
  }
  petrel::server::ServerOptions options;
  options.io_threads = threads;
  return petrel::server::RunServer(
      std::make_shared<const petrel::config::Config>(std::move(*config)),
      options);
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
  app.add_option("--config", config_flag, "configuration file (TOML)");

  auto* serve = app.add_subcommand("serve", "run the MTA in the foreground");
  std::string log_level = "info";
  // Half the cores for I/O: the spool's writer thread (fsync) and the
  // kernel's network work need the rest. Measured on 2 cores: 1 I/O thread
  // accepts ~20% more than 2 (bench/README.md).
  int threads = static_cast<int>(
      std::clamp(std::thread::hardware_concurrency() / 2, 1u, 8u));
  serve->add_option("--config", config_flag, "configuration file (TOML)");
  serve->add_option("--log-level", log_level, "debug, info or warning")
      ->check(CLI::IsMember({"debug", "info", "warning"}));
  serve->add_option("--threads", threads, "I/O threads")
      ->check(CLI::Range(1, 64));

  auto* check =
      app.add_subcommand("check-config", "parse and validate the config");
  check->add_option("--config", config_flag, "configuration file (TOML)");

  auto* version = app.add_subcommand("version", "print versions");

  auto* spool_cmd = app.add_subcommand(
      "spool", "read the spool of a stopped server (list, cat)");
  spool_cmd->require_subcommand(1);
  bool json = false;
  auto* spool_list = spool_cmd->add_subcommand("list", "one row per message");
  spool_list->add_option("--config", config_flag, "configuration file (TOML)");
  spool_list->add_flag("--json", json, "JSON output");
  std::string cat_id;
  auto* spool_cat =
      spool_cmd->add_subcommand("cat", "print a message's content");
  spool_cat->add_option("id", cat_id, "queue ID")->required();
  spool_cat->add_option("--config", config_flag, "configuration file (TOML)");

  CLI11_PARSE(app, argc, argv);
  const std::string path = ConfigPath(config_flag);
  if (serve->parsed()) return Serve(path, log_level, threads);
  if (check->parsed()) return CheckConfig(path);
  if (spool_list->parsed()) return petrel::cli::SpoolList(path, json);
  if (spool_cat->parsed()) return petrel::cli::SpoolCat(path, cat_id);
  if (version->parsed()) {
    std::cout << "petrel 0.1.0\n"
              << "boost " << BOOST_VERSION / 100000 << "."
              << BOOST_VERSION / 100 % 1000 << "." << BOOST_VERSION % 100
              << "\n";
    return 0;
  }
  return 0;
}
