#include "delivery/maildir.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <random>
#include <system_error>
#include <utility>

#include "smtp/address.h"
#include "smtp/reply.h"
#include "smtp/utf8.h"

namespace petrel::delivery {
namespace {

constexpr std::size_t kMaxNameOctets = 255;  // NAME_MAX
constexpr std::size_t kWriteBufferOctets = 64 * 1024;

MaildirResult Fail(MaildirResult::Kind kind, smtp::EnhancedStatus status,
                   std::string text) {
  MaildirResult r;
  r.kind = kind;
  r.status = status;
  r.text = std::move(text);
  return r;
}

MaildirResult BadMailbox(std::string text) {
  return Fail(MaildirResult::Kind::kPermanent, {5, 1, 3}, std::move(text));
}

std::string ErrnoText(int err) {
  return std::error_code(err, std::generic_category()).message();
}

// Where a failing step leaves us: a full disk or quota is 4.3.1; a Maildir
// we cannot make or open is a mailbox problem (4.2.0); the rest 4.3.0.
MaildirResult IoFailure(std::string_view step, const std::string& path,
                        int err) {
  smtp::EnhancedStatus status{4, 3, 0};
  if (err == ENOSPC || err == EDQUOT) {
    status = {4, 3, 1};
  } else if (step == "mkdir" || step == "open") {
    status = {4, 2, 0};
  }
  std::string text = "maildir delivery failed: ";
  text += step;
  text += " ";
  text += path;
  text += ": ";
  text += ErrnoText(err);
  return Fail(MaildirResult::Kind::kTemporary, status, std::move(text));
}

// Runs the fault hook for `step`: its errno, or 0.
int Fault(const MaildirOptions& options, std::string_view step) {
  return options.fault ? options.fault(step) : 0;
}

// A user or domain that names exactly one folder under the template's base.
// Returns why not, or "" if it is safe.
std::string UnsafeComponent(std::string_view s) {
  if (s.empty()) return "empty";
  if (s.size() > kMaxNameOctets) return "too long";
  if (s.front() == '.') return "starts with '.'";
  if (s.find("..") != std::string_view::npos) return "contains \"..\"";
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '/') return "contains '/'";
    if (u < 0x20 || u == 0x7F) return "contains a control character";
  }
  if (!smtp::IsValidUtf8(s)) return "is not UTF-8";
  return "";
}

void ReplaceAll(std::string& s, std::string_view from, std::string_view to) {
  for (std::size_t pos = s.find(from); pos != std::string::npos;
       pos = s.find(from, pos + to.size())) {
    s.replace(pos, from.size(), to);
  }
}

// fsync of a directory, so that entries made in it survive a crash.
int SyncDir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno;
  int err = 0;
  if (::fsync(fd) != 0) err = errno;
  ::close(fd);
  return err;
}

std::string Parent(const std::string& path) {
  const std::size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

bool IsDir(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// mkdir -p with a sync of each parent that gained an entry. On failure,
// sets `step` ("mkdir" or "dirsync") and returns the errno; else 0.
int MakeDirs(const std::string& path, const MaildirOptions& options,
             std::string_view& step) {
  if (path.empty() || IsDir(path)) return 0;
  if (const int err = MakeDirs(Parent(path), options, step); err != 0) {
    return err;
  }
  step = "mkdir";
  if (const int err = Fault(options, "mkdir"); err != 0) return err;
  if (::mkdir(path.c_str(), 0700) != 0) {
    if (errno != EEXIST) return errno;
    return IsDir(path) ? 0 : ENOTDIR;  // lost a race, or a file is there
  }
  step = "dirsync";
  if (const int err = Fault(options, "dirsync"); err != 0) return err;
  return SyncDir(Parent(path));
}

std::string Hostname(const MaildirOptions& options) {
  std::string host = options.hostname;
  if (host.empty()) {
    char buf[256] = {};
    if (::gethostname(buf, sizeof buf - 1) == 0) host = buf;
    if (host.empty()) host = "localhost";
  }
  // The spec: '/' as \057 and ':' as \072 (':' starts the info part).
  ReplaceAll(host, "/", "\\057");
  ReplaceAll(host, ":", "\\072");
  return host;
}

// "time.unique.host": unique = M<usec>P<pid>Q<counter>R<random>.
std::string UniqueName(const std::string& host) {
  static std::atomic<std::uint64_t> counter{0};
  thread_local std::mt19937_64 rng{std::random_device{}()};
  struct timeval tv;
  ::gettimeofday(&tv, nullptr);
  char buf[128];
  std::snprintf(buf, sizeof buf, "%lld.M%ldP%ldQ%lluR%016llx.",
                static_cast<long long>(tv.tv_sec),
                static_cast<long>(tv.tv_usec), static_cast<long>(::getpid()),
                static_cast<unsigned long long>(++counter),
                static_cast<unsigned long long>(rng()));
  return buf + host;
}

// Writes everything to `fd`; 0 or errno.
int WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return 0;
}

// Buffers the file's octets, turning CRLF into LF across pieces.
class FileWriter {
 public:
  FileWriter(int fd, const MaildirOptions& options)
      : fd_(fd), options_(options) {}

  // 0 or errno (also every later call after a failure).
  int Add(std::string_view data) {
    for (char c : data) {
      if (pending_cr_) {
        pending_cr_ = false;
        if (c != '\n') buffer_ += '\r';  // a bare CR stays
      }
      if (c == '\r') {
        pending_cr_ = true;
      } else {
        buffer_ += c;
      }
    }
    return buffer_.size() >= kWriteBufferOctets ? Flush() : error_;
  }

  int Finish() {
    if (pending_cr_) buffer_ += '\r';
    pending_cr_ = false;
    return Flush();
  }

 private:
  int Flush() {
    if (error_ != 0) return error_;
    if (buffer_.empty()) return 0;
    error_ = Fault(options_, "write");
    if (error_ == 0) error_ = WriteAll(fd_, buffer_);
    buffer_.clear();
    return error_;
  }

  int fd_;
  const MaildirOptions& options_;
  std::string buffer_;
  bool pending_cr_ = false;
  int error_ = 0;
};

}  // namespace

std::string MaildirUser(std::string_view local_part) {
  smtp::Mailbox mailbox;
  mailbox.local_part = std::string(local_part);
  std::string user = mailbox.UnquotedLocalPart();
  user = user.substr(0, user.find('+'));
  for (char& c : user) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return user;
}

tl::expected<std::string, MaildirResult> MaildirPathFor(
    std::string_view maildir_template, std::string_view recipient) {
  auto mailbox = smtp::ParseMailbox(recipient, smtp::PathRole::kRecipient,
                                    /*utf8_allowed=*/true);
  if (!mailbox) {
    return tl::unexpected(BadMailbox("bad destination mailbox address: " +
                                     smtp::SanitizeText(recipient, 300) + ": " +
                                     mailbox.error().Text()));
  }
  const std::string user = MaildirUser(mailbox->local_part);
  const std::string domain = mailbox->DomainLower();
  if (const std::string why = UnsafeComponent(user); !why.empty()) {
    return tl::unexpected(
        BadMailbox("bad destination mailbox address: user name " + why + ": " +
                   smtp::SanitizeText(recipient, 300)));
  }
  if (const std::string why = UnsafeComponent(domain); !why.empty()) {
    return tl::unexpected(
        BadMailbox("bad destination mailbox address: domain " + why + ": " +
                   smtp::SanitizeText(recipient, 300)));
  }
  std::string path(maildir_template);
  ReplaceAll(path, "{user}", user);
  ReplaceAll(path, "{domain}", domain);
  return path;
}

MaildirResult DeliverToMaildir(const std::string& maildir,
                               std::string_view sender,
                               std::string_view recipient,
                               const ContentSource& content,
                               const MaildirOptions& options) {
  std::string dir = maildir;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  for (const char* sub : {"/tmp", "/new", "/cur"}) {
    std::string_view step = "mkdir";
    if (const int err = MakeDirs(dir + sub, options, step); err != 0) {
      return IoFailure(step, dir + sub, err);
    }
  }
  const std::string host = Hostname(options);

  // Create tmp/<unique>; a name already there (it should never be) gets
  // another.
  std::string name;
  std::string tmp_path;
  int fd = -1;
  for (int attempt = 0; fd < 0; ++attempt) {
    name = UniqueName(host);
    tmp_path = dir + "/tmp/" + name;
    int err = Fault(options, "open");
    if (err == 0) {
      fd = ::open(tmp_path.c_str(),
                  O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
      if (fd < 0) err = errno;
    }
    if (fd < 0 && (err != EEXIST || attempt >= 3)) {
      return IoFailure("open", tmp_path, err);
    }
  }
  auto fail = [&](std::string_view step, int err) {
    if (fd >= 0) ::close(fd);
    ::unlink(tmp_path.c_str());
    return IoFailure(step, tmp_path, err);
  };

  FileWriter writer(fd, options);
  std::string head = "Return-Path: <" + smtp::SanitizeText(sender, 512) +
                     ">\nDelivered-To: " + smtp::SanitizeText(recipient, 512) +
                     "\n";
  int write_err = writer.Add(head);
  const Status read = content([&](std::string_view piece) {
    if (write_err == 0) write_err = writer.Add(piece);
    return write_err == 0 ? Status::Ok() : Status::IoError("write");
  });
  if (write_err == 0) write_err = writer.Finish();
  if (write_err != 0) return fail("write", write_err);
  if (!read.ok()) {
    ::close(fd);
    ::unlink(tmp_path.c_str());
    return Fail(MaildirResult::Kind::kTemporary, {4, 3, 0},
                "cannot read the queued message: " + read.ToString());
  }
  int err = Fault(options, "fsync");
  if (err == 0 && ::fsync(fd) != 0) err = errno;
  if (err != 0) return fail("fsync", err);
  const int close_rc = ::close(fd);
  fd = -1;
  if (close_rc != 0) return fail("write", errno);  // NFS reports quota here

  // tmp/ -> new/: link() never replaces a file (the spec's way); rename()
  // where the file system has no hard links.
  std::string new_path;
  for (int attempt = 0;; ++attempt) {
    new_path = dir + "/new/" + name;
    err = Fault(options, "link");
    if (err == 0 && ::link(tmp_path.c_str(), new_path.c_str()) != 0) {
      err = errno;
    }
    if (err == 0) {
      ::unlink(tmp_path.c_str());
      break;
    }
    if (err == EPERM || err == EXDEV || err == ENOSYS || err == EOPNOTSUPP) {
      struct stat st;
      if (::lstat(new_path.c_str(), &st) == 0) {
        err = EEXIST;  // rename() would replace it: pick another name
      } else if (::rename(tmp_path.c_str(), new_path.c_str()) == 0) {
        break;
      } else {
        return fail("link", errno);
      }
    }
    if (err != EEXIST || attempt >= 3) return fail("link", err);
    name = UniqueName(host);
  }
  err = Fault(options, "dirsync");
  if (err == 0) err = SyncDir(dir + "/new");
  if (err != 0) {
    // Not durable: take it back, so that the retry does not deliver twice.
    ::unlink(new_path.c_str());
    ::unlink(tmp_path.c_str());
    return IoFailure("dirsync", dir + "/new", err);
  }
  MaildirResult ok;
  ok.kind = MaildirResult::Kind::kDelivered;
  ok.status = {2, 0, 0};
  ok.text = "delivered to maildir";
  ok.path = new_path;
  return ok;
}

MaildirResult DeliverToMaildir(const std::string& maildir,
                               std::string_view sender,
                               std::string_view recipient,
                               std::string_view content,
                               const MaildirOptions& options) {
  return DeliverToMaildir(
      maildir, sender, recipient,
      [content](const ContentSink& sink) { return sink(content); }, options);
}

}  // namespace petrel::delivery
