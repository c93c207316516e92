#include "control/policy/compiler.hpp"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <tuple>
#include <unordered_map>

#include "control/policy/selector.hpp"

namespace gl::policy {
namespace {

// A set of workloads (by index in the model), as a bitset.
class Bits {
 public:
  Bits() = default;
  explicit Bits(size_t n, bool all = false) : n_(n), words_((n + 63) / 64, all ? ~0ull : 0) {
    trim();
  }
  void set(size_t i) { words_[i / 64] |= 1ull << (i % 64); }
  bool test(size_t i) const { return words_[i / 64] >> (i % 64) & 1; }
  bool none() const {
    for (uint64_t w : words_)
      if (w) return false;
    return true;
  }
  Bits& operator&=(const Bits& o) {
    for (size_t i = 0; i < words_.size(); ++i) words_[i] &= o.words_[i];
    return *this;
  }
  Bits& operator|=(const Bits& o) {
    for (size_t i = 0; i < words_.size(); ++i) words_[i] |= o.words_[i];
    return *this;
  }
  Bits complement() const {
    Bits r(*this);
    for (uint64_t& w : r.words_) w = ~w;
    r.trim();
    return r;
  }
  template <typename F>
  void for_each(F&& f) const {
    for (size_t i = 0; i < words_.size(); ++i)
      for (uint64_t w = words_[i]; w; w &= w - 1)
        f(i * 64 + static_cast<size_t>(std::countr_zero(w)));
  }

 private:
  void trim() {
    if (n_ % 64 && !words_.empty()) words_.back() &= (1ull << (n_ % 64)) - 1;
  }
  size_t n_ = 0;
  std::vector<uint64_t> words_;
};

// What a selector denotes: workloads, and outside addresses (all of them, or the union of
// some prefixes).
struct Resolved {
  Bits workloads;
  bool all_outside = false;
  std::vector<IpPrefix> cidrs;  // sorted, unique; empty when all_outside

  bool empty() const { return workloads.none() && !all_outside && cidrs.empty(); }
};

void normalize(std::vector<IpPrefix>& v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
}

Resolved intersect(const Resolved& a, const Resolved& b) {
  Resolved r{a.workloads, false, {}};
  r.workloads &= b.workloads;
  if (a.all_outside && b.all_outside) {
    r.all_outside = true;
  } else if (a.all_outside) {
    r.cidrs = b.cidrs;
  } else if (b.all_outside) {
    r.cidrs = a.cidrs;
  } else {
    // Two prefixes intersect only when nested; the intersection is the longer one.
    for (const IpPrefix& p : a.cidrs)
      for (const IpPrefix& q : b.cidrs) {
        if (p.contains(q))
          r.cidrs.push_back(q);
        else if (q.contains(p))
          r.cidrs.push_back(p);
      }
    normalize(r.cidrs);
  }
  return r;
}

void unite(Resolved& a, const Resolved& b) {
  a.workloads |= b.workloads;
  a.all_outside = a.all_outside || b.all_outside;
  if (a.all_outside) {
    a.cidrs.clear();
  } else {
    a.cidrs.insert(a.cidrs.end(), b.cidrs.begin(), b.cidrs.end());
    normalize(a.cidrs);
  }
}

struct WorkloadView {
  const Workload* model = nullptr;
  Mac mac{};
  std::vector<IpAddress> ips;
};

class Resolver {
 public:
  Resolver(const DesiredState& state, const std::vector<WorkloadView>& workloads)
      : n_(workloads.size()) {
    for (size_t i = 0; i < workloads.size(); ++i) {
      const Workload& w = *workloads[i].model;
      by_name_[w.name] = i;
      for (const auto& [k, v] : w.labels) {
        bits_for(has_, k).set(i);
        bits_for(equals_[k], v).set(i);
      }
    }
    for (const Group& g : state.groups) groups_[g.name] = &g;
  }

  const Resolved& selector(const std::string& text) {
    if (auto it = selectors_.find(text); it != selectors_.end()) return *it->second;
    auto sel = parse_selector(text);  // validated before
    auto r = std::make_unique<Resolved>(Resolved{Bits(n_), false, {}});
    if (sel) {
      for (const Alternative& a : sel->alternatives) {
        Resolved conj = universe();
        for (const Term& t : a.terms) conj = intersect(conj, term(t));
        unite(*r, conj);
      }
    }
    return *selectors_.emplace(text, std::move(r)).first->second;
  }

 private:
  // The bitset of `key` in `m`, created empty when missing (no temporary otherwise).
  Bits& bits_for(std::map<std::string, Bits, std::less<>>& m, const std::string& key) const {
    auto it = m.find(key);
    if (it == m.end()) it = m.emplace(key, Bits(n_)).first;
    return it->second;
  }

  Resolved universe() const { return Resolved{Bits(n_, true), true, {}}; }
  Resolved nothing() const { return Resolved{Bits(n_), false, {}}; }

  Resolved term(const Term& t) {
    Resolved r = nothing();
    switch (t.kind) {
      case TermKind::kAny:
        return universe();
      case TermKind::kGroup:
        return group(t.key);
      case TermKind::kWorkload:
        if (auto it = by_name_.find(t.key); it != by_name_.end()) r.workloads.set(it->second);
        return r;
      case TermKind::kCidr:
        r.cidrs.push_back(t.prefix);
        return r;
      case TermKind::kLabelEquals:
      case TermKind::kLabelNotEquals:
        if (auto k = equals_.find(t.key); k != equals_.end())
          if (auto v = k->second.find(t.value); v != k->second.end()) r.workloads = v->second;
        if (t.kind == TermKind::kLabelNotEquals) r.workloads = r.workloads.complement();
        return r;
      case TermKind::kHasLabel:
      case TermKind::kLacksLabel:
        if (auto k = has_.find(t.key); k != has_.end()) r.workloads = k->second;
        if (t.kind == TermKind::kLacksLabel) r.workloads = r.workloads.complement();
        return r;
    }
    return r;
  }

  Resolved group(const std::string& name) {
    if (auto it = group_memo_.find(name); it != group_memo_.end()) return it->second;
    Resolved r = nothing();
    if (auto g = groups_.find(name); g != groups_.end() && !in_progress_.contains(name)) {
      in_progress_.insert(name);  // validation refuses cycles; this only guards recursion
      r = selector(g->second->selector);
      for (const std::string& m : g->second->members)
        if (auto it = by_name_.find(m); it != by_name_.end()) r.workloads.set(it->second);
      in_progress_.erase(name);
    }
    return group_memo_.emplace(name, r).first->second;
  }

  size_t n_;
  std::map<std::string, size_t, std::less<>> by_name_;
  std::map<std::string, Bits, std::less<>> has_;
  std::map<std::string, std::map<std::string, Bits, std::less<>>, std::less<>> equals_;
  std::map<std::string, const Group*, std::less<>> groups_;
  std::map<std::string, Resolved, std::less<>> group_memo_;
  std::set<std::string, std::less<>> in_progress_;
  std::unordered_map<std::string, std::unique_ptr<Resolved>> selectors_;
};

bool entry_matches(const PolicyEntry& e, uint32_t remote, uint8_t proto, uint16_t dport) {
  if (e.remote_identity != kAnyIdentity && e.remote_identity != remote) return false;
  if (e.proto != kProtoAny && e.proto != proto) return false;
  if (!protocol_has_ports(proto)) return true;  // ICMP and others: ports ignored
  return dport >= e.port_lo && dport <= e.port_hi;
}

Verdict verdict_of(const PolicyEntry& e) {
  return Verdict{e.action, e.rule_id, e.log};
}

void build_index(PortPolicy& p) {
  // (identity, position) as one word each: sorted, they are the slices in order.
  std::vector<uint64_t> keys;
  keys.reserve(p.entries.size());
  for (uint32_t i = 0; i < p.entries.size(); ++i) {
    if (p.entries[i].remote_identity == kAnyIdentity)
      p.wildcard.push_back(i);
    else
      keys.push_back(uint64_t{p.entries[i].remote_identity} << 32 | i);
  }
  std::sort(keys.begin(), keys.end());
  p.index.reserve(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    const auto identity = static_cast<uint32_t>(keys[i] >> 32);
    if (p.slices.empty() || p.slices.back().identity != identity)
      p.slices.push_back({identity, static_cast<uint32_t>(i), static_cast<uint32_t>(i)});
    p.index.push_back(static_cast<uint32_t>(keys[i]));
    p.slices.back().end = static_cast<uint32_t>(i + 1);
  }
}

std::string identity_label(const CompiledPolicy& policy, uint32_t id) {
  if (id == kAnyIdentity) return "any";
  const IdentityInfo* info = find_identity(policy, id);
  if (!info) return std::to_string(id) + "(?)";
  switch (info->kind) {
    case IdentityKind::kWorld:
      return "1(world)";
    case IdentityKind::kWorkload:
      return std::to_string(id) + "(" + info->workload + ")";
    case IdentityKind::kCidr:
      return std::to_string(id) + "(" + info->prefix.to_string() + ")";
  }
  return std::to_string(id);
}

void format_port_policy(const CompiledPolicy& policy, const PortPolicy& p, const char* title,
                        std::string& out) {
  out += "    ";
  out += title;
  out += ": default ";
  out += action_name(p.default_action);
  out += ", " + std::to_string(p.entries.size()) + " entries\n";
  for (const PolicyEntry& e : p.entries) {
    out += "      rule " + std::to_string(e.rule_id) + " priority " + std::to_string(e.priority) +
           " remote " + identity_label(policy, e.remote_identity) + " " + protocol_name(e.proto);
    if (protocol_has_ports(e.proto) && !(e.port_lo == 0 && e.port_hi == 65535)) {
      out += " dport " + std::to_string(e.port_lo);
      if (e.port_hi != e.port_lo) out += "-" + std::to_string(e.port_hi);
    }
    out += " ";
    out += action_name(e.action);
    if (e.log) out += " log";
    out += "\n";
  }
}

}  // namespace

std::expected<CompiledPolicy, Error> compile(const DesiredState& state, std::string_view host,
                                             uint64_t generation,
                                             const IdentityAllocator& previous) {
  if (auto ok = validate(state); !ok) return std::unexpected(ok.error());

  CompiledPolicy out;
  out.generation = generation;
  out.host = std::string(host);
  out.default_action = state.settings.default_action;

  std::vector<WorkloadView> workloads;
  workloads.reserve(state.workloads.size());
  std::unordered_map<IpAddress, size_t, IpAddressHash> address_owner;
  for (const Workload& w : state.workloads) {
    WorkloadView v{&w, *parse_mac(w.mac), {}};
    for (const std::string& ip : w.ips) {
      v.ips.push_back(*IpAddress::parse(ip));
      address_owner[v.ips.back()] = workloads.size();
    }
    workloads.push_back(std::move(v));
  }

  Resolver resolver(state, workloads);

  // Rules in evaluation order, with their resolved selectors.
  struct RuleView {
    const Rule* rule;
    const Resolved* from;
    const Resolved* to;
    uint8_t proto;
    std::vector<PortRange> ports;
  };
  std::vector<RuleView> rules;
  rules.reserve(state.rules.size());
  for (const Rule& r : state.rules) {
    RuleView v{&r, &resolver.selector(r.from), &resolver.selector(r.to),
               *parse_protocol(r.protocol), *parse_ports(r.ports)};
    if (v.ports.empty() || !protocol_has_ports(v.proto)) v.ports = {PortRange{0, 65535}};
    rules.push_back(std::move(v));
  }
  std::sort(rules.begin(), rules.end(), [](const RuleView& a, const RuleView& b) {
    if (a.rule->priority != b.rule->priority) return a.rule->priority > b.rule->priority;
    return a.rule->rule_id < b.rule->rule_id;
  });

  // Rule prefixes; a prefix that is exactly a workload's address cannot select anything.
  std::vector<IpPrefix> prefixes;
  for (const RuleView& v : rules) {
    for (auto [field, res] : {std::pair{"from", v.from}, std::pair{"to", v.to}}) {
      const std::string obj = "rule " + std::to_string(v.rule->rule_id);
      if (res->empty()) out.warnings.push_back(obj + ": " + field + ": selects nothing");
      for (const IpPrefix& p : res->cidrs) {
        if (p.is_host()) {
          if (auto it = address_owner.find(p.address); it != address_owner.end()) {
            out.warnings.push_back(
                obj + ": " + field + ": " + p.to_short_string() + " is the address of workload " +
                workloads[it->second].model->name + "; CIDR selectors never match workloads");
            continue;
          }
        }
        prefixes.push_back(p);
      }
    }
  }
  normalize(prefixes);

  // Identities.
  std::vector<std::string> workload_keys, cidr_keys;
  for (const WorkloadView& w : workloads)
    workload_keys.push_back(workload_identity_key(w.model->name, w.model->labels));
  for (const IpPrefix& p : prefixes) cidr_keys.push_back(p.to_string());
  auto allocator = previous.assign(workload_keys, cidr_keys);
  if (!allocator) return std::unexpected(allocator.error());
  out.allocator = std::move(*allocator);

  // Identity descriptions and the ipcache, sorted through small keys (not the records).
  std::vector<uint32_t> workload_identity(workloads.size());
  std::map<IpPrefix, uint32_t> prefix_identity;
  std::vector<std::pair<uint32_t, size_t>> order;  // (identity, index); CIDRs after workloads
  std::vector<std::tuple<IpPrefix, uint32_t, size_t>> cache;  // (prefix, identity, workload)
  constexpr size_t kNoWorkload = SIZE_MAX;
  for (size_t i = 0; i < workloads.size(); ++i) {
    workload_identity[i] = *out.allocator.find(IdentityKind::kWorkload, workload_keys[i]);
    order.emplace_back(workload_identity[i], i);
    for (const IpAddress& a : workloads[i].ips)
      cache.emplace_back(IpPrefix::host(a), workload_identity[i], i);
  }
  for (size_t i = 0; i < prefixes.size(); ++i) {
    const uint32_t id = *out.allocator.find(IdentityKind::kCidr, cidr_keys[i]);
    prefix_identity[prefixes[i]] = id;
    order.emplace_back(id, workloads.size() + i);
    cache.emplace_back(prefixes[i], id, kNoWorkload);
  }
  std::sort(order.begin(), order.end());
  std::sort(cache.begin(), cache.end());
  out.identities.reserve(order.size() + 1);
  out.identities.push_back({kWorldIdentity, IdentityKind::kWorld, "world", "", {}, {}});
  for (const auto& [id, index] : order) {
    if (index < workloads.size()) {
      out.identities.push_back({id,
                                IdentityKind::kWorkload,
                                std::move(workload_keys[index]),
                                workloads[index].model->name,
                                {},
                                {}});
      continue;
    }
    const IpPrefix& p = prefixes[index - workloads.size()];
    IdentityInfo info{id, IdentityKind::kCidr, p.to_string(), "", p, {}};
    for (const IpPrefix& q : prefixes)
      if (q.contains(p)) info.matched_by.push_back(q);
    out.identities.push_back(std::move(info));
  }
  out.ipcache.reserve(cache.size());
  for (const auto& [prefix, id, w] : cache)
    out.ipcache.push_back({prefix, id, w == kNoWorkload ? "" : workloads[w].model->host});

  // Remote identities a resolved selector matches (kAnyIdentity alone for everything).
  std::unordered_map<const Resolved*, std::vector<uint32_t>> remote_memo;
  auto remotes = [&](const Resolved* r) -> const std::vector<uint32_t>& {
    if (auto it = remote_memo.find(r); it != remote_memo.end()) return it->second;
    std::vector<uint32_t> ids;
    if (r->all_outside && r->workloads.complement().none()) {
      ids.push_back(kAnyIdentity);
    } else {
      r->workloads.for_each([&](size_t i) { ids.push_back(workload_identity[i]); });
      if (r->all_outside) {
        ids.push_back(kWorldIdentity);
        for (const auto& [p, id] : prefix_identity) ids.push_back(id);
      } else {
        for (const auto& [c, id] : prefix_identity)
          for (const IpPrefix& p : r->cidrs)
            if (p.contains(c)) {
              ids.push_back(id);
              break;
            }
      }
      std::sort(ids.begin(), ids.end());
    }
    return remote_memo.emplace(r, std::move(ids)).first->second;
  };

  // Local workloads and their tables. Rules go round the outer loop, in evaluation order,
  // each appending to the tables of the local workloads its selectors pick (a resolved
  // selector's local workloads are found once): rules x local workloads bit tests cost
  // more than the tables themselves at 10k rules (gl-bench-policy).
  std::vector<size_t> local;
  for (size_t i = 0; i < workloads.size(); ++i)
    if (workloads[i].model->host == host) local.push_back(i);
  std::sort(local.begin(), local.end(), [&](size_t a, size_t b) {
    return workloads[a].model->name < workloads[b].model->name;
  });
  out.workloads.resize(local.size());
  for (size_t k = 0; k < local.size(); ++k) {
    const WorkloadView& w = workloads[local[k]];
    LocalWorkload& lw = out.workloads[k];
    lw.name = w.model->name;
    lw.port = w.model->port;
    lw.identity = workload_identity[local[k]];
    lw.mac = w.mac;
    lw.ips = w.ips;
    lw.conn_limit = state.settings.conn_limit;
    lw.egress_from_vm.default_action = state.settings.default_action;
    lw.ingress_to_vm.default_action = state.settings.default_action;
  }
  std::unordered_map<const Resolved*, std::vector<uint32_t>> local_memo;
  auto locals = [&](const Resolved* r) -> const std::vector<uint32_t>& {
    auto [it, fresh] = local_memo.try_emplace(r);
    if (fresh)
      for (size_t k = 0; k < local.size(); ++k)
        if (r->workloads.test(local[k])) it->second.push_back(static_cast<uint32_t>(k));
    return it->second;
  };
  for (const RuleView& v : rules) {
    auto emit = [&](PortPolicy& table, const Resolved* remote) {
      for (uint32_t id : remotes(remote))
        for (const PortRange& range : v.ports)
          table.entries.push_back({id, v.proto, range.lo, range.hi, v.rule->action, v.rule->log,
                                   v.rule->rule_id, static_cast<uint16_t>(v.rule->priority)});
    };
    for (uint32_t k : locals(v.from)) emit(out.workloads[k].egress_from_vm, v.to);
    for (uint32_t k : locals(v.to)) emit(out.workloads[k].ingress_to_vm, v.from);
  }
  for (LocalWorkload& lw : out.workloads) {
    build_index(lw.egress_from_vm);
    build_index(lw.ingress_to_vm);
  }
  return out;
}

uint32_t lookup_identity(const CompiledPolicy& policy, const IpAddress& address) {
  const IpcacheEntry* best = nullptr;
  for (const IpcacheEntry& e : policy.ipcache)
    if (e.prefix.contains(address) && (!best || e.prefix.length > best->prefix.length)) best = &e;
  return best ? best->identity : kWorldIdentity;
}

const IdentityInfo* find_identity(const CompiledPolicy& policy, uint32_t identity) {
  auto it =
      std::lower_bound(policy.identities.begin(), policy.identities.end(), identity,
                       [](const IdentityInfo& info, uint32_t id) { return info.identity < id; });
  if (it == policy.identities.end() || it->identity != identity) return nullptr;
  return &*it;
}

Verdict evaluate(const PortPolicy& policy, uint32_t remote_identity, uint8_t proto,
                 uint16_t dport) {
  constexpr uint32_t kNone = UINT32_MAX;
  uint32_t best = kNone;
  if (remote_identity != kAnyIdentity) {
    auto slice =
        std::lower_bound(policy.slices.begin(), policy.slices.end(), remote_identity,
                         [](const IdentitySlice& s, uint32_t id) { return s.identity < id; });
    if (slice != policy.slices.end() && slice->identity == remote_identity) {
      for (uint32_t i = slice->begin; i < slice->end; ++i) {
        uint32_t pos = policy.index[i];
        if (entry_matches(policy.entries[pos], remote_identity, proto, dport)) {
          best = pos;
          break;
        }
      }
    }
  }
  for (uint32_t pos : policy.wildcard) {
    if (pos >= best) break;
    if (entry_matches(policy.entries[pos], remote_identity, proto, dport)) {
      best = pos;
      break;
    }
  }
  if (best == kNone) return Verdict{policy.default_action, 0, false};
  return verdict_of(policy.entries[best]);
}

Verdict evaluate_linear(const PortPolicy& policy, uint32_t remote_identity, uint8_t proto,
                        uint16_t dport) {
  for (const PolicyEntry& e : policy.entries)
    if (entry_matches(e, remote_identity, proto, dport)) return verdict_of(e);
  return Verdict{policy.default_action, 0, false};
}

std::string format_compiled(const CompiledPolicy& policy) {
  std::string out;
  out += "policy generation " + std::to_string(policy.generation) + " host " + policy.host +
         " default " + std::string(action_name(policy.default_action)) + "\n";
  out += "identities:\n";
  for (const IdentityInfo& info : policy.identities) {
    out += "  " + std::to_string(info.identity) + " ";
    switch (info.kind) {
      case IdentityKind::kWorld:
        out += "world\n";
        break;
      case IdentityKind::kWorkload:
        out += "workload " + info.workload + " {" + info.key + "}\n";
        break;
      case IdentityKind::kCidr: {
        out += "cidr " + info.prefix.to_string() + " matched by";
        for (const IpPrefix& p : info.matched_by) out += " " + p.to_string();
        out += "\n";
        break;
      }
    }
  }
  out += "ipcache:\n";
  for (const IpcacheEntry& e : policy.ipcache) {
    out += "  " + e.prefix.to_string() + " -> " + identity_label(policy, e.identity);
    if (!e.host.empty()) out += " on " + e.host;
    out += "\n";
  }
  for (const LocalWorkload& w : policy.workloads) {
    out += "port " + w.port + " workload " + w.name + " identity " + std::to_string(w.identity) +
           " mac " + format_mac(w.mac) + " ips";
    for (const IpAddress& a : w.ips) out += " " + a.to_string();
    if (w.ips.empty()) out += " none";
    out += " conn_limit " + std::to_string(w.conn_limit) + "\n";
    format_port_policy(policy, w.egress_from_vm, "egress (from vm)", out);
    format_port_policy(policy, w.ingress_to_vm, "ingress (to vm)", out);
  }
  for (const std::string& w : policy.warnings) out += "warning: " + w + "\n";
  return out;
}

}  // namespace gl::policy
