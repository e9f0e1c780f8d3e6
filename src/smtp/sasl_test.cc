#include "smtp/sasl.h"

#include <gtest/gtest.h>

namespace petrel::smtp {
namespace {

using namespace std::string_literals;

TEST(Base64, RoundTripsEveryLength) {
  std::string bytes;
  for (int i = 0; i < 300; ++i) {
    bytes += static_cast<char>(i * 7);
    auto back = DecodeBase64(EncodeBase64(bytes));
    ASSERT_TRUE(back.has_value()) << i;
    EXPECT_EQ(*back, bytes);
  }
}

TEST(Base64, KnownVectors) {  // RFC 4648 10
  EXPECT_EQ(EncodeBase64(""), "");
  EXPECT_EQ(EncodeBase64("f"), "Zg==");
  EXPECT_EQ(EncodeBase64("fo"), "Zm8=");
  EXPECT_EQ(EncodeBase64("foo"), "Zm9v");
  EXPECT_EQ(EncodeBase64("foobar"), "Zm9vYmFy");
  EXPECT_EQ(DecodeBase64("Zm9vYg=="), "foob");
  EXPECT_EQ(DecodeBase64(kLoginUserChallenge), "Username:");
  EXPECT_EQ(DecodeBase64(kLoginPasswordChallenge), "Password:");
}

TEST(Base64, RefusesWhatIsNotCanonical) {
  for (const char* bad : {"Zg", "Zg=", "Z===", "Zg==Zg==", "Zm9v YmFy",
                          "Zh==", "Zm9=", "Zm=v", "Zm9\r", "=Zm9", "****"}) {
    EXPECT_FALSE(DecodeBase64(bad).has_value()) << bad;
  }
}

TEST(PlainMessage, ParsesAndChecksTheAuthorizationIdentity) {
  auto c = ParsePlainMessage("\0alice\0secret"s);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->user, "alice");
  EXPECT_EQ(c->password, "secret");
  EXPECT_TRUE(ParsePlainMessage("alice\0alice\0secret"s));
  EXPECT_FALSE(ParsePlainMessage("bob\0alice\0secret"s));
  EXPECT_FALSE(ParsePlainMessage("\0alice\0"s));
  EXPECT_FALSE(ParsePlainMessage("\0\0secret"s));
  EXPECT_FALSE(ParsePlainMessage("alice secret"s));
  EXPECT_FALSE(ParsePlainMessage("\0alice\0sec\0ret"s));
}

TEST(PlainMessage, ClientEncodingIsWhatTheServerParses) {
  auto decoded = DecodeBase64(EncodePlainResponse("u@example.test", "p w:d"));
  ASSERT_TRUE(decoded);
  auto c = ParsePlainMessage(*decoded);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->user, "u@example.test");
  EXPECT_EQ(c->password, "p w:d");
}

TEST(Mechanism, Names) {
  EXPECT_EQ(ParseSaslMechanism("plain"), SaslMechanism::kPlain);
  EXPECT_EQ(ParseSaslMechanism("LOGIN"), SaslMechanism::kLogin);
  EXPECT_FALSE(ParseSaslMechanism("CRAM-MD5"));
  EXPECT_FALSE(ParseSaslMechanism(""));
}

}  // namespace
}  // namespace petrel::smtp
