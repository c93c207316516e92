// frame.hpp — the frames gl-pktgen sends and the signature they carry.
//
// Purpose: FlowSet enumerates the flows of a profile (5-tuple ranges, source port
// fastest) once at start-up and maps a received tuple back to its flow; FrameWriter
// writes Ethernet [+802.1Q] + IPv4 + UDP/ICMP echo/TCP frames from a prebuilt L2
// template into a caller's buffer, with every checksum valid; Signature is the 14 bytes
// after the UDP/ICMP header that make a packet ours: magic "GL", run id, stream id,
// 32-bit sequence number and the low 32 bits of the TX time in ns. The payload after
// the signature is never written: the TX pool's data rooms are zeroed once, so the
// checksums only cover header and signature. No DPDK dependency.
// Thread-safety: FlowSet and FrameWriter are immutable after construction; the write
// functions may be called from any thread. Complexity: O(1) per frame.
#pragma once

#include <arpa/inet.h>

#include <cstdint>
#include <cstring>
#include <optional>
#include <vector>

#include "flowtables/bytes.hpp"
#include "tools/pktgen/options.hpp"

namespace gl::pktgen {

inline constexpr uint64_t kMaxFlows = uint64_t{1} << 20;
inline constexpr uint16_t kEthHdr = 14;
inline constexpr uint16_t kVlanHdr = 4;
inline constexpr uint16_t kIpHdr = 20;
inline constexpr uint16_t kL4Hdr = 8;  // UDP and ICMP echo
inline constexpr uint16_t kTcpHdr = 20;
inline constexpr uint16_t kFcs = 4;
inline constexpr uint16_t kMinFrameData = 60;  // 64-byte minimum frame without FCS

inline constexpr uint16_t kEthTypeIpv4 = 0x0800;
inline constexpr uint16_t kEthTypeVlan = 0x8100;
inline constexpr uint8_t kProtoIcmp = 1;
inline constexpr uint8_t kProtoTcp = 6;
inline constexpr uint8_t kProtoUdp = 17;

inline constexpr uint8_t kTcpFin = 0x01;
inline constexpr uint8_t kTcpSyn = 0x02;
inline constexpr uint8_t kTcpRst = 0x04;
inline constexpr uint8_t kTcpAck = 0x10;

// Host-order fields of the little-endian signature (x86 and ARM64 alike).
struct __attribute__((packed)) Signature {
  uint16_t magic;
  uint16_t run;
  uint16_t stream;
  uint32_t seq;
  uint32_t tx_ns;
};
static_assert(sizeof(Signature) == 14);
inline constexpr uint16_t kMagic = 0x4c47;  // bytes 'G' 'L' on the wire

// Smallest frame (with FCS) that holds the headers and the signature.
unsigned min_frame_size(Proto p, bool vlan);

// One flow, network byte order, ready to copy into headers.
struct FlowEntry {
  uint32_t src_ip;
  uint32_t dst_ip;
  uint16_t src_port;
  uint16_t dst_port;
};

class FlowSet {
 public:
  explicit FlowSet(const Options& o);
  uint64_t size() const { return flows_.size(); }
  const FlowEntry& operator[](uint64_t i) const { return flows_[i]; }
  // The flow whose client→server tuple this is (network order arguments), if any.
  std::optional<uint64_t> index(uint32_t src_ip, uint32_t dst_ip, uint16_t src_port,
                                uint16_t dst_port) const;

 private:
  std::vector<FlowEntry> flows_;
  Range sip_, dip_, sp_, dp_;
};

// Internet checksum over big-endian 16-bit words (n even).
inline uint32_t csum_add(uint32_t sum, const uint8_t* p, unsigned n) {
  for (unsigned i = 0; i < n; i += 2) sum += (uint32_t{p[i]} << 8) | p[i + 1];
  return sum;
}
inline uint16_t csum_fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

class FrameWriter {
 public:
  FrameWriter(const Mac& src, const Mac& dst, std::optional<uint16_t> vlan, uint8_t pcp);

  uint16_t l2_len() const { return l2_len_; }
  // Offset of the signature in a UDP/ICMP frame.
  uint16_t sig_offset() const { return l2_len_ + kIpHdr + kL4Hdr; }

  // UDP or ICMP echo request of `len` bytes (frame without FCS), client → server.
  void write_datagram(uint8_t* p, Proto proto, uint16_t len, const FlowEntry& f,
                      const Signature& sig) const {
    std::memcpy(p, l2_[0], l2_len_);
    uint8_t* ip = p + l2_len_;
    const uint16_t ip_len = static_cast<uint16_t>(len - l2_len_);
    const uint8_t nw_proto = proto == Proto::kIcmp ? kProtoIcmp : kProtoUdp;
    write_ipv4(ip, ip_len, nw_proto, f.src_ip, f.dst_ip, 0);
    uint8_t* l4 = ip + kIpHdr;
    std::memcpy(l4 + kL4Hdr, &sig, sizeof sig);
    if (nw_proto == kProtoUdp) {
      const uint16_t l4_len = static_cast<uint16_t>(ip_len - kIpHdr);
      std::memcpy(l4, &f.src_port, 2);
      std::memcpy(l4 + 2, &f.dst_port, 2);
      flow::store_be16(l4 + 4, l4_len);
      flow::store_be16(l4 + 6, 0);
      uint32_t s = csum_add(0, ip + 12, 8);  // pseudo header: addresses,
      s += nw_proto + uint32_t{l4_len};      // protocol and length
      s = csum_add(s, l4, kL4Hdr + sizeof sig);
      uint16_t c = csum_fold(s);
      flow::store_be16(l4 + 6, c == 0 ? 0xffff : c);
    } else {
      l4[0] = 8;  // echo request
      l4[1] = 0;
      flow::store_be16(l4 + 2, 0);
      std::memcpy(l4 + 4, &f.src_port, 2);  // identifier
      flow::store_be16(l4 + 6, static_cast<uint16_t>(sig.seq));
      flow::store_be16(l4 + 2, csum_fold(csum_add(0, l4, kL4Hdr + sizeof sig)));
    }
  }

  // A TCP segment without payload, padded to the minimum frame; `reverse` sends it
  // server → client (addresses, ports and MACs swapped). Returns the frame length.
  uint16_t write_tcp(uint8_t* p, bool reverse, const FlowEntry& f, uint8_t flags, uint32_t seq,
                     uint32_t ack) const {
    std::memcpy(p, l2_[reverse ? 1 : 0], l2_len_);
    uint8_t* ip = p + l2_len_;
    write_ipv4(ip, kIpHdr + kTcpHdr, kProtoTcp, reverse ? f.dst_ip : f.src_ip,
               reverse ? f.src_ip : f.dst_ip, 0x4000);
    uint8_t* t = ip + kIpHdr;
    std::memcpy(t, reverse ? &f.dst_port : &f.src_port, 2);
    std::memcpy(t + 2, reverse ? &f.src_port : &f.dst_port, 2);
    flow::store_be32(t + 4, seq);
    flow::store_be32(t + 8, ack);
    t[12] = 5 << 4;
    t[13] = flags;
    flow::store_be16(t + 14, 65535);  // window
    flow::store_be16(t + 16, 0);
    flow::store_be16(t + 18, 0);
    uint32_t s = csum_add(0, ip + 12, 8);
    s += kProtoTcp + uint32_t{kTcpHdr};
    flow::store_be16(t + 16, csum_fold(csum_add(s, t, kTcpHdr)));
    const uint16_t len = static_cast<uint16_t>(l2_len_ + kIpHdr + kTcpHdr);
    if (len < kMinFrameData) {
      std::memset(p + len, 0, kMinFrameData - len);
      return kMinFrameData;
    }
    return len;
  }

 private:
  static void write_ipv4(uint8_t* ip, uint16_t total, uint8_t proto, uint32_t src_be,
                         uint32_t dst_be, uint16_t frag) {
    ip[0] = 0x45;
    ip[1] = 0;
    flow::store_be16(ip + 2, total);
    flow::store_be16(ip + 4, 0);
    flow::store_be16(ip + 6, frag);
    ip[8] = 64;
    ip[9] = proto;
    flow::store_be16(ip + 10, 0);
    std::memcpy(ip + 12, &src_be, 4);
    std::memcpy(ip + 16, &dst_be, 4);
    flow::store_be16(ip + 10, csum_fold(csum_add(0, ip, kIpHdr)));
  }

  uint8_t l2_[2][kEthHdr + kVlanHdr];  // [0] client → server, [1] server → client
  uint16_t l2_len_;
};

// What the receive path needs from a frame; `ok` false when it is not IPv4.
struct Parsed {
  bool ok = false;
  uint8_t proto = 0;
  const uint8_t* ip = nullptr;
  const uint8_t* l4 = nullptr;
  uint16_t l4_avail = 0;  // bytes of L4 header + payload present in the buffer
};

inline Parsed parse_frame(const uint8_t* p, uint32_t len) {
  Parsed r;
  if (len < kEthHdr + kIpHdr) return r;
  uint16_t type = flow::load_be16(p + 12);
  uint32_t off = kEthHdr;
  if (type == kEthTypeVlan) {
    if (len < kEthHdr + kVlanHdr + kIpHdr) return r;
    type = flow::load_be16(p + 16);
    off += kVlanHdr;
  }
  if (type != kEthTypeIpv4 || (p[off] >> 4) != 4) return r;
  const uint32_t ihl = (p[off] & 15u) * 4;
  if (ihl < kIpHdr || off + ihl > len) return r;
  r.ok = true;
  r.proto = p[off + 9];
  r.ip = p + off;
  r.l4 = p + off + ihl;
  r.l4_avail = static_cast<uint16_t>(len - off - ihl);
  return r;
}

}  // namespace gl::pktgen
