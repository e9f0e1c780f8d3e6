#include "base/log.h"

#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <mutex>
#include <string>

namespace petrel::log {
namespace {

spdlog::level::level_enum ToSpd(Level l) {
  switch (l) {
    case Level::kDebug:
      return spdlog::level::debug;
    case Level::kInfo:
      return spdlog::level::info;
    case Level::kWarning:
      return spdlog::level::warn;
    case Level::kError:
      return spdlog::level::err;
  }
  return spdlog::level::info;
}

// Writes all of `data` to stderr, unbuffered: a line is in the kernel when
// Write returns, so it survives kill -9. One write(2) per call; concurrent
// calls do not interleave (writes_ serialises them).
std::mutex writes_;

void WriteAll(const char* data, std::size_t size) {
  std::lock_guard lock(writes_);
  while (size > 0) {
    ssize_t n = ::write(STDERR_FILENO, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // nowhere left to report it
    }
    data += n;
    size -= static_cast<std::size_t>(n);
  }
}

struct ThreadBatch {
  int depth = 0;
  std::string lines;
};
thread_local ThreadBatch batch_;

void FlushBatch() {
  if (batch_.lines.empty()) return;
  WriteAll(batch_.lines.data(), batch_.lines.size());
  batch_.lines.clear();
  if (batch_.lines.capacity() > (1 << 20)) std::string().swap(batch_.lines);
}

// spdlog's stderr sink goes through stdio and flushes per line; this one
// formats into a buffer and writes it with one syscall, or keeps it for the
// thread's Batch.
class StderrSink final : public spdlog::sinks::base_sink<std::mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t formatted;
    formatter_->format(msg, formatted);
    if (batch_.depth > 0 && msg.level < spdlog::level::warn) {
      batch_.lines.append(formatted.data(), formatted.size());
      return;
    }
    FlushBatch();
    WriteAll(formatted.data(), formatted.size());
  }
  void flush_() override {}
};

std::shared_ptr<spdlog::logger>& Logger() {
  static std::shared_ptr<spdlog::logger> logger = [] {
    auto l = std::make_shared<spdlog::logger>("petrel",
                                              std::make_shared<StderrSink>());
    // The pid is written into the pattern once: spdlog's %P asks the kernel
    // for it on every line. petrel never forks.
    l->set_pattern("%Y-%m-%dT%H:%M:%S.%fZ petrel[" +
                       std::to_string(::getpid()) + "]: %^%l%$: %v",
                   spdlog::pattern_time_type::utc);
    return l;
  }();
  return logger;
}

}  // namespace

void Init(std::string_view level) {
  auto& l = Logger();
  if (level == "debug")
    l->set_level(spdlog::level::debug);
  else if (level == "warning")
    l->set_level(spdlog::level::warn);
  else
    l->set_level(spdlog::level::info);
}

void Write(Level level, std::string_view line) {
  Logger()->log(ToSpd(level), line);
}

bool Enabled(Level level) { return Logger()->should_log(ToSpd(level)); }

Batch::Batch() { ++batch_.depth; }

Batch::~Batch() {
  if (--batch_.depth == 0) FlushBatch();
}

}  // namespace petrel::log
