// dp_sync_test.cpp — the compiled policy as fw_install's arguments and the engine that keeps
// gldp enforcing it (control/glctld/dp_sync.hpp), against a scripted gldp (fake_gldp.hpp):
// the mapping field by field, port names resolved and a missing port left out and picked up,
// installs only when something changed, gldp restarts and outages, refusals, and
// generations that only grow.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstring>
#include <random>
#include <set>
#include <thread>

#include "control/glctld/dp_sync.hpp"
#include "control/policy/compiler.hpp"
#include "control/policy/rule_text.hpp"
#include "dataplane/firewall/fw_tables.hpp"
#include "fake_gldp.hpp"

using namespace gl;
using namespace gl::glctld;
using gl::glctld::test::FakeGldp;
using gl::glctld::test::FakeLink;
using namespace std::chrono_literals;

namespace {

policy::Rule rule(const char* text, uint32_t id) {
  auto r = policy::parse_rule(text);
  INFO(text);
  REQUIRE(r);
  r->rule_id = id;
  return *r;
}

// web1 and db1 on hv1, web2 on hv2; web -> db:5432 allowed and logged, the partner network
// may reach db on 22 (rejected otherwise by a later rule), default deny, limit 50.
policy::DesiredState example_state() {
  policy::DesiredState s;
  s.settings.conn_limit = 50;
  s.workloads = {
      {"db1", "hv1", "vnet2", "02:00:00:00:00:02", {"10.0.0.2"}, {{"app", "db"}}},
      {"web1", "hv1", "vnet1", "02:00:00:00:00:01", {"10.0.0.1", "fd00::1"}, {{"app", "web"}}},
      {"web2", "hv2", "vnet1", "02:00:00:00:00:03", {"10.0.1.1"}, {{"app", "web"}}},
  };
  s.rules = {
      rule("priority=100,from=app=web,to=app=db,tcp,tp_dst=5432,actions=allow,log", 1),
      rule("priority=90,from=192.0.2.0/24,to=app=db,tcp,tp_dst=22,actions=allow-encrypted", 2),
      rule("priority=10,from=any,to=app=db,actions=reject", 3),
  };
  return s;
}

policy::CompiledPolicy compile_for(const policy::DesiredState& s, const char* host) {
  auto c = policy::compile(s, host, 0);
  INFO((c ? "" : c.error().text()));
  REQUIRE(c);
  return std::move(*c);
}

std::shared_ptr<const FwVersion> version_of(const policy::DesiredState& s) {
  return std::make_shared<const FwVersion>(to_fw_version(compile_for(s, "hv1")));
}

// A fake gldp with web1's port vnet1 (1) and db1's vnet2 (2).
std::shared_ptr<FakeGldp> gldp_with_web1_db1() {
  auto g = std::make_shared<FakeGldp>();
  g->add_port("vnet1", 1);
  g->add_port("vnet2", 2);
  return g;
}

}  // namespace

TEST_CASE("dp_sync: policy actions map onto the dataplane's action codes", "[glctld][dp_sync]") {
  struct Case {
    policy::Action in;
    fw::Action out;
  } cases[] = {
      {policy::Action::kAllow, fw::Action::kAllow},
      {policy::Action::kDeny, fw::Action::kDeny},
      {policy::Action::kReject, fw::Action::kReject},
      {policy::Action::kAllowEncrypted, fw::Action::kAllowEncrypted},
  };
  for (const Case& c : cases) {
    INFO(policy::action_name(c.in));
    CHECK(fw_action(c.in) == static_cast<uint8_t>(c.out));
    CHECK(std::string(fw::kActionNames[fw_action(c.in)]) == std::string(policy::action_name(c.in)));
  }
}

TEST_CASE("dp_sync: a compiled policy becomes fw_install's arguments field by field",
          "[glctld][dp_sync]") {
  const policy::CompiledPolicy c = compile_for(example_state(), "hv1");
  const FwVersion v = to_fw_version(c);

  // The ipcache: every entry, in the compiler's order.
  REQUIRE(v.ipcache.size() == c.ipcache.size());
  CHECK(v.ipcache.size() == 5);  // four workload addresses (both hosts) + 192.0.2.0/24
  for (size_t i = 0; i < c.ipcache.size(); ++i) {
    const policy::IpcacheEntry& e = c.ipcache[i];
    const api::FwPrefixWire& w = v.ipcache[i];
    INFO(e.prefix.to_string());
    CHECK(w.family == (e.prefix.address.family == policy::Family::kIpv4 ? 4 : 6));
    CHECK(w.len == e.prefix.length);
    CHECK(w.identity == e.identity);
    CHECK(w.identity >= 2);  // gldp reserves 0 and 1
    CHECK(std::memcmp(w.addr, e.prefix.address.bytes.data(), 16) == 0);
    // A workload's address names its host (1.. into v.hosts), a CIDR none.
    if (e.host.empty()) {
      CHECK(w.host == 0);
    } else {
      REQUIRE(w.host >= 1);
      REQUIRE(w.host <= v.hosts.size());
      CHECK(v.hosts[w.host - 1].family == 0);  // no Host table given: unknown addresses
    }
  }
  CHECK(v.hosts.size() == 2);  // hv1 and hv2, in name order
  // With the Host table's addresses: the same entries, the hosts' addresses filled in, and
  // a different version (an address change is a change to install).
  const FwVersion v2 = to_fw_version(c, {{"hv1", "192.0.2.1"}, {"hv2", "2001:db8::2"}});
  REQUIRE(v2.hosts.size() == 2);
  CHECK(v2.hosts[0].family == 4);
  CHECK(v2.hosts[0].addr[0] == 192);
  CHECK(v2.hosts[0].addr[3] == 1);
  CHECK(v2.hosts[1].family == 6);
  CHECK(v2.hosts[1].addr[0] == 0x20);
  CHECK_FALSE(same_version(v, v2));
  CHECK(same_version(v2, to_fw_version(c, {{"hv1", "192.0.2.1"}, {"hv2", "2001:db8::2"}})));

  // The ports: hv1's two workloads, sorted by name, unresolved.
  REQUIRE(v.ports.size() == 2);
  CHECK(v.ports[0].workload == "db1");
  CHECK(v.ports[0].port == "vnet2");
  CHECK(v.ports[1].workload == "web1");
  CHECK(v.ports[1].port == "vnet1");
  for (size_t i = 0; i < 2; ++i) {
    const policy::LocalWorkload& lw = c.workloads[i];
    const api::FwPortSpec& s = v.ports[i].spec;
    INFO(lw.name);
    CHECK(s.port_no == 0);
    CHECK(s.identity == lw.identity);
    CHECK(s.conn_limit == 50);
    CHECK(std::memcmp(s.mac, lw.mac.data(), 6) == 0);
    CHECK(s.default_from_vm == static_cast<uint8_t>(fw::Action::kDeny));
    CHECK(s.default_to_vm == static_cast<uint8_t>(fw::Action::kDeny));
    REQUIRE(s.from_vm.size() == lw.egress_from_vm.entries.size());
    REQUIRE(s.to_vm.size() == lw.ingress_to_vm.entries.size());
    auto same = [](const api::FwEntryWire& w, const policy::PolicyEntry& e) {
      return w.remote == e.remote_identity && w.rule_id == e.rule_id && w.port_lo == e.port_lo &&
             w.port_hi == e.port_hi && w.proto == e.proto && w.action == fw_action(e.action) &&
             w.log == (e.log ? 1 : 0) && w.pad == 0;
    };
    for (size_t k = 0; k < s.from_vm.size(); ++k)
      CHECK(same(s.from_vm[k], lw.egress_from_vm.entries[k]));
    for (size_t k = 0; k < s.to_vm.size(); ++k)
      CHECK(same(s.to_vm[k], lw.ingress_to_vm.entries[k]));
  }
  // Addresses for the spoof guard: IPv4 as network-order words, IPv6 as bytes.
  const api::FwPortSpec& web = v.ports[1].spec;
  REQUIRE(web.ipv4.size() == 1);
  const uint8_t ten_0_0_1[4] = {10, 0, 0, 1};
  CHECK(std::memcmp(&web.ipv4[0], ten_0_0_1, 4) == 0);
  REQUIRE(web.ipv6.size() == 1);
  CHECK(web.ipv6[0][0] == 0xfd);
  CHECK(web.ipv6[0][15] == 1);
  // db1's entries, to the VM, in evaluation order: web1 and web2 on 5432 (allow, log), the
  // partner prefix on 22 (allow-encrypted), then anyone (reject).
  const api::FwPortSpec& db = v.ports[0].spec;
  REQUIRE(db.to_vm.size() == 4);
  CHECK(db.to_vm[0].rule_id == 1);
  CHECK(db.to_vm[0].proto == 6);
  CHECK(db.to_vm[0].port_lo == 5432);
  CHECK(db.to_vm[0].port_hi == 5432);
  CHECK(db.to_vm[0].action == static_cast<uint8_t>(fw::Action::kAllow));
  CHECK(db.to_vm[0].log == 1);
  CHECK(db.to_vm[1].rule_id == 1);
  CHECK(db.to_vm[1].remote != db.to_vm[0].remote);
  CHECK(db.to_vm[2].rule_id == 2);
  CHECK(db.to_vm[2].action == static_cast<uint8_t>(fw::Action::kAllowEncrypted));
  CHECK(db.to_vm[2].remote >= policy::kFirstCidrIdentity);
  CHECK(db.to_vm[3].rule_id == 3);
  CHECK(db.to_vm[3].remote == fw::kAnyIdentity);
  CHECK(db.to_vm[3].proto == 0);
  CHECK(db.to_vm[3].action == static_cast<uint8_t>(fw::Action::kReject));
  // db1's own: rule 3's "any" sender includes db1 itself, towards app=db (db1).
  REQUIRE(db.from_vm.size() == 1);
  CHECK(db.from_vm[0].rule_id == 3);
  CHECK(db.from_vm[0].remote == c.workloads[0].identity);
  // web1's entries, from the VM: to db1 (web2 is no db) on 5432, and rule 3, whose "any"
  // sender includes web1.
  REQUIRE(web.from_vm.size() == 2);
  CHECK(web.from_vm[0].remote == c.workloads[0].identity);
  CHECK(web.from_vm[0].rule_id == 1);
  CHECK(web.from_vm[1].remote == c.workloads[0].identity);
  CHECK(web.from_vm[1].rule_id == 3);

  // same_version: equal to itself and to a recompilation, not to a changed policy.
  CHECK(same_version(v, to_fw_version(compile_for(example_state(), "hv1"))));
  policy::DesiredState changed = example_state();
  changed.settings.conn_limit = 51;
  CHECK_FALSE(same_version(v, to_fw_version(compile_for(changed, "hv1"))));
  changed = example_state();
  changed.workloads[2].ips = {"10.0.1.2"};  // a remote workload moves: only the ipcache
  CHECK_FALSE(same_version(v, to_fw_version(compile_for(changed, "hv1"))));
  changed = example_state();
  changed.workloads[1].port = "vnet9";
  CHECK_FALSE(same_version(v, to_fw_version(compile_for(changed, "hv1"))));
}

TEST_CASE("dp_sync: ports resolved by name, a missing one left out and picked up when it appears",
          "[glctld][dp_sync]") {
  auto g = std::make_shared<FakeGldp>();
  g->add_port("vnet1", 3);  // web1's; db1's vnet2 is not there yet
  FakeLink link(g);
  DpSync sync(link);
  sync.set_desired(version_of(example_state()), 1);

  SyncReport r = sync.sync();
  CHECK(r.reachable);
  CHECK(r.error.empty());
  CHECK(r.pushed == 1);
  CHECK(r.generation == 1);
  CHECK(r.ports == 1);
  CHECK(r.prefixes == 5);
  REQUIRE(r.missing.size() == 1);
  CHECK(r.missing[0] == MissingPort{"db1", "vnet2", "no port named 'vnet2'"});
  auto inst = g->last_install();
  REQUIRE(inst);
  REQUIRE(inst->ports.size() == 1);
  CHECK(inst->ports[0].port_no == 3);
  CHECK(inst->ipcache.size() == 5);
  // ... and its port name quarantined: gldp closes it should it appear before the next sync.
  CHECK(inst->quarantine == std::vector<std::string>{"vnet2"});

  // Nothing changed: nothing installed.
  r = sync.sync();
  CHECK(r.pushed == 0);
  CHECK(r.missing.size() == 1);
  CHECK(g->install_count() == 1);

  // The port appears: the next sync adds it, as a delta of what gldp enforces (web1's
  // port is not sent again).
  auto port_set = [](const FakeGldp::Install& i) {
    std::set<uint32_t> s;
    for (const api::FwPortSpec& p : i.ports) s.insert(p.port_no);
    return s;
  };
  g->add_port("vnet2", 4);
  r = sync.sync();
  CHECK(r.pushed == 2);
  CHECK(r.missing.empty());
  CHECK(r.delta);
  CHECK(r.ports_sent == 1);
  inst = g->last_install();
  CHECK(port_set(*inst) == std::set<uint32_t>{3, 4});
  CHECK(inst->delta);
  CHECK(inst->sent == std::vector<uint32_t>{4});
  CHECK(inst->removed.empty());
  CHECK_FALSE(inst->new_ipcache);
  CHECK(inst->quarantine.empty());

  // Re-added under another number: the old number leaves, the new one comes.
  g->del_port("vnet2");
  g->add_port("vnet2", 9);
  r = sync.sync();
  CHECK(r.pushed == 3);
  inst = g->last_install();
  CHECK(port_set(*inst) == std::set<uint32_t>{3, 9});
  CHECK(inst->sent == std::vector<uint32_t>{9});
  CHECK(inst->removed == std::vector<uint32_t>{4});

  // It goes away: left out again (removed, quarantined).
  g->del_port("vnet2");
  r = sync.sync();
  CHECK(r.pushed == 4);
  CHECK(r.ports_removed == 1);
  CHECK(port_set(*g->last_install()) == std::set<uint32_t>{3});
  CHECK(g->last_install()->sent.empty());
  CHECK(r.missing.size() == 1);
  CHECK(g->last_install()->quarantine == std::vector<std::string>{"vnet2"});
}

TEST_CASE("dp_sync: a change goes as a delta of the version in force, whole when it must",
          "[glctld][dp_sync]") {
  auto g = gldp_with_web1_db1();
  FakeLink link(g);
  DpSync sync(link);
  const policy::DesiredState s1 = example_state();
  sync.set_desired(version_of(s1), 1);
  SyncReport r = sync.sync();
  CHECK(r.pushed == 1);
  CHECK_FALSE(r.delta);  // nothing of ours in force yet: whole
  CHECK(r.ports_sent == 2);
  const FakeGldp::Install whole = *g->last_install();

  // A rule's port changes (from a CIDR to db: db1's ingress only): db1's port alone is
  // sent.
  policy::DesiredState s2 = s1;
  s2.rules[1] =
      rule("priority=90,from=192.0.2.0/24,to=app=db,tcp,tp_dst=2222,actions=allow-encrypted", 2);
  sync.set_desired(version_of(s2), 2);
  r = sync.sync();
  CHECK(r.pushed == 2);
  CHECK(r.delta);
  CHECK(r.ports_sent == 1);
  auto inst = g->last_install();
  CHECK(inst->sent == std::vector<uint32_t>{2});
  CHECK_FALSE(inst->new_ipcache);
  // What gldp now enforces is the whole version a full install would have made.
  const FwVersion v2 = *version_of(s2);
  REQUIRE(inst->ports.size() == 2);
  for (const api::FwPortSpec& p : inst->ports) {
    const api::FwPortSpec& want = v2.ports[p.port_no == 2 ? 0 : 1].spec;  // db1, web1
    CHECK(p.to_vm.size() == want.to_vm.size());
    CHECK(p.from_vm.size() == want.from_vm.size());
  }
  CHECK(inst->ipcache.size() == whole.ipcache.size());

  // A new workload elsewhere: the ipcache changes, sent whole with the hosts; no port.
  policy::DesiredState s3 = s2;
  s3.workloads.push_back(
      {"cache1", "hv2", "vnet7", "02:00:00:00:00:07", {"10.0.0.7"}, {{"app", "cache"}}});
  sync.set_desired(version_of(s3), 3);
  r = sync.sync();
  CHECK(r.pushed == 3);
  CHECK(r.delta);
  inst = g->last_install();
  CHECK(inst->new_ipcache);
  CHECK(inst->ipcache.size() == whole.ipcache.size() + 1);

  // Another writer installed meanwhile: ours goes whole (a delta of theirs would be wrong).
  {
    std::lock_guard lock(g->mu);
    g->installs.push_back(FakeGldp::Install{});
    g->generation = 50;
  }
  r = sync.sync();
  CHECK(r.pushed == 51);
  CHECK_FALSE(r.delta);
  CHECK_FALSE(g->last_install()->delta);
  CHECK(g->last_install()->ports.size() == 2);

  // A gldp that refuses deltas: the whole version goes in the same sync, the refusal said.
  g->no_deltas = true;
  sync.set_desired(version_of(s1), 4);
  r = sync.sync();
  CHECK(r.pushed == 52);
  CHECK(r.error.empty());
  CHECK_FALSE(r.delta);
  CHECK(r.delta_refused.find("unknown flags") != std::string::npos);
  CHECK(g->last_install()->ports.size() == 2);
  CHECK(g->current_generation() == 52);
}

TEST_CASE("dp_sync: installs again on a new version, a restarted gldp or a foreign generation",
          "[glctld][dp_sync]") {
  auto g = gldp_with_web1_db1();
  FakeLink link(g);
  DpSync sync(link);

  // Nothing desired yet: gldp is asked, not changed.
  SyncReport r = sync.sync();
  CHECK(r.reachable);
  CHECK(r.pushed == 0);
  CHECK(g->install_count() == 0);

  sync.set_desired(version_of(example_state()), 1);
  CHECK(sync.sync().pushed == 1);
  CHECK(sync.sync().pushed == 0);

  // A new desired version.
  policy::DesiredState s = example_state();
  s.rules.pop_back();
  sync.set_desired(version_of(s), 2);
  r = sync.sync();
  CHECK(r.pushed == 2);
  CHECK(r.pushed_desired == 2);
  CHECK(g->last_install()->ports[0].to_vm.size() == 3);

  // gldp restarted: it enforces nothing; ours goes in again under a new generation.
  g->restart();
  r = sync.sync();  // the old connection is broken
  CHECK_FALSE(r.reachable);
  CHECK_FALSE(r.error.empty());
  r = sync.sync();
  CHECK(r.reachable);
  CHECK(r.restarted);
  CHECK(r.previous_boot_id == 0x1000);
  CHECK(r.boot_id == 0x1001);
  CHECK(r.pushed == 3);
  CHECK(g->current_generation() == 3);

  // Somebody else installed (or cleared) a version: ours goes in again, above theirs.
  {
    std::lock_guard lock(g->mu);
    g->generation = 40;
  }
  r = sync.sync();
  CHECK(r.pushed == 41);
  {
    std::lock_guard lock(g->mu);
    g->generation = 0;  // gl-dpctl fw-clear, say
  }
  CHECK(sync.sync().pushed == 42);
  CHECK(sync.sync().pushed == 0);
}

TEST_CASE("dp_sync: unreachable gldp and refusals are reported, the version in force stays",
          "[glctld][dp_sync]") {
  auto g = gldp_with_web1_db1();
  g->set_up(false);
  FakeLink link(g);
  DpSync sync(link);
  sync.set_desired(version_of(example_state()), 1);

  SyncReport r = sync.sync();
  CHECK_FALSE(r.reachable);
  CHECK(r.error.find("Connection refused") != std::string::npos);
  CHECK(r.pushed == 0);

  g->set_up(true);
  r = sync.sync();
  CHECK(r.reachable);
  CHECK(r.pushed == 1);

  // gldp refuses the next version: reported, reachable, nothing changes in gldp.
  {
    std::lock_guard lock(g->mu);
    g->refuse = api::Error{EINVAL, "fw commit: ipcache prefix 3: bad"};
  }
  policy::DesiredState s = example_state();
  s.settings.conn_limit = 7;
  sync.set_desired(version_of(s), 2);
  r = sync.sync();
  CHECK(r.reachable);
  CHECK(r.error == "fw install: fw commit: ipcache prefix 3: bad");
  CHECK(r.pushed == 0);
  CHECK(r.pushed_desired == 1);
  CHECK(g->current_generation() == 1);
  CHECK(link.connected());  // a refusal is not a broken connection

  // Accepted once gldp takes it: a generation above the one the refusal used up.
  {
    std::lock_guard lock(g->mu);
    g->refuse.reset();
  }
  r = sync.sync();
  CHECK(r.error.empty());
  CHECK(r.pushed == 3);
  CHECK(r.pushed_desired == 2);
  CHECK(g->last_install()->ports[0].conn_limit == 7);

  // gldp goes away: the last report still says what it enforces from us.
  g->set_up(false);
  r = sync.sync();
  CHECK_FALSE(r.reachable);
  CHECK(r.pushed_desired == 2);
  CHECK(r.generation == 3);
  CHECK(r.ports == 2);
}

TEST_CASE("dp_sync: generations start above gldp's and only grow, whatever happens",
          "[glctld][dp_sync]") {
  auto g = gldp_with_web1_db1();
  {
    std::lock_guard lock(g->mu);
    g->generation = 57;  // left by a glctld that ran before this one
  }
  FakeLink link(g);
  DpSync sync(link);
  sync.set_desired(version_of(example_state()), 1);
  CHECK(sync.sync().pushed == 58);

  // Random events; every install's generation is above every earlier one.
  std::mt19937 rng(11);
  uint64_t last = 58;
  uint64_t id = 1;
  for (int i = 0; i < 400; ++i) {
    switch (rng() % 7) {
      case 0:
        g->restart();
        break;
      case 1:
        g->set_up(false);
        break;
      case 2:
        g->set_up(true);
        break;
      case 3: {
        policy::DesiredState s = example_state();
        s.settings.conn_limit = static_cast<uint32_t>(rng() % 4);
        sync.set_desired(version_of(s), ++id);
        break;
      }
      case 4:
        if (rng() % 2)
          g->del_port("vnet2");
        else
          g->add_port("vnet2", 2 + static_cast<uint32_t>(rng() % 3));
        break;
      case 5: {
        std::lock_guard lock(g->mu);
        if (g->up) g->generation = rng() % 100;
        break;
      }
      default:
        break;
    }
    const SyncReport r = sync.sync();
    if (r.pushed != 0) {
      INFO("step " << i);
      CHECK(r.pushed > last);
      last = r.pushed;
    }
    CHECK(sync.generation() >= last);
  }
  CHECK(g->install_count() > 20);
}

TEST_CASE("dp_sync: the sync thread installs soon after a change and re-checks periodically",
          "[glctld][dp_sync]") {
  auto g = std::make_shared<FakeGldp>();
  g->add_port("vnet1", 1);
  std::mutex mu;
  std::vector<SyncReport> reports;
  DpSyncThread::Options o;
  o.interval = 50ms;
  o.backoff_min = 10ms;
  o.backoff_max = 50ms;
  DpSyncThread t(std::make_unique<FakeLink>(g), o, [&](const SyncReport& r) {
    std::lock_guard lock(mu);
    reports.push_back(r);
  });
  auto wait_for = [&](auto pred) {
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!pred() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
    return pred();
  };
  t.set_desired(version_of(example_state()), 1);
  REQUIRE(wait_for([&] { return g->install_count() == 1; }));
  CHECK(g->last_install()->ports.size() == 1);
  // The missing port appears: the periodic re-check installs it.
  g->add_port("vnet2", 2);
  REQUIRE(wait_for([&] { return g->install_count() == 2; }));
  CHECK(g->last_install()->ports.size() == 2);
  // gldp down and back (restarted): retried with back-off, installed again.
  g->set_up(false);
  REQUIRE(wait_for([&] {
    std::lock_guard lock(mu);
    return !reports.empty() && !reports.back().reachable;
  }));
  g->restart();
  REQUIRE(wait_for([&] { return g->install_count() == 3; }));
  CHECK(g->last_install()->generation == 3);
  t.stop();
  std::lock_guard lock(mu);
  CHECK(reports.size() >= 4);
}
