// packet_parser.hpp — the packet parser ("miniflow extract"): Ethernet frame → FlowKey.
//
// Purpose: fill the packet fields of a FlowKey (words 6..16: eth_dst .. arp_tha/pad3) from
// a contiguous Ethernet frame, following OVS's miniflow_extract() semantics, and return a
// PacketLayout (header offsets for set-field actions, checksum fix-ups, ESP) and a
// ParseResult that classifies malformed packets. Metadata words 0..5 (in_port, recirc_id,
// dp_hash, pkt_mark, ct_*, priority, ct_label) and 17..22 (ct_orig_tuple) are never
// written: the caller sets them.
//
// Parsed: Ethernet II, 802.3 with LLC (eth_type 0x05ff) and LLC/SNAP (OUI 0: the SNAP
// type, as OVS), one VLAN tag (outer TPID 0x8100 or 0x88a8; a second tag is not parsed:
// eth_type = its TPID, L2 only), ARP/RARP, IPv4, IPv6 with extension headers, TCP, UDP,
// SCTP, ICMP (in IPv4), ICMPv6 (in IPv6). Anything else is L2 only with its eth_type.
// Field conventions are FlowKey's (flow_key.hpp); the OVS-specific ones:
//   * IPv4 fragments: nw_frag = kFragAny (| kFragLater when offset != 0); later
//     fragments have no L4 fields, nw_proto is the IP protocol.
//   * IPv6 fragment header: offset/M (ip6f_offlg) != 0 → kFragAny; offset != 0 →
//     kFragAny|kFragLater, nw_proto = 44 (IPPROTO_FRAGMENT, as OVS and the kernel do) and
//     no L4. An atomic fragment (offset 0, M 0) is not a fragment.
//   * IPv6 extension headers walked: hop-by-hop (0), routing (43), fragment (44),
//     destination options (60), AH (51), at most kMaxIpv6ExtHeaders of them. Any other
//     next header (ESP 50, No Next Header 59, unknown) ends the walk and is nw_proto.
//   * ARP/RARP (htype 1, ptype 0x0800, hlen 6, plen 4 only): ipv4_src/dst = spa/tpa,
//     arp_sha/tha, arp_op = opcode (network order), nw_proto = opcode when <= 255 (else 0,
//     as OVS).
//   * ICMP/ICMPv6: tp_src = htons(type), tp_dst = htons(code); needs 8 bytes of header.
//   * tcp_flags = htons(flags & 0x0fff) (NS..FIN, the reserved bits included as OVS).
//   * L3 is bounded by the IPv4 total length / IPv6 payload length; Ethernet padding
//     after it is never parsed.
//
// What is filled per ParseResult (every field not listed is zero):
//   kOk                     everything the packet carries.
//   kIpv4Truncated, kIpv4BadVersion, kIpv4BadIhl, kIpv4BadTotalLength,
//   kIpv6Truncated, kIpv6BadVersion, kIpv6BadPayloadLength,
//   kArpTruncated, kArpBadFormat
//                           L2 only: eth_dst, eth_src, vlan_tci, eth_type. Layout: vlan_ofs,
//                           l3_ofs (where the bad header starts); no L3 flags.
//   kIpv6BadExtChain        L2 + ipv6_src/dst, ipv6_label, nw_tos, nw_ttl; nw_proto and
//                           nw_frag are 0, no L4. Layout: kLayoutIpv6, l3_len; no l4_ofs.
//   kL4Truncated, kTcpBadOffset
//                           L2 + all L3 fields (incl. nw_proto/nw_frag), no tp_src/tp_dst/
//                           tcp_flags. Layout: l4_ofs/l4_len set, kLayoutL4 clear.
//   kRunt, kVlanTruncated   drops: packet fields zero (kVlanTruncated: eth_dst/eth_src
//                           set); layout all kNoOffset/0.
// The anomalies are forwarded like OVS forwards them (the key says less than the packet
// carries); a stage that must fail closed can test the result.
//
// Thread-safety: pure functions on caller-owned memory; ParseCounters is per PMD.
// Complexity: O(1) per packet — bounded by kMaxIpv6ExtHeaders; never reads past `len`, no
// allocation, exception, lock or log line.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <type_traits>

#include "flowtables/enum_names.hpp"
#include "flowtables/flow_key.hpp"

namespace gl::flow {

// ---- protocol numbers (host order) -----------------------------------------------------

inline constexpr uint16_t kEthTypeIpv4 = 0x0800;
inline constexpr uint16_t kEthTypeArp = 0x0806;
inline constexpr uint16_t kEthTypeRarp = 0x8035;
inline constexpr uint16_t kEthTypeVlan = 0x8100;  // 802.1Q
inline constexpr uint16_t kEthTypeQinQ = 0x88a8;  // 802.1ad
inline constexpr uint16_t kEthTypeIpv6 = 0x86dd;
inline constexpr uint16_t kEthTypeNone = 0x05ff;  // 802.3 frame without an Ethernet type
inline constexpr uint16_t kEthTypeMin = 0x0600;   // below: 802.3 length field

inline constexpr uint8_t kIpProtoIcmp = 1;
inline constexpr uint8_t kIpProtoTcp = 6;
inline constexpr uint8_t kIpProtoUdp = 17;
inline constexpr uint8_t kIpProtoEsp = 50;
inline constexpr uint8_t kIpProtoAh = 51;
inline constexpr uint8_t kIpProtoIcmpv6 = 58;
inline constexpr uint8_t kIpProtoSctp = 132;
inline constexpr uint8_t kIpv6HopByHop = 0;
inline constexpr uint8_t kIpv6Routing = 43;
inline constexpr uint8_t kIpv6Fragment = 44;
inline constexpr uint8_t kIpv6NoNext = 59;
inline constexpr uint8_t kIpv6DestOpts = 60;

// TCP flag bits as they appear in tcp_flags after ntohs().
inline constexpr uint16_t kTcpFin = 0x001;
inline constexpr uint16_t kTcpSyn = 0x002;
inline constexpr uint16_t kTcpRst = 0x004;
inline constexpr uint16_t kTcpPsh = 0x008;
inline constexpr uint16_t kTcpAck = 0x010;
inline constexpr uint16_t kTcpUrg = 0x020;
inline constexpr uint16_t kTcpEce = 0x040;
inline constexpr uint16_t kTcpCwr = 0x080;
inline constexpr uint16_t kTcpNs = 0x100;

// Longest IPv6 extension-header chain walked; a longer one is kIpv6BadExtChain.
inline constexpr uint32_t kMaxIpv6ExtHeaders = 8;

// ---- result ----------------------------------------------------------------------------

enum class ParseResult : uint8_t {
  kOk = 0,
  // Anomalies: forwarded with a partial key (see the table above).
  kIpv4Truncated,         // < 20 bytes, or < IHL * 4 bytes, after the EtherType
  kIpv4BadVersion,        // version != 4
  kIpv4BadIhl,            // IHL < 5
  kIpv4BadTotalLength,    // total length < IHL * 4 or > the bytes present
  kIpv6Truncated,         // < 40 bytes after the EtherType
  kIpv6BadVersion,        // version != 6
  kIpv6BadPayloadLength,  // 40 + payload length > the bytes present
  kIpv6BadExtChain,       // extension header truncated, or more than kMaxIpv6ExtHeaders
  kL4Truncated,           // TCP < 20 / data offset past the end, UDP < 8, SCTP < 12,
                          // ICMP/ICMPv6 < 8 bytes in the IP payload
  kTcpBadOffset,          // TCP data offset < 5
  kArpTruncated,          // ARP/RARP < 28 bytes
  kArpBadFormat,          // ARP/RARP not Ethernet/IPv4 (htype, ptype, hlen, plen)
  // Drops: not a usable frame.
  kRunt,           // < 14 bytes
  kVlanTruncated,  // VLAN TPID without a complete tag + inner EtherType
};

inline constexpr size_t kParseResultCount = 15;

inline constexpr EnumName<ParseResult> kParseResultTable[] = {
    {ParseResult::kOk, "ok"},
    {ParseResult::kIpv4Truncated, "ipv4_truncated"},
    {ParseResult::kIpv4BadVersion, "ipv4_bad_version"},
    {ParseResult::kIpv4BadIhl, "ipv4_bad_ihl"},
    {ParseResult::kIpv4BadTotalLength, "ipv4_bad_total_length"},
    {ParseResult::kIpv6Truncated, "ipv6_truncated"},
    {ParseResult::kIpv6BadVersion, "ipv6_bad_version"},
    {ParseResult::kIpv6BadPayloadLength, "ipv6_bad_payload_length"},
    {ParseResult::kIpv6BadExtChain, "ipv6_bad_ext_chain"},
    {ParseResult::kL4Truncated, "l4_truncated"},
    {ParseResult::kTcpBadOffset, "tcp_bad_offset"},
    {ParseResult::kArpTruncated, "arp_truncated"},
    {ParseResult::kArpBadFormat, "arp_bad_format"},
    {ParseResult::kRunt, "runt"},
    {ParseResult::kVlanTruncated, "vlan_truncated"},
};
inline constexpr auto kParseResultNames = enum_names(kParseResultTable);
static_assert(kParseResultNames.size() == kParseResultCount);
static_assert(static_cast<size_t>(ParseResult::kVlanTruncated) + 1 == kParseResultCount);

constexpr std::string_view parse_result_name(ParseResult r) {
  const auto i = static_cast<size_t>(r);
  return i < kParseResultCount ? kParseResultNames[i] : std::string_view("unknown");
}

// True for the results whose packet must be dropped (and counted).
constexpr bool parse_is_drop(ParseResult r) {
  return r >= ParseResult::kRunt;
}

// ---- layout ----------------------------------------------------------------------------

inline constexpr uint16_t kNoOffset = 0xffff;

inline constexpr uint8_t kLayoutIpv4 = 0x01;           // IPv4 header valid at l3_ofs
inline constexpr uint8_t kLayoutIpv6 = 0x02;           // IPv6 header valid at l3_ofs
inline constexpr uint8_t kLayoutL4 = 0x04;             // TCP/UDP/SCTP/ICMP(v6) header complete
                                                       // at l4_ofs; ports/type in the key
inline constexpr uint8_t kLayoutFragment = 0x08;       // nw_frag & kFragAny
inline constexpr uint8_t kLayoutLaterFragment = 0x10;  // nw_frag & kFragLater
inline constexpr uint8_t kLayoutInnerVlan = 0x20;      // a second VLAN tag follows (unparsed)

// Where the headers are, for the action executor. Offsets are from the frame start.
struct PacketLayout {
  uint16_t vlan_ofs;  // the VLAN TPID (byte 12), kNoOffset when untagged
  uint16_t l3_ofs;    // first byte after the EtherType (and LLC/SNAP); kNoOffset on drops
  uint16_t l4_ofs;    // first byte after the IP header + extension headers (the header of
                      // protocol l4_proto, whatever it is); kNoOffset without valid L3,
                      // for later fragments and for kIpv6BadExtChain
  uint16_t l3_len;    // IPv4 total length / 40 + IPv6 payload length; 0 when not IP
  uint16_t l4_len;    // bytes from l4_ofs to the end of the IP packet (padding excluded)
  uint8_t l4_proto;   // the IP protocol at l4_ofs (== key.nw_proto when l4_ofs is set)
  uint8_t flags;      // kLayout*

  bool is_ipv4() const { return (flags & kLayoutIpv4) != 0; }
  bool is_ipv6() const { return (flags & kLayoutIpv6) != 0; }
  bool has_l4() const { return (flags & kLayoutL4) != 0; }
  bool is_fragment() const { return (flags & kLayoutFragment) != 0; }
  // Bytes of Ethernet padding after the IP packet (0 when not IP).
  uint32_t l2_pad(uint32_t frame_len) const {
    return l3_len != 0 ? frame_len - l3_ofs - l3_len : 0;
  }
};
static_assert(sizeof(PacketLayout) == 12);
static_assert(std::is_trivially_copyable_v<PacketLayout>);

// ---- counters --------------------------------------------------------------------------

// Per-PMD counts by result; summed on read with +=.
struct ParseCounters {
  std::array<uint64_t, kParseResultCount> by_result{};

  uint64_t count(ParseResult r) const { return by_result[static_cast<size_t>(r)]; }
  void add(ParseResult r) { ++by_result[static_cast<size_t>(r)]; }
  void add(const ParseResult* results, uint32_t n) {
    for (uint32_t i = 0; i < n; ++i) add(results[i]);
  }
  uint64_t drops() const {
    uint64_t d = 0;
    for (size_t i = static_cast<size_t>(ParseResult::kRunt); i < kParseResultCount; ++i)
      d += by_result[i];
    return d;
  }
  ParseCounters& operator+=(const ParseCounters& o) {
    for (size_t i = 0; i < kParseResultCount; ++i) by_result[i] += o.by_result[i];
    return *this;
  }
};

// ---- parsing ---------------------------------------------------------------------------

// Parses the frame [data, data + len). Writes key words 6..16 (zeroed first) and `layout`;
// never touches the metadata words 0..5 and 17..22. Reads at most min(len, 65535) bytes
// (longer buffers are parsed as their first 65535 bytes; the frame must be contiguous:
// linearise multi-segment mbufs first). `data` may be null when len == 0.
// Returns kOk, an anomaly (forward with the partial key) or a drop (parse_is_drop()).
ParseResult parse_packet(const uint8_t* data, uint32_t len, FlowKey& key, PacketLayout& layout);

inline ParseResult parse_packet(std::span<const uint8_t> frame, FlowKey& key,
                                PacketLayout& layout) {
  const size_t n = frame.size() > 0xffffffffu ? 0xffffffffu : frame.size();
  return parse_packet(frame.data(), static_cast<uint32_t>(n), key, layout);
}

// Parses n frames (data[i], len[i]) into keys[i], layouts[i], results[i].
// Returns how many are not drops. Packets are not reordered.
uint32_t parse_batch(const uint8_t* const* data, const uint32_t* len, uint32_t n, FlowKey* keys,
                     PacketLayout* layouts, ParseResult* results);

// The same, also counting every result into `counters`.
uint32_t parse_batch(const uint8_t* const* data, const uint32_t* len, uint32_t n, FlowKey* keys,
                     PacketLayout* layouts, ParseResult* results, ParseCounters& counters);

}  // namespace gl::flow
