#include "spool/spool.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <mutex>
#include <set>
#include <thread>

#include "spool/keys.h"
#include "spool/record.h"
#include "spool/spool_testing.h"

namespace petrel::spool {
namespace {

namespace fs = std::filesystem;
using Code = Status::Code;

// --- helpers ---------------------------------------------------------------

std::string MakeTempDir(const char* tag) {
  std::string templ = (fs::temp_directory_path() /
                       (std::string("petrel-spool-") + tag + "-XXXXXX"))
                          .string();
  char* dir = mkdtemp(templ.data());
  if (dir == nullptr) std::abort();
  return dir;
}

Status Wait(std::future<Status>& f) {
  if (f.wait_for(std::chrono::seconds(60)) != std::future_status::ready) {
    return Status::Internal("callback never ran");
  }
  return f.get();
}

Status AppendAndWait(MessageWriter& w, std::string bytes) {
  std::promise<Status> p;
  auto f = p.get_future();
  w.Append(std::move(bytes), [&p](Status s) { p.set_value(std::move(s)); });
  return Wait(f);
}

Status CommitAndWait(MessageWriter& w, Envelope e) {
  std::promise<Status> p;
  auto f = p.get_future();
  w.Commit(std::move(e), [&p](Status s) { p.set_value(std::move(s)); });
  return Wait(f);
}

Envelope MakeEnvelope(const std::string& id, int recipients = 2) {
  Envelope e;
  e.id = id;
  e.sender = "sender@example.org";
  e.eight_bit_mime = true;
  e.dsn_ret = 1;
  e.dsn_envid = "ENV-" + id;
  e.helo = "client.example.org";
  e.client_address = "192.0.2.10";
  e.protocol = "ESMTP";
  e.arrival_unix = 1700000000;
  e.next_attempt_unix = 1700000000;
  for (int i = 0; i < recipients; ++i) {
    Recipient r;
    r.address = "rcpt" + std::to_string(i) + "@example.net";
    r.orcpt_type = "rfc822";
    r.orcpt_address = r.address;
    r.notify = 3;
    e.recipients.push_back(r);
  }
  return e;
}

Result<std::string> ReadAll(Spool& spool, const std::string& id) {
  std::string out;
  Status s = spool.ReadContent(id, [&out](std::string_view piece) {
    out.append(piece);
    return Status::Ok();
  });
  if (!s.ok()) return Error(s);
  return out;
}

// Deterministic content for `id`: its size and octets follow from the id.
std::string ContentFor(const std::string& id, std::size_t max = 40000) {
  std::size_t h = std::hash<std::string>()(id);
  std::string s = "Received: from test\r\nMessage-ID: <" + id + ">\r\n\r\n";
  std::size_t n = 100 + h % max;
  for (std::size_t i = 0; s.size() < n; ++i) {
    s.push_back(static_cast<char>((h >> (i % 48)) + i));
  }
  return s;
}

// Appends `content` in pieces of `piece` octets, then commits.
Status Store(Spool& spool, const Envelope& e, const std::string& content,
             std::size_t piece = 1000) {
  auto w = spool.NewMessage(e.id);
  for (std::size_t at = 0; at < content.size(); at += piece) {
    if (Status s = AppendAndWait(*w, content.substr(at, piece)); !s.ok()) {
      return s;
    }
  }
  return CommitAndWait(*w, e);
}

bool Contains(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

std::vector<std::string> KeysOf(const std::vector<std::string>& all,
                                const std::string& id) {
  std::vector<std::string> out;
  for (const auto& k : all) {
    if (k.find("/" + id) == 1 &&
        (k.size() == id.size() + 2 || k[id.size() + 2] == '/')) {
      out.push_back(k);
    }
  }
  return out;
}

// --- both engines ------------------------------------------------------------

class SpoolTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (disk()) dir_ = MakeTempDir("t");
    Reopen();
  }
  void TearDown() override {
    spool_.reset();
    if (disk()) fs::remove_all(dir_);
  }
  bool disk() const { return GetParam() == "rocksdb"; }
  // Closes and reopens the RocksDB spool (a clean restart).
  void Reopen(std::size_t chunk_octets = 256 * 1024) {
    spool_.reset();
    if (!disk()) {
      spool_ = Spool::NewMemorySpool();
      return;
    }
    SpoolOptions o;
    o.path = dir_;
    o.chunk_octets = chunk_octets;
    auto s = Spool::Open(o);
    ASSERT_TRUE(s) << s.error().ToString();
    spool_ = std::move(*s);
  }
  std::vector<std::string> RawKeys() {
    auto k = raw::ListRawKeys(dir_);
    EXPECT_TRUE(k) << k.error().ToString();
    return k ? *k : std::vector<std::string>{};
  }

  std::string dir_;
  std::unique_ptr<Spool> spool_;
};

INSTANTIATE_TEST_SUITE_P(Engines, SpoolTest,
                         ::testing::Values("rocksdb", "memory"),
                         [](const auto& info) { return info.param; });

TEST_P(SpoolTest, RoundTrip) {
  Envelope e = MakeEnvelope("ROUNDTRIP1", 3);
  e.smtputf8 = true;
  e.held = true;
  e.recipients[1].state = RecipientState::kDelivered;
  e.recipients[1].last_reply = "dsn=2.0.0, status=sent (250 ok)";
  e.content_octets = 999;  // the spool sets it
  std::string content = ContentFor(e.id);
  ASSERT_TRUE(Store(*spool_, e, content, 333).ok());
  EXPECT_EQ(spool_->commit_count(), 1u);

  auto ids = spool_->ListIds();
  ASSERT_TRUE(ids);
  EXPECT_EQ(*ids, std::vector<std::string>{"ROUNDTRIP1"});
  auto d = spool_->LoadEnvelope("ROUNDTRIP1");
  ASSERT_TRUE(d) << d.error().ToString();
  EXPECT_EQ(d->id, e.id);
  EXPECT_EQ(d->sender, e.sender);
  EXPECT_TRUE(d->smtputf8);
  EXPECT_TRUE(d->eight_bit_mime);
  EXPECT_TRUE(d->held);
  EXPECT_EQ(d->dsn_ret, 1);
  EXPECT_EQ(d->dsn_envid, e.dsn_envid);
  EXPECT_EQ(d->helo, e.helo);
  EXPECT_EQ(d->client_address, e.client_address);
  EXPECT_EQ(d->protocol, "ESMTP");
  EXPECT_EQ(d->arrival_unix, e.arrival_unix);
  EXPECT_EQ(d->content_octets, content.size());
  ASSERT_EQ(d->recipients.size(), 3u);
  EXPECT_EQ(d->recipients[2].address, "rcpt2@example.net");
  EXPECT_EQ(d->recipients[1].state, RecipientState::kDelivered);
  EXPECT_EQ(d->recipients[1].last_reply, e.recipients[1].last_reply);
  EXPECT_EQ(ReadAll(*spool_, "ROUNDTRIP1").value(), content);

  if (disk()) {
    Reopen();
    EXPECT_EQ(ReadAll(*spool_, "ROUNDTRIP1").value(), content);
    EXPECT_EQ(spool_->LoadEnvelope("ROUNDTRIP1")->recipients.size(), 3u);
  }
}

TEST_P(SpoolTest, FiveMebibyteMessage) {
  std::string content(5 << 20, '\0');
  std::uint32_t x = 12345;
  for (char& c : content) {
    x = x * 1103515245 + 12345;
    c = static_cast<char>(x >> 16);
  }
  Envelope e = MakeEnvelope("BIG5MIB", 1);
  // Odd piece size: chunks are cut across appends.
  ASSERT_TRUE(Store(*spool_, e, content, 65537).ok());
  EXPECT_EQ(spool_->LoadEnvelope("BIG5MIB")->content_octets, content.size());
  std::size_t pieces = 0;
  std::string back;
  ASSERT_TRUE(spool_
                  ->ReadContent("BIG5MIB",
                                [&](std::string_view p) {
                                  ++pieces;
                                  back.append(p);
                                  return Status::Ok();
                                })
                  .ok());
  EXPECT_EQ(back.size(), content.size());
  EXPECT_TRUE(back == content);
  EXPECT_GT(pieces, 1u);
  if (disk()) {
    spool_.reset();
    auto keys = KeysOf(RawKeys(), "BIG5MIB");
    std::size_t chunks = std::count_if(keys.begin(), keys.end(), [](auto& k) {
      return k.rfind("c/", 0) == 0;
    });
    EXPECT_EQ(chunks, 20u);  // 5 MiB / 256 KiB
    Reopen();
    EXPECT_TRUE(ReadAll(*spool_, "BIG5MIB").value() == content);
  }
}

TEST_P(SpoolTest, EveryOctetValue) {
  std::string content;
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 256; ++i) content.push_back(static_cast<char>(i));
  }
  content += "\r\n.\r\n..\r\n\0\0\r\n";
  Envelope e = MakeEnvelope("BYTES", 1);
  if (disk()) Reopen(100);  // small chunks: many chunk boundaries
  ASSERT_TRUE(Store(*spool_, e, content, 7).ok());
  EXPECT_EQ(ReadAll(*spool_, "BYTES").value(), content);
  // An empty message is a message too.
  ASSERT_TRUE(Store(*spool_, MakeEnvelope("EMPTY", 1), "").ok());
  EXPECT_EQ(ReadAll(*spool_, "EMPTY").value(), "");
  EXPECT_EQ(spool_->LoadEnvelope("EMPTY")->content_octets, 0u);
}

TEST_P(SpoolTest, UncommittedIsInvisible) {
  auto w = spool_->NewMessage("PARTIAL");
  ASSERT_TRUE(AppendAndWait(*w, std::string(600 * 1024, 'x')).ok());
  EXPECT_FALSE(Contains(spool_->ListIds().value(), "PARTIAL"));
  EXPECT_EQ(spool_->LoadEnvelope("PARTIAL").error().code(), Code::kNotFound);
  EXPECT_EQ(ReadAll(*spool_, "PARTIAL").error().code(), Code::kNotFound);
  if (!disk()) return;
  // A restart while the message is still open (as after a crash): close the
  // spool first, so the writer's abort cannot reach the database.
  spool_.reset();
  w.reset();
  EXPECT_FALSE(KeysOf(RawKeys(), "PARTIAL").empty());  // chunks + i/ marker
  Reopen();
  EXPECT_FALSE(Contains(spool_->ListIds().value(), "PARTIAL"));
  spool_.reset();
  EXPECT_TRUE(KeysOf(RawKeys(), "PARTIAL").empty());
}

TEST_P(SpoolTest, AbortAndDestructorForgetContent) {
  {
    auto w = spool_->NewMessage("ABORTED");
    ASSERT_TRUE(AppendAndWait(*w, std::string(300 * 1024, 'a')).ok());
    w->Abort();
    EXPECT_FALSE(CommitAndWait(*w, MakeEnvelope("ABORTED")).ok());
    EXPECT_FALSE(AppendAndWait(*w, "more").ok());
  }
  {
    auto w = spool_->NewMessage("DROPPED");
    ASSERT_TRUE(AppendAndWait(*w, std::string(300 * 1024, 'd')).ok());
  }  // destroyed uncommitted
  ASSERT_TRUE(Store(*spool_, MakeEnvelope("KEPT"), "kept\r\n").ok());
  EXPECT_EQ(spool_->ListIds().value(), std::vector<std::string>{"KEPT"});
  if (!disk()) return;
  spool_.reset();  // drains the queue, aborts included
  auto keys = RawKeys();
  EXPECT_TRUE(KeysOf(keys, "ABORTED").empty());
  EXPECT_TRUE(KeysOf(keys, "DROPPED").empty());
  EXPECT_FALSE(KeysOf(keys, "KEPT").empty());
}

TEST_P(SpoolTest, MisuseFailsWithoutHarm) {
  auto w = spool_->NewMessage("MISUSE");
  ASSERT_TRUE(AppendAndWait(*w, "data\r\n").ok());
  ASSERT_TRUE(CommitAndWait(*w, MakeEnvelope("MISUSE")).ok());
  EXPECT_FALSE(AppendAndWait(*w, "late").ok());
  EXPECT_FALSE(CommitAndWait(*w, MakeEnvelope("MISUSE")).ok());
  w->Abort();  // after commit: nothing happens
  w.reset();
  EXPECT_EQ(ReadAll(*spool_, "MISUSE").value(), "data\r\n");

  auto bad = spool_->NewMessage("WRONGID");
  ASSERT_TRUE(AppendAndWait(*bad, "x").ok());
  EXPECT_EQ(CommitAndWait(*bad, MakeEnvelope("OTHER")).code(),
            Code::kInvalidArgument);
  auto slash = spool_->NewMessage("a/b");
  EXPECT_EQ(CommitAndWait(*slash, MakeEnvelope("a/b")).code(),
            Code::kInvalidArgument);
  EXPECT_EQ(spool_->ListIds().value(), std::vector<std::string>{"MISUSE"});
  EXPECT_EQ(spool_->commit_count(), 1u);
  if (!disk()) return;
  bad.reset();
  spool_.reset();
  EXPECT_TRUE(KeysOf(RawKeys(), "WRONGID").empty());
}

TEST_P(SpoolTest, CallbacksCompleteInOrder) {
  auto w = spool_->NewMessage("ORDER");
  std::mutex mu;
  std::vector<int> order;
  std::string content;
  for (int i = 0; i < 200; ++i) {
    std::string piece(1000 + i * 37, static_cast<char>('A' + i % 26));
    content += piece;
    w->Append(piece, [&, i](Status s) {
      EXPECT_TRUE(s.ok());
      std::lock_guard lock(mu);
      order.push_back(i);
    });
  }
  ASSERT_TRUE(CommitAndWait(*w, MakeEnvelope("ORDER")).ok());
  std::lock_guard lock(mu);
  ASSERT_EQ(order.size(), 200u);
  for (int i = 0; i < 200; ++i) EXPECT_EQ(order[i], i);
  EXPECT_EQ(ReadAll(*spool_, "ORDER").value(), content);
}

TEST_P(SpoolTest, RecipientUpdatesAreInPlace) {
  Envelope e = MakeEnvelope("UPDATES", 3);
  ASSERT_TRUE(Store(*spool_, e, "body\r\n").ok());
  Recipient done = e.recipients[1];
  done.state = RecipientState::kDelivered;
  done.attempts = 1;
  done.last_attempt_unix = 1700000300;
  done.last_reply = "dsn=2.0.0, status=sent (250 2.0.0 queued as X)";
  done.remote_mta = "mx.example.net[198.51.100.1]";
  ASSERT_TRUE(spool_->UpdateRecipients("UPDATES", {{1, done}}).ok());
  // Out of range: nothing changes, not even the valid part.
  Recipient wrong = e.recipients[0];
  wrong.state = RecipientState::kFailed;
  EXPECT_EQ(
      spool_->UpdateRecipients("UPDATES", {{0, wrong}, {3, wrong}}).code(),
      Code::kInvalidArgument);
  EXPECT_EQ(spool_->UpdateRecipients("NOSUCH", {{0, wrong}}).code(),
            Code::kNotFound);
  Reopen();
  if (!disk()) return;  // the memory spool forgets on "reopen"
  auto d = spool_->LoadEnvelope("UPDATES");
  ASSERT_TRUE(d) << d.error().ToString();
  ASSERT_EQ(d->recipients.size(), 3u);
  EXPECT_EQ(d->recipients[0].state, RecipientState::kPending);
  EXPECT_EQ(d->recipients[0].address, e.recipients[0].address);
  EXPECT_EQ(d->recipients[1].state, RecipientState::kDelivered);
  EXPECT_EQ(d->recipients[1].attempts, 1u);
  EXPECT_EQ(d->recipients[1].last_reply, done.last_reply);
  EXPECT_EQ(d->recipients[1].remote_mta, done.remote_mta);
  EXPECT_EQ(d->recipients[2].state, RecipientState::kPending);
  EXPECT_EQ(d->recipients[2].attempts, 0u);
  EXPECT_EQ(ReadAll(*spool_, "UPDATES").value(), "body\r\n");
}

TEST_P(SpoolTest, UpdateEnvelopeKeepsContent) {
  Envelope e = MakeEnvelope("ENVUPD", 3);
  ASSERT_TRUE(Store(*spool_, e, "hello\r\n").ok());
  Envelope next = *spool_->LoadEnvelope("ENVUPD");
  next.held = true;
  next.next_attempt_unix = 1700009999;
  next.content_octets = 0;  // ignored: content does not change
  next.recipients.pop_back();
  next.recipients[0].dsn_sent = true;
  ASSERT_TRUE(spool_->UpdateEnvelope(next).ok());
  Envelope missing = MakeEnvelope("NOSUCH");
  EXPECT_EQ(spool_->UpdateEnvelope(missing).code(), Code::kNotFound);
  if (disk()) Reopen();
  auto d = spool_->LoadEnvelope("ENVUPD");
  ASSERT_TRUE(d);
  EXPECT_TRUE(d->held);
  EXPECT_EQ(d->next_attempt_unix, 1700009999);
  EXPECT_EQ(d->content_octets, 7u);
  ASSERT_EQ(d->recipients.size(), 2u);
  EXPECT_TRUE(d->recipients[0].dsn_sent);
  EXPECT_EQ(ReadAll(*spool_, "ENVUPD").value(), "hello\r\n");
  if (!disk()) return;
  spool_.reset();
  auto keys = KeysOf(RawKeys(), "ENVUPD");
  EXPECT_FALSE(Contains(keys, keys::Recipient("ENVUPD", 2)));
}

TEST_P(SpoolTest, Remove) {
  if (disk()) Reopen(1000);
  ASSERT_TRUE(Store(*spool_, MakeEnvelope("GONE", 4), ContentFor("GONE")).ok());
  ASSERT_TRUE(Store(*spool_, MakeEnvelope("STAYS"), "stays\r\n").ok());
  ASSERT_TRUE(spool_->Remove("GONE").ok());
  EXPECT_EQ(spool_->ListIds().value(), std::vector<std::string>{"STAYS"});
  EXPECT_EQ(spool_->LoadEnvelope("GONE").error().code(), Code::kNotFound);
  EXPECT_EQ(ReadAll(*spool_, "GONE").error().code(), Code::kNotFound);
  EXPECT_EQ(spool_->Remove("GONE").code(), Code::kNotFound);
  EXPECT_EQ(spool_->UpdateRecipients("GONE", {}).code(), Code::kNotFound);
  if (!disk()) return;
  spool_.reset();
  auto keys = RawKeys();
  EXPECT_TRUE(KeysOf(keys, "GONE").empty());
  EXPECT_FALSE(KeysOf(keys, "STAYS").empty());
}

// 16 sessions commit 50 messages each, every one waiting for its 250: the
// writer thread must fold concurrent commits into shared syncs.
TEST_P(SpoolTest, ConcurrentCommitsShareSyncs) {
  constexpr int kThreads = 16;
  constexpr int kPerThread = 50;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        std::string id = "T" + std::to_string(t) + "M" + std::to_string(i);
        if (!Store(*spool_, MakeEnvelope(id, 1 + i % 3), ContentFor(id, 20000),
                   4096)
                 .ok()) {
          ++failures;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  const std::uint64_t commits = spool_->commit_count();
  const std::uint64_t syncs = spool_->sync_count();
  EXPECT_EQ(commits, std::uint64_t{kThreads * kPerThread});
  std::printf("[ %s ] commits=%llu syncs=%llu (%.2f commits per sync)\n",
              GetParam().c_str(), static_cast<unsigned long long>(commits),
              static_cast<unsigned long long>(syncs),
              syncs ? static_cast<double>(commits) / syncs : 0.0);
  if (disk()) {
    EXPECT_LT(syncs, commits);
    EXPECT_GT(syncs, 0u);
  }
  EXPECT_EQ(spool_->ListIds()->size(), std::size_t{kThreads * kPerThread});
  for (const char* id : {"T0M0", "T7M31", "T15M49"}) {
    EXPECT_EQ(ReadAll(*spool_, id).value(), ContentFor(id, 20000));
  }
}

TEST_P(SpoolTest, WriterOutlivingSpoolFailsCleanly) {
  auto w = spool_->NewMessage("ORPHAN");
  ASSERT_TRUE(AppendAndWait(*w, "x").ok());
  spool_.reset();
  EXPECT_EQ(AppendAndWait(*w, "y").code(), Code::kUnavailable);
  EXPECT_EQ(CommitAndWait(*w, MakeEnvelope("ORPHAN")).code(),
            Code::kUnavailable);
}

// --- memory engine only
// --------------------------------------------------------

TEST(MemorySpoolTest, CallbacksAreSynchronous) {
  auto spool = Spool::NewMemorySpool();
  auto w = spool->NewMessage("SYNC");
  bool ran = false;
  w->Append("x", [&](Status s) { ran = s.ok(); });
  EXPECT_TRUE(ran);
  ran = false;
  w->Commit(MakeEnvelope("SYNC"), [&](Status s) { ran = s.ok(); });
  EXPECT_TRUE(ran);
}

TEST(MemorySpoolTest, FaultHookFailsStepN) {
  // Fail the n-th write for every n: a failed message leaves nothing.
  for (std::uint64_t fail_at = 0; fail_at < 4; ++fail_at) {
    MemorySpoolOptions o;
    o.fault = [fail_at](std::string_view, std::uint64_t n) {
      return n == fail_at ? Status::NoSpace("injected") : Status::Ok();
    };
    auto spool = Spool::NewMemorySpool(std::move(o));
    Status s = Store(*spool, MakeEnvelope("FAULT"), "abc", 1);  // 3 + commit
    EXPECT_EQ(s.code(), Code::kNoSpace) << fail_at;
    EXPECT_TRUE(spool->ListIds()->empty());
    EXPECT_TRUE(Store(*spool, MakeEnvelope("AFTER"), "ok").ok());
  }
}

// --- RocksDB engine only -----------------------------------------------------

class RocksSpoolTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = MakeTempDir("r"); }
  void TearDown() override {
    spool_.reset();
    fs::remove_all(dir_);
  }
  void Open() {
    spool_.reset();
    SpoolOptions o;
    o.path = dir_;
    o.chunk_octets = 1000;
    auto s = Spool::Open(o);
    ASSERT_TRUE(s) << s.error().ToString();
    spool_ = std::move(*s);
  }
  std::string dir_;
  std::unique_ptr<Spool> spool_;
};

TEST_F(RocksSpoolTest, OpenCreatesDirectoryAndRejectsBadOptions) {
  SpoolOptions o;
  o.path = dir_ + "/a/b/spool";
  auto s = Spool::Open(o);
  ASSERT_TRUE(s) << s.error().ToString();
  EXPECT_TRUE(fs::is_directory(o.path));
  // A second Open of the same directory is refused, not corrupted.
  auto again = Spool::Open(o);
  EXPECT_FALSE(again);
  o.chunk_octets = 0;
  EXPECT_EQ(Spool::Open(o).error().code(), Code::kInvalidArgument);
}

TEST_F(RocksSpoolTest, BlockingCallFromCallbackIsRefused) {
  Open();
  ASSERT_TRUE(Store(*spool_, MakeEnvelope("CB"), "x").ok());
  std::promise<Status> p;
  auto w = spool_->NewMessage("CB2");
  w->Append("y", [&](Status) { p.set_value(spool_->Remove("CB")); });
  auto f = p.get_future();
  EXPECT_EQ(Wait(f).code(), Code::kInternal);
}

TEST_F(RocksSpoolTest, CorruptRecordsAreReportedNotFatal) {
  Open();
  std::string content = ContentFor("CORRUPT", 5000) + ContentFor("X", 5000);
  ASSERT_TRUE(Store(*spool_, MakeEnvelope("CORRUPT", 2), content).ok());
  ASSERT_TRUE(Store(*spool_, MakeEnvelope("HEALTHY", 2), content).ok());
  spool_.reset();

  struct Case {
    std::string key;
    bool content;  // damage shows in ReadContent, else in LoadEnvelope
  };
  const std::vector<Case> cases = {
      {keys::Envelope("CORRUPT"), false},  // recipients are inside
      {keys::Chunk("CORRUPT", 3), true},
  };
  for (const Case& c : cases) {
    auto good = raw::GetRaw(dir_, c.key);
    ASSERT_TRUE(good) << c.key;
    for (auto damage : {0, 1, 2, 3}) {
      std::string bad = *good;
      if (damage == 0) bad[bad.size() / 2] ^= 0x10;  // a flipped bit
      if (damage == 1) bad.resize(bad.size() - 1);   // truncated
      if (damage == 2) bad[0] = 9;                   // unknown version
      if (damage == 3) bad = "garbage";
      ASSERT_TRUE(raw::PutRaw(dir_, c.key, bad).ok());
      Open();
      EXPECT_TRUE(Contains(spool_->ListIds().value(), "CORRUPT"));
      if (c.content) {
        EXPECT_TRUE(spool_->LoadEnvelope("CORRUPT"));
        EXPECT_EQ(ReadAll(*spool_, "CORRUPT").error().code(), Code::kCorruption)
            << c.key << " damage " << damage;
      } else {
        auto e = spool_->LoadEnvelope("CORRUPT");
        ASSERT_FALSE(e) << c.key << " damage " << damage;
        EXPECT_EQ(e.error().code(), Code::kCorruption);
      }
      EXPECT_EQ(ReadAll(*spool_, "HEALTHY").value(), content);
      spool_.reset();
    }
    ASSERT_TRUE(raw::PutRaw(dir_, c.key, *good).ok());
  }
  // A chunk that is missing, and a damaged envelope that is still removable.
  ASSERT_TRUE(raw::PutRaw(dir_, keys::Envelope("CORRUPT"), "garbage").ok());
  Open();
  EXPECT_TRUE(spool_->Remove("CORRUPT").ok());
  EXPECT_EQ(spool_->ListIds().value(), std::vector<std::string>{"HEALTHY"});
  spool_.reset();
  EXPECT_TRUE(KeysOf(*raw::ListRawKeys(dir_), "CORRUPT").empty());
}

// A finished message's removal rides without its own fsync; an operator's
// delete (kSync) has one. Both survive a restart of the process.
TEST_F(RocksSpoolTest, LazyRemoveIsWrittenButNotSynced) {
  Open();
  ASSERT_TRUE(Store(*spool_, MakeEnvelope("LAZY", 100), "x\r\n").ok());
  ASSERT_TRUE(Store(*spool_, MakeEnvelope("EAGER"), "y\r\n").ok());
  const std::uint64_t syncs = spool_->sync_count();
  ASSERT_TRUE(spool_->Remove("LAZY", Spool::Durability::kLazy).ok());
  EXPECT_EQ(spool_->sync_count(), syncs);
  ASSERT_TRUE(spool_->Remove("EAGER").ok());
  EXPECT_EQ(spool_->sync_count(), syncs + 1);
  Open();
  EXPECT_TRUE(spool_->ListIds().value().empty());
  spool_.reset();
  EXPECT_TRUE(raw::ListRawKeys(dir_).value().empty());
}

// A spool written by format 1 (recipients in r/<id>/<n> records) is read,
// upgraded to one version-2 record by the first update, and removed whole.
TEST_F(RocksSpoolTest, Format1SpoolIsReadUpgradedAndRemoved) {
  Open();
  std::string content = ContentFor("OLDFMT", 3000);
  ASSERT_TRUE(Store(*spool_, MakeEnvelope("OLDFMT", 0), content).ok());
  ASSERT_TRUE(
      Store(*spool_, MakeEnvelope("OLDFMT2", 0), ContentFor("OLDFMT2")).ok());
  spool_.reset();
  // Rewrite both envelopes as format 1 with three r/ records each, as
  // petrel 0.1 (session 3) wrote them.
  for (const std::string id : {"OLDFMT", "OLDFMT2"}) {
    auto raw_env = raw::GetRaw(dir_, keys::Envelope(id));
    ASSERT_TRUE(raw_env);
    auto h = record::DecodeEnvelope(*raw_env);
    ASSERT_TRUE(h);
    Envelope e = MakeEnvelope(id, 3);
    e.content_octets = h->envelope.content_octets;
    ASSERT_TRUE(raw::PutRaw(dir_, keys::Envelope(id),
                            record::EncodeEnvelopeV1(e, h->chunk_count, 3))
                    .ok());
    for (std::uint32_t i = 0; i < 3; ++i) {
      ASSERT_TRUE(raw::PutRaw(dir_, keys::Recipient(id, i),
                              record::EncodeRecipient(e.recipients[i]))
                      .ok());
    }
  }
  Open();
  auto e = spool_->LoadEnvelope("OLDFMT");
  ASSERT_TRUE(e) << e.error().ToString();
  ASSERT_EQ(e->recipients.size(), 3u);
  EXPECT_EQ(e->recipients[2].address, "rcpt2@example.net");
  EXPECT_EQ(ReadAll(*spool_, "OLDFMT").value(), content);

  Recipient done = e->recipients[1];
  done.state = RecipientState::kDelivered;
  done.last_reply = "250 ok";
  ASSERT_TRUE(spool_->UpdateRecipients("OLDFMT", {{1, done}}).ok());
  spool_.reset();
  auto keys = KeysOf(*raw::ListRawKeys(dir_), "OLDFMT");
  for (const auto& k : keys) EXPECT_NE(k.rfind("r/", 0), 0u) << k;
  auto upgraded =
      record::DecodeEnvelope(*raw::GetRaw(dir_, keys::Envelope("OLDFMT")));
  ASSERT_TRUE(upgraded);
  EXPECT_EQ(upgraded->version, 2);
  Open();
  e = spool_->LoadEnvelope("OLDFMT");
  ASSERT_TRUE(e);
  ASSERT_EQ(e->recipients.size(), 3u);
  EXPECT_EQ(e->recipients[1].state, RecipientState::kDelivered);
  EXPECT_EQ(e->recipients[1].last_reply, "250 ok");
  EXPECT_EQ(e->recipients[2].state, RecipientState::kPending);

  // A damaged or missing r/ record of a format-1 envelope is Corruption.
  spool_.reset();
  ASSERT_TRUE(raw::PutRaw(dir_, keys::Recipient("OLDFMT2", 1), "garbage").ok());
  Open();
  auto bad = spool_->LoadEnvelope("OLDFMT2");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), Code::kCorruption);
  // Removing a format-1 message takes its r/ records along.
  ASSERT_TRUE(spool_->Remove("OLDFMT2").ok());
  ASSERT_TRUE(spool_->Remove("OLDFMT").ok());
  EXPECT_TRUE(spool_->ListIds().value().empty());
  spool_.reset();
  EXPECT_TRUE(raw::ListRawKeys(dir_).value().empty());
}

// --- kill -9 at unit level
// -----------------------------------------------------

constexpr char kCrashDirEnv[] = "PETREL_SPOOL_CRASH_DIR";
constexpr char kCrashFdEnv[] = "PETREL_SPOOL_CRASH_FD";
constexpr int kCrashAckTarget = 300;

// Runs only in the child started by KillDashNineKeepsEveryAcknowledged:
// commits from 8 threads, reports each acknowledged id on the pipe, and
// SIGKILLs itself while commits and partial messages are still in flight.
TEST(SpoolCrashChild, Run) {
  const char* dir = std::getenv(kCrashDirEnv);
  const char* fd_text = std::getenv(kCrashFdEnv);
  if (dir == nullptr || fd_text == nullptr) GTEST_SKIP() << "child only";
  const int fd = std::atoi(fd_text);
  SpoolOptions o;
  o.path = dir;
  o.chunk_octets = 4096;
  auto spool = Spool::Open(o);
  if (!spool) _exit(3);
  std::atomic<int> acked{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      std::vector<std::unique_ptr<MessageWriter>> partial;  // never committed
      for (int i = 0;; ++i) {
        std::string id = "K" + std::to_string(t) + "N" + std::to_string(i);
        std::string content = ContentFor(id);
        auto w = (*spool)->NewMessage(id);
        for (std::size_t at = 0; at < content.size(); at += 3000) {
          w->Append(content.substr(at, 3000), [](Status) {});
        }
        if (i % 5 == 4) {
          partial.push_back(std::move(w));
          continue;
        }
        auto done = std::make_shared<std::promise<void>>();
        auto acknowledged = done->get_future();
        w->Commit(MakeEnvelope(id, 2), [&acked, fd, id, done](Status s) {
          if (s.ok()) {
            std::string line = id + "\n";
            // One write() of < PIPE_BUF octets is atomic.
            if (write(fd, line.data(), line.size()) !=
                static_cast<ssize_t>(line.size())) {
              _exit(4);
            }
            ++acked;
          }
          done->set_value();
        });
        if (i % 2 == 0) acknowledged.wait();  // half pipelined
      }
    });
  }
  while (acked.load() < kCrashAckTarget) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  kill(getpid(), SIGKILL);
  for (;;) pause();
}

TEST(SpoolCrashTest, KillDashNineKeepsEveryAcknowledged) {
  std::string dir = MakeTempDir("crash");
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    setenv(kCrashDirEnv, dir.c_str(), 1);
    setenv(kCrashFdEnv, std::to_string(fds[1]).c_str(), 1);
    // A fresh process image: forking a process that runs RocksDB threads
    // and then using RocksDB in the child is not safe.
    execl("/proc/self/exe", "spool_test", "--gtest_filter=SpoolCrashChild.Run",
          static_cast<char*>(nullptr));
    _exit(2);
  }
  close(fds[1]);
  std::string text;
  char buf[4096];
  for (;;) {
    ssize_t n = read(fds[0], buf, sizeof buf);
    if (n <= 0) break;
    text.append(buf, static_cast<std::size_t>(n));
  }
  close(fds[0]);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status)) << "child exit " << WEXITSTATUS(status);
  EXPECT_EQ(WTERMSIG(status), SIGKILL);

  std::vector<std::string> acked;
  for (std::size_t at = 0; at < text.size();) {
    std::size_t nl = text.find('\n', at);
    ASSERT_NE(nl, std::string::npos) << "torn line in pipe";
    acked.push_back(text.substr(at, nl - at));
    at = nl + 1;
  }
  EXPECT_GE(acked.size(), std::size_t{kCrashAckTarget});

  SpoolOptions o;
  o.path = dir;
  o.chunk_octets = 4096;
  {
    auto spool = Spool::Open(o);
    ASSERT_TRUE(spool) << spool.error().ToString();
    auto ids = (*spool)->ListIds();
    ASSERT_TRUE(ids);
    std::set<std::string> listed(ids->begin(), ids->end());
    for (const std::string& id : acked) {
      ASSERT_TRUE(listed.count(id)) << "acknowledged " << id << " lost";
    }
    // Every message present (acknowledged or not yet) is complete.
    for (const std::string& id : *ids) {
      auto e = (*spool)->LoadEnvelope(id);
      ASSERT_TRUE(e) << id << ": " << e.error().ToString();
      EXPECT_EQ(e->recipients.size(), 2u);
      auto content = ReadAll(**spool, id);
      ASSERT_TRUE(content) << id << ": " << content.error().ToString();
      EXPECT_TRUE(*content == ContentFor(id)) << id;
    }
    std::printf("[ crash ] acknowledged=%zu present after restart=%zu\n",
                acked.size(), ids->size());
    spool->reset();
    // Recovery removed what was never committed.
    auto keys = raw::ListRawKeys(dir);
    ASSERT_TRUE(keys);
    for (const std::string& k : *keys) {
      ASSERT_NE(k.rfind("i/", 0), 0u) << k;
      std::string id = k.substr(2, k.find('/', 2) - 2);
      ASSERT_TRUE(listed.count(id)) << "leftover " << k;
    }
  }
  fs::remove_all(dir);
}

// --- disk full ---------------------------------------------------------------

class TmpfsMount {
 public:
  explicit TmpfsMount(const char* size) : dir_(MakeTempDir("tmpfs")) {
    std::string opts = std::string("size=") + size;
    mounted_ = mount("tmpfs", dir_.c_str(), "tmpfs", 0, opts.c_str()) == 0;
  }
  ~TmpfsMount() {
    if (mounted_) umount2(dir_.c_str(), MNT_DETACH);
    rmdir(dir_.c_str());
  }
  bool mounted() const { return mounted_; }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  bool mounted_ = false;
};

// Fills the file system holding `path` with a file; returns octets written.
std::size_t Fill(const std::string& path) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) return 0;
  std::string block(4096, 'F');
  std::size_t total = 0;
  for (;;) {
    ssize_t n = write(fd, block.data(), block.size());
    if (n <= 0) break;
    total += static_cast<std::size_t>(n);
  }
  fsync(fd);
  close(fd);
  return total;
}

// RocksDB resumes writes after ENOSPC only once a memtable's worth of space
// (16 MiB) is free again, and may have WAL space preallocated: hence a 48 MiB
// file system, and commits until the disk says no.
TEST(SpoolDiskFullTest, NoSpaceFailsCommitAndRecovers) {
  TmpfsMount mnt("48m");
  if (!mnt.mounted()) GTEST_SKIP() << "cannot mount tmpfs (not root?)";
  SpoolOptions o;
  o.path = mnt.dir() + "/spool";
  std::unique_ptr<Spool> spool;
  {
    auto s = Spool::Open(o);
    ASSERT_TRUE(s) << s.error().ToString();
    spool = std::move(*s);
  }
  ASSERT_TRUE(Store(*spool, MakeEnvelope("BEFORE"), "before\r\n").ok());
  const std::string filler = mnt.dir() + "/filler";
  ASSERT_GT(Fill(filler), 0u);

  const std::string big(1 << 20, 'n');
  std::vector<std::string> stored;  // acknowledged into preallocated space
  Status full;
  std::string failed_id;
  for (int i = 0; i < 100; ++i) {
    std::string id = "FULL" + std::to_string(i);
    full = Store(*spool, MakeEnvelope(id), big, 64 * 1024);
    if (!full.ok()) {
      failed_id = id;
      break;
    }
    stored.push_back(id);
  }
  ASSERT_FALSE(full.ok()) << "the disk never filled up";
  EXPECT_EQ(full.code(), Code::kNoSpace) << full.ToString();
  Status again = Store(*spool, MakeEnvelope("NOSPACE2"), big, 64 * 1024);
  EXPECT_EQ(again.code(), Code::kNoSpace) << again.ToString();
  auto ids = spool->ListIds();
  ASSERT_TRUE(ids);
  EXPECT_FALSE(Contains(*ids, failed_id));
  EXPECT_FALSE(Contains(*ids, "NOSPACE2"));
  EXPECT_EQ(spool->commit_count(), 1 + stored.size());

  // While the disk is full, queued mail can still be read.
  EXPECT_EQ(ReadAll(*spool, "BEFORE").value(), "before\r\n");

  // Space returns: the spool recovers by itself.
  auto commit_until_ok = [&](const std::string& prefix) {
    Status later;
    int attempt = 0;
    auto start = std::chrono::steady_clock::now();
    do {
      std::string id = prefix + std::to_string(attempt++);
      later = Store(*spool, MakeEnvelope(id), big, 64 * 1024);
      if (later.ok()) {
        stored.push_back(id);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    } while (std::chrono::steady_clock::now() - start <
             std::chrono::seconds(30));
    EXPECT_TRUE(later.ok()) << later.ToString();
    std::printf(
        "[ disk full ] %s: first commit after freeing space: "
        "attempt %d, %.1f s\n",
        prefix.c_str(), attempt,
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
            .count());
  };
  std::printf("[ disk full ] %zu commits fit after the filler\n",
              stored.size());
  ASSERT_EQ(unlink(filler.c_str()), 0);
  commit_until_ok("AFTER");

  // Again, and this time nothing writes for longer than RocksDB's own 5 s
  // free-space poll: only our writer may recover.
  ASSERT_GT(Fill(filler), 0u);
  Status full3;
  for (int i = 0; i < 100 && full3.ok(); ++i) {
    std::string id = "REFULL" + std::to_string(i);
    full3 = Store(*spool, MakeEnvelope(id), big, 64 * 1024);
    if (full3.ok()) {
      stored.push_back(id);
    } else {
      EXPECT_EQ(full3.code(), Code::kNoSpace) << full3.ToString();
    }
  }
  ASSERT_FALSE(full3.ok());
  ASSERT_EQ(unlink(filler.c_str()), 0);
  std::this_thread::sleep_for(std::chrono::seconds(6));
  commit_until_ok("LATER");
  EXPECT_EQ(ReadAll(*spool, "BEFORE").value(), "before\r\n");
  EXPECT_TRUE(ReadAll(*spool, stored.back()).value() == big);

  // After a clean restart every acknowledged message is there and nothing
  // of the failed ones remains.
  spool.reset();
  auto keys = raw::ListRawKeys(o.path);
  ASSERT_TRUE(keys) << keys.error().ToString();
  EXPECT_TRUE(KeysOf(*keys, failed_id).empty());
  EXPECT_TRUE(KeysOf(*keys, "NOSPACE2").empty());
  auto reopened = Spool::Open(o);
  ASSERT_TRUE(reopened) << reopened.error().ToString();
  auto listed = (*reopened)->ListIds().value();
  EXPECT_TRUE(Contains(listed, "BEFORE"));
  EXPECT_EQ(listed.size(), 1 + stored.size());
  for (const auto& id : stored) {
    EXPECT_TRUE(ReadAll(**reopened, id).value() == big) << id;
  }
  EXPECT_FALSE(Contains(listed, failed_id));
}

}  // namespace
}  // namespace petrel::spool
