#include "server/session_machine.h"

#include <fmt/format.h>

#include <algorithm>

#include "auth/users.h"
#include "base/check.h"
#include "base/log.h"
#include "config/config.h"
#include "server/relay_policy.h"
#include "smtp/command.h"
#include "smtp/limits.h"
#include "smtp/sasl.h"

namespace petrel::server {

namespace {

// Content is handed to the spool in pieces of about this size, so a session
// holds at most this much message text in memory.
constexpr std::size_t kSpoolChunkOctets = 256 * 1024;

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;  // clang 14 needs the guide

std::string LogAddress(const std::optional<smtp::Mailbox>& m) {
  return m ? smtp::SanitizeText(m->ToString(), 600) : std::string();
}

}  // namespace

// One mail transaction: from MAIL to the reply after the data.
struct SessionMachine::Transaction {
  std::optional<smtp::Mailbox> sender;
  smtp::MailParams params;
  std::vector<smtp::RcptCommand> recipients;
  smtp::HeaderScanner headers;
  smtp::BareNewlineScanner bare;    // BDAT only; DATA uses its reader's
  std::uint64_t client_octets = 0;  // message octets as sent (BDAT)
  bool used_bdat = false;
  bool too_big = false;
  bool header_too_big = false;  // over limits.max_header_size
  bool bare_newline = false;
  std::optional<Status> storage_error;
};

SessionMachine::SessionMachine(SessionEnv env, ClientInfo client)
    : env_(std::move(env)), client_(std::move(client)) {}

SessionMachine::~SessionMachine() = default;

std::string_view SessionMachine::StateName() const {
  return std::visit(
      Overloaded{
          [](const AwaitHelo&) { return std::string_view("CONNECT"); },
          [](const Ready&) { return std::string_view("HELO"); },
          [](const MailGiven&) { return std::string_view("MAIL"); },
          [](const ReceivingData&) { return std::string_view("DATA"); },
          [](const ReceivingChunk&) { return std::string_view("BDAT"); },
          [](const Committing&) { return std::string_view("END-OF-MESSAGE"); },
          [](const AuthExchange&) { return std::string_view("AUTH"); },
          [](const Authenticating&) { return std::string_view("AUTH"); },
          [](const Closed&) { return std::string_view("CLOSED"); },
      },
      state_);
}

void SessionMachine::Enter(State next) {
  if (log::Enabled(log::Level::kDebug)) {
    std::string_view from = StateName();
    state_ = std::move(next);
    log::Debug("session [{}]:{}: {} -> {}", client_.address, client_.port, from,
               StateName());
    return;
  }
  state_ = std::move(next);
}

void SessionMachine::Start(std::optional<smtp::Reply> refuse) {
  if (refuse) {
    CloseWith(*refuse);
    return;
  }
  Reply(smtp::MakeReply(220, env_.config->server.hostname + " ESMTP petrel"));
}

void SessionMachine::StartedWithTls(std::string description) {
  tls_active_ = true;
  tls_description_ = std::move(description);
}

void SessionMachine::Reply(const smtp::Reply& reply) {
  output_ += reply.Format();
}

void SessionMachine::Reply(int code, smtp::EnhancedStatus status,
                           std::string text) {
  Reply(smtp::MakeReply(code, status, std::move(text)));
}

void SessionMachine::ClientError(int code, smtp::EnhancedStatus status,
                                 std::string text) {
  ClientError(smtp::MakeReply(code, status, std::move(text)));
}

void SessionMachine::ClientError(const smtp::Reply& reply) {
  Reply(reply);
  // Like Postfix's smtpd_hard_error_limit: a client that keeps getting
  // errors is broken or probing; end the session.
  if (++errors_ > env_.config->server.max_errors) {
    log::Warning("too many errors after {} from unknown[{}]", StateName(),
                 client_.address);
    CloseWith(smtp::MakeReply(
        421, {4, 7, 0},
        env_.config->server.hostname + " Error: too many errors"));
  }
}

void SessionMachine::CloseWith(const smtp::Reply& reply) {
  Reply(reply);
  Enter(Closed{});
  action_ = Action::kClose;
}

std::string SessionMachine::TakeOutput() { return std::exchange(output_, {}); }

std::string SessionMachine::TakeContent() {
  if (!content_.empty()) message_in_spool_ = true;
  return std::exchange(content_, {});
}

const std::string& SessionMachine::current_id() const { return id_; }

bool SessionMachine::InData() const {
  return std::holds_alternative<ReceivingData>(state_) ||
         std::holds_alternative<ReceivingChunk>(state_);
}

void SessionMachine::Count(std::string_view command) {
  for (auto& [name, n] : counts_) {
    if (name == command) {
      ++n;
      return;
    }
  }
  counts_.emplace_back(std::string(command), 1);
}

std::string SessionMachine::CommandStats() const {
  std::string out;
  int total = 0;
  for (const auto& [name, n] : counts_) {
    out += fmt::format("{}={} ", name, n);
    total += n;
  }
  out += fmt::format("commands={}", total);
  return out;
}

std::size_t SessionMachine::Feed(std::string_view input) {
  std::size_t used = 0;
  while (used < input.size() && action_ == Action::kRead) {
    std::string_view rest = input.substr(used);
    std::size_t n = 0;
    if (std::holds_alternative<ReceivingData>(state_)) {
      n = FeedData(rest);
    } else if (std::holds_alternative<ReceivingChunk>(state_)) {
      n = FeedChunk(rest);
    } else if (std::holds_alternative<Closed>(state_) ||
               std::holds_alternative<Committing>(state_) ||
               std::holds_alternative<Authenticating>(state_)) {
      break;
    } else {
      n = FeedCommands(rest);
    }
    CHECK(n > 0);
    used += n;
  }
  return used;
}

std::size_t SessionMachine::FeedCommands(std::string_view input) {
  std::size_t n = lines_.Feed(input);
  if (auto line = lines_.Take()) {
    if (std::holds_alternative<AuthExchange>(state_)) {
      if (line->kind == smtp::CommandLine::Kind::kTooLong) {
        Enter(Ready{});
        ClientError(500, {5, 5, 2}, "Line too long");
      } else {
        OnAuthResponse(line->text);
      }
    } else if (std::exchange(after_chunk_, false) &&
               (line->kind == smtp::CommandLine::Kind::kTooLong ||
                !smtp::ParseCommand(line->text))) {
      // Not a command straight after a BDAT chunk: the client sent more (or
      // less) text than the chunk size said, and what follows is message
      // text, not commands. Reading on would obey whatever the text holds.
      Count("unknown");
      log::Warning(
          "improper pipelining after BDAT from unknown[{}]: text "
          "past the end of the chunk",
          client_.address);
      CloseWith(smtp::MakeReply(554, {5, 5, 0},
                                "Error: SMTP protocol synchronization (text "
                                "past the end of the BDAT chunk)"));
    } else if (line->kind == smtp::CommandLine::Kind::kTooLong) {
      Count("unknown");
      ClientError(500, {5, 5, 2}, "Line too long");
    } else {
      const bool more_pending = n < input.size();
      HandleLine(line->text, more_pending);
    }
  }
  return n;
}

void SessionMachine::HandleLine(std::string_view line, bool more_pending) {
  auto cmd = smtp::ParseCommand(line);
  if (!cmd) {
    Count("unknown");
    ClientError(cmd.error());
    return;
  }
  std::string verb(smtp::VerbName(cmd->verb));
  std::transform(verb.begin(), verb.end(), verb.begin(),
                 [](char c) { return static_cast<char>(std::tolower(c)); });
  Count(verb);
  if (shutting_down_ && cmd->verb != smtp::Verb::kQuit) {
    CloseWith(smtp::MakeReply(
        421, {4, 3, 2},
        env_.config->server.hostname + " Service shutting down"));
    return;
  }
  if (smtp::TakesNoArgument(cmd->verb) && !cmd->argument.empty()) {
    ClientError(501, {5, 5, 4},
                fmt::format("Syntax: {}", smtp::VerbName(cmd->verb)));
    return;
  }
  switch (cmd->verb) {
    case smtp::Verb::kEhlo:
      OnEhlo(cmd->argument, /*extended=*/true);
      break;
    case smtp::Verb::kHelo:
      OnEhlo(cmd->argument, /*extended=*/false);
      break;
    case smtp::Verb::kMail:
      OnMail(cmd->argument);
      break;
    case smtp::Verb::kRcpt:
      OnRcpt(cmd->argument);
      break;
    case smtp::Verb::kData:
      OnData(more_pending);
      break;
    case smtp::Verb::kBdat:
      OnBdat(cmd->argument);
      break;
    case smtp::Verb::kRset:
      OnRset();
      break;
    case smtp::Verb::kNoop:
      Reply(250, {2, 0, 0}, "Ok");
      break;
    case smtp::Verb::kQuit:
      CloseWith(smtp::MakeReply(221, {2, 0, 0}, "Bye"));
      break;
    case smtp::Verb::kVrfy:
      // RFC 5321 3.5.3: 252 when we will not verify but will accept.
      Reply(252, {2, 0, 0}, "Cannot VRFY user; try RCPT to attempt delivery");
      break;
    case smtp::Verb::kExpn:
      ClientError(502, {5, 5, 1}, "Error: command not implemented");
      break;
    case smtp::Verb::kHelp:
      Reply(214, {2, 0, 0},
            "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP");
      break;
    case smtp::Verb::kStartTls:
      OnStartTls();
      break;
    case smtp::Verb::kAuth:
      OnAuth(cmd->argument);
      break;
  }
}

void SessionMachine::OnEhlo(std::string_view arg, bool extended) {
  auto name = smtp::ParseHeloArgument(arg);
  if (!name) {
    ClientError(name.error());
    return;
  }
  helo_ = *name;
  esmtp_ = extended;
  // RFC 5321 4.1.4: EHLO/HELO also resets any transaction in progress.
  id_.clear();
  Enter(Ready{});
  const auto& cfg = *env_.config;
  if (!extended) {
    Reply(smtp::MakeReply(250, cfg.server.hostname));
    return;
  }
  smtp::Reply r;
  r.code = 250;
  r.lines = {
      cfg.server.hostname,
      "PIPELINING",
      fmt::format("SIZE {}", cfg.limits.max_message_size),
      "ENHANCEDSTATUSCODES",
      "8BITMIME",
      "SMTPUTF8",
      "CHUNKING",
      "DSN",
      fmt::format("LIMITS RCPTMAX={}", cfg.limits.max_recipients),
  };
  if (env_.tls_available && !tls_active_) r.lines.push_back("STARTTLS");
  // RFC 4954 4 and RFC 8314: credentials only ever travel encrypted.
  if (env_.auth_available && tls_active_) r.lines.push_back("AUTH PLAIN LOGIN");
  Reply(r);
}

void SessionMachine::OnMail(std::string_view arg) {
  if (std::holds_alternative<AwaitHelo>(state_)) {
    ClientError(503, {5, 5, 1}, "Error: send HELO/EHLO first");
    return;
  }
  if (!std::holds_alternative<Ready>(state_)) {
    ClientError(503, {5, 5, 1}, "Error: nested MAIL command");
    return;
  }
  if (client_.submission && auth_user_.empty()) {
    ClientError(530, {5, 7, 0}, "Authentication required");
    return;
  }
  smtp::OfferedExtensions offered;
  offered.esmtp = esmtp_;
  offered.max_message_size = env_.config->limits.max_message_size;
  offered.auth = env_.auth_available && tls_active_;
  auto mail = smtp::ParseMailArgument(arg, offered);
  if (!mail) {
    ClientError(mail.error());
    return;
  }
  const auto& auth = env_.config->auth;
  if (!auth_user_.empty() && auth && auth->sender_login_match &&
      mail->reverse_path &&
      !auth::MaySendAs(auth_user_, auth_addresses_,
                       mail->reverse_path->ToString(),
                       env_.config->relay.local_domains)) {
    log::Info(
        "NOQUEUE: reject: MAIL from unknown[{}]: sender <{}> not owned "
        "by user {}",
        client_.address, LogAddress(mail->reverse_path),
        smtp::SanitizeText(auth_user_, 200));
    ClientError(553, {5, 7, 1},
                fmt::format("<{}>: Sender address rejected: not owned by user "
                            "{}",
                            LogAddress(mail->reverse_path),
                            smtp::SanitizeText(auth_user_, 200)));
    return;
  }
  // Postfix's queue_minfree: refuse before the data rather than after it.
  const std::uint64_t min_free = env_.config->spool.min_free_space;
  if (min_free > 0 && env_.spool_free_octets) {
    const std::uint64_t need = min_free + mail->params.size.value_or(0);
    if (auto free = env_.spool_free_octets(); free && *free < need) {
      log::Warning(
          "NOQUEUE: reject: MAIL from unknown[{}]: 452 4.3.1 Insufficient "
          "system storage ({} octets free in the spool's file system, {} "
          "needed)",
          client_.address, *free, need);
      Reply(452, {4, 3, 1}, "Insufficient system storage");
      return;
    }
  }
  auto tx = std::make_unique<Transaction>();
  tx->sender = std::move(mail->reverse_path);
  tx->params = std::move(mail->params);
  id_ = env_.new_queue_id();
  if (auth_user_.empty()) {
    log::Info("{}: client=unknown[{}]:{}", id_, client_.address, client_.port);
  } else {
    log::Info("{}: client=unknown[{}]:{}, sasl_method={}, sasl_username={}",
              id_, client_.address, client_.port, auth_method_,
              smtp::SanitizeText(auth_user_, 200));
  }
  Enter(MailGiven{std::move(tx)});
  Reply(250, {2, 1, 0}, "Ok");
}

void SessionMachine::OnRcpt(std::string_view arg) {
  auto* mail = std::get_if<MailGiven>(&state_);
  if (mail == nullptr) {
    ClientError(503, {5, 5, 1}, "Error: need MAIL command");
    return;
  }
  Transaction& tx = *mail->tx;
  if (tx.used_bdat) {
    ClientError(503, {5, 5, 1}, "Error: RCPT after BDAT");
    return;
  }
  // RFC 5321 4.5.3.1.10: refuse the excess in an orderly way; the
  // recipients accepted so far stay accepted. Not counted as an error: a
  // client that pipelines more recipients than our limit is doing nothing
  // wrong.
  if (tx.recipients.size() >= env_.config->limits.max_recipients) {
    Reply(452, {4, 5, 3}, "Too many recipients");
    return;
  }
  smtp::OfferedExtensions offered;
  offered.esmtp = esmtp_;
  auto rcpt = smtp::ParseRcptArgument(arg, offered, tx.params.smtputf8);
  if (!rcpt) {
    ClientError(rcpt.error());
    return;
  }
  // RFC 4954 and Postfix's permit_sasl_authenticated: a user who logged in
  // may send anywhere.
  const bool may_relay = client_.trusted || !auth_user_.empty();
  if (auto refused =
          env_.relay->CheckRecipient(rcpt->forward_path, may_relay)) {
    log::Info("{}: reject: RCPT from unknown[{}]: {}; from=<{}> to=<{}>", id_,
              client_.address, refused->Text(), LogAddress(tx.sender),
              smtp::SanitizeText(rcpt->forward_path.ToString(), 600));
    ClientError(*refused);
    return;
  }
  tx.recipients.push_back(std::move(*rcpt));
  Reply(250, {2, 1, 5}, "Ok");
}

void SessionMachine::OnData(bool more_input_pending) {
  auto* mail = std::get_if<MailGiven>(&state_);
  if (mail == nullptr) {
    ClientError(503, {5, 5, 1}, "Error: need MAIL command");
    return;
  }
  Transaction& tx = *mail->tx;
  if (tx.used_bdat) {
    ClientError(503, {5, 5, 1}, "Error: DATA after BDAT");
    return;
  }
  if (tx.recipients.empty()) {
    ClientError(554, {5, 5, 1}, "Error: no valid recipients");
    return;
  }
  // RFC 2920 3.1: DATA ends a pipelined group; the client must wait for our
  // 354 before sending text. Text already here was sent blind: it may be
  // meant as commands or as data, and guessing is how smuggling starts.
  if (more_input_pending) {
    log::Warning("{}: improper pipelining after DATA from unknown[{}]", id_,
                 client_.address);
    CloseWith(smtp::MakeReply(554, {5, 5, 0},
                              "Error: SMTP protocol synchronization"));
    return;
  }
  content_ = ReceivedHeader(tx);
  Enter(ReceivingData{TakeTransaction(),
                      smtp::DataReader(env_.config->limits.max_message_size)});
  Reply(smtp::MakeReply(354, "End data with <CR><LF>.<CR><LF>"));
}

void SessionMachine::OnBdat(std::string_view arg) {
  auto bdat = smtp::ParseBdatArgument(arg);
  if (!bdat) {
    // Without a size we cannot tell data from commands any more: say why
    // and close rather than read message text as commands.
    CloseWith(bdat.error());
    return;
  }
  std::unique_ptr<Transaction> tx;
  smtp::Reply refusal;
  if (auto* mail = std::get_if<MailGiven>(&state_)) {
    if (mail->tx->recipients.empty()) {
      refusal = smtp::MakeReply(554, {5, 5, 1}, "Error: no valid recipients");
    } else {
      tx = TakeTransaction();
    }
  } else {
    refusal = smtp::MakeReply(503, {5, 5, 1}, "Error: need MAIL command");
  }
  if (tx) {
    if (!tx->used_bdat) content_ = ReceivedHeader(*tx);
    tx->used_bdat = true;
  } else {
    // RFC 3030 2: the chunk is read and discarded, then refused.
    ClientError(refusal);
    if (action_ == Action::kClose) return;
    // ClientError queued the reply; the chunk is still to be skipped. The
    // reply order is the same as if we replied after the chunk, because
    // replies are only written when input runs out.
  }
  Enter(ReceivingChunk{std::move(tx), bdat->size, bdat->last});
  if (bdat->size == 0) FeedChunk({});
}

bool SessionMachine::CommittingChunked() const {
  const auto* c = std::get_if<Committing>(&state_);
  return c != nullptr && c->tx != nullptr && c->tx->used_bdat;
}

std::unique_ptr<SessionMachine::Transaction> SessionMachine::TakeTransaction() {
  return std::visit(Overloaded{
                        [](MailGiven& s) { return std::move(s.tx); },
                        [](ReceivingData& s) { return std::move(s.tx); },
                        [](ReceivingChunk& s) { return std::move(s.tx); },
                        [](Committing& s) { return std::move(s.tx); },
                        [](auto&) { return std::unique_ptr<Transaction>(); },
                    },
                    state_);
}

void SessionMachine::OnStartTls() {
  if (tls_active_) {
    ClientError(503, {5, 5, 1}, "Error: TLS already active");
    return;
  }
  if (!env_.tls_available) {
    ClientError(502, {5, 5, 1}, "Error: command not implemented");
    return;
  }
  if (std::holds_alternative<AwaitHelo>(state_)) {
    ClientError(503, {5, 5, 1}, "Error: send EHLO first");
    return;
  }
  if (!std::holds_alternative<Ready>(state_)) {
    ClientError(503, {5, 5, 1}, "Error: MAIL transaction in progress");
    return;
  }
  Reply(220, {2, 0, 0}, "Ready to start TLS");
  // Feed() stops here: whatever the client sent after this line was sent
  // in plaintext and must never be read as if it came over TLS.
  action_ = Action::kStartTls;
}

void SessionMachine::OnTlsStarted(std::string description) {
  CHECK(action_ == Action::kStartTls);
  action_ = Action::kRead;
  tls_active_ = true;
  tls_description_ = std::move(description);
  // RFC 3207 4.2: forget everything learnt before TLS, EHLO included.
  helo_.clear();
  esmtp_ = false;
  id_.clear();
  auth_user_.clear();
  auth_addresses_.clear();
  lines_ = smtp::LineReader();
  Enter(AwaitHelo{});
}

void SessionMachine::OnAuth(std::string_view arg) {
  if (!env_.auth_available) {
    ClientError(502, {5, 5, 1}, "Error: command not implemented");
    return;
  }
  if (!tls_active_) {
    // RFC 4954 6 / RFC 3207: never take a password in plaintext.
    ClientError(538, {5, 7, 11},
                "Encryption required for requested authentication mechanism");
    return;
  }
  if (!esmtp_) {
    ClientError(503, {5, 5, 1}, "Error: send EHLO first");
    return;
  }
  if (!auth_user_.empty()) {
    ClientError(503, {5, 5, 1}, "Error: already authenticated");
    return;
  }
  if (!std::holds_alternative<Ready>(state_)) {
    ClientError(503, {5, 5, 1}, "Error: MAIL transaction in progress");
    return;
  }
  const std::size_t space = arg.find(' ');
  std::string_view name = arg.substr(0, space);
  std::optional<std::string_view> initial;
  if (space != std::string_view::npos) initial = arg.substr(space + 1);
  auto mechanism = smtp::ParseSaslMechanism(name);
  if (!mechanism) {
    ClientError(504, {5, 5, 4}, "Unrecognized authentication type");
    return;
  }
  const bool login = *mechanism == smtp::SaslMechanism::kLogin;
  auth_method_ = login ? "LOGIN" : "PLAIN";
  Enter(AuthExchange{login, false});
  if (initial) {
    // RFC 4954 4: "=" is an empty initial response.
    OnAuthResponse(*initial == "=" ? std::string_view() : *initial);
    return;
  }
  if (login) {
    Reply(smtp::MakeReply(334, std::string(smtp::kLoginUserChallenge)));
  } else {
    output_ += "334 \r\n";  // RFC 4954 4: "334" SP, an empty challenge
  }
}

void SessionMachine::OnAuthResponse(std::string_view line) {
  auto& ex = std::get<AuthExchange>(state_);
  if (line == "*") {
    Enter(Ready{});
    ClientError(501, {5, 7, 0}, "Authentication aborted");
    return;
  }
  auto decoded = smtp::DecodeBase64(line);
  if (!decoded) {
    Enter(Ready{});
    ClientError(501, {5, 5, 2}, "Cannot decode response");
    return;
  }
  if (!ex.login) {
    auto credentials = smtp::ParsePlainMessage(*decoded);
    if (!credentials) {
      AuthenticateWith({}, {});  // fails, after the same delay
      return;
    }
    AuthenticateWith(std::move(credentials->user),
                     std::move(credentials->password));
    return;
  }
  if (!ex.have_user) {
    ex.have_user = true;
    auth_request_user_ = std::move(*decoded);
    Reply(smtp::MakeReply(334, std::string(smtp::kLoginPasswordChallenge)));
    return;
  }
  AuthenticateWith(std::exchange(auth_request_user_, {}), std::move(*decoded));
}

void SessionMachine::AuthenticateWith(std::string user, std::string password) {
  auth_request_user_ = std::move(user);
  auth_request_password_ = std::move(password);
  Enter(Authenticating{});
  action_ = Action::kAuthenticate;
}

void SessionMachine::OnAuthResult(AuthResult result,
                                  std::vector<std::string> addresses) {
  CHECK(action_ == Action::kAuthenticate);
  action_ = Action::kRead;
  Enter(Ready{});
  std::string user = std::exchange(auth_request_user_, {});
  auth_request_password_.assign(auth_request_password_.size(), '\0');
  auth_request_password_.clear();
  const std::string shown = smtp::SanitizeText(user, 200);
  switch (result) {
    case AuthResult::kOk:
      log::Info("AUTH {} as {} from unknown[{}]", auth_method_, shown,
                client_.address);
      auth_user_ = std::move(user);
      auth_addresses_ = std::move(addresses);
      Reply(235, {2, 7, 0}, "Authentication successful");
      return;
    case AuthResult::kFailed:
      log::Warning("unknown[{}]: SASL {} authentication failed for user {}",
                   client_.address, auth_method_, shown);
      // RFC 4954 6: the same answer whether the user exists or not.
      ClientError(535, {5, 7, 8}, "Authentication credentials invalid");
      return;
    case AuthResult::kBlocked:
      log::Warning("unknown[{}]: too many AUTH failures; AUTH refused",
                   client_.address);
      CloseWith(smtp::MakeReply(
          421, {4, 7, 0},
          env_.config->server.hostname +
              " Error: too many authentication failures; try again later"));
      return;
    case AuthResult::kTempFail:
      Reply(454, {4, 7, 0}, "Temporary authentication failure");
      return;
  }
}

void SessionMachine::OnTlsFailed() {
  CHECK(action_ == Action::kStartTls);
  log::Info("TLS handshake failed with unknown[{}]", client_.address);
  Enter(Closed{});
  action_ = Action::kClose;
}

void SessionMachine::OnRset() {
  id_.clear();
  if (std::holds_alternative<AwaitHelo>(state_)) {
    Reply(250, {2, 0, 0}, "Ok");
    return;
  }
  Enter(Ready{});
  Reply(250, {2, 0, 0}, "Ok");
}

void SessionMachine::AddContent(std::string_view content) {
  Transaction* tx = std::visit(
      Overloaded{[](ReceivingData& s) { return s.tx.get(); },
                 [](ReceivingChunk& s) { return s.tx.get(); },
                 [](auto&) { return static_cast<Transaction*>(nullptr); }},
      state_);
  if (tx == nullptr) return;
  tx->headers.Feed(content);
  if (tx->headers.header_octets() > env_.config->limits.max_header_size) {
    tx->header_too_big = true;
  }
  const bool doomed =
      tx->too_big || tx->header_too_big || tx->storage_error ||
      tx->headers.received_count() >
          static_cast<int>(env_.config->limits.max_received_headers);
  if (doomed) {
    // The message will be refused: stop storing it, keep reading.
    content_.clear();
    return;
  }
  content_.append(content);
}

std::size_t SessionMachine::FeedData(std::string_view input) {
  auto& s = std::get<ReceivingData>(state_);
  std::size_t n = s.reader.Feed(input);
  if (s.reader.pending_content() > 0) {
    std::string c = s.reader.TakeContent();
    s.tx->too_big = s.reader.too_big();
    AddContent(c);
  }
  if (s.reader.done()) {
    s.tx->too_big = s.reader.too_big();
    s.tx->bare_newline = s.reader.bare_newline();
    s.tx->client_octets = s.reader.content_octets();
    FinishMessage();
  } else if (content_.size() >= kSpoolChunkOctets) {
    action_ = Action::kAppend;
  }
  return n;
}

std::size_t SessionMachine::FeedChunk(std::string_view input) {
  auto& s = std::get<ReceivingChunk>(state_);
  const std::size_t n = static_cast<std::size_t>(
      std::min<std::uint64_t>(s.remaining, input.size()));
  std::string_view bytes = input.substr(0, n);
  s.remaining -= n;
  if (s.tx) {
    s.tx->bare.Feed(bytes);
    s.tx->client_octets += n;
    if (s.tx->client_octets > env_.config->limits.max_message_size) {
      s.tx->too_big = true;
    }
    AddContent(bytes);
  }
  if (s.remaining > 0) {
    if (content_.size() >= kSpoolChunkOctets) action_ = Action::kAppend;
    return n;
  }
  // The chunk is complete.
  after_chunk_ = true;
  if (!s.tx) {
    // A refused chunk ends the transaction (RFC 3030 2: the client must not
    // send more chunks of it).
    id_.clear();
    Enter(helo_.empty() ? State(AwaitHelo{}) : State(Ready{}));
    return n;
  }
  if (s.last) {
    s.tx->bare.Finish();
    s.tx->bare_newline = s.tx->bare.bare_newline();
    FinishMessage();
    return n;
  }
  const std::uint64_t size = s.tx->client_octets;
  Enter(MailGiven{TakeTransaction()});
  Reply(250, {2, 0, 0}, fmt::format("Ok: {} octets received", size));
  if (content_.size() >= kSpoolChunkOctets) action_ = Action::kAppend;
  return n;
}

void SessionMachine::FinishMessage() {
  std::unique_ptr<Transaction> tx = TakeTransaction();
  CHECK(tx != nullptr);
  std::optional<smtp::Reply> refusal;
  if (tx->storage_error) {
    refusal =
        tx->storage_error->code() == Status::Code::kNoSpace
            ? smtp::MakeReply(452, {4, 3, 1}, "Insufficient system storage")
            : smtp::MakeReply(451, {4, 3, 0}, "Error: queue file write error");
  } else if (tx->too_big) {
    refusal = smtp::MakeReply(
        552, {5, 3, 4}, "Message size exceeds fixed maximum message size");
  } else if (tx->header_too_big) {
    refusal = smtp::MakeReply(552, {5, 3, 4},
                              "Message header size exceeds fixed maximum "
                              "header size");
  } else if (tx->bare_newline) {
    // docs/decisions.md: bare CR or LF in message text is refused, as
    // Postfix 3.9 does with smtpd_forbid_bare_newline = reject.
    refusal = smtp::MakeReply(
        550, {5, 5, 2}, "Error: bare <CR> or <LF> received in message text");
  } else if (tx->headers.received_count() >
             static_cast<int>(env_.config->limits.max_received_headers)) {
    refusal = smtp::MakeReply(554, {5, 4, 6}, "Too many hops");
  }
  if (refusal) {
    log::Info("{}: reject: {} from unknown[{}]: {}; from=<{}>", id_,
              tx->used_bdat ? "BDAT" : "DATA", client_.address, refusal->Text(),
              LogAddress(tx->sender));
    content_.clear();
    Enter(Ready{});
    id_ = message_in_spool_ ? id_ : std::string();
    Reply(*refusal);
    if (message_in_spool_) action_ = Action::kAbort;
    return;
  }
  BuildEnvelope(*tx);
  Enter(Committing{std::move(tx)});
  action_ = Action::kCommit;
}

void SessionMachine::BuildEnvelope(Transaction& tx) {
  const auto& cfg = *env_.config;
  spool::Envelope e;
  e.id = id_;
  e.sender = tx.sender ? tx.sender->ToString() : std::string();
  e.smtputf8 = tx.params.smtputf8;
  e.eight_bit_mime = tx.params.body == smtp::Body::k8BitMime;
  e.dsn_ret = static_cast<std::uint8_t>(tx.params.ret);
  e.dsn_envid = tx.params.envid;
  e.helo = helo_;
  e.client_address = client_.address;
  e.protocol = WithProtocol(false);
  e.arrival_unix = env_.now_unix();
  e.next_attempt_unix = e.arrival_unix;
  for (auto& r : tx.recipients) {
    spool::Recipient rec;
    smtp::Mailbox box = r.forward_path;
    if (box.domain.empty()) {
      // <Postmaster>: deliver to postmaster of our first local domain.
      box.local_part = "postmaster";
      box.domain = cfg.relay.local_domains.empty()
                       ? cfg.server.hostname
                       : cfg.relay.local_domains.front();
    }
    rec.address = box.ToString();
    rec.orcpt_type = r.params.orcpt_type;
    rec.orcpt_address = r.params.orcpt_address;
    rec.notify = r.params.notify;
    e.recipients.push_back(std::move(rec));
  }
  envelope_ = std::move(e);
}

std::string SessionMachine::WithProtocol(bool smtputf8) const {
  // RFC 3848 and RFC 6531 "with" values: S for TLS, A for AUTH.
  std::string with = smtputf8 ? "UTF8SMTP" : (esmtp_ ? "ESMTP" : "SMTP");
  if (tls_active_) with += "S";
  if (!auth_user_.empty()) with += "A";
  return with;
}

std::string SessionMachine::ReceivedHeader(const Transaction& tx) const {
  // RFC 5321 4.4. With one recipient we name it, as most MTAs do; with
  // several we do not, so one recipient cannot learn the others.
  const std::string with = WithProtocol(tx.params.smtputf8);
  std::string literal = client_.address.find(':') != std::string::npos
                            ? "IPv6:" + client_.address
                            : client_.address;
  std::string h =
      fmt::format("Received: from {} (unknown [{}])\r\n", helo_, literal);
  if (tls_active_) h += fmt::format("\t(using {})\r\n", tls_description_);
  h += fmt::format("\tby {} (petrel) with {} id {}",
                   env_.config->server.hostname, with, id_);
  if (tx.recipients.size() == 1) {
    const auto& box = tx.recipients.front().forward_path;
    h += fmt::format("\r\n\tfor <{}>",
                     box.domain.empty() ? box.local_part : box.ToString());
  }
  h += fmt::format(";\r\n\t{}\r\n", env_.now_rfc5322());
  return h;
}

void SessionMachine::OnAppendDone(const Status& status) {
  CHECK(action_ == Action::kAppend);
  action_ = Action::kRead;
  if (status.ok()) return;
  Transaction* tx = std::visit(
      Overloaded{[](ReceivingData& s) { return s.tx.get(); },
                 [](ReceivingChunk& s) { return s.tx.get(); },
                 [](MailGiven& s) { return s.tx.get(); },
                 [](auto&) { return static_cast<Transaction*>(nullptr); }},
      state_);
  if (tx != nullptr && !tx->storage_error) {
    log::Error("{}: spool write failed: {}", id_, status.ToString());
    tx->storage_error = status;
  }
  content_.clear();
}

void SessionMachine::OnCommitDone(const Status& status) {
  CHECK(action_ == Action::kCommit);
  auto& s = std::get<Committing>(state_);
  action_ = Action::kRead;
  message_in_spool_ = false;
  if (status.ok()) {
    log::Info("{}: from=<{}>, size={}, nrcpt={} (queue active)", id_,
              LogAddress(s.tx->sender), s.tx->client_octets,
              envelope_.recipients.size());
    Reply(250, {2, 0, 0}, "Ok: queued as " + id_);
  } else {
    log::Error("{}: spool commit failed: {}", id_, status.ToString());
    if (status.code() == Status::Code::kNoSpace) {
      Reply(452, {4, 3, 1}, "Insufficient system storage");
    } else {
      Reply(451, {4, 3, 0}, "Error: queue file write error");
    }
  }
  id_.clear();
  Enter(Ready{});
}

void SessionMachine::OnAbortDone() {
  CHECK(action_ == Action::kAbort);
  action_ = Action::kRead;
  message_in_spool_ = false;
  id_.clear();
}

void SessionMachine::OnTimeout() {
  log::Info("timeout after {} from unknown[{}]", StateName(), client_.address);
  CloseWith(smtp::MakeReply(
      421, {4, 4, 2},
      env_.config->server.hostname + " Error: timeout exceeded"));
}

void SessionMachine::OnEof() {
  if (!std::holds_alternative<Closed>(state_)) {
    log::Info("lost connection after {} from unknown[{}]", StateName(),
              client_.address);
  }
  Enter(Closed{});
  action_ = Action::kClose;
}

void SessionMachine::OnShutdown() {
  shutting_down_ = true;
  if (InData() || std::holds_alternative<Committing>(state_) ||
      std::holds_alternative<Closed>(state_)) {
    return;  // finish the message; the next command gets 421
  }
  CloseWith(smtp::MakeReply(
      421, {4, 3, 2}, env_.config->server.hostname + " Service shutting down"));
}

}  // namespace petrel::server
