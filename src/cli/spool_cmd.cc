#include "cli/spool_cmd.h"

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

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

nlohmann::json NotifyJson(std::uint8_t n) {
  auto out = nlohmann::json::array();
  if (n & smtp::kNotifyNever) out.push_back("NEVER");
  if (n & smtp::kNotifySuccess) out.push_back("SUCCESS");
  if (n & smtp::kNotifyFailure) out.push_back("FAILURE");
  if (n & smtp::kNotifyDelay) out.push_back("DELAY");
  return out;
}

const char* StateName(spool::RecipientState s) {
  switch (s) {
    case spool::RecipientState::kPending:
      return "pending";
    case spool::RecipientState::kDelivered:
      return "delivered";
    case spool::RecipientState::kFailed:
      return "failed";
  }
  return "unknown";
}

nlohmann::json EnvelopeJson(const spool::Envelope& e) {
  nlohmann::json j;
  j["id"] = e.id;
  j["sender"] = e.sender;
  j["size"] = e.content_octets;
  j["arrival"] = e.arrival_unix;
  j["helo"] = e.helo;
  j["client_address"] = e.client_address;
  j["protocol"] = e.protocol;
  j["smtputf8"] = e.smtputf8;
  j["eight_bit_mime"] = e.eight_bit_mime;
  switch (static_cast<smtp::DsnRet>(e.dsn_ret)) {
    case smtp::DsnRet::kFull:
      j["dsn_ret"] = "FULL";
      break;
    case smtp::DsnRet::kHeaders:
      j["dsn_ret"] = "HDRS";
      break;
    default:
      j["dsn_ret"] = nullptr;
  }
  j["dsn_envid"] = e.dsn_envid;
  auto rcpts = nlohmann::json::array();
  auto detail = nlohmann::json::array();
  for (const auto& r : e.recipients) {
    rcpts.push_back(r.address);
    nlohmann::json d;
    d["address"] = r.address;
    d["state"] = StateName(r.state);
    d["notify"] = NotifyJson(r.notify);
    d["orcpt"] = r.orcpt_type.empty() ? std::string()
                                      : r.orcpt_type + ";" + r.orcpt_address;
    d["attempts"] = r.attempts;
    d["last_reply"] = r.last_reply;
    detail.push_back(std::move(d));
  }
  j["recipients"] = std::move(rcpts);
  j["recipients_detail"] = std::move(detail);
  return j;
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
