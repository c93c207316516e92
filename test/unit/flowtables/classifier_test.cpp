#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <random>
#include <set>
#include <thread>
#include <unordered_map>
#include <vector>

#include "flowtables/classifier.hpp"
#include "flowtables/rcu.hpp"
#include "flowtables/reference_classifier.hpp"

using namespace gl::flow;

namespace {

constexpr uint32_t be32(uint32_t v) {
  return __builtin_bswap32(v);
}
constexpr uint16_t be16(uint16_t v) {
  return __builtin_bswap16(v);
}

struct TestRule : ClsRule {
  static constexpr uint32_t kLive = 1, kRemoved = 2, kFreed = 3;
  uint64_t id = 0;
  std::atomic<uint32_t> state{kLive};
};

const TestRule& as_test(const ClsRule* r) {
  return *static_cast<const TestRule*>(r);
}

// Random keys, masks and packets over small value domains, so that rules of different
// subtables overlap and priorities decide.
class Gen {
 public:
  explicit Gen(uint64_t seed) : rng_(seed) {}

  uint32_t below(uint32_t n) { return std::uniform_int_distribution<uint32_t>(0, n - 1)(rng_); }
  bool coin(uint32_t percent) { return below(100) < percent; }

  FlowKey key() {
    FlowKey k = zero_key();
    k.in_port = 1 + below(4);
    k.recirc_id = below(3);
    k.eth_type = be16(coin(70) ? 0x0800 : 0x86dd);
    k.vlan_tci = coin(50) ? 0 : be16(static_cast<uint16_t>(kVlanCfi | (1 + below(3))));
    k.ipv4_src = be32(0x0a000000u | below(4) << 8 | below(4));
    k.ipv4_dst = be32(0x0a000000u | below(4) << 8 | below(4));
    k.ipv6_src[0] = 0x20;
    k.ipv6_src[1] = 0x01;
    k.ipv6_src[7] = static_cast<uint8_t>(below(4));
    k.ipv6_src[15] = static_cast<uint8_t>(below(4));
    std::memcpy(k.ipv6_dst, k.ipv6_src, 16);
    k.ipv6_dst[15] = static_cast<uint8_t>(below(4));
    static constexpr uint16_t kPorts[] = {53, 80, 443, 1000};
    k.nw_proto = coin(50) ? 6 : 17;
    k.tp_src = be16(kPorts[below(4)]);
    k.tp_dst = be16(kPorts[below(4)]);
    return k;
  }

  static void prefix(uint8_t* bytes, size_t len, uint32_t bits) {
    for (size_t i = 0; i < len; ++i) {
      const uint32_t b =
          bits > 8 * i ? std::min<uint32_t>(8, bits - 8 * static_cast<uint32_t>(i)) : 0;
      bytes[i] = static_cast<uint8_t>(b == 0 ? 0 : 0xff << (8 - b));
    }
  }

  FlowMask mask() {
    FlowMask m = zero_key();
    const uint32_t fields = below(5);  // 0 fields: a catch-all mask
    for (uint32_t f = 0; f < fields; ++f) {
      switch (below(11)) {
        case 0:
          m.in_port = ~0u;
          break;
        case 1:
          m.eth_type = 0xffff;
          break;
        case 2:
          m.ipv4_src = be32(below(33) == 0 ? 0 : ~0u << (32 - (1 + below(32))));
          break;
        case 3:
          m.ipv4_dst = be32(~0u << below(32));
          break;
        case 4:
          m.tp_src = coin(50) ? 0xffff : be16(0xff00);
          break;
        case 5:
          m.tp_dst = 0xffff;
          break;
        case 6:
          m.vlan_tci = coin(50) ? 0xffff : be16(kVlanCfi | 0x0fff);
          break;
        case 7:
          prefix(m.ipv6_src, 16, below(129));
          break;
        case 8:
          prefix(m.ipv6_dst, 16, 64 + below(65));
          break;
        case 9:
          m.recirc_id = ~0u;
          break;
        case 10:
          m.nw_proto = 0xff;
          break;
      }
    }
    return m;
  }

  // A packet that matches `r` (its unmasked bits random), or a random one.
  FlowKey packet_for(const ClsRule* r) {
    FlowKey k = key();
    if (r == nullptr) return k;
    for (size_t w = 0; w < FlowKey::kWords; ++w)
      k.words()[w] = r->key.words()[w] | (k.words()[w] & ~r->mask.words()[w]);
    return k;
  }

 private:
  std::mt19937_64 rng_;
};

// Checks one result against the reference: same best priority, and a real match.
void check_result(const FlowKey& pkt, const ClsRule* got, const ReferenceClassifier& ref) {
  const ReferenceClassifier::Rule* want = ref.lookup(pkt);
  if (want == nullptr) {
    CHECK(got == nullptr);
    return;
  }
  REQUIRE(got != nullptr);
  CHECK(got->priority == want->priority);
  CHECK(key_matches(pkt, got->key, got->mask));
  CHECK(as_test(got).state.load() == TestRule::kLive);
  CHECK_FALSE(got->dead.load());
}

struct RandomRun {
  uint64_t seed;
  uint32_t n_masks;
  uint32_t target_rules;
  uint32_t n_priorities;  // 1 = every rule priority 0 (datapath megaflows)
};

void run_randomised(const RandomRun& cfg) {
  INFO("seed " << cfg.seed << " masks " << cfg.n_masks << " rules " << cfg.target_rules
               << " priorities " << cfg.n_priorities);
  Gen g(cfg.seed);
  Qsbr rcu;
  Classifier cls(rcu);
  ReferenceClassifier ref;

  std::vector<FlowMask> masks;
  for (uint32_t i = 0; i < cfg.n_masks; ++i) masks.push_back(g.mask());

  std::vector<TestRule*> live;
  uint64_t next_id = 1;
  auto insert_one = [&] {
    auto* r = new TestRule;
    r->id = next_id++;
    r->key = g.key();
    r->mask = masks[g.below(cfg.n_masks)];
    r->priority = static_cast<int32_t>(g.below(cfg.n_priorities)) - 2 * (cfg.n_priorities > 1);
    cls.insert(r);
    ref.insert(r->key, r->mask, r->priority, r->id);
    live.push_back(r);
  };
  auto remove_one = [&] {
    const size_t i = g.below(static_cast<uint32_t>(live.size()));
    TestRule* r = live[i];
    live[i] = live.back();
    live.pop_back();
    cls.remove(r);
    CHECK(r->dead.load());
    REQUIRE(ref.remove(r->id));
    r->state = TestRule::kRemoved;
    rcu.defer([r] {
      r->state = TestRule::kFreed;
      delete r;
    });
  };
  auto check_all = [&](uint32_t n_packets) {
    REQUIRE(cls.size() == live.size());
    std::set<std::vector<uint64_t>> distinct;
    for (const TestRule* r : live)
      distinct.insert(std::vector<uint64_t>(r->mask.words(), r->mask.words() + FlowKey::kWords));
    REQUIRE(cls.subtable_count() == distinct.size());

    std::vector<FlowKey> pkts;
    for (uint32_t i = 0; i < n_packets; ++i)
      pkts.push_back(
          g.packet_for(!live.empty() && g.coin(80) ? live[g.below(live.size())] : nullptr));
    for (const FlowKey& p : pkts) check_result(p, cls.lookup(p), ref);

    // Batches of every size up to 32.
    for (size_t start = 0; start < pkts.size();) {
      const uint32_t n = std::min<uint32_t>(1 + g.below(32), pkts.size() - start);
      const FlowKey* ptrs[32];
      const ClsRule* out[32];
      for (uint32_t i = 0; i < n; ++i) ptrs[i] = &pkts[start + i];
      const uint32_t misses = cls.lookup_batch(ptrs, n, out);
      for (uint32_t i = 0; i < n; ++i) {
        CHECK(((misses >> i) & 1) == (out[i] == nullptr));
        check_result(pkts[start + i], out[i], ref);
      }
      if (n < 32) CHECK((misses >> n) == 0);
      start += n;
    }
  };

  // Grow, churn, shrink to empty.
  for (uint32_t i = 0; i < cfg.target_rules; ++i) insert_one();
  check_all(2000);
  for (int round = 0; round < 20; ++round) {
    for (uint32_t i = 0; i < cfg.target_rules / 4 + 1; ++i) {
      if (live.empty() || g.coin(50))
        insert_one();
      else
        remove_one();
    }
    if (round % 3 == 0) cls.rerank();
    rcu.reclaim();
    check_all(300);
  }
  while (live.size() > cfg.target_rules / 10) remove_one();
  check_all(500);
  while (!live.empty()) remove_one();
  check_all(100);
  CHECK(cls.subtable_count() == 0);
  rcu.reclaim();
  CHECK(rcu.pending() == 0);
}

}  // namespace

TEST_CASE("randomised: classifier agrees with the linear reference", "[classifier]") {
  const RandomRun runs[] = {
      {1, 1, 50, 1},     {2, 5, 200, 1},    {3, 5, 200, 4},  {4, 20, 500, 16},   {5, 100, 800, 8},
      {6, 100, 1000, 1}, {7, 40, 2000, 64}, {8, 3, 3000, 2}, {9, 60, 400, 1000}, {10, 100, 1500, 3},
  };
  for (const RandomRun& r : runs) run_randomised(r);
}

TEST_CASE("equal keys with different priorities: the best one wins", "[classifier]") {
  Qsbr rcu;
  Classifier cls(rcu);
  FlowMask m = zero_key();
  m.ipv4_dst = ~0u;
  FlowKey pkt = zero_key();
  pkt.ipv4_dst = be32(0x0a000001);
  pkt.tp_dst = be16(80);  // not in the mask: insert() must mask it away
  TestRule r[4];
  const int32_t prio[4] = {5, 9, 1, 9};
  for (int i = 0; i < 4; ++i) {
    r[i].key = pkt;
    r[i].mask = m;
    r[i].priority = prio[i];
    cls.insert(&r[i]);
  }
  CHECK(r[0].key.tp_dst == 0);
  CHECK(cls.size() == 4);
  CHECK(cls.subtable_count() == 1);
  CHECK(cls.lookup(pkt)->priority == 9);
  cls.remove(&r[1]);
  CHECK(cls.lookup(pkt) == &r[3]);
  cls.remove(&r[3]);
  CHECK(cls.lookup(pkt) == &r[0]);
  cls.remove(&r[0]);
  CHECK(cls.lookup(pkt) == &r[2]);
  cls.remove(&r[2]);
  CHECK(cls.lookup(pkt) == nullptr);
  CHECK(cls.subtable_count() == 0);
  rcu.reclaim();
}

TEST_CASE("a higher-priority subtable is searched first and the search stops early",
          "[classifier]") {
  Qsbr rcu;
  Classifier cls(rcu);
  FlowKey pkt = zero_key();
  pkt.in_port = 3;
  pkt.ipv4_dst = be32(0x0a000001);
  TestRule wide, narrow;
  wide.mask = zero_key();  // catch-all
  wide.priority = 1;
  narrow.key = pkt;
  narrow.mask = zero_key();
  narrow.mask.in_port = ~0u;
  narrow.priority = 10;
  cls.insert(&wide);
  cls.insert(&narrow);
  for (int i = 0; i < 3; ++i) {
    CHECK(cls.lookup(pkt) == &narrow);
    FlowKey other = pkt;
    other.in_port = 4;
    CHECK(cls.lookup(other) == &wide);
    cls.rerank();
  }
  cls.remove(&narrow);
  cls.remove(&wide);
  rcu.reclaim();
}

TEST_CASE("one subtable grows to many entries", "[classifier]") {
  Qsbr rcu;
  Classifier cls(rcu);
  constexpr uint32_t kN = 20000;
  std::vector<std::unique_ptr<TestRule>> rules;
  FlowMask m = zero_key();
  m.ipv4_dst = ~0u;
  m.tp_dst = 0xffff;
  for (uint32_t i = 0; i < kN; ++i) {
    auto r = std::make_unique<TestRule>();
    r->key = zero_key();
    r->key.ipv4_dst = be32(0x0a000000 + i / 7);
    r->key.tp_dst = be16(static_cast<uint16_t>(i % 7));
    r->mask = m;
    cls.insert(r.get());
    rules.push_back(std::move(r));
  }
  CHECK(cls.subtable_count() == 1);
  const FlowKey* ptrs[32];
  const ClsRule* out[32];
  for (uint32_t i = 0; i < kN; i += 32) {
    const uint32_t n = std::min<uint32_t>(32, kN - i);
    for (uint32_t j = 0; j < n; ++j) ptrs[j] = &rules[i + j]->key;
    CHECK(cls.lookup_batch(ptrs, n, out) == 0);
    for (uint32_t j = 0; j < n; ++j) CHECK(out[j] == rules[i + j].get());
    CHECK(cls.lookup(rules[i]->key) == rules[i].get());
  }
  for (uint32_t i = 0; i < kN; i += 2) cls.remove(rules[i].get());
  for (uint32_t i = 0; i < kN; ++i)
    CHECK(cls.lookup(rules[i]->key) == (i % 2 ? rules[i].get() : nullptr));
  for (uint32_t i = 1; i < kN; i += 2) cls.remove(rules[i].get());
  CHECK(cls.size() == 0);
  rcu.reclaim();
}

TEST_CASE("concurrent readers while the writer churns (threads)", "[classifier][threads]") {
  Qsbr rcu;
  Classifier cls(rcu);
  Gen g(42);
  std::vector<FlowMask> masks;
  for (int i = 0; i < 30; ++i) masks.push_back(g.mask());
  std::vector<FlowKey> pkts;
  for (int i = 0; i < 4096; ++i) pkts.push_back(g.key());

  std::atomic<bool> stop{false};
  std::atomic<uint64_t> errors{0}, lookups{0}, hits{0};
  auto reader = [&](uint32_t seed) {
    const int slot = rcu.register_reader();
    if (slot < 0) {
      errors.fetch_add(1);
      return;
    }
    uint32_t x = seed, n = 0, h = 0;
    auto check = [&](const FlowKey& p, const ClsRule* r) {
      if (r == nullptr) return;
      ++h;
      const uint32_t st = as_test(r).state.load(std::memory_order_relaxed);
      if (st == TestRule::kFreed || !key_matches(p, r->key, r->mask)) errors.fetch_add(1);
    };
    while (!stop.load(std::memory_order_relaxed)) {
      const FlowKey* ptrs[32];
      const ClsRule* out[32];
      for (int i = 0; i < 32; ++i) {
        x = x * 1664525u + 1013904223u;
        ptrs[i] = &pkts[(x >> 8) % pkts.size()];
      }
      cls.lookup_batch(ptrs, 32, out);
      for (int i = 0; i < 32; ++i) check(*ptrs[i], out[i]);
      check(*ptrs[0], cls.lookup(*ptrs[0]));
      n += 33;
      rcu.quiescent(slot);
      if ((n & 0xffff) < 33) {
        rcu.offline(slot);
        std::this_thread::yield();
        rcu.online(slot);
      }
    }
    lookups.fetch_add(n);
    hits.fetch_add(h);
    rcu.unregister_reader(slot);
  };
  std::thread r1(reader, 1), r2(reader, 2);

  std::vector<TestRule*> live;
  std::vector<TestRule*> graveyard;  // odd ids: poisoned and kept; even ids: deleted
  uint64_t next_id = 1, ops = 0;
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(700);
  while (std::chrono::steady_clock::now() < end) {
    for (int i = 0; i < 50; ++i, ++ops) {
      if (live.size() < 300 || (live.size() < 3000 && g.coin(55))) {
        auto* r = new TestRule;
        r->id = next_id++;
        r->key = g.key();
        r->mask = masks[g.below(masks.size())];
        r->priority = static_cast<int32_t>(g.below(4));
        cls.insert(r);
        live.push_back(r);
      } else {
        const size_t k = g.below(live.size());
        TestRule* r = live[k];
        live[k] = live.back();
        live.pop_back();
        cls.remove(r);
        r->state = TestRule::kRemoved;
        rcu.defer([r, &graveyard] {
          r->state = TestRule::kFreed;
          if (r->id % 2)
            graveyard.push_back(r);
          else
            delete r;
        });
      }
    }
    if (ops % 1000 == 0) cls.rerank();
    rcu.reclaim();
  }
  stop = true;
  r1.join();
  r2.join();
  for (TestRule* r : live) {
    cls.remove(r);
    rcu.defer([r] { delete r; });
  }
  rcu.synchronize();
  rcu.reclaim();
  CHECK(rcu.pending() == 0);
  CHECK(errors.load() == 0);
  CHECK(lookups.load() > 0);
  CHECK(hits.load() > 0);
  CHECK(cls.size() == 0);
  for (TestRule* r : graveyard) delete r;
}
