#include "tools/pktgen/frame.hpp"

namespace gl::pktgen {

unsigned min_frame_size(Proto p, bool vlan) {
  const unsigned l4 = p == Proto::kTcp ? kTcpHdr : kL4Hdr + sizeof(Signature);
  const unsigned data = kEthHdr + (vlan ? kVlanHdr : 0) + kIpHdr + l4;
  return (data < kMinFrameData ? kMinFrameData : data) + kFcs;
}

FlowSet::FlowSet(const Options& o)
    : sip_(o.src_ip), dip_(o.dst_ip), sp_(o.src_port), dp_(o.dst_port) {
  flows_.resize(o.flows);
  for (uint64_t i = 0; i < o.flows; ++i) {
    uint64_t t = i;
    const uint64_t sp = sp_.lo + t % sp_.size();
    t /= sp_.size();
    const uint64_t dp = dp_.lo + t % dp_.size();
    t /= dp_.size();
    const uint64_t si = sip_.lo + t % sip_.size();
    t /= sip_.size();
    const uint64_t di = dip_.lo + t % dip_.size();
    flows_[i] = FlowEntry{htonl(static_cast<uint32_t>(si)), htonl(static_cast<uint32_t>(di)),
                          htons(static_cast<uint16_t>(sp)), htons(static_cast<uint16_t>(dp))};
  }
}

std::optional<uint64_t> FlowSet::index(uint32_t src_ip, uint32_t dst_ip, uint16_t src_port,
                                       uint16_t dst_port) const {
  const uint64_t si = ntohl(src_ip), di = ntohl(dst_ip);
  const uint64_t sp = ntohs(src_port), dp = ntohs(dst_port);
  if (si < sip_.lo || si > sip_.hi || di < dip_.lo || di > dip_.hi || sp < sp_.lo || sp > sp_.hi ||
      dp < dp_.lo || dp > dp_.hi) {
    return std::nullopt;
  }
  using U128 = unsigned __int128;  // the product of four ranges may exceed 64 bits
  const U128 i =
      ((U128{di - dip_.lo} * sip_.size() + (si - sip_.lo)) * dp_.size() + (dp - dp_.lo)) *
          sp_.size() +
      (sp - sp_.lo);
  if (i >= flows_.size()) return std::nullopt;
  return static_cast<uint64_t>(i);
}

FrameWriter::FrameWriter(const Mac& src, const Mac& dst, std::optional<uint16_t> vlan,
                         uint8_t pcp) {
  for (int dir = 0; dir < 2; ++dir) {
    uint8_t* e = l2_[dir];
    std::memcpy(e, dir == 0 ? dst.data() : src.data(), 6);
    std::memcpy(e + 6, dir == 0 ? src.data() : dst.data(), 6);
    if (vlan) {
      flow::store_be16(e + 12, kEthTypeVlan);
      flow::store_be16(e + 14, static_cast<uint16_t>((pcp << 13) | *vlan));
      flow::store_be16(e + 16, kEthTypeIpv4);
    } else {
      flow::store_be16(e + 12, kEthTypeIpv4);
    }
  }
  l2_len_ = vlan ? kEthHdr + kVlanHdr : kEthHdr;
}

}  // namespace gl::pktgen
