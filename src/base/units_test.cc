#include "base/units.h"

#include <gtest/gtest.h>

namespace petrel {
namespace {

TEST(ParseDuration, Units) {
  EXPECT_EQ(ParseDuration("90s").value(), Seconds(90));
  EXPECT_EQ(ParseDuration("5m").value(), Seconds(300));
  EXPECT_EQ(ParseDuration("4h").value(), Seconds(4 * 3600));
  EXPECT_EQ(ParseDuration("5d").value(), Seconds(5 * 86400));
  EXPECT_EQ(ParseDuration("0").value(), Seconds(0));
}

TEST(ParseDuration, Errors) {
  EXPECT_FALSE(ParseDuration("").has_value());
  EXPECT_FALSE(ParseDuration("5").has_value());
  EXPECT_FALSE(ParseDuration("5x").has_value());
  EXPECT_FALSE(ParseDuration("-5s").has_value());
  EXPECT_FALSE(ParseDuration("99999999999999999999s").has_value());
  EXPECT_FALSE(ParseDuration("9999999999d").has_value());
}

TEST(ParseSize, Units) {
  EXPECT_EQ(ParseSize("1048576").value(), 1048576u);
  EXPECT_EQ(ParseSize("50MiB").value(), 50u * 1024 * 1024);
  EXPECT_EQ(ParseSize("2KiB").value(), 2048u);
  EXPECT_FALSE(ParseSize("50MB").has_value());
  EXPECT_FALSE(ParseSize("MiB").has_value());
  EXPECT_FALSE(ParseSize("99999999999GiB").has_value());
}

TEST(FormatDuration, RoundTrips) {
  EXPECT_EQ(FormatDuration(Seconds(300)), "5m");
  EXPECT_EQ(FormatDuration(Seconds(61)), "61s");
  EXPECT_EQ(FormatDuration(Seconds(86400)), "1d");
}

}  // namespace
}  // namespace petrel
