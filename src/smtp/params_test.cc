#include "smtp/params.h"

#include <gtest/gtest.h>

#include <string>

#include "smtp/limits.h"
#include "smtp/split_test_util.h"

namespace petrel::smtp {
namespace {

using testing::ReplyLine;

OfferedExtensions All() { return OfferedExtensions{}; }

std::string MailError(std::string_view arg,
                      const OfferedExtensions& offered = All()) {
  auto mail = ParseMailArgument(arg, offered);
  return mail ? "accepted" : ReplyLine(mail.error());
}

std::string RcptError(std::string_view arg, bool utf8 = false,
                      const OfferedExtensions& offered = All()) {
  auto rcpt = ParseRcptArgument(arg, offered, utf8);
  return rcpt ? "accepted" : ReplyLine(rcpt.error());
}

MailParams MailOk(std::string_view arg,
                  const OfferedExtensions& offered = All()) {
  auto mail = ParseMailArgument(arg, offered);
  EXPECT_TRUE(mail.has_value())
      << arg << ": " << (mail ? "" : ReplyLine(mail.error()));
  return mail ? mail->params : MailParams{};
}

RcptParams RcptOk(std::string_view arg) {
  auto rcpt = ParseRcptArgument(arg, All(), false);
  EXPECT_TRUE(rcpt.has_value())
      << arg << ": " << (rcpt ? "" : ReplyLine(rcpt.error()));
  return rcpt ? rcpt->params : RcptParams{};
}

TEST(ParseMailArgument, Paths) {
  auto mail = ParseMailArgument("FROM:<a@b.example>", All());
  ASSERT_TRUE(mail.has_value());
  EXPECT_EQ(mail->reverse_path->ToString(), "a@b.example");
  EXPECT_FALSE(mail->params.size.has_value());
  EXPECT_EQ(mail->params.body, Body::k7Bit);
  EXPECT_FALSE(ParseMailArgument("FROM:<>", All())->reverse_path.has_value());
  EXPECT_TRUE(ParseMailArgument("from:<a@b.example>", All()));
  EXPECT_TRUE(ParseMailArgument("From: <a@b.example>", All()));  // Postfix too
  EXPECT_TRUE(ParseMailArgument("FROM:<a@b.example> ", All()));
  EXPECT_EQ(MailError("FROM:<a@b.example>x"),
            "501 5.1.7 Bad sender address syntax");
  EXPECT_EQ(MailError("FROM:a@b.example"),
            "501 5.1.7 Bad sender address syntax");
  EXPECT_EQ(MailError("FROM:"), "501 5.1.7 Bad sender address syntax");
  EXPECT_EQ(MailError("FROM:<a@b.example"),
            "501 5.1.7 Bad sender address syntax");
  EXPECT_EQ(MailError(""), "501 5.5.4 Syntax: MAIL FROM:<address>");
  EXPECT_EQ(MailError("FROM <a@b.example>"),
            "501 5.5.4 Syntax: MAIL FROM:<address>");
  EXPECT_EQ(MailError("TO:<a@b.example>"),
            "501 5.5.4 Syntax: MAIL FROM:<address>");
  EXPECT_EQ(MailError(" FROM:<a@b.example>"),
            "501 5.5.4 Syntax: MAIL FROM:<address>");
}

TEST(ParseMailArgument, QuotedPathWithSpacesAndBrackets) {
  auto mail = ParseMailArgument("FROM:<\"a> b\"@x.example> SIZE=5", All());
  ASSERT_TRUE(mail.has_value());
  EXPECT_EQ(mail->reverse_path->local_part, "\"a> b\"");
  EXPECT_EQ(mail->params.size, 5u);
}

TEST(ParseMailArgument, PathLimits) {
  // 257 octets; local-part and domain each within their own limits.
  const std::string past = "<" + std::string(64, 'l') + "@" +
                           std::string(63, 'b') + "." + std::string(63, 'c') +
                           "." + std::string(62, 'd') + ">";
  ASSERT_EQ(past.size(), kMaxPathOctets + 1);
  EXPECT_EQ(MailError("FROM:" + past), "501 5.1.7 Path too long");
  EXPECT_EQ(RcptError("TO:" + past), "501 5.1.3 Path too long");
  const std::string local(65, 'l');
  EXPECT_EQ(MailError("FROM:<" + local + "@x.example>"),
            "501 5.1.7 Local part too long");
  EXPECT_EQ(RcptError("TO:<" + local + "@x.example>"),
            "501 5.1.3 Local part too long");
}

TEST(ParseMailArgument, Size) {
  EXPECT_EQ(MailOk("FROM:<> SIZE=100").size, 100u);
  EXPECT_EQ(MailOk("FROM:<> size=0").size, 0u);
  OfferedExtensions limited;
  limited.max_message_size = 1000;
  EXPECT_EQ(MailOk("FROM:<> SIZE=1000", limited).size, 1000u);
  EXPECT_EQ(MailError("FROM:<> SIZE=1001", limited),
            "552 5.3.4 Message size exceeds fixed maximum message size");
  // RFC 1870: up to 20 digits; past 2^64 it saturates (over any limit).
  EXPECT_EQ(MailOk("FROM:<> SIZE=99999999999999999999").size, UINT64_MAX);
  EXPECT_EQ(MailError("FROM:<> SIZE=99999999999999999999", limited),
            "552 5.3.4 Message size exceeds fixed maximum message size");
  for (std::string_view bad :
       {"FROM:<> SIZE", "FROM:<> SIZE=abc", "FROM:<> SIZE=-1",
        "FROM:<> SIZE=+1", "FROM:<> SIZE=1k", "FROM:<> SIZE=1.5",
        "FROM:<> SIZE=123456789012345678901"}) {
    EXPECT_EQ(MailError(bad), "501 5.5.4 Bad SIZE parameter") << bad;
  }
}

TEST(ParseMailArgument, Body) {
  EXPECT_EQ(MailOk("FROM:<> BODY=8BITMIME").body, Body::k8BitMime);
  EXPECT_EQ(MailOk("FROM:<> body=8bitmime").body, Body::k8BitMime);
  EXPECT_EQ(MailOk("FROM:<> BODY=7BIT").body, Body::k7Bit);
  EXPECT_EQ(MailError("FROM:<> BODY=BINARYMIME"),
            "555 5.5.4 BODY=BINARYMIME is not supported");
  EXPECT_EQ(MailError("FROM:<> BODY=8BIT"), "501 5.5.4 Bad BODY parameter");
  EXPECT_EQ(MailError("FROM:<> BODY"), "501 5.5.4 Bad BODY parameter");
}

TEST(ParseMailArgument, Smtputf8) {
  const std::string utf8_path =
      "FROM:<j\xC3\xB6rg@b\xC3\xBC"
      "cher.example>";
  EXPECT_TRUE(MailOk(utf8_path + " SMTPUTF8").smtputf8);
  EXPECT_TRUE(MailOk("FROM:<a@b.example> smtputf8").smtputf8);
  EXPECT_EQ(MailError(utf8_path),
            "553 5.6.7 SMTPUTF8 is required for a non-ASCII address");
  EXPECT_EQ(MailError("FROM:<> SMTPUTF8=yes"),
            "501 5.5.4 SMTPUTF8 takes no value");
  OfferedExtensions no_utf8;
  no_utf8.smtputf8 = false;
  EXPECT_EQ(MailError(utf8_path + " SMTPUTF8", no_utf8),
            "555 5.5.4 Unsupported parameter: SMTPUTF8");
}

TEST(ParseMailArgument, AuthOnlyWhenOffered) {  // RFC 4954 5
  OfferedExtensions with_auth;
  with_auth.auth = true;
  EXPECT_EQ(MailOk("FROM:<a@b.example> AUTH=a+2Bx@b.example", with_auth).auth,
            "a+x@b.example");
  EXPECT_EQ(MailOk("FROM:<a@b.example> AUTH=<>", with_auth).auth, "<>");
  EXPECT_EQ(MailError("FROM:<> AUTH=<>"),
            "555 5.5.4 Unsupported parameter: AUTH");
  EXPECT_EQ(MailError("FROM:<> AUTH=a+0D+0A", with_auth),
            "501 5.5.4 Bad AUTH parameter");
  EXPECT_EQ(MailError("FROM:<> AUTH=<> AUTH=<>", with_auth),
            "501 5.5.4 Duplicate AUTH parameter");
}

TEST(ParseMailArgument, DsnRetAndEnvid) {
  EXPECT_EQ(MailOk("FROM:<> RET=FULL").ret, DsnRet::kFull);
  EXPECT_EQ(MailOk("FROM:<> ret=hdrs").ret, DsnRet::kHeaders);
  EXPECT_EQ(MailOk("FROM:<>").ret, DsnRet::kUnspecified);
  EXPECT_EQ(MailError("FROM:<> RET=BODY"), "501 5.5.4 Bad RET parameter");
  EXPECT_EQ(MailOk("FROM:<> ENVID=QQ314159").envid, "QQ314159");
  EXPECT_EQ(MailOk("FROM:<> ENVID=a+2Bb+20c").envid, "a+b c");
  const std::string at(100, 'e'), past(101, 'e');
  EXPECT_EQ(MailOk("FROM:<> ENVID=" + at).envid, at);
  EXPECT_EQ(MailError("FROM:<> ENVID=" + past),
            "501 5.5.4 Bad ENVID parameter");
  for (std::string_view bad :
       {"FROM:<> ENVID", "FROM:<> ENVID=a+2", "FROM:<> ENVID=a+2b",
        "FROM:<> ENVID=a+GG", "FROM:<> ENVID=a+0D+0A", "FROM:<> ENVID=+00",
        "FROM:<> ENVID=+C3+A9"}) {
    EXPECT_EQ(MailError(bad), "501 5.5.4 Bad ENVID parameter") << bad;
  }
  // esmtp-value = 1*(%d33-60 / %d62-126): never empty, never '='.
  for (std::string_view bad : {"FROM:<> ENVID=a=b", "FROM:<> ENVID=",
                               "FROM:<> SIZE=", "FROM:<> BODY="}) {
    EXPECT_EQ(MailError(bad), "501 5.5.4 Syntax error in parameters") << bad;
  }
}

TEST(ParseMailArgument, Duplicates) {
  for (std::string_view dup :
       {"FROM:<> SIZE=1 SIZE=2", "FROM:<> SIZE=1 size=1",
        "FROM:<> BODY=7BIT BODY=7BIT", "FROM:<> SMTPUTF8 SMTPUTF8",
        "FROM:<> RET=FULL RET=HDRS", "FROM:<> ENVID=a ENVID=b"}) {
    EXPECT_EQ(MailError(dup).substr(0, 9), "501 5.5.4") << dup;
    EXPECT_NE(MailError(dup).find("Duplicate"), std::string::npos) << dup;
  }
}

TEST(ParseMailArgument, UnknownAndNotOffered) {
  EXPECT_EQ(MailError("FROM:<> FOO=bar"),
            "555 5.5.4 Unsupported parameter: FOO");
  EXPECT_EQ(MailError("FROM:<> xforward"),
            "555 5.5.4 Unsupported parameter: XFORWARD");
  EXPECT_EQ(MailError("FROM:<> NOTIFY=NEVER"),
            "555 5.5.4 Unsupported parameter: NOTIFY");
  EXPECT_EQ(MailError("FROM:<> " + std::string(400, 'K')),
            "555 5.5.4 Unsupported parameter: " + std::string(32, 'K'));
  OfferedExtensions none;
  none.size = none.eight_bit_mime = none.smtputf8 = none.dsn = false;
  EXPECT_EQ(MailError("FROM:<> SIZE=1", none),
            "555 5.5.4 Unsupported parameter: SIZE");
  EXPECT_EQ(MailError("FROM:<> BODY=8BITMIME", none),
            "555 5.5.4 Unsupported parameter: BODY");
  EXPECT_EQ(MailError("FROM:<> RET=FULL", none),
            "555 5.5.4 Unsupported parameter: RET");
  EXPECT_EQ(MailError("FROM:<> ENVID=x", none),
            "555 5.5.4 Unsupported parameter: ENVID");
}

TEST(ParseMailArgument, NoParametersAfterHelo) {
  OfferedExtensions helo;
  helo.esmtp = false;
  EXPECT_EQ(MailError("FROM:<a@b.example>", helo), "accepted");
  EXPECT_EQ(MailError("FROM:<a@b.example> ", helo), "accepted");
  EXPECT_EQ(MailError("FROM:<a@b.example> SIZE=1", helo),
            "555 5.5.4 Parameters not supported after HELO");
  EXPECT_EQ(RcptError("TO:<a@b.example> NOTIFY=NEVER", false, helo),
            "555 5.5.4 Parameters not supported after HELO");
}

TEST(ParseMailArgument, ParameterSyntax) {
  for (std::string_view bad :
       {"FROM:<> -SIZE=1", "FROM:<> SI_ZE=1", "FROM:<> =1", "FROM:<> SIZE==1",
        "FROM:<> SIZE=1\t", "FROM:<> S\xC3\xA9=1"}) {
    EXPECT_EQ(MailError(bad), "501 5.5.4 Syntax error in parameters") << bad;
  }
  // Runs of spaces between parameters are tolerated.
  const MailParams p = MailOk("FROM:<>  SIZE=10   BODY=8BITMIME  ");
  EXPECT_EQ(p.size, 10u);
  EXPECT_EQ(p.body, Body::k8BitMime);
}

TEST(ParseRcptArgument, Paths) {
  auto rcpt = ParseRcptArgument("TO:<a@b.example>", All(), false);
  ASSERT_TRUE(rcpt.has_value());
  EXPECT_EQ(rcpt->forward_path.ToString(), "a@b.example");
  EXPECT_EQ(rcpt->params.notify, kNotifyUnspecified);
  auto postmaster = ParseRcptArgument("to:<Postmaster>", All(), false);
  ASSERT_TRUE(postmaster.has_value());
  EXPECT_EQ(postmaster->forward_path.domain, "");
  EXPECT_EQ(RcptError("TO:<>"), "501 5.1.3 Bad recipient address syntax");
  EXPECT_EQ(RcptError("TO: <a@b.example>"), "accepted");
  EXPECT_EQ(RcptError("TO:a@b.example"),
            "501 5.1.3 Bad recipient address syntax");
  EXPECT_EQ(RcptError("FROM:<a@b.example>"),
            "501 5.5.4 Syntax: RCPT TO:<address>");
  const std::string utf8 = "TO:<j\xC3\xB6rg@x.example>";
  EXPECT_EQ(RcptError(utf8, false),
            "553 5.6.7 SMTPUTF8 is required for a non-ASCII address");
  EXPECT_EQ(RcptError(utf8, true), "accepted");
}

TEST(ParseRcptArgument, Notify) {
  EXPECT_EQ(RcptOk("TO:<a@b.example> NOTIFY=NEVER").notify, kNotifyNever);
  EXPECT_EQ(RcptOk("TO:<a@b.example> NOTIFY=SUCCESS").notify, kNotifySuccess);
  EXPECT_EQ(RcptOk("TO:<a@b.example> NOTIFY=SUCCESS,FAILURE,DELAY").notify,
            kNotifySuccess | kNotifyFailure | kNotifyDelay);
  EXPECT_EQ(RcptOk("TO:<a@b.example> notify=delay,failure").notify,
            kNotifyFailure | kNotifyDelay);
  for (std::string_view bad :
       {"TO:<a@b.example> NOTIFY", "TO:<a@b.example> NOTIFY=NEVER,SUCCESS",
        "TO:<a@b.example> NOTIFY=FAILURE,NEVER",
        "TO:<a@b.example> NOTIFY=SUCCESS,SUCCESS",
        "TO:<a@b.example> NOTIFY=SUCCESS,", "TO:<a@b.example> NOTIFY=,DELAY",
        "TO:<a@b.example> NOTIFY=ALWAYS",
        "TO:<a@b.example> NOTIFY=SUCCESS;DELAY"}) {
    EXPECT_EQ(RcptError(bad).substr(0, 30), "501 5.5.4 Bad NOTIFY parameter")
        << bad;
  }
  EXPECT_EQ(RcptError("TO:<a@b.example> NOTIFY=NEVER NOTIFY=NEVER"),
            "501 5.5.4 Duplicate NOTIFY parameter");
}

TEST(ParseRcptArgument, Orcpt) {
  const RcptParams p = RcptOk("TO:<a@b.example> ORCPT=rfc822;a+40b.example");
  EXPECT_EQ(p.orcpt_type, "rfc822");
  EXPECT_EQ(p.orcpt_address, "a@b.example");
  EXPECT_EQ(RcptOk("TO:<a@b.example> ORCPT=RFC822;x@y").orcpt_type, "rfc822");
  const std::string at(500 - 7, 'o'), past(501 - 7, 'o');
  EXPECT_EQ(RcptOk("TO:<a@b.example> ORCPT=rfc822;" + at).orcpt_address, at);
  EXPECT_EQ(RcptError("TO:<a@b.example> ORCPT=rfc822;" + past),
            "501 5.5.4 Bad ORCPT parameter");
  for (std::string_view bad :
       {"TO:<a@b.example> ORCPT", "TO:<a@b.example> ORCPT=rfc822",
        "TO:<a@b.example> ORCPT=;a@b", "TO:<a@b.example> ORCPT=rfc822;",
        "TO:<a@b.example> ORCPT=rfc822;a+4",
        "TO:<a@b.example> ORCPT=rfc822;+0A", "TO:<a@b.example> ORCPT=rf.c;a",
        "TO:<a@b.example> ORCPT=rfc822;a+zz"}) {
    EXPECT_EQ(RcptError(bad), "501 5.5.4 Bad ORCPT parameter") << bad;
  }
  EXPECT_EQ(RcptError("TO:<a@b.example> ORCPT=rfc822;a ORCPT=rfc822;b"),
            "501 5.5.4 Duplicate ORCPT parameter");
  // RFC 6533 utf-8-addr-unitext only with SMTPUTF8.
  EXPECT_EQ(RcptError("TO:<a@b.example> ORCPT=utf-8;j\xC3\xB6rg@x", true),
            "accepted");
  EXPECT_EQ(RcptError("TO:<a@b.example> ORCPT=utf-8;j\xC3\xB6rg@x", false),
            "501 5.5.4 Syntax error in parameters");
}

TEST(ParseRcptArgument, UnknownAndNotOffered) {
  EXPECT_EQ(RcptError("TO:<a@b.example> SIZE=1"),
            "555 5.5.4 Unsupported parameter: SIZE");
  OfferedExtensions no_dsn;
  no_dsn.dsn = false;
  EXPECT_EQ(RcptError("TO:<a@b.example> NOTIFY=NEVER", false, no_dsn),
            "555 5.5.4 Unsupported parameter: NOTIFY");
  EXPECT_EQ(RcptError("TO:<a@b.example> ORCPT=rfc822;a", false, no_dsn),
            "555 5.5.4 Unsupported parameter: ORCPT");
}

TEST(Xtext, DecodeAndEncode) {
  EXPECT_EQ(DecodeXtext(""), "");
  EXPECT_EQ(DecodeXtext("abc"), "abc");
  EXPECT_EQ(DecodeXtext("a+2Bb+3Dc"), "a+b=c");
  EXPECT_EQ(DecodeXtext("+00+FF"), std::string("\0\xFF", 2));
  for (std::string_view bad :
       {"+", "+4", "+4G", "+4a", "a b", "a=b", "\xC3\xA9", "a\tb", "+ 41"}) {
    EXPECT_FALSE(DecodeXtext(bad).has_value()) << bad;
  }
  EXPECT_EQ(EncodeXtext("a+b=c d"), "a+2Bb+3Dc+20d");
  std::string all;
  for (int c = 0; c < 256; ++c) all += static_cast<char>(c);
  EXPECT_EQ(DecodeXtext(EncodeXtext(all)), all);
}

}  // namespace
}  // namespace petrel::smtp
