// Local delivery into a Maildir (https://cr.yp.to/proto/maildir.html).
//
// The folder comes from the [local] maildir template ("var/mail/{domain}/
// {user}"): {domain} is the recipient's domain lower-cased, {user} its
// local-part unquoted, lower-cased (ASCII), "+detail" removed. The folder is
// the Maildir itself; it and cur/ new/ tmp/ are made (0700) on first
// delivery, and every directory made is synced into its parent.
//
// DeliverToMaildir() writes "Return-Path: <sender>", "Delivered-To: rcpt"
// and the content to tmp/<unique>, fsyncs the file, links it into new/
// (rename where the file system has no hard links), removes the tmp/ name
// and fsyncs new/. A kDelivered result means the message is durable. Line
// ends are written as LF (CRLF from the spool becomes LF, as Postfix, qmail
// and Dovecot's LDA write Maildir files). The unique name is
// "<seconds>.M<usec>P<pid>Q<counter>R<random>.<host>" (the spec's
// "time.unique.host", with '/' and ':' in the host as \057 and \072).
//
// Results are data (conventions: delivery results are not errors):
//   kPermanent 5.1.3  the user or domain cannot name a folder under the
//                     template's base: empty, "/", "..", a leading ".", NUL
//                     or another control character, longer than 255 octets
//   kTemporary 4.3.1  ENOSPC or EDQUOT (disk full, over quota)
//   kTemporary 4.2.0  the Maildir cannot be made or opened (permissions, a
//                     file where a directory should be)
//   kTemporary 4.3.0  any other I/O error (write, fsync, link), and a
//                     failure to read the queued content
// On any failure the tmp/ file is removed; nothing appears in new/.
//
// Untrusted input: recipient and sender addresses (validated by the SMTP
// parser, re-checked here). Blocking I/O: call off the I/O threads.
// Thread-safe (the unique-name counter is atomic).
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "base/status.h"
#include "smtp/enhanced_status.h"

namespace petrel::delivery {

struct MaildirResult {
  enum class Kind { kDelivered, kTemporary, kPermanent };
  Kind kind = Kind::kTemporary;
  smtp::EnhancedStatus status;  // 2.0.0 when delivered
  std::string text;             // for logs and DSN diagnostics
  std::string path;             // kDelivered: the file in new/

  bool ok() const { return kind == Kind::kDelivered; }
};

// Calls `sink` with the content in order, in pieces; returns the first
// non-ok Status of `sink`, or its own read error. Fits Spool::ReadContent:
//   [&](const auto& sink) { return spool.ReadContent(id, sink); }
using ContentSink = std::function<Status(std::string_view)>;
using ContentSource = std::function<Status(const ContentSink&)>;

struct MaildirOptions {
  // For unique names; empty: gethostname().
  std::string hostname;
  // Test hook (as MemorySpoolOptions::fault): called before each step with
  // its name ("mkdir", "open", "write", "fsync", "link", "dirsync"); a
  // non-zero return is taken as that step failing with that errno. Unset:
  // no faults.
  std::function<int(std::string_view step)> fault;
};

// "{user}" for a local-part as stored ("Alice+x", "\"a.b\""): unquoted,
// ASCII lower-cased, everything from the first '+' removed. May be empty.
std::string MaildirUser(std::string_view local_part);

// Expands `maildir_template` for `recipient` ("local@domain"). A recipient
// that does not parse, or whose user or domain is not a safe folder name,
// gives a kPermanent 5.1.3 result.
tl::expected<std::string, MaildirResult> MaildirPathFor(
    std::string_view maildir_template, std::string_view recipient);

// Delivers one message to the Maildir at `maildir` (a path as
// MaildirPathFor returns it). `sender` "" is the null sender.
MaildirResult DeliverToMaildir(const std::string& maildir,
                               std::string_view sender,
                               std::string_view recipient,
                               const ContentSource& content,
                               const MaildirOptions& options = {});
// The same, for content held in memory (tests, small messages).
MaildirResult DeliverToMaildir(const std::string& maildir,
                               std::string_view sender,
                               std::string_view recipient,
                               std::string_view content,
                               const MaildirOptions& options = {});

}  // namespace petrel::delivery
