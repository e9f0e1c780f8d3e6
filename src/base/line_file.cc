#include "base/line_file.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "base/strings.h"

namespace petrel {

std::string ParseLines(std::string_view text, const std::string& path,
                       const std::function<void(std::string_view line,
                                                const LineFail& fail)>& each) {
  std::string errors;
  int line_no = 0;
  const LineFail fail = [&](std::string_view why) {
    errors += fmt::format("{}{}:{}: {}", errors.empty() ? "" : "\n", path,
                          line_no, why);
  };
  while (!text.empty()) {
    ++line_no;
    const std::size_t nl = text.find('\n');
    std::string_view line = TrimBlanks(text.substr(0, nl));
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (line.empty() || line.front() == '#') continue;
    each(line, fail);
  }
  return errors;
}

Result<std::string> ReadLineFile(const std::string& path,
                                 std::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Error(Status::NotFound(fmt::format("{}: cannot read {}: {}", path,
                                              what, std::strerror(errno))));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace petrel
