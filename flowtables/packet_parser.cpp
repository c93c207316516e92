// packet_parser.cpp — see packet_parser.hpp. Every read is guarded by a length check
// against `avail`, the bytes left from the current header to the end of the frame (or of
// the IP packet once an IP header has been accepted).
#include "flowtables/packet_parser.hpp"

#include <cstddef>
#include <cstring>

#include "flowtables/bytes.hpp"
#include "flowtables/checksum.hpp"

namespace gl::flow {
namespace {

// Fields in memory order (as FlowKey stores packet fields), and 16-bit fields as
// host-order numbers.
using flow::load_be16;
using flow::load_raw16;
using flow::load_raw32;
using flow::load_raw64;
// Whole key words are assembled from fields below (one store instead of several narrow
// ones): byte i of a word is bits 8i..8i+7.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "key words assembled little-endian");
constexpr uint64_t kLow48 = 0x0000ffffffffffffull;

// The key as bytes (stores that span adjacent fields, e.g. tp_src + tp_dst).
inline uint8_t* key_bytes(FlowKey& key) {
  return reinterpret_cast<uint8_t*>(&key);
}
static_assert(offsetof(FlowKey, tp_dst) == offsetof(FlowKey, tp_src) + 2);

constexpr uint32_t kEthHeaderLen = 14;
constexpr uint32_t kVlanTagLen = 4;
constexpr uint32_t kLlcSnapLen = 8;
constexpr uint32_t kIpv4HeaderLen = 20;
constexpr uint32_t kIpv6HeaderLen = 40;
constexpr uint32_t kArpLen = 28;
constexpr uint32_t kTcpHeaderLen = 20;
constexpr uint32_t kUdpHeaderLen = 8;
constexpr uint32_t kSctpHeaderLen = 12;
constexpr uint32_t kIcmpHeaderLen = 8;

// Parses the upper-layer header at `p` (avail bytes up to the end of the IP packet).
// `icmp_proto` is the ICMP flavour of this IP version (1 for IPv4, 58 for IPv6).
inline ParseResult parse_l4(const uint8_t* p, uint32_t avail, uint8_t proto, uint8_t icmp_proto,
                            FlowKey& key, PacketLayout& layout) {
  if (proto == kIpProtoTcp) {
    if (avail < kTcpHeaderLen) [[unlikely]]
      return ParseResult::kL4Truncated;
    const uint32_t doff = static_cast<uint32_t>(p[12] >> 4) * 4;
    if (doff < kTcpHeaderLen) [[unlikely]]
      return ParseResult::kTcpBadOffset;
    if (doff > avail) [[unlikely]]
      return ParseResult::kL4Truncated;
    std::memcpy(key_bytes(key) + offsetof(FlowKey, tp_src), p, 4);  // tp_src, tp_dst
    key.tcp_flags = load_raw16(p + 12) & hton16(0x0fff);
  } else if (proto == kIpProtoUdp) {
    if (avail < kUdpHeaderLen) [[unlikely]]
      return ParseResult::kL4Truncated;
    std::memcpy(key_bytes(key) + offsetof(FlowKey, tp_src), p, 4);  // tp_src, tp_dst
  } else if (proto == kIpProtoSctp) {
    if (avail < kSctpHeaderLen) [[unlikely]]
      return ParseResult::kL4Truncated;
    key.tp_src = load_raw16(p);
    key.tp_dst = load_raw16(p + 2);
  } else if (proto == icmp_proto) {
    if (avail < kIcmpHeaderLen) [[unlikely]]
      return ParseResult::kL4Truncated;
    key.tp_src = hton16(p[0]);
    key.tp_dst = hton16(p[1]);
  } else {
    return ParseResult::kOk;  // no L4 fields for this protocol (ESP, GRE, ...)
  }
  layout.flags |= kLayoutL4;
  return ParseResult::kOk;
}

inline ParseResult parse_ipv4(const uint8_t* p, uint32_t avail, uint32_t ofs, FlowKey& key,
                              PacketLayout& layout) {
  if (avail < kIpv4HeaderLen) [[unlikely]]
    return ParseResult::kIpv4Truncated;
  const uint8_t ver_ihl = p[0];
  if ((ver_ihl >> 4) != 4) [[unlikely]]
    return ParseResult::kIpv4BadVersion;
  const uint32_t ihl = static_cast<uint32_t>(ver_ihl & 0x0f) * 4;
  if (ihl < kIpv4HeaderLen) [[unlikely]]
    return ParseResult::kIpv4BadIhl;
  if (ihl > avail) [[unlikely]]
    return ParseResult::kIpv4Truncated;
  const uint32_t tot_len = load_be16(p + 2);
  if (tot_len < ihl || tot_len > avail) [[unlikely]]
    return ParseResult::kIpv4BadTotalLength;

  key.words()[GL_FLOW_WORD(ipv4_src)] = load_raw64(p + 12);  // ipv4_src, ipv4_dst
  const uint8_t proto = p[9];
  layout.l3_len = static_cast<uint16_t>(tot_len);
  layout.l4_proto = proto;
  uint8_t flags = kLayoutIpv4;

  // Word 13: ipv6_label (0), nw_proto, nw_tos, nw_ttl, nw_frag.
  static_assert(offsetof(FlowKey, nw_proto) == GL_FLOW_WORD(nw_proto) * 8 + 4 &&
                offsetof(FlowKey, nw_tos) == GL_FLOW_WORD(nw_proto) * 8 + 5 &&
                offsetof(FlowKey, nw_ttl) == GL_FLOW_WORD(nw_proto) * 8 + 6 &&
                offsetof(FlowKey, nw_frag) == GL_FLOW_WORD(nw_proto) * 8 + 7);
  uint64_t w13 = uint64_t{proto} << 32 | uint64_t{p[1]} << 40 | uint64_t{p[8]} << 48;
  const uint16_t frag = load_be16(p + 6);
  if ((frag & 0x3fff) != 0) [[unlikely]] {  // MF set or offset != 0
    flags |= kLayoutFragment;
    if ((frag & 0x1fff) != 0) {
      key.words()[GL_FLOW_WORD(nw_proto)] = w13 | uint64_t{kFragAny | kFragLater} << 56;
      layout.flags = flags | kLayoutLaterFragment;
      return ParseResult::kOk;  // no L4 header in a later fragment
    }
    w13 |= uint64_t{kFragAny} << 56;
  }
  key.words()[GL_FLOW_WORD(nw_proto)] = w13;
  layout.flags = flags;
  layout.l4_ofs = static_cast<uint16_t>(ofs + ihl);
  layout.l4_len = static_cast<uint16_t>(tot_len - ihl);
  return parse_l4(p + ihl, tot_len - ihl, proto, kIpProtoIcmp, key, layout);
}

inline ParseResult parse_ipv6(const uint8_t* p, uint32_t avail, uint32_t ofs, FlowKey& key,
                              PacketLayout& layout) {
  if (avail < kIpv6HeaderLen) [[unlikely]]
    return ParseResult::kIpv6Truncated;
  if ((p[0] >> 4) != 6) [[unlikely]]
    return ParseResult::kIpv6BadVersion;
  const uint32_t plen = load_be16(p + 4);
  if (kIpv6HeaderLen + plen > avail) [[unlikely]]
    return ParseResult::kIpv6BadPayloadLength;

  const uint32_t vtcfl = ntoh32(load_raw32(p));
  key.ipv6_label = hton32(vtcfl & 0x000fffffu);
  key.nw_tos = static_cast<uint8_t>(vtcfl >> 20);
  key.nw_ttl = p[7];
  std::memcpy(key.ipv6_src, p + 8, 16);
  std::memcpy(key.ipv6_dst, p + 24, 16);
  layout.l3_len = static_cast<uint16_t>(kIpv6HeaderLen + plen);
  layout.flags = kLayoutIpv6;

  // Walk the extension headers. q/rem: the current header and the payload bytes left.
  uint8_t nh = p[6];
  const uint8_t* q = p + kIpv6HeaderLen;
  uint32_t rem = plen;
  uint8_t nw_frag = 0;
  for (uint32_t n = 0;; ++n) {
    if (nh != kIpv6HopByHop && nh != kIpv6Routing && nh != kIpv6DestOpts && nh != kIpv6Fragment &&
        nh != kIpProtoAh) [[likely]] {
      break;  // upper layer (or a header we do not walk: ESP, No Next Header, unknown)
    }
    // Every extension header is at least 8 bytes; only its first 8 are read below.
    if (n == kMaxIpv6ExtHeaders || rem < 8) [[unlikely]]
      return ParseResult::kIpv6BadExtChain;
    uint32_t hlen;
    if (nh == kIpv6Fragment) {
      hlen = 8;
      const uint16_t offlg = load_be16(q + 2);
      if (offlg != 0) {
        nw_frag = kFragAny;
        if ((offlg & 0xfff8) != 0) {  // offset != 0: a later fragment, no L4 (as OVS)
          key.nw_proto = kIpv6Fragment;
          key.nw_frag = kFragAny | kFragLater;
          layout.l4_proto = kIpv6Fragment;
          layout.flags |= kLayoutFragment | kLayoutLaterFragment;
          return ParseResult::kOk;
        }
      }
    } else if (nh == kIpProtoAh) {
      hlen = (static_cast<uint32_t>(q[1]) + 2) * 4;
    } else {
      hlen = (static_cast<uint32_t>(q[1]) + 1) * 8;
    }
    if (hlen > rem) [[unlikely]]
      return ParseResult::kIpv6BadExtChain;
    nh = q[0];
    q += hlen;
    rem -= hlen;
  }

  key.nw_proto = nh;
  key.nw_frag = nw_frag;
  if (nw_frag != 0) layout.flags |= kLayoutFragment;
  layout.l4_proto = nh;
  const auto l4_ofs = static_cast<uint32_t>(q - p) + ofs;
  layout.l4_ofs = static_cast<uint16_t>(l4_ofs);
  layout.l4_len = static_cast<uint16_t>(rem);
  return parse_l4(q, rem, nh, kIpProtoIcmpv6, key, layout);
}

inline ParseResult parse_arp(const uint8_t* p, uint32_t avail, FlowKey& key) {
  if (avail < kArpLen) [[unlikely]]
    return ParseResult::kArpTruncated;
  if (load_be16(p) != 1 || load_be16(p + 2) != kEthTypeIpv4 || p[4] != 6 || p[5] != 4)
      [[unlikely]] {
    return ParseResult::kArpBadFormat;
  }
  const uint16_t op = load_be16(p + 6);
  key.arp_op = load_raw16(p + 6);
  key.nw_proto = op <= 0xff ? static_cast<uint8_t>(op) : 0;
  std::memcpy(key.arp_sha, p + 8, 6);
  key.ipv4_src = load_raw32(p + 14);
  std::memcpy(key.arp_tha, p + 18, 6);
  key.ipv4_dst = load_raw32(p + 24);
  return ParseResult::kOk;
}

inline ParseResult parse_one(const uint8_t* data, uint32_t len, FlowKey& key,
                             PacketLayout& layout) {
  // Zero the packet fields; metadata words 0..5 and 17..22 (ct_orig_tuple) stay the
  // caller's. Words 6 and 7 (Ethernet) are written whole below; IPv4 rewrites 8 and 13.
  static_assert(offsetof(FlowKey, eth_dst) == 6 * 8 && offsetof(FlowKey, eth_type) == 6 * 8 + 6 &&
                offsetof(FlowKey, eth_src) == 7 * 8 && offsetof(FlowKey, vlan_tci) == 7 * 8 + 6);
  // Word stores, not memset: GCC emits `rep stos` for this size, whose start-up cost
  // was a third of the parser's time.
  AliasU64* w = key.words();
  constexpr size_t kPacketWordsEnd = offsetof(FlowKey, ct_nw_src) / 8;
  static_assert(kPacketWordsEnd == 17);
#pragma GCC unroll 9
  for (size_t i = 8; i < kPacketWordsEnd; ++i) w[i] = 0;
  layout = PacketLayout{kNoOffset, kNoOffset, kNoOffset, 0, 0, 0, 0};

  if (len > 0xffff) [[unlikely]]
    len = 0xffff;
  if (len < kEthHeaderLen) [[unlikely]] {
    w[6] = w[7] = 0;
    return ParseResult::kRunt;
  }

  const uint64_t eth_dst = load_raw64(data) & kLow48;
  const uint64_t eth_src = load_raw64(data + 6) & kLow48;
  uint64_t tci = 0;  // vlan_tci in memory order
  uint32_t ofs = 12;
  uint16_t type = load_be16(data + 12);
  if (type == kEthTypeVlan || type == kEthTypeQinQ) {
    if (len < kEthHeaderLen + kVlanTagLen) [[unlikely]] {
      w[6] = eth_dst;
      w[7] = eth_src;
      return ParseResult::kVlanTruncated;
    }
    layout.vlan_ofs = 12;
    tci = load_raw16(data + 14) | hton16(kVlanCfi);
    ofs += kVlanTagLen;
    type = load_be16(data + ofs);
    // A second tag is not parsed: eth_type is its TPID and the frame is L2 only.
    if (type == kEthTypeVlan || type == kEthTypeQinQ) layout.flags = kLayoutInnerVlan;
  }
  ofs += 2;
  if (type < kEthTypeMin) [[unlikely]] {
    // 802.3: LLC/SNAP with OUI 0 carries an EtherType; anything else is 0x05ff (OVS).
    const uint8_t* llc = data + ofs;
    if (len - ofs >= kLlcSnapLen && llc[0] == 0xaa && llc[1] == 0xaa && llc[2] == 0x03 &&
        llc[3] == 0 && llc[4] == 0 && llc[5] == 0) {
      ofs += kLlcSnapLen;
      type = load_be16(llc + 6);
      if (type < kEthTypeMin) type = kEthTypeNone;
    } else {
      type = kEthTypeNone;
    }
  }
  w[6] = eth_dst | uint64_t{hton16(type)} << 48;
  w[7] = eth_src | tci << 48;
  layout.l3_ofs = static_cast<uint16_t>(ofs);

  const uint8_t* l3 = data + ofs;
  const uint32_t avail = len - ofs;
  switch (type) {
    case kEthTypeIpv4:
      return parse_ipv4(l3, avail, ofs, key, layout);
    case kEthTypeIpv6:
      return parse_ipv6(l3, avail, ofs, key, layout);
    case kEthTypeArp:
    case kEthTypeRarp:
      return parse_arp(l3, avail, key);
    default:
      return ParseResult::kOk;
  }
}

}  // namespace

ParseResult parse_packet(const uint8_t* data, uint32_t len, FlowKey& key, PacketLayout& layout) {
  return parse_one(data, len, key, layout);
}

uint32_t parse_batch(const uint8_t* const* data, const uint32_t* len, uint32_t n, FlowKey* keys,
                     PacketLayout* layouts, ParseResult* results) {
  uint32_t good = 0;
  for (uint32_t i = 0; i < n; ++i) {
    if (i + 2 < n) __builtin_prefetch(data[i + 2]);
    const ParseResult r = parse_one(data[i], len[i], keys[i], layouts[i]);
    results[i] = r;
    good += parse_is_drop(r) ? 0u : 1u;
  }
  return good;
}

uint32_t parse_batch(const uint8_t* const* data, const uint32_t* len, uint32_t n, FlowKey* keys,
                     PacketLayout* layouts, ParseResult* results, ParseCounters& counters) {
  const uint32_t good = parse_batch(data, len, n, keys, layouts, results);
  counters.add(results, n);
  return good;
}

}  // namespace gl::flow
