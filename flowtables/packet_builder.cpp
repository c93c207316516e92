// packet_builder.cpp — see packet_builder.hpp.
#include "flowtables/packet_builder.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "flowtables/bytes.hpp"
#include "flowtables/checksum.hpp"
#include "flowtables/packet_parser.hpp"

namespace gl::flow {
namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

[[noreturn]] void die_bad_text(const char* what, std::string_view text) {
  std::fprintf(stderr, "PacketBuilder: bad %s \"%.*s\"\n", what, static_cast<int>(text.size()),
               text.data());
  std::abort();
}

void put16(std::vector<uint8_t>& v, uint16_t x) {
  v.push_back(static_cast<uint8_t>(x >> 8));
  v.push_back(static_cast<uint8_t>(x));
}
void put32(std::vector<uint8_t>& v, uint32_t x) {
  put16(v, static_cast<uint16_t>(x >> 16));
  put16(v, static_cast<uint16_t>(x));
}
void put_raw32(std::vector<uint8_t>& v, uint32_t x) {  // already network order
  const auto* b = reinterpret_cast<const uint8_t*>(&x);
  v.insert(v.end(), b, b + 4);
}

// CRC32c (Castagnoli), reflected, as SCTP uses it (RFC 4960 appendix B).
uint32_t crc32c(const uint8_t* p, size_t n) {
  uint32_t crc = 0xffffffffu;
  for (size_t i = 0; i < n; ++i) {
    crc ^= p[i];
    for (int b = 0; b < 8; ++b) crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1u)));
  }
  return ~crc;
}

std::vector<uint8_t> padded_options(std::span<const uint8_t> options) {
  std::vector<uint8_t> v(options.begin(), options.end());
  while (v.size() % 4 != 0) v.push_back(0);  // EOL
  return v;
}

// Hop-by-hop / destination options body of `bytes` bytes, filled with Pad1/PadN.
std::vector<uint8_t> options_header(size_t bytes) {
  if (bytes < 8 || bytes % 8 != 0 || bytes > 2048) die_bad_text("IPv6 options size", "");
  std::vector<uint8_t> h(bytes, 0);
  h[1] = static_cast<uint8_t>(bytes / 8 - 1);
  const size_t pad = bytes - 2;  // >= 6: one PadN option
  h[2] = 1;
  h[3] = static_cast<uint8_t>(pad - 2);
  return h;
}

}  // namespace

// ---- text parsers ----------------------------------------------------------------------

std::optional<MacAddr> parse_mac(std::string_view s) {
  if (s.size() != 17) return std::nullopt;
  MacAddr m{};
  for (size_t i = 0; i < 6; ++i) {
    const int hi = hex_digit(s[i * 3]);
    const int lo = hex_digit(s[i * 3 + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    if (i < 5 && s[i * 3 + 2] != ':' && s[i * 3 + 2] != '-') return std::nullopt;
    m[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return m;
}

std::optional<uint32_t> parse_ipv4(std::string_view s) {
  uint32_t host = 0;
  size_t i = 0;
  for (int part = 0; part < 4; ++part) {
    if (part > 0) {
      if (i >= s.size() || s[i] != '.') return std::nullopt;
      ++i;
    }
    uint32_t v = 0;
    size_t digits = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9' && digits < 4) {
      v = v * 10 + static_cast<uint32_t>(s[i] - '0');
      ++i;
      ++digits;
    }
    if (digits == 0 || digits > 3 || v > 255) return std::nullopt;
    host = host << 8 | v;
  }
  if (i != s.size()) return std::nullopt;
  return hton32(host);
}

std::optional<Ipv6Addr> parse_ipv6(std::string_view s) {
  std::array<uint16_t, 8> g{};
  int n = 0;
  int gap = -1;  // group index where "::" stands
  size_t i = 0;
  if (s.size() >= 2 && s[0] == ':' && s[1] == ':') {
    gap = 0;
    i = 2;
  } else if (!s.empty() && s[0] == ':') {
    return std::nullopt;
  } else if (s.empty()) {
    return std::nullopt;
  }
  while (i < s.size()) {
    size_t j = i;
    while (j < s.size() && s[j] != ':') ++j;
    const std::string_view tok = s.substr(i, j - i);
    if (tok.find('.') != std::string_view::npos) {  // embedded IPv4, must be last
      if (j != s.size() || n > 6) return std::nullopt;
      const auto v4 = parse_ipv4(tok);
      if (!v4) return std::nullopt;
      const uint32_t h = ntoh32(*v4);
      g[n++] = static_cast<uint16_t>(h >> 16);
      g[n++] = static_cast<uint16_t>(h);
      i = j;
      break;
    }
    if (tok.empty() || tok.size() > 4 || n == 8) return std::nullopt;
    uint16_t v = 0;
    for (char c : tok) {
      const int d = hex_digit(c);
      if (d < 0) return std::nullopt;
      v = static_cast<uint16_t>(v << 4 | d);
    }
    g[n++] = v;
    if (j == s.size()) break;
    if (j + 1 < s.size() && s[j + 1] == ':') {
      if (gap >= 0) return std::nullopt;
      gap = n;
      i = j + 2;
    } else {
      i = j + 1;
      if (i == s.size()) return std::nullopt;  // trailing single ':'
    }
  }
  std::array<uint16_t, 8> out{};
  if (gap < 0) {
    if (n != 8) return std::nullopt;
    out = g;
  } else {
    if (n > 7) return std::nullopt;
    for (int k = 0; k < gap; ++k) out[k] = g[k];
    const int tail = n - gap;
    for (int k = 0; k < tail; ++k) out[8 - tail + k] = g[gap + k];
  }
  Ipv6Addr a{};
  for (int k = 0; k < 8; ++k) {
    a[2 * k] = static_cast<uint8_t>(out[k] >> 8);
    a[2 * k + 1] = static_cast<uint8_t>(out[k]);
  }
  return a;
}

MacAddr mac(std::string_view text) {
  const auto m = parse_mac(text);
  if (!m) die_bad_text("MAC address", text);
  return *m;
}
uint32_t ipv4_addr(std::string_view text) {
  const auto a = parse_ipv4(text);
  if (!a) die_bad_text("IPv4 address", text);
  return *a;
}
Ipv6Addr ipv6_addr(std::string_view text) {
  const auto a = parse_ipv6(text);
  if (!a) die_bad_text("IPv6 address", text);
  return *a;
}

// ---- builder setters -------------------------------------------------------------------

PacketBuilder::PacketBuilder()
    : src_mac_{0x02, 0, 0, 0, 0, 0x01}, dst_mac_{0x02, 0, 0, 0, 0, 0x02} {}

PacketBuilder& PacketBuilder::eth(const MacAddr& src, const MacAddr& dst) {
  src_mac_ = src;
  dst_mac_ = dst;
  return *this;
}
PacketBuilder& PacketBuilder::eth(std::string_view src, std::string_view dst) {
  return eth(mac(src), mac(dst));
}
PacketBuilder& PacketBuilder::vlan(uint16_t vid, uint8_t pcp, uint16_t tpid, bool dei) {
  const auto tci = static_cast<uint16_t>((pcp & 7) << 13 | (dei ? 1 : 0) << 12 | (vid & 0x0fff));
  tags_.push_back({tpid, tci});
  return *this;
}
PacketBuilder& PacketBuilder::ether_type(uint16_t type) {
  ether_type_ = type;
  return *this;
}
PacketBuilder& PacketBuilder::llc(uint8_t dsap, uint8_t ssap, uint8_t control) {
  llc_ = Llc::kLlc;
  llc_hdr_ = {dsap, ssap, control};
  return *this;
}
PacketBuilder& PacketBuilder::llc_snap(std::optional<uint16_t> snap_type) {
  llc_ = Llc::kSnap;
  snap_type_ = snap_type;
  return *this;
}

PacketBuilder& PacketBuilder::ipv4(uint32_t src, uint32_t dst) {
  l3_ = L3::kIpv4;
  ip4_src_ = src;
  ip4_dst_ = dst;
  return *this;
}
PacketBuilder& PacketBuilder::ipv4(std::string_view src, std::string_view dst) {
  return ipv4(ipv4_addr(src), ipv4_addr(dst));
}
PacketBuilder& PacketBuilder::ip_id(uint16_t id) {
  ip_id_ = id;
  return *this;
}
PacketBuilder& PacketBuilder::df(bool on) {
  df_ = on;
  return *this;
}
PacketBuilder& PacketBuilder::mf(bool on) {
  mf_ = on;
  return *this;
}
PacketBuilder& PacketBuilder::frag_offset(uint16_t units_of_8) {
  frag_offset_ = units_of_8;
  return *this;
}
PacketBuilder& PacketBuilder::ipv4_options(std::span<const uint8_t> options) {
  ip4_options_ = padded_options(options);
  return *this;
}

PacketBuilder& PacketBuilder::ipv6(const Ipv6Addr& src, const Ipv6Addr& dst) {
  l3_ = L3::kIpv6;
  ip6_src_ = src;
  ip6_dst_ = dst;
  return *this;
}
PacketBuilder& PacketBuilder::ipv6(std::string_view src, std::string_view dst) {
  return ipv6(ipv6_addr(src), ipv6_addr(dst));
}
PacketBuilder& PacketBuilder::flow_label(uint32_t label) {
  flow_label_ = label & 0x000fffffu;
  return *this;
}
PacketBuilder& PacketBuilder::ipv6_hop_by_hop(size_t bytes) {
  ext_.push_back({kIpv6HopByHop, options_header(bytes)});
  return *this;
}
PacketBuilder& PacketBuilder::ipv6_dest_opts(size_t bytes) {
  ext_.push_back({kIpv6DestOpts, options_header(bytes)});
  return *this;
}
PacketBuilder& PacketBuilder::ipv6_routing(size_t bytes) {
  if (bytes < 8 || bytes % 8 != 0 || bytes > 2048) die_bad_text("IPv6 routing size", "");
  std::vector<uint8_t> h(bytes, 0);
  h[1] = static_cast<uint8_t>(bytes / 8 - 1);
  h[2] = 0;  // routing type 0, segments left 0: ignored by every node
  ext_.push_back({kIpv6Routing, std::move(h)});
  return *this;
}
PacketBuilder& PacketBuilder::ipv6_fragment(uint16_t offset_units_of_8, bool more, uint32_t id) {
  std::vector<uint8_t> h(8, 0);
  store_be16(&h[2], static_cast<uint16_t>((offset_units_of_8 & 0x1fff) << 3 | (more ? 1 : 0)));
  h[4] = static_cast<uint8_t>(id >> 24);
  h[5] = static_cast<uint8_t>(id >> 16);
  h[6] = static_cast<uint8_t>(id >> 8);
  h[7] = static_cast<uint8_t>(id);
  ext_.push_back({kIpv6Fragment, std::move(h)});
  return *this;
}
PacketBuilder& PacketBuilder::ipv6_ah(size_t bytes) {
  if (bytes < 12 || bytes % 4 != 0 || bytes > 1028) die_bad_text("AH size", "");
  std::vector<uint8_t> h(bytes, 0);
  h[1] = static_cast<uint8_t>(bytes / 4 - 2);
  h[7] = 1;   // SPI 1
  h[11] = 1;  // sequence number 1
  ext_.push_back({kIpProtoAh, std::move(h)});
  return *this;
}
PacketBuilder& PacketBuilder::ipv6_ext_raw(uint8_t type, std::span<const uint8_t> bytes) {
  std::vector<uint8_t> h(std::max<size_t>(bytes.size(), 1), 0);
  std::copy(bytes.begin(), bytes.end(), h.begin());
  ext_.push_back({type, std::move(h)});
  return *this;
}

PacketBuilder& PacketBuilder::ttl(uint8_t ttl) {
  ttl_ = ttl;
  return *this;
}
PacketBuilder& PacketBuilder::tos(uint8_t tos) {
  tos_ = tos;
  return *this;
}
PacketBuilder& PacketBuilder::ip_proto(uint8_t proto) {
  ip_proto_ = proto;
  return *this;
}

PacketBuilder& PacketBuilder::arp(uint16_t op, const MacAddr& sha, uint32_t spa, const MacAddr& tha,
                                  uint32_t tpa) {
  l3_ = L3::kArp;
  arp_op_ = op;
  arp_sha_ = sha;
  arp_spa_ = spa;
  arp_tha_ = tha;
  arp_tpa_ = tpa;
  return *this;
}
PacketBuilder& PacketBuilder::arp_request(std::string_view sha, std::string_view spa,
                                          std::string_view tpa) {
  return arp(1, mac(sha), ipv4_addr(spa), MacAddr{}, ipv4_addr(tpa));
}
PacketBuilder& PacketBuilder::arp_reply(std::string_view sha, std::string_view spa,
                                        std::string_view tha, std::string_view tpa) {
  return arp(2, mac(sha), ipv4_addr(spa), mac(tha), ipv4_addr(tpa));
}

PacketBuilder& PacketBuilder::tcp(uint16_t sport, uint16_t dport) {
  l4_ = L4::kTcp;
  sport_ = sport;
  dport_ = dport;
  return *this;
}
PacketBuilder& PacketBuilder::tcp_flags(uint16_t flags) {
  tcp_flags_ = flags & 0x0fff;
  return *this;
}
PacketBuilder& PacketBuilder::tcp_seq(uint32_t seq) {
  tcp_seq_ = seq;
  return *this;
}
PacketBuilder& PacketBuilder::tcp_ack(uint32_t ack) {
  tcp_ack_ = ack;
  return *this;
}
PacketBuilder& PacketBuilder::tcp_window(uint16_t window) {
  tcp_window_ = window;
  return *this;
}
PacketBuilder& PacketBuilder::tcp_options(std::span<const uint8_t> options) {
  tcp_options_ = padded_options(options);
  return *this;
}
PacketBuilder& PacketBuilder::udp(uint16_t sport, uint16_t dport) {
  l4_ = L4::kUdp;
  sport_ = sport;
  dport_ = dport;
  return *this;
}
PacketBuilder& PacketBuilder::sctp(uint16_t sport, uint16_t dport, uint32_t vtag) {
  l4_ = L4::kSctp;
  sport_ = sport;
  dport_ = dport;
  sctp_vtag_ = vtag;
  return *this;
}
PacketBuilder& PacketBuilder::icmp(uint8_t type, uint8_t code, uint32_t rest) {
  l4_ = L4::kIcmp;
  icmp_type_ = type;
  icmp_code_ = code;
  icmp_rest_ = rest;
  return *this;
}
PacketBuilder& PacketBuilder::icmp_echo(uint16_t id, uint16_t seq, bool reply) {
  return icmp(reply ? 0 : 8, 0, static_cast<uint32_t>(id) << 16 | seq);
}
PacketBuilder& PacketBuilder::icmpv6(uint8_t type, uint8_t code, uint32_t rest) {
  l4_ = L4::kIcmpv6;
  icmp_type_ = type;
  icmp_code_ = code;
  icmp_rest_ = rest;
  return *this;
}
PacketBuilder& PacketBuilder::icmpv6_echo(uint16_t id, uint16_t seq, bool reply) {
  return icmpv6(reply ? 129 : 128, 0, static_cast<uint32_t>(id) << 16 | seq);
}

PacketBuilder& PacketBuilder::payload(size_t n) {
  for (size_t i = 0; i < n; ++i) payload_.push_back(static_cast<uint8_t>(i));
  return *this;
}
PacketBuilder& PacketBuilder::payload(std::span<const uint8_t> bytes) {
  payload_.insert(payload_.end(), bytes.begin(), bytes.end());
  return *this;
}
PacketBuilder& PacketBuilder::pad_to(size_t frame_len) {
  pad_to_ = frame_len;
  return *this;
}

PacketBuilder& PacketBuilder::ip_version(uint8_t version) {
  ip_version_ = version;
  return *this;
}
PacketBuilder& PacketBuilder::ihl(uint8_t words) {
  ihl_ = words;
  return *this;
}
PacketBuilder& PacketBuilder::total_length(uint16_t len) {
  total_length_ = len;
  return *this;
}
PacketBuilder& PacketBuilder::ip_checksum(uint16_t csum) {
  ip_csum_ = csum;
  return *this;
}
PacketBuilder& PacketBuilder::payload_length(uint16_t len) {
  payload_length_ = len;
  return *this;
}
PacketBuilder& PacketBuilder::tcp_data_offset(uint8_t words) {
  tcp_doff_ = words;
  return *this;
}
PacketBuilder& PacketBuilder::udp_length(uint16_t len) {
  udp_length_ = len;
  return *this;
}
PacketBuilder& PacketBuilder::l4_checksum(uint16_t csum) {
  l4_csum_ = csum;
  return *this;
}
PacketBuilder& PacketBuilder::no_udp_checksum() {
  udp_csum_ = false;
  return *this;
}
PacketBuilder& PacketBuilder::truncate(size_t frame_len) {
  truncate_ = frame_len;
  return *this;
}

// ---- build -----------------------------------------------------------------------------

// L4 header (checksum zero) + payload; `proto` gets the IP protocol it implies (0: none).
std::vector<uint8_t> PacketBuilder::build_l4(uint8_t& proto) const {
  std::vector<uint8_t> v;
  proto = 0;
  switch (l4_) {
    case L4::kNone:
      break;
    case L4::kTcp: {
      proto = kIpProtoTcp;
      const size_t hdr = 20 + tcp_options_.size();
      put16(v, sport_);
      put16(v, dport_);
      put32(v, tcp_seq_);
      put32(v, tcp_ack_);
      const uint8_t doff = tcp_doff_.value_or(static_cast<uint8_t>(hdr / 4));
      v.push_back(static_cast<uint8_t>(doff << 4 | ((tcp_flags_ >> 8) & 0x0f)));
      v.push_back(static_cast<uint8_t>(tcp_flags_));
      put16(v, tcp_window_);
      put16(v, 0);  // checksum
      put16(v, 0);  // urgent pointer
      v.insert(v.end(), tcp_options_.begin(), tcp_options_.end());
      break;
    }
    case L4::kUdp:
      proto = kIpProtoUdp;
      put16(v, sport_);
      put16(v, dport_);
      put16(v, udp_length_.value_or(static_cast<uint16_t>(8 + payload_.size())));
      put16(v, 0);
      break;
    case L4::kSctp:
      proto = kIpProtoSctp;
      put16(v, sport_);
      put16(v, dport_);
      put32(v, sctp_vtag_);
      put32(v, 0);
      break;
    case L4::kIcmp:
    case L4::kIcmpv6:
      proto = l4_ == L4::kIcmp ? kIpProtoIcmp : kIpProtoIcmpv6;
      v.push_back(icmp_type_);
      v.push_back(icmp_code_);
      put16(v, 0);
      put32(v, icmp_rest_);
      break;
  }
  v.insert(v.end(), payload_.begin(), payload_.end());
  return v;
}

std::vector<uint8_t> PacketBuilder::build() const {
  uint8_t l4_proto = 0;
  std::vector<uint8_t> l4 = build_l4(l4_proto);

  // L4 checksum (needs the pseudo header, hence the L3 addresses).
  const auto fill_l4_csum = [&](uint32_t pseudo_sum, bool have_ip) {
    size_t at = 0;
    switch (l4_) {
      case L4::kNone:
        return;
      case L4::kTcp:
        at = 16;
        break;
      case L4::kUdp:
        at = 6;
        break;
      case L4::kIcmp:
      case L4::kIcmpv6:
        at = 2;
        break;
      case L4::kSctp: {
        const uint32_t crc = crc32c(l4.data(), l4.size());
        // Stored least significant byte first (RFC 4960 appendix B, as Linux does).
        for (int k = 0; k < 4; ++k) l4[8 + k] = static_cast<uint8_t>(crc >> (8 * k));
        if (l4_csum_) {
          store_be16(&l4[8], 0);
          store_be16(&l4[10], *l4_csum_);
        }
        return;
      }
    }
    uint16_t csum = 0;
    if (l4_ == L4::kIcmp) {
      csum = inet_checksum(l4.data(), l4.size());
    } else if (have_ip) {
      csum = gl::flow::l4_checksum(pseudo_sum, l4.data(), l4.size());
      if (l4_ == L4::kUdp) csum = udp_csum_ ? udp_csum_fixup(csum) : 0;
    }
    store_raw16(&l4[at], csum);
    if (l4_csum_) store_be16(&l4[at], *l4_csum_);
  };

  std::vector<uint8_t> l3;
  uint16_t implied_type = 0x88b5;  // IEEE local experimental: "no L3"
  switch (l3_) {
    case L3::kNone:
      fill_l4_csum(0, false);
      l3 = std::move(l4);
      break;
    case L3::kIpv4: {
      implied_type = kEthTypeIpv4;
      const uint8_t proto = ip_proto_.value_or(l4_proto != 0 ? l4_proto : 253);
      const auto l4_len = static_cast<uint16_t>(l4.size());
      fill_l4_csum(ipv4_pseudo_sum(ip4_src_, ip4_dst_, l4_proto != 0 ? l4_proto : proto, l4_len),
                   true);
      const size_t hdr = 20 + ip4_options_.size();
      l3.push_back(static_cast<uint8_t>(ip_version_.value_or(4) << 4 |
                                        (ihl_.value_or(static_cast<uint8_t>(hdr / 4)) & 0x0f)));
      l3.push_back(tos_);
      put16(l3, total_length_.value_or(static_cast<uint16_t>(hdr + l4.size())));
      put16(l3, ip_id_);
      put16(l3, static_cast<uint16_t>((df_ ? 0x4000 : 0) | (mf_ ? 0x2000 : 0) |
                                      (frag_offset_ & 0x1fff)));
      l3.push_back(ttl_);
      l3.push_back(proto);
      put16(l3, 0);
      put_raw32(l3, ip4_src_);
      put_raw32(l3, ip4_dst_);
      l3.insert(l3.end(), ip4_options_.begin(), ip4_options_.end());
      if (ip_csum_) {
        store_be16(&l3[10], *ip_csum_);
      } else {
        store_raw16(&l3[10], ipv4_header_checksum(l3.data(), hdr));
      }
      l3.insert(l3.end(), l4.begin(), l4.end());
      break;
    }
    case L3::kIpv6: {
      implied_type = kEthTypeIpv6;
      const uint8_t last = ip_proto_.value_or(l4_proto != 0 ? l4_proto : kIpv6NoNext);
      fill_l4_csum(
          ipv6_pseudo_sum(ip6_src_.data(), ip6_dst_.data(), l4_proto != 0 ? l4_proto : last,
                          static_cast<uint32_t>(l4.size())),
          true);
      size_t ext_len = 0;
      for (const Ext& e : ext_) ext_len += e.bytes.size();
      put32(l3, static_cast<uint32_t>(ip_version_.value_or(6)) << 28 |
                    static_cast<uint32_t>(tos_) << 20 | flow_label_);
      put16(l3, payload_length_.value_or(static_cast<uint16_t>(ext_len + l4.size())));
      l3.push_back(ext_.empty() ? last : ext_.front().type);
      l3.push_back(ttl_);
      l3.insert(l3.end(), ip6_src_.begin(), ip6_src_.end());
      l3.insert(l3.end(), ip6_dst_.begin(), ip6_dst_.end());
      for (size_t k = 0; k < ext_.size(); ++k) {
        const size_t at = l3.size();
        l3.insert(l3.end(), ext_[k].bytes.begin(), ext_[k].bytes.end());
        l3[at] = k + 1 < ext_.size() ? ext_[k + 1].type : last;
      }
      l3.insert(l3.end(), l4.begin(), l4.end());
      break;
    }
    case L3::kArp:
      implied_type = kEthTypeArp;
      put16(l3, 1);
      put16(l3, 0x0800);
      l3.push_back(6);
      l3.push_back(4);
      put16(l3, arp_op_);
      l3.insert(l3.end(), arp_sha_.begin(), arp_sha_.end());
      put_raw32(l3, arp_spa_);
      l3.insert(l3.end(), arp_tha_.begin(), arp_tha_.end());
      put_raw32(l3, arp_tpa_);
      fill_l4_csum(0, false);
      l3.insert(l3.end(), l4.begin(), l4.end());
      break;
  }

  std::vector<uint8_t> f;
  f.reserve(14 + 4 * tags_.size() + 8 + l3.size() + pad_to_);
  f.insert(f.end(), dst_mac_.begin(), dst_mac_.end());
  f.insert(f.end(), src_mac_.begin(), src_mac_.end());
  for (const Tag& t : tags_) {
    put16(f, t.tpid);
    put16(f, t.tci);
  }
  if (llc_ == Llc::kNone) {
    put16(f, ether_type_.value_or(implied_type));
  } else {
    const size_t llc_len = llc_ == Llc::kLlc ? 3 : 8;
    put16(f, ether_type_.value_or(static_cast<uint16_t>(llc_len + l3.size())));
    if (llc_ == Llc::kLlc) {
      f.insert(f.end(), llc_hdr_.begin(), llc_hdr_.end());
    } else {
      const uint8_t snap[6] = {0xaa, 0xaa, 0x03, 0, 0, 0};
      f.insert(f.end(), snap, snap + 6);
      put16(f, snap_type_.value_or(implied_type));
    }
  }
  f.insert(f.end(), l3.begin(), l3.end());
  if (f.size() < pad_to_) f.resize(pad_to_, 0);
  if (truncate_ && *truncate_ < f.size()) f.resize(*truncate_);
  return f;
}

}  // namespace gl::flow
