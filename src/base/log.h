// Logging: one line per event, Postfix field names, queue ID first
// ("4F3A...: from=<a@b>, size=1234, nrcpt=1"). docs/logging.md lists the
// lines. spdlog stays inside log.cc so headers stay light. Thread-safe.
#pragma once

#include <fmt/format.h>

#include <string_view>

namespace petrel::log {

enum class Level { kDebug, kInfo, kWarning, kError };

// Sets up the process logger (stderr). `level`: "debug", "info", "warning".
void Init(std::string_view level = "info");
void Write(Level level, std::string_view line);
bool Enabled(Level level);

// While a Batch lives, lines logged on this thread are collected and written
// together (one write(2)) when the outermost Batch ends, in order; nothing
// waits for a timer, so a batch only joins the lines of one synchronous
// stretch of code (a delivery's per-recipient lines). Warnings and errors
// are written at once, after the lines collected so far. Not copyable. The
// state is per thread: never keep a Batch across a co_await (the coroutine
// may resume on another thread).
class Batch {
 public:
  Batch();
  ~Batch();
  Batch(const Batch&) = delete;
  Batch& operator=(const Batch&) = delete;
};

template <class... Args>
void Info(fmt::format_string<Args...> f, Args&&... args) {
  Write(Level::kInfo, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void Warning(fmt::format_string<Args...> f, Args&&... args) {
  Write(Level::kWarning, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void Error(fmt::format_string<Args...> f, Args&&... args) {
  Write(Level::kError, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void Debug(fmt::format_string<Args...> f, Args&&... args) {
  if (Enabled(Level::kDebug)) {
    Write(Level::kDebug, fmt::format(f, std::forward<Args>(args)...));
  }
}

}  // namespace petrel::log
