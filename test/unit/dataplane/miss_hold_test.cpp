#include <catch2/catch.hpp>

#include <cstdint>
#include <set>
#include <vector>

#include "dataplane/miss_hold.hpp"

using gl::dp::MissHold;
using gl::flow::FlowKey;

namespace {

// Fake packets: MissHold never dereferences them.
rte_mbuf* pkt(uintptr_t i) {
  return reinterpret_cast<rte_mbuf*>(i * 64);
}

FlowKey key(uint32_t n) {
  FlowKey k{};
  k.in_port = 1;
  k.tp_src = static_cast<uint16_t>(n);
  return k;
}

struct Rig {
  MissHold h;
  std::set<uint16_t> flows;  // tp_src values that "have a flow"
  std::vector<std::pair<uint16_t, rte_mbuf*>> ran, sent;

  explicit Rig(uint64_t window = 100, uint64_t uncached = 1000, uint32_t per_key = 4,
               uint32_t max_held = 100, uint32_t max_keys = 100, uint64_t settle = 5,
               uint64_t max_window = 0) {
    h.configure({window, uncached, settle, per_key, max_held, max_keys, max_window});
  }
  void sweep(uint64_t now, size_t budget = 1000) {
    h.sweep(
        now, budget, [&](const FlowKey& k) { return flows.count(k.tp_src) != 0; },
        [&](const FlowKey& k, MissHold::Packets p) {
          for (rte_mbuf* m : p) ran.emplace_back(k.tp_src, m);
        },
        [&](const FlowKey& k, MissHold::Packets p) {
          for (rte_mbuf* m : p) sent.emplace_back(k.tp_src, m);
        });
  }
};

}  // namespace

TEST_CASE("MissHold: first miss goes up, repeats are held and run once the flow exists",
          "[miss_hold]") {
  Rig r;
  CHECK_FALSE(r.h.on_miss(key(1), pkt(1), 0));  // first: sent up
  CHECK(r.h.on_miss(key(1), pkt(2), 10));       // repeats: held
  CHECK(r.h.on_miss(key(1), pkt(3), 20));
  CHECK_FALSE(r.h.on_miss(key(2), pkt(4), 20));  // another key: its own first miss
  CHECK(r.h.n_held() == 2);
  r.sweep(30);  // no flow yet, window open: nothing released
  CHECK(r.ran.empty());
  CHECK(r.sent.empty());
  r.flows.insert(1);  // the handler installed key 1's flow
  r.sweep(40);        // found: the held packets wait for the first one's execute...
  CHECK(r.ran.empty());
  r.sweep(44);  // ...not long enough yet (settle 5)
  CHECK(r.ran.empty());
  r.sweep(45);  // then run
  REQUIRE(r.ran.size() == 2);
  CHECK(r.ran[0] == std::make_pair<uint16_t, rte_mbuf*>(1, pkt(2)));  // arrival order
  CHECK(r.ran[1] == std::make_pair<uint16_t, rte_mbuf*>(1, pkt(3)));
  CHECK(r.h.n_held() == 0);
  CHECK(r.h.counters().held == 2);
  CHECK(r.h.counters().run == 2);
  // Key 1 is forgotten: a later miss (the flow was deleted, say) goes up again.
  CHECK_FALSE(r.h.on_miss(key(1), pkt(5), 50));
}

TEST_CASE(
    "MissHold: without a flow the window runs out, held packets go up, the key is "
    "uncached for a while",
    "[miss_hold]") {
  Rig r(/*window=*/100, /*uncached=*/1000);
  CHECK_FALSE(r.h.on_miss(key(7), pkt(1), 0));
  CHECK(r.h.on_miss(key(7), pkt(2), 50));
  r.sweep(99);
  CHECK(r.sent.empty());
  CHECK_FALSE(r.h.on_miss(key(7), pkt(3), 100));  // window over: not held any more
  r.sweep(100);
  REQUIRE(r.sent.size() == 1);
  CHECK(r.sent[0].second == pkt(2));
  CHECK(r.h.counters().sent_up == 1);
  // Uncached: every miss goes straight up, none waits for a window again...
  for (uint64_t t = 200; t < 1000; t += 100) CHECK_FALSE(r.h.on_miss(key(7), pkt(t), t));
  r.sweep(1050);
  // ...until the period ends; then the key may be held again.
  CHECK_FALSE(r.h.on_miss(key(7), pkt(90), 1200));
  CHECK(r.h.on_miss(key(7), pkt(91), 1210));
}

TEST_CASE("MissHold: switched off, what is held goes up at the next sweep", "[miss_hold]") {
  Rig r;
  CHECK_FALSE(r.h.on_miss(key(3), pkt(1), 0));
  CHECK(r.h.on_miss(key(3), pkt(2), 1));
  auto c = r.h.config();
  c.window = 0;
  r.h.configure(c);
  CHECK_FALSE(r.h.on_miss(key(3), pkt(3), 2));  // no holding any more
  r.sweep(3);
  REQUIRE(r.sent.size() == 1);
  CHECK(r.sent[0].second == pkt(2));
  CHECK(r.h.n_held() == 0);
}

TEST_CASE("MissHold: limits send misses up instead of dropping them", "[miss_hold]") {
  Rig r(/*window=*/100, 1000, /*per_key=*/2, /*max_held=*/3, /*max_keys=*/3);
  CHECK_FALSE(r.h.on_miss(key(1), pkt(1), 0));
  CHECK(r.h.on_miss(key(1), pkt(2), 1));
  CHECK(r.h.on_miss(key(1), pkt(3), 2));
  CHECK_FALSE(r.h.on_miss(key(1), pkt(4), 3));  // per-key limit
  CHECK_FALSE(r.h.on_miss(key(2), pkt(5), 3));
  CHECK(r.h.on_miss(key(2), pkt(6), 4));
  CHECK_FALSE(r.h.on_miss(key(2), pkt(7), 5));  // table limit (3 held)
  CHECK_FALSE(r.h.on_miss(key(3), pkt(8), 5));  // third key tracked
  CHECK_FALSE(r.h.on_miss(key(4), pkt(9), 5));  // key limit: not tracked
  CHECK_FALSE(r.h.on_miss(key(4), pkt(10), 6));
  CHECK(r.h.n_keys() == 3);
  CHECK(r.h.counters().overflow == 4);
  // Everything held comes back exactly once.
  std::vector<std::pair<uint16_t, rte_mbuf*>> all;
  r.h.release_all([&](const FlowKey& k, MissHold::Packets p) {
    for (rte_mbuf* m : p) all.emplace_back(k.tp_src, m);
  });
  CHECK(all.size() == 3);
  CHECK(r.h.n_held() == 0);
  CHECK(r.h.n_keys() == 0);
}

TEST_CASE("MissHold: off when the window is 0", "[miss_hold]") {
  Rig r(/*window=*/0);
  CHECK_FALSE(r.h.on_miss(key(1), pkt(1), 0));
  CHECK_FALSE(r.h.on_miss(key(1), pkt(2), 1));
  CHECK(r.h.n_keys() == 0);
}

TEST_CASE("MissHold: sweep visits at most its budget, and every key in turn", "[miss_hold]") {
  Rig r(/*window=*/1000, 1000, 4, 1000, 1000);
  for (uint32_t k = 0; k < 50; ++k) {
    CHECK_FALSE(r.h.on_miss(key(k), pkt(2 * k + 1), 0));
    CHECK(r.h.on_miss(key(k), pkt(2 * k + 2), 1));
  }
  for (uint32_t k = 0; k < 50; ++k) r.flows.insert(static_cast<uint16_t>(k));
  for (int i = 0; i < 5; ++i) r.sweep(2, /*budget=*/10);  // every key found once...
  CHECK(r.ran.empty());
  r.sweep(20, /*budget=*/10);  // ...then run, at most the budget per sweep
  CHECK(r.ran.size() == 10);
  for (int i = 0; i < 4; ++i) r.sweep(21, 10);
  CHECK(r.ran.size() == 50);
  CHECK(r.h.n_keys() == 0);
  std::set<uint16_t> seen;
  for (auto& [k, m] : r.ran) seen.insert(k);
  CHECK(seen.size() == 50);
}

TEST_CASE("MissHold: while the handler keeps installing flows a window runs on, up to max_window",
          "[miss_hold]") {
  // A burst: the handler works through a backlog longer than the window. Its flow puts
  // for other keys keep key 1's window open, so key 1's repeats wait for its flow
  // instead of going up as duplicates.
  Rig r(/*window=*/100, 1000, /*per_key=*/8, 100, 100, /*settle=*/5, /*max_window=*/1000);
  CHECK_FALSE(r.h.on_miss(key(1), pkt(1), 0));
  CHECK(r.h.on_miss(key(1), pkt(2), 10));
  CHECK_FALSE(r.h.on_miss(key(2), pkt(3), 0));
  CHECK(r.h.on_miss(key(2), pkt(4), 10));
  r.h.note_progress(90);  // a flow for some other key at 90
  r.sweep(150);           // past the window, but progress within it: still held
  CHECK(r.sent.empty());
  CHECK(r.h.on_miss(key(1), pkt(5), 160));  // and repeats are still held
  r.h.note_progress(240);
  r.flows.insert(1);  // key 1's flow arrives at 300, 3 windows after its first miss
  r.sweep(300);
  r.sweep(305);
  REQUIRE(r.ran.size() == 2);
  CHECK(r.ran[0].second == pkt(2));
  CHECK(r.ran[1].second == pkt(5));
  CHECK(r.sent.empty());
  // Key 2 never gets a flow: once no flow was installed for a whole window (last at 240),
  // its packets go up.
  r.sweep(339);
  CHECK(r.sent.empty());
  r.sweep(340);
  REQUIRE(r.sent.size() == 1);
  CHECK(r.sent[0].second == pkt(4));

  // Progress never stops: max_window still ends the wait.
  CHECK_FALSE(r.h.on_miss(key(3), pkt(6), 2000));
  CHECK(r.h.on_miss(key(3), pkt(7), 2010));
  for (uint64_t t = 2050; t < 3000; t += 50) {
    r.h.note_progress(t);
    r.sweep(t);
  }
  CHECK(r.sent.size() == 1);
  r.h.note_progress(3000);
  r.sweep(3000);  // 1000 ticks after key 3's first miss
  REQUIRE(r.sent.size() == 2);
  CHECK(r.sent[1].second == pkt(7));
}
