// MemorySpool: the Spool contract in memory, for tests and fuzzing. Nothing
// is durable. Callbacks run synchronously on the calling thread, outside the
// lock; the optional fault hook (MemorySpoolOptions) fails chosen writes.
#include <map>
#include <memory>
#include <mutex>
#include <utility>

#include "spool/keys.h"
#include "spool/spool.h"

namespace petrel::spool {
namespace {

constexpr std::size_t kReadPieceOctets = 64 * 1024;

struct Message {
  Envelope envelope;
  std::string content;
};

struct MemoryCore {
  explicit MemoryCore(MemorySpoolOptions o) : options(std::move(o)) {}

  // Asks the fault hook about the next write; called without the lock.
  Status Fault(std::string_view op) {
    std::uint64_t n;
    {
      std::lock_guard lock(mu);
      if (!alive) return Status::Unavailable("spool is shut down");
      n = writes++;
    }
    if (!options.fault) return Status::Ok();
    return options.fault(op, n);
  }

  const MemorySpoolOptions options;
  std::mutex mu;
  bool alive = true;                        // guarded by mu
  std::uint64_t writes = 0;                 // guarded by mu
  std::uint64_t commits = 0;                // guarded by mu
  std::map<std::string, Message> messages;  // guarded by mu
};

class MemoryWriter final : public MessageWriter {
 public:
  MemoryWriter(std::shared_ptr<MemoryCore> core, std::string id)
      : core_(std::move(core)), id_(std::move(id)) {}

  void Append(std::string bytes, Callback done) override {
    Status s = Check("append");
    if (s.ok()) {
      s = core_->Fault("append");
      if (!s.ok()) Fail(s);
    }
    if (s.ok()) content_.append(bytes);
    if (done) done(std::move(s));
  }

  void Commit(Envelope envelope, Callback done) override {
    Status s = Check("commit");
    if (s.ok()) {
      committed_ = true;
      if (!keys::IsValidId(id_)) {
        s = Status::InvalidArgument("spool: invalid message id");
      } else if (envelope.id != id_) {
        s = Status::InvalidArgument("spool: envelope id " + envelope.id +
                                    " is not " + id_);
      } else {
        s = core_->Fault("commit");
      }
      if (s.ok()) {
        envelope.content_octets = content_.size();
        std::lock_guard lock(core_->mu);
        core_->messages[id_] =
            Message{std::move(envelope), std::move(content_)};
        ++core_->commits;
      } else {
        Fail(s);
      }
      content_.clear();
    }
    if (done) done(std::move(s));
  }

  void Abort() override {
    if (committed_) return;
    Fail(Status::Internal("message aborted"));
  }

  const std::string& id() const override { return id_; }

 private:
  Status Check(std::string_view op) const {
    if (!failure_.ok()) return failure_;
    if (committed_) {
      return Status::Internal("spool: " + std::string(op) + " after commit");
    }
    return Status::Ok();
  }
  void Fail(Status s) {
    if (failure_.ok()) failure_ = std::move(s);
    std::string().swap(content_);
  }

  std::shared_ptr<MemoryCore> core_;
  std::string id_;
  std::string content_;
  Status failure_;
  bool committed_ = false;
};

class MemorySpool final : public Spool {
 public:
  explicit MemorySpool(MemorySpoolOptions options)
      : core_(std::make_shared<MemoryCore>(std::move(options))) {}
  ~MemorySpool() override {
    std::lock_guard lock(core_->mu);
    core_->alive = false;
  }

  std::unique_ptr<MessageWriter> NewMessage(std::string id) override {
    return std::make_unique<MemoryWriter>(core_, std::move(id));
  }

  Result<std::vector<std::string>> ListIds() override {
    std::lock_guard lock(core_->mu);
    std::vector<std::string> ids;
    ids.reserve(core_->messages.size());
    for (const auto& [id, m] : core_->messages) ids.push_back(id);
    return ids;
  }

  Result<Envelope> LoadEnvelope(const std::string& id) override {
    std::lock_guard lock(core_->mu);
    auto it = core_->messages.find(id);
    if (it == core_->messages.end()) return Error(NotFound(id));
    return it->second.envelope;
  }

  Status ReadContent(
      const std::string& id,
      const std::function<Status(std::string_view)>& sink) override {
    std::string content;
    {
      std::lock_guard lock(core_->mu);
      auto it = core_->messages.find(id);
      if (it == core_->messages.end()) return NotFound(id);
      content = it->second.content;
    }
    std::string_view rest = content;
    while (!rest.empty()) {
      std::string_view piece = rest.substr(0, kReadPieceOctets);
      rest.remove_prefix(piece.size());
      if (Status s = sink(piece); !s.ok()) return s;
    }
    return Status::Ok();
  }

  Status UpdateRecipients(
      const std::string& id,
      const std::vector<std::pair<std::size_t, Recipient>>& changes) override {
    if (!Exists(id)) return NotFound(id);
    if (Status s = core_->Fault("update_recipients"); !s.ok()) return s;
    std::lock_guard lock(core_->mu);
    auto it = core_->messages.find(id);
    if (it == core_->messages.end()) return NotFound(id);
    auto& recipients = it->second.envelope.recipients;
    for (const auto& [index, rcpt] : changes) {
      if (index >= recipients.size()) {
        return Status::InvalidArgument("spool: " + id + " has no recipient " +
                                       std::to_string(index));
      }
    }
    for (const auto& [index, rcpt] : changes) recipients[index] = rcpt;
    return Status::Ok();
  }

  Status UpdateEnvelope(const Envelope& envelope) override {
    if (!Exists(envelope.id)) return NotFound(envelope.id);
    if (Status s = core_->Fault("update_envelope"); !s.ok()) return s;
    std::lock_guard lock(core_->mu);
    auto it = core_->messages.find(envelope.id);
    if (it == core_->messages.end()) return NotFound(envelope.id);
    std::uint64_t octets = it->second.envelope.content_octets;
    it->second.envelope = envelope;
    it->second.envelope.content_octets = octets;
    return Status::Ok();
  }

  using Spool::Remove;
  Status Remove(const std::string& id, Durability) override {
    if (!Exists(id)) return NotFound(id);
    if (Status s = core_->Fault("remove"); !s.ok()) return s;
    std::lock_guard lock(core_->mu);
    if (core_->messages.erase(id) == 0) return NotFound(id);
    return Status::Ok();
  }

  void UpdateRecipientsAsync(
      std::string id, std::vector<std::pair<std::size_t, Recipient>> changes,
      Callback done) override {
    done(UpdateRecipients(id, changes));
  }
  void RemoveAsync(std::string id, Durability durability,
                   Callback done) override {
    done(Remove(id, durability));
  }

  std::uint64_t sync_count() const override { return 0; }
  std::uint64_t commit_count() const override {
    std::lock_guard lock(core_->mu);
    return core_->commits;
  }

 private:
  static Status NotFound(const std::string& id) {
    return Status::NotFound("spool: no message " + id);
  }
  bool Exists(const std::string& id) {
    std::lock_guard lock(core_->mu);
    return core_->messages.count(id) > 0;
  }

  std::shared_ptr<MemoryCore> core_;
};

}  // namespace

std::unique_ptr<Spool> Spool::NewMemorySpool() {
  return NewMemorySpool(MemorySpoolOptions{});
}

std::unique_ptr<Spool> Spool::NewMemorySpool(MemorySpoolOptions options) {
  return std::make_unique<MemorySpool>(std::move(options));
}

}  // namespace petrel::spool
