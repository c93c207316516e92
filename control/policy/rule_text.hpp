// rule_text.hpp — the ovs-ofctl-style text of a rule, for `glctl add-rule` and dumps.
//
// Purpose: one rule as comma-separated fields, in any order:
//   id=N                 rule id 1..2147483647 (optional: left out, glctl assigns one)
//   priority=N           0..65535, higher first (default 32768, as ovs-ofctl)
//   from=SELECTOR        the sender (selector.hpp; default any)
//   to=SELECTOR          the receiver (default any)
//   ip|tcp|udp|icmp|icmp6|sctp   protocol as a bare word (default ip: any protocol)
//   proto=N              protocol by number 1..255 (or name)
//   tp_dst=P | tp_dst=LO-HI      destination port or range; repeat the field for a list
//                        (tp_dst=80,tp_dst=443), or quote a list (tp_dst="80,443");
//                        tcp, udp and sctp only
//   actions=allow|deny|reject|allow-encrypted   (also action=; drop = deny) (required)
//   log                  log the connections this rule decides
//   description=TEXT     free text; quote it ("...", with \" and \\) to use commas
// Any value may be double-quoted; selectors need no quotes (they contain no commas).
// Examples:
//   priority=100,from=app=web,to=app=db,tcp,tp_dst=5432,actions=allow,log
//   id=7,priority=10,from=any,to=group:db,actions=deny,description="db, locked down"
//   priority=200,from=10.0.0.0/8|192.168.0.0/16,to=role=bastion,tcp,tp_dst=22,actions=allow
//   from=tier=front,to=tier=back,udp,tp_dst=8000-8080,tp_dst=53,actions=reject
// format_rule() writes the canonical text: id (when set), priority, from, to, protocol,
// tp_dst fields (sorted, merged), actions, log, description. parse_rule(format_rule(r))
// == r for every rule parse_rule returned; for any other valid rule it gives the same
// rule in canonical spelling (selectors without spaces, proto=6 as tcp, ports sorted).
//
// Thread-safety: reentrant. Complexity: linear in the text.
#pragma once

#include <expected>
#include <string>
#include <string_view>

#include "control/policy/error.hpp"
#include "control/policy/model.hpp"

namespace gl::policy {

// Parses and checks the rule by itself (validate_rule with rule id 0 allowed); references
// to groups and workloads are checked when the rule joins a desired state. Problems use
// the text's field names and quote the offending text:
//   tp_dst: "80-70": range reversed        "frm": unknown field
std::expected<Rule, Error> parse_rule(std::string_view text);

// Canonical text; never fails (an invalid field is written quoted, as it is).
std::string format_rule(const Rule& rule);

}  // namespace gl::policy
