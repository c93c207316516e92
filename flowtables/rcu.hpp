// rcu.hpp — quiescent-state-based reclamation (QSBR) for tables that PMD threads read.
//
// Purpose: lets one control thread unlink an object from a structure that reader threads
// (PMDs, and the control thread when it looks up) traverse without locks, and free it
// once every reader has passed a quiescent state after the unlink. Readers never wait;
// only the writer side waits (synchronize) or polls (grace_done / reclaim).
//
//   writer:  unlink X (release store); rcu.defer([X] { delete X; });  ... rcu.reclaim();
//   reader:  slot = rcu.register_reader();  loop { lookups...; rcu.quiescent(slot); }
//
// A reader holds no reference across quiescent(); between offline() and online() it
// holds none at all (use that around anything that may block).
//
// Thread-safety:
//   register_reader / unregister_reader: any thread, lock-free (slot claim by CAS).
//   quiescent / offline / online: only the thread that owns the slot.
//   start_grace / grace_done: any thread. synchronize: control side only (it sleeps),
//     never from a thread whose own slot is online (it would wait for itself).
//   defer / reclaim / pending: control side; serialised internally by a mutex that no
//     reader ever takes. Deferred callbacks run on the thread calling reclaim().
// Complexity: quiescent/offline O(1) (one load + one store on the reader's own cache
// line; online adds a fence); grace_done/reclaim O(registered readers + callbacks run).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>

namespace gl::flow {

class Qsbr {
 public:
  // Readers that may be registered at the same time.
  static constexpr int kMaxReaders = 64;

  Qsbr() = default;
  // Runs every callback still deferred: destroy only when no reader can hold a reference.
  ~Qsbr();
  Qsbr(const Qsbr&) = delete;
  Qsbr& operator=(const Qsbr&) = delete;

  // Claims a reader slot; the reader starts online. Returns the slot, or -1 when all
  // kMaxReaders slots are taken.
  int register_reader();
  // Releases a slot (the reader goes offline first). The thread must hold no reference.
  void unregister_reader(int slot);

  // Reader: "I hold no reference now". Call between batches. Never blocks.
  // (The epoch load is an acquire so that the reader's later loads see every unlink the
  // writer made before the grace period it reports; on x86 it is a plain mov.)
  void quiescent(int slot) {
    slots_[slot].seen.store(epoch_.load(std::memory_order_acquire), std::memory_order_release);
  }
  // Reader: "I hold no reference to anything retired before I read `epoch` (epoch())":
  // a quiescent state that took a while to reach, e.g. a cache of references swept a
  // slice per batch since then. `epoch` must not be older than the last one reported.
  void quiescent_as_of(int slot, uint64_t epoch) {
    slots_[slot].seen.store(epoch, std::memory_order_release);
  }
  // The epoch now, for quiescent_as_of() (acquire: what was retired before it is seen
  // unlinked by the reader's later loads).
  uint64_t epoch() const { return epoch_.load(std::memory_order_acquire); }
  // Reader: extended quiescent state (before blocking, sleeping, or a long idle spell).
  void offline(int slot) { slots_[slot].seen.store(kOffline, std::memory_order_release); }
  // Reader: leave the extended quiescent state; references may be taken after it returns.
  void online(int slot) {
    slots_[slot].seen.store(epoch_.load(std::memory_order_acquire), std::memory_order_relaxed);
    // Store-load ordering against min_seen(): both sides do a read-modify-write of sync_.
    // Whichever comes second in sync_'s order synchronizes with the first: either the
    // writer sees us online, or we see its unlinks. (A fence on each side would do on the
    // hardware; ThreadSanitizer does not model fences, and this needs no #if for it.
    // online() is rare: not on a PMD's per-batch path.)
    sync_.fetch_add(1, std::memory_order_seq_cst);
  }

  // Writer: starts a grace period after the caller's unlinks; returns its token.
  uint64_t start_grace() { return epoch_.fetch_add(1, std::memory_order_seq_cst) + 1; }
  // True once every reader online at start_grace() has since been quiescent or offline.
  bool grace_done(uint64_t token) const { return min_seen() >= token; }
  // Writer: waits (sleeping briefly) until a grace period started now has ended.
  void synchronize();

  // Writer: runs fn after a grace period that starts now (after the caller's unlinks).
  void defer(std::function<void()> fn);
  // Writer: runs the deferred callbacks whose grace period is over; returns how many ran.
  size_t reclaim();
  // Callbacks still waiting for their grace period.
  size_t pending() const;

 private:
  static constexpr uint64_t kOffline = UINT64_MAX;

  struct alignas(64) Slot {
    std::atomic<uint64_t> seen{kOffline};  // epoch seen at the last quiescent state
    std::atomic<bool> in_use{false};
  };
  struct Deferred {
    uint64_t token;
    std::function<void()> fn;
  };

  // Smallest epoch seen by an online reader (kOffline when none is online).
  uint64_t min_seen() const;

  alignas(64) std::atomic<uint64_t> epoch_{1};
  std::atomic<int> high_water_{0};                     // slots [0, high_water_) may be in use
  alignas(64) mutable std::atomic<uint64_t> sync_{0};  // online() <-> min_seen() ordering
  Slot slots_[kMaxReaders];

  mutable std::mutex deferred_mu_;  // control side only
  std::deque<Deferred> deferred_;
};

}  // namespace gl::flow
