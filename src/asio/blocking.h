// Runs blocking work (spool reads, fsyncs, file I/O) on a small thread pool
// and resumes the calling coroutine on its own executor afterwards, so that
// I/O threads never block.
//
//   std::function<void()> work = [&] { result = spool.LoadEnvelope(id); };
//   co_await pool.Run(executor, &work);
//
// `work` is passed by pointer to a named local and must outlive the wait:
// GCC 12 mishandles non-trivial temporaries inside co_await expressions.
// Thread-safe.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <functional>
#include <memory>

namespace petrel {

class BlockingPool {
 public:
  explicit BlockingPool(std::size_t threads) : pool_(threads) {}
  ~BlockingPool() { pool_.join(); }

  auto Run(boost::asio::any_io_executor resume_on,
           std::function<void()>* work) {
    return boost::asio::async_initiate<decltype(boost::asio::use_awaitable),
                                       void()>(
        [this, resume_on, work](auto handler) {
          auto h = std::make_shared<decltype(handler)>(std::move(handler));
          boost::asio::post(pool_, [h, resume_on, work] {
            (*work)();
            boost::asio::post(resume_on, [h]() mutable { (*h)(); });
          });
        },
        boost::asio::use_awaitable);
  }

  // Stops taking work once what was queued is done.
  void Join() { pool_.join(); }

 private:
  boost::asio::thread_pool pool_;
};

}  // namespace petrel
