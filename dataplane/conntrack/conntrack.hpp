// conntrack.hpp — gldp's connection tracker, with OVS userspace conntrack's semantics.
//
// Purpose: what OVS's ct() action does to a packet: find the packet's connection in its
// zone (both directions map to one connection), run the protocol's state machine (TCP
// windows: tcp.hpp; UDP and other IP protocols: first/multiple/bidirectional; ICMP
// queries: first/reply; ICMP errors: related to the connection they quote), create the
// connection on commit, set ct_mark / ct_label, and report the result in the packet's
// conntrack metadata (ct_state new/est/rel/rpl/inv/trk, zone, mark, label, the original
// tuple) so that later flows match on it. Also the operator's side: dump, flush (all, a
// zone, a tuple), connection limits (global, per zone), timeouts, counters.
// Design, locking and memory per connection: DESIGN.md in this folder.
//
// Thread-safety: execute() runs on any number of contexts at once (each PMD and the
// control thread is one context, with its own index); the operator's calls (dump, flush,
// set_*) run on the control thread. Each context calls sweep() and quiescent() between
// batches (the PMD loop does). No allocation, syscall or log line per packet; a new
// connection takes a slot from its context's free cache.
// Complexity: O(1) per packet; dump and flush O(connections).
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/conntrack/alg.hpp"
#include "dataplane/conntrack/conn_table.hpp"
#include "dataplane/conntrack/ipf.hpp"
#include "dataplane/conntrack/tcp.hpp"
#include "flowtables/flow_key.hpp"
#include "flowtables/packet_parser.hpp"

namespace gl::ct {

// Timeout classes: TCP's (tcp.hpp) first, then OVS's other and ICMP ones.
enum class Timeout : uint8_t {
  kTcpSynSent,
  kTcpSynRecv,
  kTcpEstablished,
  kTcpFinWait,
  kTcpTimeWait,
  kTcpClose,
  kOtherFirst,
  kOtherMultiple,
  kOtherBidir,
  kIcmpFirst,
  kIcmpReply,
  kCount
};
inline constexpr size_t kTimeoutCount = static_cast<size_t>(Timeout::kCount);
// OVS's names for them (dpctl/ct-set-timeout-policy attributes).
inline constexpr flow::EnumName<Timeout> kTimeoutTable[] = {
    {Timeout::kTcpSynSent, "tcp_syn_sent"},        {Timeout::kTcpSynRecv, "tcp_syn_recv"},
    {Timeout::kTcpEstablished, "tcp_established"}, {Timeout::kTcpFinWait, "tcp_fin_wait"},
    {Timeout::kTcpTimeWait, "tcp_time_wait"},      {Timeout::kTcpClose, "tcp_close"},
    {Timeout::kOtherFirst, "udp_first"},           {Timeout::kOtherMultiple, "udp_single"},
    {Timeout::kOtherBidir, "udp_multiple"},        {Timeout::kIcmpFirst, "icmp_first"},
    {Timeout::kIcmpReply, "icmp_reply"},
};
inline constexpr auto kTimeoutNames = flow::enum_names(kTimeoutTable);
static_assert(kTimeoutNames.size() == kTimeoutCount);
// OVS's defaults, seconds.
inline constexpr std::array<uint32_t, kTimeoutCount> kDefaultTimeoutSec = {
    30, 30, 24 * 60 * 60, 15 * 60, 45, 30, 60, 60, 30, 60, 30};

// How NAT picks a translated port (Action::nat_port).
inline constexpr uint8_t kNatPortDefault = 0, kNatPortHash = 1, kNatPortRandom = 2;

// What ct() is asked to do (decoded once from the flow's action; see odp::CtAction).
struct Action {
  uint16_t zone = 0;
  bool commit = false;
  bool force = false;  // force_commit: a connection seen in the reply direction is
                       // deleted and the packet starts a new one
  bool set_mark = false;
  uint32_t mark = 0, mark_mask = 0;
  bool set_label = false;
  uint8_t label[16] = {}, label_mask[16] = {};
  // nat: apply the connection's NAT (both directions); with src or dst, a new connection
  // gets one: an address from [ip_min, ip_max] (all zero: keep the packet's own) and, for
  // TCP/UDP, a port from [port_min, port_max] (0: keep the port, or the nearest free one
  // of its class on a clash).
  bool nat = false;
  bool nat_src = false, nat_dst = false;
  uint8_t nat_family = 0;                   // 0: no address range
  uint32_t ip_min[4] = {}, ip_max[4] = {};  // network order; IPv4 in [0]
  uint16_t port_min = 0, port_max = 0;      // host order
  // nat's flags, as Linux's nf_nat reads them (OVS's userspace datapath ignores them):
  // persistent: the address is chosen by a hash of the client's (original source) address
  // alone, so all of a client's connections get the same one (SNAT: the same outside
  // address; DNAT: the same backend); otherwise by a hash of the whole connection.
  // hash / random: the translated port is not kept but the search for a free one starts
  // at a place in its range chosen by a hash of the connection / at random, for each
  // connection (the default keeps a source port when free, and starts a range's search by
  // hash).
  bool nat_persistent = false;
  uint8_t nat_port = kNatPortDefault;  // kNatPort*
  // Timeout policy of a new connection (OVS_CT_ATTR_TIMEOUT, a decimal policy id as OVS's
  // userspace datapath reads it); 0 = the default policy.
  uint16_t policy = 0;
  // helper=ftp|tftp (kHelper*, alg.hpp): a connection committed by an FTP (TCP port 21) or
  // TFTP (UDP port 69) control packet becomes a control connection whose packets create
  // expectations (DESIGN.md "ALGs").
  uint8_t helper = kHelperNone;
  // A new connection is not counted against its zone's limit (the global limit still
  // applies): the firewall's to-VM commit of a connection that a local workload started,
  // already counted in that workload's zone.
  bool uncounted = false;
};

// Timeout policies: ids below this (0 is the default policy, always present).
inline constexpr uint32_t kMaxTimeoutPolicies = 1024;

// The conntrack metadata of a packet, laid out as the flow key's metadata words 2..5
// (ct_mark .. ct_label) and 17..22 (ct_orig_tuple), so that the datapath copies it in and
// out whole. conn caches the connection found by the last ct() of this pass through the
// pipeline (index << 1 | reply; 0 = none; the key's padding): a second ct() in the same
// zone reuses it without running the state machine again, as OVS does; it must be cleared
// whenever the packet leaves the pipeline (upcall, the API).
struct Md {
  // flow key words 2..5
  uint32_t mark = 0;
  uint16_t zone = 0;
  uint8_t state = 0;  // flow::kCs* bits
  uint8_t pad0_ = 0;
  uint32_t priority_ = 0;  // the key's skb priority: not the tracker's, carried through
  uint32_t conn = 0;
  uint8_t label[16] = {};
  // flow key words 17..22, ct_orig_tuple: the originator's tuple of the connection (all
  // zero when none). IPv4 in orig_v4_*, IPv6 in orig_v6_* (the other family's zero).
  uint32_t orig_v4_src = 0, orig_v4_dst = 0;
  uint8_t orig_v6_src[16] = {}, orig_v6_dst[16] = {};
  uint16_t orig_sport = 0, orig_dport = 0;  // network order (ICMP: type, code)
  uint8_t orig_proto = 0;
  uint8_t pad4_[3] = {};

  // 4 or 6 (0: no orig tuple), as the key's fields say it.
  uint8_t orig_family() const {
    if (orig_v4_src != 0 || orig_v4_dst != 0) return 4;
    return orig_proto != 0 ? 6 : 0;
  }
};
static_assert(sizeof(Md) == 80 && offsetof(Md, orig_v4_src) == 32);

// One packet for execute(): the frame (writable: NAT rewrites it), what the parser found.
struct Packet {
  uint8_t* frame;
  uint32_t len;
  const flow::FlowKey* key;
  const flow::PacketLayout* lay;
  Md* md;
  bool rewritten = false;  // out: NAT changed the packet (key and layout are stale)
  uint8_t csum_good = 0;   // kCsumGoodL3 / kCsumGoodL4: the NIC verified it, skip the check
  // Bytes the frame may grow by (tailroom). The FTP helper's NAT rewrite of an address in
  // a payload changes the length: `len` is then updated (in/out); a growth beyond `room`
  // leaves the payload as it is (as OVS with too little room).
  uint32_t room = 0;
};
inline constexpr uint8_t kCsumGoodL3 = 0x1;
inline constexpr uint8_t kCsumGoodL4 = 0x2;

// Why a packet got +inv (counted per context, shown by ct-stats).
enum class Invalid : uint8_t {
  kNotIp,          // neither IPv4 nor IPv6
  kFragment,       // an IP fragment (reassembly is off or failed)
  kL3Checksum,     // bad IPv4 header checksum
  kL4Checksum,     // bad TCP/UDP/ICMP checksum
  kTruncated,      // L3/L4 header truncated or malformed (TCP data offset, UDP length)
  kPortZero,       // TCP/UDP source or destination port 0
  kTcpFlags,       // a TCP first segment that may not open a connection
  kTcpWindow,      // TCP segment outside the window / bad flags on a connection
  kIcmpType,       // an ICMP type that opens nothing and quotes nothing (e.g. an echo reply
                   // without a connection)
  kIcmpUntracked,  // an ICMP error quoting a packet of no tracked connection
  kIcmpQuote,      // an ICMP error whose quoted packet is malformed, or is itself an error
  kCount
};
inline constexpr std::array<std::string_view, static_cast<size_t>(Invalid::kCount)> kInvalidNames =
    {"not_ip",    "fragment",   "l3_checksum", "l4_checksum",    "truncated", "port_zero",
     "tcp_flags", "tcp_window", "icmp_type",   "icmp_untracked", "icmp_quote"};

// Counters of one context (single writer, summed on read).
struct alignas(64) Counters {
  std::atomic<uint64_t> packets{0};        // packets that went through ct()
  std::atomic<uint64_t> found{0};          // ... that belonged to a connection
  std::atomic<uint64_t> created{0};        // connections committed
  std::atomic<uint64_t> expired{0};        // connections timed out
  std::atomic<uint64_t> limit_global{0};   // commits refused: the global limit
  std::atomic<uint64_t> limit_zone{0};     // commits refused: the zone's limit
  std::atomic<uint64_t> table_full{0};     // commits refused: no slot / bucket full
  std::atomic<uint64_t> nat_exhausted{0};  // commits refused: no free NAT tuple
  std::atomic<uint64_t> nat_lookups{0};    // candidate NAT tuples looked up (bounded per commit)
  std::array<std::atomic<uint64_t>, static_cast<size_t>(Invalid::kCount)> invalid{};
  void add(std::atomic<uint64_t>& c, uint64_t n = 1) {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
};

// A connection as the operator sees it (dump).
struct Entry {
  ConnKey orig, reply;
  uint32_t mark;
  uint8_t label[16];
  uint32_t timeout_s;                       // seconds left
  uint8_t tcp_state_orig, tcp_state_reply;  // TcpState, TCP only
  uint8_t flags;                            // kConn*
  uint64_t packets[2], bytes[2];
};

struct Stats {
  uint64_t packets = 0, found = 0, created = 0, expired = 0;
  uint64_t limit_global = 0, limit_zone = 0, table_full = 0, nat_exhausted = 0;
  uint64_t nat_lookups = 0;
  std::array<uint64_t, static_cast<size_t>(Invalid::kCount)> invalid{};
  uint32_t n_conns = 0;       // live connections
  uint32_t max_conns = 0;     // the global limit
  uint32_t capacity = 0;      // the table's size (upper bound of max_conns)
  uint32_t pending_free = 0;  // removed, waiting for reclamation
  uint64_t index_bytes = 0;   // the lookup index now (ConnTable::grow())
  uint32_t index_grows = 0;
  std::array<uint32_t, 256> by_proto{};  // live connections per IP protocol
  uint32_t n_expectations = 0;           // ALG expectations alive
  uint64_t exp_created = 0;              // ALG expectations made
  uint64_t exp_refused = 0;              // ... refused (Expectations::kCapacity/kPerParent)
};

struct Options {
  uint32_t capacity = 1000000;  // slots in the table (memory is touched as it fills)
  unsigned contexts = 1;        // PMDs + the control thread
  bool tcp_seq_check = true;
  bool check_l4_checksum = true;
  bool populate_index = false;  // ConnTable's: back the whole index at construction
};

class Conntrack {
 public:
  explicit Conntrack(const Options& o);
  Conntrack(const Conntrack&) = delete;
  Conntrack& operator=(const Conntrack&) = delete;

  // ---- packet path (any context) ----
  // Runs ct() with `a` on n packets of context ctx at time now_ms.
  void execute(unsigned ctx, const Action& a, Packet* pkts, uint16_t n, uint64_t now_ms);
  // The established path without a parsed flow key (the firewall stage's): n raw frames
  // looked up in `zone`. A packet is handled here when it is a plain IPv4 or IPv6 TCP or
  // UDP frame (Ethernet II, untagged, not a fragment, no IPv6 extension header, checksums
  // good) of a live connection without NAT, helper or relation whose label matches
  // `want`: it is then tracked exactly as execute() would (counters, expiry, the TCP
  // state machine): kTracked, or kInvalid (a segment out of window, counted). Every other
  // packet is left as it was (kMiss) for execute(), which takes it from the start.
  struct FastPacket {
    enum Result : uint8_t { kMiss, kTracked, kInvalid };
    const uint8_t* frame;  // in
    uint32_t len;
    uint8_t csum_good = 0;
    Result result = kMiss;   // out
    uint32_t conn = 0;       // Md::conn of the connection (kTracked, kInvalid)
    uint32_t bytes = 0;      // the packet's IP length
    uint8_t label[16] = {};  // the connection's label, as it matched `want`
  };
  // The label test: (label & mask) == value, on its two little-endian 64-bit halves.
  struct LabelMatch {
    uint64_t mask[2] = {};
    uint64_t value[2] = {};
  };
  void execute_established(unsigned ctx, uint16_t zone, const LabelMatch& want, FastPacket* pkts,
                           uint16_t n, uint64_t now_ms);
  // Sets a connection's mark and label (Md::conn; as a ct(commit) with both masks full
  // would), without tracking a packet. Any context.
  void set_mark_label(uint32_t md_conn, uint32_t mark, const uint8_t label[16]);
  // ct_clear: forget everything conntrack said about the packet.
  static void clear(Md& md) { md = Md{}; }

  // Between batches, on each context: expires up to `budget` of the context's
  // connections and reclaims removed ones.
  void sweep(unsigned ctx, uint64_t now_ms, uint32_t budget = 64);
  // QSBR: each context registers once, calls quiescent() when it holds no connection.
  int register_context() { return table_.rcu().register_reader(); }
  void unregister_context(int slot) { table_.rcu().unregister_reader(slot); }
  void quiescent(int slot) { table_.rcu().quiescent(slot); }
  void offline(int slot) { table_.rcu().offline(slot); }
  void online(int slot) { table_.rcu().online(slot); }

  // ---- operator (control thread) ----
  // They read connections that PMDs may free: the calling thread must be a registered
  // context, online (gldp: Datapath::with_conntrack).
  // Calls fn for live connections (all zones, or `zone` when >= 0) from cursor on; fn
  // returns false to stop (resume from the returned cursor; 0 = done).
  uint32_t dump(uint32_t cursor, int zone, uint64_t now_ms,
                const std::function<bool(const Entry&)>& fn) const;
  // Removes every connection (zone < 0) or a zone's; returns how many.
  uint32_t flush(int zone);
  // Removes the connection with this tuple (either direction) in k.zone; false if none.
  bool flush_tuple(const ConnKey& k);
  // Removes the connection a packet's metadata names (Md::conn, from execute() in this
  // pass); false when it is gone already. Any context.
  bool remove_conn(uint32_t md_conn);
  // The live connection with tuple k (either direction, in k.zone): its entry and
  // whether k is its reply tuple; false when there is none (or it has expired).
  bool lookup(const ConnKey& k, uint64_t now_ms, Entry& out, bool& reply) const;
  // Whether k is the original direction of a live connection (packet path: no copy).
  bool has_origin(const ConnKey& k, uint64_t now_ms) const;
  // Called by a connection's owner context at its sweep, once per connection that ended
  // (expired, or removed by anyone), with the connection as a dump shows it (timeout_s
  // 0), whether it expired, and the sweep's now_ms. Set before any context runs; runs on
  // PMDs: no blocking.
  using EndHook = std::function<void(unsigned ctx, const Entry& e, bool expired, uint64_t now_ms)>;
  void set_end_hook(EndHook h) { end_hook_ = std::move(h); }
  // The global limit (<= capacity(): EINVAL beyond it).
  std::expected<void, std::string> set_max_conns(uint32_t n);
  uint32_t max_conns() const { return max_conns_.load(std::memory_order_relaxed); }
  uint32_t n_conns() const { return table_.live(); }
  uint32_t capacity() const { return table_.capacity(); }
  // Zone limits: 0 = unlimited. The default applies to zones without their own.
  void set_zone_limit(uint16_t zone, uint32_t limit);
  void set_default_zone_limit(uint32_t limit);
  void del_zone_limit(uint16_t zone);  // back to the default
  uint32_t zone_limit(uint16_t zone) const;
  uint32_t default_zone_limit() const { return default_limit_.load(std::memory_order_relaxed); }
  bool zone_has_own_limit(uint16_t zone) const;
  uint32_t zone_count(uint16_t zone) const {
    return zone_count_[zone].load(std::memory_order_relaxed);
  }
  // Timeout of a class, seconds (the default policy; settable for tests and operators).
  void set_timeout(Timeout t, uint32_t sec);
  uint32_t timeout(Timeout t) const { return ms(0, t) / 1000; }
  // Timeout policies (OVS's zone timeout policies, ct-set-timeout-policy): a policy is the
  // defaults overlaid with the classes in `present` (bit i = Timeout i), replaced as a
  // whole by a set. A connection keeps its policy id; while the id has no policy, the
  // default one applies (as OVS). Id 0 is the default policy itself.
  std::expected<void, std::string> set_timeout_policy(
      uint32_t id, const std::array<uint32_t, kTimeoutCount>& sec, uint32_t present);
  std::expected<void, std::string> del_timeout_policy(uint32_t id);
  // The policy's seconds per class; false when there is no such policy.
  bool timeout_policy(uint32_t id, std::array<uint32_t, kTimeoutCount>& sec) const;
  std::vector<uint32_t> timeout_policy_ids() const;
  void set_tcp_seq_check(bool on) { opts_.tcp_seq_check = on; }
  bool tcp_seq_check() const { return opts_.tcp_seq_check; }
  Stats stats() const;
  // Before committing a batch's new connections one by one: fetches the index lines the
  // commit of a connection whose packet has key k will lock (ConnTable::prefetch_insert).
  void prefetch_commit(const ConnKey& k) const { table_.prefetch_insert(k, ConnTable::hash(k)); }
  // Control thread: backs memory for the next `ahead` new connections ahead of the PMDs
  // (ConnTable::prefault()); call it from a periodic loop.
  size_t prefault(uint32_t ahead) { return table_.prefault(ahead); }
  // Control thread: grows the lookup index when the connections need it
  // (ConnTable::grow()); call it from a periodic loop. True when it grew.
  bool grow_index() { return table_.grow(); }
  void clear_stats();
  // Fragment reassembly in front of the tracker (OVS's ipf): the datapath hands it the
  // fragments that reach ct() and tracks the datagrams it completes.
  Ipf& ipf() { return ipf_; }
  const Ipf& ipf() const { return ipf_; }

 private:
  struct Extracted;  // a packet's key and what the state machines need of it
  bool extract(const Packet& p, Extracted& x, Invalid& why) const;
  // extract()'s L4 checks (TCP header, UDP length, checksum) on x.key's protocol.
  bool check_l4(Extracted& x, const uint8_t* l4, uint32_t l4_len, uint8_t csum_good,
                Invalid& why) const;
  // The key of a plain TCP/UDP frame (execute_established()); false for anything else.
  bool extract_fast(const uint8_t* frame, uint32_t len, uint8_t csum_good, uint16_t zone,
                    Extracted& x) const;
  void process_one(unsigned ctx, const Action& a, Packet& p, Extracted& x, uint64_t now_ms);
  // A new connection for x (its index), or 0 when refused (limits, no room: counted), or
  // kRaced when another context inserted one with this key first.
  uint32_t create(unsigned ctx, const Action& a, const Extracted& x, uint64_t now_ms,
                  const Expectation* exp);
  static constexpr uint32_t kRaced = UINT32_MAX;
  // The protocol's state machine on a connection found (OVS's CT_UPDATE_*).
  enum class Update : uint8_t { kValid, kValidNew, kInvalid, kReopen };
  Update update_found(Conn& c, bool reply, const Extracted& x, uint64_t now_ms);
  bool update_bidir(Conn& c, bool reply, const Extracted& x, uint64_t now_ms) const;
  // Writes the metadata ct() leaves: +trk, zone, the connection's mark, label and
  // originator (or `own`, the packet's tuple, when it has none), the cached connection.
  void write_md(Md& md, uint16_t zone, const Conn* c, uint32_t idx, bool reply,
                const ConnKey* own) const;
  void apply_mark_label(const Action& a, Conn& c, Md& md) const;
  // NAT (nat.cpp): picks the translated reply tuple of a new connection (false: none is
  // free; counted in cs: the candidates looked up, and the expired connections that held
  // one, removed as a lookup does), and rewrites a packet of direction `reply` (an ICMP
  // error: and its quote).
  bool nat_select(const Action& a, Conn& c, uint64_t hash, uint64_t now_ms, Counters& cs);
  static void nat_packet(const Conn& c, bool reply, bool related, Packet& p);
  void unlink(uint32_t idx);   // remove + removed()
  void removed(uint32_t idx);  // after a successful remove: zone count, expectations
  // ALGs (alg.cpp). alg_pre: before the TCP state machine, an FTP control packet of the
  // direction opposite to the NAT sequence skew gets its ack moved back (and `ack`, the
  // parsed segment's). alg_ctl: after the update and NAT, a control packet of a control
  // connection creates expectations and, with NAT, gets its payload address rewritten and
  // its sequence numbers adjusted. parent_key: a related connection's parent tuple (false
  // when the parent is gone).
  void alg_pre(Conn& c, bool reply, Packet& p, uint32_t& ack);
  void alg_ctl(Conn& c, bool reply, bool nat, Packet& p);
  bool parent_key(const Conn& c, ConnKey& out) const;
  static uint32_t parent_check(const ConnKey& k) {
    return static_cast<uint32_t>(ConnTable::hash(k)) | 1u;
  }
  uint32_t ms(uint32_t policy, Timeout t) const {
    if (policy != 0 && !policy_set_[policy].load(std::memory_order_relaxed)) policy = 0;
    return policy_ms_[policy * kTimeoutCount + static_cast<size_t>(t)].load(
        std::memory_order_relaxed);
  }
  uint64_t expiry(Timeout t, uint64_t now_ms, uint32_t policy) const {
    return now_ms + ms(policy, t);
  }
  Counters& ctr(unsigned ctx) { return ctr_[ctx]; }

  Options opts_;
  ConnTable table_;
  std::unique_ptr<Counters[]> ctr_;
  // kMaxTimeoutPolicies x kTimeoutCount milliseconds; read by PMDs (relaxed: a packet
  // may see a policy half replaced, which only mixes two valid timeouts).
  std::unique_ptr<std::atomic<uint32_t>[]> policy_ms_;
  std::unique_ptr<std::atomic<bool>[]> policy_set_;
  std::atomic<uint32_t> max_conns_;
  std::atomic<uint32_t> default_limit_{0};
  std::unique_ptr<std::atomic<uint32_t>[]> zone_limit_;  // 65536; kNoLimit = use default
  std::unique_ptr<std::atomic<uint32_t>[]> zone_count_;  // 65536
  Ipf ipf_;
  Expectations expect_;
  EndHook end_hook_;
  static constexpr uint32_t kUseDefault = UINT32_MAX;
  // A consistent copy of connection idx for the operator (takes its lock).
  void fill_entry(uint32_t idx, Entry& e) const;
};

}  // namespace gl::ct
