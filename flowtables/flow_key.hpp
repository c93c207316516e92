// flow_key.hpp — the flow key every Goldilocks table matches on.
//
// Purpose: one fixed-layout key over the OVS datapath field set (metadata, conntrack,
// Ethernet + one VLAN tag, IPv4/IPv6, ARP, TCP/UDP/SCTP/ICMP/ICMPv6). A mask is a
// FlowKey too: a set bit means "this bit must match". The key is viewed as kWords
// 64-bit words so that masking, hashing and comparing are word loops; the classifier
// only touches the words a mask uses.
//
// Byte order: metadata (in_port, recirc_id, dp_hash, pkt_mark, priority, ct_mark,
// ct_zone, ct_state; the ct_orig_tuple words at the end are network order like packet
// fields) is host order; every packet field (addresses, ports, eth_type,
// vlan_tci, ipv6_label, tcp_flags, arp_op) is network order, exactly as on the wire,
// so the parser copies bytes and set actions write them back without swapping.
// ICMP/ICMPv6 type and code live in tp_src/tp_dst as htons(type)/htons(code), as OVS
// stores them.
//
// Thread-safety: plain data. Complexity: every operation is O(kWords).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace gl::flow {

// A 64-bit word that may alias any other type (the key is read as words).
using AliasU64 = uint64_t __attribute__((may_alias));

// VLAN TCI "present" bit: set in FlowKey::vlan_tci when the packet has an 802.1Q tag
// (the same convention as OVS's struct flow; ODP shows it as the CFI bit).
inline constexpr uint16_t kVlanCfi = 0x1000;

// nw_frag bits.
inline constexpr uint8_t kFragAny = 0x01;    // the packet is a fragment
inline constexpr uint8_t kFragLater = 0x02;  // ... and not the first one

// ct_state bits (the same values as the kernel's OVS_CS_F_*).
inline constexpr uint8_t kCsNew = 0x01;
inline constexpr uint8_t kCsEstablished = 0x02;
inline constexpr uint8_t kCsRelated = 0x04;
inline constexpr uint8_t kCsReplyDir = 0x08;
inline constexpr uint8_t kCsInvalid = 0x10;
inline constexpr uint8_t kCsTracked = 0x20;
inline constexpr uint8_t kCsSrcNat = 0x40;
inline constexpr uint8_t kCsDstNat = 0x80;

struct alignas(8) FlowKey {
  // w0
  uint32_t in_port;
  uint32_t recirc_id;
  // w1
  uint32_t dp_hash;
  uint32_t pkt_mark;  // skb_mark in ODP
  // w2
  uint32_t ct_mark;
  uint16_t ct_zone;
  uint8_t ct_state;
  uint8_t pad0;
  // w3
  uint32_t priority;  // skb_priority in ODP
  uint32_t pad1;
  // w4-w5
  uint8_t ct_label[16];
  // w6
  uint8_t eth_dst[6];
  uint16_t eth_type;  // inner type when a VLAN tag is present; 0x05ff for 802.3 frames
  // w7
  uint8_t eth_src[6];
  uint16_t vlan_tci;  // 0 = untagged; else tag TCI with kVlanCfi set
  // w8 (IPv4 addresses, also ARP spa/tpa)
  uint32_t ipv4_src;
  uint32_t ipv4_dst;
  // w9-w12
  uint8_t ipv6_src[16];
  uint8_t ipv6_dst[16];
  // w13
  uint32_t ipv6_label;  // 20 bits, network order
  uint8_t nw_proto;     // IP protocol; low 8 bits of the ARP opcode for ARP
  uint8_t nw_tos;       // DSCP + ECN (IPv4 TOS / IPv6 traffic class)
  uint8_t nw_ttl;       // IPv4 TTL / IPv6 hop limit
  uint8_t nw_frag;      // kFragAny | kFragLater
  // w14
  uint16_t tp_src;  // L4 source port, or htons(ICMP type)
  uint16_t tp_dst;  // L4 destination port, or htons(ICMP code)
  uint16_t tcp_flags;
  uint16_t pad2;
  // w15
  uint8_t arp_sha[6];
  uint16_t arp_op;
  // w16
  uint8_t arp_tha[6];
  uint16_t pad3;
  // w17-w22: ct_orig_tuple, metadata like words 0..5: the original direction's tuple of
  // the connection ct() found (OVS's ct_nw_src .. ct_tp_dst; network order; ICMP:
  // ct_tp_src/dst = htons(type)/htons(code)); zero when not tracked.
  uint32_t ct_nw_src;
  uint32_t ct_nw_dst;
  uint8_t ct_ipv6_src[16];
  uint8_t ct_ipv6_dst[16];
  uint16_t ct_tp_src;
  uint16_t ct_tp_dst;
  uint8_t ct_nw_proto;
  uint8_t pad4[3];

  static constexpr size_t kWords = 23;

  const AliasU64* words() const { return reinterpret_cast<const AliasU64*>(this); }
  AliasU64* words() { return reinterpret_cast<AliasU64*>(this); }

  friend bool operator==(const FlowKey& a, const FlowKey& b) {
    return std::memcmp(&a, &b, sizeof(FlowKey)) == 0;
  }
};

static_assert(sizeof(FlowKey) == FlowKey::kWords * 8, "FlowKey must be whole words");
static_assert(std::is_trivially_copyable_v<FlowKey>);
static_assert(std::is_standard_layout_v<FlowKey>);

// The word index of a field, for code that builds masks or subtable word lists.
#define GL_FLOW_WORD(field) (offsetof(::gl::flow::FlowKey, field) / 8)

using FlowMask = FlowKey;

// A key and the mask it is matched with. The key is always stored masked.
struct FlowMatch {
  FlowKey key;
  FlowMask mask;
};

inline FlowKey zero_key() {
  FlowKey k;
  std::memset(&k, 0, sizeof k);
  return k;
}

// An exact-match mask: every bit of every field that a packet can carry.
// (Padding stays zero so that it never influences a match.)
FlowMask exact_mask();

// out = key & mask, word by word.
inline void apply_mask(const FlowKey& key, const FlowMask& mask, FlowKey& out) {
  const AliasU64* k = key.words();
  const AliasU64* m = mask.words();
  AliasU64* o = out.words();
  for (size_t i = 0; i < FlowKey::kWords; ++i) o[i] = k[i] & m[i];
}

// True when (pkt & mask) == masked_key.
inline bool key_matches(const FlowKey& pkt, const FlowKey& masked_key, const FlowMask& mask) {
  const AliasU64* p = pkt.words();
  const AliasU64* k = masked_key.words();
  const AliasU64* m = mask.words();
  uint64_t diff = 0;
  for (size_t i = 0; i < FlowKey::kWords; ++i) diff |= (p[i] & m[i]) ^ k[i];
  return diff == 0;
}

// Bitmap (bit i = word i) of the words a mask uses.
inline uint32_t mask_word_map(const FlowMask& mask) {
  uint32_t map = 0;
  const AliasU64* m = mask.words();
  for (size_t i = 0; i < FlowKey::kWords; ++i)
    if (m[i] != 0) map |= 1u << i;
  return map;
}

// 32-bit hash step and finaliser (CRC32-C where SSE4.2 exists; all builds here have it).
inline uint32_t hash_add64(uint32_t h, uint64_t v) {
#if defined(__SSE4_2__)
  return static_cast<uint32_t>(__builtin_ia32_crc32di(h, v));
#else
  v ^= v >> 33;
  v *= 0xff51afd7ed558ccdULL;
  v ^= v >> 33;
  return static_cast<uint32_t>(v) ^ (h * 0x9e3779b1u) ^ static_cast<uint32_t>(v >> 32);
#endif
}

inline uint32_t hash_finish(uint32_t h) {
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}

// True when (pkt & mask) == masked_key on the words in `word_map` (mask_word_map(mask)):
// the same answer as key_matches(), touching only the words the mask uses.
inline bool key_matches_words(const FlowKey& pkt, const FlowKey& masked_key, const FlowMask& mask,
                              uint32_t word_map) {
  const AliasU64* p = pkt.words();
  const AliasU64* k = masked_key.words();
  const AliasU64* m = mask.words();
  uint64_t diff = 0;
  for (; word_map != 0; word_map &= word_map - 1) {
    const unsigned i = static_cast<unsigned>(__builtin_ctz(word_map));
    diff |= (p[i] & m[i]) ^ k[i];
  }
  return diff == 0;
}

// The same on an explicit list of word indices (ClsRule::words): independent loads.
inline bool key_matches_list(const FlowKey& pkt, const FlowKey& masked_key, const FlowMask& mask,
                             const uint8_t* idx, unsigned n) {
  const AliasU64* p = pkt.words();
  const AliasU64* k = masked_key.words();
  const AliasU64* m = mask.words();
  uint64_t diff = 0;
  for (unsigned j = 0; j < n; ++j) {
    const unsigned i = idx[j];
    diff |= (p[i] & m[i]) ^ k[i];
  }
  return diff == 0;
}

// Hash of a packet's microflow for the exact-match cache: the words that tell
// microflows apart in practice (in_port + recirc_id, dp_hash + mark, ct state, L2, IPv4,
// IP fields, L4; IPv6 addresses only for IPv6), folded in pairs (one word rotated, so
// that equal fields in the two do not cancel) before each CRC step: 4 steps for IPv4.
// The fold is linear, like CRC: keys differing in two fields of one pair at matching
// bits collide (in_port 2 + pkt_mark 0x200 and in_port 3). A collision only costs a
// cache miss, because EMC hits are verified against the megaflow (and, in the PMD's
// recent-miss filter, a first miss taken for a repeat); a multiplying fold had none of
// these and cost ~2 cycles per packet more (0.85 ns a hash).
inline uint64_t rotl64(uint64_t x, unsigned r) {
  return (x << r) | (x >> (64 - r));
}
inline uint32_t hash_microflow(const FlowKey& key) {
  const AliasU64* w = key.words();
  uint32_t a = hash_add64(0, w[0] ^ rotl64(w[1], 23) ^ rotl64(w[2], 41));
  uint32_t b = hash_add64(0x5bd1e995u, w[8] ^ rotl64(w[13], 29));
  a = hash_add64(a, w[6] ^ rotl64(w[7], 19));
  b = hash_add64(b, w[14]);
  if (key.eth_type == 0xdd86) {  // htons(0x86dd): IPv6
    a = hash_add64(a, w[9] ^ rotl64(w[11], 31));
    b = hash_add64(b, w[10] ^ rotl64(w[12], 31));
  }
  return hash_finish(a ^ (b * 0x27d4eb2du));
}

// Hash of the whole key.
inline uint32_t hash_key(const FlowKey& key, uint32_t basis = 0) {
  const AliasU64* w = key.words();
  uint32_t a = basis, b = basis ^ 0x5bd1e995u;
  size_t i = 0;
#pragma GCC unroll 8
  for (; i + 1 < FlowKey::kWords; i += 2) {
    a = hash_add64(a, w[i]);
    b = hash_add64(b, w[i + 1]);
  }
  for (; i < FlowKey::kWords; ++i) a = hash_add64(a, w[i]);
  return hash_finish(a ^ (b * 0x27d4eb2du));
}

}  // namespace gl::flow
