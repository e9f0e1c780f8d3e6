// Fuzzes the spool record decoders (src/spool/record.h) with the bytes a
// damaged disk could hand back. The first input octet picks a version
// (1..4; 3 and 4 must be refused) and a kind; the rest is the body, framed
// with a valid CRC so that the fuzzer gets past the checksum into the field
// decoding (a wrong CRC is refused first: record_test flips every bit). The
// whole input is also decoded unframed. Checks: never a crash; only
// Corruption as an error; whatever decodes re-encodes and decodes to the
// same values; a header-only decode agrees with the full one.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/check.h"
#include "spool/record.h"

namespace petrel::spool {
namespace {

void CheckSame(const Recipient& a, const Recipient& b) {
  CHECK(a.address == b.address);
  CHECK(a.orcpt_type == b.orcpt_type);
  CHECK(a.orcpt_address == b.orcpt_address);
  CHECK(a.notify == b.notify);
  CHECK(a.state == b.state);
  CHECK(a.attempts == b.attempts);
  CHECK(a.last_attempt_unix == b.last_attempt_unix);
  CHECK(a.last_reply == b.last_reply);
  CHECK(a.remote_mta == b.remote_mta);
  CHECK(a.dsn_sent == b.dsn_sent);
}

void CheckSameHeader(const record::EnvelopeHeader& a,
                     const record::EnvelopeHeader& b) {
  const Envelope& x = a.envelope;
  const Envelope& y = b.envelope;
  CHECK(x.id == y.id);
  CHECK(x.sender == y.sender);
  CHECK(x.smtputf8 == y.smtputf8);
  CHECK(x.eight_bit_mime == y.eight_bit_mime);
  CHECK(x.dsn_ret == y.dsn_ret);
  CHECK(x.dsn_envid == y.dsn_envid);
  CHECK(x.helo == y.helo);
  CHECK(x.client_address == y.client_address);
  CHECK(x.protocol == y.protocol);
  CHECK(x.arrival_unix == y.arrival_unix);
  CHECK(x.next_attempt_unix == y.next_attempt_unix);
  CHECK(x.held == y.held);
  CHECK(x.content_octets == y.content_octets);
  CHECK(a.chunk_count == b.chunk_count);
  CHECK(a.recipient_count == b.recipient_count);
  CHECK(a.version == b.version);
}

template <class R>
void CheckRefusal(const R& r) {
  if (!r) CHECK(r.error().code() == Status::Code::kCorruption);
}

void DecodeAll(std::string_view bytes) {
  auto full = record::DecodeEnvelope(bytes);
  auto skip = record::DecodeEnvelope(bytes, record::Recipients::kSkip);
  CheckRefusal(full);
  CheckRefusal(skip);
  if (full) {
    CHECK(skip);  // the header-only decode checks less, never more
    CheckSameHeader(*full, *skip);
    CHECK(skip->envelope.recipients.empty());
    CHECK(full->version == 1 || full->version == 2);
    if (full->version == 2) {
      CHECK(full->envelope.recipients.size() == full->recipient_count);
      auto again = record::DecodeEnvelope(
          record::EncodeEnvelope(full->envelope, full->chunk_count));
      CHECK(again);
      CheckSameHeader(*full, *again);
      for (std::size_t i = 0; i < full->envelope.recipients.size(); ++i) {
        CheckSame(full->envelope.recipients[i], again->envelope.recipients[i]);
      }
    } else {
      CHECK(full->envelope.recipients.empty());
      auto again = record::DecodeEnvelope(record::EncodeEnvelopeV1(
          full->envelope, full->chunk_count, full->recipient_count));
      CHECK(again);
      CheckSameHeader(*full, *again);
    }
  }
  auto rcpt = record::DecodeRecipient(bytes);
  CheckRefusal(rcpt);
  if (rcpt) {
    auto again = record::DecodeRecipient(record::EncodeRecipient(*rcpt));
    CHECK(again);
    CheckSame(*rcpt, *again);
  }
  auto chunk = record::DecodeChunk(bytes);
  CheckRefusal(chunk);
  if (chunk) {
    const std::string encoded = record::EncodeChunk(*chunk);
    auto again = record::DecodeChunk(encoded);  // a view into `encoded`
    CHECK(again && *again == *chunk);
  }
  Status incoming = record::DecodeIncoming(bytes);
  CHECK(incoming.ok() || incoming.code() == Status::Code::kCorruption);
}

void FuzzOne(std::string_view input) {
  DecodeAll(input);
  if (input.empty()) return;
  const auto select = static_cast<std::uint8_t>(input[0]);
  static constexpr char kKinds[] = {'E', 'R', 'C', 'I'};
  std::string framed;
  framed.push_back(static_cast<char>(1 + (select & 3)));
  framed.push_back(kKinds[(select >> 2) & 3]);
  framed.append(input.substr(1));
  const std::uint32_t crc = record::Crc32c(framed);
  for (int i = 0; i < 4; ++i)
    framed.push_back(static_cast<char>(crc >> (8 * i)));
  DecodeAll(framed);
}

}  // namespace
}  // namespace petrel::spool

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data,
                                      std::size_t size) {
  petrel::spool::FuzzOne(
      std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
