// SASL for SMTP AUTH (RFC 4954) with the PLAIN (RFC 4616) and LOGIN
// mechanisms: base64 (RFC 4648 4, strict: padding required, no
// whitespace) and the PLAIN message. Used by the server (decoding what the
// client sends) and by the client (encoding its credentials). Untrusted
// input; pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace petrel::smtp {

std::string EncodeBase64(std::string_view bytes);
// nullopt for anything that is not canonical base64.
std::optional<std::string> DecodeBase64(std::string_view text);

struct SaslCredentials {
  std::string user;      // authentication identity (authcid)
  std::string password;  // never logged
};

// RFC 4616 2: "[authzid] NUL authcid NUL passwd", already base64-decoded.
// An authorization identity other than empty or the authcid itself is
// refused (nullopt): petrel does not let one user act as another. Empty
// user or password, or a NUL inside either, is refused too.
std::optional<SaslCredentials> ParsePlainMessage(std::string_view message);
// The client side: "\0user\0password", base64-encoded.
std::string EncodePlainResponse(std::string_view user,
                                std::string_view password);

enum class SaslMechanism { kPlain, kLogin };
// "PLAIN" / "LOGIN", case-insensitive.
std::optional<SaslMechanism> ParseSaslMechanism(std::string_view name);

// The LOGIN mechanism's challenges (draft-murchison-sasl-login), base64 of
// "Username:" and "Password:".
inline constexpr std::string_view kLoginUserChallenge = "VXNlcm5hbWU6";
inline constexpr std::string_view kLoginPasswordChallenge = "UGFzc3dvcmQ6";

}  // namespace petrel::smtp
