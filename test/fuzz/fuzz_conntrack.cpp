// Fuzz target: the connection tracker (dataplane/conntrack) on hostile packet sequences:
// the TCP state machine and window checks, ICMP errors quoting (forged) headers, NAT with
// a two-address, two-port range (exhaustion), the FTP helper, zones, force commits, time
// jumps (expiry) and IP fragments through reassembly (Ipf), as the PMD drives them.
//
// Input: records of [flags][length][frame bytes] (frame length = length + 14; an even
// length byte gets the frame's checksums corrected, an odd one keeps them). flags: bit 0 commit,
// bit 1 NAT (source), bit 2 force, bit 3 the FTP helper, bits 4-5 the zone (0..3), bits 6-7 how far
// the clock moves before this packet (0, 1 s, 40 s, 2 h). Nothing may crash or read outside a frame
// (run under ASan with -DGL_SANITIZE=ON), and the tracker's books stay consistent: no more
// connections than its capacity, and a flush empties it.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/conntrack/conntrack.hpp"
#include "flowtables/checksum.hpp"
#include "flowtables/packet_builder.hpp"
#include "flowtables/packet_parser.hpp"

using namespace gl;

namespace {

constexpr uint32_t kCapacity = 256;

struct World {
  ct::Conntrack tracker;
  int slot;
  std::unique_ptr<uint8_t[]> scratch = std::make_unique<uint8_t[]>(ct::kIpfScratchBytes);
  uint64_t now = 1000;
  World() : tracker(options()), slot(tracker.register_context()) {}
  // GL_FUZZ_STATS=1: what the run reached (packets, connections made, invalid by reason).
  ~World() {
    if (std::getenv("GL_FUZZ_STATS") == nullptr) return;
    const ct::Stats s = tracker.stats();
    std::printf(
        "packets %llu found %llu created %llu expired %llu table_full %llu nat_exhausted "
        "%llu\n",
        (unsigned long long)s.packets, (unsigned long long)s.found, (unsigned long long)s.created,
        (unsigned long long)s.expired, (unsigned long long)s.table_full,
        (unsigned long long)s.nat_exhausted);
    for (size_t i = 0; i < s.invalid.size(); ++i)
      std::printf("invalid %s %llu\n", std::string(ct::kInvalidNames[i]).c_str(),
                  (unsigned long long)s.invalid[i]);
  }
  static ct::Options options() {
    ct::Options o;
    o.capacity = kCapacity;
    o.contexts = 1;
    return o;
  }
};

World& world() {
  static World w;
  return w;
}

ct::Action action_for(uint8_t flags) {
  ct::Action a;
  a.zone = static_cast<uint16_t>((flags >> 4) & 3);
  a.commit = (flags & 1) != 0;
  a.force = (flags & 4) != 0 && a.commit;
  if (flags & 2) {
    a.nat = true;
    a.nat_src = a.commit;
    a.nat_family = 4;
    a.ip_min[0] = flow::ipv4_addr("10.9.9.1");
    a.ip_max[0] = flow::ipv4_addr("10.9.9.2");
    a.port_min = 1000;
    a.port_max = 1001;
  }
  if (flags & 8) a.helper = ct::kHelperFtp;
  return a;
}

// Correct IPv4 header and TCP/UDP/ICMP checksums over what the mutation made of the frame,
// so that the state machine behind the checksum checks is reached.
void fix_checksums(std::vector<uint8_t>& f) {
  flow::FlowKey key = flow::zero_key();
  flow::PacketLayout lay;
  flow::parse_packet(f.data(), static_cast<uint32_t>(f.size()), key, lay);
  if (lay.l3_ofs == flow::kNoOffset) return;
  uint8_t* l3 = f.data() + lay.l3_ofs;
  if (lay.is_ipv4()) {
    const size_t ihl = (l3[0] & 0x0fu) * 4u;
    if (ihl < 20 || lay.l3_ofs + ihl > f.size()) return;
    const uint16_t c = flow::ipv4_header_checksum(l3, ihl);
    std::memcpy(l3 + 10, &c, 2);
  }
  if (lay.l4_ofs == flow::kNoOffset || (key.nw_frag & flow::kFragAny) != 0) return;
  uint8_t* l4 = f.data() + lay.l4_ofs;
  const uint32_t n = lay.l4_len;
  size_t at;
  switch (lay.l4_proto) {
    case 6:
      at = 16;
      break;
    case 17:
      at = 6;
      break;
    case 1:
    case 58:
      at = 2;
      break;
    default:
      return;
  }
  if (n < at + 2) return;
  std::memset(l4 + at, 0, 2);
  uint32_t pseudo = 0;
  if (lay.is_ipv4() && lay.l4_proto != 1)
    pseudo =
        flow::ipv4_pseudo_sum(key.ipv4_src, key.ipv4_dst, lay.l4_proto, static_cast<uint16_t>(n));
  else if (lay.is_ipv6())
    pseudo = flow::ipv6_pseudo_sum(key.ipv6_src, key.ipv6_dst, lay.l4_proto, n);
  const uint16_t c = flow::l4_checksum(pseudo, l4, n);
  std::memcpy(l4 + at, &c, 2);
}

// One packet through ct() as the PMD runs it (fragments through reassembly first).
void track(World& w, uint8_t flags, std::vector<uint8_t>& frame,
           std::vector<std::unique_ptr<std::vector<uint8_t>>>& held) {
  flow::FlowKey key = flow::zero_key();
  flow::PacketLayout lay;
  flow::parse_packet(frame.data(), static_cast<uint32_t>(frame.size()), key, lay);
  const ct::Action a = action_for(flags);
  if ((key.nw_frag & flow::kFragAny) != 0 && lay.l3_ofs != flow::kNoOffset) {
    auto owned = std::make_unique<std::vector<uint8_t>>(frame);
    ct::Completed done;
    done.scratch = std::span<uint8_t>(w.scratch.get(), ct::kIpfScratchBytes);
    const ct::FragIn in{owned->data(), static_cast<uint32_t>(owned->size()), lay.l3_ofs, a.zone, 0,
                        owned.get()};
    switch (w.tracker.ipf().add(in, w.now, done)) {
      case ct::AddResult::kHeld:
        held.push_back(std::move(owned));
        return;
      case ct::AddResult::kComplete: {
        held.push_back(std::move(owned));
        flow::FlowKey rkey = flow::zero_key();
        flow::PacketLayout rlay;
        flow::parse_packet(done.pkt, done.len, rkey, rlay);
        ct::Md md;
        ct::Packet p{done.pkt, done.len, &rkey, &rlay, &md};
        w.tracker.execute(0, a, &p, 1, w.now);
        ct::Ipf::apply(done);
        return;
      }
      default:
        break;  // tracked as it is (+inv)
    }
  }
  ct::Md md;
  ct::Packet p{frame.data(), static_cast<uint32_t>(frame.size()), &key, &lay, &md};
  p.room = 0;
  w.tracker.execute(0, a, &p, 1, w.now);
  if (p.len > frame.size()) std::abort();  // no room was offered: nothing may grow
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  World& w = world();
  std::vector<std::unique_ptr<std::vector<uint8_t>>> held;  // fragments the Ipf holds
  size_t at = 0;
  while (at + 2 <= size) {
    const uint8_t flags = data[at];
    const size_t len = std::min<size_t>(data[at + 1] + 14u, size - at - 2);
    std::vector<uint8_t> frame(data + at + 2, data + at + 2 + len);  // exact size
    // An even length byte: correct checksums (the state machine behind them); odd: as is.
    if ((data[at + 1] & 1) == 0) fix_checksums(frame);
    at += 2 + len;
    static constexpr uint64_t kStep[4] = {0, 1000, 40000, 7200000};
    w.now += kStep[flags >> 6];
    track(w, flags, frame, held);
    w.tracker.sweep(0, w.now, 16);
  }
  if (w.tracker.stats().n_conns > kCapacity) std::abort();
  // Every fragment still held goes back (as gldp does at exit), then a clean table.
  w.tracker.ipf().drain([](void*, ct::IpfRelease) {});
  w.tracker.flush(-1);
  w.tracker.quiescent(w.slot);
  w.tracker.sweep(0, w.now, kCapacity * 2);
  if (w.tracker.stats().n_conns != 0) std::abort();
  return 0;
}

std::vector<std::vector<uint8_t>> fuzz_seeds() {
  using flow::PacketBuilder;
  auto rec = [](std::vector<uint8_t>& s, uint8_t flags, const std::vector<uint8_t>& f) {
    s.push_back(flags);
    s.push_back(static_cast<uint8_t>(f.size() >= 14 ? std::min<size_t>(f.size() - 14, 255) : 0));
    s.insert(s.end(), f.begin(), f.end());
  };
  const char* a = "02:00:00:00:00:01";
  const char* b = "02:00:00:00:00:02";
  std::vector<std::vector<uint8_t>> seeds;
  {  // a TCP handshake, data, FIN, committed with NAT
    std::vector<uint8_t> s;
    rec(s, 0x03,
        PacketBuilder()
            .eth(a, b)
            .ipv4("10.0.0.1", "10.0.0.2")
            .tcp(1234, 80)
            .tcp_flags(0x02)
            .tcp_seq(100)
            .build());
    rec(s, 0x02,
        PacketBuilder()
            .eth(b, a)
            .ipv4("10.0.0.2", "10.0.0.1")
            .tcp(80, 1234)
            .tcp_flags(0x12)
            .tcp_seq(500)
            .tcp_ack(101)
            .build());
    rec(s, 0x02,
        PacketBuilder()
            .eth(a, b)
            .ipv4("10.0.0.1", "10.0.0.2")
            .tcp(1234, 80)
            .tcp_flags(0x18)
            .tcp_seq(101)
            .tcp_ack(501)
            .payload(20)
            .build());
    rec(s, 0x42,
        PacketBuilder()
            .eth(a, b)
            .ipv4("10.0.0.1", "10.0.0.2")
            .tcp(1234, 80)
            .tcp_flags(0x11)
            .tcp_seq(121)
            .tcp_ack(501)
            .build());
    seeds.push_back(s);
  }
  {  // UDP both ways, then an ICMP error quoting it
    std::vector<uint8_t> s;
    auto udp =
        PacketBuilder().eth(a, b).ipv4("10.0.0.1", "10.0.0.2").udp(5000, 53).payload(8).build();
    rec(s, 0x11, udp);
    rec(s, 0x10,
        PacketBuilder().eth(b, a).ipv4("10.0.0.2", "10.0.0.1").udp(53, 5000).payload(8).build());
    std::vector<uint8_t> quote(udp.begin() + 14, udp.end());
    rec(s, 0x10,
        PacketBuilder().eth(b, a).ipv4("10.0.0.2", "10.0.0.1").icmp(3, 3).payload(quote).build());
    seeds.push_back(s);
  }
  {  // an IPv4 datagram in two fragments, and a ping
    std::vector<uint8_t> s;
    rec(s, 0x21,
        PacketBuilder()
            .eth(a, b)
            .ipv4("10.0.0.1", "10.0.0.2")
            .ip_id(7)
            .mf()
            .udp(1, 2)
            .payload(16)
            .build());
    rec(s, 0x21,
        PacketBuilder()
            .eth(a, b)
            .ipv4("10.0.0.1", "10.0.0.2")
            .ip_id(7)
            .frag_offset(3)
            .ip_proto(17)
            .payload(16)
            .build());
    rec(s, 0x01, PacketBuilder().eth(a, b).ipv4("10.0.0.1", "10.0.0.2").icmp_echo(9, 1).build());
    rec(s, 0x29,
        PacketBuilder()
            .eth(a, b)
            .ipv4("10.0.0.1", "10.0.0.2")
            .tcp(3000, 21)
            .tcp_flags(0x02)
            .build());
    seeds.push_back(s);
  }
  {  // IPv6 UDP and an ICMPv6 echo
    std::vector<uint8_t> s;
    rec(s, 0x01, PacketBuilder().eth(a, b).ipv6("fd00::1", "fd00::2").udp(7, 8).payload(4).build());
    rec(s, 0x01, PacketBuilder().eth(a, b).ipv6("fd00::1", "fd00::2").icmpv6_echo(1, 1).build());
    seeds.push_back(s);
  }
  return seeds;
}
