#include "smtp/reply_parser.h"

#include <gtest/gtest.h>

#include <string>

#include "smtp/split_test_util.h"

namespace petrel::smtp {
namespace {

using testing::Chunks;
using testing::ExpectSameForEverySplit;
using testing::ReplyLine;

// Everything the parser gives for the chunks, in order; then what is left.
std::string Transcript(const Chunks& chunks) {
  ReplyParser parser;
  std::string out;
  for (std::string_view chunk : chunks) {
    parser.Feed(chunk);
    while (true) {
      auto next = parser.Next();
      if (!next)
        return out + "error: " + std::string(ReplyErrorName(next.error()));
      if (!next->has_value()) break;
      out += ReplyLine(**next) + "\n";
    }
  }
  return out + "buffered " + std::to_string(parser.Buffered());
}

// The single reply in `input`, or the error.
std::string ParseOne(std::string_view input) { return Transcript({input}); }

TEST(ReplyParser, Seed002MultilineDataReplyInPieces) {
  // Exchange 2003 misread this reply when its lines arrived apart: exactly
  // one 354 reply, whatever the pieces.
  EXPECT_EQ(
      ExpectSameForEverySplit("354-Line 1\r\n354 Send message\r\n", Transcript),
      "354 Line 1|Send message\nbuffered 0");
}

TEST(ReplyParser, Seed002WithAPauseBetweenLines) {
  ReplyParser parser;
  parser.Feed("354-Line 1\r\n");
  auto first = parser.Next();
  ASSERT_TRUE(first.has_value());
  EXPECT_FALSE(first->has_value());  // not a reply yet: wait for more
  EXPECT_EQ(parser.Buffered(), 12u);
  parser.Feed("354 Send message\r\n");
  auto second = parser.Next();
  ASSERT_TRUE(second.has_value() && second->has_value());
  EXPECT_EQ((*second)->code, 354);
  EXPECT_EQ((*second)->lines,
            (std::vector<std::string>{"Line 1", "Send message"}));
  EXPECT_EQ(parser.Buffered(), 0u);
  EXPECT_FALSE(parser.Next()->has_value());
}

TEST(ReplyParser, EveryShapeOfLine) {
  EXPECT_EQ(ParseOne("250 Ok\r\n"), "250 Ok\nbuffered 0");
  EXPECT_EQ(ParseOne("250 Ok\n"), "250 Ok\nbuffered 0");  // bare LF
  EXPECT_EQ(ParseOne("250\r\n"), "250 \nbuffered 0");     // bare code
  EXPECT_EQ(ParseOne("250-\r\n250 x\r\n"), "250 |x\nbuffered 0");
  EXPECT_EQ(ParseOne("250-a\n250-b\r\n250\n"), "250 a|b|\nbuffered 0");
  EXPECT_EQ(ParseOne("250 \r\n"), "250 \nbuffered 0");
  EXPECT_EQ(ParseOne("250  two\r\n"), "250  two\nbuffered 0");
  EXPECT_EQ(ParseOne("250 a\rb\r\n"), "250 a\\rb\nbuffered 0");
}

TEST(ReplyParser, EnhancedStatusFromTheFirstLine) {
  EXPECT_EQ(ParseOne("250 2.0.0 Ok\r\n"), "250 2.0.0 Ok\nbuffered 0");
  EXPECT_EQ(ParseOne("250 2.0.0\r\n"), "250 2.0.0 \nbuffered 0");
  EXPECT_EQ(ParseOne("550-5.1.1 No such\r\n550 5.1.1 user\r\n"),
            "550 5.1.1 No such|user\nbuffered 0");
  // A line without the status, or with another, keeps its text whole.
  EXPECT_EQ(ParseOne("550-5.1.1 a\r\n550 b\r\n"), "550 5.1.1 a|b\nbuffered 0");
  EXPECT_EQ(ParseOne("550-5.1.1 a\r\n550 5.7.1 b\r\n"),
            "550 5.1.1 a|5.7.1 b\nbuffered 0");
  // The class must agree with the code.
  EXPECT_EQ(ParseOne("250 5.0.0 x\r\n"), "250 5.0.0 x\nbuffered 0");
  auto parsed = [](std::string_view input) {
    ReplyParser p;
    p.Feed(input);
    return **p.Next();
  };
  EXPECT_FALSE(parsed("250 5.0.0 x\r\n").status.has_value());
  EXPECT_EQ(parsed("451 4.3.0 later\r\n").status, (EnhancedStatus{4, 3, 0}));
  EXPECT_FALSE(parsed("250 2.0.0x\r\n").status.has_value());
}

TEST(ReplyParser, SeveralRepliesOneAtATime) {
  ReplyParser parser;
  parser.Feed("250 a\r\n251 b\r\n252-c");
  EXPECT_EQ((*parser.Next())->code, 250);
  EXPECT_EQ(parser.Buffered(), 12u);
  EXPECT_EQ((*parser.Next())->code, 251);
  EXPECT_EQ(parser.Buffered(), 5u);
  EXPECT_FALSE(parser.Next()->has_value());
  EXPECT_EQ(parser.Buffered(), 5u);
}

TEST(ReplyParser, ManySmallRepliesInOneFeedTakeLinearTime) {
  std::string many;
  for (int i = 0; i < 100000; ++i) many += "250 ok\r\n";
  ReplyParser parser;
  parser.Feed(many + "250-");
  int count = 0;
  while (true) {
    auto next = parser.Next();
    ASSERT_TRUE(next.has_value());
    if (!next->has_value()) break;
    ++count;
  }
  EXPECT_EQ(count, 100000);
  EXPECT_EQ(parser.Buffered(), 4u);
  parser.Feed("x\r\n250 y\r\n");
  EXPECT_EQ(ReplyLine(**parser.Next()), "250 x|y");
  EXPECT_EQ(parser.Buffered(), 0u);
}

TEST(ReplyParser, BufferedSeesPlaintextInjectedAfterStartTls) {
  ReplyParser parser;
  parser.Feed("220 2.0.0 Ready to start TLS\r\n250-injected\r\n");
  EXPECT_EQ((*parser.Next())->code, 220);
  EXPECT_EQ(parser.Buffered(), 14u);
  // Still counted once a partial reply has been looked at.
  EXPECT_FALSE(parser.Next()->has_value());
  EXPECT_EQ(parser.Buffered(), 14u);
}

TEST(ReplyParser, Malformed) {
  for (const char* bad :
       {"\r\n", "25\r\n", "abc\r\n", "25a ok\r\n", "250x\r\n", "2500 ok\r\n",
        "250\tok\r\n", "199 x\r\n", "600 x\r\n", "099 x\r\n", " 250 x\r\n",
        "-250 x\r\n"}) {
    EXPECT_EQ(ParseOne(bad), "error: malformed reply") << testing::Escape(bad);
  }
}

TEST(ReplyParser, InconsistentCode) {
  EXPECT_EQ(ParseOne("250-a\r\n251 b\r\n"),
            "error: inconsistent reply code in multiline reply");
}

TEST(ReplyParser, RepliesBeforeAnErrorComeFirst) {
  EXPECT_EQ(ExpectSameForEverySplit("250 a\r\n354-b\r\n250 c\r\n", Transcript),
            "250 a\nerror: inconsistent reply code in multiline reply");
}

TEST(ReplyParser, ErrorsAreFinalUntilReset) {
  ReplyParser parser;
  parser.Feed("xyz\r\n250 ok\r\n");
  EXPECT_EQ(parser.Next().error(), ReplyError::kMalformed);
  parser.Feed("250 ok\r\n");
  EXPECT_EQ(parser.Next().error(), ReplyError::kMalformed);
  EXPECT_EQ(parser.Buffered(), 0u);
  parser.Reset();
  parser.Feed("250 ok\r\n");
  EXPECT_EQ((*parser.Next())->code, 250);
}

TEST(ReplyParser, ResetDropsAPartialReply) {
  ReplyParser parser;
  parser.Feed("250-a\r\n250-b");
  EXPECT_FALSE(parser.Next()->has_value());
  parser.Reset();
  EXPECT_EQ(parser.Buffered(), 0u);
  parser.Feed("354 go\r\n");
  EXPECT_EQ(ReplyLine(**parser.Next()), "354 go");
}

TEST(ReplyParser, ReplyLineOf512OctetsParses) {
  // RFC 5321 4.5.3.1.5: 512 octets including the code and CRLF.
  const std::string text(kMaxReplyLineOctets - 6, 'x');
  const std::string line = "250 " + text + "\r\n";
  ASSERT_EQ(line.size(), kMaxReplyLineOctets);
  ReplyParser parser;
  parser.Feed(line);
  auto reply = parser.Next();
  ASSERT_TRUE(reply.has_value() && reply->has_value());
  EXPECT_EQ((*reply)->lines, std::vector<std::string>{text});
}

TEST(ReplyParser, SafetyCapAtTheLimitAndOnePast) {
  const std::size_t cap = kReplyLineSafetyCapOctets;
  const std::string at = "250 " + std::string(cap - 6, 'x') + "\r\n";
  const std::string past = "250 " + std::string(cap - 5, 'x') + "\r\n";
  ASSERT_EQ(at.size(), cap);
  EXPECT_EQ(ParseOne(at).substr(0, 4), "250 ");
  EXPECT_EQ(ParseOne(past), "error: reply line too long");
  // With a bare LF the line end is one octet.
  EXPECT_EQ(ParseOne("250 " + std::string(cap - 5, 'x') + "\n").substr(0, 4),
            "250 ");
  EXPECT_EQ(ParseOne("250 " + std::string(cap - 4, 'x') + "\n"),
            "error: reply line too long");
}

TEST(ReplyParser, UnterminatedLineIsRefusedOnceItCannotFit) {
  const std::size_t cap = kReplyLineSafetyCapOctets;
  ReplyParser parser;
  parser.Feed("250 " + std::string(cap - 5, 'x'));  // cap - 1 octets
  EXPECT_FALSE(parser.Next()->has_value());
  parser.Feed("x");  // cap octets and no line end yet: already too long
  EXPECT_EQ(parser.Next().error(), ReplyError::kLineTooLong);
}

TEST(ReplyParser, MemoryStaysBoundedWithoutLineEnds) {
  ReplyParser parser;
  const std::string junk(1 << 16, 'x');
  for (int i = 0; i < 64; ++i) parser.Feed(junk);  // 4 MiB, never parsed
  EXPECT_LE(parser.Buffered(), kReplyLineSafetyCapOctets);
  EXPECT_EQ(parser.Next().error(), ReplyError::kLineTooLong);
}

TEST(ReplyParser, TooManyLines) {
  std::string at, past;
  for (std::size_t i = 0; i + 1 < kMaxReplyLines; ++i) at += "250-x\r\n";
  past = at + "250-x\r\n";
  at += "250 end\r\n";
  past += "250 end\r\n";
  ReplyParser parser;
  parser.Feed(at);
  auto reply = parser.Next();
  ASSERT_TRUE(reply.has_value() && reply->has_value());
  EXPECT_EQ((*reply)->lines.size(), kMaxReplyLines);
  EXPECT_EQ(ParseOne(past), "error: too many lines in reply");
}

TEST(ReplyParser, SmallCaps) {
  ReplyParser parser(/*max_line_octets=*/8, /*max_lines=*/2);
  parser.Feed("250-abc\r\n250 d\r\n");  // 9 octets: one too many
  EXPECT_EQ(parser.Next().error(), ReplyError::kLineTooLong);
  ReplyParser two(8, 2);
  two.Feed("250-ab\r\n250-c\r\n250 d\r\n");
  EXPECT_EQ(two.Next().error(), ReplyError::kTooManyLines);
}

TEST(ReplyParser, SameForEverySplit) {
  for (std::string_view input : {
           std::string_view("220 mx.example.org ESMTP\r\n"),
           std::string_view("250-mx.example.org\r\n250-PIPELINING\r\n"
                            "250-SIZE 1000\r\n250 8BITMIME\r\n"),
           std::string_view("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go\r\n"),
           std::string_view("250-a\n250 b\n550 5.1.1 c\r\n421-x"),
           std::string_view("250 ok\r\n\r\n250 never"),
           std::string_view("250 ok\r\n250-a\r\n220 b\r\n"),
           std::string_view("550-5.1.1 a\r\n550-5.1.1 b\r\n550 c\r\n"),
       }) {
    ExpectSameForEverySplit(input, Transcript);
  }
  ExpectSameForEverySplit(
      "250 ok\r\n250 " + std::string(kReplyLineSafetyCapOctets, 'y') + "\r\n",
      Transcript, /*max_three_way=*/0);
}

}  // namespace
}  // namespace petrel::smtp
