// selector.hpp — the selector expressions of rules (from=, to=) and groups (selector).
//
// Purpose: one grammar, parsed into a small tree that the compiler resolves into sets of
// workloads and outside address prefixes.
//
//   selector     := alternative ( "|" alternative )*      ("" = nothing; groups only)
//   alternative  := term ( "&" term )*                    (all terms must hold)
//   term         := "any"                                 everything: workloads and world
//                 | "group:" NAME                         what the group selects
//                 | "workload:" NAME                      that workload
//                 | ADDRESS | ADDRESS "/" LEN             outside addresses (CIDR)
//                 | KEY "=" VALUE                         label KEY has value VALUE
//                 | KEY "!=" VALUE                        label KEY absent or another value
//                 | KEY                                   label KEY present
//                 | "!" KEY                               label KEY absent
//   KEY   := [A-Za-z0-9][A-Za-z0-9._/-]*  (at most 253; never looks like an address)
//   VALUE := [A-Za-z0-9._-]+              (at most 63)
//   NAME  := [A-Za-z0-9][A-Za-z0-9._-]*   (at most 64)
// Whitespace around terms and operators is ignored. Examples:
//   any
//   app=web                       workloads labelled app=web
//   app=web & env!=prod           ... whose env is not prod (or who have no env)
//   tier & !quarantine            workloads with a tier label and no quarantine label
//   group:db | workload:bastion   the group db and the workload bastion
//   group:db & zone=a             members of db in zone a
//   10.0.0.0/8 | 2001:db8::/32    outside addresses in these prefixes
//   192.0.2.7                     one outside address (a /32)
//
// CIDR terms select addresses OUTSIDE the workloads: a workload's own address is never
// matched by a CIDR, even when the prefix contains it. Identity-based policy cannot be
// bypassed by writing a workload's address; to select workloads, use labels, groups or
// workload:NAME. For the same reason "any" and CIDR terms stand alone in an alternative
// ("10.0.0.0/8 & app=web" is refused: it could never match anything). Label terms never
// match outside addresses ("!quarantine" selects workloads only).
//
// Thread-safety: plain values, reentrant functions. Complexity: linear in the text.
#pragma once

#include <expected>
#include <string>
#include <string_view>
#include <vector>

#include "control/policy/address.hpp"

namespace gl::policy {

enum class TermKind : uint8_t {
  kAny,
  kGroup,           // name
  kWorkload,        // name
  kCidr,            // prefix
  kLabelEquals,     // key, value
  kLabelNotEquals,  // key, value
  kHasLabel,        // key
  kLacksLabel,      // key
};

struct Term {
  TermKind kind = TermKind::kAny;
  std::string key;    // label key, or the group / workload name
  std::string value;  // label value
  IpPrefix prefix;    // kCidr
  bool operator==(const Term&) const = default;
};

struct Alternative {
  std::vector<Term> terms;  // conjunction, never empty
  bool operator==(const Alternative&) const = default;
};

struct Selector {
  std::vector<Alternative> alternatives;  // disjunction; empty = selects nothing
  bool operator==(const Selector&) const = default;
};

// Errors quote the selector and name the offending term, e.g.
//   "app=web & 10.0.0.0/8": term "10.0.0.0/8": a CIDR cannot be combined with '&'
std::expected<Selector, std::string> parse_selector(std::string_view text);

// Canonical text: no whitespace, host prefixes without "/LEN", IPv6 in RFC 5952 form;
// parse_selector(format_selector(s)) == s.
std::string format_selector(const Selector& selector);

bool is_valid_label_key(std::string_view key);
bool is_valid_label_value(std::string_view value);

}  // namespace gl::policy
