// classifier.hpp — tuple-space megaflow classifier with priorities (the model of OVS's
// dpif-netdev dpcls, plus lib/classifier's priorities).
//
// Purpose: maps a packet's FlowKey to the highest-priority rule (key, mask, priority)
// that matches it. One subtable per distinct mask; each subtable is an RCU-safe hash
// table keyed by the hash of the masked words its mask uses, with a lookup function
// specialised by the number of those words. Subtables are searched in the order of one
// immutable vector (max priority descending, then hits since the last rerank), and the
// search stops as soon as no later subtable can hold a better rule. Rationale: DESIGN.md.
//
// Rules are intrusive and owned by the caller: the datapath embeds a ClsRule in its flow
// object (derive from it), inserts it, and after remove() frees it only after an RCU
// grace period (Qsbr::defer). key/mask/priority must not change while inserted; a
// removed rule may be inserted again only after a grace period.
//
// Thread-safety:
//   writer side (insert, remove, rerank): one thread at a time; the caller serialises.
//   reader side (lookup, lookup_batch): any number of threads registered with the Qsbr
//     given to the constructor, concurrently with the writer; lock-free, wait-free, no
//     allocation, syscall or exception. A reader sees each insert/remove atomically and
//     may return a rule removed during its lookup (it is freed only after a grace period).
//   size, subtable_count: any thread (relaxed counters).
//   The destructor frees subtables directly: no reader may be inside a lookup then.
// Complexity: insert/remove O(1) amortised (+O(subtables) when a subtable appears or
//   disappears, or its max priority changes); lookup O(subtables searched) with one
//   hash and usually one bucket cache line per subtable; rerank O(subtables log subtables).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <unordered_map>

#include "flowtables/flow_key.hpp"
#include "flowtables/rcu.hpp"

namespace gl::flow {

class Classifier;
namespace cls_detail {
struct Subtable;
}

struct ClsRule {
  FlowKey key{};  // stored masked (insert() masks it)
  FlowMask mask{};
  int32_t priority = 0;
  std::atomic<bool> dead{false};  // set by remove(); readers (the EMC) check it
  uint32_t word_map = 0;          // mask_word_map(mask), set by insert()
  // The same words as a list (set by insert()): the EMC's verification loads them with no
  // dependency between iterations (a bit-scan loop chains them: ~5 cycles a word).
  uint8_t n_words = 0;
  uint8_t words[FlowKey::kWords] = {};
  // For rules of at most kQuickWords words (datapath megaflows usually have 1-4): their
  // mask words and masked key words side by side in one cache line (n_words and the word
  // indexes sit in the lines next to it), unused slots zero (they match anything), so
  // that matches() is a fixed sequence without a loop.
  static constexpr unsigned kQuickWords = 4;
  struct alignas(64) Quick {
    uint64_t mask[kQuickWords];
    uint64_t key[kQuickWords];
  };
  Quick quick{};
  uint8_t quick_idx[kQuickWords] = {};

  ClsRule() = default;
  ClsRule(const ClsRule&) = delete;
  // Sets word_map, words and quick from mask and key (insert() does; an EMC user of a rule
  // that is not in a classifier must).
  void index_mask() {
    word_map = mask_word_map(mask);
    n_words = 0;
    for (uint32_t w = word_map; w != 0; w &= w - 1)
      words[n_words++] = static_cast<uint8_t>(__builtin_ctz(w));
    quick = Quick{};
    for (unsigned j = 0; j < kQuickWords; ++j) quick_idx[j] = 0;
    for (unsigned j = 0; j < n_words && j < kQuickWords; ++j) {
      const unsigned w = words[j];
      quick_idx[j] = static_cast<uint8_t>(w);
      quick.mask[j] = mask.words()[w];
      quick.key[j] = key.words()[w] & mask.words()[w];
    }
  }
  // True when (pkt & mask) == key, reading only the words the mask uses.
  bool matches(const FlowKey& pkt) const {
    if (n_words > kQuickWords) [[unlikely]]
      return key_matches_list(pkt, key, mask, words, n_words);
    const AliasU64* p = pkt.words();
    return (((p[quick_idx[0]] & quick.mask[0]) ^ quick.key[0]) |
            ((p[quick_idx[1]] & quick.mask[1]) ^ quick.key[1]) |
            ((p[quick_idx[2]] & quick.mask[2]) ^ quick.key[2]) |
            ((p[quick_idx[3]] & quick.mask[3]) ^ quick.key[3])) == 0;
  }
  ClsRule& operator=(const ClsRule&) = delete;

 private:
  friend class Classifier;
  // Writer side only (readers never follow these).
  std::atomic<ClsRule*> next_{nullptr};       // lower-or-equal priority rules, same masked key
  cls_detail::Subtable* subtable_ = nullptr;  // non-null while inserted
  uint32_t hash_ = 0;                         // hash of the masked words
};

class Classifier {
 public:
  // Largest batch that lookup_batch() takes.
  static constexpr uint32_t kMaxBatch = 32;

  // rcu: the readers of this classifier register there; old tables, subtable vectors and
  // empty subtables are freed through rcu.defer(). rcu must outlive the classifier.
  explicit Classifier(Qsbr& rcu);
  ~Classifier();
  Classifier(const Classifier&) = delete;
  Classifier& operator=(const Classifier&) = delete;

  // Writer side. Masks rule->key with rule->mask, clears rule->dead and publishes the
  // rule; creates a subtable for a new mask. The rule must not be inserted already.
  void insert(ClsRule* rule);
  // Writer side. Unlinks the rule and sets rule->dead. The caller frees the rule after a
  // grace period (e.g. rcu.defer). Removing the last rule of a subtable retires it.
  void remove(ClsRule* rule);
  // Number of rules inserted; number of subtables (distinct masks).
  size_t size() const { return n_rules_.load(std::memory_order_relaxed); }
  size_t subtable_count() const { return n_subtables_.load(std::memory_order_relaxed); }
  // Writer side. Re-sorts the subtables by the hits each got since the last rerank
  // (within equal max priority) and publishes the new order. Call periodically.
  void rerank();

  // Reader side. Returns a matching rule of the highest priority, or nullptr.
  const ClsRule* lookup(const FlowKey& pkt) const;
  // Reader side. n <= kMaxBatch. out[i] = best rule for *pkts[i] or nullptr. Returns the
  // bitmap of misses (bit i set when out[i] == nullptr).
  uint32_t lookup_batch(const FlowKey* const* pkts, uint32_t n, const ClsRule** out) const;

 private:
  struct SubtableVec;
  struct MaskHash {
    size_t operator()(const FlowMask& m) const { return hash_key(m); }
  };

  cls_detail::Subtable* find_or_create_subtable(const FlowMask& mask, bool* created);
  void publish_vec();  // builds, sorts and publishes the subtable vector

  Qsbr& rcu_;
  std::atomic<const SubtableVec*> vec_;
  std::unordered_map<FlowMask, cls_detail::Subtable*, MaskHash> subtables_;  // writer side
  std::atomic<size_t> n_rules_{0};
  std::atomic<size_t> n_subtables_{0};
};

}  // namespace gl::flow
