#include "delivery/agent.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <sstream>

#include "asio/await_callback.h"
#include "asio/blocking.h"
#include "base/log.h"
#include "base/queue_id.h"
#include "config/config.h"
#include "delivery/credentials.h"
#include "delivery/dsn.h"
#include "delivery/local.h"
#include "delivery/outcome.h"
#include "delivery/router.h"
#include "delivery/smtp_client.h"
#include "dns/resolver.h"
#include "smtp/params.h"
#include "spool/spool.h"

namespace petrel::delivery {

namespace asio = boost::asio;

namespace {

std::int64_t NowUnix() { return static_cast<std::int64_t>(std::time(nullptr)); }

Outcome Make(Verdict v, smtp::EnhancedStatus status, std::string diagnostic) {
  Outcome o;
  o.verdict = v;
  o.status = status;
  o.detail = diagnostic;
  o.diagnostic = std::move(diagnostic);
  return o;
}

// One line per recipient outcome decided here (not by the SMTP client, which
// logs its own), Postfix style.
void LogOutcomes(const spool::Envelope& e, const Outcomes& outcomes,
                 std::int64_t /*started*/) {
  log::Batch batch;
  for (const auto& [i, o] : outcomes) {
    LogOutcome(e.id, e.recipients.at(i).address, o, e.arrival_unix);
  }
}

// Limits parallel connections per next hop (concurrency_per_destination).
class DestinationLimits {
 public:
  explicit DestinationLimits(std::uint32_t limit) : limit_(limit) {}
  asio::awaitable<void> Acquire(const std::string& key) {
    asio::steady_timer wait(co_await asio::this_coro::executor);
    for (;;) {
      {
        std::lock_guard lock(mu_);
        int& n = active_[key];
        if (n < static_cast<int>(limit_)) {
          ++n;
          co_return;
        }
      }
      wait.expires_after(std::chrono::milliseconds(20));
      co_await wait.async_wait(asio::as_tuple(asio::use_awaitable));
    }
  }
  void Release(const std::string& key) {
    std::lock_guard lock(mu_);
    if (--active_[key] <= 0) active_.erase(key);
  }

 private:
  std::uint32_t limit_;
  std::mutex mu_;
  std::map<std::string, int> active_;
};

// Which recipients were past the end of data when the process stopped:
// one line "ID index index ...\n" appended (O_APPEND, not synced: it only
// has to survive a killed process, whose writes the kernel keeps) just before
// each end of data goes out. At start the old journal is read: a recipient
// still pending there may have been delivered already (RFC 1047), and the
// next attempt says so in the log. The journal is rotated at 1 MiB (one
// older file is kept and read too).
class InflightJournal {
 public:
  static constexpr std::size_t kRotateOctets = 1 << 20;

  explicit InflightJournal(std::string path) : path_(std::move(path)) {
    for (const std::string& p : {path_ + ".old", path_}) {
      std::ifstream in(p);
      std::string line;
      while (std::getline(in, line)) {
        std::istringstream words(line);
        std::string id;
        words >> id;
        std::size_t index;
        while (words >> index) suspect_[id].insert(index);
      }
    }
    ::unlink((path_ + ".old").c_str());
    fd_ = ::open(path_.c_str(),
                 O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    if (fd_ < 0)
      log::Warning("cannot write {}: {}", path_, std::strerror(errno));
  }
  ~InflightJournal() {
    if (fd_ >= 0) ::close(fd_);
  }

  void Record(const std::string& id, const std::vector<std::size_t>& indexes) {
    std::string line = id;
    for (auto i : indexes) line += " " + std::to_string(i);
    line += "\n";
    std::lock_guard lock(mu_);
    if (fd_ < 0) return;
    if (::write(fd_, line.data(), line.size()) < 0) return;
    written_ += line.size();
    if (written_ >= kRotateOctets) {
      ::rename(path_.c_str(), (path_ + ".old").c_str());
      ::close(fd_);
      fd_ = ::open(path_.c_str(),
                   O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
      written_ = 0;
    }
  }

  // The recipients of `id` that were past the end of data when the last
  // run stopped (each returned once).
  std::set<std::size_t> TakeSuspects(const std::string& id) {
    std::lock_guard lock(mu_);
    auto it = suspect_.find(id);
    if (it == suspect_.end()) return {};
    auto out = std::move(it->second);
    suspect_.erase(it);
    return out;
  }

 private:
  std::string path_;
  std::mutex mu_;
  int fd_ = -1;
  std::size_t written_ = 0;
  std::map<std::string, std::set<std::size_t>> suspect_;
};

// Open connections waiting for the next message to the same host and port
// (Postfix's connection cache: smtp_connection_cache_time_limit = 2s).
class ConnectionCache {
 public:
  static constexpr auto kIdleLimit = std::chrono::seconds(2);

  // `tag`: what else the connection was opened with (TLS policy, AUTH
  // user): only a connection with the same tag is reused.
  std::unique_ptr<SmtpConnection> Take(const SmtpTarget& t,
                                       const std::string& tag) {
    std::lock_guard lock(mu_);
    auto it = idle_.find(Key(t) + "|" + tag);
    if (it == idle_.end()) return nullptr;
    auto conn = std::move(it->second.conn);
    idle_.erase(it);
    return conn;
  }
  void Put(std::unique_ptr<SmtpConnection> conn, const std::string& tag) {
    // Before conn is moved from.
    std::string key = Key(conn->target()) + "|" + tag;
    std::lock_guard lock(mu_);
    idle_.emplace(std::move(key),
                  Idle{std::move(conn), std::chrono::steady_clock::now()});
  }
  // Connections idle for longer than the limit (all with `everything`).
  std::vector<std::unique_ptr<SmtpConnection>> Expired(bool everything) {
    std::lock_guard lock(mu_);
    std::vector<std::unique_ptr<SmtpConnection>> out;
    auto now = std::chrono::steady_clock::now();
    for (auto it = idle_.begin(); it != idle_.end();) {
      if (everything || now - it->second.since >= kIdleLimit) {
        out.push_back(std::move(it->second.conn));
        it = idle_.erase(it);
      } else {
        ++it;
      }
    }
    return out;
  }

 private:
  static std::string Key(const SmtpTarget& t) {
    return t.address + "|" + std::to_string(t.port);
  }
  struct Idle {
    std::unique_ptr<SmtpConnection> conn;
    std::chrono::steady_clock::time_point since;
  };
  std::mutex mu_;
  std::multimap<std::string, Idle> idle_;
};

asio::awaitable<void> QuitConnection(std::shared_ptr<SmtpConnection> conn) {
  co_await conn->Quit();
}

// Closes cached connections once idle too long; runs while the agent does.
asio::awaitable<void> ReapIdle(std::shared_ptr<ConnectionCache> cache,
                               std::shared_ptr<bool> stop) {
  auto ex = co_await asio::this_coro::executor;
  asio::steady_timer tick(ex);
  while (!*stop) {
    tick.expires_after(std::chrono::milliseconds(500));
    co_await tick.async_wait(asio::as_tuple(asio::use_awaitable));
    for (auto& c : cache->Expired(*stop)) {
      asio::co_spawn(
          ex, QuitConnection(std::shared_ptr<SmtpConnection>(std::move(c))),
          asio::detached);
    }
  }
}

class AgentImpl : public Agent {
 public:
  AgentImpl(asio::io_context& io, std::shared_ptr<const config::Config> config,
            spool::Spool& spool, BlockingPool& pool,
            std::unique_ptr<dns::Resolver> resolver, Aliases aliases,
            Credentials credentials, OnNewMessage on_new)
      : io_(io),
        config_(std::move(config)),
        spool_(spool),
        pool_(pool),
        resolver_(std::move(resolver)),
        aliases_(std::move(aliases)),
        credentials_(std::move(credentials)),
        on_new_(std::move(on_new)),
        limits_(config_->delivery.concurrency_per_destination) {
    const auto& d = config_->delivery;
    client_.helo_name = config_->server.hostname;
    client_.connect_timeout = d.connect_timeout;
    client_.greeting_timeout = d.greeting_timeout;
    client_.mail_timeout = d.mail_timeout;
    client_.rcpt_timeout = d.rcpt_timeout;
    client_.data_init_timeout = d.data_init_timeout;
    client_.data_block_timeout = d.data_block_timeout;
    client_.data_end_timeout = d.data_end_timeout;
    client_.max_recipients_per_transaction = d.max_recipients_per_transaction;
    client_.tls_ca_file = d.tls_ca_file;
    asio::co_spawn(io_, ReapIdle(cache_, stop_), asio::detached);
  }
  ~AgentImpl() override { *stop_ = true; }

  asio::awaitable<queue::AttemptResult> Attempt(std::string id) override;
  asio::awaitable<Status> BounceAll(std::string id) override;

 private:
  struct Work {
    spool::Envelope envelope;
    std::shared_ptr<const std::string> content;
    std::int64_t now = 0;
    std::vector<std::size_t> failed_now;  // for the failure DSN
    // Attempt only: the outcomes that settle the last pending recipient,
    // when no DSN is due, are recorded by removing the message (removed).
    bool may_remove = false;
    bool removed = false;
  };

  asio::awaitable<Status> Load(const std::string& id, Work& w);
  asio::awaitable<void> Persist(Work& w, const Outcomes& outcomes);
  asio::awaitable<void> DeliverLocalGroup(
      Work& w, const std::vector<std::size_t>& rcpts,
      const std::vector<RouteDecision>& routes);
  asio::awaitable<void> DeliverSmtpGroup(Work& w, const RouteDecision& route,
                                         const std::vector<std::size_t>& rcpts);
  asio::awaitable<std::vector<SmtpTarget>> Targets(const RouteDecision& route,
                                                   Outcome& failure);
  bool IsOwnAddress(const std::string& ip, std::uint16_t port) const;
  asio::awaitable<void> SendDsns(Work& w);
  asio::awaitable<void> SubmitDsn(Work& w, std::vector<std::size_t> rcpts,
                                  DsnEvent event);
  asio::awaitable<void> Submit(spool::Envelope e, std::string content,
                               const std::string& why);

  asio::io_context& io_;
  std::shared_ptr<const config::Config> config_;
  spool::Spool& spool_;
  BlockingPool& pool_;
  std::unique_ptr<dns::Resolver> resolver_;
  Aliases aliases_;
  Credentials credentials_;
  OnNewMessage on_new_;
  DestinationLimits limits_;
  ClientOptions client_;
  std::shared_ptr<ConnectionCache> cache_ = std::make_shared<ConnectionCache>();
  std::shared_ptr<bool> stop_ = std::make_shared<bool>(false);
  InflightJournal journal_{config_->spool.path + "/PETREL-INFLIGHT"};
};

asio::awaitable<Status> AgentImpl::Load(const std::string& id, Work& w) {
  Status st;
  auto content = std::make_shared<std::string>();
  std::function<void()> work = [&] {
    auto e = spool_.LoadEnvelope(id);
    if (!e) {
      st = e.error();
      return;
    }
    w.envelope = std::move(*e);
    st = spool_.ReadContent(id, [&](std::string_view piece) {
      content->append(piece);
      return Status::Ok();
    });
  };
  co_await pool_.Run(co_await asio::this_coro::executor, &work);
  w.content = std::move(content);
  w.now = NowUnix();
  co_return st;
}

asio::awaitable<void> AgentImpl::Persist(Work& w, const Outcomes& outcomes) {
  std::vector<std::pair<std::size_t, spool::Recipient>> changes;
  for (const auto& [index, o] : outcomes) {
    spool::Recipient r = w.envelope.recipients.at(index);
    if (r.state != spool::RecipientState::kPending) continue;  // never twice
    r.attempts += 1;
    r.last_attempt_unix = NowUnix();
    r.last_reply = o.detail.empty() ? o.diagnostic : o.detail;
    r.remote_mta = o.remote_mta;
    if (o.verdict == Verdict::kDelivered) {
      r.state = spool::RecipientState::kDelivered;
    } else if (o.verdict == Verdict::kFailed) {
      r.state = spool::RecipientState::kFailed;
      // Keep what the DSN needs: the status in front of the reply text.
      r.last_reply = o.status.ToString() + " " + o.diagnostic;
      w.failed_now.push_back(index);
    }
    if (o.possible_duplicate) {
      log::Warning(
          "{}: to=<{}>: connection lost after the end of data: "
          "possible duplicate delivery (RFC 1047)",
          w.envelope.id, r.address);
    }
    w.envelope.recipients[index] = r;
    changes.emplace_back(index, std::move(r));
  }
  if (changes.empty()) co_return;
  // The message is finished when no recipient is pending; if no failure
  // DSN is due either (SendDsns would send nothing), removing it, synced,
  // records these outcomes as well as a rewrite would, and saves one.
  bool finish = w.may_remove;
  for (const auto& r : w.envelope.recipients) {
    if (!finish) break;
    finish = r.state != spool::RecipientState::kPending;
  }
  for (auto i : w.failed_now) {
    if (!finish) break;
    finish = !ShouldSendDsn(w.envelope.sender, w.envelope.recipients[i].notify,
                            DsnEvent::kFailure);
  }
  // Straight to the spool's writer (no blocking thread in between); the
  // coroutine resumes once the outcomes are synced.
  std::function<void(spool::Callback)> start = [&](spool::Callback done) {
    if (finish) {
      spool_.RemoveAsync(w.envelope.id, spool::Spool::Durability::kSync,
                         std::move(done));
    } else {
      spool_.UpdateRecipientsAsync(w.envelope.id, std::move(changes),
                                   std::move(done));
    }
  };
  asio::any_io_executor ex = co_await asio::this_coro::executor;
  Status st = co_await AwaitCallback<Status>(ex, &start);
  if (finish && st.ok()) w.removed = true;
  if (!st.ok()) {
    // The delivery happened but we could not record it: it may be repeated
    // (never lost). Say so loudly.
    log::Error(
        "{}: cannot record delivery outcomes: {} (recipients may be "
        "delivered again)",
        w.envelope.id, st.ToString());
  }
}

bool AgentImpl::IsOwnAddress(const std::string& ip, std::uint16_t port) const {
  for (const auto& l : config_->listeners) {
    if (l.host == ip && l.port == port) return true;
  }
  for (const auto& a : config_->delivery.own_addresses) {
    if (a == ip && port == config_->delivery.smtp_port) return true;
  }
  return false;
}

asio::awaitable<std::vector<SmtpTarget>> AgentImpl::Targets(
    const RouteDecision& route, Outcome& failure) {
  auto ex = co_await asio::this_coro::executor;
  std::vector<std::pair<std::string, std::uint16_t>> hosts;  // name, port
  if (route.kind == RouteDecision::Kind::kStatic) {
    hosts.emplace_back(route.host, route.port);
  } else {
    std::string domain = route.domain;
    std::function<void(dns::Resolver::MxCallback)> start =
        [this, domain](dns::Resolver::MxCallback cb) {
          resolver_->LookupMx(domain, std::move(cb));
        };
    dns::MxResult mx = co_await AwaitCallback<dns::MxResult>(ex, &start);
    switch (mx.status) {
      case dns::DnsStatus::kOk:
        for (const auto& h : mx.hosts) hosts.emplace_back(h.host, route.port);
        break;
      case dns::DnsStatus::kNoData:
        hosts.emplace_back(domain, route.port);  // implicit MX, RFC 5321 5.1
        break;
      case dns::DnsStatus::kNullMx:
        failure = Make(Verdict::kFailed, {5, 1, 10},
                       "x-petrel; domain " + domain +
                           " does not accept mail (null MX, RFC 7505)");
        co_return std::vector<SmtpTarget>{};
      case dns::DnsStatus::kNotFound:
        failure = Make(Verdict::kFailed, {5, 1, 2},
                       "x-petrel; domain " + domain + " does not exist");
        co_return std::vector<SmtpTarget>{};
      default:
        failure = Make(
            Verdict::kDeferred, {4, 4, 3},
            "x-petrel; MX lookup for " + domain + ": " +
                (mx.detail.empty() ? std::string(dns::DnsStatusName(mx.status))
                                   : mx.detail));
        co_return std::vector<SmtpTarget>{};
    }
  }
  std::vector<SmtpTarget> targets;
  std::string last_error;
  bool loops = false;
  for (const auto& [host, port] : hosts) {
    std::vector<std::string> addresses;
    if (dns::NormaliseName(host) && host.find(':') == std::string::npos &&
        !std::all_of(host.begin(), host.end(), [](char c) {
          return std::isdigit(static_cast<unsigned char>(c)) || c == '.';
        })) {
      std::string name = host;
      std::function<void(dns::Resolver::AddrCallback)> start =
          [this, name](dns::Resolver::AddrCallback cb) {
            resolver_->LookupAddresses(name, std::move(cb));
          };
      dns::AddrResult a = co_await AwaitCallback<dns::AddrResult>(ex, &start);
      if (a.status != dns::DnsStatus::kOk) {
        last_error =
            "address lookup for " + host + ": " +
            (a.detail.empty() ? std::string(dns::DnsStatusName(a.status))
                              : a.detail);
        if (hosts.size() == 1 && a.status == dns::DnsStatus::kNotFound &&
            route.kind == RouteDecision::Kind::kMx) {
          failure = Make(Verdict::kFailed, {5, 1, 2},
                         "x-petrel; domain " + host + " does not exist");
          co_return std::vector<SmtpTarget>{};
        }
        continue;
      }
      addresses = a.addresses;
    } else {
      addresses.push_back(host);  // an IP literal
    }
    for (const auto& ip : addresses) {
      if (IsOwnAddress(ip, port)) {
        loops = true;
        continue;
      }
      targets.push_back(SmtpTarget{host, ip, port});
    }
  }
  if (targets.empty()) {
    failure = loops ? Make(Verdict::kFailed, {5, 4, 6},
                           "x-petrel; mail for " + route.domain + route.host +
                               " loops back to myself")
                    : Make(Verdict::kDeferred, {4, 4, 3},
                           "x-petrel; " + (last_error.empty()
                                               ? std::string("no next hop")
                                               : last_error));
  }
  co_return targets;
}

asio::awaitable<void> AgentImpl::DeliverSmtpGroup(
    Work& w, const RouteDecision& route,
    const std::vector<std::size_t>& rcpts) {
  auto ex = co_await asio::this_coro::executor;
  Outcome failure;
  std::vector<SmtpTarget> targets = co_await Targets(route, failure);
  if (targets.empty()) {
    Outcomes all;
    for (auto i : rcpts) all.emplace_back(i, failure);
    co_await Persist(w, all);
    LogOutcomes(w.envelope, all, w.now);
    co_return;
  }
  ClientMessage msg;
  msg.id = w.envelope.id;
  msg.sender = w.envelope.sender;
  msg.smtputf8 = w.envelope.smtputf8;
  msg.eight_bit_mime = w.envelope.eight_bit_mime;
  msg.dsn_ret = w.envelope.dsn_ret;
  msg.dsn_envid = w.envelope.dsn_envid;
  msg.content = w.content;
  msg.arrival_unix = w.envelope.arrival_unix;
  msg.before_end_of_data =
      [this, id = w.envelope.id](const std::vector<std::size_t>& indexes) {
        journal_.Record(id, indexes);
      };
  std::set<std::size_t> unsettled(rcpts.begin(), rcpts.end());
  const std::string key = route.NextHopKey();
  co_await limits_.Acquire(key);
  Outcome last =
      Make(Verdict::kDeferred, {4, 4, 1}, "x-petrel; no host reachable");
  for (const auto& target : targets) {
    if (unsettled.empty()) break;
    msg.recipients.clear();
    for (auto i : unsettled) {
      const auto& r = w.envelope.recipients[i];
      msg.recipients.push_back(ClientRecipient{i, r.address, r.notify,
                                               r.orcpt_type, r.orcpt_address});
    }
    ClientOptions options = client_;
    options.tls_policy = route.tls_policy;
    options.credentials = credentials_.Find(
        route.kind == RouteDecision::Kind::kStatic ? route.host : target.host,
        target.port);
    const std::string tag =
        std::string(config::TlsPolicyName(options.tls_policy)) +
        (options.credentials ? "|auth:" + options.credentials->user : "");
    std::unique_ptr<SmtpConnection> conn = cache_->Take(target, tag);
    if (!conn) {
      auto opened = co_await SmtpConnection::Open(ex, target, options);
      if (!opened) {
        last = opened.error().outcome;
        if (opened.error().try_next_host) continue;
        break;
      }
      conn = std::move(*opened);
    }
    TransactionDone done = [this, &w,
                            &unsettled](Outcomes o) -> asio::awaitable<void> {
      for (const auto& [i, _] : o) unsettled.erase(i);
      co_await Persist(w, o);
    };
    co_await conn->Deliver(msg, done);
    if (conn->usable()) {
      // The next message to this host reuses it.
      cache_->Put(std::move(conn), tag);
    } else {
      co_await conn->Quit();
    }
    if (unsettled.empty()) break;
    last =
        Make(Verdict::kDeferred, {4, 4, 2},
             "x-petrel; connection to " + target.host + "[" + target.address +
                 "] ended before every recipient was "
                 "settled");
  }
  limits_.Release(key);
  if (!unsettled.empty()) {
    Outcomes rest;
    for (auto i : unsettled) rest.emplace_back(i, last);
    co_await Persist(w, rest);
    LogOutcomes(w.envelope, rest, w.now);
  }
}

asio::awaitable<void> AgentImpl::DeliverLocalGroup(
    Work& w, const std::vector<std::size_t>& rcpts,
    const std::vector<RouteDecision>& routes) {
  Outcomes outcomes;
  std::vector<std::vector<std::string>> forwards;
  std::function<void()> work = [&] {
    for (auto i : rcpts) {
      std::vector<std::string> forward;
      outcomes.emplace_back(i, DeliverLocal(*config_, aliases_, w.envelope, i,
                                            routes[i], *w.content, forward));
      if (outcomes.back().second.verdict == Verdict::kDelivered) {
        forwards.push_back(std::move(forward));
      }
    }
  };
  co_await pool_.Run(co_await asio::this_coro::executor, &work);
  // Alias targets in other domains: one forwarded copy, queued before the
  // alias recipient is recorded as done (a crash in between forwards twice,
  // never loses).
  std::vector<std::string> remote;
  for (auto& f : forwards) {
    for (auto& a : f) {
      if (std::find(remote.begin(), remote.end(), a) == remote.end()) {
        remote.push_back(std::move(a));
      }
    }
  }
  if (!remote.empty()) {
    spool::Envelope e;
    e.id = NewQueueId();
    e.sender = w.envelope.sender;
    e.smtputf8 = w.envelope.smtputf8;
    e.eight_bit_mime = w.envelope.eight_bit_mime;
    e.protocol = "local";
    e.helo = config_->server.hostname;
    e.arrival_unix = NowUnix();
    e.next_attempt_unix = e.arrival_unix;
    for (auto& a : remote) {
      spool::Recipient r;
      r.address = std::move(a);
      e.recipients.push_back(std::move(r));
    }
    co_await Submit(std::move(e), *w.content,
                    "alias expansion of " + w.envelope.id);
  }
  co_await Persist(w, outcomes);
  LogOutcomes(w.envelope, outcomes, w.now);
}

asio::awaitable<void> AgentImpl::Submit(spool::Envelope e, std::string content,
                                        const std::string& why) {
  const std::string id = e.id;
  Status st;
  std::function<void()> work = [&] {
    auto writer = spool_.NewMessage(id);
    std::promise<Status> committed;
    writer->Append(std::move(content), [](Status) {});
    writer->Commit(std::move(e), [&](Status s) { committed.set_value(s); });
    st = committed.get_future().get();
  };
  co_await pool_.Run(co_await asio::this_coro::executor, &work);
  if (!st.ok()) {
    log::Error("cannot queue the message for {}: {}", why, st.ToString());
    co_return;
  }
  log::Info("{}: queued for {}", id, why);
  if (on_new_) on_new_(id);
}

asio::awaitable<void> AgentImpl::SubmitDsn(Work& w,
                                           std::vector<std::size_t> rcpts,
                                           DsnEvent event) {
  DsnRequest req;
  req.reporting_mta = config_->server.hostname;
  req.queue_id = w.envelope.id;
  req.sender = w.envelope.sender;
  req.smtputf8 = w.envelope.smtputf8;
  req.ret = static_cast<smtp::DsnRet>(w.envelope.dsn_ret);
  req.envid = w.envelope.dsn_envid;
  req.arrival_unix = w.envelope.arrival_unix;
  req.content =
      std::string_view(*w.content)
          .substr(0, std::min(w.content->size(), kDsnContentReadOctets));
  req.now_unix = NowUnix();
  for (auto i : rcpts) {
    const auto& r = w.envelope.recipients[i];
    DsnRecipientReport rep;
    rep.final_recipient = r.address;
    rep.original_type = r.orcpt_type;
    rep.original_address = r.orcpt_address;
    rep.remote_mta = r.remote_mta;
    rep.last_attempt_unix = r.last_attempt_unix;
    if (event == DsnEvent::kFailure) {
      rep.action = DsnAction::kFailed;
      // last_reply of a failed recipient is "X.Y.Z diagnostic" (Persist).
      auto space = r.last_reply.find(' ');
      auto status = smtp::ParseEnhancedStatus(r.last_reply.substr(0, space));
      rep.status = status.value_or(smtp::EnhancedStatus{5, 0, 0});
      rep.diagnostic_code = space == std::string::npos
                                ? r.last_reply
                                : r.last_reply.substr(space + 1);
    } else {
      rep.action = DsnAction::kDelayed;
      rep.status = {4, 0, 0};
      rep.diagnostic_code = r.last_reply;
      rep.will_retry_until_unix = w.envelope.arrival_unix +
                                  config_->delivery.max_queue_lifetime.count();
    }
    req.recipients.push_back(std::move(rep));
  }
  Dsn dsn = BuildDsn(req);
  spool::Envelope e;
  e.id = NewQueueId();
  e.sender = "";  // from the null sender: never bounced itself
  e.smtputf8 = dsn.smtputf8;
  e.eight_bit_mime = dsn.eight_bit;
  e.protocol = "local";
  e.helo = config_->server.hostname;
  e.arrival_unix = NowUnix();
  e.next_attempt_unix = e.arrival_unix;
  spool::Recipient to;
  to.address = w.envelope.sender;
  to.notify = smtp::kNotifyNever;
  e.recipients.push_back(std::move(to));
  co_await Submit(
      std::move(e), std::move(dsn.message),
      std::string(event == DsnEvent::kFailure ? "non-delivery" : "delay") +
          " notification of " + w.envelope.id);
}

asio::awaitable<void> AgentImpl::SendDsns(Work& w) {
  // One failure DSN for everything that failed in this attempt.
  std::vector<std::size_t> failed;
  for (auto i : w.failed_now) {
    const auto& r = w.envelope.recipients[i];
    if (ShouldSendDsn(w.envelope.sender, r.notify, DsnEvent::kFailure)) {
      failed.push_back(i);
    }
  }
  if (!failed.empty()) co_await SubmitDsn(w, failed, DsnEvent::kFailure);

  // One delay DSN, once, for recipients still pending after the warning time.
  const auto warn = config_->delivery.delay_warning_after.count();
  if (warn <= 0 || w.now - w.envelope.arrival_unix < warn) co_return;
  std::vector<std::size_t> delayed;
  std::vector<std::pair<std::size_t, spool::Recipient>> marks;
  for (std::size_t i = 0; i < w.envelope.recipients.size(); ++i) {
    auto& r = w.envelope.recipients[i];
    if (r.state != spool::RecipientState::kPending || r.dsn_sent) continue;
    r.dsn_sent = true;
    marks.emplace_back(i, r);
    if (ShouldSendDsn(w.envelope.sender, r.notify, DsnEvent::kDelay)) {
      delayed.push_back(i);
    }
  }
  if (marks.empty()) co_return;
  std::function<void(spool::Callback)> start = [&](spool::Callback done) {
    spool_.UpdateRecipientsAsync(w.envelope.id, std::move(marks),
                                 std::move(done));
  };
  asio::any_io_executor ex = co_await asio::this_coro::executor;
  Status st = co_await AwaitCallback<Status>(ex, &start);
  if (st.ok() && !delayed.empty()) {
    co_await SubmitDsn(w, delayed, DsnEvent::kDelay);
  }
}

asio::awaitable<queue::AttemptResult> AgentImpl::Attempt(std::string id) {
  Work w;
  w.may_remove = true;
  queue::AttemptResult result;
  Status st = co_await Load(id, w);
  if (!st.ok()) {
    log::Error("{}: cannot read from the spool: {}", id, st.ToString());
    co_return result;
  }
  std::vector<std::size_t> pending;
  for (std::size_t i = 0; i < w.envelope.recipients.size(); ++i) {
    if (w.envelope.recipients[i].state == spool::RecipientState::kPending) {
      pending.push_back(i);
    }
  }
  for (std::size_t i : journal_.TakeSuspects(id)) {
    if (i < w.envelope.recipients.size() &&
        w.envelope.recipients[i].state == spool::RecipientState::kPending) {
      log::Warning(
          "{}: to=<{}>: the last run stopped after the end of data was sent "
          "and before the reply was recorded: possible duplicate delivery "
          "(RFC 1047)",
          id, w.envelope.recipients[i].address);
    }
  }
  const auto lifetime = config_->delivery.max_queue_lifetime.count();
  if (!pending.empty() && w.now - w.envelope.arrival_unix >= lifetime) {
    Outcomes expired;
    for (auto i : pending) {
      const auto& r = w.envelope.recipients[i];
      Outcome o = Make(
          Verdict::kFailed, {4, 4, 7},
          "x-petrel; message expired after " +
              FormatDuration(Seconds(lifetime)) + " in the queue" +
              (r.last_reply.empty() ? "" : " (last: " + r.last_reply + ")"));
      expired.emplace_back(i, o);
    }
    co_await Persist(w, expired);
    LogOutcomes(w.envelope, expired, w.now);
    pending.clear();
  }

  std::vector<RouteDecision> routes(w.envelope.recipients.size());
  std::vector<std::size_t> local;
  std::map<std::string, std::vector<std::size_t>> smtp_groups;
  Outcomes refused;
  for (auto i : pending) {
    routes[i] = Route(*config_, w.envelope.recipients[i].address);
    switch (routes[i].kind) {
      case RouteDecision::Kind::kFail:
        refused.emplace_back(
            i, Make(Verdict::kFailed, routes[i].status, routes[i].diagnostic));
        break;
      case RouteDecision::Kind::kLocal:
        local.push_back(i);
        break;
      default:
        smtp_groups[routes[i].NextHopKey()].push_back(i);
    }
  }
  if (!refused.empty()) {
    co_await Persist(w, refused);
    LogOutcomes(w.envelope, refused, w.now);
  }
  if (!local.empty()) co_await DeliverLocalGroup(w, local, routes);
  for (auto& [key, rcpts] : smtp_groups) {
    co_await DeliverSmtpGroup(w, routes[rcpts.front()], rcpts);
  }
  co_await SendDsns(w);

  result.finished = true;
  result.removed = w.removed;
  for (const auto& r : w.envelope.recipients) {
    result.attempts = std::max(result.attempts, r.attempts);
    if (r.state == spool::RecipientState::kPending) result.finished = false;
  }
  co_return result;
}

asio::awaitable<Status> AgentImpl::BounceAll(std::string id) {
  Work w;
  Status st = co_await Load(id, w);
  if (!st.ok()) co_return st;
  Outcomes bounced;
  for (std::size_t i = 0; i < w.envelope.recipients.size(); ++i) {
    if (w.envelope.recipients[i].state == spool::RecipientState::kPending) {
      bounced.emplace_back(i, Make(Verdict::kFailed, {5, 0, 0},
                                   "x-petrel; bounced by the operator"));
    }
  }
  co_await Persist(w, bounced);
  LogOutcomes(w.envelope, bounced, w.now);
  co_await SendDsns(w);
  co_return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<Agent>> NewAgent(
    asio::io_context& io, std::shared_ptr<const config::Config> config,
    spool::Spool& spool, BlockingPool& pool, OnNewMessage on_new_message) {
  dns::ResolverOptions ro;
  ro.servers = config->dns.servers;
  auto resolver = dns::Resolver::Create(ro);
  if (!resolver) {
    return Error(
        Status::InvalidArgument("dns.servers: " + resolver.error().message()));
  }
  Aliases aliases;
  if (!config->local.aliases.empty()) {
    auto loaded = Aliases::Load(config->local.aliases);
    if (!loaded) {
      return Error(Status::InvalidArgument("local.aliases: " +
                                           loaded.error().message()));
    }
    aliases = std::move(*loaded);
  }
  Credentials credentials;
  if (!config->delivery.credentials.empty()) {
    auto loaded = Credentials::Load(config->delivery.credentials);
    if (!loaded) {
      return Error(Status::InvalidArgument("delivery.credentials: " +
                                           loaded.error().message()));
    }
    credentials = std::move(*loaded);
  }
  return std::unique_ptr<Agent>(new AgentImpl(
      io, std::move(config), spool, pool, std::move(*resolver),
      std::move(aliases), std::move(credentials), std::move(on_new_message)));
}

}  // namespace petrel::delivery
