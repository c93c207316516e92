// emc.hpp — per-PMD exact-match cache in front of the megaflow classifier.
//
// Purpose: remembers, per microflow (full packet key, identified by its 32-bit hash), the
// megaflow rule it matched, so that the common case costs one hash, one cache line and
// one masked compare instead of a tuple-space search. Insertion is probabilistic (1 in N,
// as OVS's emc-insert-inv-prob) so that a flood of short flows does not thrash it.
//
// Layout: 4-way buckets of one cache line each holding 4 (hash, rule) pairs — 8192
// entries take 128 KiB and stay in L2, where an entry holding the whole 136-byte key
// (three cache lines) did not. A hit is verified by matching the packet's key against
// the cached rule's masked key, not by comparing full keys (the design of OVS's
// signature-match cache). That returns a rule that matches the packet, which is exactly
// the classifier's contract when every rule has the same priority (datapath megaflows);
// it must not be used for rule sets where a higher-priority rule may overlap.
//
// Entries hold `const ClsRule*` without a reference: after rules are removed, the owner
// must sweep (sweep_dead(), or a whole pass of sweep_dead_slice()) before it declares a
// quiescent state that covers their removal (Qsbr::quiescent_as_of() of the epoch read
// when the pass began), so that no entry can point at a rule freed after the grace
// period. lookup() also ignores dead rules.
//
// Thread-safety: single-threaded, owned by one PMD. stats() may be read from any thread
// (the counters are atomics written with a relaxed load + store, never an RMW).
// Complexity: lookup/insert O(1) (one bucket, one masked compare per candidate);
// sweep_dead/clear O(entries); sweep_dead_slice O(n buckets).
#pragma once

#include <emmintrin.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "flowtables/classifier.hpp"
#include "flowtables/flow_key.hpp"
#include "flowtables/rcu.hpp"

namespace gl::flow {

struct EmcStats {
  uint64_t hits = 0;
  uint64_t misses = 0;   // includes entries found with a dead rule
  uint64_t inserts = 0;  // entries actually written (after the probability gate)
};

class Emc {
 public:
  static constexpr uint32_t kDefaultEntries = 8192;
  static constexpr uint32_t kDefaultInsertInverseProb = 100;

  // entries: a power of two >= 4 (fatal check); kWays entries share a bucket.
  explicit Emc(uint32_t entries = kDefaultEntries);
  Emc(const Emc&) = delete;
  Emc& operator=(const Emc&) = delete;

  // A live rule cached under `hash` that matches `key`, or nullptr; counted in stats().
  const ClsRule* lookup(const FlowKey& key, uint32_t hash) const {
    const ClsRule* r = find(key, hash);
    bump(r != nullptr ? hits_ : misses_);
    return r;
  }

  // lookup() without counting: a batch caller counts once with count().
  const ClsRule* find(const FlowKey& key, uint32_t hash) const {
    const Bucket& b = buckets_[hash & mask_];
    // The four ways' hashes compared at once: which way holds a flow is random per
    // packet, and a loop's branch on each way's hash mispredicted about once a packet.
    const __m128i eq = _mm_cmpeq_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(b.hash)),
                                       _mm_set1_epi32(static_cast<int>(hash)));
    for (unsigned m = static_cast<unsigned>(_mm_movemask_ps(_mm_castsi128_ps(eq))); m != 0;
         m &= m - 1) {
      const ClsRule* r = b.rule[__builtin_ctz(m)];
      if (r == nullptr || !r->matches(key)) continue;
      if (r->dead.load(std::memory_order_relaxed)) continue;
      return r;
    }
    return nullptr;
  }
  void count(uint64_t hits, uint64_t misses) const {
    add(hits_, hits);
    add(misses_, misses);
  }

  // Hints: per slot (the owner picks one per input port and pass), the rule the last
  // batch there matched. A batch tries it first: a packet it matches is served by one
  // masked compare, with no hash and no probe (a run of one megaflow's packets, the common
  // case behind a wildcarded megaflow). The same contract as entries: a rule that
  // matches, never a dead one at lookup time (the caller checks `dead` once per batch),
  // and swept with them (sweep_dead_slice() drops dead hints at every slice, so a pass
  // that covers the cache covers the hints).
  static constexpr uint32_t kHints = 64;
  const ClsRule* hint(uint32_t slot) const { return hints_[slot % kHints]; }
  void set_hint(uint32_t slot, const ClsRule* r) { hints_[slot % kHints] = r; }

  // Prefetches the bucket of `hash` (for the two-phase batch loop: hash and prefetch the
  // batch, then look up).
  [[gnu::always_inline]] void prefetch(uint32_t hash) const {
    __builtin_prefetch(&buckets_[hash & mask_]);
  }

  // Caches key -> rule with probability 1/inverse_prob. An entry for the same key is
  // updated in place; otherwise an empty or dead slot is used, else the candidate with
  // the lower hash is replaced.
  void insert(const FlowKey& key, uint32_t hash, const ClsRule* rule);

  // 0 = never insert, 1 = always, N = one in N (default 100).
  void set_insert_inverse_prob(uint32_t inverse_prob);
  uint32_t insert_inverse_prob() const { return inverse_prob_; }
  // Reseeds the insertion PRNG (tests).
  void seed(uint32_t s) { rng_ = s != 0 ? s : 1; }

  // Drops every entry whose rule is dead. Call after removals, before quiescing.
  void sweep_dead();
  // The same a slice at a time (a PMD spreads a pass over its loop iterations): drops the
  // dead entries of buckets [pos, pos + n) and advances pos; true when that reached the
  // last bucket (pos is 0 again, ready for the next pass).
  bool sweep_dead_slice(uint32_t& pos, uint32_t n);
  uint32_t buckets() const { return mask_ + 1; }
  // Drops every entry.
  void clear();

  uint32_t capacity() const { return (mask_ + 1) * kWays; }
  EmcStats stats() const {
    return {hits_.load(std::memory_order_relaxed), misses_.load(std::memory_order_relaxed),
            inserts_.load(std::memory_order_relaxed)};
  }

 private:
  static constexpr int kWays = 4;
  struct alignas(64) Bucket {
    uint32_t hash[kWays] = {};
    const ClsRule* rule[kWays] = {};  // nullptr = empty
  };
  static_assert(sizeof(Bucket) == 64);

  static void bump(std::atomic<uint64_t>& c) { add(c, 1); }
  static void add(std::atomic<uint64_t>& c, uint64_t n) {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  uint32_t next_random() {  // xorshift32
    rng_ ^= rng_ << 13;
    rng_ ^= rng_ >> 17;
    rng_ ^= rng_ << 5;
    return rng_;
  }

  std::unique_ptr<Bucket[]> buckets_;
  const ClsRule* hints_[kHints] = {};
  uint32_t mask_;  // buckets - 1
  uint32_t inverse_prob_ = kDefaultInsertInverseProb;
  uint32_t threshold_;  // insert when next_random() <= threshold_ (and inverse_prob_ != 0)
  uint32_t rng_ = 0x9e3779b9u;
  mutable std::atomic<uint64_t> hits_{0};
  mutable std::atomic<uint64_t> misses_{0};
  std::atomic<uint64_t> inserts_{0};
};

// The owner's side of that protocol, run at the end of each batch (a PMD's loop): when
// rules died (the writer marks them dead, then bumps `dead_epoch`, then retires them
// under RCU), sweeps the EMC a slice per batch (a walk of the whole cache at once stalls
// the owner for tens of microseconds, at every delete of a storm) and reports a quiescent
// state as of the epoch read when the pass began, once the pass has covered the cache;
// otherwise reports one as of the epoch read now. A pass begins at most once per `gap`
// (in the unit of `now`): during a storm of deletes, one walk per gap, spread over batches.
// The RCU epoch is read before the dead epoch: a rule whose grace period began before the
// epoch read was marked dead and counted before it, so the dead epoch read next shows it
// (the other way round, a rule retired between the two reads was missed by both, and
// freed while an entry still pointed at it).
// Thread-safety: the owner's thread only. Complexity: O(slice buckets) per batch in a pass.
class EmcSweeper {
 public:
  EmcSweeper(uint32_t slice_buckets, uint64_t gap) : slice_(slice_buckets), gap_(gap) {}
  void end_batch(Emc& emc, Qsbr& rcu, int slot, const std::atomic<uint64_t>& dead_epoch,
                 uint64_t now) {
    const uint64_t qe = rcu.epoch();
    const uint64_t de = dead_epoch.load(std::memory_order_acquire);
    if (!pass_ && de != seen_dead_ && now - last_start_ >= gap_) {
      pass_ = true;
      pos_ = 0;
      pass_dead_ = de;
      pass_rcu_ = qe;
      last_start_ = now;
    }
    if (pass_) {
      if (emc.sweep_dead_slice(pos_, slice_)) {
        pass_ = false;
        seen_dead_ = pass_dead_;
        rcu.quiescent_as_of(slot, pass_rcu_);
        ++passes_;
      }
    } else if (de == seen_dead_) {
      rcu.quiescent_as_of(slot, qe);
    }
  }
  bool in_pass() const { return pass_; }
  uint64_t passes() const { return passes_; }

 private:
  const uint32_t slice_;
  const uint64_t gap_;
  uint64_t seen_dead_ = 0;   // rules dead as of this dead epoch are swept
  bool pass_ = false;        // a pass is under way
  uint32_t pos_ = 0;         // its next bucket
  uint64_t pass_dead_ = 0;   // the dead epoch when it began
  uint64_t pass_rcu_ = 0;    // the RCU epoch when it began
  uint64_t last_start_ = 0;  // `now` when it began
  uint64_t passes_ = 0;
};

}  // namespace gl::flow
