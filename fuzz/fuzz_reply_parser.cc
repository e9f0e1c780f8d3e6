// Fuzzes ReplyParser: the same replies (and error) whatever the split, and
// every reply it returns formats back to itself.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/check.h"
#include "fuzz/fuzz_util.h"
#include "smtp/limits.h"
#include "smtp/reply_parser.h"
#include "smtp/utf8.h"

namespace petrel::smtp {
namespace {

struct Outcome {
  std::vector<Reply> replies;
  std::optional<ReplyError> error;
  std::size_t buffered = 0;
};

bool Same(const Reply& a, const Reply& b) {
  return a.code == b.code && a.status == b.status && a.lines == b.lines;
}

bool Same(const Outcome& a, const Outcome& b) {
  if (a.replies.size() != b.replies.size() || a.error != b.error ||
      a.buffered != b.buffered) {
    return false;
  }
  for (std::size_t i = 0; i < a.replies.size(); ++i) {
    if (!Same(a.replies[i], b.replies[i])) return false;
  }
  return true;
}

Outcome Run(const std::vector<std::string_view>& pieces, std::size_t max_line,
            std::size_t max_lines) {
  ReplyParser parser(max_line, max_lines);
  Outcome out;
  for (std::string_view piece : pieces) {
    parser.Feed(piece);
    while (!out.error) {
      auto next = parser.Next();
      if (!next) {
        out.error = next.error();
        CHECK(!ReplyErrorName(next.error()).empty());
        break;
      }
      if (!*next) break;
      CHECK(!(*next)->lines.empty() && (*next)->lines.size() <= max_lines);
      out.replies.push_back(std::move(**next));
    }
    // Drained, what stays is one partial reply and one partial line.
    CHECK(parser.Buffered() <= max_line * (max_lines + 1));
  }
  out.buffered = parser.Buffered();
  return out;
}

// Format() CHECKs lines of at most 512 octets without CR or LF: only such
// replies can go back on the wire.
bool Formattable(const Reply& r) {
  const std::size_t status = r.status ? r.status->ToString().size() + 1 : 0;
  for (const std::string& line : r.lines) {
    if (line.find_first_of("\r\n") != std::string::npos) return false;
    if (4 + status + line.size() + 2 > kMaxReplyLineOctets) {
      return false;
    }
  }
  return true;
}

void CheckReply(const Reply& r) {
  CHECK(r.code >= 200 && r.code <= 599);
  if (r.status) CHECK(r.status->klass == r.code / 100);
  const std::string text = r.Text();
  CHECK(text.size() <= 1000);
  CHECK(IsValidUtf8(text));
  for (char c : text) CHECK(static_cast<unsigned char>(c) >= 0x20 && c != 0x7F);
  if (!Formattable(r)) return;
  const std::string wire = r.Format();
  ReplyParser again;
  again.Feed(wire);
  auto back = again.Next();
  CHECK(back.has_value() && back->has_value());
  CHECK(Same(**back, r));
  CHECK(again.Buffered() == 0);
}

void FuzzOne(std::string_view input) {
  const std::size_t size = input.size();
  // Default caps, and small ones so that the limits are reached often.
  const std::size_t caps[][2] = {{kReplyLineSafetyCapOctets, kMaxReplyLines},
                                 {16, 3}};
  for (const auto& cap : caps) {
    const Outcome whole = Run({input}, cap[0], cap[1]);
    CHECK(Same(whole, Run(petrel::fuzz::Split(input), cap[0], cap[1])));
    if (size <= 512) {
      CHECK(Same(whole, Run(petrel::fuzz::Bytes(input), cap[0], cap[1])));
    }
    for (const Reply& r : whole.replies) CheckReply(r);
  }
}

}  // namespace
}  // namespace petrel::smtp

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data,
                                      std::size_t size) {
  petrel::smtp::FuzzOne(
      std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
