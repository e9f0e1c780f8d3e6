#include "smtp/address.h"

#include <gtest/gtest.h>

#include <string>

#include "smtp/limits.h"
#include "smtp/split_test_util.h"

namespace petrel::smtp {
namespace {

using testing::Escape;
using testing::ReplyLine;

// A valid domain of exactly `octets` octets (labels of at most 63).
std::string DomainOf(std::size_t octets) {
  std::string out;
  while (out.size() < octets) {
    if (!out.empty()) out += '.';
    const std::size_t left = octets - out.size();
    // Never leave a lone dot or an empty last label.
    std::size_t label = left > 63 ? 63 : left;
    if (left > 63 && left - 63 < 2) label = 61;
    out += std::string(label, static_cast<char>('a' + out.size() % 26));
  }
  return out;
}

std::string Recipient(std::string_view path, bool utf8 = false) {
  auto result = ParsePath(path, PathRole::kRecipient, utf8);
  if (!result) return ReplyLine(result.error());
  if (!*result) return "null";
  return (*result)->local_part + " @ " + (*result)->domain;
}

std::string Sender(std::string_view path, bool utf8 = false) {
  auto result = ParsePath(path, PathRole::kSender, utf8);
  if (!result) return ReplyLine(result.error());
  if (!*result) return "null";
  return (*result)->local_part + " @ " + (*result)->domain;
}

constexpr std::string_view kBadRecipient =
    "501 5.1.3 Bad recipient address syntax";
constexpr std::string_view kBadSender = "501 5.1.7 Bad sender address syntax";

TEST(DomainOf, BuildsWhatItSays) {
  for (std::size_t n : {1, 63, 64, 65, 189, 252, 255, 256}) {
    EXPECT_EQ(DomainOf(n).size(), n);
    EXPECT_TRUE(IsValidDomain(DomainOf(n), false) || n > 255) << n;
  }
}

TEST(ParsePath, PlainMailbox) {
  EXPECT_EQ(Recipient("<user@example.org>"), "user @ example.org");
  EXPECT_EQ(Sender("<first.last+tag@sub.example.org>"),
            "first.last+tag @ sub.example.org");
  EXPECT_EQ(Recipient("<!#$%&'*+-/=?^_`{|}~@x.example>"),
            "!#$%&'*+-/=?^_`{|}~ @ x.example");
  EXPECT_EQ(Recipient("<a@localhost>"), "a @ localhost");
  EXPECT_EQ(Recipient("<A@EXAMPLE.ORG>"), "A @ EXAMPLE.ORG");
}

TEST(ParsePath, NullPathForSenderOnly) {
  EXPECT_EQ(Sender("<>"), "null");
  EXPECT_EQ(Recipient("<>"), kBadRecipient);
}

TEST(ParsePath, BracketsRequired) {
  for (std::string_view bad :
       {"", "<", ">", "a@b.example", "<a@b.example", "a@b.example>",
        "<<a@b.example>>", " <a@b.example>", "<a@b.example> "}) {
    EXPECT_EQ(Recipient(bad), kBadRecipient) << bad;
    EXPECT_EQ(Sender(bad), kBadSender) << bad;
  }
}

TEST(ParsePath, DotStringSyntax) {
  for (std::string_view bad : {"<.a@x.example>",
                               "<a.@x.example>",
                               "<a..b@x.example>",
                               "<a b@x.example>",
                               "<a@>",
                               "<@x.example>",
                               "<a>",
                               "<a@b@c.example>",
                               "<(comment)a@x.example>",
                               "<a,b@x.example>",
                               "<a[@x.example>",
                               "<a\\b@x.example>",
                               "<a\"b@x.example>",
                               "<a@x.example.>",
                               "<a@.x.example>",
                               "<a@x..example>",
                               "<a@-x.example>",
                               "<a@x-.example>",
                               "<a@x_y.example>",
                               "<a@x.example:25>"}) {
    EXPECT_EQ(Recipient(bad), kBadRecipient) << bad;
  }
}

TEST(ParsePath, QuotedLocalParts) {
  EXPECT_EQ(Recipient("<\"a b\"@x.example>"), "\"a b\" @ x.example");
  EXPECT_EQ(Recipient("<\"a\\\"b\"@x.example>"), "\"a\\\"b\" @ x.example");
  EXPECT_EQ(Recipient("<\"a\\\\b\"@x.example>"), "\"a\\\\b\" @ x.example");
  EXPECT_EQ(Recipient("<\"a>@b,c\"@x.example>"), "\"a>@b,c\" @ x.example");
  EXPECT_EQ(Recipient("<\"\"@x.example>"), "\"\" @ x.example");
  EXPECT_EQ(Recipient("<\"\\ \"@x.example>"), "\"\\ \" @ x.example");
  for (std::string_view bad :
       {"<\"ab@x.example>", "<\"a\"b@x.example>", "<a\"b\"@x.example>",
        "<\"a\tb\"@x.example>", "<\"a\\\"@x.example>",
        "<\"a\\\x01\"@x.example>", "<\"a\"\"b\"@x.example>",
        "<\"a\".b@x.example>"}) {
    EXPECT_EQ(Recipient(bad), kBadRecipient) << Escape(bad);
  }
}

TEST(Mailbox, UnquotedLocalPart) {
  auto mailbox = [](std::string_view text) {
    return *ParseMailbox(text, PathRole::kRecipient, false);
  };
  EXPECT_EQ(mailbox("\"a b\"@x.example").UnquotedLocalPart(), "a b");
  EXPECT_EQ(mailbox("\"a\\\"b\"@x.example").UnquotedLocalPart(), "a\"b");
  EXPECT_EQ(mailbox("\"a\\\\b\"@x.example").UnquotedLocalPart(), "a\\b");
  EXPECT_EQ(mailbox("a.b@x.example").UnquotedLocalPart(), "a.b");
  EXPECT_EQ(mailbox("a@X.Example.ORG").DomainLower(), "x.example.org");
  EXPECT_EQ(mailbox("a@X.Example.ORG").ToString(), "a@X.Example.ORG");
  EXPECT_FALSE(mailbox("a@x.example").IsAddressLiteral());
  EXPECT_TRUE(mailbox("a@[192.0.2.1]").IsAddressLiteral());
  EXPECT_FALSE(mailbox("a@x.example").NeedsSmtpUtf8());
}

TEST(ParsePath, AddressLiterals) {
  for (std::string_view ok :
       {"[192.0.2.1]", "[0.0.0.0]", "[255.255.255.255]", "[1.2.3.04]",
        "[IPv6:::1]", "[ipv6:::1]", "[IPv6:::]", "[IPv6:2001:db8::1]",
        "[IPv6:1:2:3:4:5:6:7:8]", "[IPv6:1::8]", "[IPv6:1:2:3::6:7:8]",
        "[IPv6:::ffff:192.0.2.1]", "[IPv6:1:2:3:4:5:6:192.0.2.1]",
        "[IPv6:1::4:5:6:192.0.2.1]", "[IPv6:FFFF::abcd]", "[x-tag:some-text]",
        "[tag:a.b!c~]", "[-tag:x]"}) {  // Ldh-str may start with '-'

    EXPECT_EQ(Recipient("<a@" + std::string(ok) + ">"),
              "a @ " + std::string(ok));
    EXPECT_TRUE(IsValidAddressLiteral(ok)) << ok;
  }
  for (std::string_view bad : {"[]",
                               "[192.0.2]",
                               "[192.0.2.1.5]",
                               "[256.0.0.1]",
                               "[1.2.3.1234]",
                               "[1..2.3]",
                               "[ 1.2.3.4]",
                               "[1.2.3.4",
                               "1.2.3.4]",
                               "[IPv6:]",
                               "[IPv6:1]",
                               "[IPv6:1:2:3:4:5:6:7]",
                               "[IPv6:1:2:3:4:5:6:7:8:9]",
                               "[IPv6:1:2:3:4:5:6:7::]",
                               "[IPv6:::1:2:3:4:5:6:7]",
                               "[IPv6:1::2::3]",
                               "[IPv6::::]",
                               "[IPv6:12345::]",
                               "[IPv6:g::]",
                               "[IPv6::1]",
                               "[IPv6:1:]",
                               "[IPv6:1:2:3:4:5:192.0.2.1]",
                               "[IPv6:1:2:3:4:5::192.0.2.1]",
                               "[IPv6:::1.2.3]",
                               "[IPv6:192.0.2.1::]",
                               "[:text]",
                               "[tag:]",
                               "[tag-:x]",
                               "[t_g:x]",
                               "[tag:a]b]",
                               "[tag:a\\b]",
                               "[tag:a b]",
                               "[tag:a[b]"}) {
    EXPECT_EQ(Recipient("<a@" + std::string(bad) + ">"), kBadRecipient) << bad;
    EXPECT_FALSE(IsValidAddressLiteral(bad)) << bad;
  }
}

TEST(ParsePath, SourceRouteIsDropped) {
  EXPECT_EQ(Recipient("<@a.example,@b.example:u@c.example>"), "u @ c.example");
  EXPECT_EQ(Sender("<@a.example:u@c.example>"), "u @ c.example");
  EXPECT_EQ(Recipient("<@a.example:Postmaster>"), "Postmaster @ ");
  for (std::string_view bad :
       {"<@:u@c.example>", "<@a.example u@c.example>", "<@a..b:u@c.example>",
        "<@a.example,:u@c.example>", "<@a.example,b.example:u@c.example>",
        "<@a.example:>", "<@[1.2.3.4]:u@c.example>", "<@a.example>"}) {
    EXPECT_EQ(Recipient(bad), kBadRecipient) << bad;
  }
}

TEST(ParsePath, PostmasterWithoutDomainForRecipientOnly) {
  EXPECT_EQ(Recipient("<Postmaster>"), "Postmaster @ ");
  EXPECT_EQ(Recipient("<postMASTER>"), "postMASTER @ ");
  EXPECT_EQ(Recipient("<Postmaster@x.example>"), "Postmaster @ x.example");
  EXPECT_EQ(Sender("<Postmaster>"), kBadSender);
  EXPECT_EQ(Recipient("<Postmasters>"), kBadRecipient);
}

TEST(Limits, LocalPartAt64AndOnePast) {
  const std::string at(kMaxLocalPartOctets, 'l');
  const std::string past(kMaxLocalPartOctets + 1, 'l');
  EXPECT_EQ(Recipient("<" + at + "@x.example>"), at + " @ x.example");
  EXPECT_EQ(Recipient("<" + past + "@x.example>"),
            "501 5.1.3 Local part too long");
  EXPECT_EQ(Sender("<" + past + "@x.example>"),
            "501 5.1.7 Local part too long");
  // Quotes count: they are part of the local-part on the wire.
  const std::string quoted = "\"" + std::string(62, 'q') + "\"";
  EXPECT_EQ(Recipient("<" + quoted + "@x.example>"), quoted + " @ x.example");
  EXPECT_EQ(Recipient("<\"" + std::string(63, 'q') + "\"@x.example>"),
            "501 5.1.3 Local part too long");
  EXPECT_TRUE(ParseMailbox(at + "@x.example", PathRole::kRecipient, false));
  EXPECT_EQ(
      ReplyLine(ParseMailbox(past + "@x.example", PathRole::kRecipient, false)
                    .error()),
      "501 5.1.3 Local part too long");
}

TEST(Limits, DomainAt255AndOnePast) {
  const std::string at = DomainOf(kMaxDomainOctets);
  const std::string past = DomainOf(kMaxDomainOctets + 1);
  EXPECT_TRUE(IsValidDomain(at, false));
  EXPECT_FALSE(IsValidDomain(past, false));
  auto ok = ParseMailbox("a@" + at, PathRole::kRecipient, false);
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(ok->domain, at);
  EXPECT_EQ(
      ReplyLine(ParseMailbox("a@" + past, PathRole::kRecipient, false).error()),
      "501 5.1.3 Domain too long");
  EXPECT_EQ(
      ReplyLine(ParseMailbox("a@" + past, PathRole::kSender, false).error()),
      "501 5.1.7 Domain too long");
  // In a path a 256-octet domain also makes the path too long; the reply
  // names the more specific limit.
  EXPECT_EQ(Recipient("<a@" + past + ">"), "501 5.1.3 Domain too long");
  EXPECT_EQ(Sender("<a@" + past + ">"), "501 5.1.7 Domain too long");
  // A label is at most 63 octets (RFC 1035).
  EXPECT_TRUE(IsValidDomain(std::string(63, 'a') + ".example", false));
  EXPECT_FALSE(IsValidDomain(std::string(64, 'a') + ".example", false));
}

TEST(Limits, PathAt256AndOnePast) {
  // "<" + 64 + "@" + 189 + ">" = 256 octets.
  const std::string at = "<" + std::string(64, 'l') + "@" + DomainOf(189) + ">";
  const std::string past =
      "<" + std::string(64, 'l') + "@" + DomainOf(190) + ">";
  ASSERT_EQ(at.size(), kMaxPathOctets);
  ASSERT_EQ(past.size(), kMaxPathOctets + 1);
  EXPECT_NE(Recipient(at).substr(0, 3), "501");
  EXPECT_NE(Sender(at).substr(0, 3), "501");
  EXPECT_EQ(Recipient(past), "501 5.1.3 Path too long");
  EXPECT_EQ(Sender(past), "501 5.1.7 Path too long");
  // Whatever is in it: a source route counts too.
  const std::string routed = "<@r.example:" + std::string(60, 'l') + "@" +
                             DomainOf(kMaxPathOctets + 1 - 12 - 60 - 2) + ">";
  ASSERT_EQ(routed.size(), kMaxPathOctets + 1);
  EXPECT_EQ(Recipient(routed), "501 5.1.3 Path too long");
  EXPECT_EQ(Recipient("<" + std::string(1000, 'x') + ">"),
            "501 5.1.3 Path too long");
}

TEST(Smtputf8, OnlyWhenAllowed) {
  const std::string path =
      "<\xCE\xB4\xCE\xBF\xCE\xBA\xCE\xB9\xCE\xBC\xCE\xAE@"
      "\xCF\x80\xCE\xB1\xCF\x81\xCE\xAC\xCE\xB4\xCE\xB5\xCE\xB9\xCE\xB3\xCE\xBC"
      "\xCE\xB1.example>";
  EXPECT_EQ(Recipient(path),
            "553 5.6.7 SMTPUTF8 is required for a non-ASCII address");
  EXPECT_EQ(Sender(path),
            "553 5.6.7 SMTPUTF8 is required for a non-ASCII address");
  EXPECT_NE(Recipient(path, true).substr(0, 3), "553");
  EXPECT_NE(Recipient(path, true).substr(0, 3), "501");
  auto mailbox = ParsePath(path, PathRole::kRecipient, true);
  EXPECT_TRUE((*mailbox)->NeedsSmtpUtf8());
  // Only the local part, or only the domain.
  EXPECT_EQ(Recipient("<j\xC3\xB6rg@x.example>", true),
            "j\xC3\xB6rg @ x.example");
  EXPECT_EQ(Recipient("<a@b\xC3\xBC"
                      "cher.example>",
                      true),
            "a @ b\xC3\xBC"
            "cher.example");
  EXPECT_EQ(Recipient("<\"j\xC3\xB6 rg\"@x.example>", true),
            "\"j\xC3\xB6 rg\" @ x.example");
  EXPECT_EQ(Recipient("<j\xC3\xB6rg@x.example>", false).substr(0, 9),
            "553 5.6.7");
  // Must be well-formed UTF-8, and no ASCII junk slips in with it.
  for (std::string_view bad :
       {"<\xFF@x.example>", "<a\xC3@x.example>", "<\xC0\xAF@x.example>",
        "<a@\xED\xA0\x80.example>", "<a@b\xC3\xBC_.example>",
        "<a@-\xC3\xBC.example>", "<\xE2\x80@x.example>"}) {
    EXPECT_EQ(Recipient(bad, true), kBadRecipient) << Escape(bad);
    EXPECT_EQ(Recipient(bad, false).substr(0, 9), "553 5.6.7") << Escape(bad);
  }
  EXPECT_TRUE(
      IsValidDomain("b\xC3\xBC"
                    "cher.example",
                    true));
  EXPECT_FALSE(
      IsValidDomain("b\xC3\xBC"
                    "cher.example",
                    false));
}

TEST(ParseMailbox, BareMailboxOnly) {
  EXPECT_TRUE(ParseMailbox("a@b.example", PathRole::kRecipient, false));
  EXPECT_TRUE(ParseMailbox("\"a b\"@[IPv6:::1]", PathRole::kSender, false));
  for (std::string_view bad :
       {"", "<a@b.example>", "a", "Postmaster", "a@", "@b", "a@b.example "}) {
    auto result = ParseMailbox(bad, PathRole::kSender, false);
    ASSERT_FALSE(result.has_value()) << bad;
    EXPECT_EQ(ReplyLine(result.error()), kBadSender);
  }
}

TEST(IsValidDomain, Rules) {
  for (std::string_view ok : {"a", "example.org", "a-b.c", "1.2.3.4",
                              "xn--bcher-kva.example", "A1.B2"}) {
    EXPECT_TRUE(IsValidDomain(ok, false)) << ok;
  }
  for (std::string_view bad : {"", ".", "a.", ".a", "a..b", "-a", "a-", "a_b",
                               "a b", "[1.2.3.4]", "a.b.", "a/b"}) {
    EXPECT_FALSE(IsValidDomain(bad, false)) << bad;
    EXPECT_FALSE(IsValidDomain(bad, true)) << bad;
  }
}

}  // namespace
}  // namespace petrel::smtp
