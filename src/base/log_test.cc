#include "base/log.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

namespace petrel::log {
namespace {

// Sends fd 2 to a temporary file for the life of the object.
class CaptureStderr {
 public:
  CaptureStderr() {
    char name[] = "/tmp/petrel-log-test-XXXXXX";
    fd_ = ::mkstemp(name);
    path_ = name;
    saved_ = ::dup(STDERR_FILENO);
    ::dup2(fd_, STDERR_FILENO);
  }
  ~CaptureStderr() {
    ::dup2(saved_, STDERR_FILENO);
    ::close(saved_);
    ::close(fd_);
    ::unlink(path_.c_str());
  }
  std::string Text() const {
    std::ifstream in(path_);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

 private:
  int fd_ = -1;
  int saved_ = -1;
  std::string path_;
};

TEST(LogTest, LinesAreWrittenAtOnceWithPidAndLevel) {
  CaptureStderr capture;
  Init("info");
  Info("{}: to=<{}>, status=sent", "ID1", "a@example.net");
  Debug("not shown at info");
  const std::string text = capture.Text();
  EXPECT_NE(text.find("petrel[" + std::to_string(::getpid()) +
                      "]: info: ID1: to=<a@example.net>, status=sent\n"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find("not shown"), std::string::npos);
}

TEST(LogTest, BatchWritesItsLinesTogetherInOrder) {
  CaptureStderr capture;
  Init("info");
  {
    Batch batch;
    Info("line {}", 1);
    {
      Batch inner;  // nested: only the outermost one writes
      Info("line {}", 2);
    }
    EXPECT_EQ(capture.Text(), "");  // held until the batch ends
    Warning("line {}", 3);          // a warning goes out at once, in order
    const std::string after_warning = capture.Text();
    EXPECT_LT(after_warning.find("line 1"), after_warning.find("line 2"));
    EXPECT_LT(after_warning.find("line 2"), after_warning.find("line 3"));
    Info("line {}", 4);
    EXPECT_EQ(capture.Text().find("line 4"), std::string::npos);
  }
  const std::string text = capture.Text();
  EXPECT_NE(text.find("line 4\n"), std::string::npos) << text;
  EXPECT_LT(text.find("line 3"), text.find("line 4"));
}

}  // namespace
}  // namespace petrel::log
