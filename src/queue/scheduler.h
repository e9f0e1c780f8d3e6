// The queue scheduler: decides when each spooled message is attempted.
//
// Holds one small entry per message (due time, hold flag, attempts), loaded
// from the spool at start and fed by the server as messages are committed.
// Due messages are handed to the DeliveryAgent, at most
// `max_parallel_attempts` at once; an attempt that leaves recipients pending
// is retried after retry_schedule[attempts-1] (the last wait repeats). A
// message whose recipients are all done is removed from the spool. One bad
// message never blocks another: attempts run concurrently and each ends on
// its own. Expiry, bounces and delay warnings belong to the agent, which
// knows recipients; the scheduler knows only time.
//
// Thread safety: every public method may be called from any thread; the
// scheduler's state lives on its own strand.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/units.h"

namespace petrel {
class BlockingPool;
}
namespace petrel::spool {
class Spool;
}

namespace petrel::queue {

struct AttemptResult {
  bool finished = false;       // no recipient pending: remove the message
  bool removed = false;        // finished, and the agent removed it already
  std::uint32_t attempts = 0;  // attempts so far (picks the retry wait)
};

class DeliveryAgent {
 public:
  virtual ~DeliveryAgent() = default;
  // One attempt at the pending recipients of message `id`. The agent
  // persists every recipient outcome as it happens.
  virtual boost::asio::awaitable<AttemptResult> Attempt(std::string id) = 0;
};

struct SchedulerOptions {
  std::vector<Seconds> retry_schedule{Seconds(60)};
  std::size_t max_parallel_attempts = 100;
};

struct QueueEntry {
  std::string id;
  std::int64_t due_unix = 0;
  bool held = false;
  bool running = false;
  std::uint32_t attempts = 0;
};

class Scheduler {
 public:
  Scheduler(boost::asio::io_context& io, spool::Spool& spool,
            DeliveryAgent& agent, BlockingPool& pool, SchedulerOptions options);
  ~Scheduler();

  // Loads the spool's messages (off the I/O threads) and starts.
  void Start();
  // A message was committed: due now.
  void Enqueue(const std::string& id);
  // Makes one message (or all, with an empty id) due now.
  void Flush(const std::string& id);
  void Hold(const std::string& id);
  void Release(const std::string& id);
  // Forgets a message the operator deleted (the spool record is gone).
  void Forget(const std::string& id);
  // Stops dispatching and waits for attempts in flight.
  boost::asio::awaitable<void> Stop();

  std::vector<QueueEntry> Snapshot();

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace petrel::queue
