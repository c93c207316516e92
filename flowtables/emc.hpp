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
// Entries hold `const ClsRule*` without a reference: the owner must call sweep_dead()
// after rules are removed and before declaring a quiescent state, so that no entry can
// point at a rule freed after the grace period. lookup() also ignores dead rules.
//
// Thread-safety: single-threaded, owned by one PMD. stats() may be read from any thread
// (the counters are atomics written with a relaxed load + store, never an RMW).
// Complexity: lookup/insert O(1) (one bucket, one masked compare per candidate);
// sweep_dead/clear O(entries).
#pragma once

#include <emmintrin.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "flowtables/classifier.hpp"
#include "flowtables/flow_key.hpp"

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
  uint32_t mask_;  // buckets - 1
  uint32_t inverse_prob_ = kDefaultInsertInverseProb;
  uint32_t threshold_;  // insert when next_random() <= threshold_ (and inverse_prob_ != 0)
  uint32_t rng_ = 0x9e3779b9u;
  mutable std::atomic<uint64_t> hits_{0};
  mutable std::atomic<uint64_t> misses_{0};
  std::atomic<uint64_t> inserts_{0};
};

}  // namespace gl::flow
