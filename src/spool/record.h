// Spool records: the binary values stored under the keys of keys.h. One
// definition shared by writer and reader; docs/spool-format.md gives the
// grammar.
//
// Every record is   version(1 octet) kind(1 octet) body crc32c(4 octets LE)
// with the CRC-32C (Castagnoli) over version, kind and body. Decoding checks
// the version, the kind, the CRC, every length and enum, and that no octet is
// left over; any mismatch is Status::Corruption, never a crash or a CHECK.
// Decoders take untrusted bytes (a damaged disk is untrusted).
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"
#include "spool/spool.h"

namespace petrel::spool::record {

// Record format versions. Chunk, incoming and (legacy) recipient records
// are version 1. Envelope records are written as version 2: the envelope
// with every recipient inline, one key per message. Version 1 envelopes
// (recipients in r/<id>/<n> records, format 1 of docs/spool-format.md) are
// still read, and rewritten as version 2 by the first update.
inline constexpr std::uint8_t kVersion = 1;
inline constexpr std::uint8_t kEnvelopeVersion = 2;

enum class Kind : std::uint8_t {
  kEnvelope = 'E',
  kRecipient = 'R',
  kChunk = 'C',
  kIncoming = 'I',
};

// A decoded envelope record, plus what only the spool knows: how many chunks
// and recipients belong to it and where the recipients are.
struct EnvelopeHeader {
  Envelope envelope;  // recipients: see Recipients below
  std::uint32_t chunk_count = 0;
  std::uint32_t recipient_count = 0;
  std::uint8_t version = kEnvelopeVersion;  // 1: recipients in r/ records
};

// Version 2: `envelope` with all its recipients inline.
std::string EncodeEnvelope(const Envelope& envelope, std::uint32_t chunk_count);
// Version 1 (recipients stored apart; envelope.recipients ignored). Only for
// tests that build a format-1 spool; petrel never writes it.
std::string EncodeEnvelopeV1(const Envelope& envelope,
                             std::uint32_t chunk_count,
                             std::uint32_t recipient_count);
// kDecode fills envelope.recipients from a version-2 record; kSkip leaves
// them empty (cheaper, for readers that need only the header: the CRC of
// the whole record is still checked). Version-1 records never carry them.
enum class Recipients { kDecode, kSkip };
Result<EnvelopeHeader> DecodeEnvelope(
    std::string_view bytes, Recipients recipients = Recipients::kDecode);

std::string EncodeRecipient(const Recipient& recipient);
Result<Recipient> DecodeRecipient(std::string_view bytes);

std::string EncodeChunk(std::string_view data);
// The returned view points into `bytes`.
Result<std::string_view> DecodeChunk(std::string_view bytes);

std::string EncodeIncoming();
Status DecodeIncoming(std::string_view bytes);

// CRC-32C of `data`, continuing from `crc` (0 to start).
std::uint32_t Crc32c(std::string_view data, std::uint32_t crc = 0);

}  // namespace petrel::spool::record
