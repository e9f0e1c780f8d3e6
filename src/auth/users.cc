#include "auth/users.h"

#include <crypt.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "base/line_file.h"
#include "base/log.h"
#include "base/strings.h"

namespace petrel::auth {

namespace {

bool StrongHash(std::string_view hash) {
  for (std::string_view prefix :
       {"$y$", "$gy$", "$2b$", "$2y$", "$2a$", "$6$"}) {
    if (hash.substr(0, prefix.size()) == prefix) return true;
  }
  return false;
}

// crypt_rn into a heap buffer (struct crypt_data is 32 KiB).
bool CryptMatches(std::string_view password, const std::string& hash) {
  auto data = std::make_unique<crypt_data>();
  std::memset(data.get(), 0, sizeof(crypt_data));
  const std::string pw(password);
  const char* out = crypt_rn(pw.c_str(), hash.c_str(), data.get(),
                             static_cast<int>(sizeof(crypt_data)));
  if (out == nullptr || out[0] == '*') return false;
  // Constant-time comparison of the two hash strings.
  const std::size_t n = std::strlen(out);
  if (n != hash.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < n; ++i) {
    diff |= static_cast<unsigned char>(out[i] ^ hash[i]);
  }
  return diff == 0;
}

// A fixed yescrypt hash of nothing anyone knows, to spend the same time on
// an unknown user as on a known one.
const std::string& DummyHash() {
  static const std::string hash = [] {
    auto h = HashPassword("petrel dummy password for unknown users");
    return h ? *h
             : std::string(
                   "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o7"
                   "TkDJ9jBjo.zSvOHrBw3VNsYsPBhHR0A");
  }();
  return hash;
}

}  // namespace

Result<std::shared_ptr<const UserDb>> UserDb::Parse(std::string_view text,
                                                    const std::string& path) {
  auto db = std::shared_ptr<UserDb>(new UserDb());
  std::string errors =
      ParseLines(text, path, [&](std::string_view line, const LineFail& fail) {
        const std::size_t c1 = line.find(':');
        if (c1 == std::string_view::npos || c1 == 0) {
          fail("expected name:hash[:addresses]");
          return;
        }
        std::string_view name = TrimBlanks(line.substr(0, c1));
        std::string_view rest = line.substr(c1 + 1);
        const std::size_t c2 = rest.find(':');
        std::string_view hash = TrimBlanks(rest.substr(0, c2));
        std::string_view addresses = c2 == std::string_view::npos
                                         ? std::string_view()
                                         : rest.substr(c2 + 1);
        if (name.empty() ||
            name.find_first_of(" \t\"\\,") != std::string_view::npos) {
          fail("bad user name");
          return;
        }
        if (!StrongHash(hash)) {
          fail(fmt::format(
              "user \"{}\": not a crypt(3) hash (yescrypt $y$, bcrypt $2b$ or "
              "SHA-512 $6$; plaintext passwords are refused; use `petrel "
              "passwd`)",
              name));
          return;
        }
        User user;
        user.hash = std::string(hash);
        while (!addresses.empty()) {
          const std::size_t comma = addresses.find(',');
          std::string_view a = TrimBlanks(addresses.substr(0, comma));
          addresses.remove_prefix(
              comma == std::string_view::npos ? addresses.size() : comma + 1);
          if (a.empty()) continue;
          if (a.find('@') == std::string_view::npos) {
            fail(fmt::format("user \"{}\": \"{}\" is not an address", name, a));
            continue;
          }
          user.addresses.push_back(AsciiLower(a));
        }
        if (!db->users_.emplace(std::string(name), std::move(user)).second) {
          fail(fmt::format("user \"{}\" appears twice", name));
        }
      });
  if (!errors.empty()) return Error(Status::InvalidArgument(errors));
  return std::shared_ptr<const UserDb>(std::move(db));
}

Result<std::shared_ptr<const UserDb>> UserDb::Load(const std::string& path) {
  auto text = ReadLineFile(path, "users file");
  if (!text) return Error(text.error());
  return Parse(*text, path);
}

const User* UserDb::Find(std::string_view user) const {
  auto it = users_.find(user);
  return it == users_.end() ? nullptr : &it->second;
}

bool UserDb::Verify(std::string_view user, std::string_view password) const {
  const User* u = Find(user);
  if (u == nullptr) {
    (void)CryptMatches(password, DummyHash());
    return false;
  }
  return CryptMatches(password, u->hash);
}

bool MaySendAs(std::string_view user, const std::vector<std::string>& listed,
               std::string_view sender,
               const std::vector<std::string>& local_domains) {
  const std::string s = AsciiLower(sender);
  const std::string u = AsciiLower(user);
  if (u.find('@') != std::string::npos) {
    if (s == u) return true;
  } else {
    for (const auto& d : local_domains) {
      if (s == u + "@" + d) return true;
    }
  }
  for (const auto& a : listed) {
    if (s == a) return true;
  }
  return false;
}

Result<std::shared_ptr<Authenticator>> Authenticator::Open(std::string path) {
  auto a = std::shared_ptr<Authenticator>(new Authenticator(std::move(path)));
  auto db = UserDb::Load(a->path_);
  if (!db) return Error(db.error());
  a->db_ = *db;
  struct stat st {};
  if (::stat(a->path_.c_str(), &st) == 0) {
    a->mtime_ns_ = static_cast<long long>(st.st_mtim.tv_sec) * 1000000000LL +
                   st.st_mtim.tv_nsec;
    a->size_ = static_cast<long long>(st.st_size);
  }
  return a;
}

void Authenticator::RefreshLocked() {
  struct stat st {};
  if (::stat(path_.c_str(), &st) != 0) return;  // keep the last good one
  const long long mtime =
      static_cast<long long>(st.st_mtim.tv_sec) * 1000000000LL +
      st.st_mtim.tv_nsec;
  const long long size = static_cast<long long>(st.st_size);
  if (mtime == mtime_ns_ && size == size_) return;
  mtime_ns_ = mtime;
  size_ = size;
  auto db = UserDb::Load(path_);
  if (!db) {
    log::Error("auth: keeping the previous users: {}", db.error().ToString());
    return;
  }
  log::Info("auth: reloaded {} ({} users)", path_, (*db)->size());
  db_ = *db;
}

Authenticator::Outcome Authenticator::Check(std::string_view user,
                                            std::string_view password) {
  std::shared_ptr<const UserDb> db;
  {
    std::lock_guard lock(mu_);
    RefreshLocked();
    db = db_;
  }
  Outcome out;
  out.ok = db->Verify(user, password);
  if (out.ok) {
    if (const User* entry = db->Find(user)) out.addresses = entry->addresses;
  }
  return out;
}

Result<std::string> HashPassword(std::string_view password) {
  char salt[CRYPT_GENSALT_OUTPUT_SIZE];
  if (crypt_gensalt_rn("$y$", 0, nullptr, 0, salt, sizeof salt) == nullptr) {
    return Error(Status::Internal(
        fmt::format("crypt_gensalt: {}", std::strerror(errno))));
  }
  auto data = std::make_unique<crypt_data>();
  std::memset(data.get(), 0, sizeof(crypt_data));
  const std::string pw(password);
  const char* out = crypt_rn(pw.c_str(), salt, data.get(),
                             static_cast<int>(sizeof(crypt_data)));
  if (out == nullptr || out[0] == '*') {
    return Error(
        Status::Internal(fmt::format("crypt: {}", std::strerror(errno))));
  }
  return std::string(out);
}

Status SetPassword(const std::string& path, std::string_view user,
                   std::string_view hash) {
  if (user.empty() ||
      user.find_first_of(" \t:\"\\,\r\n") != std::string_view::npos) {
    return Status::InvalidArgument(
        fmt::format("bad user name \"{}\"", std::string(user)));
  }
  std::string old;  // a missing file starts empty
  if (auto r = ReadLineFile(path, "users file")) old = std::move(*r);
  std::string out;
  bool replaced = false;
  std::string_view text = old;
  while (!text.empty()) {
    const std::size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    std::string_view t = TrimBlanks(line);
    const std::size_t c1 = t.find(':');
    if (!replaced && !t.empty() && t.front() != '#' &&
        c1 != std::string_view::npos && TrimBlanks(t.substr(0, c1)) == user) {
      std::string_view rest = t.substr(c1 + 1);
      const std::size_t c2 = rest.find(':');
      out += fmt::format("{}:{}{}\n", std::string(user), std::string(hash),
                         c2 == std::string_view::npos
                             ? std::string()
                             : std::string(rest.substr(c2)));
      replaced = true;
      continue;
    }
    out += line;
    out += '\n';
  }
  if (!replaced) {
    out += fmt::format("{}:{}\n", std::string(user), std::string(hash));
  }
  const std::string tmp = path + ".tmp";
  const int fd =
      ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    return Status::IoError(
        fmt::format("{}: cannot create: {}", tmp, std::strerror(errno)));
  }
  std::size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = ::write(fd, out.data() + done, out.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return Status::IoError(
          fmt::format("{}: write: {}", tmp, std::strerror(err)));
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(tmp.c_str());
    return Status::IoError(
        fmt::format("{}: fsync: {}", tmp, std::strerror(errno)));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return Status::IoError(
        fmt::format("{}: rename: {}", path, std::strerror(errno)));
  }
  return Status::Ok();
}

}  // namespace petrel::auth
