// Fuzzes the whole server session: a byte stream, cut into pieces derived
// from the input, fed into the real SessionMachine with an in-memory spool
// stand-in. Invariants: no CHECK fires; everything the server writes parses
// as well-formed replies; exactly one "queued as" reply per commit; the
// machine never asks to commit a message with no recipients; and every
// message committed from DATA is, after petrel's Received: field, byte for
// byte what the strict reference split (smtp/data_reference.h) yields from the
// byte after a DATA command line in the stream, the messages in stream
// order. Flag bit 16 makes the client polite: every line is its own read,
// as from a client that waits for each reply (so DATA gets its 354 and
// message text follows).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/check.h"
#include "config/config.h"
#include "fuzz/fuzz_util.h"
#include "server/relay_policy.h"
#include "server/session_machine.h"
#include "smtp/data_reference.h"
#include "smtp/reply_parser.h"

namespace {

using petrel::server::SessionMachine;

std::shared_ptr<const petrel::config::Config> FuzzConfig(bool with_auth) {
  static auto plain = [] {
    auto c = std::make_shared<petrel::config::Config>();
    c->server.hostname = "mx.example.test";
    c->relay.local_domains = {"example.test"};
    c->limits.max_recipients = 100;
    c->limits.max_message_size = 64 * 1024;
    c->limits.max_received_headers = 5;
    c->listeners.push_back(
        {"127.0.0.1", 2525, petrel::config::ListenerMode::kSmtp});
    return std::shared_ptr<const petrel::config::Config>(c);
  }();
  static auto auth = [] {
    auto c = std::make_shared<petrel::config::Config>(*plain);
    c->auth = petrel::config::Auth{};
    c->auth->users = "/dev/null";
    return std::shared_ptr<const petrel::config::Config>(c);
  }();
  return with_auth ? auth : plain;
}

constexpr std::string_view kNow = "Mon, 23 Nov 2026 00:00:00 +0000";

// Petrel's own Received: field removed from the front of stored content: it
// ends with the date-time (the message's own first line may start with WSP,
// so continuation lines cannot tell where it ends).
std::string_view WithoutReceived(std::string_view content) {
  CHECK(content.starts_with("Received: "));
  const std::string end = std::string(kNow) + "\r\n";
  const std::size_t p = content.find(end);
  CHECK(p != std::string_view::npos);
  return content.substr(p + end.size());
}

bool EndsWithDataLine(std::string_view before) {
  for (std::string_view end : {"\r\n", "\n", " \r\n", " \n"}) {
    if (before.size() >= 4 + end.size() && before.ends_with(end)) {
      std::string_view verb = before.substr(before.size() - end.size() - 4, 4);
      bool match = true;
      for (std::size_t i = 0; i < 4; ++i) {
        match = match && (verb[i] | 0x20) == "data"[i];
      }
      if (match) return true;
    }
  }
  return false;
}

// Finds the first stream position at or after `from` that follows a DATA
// command line and whose strict split yields `content`; returns the
// position after its end of data. CHECKs that there is one.
std::size_t MatchReference(std::string_view stream, std::size_t from,
                           std::string_view content) {
  for (std::size_t s = from; s <= stream.size(); ++s) {
    if (!EndsWithDataLine(stream.substr(0, s))) continue;
    const petrel::smtp::DataReference ref =
        petrel::smtp::StrictDataReference(stream.substr(s));
    if (ref.done && ref.content == content) return s + ref.consumed;
  }
  CHECK(false);  // a message the strict reference never yields
  return 0;
}

// Cuts each piece after every LF as well.
std::vector<std::string_view> ByLine(
    const std::vector<std::string_view>& pieces) {
  std::vector<std::string_view> out;
  for (std::string_view p : pieces) {
    for (std::size_t nl = p.find('\n'); nl != std::string_view::npos;
         nl = p.find('\n')) {
      out.push_back(p.substr(0, nl + 1));
      p.remove_prefix(nl + 1);
    }
    out.push_back(p);
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data,
                                      std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::uint8_t flags = input.empty() ? 0 : data[0];
  auto config = FuzzConfig(flags & 2);
  petrel::server::SessionEnv env;
  env.config = config;
  env.relay = std::make_shared<petrel::server::RelayPolicy>(*config);
  env.now_rfc5322 = [] { return std::string(kNow); };
  env.now_unix = [] { return std::int64_t{0}; };
  int ids = 0;
  env.new_queue_id = [&ids] { return "ID" + std::to_string(++ids); };
  env.tls_available = flags & 1;
  env.auth_available = config->auth.has_value();
  SessionMachine m(std::move(env),
                   {"192.0.2.1", 1, size % 3 == 0, (flags & 4) != 0});
  m.Start();

  std::string output;
  std::size_t commits = 0;
  std::string message;           // content handed to the "spool" so far
  std::size_t reference_at = 0;  // stream position after the last match
  std::string pending;
  auto pieces = petrel::fuzz::Split(input, 64);
  if (flags & 16) pieces = ByLine(pieces);
  std::size_t next = 0;
  bool closed = false;
  while (!closed) {
    switch (m.action()) {
      case SessionMachine::Action::kRead:
        output += m.TakeOutput();
        if (pending.empty()) {
          if (next == pieces.size()) {
            m.OnEof();
            break;
          }
          pending = std::string(pieces[next++]);
        }
        pending.erase(0, m.Feed(pending));
        break;
      case SessionMachine::Action::kAppend:
        message += m.TakeContent();
        m.OnAppendDone(petrel::Status::Ok());
        break;
      case SessionMachine::Action::kCommit:
        CHECK(!m.envelope().recipients.empty());
        message += m.TakeContent();
        if (!m.CommittingChunked()) {
          reference_at =
              MatchReference(input, reference_at, WithoutReceived(message));
        }
        message.clear();
        ++commits;
        m.OnCommitDone(petrel::Status::Ok());
        break;
      case SessionMachine::Action::kAbort:
        message.clear();
        m.OnAbortDone();
        break;
      case SessionMachine::Action::kStartTls:
        output += m.TakeOutput();
        pending.clear();
        m.OnTlsStarted("TLSv1.3 with cipher FUZZ (256/256 bits)");
        break;
      case SessionMachine::Action::kAuthenticate:
        output += m.TakeOutput();
        if (flags & 8) {
          m.OnAuthResult(petrel::server::AuthResult::kBlocked);
        } else if (m.auth_user() == "alice" && m.auth_password() == "secret") {
          m.OnAuthResult(petrel::server::AuthResult::kOk, {"a@example.test"});
        } else {
          m.OnAuthResult(petrel::server::AuthResult::kFailed);
        }
        break;
      case SessionMachine::Action::kClose:
        output += m.TakeOutput();
        closed = true;
        break;
    }
  }

  petrel::smtp::ReplyParser parser;
  parser.Feed(output);
  std::size_t queued = 0;
  for (;;) {
    auto r = parser.Next();
    CHECK(r.has_value());  // every reply we wrote is well-formed
    if (!r->has_value()) break;
    const auto& reply = **r;
    CHECK(reply.code >= 200 && reply.code <= 599);
    for (const auto& line : reply.lines) CHECK(line.size() + 6 <= 512);
    if (reply.code == 250 && !reply.lines.empty() &&
        reply.lines[0].starts_with("Ok: queued as ")) {
      ++queued;
    }
  }
  CHECK(parser.Buffered() == 0);
  CHECK(queued == commits);
  return 0;
}
