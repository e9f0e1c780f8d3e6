#include "delivery/outcome.h"

#include <gtest/gtest.h>

#include <string>

#include "smtp/reply_parser.h"

namespace petrel::delivery {
namespace {

// One reply from its wire form ("550 5.1.1 unknown\r\n").
smtp::Reply R(std::string_view wire) {
  smtp::ReplyParser parser;
  parser.Feed(wire);
  auto next = parser.Next();
  EXPECT_TRUE(next && next->has_value()) << wire;
  return next && next->has_value() ? **next : smtp::Reply{};
}

std::string Show(Classification c) {
  std::string out;
  switch (c.effect) {
    case Effect::kProceed:
      return "proceed";
    case Effect::kHeloFallback:
      return "helo";
    case Effect::kStartTlsRefused:
      return "starttls-refused";
    case Effect::kRecipient:
      out = "recipient";
      break;
    case Effect::kTooManyRecipients:
      return "too-many";
    case Effect::kTransaction:
      out = "transaction";
      break;
    case Effect::kSite:
      return "site";
  }
  return out + " " + std::string(VerdictName(c.verdict));
}

std::string Rcpt(std::string_view wire, bool some_accepted) {
  return Show(ClassifyReply(Stage::kRcpt, R(wire), some_accepted));
}

TEST(ClassifyReply, RcptTooManyRecipients) {
  // Seeds 000 and 001: 452, and 552/522 once someone was accepted.
  EXPECT_EQ(Rcpt("452 4.5.3 Too many recipients\r\n", false), "too-many");
  EXPECT_EQ(Rcpt("452 Too many recipients\r\n", true), "too-many");
  EXPECT_EQ(Rcpt("452 4.2.2 Mailbox full\r\n", true), "too-many");
  EXPECT_EQ(Rcpt("552 Too many recipients\r\n", true), "too-many");
  EXPECT_EQ(Rcpt("522 Recipient buffer full\r\n", true), "too-many");
  EXPECT_EQ(Rcpt("550 5.5.3 Too many recipients\r\n", false), "too-many");
  EXPECT_EQ(Rcpt("451 4.5.3 Too many recipients\r\n", false), "too-many");
  // 552/522 for the first recipient: that recipient's own failure.
  EXPECT_EQ(Rcpt("552 5.2.2 Mailbox full\r\n", false), "recipient bounced");
  EXPECT_EQ(Rcpt("522 Mailbox full\r\n", false), "recipient bounced");
}

TEST(ClassifyReply, RcptOthers) {
  EXPECT_EQ(Rcpt("250 2.1.5 Ok\r\n", false), "proceed");
  EXPECT_EQ(Rcpt("251 User not local; will forward\r\n", true), "proceed");
  EXPECT_EQ(Rcpt("450 4.2.0 Greylisted\r\n", false), "recipient deferred");
  EXPECT_EQ(Rcpt("550 5.1.1 User unknown\r\n", true), "recipient bounced");
  EXPECT_EQ(Rcpt("553 5.1.3 Bad address\r\n", true), "recipient bounced");
  EXPECT_EQ(Rcpt("421 4.3.0 Bye\r\n", true), "site");
  EXPECT_EQ(Rcpt("354 What?\r\n", true), "site");
}

TEST(ClassifyReply, OtherStages) {
  auto show = [](Stage stage, std::string_view wire) {
    return Show(ClassifyReply(stage, R(wire)));
  };
  EXPECT_EQ(show(Stage::kGreeting, "220 hi\r\n"), "proceed");
  EXPECT_EQ(show(Stage::kGreeting, "554 go away\r\n"), "site");
  EXPECT_EQ(show(Stage::kGreeting, "421 busy\r\n"), "site");
  EXPECT_EQ(show(Stage::kEhlo, "502 5.5.2 What?\r\n"), "helo");
  EXPECT_EQ(show(Stage::kEhlo, "500 What?\r\n"), "helo");
  EXPECT_EQ(show(Stage::kEhlo, "421 bye\r\n"), "site");
  EXPECT_EQ(show(Stage::kEhlo, "450 later\r\n"), "site");
  EXPECT_EQ(show(Stage::kStartTls, "220 2.0.0 Ready\r\n"), "proceed");
  EXPECT_EQ(show(Stage::kStartTls, "454 4.7.0 TLS not available\r\n"),
            "starttls-refused");
  EXPECT_EQ(show(Stage::kStartTls, "502 5.5.1 no\r\n"), "starttls-refused");
  EXPECT_EQ(show(Stage::kStartTls, "421 bye\r\n"), "site");
  EXPECT_EQ(show(Stage::kHelo, "550 no\r\n"), "site");
  EXPECT_EQ(show(Stage::kMail, "250 ok\r\n"), "proceed");
  EXPECT_EQ(show(Stage::kMail, "451 later\r\n"), "transaction deferred");
  EXPECT_EQ(show(Stage::kMail, "553 5.7.1 no\r\n"), "transaction bounced");
  EXPECT_EQ(show(Stage::kData, "354 go\r\n"), "proceed");
  EXPECT_EQ(show(Stage::kData, "250 what\r\n"), "site");
  EXPECT_EQ(show(Stage::kData, "554 5.5.1 no valid recipients\r\n"),
            "transaction bounced");
  EXPECT_EQ(show(Stage::kEndOfData, "250 2.0.0 queued\r\n"), "proceed");
  EXPECT_EQ(show(Stage::kEndOfData, "451 4.3.0 later\r\n"),
            "transaction deferred");
  // 552 after the data: too big, permanent, never "too many recipients".
  EXPECT_EQ(show(Stage::kEndOfData, "552 5.3.4 Message too big\r\n"),
            "transaction bounced");
  EXPECT_EQ(show(Stage::kEndOfData, "421 4.4.2 bye\r\n"), "site");
  EXPECT_EQ(show(Stage::kBdat, "250 2.0.0 chunk\r\n"), "proceed");
  EXPECT_EQ(show(Stage::kBdat, "554 5.6.0 bad\r\n"), "transaction bounced");
  EXPECT_EQ(show(Stage::kRset, "250 ok\r\n"), "proceed");
  EXPECT_EQ(show(Stage::kRset, "500 what\r\n"), "site");
  EXPECT_EQ(show(Stage::kQuit, "500 what\r\n"), "proceed");
}

TEST(ReplyOutcome, DiagnosticAndStatus) {
  const Outcome o = ReplyOutcome(Verdict::kFailed, Stage::kRcpt,
                                 R("550 5.1.1 <x@y>: user unknown\r\n"),
                                 "mx.example.net[127.0.0.1]:2600");
  EXPECT_EQ(o.verdict, Verdict::kFailed);
  EXPECT_EQ(o.status.ToString(), "5.1.1");
  EXPECT_EQ(o.diagnostic, "smtp; 550 5.1.1 <x@y>: user unknown");
  EXPECT_EQ(o.remote_mta, "mx.example.net[127.0.0.1]:2600");
  EXPECT_EQ(o.detail,
            "host mx.example.net[127.0.0.1]:2600 said: 550 5.1.1 <x@y>: user "
            "unknown (in reply to RCPT TO command)");
  EXPECT_FALSE(o.possible_duplicate);
}

TEST(ReplyOutcome, DefaultStatusAndClassFollowsVerdict) {
  EXPECT_EQ(ReplyOutcome(Verdict::kFailed, Stage::kMail, R("554 no\r\n"), "m")
                .status.ToString(),
            "5.0.0");
  EXPECT_EQ(
      ReplyOutcome(Verdict::kDeferred, Stage::kMail, R("451 later\r\n"), "m")
          .status.ToString(),
      "4.0.0");
  // A 5xx that defers (site failure at the greeting): class 4.
  const Outcome greeting = ReplyOutcome(Verdict::kDeferred, Stage::kGreeting,
                                        R("554 5.7.1 go away\r\n"), "m[1]:25");
  EXPECT_EQ(greeting.status.ToString(), "4.7.1");
  EXPECT_EQ(greeting.detail,
            "host m[1]:25 refused to talk to me: 554 5.7.1 go away");
  const Outcome sent = ReplyOutcome(Verdict::kDelivered, Stage::kEndOfData,
                                    R("250 2.0.0 Ok: queued as X\r\n"), "m");
  EXPECT_EQ(sent.status.ToString(), "2.0.0");
  EXPECT_EQ(sent.detail, "250 2.0.0 Ok: queued as X");  // Postfix's sent text
}

TEST(ReplyOutcome, PeerTextIsSanitised) {
  smtp::Reply reply = R("550-5.1.1 first\r\n550 5.1.1 second\r\n");
  reply.lines[0] += "\x1b[31m\xff";
  const Outcome o = ReplyOutcome(Verdict::kFailed, Stage::kRcpt, reply, "m");
  EXPECT_EQ(o.diagnostic, "smtp; 550 5.1.1 first?[31m? second");
}

TEST(TooManyRecipientsOutcome, DeferredWithX53) {
  Outcome o = TooManyRecipientsOutcome(R("452 Too many recipients\r\n"), "m");
  EXPECT_EQ(o.verdict, Verdict::kDeferred);
  EXPECT_EQ(o.status.ToString(), "4.5.3");
  o = TooManyRecipientsOutcome(R("552 5.5.3 Too many\r\n"), "m");
  EXPECT_EQ(o.status.ToString(), "4.5.3");
  EXPECT_EQ(o.diagnostic, "smtp; 552 5.5.3 Too many");
}

TEST(TroubleOutcome, Kinds) {
  Outcome o = TroubleOutcome(Trouble::kConnectFailed,
                             "connect to m[1]:25: Connection refused", "m");
  EXPECT_EQ(o.verdict, Verdict::kDeferred);
  EXPECT_EQ(o.status.ToString(), "4.4.1");
  EXPECT_EQ(o.diagnostic, "x-petrel; connect to m[1]:25: Connection refused");
  EXPECT_EQ(o.remote_mta, "");
  o = TroubleOutcome(Trouble::kLostConnection,
                     "lost connection with m while sending end of data", "m",
                     true);
  EXPECT_TRUE(o.possible_duplicate);
  EXPECT_EQ(o.status.ToString(), "4.4.2");
  EXPECT_EQ(o.detail,
            "lost connection with m while sending end of data -- message may "
            "be sent more than once");
  o = TroubleOutcome(Trouble::kMalformedReply, "malformed reply", "m", true);
  EXPECT_EQ(o.verdict, Verdict::kDeferred);
  EXPECT_TRUE(o.possible_duplicate);
  o = TroubleOutcome(Trouble::kMessageTooBig, "too big", "m", true);
  EXPECT_EQ(o.verdict, Verdict::kFailed);
  EXPECT_EQ(o.status.ToString(), "5.3.4");
  EXPECT_FALSE(o.possible_duplicate);
  EXPECT_EQ(
      TroubleOutcome(Trouble::kSmtputf8Required, "x", "m").status.ToString(),
      "5.6.7");
  EXPECT_EQ(TroubleOutcome(Trouble::kTimeout, "t\r\nx", "m").detail, "t  x");
}

}  // namespace
}  // namespace petrel::delivery
