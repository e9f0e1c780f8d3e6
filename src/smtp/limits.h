// The size limits and minimums of RFC 5321 section 4.5.3.1, in one place.
//
// Every count includes what the RFC says it includes (a command line counts
// its CRLF; a path counts its angle brackets). Server and client both read
// these; config may raise (never lower) the ones marked "minimum".
#pragma once

#include <cstddef>

namespace petrel::smtp {

// 4.5.3.1.1: local-part, in octets.
inline constexpr std::size_t kMaxLocalPartOctets = 64;
// 4.5.3.1.2: domain name or address literal, in octets.
inline constexpr std::size_t kMaxDomainOctets = 255;
// 4.5.3.1.3: reverse-path or forward-path including "<" and ">".
inline constexpr std::size_t kMaxPathOctets = 256;
// 4.5.3.1.4: command line including the command word and CRLF.
inline constexpr std::size_t kMaxCommandLineOctets = 512;
// 4.5.3.1.5: reply line including the code and CRLF.
inline constexpr std::size_t kMaxReplyLineOctets = 512;
// 4.5.3.1.6: text line including CRLF, not counting a stuffed dot. A minimum:
// petrel accepts longer lines up to the message size limit.
inline constexpr std::size_t kMaxTextLineOctets = 1000;
// 4.5.3.1.7: message content a server must accept at least.
inline constexpr std::size_t kMinMessageOctets = 64 * 1024;
// 4.5.3.1.8: recipients a server must buffer at least per transaction.
inline constexpr std::size_t kMinRecipients = 100;

// Not RFC limits: petrel's own safety caps on what a peer may send.
// A reply line from a peer longer than this is malformed (RFC says 512; we
// tolerate up to this for broken peers, seed 002).
inline constexpr std::size_t kReplyLineSafetyCapOctets = 4096;
// Lines in one multiline reply.
inline constexpr std::size_t kMaxReplyLines = 200;

}  // namespace petrel::smtp
