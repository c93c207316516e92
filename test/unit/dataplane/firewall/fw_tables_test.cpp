// Tests of the firewall's compiled tables: the ipcache's longest-prefix match and the
// per-port policy's first-match evaluation (table-driven, and checked against a plain
// scan of the entries on random policies).
#include "dataplane/firewall/fw_tables.hpp"

#include <catch2/catch.hpp>

#include <arpa/inet.h>

#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace gl::fw {
namespace {

Prefix v4(const char* text, uint8_t len, uint32_t id) {
  Prefix p;
  p.family = 4;
  p.len = len;
  REQUIRE(inet_pton(AF_INET, text, p.addr) == 1);
  p.identity = id;
  return p;
}

Prefix v6(const char* text, uint8_t len, uint32_t id) {
  Prefix p;
  p.family = 6;
  p.len = len;
  REQUIRE(inet_pton(AF_INET6, text, p.addr) == 1);
  p.identity = id;
  return p;
}

uint32_t a4(const char* text) {
  uint32_t a;
  REQUIRE(inet_pton(AF_INET, text, &a) == 1);
  return a;
}

std::vector<uint8_t> a6(const char* text) {
  std::vector<uint8_t> a(16);
  REQUIRE(inet_pton(AF_INET6, text, a.data()) == 1);
  return a;
}

// A port whose to-VM policy is `rules` (rule id i allows TCP port i from anyone).
PortFirewall port_with(uint32_t port_no, std::vector<uint32_t> rules) {
  PortFirewall p;
  p.port_no = port_no;
  p.identity = 100 + port_no;
  std::vector<Entry> es;
  for (uint32_t id : rules)
    es.push_back(Entry{kAnyIdentity, 6, static_cast<uint16_t>(id), static_cast<uint16_t>(id),
                       Action::kAllow, false, id});
  p.to_vm = PolicyTable(Action::kDeny, es);
  return p;
}

std::unique_ptr<FwTables> version(uint64_t gen, std::vector<PortFirewall> ports,
                                  std::vector<Prefix> prefixes = {}) {
  auto t = std::make_unique<FwTables>();
  t->generation = gen;
  auto ipc = IpCache::build(prefixes);
  REQUIRE(ipc);
  t->ipcache = std::move(*ipc);
  t->hosts.assign(1, HostAddr{});
  t->ports = std::move(ports);
  return t;
}

// rule id -> slot, from the entries (what connections' labels hold).
std::map<uint32_t, uint32_t> slots_of(const FwTables& t) {
  std::map<uint32_t, uint32_t> m;
  for (const PortFirewall& p : t.ports)
    for (const Entry& e : p.to_vm.entries()) {
      m[e.rule_id] = e.slot;
      REQUIRE(t.rule_ids.at(e.slot) == e.rule_id);
    }
  return m;
}

}  // namespace

TEST_CASE("FwTables::index: a rule keeps its counter slot across versions, freed slots are reused",
          "[firewall]") {
  auto v1 = version(1, {port_with(1, {10, 11}), port_with(2, {20})});
  REQUIRE(v1->index());
  const auto s1 = slots_of(*v1);
  CHECK(v1->rule_ids.size() == 4);  // rule 0 and three rules
  // Version 2: a new rule ahead of the others on port 1, rule 11 gone, port 2 as before.
  auto v2 = version(2, {port_with(1, {30, 10}), port_with(2, {20})});
  REQUIRE(v2->index(v1.get()));
  const auto s2 = slots_of(*v2);
  CHECK(s2.at(10) == s1.at(10));
  CHECK(s2.at(20) == s1.at(20));
  CHECK(s2.at(30) == s1.at(11));  // the slot rule 11 left
  CHECK(v2->rule_ids.size() == 4);
  // Version 3: two rules fewer: the table shrinks at its end only.
  auto v3 = version(3, {port_with(1, {10})});
  REQUIRE(v3->index(v2.get()));
  CHECK(slots_of(*v3).at(10) == s1.at(10));
  CHECK(v3->rule_ids.size() == s1.at(10) + 1);
  // Many versions of changing rules: slots stay unique and the table no longer than the
  // most rules a version had.
  std::mt19937 rng(7);
  std::unique_ptr<FwTables> prev = std::move(v3);
  for (uint64_t g = 4; g < 200; ++g) {
    std::vector<uint32_t> a, b;
    for (uint32_t id = 1; id <= 40; ++id) {
      if (rng() % 3 == 0) a.push_back(id);
      if (rng() % 4 == 0) b.push_back(id + 100);
    }
    auto v = version(g, {port_with(1, a), port_with(2, b)});
    REQUIRE(v->index(prev.get()));
    const auto s = slots_of(*v);
    const auto before = slots_of(*prev);
    std::set<uint32_t> used;
    for (const auto& [id, slot] : s) {
      CHECK(used.insert(slot).second);
      if (auto it = before.find(id); it != before.end()) CHECK(slot == it->second);
    }
    CHECK(v->rule_ids.size() <= 81);
    prev = std::move(v);
  }
}

TEST_CASE("FwTables::index: a port keeps its generation while its policy and the globals stay",
          "[firewall]") {
  auto v1 = version(1, {port_with(1, {10}), port_with(2, {20})}, {v4("10.0.0.0", 8, 5)});
  REQUIRE(v1->index());
  CHECK(v1->port(1)->generation == 1);
  CHECK(v1->port(2)->generation == 1);
  // Port 2's rules change: only port 2 takes the new generation.
  auto v2 = version(2, {port_with(1, {10}), port_with(2, {20, 21})}, {v4("10.0.0.0", 8, 5)});
  REQUIRE(v2->index(v1.get()));
  CHECK(v2->port(1)->generation == 1);
  CHECK(v2->port(2)->generation == 2);
  // Its connection limit, addresses or identity are its policy too.
  auto v3 = version(3, {port_with(1, {10}), port_with(2, {20, 21})}, {v4("10.0.0.0", 8, 5)});
  v3->ports[0].conn_limit = 5;
  REQUIRE(v3->index(v2.get()));
  CHECK(v3->port(1)->generation == 3);
  CHECK(v3->port(2)->generation == 2);
  auto v4_ = version(4, v3->ports, {v4("10.0.0.0", 8, 5)});
  v4_->ports[1].ipv4 = {a4("10.0.0.2")};
  REQUIRE(v4_->index(v3.get()));
  CHECK(v4_->port(1)->generation == 3);
  CHECK(v4_->port(2)->generation == 4);
  // An identity the ports' rules do not name (they allow by port from anyone): no port.
  auto v5 = version(5, v4_->ports, {v4("10.0.0.0", 8, 6)});
  REQUIRE(v5->index(v4_.get()));
  CHECK(v5->port(1)->generation == 3);
  CHECK(v5->port(2)->generation == 4);
  // The hosts or the record flags: every port.
  auto v6 = version(6, v5->ports, {v4("10.0.0.0", 8, 6)});
  v6->record = kRecordAll;
  REQUIRE(v6->index(v5.get()));
  CHECK(v6->port(1)->generation == 6);
  auto v7 = version(7, v6->ports, {v4("10.0.0.0", 8, 6)});
  v7->record = kRecordAll;
  HostAddr h;
  h.family = 4;
  v7->hosts.push_back(h);
  REQUIRE(v7->index(v6.get()));
  CHECK(v7->port(2)->generation == 7);
  // A port that left and came back with the same policy starts afresh.
  auto v8 = version(8, {v7->ports[0]}, {v4("10.0.0.0", 8, 6)});
  v8->record = kRecordAll;
  v8->hosts = v7->hosts;
  REQUIRE(v8->index(v7.get()));
  CHECK(v8->port(1)->generation == 7);
  auto v9 = version(9, v7->ports, {v4("10.0.0.0", 8, 6)});
  v9->record = kRecordAll;
  v9->hosts = v7->hosts;
  REQUIRE(v9->index(v8.get()));
  CHECK(v9->port(1)->generation == 7);
  CHECK(v9->port(2)->generation == 9);
}

namespace {

// A port whose to-VM policy allows TCP 80 from each of `remotes`.
PortFirewall port_naming(uint32_t port_no, std::vector<uint32_t> remotes) {
  PortFirewall p;
  p.port_no = port_no;
  p.identity = 100 + port_no;
  std::vector<Entry> es;
  for (uint32_t r : remotes)
    es.push_back(Entry{r, 6, 80, 80, Action::kAllow, false, port_no * 100 + r});
  p.to_vm = PolicyTable(Action::kDeny, es);
  return p;
}

Prefix on_host(Prefix p, uint16_t host) {
  p.host = host;
  return p;
}

}  // namespace

TEST_CASE(
    "FwTables::index: an ipcache change re-checks the ports whose rules name an identity "
    "it changed, and every port when a workload moved between hosts",
    "[firewall]") {
  // Port 1 names web (10), port 2 db (20), port 3 the world, port 4 nobody (any remote).
  const std::vector<PortFirewall> ports = {port_naming(1, {10}), port_naming(2, {20}),
                                           port_naming(3, {kWorldIdentity}),
                                           port_naming(4, {kAnyIdentity})};
  std::vector<Prefix> ipc = {v4("10.0.0.0", 24, 10), v4("10.0.1.0", 24, 20),
                             on_host(v4("10.0.1.5", 32, 21), 2), v4("10.0.3.0", 24, 40)};
  uint64_t gen = 1;
  auto prev = version(gen, ports, ipc);
  prev->hosts.resize(3);
  REQUIRE(prev->index());
  // Installs `ipc` as the next version; the ports whose generation it bumped.
  auto next = [&]() {
    auto v = version(++gen, ports, ipc);
    v->hosts = prev->hosts;
    REQUIRE(v->index(prev.get()));
    std::set<uint32_t> bumped;
    for (const PortFirewall& p : v->ports)
      if (p.generation == gen) bumped.insert(p.port_no);
    prev = std::move(v);
    return bumped;
  };
  using S = std::set<uint32_t>;
  // A new workload where the ipcache knew nothing: the world's range changed.
  ipc.push_back(on_host(v4("10.0.2.7", 32, 30), 1));
  CHECK(next() == S{3});
  // One inside web's /24: web's range changed.
  ipc.push_back(on_host(v4("10.0.0.9", 32, 31), 1));
  CHECK(next() == S{1});
  // 21 leaves: its address falls back to db's /24.
  std::erase_if(ipc, [](const Prefix& p) { return p.identity == 21; });
  CHECK(next() == S{2});
  // db's range takes another identity.
  for (Prefix& p : ipc)
    if (p.identity == 20) p.identity = 22;
  CHECK(next() == S{2});
  // The same prefixes in another order, or the same prefix listed twice: nothing.
  std::reverse(ipc.begin(), ipc.end());
  ipc.push_back(ipc.front());
  CHECK(next() == S{});
  // A workload's address that had no host gets one, its identity the same: nothing.
  ipc.push_back(on_host(v4("10.0.3.3", 32, 40), 1));
  CHECK(next() == S{});
  // A workload moved to another host: every port (its connections meet its new host).
  for (Prefix& p : ipc)
    if (p.identity == 31) p.host = 2;
  CHECK(next() == S{1, 2, 3, 4});
  // IPv6: a range of web's where only the world was.
  ipc.push_back(v6("2001:db8::", 64, 10));
  CHECK(next() == S{1, 3});
  // Removed again: the same two.
  ipc.pop_back();
  CHECK(next() == S{1, 3});
  // A default route (/0) with an identity: the world's addresses become it.
  ipc.push_back(v4("0.0.0.0", 0, 50));
  CHECK(next() == S{3});
  // More ranges changed at once than it compares: every port.
  for (uint32_t i = 0; i <= FwTables::kMaxRangesCompared; ++i) {
    Prefix p = v4("172.16.0.0", 32, 60);
    p.addr[2] = static_cast<uint8_t>(i >> 8);
    p.addr[3] = static_cast<uint8_t>(i);
    ipc.push_back(p);
  }
  CHECK(next() == S{1, 2, 3, 4});
}

TEST_CASE("IpCache: the longest prefix decides; unknown addresses are the world", "[firewall]") {
  const std::vector<Prefix> ps = {
      v4("10.0.0.0", 8, 10),      v4("10.1.0.0", 16, 11),   v4("10.1.2.3", 32, 12),
      v4("0.0.0.0", 0, 13),       v6("2001:db8::", 32, 20), v6("2001:db8::7", 128, 21),
      v4("192.168.7.99", 24, 14),  // host bits beyond the length are ignored
  };
  auto c = IpCache::build(ps);
  REQUIRE(c.has_value());
  CHECK(c->size() == ps.size());
  struct Case {
    const char* addr;
    uint32_t want;
  };
  const Case cases[] = {
      {"10.1.2.3", 12}, {"10.1.2.4", 11},    {"10.2.0.1", 10},
      {"11.0.0.1", 13}, {"192.168.7.1", 14}, {"192.168.8.1", 13},
  };
  for (const Case& k : cases) {
    INFO(k.addr);
    CHECK(c->lookup4(a4(k.addr)) == k.want);
  }
  CHECK(c->lookup6(a6("2001:db8::7").data()) == 21);
  CHECK(c->lookup6(a6("2001:db8::8").data()) == 20);
  CHECK(c->lookup6(a6("2001:db9::1").data()) == kWorldIdentity);

  auto empty = IpCache::build({});
  REQUIRE(empty.has_value());
  CHECK(empty->lookup4(a4("10.1.2.3")) == kWorldIdentity);
}

TEST_CASE("IpCache: bad prefixes are refused with the entry named", "[firewall]") {
  Prefix bad_len = v4("10.0.0.0", 8, 2);
  bad_len.len = 33;
  auto r = IpCache::build(std::vector<Prefix>{v4("1.2.3.4", 32, 2), bad_len});
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().find("prefix 1") != std::string::npos);
  CHECK(r.error().find("length") != std::string::npos);

  Prefix fam = v4("10.0.0.0", 8, 2);
  fam.family = 5;
  r = IpCache::build(std::vector<Prefix>{fam});
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().find("family 5") != std::string::npos);

  r = IpCache::build(std::vector<Prefix>{v4("10.0.0.0", 8, 2), v4("10.9.9.9", 8, 3)});
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().find("two identities") != std::string::npos);
  // The same prefix with the same identity twice is harmless.
  CHECK(
      IpCache::build(std::vector<Prefix>{v4("10.0.0.0", 8, 2), v4("10.0.0.0", 8, 2)}).has_value());
}

TEST_CASE("PolicyTable: first match in order, any-remote entries interleaved, default",
          "[firewall]") {
  // web (id 5) may reach the db port 5432; everyone else is denied 5432 but may ping;
  // a reject for 23 ahead of everything; default deny.
  const std::vector<Entry> es = {
      {kAnyIdentity, 6, 23, 23, Action::kReject, true, 1},
      {5, 6, 5432, 5432, Action::kAllow, false, 2},
      {kAnyIdentity, 6, 5432, 5432, Action::kDeny, true, 3},
      {kAnyIdentity, 1, 0, 65535, Action::kAllow, false, 4},
      {7, 17, 53, 53, Action::kAllow, false, 5},
      {5, 0, 0, 65535, Action::kAllowEncrypted, false, 6},
  };
  const PolicyTable t(Action::kDeny, es);
  struct Case {
    const char* what;
    uint32_t remote;
    uint8_t proto;
    uint16_t dport;
    Action action;
    uint32_t rule;
  };
  const Case cases[] = {
      {"telnet from web: the reject ahead of web's allow", 5, 6, 23, Action::kReject, 1},
      {"web to postgres", 5, 6, 5432, Action::kAllow, 2},
      {"other to postgres", 9, 6, 5432, Action::kDeny, 3},
      {"world to postgres", kWorldIdentity, 6, 5432, Action::kDeny, 3},
      {"ping from anyone, the code in dport is ignored", 9, 1, 8, Action::kAllow, 4},
      {"dns from 7", 7, 17, 53, Action::kAllow, 5},
      {"dns from 8: default", 8, 17, 53, Action::kDeny, 0},
      {"web, other ports: its any-protocol entry", 5, 17, 9999, Action::kAllowEncrypted, 6},
      {"7 to postgres: the any-remote deny applies to 7 too", 7, 6, 5432, Action::kDeny, 3},
  };
  for (const Case& k : cases) {
    INFO(k.what);
    const Verdict v = t.lookup(k.remote, k.proto, k.dport);
    CHECK(v.action == k.action);
    CHECK(v.rule_id == k.rule);
  }
  CHECK(t.lookup(5, 6, 23).log);
  CHECK_FALSE(t.lookup(5, 6, 5432).log);

  const PolicyTable open(Action::kAllow, {});
  CHECK(open.lookup(3, 6, 80).action == Action::kAllow);
  CHECK(open.lookup(3, 6, 80).rule_id == 0);
}

TEST_CASE("PolicyTable: agrees with a plain scan of the entries on random policies", "[firewall]") {
  std::mt19937 rng(20261204);
  auto pick = [&](uint32_t n) { return static_cast<uint32_t>(rng() % n); };
  const uint8_t protos[] = {0, 1, 6, 17, 58, 132, 47};
  for (int round = 0; round < 200; ++round) {
    std::vector<Entry> es(pick(40));
    uint32_t id = 1;
    for (Entry& e : es) {
      e.remote = pick(3) == 0 ? kAnyIdentity : 1 + pick(6);
      e.proto = protos[pick(7)];
      e.port_lo = static_cast<uint16_t>(pick(100));
      e.port_hi = static_cast<uint16_t>(e.port_lo + pick(30));
      if (pick(4) == 0) e.port_lo = 0, e.port_hi = 65535;
      e.action = static_cast<Action>(pick(4));
      e.log = pick(2) == 0;
      e.rule_id = id++;
    }
    const Action def = pick(2) ? Action::kAllow : Action::kDeny;
    const PolicyTable t(def, es);
    for (int q = 0; q < 500; ++q) {
      const uint32_t remote = 1 + pick(8);
      const uint8_t proto = protos[1 + pick(6)];
      const uint16_t dport = static_cast<uint16_t>(pick(140));
      Verdict want{def, 0, false};
      const bool ports = proto == 6 || proto == 17 || proto == 132;
      for (const Entry& e : es) {
        if (e.remote != kAnyIdentity && e.remote != remote) continue;
        if (e.proto != 0 && e.proto != proto) continue;
        if (ports && (dport < e.port_lo || dport > e.port_hi)) continue;
        want = {e.action, e.rule_id, e.log};
        break;
      }
      const Verdict got = t.lookup(remote, proto, dport);
      INFO("round " << round << " remote " << remote << " proto " << int(proto) << " dport "
                    << dport);
      REQUIRE(got.action == want.action);
      REQUIRE(got.rule_id == want.rule_id);
      REQUIRE(got.log == want.log);
    }
  }
}

}  // namespace gl::fw
