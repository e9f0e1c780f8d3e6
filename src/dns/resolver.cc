// The c-ares channel and its thread. See resolver.h for the contract.
//
// All c-ares calls happen on the resolver thread (a channel is not
// thread-safe): Lookup* only appends to a queue under a mutex and wakes the
// thread through an eventfd. The thread polls the eventfd and the sockets
// c-ares reports through its socket-state callback, with the timeout c-ares
// asks for, and hands readiness to ares_process_fd().
#include "dns/resolver.h"

#include <ares.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <future>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>
#include <utility>

#include "base/check.h"

namespace petrel::dns {
namespace {

// RFC 1035 3.2.2 and 3.2.4; RFC 3596 2.1.
constexpr int kClassIn = 1;
constexpr int kTypeA = 1;
constexpr int kTypeMx = 15;
constexpr int kTypeAaaa = 28;

// RFC 1035 2.3.4: 255 octets on the wire, 253 as text without the dot.
constexpr size_t kMaxNameLength = 253;
constexpr size_t kMaxLabelLength = 63;
// Addresses kept from one answer; a real host has a handful.
constexpr int kMaxAddressesPerAnswer = 64;

bool IsLdh(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

// Postfix's valid_hostname(): RFC 1123 labels, plus '_' which is common
// in the wild; a numeric last label would make it look like an address.
bool ValidLabel(std::string_view label) {
  if (label.empty() || label.size() > kMaxLabelLength) return false;
  if (label.front() == '-' || label.back() == '-') return false;
  return std::all_of(label.begin(), label.end(), IsLdh);
}

std::string ErrorDetail(std::string_view name, std::string_view type,
                        std::string_view why) {
  std::string out = "Name service error for name=";
  out.append(name);
  out.append(" type=");
  out.append(type);
  out.append(": ");
  out.append(why);
  return out;
}

// Which c-ares failures are transient. Anything we do not recognise is
// transient too: deferring is always safe, a wrong bounce is not.
DnsStatus StatusFromAres(int ares_status) {
  switch (ares_status) {
    case ARES_SUCCESS:
      return DnsStatus::kOk;
    case ARES_ENOTFOUND:  // NXDOMAIN
      return DnsStatus::kNotFound;
    case ARES_ENODATA:  // NOERROR with no record of the type
      return DnsStatus::kNoData;
    case ARES_EBADNAME:  // our query, not the network
    case ARES_EBADQUERY:
    case ARES_EBADFAMILY:
      return DnsStatus::kFail;
    default:
      // ESERVFAIL, EREFUSED, ETIMEOUT, ECONNREFUSED, ENOTIMP, EFORMERR,
      // EBADRESP (malformed answers are transient, as in Postfix),
      // ENOMEM, EDESTRUCTION, ECANCELLED.
      return DnsStatus::kRetry;
  }
}

struct ServerAddress {
  int family = AF_INET;
  in_addr v4{};
  in6_addr v6{};
  int port = 53;
};

// "192.0.2.1", "192.0.2.1:5353", "::1", "[::1]", "[::1]:5353". An IPv6
// address needs brackets to carry a port ("::1:53" is an address).
std::optional<ServerAddress> ParseServer(std::string_view text) {
  std::string_view host = text;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = text.substr(1, close - 1);
    std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return std::nullopt;
      port = rest.substr(1);
      if (port.empty()) return std::nullopt;
    }
  } else if (std::count(text.begin(), text.end(), ':') == 1) {
    size_t colon = text.find(':');
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (port.empty()) return std::nullopt;
  }
  ServerAddress out;
  if (!port.empty()) {
    int value = 0;
    auto [end, ec] =
        std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || end != port.data() + port.size() || value < 1 ||
        value > 65535) {
      return std::nullopt;
    }
    out.port = value;
  }
  std::string host_z(host);
  if (inet_pton(AF_INET, host_z.c_str(), &out.v4) == 1) {
    out.family = AF_INET;
    return out;
  }
  if (inet_pton(AF_INET6, host_z.c_str(), &out.v6) == 1) {
    out.family = AF_INET6;
    return out;
  }
  return std::nullopt;
}

std::optional<std::string> IpLiteral(std::string_view text) {
  std::string z(text);
  in_addr v4;
  in6_addr v6;
  char buf[INET6_ADDRSTRLEN];
  if (inet_pton(AF_INET, z.c_str(), &v4) == 1) {
    return std::string(inet_ntop(AF_INET, &v4, buf, sizeof buf));
  }
  if (inet_pton(AF_INET6, z.c_str(), &v6) == 1) {
    return std::string(inet_ntop(AF_INET6, &v6, buf, sizeof buf));
  }
  return std::nullopt;
}

void LibraryInit() {
  static std::once_flag once;
  std::call_once(once,
                 [] { CHECK(ares_library_init(ARES_LIB_INIT_ALL) == 0); });
}

}  // namespace

std::string_view DnsStatusName(DnsStatus status) {
  switch (status) {
    case DnsStatus::kOk:
      return "ok";
    case DnsStatus::kNotFound:
      return "not found";
    case DnsStatus::kNoData:
      return "no data";
    case DnsStatus::kNullMx:
      return "null MX";
    case DnsStatus::kRetry:
      return "retry";
    case DnsStatus::kFail:
      return "fail";
  }
  return "?";
}

std::optional<std::string> NormaliseName(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  if (name.empty() || name.size() > kMaxNameLength) return std::nullopt;
  std::string out(name);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  std::string_view rest = out;
  std::string_view label;
  while (true) {
    size_t dot = rest.find('.');
    label = rest.substr(0, dot);
    if (!ValidLabel(label)) return std::nullopt;
    if (dot == std::string_view::npos) break;
    rest.remove_prefix(dot + 1);
  }
  // The last label: a top-level domain is never all digits (RFC 3696 2).
  if (std::all_of(label.begin(), label.end(),
                  [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  return out;
}

class Resolver::Impl {
 public:
  Impl() = default;
  ~Impl() { Stop(); }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  Status Start(const ResolverOptions& options);
  void Stop();

  // Either name is valid and the query is sent, or `immediate` is set and
  // the callback gets it (still on the resolver thread).
  struct Request {
    bool is_mx = true;
    std::string name;
    MxCallback mx_done;
    AddrCallback addr_done;
    std::optional<MxResult> mx_immediate;
    std::optional<AddrResult> addr_immediate;
  };
  void Enqueue(Request request);

 private:
  struct MxQuery {
    Impl* impl;
    std::string name;
    MxCallback done;
  };
  struct AddrQuery;
  struct AddrHalf {
    AddrQuery* parent;
    bool v6;
    int ares_status = ARES_SUCCESS;
    std::vector<std::string> addresses;
  };
  struct AddrQuery {
    std::string name;
    AddrCallback done;
    int pending = 2;
    AddrHalf a{this, false, ARES_SUCCESS, {}};
    AddrHalf aaaa{this, true, ARES_SUCCESS, {}};
  };

  void Run();
  void Submit(Request& request);
  static void FailRequest(Request& request, std::string why);
  static void OnSocketState(void* data, ares_socket_t fd, int readable,
                            int writable);
  static void OnMxAnswer(void* arg, int status, int timeouts,
                         unsigned char* abuf, int alen);
  static void OnAddrAnswer(void* arg, int status, int timeouts,
                           unsigned char* abuf, int alen);
  static void FinishAddr(AddrQuery* query);
  // Calls a user callback. noexcept: a callback that throws ends the
  // process here instead of unwinding through c-ares' C frames.
  template <class F, class R>
  static void Deliver(F& done, R result) noexcept {
    done(std::move(result));
  }

  ares_channel channel_ = nullptr;
  int wake_fd_ = -1;
  std::thread thread_;
  // Resolver thread only.
  std::unordered_map<ares_socket_t, short> sockets_;  // fd -> poll events
  std::mt19937 random_{std::random_device{}()};

  std::mutex mu_;
  std::vector<Request> queue_;  // guarded by mu_
  bool stopping_ = false;       // guarded by mu_
};

Status Resolver::Impl::Start(const ResolverOptions& options) {
  if (options.timeout < std::chrono::milliseconds(1)) {
    return Status::InvalidArgument("dns: timeout must be at least 1ms");
  }
  if (options.tries < 1) {
    return Status::InvalidArgument("dns: tries must be at least 1");
  }
  std::vector<ServerAddress> servers;
  for (const std::string& text : options.servers) {
    std::optional<ServerAddress> server = ParseServer(text);
    if (!server) {
      return Status::InvalidArgument(
          "dns: server \"" + text +
          "\" is not an IP address with an optional port (\"127.0.0.1:53\", "
          "\"[::1]:53\")");
    }
    servers.push_back(*server);
  }

  LibraryInit();
  ares_options opts{};
  opts.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES;
  opts.timeout = static_cast<int>(std::min<std::chrono::milliseconds::rep>(
      options.timeout.count(), 3'600'000));
  opts.tries = options.tries;
  opts.sock_state_cb = &Impl::OnSocketState;
  opts.sock_state_cb_data = this;
  int mask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES |
             ARES_OPT_SOCK_STATE_CB;
  int rc = ares_init_options(&channel_, &opts, mask);
  if (rc != ARES_SUCCESS) {
    channel_ = nullptr;
    return Status::Internal(std::string("dns: c-ares init: ") +
                            ares_strerror(rc));
  }
  if (!servers.empty()) {
    std::vector<ares_addr_port_node> nodes(servers.size());
    for (size_t i = 0; i < servers.size(); ++i) {
      ares_addr_port_node& node = nodes[i];
      node.next = i + 1 < nodes.size() ? &nodes[i + 1] : nullptr;
      node.family = servers[i].family;
      if (servers[i].family == AF_INET) {
        node.addr.addr4 = servers[i].v4;
      } else {
        std::memcpy(&node.addr.addr6, &servers[i].v6, sizeof(in6_addr));
      }
      node.udp_port = servers[i].port;
      node.tcp_port = servers[i].port;
    }
    rc = ares_set_servers_ports(channel_, nodes.data());
    if (rc != ARES_SUCCESS) {
      ares_destroy(channel_);
      channel_ = nullptr;
      return Status::Internal(std::string("dns: c-ares servers: ") +
                              ares_strerror(rc));
    }
  }
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) {
    ares_destroy(channel_);
    channel_ = nullptr;
    return Status::Internal(std::string("dns: eventfd: ") +
                            std::strerror(errno));
  }
  thread_ = std::thread([this] { Run(); });
  pthread_setname_np(thread_.native_handle(), "petrel-dns");
  return Status::Ok();
}

void Resolver::Impl::Stop() {
  if (thread_.joinable()) {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = write(wake_fd_, &one, sizeof one);
    thread_.join();
  }
  if (channel_ != nullptr) {  // Start() failed half-way: no thread
    ares_destroy(channel_);
    channel_ = nullptr;
  }
  if (wake_fd_ >= 0) {
    close(wake_fd_);
    wake_fd_ = -1;
  }
}

void Resolver::Impl::Enqueue(Request request) {
  bool accepted = false;
  {
    std::lock_guard lock(mu_);
    if (!stopping_) {
      queue_.push_back(std::move(request));
      accepted = true;
    }
  }
  if (!accepted) {
    // Against the contract (a lookup racing the destructor), but the
    // callback is still called once.
    FailRequest(request, "resolver shut down");
    return;
  }
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = write(wake_fd_, &one, sizeof one);
}

void Resolver::Impl::Run() {
  std::vector<pollfd> fds;
  while (true) {
    std::vector<Request> batch;
    bool stop;
    {
      std::lock_guard lock(mu_);
      batch.swap(queue_);
      stop = stopping_;
    }
    if (stop) {
      for (Request& request : batch) FailRequest(request, "resolver shut down");
      break;
    }
    for (Request& request : batch) Submit(request);

    fds.clear();
    fds.push_back({wake_fd_, POLLIN, 0});
    for (const auto& [fd, events] : sockets_) fds.push_back({fd, events, 0});
    timeval tv{};
    timeval* next = ares_timeout(channel_, nullptr, &tv);
    int timeout_ms = -1;
    if (next != nullptr) {
      timeout_ms =
          static_cast<int>(next->tv_sec * 1000 + (next->tv_usec + 999) / 1000);
    }
    int ready = poll(fds.data(), fds.size(), timeout_ms);
    if (ready < 0) {
      CHECK(errno == EINTR);
      continue;
    }
    if (fds[0].revents != 0) {
      uint64_t count;
      [[maybe_unused]] ssize_t n = read(wake_fd_, &count, sizeof count);
    }
    bool processed = false;
    for (size_t i = 1; i < fds.size(); ++i) {
      short revents = fds[i].revents;
      if (revents == 0) continue;
      // An error or hang-up is handed over as readable: c-ares then reads,
      // sees the error and moves on to the next server.
      ares_socket_t read_fd = (revents & (POLLIN | POLLERR | POLLHUP))
                                  ? fds[i].fd
                                  : ARES_SOCKET_BAD;
      ares_socket_t write_fd =
          (revents & POLLOUT) ? fds[i].fd : ARES_SOCKET_BAD;
      ares_process_fd(channel_, read_fd, write_fd);
      processed = true;
    }
    // Nothing readable: let c-ares expire the queries whose time is up.
    if (!processed) {
      ares_process_fd(channel_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    }
  }
  // Queries in flight end with ARES_EDESTRUCTION, which maps to kRetry.
  ares_destroy(channel_);
  channel_ = nullptr;
  sockets_.clear();
}

void Resolver::Impl::Submit(Request& request) {
  if (request.is_mx) {
    if (request.mx_immediate) {
      Deliver(request.mx_done, std::move(*request.mx_immediate));
      return;
    }
    auto* query =
        new MxQuery{this, std::move(request.name), std::move(request.mx_done)};
    ares_query(channel_, query->name.c_str(), kClassIn, kTypeMx,
               &Impl::OnMxAnswer, query);
    return;
  }
  if (request.addr_immediate) {
    Deliver(request.addr_done, std::move(*request.addr_immediate));
    return;
  }
  auto* query = new AddrQuery{};
  query->name = std::move(request.name);
  query->done = std::move(request.addr_done);
  // pending == 2 keeps the query alive even if the first answer comes back
  // inside ares_query() (c-ares does that for some local errors).
  ares_query(channel_, query->name.c_str(), kClassIn, kTypeA,
             &Impl::OnAddrAnswer, &query->a);
  ares_query(channel_, query->name.c_str(), kClassIn, kTypeAaaa,
             &Impl::OnAddrAnswer, &query->aaaa);
}

void Resolver::Impl::FailRequest(Request& request, std::string why) {
  if (request.is_mx) {
    MxResult result;
    result.status = DnsStatus::kRetry;
    result.detail = ErrorDetail(request.name, "MX", why);
    Deliver(request.mx_done, std::move(result));
  } else {
    AddrResult result;
    result.status = DnsStatus::kRetry;
    result.detail = ErrorDetail(request.name, "A/AAAA", why);
    Deliver(request.addr_done, std::move(result));
  }
}

void Resolver::Impl::OnSocketState(void* data, ares_socket_t fd, int readable,
                                   int writable) {
  auto* impl = static_cast<Impl*>(data);
  if (!readable && !writable) {
    impl->sockets_.erase(fd);
    return;
  }
  short events = 0;
  if (readable) events |= POLLIN;
  if (writable) events |= POLLOUT;
  impl->sockets_[fd] = events;
}

void Resolver::Impl::OnMxAnswer(void* arg, int status, int /*timeouts*/,
                                unsigned char* abuf, int alen) {
  std::unique_ptr<MxQuery> query(static_cast<MxQuery*>(arg));
  MxResult result;
  if (status == ARES_SUCCESS) {
    ares_mx_reply* replies = nullptr;
    status = ares_parse_mx_reply(abuf, alen, &replies);
    if (status == ARES_SUCCESS) {
      bool null_mx = false;
      int invalid = 0;
      for (ares_mx_reply* mx = replies; mx != nullptr; mx = mx->next) {
        // c-ares gives the root name "." as "".
        if (mx->host[0] == '\0') {
          null_mx = true;
          continue;
        }
        std::optional<std::string> host = NormaliseName(mx->host);
        if (host) {
          result.hosts.push_back({mx->priority, std::move(*host)});
        } else {
          ++invalid;
        }
      }
      ares_free_data(replies);
      if (null_mx) {
        // RFC 7505 3: a null MX anywhere in the set means no mail, even next
        // to other records (which 7505 forbids publishing); Postfix agrees.
        result.hosts.clear();
        result.status = DnsStatus::kNullMx;
        result.detail = "Domain " + query->name +
                        " does not accept mail (null MX, RFC 7505)";
      } else if (result.hosts.empty() && invalid == 0) {
        // c-ares 1.18 reports success for an answer that holds only a
        // CNAME: the alias exists and has no MX.
        result.status = DnsStatus::kNoData;
        result.detail = ErrorDetail(query->name, "MX", "no MX record");
      } else if (result.hosts.empty()) {
        // Postfix's DNS_INVAL: every MX names something that is not a host.
        result.status = DnsStatus::kFail;
        result.detail =
            ErrorDetail(query->name, "MX",
                        "malformed host name in all " +
                            std::to_string(invalid) + " MX records");
      } else {
        // RFC 5321 5.1: try lower preferences first; spread the load over
        // equal ones at random.
        std::shuffle(result.hosts.begin(), result.hosts.end(),
                     query->impl->random_);
        std::stable_sort(result.hosts.begin(), result.hosts.end(),
                         [](const MxHost& a, const MxHost& b) {
                           return a.preference < b.preference;
                         });
        result.status = DnsStatus::kOk;
      }
      Deliver(query->done, std::move(result));
      return;
    }
  }
  result.status = StatusFromAres(status);
  if (result.status == DnsStatus::kOk) result.status = DnsStatus::kRetry;
  result.detail = ErrorDetail(query->name, "MX", ares_strerror(status));
  Deliver(query->done, std::move(result));
}

void Resolver::Impl::OnAddrAnswer(void* arg, int status, int /*timeouts*/,
                                  unsigned char* abuf, int alen) {
  auto* half = static_cast<AddrHalf*>(arg);
  if (status == ARES_SUCCESS) {
    char text[INET6_ADDRSTRLEN];
    int count = kMaxAddressesPerAnswer;
    if (half->v6) {
      ares_addr6ttl ttls[kMaxAddressesPerAnswer];
      status = ares_parse_aaaa_reply(abuf, alen, nullptr, ttls, &count);
      for (int i = 0; status == ARES_SUCCESS && i < count; ++i) {
        inet_ntop(AF_INET6, &ttls[i].ip6addr, text, sizeof text);
        half->addresses.emplace_back(text);
      }
    } else {
      ares_addrttl ttls[kMaxAddressesPerAnswer];
      status = ares_parse_a_reply(abuf, alen, nullptr, ttls, &count);
      for (int i = 0; status == ARES_SUCCESS && i < count; ++i) {
        inet_ntop(AF_INET, &ttls[i].ipaddr, text, sizeof text);
        half->addresses.emplace_back(text);
      }
    }
    // An answer that holds only a CNAME, no address.
    if (status == ARES_SUCCESS && half->addresses.empty()) {
      status = ARES_ENODATA;
    }
  }
  half->ares_status = status;
  AddrQuery* query = half->parent;
  if (--query->pending == 0) FinishAddr(query);
}

void Resolver::Impl::FinishAddr(AddrQuery* query) {
  std::unique_ptr<AddrQuery> owned(query);
  AddrResult result;
  for (AddrHalf* half : {&query->a, &query->aaaa}) {
    for (std::string& address : half->addresses) {
      if (std::find(result.addresses.begin(), result.addresses.end(),
                    address) == result.addresses.end()) {
        result.addresses.push_back(std::move(address));
      }
    }
  }
  if (!result.addresses.empty()) {
    // One family answering is enough (Postfix too): a broken AAAA server
    // must not hold back IPv4 delivery.
    result.status = DnsStatus::kOk;
    Deliver(query->done, std::move(result));
    return;
  }
  // No address at all. A transient failure of either query wins, so that
  // a timeout is never turned into a bounce by the other's NXDOMAIN; then
  // the other verdicts from the most to the least final.
  const AddrHalf* cause = nullptr;
  for (DnsStatus verdict : {DnsStatus::kRetry, DnsStatus::kFail,
                            DnsStatus::kNotFound, DnsStatus::kNoData}) {
    for (const AddrHalf* half : {&query->a, &query->aaaa}) {
      if (cause == nullptr && StatusFromAres(half->ares_status) == verdict) {
        cause = half;
      }
    }
  }
  CHECK(cause != nullptr);  // ARES_SUCCESS without addresses became ENODATA
  result.status = StatusFromAres(cause->ares_status);
  result.detail = ErrorDetail(query->name, cause->v6 ? "AAAA" : "A",
                              ares_strerror(cause->ares_status));
  Deliver(query->done, std::move(result));
}

Resolver::Resolver(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Resolver::~Resolver() = default;

Result<std::unique_ptr<Resolver>> Resolver::Create(ResolverOptions options) {
  auto impl = std::make_unique<Impl>();
  Status status = impl->Start(options);
  if (!status.ok()) return Error(std::move(status));
  return std::unique_ptr<Resolver>(new Resolver(std::move(impl)));
}

void Resolver::LookupMx(std::string domain, MxCallback done) {
  CHECK(done);
  Impl::Request request;
  request.is_mx = true;
  request.mx_done = std::move(done);
  std::optional<std::string> name = NormaliseName(domain);
  if (name) {
    request.name = std::move(*name);
  } else {
    request.name = std::move(domain);
    MxResult result;
    result.status = DnsStatus::kFail;
    result.detail = ErrorDetail(request.name, "MX", "malformed domain name");
    request.mx_immediate = std::move(result);
  }
  impl_->Enqueue(std::move(request));
}

void Resolver::LookupAddresses(std::string host, AddrCallback done) {
  CHECK(done);
  Impl::Request request;
  request.is_mx = false;
  request.addr_done = std::move(done);
  if (std::optional<std::string> literal = IpLiteral(host)) {
    request.name = std::move(host);
    AddrResult result;
    result.status = DnsStatus::kOk;
    result.addresses.push_back(std::move(*literal));
    request.addr_immediate = std::move(result);
  } else if (std::optional<std::string> name = NormaliseName(host)) {
    request.name = std::move(*name);
  } else {
    request.name = std::move(host);
    AddrResult result;
    result.status = DnsStatus::kFail;
    result.detail = ErrorDetail(request.name, "A/AAAA", "malformed host name");
    request.addr_immediate = std::move(result);
  }
  impl_->Enqueue(std::move(request));
}

MxResult Resolver::LookupMxSync(std::string domain) {
  std::promise<MxResult> promise;
  std::future<MxResult> future = promise.get_future();
  LookupMx(std::move(domain), [&promise](MxResult result) {
    promise.set_value(std::move(result));
  });
  return future.get();
}

AddrResult Resolver::LookupAddressesSync(std::string host) {
  std::promise<AddrResult> promise;
  std::future<AddrResult> future = promise.get_future();
  LookupAddresses(std::move(host), [&promise](AddrResult result) {
    promise.set_value(std::move(result));
  });
  return future.get();
}

}  // namespace petrel::dns
