// The SMTP client's protocol machine, without I/O (Postfix smtp_proto.c,
// RFC 5321 with RFC 2920 PIPELINING, RFC 3030 CHUNKING, RFC 1870 SIZE,
// RFC 6152 8BITMIME, RFC 6531 SMTPUTF8, RFC 3461 DSN, RFC 9422 LIMITS).
//
// One ClientMachine is one connection to one peer: the greeting, EHLO (HELO
// if EHLO is refused with 5xx), then any number of messages, each in as
// many transactions as it needs, then QUIT. The driver (smtp_client.cc) asks
// action() what to do, and does it: write TakeOutput(), read and Feed() the
// bytes, persist TakeOutcomes() and call OnOutcomesSaved(), or stop. Every
// wait has the limit timeout() (a constexpr table of one limit per state,
// RFC 5321 4.5.3.2). A connection that ends, times out or fails lands in
// OnConnectionLost(): one place for I/O failure.
//
// Commands awaiting replies are kept in a FIFO. With PIPELINING the machine
// writes MAIL, every RCPT of the transaction and DATA at once and reads the
// replies in order; without it, one command at a time. Replies are read with
// smtp::ReplyParser only, so any split and any pause between lines is fine
// (seed 002). Replies are classified by outcome.h, never here.
//
// Recipients per transaction: at most max_recipients_per_transaction and the
// peer's LIMITS RCPTMAX. When the peer says "too many recipients" (452, X.5.3,
// 552/522 after an accepted one: seeds 000, 001), the machine stops adding
// recipients, sends the data to those accepted, and tries the rest in a new
// transaction on the same connection. A transaction that settles nobody
// (the first RCPT refused as too many) defers everything left instead, so
// there is no loop. Exactly once: the outcomes of a transaction are handed
// out (action kSaveOutcomes) before anything else is written, and every
// recipient of a message gets exactly one Outcome.
//
// The dangerous state is kSentEndOfData ("sending end of data -- message may
// be sent more than once"): a lost connection or an unreadable reply there
// defers the accepted recipients with possible_duplicate set (RFC 1047).
//
// Content: DATA with dot-stuffing and CRLF line ends (a bare CR or LF becomes
// CRLF; a last line without one gets CRLF), or, when the peer offers
// CHUNKING, BDAT chunks of the same normalised text without dot-stuffing.
//
// STARTTLS (RFC 3207), policies as Postfix's smtp_tls_security_level: under
// "may" (opportunistic, RFC 7435), "encrypt" and "verify", when the EHLO
// reply offers STARTTLS and TLS is not yet on, the machine sends STARTTLS.
// Under encrypt/verify, a peer that does not offer it, refuses it, or fails
// the handshake is given up with 4.7.4 (the driver tries the next MX host):
// nothing is sent in plaintext. On 2xx it asks the driver for
// the handshake (action kStartTls); anything the peer sent after that reply
// is discarded, never read as replies (the response is read exactly:
// plaintext injected before the handshake, CVE-2011-0411 on the client
// side). After OnTlsStarted() it forgets the extensions and sends EHLO
// again (RFC 3207 4.2), and never STARTTLS twice. A refusal (not 421)
// leaves the session in plaintext with the first EHLO's extensions. A
// failed handshake (OnTlsFailed()) ends the connection with tls_failed()
// set: the driver retries the same host at once without STARTTLS.
//
// Untrusted input: the peer's replies (bounded by the parser's caps). Not
// thread-safe; one driver coroutine at a time.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.h"
#include "delivery/outcome.h"
#include "smtp/ehlo.h"
#include "smtp/reply_parser.h"

namespace petrel::delivery {

// Postfix smtp_tls_security_level (config.h): none, may, encrypt (TLS
// required, 4.7.4 deferred without it; any certificate), verify (TLS with a
// certificate valid for the MX host name, checked by the driver:
// OnTlsFailed(..., not_verified)).
using config::TlsPolicy;

// AUTH towards a smarthost (RFC 4954, PLAIN or LOGIN), only inside TLS.
struct ClientCredentials {
  std::string user;
  std::string password;  // never logged
};

struct ClientOptions {
  // Our name in EHLO/HELO.
  std::string helo_name = "localhost";
  // TCP connect (the driver's; Postfix smtp_connect_timeout).
  std::chrono::seconds connect_timeout{30};
  // RFC 5321 4.5.3.2.1: the 220 greeting, 5 minutes.
  std::chrono::seconds greeting_timeout{300};
  // The EHLO/HELO reply (Postfix smtp_helo_timeout); also the STARTTLS
  // reply.
  std::chrono::seconds helo_timeout{300};
  // The TLS handshake (Postfix smtp_starttls_timeout).
  std::chrono::seconds starttls_timeout{300};
  // When to STARTTLS (see above). The driver sets kNone for the plaintext
  // retry after a failed handshake.
  TlsPolicy tls_policy = TlsPolicy::kMay;
  // With credentials: AUTH after the EHLO inside TLS; without TLS the
  // connection is given up (4.7.0), never a password in plaintext. A peer
  // that does not offer AUTH gets the mail unauthenticated (logged).
  std::optional<ClientCredentials> credentials;
  // CA file (PEM) for certificate checks; "": the system store.
  std::string tls_ca_file;
  // RFC 5321 4.5.3.2.2-4: MAIL 5 min, RCPT 5 min, DATA initiation 2 min.
  std::chrono::seconds mail_timeout{300};
  std::chrono::seconds rcpt_timeout{300};
  std::chrono::seconds data_init_timeout{120};
  // RFC 5321 4.5.3.2.5: each write of content (and each BDAT chunk's
  // reply), 3 minutes.
  std::chrono::seconds data_block_timeout{180};
  // RFC 5321 4.5.3.2.6: the reply to the end of data, 10 minutes.
  std::chrono::seconds data_end_timeout{600};
  // RSET (Postfix smtp_rset_timeout) and QUIT (smtp_quit_timeout).
  std::chrono::seconds rset_timeout{20};
  std::chrono::seconds quit_timeout{300};
  // RFC 5321 4.5.3.1.8: a server takes at least 100; 0 counts as 1.
  std::uint32_t max_recipients_per_transaction = 100;
  // Octets of content per BDAT chunk (before line-end normalisation).
  std::size_t bdat_chunk_octets = 1024 * 1024;
};

struct ClientRecipient {
  std::size_t index = 0;      // the caller's, echoed in Outcomes
  std::string address;        // forward path without <>, "" never
  std::uint8_t notify = 0;    // smtp::NotifyFlags
  std::string orcpt_type;     // "rfc822"; empty: rfc822
  std::string orcpt_address;  // decoded; empty: no ORCPT
};

struct ClientMessage {
  std::string id;      // queue ID, for logs
  std::string sender;  // reverse path without <>; "" is the null sender
  bool smtputf8 = false;
  bool eight_bit_mime = false;
  std::uint8_t dsn_ret = 0;       // smtp::DsnRet
  std::string dsn_envid;          // decoded; "" none
  std::int64_t arrival_unix = 0;  // for delay= in the log; 0: not logged
  std::shared_ptr<const std::string> content;  // CRLF text; never null
  // Called (on the I/O thread, so it must be quick) with the caller's
  // indexes of the recipients accepted in a transaction just before its end
  // of data is written: from then on they may be delivered twice if the
  // reply is lost (RFC 1047). Optional.
  std::function<void(const std::vector<std::size_t>&)> before_end_of_data;
  std::vector<ClientRecipient> recipients;
};

// (caller's recipient index, its outcome).
using Outcomes = std::vector<std::pair<std::size_t, Outcome>>;

enum class ClientState : std::uint8_t {
  kGreeting,        // awaiting the 220
  kEhlo,            // awaiting the EHLO reply
  kHelo,            // awaiting the HELO reply
  kStartTls,        // awaiting the STARTTLS reply
  kTlsHandshake,    // the driver is doing the TLS handshake
  kAuth,            // awaiting a reply to AUTH (or to a SASL response)
  kReady,           // between messages or transactions: nothing in flight
  kRset,            // awaiting the RSET reply
  kMail,            // awaiting the MAIL reply (first of a pipelined group)
  kRcpt,            // awaiting RCPT replies
  kData,            // awaiting the DATA reply (354)
  kSendingData,     // writing content, or awaiting a BDAT chunk's reply
  kSentEndOfData,   // "." or BDAT LAST sent: DANGER, may be sent twice
  kSavingOutcomes,  // outcomes handed out, not yet stored by the caller
  kQuit,            // awaiting the QUIT reply
  kClosed,          // no more I/O
};

struct ClientStateInfo {
  ClientState state;
  std::string_view name;   // for the trace
  std::string_view doing;  // "while ..." in diagnostics (Postfix's words)
  // The limit on each wait in this state; nullptr: the machine never waits
  // for the peer in this state.
  std::chrono::seconds ClientOptions::*timeout;
  // A lost connection here may leave a delivered message undone for us.
  bool may_duplicate;
};

inline constexpr std::array<ClientStateInfo, 16> kClientStates{{
    {ClientState::kGreeting, "greeting",
     "receiving the initial server greeting", &ClientOptions::greeting_timeout,
     false},
    {ClientState::kEhlo, "ehlo", "performing the EHLO handshake",
     &ClientOptions::helo_timeout, false},
    {ClientState::kHelo, "helo", "performing the HELO handshake",
     &ClientOptions::helo_timeout, false},
    {ClientState::kStartTls, "starttls", "sending STARTTLS",
     &ClientOptions::helo_timeout, false},
    {ClientState::kTlsHandshake, "tls-handshake",
     "performing the TLS handshake", &ClientOptions::starttls_timeout, false},
    {ClientState::kAuth, "auth", "performing the AUTH handshake",
     &ClientOptions::helo_timeout, false},
    {ClientState::kReady, "ready", "idle", nullptr, false},
    {ClientState::kRset, "rset", "sending RSET", &ClientOptions::rset_timeout,
     false},
    {ClientState::kMail, "mail", "sending MAIL FROM",
     &ClientOptions::mail_timeout, false},
    {ClientState::kRcpt, "rcpt", "sending RCPT TO",
     &ClientOptions::rcpt_timeout, false},
    {ClientState::kData, "data", "sending DATA command",
     &ClientOptions::data_init_timeout, false},
    {ClientState::kSendingData, "sending-data", "sending message body",
     &ClientOptions::data_block_timeout, false},
    {ClientState::kSentEndOfData, "sent-end-of-data", "sending end of data",
     &ClientOptions::data_end_timeout, true},
    {ClientState::kSavingOutcomes, "saving-outcomes", "storing outcomes",
     nullptr, false},
    {ClientState::kQuit, "quit", "sending QUIT", &ClientOptions::quit_timeout,
     false},
    {ClientState::kClosed, "closed", "closed", nullptr, false},
}};

// The table is indexed by the enum.
static_assert([] {
  for (std::size_t i = 0; i < kClientStates.size(); ++i) {
    if (static_cast<std::size_t>(kClientStates[i].state) != i) return false;
  }
  return true;
}());

constexpr const ClientStateInfo& StateInfo(ClientState state) {
  return kClientStates[static_cast<std::size_t>(state)];
}

// Message content to the wire: CRLF line ends, and with `dot_stuff` the
// RFC 5321 4.5.2 transparency dot and the terminating ".". Takes the
// content in any pieces.
class DataEncoder {
 public:
  explicit DataEncoder(bool dot_stuff) : dot_stuff_(dot_stuff) {}
  void Encode(std::string_view in, std::string& out);
  // Ends an unterminated last line with CRLF; with dot_stuff adds ".\r\n".
  void Finish(std::string& out);

 private:
  bool dot_stuff_;
  bool line_start_ = true;
  bool pending_cr_ = false;  // a CR at the end of the last piece
};

class ClientMachine {
 public:
  enum class Action {
    kWrite,         // write TakeOutput() (limit timeout())
    kRead,          // read some bytes (limit timeout()), then Feed() them
    kSaveOutcomes,  // store TakeOutcomes(), then OnOutcomesSaved()
    kStartTls,      // TLS handshake (limit timeout()), then OnTlsStarted()
                    // or OnTlsFailed(); read nothing before it
    kIdle,          // nothing to do: ready for StartMessage() or StartQuit()
    kClosed,        // close the connection
  };
  enum class Loss { kEof, kTimeout, kError };

  // Starts awaiting the greeting. `remote_mta` ("mx[ip]:port") names the
  // peer in outcomes and logs.
  ClientMachine(ClientOptions options, std::string remote_mta);

  Action action() const;
  ClientState state() const { return state_; }
  // The limit for the wait action() asks for.
  std::chrono::seconds timeout() const;

  std::string TakeOutput();
  // Once per transaction, after its end of data was queued for writing:
  // the caller indexes of its accepted recipients (else empty).
  std::vector<std::size_t> TakeEndOfDataRecipients();
  void Feed(std::string_view bytes);
  // EOF, a timeout or an I/O error (`error` says which, for the detail).
  void OnConnectionLost(Loss loss, std::string_view error = {});
  // REQUIRES: action() == kStartTls. The handshake is done: EHLO again.
  void OnTlsStarted();
  // REQUIRES: action() == kStartTls. The handshake failed (or timed out),
  // or under kVerify the certificate is not valid for the host
  // (`not_verified`): the connection ends, setup_failure() says why,
  // tls_failed() is set.
  void OnTlsFailed(std::string_view error, bool not_verified = false);
  // TLS is on (OnTlsStarted() was called).
  bool tls_active() const { return tls_active_; }
  // The handshake failed: under "may", retry the host in plaintext.
  bool tls_failed() const { return tls_failed_; }
  // Octets the peer sent after the STARTTLS reply, before the handshake,
  // that were discarded.
  std::size_t discarded_after_starttls() const {
    return discarded_after_starttls_;
  }

  // Greeting and EHLO/HELO done and the connection still usable.
  bool ready() const { return ready_ && !closed_; }
  // Set when the connection ended before it was ready: the outcome to
  // apply (deferred), e.g. the 421 greeting or "lost connection with ...".
  const std::optional<Outcome>& setup_failure() const { return setup_failure_; }
  bool esmtp() const { return esmtp_; }
  const smtp::EhloExtensions& extensions() const { return extensions_; }
  const std::string& remote_mta() const { return remote_mta_; }

  // REQUIRES: action() == kIdle; `message` outlives the delivery (until
  // action() is kIdle or kClosed again). On a connection that is not
  // ready(), every recipient is deferred.
  void StartMessage(const ClientMessage& message);
  // REQUIRES: action() == kSaveOutcomes.
  Outcomes TakeOutcomes();
  void OnOutcomesSaved();
  // REQUIRES: action() == kIdle. Sends QUIT (or just closes if not ready).
  void StartQuit();

  // Transactions started (MAIL sent) on this connection.
  std::size_t transactions() const { return transactions_; }

 private:
  struct Pending {
    Stage stage;
    std::size_t position = 0;  // RCPT: the recipient's position in message_
    bool discard = false;      // a reply we only read to stay in step
  };
  struct Transaction {
    std::vector<std::size_t> batch;  // positions tried in this transaction
    std::size_t rcpt_sent = 0;
    std::size_t rcpt_replies = 0;
    std::vector<std::size_t> accepted;
    std::vector<std::size_t> returned;  // after "too many": try again later
    std::optional<smtp::Reply> too_many;
    std::size_t settled = 0;  // recipients settled in this transaction
    bool mail_refused = false;
    bool data_sent = false;      // the DATA command (not BDAT)
    bool ended = false;          // nothing more to send in it
    bool completed = false;      // the end of data had its reply
    bool end_queued = false;     // "." or BDAT LAST is in the output
    bool end_announced = false;  // TakeEndOfDataRecipients() returned it
    // Content being sent.
    bool bdat = false;
    std::size_t offset = 0;
    DataEncoder encoder{true};
  };

  void Enter(ClientState next);
  void SyncState();
  void Send(std::string line, Pending pending);
  void Pump();
  void OnReply(const Pending& pending, const smtp::Reply& reply);
  void OnTransactionReply(const Pending& pending, const smtp::Reply& reply,
                          const Classification& c);
  void OnRcptReply(const Pending& pending, const smtp::Reply& reply,
                   const Classification& c);
  void AfterRcptReplies();
  void StartContent();
  void ProduceContent();
  void FinishTransaction();
  void Continue();
  void StartTransaction();
  void SendRcpt(std::size_t position);
  void Settle(std::size_t position, Outcome outcome);
  void SettleAccepted(const Outcome& outcome);
  void SettleAll(const Outcome& outcome);
  void SiteFailure(const Outcome& for_accepted, const Outcome& for_others);
  void SiteFailureFromReply(Stage stage, const smtp::Reply& reply);
  // After EHLO/HELO (and STARTTLS if any): the TLS policy's demands, then
  // AUTH, then ready.
  void AfterHello();
  void OnAuthReply(const Pending& pending, const smtp::Reply& reply);
  std::string Doing() const;

  ClientOptions options_;
  std::string remote_mta_;
  ClientState state_ = ClientState::kGreeting;
  smtp::ReplyParser parser_;
  std::deque<Pending> fifo_;
  std::string output_;
  bool ready_ = false;
  bool closed_ = false;
  bool quitting_ = false;
  bool esmtp_ = false;
  bool starting_tls_ = false;  // STARTTLS accepted, handshake not done
  bool tls_active_ = false;
  bool tls_failed_ = false;
  std::size_t discarded_after_starttls_ = 0;
  smtp::EhloExtensions extensions_;
  std::optional<Outcome> setup_failure_;
  std::size_t transactions_ = 0;

  // The message being delivered.
  const ClientMessage* message_ = nullptr;
  std::vector<bool> settled_;     // by position in message_->recipients
  std::deque<std::size_t> pool_;  // positions not yet tried, in order
  Outcomes outcomes_;             // settled, not yet handed out
  bool saving_ = false;           // handed out, awaiting OnOutcomesSaved
  bool needs_rset_ = false;       // the last transaction was abandoned
  bool sending_content_ = false;
  std::optional<Transaction> txn_;
};

}  // namespace petrel::delivery
