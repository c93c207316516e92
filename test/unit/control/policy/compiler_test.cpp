#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "control/policy/compiler.hpp"
#include "policy_builder.hpp"

using namespace gl::policy;
using namespace gl::policy::testing;

namespace {

constexpr uint8_t kTcp = 6, kUdp = 17, kIcmp = 1, kIcmp6 = 58, kGre = 47;

// Four workloads on two hosts: web1, db1 on hv1; web2, db2 on hv2.
StateBuilder two_tier() {
  StateBuilder b;
  b.workload("web1", "hv1", {"10.0.0.1", "2001:db8::1"}, {{"app", "web"}, {"env", "prod"}})
      .workload("db1", "hv1", {"10.0.1.1"}, {{"app", "db"}, {"env", "prod"}})
      .workload("web2", "hv2", {"10.0.0.2"}, {{"app", "web"}, {"env", "dev"}})
      .workload("db2", "hv2", {"10.0.1.2"}, {{"app", "db"}, {"env", "dev"}});
  return b;
}

struct PacketCase {
  const char* description;
  const char* workload;  // local
  Dir dir;
  const char* remote;  // address
  uint8_t proto;
  uint16_t dport;
  const char* expected;  // describe(verdict)
};

void check_cases(const CompiledPolicy& c, std::initializer_list<PacketCase> cases) {
  for (const PacketCase& p : cases) {
    INFO(p.description << ": " << p.workload << (p.dir == Dir::kEgress ? " -> " : " <- ")
                       << p.remote << " proto " << int(p.proto) << " dport " << p.dport);
    CHECK(describe(verdict(c, p.workload, p.dir, p.remote, p.proto, p.dport)) == p.expected);
  }
}

}  // namespace

TEST_CASE("compiler: the issue's web -> db example, both ends", "[policy][compiler]") {
  StateBuilder b = two_tier();
  b.rule("id=1,priority=100,from=app=web,to=app=db,tcp,tp_dst=5432,actions=allow,log");
  CompiledPolicy hv1 = must_compile(b.state(), "hv1");
  check_cases(
      hv1,
      {
          {"web to local db", "web1", Dir::kEgress, "10.0.1.1", kTcp, 5432, "allow/1/log"},
          {"web to remote db", "web1", Dir::kEgress, "10.0.1.2", kTcp, 5432, "allow/1/log"},
          {"web from its v6 address too", "db1", Dir::kIngress, "2001:db8::1", kTcp, 5432,
           "allow/1/log"},
          {"wrong port", "web1", Dir::kEgress, "10.0.1.1", kTcp, 5433, "deny/0"},
          {"wrong protocol", "web1", Dir::kEgress, "10.0.1.1", kUdp, 5432, "deny/0"},
          {"db ingress from local web", "db1", Dir::kIngress, "10.0.0.1", kTcp, 5432,
           "allow/1/log"},
          {"db ingress from remote web", "db1", Dir::kIngress, "10.0.0.2", kTcp, 5432,
           "allow/1/log"},
          {"db to web denied", "db1", Dir::kEgress, "10.0.0.1", kTcp, 5432, "deny/0"},
          {"web ingress from db denied", "web1", Dir::kIngress, "10.0.1.1", kTcp, 5432, "deny/0"},
          {"web to web denied", "web1", Dir::kEgress, "10.0.0.2", kTcp, 5432, "deny/0"},
          {"outside world denied", "db1", Dir::kIngress, "198.51.100.1", kTcp, 5432, "deny/0"},
      });
  // The rule is on both local ports, once each.
  CHECK(local(hv1, "web1").egress_from_vm.entries.size() == 2);  // db1, db2
  CHECK(local(hv1, "db1").ingress_to_vm.entries.size() == 2);    // web1, web2
  CHECK(local(hv1, "web1").ingress_to_vm.entries.empty());
  CHECK(local(hv1, "db1").egress_from_vm.entries.empty());
  // The other host compiles its own workloads only.
  CompiledPolicy hv2 = must_compile(b.state(), "hv2");
  REQUIRE(hv2.workloads.size() == 2);
  CHECK(hv2.workloads[0].name == "db2");
  CHECK(hv2.workloads[1].name == "web2");
  check_cases(hv2,
              {{"remote web to db2", "db2", Dir::kIngress, "10.0.0.1", kTcp, 5432, "allow/1/log"}});
  CompiledPolicy none = must_compile(b.state(), "hv3");
  CHECK(none.workloads.empty());
  CHECK(none.ipcache.size() == 5);  // every workload address of the cluster
}

TEST_CASE("compiler: evaluation order (priority, then rule id), default action",
          "[policy][compiler]") {
  struct OrderCase {
    const char* description;
    Action default_action;
    std::vector<const char*> rules;
    const char* expected;  // web1 -> db1 tcp/5432
  };
  const OrderCase cases[] = {
      {"nothing matches: default deny", Action::kDeny, {}, "deny/0"},
      {"nothing matches: default allow", Action::kAllow, {}, "allow/0"},
      {"a deny overrides a lower-priority allow",
       Action::kAllow,
       {"id=1,priority=100,from=app=web,to=app=db,actions=allow",
        "id=2,priority=200,from=any,to=app=db,tcp,actions=deny"},
       "deny/2"},
      {"an allow overrides a lower-priority deny",
       Action::kDeny,
       {"id=1,priority=100,from=any,to=any,actions=deny",
        "id=2,priority=101,from=app=web,to=app=db,tcp,tp_dst=5432,actions=allow"},
       "allow/2"},
      {"equal priority: the lower rule id first",
       Action::kDeny,
       {"id=9,priority=50,from=app=web,to=app=db,actions=allow",
        "id=5,priority=50,from=app=web,to=app=db,actions=reject"},
       "reject/5"},
      {"equal priority: the lower rule id first (other way)",
       Action::kDeny,
       {"id=5,priority=50,from=app=web,to=app=db,actions=allow-encrypted,log",
        "id=9,priority=50,from=app=web,to=app=db,actions=deny"},
       "allow-encrypted/5/log"},
      {"a higher priority rule that does not match is skipped",
       Action::kDeny,
       {"id=1,priority=100,from=app=web,to=app=db,actions=allow",
        "id=2,priority=200,from=app=web,to=app=db,udp,actions=deny",
        "id=3,priority=300,from=app=db,to=any,actions=deny",
        "id=4,priority=400,from=app=web,to=app=db,tcp,tp_dst=1-5431,tp_dst=5433-65535,"
        "actions=deny"},
       "allow/1"},
      {"priority 0 still beats the default",
       Action::kDeny,
       {"id=1,priority=0,from=any,to=any,actions=allow"},
       "allow/1"},
      {"port ranges",
       Action::kDeny,
       {"id=1,priority=1,from=any,to=any,tcp,tp_dst=5000-5432,actions=allow",
        "id=2,priority=2,from=any,to=any,tcp,tp_dst=5433-6000,actions=deny"},
       "allow/1"},
  };
  for (const OrderCase& c : cases) {
    INFO(c.description);
    StateBuilder b = two_tier();
    b.default_action(c.default_action);
    for (const char* r : c.rules) b.rule(r);
    CompiledPolicy hv1 = must_compile(b.state(), "hv1");
    CHECK(describe(verdict(hv1, "web1", Dir::kEgress, "10.0.1.1", kTcp, 5432)) == c.expected);
    CHECK(describe(verdict(hv1, "db1", Dir::kIngress, "10.0.0.1", kTcp, 5432)) == c.expected);
  }
}

TEST_CASE("compiler: entries are in evaluation order, expanded per identity and range",
          "[policy][compiler]") {
  StateBuilder b = two_tier();
  b.rule("id=7,priority=10,from=app=web,to=app=db,tcp,tp_dst=80,tp_dst=443,actions=allow")
      .rule("id=3,priority=10,from=app=web,to=10.9.0.0/16,udp,actions=deny,log")
      .rule("id=2,priority=20,from=any,to=any,icmp,actions=allow");
  CompiledPolicy c = must_compile(b.state(), "hv1");
  const PortPolicy& p = local(c, "web1").egress_from_vm;
  // Entries of one rule are in identity order: db2's key (env=dev) sorts before db1's.
  const uint32_t db1 = lookup_identity(c, ip("10.0.1.2"));
  const uint32_t db2 = lookup_identity(c, ip("10.0.1.1"));
  const uint32_t cidr = lookup_identity(c, ip("10.9.1.1"));
  REQUIRE(db1 < db2);
  CHECK(cidr == kFirstCidrIdentity);
  const std::vector<PolicyEntry> expected = {
      {kAnyIdentity, kIcmp, 0, 65535, Action::kAllow, false, 2, 20},
      {cidr, kUdp, 0, 65535, Action::kDeny, true, 3, 10},
      {db1, kTcp, 80, 80, Action::kAllow, false, 7, 10},
      {db1, kTcp, 443, 443, Action::kAllow, false, 7, 10},
      {db2, kTcp, 80, 80, Action::kAllow, false, 7, 10},
      {db2, kTcp, 443, 443, Action::kAllow, false, 7, 10},
  };
  CHECK(p.entries == expected);
  CHECK(p.wildcard == std::vector<uint32_t>{0});
  REQUIRE(p.slices.size() == 3);
  CHECK(p.slices[0].identity == db1);
  CHECK(p.slices[2].identity == cidr);
  CHECK(std::vector<uint32_t>(p.index.begin() + p.slices[0].begin,
                              p.index.begin() + p.slices[0].end) == std::vector<uint32_t>{2, 3});
  CHECK(p.default_action == Action::kDeny);
}

TEST_CASE("compiler: ICMP and port-less protocols ignore the port", "[policy][compiler]") {
  StateBuilder b = two_tier();
  b.rule("id=1,priority=10,from=any,to=app=db,icmp,actions=allow")
      .rule("id=2,priority=10,from=any,to=app=db,icmp6,actions=reject")
      .rule("id=3,priority=10,from=any,to=app=db,proto=47,actions=allow,log")
      .rule("id=4,priority=5,from=any,to=app=db,actions=deny,log");
  CompiledPolicy c = must_compile(b.state(), "hv1");
  check_cases(
      c, {
             {"icmp, any port value", "db1", Dir::kIngress, "10.0.0.1", kIcmp, 0, "allow/1"},
             {"icmp ignores the port", "db1", Dir::kIngress, "10.0.0.1", kIcmp, 771, "allow/1"},
             {"icmp6", "db1", Dir::kIngress, "2001:db8::1", kIcmp6, 0, "reject/2"},
             {"gre", "db1", Dir::kIngress, "198.51.100.7", kGre, 0, "allow/3/log"},
             {"tcp falls to the ip rule", "db1", Dir::kIngress, "10.0.0.1", kTcp, 22, "deny/4/log"},
         });
}

TEST_CASE("compiler: CIDR identities, longest-prefix match, nested prefixes",
          "[policy][compiler]") {
  StateBuilder b = two_tier();
  b.workload("inside", "hv2", {"10.1.2.50"}, {{"app", "web"}})
      .rule("id=1,priority=10,from=10.0.0.0/8,to=app=db,tcp,tp_dst=5432,actions=allow")
      .rule("id=2,priority=20,from=10.1.0.0/16,to=app=db,actions=deny")
      .rule("id=3,priority=30,from=10.1.2.0/24,to=app=db,tcp,actions=allow,log")
      .rule("id=4,priority=5,from=2001:db8:100::/40,to=app=db,actions=allow")
      .rule("id=5,priority=1,from=any,to=app=db,udp,tp_dst=53,actions=allow");
  CompiledPolicy c = must_compile(b.state(), "hv1");

  const uint32_t id8 = lookup_identity(c, ip("10.200.0.1"));
  const uint32_t id16 = lookup_identity(c, ip("10.1.200.1"));
  const uint32_t id24 = lookup_identity(c, ip("10.1.2.3"));
  CHECK(lookup_identity(c, ip("11.0.0.1")) == kWorldIdentity);
  CHECK(lookup_identity(c, ip("2001:db9::1")) == kWorldIdentity);
  REQUIRE(find_identity(c, id24));
  CHECK(find_identity(c, id24)->kind == IdentityKind::kCidr);
  CHECK(find_identity(c, id24)->prefix.to_string() == "10.1.2.0/24");
  // The /24 identity carries every rule CIDR that contains it.
  std::vector<std::string> carried;
  for (const IpPrefix& p : find_identity(c, id24)->matched_by) carried.push_back(p.to_string());
  CHECK(carried == std::vector<std::string>{"10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24"});
  CHECK(find_identity(c, id8)->matched_by.size() == 1);
  CHECK(find_identity(c, id16)->matched_by.size() == 2);
  // The workload inside all three prefixes is itself, never a CIDR.
  const uint32_t inside = lookup_identity(c, ip("10.1.2.50"));
  CHECK(find_identity(c, inside)->kind == IdentityKind::kWorkload);
  CHECK(find_identity(c, inside)->workload == "inside");

  check_cases(
      c,
      {
          {"/24 rule first", "db1", Dir::kIngress, "10.1.2.3", kTcp, 80, "allow/3/log"},
          {"/24 rule is tcp only: /16 deny next", "db1", Dir::kIngress, "10.1.2.3", kUdp, 80,
           "deny/2"},
          {"/16 deny over the /8 allow", "db1", Dir::kIngress, "10.1.200.1", kTcp, 5432, "deny/2"},
          {"an address whose LPM is /16 still matches the /8 rule", "db1", Dir::kIngress,
           "10.200.0.1", kTcp, 5432, "allow/1"},
          {"outside all prefixes: world, only any", "db1", Dir::kIngress, "11.0.0.1", kTcp, 5432,
           "deny/0"},
          {"world matches any", "db1", Dir::kIngress, "11.0.0.1", kUdp, 53, "allow/5"},
          {"CIDRs never match workloads (inside 10.1.2.0/24)", "db1", Dir::kIngress, "10.1.2.50",
           kTcp, 5432, "deny/0"},
          {"nor workloads of this host", "db1", Dir::kIngress, "10.0.0.1", kTcp, 5432, "deny/0"},
          {"but any matches workloads", "db1", Dir::kIngress, "10.1.2.50", kUdp, 53, "allow/5"},
          {"ipv6 prefix", "db1", Dir::kIngress, "2001:db8:100::9", kTcp, 1, "allow/4"},
          {"ipv6 outside", "db1", Dir::kIngress, "2001:db8:200::9", kTcp, 1, "deny/0"},
          {"ipv4-mapped ipv6 is not ipv4", "db1", Dir::kIngress, "::ffff:10.1.2.3", kTcp, 80,
           "deny/0"},
      });
}

TEST_CASE("compiler: a CIDR that is a workload's address selects nothing", "[policy][compiler]") {
  StateBuilder b = two_tier();
  b.rule("id=1,priority=10,from=10.0.0.1,to=app=db,actions=allow")
      .rule("id=2,priority=10,from=10.0.0.0/31,to=app=db,actions=allow");
  CompiledPolicy c = must_compile(b.state(), "hv1");
  CHECK(c.warnings ==
        std::vector<std::string>{"rule 1: from: 10.0.0.1 is the address of workload web1; CIDR "
                                 "selectors never match workloads"});
  check_cases(
      c, {
             {"the workload's own address", "db1", Dir::kIngress, "10.0.0.1", kTcp, 1, "deny/0"},
             {"its neighbour in the /31 is outside", "db1", Dir::kIngress, "10.0.0.0", kTcp, 1,
              "allow/2"},
         });
  for (const IdentityInfo& info : c.identities)
    if (info.kind == IdentityKind::kCidr) CHECK(info.prefix.to_string() == "10.0.0.0/31");
}

TEST_CASE("compiler: groups, members, nesting, conjunctions", "[policy][compiler]") {
  StateBuilder b = two_tier();
  b.workload("bastion", "hv2", {"10.0.9.9"}, {{"role", "bastion"}})
      .workload("stray", "hv2", {"10.0.9.10"}, {})
      .group("dbs", "app=db", {"stray"})
      .group("admin", "workload:bastion|192.0.2.0/24")
      .group("prod-dbs", "group:dbs & env=prod")
      .group("empty", "")
      .group("wide", "group:admin|10.0.0.0/8")
      .group("narrow", "group:wide&group:admin")  // bastion and 192.0.2.0/24
      .rule("id=1,priority=10,from=group:admin,to=group:dbs,tcp,tp_dst=22,actions=allow")
      .rule("id=2,priority=20,from=any,to=group:prod-dbs,tcp,tp_dst=22,actions=reject")
      .rule("id=3,priority=30,from=group:empty,to=any,actions=deny")
      .rule("id=4,priority=5,from=group:narrow,to=app=web,tcp,actions=allow")
      .rule("id=5,priority=4,from=group:wide,to=app=web,tcp,actions=reject");
  CompiledPolicy hv1 = must_compile(b.state(), "hv1");
  CompiledPolicy hv2 = must_compile(b.state(), "hv2");
  check_cases(
      hv1, {
               {"prod db: the reject wins", "db1", Dir::kIngress, "10.0.9.9", kTcp, 22, "reject/2"},
               {"web1 <- bastion", "web1", Dir::kIngress, "10.0.9.9", kTcp, 1, "allow/4"},
               {"web1 <- 192.0.2.1", "web1", Dir::kIngress, "192.0.2.1", kTcp, 1, "allow/4"},
               {"web1 <- 10.200.0.1 (wide only)", "web1", Dir::kIngress, "10.200.0.1", kTcp, 1,
                "reject/5"},
               {"web1 <- 198.51.100.1", "web1", Dir::kIngress, "198.51.100.1", kTcp, 1, "deny/0"},
           });
  check_cases(hv2, {
                       {"dev db: the allow", "db2", Dir::kIngress, "10.0.9.9", kTcp, 22, "allow/1"},
                       {"member by name", "stray", Dir::kIngress, "10.0.9.9", kTcp, 22, "allow/1"},
                       {"admin CIDR", "db2", Dir::kIngress, "192.0.2.77", kTcp, 22, "allow/1"},
                       {"not admin", "db2", Dir::kIngress, "10.0.0.2", kTcp, 22, "deny/0"},
                       {"bastion egress", "bastion", Dir::kEgress, "10.0.1.2", kTcp, 22, "allow/1"},
                   });
  CHECK(hv1.warnings == std::vector<std::string>{"rule 3: from: selects nothing"});
}

TEST_CASE("compiler: conjunctions of groups intersect their prefixes", "[policy][compiler]") {
  StateBuilder b = two_tier();
  b.group("wide", "10.0.0.0/8|2001:db8::/32|app=web")
      .group("narrow", "10.1.0.0/16|192.0.2.0/24|2001:db8:1::/48|env=prod")
      .rule("id=1,priority=10,from=group:wide&group:narrow,to=app=db,actions=allow")
      .rule("id=2,priority=10,from=group:narrow&group:wide,to=app=web,actions=reject");
  CompiledPolicy c = must_compile(b.state(), "hv1");
  check_cases(
      c, {
             {"inside both", "db1", Dir::kIngress, "10.1.0.9", kTcp, 1, "allow/1"},
             {"wide only", "db1", Dir::kIngress, "10.2.0.9", kTcp, 1, "deny/0"},
             {"narrow only", "db1", Dir::kIngress, "192.0.2.9", kTcp, 1, "deny/0"},
             {"v6 inside both", "db1", Dir::kIngress, "2001:db8:1::5", kTcp, 1, "allow/1"},
             {"v6 wide only", "db1", Dir::kIngress, "2001:db8:2::5", kTcp, 1, "deny/0"},
             {"workload in both (web, prod)", "db1", Dir::kIngress, "10.0.0.1", kTcp, 1, "allow/1"},
             {"workload in one (web, dev)", "db1", Dir::kIngress, "10.0.0.2", kTcp, 1, "deny/0"},
             {"the other order", "web1", Dir::kIngress, "10.1.200.1", kTcp, 1, "reject/2"},
             {"the other order, wide only", "web1", Dir::kIngress, "10.200.0.1", kTcp, 1, "deny/0"},
         });
}

TEST_CASE("compiler: a rule between two local workloads is enforced at both ends",
          "[policy][compiler]") {
  StateBuilder b = two_tier();
  b.rule("id=1,priority=10,from=env=prod,to=env=prod,actions=allow")
      .rule("id=2,priority=20,from=app=web,to=app=web,tcp,tp_dst=8080,actions=deny");
  CompiledPolicy c = must_compile(b.state(), "hv1");
  // web1 and db1 are both prod and local: the rule is in both directions on both ports.
  for (const char* w : {"web1", "db1"}) {
    INFO(w);
    const LocalWorkload& lw = local(c, w);
    bool egress = false, ingress = false;
    for (const PolicyEntry& e : lw.egress_from_vm.entries) egress |= e.rule_id == 1;
    for (const PolicyEntry& e : lw.ingress_to_vm.entries) ingress |= e.rule_id == 1;
    CHECK(egress);
    CHECK(ingress);
  }
  check_cases(
      c,
      {
          {"web1 -> db1 leaves", "web1", Dir::kEgress, "10.0.1.1", kTcp, 1, "allow/1"},
          {"web1 -> db1 arrives", "db1", Dir::kIngress, "10.0.0.1", kTcp, 1, "allow/1"},
          {"db1 -> web1 leaves", "db1", Dir::kEgress, "10.0.0.1", kTcp, 1, "allow/1"},
          {"db1 -> web1 arrives", "web1", Dir::kIngress, "10.0.1.1", kTcp, 1, "allow/1"},
          {"web1 -> web2 (dev) leaves", "web1", Dir::kEgress, "10.0.0.2", kTcp, 8080, "deny/2"},
          {"web1 -> web2 (dev) other port", "web1", Dir::kEgress, "10.0.0.2", kTcp, 80, "deny/0"},
          {"web2 -> web1 arrives", "web1", Dir::kIngress, "10.0.0.2", kTcp, 80, "deny/0"},
      });
}

TEST_CASE("compiler: local workload data for the spoof guard and limits", "[policy][compiler]") {
  StateBuilder b = two_tier();
  b.conn_limit(1000).default_action(Action::kAllow);
  CompiledPolicy c = must_compile(b.state(), "hv1", {}, 42);
  CHECK(c.generation == 42);
  CHECK(c.host == "hv1");
  CHECK(c.default_action == Action::kAllow);
  const LocalWorkload& w = local(c, "web1");
  CHECK(w.port == "vnic-web1");
  CHECK(format_mac(w.mac) == "02:00:00:00:00:01");
  REQUIRE(w.ips.size() == 2);
  CHECK(w.ips[0].to_string() == "10.0.0.1");
  CHECK(w.ips[1].to_string() == "2001:db8::1");
  CHECK(w.conn_limit == 1000);
  CHECK(w.identity == lookup_identity(c, ip("2001:db8::1")));
  CHECK(w.egress_from_vm.default_action == Action::kAllow);
  CHECK(w.ingress_to_vm.default_action == Action::kAllow);
  // The ipcache covers every workload address with its host.
  bool found = false;
  for (const IpcacheEntry& e : c.ipcache)
    if (e.prefix.to_string() == "10.0.1.2/32") {
      found = true;
      CHECK(e.host == "hv2");
      CHECK(find_identity(c, e.identity)->workload == "db2");
    }
  CHECK(found);
}

TEST_CASE("compiler: identities stay stable across recompiles", "[policy][compiler]") {
  StateBuilder b = two_tier();
  b.rule("id=1,priority=10,from=10.0.0.0/8,to=app=db,actions=allow")
      .rule("id=2,priority=10,from=192.0.2.0/24,to=app=db,actions=allow");
  CompiledPolicy c1 = must_compile(b.state(), "hv1");
  auto ids = [](const CompiledPolicy& c) {
    std::map<std::string, uint32_t> m;
    for (const IdentityInfo& i : c.identities)
      m[i.kind == IdentityKind::kCidr ? i.prefix.to_string()
        : i.workload.empty()          ? "world"
                                      : i.workload] = i.identity;
    return m;
  };
  const auto before = ids(c1);
  REQUIRE(before.size() == 7);  // world, 4 workloads, 2 prefixes
  CHECK(before.at("world") == kWorldIdentity);

  SECTION("two hosts compiling the same state from scratch agree") {
    CHECK(ids(must_compile(b.state(), "hv2")) == before);
  }
  SECTION("adding a workload keeps every other number") {
    StateBuilder b2 = b;
    b2.workload("aaa-first", "hv1", {"10.0.5.5"}, {{"app", "db"}});
    auto after = ids(must_compile(b2.state(), "hv1", c1.allocator));
    for (const auto& [name, id] : before) CHECK(after.at(name) == id);
    CHECK(after.at("aaa-first") == kFirstWorkloadIdentity + 4);  // after all, not renumbered
  }
  SECTION("removing a workload keeps the others; re-adding it restores its number") {
    DesiredState s = b.state();
    Workload removed = s.workloads[1];  // db1
    s.workloads.erase(s.workloads.begin() + 1);
    CompiledPolicy c2 = must_compile(s, "hv1", c1.allocator);
    auto mid = ids(c2);
    CHECK_FALSE(mid.contains("db1"));
    for (const auto& [name, id] : mid) CHECK(before.at(name) == id);
    s.workloads.push_back(removed);
    CHECK(ids(must_compile(s, "hv1", c2.allocator)) == before);
  }
  SECTION("a label change gives that workload a new identity, and only it") {
    DesiredState s = b.state();
    s.workloads[0].labels["env"] = "staging";  // web1
    CompiledPolicy c2 = must_compile(s, "hv1", c1.allocator);
    auto after = ids(c2);
    CHECK(after.at("web1") != before.at("web1"));
    for (const auto& [name, id] : before)
      if (name != "web1") CHECK(after.at(name) == id);
    CHECK(lookup_identity(c2, ip("10.0.0.1")) == after.at("web1"));
    SECTION("and changing it back restores the old one") {
      CHECK(ids(must_compile(b.state(), "hv1", c2.allocator)) == before);
    }
  }
  SECTION("a new rule prefix keeps the other prefixes' numbers") {
    StateBuilder b2 = b;
    b2.rule("id=3,priority=10,from=10.1.0.0/16,to=app=db,actions=deny");
    auto after = ids(must_compile(b2.state(), "hv1", c1.allocator));
    for (const auto& [name, id] : before) CHECK(after.at(name) == id);
    CHECK(after.at("10.1.0.0/16") >= kFirstCidrIdentity);
  }
  SECTION("a rejected change set leaves the allocator usable") {
    DesiredState s = b.state();
    s.rules[0].ports = "1-0";
    auto bad = compile(s, "hv1", 2, c1.allocator);
    REQUIRE_FALSE(bad);
    CHECK(bad.error().text() == "rule 1: ports: \"1-0\": range reversed");
    CHECK(ids(must_compile(b.state(), "hv1", c1.allocator)) == before);
  }
}

TEST_CASE("compiler: errors and warnings name the objects", "[policy][compiler]") {
  StateBuilder b = two_tier();
  b.rule("id=1,priority=10,from=group:nope,to=app=db,actions=allow")
      .rule("id=2,priority=10,from=any,to=workload:db9,actions=allow");
  auto c = compile(b.state(), "hv1", 1);
  REQUIRE_FALSE(c);
  CHECK(c.error().text() ==
        "rule 1: from: \"group:nope\": unknown group \"nope\"\n"
        "rule 2: to: \"workload:db9\": unknown workload \"db9\"");

  StateBuilder ok = two_tier();
  ok.rule("id=1,priority=10,from=app=cache,to=app=db,actions=allow");
  CompiledPolicy w = must_compile(ok.state(), "hv1");
  CHECK(w.warnings == std::vector<std::string>{"rule 1: from: selects nothing"});
  CHECK(local(w, "db1").ingress_to_vm.entries.empty());
}

TEST_CASE("compiler: the textual dump", "[policy][compiler]") {
  StateBuilder b;
  b.conn_limit(100)
      .workload("web1", "hv1", {"10.0.0.1"}, {{"app", "web"}})
      .workload("db1", "hv2", {"10.0.1.1"}, {{"app", "db"}})
      .rule("id=1,priority=100,from=app=web,to=app=db,tcp,tp_dst=5432,actions=allow,log")
      .rule("id=2,priority=50,from=any,to=10.9.0.0/16,udp,tp_dst=53,actions=reject")
      .rule("id=3,priority=10,from=any,to=app=web,icmp,actions=allow");
  CompiledPolicy c = must_compile(b.state(), "hv1", {}, 7);
  CHECK(format_compiled(c) ==
        "policy generation 7 host hv1 default deny\n"
        "identities:\n"
        "  1 world\n"
        "  256 workload db1 {app=db,gl:workload=db1}\n"
        "  257 workload web1 {app=web,gl:workload=web1}\n"
        "  16777216 cidr 10.9.0.0/16 matched by 10.9.0.0/16\n"
        "ipcache:\n"
        "  10.0.0.1/32 -> 257(web1) on hv1\n"
        "  10.0.1.1/32 -> 256(db1) on hv2\n"
        "  10.9.0.0/16 -> 16777216(10.9.0.0/16)\n"
        "port vnic-web1 workload web1 identity 257 mac 02:00:00:00:00:01 ips 10.0.0.1 "
        "conn_limit 100\n"
        "    egress (from vm): default deny, 3 entries\n"
        "      rule 1 priority 100 remote 256(db1) tcp dport 5432 allow log\n"
        "      rule 2 priority 50 remote 16777216(10.9.0.0/16) udp dport 53 reject\n"
        "      rule 3 priority 10 remote 257(web1) icmp allow\n"
        "    ingress (to vm): default deny, 1 entries\n"
        "      rule 3 priority 10 remote any icmp allow\n");
}
