// IP fragment reassembly tests (ipf.hpp): IPv4 and IPv6 datagrams built whole with
// PacketBuilder, cut into fragments by hand (the parser must see them as fragments), fed
// in every order; the reassembled frame must be the unfragmented one byte for byte, and
// apply() must turn the fragments into the fragments of the NAT'd datagram byte for byte.
// Refusals (overlap, duplicate, too small, lengths, checksum), pass-through (disabled,
// max_nfrags, failed lists), expiry and purge with an injected clock, zones / recirc ids /
// protocols keeping lists apart, configuration messages, counters, dump text, and two
// threads at once. Expected behaviour follows OVS 3.1 lib/ipf.c except where ipf.hpp says
// it differs.
#include "dataplane/conntrack/ipf.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "flowtables/bytes.hpp"
#include "flowtables/checksum.hpp"
#include "flowtables/flow_key.hpp"
#include "flowtables/packet_builder.hpp"
#include "flowtables/packet_parser.hpp"

using namespace gl::ct;
using gl::flow::PacketBuilder;

namespace {

using Bytes = std::vector<uint8_t>;

constexpr uint64_t kT0 = 5'000'000;  // the injected clock's start, ms

using gl::flow::load_be16;
using gl::flow::store_be16;

// Deterministic, non-periodic payload bytes (a misplaced chunk shows).
Bytes noise(size_t n, uint32_t seed = 1) {
  Bytes b(n);
  uint32_t x = seed * 2654435761u + 12345;
  for (auto& v : b) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    v = static_cast<uint8_t>(x);
  }
  return b;
}

uint16_t l3_of(const Bytes& frame) {
  gl::flow::FlowKey k{};
  gl::flow::PacketLayout lay{};
  gl::flow::parse_packet(frame, k, lay);
  return lay.l3_ofs;
}

// One fragment of an unfragmented IPv4 datagram: data [off, off + len) of its payload.
Bytes v4_frag(const Bytes& whole, uint32_t off, uint32_t len, bool more) {
  const uint16_t l3 = l3_of(whole);
  const uint8_t* ip = whole.data() + l3;
  const uint32_t ihl = (ip[0] & 0x0fu) * 4;
  const uint32_t data_len = load_be16(ip + 2) - ihl;
  REQUIRE(off + len <= data_len);
  REQUIRE(off % 8 == 0);
  Bytes f(whole.begin(), whole.begin() + l3 + ihl);
  f.insert(f.end(), ip + ihl + off, ip + ihl + off + len);
  uint8_t* h = f.data() + l3;
  store_be16(h + 2, ihl + len);
  store_be16(h + 6, (load_be16(h + 6) & 0x4000u) | (more ? 0x2000u : 0) | off / 8);
  h[10] = h[11] = 0;
  const uint16_t csum = gl::flow::ipv4_header_checksum(h, ihl);
  std::memcpy(h + 10, &csum, 2);
  return f;
}

// One fragment of an unfragmented IPv6 datagram: the base header and the first `keep`
// extension headers stay in front (the unfragmentable part), then a fragment header.
Bytes v6_frag(const Bytes& whole, int keep, uint32_t off, uint32_t len, bool more,
              uint32_t id = 0x01020304) {
  const uint16_t l3 = l3_of(whole);
  const uint8_t* ip = whole.data() + l3;
  uint32_t q = 40, nh_ofs = 6;
  for (int i = 0; i < keep; ++i) {
    nh_ofs = q;
    q += (ip[q + 1] + 1u) * 8;
  }
  const uint32_t data_len = 40u + load_be16(ip + 4) - q;
  REQUIRE(off + len <= data_len);
  REQUIRE(off % 8 == 0);
  Bytes f(whole.begin(), whole.begin() + l3 + q);
  const uint8_t nh = f[l3 + nh_ofs];
  f[l3 + nh_ofs] = 44;
  const uint32_t offlg = off | (more ? 1u : 0u);
  const uint8_t fh[8] = {nh,
                         0,
                         static_cast<uint8_t>(offlg >> 8),
                         static_cast<uint8_t>(offlg),
                         static_cast<uint8_t>(id >> 24),
                         static_cast<uint8_t>(id >> 16),
                         static_cast<uint8_t>(id >> 8),
                         static_cast<uint8_t>(id)};
  f.insert(f.end(), fh, fh + 8);
  f.insert(f.end(), ip + q + off, ip + q + off + len);
  store_be16(f.data() + l3 + 4, q - 40 + 8 + len);
  return f;
}

// The data length of a whole datagram (what its fragments carry together).
uint32_t data_len_of(const Bytes& whole, int v6_keep = -1) {
  const uint8_t* ip = whole.data() + l3_of(whole);
  if (v6_keep < 0) return load_be16(ip + 2) - (ip[0] & 0x0fu) * 4;
  uint32_t q = 40;
  for (int i = 0; i < v6_keep; ++i) q += (ip[q + 1] + 1u) * 8;
  return 40u + load_be16(ip + 4) - q;
}

// Cuts a datagram into fragments of `sizes` bytes of data, the last one taking the rest.
// v6_keep < 0: IPv4.
std::vector<Bytes> cut(const Bytes& whole, const std::vector<uint32_t>& sizes, int v6_keep = -1,
                       uint32_t id = 0x01020304) {
  const uint32_t total = data_len_of(whole, v6_keep);
  std::vector<Bytes> out;
  uint32_t off = 0;
  for (size_t i = 0; i <= sizes.size(); ++i) {
    const uint32_t len = i < sizes.size() ? sizes[i] : total - off;
    const bool more = i < sizes.size();
    out.push_back(v6_keep < 0 ? v4_frag(whole, off, len, more)
                              : v6_frag(whole, v6_keep, off, len, more, id));
    off += len;
  }
  return out;
}

// add()'s output with its scratch buffer.
struct Out {
  Bytes buf = Bytes(kIpfScratchBytes);
  std::unique_ptr<Completed> c = std::make_unique<Completed>();
  Out() { c->scratch = buf; }
  Bytes pkt() const { return Bytes(c->pkt, c->pkt + c->len); }
};

// Offers a frame as the PMD would: parsed first, l3_ofs from the layout, the frame's own
// vector as the handle.
struct Offer {
  AddResult r;
  IpfDrop why;
  IpfPass pass;
};
Offer offer(Ipf& ipf, Bytes& frame, Out& out, uint64_t now = kT0, uint16_t zone = 0,
            uint32_t recirc = 0) {
  gl::flow::FlowKey k{};
  gl::flow::PacketLayout lay{};
  gl::flow::parse_packet(frame, k, lay);
  FragIn in;
  in.frame = frame.data();
  in.len = static_cast<uint32_t>(frame.size());
  in.l3_ofs = lay.l3_ofs;
  in.zone = zone;
  in.recirc_id = recirc;
  in.handle = &frame;
  Offer o{AddResult::kHeld, IpfDrop::kCount, IpfPass::kCount};
  o.r = ipf.add(in, now, *out.c, &o.why, &o.pass);
  return o;
}

const char* result_name(AddResult r) {
  constexpr const char* kNames[] = {"held", "complete", "pass", "invalid"};
  return kNames[static_cast<int>(r)];
}

// A datagram and how to cut it.
struct Datagram {
  const char* desc;
  Bytes whole;
  std::vector<uint32_t> sizes;  // data per fragment but the last
  int v6_keep;                  // < 0: IPv4
};

std::vector<Datagram> v4_datagrams() {
  const std::array<uint8_t, 4> opt = {0x94, 0x04, 0, 0};  // router alert
  return {
      {"UDP",
       PacketBuilder()
           .ipv4("10.0.0.1", "10.0.0.2")
           .ip_id(0x1234)
           .udp(1000, 2000)
           .payload(noise(3000))
           .build(),
       {1232, 1232},
       -1},
      {"TCP with DF, three fragments and a tiny last",
       PacketBuilder()
           .ipv4("10.0.0.1", "10.0.0.2")
           .ip_id(7)
           .df()
           .tcp(1000, 80)
           .payload(noise(2472, 2))
           .build(),
       {1248, 1232},
       -1},
      {"VLAN-tagged ICMP",
       PacketBuilder()
           .vlan(10, 3)
           .ipv4("10.1.0.1", "10.1.0.2")
           .ip_id(9)
           .icmp_echo(1, 2)
           .payload(noise(3000, 3))
           .build(),
       {1480, 1232},
       -1},
      {"IP options in every fragment",
       PacketBuilder()
           .ipv4("10.0.0.1", "10.0.0.2")
           .ip_id(3)
           .ipv4_options(opt)
           .udp(5, 6)
           .payload(noise(2500, 4))
           .build(),
       {1200, 1200},
       -1},
  };
}

std::vector<Datagram> v6_datagrams() {
  return {
      {"UDP, no extension header",
       PacketBuilder().ipv6("fd00::1", "fd00::2").udp(1000, 2000).payload(noise(3000, 5)).build(),
       {1232, 1232},
       0},
      {"hop-by-hop, destination options and routing before the fragment header",
       PacketBuilder()
           .ipv6("fd00::1", "fd00::2")
           .ipv6_hop_by_hop(8)
           .ipv6_dest_opts(16)
           .ipv6_routing(24)
           .tcp(1000, 80)
           .payload(noise(3000, 6))
           .build(),
       {1216, 1216},
       3},
      {"destination options after the fragment header (fragmentable part)",
       PacketBuilder()
           .ipv6("fd00::1", "fd00::2")
           .ipv6_hop_by_hop(8)
           .ipv6_dest_opts(8)
           .udp(7, 8)
           .payload(noise(2900, 7))
           .build(),
       {1240, 1240},
       1},
      {"VLAN-tagged ICMPv6",
       PacketBuilder()
           .vlan(20)
           .ipv6("fd00::a", "fd00::b")
           .icmpv6_echo(3, 4)
           .payload(noise(2000, 8))
           .build(),
       {1232},
       0},
  };
}

// Every order of n fragments.
std::vector<std::vector<size_t>> orders(size_t n) {
  std::vector<size_t> o(n);
  for (size_t i = 0; i < n; ++i) o[i] = i;
  std::vector<std::vector<size_t>> all;
  do all.push_back(o);
  while (std::next_permutation(o.begin(), o.end()));
  return all;
}

// Feeds fragments in `order`; checks held, held, ..., complete; returns the frames' vector
// addresses in the order add() gave the handles back.
void reassemble_and_check(Ipf& ipf, std::vector<Bytes>& frags, const std::vector<size_t>& order,
                          const Bytes& whole, Out& out) {
  for (size_t i = 0; i < order.size(); ++i) {
    const Offer o = offer(ipf, frags[order[i]], out);
    INFO("fragment " << order[i] << " offered " << i << "th: " << result_name(o.r));
    REQUIRE(o.r == (i + 1 < order.size() ? AddResult::kHeld : AddResult::kComplete));
  }
  REQUIRE(out.c->n == frags.size());
  for (size_t i = 0; i < frags.size(); ++i) {
    CHECK(out.c->frags[i].handle == &frags[i]);  // offset order
    CHECK(out.c->frags[i].frame == frags[i].data());
  }
  CHECK(out.pkt() == whole);
  CHECK(out.c->l3_ofs == l3_of(whole));
  gl::flow::FlowKey k{};
  gl::flow::PacketLayout lay{};
  CHECK(gl::flow::parse_packet(out.c->pkt, out.c->len, k, lay) == gl::flow::ParseResult::kOk);
  CHECK_FALSE(lay.is_fragment());
}

}  // namespace

// ---- reassembly ---------------------------------------------------------------------

TEST_CASE("ipf: IPv4 fragments in every order reassemble to the unfragmented frame", "[ipf]") {
  const auto dgs = v4_datagrams();
  const auto& dg = dgs[GENERATE(range(0, 4))];
  const auto n = dg.sizes.size() + 1;
  const auto order = GENERATE_COPY(from_range(orders(n)));
  INFO(dg.desc);
  Ipf ipf;
  Out out;
  auto frags = cut(dg.whole, dg.sizes);
  for (auto& f : frags) {
    gl::flow::FlowKey k{};
    gl::flow::PacketLayout lay{};
    REQUIRE(gl::flow::parse_packet(f, k, lay) == gl::flow::ParseResult::kOk);
    REQUIRE(lay.is_fragment());
  }
  reassemble_and_check(ipf, frags, order, dg.whole, out);
  CHECK(out.c->version == 4);
  const IpfStatus s = ipf.status();
  CHECK(s.v4.accepted == n);
  CHECK(s.v4.completed_sent == n);
  CHECK(s.nfrag == 0);
  CHECK(s.nlists == 0);
  CHECK(s.v6.accepted == 0);
}

TEST_CASE("ipf: IPv6 fragments in every order reassemble without the fragment header", "[ipf]") {
  const auto dgs = v6_datagrams();
  const auto& dg = dgs[GENERATE(range(0, 4))];
  const auto n = dg.sizes.size() + 1;
  const auto order = GENERATE_COPY(from_range(orders(n)));
  INFO(dg.desc);
  Ipf ipf;
  Out out;
  auto frags = cut(dg.whole, dg.sizes, dg.v6_keep);
  for (auto& f : frags) {
    gl::flow::FlowKey k{};
    gl::flow::PacketLayout lay{};
    REQUIRE(gl::flow::parse_packet(f, k, lay) == gl::flow::ParseResult::kOk);
    REQUIRE(lay.is_fragment());
  }
  reassemble_and_check(ipf, frags, order, dg.whole, out);
  CHECK(out.c->version == 6);
  const IpfStatus s = ipf.status();
  CHECK(s.v6.accepted == n);
  CHECK(s.v6.completed_sent == n);
  CHECK(s.nfrag == 0);
  CHECK(s.v4.accepted == 0);
}

TEST_CASE("ipf: a last fragment with Ethernet padding; the reassembled frame has none", "[ipf]") {
  const Bytes whole =
      PacketBuilder().ipv4("10.0.0.1", "10.0.0.2").udp(1, 2).payload(noise(1232)).build();
  auto frags = cut(whole, {1232});  // the last carries 8 bytes: a 42-byte frame
  REQUIRE(frags[1].size() == 42);
  frags[1].resize(60, 0);
  Ipf ipf;
  Out out;
  REQUIRE(offer(ipf, frags[1], out).r == AddResult::kHeld);
  REQUIRE(offer(ipf, frags[0], out).r == AddResult::kComplete);
  CHECK(out.pkt() == whole);
}

TEST_CASE("ipf: parse_fragment reads IPv6 keys, offsets and the header to patch", "[ipf]") {
  const Bytes whole = PacketBuilder()
                          .ipv6("fd00::1", "fd00::2")
                          .ipv6_hop_by_hop(8)
                          .ipv6_routing(16)
                          .udp(1, 2)
                          .payload(noise(2000))
                          .build();
  const Bytes f = v6_frag(whole, 2, 1232, 776, false, 0xdeadbeef);
  FragInfo fi;
  REQUIRE(parse_fragment(f.data(), static_cast<uint32_t>(f.size()), 14, fi) ==
          FragParse::kFragment);
  CHECK(fi.version == 6);
  CHECK(fi.proto == 17);
  CHECK_FALSE(fi.more);
  CHECK(fi.id == 0xdeadbeef);
  CHECK(fi.offset == 1232);
  CHECK(fi.unfrag_len == 40 + 8 + 16);
  CHECK(fi.nh_ofs == 40 + 8);  // the routing header's next header
  CHECK(fi.data_ofs == 14 + 64 + 8);
  CHECK(fi.data_len == 776);
  CHECK(fi.l3_len == 64 + 8 + 776);
  CHECK(std::memcmp(fi.src, gl::flow::ipv6_addr("fd00::1").data(), 16) == 0);
}

// ---- refusals -----------------------------------------------------------------------

TEST_CASE("ipf: overlapping and duplicate fragments are refused in either order", "[ipf]") {
  // Data of the datagram below: 4000 bytes. A fragment: {offset, length, more}.
  struct F {
    uint32_t off, len;
    bool more;
  };
  struct Row {
    const char* desc;
    F a, b;
  };
  const Row rows[] = {
      {"1 octet: a last fragment on the last octet of a held one",
       {0, 1232, true},
       {1224, 1, false}},
      {"1 octet: a last fragment ending one octet into the next",
       {1232, 1232, true},
       {8, 1225, false}},
      {"8 octets: adjacent offsets", {0, 1232, true}, {1224, 1232, true}},
      {"a fragment covering a held one", {1232, 1232, true}, {0, 3696, true}},
      {"a duplicate", {1232, 1232, true}, {1232, 1232, true}},
      {"a duplicate last fragment", {2464, 1536, false}, {2464, 1536, false}},
  };
  const Bytes whole =
      PacketBuilder().ipv4("10.0.0.1", "10.0.0.2").udp(1, 2).payload(noise(3992)).build();
  REQUIRE(data_len_of(whole) == 4000);
  const Row& row = rows[GENERATE(range(0, 6))];
  const bool reversed = GENERATE(false, true);
  INFO(row.desc << (reversed ? " (reversed)" : ""));
  Bytes a = v4_frag(whole, row.a.off, row.a.len, row.a.more);
  Bytes b = v4_frag(whole, row.b.off, row.b.len, row.b.more);
  Ipf ipf;
  Out out;
  Bytes& first = reversed ? b : a;
  Bytes& second = reversed ? a : b;
  REQUIRE(offer(ipf, first, out).r == AddResult::kHeld);
  const Offer o = offer(ipf, second, out);
  CHECK(o.r == AddResult::kInvalid);
  CHECK(o.why == IpfDrop::kOverlap);
  const IpfStatus s = ipf.status();
  CHECK(s.v4.overlap == 1);
  CHECK(s.v4.accepted == 1);
  CHECK(s.nfrag == 1);

  // The same for IPv6.
  const Bytes whole6 =
      PacketBuilder().ipv6("fd00::1", "fd00::2").udp(1, 2).payload(noise(3992)).build();
  REQUIRE(data_len_of(whole6, 0) == 4000);
  Bytes a6 = v6_frag(whole6, 0, row.a.off, row.a.len, row.a.more);
  Bytes b6 = v6_frag(whole6, 0, row.b.off, row.b.len, row.b.more);
  REQUIRE(offer(ipf, reversed ? b6 : a6, out).r == AddResult::kHeld);
  const Offer o6 = offer(ipf, reversed ? a6 : b6, out);
  CHECK(o6.r == AddResult::kInvalid);
  CHECK(o6.why == IpfDrop::kOverlap);
  CHECK(ipf.status().v6.overlap == 1);
}

TEST_CASE("ipf: a duplicate is refused and the datagram still completes", "[ipf]") {
  const Bytes whole =
      PacketBuilder().ipv4("10.0.0.1", "10.0.0.2").udp(1, 2).payload(noise(3000)).build();
  auto frags = cut(whole, {1232, 1232});
  Bytes dup = frags[1];
  Ipf ipf;
  Out out;
  REQUIRE(offer(ipf, frags[1], out).r == AddResult::kHeld);
  REQUIRE(offer(ipf, dup, out).r == AddResult::kInvalid);
  REQUIRE(offer(ipf, frags[0], out).r == AddResult::kHeld);
  REQUIRE(offer(ipf, frags[2], out).r == AddResult::kComplete);
  CHECK(out.pkt() == whole);
  CHECK(out.c->n == 3);
  CHECK(out.c->frags[1].handle == &frags[1]);
  const IpfStatus s = ipf.status();
  CHECK(s.v4.accepted == 3);
  CHECK(s.v4.overlap == 1);
  CHECK(s.v4.completed_sent == 3);
}

TEST_CASE("ipf: a non-last fragment below min_frag is too small; the last may be small", "[ipf]") {
  SECTION("IPv4: min_frag 1200 counts the IP header") {
    const Bytes whole =
        PacketBuilder().ipv4("10.0.0.1", "10.0.0.2").udp(1, 2).payload(noise(2400)).build();
    Bytes small = v4_frag(whole, 0, 1176, true);  // 1196 bytes of IP
    Bytes ok = v4_frag(whole, 0, 1184, true);     // 1204
    Bytes last = v4_frag(whole, 2400, 8, false);  // 28: the last may be anything
    Ipf ipf;
    Out out;
    const Offer o = offer(ipf, small, out);
    CHECK(o.r == AddResult::kInvalid);
    CHECK(o.why == IpfDrop::kTooSmall);
    CHECK(offer(ipf, ok, out).r == AddResult::kHeld);
    CHECK(offer(ipf, last, out).r == AddResult::kHeld);
    CHECK(ipf.status().v4.too_small == 1);
    CHECK(ipf.status().v4.invalid[static_cast<size_t>(IpfDrop::kTooSmall)] == 1);
    // Lowered to OVS's floor, the small one is taken.
    REQUIRE(ipf.set_min_frag(IpfFamily::kV4, 400).has_value());
    Bytes small2 = v4_frag(whole, 1184, 376, true);  // 396 bytes of IP: still too small
    CHECK(offer(ipf, small2, out).why == IpfDrop::kTooSmall);
    Bytes small3 = v4_frag(whole, 1184, 384, true);  // 404
    CHECK(offer(ipf, small3, out).r == AddResult::kHeld);
    CHECK(ipf.status().v4.too_small == 2);
  }
  SECTION("IPv6: min_frag 1280 counts the headers and the fragment header") {
    const Bytes whole =
        PacketBuilder().ipv6("fd00::1", "fd00::2").udp(1, 2).payload(noise(2400)).build();
    Bytes small = v6_frag(whole, 0, 0, 1224, true);  // 40 + 8 + 1224 = 1272
    Bytes ok = v6_frag(whole, 0, 0, 1232, true);     // 1280
    Ipf ipf;
    Out out;
    CHECK(offer(ipf, small, out).why == IpfDrop::kTooSmall);
    CHECK(offer(ipf, ok, out).r == AddResult::kHeld);
    const IpfStatus s = ipf.status();
    CHECK(s.v6.too_small == 1);
    CHECK(s.v4.too_small == 0);
  }
}

TEST_CASE("ipf: inconsistent lengths are refused at once", "[ipf]") {
  const Bytes whole =
      PacketBuilder().ipv4("10.0.0.1", "10.0.0.2").udp(1, 2).payload(noise(4000)).build();
  REQUIRE(data_len_of(whole) == 4008);
  // Data past 65535 bytes of datagram: offset 65528 + 8 bytes + a 20-byte header.
  Bytes far = v4_frag(whole, 0, 8, false);
  uint8_t* h = far.data() + 14;
  store_be16(h + 6, 8191);  // offset 65528, last
  h[10] = h[11] = 0;
  const uint16_t csum = gl::flow::ipv4_header_checksum(h, 20);
  std::memcpy(h + 10, &csum, 2);
  struct Row {
    const char* desc;
    std::vector<Bytes> held;
    Bytes offered;
  };
  const std::vector<Row> rows = {
      {"data past the last fragment",
       {v4_frag(whole, 2464, 1000, false)},
       v4_frag(whole, 3464, 504, true)},
      {"a second, different last fragment",
       {v4_frag(whole, 2464, 1000, false)},
       v4_frag(whole, 1232, 1232, false)},
      {"a last fragment ending before data held",
       {v4_frag(whole, 1232, 1232, true)},
       v4_frag(whole, 8, 1224, false)},
      {"a non-last fragment's data not a multiple of 8", {}, v4_frag(whole, 0, 1233, true)},
      {"no data", {}, v4_frag(whole, 1232, 0, false)},
      {"data past 65535 bytes", {}, far},
  };
  const Row& row = rows[GENERATE(range(0, 6))];
  INFO(row.desc);
  Ipf ipf;
  REQUIRE(ipf.set_min_frag(IpfFamily::kV4, 400).has_value());
  Out out;
  auto held = row.held;
  for (auto& f : held) REQUIRE(offer(ipf, f, out).r == AddResult::kHeld);
  Bytes offered = row.offered;
  const Offer o = offer(ipf, offered, out);
  CHECK(o.r == AddResult::kInvalid);
  CHECK(o.why == IpfDrop::kLength);
  const IpfStatus s = ipf.status();
  CHECK(s.v4.invalid[static_cast<size_t>(IpfDrop::kLength)] == 1);
  CHECK(s.v4.overlap == 0);
  CHECK(s.nfrag == held.size());
}

TEST_CASE("ipf: malformed fragments are invalid, non-fragments pass, both uncounted by OVS",
          "[ipf]") {
  const Bytes whole =
      PacketBuilder().ipv4("10.0.0.1", "10.0.0.2").udp(1, 2).payload(noise(2000)).build();
  const Bytes good = v4_frag(whole, 0, 1232, true);
  struct Row {
    const char* desc;
    Bytes frame;
    AddResult r;
    IpfDrop why;
    IpfPass pass;
  };
  Bytes bad_csum = good;
  bad_csum[14 + 10] ^= 0x01;
  Bytes bad_len = good;
  store_be16(bad_len.data() + 14 + 2, static_cast<uint32_t>(good.size()) - 14 + 1);
  Bytes trunc = good;
  trunc.resize(14 + 19);
  const Bytes whole6 =
      PacketBuilder().ipv6("fd00::1", "fd00::2").udp(1, 2).payload(noise(2000)).build();
  Bytes atomic6 = v6_frag(whole6, 0, 0, data_len_of(whole6, 0), false);  // offset 0, M 0
  const Bytes whole6h = PacketBuilder()
                            .ipv6("fd00::1", "fd00::2")
                            .ipv6_hop_by_hop()
                            .udp(1, 2)
                            .payload(noise(2000))
                            .build();
  Bytes chain6 = v6_frag(whole6h, 1, 0, 1232, true);
  chain6[14 + 41] = 200;  // the hop-by-hop header now 1608 bytes long: past the payload
  std::vector<Row> rows = {
      {"bad IPv4 header checksum", bad_csum, AddResult::kInvalid, IpfDrop::kL3Checksum,
       IpfPass::kCount},
      {"IPv4 total length past the frame", bad_len, AddResult::kInvalid, IpfDrop::kHeader,
       IpfPass::kCount},
      {"IPv4 header truncated", trunc, AddResult::kInvalid, IpfDrop::kHeader, IpfPass::kCount},
      {"an unfragmented IPv4 packet", whole, AddResult::kPass, IpfDrop::kCount,
       IpfPass::kNotFragment},
      {"an IPv6 atomic fragment", atomic6, AddResult::kPass, IpfDrop::kCount,
       IpfPass::kNotFragment},
      {"an IPv6 extension header past the payload", chain6, AddResult::kInvalid, IpfDrop::kHeader,
       IpfPass::kCount},
  };
  Ipf ipf;
  Out out;
  for (auto& row : rows) {
    INFO(row.desc);
    FragIn in;
    in.frame = row.frame.data();
    in.len = static_cast<uint32_t>(row.frame.size());
    in.l3_ofs = 14;
    in.handle = &row.frame;
    IpfDrop why = IpfDrop::kCount;
    IpfPass pass = IpfPass::kCount;
    CHECK(ipf.add(in, kT0, *out.c, &why, &pass) == row.r);
    CHECK(why == row.why);
    CHECK(pass == row.pass);
  }
  const IpfStatus s = ipf.status();
  CHECK(s.v4.invalid[static_cast<size_t>(IpfDrop::kL3Checksum)] == 1);
  CHECK(s.v4.invalid[static_cast<size_t>(IpfDrop::kHeader)] == 2);
  CHECK(s.v6.invalid[static_cast<size_t>(IpfDrop::kHeader)] == 1);
  CHECK(s.v4.passed[static_cast<size_t>(IpfPass::kNotFragment)] == 0);  // not counted
  CHECK(s.v4.accepted + s.v6.accepted == 0);
  CHECK(s.v4.too_small + s.v4.overlap + s.v6.too_small + s.v6.overlap == 0);
}

// ---- pass-through -------------------------------------------------------------------

TEST_CASE("ipf: max_nfrags held fragments: the next ones pass until room is made", "[ipf]") {
  const Bytes w1 =
      PacketBuilder().ipv4("10.0.0.1", "10.0.0.2").ip_id(1).udp(1, 2).payload(noise(2000)).build();
  const Bytes w2 =
      PacketBuilder().ipv4("10.0.0.1", "10.0.0.2").ip_id(2).udp(1, 2).payload(noise(2000)).build();
  auto f1 = cut(w1, {1232});
  auto f2 = cut(w2, {1232});
  Ipf ipf;
  REQUIRE(ipf.set_max_nfrags(2).has_value());
  Out out;
  CHECK(offer(ipf, f1[0], out).r == AddResult::kHeld);
  CHECK(offer(ipf, f2[0], out).r == AddResult::kHeld);
  const Offer o = offer(ipf, f1[1], out);  // would complete w1, but no room
  CHECK(o.r == AddResult::kPass);
  CHECK(o.pass == IpfPass::kFull);
  IpfStatus s = ipf.status();
  CHECK(s.nfrag == 2);
  CHECK(s.nfrag_max == 2);
  CHECK(s.v4.passed[static_cast<size_t>(IpfPass::kFull)] == 1);
  REQUIRE(ipf.set_max_nfrags(3).has_value());
  CHECK(offer(ipf, f1[1], out).r == AddResult::kComplete);
  CHECK(out.pkt() == w1);
  CHECK(offer(ipf, f2[1], out).r == AddResult::kComplete);
  CHECK(out.pkt() == w2);
  s = ipf.status();
  CHECK(s.nfrag == 0);
  CHECK(s.v4.completed_sent == 4);
  // 0: nothing is held.
  REQUIRE(ipf.set_max_nfrags(0).has_value());
  CHECK(offer(ipf, f1[0], out).pass == IpfPass::kFull);
}

TEST_CASE(
    "ipf: disabled families pass; a disabled family is still checked while the other "
    "is on (OVS)",
    "[ipf]") {
  const Bytes w4 =
      PacketBuilder().ipv4("10.0.0.1", "10.0.0.2").udp(1, 2).payload(noise(2000)).build();
  const Bytes w6 =
      PacketBuilder().ipv6("fd00::1", "fd00::2").udp(1, 2).payload(noise(2000)).build();
  auto f4 = cut(w4, {1232});
  auto f6 = cut(w6, {1232}, 0);
  Bytes small4 = v4_frag(w4, 0, 800, true);
  Ipf ipf;
  Out out;
  REQUIRE(ipf.set_enabled(IpfFamily::kV4, false).has_value());
  CHECK_FALSE(ipf.status().v4.enabled);
  const Offer o = offer(ipf, f4[0], out);
  CHECK(o.r == AddResult::kPass);
  CHECK(o.pass == IpfPass::kDisabled);
  CHECK(offer(ipf, small4, out).why == IpfDrop::kTooSmall);  // checked all the same
  CHECK(offer(ipf, f6[0], out).r == AddResult::kHeld);
  CHECK(offer(ipf, f6[1], out).r == AddResult::kComplete);
  CHECK(out.pkt() == w6);
  REQUIRE(ipf.set_enabled(IpfFamily::kV6, false).has_value());
  CHECK(offer(ipf, small4, out).pass == IpfPass::kDisabled);  // both off: nothing checked
  const IpfStatus s = ipf.status();
  CHECK(s.v4.too_small == 1);
  CHECK(s.v4.passed[static_cast<size_t>(IpfPass::kDisabled)] == 2);
  CHECK(s.v4.accepted == 0);
  REQUIRE(ipf.set_enabled(IpfFamily::kV4, true).has_value());
  CHECK(offer(ipf, f4[0], out).r == AddResult::kHeld);
  CHECK(offer(ipf, f4[1], out).r == AddResult::kComplete);
}

TEST_CASE(
    "ipf: a datagram longer than 65535 bytes fails; its list passes fragments until it "
    "expires",
    "[ipf]") {
  // The first fragment carries 40 bytes of options; the last, with a 20-byte header,
  // passes the per-fragment check (20 + 65512 <= 65535) but 60 + 65512 does not fit.
  const std::array<uint8_t, 40> opt{};  // EOL...
  const Bytes w0 = PacketBuilder()
                       .ipv4("10.0.0.1", "10.0.0.2")
                       .ip_id(5)
                       .ipv4_options(opt)
                       .udp(1, 2)
                       .payload(noise(32768 - 8))
                       .build();
  const Bytes w1 = PacketBuilder()
                       .ipv4("10.0.0.1", "10.0.0.2")
                       .ip_id(5)
                       .ip_proto(17)
                       .payload(noise(65512))
                       .build();
  Bytes first = v4_frag(w0, 0, 32768, true);
  Bytes last = v4_frag(w1, 32768, 65512 - 32768, false);
  Bytes middle = v4_frag(w1, 8, 1232, true);  // would overlap: the failed list answers first
  Ipf ipf;
  Out out;
  CHECK(offer(ipf, last, out).r == AddResult::kHeld);
  CHECK(offer(ipf, first, out).r == AddResult::kHeld);  // held, as OVS: the list fails
  auto lists = ipf.dump();
  REQUIRE(lists.size() == 1);
  CHECK(lists[0].state == "reassemble fail");
  CHECK(lists[0].nfrags == 2);
  const Offer o = offer(ipf, middle, out);
  CHECK(o.r == AddResult::kPass);
  CHECK(o.pass == IpfPass::kListDone);
  std::vector<void*> back;
  CHECK(ipf.expire(kT0 + kIpfDefaultTimeoutMs + 1, [&](void* h, IpfRelease why) {
    CHECK(why == IpfRelease::kExpired);
    back.push_back(h);
  }) == 2);
  CHECK(back == std::vector<void*>{&first, &last});  // offset order
  CHECK(ipf.status().v4.expired_sent == 2);
  CHECK(ipf.status().nfrag == 0);
}

// ---- expiry -------------------------------------------------------------------------

TEST_CASE("ipf: lists expire after the timeout, oldest first, within the budget", "[ipf]") {
  const Bytes w1 =
      PacketBuilder().ipv4("10.0.0.1", "10.0.0.2").ip_id(1).udp(1, 2).payload(noise(3000)).build();
  const Bytes w6 =
      PacketBuilder().ipv6("fd00::1", "fd00::2").udp(1, 2).payload(noise(3000)).build();
  auto f1 = cut(w1, {1232, 1232});
  auto f6 = cut(w6, {1232, 1232}, 0);
  Ipf ipf;
  Out out;
  REQUIRE(offer(ipf, f1[0], out, kT0).r == AddResult::kHeld);
  REQUIRE(offer(ipf, f1[2], out, kT0 + 5000).r == AddResult::kHeld);  // same list: no refresh
  REQUIRE(offer(ipf, f6[1], out, kT0 + 1000).r == AddResult::kHeld);
  std::vector<std::pair<void*, IpfRelease>> back;
  const auto collect = [&](void* h, IpfRelease why) { back.emplace_back(h, why); };
  CHECK(ipf.expire(kT0 + 15000, collect) == 0);  // OVS: expired once now > expiration
  CHECK(ipf.expire(kT0 + 15001, collect, 1) == 1);
  REQUIRE(back.size() == 1);
  CHECK(back[0].first == &f1[0]);
  CHECK(back[0].second == IpfRelease::kExpired);
  // The list being expired takes nothing more.
  const Offer o = offer(ipf, f1[1], out, kT0 + 15001);
  CHECK(o.r == AddResult::kPass);
  CHECK(o.pass == IpfPass::kListDone);
  CHECK(ipf.expire(kT0 + 15001, collect) == 1);  // the v6 list is not due yet
  CHECK(back[1].first == &f1[2]);
  CHECK(ipf.status().nlists == 1);
  CHECK(ipf.expire(kT0 + 16001, collect) == 1);
  CHECK(back[2].first == &f6[1]);
  IpfStatus s = ipf.status();
  CHECK(s.v4.expired_sent == 2);
  CHECK(s.v6.expired_sent == 1);
  CHECK(s.nfrag == 0);
  CHECK(s.nlists == 0);
  // A fragment of the same datagram now starts a new list.
  CHECK(offer(ipf, f1[1], out, kT0 + 20000).r == AddResult::kHeld);
  CHECK(ipf.status().nlists == 1);
}

TEST_CASE("ipf: a list expired kIpfPurgeDelayMs ago is purged; set_timeout_ms", "[ipf]") {
  const Bytes w =
      PacketBuilder().ipv4("10.0.0.1", "10.0.0.2").udp(1, 2).payload(noise(3000)).build();
  auto f = cut(w, {1232, 1232});
  Ipf ipf;
  Out out;
  REQUIRE(offer(ipf, f[0], out, kT0).r == AddResult::kHeld);
  REQUIRE(offer(ipf, f[1], out, kT0).r == AddResult::kHeld);
  std::vector<IpfRelease> whys;
  CHECK(ipf.expire(kT0 + 15000 + kIpfPurgeDelayMs,
                   [&](void*, IpfRelease why) { whys.push_back(why); }) == 2);
  CHECK(whys == std::vector<IpfRelease>{IpfRelease::kPurged, IpfRelease::kPurged});
  IpfStatus s = ipf.status();
  CHECK(s.v4.purged == 2);
  CHECK(s.v4.expired_sent == 0);

  REQUIRE(ipf.set_timeout_ms(100).has_value());
  CHECK(ipf.config().timeout_ms == 100);
  REQUIRE(offer(ipf, f[0], out, kT0).r == AddResult::kHeld);
  CHECK(ipf.expire(kT0 + 100, [](void*, IpfRelease) {}) == 0);
  CHECK(ipf.expire(kT0 + 101, [](void*, IpfRelease) {}) == 1);
  CHECK(ipf.status().v4.expired_sent == 1);
}

TEST_CASE("ipf: drain gives back every fragment held", "[ipf]") {
  Ipf ipf;
  Out out;
  std::vector<Bytes> wholes;
  std::vector<std::vector<Bytes>> frags;
  for (uint16_t id = 0; id < 100; ++id)
    wholes.push_back(PacketBuilder()
                         .ipv4("10.0.0.1", "10.0.0.2")
                         .ip_id(id)
                         .udp(1, 2)
                         .payload(noise(3000, id))
                         .build());
  for (auto& w : wholes) frags.push_back(cut(w, {1232, 1232}));
  for (auto& fs : frags) {
    REQUIRE(offer(ipf, fs[0], out).r == AddResult::kHeld);
    REQUIRE(offer(ipf, fs[2], out).r == AddResult::kHeld);
  }
  CHECK(ipf.status().nfrag == 200);
  CHECK(ipf.status().nlists == 100);
  uint32_t n = 0;
  CHECK(ipf.drain([&](void*, IpfRelease) { ++n; }) == 200);
  CHECK(n == 200);
  CHECK(ipf.status().nfrag == 0);
  CHECK(ipf.status().nlists == 0);
  CHECK(ipf.status().v4.purged == 0);
}

// ---- list keys ----------------------------------------------------------------------

TEST_CASE("ipf: zones, recirc ids, protocols and ids keep lists apart", "[ipf]") {
  const Bytes w =
      PacketBuilder().ipv4("10.0.0.1", "10.0.0.2").ip_id(77).udp(1, 2).payload(noise(2000)).build();
  auto a = cut(w, {1232});
  auto b = cut(w, {1232});
  struct Row {
    const char* desc;
    uint16_t zone_b;
    uint32_t recirc_b;
    int tweak;  // 0: none, 1: protocol, 2: IP id, 3: source address
  };
  const Row rows[] = {
      {"zone", 2, 0, 0},  {"recirc_id", 0, 5, 0},      {"protocol", 0, 0, 1},
      {"IP id", 0, 0, 2}, {"source address", 0, 0, 3},
  };
  const Row& row = rows[GENERATE(range(0, 5))];
  INFO(row.desc);
  if (row.tweak != 0) {
    for (auto& f : b) {
      uint8_t* h = f.data() + 14;
      if (row.tweak == 1) h[9] = 6;
      if (row.tweak == 2) h[5] ^= 1;
      if (row.tweak == 3) h[15] ^= 1;
      h[10] = h[11] = 0;
      const uint16_t csum = gl::flow::ipv4_header_checksum(h, 20);
      std::memcpy(h + 10, &csum, 2);
    }
  }
  Ipf ipf;
  Out out;
  REQUIRE(offer(ipf, a[0], out, kT0, 0, 0).r == AddResult::kHeld);
  // The other half, with a different key: a list of its own, nothing completes.
  CHECK(offer(ipf, b[1], out, kT0, row.zone_b, row.recirc_b).r == AddResult::kHeld);
  CHECK(ipf.status().nlists == 2);
  // Each completes with its own.
  CHECK(offer(ipf, a[1], out, kT0, 0, 0).r == AddResult::kComplete);
  CHECK(out.pkt() == w);
  CHECK(offer(ipf, b[0], out, kT0, row.zone_b, row.recirc_b).r == AddResult::kComplete);
  CHECK(out.c->frags[0].handle == &b[0]);
  CHECK(out.c->frags[1].handle == &b[1]);
  CHECK(ipf.status().nlists == 0);
}

TEST_CASE("ipf: IPv6 lists ignore the next header; IPv4 and IPv6 never share one", "[ipf]") {
  const Bytes w = PacketBuilder().ipv6("fd00::1", "fd00::2").udp(1, 2).payload(noise(2000)).build();
  auto f = cut(w, {1232}, 0);
  f[1][14 + 40] = 6;  // the last fragment's fragment header says TCP: same list (OVS)
  Ipf ipf;
  Out out;
  REQUIRE(offer(ipf, f[0], out).r == AddResult::kHeld);
  REQUIRE(offer(ipf, f[1], out).r == AddResult::kComplete);
  CHECK(out.pkt() == w);  // the first fragment's next header wins
}

// ---- apply() ------------------------------------------------------------------------

TEST_CASE("ipf: apply() makes the fragments those of the tracked (NAT'd) datagram", "[ipf]") {
  struct Row {
    const char* desc;
    Bytes before, after;  // the datagram, and as conntrack leaves it
    std::vector<uint32_t> sizes;
    int v6_keep;
  };
  const auto p = noise(3000, 9);
  const std::vector<Row> rows = {
      {"IPv4 SNAT: source address and port",
       PacketBuilder().ipv4("10.0.0.1", "10.0.0.2").ip_id(4).udp(1000, 53).payload(p).build(),
       PacketBuilder().ipv4("192.168.7.9", "10.0.0.2").ip_id(4).udp(4000, 53).payload(p).build(),
       {1232, 1232},
       -1},
      {"IPv4 DNAT: destination address and port, TCP",
       PacketBuilder().ipv4("10.0.0.1", "10.0.0.2").ip_id(4).tcp(1000, 80).payload(p).build(),
       PacketBuilder().ipv4("10.0.0.1", "172.16.0.1").ip_id(4).tcp(1000, 8080).payload(p).build(),
       {1232, 1232},
       -1},
      {"IPv4, no NAT",
       PacketBuilder().ipv4("10.0.0.1", "10.0.0.2").udp(1, 2).payload(p).build(),
       PacketBuilder().ipv4("10.0.0.1", "10.0.0.2").udp(1, 2).payload(p).build(),
       {1232},
       -1},
      {"IPv6 SNAT behind extension headers",
       PacketBuilder()
           .ipv6("fd00::1", "fd00::2")
           .ipv6_hop_by_hop()
           .ipv6_routing()
           .udp(1000, 53)
           .payload(p)
           .build(),
       PacketBuilder()
           .ipv6("fd00:99::7", "fd00::2")
           .ipv6_hop_by_hop()
           .ipv6_routing()
           .udp(4000, 53)
           .payload(p)
           .build(),
       {1232, 1232},
       2},
      {"IPv6 DNAT, ICMPv6 echo id",
       PacketBuilder().ipv6("fd00::1", "fd00::2").icmpv6_echo(10, 1).payload(p).build(),
       PacketBuilder().ipv6("fd00::1", "fd00::99").icmpv6_echo(20, 1).payload(p).build(),
       {1232},
       0},
  };
  const Row& row = rows[GENERATE(range(0, 5))];
  INFO(row.desc);
  auto frags = cut(row.before, row.sizes, row.v6_keep);
  const auto expected = cut(row.after, row.sizes, row.v6_keep);
  Ipf ipf;
  Out out;
  for (size_t i = frags.size(); i-- > 0;) offer(ipf, frags[i], out);
  REQUIRE(out.c->n == frags.size());
  REQUIRE(out.pkt() == row.before);
  // Conntrack rewrote the reassembled datagram in place.
  REQUIRE(row.after.size() == out.c->len);
  std::memcpy(out.c->pkt, row.after.data(), row.after.size());
  Ipf::apply(*out.c);
  for (size_t i = 0; i < frags.size(); ++i) {
    INFO("fragment " << i);
    CHECK(frags[i] == expected[i]);
  }
  // From a copy of the tracked frame elsewhere: the same.
  auto frags2 = cut(row.before, row.sizes, row.v6_keep);
  for (size_t i = frags2.size(); i-- > 0;) offer(ipf, frags2[i], out);
  const Bytes tracked = row.after;
  Ipf::apply(*out.c, tracked.data());
  CHECK(frags2 == expected);
}

// ---- configuration, status, dump ----------------------------------------------------

TEST_CASE("ipf: configuration is validated with OVS's bounds and messages", "[ipf]") {
  Ipf ipf;
  const IpfConfig d = ipf.config();
  CHECK(d.v4_enabled);
  CHECK(d.v6_enabled);
  CHECK(d.v4_min_frag == 1200);
  CHECK(d.v6_min_frag == 1280);
  CHECK(d.max_nfrags == 1000);
  CHECK(d.timeout_ms == 15000);
  CHECK(d.validate().has_value());

  auto r = ipf.set_min_frag(IpfFamily::kV4, 399);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error() ==
        "requested minimum fragment size too small; see documentation (v4: 399 < 400)");
  r = ipf.set_min_frag(IpfFamily::kV6, 0);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error() == "requested minimum fragment size too small; see documentation (v6: 0 < 400)");
  CHECK(ipf.set_min_frag(IpfFamily::kV6, 400).has_value());
  CHECK(ipf.set_min_frag(IpfFamily::kV4, 65535).has_value());  // large: allowed (OVS)
  r = ipf.set_max_nfrags(5001);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error() == "setting maximum fragments failed (5001 > 5000)");
  CHECK(ipf.set_max_nfrags(5000).has_value());
  CHECK(ipf.set_max_nfrags(0).has_value());
  r = ipf.set_timeout_ms(0);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error() == "fragment list timeout must be at least 1 ms");
  const IpfConfig c = ipf.config();
  CHECK(c.v4_min_frag == 65535);
  CHECK(c.v6_min_frag == 400);
  CHECK(c.max_nfrags == 0);

  struct Row {
    const char* desc;
    IpfConfig cfg;
    std::string error;
  };
  IpfConfig bad_v4, bad_v6, bad_max, bad_tmo;
  bad_v4.v4_min_frag = 100;
  bad_v6.v6_min_frag = 399;
  bad_max.max_nfrags = 100000;
  bad_tmo.timeout_ms = 0;
  const Row rows[] = {
      {"v4 min_frag", bad_v4,
       "requested minimum fragment size too small; see documentation (v4: 100 < 400)"},
      {"v6 min_frag", bad_v6,
       "requested minimum fragment size too small; see documentation (v6: 399 < 400)"},
      {"max_nfrags", bad_max, "setting maximum fragments failed (100000 > 5000)"},
      {"timeout", bad_tmo, "fragment list timeout must be at least 1 ms"},
  };
  for (const auto& row : rows) {
    INFO(row.desc);
    const auto v = row.cfg.validate();
    REQUIRE_FALSE(v.has_value());
    CHECK(v.error() == row.error);
  }
}

TEST_CASE("ipf: status mirrors dpif_ipf_status; dump shows lists in OVS's text", "[ipf]") {
  IpfConfig cfg;
  cfg.v6_min_frag = 1000;
  cfg.max_nfrags = 500;
  Ipf ipf(cfg);
  IpfStatus s = ipf.status();
  CHECK(s.v4.enabled);
  CHECK(s.v6.enabled);
  CHECK(s.v4.min_frag_size == 1200);
  CHECK(s.v6.min_frag_size == 1000);
  CHECK(s.nfrag_max == 500);
  CHECK(s.nfrag == 0);

  const Bytes w4 = PacketBuilder()
                       .ipv4("10.0.0.1", "10.0.0.2")
                       .ip_id(0x1234)
                       .udp(1, 2)
                       .payload(noise(3000))
                       .build();
  const Bytes w6 =
      PacketBuilder().ipv6("fd00::1", "fd00::2").udp(1, 2).payload(noise(3000)).build();
  auto f4 = cut(w4, {1232, 1232});
  auto f6 = cut(w6, {1232, 1232}, 0, 0x10002);
  Out out;
  REQUIRE(offer(ipf, f4[1], out, kT0, 3, 9).r == AddResult::kHeld);
  REQUIRE(offer(ipf, f6[0], out, kT0, 0, 0).r == AddResult::kHeld);
  REQUIRE(offer(ipf, f6[2], out, kT0, 0, 0).r == AddResult::kHeld);
  const auto lists = ipf.dump();
  REQUIRE(lists.size() == 2);
  CHECK(format_ipf_list(lists[0]) ==
        "(src=10.0.0.1,dst=10.0.0.2,recirc_id=9,ip_id=4660,dl_type=0x800,zone=3,nw_proto=17,"
        "num_fragments=1,state=other frag)");
  CHECK(format_ipf_list(lists[1]) ==
        "(src=fd00::1,dst=fd00::2,recirc_id=0,ip_id=65538,dl_type=0x86dd,zone=0,nw_proto=0,"
        "num_fragments=2,state=first/last frag)");
  s = ipf.status();
  CHECK(s.nfrag == 3);
  CHECK(s.nlists == 2);
  CHECK(s.v4.accepted == 1);
  CHECK(s.v6.accepted == 2);

  Bytes first4 = f4[0];
  REQUIRE(offer(ipf, first4, out, kT0, 3, 9).r == AddResult::kHeld);
  CHECK(ipf.dump()[0].state == "first frag");
  Ipf other;
  Bytes last4 = f4[2];
  REQUIRE(offer(other, last4, out).r == AddResult::kHeld);
  CHECK(other.dump()[0].state == "last frag");
  other.drain([](void*, IpfRelease) {});
}

TEST_CASE("ipf: two threads reassembling at once", "[ipf][threads]") {
  constexpr int kPerThread = 300;
  Ipf ipf;
  std::vector<std::vector<Bytes>> wholes(2);
  std::vector<std::vector<std::vector<Bytes>>> frags(2);
  for (int t = 0; t < 2; ++t)
    for (int i = 0; i < kPerThread; ++i) {
      wholes[t].push_back(PacketBuilder()
                              .ipv4(t == 0 ? "10.0.0.1" : "10.0.0.3", "10.0.0.2")
                              .ip_id(static_cast<uint16_t>(i))
                              .udp(1, 2)
                              .payload(noise(2600, static_cast<uint32_t>(t * 1000 + i)))
                              .build());
      frags[t].push_back(cut(wholes[t].back(), {1232, 1232}));
    }
  int ok[2] = {0, 0};
  auto run = [&](int t) {
    Out out;
    for (int i = 0; i < kPerThread; ++i) {
      auto& fs = frags[t][i];
      // The same zone and ids on both threads: only the source address differs.
      offer(ipf, fs[2], out);
      offer(ipf, fs[0], out);
      if (offer(ipf, fs[1], out).r == AddResult::kComplete && out.pkt() == wholes[t][i]) ++ok[t];
    }
  };
  std::thread a(run, 0), b(run, 1);
  a.join();
  b.join();
  CHECK(ok[0] == kPerThread);
  CHECK(ok[1] == kPerThread);
  const IpfStatus s = ipf.status();
  CHECK(s.nfrag == 0);
  CHECK(s.v4.accepted == 6 * kPerThread);
  CHECK(s.v4.completed_sent == 6 * kPerThread);
}
