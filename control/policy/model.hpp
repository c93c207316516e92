// model.hpp — the desired state of the distributed firewall, as plain structs, and its
// validation.
//
// Purpose: the OVSDB glue fills a DesiredState (settings, workloads, groups, rules) with
// the column values as they are (strings for MAC, addresses, selectors, protocol and
// ports); validate() checks everything and names the object and the field of each problem:
//   rule 7: ports: "80-70": range reversed
//   workload web1: mac: "zz:00:00:00:00:01": not a MAC address
//   workload web2: ips: "10.0.0.5": already used by workload web1
//   group db: selector: "group:nope": unknown group "nope"
// It reports every problem it finds, so a rejected change set is reported completely and
// the caller keeps its running policy. Selector grammar: selector.hpp; rule text grammar:
// rule_text.hpp; semantics and rationale: control/DESIGN.md "Policy model and compiler".
//
// Thread-safety: plain values; the functions are reentrant. Complexity: validate() is
// O(total size of the state · log) (maps of names, addresses and ports).
#pragma once

#include <cstdint>
#include <expected>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "control/policy/error.hpp"

namespace gl::policy {

// allow-encrypted: allowed only inside an ESP tunnel between hosts (the dataplane fails
// closed when no SA is usable); between two workloads of one host it is plain allow.
// reject: denied, answered with a TCP RST or an ICMP unreachable.
enum class Action : uint8_t { kAllow, kDeny, kReject, kAllowEncrypted };

inline constexpr uint32_t kMaxRuleId = 0x7fffffff;  // rule ids are 1..2^31-1
inline constexpr uint32_t kMaxPriority = 65535;
inline constexpr uint32_t kDefaultPriority = 32768;  // as ovs-ofctl, when rule text omits it

// "allow", "deny", "reject", "allow-encrypted".
std::string_view action_name(Action a);
// The four names above; also "drop" for deny (ovs-ofctl habit).
std::optional<Action> parse_action(std::string_view text);

struct Settings {
  Action default_action = Action::kDeny;  // allow or deny only
  uint32_t conn_limit = 0;                // connections per workload; 0 = no limit
  bool operator==(const Settings&) const = default;
};

struct Workload {
  std::string name;                           // unique; [A-Za-z0-9][A-Za-z0-9._-]*, at most 64
  std::string host;                           // the hypervisor's host name
  std::string port;                           // its vNIC's port name on that host (unique per host)
  std::string mac;                            // "aa:bb:cc:dd:ee:ff", unicast
  std::vector<std::string> ips;               // IPv4/IPv6 addresses, unique in the cluster
  std::map<std::string, std::string> labels;  // keys and values: selector.hpp
  bool operator==(const Workload&) const = default;
};

struct Group {
  std::string name;                  // unique among groups; same syntax as workload names
  std::string selector;              // selector.hpp; "" selects nothing
  std::vector<std::string> members;  // workload names
  bool operator==(const Group&) const = default;
};

struct Rule {
  uint32_t rule_id = 0;                  // 1..kMaxRuleId, unique (0 = not assigned yet)
  uint32_t priority = kDefaultPriority;  // 0..kMaxPriority, higher first
  std::string from = "any";              // selector of the sender
  std::string to = "any";                // selector of the receiver
  std::string protocol = "ip";           // ip | tcp | udp | icmp | icmp6 | sctp | 1..255
  std::string ports;                     // destination ports: "" any, "80,443,8000-8080"
  Action action = Action::kAllow;
  bool log = false;
  std::string description;  // free text without control characters, at most 1024 bytes
  bool operator==(const Rule&) const = default;
};

struct DesiredState {
  Settings settings;
  std::vector<Workload> workloads;
  std::vector<Group> groups;
  std::vector<Rule> rules;
  bool operator==(const DesiredState&) const = default;
};

// ---- field syntax ------------------------------------------------------------------

inline constexpr uint8_t kProtoAny = 0;
inline constexpr uint8_t kProtoIcmp = 1;
inline constexpr uint8_t kProtoTcp = 6;
inline constexpr uint8_t kProtoUdp = 17;
inline constexpr uint8_t kProtoIcmp6 = 58;
inline constexpr uint8_t kProtoSctp = 132;

// "ip" -> 0 (any), "icmp" 1, "tcp" 6, "udp" 17, "icmp6" 58, "sctp" 132, or a decimal
// number 1..255 (0 is refused: it is not a transport protocol; "ip" means any).
std::expected<uint8_t, std::string> parse_protocol(std::string_view text);
// The canonical spelling: a name above when there is one, else the number.
std::string protocol_name(uint8_t proto);
// TCP, UDP and SCTP have destination ports; any other protocol may not have a port list.
bool protocol_has_ports(uint8_t proto);

struct PortRange {
  uint16_t lo = 0;
  uint16_t hi = 65535;
  bool operator==(const PortRange&) const = default;
};

// "" -> {} (any port); "5432"; "8000-8080"; "80,443,8000-8080" (whitespace around items
// is ignored). The result is sorted, with overlapping and adjacent ranges merged. Errors
// quote the offending item: "\"80-70\": range reversed".
std::expected<std::vector<PortRange>, std::string> parse_ports(std::string_view text);
// Canonical text of a parse_ports result: "80,443,8000-8080"; "" for {}.
std::string format_ports(const std::vector<PortRange>& ranges);

// [A-Za-z0-9][A-Za-z0-9._-]*, 1..64 characters: workload and group names.
bool is_valid_name(std::string_view name);

// ---- validation --------------------------------------------------------------------

// Checks one rule by itself (syntax of every field, protocol/ports consistency, ranges),
// not its references to groups and workloads. rule_id 0 is accepted when !require_id
// (a rule not stored yet). Problems name the rule ("rule 7", or "rule #N" with index N
// when the id is unusable; index < 0: "rule").
std::vector<Problem> validate_rule(const Rule& rule, bool require_id, int index = -1);

// Checks the whole desired state: every object by itself, uniqueness (names, rule ids,
// workload addresses, ports and MACs per host), references (group members, group: and
// workload: selector terms), group cycles. All problems, in the order settings,
// workloads, groups, rules.
std::expected<void, Error> validate(const DesiredState& state);

}  // namespace gl::policy
