#include <catch2/catch.hpp>

#include <vector>

#include "flowtables/classifier.hpp"
#include "flowtables/emc.hpp"

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
