// Fuzzes the SASL pieces of AUTH (src/smtp/sasl.h): DecodeBase64 accepts
// only canonical base64 (what it accepts encodes back to the same text),
// EncodeBase64 always decodes back, and ParsePlainMessage never yields an
// empty user or password, nor a password with NUL.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/check.h"
#include "smtp/sasl.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data,
                                      std::size_t size) {
  using namespace petrel::smtp;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  if (auto decoded = DecodeBase64(input)) {
    CHECK(EncodeBase64(*decoded) == input);
    if (auto c = ParsePlainMessage(*decoded)) {
      CHECK(!c->user.empty() && !c->password.empty());
      CHECK(c->password.find('\0') == std::string::npos);
    }
  }
  auto back = DecodeBase64(EncodeBase64(input));
  CHECK(back.has_value() && *back == input);
  if (auto c = ParsePlainMessage(input)) {
    auto again = DecodeBase64(EncodePlainResponse(c->user, c->password));
    CHECK(again.has_value());
    auto c2 = ParsePlainMessage(*again);
    CHECK(c2.has_value() && c2->user == c->user && c2->password == c->password);
  }
  ParseSaslMechanism(input);
  return 0;
}
