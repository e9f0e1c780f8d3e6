// Raw access to a RocksDB spool directory, for tests only (corruption and
// recovery tests need to see and damage records without including RocksDB).
// REQUIRES: no Spool is open on `path`. Implemented in rocksdb_spool.cc.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace petrel::spool::raw {

// Every key in the database, in order.
Result<std::vector<std::string>> ListRawKeys(const std::string& path);
Result<std::string> GetRaw(const std::string& path, std::string_view key);
Status PutRaw(const std::string& path, std::string_view key,
              std::string_view value);

}  // namespace petrel::spool::raw
