#include "delivery/credentials.h"

#include <fmt/format.h>

#include <algorithm>

#include "base/line_file.h"
#include "base/strings.h"

namespace petrel::delivery {
namespace {

// "[host]:port" -> "host:port"; "[host]" -> "host"; others lower-cased.
std::optional<std::string> NormalKey(std::string_view key) {
  if (!key.empty() && key.front() == '[') {
    const std::size_t close = key.find(']');
    if (close == std::string_view::npos || close == 1) return std::nullopt;
    std::string host = AsciiLower(key.substr(1, close - 1));
    std::string_view rest = key.substr(close + 1);
    if (rest.empty()) return host;
    if (rest.front() != ':' || rest.size() < 2) return std::nullopt;
    return host + std::string(rest);
  }
  return AsciiLower(key);
}

}  // namespace

Result<Credentials> Credentials::Parse(std::string_view text,
                                       const std::string& path) {
  Credentials out;
  std::string errors =
      ParseLines(text, path, [&](std::string_view line, const LineFail& fail) {
        const std::size_t space = line.find_first_of(" \t");
        if (space == std::string_view::npos) {
          fail("expected \"host[:port] user:password\"");
          return;
        }
        auto key = NormalKey(line.substr(0, space));
        std::string_view value = TrimBlanks(line.substr(space + 1));
        const std::size_t colon = value.find(':');
        if (!key || key->empty()) {
          fail("bad next hop; expected host, host:port or [host]:port");
          return;
        }
        if (colon == std::string_view::npos || colon == 0 ||
            colon + 1 == value.size()) {
          fail(fmt::format("{}: expected user:password after the next hop",
                           *key));
          return;
        }
        ClientCredentials c{std::string(value.substr(0, colon)),
                            std::string(value.substr(colon + 1))};
        if (!out.entries_.emplace(*key, std::move(c)).second) {
          fail(fmt::format("{} appears twice", *key));
        }
      });
  if (!errors.empty()) return Error(Status::InvalidArgument(errors));
  return out;
}

Result<Credentials> Credentials::Load(const std::string& path) {
  auto text = ReadLineFile(path, "credentials file");
  if (!text) return Error(text.error());
  return Parse(*text, path);
}

std::optional<ClientCredentials> Credentials::Find(std::string_view host,
                                                   std::uint16_t port) const {
  const std::string h = AsciiLower(host);
  if (auto it = entries_.find(h + ":" + std::to_string(port));
      it != entries_.end()) {
    return it->second;
  }
  if (auto it = entries_.find(h); it != entries_.end()) return it->second;
  return std::nullopt;
}

}  // namespace petrel::delivery
