#include "delivery/smtp_client.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <ctime>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/log.h"
#include "smtp/reply.h"
#include "tls/tls.h"

namespace petrel::delivery {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;
constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kReadOctets = 16 * 1024;

// The bytes under the machine: plain TCP, and after STARTTLS a TLS stream
// over the same socket, swapped in once the handshake is done. Errors are
// returned, never thrown.
class Stream {
 public:
  virtual ~Stream() = default;
  virtual asio::awaitable<std::pair<error_code, std::size_t>> ReadSome(
      asio::mutable_buffer buffer) = 0;
  virtual asio::awaitable<error_code> Write(asio::const_buffer buffer) = 0;
};

class TcpStream final : public Stream {
 public:
  explicit TcpStream(tcp::socket& socket) : socket_(socket) {}

  asio::awaitable<std::pair<error_code, std::size_t>> ReadSome(
      asio::mutable_buffer buffer) override {
    error_code ec;
    std::size_t n = 0;
    std::tie(ec, n) = co_await socket_.async_read_some(buffer, kUseTuple);
    co_return std::make_pair(ec, n);
  }

  asio::awaitable<error_code> Write(asio::const_buffer buffer) override {
    error_code ec;
    std::size_t n = 0;
    std::tie(ec, n) = co_await asio::async_write(socket_, buffer, kUseTuple);
    co_return ec;
  }

 private:
  tcp::socket& socket_;
};

class TlsStream final : public Stream {
 public:
  explicit TlsStream(std::unique_ptr<tls::ClientStream> tls)
      : tls_(std::move(tls)) {}

  asio::awaitable<std::pair<error_code, std::size_t>> ReadSome(
      asio::mutable_buffer buffer) override {
    return tls_->ReadSome(buffer);
  }

  asio::awaitable<error_code> Write(asio::const_buffer buffer) override {
    return tls_->Write(buffer);
  }

 private:
  std::unique_ptr<tls::ClientStream> tls_;
};

}  // namespace

// The socket and its deadline, shared with the timer's handler so that a
// late timer never touches a closed connection.
struct SmtpConnection::Io {
  explicit Io(const asio::any_io_executor& ex) : socket(ex), timer(ex) {}
  tcp::socket socket;
  asio::steady_timer timer;
  std::unique_ptr<Stream> stream;
  bool tls = false;
  std::vector<char> buffer;
  bool timed_out = false;
  // Which deadline is current: a timer that fired just before it was
  // cancelled must not cancel the next operation.
  std::uint64_t deadline = 0;
};

namespace {

void ArmDeadline(const std::shared_ptr<SmtpConnection::Io>& io,
                 std::chrono::seconds limit) {
  io->timed_out = false;
  const std::uint64_t deadline = ++io->deadline;
  io->timer.expires_after(limit);
  io->timer.async_wait([io, deadline](error_code ec) {
    if (!ec && deadline == io->deadline) {
      io->timed_out = true;
      error_code ignored;
      io->socket.cancel(ignored);
    }
  });
}

}  // namespace

std::string SmtpTarget::RemoteMta() const {
  return fmt::format("{}[{}]:{}", host.empty() ? address : host, address, port);
}

void LogOutcome(std::string_view queue_id, std::string_view recipient,
                const Outcome& outcome, std::int64_t arrival_unix,
                std::size_t conn_use) {
  std::string line = fmt::format(
      "{}: to=<{}>, relay={}", queue_id, smtp::SanitizeText(recipient),
      outcome.remote_mta.empty() ? "none" : outcome.remote_mta);
  if (conn_use > 1) line += fmt::format(", conn_use={}", conn_use);
  if (arrival_unix > 0) {
    const std::int64_t now = static_cast<std::int64_t>(std::time(nullptr));
    line += fmt::format(", delay={}",
                        std::max<std::int64_t>(0, now - arrival_unix));
  }
  line += fmt::format(", dsn={}, status={} ({})", outcome.status.ToString(),
                      VerdictName(outcome.verdict), outcome.detail);
  log::Write(log::Level::kInfo, line);
}

SmtpConnection::SmtpConnection(asio::any_io_executor ex, SmtpTarget target,
                               const ClientOptions& options)
    : target_(std::move(target)),
      remote_mta_(target_.RemoteMta()),
      io_(std::make_shared<Io>(ex)),
      machine_(options, remote_mta_),
      tls_policy_(options.tls_policy),
      tls_ca_file_(options.tls_ca_file) {
  io_->buffer.resize(kReadOctets);
}

SmtpConnection::~SmtpConnection() { Close(); }

void SmtpConnection::Close() {
  error_code ignored;
  io_->timer.cancel();
  if (io_->socket.is_open()) {
    io_->socket.shutdown(tcp::socket::shutdown_both, ignored);
    io_->socket.close(ignored);
  }
}

bool SmtpConnection::usable() const {
  return machine_.ready() && machine_.action() == ClientMachine::Action::kIdle;
}

const smtp::EhloExtensions& SmtpConnection::extensions() const {
  return machine_.extensions();
}

bool SmtpConnection::esmtp() const { return machine_.esmtp(); }

bool SmtpConnection::tls_active() const { return io_->tls; }

asio::awaitable<tl::expected<std::unique_ptr<SmtpConnection>, ConnectFailure>>
SmtpConnection::Open(asio::any_io_executor ex, const SmtpTarget& target,
                     const ClientOptions& options) {
  using Result = tl::expected<std::unique_ptr<SmtpConnection>, ConnectFailure>;
  ClientOptions effective = options;
  if (effective.tls_policy == TlsPolicy::kMay) {
    const auto context = tls::ClientContext::Shared(effective.tls_ca_file);
    if (!context) {
      log::Warning("{}: TLS is not available ({}); not using STARTTLS",
                   target.RemoteMta(), context.error().message());
      effective.tls_policy = TlsPolicy::kNone;
    }
  }
  bool tls_failed = false;
  asio::awaitable<Result> first_try =
      OpenOnce(ex, target, effective, &tls_failed);
  Result first = co_await std::move(first_try);
  // encrypt and verify never fall back: the failure defers (4.7.x).
  if (first || !tls_failed || effective.tls_policy != TlsPolicy::kMay) {
    if (!first && tls_failed) log::Info("{}", first.error().outcome.detail);
    co_return std::move(first);
  }
  // Issue 4, policy "may": a failed handshake retries the same host at
  // once in plaintext (Postfix does the same for "may"). Once: the retry
  // never tries STARTTLS.
  log::Info("{}; retrying in plaintext", first.error().outcome.detail);
  effective.tls_policy = TlsPolicy::kNone;
  asio::awaitable<Result> second_try = OpenOnce(ex, target, effective, nullptr);
  Result second = co_await std::move(second_try);
  co_return std::move(second);
}

asio::awaitable<tl::expected<std::unique_ptr<SmtpConnection>, ConnectFailure>>
SmtpConnection::OpenOnce(asio::any_io_executor ex, const SmtpTarget& target,
                         const ClientOptions& options, bool* tls_failed) {
  using Result = tl::expected<std::unique_ptr<SmtpConnection>, ConnectFailure>;
  std::unique_ptr<SmtpConnection> conn(new SmtpConnection(ex, target, options));
  const std::string remote = conn->remote_mta_;
  const std::shared_ptr<Io> io = conn->io_;

  error_code ec;
  const asio::ip::address address = asio::ip::make_address(target.address, ec);
  if (!ec) {
    ArmDeadline(io, options.connect_timeout);
    const tcp::endpoint endpoint(address, target.port);
    std::tie(ec) = co_await io->socket.async_connect(endpoint, kUseTuple);
    io->timer.cancel();
  }
  if (ec) {
    const std::string why =
        io->timed_out ? std::string("Connection timed out") : ec.message();
    Outcome outcome = TroubleOutcome(
        Trouble::kConnectFailed, "connect to " + remote + ": " + why, remote);
    log::Info("connect to {}: {}", remote, why);
    conn->Close();
    Result failed = tl::unexpected(ConnectFailure{std::move(outcome), true});
    co_return std::move(failed);
  }
  error_code ignored;
  io->socket.set_option(tcp::no_delay(true), ignored);
  io->stream = std::make_unique<TcpStream>(io->socket);

  co_await conn->Run(nullptr, nullptr);  // greeting, EHLO/HELO, STARTTLS
  if (!conn->machine_.ready()) {
    Outcome outcome = conn->machine_.setup_failure().value_or(TroubleOutcome(
        Trouble::kLostConnection, "lost connection with " + remote, remote));
    if (conn->machine_.tls_failed() && tls_failed != nullptr) {
      *tls_failed = true;  // Open() logs it with the retry
    } else {
      log::Info("{}", outcome.detail);
    }
    conn->Close();
    Result failed = tl::unexpected(ConnectFailure{std::move(outcome), true});
    co_return std::move(failed);
  }
  Result opened(std::move(conn));
  co_return std::move(opened);
}

asio::awaitable<void> SmtpConnection::Deliver(const ClientMessage& message,
                                              const TransactionDone& done) {
  ++messages_;
  if (!machine_.ready() || machine_.action() != ClientMachine::Action::kIdle) {
    // Closed, or left mid-message by an exception: nothing can be sent.
    Outcomes outcomes;
    const Outcome unusable = TroubleOutcome(
        Trouble::kConnectionUnusable,
        "connection with " + remote_mta_ + " is not usable", remote_mta_);
    for (const ClientRecipient& r : message.recipients) {
      LogOutcome(message.id, r.address, unusable, message.arrival_unix);
      outcomes.emplace_back(r.index, unusable);
    }
    if (!outcomes.empty() && done) {
      asio::awaitable<void> saving = done(std::move(outcomes));
      co_await std::move(saving);
    }
    co_return;
  }
  machine_.StartMessage(message);
  co_await Run(&message, &done);
}

asio::awaitable<void> SmtpConnection::Quit() {
  try {
    if (machine_.ready() && machine_.action() == ClientMachine::Action::kIdle) {
      machine_.StartQuit();
      co_await Run(nullptr, nullptr);
    }
  } catch (...) {
    // Nothing depends on QUIT; the connection is closed below either way.
  }
  Close();
}

// Does what the machine asks until it is idle or closed. The one landing
// site for I/O failure: every error, EOF and timeout goes to
// OnConnectionLost(), which decides what it means.
asio::awaitable<void> SmtpConnection::Run(const ClientMessage* message,
                                          const TransactionDone* done) {
  std::unordered_map<std::size_t, const ClientRecipient*> by_index;
  if (message != nullptr) {
    for (const ClientRecipient& r : message->recipients) by_index[r.index] = &r;
  }
  for (;;) {
    switch (machine_.action()) {
      case ClientMachine::Action::kWrite: {
        const std::chrono::seconds limit = machine_.timeout();
        const std::string out = machine_.TakeOutput();
        if (out.empty()) break;
        if (message != nullptr && message->before_end_of_data) {
          if (auto eod = machine_.TakeEndOfDataRecipients(); !eod.empty()) {
            message->before_end_of_data(eod);
          }
        }
        ArmDeadline(io_, limit);
        const error_code ec = co_await io_->stream->Write(asio::buffer(out));
        io_->timer.cancel();
        if (ec) {
          machine_.OnConnectionLost(io_->timed_out
                                        ? ClientMachine::Loss::kTimeout
                                        : ClientMachine::Loss::kError,
                                    ec.message());
        }
        break;
      }
      case ClientMachine::Action::kRead: {
        ArmDeadline(io_, machine_.timeout());
        error_code ec;
        std::size_t n = 0;
        std::tie(ec, n) =
            co_await io_->stream->ReadSome(asio::buffer(io_->buffer));
        io_->timer.cancel();
        if (ec) {
          ClientMachine::Loss loss = ClientMachine::Loss::kError;
          if (io_->timed_out) {
            loss = ClientMachine::Loss::kTimeout;
          } else if (ec == asio::error::eof) {
            loss = ClientMachine::Loss::kEof;
          }
          machine_.OnConnectionLost(loss, ec.message());
          break;
        }
        machine_.Feed(std::string_view(io_->buffer.data(), n));
        break;
      }
      case ClientMachine::Action::kSaveOutcomes: {
        Outcomes outcomes = machine_.TakeOutcomes();
        if (message != nullptr) {
          log::Batch batch;  // one write for the transaction's lines
          for (const auto& [index, outcome] : outcomes) {
            auto it = by_index.find(index);
            LogOutcome(
                message->id,
                it == by_index.end() ? std::string_view() : it->second->address,
                outcome, message->arrival_unix, messages_);
          }
        }
        if (done != nullptr && *done) {
          // A named awaitable: no temporary inside the co_await (GCC 12).
          asio::awaitable<void> saving = (*done)(std::move(outcomes));
          co_await std::move(saving);
        }
        machine_.OnOutcomesSaved();
        break;
      }
      case ClientMachine::Action::kStartTls:
        co_await StartTls();
        break;
      case ClientMachine::Action::kIdle:
        co_return;
      case ClientMachine::Action::kClosed:
        Close();
        co_return;
    }
  }
}

// The handshake the machine asked for; its result goes back to the machine.
asio::awaitable<void> SmtpConnection::StartTls() {
  const auto context = tls::ClientContext::Shared(tls_ca_file_);
  if (!context) {  // under encrypt/verify: defer, never plaintext
    machine_.OnTlsFailed(context.error().message());
    co_return;
  }
  auto stream =
      std::make_unique<tls::ClientStream>(*context, io_->socket, target_.host);
  ArmDeadline(io_, machine_.timeout());
  const error_code ec = co_await stream->Handshake();
  io_->timer.cancel();
  if (ec) {
    const std::string why =
        io_->timed_out ? std::string("handshake timed out") : ec.message();
    machine_.OnTlsFailed(why);
    co_return;
  }
  // Postfix's words: Verified (the chain is trusted and names the host),
  // Trusted (the chain only), Untrusted.
  const char* trust = stream->Verified()  ? "Verified"
                      : stream->Trusted() ? "Trusted"
                                          : "Untrusted";
  tls_summary_ = fmt::format(
      "{} TLS connection established to {}: {} with cipher {} ({}/{} bits)",
      trust, remote_mta_, stream->Version(), stream->Cipher(),
      stream->CipherBits(), stream->CipherAlgorithmBits());
  log::Info("{}", tls_summary_);
  if (!stream->Verified()) {
    log::Debug("{}: certificate not verified: {}", remote_mta_,
               stream->VerifyError());
    if (tls_policy_ == TlsPolicy::kVerify) {
      // Nothing more is said on this connection, inside TLS or out.
      machine_.OnTlsFailed(stream->VerifyError(), /*not_verified=*/true);
      co_return;
    }
  }
  io_->stream = std::make_unique<TlsStream>(std::move(stream));
  io_->tls = true;
  machine_.OnTlsStarted();
}

}  // namespace petrel::delivery
