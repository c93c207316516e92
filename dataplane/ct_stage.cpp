// ct_stage.cpp — the PMD's conntrack stage: OVS's ct() on a run of packets of one flow as
// one tracker batch (keys, hashes and prefetches for the run, then lookups), and the
// per-context upkeep (expiry, reclamation). The tracker itself is dataplane/conntrack/.
#include <cstring>

#include "dataplane/pmd.hpp"

namespace gl::dp {

namespace {

inline void md_to_ct(const PacketMd& m, ct::Md& c) {
  c.state = m.ct_state;
  c.zone = m.ct_zone;
  c.mark = m.ct_mark;
  std::memcpy(c.label, m.ct_label, 16);
  c.conn = m.ct_conn;
}

inline void ct_to_md(const ct::Md& c, PacketMd& m) {
  m.ct_state = c.state;
  m.ct_zone = c.zone;
  m.ct_mark = c.mark;
  std::memcpy(m.ct_label, c.label, 16);
  m.ct_conn = c.conn;
}

}  // namespace

void Pmd::ct_run(const ct::Action& a, rte_mbuf* const* pkts, PacketMd* md,
                 const flow::FlowKey* keys, const flow::PacketLayout* lay, uint16_t n,
                 bool* rewritten) {
  ct::Md cmd[kBatch];
  ct::Packet cp[kBatch];
  ct::Conntrack& ct = dp_.conntrack();
  if (is_control_) ct.online(ct_slot_);
  for (uint16_t off = 0; off < n; off += kBatch) {
    const uint16_t m = std::min<uint16_t>(kBatch, n - off);
    for (uint16_t i = 0; i < m; ++i) {
      rte_mbuf* p = pkts[off + i];
      md_to_ct(md[off + i], cmd[i]);
      cp[i] = ct::Packet{rte_pktmbuf_mtod(p, uint8_t*), rte_pktmbuf_data_len(p), &keys[off + i],
                         &lay[off + i], &cmd[i]};
    }
    ct.execute(index_, a, cp, m, dp_.ct_now_ms(now_tsc_));
    for (uint16_t i = 0; i < m; ++i) {
      ct_to_md(cmd[i], md[off + i]);
      if (rewritten != nullptr) rewritten[off + i] = cp[i].rewritten;
    }
  }
  if (is_control_) ct.offline(ct_slot_);
}

void Pmd::ct_sweep(uint64_t tsc) {
  ct::Conntrack& ct = dp_.conntrack();
  if (is_control_) {
    ct.online(ct_slot_);
    ct.sweep(index_, dp_.ct_now_ms(tsc), 1024);
    ct.offline(ct_slot_);
  } else {
    ct.sweep(index_, dp_.ct_now_ms(tsc));
  }
}

}  // namespace gl::dp
