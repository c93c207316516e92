// nat.cpp — the tracker's NAT: choosing a new connection's translated tuple, and rewriting
// packets of NAT'd connections in both directions (ICMP errors: the quoted packet too).
// Semantics are OVS userspace conntrack's (lib/conntrack.c nat_get_unique_tuple,
// nat_packet, nat_inner_packet); see DESIGN.md "NAT".
#include <cstdint>
#include <cstring>

#include "dataplane/conntrack/conntrack.hpp"
#include "flowtables/checksum.hpp"

namespace gl::ct {

namespace {

bool all_zero(const uint32_t* a, int n) {
  for (int i = 0; i < n; ++i)
    if (a[i] != 0) return false;
  return true;
}

// The address `off` places after `min` (IPv4: one word; IPv6: added to the low 32 bits,
// as OVS caps IPv6 ranges at 2^32 - 1 addresses).
void addr_add(const uint32_t* min, uint8_t family, uint32_t off, uint32_t* out) {
  std::memcpy(out, min, 16);
  const int w = family == 4 ? 0 : 3;
  out[w] = flow::hton32(flow::ntoh32(min[w]) + off);
}

uint32_t addr_span(const uint32_t* min, const uint32_t* max, uint8_t family) {
  if (family == 4) return flow::ntoh32(max[0]) - flow::ntoh32(min[0]);
  if (std::memcmp(min, max, 12) != 0) return UINT32_MAX - 1;
  return flow::ntoh32(max[3]) - flow::ntoh32(min[3]);
}

// OVS's source-port classes: a translated port stays in the class of the original.
void port_class(uint16_t port, uint16_t& lo, uint16_t& hi) {
  if (port < 512) {
    lo = 1, hi = 511;
  } else if (port < 1024) {
    lo = 600, hi = 1023;
  } else {
    lo = 1024, hi = 65535;
  }
}

// Rewrites one side (source or destination) of the packet at l3 (IPv4/IPv6 header) / l4
// (l4_len bytes; fewer than a full header for a quoted packet) to addr and, for TCP/UDP,
// port (network order), fixing checksums incrementally: the IPv4 header's, and the
// TCP/UDP/ICMPv6 checksum where the pseudo header or the port feeds it and the field is
// present. Returns whether anything changed.
bool rewrite(uint8_t* l3, uint8_t family, uint8_t proto, uint8_t* l4, uint32_t l4_len,
             bool src_side, const uint32_t* addr, uint16_t port) {
  bool changed = false;
  uint8_t* csum = nullptr;
  bool udp = false;
  if (l4 != nullptr) {
    if (proto == flow::kIpProtoTcp && l4_len >= 18) {
      csum = l4 + 16;
    } else if (proto == flow::kIpProtoUdp && l4_len >= 8) {
      csum = l4 + 6;
      udp = true;
    } else if (proto == flow::kIpProtoIcmpv6 && l4_len >= 4) {
      csum = l4 + 2;
    }
  }
  uint16_t c = 0;
  if (csum != nullptr) std::memcpy(&c, csum, 2);
  if (udp && c == 0) csum = nullptr;  // no UDP checksum (IPv4): stays none
  if (family == 4) {
    uint8_t* a = l3 + (src_side ? 12 : 16);
    uint32_t have;
    std::memcpy(&have, a, 4);
    if (have != addr[0]) {
      uint16_t ipc;
      std::memcpy(&ipc, l3 + 10, 2);
      ipc = flow::csum_replace32(ipc, have, addr[0]);
      std::memcpy(l3 + 10, &ipc, 2);
      if (csum != nullptr) c = flow::csum_replace32(c, have, addr[0]);
      std::memcpy(a, &addr[0], 4);
      changed = true;
    }
  } else {
    uint8_t* a = l3 + (src_side ? 8 : 24);
    const uint8_t* want = reinterpret_cast<const uint8_t*>(addr);
    if (std::memcmp(a, want, 16) != 0) {
      if (csum != nullptr) c = flow::csum_replace128(c, a, want);
      std::memcpy(a, want, 16);
      changed = true;
    }
  }
  if (l4 != nullptr && (proto == flow::kIpProtoTcp || proto == flow::kIpProtoUdp) && l4_len >= 4) {
    uint8_t* pp = l4 + (src_side ? 0 : 2);
    uint16_t have;
    std::memcpy(&have, pp, 2);
    if (have != port) {
      if (csum != nullptr) c = flow::csum_replace16(c, have, port);
      std::memcpy(pp, &port, 2);
      changed = true;
    }
  }
  if (csum != nullptr && changed) {
    if (udp) c = flow::udp_csum_fixup(c);
    std::memcpy(csum, &c, 2);
  }
  return changed;
}

// What NAT does to a packet of direction `reply` of c: which side changes, and to what
// (OVS: the original direction gets the connection's action, the reply its reverse).
struct Change {
  bool src_side;
  const uint32_t* addr;
  uint16_t port;
};
Change change_of(const Conn& c, bool reply) {
  const bool snat = (c.flags_now() & kConnSnat) != 0;
  if (!reply)
    return snat ? Change{true, c.key[1].dst, c.key[1].dport}
                : Change{false, c.key[1].src, c.key[1].sport};
  return snat ? Change{false, c.key[0].src, c.key[0].sport}
              : Change{true, c.key[0].dst, c.key[0].dport};
}

// A hash of an address alone (nat persistent: a client's connections share a choice).
uint32_t addr_hash(const uint32_t* a, uint8_t family) {
  uint32_t h = 0x2545f491u;
  for (int i = 0; i < (family == 4 ? 1 : 4); ++i) h = (h ^ a[i]) * 0x9e3779b1u;
  // murmur3's finaliser: every input bit reaches the low bits that pick the address.
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  return h ^ (h >> 16);
}

// nat random: a new number per connection, from a generator per thread (splitmix64),
// seeded from its own address and the clock on first use.
uint32_t nat_random(uint64_t now_ms) {
  thread_local uint64_t state = 0;
  if (state == 0) state = reinterpret_cast<uintptr_t>(&state) ^ (now_ms << 20) ^ 1;
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return static_cast<uint32_t>(z ^ (z >> 31));
}

}  // namespace

bool Conntrack::nat_select(const Action& a, Conn& c, uint64_t hash, uint64_t now_ms, Counters& cs) {
  const ConnKey& k = c.key[0];
  ConnKey rev = reverse_key(k);
  const bool snat = a.nat_src;
  uint32_t h = static_cast<uint32_t>(hash ^ (hash >> 32)) * 0x9e3779b1u;
  // The address: one from the range (chosen by hash, as OVS), or the packet's own.
  uint32_t addr[4];
  const uint32_t* own = snat ? k.src : k.dst;
  if (a.nat_family == 0 || all_zero(a.ip_min, 4)) {
    std::memcpy(addr, own, 16);
  } else {
    if ((a.nat_family == 4) != (k.family == 4)) return false;  // family mismatch
    const uint32_t span = addr_span(a.ip_min, a.ip_max, a.nat_family);
    const uint32_t ah = a.nat_persistent ? addr_hash(k.src, k.family) : h;
    addr_add(a.ip_min, a.nat_family, span == UINT32_MAX ? ah : ah % (span + 1), addr);
  }
  // SNAT translates the source: the reply's destination; DNAT the destination: the
  // reply's source.
  std::memcpy(snat ? rev.dst : rev.src, addr, 16);
  // A tuple is free when no live connection has it: one that has expired but was not swept
  // yet is removed, as a packet's lookup would (OVS's conn_lookup skips expired ones).
  uint32_t lookups = 0;
  struct Count {  // the lookups, counted once whichever way this returns
    Counters& cs;
    const uint32_t& n;
    ~Count() { cs.add(cs.nat_lookups, n); }
  } count{cs, lookups};
  auto free_tuple = [&](const ConnKey& r) {
    ++lookups;
    bool dir;
    const uint32_t idx = table_.find(r, ConnTable::hash(r), dir);
    if (idx == 0) return true;
    if (table_.conn(idx).expires.load(std::memory_order_relaxed) > now_ms) return false;
    if (table_.remove(idx)) {
      removed(idx);
      cs.add(cs.expired);
    }
    return true;
  };
  if (k.proto != flow::kIpProtoTcp && k.proto != flow::kIpProtoUdp) {
    // One candidate: ICMP identifiers and other protocols are not translated.
    if (!free_tuple(rev)) return false;
    c.key[1] = rev;
    c.flags |= snat ? kConnSnat : kConnDnat;
    return true;
  }
  // Ports. The translated source port lives in rev.dport, the destination in rev.sport.
  // nat random: the starting places (and the search's later ones) are drawn at random.
  if (a.nat_port == kNatPortRandom) h = nat_random(now_ms);
  const uint16_t orig_sport = flow::ntoh16(k.sport), orig_dport = flow::ntoh16(k.dport);
  uint16_t s_lo, s_hi, s_cur;  // candidates for the source port
  uint16_t d_lo = orig_dport, d_hi = orig_dport, d_cur = orig_dport;
  if (snat && a.port_min != 0) {
    s_lo = a.port_min;
    s_hi = a.port_max;
    s_cur = static_cast<uint16_t>(s_lo + h % (uint32_t(s_hi - s_lo) + 1));
  } else {
    port_class(orig_sport, s_lo, s_hi);
    s_cur = orig_sport;
    // SNAT with hash or random does not keep the source port (Linux's
    // NF_NAT_RANGE_PROTO_RANDOM_ALL); a DNAT's source port is only a clash fallback.
    if (snat && a.nat_port != kNatPortDefault)
      s_cur = static_cast<uint16_t>(s_lo + h % (uint32_t(s_hi - s_lo) + 1));
  }
  if (!snat && a.port_min != 0) {
    d_lo = a.port_min;
    d_hi = a.port_max;
    d_cur = static_cast<uint16_t>(d_lo + h % (uint32_t(d_hi - d_lo) + 1));
  }
  // Tries up to `n` ports of [lo, hi] from `cur` on (wrapping), the other port fixed.
  auto try_ports = [&](bool src_port, uint16_t lo, uint16_t hi, uint16_t cur, uint32_t n) -> bool {
    const uint32_t range = uint32_t(hi - lo) + 1;
    uint32_t p = cur;
    for (uint32_t i = 0; i < std::min(n, range); ++i) {
      if (p < lo || p > hi) p = lo;
      const uint16_t be = flow::hton16(static_cast<uint16_t>(p));
      (src_port ? rev.dport : rev.sport) = be;
      if (free_tuple(rev)) return true;
      ++p;
    }
    return false;
  };
  // As OVS: up to 128 ports from the preferred one, then, when that did not cover the
  // range, shorter runs from random places (64, 32, 16, 8): the search is bounded whatever
  // the range, and a range of up to 128 ports is tried once, port by port.
  auto search = [&](bool src_port, uint16_t lo, uint16_t hi, uint16_t cur) -> bool {
    if (try_ports(src_port, lo, hi, cur, 128)) return true;
    if (uint32_t(hi - lo) + 1 <= 128) return false;
    for (uint32_t n = 64; n >= 8; n /= 2) {
      h = h * 1103515245u + 12345u;
      const uint16_t start = static_cast<uint16_t>(lo + (h >> 8) % (uint32_t(hi - lo) + 1));
      if (try_ports(src_port, lo, hi, start, n)) return true;
    }
    return false;
  };
  rev.dport = flow::hton16(s_cur);
  rev.sport = flow::hton16(d_cur);
  bool ok;
  if (!snat && a.port_min != 0) {  // DNAT with ports: the destination first, then sources
    ok = search(false, d_lo, d_hi, d_cur);
    if (!ok) {
      rev.sport = flow::hton16(d_cur);
      ok = search(true, s_lo, s_hi, s_cur);
    }
  } else {
    ok = search(true, s_lo, s_hi, s_cur);
  }
  if (!ok) return false;
  c.key[1] = rev;
  c.flags |= snat ? kConnSnat : kConnDnat;
  return true;
}

void Conntrack::nat_packet(const Conn& c, bool reply, bool related, Packet& p) {
  const flow::PacketLayout& lay = *p.lay;
  if (lay.l3_ofs == flow::kNoOffset || (c.flags_now() & (kConnSnat | kConnDnat)) == 0) return;
  uint8_t* l3 = p.frame + lay.l3_ofs;
  const uint8_t family = lay.is_ipv4() ? 4 : 6;
  uint8_t* l4 = lay.l4_ofs != flow::kNoOffset ? p.frame + lay.l4_ofs : nullptr;
  const uint32_t l4_len = l4 != nullptr ? lay.l4_len : 0;
  const Change ch = change_of(c, reply);
  // The tuple this direction's packets leave with: as OVS's pat_packet, both ports come
  // from it (a DNAT whose destination ports were all taken moved the source port).
  const ConnKey& to = reply ? c.key[0] : c.key[1];
  if (!related) {
    const bool side =
        rewrite(l3, family, c.key[0].proto, l4, l4_len, ch.src_side, ch.addr, ch.port);
    const bool other =
        ch.src_side ? rewrite(l3, family, c.key[0].proto, l4, l4_len, false, to.src, to.sport)
                    : rewrite(l3, family, c.key[0].proto, l4, l4_len, true, to.dst, to.dport);
    p.rewritten |= side || other;
    return;
  }
  // An ICMP error: the outer address as for any packet of this direction (the sender may
  // be a router: only the translated side changes), and the quoted packet, which
  // travelled the other way, on the other side.
  if (l4 == nullptr || l4_len < 8) return;
  const uint8_t icmp_proto = family == 4 ? flow::kIpProtoIcmp : flow::kIpProtoIcmpv6;
  rewrite(l3, family, icmp_proto, l4, l4_len, ch.src_side, ch.addr, 0);
  uint8_t* in = l4 + 8;
  const uint32_t in_len = l4_len - 8;
  const uint32_t ihl = family == 4 ? (in[0] & 0x0fu) * 4u : 40u;
  if (in_len < ihl) return;
  rewrite(in, family, c.key[0].proto, in + ihl, in_len - ihl, !ch.src_side, ch.addr, ch.port);
  if (ch.src_side)
    rewrite(in, family, c.key[0].proto, in + ihl, in_len - ihl, true, to.src, to.sport);
  else
    rewrite(in, family, c.key[0].proto, in + ihl, in_len - ihl, false, to.dst, to.dport);
  // The ICMP checksum covers the quote: computed again (a rare path).
  l4[2] = l4[3] = 0;
  uint32_t sum = 0;
  if (family == 6) sum = flow::ipv6_pseudo_sum(l3 + 8, l3 + 24, flow::kIpProtoIcmpv6, l4_len);
  const uint16_t cs = flow::csum_finish(flow::csum_partial(l4, l4_len, sum));
  std::memcpy(l4 + 2, &cs, 2);
  p.rewritten = true;
}

}  // namespace gl::ct
