#include "dataplane/set_field.hpp"

#include <linux/openvswitch.h>
#include <netinet/in.h>

#include <cstring>

#include "dataplane/pmd.hpp"
#include "flowtables/bytes.hpp"
#include "flowtables/checksum.hpp"

namespace gl::dp {

namespace {

using flow::kNoOffset;

// dst = (dst & ~mask) | value, byte by byte; returns true if anything changed.
inline bool merge_bytes(uint8_t* dst, const uint8_t* value, const uint8_t* mask, size_t n) {
  bool changed = false;
  for (size_t i = 0; i < n; ++i) {
    uint8_t nv = static_cast<uint8_t>((dst[i] & ~mask[i]) | (value[i] & mask[i]));
    changed |= nv != dst[i];
    dst[i] = nv;
  }
  return changed;
}

using flow::load_raw16;
using flow::load_raw32;
using flow::load_raw64;
using flow::store_raw16;
using flow::store_raw32;

// Where the L4 checksum lives for a protocol, or -1.
inline int l4_csum_offset(uint8_t proto) {
  switch (proto) {
    case IPPROTO_TCP:
      return 16;
    case IPPROTO_UDP:
      return 6;
    case IPPROTO_ICMPV6:
      return 2;
    default:
      return -1;
  }
}

// An address (4 or 16 bytes) covered by the L4 pseudo-header changed from old to new.
void fix_l4_for_address(uint8_t* pkt, const flow::PacketLayout& lay, const uint8_t* old_v,
                        const uint8_t* new_v, size_t n) {
  // A first fragment's L4 checksum covers the whole datagram and the pseudo-header: the
  // incremental update is still right. Later fragments carry no L4 header.
  if (lay.l4_ofs == kNoOffset || (lay.flags & flow::kLayoutLaterFragment)) return;
  int off = l4_csum_offset(lay.l4_proto);
  if (off < 0 || lay.l4_len < off + 2) return;
  uint8_t* c = pkt + lay.l4_ofs + off;
  uint16_t cs = load_raw16(c);
  if (n == 4) {
    uint32_t o = load_raw32(old_v), nv = load_raw32(new_v);
    cs = lay.l4_proto == IPPROTO_UDP ? flow::udp_csum_replace32(cs, o, nv)
                                     : flow::csum_replace32(cs, o, nv);
  } else {
    cs = lay.l4_proto == IPPROTO_UDP ? flow::udp_csum_replace128(cs, old_v, new_v)
                                     : flow::csum_replace128(cs, old_v, new_v);
  }
  store_raw16(c, cs);
}

void set_ipv4(uint8_t* pkt, const flow::PacketLayout& lay, const ovs_key_ipv4& v,
              const ovs_key_ipv4& mk) {
  if (!lay.is_ipv4()) return;
  uint8_t* ip = pkt + lay.l3_ofs;
  uint16_t cs = load_raw16(ip + 10);
  auto addr = [&](int off, uint32_t val, uint32_t mask) {
    if (mask == 0) return;
    uint32_t old = load_raw32(ip + off);
    uint32_t nv = (old & ~mask) | (val & mask);
    if (nv == old) return;
    store_raw32(ip + off, nv);
    cs = flow::csum_replace32(cs, old, nv);
    fix_l4_for_address(pkt, lay, reinterpret_cast<uint8_t*>(&old), reinterpret_cast<uint8_t*>(&nv),
                       4);
  };
  addr(12, v.ipv4_src, mk.ipv4_src);
  addr(16, v.ipv4_dst, mk.ipv4_dst);
  auto byte = [&](int off, uint8_t val, uint8_t mask) {
    if (mask == 0) return;
    uint8_t old = ip[off];
    uint8_t nv = static_cast<uint8_t>((old & ~mask) | (val & mask));
    if (nv == old) return;
    ip[off] = nv;
    cs = flow::csum_replace8(cs, old, nv, (off & 1) == 0);
  };
  byte(1, v.ipv4_tos, mk.ipv4_tos);
  byte(8, v.ipv4_ttl, mk.ipv4_ttl);
  store_raw16(ip + 10, cs);
}

void set_ipv6(uint8_t* pkt, const flow::PacketLayout& lay, const ovs_key_ipv6& v,
              const ovs_key_ipv6& mk) {
  if (!lay.is_ipv6()) return;
  uint8_t* ip = pkt + lay.l3_ofs;
  auto addr = [&](int off, const void* val, const void* mask) {
    uint8_t old[16];
    std::memcpy(old, ip + off, 16);
    if (merge_bytes(ip + off, static_cast<const uint8_t*>(val), static_cast<const uint8_t*>(mask),
                    16))
      fix_l4_for_address(pkt, lay, old, ip + off, 16);
  };
  addr(8, v.ipv6_src, mk.ipv6_src);
  addr(24, v.ipv6_dst, mk.ipv6_dst);
  // First word: version(4) tclass(8) label(20), network order.
  uint32_t w = ntohl(load_raw32(ip));
  uint32_t label_mask = ntohl(mk.ipv6_label) & 0xfffff;
  uint32_t label_val = ntohl(v.ipv6_label) & 0xfffff;
  w = (w & ~label_mask) | (label_val & label_mask);
  uint32_t tc_mask = uint32_t(mk.ipv6_tclass) << 20;
  uint32_t tc_val = uint32_t(v.ipv6_tclass) << 20;
  w = (w & ~tc_mask) | (tc_val & tc_mask);
  store_raw32(ip, htonl(w));
  ip[7] = static_cast<uint8_t>((ip[7] & ~mk.ipv6_hlimit) | (v.ipv6_hlimit & mk.ipv6_hlimit));
}

// Sets the two 16-bit ports of TCP/UDP/SCTP; `csum_off` < 0: SCTP (CRC32-C).
void set_ports(rte_mbuf* m, uint8_t* pkt, const flow::PacketLayout& lay, uint8_t proto,
               uint16_t src, uint16_t dst, uint16_t msrc, uint16_t mdst) {
  if (!lay.has_l4() || lay.l4_proto != proto) return;
  uint8_t* l4 = pkt + lay.l4_ofs;
  bool changed = false;
  auto port = [&](int off, uint16_t val, uint16_t mask) {
    if (mask == 0) return;
    uint16_t old = load_raw16(l4 + off);
    uint16_t nv = static_cast<uint16_t>((old & ~mask) | (val & mask));
    if (nv == old) return;
    store_raw16(l4 + off, nv);
    changed = true;
    if (proto == IPPROTO_TCP) {
      store_raw16(l4 + 16, flow::csum_replace16(load_raw16(l4 + 16), old, nv));
    } else if (proto == IPPROTO_UDP) {
      store_raw16(l4 + 6, flow::udp_csum_replace16(load_raw16(l4 + 6), old, nv));
    }
  };
  port(0, src, msrc);
  port(2, dst, mdst);
  if (changed && proto == IPPROTO_SCTP) {
    uint32_t len = std::min<uint32_t>(lay.l4_len, rte_pktmbuf_data_len(m) - lay.l4_ofs);
    if (len < 12) return;
    store_raw32(l4 + 8, 0);
    store_raw32(l4 + 8, crc32c(l4, len));  // little-endian on the wire, as Linux
  }
}

}  // namespace

uint32_t crc32c(const uint8_t* data, size_t len) {
  uint32_t crc = 0xffffffffu;
  size_t i = 0;
  for (; i + 8 <= len; i += 8)
    crc = static_cast<uint32_t>(__builtin_ia32_crc32di(crc, load_raw64(data + i)));
  for (; i < len; ++i) crc = __builtin_ia32_crc32qi(crc, data[i]);
  return ~crc;
}

void apply_set(rte_mbuf* m, PacketMd& md, flow::PacketLayout& lay, std::span<const uint8_t> attr,
               bool masked) {
  if (attr.size() < 4) return;
  uint16_t nla_len, type;
  std::memcpy(&nla_len, attr.data(), 2);
  std::memcpy(&type, attr.data() + 2, 2);
  const uint8_t* val = attr.data() + 4;
  size_t size = nla_len - 4u;
  if (masked) size /= 2;
  const uint8_t* msk = masked ? val + size : nullptr;
  uint8_t ones[64];
  std::memset(ones, 0xff, sizeof ones);
  if (msk == nullptr) msk = ones;
  uint8_t* pkt = rte_pktmbuf_mtod(m, uint8_t*);

  switch (type) {
    case OVS_KEY_ATTR_ETHERNET: {
      ovs_key_ethernet v, k;
      std::memcpy(&v, val, sizeof v);
      std::memcpy(&k, msk, sizeof k);
      merge_bytes(pkt + 0, v.eth_dst, k.eth_dst, 6);
      merge_bytes(pkt + 6, v.eth_src, k.eth_src, 6);
      break;
    }
    case OVS_KEY_ATTR_IPV4: {
      ovs_key_ipv4 v, k;
      std::memcpy(&v, val, sizeof v);
      std::memcpy(&k, msk, sizeof k);
      if (!masked) k.ipv4_proto = k.ipv4_frag = 0;  // set(ipv4) never changes these
      set_ipv4(pkt, lay, v, k);
      break;
    }
    case OVS_KEY_ATTR_IPV6: {
      ovs_key_ipv6 v, k;
      std::memcpy(&v, val, sizeof v);
      std::memcpy(&k, msk, sizeof k);
      set_ipv6(pkt, lay, v, k);
      break;
    }
    case OVS_KEY_ATTR_TCP:
    case OVS_KEY_ATTR_UDP:
    case OVS_KEY_ATTR_SCTP: {
      uint16_t v[2], k[2];
      std::memcpy(v, val, 4);
      std::memcpy(k, msk, 4);
      uint8_t proto = type == OVS_KEY_ATTR_TCP   ? IPPROTO_TCP
                      : type == OVS_KEY_ATTR_UDP ? IPPROTO_UDP
                                                 : IPPROTO_SCTP;
      set_ports(m, pkt, lay, proto, v[0], v[1], k[0], k[1]);
      break;
    }
    case OVS_KEY_ATTR_SKB_MARK: {
      uint32_t v = load_raw32(val), k = load_raw32(msk);
      md.pkt_mark = (md.pkt_mark & ~k) | (v & k);
      break;
    }
    case OVS_KEY_ATTR_PRIORITY: {
      uint32_t v = load_raw32(val), k = load_raw32(msk);
      md.priority = (md.priority & ~k) | (v & k);
      break;
    }
    default:
      break;  // validation refuses other key attributes
  }
}

bool push_vlan(rte_mbuf* m, flow::PacketLayout& lay, uint16_t tpid, uint16_t tci) {
  if (rte_pktmbuf_data_len(m) < 14) return false;
  uint8_t* p = reinterpret_cast<uint8_t*>(rte_pktmbuf_prepend(m, 4));
  if (p == nullptr) return false;
  std::memmove(p, p + 4, 12);
  store_raw16(p + 12, tpid);
  store_raw16(p + 14, static_cast<uint16_t>(tci & ~htons(0x1000)));
  if (lay.vlan_ofs != kNoOffset) lay.flags |= flow::kLayoutInnerVlan;
  lay.vlan_ofs = 12;
  if (lay.l3_ofs != kNoOffset) lay.l3_ofs += 4;
  if (lay.l4_ofs != kNoOffset) lay.l4_ofs += 4;
  return true;
}

void pop_vlan(rte_mbuf* m, flow::PacketLayout& lay) {
  if (lay.vlan_ofs == kNoOffset || rte_pktmbuf_data_len(m) < 18) return;
  uint8_t* p = rte_pktmbuf_mtod(m, uint8_t*);
  std::memmove(p + 4, p, 12);
  rte_pktmbuf_adj(m, 4);
  if (lay.flags & flow::kLayoutInnerVlan) {
    lay.flags &= static_cast<uint8_t>(~flow::kLayoutInnerVlan);  // the inner tag is outer now
  } else {
    lay.vlan_ofs = kNoOffset;
  }
  if (lay.l3_ofs != kNoOffset) lay.l3_ofs -= 4;
  if (lay.l4_ofs != kNoOffset) lay.l4_ofs -= 4;
}

}  // namespace gl::dp
