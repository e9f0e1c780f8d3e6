#include "spool/record.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

namespace petrel::spool::record {
namespace {

// CRC-32C, reflected polynomial 0x82F63B78, slicing-by-8 (~1 GB/s, enough
// next to an fsync; RocksDB checksums its own files as well).
using CrcTables = std::array<std::array<std::uint32_t, 256>, 8>;

constexpr CrcTables MakeCrcTables() {
  CrcTables t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    t[0][i] = c;
  }
  for (std::uint32_t i = 0; i < 256; ++i) {
    for (int s = 1; s < 8; ++s) {
      t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xFF];
    }
  }
  return t;
}

constexpr CrcTables kCrcTables = MakeCrcTables();

// Writes the fields of a body; the framing is added by Finish().
class Writer {
 public:
  explicit Writer(Kind kind, std::size_t reserve = 64,
                  std::uint8_t version = kVersion) {
    out_.reserve(reserve + 6);
    out_.push_back(static_cast<char>(version));
    out_.push_back(static_cast<char>(kind));
  }
  void U8(std::uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void Varint(std::uint64_t v) {
    while (v >= 0x80) {
      out_.push_back(static_cast<char>((v & 0x7F) | 0x80));
      v >>= 7;
    }
    out_.push_back(static_cast<char>(v));
  }
  void Signed(std::int64_t v) {  // zigzag
    Varint((static_cast<std::uint64_t>(v) << 1) ^
           static_cast<std::uint64_t>(v >> 63));
  }
  void String(std::string_view s) {
    Varint(s.size());
    out_.append(s);
  }
  void Raw(std::string_view s) { out_.append(s); }
  std::string Finish() && {
    std::uint32_t crc = Crc32c(out_);
    for (int i = 0; i < 4; ++i)
      out_.push_back(static_cast<char>(crc >> (8 * i)));
    return std::move(out_);
  }

 private:
  std::string out_;
};

// Reads the fields of a body after Open() has checked the framing. Every
// read fails softly: the first failure sticks and later reads return zeros.
class Reader {
 public:
  // Accepts versions 1..max_version.
  Status Open(std::string_view bytes, Kind kind,
              std::uint8_t max_version = kVersion) {
    if (bytes.size() < 6) return Status::Corruption("spool record too short");
    auto version = static_cast<std::uint8_t>(bytes[0]);
    version_ = version;
    if (version < 1 || version > max_version) {
      return Status::Corruption("spool record version " +
                                std::to_string(version) + " not supported");
    }
    if (static_cast<std::uint8_t>(bytes[1]) !=
        static_cast<std::uint8_t>(kind)) {
      return Status::Corruption("spool record of the wrong kind");
    }
    std::string_view framed = bytes.substr(0, bytes.size() - 4);
    std::uint32_t stored = 0;
    for (int i = 0; i < 4; ++i) {
      stored |= static_cast<std::uint32_t>(
                    static_cast<std::uint8_t>(bytes[bytes.size() - 4 + i]))
                << (8 * i);
    }
    if (Crc32c(framed) != stored) {
      return Status::Corruption("spool record checksum mismatch");
    }
    rest_ = framed.substr(2);
    return Status::Ok();
  }
  std::uint8_t U8() {
    if (rest_.empty()) return Fail();
    auto v = static_cast<std::uint8_t>(rest_[0]);
    rest_.remove_prefix(1);
    return v;
  }
  std::uint64_t Varint() {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (rest_.empty()) return Fail();
      auto b = static_cast<std::uint8_t>(rest_[0]);
      rest_.remove_prefix(1);
      if (shift == 63 && b > 1) return Fail();
      v |= static_cast<std::uint64_t>(b & 0x7F) << shift;
      if ((b & 0x80) == 0) return v;
    }
    return Fail();
  }
  std::uint32_t Varint32() {
    std::uint64_t v = Varint();
    if (v > 0xFFFFFFFFu) return Fail();
    return static_cast<std::uint32_t>(v);
  }
  std::int64_t Signed() {
    std::uint64_t v = Varint();
    return static_cast<std::int64_t>((v >> 1) ^ (~(v & 1) + 1));
  }
  std::string String() {
    std::uint64_t n = Varint();
    if (n > rest_.size()) {
      Fail();
      return {};
    }
    std::string s(rest_.substr(0, n));
    rest_.remove_prefix(n);
    return s;
  }
  std::string_view Rest() {
    std::string_view r = rest_;
    rest_ = {};
    return r;
  }
  // Ok if every read succeeded and nothing is left over.
  Status Done(std::string_view what) const {
    if (failed_) return Status::Corruption(std::string(what) + " truncated");
    if (!rest_.empty()) {
      return Status::Corruption(std::string(what) + " has trailing octets");
    }
    return Status::Ok();
  }

  std::uint8_t version() const { return version_; }
  bool failed() const { return failed_; }

 private:
  std::uint8_t Fail() {
    failed_ = true;
    rest_ = {};
    return 0;
  }
  std::string_view rest_;
  std::uint8_t version_ = 0;
  bool failed_ = false;
};

constexpr std::uint8_t kFlagSmtputf8 = 1;
constexpr std::uint8_t kFlag8BitMime = 2;
constexpr std::uint8_t kFlagHeld = 4;
constexpr std::uint8_t kEnvelopeFlags = 7;
constexpr std::uint8_t kFlagDsnSent = 1;

}  // namespace

std::uint32_t Crc32c(std::string_view data, std::uint32_t crc) {
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  std::size_t n = data.size();
  std::uint32_t c = ~crc;
  const auto& t = kCrcTables;
  while (n >= 8) {
    std::uint32_t lo =
        c ^ (std::uint32_t{p[0]} | std::uint32_t{p[1]} << 8 |
             std::uint32_t{p[2]} << 16 | std::uint32_t{p[3]} << 24);
    c = t[7][lo & 0xFF] ^ t[6][(lo >> 8) & 0xFF] ^ t[5][(lo >> 16) & 0xFF] ^
        t[4][lo >> 24] ^ t[3][p[4]] ^ t[2][p[5]] ^ t[1][p[6]] ^ t[0][p[7]];
    p += 8;
    n -= 8;
  }
  while (n-- > 0) c = (c >> 8) ^ t[0][(c ^ *p++) & 0xFF];
  return ~c;
}

namespace {

void PutEnvelopeFields(Writer& w, const Envelope& e, std::uint32_t chunk_count,
                       std::uint32_t recipient_count) {
  w.String(e.id);
  w.String(e.sender);
  w.U8((e.smtputf8 ? kFlagSmtputf8 : 0) |
       (e.eight_bit_mime ? kFlag8BitMime : 0) | (e.held ? kFlagHeld : 0));
  w.U8(e.dsn_ret);
  w.String(e.dsn_envid);
  w.String(e.helo);
  w.String(e.client_address);
  w.String(e.protocol);
  w.Signed(e.arrival_unix);
  w.Signed(e.next_attempt_unix);
  w.Varint(e.content_octets);
  w.Varint(chunk_count);
  w.Varint(recipient_count);
}

// body-R: the same fields in a recipient record and inline in a version-2
// envelope.
void PutRecipientFields(Writer& w, const Recipient& rc) {
  w.String(rc.address);
  w.String(rc.orcpt_type);
  w.String(rc.orcpt_address);
  w.U8(rc.notify);
  w.U8(static_cast<std::uint8_t>(rc.state));
  w.Varint(rc.attempts);
  w.Signed(rc.last_attempt_unix);
  w.String(rc.last_reply);
  w.String(rc.remote_mta);
  w.U8(rc.dsn_sent ? kFlagDsnSent : 0);
}

std::size_t RecipientSize(const Recipient& rc) {
  return 32 + rc.address.size() + rc.orcpt_type.size() +
         rc.orcpt_address.size() + rc.last_reply.size() + rc.remote_mta.size();
}

// Reads body-R; a failed read shows in r.failed(), a bad value as a status.
Status GetRecipientFields(Reader& r, Recipient* rc) {
  rc->address = r.String();
  rc->orcpt_type = r.String();
  rc->orcpt_address = r.String();
  rc->notify = r.U8();
  std::uint8_t state = r.U8();
  rc->attempts = r.Varint32();
  rc->last_attempt_unix = r.Signed();
  rc->last_reply = r.String();
  rc->remote_mta = r.String();
  std::uint8_t flags = r.U8();
  if (r.failed()) return Status::Corruption("recipient truncated");
  if (state > static_cast<std::uint8_t>(RecipientState::kFailed)) {
    return Status::Corruption("recipient record has unknown state");
  }
  if ((flags & ~kFlagDsnSent) != 0) {
    return Status::Corruption("recipient record has unknown flags");
  }
  rc->state = static_cast<RecipientState>(state);
  rc->dsn_sent = flags & kFlagDsnSent;
  return Status::Ok();
}

}  // namespace

std::string EncodeEnvelope(const Envelope& e, std::uint32_t chunk_count) {
  std::size_t size = 128 + e.sender.size() + e.helo.size();
  for (const Recipient& rc : e.recipients) size += RecipientSize(rc);
  Writer w(Kind::kEnvelope, size, kEnvelopeVersion);
  PutEnvelopeFields(w, e, chunk_count,
                    static_cast<std::uint32_t>(e.recipients.size()));
  for (const Recipient& rc : e.recipients) PutRecipientFields(w, rc);
  return std::move(w).Finish();
}

std::string EncodeEnvelopeV1(const Envelope& e, std::uint32_t chunk_count,
                             std::uint32_t recipient_count) {
  Writer w(Kind::kEnvelope, 128 + e.sender.size() + e.helo.size(), 1);
  PutEnvelopeFields(w, e, chunk_count, recipient_count);
  return std::move(w).Finish();
}

Result<EnvelopeHeader> DecodeEnvelope(std::string_view bytes,
                                      Recipients recipients) {
  Reader r;
  if (Status s = r.Open(bytes, Kind::kEnvelope, kEnvelopeVersion); !s.ok()) {
    return Error(s);
  }
  EnvelopeHeader h;
  h.version = r.version();
  Envelope& e = h.envelope;
  e.id = r.String();
  e.sender = r.String();
  std::uint8_t flags = r.U8();
  e.smtputf8 = flags & kFlagSmtputf8;
  e.eight_bit_mime = flags & kFlag8BitMime;
  e.held = flags & kFlagHeld;
  e.dsn_ret = r.U8();
  e.dsn_envid = r.String();
  e.helo = r.String();
  e.client_address = r.String();
  e.protocol = r.String();
  e.arrival_unix = r.Signed();
  e.next_attempt_unix = r.Signed();
  e.content_octets = r.Varint();
  h.chunk_count = r.Varint32();
  h.recipient_count = r.Varint32();
  if ((flags & ~kEnvelopeFlags) != 0 && !r.failed()) {
    return Error(Status::Corruption("envelope record has unknown flags"));
  }
  if (h.version >= 2) {
    if (recipients == Recipients::kSkip) {
      if (r.failed()) {
        return Error(Status::Corruption("envelope record truncated"));
      }
      return h;
    }
    // Each inline recipient takes at least 10 octets: no huge reserve from a
    // damaged count.
    e.recipients.reserve(std::min<std::size_t>(h.recipient_count, 1 << 16));
    for (std::uint32_t i = 0; i < h.recipient_count && !r.failed(); ++i) {
      Recipient rc;
      if (Status s = GetRecipientFields(r, &rc); !s.ok()) {
        if (r.failed()) break;  // reported as truncated below
        return Error(s);
      }
      e.recipients.push_back(std::move(rc));
    }
  }
  if (Status s = r.Done("envelope record"); !s.ok()) return Error(s);
  return h;
}

std::string EncodeRecipient(const Recipient& rc) {
  Writer w(Kind::kRecipient, RecipientSize(rc));
  PutRecipientFields(w, rc);
  return std::move(w).Finish();
}

Result<Recipient> DecodeRecipient(std::string_view bytes) {
  Reader r;
  if (Status s = r.Open(bytes, Kind::kRecipient); !s.ok()) return Error(s);
  Recipient rc;
  Status s = GetRecipientFields(r, &rc);
  if (Status d = r.Done("recipient record"); !d.ok()) return Error(d);
  if (!s.ok()) return Error(s);
  return rc;
}

std::string EncodeChunk(std::string_view data) {
  Writer w(Kind::kChunk, data.size());
  w.Raw(data);
  return std::move(w).Finish();
}

Result<std::string_view> DecodeChunk(std::string_view bytes) {
  Reader r;
  if (Status s = r.Open(bytes, Kind::kChunk); !s.ok()) return Error(s);
  return r.Rest();
}

std::string EncodeIncoming() { return Writer(Kind::kIncoming).Finish(); }

Status DecodeIncoming(std::string_view bytes) {
  Reader r;
  if (Status s = r.Open(bytes, Kind::kIncoming); !s.ok()) return s;
  return r.Done("incoming record");
}

}  // namespace petrel::spool::record
