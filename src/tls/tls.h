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

}  // namespace petrel::tls
