#include "base/queue_id.h"

#include <atomic>
#include <chrono>
#include <random>

namespace petrel {
namespace {

constexpr char kAlphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
constexpr std::size_t kTimeChars = 10;
constexpr std::size_t kCounterChars = 6;

void Encode(std::uint64_t v, std::size_t chars, std::string& out) {
  for (std::size_t i = chars; i-- > 0;)
    out.push_back(kAlphabet[(v >> (5 * i)) & 31]);
}

std::atomic<std::uint64_t>& Counter() {
  static std::atomic<std::uint64_t> counter{std::random_device{}()};
  return counter;
}

}  // namespace

std::string NewQueueId() {
  auto micros = std::chrono::duration_cast<std::chrono::microseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  std::string id;
  id.reserve(kTimeChars + kCounterChars);
  Encode(static_cast<std::uint64_t>(micros), kTimeChars, id);
  Encode(Counter().fetch_add(1, std::memory_order_relaxed), kCounterChars, id);
  return id;
}

bool IsValidQueueId(std::string_view id) {
  if (id.size() != kTimeChars + kCounterChars) return false;
  for (char c : id) {
    if (std::string_view(kAlphabet).find(c) == std::string_view::npos)
      return false;
  }
  return true;
}

}  // namespace petrel
