#include "smtp/reply.h"

#include <gtest/gtest.h>

#include <string>

#include "smtp/limits.h"
#include "smtp/reply_parser.h"

namespace petrel::smtp {
namespace {

Reply Multi(int code, std::optional<EnhancedStatus> status,
            std::vector<std::string> lines) {
  Reply reply;
  reply.code = code;
  reply.status = status;
  reply.lines = std::move(lines);
  return reply;
}

TEST(ReplyFormat, OneLine) {
  EXPECT_EQ(MakeReply(250, {2, 0, 0}, "Ok").Format(), "250 2.0.0 Ok\r\n");
  EXPECT_EQ(MakeReply(220, "mx.example.org ESMTP").Format(),
            "220 mx.example.org ESMTP\r\n");
}

TEST(ReplyFormat, MultilineRepeatsCodeAndStatus) {
  EXPECT_EQ(
      Multi(250, std::nullopt, {"mx.example.org", "PIPELINING", "SIZE 10"})
          .Format(),
      "250-mx.example.org\r\n250-PIPELINING\r\n250 SIZE 10\r\n");
  // RFC 2034 4: the status on every line.
  EXPECT_EQ(
      Multi(550, EnhancedStatus{5, 1, 1}, {"No such user", "here"}).Format(),
      "550-5.1.1 No such user\r\n550 5.1.1 here\r\n");
}

TEST(ReplyFormat, EmptyText) {
  EXPECT_EQ(Multi(250, std::nullopt, {}).Format(), "250\r\n");
  EXPECT_EQ(Multi(250, std::nullopt, {""}).Format(), "250\r\n");
  EXPECT_EQ(Multi(250, EnhancedStatus{2, 0, 0}, {""}).Format(),
            "250 2.0.0\r\n");
  EXPECT_EQ(Multi(250, std::nullopt, {"", "x"}).Format(), "250-\r\n250 x\r\n");
}

TEST(ReplyFormat, LineOfExactly512OctetsIsAllowed) {
  // "250 " + text + CRLF = 512.
  const std::string text(kMaxReplyLineOctets - 6, 'x');
  EXPECT_EQ(MakeReply(250, text).Format().size(), kMaxReplyLineOctets);
}

TEST(ReplyFormatDeathTest, ChecksOurOwnMistakes) {
  const std::string text(kMaxReplyLineOctets - 5, 'x');  // 513 formatted
  EXPECT_DEATH((void)MakeReply(250, text).Format(), "CHECK failed");
  EXPECT_DEATH((void)MakeReply(250, "a\r\n250 injected").Format(),
               "CHECK failed");
  EXPECT_DEATH((void)MakeReply(250, "a\nb").Format(), "CHECK failed");
  EXPECT_DEATH((void)MakeReply(99, "x").Format(), "CHECK failed");
}

TEST(ReplyFormat, ParsesBackToTheSameReply) {
  for (const Reply& r :
       {MakeReply(250, {2, 1, 0}, "Ok"), MakeReply(354, "End data with ."),
        Multi(250, std::nullopt, {"mx", "PIPELINING", "8BITMIME"}),
        Multi(451, EnhancedStatus{4, 3, 0}, {"", "try", "later"}),
        Multi(250, EnhancedStatus{2, 0, 0}, {""})}) {
    ReplyParser parser;
    parser.Feed(r.Format());
    auto got = parser.Next();
    ASSERT_TRUE(got.has_value());
    ASSERT_TRUE(got->has_value());
    EXPECT_EQ((*got)->code, r.code);
    EXPECT_EQ((*got)->status, r.status);
    EXPECT_EQ((*got)->lines, r.lines);
  }
}

TEST(ReplyText, StatusFirstLinesJoinedSanitised) {
  EXPECT_EQ(
      Multi(550, EnhancedStatus{5, 1, 1}, {"User", "", "unknown\x01"}).Text(),
      "5.1.1 User unknown?");
  EXPECT_EQ(MakeReply(421, "bye").Text(), "bye");
}

TEST(ReplyPredicates, ByClass) {
  EXPECT_TRUE(MakeReply(250, "").IsPositive());
  EXPECT_TRUE(MakeReply(354, "").IsIntermediate());
  EXPECT_TRUE(MakeReply(452, "").IsTransient());
  EXPECT_TRUE(MakeReply(552, "").IsPermanent());
  EXPECT_FALSE(MakeReply(452, "").IsPermanent());
}

TEST(SanitizeText, ControlsAndLineEnds) {
  EXPECT_EQ(SanitizeText("a\r\nb\tc"), "a  b c");
  EXPECT_EQ(SanitizeText(std::string_view("a\0b\x1b[31m\x7f", 9)), "a?b?[31m?");
  EXPECT_EQ(SanitizeText("plain text 123 !~"), "plain text 123 !~");
}

TEST(SanitizeText, KeepsValidUtf8Only) {
  EXPECT_EQ(SanitizeText("h\xC3\xA9llo \xF0\x9F\x93\xA7"),
            "h\xC3\xA9llo \xF0\x9F\x93\xA7");
  EXPECT_EQ(SanitizeText("\xFF"), "?");
  EXPECT_EQ(SanitizeText("\xC0\x80"), "??");            // overlong NUL
  EXPECT_EQ(SanitizeText("\xED\xA0\x80"), "???");       // surrogate
  EXPECT_EQ(SanitizeText("\xF4\x90\x80\x80"), "????");  // above U+10FFFF
  EXPECT_EQ(SanitizeText("a\xE2\x82"), "a??");          // truncated
  EXPECT_EQ(SanitizeText("\x80x"), "?x");               // stray continuation
}

TEST(SanitizeText, UnicodeLineBreaksAndC1Controls) {
  EXPECT_EQ(SanitizeText("a\xC2\x85"
                         "b"),
            "a b");  // NEL
  EXPECT_EQ(SanitizeText("a\xE2\x80\xA8"
                         "b"),
            "a b");  // LINE SEPARATOR
  EXPECT_EQ(SanitizeText("a\xE2\x80\xA9"
                         "b"),
            "a b");  // PARAGRAPH SEP.
  EXPECT_EQ(SanitizeText("a\xC2\x9B"
                         "b"),
            "a?b");  // CSI
}

TEST(SanitizeText, CapsWithoutCuttingASequence) {
  EXPECT_EQ(SanitizeText("abcdef", 3), "abc");
  EXPECT_EQ(SanitizeText("a\xC3\xA9", 2), "a");
  EXPECT_EQ(SanitizeText("a\xC3\xA9", 3), "a\xC3\xA9");
  EXPECT_EQ(SanitizeText("abc", 0), "");
  EXPECT_EQ(SanitizeText(std::string(5000, 'x')).size(), 1000u);
}

}  // namespace
}  // namespace petrel::smtp
