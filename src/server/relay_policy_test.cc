#include "server/relay_policy.h"

#include <gtest/gtest.h>

#include "config/config.h"

namespace petrel::server {
namespace {

smtp::Mailbox Box(std::string local, std::string domain) {
  return smtp::Mailbox{std::move(local), std::move(domain)};
}

TEST(RelayPolicy, LocalRelayAndForeignDomains) {
  config::Config c;
  c.relay.local_domains = {"example.test"};
  c.relay.relay_domains = {"relay.example"};
  c.listeners.push_back({"127.0.0.1", 2525, config::ListenerMode::kSmtp});
  RelayPolicy p(c);
  EXPECT_FALSE(p.CheckRecipient(Box("a", "EXAMPLE.test"), false));
  EXPECT_FALSE(p.CheckRecipient(Box("a", "example.test."), false));
  EXPECT_FALSE(p.CheckRecipient(Box("a", "relay.example"), false));
  EXPECT_EQ(p.CheckRecipient(Box("a", "other.example"), false)->code, 554);
  EXPECT_EQ(p.CheckRecipient(Box("a", "sub.example.test"), false)->code, 554);
  EXPECT_FALSE(p.CheckRecipient(Box("a", "other.example"), true));
  // Our own address literal is local; any other literal is not.
  EXPECT_FALSE(p.CheckRecipient(Box("a", "[127.0.0.1]"), false));
  EXPECT_EQ(p.CheckRecipient(Box("a", "[192.0.2.1]"), false)->code, 554);
}

TEST(RelayPolicy, KnownUsersOnly) {
  config::Config c;
  c.relay.local_domains = {"example.test"};
  c.local.users = std::vector<std::string>{"alice"};
  RelayPolicy p(c);
  EXPECT_FALSE(p.CheckRecipient(Box("Alice", "example.test"), false));
  EXPECT_FALSE(p.CheckRecipient(Box("alice+tag", "example.test"), false));
  EXPECT_FALSE(p.CheckRecipient(Box("postmaster", "example.test"), false));
  auto r = p.CheckRecipient(Box("mallory", "example.test"), false);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->code, 550);
  EXPECT_EQ(r->status->ToString(), "5.1.1");
}

}  // namespace
}  // namespace petrel::server
