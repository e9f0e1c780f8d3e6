#include "smtp/data_reader.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <random>
#include <string>

#include "smtp/data_reference.h"
#include "smtp/split_test_util.h"

namespace petrel::smtp {
namespace {

using testing::Chunks;
using testing::Escape;
using testing::ExpectSameForEverySplit;

constexpr std::uint64_t kNoLimit = std::numeric_limits<std::uint64_t>::max();

using Reference = DataReference;
constexpr auto StrictReference = StrictDataReference;

std::string Describe(bool done, std::size_t consumed, std::string_view content,
                     bool bare) {
  return std::string(done ? "done" : "more") +
         " consumed=" + std::to_string(consumed) + " content=[" +
         Escape(content) + "] bare=" + (bare ? "yes" : "no");
}

std::string Describe(const Reference& r) {
  return Describe(r.done, r.consumed, r.done ? r.content : "", r.bare_newline);
}

// Feeds until the end of data; what follows it is left over.
std::string RunWithLimit(const Chunks& chunks, std::uint64_t max_octets) {
  DataReader reader(max_octets);
  std::string content, rest;
  std::size_t consumed = 0;
  for (std::string_view chunk : chunks) {
    if (!reader.done()) {
      const std::size_t n = reader.Feed(chunk);
      if (!reader.done() && n != chunk.size()) return "short Feed()";
      consumed += n;
      content += reader.TakeContent();
      if (reader.pending_content() != 0) return "content left behind";
      chunk.remove_prefix(n);
    }
    rest += chunk;
  }
  return Describe(reader.done(), consumed, reader.done() ? content : "",
                  reader.bare_newline()) +
         " octets=" + std::to_string(reader.content_octets()) +
         (reader.too_big() ? " too_big" : "") +
         " longest=" + std::to_string(reader.longest_line()) + " rest=[" +
         Escape(rest) + "]";
}

std::string Read(const Chunks& chunks) {
  return RunWithLimit(chunks, kNoLimit);
}

// Just the part of the transcript the reference knows about.
std::string RunLikeReference(std::string_view input) {
  DataReader reader(kNoLimit);
  const std::size_t consumed = reader.Feed(input);
  const std::string content = reader.TakeContent();
  // The reference judges bare line ends of finished streams only.
  return Describe(reader.done(), consumed, reader.done() ? content : "",
                  reader.done() && reader.bare_newline());
}

TEST(DataReader, EndsAtCrLfDotCrLf) {
  DataReader reader(kNoLimit);
  const std::string_view input = "Subject: hi\r\n\r\nbody\r\n.\r\nQUIT\r\n";
  EXPECT_EQ(reader.Feed(input), 24u);  // the rest is the next command
  EXPECT_TRUE(reader.done());
  EXPECT_EQ(reader.TakeContent(), "Subject: hi\r\n\r\nbody\r\n");
  EXPECT_EQ(reader.content_octets(), 21u);
  EXPECT_FALSE(reader.bare_newline());
  EXPECT_FALSE(reader.too_big());
  EXPECT_EQ(reader.Feed("more"), 0u);  // done: nothing more is taken
  EXPECT_EQ(reader.TakeContent(), "");
}

TEST(DataReader, DotAloneAsTheFirstLineIsAnEmptyMessage) {
  EXPECT_EQ(Read({".\r\nQUIT\r\n"}),
            "done consumed=3 content=[] bare=no octets=0 longest=0 "
            "rest=[QUIT\\r\\n]");
  EXPECT_EQ(Read({"\r\n.\r\n"}),
            "done consumed=5 content=[\\r\\n] bare=no octets=2 longest=2 "
            "rest=[]");
}

TEST(DataReader, DotUnstuffing) {
  // RFC 5321 4.5.2: the first dot of a line is removed, whatever follows.
  auto content = [](std::string_view input) {
    DataReader reader(kNoLimit);
    reader.Feed(input);
    EXPECT_TRUE(reader.done()) << Escape(input);
    return reader.TakeContent();
  };
  EXPECT_EQ(content("..x\r\n.\r\n"), ".x\r\n");
  EXPECT_EQ(content("..\r\n.\r\n"), ".\r\n");
  EXPECT_EQ(content(".x\r\n.\r\n"), "x\r\n");
  EXPECT_EQ(content("...\r\n.\r\n"), "..\r\n");
  EXPECT_EQ(content(". \r\n.\r\n"), " \r\n");
  EXPECT_EQ(content("a.b\r\n.a\r\n..\r\n.\r\n"), "a.b\r\na\r\n.\r\n");
}

TEST(DataReader, SmugglingVariantsAreNotTheEnd) {
  struct Case {
    std::string_view variant;
    bool bare;
  };
  const Case cases[] = {
      {"\n.\n", true},       {"\n.\r\n", true},
      {"\r\n.\n", true},     {"\r.\r", true},
      {"\r.\n", true},       {"\n.\r", true},
      {"\r\n.\r", true},     {"\r.\r\n", true},
      {"\r\n.\r\r\n", true}, {std::string_view("\r\n\0.\r\n", 6), false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(Escape(c.variant));
    // The variant alone does not end the data, at the start or inside.
    for (const std::string prefix : {"", "data"}) {
      DataReader reader(kNoLimit);
      const std::string before = prefix + std::string(c.variant);
      EXPECT_EQ(reader.Feed(before), before.size());
      EXPECT_FALSE(reader.done());
      // Whether a trailing CR is bare is known with the next octet.
      EXPECT_EQ(reader.Feed("x"), 1u);
      EXPECT_FALSE(reader.done());
      EXPECT_EQ(reader.bare_newline(), c.bare);
    }
    // Followed by a smuggled command and the real end, it is all content.
    const std::string input = "data" + std::string(c.variant) +
                              "MAIL FROM:<evil@example.org>\r\n.\r\n";
    const Reference ref = StrictReference(input);
    ASSERT_TRUE(ref.done);
    EXPECT_EQ(ref.consumed, input.size());
    EXPECT_EQ(ref.bare_newline, c.bare);
    DataReader once(kNoLimit);
    once.Feed(input);
    EXPECT_EQ(ExpectSameForEverySplit(input, Read),
              Describe(ref) + " octets=" + std::to_string(ref.content.size()) +
                  " longest=" + std::to_string(once.longest_line()) +
                  " rest=[]");
    EXPECT_NE(ref.content.find("MAIL FROM:<evil@example.org>"),
              std::string::npos);
  }
}

TEST(DataReader, BareNewlinesAreRecorded) {
  EXPECT_EQ(RunLikeReference("a\nb\r\n.\r\n"),
            "done consumed=8 content=[a\\nb\\r\\n] bare=yes");
  EXPECT_EQ(RunLikeReference("a\rb\r\n.\r\n"),
            "done consumed=8 content=[a\\rb\\r\\n] bare=yes");
  EXPECT_EQ(RunLikeReference("a\r\r\n.\r\n"),
            "done consumed=7 content=[a\\r\\r\\n] bare=yes");
  DataReader unfinished(kNoLimit);
  EXPECT_EQ(unfinished.Feed("\n.\r\n"), 4u);
  EXPECT_FALSE(unfinished.done());
  EXPECT_TRUE(unfinished.bare_newline());
  EXPECT_EQ(RunLikeReference("a\r\nb\r\n.\r\n"),
            "done consumed=9 content=[a\\r\\nb\\r\\n] bare=no");
}

TEST(DataReader, LongLinesAreKeptWhole) {
  // RFC 5321 4.5.3.1.6's 1000 is a minimum; petrel keeps longer lines.
  const std::string line(5000, 'x');
  DataReader reader(kNoLimit);
  reader.Feed("short\r\n" + line + "\r\n" + ".." + line + "\r\n.\r\n");
  ASSERT_TRUE(reader.done());
  EXPECT_EQ(reader.TakeContent(), "short\r\n" + line + "\r\n." + line + "\r\n");
  EXPECT_EQ(reader.longest_line(), 5003u);  // ".x...x\r\n", stuffing removed
}

TEST(DataReader, TooBigDropsTheExcessButReadsToTheEnd) {
  const std::string body(100, 'b');
  const std::string input = body + "\r\n.\r\nQUIT\r\n";
  EXPECT_EQ(ExpectSameForEverySplit(
                input, [](const Chunks& c) { return RunWithLimit(c, 10); }, 0),
            "done consumed=105 content=[bbbbbbbbbb] bare=no octets=102 "
            "too_big longest=102 rest=[QUIT\\r\\n]");
}

TEST(DataReader, SizeLimitAtTheLimitAndOnePast) {
  // 10 octets of content: "12345678\r\n".
  const std::string input = "12345678\r\n.\r\n";
  DataReader at(10);
  at.Feed(input);
  EXPECT_TRUE(at.done());
  EXPECT_FALSE(at.too_big());
  EXPECT_EQ(at.TakeContent(), "12345678\r\n");
  DataReader past(9);
  past.Feed(input);
  EXPECT_TRUE(past.done());
  EXPECT_TRUE(past.too_big());
  EXPECT_EQ(past.TakeContent(), "12345678\r");
  EXPECT_EQ(past.content_octets(), 10u);
}

TEST(DataReader, ContentCanBeDrainedAsItComes) {
  DataReader reader(kNoLimit);
  EXPECT_EQ(reader.Feed("abc\r\n."), 6u);
  EXPECT_EQ(reader.pending_content(), 5u);
  EXPECT_EQ(reader.TakeContent(), "abc\r\n");  // the dot is not decided yet
  EXPECT_EQ(reader.Feed(".def\r\n.\r\n"), 9u);
  EXPECT_EQ(reader.TakeContent(), ".def\r\n");
}

TEST(DataReader, SameForEverySplit) {
  for (std::string_view input : {
           "a\r\n.\r\n",
           ".\r\n",
           "..\r\n.\r\nX",
           "\r\n.\r\n.\r\n",
           "x\r\r\n.\r\n",
           ".\r.\r\n.\r\nNOOP\r\n",
           "a\n.\r\n.\n\r\n.\r\n",
           "line\r\n.stuffed\r\n..\r\n\r\n.\r\nQUIT\r\n",
       }) {
    const Reference ref = StrictReference(input);
    const std::string got = ExpectSameForEverySplit(input, Read);
    EXPECT_EQ(got.substr(0, Describe(ref).size()), Describe(ref));
  }
}

TEST(DataReader, MatchesTheReferenceOnRandomStreams) {
  // Streams over the octets that matter, checked whole and byte by byte.
  std::mt19937 rng(5321);
  constexpr std::string_view kAlphabet("\r\n.a\0", 5);
  for (int round = 0; round < 20000; ++round) {
    std::string input;
    const std::size_t length = rng() % 24;
    for (std::size_t i = 0; i < length; ++i) {
      input += kAlphabet[rng() % kAlphabet.size()];
    }
    if (rng() % 2 == 0) input += "\r\n.\r\n";
    SCOPED_TRACE(Escape(input));
    ASSERT_EQ(RunLikeReference(input), Describe(StrictReference(input)));
    Chunks bytes;
    for (std::size_t i = 0; i < input.size(); ++i) {
      bytes.push_back(std::string_view(input).substr(i, 1));
    }
    ASSERT_EQ(Read(bytes), Read({input}));
  }
}

TEST(BareNewlineScanner, AcrossChunks) {
  auto scan = [](std::initializer_list<std::string_view> chunks) {
    BareNewlineScanner s;
    for (std::string_view c : chunks) s.Feed(c);
    s.Finish();
    return s.bare_newline();
  };
  EXPECT_FALSE(scan({"a\r\nb\r\n"}));
  EXPECT_FALSE(scan({"a\r", "\nb\r", "\n"}));
  EXPECT_FALSE(scan({}));
  EXPECT_TRUE(scan({"a\nb"}));
  EXPECT_TRUE(scan({"a\rb"}));
  EXPECT_TRUE(scan({"a\r", "b"}));
  EXPECT_TRUE(scan({"\n"}));
  EXPECT_TRUE(scan({"a\r"}));  // a CR at the very end is bare
  EXPECT_TRUE(scan({"a\r\r\n"}));
}

}  // namespace
}  // namespace petrel::smtp
