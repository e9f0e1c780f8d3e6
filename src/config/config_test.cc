#include "config/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace petrel::config {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

namespace fs = std::filesystem;

// Every test that is not about the host name sets one, so results do not
// depend on the machine.
constexpr const char* kHost = "[server]\nhostname = \"mx.example.test\"\n";

Config Parse(const std::string& text,
             const std::string& path = "/etc/petrel/petrel.toml") {
  Result<Config> c = ParseConfig(text, path);
  EXPECT_TRUE(c.has_value()) << c.error().message();
  return c ? *c : Config{};
}

// The error text; fails the test if the text parsed.
std::string Errors(const std::string& text,
                   const std::string& path = "t.toml") {
  Result<Config> c = ParseConfig(text, path);
  EXPECT_FALSE(c.has_value()) << "parsed:\n" << text;
  if (c) return "";
  EXPECT_EQ(c.error().code(), Status::Code::kInvalidArgument);
  return c.error().message();
}

std::vector<std::string> Lines(const std::string& s) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= s.size()) {
    std::size_t nl = s.find('\n', start);
    if (nl == std::string::npos) nl = s.size();
    out.push_back(s.substr(start, nl - start));
    start = nl + 1;
  }
  return out;
}

Network Net(std::string_view text) {
  Result<Network> n = ParseNetwork(text);
  EXPECT_TRUE(n.has_value()) << text;
  return n ? *n : Network{};
}

// ---------------------------------------------------------------- defaults

TEST(ConfigTest, EmptyFileGivesDefaults) {
  Config c = Parse(kHost);
  EXPECT_EQ(c.path, "/etc/petrel/petrel.toml");
  EXPECT_EQ(c.server.hostname, "mx.example.test");
  EXPECT_EQ(c.server.admin_socket, "/etc/petrel/var/petrel.sock");
  EXPECT_EQ(c.server.command_timeout, Seconds(300));
  EXPECT_EQ(c.server.data_timeout, Seconds(180));
  EXPECT_EQ(c.server.max_errors, 20);
  ASSERT_EQ(c.listeners.size(), 1u);
  EXPECT_EQ(c.listeners[0].host, "127.0.0.1");
  EXPECT_EQ(c.listeners[0].port, 2525);
  EXPECT_EQ(c.listeners[0].mode, ListenerMode::kSmtp);
  EXPECT_FALSE(c.tls.has_value());
  EXPECT_EQ(c.limits.max_message_size, 50u * 1024 * 1024);
  EXPECT_EQ(c.limits.max_header_size, 1024u * 1024);
  EXPECT_EQ(c.server.greet_pause.count(), 0);
  EXPECT_EQ(c.server.min_data_rate, 500u);
  EXPECT_EQ(c.limits.max_recipients, 1000u);
  EXPECT_EQ(c.limits.max_connections, 10000u);
  EXPECT_EQ(c.limits.max_connections_per_ip, 100u);
  EXPECT_EQ(c.limits.max_received_headers, 50u);
  EXPECT_EQ(c.spool.path, "/etc/petrel/var/spool");
  EXPECT_TRUE(c.relay.local_domains.empty());
  EXPECT_TRUE(c.relay.relay_domains.empty());
  EXPECT_EQ(c.relay.trusted_networks.size(), 2u);
  EXPECT_TRUE(InNetworks(c.relay.trusted_networks, "127.1.2.3"));
  EXPECT_TRUE(InNetworks(c.relay.trusted_networks, "::1"));
  EXPECT_FALSE(InNetworks(c.relay.trusted_networks, "10.0.0.1"));
  EXPECT_EQ(c.local.maildir, "/etc/petrel/var/mail/{domain}/{user}");
  EXPECT_EQ(c.local.aliases, "");
  EXPECT_FALSE(c.local.users.has_value());
  EXPECT_THAT(
      c.delivery.retry_schedule,
      ElementsAre(Seconds(60), Seconds(300), Seconds(900), Seconds(1800),
                  Seconds(3600), Seconds(7200), Seconds(14400)));
  EXPECT_EQ(c.delivery.max_queue_lifetime, Seconds(5 * 86400));
  EXPECT_EQ(c.delivery.delay_warning_after, Seconds(4 * 3600));
  EXPECT_EQ(c.delivery.max_recipients_per_transaction, 100u);
  EXPECT_EQ(c.delivery.connect_timeout, Seconds(30));
  EXPECT_EQ(c.delivery.greeting_timeout, Seconds(300));
  EXPECT_EQ(c.delivery.mail_timeout, Seconds(300));
  EXPECT_EQ(c.delivery.rcpt_timeout, Seconds(300));
  EXPECT_EQ(c.delivery.data_init_timeout, Seconds(120));
  EXPECT_EQ(c.delivery.data_block_timeout, Seconds(180));
  EXPECT_EQ(c.delivery.data_end_timeout, Seconds(600));
  EXPECT_EQ(c.delivery.concurrency_per_destination, 20u);
  EXPECT_EQ(c.delivery.smtp_port, 25);
  EXPECT_THAT(c.delivery.own_addresses, ElementsAre("127.0.0.1"));
  EXPECT_TRUE(c.dns.servers.empty());
  EXPECT_TRUE(c.routes.empty());
}

TEST(ConfigTest, HostnameDefaultsToTheMachineName) {
  char buf[256] = {};
  ASSERT_EQ(gethostname(buf, sizeof buf - 1), 0);
  Result<Config> c = ParseConfig("", "/etc/petrel/petrel.toml");
  if (c) {
    EXPECT_EQ(c->server.hostname, buf);
  } else {
    // Only acceptable if the machine's name is not a domain.
    EXPECT_THAT(c.error().message(),
                HasSubstr("server.hostname: not set, and the machine's"));
  }
}

// ------------------------------------------------------- interface.md example

constexpr const char* kInterfaceExample = R"toml(
[server]
hostname = "mx.example.test"        # greeting, EHLO, Received, DSN Reporting-MTA
admin_socket = "var/petrel.sock"   # queue commands and sendmail reach the server here

[[listener]]
address = "127.0.0.1:2525"          # host:port; [::1]:2525 for IPv6
mode = "smtp"                      # smtp | submission (STARTTLS + AUTH required) | submissions (implicit TLS)

[tls]                              # optional; without it STARTTLS is not offered
certificate = "cert.pem"
private_key = "key.pem"

[limits]
max_message_size = "50MiB"         # advertised as SIZE; over it: 552 5.3.4
max_recipients = 1000              # per transaction; below 100 is a config error; over it: 452 4.5.3
max_connections = 10000
max_connections_per_ip = 100
max_received_headers = 50          # mail loop: 554 5.4.6

[spool]
path = "var/spool"

[relay]
local_domains = ["example.test"]   # delivered locally
relay_domains = []                 # accepted from anyone and relayed onward
trusted_networks = ["127.0.0.0/8", "::1/128"]   # may relay to any domain

[local]
maildir = "var/mail/{domain}/{user}"   # this folder IS the Maildir (cur/ new/ tmp/), made on first delivery;
                                       # {user} is the local-part lower-cased, "+detail" removed;
                                       # every local-part of a local domain is deliverable unless
aliases = "aliases"                    # optional: "alias: target, target"
# users = ["alice", "bob"]             # is set: then unknown local-parts get 550 5.1.1 at RCPT

[delivery]
retry_schedule = ["1m", "5m", "15m", "30m", "1h", "2h", "4h"]   # waits after a failed attempt; the
                                   # first attempt is immediate; the last wait repeats
max_queue_lifetime = "5d"          # then bounce: 4.4.7 expired
delay_warning_after = "4h"         # one delayed DSN (RFC 3464 action=delayed); "0" disables
max_recipients_per_transaction = 100   # any value from 1 up; the peer's LIMITS RCPTMAX lowers it
connect_timeout = "30s"
# RFC 5321 4.5.3.2 command timeouts, each overridable, defaults as the RFC:
greeting_timeout = "5m"
mail_timeout = "5m"
rcpt_timeout = "5m"
data_init_timeout = "2m"
data_block_timeout = "3m"
data_end_timeout = "10m"
concurrency_per_destination = 20
smtp_port = 25                     # port used for MX and implicit-MX hosts
# own_addresses = ["192.0.2.1"]    # addresses that count as this host for loop
                                   # detection; default: the listeners' addresses

[dns]
servers = []                        # "127.0.0.1:5353" or "127.0.0.1" (port 53); UDP with
                                    # TCP on truncation; empty: /etc/resolv.conf

[routes]                            # static next hops; bypass MX lookup
# "example.net" = "127.0.0.1:2600"    # exact domain; "host" alone means port 25
# ".example.net" = "10.0.0.5:25"      # leading dot: every subdomain
# "*" = "smarthost.example.org:587"   # every other non-local domain
# A route says where mail goes, not who may send it: relay permission comes
# from [relay] alone. Local domains never follow "*".
)toml";

TEST(ConfigTest, InterfaceExampleParses) {
  Config c = Parse(kInterfaceExample, "/srv/petrel/petrel.toml");
  EXPECT_EQ(c.server.hostname, "mx.example.test");
  EXPECT_EQ(c.server.admin_socket, "/srv/petrel/var/petrel.sock");
  ASSERT_EQ(c.listeners.size(), 1u);
  EXPECT_EQ(c.listeners[0].host, "127.0.0.1");
  EXPECT_EQ(c.listeners[0].port, 2525);
  ASSERT_TRUE(c.tls.has_value());
  EXPECT_EQ(c.tls->certificate, "/srv/petrel/cert.pem");
  EXPECT_EQ(c.tls->private_key, "/srv/petrel/key.pem");
  EXPECT_EQ(c.limits.max_message_size, 50u * 1024 * 1024);
  EXPECT_EQ(c.spool.path, "/srv/petrel/var/spool");
  EXPECT_THAT(c.relay.local_domains, ElementsAre("example.test"));
  EXPECT_EQ(c.local.maildir, "/srv/petrel/var/mail/{domain}/{user}");
  EXPECT_EQ(c.local.aliases, "/srv/petrel/aliases");
  EXPECT_EQ(c.delivery.retry_schedule.size(), 7u);
  EXPECT_EQ(c.delivery.data_end_timeout, Seconds(600));
  EXPECT_TRUE(c.routes.empty());
}

TEST(ConfigTest, EveryKeyIsRead) {
  Config c = Parse(R"toml(
[server]
hostname = "MX.Example.Test"
admin_socket = "/run/petrel.sock"
command_timeout = "2m"
data_timeout = "90s"
max_errors = 5

[[listener]]
address = "0.0.0.0:25"

[[listener]]
address = "[::1]:587"
mode = "submission"

[[listener]]
address = "[::]:465"
mode = "submissions"

[tls]
certificate = "/etc/ssl/c.pem"
private_key = "k.pem"

[auth]
users = "users"
failure_delay = "0"
max_failures_per_ip = 3
failure_window = "1h"
sender_login_match = false

[tls_policy]
"example.net" = "verify"
".example.org" = "encrypt"
"*" = "none"

[limits]
max_message_size = 10485760
max_recipients = 100
max_connections = 1
max_connections_per_ip = 1
max_received_headers = 30

[spool]
path = "/var/spool/petrel"

[relay]
local_domains = ["Example.TEST", "localhost"]
relay_domains = ["relay.example"]
trusted_networks = ["10.0.0.0/8", "2001:db8::/32", "192.0.2.7"]

[local]
maildir = "/home/{user}/Maildir"
users = ["Alice", "bob"]

[delivery]
retry_schedule = ["10s"]
max_queue_lifetime = "1d"
delay_warning_after = "0"
max_recipients_per_transaction = 1
connect_timeout = "5s"
greeting_timeout = "1s"
mail_timeout = "2s"
rcpt_timeout = "3s"
data_init_timeout = "4s"
data_block_timeout = "5s"
data_end_timeout = "6s"
concurrency_per_destination = 1
smtp_port = 2526
own_addresses = ["192.0.2.1", "2001:DB8::1"]
tls_policy = "encrypt"
tls_ca_file = "ca.pem"
credentials = "relay-credentials"

[dns]
servers = ["127.0.0.1:5353", "127.0.0.2", "[::1]:53", "[::2]"]
)toml");
  EXPECT_EQ(c.server.hostname, "MX.Example.Test");
  EXPECT_EQ(c.server.admin_socket, "/run/petrel.sock");
  EXPECT_EQ(c.server.command_timeout, Seconds(120));
  EXPECT_EQ(c.server.data_timeout, Seconds(90));
  EXPECT_EQ(c.server.max_errors, 5);
  ASSERT_EQ(c.listeners.size(), 3u);
  EXPECT_EQ(c.listeners[0].host, "0.0.0.0");
  EXPECT_EQ(c.listeners[0].port, 25);
  EXPECT_EQ(c.listeners[1].host, "::1");
  EXPECT_EQ(c.listeners[1].port, 587);
  EXPECT_EQ(c.listeners[1].mode, ListenerMode::kSubmission);
  EXPECT_EQ(c.listeners[2].host, "::");
  EXPECT_EQ(c.listeners[2].mode, ListenerMode::kSubmissions);
  EXPECT_EQ(ListenerModeName(c.listeners[2].mode), "submissions");
  EXPECT_EQ(c.tls->certificate, "/etc/ssl/c.pem");
  EXPECT_EQ(c.tls->private_key, "/etc/petrel/k.pem");
  ASSERT_TRUE(c.auth.has_value());
  EXPECT_EQ(c.auth->users, "/etc/petrel/users");
  EXPECT_EQ(c.auth->failure_delay, Seconds(0));
  EXPECT_EQ(c.auth->max_failures_per_ip, 3u);
  EXPECT_EQ(c.auth->failure_window, Seconds(3600));
  EXPECT_FALSE(c.auth->sender_login_match);
  EXPECT_EQ(c.delivery.tls_policy, TlsPolicy::kEncrypt);
  EXPECT_EQ(c.delivery.tls_ca_file, "/etc/petrel/ca.pem");
  EXPECT_EQ(c.delivery.credentials, "/etc/petrel/relay-credentials");
  EXPECT_EQ(c.tls_policies.at("example.net"), TlsPolicy::kVerify);
  EXPECT_EQ(c.tls_policies.at(".example.org"), TlsPolicy::kEncrypt);
  EXPECT_EQ(c.tls_policies.at("*"), TlsPolicy::kNone);
  EXPECT_EQ(c.limits.max_message_size, 10485760u);
  EXPECT_EQ(c.limits.max_recipients, 100u);
  EXPECT_EQ(c.limits.max_connections, 1u);
  EXPECT_EQ(c.limits.max_connections_per_ip, 1u);
  EXPECT_EQ(c.limits.max_received_headers, 30u);
  EXPECT_EQ(c.spool.path, "/var/spool/petrel");
  EXPECT_THAT(c.relay.local_domains, ElementsAre("example.test", "localhost"));
  EXPECT_THAT(c.relay.relay_domains, ElementsAre("relay.example"));
  EXPECT_EQ(c.relay.trusted_networks.size(), 3u);
  EXPECT_TRUE(InNetworks(c.relay.trusted_networks, "192.0.2.7"));
  EXPECT_FALSE(InNetworks(c.relay.trusted_networks, "192.0.2.8"));
  EXPECT_FALSE(InNetworks(c.relay.trusted_networks, "127.0.0.1"));
  EXPECT_EQ(c.local.maildir, "/home/{user}/Maildir");
  ASSERT_TRUE(c.local.users.has_value());
  EXPECT_THAT(*c.local.users, ElementsAre("alice", "bob"));
  EXPECT_THAT(c.delivery.retry_schedule, ElementsAre(Seconds(10)));
  EXPECT_EQ(c.delivery.max_queue_lifetime, Seconds(86400));
  EXPECT_EQ(c.delivery.delay_warning_after, Seconds(0));
  EXPECT_EQ(c.delivery.max_recipients_per_transaction, 1u);
  EXPECT_EQ(c.delivery.connect_timeout, Seconds(5));
  EXPECT_EQ(c.delivery.greeting_timeout, Seconds(1));
  EXPECT_EQ(c.delivery.mail_timeout, Seconds(2));
  EXPECT_EQ(c.delivery.rcpt_timeout, Seconds(3));
  EXPECT_EQ(c.delivery.data_init_timeout, Seconds(4));
  EXPECT_EQ(c.delivery.data_block_timeout, Seconds(5));
  EXPECT_EQ(c.delivery.data_end_timeout, Seconds(6));
  EXPECT_EQ(c.delivery.concurrency_per_destination, 1u);
  EXPECT_EQ(c.delivery.smtp_port, 2526);
  EXPECT_THAT(c.delivery.own_addresses,
              ElementsAre("192.0.2.1", "2001:db8::1"));
  EXPECT_THAT(c.dns.servers, ElementsAre("127.0.0.1:5353", "127.0.0.2:53",
                                         "[::1]:53", "[::2]:53"));
}

TEST(ConfigTest, OwnAddressesDefaultToTheListeners) {
  Config c = Parse(std::string(kHost) + R"toml(
[[listener]]
address = "192.0.2.1:25"
[[listener]]
address = "192.0.2.1:2525"
[[listener]]
address = "[2001:db8::1]:25"
)toml");
  EXPECT_THAT(c.delivery.own_addresses,
              ElementsAre("192.0.2.1", "2001:db8::1"));
}

// ------------------------------------------------------------------ errors

TEST(ConfigErrorTest, MessageNamesFileLineAndKey) {
  EXPECT_EQ(Errors("[limits]\nmax_recipients = 50\n", "petrel.toml"),
            "petrel.toml:2: limits.max_recipients: must be at least 100 (RFC "
            "5321 4.5.3.1.8), got 50");
}

TEST(ConfigErrorTest, SyntaxErrorGivesLineAndColumn) {
  std::string e = Errors("[server]\nhostname = \n", "petrel.toml");
  EXPECT_THAT(e, HasSubstr("petrel.toml:2:"));
  EXPECT_THAT(e, HasSubstr("TOML syntax error"));
  EXPECT_THAT(Errors("a = 1\na = 2\n"), HasSubstr("t.toml:2:"));
}

TEST(ConfigErrorTest, UnknownKeys) {
  EXPECT_EQ(Errors("[serverr]\n"),
            "t.toml:1: serverr: unknown key (did you mean server?)");
  EXPECT_EQ(Errors(std::string(kHost) + "max_recipient = 100\n"),
            "t.toml:3: server.max_recipient: unknown key");
  EXPECT_EQ(Errors("[limits]\nmax_recipient = 100\n"),
            "t.toml:2: limits.max_recipient: unknown key (did you mean "
            "limits.max_recipients?)");
  EXPECT_EQ(Errors("[[listener]]\naddress = \"127.0.0.1:25\"\nport = 25\n"),
            "t.toml:3: listener[0].port: unknown key");
  EXPECT_EQ(Errors("[tls]\ncertificate = \"a\"\nprivate_key = \"b\"\n"
                   "chain = \"c\"\n"),
            "t.toml:4: tls.chain: unknown key");
  EXPECT_EQ(Errors("[delivery.extra]\nx = 1\n"),
            "t.toml:1: delivery.extra: unknown key");
  EXPECT_EQ(Errors("top = 1\n"), "t.toml:1: top: unknown key");
}

TEST(ConfigErrorTest, WrongTypes) {
  EXPECT_EQ(Errors("[server]\nhostname = 42\n"),
            "t.toml:2: server.hostname: expected a string, got an integer");
  EXPECT_EQ(Errors("[limits]\nmax_recipients = \"1000\"\n"),
            "t.toml:2: limits.max_recipients: expected an integer, got a "
            "string");
  EXPECT_THAT(Errors("[delivery]\nconnect_timeout = 30\n"),
              HasSubstr("t.toml:2: delivery.connect_timeout: expected a "
                        "duration string"));
  EXPECT_THAT(Errors("[relay]\nlocal_domains = \"example.test\"\n"),
              HasSubstr("t.toml:2: relay.local_domains: expected an array of "
                        "strings, got a string"));
  EXPECT_EQ(Errors("[relay]\nlocal_domains = [\"a.test\", 3]\n"),
            "t.toml:2: relay.local_domains[1]: expected a string, got an "
            "integer");
  EXPECT_THAT(Errors("limits = 3\n"),
              HasSubstr("t.toml:1: limits: expected a table"));
  EXPECT_THAT(Errors("[listener]\naddress = \"127.0.0.1:25\"\n"),
              HasSubstr("t.toml:1: listener: expected an array of tables"));
  EXPECT_THAT(Errors("[limits]\nmax_message_size = 1.5\n"),
              HasSubstr("limits.max_message_size: expected a size"));
}

TEST(ConfigErrorTest, Server) {
  EXPECT_EQ(Errors("[server]\nhostname = \"bad_name!\"\n"),
            "t.toml:2: server.hostname: \"bad_name!\" is not a valid domain "
            "name");
  EXPECT_THAT(Errors(std::string(kHost) + "max_errors = 0\n"),
              HasSubstr("t.toml:3: server.max_errors: must be at least 1"));
  EXPECT_THAT(Errors(std::string(kHost) + "command_timeout = \"0\"\n"),
              HasSubstr("t.toml:3: server.command_timeout: must be at least "
                        "1s"));
  EXPECT_THAT(Errors(std::string(kHost) + "admin_socket = \"\"\n"),
              HasSubstr("t.toml:3: server.admin_socket: must not be empty"));
  EXPECT_THAT(Errors(std::string(kHost) + "admin_socket = \"/" +
                     std::string(200, 'a') + "\"\n"),
              HasSubstr("t.toml:3: server.admin_socket: "));
}

TEST(ConfigTest, GreetPauseAndDataRate) {
  Config c = Parse(std::string(kHost) +
                   "greet_pause = \"2s\"\nmin_data_rate = 0\n"
                   "[limits]\nmax_header_size = \"64KiB\"\n");
  EXPECT_EQ(c.server.greet_pause.count(), 2);
  EXPECT_EQ(c.server.min_data_rate, 0u);
  EXPECT_EQ(c.limits.max_header_size, 64u * 1024);
  Config d = Parse(std::string(kHost) + "[spool]\nmin_free_space = 0\n");
  EXPECT_EQ(d.spool.min_free_space, 0u);
  EXPECT_EQ(Parse(kHost).spool.min_free_space, 100u * 1024 * 1024);
  EXPECT_EQ(Errors(std::string(kHost) + "command_timeout = \"5s\"\n"
                                        "greet_pause = \"10s\"\n"),
            "t.toml:4: server.greet_pause: must not be longer than "
            "server.command_timeout");
  EXPECT_EQ(Errors(std::string(kHost) + "min_data_rate = -1\n"),
            "t.toml:3: server.min_data_rate: must be at least 0, got -1");
}

TEST(ConfigErrorTest, Limits) {
  EXPECT_EQ(Errors("[limits]\nmax_message_size = 1000\n"),
            "t.toml:2: limits.max_message_size: must be at least 65536 bytes "
            "(RFC 5321 4.5.3.1.7), got 1000");
  EXPECT_EQ(Errors("[limits]\nmax_message_size = \"32KiB\"\n"),
            "t.toml:2: limits.max_message_size: must be at least 65536 bytes "
            "(RFC 5321 4.5.3.1.7), got \"32KiB\"");
  EXPECT_THAT(
      Errors("[limits]\nmax_message_size = \"50MB\"\n"),
      HasSubstr("t.toml:2: limits.max_message_size: unknown size unit"));
  EXPECT_THAT(Errors("[limits]\nmax_message_size = -1\n"),
              HasSubstr("t.toml:2: limits.max_message_size: must not be "
                        "negative"));
  EXPECT_EQ(Errors("[limits]\nmax_header_size = 100\n"),
            "t.toml:2: limits.max_header_size: must be at least 1024 bytes, "
            "got 100");
  EXPECT_EQ(Errors("[limits]\nmax_connections = 0\n"),
            "t.toml:2: limits.max_connections: must be at least 1, got 0");
  EXPECT_EQ(Errors("[limits]\nmax_connections_per_ip = -5\n"),
            "t.toml:2: limits.max_connections_per_ip: must be at least 1, got "
            "-5");
  EXPECT_EQ(Errors("[limits]\nmax_received_headers = 0\n"),
            "t.toml:2: limits.max_received_headers: must be at least 1, got 0");
  EXPECT_EQ(Errors("[limits]\nmax_connections = 5000000000\n"),
            "t.toml:2: limits.max_connections: must be at most 4294967295, got "
            "5000000000");
  // Exactly the RFC minimums are fine.
  Config c = Parse(std::string(kHost) +
                   "[limits]\nmax_message_size = \"64KiB\"\n"
                   "max_recipients = 100\n");
  EXPECT_EQ(c.limits.max_message_size, 65536u);
}

TEST(ConfigErrorTest, Listeners) {
  auto listener = [](const std::string& address) {
    return Errors("[[listener]]\naddress = \"" + address + "\"\n");
  };
  EXPECT_THAT(listener("127.0.0.1"),
              HasSubstr("t.toml:2: listener[0].address: missing port"));
  EXPECT_THAT(listener("localhost:25"),
              HasSubstr("t.toml:2: listener[0].address: host must be an IP "
                        "address, got \"localhost\""));
  EXPECT_THAT(listener("::1:2525"),
              HasSubstr("listener[0].address: an IPv6 address needs "
                        "brackets"));
  EXPECT_THAT(listener("127.0.0.1:0"),
              HasSubstr("port must be a number from 1 to 65535"));
  EXPECT_THAT(listener("127.0.0.1:65536"),
              HasSubstr("port must be a number from 1 to 65535"));
  EXPECT_THAT(listener("127.0.0.1:x"),
              HasSubstr("port must be a number from 1 to 65535"));
  EXPECT_THAT(listener("[127.0.0.1]:25"),
              HasSubstr("in brackets is not an IPv6 address"));
  EXPECT_THAT(listener("[::1:25"), HasSubstr("missing \"]\""));

  EXPECT_EQ(Errors("[[listener]]\naddress = \"127.0.0.1:25\"\n"
                   "[[listener]]\naddress = \"127.0.0.1:25\"\n"),
            "t.toml:4: listener[1].address: \"127.0.0.1:25\" is already used "
            "by listener[0]");
  // The same address written differently is still the same.
  EXPECT_THAT(Errors("[[listener]]\naddress = \"[::1]:25\"\n"
                     "[[listener]]\naddress = \"[0:0::1]:25\"\n"),
              HasSubstr("is already used by listener[0]"));
  EXPECT_EQ(Errors("[[listener]]\nmode = \"smtp\"\n"),
            "t.toml:1: listener[0].address: missing (\"host:port\", e.g. "
            "\"127.0.0.1:2525\")");
  EXPECT_EQ(Errors("[[listener]]\naddress = \"127.0.0.1:25\"\nmode = "
                   "\"lmtp\"\n"),
            "t.toml:3: listener[0].mode: expected \"smtp\", \"submission\" or "
            "\"submissions\", got \"lmtp\"");
  EXPECT_EQ(Errors("[[listener]]\naddress = \"127.0.0.1:465\"\nmode = "
                   "\"submissions\"\n"),
            "t.toml:3: listener[0].mode: \"submissions\" needs a [tls] "
            "section");
  EXPECT_EQ(Errors("[tls]\ncertificate = \"c\"\nprivate_key = \"k\"\n"
                   "[[listener]]\naddress = \"127.0.0.1:587\"\nmode = "
                   "\"submission\"\n"),
            "t.toml:6: listener[0].mode: \"submission\" needs an [auth] "
            "section (users = \"...\")");
  EXPECT_EQ(Errors("[auth]\nfailure_delay = \"1s\"\n"),
            "t.toml:1: auth.users: missing (required when [auth] is present)");
  EXPECT_EQ(Errors("[auth]\nusers = \"u\"\nmax_failures_per_ip = 0\n"),
            "t.toml:3: auth.max_failures_per_ip: must be at least 1, got 0");
  EXPECT_EQ(Errors("[delivery]\ntls_policy = \"dane\"\n"),
            "t.toml:2: delivery.tls_policy: expected \"none\", \"may\", "
            "\"encrypt\" or \"verify\", got \"dane\"");
  EXPECT_EQ(Errors("[tls_policy]\n\"a..b\" = \"may\"\n"),
            "t.toml:2: tls_policy.\"a..b\": expected a quoted domain, "
            "\".domain\" (every subdomain) or \"*\" as the key");
  EXPECT_THAT(Errors("listener = []\n"),
              HasSubstr("t.toml:1: listener: at least one listener"));
}

TEST(ConfigErrorTest, Tls) {
  EXPECT_EQ(Errors("[tls]\ncertificate = \"c.pem\"\n"),
            "t.toml:1: tls.private_key: missing (required when [tls] is "
            "present)");
  // ParseConfig does not look at the file system.
  Config c = Parse(std::string(kHost) +
                   "[tls]\ncertificate = \"/nonexistent/c.pem\"\n"
                   "private_key = \"/nonexistent/k.pem\"\n");
  EXPECT_EQ(c.tls->certificate, "/nonexistent/c.pem");
}

TEST(ConfigErrorTest, Relay) {
  EXPECT_EQ(Errors("[relay]\nlocal_domains = [\"ok.test\", \"bad domain\"]\n"),
            "t.toml:2: relay.local_domains[1]: \"bad domain\" is not a valid "
            "domain name");
  EXPECT_EQ(Errors("[relay]\nlocal_domains = [\"a.test\"]\n"
                   "relay_domains = [\"A.test\"]\n"),
            "t.toml:3: relay.relay_domains: \"a.test\" is also in "
            "relay.local_domains");
  EXPECT_THAT(Errors("[relay]\ntrusted_networks = [\"10.0.0.0/33\"]\n"),
              HasSubstr("t.toml:2: relay.trusted_networks[0]: prefix length "
                        "must be 0 to 32"));
  EXPECT_THAT(Errors("[relay]\ntrusted_networks = [\"::/129\"]\n"),
              HasSubstr("prefix length must be 0 to 128"));
  EXPECT_THAT(Errors("[relay]\ntrusted_networks = [\"example.test\"]\n"),
              HasSubstr("relay.trusted_networks[0]: expected an address or a "
                        "CIDR block"));
  EXPECT_EQ(Errors("[relay]\ntrusted_networks = [\"10.1.2.3/8\"]\n"),
            "t.toml:2: relay.trusted_networks[0]: \"10.1.2.3/8\" has bits set "
            "after the prefix; did you mean \"10.0.0.0/8\"?");
  EXPECT_THAT(Errors("[relay]\ntrusted_networks = [\"2001:db8::1/32\"]\n"),
              HasSubstr("did you mean \"2001:db8::/32\"?"));
}

TEST(ConfigErrorTest, Local) {
  EXPECT_EQ(Errors("[local]\nmaildir = \"var/mail/{domain}\"\n"),
            "t.toml:2: local.maildir: must contain {user}, got "
            "\"var/mail/{domain}\"");
  EXPECT_EQ(Errors("[local]\nmaildir = \"var/{host}/{user}\"\n"),
            "t.toml:2: local.maildir: unknown placeholder {host} (use {user} "
            "and {domain})");
  EXPECT_THAT(Errors("[local]\nusers = [\"a+b\"]\n"),
              HasSubstr("t.toml:2: local.users[0]: must not contain \"+\""));
  EXPECT_THAT(Errors("[local]\nusers = [\"a@b\"]\n"),
              HasSubstr("t.toml:2: local.users[0]: a user is a local-part"));
  EXPECT_THAT(Errors("[local]\naliases = \"\"\n"),
              HasSubstr("t.toml:2: local.aliases: must not be empty"));
}

TEST(ConfigErrorTest, Delivery) {
  EXPECT_EQ(Errors("[delivery]\nretry_schedule = []\n"),
            "t.toml:2: delivery.retry_schedule: must not be empty (the last "
            "wait repeats)");
  EXPECT_EQ(Errors("[delivery]\nretry_schedule = [\"1m\", \"0\", \"5x\"]\n"),
            "t.toml:2: delivery.retry_schedule[1]: must be at least 1s, got "
            "\"0\"\n"
            "t.toml:2: delivery.retry_schedule[2]: unknown duration unit in "
            "\"5x\" (use s, m, h or d)");
  EXPECT_EQ(Errors("[delivery]\nmax_queue_lifetime = \"0\"\n"),
            "t.toml:2: delivery.max_queue_lifetime: must be at least 1s, got "
            "\"0\"");
  EXPECT_THAT(Errors("[delivery]\ndelay_warning_after = \"soon\"\n"),
              HasSubstr("t.toml:2: delivery.delay_warning_after: expected a "
                        "duration"));
  EXPECT_EQ(Errors("[delivery]\nsmtp_port = 0\n"),
            "t.toml:2: delivery.smtp_port: must be at least 1, got 0");
  EXPECT_EQ(Errors("[delivery]\nsmtp_port = 70000\n"),
            "t.toml:2: delivery.smtp_port: must be at most 65535, got 70000");
  EXPECT_EQ(Errors("[delivery]\nconcurrency_per_destination = 0\n"),
            "t.toml:2: delivery.concurrency_per_destination: must be at least "
            "1, got 0");
  EXPECT_EQ(Errors("[delivery]\nmax_recipients_per_transaction = 0\n"),
            "t.toml:2: delivery.max_recipients_per_transaction: must be at "
            "least 1, got 0");
  for (const char* key :
       {"connect_timeout", "greeting_timeout", "mail_timeout", "rcpt_timeout",
        "data_init_timeout", "data_block_timeout", "data_end_timeout"}) {
    EXPECT_EQ(Errors(std::string("[delivery]\n") + key + " = \"0\"\n"),
              std::string("t.toml:2: delivery.") + key +
                  ": must be at least 1s, got \"0\"");
  }
  EXPECT_EQ(Errors("[delivery]\nown_addresses = [\"mx.example.test\"]\n"),
            "t.toml:2: delivery.own_addresses[0]: expected an IP address, got "
            "\"mx.example.test\"");
}

TEST(ConfigErrorTest, Dns) {
  EXPECT_THAT(Errors("[dns]\nservers = [\"ns.example.test\"]\n"),
              HasSubstr("t.toml:2: dns.servers[0]: host must be an IP "
                        "address"));
  EXPECT_THAT(Errors("[dns]\nservers = [\"::1\"]\n"),
              HasSubstr("t.toml:2: dns.servers[0]: an IPv6 address needs "
                        "brackets, as in \"[::1]\" or \"[::1]:2525\""));
  EXPECT_THAT(Errors("[dns]\nservers = [\"127.0.0.1:0\"]\n"),
              HasSubstr("t.toml:2: dns.servers[0]: port must be"));
}

TEST(ConfigErrorTest, SeveralErrorsAreReportedTogetherInLineOrder) {
  std::string e = Errors(R"toml([server]
hostname = "mx.example.test"
bogus = 1

[limits]
max_recipients = 50
max_message_size = 10

[[listener]]
address = "localhost:25"

[delivery]
retry_schedule = []
connect_timeout = 30
)toml");
  EXPECT_THAT(Lines(e),
              ElementsAre(HasSubstr("t.toml:3: server.bogus: unknown key"),
                          HasSubstr("t.toml:6: limits.max_recipients:"),
                          HasSubstr("t.toml:7: limits.max_message_size:"),
                          HasSubstr("t.toml:10: listener[0].address:"),
                          HasSubstr("t.toml:13: delivery.retry_schedule:"),
                          HasSubstr("t.toml:14: delivery.connect_timeout:")));
}

// ------------------------------------------------------------------ routes

TEST(ConfigTest, Routes) {
  Config c = Parse(std::string(kHost) + R"toml(
[routes]
"example.net" = "127.0.0.1:2600"
".Example.NET" = "10.0.0.5"
"v6.example" = "[::1]:2600"
"v6b.example" = "[2001:db8::5]"
"*" = "Smarthost.example.org:587"
)toml");
  ASSERT_EQ(c.routes.size(), 5u);
  EXPECT_EQ(c.routes["example.net"].host, "127.0.0.1");
  EXPECT_EQ(c.routes["example.net"].port, 2600);
  EXPECT_EQ(c.routes[".example.net"].host, "10.0.0.5");
  EXPECT_EQ(c.routes[".example.net"].port, 25);
  EXPECT_EQ(c.routes["v6.example"].host, "::1");
  EXPECT_EQ(c.routes["v6.example"].port, 2600);
  EXPECT_EQ(c.routes["v6b.example"].host, "2001:db8::5");
  EXPECT_EQ(c.routes["v6b.example"].port, 25);
  EXPECT_EQ(c.routes["*"].host, "smarthost.example.org");
  EXPECT_EQ(c.routes["*"].port, 587);
}

TEST(ConfigErrorTest, Routes) {
  EXPECT_THAT(Errors("[routes]\nexample.net = \"127.0.0.1\"\n"),
              HasSubstr("t.toml:2: routes.example: expected a string \"host\" "
                        "or \"host:port\", got a table; quote domain keys"));
  EXPECT_THAT(Errors("[routes]\n\"bad domain\" = \"127.0.0.1\"\n"),
              HasSubstr("t.toml:2: routes.\"bad domain\": expected a domain"));
  EXPECT_THAT(Errors("[routes]\n\"*.example\" = \"127.0.0.1\"\n"),
              HasSubstr("t.toml:2: routes.\"*.example\": expected a domain"));
  EXPECT_THAT(Errors("[routes]\n\"a.example\" = \"127.0.0.1:99999\"\n"),
              HasSubstr("t.toml:2: routes.\"a.example\": port must be"));
  EXPECT_THAT(Errors("[routes]\n\"a.example\" = \"::1\"\n"),
              HasSubstr("t.toml:2: routes.\"a.example\": an IPv6 address "
                        "needs brackets"));
  EXPECT_THAT(Errors("[routes]\n\"a.example\" = 25\n"),
              HasSubstr("t.toml:2: routes.\"a.example\": expected a string, "
                        "got an integer"));
  EXPECT_THAT(Errors("[routes]\n\"a.example\" = \"x\"\n\"A.example\" = "
                     "\"y\"\n"),
              HasSubstr("is given twice"));
}

// ---------------------------------------------------------- relative paths

TEST(ConfigTest, RelativePathsFollowTheConfigFile) {
  Config c = Parse(std::string(kHost) + R"toml(
admin_socket = "run/../p.sock"
[spool]
path = "./q"
[local]
maildir = "../mail/{domain}/{user}/"
aliases = "/etc/aliases"
[tls]
certificate = "tls/c.pem"
private_key = "/k.pem"
)toml",
                   "/etc/petrel/petrel.toml");
  EXPECT_EQ(c.server.admin_socket, "/etc/petrel/p.sock");
  EXPECT_EQ(c.spool.path, "/etc/petrel/q");
  EXPECT_EQ(c.local.maildir, "/etc/mail/{domain}/{user}/");
  EXPECT_EQ(c.local.aliases, "/etc/aliases");
  EXPECT_EQ(c.tls->certificate, "/etc/petrel/tls/c.pem");
  EXPECT_EQ(c.tls->private_key, "/k.pem");
}

TEST(ConfigTest, RelativeConfigPathIsFromTheWorkingDirectory) {
  Config c = Parse(kHost, "conf/petrel.toml");
  fs::path cwd = fs::current_path();
  EXPECT_EQ(c.path, (cwd / "conf/petrel.toml").lexically_normal().string());
  EXPECT_EQ(c.spool.path, (cwd / "conf/var/spool").lexically_normal().string());
}

// --------------------------------------------------------------- LoadConfig

class LoadConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "petrel-config-XXXXXX");
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
    return (dir_ / name).string();
  }
  fs::path dir_;
};

TEST_F(LoadConfigTest, ChecksThatFilesExist) {
  std::string path = Write("p.toml", std::string(kHost) +
                                         "[tls]\ncertificate = \"c.pem\"\n"
                                         "private_key = \"k.pem\"\n"
                                         "[local]\naliases = \"aliases\"\n");
  Result<Config> c = LoadConfig(path);
  ASSERT_FALSE(c.has_value());
  EXPECT_THAT(
      Lines(c.error().message()),
      ElementsAre(path + ":4: tls.certificate: file \"" +
                      (dir_ / "c.pem").string() + "\" does not exist",
                  path + ":5: tls.private_key: file \"" +
                      (dir_ / "k.pem").string() + "\" does not exist",
                  path + ":7: local.aliases: file \"" +
                      (dir_ / "aliases").string() + "\" does not exist"));
  Write("c.pem", "x");
  Write("k.pem", "x");
  Write("aliases", "");
  c = LoadConfig(path);
  ASSERT_TRUE(c.has_value()) << c.error().message();
  EXPECT_EQ(c->path, path);
  EXPECT_EQ(c->tls->certificate, (dir_ / "c.pem").string());
  EXPECT_EQ(c->spool.path, (dir_ / "var/spool").string());
}

TEST_F(LoadConfigTest, MissingFileIsNotFound) {
  Result<Config> c = LoadConfig((dir_ / "none.toml").string());
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().code(), Status::Code::kNotFound);
  EXPECT_THAT(c.error().message(), HasSubstr("none.toml: cannot open"));
}

TEST_F(LoadConfigTest, ErrorsUseThePathAsGiven) {
  std::string path = Write("p.toml", "[limits]\nmax_recipients = 1\n");
  Result<Config> c = LoadConfig(path);
  ASSERT_FALSE(c.has_value());
  EXPECT_THAT(c.error().message(),
              HasSubstr(path + ":2: limits.max_recipients:"));
}

TEST(RepoConfigTest, TheRepositoryPetrelTomlLoads) {
  const std::string path = std::string(PETREL_SOURCE_DIR) + "/petrel.toml";
  Result<Config> c = LoadConfig(path);
  ASSERT_TRUE(c.has_value()) << c.error().message();
  EXPECT_EQ(c->server.hostname, "localhost");
  ASSERT_EQ(c->listeners.size(), 1u);
  EXPECT_EQ(c->listeners[0].host, "127.0.0.1");
  EXPECT_EQ(c->listeners[0].port, 2525);
  EXPECT_EQ(c->server.admin_socket,
            std::string(PETREL_SOURCE_DIR) + "/var/petrel.sock");
  EXPECT_EQ(c->spool.path, std::string(PETREL_SOURCE_DIR) + "/var/spool");
  EXPECT_THAT(c->relay.local_domains, ElementsAre("localhost"));
  EXPECT_EQ(c->local.maildir,
            std::string(PETREL_SOURCE_DIR) + "/var/mail/{domain}/{user}");
}

// ------------------------------------------------------------------- CIDR

TEST(NetworkTest, Ipv4) {
  std::vector<Network> n = {Net("10.0.0.0/8"), Net("192.168.1.0/24"),
                            Net("172.16.0.0/12"), Net("198.51.100.7")};
  EXPECT_TRUE(InNetworks(n, "10.255.255.255"));
  EXPECT_TRUE(InNetworks(n, "192.168.1.200"));
  EXPECT_FALSE(InNetworks(n, "192.168.2.1"));
  EXPECT_TRUE(InNetworks(n, "172.31.0.1"));
  EXPECT_FALSE(InNetworks(n, "172.32.0.1"));
  EXPECT_TRUE(InNetworks(n, "198.51.100.7"));
  EXPECT_FALSE(InNetworks(n, "198.51.100.8"));
  EXPECT_FALSE(InNetworks(n, "11.0.0.1"));
  EXPECT_FALSE(InNetworks(n, "::1"));
  EXPECT_FALSE(InNetworks(n, "not an address"));
  EXPECT_FALSE(InNetworks(n, ""));
  // A dual-stack socket's view of an IPv4 peer.
  EXPECT_TRUE(InNetworks(n, "::ffff:10.1.2.3"));
  EXPECT_FALSE(InNetworks(n, "::ffff:11.1.2.3"));
  EXPECT_TRUE(InNetworks({Net("0.0.0.0/0")}, "203.0.113.9"));
  EXPECT_FALSE(InNetworks({}, "127.0.0.1"));
}

TEST(NetworkTest, Ipv6) {
  std::vector<Network> n = {Net("2001:db8::/32"), Net("::1/128"),
                            Net("[fe80::]/10"), Net("2001:db9:0:8000::/65")};
  EXPECT_TRUE(InNetworks(n, "2001:db8:ffff::1"));
  EXPECT_TRUE(InNetworks(n, "[2001:DB8::5]"));
  EXPECT_FALSE(InNetworks(n, "2001:db9::1"));
  EXPECT_TRUE(InNetworks(n, "::1"));
  EXPECT_FALSE(InNetworks(n, "::2"));
  EXPECT_TRUE(InNetworks(n, "fe80::1%eth0"));
  EXPECT_TRUE(InNetworks(n, "febf::1"));
  EXPECT_FALSE(InNetworks(n, "fec0::1"));
  EXPECT_TRUE(InNetworks(n, "2001:db9:0:8000:7fff::1"));
  EXPECT_FALSE(InNetworks(n, "2001:db9:0:8000:8000::1"));
  EXPECT_FALSE(InNetworks(n, "2001:db9:0:8001::1"));
  EXPECT_FALSE(InNetworks(n, "127.0.0.1"));
  EXPECT_TRUE(InNetworks({Net("::/0")}, "2001:db8::1"));
}

TEST(NetworkTest, ParseNetwork) {
  Network n = Net("192.0.2.1");
  EXPECT_EQ(n.family, 4);
  EXPECT_EQ(n.prefix, 32);
  n = Net("2001:db8::1");
  EXPECT_EQ(n.family, 6);
  EXPECT_EQ(n.prefix, 128);
  EXPECT_FALSE(ParseNetwork("10.0.0.0/").has_value());
  EXPECT_FALSE(ParseNetwork("10.0.0.0/-1").has_value());
  EXPECT_FALSE(ParseNetwork("10.0.0/8").has_value());
  EXPECT_FALSE(ParseNetwork("10.0.0.1/24").has_value());
  EXPECT_FALSE(ParseNetwork("").has_value());
}

}  // namespace
}  // namespace petrel::config
