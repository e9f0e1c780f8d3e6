// Awaits an operation that reports one value through a callback, which may
// run on any thread (the spool's writer thread, the resolver's thread), and
// resumes the coroutine on `ex`:
//
//   std::function<void(std::function<void(Status)>)> start =
//       [&](auto done) { spool.RemoveAsync(id, mode, std::move(done)); };
//   Status st = co_await AwaitCallback<Status>(ex, &start);
//
// `start` is passed by pointer to a named local and must outlive the wait:
// GCC 12 mishandles non-trivial temporaries inside co_await expressions. The
// callback must be called exactly once.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <memory>
#include <utility>

namespace petrel {

template <class T, class Start>
auto AwaitCallback(boost::asio::any_io_executor ex, Start* start) {
  return boost::asio::async_initiate<decltype(boost::asio::use_awaitable),
                                     void(T)>(
      [ex, start](auto handler) {
        auto h = std::make_shared<decltype(handler)>(std::move(handler));
        (*start)([h, ex](T value) {
          boost::asio::post(ex, [h, value = std::move(value)]() mutable {
            (*h)(std::move(value));
          });
        });
      },
      boost::asio::use_awaitable);
}

}  // namespace petrel
