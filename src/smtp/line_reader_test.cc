#include "smtp/line_reader.h"

#include <gtest/gtest.h>

#include <string>

#include "smtp/split_test_util.h"

namespace petrel::smtp {
namespace {

using testing::Chunks;
using testing::Escape;
using testing::ExpectSameForEverySplit;

// Each line with the stream offset just past it; then whether part of a
// line is still buffered.
std::string LinesWithLimit(const Chunks& chunks, std::size_t max_line_octets) {
  LineReader reader(max_line_octets);
  std::string out;
  std::size_t offset = 0;
  for (std::string_view chunk : chunks) {
    while (!chunk.empty()) {
      const std::size_t n = reader.Feed(chunk);
      if (n == 0) return out + "stuck";  // must never happen: we always Take
      offset += n;
      chunk.remove_prefix(n);
      if (auto line = reader.Take()) {
        out += std::to_string(offset) + ":";
        out += line->kind == CommandLine::Kind::kTooLong
                   ? "<too long>"
                   : "[" + Escape(line->text) + "]";
        out += "\n";
      }
    }
  }
  return out + (reader.HasPartialLine() ? "partial" : "clean");
}

std::string Lines(const Chunks& chunks) {
  return LinesWithLimit(chunks, kMaxCommandLineOctets);
}

TEST(LineReader, OneLineAtATime) {
  LineReader reader;
  const std::string_view input = "EHLO a\r\nMAIL FROM:<>\r\nDATA\r\nbody";
  EXPECT_EQ(reader.Feed(input), 8u);
  EXPECT_EQ(reader.Feed(input.substr(8)), 0u);  // until the line is taken
  auto line = reader.Take();
  ASSERT_TRUE(line.has_value());
  EXPECT_EQ(line->kind, CommandLine::Kind::kLine);
  EXPECT_EQ(line->text, "EHLO a");
  EXPECT_FALSE(reader.Take().has_value());
  EXPECT_EQ(reader.Feed(input.substr(8)), 14u);
  EXPECT_EQ(reader.Take()->text, "MAIL FROM:<>");
  EXPECT_EQ(reader.Feed(input.substr(22)), 6u);
  EXPECT_EQ(reader.Take()->text, "DATA");
  // The caller switches to message data here: "body" is not consumed.
  EXPECT_FALSE(reader.HasPartialLine());
}

TEST(LineReader, LineEnds) {
  EXPECT_EQ(Lines({"NOOP\r\n"}), "6:[NOOP]\nclean");
  EXPECT_EQ(Lines({"NOOP\n"}), "5:[NOOP]\nclean");  // bare LF ends a line
  // A bare CR does not; it stays in the text for ParseCommand to refuse.
  EXPECT_EQ(Lines({"NO\rOP\r\n"}), "7:[NO\\rOP]\nclean");
  EXPECT_EQ(Lines({"NOOP\r\r\n"}), "7:[NOOP\\r]\nclean");
  EXPECT_EQ(Lines({"\r\n\n"}), "2:[]\n3:[]\nclean");
  EXPECT_EQ(Lines({"QUIT"}), "partial");
  EXPECT_EQ(Lines({""}), "clean");
}

TEST(LineReader, CommandLineOf512OctetsAndOnePast) {
  // RFC 5321 4.5.3.1.4: 512 octets including the CRLF.
  const std::string at = "NOOP " + std::string(505, 'x') + "\r\n";
  const std::string past = "NOOP " + std::string(506, 'x') + "\r\n";
  ASSERT_EQ(at.size(), 512u);
  ASSERT_EQ(past.size(), 513u);
  EXPECT_EQ(Lines({at}), "512:[NOOP " + std::string(505, 'x') + "]\nclean");
  // The long line is read to its end, reported once, and the next line is
  // read as usual (interface.md: 500 5.5.2, the session stays in step).
  EXPECT_EQ(ExpectSameForEverySplit(past + "QUIT\r\n", Lines, 0),
            "513:<too long>\n519:[QUIT]\nclean");
  EXPECT_EQ(ExpectSameForEverySplit(at + "QUIT\r\n", Lines, 0),
            "512:[NOOP " + std::string(505, 'x') + "]\n518:[QUIT]\nclean");
}

TEST(LineReader, BareLfLineCountsOneOctetForItsEnd) {
  const std::string at = std::string(511, 'x') + "\n";
  const std::string past = std::string(512, 'x') + "\n";
  EXPECT_EQ(Lines({at}), "512:[" + std::string(511, 'x') + "]\nclean");
  EXPECT_EQ(Lines({past}), "513:<too long>\nclean");
}

TEST(LineReader, EndlessLineStaysBoundedAndIsReportedOnce) {
  LineReader reader;
  const std::string junk(1 << 16, 'x');
  for (int i = 0; i < 64; ++i) {
    EXPECT_EQ(reader.Feed(junk), junk.size());
    EXPECT_FALSE(reader.Take().has_value());
    EXPECT_TRUE(reader.HasPartialLine());
  }
  EXPECT_EQ(reader.Feed("xx\r\nRSET\r\n"), 4u);
  EXPECT_EQ(reader.Take()->kind, CommandLine::Kind::kTooLong);
  EXPECT_FALSE(reader.Take().has_value());
  EXPECT_EQ(reader.Feed("RSET\r\n"), 6u);
  EXPECT_EQ(reader.Take()->text, "RSET");
  EXPECT_FALSE(reader.HasPartialLine());
}

TEST(LineReader, LongLineDiscardedWhenItCannotFitAnyMore) {
  // 512 octets without a line end can only become 513 or more.
  LineReader reader;
  EXPECT_EQ(reader.Feed(std::string(511, 'x')), 511u);
  EXPECT_TRUE(reader.HasPartialLine());
  EXPECT_EQ(reader.Feed("\n"), 1u);
  EXPECT_EQ(reader.Take()->text.size(), 511u);
  EXPECT_EQ(reader.Feed(std::string(512, 'x')), 512u);
  EXPECT_EQ(reader.Feed("\n"), 1u);
  EXPECT_EQ(reader.Take()->kind, CommandLine::Kind::kTooLong);
}

TEST(LineReader, CustomLimit) {
  auto small = [](const Chunks& chunks) { return LinesWithLimit(chunks, 6); };
  EXPECT_EQ(ExpectSameForEverySplit("abcd\r\nabcde\r\nab\n", small),
            "6:[abcd]\n13:<too long>\n16:[ab]\nclean");
}

TEST(LineReader, SameForEverySplit) {
  for (std::string_view input :
       {"EHLO client.example\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n",
        "a\nb\r\n\r\n\rc\r\r\nd", "\n\n\n", "NOOP"}) {
    ExpectSameForEverySplit(input, Lines);
  }
}

}  // namespace
}  // namespace petrel::smtp
