// datapath.hpp — gldp's datapath: ports, flows, PMD threads, upcalls, ESP SAs.
//
// Purpose: the OVS datapath model on DPDK. The control thread (the dpapi server) calls
// the public methods to add ports and flows; PMD threads (pmd.hpp) poll rx queues and run
// parse → EMC → megaflow → actions → tx on batches. Misses and userspace() actions become
// upcalls queued per PMD and drained by the control thread. ESP security associations
// (sa_add/sa_del/sa_dump) are compiled into an immutable SaTables version per change.
// Thread-safety: every public method of Datapath is for the control thread only. PMDs
// read the port table, their rx assignment, the classifier and the SA tables through RCU
// (flow::Qsbr);
// they never take a lock and never wait for the control thread.
// Complexity: flow put/del O(1) amortised; port add/del waits for one grace period;
// SA add/del O(number of SAs) (the tables are rebuilt), never waits.
#pragma once

#include <rte_mempool.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <expected>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "crypto/sa.hpp"
#include "dataplane/api/wire.hpp"
#include "dataplane/conntrack/conntrack.hpp"
#include "dataplane/counters.hpp"
#include "dataplane/firewall/fw_events.hpp"
#include "dataplane/firewall/fw_tables.hpp"
#include "dataplane/miss_hold.hpp"
#include "dataplane/port.hpp"
#include "dataplane/ufid_map.hpp"
#include "flowtables/classifier.hpp"
#include "flowtables/flow_key.hpp"
#include "flowtables/packet_parser.hpp"
#include "flowtables/rcu.hpp"

namespace gl::dp {

inline constexpr uint32_t kMaxPmds = 16;
inline constexpr uint32_t kUpcallSlots = 1024;  // per PMD

class Pmd;

// ---- ESP security associations (see DESIGN.md "ESP in the datapath") ----------------

// One SA as the control thread keeps it: the crypto SA (which owns the expanded key) plus
// what the datapath adds. Freed only after the RCU grace period of the last SaTables
// version that referenced it; the crypto SA's destructor wipes its key, ours the keymat.
struct SaEntry {
  crypto::SaPtr sa;
  api::SaConfigWire cfg{};                 // as requested, backend resolved
  uint8_t keymat[api::kSaKeyMatLen] = {};  // for dump-sas --show-keys only
  uint64_t retire_tsc = 0;                 // non-zero: sa-del with a grace, due then
  ~SaEntry();
};

// Outbound: the SA a context uses for a group, with the underlay Ethernet header to put
// in front of its ESP packets.
struct EspOutSlot {
  crypto::Sa* sa = nullptr;
  uint32_t max_frame = UINT32_MAX;  // largest inner frame that fits the underlay MTU
  uint8_t eth[14] = {};
};
struct EspGroup {
  uint32_t id = 0;
  std::vector<EspOutSlot> slots;  // one per context: PMDs 0..n-1, then the control thread
};

// Immutable once published (RCU): built by the control thread on every SA change.
struct SaTables {
  std::vector<EspGroup> groups;          // sorted by id
  std::vector<crypto::SaTable> inbound;  // per context: the SPIs it may process
  crypto::SaTable inbound_all;           // every inbound SA (error path: wrong PMD)
  std::vector<uint64_t> inbound_owner;   // spi << 32 | context, for SAs of one context; sorted
  // SAs that ran out their lifetime (Datapath::retire_due_sas) and were not replaced, so
  // that their traffic counts as esp_sa_retired, not as a missing SA: outbound by
  // group << 32 | context (cleared when an SA comes for it), inbound by SPI; sorted.
  std::vector<uint64_t> retired_out;
  std::vector<uint32_t> retired_in;
  bool out_retired(uint32_t group, uint32_t ctx) const {
    return std::binary_search(retired_out.begin(), retired_out.end(), uint64_t{group} << 32 | ctx);
  }
  bool in_retired(uint32_t spi) const {
    return std::binary_search(retired_in.begin(), retired_in.end(), spi);
  }
  // The context an inbound SPI belongs to; kNoOwner for none or any.
  static constexpr uint32_t kNoOwner = UINT32_MAX;
  uint32_t owner(uint32_t spi) const {
    auto it = std::lower_bound(inbound_owner.begin(), inbound_owner.end(), uint64_t{spi} << 32);
    return it != inbound_owner.end() && (*it >> 32) == spi ? static_cast<uint32_t>(*it) : kNoOwner;
  }
  const EspGroup* group(uint32_t id) const {
    size_t lo = 0, hi = groups.size();
    while (lo < hi) {
      size_t mid = (lo + hi) / 2;
      if (groups[mid].id < id)
        lo = mid + 1;
      else
        hi = mid;
    }
    return lo < groups.size() && groups[lo].id == id ? &groups[lo] : nullptr;
  }
};

// The ct() actions of one action list, decoded once (at flow put, or per execute): the
// executor finds a ct() by the address of its netlink payload.
inline constexpr int kMaxCtPerActions = 4;
struct CtActions {
  int n = 0;
  const uint8_t* payload[kMaxCtPerActions] = {};
  ct::Action act[kMaxCtPerActions];
  const ct::Action* find(const uint8_t* p) const {
    for (int i = 0; i < n; ++i)
      if (payload[i] == p) return &act[i];
    return nullptr;
  }
};
// Decodes every ct() in an action list (nested in clone/sample too) into `out`, refusing
// what the tracker does not do yet (NAT, helpers, timeout policies) with a message naming
// it. The list must have passed odp::validate_actions.
std::expected<void, std::string> decode_ct_actions(std::span<const uint8_t> actions,
                                                   CtActions& out);

// Encoded actions of a flow: immutable once published, replaced as a whole on modify.
struct ActionsBlob {
  uint32_t len;
  int64_t only_output;  // the port when the actions are exactly one output, else -1
  uint16_t esp;         // first action when it is esp_encrypt/esp_decrypt, else 0
  uint32_t esp_group;   // esp_encrypt's group
  bool ct_first;        // the first action is ct(): the PMD runs it on a flow run at once
  int64_t ct_recirc;    // the actions are exactly ct(...),recirc(N): N, else -1
  CtActions ct;
  alignas(8) uint8_t data[];  // netlink-encoded OVS_ACTION_ATTR_*
  std::span<const uint8_t> span() const { return {data, len}; }
  static ActionsBlob* create(std::span<const uint8_t> bytes);
  static void destroy(const ActionsBlob* a);
};

// Per-PMD statistics of one flow; written only by that PMD.
struct alignas(64) FlowPmdStats {
  Counter packets;
  Counter bytes;
  Counter used_tsc;
  Counter tcp_flags;  // OR of the flags seen
};

// A megaflow. The classifier rule is the base so a lookup result is the flow itself.
struct Flow : flow::ClsRule {
  api::Ufid ufid{};
  std::atomic<const ActionsBlob*> actions{nullptr};
  uint32_t slot = 0;                          // position in the dump order
  std::unique_ptr<FlowPmdStats[]> pmd_stats;  // one per PMD (+1 for the control thread)
  api::FlowStats base{};                      // subtracted after a modify with kPutZeroStats
};

// One packet queued for the control side.
struct UpcallSlot {
  rte_mbuf* mbuf;
  flow::FlowKey key;
  uint8_t kind;  // api::UpcallKind
  uint16_t userdata_len;
  uint32_t pid;
  uint8_t userdata[api::kMaxUserdata];
};

struct alignas(64) PmdCounters {
  Counter packets, batches, busy_cycles, idle_cycles;
  Counter emc_hits, megaflow_hits, misses, upcalls, upcalls_lost, recirculations;
  Counter esp_fragmented;  // IPv4 frames without DF fragmented before encryption
  Counter esp_handoffs;    // ESP packets handed to the context that owns their SA
  Counter ct_reassembled;  // IP datagrams reassembled from fragments for ct()
  std::array<Counter, static_cast<size_t>(Drop::kCount)> drops;
  std::array<Counter, flow::kParseResultCount> parse;
};

struct DatapathOptions {
  std::vector<unsigned> pmd_lcores;  // one PMD thread per lcore
  unsigned n_mbufs = 32767;
  uint32_t upcall_rate = 200000;  // misses per second per PMD sent to the control side
  uint32_t emc_insert_inv_prob = 100;
  // Repeated misses of a key whose first miss is with the handler are held up to this
  // long instead of sent up again (miss_hold.hpp); 0 = off.
  uint32_t miss_hold_ms = 50;
  // Connection tracker: table slots (memory is backed as connections come; 192 bytes each
  // plus the index, sized for this capacity).
  uint32_t ct_capacity = 3000000;
  // Back the tracker's whole index at start (gldp does; tests leave it to first use).
  bool ct_populate_index = false;
  // The firewall's own tracker (workload ports' connections, zone = port number).
  uint32_t fw_ct_capacity = 1000000;
  // Where the names of the firewall's workload ports are kept across restarts (empty:
  // nowhere). A datapath created with such a file quarantines those ports (drop
  // fw_quarantine, both ways) until a firewall version binds them: a gldp started again
  // after a crash does not pass a workload's traffic before its policy is back.
  std::string fw_state_file;
};

class Datapath {
 public:
  static std::expected<std::unique_ptr<Datapath>, std::string> create(const DatapathOptions& o);
  ~Datapath();

  void start_pmds();
  void stop_pmds();
  // Context i: PMD i for i < n_pmds, the control context for i == n_pmds (tests drive the
  // ESP handoff of a PMD whose thread is not running through it).
  Pmd& context(size_t i) { return i < pmds_.size() ? *pmds_[i] : *control_; }

  // ---- ports ----
  std::expected<api::PortInfo, api::Error> port_add(const PortConfig& cfg);
  std::expected<void, api::Error> port_del(uint32_t port_no);
  std::expected<uint32_t, api::Error> port_by_name(const std::string& name) const;
  std::expected<api::PortInfo, api::Error> port_info(uint32_t port_no) const;
  // Sets the port's MTU (the device's; for tap and af_packet ports also the kernel
  // interface's). EINVAL outside 68..api::kMaxPortMtu, ENOTSUP when the device cannot.
  std::expected<api::PortInfo, api::Error> port_set_mtu(uint32_t port_no, uint16_t mtu);
  std::vector<api::PortInfo> port_list() const;
  size_t n_ports() const;

  // ---- flows ----
  api::EntryResult flow_put(const api::FlowPutEntry& e, std::span<const uint8_t> actions);
  api::EntryResult flow_del(const api::Ufid& ufid);
  const Flow* flow_find(const api::Ufid& ufid) const;
  api::FlowStats flow_stats(const Flow& f) const;
  // Calls fn for flows from `cursor` on until it returns false; returns the next cursor
  // (0 when the table is exhausted).
  uint64_t flow_dump(uint64_t cursor, const std::function<bool(const Flow&)>& fn) const;
  void flow_flush();
  size_t n_flows() const { return by_ufid_.size(); }

  // ---- execute (control thread: runs actions on a packet the client sent) ----
  std::expected<void, api::Error> execute(const flow::FlowKey& md, std::span<const uint8_t> acts,
                                          std::span<const uint8_t> packet);

  // Control thread: run packets through the pipeline as if received on `in_port` (tests;
  // the PMDs need not run). Takes ownership of the mbufs.
  void inject(uint32_t in_port, rte_mbuf** pkts, uint16_t n);

  // ---- upcalls ----
  // Calls fn for each queued upcall (at most `max`); the slot's mbuf is freed after fn.
  // Misses go through the miss hold first: repeats of a key already sent up are held and
  // later either run through the flow that appeared or passed to fn (see miss_hold.hpp).
  // Returns how many upcalls were taken from the queues.
  size_t drain_upcalls(size_t max, const std::function<void(const UpcallSlot&)>& fn);
  const MissHold& miss_hold() const { return hold_; }

  // ---- ESP security associations ----
  std::expected<void, api::Error> sa_add(const api::SaAddRequest& req);
  // grace_ms 0: now; else the SA works on and is removed that much later (housekeeping).
  std::expected<void, api::Error> sa_del(uint32_t spi, api::SaDir dir, uint32_t grace_ms = 0);
  // SAs from `cursor` on; fn returns false when the entry did not fit (resume there).
  // Returns the next cursor (0 when complete).
  uint64_t sa_dump(uint64_t cursor, bool keys,
                   const std::function<bool(const api::SaInfo&)>& fn) const;
  size_t n_sas() const { return sas_.size(); }
  // PMD side: the current SA tables (nullptr when there are no SAs).
  const SaTables* sa_tables() const { return sa_tables_.load(std::memory_order_acquire); }

  // ---- distributed firewall (dataplane/DESIGN.md, "The distributed firewall stage") ----
  // Control thread: publishes a new version (indexed, its ports' connection limits set in
  // the firewall's tracker); the old one is freed after a grace period. nullptr removes
  // the firewall from every port. Fails, changing nothing, on a port listed twice.
  std::expected<void, std::string> set_firewall(std::unique_ptr<fw::FwTables> t);
  // The workload ports the firewall state file named at start (quarantined until bound).
  size_t fw_state_loaded() const { return fw_state_loaded_; }
  // PMD side: the current version (nullptr: no workload port has a firewall).
  const fw::FwTables* firewall() const { return fw_tables_.load(std::memory_order_acquire); }
  // A port without a policy in the version in force whose name the version quarantines:
  // its traffic is dropped both ways (set before the port is published, by port_add).
  bool fw_quarantined(uint32_t port_no) const {
    return port_no < kMaxPorts && fw_quarantine_[port_no].load(std::memory_order_relaxed) != 0;
  }
  ct::Conntrack& fw_conntrack() { return *fw_ct_; }
  const ct::Conntrack& fw_conntrack() const { return *fw_ct_; }
  // Context ctx (a PMD's index, or the control thread's) reports an event: into its ring,
  // lost (counted) when the ring is full.
  void fw_event(unsigned ctx, const fw::FwEvent& e) { fw_rings_[ctx].push(e); }
  // Control thread: up to `max` of the oldest events not handed out yet (the rings
  // drained into a backlog of at most kFwBacklog first); lost: events dropped so far
  // (rings and backlog full), cumulative.
  static constexpr size_t kFwBacklog = 65536;
  void fw_events(size_t max, std::vector<fw::FwEvent>& out, uint64_t& lost);
  size_t fw_events_pending() const { return fw_backlog_.size(); }
  // Control thread: per rule id, {packets, bytes, conns} counted since gldp started, over
  // every version the rule was in (sorted by rule id; rule 0: the default actions).
  std::vector<std::pair<uint32_t, std::array<uint64_t, 3>>> fw_rule_stats() const;
  // Unix time (ms) of a tracker clock reading.
  uint64_t unix_ms(uint64_t ct_ms) const { return ct_ms + unix_offset_ms_; }

  // ---- stats, housekeeping ----
  void fill_stats(api::StatsReply& totals, std::vector<api::PmdStats>& pmds,
                  std::vector<api::DropCounter>& drops) const;
  void clear_stats();
  std::expected<void, api::Error> set_config(const std::string& key, const std::string& value);
  void housekeeping();  // RCU reclaim, classifier rerank; call every few ms
  uint64_t boot_id() const { return boot_id_; }
  const DatapathOptions& options() const { return opts_; }

  // ---- for PMD threads ----
  Port* port(uint32_t port_no) const {
    return port_no < kMaxPorts ? ports_[port_no].load(std::memory_order_acquire) : nullptr;
  }
  const flow::Classifier& classifier() const { return cls_; }
  flow::Qsbr& rcu() { return rcu_; }
  rte_mempool* pool() const { return pool_; }
  // The mbuf flag of packets that may leave only by an ESP (or a workload's) port.
  uint64_t must_encrypt_flag() const { return must_encrypt_; }
  // Bumped when flows die (after they are marked dead): PMDs sweep their EMCs.
  const std::atomic<uint64_t>& dead_epoch_counter() const { return dead_epoch_; }
  ct::Conntrack& conntrack() { return *ct_; }
  // Control thread: fn(conntrack) with the control context online in the tracker's QSBR, for
  // what reads connections that PMDs may free meanwhile (dump, flush, stats).
  template <typename Fn>
  decltype(auto) with_conntrack(Fn&& fn) {
    return with_tracker(false, std::forward<Fn>(fn));
  }
  // The same with the firewall's tracker when fw.
  template <typename Fn>
  decltype(auto) with_tracker(bool fw, Fn&& fn);
  // The control context's slot in a tracker (with_tracker).
  void ct_set_online(bool on, bool fw = false);
  const ct::Conntrack& conntrack() const { return *ct_; }
  // The tracker's clock (ms) from a TSC reading.
  uint64_t ct_now_ms(uint64_t tsc) const { return tsc / tsc_per_ms_; }

 private:
  Datapath();
  void rebalance_rxqs();  // assign every (port, queue) to a PMD and publish
  std::expected<api::PortInfo, api::Error> esp_port_add(const PortConfig& cfg, uint32_t no);
  bool esp_underlay_is(const Port& vp, const Port& up) const;  // vp's underlay names up
  void esp_attach(Port& vp, Port& up);                         // publishes up's new list
  api::PortInfo info_of(const Port& p) const;
  static constexpr uint32_t kEthLenForMtu = 14;
  void retire_flow(Flow* f);
  void publish_sa_tables();           // rebuilds SaTables from sas_ and swaps it in (RCU)
  void retire_due_sas(uint64_t now);  // removes SAs whose sa-del grace has run out
  size_t n_retiring_ = 0;
  // What SaTables::retired_out / retired_in publish: outbound (group << 32 | context)
  // until an SA comes for it, inbound SPIs; the last kMaxRetiredOut / kMaxRetiredIn of
  // them, oldest first (bounded whatever the control plane does).
  static constexpr size_t kMaxRetiredIn = 1024, kMaxRetiredOut = 4096;
  std::vector<uint64_t> retired_out_;
  std::vector<uint32_t> retired_in_;

  DatapathOptions opts_;
  rte_mempool* pool_ = nullptr;
  uint64_t must_encrypt_ = 0;
  flow::Qsbr rcu_;
  flow::Classifier cls_;
  std::array<std::atomic<Port*>, kMaxPorts> ports_{};
  std::array<std::atomic<uint8_t>, kMaxPorts> fw_quarantine_{};  // fw_quarantined()
  // Whether port `name` (number no) is quarantined by version t.
  static bool fw_quarantines(const fw::FwTables* t, uint32_t no, const std::string& name);
  std::vector<std::unique_ptr<Pmd>> pmds_;
  std::unique_ptr<Pmd> control_;  // the control thread's executor context (execute)

  UfidMap<Flow*> by_ufid_;
  std::vector<Flow*> slots_;  // dump order; nullptr = free
  std::vector<uint32_t> free_slots_;
  std::atomic<uint64_t> dead_epoch_{0};  // bumped when flows die: PMDs sweep their EMC
  std::vector<SaEntry*> sas_;            // control side, sorted by (dir, spi)
  std::atomic<const SaTables*> sa_tables_{nullptr};
  std::unique_ptr<ct::Conntrack> ct_;
  std::unique_ptr<ct::Conntrack> fw_ct_;  // the firewall's tracker
  std::atomic<const fw::FwTables*> fw_tables_{nullptr};
  std::unique_ptr<fw::EventRing[]> fw_rings_;  // one per context (PMDs, then control)
  unsigned n_contexts_ = 0;
  std::deque<fw::FwEvent> fw_backlog_;
  uint64_t fw_backlog_lost_ = 0;
  // Counts of versions no longer in force, per rule id (control thread).
  std::unordered_map<uint32_t, std::array<uint64_t, 3>> fw_rule_totals_;
  std::vector<const fw::FwTables*> fw_retired_;  // replaced, not folded into the totals yet
  void fw_fold_counters(const fw::FwTables& t);
  // The firewall state file (DatapathOptions::fw_state_file): the names of the version in
  // force's ports and quarantine, written when they change; removed with the firewall.
  void fw_state_save(const fw::FwTables* t);
  std::optional<std::vector<std::string>> fw_state_names_;  // as last written
  size_t fw_state_loaded_ = 0;
  void fw_on_end(unsigned ctx, const ct::Entry& e, bool expired, uint64_t now_ms);
  uint64_t unix_offset_ms_ = 0;
  uint64_t tsc_per_ms_ = 1;
  uint64_t boot_id_ = 0;
  uint64_t last_rerank_tsc_ = 0;
  MissHold hold_;
  uint64_t flows_added_ = 0, flows_added_swept_ = 0, last_sweep_tsc_ = 0;
  void configure_miss_hold(uint32_t ms);
  friend class Pmd;
};

}  // namespace gl::dp

template <typename Fn>
decltype(auto) gl::dp::Datapath::with_tracker(bool fw, Fn&& fn) {
  struct Online {
    Datapath& dp;
    bool fw;
    ~Online() { dp.ct_set_online(false, fw); }
  } on{*this, fw};
  ct_set_online(true, fw);
  return fn(fw ? *fw_ct_ : *ct_);
}
