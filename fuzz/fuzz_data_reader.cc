// Fuzzes DataReader against a strict reference written here the obvious way:
// the data ends at the first CRLF "." CRLF (or "." CRLF as the first line),
// the content is what precedes it with the leading dot of each
// CRLF-delimited line removed. Also checks split invariance, the size
// limit, and HeaderScanner and BareNewlineScanner on the content.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "base/check.h"
#include "fuzz/fuzz_util.h"
#include "smtp/data_reader.h"
#include "smtp/data_reference.h"
#include "smtp/header_scanner.h"

namespace petrel::smtp {
namespace {

using Reference = DataReference;
constexpr auto Strict = StrictDataReference;

struct Outcome {
  bool done = false;
  std::size_t consumed = 0;
  std::string content;
  std::uint64_t octets = 0;
  bool too_big = false;
  bool bare = false;
  std::size_t longest = 0;
  bool operator==(const Outcome&) const = default;
};

Outcome Run(const std::vector<std::string_view>& pieces, std::uint64_t max) {
  DataReader reader(max);
  Outcome out;
  for (std::string_view piece : pieces) {
    const std::size_t n = reader.Feed(piece);
    CHECK(n <= piece.size());
    CHECK(reader.done() || n == piece.size());
    out.consumed += n;
    out.content += reader.TakeContent();
    CHECK(reader.pending_content() == 0);
    CHECK(out.content.size() <= max);
    if (reader.done()) break;
  }
  out.done = reader.done();
  out.octets = reader.content_octets();
  out.too_big = reader.too_big();
  out.bare = reader.bare_newline();
  out.longest = reader.longest_line();
  return out;
}

struct Headers {
  bool in_header;
  int received;
  std::size_t octets, lines;
  bool operator==(const Headers&) const = default;
};

Headers Scan(const std::vector<std::string_view>& pieces) {
  HeaderScanner scanner;
  for (std::string_view piece : pieces) scanner.Feed(piece);
  CHECK(scanner.header_octets() <= 1u << 30);
  return {scanner.in_header(), scanner.received_count(),
          scanner.header_octets(), scanner.header_lines()};
}

void FuzzOne(std::string_view input) {
  const std::size_t size = input.size();
  constexpr std::uint64_t kNoLimit = std::numeric_limits<std::uint64_t>::max();
  const Reference ref = Strict(input);
  const Outcome whole = Run({input}, kNoLimit);
  CHECK(whole.done == ref.done);
  CHECK(whole.consumed == ref.consumed);
  if (ref.done) {
    CHECK(whole.content == ref.content);
    CHECK(whole.octets == ref.content.size());
    CHECK(!whole.too_big);
    // Bare CR/LF as an independent scanner sees them in the content.
    BareNewlineScanner scanner;
    scanner.Feed(whole.content);
    scanner.Finish();
    CHECK(scanner.bare_newline() == whole.bare);
    CHECK(whole.longest <= whole.content.size());
  }
  CHECK(Run(petrel::fuzz::Split(input), kNoLimit) == whole);
  if (size <= 1024) CHECK(Run(petrel::fuzz::Bytes(input), kNoLimit) == whole);

  // A size limit drops the excess only: same end, a prefix of the content.
  const std::uint64_t max =
      size == 0 ? 0 : static_cast<unsigned char>(input[0]) % 64;
  const Outcome limited = Run(petrel::fuzz::Split(input), max);
  CHECK(limited.done == whole.done && limited.consumed == whole.consumed);
  CHECK(limited.octets == whole.octets);
  CHECK(limited.too_big == (whole.octets > max));
  CHECK(whole.content.compare(0, limited.content.size(), limited.content) == 0);
  CHECK(limited.content.size() == std::min<std::uint64_t>(whole.octets, max));

  // The header scanner sees the same whatever the split.
  const Headers headers = Scan({whole.content});
  CHECK(headers.octets <= whole.content.size());
  CHECK(Scan(petrel::fuzz::Split(whole.content)) == headers);
  if (whole.content.size() <= 1024) {
    CHECK(Scan(petrel::fuzz::Bytes(whole.content)) == headers);
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
