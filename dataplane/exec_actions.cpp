// exec_actions.cpp — the action executor: runs a validated ODP action list on one packet
// (output, userspace, set/set_masked, VLAN push/pop, recirc, hash, sample, clone). Batched
// stages (ESP: esp_stage.cpp) run before it on a whole flow run; see pmd.hpp.
#include <linux/openvswitch.h>

#include <cstring>

#include "dataplane/api/odp_actions.hpp"
#include "dataplane/pmd.hpp"
#include "dataplane/pmd_internal.hpp"
#include "dataplane/set_field.hpp"

namespace gl::dp {

using detail::read_u32;

namespace {

// Calls fn(type, payload, last) for each action of a validated list (odp::ActionList,
// plus whether it is the last one: the action that may consume the packet itself).
template <typename Fn>
inline void for_each_action(std::span<const uint8_t> blob, Fn&& fn) {
  const odp::ActionList list(blob);
  for (auto it = list.begin(), end = list.end(); it != end;) {
    const odp::ActionView a = *it;
    ++it;
    fn(a.type, a.payload, it == end);
  }
}

// The L4 hash of OVS_HASH_ALG_L4 / _SYM_L4 over the packet's key.
inline uint32_t l4_hash(const flow::FlowKey& k, uint32_t basis, bool symmetric) {
  uint64_t a = k.ipv4_src, b = k.ipv4_dst;
  uint64_t pa = k.tp_src, pb = k.tp_dst;
  uint64_t a6[2], b6[2];
  std::memcpy(a6, k.ipv6_src, 16);
  std::memcpy(b6, k.ipv6_dst, 16);
  a ^= a6[0] ^ a6[1];
  b ^= b6[0] ^ b6[1];
  if (symmetric && (a > b || (a == b && pa > pb))) {
    std::swap(a, b);
    std::swap(pa, pb);
  }
  uint32_t h = flow::hash_add64(basis, a);
  h = flow::hash_add64(h, b);
  h = flow::hash_add64(h, (pa << 16) | pb | (uint64_t(k.nw_proto) << 32));
  h = flow::hash_finish(h);
  return h != 0 ? h : 1;  // 0 means "no hash computed"
}

}  // namespace

void Pmd::exec_actions(rte_mbuf* m, PacketMd& md, const flow::FlowKey& key, flow::PacketLayout& lay,
                       std::span<const uint8_t> actions, bool steal, int depth,
                       const CtActions* cts) {
  bool consumed = false;  // m was handed on (output, recirc, upcall) or freed
  bool modified = false;  // a set/VLAN action changed the headers `key` describes
  for_each_action(actions, [&](uint16_t type, std::span<const uint8_t> p, bool last) {
    if (consumed) return;
    const bool take = steal && last;  // this action may use m itself
    switch (type) {
      case OVS_ACTION_ATTR_OUTPUT: {
        uint32_t port_no = read_u32(p);
        if (take) {
          output(m, port_no, md.in_port);
          consumed = true;
        } else if (rte_mbuf* c = rte_pktmbuf_copy(m, dp_.pool(), 0, UINT32_MAX)) {
          output(c, port_no, md.in_port);
        } else {
          ctr_.drops[static_cast<size_t>(Drop::kNoMbuf)].add();
        }
        break;
      }
      case OVS_ACTION_ATTR_USERSPACE: {
        const odp::UserspaceAction u = odp::decode_userspace(p);
        const uint32_t pid = u.pid;
        const std::span<const uint8_t> userdata = u.userdata;
        flow::FlowKey k = key;
        md_to_key(md, k);
        k.pad1 = 0;  // PacketMd::ct_conn
        if (take) {
          upcall(m, k, api::UpcallKind::kAction, pid, userdata);
          consumed = true;
        } else if (rte_mbuf* c = rte_pktmbuf_copy(m, dp_.pool(), 0, UINT32_MAX)) {
          upcall(c, k, api::UpcallKind::kAction, pid, userdata);
        } else {
          ctr_.drops[static_cast<size_t>(Drop::kNoMbuf)].add();
        }
        break;
      }
      case OVS_ACTION_ATTR_SET:
      case OVS_ACTION_ATTR_SET_MASKED: {
        apply_set(m, md, lay, p, type == OVS_ACTION_ATTR_SET_MASKED);
        uint16_t key_type = 0;
        if (p.size() >= 4) std::memcpy(&key_type, p.data() + 2, 2);
        if (key_type != OVS_KEY_ATTR_SKB_MARK && key_type != OVS_KEY_ATTR_PRIORITY) {
          modified = true;
          // New addresses or ports: a later ct() looks the connection up again (OVS
          // forgets the cached connection when it rewrites L3/L4 headers).
          if (key_type != OVS_KEY_ATTR_ETHERNET) md.ct_conn = 0;
        }
        break;
      }
      case OVS_ACTION_ATTR_CT: {
        const ct::Action* ca = cts != nullptr ? cts->find(p.data()) : nullptr;
        if (ca == nullptr) break;  // cannot happen: every ct() was decoded with its list
        // The actions after this one: what a datagram's other fragments run when this
        // packet completes it.
        const uint8_t* next = p.data() + odp::attr_align(p.size());
        const std::span<const uint8_t> rest(
            next, static_cast<size_t>(actions.data() + actions.size() -
                                      std::min(next, actions.data() + actions.size())));
        bool natted = false;
        rte_mbuf* mm = m;
        flow::FlowKey k2 = key;  // the tracker reads the metadata from the key's words
        md_to_key(md, k2);
        if (!modified) {
          ct_run(*ca, &mm, &k2, &lay, 1, &natted, rest, cts, depth);
        } else {  // the tracker reads headers: parse what the actions made of the packet
          flow::PacketLayout lay2;
          flow::parse_packet(rte_pktmbuf_mtod(m, const uint8_t*), rte_pktmbuf_data_len(m), k2,
                             lay2);
          ct_run(*ca, &mm, &k2, &lay2, 1, &natted, rest, cts, depth);
        }
        key_to_md(k2, md);
        modified |= natted;
        if (mm == nullptr) consumed = true;  // a fragment: the reassembly holds it
        break;
      }
      case OVS_ACTION_ATTR_CT_CLEAR:
        md.ct_state = 0;
        md.ct_zone = 0;
        md.ct_mark = 0;
        md.ct_conn = 0;
        std::memset(md.ct_label, 0, sizeof md.ct_label);
        std::memset(&md.ct_nw_src, 0, kMdHead);  // ct_orig_tuple
        break;
      case OVS_ACTION_ATTR_PUSH_VLAN: {
        ovs_action_push_vlan pv;
        std::memcpy(&pv, p.data(), sizeof pv);
        modified = true;
        if (!push_vlan(m, lay, pv.vlan_tpid, pv.vlan_tci)) {
          drop(m, Drop::kPushVlanNoRoom);
          consumed = true;
        }
        break;
      }
      case OVS_ACTION_ATTR_POP_VLAN:
        pop_vlan(m, lay);
        modified = true;
        break;
      case OVS_ACTION_ATTR_RECIRC: {
        md.recirc_id = read_u32(p);
        rte_mbuf* r = take ? m : rte_pktmbuf_copy(m, dp_.pool(), 0, UINT32_MAX);
        if (take) consumed = true;
        if (r == nullptr) {
          ctr_.drops[static_cast<size_t>(Drop::kNoMbuf)].add();
        } else if (recirc_ == nullptr || recirc_->n == 2 * kBatch) {
          drop(r, Drop::kRecircOverflow);
        } else {
          recirc_->pkts[recirc_->n] = r;
          recirc_->md[recirc_->n++] = md;
        }
        break;
      }
      case OVS_ACTION_ATTR_HASH: {
        ovs_action_hash h;
        std::memcpy(&h, p.data(), sizeof h);
        md.dp_hash = l4_hash(key, h.hash_basis, h.hash_alg == 1 /* OVS_HASH_ALG_SYM_L4 */);
        break;
      }
      case OVS_ACTION_ATTR_SAMPLE:
      case OVS_ACTION_ATTR_CLONE: {
        std::span<const uint8_t> nested = p;
        if (type == OVS_ACTION_ATTR_SAMPLE) {
          const odp::SampleAction sa = odp::decode_sample(p);
          const uint32_t prob = sa.probability;
          nested = sa.actions;
          if (prob == 0 || (prob != UINT32_MAX && random32() >= prob)) break;
        }
        if (depth >= 4) break;  // validation bounds nesting; belt and braces
        if (take) {
          exec_actions(m, md, key, lay, nested, true, depth + 1, cts);
          consumed = true;
        } else if (rte_mbuf* c = rte_pktmbuf_copy(m, dp_.pool(), 0, UINT32_MAX)) {
          PacketMd md2 = md;
          flow::PacketLayout lay2 = lay;
          exec_actions(c, md2, key, lay2, nested, true, depth + 1, cts);
        } else {
          ctr_.drops[static_cast<size_t>(Drop::kNoMbuf)].add();
        }
        break;
      }
      default:
        break;  // validation refuses anything else
    }
  });
  if (!consumed && steal) drop(m, Drop::kActionDrop);
}

}  // namespace gl::dp
