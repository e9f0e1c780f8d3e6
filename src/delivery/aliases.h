// The aliases file of [local] aliases, and alias expansion for local
// domains (the subset of Postfix's aliases(5) that petrel delivers).
//
// Format: "name: target, target, ..." one alias a logical line; a line
// starting with white space continues the previous logical line; empty
// lines end a logical line; lines whose first non-white-space character is
// '#' are comments (also between continuation lines). A name is a
// local-part without '@', matched case-insensitively. A target is a
// local-part (same domain as the address being expanded) or a full address,
// optionally in angle brackets; commas inside a quoted local-part do not
// separate targets. Empty targets (a trailing comma) are ignored. Pipes
// ("|cmd"), files ("/path") and ":include:" are refused, as are duplicate
// names. Every error names "file:line" and the line of the alias; Parse
// reports all of them (up to 20), one per line of the Status message.
//
// Expansion (for an address in a local domain): the local-part, lower-
// cased, is looked up whole, then without "+detail". Each target is
// expanded again, to depth kMaxAliasDepth. An alias that names itself
// among its targets ("alice: alice, archive") delivers to its own mailbox
// there (as in Postfix); any other loop (a -> b -> a) and a chain deeper
// than kMaxAliasDepth fail with 5.4.6, more than kMaxAliasExpansion
// addresses with 5.2.4. The result has no duplicates (compared with the
// domain lower-cased). Addresses in other domains are returned unchanged.
//
// Untrusted input: the file is the operator's, addresses come from peers.
// Aliases is immutable after Parse/Load: thread-safe to share.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "smtp/enhanced_status.h"

namespace petrel::delivery {

inline constexpr int kMaxAliasDepth = 10;
inline constexpr std::size_t kMaxAliasExpansion = 1000;

struct AliasError {
  smtp::EnhancedStatus status;  // 5.4.6 loop or too deep, 5.2.4 too many
  std::string text;             // names the chain: "alias loop: a -> b -> a"
};

class Aliases {
 public:
  struct Entry {
    std::vector<std::string> targets;  // as written, brackets removed
    std::string where;                 // "file:line"
  };

  Aliases() = default;  // no aliases

  // Reads and parses the file at `path`. NotFound / IoError if it cannot be
  // read, InvalidArgument with every syntax error otherwise.
  static Result<Aliases> Load(const std::string& path);
  // Parses `text`; `file_name` is used in error messages.
  static Result<Aliases> Parse(std::string_view text,
                               std::string_view file_name);

  // The entry for `name` (compared lower-cased), or nullptr.
  const Entry* Find(std::string_view name) const;
  // Whether `local_part` has an alias, whole or without "+detail": for a
  // RCPT check against [local] users.
  bool Has(std::string_view local_part) const;
  std::size_t size() const { return entries_.size(); }

  // Expands `address` ("local@domain"); `local_domains` lower-cased. An
  // address without an alias, or not in a local domain, or that does not
  // parse, expands to itself.
  tl::expected<std::vector<std::string>, AliasError> Expand(
      std::string_view address,
      const std::vector<std::string>& local_domains) const;

 private:
  std::map<std::string, Entry, std::less<>> entries_;  // lower-cased names
};

}  // namespace petrel::delivery
