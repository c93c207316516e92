// pmd_internal.hpp — helpers shared by the PMD's stage files (pmd.cpp, exec_actions.cpp,
// esp_stage.cpp, ct_stage.cpp, fw_stage.cpp). Not part of any public interface.
// Thread-safety: pure functions and constants. Complexity: O(1).
#pragma once

#include <linux/openvswitch.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <span>

#include <rte_mbuf.h>

#include "dataplane/api/odp_actions.hpp"
#include "dataplane/conntrack/conntrack.hpp"

namespace gl::dp::detail {

inline uint32_t read_u32(std::span<const uint8_t> p) {
  uint32_t v = 0;
  if (p.size() >= 4) std::memcpy(&v, p.data(), 4);
  return v;
}

// The action list after its first action.
inline std::span<const uint8_t> after_first(std::span<const uint8_t> blob) {
  uint16_t len = 0;
  std::memcpy(&len, blob.data(), 2);
  size_t step = std::min<size_t>(odp::attr_align(len), blob.size());
  return blob.subspan(step);
}

constexpr uint16_t kEthLen = 14;
constexpr uint8_t kIpProtoEsp = 50;
constexpr uint16_t kEthTypeIpv4Be = 0x0008;  // 0x0800 in network order, read little-endian
constexpr uint16_t kEthTypeIpv6Be = 0xdd86;
// recirc(0): what follows the decryption of an ESP port's packet.
inline constexpr odp::U32Action kRecircZeroAction = odp::u32_action(OVS_ACTION_ATTR_RECIRC, 0);
inline constexpr std::span<const uint8_t> kRecircZero = kRecircZeroAction.span();

// The checksums the port (a NIC, vhost) verified, as the tracker takes them
// (ct::Packet::csum_good): it does not check those again (OVS does the same). GOOD, and
// NONE: "the checksum in the packet is not correct, but the data's integrity is verified"
// (a guest's offloaded checksum, left partial, that vhost received intact). BAD and
// UNKNOWN: the tracker computes it (and finds a bad one bad).
inline uint8_t csum_good(const rte_mbuf* m) {
  const uint64_t ol = m->ol_flags;
  const uint64_t l3 = ol & RTE_MBUF_F_RX_IP_CKSUM_MASK;
  const uint64_t l4 = ol & RTE_MBUF_F_RX_L4_CKSUM_MASK;
  return static_cast<uint8_t>(
      (l3 == RTE_MBUF_F_RX_IP_CKSUM_GOOD || l3 == RTE_MBUF_F_RX_IP_CKSUM_NONE ? ct::kCsumGoodL3
                                                                              : 0) |
      (l4 == RTE_MBUF_F_RX_L4_CKSUM_GOOD || l4 == RTE_MBUF_F_RX_L4_CKSUM_NONE ? ct::kCsumGoodL4
                                                                              : 0));
}

}  // namespace gl::dp::detail
