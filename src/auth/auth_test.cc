#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "auth/guard.h"
#include "auth/users.h"

namespace petrel::auth {
namespace {

using namespace std::chrono_literals;

TEST(UserDb, ParsesUsersAndAddresses) {
  auto db = UserDb::Parse(
      "# "
      "users\n\nalice:$y$abc\nbob@example.test:$2b$12$xyz:Sales@Example.test, "
      "b@other.example\n",
      "users");
  ASSERT_TRUE(db) << db.error().ToString();
  EXPECT_EQ((*db)->size(), 2u);
  const User* bob = (*db)->Find("bob@example.test");
  ASSERT_NE(bob, nullptr);
  EXPECT_EQ(bob->hash, "$2b$12$xyz");
  EXPECT_EQ(bob->addresses, (std::vector<std::string>{"sales@example.test",
                                                      "b@other.example"}));
}

TEST(UserDb, RefusesPlaintextAndNamesTheLine) {
  auto db = UserDb::Parse("alice:$y$abc\nbob:hunter2\ncarol\nalice:$6$x\n",
                          "/etc/petrel/users");
  ASSERT_FALSE(db);
  const std::string& m = db.error().message();
  EXPECT_NE(m.find("/etc/petrel/users:2: user \"bob\": not a crypt(3) hash"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("/etc/petrel/users:3: expected name:hash"),
            std::string::npos);
  EXPECT_NE(m.find("/etc/petrel/users:4: user \"alice\" appears twice"),
            std::string::npos);
}

TEST(UserDb, VerifiesYescryptHashes) {
  auto hash = HashPassword("correct horse");
  ASSERT_TRUE(hash) << hash.error().ToString();
  EXPECT_EQ(hash->substr(0, 3), "$y$");
  auto db = UserDb::Parse("alice:" + *hash + "\n", "users");
  ASSERT_TRUE(db);
  EXPECT_TRUE((*db)->Verify("alice", "correct horse"));
  EXPECT_FALSE((*db)->Verify("alice", "correct horse "));
  EXPECT_FALSE((*db)->Verify("alice", ""));
  EXPECT_FALSE((*db)->Verify("mallory", "correct horse"));
  EXPECT_FALSE((*db)->Verify("Alice", "correct horse"));
}

TEST(MaySendAs, OwnAddressAndListedOnes) {
  const std::vector<std::string> local = {"example.test", "example.org"};
  EXPECT_TRUE(MaySendAs("alice", {}, "alice@example.test", local));
  EXPECT_TRUE(MaySendAs("alice", {}, "Alice@Example.ORG", local));
  EXPECT_FALSE(MaySendAs("alice", {}, "alice@elsewhere.example", local));
  EXPECT_FALSE(MaySendAs("alice", {}, "bob@example.test", local));
  EXPECT_TRUE(MaySendAs("a@x.example", {}, "A@x.example", local));
  EXPECT_FALSE(MaySendAs("a@x.example", {}, "a@example.test", local));
  EXPECT_TRUE(
      MaySendAs("alice", {"sales@example.test"}, "sales@example.test", local));
}

TEST(SetPassword, AddsReplacesAndKeepsAddresses) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("petrel-auth-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "users").string();
  {
    std::ofstream f(path);
    f << "# comment\nalice:$y$old:sales@example.test\n";
  }
  ASSERT_TRUE(SetPassword(path, "bob", "$y$bob").ok());
  ASSERT_TRUE(SetPassword(path, "alice", "$y$new").ok());
  EXPECT_FALSE(SetPassword(path, "eve:x", "$y$e").ok());
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(text, "# comment\nalice:$y$new:sales@example.test\nbob:$y$bob\n");
  EXPECT_EQ(
      std::filesystem::status(path).permissions() & std::filesystem::perms::all,
      std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  std::filesystem::remove_all(dir);
}

TEST(Authenticator, ReReadsTheFileWhenItChanges) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("petrel-authn-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "users").string();
  auto h1 = HashPassword("one");
  ASSERT_TRUE(h1);
  ASSERT_TRUE(SetPassword(path, "alice", *h1).ok());
  auto a = Authenticator::Open(path);
  ASSERT_TRUE(a);
  EXPECT_TRUE((*a)->Check("alice", "one").ok);
  auto h2 = HashPassword("two, longer");
  ASSERT_TRUE(h2);
  ASSERT_TRUE(SetPassword(path, "alice", *h2).ok());
  EXPECT_TRUE((*a)->Check("alice", "two, longer").ok);
  EXPECT_FALSE((*a)->Check("alice", "one").ok);
  // A broken file keeps the last good users.
  { std::ofstream(path) << "alice:plaintext-and-longer-than-before\n"; }
  EXPECT_TRUE((*a)->Check("alice", "two, longer").ok);
  std::filesystem::remove_all(dir);
}

TEST(FailureGuard, DelaysGrowAndTheAddressIsBlockedForTheWindow) {
  FailureGuard g(3, 60s, 100ms);
  const auto t0 = FailureGuard::Clock::time_point{} + 1000s;
  EXPECT_FALSE(g.Blocked("192.0.2.1", t0));
  EXPECT_EQ(g.RecordFailure("192.0.2.1", t0), 100ms);
  EXPECT_EQ(g.RecordFailure("192.0.2.1", t0 + 1s), 200ms);
  EXPECT_FALSE(g.Blocked("192.0.2.1", t0 + 2s));
  EXPECT_EQ(g.RecordFailure("192.0.2.1", t0 + 2s), 400ms);
  EXPECT_TRUE(g.Blocked("192.0.2.1", t0 + 3s));
  EXPECT_FALSE(g.Blocked("192.0.2.2", t0 + 3s));
  EXPECT_TRUE(g.Blocked("192.0.2.1", t0 + 59s));
  EXPECT_FALSE(g.Blocked("192.0.2.1", t0 + 60s));
  EXPECT_EQ(g.RecordFailure("192.0.2.1", t0 + 61s), 100ms);
}

TEST(FailureGuard, DelayIsCapped) {
  FailureGuard g(100, 60s, 1s);
  const auto t0 = FailureGuard::Clock::time_point{} + 1000s;
  std::chrono::milliseconds last{};
  for (int i = 0; i < 20; ++i) last = g.RecordFailure("198.51.100.7", t0);
  EXPECT_EQ(last, 16s);
}

}  // namespace
}  // namespace petrel::auth
