// TCP state-machine tests: handshake, data, window and ack edges, window scaling, SYN
// retransmission, resets, both close orders, reopen, flag and option validation, sequence
// wraparound and tcp_parse() on every malformed header. Expected values follow OVS 3.1
// userspace conntrack (lib/conntrack-tcp.c) and are worked out by hand in the comments.
#include "dataplane/conntrack/tcp.hpp"

#include <catch2/catch.hpp>

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace gl::ct {

std::ostream& operator<<(std::ostream& os, TcpState s) {
  return os << tcp_state_name(s);
}
std::ostream& operator<<(std::ostream& os, TcpTimeout t) {
  return os << tcp_timeout_name(t);
}
std::ostream& operator<<(std::ostream& os, TcpVerdict v) {
  constexpr const char* kNames[] = {"kValid", "kValidNew", "kInvalid", "kReopen"};
  return os << kNames[static_cast<int>(v)];
}

}  // namespace gl::ct

using namespace gl::ct;

namespace {

using enum TcpState;
using V = TcpVerdict;
using T = TcpTimeout;

constexpr uint16_t kSyn = kTcpSyn;
constexpr uint16_t kAck = kTcpAck;
constexpr uint16_t kFin = kTcpFin;
constexpr uint16_t kRst = kTcpRst;
constexpr uint16_t kPsh = kTcpPsh;
constexpr uint16_t kUrg = kTcpUrg;
constexpr uint16_t kSynAck = kSyn | kAck;
constexpr uint16_t kFinAck = kFin | kAck;
constexpr uint16_t kRstAck = kRst | kAck;
constexpr uint16_t kPshAck = kPsh | kAck;

constexpr uint32_t kS = 1'000'000;  // originator's initial sequence number
constexpr uint32_t kR = 5'000'000;  // responder's
constexpr uint16_t kWo = 64240;     // originator's window
constexpr uint16_t kWr = 65160;     // responder's window
constexpr int32_t kMaxAck = 0xffff + 1500;

// One segment, fluent: seg(kAck, seq, ack).win(100).len(10).ws(7).
struct Seg {
  TcpSegment s{0, 0, kWo, 0, 0, kNoWscale, false};

  Seg(uint16_t flags, uint32_t seq, uint32_t ack) {
    s.flags = flags;
    s.seq = seq;
    s.ack = ack;
  }
  Seg& win(uint16_t w) {
    s.win = w;
    return *this;
  }
  Seg& len(uint32_t n) {
    s.payload_len = n;
    return *this;
  }
  Seg& ws(uint8_t w) {
    s.wscale = w;
    return *this;
  }
  Seg& bad() {
    s.options_bad = true;
    return *this;
  }
  operator const TcpSegment&() const { return s; }
};
Seg seg(uint16_t flags, uint32_t seq, uint32_t ack = 0) {
  return Seg(flags, seq, ack);
}

// A tracked connection driven from both sides.
struct Flow {
  TcpConn c{};

  void open(const TcpSegment& first) {
    REQUIRE(tcp_valid_new(first));
    REQUIRE(tcp_new_conn(c, first) == T::kFirstPacket);
  }
  TcpUpdate o(const TcpSegment& s) { return tcp_update(c, s, false); }
  TcpUpdate r(const TcpSegment& s) { return tcp_update(c, s, true); }
  TcpState os() const { return c.peer[0].state; }
  TcpState rs() const { return c.peer[1].state; }
  const TcpPeer& orig() const { return c.peer[0]; }
  const TcpPeer& resp() const { return c.peer[1]; }
};

#define CHECK_UPDATE(expr, want_verdict, want_timeout, want_refresh) \
  do {                                                               \
    const TcpUpdate u_ = (expr);                                     \
    CHECK(u_.verdict == (want_verdict));                             \
    CHECK(u_.timeout == (want_timeout));                             \
    CHECK(u_.refresh == (want_refresh));                             \
  } while (0)

#define CHECK_STATES(f, o_state, r_state) \
  do {                                    \
    CHECK((f).os() == (o_state));         \
    CHECK((f).rs() == (r_state));         \
  } while (0)

// The handshake without options; afterwards orig.seqlo = s (a bare ACK moves nothing),
// orig.seqhi = s + 1 + kWr, resp.seqlo = r + 1, resp.seqhi = r + 1 + kWo.
Flow established(uint32_t s = kS, uint32_t r = kR) {
  Flow f;
  f.open(seg(kSyn, s).win(kWo));
  REQUIRE(f.r(seg(kSynAck, r, s + 1).win(kWr)).verdict == V::kValid);
  REQUIRE(f.o(seg(kAck, s + 1, r + 1).win(kWo)).verdict == V::kValid);
  REQUIRE(f.os() == kEstablished);
  REQUIRE(f.rs() == kEstablished);
  return f;
}

std::string hex(const std::vector<uint8_t>& v) {
  std::string s;
  for (uint8_t b : v) {
    constexpr char kD[] = "0123456789abcdef";
    s += kD[b >> 4];
    s += kD[b & 15];
  }
  return s;
}

// A TCP header (+ payload bytes) in network order; options are padded with EOL to 4 bytes.
std::vector<uint8_t> tcp_bytes(uint16_t flags, uint32_t seq, uint32_t ack, uint16_t win,
                               std::vector<uint8_t> opts = {}, uint32_t payload = 0) {
  while (opts.size() % 4) opts.push_back(0);
  const size_t hlen = 20 + opts.size();
  std::vector<uint8_t> p(hlen + payload, 0);
  p[0] = 0x30;  // source port 12345
  p[1] = 0x39;
  p[2] = 0x00;  // destination port 80
  p[3] = 0x50;
  for (int i = 0; i < 4; ++i) p[4 + i] = static_cast<uint8_t>(seq >> (24 - 8 * i));
  for (int i = 0; i < 4; ++i) p[8 + i] = static_cast<uint8_t>(ack >> (24 - 8 * i));
  p[12] = static_cast<uint8_t>((hlen / 4) << 4 | (flags >> 8));
  p[13] = static_cast<uint8_t>(flags);
  p[14] = static_cast<uint8_t>(win >> 8);
  p[15] = static_cast<uint8_t>(win);
  for (size_t i = 0; i < opts.size(); ++i) p[20 + i] = opts[i];
  return p;
}

}  // namespace

// ---- names and tables ------------------------------------------------------------------

TEST_CASE("tcp: state names are OVS's CT_DPIF_TCPS_* names in its order") {
  const char* kExpected[] = {"CLOSED",      "LISTEN",     "SYN_SENT",   "SYN_RECV",
                             "ESTABLISHED", "CLOSE_WAIT", "FIN_WAIT_1", "CLOSING",
                             "LAST_ACK",    "FIN_WAIT_2", "TIME_WAIT"};
  static_assert(static_cast<int>(TcpState::kCount) == 11);
  for (int i = 0; i < 11; ++i) CHECK(tcp_state_name(static_cast<TcpState>(i)) == kExpected[i]);
  CHECK(tcp_state_name(TcpState::kCount) == "?");
  CHECK(static_cast<int>(kSynSent) == 2);
  CHECK(static_cast<int>(kFinWait2) == 9);
  CHECK(static_cast<int>(kTimeWait) == 10);
}

TEST_CASE("tcp: timeout classes and OVS's default seconds") {
  CHECK(tcp_timeout_name(T::kFirstPacket) == "first_packet");
  CHECK(tcp_timeout_name(T::kClosed) == "closed");
  CHECK(tcp_timeout_name(T::kCount) == "?");
  CHECK(kTcpDefaultTimeoutSec[static_cast<int>(T::kFirstPacket)] == 30);
  CHECK(kTcpDefaultTimeoutSec[static_cast<int>(T::kOpening)] == 30);
  CHECK(kTcpDefaultTimeoutSec[static_cast<int>(T::kEstablished)] == 86400);
  CHECK(kTcpDefaultTimeoutSec[static_cast<int>(T::kClosing)] == 900);
  CHECK(kTcpDefaultTimeoutSec[static_cast<int>(T::kFinWait)] == 45);
  CHECK(kTcpDefaultTimeoutSec[static_cast<int>(T::kClosed)] == 30);
}

TEST_CASE("tcp: timeout class from the state pair, first rule that matches") {
  struct Row {
    TcpState a, b;
    TcpTimeout expected;
  };
  const Row rows[] = {
      {kSynSent, kClosed, T::kOpening},
      {kEstablished, kSynSent, T::kOpening},
      {kEstablished, kEstablished, T::kEstablished},
      {kClosing, kEstablished, T::kClosing},
      {kEstablished, kFinWait2, T::kClosing},
      {kClosing, kSynSent, T::kOpening},  // "either < ESTABLISHED" comes before "either CLOSING"
      {kClosing, kClosing, T::kFinWait},
      {kClosing, kFinWait2, T::kFinWait},
      {kFinWait2, kTimeWait, T::kClosed},
      {kFinWait2, kFinWait2, T::kClosed},
      {kTimeWait, kTimeWait, T::kClosed},
      {kTimeWait, kClosed, T::kOpening},
  };
  for (const Row& r : rows) {
    INFO(tcp_state_name(r.a) << " / " << tcp_state_name(r.b));
    CHECK(tcp_timeout_class(r.a, r.b) == r.expected);
    CHECK(tcp_timeout_class(r.b, r.a) == r.expected);
  }
}

TEST_CASE("tcp: dump state is the later end, FIN_WAIT_2 shown as TIME_WAIT") {
  TcpConn c{};
  c.peer[0].state = kEstablished;
  c.peer[1].state = kSynSent;
  CHECK(tcp_dump_state(c) == kEstablished);
  c.peer[1].state = kFinWait2;
  CHECK(tcp_dump_state(c) == kTimeWait);
  c.peer[0].state = kSynRecv;
  c.peer[1].state = kClosed;
  CHECK(tcp_dump_state(c) == kEstablished);
  c.peer[0].state = kClosing;
  CHECK(tcp_dump_state(c) == kClosing);
}

// ---- flags -----------------------------------------------------------------------------

TEST_CASE("tcp: invalid flag combinations and which first segments may create") {
  struct Row {
    const char* name;
    uint16_t flags;
    bool invalid;
    bool valid_new;
  };
  const Row rows[] = {
      {"none", 0, true, false},
      {"SYN", kSyn, false, true},
      {"SYN|ECE|CWR (ECN setup)", kSyn | kTcpEce | kTcpCwr, false, true},
      {"SYN|ACK", kSynAck, false, false},
      {"SYN|ACK|ECE", kSynAck | kTcpEce, false, false},
      {"SYN|FIN", kSyn | kFin, true, false},
      {"SYN|RST", kSyn | kRst, true, false},
      {"SYN|FIN|ACK", kSyn | kFinAck, true, false},
      {"SYN|RST|ACK", kSyn | kRstAck, true, false},
      {"SYN|PSH", kSyn | kPsh, true, false},
      {"SYN|URG", kSyn | kUrg, true, false},
      {"SYN|PSH|ACK", kSyn | kPshAck, false, false},
      {"ACK", kAck, false, true},
      {"RST", kRst, false, true},
      {"RST|ACK", kRstAck, false, true},
      {"FIN", kFin, true, false},
      {"FIN|ACK", kFinAck, false, true},
      {"FIN|RST", kFin | kRst, true, false},
      {"PSH", kPsh, true, false},
      {"PSH|ACK", kPshAck, false, true},
      {"URG", kUrg, true, false},
      {"URG|ACK", kUrg | kAck, false, true},
      {"RST|PSH", kRst | kPsh, true, false},
      {"RST|URG", kRst | kUrg, true, false},
      {"ECE", kTcpEce, true, false},
      {"CWR", kTcpCwr, true, false},
      {"NS", kTcpNs, true, false},
      {"NS|ACK", kTcpNs | kAck, false, true},
      {"FIN|PSH|URG|ACK", kFin | kPsh | kUrg | kAck, false, true},
      {"reserved|ACK", 0x0e00 | kAck, false, true},
  };
  for (const Row& r : rows) {
    INFO(r.name);
    CHECK(tcp_invalid_flags(r.flags) == r.invalid);
    CHECK(tcp_valid_new(seg(r.flags, kS)) == r.valid_new);
  }
}

TEST_CASE("tcp: a segment with invalid flags is invalid and changes nothing") {
  Flow f = established();
  const TcpConn before = f.c;
  for (uint16_t flags : {uint16_t{0}, kFin, uint16_t(kSyn | kFin), uint16_t(kSyn | kRstAck), kPsh,
                         uint16_t(kRst | kFin)}) {
    INFO("flags " << flags);
    CHECK_UPDATE(f.o(seg(flags, kS + 1, kR + 1)), V::kInvalid, T::kEstablished, false);
    CHECK_UPDATE(f.r(seg(flags, kR + 1, kS + 1)), V::kInvalid, T::kEstablished, false);
    CHECK(f.c == before);
  }
}

// ---- the handshake ---------------------------------------------------------------------

TEST_CASE("tcp: three-way handshake, both ends after each step") {
  Flow f;
  REQUIRE(tcp_valid_new(seg(kSyn, kS).win(kWo)));
  CHECK(tcp_new_conn(f.c, seg(kSyn, kS).win(kWo)) == T::kFirstPacket);
  CHECK_STATES(f, kSynSent, kClosed);
  CHECK(f.orig().seqlo == kS);
  CHECK(f.orig().seqhi == kS + 2);  // the SYN's sequence number + 1, + 1 more as OVS
  CHECK(f.orig().max_win == kWo);
  CHECK(f.resp().seqlo == 0);
  CHECK(f.resp().seqhi == 1);  // "not known yet"
  CHECK(f.resp().max_win == 1);
  CHECK_FALSE(f.orig().wscale_ok);
  CHECK_FALSE(f.orig().liberal);

  // SYN-ACK: the responder learns its window; its ACK establishes the originator.
  CHECK_UPDATE(f.r(seg(kSynAck, kR, kS + 1).win(kWr)), V::kValid, T::kOpening, true);
  CHECK_STATES(f, kEstablished, kSynSent);
  CHECK(f.resp().seqlo == kR + 1);
  CHECK(f.resp().seqhi == kR + 1 + kWo);
  CHECK(f.resp().max_win == kWr);
  CHECK(f.orig().seqhi == kS + 1 + kWr);
  CHECK(tcp_dump_state(f.c) == kEstablished);

  // ACK: establishes the responder.
  CHECK_UPDATE(f.o(seg(kAck, kS + 1, kR + 1).win(kWo)), V::kValid, T::kEstablished, true);
  CHECK_STATES(f, kEstablished, kEstablished);
  CHECK(f.orig().seqlo == kS);  // a bare ACK uses no sequence space
  CHECK(f.resp().seqhi == kR + 1 + kWo);
}

TEST_CASE("tcp: data both ways moves seqlo and the peer's seqhi") {
  Flow f = established();
  CHECK_UPDATE(f.o(seg(kPshAck, kS + 1, kR + 1).len(100)), V::kValid, T::kEstablished, true);
  CHECK(f.orig().seqlo == kS + 101);
  CHECK_UPDATE(f.r(seg(kPshAck, kR + 1, kS + 101).win(kWr).len(200)), V::kValid, T::kEstablished,
               true);
  CHECK(f.resp().seqlo == kR + 201);
  CHECK(f.orig().seqhi == kS + 101 + kWr);  // ack + window
  CHECK_UPDATE(f.o(seg(kAck, kS + 101, kR + 201).win(kWo)), V::kValid, T::kEstablished, true);
  CHECK(f.resp().seqhi == kR + 201 + kWo);
  // A retransmission of old data stays valid and moves nothing back.
  CHECK_UPDATE(f.o(seg(kPshAck, kS + 1, kR + 201).len(100)), V::kValid, T::kEstablished, true);
  CHECK(f.orig().seqlo == kS + 101);
  CHECK(f.orig().max_win == kWo);
  // A bigger window is remembered.
  CHECK_UPDATE(f.r(seg(kAck, kR + 201, kS + 101).win(65535)), V::kValid, T::kEstablished, true);
  CHECK(f.resp().max_win == 65535);
  CHECK_STATES(f, kEstablished, kEstablished);
}

TEST_CASE("tcp: window and ack edges on an established connection") {
  // After established(): orig.seqlo = kS, orig.seqhi = kS + 1 + kWr, resp.seqlo = kR + 1,
  // resp.max_win = kWr; sws = dws = 0.
  const uint32_t hi = kS + 1 + kWr;
  struct Row {
    const char* name;
    Seg s;
    TcpVerdict expected;
  };
  const Row rows[] = {
      {"last byte at seqhi", seg(kPshAck, hi - 100, kR + 1).len(100), V::kValid},
      {"last byte one past seqhi", seg(kPshAck, hi - 99, kR + 1).len(100), V::kInvalid},
      {"FIN taking the seqhi octet", seg(kFinAck, hi - 100, kR + 1).len(99), V::kValid},
      {"FIN one past seqhi", seg(kFinAck, hi - 100, kR + 1).len(100), V::kInvalid},
      {"whole segment beyond seqhi", seg(kPshAck, hi + 1000, kR + 1).len(10), V::kInvalid},
      {"one window back", seg(kPshAck, kS - kWr, kR + 1).len(10), V::kValid},
      {"one window and a byte back", seg(kPshAck, kS - kWr - 1, kR + 1).len(10), V::kInvalid},
      {"empty ACK with any seq", seg(kAck, kS + 0x40000000, kR + 1), V::kValid},
      {"ack = what was sent", seg(kAck, kS + 1, kR + 1), V::kValid},
      {"ack a full MAXACKWINDOW ahead", seg(kAck, kS + 1, kR + 1 + kMaxAck), V::kValid},
      {"ack beyond what was sent + MAXACKWINDOW", seg(kAck, kS + 1, kR + 2 + kMaxAck), V::kInvalid},
      {"ack a MAXACKWINDOW behind", seg(kAck, kS + 1, kR + 1 - kMaxAck), V::kValid},
      {"ack more than a MAXACKWINDOW behind", seg(kAck, kS + 1, kR - kMaxAck), V::kInvalid},
      {"no ACK flag: the ack field is ignored", seg(kRst, kS, kR + 10'000'000), V::kValid},
  };
  for (const Row& r : rows) {
    INFO(r.name);
    Flow f = established();
    const TcpConn before = f.c;
    const TcpUpdate u = f.o(r.s);
    CHECK(u.verdict == r.expected);
    if (r.expected == V::kInvalid) {
      CHECK(f.c == before);
      CHECK_FALSE(u.refresh);
    } else {
      CHECK(u.refresh);
    }
  }
}

TEST_CASE("tcp: the originator's first window bounds the responder's first data") {
  // resp.seqhi = kR + 1 + kWo after the handshake.
  Flow f = established();
  CHECK(f.r(seg(kPshAck, kR + 1, kS + 1).len(kWo)).verdict == V::kValid);
  Flow g = established();
  CHECK(g.r(seg(kPshAck, kR + 1, kS + 1).len(kWo + 1)).verdict == V::kInvalid);
}

// ---- window scaling --------------------------------------------------------------------

TEST_CASE("tcp: window scaling negotiated when both SYNs carry it") {
  Flow f;
  f.open(seg(kSyn, kS).win(kWo).ws(7));
  CHECK(f.orig().wscale_ok);
  CHECK(f.orig().wscale == 7);
  CHECK(f.orig().max_win == 502);  // ceil(64240 / 128)
  CHECK(f.orig().seqhi == kS + 2);

  CHECK_UPDATE(f.r(seg(kSynAck, kR, kS + 1).win(kWr).ws(8)), V::kValid, T::kOpening, true);
  CHECK(f.resp().wscale_ok);
  CHECK(f.resp().wscale == 8);
  CHECK(f.resp().max_win == 255);                 // ceil(65160 / 256)
  CHECK(f.resp().seqhi == kR + 1 + (502u << 7));  // orig's window, scaled
  CHECK(f.orig().seqhi == kS + 1 + (255u << 8));  // resp's window, descaled and rescaled
  CHECK_STATES(f, kEstablished, kSynSent);

  CHECK_UPDATE(f.o(seg(kAck, kS + 1, kR + 1).win(502)), V::kValid, T::kEstablished, true);
  CHECK_STATES(f, kEstablished, kEstablished);

  // The originator opens its window to 1000 << 7 = 128000 bytes.
  CHECK_UPDATE(f.o(seg(kAck, kS + 1, kR + 1).win(1000)), V::kValid, T::kEstablished, true);
  CHECK(f.resp().seqhi == kR + 1 + 128000);
  CHECK(f.orig().max_win == 1000);
  CHECK(f.r(seg(kPshAck, kR + 1, kS + 1).len(128000)).verdict == V::kValid);
  CHECK(f.r(seg(kPshAck, kR + 128001, kS + 1).len(1)).verdict == V::kInvalid);

  // Without scaling the same window is only 1000 bytes (seqhi keeps the first window).
  Flow g = established();
  CHECK(g.o(seg(kAck, kS + 1, kR + 1).win(1000)).verdict == V::kValid);
  CHECK(g.resp().seqhi == kR + 1 + kWo);
  CHECK(g.r(seg(kPshAck, kR + 1, kS + 1).len(128000)).verdict == V::kInvalid);
}

TEST_CASE("tcp: a scaled ack may lag more than MAXACKWINDOW") {
  // ackskew <= MAXACKWINDOW << sws: with sws = 7 an ack far behind is still fine.
  Flow f;
  f.open(seg(kSyn, kS).win(kWo).ws(7));
  f.r(seg(kSynAck, kR, kS + 1).win(kWr).ws(8));
  f.o(seg(kAck, kS + 1, kR + 1).win(502));
  CHECK(f.r(seg(kPshAck, kR + 1, kS + 1).win(255).len(1'000'000)).verdict == V::kInvalid);
  // resp acks 2 MAXACKWINDOWs behind what orig sent (orig.seqlo = kS):
  // ackskew = kS - (kS - 2 * kMaxAck) = 2 * kMaxAck <= kMaxAck << 8.
  CHECK(f.r(seg(kAck, kR + 1, kS - 2 * kMaxAck).win(255)).verdict == V::kValid);
  Flow g = established();
  CHECK(g.r(seg(kAck, kR + 1, kS - 2 * kMaxAck)).verdict == V::kInvalid);
}

TEST_CASE("tcp: window scaling off when only the SYN carries it") {
  Flow f;
  f.open(seg(kSyn, kS).win(kWo).ws(7));
  CHECK(f.orig().max_win == 502);
  CHECK_UPDATE(f.r(seg(kSynAck, kR, kS + 1).win(kWr)), V::kValid, T::kOpening, true);
  // The originator's window is scaled back up (502 << 7) and its scale forgotten.
  CHECK(f.orig().max_win == 64256);
  CHECK_FALSE(f.orig().wscale_ok);
  CHECK(f.orig().wscale == 0);
  CHECK_FALSE(f.resp().wscale_ok);
  CHECK(f.resp().max_win == kWr);
  CHECK(f.resp().seqhi == kR + 1 + 64256);
  CHECK(f.orig().seqhi == kS + 1 + kWr);
  f.o(seg(kAck, kS + 1, kR + 1).win(1000));
  CHECK_STATES(f, kEstablished, kEstablished);
  // A window of 1000 now means 1000 bytes: resp.seqhi stays at its first value.
  CHECK(f.resp().seqhi == kR + 1 + 64256);
  CHECK(f.r(seg(kPshAck, kR + 1, kS + 1).len(64256)).verdict == V::kValid);
  CHECK(f.r(seg(kPshAck, kR + 1, kS + 1).len(64257)).verdict == V::kInvalid);
}

TEST_CASE("tcp: window scaling off when only the SYN-ACK carries it") {
  Flow f;
  f.open(seg(kSyn, kS).win(kWo));
  CHECK_UPDATE(f.r(seg(kSynAck, kR, kS + 1).win(kWr).ws(8)), V::kValid, T::kOpening, true);
  CHECK_FALSE(f.resp().wscale_ok);
  CHECK(f.resp().wscale == 0);
  CHECK(f.resp().max_win == kWr);  // not descaled
  CHECK(f.orig().seqhi == kS + 1 + kWr);
}

TEST_CASE("tcp: a window-scale option above 14 counts as 14") {
  const auto p = tcp_bytes(kSyn, kS, 0, kWo, {3, 3, 200});
  TcpSegment s{};
  REQUIRE(tcp_parse(p.data(), static_cast<uint32_t>(p.size()), s));
  CHECK(s.wscale == 14);
  Flow f;
  f.open(s);
  CHECK(f.orig().wscale == 14);
  CHECK(f.orig().max_win == 4);  // ceil(64240 / 16384)
}

// ---- retransmitted SYNs ----------------------------------------------------------------

TEST_CASE("tcp: SYN retransmission keeps the connection new") {
  Flow f;
  f.open(seg(kSyn, kS).win(kWo));
  const TcpConn before = f.c;
  CHECK_UPDATE(f.o(seg(kSyn, kS).win(kWo)), V::kValidNew, T::kFirstPacket, true);
  CHECK(f.c == before);
  // Even with another sequence number: OVS neither checks nor learns it.
  CHECK_UPDATE(f.o(seg(kSyn, kS + 12345).win(1)), V::kValidNew, T::kFirstPacket, true);
  CHECK(f.c == before);
  // The handshake then completes from the first SYN.
  CHECK(f.r(seg(kSynAck, kR, kS + 1).win(kWr)).verdict == V::kValid);
  CHECK(f.o(seg(kAck, kS + 1, kR + 1)).verdict == V::kValid);
  CHECK_STATES(f, kEstablished, kEstablished);
}

TEST_CASE("tcp: a SYN from the responder before it answered is new (simultaneous open)") {
  Flow f;
  f.open(seg(kSyn, kS).win(kWo));
  CHECK_UPDATE(f.r(seg(kSyn, kR).win(kWr)), V::kValidNew, T::kFirstPacket, true);
  CHECK_STATES(f, kSynSent, kSynSent);
  CHECK(f.resp().seqlo == 0);  // not learned from a bare SYN
  CHECK(f.resp().seqhi == 1);
}

TEST_CASE("tcp: SYN and SYN-ACK retransmitted after the SYN-ACK are plain valid") {
  Flow f;
  f.open(seg(kSyn, kS).win(kWo));
  f.r(seg(kSynAck, kR, kS + 1).win(kWr));
  REQUIRE(f.os() == kEstablished);
  // The originator is past SYN_SENT: its SYN goes through the window check.
  CHECK_UPDATE(f.o(seg(kSyn, kS).win(kWo)), V::kValid, T::kOpening, true);
  CHECK(f.orig().seqlo == kS + 1);
  CHECK_UPDATE(f.r(seg(kSynAck, kR, kS + 1).win(kWr)), V::kValid, T::kOpening, true);
  CHECK_STATES(f, kEstablished, kSynSent);
  // A SYN-ACK with a different ISN far away is out of window.
  CHECK_UPDATE(f.r(seg(kSynAck, kR + 10'000'000, kS + 1).win(kWr)), V::kInvalid, T::kOpening,
               false);
}

TEST_CASE("tcp: a SYN-ACK with a wild ack is invalid but still initialises the responder") {
  // OVS/pf quirk: the first segment of an end is learned before the window check.
  Flow f;
  f.open(seg(kSyn, kS).win(kWo));
  // An ACK from the originator before any answer passes on the loose path (ackskew fails,
  // the responder is CLOSED) and sets resp.seqhi = ack + window.
  CHECK_UPDATE(f.o(seg(kAck, kS + 1, 3'000'000)), V::kValid, T::kOpening, false);
  CHECK(f.resp().seqhi == 3'000'000u + kWo);
  // The SYN-ACK does not reach that seqhi, so its ack is checked, and it is too far ahead.
  CHECK_UPDATE(f.r(seg(kSynAck, 1000, kS + 100'000).win(kWr)), V::kInvalid, T::kOpening, false);
  CHECK_STATES(f, kSynSent, kSynSent);
  CHECK(f.resp().seqlo == 1000);
  CHECK(f.resp().max_win == kWr);
  CHECK(f.resp().seqhi == 3'000'000u + kWo);
}

// ---- resets ----------------------------------------------------------------------------

TEST_CASE("tcp: RST needs an exact sequence number") {
  // orig.seqlo = kS + 101 after 100 bytes of data.
  struct Row {
    const char* name;
    Seg s;
    bool reply;
    TcpVerdict expected;
  };
  const Row rows[] = {
      {"RST|ACK at seqlo", seg(kRstAck, kS + 101, kR + 1), false, V::kValid},
      {"RST|ACK at seqlo + 1", seg(kRstAck, kS + 102, kR + 1), false, V::kValid},
      {"RST|ACK at seqlo - 1", seg(kRstAck, kS + 100, kR + 1), false, V::kValid},
      {"RST at seqlo, no ACK", seg(kRst, kS + 101), false, V::kValid},
      {"RST|ACK with ack 0", seg(kRstAck, kS + 101, 0), false, V::kValid},
      {"RST|ACK in window, not exact", seg(kRstAck, kS + 103, kR + 1), false, V::kInvalid},
      {"RST|ACK in window, behind", seg(kRstAck, kS + 50, kR + 1), false, V::kInvalid},
      {"RST|ACK out of window", seg(kRstAck, kS + 1'000'000, kR + 1), false, V::kInvalid},
      {"RST|ACK exact, wild ack", seg(kRstAck, kS + 101, kR + 1'000'000), false, V::kInvalid},
      {"reply RST at seqlo", seg(kRst, kR + 1), true, V::kValid},
      {"reply RST in window", seg(kRst, kR + 500), true, V::kInvalid},
  };
  for (const Row& r : rows) {
    INFO(r.name);
    Flow f = established();
    REQUIRE(f.o(seg(kPshAck, kS + 1, kR + 1).len(100)).verdict == V::kValid);
    const TcpConn before = f.c;
    const TcpUpdate u = r.reply ? f.r(r.s) : f.o(r.s);
    CHECK(u.verdict == r.expected);
    if (r.expected == V::kValid) {
      CHECK(u.timeout == T::kClosed);
      CHECK(u.refresh);
      CHECK_STATES(f, kTimeWait, kTimeWait);
      CHECK(tcp_dump_state(f.c) == kTimeWait);
    } else {
      CHECK(u.timeout == T::kEstablished);
      CHECK_FALSE(u.refresh);
      CHECK(f.c == before);
    }
  }
}

TEST_CASE("tcp: a refused connection (RST|ACK answer) closes and reopens") {
  Flow f;
  f.open(seg(kSyn, kS).win(kWo));
  CHECK_UPDATE(f.r(seg(kRstAck, 0, kS + 1).win(0)), V::kValid, T::kClosed, true);
  CHECK_STATES(f, kTimeWait, kTimeWait);
  CHECK_UPDATE(f.o(seg(kSyn, kS + 7).win(kWo)), V::kReopen, T::kOpening, false);
  CHECK_STATES(f, kClosed, kClosed);
}

// ---- closing ---------------------------------------------------------------------------

TEST_CASE("tcp: FIN close, originator first") {
  Flow f = established();
  CHECK_UPDATE(f.o(seg(kFinAck, kS + 1, kR + 1)), V::kValid, T::kClosing, true);
  CHECK_STATES(f, kClosing, kEstablished);
  CHECK(f.orig().seqlo == kS + 2);
  CHECK_UPDATE(f.r(seg(kAck, kR + 1, kS + 2).win(kWr)), V::kValid, T::kClosing, true);
  CHECK_STATES(f, kFinWait2, kEstablished);
  // Half-closed: the responder still sends data.
  CHECK_UPDATE(f.r(seg(kPshAck, kR + 1, kS + 2).win(kWr).len(10)), V::kValid, T::kClosing, true);
  CHECK_UPDATE(f.r(seg(kFinAck, kR + 11, kS + 2).win(kWr)), V::kValid, T::kFinWait, true);
  CHECK_STATES(f, kFinWait2, kClosing);
  CHECK_UPDATE(f.o(seg(kAck, kS + 2, kR + 12)), V::kValid, T::kClosed, true);
  CHECK_STATES(f, kFinWait2, kFinWait2);
  CHECK(tcp_dump_state(f.c) == kTimeWait);
  // A retransmitted last FIN is still in window.
  CHECK_UPDATE(f.r(seg(kFinAck, kR + 11, kS + 2).win(kWr)), V::kValid, T::kClosed, true);
  CHECK_STATES(f, kFinWait2, kFinWait2);
}

TEST_CASE("tcp: FIN close, responder first") {
  Flow f = established();
  CHECK_UPDATE(f.r(seg(kFinAck, kR + 1, kS + 1).win(kWr)), V::kValid, T::kClosing, true);
  CHECK_STATES(f, kEstablished, kClosing);
  CHECK_UPDATE(f.o(seg(kAck, kS + 1, kR + 2)), V::kValid, T::kClosing, true);
  CHECK_STATES(f, kEstablished, kFinWait2);
  CHECK_UPDATE(f.o(seg(kFinAck, kS + 1, kR + 2)), V::kValid, T::kFinWait, true);
  CHECK_STATES(f, kClosing, kFinWait2);
  CHECK_UPDATE(f.r(seg(kAck, kR + 2, kS + 2).win(kWr)), V::kValid, T::kClosed, true);
  CHECK_STATES(f, kFinWait2, kFinWait2);
}

TEST_CASE("tcp: simultaneous close") {
  Flow f = established();
  CHECK_UPDATE(f.o(seg(kFinAck, kS + 1, kR + 1)), V::kValid, T::kClosing, true);
  CHECK_STATES(f, kClosing, kEstablished);
  // The responder's FIN acks the originator's FIN too.
  CHECK_UPDATE(f.r(seg(kFinAck, kR + 1, kS + 2).win(kWr)), V::kValid, T::kFinWait, true);
  CHECK_STATES(f, kFinWait2, kClosing);
  CHECK_UPDATE(f.o(seg(kAck, kS + 2, kR + 2)), V::kValid, T::kClosed, true);
  CHECK_STATES(f, kFinWait2, kFinWait2);
}

TEST_CASE("tcp: FIN without ACK is invalid even on an open connection") {
  Flow f = established();
  CHECK_UPDATE(f.o(seg(kFin, kS + 1)), V::kInvalid, T::kEstablished, false);
  CHECK_STATES(f, kEstablished, kEstablished);
}

// ---- reopening -------------------------------------------------------------------------

Flow closed_flow() {
  Flow f = established();
  f.o(seg(kFinAck, kS + 1, kR + 1));
  f.r(seg(kFinAck, kR + 1, kS + 2).win(kWr));
  f.o(seg(kAck, kS + 2, kR + 2));
  REQUIRE(f.os() == kFinWait2);
  REQUIRE(f.rs() == kFinWait2);
  return f;
}

TEST_CASE("tcp: a SYN after both ends closed reopens, in either direction") {
  {
    Flow f = closed_flow();
    CHECK_UPDATE(f.o(seg(kSyn, kS + 100'000).win(kWo)), V::kReopen, T::kOpening, false);
    CHECK_STATES(f, kClosed, kClosed);
    // The caller then starts a new connection from the same segment.
    Flow g;
    g.open(seg(kSyn, kS + 100'000).win(kWo));
    CHECK_STATES(g, kSynSent, kClosed);
  }
  {
    Flow f = closed_flow();
    CHECK_UPDATE(f.r(seg(kSyn, kR + 100'000).win(kWr)), V::kReopen, T::kOpening, false);
    CHECK_STATES(f, kClosed, kClosed);
  }
  {
    // Reset connections (TIME_WAIT) reopen too.
    Flow f = established();
    f.o(seg(kRstAck, kS, kR + 1));
    REQUIRE(f.os() == kTimeWait);
    CHECK(f.o(seg(kSyn, kS + 5).win(kWo)).verdict == V::kReopen);
  }
}

TEST_CASE("tcp: no reopen while one end is open, nor by SYN-ACK") {
  {
    // Only the originator's FIN was acked: a new SYN is out of window and invalid.
    Flow f = established();
    f.o(seg(kFinAck, kS + 1, kR + 1));
    f.r(seg(kAck, kR + 1, kS + 2).win(kWr));
    REQUIRE(f.os() == kFinWait2);
    REQUIRE(f.rs() == kEstablished);
    const TcpConn before = f.c;
    CHECK_UPDATE(f.o(seg(kSyn, kS + 10'000'000).win(kWo)), V::kInvalid, T::kClosing, false);
    CHECK(f.c == before);
  }
  {
    Flow f = closed_flow();
    CHECK(f.o(seg(kSynAck, kS + 10'000'000, kR + 2)).verdict == V::kInvalid);
    CHECK_STATES(f, kFinWait2, kFinWait2);
  }
}

TEST_CASE("tcp: stray segments after a close pass on the loose path without refresh") {
  Flow f = closed_flow();
  // orig.seqlo = kS + 2, orig.seqhi = kS + 2 + kWr. 1000 bytes past seqhi: in window of the
  // loose path (seqhi + MAXACKWINDOW), no timer refresh.
  CHECK_UPDATE(f.o(seg(kFinAck, kS + 2 + kWr, kR + 2).len(1000)), V::kValid, T::kClosed, false);
  CHECK(f.orig().seqlo == kS + 2 + kWr + 1001);
  // Beyond seqhi + MAXACKWINDOW: invalid.
  CHECK_UPDATE(f.o(seg(kPshAck, kS + 2 + kWr + 1001 + kMaxAck, kR + 2).len(1)), V::kInvalid,
               T::kClosed, false);
}

// ---- picked up mid-stream --------------------------------------------------------------

TEST_CASE("tcp: a connection picked up mid-stream, window scale unknown") {
  constexpr uint32_t kA = 7'000'000;
  Flow f;
  f.open(seg(kPshAck, kS, kA).win(1000).len(100));
  CHECK(f.orig().liberal);
  CHECK(f.resp().liberal);
  CHECK_FALSE(f.orig().wscale_ok);
  CHECK(f.orig().seqlo == kS);
  CHECK(f.orig().seqhi == kS + 101);
  CHECK(f.orig().max_win == 1000);
  CHECK_STATES(f, kSynSent, kClosed);

  // More from the originator before the responder spoke: loose path, no refresh.
  CHECK_UPDATE(f.o(seg(kPshAck, kS + 100, kA).win(1000).len(10)), V::kValid, T::kOpening, false);
  CHECK(f.orig().seqlo == kS + 110);
  CHECK(f.resp().seqhi == kA + (1000u << 14));  // both ends assume a scale of 14
  CHECK_STATES(f, kSynSent, kClosed);

  // The responder's first segment: learned, acks the originator.
  CHECK_UPDATE(f.r(seg(kPshAck, kA, kS + 110).win(2000).len(50)), V::kValid, T::kOpening, true);
  CHECK_STATES(f, kEstablished, kSynSent);
  CHECK(f.resp().seqlo == kA + 50);
  CHECK(f.orig().seqhi == kS + 110 + (2000u << 14));

  CHECK_UPDATE(f.o(seg(kAck, kS + 110, kA + 50).win(1000)), V::kValid, T::kEstablished, true);
  CHECK_STATES(f, kEstablished, kEstablished);
  // Scale 14 in both directions: a 1000 window covers 16 MB.
  CHECK(f.r(seg(kPshAck, kA + 50, kS + 110).win(2000).len(10'000'000)).verdict == V::kValid);
}

TEST_CASE("tcp: picking up by RST or FIN|ACK") {
  Flow f;
  f.open(seg(kRst, kS));
  CHECK_STATES(f, kSynSent, kClosed);
  CHECK(f.orig().seqhi == kS + 1);
  Flow g;
  g.open(seg(kFinAck, kS, kR).len(5));
  CHECK(g.orig().seqhi == kS + 7);  // seq + len + 1, + 1 for the FIN
}

// ---- the sequence check switch ---------------------------------------------------------

TEST_CASE("tcp: with the sequence check off everything in a known state is valid") {
  Flow f = established();
  const TcpUpdate u = tcp_update(f.c, seg(kPshAck, kS + 100'000'000, kR + 1).len(10), false,
                                 /*seq_check=*/false);
  CHECK_UPDATE(u, V::kValid, T::kEstablished, true);
  CHECK(f.orig().seqlo == kS + 100'000'010);
  // Flags are still checked, and a bare SYN still reopens a closed connection.
  CHECK(tcp_update(f.c, seg(kFin, kS), false, false).verdict == V::kInvalid);
  Flow g = closed_flow();
  CHECK(tcp_update(g.c, seg(kSyn, kS), false, false).verdict == V::kReopen);
}

// ---- sequence-number wraparound --------------------------------------------------------

TEST_CASE("tcp: sequence numbers wrap around 2^32") {
  const uint32_t s = 0xffffff00u;
  const uint32_t r = 0xfffffff0u;
  Flow f = established(s, r);
  // orig.seqhi = s + 1 + kWr wraps to 0xfd89.
  CHECK(f.orig().seqhi == 0xfd89u);
  CHECK_UPDATE(f.o(seg(kPshAck, s + 1, r + 1).len(0x200)), V::kValid, T::kEstablished, true);
  CHECK(f.orig().seqlo == 0x101u);
  CHECK_UPDATE(f.r(seg(kAck, r + 1, 0x101).win(kWr)), V::kValid, T::kEstablished, true);
  CHECK(f.orig().seqhi == 0x101u + kWr);
  // A retransmission from before the wrap (lower bound seqlo - kWr is below zero too).
  CHECK(f.o(seg(kPshAck, s + 1, r + 1).len(0x100)).verdict == V::kValid);
  CHECK(f.orig().seqlo == 0x101u);
  CHECK(f.o(seg(kPshAck, 0x101u - kWr - 1, r + 1).len(0x10)).verdict == V::kInvalid);
  const uint32_t hi = 0x101u + kWr;
  CHECK(f.o(seg(kPshAck, hi - 10, r + 1).len(10)).verdict == V::kValid);
  CHECK(f.o(seg(kPshAck, hi - 9, r + 1).len(10)).verdict == V::kInvalid);
  // The responder's data crosses zero.
  CHECK(f.r(seg(kPshAck, r + 1, hi).win(kWr).len(0x100)).verdict == V::kValid);
  CHECK(f.resp().seqlo == 0xf1u);
  // A close across the wrap.
  CHECK(f.o(seg(kFinAck, hi, 0xf1)).verdict == V::kValid);
  CHECK(f.r(seg(kFinAck, 0xf1, hi + 1).win(kWr)).verdict == V::kValid);
  CHECK_UPDATE(f.o(seg(kAck, hi + 1, 0xf2)), V::kValid, T::kClosed, true);
  CHECK_STATES(f, kFinWait2, kFinWait2);
}

TEST_CASE("tcp: a SYN at 2^32 - 1") {
  Flow f;
  f.open(seg(kSyn, 0xffffffffu).win(kWo));
  CHECK(f.orig().seqhi == 1u);
  CHECK_UPDATE(f.r(seg(kSynAck, kR, 0).win(kWr)), V::kValid, T::kOpening, true);
  CHECK_UPDATE(f.o(seg(kAck, 0, kR + 1)), V::kValid, T::kEstablished, true);
  CHECK(f.o(seg(kPshAck, 0, kR + 1).len(100)).verdict == V::kValid);
  CHECK(f.orig().seqlo == 100u);
}

// ---- tcp_parse -------------------------------------------------------------------------

TEST_CASE("tcp: parse reads the fields in host order") {
  auto p = tcp_bytes(kPshAck, 0x01020304, 0xa0b0c0d0, 0x1234, {}, 7);
  TcpSegment s{};
  REQUIRE(tcp_parse(p.data(), static_cast<uint32_t>(p.size()), s));
  CHECK(s.seq == 0x01020304u);
  CHECK(s.ack == 0xa0b0c0d0u);
  CHECK(s.win == 0x1234);
  CHECK(s.flags == kPshAck);
  CHECK(s.payload_len == 7);
  CHECK(s.wscale == kNoWscale);
  CHECK_FALSE(s.options_bad);
  // The reserved bits and NS are part of flags; the data offset is not.
  p[12] = 0x5f;
  REQUIRE(tcp_parse(p.data(), static_cast<uint32_t>(p.size()), s));
  CHECK(s.flags == (0x0f00 | kPshAck));
  // The payload is bounded by l4_len (the IP length), not by the buffer.
  REQUIRE(tcp_parse(p.data(), 22, s));
  CHECK(s.payload_len == 2);
}

TEST_CASE("tcp: parse rejects truncated headers and bad data offsets") {
  const auto p = tcp_bytes(kAck, 1, 2, 3, {}, 40);  // 60 bytes, data offset 5
  TcpSegment s{};
  for (uint32_t len = 0; len < 20; ++len) {
    INFO("l4_len " << len);
    CHECK_FALSE(tcp_parse(p.data(), len, s));
  }
  CHECK(tcp_parse(p.data(), 20, s));
  struct Row {
    uint8_t doff;
    uint32_t l4_len;
    bool ok;
  };
  const Row rows[] = {
      {0, 60, false}, {1, 60, false},  {4, 60, false}, {5, 20, true},  {6, 23, false},
      {6, 24, true},  {15, 59, false}, {15, 60, true}, {8, 31, false}, {8, 32, true},
  };
  for (const Row& r : rows) {
    INFO("doff " << int{r.doff} << " l4_len " << r.l4_len);
    auto q = p;
    q[12] = static_cast<uint8_t>(r.doff << 4);
    for (size_t i = 20; i < q.size(); ++i) q[i] = 1;  // NOPs
    CHECK(tcp_parse(q.data(), r.l4_len, s) == r.ok);
    if (r.ok) {
      CHECK(s.payload_len == r.l4_len - r.doff * 4u);
      CHECK_FALSE(s.options_bad);
    }
  }
}

TEST_CASE("tcp: parse options, window scale and every length error") {
  struct Row {
    const char* name;
    uint16_t flags;
    std::vector<uint8_t> opts;
    uint8_t wscale;
    bool bad;
  };
  const Row rows[] = {
      {"no options", kSyn, {}, kNoWscale, false},
      {"MSS, NOP, WS 7", kSyn, {2, 4, 5, 0xb4, 1, 3, 3, 7}, 7, false},
      {"Linux SYN: MSS SACKOK TS NOP WS",
       kSyn,
       {2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 9},
       9,
       false},
      {"WS 0", kSyn, {3, 3, 0}, 0, false},
      {"WS 14", kSyn, {3, 3, 14}, 14, false},
      {"WS 15 clamped", kSyn, {3, 3, 15}, 14, false},
      {"WS 255 clamped, not kNoWscale", kSyn, {3, 3, 255}, 14, false},
      {"two WS: the last wins", kSyn, {3, 3, 4, 3, 3, 6}, 6, false},
      {"WS on a SYN-ACK", kSynAck, {3, 3, 5}, 5, false},
      {"WS on a non-SYN is not reported", kAck, {3, 3, 5}, kNoWscale, false},
      {"WS after EOL is not read", kSyn, {0, 3, 3, 7}, kNoWscale, false},
      {"garbage after EOL is fine", kSyn, {1, 0, 0xff, 0xff}, kNoWscale, false},
      {"WS in the last 3 bytes", kSyn, {1, 3, 3, 5}, 5, false},
      {"unknown kind with length 2", kSyn, {30, 2, 3, 3, 6}, 6, false},
      {"timestamps on an ACK", kAck, {1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2}, kNoWscale, false},
      // Errors. The window scale is what OVS's lenient walk reads anyway.
      {"length 0", kSyn, {4, 0, 0, 0}, kNoWscale, true},
      {"length 1", kSyn, {4, 1, 0, 0}, kNoWscale, true},
      {"length 1, then WS read at +2", kSyn, {5, 1, 3, 3, 9}, 9, true},
      {"length past the header end", kSyn, {8, 10, 0, 0}, kNoWscale, true},
      {"length past the end by one", kSyn, {1, 1, 30, 3}, kNoWscale, true},
      {"length byte missing", kSyn, {1, 1, 1, 8}, kNoWscale, true},
      {"WS cut: only 2 bytes left", kSyn, {1, 1, 3, 3}, kNoWscale, true},
      {"MSS length 3", kSyn, {2, 3, 5, 0}, kNoWscale, true},
      {"MSS length 2", kSyn, {2, 2, 1, 0}, kNoWscale, true},
      {"MSS length 6", kSyn, {2, 6, 5, 0xb4, 0, 0}, kNoWscale, true},
      {"WS length 2: OVS reads the next byte as the shift", kSyn, {3, 2, 1, 1}, 1, true},
      {"WS length 4", kSyn, {3, 4, 7, 0}, 7, true},
      {"WS length 1", kSyn, {3, 1, 12, 0}, 12, true},
      {"WS length 0: OVS reads the value anyway", kSyn, {3, 0, 6, 0}, 6, true},
      {"bad option on a non-SYN", kAck, {2, 3, 5, 0}, kNoWscale, true},
  };
  for (const Row& r : rows) {
    INFO(r.name);
    const auto p = tcp_bytes(r.flags, 1, 2, 3, r.opts, 5);
    INFO(hex(p));
    TcpSegment s{};
    REQUIRE(tcp_parse(p.data(), static_cast<uint32_t>(p.size()), s));
    CHECK(int{s.wscale} == int{r.wscale});
    CHECK(s.options_bad == r.bad);
    CHECK(s.payload_len == 5);
  }
}

TEST_CASE("tcp: malformed options do not make a segment invalid (as OVS)") {
  // A SYN whose MSS option has a bad length, with a good WS 6 after it.
  const auto p = tcp_bytes(kSyn, kS, 0, kWo, {2, 3, 0, 1, 3, 3, 6});
  TcpSegment syn{};
  REQUIRE(tcp_parse(p.data(), static_cast<uint32_t>(p.size()), syn));
  REQUIRE(syn.options_bad);
  REQUIRE(syn.wscale == 6);
  CHECK(tcp_valid_new(syn));
  Flow f;
  f.open(syn);
  CHECK(f.orig().wscale_ok);
  CHECK(f.orig().wscale == 6);
  CHECK_UPDATE(f.r(seg(kSynAck, kR, kS + 1).win(kWr).ws(6).bad()), V::kValid, T::kOpening, true);
  CHECK(f.resp().wscale == 6);
  CHECK_UPDATE(f.o(seg(kAck, kS + 1, kR + 1).win(1000).bad()), V::kValid, T::kEstablished, true);
  CHECK_STATES(f, kEstablished, kEstablished);
}

TEST_CASE("tcp: parse round trip through the tracker") {
  // The whole handshake as bytes.
  const auto syn = tcp_bytes(kSyn, kS, 0, kWo, {2, 4, 5, 0xb4, 1, 3, 3, 7});
  const auto synack = tcp_bytes(kSynAck, kR, kS + 1, kWr, {2, 4, 5, 0xb4, 1, 3, 3, 7});
  const auto ack = tcp_bytes(kAck, kS + 1, kR + 1, 502);
  const auto data = tcp_bytes(kPshAck, kS + 1, kR + 1, 502, {}, 1000);
  TcpSegment s{};
  Flow f;
  REQUIRE(tcp_parse(syn.data(), static_cast<uint32_t>(syn.size()), s));
  f.open(s);
  REQUIRE(tcp_parse(synack.data(), static_cast<uint32_t>(synack.size()), s));
  CHECK(f.r(s).verdict == V::kValid);
  REQUIRE(tcp_parse(ack.data(), static_cast<uint32_t>(ack.size()), s));
  CHECK(f.o(s).verdict == V::kValid);
  REQUIRE(tcp_parse(data.data(), static_cast<uint32_t>(data.size()), s));
  CHECK(s.payload_len == 1000);
  CHECK_UPDATE(f.o(s), V::kValid, T::kEstablished, true);
  CHECK_STATES(f, kEstablished, kEstablished);
  CHECK(f.orig().seqlo == kS + 1001);
  CHECK(f.orig().wscale == 7);
  CHECK(f.resp().wscale == 7);
}
