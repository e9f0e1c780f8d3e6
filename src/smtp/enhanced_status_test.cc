#include "smtp/enhanced_status.h"

#include <gtest/gtest.h>

namespace petrel::smtp {
namespace {

TEST(EnhancedStatus, ParsesClassSubjectDetail) {
  EXPECT_EQ(ParseEnhancedStatus("5.1.1"), (EnhancedStatus{5, 1, 1}));
  EXPECT_EQ(ParseEnhancedStatus("2.0.0"), (EnhancedStatus{2, 0, 0}));
  EXPECT_EQ(ParseEnhancedStatus("4.7.999"), (EnhancedStatus{4, 7, 999}));
  EXPECT_EQ(ParseEnhancedStatus("5.999.10"), (EnhancedStatus{5, 999, 10}));
}

TEST(EnhancedStatus, RefusesWhatIsNotOne) {
  for (const char* bad :
       {"",        "5",        "5.1",      "5.1.",   "5..1",
        ".1.1",    "3.0.0",    "1.0.0",    "55.1.1", "5.01.1",
        "5.1.01",  "5.1000.1", "5.1.1000", "5.1.1 ", " 5.1.1",
        "5.1.1.1", "5.a.1",    "5.1.-1",   "5,1,1",  "x.1.1"}) {
    EXPECT_FALSE(ParseEnhancedStatus(bad).has_value()) << bad;
  }
}

TEST(EnhancedStatus, ToStringRoundTrips) {
  EXPECT_EQ((EnhancedStatus{5, 1, 10}).ToString(), "5.1.10");
  EXPECT_EQ(ParseEnhancedStatus("4.4.7")->ToString(), "4.4.7");
}

TEST(EnhancedStatus, SplitTakesTheLeadingStatus) {
  std::string_view rest;
  EXPECT_EQ(SplitEnhancedStatus("5.1.1 User unknown", rest),
            (EnhancedStatus{5, 1, 1}));
  EXPECT_EQ(rest, "User unknown");
  EXPECT_EQ(SplitEnhancedStatus("2.0.0", rest), (EnhancedStatus{2, 0, 0}));
  EXPECT_EQ(rest, "");
  EXPECT_EQ(SplitEnhancedStatus("2.0.0  two spaces", rest),
            (EnhancedStatus{2, 0, 0}));
  EXPECT_EQ(rest, " two spaces");  // only one space belongs to the status
}

TEST(EnhancedStatus, SplitLeavesRestAloneWithoutStatus) {
  std::string_view rest = "untouched";
  EXPECT_FALSE(SplitEnhancedStatus("Ok", rest).has_value());
  EXPECT_FALSE(SplitEnhancedStatus("5.1.1x rest", rest).has_value());
  EXPECT_FALSE(SplitEnhancedStatus("5.1.1\tx", rest).has_value());
  EXPECT_FALSE(SplitEnhancedStatus("", rest).has_value());
  EXPECT_FALSE(SplitEnhancedStatus("5.1234567890.1 x", rest).has_value());
  EXPECT_EQ(rest, "untouched");
}

}  // namespace
}  // namespace petrel::smtp
