#include "flowtables/checksum.hpp"

#include <catch2/catch.hpp>

#include <cstring>
#include <random>
#include <vector>

#include "flowtables/bytes.hpp"
#include "flowtables/packet_builder.hpp"
#include "flowtables/packet_parser.hpp"

using namespace gl::flow;

namespace {

// Straightforward RFC 1071 reference: big-endian 16-bit words, host-order result.
uint16_t reference_checksum(const uint8_t* p, size_t n) {
  uint64_t sum = 0;
  for (size_t i = 0; i + 1 < n; i += 2) sum += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
  if (n % 2 != 0) sum += static_cast<uint32_t>(p[n - 1] << 8);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

// Verifies a TCP/UDP/ICMPv6 checksum in place: the folded sum over pseudo header and
// segment (checksum included) must be 0xffff.
bool l4_sum_ok(uint32_t pseudo, const uint8_t* l4, size_t len) {
  return csum_fold(csum_partial(l4, len, pseudo)) == 0xffff;
}

}  // namespace

TEST_CASE("byte order helpers", "[checksum]") {
  const uint16_t v16 = 0x1234;
  uint8_t b[4];
  const uint16_t n16 = hton16(v16);
  std::memcpy(b, &n16, 2);
  CHECK(b[0] == 0x12);
  CHECK(b[1] == 0x34);
  const uint32_t n32 = hton32(0x0a000001);
  std::memcpy(b, &n32, 4);
  CHECK(b[0] == 10);
  CHECK(b[3] == 1);
  CHECK(ntoh16(hton16(0xbeef)) == 0xbeef);
  CHECK(ntoh32(hton32(0xdeadbeef)) == 0xdeadbeef);
  STATIC_REQUIRE(csum_fold(0x1ffff) == 0x0001);
  STATIC_REQUIRE(csum_add(0xffffffffu, 1) == 1);
}

TEST_CASE("RFC 1071 known vectors", "[checksum]") {
  // RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2.
  const uint8_t rfc[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
  CHECK(ntoh16(csum_fold(csum_partial(rfc, sizeof rfc))) == 0xddf2);
  CHECK(ntoh16(inet_checksum(rfc, sizeof rfc)) == 0x220d);

  // An odd trailing byte is the high byte of a zero-padded word.
  const uint8_t odd[] = {0x01};
  CHECK(ntoh16(inet_checksum(odd, 1)) == 0xfeff);
  CHECK(ntoh16(inet_checksum(odd, 0)) == 0xffff);

  // The classic IPv4 header (checksum b861).
  const uint8_t ip[] = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                        0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
  CHECK(ntoh16(ipv4_header_checksum(ip, sizeof ip)) == 0xb861);
  CHECK(ipv4_header_checksum_ok(ip, sizeof ip));
  CHECK(ntoh16(inet_checksum(ip, sizeof ip)) == 0);

  // UDP/IPv4 10.0.0.1:1234 → 10.0.0.2:80 with the 4 data bytes 00 01 02 03: by hand,
  // 0a00+0001+0a00+0002+0011+000c (pseudo) + 04d2+0050+000c+0001+0203 = 1b52 → e4ad.
  const uint8_t udp[] = {0x04, 0xd2, 0x00, 0x50, 0x00, 0x0c, 0x00, 0x00, 0x00, 0x01, 0x02, 0x03};
  const uint32_t ps = ipv4_pseudo_sum(hton32(0x0a000001), hton32(0x0a000002), 17, sizeof udp);
  CHECK(ntoh16(l4_checksum(ps, udp, sizeof udp)) == 0xe4ad);
  uint8_t pseudo[12 + sizeof udp] = {10, 0, 0, 1, 10, 0, 0, 2, 0, 17, 0, sizeof udp};
  std::memcpy(pseudo + 12, udp, sizeof udp);
  CHECK(reference_checksum(pseudo, sizeof pseudo) == 0xe4ad);
}

TEST_CASE("IPv4 header checksum verification rejects bad headers", "[checksum]") {
  uint8_t ip[] = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                  0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
  CHECK(ipv4_header_checksum_ok(ip, sizeof ip));
  CHECK_FALSE(ipv4_header_checksum_ok(ip, 19));  // short
  ip[8] = 0x3f;                                  // TTL changed, checksum not
  CHECK_FALSE(ipv4_header_checksum_ok(ip, sizeof ip));
  ip[8] = 0x40;
  ip[0] = 0x44;  // IHL 4
  CHECK_FALSE(ipv4_header_checksum_ok(ip, sizeof ip));
  ip[0] = 0x46;  // IHL 6: 24 bytes, only 20 present
  CHECK_FALSE(ipv4_header_checksum_ok(ip, sizeof ip));
}

TEST_CASE("csum_partial matches the reference for any length and alignment", "[checksum]") {
  std::mt19937 rng(1071);
  std::vector<uint8_t> buf(300);
  for (int iter = 0; iter < 2000; ++iter) {
    for (auto& b : buf) b = static_cast<uint8_t>(rng());
    const size_t ofs = rng() % 8;
    const size_t len = rng() % 260;
    const uint8_t* p = buf.data() + ofs;
    INFO("ofs " << ofs << " len " << len);
    REQUIRE(ntoh16(inet_checksum(p, len)) == reference_checksum(p, len));
    // In two pieces, the first of even length.
    const size_t cut = (len == 0 ? 0 : rng() % len) & ~size_t{1};
    const uint32_t s = csum_partial(p + cut, len - cut, csum_partial(p, cut));
    REQUIRE(ntoh16(csum_finish(s)) == reference_checksum(p, len));
  }
  // Large buffers do not overflow the accumulator.
  std::vector<uint8_t> big(1 << 20, 0xff);
  CHECK(ntoh16(inet_checksum(big.data(), big.size())) ==
        reference_checksum(big.data(), big.size()));
}

TEST_CASE("pseudo-header sums equal the sum over an explicit pseudo header", "[checksum]") {
  std::mt19937 rng(7);
  for (int iter = 0; iter < 500; ++iter) {
    const uint32_t src = rng(), dst = rng();
    const auto proto = static_cast<uint8_t>(rng());
    const auto len = static_cast<uint16_t>(rng());
    uint8_t ph[12];
    std::memcpy(ph, &src, 4);
    std::memcpy(ph + 4, &dst, 4);
    ph[8] = 0;
    ph[9] = proto;
    ph[10] = static_cast<uint8_t>(len >> 8);
    ph[11] = static_cast<uint8_t>(len);
    REQUIRE(csum_fold(ipv4_pseudo_sum(src, dst, proto, len)) == csum_fold(csum_partial(ph, 12)));

    uint8_t ph6[40] = {};
    for (int i = 0; i < 32; ++i) ph6[i] = static_cast<uint8_t>(rng());
    const uint32_t len6 = rng();
    ph6[32] = static_cast<uint8_t>(len6 >> 24);
    ph6[33] = static_cast<uint8_t>(len6 >> 16);
    ph6[34] = static_cast<uint8_t>(len6 >> 8);
    ph6[35] = static_cast<uint8_t>(len6);
    ph6[39] = proto;
    REQUIRE(csum_fold(ipv6_pseudo_sum(ph6, ph6 + 16, proto, len6)) ==
            csum_fold(csum_partial(ph6, 40)));
  }
}

TEST_CASE("incremental update equals full recompute (IPv4 header)", "[checksum]") {
  std::mt19937 rng(1624);
  for (int iter = 0; iter < 20000; ++iter) {
    const size_t hlen = 20 + 4 * (rng() % 11);
    std::vector<uint8_t> h(hlen);
    for (auto& b : h) b = static_cast<uint8_t>(rng());
    // Occasionally all-zero or all-one headers (the one's-complement corner cases).
    if (iter % 97 == 0) std::fill(h.begin(), h.end(), iter % 2 ? 0xff : 0x00);
    h[0] = static_cast<uint8_t>(0x40 | hlen / 4);
    store_raw16(&h[10], ipv4_header_checksum(h.data(), hlen));
    REQUIRE(ipv4_header_checksum_ok(h.data(), hlen));
    uint16_t cs = load_raw16(&h[10]);

    switch (rng() % 3) {
      case 0: {  // a 16-bit word (not the checksum itself)
        size_t off;
        do off = 2 * (rng() % (hlen / 2));
        while (off == 10);
        const uint16_t old_v = load_raw16(&h[off]);
        const auto new_v = static_cast<uint16_t>(rng());
        store_raw16(&h[off], new_v);
        cs = csum_replace16(cs, old_v, new_v);
        break;
      }
      case 1: {  // an address
        const size_t off = rng() % 2 ? 12 : 16;
        const uint32_t old_v = load_raw32(&h[off]);
        const uint32_t new_v = rng();
        std::memcpy(&h[off], &new_v, 4);
        cs = csum_replace32(cs, old_v, new_v);
        break;
      }
      default: {  // a byte (TOS at 1, TTL at 8, or anywhere but the checksum)
        size_t off;
        do off = rng() % hlen;
        while (off == 10 || off == 11 || off == 0);
        const uint8_t old_v = h[off];
        const auto new_v = static_cast<uint8_t>(rng());
        h[off] = new_v;
        cs = csum_replace8(cs, old_v, new_v, off % 2 == 0);
        break;
      }
    }
    REQUIRE(cs == ipv4_header_checksum(h.data(), hlen));
  }
}

TEST_CASE("incremental update of L4 checksums equals a rebuilt packet", "[checksum]") {
  std::mt19937 rng(4321);
  for (int iter = 0; iter < 2000; ++iter) {
    const uint32_t src = rng(), dst = rng(), new_src = rng();
    const auto sport = static_cast<uint16_t>(rng()), dport = static_cast<uint16_t>(rng());
    const size_t plen = rng() % 64;
    const bool tcp = rng() % 2 != 0;
    auto make = [&](uint32_t s) {
      PacketBuilder b;
      b.ipv4(s, dst).ttl(static_cast<uint8_t>(iter)).payload(plen);
      if (tcp) {
        b.tcp(sport, dport);
      } else {
        b.udp(sport, dport);
      }
      return b.build();
    };
    std::vector<uint8_t> pkt = make(src);
    const std::vector<uint8_t> want = make(new_src);
    uint8_t* ip = pkt.data() + 14;
    uint8_t* csum = ip + 20 + (tcp ? 16 : 6);
    store_raw16(ip + 10, csum_replace32(load_raw16(ip + 10), src, new_src));
    store_raw16(csum, tcp ? csum_replace32(load_raw16(csum), src, new_src)
                          : udp_csum_replace32(load_raw16(csum), src, new_src));
    std::memcpy(ip + 12, &new_src, 4);
    REQUIRE(pkt == want);
  }
}

TEST_CASE("incremental update of IPv6 addresses equals a rebuilt packet", "[checksum]") {
  std::mt19937 rng(6);
  for (int iter = 0; iter < 2000; ++iter) {
    Ipv6Addr src, dst, new_dst;
    for (auto& b : src) b = static_cast<uint8_t>(rng());
    for (auto& b : dst) b = static_cast<uint8_t>(rng());
    for (auto& b : new_dst) b = static_cast<uint8_t>(rng());
    const bool tcp = iter % 3 == 0, icmp = iter % 3 == 1;
    const size_t plen = rng() % 40;
    auto make = [&](const Ipv6Addr& d) {
      PacketBuilder b;
      b.ipv6(src, d).payload(plen);
      if (tcp) {
        b.tcp(80, 443);
      } else if (icmp) {
        b.icmpv6_echo(1, static_cast<uint16_t>(iter));
      } else {
        b.udp(53, 53);
      }
      return b.build();
    };
    std::vector<uint8_t> pkt = make(dst);
    const std::vector<uint8_t> want = make(new_dst);
    uint8_t* csum = pkt.data() + 14 + 40 + (tcp ? 16 : icmp ? 2 : 6);
    store_raw16(csum, tcp || icmp
                          ? csum_replace128(load_raw16(csum), dst.data(), new_dst.data())
                          : udp_csum_replace128(load_raw16(csum), dst.data(), new_dst.data()));
    std::memcpy(pkt.data() + 14 + 24, new_dst.data(), 16);
    REQUIRE(pkt == want);
  }
}

TEST_CASE("UDP checksum: zero stays zero, a computed zero becomes 0xffff", "[checksum]") {
  CHECK(udp_csum_replace16(0, 0x1111, 0x2222) == 0);
  CHECK(udp_csum_replace32(0, 0x11111111, 0x22222222) == 0);
  uint8_t a[16] = {1}, b[16] = {2};
  CHECK(udp_csum_replace128(0, a, b) == 0);
  // ~(~HC + ~m + m') == 0 for m = 0, m' = HC.
  CHECK(csum_replace16(0x1234, 0x0000, 0x1234) == 0);
  CHECK(udp_csum_replace16(0x1234, 0x0000, 0x1234) == 0xffff);
  CHECK(udp_csum_fixup(0) == 0xffff);
  CHECK(udp_csum_fixup(7) == 7);

  // A packet without a UDP checksum keeps none after an address rewrite.
  auto pkt = PacketBuilder().ipv4("10.0.0.1", "10.0.0.2").udp(1, 2).no_udp_checksum().build();
  CHECK(load_raw16(pkt.data() + 14 + 20 + 6) == 0);
}

TEST_CASE("builder checksums verify", "[checksum][packet_builder]") {
  const uint32_t s4 = ipv4_addr("192.0.2.1"), d4 = ipv4_addr("198.51.100.7");
  const Ipv6Addr s6 = ipv6_addr("2001:db8::1"), d6 = ipv6_addr("2001:db8::2");

  for (size_t plen : {0u, 1u, 17u, 64u}) {
    INFO("payload " << plen);
    auto tcp = PacketBuilder()
                   .ipv4(s4, d4)
                   .tcp(1000, 22)
                   .tcp_flags(kTcpSyn | kTcpAck)
                   .tcp_options(std::vector<uint8_t>{2, 4, 5, 0xb4})
                   .payload(plen)
                   .build();
    CHECK(ipv4_header_checksum_ok(tcp.data() + 14, tcp.size() - 14));
    const size_t tl = tcp.size() - 34;
    CHECK(l4_sum_ok(ipv4_pseudo_sum(s4, d4, 6, static_cast<uint16_t>(tl)), tcp.data() + 34, tl));

    auto udp = PacketBuilder()
                   .ipv4(s4, d4)
                   .ipv4_options(std::vector<uint8_t>{1, 1, 1, 1})
                   .udp(53, 5353)
                   .payload(plen)
                   .build();
    CHECK(ipv4_header_checksum_ok(udp.data() + 14, 24));
    const size_t ul = udp.size() - 38;
    CHECK(l4_sum_ok(ipv4_pseudo_sum(s4, d4, 17, static_cast<uint16_t>(ul)), udp.data() + 38, ul));
    CHECK(load_raw16(udp.data() + 38 + 4) == hton16(static_cast<uint16_t>(ul)));

    auto icmp = PacketBuilder().ipv4(s4, d4).icmp_echo(7, 9).payload(plen).build();
    CHECK(ntoh16(inet_checksum(icmp.data() + 34, icmp.size() - 34)) == 0);

    auto icmp6 =
        PacketBuilder().ipv6(s6, d6).ipv6_hop_by_hop().icmpv6_echo(7, 9).payload(plen).build();
    const size_t il = icmp6.size() - 14 - 48;
    CHECK(l4_sum_ok(ipv6_pseudo_sum(s6.data(), d6.data(), 58, static_cast<uint32_t>(il)),
                    icmp6.data() + 62, il));

    auto udp6 = PacketBuilder().ipv6(s6, d6).udp(1, 2).payload(plen).build();
    const size_t u6 = udp6.size() - 54;
    CHECK(l4_sum_ok(ipv6_pseudo_sum(s6.data(), d6.data(), 17, static_cast<uint32_t>(u6)),
                    udp6.data() + 54, u6));
  }
}

TEST_CASE("SCTP CRC32c known vector", "[checksum][packet_builder]") {
  // CRC32c("123456789") = 0xe3069283 (the standard check value); SCTP stores the CRC
  // least significant byte first.
  auto pkt =
      PacketBuilder()
          .ipv4("10.0.0.1", "10.0.0.2")
          .sctp(5000, 5001, 0x01020304)
          .payload(std::vector<uint8_t>{0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39})
          .build();
  const uint8_t* s = pkt.data() + 34;
  CHECK(s[12] == '1');
  // Recompute bitwise here with the checksum field zeroed.
  std::vector<uint8_t> seg(s, s + pkt.size() - 34);
  for (size_t i = 8; i < 12; ++i) seg.at(i) = 0;
  uint32_t crc = 0xffffffffu;
  for (uint8_t byte : seg) {
    crc ^= byte;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1u)));
  }
  crc = ~crc;
  CHECK(s[8] == static_cast<uint8_t>(crc));
  CHECK(s[11] == static_cast<uint8_t>(crc >> 24));
  // The same algorithm on the RFC check string.
  crc = 0xffffffffu;
  for (char c : std::string_view("123456789")) {
    crc ^= static_cast<uint8_t>(c);
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1u)));
  }
  CHECK(~crc == 0xe3069283u);
}
