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

inline constexpr std::uint8_t kVersion = 1;

enum class Kind : std::uint8_t {
  kEnvelope = 'E',
  kRecipient = 'R',
  kChunk = 'C',
  kIncoming = 'I',
};

// The envelope record holds everything but the recipients, plus what only
// the spool knows: how many chunks and recipient records belong to it.
struct EnvelopeHeader {
  Envelope envelope;  // recipients left empty
  std::uint32_t chunk_count = 0;
  std::uint32_t recipient_count = 0;
};

// Encodes envelope (ignoring envelope.recipients) with the given counts.
std::string EncodeEnvelope(const Envelope& envelope, std::uint32_t chunk_count,
                           std::uint32_t recipient_count);
Result<EnvelopeHeader> DecodeEnvelope(std::string_view bytes);

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
