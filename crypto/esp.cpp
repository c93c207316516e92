// esp.cpp — ESP burst functions (see esp.hpp) and the SPI-grouping inbound entry point.
#include "crypto/esp.hpp"

#include <cstring>

#include "flowtables/bytes.hpp"
#include "flowtables/checksum.hpp"

namespace gl::crypto {
namespace {

using flow::csum_add;
using flow::csum_finish;
using flow::hton16;
using flow::ipv4_header_checksum;
using flow::load_be16;
using flow::load_be32;
using flow::store_be16;
using flow::store_be32;
using flow::store_be64;

constexpr uint32_t kEspHdr = 8;                   // SPI + sequence number
constexpr uint32_t kEspHdrIv = kEspHdr + kIvLen;  // + IV
// Smallest ESP packet: header, IV, 4 bytes of ciphertext (pad length + next header,
// aligned to 4), ICV.
constexpr uint32_t kEspMin = kEspHdrIv + 4 + kIcvLen;

// AAD for sequence number `seq`: SPI | seq high | seq low (ESN) or SPI | seq. Returns its
// length. `aad` has room for 16 bytes.
inline uint32_t build_aad(uint8_t* aad, const SaHot& h, uint64_t seq) {
  std::memcpy(aad, &h.spi_be, 4);
  if (h.esn) {
    store_be64(aad + 4, seq);
    return 12;
  }
  store_be32(aad + 4, static_cast<uint32_t>(seq));
  return 8;
}

inline void fill_op(AeadOp& op, const SaHot& h, uint8_t* data, uint32_t len, const uint8_t* aad,
                    uint32_t aad_len, const uint8_t* iv) {
  op.key = h.key;
  op.data = data;
  op.len = len;
  op.tag = data + len;
  op.aad = aad;
  op.aad_len = aad_len;
  std::memcpy(op.nonce, h.salt, kSaltLen);
  std::memcpy(op.nonce + kSaltLen, iv, kIvLen);
}

// Writes padding 1, 2, .., pad length and next header at t (tailroom checked).
inline void write_trailer(uint8_t* t, uint32_t pad, uint8_t nh) {
  static constexpr uint8_t kPad[4] = {1, 2, 3, 0};
  std::memcpy(t, kPad, 4);  // bytes past `pad` are overwritten just below or by the ICV
  t[pad] = static_cast<uint8_t>(pad);
  t[pad + 1] = nh;
}

// Outer/transport IP header of a packet: header length and IP packet length, or the
// reason it is unusable. `want_proto` is the protocol that must follow the header (ESP
// for decap) or 0 to accept any except IPv6 extension headers ESP must not precede.
struct IpInfo {
  uint32_t l3 = 0;
  uint32_t ip_len = 0;
  uint8_t proto = 0;
  bool v6 = false;
  Result r = Result::ok;
};

inline IpInfo parse_ip(const PktBuf& p, uint8_t want_proto) {
  IpInfo ip;
  const uint8_t* d = p.data;
  if (p.len < 20) {
    ip.r = Result::bad_length;
    return ip;
  }
  const uint8_t v = d[0] >> 4;
  if (v == 4) {
    ip.l3 = (d[0] & 0x0fu) * 4u;
    ip.ip_len = load_be16(d + 2);
    ip.proto = d[9];
    if (ip.l3 < 20 || ip.ip_len < ip.l3 || ip.ip_len > p.len) {
      ip.r = Result::bad_length;
    } else if ((load_be16(d + 6) & 0x3fffu) != 0 || (want_proto != 0 && ip.proto != want_proto)) {
      ip.r = Result::unsupported;  // a fragment (reassemble first), or not ESP
    }
    return ip;
  }
  if (v == 6) {
    ip.v6 = true;
    ip.l3 = 40;
    ip.proto = d[6];
    if (p.len < 40 || 40u + load_be16(d + 4) > p.len) {
      ip.r = Result::bad_length;
      return ip;
    }
    ip.ip_len = 40u + load_be16(d + 4);
    if (want_proto != 0 ? ip.proto != want_proto
                        : (ip.proto == 0 || ip.proto == 43 || ip.proto == 44)) {
      ip.r = Result::unsupported;  // hop-by-hop / routing / fragment header, or not ESP
    }
    return ip;
  }
  ip.r = Result::unsupported;
  return ip;
}

// Common tail of every encap: one AEAD call, then results and counters.
inline uint32_t finish_encap(Sa& sa, Worker& w, uint32_t nops, Result* res,
                             const uint32_t* inner_len) {
  SaHot& h = sa.hot();
  auto& s = w.s;
  SaCounters& c = sa.counters();
  uint32_t good = nops;
  uint64_t bytes = 0;
  if (nops != 0 && h.aead(w, s.ops, nops, s.ok) != nops) {
    for (uint32_t j = 0; j < nops; ++j) {
      if (s.ok[j] == 0) {
        res[s.slot[j]] = Result::crypto_error;
        c.add(Result::crypto_error, 1);
        --good;
      }
    }
  }
  for (uint32_t j = 0; j < nops; ++j) {
    if (res[s.slot[j]] == Result::ok) bytes += inner_len[j];
  }
  c.add(Result::ok, good);
  c.add_bytes(bytes);
  return good;
}

// Refuses packet i with r.
inline void refuse(SaCounters& c, Result* res, uint32_t i, Result r) {
  res[i] = r;
  c.add(r, 1);
}

// ---- encap -----------------------------------------------------------------------------

template <bool kV6>
uint32_t encap_tunnel(Sa& sa, Worker& w, PktBuf* const* pkts, uint32_t n, Result* res) {
  constexpr uint32_t kIpLen = kV6 ? 40 : 20;
  constexpr uint32_t kHdr = kIpLen + kEspHdrIv;
  SaHot& h = sa.hot();
  SaCounters& c = sa.counters();
  auto& s = w.s;
  uint32_t inner_len[kMaxBurst];
  uint64_t seq = h.seq.load(std::memory_order_relaxed);
  uint32_t nops = 0;
  for (uint32_t i = 0; i < n; ++i) {
    PktBuf& p = *pkts[i];
    const uint32_t inner = p.len;
    if (inner == 0) {
      refuse(c, res, i, Result::bad_length);
      continue;
    }
    uint8_t nh = p.proto;
    if (nh == 0) {
      const uint8_t v = p.data[0] >> 4;
      nh = v == 4 ? kProtoIpv4 : v == 6 ? kProtoIpv6 : 0;
      if (nh == 0) {
        refuse(c, res, i, Result::unsupported);
        continue;
      }
    }
    const uint32_t pad = (0u - (inner + 2)) & 3u;
    const uint32_t enc = inner + pad + 2;
    if (p.headroom < kHdr || p.tailroom < pad + 2 + kIcvLen) {
      refuse(c, res, i, Result::no_room);
      continue;
    }
    const uint32_t total = kHdr + enc + kIcvLen;
    if (total - (kV6 ? 40 : 0) > 0xffff) {
      refuse(c, res, i, Result::bad_length);
      continue;
    }
    if (seq >= h.seq_limit) {
      h.expired.store(true, std::memory_order_relaxed);
      refuse(c, res, i, Result::seq_exhausted);
      continue;
    }
    ++seq;
    uint8_t* o = p.data - kHdr;
    std::memcpy(o, h.tmpl, kHdr);
    if constexpr (kV6) {
      store_be16(o + 4, static_cast<uint16_t>(total - 40));
    } else {
      const uint16_t len_be = hton16(static_cast<uint16_t>(total));
      const uint16_t id_be = hton16(h.ip_id++);
      std::memcpy(o + 2, &len_be, 2);
      std::memcpy(o + 4, &id_be, 2);
      const uint16_t csum = csum_finish(csum_add(h.tmpl_sum, uint32_t{len_be} + id_be));
      std::memcpy(o + 10, &csum, 2);
    }
    uint8_t* esp = o + kIpLen;
    store_be32(esp + 4, static_cast<uint32_t>(seq));
    store_be64(esp + kEspHdr, seq);
    write_trailer(p.data + inner, pad, nh);
    const uint32_t aad_len = build_aad(s.aad[nops], h, seq);
    fill_op(s.ops[nops], h, p.data, enc, s.aad[nops], aad_len, esp + kEspHdr);
    s.slot[nops] = static_cast<uint8_t>(i);
    inner_len[nops] = inner;
    ++nops;
    p.data = o;
    p.len = total;
    p.headroom -= kHdr;
    p.tailroom -= pad + 2 + kIcvLen;
    res[i] = Result::ok;
  }
  h.seq.store(seq, std::memory_order_relaxed);
  return finish_encap(sa, w, nops, res, inner_len);
}

uint32_t encap_transport(Sa& sa, Worker& w, PktBuf* const* pkts, uint32_t n, Result* res) {
  SaHot& h = sa.hot();
  SaCounters& c = sa.counters();
  auto& s = w.s;
  uint32_t inner_len[kMaxBurst];
  uint64_t seq = h.seq.load(std::memory_order_relaxed);
  uint32_t nops = 0;
  for (uint32_t i = 0; i < n; ++i) {
    PktBuf& p = *pkts[i];
    const IpInfo ip = parse_ip(p, 0);
    if (ip.r != Result::ok) {
      refuse(c, res, i, ip.r);
      continue;
    }
    const uint32_t payload = ip.ip_len - ip.l3;
    const uint32_t pad = (0u - (payload + 2)) & 3u;
    const uint32_t enc = payload + pad + 2;
    const uint32_t tail_avail = p.tailroom + (p.len - ip.ip_len);
    if (p.headroom < kEspHdrIv || tail_avail < pad + 2 + kIcvLen) {
      refuse(c, res, i, Result::no_room);
      continue;
    }
    const uint32_t total = ip.l3 + kEspHdrIv + enc + kIcvLen;
    if (total - (ip.v6 ? 40 : 0) > 0xffff) {
      refuse(c, res, i, Result::bad_length);
      continue;
    }
    if (seq >= h.seq_limit) {
      h.expired.store(true, std::memory_order_relaxed);
      refuse(c, res, i, Result::seq_exhausted);
      continue;
    }
    ++seq;
    uint8_t* const end = p.data + p.len + p.tailroom;
    uint8_t* const body = p.data + ip.l3;  // the payload stays where it is
    uint8_t* const o = p.data - kEspHdrIv;
    std::memmove(o, p.data, ip.l3);
    if (ip.v6) {
      o[6] = kProtoEsp;
      store_be16(o + 4, static_cast<uint16_t>(total - 40));
    } else {
      o[9] = kProtoEsp;
      store_be16(o + 2, static_cast<uint16_t>(total));
      const uint16_t csum = ipv4_header_checksum(o, ip.l3);
      std::memcpy(o + 10, &csum, 2);
    }
    uint8_t* esp = o + ip.l3;
    std::memcpy(esp, &h.spi_be, 4);
    store_be32(esp + 4, static_cast<uint32_t>(seq));
    store_be64(esp + kEspHdr, seq);
    write_trailer(body + payload, pad, ip.proto);
    const uint32_t aad_len = build_aad(s.aad[nops], h, seq);
    fill_op(s.ops[nops], h, body, enc, s.aad[nops], aad_len, esp + kEspHdr);
    s.slot[nops] = static_cast<uint8_t>(i);
    inner_len[nops] = ip.ip_len;
    ++nops;
    p.data = o;
    p.len = total;
    p.headroom -= kEspHdrIv;
    p.tailroom = static_cast<uint32_t>(end - (o + total));
    res[i] = Result::ok;
  }
  h.seq.store(seq, std::memory_order_relaxed);
  return finish_encap(sa, w, nops, res, inner_len);
}

// ---- decap -----------------------------------------------------------------------------

template <Mode kMode>
uint32_t decap(Sa& sa, Worker& w, PktBuf* const* pkts, uint32_t n, Result* res) {
  SaHot& h = sa.hot();
  SaCounters& c = sa.counters();
  ReplayWindow& win = sa.replay();
  auto& s = w.s;
  uint32_t nops = 0;
  for (uint32_t i = 0; i < n; ++i) {
    PktBuf& p = *pkts[i];
    const IpInfo ip = parse_ip(p, kProtoEsp);
    if (ip.r != Result::ok) {
      refuse(c, res, i, ip.r);
      continue;
    }
    uint8_t* esp = p.data + ip.l3;
    const uint32_t esp_len = ip.ip_len - ip.l3;
    if (esp_len < kEspMin || ((esp_len - kEspHdrIv - kIcvLen) & 3u) != 0) {
      refuse(c, res, i, Result::bad_length);
      continue;
    }
    uint32_t spi_be;
    std::memcpy(&spi_be, esp, 4);
    if (spi_be != h.spi_be) {
      refuse(c, res, i, Result::unknown_spi);
      continue;
    }
    const uint32_t seql = load_be32(esp + 4);
    const uint64_t seq = h.esn ? win.infer(seql) : seql;
    const Result r = win.check(seq);
    if (r != Result::ok) {
      refuse(c, res, i, r);
      continue;
    }
    const uint32_t aad_len = build_aad(s.aad[nops], h, seq);
    fill_op(s.ops[nops], h, esp + kEspHdrIv, esp_len - kEspHdrIv - kIcvLen, s.aad[nops], aad_len,
            esp + kEspHdr);
    s.seq[nops] = seq;
    s.l3len[nops] = static_cast<uint8_t>(ip.l3);
    s.slot[nops] = static_cast<uint8_t>(i);
    ++nops;
  }
  if (nops == 0) return 0;
  h.aead(w, s.ops, nops, s.ok);
  uint32_t good = 0;
  uint64_t bytes = 0;
  for (uint32_t j = 0; j < nops; ++j) {
    const uint32_t i = s.slot[j];
    if (s.ok[j] == 0) {
      refuse(c, res, i, Result::auth_failed);
      continue;
    }
    PktBuf& p = *pkts[i];
    uint8_t* data = s.ops[j].data;
    const uint32_t len = s.ops[j].len;
    const uint32_t pad = data[len - 2];
    const uint8_t nh = data[len - 1];
    if (pad + 2 > len) {
      refuse(c, res, i, Result::bad_padding);
      continue;
    }
    const uint32_t inner = len - 2 - pad;
    bool pad_ok = true;
    for (uint32_t k = 0; k < pad; ++k) pad_ok &= data[inner + k] == k + 1;
    if (!pad_ok) {
      refuse(c, res, i, Result::bad_padding);
      continue;
    }
    // Authenticated: now the sequence number may move the window.
    const Result r = win.update(s.seq[j]);
    if (r != Result::ok) {  // a duplicate within this burst
      refuse(c, res, i, r);
      continue;
    }
    if (nh == kProtoNone) {
      refuse(c, res, i, Result::dummy);
      continue;
    }
    uint8_t* const end = p.data + p.len + p.tailroom;
    uint8_t* out = data;
    uint32_t out_len = inner;
    if constexpr (kMode == Mode::tunnel) {
      if ((nh == kProtoIpv4 && (inner < 20 || (data[0] >> 4) != 4)) ||
          (nh == kProtoIpv6 && (inner < 40 || (data[0] >> 4) != 6))) {
        refuse(c, res, i, Result::bad_next_header);
        continue;
      }
    } else {
      const uint32_t l3 = s.l3len[j];
      out = data - l3;
      out_len = l3 + inner;
      std::memmove(out, p.data, l3);
      if ((out[0] >> 4) == 6) {
        out[6] = nh;
        store_be16(out + 4, static_cast<uint16_t>(inner));
      } else {
        out[9] = nh;
        store_be16(out + 2, static_cast<uint16_t>(out_len));
        const uint16_t csum = ipv4_header_checksum(out, l3);
        std::memcpy(out + 10, &csum, 2);
      }
    }
    p.headroom += static_cast<uint32_t>(out - p.data);
    p.data = out;
    p.len = out_len;
    p.tailroom = static_cast<uint32_t>(end - (out + out_len));
    p.proto = nh;
    res[i] = Result::ok;
    bytes += out_len;
    ++good;
  }
  c.add(Result::ok, good);
  c.add_bytes(bytes);
  return good;
}

}  // namespace

SaBurstFn esp_burst_fn(Direction dir, Mode mode, bool outer_v6) {
  if (dir == Direction::inbound) {
    return mode == Mode::tunnel ? &decap<Mode::tunnel> : &decap<Mode::transport>;
  }
  if (mode == Mode::transport) return &encap_transport;
  return outer_v6 ? &encap_tunnel<true> : &encap_tunnel<false>;
}

uint32_t esp_peek_spi(const PktBuf& p) {
  const IpInfo ip = parse_ip(p, kProtoEsp);
  if (ip.r != Result::ok || ip.ip_len - ip.l3 < kEspHdr) return 0;
  return load_be32(p.data + ip.l3);
}

uint32_t esp_decap_burst(Worker& w, const SaTable& table, PktBuf* const* pkts, uint32_t n,
                         Result* res, Sa** sas) {
  uint32_t spis[kMaxBurst] = {};
  for (uint32_t i = 0; i < n; ++i) spis[i] = esp_peek_spi(*pkts[i]);
  table.find_burst(spis, n, sas);
  // Group by SA (a burst from one queue usually holds one or two SPIs).
  Sa* groups[kMaxBurst];
  uint8_t group_of[kMaxBurst];
  uint32_t ngroups = 0;
  for (uint32_t i = 0; i < n; ++i) {
    if (sas[i] == nullptr) {
      res[i] = spis[i] == 0 ? Result::bad_length : Result::unknown_spi;
      group_of[i] = 0xff;
      continue;
    }
    uint32_t g = 0;
    while (g < ngroups && groups[g] != sas[i]) ++g;
    if (g == ngroups) groups[ngroups++] = sas[i];
    group_of[i] = static_cast<uint8_t>(g);
  }
  if (ngroups == 1 && (n == 0 || group_of[n - 1] == 0)) {
    bool all = true;
    for (uint32_t i = 0; i < n; ++i) all &= group_of[i] == 0;
    if (all) return groups[0]->burst(w, pkts, n, res);
  }
  uint32_t good = 0;
  PktBuf* sub[kMaxBurst];
  Result sub_res[kMaxBurst];
  uint8_t idx[kMaxBurst];
  for (uint32_t g = 0; g < ngroups; ++g) {
    uint32_t m = 0;
    for (uint32_t i = 0; i < n; ++i) {
      if (group_of[i] == g) {
        sub[m] = pkts[i];
        idx[m++] = static_cast<uint8_t>(i);
      }
    }
    good += groups[g]->burst(w, sub, m, sub_res);
    for (uint32_t k = 0; k < m; ++k) res[idx[k]] = sub_res[k];
  }
  return good;
}

}  // namespace gl::crypto
