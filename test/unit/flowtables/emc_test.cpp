#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "flowtables/classifier.hpp"
#include "flowtables/emc.hpp"
#include "flowtables/rcu.hpp"

using namespace gl::flow;

namespace {

FlowKey key_n(uint32_t n) {
  FlowKey k = zero_key();
  k.in_port = 1;
  k.ipv4_dst = n;
  k.tp_dst = static_cast<uint16_t>(n * 7);
  return k;
}

}  // namespace

TEST_CASE("EMC hits after an insert with probability 1", "[emc]") {
  Emc emc;
  emc.set_insert_inverse_prob(1);
  ClsRule rule;
  std::vector<FlowKey> keys;
  for (uint32_t i = 0; i < 1000; ++i) keys.push_back(key_n(i));
  for (const FlowKey& k : keys) CHECK(emc.lookup(k, hash_key(k)) == nullptr);
  for (const FlowKey& k : keys) emc.insert(k, hash_key(k), &rule);
  uint32_t hits = 0;
  for (const FlowKey& k : keys) hits += emc.lookup(k, hash_key(k)) == &rule;
  // 1000 keys in 8192 two-way slots: (nearly) every key stays.
  CHECK(hits >= 990);
  const EmcStats s = emc.stats();
  CHECK(s.inserts == 1000);
  CHECK(s.hits == hits);
  CHECK(s.misses == 1000 + (1000 - hits));

  // Re-inserting a key updates its entry in place.
  ClsRule other;
  emc.insert(keys[0], hash_key(keys[0]), &other);
  CHECK(emc.lookup(keys[0], hash_key(keys[0])) == &other);

  emc.clear();
  for (const FlowKey& k : keys) CHECK(emc.lookup(k, hash_key(k)) == nullptr);
}

TEST_CASE("EMC never inserts with probability 0, about 1/N otherwise", "[emc]") {
  Emc emc;
  ClsRule rule;
  emc.set_insert_inverse_prob(0);
  for (uint32_t i = 0; i < 1000; ++i) emc.insert(key_n(i), hash_key(key_n(i)), &rule);
  CHECK(emc.stats().inserts == 0);
  for (uint32_t i = 0; i < 1000; ++i) CHECK(emc.lookup(key_n(i), hash_key(key_n(i))) == nullptr);

  emc.set_insert_inverse_prob(100);
  CHECK(emc.insert_inverse_prob() == 100);
  emc.seed(12345);
  for (uint32_t i = 0; i < 20000; ++i) emc.insert(key_n(i), hash_key(key_n(i)), &rule);
  const uint64_t n = emc.stats().inserts;
  CHECK(n > 100);  // expected 200
  CHECK(n < 400);
}

TEST_CASE("EMC ignores dead rules and sweep_dead drops them", "[emc]") {
  Emc emc;
  emc.set_insert_inverse_prob(1);
  ClsRule live, doomed;
  const FlowKey a = key_n(1), b = key_n(2);
  emc.insert(a, hash_key(a), &live);
  emc.insert(b, hash_key(b), &doomed);
  CHECK(emc.lookup(b, hash_key(b)) == &doomed);
  doomed.dead = true;
  CHECK(emc.lookup(b, hash_key(b)) == nullptr);
  CHECK(emc.lookup(a, hash_key(a)) == &live);
  emc.sweep_dead();
  doomed.dead = false;  // the entry is gone, not just hidden
  CHECK(emc.lookup(b, hash_key(b)) == nullptr);
  CHECK(emc.lookup(a, hash_key(a)) == &live);

  // A dead entry's slot is reused first.
  doomed.dead = true;
  emc.insert(b, hash_key(b), &doomed);  // (caching a dead rule is harmless: never returned)
  CHECK(emc.lookup(b, hash_key(b)) == nullptr);
}

TEST_CASE("EMC collisions: one bucket per hash, never a rule that does not match", "[emc]") {
  Emc emc(16);  // 4 buckets of 4 ways
  emc.set_insert_inverse_prob(1);
  // Each rule matches exactly its own key (exact mask), so a wrong answer is visible.
  ClsRule r[6];
  FlowKey k[6];
  for (int i = 0; i < 6; ++i) {
    k[i] = key_n(static_cast<uint32_t>(i + 1));
    r[i].mask = exact_mask();
    r[i].key = k[i];
    r[i].index_mask();
  }
  const uint32_t h = 0x12345;  // force one hash (one bucket) for all keys
  for (int i = 0; i < 4; ++i) emc.insert(k[i], h, &r[i]);
  for (int i = 0; i < 4; ++i) CHECK(emc.lookup(k[i], h) == &r[i]);
  CHECK(emc.lookup(k[4], h) == nullptr);  // same hash, no matching rule cached
  emc.insert(k[4], h, &r[4]);             // evicts one of the four
  CHECK(emc.lookup(k[4], h) == &r[4]);
  int left = 0;
  for (int i = 0; i < 4; ++i) left += emc.lookup(k[i], h) == &r[i];
  CHECK(left == 3);
  // A right key under a wrong hash is a miss, never a false hit.
  CHECK(emc.lookup(k[4], h + 1) == nullptr);
}

TEST_CASE("EMC hit is verified against the cached megaflow's match", "[emc]") {
  Emc emc;
  emc.set_insert_inverse_prob(1);
  ClsRule mega;  // in_port(1) only: every key on port 1 matches it
  mega.mask = zero_key();
  mega.mask.in_port = 0xffffffffu;
  mega.key = zero_key();
  mega.key.in_port = 1;
  mega.index_mask();
  FlowKey a = key_n(7);
  emc.insert(a, 99, &mega);
  FlowKey b = key_n(8);  // another microflow of the same megaflow under the same hash
  CHECK(emc.lookup(b, 99) == &mega);
  b.in_port = 2;  // no longer matches the megaflow: a miss, not a wrong answer
  CHECK(emc.lookup(b, 99) == nullptr);
}

TEST_CASE("ClsRule::matches agrees with key_matches for masks of 0 to 11 words", "[emc]") {
  // Masks of 0..4 words take the fixed path, more the word list: both must give exactly
  // key_matches()'s answer, for keys that match and keys that differ in one masked bit
  // or only in unmasked bits.
  const size_t order[] = {6, 8, 0, 14, 13, 7,
                          1, 2, 3, 9,  16};  // words in the order masks gain them
  for (size_t n = 0; n <= 11; ++n) {
    INFO("mask words: " << n);
    ClsRule r;
    r.mask = zero_key();
    r.key = zero_key();
    for (size_t j = 0; j < n; ++j) {
      r.mask.words()[order[j]] = 0x00ff00ff00ff00ffull << (j % 8);
      r.key.words()[order[j]] = 0x1234567890abcdefull * (j + 1);
    }
    apply_mask(r.key, r.mask, r.key);
    r.index_mask();
    CHECK(r.n_words == n);
    FlowKey pkt = r.key;
    for (size_t w = 0; w < FlowKey::kWords; ++w) pkt.words()[w] |= ~r.mask.words()[w];
    CHECK(r.matches(pkt));  // unmasked bits all differ
    CHECK(key_matches(pkt, r.key, r.mask));
    for (size_t j = 0; j < n; ++j) {
      FlowKey bad = pkt;
      const uint64_t m = r.mask.words()[order[j]];
      bad.words()[order[j]] ^= m & (~m + 1);  // flip the lowest masked bit
      CHECK_FALSE(r.matches(bad));
      CHECK_FALSE(key_matches(bad, r.key, r.mask));
    }
  }
}

TEST_CASE("EMC sweep in slices: a pass covers every bucket once, then starts again", "[emc]") {
  Emc emc(64);  // 16 buckets
  REQUIRE(emc.buckets() == 16);
  emc.set_insert_inverse_prob(1);
  ClsRule doomed;
  std::vector<FlowKey> keys;
  for (uint32_t i = 0; i < 40; ++i) keys.push_back(key_n(i));
  for (const FlowKey& k : keys) emc.insert(k, hash_key(k), &doomed);
  auto held = [&] {  // entries still pointing at the rule (it looks alive again meanwhile)
    doomed.dead = false;
    int n = 0;
    for (const FlowKey& k : keys) n += emc.lookup(k, hash_key(k)) == &doomed;
    doomed.dead = true;
    return n;
  };
  const int before = held();
  REQUIRE(before > 20);
  doomed.dead = true;
  uint32_t pos = 0;
  // 5 + 5 buckets: not the end, part of the entries gone.
  CHECK_FALSE(emc.sweep_dead_slice(pos, 5));
  CHECK(pos == 5);
  CHECK_FALSE(emc.sweep_dead_slice(pos, 5));
  CHECK(pos == 10);
  const int mid = held();
  CHECK(mid > 0);
  CHECK(mid < before);
  // The last 6 (asked for 8): the pass is complete, pos back at 0, nothing left.
  CHECK(emc.sweep_dead_slice(pos, 8));
  CHECK(pos == 0);
  CHECK(held() == 0);
  // A whole pass in one slice.
  for (const FlowKey& k : keys) emc.insert(k, hash_key(k), &doomed);
  doomed.dead = true;
  CHECK(emc.sweep_dead_slice(pos, 1000));
  CHECK(pos == 0);
  CHECK(held() == 0);
}

namespace {

// A rule of the threads test. Reclaiming one makes it alive again with state kReused: the
// memory of a freed rule taken by a new one. An EMC entry still pointing at it would
// return it, and the reader sees kReused.
struct TRule : ClsRule {
  static constexpr int kLive = 1, kReused = 2;
  std::atomic<int> state{kLive};
};

}  // namespace

TEST_CASE("EMC hints: per slot, dropped by every sweep slice once dead, and by clear", "[emc]") {
  Emc emc(64);  // 16 buckets
  ClsRule a, b;
  CHECK(emc.hint(3) == nullptr);
  emc.set_hint(3, &a);
  emc.set_hint(4, &b);
  CHECK(emc.hint(3) == &a);
  CHECK(emc.hint(3 + Emc::kHints) == &a);  // slots wrap
  // A slice anywhere in a pass drops the dead hints (a pass that ends covered them).
  a.dead = true;
  uint32_t pos = 10;
  CHECK_FALSE(emc.sweep_dead_slice(pos, 1));
  CHECK(emc.hint(3) == nullptr);
  CHECK(emc.hint(4) == &b);
  emc.clear();
  CHECK(emc.hint(4) == nullptr);
}

TEST_CASE("EMC swept a slice per batch: no entry outlives its rule's grace period (threads)",
          "[emc][rcu][threads]") {
  // The PMD's protocol (EmcSweeper, at the end of each of Pmd::run's loops) against a
  // writer retiring rules as the datapath does (marked dead, dead epoch bumped, freed
  // after a grace period).
  constexpr int kRules = 16;
  Qsbr rcu;
  std::atomic<TRule*> cur[kRules];
  for (auto& c : cur) c.store(new TRule);
  std::atomic<uint64_t> dead_epoch{0};
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> errors{0}, lookups{0}, passes{0};
  std::vector<TRule*> graveyard;  // freed at the end

  std::thread reader([&] {
    const int slot = rcu.register_reader();
    if (slot < 0) {
      errors.fetch_add(1);
      return;
    }
    Emc emc(256);  // 64 buckets, swept 4 at a time
    emc.set_insert_inverse_prob(1);
    EmcSweeper sweep(4, 0);
    FlowKey keys[kRules];
    uint32_t hashes[kRules];
    for (int i = 0; i < kRules; ++i) {
      keys[i] = key_n(static_cast<uint32_t>(i));
      hashes[i] = hash_key(keys[i]);
    }
    uint64_t n = 0;
    uint64_t round = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      ++round;
      for (int i = 0; i < kRules; ++i) {
        // Each key every 64th batch, longer than a sweep pass (16 batches): a port
        // without traffic for a while, whose hint stays across quiescent states until
        // the sweep drops it.
        if ((round + static_cast<uint64_t>(i) * 4) % 64 != 0) continue;
        // As Pmd::classify_and_act: the slot's hint first (not dead when read), then the
        // entries; what was found becomes the hint.
        const ClsRule* r = emc.hint(static_cast<uint32_t>(i));
        if (r != nullptr && (r->dead.load(std::memory_order_relaxed) || !r->matches(keys[i])))
          r = nullptr;
        if (r == nullptr) r = emc.find(keys[i], hashes[i]);
        if (r == nullptr) {
          r = cur[i].load(std::memory_order_acquire);
          emc.insert(keys[i], hashes[i], r);
        }
        emc.set_hint(static_cast<uint32_t>(i), r);
        if (static_cast<const TRule*>(r)->state.load(std::memory_order_relaxed) != TRule::kLive)
          errors.fetch_add(1);
        ++n;
      }
      sweep.end_batch(emc, rcu, slot, dead_epoch, n);
    }
    lookups.fetch_add(n);
    passes.fetch_add(sweep.passes());
    rcu.unregister_reader(slot);
  });

  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(300);
  uint64_t retired = 0;
  uint32_t rng = 1;
  while (std::chrono::steady_clock::now() < end) {
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    TRule* old = cur[rng % kRules].exchange(new TRule, std::memory_order_acq_rel);
    old->dead.store(true, std::memory_order_release);  // as Classifier::remove()
    dead_epoch.fetch_add(1, std::memory_order_release);
    rcu.defer([old, &graveyard] {
      old->state.store(TRule::kReused, std::memory_order_relaxed);
      old->dead.store(false, std::memory_order_relaxed);
      graveyard.push_back(old);
    });
    ++retired;
    rcu.reclaim();
    if (retired % 32 == 0) std::this_thread::yield();
  }
  stop = true;
  reader.join();
  rcu.synchronize();
  rcu.reclaim();
  CHECK(errors.load() == 0);
  CHECK(lookups.load() > 0);
  CHECK(passes.load() > 0);
  CHECK(graveyard.size() == retired);
  for (TRule* r : graveyard) delete r;
  for (auto& c : cur) delete c.load();
}

TEST_CASE("RCU: a quiescent state as of an earlier epoch ends only the grace periods before it",
          "[rcu]") {
  Qsbr rcu;
  const int a = rcu.register_reader();
  REQUIRE(a >= 0);
  const uint64_t e0 = rcu.epoch();
  const uint64_t t1 = rcu.start_grace();  // after e0
  rcu.quiescent_as_of(a, e0);
  CHECK_FALSE(rcu.grace_done(t1));
  const uint64_t e1 = rcu.epoch();
  const uint64_t t2 = rcu.start_grace();
  rcu.quiescent_as_of(a, e1);
  CHECK(rcu.grace_done(t1));
  CHECK_FALSE(rcu.grace_done(t2));
  rcu.quiescent(a);
  CHECK(rcu.grace_done(t2));
  rcu.unregister_reader(a);
}
