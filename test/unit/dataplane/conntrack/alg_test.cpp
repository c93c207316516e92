// ALG tests: ct(commit,helper=ftp|tftp) through Conntrack::execute() on real frames.
// Expected values follow OVS 3.1 lib/conntrack.c (handle_ftp_ctl, handle_tftp_ctl,
// expectation_create/lookup, write_ct_md with an expectation).
#include <catch2/catch.hpp>

#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/conntrack/conntrack.hpp"
#include "flowtables/bytes.hpp"
#include "flowtables/checksum.hpp"
#include "flowtables/flow_key.hpp"
#include "flowtables/packet_builder.hpp"
#include "flowtables/packet_parser.hpp"

using namespace gl::ct;
using gl::flow::PacketBuilder;

namespace {

using Bytes = std::vector<uint8_t>;
constexpr uint64_t kT0 = 1'000'000;
constexpr uint16_t kSyn = gl::flow::kTcpSyn;
constexpr uint16_t kAck = gl::flow::kTcpAck;
constexpr uint16_t kPsh = gl::flow::kTcpPsh;

Bytes text(std::string_view s) {
  return Bytes(s.begin(), s.end());
}

Bytes tcp(bool v6, std::string_view src, std::string_view dst, uint16_t sp, uint16_t dp,
          uint16_t flags, uint32_t seq, uint32_t ack, std::string_view payload = {}) {
  PacketBuilder b;
  b.eth("02:00:00:00:00:01", "02:00:00:00:00:02");
  if (v6)
    b.ipv6(src, dst);
  else
    b.ipv4(src, dst);
  b.tcp(sp, dp).tcp_flags(flags).tcp_seq(seq).tcp_ack(ack);
  if (!payload.empty()) b.payload(text(payload));
  return b.build();
}
Bytes udp(std::string_view src, std::string_view dst, uint16_t sp, uint16_t dp) {
  PacketBuilder b;
  b.eth("02:00:00:00:00:01", "02:00:00:00:00:02").ipv4(src, dst).udp(sp, dp).payload(12);
  return b.build();
}

// Runs one frame through ct(); the frame may be rewritten (and grow up to 64 bytes).
Md run(Conntrack& ct, const Action& a, Bytes& frame, uint64_t now = kT0) {
  gl::flow::FlowKey key = gl::flow::zero_key();
  gl::flow::PacketLayout lay{};
  gl::flow::parse_packet(frame, key, lay);
  const size_t len = frame.size();
  frame.resize(len + 64);
  Md md;
  Packet p{frame.data(), static_cast<uint32_t>(len), &key, &lay, &md};
  p.room = 64;
  ct.execute(0, a, &p, 1, now);
  frame.resize(p.len);
  return md;
}
Md run(Conntrack& ct, const Action& a, Bytes&& frame, uint64_t now = kT0) {
  return run(ct, a, frame, now);
}

std::string cs(uint8_t state) {
  static constexpr const char* kNames[] = {"new", "est", "rel", "rpl", "inv", "trk"};
  std::string s;
  for (int i = 0; i < 6; ++i)
    if (state & (1u << i)) s += std::string("+") + kNames[i];
  return s;
}

Options opts() {
  Options o;
  o.capacity = 1024;
  return o;
}
Action act(bool commit, uint8_t helper = kHelperNone) {
  Action a;
  a.commit = commit;
  a.helper = helper;
  return a;
}

// The control connection A:40000 -> B:21 established (seq 1000 / 5000).
void control(Conntrack& ct, bool v6, std::string_view a, std::string_view b, uint8_t helper,
             const Action* base = nullptr) {
  Action c = base != nullptr ? *base : act(true, helper);
  c.commit = true;
  c.helper = helper;
  Action t = base != nullptr ? *base : act(false);
  t.commit = false;
  t.helper = kHelperNone;
  CHECK(cs(run(ct, c, tcp(v6, a, b, 40000, 21, kSyn, 1000, 0)).state) == "+new+trk");
  CHECK(cs(run(ct, t, tcp(v6, b, a, 21, 40000, kSyn | kAck, 5000, 1001)).state) == "+est+rpl+trk");
  CHECK(cs(run(ct, t, tcp(v6, a, b, 40000, 21, kAck, 1001, 5001)).state) == "+est+trk");
}

bool csum_ok(const Bytes& f, bool v6) {
  gl::flow::FlowKey key = gl::flow::zero_key();
  gl::flow::PacketLayout lay{};
  gl::flow::parse_packet(f, key, lay);
  const uint8_t* l3 = f.data() + lay.l3_ofs;
  const uint8_t* l4 = f.data() + lay.l4_ofs;
  uint32_t sum = v6 ? gl::flow::ipv6_pseudo_sum(l3 + 8, l3 + 24, 6, lay.l4_len)
                    : gl::flow::ipv4_pseudo_sum(key.ipv4_src, key.ipv4_dst, 6,
                                                static_cast<uint16_t>(lay.l4_len));
  const bool l4ok = gl::flow::csum_fold(gl::flow::csum_partial(l4, lay.l4_len, sum)) == 0xffff;
  return l4ok && (v6 || gl::flow::ipv4_header_checksum_ok(l3, lay.l3_len));
}

}  // namespace

TEST_CASE("alg: active FTP (PORT) makes the server's data connection related", "[ct][alg]") {
  Conntrack ct(opts());
  control(ct, false, "10.0.0.1", "10.0.0.2", kHelperFtp);
  Md m = run(ct, act(false),
             tcp(false, "10.0.0.1", "10.0.0.2", 40000, 21, kAck | kPsh, 1001, 5001,
                 "PORT 10,0,0,1,4,1\r\n"));
  CHECK(cs(m.state) == "+est+trk");
  CHECK(ct.stats().n_expectations == 1);
  // The server connects from port 20 to 10.0.0.1:1025.
  Md d = run(ct, act(true), tcp(false, "10.0.0.2", "10.0.0.1", 20, 1025, kSyn, 7000, 0));
  CHECK(cs(d.state) == "+new+rel+trk");
  CHECK(d.orig_dport == gl::flow::hton16(21));  // ct_orig_tuple: the parent's
  Md r = run(ct, act(false), tcp(false, "10.0.0.1", "10.0.0.2", 1025, 20, kSyn | kAck, 9000, 7001));
  CHECK(cs(r.state) == "+est+rel+rpl+trk");
  // Another port is not expected.
  CHECK(cs(run(ct, act(false), tcp(false, "10.0.0.2", "10.0.0.1", 20, 1026, kSyn, 1, 0)).state) ==
        "+new+trk");
  // Expectations go with their parent.
  ct.flush(-1);
  CHECK(ct.stats().n_expectations == 0);
  CHECK(cs(run(ct, act(false), tcp(false, "10.0.0.2", "10.0.0.1", 20, 1025, kSyn, 1, 0)).state) ==
        "+new+trk");
}

// OVS's system test 110 (conntrack - FTP, active): every TCP packet from the client goes
// through ct(commit,alg=ftp), the server's through ct() with +rel allowed but not
// committed. The client's SYN-ACK of the data connection cannot create one (+inv); its
// first ACK does, and that connection carries helper=ftp like the control connection
// (OVS ct_verify_helper records the helper on a packet of no helper's control port), so
// a dump shows the same two lines as OVS's. Its data is never parsed as FTP.
TEST_CASE("alg: an alg=ftp commit of a non-control packet records the helper, parses nothing",
          "[ct][alg]") {
  Conntrack ct(opts());
  control(ct, false, "10.0.0.1", "10.0.0.2", kHelperFtp);
  run(ct, act(true, kHelperFtp),
      tcp(false, "10.0.0.1", "10.0.0.2", 40000, 21, kAck | kPsh, 1001, 5001,
          "PORT 10,0,0,1,4,1\r\n"));
  REQUIRE(ct.stats().n_expectations == 1);
  CHECK(
      cs(run(ct, act(false), tcp(false, "10.0.0.2", "10.0.0.1", 20, 1025, kSyn, 7000, 0)).state) ==
      "+new+rel+trk");
  CHECK(cs(run(ct, act(true, kHelperFtp),
               tcp(false, "10.0.0.1", "10.0.0.2", 1025, 20, kSyn | kAck, 9000, 7001))
               .state) == "+inv+trk");
  CHECK(cs(run(ct, act(true, kHelperFtp),
               tcp(false, "10.0.0.1", "10.0.0.2", 1025, 20, kAck, 9001, 7001))
               .state) == "+new+trk");
  // A PORT command inside the data connection is payload, not a command.
  run(ct, act(false),
      tcp(false, "10.0.0.2", "10.0.0.1", 20, 1025, kAck | kPsh, 7001, 9001,
          "PORT 10,0,0,2,8,1\r\n"));
  CHECK(ct.stats().n_expectations == 1);
  int with_helper = 0, conns = 0;
  uint32_t cursor = 0;
  do {
    cursor = ct.dump(cursor, -1, kT0, [&](const Entry& e) {
      ++conns;
      if ((e.flags & kConnAlgFtp) != 0) ++with_helper;
      return true;
    });
  } while (cursor != 0);
  CHECK(conns == 2);
  CHECK(with_helper == 2);
  // A TFTP request committed with helper=ftp is not given the FTP helper, and the
  // reverse (as OVS: the packet's own helper decides).
  run(ct, act(true, kHelperFtp), udp("10.0.0.1", "10.0.0.2", 5000, 69));
  run(ct, act(true, kHelperTftp), tcp(false, "10.0.0.1", "10.0.0.2", 41000, 21, kSyn, 1, 0));
  int plain = 0;
  cursor = 0;
  do {
    cursor = ct.dump(cursor, -1, kT0, [&](const Entry& e) {
      if ((e.flags & (kConnAlgFtp | kConnAlgTftp)) == 0) ++plain;
      return true;
    });
  } while (cursor != 0);
  CHECK(plain == 2);
}

TEST_CASE("alg: without helper=ftp the data connection is plain new", "[ct][alg]") {
  Conntrack ct(opts());
  control(ct, false, "10.0.0.1", "10.0.0.2", kHelperNone);
  run(ct, act(false),
      tcp(false, "10.0.0.1", "10.0.0.2", 40000, 21, kAck | kPsh, 1001, 5001,
          "PORT 10,0,0,1,4,1\r\n"));
  CHECK(ct.stats().n_expectations == 0);
  CHECK(cs(run(ct, act(true), tcp(false, "10.0.0.2", "10.0.0.1", 20, 1025, kSyn, 7000, 0)).state) ==
        "+new+trk");
}

TEST_CASE("alg: passive FTP (227) and a forged address", "[ct][alg]") {
  Conntrack ct(opts());
  control(ct, false, "10.0.0.1", "10.0.0.2", kHelperFtp);
  Md m = run(ct, act(false),
             tcp(false, "10.0.0.2", "10.0.0.1", 21, 40000, kAck | kPsh, 5001, 1001,
                 "227 Entering Passive Mode (10,0,0,2,200,10).\r\n"));
  CHECK(cs(m.state) == "+est+rpl+trk");
  CHECK(
      cs(run(ct, act(true), tcp(false, "10.0.0.1", "10.0.0.2", 41000, 51210, kSyn, 1, 0)).state) ==
      "+new+rel+trk");
  // A third host's address: invalid (OVS refuses it).
  Md bad = run(ct, act(false),
               tcp(false, "10.0.0.2", "10.0.0.1", 21, 40000, kAck | kPsh, 5048, 1001,
                   "227 Entering Passive Mode (10,0,0,9,200,11).\r\n"));
  CHECK((bad.state & gl::flow::kCsInvalid) != 0);
}

TEST_CASE("alg: IPv6 EPRT and 229", "[ct][alg]") {
  Conntrack ct(opts());
  control(ct, true, "fd00::1", "fd00::2", kHelperFtp);
  run(ct, act(false),
      tcp(true, "fd00::1", "fd00::2", 40000, 21, kAck | kPsh, 1001, 5001,
          "EPRT |2|fd00::1|3000|\r\n"));
  CHECK(cs(run(ct, act(true), tcp(true, "fd00::2", "fd00::1", 20, 3000, kSyn, 1, 0)).state) ==
        "+new+rel+trk");
  run(ct, act(false),
      tcp(true, "fd00::2", "fd00::1", 21, 40000, kAck | kPsh, 5001, 1025,
          "229 Entering Extended Passive Mode (|||3001|)\r\n"));
  CHECK(cs(run(ct, act(true), tcp(true, "fd00::1", "fd00::2", 41000, 3001, kSyn, 1, 0)).state) ==
        "+new+rel+trk");
  CHECK(ct.stats().n_expectations == 2);
}

TEST_CASE("alg: mark and label are inherited from the parent", "[ct][alg]") {
  Conntrack ct(opts());
  Action c = act(true, kHelperFtp);
  c.set_mark = true;
  c.mark = 0x42;
  c.mark_mask = 0xffffffff;
  control(ct, false, "10.0.0.1", "10.0.0.2", kHelperFtp, &c);
  run(ct, act(false),
      tcp(false, "10.0.0.1", "10.0.0.2", 40000, 21, kAck | kPsh, 1001, 5001,
          "PORT 10,0,0,1,4,1\r\n"));
  Action d = act(true);
  d.set_mark = true;
  d.mark = 7;
  d.mark_mask = 0xffffffff;
  Md m = run(ct, d, tcp(false, "10.0.0.2", "10.0.0.1", 20, 1025, kSyn, 7000, 0));
  CHECK(cs(m.state) == "+new+rel+trk");
  CHECK(m.mark == 0x42);  // a related connection keeps its parent's mark (OVS set_mark)
}

TEST_CASE("alg: TFTP reply from another port is related", "[ct][alg]") {
  Conntrack ct(opts());
  CHECK(cs(run(ct, act(true, kHelperTftp), udp("10.0.0.1", "10.0.0.2", 30000, 69)).state) ==
        "+new+trk");
  Md r = run(ct, act(true), udp("10.0.0.2", "10.0.0.1", 40123, 30000));
  CHECK(cs(r.state) == "+new+rel+trk");
  CHECK(cs(run(ct, act(false), udp("10.0.0.1", "10.0.0.2", 30000, 40123)).state) ==
        "+est+rel+rpl+trk");
  CHECK(cs(run(ct, act(false), udp("10.0.0.2", "10.0.0.1", 40123, 30000)).state) == "+est+rel+trk");
}

TEST_CASE("alg: FTP with SNAT rewrites PORT and skews sequence numbers", "[ct][alg]") {
  Conntrack ct(opts());
  Action snat = act(true, kHelperFtp);
  snat.nat = snat.nat_src = true;
  snat.nat_family = 4;
  snat.ip_min[0] = snat.ip_max[0] = gl::flow::hton32(0xac100064);  // 172.16.0.100
  Action nat = act(false);
  nat.nat = true;
  Md s = run(ct, snat, tcp(false, "10.0.0.1", "10.0.0.2", 40000, 21, kSyn, 1000, 0));
  CHECK(cs(s.state) == "+new+trk");
  CHECK(cs(run(ct, nat, tcp(false, "10.0.0.2", "172.16.0.100", 21, 40000, kSyn | kAck, 5000, 1001))
               .state) == "+est+rpl+trk");
  run(ct, nat, tcp(false, "10.0.0.1", "10.0.0.2", 40000, 21, kAck, 1001, 5001));
  const std::string port = "PORT 10,0,0,1,4,1\r\n";
  Bytes f = tcp(false, "10.0.0.1", "10.0.0.2", 40000, 21, kAck | kPsh, 1001, 5001, port);
  run(ct, nat, f);
  const std::string want = "PORT 172,16,0,100,4,1\r\n";  // 4 bytes longer
  REQUIRE(f.size() == 14 + 20 + 20 + want.size());
  CHECK(std::string(f.begin() + 54, f.end()) == want);
  CHECK(f[16] * 256 + f[17] == 20 + 20 + static_cast<int>(want.size()));
  CHECK(f[26] == 172);  // SNAT'd source
  CHECK(csum_ok(f, false));
  // The server's data connection to the translated address is related; committed through
  // a flow with alg=ftp and nat (OVS's seqadj tests), it shows the helper but is no
  // control connection: its sequence numbers are never skewed.
  Action data = act(true, kHelperFtp);
  data.nat = true;
  CHECK(cs(run(ct, data, tcp(false, "10.0.0.2", "172.16.0.100", 20, 1025, kSyn, 7000, 0)).state) ==
        "+new+rel+trk");
  Bytes ds = tcp(false, "10.0.0.1", "10.0.0.2", 1025, 20, kSyn | kAck, 9000, 7001);
  CHECK(cs(run(ct, nat, ds).state) == "+est+rel+rpl+trk");
  Bytes dd = tcp(false, "10.0.0.2", "172.16.0.100", 20, 1025, kAck | kPsh, 7001, 9001,
                 "PORT 10,0,0,2,8,1\r\n");
  CHECK(cs(run(ct, nat, dd).state) == "+est+rel+trk");
  CHECK(gl::flow::load_be32(&ds[14 + 20 + 4]) == 9000);
  CHECK(gl::flow::load_be32(&ds[14 + 20 + 8]) == 7001);
  CHECK(gl::flow::load_be32(&dd[14 + 20 + 4]) == 7001);
  CHECK(gl::flow::load_be32(&dd[14 + 20 + 8]) == 9001);
  CHECK(std::string(dd.begin() + 54, dd.end()) == "PORT 10,0,0,2,8,1\r\n");
  bool shown = false;
  uint32_t cursor = 0;
  do {
    cursor = ct.dump(cursor, -1, kT0, [&](const Entry& e) {
      if (e.orig.sport == gl::flow::hton16(20))
        shown = (e.flags & (kConnRelated | kConnAlgFtp)) == (kConnRelated | kConnAlgFtp);
      return true;
    });
  } while (cursor != 0);
  CHECK(shown);
  // The server acks 4 more bytes than the client sent: its ack moves back by 4.
  Bytes r = tcp(false, "10.0.0.2", "172.16.0.100", 21, 40000, kAck, 5001,
                1001 + static_cast<uint32_t>(want.size()));
  Md rm = run(ct, nat, r);
  CHECK(cs(rm.state) == "+est+rpl+trk");
  CHECK(gl::flow::load_be32(&r[14 + 20 + 8]) == 1001 + port.size());
  CHECK(csum_ok(r, false));
  // The client's next segment: seq moves forward by 4.
  Bytes n = tcp(false, "10.0.0.1", "10.0.0.2", 40000, 21, kAck | kPsh, 1001 + port.size(), 5001,
                "LIST\r\n");
  CHECK(cs(run(ct, nat, n).state) == "+est+trk");
  CHECK(gl::flow::load_be32(&n[14 + 20 + 4]) == 1001 + want.size());
  CHECK(csum_ok(n, false));
}
