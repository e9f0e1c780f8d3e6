#include "server/session_machine.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "config/config.h"
#include "server/relay_policy.h"

namespace petrel::server {
namespace {

config::Config TestConfig() {
  config::Config c;
  c.server.hostname = "mx.example.test";
  c.relay.local_domains = {"example.test"};
  c.listeners.push_back({"127.0.0.1", 2525, config::ListenerMode::kSmtp});
  return c;
}

// Drives a SessionMachine as session.cc does, with an in-memory "spool":
// appends and commits succeed unless told otherwise.
class Driver {
 public:
  explicit Driver(config::Config c = TestConfig(), bool trusted = false,
                  bool tls = false, bool submission = false) {
    auto cfg = std::make_shared<const config::Config>(std::move(c));
    SessionEnv env;
    env.config = cfg;
    env.relay = std::make_shared<RelayPolicy>(*cfg);
    env.now_rfc5322 = [] {
      return std::string("Mon, 23 Nov 2026 03:37:02 +0000");
    };
    env.now_unix = [] { return std::int64_t{1795000000}; };
    env.new_queue_id = [this] { return "ID" + std::to_string(++ids_); };
    env.spool_free_octets = [this] { return spool_free; };
    env.tls_available = tls;
    env.auth_available = cfg->auth.has_value();
    machine_ = std::make_unique<SessionMachine>(
        std::move(env), ClientInfo{"192.0.2.7", 40000, trusted, submission});
    machine_->Start();
    Run();
  }

  // Feeds bytes (the whole string, as one read) and returns what the server
  // wrote in response.
  std::string Send(std::string_view bytes) {
    pending_.append(bytes);
    Run();
    return Output();
  }
  std::string Output() { return std::exchange(out_, {}); }

  SessionMachine& m() { return *machine_; }
  bool closed() const { return closed_; }
  const std::vector<spool::Envelope>& committed() const { return committed_; }
  const std::vector<std::string>& contents() const { return contents_; }
  int aborts() const { return aborts_; }
  std::size_t dropped() const { return dropped_; }

  // What statvfs says of the spool's file system; nullopt: unknown.
  std::optional<std::uint64_t> spool_free;
  Status append_status = Status::Ok();
  Status commit_status = Status::Ok();
  // The credential check of kAuthenticate: alice/secret is good.
  bool auth_blocked = false;
  std::vector<std::string> alice_addresses;
  std::vector<std::pair<std::string, std::string>> auth_checks;

 private:
  void Run() {
    for (;;) {
      switch (machine_->action()) {
        case SessionMachine::Action::kRead:
          out_ += machine_->TakeOutput();
          if (pending_.empty()) return;
          pending_.erase(0, machine_->Feed(pending_));
          break;
        case SessionMachine::Action::kAppend:
          current_ += machine_->TakeContent();
          machine_->OnAppendDone(append_status);
          break;
        case SessionMachine::Action::kCommit:
          current_ += machine_->TakeContent();
          if (commit_status.ok()) {
            committed_.push_back(machine_->envelope());
            contents_.push_back(current_);
          }
          current_.clear();
          machine_->OnCommitDone(commit_status);
          break;
        case SessionMachine::Action::kAbort:
          current_.clear();
          ++aborts_;
          machine_->OnAbortDone();
          break;
        case SessionMachine::Action::kStartTls:
          out_ += machine_->TakeOutput();
          // What a real driver does: drop input pipelined behind STARTTLS.
          dropped_ += pending_.size();
          pending_.clear();
          machine_->OnTlsStarted("TLSv1.3 with cipher TEST (256/256 bits)");
          break;
        case SessionMachine::Action::kAuthenticate: {
          out_ += machine_->TakeOutput();
          const std::string user = machine_->auth_user();
          const std::string password = machine_->auth_password();
          auth_checks.emplace_back(user, password);
          if (auth_blocked) {
            machine_->OnAuthResult(AuthResult::kBlocked);
          } else if (user == "alice" && password == "secret") {
            machine_->OnAuthResult(AuthResult::kOk, alice_addresses);
          } else {
            machine_->OnAuthResult(AuthResult::kFailed);
          }
          break;
        }
        case SessionMachine::Action::kClose:
          out_ += machine_->TakeOutput();
          closed_ = true;
          return;
      }
    }
  }

  std::unique_ptr<SessionMachine> machine_;
  std::string pending_, out_, current_;
  std::vector<spool::Envelope> committed_;
  std::vector<std::string> contents_;
  int ids_ = 0;
  int aborts_ = 0;
  std::size_t dropped_ = 0;
  bool closed_ = false;
};

std::string Body(const std::string& content) {
  auto pos = content.find("\r\n\r\n");
  return pos == std::string::npos ? content : content.substr(pos + 4);
}

TEST(SessionMachine, GreetsAndAdvertises) {
  Driver d;
  EXPECT_EQ(d.Output(), "220 mx.example.test ESMTP petrel\r\n");
  std::string ehlo = d.Send("EHLO client.example\r\n");
  EXPECT_NE(ehlo.find("250-mx.example.test\r\n"), std::string::npos);
  for (const char* ext :
       {"PIPELINING", "SIZE 52428800", "ENHANCEDSTATUSCODES", "8BITMIME",
        "SMTPUTF8", "CHUNKING", "DSN", "LIMITS RCPTMAX=1000"}) {
    EXPECT_NE(ehlo.find(ext), std::string::npos) << ext;
  }
  EXPECT_EQ(ehlo.find("STARTTLS"), std::string::npos);
}

TEST(SessionMachine, OneMessage) {
  Driver d;
  d.Output();
  d.Send("EHLO c.example\r\n");
  EXPECT_EQ(d.Send("MAIL FROM:<a@remote.example> SIZE=100\r\n"),
            "250 2.1.0 Ok\r\n");
  EXPECT_EQ(d.Send("RCPT TO:<bob@example.test> NOTIFY=FAILURE "
                   "ORCPT=rfc822;bob@example.test\r\n"),
            "250 2.1.5 Ok\r\n");
  EXPECT_EQ(d.Send("DATA\r\n"), "354 End data with <CR><LF>.<CR><LF>\r\n");
  EXPECT_EQ(d.Send("Subject: hi\r\n\r\n..dot\r\nbody\r\n.\r\n"),
            "250 2.0.0 Ok: queued as ID1\r\n");
  ASSERT_EQ(d.committed().size(), 1u);
  const auto& e = d.committed()[0];
  EXPECT_EQ(e.id, "ID1");
  EXPECT_EQ(e.sender, "a@remote.example");
  ASSERT_EQ(e.recipients.size(), 1u);
  EXPECT_EQ(e.recipients[0].address, "bob@example.test");
  EXPECT_EQ(e.recipients[0].orcpt_type, "rfc822");
  EXPECT_EQ(e.recipients[0].orcpt_address, "bob@example.test");
  EXPECT_EQ(e.recipients[0].notify, smtp::kNotifyFailure);
  const std::string& content = d.contents()[0];
  EXPECT_EQ(content.rfind("Received: from c.example (unknown [192.0.2.7])\r\n"
                          "\tby mx.example.test (petrel) with ESMTP id ID1\r\n"
                          "\tfor <bob@example.test>;\r\n"
                          "\tMon, 23 Nov 2026 03:37:02 +0000\r\n",
                          0),
            0u)
      << content;
  EXPECT_NE(content.find("Subject: hi\r\n\r\n.dot\r\nbody\r\n"),
            std::string::npos);
  EXPECT_EQ(d.Send("QUIT\r\n"), "221 2.0.0 Bye\r\n");
  EXPECT_TRUE(d.closed());
}

TEST(SessionMachine, PipelinedGroupAnsweredInOrder) {
  Driver d;
  d.Output();
  std::string out = d.Send(
      "EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<a@example.test>\r\n"
      "RCPT TO:<x@elsewhere.example>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n");
  std::vector<std::string> finals;
  std::size_t pos = 0;
  while (pos < out.size()) {
    auto eol = out.find("\r\n", pos);
    std::string line = out.substr(pos, eol - pos);
    if (line.size() > 3 && line[3] == ' ') finals.push_back(line.substr(0, 3));
    pos = eol + 2;
  }
  EXPECT_EQ(finals, (std::vector<std::string>{"250", "250", "250", "554", "250",
                                              "354"}))
      << out;
  EXPECT_EQ(d.Send("x\r\n.\r\n"), "250 2.0.0 Ok: queued as ID1\r\n");
  EXPECT_EQ(d.committed()[0].recipients.size(), 2u);
}

TEST(SessionMachine, SequenceErrors) {
  Driver d;
  d.Output();
  EXPECT_EQ(d.Send("MAIL FROM:<a@b.example>\r\n"),
            "503 5.5.1 Error: send HELO/EHLO first\r\n");
  d.Send("HELO c\r\n");
  EXPECT_EQ(d.Send("RCPT TO:<a@example.test>\r\n"),
            "503 5.5.1 Error: need MAIL command\r\n");
  EXPECT_EQ(d.Send("DATA\r\n"), "503 5.5.1 Error: need MAIL command\r\n");
  d.Send("MAIL FROM:<a@b.example>\r\n");
  EXPECT_EQ(d.Send("MAIL FROM:<a@b.example>\r\n"),
            "503 5.5.1 Error: nested MAIL command\r\n");
  EXPECT_EQ(d.Send("DATA\r\n"), "554 5.5.1 Error: no valid recipients\r\n");
  EXPECT_EQ(d.Send("FOO\r\n").substr(0, 10), "500 5.5.1 ");
  EXPECT_EQ(d.Send("RSET\r\n"), "250 2.0.0 Ok\r\n");
  EXPECT_EQ(d.Send("NOOP\r\n"), "250 2.0.0 Ok\r\n");
  EXPECT_EQ(d.Send("VRFY bob\r\n").substr(0, 4), "252 ");
  // HELO sessions take no ESMTP parameters.
  EXPECT_EQ(d.Send("MAIL FROM:<a@b.example> SIZE=10\r\n").substr(0, 10),
            "555 5.5.4 ");
}

TEST(SessionMachine, RecipientLimitIsOrderly) {
  Driver d;
  d.Output();
  d.Send("EHLO c\r\nMAIL FROM:<s@remote.example>\r\n");
  std::string batch;
  for (int i = 0; i < 1001; ++i) {
    batch += "RCPT TO:<u" + std::to_string(i) + "@example.test>\r\n";
  }
  std::string out = d.Send(batch);
  std::size_t ok = 0, full = 0;
  for (std::size_t p = out.find("250 2.1.5"); p != std::string::npos;
       p = out.find("250 2.1.5", p + 1)) {
    ++ok;
  }
  for (std::size_t p = out.find("452 4.5.3 Too many recipients");
       p != std::string::npos; p = out.find("452 4.5.3", p + 1)) {
    ++full;
  }
  EXPECT_EQ(ok, 1000u);
  EXPECT_EQ(full, 1u);
  EXPECT_FALSE(d.closed());  // 452 is not counted as a client error
  d.Send("DATA\r\n");
  EXPECT_EQ(d.Send("hi\r\n.\r\n"), "250 2.0.0 Ok: queued as ID1\r\n");
  ASSERT_EQ(d.committed().size(), 1u);
  EXPECT_EQ(d.committed()[0].recipients.size(), 1000u);
  EXPECT_EQ(d.committed()[0].recipients[999].address, "u999@example.test");
}

TEST(SessionMachine, MinimumRecipientLimitIsOneHundred) {
  auto c = TestConfig();
  c.limits.max_recipients = 100;
  Driver d(c);
  d.Output();
  d.Send("EHLO c\r\nMAIL FROM:<s@remote.example>\r\n");
  std::string out;
  for (int i = 0; i < 100; ++i) {
    out = d.Send("RCPT TO:<u" + std::to_string(i) + "@example.test>\r\n");
    ASSERT_EQ(out, "250 2.1.5 Ok\r\n") << i;
  }
  EXPECT_EQ(d.Send("RCPT TO:<late@example.test>\r\n"),
            "452 4.5.3 Too many recipients\r\n");
}

TEST(SessionMachine, LongCommandLineKeepsSessionInStep) {
  Driver d;
  d.Output();
  d.Send("EHLO c\r\n");
  // 512 octets including CRLF is the limit: accepted.
  std::string at_limit = "NOOP " + std::string(505, 'x') + "\r\n";
  ASSERT_EQ(at_limit.size(), 512u);
  EXPECT_EQ(d.Send(at_limit), "250 2.0.0 Ok\r\n");
  std::string over = "NOOP " + std::string(506, 'x') + "\r\n";
  EXPECT_EQ(d.Send(over + "NOOP\r\n"),
            "500 5.5.2 Line too long\r\n250 2.0.0 Ok\r\n");
  // A huge line, fed in pieces, is discarded to its end.
  std::string huge(1 << 20, 'y');
  EXPECT_EQ(d.Send(huge), "");
  EXPECT_EQ(d.Send("\r\nNOOP\r\n"),
            "500 5.5.2 Line too long\r\n250 2.0.0 Ok\r\n");
}

TEST(SessionMachine, TextBeforeThe354IsASyncError) {
  Driver d;
  d.Output();
  d.Send("EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<x@example.test>\r\n");
  EXPECT_EQ(d.Send("DATA\r\nSubject: x\r\n\r\nhi\r\n.\r\n"),
            "554 5.5.0 Error: SMTP protocol synchronization\r\n");
  EXPECT_TRUE(d.closed());
  EXPECT_TRUE(d.committed().empty());
}

TEST(SessionMachine, SmugglingVariantsNeverEndTheData) {
  for (std::string variant : {"\n.\n", "\n.\r\n", "\r\n.\n", "\r.\r", "\r.\n",
                              "\n.\r", "\r\n.\r", "\r.\r\n", "\r\n.\r\r\n"}) {
    Driver d;
    d.Output();
    d.Send("EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<x@example.test>\r\n");
    d.Send("DATA\r\n");
    std::string out = d.Send("Subject: x\r\n\r\nhi" + variant +
                             "MAIL FROM:<evil@b.example>\r\n"
                             "RCPT TO:<victim@example.test>\r\nDATA\r\n"
                             "smuggled\r\n.\r\n");
    // One message, refused as a whole for its bare CR/LF: nothing queued,
    // and certainly not two.
    EXPECT_EQ(out,
              "550 5.5.2 Error: bare <CR> or <LF> received in message text\r\n")
        << testing::PrintToString(variant);
    EXPECT_TRUE(d.committed().empty());
    EXPECT_FALSE(d.closed());
    EXPECT_EQ(d.Send("NOOP\r\n"), "250 2.0.0 Ok\r\n");
  }
}

TEST(SessionMachine, SizeLimitDuringData) {
  auto c = TestConfig();
  c.limits.max_message_size = 65536;
  Driver d(c);
  d.Output();
  d.Send("EHLO c\r\n");
  EXPECT_EQ(d.Send("MAIL FROM:<a@b.example> SIZE=65537\r\n").substr(0, 10),
            "552 5.3.4 ");
  d.Send("MAIL FROM:<a@b.example>\r\nRCPT TO:<x@example.test>\r\nDATA\r\n");
  std::string line(998, 'a');
  std::string big;
  while (big.size() <= 70000) big += line + "\r\n";
  EXPECT_EQ(d.Send(big + ".\r\n"),
            "552 5.3.4 Message size exceeds fixed maximum message size\r\n");
  EXPECT_TRUE(d.committed().empty());
  // The session stays usable: a message of exactly the limit is accepted.
  d.Send("MAIL FROM:<a@b.example>\r\nRCPT TO:<x@example.test>\r\nDATA\r\n");
  std::string exact;
  while (exact.size() + 1000 <= 65536) exact += line + "\r\n";
  exact += std::string(65536 - exact.size() - 2, 'b') + "\r\n";
  ASSERT_EQ(exact.size(), 65536u);
  EXPECT_EQ(d.Send(exact + ".\r\n"), "250 2.0.0 Ok: queued as ID2\r\n");
  EXPECT_TRUE(d.contents()[0].ends_with("\r\n" + exact));
}

TEST(SessionMachine, LongTextLinesAreKept) {
  Driver d;
  d.Output();
  d.Send(
      "EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT "
      "TO:<x@example.test>\r\nDATA\r\n");
  std::string long_line(5000, 'z');
  EXPECT_EQ(d.Send("\r\n" + long_line + "\r\n.\r\n"),
            "250 2.0.0 Ok: queued as ID1\r\n");
  EXPECT_EQ(Body(d.contents()[0]), long_line + "\r\n");
}

TEST(SessionMachine, ReceivedHeaderLoopLimit) {
  auto c = TestConfig();
  c.limits.max_received_headers = 3;
  auto send_with = [&](int hops) {
    Driver d(c);
    d.Output();
    d.Send(
        "EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT "
        "TO:<x@example.test>\r\nDATA\r\n");
    std::string msg;
    for (int i = 0; i < hops; ++i)
      msg += "Received: from hop" + std::to_string(i) + "\r\n";
    return d.Send(msg + "Subject: x\r\n\r\nReceived: in body\r\n.\r\n");
  };
  EXPECT_EQ(send_with(3).substr(0, 4), "250 ");
  EXPECT_EQ(send_with(4), "554 5.4.6 Too many hops\r\n");
}

TEST(SessionMachine, Bdat) {
  Driver d;
  d.Output();
  d.Send("EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<x@example.test>\r\n");
  std::string out =
      d.Send("BDAT 12\r\nSubject: x\r\nBDAT 9 LAST\r\n\r\nhi\r\n.\r\nNOOP\r\n");
  EXPECT_EQ(out,
            "250 2.0.0 Ok: 12 octets received\r\n"
            "250 2.0.0 Ok: queued as ID1\r\n250 2.0.0 Ok\r\n");
  ASSERT_EQ(d.contents().size(), 1u);
  // No dot-unstuffing in BDAT: ".\r\n" is data.
  EXPECT_EQ(Body(d.contents()[0]), "hi\r\n.\r\n");
  // BDAT without a transaction: the chunk is read and discarded, then 503.
  EXPECT_EQ(d.Send("BDAT 6 LAST\r\nQUIT\r\nNOOP\r\n"),
            "503 5.5.1 Error: need MAIL command\r\n250 2.0.0 Ok\r\n");
  EXPECT_FALSE(d.closed());
  EXPECT_EQ(d.committed().size(), 1u);
}

TEST(SessionMachine, BdatZeroLastAndBadSizes) {
  Driver d;
  d.Output();
  d.Send("EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<x@example.test>\r\n");
  EXPECT_EQ(d.Send("BDAT 0 LAST\r\n"), "250 2.0.0 Ok: queued as ID1\r\n");
  for (const char* bad :
       {"BDAT -1\r\n", "BDAT 18446744073709551616\r\n", "BDAT x\r\n"}) {
    Driver e;
    e.Output();
    e.Send("EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<x@example.test>\r\n");
    EXPECT_EQ(e.Send(bad).substr(0, 4), "501 ") << bad;
    EXPECT_TRUE(e.closed()) << bad;
    EXPECT_TRUE(e.committed().empty());
  }
}

TEST(SessionMachine, TextPastTheBdatChunkIsASyncError) {
  Driver d;
  d.Output();
  d.Send("EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<x@example.test>\r\n");
  // 10 octets said, more sent: the rest is message text, not commands, even
  // where a line of it looks like one.
  EXPECT_EQ(d.Send("BDAT 10 LAST\r\nSubject: b\r\n\r\nRCPT TO:<y@example.test>"
                   "\r\n"),
            "250 2.0.0 Ok: queued as ID1\r\n"
            "554 5.5.0 Error: SMTP protocol synchronization (text past the end "
            "of the BDAT chunk)\r\n");
  EXPECT_TRUE(d.closed());
  EXPECT_EQ(d.committed().size(), 1u);
  // A command right after a chunk is fine, and only the first line counts.
  Driver e;
  e.Output();
  e.Send("EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<x@example.test>\r\n");
  EXPECT_EQ(e.Send("BDAT 4\r\nab\r\nNOOP\r\nBOGUS\r\n"),
            "250 2.0.0 Ok: 4 octets received\r\n250 2.0.0 Ok\r\n"
            "500 5.5.1 Command unrecognized\r\n");
  EXPECT_FALSE(e.closed());
}

TEST(SessionMachine, LowSpoolSpaceRefusesMail) {
  constexpr std::uint64_t kMiB = 1024 * 1024;
  Driver d;  // min_free_space: 100 MiB by default
  d.Output();
  d.Send("EHLO c\r\n");
  d.spool_free = 99 * kMiB;
  EXPECT_EQ(d.Send("MAIL FROM:<a@b.example>\r\n"),
            "452 4.3.1 Insufficient system storage\r\n");
  d.spool_free = 120 * kMiB;
  // The declared SIZE counts too.
  EXPECT_EQ(d.Send("MAIL FROM:<a@b.example> SIZE=41943040\r\n"),
            "452 4.3.1 Insufficient system storage\r\n");
  EXPECT_EQ(d.Send("MAIL FROM:<a@b.example> SIZE=10485760\r\n"),
            "250 2.1.0 Ok\r\n");
  EXPECT_EQ(d.Send("RSET\r\n"), "250 2.0.0 Ok\r\n");
  // Unknown free space, or the check off: no refusal.
  d.spool_free.reset();
  EXPECT_EQ(d.Send("MAIL FROM:<a@b.example>\r\n"), "250 2.1.0 Ok\r\n");
  auto c = TestConfig();
  c.spool.min_free_space = 0;
  Driver e(c);
  e.Output();
  e.spool_free = 0;
  e.Send("EHLO c\r\n");
  EXPECT_EQ(e.Send("MAIL FROM:<a@b.example>\r\n"), "250 2.1.0 Ok\r\n");
}

TEST(SessionMachine, HeaderSizeLimit) {
  auto c = TestConfig();
  c.limits.max_header_size = 2048;
  Driver d(c);
  d.Output();
  auto send_header = [&](std::size_t octets) {
    d.Send("MAIL FROM:<a@b.example>\r\nRCPT TO:<x@example.test>\r\nDATA\r\n");
    std::string header;
    for (int i = 0; header.size() < octets; ++i) {
      header += fmt::format("X-F-{:04}: {}\r\n", i, std::string(20, 'v'));
    }
    return d.Send(header + "\r\nbody\r\n.\r\n");
  };
  d.Send("EHLO c\r\n");
  EXPECT_EQ(send_header(2000).substr(0, 4), "250 ");
  EXPECT_EQ(send_header(4000),
            "552 5.3.4 Message header size exceeds fixed maximum header "
            "size\r\n");
  EXPECT_EQ(d.committed().size(), 1u);
  // A large body is not a large header.
  d.Send("MAIL FROM:<a@b.example>\r\nRCPT TO:<x@example.test>\r\nDATA\r\n");
  std::string body;
  while (body.size() < 10000) body += std::string(70, 'b') + "\r\n";
  EXPECT_EQ(d.Send("Subject: x\r\n\r\n" + body + ".\r\n").substr(0, 4), "250 ");
  EXPECT_FALSE(d.closed());
}

TEST(SessionMachine, TooManyErrorsEndsTheSession) {
  Driver d;
  d.Output();
  std::string out;
  for (int i = 0; i < 21; ++i) out += d.Send("BOGUS\r\n");
  EXPECT_NE(out.find("421 4.7.0 mx.example.test Error: too many errors"),
            std::string::npos);
  EXPECT_TRUE(d.closed());
}

TEST(SessionMachine, RelayIsRefusedForUntrustedClients) {
  Driver d;
  d.Output();
  d.Send("EHLO c\r\nMAIL FROM:<a@b.example>\r\n");
  for (const char* rcpt :
       {"<v@ext.example>", "<v%ext.example@example.test>",
        "<@example.test:v@ext.example>", "<\"v@ext.example\"@example.test>",
        "<ext.example!v@example.test>", "<v@[192.0.2.1]>"}) {
    EXPECT_EQ(d.Send(std::string("RCPT TO:") + rcpt + "\r\n").substr(0, 10),
              "554 5.7.1 ")
        << rcpt;
  }
  EXPECT_EQ(d.Send("RCPT TO:<Postmaster>\r\n"), "250 2.1.5 Ok\r\n");
  Driver t(TestConfig(), /*trusted=*/true);
  t.Output();
  t.Send("EHLO c\r\nMAIL FROM:<a@b.example>\r\n");
  EXPECT_EQ(t.Send("RCPT TO:<v@ext.example>\r\n"), "250 2.1.5 Ok\r\n");
}

TEST(SessionMachine, SpoolFailuresAreNeverAcknowledged) {
  Driver d;
  d.Output();
  d.commit_status = Status::NoSpace("disk full");
  d.Send(
      "EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT "
      "TO:<x@example.test>\r\nDATA\r\n");
  EXPECT_EQ(d.Send("hi\r\n.\r\n"), "452 4.3.1 Insufficient system storage\r\n");
  d.commit_status = Status::IoError("EIO");
  d.Send("MAIL FROM:<a@b.example>\r\nRCPT TO:<x@example.test>\r\nDATA\r\n");
  EXPECT_EQ(d.Send("hi\r\n.\r\n"),
            "451 4.3.0 Error: queue file write error\r\n");
  d.commit_status = Status::Ok();
  d.Send("MAIL FROM:<a@b.example>\r\nRCPT TO:<x@example.test>\r\nDATA\r\n");
  EXPECT_EQ(d.Send("hi\r\n.\r\n").substr(0, 4), "250 ");
  // A failed append (large message) is refused at the end of data too.
  d.append_status = Status::NoSpace("disk full");
  d.Send("MAIL FROM:<a@b.example>\r\nRCPT TO:<x@example.test>\r\nDATA\r\n");
  std::string piece(64 * 1024, 'a');
  for (int i = 0; i < 10; ++i) EXPECT_EQ(d.Send(piece), "");
  EXPECT_EQ(d.Send("\r\n.\r\n"), "452 4.3.1 Insufficient system storage\r\n");
  EXPECT_EQ(d.aborts(), 1);
  EXPECT_EQ(d.committed().size(), 1u);
}

TEST(SessionMachine, EveryByteSplitGivesTheSameReplies) {
  const std::string dialog =
      "EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<x@example.test>\r\n"
      "RCPT TO:<y@example.test>\r\nBDAT 4\r\nab\r\nBDAT 3 LAST\r\nz\r\n"
      "RSET\r\nNOOP\r\nQUIT\r\n";
  Driver whole;
  std::string expected = whole.Output() + whole.Send(dialog);
  Driver bytes;
  std::string got = bytes.Output();
  for (char c : dialog) got += bytes.Send(std::string(1, c));
  EXPECT_EQ(got, expected);
  EXPECT_EQ(bytes.contents(), whole.contents());
  EXPECT_TRUE(bytes.closed());
}

config::Config TlsConfig() {
  auto c = TestConfig();
  c.tls = config::Tls{"cert.pem", "key.pem"};
  return c;
}

TEST(SessionMachine, NoStartTlsWithoutTlsConfig) {
  Driver d(TestConfig());
  d.Output();
  // Without [tls], STARTTLS is neither offered nor accepted.
  EXPECT_EQ(d.Send("EHLO c\r\n").find("STARTTLS"), std::string::npos);
  EXPECT_EQ(d.Send("STARTTLS\r\n").substr(0, 10), "502 5.5.1 ");
}

TEST(SessionMachineTls, StartTlsStartsOverAndDropsPipelinedPlaintext) {
  Driver d(TlsConfig(), false, /*tls=*/true);
  d.Output();
  EXPECT_EQ(d.Send("STARTTLS\r\n"), "503 5.5.1 Error: send EHLO first\r\n");
  EXPECT_NE(d.Send("EHLO c\r\n").find("250 STARTTLS"), std::string::npos);
  d.Send("MAIL FROM:<a@b.example>\r\n");
  EXPECT_EQ(d.Send("STARTTLS\r\n"),
            "503 5.5.1 Error: MAIL transaction in progress\r\n");
  d.Send("RSET\r\n");
  // The CVE-2011-0411 injection: commands behind STARTTLS in the same
  // packet are dropped, not answered after the handshake.
  EXPECT_EQ(d.Send("STARTTLS\r\nMAIL FROM:<evil@b.example>\r\nRCPT "
                   "TO:<x@example.test>\r\n"),
            "220 2.0.0 Ready to start TLS\r\n");
  EXPECT_GT(d.dropped(), 0u);
  // Everything from before TLS is forgotten: EHLO is needed again.
  EXPECT_EQ(d.Send("MAIL FROM:<a@b.example>\r\n"),
            "503 5.5.1 Error: send HELO/EHLO first\r\n");
  std::string ehlo = d.Send("EHLO c\r\n");
  EXPECT_EQ(ehlo.find("STARTTLS"), std::string::npos);
  EXPECT_EQ(d.Send("STARTTLS\r\n"), "503 5.5.1 Error: TLS already active\r\n");
  d.Send("MAIL FROM:<a@b.example>\r\nRCPT TO:<x@example.test>\r\nDATA\r\n");
  EXPECT_EQ(d.Send("hi\r\n.\r\n"), "250 2.0.0 Ok: queued as ID2\r\n");
  EXPECT_NE(d.contents()[0].find(
                "\t(using TLSv1.3 with cipher TEST (256/256 bits))\r\n"
                "\tby mx.example.test (petrel) with ESMTPS id ID2"),
            std::string::npos)
      << d.contents()[0];
  EXPECT_EQ(d.committed()[0].protocol, "ESMTPS");
}

TEST(SessionMachine, ShutdownAndTimeout) {
  Driver d;
  d.Output();
  d.m().OnShutdown();
  EXPECT_EQ(d.m().action(), SessionMachine::Action::kClose);
  EXPECT_EQ(d.m().TakeOutput(),
            "421 4.3.2 mx.example.test Service shutting down\r\n");
  Driver t;
  t.Output();
  t.m().OnTimeout();
  EXPECT_EQ(t.m().TakeOutput(),
            "421 4.4.2 mx.example.test Error: timeout exceeded\r\n");
}

}  // namespace
}  // namespace petrel::server

namespace petrel::server {
namespace {

config::Config AuthConfig() {
  config::Config c = TestConfig();
  c.auth = config::Auth{};
  c.auth->users = "/dev/null";
  return c;
}

// "\0alice\0secret" and friends, base64 (RFC 4616).
constexpr std::string_view kAliceSecret = "AGFsaWNlAHNlY3JldA==";
constexpr std::string_view kAliceWrong = "AGFsaWNlAHdyb25n";    // alice/wrong
constexpr std::string_view kMalloryX = "AG1hbGxvcnkAc2VjcmV0";  // mallory

// EHLO, STARTTLS, EHLO: the state AUTH needs.
std::string UnderTls(Driver& d) {
  d.Output();
  d.Send("EHLO c.example\r\n");
  d.Send("STARTTLS\r\n");
  return d.Send("EHLO c.example\r\n");
}

TEST(SessionAuth, NotOfferedNorTakenWithoutTls) {
  Driver d(AuthConfig(), false, /*tls=*/true);
  d.Output();
  EXPECT_EQ(d.Send("EHLO c.example\r\n").find("AUTH"), std::string::npos);
  EXPECT_EQ(
      d.Send(std::string("AUTH PLAIN ") + std::string(kAliceSecret) + "\r\n"),
      "538 5.7.11 Encryption required for requested authentication "
      "mechanism\r\n");
  EXPECT_TRUE(d.auth_checks.empty());
}

TEST(SessionAuth, NotOfferedWithoutAuthSection) {
  Driver d(TestConfig(), false, /*tls=*/true);
  EXPECT_EQ(UnderTls(d).find("AUTH"), std::string::npos);
  EXPECT_EQ(d.Send("AUTH PLAIN =\r\n"),
            "502 5.5.1 Error: command not implemented\r\n");
}

TEST(SessionAuth, PlainWithInitialResponseThenRelayAnywhere) {
  Driver d(AuthConfig(), false, true);
  EXPECT_NE(UnderTls(d).find("250 AUTH PLAIN LOGIN\r\n"), std::string::npos);
  EXPECT_EQ(
      d.Send(std::string("AUTH PLAIN ") + std::string(kAliceSecret) + "\r\n"),
      "235 2.7.0 Authentication successful\r\n");
  ASSERT_EQ(d.auth_checks.size(), 1u);
  EXPECT_EQ(d.auth_checks[0].first, "alice");
  EXPECT_EQ(d.m().authenticated_user(), "alice");
  // Untrusted address, but authenticated: relaying is allowed.
  EXPECT_EQ(d.Send("MAIL FROM:<alice@example.test> AUTH=alice@example.test\r\n"
                   "RCPT TO:<x@far.example>\r\nDATA\r\n"),
            "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with "
            "<CR><LF>.<CR><LF>\r\n");
  EXPECT_EQ(d.Send("Subject: s\r\n\r\nb\r\n.\r\n"),
            "250 2.0.0 Ok: queued as ID1\r\n");
  ASSERT_EQ(d.committed().size(), 1u);
  EXPECT_EQ(d.committed()[0].protocol, "ESMTPSA");
  EXPECT_NE(d.contents()[0].find("with ESMTPSA id ID1"), std::string::npos)
      << d.contents()[0];
}

TEST(SessionAuth, PlainAndLoginWithChallenges) {
  Driver d(AuthConfig(), false, true);
  UnderTls(d);
  EXPECT_EQ(d.Send("AUTH PLAIN\r\n"), "334 \r\n");
  EXPECT_EQ(d.Send(std::string(kAliceWrong) + "\r\n"),
            "535 5.7.8 Authentication credentials invalid\r\n");
  EXPECT_EQ(d.Send("AUTH LOGIN\r\n"), "334 VXNlcm5hbWU6\r\n");
  EXPECT_EQ(d.Send("YWxpY2U=\r\n"), "334 UGFzc3dvcmQ6\r\n");
  EXPECT_EQ(d.Send("c2VjcmV0\r\n"), "235 2.7.0 Authentication successful\r\n");
  EXPECT_EQ(d.Send("AUTH LOGIN\r\n"),
            "503 5.5.1 Error: already authenticated\r\n");
}

TEST(SessionAuth, LoginWithInitialUserName) {
  Driver d(AuthConfig(), false, true);
  UnderTls(d);
  EXPECT_EQ(d.Send("AUTH login YWxpY2U=\r\n"), "334 UGFzc3dvcmQ6\r\n");
  EXPECT_EQ(d.Send("c2VjcmV0\r\n"), "235 2.7.0 Authentication successful\r\n");
}

TEST(SessionAuth, UnknownUserGetsTheSameAnswerAsAWrongPassword) {
  Driver d(AuthConfig(), false, true);
  UnderTls(d);
  const std::string wrong =
      d.Send(std::string("AUTH PLAIN ") + std::string(kAliceWrong) + "\r\n");
  const std::string unknown =
      d.Send(std::string("AUTH PLAIN ") + std::string(kMalloryX) + "\r\n");
  EXPECT_EQ(wrong, "535 5.7.8 Authentication credentials invalid\r\n");
  EXPECT_EQ(unknown, wrong);
  EXPECT_EQ(d.auth_checks.size(), 2u);
}

TEST(SessionAuth, CancelBadBase64AndBadMechanism) {
  Driver d(AuthConfig(), false, true);
  UnderTls(d);
  EXPECT_EQ(d.Send("AUTH PLAIN\r\n*\r\n"),
            "334 \r\n501 5.7.0 Authentication aborted\r\n");
  EXPECT_EQ(d.Send("AUTH PLAIN not-base64!\r\n"),
            "501 5.5.2 Cannot decode response\r\n");
  EXPECT_EQ(d.Send("AUTH CRAM-MD5\r\n"),
            "504 5.5.4 Unrecognized authentication type\r\n");
  // A malformed PLAIN message is a failed login like any other.
  EXPECT_EQ(d.Send("AUTH PLAIN YWxpY2U=\r\n"),
            "535 5.7.8 Authentication credentials invalid\r\n");
  EXPECT_EQ(d.Send("NOOP\r\n"), "250 2.0.0 Ok\r\n");
}

TEST(SessionAuth, PipelinedCommandsWaitForTheCheck) {
  Driver d(AuthConfig(), false, true);
  UnderTls(d);
  EXPECT_EQ(d.Send(std::string("AUTH PLAIN ") + std::string(kAliceSecret) +
                   "\r\nMAIL FROM:<alice@example.test>\r\n"),
            "235 2.7.0 Authentication successful\r\n250 2.1.0 Ok\r\n");
}

TEST(SessionAuth, NotDuringATransaction) {
  Driver d(AuthConfig(), false, true);
  UnderTls(d);
  d.Send("MAIL FROM:<a@remote.example>\r\n");
  EXPECT_EQ(d.Send("AUTH PLAIN =\r\n"),
            "503 5.5.1 Error: MAIL transaction in progress\r\n");
}

TEST(SessionAuth, SubmissionRequiresAuthBeforeMail) {
  Driver d(AuthConfig(), false, true, /*submission=*/true);
  UnderTls(d);
  EXPECT_EQ(d.Send("MAIL FROM:<alice@example.test>\r\n"),
            "530 5.7.0 Authentication required\r\n");
  d.Send(std::string("AUTH PLAIN ") + std::string(kAliceSecret) + "\r\n");
  EXPECT_EQ(d.Send("MAIL FROM:<alice@example.test>\r\n"), "250 2.1.0 Ok\r\n");
}

TEST(SessionAuth, SenderMustBelongToTheUser) {
  Driver d(AuthConfig(), false, true, true);
  d.alice_addresses = {"sales@example.test"};
  UnderTls(d);
  d.Send(std::string("AUTH PLAIN ") + std::string(kAliceSecret) + "\r\n");
  EXPECT_EQ(d.Send("MAIL FROM:<bob@example.test>\r\n"),
            "553 5.7.1 <bob@example.test>: Sender address rejected: not owned "
            "by user alice\r\n");
  EXPECT_EQ(d.Send("MAIL FROM:<Sales@example.test>\r\nRSET\r\n"),
            "250 2.1.0 Ok\r\n250 2.0.0 Ok\r\n");
  EXPECT_EQ(d.Send("MAIL FROM:<>\r\nRSET\r\n"),
            "250 2.1.0 Ok\r\n250 2.0.0 Ok\r\n");
}

TEST(SessionAuth, SenderCheckCanBeTurnedOff) {
  config::Config c = AuthConfig();
  c.auth->sender_login_match = false;
  Driver d(c, false, true, true);
  UnderTls(d);
  d.Send(std::string("AUTH PLAIN ") + std::string(kAliceSecret) + "\r\n");
  EXPECT_EQ(d.Send("MAIL FROM:<bob@example.test>\r\n"), "250 2.1.0 Ok\r\n");
}

TEST(SessionAuth, BlockedAddressIsDisconnected) {
  Driver d(AuthConfig(), false, true);
  UnderTls(d);
  d.auth_blocked = true;
  EXPECT_EQ(
      d.Send(std::string("AUTH PLAIN ") + std::string(kAliceSecret) + "\r\n"),
      "421 4.7.0 mx.example.test Error: too many authentication "
      "failures; try again later\r\n");
  EXPECT_TRUE(d.closed());
}

TEST(SessionAuth, StartTlsForgetsNothingItShouldKeep) {
  // AUTH is only possible after TLS, and a second STARTTLS is refused, so
  // an authenticated session never starts over.
  Driver d(AuthConfig(), false, true);
  UnderTls(d);
  d.Send(std::string("AUTH PLAIN ") + std::string(kAliceSecret) + "\r\n");
  EXPECT_EQ(d.Send("STARTTLS\r\n"), "503 5.5.1 Error: TLS already active\r\n");
  EXPECT_EQ(d.m().authenticated_user(), "alice");
}

}  // namespace
}  // namespace petrel::server
