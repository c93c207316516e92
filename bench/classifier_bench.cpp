// classifier_bench.cpp — gl-bench-classifier: cost of the megaflow classifier and the EMC.
//
// Purpose: prints one table: megaflow lookup cost (single and batches of 32) for
// 1k/10k/100k rules over 1/10/100 subtables with random packets that hit a rule, EMC hit
// cost, insert rate, the QSBR quiescent cost, and the linear reference classifier as the
// peer measured in the same run. Cycles come from rdtsc calibrated against steady_clock.
// Numbers are informative only: nothing here asserts a timing.
// Thread-safety: single-threaded. Complexity: a few seconds (--quick: well under one).
#include <x86intrin.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "bench/bench_clock.hpp"
#include "flowtables/classifier.hpp"
#include "flowtables/emc.hpp"
#include "flowtables/rcu.hpp"
#include "flowtables/reference_classifier.hpp"

using namespace gl::flow;

namespace {

using Clock = std::chrono::steady_clock;

double g_tsc_per_ns = 1.0;

void calibrate_tsc() {
  g_tsc_per_ns = gl::bench::calibrate_tsc_per_ns();
}

// Keeps a value alive without the compiler seeing through it.
template <typename T>
void keep(const T& v) {
  asm volatile("" : : "g"(&v) : "memory");
}

struct Measure {
  double ns_per_op;
  double cycles_per_op;
};

// Runs body() (which performs ops_per_call operations) until min_ms have elapsed.
template <typename F>
Measure measure(F&& body, uint64_t ops_per_call, int min_ms) {
  body();  // warm up
  uint64_t ops = 0;
  const auto t0 = Clock::now();
  const uint64_t c0 = __rdtsc();
  do {
    body();
    ops += ops_per_call;
  } while (Clock::now() - t0 < std::chrono::milliseconds(min_ms));
  const uint64_t c1 = __rdtsc();
  const double ns = std::chrono::duration<double, std::nano>(Clock::now() - t0).count();
  return {ns / static_cast<double>(ops), static_cast<double>(c1 - c0) / static_cast<double>(ops)};
}

void print_row(const char* what, uint32_t rules, uint32_t subtables, const Measure& m) {
  std::printf("%-26s %8u %9u %10.1f %10.1f %10.2f\n", what, rules, subtables, m.ns_per_op,
              m.cycles_per_op, 1e3 / m.ns_per_op);
}

// Megaflow-like masks: in_port + eth_type + ipv4_dst/prefix, optionally tp_dst and
// ipv4_src; 100 distinct shapes (25 prefixes x 2 x 2), 3 to 4 mask words each.
FlowMask bench_mask(uint32_t s) {
  FlowMask m = zero_key();
  m.in_port = ~0u;
  m.eth_type = 0xffff;
  m.ipv4_dst = __builtin_bswap32(~0u << (32 - (8 + s % 25)));
  if ((s / 25) % 2) m.tp_dst = 0xffff;
  if ((s / 50) % 2) m.ipv4_src = ~0u;
  return m;
}

FlowKey random_key(std::mt19937_64& rng) {
  FlowKey k = zero_key();
  k.in_port = static_cast<uint32_t>(rng() % 65536);
  k.eth_type = __builtin_bswap16(0x0800);
  k.ipv4_src = static_cast<uint32_t>(rng());
  k.ipv4_dst = static_cast<uint32_t>(rng());
  k.nw_proto = 6;
  k.tp_src = static_cast<uint16_t>(rng());
  k.tp_dst = static_cast<uint16_t>(rng());
  return k;
}

struct Setup {
  std::vector<std::unique_ptr<ClsRule>> rules;
  std::vector<FlowKey> pkts;
};

Setup make_setup(uint32_t n_rules, uint32_t n_subtables, uint32_t n_pkts, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Setup s;
  for (uint32_t i = 0; i < n_rules; ++i) {
    auto r = std::make_unique<ClsRule>();
    r->key = random_key(rng);
    r->mask = bench_mask(i % n_subtables);
    apply_mask(r->key, r->mask, r->key);
    s.rules.push_back(std::move(r));
  }
  for (uint32_t i = 0; i < n_pkts; ++i) {
    const ClsRule& r = *s.rules[rng() % n_rules];
    FlowKey k = random_key(rng);
    for (size_t w = 0; w < FlowKey::kWords; ++w)
      k.words()[w] = r.key.words()[w] | (k.words()[w] & ~r.mask.words()[w]);
    s.pkts.push_back(k);
  }
  return s;
}

void bench_classifier(uint32_t n_rules, uint32_t n_subtables, bool quick) {
  const int ms = quick ? 20 : 200;
  // The keys a PMD looks up were just written by the parser, so they are hot: cycle over
  // a set of distinct flows that stays in L2 (keys are 184 bytes) rather than streaming
  // keys from memory, which would measure the key fetch instead of the classifier.
  constexpr uint32_t n_pkts = 4096;
  Setup s = make_setup(n_rules, n_subtables, n_pkts, n_rules * 131u + n_subtables);
  Qsbr rcu;
  Classifier cls(rcu);

  const auto t0 = Clock::now();
  for (auto& r : s.rules) cls.insert(r.get());
  const double ins_s = std::chrono::duration<double>(Clock::now() - t0).count();

  // Rank the subtables once by real traffic, as the PMD's periodic rerank would.
  for (const FlowKey& p : s.pkts) keep(cls.lookup(p));
  cls.rerank();

  uint64_t hits = 0;
  const Measure one = measure(
      [&] {
        for (const FlowKey& p : s.pkts) hits += cls.lookup(p) != nullptr;
      },
      s.pkts.size(), ms);
  std::vector<const FlowKey*> ptrs(s.pkts.size());
  for (size_t i = 0; i < s.pkts.size(); ++i) ptrs[i] = &s.pkts[i];
  uint64_t misses = 0;
  const Measure batch = measure(
      [&] {
        const ClsRule* out[32];
        for (size_t i = 0; i + 32 <= ptrs.size(); i += 32)
          misses += static_cast<uint64_t>(__builtin_popcount(cls.lookup_batch(&ptrs[i], 32, out)));
      },
      s.pkts.size() / 32 * 32, ms);
  keep(hits);
  if (misses != 0)
    std::printf("  (unexpected: %lu batch misses)\n", static_cast<unsigned long>(misses));

  print_row("megaflow lookup", n_rules, static_cast<uint32_t>(cls.subtable_count()), one);
  print_row("megaflow lookup_batch(32)", n_rules, static_cast<uint32_t>(cls.subtable_count()),
            batch);
  const double ins_ns = ins_s * 1e9 / n_rules;
  std::printf("%-26s %8u %9u %10.1f %10.1f %10.2f\n", "insert", n_rules,
              static_cast<uint32_t>(cls.subtable_count()), ins_ns, ins_ns * g_tsc_per_ns,
              1e3 / ins_ns);
  for (auto& r : s.rules) cls.remove(r.get());
  rcu.reclaim();
}

void bench_reference(uint32_t n_rules, uint32_t n_subtables, bool quick) {
  Setup s = make_setup(n_rules, n_subtables, quick ? 512 : 4096, 7);
  ReferenceClassifier ref;
  for (uint32_t i = 0; i < n_rules; ++i) ref.insert(s.rules[i]->key, s.rules[i]->mask, 0, i);
  uint64_t hits = 0;
  const Measure m = measure(
      [&] {
        for (const FlowKey& p : s.pkts) hits += ref.lookup(p) != nullptr;
      },
      s.pkts.size(), quick ? 20 : 200);
  keep(hits);
  print_row("peer: linear reference", n_rules, n_subtables, m);
}

void bench_emc(bool quick) {
  constexpr uint32_t kFlows = 4096;
  std::mt19937_64 rng(99);
  std::vector<FlowKey> keys;
  std::vector<uint32_t> hashes;
  for (uint32_t i = 0; i < kFlows; ++i) {
    keys.push_back(random_key(rng));
    hashes.push_back(hash_key(keys.back()));
  }
  ClsRule rule;
  Emc emc;
  emc.set_insert_inverse_prob(1);
  for (uint32_t i = 0; i < kFlows; ++i) emc.insert(keys[i], hashes[i], &rule);
  std::vector<uint32_t> order(65536);
  for (auto& o : order) o = static_cast<uint32_t>(rng() % kFlows);
  uint64_t hits = 0;
  const Measure m = measure(
      [&] {
        for (uint32_t o : order) hits += emc.lookup(keys[o], hashes[o]) != nullptr;
      },
      order.size(), quick ? 20 : 200);
  print_row("EMC hit (hash given)", kFlows, 0, m);
  const Measure mh = measure(
      [&] {
        for (uint32_t o : order) hits += emc.lookup(keys[o], hash_key(keys[o])) != nullptr;
      },
      order.size(), quick ? 20 : 200);
  keep(hits);
  print_row("EMC hit (+ hash_key)", kFlows, 0, mh);

  // The megaflow OVS installs for "in_port=1,actions=output:2": recirc_id, in_port,
  // eth_type, ip frag matched (3 key words to verify on every hit).
  Qsbr rcu;
  Classifier cls(rcu);
  ClsRule wide;
  wide.mask.in_port = 0xffffffffu;
  wide.mask.recirc_id = 0xffffffffu;
  wide.mask.eth_type = 0xffff;
  wide.mask.nw_frag = 0xff;
  wide.key.in_port = 1;
  wide.key.eth_type = 0x0008;
  cls.insert(&wide);
  Emc emc2;
  emc2.set_insert_inverse_prob(1);
  for (uint32_t i = 0; i < kFlows; ++i) {
    keys[i].in_port = 1;
    keys[i].recirc_id = 0;
    keys[i].eth_type = 0x0008;
    keys[i].nw_frag = 0;
    hashes[i] = hash_key(keys[i]);
    emc2.insert(keys[i], hashes[i], &wide);
  }
  const Measure mw = measure(
      [&] {
        for (uint32_t o : order) hits += emc2.lookup(keys[o], hashes[o]) != nullptr;
      },
      order.size(), quick ? 20 : 200);
  keep(hits);
  print_row("EMC hit, OVS megaflow (3 words)", kFlows, 0, mw);
  cls.remove(&wide);
  rcu.reclaim();
}

void bench_qsbr(bool quick) {
  Qsbr rcu;
  const int slot = rcu.register_reader();
  const Measure m = measure(
      [&] {
        for (int i = 0; i < 1024; ++i) rcu.quiescent(slot);
      },
      1024, quick ? 10 : 100);
  print_row("qsbr quiescent", 0, 0, m);
  rcu.unregister_reader(slot);
}

void usage() {
  std::printf(
      "usage: gl-bench-classifier [--quick] [--help]\n"
      "  Measures the megaflow classifier (single and batch-of-32 lookups, insert rate)\n"
      "  for 1k/10k/100k rules over 1/10/100 subtables, the EMC hit cost, the QSBR\n"
      "  quiescent cost, and the linear reference classifier as the peer.\n"
      "  --quick  shorter runs and fewer packets (smoke test)\n");
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) {
      quick = true;
    } else if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      usage();
      return 0;
    } else {
      std::fprintf(stderr, "unknown argument: %s\n", argv[i]);
      usage();
      return 2;
    }
  }
  calibrate_tsc();
  std::printf(
      "gl-bench-classifier: TSC %.3f GHz%s; one core; 4096 distinct hitting flows "
      "cycled; megaflow rules all priority 0, uniform traffic over subtables\n\n",
      g_tsc_per_ns, quick ? " (quick)" : "");
  std::printf("%-26s %8s %9s %10s %10s %10s\n", "case", "rules", "subtables", "ns/op", "cycles/op",
              "Mops/s");
  for (uint32_t rules : {1000u, 10000u, 100000u})
    for (uint32_t subtables : {1u, 10u, 100u}) bench_classifier(rules, subtables, quick);
  bench_reference(1000, 10, quick);
  bench_emc(quick);
  bench_qsbr(quick);
  return 0;
}
