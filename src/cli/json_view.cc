#include "cli/json_view.h"

#include "smtp/params.h"

namespace petrel::cli {
namespace {

nlohmann::json NotifyJson(std::uint8_t n) {
  auto out = nlohmann::json::array();
  if (n & smtp::kNotifyNever) out.push_back("NEVER");
  if (n & smtp::kNotifySuccess) out.push_back("SUCCESS");
  if (n & smtp::kNotifyFailure) out.push_back("FAILURE");
  if (n & smtp::kNotifyDelay) out.push_back("DELAY");
  return out;
}

}  // namespace

const char* RecipientStateName(spool::RecipientState s) {
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
  j["held"] = e.held;
  j["next_attempt"] = e.next_attempt_unix;
  auto rcpts = nlohmann::json::array();
  auto detail = nlohmann::json::array();
  for (const auto& r : e.recipients) {
    rcpts.push_back(r.address);
    nlohmann::json d;
    d["address"] = r.address;
    d["state"] = RecipientStateName(r.state);
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

}  // namespace petrel::cli
