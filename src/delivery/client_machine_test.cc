#include "delivery/client_machine.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "smtp/split_test_util.h"

namespace petrel::delivery {
namespace {

using smtp::testing::Chunks;
using smtp::testing::Escape;
using smtp::testing::ExpectSameForEverySplit;

constexpr std::string_view kContent = "Subject: t\r\n\r\nhello\r\n";

ClientMessage Msg(std::vector<std::string> rcpts,
                  std::string_view content = kContent) {
  ClientMessage m;
  m.id = "Q1";
  m.sender = "s@example.org";
  m.content = std::make_shared<const std::string>(content);
  for (std::size_t i = 0; i < rcpts.size(); ++i) {
    ClientRecipient r;
    r.index = 100 + i;  // the caller's index, not the position
    r.address = rcpts[i];
    m.recipients.push_back(r);
  }
  return m;
}

std::vector<std::string> Rcpts(std::size_t n) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back("r" + std::to_string(i) + "@example.net");
  }
  return out;
}

std::string Ehlo(const std::vector<std::string>& keywords) {
  if (keywords.empty()) return "250 peer.test\r\n";
  std::string out = "250-peer.test\r\n";
  for (std::size_t i = 0; i < keywords.size(); ++i) {
    out += (i + 1 == keywords.size() ? "250 " : "250-") + keywords[i] + "\r\n";
  }
  return out;
}

ClientOptions Options() {
  ClientOptions o;
  o.helo_name = "client.test";
  return o;
}

std::string ShowOutcome(std::size_t index, const Outcome& o) {
  return std::to_string(index) + " " + std::string(VerdictName(o.verdict)) +
         " " + o.status.ToString() + (o.possible_duplicate ? " dup" : "") +
         " " + o.diagnostic;
}

struct Result {
  std::string sent;      // every octet the client wrote
  std::string outcomes;  // each save's outcomes, saves separated by "--"
  std::string setup_failure;
  std::size_t transactions = 0;
  bool operator==(const Result&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Result& r) {
  return os << "sent: " << Escape(r.sent) << "\noutcomes:\n"
            << r.outcomes << "setup failure: " << r.setup_failure
            << "\ntransactions: " << r.transactions;
}

// Runs a whole connection: the peer's bytes come in `server` pieces, each
// given when the machine asks to read (EOF when they are used up); the
// messages are started in turn, then QUIT.
Result Drive(const Chunks& server,
             const std::vector<const ClientMessage*>& messages,
             const ClientOptions& options = Options()) {
  ClientMachine m(options, "peer.test[127.0.0.1]:25");
  Result result;
  std::size_t next_chunk = 0, next_message = 0;
  bool quit = false;
  for (int guard = 0; guard < 1000000; ++guard) {
    switch (m.action()) {
      case ClientMachine::Action::kWrite:
        result.sent += m.TakeOutput();
        break;
      case ClientMachine::Action::kRead:
        if (next_chunk < server.size()) {
          m.Feed(server[next_chunk++]);
        } else {
          m.OnConnectionLost(ClientMachine::Loss::kEof);
        }
        break;
      case ClientMachine::Action::kStartTls:
        // The handshake, as the driver would do it: marked in the
        // transcript; the peer's next chunk is "inside TLS".
        result.sent += "<TLS>";
        m.OnTlsStarted();
        break;
      case ClientMachine::Action::kSaveOutcomes:
        for (const auto& [index, outcome] : m.TakeOutcomes()) {
          result.outcomes += ShowOutcome(index, outcome) + "\n";
        }
        result.outcomes += "--\n";
        m.OnOutcomesSaved();
        break;
      case ClientMachine::Action::kIdle:
        if (m.ready() && next_message < messages.size()) {
          m.StartMessage(*messages[next_message++]);
        } else if (!quit) {
          quit = true;
          m.StartQuit();
        } else {
          ADD_FAILURE() << "idle after QUIT";
          return result;
        }
        break;
      case ClientMachine::Action::kClosed:
        if (m.setup_failure()) {
          result.setup_failure = ShowOutcome(0, *m.setup_failure());
        }
        result.transactions = m.transactions();
        return result;
    }
  }
  ADD_FAILURE() << "no end";
  return result;
}

// Drive() on every split of `server`; EXPECTs the same result for each.
Result EverySplit(const std::string& server,
                  const std::vector<const ClientMessage*>& messages,
                  const ClientOptions& options = Options()) {
  return ExpectSameForEverySplit(
      server,
      [&](const Chunks& chunks) { return Drive(chunks, messages, options); },
      /*max_three_way=*/0);
}

const std::string kGreeting = "220 peer.test ESMTP\r\n";

TEST(ClientMachine, PipelinedTransaction) {
  const ClientMessage m = Msg({"a@x", "b@x", "c@x"});
  const std::string server = kGreeting +
                             Ehlo({"PIPELINING", "8BITMIME", "SIZE 1000"}) +
                             "250 2.1.0 Ok\r\n"
                             "250 2.1.5 Ok\r\n"
                             "550 5.1.1 <b@x>: unknown\r\n"
                             "250 2.1.5 Ok\r\n"
                             "354 go ahead\r\n"
                             "250 2.0.0 Ok: queued as X\r\n"
                             "221 2.0.0 Bye\r\n";
  const Result r = EverySplit(server, {&m});
  EXPECT_EQ(r.sent,
            "EHLO client.test\r\n"
            "MAIL FROM:<s@example.org> SIZE=21\r\n"
            "RCPT TO:<a@x>\r\nRCPT TO:<b@x>\r\nRCPT TO:<c@x>\r\nDATA\r\n"
            "Subject: t\r\n\r\nhello\r\n.\r\n"
            "QUIT\r\n");
  EXPECT_EQ(r.outcomes,
            "101 bounced 5.1.1 smtp; 550 5.1.1 <b@x>: unknown\n"
            "100 sent 2.0.0 smtp; 250 2.0.0 Ok: queued as X\n"
            "102 sent 2.0.0 smtp; 250 2.0.0 Ok: queued as X\n"
            "--\n");
  EXPECT_EQ(r.transactions, 1u);
}

TEST(ClientMachine, WithoutPipeliningOneCommandAtATime) {
  const ClientMessage m = Msg({"a@x", "b@x"});
  ClientMachine machine(Options(), "peer.test[127.0.0.1]:25");
  ASSERT_EQ(machine.action(), ClientMachine::Action::kRead);
  EXPECT_EQ(machine.state(), ClientState::kGreeting);
  machine.Feed(kGreeting);
  EXPECT_EQ(machine.TakeOutput(), "EHLO client.test\r\n");
  machine.Feed(Ehlo({"8BITMIME"}));
  ASSERT_EQ(machine.action(), ClientMachine::Action::kIdle);
  machine.StartMessage(m);
  EXPECT_EQ(machine.TakeOutput(), "MAIL FROM:<s@example.org>\r\n");
  EXPECT_EQ(machine.action(), ClientMachine::Action::kRead);
  EXPECT_EQ(machine.state(), ClientState::kMail);
  machine.Feed("250 ok\r\n");
  EXPECT_EQ(machine.TakeOutput(), "RCPT TO:<a@x>\r\n");
  EXPECT_EQ(machine.state(), ClientState::kRcpt);
  machine.Feed("250 ok\r\n");
  EXPECT_EQ(machine.TakeOutput(), "RCPT TO:<b@x>\r\n");
  machine.Feed("250 ok\r\n");
  EXPECT_EQ(machine.TakeOutput(), "DATA\r\n");
  EXPECT_EQ(machine.state(), ClientState::kData);
  EXPECT_EQ(machine.timeout(), std::chrono::seconds(120));
  machine.Feed("354 go\r\n");
  EXPECT_EQ(machine.state(), ClientState::kSendingData);
  EXPECT_EQ(machine.timeout(), std::chrono::seconds(180));
  EXPECT_EQ(machine.TakeOutput(), std::string(kContent) + ".\r\n");
  EXPECT_EQ(machine.state(), ClientState::kSentEndOfData);
  EXPECT_EQ(machine.timeout(), std::chrono::seconds(600));
  machine.Feed("250 queued\r\n");
  ASSERT_EQ(machine.action(), ClientMachine::Action::kSaveOutcomes);
  EXPECT_EQ(machine.TakeOutcomes().size(), 2u);
  machine.OnOutcomesSaved();
  EXPECT_EQ(machine.action(), ClientMachine::Action::kIdle);
  EXPECT_TRUE(machine.ready());
}

TEST(ClientMachine, TimeoutTableHasTheRfcDefaults) {
  const ClientOptions o;
  auto limit = [&](ClientState s) { return o.*StateInfo(s).timeout; };
  EXPECT_EQ(limit(ClientState::kGreeting), std::chrono::minutes(5));
  EXPECT_EQ(limit(ClientState::kMail), std::chrono::minutes(5));
  EXPECT_EQ(limit(ClientState::kRcpt), std::chrono::minutes(5));
  EXPECT_EQ(limit(ClientState::kData), std::chrono::minutes(2));
  EXPECT_EQ(limit(ClientState::kSendingData), std::chrono::minutes(3));
  EXPECT_EQ(limit(ClientState::kSentEndOfData), std::chrono::minutes(10));
  for (std::size_t i = 0; i < kClientStates.size(); ++i) {
    EXPECT_EQ(static_cast<std::size_t>(kClientStates[i].state), i);
    EXPECT_EQ(kClientStates[i].may_duplicate,
              kClientStates[i].state == ClientState::kSentEndOfData);
  }
}

TEST(ClientMachine, TooManyRecipientsContinuesInANewTransaction) {
  // Seeds 000/001: 452 (and 552 once someone is accepted) ends the RCPTs;
  // the data goes to those accepted, the rest in the next transaction.
  for (const std::string refusal :
       {"452 4.5.3 Too many recipients\r\n", "552 Too many recipients\r\n",
        "522 Recipient buffer full\r\n"}) {
    SCOPED_TRACE(refusal);
    const ClientMessage m = Msg({"a@x", "b@x", "c@x"});
    ClientOptions options = Options();
    options.max_recipients_per_transaction = 3;
    const std::string server = kGreeting + Ehlo({"PIPELINING"}) +
                               "250 ok\r\n250 ok\r\n" + refusal + refusal +
                               "354 go\r\n250 queued 1\r\n"
                               "250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n"
                               "250 queued 2\r\n221 bye\r\n";
    const Result r = EverySplit(server, {&m}, options);
    const std::string data = std::string(kContent) + ".\r\n";
    EXPECT_EQ(r.sent,
              "EHLO client.test\r\n"
              "MAIL FROM:<s@example.org>\r\nRCPT TO:<a@x>\r\n"
              "RCPT TO:<b@x>\r\nRCPT TO:<c@x>\r\nDATA\r\n" +
                  data +
                  "MAIL FROM:<s@example.org>\r\nRCPT TO:<b@x>\r\n"
                  "RCPT TO:<c@x>\r\nDATA\r\n" +
                  data + "QUIT\r\n");
    EXPECT_EQ(r.outcomes,
              "100 sent 2.0.0 smtp; 250 queued 1\n--\n"
              "101 sent 2.0.0 smtp; 250 queued 2\n"
              "102 sent 2.0.0 smtp; 250 queued 2\n--\n");
    EXPECT_EQ(r.transactions, 2u);
  }
}

TEST(ClientMachine, TooManyWithoutPipeliningStopsAskingAndRetriesTheRest) {
  const ClientMessage m = Msg({"a@x", "b@x", "c@x"});
  ClientOptions options = Options();
  options.max_recipients_per_transaction = 3;
  const std::string server = kGreeting + Ehlo({}) +
                             "250 ok\r\n250 ok\r\n452 too many\r\n"
                             "354 go\r\n250 queued 1\r\n"
                             "250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n"
                             "250 queued 2\r\n221 bye\r\n";
  const Result r = EverySplit(server, {&m}, options);
  const std::string data = std::string(kContent) + ".\r\n";
  EXPECT_EQ(r.sent,
            "EHLO client.test\r\n"
            "MAIL FROM:<s@example.org>\r\nRCPT TO:<a@x>\r\n"
            "RCPT TO:<b@x>\r\nDATA\r\n" +
                data +
                "MAIL FROM:<s@example.org>\r\nRCPT TO:<b@x>\r\n"
                "RCPT TO:<c@x>\r\nDATA\r\n" +
                data + "QUIT\r\n");
  EXPECT_EQ(r.transactions, 2u);
}

TEST(ClientMachine, FirstRecipientTooManyDefersEverythingWithoutLooping) {
  const ClientMessage m = Msg({"a@x", "b@x"});
  const std::string server = kGreeting + Ehlo({"PIPELINING"}) +
                             "250 ok\r\n452 4.5.3 Too many\r\n452 4.5.3 Too "
                             "many\r\n554 5.5.1 No valid recipients\r\n"
                             "221 bye\r\n";
  const Result r = EverySplit(server, {&m});
  EXPECT_EQ(r.sent,
            "EHLO client.test\r\nMAIL FROM:<s@example.org>\r\n"
            "RCPT TO:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\nQUIT\r\n");
  EXPECT_EQ(r.outcomes,
            "100 deferred 4.5.3 smtp; 452 4.5.3 Too many\n"
            "101 deferred 4.5.3 smtp; 452 4.5.3 Too many\n--\n");
  EXPECT_EQ(r.transactions, 1u);
}

TEST(ClientMachine, FirstRecipient552IsItsOwnFailure) {
  const ClientMessage m = Msg({"a@x", "b@x"});
  const std::string server = kGreeting + Ehlo({"PIPELINING"}) +
                             "250 ok\r\n552 5.2.2 Mailbox full\r\n250 ok\r\n"
                             "354 go\r\n250 queued\r\n221 bye\r\n";
  const Result r = EverySplit(server, {&m});
  EXPECT_EQ(r.outcomes,
            "100 bounced 5.2.2 smtp; 552 5.2.2 Mailbox full\n"
            "101 sent 2.0.0 smtp; 250 queued\n--\n");
}

TEST(ClientMachine, AcceptedAfterTooManyStillGetsTheData) {
  // With PIPELINING the RCPTs after a "too many" were already sent; one the
  // server accepts anyway must get this transaction's data, and only it.
  const ClientMessage m = Msg({"a@x", "b@x", "c@x"});
  const std::string server = kGreeting + Ehlo({"PIPELINING"}) +
                             "250 ok\r\n452 too many\r\n452 too many\r\n"
                             "250 ok\r\n354 go\r\n250 queued 1\r\n"
                             "250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n"
                             "250 queued 2\r\n221 bye\r\n";
  const Result r = EverySplit(server, {&m});
  EXPECT_EQ(r.outcomes,
            "102 sent 2.0.0 smtp; 250 queued 1\n--\n"
            "100 sent 2.0.0 smtp; 250 queued 2\n"
            "101 sent 2.0.0 smtp; 250 queued 2\n--\n");
}

TEST(ClientMachine, RecipientsPerTransaction) {
  // RFC 9422 LIMITS RCPTMAX, or our own maximum, whichever is smaller.
  const ClientMessage m = Msg(Rcpts(5));
  auto server = [](const std::string& ehlo) {
    std::string out = kGreeting + ehlo;
    for (int t = 0; t < 3; ++t) {
      out += "250 ok\r\n";
      for (int i = 0; i < (t < 2 ? 2 : 1); ++i) out += "250 ok\r\n";
      out += "354 go\r\n250 queued\r\n";
    }
    return out + "221 bye\r\n";
  };
  const Result peer =
      Drive({server(Ehlo({"PIPELINING", "LIMITS RCPTMAX=2"}))}, {&m});
  EXPECT_EQ(peer.transactions, 3u);
  EXPECT_EQ(peer.outcomes.find("deferred"), std::string::npos) << peer;
  EXPECT_NE(peer.sent.find("RCPT TO:<r3@example.net>\r\nDATA"),
            std::string::npos);
  ClientOptions options = Options();
  options.max_recipients_per_transaction = 2;
  const Result mine = Drive({server(Ehlo({"PIPELINING"}))}, {&m}, options);
  EXPECT_EQ(mine.transactions, 3u);
  EXPECT_EQ(mine.outcomes, peer.outcomes);
}

TEST(ClientMachine, MultilineDataReplyInAnyPieces) {
  // Seed 002: "354-Line 1" ... "354 Send message" is one reply.
  const ClientMessage m = Msg({"a@x"});
  const std::string server = kGreeting + Ehlo({"PIPELINING"}) +
                             "250 ok\r\n250 ok\r\n"
                             "354-Line 1\r\n354 Send message\r\n"
                             "250-2.0.0 Line one\r\n250 2.0.0 Ok queued\r\n"
                             "221 bye\r\n";
  const Result r = EverySplit(server, {&m});
  EXPECT_EQ(r.outcomes,
            "100 sent 2.0.0 smtp; 250 2.0.0 Line one Ok queued\n--\n");
  EXPECT_EQ(r.sent.find("Line"), std::string::npos);
}

TEST(ClientMachine, Reply421InTheMiddleDefersEverythingAndCloses) {
  const ClientMessage m = Msg({"a@x", "b@x", "c@x"});
  const std::string server = kGreeting + Ehlo({"PIPELINING"}) +
                             "250 ok\r\n250 ok\r\n550 5.1.1 unknown\r\n"
                             "421 4.3.2 Shutting down\r\n";
  const Result r = EverySplit(server, {&m});
  EXPECT_EQ(r.outcomes,
            "101 bounced 5.1.1 smtp; 550 5.1.1 unknown\n"
            "100 deferred 4.3.2 smtp; 421 4.3.2 Shutting down\n"
            "102 deferred 4.3.2 smtp; 421 4.3.2 Shutting down\n--\n");
  EXPECT_EQ(r.sent.find("QUIT"), std::string::npos);
  EXPECT_EQ(r.sent.find("Subject"), std::string::npos);
}

TEST(ClientMachine, LostAfterEndOfDataIsAPossibleDuplicate) {
  const ClientMessage m = Msg({"a@x", "b@x"});
  const std::string server = kGreeting + Ehlo({"PIPELINING"}) +
                             "250 ok\r\n250 ok\r\n550 5.1.1 unknown\r\n"
                             "354 go\r\n250-partial";
  const Result r = EverySplit(server, {&m});
  EXPECT_EQ(r.outcomes,
            "101 bounced 5.1.1 smtp; 550 5.1.1 unknown\n"
            "100 deferred 4.4.2 dup x-petrel; lost connection with "
            "peer.test[127.0.0.1]:25 while sending end of data -- message may "
            "be sent more than once\n--\n");
}

TEST(ClientMachine, LostBeforeEndOfDataIsNot) {
  const ClientMessage m = Msg({"a@x"});
  const std::string server =
      kGreeting + Ehlo({"PIPELINING"}) + "250 ok\r\n250 ok\r\n";
  const Result r = EverySplit(server, {&m});
  EXPECT_EQ(r.outcomes,
            "100 deferred 4.4.2 x-petrel; lost connection with "
            "peer.test[127.0.0.1]:25 while sending DATA command\n--\n");
}

TEST(ClientMachine, TimeoutAfterEndOfData) {
  const ClientMessage m = Msg({"a@x"});
  ClientMachine machine(Options(), "p[1]:25");
  machine.Feed(kGreeting);
  machine.TakeOutput();
  machine.Feed(Ehlo({"PIPELINING"}));
  machine.StartMessage(m);
  machine.TakeOutput();
  machine.Feed("250 ok\r\n250 ok\r\n354 go\r\n");
  machine.TakeOutput();
  ASSERT_EQ(machine.state(), ClientState::kSentEndOfData);
  machine.OnConnectionLost(ClientMachine::Loss::kTimeout);
  ASSERT_EQ(machine.action(), ClientMachine::Action::kSaveOutcomes);
  const Outcomes o = machine.TakeOutcomes();
  ASSERT_EQ(o.size(), 1u);
  EXPECT_TRUE(o[0].second.possible_duplicate);
  EXPECT_EQ(o[0].second.detail,
            "conversation with p[1]:25 timed out while sending end of data "
            "-- message may be sent more than once");
  machine.OnOutcomesSaved();
  EXPECT_EQ(machine.action(), ClientMachine::Action::kClosed);
  EXPECT_FALSE(machine.ready());
}

TEST(ClientMachine, MalformedReplyDefersNeverFails) {
  const ClientMessage m = Msg({"a@x", "b@x"});
  const std::string server = kGreeting + Ehlo({"PIPELINING"}) +
                             "250 ok\r\n250 ok\r\n55O 5.1.1 bad\r\n"
                             "354 go\r\n250 ok\r\n";
  const Result r = EverySplit(server, {&m});
  EXPECT_EQ(r.outcomes,
            "100 deferred 4.5.0 x-petrel; malformed reply from "
            "peer.test[127.0.0.1]:25 while sending RCPT TO\n"
            "101 deferred 4.5.0 x-petrel; malformed reply from "
            "peer.test[127.0.0.1]:25 while sending RCPT TO\n--\n");
}

TEST(ClientMachine, MalformedReplyToEndOfDataIsAPossibleDuplicate) {
  const ClientMessage m = Msg({"a@x"});
  const std::string server = kGreeting + Ehlo({"PIPELINING"}) +
                             "250 ok\r\n250 ok\r\n354 go\r\nqueued!\r\n";
  const Result r = EverySplit(server, {&m});
  EXPECT_NE(r.outcomes.find("100 deferred 4.5.0 dup"), std::string::npos)
      << r.outcomes;
}

TEST(ClientMachine, EndOfDataRefused) {
  for (const auto& [reply, expected] :
       std::vector<std::pair<std::string, std::string>>{
           {"451 4.3.0 Try later\r\n",
            "100 deferred 4.3.0 smtp; 451 4.3.0 Try later\n--\n"},
           {"552 5.3.4 Message too big\r\n",
            "100 bounced 5.3.4 smtp; 552 5.3.4 Message too big\n--\n"}}) {
    const ClientMessage m = Msg({"a@x"});
    const std::string server = kGreeting + Ehlo({"PIPELINING"}) +
                               "250 ok\r\n250 ok\r\n354 go\r\n" + reply +
                               "221 bye\r\n";
    EXPECT_EQ(EverySplit(server, {&m}).outcomes, expected);
  }
}

TEST(ClientMachine, MailRefusedFailsTheMessageThenRsetBeforeTheNext) {
  const ClientMessage first = Msg({"a@x", "b@x"});
  const ClientMessage second = Msg({"c@x"});
  const std::string server = kGreeting + Ehlo({"PIPELINING"}) +
                             "553 5.7.1 Sender refused\r\n"
                             "503 5.5.1 need MAIL\r\n503 5.5.1 need MAIL\r\n"
                             "503 5.5.1 need MAIL\r\n"
                             "250 reset\r\n"
                             "250 ok\r\n250 ok\r\n354 go\r\n250 queued\r\n"
                             "221 bye\r\n";
  const Result r = EverySplit(server, {&first, &second});
  EXPECT_EQ(r.outcomes,
            "100 bounced 5.7.1 smtp; 553 5.7.1 Sender refused\n"
            "101 bounced 5.7.1 smtp; 553 5.7.1 Sender refused\n--\n"
            "100 sent 2.0.0 smtp; 250 queued\n--\n");
  EXPECT_NE(r.sent.find("DATA\r\nRSET\r\nMAIL"), std::string::npos) << r;
}

TEST(ClientMachine, DataCommandRefused) {
  const ClientMessage m = Msg({"a@x"});
  const std::string server =
      kGreeting + Ehlo({}) + "250 ok\r\n250 ok\r\n554 5.7.0 No\r\n221 bye\r\n";
  EXPECT_EQ(EverySplit(server, {&m}).outcomes,
            "100 bounced 5.7.0 smtp; 554 5.7.0 No\n--\n");
}

TEST(ClientMachine, EhloRefusedThenHeloWithoutParameters) {
  ClientMessage m = Msg({"a@x"});
  m.eight_bit_mime = true;
  m.dsn_envid = "E1";
  m.recipients[0].notify = 2;
  const std::string server = kGreeting +
                             "502 5.5.2 Error: command not recognized\r\n"
                             "250 peer.test\r\n"
                             "250 ok\r\n250 ok\r\n354 go\r\n250 queued\r\n"
                             "221 bye\r\n";
  const Result r = EverySplit(server, {&m});
  EXPECT_EQ(r.sent,
            "EHLO client.test\r\nHELO client.test\r\n"
            "MAIL FROM:<s@example.org>\r\nRCPT TO:<a@x>\r\nDATA\r\n" +
                std::string(kContent) + ".\r\nQUIT\r\n");
  EXPECT_EQ(r.outcomes, "100 sent 2.0.0 smtp; 250 queued\n--\n");
}

TEST(ClientMachine, GreetingRefusedIsASetupFailure) {
  const ClientMessage m = Msg({"a@x"});
  const Result r = EverySplit("554 5.7.1 Go away\r\n", {&m});
  EXPECT_EQ(r.sent, "");
  EXPECT_EQ(r.setup_failure, "0 deferred 4.7.1 smtp; 554 5.7.1 Go away");
  const Result ehlo = EverySplit(kGreeting + "421 4.7.0 Busy\r\n", {&m});
  EXPECT_EQ(ehlo.setup_failure, "0 deferred 4.7.0 smtp; 421 4.7.0 Busy");
}

TEST(ClientMachine, SizeTooSmallFailsWithoutSending) {
  const ClientMessage m = Msg({"a@x", "b@x"});
  const Result r = EverySplit(
      kGreeting + Ehlo({"PIPELINING", "SIZE 10"}) + "221 bye\r\n", {&m});
  EXPECT_EQ(r.sent, "EHLO client.test\r\nQUIT\r\n");
  EXPECT_EQ(r.outcomes,
            "100 bounced 5.3.4 x-petrel; message size 21 exceeds size limit "
            "10 of server peer.test[127.0.0.1]:25\n"
            "101 bounced 5.3.4 x-petrel; message size 21 exceeds size limit "
            "10 of server peer.test[127.0.0.1]:25\n--\n");
}

TEST(ClientMachine, Smtputf8RequiredButNotOffered) {
  ClientMessage m = Msg({"δ@x"});
  m.smtputf8 = true;
  const Result r =
      EverySplit(kGreeting + Ehlo({"PIPELINING"}) + "221 bye\r\n", {&m});
  EXPECT_EQ(r.sent, "EHLO client.test\r\nQUIT\r\n");
  EXPECT_EQ(r.outcomes,
            "100 bounced 5.6.7 x-petrel; SMTPUTF8 is required, but was not "
            "offered by host peer.test[127.0.0.1]:25\n--\n");
}

TEST(ClientMachine, EsmtpParametersWhenOffered) {
  ClientMessage m = Msg({"a@x", "b@x"});
  m.smtputf8 = true;
  m.eight_bit_mime = true;
  m.dsn_ret = 2;  // HDRS
  m.dsn_envid = "id+1=2";
  m.recipients[0].notify = 2 | 4;  // SUCCESS,FAILURE
  m.recipients[0].orcpt_type = "rfc822";
  m.recipients[0].orcpt_address = "a+b@x";
  m.recipients[1].notify = 1;  // NEVER
  const std::string replies =
      "250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n250 queued\r\n221 bye\r\n";
  const Result with = EverySplit(
      kGreeting + Ehlo({"PIPELINING", "8BITMIME", "SMTPUTF8", "DSN", "SIZE"}) +
          replies,
      {&m});
  EXPECT_NE(with.sent.find("MAIL FROM:<s@example.org> SIZE=21 BODY=8BITMIME "
                           "SMTPUTF8 RET=HDRS ENVID=id+2B1+3D2\r\n"
                           "RCPT TO:<a@x> NOTIFY=SUCCESS,FAILURE "
                           "ORCPT=rfc822;a+2Bb@x\r\n"
                           "RCPT TO:<b@x> NOTIFY=NEVER\r\nDATA\r\n"),
            std::string::npos)
      << with;
  m.smtputf8 = false;
  const Result without =
      EverySplit(kGreeting + Ehlo({"PIPELINING"}) + replies, {&m});
  EXPECT_NE(without.sent.find("MAIL FROM:<s@example.org>\r\n"
                              "RCPT TO:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\n"),
            std::string::npos)
      << without;
}

TEST(ClientMachine, BdatWhenChunkingIsOffered) {
  const ClientMessage m = Msg({"a@x"}, "a\r\n.b\nc");
  ClientOptions options = Options();
  options.bdat_chunk_octets = 4;
  const std::string server = kGreeting + Ehlo({"PIPELINING", "CHUNKING"}) +
                             "250 ok\r\n250 ok\r\n250 2.0.0 chunk\r\n"
                             "250 2.0.0 queued\r\n221 bye\r\n";
  const Result r = EverySplit(server, {&m}, options);
  EXPECT_EQ(r.sent,
            "EHLO client.test\r\nMAIL FROM:<s@example.org>\r\n"
            "RCPT TO:<a@x>\r\n"
            "BDAT 4\r\na\r\n."
            "BDAT 6 LAST\r\nb\r\nc\r\n"
            "QUIT\r\n");
  EXPECT_EQ(r.outcomes, "100 sent 2.0.0 smtp; 250 2.0.0 queued\n--\n");
}

TEST(ClientMachine, BdatChunkRefused) {
  const ClientMessage m = Msg({"a@x"}, "0123456789");
  ClientOptions options = Options();
  options.bdat_chunk_octets = 4;
  const std::string server = kGreeting + Ehlo({"CHUNKING"}) +
                             "250 ok\r\n250 ok\r\n554 5.6.0 bad chunk\r\n"
                             "221 bye\r\n";
  const Result r = EverySplit(server, {&m}, options);
  EXPECT_EQ(r.outcomes, "100 bounced 5.6.0 smtp; 554 5.6.0 bad chunk\n--\n");
  EXPECT_NE(r.sent.find("BDAT 4\r\n0123QUIT\r\n"), std::string::npos) << r;
}

TEST(ClientMachine, NoRecipientAcceptedButThe354) {
  // A broken server that says 354 to a DATA with no recipient: an empty
  // message, ended at once.
  const ClientMessage m = Msg({"a@x"});
  const std::string server = kGreeting + Ehlo({"PIPELINING"}) +
                             "250 ok\r\n550 5.1.1 no\r\n354 go\r\n"
                             "554 no recipients\r\n221 bye\r\n";
  const Result r = EverySplit(server, {&m});
  EXPECT_EQ(r.sent,
            "EHLO client.test\r\nMAIL FROM:<s@example.org>\r\n"
            "RCPT TO:<a@x>\r\nDATA\r\n.\r\nQUIT\r\n");
  EXPECT_EQ(r.outcomes, "100 bounced 5.1.1 smtp; 550 5.1.1 no\n--\n");
}

TEST(ClientMachine, BadRecipientFailsAloneAndTheRestFlows) {
  // Seed 003.
  const ClientMessage m = Msg({"a@x", "b\r\nDATA@x"});
  const std::string server = kGreeting + Ehlo({"PIPELINING"}) +
                             "250 ok\r\n250 ok\r\n354 go\r\n250 queued\r\n"
                             "221 bye\r\n";
  const Result r = EverySplit(server, {&m});
  EXPECT_EQ(r.outcomes,
            "101 bounced 5.1.3 x-petrel; bad recipient address syntax: "
            "<b  DATA@x>\n--\n"
            "100 sent 2.0.0 smtp; 250 queued\n--\n");
}

TEST(ClientMachine, SecondMessageOnTheSameConnection) {
  const ClientMessage first = Msg({"a@x"});
  const ClientMessage second = Msg({"b@x"});
  const std::string server = kGreeting + Ehlo({"PIPELINING"}) +
                             "250 ok\r\n250 ok\r\n354 go\r\n250 queued 1\r\n"
                             "250 ok\r\n250 ok\r\n354 go\r\n250 queued 2\r\n"
                             "221 bye\r\n";
  const Result r = EverySplit(server, {&first, &second});
  EXPECT_EQ(r.outcomes,
            "100 sent 2.0.0 smtp; 250 queued 1\n--\n"
            "100 sent 2.0.0 smtp; 250 queued 2\n--\n");
  EXPECT_EQ(r.sent.find("RSET"), std::string::npos);
  EXPECT_EQ(r.transactions, 2u);
}

// DataEncoder: every split of the content gives the same wire text.
std::string Encode(const Chunks& chunks, bool dot_stuff) {
  DataEncoder encoder(dot_stuff);
  std::string out;
  for (std::string_view chunk : chunks) encoder.Encode(chunk, out);
  encoder.Finish(out);
  return out;
}

TEST(DataEncoder, DotStuffingAndLineEnds) {
  auto data = [](const Chunks& c) { return Encode(c, true); };
  EXPECT_EQ(ExpectSameForEverySplit(".\r\n..\r\n.x\r\nbare\nlf\rcr\r\n.", data),
            "..\r\n...\r\n..x\r\nbare\r\nlf\r\ncr\r\n..\r\n.\r\n");
  EXPECT_EQ(ExpectSameForEverySplit("", data), ".\r\n");
  EXPECT_EQ(ExpectSameForEverySplit("x", data), "x\r\n.\r\n");
  EXPECT_EQ(ExpectSameForEverySplit("a\r\n", data), "a\r\n.\r\n");
  EXPECT_EQ(ExpectSameForEverySplit("a\r", data), "a\r\n.\r\n");
  EXPECT_EQ(ExpectSameForEverySplit("\n.\n", data), "\r\n..\r\n.\r\n");
  EXPECT_EQ(ExpectSameForEverySplit("a\r\r\n.b", data),
            "a\r\n\r\n..b\r\n.\r\n");
  EXPECT_EQ(ExpectSameForEverySplit("a.\r\n b. .", data),
            "a.\r\n b. .\r\n.\r\n");
}

TEST(DataEncoder, ChunksAreNotStuffed) {
  auto bdat = [](const Chunks& c) { return Encode(c, false); };
  EXPECT_EQ(ExpectSameForEverySplit(".\r\n..\nx", bdat), ".\r\n..\r\nx\r\n");
  EXPECT_EQ(ExpectSameForEverySplit("", bdat), "");
}

// --- STARTTLS (RFC 3207), policy "may" ------------------------------------

const std::string kTxnReplies =
    "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go ahead\r\n250 2.0.0 Ok: queued\r\n"
    "221 2.0.0 Bye\r\n";
const std::string kSentInsideTls =
    "MAIL FROM:<s@example.org> SIZE=21\r\nRCPT TO:<a@x>\r\nDATA\r\n"
    "Subject: t\r\n\r\nhello\r\n.\r\nQUIT\r\n";

// Every split before the 220 with the rest whole, and every split after it
// with the part before whole: a split across the 220 would be plaintext
// injected before the handshake, which is discarded (tested below).
Result EverySplitAroundTls(const std::string& before, const std::string& after,
                           const std::vector<const ClientMessage*>& messages) {
  const Result first = ExpectSameForEverySplit(
      before,
      [&](const Chunks& chunks) {
        Chunks all = chunks;
        all.push_back(after);
        return Drive(all, messages);
      },
      /*max_three_way=*/0);
  const Result second = ExpectSameForEverySplit(
      after,
      [&](const Chunks& chunks) {
        Chunks all{before};
        all.insert(all.end(), chunks.begin(), chunks.end());
        return Drive(all, messages);
      },
      /*max_three_way=*/0);
  EXPECT_EQ(first, second);
  return first;
}

TEST(ClientMachine, StartTlsWhenOfferedThenEhloAgain) {
  const ClientMessage m = Msg({"a@x"});
  // Before TLS: no SIZE; inside: SIZE, and STARTTLS again (never sent
  // twice).
  const std::string before =
      kGreeting + Ehlo({"PIPELINING", "STARTTLS"}) + "220 2.0.0 Ready\r\n";
  const std::string after =
      Ehlo({"PIPELINING", "SIZE 1000", "STARTTLS"}) + kTxnReplies;
  const Result r = EverySplitAroundTls(before, after, {&m});
  EXPECT_EQ(r.sent,
            "EHLO client.test\r\nSTARTTLS\r\n<TLS>EHLO client.test\r\n" +
                kSentInsideTls);
  EXPECT_EQ(r.outcomes, "100 sent 2.0.0 smtp; 250 2.0.0 Ok: queued\n--\n");
}

TEST(ClientMachine, StartTlsStatesAndTimeouts) {
  ClientOptions options = Options();
  options.starttls_timeout = std::chrono::seconds(77);
  options.helo_timeout = std::chrono::seconds(55);
  ClientMachine machine(options, "peer.test[127.0.0.1]:25");
  machine.Feed(kGreeting);
  EXPECT_EQ(machine.TakeOutput(), "EHLO client.test\r\n");
  machine.Feed(Ehlo({"STARTTLS", "SIZE 1000"}));
  EXPECT_FALSE(machine.ready());
  EXPECT_EQ(machine.TakeOutput(), "STARTTLS\r\n");
  EXPECT_EQ(machine.state(), ClientState::kStartTls);
  EXPECT_EQ(machine.timeout(), std::chrono::seconds(55));
  machine.Feed("220 2.0.0 Ready to start TLS\r\n");
  ASSERT_EQ(machine.action(), ClientMachine::Action::kStartTls);
  EXPECT_EQ(machine.state(), ClientState::kTlsHandshake);
  EXPECT_EQ(machine.timeout(), std::chrono::seconds(77));
  EXPECT_EQ(machine.discarded_after_starttls(), 0u);
  machine.OnTlsStarted();
  EXPECT_TRUE(machine.tls_active());
  // The extensions from before TLS are forgotten (RFC 3207 4.2).
  EXPECT_FALSE(machine.esmtp());
  EXPECT_FALSE(machine.extensions().size);
  EXPECT_EQ(machine.TakeOutput(), "EHLO client.test\r\n");
  EXPECT_EQ(machine.state(), ClientState::kEhlo);
  machine.Feed(Ehlo({"8BITMIME"}));
  EXPECT_TRUE(machine.ready());
  EXPECT_TRUE(machine.extensions().eight_bit_mime);
  EXPECT_EQ(machine.action(), ClientMachine::Action::kIdle);
}

// Issue 4: the STARTTLS reply is read exactly; a reply the peer (or a man
// in the middle) put after the 220 in the same segment is discarded and
// never answers a command sent inside TLS.
TEST(ClientMachine, BytesAfterThe220AreDiscarded) {
  const ClientMessage m = Msg({"a@x"});
  ClientMachine machine(Options(), "peer.test[127.0.0.1]:25");
  machine.Feed(kGreeting);
  EXPECT_EQ(machine.TakeOutput(), "EHLO client.test\r\n");
  machine.Feed(Ehlo({"PIPELINING", "STARTTLS"}));
  EXPECT_EQ(machine.TakeOutput(), "STARTTLS\r\n");
  const std::string injected = "250 injected\r\n550 also injected\r\n";
  machine.Feed("220 Ready\r\n" + injected);
  ASSERT_EQ(machine.action(), ClientMachine::Action::kStartTls);
  EXPECT_EQ(machine.discarded_after_starttls(), injected.size());
  // Bytes fed before the handshake (a driver bug) are ignored too.
  machine.Feed("250 more\r\n");
  machine.OnTlsStarted();
  EXPECT_EQ(machine.TakeOutput(), "EHLO client.test\r\n");
  EXPECT_EQ(machine.action(), ClientMachine::Action::kRead);
  machine.Feed(Ehlo({"PIPELINING", "SIZE 1000"}));
  ASSERT_EQ(machine.action(), ClientMachine::Action::kIdle);
  machine.StartMessage(m);
  EXPECT_EQ(machine.TakeOutput(),
            "MAIL FROM:<s@example.org> SIZE=21\r\nRCPT TO:<a@x>\r\nDATA\r\n");
  // Nothing buffered answers MAIL: the machine waits for the peer.
  EXPECT_EQ(machine.action(), ClientMachine::Action::kRead);
  EXPECT_EQ(machine.state(), ClientState::kMail);
}

TEST(ClientMachine, InjectedBytesInADialog) {
  const ClientMessage m = Msg({"a@x"});
  const Result r = Drive({kGreeting, Ehlo({"PIPELINING", "STARTTLS"}),
                          "220 Ready\r\n250 injected\r\n",
                          Ehlo({"PIPELINING", "SIZE 1000"}) + kTxnReplies},
                         {&m});
  EXPECT_EQ(r.sent,
            "EHLO client.test\r\nSTARTTLS\r\n<TLS>EHLO client.test\r\n" +
                kSentInsideTls);
  EXPECT_EQ(r.outcomes, "100 sent 2.0.0 smtp; 250 2.0.0 Ok: queued\n--\n");
}

TEST(ClientMachine, StartTlsRefusedContinuesInPlaintext) {
  const ClientMessage m = Msg({"a@x"});
  for (const std::string refusal :
       {"454 4.7.0 TLS not available due to local problem\r\n",
        "502 5.5.1 Not implemented\r\n"}) {
    SCOPED_TRACE(refusal);
    const std::string server = kGreeting +
                               Ehlo({"PIPELINING", "STARTTLS", "SIZE 1000"}) +
                               refusal + kTxnReplies;
    const Result r = EverySplit(server, {&m});
    // The first EHLO's extensions (SIZE) are used.
    EXPECT_EQ(r.sent, "EHLO client.test\r\nSTARTTLS\r\n" + kSentInsideTls);
    EXPECT_EQ(r.outcomes, "100 sent 2.0.0 smtp; 250 2.0.0 Ok: queued\n--\n");
  }
}

TEST(ClientMachine, StartTls421EndsTheConnection) {
  const ClientMessage m = Msg({"a@x"});
  const std::string server =
      kGreeting + Ehlo({"STARTTLS"}) + "421 4.3.2 Shutting down\r\n";
  const Result r = EverySplit(server, {&m});
  EXPECT_EQ(r.sent, "EHLO client.test\r\nSTARTTLS\r\n");
  EXPECT_EQ(r.setup_failure, "0 deferred 4.3.2 smtp; 421 4.3.2 Shutting down");
}

TEST(ClientMachine, PolicyNoneNeverStartsTls) {
  const ClientMessage m = Msg({"a@x"});
  ClientOptions options = Options();
  options.tls_policy = TlsPolicy::kNone;
  const std::string server =
      kGreeting + Ehlo({"PIPELINING", "STARTTLS", "SIZE 1000"}) + kTxnReplies;
  const Result r = ExpectSameForEverySplit(
      server, [&](const Chunks& c) { return Drive(c, {&m}, options); }, 0);
  EXPECT_EQ(r.sent, "EHLO client.test\r\n" + kSentInsideTls);
}

TEST(ClientMachine, HandshakeFailureEndsTheConnection) {
  ClientMachine machine(Options(), "peer.test[127.0.0.1]:25");
  machine.Feed(kGreeting);
  EXPECT_EQ(machine.TakeOutput(), "EHLO client.test\r\n");
  machine.Feed(Ehlo({"STARTTLS"}));
  EXPECT_EQ(machine.TakeOutput(), "STARTTLS\r\n");
  machine.Feed("220 Ready\r\n");
  ASSERT_EQ(machine.action(), ClientMachine::Action::kStartTls);
  machine.OnTlsFailed("wrong version number");
  EXPECT_EQ(machine.action(), ClientMachine::Action::kClosed);
  EXPECT_TRUE(machine.tls_failed());
  EXPECT_FALSE(machine.tls_active());
  EXPECT_FALSE(machine.ready());
  ASSERT_TRUE(machine.setup_failure().has_value());
  EXPECT_EQ(machine.setup_failure()->verdict, Verdict::kDeferred);
  EXPECT_EQ(machine.setup_failure()->detail,
            "TLS handshake failed with peer.test[127.0.0.1]:25: wrong "
            "version number");
}

}  // namespace
}  // namespace petrel::delivery

namespace petrel::delivery {
namespace {

// Greeting, EHLO with STARTTLS, the 220, and the handshake done.
ClientMachine UnderTls(ClientOptions options) {
  ClientMachine machine(std::move(options), "peer.test[127.0.0.1]:587");
  machine.Feed("220 peer.test ESMTP\r\n");
  EXPECT_EQ(machine.TakeOutput(), "EHLO client.test\r\n");
  machine.Feed("250-peer.test\r\n250 STARTTLS\r\n");
  EXPECT_EQ(machine.TakeOutput(), "STARTTLS\r\n");
  machine.Feed("220 2.0.0 Ready\r\n");
  EXPECT_EQ(machine.action(), ClientMachine::Action::kStartTls);
  machine.OnTlsStarted();
  EXPECT_EQ(machine.TakeOutput(), "EHLO client.test\r\n");
  return machine;
}

ClientOptions WithPolicy(TlsPolicy policy) {
  ClientOptions o;
  o.helo_name = "client.test";
  o.tls_policy = policy;
  return o;
}

TEST(ClientTlsPolicy, EncryptGivesUpWhenStartTlsIsNotOffered) {
  for (TlsPolicy policy : {TlsPolicy::kEncrypt, TlsPolicy::kVerify}) {
    ClientMachine machine(WithPolicy(policy), "peer.test[127.0.0.1]:25");
    machine.Feed("220 peer.test ESMTP\r\n");
    machine.TakeOutput();
    machine.Feed("250-peer.test\r\n250 PIPELINING\r\n");
    EXPECT_EQ(machine.TakeOutput(), "");
    EXPECT_EQ(machine.action(), ClientMachine::Action::kClosed);
    ASSERT_TRUE(machine.setup_failure());
    EXPECT_EQ(machine.setup_failure()->status.ToString(), "4.7.4");
    EXPECT_NE(machine.setup_failure()->detail.find("TLS is required"),
              std::string::npos);
  }
}

TEST(ClientTlsPolicy, EncryptGivesUpWhenStartTlsIsRefused) {
  ClientMachine machine(WithPolicy(TlsPolicy::kEncrypt), "p[127.0.0.1]:25");
  machine.Feed("220 peer.test ESMTP\r\n");
  machine.TakeOutput();
  machine.Feed("250-peer.test\r\n250 STARTTLS\r\n");
  EXPECT_EQ(machine.TakeOutput(), "STARTTLS\r\n");
  machine.Feed("454 4.7.0 TLS not available\r\n");
  EXPECT_EQ(machine.TakeOutput(), "");
  EXPECT_EQ(machine.action(), ClientMachine::Action::kClosed);
  EXPECT_EQ(machine.setup_failure()->status.ToString(), "4.7.4");
}

TEST(ClientTlsPolicy, VerifyFailureIs475AndNeverRetried) {
  ClientMachine machine(WithPolicy(TlsPolicy::kVerify), "p[127.0.0.1]:25");
  machine.Feed("220 peer.test ESMTP\r\n250-peer.test\r\n250 STARTTLS\r\n");
  machine.TakeOutput();
  machine.TakeOutput();
  machine.Feed("220 2.0.0 Ready\r\n");
  ASSERT_EQ(machine.action(), ClientMachine::Action::kStartTls);
  machine.OnTlsFailed("self-signed certificate", /*not_verified=*/true);
  EXPECT_EQ(machine.action(), ClientMachine::Action::kClosed);
  EXPECT_EQ(machine.setup_failure()->status.ToString(), "4.7.5");
  EXPECT_EQ(machine.setup_failure()->detail,
            "Server certificate not verified (TLS policy verify) for "
            "p[127.0.0.1]:25: self-signed certificate");
}

TEST(ClientAuth, PlainInsideTls) {
  ClientOptions o = WithPolicy(TlsPolicy::kMay);
  o.credentials = ClientCredentials{"u", "p"};
  ClientMachine machine = UnderTls(o);
  machine.Feed("250-peer.test\r\n250 AUTH LOGIN PLAIN\r\n");
  EXPECT_EQ(machine.TakeOutput(), "AUTH PLAIN AHUAcA==\r\n");
  EXPECT_EQ(machine.state(), ClientState::kAuth);
  EXPECT_FALSE(machine.ready());
  machine.Feed("235 2.7.0 Authentication successful\r\n");
  EXPECT_TRUE(machine.ready());
}

TEST(ClientAuth, LoginWhenPlainIsNotOffered) {
  ClientOptions o = WithPolicy(TlsPolicy::kEncrypt);
  o.credentials = ClientCredentials{"u", "p"};
  ClientMachine machine = UnderTls(o);
  machine.Feed("250-peer.test\r\n250 AUTH LOGIN\r\n");
  EXPECT_EQ(machine.TakeOutput(), "AUTH LOGIN\r\n");
  machine.Feed("334 VXNlcm5hbWU6\r\n");
  EXPECT_EQ(machine.TakeOutput(), "dQ==\r\n");
  machine.Feed("334 UGFzc3dvcmQ6\r\n");
  EXPECT_EQ(machine.TakeOutput(), "cA==\r\n");
  machine.Feed("235 2.7.0 Ok\r\n");
  EXPECT_TRUE(machine.ready());
}

TEST(ClientAuth, RefusedLoginDefersEverything) {
  ClientOptions o = WithPolicy(TlsPolicy::kMay);
  o.credentials = ClientCredentials{"u", "p"};
  ClientMachine machine = UnderTls(o);
  machine.Feed("250-peer.test\r\n250 AUTH PLAIN\r\n");
  machine.TakeOutput();
  machine.Feed("535 5.7.8 Authentication credentials invalid\r\n");
  EXPECT_EQ(machine.action(), ClientMachine::Action::kClosed);
  ASSERT_TRUE(machine.setup_failure());
  EXPECT_EQ(machine.setup_failure()->verdict, Verdict::kDeferred);
  EXPECT_NE(machine.setup_failure()->detail.find("in reply to AUTH command"),
            std::string::npos);
}

TEST(ClientAuth, NeverWithoutTls) {
  ClientOptions o = WithPolicy(TlsPolicy::kMay);
  o.credentials = ClientCredentials{"u", "p"};
  ClientMachine machine(o, "p[127.0.0.1]:25");
  machine.Feed("220 peer.test ESMTP\r\n");
  machine.TakeOutput();
  machine.Feed("250-peer.test\r\n250 AUTH PLAIN\r\n");
  EXPECT_EQ(machine.TakeOutput(), "");
  EXPECT_EQ(machine.action(), ClientMachine::Action::kClosed);
  EXPECT_EQ(machine.setup_failure()->status.ToString(), "4.7.0");
}

}  // namespace
}  // namespace petrel::delivery
