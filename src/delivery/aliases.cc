#include "delivery/aliases.h"

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <system_error>
#include <utility>

#include "smtp/address.h"
#include "smtp/reply.h"

namespace petrel::delivery {
namespace {

constexpr std::size_t kMaxReportedErrors = 20;

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool IsSpace(char c) { return c == ' ' || c == '\t'; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

// Splits on commas outside double quotes (a backslash quotes the next
// character inside them).
std::vector<std::string_view> SplitTargets(std::string_view list) {
  std::vector<std::string_view> out;
  bool quoted = false;
  std::size_t start = 0;
  for (std::size_t i = 0; i < list.size(); ++i) {
    const char c = list[i];
    if (quoted && c == '\\') {
      ++i;
    } else if (c == '"') {
      quoted = !quoted;
    } else if (c == ',' && !quoted) {
      out.push_back(list.substr(start, i - start));
      start = i + 1;
    }
  }
  out.push_back(list.substr(start));
  return out;
}

struct LogicalLine {
  std::string text;
  std::size_t line = 0;  // of its first physical line
};

// The local-part used as lookup key: unquoted, lower-cased.
std::string Key(const smtp::Mailbox& mailbox) {
  return Lower(mailbox.UnquotedLocalPart());
}

std::string WithoutDetail(std::string_view key) {
  return std::string(key.substr(0, key.find('+')));
}

}  // namespace

Result<Aliases> Aliases::Load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno;
    const std::string why =
        std::error_code(err, std::generic_category()).message();
    if (err == ENOENT) {
      return Error(
          Status::NotFound("aliases: cannot open " + path + ": " + why));
    }
    return Error(Status::IoError("aliases: cannot open " + path + ": " + why));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    return Error(Status::IoError("aliases: cannot read " + path));
  }
  return Parse(text.str(), path);
}

Result<Aliases> Aliases::Parse(std::string_view text,
                               std::string_view file_name) {
  std::vector<std::string> errors;
  auto error = [&](std::size_t line, const std::string& what) {
    if (errors.size() < kMaxReportedErrors) {
      errors.push_back(std::string(file_name) + ":" + std::to_string(line) +
                       ": " + what);
    }
  };

  // Physical lines into logical lines.
  std::vector<LogicalLine> logical;
  bool open = false;  // the last logical line may be continued
  std::size_t number = 0;
  for (std::size_t pos = 0; pos < text.size();) {
    std::size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    std::string_view line = text.substr(pos, eol - pos);
    pos = eol + 1;
    ++number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const std::string_view trimmed = Trim(line);
    if (trimmed.empty()) {
      open = false;
      continue;
    }
    if (trimmed.front() == '#') continue;
    if (line.find('\0') != std::string_view::npos) {
      error(number, "NUL character");
      open = false;
      continue;
    }
    if (IsSpace(line.front())) {
      if (!open) {
        error(number, "continuation line without an alias before it");
        continue;
      }
      logical.back().text += ' ';
      logical.back().text += trimmed;
      continue;
    }
    logical.push_back({std::string(trimmed), number});
    open = true;
  }

  Aliases aliases;
  for (const LogicalLine& l : logical) {
    const std::size_t colon = l.text.find(':');
    if (colon == std::string::npos) {
      error(l.line, "expected \"name: target, ...\", found no ':'");
      continue;
    }
    const std::string name =
        Lower(Trim(std::string_view(l.text).substr(0, colon)));
    if (name.empty()) {
      error(l.line, "empty alias name");
      continue;
    }
    if (std::any_of(name.begin(), name.end(), [](char c) {
          return IsSpace(c) || c == '@' || c == '"' ||
                 static_cast<unsigned char>(c) < 0x20 || c == 0x7F;
        })) {
      error(l.line, "alias name \"" + smtp::SanitizeText(name, 100) +
                        "\" must be a local-part without '@', white space "
                        "or quotes");
      continue;
    }
    Entry entry;
    entry.where = std::string(file_name) + ":" + std::to_string(l.line);
    bool bad = false;
    for (std::string_view piece :
         SplitTargets(std::string_view(l.text).substr(colon + 1))) {
      std::string_view target = Trim(piece);
      if (target.empty()) continue;
      const std::string shown = smtp::SanitizeText(target, 300);
      if (target.front() == '|' || target.front() == '/' ||
          Lower(target.substr(0, 9)) == ":include:") {
        error(l.line, "alias " + name + ": target \"" + shown +
                          "\": pipes, files and :include: are not supported");
        bad = true;
        continue;
      }
      if (target.size() >= 2 && target.front() == '<' && target.back() == '>') {
        target = target.substr(1, target.size() - 2);
      }
      const bool full = target.find('@') != std::string_view::npos;
      const std::string address =
          full ? std::string(target) : std::string(target) + "@localhost";
      auto parsed = smtp::ParseMailbox(address, smtp::PathRole::kRecipient,
                                       /*utf8_allowed=*/true);
      if (!parsed) {
        error(l.line, "alias " + name + ": bad target \"" + shown +
                          "\": " + parsed.error().Text());
        bad = true;
        continue;
      }
      entry.targets.push_back(full ? parsed->local_part + "@" +
                                         parsed->DomainLower()
                                   : parsed->local_part);
    }
    if (bad) continue;
    if (entry.targets.empty()) {
      error(l.line, "alias " + name + " has no targets");
      continue;
    }
    auto [it, inserted] = aliases.entries_.emplace(name, std::move(entry));
    if (!inserted) {
      error(l.line,
            "duplicate alias " + name + " (first at " + it->second.where + ")");
    }
  }
  if (!errors.empty()) {
    std::string message;
    for (const std::string& e : errors) {
      if (!message.empty()) message += '\n';
      message += e;
    }
    return Error(Status::InvalidArgument(std::move(message)));
  }
  return aliases;
}

const Aliases::Entry* Aliases::Find(std::string_view name) const {
  auto it = entries_.find(Lower(name));
  return it == entries_.end() ? nullptr : &it->second;
}

bool Aliases::Has(std::string_view local_part) const {
  smtp::Mailbox mailbox;
  mailbox.local_part = std::string(local_part);
  const std::string key = Key(mailbox);
  return Find(key) != nullptr || Find(WithoutDetail(key)) != nullptr;
}

namespace {

struct Expander {
  const Aliases& aliases;
  const std::vector<std::string>& local_domains;
  std::vector<std::string> out;
  std::set<std::string> seen;      // lower-cased addresses in `out`
  std::vector<std::string> chain;  // "name@domain" being expanded
  std::optional<AliasError> error;

  bool IsLocal(const std::string& domain) const {
    return std::find(local_domains.begin(), local_domains.end(), domain) !=
           local_domains.end();
  }

  void Emit(std::string_view address) {
    if (out.size() >= kMaxAliasExpansion) {
      error = AliasError{{5, 2, 4},
                         "alias expansion of " + chain.front() +
                             " gives more than " +
                             std::to_string(kMaxAliasExpansion) + " addresses"};
      return;
    }
    if (seen.insert(Lower(address)).second) out.emplace_back(address);
  }

  std::string Chain(std::string_view last) const {
    std::string s;
    for (const std::string& c : chain) s += c + " -> ";
    return s + std::string(last);
  }

  void Expand(std::string_view address) {
    if (error) return;
    auto mailbox = smtp::ParseMailbox(address, smtp::PathRole::kRecipient,
                                      /*utf8_allowed=*/true);
    if (!mailbox || !IsLocal(mailbox->DomainLower())) {
      Emit(address);
      return;
    }
    const std::string domain = mailbox->DomainLower();
    std::string key = Key(*mailbox);
    const Aliases::Entry* entry = aliases.Find(key);
    if (entry == nullptr) {
      key = WithoutDetail(key);
      entry = aliases.Find(key);
    }
    if (entry == nullptr) {
      Emit(address);  // a mailbox
      return;
    }
    const std::string node = key + "@" + domain;
    if (std::find(chain.begin(), chain.end(), node) != chain.end()) {
      error = AliasError{{5, 4, 6}, "alias loop: " + Chain(node)};
      return;
    }
    if (static_cast<int>(chain.size()) >= kMaxAliasDepth) {
      error =
          AliasError{{5, 4, 6},
                     "alias expansion deeper than " +
                         std::to_string(kMaxAliasDepth) + ": " + Chain(node)};
      return;
    }
    chain.push_back(node);
    for (const std::string& target : entry->targets) {
      const std::string target_address = target.find('@') == std::string::npos
                                             ? target + "@" + domain
                                             : target;
      auto t = smtp::ParseMailbox(target_address, smtp::PathRole::kRecipient,
                                  /*utf8_allowed=*/true);
      if (t && t->DomainLower() == domain && Key(*t) == key) {
        Emit(address);  // "alice: alice, ...": alice's own mailbox
      } else {
        Expand(target_address);
      }
      if (error) return;
    }
    chain.pop_back();
  }
};

}  // namespace

tl::expected<std::vector<std::string>, AliasError> Aliases::Expand(
    std::string_view address,
    const std::vector<std::string>& local_domains) const {
  Expander expander{*this, local_domains, {}, {}, {}, std::nullopt};
  expander.Expand(address);
  if (expander.error) return tl::unexpected(std::move(*expander.error));
  return std::move(expander.out);
}

}  // namespace petrel::delivery
