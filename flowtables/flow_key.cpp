#include "flowtables/flow_key.hpp"

namespace gl::flow {

FlowMask exact_mask() {
  FlowMask m = zero_key();
  m.in_port = m.recirc_id = m.dp_hash = m.pkt_mark = m.priority = 0xffffffffu;
  m.ct_mark = 0xffffffffu;
  m.ct_zone = 0xffff;
  m.ct_state = 0xff;
  std::memset(m.ct_label, 0xff, sizeof m.ct_label);
  std::memset(m.eth_dst, 0xff, 6);
  std::memset(m.eth_src, 0xff, 6);
  m.eth_type = 0xffff;
  m.vlan_tci = 0xffff;
  m.ipv4_src = m.ipv4_dst = 0xffffffffu;
  std::memset(m.ipv6_src, 0xff, 16);
  std::memset(m.ipv6_dst, 0xff, 16);
  m.ipv6_label = 0xffffffffu;
  m.nw_proto = m.nw_tos = m.nw_ttl = m.nw_frag = 0xff;
  m.tp_src = m.tp_dst = m.tcp_flags = 0xffff;
  std::memset(m.arp_sha, 0xff, 6);
  std::memset(m.arp_tha, 0xff, 6);
  m.arp_op = 0xffff;
  m.ct_nw_src = m.ct_nw_dst = 0xffffffffu;
  std::memset(m.ct_ipv6_src, 0xff, 16);
  std::memset(m.ct_ipv6_dst, 0xff, 16);
  m.ct_tp_src = m.ct_tp_dst = 0xffff;
  m.ct_nw_proto = 0xff;
  return m;
}

}  // namespace gl::flow
