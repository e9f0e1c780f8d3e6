// Fuzzes the DSN builder (src/delivery/dsn.h) with hostile envelope fields,
// peer reply text and content. The input is NUL-separated fields: flags,
// sender, ENVID, content, then five per recipient (final recipient, ORCPT
// type, ORCPT address, remote MTA, diagnostic). Invariants, from dsn.h: the
// message is CRLF-only with every line at most 998 octets; the header
// section has no control character but HT; in the body the boundary
// delimiter occurs only as the three part delimiters and the close; the
// message/delivery-status part is 7-bit, has no control character but HT, and
// one Final-Recipient per recipient.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "base/check.h"
#include "delivery/dsn.h"

namespace {

using petrel::delivery::DsnAction;
using petrel::delivery::DsnRecipientReport;
using petrel::delivery::DsnRequest;

std::vector<std::string_view> Fields(std::string_view input) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  for (;;) {
    const std::size_t nul = input.find('\0', start);
    if (nul == std::string_view::npos) {
      out.push_back(input.substr(start));
      return out;
    }
    out.push_back(input.substr(start, nul - start));
    start = nul + 1;
  }
}

std::size_t Count(std::string_view hay, std::string_view needle) {
  std::size_t n = 0;
  for (std::size_t p = hay.find(needle); p != std::string_view::npos;
       p = hay.find(needle, p + 1)) {
    ++n;
  }
  return n;
}

bool IsControl(unsigned char c) { return (c < 0x20 && c != '\t') || c == 0x7f; }

// The text between `<prefix>` and the next quote in `header`.
std::string_view Parameter(std::string_view header, std::string_view prefix) {
  const std::size_t p = header.find(prefix);
  CHECK(p != std::string_view::npos);
  const std::size_t start = p + prefix.size();
  const std::size_t end = header.find('"', start);
  CHECK(end != std::string_view::npos);
  return header.substr(start, end - start);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data,
                                      std::size_t size) {
  const std::vector<std::string_view> f =
      Fields({reinterpret_cast<const char*>(data), size});
  auto field = [&f](std::size_t i) {
    return i < f.size() ? f[i] : std::string_view();
  };
  const std::string_view flags = field(0);
  auto flag = [&flags](std::size_t i) -> std::uint8_t {
    return i < flags.size() ? static_cast<std::uint8_t>(flags[i]) : 0;
  };

  DsnRequest r;
  r.reporting_mta = "mx.example.test";
  r.queue_id = "4Zx9q1aB2c";
  r.sender = std::string(field(1));
  if (r.sender.empty()) r.sender = "a@example.net";  // BuildDsn's contract
  r.smtputf8 = flag(0) & 1;
  r.ret = static_cast<petrel::smtp::DsnRet>(flag(1) % 3);
  r.envid = std::string(field(2));
  r.arrival_unix = flag(2) * 1000003;
  r.content = field(3);
  r.now_unix = 1795000000;
  const DsnAction action = static_cast<DsnAction>(flag(3) % 5);
  for (std::size_t i = 4; i < f.size() || r.recipients.empty(); i += 5) {
    DsnRecipientReport rcpt;
    rcpt.final_recipient = std::string(field(i));
    rcpt.original_type = std::string(field(i + 1));
    rcpt.original_address = std::string(field(i + 2));
    rcpt.remote_mta = std::string(field(i + 3));
    rcpt.diagnostic_code = std::string(field(i + 4));
    rcpt.action = action;
    rcpt.status = {action == DsnAction::kDelayed ? 4 : 5, flag(4) % 8,
                   flag(5) % 10};
    rcpt.last_attempt_unix = flag(6) ? 1795000000 : 0;
    rcpt.will_retry_until_unix = flag(7) ? 1795400000 : 0;
    r.recipients.push_back(std::move(rcpt));
    if (r.recipients.size() == 50) break;
  }

  const petrel::delivery::Dsn dsn = petrel::delivery::BuildDsn(r);
  const std::string_view m = dsn.message;
  if (std::getenv("PETREL_FUZZ_DUMP") != nullptr) {  // for a look at a crash
    std::fwrite(m.data(), 1, m.size(), stderr);
  }

  // CRLF only, lines of at most 998 octets.
  std::size_t line_start = 0;
  for (std::size_t i = 0; i < m.size(); ++i) {
    if (m[i] == '\r') CHECK(i + 1 < m.size() && m[i + 1] == '\n');
    if (m[i] == '\n') {
      CHECK(i > 0 && m[i - 1] == '\r');
      CHECK(i - 1 - line_start <= 998);
      line_start = i + 1;
    }
  }
  CHECK(line_start == m.size());  // ends with CRLF

  // The header section: no control characters.
  const std::size_t header_end = m.find("\r\n\r\n");
  CHECK(header_end != std::string_view::npos);
  const std::string_view header = m.substr(0, header_end + 2);
  for (std::size_t i = 0; i < header.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(header[i]);
    if (c == '\r' || c == '\n') continue;
    CHECK(!IsControl(c));
  }
  CHECK(header.find("\r\nMessage-ID: " + dsn.message_id) !=
        std::string_view::npos);

  // The boundary: in its parameter, three part delimiters and the close.
  const std::string boundary(Parameter(header, "boundary=\""));
  CHECK(!boundary.empty());
  const std::string delimiter = "\r\n--" + boundary;
  // (The header section may hold it, in a sender's address: no delimiter
  // line can start there, and MIME parsers look only in the body.)
  CHECK(Count(m.substr(header_end), "--" + boundary) == 4);
  CHECK(Count(m, delimiter + "\r\n") == 3);
  CHECK(m.ends_with(delimiter + "--\r\n"));

  // The message/delivery-status part: 7-bit, no controls, one
  // Final-Recipient per recipient.
  // Found by its delimiter: the text part may hold the same words.
  const std::size_t ds = m.find(delimiter +
                                "\r\nContent-Description: Delivery report\r\n"
                                "Content-Type: message/delivery-status\r\n");
  CHECK(ds != std::string_view::npos);
  const std::size_t ds_end = m.find(delimiter, ds + delimiter.size());
  CHECK(ds_end != std::string_view::npos);
  const std::string_view status = m.substr(ds, ds_end - ds);
  for (unsigned char c : status) {
    CHECK(c < 0x80);
    if (c != '\r' && c != '\n') CHECK(!IsControl(c));
  }
  CHECK(Count(status, "\r\nFinal-Recipient: ") == r.recipients.size());
  CHECK(Count(status, "\r\nAction: ") == r.recipients.size());
  return 0;
}
