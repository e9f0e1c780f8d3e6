#include "delivery/aliases.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

namespace petrel::delivery {
namespace {

using Strings = std::vector<std::string>;

const Strings kLocal = {"example.test", "other.test"};

Aliases MustParse(std::string_view text) {
  auto a = Aliases::Parse(text, "aliases");
  EXPECT_TRUE(a.has_value()) << a.error().message();
  return a ? std::move(*a) : Aliases();
}

Strings MustExpand(const Aliases& a, std::string_view address) {
  auto r = a.Expand(address, kLocal);
  EXPECT_TRUE(r.has_value()) << r.error().text;
  return r ? *r : Strings{};
}

TEST(AliasesParseTest, CommentsBlankLinesContinuations) {
  const Aliases a = MustParse(
      "# system aliases\n"
      "\n"
      "Postmaster: root\n"
      "root:\talice\r\n"
      "staff: alice,\n"
      "   bob@Example.TEST ,\n"
      "  # a comment between continuation lines\n"
      "\t<carol@remote.example>\n"
      "   \n"
      "quoted: \"a,b\"@example.test, dave,\n"  // trailing comma ignored
      "  # last line has no newline\n"
      "x:y");
  EXPECT_EQ(a.size(), 5u);
  ASSERT_NE(a.Find("postmaster"), nullptr);
  EXPECT_EQ(a.Find("POSTMASTER")->targets, Strings{"root"});
  EXPECT_EQ(a.Find("root")->targets, Strings{"alice"});
  EXPECT_EQ(a.Find("staff")->targets,
            (Strings{"alice", "bob@example.test", "carol@remote.example"}));
  EXPECT_EQ(a.Find("staff")->where, "aliases:5");
  EXPECT_EQ(a.Find("quoted")->targets,
            (Strings{"\"a,b\"@example.test", "dave"}));
  EXPECT_EQ(a.Find("x")->targets, Strings{"y"});
  EXPECT_EQ(a.Find("nobody"), nullptr);
  EXPECT_TRUE(a.Has("Staff+lists"));
  EXPECT_FALSE(a.Has("stafff"));
}

TEST(AliasesParseTest, ErrorsNameFileAndLine) {
  auto a = Aliases::Parse(
      "  indented: first\n"         // 1: continuation of nothing
      "nocolon target\n"            // 2
      ": empty\n"                   // 3
      "two words: x\n"              // 4
      "pipe: |/usr/bin/procmail\n"  // 5
      "file: /var/log/mail\n"       // 6
      "inc: :include:/etc/list\n"   // 7
      "bad: a@@b\n"                 // 8
      "none: , ,\n"                 // 9
      "ok: alice\n"                 // 10
      "OK: bob\n"                   // 11: duplicate
      "at@domain: x\n",             // 12
      "/etc/petrel/aliases");
  ASSERT_FALSE(a.has_value());
  const std::string m = a.error().message();
  EXPECT_EQ(a.error().code(), Status::Code::kInvalidArgument);
  for (int line : {1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12}) {
    EXPECT_NE(m.find("/etc/petrel/aliases:" + std::to_string(line) + ": "),
              std::string::npos)
        << "line " << line << " in:\n"
        << m;
  }
  EXPECT_EQ(m.find("aliases:10:"), std::string::npos) << m;
  EXPECT_NE(m.find("duplicate alias ok (first at /etc/petrel/aliases:10)"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("pipes, files and :include: are not supported"),
            std::string::npos);
}

TEST(AliasesParseTest, LoadsAFile) {
  char path[] = "/tmp/petrel-aliases-XXXXXX";
  const int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ::close(fd);
  std::ofstream(path) << "postmaster: alice\n";
  auto a = Aliases::Load(path);
  ASSERT_TRUE(a.has_value()) << a.error().message();
  EXPECT_EQ(a->Find("postmaster")->where, std::string(path) + ":1");
  std::ofstream(path) << "broken\n";
  a = Aliases::Load(path);
  ASSERT_FALSE(a.has_value());
  EXPECT_NE(a.error().message().find(std::string(path) + ":1: "),
            std::string::npos);
  ::unlink(path);
  a = Aliases::Load(path);
  ASSERT_FALSE(a.has_value());
  EXPECT_EQ(a.error().code(), Status::Code::kNotFound);
  EXPECT_NE(a.error().message().find(path), std::string::npos);
}

TEST(AliasesExpandTest, RecursiveWithinTheDomain) {
  const Aliases a = MustParse(
      "postmaster: root\n"
      "root: alice, ops@remote.example\n"
      "staff: alice, bob, Alice, root\n"
      "team: staff, carol@other.test\n"
      "carol: carol.real\n");
  EXPECT_EQ(MustExpand(a, "Postmaster@example.test"),
            (Strings{"alice@example.test", "ops@remote.example"}));
  // Duplicates go (alice three times); the domain of the alias is kept.
  EXPECT_EQ(MustExpand(a, "team@Other.TEST"),
            (Strings{"alice@other.test", "bob@other.test", "ops@remote.example",
                     "carol.real@other.test"}));
  // No alias: the address itself, as given.
  EXPECT_EQ(MustExpand(a, "Dave@example.test"), Strings{"Dave@example.test"});
  // Not a local domain: untouched, even if the name has an alias.
  EXPECT_EQ(MustExpand(a, "root@remote.example"),
            Strings{"root@remote.example"});
  // "+detail": the whole name first, then without the detail.
  EXPECT_EQ(MustExpand(a, "root+x@example.test"),
            (Strings{"alice@example.test", "ops@remote.example"}));
  // An empty alias table.
  EXPECT_EQ(Aliases().Expand("a@example.test", kLocal).value(),
            Strings{"a@example.test"});
}

TEST(AliasesExpandTest, SelfReferenceDeliversToTheMailbox) {
  const Aliases a = MustParse(
      "alice: alice, archive\n"
      "archive: archive-box@remote.example\n");
  EXPECT_EQ(MustExpand(a, "alice@example.test"),
            (Strings{"alice@example.test", "archive-box@remote.example"}));
  EXPECT_EQ(MustExpand(a, "Alice+x@example.test"),
            (Strings{"Alice+x@example.test", "archive-box@remote.example"}));
}

TEST(AliasesExpandTest, LoopsAndDepth) {
  const Aliases loop = MustParse("a: b\nb: c\nc: a\n");
  auto r = loop.Expand("a@example.test", kLocal);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().status.ToString(), "5.4.6");
  EXPECT_EQ(r.error().text,
            "alias loop: a@example.test -> b@example.test -> c@example.test "
            "-> a@example.test");

  // A chain of 10 aliases is fine; 11 is too deep.
  std::string chain;
  for (int i = 0; i < 11; ++i) {
    chain += "n" + std::to_string(i) + ": n" + std::to_string(i + 1) + "\n";
  }
  const Aliases deep = MustParse(chain);
  EXPECT_EQ(MustExpand(deep, "n1@example.test"), Strings{"n11@example.test"});
  r = deep.Expand("n0@example.test", kLocal);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().status.ToString(), "5.4.6");
  EXPECT_NE(r.error().text.find("deeper than 10"), std::string::npos)
      << r.error().text;

  // Too many addresses.
  std::string big = "all: ";
  for (int i = 0; i < 1001; ++i) {
    big += (i ? ", u" : "u") + std::to_string(i);
  }
  const Aliases wide = MustParse(big + "\n");
  r = wide.Expand("all@example.test", kLocal);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().status.ToString(), "5.2.4");
}

}  // namespace
}  // namespace petrel::delivery
