// Fuzzes the command side: LineReader over the stream (any split), then
// ParseCommand and every argument parser on each line. Every refusal must
// be a reply we can send (Format() CHECKs its own limits), and what is
// accepted must respect the RFC 5321 limits.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/check.h"
#include "fuzz/fuzz_util.h"
#include "smtp/command.h"
#include "smtp/limits.h"
#include "smtp/line_reader.h"
#include "smtp/params.h"

namespace petrel::smtp {
namespace {

template <class T>
void CheckRefusal(const tl::expected<T, Reply>& result) {
  if (result) return;
  const Reply& r = result.error();
  CHECK(r.code >= 500 && r.code <= 599);
  CHECK(r.status.has_value() && r.status->klass == 5);
  CHECK(!r.Format().empty());
}

void CheckMailbox(const Mailbox& m, bool utf8) {
  CHECK(m.local_part.size() <= kMaxLocalPartOctets);
  CHECK(m.domain.size() <= kMaxDomainOctets);
  CHECK(m.local_part.size() + m.domain.size() + 3 <= kMaxPathOctets);
  if (!utf8) CHECK(!m.NeedsSmtpUtf8());
}

void ParseArguments(std::string_view arg) {
  OfferedExtensions all;
  OfferedExtensions helo;
  helo.esmtp = false;
  OfferedExtensions limited;
  limited.max_message_size = 1000;
  limited.smtputf8 = false;
  for (const OfferedExtensions* offered : {&all, &helo, &limited}) {
    auto mail = ParseMailArgument(arg, *offered);
    CheckRefusal(mail);
    if (mail) {
      if (!offered->esmtp) {
        CHECK(!mail->params.size && !mail->params.smtputf8);
      }
      if (mail->reverse_path) {
        CheckMailbox(*mail->reverse_path, mail->params.smtputf8);
      }
      if (offered->max_message_size != 0 && mail->params.size) {
        CHECK(*mail->params.size <= offered->max_message_size);
      }
      CHECK(mail->params.envid.size() <= 100);
    }
    for (bool utf8 : {false, true}) {
      auto rcpt = ParseRcptArgument(arg, *offered, utf8);
      CheckRefusal(rcpt);
      if (rcpt) {
        const Mailbox& m = rcpt->forward_path;
        if (m.domain.empty()) {
          CHECK(m.local_part.size() == 10);  // Postmaster
        } else {
          CheckMailbox(m, utf8);
        }
        const std::uint8_t notify = rcpt->params.notify;
        CHECK(notify == kNotifyNever || (notify & kNotifyNever) == 0);
        for (char c : rcpt->params.orcpt_address) {
          CHECK(static_cast<unsigned char>(c) >= 0x20 && c != 0x7F);
        }
      }
    }
  }
  auto bdat = ParseBdatArgument(arg);
  CheckRefusal(bdat);
  if (bdat) CHECK(bdat->size <= 9999999999999999999u);
  auto helo_arg = ParseHeloArgument(arg);
  CheckRefusal(helo_arg);
  if (helo_arg) CHECK(*helo_arg == arg);
  auto decoded = DecodeXtext(arg);
  if (decoded) CHECK(DecodeXtext(EncodeXtext(*decoded)) == *decoded);
}

void ParseLine(std::string_view line) {
  auto command = ParseCommand(line);
  CheckRefusal(command);
  if (command) {
    for (char c : line) {
      const auto u = static_cast<unsigned char>(c);
      CHECK(u >= 0x20 || c == '\t');
      CHECK(u != 0x7F);
    }
    CHECK(!VerbName(command->verb).empty());
    CHECK(command->argument.size() <= line.size());
  }
  // The argument parsers take the argument; lines that are not commands
  // still make good junk for them.
  ParseArguments(command ? std::string_view(command->argument) : line);
}

std::vector<std::string> Lines(const std::vector<std::string_view>& pieces,
                               std::size_t max_line) {
  LineReader reader(max_line);
  std::vector<std::string> lines;
  for (std::string_view piece : pieces) {
    while (!piece.empty()) {
      const std::size_t n = reader.Feed(piece);
      CHECK(n > 0 && n <= piece.size());
      piece.remove_prefix(n);
      if (auto line = reader.Take()) {
        if (line->kind == CommandLine::Kind::kTooLong) {
          CHECK(line->text.empty());
          lines.push_back("<too long>");
        } else {
          CHECK(line->text.size() < max_line);
          CHECK(line->text.find('\n') == std::string::npos);
          lines.push_back("[" + line->text);
        }
      }
    }
  }
  lines.push_back(reader.HasPartialLine() ? "partial" : "clean");
  return lines;
}

void FuzzOne(std::string_view input) {
  const std::size_t size = input.size();
  for (std::size_t max_line : {kMaxCommandLineOctets, std::size_t{24}}) {
    const std::vector<std::string> lines = Lines({input}, max_line);
    CHECK(lines == Lines(petrel::fuzz::Split(input), max_line));
    if (size <= 512)
      CHECK(lines == Lines(petrel::fuzz::Bytes(input), max_line));
    if (max_line != kMaxCommandLineOctets) continue;
    for (const std::string& line : lines) {
      if (!line.empty() && line[0] == '[')
        ParseLine(std::string_view(line).substr(1));
    }
  }
  // The whole input as one line too: it need not contain a line end.
  if (size <= 4 * kMaxCommandLineOctets) ParseLine(input);
}

}  // namespace
}  // namespace petrel::smtp

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data,
                                      std::size_t size) {
  petrel::smtp::FuzzOne(
      std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
