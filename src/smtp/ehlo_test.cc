#include "smtp/ehlo.h"

#include <gtest/gtest.h>

#include "smtp/reply_parser.h"

namespace petrel::smtp {
namespace {

EhloExtensions Parse(std::string_view wire) {
  ReplyParser parser;
  parser.Feed(wire);
  auto reply = parser.Next();
  EXPECT_TRUE(reply.has_value() && reply->has_value());
  return ParseEhloReply(reply.has_value() && reply->has_value() ? **reply
                                                                : Reply{});
}

TEST(ParseEhloReply, TypicalServer) {
  const EhloExtensions ext = Parse(
      "250-mx.example.org Hello client.example\r\n"
      "250-PIPELINING\r\n"
      "250-SIZE 10240000\r\n"
      "250-8BITMIME\r\n"
      "250-SMTPUTF8\r\n"
      "250-CHUNKING\r\n"
      "250-STARTTLS\r\n"
      "250-DSN\r\n"
      "250-ENHANCEDSTATUSCODES\r\n"
      "250-AUTH PLAIN login\r\n"
      "250 LIMITS RCPTMAX=50 MAILMAX=10\r\n");
  EXPECT_TRUE(ext.pipelining);
  EXPECT_TRUE(ext.size);
  EXPECT_EQ(ext.size_limit, 10240000u);
  EXPECT_TRUE(ext.eight_bit_mime);
  EXPECT_TRUE(ext.smtputf8);
  EXPECT_TRUE(ext.chunking);
  EXPECT_TRUE(ext.starttls);
  EXPECT_TRUE(ext.dsn);
  EXPECT_TRUE(ext.enhanced_status_codes);
  EXPECT_EQ(ext.auth_mechanisms, (std::vector<std::string>{"PLAIN", "LOGIN"}));
  EXPECT_EQ(ext.limits_rcptmax, 50u);
  EXPECT_EQ(ext.limits_mailmax, 10u);
}

TEST(ParseEhloReply, NothingOffered) {
  const EhloExtensions ext = Parse("250 mx.example.org\r\n");
  EXPECT_FALSE(ext.pipelining);
  EXPECT_FALSE(ext.size);
  EXPECT_FALSE(ext.starttls);
  EXPECT_TRUE(ext.auth_mechanisms.empty());
  EXPECT_FALSE(ext.limits_rcptmax.has_value());
}

TEST(ParseEhloReply, FirstLineIsTheGreetingNotAKeyword) {
  EXPECT_FALSE(Parse("250-PIPELINING\r\n250 8BITMIME\r\n").pipelining);
  EXPECT_TRUE(Parse("250-PIPELINING\r\n250 8BITMIME\r\n").eight_bit_mime);
}

TEST(ParseEhloReply, CaseAndSpacing) {
  const EhloExtensions ext = Parse(
      "250-mx\r\n250-pipelining\r\n250-Size\t 100 \r\n250-  dsn\r\n"
      "250 StartTLS\r\n");
  EXPECT_TRUE(ext.pipelining);
  EXPECT_EQ(ext.size_limit, 100u);
  EXPECT_TRUE(ext.dsn);
  EXPECT_TRUE(ext.starttls);
}

TEST(ParseEhloReply, SizeWithoutAUsableNumberMeansNoLimit) {
  for (std::string_view line :
       {"250 SIZE\r\n", "250 SIZE 0\r\n", "250 SIZE abc\r\n", "250 SIZE -5\r\n",
        "250 SIZE 99999999999999999999999\r\n"}) {
    const EhloExtensions ext = Parse("250-mx\r\n" + std::string(line));
    EXPECT_TRUE(ext.size) << line;
    EXPECT_EQ(ext.size_limit, 0u) << line;
  }
  EXPECT_EQ(Parse("250-mx\r\n250 SIZE 18446744073709551615\r\n").size_limit,
            UINT64_MAX);
}

TEST(ParseEhloReply, AuthForms) {
  const EhloExtensions ext = Parse(
      "250-mx\r\n250-AUTH=LOGIN PLAIN\r\n250-AUTH PLAIN CRAM-MD5\r\n"
      "250 AUTH " +
      std::string(100, 'X') + "\r\n");
  EXPECT_EQ(ext.auth_mechanisms,
            (std::vector<std::string>{"LOGIN", "PLAIN", "CRAM-MD5"}));
  std::string many = "250-mx\r\n250 AUTH";
  for (int i = 0; i < 100; ++i) many += " M" + std::to_string(i);
  EXPECT_EQ(Parse(many + "\r\n").auth_mechanisms.size(), 32u);
}

TEST(ParseEhloReply, Limits) {
  auto limits = [](std::string_view params) {
    return Parse("250-mx\r\n250 LIMITS " + std::string(params) + "\r\n");
  };
  EXPECT_EQ(limits("RCPTMAX=100").limits_rcptmax, 100u);
  EXPECT_FALSE(limits("RCPTMAX=100").limits_mailmax.has_value());
  EXPECT_EQ(limits("rcptmax=4294967295").limits_rcptmax, 4294967295u);
  EXPECT_FALSE(limits("RCPTMAX=4294967296").limits_rcptmax.has_value());
  EXPECT_FALSE(limits("RCPTMAX=0").limits_rcptmax.has_value());
  EXPECT_FALSE(limits("RCPTMAX=").limits_rcptmax.has_value());
  EXPECT_FALSE(limits("RCPTMAX=x").limits_rcptmax.has_value());
  EXPECT_FALSE(limits("RCPTMAX").limits_rcptmax.has_value());
  EXPECT_EQ(limits("FOO=1 MAILMAX=3 BAR").limits_mailmax, 3u);
}

TEST(ParseEhloReply, UnknownKeywordsAndEmptyLinesAreIgnored) {
  const EhloExtensions ext =
      Parse("250-mx\r\n250-\r\n250-X-EXPS GSSAPI\r\n250-VRFY\r\n250 DSN\r\n");
  EXPECT_TRUE(ext.dsn);
  EXPECT_TRUE(ext.auth_mechanisms.empty());
}

}  // namespace
}  // namespace petrel::smtp
