#include "base/queue_id.h"

#include <gtest/gtest.h>

#include <set>

namespace petrel {
namespace {

TEST(QueueId, UniqueAndValid) {
  std::set<std::string> seen;
  for (int i = 0; i < 10000; ++i) {
    auto id = NewQueueId();
    EXPECT_TRUE(IsValidQueueId(id)) << id;
    EXPECT_TRUE(seen.insert(id).second) << id;
  }
}

TEST(QueueId, RejectsOthers) {
  EXPECT_FALSE(IsValidQueueId(""));
  EXPECT_FALSE(IsValidQueueId("0123456789ABCDEI"));
  EXPECT_FALSE(IsValidQueueId("../../etc/passwd"));
}

}  // namespace
}  // namespace petrel
