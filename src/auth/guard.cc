#include "auth/guard.h"

#include <algorithm>

namespace petrel::auth {

void FailureGuard::Expire(Clock::time_point now) {
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (now - it->second.first >= window_) {
      it = entries_.erase(it);
    } else {
      ++it;
    }
  }
}

bool FailureGuard::Blocked(const std::string& ip, Clock::time_point now) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(ip);
  if (it == entries_.end()) return false;
  if (now - it->second.first >= window_) {
    entries_.erase(it);
    return false;
  }
  return it->second.failures >= max_failures_;
}

std::chrono::milliseconds FailureGuard::RecordFailure(const std::string& ip,
                                                      Clock::time_point now) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(ip);
  if (it != entries_.end() && now - it->second.first >= window_) {
    entries_.erase(it);
    it = entries_.end();
  }
  if (it == entries_.end()) {
    if (entries_.size() >= kMaxTracked) Expire(now);
    if (entries_.size() >= kMaxTracked) {
      auto oldest = std::min_element(entries_.begin(), entries_.end(),
                                     [](const auto& a, const auto& b) {
                                       return a.second.first < b.second.first;
                                     });
      entries_.erase(oldest);
    }
    it = entries_.emplace(ip, Entry{0, now}).first;
  }
  const int earlier = it->second.failures++;
  return base_ * (1 << std::min(earlier, 4));
}

}  // namespace petrel::auth
