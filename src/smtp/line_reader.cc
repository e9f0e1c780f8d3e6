#include "smtp/line_reader.h"

#include <utility>

namespace petrel::smtp {

std::size_t LineReader::Feed(std::string_view bytes) {
  // One line at a time: the caller takes it before feeding more, so that it
  // can switch to message data right after DATA or BDAT.
  if (ready_) return 0;
  const std::size_t lf = bytes.find('\n');
  const bool complete = lf != std::string_view::npos;
  const std::size_t consumed = complete ? lf + 1 : bytes.size();

  if (discarding_) {
    if (complete) {
      discarding_ = false;
      ready_.emplace(CommandLine{CommandLine::Kind::kTooLong, {}});
    }
    return consumed;
  }
  // Octets of the line so far, counting its line end once it has arrived.
  const std::size_t octets = partial_.size() + consumed;
  if (complete) {
    if (octets > max_line_octets_) {
      partial_.clear();
      ready_.emplace(CommandLine{CommandLine::Kind::kTooLong, {}});
      return consumed;
    }
    partial_.append(bytes.substr(0, lf));
    if (!partial_.empty() && partial_.back() == '\r') partial_.pop_back();
    ready_.emplace(CommandLine{CommandLine::Kind::kLine, std::move(partial_)});
    partial_.clear();
    return consumed;
  }
  // Without its line end yet: at max_line_octets_ octets the line is too
  // long whatever ends it, so stop keeping it (memory stays bounded).
  if (octets >= max_line_octets_) {
    partial_.clear();
    discarding_ = true;
    return consumed;
  }
  partial_.append(bytes);
  return consumed;
}

std::optional<CommandLine> LineReader::Take() {
  std::optional<CommandLine> line = std::move(ready_);
  ready_.reset();
  return line;
}

}  // namespace petrel::smtp
