// petrel's configuration: the TOML file of interface.md, as typed values.
//
// LoadConfig() reads the file with toml++ and checks every key. Every error
// names the file, the line and the key ("petrel.toml:12: limits.
// max_recipients: must be at least 100, got 50"); unknown keys and values out
// of range are errors, never silently clamped; all errors are reported, not
// just the first. Relative paths are made relative to the directory of the
// config file. Fields are in the order of interface.md; each says its
// default. Pure values once loaded; thread-compatible.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "base/units.h"

namespace petrel::config {

enum class ListenerMode { kSmtp, kSubmission, kSubmissions };
// "smtp", "submission", "submissions": as written in the config.
std::string_view ListenerModeName(ListenerMode mode);

struct Listener {
  std::string host;  // "127.0.0.1" or "::1" (no brackets)
  std::uint16_t port = 0;
  ListenerMode mode = ListenerMode::kSmtp;
};

struct Server {
  std::string hostname;      // default: the machine's host name
  std::string admin_socket;  // default: "var/petrel.sock" (made absolute)
  // Not in interface.md's example, petrel extensions (README):
  Seconds command_timeout{300};  // RFC 5321 4.5.3.2.7 server timeout: 5m
  Seconds data_timeout{180};     // per data block, 4.5.3.2.6 ("3m")
  int max_errors = 20;           // protocol errors before 421 and close
  // Wait this long before the greeting on `smtp` listeners; a client that
  // talks first gets 554 5.5.0 (as Postfix postscreen's pregreet test and
  // Sendmail's greet_pause). 0: greet at once, still checking for input
  // already waiting.
  Seconds greet_pause{0};
  // DATA/BDAT: every octet received extends the data deadline by
  // 1/min_data_rate s, capped at data_timeout, and time spent reading
  // shortens it (Postfix smtpd_min_data_rate). 0: data_timeout per read.
  std::uint32_t min_data_rate = 500;  // octets per second
};

struct Tls {
  std::string certificate;  // path
  std::string private_key;  // path
};

// AUTH (RFC 4954) for submission: petrel extension, README.
struct Auth {
  std::string users;         // path of the users file (auth/users.h); required
  Seconds failure_delay{1};  // before answering a failure; doubles; 0 off
  std::uint32_t max_failures_per_ip = 10;  // then AUTH is refused (421)
  Seconds failure_window{900};  // "15m": how long failures are remembered
  // MAIL FROM must be the user's own address or one listed for it (553).
  bool sender_login_match = true;
};

struct Limits {
  std::uint64_t max_message_size = 50ull * 1024 * 1024;  // "50MiB"
  std::uint32_t max_recipients = 1000;  // >= 100 (RFC 5321 4.5.3.1.8)
  std::uint32_t max_connections = 10000;
  std::uint32_t max_connections_per_ip = 100;
  std::uint32_t max_received_headers = 50;
  // The message header section (RFC 5322 2.1), petrel extension: larger is
  // refused with 552 5.3.4 after the data.
  std::uint64_t max_header_size = 1024 * 1024;  // "1MiB"
};

struct SpoolConfig {
  std::string path;  // default "var/spool" (made absolute)
  // MAIL is refused with 452 4.3.1 while the spool's file system has less
  // free than this plus the declared SIZE (Postfix queue_minfree). 0: off.
  std::uint64_t min_free_space = 100ull * 1024 * 1024;  // "100MiB"
};

struct Network {
  // An address block: family 4 or 6, the address bytes, prefix length.
  int family = 4;
  std::uint8_t bytes[16] = {};
  int prefix = 0;
};

struct Relay {
  std::vector<std::string> local_domains;  // lower-cased
  std::vector<std::string> relay_domains;  // lower-cased
  std::vector<Network> trusted_networks;   // default 127.0.0.0/8, ::1/128
};

struct Local {
  std::string maildir = "var/mail/{domain}/{user}";  // made absolute
  std::string aliases;                               // path; "" none
  std::optional<std::vector<std::string>> users;     // lower-cased
};

// none: never STARTTLS; may: when offered (a failed handshake retries in
// plaintext); encrypt: TLS required, any certificate; verify: TLS with a
// certificate that is valid for the MX host name.
enum class TlsPolicy { kNone, kMay, kEncrypt, kVerify };
std::string_view TlsPolicyName(TlsPolicy policy);

struct Delivery {
  std::vector<Seconds> retry_schedule;  // default 1m 5m 15m 30m 1h 2h 4h
  Seconds max_queue_lifetime{5 * 86400};
  Seconds delay_warning_after{4 * 3600};  // 0: off
  std::uint32_t max_recipients_per_transaction = 100;
  Seconds connect_timeout{30};
  Seconds greeting_timeout{300};
  Seconds mail_timeout{300};
  Seconds rcpt_timeout{300};
  Seconds data_init_timeout{120};
  Seconds data_block_timeout{180};
  Seconds data_end_timeout{600};
  std::uint32_t concurrency_per_destination = 20;
  // petrel extension: false accepts and spools mail but delivers nothing
  // (like a Postfix hold queue), for staging and for measuring acceptance.
  bool enabled = true;
  std::uint16_t smtp_port = 25;
  // IP addresses in canonical form (inet_ntop); default: the listeners'
  // hosts (which may include "0.0.0.0" or "::").
  std::vector<std::string> own_addresses;
  // Client TLS (RFC 3207, RFC 7435): the default policy, and per
  // destination in Config::tls_policies. petrel extension, README.
  TlsPolicy tls_policy = TlsPolicy::kMay;
  std::string tls_ca_file;  // "" : the system CA store (for verify)
  // Credentials for AUTH towards smarthosts: "host[:port] user:password"
  // lines, Postfix's sasl_passwd format. "" none.
  std::string credentials;
};

struct Dns {
  // Always with a port: "127.0.0.1:5353", "127.0.0.1:53", "[::1]:53".
  // Empty: use /etc/resolv.conf.
  std::vector<std::string> servers;
};

struct Route {
  std::string host;  // lower-cased domain, or an IP ("::1", no brackets)
  std::uint16_t port = 25;
};

struct Config {
  std::string path;  // the file it came from, made absolute
  Server server;
  std::vector<Listener> listeners;  // default: one smtp on 127.0.0.1:2525
  std::optional<Tls> tls;
  std::optional<Auth> auth;
  Limits limits;
  SpoolConfig spool;
  Relay relay;
  Local local;
  Delivery delivery;
  Dns dns;
  // Keys as written, lower-cased: "example.net", ".example.net", "*".
  std::map<std::string, Route> routes;
  // [tls_policy]: the same keys as routes (recipient domains), each a policy.
  std::map<std::string, TlsPolicy> tls_policies;
};

// All errors, one per line, each "file:line: key: problem".
Result<Config> LoadConfig(const std::string& path);
// The same, from text (tests, fuzzing); `path` is used in messages and for
// relative paths.
Result<Config> ParseConfig(std::string_view text, const std::string& path);

// Parses "10.0.0.0/8", "::1/128", "[::1]/128" or a bare address (/32,
// /128). Bits set after the prefix are an error.
Result<Network> ParseNetwork(std::string_view text);

// True if `address` ("127.0.0.1", "::1") is inside one of `networks`.
// "[::1]" and "fe80::1%eth0" are accepted; an IPv4-mapped IPv6 address
// ("::ffff:127.0.0.1") also matches IPv4 blocks.
bool InNetworks(const std::vector<Network>& networks, std::string_view address);

}  // namespace petrel::config
