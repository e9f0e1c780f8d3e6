#include "admin/admin.h"

#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <nlohmann/json.hpp>

#include "base/log.h"

namespace petrel::admin {

namespace asio = boost::asio;
using asio::local::stream_protocol;
constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kMaxRequestOctets = 1 << 20;
constexpr auto kRequestTimeout = std::chrono::seconds(300);

struct AdminServer::Impl {
  Impl(asio::io_context& io_, Handler& h, std::uint64_t max)
      : io(io_), acceptor(io_), handler(h), max_payload(max) {}
  asio::io_context& io;
  stream_protocol::acceptor acceptor;
  Handler& handler;
  std::uint64_t max_payload;
  std::string path;
};

namespace {

std::string ErrorReply(const std::string& message) {
  return nlohmann::json{{"ok", false}, {"error", message}}.dump();
}

asio::awaitable<void> Serve(stream_protocol::socket socket, Handler& handler,
                            std::uint64_t max_payload) {
  asio::steady_timer deadline(socket.get_executor());
  deadline.expires_after(kRequestTimeout);
  deadline.async_wait([&socket](boost::system::error_code ec) {
    if (!ec) {
      boost::system::error_code ignored;
      socket.close(ignored);
    }
  });
  asio::streambuf buf(kMaxRequestOctets);
  auto [ec, n] = co_await asio::async_read_until(socket, buf, '\n', kUseTuple);
  std::string reply;
  if (ec) {
    reply = ErrorReply(ec == asio::error::not_found
                           ? "request line too long"
                           : "cannot read the request: " + ec.message());
  } else {
    std::string line(asio::buffers_begin(buf.data()),
                     asio::buffers_begin(buf.data()) + n - 1);
    buf.consume(n);
    std::uint64_t payload_octets = 0;
    auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) {
      reply = ErrorReply("the request is not a JSON object");
    } else {
      if (auto it = j.find("payload_octets");
          it != j.end() && it->is_number_unsigned()) {
        payload_octets = it->get<std::uint64_t>();
      }
      if (payload_octets > max_payload) {
        reply =
            ErrorReply("message too large: " + std::to_string(payload_octets) +
                       " octets, limit " + std::to_string(max_payload));
      } else {
        std::string payload;
        payload.reserve(payload_octets);
        std::size_t have = std::min<std::size_t>(buf.size(), payload_octets);
        payload.append(asio::buffers_begin(buf.data()),
                       asio::buffers_begin(buf.data()) + have);
        if (payload.size() < payload_octets) {
          std::size_t want = payload_octets - payload.size();
          std::size_t old = payload.size();
          payload.resize(payload_octets);
          auto [rec, got] = co_await asio::async_read(
              socket, asio::buffer(payload.data() + old, want), kUseTuple);
          if (rec) {
            reply = ErrorReply("payload cut short: " + rec.message());
          }
        }
        if (reply.empty()) {
          reply = co_await handler.Handle(std::move(line), std::move(payload));
        }
      }
    }
  }
  reply += "\n";
  co_await asio::async_write(socket, asio::buffer(reply), kUseTuple);
  deadline.cancel();
  boost::system::error_code ignored;
  socket.close(ignored);
}

asio::awaitable<void> Accept(AdminServer::Impl* impl) {
  for (;;) {
    auto [ec, socket] = co_await impl->acceptor.async_accept(
        asio::make_strand(impl->io), kUseTuple);
    if (ec == asio::error::operation_aborted) co_return;
    if (ec) {
      log::Error("admin socket: accept: {}", ec.message());
      continue;
    }
    auto ex = socket.get_executor();
    asio::co_spawn(ex,
                   Serve(std::move(socket), impl->handler, impl->max_payload),
                   asio::detached);
  }
}

}  // namespace

AdminServer::AdminServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

AdminServer::~AdminServer() { Close(); }

void AdminServer::Close() {
  if (!impl_->acceptor.is_open()) return;
  boost::system::error_code ignored;
  impl_->acceptor.close(ignored);
  ::unlink(impl_->path.c_str());
}

Result<std::unique_ptr<AdminServer>> AdminServer::Listen(
    asio::io_context& io, const std::string& path, Handler& handler,
    std::uint64_t max_payload_octets) {
  auto impl = std::make_unique<Impl>(io, handler, max_payload_octets);
  impl->path = path;
  if (path.size() >= sizeof(sockaddr_un::sun_path)) {
    return Error(
        Status::InvalidArgument("server.admin_socket: path too long: " + path));
  }
  // A stale socket from a killed server is in the way; a live one means
  // another petrel runs here.
  if (Call(path, R"({"cmd":"ping"})").has_value()) {
    return Error(
        Status::Unavailable("server.admin_socket: another petrel is "
                            "already listening on " +
                            path));
  }
  ::unlink(path.c_str());
  boost::system::error_code ec;
  impl->acceptor.open(stream_protocol(), ec);
  mode_t old = ::umask(0077);
  if (!ec) impl->acceptor.bind(stream_protocol::endpoint(path), ec);
  ::umask(old);
  if (!ec) impl->acceptor.listen(64, ec);
  if (ec) {
    return Error(Status::IoError("server.admin_socket: cannot listen on " +
                                 path + ": " + ec.message()));
  }
  asio::co_spawn(io, Accept(impl.get()), asio::detached);
  return std::unique_ptr<AdminServer>(new AdminServer(std::move(impl)));
}

Result<std::string> Call(const std::string& path, const std::string& request,
                         const std::string& payload) {
  asio::io_context io;
  stream_protocol::socket socket(io);
  boost::system::error_code ec;
  socket.connect(stream_protocol::endpoint(path), ec);
  if (ec) {
    return Error(Status::Unavailable("cannot reach the server at " + path +
                                     ": " + ec.message() +
                                     " (is petrel serve running?)"));
  }
  std::string out = request + "\n";
  asio::write(socket, asio::buffer(out), ec);
  if (!ec && !payload.empty()) asio::write(socket, asio::buffer(payload), ec);
  if (ec) return Error(Status::IoError("admin socket write: " + ec.message()));
  asio::streambuf buf;
  std::size_t n = asio::read_until(socket, buf, '\n', ec);
  if (ec) return Error(Status::IoError("admin socket read: " + ec.message()));
  return std::string(asio::buffers_begin(buf.data()),
                     asio::buffers_begin(buf.data()) + n - 1);
}

}  // namespace petrel::admin
