#include "delivery/dsn.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "spool/spool.h"

namespace petrel::delivery {
namespace {

// --- A tiny MIME reader, strict about what BuildDsn promises. ---

std::string Lower(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return s;
}

// Every line ends in CRLF, no bare CR or LF, at most 998 octets.
void ExpectWellFormedLines(const std::string& m) {
  ASSERT_GE(m.size(), 2u);
  EXPECT_EQ(m.substr(m.size() - 2), "\r\n");
  std::size_t start = 0;
  for (std::size_t i = 0; i < m.size(); ++i) {
    if (m[i] == '\r') {
      ASSERT_TRUE(i + 1 < m.size() && m[i + 1] == '\n') << "bare CR at " << i;
      EXPECT_LE(i - start, 998u) << "long line at " << start;
      ++i;
      start = i + 1;
    } else {
      ASSERT_NE(m[i], '\n') << "bare LF at " << i;
    }
  }
}

struct Entity {
  std::vector<std::pair<std::string, std::string>> fields;  // unfolded
  std::string body;

  // The value of the only field `name`; fails if absent or repeated.
  std::string Get(const std::string& name) const {
    std::string value;
    int n = 0;
    for (const auto& [k, v] : fields) {
      if (Lower(k) == Lower(name)) {
        value = v;
        ++n;
      }
    }
    EXPECT_EQ(n, 1) << name;
    return value;
  }
  bool Has(const std::string& name) const {
    return std::any_of(fields.begin(), fields.end(), [&](const auto& f) {
      return Lower(f.first) == Lower(name);
    });
  }
};

// Header fields up to the first empty line (unfolded: CRLF before WSP
// removed), then the body. A field line must be "name: value".
std::vector<std::pair<std::string, std::string>> ParseFields(
    const std::string& text) {
  std::vector<std::pair<std::string, std::string>> fields;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t eol = text.find("\r\n", pos);
    if (eol == std::string::npos) eol = text.size();
    const std::string line = text.substr(pos, eol - pos);
    pos = eol + 2;
    if (line.empty()) continue;
    if (line[0] == ' ' || line[0] == '\t') {
      EXPECT_FALSE(fields.empty());
      EXPECT_NE(line.find_first_not_of(" \t"), std::string::npos)
          << "white-space-only continuation line";
      if (!fields.empty()) fields.back().second += line;
      continue;
    }
    const std::size_t colon = line.find(':');
    EXPECT_NE(colon, std::string::npos) << "not a field: " << line;
    if (colon == std::string::npos) continue;
    std::string value = line.substr(colon + 1);
    if (!value.empty() && value[0] == ' ') value.erase(0, 1);
    fields.emplace_back(line.substr(0, colon), value);
  }
  return fields;
}

Entity ParseEntity(const std::string& text) {
  Entity e;
  std::size_t split = text.find("\r\n\r\n");
  if (split == std::string::npos) {
    e.fields = ParseFields(text);
    return e;
  }
  e.fields = ParseFields(text.substr(0, split + 2));
  e.body = text.substr(split + 4);
  return e;
}

std::string BoundaryOf(const std::string& content_type) {
  const std::string key = "boundary=\"";
  const std::size_t at = content_type.find(key);
  if (at == std::string::npos) return "";
  const std::size_t end = content_type.find('"', at + key.size());
  return content_type.substr(at + key.size(), end - at - key.size());
}

// The parts of a multipart body: between "--b" lines, the CRLF before each
// delimiter belonging to it (RFC 2046 5.1.1); ends at "--b--".
std::vector<std::string> SplitMultipart(const std::string& body,
                                        const std::string& boundary) {
  std::vector<std::string> parts;
  const std::string delim = "\r\n--" + boundary;
  std::string text = "\r\n" + body;  // the first delimiter has no CRLF
  std::size_t pos = text.find(delim + "\r\n");
  EXPECT_NE(pos, std::string::npos);
  bool closed = false;
  while (pos != std::string::npos) {
    const std::size_t start = pos + delim.size();
    if (text.compare(start, 2, "--") == 0) {
      closed = true;
      EXPECT_EQ(text.substr(start + 2), "\r\n");  // no epilogue
      break;
    }
    const std::size_t content = start + 2;
    const std::size_t next = text.find(delim, content);
    EXPECT_NE(next, std::string::npos);
    if (next == std::string::npos) break;
    parts.push_back(text.substr(content, next - content));
    pos = next;
  }
  EXPECT_TRUE(closed);
  return parts;
}

// The report's groups: per-message fields, then one per recipient.
std::vector<Entity> SplitGroups(const std::string& status) {
  std::vector<Entity> groups;
  std::size_t pos = 0;
  while (pos < status.size()) {
    std::size_t end = status.find("\r\n\r\n", pos);
    const std::string block = end == std::string::npos
                                  ? status.substr(pos)
                                  : status.substr(pos, end + 2 - pos);
    Entity e;
    e.fields = ParseFields(block);
    groups.push_back(e);
    if (end == std::string::npos) break;
    pos = end + 4;
  }
  return groups;
}

struct ParsedDsn {
  Entity top;
  std::vector<Entity> parts;
  std::vector<Entity> groups;  // of the delivery-status part
};

ParsedDsn Parse(const Dsn& dsn) {
  ParsedDsn p;
  ExpectWellFormedLines(dsn.message);
  p.top = ParseEntity(dsn.message);
  const std::string boundary = BoundaryOf(p.top.Get("Content-Type"));
  EXPECT_FALSE(boundary.empty());
  for (const std::string& part : SplitMultipart(p.top.body, boundary)) {
    p.parts.push_back(ParseEntity(part));
  }
  if (p.parts.size() >= 2) p.groups = SplitGroups(p.parts[1].body);
  return p;
}

const std::string kHeader =
    "Received: from client.example.org (client.example.org [192.0.2.9])\r\n"
    "\tby mx.example.test with ESMTP id Q1\r\n"
    "From: Alice <alice@example.org>\r\n"
    "To: bob@example.net\r\n"
    "Subject: alskjdf\r\n"
    "Message-ID: <m1@example.org>\r\n";
const std::string kBody = "Hello Bob,\r\n\r\nsee you.\r\n";

DsnRequest FailureRequest() {
  DsnRequest r;
  r.reporting_mta = "mx.example.test";
  r.queue_id = "Q1";
  r.sender = "alice@example.org";
  r.envid = "ENV-42";
  r.arrival_unix = 1700000000;
  r.now_unix = 1700000100;
  r.content = "";
  DsnRecipientReport a;
  a.final_recipient = "bob@example.net";
  a.original_type = "rfc822";
  a.original_address = "Bob@Example.NET";
  a.action = DsnAction::kFailed;
  a.status = {5, 1, 1};
  a.remote_mta = "mx.example.net[192.0.2.25]";
  a.diagnostic_code = "smtp; 550 5.1.1 <bob@example.net>: Recipient unknown";
  a.last_attempt_unix = 1700000090;
  r.recipients.push_back(a);
  DsnRecipientReport b;
  b.final_recipient = "no1@example.net";
  b.action = DsnAction::kFailed;
  b.status = {5, 1, 3};
  b.diagnostic_code =
      "x-petrel; One or more arguments in the recipient was detected as "
      "being invalid";
  r.recipients.push_back(b);
  return r;
}

TEST(DsnTest, FailureReportFieldByField) {
  const std::string content = kHeader + "\r\n" + kBody;
  DsnRequest req = FailureRequest();
  req.content = content;
  const Dsn dsn = BuildDsn(req);
  const ParsedDsn p = Parse(dsn);

  EXPECT_EQ(p.top.Get("From"),
            "\"Mail Delivery System\" <MAILER-DAEMON@mx.example.test>");
  EXPECT_EQ(p.top.Get("To"), "<alice@example.org>");
  EXPECT_EQ(p.top.Get("Subject"), "Undelivered Mail Returned to Sender");
  EXPECT_EQ(p.top.Get("Date"), "Tue, 14 Nov 2023 22:15:00 +0000");
  EXPECT_EQ(p.top.Get("Message-ID"), dsn.message_id);
  EXPECT_EQ(dsn.message_id, "<20231114221500.Q1.failed@mx.example.test>");
  EXPECT_EQ(p.top.Get("MIME-Version"), "1.0");
  EXPECT_EQ(p.top.Get("Auto-Submitted"), "auto-replied");
  const std::string ct = p.top.Get("Content-Type");
  EXPECT_EQ(ct.rfind("multipart/report; report-type=delivery-status;", 0), 0u)
      << ct;
  EXPECT_FALSE(dsn.eight_bit);
  EXPECT_FALSE(dsn.smtputf8);

  ASSERT_EQ(p.parts.size(), 3u);
  EXPECT_EQ(p.parts[0].Get("Content-Type"), "text/plain; charset=us-ascii");
  const std::string& text = p.parts[0].body;
  EXPECT_NE(text.find("This is the mail system at host mx.example.test."),
            std::string::npos);
  EXPECT_NE(text.find("I'm sorry to have to inform you"), std::string::npos);
  EXPECT_NE(text.find("<bob@example.net>: host mx.example.net said: 550 "
                      "5.1.1"),
            std::string::npos)
      << text;
  // Seed 003: the bad recipient gets a clear, standard report.
  EXPECT_NE(text.find("<no1@example.net>: One or more arguments in the"),
            std::string::npos)
      << text;

  EXPECT_EQ(p.parts[1].Get("Content-Type"), "message/delivery-status");
  ASSERT_EQ(p.groups.size(), 3u);
  const Entity& msg = p.groups[0];
  EXPECT_EQ(msg.Get("Reporting-MTA"), "dns; mx.example.test");
  EXPECT_EQ(msg.Get("Original-Envelope-Id"), "ENV-42");
  EXPECT_EQ(msg.Get("Arrival-Date"), "Tue, 14 Nov 2023 22:13:20 +0000");
  EXPECT_EQ(msg.Get("X-Petrel-Queue-ID"), "Q1");

  const Entity& r1 = p.groups[1];
  EXPECT_EQ(r1.Get("Original-Recipient"), "rfc822; Bob@Example.NET");
  EXPECT_EQ(r1.Get("Final-Recipient"), "rfc822; bob@example.net");
  EXPECT_EQ(r1.Get("Action"), "failed");
  EXPECT_EQ(r1.Get("Status"), "5.1.1");
  EXPECT_EQ(r1.Get("Remote-MTA"), "dns; mx.example.net");
  EXPECT_EQ(r1.Get("Diagnostic-Code"),
            "smtp; 550 5.1.1 <bob@example.net>: Recipient unknown");
  EXPECT_EQ(r1.Get("Last-Attempt-Date"), "Tue, 14 Nov 2023 22:14:50 +0000");
  EXPECT_FALSE(r1.Has("Will-Retry-Until"));

  const Entity& r2 = p.groups[2];
  EXPECT_FALSE(r2.Has("Original-Recipient"));
  EXPECT_FALSE(r2.Has("Remote-MTA"));
  EXPECT_FALSE(r2.Has("Last-Attempt-Date"));
  EXPECT_EQ(r2.Get("Final-Recipient"), "rfc822; no1@example.net");
  EXPECT_EQ(r2.Get("Status"), "5.1.3");
  EXPECT_EQ(r2.Get("Diagnostic-Code"),
            "x-petrel; One or more arguments in the recipient was detected "
            "as being invalid");

  // RET unspecified: the header section only.
  EXPECT_EQ(p.parts[2].Get("Content-Type"), "text/rfc822-headers");
  EXPECT_EQ(p.parts[2].body, kHeader);
}

TEST(DsnTest, RetFullReturnsTheWholeMessage) {
  const std::string content = kHeader + "\r\n" + kBody;
  DsnRequest req = FailureRequest();
  req.ret = smtp::DsnRet::kFull;
  req.content = content;
  const ParsedDsn p = Parse(BuildDsn(req));
  ASSERT_EQ(p.parts.size(), 3u);
  EXPECT_EQ(p.parts[2].Get("Content-Type"), "message/rfc822");
  // The part's body (after its own empty header) is the message itself.
  const std::string& whole = p.parts[2].body;
  EXPECT_EQ(whole, content);
}

TEST(DsnTest, RetFullOverTheCapReturnsHeadersOnly) {
  std::string content = kHeader + "\r\n";
  while (content.size() <= kDsnMaxReturnedOctets) {
    content += std::string(70, 'x') + "\r\n";
  }
  DsnRequest req = FailureRequest();
  req.ret = smtp::DsnRet::kFull;
  req.content = content;
  const Dsn dsn = BuildDsn(req);
  const ParsedDsn p = Parse(dsn);
  ASSERT_EQ(p.parts.size(), 3u);
  EXPECT_EQ(p.parts[2].Get("Content-Type"), "text/rfc822-headers");
  EXPECT_EQ(p.parts[2].body, kHeader);
  EXPECT_NE(p.parts[0].body.find("only its header section is attached"),
            std::string::npos);
  EXPECT_LT(dsn.message.size(), 8u * 1024);

  // Exactly at the cap: returned whole.
  std::string exact = kHeader + "\r\n";
  while (exact.size() + 72 <= kDsnMaxReturnedOctets) {
    exact += std::string(70, 'y') + "\r\n";
  }
  exact += std::string(kDsnMaxReturnedOctets - exact.size() - 2, 'z') + "\r\n";
  ASSERT_EQ(exact.size(), kDsnMaxReturnedOctets);
  req.content = exact;
  const ParsedDsn q = Parse(BuildDsn(req));
  ASSERT_EQ(q.parts.size(), 3u);
  EXPECT_EQ(q.parts[2].Get("Content-Type"), "message/rfc822");
  EXPECT_EQ(q.parts[2].body, exact);
}

TEST(DsnTest, RetFullWithOverlongLineOrBareLfReturnsHeadersOnly) {
  DsnRequest req = FailureRequest();
  req.ret = smtp::DsnRet::kFull;
  const std::string long_line =
      kHeader + "\r\n" + std::string(2000, 'a') + "\r\n";
  req.content = long_line;
  ParsedDsn p = Parse(BuildDsn(req));
  ASSERT_EQ(p.parts.size(), 3u);
  EXPECT_EQ(p.parts[2].Get("Content-Type"), "text/rfc822-headers");

  const std::string bare_lf = kHeader + "\r\nline\nline\r\n";
  req.content = bare_lf;
  p = Parse(BuildDsn(req));
  ASSERT_EQ(p.parts.size(), 3u);
  EXPECT_EQ(p.parts[2].Get("Content-Type"), "text/rfc822-headers");
}

TEST(DsnTest, DelayAndSuccessNeverReturnTheBody) {
  const std::string content = kHeader + "\r\n" + kBody;
  DsnRequest req = FailureRequest();
  req.ret = smtp::DsnRet::kFull;
  req.content = content;
  req.recipients.resize(1);
  req.recipients[0].action = DsnAction::kDelayed;
  req.recipients[0].status = {4, 4, 1};
  req.recipients[0].diagnostic_code = "smtp; 451 4.4.1 try later";
  req.recipients[0].will_retry_until_unix = 1700000000 + 5 * 86400;
  req.now_unix = 1700000000 + 4 * 3600;
  Dsn dsn = BuildDsn(req);
  ParsedDsn p = Parse(dsn);
  EXPECT_EQ(p.top.Get("Subject"), "Delayed Mail (still being retried)");
  EXPECT_NE(dsn.message_id.find(".delayed@"), std::string::npos);
  ASSERT_EQ(p.parts.size(), 3u);
  EXPECT_NE(p.parts[0].body.find("THIS IS A WARNING ONLY"), std::string::npos);
  EXPECT_NE(p.parts[0].body.find("could not be delivered for 4.0 hours"),
            std::string::npos)
      << p.parts[0].body;
  EXPECT_NE(p.parts[0].body.find("It will be retried until Sun, 19 Nov 2023"),
            std::string::npos)
      << p.parts[0].body;
  ASSERT_EQ(p.groups.size(), 2u);
  EXPECT_EQ(p.groups[1].Get("Action"), "delayed");
  EXPECT_EQ(p.groups[1].Get("Status"), "4.4.1");
  EXPECT_EQ(p.groups[1].Get("Will-Retry-Until"),
            "Sun, 19 Nov 2023 22:13:20 +0000");
  EXPECT_EQ(p.parts[2].Get("Content-Type"), "text/rfc822-headers");
  EXPECT_EQ(p.parts[2].Get("Content-Description"), "Delayed Message Headers");

  req.recipients[0].action = DsnAction::kDelivered;
  req.recipients[0].status = {2, 0, 0};
  req.recipients[0].diagnostic_code = "smtp; 250 2.0.0 Ok: queued as X";
  dsn = BuildDsn(req);
  p = Parse(dsn);
  EXPECT_EQ(p.top.Get("Subject"), "Successful Mail Delivery Report");
  ASSERT_EQ(p.groups.size(), 2u);
  EXPECT_EQ(p.groups[1].Get("Action"), "delivered");
  EXPECT_FALSE(p.groups[1].Has("Will-Retry-Until"));
  EXPECT_NE(p.parts[0].body.find("<bob@example.net>: delivered via "
                                 "mx.example.net: 250 2.0.0 Ok"),
            std::string::npos)
      << p.parts[0].body;
  EXPECT_EQ(p.parts[2].Get("Content-Type"), "text/rfc822-headers");
}

TEST(DsnTest, HostileTextNeverBreaksTheStructure) {
  const std::string evil =
      std::string("smtp; 550 5.1.1 evil\r\nX-Injected: yes\r\n\r\n--") +
      "Q1.1700000100/mx.example.test\r\nContent-Type: text/html\r\n" +
      std::string("\0\x01\x7f\xff\xfe\xc3\x28 \xe2\x80\xa8 \xc2\x85 ", 16) +
      "caf\xc3\xa9 " + std::string(3000, 'A') + " " + std::string(100, ' ') +
      "end";
  std::string content = "Subject: hi\r\nX-Long: " + std::string(5000, 'h') +
                        "\r\nX-Nul: a" + std::string(1, '\0') +
                        "b\r\nX-Bare: a\rb\r\n" +
                        "\r\n--Q1.1700000100/mx.example.test\r\nbody\r\n";
  DsnRequest req = FailureRequest();
  req.content = content;
  req.envid = "E\r\nX-Injected: 1";
  req.sender = "alice@example.org\r\nX-Injected: 2";
  req.reporting_mta = "mx.example.test\r\nX-Injected: 3";
  for (DsnRecipientReport& r : req.recipients) {
    r.diagnostic_code = evil;
    r.remote_mta = "evil\r\nX-Injected: 4[192.0.2.1]";
    r.final_recipient += "\r\nX-Injected: 5";
    r.original_address = "x\r\n\r\nX-Injected: 6";
  }
  for (smtp::DsnRet ret : {smtp::DsnRet::kUnspecified, smtp::DsnRet::kFull}) {
    req.ret = ret;
    const Dsn dsn = BuildDsn(req);
    const ParsedDsn p = Parse(dsn);
    ASSERT_EQ(p.parts.size(), 3u);
    ASSERT_EQ(p.groups.size(), 3u);
    for (const Entity& e : {p.top, p.parts[0], p.parts[1], p.parts[2]}) {
      EXPECT_FALSE(e.Has("X-Injected"));
    }
    for (const Entity& g : p.groups) {
      EXPECT_FALSE(g.Has("X-Injected"));
      EXPECT_FALSE(g.Has("Content-Type"));
    }
    EXPECT_EQ(p.groups[1].Get("Action"), "failed");
    // The delivery-status part is 7-bit and has no control characters.
    for (char c : p.parts[1].body) {
      const auto u = static_cast<unsigned char>(c);
      EXPECT_TRUE(u < 0x80 && (u >= 0x20 || c == '\r' || c == '\n'))
          << static_cast<int>(u);
    }
    const std::string diag = p.groups[1].Get("Diagnostic-Code");
    EXPECT_EQ(diag.rfind("smtp; 550 5.1.1 evil X-Injected: yes", 0), 0u)
        << diag;
    EXPECT_LE(diag.size(), 1100u);  // cut at 1000 octets of text
    // Returned headers: the NUL and bare CR are gone, the long one cut.
    EXPECT_EQ(p.parts[2].body.find('\0'), std::string::npos);
    EXPECT_NE(p.parts[2].body.find("X-Nul: a?b\r\n"), std::string::npos);
    // The text part has UTF-8 (the diagnostic's): quoted-printable.
    EXPECT_EQ(p.parts[0].Get("Content-Transfer-Encoding"), "quoted-printable");
  }
}

// Random octets everywhere (fixed seed): the structure always holds.
TEST(DsnTest, RandomInputKeepsTheStructure) {
  std::mt19937 rng(20240601);
  auto random_text = [&](std::size_t max) {
    static const std::string kPieces[] = {
        "\r", "\n", "\r\n", " ", "\t", "--", "\xc3\xa9", std::string(1, '\0'),
        ":",  ";",  "\xff", "a", "Z",  "=",  "+"};
    std::string s;
    const std::size_t n = rng() % max;
    for (std::size_t i = 0; i < n; ++i) {
      s += rng() % 3 == 0 ? std::string(1, static_cast<char>(rng() % 256))
                          : kPieces[rng() % std::size(kPieces)];
    }
    return s;
  };
  for (int i = 0; i < 300; ++i) {
    DsnRequest req = FailureRequest();
    req.smtputf8 = rng() % 2 == 0;
    req.ret = rng() % 2 ? smtp::DsnRet::kFull : smtp::DsnRet::kHeaders;
    req.envid = random_text(200);
    req.sender = "s" + random_text(300);
    const std::string content =
        "Subject: " + random_text(2000) + "\r\n" + random_text(3000);
    req.content = content;
    for (DsnRecipientReport& r : req.recipients) {
      r.final_recipient = random_text(400);
      r.original_type = random_text(10);
      r.original_address = random_text(400);
      r.remote_mta = random_text(100);
      r.diagnostic_code = random_text(3000);
      r.action = static_cast<DsnAction>(rng() % 5);
    }
    const ParsedDsn p = Parse(BuildDsn(req));
    ASSERT_EQ(p.parts.size(), 3u) << i;
    ASSERT_EQ(p.groups.size(), 3u) << i;
    for (const Entity& g : p.groups) {
      ASSERT_GE(g.fields.size(), 2u) << i;
    }
    for (std::size_t g = 1; g < 3; ++g) {
      EXPECT_TRUE(p.groups[g].Has("Final-Recipient")) << i;
      EXPECT_TRUE(p.groups[g].Has("Action")) << i;
      EXPECT_TRUE(p.groups[g].Has("Status")) << i;
    }
    if (testing::Test::HasFailure()) break;
  }
}

TEST(DsnTest, BoundaryNeverOccursInTheContent) {
  // The first boundary BuildDsn tries is predictable from its input.
  const std::string first = "Q1.1700000100/mx.example.test";
  std::string content = "Subject: x\r\nX-A: --" + first + "\r\n\r\n--" + first +
                        "\r\n--" + first + "=1\r\n--" + first + "--\r\n";
  DsnRequest req = FailureRequest();
  req.ret = smtp::DsnRet::kFull;
  req.content = content;
  const Dsn dsn = BuildDsn(req);
  const ParsedDsn p = Parse(dsn);
  const std::string boundary = BoundaryOf(p.top.Get("Content-Type"));
  EXPECT_NE(boundary, first);
  EXPECT_NE(boundary, first + "=1");
  ASSERT_EQ(p.parts.size(), 3u);
  EXPECT_EQ(p.parts[2].body, content);
}

TEST(DsnTest, LongDiagnosticIsFoldedWithinLineLimits) {
  DsnRequest req = FailureRequest();
  std::string words;
  for (int i = 0; i < 120; ++i) words += "word" + std::to_string(i) + " ";
  req.recipients[0].diagnostic_code = "smtp; 550 " + words;
  req.recipients[1].diagnostic_code = "smtp; 550 " + std::string(2500, 'q');
  const Dsn dsn = BuildDsn(req);
  const ParsedDsn p = Parse(dsn);
  ASSERT_EQ(p.groups.size(), 3u);
  // Folded at spaces: unfolding gives the text back exactly.
  std::string expected = "smtp; 550 " + words;
  expected.pop_back();
  EXPECT_EQ(p.groups[1].Get("Diagnostic-Code"), expected);
  // One word too long for a line: cut by folds, nothing lost but spaces.
  std::string long_one = p.groups[2].Get("Diagnostic-Code");
  long_one.erase(std::remove(long_one.begin(), long_one.end(), ' '),
                 long_one.end());
  // The text is cut at 1000 octets (" 550 " and 995 'q').
  EXPECT_EQ(long_one, "smtp;550" + std::string(995, 'q'));
}

TEST(DsnTest, Utf8AddressesUseRfc6533) {
  EXPECT_EQ(EncodeUtf8AddrXtext("j\xc3\xb6rg+x=y\\z@b\xc3\xbc.example"),
            "j\\x{F6}rg\\x{2B}x\\x{3D}y\\x{5C}z@b\\x{FC}.example");
  EXPECT_EQ(EncodeUtf8AddrXtext("a b\xff"), "a\\x{20}b\\x{FFFD}");
  EXPECT_EQ(EncodeUtf8AddrXtext("\xf0\x9f\x93\xa7"), "\\x{1F4E7}");

  DsnRequest req = FailureRequest();
  req.smtputf8 = true;
  req.sender = "j\xc3\xb6rg@example.org";
  req.recipients[0].final_recipient =
      "b\xc3\xb6"
      "b@example.net";
  req.recipients[0].original_type = "utf-8";
  req.recipients[0].original_address = "B\\x{F6}b@example.net";
  req.recipients[1].diagnostic_code =
      "smtp; 550 unknown user b\xc3\xb6"
      "b";
  const std::string content =
      "Subject: gr\xc3\xbc\xc3\x9f"
      "e\r\n\r\nbody\r\n";
  req.content = content;
  const Dsn dsn = BuildDsn(req);
  EXPECT_TRUE(dsn.eight_bit);
  EXPECT_TRUE(dsn.smtputf8);
  const ParsedDsn p = Parse(dsn);
  EXPECT_EQ(p.top.Get("To"), "<j\xc3\xb6rg@example.org>");
  ASSERT_EQ(p.groups.size(), 3u);
  EXPECT_EQ(p.groups[1].Get("Final-Recipient"), "utf-8; b\\x{F6}b@example.net");
  EXPECT_EQ(p.groups[1].Get("Original-Recipient"),
            "utf-8; B\\x{F6}b@example.net");
  EXPECT_EQ(p.groups[2].Get("Diagnostic-Code"), "smtp; 550 unknown user b?b");
  ASSERT_EQ(p.parts.size(), 3u);
  EXPECT_EQ(p.parts[0].Get("Content-Type"), "text/plain; charset=utf-8");
  EXPECT_EQ(p.parts[0].Get("Content-Transfer-Encoding"), "quoted-printable");
  EXPECT_NE(p.parts[0].body.find("b=C3=B6b"), std::string::npos);
  EXPECT_EQ(p.parts[2].Get("Content-Type"), "message/global-headers");
  EXPECT_EQ(p.parts[2].Get("Content-Transfer-Encoding"), "8bit");

  // Without SMTPUTF8, 8-bit headers (seen in the wild) stay rfc822-headers.
  req.smtputf8 = false;
  req.sender = "alice@example.org";
  const Dsn plain = BuildDsn(req);
  EXPECT_TRUE(plain.eight_bit);
  EXPECT_FALSE(plain.smtputf8);
  const ParsedDsn q = Parse(plain);
  ASSERT_EQ(q.parts.size(), 3u);
  EXPECT_EQ(q.parts[2].Get("Content-Type"), "text/rfc822-headers");
}

TEST(DsnTest, NotifyRules) {
  using smtp::kNotifyDelay;
  using smtp::kNotifyFailure;
  using smtp::kNotifyNever;
  using smtp::kNotifySuccess;
  using smtp::kNotifyUnspecified;
  const std::string s = "alice@example.org";
  // Unspecified: failure and delay, not success (RFC 3461 4.1).
  EXPECT_TRUE(ShouldSendDsn(s, kNotifyUnspecified, DsnEvent::kFailure));
  EXPECT_TRUE(ShouldSendDsn(s, kNotifyUnspecified, DsnEvent::kDelay));
  EXPECT_FALSE(ShouldSendDsn(s, kNotifyUnspecified, DsnEvent::kSuccess));
  // NEVER: nothing.
  for (DsnEvent e :
       {DsnEvent::kFailure, DsnEvent::kDelay, DsnEvent::kSuccess}) {
    EXPECT_FALSE(ShouldSendDsn(s, kNotifyNever, e));
    // The null sender: nothing, whatever NOTIFY says.
    EXPECT_FALSE(
        ShouldSendDsn("", kNotifySuccess | kNotifyFailure | kNotifyDelay, e));
    EXPECT_FALSE(ShouldSendDsn("", kNotifyUnspecified, e));
  }
  EXPECT_TRUE(ShouldSendDsn(s, kNotifyFailure, DsnEvent::kFailure));
  EXPECT_FALSE(ShouldSendDsn(s, kNotifyFailure, DsnEvent::kDelay));
  EXPECT_FALSE(ShouldSendDsn(s, kNotifyFailure, DsnEvent::kSuccess));
  EXPECT_TRUE(ShouldSendDsn(s, kNotifyDelay, DsnEvent::kDelay));
  EXPECT_FALSE(ShouldSendDsn(s, kNotifyDelay, DsnEvent::kFailure));
  EXPECT_TRUE(ShouldSendDsn(s, kNotifySuccess, DsnEvent::kSuccess));
  EXPECT_FALSE(ShouldSendDsn(s, kNotifySuccess, DsnEvent::kFailure));
  EXPECT_TRUE(
      ShouldSendDsn(s, kNotifySuccess | kNotifyFailure, DsnEvent::kFailure));
}

TEST(DsnTest, Dates) {
  EXPECT_EQ(FormatRfc5322Date(0), "Thu, 1 Jan 1970 00:00:00 +0000");
  EXPECT_EQ(FormatRfc5322Date(1700000000), "Tue, 14 Nov 2023 22:13:20 +0000");
  EXPECT_EQ(FormatRfc5322Date(951782400), "Tue, 29 Feb 2000 00:00:00 +0000");
}

TEST(DsnTest, ReadContentForDsnStopsAtTheLimit) {
  auto spool = spool::Spool::NewMemorySpool();
  const std::string big(3 * kDsnMaxReturnedOctets, 'x');
  auto writer = spool->NewMessage("BIG1");
  writer->Append(big, [](Status s) { ASSERT_TRUE(s.ok()); });
  spool::Envelope env;
  env.id = "BIG1";
  env.sender = "a@b.example";
  env.recipients.push_back({});
  env.recipients[0].address = "c@d.example";
  bool committed = false;
  writer->Commit(env, [&](Status s) { committed = s.ok(); });
  ASSERT_TRUE(committed);
  auto read = ReadContentForDsn(*spool, "BIG1");
  ASSERT_TRUE(read.has_value()) << read.error().ToString();
  EXPECT_EQ(read->size(), kDsnContentReadOctets);

  auto small_writer = spool->NewMessage("SMALL1");
  small_writer->Append("Subject: s\r\n\r\nb\r\n", [](Status) {});
  env.id = "SMALL1";
  small_writer->Commit(env, [](Status) {});
  auto small = ReadContentForDsn(*spool, "SMALL1");
  ASSERT_TRUE(small.has_value());
  EXPECT_EQ(*small, "Subject: s\r\n\r\nb\r\n");

  EXPECT_FALSE(ReadContentForDsn(*spool, "NOPE").has_value());
}

}  // namespace
}  // namespace petrel::delivery
