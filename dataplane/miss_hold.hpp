// miss_hold.hpp — holds repeated misses of a flow while its first miss is with the handler.
//
// Purpose: with an asynchronous upcall path (gldp → dpapi → ovs-vswitchd's handler →
// flow put), every packet of a new flow that arrives before its megaflow is installed
// misses again. Sent up, each of those costs the handler a whole translation and an
// execute for a flow it has just set up; under a burst of new flows the handler then
// spends most of its time on duplicates (measured: 4-7 upcalls per new megaflow through
// OVS). MissHold sits between the PMDs' upcall queues and the upcall delivery (control
// thread): the first miss of an exact key goes up; later misses of that key are held,
// not sent, for up to `window`, and then
//   * run through the pipeline again once a flow for them exists (they take the new
//     flow's actions, in arrival order, and count in its stats), or
//   * sent up as ordinary upcalls when the window ran out with no flow (the handler did
//     not install one: slow path, flow limit, refused mask). While the handler keeps
//     installing flows (note_progress), a window runs on, up to `max_window`: a burst of
//     new flows can leave the handler a backlog longer than `window`, and sending the
//     tail's repeats up then would only add duplicates to that backlog (measured: 20 000
//     sent up and 78 000 upcalls for 9 000 new flows, 6x slower). The key is then "uncached"
//     for `uncached_for`, and its misses go straight up meanwhile, so a flow that never
//     gets a megaflow pays the window once, not on every packet.
// Nothing is dropped: a key that holds `per_key` packets, or a table at `max_held`
// packets or `max_keys` keys, sends further misses up as before. The packets are opaque
// here (rte_mbuf*, never dereferenced), time is a caller-supplied tick count: the class
// is tested without DPDK (test/unit/dataplane/miss_hold_test.cpp).
//
// Thread-safety: control thread only. Complexity: on_miss O(1) expected (hash of the
// key); sweep O(budget) lookups through the caller's has_flow.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <span>
#include <unordered_map>
#include <vector>

#include "flowtables/flow_key.hpp"

struct rte_mbuf;

namespace gl::dp {

class MissHold {
 public:
  struct Config {
    uint64_t window = 0;        // ticks a miss may be held; 0 = holding off
    uint64_t uncached_for = 0;  // ticks a key whose window ran out is not held again
    // Held packets run only at a sweep at least this long after the one that first found
    // their flow: the handler's execute of the first packet, which follows its flow put,
    // goes out before them (no reordering of a new flow's first packets).
    uint64_t settle = 0;
    uint32_t per_key = 32;      // packets held per key
    uint32_t max_held = 8192;   // packets held in all
    uint32_t max_keys = 16384;  // keys tracked
    // A window runs on past `window` while flows were installed within the last `window`
    // (note_progress), up to this many ticks; 0 (or <= window): never extended.
    uint64_t max_window = 0;
  };
  struct Counters {
    uint64_t held = 0;      // misses held instead of sent up
    uint64_t run = 0;       // held packets run through a flow that appeared
    uint64_t sent_up = 0;   // held packets sent up when the window ran out
    uint64_t overflow = 0;  // misses sent up because a limit was reached
  };
  using Packets = std::span<rte_mbuf* const>;

  MissHold() = default;
  MissHold(const MissHold&) = delete;
  MissHold& operator=(const MissHold&) = delete;
  // Held packets must have been released (release_all) before destruction.
  ~MissHold() = default;

  void configure(const Config& c) { cfg_ = c; }
  const Config& config() const { return cfg_; }
  bool enabled() const { return cfg_.window != 0; }
  // A flow was installed at tick `now`: the handler is making progress.
  void note_progress(uint64_t now) { progress_ = now; }

  // A miss of `key` (packet `pkt`) at tick `now`. Returns true when the packet is held
  // (MissHold owns it now); false when it must be sent up as usual: the first miss of
  // the key (which starts its window), an uncached key, holding off, or a limit reached.
  bool on_miss(const flow::FlowKey& key, rte_mbuf* pkt, uint64_t now);

  // Visits up to `budget` tracked keys, oldest first. A key for which has_flow(key) is
  // true (at this sweep and at one at least `settle` earlier) releases its held packets
  // to run(key, packets) and is forgotten; a key whose
  // window has run out releases them to send_up(key, packets), becomes uncached, and is
  // forgotten once that period ends; others are visited again later.
  void sweep(uint64_t now, size_t budget, const std::function<bool(const flow::FlowKey&)>& has_flow,
             const std::function<void(const flow::FlowKey&, Packets)>& run,
             const std::function<void(const flow::FlowKey&, Packets)>& send_up);

  // Releases every held packet to send_up and forgets every key (shutdown). Switching
  // holding off (window 0) instead lets the next sweeps send the held packets up.
  void release_all(const std::function<void(const flow::FlowKey&, Packets)>& send_up);

  size_t n_keys() const { return keys_.size(); }
  size_t n_held() const { return n_held_; }
  const Counters& counters() const { return ctr_; }
  void clear_counters() { ctr_ = {}; }

 private:
  struct KeyHash {
    size_t operator()(const flow::FlowKey& k) const { return flow::hash_key(k); }
  };
  struct Entry {
    uint64_t first = 0;           // tick of the miss that went up
    uint64_t uncached_until = 0;  // non-zero: not held until then
    uint64_t flow_seen = 0;       // non-zero: tick of the sweep that first found the flow
    std::vector<rte_mbuf*> held;
  };
  using Map = std::unordered_map<flow::FlowKey, Entry, KeyHash>;
  bool window_over(const Entry& e, uint64_t now) const {
    const uint64_t age = now - e.first;
    if (age < cfg_.window) return false;
    if (cfg_.max_window <= cfg_.window || age >= cfg_.max_window) return true;
    return now - progress_ >= cfg_.window;  // no flow installed for a whole window
  }

  Config cfg_;
  Map keys_;
  // Every tracked key once, oldest first (rotating). Pointers to the map's nodes stay
  // valid across rehashing, iterators would not.
  std::deque<Map::value_type*> order_;
  size_t n_held_ = 0;
  uint64_t progress_ = 0;  // tick of the last flow installed (note_progress)
  Counters ctr_;
};

}  // namespace gl::dp
