// gl-pktgen's receive-side accounting: the figures a performance tester reads (loss,
// duplicates, reordering, latency percentiles) must be exactly what happened.
#include <catch2/catch.hpp>

#include <algorithm>
#include <random>
#include <set>
#include <vector>

#include "tools/pktgen/stats.hpp"

using gl::pktgen::LatencyHistogram;
using gl::pktgen::SeqTracker;
using Kind = SeqTracker::Kind;

TEST_CASE("in-order stream: every packet new, nothing late or duplicate", "[pktgen][seq]") {
  SeqTracker t;
  for (uint32_t s = 0; s < 100000; ++s) CHECK(t.on_seq(s) == Kind::kNew);
  CHECK(t.unique() == 100000);
  CHECK(t.late() == 0);
  CHECK(t.duplicates() == 0);
  CHECK(t.top() == 99999);
}

TEST_CASE("gaps, swaps and repeats are told apart", "[pktgen][seq]") {
  SeqTracker t;
  CHECK(t.on_seq(0) == Kind::kNew);
  CHECK(t.on_seq(2) == Kind::kNew);   // 1 missing so far
  CHECK(t.on_seq(1) == Kind::kLate);  // ... arrived after 2: reordered, not lost
  CHECK(t.on_seq(1) == Kind::kDuplicate);
  CHECK(t.on_seq(5) == Kind::kNew);  // 3 and 4 lost
  CHECK(t.unique() == 4);
  CHECK(t.late() == 1);
  CHECK(t.duplicates() == 1);
  // lost = highest + 1 - unique
  CHECK(t.top() + 1 - t.unique() == 2);
}

TEST_CASE("random drop/dup/reorder: counts match a set-based model", "[pktgen][seq]") {
  std::mt19937 rng(42);
  std::vector<uint32_t> sent;
  for (uint32_t s = 0; s < 50000; ++s) {
    if (rng() % 20 == 0) continue;  // dropped
    sent.push_back(s);
    if (rng() % 50 == 0) sent.push_back(s);  // duplicated
  }
  for (size_t i = 0; i + 1 < sent.size(); i += 2)  // some neighbours swapped
    if (rng() % 10 == 0) std::swap(sent[i], sent[i + 1]);
  SeqTracker t;
  std::set<uint32_t> seen;
  uint32_t top = 0;
  uint64_t late = 0, dup = 0;
  bool first = true;
  for (uint32_t s : sent) {
    Kind k = t.on_seq(s);
    if (seen.count(s)) {
      ++dup;
      CHECK(k == Kind::kDuplicate);
    } else if (!first && s < top) {
      ++late;
      CHECK(k == Kind::kLate);
    } else {
      CHECK(k == Kind::kNew);
    }
    seen.insert(s);
    top = first ? s : std::max(top, s);
    first = false;
  }
  CHECK(t.unique() == seen.size());
  CHECK(t.duplicates() == dup);
  CHECK(t.late() == late);
  CHECK(t.top() + 1 - t.unique() == uint64_t(top) + 1 - seen.size());  // lost
}

TEST_CASE("32-bit sequence numbers wrap without false loss", "[pktgen][seq]") {
  SeqTracker t;
  for (uint64_t s = 0xfffffff0ull; s < 0x100000010ull; ++s)
    CHECK(t.on_seq(static_cast<uint32_t>(s)) == Kind::kNew);
  CHECK(t.unique() == 32);
  CHECK(t.top() == 0x10000000full);
}

TEST_CASE("latency percentiles within the histogram's resolution", "[pktgen][latency]") {
  LatencyHistogram h;
  for (uint64_t v = 1; v <= 100000; ++v) h.add(v * 10);  // 10 ns .. 1 ms, uniform
  CHECK(h.count() == 100000);
  CHECK(h.min() == 10);
  CHECK(h.max() == 1000000);
  auto near = [](uint64_t got, double want) { return std::abs(got - want) <= want * 0.0625; };
  CHECK(near(h.quantile(0.5), 500000));
  CHECK(near(h.quantile(0.99), 990000));
  CHECK(h.quantile(1.0) == 1000000);
  CHECK(h.mean() == Approx(500005.0));
  LatencyHistogram other;
  other.add(5);
  h.merge(other);
  CHECK(h.min() == 5);
  CHECK(h.count() == 100001);
}
