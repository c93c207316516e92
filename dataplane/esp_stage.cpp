// esp_stage.cpp — the PMD's ESP stage: esp_encrypt / esp_decrypt on a run of one flow as
// one SA burst, ESP ports (divert from the underlay, encryption at tx flush), the MTU
// handling in front of encryption (fragmentation, ICMP "too big", MSS clamping). See
// DESIGN.md "ESP in the datapath" and "ESP ports".
#include <linux/openvswitch.h>

#include <cstring>
#include <utility>

#include "crypto/esp.hpp"
#include "dataplane/pmd.hpp"
#include "dataplane/pmd_internal.hpp"
#include "flowtables/checksum.hpp"

namespace gl::dp {

using detail::after_first;
using detail::kEthLen;
using detail::kEthTypeIpv4Be;
using detail::kEthTypeIpv6Be;

namespace {

// The drop reason of each crypto result (checked: a reorder of either enum does not compile).
using R = crypto::Result;
constexpr std::pair<R, Drop> kEspDropTable[] = {
    {R::ok, Drop::kActionDrop},  // never used
    {R::bad_length, Drop::kEspBadLength},
    {R::no_room, Drop::kEspNoRoom},
    {R::unknown_spi, Drop::kEspUnknownSpi},
    {R::too_old, Drop::kEspTooOld},
    {R::replay, Drop::kEspReplay},
    {R::auth_failed, Drop::kEspAuthFailed},
    {R::bad_padding, Drop::kEspBadPadding},
    {R::bad_next_header, Drop::kEspBadNextHeader},
    {R::dummy, Drop::kEspDummy},
    {R::seq_exhausted, Drop::kEspSaExpired},
    {R::unsupported, Drop::kEspUnsupported},
    {R::crypto_error, Drop::kEspCryptoError},
};
constexpr auto kEspDrop = flow::enum_map(kEspDropTable);
static_assert(kEspDrop.size() == crypto::kResultCount);

// The packets of one ESP burst: crypto buffers, the mbufs they live in and their index in
// the caller's batch (for their metadata).
struct EspStage {
  crypto::PktBuf bufs[kBatch];
  crypto::PktBuf* ptrs[kBatch];
  rte_mbuf* ms[kBatch];
  uint16_t idx[kBatch];
  uint16_t k = 0;
  void add(rte_mbuf* m, uint16_t i, const crypto::PktBuf& b) {
    bufs[k] = b;
    ptrs[k] = &bufs[k];
    ms[k] = m;
    idx[k++] = i;
  }
};

// TCP SYNs of encrypted flows: lowers the MSS option to what fits the tunnel (inner IP MTU
// minus 40 / 60 bytes), so TCP never sends segments that would be too big. Untagged
// IPv4 (no fragment) / IPv6 (TCP right after the fixed header) only; the TCP checksum is
// updated incrementally (RFC 1624).
inline void clamp_mss(uint8_t* d, uint32_t len, uint32_t max_frame) {
  if (len < kEthLen + 40) return;
  uint32_t l4 = 0, limit = 0;
  const uint32_t inner_mtu = max_frame - kEthLen;
  if (d[12] == 0x08 && d[13] == 0x00 && (d[14] >> 4) == 4 && d[14 + 9] == 6 &&
      (d[14 + 6] & 0x3f) == 0 && d[14 + 7] == 0) {
    l4 = kEthLen + (d[14] & 0x0fu) * 4u;
    limit = inner_mtu - 40;
  } else if (d[12] == 0x86 && d[13] == 0xdd && (d[14] >> 4) == 6 && d[14 + 6] == 6) {
    l4 = kEthLen + 40;
    limit = inner_mtu - 60;
  } else {
    return;
  }
  if (l4 + 20 > len || (d[l4 + 13] & 0x02) == 0) return;  // not a SYN
  const uint32_t end = l4 + (d[l4 + 12] >> 4) * 4u;
  if (end > len) return;
  for (uint32_t o = l4 + 20; o + 1 < end;) {
    const uint8_t kind = d[o];
    if (kind == 0) return;
    if (kind == 1) {
      ++o;
      continue;
    }
    const uint8_t olen = d[o + 1];
    if (olen < 2 || o + olen > end) return;
    if (kind == 2 && olen == 4) {
      const uint32_t mss = uint32_t(d[o + 2]) << 8 | d[o + 3];
      if (mss <= limit) return;
      uint16_t old_v, new_v, csum;
      std::memcpy(&old_v, d + o + 2, 2);
      d[o + 2] = static_cast<uint8_t>(limit >> 8);
      d[o + 3] = static_cast<uint8_t>(limit);
      std::memcpy(&new_v, d + o + 2, 2);
      if (((o + 2 - l4) & 1) != 0) {  // not 16-bit aligned in the TCP header
        old_v = static_cast<uint16_t>(old_v << 8 | old_v >> 8);
        new_v = static_cast<uint16_t>(new_v << 8 | new_v >> 8);
      }
      std::memcpy(&csum, d + l4 + 16, 2);
      csum = flow::csum_replace16(csum, old_v, new_v);
      std::memcpy(d + l4 + 16, &csum, 2);
      return;
    }
    o += olen;
  }
}

}  // namespace

void Pmd::esp_flush_pending() {
  if (esp_.n == 0) return;
  const ActionsBlob* a = esp_.actions;
  const uint16_t n = esp_.n;
  esp_.n = 0;
  esp_run(a->esp, a->esp_group, esp_.pkts, esp_.md, n, after_first(a->span()));
}

void Pmd::esp_run(uint16_t type, uint32_t group, rte_mbuf** pkts, PacketMd* md, uint16_t n,
                  std::span<const uint8_t> rest) {
  if (type == odp::kActionEspEncrypt)
    esp_encrypt(group, pkts, md, n, rest);
  else
    esp_decrypt(pkts, md, n, rest);
}

void Pmd::esp_encrypt(uint32_t group, rte_mbuf** pkts, PacketMd* md, uint16_t n,
                      std::span<const uint8_t> rest) {
  const SaTables* t = dp_.sa_tables();
  const EspGroup* g = t != nullptr ? t->group(group) : nullptr;
  const EspOutSlot* slot = g != nullptr ? &g->slots[index_] : nullptr;
  crypto::Sa* sa = slot != nullptr ? slot->sa : nullptr;
  // Fail closed: without a usable SA nothing leaves, in clear or otherwise.
  if (sa == nullptr || sa->expired()) {
    const Drop why = sa != nullptr                                   ? Drop::kEspSaExpired
                     : t != nullptr && t->out_retired(group, index_) ? Drop::kEspSaRetired
                                                                     : Drop::kEspNoSa;
    rte_pktmbuf_free_bulk(pkts, n);
    ctr_.drops[static_cast<size_t>(why)].add(n);
    return;
  }
  EspStage st;
  // The usual rest is one output (an ESP port's underlay, or esp_encrypt(..),N): send
  // directly instead of walking the action list per packet.
  uint32_t out_port = 0;
  const bool only_output = odp::single_u32_action(rest, OVS_ACTION_ATTR_OUTPUT, out_port);
  // Encrypts and sends what st holds (one SA burst), in order.
  auto run_stage = [&] {
    if (st.k == 0) return;
    crypto::Result res[kBatch];
    sa->burst(*worker_, st.ptrs, st.k, res);
    for (uint16_t j = 0; j < st.k; ++j) {
      rte_mbuf* m = st.ms[j];
      if (res[j] != crypto::Result::ok) {
        drop(m, kEspDrop[static_cast<size_t>(res[j])]);
        continue;
      }
      uint8_t* start = st.bufs[j].data - kEthLen;
      m->data_off = static_cast<uint16_t>(start - static_cast<uint8_t*>(m->buf_addr));
      m->data_len = static_cast<uint16_t>(st.bufs[j].len + kEthLen);
      m->pkt_len = m->data_len;
      std::memcpy(start, slot->eth, kEthLen);
      if (only_output) {
        output(m, out_port, md[st.idx[j]].in_port);
        continue;
      }
      flow::PacketLayout lay{};
      exec_actions(m, md[st.idx[j]], no_key_, lay, rest, true, 0);
    }
    st.k = 0;
  };
  for (uint16_t i = 0; i < n; ++i) {
    rte_mbuf* m = pkts[i];
    if (m->nb_segs != 1) {
      drop(m, Drop::kEspMultiSeg);
      continue;
    }
    if (rte_pktmbuf_data_len(m) > slot->max_frame) {
      // IPv4 without DF: fragmented before encryption (the receiving VM reassembles).
      // What came before goes first, then the fragments as a burst of their own: the
      // order of the packets is kept.
      constexpr uint16_t kMaxFrags = 2 * kBatch;
      rte_mbuf* frags[kMaxFrags];
      const uint16_t nf = fragment_ipv4(m, slot->max_frame, frags, kMaxFrags);
      if (nf == 0) {
        esp_too_big(m, md[i], slot->max_frame);
        continue;
      }
      ctr_.esp_fragmented.add();
      rte_pktmbuf_free(m);
      run_stage();
      PacketMd fmd[kBatch];
      for (uint16_t k = 0; k < kBatch; ++k) fmd[k] = md[i];
      for (uint16_t off = 0; off < nf; off += kBatch)  // they fit: no further fragmenting
        esp_encrypt(group, frags + off, fmd, std::min<uint16_t>(kBatch, nf - off), rest);
      continue;
    }
    if (slot->max_frame != UINT32_MAX)
      clamp_mss(rte_pktmbuf_mtod(m, uint8_t*), rte_pktmbuf_data_len(m), slot->max_frame);
    const uint16_t head = rte_pktmbuf_headroom(m);
    if (head < kEthLen) {
      drop(m, Drop::kEspNoRoom);
      continue;
    }
    // The inner packet is the whole Ethernet frame; keep room for the underlay header.
    st.add(m, i,
           crypto::PktBuf{rte_pktmbuf_mtod(m, uint8_t*), rte_pktmbuf_data_len(m),
                          static_cast<uint32_t>(head - kEthLen), rte_pktmbuf_tailroom(m),
                          crypto::kProtoEthernet});
  }
  run_stage();
}

uint16_t Pmd::fragment_ipv4(const rte_mbuf* m, uint32_t max_frame, rte_mbuf** out, uint16_t cap) {
  // Untagged or one 802.1Q tag, IPv4 without options and without DF: RFC 791 fragments
  // of at most max_frame bytes each (payload in multiples of 8), same ID, offsets and MF
  // continuing those of m (m may itself be a fragment). Anything else: 0.
  const uint8_t* d = rte_pktmbuf_mtod(m, const uint8_t*);
  const uint32_t len = rte_pktmbuf_data_len(m);
  uint32_t l2 = kEthLen;
  if (len >= kEthLen + 4 && d[12] == 0x81 && d[13] == 0x00) l2 += 4;
  if (len < l2 + 20 || d[l2 - 2] != 0x08 || d[l2 - 1] != 0x00 || d[l2] != 0x45) return 0;
  const uint8_t* ip = d + l2;
  const uint16_t frag = static_cast<uint16_t>(ip[6] << 8 | ip[7]);
  if (frag & 0x4000) return 0;  // DF: the sender gets ICMP "fragmentation needed"
  const uint32_t tot = static_cast<uint32_t>(ip[2] << 8 | ip[3]);
  if (tot < 20 || l2 + tot > len || max_frame < l2 + 20 + 8) return 0;
  const uint32_t chunk = (max_frame - l2 - 20) & ~7u;
  const uint32_t payload = tot - 20;
  const uint32_t nf = (payload + chunk - 1) / chunk;
  if (nf == 0 || nf > cap) return 0;
  const uint32_t off0 = frag & 0x1fffu;
  const bool more0 = (frag & 0x2000) != 0;
  for (uint32_t k = 0; k < nf; ++k) {
    const uint32_t plen = std::min(chunk, payload - k * chunk);
    rte_mbuf* f = rte_pktmbuf_alloc(dp_.pool());
    uint8_t* p = f == nullptr ? nullptr
                              : reinterpret_cast<uint8_t*>(
                                    rte_pktmbuf_append(f, static_cast<uint16_t>(l2 + 20 + plen)));
    if (p == nullptr) {
      if (f != nullptr) rte_pktmbuf_free(f);
      rte_pktmbuf_free_bulk(out, k);
      ctr_.drops[static_cast<size_t>(Drop::kNoMbuf)].add();
      return 0;
    }
    std::memcpy(p, d, l2 + 20);
    std::memcpy(p + l2 + 20, ip + 20 + k * chunk, plen);
    uint8_t* fip = p + l2;
    const uint32_t t = 20 + plen;
    fip[2] = static_cast<uint8_t>(t >> 8);
    fip[3] = static_cast<uint8_t>(t);
    const uint32_t fo = off0 + k * chunk / 8;
    const bool more = k + 1 < nf || more0;
    fip[6] = static_cast<uint8_t>((more ? 0x20 : 0) | ((fo >> 8) & 0x1f));
    fip[7] = static_cast<uint8_t>(fo);
    fip[10] = fip[11] = 0;
    const uint16_t cs = flow::inet_checksum(fip, 20);
    std::memcpy(fip + 10, &cs, 2);
    out[k] = f;
  }
  return static_cast<uint16_t>(nf);
}

void Pmd::esp_too_big(rte_mbuf* m, const PacketMd& md, uint32_t max_frame) {
  // Untagged IPv4 with DF (first fragment) gets ICMP "fragmentation needed" (RFC 1191),
  // IPv6 gets ICMPv6 "packet too big" (RFC 8201), with the inner MTU, sent back out of the
  // port the packet came in on, from the address it was sent to. Everything else is only
  // dropped and counted. Rare path.
  const uint8_t* d = rte_pktmbuf_mtod(m, const uint8_t*);
  const uint32_t len = rte_pktmbuf_data_len(m);
  const uint32_t mtu = max_frame > kEthLen ? max_frame - kEthLen : 0;
  const bool v4 = len >= kEthLen + 20 && d[12] == 0x08 && d[13] == 0x00 && (d[kEthLen] >> 4) == 4;
  const bool v6 = len >= kEthLen + 40 && d[12] == 0x86 && d[13] == 0xdd && (d[kEthLen] >> 4) == 6;
  const uint32_t ihl = v4 ? (d[kEthLen] & 0x0fu) * 4u : 0;
  bool reply = false;
  uint32_t quote = 0, ip_len = 0;
  if (v4 && ihl >= 20 && len >= kEthLen + ihl && (d[kEthLen + 6] & 0x40) != 0 &&
      (d[kEthLen + 6] & 0x1f) == 0 && d[kEthLen + 7] == 0 && mtu >= 68) {
    reply = true;
    quote = std::min(len - kEthLen, ihl + 8);
    ip_len = 20;
  } else if (v6 && mtu >= 1280 &&
             (d[kEthLen + 6] != 58 || d[kEthLen + 40] >= 128)) {  // not about an ICMPv6 error
    reply = true;
    quote = std::min(len - kEthLen, 1280u - 40 - 8);  // the reply fits the minimum MTU
    ip_len = 40;
  }
  if (reply) {
    rte_mbuf* r = rte_pktmbuf_alloc(dp_.pool());
    uint8_t* p = r == nullptr ? nullptr
                              : reinterpret_cast<uint8_t*>(rte_pktmbuf_append(
                                    r, static_cast<uint16_t>(kEthLen + ip_len + 8 + quote)));
    if (p == nullptr) {
      if (r != nullptr) rte_pktmbuf_free(r);
      ctr_.drops[static_cast<size_t>(Drop::kNoMbuf)].add();
      drop(m, Drop::kEspTooBig);
      return;
    }
    std::memcpy(p, d + 6, 6);
    std::memcpy(p + 6, d, 6);
    p[12] = d[12];
    p[13] = d[13];
    uint8_t* ip = p + kEthLen;
    uint8_t* icmp = ip + ip_len;
    std::memset(ip, 0, ip_len + 8);
    std::memcpy(icmp + 8, d + kEthLen, quote);
    if (v4) {
      const uint16_t tot = static_cast<uint16_t>(28 + quote);
      ip[0] = 0x45;
      ip[1] = 0xc0;  // internetwork control
      ip[2] = static_cast<uint8_t>(tot >> 8);
      ip[3] = static_cast<uint8_t>(tot);
      ip[8] = 64;
      ip[9] = 1;  // ICMP
      std::memcpy(ip + 12, d + kEthLen + 16, 4);
      std::memcpy(ip + 16, d + kEthLen + 12, 4);
      uint16_t cs = flow::inet_checksum(ip, 20);
      std::memcpy(ip + 10, &cs, 2);
      icmp[0] = 3;  // destination unreachable
      icmp[1] = 4;  // fragmentation needed and DF set
      icmp[6] = static_cast<uint8_t>(mtu >> 8);
      icmp[7] = static_cast<uint8_t>(mtu);
      cs = flow::inet_checksum(icmp, 8 + quote);
      std::memcpy(icmp + 2, &cs, 2);
    } else {
      const uint16_t plen = static_cast<uint16_t>(8 + quote);
      ip[0] = 0x60;
      ip[4] = static_cast<uint8_t>(plen >> 8);
      ip[5] = static_cast<uint8_t>(plen);
      ip[6] = 58;  // ICMPv6
      ip[7] = 255;
      std::memcpy(ip + 8, d + kEthLen + 24, 16);
      std::memcpy(ip + 24, d + kEthLen + 8, 16);
      icmp[0] = 2;  // packet too big
      icmp[4] = static_cast<uint8_t>(mtu >> 24);
      icmp[5] = static_cast<uint8_t>(mtu >> 16);
      icmp[6] = static_cast<uint8_t>(mtu >> 8);
      icmp[7] = static_cast<uint8_t>(mtu);
      const uint16_t cs =
          flow::l4_checksum(flow::ipv6_pseudo_sum(ip + 8, ip + 24, 58, plen), icmp, plen);
      std::memcpy(icmp + 2, &cs, 2);
    }
    output(r, md.in_port, md.in_port);
  }
  drop(m, Drop::kEspTooBig);
}

void Pmd::esp_decrypt(rte_mbuf** pkts, PacketMd* md, uint16_t n, std::span<const uint8_t> rest) {
  const SaTables* t = dp_.sa_tables();
  if (t == nullptr) {
    rte_pktmbuf_free_bulk(pkts, n);
    ctr_.drops[static_cast<size_t>(Drop::kEspUnknownSpi)].add(n);
    return;
  }
  EspStage st;
  for (uint16_t i = 0; i < n; ++i) {
    rte_mbuf* m = pkts[i];
    if (m->nb_segs != 1) {
      drop(m, Drop::kEspMultiSeg);
      continue;
    }
    uint8_t* d = rte_pktmbuf_mtod(m, uint8_t*);
    const uint32_t len = rte_pktmbuf_data_len(m);
    uint32_t l2 = kEthLen;
    uint16_t et = len >= kEthLen ? static_cast<uint16_t>(d[12] << 8 | d[13]) : 0;
    if (et == 0x8100 && len >= kEthLen + 4) {
      l2 += 4;
      et = static_cast<uint16_t>(d[16] << 8 | d[17]);
    }
    bool good = false;
    if (et == 0x0800 && len >= l2 + 20) {
      // The outer header is not authenticated: check its checksum here.
      const uint32_t ihl = (d[l2] & 0x0fu) * 4u;
      good = ihl >= 20 && len >= l2 + ihl &&
             flow::csum_fold(flow::csum_partial(d + l2, ihl)) == 0xffff;
    } else if (et == 0x86dd && len >= l2 + 40) {
      good = true;
    }
    if (!good) {
      drop(m, Drop::kEspBadOuter);
      continue;
    }
    st.add(
        m, i,
        crypto::PktBuf{d + l2, len - l2, rte_pktmbuf_headroom(m) + l2, rte_pktmbuf_tailroom(m), 0});
  }
  if (st.k == 0) return;
  crypto::Result res[kBatch];
  crypto::Sa* sas[kBatch];
  crypto::esp_decap_burst(*worker_, t->inbound[index_], st.ptrs, st.k, res, sas);
  for (uint16_t j = 0; j < st.k; ++j) {
    rte_mbuf* m = st.ms[j];
    if (res[j] != crypto::Result::ok) {
      Drop why = kEspDrop[static_cast<size_t>(res[j])];
      if (res[j] == crypto::Result::unknown_spi) {
        // An SPI another context owns (its replay window is that context's alone): the
        // packet goes there, untouched (an unknown SPI leaves the buffer as it was).
        const uint32_t spi = crypto::esp_peek_spi(st.bufs[j]);
        const uint32_t owner = t->owner(spi);
        if (owner != SaTables::kNoOwner && owner != index_ && !in_handoff_) {
          if (esp_handoff(owner, m, md[st.idx[j]], rest, why)) continue;
        } else if (t->inbound_all.find(spi) != nullptr) {
          why = Drop::kEspWrongPmd;  // owned by no one context (any), yet not ours: a race
        } else if (t->in_retired(spi)) {
          why = Drop::kEspSaRetired;
        }
      }
      drop(m, why);
      continue;
    }
    if (st.bufs[j].proto != crypto::kProtoEthernet || st.bufs[j].len < kEthLen) {
      drop(m, Drop::kEspInnerNotEthernet);
      continue;
    }
    m->data_off = static_cast<uint16_t>(st.bufs[j].data - static_cast<uint8_t*>(m->buf_addr));
    m->data_len = static_cast<uint16_t>(st.bufs[j].len);
    m->pkt_len = m->data_len;
    m->ol_flags = 0;  // the underlay's offload flags do not describe the inner frame
    m->packet_type = 0;
    if (Port* vp = dp_.port(md[st.idx[j]].in_port); vp != nullptr && vp->is_esp()) {
      // The outer addresses that chose the ESP port are not authenticated: the SA that
      // authenticated the packet must be one between the port's local and remote.
      if (!vp->esp_peer_is(sas[j]->config())) {
        drop(m, Drop::kEspPeerMismatch);
        continue;
      }
      vp->count_rx(index_, m->pkt_len);
    }
    flow::PacketLayout lay{};
    exec_actions(m, md[st.idx[j]], no_key_, lay, rest, true, 0);
  }
}

bool Pmd::esp_handoff(uint32_t owner, rte_mbuf* m, const PacketMd& md,
                      std::span<const uint8_t> rest, Drop& why) {
  if (owner > dp_.pmds_.size() || rest.size() > kHandoffRest) {  // neither can happen
    why = Drop::kEspWrongPmd;
    return false;
  }
  EspHandoff h;
  h.m = m;
  h.md = md;
  h.rest_len = static_cast<uint32_t>(rest.size());
  std::memcpy(h.rest, rest.data(), rest.size());
  if (!dp_.context(owner).handoff_queue().push(h)) {
    why = Drop::kEspHandoffFull;
    return false;
  }
  ctr_.esp_handoffs.add();
  return true;
}

void Pmd::esp_handoff_drain() {
  EspHandoff hs[kBatch];
  const unsigned n = handoff_->pop_burst(hs, kBatch);
  if (n == 0) return;
  if (is_control_) {
    now_tsc_ = rte_rdtsc();
    trackers_online();
  }
  RecircQueue recirc;
  RecircQueue* saved = recirc_;
  recirc_ = &recirc;
  in_handoff_ = true;
  // Runs of the same remaining actions decrypt as one burst.
  rte_mbuf* pkts[kBatch];
  PacketMd md[kBatch];
  for (unsigned i = 0; i < n;) {
    unsigned k = 0;
    const EspHandoff& first = hs[i];
    while (i < n && hs[i].rest_len == first.rest_len &&
           std::memcmp(hs[i].rest, first.rest, first.rest_len) == 0) {
      pkts[k] = hs[i].m;
      md[k++] = hs[i++].md;
    }
    esp_decrypt(pkts, md, static_cast<uint16_t>(k),
                std::span<const uint8_t>(first.rest, first.rest_len));
  }
  in_handoff_ = false;
  recirc_ = saved;
  drain_recirc(recirc, 0);
  flush_tx();
  drain_fw_answers();
  if (is_control_) trackers_offline();
}

bool Pmd::esp_divert(rte_mbuf* m, const flow::FlowKey& key, EspPending& to) {
  const Port* rp = dp_.port(key.in_port);
  if (rp == nullptr || !rp->has_esp_children()) return false;
  uint32_t vp = api::kPortAny;
  if (key.eth_type == kEthTypeIpv4Be) {
    vp = rp->esp_port_for(4, reinterpret_cast<const uint8_t*>(&key.ipv4_src),
                          reinterpret_cast<const uint8_t*>(&key.ipv4_dst));
  } else if (key.eth_type == kEthTypeIpv6Be) {
    vp = rp->esp_port_for(6, key.ipv6_src, key.ipv6_dst);
  }
  if (vp == api::kPortAny) return false;
  to.pkts[to.n] = m;
  key_to_md(key, to.md[to.n]);
  to.md[to.n++].in_port = vp;
  return true;
}
void Pmd::esp_port_tx(Port& port, rte_mbuf** in, uint16_t n) {
  // Copy out: encryption outputs to the underlay, whose buffer may be flushed meanwhile.
  rte_mbuf* pkts[kBatch];
  PacketMd md[kBatch];
  uint64_t bytes = 0;
  const uint64_t must_encrypt = dp_.must_encrypt_flag();
  for (uint16_t i = 0; i < n; ++i) {
    pkts[i] = in[i];
    pkts[i]->ol_flags &= ~must_encrypt;  // it is being encrypted: the underlay may take it
    md[i] = PacketMd{};
    md[i].in_port = pkts[i]->hash.usr;
    bytes += rte_pktmbuf_pkt_len(pkts[i]);
  }
  port.count_tx(index_, n, bytes);
  // OUTPUT(underlay); an underlay that is gone (kPortAny) makes that a no_port drop.
  const odp::U32Action out = odp::u32_action(OVS_ACTION_ATTR_OUTPUT, port.esp_underlay());
  esp_encrypt(port.esp_group(), pkts, md, n, out.span());
}

}  // namespace gl::dp
