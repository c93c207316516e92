// Packet parser tests: tables of {description, builder-made packet, expected result, key
// fields, layout}, every ParseResult reached, truncation at every length, random fuzzing.
#include "flowtables/packet_parser.hpp"

#include <catch2/catch.hpp>

#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "flowtables/checksum.hpp"
#include "flowtables/packet_builder.hpp"

using namespace gl::flow;

namespace {

const MacAddr kA = mac("02:00:00:00:00:01");  // the builder's default source
const MacAddr kB = mac("02:00:00:00:00:02");  // the builder's default destination
constexpr uint16_t N = kNoOffset;
constexpr uint8_t kMetaByte = 0xa5;  // metadata words are pre-filled with this
constexpr size_t kMetaBytes = offsetof(FlowKey, eth_dst);
// The key's second metadata part (ct_orig_tuple, words 17..22): also never written.
constexpr size_t kTailMeta = offsetof(FlowKey, ct_nw_src);

// ---- expected keys ---------------------------------------------------------------------

struct K {
  FlowKey k = zero_key();

  K() { macs(kA, kB); }
  static K none() {
    K x;
    x.k = zero_key();
    return x;
  }
  K& macs(const MacAddr& src, const MacAddr& dst) {
    std::memcpy(k.eth_src, src.data(), 6);
    std::memcpy(k.eth_dst, dst.data(), 6);
    return *this;
  }
  K& type(uint16_t t) {
    k.eth_type = hton16(t);
    return *this;
  }
  K& tci(uint16_t tci) {
    k.vlan_tci = hton16(tci | kVlanCfi);
    return *this;
  }
  K& ip4(std::string_view s, std::string_view d) {
    k.ipv4_src = ipv4_addr(s);
    k.ipv4_dst = ipv4_addr(d);
    return *this;
  }
  K& ip6(std::string_view s, std::string_view d) {
    const Ipv6Addr a = ipv6_addr(s), b = ipv6_addr(d);
    std::memcpy(k.ipv6_src, a.data(), 16);
    std::memcpy(k.ipv6_dst, b.data(), 16);
    return *this;
  }
  K& label(uint32_t l) {
    k.ipv6_label = hton32(l);
    return *this;
  }
  K& proto(uint8_t p) {
    k.nw_proto = p;
    return *this;
  }
  K& tos(uint8_t t) {
    k.nw_tos = t;
    return *this;
  }
  K& ttl(uint8_t t) {
    k.nw_ttl = t;
    return *this;
  }
  K& frag(uint8_t f) {
    k.nw_frag = f;
    return *this;
  }
  K& ports(uint16_t s, uint16_t d) {
    k.tp_src = hton16(s);
    k.tp_dst = hton16(d);
    return *this;
  }
  K& icmp(uint8_t type, uint8_t code) { return ports(type, code); }
  K& flags(uint16_t f) {
    k.tcp_flags = hton16(f);
    return *this;
  }
  K& arp(uint16_t op, const MacAddr& sha, std::string_view spa, const MacAddr& tha,
         std::string_view tpa) {
    k.arp_op = hton16(op);
    k.nw_proto = op <= 0xff ? static_cast<uint8_t>(op) : 0;
    std::memcpy(k.arp_sha, sha.data(), 6);
    std::memcpy(k.arp_tha, tha.data(), 6);
    return ip4(spa, tpa);
  }
};

// The common addresses of the tables.
constexpr const char* kS4 = "10.0.0.1";
constexpr const char* kD4 = "10.0.0.2";
constexpr const char* kS6 = "2001:db8::1";
constexpr const char* kD6 = "2001:db8:0:1::2";

PacketBuilder b4() {
  return std::move(PacketBuilder().ipv4(kS4, kD4));
}
PacketBuilder b6() {
  return std::move(PacketBuilder().ipv6(kS6, kD6));
}
K v4(uint8_t proto) {
  return std::move(K().type(kEthTypeIpv4).ip4(kS4, kD4).proto(proto).ttl(64));
}
K v6(uint8_t proto) {
  return std::move(K().type(kEthTypeIpv6).ip6(kS6, kD6).proto(proto).ttl(64));
}
// The L3-only part of v6 (what kIpv6BadExtChain keeps).
K v6_hdr() {
  return std::move(K().type(kEthTypeIpv6).ip6(kS6, kD6).ttl(64));
}

PacketLayout lay(uint16_t vlan, uint16_t l3, uint16_t l4, uint16_t l3_len, uint16_t l4_len,
                 uint8_t proto, uint8_t flags) {
  return PacketLayout{vlan, l3, l4, l3_len, l4_len, proto, flags};
}
PacketLayout l2_lay(uint16_t l3 = 14, uint16_t vlan = N) {
  return lay(vlan, l3, N, 0, 0, 0, 0);
}
const PacketLayout kDropLayout = lay(N, N, N, 0, 0, 0, 0);
constexpr uint8_t k4 = kLayoutIpv4;
constexpr uint8_t k6 = kLayoutIpv6;
constexpr uint8_t kL4 = kLayoutL4;
constexpr uint8_t kFr = kLayoutFragment;
constexpr uint8_t kLater = kLayoutLaterFragment;

std::vector<uint8_t> patched(std::vector<uint8_t> p, size_t ofs, std::vector<uint8_t> bytes) {
  std::memcpy(p.data() + ofs, bytes.data(), bytes.size());
  return p;
}

// ---- printing --------------------------------------------------------------------------

std::string hex(const void* p, size_t n) {
  std::string s;
  char b[4];
  for (size_t i = 0; i < n; ++i) {
    std::snprintf(b, sizeof b, "%02x", static_cast<const uint8_t*>(p)[i]);
    s += b;
  }
  return s;
}

std::string key_str(const FlowKey& k) {
  std::string s;
  auto f = [&](const char* name, const void* p, size_t n) {
    s += name;
    s += '=';
    s += hex(p, n);
    s += ' ';
  };
  f("meta", &k, kMetaBytes);
  f("meta2", &k.ct_nw_src, sizeof k - kTailMeta);
  f("dst", k.eth_dst, 6);
  f("src", k.eth_src, 6);
  f("type", &k.eth_type, 2);
  f("tci", &k.vlan_tci, 2);
  f("ip4src", &k.ipv4_src, 4);
  f("ip4dst", &k.ipv4_dst, 4);
  f("ip6src", k.ipv6_src, 16);
  f("ip6dst", k.ipv6_dst, 16);
  f("label", &k.ipv6_label, 4);
  f("proto", &k.nw_proto, 1);
  f("tos", &k.nw_tos, 1);
  f("ttl", &k.nw_ttl, 1);
  f("frag", &k.nw_frag, 1);
  f("tp_src", &k.tp_src, 2);
  f("tp_dst", &k.tp_dst, 2);
  f("tcp_flags", &k.tcp_flags, 2);
  f("pad2", &k.pad2, 2);
  f("sha", k.arp_sha, 6);
  f("op", &k.arp_op, 2);
  f("tha", k.arp_tha, 6);
  f("pad3", &k.pad3, 2);
  return s;
}

std::string layout_str(const PacketLayout& l) {
  char b[160];
  std::snprintf(b, sizeof b, "vlan=%u l3=%u l4=%u l3_len=%u l4_len=%u proto=%u flags=%#x",
                l.vlan_ofs, l.l3_ofs, l.l4_ofs, l.l3_len, l.l4_len, l.l4_proto, l.flags);
  return b;
}

std::string result_str(ParseResult r) {
  return std::string(parse_result_name(r));
}

// ---- running a packet ------------------------------------------------------------------

struct Parsed {
  ParseResult result;
  FlowKey key;
  PacketLayout layout;
};

// Parses from an exactly sized heap copy (so that AddressSanitizer sees any overread),
// with the metadata words and the layout pre-filled with garbage.
Parsed parse_exact(const uint8_t* data, size_t n) {
  std::unique_ptr<uint8_t[]> buf(new uint8_t[n == 0 ? 1 : n]);
  if (n != 0) std::memcpy(buf.get(), data, n);
  Parsed p;
  std::memset(&p.key, kMetaByte, sizeof p.key);
  std::memset(&p.layout, 0x5a, sizeof p.layout);
  p.result = parse_packet(buf.get(), static_cast<uint32_t>(n), p.key, p.layout);
  return p;
}

struct Case {
  std::string desc;
  std::vector<uint8_t> pkt;
  ParseResult result;
  K key;
  PacketLayout layout;
};

void run_table(const std::vector<Case>& cases) {
  for (const Case& c : cases) {
    INFO(c.desc << " [" << c.pkt.size() << " bytes: " << hex(c.pkt.data(), c.pkt.size()) << "]");
    const Parsed p = parse_exact(c.pkt.data(), c.pkt.size());
    FlowKey want = c.key.k;
    std::memset(&want, kMetaByte, kMetaBytes);  // metadata must be left alone
    std::memset(&want.ct_nw_src, kMetaByte, sizeof want - kTailMeta);
    CHECK(result_str(p.result) == result_str(c.result));
    CHECK(key_str(p.key) == key_str(want));
    CHECK(p.key == want);
    CHECK(layout_str(p.layout) == layout_str(c.layout));
  }
}

// ---- invariants (truncation and fuzzing) -----------------------------------------------

#define GL_EXPECT(cond) \
  if (!(cond)) return "invariant failed: " #cond

// Checks what must hold for any input; returns an empty string when all hold.
std::string check_invariants(const uint8_t* d, size_t n, const Parsed& p) {
  const FlowKey& k = p.key;
  const PacketLayout& l = p.layout;
  const auto* kb = reinterpret_cast<const uint8_t*>(&k);
  for (size_t i = 0; i < kMetaBytes; ++i) GL_EXPECT(kb[i] == kMetaByte);
  for (size_t i = kTailMeta; i < sizeof k; ++i) GL_EXPECT(kb[i] == kMetaByte);
  GL_EXPECT(static_cast<size_t>(p.result) < kParseResultCount);
  GL_EXPECT(k.pad2 == 0 && k.pad3 == 0);
  if (parse_is_drop(p.result)) {
    GL_EXPECT(layout_str(l) == layout_str(kDropLayout));
    GL_EXPECT(n < 18);
    const size_t eth = p.result == ParseResult::kVlanTruncated ? 12 : 0;
    for (size_t i = kMetaBytes; i < kTailMeta; ++i) {
      const size_t f = i - kMetaBytes;  // eth_dst at 0..5, eth_src at 8..13
      if (eth != 0 && (f < 6 || (f >= 8 && f < 14))) continue;
      GL_EXPECT(kb[i] == 0);
    }
    return "";
  }
  GL_EXPECT(n >= 14);
  GL_EXPECT(std::memcmp(k.eth_dst, d, 6) == 0 && std::memcmp(k.eth_src, d + 6, 6) == 0);
  GL_EXPECT(l.l3_ofs <= n && l.l3_ofs >= 14 && l.l3_ofs <= 26);
  GL_EXPECT(l.vlan_ofs == N || l.vlan_ofs == 12);
  GL_EXPECT((l.vlan_ofs == 12) == (k.vlan_tci != 0));
  GL_EXPECT(k.vlan_tci == 0 || (ntoh16(k.vlan_tci) & kVlanCfi) != 0);
  GL_EXPECT(ntoh16(k.eth_type) >= kEthTypeNone);
  const bool ip = l.is_ipv4() || l.is_ipv6();
  GL_EXPECT(!(l.is_ipv4() && l.is_ipv6()));
  if (l.is_ipv4()) {
    GL_EXPECT(ntoh16(k.eth_type) == kEthTypeIpv4);
    GL_EXPECT(l.l3_len >= 20 && l.l3_ofs + l.l3_len <= n);
    GL_EXPECT(std::memcmp(&k.ipv4_src, d + l.l3_ofs + 12, 8) == 0);
    GL_EXPECT(k.nw_ttl == d[l.l3_ofs + 8] && k.nw_tos == d[l.l3_ofs + 1]);
  }
  if (l.is_ipv6()) {
    GL_EXPECT(ntoh16(k.eth_type) == kEthTypeIpv6);
    GL_EXPECT(l.l3_len >= 40 && l.l3_ofs + l.l3_len <= n);
    GL_EXPECT(std::memcmp(k.ipv6_src, d + l.l3_ofs + 8, 32) == 0);
    GL_EXPECT((ntoh32(k.ipv6_label) & ~0xfffffu) == 0);
  }
  if (!ip) {
    GL_EXPECT(l.l3_len == 0 && l.l4_ofs == N && l.l4_len == 0 && l.l4_proto == 0);
    GL_EXPECT(k.nw_tos == 0 && k.nw_ttl == 0 && k.nw_frag == 0 && k.ipv6_label == 0);
    GL_EXPECT(k.tp_src == 0 && k.tp_dst == 0 && k.tcp_flags == 0);
    GL_EXPECT(l.flags == 0 || l.flags == kLayoutInnerVlan);
  } else {
    GL_EXPECT(k.arp_op == 0);
  }
  if (l.l4_ofs != N) {
    GL_EXPECT(ip && l.l4_ofs >= l.l3_ofs + 20);
    GL_EXPECT(l.l4_ofs + l.l4_len == l.l3_ofs + l.l3_len);
    GL_EXPECT(l.l4_proto == k.nw_proto);
    GL_EXPECT(!(l.flags & kLayoutLaterFragment));
  }
  if (l.has_l4()) {
    GL_EXPECT(l.l4_ofs != N && l.l4_len >= 8 && p.result == ParseResult::kOk);
    if (k.nw_proto == kIpProtoTcp || k.nw_proto == kIpProtoUdp || k.nw_proto == kIpProtoSctp) {
      GL_EXPECT(std::memcmp(&k.tp_src, d + l.l4_ofs, 4) == 0);
    }
    if (k.nw_proto == kIpProtoTcp) {
      GL_EXPECT(l.l4_len >= 20 && (d[l.l4_ofs + 12] >> 4) * 4u <= l.l4_len);
      GL_EXPECT((ntoh16(k.tcp_flags) & 0xf000) == 0);
    }
    if (k.nw_proto == kIpProtoSctp) GL_EXPECT(l.l4_len >= 12);
    GL_EXPECT(k.nw_proto == (l.is_ipv4() ? kIpProtoIcmp : kIpProtoIcmpv6) ||
              k.nw_proto == kIpProtoTcp || k.nw_proto == kIpProtoUdp || k.nw_proto == kIpProtoSctp);
  } else {
    GL_EXPECT(k.tp_src == 0 && k.tp_dst == 0 && k.tcp_flags == 0);
  }
  GL_EXPECT(((k.nw_frag & kFragAny) != 0) == l.is_fragment());
  GL_EXPECT(((k.nw_frag & kFragLater) != 0) == ((l.flags & kLayoutLaterFragment) != 0));
  GL_EXPECT(k.nw_frag == 0 || k.nw_frag == kFragAny || k.nw_frag == (kFragAny | kFragLater));
  switch (p.result) {
    case ParseResult::kIpv4Truncated:
    case ParseResult::kIpv4BadVersion:
    case ParseResult::kIpv4BadIhl:
    case ParseResult::kIpv4BadTotalLength:
      GL_EXPECT(!ip && ntoh16(k.eth_type) == kEthTypeIpv4 && k.ipv4_src == 0);
      break;
    case ParseResult::kIpv6Truncated:
    case ParseResult::kIpv6BadVersion:
    case ParseResult::kIpv6BadPayloadLength:
      GL_EXPECT(!ip && ntoh16(k.eth_type) == kEthTypeIpv6);
      break;
    case ParseResult::kIpv6BadExtChain:
      GL_EXPECT(l.is_ipv6() && l.l4_ofs == N && k.nw_proto == 0 && k.nw_frag == 0);
      break;
    case ParseResult::kL4Truncated:
    case ParseResult::kTcpBadOffset:
      GL_EXPECT(ip && l.l4_ofs != N && !l.has_l4());
      break;
    case ParseResult::kArpTruncated:
    case ParseResult::kArpBadFormat:
      GL_EXPECT(k.arp_op == 0 && k.ipv4_src == 0 && k.nw_proto == 0);
      break;
    default:
      break;
  }
  return "";
}

#undef GL_EXPECT

// ---- the tables ------------------------------------------------------------------------

std::vector<Case> well_formed_cases() {
  const MacAddr kBcast = mac("ff:ff:ff:ff:ff:ff");
  const MacAddr kC = mac("0a:1b:2c:3d:4e:5f");
  const std::vector<uint8_t> tcp_opts = {2, 4, 5, 0xb4, 1, 3, 3, 7, 4, 2, 1, 1};
  const std::vector<uint8_t> ip_opts = {0x94, 0x04, 0, 0, 1, 1, 1, 0};  // RA, NOP, EOL
  const std::vector<uint8_t> ip_opts_max(40, 1);                        // 40 NOPs
  auto eight_dest_opts = [](PacketBuilder b, int n) {
    for (int i = 0; i < n; ++i) b.ipv6_dest_opts(8);
    return b;
  };
  return {
      // ---- L2 ----
      {"Ethernet II, unknown EtherType: L2 only",
       PacketBuilder().eth(kC, kB).ether_type(0x88b5).payload(46).build(), ParseResult::kOk,
       K().macs(kC, kB).type(0x88b5), l2_lay()},
      {"802.3 LLC: eth_type 0x05ff", PacketBuilder().llc().payload(40).build(), ParseResult::kOk,
       K().type(kEthTypeNone), l2_lay()},
      {"802.3 LLC/SNAP carrying IPv4/UDP", b4().llc_snap().udp(1234, 80).payload(4).build(),
       ParseResult::kOk, v4(17).ports(1234, 80), lay(N, 22, 42, 32, 12, 17, k4 | kL4)},
      {"802.3 LLC/SNAP with a length-field type: 0x05ff",
       PacketBuilder().llc_snap(0x0100).payload(20).build(), ParseResult::kOk,
       K().type(kEthTypeNone), l2_lay(22)},
      {"802.3 LLC with a zero length", PacketBuilder().ether_type(0).build(), ParseResult::kOk,
       K().type(kEthTypeNone), l2_lay()},
      {"802.1Q VLAN, IPv4/UDP", b4().vlan(10, 3).udp(1234, 80).payload(18).build(),
       ParseResult::kOk, v4(17).tci(0x600a).ports(1234, 80), lay(12, 18, 38, 46, 26, 17, k4 | kL4)},
      {"802.1ad outer tag, IPv4/TCP",
       b4().vlan(100, 5, kEthTypeQinQ).tcp(40000, 443).tcp_flags(kTcpSyn).build(), ParseResult::kOk,
       v4(6).tci(0xa064).ports(40000, 443).flags(kTcpSyn), lay(12, 18, 38, 40, 20, 6, k4 | kL4)},
      {"QinQ: the second tag is not parsed",
       b4().vlan(100, 0, kEthTypeQinQ).vlan(10).udp(1, 2).build(), ParseResult::kOk,
       K().type(kEthTypeVlan).tci(100), lay(12, 18, N, 0, 0, 0, kLayoutInnerVlan)},
      {"double 802.1Q: the second tag is not parsed", b4().vlan(1).vlan(2).udp(1, 2).build(),
       ParseResult::kOk, K().type(kEthTypeVlan).tci(1), lay(12, 18, N, 0, 0, 0, kLayoutInnerVlan)},
      {"VLAN with DEI set",
       PacketBuilder().vlan(7, 0, kEthTypeVlan, true).ether_type(0x88b5).payload(30).build(),
       ParseResult::kOk, K().type(0x88b5).tci(0x1007), l2_lay(18, 12)},
      {"VLAN tag and nothing after the EtherType",
       PacketBuilder().vlan(1).ether_type(0x88b5).build(), ParseResult::kOk,
       K().type(0x88b5).tci(1), l2_lay(18, 12)},
      {"VLAN + 802.3 LLC", PacketBuilder().vlan(4095, 7).llc().payload(10).build(),
       ParseResult::kOk, K().type(kEthTypeNone).tci(0xefff), l2_lay(18, 12)},
      {"MPLS (not parsed): L2 only", PacketBuilder().ether_type(0x8847).build(), ParseResult::kOk,
       K().type(0x8847), l2_lay()},

      // ---- IPv4 ----
      {"IPv4/TCP SYN+ACK with TOS and TTL",
       PacketBuilder()
           .ipv4("192.168.1.1", "192.168.1.2")
           .tos(0xb8)
           .ttl(17)
           .tcp(1025, 80)
           .tcp_flags(kTcpSyn | kTcpAck)
           .payload(10)
           .build(),
       ParseResult::kOk,
       K().type(kEthTypeIpv4)
           .ip4("192.168.1.1", "192.168.1.2")
           .proto(6)
           .tos(0xb8)
           .ttl(17)
           .ports(1025, 80)
           .flags(kTcpSyn | kTcpAck),
       lay(N, 14, 34, 50, 30, 6, k4 | kL4)},
      {"IPv4/TCP with all 12 flag bits", b4().tcp(1, 2).tcp_flags(0x0fff).build(), ParseResult::kOk,
       v4(6).ports(1, 2).flags(0x0fff), lay(N, 14, 34, 40, 20, 6, k4 | kL4)},
      {"IPv4/TCP with options", b4().tcp(5, 6).tcp_flags(kTcpFin).tcp_options(tcp_opts).build(),
       ParseResult::kOk, v4(6).ports(5, 6).flags(kTcpFin), lay(N, 14, 34, 52, 32, 6, k4 | kL4)},
      {"IPv4/UDP with Ethernet padding", b4().udp(53, 53).payload(2).pad_to(60).build(),
       ParseResult::kOk, v4(17).ports(53, 53), lay(N, 14, 34, 30, 10, 17, k4 | kL4)},
      {"IPv4/SCTP", b4().sctp(2905, 2906).payload(16).build(), ParseResult::kOk,
       v4(132).ports(2905, 2906), lay(N, 14, 34, 48, 28, 132, k4 | kL4)},
      {"IPv4/ICMP echo request", b4().icmp_echo(1, 1).payload(56).build(), ParseResult::kOk,
       v4(1).icmp(8, 0), lay(N, 14, 34, 84, 64, 1, k4 | kL4)},
      {"IPv4/ICMP port unreachable", b4().icmp(3, 3).payload(28).build(), ParseResult::kOk,
       v4(1).icmp(3, 3), lay(N, 14, 34, 56, 36, 1, k4 | kL4)},
      {"IPv4 first fragment (MF, offset 0) keeps ports",
       b4().udp(1000, 2000).mf().payload(100).build(), ParseResult::kOk,
       v4(17).frag(kFragAny).ports(1000, 2000), lay(N, 14, 34, 128, 108, 17, k4 | kL4 | kFr)},
      {"IPv4 later fragment (MF, offset 185): no L4",
       b4().ip_proto(17).frag_offset(185).mf().payload(100).build(), ParseResult::kOk,
       v4(17).frag(kFragAny | kFragLater), lay(N, 14, N, 120, 0, 17, k4 | kFr | kLater)},
      {"IPv4 last fragment (offset 1, no MF)", b4().ip_proto(6).frag_offset(1).payload(8).build(),
       ParseResult::kOk, v4(6).frag(kFragAny | kFragLater),
       lay(N, 14, N, 28, 0, 6, k4 | kFr | kLater)},
      {"IPv4 DF is not a fragment", b4().udp(1, 2).df().build(), ParseResult::kOk,
       v4(17).ports(1, 2), lay(N, 14, 34, 28, 8, 17, k4 | kL4)},
      {"IPv4 with options (IHL 7)", b4().ipv4_options(ip_opts).udp(5000, 6000).build(),
       ParseResult::kOk, v4(17).ports(5000, 6000), lay(N, 14, 42, 36, 8, 17, k4 | kL4)},
      {"IPv4 with IHL 15", b4().ipv4_options(ip_opts_max).tcp(7, 8).build(), ParseResult::kOk,
       v4(6).ports(7, 8).flags(kTcpSyn), lay(N, 14, 74, 80, 20, 6, k4 | kL4)},
      {"IPv4/ESP: nw_proto 50, l4_ofs at the ESP header",
       b4().ip_proto(kIpProtoEsp).payload(40).build(), ParseResult::kOk, v4(50),
       lay(N, 14, 34, 60, 40, 50, k4)},
      {"IPv4/GRE with no payload", b4().ip_proto(47).build(), ParseResult::kOk, v4(47),
       lay(N, 14, 34, 20, 0, 47, k4)},
      {"IPv4 carrying ICMPv6 (58) has no ICMP fields", b4().icmpv6(128, 0).build(),
       ParseResult::kOk, v4(58), lay(N, 14, 34, 28, 8, 58, k4)},
      {"IPv4/UDP in VLAN, 802.3 SNAP", b4().vlan(3).llc_snap().udp(9, 10).build(), ParseResult::kOk,
       v4(17).tci(3).ports(9, 10), lay(12, 26, 46, 28, 8, 17, k4 | kL4)},

      // ---- IPv6 ----
      {"IPv6/TCP with traffic class, flow label and hop limit",
       b6().tos(0xb8)
           .flow_label(0x12345)
           .ttl(255)
           .tcp(22, 50000)
           .tcp_flags(kTcpAck | kTcpPsh)
           .payload(8)
           .build(),
       ParseResult::kOk,
       v6(6).tos(0xb8).label(0x12345).ttl(255).ports(22, 50000).flags(kTcpAck | kTcpPsh),
       lay(N, 14, 54, 68, 28, 6, k6 | kL4)},
      {"IPv6/UDP", b6().udp(546, 547).payload(4).build(), ParseResult::kOk, v6(17).ports(546, 547),
       lay(N, 14, 54, 52, 12, 17, k6 | kL4)},
      {"IPv6/SCTP", b6().sctp(1, 2).build(), ParseResult::kOk, v6(132).ports(1, 2),
       lay(N, 14, 54, 52, 12, 132, k6 | kL4)},
      {"IPv6/ICMPv6 echo request", b6().icmpv6_echo(1, 2).payload(8).build(), ParseResult::kOk,
       v6(58).icmp(128, 0), lay(N, 14, 54, 56, 16, 58, k6 | kL4)},
      {"IPv6/ICMPv6 neighbour solicitation", b6().icmpv6(135, 0).payload(16).build(),
       ParseResult::kOk, v6(58).icmp(135, 0), lay(N, 14, 54, 64, 24, 58, k6 | kL4)},
      {"IPv6 hop-by-hop + destination options + TCP",
       b6().ipv6_hop_by_hop(8).ipv6_dest_opts(16).tcp(1, 2).tcp_flags(kTcpRst).build(),
       ParseResult::kOk, v6(6).ports(1, 2).flags(kTcpRst), lay(N, 14, 78, 84, 20, 6, k6 | kL4)},
      {"IPv6 routing + AH + UDP", b6().ipv6_routing(24).ipv6_ah(24).udp(7, 8).build(),
       ParseResult::kOk, v6(17).ports(7, 8), lay(N, 14, 102, 96, 8, 17, k6 | kL4)},
      {"IPv6 first fragment (offset 0, M) keeps ports",
       b6().ipv6_fragment(0, true).udp(1, 2).payload(8).build(), ParseResult::kOk,
       v6(17).frag(kFragAny).ports(1, 2), lay(N, 14, 62, 64, 16, 17, k6 | kL4 | kFr)},
      {"IPv6 later fragment: nw_proto 44, no L4",
       b6().ipv6_fragment(100, true).ip_proto(17).payload(64).build(), ParseResult::kOk,
       v6(44).frag(kFragAny | kFragLater), lay(N, 14, N, 112, 0, 44, k6 | kFr | kLater)},
      {"IPv6 last fragment after hop-by-hop",
       b6().ipv6_hop_by_hop().ipv6_fragment(3, false).ip_proto(6).payload(8).build(),
       ParseResult::kOk, v6(44).frag(kFragAny | kFragLater),
       lay(N, 14, N, 64, 0, 44, k6 | kFr | kLater)},
      {"IPv6 atomic fragment (offset 0, no M) is not a fragment",
       b6().ipv6_fragment(0, false).udp(1, 2).build(), ParseResult::kOk, v6(17).ports(1, 2),
       lay(N, 14, 62, 56, 8, 17, k6 | kL4)},
      {"IPv6/ESP ends the walk", b6().ipv6_dest_opts().ip_proto(kIpProtoEsp).payload(32).build(),
       ParseResult::kOk, v6(50), lay(N, 14, 62, 80, 32, 50, k6)},
      {"IPv6 No Next Header", b6().build(), ParseResult::kOk, v6(59),
       lay(N, 14, 54, 40, 0, 59, k6)},
      {"IPv6 unknown next header after hop-by-hop", b6().ipv6_hop_by_hop().ip_proto(200).build(),
       ParseResult::kOk, v6(200), lay(N, 14, 62, 48, 0, 200, k6)},
      {"IPv6 with eight extension headers (the maximum)",
       eight_dest_opts(b6(), 8).udp(1, 2).build(), ParseResult::kOk, v6(17).ports(1, 2),
       lay(N, 14, 118, 112, 8, 17, k6 | kL4)},
      {"IPv6 carrying ICMP (1) has no ICMP fields", b6().icmp(8, 0).build(), ParseResult::kOk,
       v6(1), lay(N, 14, 54, 48, 8, 1, k6)},
      {"IPv6/UDP in VLAN with padding", b6().vlan(20, 1).udp(3, 4).pad_to(100).build(),
       ParseResult::kOk, v6(17).tci(0x2014).ports(3, 4), lay(12, 18, 58, 48, 8, 17, k6 | kL4)},

      // ---- ARP ----
      {"ARP request",
       PacketBuilder().eth(kA, kBcast).arp_request("02:00:00:00:00:01", kS4, kD4).build(),
       ParseResult::kOk, K().macs(kA, kBcast).type(kEthTypeArp).arp(1, kA, kS4, MacAddr{}, kD4),
       l2_lay()},
      {"ARP reply with padding",
       PacketBuilder()
           .arp_reply("02:00:00:00:00:02", kD4, "02:00:00:00:00:01", kS4)
           .pad_to(60)
           .build(),
       ParseResult::kOk, K().type(kEthTypeArp).arp(2, kB, kD4, kA, kS4), l2_lay()},
      {"RARP", PacketBuilder().arp(3, kA, 0, kA, 0).ether_type(kEthTypeRarp).build(),
       ParseResult::kOk, K().type(kEthTypeRarp).arp(3, kA, "0.0.0.0", kA, "0.0.0.0"), l2_lay()},
      {"ARP opcode > 255: nw_proto 0",
       PacketBuilder().arp(0x0101, kA, ipv4_addr(kS4), kB, ipv4_addr(kD4)).build(),
       ParseResult::kOk, K().type(kEthTypeArp).arp(0x0101, kA, kS4, kB, kD4), l2_lay()},
      {"ARP in VLAN", PacketBuilder().vlan(5).arp_request("02:00:00:00:00:01", kS4, kD4).build(),
       ParseResult::kOk, K().type(kEthTypeArp).tci(5).arp(1, kA, kS4, MacAddr{}, kD4),
       l2_lay(18, 12)},
  };
}

std::vector<Case> malformed_cases() {
  auto nine = b6();
  for (int i = 0; i < 9; ++i) nine.ipv6_dest_opts();
  const auto arp = PacketBuilder().arp_request("02:00:00:00:00:01", kS4, kD4).build();
  const std::vector<uint8_t> hbh_16_claimed = {0, 1, 1, 4, 0, 0, 0, 0};  // says 16 bytes
  return {
      // ---- drops ----
      {"empty frame", {}, ParseResult::kRunt, K::none(), kDropLayout},
      {"13-byte frame", b4().udp(1, 2).truncate(13).build(), ParseResult::kRunt, K::none(),
       kDropLayout},
      {"VLAN TPID without a tag", b4().vlan(5).udp(1, 2).truncate(14).build(),
       ParseResult::kVlanTruncated, K(), kDropLayout},
      {"VLAN tag without the inner EtherType", b4().vlan(5).udp(1, 2).truncate(16).build(),
       ParseResult::kVlanTruncated, K(), kDropLayout},
      {"802.1ad tag cut inside the inner EtherType",
       b4().vlan(5, 0, kEthTypeQinQ).udp(1, 2).truncate(17).build(), ParseResult::kVlanTruncated,
       K(), kDropLayout},

      // ---- IPv4 → L2 only ----
      {"IPv4 header cut at 19 bytes", b4().udp(1, 2).truncate(33).build(),
       ParseResult::kIpv4Truncated, K().type(kEthTypeIpv4), l2_lay()},
      {"Ethernet header only, IPv4 type", PacketBuilder().ether_type(kEthTypeIpv4).build(),
       ParseResult::kIpv4Truncated, K().type(kEthTypeIpv4), l2_lay()},
      {"IPv4 IHL 15 with 40 bytes present", b4().ihl(15).ip_proto(6).payload(20).build(),
       ParseResult::kIpv4Truncated, K().type(kEthTypeIpv4), l2_lay()},
      {"IPv4 version 6 in an IPv4 frame", b4().ip_version(6).udp(1, 2).build(),
       ParseResult::kIpv4BadVersion, K().type(kEthTypeIpv4), l2_lay()},
      {"IPv4 IHL 3", b4().ihl(3).udp(1, 2).build(), ParseResult::kIpv4BadIhl,
       K().type(kEthTypeIpv4), l2_lay()},
      {"IPv4 IHL 0 in VLAN", b4().vlan(9).ihl(0).udp(1, 2).build(), ParseResult::kIpv4BadIhl,
       K().type(kEthTypeIpv4).tci(9), l2_lay(18, 12)},
      {"IPv4 total length beyond the frame", b4().total_length(9999).udp(1, 2).build(),
       ParseResult::kIpv4BadTotalLength, K().type(kEthTypeIpv4), l2_lay()},
      {"IPv4 total length below the header length", b4().total_length(19).udp(1, 2).build(),
       ParseResult::kIpv4BadTotalLength, K().type(kEthTypeIpv4), l2_lay()},
      {"IPv4 frame cut inside the payload", b4().udp(1, 2).payload(20).truncate(50).build(),
       ParseResult::kIpv4BadTotalLength, K().type(kEthTypeIpv4), l2_lay()},

      // ---- IPv6 → L2 only ----
      {"IPv6 header cut at 39 bytes", b6().udp(1, 2).truncate(53).build(),
       ParseResult::kIpv6Truncated, K().type(kEthTypeIpv6), l2_lay()},
      {"IPv6 version 4 in an IPv6 frame", b6().ip_version(4).udp(1, 2).build(),
       ParseResult::kIpv6BadVersion, K().type(kEthTypeIpv6), l2_lay()},
      {"IPv6 payload length beyond the frame", b6().payload_length(1000).udp(1, 2).build(),
       ParseResult::kIpv6BadPayloadLength, K().type(kEthTypeIpv6), l2_lay()},

      // ---- IPv6 extension chain → IPv6 header fields only ----
      {"IPv6 hop-by-hop claiming more than the payload",
       b6().ipv6_ext_raw(kIpv6HopByHop, hbh_16_claimed).build(), ParseResult::kIpv6BadExtChain,
       v6_hdr(), lay(N, 14, N, 48, 0, 0, k6)},
      {"IPv6 extension header shorter than 8 bytes",
       b6().ipv6_hop_by_hop().payload_length(4).build(), ParseResult::kIpv6BadExtChain, v6_hdr(),
       lay(N, 14, N, 44, 0, 0, k6)},
      {"IPv6 AH longer than the payload", b6().ipv6_ah(24).udp(1, 2).payload_length(20).build(),
       ParseResult::kIpv6BadExtChain, v6_hdr(), lay(N, 14, N, 60, 0, 0, k6)},
      {"IPv6 first fragment then a truncated header: no nw_frag",
       b6().ipv6_fragment(0, true).ipv6_hop_by_hop(16).payload_length(16).build(),
       ParseResult::kIpv6BadExtChain, v6_hdr(), lay(N, 14, N, 56, 0, 0, k6)},
      {"IPv6 with nine extension headers", nine.udp(1, 2).build(), ParseResult::kIpv6BadExtChain,
       v6_hdr(), lay(N, 14, N, 120, 0, 0, k6)},

      // ---- L4 → L3 fields, no ports ----
      {"TCP header cut at 19 bytes", b4().ip_proto(6).payload(19).build(),
       ParseResult::kL4Truncated, v4(6), lay(N, 14, 34, 39, 19, 6, k4)},
      {"TCP data offset past the end", b4().tcp(1, 2).tcp_data_offset(15).build(),
       ParseResult::kL4Truncated, v4(6), lay(N, 14, 34, 40, 20, 6, k4)},
      {"UDP header cut at 7 bytes", b4().ip_proto(17).payload(7).build(), ParseResult::kL4Truncated,
       v4(17), lay(N, 14, 34, 27, 7, 17, k4)},
      {"UDP cut by the IPv4 total length (frame is longer)",
       b4().udp(1, 2).total_length(24).build(), ParseResult::kL4Truncated, v4(17),
       lay(N, 14, 34, 24, 4, 17, k4)},
      {"SCTP header cut at 11 bytes", b4().ip_proto(132).payload(11).build(),
       ParseResult::kL4Truncated, v4(132), lay(N, 14, 34, 31, 11, 132, k4)},
      {"ICMP header cut at 7 bytes", b4().ip_proto(1).payload(7).build(), ParseResult::kL4Truncated,
       v4(1), lay(N, 14, 34, 27, 7, 1, k4)},
      {"ICMPv6 header cut at 7 bytes", b6().ip_proto(58).payload(7).build(),
       ParseResult::kL4Truncated, v6(58), lay(N, 14, 54, 47, 7, 58, k6)},
      {"IPv6 TCP cut by the payload length", b6().tcp(1, 2).payload_length(10).build(),
       ParseResult::kL4Truncated, v6(6), lay(N, 14, 54, 50, 10, 6, k6)},
      {"IPv6 first fragment with a truncated UDP header",
       b6().ipv6_fragment(0, true).ip_proto(17).payload(4).build(), ParseResult::kL4Truncated,
       v6(17).frag(kFragAny), lay(N, 14, 62, 52, 4, 17, k6 | kFr)},
      {"TCP data offset 4", b4().tcp(1, 2).tcp_data_offset(4).build(), ParseResult::kTcpBadOffset,
       v4(6), lay(N, 14, 34, 40, 20, 6, k4)},
      {"IPv6 TCP data offset 0", b6().tcp(1, 2).tcp_data_offset(0).build(),
       ParseResult::kTcpBadOffset, v6(6), lay(N, 14, 54, 60, 20, 6, k6)},

      // ---- ARP → L2 only ----
      {"ARP cut at 27 bytes",
       PacketBuilder().arp_request("02:00:00:00:00:01", kS4, kD4).truncate(41).build(),
       ParseResult::kArpTruncated, K().type(kEthTypeArp), l2_lay()},
      {"ARP with hardware length 8", patched(arp, 18, {8}), ParseResult::kArpBadFormat,
       K().type(kEthTypeArp), l2_lay()},
      {"ARP with protocol type IPv6", patched(arp, 16, {0x86, 0xdd}), ParseResult::kArpBadFormat,
       K().type(kEthTypeArp), l2_lay()},
      {"ARP with hardware type 6", patched(arp, 14, {0, 6}), ParseResult::kArpBadFormat,
       K().type(kEthTypeArp), l2_lay()},
      {"ARP with protocol length 16", patched(arp, 19, {16}), ParseResult::kArpBadFormat,
       K().type(kEthTypeArp), l2_lay()},
  };
}

}  // namespace

// ---- tests -----------------------------------------------------------------------------

TEST_CASE("result names: one per value, drops are the last two", "[packet_parser]") {
  std::set<std::string_view> names;
  for (size_t i = 0; i < kParseResultCount; ++i) {
    const auto r = static_cast<ParseResult>(i);
    CHECK(!parse_result_name(r).empty());
    names.insert(parse_result_name(r));
    CHECK(parse_is_drop(r) == (r == ParseResult::kRunt || r == ParseResult::kVlanTruncated));
  }
  CHECK(names.size() == kParseResultCount);
  CHECK(parse_result_name(ParseResult::kOk) == "ok");
  CHECK(parse_result_name(static_cast<ParseResult>(kParseResultCount)) == "unknown");
}

TEST_CASE("well-formed packets", "[packet_parser]") {
  run_table(well_formed_cases());
}

TEST_CASE("malformed packets are classified", "[packet_parser]") {
  run_table(malformed_cases());
}

TEST_CASE("every ParseResult is reached by the tables", "[packet_parser]") {
  std::set<ParseResult> seen;
  for (const Case& c : well_formed_cases()) seen.insert(c.result);
  for (const Case& c : malformed_cases()) seen.insert(c.result);
  for (size_t i = 0; i < kParseResultCount; ++i) {
    INFO(parse_result_name(static_cast<ParseResult>(i)));
    CHECK(seen.count(static_cast<ParseResult>(i)) == 1);
  }
}

TEST_CASE("table packets satisfy the invariants", "[packet_parser]") {
  for (const auto& table : {well_formed_cases(), malformed_cases()}) {
    for (const Case& c : table) {
      INFO(c.desc);
      const Parsed p = parse_exact(c.pkt.data(), c.pkt.size());
      CHECK(check_invariants(c.pkt.data(), c.pkt.size(), p) == "");
    }
  }
}

TEST_CASE("every truncation of every table packet is safe", "[packet_parser]") {
  size_t runs = 0;
  for (const auto& table : {well_formed_cases(), malformed_cases()}) {
    for (const Case& c : table) {
      for (size_t n = 0; n <= c.pkt.size(); ++n) {
        const Parsed p = parse_exact(c.pkt.data(), n);
        const std::string err = check_invariants(c.pkt.data(), n, p);
        if (!err.empty()) {
          INFO(c.desc << " cut to " << n << " bytes: " << result_str(p.result) << " "
                      << layout_str(p.layout));
          FAIL(err);
        }
        if (n < 14) REQUIRE(p.result == ParseResult::kRunt);
        if (n == c.pkt.size()) REQUIRE(p.result == c.result);
        ++runs;
      }
    }
  }
  CHECK(runs > 5000);
}

TEST_CASE("randomized fuzzing: no crash, invariants hold", "[packet_parser][fuzz]") {
  std::mt19937_64 rng(0x601d11c5);
  const uint16_t types[] = {kEthTypeIpv4, kEthTypeIpv6, kEthTypeArp, kEthTypeRarp,
                            kEthTypeVlan, kEthTypeQinQ, 0x0040,      0x05dc};
  const uint8_t nexts[] = {0, 43, 44, 60, 51, 6, 17, 132, 58, 1, 50, 59};
  ParseCounters counters;
  std::vector<uint8_t> buf;
  constexpr int kIters = 300000;
  for (int iter = 0; iter < kIters; ++iter) {
    const size_t n = rng() % 4 == 0 ? rng() % 24 : rng() % 200;
    buf.resize(n);
    for (auto& b : buf) b = static_cast<uint8_t>(rng());
    // Steer three in four frames towards the deeper parsers.
    if (n >= 14 && rng() % 4 != 0) {
      size_t ofs = 12;
      auto put = [&](size_t at, uint16_t v) {
        if (at + 1 < n) {
          buf[at] = static_cast<uint8_t>(v >> 8);
          buf[at + 1] = static_cast<uint8_t>(v);
        }
      };
      uint16_t t = types[rng() % std::size(types)];
      put(ofs, t);
      if ((t == kEthTypeVlan || t == kEthTypeQinQ) && rng() % 2) {
        ofs += 4;
        t = types[rng() % 3];
        put(ofs, t);
      }
      const size_t l3 = ofs + 2;
      const size_t avail = n > l3 ? n - l3 : 0;
      if (t == kEthTypeIpv4 && avail > 0) {
        buf[l3] = static_cast<uint8_t>(0x40 | (rng() % 4 ? 5 + rng() % 3 : rng() % 16));
        put(l3 + 2, static_cast<uint16_t>(rng() % 4 ? avail - rng() % 8 : rng()));
        put(l3 + 6, static_cast<uint16_t>(rng() % 2 ? 0 : rng()));
        if (l3 + 9 < n) buf[l3 + 9] = nexts[5 + rng() % 7];
      } else if (t == kEthTypeIpv6 && avail > 0) {
        buf[l3] = static_cast<uint8_t>(rng() % 8 ? 0x60 : rng());
        put(l3 + 4, static_cast<uint16_t>(rng() % 4 ? avail - 40 - rng() % 8 : rng()));
        if (l3 + 6 < n) buf[l3 + 6] = nexts[rng() % std::size(nexts)];
        // Chain a few extension headers with small lengths.
        size_t at = l3 + 40;
        for (int h = 0; h < 10 && at + 8 <= n; ++h) {
          buf[at] = nexts[rng() % std::size(nexts)];
          buf[at + 1] = static_cast<uint8_t>(rng() % 3);
          if (rng() % 2) buf[at + 2] = buf[at + 3] = 0;
          at += 8 * (buf[at + 1] + 1u);
        }
      } else if ((t == kEthTypeArp || t == kEthTypeRarp) && avail >= 6 && rng() % 2) {
        put(l3, 1);
        put(l3 + 2, kEthTypeIpv4);
        buf[l3 + 4] = 6;
        buf[l3 + 5] = 4;
      }
    }
    const Parsed p = parse_exact(buf.data(), n);
    counters.add(p.result);
    const std::string err = check_invariants(buf.data(), n, p);
    if (!err.empty()) {
      INFO("iteration " << iter << " frame " << hex(buf.data(), n) << " -> " << result_str(p.result)
                        << " " << layout_str(p.layout));
      FAIL(err);
    }
  }
  // The steering must reach every result, or the fuzzer is not testing the deep paths.
  for (size_t i = 0; i < kParseResultCount; ++i) {
    INFO(kParseResultNames[i] << " hit " << counters.by_result[i] << " times");
    CHECK(counters.by_result[i] > 0);
  }
  uint64_t total = 0;
  for (uint64_t c : counters.by_result) total += c;
  CHECK(total == kIters);
}

TEST_CASE("mutation fuzzing of table packets", "[packet_parser][fuzz]") {
  std::mt19937_64 rng(1234567);
  std::vector<std::vector<uint8_t>> seeds;
  for (const Case& c : well_formed_cases()) seeds.push_back(c.pkt);
  for (int iter = 0; iter < 100000; ++iter) {
    std::vector<uint8_t> pkt = seeds[rng() % seeds.size()];
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips && !pkt.empty(); ++f) {
      pkt[rng() % pkt.size()] = static_cast<uint8_t>(rng());
    }
    if (rng() % 3 == 0 && !pkt.empty()) pkt.resize(rng() % pkt.size());
    const Parsed p = parse_exact(pkt.data(), pkt.size());
    const std::string err = check_invariants(pkt.data(), pkt.size(), p);
    if (!err.empty()) {
      INFO("iteration " << iter << " frame " << hex(pkt.data(), pkt.size()));
      FAIL(err);
    }
  }
}

TEST_CASE("frames longer than 65535 bytes are parsed by their first 65535", "[packet_parser]") {
  auto pkt = b4().udp(1, 2).payload(100).build();
  pkt.resize(70000, 0);  // e.g. a large trailer
  const Parsed p = parse_exact(pkt.data(), pkt.size());
  CHECK(p.result == ParseResult::kOk);
  CHECK(p.key.tp_dst == hton16(2));
  CHECK(p.layout.l2_pad(static_cast<uint32_t>(pkt.size())) == 70000 - 14 - 128);
}

TEST_CASE("span overload and batch form agree with parse_packet", "[packet_parser]") {
  std::vector<std::vector<uint8_t>> pkts;
  for (const Case& c : well_formed_cases()) pkts.push_back(c.pkt);
  for (const Case& c : malformed_cases()) pkts.push_back(c.pkt);
  pkts.resize(std::min<size_t>(pkts.size(), 96));
  const auto n = static_cast<uint32_t>(pkts.size());

  std::vector<const uint8_t*> data(n);
  std::vector<uint32_t> len(n);
  for (uint32_t i = 0; i < n; ++i) {
    data[i] = pkts[i].data();
    len[i] = static_cast<uint32_t>(pkts[i].size());
  }
  std::vector<FlowKey> keys(n);
  std::vector<PacketLayout> lays(n);
  std::vector<ParseResult> results(n);
  for (auto& k : keys) {
    k = zero_key();
    k.in_port = 7;
    k.recirc_id = 3;
  }
  ParseCounters counters;
  const uint32_t good =
      parse_batch(data.data(), len.data(), n, keys.data(), lays.data(), results.data(), counters);

  uint32_t want_good = 0;
  ParseCounters want_counters;
  for (uint32_t i = 0; i < n; ++i) {
    FlowKey k = zero_key();
    k.in_port = 7;
    k.recirc_id = 3;
    PacketLayout l;
    const ParseResult r = parse_packet(std::span<const uint8_t>(pkts[i]), k, l);
    CHECK(r == results[i]);
    CHECK(k == keys[i]);
    CHECK(layout_str(l) == layout_str(lays[i]));
    want_good += parse_is_drop(r) ? 0 : 1;
    want_counters.add(r);
  }
  CHECK(good == want_good);
  CHECK(good < n);  // the table has drops
  CHECK(counters.by_result == want_counters.by_result);
  CHECK(counters.drops() == n - good);
  CHECK(counters.count(ParseResult::kRunt) == 2);

  // Without counters: the same answer.
  std::vector<ParseResult> results2(n);
  CHECK(parse_batch(data.data(), len.data(), n, keys.data(), lays.data(), results2.data()) == good);
  CHECK(results2 == results);

  ParseCounters sum;
  sum += counters;
  sum += counters;
  CHECK(sum.count(ParseResult::kOk) == 2 * counters.count(ParseResult::kOk));
}

TEST_CASE("the parser never writes the metadata words", "[packet_parser]") {
  FlowKey k;
  std::memset(&k, 0x77, sizeof k);
  PacketLayout l;
  const auto pkt = b4().udp(1, 2).build();
  REQUIRE(parse_packet(pkt.data(), static_cast<uint32_t>(pkt.size()), k, l) == ParseResult::kOk);
  const auto* b = reinterpret_cast<const uint8_t*>(&k);
  for (size_t i = 0; i < kMetaBytes; ++i) REQUIRE(b[i] == 0x77);
  for (size_t i = kTailMeta; i < sizeof k; ++i) REQUIRE(b[i] == 0x77);
  CHECK(k.pad2 == 0);
  CHECK(k.arp_op == 0);
  REQUIRE(parse_packet(nullptr, 0, k, l) == ParseResult::kRunt);
  for (size_t i = 0; i < kMetaBytes; ++i) REQUIRE(b[i] == 0x77);
}

// ---- the builder's text parsers and framing --------------------------------------------

TEST_CASE("MAC and IP text parsers", "[packet_builder]") {
  CHECK(parse_mac("aa:BB:cc:dd:ee:0f") == MacAddr{0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0x0f});
  CHECK(parse_mac("01-02-03-04-05-06") == MacAddr{1, 2, 3, 4, 5, 6});
  for (const char* bad : {"", "aa:bb:cc:dd:ee", "aa:bb:cc:dd:ee:fg",
                          "aa:bb:cc:dd:ee:ff:", "aabbccddeeff", "aa:bb:cc:dd:ee:f"}) {
    INFO(bad);
    CHECK_FALSE(parse_mac(bad).has_value());
  }

  CHECK(parse_ipv4("10.0.0.1") == hton32(0x0a000001));
  CHECK(parse_ipv4("255.255.255.255") == 0xffffffffu);
  CHECK(parse_ipv4("0.0.0.0") == 0u);
  for (const char* bad : {"", "10.0.0", "10.0.0.1.", "10.0.0.256", "10..0.1", "1.2.3.4.5",
                          "a.b.c.d", "1000.0.0.1", " 1.2.3.4"}) {
    INFO(bad);
    CHECK_FALSE(parse_ipv4(bad).has_value());
  }

  struct V6 {
    const char* text;
    std::vector<uint16_t> words;
  };
  const V6 good[] = {
      {"::", {0, 0, 0, 0, 0, 0, 0, 0}},
      {"::1", {0, 0, 0, 0, 0, 0, 0, 1}},
      {"1::", {1, 0, 0, 0, 0, 0, 0, 0}},
      {"fe80::1:2", {0xfe80, 0, 0, 0, 0, 0, 1, 2}},
      {"2001:db8:0:1::2", {0x2001, 0xdb8, 0, 1, 0, 0, 0, 2}},
      {"1:2:3:4:5:6:7:8", {1, 2, 3, 4, 5, 6, 7, 8}},
      {"1:2:3:4:5:6:7::", {1, 2, 3, 4, 5, 6, 7, 0}},
      {"::ffff:10.0.0.1", {0, 0, 0, 0, 0, 0xffff, 0x0a00, 0x0001}},
      {"ABCD::EF01", {0xabcd, 0, 0, 0, 0, 0, 0, 0xef01}},
  };
  for (const V6& v : good) {
    INFO(v.text);
    const auto a = parse_ipv6(v.text);
    REQUIRE(a.has_value());
    for (size_t i = 0; i < 8; ++i) CHECK(((*a)[2 * i] << 8 | (*a)[2 * i + 1]) == v.words[i]);
  }
  for (const char* bad :
       {"", ":", ":::", "1:2:3:4:5:6:7:8:9", "1::2::3", "12345::", "g::", "1:2:3:4:5:6:7",
        ":1::", "1:", "::1.2.3", "1.2.3.4::", "1:2:3:4:5:6:7:1.2.3.4"}) {
    INFO(bad);
    CHECK_FALSE(parse_ipv6(bad).has_value());
  }
}

TEST_CASE("builder framing: lengths, tags and defaults", "[packet_builder]") {
  auto p = PacketBuilder()
               .eth(kA, kB)
               .vlan(10, 3)
               .ipv4(kS4, kD4)
               .ttl(64)
               .udp(1234, 80)
               .payload(18)
               .build();
  REQUIRE(p.size() == 14 + 4 + 20 + 8 + 18);
  CHECK(std::equal(kB.begin(), kB.end(), p.begin()));      // destination first
  CHECK(std::equal(kA.begin(), kA.end(), p.begin() + 6));  // then source
  CHECK((p[12] << 8 | p[13]) == 0x8100);
  CHECK((p[14] << 8 | p[15]) == 0x600a);
  CHECK((p[16] << 8 | p[17]) == 0x0800);
  CHECK((p[18 + 2] << 8 | p[18 + 3]) == 46);  // IPv4 total length
  CHECK(p[18 + 8] == 64);
  CHECK((p[38 + 4] << 8 | p[38 + 5]) == 26);  // UDP length
  CHECK(ipv4_header_checksum_ok(p.data() + 18, 20));

  auto llc = PacketBuilder().llc_snap().ipv4(kS4, kD4).udp(1, 2).pad_to(64).build();
  REQUIRE(llc.size() == 64);
  CHECK((llc[12] << 8 | llc[13]) == 8 + 28);  // 802.3 length excludes the padding

  auto six =
      b6().ipv6_hop_by_hop(16).ipv6_fragment(0, true, 0xabcdef01).udp(1, 2).payload(3).build();
  CHECK((six[18] << 8 | six[19]) == 16 + 8 + 8 + 3);  // payload length
  CHECK(six[20] == kIpv6HopByHop);                    // base next header
  CHECK(six[54] == kIpv6Fragment);                    // hop-by-hop → fragment
  CHECK(six[55] == 1);                                // 16 bytes
  CHECK(six[70] == kIpProtoUdp);                      // fragment → UDP
  CHECK((six[72] << 8 | six[73]) == 1);               // offset 0, M

  auto cut = b4().udp(1, 2).truncate(20).build();
  CHECK(cut.size() == 20);
  auto bad = b4().ihl(3).total_length(9999).ip_checksum(0x1234).ip_version(7).build();
  CHECK(bad[14] == 0x73);
  CHECK((bad[16] << 8 | bad[17]) == 9999);
  CHECK((bad[24] << 8 | bad[25]) == 0x1234);
  CHECK(bad[23] == 253);  // the default protocol without L4
}
