#include "tools/pktgen/options.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tools/pktgen/frame.hpp"

namespace gl::pktgen {

namespace {

using Err = std::unexpected<std::string>;

std::optional<uint64_t> to_u64(std::string_view s) {
  uint64_t v = 0;
  if (s.empty()) return std::nullopt;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
  return v;
}

// A non-negative number with an optional k/M/G suffix (1000-based).
std::optional<double> to_number(std::string_view s) {
  if (s.empty()) return std::nullopt;
  double mult = 1;
  switch (s.back()) {
    case 'k':
    case 'K':
      mult = 1e3;
      break;
    case 'm':
    case 'M':
      mult = 1e6;
      break;
    case 'g':
    case 'G':
      mult = 1e9;
      break;
    default:
      break;
  }
  if (mult != 1) s.remove_suffix(1);
  std::string str(s);
  char* end = nullptr;
  const double v = std::strtod(str.c_str(), &end);
  if (str.empty() || end != str.c_str() + str.size() || !std::isfinite(v) || v < 0) {
    return std::nullopt;
  }
  return v * mult;
}

std::optional<uint32_t> to_ipv4(const std::string& s) {
  in_addr a{};
  if (inet_pton(AF_INET, s.c_str(), &a) != 1) return std::nullopt;
  return ntohl(a.s_addr);
}

// "A", "A-B" (inclusive) or, for addresses, "A/len".
std::optional<Range> to_ip_range(const std::string& s) {
  if (auto slash = s.find('/'); slash != std::string::npos) {
    auto base = to_ipv4(s.substr(0, slash));
    auto len = to_u64(std::string_view(s).substr(slash + 1));
    if (!base || !len || *len > 32) return std::nullopt;
    const uint64_t size = uint64_t{1} << (32 - *len);
    const uint64_t lo = *base & ~(size - 1);
    return Range{lo, lo + size - 1};
  }
  const auto dash = s.find('-');
  auto lo = to_ipv4(s.substr(0, dash));
  auto hi = dash == std::string::npos ? lo : to_ipv4(s.substr(dash + 1));
  if (!lo || !hi || *hi < *lo) return std::nullopt;
  return Range{*lo, *hi};
}

std::optional<Range> to_port_range(const std::string& s) {
  const auto dash = s.find('-');
  auto lo = to_u64(std::string_view(s).substr(0, dash));
  auto hi = dash == std::string::npos ? lo : to_u64(std::string_view(s).substr(dash + 1));
  if (!lo || !hi || *hi < *lo || *hi > 65535) return std::nullopt;
  return Range{*lo, *hi};
}

std::optional<Mac> to_mac(const std::string& s) {
  Mac m{};
  unsigned b[6];
  char tail = 0;
  if (std::sscanf(s.c_str(), "%x:%x:%x:%x:%x:%x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
                  &tail) != 6) {
    return std::nullopt;
  }
  for (int i = 0; i < 6; ++i) {
    if (b[i] > 255) return std::nullopt;
    m[i] = static_cast<uint8_t>(b[i]);
  }
  return m;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream in(s);
  while (std::getline(in, cur, sep)) out.push_back(cur);
  return out;
}

// The JSON profile as command-line words ("--key", "value"). Throws on bad JSON;
// the caller catches (JSON boundary).
std::vector<std::string> profile_words(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open profile '" + path + "'");
  const nlohmann::json j = nlohmann::json::parse(in);
  if (!j.is_object()) throw std::runtime_error("profile '" + path + "' is not a JSON object");
  std::vector<std::string> words;
  std::vector<std::string> eal;
  for (const auto& [key, val] : j.items()) {
    std::string opt = key;
    for (auto& c : opt) c = c == '_' ? '-' : c;
    if (opt == "eal") {
      for (const auto& e : val) eal.push_back(e.get<std::string>());
      continue;
    }
    if (opt == "profile" || opt == "help" || opt == "version") {
      throw std::runtime_error("profile key '" + key + "' is not allowed");
    }
    if (val.is_boolean()) {
      if (val.get<bool>()) words.push_back("--" + opt);
      continue;
    }
    std::string text;
    if (val.is_string()) {
      text = val.get<std::string>();
    } else if (val.is_number()) {
      text = val.dump();
    } else if (val.is_array()) {
      for (const auto& e : val) {
        if (!text.empty()) text += ',';
        text += e.is_string() ? e.get<std::string>() : e.dump();
      }
    } else {
      throw std::runtime_error("profile key '" + key + "' has an unsupported value");
    }
    words.push_back("--" + opt);
    words.push_back(text);
  }
  if (!eal.empty()) {
    words.push_back("--");
    for (auto& e : eal) words.push_back(e);
  }
  return words;
}

std::optional<std::string> apply(Options& o, ParseResult& r, const std::string& name,
                                 const std::string& v) {
  const auto bad = [&](const char* what) {
    return std::optional<std::string>("bad value '" + v + "' for --" + name + ": expected " + what);
  };
  if (name == "tx") {
    if (v.empty()) return bad("devargs");
    o.tx = v;
  } else if (name == "rx") {
    if (v.empty()) return bad("devargs");
    o.rx = v;
  } else if (name == "proto" || name == "protocol") {
    if (v == "udp") {
      o.proto = Proto::kUdp;
    } else if (v == "icmp") {
      o.proto = Proto::kIcmp;
    } else if (v == "tcp") {
      o.proto = Proto::kTcp;
    } else {
      return bad("udp, icmp or tcp");
    }
  } else if (name == "flows") {
    auto n = to_number(v);
    if (!n || *n < 1 || *n != std::floor(*n)) return bad("a positive integer");
    o.flows = static_cast<uint64_t>(*n);
  } else if (name == "src-ip" || name == "dst-ip") {
    auto rg = to_ip_range(v);
    if (!rg) return bad("A.B.C.D, A.B.C.D-E.F.G.H or A.B.C.D/len");
    (name == "src-ip" ? o.src_ip : o.dst_ip) = *rg;
  } else if (name == "src-port" || name == "dst-port") {
    auto rg = to_port_range(v);
    if (!rg) return bad("PORT or LO-HI (0..65535)");
    (name == "src-port" ? o.src_port : o.dst_port) = *rg;
    if (name == "src-port") o.src_port_given = true;
  } else if (name == "size" || name == "sizes") {
    o.sizes.clear();
    o.imix = false;
    if (v == "imix") {
      o.imix = true;
      // 7:4:1 of 64/570/1518, interleaved so that any 12 packets have the mix.
      o.sizes = {64, 570, 64, 64, 1518, 570, 64, 64, 570, 64, 570, 64};
    } else {
      for (const auto& part : split(v, ',')) {
        auto n = to_u64(part);
        if (!n || *n > 65535) return bad("sizes in bytes (N[,N...]) or imix");
        o.sizes.push_back(static_cast<uint16_t>(*n));
      }
      if (o.sizes.empty()) return bad("sizes in bytes (N[,N...]) or imix");
    }
  } else if (name == "vlan") {
    const auto colon = v.find(':');
    auto id = to_u64(std::string_view(v).substr(0, colon));
    auto pcp = colon == std::string::npos ? std::optional<uint64_t>(0)
                                          : to_u64(std::string_view(v).substr(colon + 1));
    if (!id || *id > 4095 || !pcp || *pcp > 7) return bad("ID[:PCP] (0..4095, 0..7)");
    o.vlan = static_cast<uint16_t>(*id);
    o.vlan_pcp = static_cast<uint8_t>(*pcp);
  } else if (name == "src-mac" || name == "dst-mac") {
    auto m = to_mac(v);
    if (!m) return bad("a MAC address xx:xx:xx:xx:xx:xx");
    (name == "src-mac" ? o.src_mac : o.dst_mac) = *m;
  } else if (name == "rate") {
    auto n = to_number(v);
    if (!n) return bad("packets per second (e.g. 1000, 2.5M; 0 = unlimited)");
    o.rate = *n;
  } else if (name == "duration") {
    auto n = to_number(v);
    if (!n || *n <= 0) return bad("seconds > 0");
    o.duration = *n;
  } else if (name == "count") {
    auto n = to_number(v);
    if (!n || *n < 1 || *n != std::floor(*n)) return bad("a positive integer");
    o.count = static_cast<uint64_t>(*n);
  } else if (name == "tcp-timeout" || name == "drain") {
    auto n = to_number(v);
    if (!n || *n <= 0 || *n > 3600) return bad("seconds in (0, 3600]");
    (name == "drain" ? o.drain : o.tcp_timeout) = *n;
  } else if (name == "tcp-concurrency") {
    auto n = to_number(v);
    if (!n || *n < 1 || *n != std::floor(*n)) return bad("a positive integer");
    o.tcp_concurrency = static_cast<uint64_t>(*n);
  } else if (name == "inject-drop" || name == "inject-reorder" || name == "inject-dup") {
    auto n = to_u64(v);
    if (!n || *n < 2) return bad("N >= 2 (every Nth packet)");
    (name == "inject-drop"      ? o.inject_drop
     : name == "inject-reorder" ? o.inject_reorder
                                : o.inject_dup) = *n;
  } else if (name == "json") {
    if (v.empty()) return bad("a file name or -");
    o.json = v;
  } else if (name == "lcores") {
    if (v.empty()) return bad("a DPDK core list, e.g. 0,1");
    o.lcores = v;
  } else if (name == "quiet") {
    o.quiet = true;
  } else if (name == "help") {
    r.help = true;
  } else if (name == "version") {
    r.version = true;
  } else {
    return "unknown option --" + name;
  }
  return std::nullopt;
}

bool is_flag(const std::string& name) {
  return name == "quiet" || name == "help" || name == "version";
}

bool is_known(const std::string& name) {
  static const char* const kNames[] = {
      "tx",       "rx",          "proto",       "protocol",        "flows",
      "src-ip",   "dst-ip",      "src-port",    "dst-port",        "size",
      "sizes",    "vlan",        "src-mac",     "dst-mac",         "rate",
      "duration", "count",       "tcp-timeout", "tcp-concurrency", "drain",
      "json",     "inject-drop", "lcores",      "inject-reorder",  "inject-dup",
      "quiet",    "help",        "version"};
  for (const char* n : kNames) {
    if (name == n) return true;
  }
  return false;
}

std::optional<std::string> parse_words(const std::vector<std::string>& w, Options& o,
                                       ParseResult& r, const char* where) {
  for (size_t i = 0; i < w.size(); ++i) {
    const std::string& a = w[i];
    if (a == "--") {
      for (size_t k = i + 1; k < w.size(); ++k) o.eal.push_back(w[k]);
      return std::nullopt;
    }
    if (a == "-h") {
      r.help = true;
      continue;
    }
    if (a.size() < 3 || a[0] != '-' || a[1] != '-') {
      return std::string("unexpected argument '") + a + "'" + where +
             " (EAL arguments go after --)";
    }
    std::string name = a.substr(2);
    std::string value;
    bool has_value = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
      has_value = true;
    }
    if (name == "profile") {
      if (!has_value) ++i;  // consumed by the pre-scan
      continue;
    }
    if (!is_known(name)) return "unknown option --" + name + where;
    if (!is_flag(name) && !has_value) {
      if (i + 1 >= w.size()) return "option --" + name + " needs a value";
      value = w[++i];
    }
    if (auto e = apply(o, r, name, value)) return *e + where;
  }
  return std::nullopt;
}

std::optional<std::string> validate(Options& o) {
  if (o.tx.empty()) return std::string("--tx DEVARGS is required");
  if (o.duration == 0 && o.count == 0) o.duration = 10;
  if (o.proto == Proto::kTcp) {
    if (o.rx.empty()) {
      return std::string(
          "--proto tcp needs --rx: gl-pktgen plays the client on --tx and the server on --rx");
    }
    if (o.inject_drop || o.inject_reorder || o.inject_dup) {
      return std::string("--inject-* apply to udp and icmp only");
    }
    if (!o.src_port_given) o.src_port = Range{1024, 65535};
    // One port for both ends: a packet's direction must follow from its addresses.
    if (o.tx == o.rx && o.src_ip.lo <= o.dst_ip.hi && o.dst_ip.lo <= o.src_ip.hi &&
        o.src_port.lo <= o.dst_port.hi && o.dst_port.lo <= o.src_port.hi) {
      return std::string(
          "--proto tcp with --tx equal to --rx needs disjoint source and destination "
          "address or port ranges");
    }
  }
  const unsigned min_frame = min_frame_size(o.proto, o.vlan.has_value());
  const unsigned max_frame = o.vlan ? 1522 : 1518;
  if (o.proto != Proto::kTcp) {
    for (auto s : o.sizes) {
      if (s < min_frame || s > max_frame) {
        return "packet size " + std::to_string(s) + " out of range: " + std::to_string(min_frame) +
               ".." + std::to_string(max_frame) + " bytes (frame size including the FCS)";
      }
    }
  }
  // Flow count: the ranges' combinations, enumerated source port fastest.
  const long double combos = static_cast<long double>(o.src_ip.size()) * o.dst_ip.size() *
                             o.src_port.size() * o.dst_port.size();
  if (o.flows == 0) {
    if (combos > kMaxFlows) {
      char n[32];
      std::snprintf(n, sizeof n, "%.4g", static_cast<double>(combos));
      return std::string("the address and port ranges give ") + n + " flows, more than " +
             std::to_string(kMaxFlows) + ": give --flows N";
    }
    o.flows = static_cast<uint64_t>(combos);
  }
  if (o.flows > kMaxFlows) return "--flows is at most " + std::to_string(kMaxFlows);
  if (static_cast<long double>(o.flows) > combos) {
    return "--flows " + std::to_string(o.flows) + " exceeds the " +
           std::to_string(static_cast<uint64_t>(combos)) +
           " combinations of the address and port ranges";
  }
  return std::nullopt;
}

}  // namespace

const char* proto_name(Proto p) {
  switch (p) {
    case Proto::kUdp:
      return "udp";
    case Proto::kIcmp:
      return "icmp";
    case Proto::kTcp:
      return "tcp";
  }
  return "?";
}

std::string format_ipv4(uint32_t h) {
  return std::to_string(h >> 24) + "." + std::to_string((h >> 16) & 255) + "." +
         std::to_string((h >> 8) & 255) + "." + std::to_string(h & 255);
}

std::string format_mac(const Mac& m) {
  char buf[18];
  std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4],
                m[5]);
  return buf;
}

std::expected<ParseResult, std::string> parse_args(int argc, char** argv) {
  std::vector<std::string> words(argv + 1, argv + argc);
  ParseResult r;
  // Pre-scan for --profile (before "--"): the profile is the base, options override it.
  for (size_t i = 0; i < words.size() && words[i] != "--"; ++i) {
    std::string path;
    if (words[i] == "--profile") {
      if (i + 1 >= words.size()) return Err("option --profile needs a value");
      path = words[i + 1];
    } else if (words[i].rfind("--profile=", 0) == 0) {
      path = words[i].substr(10);
    } else {
      continue;
    }
    std::vector<std::string> pw;
    try {
      pw = profile_words(path);
    } catch (const std::exception& e) {
      return Err(std::string("profile: ") + e.what());
    }
    if (auto e = parse_words(pw, r.opts, r, (" (in profile " + path + ")").c_str())) {
      return Err(*e);
    }
  }
  if (auto e = parse_words(words, r.opts, r, "")) return Err(*e);
  if (r.help || r.version) return r;
  if (auto e = validate(r.opts)) return Err(*e);
  return r;
}

std::string usage_text() {
  return R"(gl-pktgen — Goldilocks DPDK traffic generator

Usage: gl-pktgen --tx DEVARGS [--rx DEVARGS] [options] [-- EAL arguments]

Ports (any DPDK device by devargs; --tx and --rx may be the same port):
  --tx DEVARGS          port to send on, e.g. net_ring0, 0000:3b:00.0,
                        net_pcap0,tx_pcap=/tmp/out.pcap, net_af_packet0,iface=veth0
  --rx DEVARGS          port to receive on (the other end of the path under test);
                        without it gl-pktgen only transmits

Traffic profile (also from a JSON file: --profile FILE, keys = long option names):
  --profile FILE        load options from a JSON object; command-line options override
  --proto udp|icmp|tcp  protocol (default udp); tcp opens real connections: three-way
                        handshake and FIN teardown, client on --tx, server on --rx
  --flows N             number of flows (default: every combination of the ranges);
                        flows enumerate the ranges source port fastest
  --src-ip A[-B|/LEN]   source address range (default 10.0.0.1)
  --dst-ip A[-B|/LEN]   destination address range (default 10.0.1.1)
  --src-port P[-Q]      source port range (default 1024; tcp: 1024-65535);
                        for icmp it is the echo identifier
  --dst-port P[-Q]      destination port range (default 5001)
  --size N[,N..]|imix   frame sizes including FCS, cycled per packet (default 64);
                        imix = 7:4:1 of 64/570/1518
  --vlan ID[:PCP]       add an 802.1Q tag
  --src-mac MAC         default: the tx port's MAC
  --dst-mac MAC         default: the rx port's MAC, else ff:ff:ff:ff:ff:ff

Run control:
  --rate PPS            packets per second (tcp: new connections per second);
                        suffixes k, M; 0 or absent = as fast as possible
  --duration S          send for S seconds (default 10 when --count is absent)
  --count N             send N packets (tcp: open N connections)
  --drain S             wait at most S seconds for in-flight packets (default 1)
  --tcp-timeout S       a connection not closed S seconds after its SYN fails (default 1)
  --tcp-concurrency N   at most N connections open at once (default 256)
  --lcores LIST         EAL core list; the 2nd core runs TX/RX, the 1st the display
                        (default: the first two CPUs this process may use)

Fault injection (udp/icmp; to check a receiver's accounting):
  --inject-drop N       skip every Nth sequence number (counted as loss by the receiver)
  --inject-reorder N    swap every Nth pair of packets
  --inject-dup N        send every Nth packet twice

Output:
  --json FILE|-         write the JSON summary to FILE or stdout (progress then goes to
                        stderr)
  --quiet               no progress display
  --help, --version

Every udp/icmp packet carries a 14-byte signature after the L4 header (magic "GL",
run id, stream id, 32-bit sequence number, 32-bit TX time in ns); the receiver reports
received, lost, duplicates, reordered (arrived after a later one) and latency
min/p50/p99/max. Exit status: 0 done, 1 runtime error, 2 usage error (options, devargs).

Examples:
  # loop back through a ring port, 1M packets, summary on stdout
  gl-pktgen --tx net_ring0 --rx net_ring0 --count 1M --json -
  # 1000 UDP flows of IMIX at 100 kpps for 30 s between two veth ends
  gl-pktgen --tx net_af_packet0,iface=veth0 --rx net_af_packet1,iface=veth1 \
            --flows 1000 --dst-ip 10.0.1.1-10.0.1.250 --size imix --rate 100k --duration 30
  # 10000 TCP connections (handshake + teardown) through a switch, 2000 per second
  gl-pktgen --tx net_af_packet0,iface=veth0 --rx net_af_packet1,iface=veth1 \
            --proto tcp --count 10000 --rate 2000 --json result.json
  # write 100 ICMP echo requests with VLAN 10 into a pcap file
  gl-pktgen --tx net_pcap0,tx_pcap=/tmp/icmp.pcap --proto icmp --vlan 10 --count 100
  # check a receiver's accounting: every 10th sequence number is never sent
  gl-pktgen --tx net_ring0 --rx net_ring0 --count 10000 --inject-drop 10 --json -
)";
}

}  // namespace gl::pktgen
