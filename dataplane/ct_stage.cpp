// ct_stage.cpp — the PMD's conntrack stage: OVS's ct() on a run of packets of one flow as
// one tracker batch (keys, hashes and prefetches for the run, then lookups), IP fragments
// reassembled in front of the tracker (OVS's ipf), and the per-context upkeep (expiry,
// reclamation). The tracker itself is dataplane/conntrack/.
#include <cstddef>
#include <cstring>

#include "dataplane/pmd.hpp"
#include "dataplane/pmd_internal.hpp"

namespace gl::dp {

namespace {

// The tracker's metadata is laid out as the key's metadata words 2..5 and 17..22.
static_assert(offsetof(flow::FlowKey, ct_label) + 16 - offsetof(flow::FlowKey, ct_mark) ==
              offsetof(ct::Md, orig_v4_src));
static_assert(sizeof(flow::FlowKey) - offsetof(flow::FlowKey, ct_nw_src) ==
              sizeof(ct::Md) - offsetof(ct::Md, orig_v4_src));
static_assert(offsetof(flow::FlowKey, pad1) - offsetof(flow::FlowKey, ct_mark) ==
              offsetof(ct::Md, conn));
inline void key_to_ct(const flow::FlowKey& k, ct::Md& c) {
  std::memcpy(static_cast<void*>(&c), &k.ct_mark, offsetof(ct::Md, orig_v4_src));
  std::memcpy(&c.orig_v4_src, &k.ct_nw_src, sizeof(ct::Md) - offsetof(ct::Md, orig_v4_src));
}
inline void ct_to_key(const ct::Md& c, flow::FlowKey& k) {
  std::memcpy(&k.ct_mark, &c, offsetof(ct::Md, orig_v4_src));
  std::memcpy(&k.ct_nw_src, &c.orig_v4_src, sizeof(ct::Md) - offsetof(ct::Md, orig_v4_src));
}

bool ipf_wants(const ct::Ipf& ipf, const flow::FlowKey& k, const flow::PacketLayout& lay) {
  if ((k.nw_frag & flow::kFragAny) == 0 || lay.l3_ofs == flow::kNoOffset) return false;
  const ct::IpfConfig c = ipf.config();
  return lay.is_ipv4() ? c.v4_enabled : lay.is_ipv6() && c.v6_enabled;
}

}  // namespace

Pmd::Frag Pmd::ct_fragment(const ct::Action& a, rte_mbuf* m, flow::FlowKey& key,
                           const flow::PacketLayout& lay, std::span<const uint8_t> rest,
                           const CtActions* cts, int depth) {
  ct::Conntrack& ct = dp_.conntrack();
  ct::Completed& done = *ipf_done_;
  const uint64_t now_ms = dp_.ct_now_ms(now_tsc_);
  const ct::FragIn in{
      rte_pktmbuf_mtod(m, uint8_t*), rte_pktmbuf_data_len(m), lay.l3_ofs, a.zone, key.recirc_id, m};
  switch (ct.ipf().add(in, now_ms, done)) {
    case ct::AddResult::kHeld:
      return Frag::kHeld;
    case ct::AddResult::kPass:
      return Frag::kTrack;  // the tracker makes it +inv
    case ct::AddResult::kInvalid:
      key.ct_state = flow::kCsInvalid | flow::kCsTracked;
      key.ct_zone = a.zone;
      key.ct_mark = 0;
      key.pad1 = 0;  // ct_conn
      std::memset(key.ct_label, 0, sizeof key.ct_label);
      std::memset(&key.ct_nw_src, 0, kMdHead);  // no orig tuple
      return Frag::kDone;
    case ct::AddResult::kComplete:
      break;
  }
  // The datagram is complete: track the reassembled packet, give every fragment its result
  // (and NAT's rewrite), and send the fragments on through the rest of the actions; the
  // one in hand continues with the caller.
  flow::FlowKey rkey = key;
  flow::PacketLayout rlay;
  flow::parse_packet(done.pkt, done.len, rkey, rlay);
  ct::Md cmd;
  key_to_ct(key, cmd);
  ct::Packet cp{done.pkt, done.len, &rkey, &rlay, &cmd};
  ct.execute(index_, a, &cp, 1, now_ms);
  cmd.conn = 0;  // each fragment looks its connection up again, as in OVS
  ct_to_key(cmd, key);
  PacketMd fmd;
  key_to_md(key, fmd);
  ct::Ipf::apply(done);
  ctr_.ct_reassembled.add();
  for (uint32_t i = 0; i < done.n; ++i) {
    auto* f = static_cast<rte_mbuf*>(done.frags[i].handle);
    if (f == m) continue;
    PacketMd md2 = fmd;
    flow::FlowKey fk = key;
    flow::PacketLayout flay;
    flow::parse_packet(rte_pktmbuf_mtod(f, const uint8_t*), rte_pktmbuf_data_len(f), fk, flay);
    exec_actions(f, md2, fk, flay, rest, true, depth, cts);
  }
  return Frag::kDone;
}

void Pmd::ct_run(const ct::Action& a, rte_mbuf** pkts, flow::FlowKey* keys,
                 const flow::PacketLayout* lay, uint16_t n, bool* rewritten,
                 std::span<const uint8_t> rest, const CtActions* cts, int depth) {
  // Not initialised: key_to_ct() writes every byte of the Mds it uses (value-initialising
  // 32 of them was a 2.5 KB memset at every call).
  union MdSlot {
    MdSlot() {}
    ct::Md md;
  } cmd[kBatch];
  ct::Packet cp[kBatch];
  uint16_t at[kBatch];
  ct::Conntrack& ct = dp_.conntrack();
  for (uint16_t off = 0; off < n; off += kBatch) {
    const uint16_t cnt = std::min<uint16_t>(kBatch, n - off);
    uint16_t m = 0;
    for (uint16_t i = off; i < off + cnt; ++i) {
      rte_mbuf* p = pkts[i];
      if (rewritten != nullptr) rewritten[i] = false;
      if (ipf_wants(ct.ipf(), keys[i], lay[i]) && ipf_done_ != nullptr) [[unlikely]] {
        const Frag r = ct_fragment(a, p, keys[i], lay[i], rest, cts, depth);
        if (r == Frag::kHeld) pkts[i] = nullptr;  // the reassembly holds it now
        if (r != Frag::kTrack) {
          if (rewritten != nullptr) rewritten[i] = r == Frag::kDone;
          continue;
        }
      }
      key_to_ct(keys[i], cmd[m].md);
      cp[m] = ct::Packet{rte_pktmbuf_mtod(p, uint8_t*), rte_pktmbuf_data_len(p), &keys[i], &lay[i],
                         &cmd[m].md};
      cp[m].room = rte_pktmbuf_tailroom(p);    // the FTP helper's NAT may lengthen a payload
      cp[m].csum_good = detail::csum_good(p);  // what the NIC verified
      at[m++] = i;
    }
    if (m == 0) continue;
    ct.execute(index_, a, cp, m, dp_.ct_now_ms(now_tsc_));
    for (uint16_t j = 0; j < m; ++j) {
      ct_to_key(cmd[j].md, keys[at[j]]);
      if (rewritten != nullptr) rewritten[at[j]] = cp[j].rewritten;
      rte_mbuf* p = pkts[at[j]];
      if (cp[j].len != rte_pktmbuf_data_len(p)) [[unlikely]] {  // an ALG rewrote a payload
        if (cp[j].len > rte_pktmbuf_data_len(p))
          rte_pktmbuf_append(p, static_cast<uint16_t>(cp[j].len - rte_pktmbuf_data_len(p)));
        else
          rte_pktmbuf_trim(p, static_cast<uint16_t>(rte_pktmbuf_data_len(p) - cp[j].len));
      }
    }
  }
}

void Pmd::ct_sweep(uint64_t tsc) {
  ct::Conntrack& ct = dp_.conntrack();
  const uint64_t now_ms = dp_.ct_now_ms(tsc);
  if (is_control_) trackers_online();
  ct.sweep(index_, now_ms, is_control_ ? 1024 : 64);
  dp_.fw_conntrack().sweep(index_, now_ms, is_control_ ? 1024 : 64);
  // Fragments whose datagram never completed: dropped and counted (OVS sends expired ones
  // on as +inv; here they have no action list left to continue with).
  ct.ipf().expire(now_ms, [this](void* h, ct::IpfRelease) {
    rte_pktmbuf_free(static_cast<rte_mbuf*>(h));
    ctr_.drops[static_cast<size_t>(Drop::kCtFragExpired)].add();
  });
  if (is_control_) trackers_offline();
}

}  // namespace gl::dp
