// set_field.hpp — header rewrites of the action executor: set / set_masked on Ethernet,
// IPv4, IPv6, TCP, UDP, SCTP fields and packet metadata, push_vlan and pop_vlan.
//
// Purpose: change a packet in place and keep every checksum right: IPv4 header checksum
// and TCP/UDP/ICMPv6 checksums are updated incrementally (RFC 1624; an IPv4 UDP checksum
// of zero stays zero), SCTP's CRC32-C is recomputed. The layout (offsets from the parser)
// is kept in step when a VLAN tag is pushed or popped.
// A set on a header the packet does not have is ignored, as in OVS (flow prerequisites
// make it impossible for flows that OVS generates).
// Thread-safety: works on one packet owned by the caller. Complexity: O(1) per field,
// O(length) for SCTP.
#pragma once

#include <rte_mbuf.h>

#include <cstdint>
#include <span>

#include "flowtables/packet_parser.hpp"

namespace gl::dp {

struct PacketMd;

// `attr`: the payload of OVS_ACTION_ATTR_SET / _SET_MASKED, i.e. one nested
// OVS_KEY_ATTR_* (validated: sizes are right; for masked sets the value is followed by
// the mask and has no bits outside it).
void apply_set(rte_mbuf* m, PacketMd& md, flow::PacketLayout& lay, std::span<const uint8_t> attr,
               bool masked);

// Pushes an 802.1Q/802.1ad tag. `tpid` and `tci` in network order; the CFI bit ODP sets
// in tci to mean "present" is cleared on the wire. False when there is no headroom.
bool push_vlan(rte_mbuf* m, flow::PacketLayout& lay, uint16_t tpid, uint16_t tci);

// Pops the outermost tag; a no-op on an untagged packet.
void pop_vlan(rte_mbuf* m, flow::PacketLayout& lay);

// CRC32-C (Castagnoli), as SCTP uses it: initial ~0, final complement.
uint32_t crc32c(const uint8_t* data, size_t len);

}  // namespace gl::dp
