// Who may AUTH (RFC 4954) and as which senders: the users file of
// `[auth] users`, and password hashing for `petrel passwd`.
//
// The file has one user a line, `name:hash[:address,address...]`; blank
// lines and lines starting with '#' are ignored. `hash` is a crypt(3)
// string from libxcrypt: yescrypt ("$y$", what HashPassword() writes),
// bcrypt ("$2b$", "$2y$", "$2a$") or SHA-512-crypt ("$6$", for files
// carried over from elsewhere). Anything else, plaintext above all, is an
// error naming the file and line. The optional third field lists the
// addresses the user may use in MAIL FROM besides its own (see
// MaySendAs()).
//
// Authenticator re-reads the file when its modification time or size
// changes, so `petrel passwd` takes effect without a reload; a file that
// fails to parse is logged and the last good one stays in use.
// Verify() runs crypt(3), which is slow on purpose (tens of milliseconds):
// call it off the I/O threads. Thread-safe.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace petrel::auth {

struct User {
  std::string hash;
  std::vector<std::string> addresses;  // lower-cased; the third field
};

class UserDb {
 public:
  static Result<std::shared_ptr<const UserDb>> Load(const std::string& path);
  // `path` only names the file in error messages.
  static Result<std::shared_ptr<const UserDb>> Parse(std::string_view text,
                                                     const std::string& path);

  // The same time and the same answer for an unknown user as for a wrong
  // password: an unknown user is checked against a dummy hash.
  bool Verify(std::string_view user, std::string_view password) const;
  const User* Find(std::string_view user) const;
  std::size_t size() const { return users_.size(); }

 private:
  std::map<std::string, User, std::less<>> users_;
};

// May `user` put `sender` ("local@domain", any case) in MAIL FROM? Its own
// address (the user name when it has an '@', otherwise user@D for each of
// `local_domains`) or one listed for it.
bool MaySendAs(std::string_view user, const std::vector<std::string>& listed,
               std::string_view sender,
               const std::vector<std::string>& local_domains);

class Authenticator {
 public:
  // Loads the file now: an error here stops the start (or the reload).
  static Result<std::shared_ptr<Authenticator>> Open(std::string path);

  struct Outcome {
    bool ok = false;
    std::vector<std::string> addresses;  // the user's listed addresses
  };
  // Slow (crypt); re-reads the file first if it changed.
  Outcome Check(std::string_view user, std::string_view password);

 private:
  explicit Authenticator(std::string path) : path_(std::move(path)) {}
  void RefreshLocked();

  std::string path_;
  std::mutex mu_;
  std::shared_ptr<const UserDb> db_;
  long long mtime_ns_ = -1;
  long long size_ = -1;
};

// A new yescrypt hash of `password` with a random salt (crypt_gensalt).
Result<std::string> HashPassword(std::string_view password);

// Writes `user:hash` into the users file at `path`: replaces the user's line
// (keeping its address list) or appends one; creates the file with mode
// 0600. Atomic (temporary file, fsync, rename).
Status SetPassword(const std::string& path, std::string_view user,
                   std::string_view hash);

}  // namespace petrel::auth
