#include "cli/spool_cmd.h"

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/json_view.h"
#include "config/config.h"
#include "smtp/params.h"
#include "spool/spool.h"

namespace petrel::cli {
namespace {

Result<std::unique_ptr<spool::Spool>> OpenSpool(
    const std::string& config_path) {
  auto config = config::LoadConfig(config_path);
  if (!config) return Error(config.error());
  spool::SpoolOptions options;
  options.path = config->spool.path;
  auto s = spool::Spool::Open(options);
  if (!s) {
    return Error(Status::Unavailable(
        "cannot open the spool " + options.path + ": " + s.error().ToString() +
        " (is petrel running? the spool commands work on a stopped server)"));
  }
  return s;
}

}  // namespace

int SpoolList(const std::string& config_path, bool json) {
  auto s = OpenSpool(config_path);
  if (!s) {
    std::cerr << "petrel: " << s.error().message() << "\n";
    return 1;
  }
  auto ids = (*s)->ListIds();
  if (!ids) {
    std::cerr << "petrel: " << ids.error().ToString() << "\n";
    return 1;
  }
  auto out = nlohmann::json::array();
  int status = 0;
  for (const auto& id : *ids) {
    auto e = (*s)->LoadEnvelope(id);
    if (!e) {
      std::cerr << "petrel: " << id << ": " << e.error().ToString() << "\n";
      status = 1;
      continue;
    }
    if (json) {
      out.push_back(EnvelopeJson(*e));
    } else {
      std::size_t pending = 0;
      for (const auto& r : e->recipients) {
        if (r.state == spool::RecipientState::kPending) ++pending;
      }
      std::cout << e->id << " " << e->content_octets << " <" << e->sender
                << "> " << pending << "/" << e->recipients.size() << "\n";
    }
  }
  if (json) std::cout << out.dump(2) << "\n";
  return status;
}

int SpoolCat(const std::string& config_path, const std::string& id) {
  auto s = OpenSpool(config_path);
  if (!s) {
    std::cerr << "petrel: " << s.error().message() << "\n";
    return 1;
  }
  Status st = (*s)->ReadContent(id, [](std::string_view piece) {
    if (std::fwrite(piece.data(), 1, piece.size(), stdout) != piece.size()) {
      return Status::IoError("write to stdout failed");
    }
    return Status::Ok();
  });
  std::fflush(stdout);
  if (!st.ok()) {
    std::cerr << "petrel: " << id << ": " << st.ToString() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace petrel::cli
