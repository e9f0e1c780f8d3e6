#include "tls/tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <map>
#include <mutex>

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

// --- Client side -------------------------------------------------------

struct ClientContext::Impl {
  ssl::context ctx{ssl::context::tls_client};
};

namespace {

// What verification found, kept per connection (SSL ex_data) by the verify
// callback, which lets every error pass: opportunistic TLS never aborts on
// a certificate (RFC 7435), it only records.
struct VerifyRecord {
  int chain_error = X509_V_OK;  // the first error other than the name's
  bool name_mismatch = false;
};

int VerifyRecordIndex() {
  static const int index =
      SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

int RecordVerification(int ok, X509_STORE_CTX* store) {
  if (ok == 1) return 1;
  auto* ssl = static_cast<SSL*>(
      X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
  auto* record = ssl == nullptr ? nullptr
                                : static_cast<VerifyRecord*>(SSL_get_ex_data(
                                      ssl, VerifyRecordIndex()));
  if (record != nullptr) {
    const int error = X509_STORE_CTX_get_error(store);
    if (error == X509_V_ERR_HOSTNAME_MISMATCH) {
      record->name_mismatch = true;
    } else if (record->chain_error == X509_V_OK) {
      record->chain_error = error;
    }
  }
  return 1;
}

}  // namespace

ClientContext::ClientContext(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}
ClientContext::~ClientContext() = default;

Result<std::shared_ptr<ClientContext>> ClientContext::Create(
    const std::string& ca_file) {
  auto impl = std::make_unique<Impl>();
  SSL_CTX* ctx = impl->ctx.native_handle();
  ERR_clear_error();
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  // OpenSSL's default suites, not the server's short list: for
  // opportunistic TLS any encryption is better than the plaintext a failed
  // handshake falls back to (Postfix uses its "medium" grade here too).
  if (!ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, ca_file.c_str(), nullptr) != 1) {
      return Error(Status::InvalidArgument("tls: CA file " + ca_file + ": " +
                                           OpenSslError()));
    }
  } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
    return Error(Status::Internal("tls: system CA store: " + OpenSslError()));
  }
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, RecordVerification);
  // No session cache: every handshake verifies the certificate afresh.
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  VerifyRecordIndex();  // allocate the index before any connection
  return std::shared_ptr<ClientContext>(new ClientContext(std::move(impl)));
}

Result<std::shared_ptr<ClientContext>> ClientContext::Shared(
    const std::string& ca_file) {
  static std::mutex mu;
  static std::map<std::string, Result<std::shared_ptr<ClientContext>>> shared;
  std::lock_guard lock(mu);
  auto it = shared.find(ca_file);
  if (it == shared.end()) it = shared.emplace(ca_file, Create(ca_file)).first;
  return it->second;
}

struct ClientStream::Impl {
  Impl(ssl::context& ctx, tcp::socket& socket) : stream(socket, ctx) {}
  ssl::stream<tcp::socket&> stream;
  VerifyRecord record;
  bool name_checked = false;
};

ClientStream::ClientStream(std::shared_ptr<ClientContext> context,
                           tcp::socket& socket, const std::string& host)
    : context_(std::move(context)),
      impl_(std::make_unique<Impl>(context_->impl().ctx, socket)) {
  SSL* ssl = impl_->stream.native_handle();
  SSL_set_ex_data(ssl, VerifyRecordIndex(), &impl_->record);
  std::string name = host;
  if (!name.empty() && name.back() == '.') name.pop_back();
  boost::system::error_code not_ip;
  asio::ip::make_address(name, not_ip);
  // RFC 6066 3: SNI is a DNS name, never an address literal.
  if (!name.empty() && not_ip) {
    SSL_set_tlsext_host_name(ssl, name.c_str());
    SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    impl_->name_checked = SSL_set1_host(ssl, name.c_str()) == 1;
  }
}

ClientStream::~ClientStream() = default;

asio::awaitable<boost::system::error_code> ClientStream::Handshake() {
  auto [ec] = co_await impl_->stream.async_handshake(ssl::stream_base::client,
                                                     kUseTuple);
  co_return ec;
}

asio::awaitable<std::pair<boost::system::error_code, std::size_t>>
ClientStream::ReadSome(asio::mutable_buffer buffer) {
  auto [ec, n] = co_await impl_->stream.async_read_some(buffer, kUseTuple);
  co_return std::make_pair(ec, n);
}

asio::awaitable<boost::system::error_code> ClientStream::Write(
    asio::const_buffer buffer) {
  auto [ec, n] = co_await asio::async_write(impl_->stream, buffer, kUseTuple);
  co_return ec;
}

std::string ClientStream::Version() const {
  return SSL_get_version(impl_->stream.native_handle());
}

std::string ClientStream::Cipher() const {
  const char* name = SSL_get_cipher_name(impl_->stream.native_handle());
  return name ? name : "";
}

int ClientStream::CipherBits() const {
  return SSL_get_cipher_bits(impl_->stream.native_handle(), nullptr);
}

int ClientStream::CipherAlgorithmBits() const {
  int bits = 0;
  SSL_get_cipher_bits(impl_->stream.native_handle(), &bits);
  return bits;
}

bool ClientStream::Trusted() const {
  return SSL_get0_peer_certificate(impl_->stream.native_handle()) != nullptr &&
         impl_->record.chain_error == X509_V_OK;
}

bool ClientStream::Verified() const {
  return Trusted() && impl_->name_checked && !impl_->record.name_mismatch;
}

std::string ClientStream::VerifyError() const {
  if (SSL_get0_peer_certificate(impl_->stream.native_handle()) == nullptr) {
    return "no peer certificate";
  }
  if (impl_->record.chain_error != X509_V_OK) {
    return X509_verify_cert_error_string(impl_->record.chain_error);
  }
  if (!impl_->name_checked) return "no host name to check";
  if (impl_->record.name_mismatch) {
    return X509_verify_cert_error_string(X509_V_ERR_HOSTNAME_MISMATCH);
  }
  return "";
}

}  // namespace petrel::tls
