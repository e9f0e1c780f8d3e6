// `petrel serve`: the process. Opens the spool, starts the SMTP server, the
// queue scheduler with its delivery agent, and the admin socket; handles
// SIGTERM/SIGINT (stop accepting, let work in flight finish, exit 0) and
// SIGHUP (reload the config).
#include "cli/serve.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <thread>
#include <vector>

#include "admin/admin.h"
#include "asio/blocking.h"
#include "base/log.h"
#include "cli/admin_handler.h"
#include "config/config.h"
#include "delivery/agent.h"
#include "queue/scheduler.h"
#include "server/server.h"
#include "spool/spool.h"

namespace petrel::cli {

namespace asio = boost::asio;

namespace {
// How long a stopping server lets sessions and deliveries in flight finish.
constexpr auto kShutdownGrace = std::chrono::seconds(30);
}  // namespace

int Serve(const std::string& config_path, int io_threads) {
  auto loaded = config::LoadConfig(config_path);
  if (!loaded) {
    log::Error("{}", loaded.error().message());
    return 1;
  }
  auto config = std::make_shared<const config::Config>(std::move(*loaded));

  spool::SpoolOptions so;
  so.path = config->spool.path;
  auto spool = spool::Spool::Open(so);
  if (!spool) {
    log::Error("fatal: cannot open the spool {}: {}", so.path,
               spool.error().ToString());
    return 1;
  }

  asio::io_context io;
  BlockingPool pool(4);

  std::unique_ptr<queue::Scheduler> scheduler;
  auto agent = delivery::NewAgent(io, config, **spool, pool,
                                  [&scheduler](const std::string& id) {
                                    if (scheduler) scheduler->Enqueue(id);
                                  });
  if (!agent) {
    log::Error("fatal: {}", agent.error().message());
    return 1;
  }
  queue::SchedulerOptions qo;
  qo.retry_schedule = config->delivery.retry_schedule;
  scheduler =
      std::make_unique<queue::Scheduler>(io, **spool, **agent, pool, qo);

  auto server = server::SmtpServer::Start(
      io, config, **spool,
      [&scheduler](const std::string& id) { scheduler->Enqueue(id); });
  if (!server) {
    log::Error("fatal: {}", server.error().message());
    return 1;
  }

  AdminHandler handler(io, config, **spool, *scheduler, **agent, pool);
  auto admin =
      admin::AdminServer::Listen(io, config->server.admin_socket, handler,
                                 config->limits.max_message_size);
  if (!admin) {
    log::Error("fatal: {}", admin.error().message());
    return 1;
  }
  if (config->delivery.enabled) {
    scheduler->Start();
  } else {
    log::Info(
        "delivery is off ([delivery] enabled = false): mail is only "
        "spooled");
  }

  asio::signal_set signals(io, SIGTERM, SIGINT, SIGHUP);
  std::function<void(boost::system::error_code, int)> on_signal =
      [&](boost::system::error_code ec, int signo) {
        if (ec) return;
        if (signo == SIGHUP) {
          auto fresh = config::LoadConfig(config->path);
          Status st = fresh
                          ? (*server)->Reload(
                                std::make_shared<const config::Config>(*fresh))
                          : fresh.error();
          if (!st.ok()) {
            log::Error("reload: {}; keeping the running config", st.message());
          } else {
            log::Info(
                "reload: config {} loaded for new sessions (listener "
                "and delivery changes need a restart)",
                config->path);
          }
          signals.async_wait(on_signal);
          return;
        }
        log::Info("stopping on signal {}", signo);
        (*server)->StopAccepting();
        (*server)->StopSessions();
        (*admin)->Close();
        asio::co_spawn(
            io,
            [&]() -> asio::awaitable<void> {
              co_await scheduler->Stop();
              asio::steady_timer grace(io);
              auto deadline = std::chrono::steady_clock::now() + kShutdownGrace;
              while ((*server)->sessions() > 0 &&
                     std::chrono::steady_clock::now() < deadline) {
                grace.expires_after(std::chrono::milliseconds(50));
                co_await grace.async_wait(asio::as_tuple(asio::use_awaitable));
              }
              io.stop();
            },
            asio::detached);
      };
  signals.async_wait(on_signal);

  log::Info("ready: {} listener(s), spool {}, {} I/O threads",
            config->listeners.size(), so.path, io_threads);
  std::vector<std::thread> threads;
  for (int i = 1; i < io_threads; ++i) {
    threads.emplace_back([&io] { io.run(); });
  }
  io.run();
  for (auto& t : threads) t.join();
  log::Info("stopped");
  return 0;
}

}  // namespace petrel::cli
