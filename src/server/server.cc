#include "server/server.h"

#include <sys/statvfs.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <ctime>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "asio/await_callback.h"
#include "asio/blocking.h"
#include "auth/guard.h"
#include "auth/users.h"
#include "base/date.h"
#include "base/log.h"
#include "base/queue_id.h"
#include "config/config.h"
#include "server/read_buffer.h"
#include "server/relay_policy.h"
#include "server/session_machine.h"
#include "spool/spool.h"
#include "tls/tls.h"

namespace petrel::server {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using Executor = asio::strand<asio::io_context::executor_type>;
constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);

// The socket and its deadline, shared with the timer's handler so that a
// late timer never touches a finished session.
struct SessionIo {
  explicit SessionIo(tcp::socket s)
      : socket(std::move(s)), timer(socket.get_executor()) {}
  tcp::socket socket;
  asio::steady_timer timer;
  // After STARTTLS: the TLS layer and its own read buffer (TLS may hold
  // decrypted bytes, so the shared-buffer trick of plain reads cannot apply).
  std::unique_ptr<tls::ServerStream> tls;
  std::vector<char> tls_buffer;
  // Plain-text commands are read here (see the read loop); message data
  // goes to the thread's large buffer.
  std::array<char, 512> command_buffer;
  // When the current wait must end (max: nothing is waiting). The timer is
  // lazy: armed when needed, moved only when a deadline comes earlier than
  // its expiry, never cancelled per command (cheap pipelined sessions).
  std::chrono::steady_clock::time_point deadline =
      std::chrono::steady_clock::time_point::max();
  std::uint64_t timer_generation = 0;
  bool timer_running = false;
  bool timed_out = false;
  bool shutdown = false;
  bool awaiting_command = false;  // a read for the next command is pending
};

void StartTimer(const std::shared_ptr<SessionIo>& io) {
  const std::uint64_t generation = ++io->timer_generation;
  io->timer_running = true;
  io->timer.expires_at(io->deadline);
  io->timer.async_wait([io, generation](boost::system::error_code ec) {
    if (generation != io->timer_generation) return;  // superseded
    io->timer_running = false;
    if (ec) return;  // the session is over
    if (io->deadline == std::chrono::steady_clock::time_point::max()) return;
    if (std::chrono::steady_clock::now() >= io->deadline) {
      io->timed_out = true;
      boost::system::error_code ignored;
      io->socket.cancel(ignored);
      return;
    }
    StartTimer(io);  // the deadline moved later meanwhile
  });
}

// The wait that starts now must end within `limit`.
void ArmDeadline(const std::shared_ptr<SessionIo>& io,
                 std::chrono::steady_clock::duration limit) {
  io->timed_out = false;
  io->deadline = std::chrono::steady_clock::now() + limit;
  if (!io->timer_running || io->deadline < io->timer.expiry()) StartTimer(io);
}

void ClearDeadline(const std::shared_ptr<SessionIo>& io) {
  io->deadline = std::chrono::steady_clock::time_point::max();
}

// A spool operation whose completion callback runs on the spool's thread,
// awaited on the session's strand (asio/await_callback.h).
using SpoolStart = std::function<void(spool::Callback)>;

// AUTH for the sessions: the users file and the per-address failure guard
// of one [auth] configuration.
struct AuthState {
  std::shared_ptr<auth::Authenticator> users;
  std::shared_ptr<auth::FailureGuard> guard;
  std::chrono::seconds failure_delay{0};
};

Result<std::shared_ptr<AuthState>> LoadAuth(const config::Config& config,
                                            const AuthState* previous) {
  if (!config.auth) return std::shared_ptr<AuthState>();
  const config::Auth& a = *config.auth;
  auto users = auth::Authenticator::Open(a.users);
  if (!users) return Error(users.error());
  auto state = std::make_shared<AuthState>();
  state->users = *users;
  state->failure_delay = a.failure_delay;
  // The failures counted so far survive a reload.
  state->guard =
      previous != nullptr
          ? previous->guard
          : std::make_shared<auth::FailureGuard>(
                static_cast<int>(a.max_failures_per_ip), a.failure_window,
                std::chrono::milliseconds(a.failure_delay));
  return state;
}

class ServerState : public std::enable_shared_from_this<ServerState> {
 public:
  ServerState(asio::io_context& io, std::shared_ptr<const config::Config> c,
              spool::Spool& spool, std::shared_ptr<tls::ServerContext> tls,
              std::shared_ptr<AuthState> auth, SmtpServer::OnQueued on_queued)
      : io_(io),
        config_(std::move(c)),
        tls_(std::move(tls)),
        auth_(std::move(auth)),
        spool_(spool),
        on_queued_(std::move(on_queued)) {
    relay_ = std::make_shared<RelayPolicy>(*config_);
  }

  // crypt(3) is slow on purpose: never on an I/O thread.
  BlockingPool& auth_pool() { return auth_pool_; }
  std::shared_ptr<AuthState> auth() {
    std::lock_guard lock(mu_);
    return auth_;
  }

  asio::io_context& io() { return io_; }
  spool::Spool& spool() { return spool_; }
  void Queued(const std::string& id) {
    if (on_queued_) on_queued_(id);
  }

  struct Snap {
    std::shared_ptr<const config::Config> config;
    std::shared_ptr<const RelayPolicy> relay;
    std::shared_ptr<tls::ServerContext> tls;
  };
  Snap Snapshot() {
    std::lock_guard lock(mu_);
    return {config_, relay_, tls_};
  }

  void Reload(std::shared_ptr<const config::Config> c,
              std::shared_ptr<tls::ServerContext> tls,
              std::shared_ptr<AuthState> auth) {
    auto relay = std::make_shared<RelayPolicy>(*c);
    std::lock_guard lock(mu_);
    config_ = std::move(c);
    relay_ = std::move(relay);
    tls_ = std::move(tls);
    auth_ = std::move(auth);
  }

  // Registers a connection; returns a refusal if a limit is reached.
  std::optional<smtp::Reply> Admit(const std::string& ip,
                                   const std::shared_ptr<SessionIo>& io,
                                   const config::Config& cfg) {
    std::lock_guard lock(mu_);
    sessions_.insert(io);
    int& n = per_ip_[ip];
    ++n;
    ++total_;
    if (stopping_) {
      return smtp::MakeReply(421, {4, 3, 2},
                             cfg.server.hostname + " Service shutting down");
    }
    if (total_ > static_cast<long>(cfg.limits.max_connections)) {
      return smtp::MakeReply(
          421, {4, 7, 0}, cfg.server.hostname + " Error: too many connections");
    }
    if (n > static_cast<int>(cfg.limits.max_connections_per_ip)) {
      return smtp::MakeReply(
          421, {4, 7, 0},
          cfg.server.hostname + " Error: too many connections from " + ip);
    }
    return std::nullopt;
  }

  void Leave(const std::string& ip, const std::shared_ptr<SessionIo>& io) {
    std::lock_guard lock(mu_);
    sessions_.erase(io);
    if (--per_ip_[ip] == 0) per_ip_.erase(ip);
    --total_;
  }

  long total() {
    std::lock_guard lock(mu_);
    return total_;
  }

  // Free octets of the file system holding `path` (statvfs, at most once a
  // second; one path per server).
  std::optional<std::uint64_t> SpoolFree(const std::string& path) {
    const auto now = std::chrono::steady_clock::now();
    std::lock_guard lock(free_mu_);
    if (free_checked_ && now - *free_checked_ < std::chrono::seconds(1)) {
      return free_;
    }
    struct statvfs v {};
    free_ = ::statvfs(path.c_str(), &v) == 0
                ? std::optional<std::uint64_t>(
                      static_cast<std::uint64_t>(v.f_bavail) * v.f_frsize)
                : std::nullopt;
    free_checked_ = now;
    return free_;
  }

  // Asks every session to end at its next command boundary.
  void StopSessions() {
    std::lock_guard lock(mu_);
    stopping_ = true;
    for (const auto& io : sessions_) {
      asio::post(io->socket.get_executor(), [io] {
        io->shutdown = true;
        if (io->awaiting_command) {
          boost::system::error_code ignored;
          io->socket.cancel(ignored);
        }
      });
    }
  }

 private:
  asio::io_context& io_;
  std::mutex mu_;
  std::shared_ptr<const config::Config> config_;
  std::shared_ptr<const RelayPolicy> relay_;
  std::shared_ptr<tls::ServerContext> tls_;
  std::shared_ptr<AuthState> auth_;
  BlockingPool auth_pool_{2};
  spool::Spool& spool_;
  SmtpServer::OnQueued on_queued_;
  std::map<std::string, int> per_ip_;
  std::set<std::shared_ptr<SessionIo>> sessions_;
  long total_ = 0;
  bool stopping_ = false;
  std::mutex free_mu_;
  std::optional<std::chrono::steady_clock::time_point> free_checked_;
  std::optional<std::uint64_t> free_;
};

// Writes everything the machine has queued.
asio::awaitable<bool> Flush(const std::shared_ptr<SessionIo>& io,
                            SessionMachine& m, std::chrono::seconds limit) {
  std::string out = m.TakeOutput();
  if (out.empty()) co_return true;
  boost::system::error_code ec;
  std::size_t done = 0;
  if (!io->tls) {
    // Replies are small and the socket buffer is nearly always free: write
    // now, and only wait (with a deadline) if the kernel pushes back.
    while (done < out.size()) {
      done += io->socket.write_some(asio::buffer(out) + done, ec);
      if (ec) break;
    }
    if (!ec) co_return true;
    if (ec != asio::error::would_block) co_return false;
  }
  ArmDeadline(io, limit);
  if (io->tls) {
    ec = co_await io->tls->Write(asio::buffer(out));
  } else {
    std::size_t n = 0;
    std::tie(ec, n) = co_await asio::async_write(
        io->socket, asio::buffer(out) + done, kUseTuple);
  }
  ClearDeadline(io);
  co_return !ec;
}

// The TLS handshake on a session's socket (implicit TLS or STARTTLS), within
// `limit`. Success: io->tls is set and the returned text describes the
// cipher; failure: io->tls is null (logged). Both outcomes are logged.
asio::awaitable<std::string> StartTls(
    const std::shared_ptr<SessionIo>& io,
    const std::shared_ptr<tls::ServerContext>& context,
    std::chrono::seconds limit, const std::string& ip) {
  io->tls = std::make_unique<tls::ServerStream>(context, io->socket);
  ArmDeadline(io, limit);
  auto ec = co_await io->tls->Handshake();
  ClearDeadline(io);
  if (ec) {
    log::Info("TLS handshake with unknown[{}] failed: {}", ip, ec.message());
    io->tls.reset();
    co_return std::string();
  }
  io->tls_buffer.resize(16 * 1024);
  std::string description = fmt::format(
      "{} with cipher {} ({}/{} bits)", io->tls->Version(), io->tls->Cipher(),
      io->tls->CipherBits(), io->tls->CipherBits());
  log::Info("TLS connection established from unknown[{}]: {}", ip, description);
  co_return description;
}

// Reads and drops whatever the client sent before it was greeted (bounded),
// so that closing does not reset the connection under our reply. Returns
// the number of octets dropped; the socket must be non-blocking.
std::size_t DiscardEarlyInput(SessionIo& io) {
  std::size_t dropped = 0;
  boost::system::error_code ec;
  while (dropped < 1024 * 1024 && io.socket.available(ec) > 0 && !ec) {
    std::span<char> buffer = ThreadReadBuffer();
    std::size_t n =
        io.socket.read_some(asio::buffer(buffer.data(), buffer.size()), ec);
    if (ec || n == 0) break;
    dropped += n;
  }
  return dropped;
}

// Checks the machine's credentials: refused at once while the address is
// blocked, else crypt(3) on the auth pool, and a failure answered only after
// the guard's growing delay.
asio::awaitable<void> Authenticate(ServerState* state, SessionMachine* m,
                                   const std::string* ip) {
  std::shared_ptr<AuthState> auth = state->auth();
  if (!auth) {
    m->OnAuthResult(AuthResult::kTempFail);
    co_return;
  }
  if (auth->guard->Blocked(*ip, std::chrono::steady_clock::now())) {
    m->OnAuthResult(AuthResult::kBlocked);
    co_return;
  }
  auth::Authenticator::Outcome outcome;
  std::function<void()> work = [&] {
    if (!m->auth_user().empty()) {
      outcome = auth->users->Check(m->auth_user(), m->auth_password());
    }
  };
  asio::any_io_executor ex = co_await asio::this_coro::executor;
  co_await state->auth_pool().Run(ex, &work);
  if (outcome.ok) {
    m->OnAuthResult(AuthResult::kOk, std::move(outcome.addresses));
    co_return;
  }
  const auto delay =
      auth->guard->RecordFailure(*ip, std::chrono::steady_clock::now());
  if (delay.count() > 0) {
    asio::steady_timer pause(ex, delay);
    co_await pause.async_wait(kUseTuple);
  }
  m->OnAuthResult(AuthResult::kFailed);
}

asio::awaitable<void> RunSession(std::shared_ptr<ServerState> state,
                                 std::shared_ptr<SessionIo> io, std::string ip,
                                 std::uint16_t port,
                                 config::ListenerMode mode) {
  asio::any_io_executor ex = co_await asio::this_coro::executor;
  auto [cfg, relay, tls_context] = state->Snapshot();
  SessionEnv env;
  env.config = cfg;
  env.relay = relay;
  env.now_rfc5322 = Rfc5322Now;
  env.now_unix = [] { return static_cast<std::int64_t>(std::time(nullptr)); };
  env.new_queue_id = NewQueueId;
  env.spool_free_octets = [state, path = cfg->spool.path] {
    return state->SpoolFree(path);
  };
  env.tls_available = tls_context != nullptr;
  env.auth_available = cfg->auth.has_value();
  ClientInfo client{ip, port,
                    config::InNetworks(cfg->relay.trusted_networks, ip),
                    mode != config::ListenerMode::kSmtp};

  const auto command_timeout = cfg->server.command_timeout;
  auto refuse = state->Admit(ip, io, *cfg);
  if (!refuse) log::Info("connect from unknown[{}]:{}", ip, port);
  SessionMachine m(std::move(env), std::move(client));
  if (!refuse && mode == config::ListenerMode::kSubmissions) {
    // RFC 8314 3: TLS from the first byte, then the greeting inside it.
    std::string description;
    if (tls_context) {
      description = co_await StartTls(io, tls_context, command_timeout, ip);
    }
    if (!io->tls) {
      boost::system::error_code ignored;
      io->socket.close(ignored);
      io->timer.cancel();
      log::Info("disconnect from unknown[{}]:{} (no TLS)", ip, port);
      state->Leave(ip, io);
      co_return;
    }
    m.StartedWithTls(std::move(description));
  }
  boost::system::error_code ignored;
  io->socket.non_blocking(true, ignored);
  io->socket.set_option(tcp::no_delay(true), ignored);
  std::optional<smtp::Reply> greeting_refusal = refuse;
  if (!refuse && mode == config::ListenerMode::kSmtp) {
    if (cfg->server.greet_pause.count() > 0) {
      asio::steady_timer pause(ex, cfg->server.greet_pause);
      co_await pause.async_wait(kUseTuple);
    }
    if (DiscardEarlyInput(*io) > 0) {
      log::Warning("improper pipelining before the greeting from unknown[{}]",
                   ip);
      greeting_refusal = smtp::MakeReply(
          554, {5, 5, 0},
          cfg->server.hostname +
              " Error: SMTP protocol synchronization (talking before the "
              "greeting)");
    }
  }
  m.Start(greeting_refusal);

  const auto data_timeout = cfg->server.data_timeout;
  // Minimum data rate (Postfix's smtpd_min_data_rate): in DATA/BDAT the
  // deadline is a budget that each read spends by the time it waits and
  // earns back at 1/min_data_rate s per octet, never above data_timeout.
  using Clock = std::chrono::steady_clock;
  const std::uint32_t min_data_rate = cfg->server.min_data_rate;
  Clock::duration data_budget = data_timeout;
  bool was_in_data = false;
  std::string pending;  // input not yet consumed (waiting on the spool)
  std::unique_ptr<spool::MessageWriter> writer;

  bool running = true;
  while (running) {
    switch (m.action()) {
      case SessionMachine::Action::kRead: {
        if (!pending.empty()) {
          std::size_t n = m.Feed(pending);
          pending.erase(0, n);
          continue;
        }
        if (!co_await Flush(io, m, command_timeout)) {
          m.OnEof();
          break;
        }
        if (io->shutdown && !m.InData()) {
          m.OnShutdown();
          break;
        }
        const bool in_data = m.InData();
        if (in_data && !was_in_data) data_budget = data_timeout;
        was_in_data = in_data;
        io->awaiting_command = !in_data;
        ArmDeadline(io, !in_data            ? Clock::duration(command_timeout)
                        : min_data_rate > 0 ? data_budget
                                            : Clock::duration(data_timeout));
        const Clock::time_point read_start = Clock::now();
        boost::system::error_code ec;
        std::size_t got = 0;
        char* data = nullptr;
        if (io->tls) {
          std::tie(ec, got) =
              co_await io->tls->ReadSome(asio::buffer(io->tls_buffer));
          data = io->tls_buffer.data();
        } else if (!in_data) {
          // Commands: a read into the session's small buffer. Asio reads
          // at once if input is there and otherwise waits on the edge-
          // triggered registration, without re-arming it (an async_wait
          // costs an epoll_ctl per command: 3% of the CPU with a client
          // sending 100 RCPTs one by one). A full buffer means pipelined
          // input: the rest comes in one large read behind it.
          std::tie(ec, got) = co_await io->socket.async_read_some(
              asio::buffer(io->command_buffer), kUseTuple);
          data = io->command_buffer.data();
          if (!ec && got == io->command_buffer.size()) {
            std::span<char> buffer = ThreadReadBuffer();
            std::memcpy(buffer.data(), data, got);
            boost::system::error_code more_ec;
            std::size_t more = io->socket.read_some(
                asio::buffer(buffer.data() + got, buffer.size() - got),
                more_ec);
            data = buffer.data();
            if (!more_ec) got += more;
          }
        } else {
          // Message data: wait, then one large read into the thread's
          // buffer (no per-session buffer for megabytes of content).
          std::tie(ec) =
              co_await io->socket.async_wait(tcp::socket::wait_read, kUseTuple);
          if (!ec) {
            // Only now, after the wait, on whatever thread resumed us.
            std::span<char> buffer = ThreadReadBuffer();
            data = buffer.data();
            got = io->socket.read_some(asio::buffer(data, buffer.size()), ec);
          }
        }
        io->awaiting_command = false;
        ClearDeadline(io);
        if (ec == asio::error::would_block) continue;
        if (ec) {
          if (io->timed_out) {
            if (in_data && min_data_rate > 0 && data_budget < data_timeout) {
              log::Info(
                  "unknown[{}]: data arrived slower than {} octets/s "
                  "(server.min_data_rate)",
                  ip, min_data_rate);
            }
            m.OnTimeout();
          } else if (io->shutdown && ec == asio::error::operation_aborted) {
            m.OnShutdown();
          } else {
            m.OnEof();
          }
          break;
        }
        if (in_data && min_data_rate > 0) {
          data_budget -= Clock::now() - read_start;
          data_budget += std::chrono::duration_cast<Clock::duration>(
                             std::chrono::seconds(got)) /
                         min_data_rate;
          data_budget = std::min<Clock::duration>(data_budget, data_timeout);
        }
        std::string_view input(data, got);
        std::size_t used = m.Feed(input);
        pending.append(input.substr(used));
        break;
      }
      case SessionMachine::Action::kAppend: {
        if (!writer) writer = state->spool().NewMessage(m.current_id());
        std::string chunk = m.TakeContent();
        SpoolStart start = [w = writer.get(), &chunk](spool::Callback done) {
          w->Append(std::move(chunk), std::move(done));
        };
        Status st = co_await AwaitCallback<Status>(ex, &start);
        m.OnAppendDone(st);
        break;
      }
      case SessionMachine::Action::kCommit: {
        if (!writer) writer = state->spool().NewMessage(m.current_id());
        std::string rest = m.TakeContent();
        if (!rest.empty()) writer->Append(std::move(rest), [](Status) {});
        spool::Envelope envelope = m.envelope();
        SpoolStart start = [w = writer.get(), &envelope](spool::Callback done) {
          w->Commit(std::move(envelope), std::move(done));
        };
        Status st = co_await AwaitCallback<Status>(ex, &start);
        writer.reset();
        const std::string id = m.current_id();
        m.OnCommitDone(st);
        if (st.ok()) state->Queued(id);
        break;
      }
      case SessionMachine::Action::kAbort:
        writer.reset();  // the destructor drops what was written
        m.OnAbortDone();
        break;
      case SessionMachine::Action::kStartTls: {
        if (!co_await Flush(io, m, command_timeout)) {
          m.OnTlsFailed();
          break;
        }
        // CVE-2011-0411: bytes that came after STARTTLS in plaintext are
        // dropped, never read as if they had come over TLS.
        if (!pending.empty()) {
          log::Warning(
              "dropped {} octets pipelined after STARTTLS by "
              "unknown[{}]",
              pending.size(), ip);
          pending.clear();
        }
        std::string description =
            co_await StartTls(io, tls_context, command_timeout, ip);
        if (!io->tls) {
          m.OnTlsFailed();
          break;
        }
        m.OnTlsStarted(std::move(description));
        break;
      }
      case SessionMachine::Action::kAuthenticate: {
        if (!co_await Flush(io, m, command_timeout)) {
          m.OnAuthResult(AuthResult::kFailed);
          m.OnEof();
          break;
        }
        co_await Authenticate(state.get(), &m, &ip);
        break;
      }
      case SessionMachine::Action::kClose:
        co_await Flush(io, m, std::chrono::seconds(10));
        running = false;
        break;
    }
  }
  writer.reset();
  io->tls.reset();
  io->socket.shutdown(tcp::socket::shutdown_both, ignored);
  io->socket.close(ignored);
  io->timer.cancel();
  if (!refuse) {
    log::Info("disconnect from unknown[{}]:{} {}", ip, port, m.CommandStats());
  }
  state->Leave(ip, io);
}

asio::awaitable<void> Listen(std::shared_ptr<ServerState> state,
                             std::shared_ptr<tcp::acceptor> acceptor,
                             config::ListenerMode mode) {
  for (;;) {
    auto [ec, socket] = co_await acceptor->async_accept(
        asio::make_strand(state->io()), kUseTuple);
    if (ec == asio::error::operation_aborted) co_return;
    if (ec) {
      // EMFILE and friends: say so and pause instead of spinning.
      log::Error("accept: {}", ec.message());
      asio::steady_timer t(state->io(), std::chrono::milliseconds(100));
      co_await t.async_wait(kUseTuple);
      continue;
    }
    boost::system::error_code rec;
    auto remote = socket.remote_endpoint(rec);
    if (rec) continue;  // already gone
    auto io = std::make_shared<SessionIo>(std::move(socket));
    auto ex = io->socket.get_executor();
    asio::co_spawn(ex,
                   RunSession(state, io, remote.address().to_string(),
                              remote.port(), mode),
                   asio::detached);
  }
}

Result<std::shared_ptr<tls::ServerContext>> LoadTls(
    const config::Config& config) {
  if (!config.tls) return std::shared_ptr<tls::ServerContext>();
  return tls::ServerContext::Load(config.tls->certificate,
                                  config.tls->private_key);
}

}  // namespace

struct SmtpServer::Impl {
  std::shared_ptr<ServerState> state;
  std::vector<std::shared_ptr<tcp::acceptor>> acceptors;
  std::vector<config::ListenerMode> modes;
};

SmtpServer::SmtpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SmtpServer::~SmtpServer() { StopAccepting(); }

Result<std::unique_ptr<SmtpServer>> SmtpServer::Start(
    asio::io_context& io, std::shared_ptr<const config::Config> config,
    spool::Spool& spool, OnQueued on_queued) {
  auto tls_context = LoadTls(*config);
  if (!tls_context) return Error(tls_context.error());
  auto auth = LoadAuth(*config, nullptr);
  if (!auth) return Error(auth.error());
  auto impl = std::make_unique<Impl>();
  impl->state = std::make_shared<ServerState>(io, config, spool, *tls_context,
                                              *auth, std::move(on_queued));
  for (const auto& l : config->listeners) {
    boost::system::error_code ec;
    auto addr = asio::ip::make_address(l.host, ec);
    auto acc = std::make_shared<tcp::acceptor>(io);
    tcp::endpoint ep(addr, l.port);
    if (!ec) acc->open(ep.protocol(), ec);
    if (!ec) acc->set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec && addr.is_v6()) acc->set_option(asio::ip::v6_only(true), ec);
    if (!ec) acc->bind(ep, ec);
    if (!ec) acc->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return Error(Status::IoError(fmt::format("cannot listen on {}:{}: {}",
                                               l.host, l.port, ec.message())));
    }
    impl->acceptors.push_back(acc);
    impl->modes.push_back(l.mode);
  }
  for (std::size_t i = 0; i < impl->acceptors.size(); ++i) {
    asio::co_spawn(io, Listen(impl->state, impl->acceptors[i], impl->modes[i]),
                   asio::detached);
  }
  return std::unique_ptr<SmtpServer>(new SmtpServer(std::move(impl)));
}

Status SmtpServer::Reload(std::shared_ptr<const config::Config> config) {
  auto tls_context = LoadTls(*config);
  if (!tls_context) return tls_context.error();
  auto previous = impl_->state->auth();
  auto auth = LoadAuth(*config, previous.get());
  if (!auth) return auth.error();
  impl_->state->Reload(std::move(config), *tls_context, *auth);
  return Status::Ok();
}

void SmtpServer::StopAccepting() {
  for (auto& a : impl_->acceptors) {
    boost::system::error_code ignored;
    a->close(ignored);
  }
}

void SmtpServer::StopSessions() { impl_->state->StopSessions(); }

long SmtpServer::sessions() const { return impl_->state->total(); }

}  // namespace petrel::server
