#include "queue/scheduler.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <map>
#include <mutex>
#include <thread>

#include "asio/blocking.h"
#include "spool/spool.h"

namespace petrel::queue {
namespace {

namespace asio = boost::asio;

// Delivers a message on its Nth attempt; counts attempts per id.
class FakeAgent : public DeliveryAgent {
 public:
  explicit FakeAgent(std::map<std::string, int> succeed_on)
      : succeed_on_(std::move(succeed_on)) {}
  asio::awaitable<AttemptResult> Attempt(std::string id) override {
    std::lock_guard lock(mu_);
    int n = ++attempts_[id];
    AttemptResult r;
    r.attempts = static_cast<std::uint32_t>(n);
    r.finished = n >= succeed_on_[id];
    co_return r;
  }
  int attempts(const std::string& id) {
    std::lock_guard lock(mu_);
    return attempts_[id];
  }

 private:
  std::mutex mu_;
  std::map<std::string, int> succeed_on_;
  std::map<std::string, int> attempts_;
};

Status Store(spool::Spool& spool, const std::string& id) {
  auto w = spool.NewMessage(id);
  Status result;
  w->Append("Subject: x\r\n\r\nhi\r\n", [](Status) {});
  spool::Envelope e;
  e.id = id;
  e.sender = "a@b.example";
  e.recipients.push_back({});
  e.recipients[0].address = "c@d.example";
  w->Commit(e, [&](Status s) { result = s; });  // synchronous in memory
  return result;
}

// Runs `io` until `done` or a generous bound; never asserts on time.
template <class Pred>
bool RunUntil(asio::io_context& io, Pred done) {
  for (int i = 0; i < 2000 && !done(); ++i) {
    io.run_for(std::chrono::milliseconds(10));
    if (io.stopped()) io.restart();
  }
  return done();
}

TEST(Scheduler, LoadsTheSpoolRetriesAndRemovesWhenDone) {
  auto spool = spool::Spool::NewMemorySpool();
  ASSERT_TRUE(Store(*spool, "AAA").ok());
  ASSERT_TRUE(Store(*spool, "BBB").ok());
  FakeAgent agent({{"AAA", 1}, {"BBB", 2}, {"CCC", 1}});
  asio::io_context io;
  auto guard = asio::make_work_guard(io);
  BlockingPool pool(2);
  SchedulerOptions options;
  options.retry_schedule = {Seconds(1)};
  Scheduler s(io, *spool, agent, pool, options);
  s.Start();
  ASSERT_TRUE(RunUntil(io, [&] { return agent.attempts("AAA") == 1; }));
  ASSERT_TRUE(Store(*spool, "CCC").ok());
  s.Enqueue("CCC");
  // BBB fails once, is retried after the schedule's wait, then succeeds.
  ASSERT_TRUE(RunUntil(io, [&] {
    return agent.attempts("BBB") == 2 && agent.attempts("CCC") == 1 &&
           s.Snapshot().empty();
  }));
  EXPECT_EQ(agent.attempts("AAA"), 1);
  EXPECT_TRUE(spool->ListIds()->empty());
}

TEST(Scheduler, HoldKeepsAMessageBackUntilReleased) {
  auto spool = spool::Spool::NewMemorySpool();
  FakeAgent agent({{"HHH", 1}});
  asio::io_context io;
  auto guard = asio::make_work_guard(io);
  BlockingPool pool(1);
  Scheduler s(io, *spool, agent, pool, {});
  s.Start();
  ASSERT_TRUE(Store(*spool, "HHH").ok());
  s.Enqueue("HHH");
  s.Hold("HHH");
  io.run_for(std::chrono::milliseconds(300));
  io.restart();
  // Held before the dispatcher saw it, or attempted once: never twice.
  if (agent.attempts("HHH") == 0) {
    s.Release("HHH");
    ASSERT_TRUE(RunUntil(io, [&] { return agent.attempts("HHH") == 1; }));
  }
  ASSERT_TRUE(RunUntil(io, [&] { return s.Snapshot().empty(); }));
  EXPECT_EQ(agent.attempts("HHH"), 1);
}

}  // namespace
}  // namespace petrel::queue
