// One read buffer per I/O thread, so that an idle session holds no read
// buffer, only what its machine keeps of a partial line.
//
// Call it only after the co_await that waited for readable data, and use the
// buffer before the next co_await: a coroutine may resume on another thread,
// and GCC may keep a thread_local's address across a suspension if it can
// see the definition, which is why this lives in its own file.
#pragma once

#include <span>

namespace petrel::server {

std::span<char> ThreadReadBuffer();

}  // namespace petrel::server
