// pmd.hpp — a poll-mode thread and the per-batch pipeline it runs.
//
// Purpose: one Pmd per PMD core polls its rx queues and runs, per batch of up to 32
// packets: parse (flowtables/packet_parser) → EMC → megaflow classifier (batch lookup)
// → action executor → tx, buffered per output port and flushed once per batch.
// Recirculated packets run through the pipeline again (bounded depth). Misses and
// userspace() actions are queued as upcalls for the control thread. The same class,
// without a thread, is the control thread's context for API `execute` requests.
// ESP: the packets of one flow run whose actions start with esp_encrypt/esp_decrypt are
// handed to the SA's burst function together (one AEAD batch), with this context's own
// crypto::Worker; see DESIGN.md "ESP in the datapath".
// Thread-safety: everything but set_rx_config()/stop() is private to the owning thread.
// No allocation, lock (except shared tx queues, see port.hpp), syscall or log line runs
// per packet. Complexity: O(batch) per stage.
#pragma once

#include <rte_mbuf.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "crypto/aead.hpp"
#include "dataplane/counters.hpp"
#include "dataplane/datapath.hpp"
#include "flowtables/bounded_queue.hpp"
#include "flowtables/emc.hpp"
#include "flowtables/flow_key.hpp"
#include "flowtables/packet_parser.hpp"

namespace gl::dp {

inline constexpr uint16_t kBatch = 32;
inline constexpr int kMaxRecircDepth = 6;

// The metadata words of a FlowKey (words 0..5, then the ct_orig_tuple words 17..22): what
// travels with a packet between recirculations and what an API execute request sets.
struct PacketMd {
  uint32_t in_port;
  uint32_t recirc_id;
  uint32_t dp_hash;
  uint32_t pkt_mark;
  uint32_t ct_mark;
  uint16_t ct_zone;
  uint8_t ct_state;
  uint8_t pad0;
  uint32_t priority;
  uint32_t ct_conn;  // the connection the last ct() found (ct::Md::conn): the flow key's
                     // padding, never matched; zero whenever a packet leaves the pipeline
  uint8_t ct_label[16];
  // FlowKey words 17..22
  uint32_t ct_nw_src;
  uint32_t ct_nw_dst;
  uint8_t ct_ipv6_src[16];
  uint8_t ct_ipv6_dst[16];
  uint16_t ct_tp_src;
  uint16_t ct_tp_dst;
  uint8_t ct_nw_proto;
  uint8_t pad4[3];
};
inline constexpr size_t kMdHead = 48;  // bytes of words 0..5
static_assert(offsetof(flow::FlowKey, eth_dst) == kMdHead && sizeof(PacketMd) == 2 * kMdHead);
static_assert(offsetof(PacketMd, priority) == offsetof(flow::FlowKey, priority));
static_assert(offsetof(PacketMd, ct_label) == offsetof(flow::FlowKey, ct_label));
static_assert(offsetof(PacketMd, ct_nw_src) == kMdHead &&
              sizeof(flow::FlowKey) - offsetof(flow::FlowKey, ct_nw_src) == kMdHead);

// The metadata into a key (its packet words untouched), and back.
inline void md_to_key(const PacketMd& md, flow::FlowKey& k) {
  std::memcpy(&k, &md, kMdHead);
  std::memcpy(&k.ct_nw_src, &md.ct_nw_src, kMdHead);
}
inline void key_to_md(const flow::FlowKey& k, PacketMd& md) {
  std::memcpy(&md, &k, kMdHead);
  std::memcpy(&md.ct_nw_src, &k.ct_nw_src, kMdHead);
}

struct RxqRef {
  Port* port;
  uint16_t queue;
  bool slow;  // a receive costs a syscall (net_tap): polled every kSlowPollEvery loops
};

// A PMD polls queues whose receive is a system call (net_tap: the bridge's internal port,
// low rate by nature) once every this many loop iterations, so they do not take a
// syscall's worth of time from every burst of the fast ports (about 64 us of added
// latency at most on the slow port).
inline constexpr uint32_t kSlowPollEvery = 64;

// The rx queues one PMD polls: immutable once published.
struct PmdRxConfig {
  std::vector<RxqRef> rxqs;
};

class Pmd {
 public:
  // index: this thread's tx queue on every port and its slot in per-flow stats.
  Pmd(Datapath& dp, unsigned lcore, uint16_t index, bool is_control);
  ~Pmd();
  Pmd(const Pmd&) = delete;
  Pmd& operator=(const Pmd&) = delete;

  bool init(std::string& err);  // rings; call before launch
  bool launch(std::string& err);
  void stop();  // asks the thread to stop and waits for it

  // Control thread: publish a new rx assignment; returns the old one (free it after a
  // grace period).
  const PmdRxConfig* set_rx_config(const PmdRxConfig* cfg) {
    return rx_cfg_.exchange(cfg, std::memory_order_acq_rel);
  }

  // Control context only: run `actions` on one packet (the API's execute); `cts` are its
  // ct() actions, decoded (decode_ct_actions).
  void execute(rte_mbuf* m, const PacketMd& md, std::span<const uint8_t> actions,
               const CtActions& cts);
  // Expires and reclaims some of this context's connections (the PMD loop calls it; the
  // control thread's housekeeping for the control context). tsc: now.
  void ct_sweep(uint64_t tsc);
  // Runs packets through the whole pipeline as if received on `in_port` and flushes tx
  // (the PMD loop per burst; the control context for tests). Takes ownership.
  void receive(rte_mbuf** pkts, uint16_t n, uint32_t in_port);
  // receive() with the time already read (flow stats' last use).
  void receive_at(rte_mbuf** pkts, uint16_t n, uint32_t in_port, uint64_t now);
  // Control context: runs packets that missed before through the pipeline again, with
  // the metadata they missed with (held misses whose flow has appeared). Takes ownership.
  void rerun(rte_mbuf** pkts, uint16_t n, const PacketMd& md);

  int ct_slot() const {
    return ct_slot_;
  }                                               // the tracker's QSBR slot (control: offline but
                                                  // while it runs packets or with_conntrack())
  int fw_ct_slot() const { return fw_ct_slot_; }  // ... in the firewall's tracker
  unsigned lcore() const { return lcore_; }
  uint16_t index() const { return index_; }
  const PmdCounters& counters() const { return ctr_; }
  PmdCounters& counters() { return ctr_; }
  size_t n_rxq() const;
  // Control thread: the PMD applies a new EMC insertion probability at its next
  // quiescent point (the EMC belongs to the PMD thread).
  void request_emc_insert_inv_prob(uint32_t v) {
    emc_prob_req_.store(v, std::memory_order_release);
  }
  // Upcall slots: filled ones PMD -> control thread, empty ones back (one consumer each).
  using UpcallQueue = flow::BoundedQueue<UpcallSlot*, kUpcallSlots>;
  UpcallQueue& upcall_queue() { return *upcall_full_; }
  UpcallQueue& upcall_free_queue() { return *upcall_free_; }
  void set_upcall_rate(uint32_t per_sec);
  // How long a miss sent up counts as "with the handler" (the miss hold's longest window;
  // 0 = holding off: every miss is charged to the one bucket). Any thread.
  void set_repeat_window(uint64_t tsc) { repeat_window_.store(tsc, std::memory_order_relaxed); }
  // ESP handoff (esp_stage.cpp, as VPP's esp-decrypt-handoff): an ESP packet whose inbound
  // SA belongs to another context is queued to that context, with its metadata and the
  // actions after esp_decrypt, and decrypted there. Any context may queue (multi-producer
  // ring); only the owner drains: its PMD loop, or the control thread's housekeeping for
  // the control context (and tests, for a PMD that is not running).
  void esp_handoff_drain();

 private:
  struct TxBuf {
    uint16_t n = 0;
    bool dirty = false;  // listed in dirty_
    rte_mbuf* pkts[kBatch];
  };
  // Packets of one flow run whose actions start with an ESP action: handed to the SA's
  // burst function together when the run ends (process(), phase 4).
  struct EspPending {
    const ActionsBlob* actions = nullptr;
    uint16_t n = 0;
    rte_mbuf* pkts[kBatch];
    PacketMd md[kBatch];
  };
  // One handed-off ESP packet: the rest of its action list travels by value (the flow
  // it came from may be gone by the time the owner runs it). Validation makes that rest
  // one recirc(N) (odp_actions.cpp), 8 bytes.
  static constexpr size_t kHandoffRest = 20;
  struct EspHandoff {
    rte_mbuf* m;
    PacketMd md;
    uint32_t rest_len;
    uint8_t rest[kHandoffRest];
  };
  static_assert(sizeof(EspHandoff) % 8 == 0);
  static constexpr unsigned kHandoffSlots = 512;
  struct RecircQueue {
    uint16_t n = 0;
    rte_mbuf* pkts[2 * kBatch];
    PacketMd md[2 * kBatch];
  };

  static int thread_main(void* arg);
  void run();
  // The pipeline: takes ownership of every packet.
  void process(rte_mbuf** pkts, uint16_t n, const PacketMd* md, int depth);
  // Phases 2-4 of process() on parsed packets: exact-match cache, megaflow classifier,
  // actions. keys[i] holds packet i's metadata; the keys of a run that ct() recirculates
  // are rewritten in place and run again here (one level deeper).
  void classify_and_act(rte_mbuf** good, flow::FlowKey* keys, flow::PacketLayout* lay, uint16_t ng,
                        int depth);
  // Runs the packets a pipeline level queued for recirculation, at depth + 1.
  void drain_recirc(RecircQueue& recirc, int depth);
  // Executes an action list on one packet. `steal`: the list may consume m (it is the
  // last use); otherwise it works on copies where it must send or keep the packet.
  // `cts`: the list's decoded ct() actions (nullptr when it has none).
  void exec_actions(rte_mbuf* m, PacketMd& md, const flow::FlowKey& key, flow::PacketLayout& lay,
                    std::span<const uint8_t> actions, bool steal, int depth,
                    const CtActions* cts = nullptr);
  // Conntrack stage (ct_stage.cpp): ct() with `a` on pkts[0, n) (their keys and layouts
  // from the parser), writing its results into the keys' metadata words (ct_state ..
  // ct_orig_tuple); one tracker batch. The packets stay the caller's, but
  // for IP fragments the reassembly takes (pkts[i] set to nullptr); when one completes a
  // datagram, the datagram's other fragments run `rest` (the actions after this ct(),
  // with `cts`, at `depth`) here. rewritten[i] (if given): NAT or reassembly changed
  // packet i (its key is stale).
  void ct_run(const ct::Action& a, rte_mbuf** pkts, flow::FlowKey* keys,
              const flow::PacketLayout* lay, uint16_t n, bool* rewritten,
              std::span<const uint8_t> rest, const CtActions* cts, int depth);
  enum class Frag : uint8_t { kTrack, kHeld, kDone };
  // Firewall stage (fw_stage.cpp) at a workload port `pf` of version `t`. fw_from_vm: the
  // packets the VM sent (parsed), before switching; fw_to_vm: a tx burst to the VM. Both
  // drop (and count) what the guard or the policy refuses and return how many are left,
  // moved to the front.
  uint16_t fw_from_vm(const fw::FwTables& t, const fw::PortFirewall& pf, rte_mbuf** pkts,
                      flow::FlowKey* keys, flow::PacketLayout* lay, uint16_t n);
  uint16_t fw_to_vm(const fw::FwTables& t, const fw::PortFirewall& pf, rte_mbuf** pkts, uint16_t n);
  // The established path: packets of connections committed under version t, looked up
  // from their frames (Conntrack::execute_established()), counted; done[i] says which
  // it took (kept, or dropped as invalid). The rest go to fw_track().
  void fw_fast(const fw::FwTables& t, const fw::PortFirewall& pf, bool to_vm, rte_mbuf** pkts,
               uint16_t n, bool* keep, bool* done);
  // Everything else (keys and layouts parsed): first packets, connections of an older
  // version, relations; packets with done[i] set are skipped.
  void fw_track(const fw::FwTables& t, const fw::PortFirewall& pf, bool to_vm, rte_mbuf** pkts,
                const flow::FlowKey* keys, const flow::PacketLayout* lay, uint16_t n, bool* keep,
                const bool* done);
  bool fw_commit(const fw::PortFirewall& pf, bool to_vm, const fw::Verdict& v, rte_mbuf* pkt,
                 const flow::FlowKey& key, const flow::PacketLayout& lay, uint64_t now_ms,
                 uint32_t start_ms, bool record, bool uncounted = false, uint8_t via = 0);
  // The ESP port (< 256) a new connection's packets to the VM must arrive by: to the VM,
  // the ESP port it arrived by; from the VM to a workload of another host, the ESP port
  // towards that host; 0 otherwise (any way).
  uint8_t fw_via(const fw::FwTables& t, bool to_vm, const flow::FlowKey& k,
                 const rte_mbuf* m) const;
  // Whether a packet sent to a VM belongs to a connection that another local workload
  // started (committed in that workload's zone, so already counted against its limit).
  // execute(): marks a packet from a workload that belongs to (or would start) an
  // allow-encrypted connection at its port.
  // Whether a packet to a workload of an allow-encrypted connection came the way it must:
  // by an ESP port (authenticated by an SA) or from a workload of this host.
  bool fw_arrived_encrypted(const fw::FwTables& t, const rte_mbuf* m) const;
  // A packet to a workload that arrived by an ESP port: its source address, when it is a
  // workload's, must be of a workload of the port's peer host (the host whose SA
  // authenticated it).
  bool fw_host_ok(const fw::FwTables& t, const flow::FlowKey& k, const rte_mbuf* m) const;
  // An allowed packet of `action` at a workload's port: from the VM, allow-encrypted marks
  // it (it may leave only by an ESP or workload port); to the VM, allow-encrypted needs
  // fw_arrived_encrypted(). False: drop it (fw_not_encrypted).
  bool fw_encryption_ok(const fw::FwTables& t, fw::Action action, bool to_vm, rte_mbuf* m) {
    if (action != fw::Action::kAllowEncrypted) [[likely]]
      return true;
    if (!to_vm) {
      m->ol_flags |= dp_.must_encrypt_flag();
      return true;
    }
    return fw_arrived_encrypted(t, m);
  }
  void fw_mark_executed(const fw::FwTables& t, const fw::PortFirewall& pf, rte_mbuf* m,
                        const flow::FlowKey& key, const flow::PacketLayout& lay);
  bool fw_local_origin(const fw::FwTables& t, const fw::PortFirewall& pf, const rte_mbuf* pkt,
                       const flow::FlowKey& key, const flow::PacketLayout& lay,
                       uint64_t now_ms) const;
  // Events (fw_events.hpp): a recorded connection started; a packet refused (rate-limited).
  void fw_started(const fw::FwTables& t, const fw::PortFirewall& pf, bool to_vm,
                  const flow::FlowKey& k, const fw::Verdict& v, uint64_t now_ms);
  void fw_refused(const fw::FwTables& t, const fw::PortFirewall& pf, bool to_vm,
                  const flow::FlowKey& k, const fw::Verdict& v, fw::EventReason why,
                  uint64_t now_ms);
  // Answers a rejected packet (TCP RST, else ICMP prohibited) to its sender, as from its
  // destination. From the VM (to_vm false): straight to the VM's port. To the VM: the
  // answer is queued as if the VM had sent it and run through the pipeline after the
  // burst (fw_answers_, drain_fw_answers()), past the VM's own from-VM stage (depth 1).
  void fw_reject(const fw::PortFirewall& pf, rte_mbuf* pkt, const flow::FlowKey& k,
                 const flow::PacketLayout& lay, bool to_vm);
  void drain_fw_answers();
  Frag ct_fragment(const ct::Action& a, rte_mbuf* m, flow::FlowKey& key,
                   const flow::PacketLayout& lay, std::span<const uint8_t> rest,
                   const CtActions* cts, int depth);
  // ESP: runs `type` (esp_encrypt of `group` / esp_decrypt) on pkts[0, n) as one burst,
  // then the rest of the flow's actions on each packet that survived. Takes ownership.
  void esp_run(uint16_t type, uint32_t group, rte_mbuf** pkts, PacketMd* md, uint16_t n,
               std::span<const uint8_t> rest);
  void esp_flush_pending();
  // An ESP packet from the underlay of an ESP port, for that port: queued in `to` with
  // in_port = the ESP port (true), or left to the pipeline (false).
  bool esp_divert(rte_mbuf* m, const flow::FlowKey& key, EspPending& to);
  void esp_encrypt(uint32_t group, rte_mbuf** pkts, PacketMd* md, uint16_t n,
                   std::span<const uint8_t> rest);
  void esp_decrypt(rte_mbuf** pkts, PacketMd* md, uint16_t n, std::span<const uint8_t> rest);
  // Queues m (unknown here, its SPI owned by context `owner`) to the owner; false when
  // that cannot be done (m not taken: the caller drops it).
  bool esp_handoff(uint32_t owner, rte_mbuf* m, const PacketMd& md, std::span<const uint8_t> rest,
                   Drop& why);
  // ESP packets other contexts hand to this one (any producer; this context consumes).
  using HandoffQueue = flow::BoundedQueue<EspHandoff, kHandoffSlots>;
  HandoffQueue& handoff_queue() { return *handoff_; }
  // A frame too big for the SA's underlay MTU: ICMP "fragmentation needed" back for IPv4
  // with DF, then dropped (esp_too_big).
  void esp_too_big(rte_mbuf* m, const PacketMd& md, uint32_t max_frame);
  // IPv4 without DF into fragments of at most max_frame bytes (new mbufs in out[0, n));
  // returns n, or 0 when m is not such a packet or does not fit `cap` fragments.
  uint16_t fragment_ipv4(const rte_mbuf* m, uint32_t max_frame, rte_mbuf** out, uint16_t cap);
  // Queues m for port_no (sent when the port's buffer is full or at flush_tx). in_port:
  // where m entered (an ESP port sends ICMP "too big" there).
  void output(rte_mbuf* m, uint32_t port_no, uint32_t in_port);
  // Lists port_no's tx buffer for flush_tx(); false when the list is full.
  bool mark_dirty(uint32_t port_no);
  void send(Port& port, TxBuf& b);  // empties b: tx burst, or encryption for an ESP port
  void esp_port_tx(Port& port, rte_mbuf** pkts, uint16_t n);
  void flush_tx();
  void upcall(rte_mbuf* m, const flow::FlowKey& key, api::UpcallKind kind, uint32_t pid,
              std::span<const uint8_t> userdata);
  // The control context's slots in both trackers, around running packets.
  void trackers_online() {
    dp_.conntrack().online(ct_slot_);
    dp_.fw_conntrack().online(fw_ct_slot_);
  }
  void trackers_offline() {
    dp_.conntrack().offline(ct_slot_);
    dp_.fw_conntrack().offline(fw_ct_slot_);
  }
  void drop(rte_mbuf* m, Drop why) {
    rte_pktmbuf_free(m);
    ctr_.drops[static_cast<size_t>(why)].add();
  }
  struct RecentMisses;
  struct RecentRef {  // where upcall_allowed() found room for a first miss
    RecentMisses* set = nullptr;
    int way = 0;
    uint32_t hash = 0;
    uint64_t now = 0;
  };
  bool upcall_allowed(const flow::FlowKey& key, api::UpcallKind kind, RecentRef& rec);
  uint32_t random32() {
    rng_ ^= rng_ << 13;
    rng_ ^= rng_ >> 7;
    rng_ ^= rng_ << 17;
    return static_cast<uint32_t>(rng_ >> 11);
  }

  Datapath& dp_;
  const unsigned lcore_;
  const uint16_t index_;
  const bool is_control_;
  int rcu_slot_ = -1;
  int ct_slot_ = -1;                        // this context's slot in the tracker's QSBR
  int fw_ct_slot_ = -1;                     // ... and in the firewall tracker's
  fw::FwRateLimit fw_rate_;                 // the firewall's refusal events
  std::unique_ptr<uint8_t[]> ipf_scratch_;  // a reassembled datagram (ct_fragment)
  std::unique_ptr<ct::Completed> ipf_done_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> running_{false};
  std::atomic<const PmdRxConfig*> rx_cfg_{nullptr};
  std::unique_ptr<flow::Emc> emc_;
  // The EMC steps aside when it does not pay: over each window of kEmcWindow lookups, a
  // hit rate below 1/10 (many more microflows than entries, e.g. 100k connections: each
  // lookup a miss on an L2-cold bucket plus the classifier) turns it off; while off, one
  // batch in kEmcSample still looks up and inserts, and a window at 1/5 or more turns it
  // on again (the flows got fewer).
  static constexpr uint32_t kEmcWindow = 8192;
  static constexpr uint32_t kEmcSample = 16;
  uint32_t emc_win_lookups_ = 0;
  uint32_t emc_win_hits_ = 0;
  uint32_t emc_batches_ = 0;
  bool emc_bypass_ = false;
  // The EMC's hints (Pmd::classify_and_act) step aside too: a batch where its slot's hint
  // served fewer than a quarter of the packets (traffic spread over many megaflows, where
  // a failed compare per packet cost ~5% at 32 round-robin megaflows) skips the hint for
  // the next kHintBackoff batches of that slot.
  static constexpr uint8_t kHintBackoff = 16;
  uint8_t hint_skip_[flow::Emc::kHints] = {};
  // The EMC's sweep of dead flows and the PMD's quiescent state (Pmd::run): a slice of
  // 64 buckets (256 entries) per loop, at most one pass begun a millisecond.
  flow::EmcSweeper emc_sweep_{64, rte_get_tsc_hz() / 1000};
  uint32_t loops_ = 0;
  bool rerunning_ = false;  // rerun(): held misses, their from-VM firewall already passed
  std::atomic<uint32_t> emc_prob_req_;
  PmdCounters ctr_;
  std::unique_ptr<UpcallQueue> upcall_free_;  // control → PMD: empty slots
  std::unique_ptr<UpcallQueue> upcall_full_;  // PMD → control: filled slots
  std::unique_ptr<UpcallSlot[]> slots_;
  // Upcall token bucket (in TSC units).
  struct TokenBucket {
    uint64_t tokens = 0, last = 0, cost = 0, burst = 0;
    // Takes a token if more than `reserve` ticks' worth would be left.
    bool take(uint64_t now, uint64_t reserve = 0);
  };
  TokenBucket tb_;
  // Misses sent up lately (hash of the key, when), 4-way sets. While the miss hold is on,
  // a repeat of one of them within repeat_window_ is charged to its own bucket
  // (tb_repeat_, an eighth of tb_'s rate), and to tb_ only while tb_ is more than half
  // full: repeats of flows already with the handler (held by the control side, or sent
  // up when their flow does not come) must not use up the misses of new flows (a burst
  // of N new flows looping in the traffic otherwise reaches the handler at a rate
  // falling as 1 - seen/N: coupon collecting).
  struct alignas(64) RecentMisses {  // 4-way: keys that share a set do not evict each other
    uint32_t hash[4] = {};
    uint64_t tsc[4] = {};  // 0 = empty
  };
  static constexpr uint32_t kRecentSets = 4096;  // 16 384 misses, 256 KiB; touched on misses only
  std::unique_ptr<RecentMisses[]> recent_;
  std::atomic<uint64_t> repeat_window_{0};  // TSC ticks; 0 = off
  TokenBucket tb_repeat_;
  uint64_t rng_ = 0x9e3779b97f4a7c15ULL;
  uint64_t now_tsc_ = 0;
  RecircQueue* recirc_ = nullptr;  // queue of the pipeline level running now
  // Answers to packets rejected on their way to a VM (fw_reject), with the VM's port.
  rte_mbuf* fw_answers_[kBatch];
  uint32_t fw_answer_port_[kBatch];
  uint16_t n_fw_answers_ = 0;
  bool fw_draining_ = false;                // drain_fw_answers() runs: nothing more is answered
  std::unique_ptr<crypto::Worker> worker_;  // this thread's crypto context (ESP)
  std::unique_ptr<HandoffQueue> handoff_;   // EspHandoff entries other contexts queued to us
  bool in_handoff_ = false;                 // running handed-off packets: never hand on again
  EspPending esp_;
  flow::FlowKey no_key_{};       // key for the actions after an ESP action (outputs, recirc)
  PacketMd rx_md_[kBatch] = {};  // metadata of received packets (only in_port varies)
  uint32_t rx_md_port_ = 0;      // the in_port rx_md_ holds
  TxBuf tx_[kMaxPorts];
  uint16_t dirty_[2 * kMaxPorts];  // an underlay may be listed again while ESP ports flush
  uint16_t n_dirty_ = 0;
};

}  // namespace gl::dp
