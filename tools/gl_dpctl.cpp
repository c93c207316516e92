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

// ---- ESP SAs -------------------------------------------------------------------------

constexpr const char* kCipherNames[] = {"aes256-gcm", "chacha20-poly1305"};
constexpr const char* kBackendNames[] = {"auto", "sodium", "ipsec-mb"};
constexpr const char* kResultNames[] = {
    "ok",          "bad_length",  "no_room",         "unknown_spi", "too_old",       "replay",
    "auth_failed", "bad_padding", "bad_next_header", "dummy",       "seq_exhausted", "unsupported",
    "crypto_error"};

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
      for (uint8_t b = 0; b < 3; ++b)
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
           {"backend", kBackendNames[k.backend < 3 ? k.backend : 0]},
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
      if (s.results[r]) std::printf(" %s:%" PRIu64, kResultNames[r], s.results[r]);
    std::printf("\n");
  }
  if (as_json) std::printf("%s\n", all.dump(2).c_str());
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
  static const char* kCommands[] = {"show",       "add-port",  "del-port",    "set-port",
                                    "add-flow",   "mod-flow",  "del-flow",    "get-flow",
                                    "dump-flows", "del-flows", "stats-clear", "set-config",
                                    "add-sa",     "del-sa",    "dump-sas"};
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
  return usage_error("unknown command '" + cmd + "'");
}
