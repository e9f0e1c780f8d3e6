#include "smtp/header_scanner.h"

#include <gtest/gtest.h>

#include <string>

#include "smtp/split_test_util.h"

namespace petrel::smtp {
namespace {

using testing::Chunks;
using testing::ExpectSameForEverySplit;

std::string Scan(const Chunks& chunks) {
  HeaderScanner scanner;
  for (std::string_view chunk : chunks) scanner.Feed(chunk);
  return std::string(scanner.in_header() ? "header" : "body") +
         " received=" + std::to_string(scanner.received_count()) +
         " octets=" + std::to_string(scanner.header_octets()) +
         " lines=" + std::to_string(scanner.header_lines());
}

TEST(HeaderScanner, CountsReceivedFieldsInTheHeaderOnly) {
  const std::string_view message =
      "Received: from a by b\r\n"  // 23
      "received: from c\r\n"       // 18
      "Subject: hi\r\n"            // 13
      "\r\n"
      "Received: in the body\r\n";
  EXPECT_EQ(ExpectSameForEverySplit(message, Scan),
            "body received=2 octets=54 lines=3");
}

TEST(HeaderScanner, ContinuationLines) {
  EXPECT_EQ(
      ExpectSameForEverySplit(
          "Received: from a\r\n\tby b\r\n  ; date\r\nTo: x\r\n\r\n", Scan),
      "body received=1 octets=42 lines=4");
}

TEST(HeaderScanner, FieldNamesThatAreNotReceived) {
  EXPECT_EQ(Scan({"Received-SPF: pass\r\nXReceived: x\r\nReceive: x\r\n"
                  "Receivedd: x\r\nX-Received: x\r\n\r\n"}),
            "body received=0 octets=75 lines=5");
  EXPECT_EQ(Scan({"RECEIVED: x\r\nReceived : obsolete\r\nReceived\t: x\r\n"}),
            "header received=3 octets=48 lines=3");
}

TEST(HeaderScanner, ANonHeaderLineStartsTheBody) {
  // As Postfix: "Received:" after a line that is not a field is body.
  EXPECT_EQ(ExpectSameForEverySplit(
                "Received: a\r\nnot a header\r\nReceived: b\r\n", Scan),
            "body received=1 octets=13 lines=1");
  EXPECT_EQ(Scan({"From someone\r\nReceived: b\r\n\r\n"}),
            "body received=0 octets=0 lines=0");
  EXPECT_EQ(Scan({"NoColon\r\nReceived: b\r\n"}),
            "body received=0 octets=0 lines=0");
  EXPECT_EQ(Scan({": empty name\r\nReceived: b\r\n"}),
            "body received=0 octets=0 lines=0");
  EXPECT_EQ(Scan({" leading continuation\r\nReceived: b\r\n"}),
            "body received=0 octets=0 lines=0");
  EXPECT_EQ(Scan({"Sub\xC3\xA9ject: x\r\nReceived: b\r\n"}),
            "body received=0 octets=0 lines=0");
  EXPECT_EQ(Scan({"A: b\r\n\rReceived: x\r\n"}),
            "body received=0 octets=6 lines=1");
}

TEST(HeaderScanner, EmptyLineForms) {
  EXPECT_EQ(Scan({"A: b\r\n\r\n"}), "body received=0 octets=6 lines=1");
  EXPECT_EQ(Scan({"A: b\n\nReceived: x\n"}),
            "body received=0 octets=5 lines=1");
  EXPECT_EQ(Scan({"\r\nReceived: x\r\n"}), "body received=0 octets=0 lines=0");
  EXPECT_EQ(Scan({""}), "header received=0 octets=0 lines=0");
  EXPECT_EQ(Scan({"Received: partial"}), "header received=1 octets=0 lines=0");
}

TEST(HeaderScanner, ManyReceivedFields) {
  std::string header;
  for (int i = 0; i < 60; ++i)
    header += "Received: from hop" + std::to_string(i) + "\r\n";
  HeaderScanner scanner;
  scanner.Feed(header + "\r\nbody\r\n");
  EXPECT_EQ(scanner.received_count(), 60);
  EXPECT_EQ(scanner.header_octets(), header.size());
  EXPECT_FALSE(scanner.in_header());
}

TEST(HeaderScanner, SameForEverySplit) {
  for (std::string_view input :
       {"Received: a\r\nReceived : b\r\n c\r\n\r\nReceived: d\r\n",
        "RECEIVED:x\r\nX: y\n\r\n", "Receivedx: a\r\n\tReceived: b\r\n"}) {
    ExpectSameForEverySplit(input, Scan);
  }
}

}  // namespace
}  // namespace petrel::smtp
