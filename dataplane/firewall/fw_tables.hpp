// fw_tables.hpp — the distributed firewall's compiled tables, as the dataplane reads them.
//
// Purpose: what gldp consults for the first packet of a connection at a workload port
// (and again when the policy generation changed): the remote address's workload
// identity (IpCache: longest-prefix match, as Cilium's ipcache) and the port's policy for
// one direction ((identity, protocol, destination port) -> verdict, PolicyTable). glctld
// compiles the policy (control/policy) and sends it through the datapath API; gldp builds
// one immutable FwTables from it and publishes it with RCU (dataplane/DESIGN.md).
// Thread-safety: built on the control side; after publication read-only, any number of
// concurrent readers. Complexity: IpCache::lookup O(distinct prefix lengths) hash probes;
// PolicyTable::lookup one hash probe + a scan of that identity's entries (first match).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <expected>
#include <memory>
#include <new>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "flowtables/enum_names.hpp"

namespace gl::fw {

// Remote identities. 0 in a policy entry means any remote; 1 is the world (an address
// the ipcache does not know). glctld numbers workloads and CIDR ranges from 2 up.
inline constexpr uint32_t kAnyIdentity = 0;
inline constexpr uint32_t kWorldIdentity = 1;

enum class Action : uint8_t {
  kAllow = 0,
  kDeny = 1,    // dropped silently
  kReject = 2,  // dropped, answered (TCP RST / ICMP unreachable)
  kAllowEncrypted = 3,
};
inline constexpr flow::EnumName<Action> kActionTable[] = {
    {Action::kAllow, "allow"},
    {Action::kDeny, "deny"},
    {Action::kReject, "reject"},
    {Action::kAllowEncrypted, "allow-encrypted"},
};
inline constexpr auto kActionNames = flow::enum_names(kActionTable);
static_assert(kActionNames.size() == static_cast<size_t>(Action::kAllowEncrypted) + 1);
// An action code's name ("?" for a value that is not an action).
inline std::string_view action_name(uint8_t a) {
  return a < kActionNames.size() ? kActionNames[a] : "?";
}

// An address prefix and the identity of the addresses it covers. Addresses in network
// order; IPv4 in addr[0..3].
struct Prefix {
  uint8_t family = 4;  // 4 or 6
  uint8_t len = 32;    // prefix length (<= 32 / 128)
  uint8_t addr[16] = {};
  uint32_t identity = kWorldIdentity;
  uint16_t host = 0;  // a workload's host (FwTables::hosts), 0: none
  bool operator==(const Prefix&) const = default;
};

// A host's underlay address (family 0: unknown).
struct HostAddr {
  uint8_t family = 0;
  uint8_t addr[16] = {};
  bool same(uint8_t fam, const uint8_t* a) const {
    return family != 0 && family == fam && std::memcmp(addr, a, family == 4 ? 4 : 16) == 0;
  }
  bool operator==(const HostAddr&) const = default;
};

// What the ipcache knows of an address: its identity and, for a workload, its host.
struct IpHit {
  uint32_t identity = kWorldIdentity;
  uint16_t host = 0;
};

class IpCache {
 public:
  IpCache() = default;
  // Fails (naming the entry) on a bad family or length, or the same prefix twice with
  // different identities. Host bits beyond the length are ignored.
  static std::expected<IpCache, std::string> build(std::span<const Prefix> prefixes);

  // The identity of the longest prefix that covers the address; kWorldIdentity if none.
  uint32_t lookup4(uint32_t addr_be) const { return hit4(addr_be).identity; }
  uint32_t lookup6(const uint8_t* addr) const { return hit6(addr).identity; }
  // ... with the prefix's host.
  IpHit hit4(uint32_t addr_be) const;
  IpHit hit6(const uint8_t* addr) const;
  size_t size() const { return n_; }
  // The prefixes it was built from, as given: two caches built from equal lists answer
  // alike (FwTables::index() compares versions by them).
  const std::vector<Prefix>& prefixes() const { return source_; }
  // What a new cache changes of an old one's answers, as identities: for every address
  // range whose identity changed (a prefix added, removed or given another identity:
  // the range's identity before, from the longest prefix that covered it, and after),
  // both. A policy naming none of them gives every address the verdict it had (an
  // identity no entry names takes the any-remote entries and the default). nullopt,
  // "everything may have changed", when a range moved from one host to another (a
  // workload migrated: its connections are checked against its new host) or more than
  // `limit` ranges changed (not worth the lookups).
  static std::optional<std::unordered_set<uint32_t>> changed_identities(const IpCache& was,
                                                                        const IpCache& now,
                                                                        size_t limit);

 private:
  struct Key6 {
    uint64_t hi, lo;  // masked address, host order
    uint32_t len;
    bool operator==(const Key6&) const = default;
  };
  struct Hash6 {
    size_t operator()(const Key6& k) const {
      return (k.hi * 0x9e3779b97f4a7c15ull) ^ (k.lo * 0xc2b2ae3d27d4eb4full) ^ k.len;
    }
  };
  std::vector<uint8_t> len4_, len6_;        // prefix lengths present, longest first
  std::unordered_map<uint64_t, IpHit> v4_;  // len << 32 | masked address (host order)
  std::unordered_map<Key6, IpHit, Hash6> v6_;
  size_t n_ = 0;
  std::vector<Prefix> source_;
  // The longest prefix no longer than max_len covering the address (world when none).
  IpHit within4(uint32_t host, unsigned max_len) const;
  IpHit within6(uint64_t hi, uint64_t lo, unsigned max_len) const;
};

// One rule of a port's policy in one direction, after compilation: for remote `remote`
// (kAnyIdentity: any), protocol `proto` (0: any IP protocol) and destination ports
// [port_lo, port_hi] (ignored for ICMP and for protocols without ports).
struct Entry {
  uint32_t remote = kAnyIdentity;
  uint8_t proto = 0;
  uint16_t port_lo = 0, port_hi = 65535;
  Action action = Action::kDeny;
  bool log = false;
  uint32_t rule_id = 0;
  uint32_t slot = 0;  // the rule's counters (FwTables::index() numbers them)
  // The same rule (the counter slot aside).
  bool same_rule(const Entry& o) const {
    return remote == o.remote && proto == o.proto && port_lo == o.port_lo && port_hi == o.port_hi &&
           action == o.action && log == o.log && rule_id == o.rule_id;
  }
};

struct Verdict {
  Action action = Action::kDeny;
  uint32_t rule_id = 0;  // 0: the port's default action
  bool log = false;
  uint32_t slot = 0;  // FwTables::rule_ids index (0: the defaults)
};

class PolicyTable {
 public:
  PolicyTable() = default;
  // entries in evaluation order (the first that matches decides); default_action when
  // none does.
  PolicyTable(Action default_action, std::vector<Entry> entries);

  Verdict lookup(uint32_t remote, uint8_t proto, uint16_t dport) const;
  Action default_action() const { return default_; }
  const std::vector<Entry>& entries() const { return entries_; }
  // The same default and entries in the same order: the same verdicts.
  bool same_policy(const PolicyTable& o) const;
  // An entry names one of these remote identities (kAnyIdentity aside).
  bool names_any_of(const std::unordered_set<uint32_t>& ids) const;
  // FwTables::index(): each entry's counter slot from its rule id.
  template <typename SlotOf>
  void assign_slots(SlotOf&& slot_of) {
    for (Entry& e : entries_) e.slot = slot_of(e.rule_id);
  }

 private:
  Action default_ = Action::kDeny;
  std::vector<Entry> entries_;
  // Per remote identity named by some entry: the indexes of the entries that can apply
  // to it (its own and the any-remote ones), in order. Other identities: any_.
  std::unordered_map<uint32_t, std::vector<uint32_t>> by_remote_;
  std::vector<uint32_t> any_;
};

// A workload port's firewall: who the workload is, what it may send from, its policy in
// both directions. Its connections live in the firewall's own tracker, in zone port_no.
struct PortFirewall {
  uint32_t port_no = 0;
  uint32_t identity = 0;  // the workload's own identity (flow records, logs)
  // Spoof guard (traffic from the VM): the only source MAC (all zero: not checked) and
  // source addresses (network order). DHCP discovery (0.0.0.0, UDP 68 -> 67) and IPv6
  // link-local / unspecified sources are allowed besides.
  uint8_t mac[6] = {};
  std::vector<uint32_t> ipv4;
  std::vector<std::array<uint8_t, 16>> ipv6;
  uint32_t conn_limit = 0;  // connections in its zone; 0 = no limit of its own
  PolicyTable from_vm;      // what the VM sends: the remote is the destination
  PolicyTable to_vm;        // what is sent to the VM: the remote is the source
  // The generation its connections' verdicts must carry to need no re-check: the version
  // that last changed what decides them (this port's fields above, the identity of an
  // address its rules tell from others, the hosts, the record flags). FwTables::index()
  // sets it: a version that leaves a port's verdicts as they were does not send the
  // port's connections through the rules again.
  uint64_t generation = 0;

  // The same workload, spoof guard, limit and policy (generation aside).
  bool same_policy(const PortFirewall& o) const;

  bool source_ok4(uint32_t addr_be) const;
  bool source_ok6(const uint8_t* addr) const;
  bool mac_ok(const uint8_t* eth_src) const;
  // The spoof guard's source address rule for a packet the VM sends (the MAC aside; ports
  // in network order): a registered address, or DHCP discovery (0.0.0.0, UDP 68 -> 67);
  // IPv6 also link-local and :: (DAD). The stage and its trace both ask this.
  bool source_addr_ok4(uint32_t src_be, uint8_t proto, uint16_t sport_be, uint16_t dport_be) const;
  bool source_addr_ok6(const uint8_t* src) const;
};

// ICMPv6 neighbour discovery and MLD (130-136, 143): link-local signalling a tracker
// cannot follow. The stage lets them pass untracked after the spoof guard (their
// link-layer address options must name the port's MAC, an advertisement's target be the
// workload's); a router advertisement from a workload is refused (RA guard, RFC 6105).
inline constexpr uint8_t kIcmp6RouterAdvert = 134;
constexpr bool untracked_icmp6(uint8_t type) {
  return (type >= 130 && type <= 136) || type == 143;
}

// A rule's hits, counted per context (single writer) while its version is in force:
// packets and bytes of the connections it allowed (both directions; for deny and reject
// rules, of the packets refused), connections it allowed (deny, reject: attempts refused).
struct RuleCounter {
  std::atomic<uint64_t> packets{0}, bytes{0}, conns{0};
  void add(std::atomic<uint64_t>& c, uint64_t n) {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
};
static_assert(std::is_trivially_destructible_v<RuleCounter>);  // freed without destructors

// What the firewall reports as connection records and refusal events (FwTables::record).
inline constexpr uint32_t kRecordAll = 0x1;              // every connection and refusal
inline constexpr uint32_t kRecordDefaultRefusals = 0x2;  // refusals by a default action

// One version of the firewall, published whole (RCU) and never changed afterwards (but
// for its counters).
struct FwTables {
  uint64_t generation = 0;  // glctld's policy version: connections remember theirs
  uint32_t record = 0;      // kRecord*: besides what entries with `log` ask for
  // Some entry or default action is allow-encrypted (index()): only then do ports other
  // than workload and ESP ports look for packets that must not leave in clear.
  bool has_encrypted = false;
  IpCache ipcache;
  std::vector<HostAddr> hosts;  // [0]: none; Prefix::host indexes it
  std::vector<PortFirewall> ports;
  // Names of workload ports that gldp does not have yet (glctld's view when it built the
  // version): a port added under one of these names passes nothing until a version with
  // its policy comes (Datapath::fw_quarantined).
  std::vector<std::string> quarantine;
  std::vector<int32_t> by_port;  // port_no -> index into ports, -1: no firewall
  // Counter slots: rule_ids[slot] is the slot's rule id; slot 0 is rule 0 (the ports'
  // default actions), and so is a slot no rule of this version uses (one a removed rule
  // held: nothing counts into it). Filled by index().
  std::vector<uint32_t> rule_ids;
  // counters(ctx)[slot]: one block per context, alloc_counters() before publication.
  // Allocated 64-byte aligned (alloc_counters): freed by the matching aligned delete
  // (AddressSanitizer: a plain delete[] is a new/delete alignment mismatch).
  struct AlignedDelete {
    void operator()(RuleCounter* p) const { ::operator delete[](p, std::align_val_t{64}); }
  };
  std::unique_ptr<RuleCounter[], AlignedDelete> counter_mem;
  size_t counter_stride = 0;
  unsigned counter_contexts = 0;

  RuleCounter* counters(unsigned ctx) const { return &counter_mem[ctx * counter_stride]; }
  void alloc_counters(unsigned contexts);
  // The sum over contexts of slot's counters: {packets, bytes, conns}.
  std::array<uint64_t, 3> counted(uint32_t slot) const;

  // The local workload port a source address is registered to (its spoof guard list), 0
  // when none: sorted by address, filled by index().
  std::vector<std::pair<uint32_t, uint32_t>> local4;
  std::vector<std::pair<std::array<uint8_t, 16>, uint32_t>> local6;
  uint32_t local_port4(uint32_t addr_be) const;
  uint32_t local_port6(const uint8_t* addr) const;

  // The firewall of port_no, nullptr when it has none.
  const PortFirewall* port(uint32_t port_no) const {
    if (port_no >= by_port.size() || by_port[port_no] < 0) return nullptr;
    return &ports[static_cast<size_t>(by_port[port_no])];
  }
  // Fills by_port from ports, numbers the rules' counter slots and sets each port's
  // generation; fails on a port listed twice. prev: the version this one replaces (nullptr:
  // none). A rule id it numbered keeps its slot (a connection on a port whose generation
  // is kept counts into its slot without a re-check); a port whose policy is the same as
  // in prev, under the same hosts and record flags and an ipcache that changed no
  // identity its rules name (IpCache::changed_identities), keeps prev's generation.
  std::expected<void, std::string> index(const FwTables* prev = nullptr);
  // More ranges changed than this at once: every port takes the new generation.
  static constexpr size_t kMaxRangesCompared = 4096;
};

// What a firewall connection remembers (the tracker's mark and label of its entry): the
// rule that allowed it (mark), the generation it was allowed under (its low 32 bits), its
// direction, the rule's counter slot in that generation, whether it is recorded, and when
// it started (the tracker's clock, ms, modulo 2^32). Label bytes: 0-3 generation, 4-7
// start, 8 to_vm, 9 action, 10-12 slot, 13 record, 15 the marker 'G'.
struct ConnVerdict {
  uint32_t generation = 0;
  bool to_vm = false;  // created by a packet to the VM (else by one from the VM)
  Action action = Action::kAllow;
  uint32_t slot = 0;  // < 2^24
  bool record = false;
  uint32_t start_ms = 0;
  // The ESP port its packets to the VM must arrive by (the port towards the remote
  // workload's host), 0: any way. Label byte 14 (port numbers are below 256).
  uint8_t via = 0;

  void to_label(uint8_t label[16]) const;
  static ConnVerdict from_label(const uint8_t label[16]);
  static bool is_ours(const uint8_t label[16]) { return label[15] == kLabelMarker; }
  static constexpr uint8_t kLabelMarker = 0x47;
  static constexpr uint32_t kMaxSlots = 1u << 24;
};

}  // namespace gl::fw
