// tcp.cpp — the TCP connection-tracking state machine (see tcp.hpp).
#include "dataplane/conntrack/tcp.hpp"

#include <algorithm>

#include "flowtables/bytes.hpp"

namespace gl::ct {

namespace {

constexpr uint32_t kTcpHeaderLen = 20;
constexpr uint8_t kOptEol = 0;
constexpr uint8_t kOptNop = 1;
constexpr uint8_t kOptMss = 2;
constexpr uint8_t kOptWscale = 3;

// How far an ack may lead or lag what the other end sent: one maximal unscaled window plus
// a 1500-byte allowance for reassembled fragments (pf's MAXACKWINDOW).
constexpr int32_t kMaxAckWindow = 0xffff + 1500;

// Sequence-number order modulo 2^32 (RFC 1982 style).
constexpr bool seq_lt(uint32_t a, uint32_t b) {
  return static_cast<int32_t>(a - b) < 0;
}
constexpr bool seq_gt(uint32_t a, uint32_t b) {
  return static_cast<int32_t>(a - b) > 0;
}
constexpr bool seq_geq(uint32_t a, uint32_t b) {
  return !seq_lt(a, b);
}

using flow::load_be16;
using flow::load_be32;

// The window-scale shift of a SYN's options as OVS reads it (see tcp_parse()).
uint8_t lenient_wscale(const uint8_t* opt, int32_t len) {
  uint8_t wscale = kNoWscale;
  while (len >= 3) {
    if (opt[0] == kOptEol) break;
    if (opt[0] == kOptNop) {
      ++opt;
      --len;
      continue;
    }
    if (opt[0] == kOptWscale) wscale = std::min(opt[2], kTcpMaxWscale);
    const int32_t optlen = std::max<int32_t>(opt[1], 2);
    opt += optlen;
    len -= optlen;
  }
  return wscale;
}

// Strict option check: true when the option list is malformed (see tcp_parse()).
bool options_malformed(const uint8_t* opt, uint32_t len) {
  uint32_t i = 0;
  while (i < len) {
    const uint8_t kind = opt[i];
    if (kind == kOptEol) return false;
    if (kind == kOptNop) {
      ++i;
      continue;
    }
    if (i + 1 >= len) return true;  // no room for the length byte
    const uint8_t optlen = opt[i + 1];
    if (optlen < 2 || optlen > len - i) return true;
    if (kind == kOptMss && optlen != 4) return true;
    if (kind == kOptWscale && optlen != 3) return true;
    i += optlen;
  }
  return false;
}

void set_wscale(TcpPeer& p, uint8_t wscale) {
  p.wscale_ok = wscale != kNoWscale;
  p.wscale = p.wscale_ok ? wscale : 0;
}

uint16_t descale(uint16_t win, uint8_t shift) {
  const uint32_t unit = uint32_t{1} << shift;
  return static_cast<uint16_t>((uint32_t{win} + unit - 1) / unit);
}

}  // namespace

std::string_view tcp_timeout_name(TcpTimeout t) {
  static constexpr std::array<std::string_view, static_cast<size_t>(TcpTimeout::kCount)> kNames = {
      "first_packet", "opening", "established", "closing", "fin_wait", "closed"};
  const auto i = static_cast<size_t>(t);
  return i < kNames.size() ? kNames[i] : "?";
}

bool tcp_parse(const uint8_t* l4, uint32_t l4_len, TcpSegment& out) {
  if (l4_len < kTcpHeaderLen) return false;
  const uint32_t hdr_len = (uint32_t{l4[12]} >> 4) * 4;
  if (hdr_len < kTcpHeaderLen || hdr_len > l4_len) return false;
  out.seq = load_be32(l4 + 4);
  out.ack = load_be32(l4 + 8);
  out.flags = load_be16(l4 + 12) & 0x0fff;
  out.win = load_be16(l4 + 14);
  out.payload_len = l4_len - hdr_len;
  const uint8_t* opt = l4 + kTcpHeaderLen;
  const uint32_t opt_len = hdr_len - kTcpHeaderLen;
  out.wscale =
      (out.flags & kTcpSyn) ? lenient_wscale(opt, static_cast<int32_t>(opt_len)) : kNoWscale;
  out.options_bad = options_malformed(opt, opt_len);
  return true;
}

bool tcp_invalid_flags(uint16_t flags) {
  if (flags & kTcpSyn) {
    if (flags & (kTcpRst | kTcpFin)) return true;
  } else if (!(flags & (kTcpAck | kTcpRst))) {
    return true;
  }
  if (!(flags & kTcpAck) && (flags & (kTcpFin | kTcpPsh | kTcpUrg))) return true;
  return false;
}

bool tcp_valid_new(const TcpSegment& s) {
  if (tcp_invalid_flags(s.flags)) return false;
  // A SYN-ACK would open a half-seen handshake; only a SYN or an established-looking
  // segment may create a connection.
  return (s.flags & (kTcpSyn | kTcpAck)) != (kTcpSyn | kTcpAck);
}

TcpTimeout tcp_new_conn(TcpConn& c, const TcpSegment& s) {
  c = TcpConn{};
  TcpPeer& src = c.peer[0];
  TcpPeer& dst = c.peer[1];
  src.seqlo = s.seq;
  src.seqhi = s.seq + s.payload_len + 1;
  if (s.flags & kTcpSyn) {
    ++src.seqhi;
    set_wscale(src, s.wscale);
  } else {
    src.liberal = 1;
    dst.liberal = 1;
  }
  src.max_win = std::max<uint16_t>(s.win, 1);
  if (src.wscale != 0) src.max_win = descale(src.max_win, src.wscale);
  if (s.flags & kTcpFin) ++src.seqhi;
  dst.seqhi = 1;
  dst.max_win = 1;
  src.state = TcpState::kSynSent;
  dst.state = TcpState::kClosed;
  return TcpTimeout::kFirstPacket;
}

TcpTimeout tcp_timeout_class(TcpState a, TcpState b) {
  using enum TcpState;
  if (a >= kFinWait2 && b >= kFinWait2) return TcpTimeout::kClosed;
  if (a >= kClosing && b >= kClosing) return TcpTimeout::kFinWait;
  if (a < kEstablished || b < kEstablished) return TcpTimeout::kOpening;
  if (a >= kClosing || b >= kClosing) return TcpTimeout::kClosing;
  return TcpTimeout::kEstablished;
}

TcpState tcp_dump_state(const TcpConn& c) {
  const TcpState s = std::max(c.peer[0].state, c.peer[1].state);
  if (s == TcpState::kFinWait2) return TcpState::kTimeWait;
  if (s == TcpState::kSynRecv) return TcpState::kEstablished;
  return s;
}

TcpUpdate tcp_update(TcpConn& c, const TcpSegment& s, bool reply, bool seq_check) {
  using enum TcpState;
  TcpPeer& src = c.peer[reply ? 1 : 0];  // sent this segment
  TcpPeer& dst = c.peer[reply ? 0 : 1];  // receives it
  const uint16_t flags = s.flags;
  const auto unchanged = [&](TcpVerdict v) {
    return TcpUpdate{v, tcp_timeout_class(src.state, dst.state), false};
  };

  if (tcp_invalid_flags(flags)) return unchanged(TcpVerdict::kInvalid);

  if ((flags & (kTcpSyn | kTcpAck)) == kTcpSyn) {
    if (src.state >= kFinWait2 && dst.state >= kFinWait2) {
      src.state = dst.state = kClosed;
      return unchanged(TcpVerdict::kReopen);
    }
    if (src.state <= kSynSent) {
      src.state = kSynSent;
      return {TcpVerdict::kValidNew, TcpTimeout::kFirstPacket, true};
    }
  }

  // Scale shifts apply to non-SYN segments only (a SYN's window is never scaled).
  uint8_t sws = 0;
  uint8_t dws = 0;
  if (!(flags & kTcpSyn)) {
    if (src.wscale_ok && dst.wscale_ok) {
      sws = src.wscale;
      dws = dst.wscale;
    } else if (src.liberal && dst.liberal) {
      sws = dws = kTcpMaxWscale;
    }
  }

  uint16_t win = s.win;
  uint32_t seq = s.seq;
  uint32_t ack = s.ack;
  uint32_t end = seq + s.payload_len + ((flags & kTcpSyn) ? 1 : 0) + ((flags & kTcpFin) ? 1 : 0);
  bool check_ackskew = true;

  if (src.state < kSynSent) {
    // This end's first segment (normally the SYN-ACK): learn its sequence space.
    if ((flags & kTcpSyn) && dst.wscale_ok) {
      set_wscale(src, s.wscale);
      if (src.wscale_ok) {
        sws = src.wscale;
        win = descale(win, sws);
        dws = dst.wscale;
      } else {
        // Scaling is off for the connection: the originator's window was kept descaled.
        dst.max_win = static_cast<uint16_t>(uint32_t{dst.max_win} << dst.wscale);
        dst.wscale = 0;
        dst.wscale_ok = 0;
        dst.liberal = 0;
      }
    }
    src.seqlo = seq;
    src.state = kSynSent;
    // seqhi may already be known (from the other end's acks); move it forward only.
    const uint32_t fwd = std::max<uint32_t>(uint32_t{dst.max_win} << dws, 1);
    if (src.seqhi == 1 || seq_geq(end + fwd, src.seqhi)) {
      src.seqhi = end + fwd;
      check_ackskew = false;  // just (re)learned: no reference for the ack yet
    }
    src.max_win = std::max(src.max_win, win);
  }

  if (!(flags & kTcpAck)) {
    ack = dst.seqlo;  // nothing acked: let the skew check pass
  } else if (ack == 0 && (flags & kTcpRst)) {
    ack = dst.seqlo;  // stacks that send RST+ACK with ack 0 after a SYN timeout
  }

  if (seq == end) {
    seq = end = src.seqlo;  // no sequence space used: any seq is acceptable
  }

  const int32_t ackskew = check_ackskew ? static_cast<int32_t>(dst.seqlo - ack) : 0;
  const uint32_t retrans_win = uint32_t{dst.max_win} << dws;
  const bool rst_exact =
      !(flags & kTcpRst) || s.seq == src.seqlo || s.seq == src.seqlo + 1 || s.seq + 1 == src.seqlo;
  const bool in_window = seq_geq(src.seqhi, end) &&                // ends inside dst's window
                         seq_geq(seq, src.seqlo - retrans_win) &&  // at most a window back
                         ackskew >= -kMaxAckWindow &&              // acks at most this ahead
                         ackskew <= (kMaxAckWindow << sws) &&      // and a window behind
                         rst_exact;

  const auto track = [&] {
    src.max_win = std::max(src.max_win, win);
    if (seq_gt(end, src.seqlo)) src.seqlo = end;
    const uint32_t scaled_win = uint32_t{win} << sws;
    if (seq_geq(ack + scaled_win, dst.seqhi)) dst.seqhi = ack + std::max<uint32_t>(scaled_win, 1);
  };

  if (in_window || !seq_check) {
    track();
    if ((flags & kTcpSyn) && src.state < kSynSent) src.state = kSynSent;
    if ((flags & kTcpFin) && src.state < kClosing) src.state = kClosing;
    if (flags & kTcpAck) {
      if (dst.state == kSynSent) {
        dst.state = kEstablished;
      } else if (dst.state == kClosing) {
        dst.state = kFinWait2;
      }
    }
    if (flags & kTcpRst) src.state = dst.state = kTimeWait;
    return {TcpVerdict::kValid, tcp_timeout_class(src.state, dst.state), true};
  }

  // Loose path: the other end has not spoken yet (shotgunned SYNs, a connection picked up
  // mid-stream) or an end is already closed (stray segments after a close). Accept within
  // one maximal window either way, track sequences, but do not refresh the timer and do not
  // let acks move the states forward.
  const bool loose = (dst.state < kSynSent || dst.state >= kFinWait2 || src.state >= kFinWait2) &&
                     seq_geq(src.seqhi + kMaxAckWindow, end) &&
                     seq_geq(seq, src.seqlo - kMaxAckWindow);
  if (!loose) return unchanged(TcpVerdict::kInvalid);
  track();
  if ((flags & kTcpFin) && src.state < kClosing) src.state = kClosing;
  if (flags & kTcpRst) src.state = dst.state = kTimeWait;
  return unchanged(TcpVerdict::kValid);
}

}  // namespace gl::ct
