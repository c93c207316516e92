// gl-dpctl — ovs-dpctl-style control of a gldp datapath through the datapath API.
#include <time.h>
#include <nlohmann/json.hpp>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "dataplane/api/client.hpp"
#include "dataplane/api/odp_text.hpp"

namespace {

using gl::api::Client;
using nlohmann::json;

constexpr const char* kUsage = R"(usage: gl-dpctl [--socket PATH] COMMAND [ARG...]

Control a Goldilocks datapath (gldp) the way ovs-dpctl controls an OVS datapath.
Flows and actions use OVS's datapath (ODP) syntax.

Commands:
  show [--json]                    datapath, ports with counters, PMDs, drops by reason
  add-port NAME DEVARGS [port_no=N] [rxq=N] [mtu=N]
                                   add a DPDK port, e.g.
                                   add-port p1 net_af_packet0,iface=veth0
  del-port NAME|NUMBER             remove a port (traffic to it is dropped and counted)
  add-flow FLOW ACTIONS            install a megaflow
  mod-flow [--clear] FLOW ACTIONS  change a flow's actions (--clear zeroes its stats)
  del-flow FLOW | ufid:UFID        remove one flow
  get-flow FLOW | ufid:UFID        print one flow
  dump-flows [-m] [--json]         print all flows (-m: with UFIDs)
  del-flows                        remove all flows
  stats-clear                      zero PMD and drop counters
  set-config KEY VALUE             runtime setting: emc-insert-inv-prob N

Options:
  --socket PATH   gldp's API socket (default $GLDP_SOCKET or /run/gldp/gldp.sock)
  -h, --help      this text

FLOW examples:
  in_port(1),eth_type(0x0800),ipv4(dst=10.0.0.2/255.255.255.255)
  in_port(2),eth(src=00:00:00:00:00:01,dst=00:00:00:00:00:02),eth_type(0x0806)
ACTIONS examples:
  2    1,2    drop    push_vlan(vid=10,pcp=0),2    pop_vlan,1
  set(ipv4(dst=10.0.0.9)),2    recirc(1)    userspace(pid=0,userdata(01))
  hash(l4(0)),recirc(2)    clone(set(eth(dst=00:00:00:00:00:09)),3),2

Exit status: 0 success, 1 the datapath refused or failed, 2 usage error.
)";

int usage_error(const std::string& msg) {
  std::fprintf(stderr, "gl-dpctl: %s\n(try gl-dpctl --help)\n", msg.c_str());
  return 2;
}

int fail(const std::string& what, const gl::api::Error& e) {
  std::fprintf(stderr, "gl-dpctl: %s: %s\n", what.c_str(), e.message.c_str());
  return 1;
}

std::string mac_str(const uint8_t* m) {
  char b[18];
  std::snprintf(b, sizeof b, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
  return b;
}

uint64_t now_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000 + uint64_t(ts.tv_nsec) / 1000000;
}

std::string used_str(uint64_t used_ms) {
  if (used_ms == 0) return "never";
  uint64_t now = now_ms();
  uint64_t ago = now > used_ms ? now - used_ms : 0;
  char b[32];
  std::snprintf(b, sizeof b, "%.3fs", static_cast<double>(ago) / 1000.0);
  return b;
}

std::string tcp_flags_str(uint16_t f) {
  // OVS prints the flags seen as letters: F S R P . (ack) U E C
  static const char* names[] = {"F", "S", "R", "P", ".", "U", "E", "C"};
  uint16_t h = static_cast<uint16_t>((f >> 8) | (f << 8));  // network → host order
  std::string s;
  for (int i = 0; i < 8; ++i)
    if (h & (1u << i)) s += names[i];
  return s;
}

std::vector<uint8_t> parse_actions_or_exit(const std::string& text, int& rc) {
  auto a = gl::odp::parse_actions(text);
  if (!a) {
    std::fprintf(stderr, "gl-dpctl: bad actions: %s\n", a.error().c_str());
    rc = 2;
    return {};
  }
  return *a;
}

// FLOW text or ufid:UFID → UFID.
bool flow_ufid(const std::string& arg, gl::api::Ufid& out, std::string& err) {
  if (arg.rfind("ufid:", 0) == 0) {
    auto u = gl::api::parse_ufid(arg);
    if (!u) {
      err = "bad UFID '" + arg + "' (want ufid: and 32 hex digits)";
      return false;
    }
    out = *u;
    return true;
  }
  auto m = gl::odp::parse_flow(arg);
  if (!m) {
    err = "bad flow: " + m.error();
    return false;
  }
  out = gl::api::ufid_from_match(*m);
  return true;
}

json port_json(const gl::api::PortInfo& p) {
  return json{{"port_no", p.port_no},
              {"name", p.name},
              {"devargs", p.devargs},
              {"driver", p.driver},
              {"mac", mac_str(p.mac)},
              {"mtu", p.mtu},
              {"link_up", p.link_up != 0},
              {"link_speed_mbps", p.link_speed_mbps},
              {"rx_queues", p.n_rxq},
              {"tx_queues", p.n_txq},
              {"rx_packets", p.stats.rx_packets},
              {"rx_bytes", p.stats.rx_bytes},
              {"tx_packets", p.stats.tx_packets},
              {"tx_bytes", p.stats.tx_bytes},
              {"rx_dropped", p.stats.rx_dropped},
              {"tx_dropped", p.stats.tx_dropped},
              {"rx_errors", p.stats.rx_errors},
              {"tx_errors", p.stats.tx_errors}};
}

int cmd_show(Client& c, bool as_json) {
  auto info = c.info();
  if (!info) return fail("show", info.error());
  auto ports = c.port_list();
  if (!ports) return fail("show", ports.error());
  auto st = c.stats();
  if (!st) return fail("show", st.error());
  const double hz = static_cast<double>(st->totals.tsc_hz);

  json pmds = json::array();
  for (auto& p : st->pmds) {
    uint64_t lookups = p.emc_hits + p.megaflow_hits + p.misses;
    double cpp = p.packets ? static_cast<double>(p.busy_cycles) / p.packets : 0.0;
    pmds.push_back({{"core", p.core},
                    {"rx_queues", p.n_rxq},
                    {"packets", p.packets},
                    {"batches", p.batches},
                    {"emc_hits", p.emc_hits},
                    {"megaflow_hits", p.megaflow_hits},
                    {"misses", p.misses},
                    {"emc_hit_rate", lookups ? double(p.emc_hits) / lookups : 0.0},
                    {"megaflow_hit_rate", lookups ? double(p.megaflow_hits) / lookups : 0.0},
                    {"upcalls", p.upcalls},
                    {"upcalls_lost", p.upcalls_lost},
                    {"recirculations", p.recirculations},
                    {"busy_cycles", p.busy_cycles},
                    {"idle_cycles", p.idle_cycles},
                    {"cycles_per_packet", cpp}});
  }
  json drops = json::object();
  for (auto& d : st->drops) drops[d.name] = d.count;

  if (as_json) {
    json ps = json::array();
    for (auto& p : *ports) ps.push_back(port_json(p));
    json j{{"version", info->version},
           {"api_version", info->api_version},
           {"pmd_cores", info->pmd_cores},
           {"flows", info->n_flows},
           {"ports", ps},
           {"pmds", pmds},
           {"drops", drops},
           {"upcalls_delivered", st->totals.upcalls_delivered},
           {"upcalls_lost", st->totals.upcalls_lost},
           {"tsc_hz", st->totals.tsc_hz}};
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("%s: pmd cores %s, flows: %" PRIu64 ", upcalls delivered: %" PRIu64 " lost: %" PRIu64
              "\n",
              info->version, info->pmd_cores, info->n_flows, st->totals.upcalls_delivered,
              st->totals.upcalls_lost);
  for (auto& p : *ports) {
    std::printf("  port %u: %s (%s) %s mtu %u %s\n", p.port_no, p.name, p.driver,
                mac_str(p.mac).c_str(), p.mtu, p.link_up ? "up" : "down");
    std::printf("    RX packets:%" PRIu64 " bytes:%" PRIu64 " dropped:%" PRIu64 " errors:%" PRIu64
                "\n",
                p.stats.rx_packets, p.stats.rx_bytes, p.stats.rx_dropped, p.stats.rx_errors);
    std::printf("    TX packets:%" PRIu64 " bytes:%" PRIu64 " dropped:%" PRIu64 " errors:%" PRIu64
                "\n",
                p.stats.tx_packets, p.stats.tx_bytes, p.stats.tx_dropped, p.stats.tx_errors);
  }
  for (auto& p : pmds) {
    std::printf(
        "  pmd core %u: rxqs:%u packets:%" PRIu64 " emc hits:%" PRIu64 " megaflow hits:%" PRIu64
        " misses:%" PRIu64 " upcalls:%" PRIu64 " lost:%" PRIu64 " cycles/pkt:%.1f\n",
        p["core"].get<unsigned>(), p["rx_queues"].get<unsigned>(), p["packets"].get<uint64_t>(),
        p["emc_hits"].get<uint64_t>(), p["megaflow_hits"].get<uint64_t>(),
        p["misses"].get<uint64_t>(), p["upcalls"].get<uint64_t>(),
        p["upcalls_lost"].get<uint64_t>(), p["cycles_per_packet"].get<double>());
  }
  (void)hz;
  bool any = false;
  for (auto& d : st->drops) {
    if (d.count == 0) continue;
    if (!any) std::printf("  drops:\n");
    any = true;
    std::printf("    %s: %" PRIu64 "\n", d.name, d.count);
  }
  if (!any) std::printf("  drops: none\n");
  return 0;
}

bool parse_opt_num(const std::string& arg, const char* key, unsigned long max, unsigned long& v) {
  std::string k = std::string(key) + "=";
  if (arg.rfind(k, 0) != 0) return false;
  char* end = nullptr;
  std::string s = arg.substr(k.size());
  errno = 0;
  v = std::strtoul(s.c_str(), &end, 10);
  return !s.empty() && *end == '\0' && errno == 0 && v <= max;
}

}  // namespace

int main(int argc, char** argv) {
  std::string sock =
      std::getenv("GLDP_SOCKET") ? std::getenv("GLDP_SOCKET") : "/run/gldp/gldp.sock";
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (a == "--socket") {
      if (i + 1 >= argc) return usage_error("--socket needs a path");
      sock = argv[++i];
    } else if (a.rfind("--socket=", 0) == 0) {
      sock = a.substr(9);
    } else {
      args.push_back(a);
    }
  }
  if (args.empty()) return usage_error("missing command");
  const std::string cmd = args[0];
  auto nargs = [&](size_t lo, size_t hi) { return args.size() - 1 >= lo && args.size() - 1 <= hi; };

  // Check the command line completely before connecting.
  static const char* kCommands[] = {"show",      "add-port",    "del-port",  "add-flow",
                                    "mod-flow",  "del-flow",    "get-flow",  "dump-flows",
                                    "del-flows", "stats-clear", "set-config"};
  bool known = false;
  for (const char* k : kCommands) known |= cmd == k;
  if (!known) return usage_error("unknown command '" + cmd + "'");

  auto conn = Client::connect(sock);
  if (!conn) return fail("cannot reach gldp", conn.error());
  Client& c = *conn;

  if (cmd == "show") {
    bool js = false;
    for (size_t i = 1; i < args.size(); ++i) {
      if (args[i] == "--json")
        js = true;
      else
        return usage_error("show: unknown argument '" + args[i] + "'");
    }
    return cmd_show(c, js);
  }
  if (cmd == "add-port") {
    if (!nargs(2, 5)) return usage_error("add-port NAME DEVARGS [port_no=N] [rxq=N] [mtu=N]");
    unsigned long port_no = gl::api::kPortAny, rxq = 0, mtu = 0, v;
    for (size_t i = 3; i < args.size(); ++i) {
      if (parse_opt_num(args[i], "port_no", 255, v))
        port_no = v;
      else if (parse_opt_num(args[i], "rxq", 64, v) && v > 0)
        rxq = v;
      else if (parse_opt_num(args[i], "mtu", 65535, v) && v >= 68)
        mtu = v;
      else
        return usage_error("add-port: bad option '" + args[i] +
                           "' (port_no=0..255, rxq=1..64, mtu=68..65535)");
    }
    auto r = c.port_add(args[1], args[2], static_cast<uint32_t>(port_no),
                        static_cast<uint16_t>(rxq), static_cast<uint16_t>(mtu));
    if (!r) return fail("add-port " + args[1], r.error());
    std::printf("added port %u: %s\n", r->port_no, r->name);
    return 0;
  }
  if (cmd == "del-port") {
    if (!nargs(1, 1)) return usage_error("del-port NAME|NUMBER");
    const std::string& t = args[1];
    bool numeric = !t.empty() && t.find_first_not_of("0123456789") == std::string::npos;
    auto r = numeric ? c.port_del(static_cast<uint32_t>(std::stoul(t))) : c.port_del(t);
    if (!r) return fail("del-port " + t, r.error());
    return 0;
  }
  if (cmd == "add-flow" || cmd == "mod-flow") {
    bool clear = false;
    std::vector<std::string> rest;
    for (size_t i = 1; i < args.size(); ++i) {
      if (cmd == "mod-flow" && args[i] == "--clear")
        clear = true;
      else
        rest.push_back(args[i]);
    }
    if (rest.size() != 2) return usage_error(cmd + " FLOW ACTIONS");
    auto m = gl::odp::parse_flow(rest[0]);
    if (!m) return usage_error("bad flow: " + m.error());
    int rc = 0;
    auto acts = parse_actions_or_exit(rest[1], rc);
    if (rc) return rc;
    gl::api::FlowPut fp;
    fp.match = *m;
    fp.ufid = gl::api::ufid_from_match(*m);
    fp.flags = cmd == "add-flow" ? gl::api::kPutCreate
                                 : (gl::api::kPutModify | (clear ? gl::api::kPutZeroStats : 0));
    fp.actions = std::move(acts);
    auto r = c.flow_put(std::span(&fp, 1));
    if (!r) return fail(cmd, r.error());
    if ((*r)[0].error != 0) {
      std::fprintf(stderr, "gl-dpctl: %s: %s\n", cmd.c_str(),
                   (*r)[0].message[0] ? (*r)[0].message : std::strerror((*r)[0].error));
      return 1;
    }
    return 0;
  }
  if (cmd == "del-flow" || cmd == "get-flow") {
    if (!nargs(1, 1)) return usage_error(cmd + " FLOW | ufid:UFID");
    gl::api::Ufid u;
    std::string err;
    if (!flow_ufid(args[1], u, err)) return usage_error(err);
    if (cmd == "del-flow") {
      auto r = c.flow_del(std::span(&u, 1));
      if (!r) return fail(cmd, r.error());
      if ((*r)[0].error != 0) {
        std::fprintf(stderr, "gl-dpctl: del-flow: %s\n", (*r)[0].message);
        return 1;
      }
      return 0;
    }
    auto f = c.flow_get(u);
    if (!f) return fail(cmd, f.error());
    std::printf("ufid:%s, %s, packets:%" PRIu64 ", bytes:%" PRIu64 ", used:%s, actions:%s\n",
                gl::api::format_ufid(f->ufid).c_str(), gl::odp::format_flow(f->match).c_str(),
                f->stats.packets, f->stats.bytes, used_str(f->stats.used_ms).c_str(),
                gl::odp::format_actions(f->actions).c_str());
    return 0;
  }
  if (cmd == "dump-flows") {
    bool js = false, more = false;
    for (size_t i = 1; i < args.size(); ++i) {
      if (args[i] == "--json")
        js = true;
      else if (args[i] == "-m" || args[i] == "--more")
        more = true;
      else
        return usage_error("dump-flows: unknown argument '" + args[i] + "'");
    }
    json all = json::array();
    auto r = c.flow_dump([&](const gl::api::Flow& f) {
      std::string flow = gl::odp::format_flow(f.match);
      std::string acts = gl::odp::format_actions(f.actions);
      if (js) {
        all.push_back({{"ufid", gl::api::format_ufid(f.ufid)},
                       {"flow", flow},
                       {"actions", acts},
                       {"packets", f.stats.packets},
                       {"bytes", f.stats.bytes},
                       {"used_ms", f.stats.used_ms},
                       {"tcp_flags", tcp_flags_str(f.stats.tcp_flags)}});
      } else {
        std::string flags = tcp_flags_str(f.stats.tcp_flags);
        std::printf("%s%s, packets:%" PRIu64 ", bytes:%" PRIu64 ", used:%s%s, actions:%s\n",
                    more ? ("ufid:" + gl::api::format_ufid(f.ufid) + ", ").c_str() : "",
                    flow.c_str(), f.stats.packets, f.stats.bytes, used_str(f.stats.used_ms).c_str(),
                    flags.empty() ? "" : (", flags:" + flags).c_str(), acts.c_str());
      }
      return true;
    });
    if (!r) return fail("dump-flows", r.error());
    if (js) std::printf("%s\n", all.dump(2).c_str());
    return 0;
  }
  if (cmd == "del-flows") {
    if (!nargs(0, 0)) return usage_error("del-flows takes no arguments");
    auto r = c.flow_flush();
    if (!r) return fail("del-flows", r.error());
    return 0;
  }
  if (cmd == "stats-clear") {
    auto r = c.stats_clear();
    if (!r) return fail("stats-clear", r.error());
    return 0;
  }
  if (cmd == "set-config") {
    if (!nargs(2, 2)) return usage_error("set-config KEY VALUE");
    auto r = c.set_config(args[1], args[2]);
    if (!r) return fail("set-config", r.error());
    return 0;
  }
  return usage_error("unknown command '" + cmd + "'");
}
