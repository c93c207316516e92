#include "dataplane/conntrack/conntrack.hpp"

#include <algorithm>
#include <cstring>

#include "flowtables/bytes.hpp"
#include "flowtables/checksum.hpp"

namespace gl::ct {

namespace {

constexpr uint16_t kEthIpv4Be = 0x0008;  // htons(0x0800) as read little-endian
constexpr uint16_t kEthIpv6Be = 0xdd86;

// ICMP types as OVS's tracker knows them: queries that open a connection, their replies,
// and errors that relate to one. Any other type (router advertisements, ND, MLD, address
// mask, ...) cannot be tracked: +inv.
bool icmp_is_request(uint8_t family, uint8_t t) {
  return family == 4 ? (t == 8 || t == 13 || t == 15) : t == 128;
}
bool icmp_is_reply(uint8_t family, uint8_t t) {
  return family == 4 ? (t == 0 || t == 14 || t == 16) : t == 129;
}
bool icmp_is_error(uint8_t family, uint8_t t) {
  return family == 4 ? (t == 3 || t == 4 || t == 5 || t == 11 || t == 12) : (t >= 1 && t <= 4);
}

Timeout other_timeout(OtherState s, bool icmp) {
  if (icmp) return s == OtherState::kBidir ? Timeout::kIcmpReply : Timeout::kIcmpFirst;
  switch (s) {
    case OtherState::kFirst:
      return Timeout::kOtherFirst;
    case OtherState::kMultiple:
      return Timeout::kOtherMultiple;
    default:
      return Timeout::kOtherBidir;
  }
}

Timeout tcp_class(TcpTimeout t) {
  return static_cast<Timeout>(static_cast<uint8_t>(t));  // the first six classes
}
static_assert(static_cast<int>(Timeout::kTcpClose) == static_cast<int>(TcpTimeout::kClosed));

// The key's ports from an L4 header of proto at l4 (len bytes of IP payload). TCP and UDP:
// the ports, never 0; ICMP queries: sport = identifier, dport = type << 8 | code (code 0).
// Every other protocol is tracked by addresses alone, as OVS does (SCTP too).
Invalid l4_key(uint8_t proto, uint8_t family, const uint8_t* l4, uint32_t len, bool quoted,
               ConnKey& k) {
  switch (proto) {
    case flow::kIpProtoTcp:
    case flow::kIpProtoUdp:
      // A quoted packet needs only its first 8 bytes (ICMPv6 quotes the whole TCP header).
      if (len < (proto == flow::kIpProtoTcp && (!quoted || family == 6) ? 20u : 8u))
        return Invalid::kTruncated;
      k.sport = flow::load_raw16(l4);
      k.dport = flow::load_raw16(l4 + 2);
      if (k.sport == 0 || k.dport == 0) return Invalid::kPortZero;
      return Invalid::kCount;
    case flow::kIpProtoIcmp:
    case flow::kIpProtoIcmpv6:
      if (len < 8 || (proto == flow::kIpProtoIcmp) != (family == 4)) return Invalid::kTruncated;
      if (!(icmp_is_request(family, l4[0]) || icmp_is_reply(family, l4[0])) || l4[1] != 0)
        return Invalid::kIcmpType;
      k.sport = flow::load_raw16(l4 + 4);
      k.dport = static_cast<uint16_t>(l4[0] << 8);
      return Invalid::kCount;
    default:
      return Invalid::kCount;
  }
}

// The IPv4 header checksum of a 20-byte header (no options): two 64-bit words and a
// 32-bit one summed with end-around carries, then folded. (The generic checksum loop was
// 30% of extract() for 64-byte packets; a loop of five 32-bit loads, which the compiler
// kept as a loop, still cost ~14 cycles a packet in gl-bench-conntrack --established.)
inline bool ipv4_header20_ok(const uint8_t* ip) {
  uint64_t a, b;
  std::memcpy(&a, ip, 8);
  std::memcpy(&b, ip + 8, 8);
  const uint64_t c = flow::load_raw32(ip + 16);
  uint64_t s = a + b;
  s += s < b;  // one's complement: the carry out comes back in
  s += c;
  s += s < c;
  s = (s & 0xffffffffu) + (s >> 32);
  s = (s & 0xffffffffu) + (s >> 32);
  return flow::csum_fold(static_cast<uint32_t>(s)) == 0xffff;
}

// The IPv4 header checksum (the header's length from its IHL, within len).
inline bool ipv4_header_ok(const uint8_t* ip, uint32_t len) {
  return (ip[0] & 0x0f) == 5 ? ipv4_header20_ok(ip) : flow::ipv4_header_checksum_ok(ip, len);
}

}  // namespace

struct Conntrack::Extracted {
  ConnKey key;
  uint64_t hash;
  uint32_t cand;  // ConnTable::candidate() of hash (0: none)
  TcpSegment tcp;
  uint32_t bytes;
  bool related;  // an ICMP error: key is the reverse of the packet it quotes
  bool icmp;     // an ICMP/ICMPv6 query
};

Conntrack::Conntrack(const Options& o)
    : opts_(o),
      table_(o.capacity, std::max(1u, o.contexts), o.populate_index),
      ctr_(std::make_unique<Counters[]>(std::max(1u, o.contexts))),
      max_conns_(table_.capacity()),
      zone_limit_(std::make_unique<std::atomic<uint32_t>[]>(65536)),
      zone_count_(std::make_unique<std::atomic<uint32_t>[]>(65536)) {
  policy_ms_ = std::make_unique<std::atomic<uint32_t>[]>(kMaxTimeoutPolicies * kTimeoutCount);
  policy_set_ = std::make_unique<std::atomic<bool>[]>(kMaxTimeoutPolicies);
  for (uint32_t p = 0; p < kMaxTimeoutPolicies; ++p) {
    policy_set_[p].store(p == 0, std::memory_order_relaxed);
    for (size_t i = 0; i < kTimeoutCount; ++i)
      policy_ms_[p * kTimeoutCount + i].store(kDefaultTimeoutSec[i] * 1000,
                                              std::memory_order_relaxed);
  }
  for (uint32_t z = 0; z < 65536; ++z) {
    zone_limit_[z].store(kUseDefault, std::memory_order_relaxed);
    zone_count_[z].store(0, std::memory_order_relaxed);
  }
}

// ---- packet path ----------------------------------------------------------------------

[[gnu::always_inline]] inline bool Conntrack::check_l4(Extracted& x, const uint8_t* l4,
                                                       uint32_t l4_len, uint8_t csum_good,
                                                       Invalid& why) const {
  const ConnKey& key = x.key;
  const uint8_t proto = key.proto;
  const uint8_t family = key.family;
  if (proto == flow::kIpProtoTcp) {
    if (!tcp_parse(l4, l4_len, x.tcp)) {
      why = Invalid::kTruncated;
      return false;
    }
  } else if (proto == flow::kIpProtoUdp) {
    const uint32_t ulen = l4_len >= 8 ? static_cast<uint32_t>(l4[4] << 8 | l4[5]) : 0;
    if (ulen < 8 || ulen > l4_len) {
      why = Invalid::kTruncated;
      return false;
    }
  } else if (l4_len < 8) {
    why = Invalid::kTruncated;
    return false;
  }
  // L4 checksums (OVS's tracker checks them on every packet it looks up: a corrupt
  // segment must not move the state). UDP over IPv4 may carry none.
  if (opts_.check_l4_checksum && (csum_good & kCsumGoodL4) == 0) {
    uint32_t sum = 0;
    if (proto != flow::kIpProtoIcmp) {
      sum =
          family == 4
              ? flow::ipv4_pseudo_sum(key.src[0], key.dst[0], proto, static_cast<uint16_t>(l4_len))
              : flow::ipv6_pseudo_sum(reinterpret_cast<const uint8_t*>(key.src),
                                      reinterpret_cast<const uint8_t*>(key.dst), proto, l4_len);
    }
    const bool no_udp_sum =
        proto == flow::kIpProtoUdp && family == 4 && flow::load_raw16(l4 + 6) == 0;
    if (!no_udp_sum && flow::csum_fold(flow::csum_partial(l4, l4_len, sum)) != 0xffff) {
      why = Invalid::kL4Checksum;
      return false;
    }
  }
  return true;
}

bool Conntrack::extract(const Packet& p, Extracted& x, Invalid& why) const {
  const flow::FlowKey& k = *p.key;
  const flow::PacketLayout& lay = *p.lay;
  ConnKey& key = x.key;
  std::memset(&key, 0, sizeof key);
  x.related = false;
  x.icmp = false;
  uint8_t family;
  if (k.eth_type == kEthIpv4Be && lay.is_ipv4()) {
    family = 4;
  } else if (k.eth_type == kEthIpv6Be && lay.is_ipv6()) {
    family = 6;
  } else {
    why = k.eth_type == kEthIpv4Be || k.eth_type == kEthIpv6Be ? Invalid::kTruncated
                                                               : Invalid::kNotIp;
    return false;
  }
  if (k.nw_frag & flow::kFragAny) {
    why = Invalid::kFragment;
    return false;
  }
  const uint8_t* l3 = p.frame + lay.l3_ofs;
  x.bytes = lay.l3_len;
  key.family = family;
  key.proto = k.nw_proto;
  if (family == 4) {
    if ((p.csum_good & kCsumGoodL3) == 0 && !ipv4_header_ok(l3, lay.l3_len)) {
      why = Invalid::kL3Checksum;
      return false;
    }
    key.src[0] = k.ipv4_src;
    key.dst[0] = k.ipv4_dst;
  } else {
    std::memcpy(key.src, k.ipv6_src, 16);
    std::memcpy(key.dst, k.ipv6_dst, 16);
  }
  const uint8_t proto = k.nw_proto;
  if (proto != flow::kIpProtoTcp && proto != flow::kIpProtoUdp && proto != flow::kIpProtoIcmp &&
      proto != flow::kIpProtoIcmpv6)
    return true;  // other IP protocols: addresses and protocol only
  if (lay.l4_ofs == flow::kNoOffset || lay.l4_proto != proto) {
    why = Invalid::kTruncated;
    return false;
  }
  const uint8_t* l4 = p.frame + lay.l4_ofs;
  const uint32_t l4_len = lay.l4_len;
  if (!check_l4(x, l4, l4_len, p.csum_good, why)) return false;
  if (proto == flow::kIpProtoTcp || proto == flow::kIpProtoUdp) {
    why = l4_key(proto, family, l4, l4_len, false, key);
    return why == Invalid::kCount;
  }

  // ICMP: queries are connections of their own; errors relate to the connection of the
  // packet they quote; anything else cannot be tracked.
  if (!icmp_is_error(family, l4[0])) {
    why = l4_key(proto, family, l4, l4_len, false, key);
    x.icmp = why == Invalid::kCount;
    return x.icmp;
  }
  // The quoted packet: an IP header whose source must be this packet's destination (it
  // was sent by the host the error goes back to) and the start of its L4 header.
  const uint8_t* in = l4 + 8;
  const uint32_t in_len = l4_len - 8;
  ConnKey q{};
  q.family = family;
  const uint8_t* ql4;
  uint32_t ql4_len;
  why = Invalid::kIcmpQuote;
  if (family == 4) {
    if (in_len < 20 || (in[0] >> 4) != 4) return false;
    const uint32_t ihl = (in[0] & 0x0fu) * 4u;
    const uint16_t frag = static_cast<uint16_t>(in[6] << 8 | in[7]);
    if (ihl < 20 || in_len < ihl || (frag & 0x3fff) != 0) return false;  // MF or offset
    std::memcpy(&q.src[0], in + 12, 4);
    std::memcpy(&q.dst[0], in + 16, 4);
    q.proto = in[9];
    ql4 = in + ihl;
    ql4_len = in_len - ihl;
  } else {
    if (in_len < 40 || (in[0] >> 4) != 6) return false;
    std::memcpy(q.src, in + 8, 16);
    std::memcpy(q.dst, in + 24, 16);
    // Walk the quoted packet's extension headers (a fragment is never related).
    uint8_t nh = in[6];
    uint32_t off = 40;
    for (uint32_t n = 0; n < flow::kMaxIpv6ExtHeaders; ++n) {
      if (nh != flow::kIpv6HopByHop && nh != flow::kIpv6Routing && nh != flow::kIpv6DestOpts &&
          nh != flow::kIpProtoAh)
        break;
      if (off + 8 > in_len) return false;
      const uint32_t len =
          nh == flow::kIpProtoAh ? (in[off + 1] + 2u) * 4u : (in[off + 1] + 1u) * 8u;
      nh = in[off];
      off += len;
    }
    if (nh == flow::kIpv6Fragment || off > in_len) return false;
    q.proto = nh;
    ql4 = in + off;
    ql4_len = in_len - off;
  }
  if (std::memcmp(q.src, key.dst, 16) != 0) return false;
  // An error about an error is never related (l4_key refuses non-query ICMP types).
  if (l4_key(q.proto, family, ql4, ql4_len, true, q) != Invalid::kCount) return false;
  key = reverse_key(q);
  x.related = true;
  return true;
}

// update_found()'s lock-free case: a non-TCP connection both ways already, where nothing
// but the counters and the expiry change. No lock (whose exchange drains the store
// buffer: measured as 70% of update_found()). The counters are plain loads and stores: a
// direction arrives on one queue, so one thread writes it; two threads counting the same
// direction at the same instant may lose one count (documented in DESIGN.md).
inline bool Conntrack::update_bidir(Conn& c, bool reply, const Extracted& x,
                                    uint64_t now_ms) const {
  if (x.key.proto == flow::kIpProtoTcp ||
      std::atomic_ref<OtherState>(c.other).load(std::memory_order_relaxed) != OtherState::kBidir ||
      (c.flags_now() & kConnReplySeen) == 0)
    return false;
  const unsigned dir = reply ? 1 : 0;
  std::atomic_ref<uint64_t> pk(c.packets[dir]), by(c.bytes[dir]);
  pk.store(pk.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  by.store(by.load(std::memory_order_relaxed) + x.bytes, std::memory_order_relaxed);
  const auto tmo = std::atomic_ref<uint8_t>(c.tmo).load(std::memory_order_relaxed);
  c.expires.store(expiry(static_cast<Timeout>(tmo), now_ms, c.policy), std::memory_order_relaxed);
  return true;
}

[[gnu::always_inline]] inline bool Conntrack::extract_fast(const uint8_t* frame, uint32_t len,
                                                           uint8_t csum_good, uint16_t zone,
                                                           Extracted& x) const {
  // Ethernet II without a VLAN tag; anything else is execute()'s (it parses the key).
  if (len < 14) return false;
  const uint16_t type = flow::load_raw16(frame + 12);
  const uint8_t* l3 = frame + 14;
  const uint32_t avail = len - 14;
  // The key's five words (ConnKey's layout) built in registers: the hash reads them
  // there, and they are stored whole (no narrow stores for wide loads to wait on).
  uint64_t w0, w1 = 0, w2, w3 = 0;
  uint64_t family;
  uint8_t proto;
  const uint8_t* l4;
  uint32_t l4_len;
  if (type == kEthIpv4Be) {
    if (avail < 20) return false;
    const uint32_t ihl = (l3[0] & 0x0fu) * 4u;
    const uint32_t tot = static_cast<uint32_t>(l3[2] << 8 | l3[3]);
    if ((l3[0] >> 4) != 4 || ihl < 20 || tot < ihl || tot > avail) return false;
    if ((static_cast<uint32_t>(l3[6] << 8 | l3[7]) & 0x3fffu) != 0) return false;  // fragment
    if ((csum_good & kCsumGoodL3) == 0 && !ipv4_header_ok(l3, tot)) return false;
    family = 4;
    proto = l3[9];
    w0 = flow::load_raw32(l3 + 12);
    w2 = flow::load_raw32(l3 + 16);
    x.bytes = tot;
    l4 = l3 + ihl;
    l4_len = tot - ihl;
  } else if (type == kEthIpv6Be) {
    if (avail < 40 || (l3[0] >> 4) != 6) return false;
    const uint32_t plen = static_cast<uint32_t>(l3[4] << 8 | l3[5]);
    if (40 + plen > avail) return false;
    family = 6;
    proto = l3[6];  // an extension header is not TCP or UDP: execute()'s
    std::memcpy(&w0, l3 + 8, 8);
    std::memcpy(&w1, l3 + 16, 8);
    std::memcpy(&w2, l3 + 24, 8);
    std::memcpy(&w3, l3 + 32, 8);
    x.bytes = 40 + plen;
    l4 = l3 + 40;
    l4_len = plen;
  } else {
    return false;
  }
  if (proto != flow::kIpProtoUdp && proto != flow::kIpProtoTcp) return false;
  if (l4_len < 4) return false;
  const uint32_t ports = flow::load_raw32(l4);  // sport, dport (network order)
  if ((ports & 0xffffu) == 0 || (ports >> 16) == 0) return false;
  const uint64_t w4 = ports | uint64_t{zone} << 32 | uint64_t{proto} << 48 | family << 56;
  const uint64_t w[5] = {w0, w1, w2, w3, w4};
  static_assert(sizeof(ConnKey) == sizeof w && offsetof(ConnKey, sport) == 32 &&
                offsetof(ConnKey, zone) == 36 && offsetof(ConnKey, proto) == 38 &&
                offsetof(ConnKey, family) == 39);
  std::memcpy(&x.key, w, sizeof w);
  // extract()'s own L4 checks (TCP header, UDP length, checksum) on the stored key.
  Invalid why;
  if (!check_l4(x, l4, l4_len, csum_good, why)) return false;
  x.hash = ConnTable::hash_words(w0, w1, w2, w3, w4);
  x.related = false;
  x.icmp = false;
  return true;
}

void Conntrack::execute_established(unsigned ctx, uint16_t zone, const LabelMatch& want,
                                    FastPacket* pkts, uint16_t n, uint64_t now_ms) {
  Counters& cs = ctr(ctx);
  Extracted xs[32];
  bool ok[32];
  constexpr uint8_t kSkip = kConnRelated | kConnAlgFtp | kConnAlgTftp | kConnSnat | kConnDnat;
  for (uint16_t base = 0; base < n; base += 32) {
    const uint16_t m = std::min<uint16_t>(32, n - base);
    // Keys and hashes, prefetching the buckets; then the candidates, prefetched.
    for (uint16_t i = 0; i < m; ++i) {
      FastPacket& p = pkts[base + i];
      p.result = FastPacket::kMiss;
      ok[i] = extract_fast(p.frame, p.len, p.csum_good, zone, xs[i]);
      if (ok[i]) table_.prefetch(xs[i].hash);
    }
    for (uint16_t i = 0; i < m; ++i)
      if (ok[i]) table_.prefetch_conn(xs[i].cand = table_.candidate(xs[i].hash));
    uint32_t handled = 0;
    uint32_t invalid = 0;
    for (uint16_t i = 0; i < m; ++i) {
      if (!ok[i]) continue;
      const Extracted& x = xs[i];
      bool reply = false;
      const uint32_t idx = table_.find_at(x.key, x.hash, x.cand, reply);
      if (idx == 0) continue;
      Conn& c = table_.conn(idx);
      // Expired (execute() removes it), or not a plain connection: untouched here.
      if (c.expires.load(std::memory_order_relaxed) <= now_ms) continue;
      if ((c.flags_now() & kSkip) != 0) continue;
      FastPacket& p = pkts[base + i];
      uint32_t mark;
      // The packet's copy; a lock holder changing the label meanwhile: execute()'s turn.
      if (!c.read_mark_label(mark, p.label)) continue;
      uint64_t lw[2];
      std::memcpy(lw, p.label, 16);
      if ((lw[0] & want.mask[0]) != want.value[0] || (lw[1] & want.mask[1]) != want.value[1])
        continue;
      if (update_bidir(c, reply, x, now_ms)) [[likely]] {
        ++handled;
        p.result = FastPacket::kTracked;
        p.conn = idx << 1 | (reply ? 1u : 0u);
        p.bytes = x.bytes;
        continue;
      }
      switch (update_found(c, reply, x, now_ms)) {
        case Update::kValid:
        case Update::kValidNew:
          p.result = FastPacket::kTracked;
          break;
        case Update::kInvalid:
          ++invalid;
          p.result = FastPacket::kInvalid;
          break;
        case Update::kReopen:
          unlink(idx);  // a new SYN after both ends closed: execute() starts it anew
          continue;
      }
      ++handled;
      p.conn = idx << 1 | (reply ? 1u : 0u);
      p.bytes = x.bytes;
    }
    // Counted as execute() counts them (a reopened connection's packet: there).
    cs.add(cs.packets, handled);
    cs.add(cs.found, handled);
    if (invalid != 0) cs.add(cs.invalid[static_cast<size_t>(Invalid::kTcpWindow)], invalid);
  }
}

[[gnu::always_inline]] inline void Conntrack::write_md(Md& md, uint16_t zone, const Conn* c,
                                                       uint32_t idx, bool reply,
                                                       const ConnKey* own) const {
  md.state |= flow::kCsTracked;
  md.zone = zone;
  md.conn = c != nullptr ? (idx << 1 | (reply ? 1u : 0u)) : 0;
  if (c == nullptr) {
    md.mark = 0;
    std::memset(md.label, 0, 16);
  } else {
    c->load_mark_label(md.mark, md.label);
  }
  // ct_orig_tuple: the connection's originator, else the packet's own tuple (a +new
  // packet not committed), else none.
  const ConnKey* o = c != nullptr ? &c->key[0] : own;
  ConnKey parent;
  if (c != nullptr && (c->flags_now() & kConnRelated) != 0 && parent_key(*c, parent)) o = &parent;
  std::memset(&md.orig_v4_src, 0, sizeof(Md) - offsetof(Md, orig_v4_src));
  if (o == nullptr) return;
  md.orig_proto = o->proto;
  if (o->family == 4) {
    md.orig_v4_src = o->src[0];
    md.orig_v4_dst = o->dst[0];
  } else {
    std::memcpy(md.orig_v6_src, o->src, 16);
    std::memcpy(md.orig_v6_dst, o->dst, 16);
  }
  if (o->proto == flow::kIpProtoIcmp || o->proto == flow::kIpProtoIcmpv6) {
    // ct_tp_src/dst of ICMP: type and code of the originating packet (network order).
    md.orig_sport = flow::hton16(static_cast<uint16_t>(o->dport >> 8));
    md.orig_dport = flow::hton16(static_cast<uint16_t>(o->dport & 0xff));
  } else {
    md.orig_sport = o->sport;
    md.orig_dport = o->dport;
  }
}

void Conntrack::apply_mark_label(const Action& a, Conn& c, Md& md) const {
  // A related (ALG) connection keeps its parent's mark and label (as OVS).
  if ((!a.set_mark && !a.set_label) || (c.flags_now() & kConnRelated) != 0) return;
  c.acquire();
  if (a.set_mark) c.mark_store((c.mark & ~a.mark_mask) | (a.mark & a.mark_mask));
  uint8_t label[16];
  std::memcpy(label, c.label, 16);  // the lock holder's own view
  if (a.set_label) {
    for (int i = 0; i < 16; ++i)
      label[i] =
          static_cast<uint8_t>((label[i] & ~a.label_mask[i]) | (a.label[i] & a.label_mask[i]));
    c.label_store(label);
  }
  md.mark = c.mark;
  std::memcpy(md.label, label, 16);
  c.release();
}

void Conntrack::unlink(uint32_t idx) {
  if (table_.remove(idx)) removed(idx);
}

void Conntrack::removed(uint32_t idx) {
  const Conn& c = table_.conn(idx);
  if ((c.flags_now() & kConnUncounted) == 0)
    zone_count_[c.key[0].zone].fetch_sub(1, std::memory_order_relaxed);
  if (alg_control(c.flags_now())) expect_.remove_parent(idx);
}

Conntrack::Update Conntrack::update_found(Conn& c, bool reply, const Extracted& x,
                                          uint64_t now_ms) {
  if (update_bidir(c, reply, x, now_ms)) return Update::kValid;
  const unsigned dir = reply ? 1 : 0;
  Update r = Update::kValid;
  c.acquire();
  {
    std::atomic_ref<uint64_t> pk(c.packets[dir]), by(c.bytes[dir]);
    pk.store(pk.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    by.store(by.load(std::memory_order_relaxed) + x.bytes, std::memory_order_relaxed);
  }
  if (x.key.proto == flow::kIpProtoTcp) {
    const TcpUpdate u = tcp_update(c.tcp, x.tcp, reply, opts_.tcp_seq_check);
    switch (u.verdict) {
      case TcpVerdict::kValid:
        break;
      case TcpVerdict::kValidNew:
        r = Update::kValidNew;
        break;
      case TcpVerdict::kInvalid:
        r = Update::kInvalid;
        break;
      case TcpVerdict::kReopen:
        r = Update::kReopen;
        break;
    }
    if (u.refresh && r != Update::kInvalid && r != Update::kReopen) {
      std::atomic_ref<uint8_t>(c.tmo).store(static_cast<uint8_t>(tcp_class(u.timeout)),
                                            std::memory_order_relaxed);
      c.expires.store(expiry(tcp_class(u.timeout), now_ms, c.policy), std::memory_order_relaxed);
    }
  } else {
    // UDP, other protocols, ICMP queries (OVS's "other" and "icmp" trackers): a reply
    // makes the connection bidirectional; until then every packet from the originator is
    // +new (first -> multiple for the others).
    // other and tmo: update_bidir() reads them without the lock (relaxed atomic accesses,
    // found by ThreadSanitizer).
    std::atomic_ref<OtherState> other(c.other);
    if (reply) {
      other.store(OtherState::kBidir, std::memory_order_relaxed);
    } else if (other.load(std::memory_order_relaxed) != OtherState::kBidir) {
      if (!x.icmp) other.store(OtherState::kMultiple, std::memory_order_relaxed);
      r = Update::kValidNew;
    }
    const Timeout t = other_timeout(other.load(std::memory_order_relaxed), x.icmp);
    std::atomic_ref<uint8_t>(c.tmo).store(static_cast<uint8_t>(t), std::memory_order_relaxed);
    c.expires.store(expiry(t, now_ms, c.policy), std::memory_order_relaxed);
  }
  if (reply && (c.flags_now() & kConnReplySeen) == 0) c.flags_store(c.flags_now() | kConnReplySeen);
  c.release();
  return r;
}

uint32_t Conntrack::create(unsigned ctx, const Action& a, const Extracted& x, uint64_t now_ms,
                           const Expectation* exp) {
  Counters& cs = ctr(ctx);
  // Limits: the zone's (its own, else the default), then the global one. A refused commit
  // is counted; the packet stays +new, not committed (as OVS).
  const uint16_t zone = a.zone;
  uint32_t zl = zone_limit_[zone].load(std::memory_order_relaxed);
  if (zl == kUseDefault) zl = default_limit_.load(std::memory_order_relaxed);
  std::atomic<uint32_t> none{0};  // an uncounted connection's stand-in counter
  std::atomic<uint32_t>& zc = a.uncounted ? none : zone_count_[zone];
  if (a.uncounted) zl = 0;
  if (zc.fetch_add(1, std::memory_order_relaxed) >= zl && zl != 0) {
    zc.fetch_sub(1, std::memory_order_relaxed);
    cs.add(cs.limit_zone);
    return 0;
  }
  if (table_.live() >= max_conns_.load(std::memory_order_relaxed)) {
    zc.fetch_sub(1, std::memory_order_relaxed);
    cs.add(cs.limit_global);
    return 0;
  }
  const uint32_t idx = table_.alloc(ctx);
  if (idx == 0) {
    zc.fetch_sub(1, std::memory_order_relaxed);
    cs.add(cs.table_full);
    return 0;
  }
  Conn& c = table_.conn(idx);
  c.key[0] = x.key;
  c.key[1] = reverse_key(x.key);
  if (a.uncounted) c.flags |= kConnUncounted;
  c.packets[0] = 1;
  c.bytes[0] = x.bytes;
  Timeout t;
  if (x.key.proto == flow::kIpProtoTcp) {
    t = tcp_class(tcp_new_conn(c.tcp, x.tcp));
  } else {
    c.other = OtherState::kFirst;
    t = other_timeout(OtherState::kFirst, x.icmp);
  }
  c.tmo = static_cast<uint8_t>(t);
  c.policy = a.policy;
  c.expires.store(expiry(t, now_ms, c.policy), std::memory_order_relaxed);
  if (exp != nullptr) {
    // An expected (ALG) connection: related for life, the parent's mark and label; with
    // nat, the address the parent's NAT implies, ports untouched (OVS conn_not_found).
    c.flags |= kConnRelated;
    c.mark = exp->mark;
    std::memcpy(c.label, exp->label, 16);
    c.master = exp->parent;
    c.seq_adj = parent_check(exp->parent_key);
    if (a.nat) {
      std::memcpy(exp->nat_rpl_dst ? c.key[1].dst : c.key[1].src, exp->nat_addr, 16);
      c.flags |= exp->nat_rpl_dst ? kConnSnat : kConnDnat;
    }
  }
  if (a.helper != kHelperNone) {
    // Recorded unless the committing packet is a control packet of the other helper (OVS
    // ct_verify_helper): FTP's is TCP port 21 either way, TFTP's UDP destination port 69.
    // A connection of neither (an active FTP data connection its client's ACK commits
    // under the same alg=ftp flow) and an expected one (OVS records the helper before it
    // looks at the expectation) show the helper in a dump; an expected one is never a
    // control connection (alg_control), the others' packets are parsed only on a control
    // port (alg_ctl).
    const bool ftp_ctl = x.key.proto == flow::kIpProtoTcp &&
                         (x.key.sport == flow::hton16(21) || x.key.dport == flow::hton16(21));
    const bool tftp_ctl = x.key.proto == flow::kIpProtoUdp && x.key.dport == flow::hton16(69);
    if (a.helper == kHelperFtp && !tftp_ctl) c.flags |= kConnAlgFtp;
    if (a.helper == kHelperTftp && !ftp_ctl) c.flags |= kConnAlgTftp;
  }
  if (exp == nullptr && (a.nat_src || a.nat_dst) && !nat_select(a, c, x.hash, now_ms, cs)) {
    table_.abandon(ctx, idx);
    zc.fetch_sub(1, std::memory_order_relaxed);
    cs.add(cs.nat_exhausted);  // as OVS: +new, neither committed nor translated
    return 0;
  }
  uint32_t existing = 0;
  if (!table_.insert(ctx, idx, existing)) {
    table_.abandon(ctx, idx);
    zc.fetch_sub(1, std::memory_order_relaxed);
    if (existing == 0) cs.add(cs.table_full);
    return existing != 0 ? kRaced : 0;
  }
  cs.add(cs.created);
  return idx;
}

void Conntrack::process_one(unsigned ctx, const Action& a, Packet& p, Extracted& x,
                            uint64_t now_ms) {
  Md& md = *p.md;
  Counters& cs = ctr(ctx);
  auto invalid = [&](Invalid why) {
    cs.add(cs.invalid[static_cast<size_t>(why)]);
    md.state = flow::kCsInvalid;
  };
  bool reply = false;
  uint32_t idx = 0;
  // A packet an earlier ct() in this zone translated carries the translated tuple: its
  // reverse is one of the connection's keys (OVS: initial_conn_lookup).
  const bool natted = (md.state & (flow::kCsSrcNat | flow::kCsDstNat)) != 0;
  if (natted) {
    const ConnKey r = reverse_key(x.key);
    idx = table_.find(r, ConnTable::hash(r), reply);
    if (idx != 0) reply = !reply;
  }
  if (idx == 0) idx = table_.find_at(x.key, x.hash, x.cand, reply);
  // NAT applies once per zone: to a packet not translated yet, when ct() asks for it.
  const bool do_nat = a.nat && !natted;
  auto nat = [&](const Conn& c, bool dir, bool related) {
    if (!do_nat || (c.flags_now() & (kConnSnat | kConnDnat)) == 0) return;
    nat_packet(c, dir, related, p);
    const bool src = ((c.flags_now() & kConnSnat) != 0) != dir;  // the side that changed
    md.state |= src ? flow::kCsSrcNat : flow::kCsDstNat;
  };
  if (idx != 0) {
    Conn& c = table_.conn(idx);
    if (c.expires.load(std::memory_order_relaxed) <= now_ms) {
      if (table_.remove(idx)) {  // expired but not swept yet: as if gone
        removed(idx);
        cs.add(cs.expired);
      }
      idx = 0;
    } else if (a.force && reply) {
      unlink(idx);  // force_commit: seen from the other side, start anew
      idx = 0;
    }
  }
  if (x.related) {  // an ICMP error: related to the connection it quotes, or invalid
    if (idx == 0) {
      invalid(Invalid::kIcmpUntracked);
      write_md(md, a.zone, nullptr, 0, false, nullptr);
      md.conn = 0;
      return;
    }
    Conn& c = table_.conn(idx);
    cs.add(cs.found);
    md.state |= flow::kCsRelated | (reply ? flow::kCsReplyDir : 0);
    write_md(md, a.zone, &c, idx, reply, nullptr);
    apply_mark_label(a, c, md);
    nat(c, reply, true);
    if (a.nat) md.conn = 0;
    return;
  }
  // ALG control packets (alg.cpp), after the update and NAT: expectations, payload NAT.
  auto alg = [&](Conn& c, bool dir) {
    if (alg_control(c.flags_now()) && (md.state & flow::kCsInvalid) == 0)
      alg_ctl(c, dir, do_nat, p);
  };
  // The packet leaves with connection c: its metadata, mark/label, NAT, the ALG.
  auto finish = [&](Conn& c, uint32_t i, bool dir) {
    if ((c.flags_now() & kConnRelated) != 0 && (md.state & flow::kCsInvalid) == 0)
      md.state |= flow::kCsRelated;
    write_md(md, a.zone, &c, i, dir, nullptr);
    apply_mark_label(a, c, md);
    nat(c, dir, false);
    alg(c, dir);
    if (a.nat) md.conn = 0;  // translated: a later ct() looks it up again (as OVS)
  };
  if (idx != 0) {
    Conn& c = table_.conn(idx);
    cs.add(cs.found);
    if (alg_control(c.flags_now()) && do_nat) alg_pre(c, reply, p, x.tcp.ack);
    switch (update_found(c, reply, x, now_ms)) {
      case Update::kValid:
        md.state = static_cast<uint8_t>((md.state | flow::kCsEstablished) & ~flow::kCsNew);
        if (reply) md.state |= flow::kCsReplyDir;
        break;
      case Update::kValidNew:
        md.state |= flow::kCsNew;
        break;
      case Update::kInvalid:
        invalid(Invalid::kTcpWindow);
        break;
      case Update::kReopen:
        unlink(idx);  // a new SYN after both ends closed: the old connection goes
        idx = 0;
        break;
    }
    if (idx != 0) {
      finish(c, idx, reply);
      return;
    }
  }
  // No connection: may this packet open one?
  if (x.key.proto == flow::kIpProtoTcp && !tcp_valid_new(x.tcp)) {
    invalid(Invalid::kTcpFlags);
    write_md(md, a.zone, nullptr, 0, false, nullptr);
    return;
  }
  if (x.icmp && !icmp_is_request(x.key.family, static_cast<uint8_t>(x.key.dport >> 8))) {
    invalid(Invalid::kIcmpType);  // e.g. an echo reply without its request
    write_md(md, a.zone, nullptr, 0, false, nullptr);
    return;
  }
  md.state = flow::kCsNew;
  // An expected connection (ALG): +rel (OVS expectation_lookup, source port wildcarded).
  Expectation exp;
  bool expected = false;
  if (expect_.any()) {
    expected = expect_.find(x.key, exp);
    if (expected) md.state |= flow::kCsRelated;
  }
  uint32_t made = a.commit ? create(ctx, a, x, now_ms, expected ? &exp : nullptr) : 0;
  if (made == kRaced) {
    // Another context created it meanwhile (the two directions, or two copies, on two
    // PMDs): track the packet with that connection.
    idx = table_.find(x.key, x.hash, reply);
    made = 0;
    if (idx != 0) {
      Conn& c = table_.conn(idx);
      const Update u = update_found(c, reply, x, now_ms);
      if (u == Update::kValid) {
        md.state = flow::kCsEstablished | (reply ? flow::kCsReplyDir : 0);
      } else if (u == Update::kInvalid) {
        invalid(Invalid::kTcpWindow);
      }
      finish(c, idx, reply);
      return;
    }
  }
  if (made == 0) {  // not committed (no commit, over a limit, no room): +new
    write_md(md, a.zone, nullptr, 0, false, expected ? &exp.parent_key : &x.key);
    if (expected) {  // OVS write_ct_md: the expectation's parent mark and label
      md.mark = exp.mark;
      std::memcpy(md.label, exp.label, 16);
    }
    return;
  }
  finish(table_.conn(made), made, false);
}

void Conntrack::execute(unsigned ctx, const Action& a, Packet* pkts, uint16_t n, uint64_t now_ms) {
  Counters& cs = ctr(ctx);
  cs.add(cs.packets, n);
  Extracted xs[32];
  bool ok[32];
  bool hashed[32];
  // The established path below applies to an action that neither translates nor restarts
  // connections (OVS's ct(table=N), ct(commit,...) of a known connection).
  const bool plain_action = !a.nat && !a.force;
  uint32_t fast_found = 0;
  for (uint16_t base = 0; base < n; base += 32) {
    const uint16_t m = std::min<uint16_t>(32, n - base);
    // Pass 1: keys and hashes, prefetching the buckets.
    for (uint16_t i = 0; i < m; ++i) {
      Packet& p = pkts[base + i];
      Md& md = *p.md;
      ok[i] = false;
      // Entering another zone starts afresh; in the same zone, the state bits of an
      // earlier ct() are kept (and accumulate, as in OVS).
      if (md.state != 0 && md.zone != a.zone) {
        md.state = 0;
        md.conn = 0;
      }
      if (md.conn != 0 && !a.force && !a.nat) {
        // A second ct() in this zone for a packet whose connection an earlier one found:
        // the connection's metadata again, no state machine (OVS's process_one_fast).
        const uint32_t idx = md.conn >> 1;
        Conn& c = table_.conn(idx);
        if (c.live.load(std::memory_order_acquire) != 0 && c.key[0].zone == a.zone) {
          md.state |= flow::kCsTracked;
          md.zone = a.zone;
          c.load_mark_label(md.mark, md.label);
          apply_mark_label(a, c, md);
          continue;
        }
      }
      Extracted& x = xs[i];
      // An untagged TCP/UDP frame without fragment or extension header: keyed and hashed
      // from its bytes in registers (extract_fast); the rest (and whatever it refuses,
      // e.g. a bad checksum, which extract() then names) from the parsed key.
      if (extract_fast(p.frame, p.len, p.csum_good, a.zone, x)) {
        table_.prefetch(x.hash);
        ok[i] = hashed[i] = true;
        continue;
      }
      Invalid why;
      if (!extract(p, x, why)) {
        cs.add(cs.invalid[static_cast<size_t>(why)]);
        md.state = flow::kCsInvalid;
        const uint32_t keep = md.conn;  // OVS leaves the cached connection as it was
        write_md(md, a.zone, nullptr, 0, false, nullptr);
        md.conn = keep;
        continue;
      }
      x.key.zone = a.zone;
      ok[i] = true;
      hashed[i] = false;
    }
    // Hashes in a loop of their own: reading a key's words right after extract()'s
    // narrower stores to them defeats store forwarding (as in the PMD's parse/hash split:
    // measured 9% of the whole PMD when hashed in the loop above).
    for (uint16_t i = 0; i < m; ++i) {
      if (!ok[i] || hashed[i]) continue;
      xs[i].hash = ConnTable::hash(xs[i].key);
      table_.prefetch(xs[i].hash);
    }
    // Pass 2: the buckets (prefetched in pass 1) name the candidate connection: prefetch
    // it; a commit of a packet with no candidate (most likely a new connection): the index
    // lines its insert will lock, so that a batch's inserts do not wait for their misses
    // one after another. Pass 3: look up and update.
    for (uint16_t i = 0; i < m; ++i) {
      if (!ok[i]) continue;
      table_.prefetch_conn(xs[i].cand = table_.candidate(xs[i].hash));
      if (a.commit && xs[i].cand == 0) table_.prefetch_insert(xs[i].key, xs[i].hash);
    }
    for (uint16_t i = 0; i < m; ++i) {
      if (!ok[i]) continue;
      Packet& p = pkts[base + i];
      Md& md = *p.md;
      const Extracted& x = xs[i];
      // The established path: a live connection, no relation, helper or translation to
      // apply, whose update is the lock-free one (update_bidir: both ways seen, not TCP).
      // What process_one() would do for it, without its general cases. TCP always takes
      // the state machine (process_one): not looked up here first, then again there.
      if (plain_action && !x.related && x.key.proto != flow::kIpProtoTcp &&
          (md.state & (flow::kCsSrcNat | flow::kCsDstNat)) == 0) {
        bool reply = false;
        const uint32_t idx = table_.find_at(x.key, x.hash, x.cand, reply);
        if (idx != 0) {
          Conn& c = table_.conn(idx);
          if (c.expires.load(std::memory_order_relaxed) > now_ms &&
              (c.flags_now() & (kConnRelated | kConnAlgFtp | kConnAlgTftp)) == 0 &&
              update_bidir(c, reply, x, now_ms)) {
            ++fast_found;
            md.state = static_cast<uint8_t>(((md.state | flow::kCsEstablished) & ~flow::kCsNew) |
                                            (reply ? flow::kCsReplyDir : 0));
            write_md(md, a.zone, &c, idx, reply, nullptr);
            if (a.set_mark || a.set_label) apply_mark_label(a, c, md);
            continue;
          }
        }
      }
      process_one(ctx, a, p, xs[i], now_ms);
    }
  }
  if (fast_found != 0) cs.add(cs.found, fast_found);
}

void Conntrack::sweep(unsigned ctx, uint64_t now_ms, uint32_t budget) {
  const uint32_t n = table_.sweep(
      ctx, now_ms, budget, [this](uint32_t idx) { removed(idx); },
      [this, ctx, now_ms](uint32_t idx, bool expired) {
        if (!end_hook_) return;
        Entry e{};
        fill_entry(idx, e);
        end_hook_(ctx, e, expired, now_ms);
      });
  if (n != 0) ctr(ctx).add(ctr(ctx).expired, n);
}

void Conntrack::fill_entry(uint32_t idx, Entry& e) const {
  Conn& c = const_cast<Conn&>(table_.conn(idx));
  e.orig = c.key[0];
  e.reply = c.key[1];
  c.acquire();  // a consistent copy of what the PMDs update
  e.mark = c.mark;
  std::memcpy(e.label, c.label, 16);
  e.tcp_state_orig = static_cast<uint8_t>(c.tcp.peer[0].state);
  e.tcp_state_reply = static_cast<uint8_t>(c.tcp.peer[1].state);
  e.flags = c.flags_now();
  for (int d = 0; d < 2; ++d) {  // atomic_ref: the lock-free path writes them too
    e.packets[d] = std::atomic_ref<uint64_t>(c.packets[d]).load(std::memory_order_relaxed);
    e.bytes[d] = std::atomic_ref<uint64_t>(c.bytes[d]).load(std::memory_order_relaxed);
  }
  c.release();
}

bool Conntrack::has_origin(const ConnKey& k, uint64_t now_ms) const {
  bool reply = false;
  const uint32_t idx = table_.find(k, ConnTable::hash(k), reply);
  return idx != 0 && !reply && table_.conn(idx).expires.load(std::memory_order_relaxed) > now_ms;
}

bool Conntrack::lookup(const ConnKey& k, uint64_t now_ms, Entry& out, bool& reply) const {
  const uint32_t idx = table_.find(k, ConnTable::hash(k), reply);
  if (idx == 0) return false;
  const uint64_t exp = table_.conn(idx).expires.load(std::memory_order_relaxed);
  if (exp <= now_ms) return false;
  out = Entry{};
  fill_entry(idx, out);
  out.timeout_s = static_cast<uint32_t>((exp - now_ms) / 1000);
  return true;
}

// ---- operator -------------------------------------------------------------------------

uint32_t Conntrack::dump(uint32_t cursor, int zone, uint64_t now_ms,
                         const std::function<bool(const Entry&)>& fn) const {
  return table_.for_each(cursor, [&](uint32_t idx) {
    Conn& c = const_cast<Conn&>(table_.conn(idx));
    if (zone >= 0 && c.key[0].zone != zone) return true;
    const uint64_t exp = c.expires.load(std::memory_order_relaxed);
    if (exp <= now_ms) return true;  // expired, not swept yet: gone for the operator too
    Entry e{};
    fill_entry(idx, e);
    e.timeout_s = static_cast<uint32_t>((exp - now_ms) / 1000);  // whole seconds, as OVS
    return fn(e);
  });
}

uint32_t Conntrack::flush(int zone) {
  uint32_t n = 0;
  table_.for_each(0, [&](uint32_t idx) {
    const Conn& c = table_.conn(idx);
    if (zone < 0 || c.key[0].zone == zone) {
      unlink(idx);
      ++n;
    }
    return true;
  });
  return n;
}

bool Conntrack::remove_conn(uint32_t md_conn) {
  const uint32_t idx = md_conn >> 1;
  if (idx == 0) return false;
  if (!table_.remove(idx)) return false;
  removed(idx);
  return true;
}

void Conntrack::set_mark_label(uint32_t md_conn, uint32_t mark, const uint8_t label[16]) {
  Conn& c = table_.conn(md_conn >> 1);
  c.acquire();
  c.mark_store(mark);
  c.label_store(label);
  c.release();
}

bool Conntrack::flush_tuple(const ConnKey& k) {
  bool reply;
  const uint32_t idx = table_.find(k, ConnTable::hash(k), reply);
  if (idx == 0) return false;
  unlink(idx);
  return true;
}

std::expected<void, std::string> Conntrack::set_max_conns(uint32_t n) {
  if (n > table_.capacity())
    return std::unexpected("maxconns " + std::to_string(n) + " is above the table's capacity " +
                           std::to_string(table_.capacity()) + " (gldp --ct-capacity)");
  max_conns_.store(n, std::memory_order_relaxed);
  return {};
}

void Conntrack::set_zone_limit(uint16_t zone, uint32_t limit) {
  zone_limit_[zone].store(limit, std::memory_order_relaxed);
}
void Conntrack::set_default_zone_limit(uint32_t limit) {
  default_limit_.store(limit, std::memory_order_relaxed);
}
void Conntrack::del_zone_limit(uint16_t zone) {
  zone_limit_[zone].store(kUseDefault, std::memory_order_relaxed);
}
uint32_t Conntrack::zone_limit(uint16_t zone) const {
  const uint32_t l = zone_limit_[zone].load(std::memory_order_relaxed);
  return l == kUseDefault ? default_limit_.load(std::memory_order_relaxed) : l;
}
bool Conntrack::zone_has_own_limit(uint16_t zone) const {
  return zone_limit_[zone].load(std::memory_order_relaxed) != kUseDefault;
}

void Conntrack::set_timeout(Timeout t, uint32_t sec) {
  policy_ms_[static_cast<size_t>(t)].store(sec * 1000, std::memory_order_relaxed);
}

std::expected<void, std::string> Conntrack::set_timeout_policy(
    uint32_t id, const std::array<uint32_t, kTimeoutCount>& sec, uint32_t present) {
  if (id >= kMaxTimeoutPolicies)
    return std::unexpected("timeout policy " + std::to_string(id) + ": id must be below " +
                           std::to_string(kMaxTimeoutPolicies));
  for (size_t i = 0; i < kTimeoutCount; ++i)
    if ((present >> i) & 1 && sec[i] > 4000000)  // ms must fit 32 bits
      return std::unexpected("timeout policy " + std::to_string(id) + ": " +
                             std::string(kTimeoutNames[i]) + " " + std::to_string(sec[i]) +
                             " s is more than 4000000 s");
  for (size_t i = 0; i < kTimeoutCount; ++i) {
    const uint32_t v = (present >> i) & 1 ? sec[i] : kDefaultTimeoutSec[i];
    policy_ms_[id * kTimeoutCount + i].store(v * 1000, std::memory_order_relaxed);
  }
  policy_set_[id].store(true, std::memory_order_release);
  return {};
}

std::expected<void, std::string> Conntrack::del_timeout_policy(uint32_t id) {
  if (id == 0) return std::unexpected("the default timeout policy (0) cannot be deleted");
  if (id >= kMaxTimeoutPolicies || !policy_set_[id].load(std::memory_order_relaxed))
    return std::unexpected("no timeout policy " + std::to_string(id));
  policy_set_[id].store(false, std::memory_order_release);
  return {};
}

bool Conntrack::timeout_policy(uint32_t id, std::array<uint32_t, kTimeoutCount>& sec) const {
  if (id >= kMaxTimeoutPolicies || !policy_set_[id].load(std::memory_order_relaxed)) return false;
  for (size_t i = 0; i < kTimeoutCount; ++i)
    sec[i] = policy_ms_[id * kTimeoutCount + i].load(std::memory_order_relaxed) / 1000;
  return true;
}

std::vector<uint32_t> Conntrack::timeout_policy_ids() const {
  std::vector<uint32_t> ids;
  for (uint32_t id = 0; id < kMaxTimeoutPolicies; ++id)
    if (policy_set_[id].load(std::memory_order_relaxed)) ids.push_back(id);
  return ids;
}

Stats Conntrack::stats() const {
  Stats s;
  for (unsigned i = 0; i < table_.contexts(); ++i) {
    const Counters& c = ctr_[i];
    s.packets += c.packets.load(std::memory_order_relaxed);
    s.found += c.found.load(std::memory_order_relaxed);
    s.created += c.created.load(std::memory_order_relaxed);
    s.expired += c.expired.load(std::memory_order_relaxed);
    s.limit_global += c.limit_global.load(std::memory_order_relaxed);
    s.limit_zone += c.limit_zone.load(std::memory_order_relaxed);
    s.table_full += c.table_full.load(std::memory_order_relaxed);
    s.nat_exhausted += c.nat_exhausted.load(std::memory_order_relaxed);
    s.nat_lookups += c.nat_lookups.load(std::memory_order_relaxed);
    for (size_t j = 0; j < s.invalid.size(); ++j)
      s.invalid[j] += c.invalid[j].load(std::memory_order_relaxed);
  }
  s.n_conns = table_.live();
  s.index_bytes = table_.index_bytes();
  s.index_grows = table_.grows();
  s.max_conns = max_conns();
  s.capacity = table_.capacity();
  s.pending_free = table_.pending_free();
  s.n_expectations = expect_.live();
  s.exp_created = expect_.created();
  s.exp_refused = expect_.refused();
  table_.for_each(0, [&](uint32_t idx) {
    ++s.by_proto[table_.conn(idx).key[0].proto];
    return true;
  });
  return s;
}

void Conntrack::clear_stats() {
  for (unsigned i = 0; i < table_.contexts(); ++i) {
    Counters& c = ctr_[i];
    c.packets = 0;
    c.found = 0;
    c.created = 0;
    c.expired = 0;
    c.limit_global = 0;
    c.limit_zone = 0;
    c.table_full = 0;
    c.nat_exhausted = 0;
    c.nat_lookups = 0;
    for (auto& v : c.invalid) v = 0;
  }
}

}  // namespace gl::ct
