#include "delivery/maildir.h"

#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

namespace petrel::delivery {
namespace {

namespace fs = std::filesystem;

class MaildirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/petrel-maildir-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    base_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(base_, ec);
  }

  std::vector<fs::path> Files(const fs::path& dir) {
    std::vector<fs::path> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      out.push_back(e.path());
    }
    return out;
  }

  static std::string Read(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
  }

  std::string base_;
};

TEST(MaildirUserTest, LowerCasedUnquotedWithoutDetail) {
  EXPECT_EQ(MaildirUser("Alice"), "alice");
  EXPECT_EQ(MaildirUser("Alice+Lists"), "alice");
  EXPECT_EQ(MaildirUser("a.b+c+d"), "a.b");
  EXPECT_EQ(MaildirUser("\"John Doe\""), "john doe");
  EXPECT_EQ(MaildirUser("+detail"), "");
}

TEST(MaildirPathTest, ExpandsTheTemplate) {
  auto p =
      MaildirPathFor("/srv/mail/{domain}/{user}", "Alice+News@Example.TEST");
  ASSERT_TRUE(p.has_value()) << p.error().text;
  EXPECT_EQ(*p, "/srv/mail/example.test/alice");
  p = MaildirPathFor("/srv/{user}/{domain}/{user}", "bob@example.test");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(*p, "/srv/bob/example.test/bob");
  p = MaildirPathFor("/srv/{domain}/{user}", "j\xc3\xb6rg@example.test");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(*p, "/srv/example.test/j\xc3\xb6rg");
}

TEST(MaildirPathTest, RefusesNamesThatEscapeTheBase) {
  const char* bad[] = {
      "\"../../etc\"@example.test",  // '/' and ".."
      "\"..\"@example.test",         // ".."
      "\".hidden\"@example.test",    // leading '.'
      "\"a/b\"@example.test",        // '/'
      "a/b@example.test",            // '/' is atext
      "\"\"@example.test",           // empty
      "+detail@example.test",        // empty once the detail is gone
      "\"a\\\tb\"@example.test",     // control character (TAB)
      "..@example.test",             // not even an address
      "a@example..test",             // ditto
      "nodomain",                    // ditto
      "",                            //
  };
  for (const char* address : bad) {
    auto p = MaildirPathFor("/srv/mail/{domain}/{user}", address);
    ASSERT_FALSE(p.has_value()) << address << " -> " << *p;
    EXPECT_EQ(p.error().kind, MaildirResult::Kind::kPermanent) << address;
    EXPECT_EQ(p.error().status.ToString(), "5.1.3") << address;
    EXPECT_NE(p.error().text.find("bad destination mailbox address"),
              std::string::npos)
        << p.error().text;
  }
  // A NUL inside a quoted local-part, built by hand.
  const std::string nul = std::string("\"a") + '\0' + "b\"@example.test";
  auto p = MaildirPathFor("/srv/{domain}/{user}", nul);
  ASSERT_FALSE(p.has_value());
  EXPECT_EQ(p.error().status.ToString(), "5.1.3");
}

TEST_F(MaildirTest, DeliveryMakesTheFoldersAndAFileInNew) {
  auto path =
      MaildirPathFor(base_ + "/mail/{domain}/{user}", "Alice@Example.TEST");
  ASSERT_TRUE(path.has_value());
  const std::string content =
      "Received: from x\r\n\tby y\r\nSubject: hi\r\n\r\nline 1\r\nbare\rCR\r\n";
  MaildirOptions options;
  options.hostname = "mx.example.test";
  const MaildirResult r = DeliverToMaildir(
      *path, "sender@example.org", "alice@example.test", content, options);
  ASSERT_TRUE(r.ok()) << r.text;
  EXPECT_EQ(r.status.ToString(), "2.0.0");
  for (const char* sub : {"cur", "new", "tmp"}) {
    struct stat st;
    ASSERT_EQ(::stat((*path + "/" + sub).c_str(), &st), 0) << sub;
    EXPECT_TRUE(S_ISDIR(st.st_mode));
    EXPECT_EQ(st.st_mode & 0777, 0700u);
  }
  EXPECT_TRUE(Files(*path + "/tmp").empty());
  EXPECT_TRUE(Files(*path + "/cur").empty());
  const auto files = Files(*path + "/new");
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0].string(), r.path);
  EXPECT_TRUE(std::regex_match(
      files[0].filename().string(),
      std::regex(
          R"([0-9]+\.M[0-9]+P[0-9]+Q[0-9]+R[0-9a-f]{16}\.mx\.example\.test)")))
      << files[0];
  EXPECT_EQ(Read(files[0]),
            "Return-Path: <sender@example.org>\n"
            "Delivered-To: alice@example.test\n"
            "Received: from x\n\tby y\nSubject: hi\n\nline 1\nbare\rCR\n");
  struct stat st;
  ASSERT_EQ(::stat(r.path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  // A second delivery: a second, distinct file.
  const MaildirResult r2 =
      DeliverToMaildir(*path, "", "alice@example.test", "S: 2\r\n\r\nb\r\n");
  ASSERT_TRUE(r2.ok()) << r2.text;
  EXPECT_NE(r2.path, r.path);
  EXPECT_EQ(Files(*path + "/new").size(), 2u);
  EXPECT_EQ(Read(r2.path).rfind("Return-Path: <>\n", 0), 0u);
}

TEST_F(MaildirTest, CrLfSplitAcrossPiecesAndHostileAddresses) {
  const std::string dir = base_ + "/md";
  const std::vector<std::string> pieces = {"A: 1\r", "\nB: 2\r", "\r\n\r",
                                           "\nbody\r"};
  MaildirOptions options;
  options.hostname = "host/with:odd";
  const MaildirResult r = DeliverToMaildir(
      dir, "a@b\r\nX-Evil: 1", "c@d\nX-Evil: 2",
      [&](const ContentSink& sink) {
        for (const std::string& p : pieces) {
          if (Status s = sink(p); !s.ok()) return s;
        }
        return Status::Ok();
      },
      options);
  ASSERT_TRUE(r.ok()) << r.text;
  const std::string got = Read(r.path);
  EXPECT_EQ(got,
            "Return-Path: <a@b  X-Evil: 1>\nDelivered-To: c@d X-Evil: 2\n"
            "A: 1\nB: 2\r\n\nbody\r");
  EXPECT_NE(r.path.find(".host\\057with\\072odd"), std::string::npos) << r.path;
}

TEST_F(MaildirTest, FaultAtEveryStepLeavesNothingBehind) {
  struct Case {
    const char* step;
    int err;
    const char* status;
  };
  const Case cases[] = {
      {"mkdir", ENOSPC, "4.3.1"}, {"mkdir", EACCES, "4.2.0"},
      {"open", EDQUOT, "4.3.1"},  {"open", EACCES, "4.2.0"},
      {"write", ENOSPC, "4.3.1"}, {"write", EIO, "4.3.0"},
      {"fsync", EIO, "4.3.0"},    {"fsync", ENOSPC, "4.3.1"},
      {"link", EIO, "4.3.0"},     {"dirsync", EIO, "4.3.0"},
  };
  int n = 0;
  for (const Case& c : cases) {
    const std::string dir = base_ + "/case" + std::to_string(n++);
    MaildirOptions options;
    options.fault = [&](std::string_view step) {
      return step == c.step ? c.err : 0;
    };
    const MaildirResult r =
        DeliverToMaildir(dir, "a@b.example", "c@d.example",
                         "Subject: x\r\n\r\nbody\r\n", options);
    EXPECT_EQ(r.kind, MaildirResult::Kind::kTemporary) << c.step;
    EXPECT_EQ(r.status.ToString(), c.status) << c.step << " " << r.text;
    EXPECT_NE(r.text.find(c.step), std::string::npos) << r.text;
    EXPECT_TRUE(Files(dir + "/new").empty()) << c.step;
    EXPECT_TRUE(Files(dir + "/tmp").empty()) << c.step;
  }
}

TEST_F(MaildirTest, ReadFailureOfTheQueuedContentIsTemporary) {
  const std::string dir = base_ + "/md";
  const MaildirResult r = DeliverToMaildir(
      dir, "a@b.example", "c@d.example", [](const ContentSink& sink) {
        (void)sink("Subject: x\r\n");
        return Status::Corruption("record 3 fails its check");
      });
  EXPECT_EQ(r.kind, MaildirResult::Kind::kTemporary);
  EXPECT_EQ(r.status.ToString(), "4.3.0");
  EXPECT_NE(r.text.find("record 3"), std::string::npos);
  EXPECT_TRUE(Files(dir + "/new").empty());
  EXPECT_TRUE(Files(dir + "/tmp").empty());
}

TEST_F(MaildirTest, AFileWhereTheMaildirShouldBeIsAMailboxProblem) {
  const std::string dir = base_ + "/md";
  std::ofstream(dir) << "not a directory";
  const MaildirResult r =
      DeliverToMaildir(dir, "a@b.example", "c@d.example", "S: x\r\n\r\n");
  EXPECT_EQ(r.kind, MaildirResult::Kind::kTemporary);
  EXPECT_EQ(r.status.ToString(), "4.2.0") << r.text;
}

// A real full disk: a 64 KiB tmpfs (needs root and mount(2); skipped
// otherwise).
TEST_F(MaildirTest, FullFileSystemIsTemporary431) {
  const std::string mnt = base_ + "/small";
  ASSERT_EQ(::mkdir(mnt.c_str(), 0700), 0);
  if (::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=64k") != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs: " << std::strerror(errno);
  }
  const std::string dir = mnt + "/mail/example.test/alice";
  std::string big = "Subject: big\r\n\r\n";
  while (big.size() < 512 * 1024) big += std::string(998, 'x') + "\r\n";
  const MaildirResult r =
      DeliverToMaildir(dir, "a@b.example", "alice@example.test", big);
  const std::vector<fs::path> left_new = Files(dir + "/new");
  const std::vector<fs::path> left_tmp = Files(dir + "/tmp");
  // A small message still fits once the big one is gone.
  const MaildirResult small = DeliverToMaildir(
      dir, "a@b.example", "alice@example.test", "Subject: s\r\n\r\nb\r\n");
  ::umount2(mnt.c_str(), MNT_DETACH);
  EXPECT_EQ(r.kind, MaildirResult::Kind::kTemporary);
  EXPECT_EQ(r.status.ToString(), "4.3.1") << r.text;
  EXPECT_TRUE(left_new.empty());
  EXPECT_TRUE(left_tmp.empty());
  EXPECT_TRUE(small.ok()) << small.text;
}

}  // namespace
}  // namespace petrel::delivery
