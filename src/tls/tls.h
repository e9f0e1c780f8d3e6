// TLS for petrel (RFC 3207 STARTTLS, RFC 8314 implicit TLS): the only folder
// that includes OpenSSL; everything else sees these small types.
//
// ServerContext holds the certificate and key, TLS 1.2 and 1.3 only, with a
// modern cipher list (ECDHE with AES-GCM or ChaCha20 for TLS 1.2; OpenSSL's
// TLS 1.3 suites). Load() reports a missing or unreadable file, a key that
// does not match, by name. Immutable once loaded: share it with shared_ptr
// and swap in a new one on reload (SIGHUP); sessions keep the one they
// started with.
//
// ServerStream runs TLS over a session's TCP socket (which must outlive it).
// Its operations are awaitables; errors come back as error codes, never
// exceptions. Not thread-safe: one session coroutine at a time.
//
// The client side (the SMTP client's STARTTLS, RFC 3207): ClientContext
// trusts the system CA store (or one CA file, [delivery] tls_ca_file)
// (SSL_CTX_set_default_verify_paths), TLS 1.2 and 1.3 only, the same TLS 1.2
// suites as the server. Shared() is one process-wide context, created on first
// use (thread-safe); SSL_CTX may be used by many connections at once.
// ClientStream runs the handshake with SNI and the peer-name check set to the
// MX host name. Verification is always performed but never aborts the handshake
// (opportunistic TLS, "may": RFC 7435): the result is recorded, and the caller
// logs it in Postfix's words: "Verified" (chain trusted and the certificate
// names the host), "Trusted" (chain trusted, name does not match) or
// "Untrusted". The certificate is untrusted input; OpenSSL parses it.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>
#include <memory>
#include <string>
#include <utility>

#include "base/status.h"

namespace petrel::tls {

class ServerContext {
 public:
  static Result<std::shared_ptr<ServerContext>> Load(
      const std::string& certificate_path, const std::string& key_path);
  ~ServerContext();

  struct Impl;
  Impl& impl() { return *impl_; }

 private:
  explicit ServerContext(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

class ServerStream {
 public:
  ServerStream(std::shared_ptr<ServerContext> context,
               boost::asio::ip::tcp::socket& socket);
  ~ServerStream();

  boost::asio::awaitable<boost::system::error_code> Handshake();
  boost::asio::awaitable<std::pair<boost::system::error_code, std::size_t>>
  ReadSome(boost::asio::mutable_buffer buffer);
  boost::asio::awaitable<boost::system::error_code> Write(
      boost::asio::const_buffer buffer);

  // After the handshake: "TLSv1.3", "TLS_AES_256_GCM_SHA384", key bits.
  std::string Version() const;
  std::string Cipher() const;
  int CipherBits() const;

 private:
  struct Impl;
  std::shared_ptr<ServerContext> context_;
  std::unique_ptr<Impl> impl_;
};

class ClientContext {
 public:
  // `ca_file` (PEM): trust only these CAs; "": the system store.
  static Result<std::shared_ptr<ClientContext>> Create(
      const std::string& ca_file = "");
  // One context per CA file for the process, created on first use; an
  // error is returned again on every call (nothing is retried).
  static Result<std::shared_ptr<ClientContext>> Shared(
      const std::string& ca_file = "");
  ~ClientContext();

  struct Impl;
  Impl& impl() { return *impl_; }

 private:
  explicit ClientContext(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

class ClientStream {
 public:
  // `host`: the MX host name, for SNI and the name check ("" or an IP
  // literal: no SNI, and the certificate cannot be Verified). `socket`
  // must outlive the stream.
  ClientStream(std::shared_ptr<ClientContext> context,
               boost::asio::ip::tcp::socket& socket, const std::string& host);
  ~ClientStream();

  // Fails only on a failed handshake, never on verification (see above);
  // the error's message() has OpenSSL's reason.
  boost::asio::awaitable<boost::system::error_code> Handshake();
  boost::asio::awaitable<std::pair<boost::system::error_code, std::size_t>>
  ReadSome(boost::asio::mutable_buffer buffer);
  boost::asio::awaitable<boost::system::error_code> Write(
      boost::asio::const_buffer buffer);

  // After the handshake: "TLSv1.3", "TLS_AES_256_GCM_SHA384", the cipher's
  // secret and algorithm key bits.
  std::string Version() const;
  std::string Cipher() const;
  int CipherBits() const;
  int CipherAlgorithmBits() const;
  // The chain leads to a trusted CA (and is otherwise valid).
  bool Trusted() const;
  // Trusted(), and the certificate names the host.
  bool Verified() const;
  // Why not Verified(): OpenSSL's text for the first verification error
  // ("self-signed certificate"); "" when Verified().
  std::string VerifyError() const;

 private:
  struct Impl;
  std::shared_ptr<ClientContext> context_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace petrel::tls
