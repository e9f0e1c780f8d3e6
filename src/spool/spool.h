// The spool: where an accepted message lives until every recipient is done.
//
// A message is an Envelope (sender, DSN parameters, per-recipient state) and
// its content (the exact octets received, Received: header first, CRLF line
// ends). The contract:
//  - Content is appended through a MessageWriter while data arrives; nothing
//    of it is visible, or survives a restart, until Commit() completes.
//  - Commit() completes only once content and envelope are on stable storage
//    (fsync). Concurrent commits share one sync (group commit). This is what
//    makes "250 Ok: queued" true after kill -9 or power loss.
//  - A failed write (disk full, I/O error) completes with a Status; nothing
//    of that message is kept; later writes are tried again and succeed once
//    the cause is gone.
//  - Recipient state is updated in place, durably, one or several at a time
//    (UpdateRecipients), so a crash after a delivery never re-sends it.
//  - Open() removes the content of messages that were never committed.
// The RocksDB engine (rocksdb_spool.cc) is the only file that includes
// RocksDB; docs/spool-format.md gives its keys and record layout. MemorySpool
// is for tests and fuzzing only.
//
// Thread safety: Spool methods may be called from any thread. A
// MessageWriter is used by one session at a time. Completion callbacks run
// on the spool's own writer thread: they must be short and must not call
// back into the spool synchronously (post to your executor instead).
// Exception: MemorySpool runs every callback synchronously, on the calling
// thread, before Append/Commit returns (deterministic, which is what a fuzzer
// or a unit test of a session wants); it never holds a lock while doing so.
// The Spool must outlive its MessageWriters' pending callbacks; a writer used
// after the Spool is gone completes with Status::Unavailable.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace petrel::spool {

enum class RecipientState : std::uint8_t {
  kPending = 0,    // not yet delivered; may have failed temporarily
  kDelivered = 1,  // a final 2xx from the next hop or local delivery
  kFailed = 2,     // permanent failure (5xx, expiry, bad address)
};

struct Recipient {
  std::string address;        // forward path as received, local@domain
  std::string orcpt_type;     // RFC 3461 ORCPT addr-type, e.g. "rfc822"
  std::string orcpt_address;  // ORCPT address, decoded; empty if none
  std::uint8_t notify = 0;    // smtp::NotifyFlags
  RecipientState state = RecipientState::kPending;
  std::uint32_t attempts = 0;
  std::int64_t last_attempt_unix = 0;  // seconds since epoch; 0 never
  std::string last_reply;              // sanitised; "dsn=..." style text
  std::string remote_mta;              // who answered last, "host[ip]"
  bool dsn_sent = false;               // a failure/delay DSN went out
};

struct Envelope {
  std::string id;                      // queue ID (base/queue_id.h)
  std::string sender;                  // reverse path; "" is the null sender
  bool smtputf8 = false;               // MAIL ... SMTPUTF8
  bool eight_bit_mime = false;         // BODY=8BITMIME
  std::uint8_t dsn_ret = 0;            // smtp::DsnRet
  std::string dsn_envid;               // ENVID, decoded
  std::string helo;                    // client's EHLO/HELO name
  std::string client_address;          // "ip" of the client, "" for local
  std::string protocol;                // "ESMTP", "SMTP", "local"
  std::int64_t arrival_unix = 0;       // seconds since epoch
  std::int64_t next_attempt_unix = 0;  // when delivery is next due
  bool held = false;                   // operator hold
  std::uint64_t content_octets = 0;    // filled in by Commit
  std::vector<Recipient> recipients;
};

using Callback = std::function<void(Status)>;

class MessageWriter {
 public:
  virtual ~MessageWriter() = default;  // aborts if not committed
  // Queues `bytes` to be written (not synced). `done` reports the write.
  // Calls complete in order. Appending after a failure fails at once.
  virtual void Append(std::string bytes, Callback done) = 0;
  // Makes the message durable; `envelope.id` must be this writer's id and
  // content_octets is set by the spool. After `done(ok)` the message is
  // queued; after a failure nothing of it remains.
  virtual void Commit(Envelope envelope, Callback done) = 0;
  // Forgets everything appended so far (best effort; also on destruction).
  virtual void Abort() = 0;
  virtual const std::string& id() const = 0;
};

// Test hook for MemorySpool: before each write (an Append, a Commit, an
// Update*, a Remove) `fault` is called with the operation's name
// ("append", "commit", "update_recipients", "update_envelope", "remove") and
// the number of writes attempted before it; a non-ok Status fails that write
// as a full disk would (and, for a message, drops everything of it). Unset:
// every write succeeds. Lets a session test "fail at step N".
struct MemorySpoolOptions {
  std::function<Status(std::string_view op, std::uint64_t n)> fault;
};

struct SpoolOptions {
  std::string path;  // directory; created if missing
  // Content writes are cut into records of at most this many octets.
  std::size_t chunk_octets = 256 * 1024;
};

class Spool {
 public:
  virtual ~Spool() = default;

  // Opens the RocksDB engine at options.path, creating it if needed, and
  // removes content of uncommitted messages.
  static Result<std::unique_ptr<Spool>> Open(const SpoolOptions& options);
  // An in-memory spool for tests and fuzzing (no durability; sync_count() is
  // always 0; callbacks run synchronously, see above).
  static std::unique_ptr<Spool> NewMemorySpool();
  static std::unique_ptr<Spool> NewMemorySpool(MemorySpoolOptions options);

  // `id` is 1..64 characters of [0-9A-Za-z_.-] (queue IDs are); any other
  // id makes Commit fail with InvalidArgument.
  virtual std::unique_ptr<MessageWriter> NewMessage(std::string id) = 0;

  // Blocking reads (call off I/O threads). Errors: NotFound (no committed
  // message of that id), Corruption (a record fails its checks), IoError,
  // Unavailable (the database could not be reopened after a failed write).
  // ListIds returns committed ids in byte order (arrival order for queue IDs).
  virtual Result<std::vector<std::string>> ListIds() = 0;
  virtual Result<Envelope> LoadEnvelope(const std::string& id) = 0;
  // Calls `sink` with the content in order, in pieces. A non-ok Status from
  // `sink` stops the read and is returned.
  virtual Status ReadContent(
      const std::string& id,
      const std::function<Status(std::string_view)>& sink) = 0;

  // Durable updates (blocking: return after the sync). All or nothing.
  // NotFound if the message is not committed; UpdateRecipients indexes
  // envelope.recipients and fails with InvalidArgument (changing nothing) for
  // an index out of range; UpdateEnvelope replaces everything but
  // content_octets, which stays as committed. Calling these from a completion
  // callback would deadlock: it fails with Internal instead.
  virtual Status UpdateRecipients(
      const std::string& id,
      const std::vector<std::pair<std::size_t, Recipient>>& changes) = 0;
  virtual Status UpdateEnvelope(const Envelope& envelope) = 0;  // whole record
  // Remove returns after the sync with kSync. kLazy is for a message whose
  // final state is already durable (no recipient pending, its DSNs queued):
  // it returns once the removal is written but not synced, and if a crash
  // loses it, the restarted queue finds the message finished and removes it
  // again (any later synced write makes it durable too). An operator's
  // delete must use kSync.
  enum class Durability { kSync, kLazy };
  virtual Status Remove(const std::string& id, Durability durability) = 0;
  Status Remove(const std::string& id) { return Remove(id, Durability::kSync); }

  // The same updates without blocking a thread: `done` reports what the
  // blocking form would return, on the spool's writer thread (MemorySpool:
  // before the call returns). For callers on an I/O thread.
  virtual void UpdateRecipientsAsync(
      std::string id, std::vector<std::pair<std::size_t, Recipient>> changes,
      Callback done) = 0;
  virtual void RemoveAsync(std::string id, Durability durability,
                           Callback done) = 0;

  // Counters for tests and `petrel queue`: syncs done, commits done.
  virtual std::uint64_t sync_count() const = 0;
  virtual std::uint64_t commit_count() const = 0;
};

}  // namespace petrel::spool
