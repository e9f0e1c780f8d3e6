#include "tls/tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace petrel::tls {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using asio::ip::tcp;
constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);

struct ServerContext::Impl {
  ssl::context ctx{ssl::context::tls_server};
};

namespace {

std::string OpenSslError() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

// TLS 1.2 suites with forward secrecy and AEAD only; TLS 1.3 uses OpenSSL's
// defaults, all of which are modern.
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256";

}  // namespace

ServerContext::ServerContext(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}
ServerContext::~ServerContext() = default;

Result<std::shared_ptr<ServerContext>> ServerContext::Load(
    const std::string& certificate_path, const std::string& key_path) {
  auto impl = std::make_unique<Impl>();
  SSL_CTX* ctx = impl->ctx.native_handle();
  ERR_clear_error();
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                               SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (SSL_CTX_set_cipher_list(ctx, kTls12Ciphers) != 1) {
    return Error(Status::Internal("tls: cipher list: " + OpenSslError()));
  }
  if (SSL_CTX_use_certificate_chain_file(ctx, certificate_path.c_str()) != 1) {
    return Error(Status::InvalidArgument("tls.certificate: cannot load " +
                                         certificate_path + ": " +
                                         OpenSslError()));
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key_path.c_str(), SSL_FILETYPE_PEM) !=
      1) {
    return Error(Status::InvalidArgument("tls.private_key: cannot load " +
                                         key_path + ": " + OpenSslError()));
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return Error(Status::InvalidArgument(
        "tls.private_key: does not match tls.certificate: " + OpenSslError()));
  }
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
  return std::shared_ptr<ServerContext>(new ServerContext(std::move(impl)));
}

struct ServerStream::Impl {
  Impl(ssl::context& ctx, tcp::socket& socket) : stream(socket, ctx) {}
  ssl::stream<tcp::socket&> stream;
};

ServerStream::ServerStream(std::shared_ptr<ServerContext> context,
                           tcp::socket& socket)
    : context_(std::move(context)),
      impl_(std::make_unique<Impl>(context_->impl().ctx, socket)) {}

ServerStream::~ServerStream() = default;

asio::awaitable<boost::system::error_code> ServerStream::Handshake() {
  auto [ec] = co_await impl_->stream.async_handshake(ssl::stream_base::server,
                                                     kUseTuple);
  co_return ec;
}

asio::awaitable<std::pair<boost::system::error_code, std::size_t>>
ServerStream::ReadSome(asio::mutable_buffer buffer) {
  auto [ec, n] = co_await impl_->stream.async_read_some(buffer, kUseTuple);
  co_return std::make_pair(ec, n);
}

asio::awaitable<boost::system::error_code> ServerStream::Write(
    asio::const_buffer buffer) {
  auto [ec, n] = co_await asio::async_write(impl_->stream, buffer, kUseTuple);
  co_return ec;
}

std::string ServerStream::Version() const {
  return SSL_get_version(impl_->stream.native_handle());
}

std::string ServerStream::Cipher() const {
  const char* name = SSL_get_cipher_name(impl_->stream.native_handle());
  return name ? name : "";
}

int ServerStream::CipherBits() const {
  return SSL_get_cipher_bits(impl_->stream.native_handle(), nullptr);
}

}  // namespace petrel::tls
