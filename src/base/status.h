// Status and Result<T>: how petrel reports failures that are not our bugs.
//
// A Status is ok or carries a code and a message for the operator. Result<T>
// is a value or a Status (tl::expected). Both are [[nodiscard]]: a dropped
// failure is a compile error. Thread safety: values, no shared state.
// Our own bugs use CHECK (check.h), never Status.
#pragma once

#include <string>
#include <string_view>
#include <tl/expected.hpp>
#include <utility>

namespace petrel {

class [[nodiscard]] Status {
 public:
  enum class Code {
    kOk,
    kInvalidArgument,  // bad input: config, command line, request
    kNotFound,
    kIoError,      // a read/write/fsync failed
    kNoSpace,      // ENOSPC or a quota: transient, retry when space returns
    kCorruption,   // stored data is not what we wrote
    kUnavailable,  // try again later (shutting down, peer unreachable)
    kInternal,
  };

  Status() = default;  // ok
  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string m) {
    return {Code::kInvalidArgument, std::move(m)};
  }
  static Status NotFound(std::string m) {
    return {Code::kNotFound, std::move(m)};
  }
  static Status IoError(std::string m) {
    return {Code::kIoError, std::move(m)};
  }
  static Status NoSpace(std::string m) {
    return {Code::kNoSpace, std::move(m)};
  }
  static Status Corruption(std::string m) {
    return {Code::kCorruption, std::move(m)};
  }
  static Status Unavailable(std::string m) {
    return {Code::kUnavailable, std::move(m)};
  }
  static Status Internal(std::string m) {
    return {Code::kInternal, std::move(m)};
  }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string ToString() const;

 private:
  Status(Code c, std::string m) : code_(c), message_(std::move(m)) {}
  Code code_ = Code::kOk;
  std::string message_;
};

std::string_view CodeName(Status::Code code);

template <class T>
using Result = tl::expected<T, Status>;

// Makes the error side of a Result: `return Error(Status::IoError("..."));`
inline tl::unexpected<Status> Error(Status s) {
  return tl::unexpected<Status>(std::move(s));
}

}  // namespace petrel
