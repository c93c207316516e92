// emc.hpp — per-PMD exact-match cache in front of the megaflow classifier.
//
// Purpose: remembers, for recently seen full flow keys, the classifier rule they matched,
// so that the common case costs one hash (computed by the parser) and one key compare
// instead of a tuple-space search. 2-way set associative: a key may live in one of two
// slots derived from its hash. Insertion is probabilistic (1 in N, as OVS's
// emc-insert-inv-prob) so that a flood of short flows does not thrash the cache.
// Entries hold `const ClsRule*` without a reference: the owner must call sweep_dead()
// after rules are removed and before declaring a quiescent state, so that no entry can
// point at a rule freed after the grace period. lookup() also ignores dead rules.
//
// Thread-safety: single-threaded, owned by one PMD. stats() may be read from any thread
// (the counters are atomics written with a relaxed load + store, never an RMW).
// Complexity: lookup/insert O(1) (two slots, one FlowKey compare); sweep_dead/clear
// O(entries).
#pragma once

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

  // entries: a power of two >= 2 (fatal check).
  explicit Emc(uint32_t entries = kDefaultEntries);
  Emc(const Emc&) = delete;
  Emc& operator=(const Emc&) = delete;

  // The rule cached for `key` (whose hash_key() is `hash`), or nullptr on a miss or when
  // the cached rule is dead.
  const ClsRule* lookup(const FlowKey& key, uint32_t hash) const {
    const Entry* cand[2] = {&entries_[hash & mask_], &entries_[alt_index(hash)]};
    for (const Entry* e : cand) {
      if (e->hash != hash || e->rule == nullptr || !keys_equal(e->key, key)) continue;
      if (e->rule->dead.load(std::memory_order_relaxed)) break;
      bump(hits_);
      return e->rule;
    }
    bump(misses_);
    return nullptr;
  }

  // Prefetches the primary slot of `hash` (for the two-phase batch loop).
  void prefetch(uint32_t hash) const { __builtin_prefetch(&entries_[hash & mask_]); }

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

  uint32_t capacity() const { return mask_ + 1; }
  EmcStats stats() const {
    return {hits_.load(std::memory_order_relaxed), misses_.load(std::memory_order_relaxed),
            inserts_.load(std::memory_order_relaxed)};
  }

 private:
  // Hot words first: a miss usually reads only the first cache line of an entry.
  struct alignas(64) Entry {
    uint32_t hash = 0;
    const ClsRule* rule = nullptr;  // nullptr = empty
    FlowKey key{};
  };

  uint32_t alt_index(uint32_t hash) const {
    uint32_t i = (hash >> shift_) & mask_;
    return i != (hash & mask_) ? i : i ^ 1u;
  }
  static bool keys_equal(const FlowKey& a, const FlowKey& b) {
    const AliasU64* x = a.words();
    const AliasU64* y = b.words();
    uint64_t diff = 0;
    for (size_t i = 0; i < FlowKey::kWords; ++i) diff |= x[i] ^ y[i];
    return diff == 0;
  }
  static void bump(std::atomic<uint64_t>& c) {
    c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  uint32_t next_random() {  // xorshift32
    rng_ ^= rng_ << 13;
    rng_ ^= rng_ >> 17;
    rng_ ^= rng_ << 5;
    return rng_;
  }

  std::unique_ptr<Entry[]> entries_;
  uint32_t mask_;
  uint32_t shift_;
  uint32_t inverse_prob_ = kDefaultInsertInverseProb;
  uint32_t threshold_;  // insert when next_random() <= threshold_ (and inverse_prob_ != 0)
  uint32_t rng_ = 0x9e3779b9u;
  mutable std::atomic<uint64_t> hits_{0};
  mutable std::atomic<uint64_t> misses_{0};
  std::atomic<uint64_t> inserts_{0};
};

}  // namespace gl::flow
