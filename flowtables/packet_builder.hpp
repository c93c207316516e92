// packet_builder.hpp — a fluent builder of Ethernet frames for unit tests, integration
// tests and benchmarks (Katran-style test tables), plus MAC/IP text parsers.
//
//   auto pkt = PacketBuilder().eth("02:00:00:00:00:01", "02:00:00:00:00:02").vlan(10, 3)
//                  .ipv4("10.0.0.1", "10.0.0.2").ttl(64).udp(1234, 80).payload(18).build();
//
// Layers: Ethernet (+ any number of VLAN tags, or 802.3 LLC / LLC-SNAP), one of IPv4 /
// IPv6 (+ extension headers) / ARP, one of TCP / UDP / SCTP / ICMP / ICMPv6, then a raw
// payload. Setters may be called in any order; the last call of a layer kind wins.
// build() computes lengths (802.3 length, IPv4 total length, IPv6 payload length, UDP
// length) and checksums (IPv4 header, TCP, UDP, ICMP, ICMPv6 with its pseudo header,
// SCTP CRC32c) unless an escape hatch overrides them; escape hatches write raw, possibly
// inconsistent values for malformed-packet tests; truncate() cuts the finished frame.
// Numeric arguments are host order; addresses from parse_ipv4() are network order.
//
// Text forms that do not parse are programmer errors: the builder prints them and aborts.
//
// Thread-safety: a builder is a plain value; build() is const. Complexity: O(frame size).
// Not for the fast path (it allocates).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace gl::flow {

using MacAddr = std::array<uint8_t, 6>;
using Ipv6Addr = std::array<uint8_t, 16>;

// "aa:bb:cc:dd:ee:ff" (or with '-').
std::optional<MacAddr> parse_mac(std::string_view text);
// Dotted quad "10.0.0.1" → the address in network order (as FlowKey::ipv4_src).
std::optional<uint32_t> parse_ipv4(std::string_view text);
// RFC 4291 text: "2001:db8::1", "::", "::ffff:10.0.0.1".
std::optional<Ipv6Addr> parse_ipv6(std::string_view text);

// Like the parsers above, but abort with a message on bad text (for test literals).
MacAddr mac(std::string_view text);
uint32_t ipv4_addr(std::string_view text);
Ipv6Addr ipv6_addr(std::string_view text);

class PacketBuilder {
 public:
  PacketBuilder();

  // ---- L2 ----
  PacketBuilder& eth(const MacAddr& src, const MacAddr& dst);
  PacketBuilder& eth(std::string_view src, std::string_view dst);
  // Appends a tag (outermost first): TCI = pcp << 13 | dei << 12 | vid.
  PacketBuilder& vlan(uint16_t vid, uint8_t pcp = 0, uint16_t tpid = 0x8100, bool dei = false);
  // Raw EtherType (or 802.3 length) after the tags, instead of the one implied by L3.
  PacketBuilder& ether_type(uint16_t type);
  // 802.3 frame: length field (computed) + LLC header.
  PacketBuilder& llc(uint8_t dsap = 0x42, uint8_t ssap = 0x42, uint8_t control = 0x03);
  // 802.3 frame: length field + LLC/SNAP (aa aa 03 00 00 00) + `snap_type` (default: the
  // EtherType implied by L3).
  PacketBuilder& llc_snap(std::optional<uint16_t> snap_type = std::nullopt);

  // ---- IPv4 ----
  PacketBuilder& ipv4(uint32_t src, uint32_t dst);  // network order
  PacketBuilder& ipv4(std::string_view src, std::string_view dst);
  PacketBuilder& ip_id(uint16_t id);
  PacketBuilder& df(bool on = true);
  PacketBuilder& mf(bool on = true);
  PacketBuilder& frag_offset(uint16_t units_of_8);
  PacketBuilder& ipv4_options(std::span<const uint8_t> options);  // padded to 4 with EOL

  // ---- IPv6 ----
  PacketBuilder& ipv6(const Ipv6Addr& src, const Ipv6Addr& dst);
  PacketBuilder& ipv6(std::string_view src, std::string_view dst);
  PacketBuilder& flow_label(uint32_t label);
  // Extension headers, in the order called. Sizes are whole header bytes (multiple of 8
  // for hop-by-hop / routing / destination options, multiple of 4 and >= 12 for AH).
  PacketBuilder& ipv6_hop_by_hop(size_t bytes = 8);
  PacketBuilder& ipv6_dest_opts(size_t bytes = 8);
  PacketBuilder& ipv6_routing(size_t bytes = 8);
  PacketBuilder& ipv6_fragment(uint16_t offset_units_of_8, bool more, uint32_t id = 1);
  PacketBuilder& ipv6_ah(size_t bytes = 24);
  // Any header: `bytes` written as given except byte 0 (next header, chained by build()).
  PacketBuilder& ipv6_ext_raw(uint8_t type, std::span<const uint8_t> bytes);

  // ---- IPv4 + IPv6 ----
  PacketBuilder& ttl(uint8_t ttl);  // IPv4 TTL / IPv6 hop limit (default 64)
  PacketBuilder& tos(uint8_t tos);  // IPv4 TOS / IPv6 traffic class
  // IP protocol / last next header, instead of the one implied by L4 (default without
  // L4: 253 for IPv4, 59 No Next Header for IPv6).
  PacketBuilder& ip_proto(uint8_t proto);

  // ---- ARP ----
  PacketBuilder& arp(uint16_t op, const MacAddr& sha, uint32_t spa, const MacAddr& tha,
                     uint32_t tpa);
  PacketBuilder& arp_request(std::string_view sha, std::string_view spa, std::string_view tpa);
  PacketBuilder& arp_reply(std::string_view sha, std::string_view spa, std::string_view tha,
                           std::string_view tpa);

  // ---- L4 ----
  PacketBuilder& tcp(uint16_t sport, uint16_t dport);  // flags default SYN
  PacketBuilder& tcp_flags(uint16_t flags);            // kTcp* bits (9 used)
  PacketBuilder& tcp_seq(uint32_t seq);
  PacketBuilder& tcp_ack(uint32_t ack);
  PacketBuilder& tcp_window(uint16_t window);
  PacketBuilder& tcp_options(std::span<const uint8_t> options);  // padded to 4 with EOL
  PacketBuilder& udp(uint16_t sport, uint16_t dport);
  PacketBuilder& sctp(uint16_t sport, uint16_t dport, uint32_t vtag = 0);
  PacketBuilder& icmp(uint8_t type, uint8_t code, uint32_t rest = 0);
  PacketBuilder& icmp_echo(uint16_t id, uint16_t seq, bool reply = false);
  PacketBuilder& icmpv6(uint8_t type, uint8_t code, uint32_t rest = 0);
  PacketBuilder& icmpv6_echo(uint16_t id, uint16_t seq, bool reply = false);

  // ---- payload and frame ----
  PacketBuilder& payload(size_t n);  // n pattern bytes (i & 0xff), appended
  PacketBuilder& payload(std::span<const uint8_t> bytes);
  PacketBuilder& pad_to(size_t frame_len);  // zero Ethernet padding up to frame_len

  // ---- escape hatches (malformed packets) ----
  PacketBuilder& ip_version(uint8_t version);   // IPv4 or IPv6 version nibble
  PacketBuilder& ihl(uint8_t words);            // IPv4 IHL field (header bytes unchanged)
  PacketBuilder& total_length(uint16_t len);    // IPv4 total length field
  PacketBuilder& ip_checksum(uint16_t csum);    // IPv4 header checksum field (host order)
  PacketBuilder& payload_length(uint16_t len);  // IPv6 payload length field
  PacketBuilder& tcp_data_offset(uint8_t words);
  PacketBuilder& udp_length(uint16_t len);
  PacketBuilder& l4_checksum(uint16_t csum);  // TCP/UDP/SCTP/ICMP(v6) field (host order)
  PacketBuilder& no_udp_checksum();           // UDP checksum 0 ("none")
  PacketBuilder& truncate(size_t frame_len);  // cut the finished frame

  std::vector<uint8_t> build() const;

 private:
  enum class L3 : uint8_t { kNone, kIpv4, kIpv6, kArp };
  enum class L4 : uint8_t { kNone, kTcp, kUdp, kSctp, kIcmp, kIcmpv6 };
  enum class Llc : uint8_t { kNone, kLlc, kSnap };
  struct Tag {
    uint16_t tpid;
    uint16_t tci;
  };
  struct Ext {
    uint8_t type;
    std::vector<uint8_t> bytes;
  };

  std::vector<uint8_t> build_l4(uint8_t& proto) const;

  // L2
  MacAddr src_mac_, dst_mac_;
  std::vector<Tag> tags_;
  std::optional<uint16_t> ether_type_;
  Llc llc_ = Llc::kNone;
  std::array<uint8_t, 3> llc_hdr_{};
  std::optional<uint16_t> snap_type_;
  // L3
  L3 l3_ = L3::kNone;
  uint32_t ip4_src_ = 0, ip4_dst_ = 0;
  Ipv6Addr ip6_src_{}, ip6_dst_{};
  uint8_t ttl_ = 64, tos_ = 0;
  uint16_t ip_id_ = 1;
  bool df_ = false, mf_ = false;
  uint16_t frag_offset_ = 0;
  std::vector<uint8_t> ip4_options_;
  uint32_t flow_label_ = 0;
  std::vector<Ext> ext_;
  std::optional<uint8_t> ip_proto_;
  uint16_t arp_op_ = 1;
  MacAddr arp_sha_{}, arp_tha_{};
  uint32_t arp_spa_ = 0, arp_tpa_ = 0;
  // L4
  L4 l4_ = L4::kNone;
  uint16_t sport_ = 0, dport_ = 0;
  uint16_t tcp_flags_ = 0x002;
  uint32_t tcp_seq_ = 1, tcp_ack_ = 0;
  uint16_t tcp_window_ = 65535;
  std::vector<uint8_t> tcp_options_;
  uint32_t sctp_vtag_ = 0;
  uint8_t icmp_type_ = 0, icmp_code_ = 0;
  uint32_t icmp_rest_ = 0;
  bool udp_csum_ = true;
  // payload, frame
  std::vector<uint8_t> payload_;
  size_t pad_to_ = 0;
  std::optional<size_t> truncate_;
  // overrides
  std::optional<uint8_t> ip_version_, ihl_, tcp_doff_;
  std::optional<uint16_t> total_length_, ip_csum_, payload_length_, udp_length_, l4_csum_;
};

}  // namespace gl::flow
