#include "delivery/credentials.h"

#include <gtest/gtest.h>

namespace petrel::delivery {
namespace {

TEST(Credentials, PostfixSaslPasswdFormat) {
  auto c = Credentials::Parse(
      "# smarthosts\n"
      "[Smart.Example.net]:587  user@example.net:pass:with colons\n"
      "relay.example.org\trelayuser:pw \n"
      "[::1]:2600 six:pw6\n",
      "creds");
  ASSERT_TRUE(c) << c.error().ToString();
  auto a = c->Find("smart.example.net", 587);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->user, "user@example.net");
  EXPECT_EQ(a->password, "pass:with colons");
  EXPECT_FALSE(c->Find("smart.example.net", 25));
  auto b = c->Find("RELAY.example.org", 25);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->password, "pw");
  EXPECT_TRUE(c->Find("::1", 2600));
  EXPECT_FALSE(c->Find("other.example", 25));
}

TEST(Credentials, ErrorsNameTheLineNeverThePassword) {
  auto c = Credentials::Parse(
      "host-only\n[bad:587 u:p\nh.example nopassword\nh.example u:secret1\n"
      "h.example u:secret2\n",
      "/etc/petrel/creds");
  ASSERT_FALSE(c);
  const std::string& m = c.error().message();
  EXPECT_NE(m.find("/etc/petrel/creds:1: expected"), std::string::npos) << m;
  EXPECT_NE(m.find("/etc/petrel/creds:2: bad next hop"), std::string::npos);
  EXPECT_NE(m.find("/etc/petrel/creds:3: h.example: expected user:password"),
            std::string::npos);
  EXPECT_NE(m.find("/etc/petrel/creds:5: h.example appears twice"),
            std::string::npos);
  EXPECT_EQ(m.find("secret"), std::string::npos);
}

}  // namespace
}  // namespace petrel::delivery
