// tcp.hpp — the TCP connection-tracking state machine of gldp's connection tracker.
//
// Purpose: decide, per TCP segment of a tracked connection, whether it is valid, which
// state each end moves to and which timeout class the connection gets next, with the
// behaviour of OVS userspace conntrack (lib/conntrack-tcp.c, itself pf's window tracking
// after Guido van Rooij): per-end sequence windows [seqlo - max_win, seqhi] with RFC 7323
// window scaling, an ack-skew bound, exact-sequence resets, and a "loose" path for
// half-known connections (shotgunned SYNs, connections picked up mid-stream, stray
// segments after a close). This file holds only the per-connection arithmetic; the table,
// the keys, NAT and the timers belong to the caller.
//
// States used. Of the eleven TcpState values OVS's tracker only ever sets CLOSED (not seen
// yet), SYN_SENT (this end has sent something), ESTABLISHED (this end's first segment was
// acked), CLOSING (this end sent a FIN), FIN_WAIT_2 (that FIN was acked) and TIME_WAIT (a
// reset was seen). A graceful close leaves both ends in FIN_WAIT_2; tcp_dump_state() gives
// the single state OVS's dump prints (FIN_WAIT_2 → TIME_WAIT, SYN_RECV → ESTABLISHED).
//
// What the caller does with a segment (as lib/conntrack.c does; the +trk bit is always set):
//   No connection found: if !tcp_valid_new(seg), ct_state = +inv. Otherwise ct_state = +new,
//     and only under commit a connection is created with tcp_new_conn() — the sender of this
//     segment becomes the originator, peer[0] — and armed with the kFirstPacket timeout.
//   Connection found: u = tcp_update(conn, seg, reply), then per u.verdict:
//     kValid     ct_state |= +est, ct_state &= ~+new, and +rpl when reply.
//     kValidNew  ct_state |= +new; no +est, and no +rpl even in the reply direction (OVS
//                sets nothing else). Only a bare SYN from an end still in SYN_SENT or
//                earlier (a retransmitted or shotgunned SYN) gets this.
//     kInvalid   ct_state = +inv and nothing else (the other bits are cleared, as OVS
//                does); the connection stays as it is and its timer is not touched.
//     kReopen    a bare SYN while both ends are in FIN_WAIT_2 or later: expire/delete the
//                old connection now, then handle the segment as "no connection found"
//                above (+new, a new connection under commit, whose originator is this
//                segment's sender, even when reply was true).
//   Then, when u.refresh, re-arm the connection's timer with u.timeout's seconds (the
//   caller's policy; kTcpDefaultTimeoutSec holds OVS's defaults). When !u.refresh the timer
//   keeps running from the last refresh: OVS does not refresh on the loose path (so that a
//   flood cannot keep a half-known connection alive), nor on kInvalid or kReopen.
//
// Timeout class of a valid in-window segment, from the state pair (tcp_timeout_class(),
// symmetric in the two ends), first match wins:
//   both ends >= FIN_WAIT_2                  kClosed       (OVS tcp_close,     30 s)
//   both ends >= CLOSING                     kFinWait      (OVS tcp_time_wait, 45 s)
//   either end < ESTABLISHED                 kOpening      (OVS tcp_syn_recv,  30 s)
//   either end >= CLOSING                    kClosing      (OVS tcp_fin_wait, 900 s)
//   otherwise (both ESTABLISHED)             kEstablished  (OVS tcp_established, 1 day)
// A new connection and a kValidNew SYN get kFirstPacket (OVS tcp_syn_sent, 30 s).
//
// Known OVS quirk kept on purpose: when the first segment of an end (normally the SYN-ACK)
// fails the window check, tcp_update() returns kInvalid but the end has already been
// initialised from it (state SYN_SENT, seqlo, possibly the window scale), exactly as OVS
// and pf do. Every other kInvalid leaves the connection unchanged.
//
// Malformed TCP options (TcpSegment::options_bad) are reported by tcp_parse() but, like OVS,
// the tracker neither rejects the segment nor the connection for them; the window-scale
// value is read with OVS's lenient option walk.
//
// Thread-safety: pure functions on caller-owned plain data; the caller serialises the
// updates of one TcpConn (OVS holds the connection's lock around its update).
// Complexity: O(1) per segment; tcp_parse() walks at most 40 option bytes. No allocation,
// exception, lock or log line.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

#include "flowtables/enum_names.hpp"
#include "flowtables/packet_parser.hpp"

namespace gl::ct {

using gl::flow::kTcpAck;
using gl::flow::kTcpCwr;
using gl::flow::kTcpEce;
using gl::flow::kTcpFin;
using gl::flow::kTcpNs;
using gl::flow::kTcpPsh;
using gl::flow::kTcpRst;
using gl::flow::kTcpSyn;
using gl::flow::kTcpUrg;

// TCP states of one end, numbered as OVS's CT_DPIF_TCPS_* (the dump shows their names).
enum class TcpState : uint8_t {
  kClosed,
  kListen,
  kSynSent,
  kSynRecv,
  kEstablished,
  kCloseWait,
  kFinWait1,
  kClosing,
  kLastAck,
  kFinWait2,
  kTimeWait,
  kCount
};

// The states as OVS prints them (its CT_DPIF_TCPS_* numbering is TcpState's, and the
// datapath API's api::CtEntry::tcp_state_* carry it): the one table gl-dpctl and glctld
// print from too.
inline constexpr flow::EnumName<TcpState> kTcpStateTable[] = {
    {TcpState::kClosed, "CLOSED"},           {TcpState::kListen, "LISTEN"},
    {TcpState::kSynSent, "SYN_SENT"},        {TcpState::kSynRecv, "SYN_RECV"},
    {TcpState::kEstablished, "ESTABLISHED"}, {TcpState::kCloseWait, "CLOSE_WAIT"},
    {TcpState::kFinWait1, "FIN_WAIT_1"},     {TcpState::kClosing, "CLOSING"},
    {TcpState::kLastAck, "LAST_ACK"},        {TcpState::kFinWait2, "FIN_WAIT_2"},
    {TcpState::kTimeWait, "TIME_WAIT"},
};
inline constexpr auto kTcpStateNames = flow::enum_names(kTcpStateTable);
static_assert(kTcpStateNames.size() == static_cast<size_t>(TcpState::kCount));
// kTcpStateNames' entry; "?" out of range.
inline std::string_view tcp_state_name(TcpState s) {
  const auto i = static_cast<size_t>(s);
  return i < kTcpStateNames.size() ? kTcpStateNames[i] : "?";
}

// Timeout classes (OVS's CT_TM_TCP_*); the caller maps a class to seconds.
enum class TcpTimeout : uint8_t {
  kFirstPacket,  // OVS policy attribute tcp_syn_sent
  kOpening,      // tcp_syn_recv
  kEstablished,  // tcp_established
  kClosing,      // tcp_fin_wait
  kFinWait,      // tcp_time_wait
  kClosed,       // tcp_close
  kCount
};

// OVS's default timeout policy (lib/conntrack-tp.c), seconds, indexed by TcpTimeout.
inline constexpr std::array<uint32_t, static_cast<size_t>(TcpTimeout::kCount)>
    kTcpDefaultTimeoutSec = {30, 30, 24 * 60 * 60, 15 * 60, 45, 30};

// "first_packet", "opening", "established", "closing", "fin_wait", "closed"; "?" otherwise.
std::string_view tcp_timeout_name(TcpTimeout t);

// Largest window-scale shift (RFC 7323); bigger option values are clamped to it.
inline constexpr uint8_t kTcpMaxWscale = 14;

// One end of a TCP connection (pf's tcp_peer). Plain data, 12 bytes.
struct TcpPeer {
  uint32_t seqlo;         // end of what this end has sent (its first segment's seq at first)
  uint32_t seqhi;         // highest sequence number this end may send: peer's ack + window;
                          // 1 = not known yet (the responder before its first segment)
  uint16_t max_win;       // largest window this end advertised, without its scale
  uint8_t wscale : 4;     // this end's window-scale shift (0..14)
  uint8_t wscale_ok : 1;  // this end's SYN carried the option, scaling not (yet) refused;
                          // OVS's dump flag WINDOW_SCALE
  uint8_t liberal : 1;    // picked up without a SYN: scale unknown, both ends assume 14;
                          // OVS's dump flag BE_LIBERAL
  TcpState state;

  bool operator==(const TcpPeer&) const = default;
};
static_assert(sizeof(TcpPeer) == 12);

// Both ends: [0] = the originator (orig direction), [1] = the responder.
struct TcpConn {
  TcpPeer peer[2];

  bool operator==(const TcpConn&) const = default;
};
static_assert(sizeof(TcpConn) <= 32);

// What the tracker reads from one segment (parsed by tcp_parse()).
struct TcpSegment {
  uint32_t seq, ack;     // host order
  uint16_t win;          // raw window field, host order
  uint16_t flags;        // host order, kTcpFin .. kTcpNs (the 12 low bits of the header word)
  uint32_t payload_len;  // TCP payload bytes (IP payload minus TCP header)
  uint8_t wscale;        // window-scale shift clamped to 14 (SYN only), else kNoWscale
  bool options_bad;      // malformed options (see tcp_parse())
};
inline constexpr uint8_t kNoWscale = 0xff;

// Parses a TCP header at l4 (l4_len bytes of IP payload, i.e. bounded by the IP length, not
// the frame). false when shorter than 20 bytes or the data offset is < 5 or beyond l4_len.
// flags = the low 12 bits of bytes 12..13 (reserved bits included, as OVS's TCP_FLAGS()).
// wscale: on a SYN, the value of the last window-scale option found by OVS's walk (stops at
// EOL or with fewer than 3 option bytes left, a length < 2 counts as 2, the value byte is
// read whatever the option's length says), clamped to 14; kNoWscale otherwise.
// options_bad (independent of wscale): an option other than EOL/NOP whose length byte is
// missing, is 0 or 1, or runs past the header end; an MSS option whose length is not 4 or a
// window-scale option whose length is not 3.
bool tcp_parse(const uint8_t* l4, uint32_t l4_len, TcpSegment& out);

// Invalid flag combinations (OVS's tcp_invalid_flags): SYN with RST or FIN; neither SYN,
// ACK nor RST (no flags); FIN, PSH or URG without ACK.
bool tcp_invalid_flags(uint16_t flags);

// Whether a first segment may create a connection (OVS's tcp_valid_new): any segment with
// valid flags except SYN+ACK. A bare ACK (or RST, FIN+ACK ...) is allowed: OVS picks up
// established connections mid-stream, with window scaling unknown on both ends.
bool tcp_valid_new(const TcpSegment& s);

// Initialises c from the first segment (orig direction; tcp_valid_new(s) must hold) and
// returns the timeout class to arm: kFirstPacket, as OVS.
TcpTimeout tcp_new_conn(TcpConn& c, const TcpSegment& s);

enum class TcpVerdict : uint8_t {
  kValid,     // ct_state +est (+rpl in the reply direction), -new
  kValidNew,  // a repeated bare SYN before the connection opened: ct_state +new
  kInvalid,   // ct_state = +inv only; the connection is kept (see the quirk above)
  kReopen,    // a bare SYN after both ends closed: delete the old connection, create anew
              // (both ends are set to CLOSED first, as OVS does)
};

struct TcpUpdate {
  TcpVerdict verdict;
  TcpTimeout timeout;  // the class to re-arm with when refresh; else informational only
                       // (the class of the state pair as it is now)
  bool refresh;        // re-arm the connection's timer with timeout
};

// Runs one segment through the state machine. reply: the segment travels responder ->
// originator. seq_check = false is OVS's "dpctl/ct-disable-tcp-seq-chk": every segment that
// gets past the flag check and the bare-SYN cases is handled as in window.
TcpUpdate tcp_update(TcpConn& c, const TcpSegment& s, bool reply, bool seq_check = true);

// The timeout class of a connection whose ends are in states a and b (table above).
TcpTimeout tcp_timeout_class(TcpState a, TcpState b);

// The single state OVS's non-verbose dump prints for c: the later of the two ends, with
// FIN_WAIT_2 shown as TIME_WAIT and SYN_RECV as ESTABLISHED.
TcpState tcp_dump_state(const TcpConn& c);

}  // namespace gl::ct
