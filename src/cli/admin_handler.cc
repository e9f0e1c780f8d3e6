#include "cli/admin_handler.h"

#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <ctime>
#include <future>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>

#include "asio/blocking.h"
#include "base/date.h"
#include "base/log.h"
#include "base/queue_id.h"
#include "cli/json_view.h"
#include "config/config.h"
#include "delivery/agent.h"
#include "queue/scheduler.h"
#include "smtp/address.h"
#include "spool/spool.h"

namespace petrel::cli {

namespace asio = boost::asio;
using nlohmann::json;

namespace {

std::string Fail(const std::string& message) {
  return json{{"ok", false}, {"error", message}}.dump();
}

// Local submission text to CRLF lines (sendmail input usually has LF).
std::string ToCrlf(std::string_view in) {
  std::string out;
  out.reserve(in.size() + in.size() / 32 + 2);
  for (std::size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '\r') {
      out += "\r\n";
      if (i + 1 < in.size() && in[i + 1] == '\n') ++i;
    } else if (c == '\n') {
      out += "\r\n";
    } else {
      out += c;
    }
  }
  if (!out.empty() && !out.ends_with("\r\n")) out += "\r\n";
  return out;
}

// True if the header section of `message` (CRLF) has field `name_lower`.
bool HasField(std::string_view message, std::string_view name_lower) {
  std::size_t pos = 0;
  while (pos < message.size()) {
    std::size_t eol = message.find("\r\n", pos);
    if (eol == std::string_view::npos) eol = message.size();
    std::string_view line = message.substr(pos, eol - pos);
    if (line.empty()) return false;  // end of the header section
    if (line.size() > name_lower.size() && line[name_lower.size()] == ':') {
      bool same = true;
      for (std::size_t i = 0; i < name_lower.size(); ++i) {
        if (std::tolower(static_cast<unsigned char>(line[i])) !=
            name_lower[i]) {
          same = false;
          break;
        }
      }
      if (same) return true;
    }
    pos = eol + 2;
  }
  return false;
}

}  // namespace

AdminHandler::AdminHandler(asio::io_context& io,
                           std::shared_ptr<const config::Config> config,
                           spool::Spool& spool, queue::Scheduler& scheduler,
                           delivery::Agent& agent, BlockingPool& pool)
    : io_(io),
      config_(std::move(config)),
      spool_(spool),
      scheduler_(scheduler),
      agent_(agent),
      pool_(pool) {}

asio::awaitable<std::string> AdminHandler::Handle(std::string request,
                                                  std::string payload) {
  json req = json::parse(request, nullptr, false);
  const std::string cmd = req.value("cmd", "");
  const std::string id = req.value("id", "");
  auto ex = co_await asio::this_coro::executor;
  if (cmd == "ping") co_return json{{"ok", true}}.dump();

  const bool id_optional =
      cmd == "list" || cmd == "submit" || (cmd == "flush" && id.empty());
  if (!id_optional && !IsValidQueueId(id)) {
    co_return Fail("a valid queue ID is needed, got \"" + id + "\"");
  }
  // What the scheduler knows of `id` (nullopt: not queued).
  auto entry = [&]() -> std::optional<queue::QueueEntry> {
    for (auto& e : scheduler_.Snapshot()) {
      if (e.id == id) return e;
    }
    return std::nullopt;
  };

  if (cmd == "list") {
    json rows = json::array();
    std::string error;
    std::function<void()> work = [&] {
      auto ids = spool_.ListIds();
      if (!ids) {
        error = ids.error().ToString();
        return;
      }
      for (const auto& qid : *ids) {
        auto e = spool_.LoadEnvelope(qid);
        if (e) rows.push_back(EnvelopeJson(*e));
      }
    };
    co_await pool_.Run(ex, &work);
    if (!error.empty()) co_return Fail(error);
    auto entries = scheduler_.Snapshot();
    std::map<std::string, queue::QueueEntry> by_id;
    for (auto& e : entries) by_id[e.id] = e;
    for (auto& row : rows) {
      auto it = by_id.find(row["id"].get<std::string>());
      if (it != by_id.end()) {
        row["next_attempt"] = it->second.due_unix;
        row["running"] = it->second.running;
      }
    }
    co_return json{{"ok", true}, {"messages", rows}}.dump();
  }

  if (cmd == "show") {
    Result<spool::Envelope> e = Error(Status::NotFound(id));
    std::string headers;
    std::function<void()> work = [&] {
      e = spool_.LoadEnvelope(id);
      if (!e) return;
      (void)spool_.ReadContent(id, [&](std::string_view piece) {
        headers.append(piece);
        auto end = headers.find("\r\n\r\n");
        if (end != std::string::npos) {
          headers.resize(end + 2);
          return Status::Unavailable("enough");
        }
        if (headers.size() > 256 * 1024) return Status::Unavailable("enough");
        return Status::Ok();
      });
    };
    co_await pool_.Run(ex, &work);
    if (!e) co_return Fail(id + ": " + e.error().ToString());
    co_return json{
        {"ok", true}, {"message", EnvelopeJson(*e)}, {"headers", headers}}
        .dump();
  }

  if (cmd == "flush") {
    if (!id.empty() && !entry())
      co_return Fail(id + ": no such message in the queue");
    scheduler_.Flush(id);
    co_return json{{"ok", true}}.dump();
  }

  if (cmd == "hold" || cmd == "release") {
    const bool hold = cmd == "hold";
    // The envelope is rewritten whole: never while an attempt may record a
    // recipient's outcome in it.
    if (auto e = entry(); e && e->running) {
      co_return Fail(id +
                     ": a delivery attempt is in progress; try again "
                     "when it is over");
    }
    Status st;
    std::function<void()> work = [&] {
      auto e = spool_.LoadEnvelope(id);
      if (!e) {
        st = e.error();
        return;
      }
      e->held = hold;
      st = spool_.UpdateEnvelope(*e);
    };
    co_await pool_.Run(ex, &work);
    if (!st.ok()) co_return Fail(id + ": " + st.ToString());
    if (hold) {
      scheduler_.Hold(id);
    } else {
      scheduler_.Release(id);
    }
    log::Info("{}: {} by the operator", id, hold ? "held" : "released");
    co_return json{{"ok", true}}.dump();
  }

  if (cmd == "delete") {
    Status st;
    std::function<void()> work = [&] { st = spool_.Remove(id); };
    co_await pool_.Run(ex, &work);
    if (!st.ok()) co_return Fail(id + ": " + st.ToString());
    scheduler_.Forget(id);
    log::Info("{}: removed by the operator", id);
    co_return json{{"ok", true}}.dump();
  }

  if (cmd == "bounce") {
    // A bounce during an attempt could report "failed" for a recipient the
    // attempt is delivering: refuse until it is over.
    if (auto e = entry(); e && e->running) {
      co_return Fail(id +
                     ": a delivery attempt is in progress; try again "
                     "when it is over");
    }
    Status st = co_await agent_.BounceAll(id);
    if (!st.ok()) co_return Fail(id + ": " + st.ToString());
    scheduler_.Flush(id);
    co_return json{{"ok", true}}.dump();
  }

  if (cmd == "submit") {
    const std::string sender = req.value("sender", "");
    std::vector<std::string> recipients;
    if (auto it = req.find("recipients"); it != req.end() && it->is_array()) {
      for (const auto& r : *it) {
        if (r.is_string()) recipients.push_back(r.get<std::string>());
      }
    }
    if (recipients.empty()) co_return Fail("no recipients");
    if (!sender.empty()) {
      auto s = smtp::ParseMailbox(sender, smtp::PathRole::kSender, true);
      if (!s)
        co_return Fail("bad sender <" + sender + ">: " + s.error().Text());
    }
    for (const auto& r : recipients) {
      auto box = smtp::ParseMailbox(r, smtp::PathRole::kRecipient, true);
      if (!box)
        co_return Fail("bad recipient <" + r + ">: " + box.error().Text());
    }
    const std::string qid = NewQueueId();
    std::string body = ToCrlf(payload);
    // RFC 5322 3.6 wants Date and From; Postfix and OpenSMTPD add them (and
    // Message-ID) to local submissions that lack them (RFC 6409 8).
    std::string added;
    if (!HasField(body, "date")) added += "Date: " + Rfc5322Now() + "\r\n";
    if (!HasField(body, "message-id")) {
      added += "Message-ID: <" + qid + "@" + config_->server.hostname + ">\r\n";
    }
    if (!HasField(body, "from")) {
      added +=
          "From: " + (sender.empty() ? std::string("<>") : sender) + "\r\n";
    }
    std::string content = "Received: by " + config_->server.hostname +
                          " (petrel) with local id " + qid + ";\r\n\t" +
                          Rfc5322Now() + "\r\n" + added + body;
    spool::Envelope e;
    e.id = qid;
    e.sender = sender;
    e.protocol = "local";
    e.arrival_unix = static_cast<std::int64_t>(std::time(nullptr));
    e.next_attempt_unix = e.arrival_unix;
    for (auto& r : recipients) {
      for (unsigned char c : r) {
        if (c >= 0x80) e.smtputf8 = true;
      }
      spool::Recipient rec;
      rec.address = r;
      e.recipients.push_back(std::move(rec));
    }
    for (unsigned char c : sender) {
      if (c >= 0x80) e.smtputf8 = true;
    }
    Status st;
    std::function<void()> work = [&] {
      auto w = spool_.NewMessage(qid);
      std::promise<Status> committed;
      w->Append(std::move(content), [](Status) {});
      w->Commit(std::move(e), [&](Status s) { committed.set_value(s); });
      st = committed.get_future().get();
    };
    co_await pool_.Run(ex, &work);
    if (!st.ok()) co_return Fail("not queued: " + st.ToString());
    log::Info("{}: from=<{}>, size={}, nrcpt={} (queue active, local)", qid,
              sender, payload.size(), recipients.size());
    scheduler_.Enqueue(qid);
    co_return json{{"ok", true}, {"id", qid}}.dump();
  }

  co_return Fail("unknown command \"" + cmd + "\"");
}

}  // namespace petrel::cli
