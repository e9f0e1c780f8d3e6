#include "queue/scheduler.h"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <ctime>
#include <map>
#include <mutex>
#include <set>

#include "asio/await_callback.h"
#include "asio/blocking.h"
#include "base/log.h"
#include "spool/spool.h"

namespace petrel::queue {

namespace asio = boost::asio;
constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);

namespace {
std::int64_t NowUnix() { return static_cast<std::int64_t>(std::time(nullptr)); }
// The dispatcher wakes at least this often even with nothing due.
constexpr std::int64_t kMaxSleepSeconds = 60;
}  // namespace

struct Scheduler::State : std::enable_shared_from_this<State> {
  State(asio::io_context& io_, spool::Spool& spool_, DeliveryAgent& agent_,
        BlockingPool& pool_, SchedulerOptions options_)
      : io(io_),
        strand(asio::make_strand(io_)),
        wake(strand),
        spool(spool_),
        agent(agent_),
        pool(pool_),
        options(std::move(options_)) {
    if (options.retry_schedule.empty()) options.retry_schedule = {Seconds(60)};
  }

  asio::io_context& io;
  asio::strand<asio::io_context::executor_type> strand;
  asio::steady_timer wake;
  spool::Spool& spool;
  DeliveryAgent& agent;
  BlockingPool& pool;
  SchedulerOptions options;

  std::mutex mu;
  std::map<std::string, QueueEntry> entries;
  // Entries that may be dispatched (not held, not running), by due time.
  std::set<std::pair<std::int64_t, std::string>> ready;
  std::size_t running = 0;
  bool stopping = false;

  // REQUIRES: mu held.
  void MakeReady(QueueEntry& e) {
    if (!e.held && !e.running) ready.emplace(e.due_unix, e.id);
  }
  void Unready(const QueueEntry& e) { ready.erase({e.due_unix, e.id}); }

  void Wake() {
    asio::post(strand, [self = shared_from_this()] { self->wake.cancel(); });
  }

  void Add(const std::string& id, std::int64_t due, bool held,
           std::uint32_t attempts) {
    std::lock_guard lock(mu);
    auto [it, inserted] = entries.try_emplace(id);
    QueueEntry& e = it->second;
    if (!inserted) {
      if (e.running) return;  // the attempt in flight will reschedule it
      Unready(e);
    }
    e.id = id;
    e.due_unix = due;
    e.held = held;
    e.attempts = attempts;
    MakeReady(e);
  }

  asio::awaitable<void> Load() {
    Result<std::vector<std::string>> ids = std::vector<std::string>();
    std::vector<spool::Envelope> envelopes;
    std::function<void()> work = [&] {
      ids = spool.ListIds();
      if (!ids) return;
      for (const auto& id : *ids) {
        auto e = spool.LoadEnvelope(id);
        if (!e) {
          log::Error("{}: cannot load from the spool: {}", id,
                     e.error().ToString());
          continue;
        }
        envelopes.push_back(std::move(*e));
      }
    };
    co_await pool.Run(strand, &work);
    if (!ids) {
      log::Error("queue: cannot list the spool: {}", ids.error().ToString());
      co_return;
    }
    const std::int64_t now = NowUnix();
    for (const auto& e : envelopes) {
      std::uint32_t attempts = 0;
      for (const auto& r : e.recipients)
        attempts = std::max(attempts, r.attempts);
      Add(e.id, std::max(now, e.next_attempt_unix), e.held, attempts);
    }
    log::Info("queue: {} message(s) in the spool", envelopes.size());
  }

  asio::awaitable<void> Dispatch() {
    co_await Load();
    for (;;) {
      std::vector<std::string> due;
      std::int64_t next_due = 0;
      {
        std::lock_guard lock(mu);
        if (stopping) break;
        const std::int64_t now = NowUnix();
        while (!ready.empty() && running < options.max_parallel_attempts &&
               ready.begin()->first <= now) {
          std::string id = ready.begin()->second;
          ready.erase(ready.begin());
          QueueEntry& e = entries[id];
          e.running = true;
          ++running;
          due.push_back(std::move(id));
        }
        next_due =
            ready.empty() ? now + kMaxSleepSeconds : ready.begin()->first;
        next_due = std::min(next_due, now + kMaxSleepSeconds);
        if (running >= options.max_parallel_attempts) {
          next_due = now + kMaxSleepSeconds;  // woken when one finishes
        }
      }
      for (auto& id : due) {
        asio::co_spawn(io, RunAttempt(shared_from_this(), std::move(id)),
                       asio::detached);
      }
      const std::int64_t wait = std::max<std::int64_t>(0, next_due - NowUnix());
      if (wait > 0 || due.empty()) {
        wake.expires_after(
            std::chrono::seconds(std::max<std::int64_t>(wait, 1)));
        co_await wake.async_wait(kUseTuple);
      }
    }
  }

  static asio::awaitable<void> RunAttempt(std::shared_ptr<State> self,
                                          std::string id) {
    AttemptResult result;
    try {
      result = co_await self->agent.Attempt(id);
    } catch (const std::exception& e) {
      log::Error("{}: delivery attempt failed: {}", id, e.what());
    }
    if (result.finished && result.removed) {
      log::Info("{}: removed", id);
    } else if (result.finished) {
      std::function<void(spool::Callback)> start = [&](spool::Callback done) {
        self->spool.RemoveAsync(id, spool::Spool::Durability::kLazy,
                                std::move(done));
      };
      asio::any_io_executor ex = self->strand;
      Status removed = co_await AwaitCallback<Status>(ex, &start);
      if (!removed.ok()) {
        log::Error("{}: cannot remove from the spool: {}", id,
                   removed.ToString());
      } else {
        log::Info("{}: removed", id);
      }
    }
    std::int64_t due = 0;
    if (!result.finished) {
      const auto& schedule = self->options.retry_schedule;
      const std::uint32_t attempts =
          std::max<std::uint32_t>(result.attempts, 1);
      const std::size_t step =
          std::min<std::size_t>(attempts - 1, schedule.size() - 1);
      due = NowUnix() + schedule[step].count();
      // Persist the next attempt, so a restart does not retry everything at
      // once. Best effort: on failure the message is merely tried early.
      std::function<void()> work = [&] {
        auto e = self->spool.LoadEnvelope(id);
        if (!e) return;
        e->next_attempt_unix = due;
        (void)self->spool.UpdateEnvelope(*e);
      };
      co_await self->pool.Run(self->strand, &work);
    }
    {
      std::lock_guard lock(self->mu);
      --self->running;
      auto it = self->entries.find(id);
      if (it != self->entries.end()) {
        QueueEntry& e = it->second;
        e.running = false;
        if (result.finished) {
          self->entries.erase(it);
        } else {
          e.attempts = std::max(e.attempts + 1, result.attempts);
          e.due_unix = due;
          self->MakeReady(e);
        }
      }
    }
    self->Wake();
  }
};

Scheduler::Scheduler(asio::io_context& io, spool::Spool& spool,
                     DeliveryAgent& agent, BlockingPool& pool,
                     SchedulerOptions options)
    : state_(std::make_shared<State>(io, spool, agent, pool,
                                     std::move(options))) {}

Scheduler::~Scheduler() = default;

void Scheduler::Start() {
  asio::co_spawn(state_->strand, state_->Dispatch(), asio::detached);
}

void Scheduler::Enqueue(const std::string& id) {
  state_->Add(id, NowUnix(), /*held=*/false, 0);
  state_->Wake();
}

void Scheduler::Flush(const std::string& id) {
  {
    std::lock_guard lock(state_->mu);
    for (auto& [key, e] : state_->entries) {
      if (!id.empty() && key != id) continue;
      if (e.running || e.held) continue;
      state_->Unready(e);
      e.due_unix = 0;
      state_->MakeReady(e);
    }
  }
  state_->Wake();
}

void Scheduler::Hold(const std::string& id) {
  std::lock_guard lock(state_->mu);
  auto it = state_->entries.find(id);
  if (it == state_->entries.end()) return;
  state_->Unready(it->second);
  it->second.held = true;
}

void Scheduler::Release(const std::string& id) {
  {
    std::lock_guard lock(state_->mu);
    auto it = state_->entries.find(id);
    if (it == state_->entries.end()) return;
    it->second.held = false;
    it->second.due_unix = 0;
    state_->MakeReady(it->second);
  }
  state_->Wake();
}

void Scheduler::Forget(const std::string& id) {
  std::lock_guard lock(state_->mu);
  auto it = state_->entries.find(id);
  if (it == state_->entries.end()) return;
  state_->Unready(it->second);
  if (!it->second.running) state_->entries.erase(it);
}

asio::awaitable<void> Scheduler::Stop() {
  {
    std::lock_guard lock(state_->mu);
    state_->stopping = true;
  }
  state_->Wake();
  asio::steady_timer poll(state_->strand);
  for (;;) {
    {
      std::lock_guard lock(state_->mu);
      if (state_->running == 0) break;
    }
    poll.expires_after(std::chrono::milliseconds(50));
    co_await poll.async_wait(kUseTuple);
  }
}

std::vector<QueueEntry> Scheduler::Snapshot() {
  std::lock_guard lock(state_->mu);
  std::vector<QueueEntry> out;
  out.reserve(state_->entries.size());
  for (const auto& [id, e] : state_->entries) out.push_back(e);
  return out;
}

}  // namespace petrel::queue
