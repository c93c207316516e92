// NAT in the tracker (nat.cpp through Conntrack::execute()), to OVS 3.1's userspace
// semantics (lib/conntrack.c nat_get_unique_tuple, nat_get_unique_l4, pat_packet,
// nat_packet): DNAT to an address and port range and the reply un-NATed, SNAT over an
// address range (the address by a hash of the connection, the port kept when free), IPv6,
// a taken port moving a connection to a free one, and the bounded port search. Rewritten
// packets are compared byte for byte with frames built from scratch, and their checksums
// are summed here from scratch too (not with flowtables/checksum.hpp, which NAT uses).
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "dataplane/conntrack/conntrack.hpp"
#include "flowtables/checksum.hpp"  // byte order only
#include "flowtables/flow_key.hpp"
#include "flowtables/packet_builder.hpp"
#include "flowtables/packet_parser.hpp"

using namespace gl::ct;
using gl::flow::hton16;
using gl::flow::ntoh16;
using gl::flow::ntoh32;
using gl::flow::PacketBuilder;

namespace {

using Bytes = std::vector<uint8_t>;
using Ip6 = gl::flow::Ipv6Addr;

constexpr uint64_t kT0 = 1'000'000;  // the injected clock, ms
constexpr uint8_t kUdp = 17;
constexpr uint16_t kSyn = gl::flow::kTcpSyn;
constexpr uint16_t kAck = gl::flow::kTcpAck;

uint32_t v4(std::string_view text) {
  return gl::flow::ipv4_addr(text);
}
Ip6 v6(std::string_view text) {
  return gl::flow::ipv6_addr(text);
}

// ---- frames (addresses in network order, ports host order) --------------------------------

PacketBuilder eth() {
  PacketBuilder b;
  b.eth("02:00:00:00:00:01", "02:00:00:00:00:02");
  return b;
}
Bytes udp4(uint32_t src, uint32_t dst, uint16_t sp, uint16_t dp) {
  return eth().ipv4(src, dst).udp(sp, dp).payload(20).build();
}
Bytes tcp4(uint32_t src, uint32_t dst, uint16_t sp, uint16_t dp, uint16_t flags, uint32_t seq,
           uint32_t ack) {
  return eth().ipv4(src, dst).tcp(sp, dp).tcp_flags(flags).tcp_seq(seq).tcp_ack(ack).build();
}
Bytes udp6(const Ip6& src, const Ip6& dst, uint16_t sp, uint16_t dp) {
  return eth().ipv6(src, dst).udp(sp, dp).payload(20).build();
}
Bytes tcp6(const Ip6& src, const Ip6& dst, uint16_t sp, uint16_t dp, uint16_t flags, uint32_t seq,
           uint32_t ack) {
  return eth().ipv6(src, dst).tcp(sp, dp).tcp_flags(flags).tcp_seq(seq).tcp_ack(ack).build();
}
Bytes echo6(const Ip6& src, const Ip6& dst, uint16_t id, bool reply) {
  return eth().ipv6(src, dst).icmpv6_echo(id, 1, reply).payload(16).build();
}
Bytes echo4(uint32_t src, uint32_t dst, uint16_t id, bool reply) {
  return eth().ipv4(src, dst).icmp_echo(id, 1, reply).payload(16).build();
}

// ---- checksums, summed from scratch ----------------------------------------------------------

uint32_t sum16(const uint8_t* p, size_t n, uint32_t s = 0) {
  for (size_t i = 0; i + 1 < n; i += 2) s += uint32_t{p[i]} << 8 | p[i + 1];
  if (n % 2 != 0) s += uint32_t{p[n - 1]} << 8;
  return s;
}
uint16_t fold(uint32_t s) {
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return static_cast<uint16_t>(s);
}

// What is wrong with the checksums of an untagged IPv4/IPv6 frame without options or
// extension headers ("" when nothing): the IPv4 header's, and the TCP/UDP/ICMP/ICMPv6 one
// (with its pseudo header). A sum over the covered bytes, checksum included, is 0xffff.
std::string checksum_errors(const Bytes& f) {
  const uint16_t type = static_cast<uint16_t>(f[12] << 8 | f[13]);
  const uint8_t* l3 = f.data() + 14;
  std::string err;
  uint8_t proto;
  const uint8_t* l4;
  size_t l4_len;
  uint32_t pseudo = 0;
  if (type == 0x0800) {
    const size_t ihl = (l3[0] & 0x0fu) * 4u;
    if (fold(sum16(l3, ihl)) != 0xffff) err += "IPv4 header checksum; ";
    proto = l3[9];
    l4 = l3 + ihl;
    l4_len = (size_t{l3[2]} << 8 | l3[3]) - ihl;
    pseudo = sum16(l3 + 12, 8) + proto + static_cast<uint32_t>(l4_len);
  } else {
    proto = l3[6];
    l4 = l3 + 40;
    l4_len = size_t{l3[4]} << 8 | l3[5];
    pseudo = sum16(l3 + 8, 32) + proto + static_cast<uint32_t>(l4_len);
  }
  if (proto == kUdp && type == 0x0800 && l4[6] == 0 && l4[7] == 0) return err;  // none
  if (proto == 1) pseudo = 0;                                                   // ICMP: none
  if (fold(sum16(l4, l4_len, pseudo)) != 0xffff)
    err += "L4 (protocol " + std::to_string(proto) + ") checksum";
  return err;
}

// ---- ct() ------------------------------------------------------------------------------------

// ct(commit,zone=Z,nat(src|dst=LO[-HI][:PMIN-PMAX])); lo empty: no address range.
Action nat_action(bool src, std::string_view lo, std::string_view hi, uint16_t pmin = 0,
                  uint16_t pmax = 0, uint16_t zone = 0) {
  Action a;
  a.zone = zone;
  a.commit = true;
  a.nat = true;
  (src ? a.nat_src : a.nat_dst) = true;
  if (!lo.empty()) {
    const bool is6 = lo.find(':') != std::string_view::npos;
    a.nat_family = is6 ? 6 : 4;
    if (is6) {
      const Ip6 l = v6(lo), h = v6(hi);
      std::memcpy(a.ip_min, l.data(), 16);
      std::memcpy(a.ip_max, h.data(), 16);
    } else {
      a.ip_min[0] = v4(lo);
      a.ip_max[0] = v4(hi);
    }
  }
  a.port_min = pmin;
  a.port_max = pmax;
  return a;
}
Action snat(std::string_view lo, std::string_view hi, uint16_t pmin = 0, uint16_t pmax = 0,
            uint16_t zone = 0) {
  return nat_action(true, lo, hi, pmin, pmax, zone);
}
Action dnat(std::string_view lo, std::string_view hi, uint16_t pmin = 0, uint16_t pmax = 0,
            uint16_t zone = 0) {
  return nat_action(false, lo, hi, pmin, pmax, zone);
}
// ct(zone=Z,nat): the connection's NAT (replies), no commit.
Action unnat(uint16_t zone = 0) {
  Action a;
  a.zone = zone;
  a.nat = true;
  return a;
}
// ct(commit,zone=Z): no NAT.
Action plain_commit(uint16_t zone = 0) {
  Action a;
  a.zone = zone;
  a.commit = true;
  return a;
}

// One packet through ct(): its metadata; `frame` is left as ct() rewrote it.
Md run(Conntrack& ct, const Action& a, Bytes& frame, uint64_t now = kT0) {
  gl::flow::FlowKey key = gl::flow::zero_key();
  gl::flow::PacketLayout lay{};
  gl::flow::parse_packet(frame, key, lay);
  Md md;
  Packet p{frame.data(), static_cast<uint32_t>(frame.size()), &key, &lay, &md};
  ct.execute(0, a, &p, 1, now);
  return md;
}

// ct_state as OVS prints it, bits in order.
std::string cs(uint8_t state) {
  static constexpr const char* kNames[] = {"new", "est", "rel",  "rpl",
                                           "inv", "trk", "snat", "dnat"};
  std::string s;
  for (int i = 0; i < 8; ++i)
    if (state & (1u << i)) s += std::string("+") + kNames[i];
  return s.empty() ? "-" : s;
}

std::vector<Entry> dump(const Conntrack& ct, int zone = -1) {
  std::vector<Entry> out;
  uint32_t cursor = 0;
  do {
    cursor = ct.dump(cursor, zone, kT0, [&](const Entry& e) {
      out.push_back(e);
      return true;
    });
  } while (cursor != 0);
  return out;
}

// The connection whose original tuple has source address src and port sport.
Entry find_conn(const Conntrack& ct, uint32_t src, uint16_t sport) {
  for (const Entry& e : dump(ct))
    if (e.orig.src[0] == src && e.orig.sport == hton16(sport)) return e;
  FAIL("no connection from source port " << sport);
  return {};
}

std::string text(const ConnKey& k) {
  std::string s = "{";
  auto addr = [&](const uint32_t* a) {
    if (k.family == 4) {
      const uint32_t h = ntoh32(a[0]);
      s += std::to_string(h >> 24) + '.' + std::to_string(h >> 16 & 255) + '.' +
           std::to_string(h >> 8 & 255) + '.' + std::to_string(h & 255);
    } else {
      char buf[24];
      std::snprintf(buf, sizeof buf, "..:%x", ntoh32(a[3]));
      s += buf;
    }
  };
  addr(k.src);
  s += ':' + std::to_string(ntoh16(k.sport)) + " -> ";
  addr(k.dst);
  return s + ':' + std::to_string(ntoh16(k.dport)) + '}';
}

Ip6 ip6_of(const uint32_t* a) {
  Ip6 out;
  std::memcpy(out.data(), a, 16);
  return out;
}

}  // namespace

// ---- DNAT ------------------------------------------------------------------------------------

TEST_CASE(
    "NAT: DNAT to an address and port range rewrites the destination; the reply is "
    "un-NATed back to the original one",
    "[conntrack][nat]") {
  Conntrack ct(Options{.capacity = 1024});
  const uint32_t client = v4("10.0.0.1"), vip = v4("192.0.2.80");
  const Action lb = dnat("10.1.0.10", "10.1.0.13", 8080, 8083, 3);
  Bytes syn = tcp4(client, vip, 40000, 80, kSyn, 1000, 0);
  const Md m = run(ct, lb, syn);
  CHECK(cs(m.state) == "+new+trk+dnat");
  // ct_orig_tuple is the tuple before NAT.
  CHECK(m.orig_v4_src == client);
  CHECK(m.orig_v4_dst == vip);
  CHECK(m.orig_dport == hton16(80));
  // The connection: its original tuple, and a reply tuple from a backend of the range.
  const std::vector<Entry> es = dump(ct);
  REQUIRE(es.size() == 1);
  const Entry& e = es[0];
  INFO("orig " << text(e.orig) << " reply " << text(e.reply));
  CHECK(e.orig.src[0] == client);
  CHECK(e.orig.dst[0] == vip);
  CHECK(e.orig.dport == hton16(80));
  CHECK((e.flags & kConnDnat) != 0);
  const uint32_t backend = e.reply.src[0];
  const uint16_t bport = ntoh16(e.reply.sport);
  CHECK(ntoh32(backend) >= ntoh32(v4("10.1.0.10")));
  CHECK(ntoh32(backend) <= ntoh32(v4("10.1.0.13")));
  CHECK(bport >= 8080);
  CHECK(bport <= 8083);
  CHECK(e.reply.dst[0] == client);
  CHECK(e.reply.dport == hton16(40000));
  // The SYN left for that backend: equal to one built for it, checksums right.
  CHECK(syn == tcp4(client, backend, 40000, bport, kSyn, 1000, 0));
  CHECK(checksum_errors(syn) == "");

  // The backend's SYN+ACK, through ct(nat): back to the VIP's address and port, +snat (OVS
  // un_nat: the reverse of the connection's DNAT).
  Bytes synack = tcp4(backend, client, bport, 40000, kSyn | kAck, 5000, 1001);
  CHECK(cs(run(ct, unnat(3), synack).state) == "+est+rpl+trk+snat");
  CHECK(synack == tcp4(vip, client, 80, 40000, kSyn | kAck, 5000, 1001));
  CHECK(checksum_errors(synack) == "");

  // The client's ACK takes the connection's translation again (not a new choice).
  Bytes ack = tcp4(client, vip, 40000, 80, kAck, 1001, 5001);
  CHECK(cs(run(ct, lb, ack).state) == "+est+trk+dnat");
  CHECK(ack == tcp4(client, backend, 40000, bport, kAck, 1001, 5001));
  CHECK(checksum_errors(ack) == "");
  CHECK(ct.n_conns() == 1);
}

TEST_CASE("NAT: DNAT spreads connections over the range by hash; each keeps its backend",
          "[conntrack][nat]") {
  Conntrack ct(Options{.capacity = 1024});
  const uint32_t vip = v4("192.0.2.80");
  const Action lb = dnat("10.1.0.10", "10.1.0.13", 8080, 8083);
  std::map<uint32_t, int> per_addr;
  std::set<uint16_t> ports;
  std::set<std::tuple<uint32_t, uint16_t, uint32_t, uint16_t>> replies;
  for (uint32_t i = 1; i <= 64; ++i) {
    const uint32_t client = v4("10.0.1." + std::to_string(i));
    Bytes f = udp4(client, vip, 5000, 53);
    REQUIRE(cs(run(ct, lb, f).state) == "+new+trk+dnat");
    const Entry e = find_conn(ct, client, 5000);
    const uint32_t backend = e.reply.src[0];
    const uint16_t bport = ntoh16(e.reply.sport);
    INFO("client " << i << ": " << text(e.reply));
    CHECK(ntoh32(backend) - ntoh32(v4("10.1.0.10")) <= 3);
    CHECK(bport >= 8080);
    CHECK(bport <= 8083);
    CHECK(e.reply.sport != 0);
    CHECK(f == udp4(client, backend, 5000, bport));
    CHECK(checksum_errors(f) == "");
    ++per_addr[backend];
    ports.insert(bport);
    replies.insert({e.reply.src[0], e.reply.sport, e.reply.dst[0], e.reply.dport});
    // The client's next packet goes to the same backend.
    Bytes again = udp4(client, vip, 5000, 53);
    CHECK(cs(run(ct, lb, again).state) == "+new+trk+dnat");  // UDP: no reply seen yet
    CHECK(again == udp4(client, backend, 5000, bport));
  }
  CHECK(replies.size() == 64);
  // By hash (OVS get_addr_in_range): 64 connections use every address and port (a chance
  // of about 1e-7 to miss one if the hash were random; the hash is fixed, so this is fixed).
  CHECK(per_addr.size() == 4);
  CHECK(ports.size() == 4);
}

TEST_CASE("NAT: DNAT whose reply tuple is taken moves the client's source port, both ways",
          "[conntrack][nat]") {
  // Two VIPs balanced to the same single backend address and port: the same client port to
  // both would give two connections one reply tuple. OVS (nat_get_unique_tuple) then searches
  // the source port in its class, and pat_packet() writes both ports of every packet.
  Conntrack ct(Options{.capacity = 1024});
  const uint32_t client = v4("10.0.0.1"), vip1 = v4("192.0.2.80"), vip2 = v4("192.0.2.81"),
                 backend = v4("10.1.0.10");
  const Action lb = dnat("10.1.0.10", "10.1.0.10", 8080, 8080);
  Bytes a = udp4(client, vip1, 5000, 53);
  REQUIRE(cs(run(ct, lb, a).state) == "+new+trk+dnat");
  CHECK(a == udp4(client, backend, 5000, 8080));
  Bytes b = udp4(client, vip2, 5000, 53);
  REQUIRE(cs(run(ct, lb, b).state) == "+new+trk+dnat");
  Entry second{};
  for (const Entry& x : dump(ct))
    if (x.orig.dst[0] == vip2) second = x;
  INFO("second connection: reply " << text(second.reply));
  CHECK(second.reply.src[0] == backend);
  CHECK(second.reply.sport == hton16(8080));
  CHECK(second.reply.dst[0] == client);
  const uint16_t moved = ntoh16(second.reply.dport);
  CHECK(moved == 5001);  // the next port of its class (1024-65535) from the original
  // The packet carries the moved source port: else the backend's reply would have the first
  // connection's tuple.
  CHECK(b == udp4(client, backend, moved, 8080));
  CHECK(checksum_errors(b) == "");
  // The backend's reply to it goes back as from the second VIP, to the client's own port.
  Bytes r = udp4(backend, client, 8080, moved);
  CHECK(cs(run(ct, unnat(), r).state) == "+est+rpl+trk+snat");
  CHECK(r == udp4(vip2, client, 53, 5000));
  CHECK(checksum_errors(r) == "");
  // And the reply to the first connection from the first VIP.
  Bytes r1 = udp4(backend, client, 8080, 5000);
  CHECK(cs(run(ct, unnat(), r1).state) == "+est+rpl+trk+snat");
  CHECK(r1 == udp4(vip1, client, 53, 5000));
}

// ---- SNAT ------------------------------------------------------------------------------------

TEST_CASE(
    "NAT: SNAT over an address range picks the address by a hash of the connection "
    "and keeps the port",
    "[conntrack][nat]") {
  // OVS find_addr/get_addr_in_range: the address is hash % range, the hash of the
  // connection's tuple; not sequential. So the choice does not depend on the order in which
  // connections come, and the source port is kept when that tuple is free.
  const uint32_t client = v4("10.0.0.1"), server = v4("10.0.0.2");
  const Action masq = snat("192.168.9.1", "192.168.9.4");
  auto commit_all = [&](Conntrack& ct, bool reverse) {
    std::map<uint16_t, uint32_t> addr_of;
    for (int n = 0; n < 64; ++n) {
      const uint16_t sport = static_cast<uint16_t>(2000 + (reverse ? 63 - n : n));
      Bytes f = udp4(client, server, sport, 80);
      REQUIRE(cs(run(ct, masq, f).state) == "+new+trk+snat");
      const Entry e = find_conn(ct, client, sport);
      INFO("source port " << sport << ": " << text(e.reply));
      CHECK(ntoh32(e.reply.dst[0]) - ntoh32(v4("192.168.9.1")) <= 3);
      CHECK(e.reply.dport == hton16(sport));  // port kept
      CHECK(f == udp4(e.reply.dst[0], server, sport, 80));
      CHECK(checksum_errors(f) == "");
      addr_of[sport] = e.reply.dst[0];
    }
    return addr_of;
  };
  Conntrack ct1(Options{.capacity = 1024});
  const auto forward = commit_all(ct1, false);
  Conntrack ct2(Options{.capacity = 1024});
  const auto backward = commit_all(ct2, true);
  CHECK(forward == backward);
  std::set<uint32_t> used;
  for (const auto& [port, addr] : forward) used.insert(addr);
  CHECK(used.size() == 4);
  // The reply to each goes back to the client, +dnat.
  for (const auto& [port, addr] : forward) {
    Bytes r = udp4(server, addr, 80, port);
    CHECK(cs(run(ct1, unnat(), r).state) == "+est+rpl+trk+dnat");
    CHECK(r == udp4(server, client, 80, port));
    CHECK(checksum_errors(r) == "");
  }
}

TEST_CASE("NAT: SNAT without ports keeps the source port, else the next free one of its class",
          "[conntrack][nat]") {
  // OVS set_sport_range: 1-511, 600-1023, 1024-65535; nat_get_unique_l4 goes on from the
  // original port and wraps to the class's lowest.
  struct Row {
    uint16_t sport, second;
  };
  const Row rows[] = {{5000, 5001}, {65535, 1024}, {100, 101}, {511, 1}, {700, 701}, {1023, 600}};
  const uint32_t a = v4("10.0.0.1"), c = v4("10.0.0.3"), server = v4("10.0.0.2"),
                 x = v4("192.168.9.1");
  for (const Row& r : rows) {
    INFO("source port " << r.sport);
    Conntrack ct(Options{.capacity = 1024});
    const Action masq = snat("192.168.9.1", "192.168.9.1");
    Bytes f1 = udp4(a, server, r.sport, 80);
    REQUIRE(cs(run(ct, masq, f1).state) == "+new+trk+snat");
    CHECK(f1 == udp4(x, server, r.sport, 80));
    Bytes f2 = udp4(c, server, r.sport, 80);  // another client, the same port
    REQUIRE(cs(run(ct, masq, f2).state) == "+new+trk+snat");
    CHECK(f2 == udp4(x, server, r.second, 80));
    CHECK(checksum_errors(f2) == "");
    Bytes back = udp4(server, x, 80, r.second);
    CHECK(cs(run(ct, unnat(), back).state) == "+est+rpl+trk+dnat");
    CHECK(back == udp4(server, c, 80, r.sport));
  }
}

TEST_CASE("NAT: a port taken by another connection moves a new one to a free port of the range",
          "[conntrack][nat]") {
  const uint32_t client = v4("10.0.0.1"), server = v4("10.0.0.2"), x = v4("192.168.9.1");
  const Action masq = snat("192.168.9.1", "192.168.9.1", 1000, 1003, 5);
  for (uint16_t free_port = 1000; free_port <= 1003; ++free_port) {
    INFO("free port " << free_port);
    Conntrack ct(Options{.capacity = 1024});
    // The others are taken: connections (not NAT'd) from the server to them, whose tuples
    // are the reply tuples SNAT would give.
    for (uint16_t p = 1000; p <= 1003; ++p) {
      if (p == free_port) continue;
      Bytes f = udp4(server, x, 80, p);
      REQUIRE(cs(run(ct, plain_commit(5), f).state) == "+new+trk");
    }
    REQUIRE(ct.n_conns() == 3);
    Bytes f = udp4(client, server, 40000, 80);
    CHECK(cs(run(ct, masq, f).state) == "+new+trk+snat");
    CHECK(f == udp4(x, server, free_port, 80));
    CHECK(checksum_errors(f) == "");
    CHECK(ct.n_conns() == 4);
  }
}

TEST_CASE(
    "NAT: connections filling a port range never share a reply tuple; then the range is "
    "exhausted, counted, nothing committed or rewritten",
    "[conntrack][nat]") {
  Conntrack ct(Options{.capacity = 1024});
  const uint32_t server = v4("10.0.0.2"), x = v4("192.168.9.1");
  const Action masq = snat("192.168.9.1", "192.168.9.1", 1000, 1007);
  std::set<uint16_t> ports;
  for (uint32_t i = 1; i <= 8; ++i) {
    const uint32_t client = v4("10.0.1." + std::to_string(i));
    Bytes f = udp4(client, server, 40000, 80);
    REQUIRE(cs(run(ct, masq, f).state) == "+new+trk+snat");
    const Entry e = find_conn(ct, client, 40000);
    CHECK(e.reply.dst[0] == x);
    ports.insert(ntoh16(e.reply.dport));
    CHECK(f == udp4(x, server, ntoh16(e.reply.dport), 80));
  }
  CHECK(ports == std::set<uint16_t>{1000, 1001, 1002, 1003, 1004, 1005, 1006, 1007});
  // A ninth: no free tuple. As OVS: +new, not committed, not translated.
  const Stats before = ct.stats();
  const Bytes orig = udp4(v4("10.0.2.1"), server, 40000, 80);
  Bytes f = orig;
  CHECK(cs(run(ct, masq, f).state) == "+new+trk");
  CHECK(f == orig);
  const Stats after = ct.stats();
  CHECK(after.nat_exhausted == before.nat_exhausted + 1);
  CHECK(after.created == before.created);
  CHECK(ct.n_conns() == 8);
  // Each port of the range was looked up once: a first run that covered the whole range is
  // not followed by runs from random places (OVS nat_get_unique_l4: only while the runs are
  // shorter than the range).
  CHECK(after.nat_lookups - before.nat_lookups == 8);
}

TEST_CASE("NAT: the port search is bounded: a full large range costs at most 248 lookups",
          "[conntrack][nat]") {
  // OVS nat_get_unique_l4: 128 ports from the preferred one, then runs of 64, 32, 16 and 8
  // from random places, whatever the size of the range.
  Conntrack ct(Options{.capacity = 4096});
  const uint32_t client = v4("10.0.0.1"), server = v4("10.0.0.2"), x = v4("192.168.9.1");
  constexpr uint16_t kLo = 20000, kHi = 21999;  // 2000 ports, every one taken
  for (uint32_t p = kLo; p <= kHi; ++p) {
    Bytes f = udp4(server, x, 80, static_cast<uint16_t>(p));
    REQUIRE(cs(run(ct, plain_commit(), f).state) == "+new+trk");
  }
  const Stats before = ct.stats();
  const Bytes orig = udp4(client, server, 40000, 80);
  Bytes f = orig;
  CHECK(cs(run(ct, snat("192.168.9.1", "192.168.9.1", kLo, kHi), f).state) == "+new+trk");
  CHECK(f == orig);
  const Stats after = ct.stats();
  CHECK(after.nat_exhausted == before.nat_exhausted + 1);
  const uint64_t lookups = after.nat_lookups - before.nat_lookups;
  INFO("lookups " << lookups);
  CHECK(lookups >= 128);
  CHECK(lookups <= 128 + 64 + 32 + 16 + 8);
  CHECK(ct.n_conns() == 2000);
  // Without a port range the class 1024-65535 is searched the same way: 128 ports from the
  // original one (all taken here), then runs from random places, where ports are free.
  Bytes g = udp4(client, server, kLo, 80);
  CHECK(cs(run(ct, snat("192.168.9.1", "192.168.9.1"), g).state) == "+new+trk+snat");
  const Entry e = find_conn(ct, client, kLo);
  const uint16_t port = ntoh16(e.reply.dport);
  INFO("port " << port);
  CHECK(port >= 1024);
  CHECK((port < kLo || port > kHi));
  CHECK(g == udp4(x, server, port, 80));
  CHECK(ct.stats().nat_lookups - after.nat_lookups <= 128 + 64 + 32 + 16 + 8);
}

TEST_CASE("NAT: protocols without ports have one candidate tuple", "[conntrack][nat]") {
  // ICMP identifiers are not translated (OVS: pat_proto is TCP and UDP only): two clients
  // pinging the same server with the same identifier through one address collide.
  Conntrack ct(Options{.capacity = 64});
  const uint32_t server = v4("10.0.0.2"), x = v4("192.168.9.1");
  const Action masq = snat("192.168.9.1", "192.168.9.1");
  Bytes p1 = echo4(v4("10.0.0.1"), server, 7, false);
  CHECK(cs(run(ct, masq, p1).state) == "+new+trk+snat");
  CHECK(p1 == echo4(x, server, 7, false));
  CHECK(checksum_errors(p1) == "");
  const Stats before = ct.stats();
  const Bytes orig = echo4(v4("10.0.0.3"), server, 7, false);
  Bytes p2 = orig;
  CHECK(cs(run(ct, masq, p2).state) == "+new+trk");
  CHECK(p2 == orig);
  const Stats after = ct.stats();
  CHECK(after.nat_exhausted == before.nat_exhausted + 1);
  CHECK(after.nat_lookups - before.nat_lookups == 1);
  // Another identifier is another tuple.
  Bytes p3 = echo4(v4("10.0.0.3"), server, 8, false);
  CHECK(cs(run(ct, masq, p3).state) == "+new+trk+snat");
  Bytes r = echo4(server, x, 8, true);
  CHECK(cs(run(ct, unnat(), r).state) == "+est+rpl+trk+dnat");
  CHECK(r == echo4(server, v4("10.0.0.3"), 8, true));
  CHECK(checksum_errors(r) == "");
}

TEST_CASE("NAT: a tuple held by an expired connection is free (OVS's lookup skips expired ones)",
          "[conntrack][nat]") {
  Conntrack ct(Options{.capacity = 64});
  const uint32_t server = v4("10.0.0.2"), x = v4("192.168.9.1");
  const Action masq = snat("192.168.9.1", "192.168.9.1", 1000, 1000);
  Bytes f1 = udp4(v4("10.0.0.1"), server, 40000, 80);
  REQUIRE(cs(run(ct, masq, f1).state) == "+new+trk+snat");
  // Still alive: the one port is taken.
  Bytes f2 = udp4(v4("10.0.0.3"), server, 40000, 80);
  CHECK(cs(run(ct, masq, f2, kT0 + 1000).state) == "+new+trk");
  // After its timeout (udp_single, 60 s), before any sweep: the port is free again.
  const uint64_t later = kT0 + 61'000;
  f2 = udp4(v4("10.0.0.3"), server, 40000, 80);
  CHECK(cs(run(ct, masq, f2, later).state) == "+new+trk+snat");
  CHECK(f2 == udp4(x, server, 1000, 80));
  CHECK(ct.n_conns() == 1);
  CHECK(ct.stats().expired == 1);  // the old one, removed by the search
  ct.sweep(0, later);              // and its owner's sweep takes it off its list
  CHECK(ct.n_conns() == 1);
  Bytes back = udp4(server, x, 80, 1000);
  CHECK(cs(run(ct, unnat(), back, later).state) == "+est+rpl+trk+dnat");
  CHECK(back == udp4(server, v4("10.0.0.3"), 80, 40000));
}

// ---- IPv6 ------------------------------------------------------------------------------------

TEST_CASE("NAT: IPv6 SNAT to an address and port range, UDP and ICMPv6", "[conntrack][nat]") {
  Conntrack ct(Options{.capacity = 1024});
  const Ip6 client = v6("fd00::1"), server = v6("fd00::2");
  const Action masq = snat("fd00:ff::10", "fd00:ff::13", 3000, 3003, 2);
  Bytes f = udp6(client, server, 40000, 53);
  CHECK(cs(run(ct, masq, f).state) == "+new+trk+snat");
  const std::vector<Entry> es = dump(ct);
  REQUIRE(es.size() == 1);
  const Entry& e = es[0];
  INFO("reply " << text(e.reply));
  const Ip6 lo = v6("fd00:ff::10");
  CHECK(std::memcmp(e.reply.dst, lo.data(), 15) == 0);  // fd00:ff::10 .. fd00:ff::13
  const uint8_t last = reinterpret_cast<const uint8_t*>(e.reply.dst)[15];
  CHECK(last >= 0x10);
  CHECK(last <= 0x13);
  const uint16_t port = ntoh16(e.reply.dport);
  CHECK(port >= 3000);
  CHECK(port <= 3003);
  const Ip6 x = ip6_of(e.reply.dst);
  CHECK(f == udp6(x, server, port, 53));
  CHECK(checksum_errors(f) == "");
  Bytes r = udp6(server, x, 53, port);
  CHECK(cs(run(ct, unnat(2), r).state) == "+est+rpl+trk+dnat");
  CHECK(r == udp6(server, client, 53, 40000));
  CHECK(checksum_errors(r) == "");

  // ICMPv6 echo: the address only (its checksum covers the pseudo header).
  Bytes ping = echo6(client, server, 9, false);
  CHECK(cs(run(ct, masq, ping).state) == "+new+trk+snat");
  Entry pe{};
  for (const Entry& y : dump(ct))
    if (y.orig.proto == 58) pe = y;
  const Ip6 px = ip6_of(pe.reply.dst);
  CHECK(ping == echo6(px, server, 9, false));
  CHECK(checksum_errors(ping) == "");
  Bytes pong = echo6(server, px, 9, true);
  CHECK(cs(run(ct, unnat(2), pong).state) == "+est+rpl+trk+dnat");
  CHECK(pong == echo6(server, client, 9, true));
  CHECK(checksum_errors(pong) == "");
}

TEST_CASE("NAT: IPv6 DNAT to an address and port range, TCP", "[conntrack][nat]") {
  Conntrack ct(Options{.capacity = 1024});
  const Ip6 client = v6("fd00::1"), vip = v6("fd00:aa::80");
  const Action lb = dnat("fd00:bb::10", "fd00:bb::11", 8080, 8081);
  Bytes syn = tcp6(client, vip, 40000, 80, kSyn, 1000, 0);
  CHECK(cs(run(ct, lb, syn).state) == "+new+trk+dnat");
  const Entry e = dump(ct).at(0);
  INFO("reply " << text(e.reply));
  const Ip6 backend = ip6_of(e.reply.src);
  const Ip6 lo = v6("fd00:bb::10");
  CHECK(std::memcmp(backend.data(), lo.data(), 15) == 0);
  CHECK((backend[15] == 0x10 || backend[15] == 0x11));
  const uint16_t bport = ntoh16(e.reply.sport);
  CHECK((bport == 8080 || bport == 8081));
  CHECK(std::memcmp(e.reply.dst, client.data(), 16) == 0);
  CHECK(e.reply.dport == hton16(40000));
  CHECK(syn == tcp6(client, backend, 40000, bport, kSyn, 1000, 0));
  CHECK(checksum_errors(syn) == "");
  Bytes synack = tcp6(backend, client, bport, 40000, kSyn | kAck, 5000, 1001);
  CHECK(cs(run(ct, unnat(), synack).state) == "+est+rpl+trk+snat");
  CHECK(synack == tcp6(vip, client, 80, 40000, kSyn | kAck, 5000, 1001));
  CHECK(checksum_errors(synack) == "");
  Bytes ack = tcp6(client, vip, 40000, 80, kAck, 1001, 5001);
  CHECK(cs(run(ct, lb, ack).state) == "+est+trk+dnat");
  CHECK(ack == tcp6(client, backend, 40000, bport, kAck, 1001, 5001));
  CHECK(checksum_errors(ack) == "");
}

// ---- nat's flags: persistent, hash, random (Linux nf_nat's meaning) ---------------------------

TEST_CASE("NAT: persistent DNAT sends all of a client's connections to one backend",
          "[conntrack][nat]") {
  const uint32_t vip = v4("192.0.2.80"), first = v4("10.1.0.10");
  Action lb = dnat("10.1.0.10", "10.1.0.17");
  SECTION("without persistent, one client's connections spread over the backends") {
    Conntrack ct(Options{.capacity = 1024});
    const uint32_t client = v4("10.0.1.1");
    std::set<uint32_t> backends;
    for (uint16_t sp = 5000; sp < 5032; ++sp) {
      Bytes f = udp4(client, vip, sp, 53);
      REQUIRE(cs(run(ct, lb, f).state) == "+new+trk+dnat");
      backends.insert(find_conn(ct, client, sp).reply.src[0]);
    }
    CHECK(backends.size() > 1);
  }
  SECTION("with persistent, each client keeps one backend; clients still spread") {
    lb.nat_persistent = true;
    Conntrack ct(Options{.capacity = 4096});
    std::set<uint32_t> all;
    for (uint32_t i = 1; i <= 32; ++i) {
      const uint32_t client = v4("10.0.1." + std::to_string(i));
      std::set<uint32_t> backends;
      for (uint16_t sp = 5000; sp < 5032; ++sp) {
        Bytes f = udp4(client, vip, sp, 53);
        REQUIRE(cs(run(ct, lb, f).state) == "+new+trk+dnat");
        const uint32_t b = find_conn(ct, client, sp).reply.src[0];
        CHECK(f == udp4(client, b, sp, 53));
        backends.insert(b);
      }
      INFO("client " << i);
      CHECK(backends.size() == 1);
      CHECK(ntoh32(*backends.begin()) - ntoh32(first) <= 7);
      all.insert(*backends.begin());
    }
    CHECK(all.size() >= 4);  // 32 clients over 8 backends by a hash of their address
  }
}

TEST_CASE("NAT: persistent SNAT gives a client one outside address for every server",
          "[conntrack][nat]") {
  Action masq = snat("192.168.9.1", "192.168.9.8");
  masq.nat_persistent = true;
  Conntrack ct(Options{.capacity = 1024});
  const uint32_t client = v4("10.0.0.1");
  std::set<uint32_t> outside;
  for (uint32_t s = 1; s <= 16; ++s) {
    const uint32_t server = v4("203.0.113." + std::to_string(s));
    Bytes f = udp4(client, server, 4000 + s, 80);
    REQUIRE(cs(run(ct, masq, f).state) == "+new+trk+snat");
    const Entry e = find_conn(ct, client, static_cast<uint16_t>(4000 + s));
    CHECK(f == udp4(e.reply.dst[0], server, 4000 + s, 80));  // the port is kept
    outside.insert(e.reply.dst[0]);
  }
  CHECK(outside.size() == 1);
}

TEST_CASE("NAT: SNAT with hash or random does not keep the source port", "[conntrack][nat]") {
  const uint32_t client = v4("10.0.0.1"), server = v4("10.0.0.2"), x = v4("192.168.9.1");
  // The port a fresh table gives the connection client:sp -> server:80.
  auto pick = [&](uint8_t how, uint16_t sp, uint16_t pmin = 0, uint16_t pmax = 0) {
    Action masq = snat("192.168.9.1", "192.168.9.1", pmin, pmax);
    masq.nat_port = how;
    Conntrack ct(Options{.capacity = 64});
    Bytes f = udp4(client, server, sp, 80);
    REQUIRE(cs(run(ct, masq, f).state) == "+new+trk+snat");
    const uint16_t port = ntoh16(find_conn(ct, client, sp).reply.dport);
    CHECK(f == udp4(x, server, port, 80));
    CHECK(checksum_errors(f) == "");
    return port;
  };
  for (uint8_t how : {kNatPortHash, kNatPortRandom}) {
    INFO((how == kNatPortHash ? "hash" : "random"));
    int kept = 0;
    for (uint16_t sp : {100, 700, 5000, 40000, 65535}) {
      INFO("source port " << sp);
      const uint16_t p = pick(how, sp);
      kept += p == sp;
      // Still in the original port's class (OVS's and Linux's classes).
      if (sp < 512) {
        CHECK((p >= 1 && p <= 511));
      } else if (sp < 1024) {
        CHECK((p >= 600 && p <= 1023));
      } else {
        CHECK(p >= 1024);
      }
    }
    CHECK(kept <= 1);
  }
  // The default keeps it.
  CHECK(pick(kNatPortDefault, 40000) == 40000);
  // hash: the same connection gets the same port in every table; random: not so.
  std::set<uint16_t> hashed, drawn;
  for (int i = 0; i < 6; ++i) {
    hashed.insert(pick(kNatPortHash, 40000, 10000, 60000));
    drawn.insert(pick(kNatPortRandom, 40000, 10000, 60000));
  }
  CHECK(hashed.size() == 1);
  CHECK(drawn.size() >= 4);  // six draws from 50001 ports
  for (uint16_t p : drawn) {
    CHECK(p >= 10000);
    CHECK(p <= 60000);
  }
}

TEST_CASE("NAT: random fills a port range with distinct reply tuples", "[conntrack][nat]") {
  const uint32_t server = v4("10.0.0.2"), x = v4("192.168.9.1");
  Action masq = snat("192.168.9.1", "192.168.9.1", 2000, 2063);
  masq.nat_port = kNatPortRandom;
  Conntrack ct(Options{.capacity = 1024});
  std::set<uint16_t> ports;
  for (uint32_t i = 1; i <= 64; ++i) {
    const uint32_t client = v4("10.0.2." + std::to_string(i));
    Bytes f = udp4(client, server, 7000, 80);
    REQUIRE(cs(run(ct, masq, f).state) == "+new+trk+snat");
    const uint16_t p = ntoh16(find_conn(ct, client, 7000).reply.dport);
    CHECK(f == udp4(x, server, p, 80));
    ports.insert(p);
  }
  CHECK(ports.size() == 64);
  CHECK(*ports.begin() == 2000);
  CHECK(*ports.rbegin() == 2063);
  // The range is full: not committed, not translated, counted.
  const Bytes orig = udp4(v4("10.0.3.1"), server, 7000, 80);
  Bytes extra = orig;
  CHECK(cs(run(ct, masq, extra).state) == "+new+trk");
  CHECK(extra == orig);
  CHECK(ct.stats().nat_exhausted == 1);
}
