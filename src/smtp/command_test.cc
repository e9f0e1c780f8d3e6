#include "smtp/command.h"

#include <gtest/gtest.h>

#include <string>

#include "smtp/split_test_util.h"

namespace petrel::smtp {
namespace {

using testing::Escape;
using testing::ReplyLine;

std::string Refusal(std::string_view line) {
  auto command = ParseCommand(line);
  return command ? "accepted" : ReplyLine(command.error());
}

TEST(ParseCommand, EveryVerbAnyCase) {
  const std::pair<std::string_view, Verb> verbs[] = {
      {"EHLO", Verb::kEhlo},         {"HELO", Verb::kHelo},
      {"MAIL", Verb::kMail},         {"RCPT", Verb::kRcpt},
      {"DATA", Verb::kData},         {"BDAT", Verb::kBdat},
      {"RSET", Verb::kRset},         {"NOOP", Verb::kNoop},
      {"QUIT", Verb::kQuit},         {"VRFY", Verb::kVrfy},
      {"EXPN", Verb::kExpn},         {"HELP", Verb::kHelp},
      {"STARTTLS", Verb::kStartTls}, {"AUTH", Verb::kAuth},
  };
  for (const auto& [name, verb] : verbs) {
    EXPECT_EQ(VerbName(verb), name);
    std::string lower(name);
    for (char& c : lower) c = static_cast<char>(c - 'A' + 'a');
    for (const std::string& spelling : {std::string(name), lower}) {
      auto command = ParseCommand(spelling);
      ASSERT_TRUE(command.has_value()) << spelling;
      EXPECT_EQ(command->verb, verb);
      EXPECT_EQ(command->argument, "");
    }
  }
  EXPECT_EQ(ParseCommand("MaIl FROM:<>")->verb, Verb::kMail);
}

TEST(ParseCommand, ArgumentIsVerbatimAfterOneSpace) {
  EXPECT_EQ(ParseCommand("MAIL FROM:<a@b> SIZE=1")->argument,
            "FROM:<a@b> SIZE=1");
  EXPECT_EQ(ParseCommand("MAIL  FROM:<>")->argument, " FROM:<>");
  EXPECT_EQ(ParseCommand("NOOP hello\tworld ")->argument, "hello\tworld ");
  EXPECT_EQ(ParseCommand("DATA ")->argument, "");
  EXPECT_EQ(ParseCommand("EHLO \xC3\xA9")->argument, "\xC3\xA9");
}

TEST(ParseCommand, RefusesControlCharacters) {
  // Anything from a bare CR or NUL to ESC and DEL, anywhere; TAB is allowed.
  for (char c = 0; c < 0x20; ++c) {
    if (c == '\t') continue;
    for (const std::string& line :
         {std::string("NOOP x") + c, std::string(1, c) + "NOOP",
          std::string("NO") + c + "OP"}) {
      EXPECT_EQ(Refusal(line), "500 5.5.2 Invalid character") << Escape(line);
    }
  }
  EXPECT_EQ(Refusal("NOOP \x7F"), "500 5.5.2 Invalid character");
  EXPECT_EQ(Refusal("MAIL FROM:<a@b>\r"), "500 5.5.2 Invalid character");
  EXPECT_EQ(Refusal(std::string_view("RCPT TO:<a@b>\0x", 15)),
            "500 5.5.2 Invalid character");
  EXPECT_EQ(Refusal("NOOP a\tb"), "accepted");
}

TEST(ParseCommand, RefusesUnknownVerbs) {
  for (std::string_view line :
       {"", " ", "FOO", "MAILFROM:<>", "MAILX FROM:<>", " MAIL FROM:<>",
        "M\xC3\x84IL", "NOOP\tx", "XCLIENT ADDR=1.2.3.4", "STARTTL", "TURN"}) {
    EXPECT_EQ(Refusal(line), "500 5.5.1 Command unrecognized") << Escape(line);
  }
}

TEST(TakesNoArgument, DataRsetQuitStartTls) {
  EXPECT_TRUE(TakesNoArgument(Verb::kData));
  EXPECT_TRUE(TakesNoArgument(Verb::kRset));
  EXPECT_TRUE(TakesNoArgument(Verb::kQuit));
  EXPECT_TRUE(TakesNoArgument(Verb::kStartTls));
  EXPECT_FALSE(TakesNoArgument(Verb::kNoop));
  EXPECT_FALSE(TakesNoArgument(Verb::kHelp));
  EXPECT_FALSE(TakesNoArgument(Verb::kVrfy));
  EXPECT_FALSE(TakesNoArgument(Verb::kMail));
}

TEST(ParseHeloArgument, DomainsAndAddressLiterals) {
  for (std::string_view ok :
       {"mx.example.org", "localhost", "a", "xn--bcher-kva.example",
        "[192.0.2.1]", "[IPv6:2001:db8::1]", "[IPv6:::1]", "my_host.example",
        "MX1.EXAMPLE.ORG"}) {
    auto arg = ParseHeloArgument(ok);
    ASSERT_TRUE(arg.has_value()) << ok;
    EXPECT_EQ(*arg, ok);
  }
  for (std::string_view bad :
       {"", " ", "a b", "mx.example.org ", "a..b", ".a", "a.", "-a.example",
        "a-.example", "[1.2.3]", "[192.0.2.1", "192.0.2.1]", "a@b",
        "\xC3\xA9.example", "[IPv6:1::2::3]"}) {
    auto arg = ParseHeloArgument(bad);
    ASSERT_FALSE(arg.has_value()) << Escape(bad);
    EXPECT_EQ(ReplyLine(arg.error()), "501 5.5.4 Syntax: EHLO hostname");
  }
}

TEST(ParseBdatArgument, SizeAndLast) {
  auto ok = [](std::string_view arg) {
    auto parsed = ParseBdatArgument(arg);
    EXPECT_TRUE(parsed.has_value()) << arg;
    return parsed.value_or(BdatArgument{});
  };
  EXPECT_EQ(ok("0").size, 0u);
  EXPECT_FALSE(ok("0").last);
  EXPECT_EQ(ok("10 LAST").size, 10u);
  EXPECT_TRUE(ok("10 LAST").last);
  EXPECT_TRUE(ok("0 last").last);
  EXPECT_EQ(ok("007").size, 7u);
  // 19 digits: the most we take, still below 2^64.
  EXPECT_EQ(ok("9999999999999999999").size, 9999999999999999999u);
}

TEST(ParseBdatArgument, RefusesEverythingElse) {
  for (std::string_view bad :
       {"", "-1", "+1", " 10", "10 ", "10  LAST", "10 LASTX", "10 FIRST",
        "LAST", "0x10", "1e3", "10\tLAST", "18446744073709551615",
        "18446744073709551616", "99999999999999999999", "00000000000000000001",
        "123456789012345678901234567890"}) {
    auto parsed = ParseBdatArgument(bad);
    ASSERT_FALSE(parsed.has_value()) << bad;
    EXPECT_EQ(ReplyLine(parsed.error()), "501 5.5.4 Syntax: BDAT size [LAST]");
  }
}

}  // namespace
}  // namespace petrel::smtp
