// The SMTP server session as a pure state machine (RFC 5321 4.1, 4.3.2;
// RFC 1870 SIZE, RFC 2920 PIPELINING, RFC 3030 CHUNKING, RFC 3461 DSN,
// RFC 6531 SMTPUTF8, RFC 9422 LIMITS, RFC 4954 AUTH with RFC 4616 PLAIN
// and LOGIN).
//
// No I/O: the driver (session.cc, or a fuzzer with an in-memory spool) feeds
// received bytes in any split and carries out the one Action the machine asks
// for next: read more input (after writing TakeOutput()), append content to
// the spool, commit the message, drop it, or close. The machine holds its
// state as a std::variant of structs and changes it only in Enter(), which
// traces old -> new. A transaction's facts exist only while it does.
//
// Replies follow interface.md. Errors that are the client's fault count
// towards `max_errors`; past it the session ends with 421. Timeouts, EOF and
// shutdown land in OnTimeout()/OnEof()/OnShutdown(), the one place that picks
// the final reply.
//
// Untrusted input; memory bounded by the command-line limit, one spool chunk
// of content, and max_recipients. Not thread-safe: one driver at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/status.h"
#include "smtp/data_reader.h"
#include "smtp/header_scanner.h"
#include "smtp/line_reader.h"
#include "smtp/params.h"
#include "smtp/reply.h"
#include "spool/spool.h"

namespace petrel::config {
struct Config;
}

namespace petrel::server {

class RelayPolicy;

// Who is connected and what the listener allows.
struct ClientInfo {
  std::string address;  // "127.0.0.1", "::1"
  std::uint16_t port = 0;
  bool trusted = false;  // in [relay] trusted_networks
  // A submission or submissions listener: AUTH is required before MAIL.
  bool submission = false;
};

// What the machine needs from outside, fixed for the session.
struct SessionEnv {
  std::shared_ptr<const config::Config> config;
  std::shared_ptr<const RelayPolicy> relay;
  // RFC 5322 date-time for the Received: header; injectable for tests.
  std::function<std::string()> now_rfc5322;
  std::function<std::int64_t()> now_unix;
  std::function<std::string()> new_queue_id;
  // Free octets on the spool's file system, if known (MAIL refuses with
  // 452 4.3.1 below [spool] min_free_space + SIZE). Null: not checked.
  std::function<std::optional<std::uint64_t>()> spool_free_octets;
  bool tls_available = false;   // [tls] configured: STARTTLS offered
  bool auth_available = false;  // [auth] configured: AUTH offered under TLS
};

// What the driver found when it checked credentials (kAuthenticate).
enum class AuthResult {
  kOk,
  kFailed,    // wrong user or password, or a malformed exchange
  kBlocked,   // too many failures from this address: 421 and close
  kTempFail,  // the users file cannot be read: 454
};

class SessionMachine {
 public:
  enum class Action {
    kRead,          // write TakeOutput(), then read more and Feed() it
    kAppend,        // append TakeContent() to the message current_id()
    kCommit,        // append TakeContent() (if any), then commit envelope()
    kAbort,         // drop the message current_id(); then call OnAbortDone()
    kClose,         // write TakeOutput(), then close the connection
    kStartTls,      // write TakeOutput() in plaintext, DROP every byte received
                    // after the STARTTLS line (CVE-2011-0411), run the TLS
                    // handshake, then call OnTlsStarted() or OnTlsFailed()
    kAuthenticate,  // check auth_user()/auth_password() (slow: off the I/O
                    // thread; a failure after the anti-brute-force delay),
                    // then call OnAuthResult()
  };

  SessionMachine(SessionEnv env, ClientInfo client);
  ~SessionMachine();

  // Queues the greeting (or 421 if `refuse` is set, e.g. too many
  // connections, followed by kClose).
  void Start(std::optional<smtp::Reply> refuse = std::nullopt);
  // Implicit TLS (RFC 8314, a submissions listener): the handshake is done
  // before Start().
  void StartedWithTls(std::string description);

  // Consumes input until all of it is used or an action other than kRead is
  // pending; returns the number of bytes consumed.
  std::size_t Feed(std::string_view input);

  Action action() const { return action_; }
  std::string TakeOutput();
  std::string TakeContent();
  const std::string& current_id() const;
  const spool::Envelope& envelope() const { return envelope_; }
  // While kCommit is pending: whether the message came in BDAT chunks (else
  // DATA). For the session fuzzer's reference check.
  bool CommittingChunked() const;

  void OnAppendDone(const Status& status);
  void OnCommitDone(const Status& status);
  void OnAbortDone();
  // RFC 3207 4.2: the session starts over; `description` is e.g.
  // "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)".
  void OnTlsStarted(std::string description);
  void OnTlsFailed();
  // After kAuthenticate. `addresses`: the user's listed sender addresses.
  void OnAuthResult(AuthResult result, std::vector<std::string> addresses = {});
  const std::string& auth_user() const { return auth_request_user_; }
  const std::string& auth_password() const { return auth_request_password_; }
  // The authenticated user, "" if none.
  const std::string& authenticated_user() const { return auth_user_; }

  // The one landing site for the end of a session not asked for by QUIT.
  void OnTimeout();
  void OnEof();
  void OnShutdown();  // SIGTERM: 421 at the next command boundary

  // True while the next bytes are message data (for the driver's timeout).
  bool InData() const;
  // Counters for the disconnect log line, e.g. "ehlo=1 mail=1 rcpt=2".
  std::string CommandStats() const;

  // State names, for traces and tests.
  std::string_view StateName() const;

 private:
  struct Transaction;
  struct AwaitHelo {};
  struct Ready {};
  struct MailGiven {
    std::unique_ptr<Transaction> tx;
  };
  struct ReceivingData {
    std::unique_ptr<Transaction> tx;
    smtp::DataReader reader;
  };
  struct ReceivingChunk {
    std::unique_ptr<Transaction> tx;  // null: chunk is read and discarded
    std::uint64_t remaining = 0;
    bool last = false;
  };
  struct Committing {
    std::unique_ptr<Transaction> tx;
  };
  // AUTH (RFC 4954 4): lines are SASL responses, not commands.
  struct AuthExchange {
    bool login = false;      // LOGIN; else PLAIN
    bool have_user = false;  // LOGIN: the user name came
  };
  struct Authenticating {};  // the driver checks the credentials
  struct Closed {};
  using State =
      std::variant<AwaitHelo, Ready, MailGiven, ReceivingData, ReceivingChunk,
                   Committing, AuthExchange, Authenticating, Closed>;

  void Enter(State next);
  void Reply(const smtp::Reply& reply);
  void Reply(int code, smtp::EnhancedStatus status, std::string text);
  void ClientError(int code, smtp::EnhancedStatus status, std::string text);
  void ClientError(const smtp::Reply& reply);
  void CloseWith(const smtp::Reply& reply);

  std::size_t FeedCommands(std::string_view input);
  std::size_t FeedData(std::string_view input);
  std::size_t FeedChunk(std::string_view input);
  void HandleLine(std::string_view line, bool more_pending);
  void OnEhlo(std::string_view arg, bool extended);
  void OnMail(std::string_view arg);
  void OnRcpt(std::string_view arg);
  void OnData(bool more_input_pending);
  void OnBdat(std::string_view arg);
  void OnRset();
  void OnStartTls();
  void OnAuth(std::string_view arg);
  void OnAuthResponse(std::string_view line);
  void AuthenticateWith(std::string user, std::string password);
  std::string WithProtocol(bool smtputf8) const;
  void AddContent(std::string_view content);
  void FinishMessage();
  std::string ReceivedHeader(const Transaction& tx) const;
  void BuildEnvelope(Transaction& tx);
  std::unique_ptr<Transaction> TakeTransaction();
  bool MessageStarted() const;
  void Count(std::string_view command);

  SessionEnv env_;
  ClientInfo client_;
  State state_;
  Action action_ = Action::kRead;
  std::string output_;
  std::string content_;  // content not yet handed to the spool
  smtp::LineReader lines_;
  std::string helo_;
  bool esmtp_ = false;
  bool after_chunk_ = false;  // the next line is the first after a BDAT chunk
  int errors_ = 0;
  bool shutting_down_ = false;
  bool tls_active_ = false;
  std::string tls_description_;
  std::string auth_user_;  // "" until AUTH succeeds
  std::string auth_method_;
  std::vector<std::string> auth_addresses_;
  std::string auth_request_user_;
  std::string auth_request_password_;
  bool message_in_spool_ = false;  // some content was handed to the spool
  std::string id_;                 // queue ID of the current transaction
  spool::Envelope envelope_;
  std::vector<std::pair<std::string, int>> counts_;
};

}  // namespace petrel::server
