#include "flowtables/classifier.hpp"

#include <algorithm>
#include <bit>
#include <cassert>
#include <climits>
#include <map>
#include <vector>

namespace gl::flow {
namespace cls_detail {

// ---- hash table ------------------------------------------------------------------------
//
// A bucket is one cache line with kSlots (hash, rule) entries. An entry lives in its
// primary bucket (hash & mask) or, when that was full at insert time, in its secondary
// bucket (alt_hash(hash) & mask); the primary then counts it in `overflow`, so a lookup
// reads the secondary only when overflow != 0. Entries never move while published:
// growth builds a whole new table and publishes it. One entry per distinct masked key;
// rules with an equal masked key hang off the entry's rule in priority order (next_).

constexpr uint32_t kSlots = 5;
constexpr uint32_t kMaxLoadPerBucket = 2;  // grow beyond 2 entries per bucket on average

struct alignas(64) Bucket {
  std::atomic<uint32_t> hash[kSlots];
  std::atomic<uint32_t> overflow;  // entries of this primary bucket stored in their secondary
  std::atomic<const ClsRule*> rule[kSlots];  // nullptr = empty slot
};
static_assert(sizeof(Bucket) == 64);

inline uint32_t alt_hash(uint32_t h) {
  return hash_finish(h ^ 0x2545f491u);
}

struct Table {
  explicit Table(uint32_t n_buckets) : mask(n_buckets - 1), buckets(new Bucket[n_buckets]) {}
  ~Table() { delete[] buckets; }
  Table(const Table&) = delete;
  Table& operator=(const Table&) = delete;

  uint32_t n_buckets() const { return mask + 1; }

  const uint32_t mask;
  Bucket* const buckets;
};

// ---- subtable --------------------------------------------------------------------------

using LookupOneFn = const ClsRule* (*)(const Subtable&, const FlowKey&);
using LookupBatchFn = uint32_t (*)(const Subtable&, const FlowKey* const*, uint32_t,
                                   const ClsRule**);

// Hit counters: one cache line per reader thread slot, written by that thread only (a
// relaxed load + store, no RMW); more threads than slots share lines and may lose counts,
// which only makes the ranking approximate.
constexpr int kHitSlots = 16;
struct alignas(64) HitCounter {
  std::atomic<uint64_t> n{0};
};

inline int hit_slot() {
  static std::atomic<int> next{0};
  static thread_local const int slot = next.fetch_add(1, std::memory_order_relaxed) % kHitSlots;
  return slot;
}

struct Subtable {
  explicit Subtable(const FlowMask& m);
  ~Subtable() { delete table.load(std::memory_order_relaxed); }

  void add_hits(uint64_t n) const {
    std::atomic<uint64_t>& c = hits[hit_slot()].n;
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  uint64_t total_hits() const {
    uint64_t sum = 0;
    for (const HitCounter& h : hits) sum += h.n.load(std::memory_order_relaxed);
    return sum;
  }
  int32_t max_priority() const {
    return prio_count.empty() ? INT32_MIN : prio_count.rbegin()->first;
  }

  // Read by lookups.
  std::atomic<Table*> table{nullptr};
  LookupOneFn lookup_one = nullptr;
  LookupBatchFn lookup_batch = nullptr;
  uint32_t n_words = 0;
  uint32_t basis = 0;
  uint8_t idx[FlowKey::kWords] = {};  // the words the mask uses, ascending
  uint64_t mw[FlowKey::kWords] = {};  // their mask values
  mutable HitCounter hits[kHitSlots];

  // Writer side.
  FlowMask mask;
  size_t n_rules = 0;    // rules, including equal-key ones
  size_t n_entries = 0;  // distinct masked keys (hash table entries)
  std::map<int32_t, uint32_t> prio_count;
  uint64_t hits_at_rerank = 0;
  uint64_t rank_hits = 0;  // hits between the last two reranks
};

// Hash of the masked words; N = number of mask words in use, 0 = any (runtime count).
template <uint32_t N>
inline uint32_t subtable_hash(const Subtable& st, const FlowKey& k) {
  const uint32_t n = N ? N : st.n_words;
  const AliasU64* w = k.words();
  uint32_t h = st.basis;
  for (uint32_t j = 0; j < n; ++j) h = hash_add64(h, w[st.idx[j]] & st.mw[j]);
  // CRC32-C spreads its low bits well enough for a bucket index (as rte_hash uses it);
  // the finaliser is left out because this runs once per packet per subtable.
  return h;
}

template <uint32_t N>
inline bool subtable_equal(const Subtable& st, const FlowKey& pkt, const ClsRule& r) {
  const uint32_t n = N ? N : st.n_words;
  const AliasU64* p = pkt.words();
  const AliasU64* k = r.key.words();
  uint64_t diff = 0;
  for (uint32_t j = 0; j < n; ++j) diff |= (p[st.idx[j]] & st.mw[j]) ^ k[st.idx[j]];
  return diff == 0;
}

template <uint32_t N>
inline const ClsRule* probe_bucket(const Subtable& st, const Bucket& b, const FlowKey& pkt,
                                   uint32_t h) {
  for (uint32_t s = 0; s < kSlots; ++s) {
    if (b.hash[s].load(std::memory_order_relaxed) != h) continue;
    const ClsRule* r = b.rule[s].load(std::memory_order_acquire);
    if (r != nullptr && subtable_equal<N>(st, pkt, *r)) return r;
  }
  return nullptr;
}

template <uint32_t N>
inline const ClsRule* probe(const Subtable& st, const Table& t, const FlowKey& pkt, uint32_t h) {
  const Bucket& b = t.buckets[h & t.mask];
  if (const ClsRule* r = probe_bucket<N>(st, b, pkt, h)) return r;
  if (b.overflow.load(std::memory_order_acquire) == 0) return nullptr;
  return probe_bucket<N>(st, t.buckets[alt_hash(h) & t.mask], pkt, h);
}

template <uint32_t N>
const ClsRule* lookup_one_impl(const Subtable& st, const FlowKey& pkt) {
  const Table* t = st.table.load(std::memory_order_acquire);
  return probe<N>(st, *t, pkt, subtable_hash<N>(st, pkt));
}

// Two phases: hash every pending packet and prefetch its bucket, then probe.
// Returns the bitmap of packets that found an entry (found[i] set for those).
template <uint32_t N>
uint32_t lookup_batch_impl(const Subtable& st, const FlowKey* const* pkts, uint32_t pending,
                           const ClsRule** found) {
  const Table* t = st.table.load(std::memory_order_acquire);
  uint32_t hashes[Classifier::kMaxBatch];
  for (uint32_t m = pending; m != 0; m &= m - 1) {
    const int i = std::countr_zero(m);
    const uint32_t h = subtable_hash<N>(st, *pkts[i]);
    hashes[i] = h;
    __builtin_prefetch(&t->buckets[h & t->mask]);
  }
  uint32_t hit = 0;
  for (uint32_t m = pending; m != 0; m &= m - 1) {
    const int i = std::countr_zero(m);
    if (const ClsRule* r = probe<N>(st, *t, *pkts[i], hashes[i])) {
      found[i] = r;
      hit |= 1u << i;
    }
  }
  return hit;
}

template <uint32_t N>
void bind_lookup(Subtable& st) {
  st.lookup_one = &lookup_one_impl<N>;
  st.lookup_batch = &lookup_batch_impl<N>;
}

Subtable::Subtable(const FlowMask& m) : mask(m) {
  const AliasU64* w = m.words();
  for (uint32_t i = 0; i < FlowKey::kWords; ++i) {
    if (w[i] == 0) continue;
    idx[n_words] = static_cast<uint8_t>(i);
    mw[n_words] = w[i];
    ++n_words;
  }
  basis = mask_word_map(m);
  // One lookup function per subtable shape, chosen once (as dpcls does).
  switch (n_words) {
    case 1:
      bind_lookup<1>(*this);
      break;
    case 2:
      bind_lookup<2>(*this);
      break;
    case 3:
      bind_lookup<3>(*this);
      break;
    case 4:
      bind_lookup<4>(*this);
      break;
    case 5:
      bind_lookup<5>(*this);
      break;
    case 6:
      bind_lookup<6>(*this);
      break;
    case 7:
      bind_lookup<7>(*this);
      break;
    case 8:
      bind_lookup<8>(*this);
      break;
    default:
      bind_lookup<0>(*this);
      break;
  }
  table.store(new Table(1), std::memory_order_relaxed);
}

// ---- writer-side table operations -------------------------------------------------------

struct EntryRef {
  Bucket* bucket = nullptr;  // where the entry lives (nullptr: not found)
  uint32_t slot = 0;
  bool secondary = false;
};

// The entry whose masked key equals `key` (writer side).
EntryRef find_entry(Table& t, uint32_t h, const FlowKey& key) {
  Bucket* b1 = &t.buckets[h & t.mask];
  Bucket* b2 = &t.buckets[alt_hash(h) & t.mask];
  for (Bucket* b : {b1, b2}) {
    for (uint32_t s = 0; s < kSlots; ++s) {
      const ClsRule* r = b->rule[s].load(std::memory_order_relaxed);
      if (r != nullptr && b->hash[s].load(std::memory_order_relaxed) == h && r->key == key)
        return EntryRef{b, s, b != b1};
    }
    if (b1 == b2) break;
  }
  return EntryRef{};
}

// Publishes a new entry if a slot is free in its primary or secondary bucket.
bool table_add(Table& t, uint32_t h, const ClsRule* rule) {
  Bucket* b1 = &t.buckets[h & t.mask];
  Bucket* b2 = &t.buckets[alt_hash(h) & t.mask];
  for (Bucket* b : {b1, b2}) {
    for (uint32_t s = 0; s < kSlots; ++s) {
      if (b->rule[s].load(std::memory_order_relaxed) != nullptr) continue;
      if (b != b1) {
        // Count before publishing, so a reader that could see the entry checks b2.
        b1->overflow.store(b1->overflow.load(std::memory_order_relaxed) + 1,
                           std::memory_order_release);
      }
      b->hash[s].store(h, std::memory_order_relaxed);
      b->rule[s].store(rule, std::memory_order_release);
      return true;
    }
    if (b1 == b2) break;
  }
  return false;
}

// Builds a table of at least n_buckets holding every entry of `old` (unpublished).
Table* rebuild(const Table& old, uint32_t n_buckets) {
  for (;; n_buckets *= 2) {
    Table* t = new Table(n_buckets);
    bool ok = true;
    for (uint32_t b = 0; b <= old.mask && ok; ++b) {
      for (uint32_t s = 0; s < kSlots && ok; ++s) {
        const ClsRule* r = old.buckets[b].rule[s].load(std::memory_order_relaxed);
        if (r != nullptr)
          ok = table_add(*t, old.buckets[b].hash[s].load(std::memory_order_relaxed), r);
      }
    }
    if (ok) return t;
    delete t;
  }
}

}  // namespace cls_detail

using cls_detail::Subtable;
using cls_detail::Table;

// The published search order: immutable once published.
struct Classifier::SubtableVec {
  struct Entry {
    const Subtable* st;
    cls_detail::LookupOneFn lookup_one;
    cls_detail::LookupBatchFn lookup_batch;
    int32_t max_priority;
  };
  std::vector<Entry> entries;
};

Classifier::Classifier(Qsbr& rcu) : rcu_(rcu), vec_(new SubtableVec) {}

Classifier::~Classifier() {
  delete vec_.load(std::memory_order_relaxed);
  for (auto& [mask, st] : subtables_) delete st;
}

Subtable* Classifier::find_or_create_subtable(const FlowMask& mask, bool* created) {
  auto it = subtables_.find(mask);
  if (it != subtables_.end()) {
    *created = false;
    return it->second;
  }
  auto* st = new Subtable(mask);
  subtables_.emplace(mask, st);
  n_subtables_.store(subtables_.size(), std::memory_order_relaxed);
  *created = true;
  return st;
}

void Classifier::publish_vec() {
  auto* v = new SubtableVec;
  v->entries.reserve(subtables_.size());
  for (auto& [mask, st] : subtables_)
    v->entries.push_back({st, st->lookup_one, st->lookup_batch, st->max_priority()});
  std::sort(v->entries.begin(), v->entries.end(), [](const auto& a, const auto& b) {
    if (a.max_priority != b.max_priority) return a.max_priority > b.max_priority;
    if (a.st->rank_hits != b.st->rank_hits) return a.st->rank_hits > b.st->rank_hits;
    return a.st < b.st;  // any total order; keeps the sort deterministic per run
  });
  const SubtableVec* old = vec_.exchange(v, std::memory_order_acq_rel);
  rcu_.defer([old] { delete old; });
}

void Classifier::insert(ClsRule* rule) {
  assert(rule->subtable_ == nullptr);
  apply_mask(rule->key, rule->mask, rule->key);
  rule->index_mask();
  rule->dead.store(false, std::memory_order_relaxed);
  rule->next_.store(nullptr, std::memory_order_relaxed);

  bool created = false;
  Subtable* st = find_or_create_subtable(rule->mask, &created);
  const uint32_t h = cls_detail::subtable_hash<0>(*st, rule->key);
  rule->hash_ = h;
  rule->subtable_ = st;

  // A higher max priority must be visible in the search order before the rule is.
  const int32_t old_max = st->max_priority();
  ++st->prio_count[rule->priority];
  if (created || rule->priority > old_max) publish_vec();

  Table* t = st->table.load(std::memory_order_relaxed);
  const cls_detail::EntryRef e = cls_detail::find_entry(*t, h, rule->key);
  if (e.bucket != nullptr) {
    // Same masked key: keep the chain in priority order; the head is what lookups see.
    ClsRule* head = const_cast<ClsRule*>(e.bucket->rule[e.slot].load(std::memory_order_relaxed));
    if (rule->priority > head->priority) {
      rule->next_.store(head, std::memory_order_relaxed);
      e.bucket->rule[e.slot].store(rule, std::memory_order_release);
    } else {
      ClsRule* p = head;
      for (ClsRule* n = p->next_.load(std::memory_order_relaxed);
           n != nullptr && n->priority >= rule->priority; n = p->next_.load())
        p = n;
      rule->next_.store(p->next_.load(std::memory_order_relaxed), std::memory_order_relaxed);
      p->next_.store(rule, std::memory_order_release);
    }
  } else {
    if (st->n_entries + 1 > size_t{t->n_buckets()} * cls_detail::kMaxLoadPerBucket) {
      Table* bigger = cls_detail::rebuild(*t, t->n_buckets() * 2);
      st->table.store(bigger, std::memory_order_release);
      rcu_.defer([t] { delete t; });
      t = bigger;
    }
    while (!cls_detail::table_add(*t, h, rule)) {
      Table* bigger = cls_detail::rebuild(*t, t->n_buckets() * 2);
      st->table.store(bigger, std::memory_order_release);
      rcu_.defer([t] { delete t; });
      t = bigger;
    }
    ++st->n_entries;
  }
  ++st->n_rules;
  n_rules_.fetch_add(1, std::memory_order_relaxed);
}

void Classifier::remove(ClsRule* rule) {
  Subtable* st = rule->subtable_;
  assert(st != nullptr);
  Table* t = st->table.load(std::memory_order_relaxed);
  const cls_detail::EntryRef e = cls_detail::find_entry(*t, rule->hash_, rule->key);
  assert(e.bucket != nullptr);
  ClsRule* head = const_cast<ClsRule*>(e.bucket->rule[e.slot].load(std::memory_order_relaxed));
  if (head == rule) {
    ClsRule* next = rule->next_.load(std::memory_order_relaxed);
    e.bucket->rule[e.slot].store(next, std::memory_order_release);
    if (next == nullptr) {
      if (e.secondary) {
        cls_detail::Bucket& b1 = t->buckets[rule->hash_ & t->mask];
        b1.overflow.store(b1.overflow.load(std::memory_order_relaxed) - 1,
                          std::memory_order_release);
      }
      --st->n_entries;
    }
  } else {
    ClsRule* p = head;
    while (p->next_.load(std::memory_order_relaxed) != rule) p = p->next_.load();
    p->next_.store(rule->next_.load(std::memory_order_relaxed), std::memory_order_release);
  }
  rule->dead.store(true, std::memory_order_release);
  rule->subtable_ = nullptr;
  rule->next_.store(nullptr, std::memory_order_relaxed);
  n_rules_.fetch_sub(1, std::memory_order_relaxed);

  const int32_t old_max = st->max_priority();
  auto it = st->prio_count.find(rule->priority);
  if (--it->second == 0) st->prio_count.erase(it);
  if (--st->n_rules == 0) {
    subtables_.erase(st->mask);
    n_subtables_.store(subtables_.size(), std::memory_order_relaxed);
    publish_vec();
    rcu_.defer([st] { delete st; });
  } else if (st->max_priority() != old_max) {
    publish_vec();
  }
}

void Classifier::rerank() {
  for (auto& [mask, st] : subtables_) {
    const uint64_t total = st->total_hits();
    st->rank_hits = total - st->hits_at_rerank;
    st->hits_at_rerank = total;
  }
  publish_vec();
}

const ClsRule* Classifier::lookup(const FlowKey& pkt) const {
  const SubtableVec* v = vec_.load(std::memory_order_acquire);
  const ClsRule* best = nullptr;
  for (const SubtableVec::Entry& e : v->entries) {
    if (best != nullptr && best->priority >= e.max_priority) break;
    const ClsRule* r = e.lookup_one(*e.st, pkt);
    if (r == nullptr) continue;
    e.st->add_hits(1);
    if (best == nullptr || r->priority > best->priority) best = r;
  }
  return best;
}

uint32_t Classifier::lookup_batch(const FlowKey* const* pkts, uint32_t n,
                                  const ClsRule** out) const {
  assert(n <= kMaxBatch);
  const uint32_t all = n >= 32 ? ~0u : (1u << n) - 1;
  for (uint32_t i = 0; i < n; ++i) out[i] = nullptr;
  const SubtableVec* v = vec_.load(std::memory_order_acquire);
  const ClsRule* found[kMaxBatch];
  uint32_t pending = all;  // packets that a later subtable could still improve
  uint32_t matched = 0;
  for (const SubtableVec::Entry& e : v->entries) {
    for (uint32_t m = matched & pending; m != 0; m &= m - 1) {
      const int i = std::countr_zero(m);
      if (out[i]->priority >= e.max_priority) pending &= ~(1u << i);
    }
    if (pending == 0) break;
    const uint32_t hit = e.lookup_batch(*e.st, pkts, pending, found);
    if (hit == 0) continue;
    e.st->add_hits(static_cast<uint64_t>(std::popcount(hit)));
    for (uint32_t m = hit; m != 0; m &= m - 1) {
      const int i = std::countr_zero(m);
      if (out[i] == nullptr || found[i]->priority > out[i]->priority) out[i] = found[i];
    }
    matched |= hit;
  }
  return all & ~matched;
}

}  // namespace gl::flow
