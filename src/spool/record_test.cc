#include "spool/record.h"

#include <gtest/gtest.h>

#include <random>

#include "spool/keys.h"

namespace petrel::spool {
namespace {

Envelope SampleEnvelope() {
  Envelope e;
  e.id = "0123456789ABCDEF";
  e.sender = "alice@example.org";
  e.smtputf8 = true;
  e.held = true;
  e.dsn_ret = 2;
  e.dsn_envid = "env+id";
  e.helo = "mx.example.org";
  e.client_address = "192.0.2.1";
  e.protocol = "ESMTP";
  e.arrival_unix = 1700000000;
  e.next_attempt_unix = -5;
  e.content_octets = 123456789012ull;
  return e;
}

Recipient SampleRecipient() {
  Recipient r;
  r.address = "bob@example.net";
  r.orcpt_type = "rfc822";
  r.orcpt_address = "Bob@Example.net";
  r.notify = 6;
  r.state = RecipientState::kFailed;
  r.attempts = 300;
  r.last_attempt_unix = 1700000100;
  r.last_reply = "dsn=5.1.1, status=bounced (550 no such user)";
  r.remote_mta = "mx.example.net[198.51.100.7]";
  r.dsn_sent = true;
  return r;
}

// Every truncation and every single-bit flip must decode as Corruption.
template <class Decode>
void ExpectEveryDamageDetected(const std::string& good, Decode decode) {
  for (std::size_t n = 0; n < good.size(); ++n) {
    auto r = decode(std::string_view(good).substr(0, n));
    ASSERT_FALSE(r.ok()) << "truncated to " << n;
    EXPECT_EQ(r.code(), Status::Code::kCorruption);
  }
  for (std::size_t i = 0; i < good.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string bad = good;
      bad[i] = static_cast<char>(bad[i] ^ (1 << bit));
      auto r = decode(bad);
      ASSERT_FALSE(r.ok()) << "octet " << i << " bit " << bit;
      EXPECT_EQ(r.code(), Status::Code::kCorruption);
    }
  }
  std::string longer = good + "x";
  EXPECT_EQ(decode(longer).code(), Status::Code::kCorruption);
}

Status StatusOf(const Result<record::EnvelopeHeader>& r) {
  return r ? Status::Ok() : r.error();
}

TEST(RecordTest, Crc32cKnownValue) {
  // RFC 3720 B.4: 32 octets of zero.
  EXPECT_EQ(record::Crc32c(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(record::Crc32c("123456789"), 0xE3069283u);
  std::string s = "The quick brown fox jumps over the lazy dog, twice over.";
  EXPECT_EQ(record::Crc32c(s.substr(10), record::Crc32c(s.substr(0, 10))),
            record::Crc32c(s));
}

void ExpectSameHeaderFields(const Envelope& d, const Envelope& e) {
  EXPECT_EQ(d.id, e.id);
  EXPECT_EQ(d.sender, e.sender);
  EXPECT_TRUE(d.smtputf8);
  EXPECT_FALSE(d.eight_bit_mime);
  EXPECT_TRUE(d.held);
  EXPECT_EQ(d.dsn_ret, 2);
  EXPECT_EQ(d.dsn_envid, e.dsn_envid);
  EXPECT_EQ(d.helo, e.helo);
  EXPECT_EQ(d.client_address, e.client_address);
  EXPECT_EQ(d.protocol, e.protocol);
  EXPECT_EQ(d.arrival_unix, e.arrival_unix);
  EXPECT_EQ(d.next_attempt_unix, -5);
  EXPECT_EQ(d.content_octets, e.content_octets);
}

void ExpectSameRecipient(const Recipient& d, const Recipient& r) {
  EXPECT_EQ(d.address, r.address);
  EXPECT_EQ(d.orcpt_type, r.orcpt_type);
  EXPECT_EQ(d.orcpt_address, r.orcpt_address);
  EXPECT_EQ(d.notify, r.notify);
  EXPECT_EQ(d.state, r.state);
  EXPECT_EQ(d.attempts, r.attempts);
  EXPECT_EQ(d.last_attempt_unix, r.last_attempt_unix);
  EXPECT_EQ(d.last_reply, r.last_reply);
  EXPECT_EQ(d.remote_mta, r.remote_mta);
  EXPECT_EQ(d.dsn_sent, r.dsn_sent);
}

Envelope SampleWithRecipients() {
  Envelope e = SampleEnvelope();
  e.recipients.push_back(SampleRecipient());
  Recipient plain;
  plain.address = "carol@example.com";
  e.recipients.push_back(plain);
  return e;
}

TEST(RecordTest, EnvelopeRoundTripWithRecipientsInline) {
  Envelope e = SampleWithRecipients();
  std::string bytes = record::EncodeEnvelope(e, 7);
  EXPECT_EQ(bytes[0], 2);  // envelope format version
  auto h = record::DecodeEnvelope(bytes);
  ASSERT_TRUE(h) << h.error().ToString();
  EXPECT_EQ(h->version, 2);
  EXPECT_EQ(h->chunk_count, 7u);
  EXPECT_EQ(h->recipient_count, 2u);
  ExpectSameHeaderFields(h->envelope, e);
  ASSERT_EQ(h->envelope.recipients.size(), 2u);
  ExpectSameRecipient(h->envelope.recipients[0], e.recipients[0]);
  ExpectSameRecipient(h->envelope.recipients[1], e.recipients[1]);
  // Header only: same fields and counts, no recipients decoded.
  auto skip = record::DecodeEnvelope(bytes, record::Recipients::kSkip);
  ASSERT_TRUE(skip) << skip.error().ToString();
  EXPECT_EQ(skip->recipient_count, 2u);
  EXPECT_TRUE(skip->envelope.recipients.empty());
  ExpectSameHeaderFields(skip->envelope, e);
}

TEST(RecordTest, Version1EnvelopeIsStillRead) {
  Envelope e = SampleWithRecipients();  // recipients are not in a v1 record
  std::string bytes = record::EncodeEnvelopeV1(e, 7, 3);
  EXPECT_EQ(bytes[0], 1);
  auto h = record::DecodeEnvelope(bytes);
  ASSERT_TRUE(h) << h.error().ToString();
  EXPECT_EQ(h->version, 1);
  EXPECT_EQ(h->chunk_count, 7u);
  EXPECT_EQ(h->recipient_count, 3u);
  ExpectSameHeaderFields(h->envelope, e);
  EXPECT_TRUE(h->envelope.recipients.empty());
}

TEST(RecordTest, RecipientRoundTrip) {
  Recipient r = SampleRecipient();
  auto d = record::DecodeRecipient(record::EncodeRecipient(r));
  ASSERT_TRUE(d) << d.error().ToString();
  ExpectSameRecipient(*d, r);
  EXPECT_EQ(d->state, RecipientState::kFailed);
  EXPECT_TRUE(d->dsn_sent);
}

TEST(RecordTest, ChunkRoundTripEveryOctet) {
  std::string data;
  for (int i = 0; i < 512; ++i) data.push_back(static_cast<char>(i & 0xFF));
  std::string bytes = record::EncodeChunk(data);
  auto d = record::DecodeChunk(bytes);
  ASSERT_TRUE(d);
  EXPECT_EQ(*d, data);
  EXPECT_TRUE(record::DecodeChunk(record::EncodeChunk("")));
}

TEST(RecordTest, EveryDamageIsCorruption) {
  Envelope e = SampleWithRecipients();
  ExpectEveryDamageDetected(
      record::EncodeEnvelope(e, 2),
      [](std::string_view b) { return StatusOf(record::DecodeEnvelope(b)); });
  ExpectEveryDamageDetected(
      record::EncodeEnvelope(e, 2), [](std::string_view b) {
        return StatusOf(record::DecodeEnvelope(b, record::Recipients::kSkip));
      });
  ExpectEveryDamageDetected(
      record::EncodeEnvelopeV1(e, 2, 1),
      [](std::string_view b) { return StatusOf(record::DecodeEnvelope(b)); });
  ExpectEveryDamageDetected(record::EncodeRecipient(SampleRecipient()),
                            [](std::string_view b) {
                              auto r = record::DecodeRecipient(b);
                              return r ? Status::Ok() : r.error();
                            });
  ExpectEveryDamageDetected(record::EncodeChunk("some content\r\n"),
                            [](std::string_view b) {
                              auto r = record::DecodeChunk(b);
                              return r ? Status::Ok() : r.error();
                            });
  ExpectEveryDamageDetected(record::EncodeIncoming(), [](std::string_view b) {
    return record::DecodeIncoming(b);
  });
}

TEST(RecordTest, WrongKindAndVersionAreCorruption) {
  std::string chunk = record::EncodeChunk("x");
  EXPECT_EQ(StatusOf(record::DecodeEnvelope(chunk)).code(),
            Status::Code::kCorruption);
  // A future version with a valid checksum is refused, not misread.
  std::string v3 = record::EncodeEnvelope(SampleEnvelope(), 0);
  v3[0] = 3;
  v3.resize(v3.size() - 4);
  std::uint32_t crc = record::Crc32c(v3);
  for (int i = 0; i < 4; ++i) v3.push_back(static_cast<char>(crc >> (8 * i)));
  auto r = record::DecodeEnvelope(v3);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Status::Code::kCorruption);
  EXPECT_NE(r.error().message().find("version 3"), std::string::npos);
  // Version 2 is for envelopes only.
  std::string chunk2 = record::EncodeChunk("x");
  chunk2[0] = 2;
  chunk2.resize(chunk2.size() - 4);
  crc = record::Crc32c(chunk2);
  for (int i = 0; i < 4; ++i) {
    chunk2.push_back(static_cast<char>(crc >> (8 * i)));
  }
  EXPECT_FALSE(record::DecodeChunk(chunk2));
}

TEST(RecordTest, GarbageWithValidChecksumNeverCrashes) {
  std::mt19937 rng(42);
  for (int round = 0; round < 20000; ++round) {
    std::string body(rng() % 60, '\0');
    for (char& c : body) c = static_cast<char>(rng());
    for (char kind : {'E', 'R'}) {
      std::string bytes;
      bytes.push_back(static_cast<char>(1 + round % 2));
      bytes.push_back(kind);
      bytes += body;
      std::uint32_t crc = record::Crc32c(bytes);
      for (int i = 0; i < 4; ++i) {
        bytes.push_back(static_cast<char>(crc >> (8 * i)));
      }
      auto e = record::DecodeEnvelope(bytes);
      auto r = record::DecodeRecipient(bytes);
      if (!e) {
        EXPECT_EQ(e.error().code(), Status::Code::kCorruption);
      }
      if (!r) {
        EXPECT_EQ(r.error().code(), Status::Code::kCorruption);
      }
    }
  }
}

TEST(KeysTest, LayoutAndBounds) {
  EXPECT_EQ(keys::Envelope("ABC"), "m/ABC");
  EXPECT_EQ(keys::Incoming("ABC"), "i/ABC");
  EXPECT_EQ(keys::Chunk("ABC", 12), "c/ABC/00000012");
  EXPECT_EQ(keys::Recipient("ABC", 3), "r/ABC/00000003");
  EXPECT_LT(keys::Chunk("ABC", 9), keys::Chunk("ABC", 10));
  EXPECT_LT(keys::ChunkBegin("ABC"), keys::Chunk("ABC", 0));
  EXPECT_LT(keys::Chunk("ABC", keys::kMaxIndex), keys::ChunkEnd("ABC"));
  // Another id sharing a prefix falls outside the range.
  EXPECT_FALSE(keys::Chunk("ABCD", 0) >= keys::ChunkBegin("ABC") &&
               keys::Chunk("ABCD", 0) < keys::ChunkEnd("ABC"));
  EXPECT_FALSE(keys::Chunk("AB", 0) >= keys::ChunkBegin("ABC") &&
               keys::Chunk("AB", 0) < keys::ChunkEnd("ABC"));
  EXPECT_EQ(keys::PrefixEnd("m/"), "m0");
  EXPECT_TRUE(keys::IsValidId("0123456789ABCDEF"));
  EXPECT_TRUE(keys::IsValidId("msg-1_a.b"));
  EXPECT_FALSE(keys::IsValidId(""));
  EXPECT_FALSE(keys::IsValidId("a/b"));
  EXPECT_FALSE(keys::IsValidId(std::string(65, 'A')));
}

}  // namespace
}  // namespace petrel::spool
