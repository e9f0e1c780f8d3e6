#include "server/read_buffer.h"

#include <vector>

namespace petrel::server {

std::span<char> ThreadReadBuffer() {
  static thread_local std::vector<char> buffer(64 * 1024);
  return buffer;
}

}  // namespace petrel::server
