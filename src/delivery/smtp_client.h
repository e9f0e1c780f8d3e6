// The SMTP client's I/O: one TCP connection to one next-hop host, driven by
// the pure ClientMachine (client_machine.h), which holds every protocol
// decision; outcome.h holds every classification.
//
// Open() connects (connect_timeout), reads the greeting and does EHLO/HELO.
// On failure it returns what to apply: a deferred Outcome ("x-petrel;
// connect to mx[ip]:25: Connection refused", or the 421/4xx/5xx greeting)
// and whether to try the next MX host (always, for these: Postfix tries the
// next host after a connection failure, a 4xx or 5xx greeting).
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
// Stream: plain TCP. Reads and writes go through one small Stream interface
// so that a TLS stream (STARTTLS, issue 4) slots in without touching the
// loop. Errors never escape as exceptions: every I/O result is data.
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

  struct Io;

 private:
  SmtpConnection(boost::asio::any_io_executor ex, SmtpTarget target,
                 const ClientOptions& options);
  boost::asio::awaitable<void> Run(const ClientMessage* message,
                                   const TransactionDone* done);
  void Close();

  SmtpTarget target_;
  std::string remote_mta_;
  std::shared_ptr<Io> io_;
  ClientMachine machine_;
  std::size_t messages_ = 0;
};

// The Postfix-style line for one recipient's outcome (see above).
// `conn_use` 0 or 1: not logged.
void LogOutcome(std::string_view queue_id, std::string_view recipient,
                const Outcome& outcome, std::int64_t arrival_unix,
                std::size_t conn_use = 0);

}  // namespace petrel::delivery
