// Randomized cross-check: a brute-force evaluator that works on the model itself (rule
// order, selector semantics, CIDR containment, ports) against lookup_identity() +
// evaluate() on the compiled tables. Fixed seeds: failures reproduce.
#include <algorithm>
#include <catch2/catch.hpp>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "control/policy/compiler.hpp"
#include "control/policy/selector.hpp"
#include "policy_builder.hpp"

using namespace gl::policy;
using namespace gl::policy::testing;

namespace {

// ---- the reference: semantics straight from the model --------------------------------

struct Endpoint {
  const Workload* workload = nullptr;  // nullptr: an outside address
  IpAddress address;
};

bool bit(const std::array<uint8_t, 16>& b, unsigned i) {
  return b[i / 8] >> (7 - i % 8) & 1;
}

bool in_prefix(const IpPrefix& p, const IpAddress& a) {
  if (p.address.family != a.family) return false;
  for (unsigned i = 0; i < p.length; ++i)
    if (bit(p.address.bytes, i) != bit(a.bytes, i)) return false;
  return true;
}

class Reference {
 public:
  explicit Reference(const DesiredState& s) : state_(s) {
    for (const Group& g : s.groups) groups_[g.name] = &g;
    for (const Workload& w : s.workloads)
      for (const std::string& text : w.ips) owner_[*IpAddress::parse(text)] = &w;
    for (const Rule& r : s.rules) order_.push_back(&r);
    std::sort(order_.begin(), order_.end(), [](const Rule* a, const Rule* b) {
      return a->priority != b->priority ? a->priority > b->priority : a->rule_id < b->rule_id;
    });
  }

  Endpoint endpoint(const IpAddress& a) const {
    auto it = owner_.find(a);
    return Endpoint{it == owner_.end() ? nullptr : it->second, a};
  }

  bool matches(const std::string& text, const Endpoint& e) const {
    Selector sel = *parse_selector(text);
    for (const Alternative& alt : sel.alternatives) {
      bool all = true;
      for (const Term& t : alt.terms) all = all && term(t, e);
      if (all) return true;
    }
    return false;
  }

  Verdict verdict(const Workload& local, Dir dir, const Endpoint& remote, uint8_t proto,
                  uint16_t dport) const {
    Endpoint self{&local, {}};
    for (const Rule* r : order_) {
      const std::string& mine = dir == Dir::kEgress ? r->from : r->to;
      const std::string& theirs = dir == Dir::kEgress ? r->to : r->from;
      if (!matches(mine, self) || !matches(theirs, remote)) continue;
      uint8_t rp = protocol(r->protocol);
      if (rp != 0 && rp != proto) continue;
      if ((proto == 6 || proto == 17 || proto == 132) && !r->ports.empty() &&
          !in_ports(r->ports, dport))
        continue;
      return Verdict{r->action, r->rule_id, r->log};
    }
    return Verdict{state_.settings.default_action, 0, false};
  }

 private:
  bool term(const Term& t, const Endpoint& e) const {
    const Workload* w = e.workload;
    switch (t.kind) {
      case TermKind::kAny:
        return true;
      case TermKind::kGroup: {
        const Group* g = groups_.at(t.key);
        if (w && std::find(g->members.begin(), g->members.end(), w->name) != g->members.end())
          return true;
        return matches(g->selector, e);
      }
      case TermKind::kWorkload:
        return w && w->name == t.key;
      case TermKind::kCidr:
        return !w && in_prefix(t.prefix, e.address);
      case TermKind::kLabelEquals:
        return w && w->labels.contains(t.key) && w->labels.at(t.key) == t.value;
      case TermKind::kLabelNotEquals:
        return w && !(w->labels.contains(t.key) && w->labels.at(t.key) == t.value);
      case TermKind::kHasLabel:
        return w && w->labels.contains(t.key);
      case TermKind::kLacksLabel:
        return w && !w->labels.contains(t.key);
    }
    return false;
  }

  static uint8_t protocol(const std::string& p) {
    static const std::map<std::string, uint8_t> kNames = {
        {"ip", 0}, {"icmp", 1}, {"tcp", 6}, {"udp", 17}, {"icmp6", 58}, {"sctp", 132}};
    if (auto it = kNames.find(p); it != kNames.end()) return it->second;
    return static_cast<uint8_t>(std::stoi(p));
  }

  static bool in_ports(const std::string& list, uint16_t port) {
    size_t pos = 0;
    while (pos <= list.size()) {
      size_t comma = list.find(',', pos);
      std::string item =
          list.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
      size_t dash = item.find('-');
      int lo = std::stoi(item.substr(0, dash));
      int hi = dash == std::string::npos ? lo : std::stoi(item.substr(dash + 1));
      if (port >= lo && port <= hi) return true;
      if (comma == std::string::npos) break;
      pos = comma + 1;
    }
    return false;
  }

  const DesiredState& state_;
  std::map<std::string, const Group*> groups_;
  std::map<IpAddress, const Workload*> owner_;
  std::vector<const Rule*> order_;
};

// ---- random desired states --------------------------------------------------------------

class Generator {
 public:
  explicit Generator(uint32_t seed) : rng_(seed) {}

  int below(int n) { return static_cast<int>(rng_() % static_cast<uint32_t>(n)); }
  bool chance(int percent) { return below(100) < percent; }
  template <typename T>
  const T& pick(const std::vector<T>& v) {
    return v[static_cast<size_t>(below(static_cast<int>(v.size())))];
  }

  std::string address() {
    switch (below(8)) {
      case 0:
        return "10.0." + std::to_string(below(4)) + "." + std::to_string(1 + below(6));
      case 1:
        return "10.1.2." + std::to_string(1 + below(8));
      case 2:
        return "10.1.3." + std::to_string(1 + below(8));
      case 3:
        return "192.0.2." + std::to_string(120 + below(16));
      case 4:
        return "2001:db8:1::" + std::to_string(1 + below(8));
      case 5:
        return "2001:db8:2::" + std::to_string(1 + below(8));
      case 6:
        return pick(std::vector<std::string>{"10.2.0.1", "11.0.0.1", "198.51.100.7", "2001:db9::1",
                                             "10.0.5.5", "::ffff:10.1.2.3"});
      default:
        return "10.0.0." + std::to_string(1 + below(4));
    }
  }

  std::string label_term() {
    static const std::vector<std::string> kKeys = {"app", "env", "tier", "q"};
    static const std::map<std::string, std::vector<std::string>> kValues = {
        {"app", {"web", "db", "cache"}},
        {"env", {"prod", "dev"}},
        {"tier", {"1", "2", "3"}},
        {"q", {"1"}}};
    const std::string& k = pick(kKeys);
    switch (below(4)) {
      case 0:
        return k + "=" + pick(kValues.at(k));
      case 1:
        return k + "!=" + pick(kValues.at(k));
      case 2:
        return k;
      default:
        return "!" + k;
    }
  }

  std::string cidr() {
    static const std::vector<std::string> kCidrs = {
        "10.0.0.0/8",   "10.1.0.0/16",    "10.1.2.0/24",   "10.0.0.0/15",     "0.0.0.0/0",
        "192.0.2.0/24", "192.0.2.128/25", "2001:db8::/32", "2001:db8:1::/48", "::/0",
        "10.1.2.4/30",  "10.0.0.1",       "10.1.3.0/24",   "2001:db8:2::/64"};
    return pick(kCidrs);
  }

  // groups: the names a selector may reference; workloads: likewise.
  std::string selector(const std::vector<std::string>& groups,
                       const std::vector<std::string>& workloads) {
    if (chance(8)) return "any";
    std::string out;
    int alternatives = 1 + (chance(35) ? 1 + below(2) : 0);
    for (int a = 0; a < alternatives; ++a) {
      if (a) out += chance(50) ? "|" : " | ";
      if (chance(20)) {
        out += chance(15) ? "any" : cidr();
        continue;
      }
      int terms = chance(60) ? 1 : 2 + below(2);
      for (int t = 0; t < terms; ++t) {
        if (t) out += chance(50) ? "&" : " & ";
        int kind = below(10);
        if (kind <= 2 && !groups.empty())
          out += "group:" + pick(groups);
        else if (kind == 1 && !workloads.empty())
          out += "workload:" + pick(workloads);
        else
          out += label_term();
      }
    }
    return out;
  }

  DesiredState state() {
    DesiredState s;
    s.settings.default_action = chance(50) ? Action::kDeny : Action::kAllow;
    s.settings.conn_limit = static_cast<uint32_t>(below(3)) * 100;
    std::set<std::string> used;
    std::vector<std::string> names;
    int n = 1 + below(14);
    for (int i = 0; i < n; ++i) {
      Workload w;
      w.name = "w" + std::to_string(i);
      w.host = "hv" + std::to_string(1 + below(3));
      w.port = "vnic-" + w.name;
      char mac[18];
      std::snprintf(mac, sizeof mac, "02:00:00:00:00:%02x", i + 1);
      w.mac = mac;
      int ips = below(3);  // a workload may have no address
      for (int k = 0; k < ips; ++k) {
        std::string a = address();
        std::string canon = IpAddress::parse(a)->to_string();
        if (used.insert(canon).second) w.ips.push_back(a);
      }
      if (chance(80)) w.labels["app"] = pick(std::vector<std::string>{"web", "db", "cache"});
      if (chance(60)) w.labels["env"] = pick(std::vector<std::string>{"prod", "dev"});
      if (chance(50)) w.labels["tier"] = std::to_string(1 + below(3));
      if (chance(20)) w.labels["q"] = "1";
      names.push_back(w.name);
      s.workloads.push_back(std::move(w));
    }
    std::vector<std::string> groups;
    int ng = below(5);
    for (int i = 0; i < ng; ++i) {
      Group g;
      g.name = "g" + std::to_string(i);
      g.selector = chance(15) ? "" : selector(groups, names);  // earlier groups only: no cycle
      for (const std::string& w : names)
        if (chance(15)) g.members.push_back(w);
      groups.push_back(g.name);
      s.groups.push_back(std::move(g));
    }
    std::set<uint32_t> ids;
    int nr = below(21);
    for (int i = 0; i < nr; ++i) {
      Rule r;
      do r.rule_id = 1 + static_cast<uint32_t>(below(60));
      while (!ids.insert(r.rule_id).second);
      r.priority =
          static_cast<uint32_t>(pick(std::vector<int>{0, 10, 10, 20, 20, 30, 65535, below(65536)}));
      r.from = selector(groups, names);
      r.to = selector(groups, names);
      r.protocol = pick(std::vector<std::string>{"ip", "ip", "ip", "tcp", "tcp", "udp", "icmp",
                                                 "icmp6", "sctp", "47", "6"});
      if (*parse_protocol(r.protocol) == 6 || *parse_protocol(r.protocol) == 17 ||
          *parse_protocol(r.protocol) == 132) {
        int np = chance(50) ? 0 : 1 + below(2);
        for (int k = 0; k < np; ++k) {
          if (!r.ports.empty()) r.ports += ",";
          int lo = pick(std::vector<int>{22, 53, 80, 443, 5432, 8000, below(65536)});
          r.ports += std::to_string(lo);
          if (chance(30)) r.ports += "-" + std::to_string(lo + below(65536 - lo));
        }
      }
      r.action = static_cast<Action>(below(4));
      r.log = chance(30);
      s.rules.push_back(std::move(r));
    }
    return s;
  }

 private:
  std::mt19937 rng_;
};

}  // namespace

TEST_CASE("random: compiled tables agree with the model's semantics", "[policy][random]") {
  Generator gen(0x601d1);
  int cases = 0, mismatches = 0, states = 0;
  // Coverage: how often a rule (not the default) decided, per kind of remote identity.
  int by_rule[3] = {0, 0, 0};  // world, workload, cidr
  int by_default = 0;
  for (int round = 0; round < 400; ++round) {
    DesiredState s = gen.state();
    auto valid = validate(s);
    if (!valid) FAIL(valid.error().text());
    Reference ref(s);
    ++states;
    for (const char* host : {"hv1", "hv2", "hv3"}) {
      CompiledPolicy c = must_compile(s, host);
      // Every workload address resolves to its workload's identity.
      for (const Workload& w : s.workloads) {
        auto id =
            c.allocator.find(IdentityKind::kWorkload, workload_identity_key(w.name, w.labels));
        REQUIRE(id);
        for (const std::string& a : w.ips) CHECK(lookup_identity(c, ip(a)) == *id);
      }
      for (const LocalWorkload& lw : c.workloads) {
        const Workload* model = nullptr;
        for (const Workload& w : s.workloads)
          if (w.name == lw.name) model = &w;
        REQUIRE(model);
        CHECK(model->host == host);
        for (int k = 0; k < 60; ++k) {
          Dir dir = gen.chance(50) ? Dir::kEgress : Dir::kIngress;
          IpAddress remote;
          if (gen.chance(60) && !s.workloads.empty()) {
            const Workload& w = gen.pick(s.workloads);
            remote = w.ips.empty() ? ip(gen.address()) : ip(gen.pick(w.ips));
          } else {
            remote = ip(gen.address());
          }
          uint8_t proto =
              static_cast<uint8_t>(gen.pick(std::vector<int>{6, 6, 17, 132, 1, 58, 47, 50}));
          uint16_t dport = static_cast<uint16_t>(
              gen.pick(std::vector<int>{22, 53, 80, 443, 5432, 8000, 8080, gen.below(65536)}));
          Verdict expected = ref.verdict(*model, dir, ref.endpoint(remote), proto, dport);
          const PortPolicy& p = dir == Dir::kEgress ? lw.egress_from_vm : lw.ingress_to_vm;
          uint32_t identity = lookup_identity(c, remote);
          Verdict got = evaluate(p, identity, proto, dport);
          Verdict linear = evaluate_linear(p, identity, proto, dport);
          ++cases;
          if (expected.rule_id == 0) {
            ++by_default;
          } else if (const IdentityInfo* info = find_identity(c, identity)) {
            ++by_rule[static_cast<int>(info->kind)];
          }
          if (got != expected || linear != expected) {
            if (++mismatches <= 3) {
              std::string rules;
              for (const Rule& r : s.rules) rules += format_rule(r) + "\n";
              for (const Group& g : s.groups) rules += "group " + g.name + ": " + g.selector + "\n";
              INFO("round " << round << " workload " << lw.name << " "
                            << (dir == Dir::kEgress ? "egress to " : "ingress from ")
                            << remote.to_string() << " proto " << int(proto) << " dport " << dport
                            << "\nexpected " << describe(expected) << " got " << describe(got)
                            << " linear " << describe(linear) << "\n"
                            << rules << format_compiled(c));
              CHECK(false);
            }
          }
        }
      }
    }
  }
  INFO(states << " states, " << cases << " packets");
  CHECK(cases > 20000);
  CHECK(by_default > cases / 10);
  CHECK(by_rule[0] > cases / 100);  // world, through "any"
  CHECK(by_rule[1] > cases / 5);    // workloads
  CHECK(by_rule[2] > cases / 50);   // CIDR identities
  CHECK(mismatches == 0);
}

TEST_CASE("random: identities stay stable through random changes", "[policy][random]") {
  Generator gen(0x1d5);
  DesiredState s = gen.state();
  CompiledPolicy prev = must_compile(s, "hv1");
  std::map<uint32_t, std::string> meaning;  // every number ever given -> its key
  auto record = [&](const CompiledPolicy& c) {
    for (const IdentityInfo& i : c.identities) {
      auto [it, fresh] = meaning.try_emplace(i.identity, i.key);
      INFO("identity " << i.identity);
      CHECK(it->second == i.key);  // a number never changes meaning
    }
  };
  record(prev);
  for (int step = 0; step < 300; ++step) {
    DesiredState next = s;
    switch (gen.below(4)) {
      case 0:  // a new random state's rules (new prefixes, selectors)
        next.rules = gen.state().rules;
        next.groups.clear();
        for (Rule& r : next.rules) {
          if (r.from.find("group:") != std::string::npos) r.from = "any";
          if (r.to.find("group:") != std::string::npos) r.to = "any";
          for (std::string* sel : {&r.from, &r.to})
            if (sel->find("workload:") != std::string::npos) *sel = "app=web";
        }
        break;
      case 1:  // relabel one workload
        if (!next.workloads.empty()) {
          size_t i = static_cast<size_t>(gen.below(static_cast<int>(next.workloads.size())));
          next.workloads[i].labels["env"] = gen.chance(50) ? "prod" : "dev";
        }
        break;
      case 2:  // remove one workload (and what refers to it)
        if (next.workloads.size() > 1) {
          size_t victim = static_cast<size_t>(gen.below(static_cast<int>(next.workloads.size())));
          std::string name = next.workloads[victim].name;
          next.workloads.erase(next.workloads.begin() + static_cast<long>(victim));
          for (Group& g : next.groups) std::erase(g.members, name);
          for (Group& g : next.groups)
            if (g.selector.find("workload:" + name) != std::string::npos) g.selector = "";
          for (Rule& r : next.rules)
            for (std::string* sel : {&r.from, &r.to})
              if (sel->find("workload:" + name) != std::string::npos) *sel = "any";
        }
        break;
      default:  // add a workload back or anew
        if (next.workloads.size() < 20) {
          Workload w;
          w.name = "n" + std::to_string(gen.below(8));
          bool exists = false;
          for (const Workload& o : next.workloads) exists = exists || o.name == w.name;
          if (exists) break;
          w.host = "hv1";
          w.port = "vnic-" + w.name;
          w.mac = "02:00:00:00:01:0" + std::to_string(gen.below(8));
          w.labels["app"] = "web";
          next.workloads.push_back(std::move(w));
          if (!validate(next)) next = s;  // a MAC clash: skip this step
        }
        break;
    }
    auto c = compile(next, "hv1", static_cast<uint64_t>(step + 2), prev.allocator);
    if (!c) FAIL(c.error().text());
    // Every key in both compilations keeps its number.
    for (const IdentityInfo& before : prev.identities)
      for (const IdentityInfo& after : c->identities)
        if (before.key == after.key && before.kind == after.kind)
          CHECK(before.identity == after.identity);
    record(*c);
    prev = std::move(*c);
    s = std::move(next);
  }
  CHECK(meaning.size() > 10);
}
