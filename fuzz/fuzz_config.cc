// Fuzzes the config loader: any text gives a Config or an error, never a
// crash; every error line names the file.
#include <cstdint>
#include <string>
#include <string_view>

#include "base/check.h"
#include "config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data,
                                      std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto config = petrel::config::ParseConfig(text, "/fuzz/petrel.toml");
  if (!config) {
    const std::string& m = config.error().message();
    CHECK(!m.empty());
    CHECK(m.starts_with("/fuzz/petrel.toml"));
  } else {
    CHECK(config->limits.max_recipients >= 100);
    CHECK(!config->listeners.empty());
  }
  return 0;
}
