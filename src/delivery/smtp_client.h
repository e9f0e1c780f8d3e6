// The SMTP client's I/O: one TCP connection to one next-hop host, driven by
// the pure ClientMachine (client_machine.h), which holds every protocol
// decision; outcome.h holds every classification.
//
// Open() connects (connect_timeout), reads the greeting and does EHLO/HELO,
// STARTTLS when the peer offers it and options.tls_policy is not kNone, and
// AUTH when options.credentials are set (client_machine.h): the handshake
// (starttls_timeout) sends SNI and checks the certificate against target.host,
// and one line is logged per TLS connection, Postfix style: "Untrusted TLS
// connection established to mx[ip]:25: TLSv1.3 with cipher
// TLS_AES_256_GCM_SHA384 (256/256 bits)" (Verified: trusted chain naming the
// host; Trusted: trusted chain only; Untrusted: neither; "may" and "encrypt"
// deliver over all three, "verify" only over Verified: anything else ends the
// connection before a command is sent inside TLS, deferred 4.7.5). Under "may"
// a failed handshake is logged and the same host is connected to again at once,
// in plaintext without STARTTLS (once); under encrypt/verify it defers (4.7.4)
// and the next MX host is tried. Without a usable CA store STARTTLS is not
// tried (logged). On failure it returns what to apply: a deferred Outcome
// ("x-petrel; connect to mx[ip]:25: Connection refused", or the 421/4xx/5xx
// greeting) and whether to try the next MX host (always, for these: Postfix
// tries the next host after a connection failure, a 4xx or 5xx greeting).
//
// Deliver() sends one message, in as many transactions as it needs; each
// recipient gets exactly one Outcome through `done`, called once per
// transaction with that transaction's recipients (and once more with the
// rest deferred if the connection fails). The client co_awaits `done` before
// it writes anything else: persist the outcomes there, and a crash can never
// send a delivered recipient again. An exception from `done` propagates out
// of Deliver() and leaves the connection unusable.
//
// Logging: one line per recipient outcome, Postfix style, written here just
// before `done`: "ID: to=<rcpt>, relay=host[ip]:port, conn_use=N,
// delay=S, dsn=X.Y.Z, status=sent|deferred|bounced (text)". delay= is
// seconds since ClientMessage::arrival_unix (omitted when 0); conn_use= is
// the message's number on this connection (omitted for the first). Open()
// logs a connection failure; LogOutcome() is there for the caller's own
// outcomes (e.g. the Open failure applied to each recipient).
//
// Stream: plain TCP, then TLS after STARTTLS. Reads and writes go through
// one small Stream interface, so the loop is the same before and after.
// Errors never escape as exceptions: every I/O result is data. The TLS
// connection is closed without a close_notify (SMTP ends at QUIT's reply).
// Thread safety: one coroutine at a time per connection, on `ex`.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <tl/expected.hpp>

#include "delivery/client_machine.h"
#include "delivery/outcome.h"

namespace petrel::delivery {

struct SmtpTarget {
  std::string host;     // name for logs and remote_mta (the MX name)
  std::string address;  // IP literal to connect to (v4 or v6)
  std::uint16_t port = 25;
  // "mx.example.net[192.0.2.1]:25"
  std::string RemoteMta() const;
};

struct ConnectFailure {
  Outcome outcome;  // deferred
  bool try_next_host = true;
};

// Called after each transaction with its outcomes; must persist them.
using TransactionDone = std::function<boost::asio::awaitable<void>(Outcomes)>;

class SmtpConnection {
 public:
  // `target` and `options` must stay alive until the call completes
  // (co_await it at once).
  static boost::asio::awaitable<
      tl::expected<std::unique_ptr<SmtpConnection>, ConnectFailure>>
  Open(boost::asio::any_io_executor ex, const SmtpTarget& target,
       const ClientOptions& options);

  ~SmtpConnection();
  SmtpConnection(const SmtpConnection&) = delete;
  SmtpConnection& operator=(const SmtpConnection&) = delete;

  // REQUIRES: no other call in progress. `message` and `done` must stay
  // alive until it completes. On a connection that is not usable() every
  // recipient is deferred (4.4.2) through `done`.
  boost::asio::awaitable<void> Deliver(const ClientMessage& message,
                                       const TransactionDone& done);
  // Can take another message.
  bool usable() const;
  // QUIT (quit_timeout), then close. Never throws.
  boost::asio::awaitable<void> Quit();

  const SmtpTarget& target() const { return target_; }
  const smtp::EhloExtensions& extensions() const;
  bool esmtp() const;
  // Messages given to Deliver() so far.
  std::size_t messages() const { return messages_; }
  // TLS is on; the line logged when it started ("" without TLS).
  bool tls_active() const;
  const std::string& tls_summary() const { return tls_summary_; }

  struct Io;

 private:
  SmtpConnection(boost::asio::any_io_executor ex, SmtpTarget target,
                 const ClientOptions& options);
  // One connection attempt; `tls_failed` (may be null) is set when it
  // ended in a failed TLS handshake.
  static boost::asio::awaitable<
      tl::expected<std::unique_ptr<SmtpConnection>, ConnectFailure>>
  OpenOnce(boost::asio::any_io_executor ex, const SmtpTarget& target,
           const ClientOptions& options, bool* tls_failed);
  boost::asio::awaitable<void> Run(const ClientMessage* message,
                                   const TransactionDone* done);
  boost::asio::awaitable<void> StartTls();
  void Close();

  SmtpTarget target_;
  std::string remote_mta_;
  std::shared_ptr<Io> io_;
  ClientMachine machine_;
  TlsPolicy tls_policy_;
  std::string tls_ca_file_;
  std::size_t messages_ = 0;
  std::string tls_summary_;
};

// The Postfix-style line for one recipient's outcome (see above).
// `conn_use` 0 or 1: not logged.
void LogOutcome(std::string_view queue_id, std::string_view recipient,
                const Outcome& outcome, std::int64_t arrival_unix,
                std::size_t conn_use = 0);

}  // namespace petrel::delivery
