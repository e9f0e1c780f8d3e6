// Fuzzes ParsePath and ParseMailbox: whatever they accept is within the RFC
// 5321 limits, parses again to itself, and needs SMTPUTF8 only when allowed.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/check.h"
#include "smtp/address.h"
#include "smtp/limits.h"
#include "smtp/utf8.h"

namespace petrel::smtp {
namespace {

void CheckRefusal(const Reply& r, PathRole role) {
  CHECK(r.code == 501 || r.code == 553);
  CHECK(r.status.has_value());
  if (r.code == 501) {
    CHECK(r.status->detail == (role == PathRole::kSender ? 7 : 3));
  }
  CHECK(!r.Format().empty());
}

void CheckMailbox(const Mailbox& m, bool utf8) {
  CHECK(m.local_part.size() <= kMaxLocalPartOctets);
  CHECK(m.domain.size() <= kMaxDomainOctets);
  CHECK(!m.local_part.empty());
  if (!utf8) CHECK(!m.NeedsSmtpUtf8());
  CHECK(IsValidUtf8(m.local_part) && IsValidUtf8(m.domain));
  if (m.IsAddressLiteral()) {
    CHECK(IsValidAddressLiteral(m.domain));
  } else if (!m.domain.empty()) {
    CHECK(IsValidDomain(m.domain, utf8));
  }
  CHECK(m.UnquotedLocalPart().size() <= m.local_part.size());
  CHECK(m.DomainLower().size() == m.domain.size());
}

void FuzzOne(std::string_view input) {
  for (PathRole role : {PathRole::kSender, PathRole::kRecipient}) {
    PathResult strict;  // without SMTPUTF8
    for (bool utf8 : {false, true}) {
      PathResult path = ParsePath(input, role, utf8);
      if (!path) {
        CheckRefusal(path.error(), role);
      } else {
        CHECK(input.size() <= kMaxPathOctets);
        if (!*path) {
          CHECK(role == PathRole::kSender && input == "<>");
        } else {
          const Mailbox& m = **path;
          CheckMailbox(m, utf8);
          if (m.domain.empty()) {
            CHECK(role == PathRole::kRecipient);
          } else {
            // The mailbox (source route dropped) parses back to itself.
            auto again = ParsePath("<" + m.ToString() + ">", role, utf8);
            CHECK(again.has_value() && again->has_value() && **again == m);
            auto bare = ParseMailbox(m.ToString(), role, utf8);
            CHECK(bare.has_value() && *bare == m);
          }
        }
      }
      // Allowing SMTPUTF8 never takes away what ASCII-only accepted.
      if (!utf8) {
        strict = path;
      } else if (strict) {
        CHECK(path.has_value() && *path == *strict);
      }
    }
    for (bool utf8 : {false, true}) {
      auto mailbox = ParseMailbox(input, role, utf8);
      if (mailbox) {
        CheckMailbox(*mailbox, utf8);
        CHECK(mailbox->ToString() == input);
      } else {
        CheckRefusal(mailbox.error(), role);
      }
    }
  }
  if (IsValidDomain(input, false)) {
    CHECK(IsValidDomain(input, true));
    CHECK(input.size() <= kMaxDomainOctets);
  }
  if (IsValidAddressLiteral(input)) CHECK(input.front() == '[');
}

}  // namespace
}  // namespace petrel::smtp

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data,
                                      std::size_t size) {
  petrel::smtp::FuzzOne(
      std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
