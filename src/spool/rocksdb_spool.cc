// The RocksDB spool engine: the only file that includes RocksDB.
//
// One writer thread owns every write. Append, Commit, Abort, UpdateRecipients,
// UpdateEnvelope and Remove enqueue an Op; the thread takes everything queued
// (up to kMaxGroupOctets), merges it into one WriteBatch, writes it once --
// with sync=true if any op in the group needs durability -- and then runs the
// callbacks in queue order. N concurrent commits therefore cost one fsync.
// Content chunks ride unsynced: the WAL is one sequential log, so the synced
// write of the commit makes every earlier record durable too.
// Keys and records: keys.h, record.h, docs/spool-format.md.
#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdarg>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <thread>
#include <utility>

#include "rocksdb/cache.h"
#include "rocksdb/convenience.h"
#include "rocksdb/db.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/listener.h"
#include "rocksdb/options.h"
#include "rocksdb/table.h"
#include "rocksdb/write_batch.h"
#include "spool/keys.h"
#include "spool/record.h"
#include "spool/spool.h"
#include "spool/spool_testing.h"

namespace petrel::spool {
namespace {

// A group is cut once it holds this much content, to bound the batch's
// memory and the latency of the commits queued behind it.
constexpr std::size_t kMaxGroupOctets = 8 << 20;
constexpr std::size_t kMaxChunkOctets = 64 << 20;
// How often a cleanup that failed (disk full) is tried again when idle.
constexpr auto kCleanupRetry = std::chrono::seconds(5);
// How often a database that failed a write is reopened at most.
constexpr auto kReopenBackoff = std::chrono::seconds(1);

Status FromRocks(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return Status::Ok();
  std::string m = std::string(what) + ": " + s.ToString();
  if (s.IsNoSpace() ||
      s.ToString().find("No space left on device") != std::string::npos) {
    return Status::NoSpace(std::move(m));
  }
  if (s.IsCorruption()) return Status::Corruption(std::move(m));
  if (s.IsNotFound()) return Status::NotFound(std::move(m));
  if (s.IsShutdownInProgress() || s.IsBusy() || s.IsTryAgain()) {
    return Status::Unavailable(std::move(m));
  }
  return Status::IoError(std::move(m));
}

// RocksDB's own LOG file sits in the spool directory; on a full disk its
// writer fails, and the Debian build of RocksDB 7.8 (assertions enabled)
// aborts on the next log line. Warnings and errors go to stderr instead.
class StderrLogger final : public rocksdb::Logger {
 public:
  StderrLogger() : rocksdb::Logger(rocksdb::InfoLogLevel::WARN_LEVEL) {}
  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override {
    char line[1024];
    std::vsnprintf(line, sizeof line, format, ap);
    std::fprintf(stderr, "petrel spool: rocksdb: %s\n", line);
  }
};

// The writer thread is the only one to recover from a failed write (see
// Core::Reopen); RocksDB's own recovery would flush through the failed WAL
// writer (and abort in builds with assertions).
class NoAutoRecovery final : public rocksdb::EventListener {
 public:
  void OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason, rocksdb::Status,
                            bool* auto_recovery) override {
    *auto_recovery = false;
  }
};

rocksdb::Options MakeOptions() {
  rocksdb::Options o;
  o.info_log = std::make_shared<StderrLogger>();
  o.listeners.push_back(std::make_shared<NoAutoRecovery>());
  o.max_bgerror_resume_count = 0;
  o.create_if_missing = true;
  o.paranoid_checks = true;
  // A torn WAL tail after a crash is dropped; only unacknowledged work was
  // there, because acknowledgement waits for the synced write.
  o.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  o.manual_wal_flush = false;
  // Memory: 16 MiB memtables, at most 3 (48 MiB), an 8 MiB block cache.
  o.write_buffer_size = 16 << 20;
  o.max_write_buffer_number = 3;
  o.max_total_wal_size = 64 << 20;
  o.max_open_files = 256;
  o.max_background_jobs = 2;
  o.level_compaction_dynamic_level_bytes = true;
  o.manifest_preallocation_size = 256 << 10;
  // Integrated BlobDB: values of 4 KiB and more (content chunks) go to blob
  // files at flush, so compaction moves only keys and small records. Mail is
  // often already compressed (base64 of images, zip), so blobs are stored
  // as they are; GC rewrites the oldest quarter of blob files when
  // compaction meets them and forces it when half of them is garbage.
  o.enable_blob_files = true;
  o.min_blob_size = 4096;
  o.blob_file_size = 64 << 20;
  o.blob_compression_type = rocksdb::kNoCompression;
  o.enable_blob_garbage_collection = true;
  o.blob_garbage_collection_age_cutoff = 0.25;
  o.blob_garbage_collection_force_threshold = 0.5;
  o.blob_compaction_readahead_size = 2 << 20;
  auto supported = rocksdb::GetSupportedCompressions();
  o.compression = std::find(supported.begin(), supported.end(),
                            rocksdb::kLZ4Compression) != supported.end()
                      ? rocksdb::kLZ4Compression
                      : rocksdb::kNoCompression;
  rocksdb::BlockBasedTableOptions t;
  t.block_cache = rocksdb::NewLRUCache(8 << 20);
  t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  t.cache_index_and_filter_blocks = true;
  o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
  return o;
}

Result<std::unique_ptr<rocksdb::DB>> OpenDb(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) {
    return Error(
        Status::IoError("spool: create " + path + ": " + ec.message()));
  }
  rocksdb::DB* db = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(MakeOptions(), path, &db);
  if (!s.ok()) return Error(FromRocks(s, "spool: open " + path));
  return std::unique_ptr<rocksdb::DB>(db);
}

// The r/<id>/<n> records of a version-1 envelope, n = 0..count-1, read with
// `base` (its snapshot): Corruption if one is missing or damaged.
Status ReadV1Recipients(rocksdb::DB* db, const rocksdb::ReadOptions& base,
                        const std::string& id, std::uint32_t count,
                        std::vector<Recipient>* out) {
  rocksdb::ReadOptions ro = base;
  std::string end = keys::RecipientEnd(id);
  rocksdb::Slice upper(end);
  ro.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro));
  it->Seek(keys::RecipientBegin(id));
  out->clear();
  for (std::uint32_t n = 0; n < count; ++n, it->Next()) {
    if (!it->Valid() || it->key() != keys::Recipient(id, n)) {
      if (!it->status().ok()) {
        return FromRocks(it->status(), "spool: read " + id);
      }
      return Status::Corruption(id + ": recipient record " + std::to_string(n) +
                                " missing");
    }
    auto rcpt = record::DecodeRecipient(
        std::string_view(it->value().data(), it->value().size()));
    if (!rcpt) {
      return Status::Corruption(id + ": recipient " + std::to_string(n) + ": " +
                                rcpt.error().message());
    }
    out->push_back(std::move(*rcpt));
  }
  if (!it->status().ok()) return FromRocks(it->status(), "spool: read " + id);
  return Status::Ok();
}

// Shared by a MessageWriter (session side) and the writer thread. Fields
// below `id` are touched by the writer thread only.
struct MessageState {
  explicit MessageState(std::string i) : id(std::move(i)) {}
  const std::string id;
  Status failure;                 // the first failure; later ops repeat it
  bool failed = false;            // no further writes; cleanup done or queued
  bool marker_written = false;    // i/<id> put (in the DB or this batch)
  std::uint32_t chunks_seen = 0;  // chunk keys put: [0, chunks_seen)
  bool commit_attempted = false;
};

enum class OpKind {
  kAppend,
  kCommit,
  kAbort,
  kUpdateRecipients,
  kUpdateEnvelope,
  kRemove
};

struct Op {
  OpKind kind = OpKind::kAppend;
  std::shared_ptr<MessageState> msg;  // kAppend, kCommit, kAbort
  Status preset;  // fails the op alone (misuse); the message is untouched
  std::vector<std::string> chunks;  // encoded chunk records
  std::uint32_t first_chunk = 0;
  std::uint32_t chunk_total = 0;     // kCommit
  std::uint64_t content_octets = 0;  // kCommit
  Envelope envelope;                 // kCommit, kUpdateEnvelope
  std::string id;                    // kUpdateRecipients, kRemove
  std::vector<std::pair<std::size_t, Recipient>> changes;
  bool sync = true;  // kRemove: Durability::kSync
  Callback done;
  std::size_t octets = 0;
};

// What a message's envelope looks like after the ops already put in the
// current batch (recipients included, always version 2): nullopt means "not
// committed".
using GroupView = std::map<std::string, std::optional<record::EnvelopeHeader>>;

class Core {
 public:
  Core(std::unique_ptr<rocksdb::DB> db, std::string path,
       std::size_t chunk_octets)
      : path_(std::move(path)),
        chunk_octets_(chunk_octets),
        db_(std::move(db)) {}
  ~Core() { Shutdown(); }

  void Start() {
    thread_ = std::thread([this] { Run(); });
    writer_id_ = thread_.get_id();
  }

  // Drains the queue, stops the thread, closes the DB. Idempotent.
  void Shutdown() {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      stopping_ = true;
    }
    cv_.notify_one();
    if (thread_.joinable()) thread_.join();
    std::unique_lock lock(db_mu_);
    if (db_) {
      db_->Close().PermitUncheckedError();
      db_.reset();
    }
  }

  // The database for a reader: held open (not reopened) while `lock` lives.
  // `db` is null while a reopen after a write failure has not succeeded.
  struct ReadHandle {
    std::shared_lock<std::shared_mutex> lock;
    rocksdb::DB* db;
  };
  ReadHandle Read() {
    std::shared_lock lock(db_mu_);
    rocksdb::DB* db = db_.get();
    return {std::move(lock), db};
  }

  void Enqueue(Op op) {
    {
      std::lock_guard lock(mu_);
      if (!stopping_) {
        queue_.push_back(std::move(op));
        cv_.notify_one();
        return;
      }
    }
    if (op.done) op.done(Status::Unavailable("spool is shut down"));
  }

  Status EnqueueAndWait(Op op) {
    if (std::this_thread::get_id() == writer_id_) {
      return Status::Internal("spool: blocking call from a spool callback");
    }
    std::promise<Status> promise;
    std::future<Status> future = promise.get_future();
    op.done = [&promise](Status s) { promise.set_value(std::move(s)); };
    Enqueue(std::move(op));
    return future.get();
  }

  std::size_t chunk_octets() const { return chunk_octets_; }
  std::uint64_t sync_count() const { return sync_count_.load(); }
  std::uint64_t commit_count() const { return commit_count_.load(); }

 private:
  void Run() {
    pthread_setname_np(pthread_self(), "spool-writer");
    std::unique_lock lock(mu_);
    for (;;) {
      if (queue_.empty()) {
        if (stopping_) break;
        if (cleanups_.empty()) {
          cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        } else if (!cv_.wait_for(lock, kCleanupRetry, [&] {
                     return stopping_ || !queue_.empty();
                   })) {
          lock.unlock();
          WriteGroup({});  // retry the pending cleanups alone
          lock.lock();
        }
        continue;
      }
      std::vector<Op> group;
      std::size_t octets = 0;
      while (!queue_.empty() &&
             (group.empty() ||
              octets + queue_.front().octets <= kMaxGroupOctets)) {
        octets += queue_.front().octets;
        group.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      lock.unlock();
      WriteGroup(std::move(group));
      // Cleanups queued by a validation failure go now; those queued by a
      // failed write wait for the next group or kCleanupRetry.
      if (!cleanups_.empty() && !need_reopen_) WriteGroup({});
      lock.lock();
    }
    lock.unlock();
    if (!cleanups_.empty()) WriteGroup({});
  }

  // One batch, one write, then the callbacks in order.
  void WriteGroup(std::vector<Op> group) {
    rocksdb::WriteBatch batch;
    std::vector<std::shared_ptr<MessageState>> retrying;
    retrying.swap(cleanups_);
    for (const auto& msg : retrying) AddCleanup(batch, *msg);
    bool sync = false;
    GroupView view;
    std::vector<Status> results(group.size());
    std::vector<bool> in_batch(group.size(), false);
    // After a failed write the database is reopened before anything else.
    const Status ready = need_reopen_ ? Reopen() : Status::Ok();
    if (!ready.ok()) batch.Clear();
    for (std::size_t i = 0; i < group.size() && !ready.ok(); ++i) {
      results[i] = ready;
    }
    for (std::size_t i = 0; i < group.size() && ready.ok(); ++i) {
      bool needs_sync = false;
      bool added = false;
      results[i] = Prepare(group[i], batch, view, &needs_sync, &added);
      in_batch[i] = added;
      sync = sync || (added && needs_sync);
    }
    Status written;
    if (batch.Count() > 0) written = Write(batch, sync);
    if (!ready.ok()) written = ready;
    if (!written.ok()) {
      cleanups_.insert(cleanups_.end(), retrying.begin(), retrying.end());
    }

    for (std::size_t i = 0; i < group.size(); ++i) {
      Op& op = group[i];
      Status s = in_batch[i] && results[i].ok() ? written : results[i];
      if (op.msg && op.preset.ok()) {
        MessageState& m = *op.msg;
        if (op.kind == OpKind::kAbort) {
          if (!s.ok()) cleanups_.push_back(op.msg);
          continue;
        }
        if (s.ok() && m.failed) s = m.failure;
        if (!s.ok() && !m.failed) Fail(op.msg, s);
        if (s.ok() && op.kind == OpKind::kCommit) ++commit_count_;
      }
      if (op.done) {
        try {
          op.done(std::move(s));
        } catch (...) {
          // A callback must not throw; the writer thread must not die.
        }
      }
    }
  }

  // Marks the message failed and queues the deletion of everything of it.
  void Fail(const std::shared_ptr<MessageState>& msg, Status why) {
    msg->failed = true;
    msg->failure = std::move(why);
    if (msg->marker_written || msg->chunks_seen > 0 || msg->commit_attempted) {
      cleanups_.push_back(msg);
    }
  }

  static void AddCleanup(rocksdb::WriteBatch& batch, const MessageState& m) {
    for (std::uint32_t n = 0; n < m.chunks_seen; ++n) {
      batch.Delete(keys::Chunk(m.id, n)).PermitUncheckedError();
    }
    if (m.commit_attempted) {
      batch.Delete(keys::Envelope(m.id)).PermitUncheckedError();
    }
    if (m.marker_written) {
      batch.Delete(keys::Incoming(m.id)).PermitUncheckedError();
    }
  }

  Status Write(rocksdb::WriteBatch& batch, bool sync) {
    rocksdb::WriteOptions wo;
    wo.sync = sync;
    rocksdb::Status s = db_->Write(wo, &batch);
    if (!s.ok()) {
      need_reopen_ = true;
      return FromRocks(s, "spool write");
    }
    if (sync) ++sync_count_;
    return Status::Ok();
  }

  // A failed WAL append leaves RocksDB 7.8's log writer in an error state
  // that DB::Resume() does not replace (the next append fails, or asserts in
  // builds with assertions, such as Debian's), so instead of Resume() the
  // writer closes the database and opens it again: recovery drops the torn
  // WAL tail (nothing acknowledged is there), flushes the memtable and starts
  // a new WAL. That needs free space; until it succeeds the database is open
  // read-only, so queued mail can still be read and delivered, and writes
  // fail at once with the last error. Attempts are at least kReopenBackoff
  // apart. Readers wait on db_mu_; they hold it only for short reads.
  Status Reopen() {
    auto now = std::chrono::steady_clock::now();
    if (now < next_reopen_) return reopen_error_;
    next_reopen_ = now + kReopenBackoff;
    std::unique_lock lock(db_mu_);
    if (db_) {
      db_->Close().PermitUncheckedError();
      db_.reset();
    }
    auto db = OpenDb(path_);
    if (db) {
      db_ = std::move(*db);
      need_reopen_ = false;
      reopen_error_ = Status::Ok();
      return Status::Ok();
    }
    reopen_error_ = db.error();
    rocksdb::DB* read_only = nullptr;
    if (rocksdb::DB::OpenForReadOnly(MakeOptions(), path_, &read_only).ok()) {
      db_.reset(read_only);
    }
    return reopen_error_;
  }

  // Adds op's records to the batch. Returns a failure that needs no write
  // (validation), or ok with *added telling whether it rides on the write.
  Status Prepare(Op& op, rocksdb::WriteBatch& batch, GroupView& view,
                 bool* sync, bool* added) {
    if (!op.preset.ok()) return op.preset;
    switch (op.kind) {
      case OpKind::kAppend:
        return PrepareAppend(op, batch, added);
      case OpKind::kCommit:
        *sync = true;
        return PrepareCommit(op, batch, view, added);
      case OpKind::kAbort: {
        MessageState& m = *op.msg;
        if (m.failed) return Status::Ok();
        m.failed = true;
        m.failure = Status::Internal("message aborted");
        AddCleanup(batch, m);
        *added = true;
        return Status::Ok();
      }
      case OpKind::kUpdateRecipients:
        *sync = true;
        return PrepareUpdateRecipients(op, batch, view, added);
      case OpKind::kUpdateEnvelope:
        *sync = true;
        return PrepareUpdateEnvelope(op, batch, view, added);
      case OpKind::kRemove:
        *sync = op.sync;  // see Spool::Durability
        return PrepareRemove(op, batch, view, added);
    }
    return Status::Internal("spool: unknown op");
  }

  void PutChunks(Op& op, rocksdb::WriteBatch& batch) {
    MessageState& m = *op.msg;
    if (op.chunks.empty()) return;
    if (!m.marker_written) {
      batch.Put(keys::Incoming(m.id), record::EncodeIncoming())
          .PermitUncheckedError();
      m.marker_written = true;
    }
    std::uint32_t n = op.first_chunk;
    for (const std::string& chunk : op.chunks) {
      batch.Put(keys::Chunk(m.id, n++), chunk).PermitUncheckedError();
    }
    m.chunks_seen = std::max(m.chunks_seen, n);
  }

  Status PrepareAppend(Op& op, rocksdb::WriteBatch& batch, bool* added) {
    MessageState& m = *op.msg;
    if (m.failed) return m.failure;
    if (op.chunks.empty()) return Status::Ok();  // buffered by the writer
    if (op.first_chunk + op.chunks.size() > keys::kMaxIndex) {
      Status s = Status::InvalidArgument("spool: message too large");
      Fail(op.msg, s);
      return s;
    }
    PutChunks(op, batch);
    *added = true;
    return Status::Ok();
  }

  Status PrepareCommit(Op& op, rocksdb::WriteBatch& batch, GroupView& view,
                       bool* added) {
    MessageState& m = *op.msg;
    if (m.failed) return m.failure;
    Status invalid;
    if (!keys::IsValidId(m.id)) {
      invalid = Status::InvalidArgument("spool: invalid message id");
    } else if (op.envelope.id != m.id) {
      invalid = Status::InvalidArgument("spool: envelope id " + op.envelope.id +
                                        " is not " + m.id);
    } else if (op.envelope.recipients.size() > keys::kMaxIndex) {
      invalid = Status::InvalidArgument("spool: too many recipients");
    } else if (op.chunk_total > keys::kMaxIndex) {
      invalid = Status::InvalidArgument("spool: message too large");
    }
    if (!invalid.ok()) {
      Fail(op.msg, invalid);
      return invalid;
    }
    PutChunks(op, batch);
    op.envelope.content_octets = op.content_octets;
    batch
        .Put(keys::Envelope(m.id),
             record::EncodeEnvelope(op.envelope, op.chunk_total))
        .PermitUncheckedError();
    if (m.marker_written) {
      batch.Delete(keys::Incoming(m.id)).PermitUncheckedError();
    }
    m.commit_attempted = true;
    record::EnvelopeHeader h;
    h.recipient_count =
        static_cast<std::uint32_t>(op.envelope.recipients.size());
    h.envelope = std::move(op.envelope);
    h.chunk_count = op.chunk_total;
    view[m.id] = std::move(h);
    *added = true;
    return Status::Ok();
  }

  // The committed envelope of `id` as of the ops already in the batch. With
  // kDecode the recipients are filled in, from r/ records for a version-1
  // envelope; with kSkip they may be missing (the counts are right).
  Result<record::EnvelopeHeader> Lookup(const std::string& id, GroupView& view,
                                        record::Recipients recipients) {
    if (auto it = view.find(id); it != view.end()) {
      if (!it->second)
        return Error(Status::NotFound("spool: no message " + id));
      return *it->second;
    }
    std::string value;
    rocksdb::Status s =
        db_->Get(rocksdb::ReadOptions(), keys::Envelope(id), &value);
    if (s.IsNotFound())
      return Error(Status::NotFound("spool: no message " + id));
    if (!s.ok()) return Error(FromRocks(s, "spool: read " + id));
    auto h = record::DecodeEnvelope(value, recipients);
    if (!h) return Error(Status::Corruption(id + ": " + h.error().message()));
    if (h->version == 1 && recipients == record::Recipients::kDecode) {
      Status st = ReadV1Recipients(db_.get(), rocksdb::ReadOptions(), id,
                                   h->recipient_count, &h->envelope.recipients);
      if (!st.ok()) return Error(st);
    }
    return h;
  }

  // The r/ records of a version-1 envelope go when it is rewritten or removed.
  static void DeleteV1Recipients(rocksdb::WriteBatch& batch,
                                 const std::string& id,
                                 const record::EnvelopeHeader& h) {
    if (h.version != 1) return;
    for (std::uint32_t n = 0; n < h.recipient_count; ++n) {
      batch.Delete(keys::Recipient(id, n)).PermitUncheckedError();
    }
  }

  Status PrepareUpdateRecipients(Op& op, rocksdb::WriteBatch& batch,
                                 GroupView& view, bool* added) {
    auto h = Lookup(op.id, view, record::Recipients::kDecode);
    if (!h) return h.error();
    std::vector<Recipient>& rcpts = h->envelope.recipients;
    for (const auto& [index, rcpt] : op.changes) {
      if (index >= rcpts.size()) {
        return Status::InvalidArgument(
            "spool: " + op.id + " has no recipient " + std::to_string(index));
      }
    }
    if (op.changes.empty()) return Status::Ok();
    for (auto& [index, rcpt] : op.changes) rcpts[index] = std::move(rcpt);
    // One record per message: the whole envelope is rewritten.
    batch
        .Put(keys::Envelope(op.id),
             record::EncodeEnvelope(h->envelope, h->chunk_count))
        .PermitUncheckedError();
    DeleteV1Recipients(batch, op.id, *h);
    h->version = record::kEnvelopeVersion;
    view[op.id] = std::move(*h);
    *added = true;
    return Status::Ok();
  }

  Status PrepareUpdateEnvelope(Op& op, rocksdb::WriteBatch& batch,
                               GroupView& view, bool* added) {
    const std::string& id = op.envelope.id;
    if (!keys::IsValidId(id)) {
      return Status::InvalidArgument("spool: invalid message id");
    }
    if (op.envelope.recipients.size() > keys::kMaxIndex) {
      return Status::InvalidArgument("spool: too many recipients");
    }
    auto h = Lookup(id, view, record::Recipients::kSkip);
    if (!h) return h.error();
    op.envelope.content_octets = h->envelope.content_octets;
    batch
        .Put(keys::Envelope(id),
             record::EncodeEnvelope(op.envelope, h->chunk_count))
        .PermitUncheckedError();
    DeleteV1Recipients(batch, id, *h);
    record::EnvelopeHeader next;
    next.recipient_count =
        static_cast<std::uint32_t>(op.envelope.recipients.size());
    next.envelope = std::move(op.envelope);
    next.chunk_count = h->chunk_count;
    view[id] = std::move(next);
    *added = true;
    return Status::Ok();
  }

  Status PrepareRemove(Op& op, rocksdb::WriteBatch& batch, GroupView& view,
                       bool* added) {
    auto h = Lookup(op.id, view, record::Recipients::kSkip);
    if (!h) {
      if (h.error().code() != Status::Code::kCorruption) return h.error();
      // A damaged envelope must still be removable: drop whole ranges
      // (r/ records exist only under a version-1 envelope).
      batch.DeleteRange(keys::ChunkBegin(op.id), keys::ChunkEnd(op.id))
          .PermitUncheckedError();
      batch.DeleteRange(keys::RecipientBegin(op.id), keys::RecipientEnd(op.id))
          .PermitUncheckedError();
    } else {
      for (std::uint32_t n = 0; n < h->chunk_count; ++n) {
        batch.Delete(keys::Chunk(op.id, n)).PermitUncheckedError();
      }
      DeleteV1Recipients(batch, op.id, *h);
    }
    batch.Delete(keys::Envelope(op.id)).PermitUncheckedError();
    view[op.id] = std::nullopt;
    *added = true;
    return Status::Ok();
  }

  const std::string path_;
  const std::size_t chunk_octets_;
  // Replaced only by the writer thread (Reopen, Shutdown), under an
  // exclusive db_mu_; other threads read through Read().
  std::shared_mutex db_mu_;
  std::unique_ptr<rocksdb::DB> db_;
  std::thread thread_;
  std::thread::id writer_id_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Op> queue_;   // guarded by mu_
  bool stopping_ = false;  // guarded by mu_

  // Writer thread only.
  std::vector<std::shared_ptr<MessageState>> cleanups_;
  bool need_reopen_ = false;
  std::chrono::steady_clock::time_point next_reopen_;
  Status reopen_error_;

  std::atomic<std::uint64_t> sync_count_{0};
  std::atomic<std::uint64_t> commit_count_{0};
};

class RocksWriter final : public MessageWriter {
 public:
  RocksWriter(std::shared_ptr<Core> core, std::string id)
      : core_(std::move(core)),
        msg_(std::make_shared<MessageState>(id)),
        id_(std::move(id)) {}
  ~RocksWriter() override {
    if (phase_ == Phase::kOpen) Abort();
  }

  void Append(std::string bytes, Callback done) override {
    Op op;
    op.kind = OpKind::kAppend;
    op.msg = msg_;
    op.done = std::move(done);
    if (phase_ != Phase::kOpen) {
      op.preset = Status::Internal("spool: append after commit or abort");
    } else {
      octets_ += bytes.size();
      CutChunks(bytes, op);
    }
    core_->Enqueue(std::move(op));
  }

  void Commit(Envelope envelope, Callback done) override {
    Op op;
    op.kind = OpKind::kCommit;
    op.msg = msg_;
    op.done = std::move(done);
    if (phase_ != Phase::kOpen) {
      op.preset = Status::Internal("spool: commit after commit or abort");
    } else {
      phase_ = Phase::kCommitted;
      if (!buffer_.empty()) {
        op.first_chunk = next_chunk_;
        op.chunks.push_back(record::EncodeChunk(buffer_));
        op.octets = buffer_.size();
        ++next_chunk_;
        std::string().swap(buffer_);
      }
      op.chunk_total = next_chunk_;
      op.content_octets = octets_;
      op.envelope = std::move(envelope);
    }
    core_->Enqueue(std::move(op));
  }

  void Abort() override {
    if (phase_ != Phase::kOpen) return;
    phase_ = Phase::kAborted;
    std::string().swap(buffer_);
    Op op;
    op.kind = OpKind::kAbort;
    op.msg = msg_;
    core_->Enqueue(std::move(op));
  }

  const std::string& id() const override { return id_; }

 private:
  enum class Phase { kOpen, kCommitted, kAborted };

  // Full chunks of chunk_octets go into op; the remainder waits in buffer_.
  void CutChunks(std::string_view in, Op& op) {
    const std::size_t size = core_->chunk_octets();
    op.first_chunk = next_chunk_;
    if (!buffer_.empty()) {
      std::size_t take = std::min(size - buffer_.size(), in.size());
      buffer_.append(in.substr(0, take));
      in.remove_prefix(take);
      if (buffer_.size() == size) {
        op.chunks.push_back(record::EncodeChunk(buffer_));
        buffer_.clear();
      }
    }
    while (in.size() >= size) {
      op.chunks.push_back(record::EncodeChunk(in.substr(0, size)));
      in.remove_prefix(size);
    }
    buffer_.append(in);
    next_chunk_ += static_cast<std::uint32_t>(op.chunks.size());
    op.octets = op.chunks.size() * size;
  }

  std::shared_ptr<Core> core_;
  std::shared_ptr<MessageState> msg_;
  std::string id_;
  Phase phase_ = Phase::kOpen;
  std::string buffer_;
  std::uint32_t next_chunk_ = 0;
  std::uint64_t octets_ = 0;
};

class RocksSpool final : public Spool {
 public:
  explicit RocksSpool(std::shared_ptr<Core> core) : core_(std::move(core)) {}
  ~RocksSpool() override { core_->Shutdown(); }

  std::unique_ptr<MessageWriter> NewMessage(std::string id) override {
    return std::make_unique<RocksWriter>(core_, std::move(id));
  }

  Result<std::vector<std::string>> ListIds() override {
    auto r = core_->Read();
    if (r.db == nullptr) return Error(Unavailable());
    rocksdb::ReadOptions ro;
    std::string end = keys::PrefixEnd(keys::kEnvelopePrefix);
    rocksdb::Slice upper(end);
    ro.iterate_upper_bound = &upper;
    std::unique_ptr<rocksdb::Iterator> it(r.db->NewIterator(ro));
    std::vector<std::string> ids;
    for (it->Seek(std::string(keys::kEnvelopePrefix)); it->Valid();
         it->Next()) {
      ids.push_back(it->key().ToString().substr(keys::kEnvelopePrefix.size()));
    }
    if (!it->status().ok())
      return Error(FromRocks(it->status(), "spool: list"));
    return ids;
  }

  Result<Envelope> LoadEnvelope(const std::string& id) override {
    auto r = core_->Read();
    if (r.db == nullptr) return Error(Unavailable());
    auto h = ReadHeader(r.db, id, nullptr, record::Recipients::kDecode);
    if (!h) return Error(h.error());
    return std::move(h->envelope);
  }

  // Chunk by chunk with point reads, the lock held only for each read and
  // never while `sink` runs (a sink may be a slow remote SMTP server).
  // Committed content never changes; a concurrent Remove shows as NotFound.
  Status ReadContent(
      const std::string& id,
      const std::function<Status(std::string_view)>& sink) override {
    Result<record::EnvelopeHeader> h;
    {
      auto r = core_->Read();
      if (r.db == nullptr) return Unavailable();
      h = ReadHeader(r.db, id, nullptr, record::Recipients::kSkip);
    }
    if (!h) return h.error();
    rocksdb::ReadOptions ro;
    ro.fill_cache = false;  // content is read once per delivery attempt
    std::uint64_t octets = 0;
    std::string value;
    for (std::uint32_t n = 0; n < h->chunk_count; ++n) {
      rocksdb::Status s;
      {
        auto r = core_->Read();
        if (r.db == nullptr) return Unavailable();
        s = r.db->Get(ro, keys::Chunk(id, n), &value);
      }
      if (s.IsNotFound()) {
        auto r = core_->Read();
        std::string ignored;
        if (r.db != nullptr &&
            r.db->Get(ro, keys::Envelope(id), &ignored).IsNotFound()) {
          return Status::NotFound("spool: " + id + " removed while read");
        }
        return Status::Corruption(id + ": content chunk " + std::to_string(n) +
                                  " missing");
      }
      if (!s.ok()) return FromRocks(s, "spool: read " + id);
      auto data = record::DecodeChunk(value);
      if (!data) {
        return Status::Corruption(id + ": chunk " + std::to_string(n) + ": " +
                                  data.error().message());
      }
      octets += data->size();
      if (octets > h->envelope.content_octets) break;
      if (Status st = sink(*data); !st.ok()) return st;
    }
    if (octets != h->envelope.content_octets) {
      return Status::Corruption(id + ": content is " + std::to_string(octets) +
                                " octets, envelope says " +
                                std::to_string(h->envelope.content_octets));
    }
    return Status::Ok();
  }

  Status UpdateRecipients(
      const std::string& id,
      const std::vector<std::pair<std::size_t, Recipient>>& changes) override {
    return core_->EnqueueAndWait(UpdateRecipientsOp(id, changes));
  }

  Status UpdateEnvelope(const Envelope& envelope) override {
    Op op;
    op.kind = OpKind::kUpdateEnvelope;
    op.envelope = envelope;
    return core_->EnqueueAndWait(std::move(op));
  }

  using Spool::Remove;
  Status Remove(const std::string& id, Durability durability) override {
    return core_->EnqueueAndWait(RemoveOp(id, durability));
  }

  void UpdateRecipientsAsync(
      std::string id, std::vector<std::pair<std::size_t, Recipient>> changes,
      Callback done) override {
    Op op = UpdateRecipientsOp(std::move(id), std::move(changes));
    op.done = std::move(done);
    core_->Enqueue(std::move(op));
  }

  void RemoveAsync(std::string id, Durability durability,
                   Callback done) override {
    Op op = RemoveOp(std::move(id), durability);
    op.done = std::move(done);
    core_->Enqueue(std::move(op));
  }

  std::uint64_t sync_count() const override { return core_->sync_count(); }
  std::uint64_t commit_count() const override { return core_->commit_count(); }

 private:
  class Snapshot {
   public:
    explicit Snapshot(rocksdb::DB* db) : db_(db), snap_(db->GetSnapshot()) {}
    ~Snapshot() { db_->ReleaseSnapshot(snap_); }
    const rocksdb::Snapshot* get() const { return snap_; }

   private:
    rocksdb::DB* db_;
    const rocksdb::Snapshot* snap_;
  };

  static Op UpdateRecipientsOp(
      std::string id, std::vector<std::pair<std::size_t, Recipient>> changes) {
    Op op;
    op.kind = OpKind::kUpdateRecipients;
    op.id = std::move(id);
    op.changes = std::move(changes);
    return op;
  }

  static Op RemoveOp(std::string id, Durability durability) {
    Op op;
    op.kind = OpKind::kRemove;
    op.id = std::move(id);
    op.sync = durability == Durability::kSync;
    return op;
  }

  static Status Unavailable() {
    return Status::Unavailable("spool: database closed after a write error");
  }

  // The envelope of `id`; with kDecode its recipients too (from r/ records
  // under one snapshot for a version-1 envelope).
  static Result<record::EnvelopeHeader> ReadHeader(
      rocksdb::DB* db, const std::string& id, const rocksdb::Snapshot* snap,
      record::Recipients recipients) {
    if (!keys::IsValidId(id)) {
      return Error(Status::NotFound("spool: no message " + id));
    }
    rocksdb::ReadOptions ro;
    ro.snapshot = snap;
    std::string value;
    rocksdb::Status s = db->Get(ro, keys::Envelope(id), &value);
    if (s.IsNotFound()) {
      return Error(Status::NotFound("spool: no message " + id));
    }
    if (!s.ok()) return Error(FromRocks(s, "spool: read " + id));
    auto h = record::DecodeEnvelope(value, recipients);
    if (!h) return Error(Status::Corruption(id + ": " + h.error().message()));
    if (h->envelope.id != id) {
      return Error(
          Status::Corruption(id + ": envelope record names " + h->envelope.id));
    }
    if (h->version == 1 && recipients == record::Recipients::kDecode) {
      if (snap == nullptr) {
        // Read again under a snapshot: the envelope and its r/ records must
        // agree (an update rewrites them as one version-2 record).
        Snapshot own(db);
        return ReadHeader(db, id, own.get(), recipients);
      }
      Status st = ReadV1Recipients(db, ro, id, h->recipient_count,
                                   &h->envelope.recipients);
      if (!st.ok()) return Error(st);
    }
    return h;
  }

  std::shared_ptr<Core> core_;
};

// Deletes what uncommitted messages left behind: every i/<id> marker without
// an envelope loses its chunk and recipient ranges. A marker beside an
// envelope cannot come from the commit protocol (the commit batch deletes
// the marker atomically); the envelope wins and only the marker goes.
Status Recover(rocksdb::DB* db) {
  rocksdb::ReadOptions ro;
  std::string end = keys::PrefixEnd(keys::kIncomingPrefix);
  rocksdb::Slice upper(end);
  ro.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro));
  rocksdb::WriteBatch batch;
  for (it->Seek(std::string(keys::kIncomingPrefix)); it->Valid(); it->Next()) {
    std::string id = it->key().ToString().substr(keys::kIncomingPrefix.size());
    std::string value;
    rocksdb::Status s =
        db->Get(rocksdb::ReadOptions(), keys::Envelope(id), &value);
    if (s.IsNotFound()) {
      batch.DeleteRange(keys::ChunkBegin(id), keys::ChunkEnd(id))
          .PermitUncheckedError();
      batch.DeleteRange(keys::RecipientBegin(id), keys::RecipientEnd(id))
          .PermitUncheckedError();
    } else if (!s.ok()) {
      return FromRocks(s, "spool: recovery");
    }
    batch.Delete(it->key()).PermitUncheckedError();
  }
  if (!it->status().ok()) return FromRocks(it->status(), "spool: recovery");
  if (batch.Count() == 0) return Status::Ok();
  rocksdb::WriteOptions wo;
  wo.sync = true;
  return FromRocks(db->Write(wo, &batch), "spool: recovery");
}

}  // namespace

Result<std::unique_ptr<Spool>> Spool::Open(const SpoolOptions& options) {
  if (options.chunk_octets == 0 || options.chunk_octets > kMaxChunkOctets) {
    return Error(Status::InvalidArgument("spool: chunk_octets out of range"));
  }
  auto db = OpenDb(options.path);
  if (!db) return Error(db.error());
  if (Status s = Recover(db->get()); !s.ok()) return Error(s);
  auto core = std::make_shared<Core>(std::move(*db), options.path,
                                     options.chunk_octets);
  core->Start();
  return std::unique_ptr<Spool>(std::make_unique<RocksSpool>(std::move(core)));
}

namespace raw {

Result<std::vector<std::string>> ListRawKeys(const std::string& path) {
  auto db = OpenDb(path);
  if (!db) return Error(db.error());
  std::unique_ptr<rocksdb::Iterator> it((*db)->NewIterator({}));
  std::vector<std::string> out;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    out.push_back(it->key().ToString());
  }
  if (!it->status().ok()) return Error(FromRocks(it->status(), "list"));
  return out;
}

Result<std::string> GetRaw(const std::string& path, std::string_view key) {
  auto db = OpenDb(path);
  if (!db) return Error(db.error());
  std::string value;
  rocksdb::Status s =
      (*db)->Get({}, rocksdb::Slice(key.data(), key.size()), &value);
  if (!s.ok()) return Error(FromRocks(s, "get"));
  return value;
}

Status PutRaw(const std::string& path, std::string_view key,
              std::string_view value) {
  auto db = OpenDb(path);
  if (!db) return db.error();
  rocksdb::WriteOptions wo;
  wo.sync = true;
  return FromRocks((*db)->Put(wo, rocksdb::Slice(key.data(), key.size()),
                              rocksdb::Slice(value.data(), value.size())),
                   "put");
}

}  // namespace raw
}  // namespace petrel::spool
