// Spool keys: the one definition of the RocksDB key space, shared by the
// writer, the readers and recovery. docs/spool-format.md writes it out.
//
//   m/<id>                  envelope record (committed messages only)
//   r/<id>/<8-digit index>  one recipient's record, index 0..n-1
//   c/<id>/<8-digit chunk>  one content chunk, chunk 0..k-1
//   i/<id>                  incoming marker: content exists, not committed
//
// An id is 1..64 characters of [0-9A-Za-z_.-] (queue IDs are a subset). It
// never contains '/', so "c/<id>/" is a prefix of that message's chunks only,
// and "c/<id>0" ('0' follows '/') is the exclusive upper bound of that range.
// Decimal numbers are zero-padded so byte order is numeric order.
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace petrel::spool::keys {

inline constexpr std::size_t kMaxIdLength = 64;
inline constexpr std::uint32_t kMaxIndex = 99'999'999;  // 8 digits

inline constexpr std::string_view kEnvelopePrefix = "m/";
inline constexpr std::string_view kRecipientPrefix = "r/";
inline constexpr std::string_view kChunkPrefix = "c/";
inline constexpr std::string_view kIncomingPrefix = "i/";

inline bool IsValidId(std::string_view id) {
  if (id.empty() || id.size() > kMaxIdLength) return false;
  for (char c : id) {
    bool ok = (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') ||
              (c >= 'a' && c <= 'z') || c == '_' || c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

inline std::string Join(std::string_view prefix, std::string_view id) {
  std::string key;
  key.reserve(prefix.size() + id.size() + 9);
  key.append(prefix);
  key.append(id);
  return key;
}

inline std::string Indexed(std::string_view prefix, std::string_view id,
                           std::uint32_t index) {
  char digits[16];
  std::snprintf(digits, sizeof digits, "/%08u", static_cast<unsigned>(index));
  return Join(prefix, id) + digits;
}

inline std::string Envelope(std::string_view id) {
  return Join(kEnvelopePrefix, id);
}
inline std::string Incoming(std::string_view id) {
  return Join(kIncomingPrefix, id);
}
inline std::string Chunk(std::string_view id, std::uint32_t n) {
  return Indexed(kChunkPrefix, id, n);
}
inline std::string Recipient(std::string_view id, std::uint32_t n) {
  return Indexed(kRecipientPrefix, id, n);
}
// [begin, end) of all chunk keys, or all recipient keys, of one message.
inline std::string ChunkBegin(std::string_view id) {
  return Join(kChunkPrefix, id) + "/";
}
inline std::string ChunkEnd(std::string_view id) {
  return Join(kChunkPrefix, id) + "0";
}
inline std::string RecipientBegin(std::string_view id) {
  return Join(kRecipientPrefix, id) + "/";
}
inline std::string RecipientEnd(std::string_view id) {
  return Join(kRecipientPrefix, id) + "0";
}
// The exclusive upper bound of every key starting with `prefix` ("m/" ->
// "m0").
inline std::string PrefixEnd(std::string_view prefix) {
  std::string end(prefix);
  end.back() = static_cast<char>(end.back() + 1);
  return end;
}

}  // namespace petrel::spool::keys
