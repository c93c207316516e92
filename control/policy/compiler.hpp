// compiler.hpp — compiles the desired state into one host's firewall tables.
//
// Purpose: Cilium-style identities. compile() validates the desired state, gives every
// workload of the cluster and every CIDR prefix the rules use a numeric identity
// (identity.hpp), and produces for one host:
//   * the ipcache: address prefix -> identity, for every workload address of the cluster
//     (host prefixes) and every rule prefix. A remote address's identity is its
//     longest-prefix match (kWorldIdentity when nothing matches); a workload's address
//     always resolves to the workload, never to a CIDR identity.
//   * per local workload (Workload::host == host): its spoof-guard data (MAC, addresses),
//     connection limit and two PortPolicy tables:
//       egress_from_vm  traffic the VM sends: the rule's `from` selects this workload, the
//                       remote (destination) is matched against `to`;
//       ingress_to_vm   traffic to the VM: `to` selects this workload, the remote
//                       (source) is matched against `from`.
//     A rule whose from and to both select workloads of this host appears on both ports:
//     the connection is checked at both ends (as NSX's DFW does).
// A PortPolicy is an ordered entry list (priority descending, then rule id ascending,
// then remote identity and port ascending), with one entry per (rule, remote identity,
// port range); the first entry that matches (remote identity or kAnyIdentity, protocol or
// 0 = any, destination port in [port_lo, port_hi]) decides, else the default action.
// For ICMP, ICMPv6 and every protocol without ports the port is ignored. The per-identity
// index (slices + wildcard) lets the dataplane look at the entries that can match one
// identity only. evaluate() is the reference evaluator over that index; evaluate_linear()
// scans every entry (tests compare both).
//
// Thread-safety: compile() is reentrant; a CompiledPolicy is an immutable value once
// built (the dataplane glue converts it into its own RCU-published tables).
// Complexity: selectors are resolved once per distinct text, with bitsets over the W
// workloads (O(W/64) per term); then O(L) per distinct resolved selector to find the L
// local workloads it picks and O(R) over the R rules, plus the entries emitted and O(P²) for P rule
// prefixes; 10k workloads, 1k groups and 10k rules compile in tens of milliseconds
// (control/DESIGN.md). evaluate() is O(log I + entries of that identity + wildcard entries);
// lookup_identity() is linear.
#pragma once

#include <cstdint>
#include <expected>
#include <string>
#include <string_view>
#include <vector>

#include "control/policy/address.hpp"
#include "control/policy/error.hpp"
#include "control/policy/identity.hpp"
#include "control/policy/model.hpp"

namespace gl::policy {

struct IpcacheEntry {
  IpPrefix prefix;
  uint32_t identity = kWorldIdentity;
  std::string host;  // workload addresses: the host the workload runs on; "" for CIDRs
  bool operator==(const IpcacheEntry&) const = default;
};

struct IdentityInfo {
  uint32_t identity = 0;
  IdentityKind kind = IdentityKind::kWorld;
  std::string key;       // identity key: workload label set, or the prefix text
  std::string workload;  // kWorkload: the workload's name
  IpPrefix prefix;       // kCidr: the prefix
  // kCidr: every rule prefix that contains this one (itself included): a selector's
  // CIDR term matches this identity when its prefix is one of these.
  std::vector<IpPrefix> matched_by;
};

struct PolicyEntry {
  uint32_t remote_identity = kAnyIdentity;  // kAnyIdentity matches every remote
  uint8_t proto = kProtoAny;                // 0 = any protocol
  uint16_t port_lo = 0;                     // destination port range, inclusive
  uint16_t port_hi = 65535;
  Action action = Action::kDeny;
  bool log = false;
  uint32_t rule_id = 0;
  uint16_t priority = 0;
  bool operator==(const PolicyEntry&) const = default;
};

struct IdentitySlice {
  uint32_t identity = 0;
  uint32_t begin = 0;  // [begin, end) in PortPolicy::index
  uint32_t end = 0;
};

struct PortPolicy {
  Action default_action = Action::kDeny;
  std::vector<PolicyEntry> entries;   // evaluation order
  std::vector<IdentitySlice> slices;  // sorted by identity, for remote_identity != any
  std::vector<uint32_t> index;        // positions in entries, ascending within a slice
  std::vector<uint32_t> wildcard;     // positions of the kAnyIdentity entries, ascending
};

struct Verdict {
  Action action = Action::kDeny;
  uint32_t rule_id = 0;  // 0: the default action decided
  bool log = false;
  bool operator==(const Verdict&) const = default;
};

struct LocalWorkload {
  std::string name;
  std::string port;
  uint32_t identity = 0;
  Mac mac{};
  std::vector<IpAddress> ips;  // in the order of the model
  uint32_t conn_limit = 0;     // 0 = none
  PortPolicy egress_from_vm;
  PortPolicy ingress_to_vm;
};

struct CompiledPolicy {
  uint64_t generation = 0;
  std::string host;
  Action default_action = Action::kDeny;
  std::vector<IpcacheEntry> ipcache;     // sorted by family, address, length
  std::vector<IdentityInfo> identities;  // world, workloads, CIDRs; sorted by identity
  std::vector<LocalWorkload> workloads;  // this host's, sorted by name
  std::vector<std::string> warnings;     // e.g. "rule 7: to: selects nothing"
  IdentityAllocator allocator;           // pass to the next compile() for stable numbers
};

// Validates `state` (model.hpp) and compiles it for `host`. `previous` is the allocator
// of the running policy (CompiledPolicy::allocator), or a fresh one. Errors name the
// objects and fields; on error nothing of the caller's changes.
std::expected<CompiledPolicy, Error> compile(const DesiredState& state, std::string_view host,
                                             uint64_t generation,
                                             const IdentityAllocator& previous = {});

// Longest-prefix match over the ipcache (linear; a reference for tests and glctl trace).
uint32_t lookup_identity(const CompiledPolicy& policy, const IpAddress& address);

// The identity's description, or nullptr.
const IdentityInfo* find_identity(const CompiledPolicy& policy, uint32_t identity);

// First matching entry, through the per-identity index.
Verdict evaluate(const PortPolicy& policy, uint32_t remote_identity, uint8_t proto, uint16_t dport);
// The same by scanning every entry in order.
Verdict evaluate_linear(const PortPolicy& policy, uint32_t remote_identity, uint8_t proto,
                        uint16_t dport);

// Human-readable dump: settings, identities, ipcache, and per port both tables.
std::string format_compiled(const CompiledPolicy& policy);

}  // namespace gl::policy
