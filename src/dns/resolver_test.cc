// Resolver against a real dnsmasq on 127.0.0.1 and a free port, started once
// for the suite and killed in its teardown (and by the kernel if this test
// dies: PR_SET_PDEATHSIG). Skipped only when dnsmasq cannot be run.
//
// The zone, all under the local zone "test" (--local=/test/ makes unknown
// names NXDOMAIN; names outside it get REFUSED, there is no upstream):
//   example.test   MX 10 mx1.example.test, MX 20 mx2.example.test
//   mx1.example.test  A 127.0.0.1, AAAA ::1
//   equal.test     MX 10 a.equal.test, MX 10 b.equal.test
//   nullmx.test    MX 0 .            (--mx-host)
//   nullrr.test    MX 0 .            (--dns-rr, hand-encoded RDATA)
//   aonly.test     A 127.0.0.2, no MX (implicit MX)
//   big.test       30 MX records: over 512 octets, so TC and then TCP
//   badmx.test     MX 10 -bad.test   (not a host name)
//   alias.test     CNAME mx1.example.test
#include "dns/resolver.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace petrel::dns {
namespace {

using std::chrono::milliseconds;

std::string FindDnsmasq() {
  for (const char* path :
       {"/usr/sbin/dnsmasq", "/usr/bin/dnsmasq", "/usr/local/sbin/dnsmasq"}) {
    if (access(path, X_OK) == 0) return path;
  }
  return "";
}

// A port that is free for both UDP and TCP on 127.0.0.1 right now.
int FreePort() {
  for (int attempt = 0; attempt < 50; ++attempt) {
    int udp = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (bind(udp, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        getsockname(udp, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      close(udp);
      continue;
    }
    int tcp = socket(AF_INET, SOCK_STREAM, 0);
    bool ok = bind(tcp, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    close(tcp);
    close(udp);
    if (ok) return ntohs(addr.sin_port);
  }
  return 0;
}

bool TcpConnects(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  close(fd);
  return ok;
}

// One dnsmasq child process serving `records` (dnsmasq options).
class Dnsmasq {
 public:
  // Empty string on success, else why it did not start.
  std::string Start(const std::string& binary,
                    const std::vector<std::string>& records) {
    for (int attempt = 0; attempt < 5; ++attempt) {
      port_ = FreePort();
      if (port_ == 0) return "no free port";
      std::vector<std::string> args = {
          binary,
          "--no-daemon",
          "--conf-file=/dev/null",
          "--no-resolv",
          "--no-hosts",
          "--pid-file=",
          "--port=" + std::to_string(port_),
          "--listen-address=127.0.0.1",
          "--bind-interfaces",
          "--local=/test/",
      };
      args.insert(args.end(), records.begin(), records.end());
      std::vector<char*> argv;
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      pid_ = fork();
      if (pid_ < 0) return "fork failed";
      if (pid_ == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int null_fd = open("/dev/null", O_RDWR);
        dup2(null_fd, STDIN_FILENO);
        dup2(null_fd, STDOUT_FILENO);
        dup2(null_fd, STDERR_FILENO);
        execv(argv[0], argv.data());
        _exit(127);
      }
      auto deadline =
          std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (std::chrono::steady_clock::now() < deadline) {
        int status;
        if (waitpid(pid_, &status, WNOHANG) == pid_) {
          pid_ = -1;
          if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
            return "cannot execute " + binary;
          }
          break;  // probably lost the port to someone: try another
        }
        if (TcpConnects(port_)) return "";
        std::this_thread::sleep_for(milliseconds(20));
      }
      Stop();
    }
    return "dnsmasq did not start";
  }

  void Stop() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }

  int port() const { return port_; }
  std::string server() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
};

std::vector<std::string> ZoneRecords() {
  std::vector<std::string> records = {
      "--mx-host=example.test,mx1.example.test,10",
      "--mx-host=example.test,mx2.example.test,20",
      "--host-record=mx1.example.test,127.0.0.1,::1",
      "--mx-host=equal.test,a.equal.test,10",
      "--mx-host=equal.test,b.equal.test,10",
      "--mx-host=nullmx.test,.,0",
      // Preference 0, then the root name (one zero octet).
      "--dns-rr=nullrr.test,15,000000",
      "--host-record=aonly.test,127.0.0.2",
      // Preference 10, then "-bad.test".
      "--dns-rr=badmx.test,15,000a042d626164047465737400",
      "--cname=alias.test,mx1.example.test",
  };
  for (int i = 0; i < 30; ++i) {
    char host[64];
    std::snprintf(host, sizeof host, "host-number-%02d.big.test", i);
    records.push_back("--mx-host=big.test," + std::string(host) + "," +
                      std::to_string(10 + i));
  }
  return records;
}

class ResolverTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string binary = FindDnsmasq();
    if (binary.empty()) {
      skip_reason_ = new std::string("dnsmasq is not installed");
      return;
    }
    dnsmasq_ = new Dnsmasq;
    std::string error = dnsmasq_->Start(binary, ZoneRecords());
    if (!error.empty()) {
      skip_reason_ = new std::string(error);
      delete dnsmasq_;
      dnsmasq_ = nullptr;
    }
  }

  static void TearDownTestSuite() {
    if (dnsmasq_ != nullptr) dnsmasq_->Stop();
    delete dnsmasq_;
    dnsmasq_ = nullptr;
    delete skip_reason_;
    skip_reason_ = nullptr;
  }

  void SetUp() override {
    if (skip_reason_ != nullptr) GTEST_SKIP() << *skip_reason_;
    ResolverOptions options;
    options.servers = {dnsmasq_->server()};
    options.timeout = milliseconds(2000);
    options.tries = 2;
    auto resolver = Resolver::Create(options);
    ASSERT_TRUE(resolver.has_value()) << resolver.error().ToString();
    resolver_ = std::move(*resolver);
  }

  static Dnsmasq* dnsmasq_;
  static std::string* skip_reason_;
  std::unique_ptr<Resolver> resolver_;
};

Dnsmasq* ResolverTest::dnsmasq_ = nullptr;
std::string* ResolverTest::skip_reason_ = nullptr;

TEST_F(ResolverTest, MxSortedByPreference) {
  MxResult r = resolver_->LookupMxSync("example.test");
  ASSERT_EQ(r.status, DnsStatus::kOk) << r.detail;
  EXPECT_EQ(r.hosts, (std::vector<MxHost>{{10, "mx1.example.test"},
                                          {20, "mx2.example.test"}}));
  EXPECT_TRUE(r.detail.empty());
}

TEST_F(ResolverTest, NamesAreCaseInsensitiveWithOptionalTrailingDot) {
  for (const char* name : {"EXAMPLE.Test", "example.test.", "Example.TEST."}) {
    MxResult r = resolver_->LookupMxSync(name);
    ASSERT_EQ(r.status, DnsStatus::kOk) << name << ": " << r.detail;
    ASSERT_EQ(r.hosts.size(), 2u) << name;
    EXPECT_EQ(r.hosts[0].host, "mx1.example.test") << name;
  }
}

TEST_F(ResolverTest, EqualPreferencesComeInRandomOrder) {
  std::set<std::string> firsts;
  for (int i = 0; i < 64 && firsts.size() < 2; ++i) {
    MxResult r = resolver_->LookupMxSync("equal.test");
    ASSERT_EQ(r.status, DnsStatus::kOk) << r.detail;
    ASSERT_EQ(r.hosts.size(), 2u);
    firsts.insert(r.hosts[0].host);
  }
  // Both orders within 64 tries: a chance of 2^-63 to fail by bad luck.
  EXPECT_EQ(firsts, (std::set<std::string>{"a.equal.test", "b.equal.test"}));
}

TEST_F(ResolverTest, NullMxFromMxHost) {
  MxResult r = resolver_->LookupMxSync("nullmx.test");
  EXPECT_EQ(r.status, DnsStatus::kNullMx) << r.detail;
  EXPECT_TRUE(r.hosts.empty());
  EXPECT_FALSE(IsTransient(r.status));
}

TEST_F(ResolverTest, NullMxFromRawRecord) {
  MxResult r = resolver_->LookupMxSync("nullrr.test");
  EXPECT_EQ(r.status, DnsStatus::kNullMx) << r.detail;
}

TEST_F(ResolverTest, NoMxMeansImplicitMx) {
  MxResult mx = resolver_->LookupMxSync("aonly.test");
  EXPECT_EQ(mx.status, DnsStatus::kNoData) << mx.detail;
  EXPECT_TRUE(mx.hosts.empty());
  AddrResult a = resolver_->LookupAddressesSync("aonly.test");
  ASSERT_EQ(a.status, DnsStatus::kOk) << a.detail;
  EXPECT_EQ(a.addresses, std::vector<std::string>{"127.0.0.2"});
}

TEST_F(ResolverTest, AliasWithoutMxIsNoDataAndAddressesFollowIt) {
  MxResult mx = resolver_->LookupMxSync("alias.test");
  EXPECT_EQ(mx.status, DnsStatus::kNoData) << mx.detail;
  AddrResult a = resolver_->LookupAddressesSync("alias.test");
  ASSERT_EQ(a.status, DnsStatus::kOk) << a.detail;
  EXPECT_EQ(a.addresses, (std::vector<std::string>{"127.0.0.1", "::1"}));
}

TEST_F(ResolverTest, NxDomainIsNotFound) {
  MxResult mx = resolver_->LookupMxSync("nosuch.test");
  EXPECT_EQ(mx.status, DnsStatus::kNotFound) << mx.detail;
  EXPECT_FALSE(IsTransient(mx.status));
  EXPECT_NE(mx.detail.find("name=nosuch.test type=MX"), std::string::npos)
      << mx.detail;
  AddrResult a = resolver_->LookupAddressesSync("nosuch.test");
  EXPECT_EQ(a.status, DnsStatus::kNotFound) << a.detail;
}

TEST_F(ResolverTest, RefusedIsRetry) {
  // Outside the local zone, with no upstream: dnsmasq answers REFUSED.
  MxResult mx = resolver_->LookupMxSync("example.org");
  EXPECT_EQ(mx.status, DnsStatus::kRetry) << mx.detail;
  EXPECT_TRUE(IsTransient(mx.status));
  AddrResult a = resolver_->LookupAddressesSync("example.org");
  EXPECT_EQ(a.status, DnsStatus::kRetry) << a.detail;
}

TEST_F(ResolverTest, AddressesBothFamilies) {
  AddrResult a = resolver_->LookupAddressesSync("MX1.example.test.");
  ASSERT_EQ(a.status, DnsStatus::kOk) << a.detail;
  EXPECT_EQ(a.addresses, (std::vector<std::string>{"127.0.0.1", "::1"}));
}

TEST_F(ResolverTest, HostWithoutAddressIsNoData) {
  // example.test exists (it has MX records) but has no A or AAAA.
  AddrResult a = resolver_->LookupAddressesSync("example.test");
  EXPECT_EQ(a.status, DnsStatus::kNoData) << a.detail;
  EXPECT_TRUE(a.addresses.empty());
}

TEST_F(ResolverTest, IpLiteralsNeedNoQuery) {
  AddrResult v4 = resolver_->LookupAddressesSync("192.0.2.1");
  ASSERT_EQ(v4.status, DnsStatus::kOk);
  EXPECT_EQ(v4.addresses, std::vector<std::string>{"192.0.2.1"});
  AddrResult v6 = resolver_->LookupAddressesSync("0:0::1");
  ASSERT_EQ(v6.status, DnsStatus::kOk);
  EXPECT_EQ(v6.addresses, std::vector<std::string>{"::1"});
}

TEST_F(ResolverTest, TruncatedUdpAnswerIsRetriedOverTcp) {
  MxResult r = resolver_->LookupMxSync("big.test");
  ASSERT_EQ(r.status, DnsStatus::kOk) << r.detail;
  ASSERT_EQ(r.hosts.size(), 30u);
  for (size_t i = 0; i < r.hosts.size(); ++i) {
    EXPECT_EQ(r.hosts[i].preference, 10 + i);
  }
  EXPECT_EQ(r.hosts[0].host, "host-number-00.big.test");
}

TEST_F(ResolverTest, InvalidMxHostIsFail) {
  MxResult r = resolver_->LookupMxSync("badmx.test");
  EXPECT_EQ(r.status, DnsStatus::kFail) << r.detail;
  EXPECT_TRUE(r.hosts.empty());
}

TEST_F(ResolverTest, InvalidNamesFailWithoutQuery) {
  for (std::string name :
       {std::string(""), std::string("."), std::string("a..test"),
        std::string("example.test.."), std::string("-x.test"),
        std::string("x-.test"), std::string("ex ample.test"),
        std::string("ex\xc3\xa4mple.test"), std::string("192.0.2.1"),
        std::string("mail.123"), std::string(64, 'a') + ".test",
        std::string(250, 'a')
                .replace(63, 1, ".")
                .replace(127, 1, ".")
                .replace(191, 1, ".") +
            ".test"}) {
    MxResult mx = resolver_->LookupMxSync(name);
    EXPECT_EQ(mx.status, DnsStatus::kFail) << "\"" << name << "\"";
    EXPECT_FALSE(mx.detail.empty());
    if (name != "192.0.2.1") {
      AddrResult a = resolver_->LookupAddressesSync(name);
      EXPECT_EQ(a.status, DnsStatus::kFail) << "\"" << name << "\"";
    }
  }
}

TEST_F(ResolverTest, CallbackApiFromManyThreads) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 25;
  std::mutex mu;
  std::condition_variable cv;
  int done = 0;
  std::atomic<int> ok{0};
  std::atomic<bool> on_resolver_thread{true};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      const std::thread::id caller = std::this_thread::get_id();
      for (int i = 0; i < kPerThread; ++i) {
        auto finish = [&] {
          std::lock_guard lock(mu);
          ++done;
          cv.notify_all();
        };
        if (i % 2 == 0) {
          resolver_->LookupMx("example.test", [&, caller, finish](MxResult r) {
            if (r.status == DnsStatus::kOk && r.hosts.size() == 2) ++ok;
            if (std::this_thread::get_id() == caller) {
              on_resolver_thread = false;
            }
            finish();
          });
        } else {
          resolver_->LookupAddresses(
              "mx1.example.test", [&, finish](AddrResult r) {
                if (r.status == DnsStatus::kOk && r.addresses.size() == 2) {
                  ++ok;
                }
                finish();
              });
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  std::unique_lock lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(30),
                          [&] { return done == kThreads * kPerThread; }));
  EXPECT_EQ(ok.load(), kThreads * kPerThread);
  EXPECT_TRUE(on_resolver_thread.load());
}

// A UDP socket that is bound but never answers: queries time out.
class SilentServer {
 public:
  SilentServer() {
    fd_ = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len), 0);
    port_ = ntohs(addr.sin_port);
  }
  ~SilentServer() { close(fd_); }
  std::string server() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  int fd_ = -1;
  int port_ = 0;
};

std::unique_ptr<Resolver> MakeResolver(std::string server, milliseconds timeout,
                                       int tries) {
  ResolverOptions options;
  options.servers = {std::move(server)};
  options.timeout = timeout;
  options.tries = tries;
  auto resolver = Resolver::Create(options);
  EXPECT_TRUE(resolver.has_value());
  return resolver ? std::move(*resolver) : nullptr;
}

TEST(ResolverFailureTest, TimeoutIsRetry) {
  SilentServer silent;
  auto resolver = MakeResolver(silent.server(), milliseconds(100), 2);
  ASSERT_NE(resolver, nullptr);
  auto start = std::chrono::steady_clock::now();
  MxResult mx = resolver->LookupMxSync("example.test");
  EXPECT_EQ(mx.status, DnsStatus::kRetry) << mx.detail;
  AddrResult a = resolver->LookupAddressesSync("mx1.example.test");
  EXPECT_EQ(a.status, DnsStatus::kRetry) << a.detail;
  // 100ms + 200ms per lookup; generous bound for a loaded machine.
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

TEST(ResolverFailureTest, NothingListeningIsRetry) {
  int port = FreePort();
  ASSERT_NE(port, 0);
  auto resolver =
      MakeResolver("127.0.0.1:" + std::to_string(port), milliseconds(200), 1);
  ASSERT_NE(resolver, nullptr);
  MxResult mx = resolver->LookupMxSync("example.test");
  EXPECT_EQ(mx.status, DnsStatus::kRetry) << mx.detail;
}

TEST(ResolverFailureTest, DestroyAnswersLookupsInFlight) {
  SilentServer silent;
  auto resolver = MakeResolver(silent.server(), milliseconds(30000), 1);
  ASSERT_NE(resolver, nullptr);
  std::atomic<int> retries{0};
  for (int i = 0; i < 5; ++i) {
    resolver->LookupMx("example.test", [&](MxResult r) {
      if (r.status == DnsStatus::kRetry) ++retries;
    });
    resolver->LookupAddresses("mx1.example.test", [&](AddrResult r) {
      if (r.status == DnsStatus::kRetry) ++retries;
    });
  }
  auto start = std::chrono::steady_clock::now();
  resolver.reset();
  EXPECT_EQ(retries.load(), 10);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST(ResolverOptionsTest, ServerSyntax) {
  for (const char* good : {"127.0.0.1", "127.0.0.1:5353", "::1", "[::1]",
                           "[::1]:53", "[127.0.0.1]:53"}) {
    ResolverOptions options;
    options.servers = {good};
    EXPECT_TRUE(Resolver::Create(options).has_value()) << good;
  }
  for (const char* bad :
       {"", "localhost", "localhost:53", "127.0.0.1:", "127.0.0.1:0",
        "127.0.0.1:65536", "127.0.0.1:53x", "[::1", "[::1]53",
        "[::1]:", "[example.test]:53", "1.2.3:53"}) {
    ResolverOptions options;
    options.servers = {bad};
    auto r = Resolver::Create(options);
    ASSERT_FALSE(r.has_value()) << bad;
    EXPECT_EQ(r.error().code(), Status::Code::kInvalidArgument) << bad;
  }
}

TEST(ResolverOptionsTest, TimeoutAndTries) {
  ResolverOptions options;
  options.timeout = milliseconds(0);
  EXPECT_FALSE(Resolver::Create(options).has_value());
  options.timeout = milliseconds(100);
  options.tries = 0;
  EXPECT_FALSE(Resolver::Create(options).has_value());
}

TEST(ResolverOptionsTest, EmptyServerListUsesResolvConf) {
  // Only creation: the test must not depend on the machine's DNS.
  EXPECT_TRUE(Resolver::Create(ResolverOptions{}).has_value());
}

TEST(NormaliseNameTest, Cases) {
  EXPECT_EQ(NormaliseName("Mail.Example.TEST."), "mail.example.test");
  EXPECT_EQ(NormaliseName("localhost"), "localhost");
  EXPECT_EQ(NormaliseName("_dmarc.example.test"), "_dmarc.example.test");
  EXPECT_EQ(NormaliseName("xn--bcher-kva.example"), "xn--bcher-kva.example");
  EXPECT_EQ(NormaliseName("1.example.test"), "1.example.test");
  EXPECT_EQ(NormaliseName(std::string(63, 'a') + ".test"),
            std::string(63, 'a') + ".test");
  EXPECT_EQ(NormaliseName(""), std::nullopt);
  EXPECT_EQ(NormaliseName(".example.test"), std::nullopt);
  EXPECT_EQ(NormaliseName("example.test.."), std::nullopt);
  EXPECT_EQ(NormaliseName("10.0.0.1"), std::nullopt);
  EXPECT_EQ(NormaliseName("a/b.test"), std::nullopt);
}

TEST(DnsStatusTest, OnlyRetryIsTransient) {
  EXPECT_TRUE(IsTransient(DnsStatus::kRetry));
  for (DnsStatus s : {DnsStatus::kOk, DnsStatus::kNotFound, DnsStatus::kNoData,
                      DnsStatus::kNullMx, DnsStatus::kFail}) {
    EXPECT_FALSE(IsTransient(s)) << DnsStatusName(s);
  }
}

}  // namespace
}  // namespace petrel::dns
