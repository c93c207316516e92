// wire.hpp — the datapath API (dpapi) wire format.
//
// Purpose: the messages control processes (gl-dpctl, ovs-vswitchd's dpif-gl, glctld)
// exchange with gldp over a Unix SOCK_SEQPACKET socket. Every message is one datagram:
// a fixed MsgHeader followed by a fixed-layout, little-endian payload. Variable parts
// (actions, packets, batches) follow their fixed struct and are 8-byte padded. Every
// field is checked on decode (decode.hpp); nothing here trusts the peer.
//
// Vocabulary: flow keys and masks are gl::flow::FlowKey (one field per OVS datapath
// key attribute); actions are the Linux OVS datapath netlink encoding
// (<linux/openvswitch.h> OVS_ACTION_ATTR_*), so an OVS dpif provider maps 1:1.
//
// Conversation: a request carries a client-chosen xid; the reply has the same type
// with kFlagReply set, the same xid, and `error` = 0 or a positive errno; an error
// reply's payload is a NUL-terminated message naming what was wrong. Upcalls are sent
// unsolicited (xid 0, type kUpcall) to connections that subscribed.
//
// Thread-safety: plain data. Complexity: constant-size structs.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>

#include "flowtables/enum_names.hpp"
#include "flowtables/flow_key.hpp"

namespace gl::api {

static_assert(std::endian::native == std::endian::little, "dpapi is little-endian only");

inline constexpr uint32_t kMagic = 0x50444c47;  // "GLDP" in memory order
// 2: the flow key carries ct_orig_tuple (184 bytes); 3: PmdStats carries esp_handoffs.
inline constexpr uint16_t kVersion = 3;
// Largest datagram either side sends or accepts. Bigger is a protocol error.
inline constexpr uint32_t kMaxMessage = 64 * 1024;
inline constexpr uint32_t kMaxActions = 4096;  // bytes of encoded actions per flow
inline constexpr uint32_t kMaxPacket = 9216;   // bytes of packet in execute / upcall
inline constexpr uint32_t kMaxUserdata = 256;
inline constexpr size_t kNameLen = 32;      // port names, NUL-terminated
inline constexpr size_t kDevargsLen = 256;  // DPDK devargs, NUL-terminated
inline constexpr size_t kErrorLen = 128;    // per-entry error text in batch replies

enum class MsgType : uint16_t {
  kInfo = 1,
  kPortAdd = 2,
  kPortDel = 3,
  kPortList = 4,
  kPortGet = 5,
  kPortSet = 6,
  kFlowPut = 10,
  kFlowDel = 11,
  kFlowGet = 12,
  kFlowDump = 13,
  kFlowFlush = 14,
  kExecute = 20,
  kExecuteBatch = 21,
  kUpcallSubscribe = 30,
  kUpcall = 31,
  kUpcallBatch = 32,
  kStats = 40,
  kStatsClear = 41,
  kSetConfig = 50,
  kSaAdd = 60,
  kSaDel = 61,
  kSaDump = 62,
  kCtDump = 70,
  kCtFlush = 71,
  kCtGetConfig = 72,
  kCtSetMaxConns = 73,
  kCtSetTcpSeqCheck = 74,
  kCtSetLimits = 75,
  kCtDelLimits = 76,
  kCtGetLimits = 77,
  kCtStats = 78,
  kCtSetTimeoutPolicy = 79,
  kCtGetTimeoutPolicy = 80,
  kCtDelTimeoutPolicy = 81,
  kCtDumpTimeoutPolicies = 82,
  kIpfSetEnabled = 83,
  kIpfSetMinFrag = 84,
  kIpfSetMaxNfrags = 85,
  kIpfGetStatus = 86,
  kIpfDump = 87,
  kFwBegin = 90,
  kFwIpcache = 91,
  kFwPort = 92,
  kFwRules = 93,
  kFwCommit = 94,
  kFwClear = 95,
  kFwStatus = 96,
  kFwEvents = 97,
  kFwRuleStats = 98,
  kFwCtDump = 99,
  kFwCtFlush = 100,
  kFwTrace = 101,
  kFwQuarantine = 102,
  kFwHosts = 103,
};

std::string_view msg_type_name(MsgType t);

// An API error: an errno value and a message naming what was wrong.
struct Error {
  int code = 0;
  std::string message;
};

inline constexpr uint16_t kFlagReply = 0x1;

struct MsgHeader {
  uint32_t magic;
  uint16_t version;
  uint16_t type;      // MsgType
  uint32_t length;    // whole datagram, header included
  uint32_t xid;       // echoed in the reply
  int32_t error;      // replies: 0 or a positive errno
  uint16_t flags;     // kFlagReply
  uint16_t reserved;  // must be zero
};
static_assert(sizeof(MsgHeader) == 24);

// ---- info -------------------------------------------------------------------
struct InfoReply {
  char version[32];  // gldp version string
  uint32_t api_version;
  uint32_t n_pmds;
  uint32_t n_ports;
  uint32_t max_ports;
  uint64_t n_flows;
  uint64_t features;   // kFeature* bits
  char pmd_cores[64];  // e.g. "1" or "1,3"
  uint64_t boot_id;    // random per gldp start: a client notices a restarted gldp
};
inline constexpr uint64_t kFeatureRecirc = 1u << 0;
inline constexpr uint64_t kFeatureClone = 1u << 1;
inline constexpr uint64_t kFeatureSample = 1u << 2;
inline constexpr uint64_t kFeatureHash = 1u << 3;
inline constexpr uint64_t kFeatureSetMasked = 1u << 4;
inline constexpr uint64_t kFeatureUfid = 1u << 5;
inline constexpr uint64_t kFeatureEsp = 1u << 6;        // SA messages, esp_encrypt/esp_decrypt
inline constexpr uint64_t kFeatureConntrack = 1u << 7;  // ct() / ct_clear, the kCt* messages

// ---- ports ------------------------------------------------------------------
inline constexpr uint32_t kPortAny = 0xffffffffu;

struct PortAddRequest {
  char name[kNameLen];        // our name for the port (need not equal the DPDK name)
  char devargs[kDevargsLen];  // e.g. "net_af_packet0,iface=veth0"
  uint32_t port_no;           // requested datapath port number, or kPortAny
  uint16_t n_rxq;             // 0 = default (1)
  uint16_t mtu;               // 0 = leave as is
};

struct PortDelRequest {
  uint32_t port_no;  // kPortAny: use name
  uint32_t pad;
  char name[kNameLen];
};
using PortGetRequest = PortDelRequest;

// Changes a port's settings; the reply is the port's PortInfo afterwards.
inline constexpr uint32_t kPortSetMtu = 0x1;
struct PortSetRequest {
  uint32_t port_no;  // kPortAny: use name
  uint32_t flags;    // kPortSet*: what to change
  char name[kNameLen];
  uint16_t mtu;  // kPortSetMtu: the L3 MTU (68..kMaxPortMtu)
  uint16_t pad[3];
};
// gldp receives single-segment frames in 2048-byte buffers: Ethernet + one VLAN tag +
// 2030 bytes of payload.
inline constexpr uint16_t kMaxPortMtu = 2030;

struct PortStats {
  uint64_t rx_packets, rx_bytes, tx_packets, tx_bytes;
  uint64_t rx_dropped;  // counted by us (e.g. no mbufs, parse drops) and the NIC's imissed
  uint64_t tx_dropped;  // tx ring full
  uint64_t rx_errors, tx_errors;
};

struct PortInfo {
  uint32_t port_no;
  uint16_t dpdk_port_id;
  uint16_t mtu;
  char name[kNameLen];
  char devargs[kDevargsLen];
  char driver[kNameLen];
  uint8_t mac[6];
  uint8_t link_up;
  uint8_t offloads;  // kPortRxChecksum: the device verifies checksums on receive
  uint32_t link_speed_mbps;
  uint16_t n_rxq, n_txq;
  PortStats stats;
};
// PortInfo::offloads. kPortRxChecksum: IPv4, UDP and TCP checksums are verified by the
// device (gldp asks for that wherever the device offers all three, as OVS-DPDK does), so
// the trackers do not compute them again for packets it marks good.
inline constexpr uint8_t kPortRxChecksum = 0x1;

struct PortListReply {
  uint32_t n;
  uint32_t pad;
  // PortInfo[n] follows
};

// ---- flows ------------------------------------------------------------------
struct Ufid {
  uint64_t lo, hi;
  friend bool operator==(const Ufid&, const Ufid&) = default;
};

struct FlowStats {
  uint64_t packets;
  uint64_t bytes;
  uint64_t used_ms;  // CLOCK_MONOTONIC milliseconds of the last hit, 0 = never
  uint16_t tcp_flags;
  uint16_t pad0;
  uint32_t pad1;
};

inline constexpr uint32_t kPutCreate = 0x1;     // may create a new flow
inline constexpr uint32_t kPutModify = 0x2;     // may replace the actions of an existing one
inline constexpr uint32_t kPutZeroStats = 0x4;  // reset stats when modifying

struct FlowPutRequest {
  uint32_t n;  // entries that follow
  uint32_t pad;
};
struct FlowPutEntry {
  Ufid ufid;
  uint32_t flags;        // kPut*
  uint32_t actions_len;  // bytes of actions that follow (padded to 8 on the wire)
  flow::FlowKey key;
  flow::FlowMask mask;
  // uint8_t actions[actions_len]
};

// Per entry of a batched put or del: result and (for del / modify) the old stats.
struct EntryResult {
  int32_t error;  // 0 or errno
  uint32_t pad;
  FlowStats stats;
  char message[kErrorLen];
};
struct BatchReply {
  uint32_t n;
  uint32_t pad;
  // EntryResult[n] follows
};

struct FlowDelRequest {
  uint32_t n;  // Ufid[n] follow
  uint32_t pad;
};

struct FlowGetRequest {
  Ufid ufid;
};

// One flow as gldp reports it (get and dump).
struct FlowEntry {
  Ufid ufid;
  flow::FlowKey key;
  flow::FlowMask mask;
  FlowStats stats;
  uint32_t actions_len;
  uint32_t pad;
  // uint8_t actions[actions_len], padded to 8
};

struct FlowDumpRequest {
  uint64_t cursor;       // 0 = start
  uint32_t max_entries;  // 0 = as many as fit
  uint32_t flags;        // kDumpNoActions
};
inline constexpr uint32_t kDumpNoActions = 0x1;
struct FlowDumpReply {
  uint64_t next_cursor;  // 0 = dump complete
  uint32_t n;            // FlowEntry (+actions) follow
  uint32_t pad;
};

// ---- execute ----------------------------------------------------------------
struct ExecuteRequest {
  flow::FlowKey metadata;  // in_port, recirc_id, dp_hash, pkt_mark, priority, ct_* used
  uint32_t packet_len;
  uint32_t actions_len;
  // uint8_t actions[actions_len] padded to 8, then uint8_t packet[packet_len]
};

// Several executes in one datagram (an upcall handler's batch: one round trip instead of
// one per packet). n entries follow, each laid out as one ExecuteRequest message body
// (ExecuteRequest, actions padded to 8, packet padded to 8). The reply is a BatchReply
// with one EntryResult per entry, in order (stats unused); the entries are executed in
// order and one failing does not stop the others.
struct ExecuteBatchRequest {
  uint32_t n;
  uint32_t pad;
};

// ---- upcalls ----------------------------------------------------------------
struct UpcallSubscribeRequest {
  uint32_t pid;    // the handler id this connection serves (userspace(pid=..) actions)
  uint32_t flags;  // kSubscribeMiss: also receive misses
};
inline constexpr uint32_t kSubscribeMiss = 0x1;
// Receive upcalls as kUpcallBatch messages (several per datagram: one send and one wakeup
// for everything a drain of the PMD queues found for this connection) instead of one
// kUpcall datagram each.
inline constexpr uint32_t kSubscribeBatch = 0x2;

enum class UpcallKind : uint8_t { kMiss = 0, kAction = 1 };

struct UpcallMsg {
  uint8_t kind;  // UpcallKind
  uint8_t pad[3];
  uint32_t pid;
  uint32_t packet_len;
  uint32_t userdata_len;
  flow::FlowKey key;  // the packet's parsed key, metadata included
  // uint8_t userdata[userdata_len] padded to 8, then packet[packet_len]
};

// kUpcallBatch (unsolicited, xid 0): n upcalls, each laid out as one kUpcall body
// (UpcallMsg, userdata padded to 8, packet padded to 8).
struct UpcallBatchHeader {
  uint32_t n;
  uint32_t pad;
};

// ---- stats ------------------------------------------------------------------
struct PmdStats {
  uint32_t core;
  uint32_t n_rxq;
  uint64_t packets;  // received
  uint64_t batches;
  uint64_t busy_cycles;  // cycles spent in bursts that carried packets
  uint64_t idle_cycles;
  uint64_t emc_hits;
  uint64_t megaflow_hits;
  uint64_t misses;
  uint64_t upcalls;       // queued to the control side
  uint64_t upcalls_lost;  // queue full or rate limited
  uint64_t recirculations;
  uint64_t esp_fragmented;  // IPv4 frames without DF fragmented to fit an ESP tunnel
  uint64_t esp_handoffs;    // ESP packets handed to the context that owns their inbound SA
};

struct DropCounter {
  char name[kNameLen];
  uint64_t count;
};

struct StatsReply {
  uint64_t n_flows;
  uint64_t upcalls_delivered;
  uint64_t upcalls_lost;  // no subscriber, socket full, or rate limit
  uint32_t n_pmds;
  uint32_t n_drops;
  uint64_t tsc_hz;
  // The miss hold (held repeats of a miss already sent up; not drops).
  uint64_t misses_held;          // repeats held instead of sent up
  uint64_t misses_held_run;      // held, then run through the flow that appeared
  uint64_t misses_held_sent_up;  // held, then sent up (no flow within the window)
  uint64_t misses_hold_full;     // repeats sent up because the hold was full
  // PmdStats[n_pmds], then DropCounter[n_drops]
};

// ---- runtime configuration -----------------------------------------------------
struct SetConfigRequest {
  char key[32];  // "emc-insert-inv-prob", "upcall-rate"
  char value[64];
};

// ---- ESP security associations ----------------------------------------------------
// An SA is identified by (spi, dir). Outbound SAs belong to a *group* (one per peer host)
// and to one PMD index: the esp_encrypt(group=G) action on PMD i uses the group's SA for
// i. Index n_pmds is the control thread's context (API execute). Inbound SAs are found by
// SPI; `pmd` names the one context that may process the SPI (its replay window and
// counters are single-writer), or kSaPmdAny when the operator guarantees that only one
// context ever sees it (one underlay rx queue, no execute of ESP packets).
inline constexpr uint32_t kSaPmdAny = 0xffffffffu;
inline constexpr size_t kSaKeyMatLen = 36;  // 32-byte key || 4-byte salt (RFC 4106/7634)

enum class SaDir : uint8_t { kOut = 0, kIn = 1 };
enum class SaMode : uint8_t { kTunnel = 0, kTransport = 1 };
enum class SaCipher : uint8_t { kAes256Gcm = 0, kChacha20Poly1305 = 1 };
enum class SaBackend : uint8_t { kAuto = 0, kSodium = 1, kIpsecMb = 2 };
// Their names (gl-dpctl's add-sa / dump-sas words; crypto::choose_backend()'s requests).
inline constexpr flow::EnumName<SaCipher> kSaCipherTable[] = {
    {SaCipher::kAes256Gcm, "aes256-gcm"},
    {SaCipher::kChacha20Poly1305, "chacha20-poly1305"},
};
inline constexpr auto kSaCipherNames = flow::enum_names(kSaCipherTable);
inline constexpr flow::EnumName<SaBackend> kSaBackendTable[] = {
    {SaBackend::kAuto, "auto"},
    {SaBackend::kSodium, "sodium"},
    {SaBackend::kIpsecMb, "ipsec-mb"},
};
inline constexpr auto kSaBackendNames = flow::enum_names(kSaBackendTable);

struct SaConfigWire {
  uint32_t spi;  // >= 256
  uint8_t dir;   // SaDir
  uint8_t mode;  // SaMode
  uint8_t cipher;
  uint8_t backend;         // SaBackend requested (dump: the one in use, never kAuto)
  uint8_t esn;             // 0/1
  uint8_t ttl;             // outer TTL / hop limit, 1..255
  uint8_t df;              // 0/1, outer IPv4 DF
  uint8_t addr_v6;         // 0: local/remote are IPv4 (first 4 bytes), 1: IPv6
  uint32_t replay_window;  // inbound: power of two 64..4096 (0 = default 1024)
  uint32_t group;          // outbound: SA group id (>= 1); inbound: 0
  uint32_t pmd;            // context index 0..n_pmds (n_pmds = control), kSaPmdAny (inbound)
  uint64_t seq_start;      // last sequence number already used / received (0 for a new SA)
  uint8_t local[16];       // tunnel outer addresses, network order
  uint8_t remote[16];
  uint8_t src_mac[6];  // outbound: underlay Ethernet header put in front of the ESP packet
  uint8_t dst_mac[6];
  // Outbound: underlay IP MTU (0 = not checked). Frames whose ESP packet would exceed it
  // are dropped (esp_too_big); IPv4 ones with DF get ICMP "fragmentation needed" back.
  uint16_t mtu;
  uint16_t pad1;
};
static_assert(sizeof(SaConfigWire) == 80);

// Outbound only: the new SA takes the (group, pmd) slot of the SA there now in one table
// version (make-before-break: add the peer's inbound SA first); the old SA is removed
// (key wiped after the grace period). Without this flag an occupied slot is EEXIST.
inline constexpr uint32_t kSaAddReplace = 0x1;
struct SaAddRequest {
  SaConfigWire cfg;
  uint8_t keymat[kSaKeyMatLen];
  uint32_t flags;  // kSaAdd*
};
static_assert(sizeof(SaAddRequest) == 120);

struct SaDelRequest {
  uint32_t spi;
  uint8_t dir;  // SaDir
  uint8_t pad[3];
  // 0: remove now. Otherwise the SA keeps working and is removed this many milliseconds
  // later (rotation: the old inbound SA stays while packets sent under it may still
  // arrive); a later sa-del reschedules or (0) removes it at once.
  uint32_t grace_ms;
  uint32_t pad2;
};
inline constexpr uint32_t kSaMaxGraceMs = 3600 * 1000;

inline constexpr uint32_t kSaDumpKeys = 0x1;  // include key material (explicit request only)
struct SaDumpRequest {
  uint64_t cursor;  // 0 = start
  uint32_t flags;   // kSaDumpKeys
  uint32_t pad;
};
struct SaDumpReply {
  uint64_t next_cursor;  // 0 = dump complete
  uint32_t n;            // SaInfo follow
  uint32_t pad;
};
inline constexpr size_t kSaResults = 16;  // room for crypto::Result values (13 today)
struct SaInfo {
  SaConfigWire cfg;
  uint64_t seq;                  // outbound: last sequence number used; inbound: highest received
  uint64_t bytes;                // clear-text bytes of good packets
  uint64_t results[kSaResults];  // per crypto::Result (index 0: ok = packets)
  uint8_t expired;
  uint8_t has_keys;
  uint8_t pad[6];
  uint8_t keymat[kSaKeyMatLen];  // only with kSaDumpKeys, else zero
  uint32_t retire_ms;            // non-zero: removed in this many milliseconds (sa-del grace)
};
static_assert(sizeof(SaInfo) % 8 == 0);

// ---- connection tracking --------------------------------------------------------------
// The operator's and OVS's view of gldp's connection tracker (dataplane/conntrack/): dump,
// flush, limits, TCP sequence checking, counters. Zones are 0..65535; zone fields of
// requests are 32 bits wide so that an out-of-range zone is refused by name, not
// truncated.
inline constexpr uint32_t kCtMaxZone = 65535;

// One direction of a connection. Addresses are network order (IPv4: the first 4 bytes,
// the other 12 zero). TCP and UDP: sport/dport (network order), ICMP fields zero. ICMP and
// ICMPv6 queries: icmp_id (network order), icmp_type, icmp_code (this direction's type:
// echo request 8 one way, echo reply 0 the other), ports zero. Other IP protocols (SCTP
// and UDP-Lite too: the tracker keys them by addresses, as OVS): everything but the
// addresses zero.
struct CtTuple {
  uint8_t src[16];
  uint8_t dst[16];
  uint16_t sport;
  uint16_t dport;
  uint16_t icmp_id;
  uint8_t icmp_type;
  uint8_t icmp_code;
  uint8_t family;  // 4 or 6
  uint8_t proto;   // IP protocol
  uint8_t pad[6];  // zero
};
static_assert(sizeof(CtTuple) == 48);

// CtEntry::flags (the tracker's kConn* flags).
inline constexpr uint8_t kCtEntrySnat = 0x01;        // source translated (NAT)
inline constexpr uint8_t kCtEntryDnat = 0x02;        // destination translated
inline constexpr uint8_t kCtEntryHelperFtp = 0x04;   // FTP control connection (helper=ftp)
inline constexpr uint8_t kCtEntryHelperTftp = 0x08;  // helper=tftp
inline constexpr uint8_t kCtEntryRelated = 0x10;     // expected by a helper: +rel
inline constexpr uint8_t kCtEntryReplySeen = 0x20;   // a packet passed in the reply direction

// A connection as a dump reports it.
struct CtEntry {
  CtTuple orig;         // originator -> responder
  CtTuple reply;        // what replies carry (orig reversed, after NAT)
  uint64_t packets[2];  // [0] orig direction, [1] reply direction
  uint64_t bytes[2];    // IP bytes
  uint8_t label[16];    // ct_label: a 128-bit little-endian number (OVS's ovs_u128 in memory)
  uint32_t mark;        // ct_mark
  uint32_t timeout_s;   // seconds until it expires unless refreshed
  uint16_t zone;
  uint8_t tcp_state_orig;   // TCP only: each end's state, numbered as OVS's CT_DPIF_TCPS_*
  uint8_t tcp_state_reply;  // (0 CLOSED .. 10 TIME_WAIT); 0 for other protocols
  uint8_t flags;            // kCtEntry*
  // The firewall's tracker only (kFwCtDump): 1 when the verdict it carries is of its port's
  // policy in force (its next packet is not checked again), else 0.
  uint8_t fw_current;
  uint8_t pad[2];
};
static_assert(sizeof(CtEntry) == 160);

inline constexpr uint32_t kCtDumpZone = 0x1;  // only connections of `zone`
struct CtDumpRequest {
  uint64_t cursor;       // 0 = start, else a next_cursor (<= 2^32 - 1)
  uint32_t flags;        // kCtDump*
  uint32_t zone;         // kCtDumpZone: 0..65535; else 0
  uint32_t max_entries;  // 0 = as many as fit
  uint32_t pad;
};
struct CtDumpReply {
  uint64_t next_cursor;  // 0 = dump complete
  uint32_t n;            // CtEntry[n] follow
  uint32_t pad;
};

// Flush: every connection (no flags), a zone's (kCtFlushZone), or the one connection with
// `tuple` as either of its tuples in `zone` (kCtFlushTuple; zone 0 unless kCtFlushZone is
// given too, as OVS's ct_flush). ENOENT when a tuple names no connection.
inline constexpr uint32_t kCtFlushZone = 0x1;
inline constexpr uint32_t kCtFlushTuple = 0x2;
struct CtFlushRequest {
  uint32_t flags;  // kCtFlush*
  uint32_t zone;   // with kCtFlushZone: 0..65535; else 0
  CtTuple tuple;   // with kCtFlushTuple; else zero
};
struct CtFlushReply {
  uint32_t n_flushed;  // connections removed
  uint32_t pad;
};

// kCtGetConfig: no payload.
struct CtConfigReply {
  uint32_t n_conns;             // connections tracked now
  uint32_t max_conns;           // the global limit (commits beyond it are refused)
  uint32_t capacity;            // the table's size: the largest max_conns allowed
  uint32_t default_zone_limit;  // 0 = unlimited
  uint8_t tcp_seq_check;        // 1: TCP sequence numbers are checked (OVS's default)
  uint8_t pad[7];
};

struct CtSetMaxConnsRequest {
  uint32_t max_conns;  // 0..capacity
  uint32_t pad;
};

struct CtSetTcpSeqCheckRequest {
  uint8_t enabled;  // 0 or 1
  uint8_t pad[7];
};

// A zone's connection limit (0 = unlimited). In a set request count must be 0; get replies
// carry the zone's connections now.
struct CtZoneLimit {
  uint32_t zone;  // 0..65535
  uint32_t limit;
  uint32_t count;
  uint32_t pad;
};
// Most zone limits per message (set/get) and zones per del/get request.
inline constexpr uint32_t kCtMaxZonesPerMsg = 4000;  // 4000 entries of 16 bytes fit 64 KiB

// kCtSetLimits: all entries are checked before any is applied.
inline constexpr uint32_t kCtLimitsDefault = 0x1;  // also set the default limit
struct CtSetLimitsRequest {
  uint32_t flags;          // kCtLimits*
  uint32_t default_limit;  // with kCtLimitsDefault; else 0
  uint32_t n;              // CtZoneLimit[n] follow (0..kCtMaxZonesPerMsg)
  uint32_t pad;
};

// kCtDelLimits (zones fall back to the default limit) and kCtGetLimits: n zones (uint32_t
// each, padded to 8) follow. Get with n = 0 lists every zone that has its own limit, in
// zone order from zone `cursor` on, a page per message (next_cursor 0 = complete); with
// n > 0 the reply has one entry per zone asked for (its own or the default limit) and
// cursor must be 0.
struct CtZonesRequest {
  uint32_t n;  // del: 1..kCtMaxZonesPerMsg; get: 0..kCtMaxZonesPerMsg
  uint32_t cursor;
};
struct CtGetLimitsReply {
  uint32_t default_limit;
  uint32_t n;  // CtZoneLimit[n] follow
  uint32_t next_cursor;
  uint32_t pad;
};

// kCtStats: the tracker's counters, summed over every context. The request may ask to
// zero them after reading.
inline constexpr uint32_t kCtStatsClear = 0x1;
struct CtStatsRequest {
  uint32_t flags;  // kCtStats*
  uint32_t pad;
};
struct CtCounter {
  char name[kNameLen];  // e.g. "tcp_window"
  uint64_t count;
};
struct CtProtoCount {
  uint32_t proto;  // IP protocol
  uint32_t count;  // live connections
};
struct CtStatsReply {
  uint64_t packets;        // packets that went through ct()
  uint64_t found;          // ... that belonged to a tracked connection
  uint64_t created;        // connections committed
  uint64_t expired;        // connections timed out
  uint64_t limit_global;   // commits refused by the global limit (max_conns)
  uint64_t limit_zone;     // commits refused by a zone's limit
  uint64_t table_full;     // commits refused: no free slot or bucket
  uint64_t nat_exhausted;  // commits refused: no free address/port in the NAT range
  uint32_t n_conns;
  uint32_t max_conns;
  uint32_t capacity;
  uint32_t pending_free;  // removed, memory not yet reclaimed
  uint32_t n_invalid;     // CtCounter[n_invalid] follow: +inv packets per reason
  uint32_t n_protos;      // then CtProtoCount[n_protos]: protocols with live connections
  uint64_t index_bytes;   // the lookup index's size now (it grows with the connections)
  uint32_t index_grows;   // times it grew
  uint32_t pad;
};

// ---- conntrack timeout policies -------------------------------------------------------
// OVS's zone timeout policies (ovs-vsctl add-zone-tp, ct(commit,timeout=ID)): a policy is
// the tracker's default timeouts overlaid with the classes it names. The classes are the
// tracker's (conntrack.hpp Timeout, in that order) under OVS's attribute names; sec[] has
// room for kCtTpSlots, of which the first kCtTpCount are used.
inline constexpr uint32_t kCtTpCount = 11;
inline constexpr uint32_t kCtTpSlots = 16;
inline constexpr uint32_t kCtTpAllClasses = (1u << kCtTpCount) - 1;
inline constexpr std::string_view kCtTpNames[kCtTpCount] = {
    "tcp_syn_sent", "tcp_syn_recv", "tcp_established", "tcp_fin_wait", "tcp_time_wait", "tcp_close",
    "udp_first",    "udp_single",   "udp_multiple",    "icmp_first",   "icmp_reply"};
// Policy ids are 0..kCtMaxTimeoutPolicies-1; 0 is the default policy (always there, cannot
// be deleted; setting it changes the defaults).
inline constexpr uint32_t kCtMaxTimeoutPolicies = 1024;
// The longest timeout a class may have, seconds.
inline constexpr uint32_t kCtTpMaxSec = 4000000;

// kCtSetTimeoutPolicy: creates or replaces policy `id` as a whole (classes not in `present`
// take the defaults). Slots not in `present` and slots past kCtTpCount must be zero.
// kCtGetTimeoutPolicy / kCtDumpTimeoutPolicies reply with it: every class's seconds now
// (the defaults where the set left a class out) and present = kCtTpAllClasses.
struct CtTimeoutPolicy {
  uint32_t id;
  uint32_t present;          // bit i: class i (kCtTpNames[i]) is given
  uint32_t sec[kCtTpSlots];  // seconds per class
};
static_assert(sizeof(CtTimeoutPolicy) == 72);

// kCtGetTimeoutPolicy (ENOENT when there is no such policy) and kCtDelTimeoutPolicy
// (ENOENT likewise; id 0 is refused).
struct CtTimeoutPolicyId {
  uint32_t id;
  uint32_t pad;
};

// kCtDumpTimeoutPolicies: the policies with id >= cursor, in id order, a page per message.
struct CtTpDumpRequest {
  uint32_t cursor;  // 0 = start; else a next_cursor (1..kCtMaxTimeoutPolicies-1)
  uint32_t pad;
};
struct CtTpDumpReply {
  uint32_t n;            // CtTimeoutPolicy[n] follow
  uint32_t next_cursor;  // 0 = dump complete
};
// Most policies per dump reply (72 bytes each: 512 fit 64 KiB with room to spare).
inline constexpr uint32_t kCtTpPerPage = 512;

// ---- IP fragment reassembly (the tracker's ipf, OVS's dpctl/ipf-*) ---------------------
// Families are 4 (IPv4) or 6 (IPv6).
inline constexpr uint32_t kIpfMinFragLowerBound = 400;     // set min frag refuses less
inline constexpr uint32_t kIpfMaxNfragsUpperBound = 5000;  // set max nfrags refuses more

struct IpfSetEnabledRequest {
  uint8_t family;   // 4 or 6
  uint8_t enabled;  // 0 or 1
  uint8_t pad[6];
};
struct IpfSetMinFragRequest {
  uint8_t family;  // 4 or 6
  uint8_t pad[3];
  uint32_t min_frag;  // bytes of a non-last fragment's IP packet, >= kIpfMinFragLowerBound
};
struct IpfSetMaxNfragsRequest {
  uint32_t max_nfrags;  // fragments held at once, 0..kIpfMaxNfragsUpperBound
  uint32_t pad;
};

// One family's half of kIpfGetStatus (OVS's struct dpif_ipf_proto_status).
struct IpfFamilyStatusWire {
  uint8_t enabled;  // 0 or 1
  uint8_t pad[3];
  uint32_t min_frag_size;
  uint64_t accepted;        // fragments taken and held
  uint64_t completed_sent;  // ... sent on reassembled (their datagram completed)
  uint64_t expired_sent;    // ... sent on as +inv when their list timed out
  uint64_t too_small;       // refused: a non-last fragment smaller than min_frag_size
  uint64_t overlap;         // refused: overlapping or duplicate data
  uint64_t purged;          // ... dropped, their list timed out long ago
};
static_assert(sizeof(IpfFamilyStatusWire) == 56);

// A counter per reason, for IPv4 and IPv6.
struct IpfCounter {
  char name[kNameLen];  // e.g. "l3_checksum", "disabled"
  uint64_t v4;
  uint64_t v6;
};

// kIpfGetStatus: no payload. The reply: this, then IpfCounter[n_invalid] (fragments refused,
// per reason) and IpfCounter[n_passed] (fragments sent on un-reassembled, per reason).
struct IpfStatusReply {
  IpfFamilyStatusWire v4;
  IpfFamilyStatusWire v6;
  uint32_t nfrag;       // fragments held now
  uint32_t nfrag_max;   // the most held at once (max_nfrags)
  uint32_t nlists;      // datagrams being reassembled now
  uint32_t timeout_ms;  // a list's lifetime from its first fragment
  uint32_t n_invalid;
  uint32_t n_passed;
};

// kIpfDump: the reassembly lists (datagrams being reassembled), each as a line of OVS's
// dpctl/ipf-get-status -m text: "(src=..,dst=..,recirc_id=..,ip_id=..,dl_type=0x800,zone=..,
// nw_proto=..,num_fragments=..,state=..)". The lists are numbered in a snapshot taken per
// page (lists that come or go between pages may be missed or shown twice).
struct IpfDumpRequest {
  uint32_t cursor;  // 0 = start; else a next_cursor
  uint32_t pad;
};
struct IpfDumpReply {
  uint32_t n;            // n NUL-terminated lines follow, each padded to 8
  uint32_t next_cursor;  // 0 = dump complete
};
inline constexpr uint32_t kIpfLineMax = 256;  // longest line, NUL included

// ---- the distributed firewall (glctld -> gldp; dataplane/firewall/fw_tables.hpp) --------
// A firewall version goes as a transaction on one connection: kFwBegin, then kFwIpcache
// pages, each workload port's kFwPort followed by its kFwRules pages (in evaluation
// order), then kFwCommit, which checks the whole version and publishes it atomically, or
// changes nothing and names the problem. A new kFwBegin, a refused message of the
// transaction (its error says "the transaction is abandoned") or the connection closing
// discards an unfinished transaction. kFwClear removes the firewall from every port;
// kFwStatus tells the version in force.
// A delta (kFwBeginDelta) is a version written as its changes to the one in force, which
// must be `base` (else ESTALE, nothing changes): the ports it sends replace theirs or are
// added, ports sent with kFwPortRemove leave the firewall, every other port keeps its
// tables; the ipcache and the hosts are kept unless kFwBeginNewIpcache is set (then the
// transaction's, possibly none, replace both); the quarantine is always the
// transaction's. gldp compares each port with the version in force either way: a port
// whose policy did not change (nor the ipcache, hosts, record flags) keeps its
// connections' verdicts without a re-check.
// Identities: 0 any (in entries), 1 the world; actions: fw::Action (allow 0, deny 1,
// reject 2, allow-encrypted 3).
struct FwBeginRequest {
  uint64_t generation;  // the version's number (connections remember it); > 0
  uint32_t record;      // kFwRecord*: events besides those of entries with `log`
  uint32_t flags;       // kFwBegin*
  uint64_t base;        // kFwBeginDelta: the generation in force it changes; else 0
};
inline constexpr uint32_t kFwBeginDelta = 0x1;             // changes to `base` (see above)
inline constexpr uint32_t kFwBeginNewIpcache = 0x2;        // (a delta) the ipcache and hosts sent
inline constexpr uint32_t kFwRecordAll = 0x1;              // every connection and refusal
inline constexpr uint32_t kFwRecordDefaultRefusals = 0x2;  // refusals by a default action
struct FwPrefixWire {
  uint8_t family;  // 4 or 6
  uint8_t len;     // <= 32 / 128
  // A workload's address: its host, 1.. in the order of the version's kFwHosts entries;
  // 0: none (a CIDR of the outside world). A packet that arrives by an ESP port with a
  // source address of a workload must come from that workload's host (fw_host_mismatch).
  uint16_t host;
  uint32_t identity;  // >= 2
  uint8_t addr[16];   // network order; IPv4 in addr[0..3]
};
static_assert(sizeof(FwPrefixWire) == 24);
struct FwIpcacheRequest {
  uint32_t n;  // FwPrefixWire[n] follow, 1..kFwMaxPrefixesPerMsg
  uint32_t pad;
};
inline constexpr uint32_t kFwMaxPrefixesPerMsg = 2600;
// kFwHosts (in a transaction, any number of messages, appended in order): the underlay
// addresses of the hosts FwPrefixWire::host numbers from 1. family 0: a host without a
// known address (nothing can arrive from it).
struct FwHostWire {
  uint8_t family;  // 4, 6, or 0
  uint8_t pad[3];
  uint8_t addr[16];  // network order; IPv4 in addr[0..3]
};
static_assert(sizeof(FwHostWire) == 20);
struct FwHostsRequest {
  uint32_t n;  // FwHostWire[n] follow, 1..kFwMaxHostsPerMsg
  uint32_t pad;
};
inline constexpr uint32_t kFwMaxHostsPerMsg = 3000;
inline constexpr uint32_t kFwMaxHosts = 65535;
// kFwQuarantine (in a transaction, any number of messages): names of workload ports gldp
// does not have yet. A port added under one of these names while the version is in
// force passes no packet either way (drop fw_quarantine) until a version binds it.
struct FwQuarantineRequest {
  uint32_t n;  // char[kNameLen][n] follow (each NUL-terminated), 1..kFwMaxQuarantinePerMsg
  uint32_t pad;
};
inline constexpr uint32_t kFwMaxQuarantinePerMsg = 1000;
inline constexpr uint32_t kFwMaxQuarantine = 65536;  // per version
// A workload port; its spoof-guard addresses follow: uint32_t[n_ipv4] (network order,
// padded to 8), then 16-byte IPv6 addresses [n_ipv6].
struct FwPortWire {
  uint32_t port_no;         // a port of this gldp
  uint32_t identity;        // the workload's own
  uint32_t conn_limit;      // 0 = none
  uint8_t default_from_vm;  // fw::Action when no entry matches, traffic from the VM
  uint8_t default_to_vm;    // ... to the VM
  uint16_t n_ipv4;
  uint16_t n_ipv6;
  uint8_t mac[6];  // all zero: the source MAC is not checked
  uint8_t flags;   // kFwPort*
  uint8_t pad[7];
};
static_assert(sizeof(FwPortWire) == 32);
// (a delta only) the port leaves the firewall: no addresses, no kFwRules follow.
inline constexpr uint8_t kFwPortRemove = 0x1;
inline constexpr uint32_t kFwMaxAddrsPerPort = 1024;
struct FwEntryWire {
  uint32_t remote;   // identity, 0 = any
  uint32_t rule_id;  // reported in counters and logs; 0 is the default's
  uint16_t port_lo;  // destination ports (host order), inclusive
  uint16_t port_hi;
  uint8_t proto;   // IP protocol, 0 = any
  uint8_t action;  // fw::Action
  uint8_t log;     // 0 or 1
  uint8_t pad;
};
static_assert(sizeof(FwEntryWire) == 16);
struct FwRulesRequest {
  uint32_t port_no;  // a port of this transaction (its kFwPort came before)
  uint8_t to_vm;     // 0: from the VM, 1: to the VM
  uint8_t pad[3];
  uint32_t n;  // FwEntryWire[n] follow, 1..kFwMaxEntriesPerMsg, appended in order
  uint32_t pad2;
};
inline constexpr uint32_t kFwMaxEntriesPerMsg = 4000;
struct FwCommitRequest {
  uint64_t generation;  // the kFwBegin's
};
struct FwStatusReply {
  uint64_t generation;  // 0: no firewall
  uint32_t n_ports;
  uint32_t n_prefixes;
  uint32_t n_conns;  // in the firewall's tracker
  uint32_t capacity;
};

// ---- the firewall's runtime state (gldp -> glctld, operators) -------------------------
// kFwEvents: connection records and refusals (dataplane/firewall/fw_events.hpp), oldest
// first, each handed out once. Which exist is the version's choice (FwBeginRequest::record,
// entries' log); refusals are rate-limited per PMD (`suppressed` says how many were not
// reported before this one). Times are Unix ms.
inline constexpr uint8_t kFwEventStart = 0;    // a recorded connection was allowed
inline constexpr uint8_t kFwEventEnd = 1;      // ... ended (reason: 1 expired, 2 removed)
inline constexpr uint8_t kFwEventRefused = 2;  // a packet refused (reason 3 deny, 4 reject,
                                               // 5 spoof, 6 conn_limit, 7 invalid, 8 revoked)
struct FwEventWire {
  uint64_t time_ms;               // when (end: the end; refused: the packet)
  uint64_t start_ms;              // the connection's start (refused: = time_ms)
  uint64_t packets[2], bytes[2];  // end: originator->responder, back; IP bytes
  uint8_t src[16], dst[16];       // the originator's tuple; IPv4 in the first 4 bytes
  uint16_t sport, dport;          // network order (ICMP: 0)
  uint8_t proto, family;          // IP protocol; 4 or 6
  uint8_t icmp_type, icmp_code;
  uint32_t port_no;     // the workload port
  uint32_t rule_id;     // 0: the port's default action
  uint32_t generation;  // low 32 bits of the version that decided
  uint32_t suppressed;  // refused: refusals not reported before this one
  uint8_t kind;         // kFwEvent*
  uint8_t action;       // fw::Action
  uint8_t to_vm;        // 1: towards the VM
  uint8_t reason;
  uint8_t pad[4];
};
static_assert(sizeof(FwEventWire) == 112);
struct FwEventsRequest {
  uint32_t max;  // 1..kFwMaxEventsPerMsg
  uint32_t pad;
};
struct FwEventsReply {
  uint32_t n;        // FwEventWire[n] follow
  uint32_t pending;  // events still waiting after these (ask again)
  uint64_t lost;     // events dropped so far (rings or backlog full), since gldp started
};
inline constexpr uint32_t kFwMaxEventsPerMsg = 500;

// kFwRuleStats: per rule id, its hits since gldp started over every version it was in:
// connections it allowed (deny/reject rules: attempts it refused), their packets and
// bytes both ways (deny/reject: the packets refused). Rule 0: the ports' default actions.
// Sorted by rule id, a page per message.
struct FwRuleStatsRequest {
  uint32_t cursor;  // 0 = start, else a next_cursor (the rule id the next page starts at)
  uint32_t pad;
};
struct FwRuleStat {
  uint32_t rule_id;
  uint32_t pad;
  uint64_t packets, bytes, conns;
};
struct FwRuleStatsReply {
  uint32_t n;            // FwRuleStat[n] follow
  uint32_t next_cursor;  // 0 = complete
};
inline constexpr uint32_t kFwRuleStatsPerPage = 1500;

// kFwCtDump / kFwCtFlush: kCtDump / kCtFlush (same requests and replies) on the firewall's
// own tracker, whose zone is the workload's port number. A connection's ct_mark is the
// rule that allowed it; its label is fw::ConnVerdict's.

// kFwTrace: what the firewall in force does with a packet at a workload port, and the
// connection it would find: the remote's identity, the verdict of the direction's policy
// for the packet as a first packet, the spoof guard (from the VM), and the tracked
// connection of its tuple (either direction) in the port's zone.
struct FwTraceRequest {
  uint32_t port_no;
  uint8_t to_vm;    // 0: sent by the VM, 1: sent to it
  uint8_t has_mac;  // from the VM: check src_mac too
  uint8_t src_mac[6];
  uint32_t pad;
  CtTuple tuple;  // the packet's (ICMP: icmp_type/code; queries icmp_id)
};
struct FwTraceReply {
  uint64_t generation;       // the version in force (0: none)
  uint32_t local_identity;   // the port's workload (0: the port has no firewall)
  uint32_t remote_identity;  // the other end's (1: the world)
  uint32_t rule_id;          // the verdict's rule (0: the default)
  uint8_t action;            // fw::Action of the verdict
  uint8_t log;
  uint8_t has_fw;        // 1: the port has a firewall
  uint8_t source_ok;     // from the VM: the spoof guard lets the source pass (else 1)
  uint8_t conn_found;    // 1: a tracked connection has the tuple
  uint8_t conn_reply;    // ... as its reply tuple
  uint8_t conn_current;  // ... allowed under the version in force (else checked again)
  uint8_t conn_action;   // ... the fw::Action it was allowed with
  uint8_t untracked;     // ICMPv6 ND/MLD (fw::untracked_icmp6): kFwTraceNd*; else 0
  uint8_t pad[3];
  CtEntry conn;  // when conn_found
};
// FwTraceReply::untracked: neighbour discovery or MLD passes the stage untracked after the
// spoof guard (its link-layer address options are checked on the packet, which a trace
// does not have), or a router advertisement from the VM is dropped (RA guard, fw_spoof).
inline constexpr uint8_t kFwTraceNdPass = 1, kFwTraceRaGuard = 2;
static_assert(sizeof(FwTraceReply) == 32 + sizeof(CtEntry));

// Round n up to a multiple of 8 (variable parts of messages are 8-byte padded).
constexpr uint32_t pad8(uint32_t n) {
  return (n + 7u) & ~7u;
}

// Copy a string into a fixed NUL-terminated field; returns false if it did not fit.
inline bool set_fixed(char* dst, size_t cap, std::string_view s) {
  if (s.size() >= cap) return false;
  std::memcpy(dst, s.data(), s.size());
  std::memset(dst + s.size(), 0, cap - s.size());
  return true;
}
// A fixed field as a string view; fails (returns false) when it is not NUL-terminated.
inline bool get_fixed(const char* src, size_t cap, std::string_view& out) {
  const void* nul = std::memchr(src, 0, cap);
  if (nul == nullptr) return false;
  out = std::string_view(src, static_cast<const char*>(nul) - src);
  return true;
}

template <typename T>
inline constexpr bool kWireSafe = std::is_trivially_copyable_v<T>&& std::is_standard_layout_v<T>;
static_assert(kWireSafe<FlowPutEntry> && kWireSafe<FlowEntry> && kWireSafe<UpcallMsg>);
static_assert(sizeof(FlowPutEntry) % 8 == 0 && sizeof(FlowEntry) % 8 == 0);
static_assert(sizeof(UpcallMsg) % 8 == 0 && sizeof(ExecuteRequest) % 8 == 0);
static_assert(sizeof(PortInfo) % 8 == 0 && sizeof(EntryResult) % 8 == 0);
static_assert(kWireSafe<SaAddRequest> && kWireSafe<SaInfo> && kWireSafe<SaDumpRequest>);
static_assert(kWireSafe<CtEntry> && kWireSafe<CtFlushRequest> && kWireSafe<CtStatsReply>);
static_assert(sizeof(CtDumpRequest) % 8 == 0 && sizeof(CtFlushRequest) % 8 == 0 &&
              sizeof(CtConfigReply) % 8 == 0 && sizeof(CtZoneLimit) % 8 == 0 &&
              sizeof(CtSetLimitsRequest) % 8 == 0 && sizeof(CtGetLimitsReply) % 8 == 0 &&
              sizeof(CtCounter) % 8 == 0 && sizeof(CtProtoCount) % 8 == 0 &&
              sizeof(CtStatsReply) % 8 == 0);
static_assert(kWireSafe<CtTimeoutPolicy> && kWireSafe<IpfStatusReply> && kWireSafe<IpfCounter>);
static_assert(sizeof(CtTimeoutPolicy) % 8 == 0 && sizeof(CtTimeoutPolicyId) % 8 == 0 &&
              sizeof(CtTpDumpRequest) % 8 == 0 && sizeof(CtTpDumpReply) % 8 == 0 &&
              sizeof(IpfSetEnabledRequest) % 8 == 0 && sizeof(IpfSetMinFragRequest) % 8 == 0 &&
              sizeof(IpfSetMaxNfragsRequest) % 8 == 0 && sizeof(IpfStatusReply) % 8 == 0 &&
              sizeof(IpfCounter) % 8 == 0 && sizeof(IpfDumpRequest) % 8 == 0 &&
              sizeof(IpfDumpReply) % 8 == 0);
static_assert(sizeof(MsgHeader) + sizeof(CtTpDumpReply) + kCtTpPerPage * sizeof(CtTimeoutPolicy) <=
              kMaxMessage);
static_assert(kWireSafe<FwPortWire> && kWireSafe<FwEntryWire> && kWireSafe<FwStatusReply>);
static_assert(kWireSafe<FwEventWire> && kWireSafe<FwRuleStat> && kWireSafe<FwTraceReply>);
static_assert(sizeof(FwBeginRequest) % 8 == 0 && sizeof(FwEventsReply) % 8 == 0 &&
              sizeof(FwRuleStat) % 8 == 0 && sizeof(FwTraceRequest) % 8 == 0 &&
              sizeof(FwTraceReply) % 8 == 0);
static_assert(sizeof(MsgHeader) + sizeof(FwEventsReply) +
                      kFwMaxEventsPerMsg * sizeof(FwEventWire) <=
                  kMaxMessage &&
              sizeof(MsgHeader) + sizeof(FwRuleStatsReply) +
                      kFwRuleStatsPerPage * sizeof(FwRuleStat) <=
                  kMaxMessage);
static_assert(
    sizeof(MsgHeader) + sizeof(FwIpcacheRequest) + kFwMaxPrefixesPerMsg * sizeof(FwPrefixWire) <=
        kMaxMessage &&
    sizeof(MsgHeader) + sizeof(FwRulesRequest) + kFwMaxEntriesPerMsg * sizeof(FwEntryWire) <=
        kMaxMessage &&
    sizeof(MsgHeader) + sizeof(FwPortWire) + kFwMaxAddrsPerPort * (4 + 16) <= kMaxMessage);

}  // namespace gl::api
