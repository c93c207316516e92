#include "dataplane/firewall/fw_tables.hpp"

#include <algorithm>
#include <cstring>

#include "flowtables/bytes.hpp"

namespace gl::fw {

namespace {

uint32_t mask4(uint32_t host, unsigned len) {
  return len == 0 ? 0 : host & (~0u << (32 - len));
}

using flow::load_be64;

void mask6(uint64_t& hi, uint64_t& lo, unsigned len) {
  if (len <= 64) {
    hi = len == 0 ? 0 : hi & (~0ull << (64 - len));
    lo = 0;
  } else {
    lo = len == 128 ? lo : lo & (~0ull << (128 - len));
  }
}

std::string prefix_text(const Prefix& p, size_t i) {
  return "prefix " + std::to_string(i) + " (family " + std::to_string(p.family) + ", /" +
         std::to_string(p.len) + ")";
}

}  // namespace

std::expected<IpCache, std::string> IpCache::build(std::span<const Prefix> prefixes) {
  IpCache c;
  for (size_t i = 0; i < prefixes.size(); ++i) {
    const Prefix& p = prefixes[i];
    if (p.family == 4) {
      if (p.len > 32) return std::unexpected(prefix_text(p, i) + ": length beyond 32");
      const uint32_t host = uint32_t(p.addr[0]) << 24 | uint32_t(p.addr[1]) << 16 |
                            uint32_t(p.addr[2]) << 8 | p.addr[3];
      const uint64_t key = uint64_t(p.len) << 32 | mask4(host, p.len);
      auto [it, fresh] = c.v4_.emplace(key, IpHit{p.identity, p.host});
      if (!fresh && it->second.identity != p.identity)
        return std::unexpected(prefix_text(p, i) + ": the same prefix with two identities");
      if (fresh) {
        ++c.n_;
        if (std::find(c.len4_.begin(), c.len4_.end(), p.len) == c.len4_.end())
          c.len4_.push_back(p.len);
      }
    } else if (p.family == 6) {
      if (p.len > 128) return std::unexpected(prefix_text(p, i) + ": length beyond 128");
      Key6 k{load_be64(p.addr), load_be64(p.addr + 8), p.len};
      mask6(k.hi, k.lo, p.len);
      auto [it, fresh] = c.v6_.emplace(k, IpHit{p.identity, p.host});
      if (!fresh && it->second.identity != p.identity)
        return std::unexpected(prefix_text(p, i) + ": the same prefix with two identities");
      if (fresh) {
        ++c.n_;
        if (std::find(c.len6_.begin(), c.len6_.end(), p.len) == c.len6_.end())
          c.len6_.push_back(p.len);
      }
    } else {
      return std::unexpected("prefix " + std::to_string(i) + ": family " +
                             std::to_string(p.family) + " is neither 4 nor 6");
    }
  }
  std::sort(c.len4_.rbegin(), c.len4_.rend());
  std::sort(c.len6_.rbegin(), c.len6_.rend());
  c.source_.assign(prefixes.begin(), prefixes.end());
  return c;
}

IpHit IpCache::hit4(uint32_t addr_be) const {
  const uint32_t host = __builtin_bswap32(addr_be);
  for (uint8_t len : len4_) {
    auto it = v4_.find(uint64_t(len) << 32 | mask4(host, len));
    if (it != v4_.end()) return it->second;
  }
  return IpHit{};
}

IpHit IpCache::hit6(const uint8_t* addr) const {
  const uint64_t hi = load_be64(addr), lo = load_be64(addr + 8);
  for (uint8_t len : len6_) {
    Key6 k{hi, lo, len};
    mask6(k.hi, k.lo, len);
    auto it = v6_.find(k);
    if (it != v6_.end()) return it->second;
  }
  return IpHit{};
}

IpHit IpCache::within4(uint32_t host, unsigned max_len) const {
  for (uint8_t len : len4_) {
    if (len > max_len) continue;
    auto it = v4_.find(uint64_t(len) << 32 | mask4(host, len));
    if (it != v4_.end()) return it->second;
  }
  return IpHit{};
}

IpHit IpCache::within6(uint64_t hi, uint64_t lo, unsigned max_len) const {
  for (uint8_t len : len6_) {
    if (len > max_len) continue;
    Key6 k{hi, lo, len};
    mask6(k.hi, k.lo, len);
    auto it = v6_.find(k);
    if (it != v6_.end()) return it->second;
  }
  return IpHit{};
}

std::optional<std::unordered_set<uint32_t>> IpCache::changed_identities(const IpCache& was,
                                                                        const IpCache& now,
                                                                        size_t limit) {
  std::unordered_set<uint32_t> ids;
  size_t ranges = 0;
  // One range (a prefix of either cache): its answer before and after.
  auto changed = [&](const IpHit& before, const IpHit& after) {
    if (before.identity == after.identity && before.host == after.host) return true;
    if (++ranges > limit) return false;
    if (before.host != after.host && before.host != 0 && after.host != 0) return false;
    if (before.identity != after.identity) {
      ids.insert(before.identity);
      ids.insert(after.identity);
    }
    return true;
  };
  // A prefix of `a` answers for its range there; in `b` the range answers as the same
  // prefix, else as the longest shorter prefix covering it.
  auto walk = [&](const IpCache& a, const IpCache& b, bool a_is_now) {
    for (const auto& [key, hit] : a.v4_) {
      const unsigned len = static_cast<unsigned>(key >> 32);
      auto it = b.v4_.find(key);
      if (it != b.v4_.end() && a_is_now) {
        if (!changed(it->second, hit)) return false;
        continue;
      }
      if (it != b.v4_.end()) continue;  // both have it: seen from the new side
      const IpHit other =
          len == 0 ? IpHit{} : b.within4(static_cast<uint32_t>(key & 0xffffffffu), len - 1);
      if (!(a_is_now ? changed(other, hit) : changed(hit, other))) return false;
    }
    for (const auto& [key, hit] : a.v6_) {
      auto it = b.v6_.find(key);
      if (it != b.v6_.end() && a_is_now) {
        if (!changed(it->second, hit)) return false;
        continue;
      }
      if (it != b.v6_.end()) continue;
      const IpHit other = key.len == 0 ? IpHit{} : b.within6(key.hi, key.lo, key.len - 1);
      if (!(a_is_now ? changed(other, hit) : changed(hit, other))) return false;
    }
    return true;
  };
  if (!walk(now, was, true) || !walk(was, now, false)) return std::nullopt;
  return ids;
}

PolicyTable::PolicyTable(Action default_action, std::vector<Entry> entries)
    : default_(default_action), entries_(std::move(entries)) {
  for (uint32_t i = 0; i < entries_.size(); ++i)
    if (entries_[i].remote != kAnyIdentity) by_remote_.try_emplace(entries_[i].remote);
  for (uint32_t i = 0; i < entries_.size(); ++i) {
    const uint32_t r = entries_[i].remote;
    if (r == kAnyIdentity) {
      any_.push_back(i);
      for (auto& [id, list] : by_remote_) list.push_back(i);
    } else {
      by_remote_[r].push_back(i);
    }
  }
}

bool PolicyTable::same_policy(const PolicyTable& o) const {
  return default_ == o.default_ &&
         std::equal(entries_.begin(), entries_.end(), o.entries_.begin(), o.entries_.end(),
                    [](const Entry& a, const Entry& b) { return a.same_rule(b); });
}

bool PolicyTable::names_any_of(const std::unordered_set<uint32_t>& ids) const {
  if (ids.size() < by_remote_.size()) {
    for (uint32_t id : ids)
      if (by_remote_.contains(id)) return true;
    return false;
  }
  for (const auto& [id, list] : by_remote_)
    if (ids.contains(id)) return true;
  return false;
}

Verdict PolicyTable::lookup(uint32_t remote, uint8_t proto, uint16_t dport) const {
  auto it = by_remote_.find(remote);
  const std::vector<uint32_t>& list = it != by_remote_.end() ? it->second : any_;
  // ICMP and protocols without ports: an entry's port range does not apply.
  const bool ports = proto == 6 || proto == 17 || proto == 132;
  for (uint32_t i : list) {
    const Entry& e = entries_[i];
    if (e.proto != 0 && e.proto != proto) continue;
    if (ports && (dport < e.port_lo || dport > e.port_hi)) continue;
    return {e.action, e.rule_id, e.log, e.slot};
  }
  return {default_, 0, false, 0};
}

bool PortFirewall::same_policy(const PortFirewall& o) const {
  return port_no == o.port_no && identity == o.identity && conn_limit == o.conn_limit &&
         std::memcmp(mac, o.mac, sizeof mac) == 0 && ipv4 == o.ipv4 && ipv6 == o.ipv6 &&
         from_vm.same_policy(o.from_vm) && to_vm.same_policy(o.to_vm);
}

bool PortFirewall::source_ok4(uint32_t addr_be) const {
  return std::find(ipv4.begin(), ipv4.end(), addr_be) != ipv4.end();
}

bool PortFirewall::source_ok6(const uint8_t* addr) const {
  for (const auto& a : ipv6)
    if (std::memcmp(a.data(), addr, 16) == 0) return true;
  return false;
}

bool PortFirewall::source_addr_ok4(uint32_t src_be, uint8_t proto, uint16_t sport_be,
                                   uint16_t dport_be) const {
  if (source_ok4(src_be)) return true;
  uint8_t sp[2], dp[2];  // network order
  std::memcpy(sp, &sport_be, 2);
  std::memcpy(dp, &dport_be, 2);
  return src_be == 0 && proto == 17 && sp[0] == 0 && sp[1] == 68 && dp[0] == 0 && dp[1] == 67;
}

bool PortFirewall::source_addr_ok6(const uint8_t* src) const {
  if (source_ok6(src)) return true;
  static constexpr uint8_t kZero[16] = {};
  const bool link_local = src[0] == 0xfe && (src[1] & 0xc0) == 0x80;  // fe80::/10
  return link_local || std::memcmp(src, kZero, 16) == 0;
}

bool PortFirewall::mac_ok(const uint8_t* eth_src) const {
  static constexpr uint8_t kZero[6] = {};
  return std::memcmp(mac, kZero, 6) == 0 || std::memcmp(mac, eth_src, 6) == 0;
}

std::expected<void, std::string> FwTables::index(const FwTables* prev) {
  by_port.clear();
  for (size_t i = 0; i < ports.size(); ++i) {
    const uint32_t p = ports[i].port_no;
    if (p >= by_port.size()) by_port.resize(p + 1, -1);
    if (by_port[p] >= 0)
      return std::unexpected("port " + std::to_string(p) + " has two firewall entries");
    by_port[p] = static_cast<int32_t>(i);
  }
  // Registered addresses -> their port (an address registered twice keeps the first).
  local4.clear();
  local6.clear();
  for (const PortFirewall& p : ports) {
    for (uint32_t a : p.ipv4) local4.emplace_back(a, p.port_no);
    for (const auto& a : p.ipv6) local6.emplace_back(a, p.port_no);
  }
  auto by_addr = [](const auto& a, const auto& b) { return a.first < b.first; };
  std::stable_sort(local4.begin(), local4.end(), by_addr);
  std::stable_sort(local6.begin(), local6.end(), by_addr);
  // Counter slots. Rule 0 (the defaults) is slot 0; a rule prev numbered keeps its slot;
  // the others take the slots prev's removed rules left (lowest first), then new ones in
  // order of first appearance. So the table is no longer than the most rules a version
  // had, and a slot never changes rule while a connection may still count into it (a
  // port whose generation is kept has the same rules, so the same slots).
  std::unordered_map<uint32_t, uint32_t> slot_of{{0, 0}};
  for (const PortFirewall& p : ports)
    for (const PolicyTable* pt : {&p.from_vm, &p.to_vm})
      for (const Entry& e : pt->entries()) slot_of.try_emplace(e.rule_id, UINT32_MAX);
  rule_ids.assign(1, 0);
  std::vector<uint32_t> free_slots;
  if (prev != nullptr) {
    rule_ids.resize(prev->rule_ids.size(), 0);
    for (uint32_t s = 1; s < prev->rule_ids.size(); ++s) {
      auto it = slot_of.find(prev->rule_ids[s]);
      if (it != slot_of.end() && it->second == UINT32_MAX && prev->rule_ids[s] != 0) {
        it->second = s;
        rule_ids[s] = prev->rule_ids[s];
      } else {
        free_slots.push_back(s);
      }
    }
  }
  size_t next_free = 0;
  auto slot = [&](uint32_t rule_id) {
    uint32_t& s = slot_of[rule_id];
    if (s != UINT32_MAX) return s;
    if (next_free < free_slots.size()) {
      s = free_slots[next_free++];
      rule_ids[s] = rule_id;
    } else {
      s = static_cast<uint32_t>(rule_ids.size());
      rule_ids.push_back(rule_id);
    }
    return s;
  };
  has_encrypted = false;
  for (PortFirewall& p : ports) {
    p.from_vm.assign_slots(slot);
    p.to_vm.assign_slots(slot);
    for (const PolicyTable* pt : {&p.from_vm, &p.to_vm}) {
      has_encrypted |= pt->default_action() == Action::kAllowEncrypted;
      for (const Entry& e : pt->entries()) has_encrypted |= e.action == Action::kAllowEncrypted;
    }
  }
  // Trailing slots no rule took: gone.
  for (size_t k = free_slots.size(); k > next_free && free_slots[k - 1] == rule_ids.size() - 1; --k)
    rule_ids.pop_back();
  if (rule_ids.size() > ConnVerdict::kMaxSlots)
    return std::unexpected("more than " + std::to_string(ConnVerdict::kMaxSlots) + " rules");
  // Generations: what decides a port's verdicts is its own policy, the identities the
  // ipcache gives the addresses its rules tell apart, and the version's hosts and record
  // flags.
  std::optional<std::unordered_set<uint32_t>> ids;
  if (prev != nullptr && prev->record == record && prev->hosts == hosts)
    ids = IpCache::changed_identities(prev->ipcache, ipcache, kMaxRangesCompared);
  for (PortFirewall& p : ports) {
    const PortFirewall* was = ids ? prev->port(p.port_no) : nullptr;
    const bool same = was != nullptr && was->same_policy(p) && !p.from_vm.names_any_of(*ids) &&
                      !p.to_vm.names_any_of(*ids);
    p.generation = same ? was->generation : generation;
  }
  return {};
}

uint32_t FwTables::local_port4(uint32_t addr_be) const {
  auto it = std::lower_bound(local4.begin(), local4.end(), addr_be,
                             [](const auto& e, uint32_t a) { return e.first < a; });
  return it != local4.end() && it->first == addr_be ? it->second : 0;
}

uint32_t FwTables::local_port6(const uint8_t* addr) const {
  std::array<uint8_t, 16> a;
  std::memcpy(a.data(), addr, 16);
  auto it =
      std::lower_bound(local6.begin(), local6.end(), a,
                       [](const auto& e, const std::array<uint8_t, 16>& x) { return e.first < x; });
  return it != local6.end() && it->first == a ? it->second : 0;
}

void FwTables::alloc_counters(unsigned contexts) {
  // Each context's block starts on its own cache line (64 bytes: 8 counters of 24 bytes
  // are 3 lines).
  counter_stride = (rule_ids.size() + 7) & ~size_t{7};
  if (counter_stride == 0) counter_stride = 8;
  counter_contexts = contexts;
  counter_mem.reset(new (std::align_val_t{64}) RuleCounter[counter_stride * contexts]);
}

std::array<uint64_t, 3> FwTables::counted(uint32_t slot) const {
  std::array<uint64_t, 3> sum{};
  for (unsigned c = 0; c < counter_contexts; ++c) {
    const RuleCounter& r = counters(c)[slot];
    sum[0] += r.packets.load(std::memory_order_relaxed);
    sum[1] += r.bytes.load(std::memory_order_relaxed);
    sum[2] += r.conns.load(std::memory_order_relaxed);
  }
  return sum;
}

void ConnVerdict::to_label(uint8_t label[16]) const {
  std::memset(label, 0, 16);
  std::memcpy(label, &generation, 4);  // little-endian, as the dpapi
  std::memcpy(label + 4, &start_ms, 4);
  label[8] = to_vm ? 1 : 0;
  label[9] = static_cast<uint8_t>(action);
  label[10] = static_cast<uint8_t>(slot);
  label[11] = static_cast<uint8_t>(slot >> 8);
  label[12] = static_cast<uint8_t>(slot >> 16);
  label[13] = record ? 1 : 0;
  label[14] = via;
  label[15] = kLabelMarker;  // 'G': a label the firewall wrote (an entry without it is not ours)
}

ConnVerdict ConnVerdict::from_label(const uint8_t label[16]) {
  ConnVerdict v;
  std::memcpy(&v.generation, label, 4);
  std::memcpy(&v.start_ms, label + 4, 4);
  v.to_vm = label[8] != 0;
  v.action = static_cast<Action>(label[9] & 3);
  v.slot = uint32_t{label[10]} | uint32_t{label[11]} << 8 | uint32_t{label[12]} << 16;
  v.record = label[13] != 0;
  v.via = label[14];
  return v;
}

}  // namespace gl::fw
