#include "base/log.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

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

std::shared_ptr<spdlog::logger>& Logger() {
  static std::shared_ptr<spdlog::logger> logger = [] {
    auto l = spdlog::stderr_logger_mt("petrel");
    l->set_pattern("%Y-%m-%dT%H:%M:%S.%fZ petrel[%P]: %^%l%$: %v",
                   spdlog::pattern_time_type::utc);
    l->flush_on(spdlog::level::trace);
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

}  // namespace petrel::log
