#include "smtp/reply_parser.h"

#include <utility>

namespace petrel::smtp {

std::string_view ReplyErrorName(ReplyError e) {
  switch (e) {
    case ReplyError::kMalformed:
      return "malformed reply";
    case ReplyError::kInconsistentCode:
      return "inconsistent reply code in multiline reply";
    case ReplyError::kLineTooLong:
      return "reply line too long";
    case ReplyError::kTooManyLines:
      return "too many lines in reply";
  }
  return "unknown reply error";
}

ReplyParser::ReplyParser(std::size_t max_line_octets, std::size_t max_lines)
    : max_line_octets_(max_line_octets), max_lines_(max_lines) {}

void ReplyParser::Feed(std::string_view bytes) {
  if (error_) return;  // final: nothing more will be parsed
  // Drop the replies already returned. Done here, once a Feed(), rather than
  // once a reply, so that many small replies cost linear time.
  if (start_ > 0) {
    buffer_.erase(0, start_);
    scan_ -= start_;
    start_ = 0;
  }
  // Complete lines are kept whole (Next() judges them); of the unterminated
  // tail we keep at most max_line_octets_ octets: that many without a line
  // end is already too long, so the rest would never be looked at.
  const std::size_t last_lf = bytes.rfind('\n');
  if (last_lf != std::string_view::npos) {
    buffer_.append(bytes.substr(0, last_lf + 1));
    tail_octets_ = 0;
    bytes.remove_prefix(last_lf + 1);
  }
  const std::size_t room =
      tail_octets_ >= max_line_octets_ ? 0 : max_line_octets_ - tail_octets_;
  const std::string_view kept = bytes.substr(0, room);
  buffer_.append(kept);
  tail_octets_ += kept.size();
}

tl::expected<std::optional<Reply>, ReplyError> ReplyParser::Next() {
  if (error_) return tl::unexpected(*error_);
  auto fail = [this](ReplyError e) {
    error_ = e;
    // Release the memory: nothing buffered will be used again.
    std::string().swap(buffer_);
    partial_.reset();
    start_ = 0;
    scan_ = 0;
    tail_octets_ = 0;
    return tl::unexpected(e);
  };
  while (true) {
    const std::size_t lf = buffer_.find('\n', scan_);
    if (lf == std::string::npos) {
      // A line of max_line_octets_ octets without its LF can only get longer.
      if (buffer_.size() > scan_ &&
          buffer_.size() - scan_ >= max_line_octets_) {
        return fail(ReplyError::kLineTooLong);
      }
      return std::nullopt;
    }
    // Line length counts its line end, as RFC 5321 4.5.3.1.5 does.
    if (lf + 1 - scan_ > max_line_octets_) {
      return fail(ReplyError::kLineTooLong);
    }
    std::string_view line(buffer_.data() + scan_, lf - scan_);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    scan_ = lf + 1;

    // Reply-line = *( Reply-code "-" [ textstring ] CRLF )
    //              Reply-code [ SP textstring ] CRLF   (RFC 5321 4.2)
    if (line.size() < 3) return fail(ReplyError::kMalformed);
    int code = 0;
    for (std::size_t i = 0; i < 3; ++i) {
      if (line[i] < '0' || line[i] > '9') return fail(ReplyError::kMalformed);
      code = code * 10 + (line[i] - '0');
    }
    if (code < 200 || code > 599) return fail(ReplyError::kMalformed);
    bool more = false;
    if (line.size() > 3) {
      if (line[3] == '-') {
        more = true;
      } else if (line[3] != ' ') {
        return fail(ReplyError::kMalformed);
      }
    }
    std::string_view text = line.size() > 3 ? line.substr(4) : line.substr(3);

    if (!partial_) {
      partial_.emplace();
      partial_->code = code;
      // The enhanced status counts only if its class agrees with the code
      // (RFC 3463 section 2, RFC 2034 section 4).
      std::string_view rest;
      std::optional<EnhancedStatus> status = SplitEnhancedStatus(text, rest);
      if (status && status->klass == code / 100) {
        partial_->status = status;
        text = rest;
      }
    } else {
      if (code != partial_->code) return fail(ReplyError::kInconsistentCode);
      if (partial_->status) {
        std::string_view rest;
        if (SplitEnhancedStatus(text, rest) == partial_->status) text = rest;
      }
    }
    if (partial_->lines.size() >= max_lines_) {
      return fail(ReplyError::kTooManyLines);
    }
    partial_->lines.emplace_back(text);
    if (more) continue;

    Reply reply = std::move(*partial_);
    partial_.reset();
    start_ = scan_;
    return reply;
  }
}

void ReplyParser::Reset() {
  buffer_.clear();
  partial_.reset();
  error_.reset();
  start_ = 0;
  scan_ = 0;
  tail_octets_ = 0;
}

}  // namespace petrel::smtp
