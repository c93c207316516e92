// policy_bench.cpp — gl-bench-policy: policy scale (issue #11): 10k rules over 1k groups and
// 10k workloads compiled for one host, and the time to a new version for every port of
// that host after a change.
//
// Purpose: generates a synthetic, deterministic (seeded) policy::DesiredState — W workloads
// on H hosts with app/tier/env/team/zone labels and one IPv4 address each, G groups (label
// selectors, member lists, unions of groups, outside prefixes), R rules (priorities, from/to
// through groups, labels, workloads and CIDRs, tcp/udp ports, lists and ranges, icmp,
// allow/allow-encrypted/deny/reject, some with log) — and times, median of --repeat runs,
// every step glctld takes (control/glctld/daemon.cpp Daemon::compile): validate(), compile()
// for one host, to_fw_version(), same_version(), desired_state() of the OVSDB replica, then
// two changes (one rule's port; one remote workload's label) end to end from the replica
// update to the new version. With --gldp-socket it also installs the versions into a
// running gldp through glctld's ApiLink (ports mapped onto the ports gldp has): whole, and
// the change through glctld's DpSync as it sends it (a delta of the version in force).
// Numbers are informative only: nothing here asserts a timing.
// Thread-safety: single-threaded. Complexity: full size ~1 s per repeat (--quick: well under
// one second in all).
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <numeric>
#include <optional>
#include <random>
#include <set>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "control/glctld/dp_sync.hpp"
#include "control/glctld/state.hpp"
#include "control/ovsdb/replica.hpp"
#include "control/ovsdb/schema.hpp"
#include "control/policy/compiler.hpp"
#include "control/policy/model.hpp"
#include "control/policy/rule_text.hpp"
#include "dataplane/api/client.hpp"

namespace pol = gl::policy;
namespace gd = gl::glctld;
namespace api = gl::api;
using Json = nlohmann::json;

namespace {

struct Options {
  size_t workloads = 10000;
  size_t hosts = 100;
  size_t groups = 1000;
  size_t rules = 10000;
  size_t apps = 0;  // 0: workloads / 50
  uint64_t seed = 1;
  int repeat = 5;
  std::string host;  // "": the first host
  std::string gldp_socket;
  bool quick = false;
};

std::string strf(const char* f, ...) __attribute__((format(printf, 1, 2)));
std::string strf(const char* f, ...) {
  char buf[256];
  va_list ap;
  va_start(ap, f);
  std::vsnprintf(buf, sizeof buf, f, ap);
  va_end(ap);
  return buf;
}

// mt19937_64's output is fixed by the standard (distributions are not): the same seed
// gives the same state with every standard library.
class Rng {
 public:
  explicit Rng(uint64_t seed) : g_(seed) {}
  size_t below(size_t n) { return n == 0 ? 0 : static_cast<size_t>(g_() % n); }
  bool percent(unsigned p) { return below(100) < p; }
  template <typename T>
  const T& pick(const std::vector<T>& v) {
    return v[below(v.size())];
  }
  std::mt19937_64& engine() { return g_; }

 private:
  std::mt19937_64 g_;
};

constexpr const char* kTiers[] = {"web", "api", "app", "db", "cache"};
constexpr const char* kEnvs[] = {"prod", "staging", "dev"};
constexpr const char* kZones[] = {"zone-a", "zone-b", "zone-c"};
constexpr size_t kNumEnvs = 3;

// ---- the synthetic desired state ------------------------------------------------------

// Workload i: app i % A, env (i / A) % 3, a host from a seeded permutation (each host gets
// W / H workloads, apps spread over all hosts), address 10.a.b.c (c in 1..250), labels
// app, tier (from the app), env, team (8 apps a team), zone, version, and pci=yes on a
// quarter of the db tier, quarantine=yes on 1%.
// Groups: one per (app, env) ("app017-prod": app=app017&env=prod, ~W/3A workloads), then
// tier-env and team-env groups, then a mix of member lists (3..12 workloads), unions of
// earlier groups, outside prefixes (partner networks, nested) and label-plus-members.
// Rules: mostly app-to-app service rules between (app, env) groups (70% through the
// group, 30% the same selector as labels) on the target tier's ports; team/tier rules,
// operator groups (ssh), single workloads, partner and egress prefixes, public web from
// any (one rule per web-tier app; the rest of that share become denies), dev/staging ->
// prod denies, udp rejects, dns, icmp, and two quarantine rules.
class Generator {
 public:
  explicit Generator(const Options& o)
      : o_(o), rng_(o.seed), apps_(o.apps ? o.apps : std::max<size_t>(2, o.workloads / 50)) {
    teams_ = (apps_ + 7) / 8;
  }

  pol::DesiredState make() {
    pol::DesiredState s;
    s.settings.default_action = pol::Action::kDeny;
    s.settings.conn_limit = 10000;
    make_cidr_pool();
    make_workloads(s);
    make_groups(s);
    make_rules(s);
    return s;
  }

  static std::string host_name(size_t h) { return strf("hv-%03zu", h); }
  size_t apps() const { return apps_; }
  // What made each rule (by index): "service", "any->web", ...
  const std::vector<std::string>& rule_kinds() const { return kinds_; }

 private:
  std::string app_name(size_t a) const { return strf("app%03zu", a); }
  std::string workload_name(size_t i) const { return strf("wl-%05zu", i); }
  const char* tier(size_t app) const { return kTiers[app % 5]; }

  std::string service_ports(size_t app) const {
    switch (app % 5) {
      case 0:
        return "80,443";
      case 1:
        return "8080-8089";
      case 2:
        return std::to_string(9000 + app % 50);
      case 3:
        return app % 2 ? "5432" : "3306";
      default:
        return app % 2 ? "6379" : "11211";
    }
  }

  size_t pick_env() {
    size_t u = rng_.below(100);
    return u < 50 ? 0 : u < 80 ? 1 : 2;  // prod, staging, dev
  }

  // Workloads of (app, env): the group when there is one (70%), else the same set as labels.
  std::string app_env(size_t app, size_t env) {
    const std::string& g = app_env_group_[app * kNumEnvs + env];
    if (!g.empty() && rng_.percent(70)) return "group:" + g;
    return "app=" + app_name(app) + "&env=" + kEnvs[env];
  }

  void make_cidr_pool() {
    for (size_t k = 0; k < 32; ++k) cidrs_.push_back(strf("198.18.%zu.0/24", k));
    for (size_t k = 0; k < 16; ++k) cidrs_.push_back(strf("172.%zu.0.0/16", 16 + k));
    for (size_t k = 0; k < 8; ++k) cidrs_.push_back(strf("192.168.%zu.0/20", k * 16));
    for (size_t k = 1; k <= 6; ++k) cidrs_.push_back(strf("192.0.2.%zu", k * 10));
    // Nested around the ones above, and one that holds every workload address (selects
    // outside addresses only: control/DESIGN.md "CIDR semantics").
    for (const char* p : {"172.16.0.0/12", "198.18.0.0/15", "192.168.0.0/16", "203.0.113.0/24",
                          "100.64.0.0/10", "10.0.0.0/8"})
      cidrs_.push_back(p);
  }

  void make_workloads(pol::DesiredState& s) {
    const size_t n = o_.workloads;
    std::vector<size_t> perm(n);
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), rng_.engine());
    s.workloads.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      const size_t app = i % apps_;
      const size_t env = (i / apps_) % kNumEnvs;
      pol::Workload w;
      w.name = workload_name(i);
      w.host = host_name(perm[i] % o_.hosts);
      w.port = strf("tap%05zu", i);
      w.mac = strf("02:00:00:%02zx:%02zx:%02zx", (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff);
      w.ips.push_back(strf("10.%zu.%zu.%zu", 1 + i / 64000, (i / 250) % 256, 1 + i % 250));
      w.labels["app"] = app_name(app);
      w.labels["tier"] = tier(app);
      w.labels["env"] = kEnvs[env];
      w.labels["team"] = strf("team%02zu", app / 8);
      w.labels["zone"] = kZones[rng_.below(3)];
      w.labels["version"] = strf("v%zu", 1 + rng_.below(3));
      if (app % 5 == 3 && rng_.percent(25)) w.labels["pci"] = "yes";
      if (rng_.percent(1)) w.labels["quarantine"] = "yes";
      s.workloads.push_back(std::move(w));
    }
  }

  void add_group(pol::DesiredState& s, std::string name, std::string selector,
                 std::vector<std::string> members = {}) {
    groups_.push_back(name);
    s.groups.push_back(pol::Group{std::move(name), std::move(selector), std::move(members)});
  }

  std::vector<std::string> random_members(size_t lo, size_t hi) {
    std::set<std::string> m;
    const size_t want = lo + rng_.below(hi - lo + 1);
    while (m.size() < std::min(want, o_.workloads))
      m.insert(workload_name(rng_.below(o_.workloads)));
    return {m.begin(), m.end()};
  }

  void make_groups(pol::DesiredState& s) {
    const size_t g = o_.groups;
    app_env_group_.assign(apps_ * kNumEnvs, "");
    for (size_t a = 0; a < apps_ && s.groups.size() < g; ++a)
      for (size_t e = 0; e < kNumEnvs && s.groups.size() < g; ++e) {
        std::string name = app_name(a) + "-" + kEnvs[e];
        app_env_group_[a * kNumEnvs + e] = name;
        add_group(s, std::move(name), "app=" + app_name(a) + "&env=" + kEnvs[e]);
      }
    // Tier-env and team-env groups, up to a quarter of the rest each.
    const size_t rest = g - s.groups.size();
    for (size_t t = 0; t < 5 && s.groups.size() < g; ++t)
      for (size_t e = 0; e < kNumEnvs && s.groups.size() < g && tier_env_.size() < rest / 4 + 1;
           ++e) {
        std::string name = strf("tier-%s-%s", kTiers[t], kEnvs[e]);
        tier_env_.push_back(name);
        add_group(s, std::move(name), strf("tier=%s&env=%s", kTiers[t], kEnvs[e]));
      }
    for (size_t t = 0; t < teams_ && s.groups.size() < g; ++t)
      for (size_t e = 0; e < kNumEnvs && s.groups.size() < g && team_env_.size() < rest / 4 + 1;
           ++e) {
        std::string name = strf("team%02zu-%s", t, kEnvs[e]);
        team_env_.push_back(name);
        add_group(s, std::move(name), strf("team=team%02zu&env=%s", t, kEnvs[e]));
      }
    for (size_t i = 0; s.groups.size() < g; ++i) {
      const size_t n = s.groups.size();
      switch (i % 10) {
        case 0:
        case 1:
        case 2:
        case 3:
        case 4: {  // operators, bastions, batch jobs: named workloads
          std::string name = strf("ops-%04zu", n);
          ops_.push_back(name);
          add_group(s, std::move(name), "", random_members(3, 12));
          break;
        }
        case 5:
        case 6: {  // a union of two earlier groups (no cycles: earlier only)
          std::string a = rng_.pick(groups_), b = rng_.pick(groups_);
          std::string name = strf("union-%04zu", n);
          unions_.push_back(name);
          add_group(s, std::move(name), "group:" + a + "|group:" + b);
          break;
        }
        case 7:
        case 8: {  // partner networks: 1..3 outside prefixes
          std::string sel;
          const size_t k = 1 + rng_.below(3);
          for (size_t j = 0; j < k; ++j) sel += (j ? "|" : "") + rng_.pick(cidrs_);
          std::string name = strf("partners-%04zu", n);
          partners_.push_back(name);
          add_group(s, std::move(name), sel);
          break;
        }
        default: {  // labels and named extras
          std::string name = strf("mixed-%04zu", n);
          unions_.push_back(name);
          add_group(
              s, std::move(name),
              strf("app=%s&zone=%s", app_name(rng_.below(apps_)).c_str(), kZones[rng_.below(3)]),
              random_members(1, 3));
          break;
        }
      }
    }
  }

  void make_rules(pol::DesiredState& s) {
    s.rules.reserve(o_.rules);
    for (size_t i = 0; i < o_.rules; ++i) {
      pol::Rule r;
      r.rule_id = static_cast<uint32_t>(i + 1);
      r.priority = 1000 + 10 * static_cast<uint32_t>(rng_.below(400));
      r.protocol = "tcp";
      r.action = pol::Action::kAllow;
      const size_t x = rng_.below(apps_);
      size_t y = rng_.below(apps_);
      if (y == x) y = (y + 1) % apps_;
      const size_t e = pick_env();
      if (i == 0 || i == 1) {  // quarantine: nothing in, nothing out
        r.priority = 65000;
        r.protocol = "ip";
        r.action = pol::Action::kDeny;
        r.log = true;
        (i == 0 ? r.from : r.to) = "quarantine=yes";
        r.description = "quarantine";
        s.rules.push_back(std::move(r));
        kinds_.push_back("quarantine");
        continue;
      }
      const size_t u = rng_.below(100);
      const char* kind = "service";
      if (u < 55) {  // service: app x -> app y on y's ports
        r.from = app_env(x, e);
        r.to = app_env(y, e);
        r.ports = service_ports(y);
        if (e == 0 && rng_.percent(10)) r.action = pol::Action::kAllowEncrypted;
        r.log = rng_.percent(5);
      } else if (u < 65) {  // a team's or a tier's workloads -> app y
        kind = "team/tier";
        if (rng_.percent(90) && !team_env_.empty())
          r.from = "group:" + rng_.pick(team_env_);
        else if (!tier_env_.empty())
          r.from = "group:" + rng_.pick(tier_env_);
        else
          r.from = strf("team=team%02zu&env=%s", x / 8, kEnvs[e]);
        r.to = app_env(y, e);
        r.ports = service_ports(y);
      } else if (u < 73) {  // operators: ssh or the service port
        kind = "operators";
        r.from = ops_.empty() ? "workload:" + workload_name(rng_.below(o_.workloads))
                              : "group:" + rng_.pick(ops_);
        r.to = app_env(y, e);
        r.ports = rng_.percent(50) ? "22" : service_ports(y);
        r.log = rng_.percent(30);
      } else if (u < 77) {  // unions and mixed groups
        kind = "union/mixed";
        r.from = unions_.empty() ? app_env(x, e) : "group:" + rng_.pick(unions_);
        r.to = app_env(y, e);
        r.ports = service_ports(y);
      } else if (u < 81) {  // one workload
        kind = "workload";
        const size_t w = rng_.below(o_.workloads);
        if (rng_.percent(50)) {
          r.from = "workload:" + workload_name(w);
          r.to = app_env(y, e);
          r.ports = "22";
          r.log = true;
        } else {
          r.from = app_env(x, e);
          r.to = "workload:" + workload_name(w);
          r.ports = service_ports(w % apps_);
        }
      } else if (u < 86) {  // outside prefixes: partners in, egress out
        kind = "cidr";
        if (rng_.percent(50)) {
          r.from = partners_.empty() || rng_.percent(30) ? rng_.pick(cidrs_)
                                                         : "group:" + rng_.pick(partners_);
          r.to = app_env(y, 0);
          r.ports = "443";
        } else {
          r.from = app_env(x, e);
          r.to = rng_.pick(cidrs_);
          if (rng_.percent(50)) r.to += "|" + rng_.pick(cidrs_);
          if (rng_.percent(30)) {
            r.protocol = "udp";
            r.ports = "123";
          } else {
            r.ports = "443";
          }
        }
      } else if (u < 88 && public_web_ < apps_) {  // public web: each web-tier app once
        kind = "any->web";
        r.from = "any";
        r.to = app_env(public_web_, 0);  // a web-tier app (app % 5 == 0), prod
        r.ports = "80,443";
        public_web_ += 5;
      } else if (u < 93) {  // dev and staging never reach prod
        kind = "deny";
        r.priority = 20000 + static_cast<uint32_t>(rng_.below(1000));
        r.from = app_env(x, 1 + rng_.below(2));
        r.to = app_env(y, 0);
        r.protocol = "ip";
        r.action = pol::Action::kDeny;
        r.log = rng_.percent(50);
      } else if (u < 95) {
        kind = "reject";
        r.priority = 15000 + static_cast<uint32_t>(rng_.below(1000));
        r.from = app_env(x, e);
        r.to = app_env(y, e);
        r.protocol = "udp";
        r.ports = "1000-2000";
        r.action = pol::Action::kReject;
      } else if (u < 98) {
        kind = "dns";
        r.from = app_env(x, e);
        r.to = app_env(y, e);
        r.protocol = "udp";
        r.ports = "53";
      } else {
        kind = "icmp";
        r.from = app_env(x, e);
        r.to = app_env(y, e);
        r.protocol = "icmp";
      }
      s.rules.push_back(std::move(r));
      kinds_.push_back(kind);
    }
  }

  Options o_;
  Rng rng_;
  size_t apps_ = 0;
  size_t teams_ = 0;
  size_t public_web_ = 0;  // the next web-tier app without a public rule
  std::vector<std::string> cidrs_;
  std::vector<std::string> groups_;         // every group made so far
  std::vector<std::string> app_env_group_;  // [app * 3 + env], "" when there is none
  std::vector<std::string> tier_env_, team_env_, ops_, unions_, partners_;
  std::vector<std::string> kinds_;
};

// ---- glctld's replica ------------------------------------------------------------------

std::string uuid_n(size_t table, size_t n) {
  return strf("%08zx-0000-4000-8000-%012zx", table + 1, n);
}

// The state as the OVSDB replica glctld would hold (rows as glctl writes them).
std::optional<gl::ovsdb::Replica> make_replica(const gl::ovsdb::Schema& schema,
                                               const pol::DesiredState& s) {
  Json updates = Json::object();
  for (size_t i = 0; i < s.workloads.size(); ++i)
    updates["Workload"][uuid_n(0, i)] = Json{{"initial", gd::workload_row(s.workloads[i])}};
  for (size_t i = 0; i < s.groups.size(); ++i)
    updates["Group"][uuid_n(1, i)] = Json{{"initial", gd::group_row(s.groups[i])}};
  for (size_t i = 0; i < s.rules.size(); ++i)
    updates["Rule"][uuid_n(2, i)] = Json{{"initial", gd::rule_row(s.rules[i])}};
  std::vector<std::string> tables;
  for (std::string_view t : gd::kMonitoredTables) tables.emplace_back(t);
  auto r = gl::ovsdb::Replica::load_update2(schema, tables, updates);
  if (!r) {
    std::fprintf(stderr, "replica: %s\n", r.error().message.c_str());
    return std::nullopt;
  }
  return std::move(*r);
}

// ---- timing ---------------------------------------------------------------------------

using Clock = std::chrono::steady_clock;

double thread_cpu_ms() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

struct Sample {
  double wall_ms = 0;
  double cpu_ms = 0;
};

// Times one call of f(); its result is returned (and destroyed by the caller, untimed).
template <typename F>
auto timed(Sample& s, F&& f) {
  const double c0 = thread_cpu_ms();
  const auto t0 = Clock::now();
  auto r = f();
  s.wall_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  s.cpu_ms = thread_cpu_ms() - c0;
  return r;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n == 0 ? 0 : n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

void print_header() {
  std::printf("%-58s %9s %9s %9s %9s\n", "step (ms; wall min/median/max, CPU median)", "min",
              "median", "max", "cpu");
}

void print_row(const char* what, const std::vector<Sample>& s) {
  std::vector<double> wall, cpu;
  for (const Sample& x : s) {
    wall.push_back(x.wall_ms);
    cpu.push_back(x.cpu_ms);
  }
  std::printf("%-58s %9.2f %9.2f %9.2f %9.2f\n", what, *std::min_element(wall.begin(), wall.end()),
              median(wall), *std::max_element(wall.begin(), wall.end()), median(cpu));
}

// ---- sizes ----------------------------------------------------------------------------

struct VersionSize {
  size_t ports = 0;
  size_t entries = 0;
  size_t wildcard = 0;                                 // kAnyIdentity entries
  size_t min_port = 0, median_port = 0, max_port = 0;  // entries per port (both directions)
  size_t bytes = 0;     // the wire structs: prefixes, ports, addresses, entries
  size_t messages = 0;  // kFwBegin, ipcache pages, ports, entry pages, kFwCommit
};

size_t pages(size_t n, size_t per) {
  return (n + per - 1) / per;
}

VersionSize version_size(const gd::FwVersion& v, std::span<const api::FwPortSpec> specs) {
  VersionSize z;
  z.ports = specs.size();
  z.bytes = v.ipcache.size() * sizeof(api::FwPrefixWire);
  z.messages = 2 + pages(v.ipcache.size(), api::kFwMaxPrefixesPerMsg);
  std::vector<size_t> per;
  for (const api::FwPortSpec& p : specs) {
    const size_t n = p.from_vm.size() + p.to_vm.size();
    per.push_back(n);
    z.entries += n;
    for (const auto* list : {&p.from_vm, &p.to_vm})
      for (const api::FwEntryWire& e : *list) z.wildcard += e.remote == 0;
    z.bytes += sizeof(api::FwPortWire) + (p.ipv4.size() * 4 + 7) / 8 * 8 + p.ipv6.size() * 16 +
               n * sizeof(api::FwEntryWire);
    z.messages += 1 + pages(p.from_vm.size(), api::kFwMaxEntriesPerMsg) +
                  pages(p.to_vm.size(), api::kFwMaxEntriesPerMsg);
  }
  if (!per.empty()) {
    std::sort(per.begin(), per.end());
    z.min_port = per.front();
    z.median_port = per[per.size() / 2];
    z.max_port = per.back();
  }
  return z;
}

std::vector<api::FwPortSpec> specs_of(const gd::FwVersion& v) {
  std::vector<api::FwPortSpec> out;
  for (const gd::PortPlan& p : v.ports) out.push_back(p.spec);
  return out;
}

bool same_entries(const std::vector<api::FwEntryWire>& a, const std::vector<api::FwEntryWire>& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof a[0]) == 0);
}

// How many ports' tables differ between two versions of the same host (by position).
size_t ports_changed(const gd::FwVersion& a, const gd::FwVersion& b) {
  size_t n = 0;
  for (size_t i = 0; i < std::min(a.ports.size(), b.ports.size()); ++i) {
    const api::FwPortSpec& x = a.ports[i].spec;
    const api::FwPortSpec& y = b.ports[i].spec;
    n += x.identity != y.identity || !same_entries(x.from_vm, y.from_vm) ||
         !same_entries(x.to_vm, y.to_vm);
  }
  return n + std::max(a.ports.size(), b.ports.size()) - std::min(a.ports.size(), b.ports.size());
}

size_t ipcache_changed(const gd::FwVersion& a, const gd::FwVersion& b) {
  if (a.ipcache.size() != b.ipcache.size())
    return std::max(a.ipcache.size(), b.ipcache.size());  // shifted: count as all
  size_t n = 0;
  for (size_t i = 0; i < a.ipcache.size(); ++i)
    n += std::memcmp(&a.ipcache[i], &b.ipcache[i], sizeof a.ipcache[i]) != 0;
  return n;
}

// ---- the machine ----------------------------------------------------------------------

std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("model name", 0) == 0) {
      auto p = line.find(':');
      return p == std::string::npos ? line : line.substr(p + 2);
    }
  return "unknown";
}

std::string loadavg() {
  std::ifstream f("/proc/loadavg");
  std::string a, b, c;
  f >> a >> b >> c;
  return a + " " + b + " " + c;
}

// ---- the changes ----------------------------------------------------------------------

// A change and how it looks in the replica (an update2 "modify").
struct Change {
  std::string what;
  pol::DesiredState state;  // the state after it
  Json update;              // <table-updates2>
};

// One rule enforced on this host, its destination port moved to 15000: the lowest rule
// id among the tcp rules with ports that have entries on the host's ports.
std::optional<Change> rule_change(const pol::DesiredState& s, const pol::CompiledPolicy& c) {
  std::set<uint32_t> here;
  for (const pol::LocalWorkload& w : c.workloads)
    for (const auto* p : {&w.egress_from_vm, &w.ingress_to_vm})
      for (const pol::PolicyEntry& e : p->entries) here.insert(e.rule_id);
  for (size_t i = 0; i < s.rules.size(); ++i) {
    const pol::Rule& r = s.rules[i];
    if (!here.contains(r.rule_id) || r.protocol != "tcp" || r.ports.empty()) continue;
    Change ch;
    ch.what = strf("rule %u: ports \"%s\" -> \"15000\" (%s -> %s)", r.rule_id, r.ports.c_str(),
                   r.from.c_str(), r.to.c_str());
    ch.state = s;
    ch.state.rules[i].ports = "15000";
    ch.update = Json{{"Rule", {{uuid_n(2, i), {{"modify", {{"ports", "15000"}}}}}}}};
    return ch;
  }
  return std::nullopt;
}

// A workload on another host that this host's entries name, its env label changed: a new
// identity, one ipcache entry, the entries that named it.
std::optional<Change> label_change(const pol::DesiredState& s, const pol::CompiledPolicy& c) {
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < s.workloads.size(); ++i) index[s.workloads[i].name] = i;
  std::set<uint32_t> remote;
  for (const pol::LocalWorkload& w : c.workloads)
    for (const pol::PolicyEntry& e : w.ingress_to_vm.entries) remote.insert(e.remote_identity);
  for (uint32_t id : remote) {
    const pol::IdentityInfo* info = pol::find_identity(c, id);
    if (!info || info->kind != pol::IdentityKind::kWorkload) continue;
    const size_t i = index.at(info->workload);
    const pol::Workload& w = s.workloads[i];
    // Not a web-tier workload: those are in every port's egress table (public web rules).
    if (w.host == c.host || w.labels.at("tier") == "web") continue;
    const std::string env = w.labels.at("env") == "prod" ? "staging" : "prod";
    Change ch;
    ch.what = strf("workload %s (%s): env=%s -> env=%s", w.name.c_str(), w.host.c_str(),
                   w.labels.at("env").c_str(), env.c_str());
    ch.state = s;
    ch.state.workloads[i].labels["env"] = env;
    ch.update = Json{
        {"Workload",
         {{uuid_n(0, i),
           {{"modify",
             {{"labels", Json::array({"map", Json::array({Json::array({"env", env})})})}}}}}}}};
    return ch;
  }
  return std::nullopt;
}

// ---- gldp ------------------------------------------------------------------------------

// The first n local workloads' specs on gldp's first n ports (by number): a version's
// ports must be distinct ports of the gldp.
std::vector<api::FwPortSpec> specs_on(const gd::FwVersion& v, const std::vector<uint32_t>& nos) {
  std::vector<api::FwPortSpec> out;
  const size_t n = std::min(v.ports.size(), nos.size());
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    out.push_back(v.ports[i].spec);
    out.back().port_no = nos[i];
  }
  return out;
}

// glctld's link with the workloads' port names mapped onto the ports gldp has (the bench's
// workloads are named, gldp's ports are whatever it was started with).
class MappedLink : public gd::ApiLink {
 public:
  MappedLink(std::string path, std::map<std::string, uint32_t> names)
      : ApiLink(std::move(path)), names_(std::move(names)) {}
  std::expected<uint32_t, api::Error> port_no(const std::string& name) override {
    auto it = names_.find(name);
    if (it == names_.end()) return std::unexpected(api::Error{ENOENT, "not mapped: " + name});
    return it->second;
  }

 private:
  std::map<std::string, uint32_t> names_;
};

// v with its first n ports only (the ones gldp has a port for).
std::shared_ptr<const gd::FwVersion> first_ports(gd::FwVersion v, size_t n) {
  if (v.ports.size() > n) v.ports.resize(n);
  return std::make_shared<const gd::FwVersion>(std::move(v));
}

int bench_gldp(const Options& o, const pol::CompiledPolicy& base, const gd::FwVersion& v0,
               const Change& change, const std::string& host) {
  std::printf("\n== gldp at %s ==\n", o.gldp_socket.c_str());
  auto client = api::Client::connect(o.gldp_socket);
  if (!client) {
    std::printf("cannot connect: %s\n", client.error().message.c_str());
    return 1;
  }
  auto list = client->port_list();
  if (!list) {
    std::printf("port_list: %s\n", list.error().message.c_str());
    return 1;
  }
  std::vector<uint32_t> nos;
  for (const api::PortInfo& p : *list) nos.push_back(p.port_no);
  std::sort(nos.begin(), nos.end());
  if (nos.empty()) {
    std::printf("gldp has no ports: nothing to install on\n");
    return 1;
  }
  const size_t n = std::min(nos.size(), v0.ports.size());
  const std::vector<api::FwPortSpec> full = specs_on(v0, nos);
  const VersionSize z = version_size(v0, full);
  std::printf(
      "gldp has %zu ports: the first %zu of the host's %zu workloads go on ports %u..%u\n"
      "(a version names each port once); installed: %zu prefixes, %zu ports, %zu entries, "
      "%.2f MB, %zu messages\n",
      nos.size(), n, v0.ports.size(), nos.front(), nos[n - 1], v0.ipcache.size(), n, z.entries,
      static_cast<double>(z.bytes) / 1e6, z.messages);

  gd::ApiLink link(o.gldp_socket);
  if (auto c = link.connect(); !c) {
    std::printf("ApiLink: %s\n", c.error().message.c_str());
    return 1;
  }
  auto st = link.fw_status();
  if (!st) {
    std::printf("fw_status: %s\n", st.error().message.c_str());
    return 1;
  }
  const uint64_t before = st->generation;
  uint64_t gen = before;
  // glctld's own path: DpSync on a link whose port names are gldp's first n ports.
  std::map<std::string, uint32_t> names;
  for (size_t i = 0; i < n; ++i) names[v0.ports[i].port] = nos[i];
  MappedLink sync_link(o.gldp_socket, names);
  gd::DpSync sync(sync_link);
  const std::shared_ptr<const gd::FwVersion> v0n = first_ports(v0, n);
  uint64_t desired_id = 0;
  size_t delta_sent = 0;
  std::vector<Sample> install(o.repeat), e2e(o.repeat), e2e_delta(o.repeat), delta_sync(o.repeat);
  for (int i = 0; i < o.repeat; ++i) {
    // The full version (after the first round, also a change back from the changed one).
    auto ok = timed(install[i],
                    [&] { return link.fw_install(++gen, v0.ipcache, full, 0, {}, v0.hosts); });
    if (!ok) {
      std::printf("fw_install: %s\n", ok.error().message.c_str());
      return 1;
    }
    // The change, end to end: compile, convert, compare, map onto the ports, install.
    auto done = timed(e2e[i], [&]() -> std::expected<void, std::string> {
      auto c = pol::compile(change.state, host, 0, base.allocator);
      if (!c) return std::unexpected(c.error().text());
      gd::FwVersion v = gd::to_fw_version(*c);
      if (gd::same_version(v0, v)) return std::unexpected(std::string("no change"));
      const std::vector<api::FwPortSpec> specs = specs_on(v, nos);
      auto r = link.fw_install(++gen, v.ipcache, specs, 0, {}, v.hosts);  // as DpSync
      if (!r) return std::unexpected(r.error().message);
      return {};
    });
    if (!done) {
      std::printf("change: %s\n", done.error().c_str());
      return 1;
    }
    // The same change through DpSync, after it installed the unchanged version (whole:
    // the generation in force was not its own): a delta.
    sync.set_desired(v0n, ++desired_id);
    if (gd::SyncReport r = sync.sync(); r.pushed == 0 || !r.error.empty()) {
      std::printf("DpSync, the unchanged version: %s\n", r.error.c_str());
      return 1;
    }
    done = timed(e2e_delta[i], [&]() -> std::expected<void, std::string> {
      auto c = pol::compile(change.state, host, 0, base.allocator);
      if (!c) return std::unexpected(c.error().text());
      std::shared_ptr<const gd::FwVersion> v = first_ports(gd::to_fw_version(*c), n);
      if (gd::same_version(*v0n, *v)) return std::unexpected(std::string("no change"));
      sync.set_desired(v, ++desired_id);
      const gd::SyncReport r = timed(delta_sync[i], [&] { return sync.sync(); });
      if (!r.error.empty()) return std::unexpected(r.error);
      if (!r.delta) return std::unexpected("not a delta: " + r.delta_refused);
      delta_sent = r.ports_sent;
      return {};
    });
    if (!done) {
      std::printf("change through DpSync: %s\n", done.error().c_str());
      return 1;
    }
    gen = sync.generation();
  }
  print_header();
  print_row("fw_install, the full version", install);
  print_row("change: compile + to_fw_version + same + fw_install", e2e);
  print_row("change: compile + to_fw_version + DpSync (delta)", e2e_delta);
  print_row("  of which DpSync::sync() (port numbers, the delta)", delta_sync);
  std::printf("the delta sent %zu of %zu ports (DpSync also asks gldp for each port's number)\n",
              delta_sent, n);
  if (auto s2 = link.fw_status(); s2)
    std::printf("gldp enforces generation %llu on %u ports, %u prefixes\n",
                static_cast<unsigned long long>(s2->generation), s2->n_ports, s2->n_prefixes);
  if (before == 0) {
    auto cl = client->fw_clear();
    std::printf("%s\n", cl ? "firewall cleared again (gldp had none before)"
                           : ("fw_clear: " + cl.error().message).c_str());
  } else {
    std::printf("gldp had generation %llu before: generation %llu left in force\n",
                static_cast<unsigned long long>(before), static_cast<unsigned long long>(gen));
  }
  return 0;
}

// ---- main -----------------------------------------------------------------------------

void usage() {
  std::fprintf(
      stderr,
      "usage: gl-bench-policy [--quick] [--workloads N] [--hosts N] [--groups N] [--rules N]\n"
      "                       [--apps N] [--seed N] [--repeat N] [--host NAME]\n"
      "                       [--gldp-socket PATH]\n"
      "  default: 10000 workloads on 100 hosts, 1000 groups, 10000 rules, 200 apps, repeat 5\n"
      "  --quick        1000 workloads on 10 hosts, 100 groups, 1000 rules, repeat 3 (smoke)\n"
      "  --host NAME    the host compiled for (default hv-000)\n"
      "  --gldp-socket  also install into this gldp (the workloads are mapped onto its ports;\n"
      "                 its firewall is cleared afterwards if it had none)\n");
}

bool parse_size(const char* s, size_t& out) {
  char* end = nullptr;
  unsigned long long v = std::strtoull(s, &end, 10);
  if (end == s || *end != '\0') return false;
  out = static_cast<size_t>(v);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  bool repeat_given = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](size_t& out) {
      if (i + 1 >= argc || !parse_size(argv[++i], out)) {
        std::fprintf(stderr, "%s wants a number\n", a.c_str());
        std::exit(2);
      }
    };
    size_t n = 0;
    if (a == "--quick") {
      o.quick = true;
    } else if (a == "--workloads") {
      value(o.workloads);
    } else if (a == "--hosts") {
      value(o.hosts);
    } else if (a == "--groups") {
      value(o.groups);
    } else if (a == "--rules") {
      value(o.rules);
    } else if (a == "--apps") {
      value(o.apps);
    } else if (a == "--seed") {
      value(n);
      o.seed = n;
    } else if (a == "--repeat") {
      value(n);
      o.repeat = static_cast<int>(n);
      repeat_given = true;
    } else if (a == "--host" && i + 1 < argc) {
      o.host = argv[++i];
    } else if (a == "--gldp-socket" && i + 1 < argc) {
      o.gldp_socket = argv[++i];
    } else if (a == "--help" || a == "-h") {
      usage();
      return 0;
    } else {
      std::fprintf(stderr, "unknown argument: %s\n", a.c_str());
      usage();
      return 2;
    }
  }
  if (o.quick) {
    o.workloads = 1000;
    o.hosts = 10;
    o.groups = 100;
    o.rules = 1000;
    if (!repeat_given) o.repeat = 3;
  }
  if (o.workloads < 2 || o.hosts < 1 || o.rules < 2 || o.repeat < 1 || o.workloads >= 64000 * 255) {
    std::fprintf(stderr, "need 2 <= workloads < 16320000, hosts >= 1, rules >= 2, repeat >= 1\n");
    return 2;
  }
  if (o.host.empty()) o.host = Generator::host_name(0);

  std::printf("gl-bench-policy%s: %s, %ld CPUs, load %s\n", o.quick ? " (quick)" : "",
              cpu_model().c_str(), sysconf(_SC_NPROCESSORS_ONLN), loadavg().c_str());

  // The input.
  Generator gen(o);
  Sample gen_time;
  const pol::DesiredState state = timed(gen_time, [&] { return gen.make(); });
  size_t local = 0, labels = 0;
  for (const pol::Workload& w : state.workloads) {
    local += w.host == o.host;
    labels += w.labels.size();
  }
  std::printf(
      "input: %zu workloads on %zu hosts (%zu on %s), %zu apps, %zu labels; %zu groups; %zu "
      "rules; seed %llu (generated in %.0f ms)\n",
      state.workloads.size(), o.hosts, local, o.host.c_str(), gen.apps(), labels,
      state.groups.size(), state.rules.size(), static_cast<unsigned long long>(o.seed),
      gen_time.wall_ms);

  std::ifstream sf(GL_OVSDB_SCHEMA);
  if (!sf) {
    std::fprintf(stderr, "cannot read the schema %s\n", GL_OVSDB_SCHEMA);
    return 1;
  }
  auto schema = gl::ovsdb::Schema::parse(Json::parse(sf));
  if (!schema) {
    std::fprintf(stderr, "schema: %s\n", schema.error().message.c_str());
    return 1;
  }
  const std::optional<gl::ovsdb::Replica> replica = make_replica(*schema, state);
  if (!replica) return 1;

  auto first = pol::compile(state, o.host, 0, {});
  if (!first) {
    std::fprintf(stderr, "the generated state does not compile:\n%s\n",
                 first.error().text().c_str());
    return 1;
  }
  const pol::CompiledPolicy& base = *first;
  const gd::FwVersion v0 = gd::to_fw_version(base);
  const std::optional<Change> rule_ch = rule_change(state, base);
  const std::optional<Change> label_ch = label_change(state, base);
  if (!rule_ch || !label_ch) {
    std::fprintf(stderr, "no rule or workload to change found on %s\n", o.host.c_str());
    return 1;
  }

  // ---- the steps, each --repeat times ----
  const int rep = o.repeat;
  std::vector<Sample> t_validate(rep), t_compile(rep), t_recompile(rep), t_convert(rep),
      t_same(rep), t_text(rep), t_desired(rep);
  struct ChangeTimes {
    std::vector<Sample> compile, convert, same, total, glctld;
    gd::FwVersion version;
  };
  auto make_times = [&] {
    ChangeTimes t;
    for (auto* v : {&t.compile, &t.convert, &t.same, &t.total, &t.glctld}) v->resize(rep);
    return t;
  };
  ChangeTimes rc = make_times(), lc = make_times();
  bool ok = true;
  const gd::FwVersion v0_copy = v0;
  for (int i = 0; i < rep && ok; ++i) {
    ok &= timed(t_validate[i], [&] { return pol::validate(state); }).has_value();
    ok &= timed(t_compile[i], [&] { return pol::compile(state, o.host, 0, {}); }).has_value();
    ok &= timed(t_recompile[i], [&] {
            return pol::compile(state, o.host, 0, base.allocator);
          }).has_value();
    timed(t_convert[i], [&] { return gd::to_fw_version(base); });
    ok &= timed(t_same[i], [&] { return gd::same_version(v0, v0_copy); });
    timed(t_text[i], [&] {
      size_t n = 0;
      for (const pol::Rule& r : state.rules) n += pol::format_rule(r).size();
      return n;
    });
    ok &= timed(t_desired[i], [&] { return gd::desired_state(*replica); }).has_value();

    for (auto [ch, t] : {std::pair{&*rule_ch, &rc}, std::pair{&*label_ch, &lc}}) {
      // The model's path: compile with the running allocator, convert, compare.
      auto c =
          timed(t->compile[i], [&] { return pol::compile(ch->state, o.host, 0, base.allocator); });
      if (!c) {
        std::fprintf(stderr, "%s: %s\n", ch->what.c_str(), c.error().text().c_str());
        ok = false;
        break;
      }
      t->version = timed(t->convert[i], [&] { return gd::to_fw_version(*c); });
      if (timed(t->same[i], [&] { return gd::same_version(v0, t->version); })) {
        std::fprintf(stderr, "%s: compiles to the same version\n", ch->what.c_str());
        ok = false;
      }
      t->total[i].wall_ms = t->compile[i].wall_ms + t->convert[i].wall_ms + t->same[i].wall_ms;
      t->total[i].cpu_ms = t->compile[i].cpu_ms + t->convert[i].cpu_ms + t->same[i].cpu_ms;
      // glctld's path: the replica update arrives, then Daemon::compile().
      // glctld's StateCache has read the replica before the change (its initial load).
      gl::ovsdb::Replica r = *replica;
      gd::StateCache cache;
      if (!cache.state(r)) return 1;
      auto v = timed(t->glctld[i], [&]() -> std::expected<gd::FwVersion, std::string> {
        auto u = r.apply_update2(*schema, ch->update);
        if (!u) return std::unexpected("update2: " + u.error().message);
        cache.note(*u);  // the client's change handler
        auto s = cache.state(r);
        if (!s) return std::unexpected("desired_state: " + s.error().text());
        auto c2 = pol::compile(**s, o.host, 0, base.allocator);
        if (!c2) return std::unexpected("compile: " + c2.error().text());
        gd::FwVersion fv = gd::to_fw_version(*c2);
        // (glctld formats rule texts only when asked: dump-rules, trace)
        if (gd::same_version(v0, fv)) return std::unexpected(std::string("the same version"));
        return fv;
      });
      if (!v) std::fprintf(stderr, "%s: glctld path: %s\n", ch->what.c_str(), v.error().c_str());
      ok &= v.has_value();
    }
  }
  if (!ok) {
    std::fprintf(stderr, "a step failed (the generated state or a change did not compile)\n");
    return 1;
  }

  std::printf("\n== compile for %s, %d runs ==\n", o.host.c_str(), rep);
  print_header();
  print_row("policy::validate()", t_validate);
  print_row("policy::compile(), fresh allocator (validation included)", t_compile);
  print_row("policy::compile(), the running allocator", t_recompile);
  print_row("glctld::to_fw_version()", t_convert);
  print_row("glctld::same_version(), equal versions (full compare)", t_same);
  print_row("policy::format_rule() of every rule (glctld's rule text)", t_text);
  print_row("glctld::desired_state() of the OVSDB replica", t_desired);
  for (auto [ch, t] : {std::pair{&*rule_ch, &rc}, std::pair{&*label_ch, &lc}}) {
    std::printf("\n== change: %s ==\n", ch->what.c_str());
    print_header();
    print_row("compile(), the running allocator", t->compile);
    print_row("to_fw_version()", t->convert);
    print_row("same_version() (differs)", t->same);
    print_row("new version for every port: the three above", t->total);
    print_row("glctld: update2, the rows it names read, + the above", t->glctld);
    std::printf("ports whose tables changed: %zu of %zu; ipcache entries changed: %zu\n",
                ports_changed(v0, t->version), v0.ports.size(), ipcache_changed(v0, t->version));
  }

  // ---- sizes ----
  size_t ids_workload = 0, ids_cidr = 0, ipv4 = 0;
  for (const pol::IdentityInfo& id : base.identities) {
    ids_workload += id.kind == pol::IdentityKind::kWorkload;
    ids_cidr += id.kind == pol::IdentityKind::kCidr;
  }
  for (const api::FwPrefixWire& p : v0.ipcache) ipv4 += p.family == 4;
  const std::vector<api::FwPortSpec> all_specs = specs_of(v0);
  const VersionSize z = version_size(v0, all_specs);
  std::printf("\n== sizes for %s ==\n", o.host.c_str());
  std::printf("identities                 %zu (%zu workloads, %zu CIDRs, world)\n",
              base.identities.size(), ids_workload, ids_cidr);
  std::printf("ipcache entries            %zu (%zu IPv4)\n", v0.ipcache.size(), ipv4);
  std::printf("local ports                %zu\n", z.ports);
  std::printf(
      "policy entries, all ports  %zu (%zu wildcard); per port min/median/max %zu/%zu/%zu\n",
      z.entries, z.wildcard, z.min_port, z.median_port, z.max_port);
  std::printf(
      "dpapi version              %.2f MB in %zu messages: %zu x %zu B prefixes, %zu x %zu "
      "B ports + addresses, %zu x %zu B entries\n",
      static_cast<double>(z.bytes) / 1e6, z.messages, v0.ipcache.size(), sizeof(api::FwPrefixWire),
      z.ports, sizeof(api::FwPortWire), z.entries, sizeof(api::FwEntryWire));
  // Which rules the entries come from (rule ids are 1 + the generator's index).
  std::map<std::string, std::pair<size_t, size_t>> by_kind;  // kind -> rules, entries
  for (const std::string& k : gen.rule_kinds()) ++by_kind[k].first;
  for (const pol::LocalWorkload& w : base.workloads)
    for (const auto* p : {&w.egress_from_vm, &w.ingress_to_vm})
      for (const pol::PolicyEntry& e : p->entries)
        ++by_kind[gen.rule_kinds()[e.rule_id - 1]].second;
  std::printf("entries by rule kind       ");
  for (const auto& [k, n] : by_kind) std::printf(" %s %zu/%zu", k.c_str(), n.second, n.first);
  std::printf("  (entries/rules)\n");
  std::printf("compiler warnings          %zu\n", base.warnings.size());
  std::printf("not measured: glctld's 20 ms debounce before a compile; the install into gldp%s\n",
              o.gldp_socket.empty() ? " (--gldp-socket)" : " (below)");

  if (!o.gldp_socket.empty()) return bench_gldp(o, base, v0, *rule_ch, o.host);
  return 0;
}
