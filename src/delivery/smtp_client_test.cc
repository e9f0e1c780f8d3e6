// SmtpConnection against a scripted SMTP peer on 127.0.0.1 (an Asio
// coroutine server in this file). Each scenario is a PeerScript; the peer
// records what it received, transaction by transaction, so the tests count
// deliveries per recipient (exactly once) on the receiving side as well as
// the outcomes on the sending side. No assertion depends on timing: pauses
// only change how the replies are cut, and every limit is generous.
#include "delivery/smtp_client.h"

#include <gtest/gtest.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/log.h"
#include "tls/tls.h"

namespace petrel::delivery {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;
constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);

// Markers in a scripted reply: kPause waits 200 ms before the rest;
// kByteByByte writes the rest one octet at a time, 5 ms apart; kClose
// closes the connection (after writing what came before it).
constexpr char kPause = '\x01';
constexpr char kByteByByte = '\x02';
constexpr char kClose = '\x03';

struct PeerTxn {
  int connection = 0;
  std::string mail;                   // the MAIL command line
  std::vector<std::string> rcpts;     // RCPT command lines
  std::vector<std::string> accepted;  // addresses answered 2xx
  std::vector<std::string> bdat;      // BDAT command lines
  std::string data;  // DATA: raw octets through CRLF.CRLF; BDAT: chunks
  bool data_complete = false;
  bool delivered = false;  // 2xx to the end of data was written
  bool tls = false;        // received inside TLS
};

struct PeerScript {
  std::string greeting = "220 peer.test ESMTP\r\n";
  std::vector<std::string> keywords = {"PIPELINING", "8BITMIME",
                                       "ENHANCEDSTATUSCODES"};
  std::string ehlo;  // replaces the EHLO reply when set
  // The reply to a RCPT; `n`: RCPTs before it in this transaction.
  std::function<std::string(int connection, const PeerTxn&, std::size_t n,
                            const std::string& address)>
      rcpt;
  std::string data_reply = "354 End data with <CR><LF>.<CR><LF>\r\n";
  std::function<std::string(int connection, const PeerTxn&)> end;
  // Set: STARTTLS is offered (until TLS is on) and done with this
  // certificate, after `starttls_reply` is written in one write. A reply
  // that is not 2xx, or that ends in kClose, stops there.
  std::shared_ptr<tls::ServerContext> tls;
  std::string starttls_reply = "220 2.0.0 Ready to start TLS\r\n";
};

struct PeerRecord {
  std::vector<PeerTxn> txns;
  std::vector<std::string> commands;
  int connections = 0;
  // A command arrived before the reply to the one before it was written.
  bool pipelined = false;
  // Connections on which STARTTLS came, and on which the handshake was done.
  std::vector<int> starttls;
  std::vector<int> tls_handshakes;
};

// The peer's side of one connection: TCP, then TLS after STARTTLS.
struct PeerConn {
  std::shared_ptr<tcp::socket> socket;
  std::unique_ptr<tls::ServerStream> tls;
};

asio::awaitable<error_code> PeerWrite(PeerConn& c, const std::string& bytes) {
  const asio::const_buffer buffer = asio::buffer(bytes);
  if (c.tls) {
    const error_code ec = co_await c.tls->Write(buffer);
    co_return ec;
  }
  error_code ec;
  std::size_t n = 0;
  std::tie(ec, n) = co_await asio::async_write(*c.socket, buffer, kUseTuple);
  co_return ec;
}

asio::awaitable<std::pair<error_code, std::size_t>> PeerRead(
    PeerConn& c, asio::mutable_buffer buffer) {
  if (c.tls) {
    const auto result = co_await c.tls->ReadSome(buffer);
    co_return result;
  }
  error_code ec;
  std::size_t n = 0;
  std::tie(ec, n) = co_await c.socket->async_read_some(buffer, kUseTuple);
  co_return std::make_pair(ec, n);
}

std::string EhloReply(const PeerScript& script, bool offer_starttls) {
  if (!script.ehlo.empty()) return script.ehlo;
  std::vector<std::string> keywords = script.keywords;
  if (offer_starttls) keywords.push_back("STARTTLS");
  std::string out = "250";
  out += keywords.empty() ? " " : "-";
  out += "peer.test\r\n";
  for (std::size_t i = 0; i < keywords.size(); ++i) {
    out += (i + 1 == keywords.size() ? "250 " : "250-") + keywords[i] + "\r\n";
  }
  return out;
}

std::string AddressOf(const std::string& line) {
  const std::size_t open = line.find('<');
  const std::size_t close = line.find('>', open);
  if (open == std::string::npos || close == std::string::npos) return "";
  return line.substr(open + 1, close - open - 1);
}

asio::awaitable<void> Sleep(std::chrono::milliseconds how_long) {
  asio::steady_timer timer(co_await asio::this_coro::executor, how_long);
  co_await timer.async_wait(kUseTuple);
}

// Writes a scripted reply; false once the connection is (to be) closed.
asio::awaitable<bool> Say(PeerConn& conn, const std::string& text) {
  tcp::socket& socket = *conn.socket;
  bool byte_by_byte = false;
  std::string pending;
  error_code ec;
  std::size_t n = 0;
  for (char c : text) {
    if (c == kPause || c == kByteByByte || c == kClose) {
      if (!pending.empty()) {
        ec = co_await PeerWrite(conn, pending);
        if (ec) co_return false;
        pending.clear();
      }
      if (c == kPause) co_await Sleep(std::chrono::milliseconds(200));
      if (c == kByteByByte) byte_by_byte = true;
      if (c == kClose) {
        // A graceful close: FIN, then read (and drop) until the client
        // closes too, so that no unread input turns it into a reset that
        // could overtake the reply just written.
        socket.shutdown(tcp::socket::shutdown_send, ec);
        char sink[4096];
        for (;;) {
          std::tie(ec, n) =
              co_await socket.async_read_some(asio::buffer(sink), kUseTuple);
          if (ec) break;
        }
        socket.close(ec);
        co_return false;
      }
      continue;
    }
    pending += c;
    if (byte_by_byte) {
      ec = co_await PeerWrite(conn, pending);
      if (ec) co_return false;
      pending.clear();
      co_await Sleep(std::chrono::milliseconds(5));
    }
  }
  if (!pending.empty()) {
    ec = co_await PeerWrite(conn, pending);
    if (ec) co_return false;
  }
  co_return true;
}

// Reads until `buffer` holds `needle` (or at least `octets` octets when
// needle is empty); false on EOF or error.
asio::awaitable<bool> FillUntil(PeerConn& conn, std::string& buffer,
                                std::string_view needle, std::size_t octets) {
  char chunk[4096];
  for (;;) {
    if (needle.empty() ? buffer.size() >= octets
                       : buffer.find(needle) != std::string::npos) {
      co_return true;
    }
    error_code ec;
    std::size_t n = 0;
    std::tie(ec, n) = co_await PeerRead(conn, asio::buffer(chunk));
    if (ec) co_return false;
    buffer.append(chunk, n);
  }
}

asio::awaitable<void> PeerSession(std::shared_ptr<tcp::socket> socket,
                                  const PeerScript* script, PeerRecord* record,
                                  int connection) {
  PeerConn s{std::move(socket), nullptr};
  std::string buffer;
  std::optional<std::size_t> txn;  // index in record->txns
  if (!co_await Say(s, script->greeting)) co_return;
  for (;;) {
    if (!co_await FillUntil(s, buffer, "\r\n", 0)) co_return;
    const std::size_t eol = buffer.find("\r\n");
    const std::string line = buffer.substr(0, eol);
    buffer.erase(0, eol + 2);
    record->commands.push_back(line);
    std::string verb = line.substr(0, line.find(' '));
    for (char& c : verb) c = static_cast<char>(std::toupper(c));
    if (verb != "BDAT" && !buffer.empty()) record->pipelined = true;

    std::string reply;
    if (verb == "EHLO") {
      reply = EhloReply(*script, script->tls && !s.tls);
    } else if (verb == "STARTTLS" && script->tls && !s.tls) {
      record->starttls.push_back(connection);
      if (!co_await Say(s, script->starttls_reply)) co_return;
      if (script->starttls_reply[0] != '2') continue;
      buffer.clear();  // RFC 3207 4.2 (server side): nothing carried over
      txn.reset();
      s.tls = std::make_unique<tls::ServerStream>(script->tls, *s.socket);
      const error_code ec = co_await s.tls->Handshake();
      if (ec) co_return;
      record->tls_handshakes.push_back(connection);
      continue;
    } else if (verb == "HELO") {
      reply = "250 peer.test\r\n";
    } else if (verb == "MAIL") {
      PeerTxn t;
      t.connection = connection;
      t.tls = s.tls != nullptr;
      t.mail = line;
      record->txns.push_back(t);
      txn = record->txns.size() - 1;
      reply = "250 2.1.0 Ok\r\n";
    } else if (verb == "RCPT") {
      if (!txn) {
        reply = "503 5.5.1 Error: need MAIL command\r\n";
      } else {
        PeerTxn& t = record->txns[*txn];
        const std::string address = AddressOf(line);
        reply = script->rcpt
                    ? script->rcpt(connection, t, t.rcpts.size(), address)
                    : "250 2.1.5 Ok\r\n";
        t.rcpts.push_back(line);
        if (reply[0] == '2') t.accepted.push_back(address);
      }
    } else if (verb == "DATA" || verb == "BDAT") {
      if (!txn || record->txns[*txn].accepted.empty()) {
        reply = "554 5.5.1 Error: no valid recipients\r\n";
        if (verb == "BDAT") co_return;  // cannot skip the chunk: give up
      } else {
        PeerTxn& t = record->txns[*txn];
        bool last = true;
        if (verb == "DATA") {
          if (!co_await Say(s, script->data_reply)) co_return;
          // The data ends at CRLF.CRLF, or at ".CRLF" if it is empty.
          std::size_t end = std::string::npos;
          for (;;) {
            if (buffer.starts_with(".\r\n")) {
              end = 3;
              break;
            }
            const std::size_t at = buffer.find("\r\n.\r\n");
            if (at != std::string::npos) {
              end = at + 5;
              break;
            }
            if (!co_await FillUntil(s, buffer, "\r\n.\r\n", 0)) co_return;
          }
          t.data = buffer.substr(0, end);
          buffer.erase(0, end);
        } else {
          t.bdat.push_back(line);
          const std::size_t size = std::stoul(line.substr(5));
          last = line.find(" LAST") != std::string::npos;
          if (!co_await FillUntil(s, buffer, "", size)) co_return;
          t.data += buffer.substr(0, size);
          buffer.erase(0, size);
        }
        if (last) {
          t.data_complete = true;
          txn.reset();
          reply = script->end ? script->end(connection, t)
                              : "250 2.0.0 Ok: queued as PEER\r\n";
          // Recorded before the write: once the reply is on its way the
          // peer has taken responsibility.
          const std::size_t first =
              reply.find_first_not_of(std::string{kPause, kByteByByte});
          if (first != std::string::npos && reply[first] == '2') {
            t.delivered = true;
          }
        } else {
          reply = "250 2.0.0 Ok: chunk received\r\n";
        }
      }
    } else if (verb == "RSET") {
      txn.reset();
      reply = "250 2.0.0 Ok\r\n";
    } else if (verb == "QUIT") {
      co_await Say(s, "221 2.0.0 Bye\r\n");
      co_return;
    } else {
      reply = "502 5.5.2 Error: command not recognized\r\n";
    }
    if (!co_await Say(s, reply)) co_return;
  }
}

asio::awaitable<void> AcceptLoop(tcp::acceptor* acceptor,
                                 const PeerScript* script, PeerRecord* record) {
  for (;;) {
    auto socket = std::make_shared<tcp::socket>(acceptor->get_executor());
    error_code ec;
    std::tie(ec) = co_await acceptor->async_accept(*socket, kUseTuple);
    if (ec) co_return;
    socket->set_option(tcp::no_delay(true), ec);
    const int connection = ++record->connections;
    asio::co_spawn(acceptor->get_executor(),
                   PeerSession(socket, script, record, connection),
                   asio::detached);
  }
}

// What the client side saw.
struct ClientSide {
  std::vector<Outcomes> saves;  // one per `done` call
  std::vector<ConnectFailure> failures;
  // SmtpConnection::tls_summary() of each connection opened.
  std::vector<std::string> tls_summaries;
};

struct Scenario {
  PeerScript script;
  ClientOptions options;
  std::vector<ClientMessage> messages;
  // Each message on a new connection (else one connection while usable).
  bool new_connection_each = false;
  // Results.
  PeerRecord record;
  ClientSide client;
  bool finished = false;
};

asio::awaitable<void> SaveOutcomes(ClientSide* client, Outcomes outcomes) {
  client->saves.push_back(std::move(outcomes));
  co_return;
}

asio::awaitable<void> ClientMain(Scenario* sc, std::uint16_t port,
                                 tcp::acceptor* acceptor,
                                 asio::steady_timer* watchdog) {
  const auto ex = co_await asio::this_coro::executor;
  const SmtpTarget target{"peer.test", "127.0.0.1", port};
  ClientSide* client = &sc->client;
  const TransactionDone done = [client](Outcomes outcomes) {
    return SaveOutcomes(client, std::move(outcomes));
  };
  std::unique_ptr<SmtpConnection> conn;
  for (const ClientMessage& message : sc->messages) {
    if (conn && (sc->new_connection_each || !conn->usable())) {
      co_await conn->Quit();
      conn.reset();
    }
    if (!conn) {
      auto opened = co_await SmtpConnection::Open(ex, target, sc->options);
      if (!opened) {
        sc->client.failures.push_back(opened.error());
        continue;
      }
      conn = std::move(*opened);
      sc->client.tls_summaries.push_back(conn->tls_summary());
    }
    co_await conn->Deliver(message, done);
  }
  if (conn) co_await conn->Quit();
  sc->finished = true;
  error_code ignored;
  acceptor->close(ignored);
  watchdog->cancel();
}

void RunScenario(Scenario& sc) {
  asio::io_context io;
  tcp::acceptor acceptor(io,
                         tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const std::uint16_t port = acceptor.local_endpoint().port();
  // Only against a hang (a bug): never reached by a passing test.
  asio::steady_timer watchdog(io, std::chrono::seconds(120));
  watchdog.async_wait([&io](error_code ec) {
    if (!ec) io.stop();
  });
  asio::co_spawn(io, AcceptLoop(&acceptor, &sc.script, &sc.record),
                 asio::detached);
  asio::co_spawn(io, ClientMain(&sc, port, &acceptor, &watchdog),
                 asio::detached);
  io.run();
  ASSERT_TRUE(sc.finished) << "the scenario did not finish";
}

ClientMessage Message(std::size_t recipients,
                      std::string content = "Subject: test\r\n\r\nHello\r\n") {
  ClientMessage m;
  m.id = "4F3A";
  m.sender = "sender@example.org";
  m.content = std::make_shared<const std::string>(std::move(content));
  for (std::size_t i = 0; i < recipients; ++i) {
    ClientRecipient r;
    r.index = i;
    r.address = "r" + std::to_string(i) + "@example.net";
    m.recipients.push_back(r);
  }
  return m;
}

ClientOptions Options() {
  ClientOptions o;
  o.helo_name = "client.test";
  return o;
}

// Every recipient's outcomes over all saves, by caller index.
std::map<std::size_t, std::vector<Outcome>> ByIndex(const ClientSide& c) {
  std::map<std::size_t, std::vector<Outcome>> out;
  for (const Outcomes& save : c.saves) {
    for (const auto& [index, outcome] : save) out[index].push_back(outcome);
  }
  return out;
}

// How many delivered transactions on the peer held each address.
std::map<std::string, int> Deliveries(const PeerRecord& record) {
  std::map<std::string, int> out;
  for (const PeerTxn& t : record.txns) {
    if (!t.delivered) continue;
    for (const std::string& a : t.accepted) ++out[a];
  }
  return out;
}

// Every recipient of `m` got exactly one outcome, of `verdict`; with
// kDelivered, the peer delivered each exactly once.
void ExpectEveryone(const Scenario& sc, const ClientMessage& m,
                    Verdict verdict) {
  const auto outcomes = ByIndex(sc.client);
  const auto deliveries = Deliveries(sc.record);
  for (const ClientRecipient& r : m.recipients) {
    SCOPED_TRACE(r.address);
    auto it = outcomes.find(r.index);
    ASSERT_NE(it, outcomes.end());
    ASSERT_EQ(it->second.size(), 1u);
    EXPECT_EQ(it->second[0].verdict, verdict) << it->second[0].diagnostic;
    auto d = deliveries.find(r.address);
    EXPECT_EQ(d == deliveries.end() ? 0 : d->second,
              verdict == Verdict::kDelivered ? 1 : 0);
  }
  EXPECT_EQ(outcomes.size(), m.recipients.size());
}

std::vector<std::size_t> AcceptedPerTxn(const PeerRecord& record) {
  std::vector<std::size_t> out;
  for (const PeerTxn& t : record.txns) out.push_back(t.accepted.size());
  return out;
}

// 250 recipients log 250 lines: only warnings while it lasts.
struct QuietLog {
  QuietLog() { log::Init("warning"); }
  ~QuietLog() { log::Init("info"); }
};

class TooManyRecipients
    : public ::testing::TestWithParam<std::tuple<std::string, std::uint32_t>> {
};

TEST_P(TooManyRecipients, ThreeTransactionsEachRecipientOnce) {
  // Seeds 000, 001, 004: a peer that takes 100 recipients per transaction
  // and refuses the rest with 452, 552 (RFC 821) or 522 (Exchange 5.0).
  const std::string refusal = std::get<0>(GetParam());
  const std::uint32_t our_max = std::get<1>(GetParam());
  QuietLog quiet;
  Scenario sc;
  sc.script.rcpt = [refusal](int, const PeerTxn&, std::size_t n,
                             const std::string&) {
    return n >= 100 ? refusal : std::string("250 2.1.5 Ok\r\n");
  };
  sc.options = Options();
  sc.options.max_recipients_per_transaction = our_max;
  sc.messages.push_back(Message(250));
  RunScenario(sc);
  ExpectEveryone(sc, sc.messages[0], Verdict::kDelivered);
  EXPECT_EQ(AcceptedPerTxn(sc.record),
            (std::vector<std::size_t>{100, 100, 50}));
  for (const PeerTxn& t : sc.record.txns) EXPECT_TRUE(t.delivered);
  ASSERT_EQ(sc.client.saves.size(), 3u);
  EXPECT_EQ(sc.client.saves[0].size(), 100u);
  EXPECT_EQ(sc.client.saves[1].size(), 100u);
  EXPECT_EQ(sc.client.saves[2].size(), 50u);
  EXPECT_EQ(sc.record.connections, 1);
}

INSTANTIATE_TEST_SUITE_P(
    Replies, TooManyRecipients,
    ::testing::Combine(
        ::testing::Values(
            std::string("452 4.5.3 Error: too many recipients\r\n"),
            std::string("552 Too many recipients\r\n"),
            std::string("522 Recipient buffer full\r\n")),
        // 1000: we send all 250 and the peer refuses the excess; 100: our
        // own limit cuts first.
        ::testing::Values(1000u, 100u)));

TEST(SmtpClient, LimitsRcptmax) {
  QuietLog quiet;
  Scenario sc;
  sc.script.keywords.push_back("LIMITS RCPTMAX=10");
  sc.options = Options();
  sc.messages.push_back(Message(250));
  RunScenario(sc);
  ExpectEveryone(sc, sc.messages[0], Verdict::kDelivered);
  ASSERT_EQ(sc.record.txns.size(), 25u);
  for (const PeerTxn& t : sc.record.txns) EXPECT_EQ(t.rcpts.size(), 10u);
  EXPECT_EQ(sc.client.saves.size(), 25u);
}

TEST(SmtpClient, FirstRecipientRefusedAsTooManyDefersAllWithoutLooping) {
  Scenario sc;
  sc.script.rcpt = [](int, const PeerTxn&, std::size_t, const std::string&) {
    return std::string("452 4.5.3 Error: too many recipients\r\n");
  };
  sc.options = Options();
  sc.messages.push_back(Message(5));
  RunScenario(sc);
  ExpectEveryone(sc, sc.messages[0], Verdict::kDeferred);
  EXPECT_EQ(sc.record.txns.size(), 1u);
  ASSERT_EQ(sc.client.saves.size(), 1u);
  EXPECT_EQ(sc.client.saves[0][0].second.status.ToString(), "4.5.3");
}

TEST(SmtpClient, MultilineDataReplyWithAPause) {
  // Seed 002.
  Scenario sc;
  sc.script.data_reply =
      std::string("354-Line 1\r\n") + kPause + "354 Send message\r\n";
  sc.options = Options();
  sc.messages.push_back(Message(2));
  RunScenario(sc);
  ExpectEveryone(sc, sc.messages[0], Verdict::kDelivered);
  EXPECT_EQ(sc.record.txns.size(), 1u);
}

TEST(SmtpClient, MultilineFinalReplyByteByByte) {
  Scenario sc;
  sc.script.end = [](int, const PeerTxn&) {
    return std::string(1, kByteByByte) + "250-2.0.0 Line one\r\n" + kPause +
           "250-2.0.0 Line two\r\n250 2.0.0 Ok: queued as ABC\r\n";
  };
  sc.options = Options();
  sc.messages.push_back(Message(2));
  RunScenario(sc);
  ExpectEveryone(sc, sc.messages[0], Verdict::kDelivered);
  const Outcome& o = sc.client.saves.at(0).at(0).second;
  EXPECT_EQ(o.diagnostic,
            "smtp; 250 2.0.0 Line one Line two Ok: queued as ABC");
  EXPECT_EQ(o.remote_mta, "peer.test[127.0.0.1]:" +
                              o.remote_mta.substr(o.remote_mta.rfind(':') + 1));
}

TEST(SmtpClient, Reply421InTheMiddleOfATransaction) {
  Scenario sc;
  sc.script.rcpt = [](int, const PeerTxn&, std::size_t n, const std::string&) {
    return n == 2 ? std::string("421 4.3.2 Shutting down\r\n") + kClose
                  : std::string("250 2.1.5 Ok\r\n");
  };
  sc.options = Options();
  sc.messages.push_back(Message(5));
  RunScenario(sc);
  ExpectEveryone(sc, sc.messages[0], Verdict::kDeferred);
  for (const auto& [index, outcome] : sc.client.saves.at(0)) {
    EXPECT_EQ(outcome.status.ToString(), "4.3.2");
    EXPECT_FALSE(outcome.possible_duplicate);
  }
  ASSERT_EQ(sc.record.txns.size(), 1u);
  EXPECT_FALSE(sc.record.txns[0].data_complete);
}

TEST(SmtpClient, ConnectionClosedAfterEndOfDataIsAPossibleDuplicate) {
  Scenario sc;
  sc.script.end = [](int, const PeerTxn&) { return std::string(1, kClose); };
  sc.options = Options();
  sc.messages.push_back(Message(3));
  RunScenario(sc);
  ExpectEveryone(sc, sc.messages[0], Verdict::kDeferred);
  for (const auto& [index, outcome] : sc.client.saves.at(0)) {
    EXPECT_TRUE(outcome.possible_duplicate);
    EXPECT_EQ(outcome.status.ToString(), "4.4.2");
    EXPECT_NE(outcome.detail.find("while sending end of data -- message may "
                                  "be sent more than once"),
              std::string::npos)
        << outcome.detail;
  }
  ASSERT_EQ(sc.record.txns.size(), 1u);
  EXPECT_TRUE(sc.record.txns[0].data_complete);  // the peer did get it all
}

TEST(SmtpClient, DeferredThenDeliveredOnAFreshConnection) {
  Scenario sc;
  sc.script.end = [](int connection, const PeerTxn&) {
    return connection == 1 ? std::string("451 4.3.0 Try again later\r\n")
                           : std::string("250 2.0.0 Ok: queued\r\n");
  };
  sc.options = Options();
  sc.messages.push_back(Message(2));
  sc.messages.push_back(Message(2));
  sc.new_connection_each = true;
  RunScenario(sc);
  ASSERT_EQ(sc.client.saves.size(), 2u);
  for (const auto& [index, outcome] : sc.client.saves[0]) {
    EXPECT_EQ(outcome.verdict, Verdict::kDeferred);
    EXPECT_EQ(outcome.diagnostic, "smtp; 451 4.3.0 Try again later");
  }
  for (const auto& [index, outcome] : sc.client.saves[1]) {
    EXPECT_EQ(outcome.verdict, Verdict::kDelivered);
  }
  EXPECT_EQ(sc.record.connections, 2);
  EXPECT_EQ(Deliveries(sc.record),
            (std::map<std::string, int>{{"r0@example.net", 1},
                                        {"r1@example.net", 1}}));
}

TEST(SmtpClient, SomeRecipientsRefused) {
  Scenario sc;
  sc.script.rcpt = [](int, const PeerTxn&, std::size_t n,
                      const std::string& address) {
    return n % 2 == 1 ? "550 5.1.1 <" + address +
                            ">: Recipient address rejected: User unknown\r\n"
                      : std::string("250 2.1.5 Ok\r\n");
  };
  sc.options = Options();
  sc.messages.push_back(Message(6));
  RunScenario(sc);
  const auto outcomes = ByIndex(sc.client);
  const auto deliveries = Deliveries(sc.record);
  ASSERT_EQ(outcomes.size(), 6u);
  for (std::size_t i = 0; i < 6; ++i) {
    ASSERT_EQ(outcomes.at(i).size(), 1u);
    const Outcome& o = outcomes.at(i)[0];
    const std::string address = "r" + std::to_string(i) + "@example.net";
    if (i % 2 == 1) {
      EXPECT_EQ(o.verdict, Verdict::kFailed);
      EXPECT_EQ(o.status.ToString(), "5.1.1");
      EXPECT_EQ(o.diagnostic, "smtp; 550 5.1.1 <" + address +
                                  ">: Recipient address rejected: User "
                                  "unknown");
      EXPECT_EQ(deliveries.count(address), 0u);
    } else {
      EXPECT_EQ(o.verdict, Verdict::kDelivered);
      EXPECT_EQ(deliveries.at(address), 1);
    }
  }
}

TEST(SmtpClient, EhloRefusedThenHelo) {
  Scenario sc;
  sc.script.ehlo = "502 5.5.2 Error: command not recognized\r\n";
  sc.options = Options();
  ClientMessage m = Message(2);
  m.eight_bit_mime = true;
  m.dsn_ret = 1;
  m.recipients[0].notify = 2;
  sc.messages.push_back(m);
  RunScenario(sc);
  ExpectEveryone(sc, sc.messages[0], Verdict::kDelivered);
  ASSERT_EQ(sc.record.txns.size(), 1u);
  EXPECT_EQ(sc.record.txns[0].mail, "MAIL FROM:<sender@example.org>");
  EXPECT_EQ(sc.record.txns[0].rcpts[0], "RCPT TO:<r0@example.net>");
  EXPECT_FALSE(sc.record.pipelined);
  EXPECT_EQ(sc.record.commands.at(0), "EHLO client.test");
  EXPECT_EQ(sc.record.commands.at(1), "HELO client.test");
}

TEST(SmtpClient, WithAndWithoutPipelining) {
  for (const bool offered : {false, true}) {
    SCOPED_TRACE(offered);
    Scenario sc;
    sc.script.keywords = {"8BITMIME", "ENHANCEDSTATUSCODES"};
    if (offered) sc.script.keywords.push_back("PIPELINING");
    sc.options = Options();
    sc.messages.push_back(Message(3));
    RunScenario(sc);
    ExpectEveryone(sc, sc.messages[0], Verdict::kDelivered);
    EXPECT_EQ(sc.record.pipelined, offered);
  }
}

TEST(SmtpClient, SizeTooSmallFailsWithoutSending) {
  Scenario sc;
  sc.script.keywords.push_back("SIZE 10");
  sc.options = Options();
  sc.messages.push_back(Message(2));
  RunScenario(sc);
  ExpectEveryone(sc, sc.messages[0], Verdict::kFailed);
  EXPECT_EQ(sc.client.saves.at(0).at(0).second.status.ToString(), "5.3.4");
  EXPECT_TRUE(sc.record.txns.empty());
}

TEST(SmtpClient, Smtputf8NeededButNotOffered) {
  Scenario sc;
  sc.options = Options();
  ClientMessage m = Message(1);
  m.smtputf8 = true;
  m.recipients[0].address = "jösé@example.net";
  sc.messages.push_back(m);
  RunScenario(sc);
  ExpectEveryone(sc, sc.messages[0], Verdict::kFailed);
  EXPECT_EQ(sc.client.saves.at(0).at(0).second.status.ToString(), "5.6.7");
  EXPECT_TRUE(sc.record.txns.empty());

  Scenario offered;
  offered.script.keywords.push_back("SMTPUTF8");
  offered.options = Options();
  offered.messages.push_back(m);
  RunScenario(offered);
  ExpectEveryone(offered, offered.messages[0], Verdict::kDelivered);
  EXPECT_EQ(offered.record.txns.at(0).mail,
            "MAIL FROM:<sender@example.org> SMTPUTF8");
}

TEST(SmtpClient, BdatWhenChunkingIsOffered) {
  Scenario sc;
  sc.script.keywords.push_back("CHUNKING");
  sc.options = Options();
  sc.options.bdat_chunk_octets = 8;
  sc.messages.push_back(Message(2, "Subject: x\r\n\r\n.dot\nlast"));
  RunScenario(sc);
  ExpectEveryone(sc, sc.messages[0], Verdict::kDelivered);
  ASSERT_EQ(sc.record.txns.size(), 1u);
  const PeerTxn& t = sc.record.txns[0];
  EXPECT_EQ(t.data, "Subject: x\r\n\r\n.dot\r\nlast\r\n");  // no stuffing
  ASSERT_EQ(t.bdat.size(), 3u);  // 23 octets in chunks of 8
  EXPECT_EQ(t.bdat.back().substr(t.bdat.back().size() - 5), " LAST");
  for (std::size_t i = 0; i + 1 < t.bdat.size(); ++i) {
    EXPECT_EQ(t.bdat[i].find("LAST"), std::string::npos);
  }
  for (const std::string& c : sc.record.commands) EXPECT_NE(c, "DATA");
}

TEST(SmtpClient, DsnParametersOnlyWhenOffered) {
  ClientMessage m = Message(2);
  m.dsn_ret = 1;  // FULL
  m.dsn_envid = "Q1 2";
  m.recipients[0].notify = 4 | 8;  // FAILURE,DELAY
  m.recipients[0].orcpt_type = "rfc822";
  m.recipients[0].orcpt_address = "orig+tag@example.net";
  for (const bool offered : {true, false}) {
    SCOPED_TRACE(offered);
    Scenario sc;
    if (offered) sc.script.keywords.push_back("DSN");
    sc.options = Options();
    sc.messages.push_back(m);
    RunScenario(sc);
    ExpectEveryone(sc, sc.messages[0], Verdict::kDelivered);
    const PeerTxn& t = sc.record.txns.at(0);
    if (offered) {
      EXPECT_EQ(t.mail, "MAIL FROM:<sender@example.org> RET=FULL ENVID=Q1+202");
      EXPECT_EQ(t.rcpts[0],
                "RCPT TO:<r0@example.net> NOTIFY=FAILURE,DELAY "
                "ORCPT=rfc822;orig+2Btag@example.net");
      EXPECT_EQ(t.rcpts[1], "RCPT TO:<r1@example.net>");
    } else {
      EXPECT_EQ(t.mail, "MAIL FROM:<sender@example.org>");
      EXPECT_EQ(t.rcpts[0], "RCPT TO:<r0@example.net>");
    }
  }
}

TEST(SmtpClient, DotStuffingAndLineEndsOnTheWire) {
  Scenario sc;
  sc.options = Options();
  sc.messages.push_back(
      Message(1, "Subject: dots\r\n\r\n.\r\n..\r\n.x\nbare LF\nlast"));
  RunScenario(sc);
  ExpectEveryone(sc, sc.messages[0], Verdict::kDelivered);
  EXPECT_EQ(sc.record.txns.at(0).data,
            "Subject: dots\r\n\r\n..\r\n...\r\n..x\r\nbare LF\r\nlast\r\n"
            ".\r\n");
}

TEST(SmtpClient, MalformedReplyDefers) {
  Scenario sc;
  sc.script.rcpt = [](int, const PeerTxn&, std::size_t n, const std::string&) {
    return n == 1 ? std::string("25O 2.1.5 Ok\r\n")
                  : std::string("250 2.1.5 Ok\r\n");
  };
  sc.options = Options();
  sc.messages.push_back(Message(3));
  RunScenario(sc);
  ExpectEveryone(sc, sc.messages[0], Verdict::kDeferred);
  for (const auto& [index, outcome] : sc.client.saves.at(0)) {
    EXPECT_EQ(outcome.status.ToString(), "4.5.0");
  }
}

TEST(SmtpClient, TwoMessagesOnOneConnection) {
  Scenario sc;
  sc.options = Options();
  sc.messages.push_back(Message(2));
  sc.messages.push_back(Message(3));
  RunScenario(sc);
  EXPECT_EQ(sc.record.connections, 1);
  EXPECT_EQ(sc.record.txns.size(), 2u);
  EXPECT_EQ(sc.client.saves.size(), 2u);
  for (const Outcomes& save : sc.client.saves) {
    for (const auto& [index, outcome] : save) {
      EXPECT_EQ(outcome.verdict, Verdict::kDelivered);
    }
  }
}

asio::awaitable<void> OpenOnly(const SmtpTarget* target,
                               const ClientOptions* options,
                               std::optional<ConnectFailure>* failure,
                               bool* opened) {
  const auto ex = co_await asio::this_coro::executor;
  auto r = co_await SmtpConnection::Open(ex, *target, *options);
  if (r) {
    *opened = true;
    co_await (*r)->Quit();
  } else {
    *failure = r.error();
  }
}

TEST(SmtpClient, ConnectionRefused) {
  std::uint16_t port = 0;
  {
    asio::io_context io;
    tcp::acceptor a(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    port = a.local_endpoint().port();
  }  // closed: nothing listens there now
  asio::io_context io;
  const SmtpTarget target{"gone.test", "127.0.0.1", port};
  const ClientOptions options = Options();
  std::optional<ConnectFailure> failure;
  bool opened = false;
  asio::co_spawn(io, OpenOnly(&target, &options, &failure, &opened),
                 asio::detached);
  io.run();
  ASSERT_FALSE(opened);
  ASSERT_TRUE(failure.has_value());
  EXPECT_TRUE(failure->try_next_host);
  EXPECT_EQ(failure->outcome.verdict, Verdict::kDeferred);
  EXPECT_EQ(failure->outcome.status.ToString(), "4.4.1");
  EXPECT_EQ(failure->outcome.diagnostic,
            "x-petrel; connect to gone.test[127.0.0.1]:" +
                std::to_string(port) + ": Connection refused");
}

TEST(SmtpClient, GreetingRefused) {
  Scenario sc;
  sc.script.greeting = "554 5.7.1 No SMTP service here\r\n";
  sc.options = Options();
  sc.messages.push_back(Message(1));
  RunScenario(sc);
  EXPECT_TRUE(sc.client.saves.empty());
  ASSERT_EQ(sc.client.failures.size(), 1u);
  const ConnectFailure& f = sc.client.failures[0];
  EXPECT_TRUE(f.try_next_host);
  EXPECT_EQ(f.outcome.verdict, Verdict::kDeferred);
  EXPECT_EQ(f.outcome.diagnostic, "smtp; 554 5.7.1 No SMTP service here");
}

// --- STARTTLS (policy "may") -----------------------------------------------

// A self-signed certificate for "peer.test", made once per run with the
// openssl command in a temporary directory (removed once loaded). Null if
// that failed (the test says so).
std::shared_ptr<tls::ServerContext> PeerTlsContext() {
  static const std::shared_ptr<tls::ServerContext> context =
      []() -> std::shared_ptr<tls::ServerContext> {
    std::string dir =
        (std::filesystem::temp_directory_path() / "petrel-tlsc-XXXXXX")
            .string();
    if (mkdtemp(dir.data()) == nullptr) return nullptr;
    const std::string command =
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
        "-nodes -days 2 -subj /CN=peer.test "
        "-addext subjectAltName=DNS:peer.test -keyout '" +
        dir + "/key.pem' -out '" + dir + "/cert.pem' 2>/dev/null";
    const int status = std::system(command.c_str());
    auto loaded = status == 0 ? tls::ServerContext::Load(dir + "/cert.pem",
                                                         dir + "/key.pem")
                              : tls::ServerContext::Load("", "");
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
    if (!loaded) return nullptr;
    return *loaded;
  }();
  return context;
}

std::vector<std::string> CommandVerbs(const PeerRecord& record) {
  std::vector<std::string> out;
  for (const std::string& c : record.commands) {
    out.push_back(c.substr(0, c.find_first_of(" :")));
  }
  return out;
}

TEST(SmtpClient, StartTlsDeliversOverTlsUntrusted) {
  Scenario sc;
  sc.script.tls = PeerTlsContext();
  ASSERT_NE(sc.script.tls, nullptr) << "could not make a certificate";
  sc.options = Options();
  sc.messages.push_back(Message(2));
  RunScenario(sc);
  ExpectEveryone(sc, sc.messages[0], Verdict::kDelivered);
  EXPECT_EQ(sc.record.connections, 1);
  EXPECT_EQ(sc.record.tls_handshakes, std::vector<int>{1});
  ASSERT_EQ(sc.record.txns.size(), 1u);
  EXPECT_TRUE(sc.record.txns[0].tls);  // the peer had it inside TLS
  // EHLO again inside TLS, and STARTTLS once.
  EXPECT_EQ(CommandVerbs(sc.record),
            (std::vector<std::string>{"EHLO", "STARTTLS", "EHLO", "MAIL",
                                      "RCPT", "RCPT", "DATA", "QUIT"}));
  ASSERT_EQ(sc.client.tls_summaries.size(), 1u);
  const std::string& summary = sc.client.tls_summaries[0];
  // Self-signed: the name matches but the chain is not trusted.
  EXPECT_TRUE(summary.starts_with(
      "Untrusted TLS connection established to peer.test[127.0.0.1]:"))
      << summary;
  EXPECT_NE(summary.find(": TLSv1.3 with cipher TLS_"), std::string::npos)
      << summary;
  EXPECT_TRUE(summary.ends_with(" bits)")) << summary;
}

// Issue 4: "250 injected" in the same write as the 220 is discarded; the
// client neither takes it as the reply to its EHLO inside TLS nor loses
// step.
TEST(SmtpClient, PlaintextInjectedAfterThe220IsIgnored) {
  Scenario sc;
  sc.script.tls = PeerTlsContext();
  ASSERT_NE(sc.script.tls, nullptr) << "could not make a certificate";
  sc.script.starttls_reply = "220 2.0.0 Ready\r\n250 injected\r\n";
  sc.options = Options();
  sc.messages.push_back(Message(2));
  // A second message on the same connection: still in step.
  ClientMessage second = Message(1);
  second.recipients[0].index = 7;
  second.recipients[0].address = "other@example.net";
  sc.messages.push_back(second);
  RunScenario(sc);
  const auto outcomes = ByIndex(sc.client);
  EXPECT_EQ(outcomes.size(), 3u);
  for (const auto& [index, list] : outcomes) {
    ASSERT_EQ(list.size(), 1u) << index;
    EXPECT_EQ(list[0].verdict, Verdict::kDelivered) << list[0].diagnostic;
  }
  EXPECT_EQ(sc.record.connections, 1);
  EXPECT_EQ(sc.record.tls_handshakes, std::vector<int>{1});
  ASSERT_EQ(sc.record.txns.size(), 2u);
  for (const PeerTxn& t : sc.record.txns) {
    EXPECT_TRUE(t.tls);
    EXPECT_TRUE(t.delivered);
  }
  EXPECT_EQ(Deliveries(sc.record),
            (std::map<std::string, int>{{"r0@example.net", 1},
                                        {"r1@example.net", 1},
                                        {"other@example.net", 1}}));
  EXPECT_EQ(sc.client.saves.size(), 2u);
  EXPECT_EQ(CommandVerbs(sc.record),
            (std::vector<std::string>{"EHLO", "STARTTLS", "EHLO", "MAIL",
                                      "RCPT", "RCPT", "DATA", "MAIL", "RCPT",
                                      "DATA", "QUIT"}));
}

TEST(SmtpClient, StartTlsRefusedContinuesInPlaintext) {
  Scenario sc;
  sc.script.tls = PeerTlsContext();
  ASSERT_NE(sc.script.tls, nullptr) << "could not make a certificate";
  sc.script.starttls_reply = "454 4.7.0 TLS not available\r\n";
  sc.options = Options();
  sc.messages.push_back(Message(1));
  RunScenario(sc);
  ExpectEveryone(sc, sc.messages[0], Verdict::kDelivered);
  EXPECT_EQ(sc.record.connections, 1);
  EXPECT_TRUE(sc.record.tls_handshakes.empty());
  ASSERT_EQ(sc.record.txns.size(), 1u);
  EXPECT_FALSE(sc.record.txns[0].tls);
  EXPECT_EQ(sc.client.tls_summaries, std::vector<std::string>{""});
}

TEST(SmtpClient, PolicyNoneNeverSendsStartTls) {
  Scenario sc;
  sc.script.tls = PeerTlsContext();
  ASSERT_NE(sc.script.tls, nullptr) << "could not make a certificate";
  sc.options = Options();
  sc.options.tls_policy = TlsPolicy::kNone;
  sc.messages.push_back(Message(1));
  RunScenario(sc);
  ExpectEveryone(sc, sc.messages[0], Verdict::kDelivered);
  EXPECT_TRUE(sc.record.starttls.empty());
  EXPECT_FALSE(sc.record.txns.at(0).tls);
}

// Issue 4: a failed handshake retries the same host at once in plaintext
// (once, without STARTTLS); the message is delivered exactly once.
class HandshakeFailure : public ::testing::TestWithParam<std::string> {};

TEST_P(HandshakeFailure, RetriedInPlaintextAndDeliveredOnce) {
  Scenario sc;
  sc.script.tls = PeerTlsContext();
  ASSERT_NE(sc.script.tls, nullptr) << "could not make a certificate";
  sc.script.starttls_reply = GetParam();
  sc.options = Options();
  sc.messages.push_back(Message(2));
  RunScenario(sc);
  ExpectEveryone(sc, sc.messages[0], Verdict::kDelivered);
  EXPECT_TRUE(sc.client.failures.empty());
  EXPECT_EQ(sc.record.connections, 2);
  EXPECT_EQ(sc.record.starttls, std::vector<int>{1});  // not on the retry
  EXPECT_TRUE(sc.record.tls_handshakes.empty());
  ASSERT_EQ(sc.record.txns.size(), 1u);
  EXPECT_EQ(sc.record.txns[0].connection, 2);
  EXPECT_FALSE(sc.record.txns[0].tls);
  EXPECT_EQ(sc.client.tls_summaries, std::vector<std::string>{""});
}

INSTANTIATE_TEST_SUITE_P(
    Peers, HandshakeFailure,
    ::testing::Values(
        // Closes right after the 220.
        std::string("220 2.0.0 Ready\r\n") + kClose,
        // Sends plaintext where the ServerHello should be, then closes.
        std::string("220 2.0.0 Ready\r\n") + kPause +
            "this is not a TLS record\r\n" + kClose));

}  // namespace
}  // namespace petrel::delivery
