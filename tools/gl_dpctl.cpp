// gl-dpctl — ovs-dpctl-style control of a gldp datapath through the datapath API.
#include <arpa/inet.h>
#include <time.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <expected>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "crypto/types.hpp"
#include "dataplane/api/client.hpp"
#include "dataplane/api/odp_text.hpp"
#include "dataplane/conntrack/tcp.hpp"
#include "dataplane/firewall/fw_events.hpp"
#include "dataplane/firewall/fw_tables.hpp"

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
                                   or an ESP port (encrypts towards a peer):
                                   add-port esp1 gl_esp,underlay=PORT,group=N,
                                            local=IP,remote=IP
  del-port NAME|NUMBER             remove a port (traffic to it is dropped and counted)
  set-port NAME|NUMBER mtu=N       change a port's MTU (68..2030; tap and af_packet
                                   ports change their kernel interface too)
  add-flow FLOW ACTIONS            install a megaflow
  mod-flow [--clear] FLOW ACTIONS  change a flow's actions (--clear zeroes its stats)
  del-flow FLOW | ufid:UFID        remove one flow
  get-flow FLOW | ufid:UFID        print one flow
  dump-flows [-m] [--json]         print all flows (-m: with UFIDs)
  del-flows                        remove all flows
  stats-clear                      zero PMD and drop counters
  set-config KEY VALUE             runtime setting: emc-insert-inv-prob N
  add-sa KEY=VALUE...              add an ESP security association (tunnel mode):
      spi=N dir=out|in key=HEX72 (32-byte key + 4-byte salt; or key=HEX64 salt=HEX8)
      local=IP remote=IP           underlay (outer) addresses, both IPv4 or both IPv6
      out only: group=N (>= 1) src_mac=MAC dst_mac=MAC (underlay Ethernet header)
      [pmd=N|control|any]          the context using the SA (default 0; control = the
                                   API's execute; any = inbound, one context guaranteed)
      [cipher=aes256-gcm|chacha20-poly1305] [backend=auto|sodium|ipsec-mb] [esn=yes|no]
      [ttl=N] [df=yes|no] [replay_window=N] (inbound) [seq_start=N] [mode=tunnel]
      [mtu=N]                      out: underlay IP MTU; bigger frames are dropped
                                   (esp_too_big), IPv4+DF ones get ICMP "frag needed"
      [replace=yes]                out: take over the group's slot for this pmd from the
                                   SA there now, in one step (rotation; add the peer's
                                   inbound SA first); the old SA is removed
  del-sa spi=N dir=out|in [grace=MS]
                                   remove an SA (its key is wiped); with grace=MS it keeps
                                   working MS milliseconds more (rotation: the old inbound
                                   SA while packets sent under it may still arrive)
  dump-sas [--show-keys] [--json]  SAs with counters; keys only with --show-keys

Connection tracking (the tracker of OVS's ct() action; zones 0..65535):
  dump-conntrack [zone=N] [-m] [-s] [--json]
                                   connections in OVS's dump-conntrack format
                                   (-m: status and both TCP ends; -s: packets, bytes,
                                   timeout)
  flush-conntrack [zone=N] [ORIG-TUPLE [REPLY-TUPLE]]
                                   remove every connection, a zone's, or those matching
                                   the tuples; a TUPLE is OVS's ct-tuple, e.g.
                                   'ct_nw_src=10.1.1.1,ct_nw_dst=10.1.1.2,ct_nw_proto=17,
                                   ct_tp_src=1000,ct_tp_dst=2000' (also ct_ipv6_src,
                                   ct_ipv6_dst, icmp_id, icmp_type, icmp_code); fields
                                   left out match anything
  ct-stats-show [zone=N] [-m] [--json]
                                   connections per protocol (-m: per TCP state) and the
                                   tracker's counters (invalid packets by reason, limits)
  ct-stats-clear                   zero the tracker's counters
  ct-get-maxconns                  the global connection limit
  ct-set-maxconns N                set it (0..the table's capacity)
  ct-get-nconns                    connections tracked now
  ct-set-limits [default=N] [zone=N,limit=N]...
                                   connection limits: the default for zones without their
                                   own, and per zone (0 = unlimited)
  ct-get-limits [zone=N[,N...]]    the default and the zones' limits with their counts
                                   (no zones: every zone with its own limit)
  ct-del-limits zone=N[,N...]      zones fall back to the default limit
  ct-enable-tcp-seq-chk | ct-disable-tcp-seq-chk | ct-get-tcp-seq-chk
                                   TCP sequence-number checking (on by default)
  ct-set-timeout-policy ID [CLASS=SECONDS]...
                                   create or replace timeout policy ID (1..1023; 0 changes
                                   the defaults): the classes given, the defaults for the
                                   rest; CLASS is tcp_syn_sent, tcp_syn_recv,
                                   tcp_established, tcp_fin_wait, tcp_time_wait, tcp_close,
                                   udp_first, udp_single, udp_multiple, icmp_first,
                                   icmp_reply. ct(commit,timeout=ID) applies it
  ct-get-timeout-policy ID [--json]
                                   a policy's timeouts, every class
  ct-del-timeout-policy ID         remove it (its connections fall back to the defaults)
  ct-dump-timeout-policies [--json]
                                   every policy, the default (id 0) first

IP fragment reassembly (before ct(); OVS's dpctl/ipf-* with OVS's output):
  ipf-set-enabled v4|v6 | ipf-set-disabled v4|v6
                                   reassemble that family's fragments (on by default)
  ipf-set-min-frag v4|v6 N         smallest non-last fragment accepted, bytes (>= 400;
                                   defaults 1200 / 1280)
  ipf-set-max-nfrags N             fragments held at once (0..5000, default 1000)
  ipf-get-status [-m] [--json]     settings and counters (-m: the datagrams being
                                   reassembled; --json: also refusals by reason)

Distributed firewall (installed by glctld; glctl status tells why):
  fw-status [--json]               the firewall version in force: its generation (0: none),
                                   workload ports, ipcache prefixes, and the connections in
                                   the firewall's tracker (of its capacity)
  fw-rule-stats [--json]           per rule id: connections allowed (deny/reject rules:
                                   attempts refused), packets and bytes; rule 0 = the
                                   ports' default actions
  fw-dump-conntrack [zone=N] [-m] [-s] [--json]
  fw-flush-conntrack [zone=N] [ORIG-TUPLE [REPLY-TUPLE]]
                                   dump-conntrack / flush-conntrack on the firewall's own
                                   tracker (zone = the workload's port number, mark = the
                                   rule that allowed the connection; policy=older / JSON
                                   "current": false: allowed by an older policy of its
                                   port, checked again at its next packet)
  fw-trace port=N from-vm|to-vm TUPLE [mac=MAC]
                                   what the firewall in force does with a packet: the
                                   remote's identity, the rule and action of its policy
                                   for a first packet, the spoof guard (from-vm; mac= also
                                   checks the source MAC) and the tracked connection of
                                   the tuple; TUPLE as flush-conntrack's, complete
  fw-events [max=N] [--json]       connection records and refusals waiting in gldp (each
                                   is handed out once: glctld normally takes them)
  fw-install FILE|-                install a firewall version written as JSON (tests,
                                   benchmarks, debugging; glctld puts its own back at its
                                   next check): {"generation": N (default: the current + 1),
                                   "record": "none"|"refusals"|"all", "ipcache":
                                   [{"prefix": "10.0.0.0/24", "identity": 10}], "ports":
                                   [{"port": 1, "identity": 10, "mac": "02:..", "ipv4":
                                   ["10.0.0.1"], "ipv6": [], "conn_limit": 0,
                                   "default_from_vm": "deny", "default_to_vm": "deny",
                                   "from_vm": [{"remote": 20|"any", "proto": "tcp"|6,
                                   "ports": "5432"|"1000-2000", "action": "allow", "log":
                                   false, "rule_id": 1}], "to_vm": [...]}], "quarantine":
                                   ["vnet7"] (workload ports not there yet: closed
                                   both ways when added, until a version binds them)}
  fw-update FILE|-                 install a version as its changes to the one in force
                                   (refused, nothing changed, if another came meanwhile):
                                   fw-install's fields, and "base": N (default: the
                                   generation in force), "remove": [port numbers]; "ports"
                                   replace theirs or are added, other ports keep their
                                   tables (and their connections need no re-check);
                                   "ipcache", when given, replaces the ipcache and the
                                   hosts; "quarantine" is the whole list
  fw-clear                         no firewall on any port (and gldp forgets its
                                   workload ports: a restarted gldp keeps none closed)

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
  esp_encrypt(group=1),2   (encrypt with group 1's SA, send to the underlay port 2)
  esp_decrypt,recirc(1)    (on ESP from the underlay: decrypt, recirculate the inner frame)
  ct(commit,zone=5),2    ct(zone=5),recirc(1)    (connection tracking)
ESP example (one direction each way, static keys):
  gl-dpctl add-sa spi=0x1001 dir=out group=1 key=<72 hex digits> local=192.0.2.1 \
           remote=192.0.2.2 src_mac=02:00:00:00:ee:01 dst_mac=02:00:00:00:ee:02
  gl-dpctl add-sa spi=0x1002 dir=in key=<72 hex digits> local=192.0.2.1 remote=192.0.2.2

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
              {"rx_checksum_offload", (p.offloads & gl::api::kPortRxChecksum) != 0},
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
                    {"esp_fragmented", p.esp_fragmented},
                    {"esp_handoffs", p.esp_handoffs},
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
           {"miss_hold",
            {{"held", st->totals.misses_held},
             {"run", st->totals.misses_held_run},
             {"sent_up", st->totals.misses_held_sent_up},
             {"full", st->totals.misses_hold_full}}},
           {"tsc_hz", st->totals.tsc_hz}};
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("%s: pmd cores %s, flows: %" PRIu64 ", upcalls delivered: %" PRIu64 " lost: %" PRIu64
              "\n",
              info->version, info->pmd_cores, info->n_flows, st->totals.upcalls_delivered,
              st->totals.upcalls_lost);
  if (st->totals.misses_held || st->totals.misses_hold_full)
    std::printf("  repeated misses held: %" PRIu64 " (run through their new flow: %" PRIu64
                ", sent up: %" PRIu64 "), sent up with the hold full: %" PRIu64 "\n",
                st->totals.misses_held, st->totals.misses_held_run, st->totals.misses_held_sent_up,
                st->totals.misses_hold_full);
  for (auto& p : *ports) {
    std::printf("  port %u: %s (%s) %s mtu %u %s%s\n", p.port_no, p.name, p.driver,
                mac_str(p.mac).c_str(), p.mtu, p.link_up ? "up" : "down",
                (p.offloads & gl::api::kPortRxChecksum) != 0 ? " rx-checksum-offload" : "");
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

// ---- ESP SAs -------------------------------------------------------------------------

// The wire's cipher and backend names, and the per-SA counters' (crypto::Result's).
constexpr const auto& kCipherNames = gl::api::kSaCipherNames;
constexpr const auto& kBackendNames = gl::api::kSaBackendNames;
constexpr const auto& kResultNames = gl::crypto::kResultNames;
static_assert(std::size(gl::crypto::kResultNames) <= gl::api::kSaResults);

bool parse_u64(const std::string& s, uint64_t max, uint64_t& v) {
  if (s.empty() || s[0] == '-') return false;
  char* end = nullptr;
  errno = 0;
  unsigned long long x = std::strtoull(s.c_str(), &end, 0);
  if (*end != '\0' || errno != 0 || x > max) return false;
  v = x;
  return true;
}

bool parse_hex(const std::string& s, std::vector<uint8_t>& out) {
  if (s.size() % 2) return false;
  out.clear();
  for (size_t i = 0; i < s.size(); i += 2) {
    auto nib = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    int hi = nib(s[i]), lo = nib(s[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out.push_back(static_cast<uint8_t>(hi << 4 | lo));
  }
  return true;
}

bool parse_bool(const std::string& s, uint8_t& v) {
  if (s == "yes" || s == "1" || s == "on" || s == "true")
    v = 1;
  else if (s == "no" || s == "0" || s == "off" || s == "false")
    v = 0;
  else
    return false;
  return true;
}

// Fills `req` from KEY=VALUE words; returns an error message or "".
std::string parse_sa_add(const std::vector<std::string>& args, uint32_t n_pmds,
                         gl::api::SaAddRequest& req) {
  req = {};
  auto& c = req.cfg;
  c.esn = 1;
  c.ttl = 64;
  c.df = 1;
  bool have_spi = false, have_dir = false, have_local = false, have_remote = false;
  bool have_group = false, have_src = false, have_dst = false, have_pmd = false;
  std::vector<uint8_t> key, salt;
  bool local_v6 = false, remote_v6 = false;
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    size_t eq = a.find('=');
    if (eq == std::string::npos) return "expected KEY=VALUE, got '" + a + "'";
    std::string k = a.substr(0, eq), v = a.substr(eq + 1);
    uint64_t n = 0;
    auto bad = [&](const std::string& want) { return k + "=" + v + ": " + want; };
    if (k == "spi") {
      if (!parse_u64(v, UINT32_MAX, n) || n < 256) return bad("want a number 0x100..0xffffffff");
      c.spi = static_cast<uint32_t>(n);
      have_spi = true;
    } else if (k == "dir") {
      if (v == "out")
        c.dir = 0;
      else if (v == "in")
        c.dir = 1;
      else
        return bad("want out or in");
      have_dir = true;
    } else if (k == "mode") {
      if (v == "tunnel")
        c.mode = 0;
      else if (v == "transport")
        c.mode = 1;
      else
        return bad("want tunnel or transport");
    } else if (k == "cipher") {
      if (v == kCipherNames[0])
        c.cipher = 0;
      else if (v == kCipherNames[1])
        c.cipher = 1;
      else
        return bad("want aes256-gcm or chacha20-poly1305");
    } else if (k == "backend") {
      bool found = false;
      for (uint8_t b = 0; b < kBackendNames.size(); ++b)
        if (v == kBackendNames[b]) c.backend = b, found = true;
      if (!found) return bad("want auto, sodium or ipsec-mb");
    } else if (k == "esn" || k == "df") {
      if (!parse_bool(v, k == "esn" ? c.esn : c.df)) return bad("want yes or no");
    } else if (k == "ttl") {
      if (!parse_u64(v, 255, n) || n == 0) return bad("want 1..255");
      c.ttl = static_cast<uint8_t>(n);
    } else if (k == "replay_window") {
      if (!parse_u64(v, 4096, n) || n < 64 || (n & (n - 1)))
        return bad("want a power of two 64..4096");
      c.replay_window = static_cast<uint32_t>(n);
    } else if (k == "seq_start") {
      if (!parse_u64(v, UINT64_MAX, n)) return bad("want a number");
      c.seq_start = n;
    } else if (k == "group") {
      if (!parse_u64(v, UINT32_MAX, n) || n == 0) return bad("want a number >= 1");
      c.group = static_cast<uint32_t>(n);
      have_group = true;
    } else if (k == "pmd") {
      if (v == "control")
        c.pmd = n_pmds;
      else if (v == "any")
        c.pmd = gl::api::kSaPmdAny;
      else if (!parse_u64(v, n_pmds, n))
        return bad("want 0.." + std::to_string(n_pmds) + ", control or any");
      else
        c.pmd = static_cast<uint32_t>(n);
      have_pmd = true;
    } else if (k == "local" || k == "remote") {
      uint8_t* dst = k == "local" ? c.local : c.remote;
      if (auto v4 = gl::odp::parse_ipv4(v)) {
        std::memcpy(dst, &*v4, 4);
        (k == "local" ? local_v6 : remote_v6) = false;
      } else if (auto v6 = gl::odp::parse_ipv6(v)) {
        std::memcpy(dst, v6->data(), 16);
        (k == "local" ? local_v6 : remote_v6) = true;
      } else {
        return bad("want an IPv4 or IPv6 address");
      }
      (k == "local" ? have_local : have_remote) = true;
    } else if (k == "src_mac" || k == "dst_mac") {
      auto m = gl::odp::parse_mac(v);
      if (!m) return bad("want a MAC address");
      std::memcpy(k == "src_mac" ? c.src_mac : c.dst_mac, m->data(), 6);
      (k == "src_mac" ? have_src : have_dst) = true;
    } else if (k == "key") {
      if (!parse_hex(v, key) || (key.size() != 36 && key.size() != 32))
        return "key: want 72 hex digits (key + salt) or 64 (then salt=HEX8)";
    } else if (k == "mtu") {
      if (!parse_u64(v, 65535, n) || n < 576) return bad("want an underlay MTU 576..65535");
      c.mtu = static_cast<uint16_t>(n);
    } else if (k == "replace") {
      uint8_t r = 0;
      if (!parse_bool(v, r)) return bad("want yes or no");
      req.flags = r ? gl::api::kSaAddReplace : 0;
    } else if (k == "salt") {
      if (!parse_hex(v, salt) || salt.size() != 4) return "salt: want 8 hex digits";
    } else {
      return "unknown key '" + k + "'";
    }
  }
  if (!have_spi) return "spi=N is required";
  if (!have_dir) return "dir=out|in is required";
  if (key.empty()) return "key=HEX is required";
  if (key.size() == 32 && salt.empty()) return "a 32-byte key needs salt=HEX8";
  if (key.size() == 36 && !salt.empty()) return "key has 36 bytes (includes the salt): drop salt=";
  if (!have_local || !have_remote) return "local=IP and remote=IP are required (tunnel mode)";
  if (local_v6 != remote_v6) return "local and remote must both be IPv4 or both IPv6";
  c.addr_v6 = local_v6;
  if (c.dir != 0 && req.flags) return "replace=yes is for dir=out";
  if (c.dir != 0 && c.mtu) return "mtu= is for dir=out";
  if (c.dir == 0) {
    if (!have_group) return "an outbound SA needs group=N";
    if (!have_src || !have_dst) return "an outbound SA needs src_mac= and dst_mac= (underlay)";
  } else {
    if (have_group || have_src || have_dst) return "group, src_mac and dst_mac are for dir=out";
    if (!have_pmd) c.pmd = 0;
  }
  std::memcpy(req.keymat, key.data(), key.size());
  if (!salt.empty()) std::memcpy(req.keymat + 32, salt.data(), 4);
  explicit_bzero(key.data(), key.size());
  return "";
}

std::string ip_str(const uint8_t* a, bool v6) {
  if (v6) return gl::odp::format_ipv6(std::span<const uint8_t, 16>(a, 16));
  uint32_t v;
  std::memcpy(&v, a, 4);
  return gl::odp::format_ipv4(v);
}

std::string pmd_str(uint32_t pmd, uint32_t n_pmds) {
  if (pmd == gl::api::kSaPmdAny) return "any";
  if (pmd == n_pmds) return "control";
  return std::to_string(pmd);
}

int cmd_dump_sas(Client& c, bool keys, bool as_json) {
  auto info = c.info();
  if (!info) return fail("dump-sas", info.error());
  auto sas = c.sa_dump(keys);
  if (!sas) return fail("dump-sas", sas.error());
  json all = json::array();
  for (auto& s : *sas) {
    const auto& k = s.cfg;
    const bool out = k.dir == 0;
    char spi[16];
    std::snprintf(spi, sizeof spi, "0x%x", k.spi);
    json j{{"spi", spi},
           {"dir", out ? "out" : "in"},
           {"mode", k.mode == 0 ? "tunnel" : "transport"},
           {"cipher", kCipherNames[k.cipher & 1]},
           {"backend", kBackendNames[k.backend < kBackendNames.size() ? k.backend : 0]},
           {"esn", k.esn != 0},
           {"local", ip_str(k.local, k.addr_v6)},
           {"remote", ip_str(k.remote, k.addr_v6)},
           {"ttl", k.ttl},
           {"df", k.df != 0},
           {"pmd", pmd_str(k.pmd, info->n_pmds)},
           {"seq", s.seq},
           {"expired", s.expired != 0},
           {"retire_ms", s.retire_ms},
           {"packets", s.results[0]},
           {"bytes", s.bytes}};
    if (out) {
      j["group"] = k.group;
      j["src_mac"] = mac_str(k.src_mac);
      j["dst_mac"] = mac_str(k.dst_mac);
      j["mtu"] = k.mtu;
    } else {
      j["replay_window"] = k.replay_window;
    }
    json res = json::object();
    for (size_t r = 1; r < std::size(kResultNames); ++r) res[kResultNames[r]] = s.results[r];
    j["errors"] = res;
    if (keys && s.has_keys) {
      std::string hex;
      for (uint8_t b : s.keymat) {
        char h[3];
        std::snprintf(h, sizeof h, "%02x", b);
        hex += h;
      }
      j["key"] = hex;
    }
    if (as_json) {
      all.push_back(j);
      continue;
    }
    std::printf("spi=%s dir=%s mode=%s cipher=%s backend=%s esn=%s local=%s remote=%s pmd=%s", spi,
                out ? "out" : "in", j["mode"].get<std::string>().c_str(),
                j["cipher"].get<std::string>().c_str(), j["backend"].get<std::string>().c_str(),
                k.esn ? "yes" : "no", j["local"].get<std::string>().c_str(),
                j["remote"].get<std::string>().c_str(), j["pmd"].get<std::string>().c_str());
    if (out)
      std::printf(" group=%u src_mac=%s dst_mac=%s ttl=%u df=%s mtu=%u", k.group,
                  mac_str(k.src_mac).c_str(), mac_str(k.dst_mac).c_str(), k.ttl,
                  k.df ? "yes" : "no", k.mtu);
    else
      std::printf(" replay_window=%u", k.replay_window);
    if (j.contains("key")) std::printf(" key=%s", j["key"].get<std::string>().c_str());
    std::printf("\n    seq:%" PRIu64 " packets:%" PRIu64 " bytes:%" PRIu64 "%s", s.seq,
                s.results[0], s.bytes, s.expired ? " EXPIRED" : "");
    if (s.retire_ms) std::printf(" retiring-in:%ums", s.retire_ms);
    for (size_t r = 1; r < std::size(kResultNames); ++r)
      if (s.results[r]) std::printf(" %s:%" PRIu64, kResultNames[r].data(), s.results[r]);
    std::printf("\n");
  }
  if (as_json) std::printf("%s\n", all.dump(2).c_str());
  return 0;
}

// ---- connection tracking ---------------------------------------------------------------

// TCP states as OVS names them (CT_DPIF_TCPS_*), indexed by the wire's tcp_state_*: the
// tracker's table.
constexpr size_t kTcpStates = gl::ct::kTcpStateNames.size();

std::string tcp_state_str(unsigned s) {
  return s < gl::ct::kTcpStateNames.size() ? std::string(gl::ct::kTcpStateNames[s])
                                           : "[" + std::to_string(s) + "]";
}

// The single state OVS's dump prints: the later end's, FIN_WAIT_2 shown as TIME_WAIT and
// SYN_RECV as ESTABLISHED.
unsigned coalesced_tcp_state(const gl::api::CtEntry& e) {
  unsigned s = std::max(e.tcp_state_orig, e.tcp_state_reply);
  if (s == 9) return 10;
  if (s == 3) return 4;
  return s;
}

bool ct_is_icmp(uint8_t proto) {
  return proto == 1 || proto == 58;
}
// TCP and UDP connections are keyed by ports; other protocols by addresses alone.
bool ct_has_ports(uint8_t proto) {
  return proto == 6 || proto == 17;
}

std::string ct_proto_name(unsigned proto) {
  switch (proto) {
    case 1:
      return "icmp";
    case 58:
      return "icmpv6";
    case 6:
      return "tcp";
    case 17:
      return "udp";
    case 132:
      return "sctp";
    case 136:
      return "udplite";
    case 33:
      return "dccp";
    case 2:
      return "igmp";
    default:
      return std::to_string(proto);
  }
}

std::string ct_addr(const uint8_t* a, uint8_t family) {
  char buf[INET6_ADDRSTRLEN] = "";
  inet_ntop(family == 6 ? AF_INET6 : AF_INET, a, buf, sizeof buf);
  return buf;
}

// "src=10.0.0.1,dst=10.0.0.2,sport=1,dport=2" / "...,id=7,type=8,code=0" (OVS's syntax).
std::string ct_tuple_str(const gl::api::CtTuple& t) {
  std::string s = "src=" + ct_addr(t.src, t.family) + ",dst=" + ct_addr(t.dst, t.family);
  if (ct_is_icmp(t.proto))
    s += ",id=" + std::to_string(ntohs(t.icmp_id)) + ",type=" + std::to_string(t.icmp_type) +
         ",code=" + std::to_string(t.icmp_code);
  else
    s += ",sport=" + std::to_string(ntohs(t.sport)) + ",dport=" + std::to_string(ntohs(t.dport));
  return s;
}

// ct_label as OVS prints it: the 128-bit number in hex without leading zeros.
std::string ct_label_str(const uint8_t* label) {
  std::string s;
  for (int i = 15; i >= 0; --i) {
    if (s.empty() && label[i] == 0) continue;
    char b[8];
    std::snprintf(b, sizeof b, s.empty() ? "0x%x" : "%02x", label[i]);
    s += b;
  }
  return s.empty() ? "0" : s;
}

bool label_zero(const uint8_t* label) {
  for (int i = 0; i < 16; ++i)
    if (label[i]) return false;
  return true;
}

// Our entry flags under OVS's status names (CT_DPIF_STATUS_*).
std::string ct_status_str(uint8_t f) {
  std::string s;
  auto add = [&](uint8_t bit, const char* name) {
    if (f & bit) s += (s.empty() ? "" : "|") + std::string(name);
  };
  add(gl::api::kCtEntryRelated, "EXPECTED");
  add(gl::api::kCtEntryReplySeen, "SEEN_REPLY");
  add(gl::api::kCtEntrySnat, "SRC_NAT");
  add(gl::api::kCtEntryDnat, "DST_NAT");
  return s.empty() ? "0" : s;
}

json ct_status_list(uint8_t f) {
  json a = json::array();
  if (f & gl::api::kCtEntryRelated) a.push_back("EXPECTED");
  if (f & gl::api::kCtEntryReplySeen) a.push_back("SEEN_REPLY");
  if (f & gl::api::kCtEntrySnat) a.push_back("SRC_NAT");
  if (f & gl::api::kCtEntryDnat) a.push_back("DST_NAT");
  return a;
}

const char* ct_helper(uint8_t f) {
  if (f & gl::api::kCtEntryHelperFtp) return "ftp";
  if (f & gl::api::kCtEntryHelperTftp) return "tftp";
  return nullptr;
}

// fw-dump-conntrack / fw-flush-conntrack: dump-conntrack and flush-conntrack on the
// firewall's tracker (kFwCtDump / kFwCtFlush) rather than OVS's.
bool g_fw_tracker = false;

// One connection in OVS's dump-conntrack format; verbose (-m) adds the status and both TCP
// ends, stats (-s) the counters and the timeout.
std::string ct_entry_str(const gl::api::CtEntry& e, bool verbose, bool stats) {
  auto counters = [&](int d) {
    if (!stats || (e.packets[d] == 0 && e.bytes[d] == 0)) return std::string();
    return ",packets=" + std::to_string(e.packets[d]) + ",bytes=" + std::to_string(e.bytes[d]);
  };
  std::string s = ct_proto_name(e.orig.proto);
  s += ",orig=(" + ct_tuple_str(e.orig) + counters(0) + ")";
  s += ",reply=(" + ct_tuple_str(e.reply) + counters(1) + ")";
  if (e.zone) s += ",zone=" + std::to_string(e.zone);
  if (verbose) s += ",status=" + ct_status_str(e.flags);
  if (stats) s += ",timeout=" + std::to_string(e.timeout_s);
  if (e.mark) s += ",mark=" + std::to_string(e.mark);
  if (!label_zero(e.label)) s += ",labels=" + ct_label_str(e.label);
  if (e.orig.proto == 6) {
    if (verbose)
      s += ",protoinfo=(state_orig=" + tcp_state_str(e.tcp_state_orig) +
           ",state_reply=" + tcp_state_str(e.tcp_state_reply) + ")";
    else
      s += ",protoinfo=(state=" + tcp_state_str(coalesced_tcp_state(e)) + ")";
  }
  if (const char* h = ct_helper(e.flags)) s += ",helper=" + std::string(h);
  // The firewall's: a verdict of an older policy of its port (re-checked at its next packet).
  if (g_fw_tracker && e.fw_current == 0) s += ",policy=older";
  return s;
}

json ct_tuple_json(const gl::api::CtTuple& t) {
  json j{{"src", ct_addr(t.src, t.family)}, {"dst", ct_addr(t.dst, t.family)}};
  if (ct_is_icmp(t.proto)) {
    j["id"] = ntohs(t.icmp_id);
    j["type"] = t.icmp_type;
    j["code"] = t.icmp_code;
  } else {
    j["sport"] = ntohs(t.sport);
    j["dport"] = ntohs(t.dport);
  }
  return j;
}

json ct_entry_json(const gl::api::CtEntry& e) {
  json j{{"proto", ct_proto_name(e.orig.proto)},
         {"family", e.orig.family},
         {"orig", ct_tuple_json(e.orig)},
         {"reply", ct_tuple_json(e.reply)},
         {"zone", e.zone},
         {"mark", e.mark},
         {"labels", ct_label_str(e.label)},
         {"timeout", e.timeout_s},
         {"status", ct_status_list(e.flags)},
         {"packets_orig", e.packets[0]},
         {"bytes_orig", e.bytes[0]},
         {"packets_reply", e.packets[1]},
         {"bytes_reply", e.bytes[1]}};
  if (e.orig.proto == 6) {
    j["state"] = tcp_state_str(coalesced_tcp_state(e));
    j["state_orig"] = tcp_state_str(e.tcp_state_orig);
    j["state_reply"] = tcp_state_str(e.tcp_state_reply);
  }
  if (const char* h = ct_helper(e.flags)) j["helper"] = h;
  if (g_fw_tracker) j["current"] = e.fw_current != 0;
  return j;
}

// "zone=N" → N (0..65535); an error message otherwise.
std::string parse_zone_arg(const std::string& arg, uint32_t& zone) {
  uint64_t v = 0;
  if (arg.rfind("zone=", 0) != 0 || !parse_u64(arg.substr(5), UINT32_MAX, v))
    return "bad zone '" + arg + "' (want zone=0..65535)";
  if (v > gl::api::kCtMaxZone)
    return "zone " + std::to_string(v) + ": zone must be 0.." + std::to_string(gl::api::kCtMaxZone);
  zone = static_cast<uint32_t>(v);
  return "";
}

int cmd_dump_conntrack(Client& c, std::optional<uint32_t> zone, bool verbose, bool stats,
                       bool as_json) {
  json all = json::array();
  auto r = c.ct_dump(
      zone,
      [&](const gl::api::CtEntry& e) {
        if (as_json)
          all.push_back(ct_entry_json(e));
        else
          std::printf("%s\n", ct_entry_str(e, verbose, stats).c_str());
        return true;
      },
      g_fw_tracker);
  if (!r) return fail("dump-conntrack", r.error());
  if (as_json) std::printf("%s\n", all.dump(2).c_str());
  return 0;
}

// A conntrack tuple as flush-conntrack takes it (OVS's ct-tuple syntax); fields not given
// match anything.
struct CtMatch {
  uint8_t family = 0;  // 0 = any
  std::optional<uint8_t> proto;
  std::optional<std::array<uint8_t, 16>> src, dst;
  std::optional<uint16_t> sport, dport, icmp_id;  // host order
  std::optional<uint8_t> icmp_type, icmp_code;
};

// Parses one tuple argument ("ct_nw_src=10.0.0.1,ct_nw_proto=17,ct_tp_dst=53") into m
// (family and protocol are shared by the two tuples); returns an error message or "".
std::string parse_ct_tuple(const std::string& text, CtMatch& m, uint8_t& family,
                           std::optional<uint8_t>& proto) {
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    std::string kv = text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    pos = comma == std::string::npos ? text.size() + 1 : comma + 1;
    if (kv.empty()) continue;
    size_t eq = kv.find('=');
    if (eq == std::string::npos || eq + 1 == kv.size())
      return "field '" + kv + "' has no value (want KEY=VALUE)";
    std::string k = kv.substr(0, eq), v = kv.substr(eq + 1);
    uint64_t n = 0;
    if (k == "ct_nw_src" || k == "ct_nw_dst" || k == "ct_ipv6_src" || k == "ct_ipv6_dst") {
      const bool v6 = k[3] == 'i';
      auto& slot = k.ends_with("src") ? m.src : m.dst;
      if (slot) return k + " is given twice";
      if (family != 0 && family != (v6 ? 6 : 4))
        return k + "=" + v + ": IPv4 and IPv6 fields in one match";
      std::array<uint8_t, 16> a{};
      if (v6) {
        auto p = gl::odp::parse_ipv6(v);
        if (!p) return k + "=" + v + ": bad IPv6 address";
        a = *p;
      } else {
        auto p = gl::odp::parse_ipv4(v);
        if (!p) return k + "=" + v + ": bad IPv4 address";
        std::memcpy(a.data(), &*p, 4);
      }
      slot = a;
      family = v6 ? 6 : 4;
    } else if (k == "ct_nw_proto") {
      if (!parse_u64(v, 255, n)) return k + "=" + v + ": want an IP protocol number 0..255";
      if (proto && *proto != n) return k + " differs between the tuples";
      proto = static_cast<uint8_t>(n);
    } else if (k == "ct_tp_src" || k == "ct_tp_dst" || k == "icmp_id") {
      if (!parse_u64(v, 65535, n)) return k + "=" + v + ": want 0..65535";
      (k == "ct_tp_src"   ? m.sport
       : k == "ct_tp_dst" ? m.dport
                          : m.icmp_id) = static_cast<uint16_t>(n);
    } else if (k == "icmp_type" || k == "icmp_code") {
      if (!parse_u64(v, 255, n)) return k + "=" + v + ": want 0..255";
      (k == "icmp_type" ? m.icmp_type : m.icmp_code) = static_cast<uint8_t>(n);
    } else {
      return "unknown tuple field '" + k +
             "' (ct_nw_src, ct_nw_dst, ct_ipv6_src, ct_ipv6_dst, ct_nw_proto, ct_tp_src, "
             "ct_tp_dst, icmp_id, icmp_type, icmp_code)";
    }
  }
  return "";
}

bool ct_tuple_matches(const CtMatch& m, const gl::api::CtTuple& t) {
  if (m.src && std::memcmp(m.src->data(), t.src, 16) != 0) return false;
  if (m.dst && std::memcmp(m.dst->data(), t.dst, 16) != 0) return false;
  if (ct_is_icmp(t.proto)) {
    if (m.sport || m.dport) return false;
    if (m.icmp_id && *m.icmp_id != ntohs(t.icmp_id)) return false;
    if (m.icmp_type && *m.icmp_type != t.icmp_type) return false;
    if (m.icmp_code && *m.icmp_code != t.icmp_code) return false;
  } else {
    if (m.icmp_id || m.icmp_type || m.icmp_code) return false;
    if (m.sport && *m.sport != ntohs(t.sport)) return false;
    if (m.dport && *m.dport != ntohs(t.dport)) return false;
  }
  return true;
}

int cmd_flush_conntrack(Client& c, const std::vector<std::string>& args) {
  std::optional<uint32_t> zone;
  std::vector<std::string> tuples;
  for (size_t i = 1; i < args.size(); ++i) {
    if (args[i].rfind("zone=", 0) == 0) {
      uint32_t z = 0;
      if (std::string e = parse_zone_arg(args[i], z); !e.empty())
        return usage_error("flush-conntrack: " + e);
      if (zone) return usage_error("flush-conntrack: zone= given twice");
      zone = z;
    } else {
      tuples.push_back(args[i]);
    }
  }
  if (tuples.size() > 2)
    return usage_error("flush-conntrack [zone=N] [ORIG-TUPLE [REPLY-TUPLE]]: too many arguments");
  if (tuples.empty()) {
    auto r = c.ct_flush(zone, nullptr, g_fw_tracker);
    if (!r) return fail("flush-conntrack", r.error());
    return 0;
  }
  CtMatch orig, reply;
  uint8_t family = 0;
  std::optional<uint8_t> proto;
  for (size_t i = 0; i < tuples.size(); ++i)
    if (std::string e = parse_ct_tuple(tuples[i], i ? reply : orig, family, proto); !e.empty())
      return usage_error("flush-conntrack: " + e);
  for (const CtMatch* m : {&orig, &reply}) {
    if ((m->sport || m->dport) && !proto)
      return usage_error("flush-conntrack: a port is given without ct_nw_proto");
    if ((m->icmp_id || m->icmp_type || m->icmp_code) && (!proto || !ct_is_icmp(*proto)))
      return usage_error("flush-conntrack: icmp_* fields need ct_nw_proto=1 or 58");
    if ((m->sport || m->dport) && proto && !ct_has_ports(*proto))
      return usage_error("flush-conntrack: protocol " + std::to_string(*proto) +
                         " is tracked without ports");
  }
  // A complete original tuple alone names one connection: gldp looks it up (in zone, 0 by
  // default, as OVS). Anything else is matched against a dump, and every connection that
  // matches is flushed in its own zone.
  const bool complete = tuples.size() == 1 && orig.src && orig.dst && proto &&
                        (ct_is_icmp(*proto)     ? orig.icmp_id && orig.icmp_type
                         : ct_has_ports(*proto) ? orig.sport && orig.dport
                                                : true);
  if (complete) {
    gl::api::CtTuple t{};
    t.family = family;
    t.proto = *proto;
    std::memcpy(t.src, orig.src->data(), 16);
    std::memcpy(t.dst, orig.dst->data(), 16);
    if (ct_is_icmp(t.proto)) {
      t.icmp_id = htons(*orig.icmp_id);
      t.icmp_type = *orig.icmp_type;
      t.icmp_code = orig.icmp_code.value_or(0);
    } else if (ct_has_ports(t.proto)) {
      t.sport = htons(*orig.sport);
      t.dport = htons(*orig.dport);
    }
    auto r = c.ct_flush(zone.value_or(0), &t, g_fw_tracker);
    if (!r) return fail("flush-conntrack", r.error());
    return 0;
  }
  std::vector<gl::api::CtEntry> hits;
  auto r = c.ct_dump(
      zone,
      [&](const gl::api::CtEntry& e) {
        if ((family == 0 || e.orig.family == family) && (!proto || e.orig.proto == *proto) &&
            ct_tuple_matches(orig, e.orig) && ct_tuple_matches(reply, e.reply))
          hits.push_back(e);
        return true;
      },
      g_fw_tracker);
  if (!r) return fail("flush-conntrack", r.error());
  for (const auto& e : hits) {
    auto f = c.ct_flush(e.zone, &e.orig, g_fw_tracker);
    // Gone meanwhile (expired, flushed by someone else): nothing left to do.
    if (!f && f.error().code != ENOENT) return fail("flush-conntrack", f.error());
  }
  return 0;
}

int cmd_ct_stats_show(Client& c, std::optional<uint32_t> zone, bool verbose, bool as_json) {
  // The connection counts as OVS's ct-stats-show computes them, from a dump.
  uint64_t total = 0;
  std::map<std::string, uint64_t> by_proto;
  uint64_t tcp_states[kTcpStates] = {};
  auto r = c.ct_dump(zone, [&](const gl::api::CtEntry& e) {
    ++total;
    const uint8_t p = e.orig.proto;
    std::string name = p == 6     ? "TCP"
                       : p == 17  ? "UDP"
                       : p == 136 ? "UDPLITE"
                       : p == 132 ? "SCTP"
                       : p == 1   ? "ICMP"
                       : p == 58  ? "ICMPV6"
                       : p == 33  ? "DCCP"
                       : p == 2   ? "IGMP"
                                  : "Other";
    ++by_proto[name];
    if (p == 6) {
      unsigned s = coalesced_tcp_state(e);
      if (s < kTcpStates) ++tcp_states[s];
    }
    return true;
  });
  if (!r) return fail("ct-stats-show", r.error());
  auto st = c.ct_stats();
  if (!st) return fail("ct-stats-show", st.error());
  auto cfg = c.ct_get_config();
  if (!cfg) return fail("ct-stats-show", cfg.error());
  const auto& t = st->totals;
  if (as_json) {
    json states = json::object();
    for (size_t s = 0; s < kTcpStates; ++s)
      if (tcp_states[s]) states[std::string(gl::ct::kTcpStateNames[s])] = tcp_states[s];
    json inv = json::object();
    for (auto& i : st->invalid) inv[i.name] = i.count;
    json protos = json::object();
    for (auto& p : st->protos) protos[ct_proto_name(p.proto)] = p.count;
    json j{{"total", total},
           {"by_proto", by_proto},
           {"tcp_states", states},
           {"tracker",
            {{"connections", t.n_conns},
             {"max_conns", t.max_conns},
             {"capacity", t.capacity},
             {"pending_free", t.pending_free},
             {"index_bytes", t.index_bytes},
             {"index_grows", t.index_grows},
             {"default_zone_limit", cfg->default_zone_limit},
             {"tcp_seq_check", cfg->tcp_seq_check != 0},
             {"packets", t.packets},
             {"found", t.found},
             {"created", t.created},
             {"expired", t.expired},
             {"limit_global", t.limit_global},
             {"limit_zone", t.limit_zone},
             {"table_full", t.table_full},
             {"nat_exhausted", t.nat_exhausted},
             {"invalid", inv},
             {"by_proto", protos}}}};
    if (zone) j["zone"] = *zone;
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("Connections Stats:\n    Total: %" PRIu64 "\n", total);
  // OVS's order of the protocols.
  for (const char* name : {"TCP", "UDP", "UDPLITE", "SCTP", "ICMP", "DCCP", "IGMP", "Other"}) {
    auto it = by_proto.find(name);
    if (it == by_proto.end()) continue;
    std::printf("  %s: %" PRIu64 "\n", name, it->second);
    if (verbose && std::string(name) == "TCP") {
      std::printf("    Conn per TCP states:\n");
      for (size_t s = 0; s < kTcpStates; ++s)
        if (tcp_states[s])
          std::printf("\t  [%s]=%" PRIu64 "\n", gl::ct::kTcpStateNames[s].data(), tcp_states[s]);
    }
  }
  std::printf("Tracker (all zones):\n");
  std::printf(
      "    connections: %u, max: %u, capacity: %u, default zone limit: %s\n", t.n_conns,
      t.max_conns, t.capacity,
      cfg->default_zone_limit ? std::to_string(cfg->default_zone_limit).c_str() : "unlimited");
  std::printf("    TCP sequence checking: %s\n", cfg->tcp_seq_check ? "enabled" : "disabled");
  std::printf("    lookup index: %" PRIu64 " KiB (grown %u times)\n", t.index_bytes / 1024,
              t.index_grows);
  std::printf("    packets: %" PRIu64 ", found: %" PRIu64 ", created: %" PRIu64
              ", expired: %" PRIu64 "\n",
              t.packets, t.found, t.created, t.expired);
  std::printf("    commits refused: global limit: %" PRIu64 ", zone limit: %" PRIu64
              ", table full: %" PRIu64 ", NAT range exhausted: %" PRIu64 "\n",
              t.limit_global, t.limit_zone, t.table_full, t.nat_exhausted);
  std::string inv;
  for (auto& i : st->invalid)
    if (i.count)
      inv += std::string(inv.empty() ? "" : ", ") + i.name + ": " + std::to_string(i.count);
  std::printf("    invalid: %s\n", inv.empty() ? "none" : inv.c_str());
  return 0;
}

// "zone=N,limit=N" (either order) → a zone limit; an error message otherwise.
std::string parse_zone_limit(const std::string& arg, gl::api::CtZoneLimit& zl) {
  std::optional<uint64_t> zone, limit;
  size_t pos = 0;
  while (pos <= arg.size()) {
    size_t comma = arg.find(',', pos);
    std::string kv = arg.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    pos = comma == std::string::npos ? arg.size() + 1 : comma + 1;
    size_t eq = kv.find('=');
    std::string k = kv.substr(0, eq), v = eq == std::string::npos ? "" : kv.substr(eq + 1);
    uint64_t n = 0;
    if ((k != "zone" && k != "limit") || v.empty()) return "'" + arg + "': want zone=N,limit=N";
    if (!parse_u64(v, UINT32_MAX, n)) return "'" + arg + "': " + k + "=" + v + " is not a number";
    (k == "zone" ? zone : limit) = n;
  }
  if (!zone || !limit) return "'" + arg + "': want zone=N,limit=N";
  if (*zone > gl::api::kCtMaxZone)
    return "zone limit for zone " + std::to_string(*zone) + ": zone must be 0.." +
           std::to_string(gl::api::kCtMaxZone);
  zl = gl::api::CtZoneLimit{static_cast<uint32_t>(*zone), static_cast<uint32_t>(*limit), 0, 0};
  return "";
}

// "zone=N[,N...]" → zones; an error message otherwise.
std::string parse_zone_list(const std::string& arg, std::vector<uint32_t>& zones) {
  if (arg.rfind("zone=", 0) != 0 || arg.size() == 5) return "'" + arg + "': want zone=N[,N...]";
  size_t pos = 5;
  while (pos <= arg.size()) {
    size_t comma = arg.find(',', pos);
    std::string v = arg.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    pos = comma == std::string::npos ? arg.size() + 1 : comma + 1;
    uint64_t n = 0;
    if (!parse_u64(v, UINT32_MAX, n)) return "'" + arg + "': zone '" + v + "' is not a number";
    if (n > gl::api::kCtMaxZone)
      return "zone " + std::to_string(n) + ": zone must be 0.." +
             std::to_string(gl::api::kCtMaxZone);
    zones.push_back(static_cast<uint32_t>(n));
  }
  return "";
}

int cmd_ct(Client& c, const std::string& cmd, const std::vector<std::string>& args) {
  const size_t n = args.size() - 1;
  if (cmd == "dump-conntrack" || cmd == "ct-stats-show") {
    std::optional<uint32_t> zone;
    bool verbose = false, stats = false, js = false;
    for (size_t i = 1; i < args.size(); ++i) {
      const std::string& a = args[i];
      if (a == "-m" || a == "--more" || (cmd == "ct-stats-show" && a == "verbose")) {
        verbose = true;
      } else if (cmd == "dump-conntrack" && (a == "-s" || a == "--statistics")) {
        stats = true;
      } else if (a == "--json") {
        js = true;
      } else if (a.rfind("zone=", 0) == 0) {
        uint32_t z = 0;
        if (std::string e = parse_zone_arg(a, z); !e.empty()) return usage_error(cmd + ": " + e);
        zone = z;
      } else {
        return usage_error(cmd + ": unknown argument '" + a + "'");
      }
    }
    return cmd == "ct-stats-show" ? cmd_ct_stats_show(c, zone, verbose, js)
                                  : cmd_dump_conntrack(c, zone, verbose, stats, js);
  }
  if (cmd == "flush-conntrack") return cmd_flush_conntrack(c, args);
  if (cmd == "ct-get-maxconns" || cmd == "ct-get-nconns" || cmd == "ct-get-tcp-seq-chk") {
    if (n != 0) return usage_error(cmd + " takes no arguments");
    auto r = c.ct_get_config();
    if (!r) return fail(cmd, r.error());
    if (cmd == "ct-get-maxconns")
      std::printf("%u\n", r->max_conns);
    else if (cmd == "ct-get-nconns")
      std::printf("%u\n", r->n_conns);
    else
      std::printf("TCP sequence checking: %s\n", r->tcp_seq_check ? "enabled" : "disabled");
    return 0;
  }
  if (cmd == "ct-set-maxconns") {
    uint64_t v = 0;
    if (n != 1 || !parse_u64(args[1], UINT32_MAX, v))
      return usage_error("ct-set-maxconns N (N: 0..the table's capacity, ct-stats-show)");
    auto r = c.ct_set_max_conns(static_cast<uint32_t>(v));
    if (!r) return fail(cmd, r.error());
    std::printf("setting maxconns successful\n");
    return 0;
  }
  if (cmd == "ct-enable-tcp-seq-chk" || cmd == "ct-disable-tcp-seq-chk") {
    if (n != 0) return usage_error(cmd + " takes no arguments");
    const bool on = cmd == "ct-enable-tcp-seq-chk";
    auto r = c.ct_set_tcp_seq_check(on);
    if (!r) return fail(cmd, r.error());
    std::printf("%s TCP sequence checking successful\n", on ? "enabling" : "disabling");
    return 0;
  }
  if (cmd == "ct-set-limits") {
    std::optional<uint32_t> dflt;
    std::vector<gl::api::CtZoneLimit> zl;
    for (size_t i = 1; i < args.size(); ++i) {
      const std::string& a = args[i];
      if (a.rfind("default=", 0) == 0) {
        uint64_t v = 0;
        if (!parse_u64(a.substr(8), UINT32_MAX, v))
          return usage_error("ct-set-limits: bad default limit '" + a + "'");
        dflt = static_cast<uint32_t>(v);
        continue;
      }
      gl::api::CtZoneLimit z{};
      if (std::string e = parse_zone_limit(a, z); !e.empty())
        return usage_error("ct-set-limits: " + e);
      zl.push_back(z);
    }
    if (!dflt && zl.empty()) return usage_error("ct-set-limits [default=N] [zone=N,limit=N]...");
    auto r = c.ct_set_limits(dflt, zl);
    if (!r) return fail(cmd, r.error());
    return 0;
  }
  if (cmd == "ct-del-limits" || cmd == "ct-get-limits") {
    const bool del = cmd == "ct-del-limits";
    if (n > 1 || (del && n != 1))
      return usage_error(cmd + (del ? " zone=N[,N...]" : " [zone=N[,N...]]"));
    std::vector<uint32_t> zones;
    if (n == 1)
      if (std::string e = parse_zone_list(args[1], zones); !e.empty())
        return usage_error(cmd + ": " + e);
    if (del) {
      auto r = c.ct_del_limits(zones);
      if (!r) return fail(cmd, r.error());
      return 0;
    }
    auto r = c.ct_get_limits(zones);
    if (!r) return fail(cmd, r.error());
    std::printf("default limit=%u\n", r->default_limit);
    for (auto& z : r->zones) std::printf("zone=%u,limit=%u,count=%u\n", z.zone, z.limit, z.count);
    return 0;
  }
  if (cmd == "ct-stats-clear") {
    if (n != 0) return usage_error("ct-stats-clear takes no arguments");
    auto r = c.ct_stats(true);
    if (!r) return fail(cmd, r.error());
    return 0;
  }
  return usage_error("unknown command '" + cmd + "'");
}

// ---- timeout policies and fragment reassembly ----------------------------------------------
// These commands check their whole command line before gldp is contacted: parse_tp_ipf()
// returns what to run once connected, or the usage error.
using Op = std::function<int(Client&)>;

bool is_tp_ipf_command(const std::string& cmd) {
  for (const char* k : {"ct-set-timeout-policy", "ct-get-timeout-policy", "ct-del-timeout-policy",
                        "ct-dump-timeout-policies", "ipf-set-enabled", "ipf-set-disabled",
                        "ipf-set-min-frag", "ipf-set-max-nfrags", "ipf-get-status"})
    if (cmd == k) return true;
  return false;
}

std::string tp_class_list() {
  std::string s;
  for (auto n : gl::api::kCtTpNames) s += std::string(s.empty() ? "" : ", ") + std::string(n);
  return s;
}

// "ID" → a policy id (0..1023); an error message otherwise.
std::string parse_tp_id(const std::string& arg, uint32_t& id) {
  uint64_t v = 0;
  if (!parse_u64(arg, UINT32_MAX, v)) return "bad timeout policy id '" + arg + "' (want a number)";
  if (v >= gl::api::kCtMaxTimeoutPolicies)
    return "timeout policy " + std::to_string(v) + ": id must be 0.." +
           std::to_string(gl::api::kCtMaxTimeoutPolicies - 1);
  id = static_cast<uint32_t>(v);
  return "";
}

// "id=7 tcp_syn_sent=30 ... icmp_reply=30": every class's seconds.
std::string tp_line(const gl::api::CtTimeoutPolicy& tp) {
  std::string s = "id=" + std::to_string(tp.id);
  for (uint32_t i = 0; i < gl::api::kCtTpCount; ++i)
    if ((tp.present >> i) & 1)
      s += " " + std::string(gl::api::kCtTpNames[i]) + "=" + std::to_string(tp.sec[i]);
  return s;
}

json tp_json(const gl::api::CtTimeoutPolicy& tp) {
  json t = json::object();
  for (uint32_t i = 0; i < gl::api::kCtTpCount; ++i)
    if ((tp.present >> i) & 1) t[std::string(gl::api::kCtTpNames[i])] = tp.sec[i];
  return json{{"id", tp.id}, {"default", tp.id == 0}, {"timeouts", t}};
}

// "v4" / "v6" → v6; an error message otherwise.
std::string parse_family(const std::string& arg, bool& v6) {
  if (arg == "v4" || arg == "v6") {
    v6 = arg == "v6";
    return "";
  }
  return "'" + arg + "': want v4 (IPv4) or v6 (IPv6)";
}

json ipf_family_json(const gl::api::IpfFamilyStatusWire& f, const gl::api::IpfStatus& st, bool v6) {
  json inv = json::object(), passed = json::object();
  for (const auto& c : st.invalid) inv[c.name] = v6 ? c.v6 : c.v4;
  for (const auto& c : st.passed) passed[c.name] = v6 ? c.v6 : c.v4;
  return json{{"enabled", f.enabled != 0}, {"min_frag_size", f.min_frag_size},
              {"accepted", f.accepted},    {"completed", f.completed_sent},
              {"expired", f.expired_sent}, {"too_small", f.too_small},
              {"overlapped", f.overlap},   {"purged", f.purged},
              {"invalid_by_reason", inv},  {"passed_by_reason", passed}};
}

int cmd_ipf_get_status(Client& c, bool more, bool as_json) {
  auto st = c.ipf_get_status();
  if (!st) return fail("ipf-get-status", st.error());
  std::vector<std::string> lists;
  if (more) {
    auto d = c.ipf_dump();
    if (!d) return fail("ipf-get-status", d.error());
    lists = std::move(*d);
  }
  const gl::api::IpfStatusReply& t = st->totals;
  if (as_json) {
    json j{{"v4", ipf_family_json(t.v4, *st, false)},
           {"v6", ipf_family_json(t.v6, *st, true)},
           {"nfrag", t.nfrag},
           {"max_nfrags", t.nfrag_max},
           {"nlists", t.nlists},
           {"timeout_ms", t.timeout_ms}};
    if (more) j["lists"] = lists;
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  // OVS's dpctl/ipf-get-status text, line for line.
  std::printf("        Fragmentation Module Status\n");
  std::printf("        ---------------------------\n");
  std::printf("        v4 enabled: %u\n", unsigned{t.v4.enabled});
  std::printf("        v6 enabled: %u\n", unsigned{t.v6.enabled});
  std::printf("        max num frags (v4/v6): %u\n", t.nfrag_max);
  std::printf("        num frag: %u\n", t.nfrag);
  for (const auto* f : {&t.v4, &t.v6}) {
    const char* v = f == &t.v4 ? "v4" : "v6";
    std::printf("        min %s frag size: %u\n", v, f->min_frag_size);
    std::printf("        %s frags accepted: %" PRIu64 "\n", v, f->accepted);
    std::printf("        %s frags completed: %" PRIu64 "\n", v, f->completed_sent);
    std::printf("        %s frags expired: %" PRIu64 "\n", v, f->expired_sent);
    std::printf("        %s frags too small: %" PRIu64 "\n", v, f->too_small);
    std::printf("        %s frags overlapped: %" PRIu64 "\n", v, f->overlap);
    std::printf("        %s frags purged: %" PRIu64 "\n", v, f->purged);
  }
  if (more) {
    std::printf("\n        Fragment Lists:\n\n");
    for (const auto& l : lists) std::printf("%s\n", l.c_str());
  }
  return 0;
}

std::expected<Op, std::string> parse_tp_ipf(const std::string& cmd,
                                            const std::vector<std::string>& args) {
  const size_t n = args.size() - 1;
  auto usage = [&](const std::string& text) { return std::unexpected(cmd + ": " + text); };
  if (cmd == "ct-set-timeout-policy") {
    if (n < 1) return usage("want ct-set-timeout-policy ID [CLASS=SECONDS]...");
    gl::api::CtTimeoutPolicy tp{};
    if (std::string e = parse_tp_id(args[1], tp.id); !e.empty()) return usage(e);
    for (size_t i = 2; i < args.size(); ++i) {
      const std::string& a = args[i];
      const size_t eq = a.find('=');
      const std::string k = a.substr(0, eq);
      uint32_t cls = gl::api::kCtTpCount;
      for (uint32_t j = 0; j < gl::api::kCtTpCount; ++j)
        if (k == gl::api::kCtTpNames[j]) cls = j;
      if (eq == std::string::npos || cls == gl::api::kCtTpCount)
        return usage("'" + a + "': want CLASS=SECONDS, CLASS one of " + tp_class_list());
      if ((tp.present >> cls) & 1) return usage(k + " given twice");
      uint64_t v = 0;
      if (!parse_u64(a.substr(eq + 1), UINT32_MAX, v))
        return usage("'" + a + "': seconds must be a number");
      tp.present |= 1u << cls;
      tp.sec[cls] = static_cast<uint32_t>(v);
    }
    return Op([tp, cmd](Client& c) {
      auto r = c.ct_set_timeout_policy(tp);
      return r ? 0 : fail(cmd, r.error());
    });
  }
  if (cmd == "ct-get-timeout-policy" || cmd == "ct-del-timeout-policy") {
    const bool del = cmd == "ct-del-timeout-policy";
    bool js = false;
    std::optional<uint32_t> id;
    for (size_t i = 1; i < args.size(); ++i) {
      if (!del && args[i] == "--json") {
        js = true;
        continue;
      }
      if (id) return usage("too many arguments");
      uint32_t v = 0;
      if (std::string e = parse_tp_id(args[i], v); !e.empty()) return usage(e);
      id = v;
    }
    if (!id) return usage(del ? "want ct-del-timeout-policy ID" : "want ct-get-timeout-policy ID");
    if (del)
      return Op([id = *id, cmd](Client& c) {
        auto r = c.ct_del_timeout_policy(id);
        return r ? 0 : fail(cmd, r.error());
      });
    return Op([id = *id, js, cmd](Client& c) {
      auto r = c.ct_get_timeout_policy(id);
      if (!r) return fail(cmd, r.error());
      if (js)
        std::printf("%s\n", tp_json(*r).dump(2).c_str());
      else
        std::printf("%s\n", tp_line(*r).c_str());
      return 0;
    });
  }
  if (cmd == "ct-dump-timeout-policies") {
    bool js = false;
    for (size_t i = 1; i < args.size(); ++i) {
      if (args[i] != "--json") return usage("unknown argument '" + args[i] + "'");
      js = true;
    }
    return Op([js, cmd](Client& c) {
      auto r = c.ct_dump_timeout_policies();
      if (!r) return fail(cmd, r.error());
      json all = json::array();
      for (const auto& tp : *r) {
        if (js)
          all.push_back(tp_json(tp));
        else
          std::printf("%s\n", tp_line(tp).c_str());
      }
      if (js) std::printf("%s\n", all.dump(2).c_str());
      return 0;
    });
  }
  if (cmd == "ipf-set-enabled" || cmd == "ipf-set-disabled") {
    const bool on = cmd == "ipf-set-enabled";
    bool v6 = false;
    if (n != 1) return usage("want " + cmd + " v4|v6");
    if (std::string e = parse_family(args[1], v6); !e.empty()) return usage(e);
    return Op([v6, on, cmd](Client& c) {
      auto r = c.ipf_set_enabled(v6, on);
      if (!r) return fail(cmd, r.error());
      std::printf("%s fragmentation reassembly successful\n", on ? "enabling" : "disabling");
      return 0;
    });
  }
  if (cmd == "ipf-set-min-frag") {
    bool v6 = false;
    uint64_t v = 0;
    if (n != 2) return usage("want ipf-set-min-frag v4|v6 N");
    if (std::string e = parse_family(args[1], v6); !e.empty()) return usage(e);
    if (!parse_u64(args[2], UINT32_MAX, v))
      return usage("'" + args[2] + "': the minimum fragment size must be a number (bytes)");
    return Op([v6, v, cmd](Client& c) {
      auto r = c.ipf_set_min_frag(v6, static_cast<uint32_t>(v));
      if (!r) return fail(cmd, r.error());
      std::printf("setting minimum fragment size successful\n");
      return 0;
    });
  }
  if (cmd == "ipf-set-max-nfrags") {
    uint64_t v = 0;
    if (n != 1) return usage("want ipf-set-max-nfrags N");
    if (!parse_u64(args[1], UINT32_MAX, v))
      return usage("'" + args[1] + "': the maximum number of fragments must be a number");
    return Op([v, cmd](Client& c) {
      auto r = c.ipf_set_max_nfrags(static_cast<uint32_t>(v));
      if (!r) return fail(cmd, r.error());
      std::printf("setting maximum fragments successful\n");
      return 0;
    });
  }
  if (cmd == "ipf-get-status") {
    bool more = false, js = false;
    for (size_t i = 1; i < args.size(); ++i) {
      if (args[i] == "-m" || args[i] == "--more")
        more = true;
      else if (args[i] == "--json")
        js = true;
      else
        return usage("unknown argument '" + args[i] + "'");
    }
    return Op([more, js](Client& c) { return cmd_ipf_get_status(c, more, js); });
  }
  return std::unexpected("unknown command '" + cmd + "'");
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

int cmd_fw_status(Client& c, bool as_json) {
  auto st = c.fw_status();
  if (!st) return fail("fw-status", st.error());
  if (as_json) {
    std::printf("%s\n", json{{"generation", st->generation},
                             {"ports", st->n_ports},
                             {"prefixes", st->n_prefixes},
                             {"connections", st->n_conns},
                             {"capacity", st->capacity}}
                            .dump(2)
                            .c_str());
    return 0;
  }
  std::printf("generation: %" PRIu64 "%s\n", st->generation,
              st->generation == 0 ? " (no firewall)" : "");
  std::printf("ports: %u\nprefixes: %u\nconnections: %u (capacity %u)\n", st->n_ports,
              st->n_prefixes, st->n_conns, st->capacity);
  return 0;
}

// The firewall's own name tables (fw_tables.hpp, fw_events.hpp): one place each.
// (Views of string literals: their data() is null-terminated.)
const char* fw_action_name(uint8_t a) {
  return gl::fw::action_name(a).data();
}
const char* fw_reason_name(uint8_t r) {
  return gl::fw::event_reason_name(r).data();
}

json fw_event_json(const gl::api::FwEventWire& e) {
  static const char* const kKinds[] = {"start", "end", "refused"};
  gl::api::CtTuple t{};
  std::memcpy(t.src, e.src, 16);
  std::memcpy(t.dst, e.dst, 16);
  t.family = e.family;
  t.proto = e.proto;
  t.sport = e.sport;
  t.dport = e.dport;
  t.icmp_type = e.icmp_type;
  t.icmp_code = e.icmp_code;
  json j{{"kind", e.kind < 3 ? kKinds[e.kind] : "?"},
         {"time_ms", e.time_ms},
         {"start_ms", e.start_ms},
         {"port", e.port_no},
         {"direction", e.to_vm ? "to-vm" : "from-vm"},
         {"proto", ct_proto_name(e.proto)},
         {"tuple", ct_tuple_json(t)},
         {"rule_id", e.rule_id},
         {"action", fw_action_name(e.action)},
         {"generation", e.generation}};
  if (e.reason != 0) j["reason"] = fw_reason_name(e.reason);
  if (e.kind == gl::api::kFwEventEnd) {
    j["packets"] = {e.packets[0], e.packets[1]};
    j["bytes"] = {e.bytes[0], e.bytes[1]};
  }
  if (e.suppressed != 0) j["suppressed"] = e.suppressed;
  return j;
}

// ---- fw-install: a firewall version from a JSON file (tests, benchmarks, debugging) ----

// Typed fields of fw-install's JSON: absent -> the default; the wrong type or a value out
// of range -> an error naming the field (never a silent wrap or truncation).
std::expected<uint64_t, std::string> json_uint(const json& o, const char* key, uint64_t def,
                                               uint64_t max, const std::string& where) {
  auto it = o.find(key);
  if (it == o.end()) return def;
  if (!it->is_number_unsigned() || it->get<uint64_t>() > max)
    return std::unexpected(where + "." + key + ": " + it->dump() + " is not a number 0.." +
                           std::to_string(max));
  return it->get<uint64_t>();
}
std::expected<bool, std::string> json_bool(const json& o, const char* key,
                                           const std::string& where) {
  auto it = o.find(key);
  if (it == o.end()) return false;
  if (!it->is_boolean()) return std::unexpected(where + "." + key + ": true or false");
  return it->get<bool>();
}
std::expected<json, std::string> json_list(const json& o, const char* key,
                                           const std::string& where) {
  auto it = o.find(key);
  if (it == o.end()) return json::array();
  if (!it->is_array())
    return std::unexpected(where + (where.empty() ? "" : ".") + key + ": a list");
  return *it;
}

std::expected<uint8_t, std::string> fw_action_code(const json& v, const std::string& where) {
  if (v.is_string()) {
    for (size_t i = 0; i < gl::fw::kActionNames.size(); ++i)
      if (v.get<std::string>() == gl::fw::kActionNames[i]) return static_cast<uint8_t>(i);
  }
  return std::unexpected(where + ": " + v.dump() +
                         " is not an action (allow, deny, reject, allow-encrypted)");
}

std::expected<gl::api::FwEntryWire, std::string> fw_entry_from_json(const json& e,
                                                                    const std::string& where) {
  gl::api::FwEntryWire w{};
  if (!e.is_object()) return std::unexpected(where + ": an object");
  for (const auto& [k, v] : e.items())
    if (k != "remote" && k != "proto" && k != "ports" && k != "action" && k != "log" &&
        k != "rule_id")
      return std::unexpected(where + ": unknown field \"" + k + "\"");
  const json remote = e.value("remote", json("any"));
  if (remote == "any") {
    w.remote = 0;
  } else if (remote.is_number_unsigned() && remote.get<uint64_t>() <= UINT32_MAX) {
    w.remote = remote.get<uint32_t>();
  } else {
    return std::unexpected(where + ".remote: an identity number or \"any\"");
  }
  const json proto = e.value("proto", json(0));
  static const std::map<std::string, uint8_t> kProtos = {{"any", 0},  {"icmp", 1},   {"tcp", 6},
                                                         {"udp", 17}, {"icmp6", 58}, {"sctp", 132}};
  if (proto.is_string() && kProtos.count(proto.get<std::string>())) {
    w.proto = kProtos.at(proto.get<std::string>());
  } else if (proto.is_number_integer() && proto.get<int64_t>() >= 0 &&
             proto.get<int64_t>() <= 255) {
    w.proto = proto.get<uint8_t>();
  } else {
    return std::unexpected(where + ".proto: tcp, udp, icmp, icmp6, sctp, any or 0..255");
  }
  w.port_lo = 0;
  w.port_hi = 65535;
  if (auto p = e.find("ports"); p != e.end()) {
    const std::string t = p->is_string() ? p->get<std::string>() : p->dump();
    const size_t dash = t.find('-');
    uint64_t lo = 0, hi = 0;
    if (!parse_u64(t.substr(0, dash), 65535, lo) ||
        !parse_u64(dash == std::string::npos ? t : t.substr(dash + 1), 65535, hi) || lo > hi)
      return std::unexpected(where + ".ports: \"" + t + "\" is not P or LO-HI (0..65535)");
    w.port_lo = static_cast<uint16_t>(lo);
    w.port_hi = static_cast<uint16_t>(hi);
  }
  auto a = fw_action_code(e.value("action", json("allow")), where + ".action");
  if (!a) return std::unexpected(a.error());
  w.action = *a;
  auto log = json_bool(e, "log", where);
  if (!log) return std::unexpected(log.error());
  w.log = *log ? 1 : 0;
  auto rule = json_uint(e, "rule_id", 0, UINT32_MAX, where);
  if (!rule) return std::unexpected(rule.error());
  w.rule_id = static_cast<uint32_t>(*rule);
  return w;
}

std::expected<gl::api::FwPortSpec, std::string> fw_port_from_json(const json& p,
                                                                  const std::string& where) {
  gl::api::FwPortSpec s;
  if (!p.is_object() || !p.contains("port") || !p["port"].is_number_unsigned())
    return std::unexpected(where + ": an object with \"port\" (a port number)");
  for (const auto& [k, v] : p.items())
    if (k != "port" && k != "identity" && k != "mac" && k != "ipv4" && k != "ipv6" &&
        k != "conn_limit" && k != "default_from_vm" && k != "default_to_vm" && k != "from_vm" &&
        k != "to_vm")
      return std::unexpected(where + ": unknown field \"" + k + "\"");
  auto port = json_uint(p, "port", 0, UINT32_MAX, where);
  auto identity = json_uint(p, "identity", 0, UINT32_MAX, where);
  // (0xffffffff would be the tracker's "use the default" marker)
  auto limit = json_uint(p, "conn_limit", 0, UINT32_MAX - 1, where);
  for (const auto* x : {&port, &identity, &limit})
    if (!*x) return std::unexpected(x->error());
  s.port_no = static_cast<uint32_t>(*port);
  s.identity = static_cast<uint32_t>(*identity);
  s.conn_limit = static_cast<uint32_t>(*limit);
  if (auto m = p.find("mac"); m != p.end()) {
    auto mac = gl::odp::parse_mac(m->is_string() ? m->get<std::string>() : "");
    if (!mac) return std::unexpected(where + ".mac: not a MAC address");
    std::memcpy(s.mac, mac->data(), 6);
  }
  auto ipv4_list = json_list(p, "ipv4", where);
  if (!ipv4_list) return std::unexpected(ipv4_list.error());
  for (const json& a : *ipv4_list) {
    uint32_t be = 0;
    if (!a.is_string() || inet_pton(AF_INET, a.get<std::string>().c_str(), &be) != 1)
      return std::unexpected(where + ".ipv4: " + a.dump() + " is not an IPv4 address");
    s.ipv4.push_back(be);
  }
  auto ipv6_list = json_list(p, "ipv6", where);
  if (!ipv6_list) return std::unexpected(ipv6_list.error());
  for (const json& a : *ipv6_list) {
    std::array<uint8_t, 16> b{};
    if (!a.is_string() || inet_pton(AF_INET6, a.get<std::string>().c_str(), b.data()) != 1)
      return std::unexpected(where + ".ipv6: " + a.dump() + " is not an IPv6 address");
    s.ipv6.push_back(b);
  }
  for (const char* d : {"default_from_vm", "default_to_vm"}) {
    auto a = fw_action_code(p.value(d, json("deny")), where + "." + d);
    if (!a) return std::unexpected(a.error());
    (std::string(d) == "default_from_vm" ? s.default_from_vm : s.default_to_vm) = *a;
  }
  for (const char* d : {"from_vm", "to_vm"}) {
    const json list = p.value(d, json::array());
    if (!list.is_array()) return std::unexpected(where + "." + d + ": a list of entries");
    for (size_t i = 0; i < list.size(); ++i) {
      auto e = fw_entry_from_json(list[i], where + "." + d + "[" + std::to_string(i) + "]");
      if (!e) return std::unexpected(e.error());
      (std::string(d) == "from_vm" ? s.from_vm : s.to_vm).push_back(*e);
    }
  }
  return s;
}

// fw-install's and fw-update's JSON, parsed. delta: fw-update (base, remove allowed).
struct FwJson {
  uint64_t generation = 0;  // 0: the current + 1
  uint64_t base = 0;        // fw-update: 0 = the generation in force
  uint32_t record = 0;
  bool has_ipcache = false;
  std::vector<gl::api::FwPrefixWire> ipcache;
  std::vector<gl::api::FwPortSpec> ports;
  std::vector<uint32_t> remove;
  std::vector<std::string> quarantine;
};

std::expected<FwJson, std::string> fw_json(const std::string& cmd, const std::string& file,
                                           bool delta) {
  std::string text;
  if (file == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  } else {
    std::ifstream f(file);
    if (!f) return std::unexpected(file + ": " + std::strerror(errno));
    text.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  }
  const json v = json::parse(text, nullptr, false);
  if (v.is_discarded() || !v.is_object()) return std::unexpected("not a JSON object");
  for (const auto& [k, x] : v.items())
    if (k != "generation" && k != "record" && k != "ipcache" && k != "ports" && k != "quarantine" &&
        (!delta || (k != "base" && k != "remove")))
      return std::unexpected("unknown field \"" + k + "\"" +
                             (k == "base" || k == "remove" ? " (fw-update's)" : ""));
  (void)cmd;
  FwJson out;
  out.has_ipcache = v.contains("ipcache");
  auto ipc_list = json_list(v, "ipcache", "");
  if (!ipc_list) return std::unexpected(ipc_list.error());
  const json& ipc = *ipc_list;
  for (size_t i = 0; i < ipc.size(); ++i) {
    const json& e = ipc[i];
    const std::string where = "ipcache[" + std::to_string(i) + "]";
    gl::api::FwPrefixWire w{};
    if (!e.is_object() || !e.contains("prefix") || !e["prefix"].is_string())
      return std::unexpected(where + ": an object with \"prefix\" (text)");
    const std::string pfx = e["prefix"].get<std::string>();
    const size_t slash = pfx.find('/');
    const std::string addr = pfx.substr(0, slash);
    if (inet_pton(AF_INET, addr.c_str(), w.addr) == 1) {
      w.family = 4;
    } else if (inet_pton(AF_INET6, addr.c_str(), w.addr) == 1) {
      w.family = 6;
    } else {
      return std::unexpected(where + ".prefix: \"" + pfx + "\" is not ADDR[/LEN]");
    }
    uint64_t len = w.family == 4 ? 32 : 128;
    if (slash != std::string::npos && !parse_u64(pfx.substr(slash + 1), len, len))
      return std::unexpected(where + ".prefix: bad length in \"" + pfx + "\"");
    w.len = static_cast<uint8_t>(len);
    auto id = json_uint(e, "identity", 0, UINT32_MAX, where);
    if (!id || *id < 2) return std::unexpected(where + ".identity: a number >= 2");
    w.identity = static_cast<uint32_t>(*id);
    out.ipcache.push_back(w);
  }
  auto ps_list = json_list(v, "ports", "");
  if (!ps_list) return std::unexpected(ps_list.error());
  const json& ps = *ps_list;
  for (size_t i = 0; i < ps.size(); ++i) {
    auto p = fw_port_from_json(ps[i], "ports[" + std::to_string(i) + "]");
    if (!p) return std::unexpected(p.error());
    out.ports.push_back(std::move(*p));
  }
  auto rm_list = json_list(v, "remove", "");
  if (!rm_list) return std::unexpected(rm_list.error());
  for (const json& n : *rm_list) {
    if (!n.is_number_unsigned() || n.get<uint64_t>() > UINT32_MAX)
      return std::unexpected("remove: port numbers");
    out.remove.push_back(n.get<uint32_t>());
  }
  auto q_list = json_list(v, "quarantine", "");
  if (!q_list) return std::unexpected(q_list.error());
  for (const json& q : *q_list) {
    if (!q.is_string() || q.get<std::string>().empty())
      return std::unexpected("quarantine: port names (strings)");
    out.quarantine.push_back(q.get<std::string>());
  }
  const json rec = v.value("record", json("none"));
  if (rec == "all")
    out.record = gl::api::kFwRecordAll;
  else if (rec == "refusals")
    out.record = gl::api::kFwRecordDefaultRefusals;
  else if (rec != "none")
    return std::unexpected("record: all, refusals or none");
  auto given = json_uint(v, "generation", 0, UINT64_MAX / 2, "");
  if (!given) return std::unexpected(given.error().substr(1));
  out.generation = *given;
  auto base = json_uint(v, "base", 0, UINT64_MAX / 2, "");
  if (!base) return std::unexpected(base.error().substr(1));
  out.base = *base;
  return out;
}

int cmd_fw_install(Client& c, const std::vector<std::string>& args) {
  const bool delta = args[0] == "fw-update";
  if (args.size() != 2) return usage_error(args[0] + " FILE|-");
  auto v = fw_json(args[0], args[1], delta);
  if (!v) return usage_error(args[0] + ": " + v.error());
  uint64_t gen = v->generation;
  uint64_t base = v->base;
  if (gen == 0 || (delta && base == 0)) {
    auto st = c.fw_status();
    if (!st) return fail(args[0], st.error());
    if (gen == 0) gen = st->generation + 1;
    if (base == 0) base = st->generation;
  }
  if (!delta) {
    if (auto r = c.fw_install(gen, v->ipcache, v->ports, v->record, v->quarantine); !r)
      return fail(args[0], r.error());
    std::printf("generation %" PRIu64 " installed: %zu ports, %zu prefixes\n", gen, v->ports.size(),
                v->ipcache.size());
    return 0;
  }
  gl::api::Client::FwDelta d;
  d.base = base;
  d.record = v->record;
  d.new_ipcache = v->has_ipcache;
  d.ipcache = v->ipcache;
  d.ports = v->ports;
  d.removed = v->remove;
  d.quarantine = v->quarantine;
  if (auto r = c.fw_update(gen, d); !r) return fail(args[0], r.error());
  std::printf("generation %" PRIu64 " installed as a delta of %" PRIu64
              ": %zu ports sent, %zu removed, %s\n",
              gen, base, v->ports.size(), v->remove.size(),
              v->has_ipcache ? "a new ipcache" : "the ipcache kept");
  return 0;
}

int cmd_fw(Client& c, const std::string& cmd, const std::vector<std::string>& args) {
  bool js = false;
  if (cmd == "fw-rule-stats") {
    for (size_t i = 1; i < args.size(); ++i) {
      if (args[i] != "--json") return usage_error(cmd + ": unknown argument '" + args[i] + "'");
      js = true;
    }
    auto r = c.fw_rule_stats();
    if (!r) return fail(cmd, r.error());
    json all = json::array();
    if (!js) std::printf("%-10s %12s %14s %16s\n", "rule", "connections", "packets", "bytes");
    for (const auto& st : *r) {
      if (js)
        all.push_back(json{{"rule_id", st.rule_id},
                           {"connections", st.conns},
                           {"packets", st.packets},
                           {"bytes", st.bytes}});
      else
        std::printf("%-10s %12" PRIu64 " %14" PRIu64 " %16" PRIu64 "\n",
                    st.rule_id == 0 ? "default" : std::to_string(st.rule_id).c_str(), st.conns,
                    st.packets, st.bytes);
    }
    if (js) std::printf("%s\n", all.dump(2).c_str());
    return 0;
  }
  if (cmd == "fw-events") {
    uint64_t max = gl::api::kFwMaxEventsPerMsg;
    for (size_t i = 1; i < args.size(); ++i) {
      if (args[i] == "--json")
        js = true;
      else if (args[i].rfind("max=", 0) != 0 ||
               !parse_u64(args[i].substr(4), gl::api::kFwMaxEventsPerMsg, max) || max == 0)
        return usage_error(cmd + ": bad argument '" + args[i] + "' (max=1.." +
                           std::to_string(gl::api::kFwMaxEventsPerMsg) + ", --json)");
    }
    auto r = c.fw_events(static_cast<uint32_t>(max));
    if (!r) return fail(cmd, r.error());
    json all = json::array();
    for (const auto& e : r->events) {
      json j = fw_event_json(e);
      if (js)
        all.push_back(j);
      else
        std::printf("%s\n", j.dump().c_str());
    }
    if (js)
      std::printf(
          "%s\n",
          json{{"events", all}, {"pending", r->pending}, {"lost", r->lost}}.dump(2).c_str());
    else
      std::printf("(%zu events; %u pending, %" PRIu64 " lost)\n", r->events.size(), r->pending,
                  r->lost);
    return 0;
  }
  // fw-trace port=N from-vm|to-vm TUPLE [mac=MAC] [--json]
  gl::api::FwTraceRequest req{};
  bool have_port = false, have_dir = false;
  std::string tuple;
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    uint64_t v = 0;
    if (a == "--json") {
      js = true;
    } else if (a.rfind("port=", 0) == 0 && parse_u64(a.substr(5), UINT32_MAX, v)) {
      req.port_no = static_cast<uint32_t>(v);
      have_port = true;
    } else if (a == "from-vm" || a == "to-vm") {
      req.to_vm = a == "to-vm" ? 1 : 0;
      have_dir = true;
    } else if (a.rfind("mac=", 0) == 0) {
      auto m = gl::odp::parse_mac(a.substr(4));
      if (!m) return usage_error(cmd + ": bad MAC '" + a.substr(4) + "'");
      std::memcpy(req.src_mac, m->data(), 6);
      req.has_mac = 1;
    } else if (tuple.empty() && a.find('=') != std::string::npos) {
      tuple = a;
    } else {
      return usage_error(cmd + ": unknown argument '" + a + "'");
    }
  }
  if (!have_port || !have_dir || tuple.empty())
    return usage_error("fw-trace port=N from-vm|to-vm TUPLE [mac=MAC] [--json]");
  CtMatch m;
  uint8_t family = 0;
  std::optional<uint8_t> proto;
  if (std::string e = parse_ct_tuple(tuple, m, family, proto); !e.empty())
    return usage_error(cmd + ": " + e);
  if (!m.src || !m.dst || !proto)
    return usage_error(cmd + ": the tuple needs its source, destination and ct_nw_proto");
  gl::api::CtTuple& t = req.tuple;
  t.family = family;
  t.proto = *proto;
  std::memcpy(t.src, m.src->data(), 16);
  std::memcpy(t.dst, m.dst->data(), 16);
  if (ct_is_icmp(t.proto)) {
    t.icmp_id = htons(m.icmp_id.value_or(0));
    t.icmp_type = m.icmp_type.value_or(t.family == 4 ? 8 : 128);
    t.icmp_code = m.icmp_code.value_or(0);
  } else if (ct_has_ports(t.proto)) {
    if (!m.sport || !m.dport) return usage_error(cmd + ": the tuple needs ct_tp_src and ct_tp_dst");
    t.sport = htons(*m.sport);
    t.dport = htons(*m.dport);
  }
  auto r = c.fw_trace(req);
  if (!r) return fail(cmd, r.error());
  const gl::api::FwTraceReply& tr = *r;
  json j{{"generation", tr.generation},
         {"port_has_firewall", tr.has_fw != 0},
         {"local_identity", tr.local_identity},
         {"remote_identity", tr.remote_identity},
         {"rule_id", tr.rule_id},
         {"action", fw_action_name(tr.action)},
         {"log", tr.log != 0},
         {"source_ok", tr.source_ok != 0},
         {"untracked", tr.untracked == gl::api::kFwTraceNdPass    ? "nd"
                       : tr.untracked == gl::api::kFwTraceRaGuard ? "ra-guard"
                                                                  : ""}};
  if (tr.conn_found)
    j["connection"] = json{{"entry", ct_entry_json(tr.conn)},
                           {"reply_direction", tr.conn_reply != 0},
                           {"current_version", tr.conn_current != 0},
                           {"action", fw_action_name(tr.conn_action)}};
  if (js) {
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  if (!tr.has_fw) {
    std::printf("port %u has no firewall (generation %" PRIu64 "): the packet is not checked\n",
                req.port_no, tr.generation);
    return 0;
  }
  std::printf("generation %" PRIu64 ", port %u (identity %u), %s\n", tr.generation, req.port_no,
              tr.local_identity, req.to_vm ? "to the VM" : "from the VM");
  if (!req.to_vm && !tr.source_ok) std::printf("spoof guard: source not registered: dropped\n");
  if (tr.untracked == gl::api::kFwTraceRaGuard)
    std::printf("RA guard: a router advertisement from the VM: dropped\n");
  else if (tr.untracked == gl::api::kFwTraceNdPass)
    std::printf("neighbour discovery / MLD: passes untracked after the spoof guard%s\n",
                req.to_vm ? "" : " (link-layer address options checked on the packet)");
  std::printf("remote identity %u; first packet: rule %s -> %s%s\n", tr.remote_identity,
              tr.rule_id == 0 ? "default" : std::to_string(tr.rule_id).c_str(),
              fw_action_name(tr.action), tr.log ? ",log" : "");
  if (tr.conn_found)
    std::printf("tracked: %s (%s direction, %s)\n", ct_entry_str(tr.conn, true, true).c_str(),
                tr.conn_reply ? "reply" : "original",
                tr.conn_current ? "allowed by this version"
                                : "from an older version: checked again by the next packet");
  else
    std::printf("tracked: no connection\n");
  return 0;
}

}  // namespace

static int run_main(int argc, char** argv) {
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
  static const char* kCommands[] = {"show",
                                    "add-port",
                                    "del-port",
                                    "set-port",
                                    "add-flow",
                                    "mod-flow",
                                    "del-flow",
                                    "get-flow",
                                    "dump-flows",
                                    "del-flows",
                                    "stats-clear",
                                    "set-config",
                                    "add-sa",
                                    "del-sa",
                                    "dump-sas",
                                    "dump-conntrack",
                                    "flush-conntrack",
                                    "ct-stats-show",
                                    "ct-stats-clear",
                                    "ct-get-maxconns",
                                    "ct-set-maxconns",
                                    "ct-get-nconns",
                                    "ct-set-limits",
                                    "ct-get-limits",
                                    "ct-del-limits",
                                    "ct-enable-tcp-seq-chk",
                                    "ct-disable-tcp-seq-chk",
                                    "ct-get-tcp-seq-chk",
                                    "fw-status",
                                    "fw-rule-stats",
                                    "fw-dump-conntrack",
                                    "fw-flush-conntrack",
                                    "fw-trace",
                                    "fw-install",
                                    "fw-update",
                                    "fw-clear",
                                    "fw-events"};
  bool known = is_tp_ipf_command(cmd);
  for (const char* k : kCommands) known |= cmd == k;
  if (!known) return usage_error("unknown command '" + cmd + "'");
  std::optional<Op> op;
  if (is_tp_ipf_command(cmd)) {
    auto parsed = parse_tp_ipf(cmd, args);
    if (!parsed) return usage_error(parsed.error());
    op = std::move(*parsed);
  }

  auto conn = Client::connect(sock);
  if (!conn) return fail("cannot reach gldp", conn.error());
  Client& c = *conn;
  if (op) return (*op)(c);

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
      else if (parse_opt_num(args[i], "mtu", gl::api::kMaxPortMtu, v) && v >= 68)
        mtu = v;
      else
        return usage_error("add-port: bad option '" + args[i] +
                           "' (port_no=0..255, rxq=1..64, mtu=68..2030)");
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
    uint64_t no = 0;
    if (numeric && !parse_u64(t, 255, no)) return usage_error("del-port: port numbers are 0..255");
    auto r = numeric ? c.port_del(static_cast<uint32_t>(no)) : c.port_del(t);
    if (!r) return fail("del-port " + t, r.error());
    return 0;
  }
  if (cmd == "set-port") {
    unsigned long mtu = 0;
    if (!nargs(2, 2) || !parse_opt_num(args[2], "mtu", 65535, mtu))
      return usage_error("set-port NAME|NUMBER mtu=N");
    const std::string& t = args[1];
    bool numeric = !t.empty() && t.find_first_not_of("0123456789") == std::string::npos;
    uint64_t no = 0;
    if (numeric && !parse_u64(t, 255, no)) return usage_error("set-port: port numbers are 0..255");
    auto r = c.port_set_mtu(numeric ? static_cast<uint32_t>(no) : gl::api::kPortAny,
                            numeric ? std::string() : t, static_cast<uint16_t>(mtu));
    if (!r) return fail("set-port " + t, r.error());
    std::printf("port %u: %s mtu %u\n", r->port_no, r->name, r->mtu);
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
  if (cmd == "add-sa") {
    auto info = c.info();
    if (!info) return fail("add-sa", info.error());
    gl::api::SaAddRequest req;
    std::string e = parse_sa_add(args, info->n_pmds, req);
    if (!e.empty()) {
      explicit_bzero(&req, sizeof req);
      return usage_error("add-sa: " + e);
    }
    auto r = c.sa_add(req);
    explicit_bzero(&req, sizeof req);
    if (!r) return fail("add-sa", r.error());
    return 0;
  }
  if (cmd == "del-sa") {
    uint64_t spi = 0, grace = 0;
    int dir = -1;
    bool have_spi = false;
    for (size_t i = 1; i < args.size(); ++i) {
      const std::string& a = args[i];
      if (a.rfind("spi=", 0) == 0 && parse_u64(a.substr(4), UINT32_MAX, spi))
        have_spi = true;
      else if (a == "dir=out")
        dir = 0;
      else if (a == "dir=in")
        dir = 1;
      else if (a.rfind("grace=", 0) == 0 && parse_u64(a.substr(6), gl::api::kSaMaxGraceMs, grace))
        continue;
      else
        return usage_error("del-sa: bad argument '" + a +
                           "' (del-sa spi=N dir=out|in [grace=0..3600000 ms])");
    }
    if (!have_spi || dir < 0) return usage_error("del-sa spi=N dir=out|in [grace=MS]");
    auto r = c.sa_del(static_cast<uint32_t>(spi), static_cast<gl::api::SaDir>(dir),
                      static_cast<uint32_t>(grace));
    if (!r) return fail("del-sa", r.error());
    return 0;
  }
  if (cmd == "dump-sas") {
    bool keys = false, js = false;
    for (size_t i = 1; i < args.size(); ++i) {
      if (args[i] == "--show-keys")
        keys = true;
      else if (args[i] == "--json")
        js = true;
      else
        return usage_error("dump-sas: unknown argument '" + args[i] + "'");
    }
    return cmd_dump_sas(c, keys, js);
  }
  if (cmd == "fw-dump-conntrack" || cmd == "fw-flush-conntrack") {
    g_fw_tracker = true;
    std::vector<std::string> rest = args;
    rest[0] = cmd.substr(3);
    return cmd_ct(c, rest[0], rest);
  }
  if (cmd.rfind("ct-", 0) == 0 || cmd.ends_with("-conntrack")) return cmd_ct(c, cmd, args);
  if (cmd == "fw-rule-stats" || cmd == "fw-events" || cmd == "fw-trace")
    return cmd_fw(c, cmd, args);
  if (cmd == "fw-install" || cmd == "fw-update") return cmd_fw_install(c, args);
  if (cmd == "fw-clear") {
    if (args.size() != 1) return usage_error("fw-clear takes no arguments");
    if (auto r = c.fw_clear(); !r) return fail("fw-clear", r.error());
    return 0;
  }
  if (cmd == "fw-status") {
    bool js = false;
    for (size_t i = 1; i < args.size(); ++i) {
      if (args[i] == "--json")
        js = true;
      else
        return usage_error("fw-status: unknown argument '" + args[i] + "'");
    }
    return cmd_fw_status(c, js);
  }
  return usage_error("unknown command '" + cmd + "'");
}

int main(int argc, char** argv) {
  // A safety net: a JSON value of an unexpected type (a file given to fw-install, a reply)
  // is an error message and exit 1, never an abort.
  try {
    return run_main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gl-dpctl: %s\n", e.what());
    return 1;
  }
}
