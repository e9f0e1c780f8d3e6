#include "config/config.h"

#include <arpa/inet.h>
#include <sys/stat.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <initializer_list>
#include <limits>
#include <utility>

#include "smtp/address.h"
#include "smtp/limits.h"

namespace petrel::config {
namespace {

namespace fs = std::filesystem;

constexpr std::uint16_t kDefaultDnsPort = 53;
constexpr std::uint16_t kDefaultRoutePort = 25;
// sun_path of struct sockaddr_un is 108 bytes including the final NUL.
constexpr std::size_t kMaxUnixSocketPath = 107;

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string Quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

// "an integer", "a string": for "expected a string, got an integer".
std::string_view TypeName(toml::node_type t) {
  switch (t) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a floating-point number";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    case toml::node_type::none:
      break;
  }
  return "nothing";
}

// A key as it appears in a key path: bare if TOML allows, else quoted.
std::string KeyName(std::string_view key) {
  bool bare = !key.empty();
  for (char c : key) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '-';
    if (!ok) bare = false;
  }
  return bare ? std::string(key) : Quote(key);
}

std::string Join(std::string_view prefix, std::string_view key) {
  if (prefix.empty()) return KeyName(key);
  return std::string(prefix) + "." + KeyName(key);
}

std::string Index(std::string_view prefix, std::size_t i) {
  return std::string(prefix) + "[" + std::to_string(i) + "]";
}

// Levenshtein distance, for "did you mean" on unknown keys.
std::size_t Distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t up = row[j];
      row[j] = std::min(
          {row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// An IP address without brackets, zone or prefix.
struct Ip {
  int family = 0;  // 4 or 6
  std::uint8_t bytes[16] = {};
};

std::optional<Ip> ParseIp(std::string_view text) {
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return std::nullopt;
  std::string s(text);
  Ip ip;
  if (inet_pton(AF_INET, s.c_str(), ip.bytes) == 1) {
    ip.family = 4;
    return ip;
  }
  if (inet_pton(AF_INET6, s.c_str(), ip.bytes) == 1) {
    ip.family = 6;
    return ip;
  }
  return std::nullopt;
}

std::string FormatIp(const Ip& ip) {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(ip.family == 4 ? AF_INET : AF_INET6, ip.bytes, buf, sizeof buf);
  return buf;
}

bool ParsePort(std::string_view text, std::uint16_t& port) {
  if (text.empty() || text.size() > 5) return false;
  unsigned value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value < 1 || value > 65535) return false;
  port = static_cast<std::uint16_t>(value);
  return true;
}

enum class HostKind { kIpOnly, kIpOrDomain };

struct HostPort {
  std::string host;  // IP in canonical form (no brackets) or a domain
  int family = 0;    // 4, 6, or 0 for a domain
  std::uint16_t port = 0;
};

// Parses "host:port", "[v6]:port", and when `default_port` is given also
// "host" and "[v6]". Returns the problem on failure.
tl::expected<HostPort, std::string> ParseHostPort(
    std::string_view text, HostKind kind,
    std::optional<std::uint16_t> default_port) {
  const std::string example =
      default_port ? "\"host\" or \"host:port\"" : "\"host:port\"";
  if (text.empty()) {
    return tl::unexpected("expected " + example + ", got \"\"");
  }
  std::string_view host;
  std::string_view port;
  bool has_port = false;
  bool bracketed = false;
  if (text[0] == '[') {
    std::size_t close = text.find(']');
    if (close == std::string_view::npos) {
      return tl::unexpected("missing \"]\" in " + Quote(text));
    }
    host = text.substr(1, close - 1);
    bracketed = true;
    std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') {
        return tl::unexpected("expected \":port\" after \"]\" in " +
                              Quote(text));
      }
      port = rest.substr(1);
      has_port = true;
    }
  } else {
    std::size_t colons = std::count(text.begin(), text.end(), ':');
    if (colons > 1) {
      // Even where the port is optional: "::1:2600" would silently be the
      // address ::1:2600 on port 25, not ::1 on port 2600.
      return tl::unexpected(
          std::string("an IPv6 address needs brackets, as in ") +
          (default_port ? "\"[::1]\" or \"[::1]:2525\"" : "\"[::1]:2525\"") +
          ", got " + Quote(text));
    } else if (colons == 1) {
      std::size_t colon = text.find(':');
      host = text.substr(0, colon);
      port = text.substr(colon + 1);
      has_port = true;
    } else {
      host = text;
    }
  }

  HostPort out;
  if (has_port) {
    if (!ParsePort(port, out.port)) {
      return tl::unexpected("port must be a number from 1 to 65535, got " +
                            Quote(port) + " in " + Quote(text));
    }
  } else if (default_port) {
    out.port = *default_port;
  } else {
    return tl::unexpected("missing port: expected " + example + ", got " +
                          Quote(text));
  }

  std::optional<Ip> ip = ParseIp(host);
  if (bracketed && (!ip || ip->family != 6)) {
    return tl::unexpected(Quote(host) + " in brackets is not an IPv6 address");
  }
  if (ip) {
    out.host = FormatIp(*ip);
    out.family = ip->family;
    return out;
  }
  if (kind == HostKind::kIpOnly) {
    return tl::unexpected("host must be an IP address, got " + Quote(host));
  }
  if (!smtp::IsValidDomain(host, /*utf8_allowed=*/false)) {
    return tl::unexpected(Quote(host) + " is not a valid host name");
  }
  out.host = Lower(host);
  return out;
}

// The problem with a CIDR block, or the block.
tl::expected<Network, std::string> ParseNetworkText(std::string_view text) {
  std::string_view addr = text;
  std::string_view prefix_text;
  bool has_prefix = false;
  if (std::size_t slash = text.find('/'); slash != std::string_view::npos) {
    addr = text.substr(0, slash);
    prefix_text = text.substr(slash + 1);
    has_prefix = true;
  }
  // Postfix's mynetworks writes IPv6 in brackets: accept "[::1]/128" too.
  if (addr.size() >= 2 && addr.front() == '[' && addr.back() == ']') {
    addr = addr.substr(1, addr.size() - 2);
  }
  std::optional<Ip> ip = ParseIp(addr);
  if (!ip) {
    return tl::unexpected(
        "expected an address or a CIDR block such as \"127.0.0.0/8\" or "
        "\"::1/128\", got " +
        Quote(text));
  }
  const int max_prefix = ip->family == 4 ? 32 : 128;
  int prefix = max_prefix;
  if (has_prefix) {
    bool ok = !prefix_text.empty() && prefix_text.size() <= 3;
    int value = 0;
    for (char c : prefix_text) {
      if (!ok || c < '0' || c > '9') {
        ok = false;
        break;
      }
      value = value * 10 + (c - '0');
    }
    if (!ok || value > max_prefix) {
      return tl::unexpected("prefix length must be 0 to " +
                            std::to_string(max_prefix) + ", got " +
                            Quote(text));
    }
    prefix = value;
  }
  Network net;
  net.family = ip->family;
  net.prefix = prefix;
  std::memcpy(net.bytes, ip->bytes, sizeof net.bytes);
  // Bits beyond the prefix are almost always a typo ("10.1.2.3/8"): say so
  // rather than guess which was meant (Postfix does the same for CIDR maps).
  Ip masked = *ip;
  bool host_bits = false;
  const int total = ip->family == 4 ? 4 : 16;
  for (int i = 0; i < total; ++i) {
    const int bits_here = std::clamp(prefix - i * 8, 0, 8);
    const auto mask = static_cast<std::uint8_t>(0xff00 >> bits_here);
    if ((masked.bytes[i] & ~mask) != 0) host_bits = true;
    masked.bytes[i] &= mask;
  }
  if (host_bits) {
    return tl::unexpected(
        Quote(text) + " has bits set after the prefix; did you mean \"" +
        FormatIp(masked) + "/" + std::to_string(prefix) + "\"?");
  }
  return net;
}

bool Contains(const Network& net, const Ip& ip) {
  if (net.family != ip.family) return false;
  int whole = net.prefix / 8;
  if (std::memcmp(net.bytes, ip.bytes, whole) != 0) return false;
  int rest = net.prefix % 8;
  if (rest == 0) return true;
  auto mask = static_cast<std::uint8_t>(0xff << (8 - rest));
  return (net.bytes[whole] & mask) == (ip.bytes[whole] & mask);
}

std::string DefaultHostname() {
  char buf[HOST_NAME_MAX + 1] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "";
  return buf;
}

struct Problem {
  std::uint32_t line;
  std::string text;
};

// Walks the parsed document, filling a Config and collecting problems.
class Checker {
 public:
  Checker(std::string file, bool check_files)
      : file_(std::move(file)), check_files_(check_files) {
    std::error_code ec;
    fs::path abs = file_.empty() ? fs::current_path(ec) / "petrel.toml"
                                 : fs::absolute(file_, ec);
    abs = abs.lexically_normal();
    config_path_ = abs.string();
    base_dir_ = abs.parent_path();
  }

  Result<Config> Run(const toml::table& root) {
    Config c;
    c.path = config_path_;
    CheckKeys(root, "",
              {"server", "listener", "tls", "auth", "limits", "spool", "relay",
               "local", "delivery", "dns", "routes", "tls_policy"});
    // [tls] and [auth] first: listener modes depend on them.
    ReadTls(root, c);
    ReadAuth(root, c);
    ReadServer(root, c);
    ReadListeners(root, c);
    ReadLimits(root, c);
    ReadSpool(root, c);
    ReadRelay(root, c);
    ReadLocal(root, c);
    ReadDelivery(root, c);
    ReadDns(root, c);
    ReadRoutes(root, c);
    ReadTlsPolicies(root, c);
    if (problems_.empty()) return c;
    std::stable_sort(
        problems_.begin(), problems_.end(),
        [](const Problem& a, const Problem& b) { return a.line < b.line; });
    std::string all;
    for (const Problem& p : problems_) {
      if (!all.empty()) all += '\n';
      all += p.text;
    }
    return Error(Status::InvalidArgument(std::move(all)));
  }

 private:
  // ----- reporting -----

  void Add(std::uint32_t line, std::string_view key, std::string_view what) {
    std::string text = file_ + ":" + std::to_string(line == 0 ? 1 : line) +
                       ": " + std::string(key) + ": " + std::string(what);
    problems_.push_back({line, std::move(text)});
  }

  // The first line of a node; tables made implicitly by a dotted header
  // ("[a.b]" makes "a") have no source, so take their first child's.
  static std::uint32_t LineOf(const toml::node& n) {
    std::uint32_t line = n.source().begin.line;
    if (line != 0) return line;
    std::uint32_t best = 0;
    auto consider = [&best](std::uint32_t l) {
      if (l != 0 && (best == 0 || l < best)) best = l;
    };
    if (const toml::table* t = n.as_table()) {
      for (auto&& [k, v] : *t) {
        consider(k.source().begin.line);
        consider(LineOf(v));
      }
    } else if (const toml::array* a = n.as_array()) {
      for (const toml::node& v : *a) consider(LineOf(v));
    }
    return best;
  }

  void WrongType(const toml::node& n, std::string_view key,
                 std::string_view expected) {
    Add(LineOf(n), key,
        "expected " + std::string(expected) + ", got " +
            std::string(TypeName(n.type())));
  }

  // ----- structure -----

  void CheckKeys(const toml::table& t, std::string_view prefix,
                 std::initializer_list<std::string_view> known) {
    for (auto&& [k, v] : t) {
      std::string_view name = k.str();
      if (std::find(known.begin(), known.end(), name) != known.end()) continue;
      std::string what = "unknown key";
      std::string_view best;
      std::size_t best_distance = 3;
      for (std::string_view candidate : known) {
        std::size_t d = Distance(name, candidate);
        // Only close spellings: "top" is not a misspelt "tls".
        if (d < best_distance &&
            d * 3 <= std::max(name.size(), candidate.size())) {
          best_distance = d;
          best = candidate;
        }
      }
      if (!best.empty()) what += " (did you mean " + Join(prefix, best) + "?)";
      std::uint32_t line = k.source().begin.line;
      if (line == 0) line = LineOf(v);
      Add(line, Join(prefix, name), what);
    }
  }

  // The table `name` of `parent`, nullptr if absent or not a table.
  const toml::table* Section(const toml::table& parent, std::string_view name) {
    const toml::node* n = parent.get(name);
    if (n == nullptr) return nullptr;
    if (const toml::table* t = n->as_table()) return t;
    WrongType(*n, name, "a table ([" + std::string(name) + "])");
    return nullptr;
  }

  static const toml::node* Get(const toml::table* t, std::string_view key) {
    return t == nullptr ? nullptr : t->get(key);
  }

  // ----- scalar readers; each reports its own problem and returns nullopt
  // ----- on error or absence, so a default stays in place.

  std::optional<std::string> StringValue(const toml::node& n,
                                         std::string_view key) {
    if (const auto* s = n.as_string()) return s->get();
    WrongType(n, key, "a string");
    return std::nullopt;
  }

  std::optional<std::string> String(const toml::table* t,
                                    std::string_view prefix,
                                    std::string_view name) {
    const toml::node* n = Get(t, name);
    if (n == nullptr) return std::nullopt;
    return StringValue(*n, Join(prefix, name));
  }

  void Bool(const toml::table* t, std::string_view prefix,
            std::string_view name, bool& out) {
    const toml::node* n = Get(t, name);
    if (n == nullptr) return;
    if (const auto* b = n->as_boolean()) {
      out = b->get();
    } else {
      WrongType(*n, Join(prefix, name), "true or false");
    }
  }

  template <class T>
  void Integer(const toml::table* t, std::string_view prefix,
               std::string_view name, std::int64_t min, T& out,
               std::string_view why = "") {
    const toml::node* n = Get(t, name);
    if (n == nullptr) return;
    std::string key = Join(prefix, name);
    const auto* i = n->as_integer();
    if (i == nullptr) {
      WrongType(*n, key, "an integer");
      return;
    }
    std::int64_t v = i->get();
    const auto max = static_cast<std::int64_t>(std::numeric_limits<T>::max());
    std::string reason = why.empty() ? "" : " (" + std::string(why) + ")";
    if (v < min) {
      Add(LineOf(*n), key,
          "must be at least " + std::to_string(min) + reason + ", got " +
              std::to_string(v));
    } else if (v > max) {
      Add(LineOf(*n), key,
          "must be at most " + std::to_string(max) + ", got " +
              std::to_string(v));
    } else {
      out = static_cast<T>(v);
    }
  }

  std::optional<Seconds> DurationValue(const toml::node& n,
                                       std::string_view key, bool zero_is_off) {
    const auto* s = n.as_string();
    if (s == nullptr) {
      WrongType(n, key, "a duration string such as \"90s\" or \"5m\"");
      return std::nullopt;
    }
    Result<Seconds> d = ParseDuration(s->get());
    if (!d) {
      Add(LineOf(n), key, d.error().message());
      return std::nullopt;
    }
    if (d->count() == 0 && !zero_is_off) {
      Add(LineOf(n), key, "must be at least 1s, got " + Quote(s->get()));
      return std::nullopt;
    }
    return *d;
  }

  void Duration(const toml::table* t, std::string_view prefix,
                std::string_view name, Seconds& out, bool zero_is_off = false) {
    const toml::node* n = Get(t, name);
    if (n == nullptr) return;
    if (auto d = DurationValue(*n, Join(prefix, name), zero_is_off)) out = *d;
  }

  // A size: bytes, or a string such as "50MiB"; at least `min`.
  void Size(const toml::table* t, std::string_view prefix,
            std::string_view name, std::uint64_t min, std::string_view why,
            std::uint64_t& out) {
    const toml::node* n = Get(t, name);
    if (n == nullptr) return;
    const std::string key = Join(prefix, name);
    std::optional<std::uint64_t> size;
    std::string shown;
    if (const auto* i = n->as_integer()) {
      if (i->get() < 0) {
        Add(LineOf(*n), key,
            "must not be negative, got " + std::to_string(i->get()));
        return;
      }
      size = static_cast<std::uint64_t>(i->get());
      shown = std::to_string(*size);
    } else if (const auto* s = n->as_string()) {
      Result<std::uint64_t> r = ParseSize(s->get());
      if (!r) {
        Add(LineOf(*n), key, r.error().message());
        return;
      }
      size = *r;
      shown = Quote(s->get());
    } else {
      WrongType(*n, key, "a size (bytes, or a string such as \"50MiB\")");
      return;
    }
    if (*size < min) {
      Add(LineOf(*n), key,
          "must be at least " + std::to_string(min) + " bytes" +
              (why.empty() ? "" : " (" + std::string(why) + ")") + ", got " +
              shown);
      return;
    }
    out = *size;
  }

  // An array of strings; nullopt (reported) if any element is not a string.
  std::optional<std::vector<std::pair<std::string, const toml::node*>>>
  StringArray(const toml::table* t, std::string_view prefix,
              std::string_view name) {
    const toml::node* n = Get(t, name);
    if (n == nullptr) return std::nullopt;
    std::string key = Join(prefix, name);
    const toml::array* a = n->as_array();
    if (a == nullptr) {
      WrongType(*n, key, "an array of strings");
      return std::nullopt;
    }
    std::vector<std::pair<std::string, const toml::node*>> out;
    bool ok = true;
    for (std::size_t i = 0; i < a->size(); ++i) {
      const toml::node& e = *a->get(i);
      if (auto s = StringValue(e, Index(key, i))) {
        out.emplace_back(std::move(*s), &e);
      } else {
        ok = false;
      }
    }
    if (!ok) return std::nullopt;
    return out;
  }

  std::string Absolute(const std::string& p) const {
    fs::path path(p);
    if (!path.is_absolute()) path = base_dir_ / path;
    return path.lexically_normal().string();
  }

  // A non-empty path string, made absolute.
  void PathKey(const toml::table* t, std::string_view prefix,
               std::string_view name, std::string& out) {
    const toml::node* n = Get(t, name);
    if (n == nullptr) return;
    auto s = StringValue(*n, Join(prefix, name));
    if (!s) return;
    if (s->empty()) {
      Add(LineOf(*n), Join(prefix, name), "must not be empty");
      return;
    }
    out = Absolute(*s);
  }

  // In LoadConfig only: the file must exist (ParseConfig stays pure).
  void CheckFile(const toml::table* t, std::string_view prefix,
                 std::string_view name, const std::string& path) {
    if (!check_files_ || path.empty()) return;
    const toml::node* n = Get(t, name);
    std::uint32_t line = n ? LineOf(*n) : (t ? LineOf(*t) : 0);
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) {
      int err = errno;
      Add(line, Join(prefix, name),
          err == ENOENT
              ? "file " + Quote(path) + " does not exist"
              : "cannot access " + Quote(path) + ": " + std::strerror(err));
    } else if (S_ISDIR(st.st_mode)) {
      Add(line, Join(prefix, name), Quote(path) + " is a directory");
    }
  }

  // ----- sections, in the order of interface.md -----

  void ReadServer(const toml::table& root, Config& c) {
    const toml::table* s = Section(root, "server");
    if (s != nullptr) {
      CheckKeys(*s, "server",
                {"hostname", "admin_socket", "command_timeout", "data_timeout",
                 "max_errors", "greet_pause", "min_data_rate"});
    }
    if (const toml::node* n = Get(s, "hostname")) {
      if (auto h = StringValue(*n, "server.hostname")) {
        if (!smtp::IsValidDomain(*h, /*utf8_allowed=*/false)) {
          Add(LineOf(*n), "server.hostname",
              Quote(*h) + " is not a valid domain name");
        } else {
          c.server.hostname = *h;
        }
      }
    } else {
      std::string h = DefaultHostname();
      if (!smtp::IsValidDomain(h, /*utf8_allowed=*/false)) {
        Add(s ? LineOf(*s) : 1, "server.hostname",
            "not set, and the machine's host name " + Quote(h) +
                " is not a valid domain name; set it");
      } else {
        c.server.hostname = h;
      }
    }

    c.server.admin_socket = Absolute("var/petrel.sock");
    PathKey(s, "server", "admin_socket", c.server.admin_socket);
    if (c.server.admin_socket.size() > kMaxUnixSocketPath) {
      const toml::node* n = Get(s, "admin_socket");
      Add(n ? LineOf(*n) : (s ? LineOf(*s) : 1), "server.admin_socket",
          Quote(c.server.admin_socket) + " is longer than " +
              std::to_string(kMaxUnixSocketPath) +
              " bytes, too long for a Unix socket");
    }
    Duration(s, "server", "command_timeout", c.server.command_timeout);
    Duration(s, "server", "data_timeout", c.server.data_timeout);
    Integer(s, "server", "max_errors", 1, c.server.max_errors);
    Duration(s, "server", "greet_pause", c.server.greet_pause,
             /*zero_is_off=*/true);
    if (c.server.greet_pause > c.server.command_timeout) {
      const toml::node* n = Get(s, "greet_pause");
      Add(n ? LineOf(*n) : 1, "server.greet_pause",
          "must not be longer than server.command_timeout");
    }
    Integer(s, "server", "min_data_rate", 0, c.server.min_data_rate);
  }

  void ReadListeners(const toml::table& root, Config& c) {
    const toml::node* n = root.get("listener");
    if (n == nullptr) {
      c.listeners.push_back({"127.0.0.1", 2525, ListenerMode::kSmtp});
      return;
    }
    const toml::array* a = n->as_array();
    if (a != nullptr && a->empty()) {
      Add(LineOf(*n), "listener", "at least one listener is needed");
      return;
    }
    if (a == nullptr || !a->is_array_of_tables()) {
      WrongType(*n, "listener", "an array of tables ([[listener]])");
      return;
    }
    std::map<std::pair<std::string, std::uint16_t>, std::size_t> seen;
    for (std::size_t i = 0; i < a->size(); ++i) {
      const toml::table& t = *a->get(i)->as_table();
      std::string prefix = Index("listener", i);
      CheckKeys(t, prefix, {"address", "mode"});
      Listener l;
      bool ok = true;
      if (const toml::node* addr = t.get("address")) {
        std::string key = prefix + ".address";
        if (auto text = StringValue(*addr, key)) {
          auto hp = ParseHostPort(*text, HostKind::kIpOnly, std::nullopt);
          if (!hp) {
            Add(LineOf(*addr), key, hp.error());
            ok = false;
          } else {
            l.host = hp->host;
            l.port = hp->port;
            auto [it, inserted] =
                seen.emplace(std::make_pair(l.host, l.port), i);
            if (!inserted) {
              Add(LineOf(*addr), key,
                  Quote(*text) + " is already used by " +
                      Index("listener", it->second));
              ok = false;
            }
          }
        } else {
          ok = false;
        }
      } else {
        Add(LineOf(t), prefix + ".address",
            "missing (\"host:port\", e.g. \"127.0.0.1:2525\")");
        ok = false;
      }
      if (const toml::node* m = t.get("mode")) {
        std::string key = prefix + ".mode";
        if (auto text = StringValue(*m, key)) {
          if (*text == "smtp") {
            l.mode = ListenerMode::kSmtp;
          } else if (*text == "submission") {
            l.mode = ListenerMode::kSubmission;
          } else if (*text == "submissions") {
            l.mode = ListenerMode::kSubmissions;
          } else {
            Add(LineOf(*m), key,
                "expected \"smtp\", \"submission\" or \"submissions\", got " +
                    Quote(*text));
            ok = false;
          }
          // Submission requires STARTTLS before AUTH; submissions is TLS
          // from the first byte: neither can work without a certificate.
          if (ok && l.mode != ListenerMode::kSmtp && !c.tls) {
            Add(LineOf(*m), key, Quote(*text) + " needs a [tls] section");
            ok = false;
          }
          // Both exist to take mail from authenticated users.
          if (ok && l.mode != ListenerMode::kSmtp && !c.auth) {
            Add(LineOf(*m), key,
                Quote(*text) + " needs an [auth] section (users = \"...\")");
            ok = false;
          }
        } else {
          ok = false;
        }
      }
      if (ok) c.listeners.push_back(std::move(l));
    }
  }

  void ReadTls(const toml::table& root, Config& c) {
    const toml::table* t = Section(root, "tls");
    if (t == nullptr) return;
    CheckKeys(*t, "tls", {"certificate", "private_key"});
    Tls tls;
    for (auto [name, field] : {std::pair{"certificate", &tls.certificate},
                               std::pair{"private_key", &tls.private_key}}) {
      if (t->get(name) == nullptr) {
        Add(LineOf(*t), Join("tls", name),
            "missing (required when [tls] is present)");
        continue;
      }
      PathKey(t, "tls", name, *field);
      CheckFile(t, "tls", name, *field);
    }
    // Set even when incomplete (the whole load fails then anyway), so that
    // listeners needing TLS do not report a second error for one cause.
    c.tls = std::move(tls);
  }

  void ReadAuth(const toml::table& root, Config& c) {
    const toml::table* t = Section(root, "auth");
    if (t == nullptr) return;
    CheckKeys(*t, "auth",
              {"users", "failure_delay", "max_failures_per_ip",
               "failure_window", "sender_login_match"});
    Auth a;
    if (t->get("users") == nullptr) {
      Add(LineOf(*t), "auth.users",
          "missing (required when [auth] is present)");
    }
    PathKey(t, "auth", "users", a.users);
    CheckFile(t, "auth", "users", a.users);
    Duration(t, "auth", "failure_delay", a.failure_delay, /*zero_is_off=*/true);
    Integer(t, "auth", "max_failures_per_ip", 1, a.max_failures_per_ip);
    Duration(t, "auth", "failure_window", a.failure_window);
    Bool(t, "auth", "sender_login_match", a.sender_login_match);
    // Set even when incomplete, as [tls] is.
    c.auth = std::move(a);
  }

  std::optional<TlsPolicy> PolicyValue(const toml::node& n,
                                       std::string_view key) {
    auto text = StringValue(n, key);
    if (!text) return std::nullopt;
    if (*text == "none") return TlsPolicy::kNone;
    if (*text == "may") return TlsPolicy::kMay;
    if (*text == "encrypt") return TlsPolicy::kEncrypt;
    if (*text == "verify") return TlsPolicy::kVerify;
    Add(LineOf(n), key,
        "expected \"none\", \"may\", \"encrypt\" or \"verify\", got " +
            Quote(*text));
    return std::nullopt;
  }

  void ReadTlsPolicies(const toml::table& root, Config& c) {
    const toml::table* t = Section(root, "tls_policy");
    if (t == nullptr) return;
    for (auto&& [k, v] : *t) {
      std::string raw(k.str());
      std::string key = Join("tls_policy", raw);
      std::uint32_t key_line = k.source().begin.line;
      if (key_line == 0) key_line = LineOf(v);
      std::string domain = raw;
      if (!domain.empty() && domain[0] == '.') domain.erase(0, 1);
      if (v.is_table() || (raw != "*" && !smtp::IsValidDomain(
                                             domain, /*utf8_allowed=*/false))) {
        Add(key_line, key,
            "expected a quoted domain, \".domain\" (every subdomain) or "
            "\"*\" as the key");
        continue;
      }
      if (auto policy = PolicyValue(v, key))
        c.tls_policies[Lower(raw)] = *policy;
    }
  }

  void ReadLimits(const toml::table& root, Config& c) {
    const toml::table* t = Section(root, "limits");
    if (t == nullptr) return;
    CheckKeys(
        *t, "limits",
        {"max_message_size", "max_recipients", "max_connections",
         "max_connections_per_ip", "max_received_headers", "max_header_size"});
    Size(t, "limits", "max_message_size", smtp::kMinMessageOctets,
         "RFC 5321 4.5.3.1.7", c.limits.max_message_size);
    Size(t, "limits", "max_header_size", 1024, "", c.limits.max_header_size);
    Integer(t, "limits", "max_recipients",
            static_cast<std::int64_t>(smtp::kMinRecipients),
            c.limits.max_recipients, "RFC 5321 4.5.3.1.8");
    Integer(t, "limits", "max_connections", 1, c.limits.max_connections);
    Integer(t, "limits", "max_connections_per_ip", 1,
            c.limits.max_connections_per_ip);
    Integer(t, "limits", "max_received_headers", 1,
            c.limits.max_received_headers);
  }

  void ReadSpool(const toml::table& root, Config& c) {
    const toml::table* t = Section(root, "spool");
    c.spool.path = Absolute("var/spool");
    if (t == nullptr) return;
    CheckKeys(*t, "spool", {"path", "min_free_space"});
    PathKey(t, "spool", "path", c.spool.path);
    Size(t, "spool", "min_free_space", 0, "", c.spool.min_free_space);
  }

  // Valid, lower-cased domains.
  std::vector<std::string> Domains(const toml::table* t,
                                   std::string_view name) {
    std::vector<std::string> out;
    auto list = StringArray(t, "relay", name);
    if (!list) return out;
    std::string key = Join("relay", name);
    for (std::size_t i = 0; i < list->size(); ++i) {
      const auto& [d, node] = (*list)[i];
      if (!smtp::IsValidDomain(d, /*utf8_allowed=*/false)) {
        Add(LineOf(*node), Index(key, i),
            Quote(d) + " is not a valid domain name");
        continue;
      }
      out.push_back(Lower(d));
    }
    return out;
  }

  void ReadRelay(const toml::table& root, Config& c) {
    const toml::table* t = Section(root, "relay");
    if (t != nullptr) {
      CheckKeys(*t, "relay",
                {"local_domains", "relay_domains", "trusted_networks"});
    }
    c.relay.local_domains = Domains(t, "local_domains");
    c.relay.relay_domains = Domains(t, "relay_domains");
    // A domain that is both would be delivered locally and never relayed:
    // the operator meant one of the two.
    if (const toml::node* n = Get(t, "relay_domains")) {
      for (const std::string& d : c.relay.relay_domains) {
        if (std::find(c.relay.local_domains.begin(),
                      c.relay.local_domains.end(),
                      d) != c.relay.local_domains.end()) {
          Add(LineOf(*n), "relay.relay_domains",
              Quote(d) + " is also in relay.local_domains");
        }
      }
    }

    if (Get(t, "trusted_networks") == nullptr) {
      c.relay.trusted_networks = {*ParseNetworkText("127.0.0.0/8"),
                                  *ParseNetworkText("::1/128")};
      return;
    }
    auto list = StringArray(t, "relay", "trusted_networks");
    if (!list) return;
    for (std::size_t i = 0; i < list->size(); ++i) {
      const auto& [text, node] = (*list)[i];
      auto net = ParseNetworkText(text);
      if (!net) {
        Add(LineOf(*node), Index("relay.trusted_networks", i), net.error());
        continue;
      }
      c.relay.trusted_networks.push_back(*net);
    }
  }

  void ReadLocal(const toml::table& root, Config& c) {
    const toml::table* t = Section(root, "local");
    c.local.maildir = Absolute(c.local.maildir);
    if (t == nullptr) return;
    CheckKeys(*t, "local", {"maildir", "aliases", "users"});

    if (const toml::node* n = t->get("maildir")) {
      if (auto m = StringValue(*n, "local.maildir")) {
        std::string problem;
        if (m->find("{user}") == std::string::npos) {
          problem = "must contain {user}, got " + Quote(*m);
        }
        for (std::size_t open = m->find('{'); open != std::string::npos;
             open = m->find('{', open + 1)) {
          std::size_t close = m->find('}', open);
          std::string_view ph =
              close == std::string::npos
                  ? std::string_view(*m).substr(open)
                  : std::string_view(*m).substr(open, close - open + 1);
          if (ph != "{user}" && ph != "{domain}") {
            problem = "unknown placeholder " + std::string(ph) +
                      " (use {user} and {domain})";
            break;
          }
        }
        if (!problem.empty()) {
          Add(LineOf(*n), "local.maildir", problem);
        } else {
          c.local.maildir = Absolute(*m);
        }
      }
    }

    PathKey(t, "local", "aliases", c.local.aliases);
    CheckFile(t, "local", "aliases", c.local.aliases);

    if (Get(t, "users") != nullptr) {
      auto list = StringArray(t, "local", "users");
      if (!list) return;
      std::vector<std::string> users;
      for (std::size_t i = 0; i < list->size(); ++i) {
        const auto& [u, node] = (*list)[i];
        std::string key = Index("local.users", i);
        if (u.empty()) {
          Add(LineOf(*node), key, "must not be empty");
        } else if (u.find_first_of("@ \t\r\n") != std::string::npos) {
          Add(LineOf(*node), key,
              "a user is a local-part without \"@\" or spaces, got " +
                  Quote(u));
        } else if (u.find('+') != std::string::npos) {
          // {user} has "+detail" removed before lookup: "a+b" never matches.
          Add(LineOf(*node), key,
              "must not contain \"+\" (the +detail is removed before "
              "lookup), got " +
                  Quote(u));
        } else {
          users.push_back(Lower(u));
        }
      }
      c.local.users = std::move(users);
    }
  }

  void ReadDelivery(const toml::table& root, Config& c) {
    const toml::table* t = Section(root, "delivery");
    Delivery& d = c.delivery;
    d.retry_schedule = {Seconds(60),   Seconds(300),  Seconds(900),
                        Seconds(1800), Seconds(3600), Seconds(7200),
                        Seconds(14400)};
    if (t != nullptr) {
      CheckKeys(*t, "delivery",
                {"retry_schedule", "max_queue_lifetime", "delay_warning_after",
                 "max_recipients_per_transaction", "connect_timeout",
                 "greeting_timeout", "mail_timeout", "rcpt_timeout",
                 "data_init_timeout", "data_block_timeout", "data_end_timeout",
                 "concurrency_per_destination", "smtp_port", "own_addresses",
                 "enabled", "tls_policy", "tls_ca_file", "credentials"});
    }
    if (const toml::node* n = Get(t, "tls_policy")) {
      if (auto policy = PolicyValue(*n, "delivery.tls_policy")) {
        d.tls_policy = *policy;
      }
    }
    PathKey(t, "delivery", "tls_ca_file", d.tls_ca_file);
    CheckFile(t, "delivery", "tls_ca_file", d.tls_ca_file);
    PathKey(t, "delivery", "credentials", d.credentials);
    CheckFile(t, "delivery", "credentials", d.credentials);
    if (const toml::node* n = Get(t, "retry_schedule")) {
      const std::string key = "delivery.retry_schedule";
      if (const toml::array* a = n->as_array()) {
        if (a->empty()) {
          Add(LineOf(*n), key, "must not be empty (the last wait repeats)");
        } else {
          std::vector<Seconds> schedule;
          for (std::size_t i = 0; i < a->size(); ++i) {
            if (auto s = DurationValue(*a->get(i), Index(key, i), false)) {
              schedule.push_back(*s);
            }
          }
          if (schedule.size() == a->size()) d.retry_schedule = schedule;
        }
      } else {
        WrongType(*n, key, "an array of durations such as [\"1m\", \"5m\"]");
      }
    }
    Duration(t, "delivery", "max_queue_lifetime", d.max_queue_lifetime);
    Duration(t, "delivery", "delay_warning_after", d.delay_warning_after,
             /*zero_is_off=*/true);
    Integer(t, "delivery", "max_recipients_per_transaction", 1,
            d.max_recipients_per_transaction);
    Duration(t, "delivery", "connect_timeout", d.connect_timeout);
    Duration(t, "delivery", "greeting_timeout", d.greeting_timeout);
    Duration(t, "delivery", "mail_timeout", d.mail_timeout);
    Duration(t, "delivery", "rcpt_timeout", d.rcpt_timeout);
    Duration(t, "delivery", "data_init_timeout", d.data_init_timeout);
    Duration(t, "delivery", "data_block_timeout", d.data_block_timeout);
    Duration(t, "delivery", "data_end_timeout", d.data_end_timeout);
    Integer(t, "delivery", "concurrency_per_destination", 1,
            d.concurrency_per_destination);
    Integer(t, "delivery", "smtp_port", 1, d.smtp_port);
    Bool(t, "delivery", "enabled", d.enabled);

    if (Get(t, "own_addresses") == nullptr) {
      // interface.md: default, the listeners' addresses.
      for (const Listener& l : c.listeners) {
        if (std::find(d.own_addresses.begin(), d.own_addresses.end(), l.host) ==
            d.own_addresses.end()) {
          d.own_addresses.push_back(l.host);
        }
      }
      return;
    }
    auto list = StringArray(t, "delivery", "own_addresses");
    if (!list) return;
    for (std::size_t i = 0; i < list->size(); ++i) {
      const auto& [text, node] = (*list)[i];
      std::optional<Ip> ip = ParseIp(text);
      if (!ip) {
        Add(LineOf(*node), Index("delivery.own_addresses", i),
            "expected an IP address, got " + Quote(text));
        continue;
      }
      d.own_addresses.push_back(FormatIp(*ip));
    }
  }

  void ReadDns(const toml::table& root, Config& c) {
    const toml::table* t = Section(root, "dns");
    if (t == nullptr) return;
    CheckKeys(*t, "dns", {"servers"});
    auto list = StringArray(t, "dns", "servers");
    if (!list) return;
    for (std::size_t i = 0; i < list->size(); ++i) {
      const auto& [text, node] = (*list)[i];
      auto hp = ParseHostPort(text, HostKind::kIpOnly, kDefaultDnsPort);
      if (!hp) {
        Add(LineOf(*node), Index("dns.servers", i), hp.error());
        continue;
      }
      std::string host = hp->family == 6 ? "[" + hp->host + "]" : hp->host;
      c.dns.servers.push_back(host + ":" + std::to_string(hp->port));
    }
  }

  void ReadRoutes(const toml::table& root, Config& c) {
    const toml::table* t = Section(root, "routes");
    if (t == nullptr) return;
    for (auto&& [k, v] : *t) {
      std::string raw(k.str());
      std::string key = Join("routes", raw);
      std::uint32_t key_line = k.source().begin.line;
      if (key_line == 0) key_line = LineOf(v);
      if (v.is_table()) {
        // `example.net = "..."` unquoted is the table example with key net.
        Add(key_line, key,
            "expected a string \"host\" or \"host:port\", got a table; quote "
            "domain keys: \"example.net\" = \"...\"");
        continue;
      }
      std::string domain = raw;
      if (!domain.empty() && domain[0] == '.') domain.erase(0, 1);
      if (raw != "*" && !smtp::IsValidDomain(domain, /*utf8_allowed=*/false)) {
        Add(key_line, key,
            "expected a domain, \".domain\" (every subdomain) or \"*\" as the "
            "key");
        continue;
      }
      auto value = StringValue(v, key);
      if (!value) continue;
      auto hp = ParseHostPort(*value, HostKind::kIpOrDomain, kDefaultRoutePort);
      if (!hp) {
        Add(LineOf(v), key, hp.error());
        continue;
      }
      std::string lowered = Lower(raw);
      if (c.routes.count(lowered) != 0) {
        Add(key_line, key, "a route for " + Quote(lowered) + " is given twice");
        continue;
      }
      c.routes[lowered] = Route{hp->host, hp->port};
    }
  }

  std::string file_;         // as given, for messages
  std::string config_path_;  // absolute
  fs::path base_dir_;        // relative paths start here
  bool check_files_;
  std::vector<Problem> problems_;
};

Result<Config> Parse(std::string_view text, const std::string& path,
                     bool check_files) {
  toml::table root;
  try {
    root = toml::parse(text, std::string_view(path));
  } catch (const toml::parse_error& e) {
    const toml::source_position& p = e.source().begin;
    return Error(Status::InvalidArgument(
        path + ":" + std::to_string(p.line) + ":" + std::to_string(p.column) +
        ": TOML syntax error: " + std::string(e.description())));
  }
  return Checker(path, check_files).Run(root);
}

}  // namespace

std::string_view TlsPolicyName(TlsPolicy policy) {
  switch (policy) {
    case TlsPolicy::kNone:
      return "none";
    case TlsPolicy::kMay:
      return "may";
    case TlsPolicy::kEncrypt:
      return "encrypt";
    case TlsPolicy::kVerify:
      return "verify";
  }
  return "may";
}

std::string_view ListenerModeName(ListenerMode mode) {
  switch (mode) {
    case ListenerMode::kSmtp:
      return "smtp";
    case ListenerMode::kSubmission:
      return "submission";
    case ListenerMode::kSubmissions:
      return "submissions";
  }
  return "?";
}

Result<Network> ParseNetwork(std::string_view text) {
  auto net = ParseNetworkText(text);
  if (!net) return Error(Status::InvalidArgument(net.error()));
  return *net;
}

Result<Config> LoadConfig(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    int err = errno;
    std::string m = path + ": cannot open: " + std::strerror(err);
    return Error(err == ENOENT ? Status::NotFound(std::move(m))
                               : Status::IoError(std::move(m)));
  }
  std::string text;
  char buf[8192];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
  bool failed = std::ferror(f) != 0;
  int err = errno;
  std::fclose(f);
  if (failed) {
    return Error(
        Status::IoError(path + ": cannot read: " + std::strerror(err)));
  }
  return Parse(text, path, /*check_files=*/true);
}

Result<Config> ParseConfig(std::string_view text, const std::string& path) {
  return Parse(text, path, /*check_files=*/false);
}

bool InNetworks(const std::vector<Network>& networks,
                std::string_view address) {
  if (address.size() >= 2 && address.front() == '[' && address.back() == ']') {
    address = address.substr(1, address.size() - 2);
  }
  if (std::size_t zone = address.find('%'); zone != std::string_view::npos) {
    address = address.substr(0, zone);
  }
  std::optional<Ip> ip = ParseIp(address);
  if (!ip) return false;
  // A dual-stack socket shows IPv4 peers as ::ffff:a.b.c.d: match those
  // against IPv4 blocks too.
  std::optional<Ip> mapped;
  static constexpr std::uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0,    0,
                                                     0, 0, 0, 0, 0xff, 0xff};
  if (ip->family == 6 && std::memcmp(ip->bytes, kMappedPrefix, 12) == 0) {
    mapped.emplace();
    mapped->family = 4;
    std::memcpy(mapped->bytes, ip->bytes + 12, 4);
  }
  for (const Network& net : networks) {
    if (Contains(net, *ip)) return true;
    if (mapped && Contains(net, *mapped)) return true;
  }
  return false;
}

}  // namespace petrel::config
