// Brute-force defence for AUTH: failures per client IP address within a
// window. After `max_failures` failures from one address, further AUTH
// attempts from it are refused without checking the password until the
// window (counted from the first failure) has passed. DelayFor() gives the
// pause before a failure is answered: `base` doubled per earlier failure
// from the address, at most 16 times `base`. Memory is bounded: at most
// `kMaxTracked` addresses, the oldest dropped first. Thread-safe; time is
// passed in, so tests need no clock.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <string>

namespace petrel::auth {

class FailureGuard {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::size_t kMaxTracked = 100000;

  FailureGuard(int max_failures, std::chrono::seconds window,
               std::chrono::milliseconds base_delay)
      : max_failures_(max_failures), window_(window), base_(base_delay) {}

  bool Blocked(const std::string& ip, Clock::time_point now);
  // Records a failure; returns the delay before answering it.
  std::chrono::milliseconds RecordFailure(const std::string& ip,
                                          Clock::time_point now);

 private:
  struct Entry {
    int failures = 0;
    Clock::time_point first;
  };
  void Expire(Clock::time_point now);

  const int max_failures_;
  const std::chrono::seconds window_;
  const std::chrono::milliseconds base_;
  std::mutex mu_;
  std::map<std::string, Entry> entries_;
};

}  // namespace petrel::auth
