// Anti-replay window: edges, ESN inference (RFC 4303 A2.2) and a random comparison with a
// trivially correct model.
#include <catch2/catch.hpp>

#include <random>
#include <set>

#include "crypto/replay.hpp"

using gl::crypto::ReplayWindow;
using gl::crypto::Result;

namespace {

std::unique_ptr<ReplayWindow> window(uint32_t size, uint64_t top = 0) {
  auto w = std::make_unique<ReplayWindow>();
  w->reset(size, top);
  return w;
}

// Accept-and-mark in one step, as the decap does after authentication.
Result accept(ReplayWindow& w, uint64_t seq) {
  const Result pre = w.check(seq);
  const Result post = w.update(seq);
  REQUIRE(pre == post);
  return post;
}

}  // namespace

TEST_CASE("replay: in order, duplicate, out of order inside the window, too old") {
  auto w = window(1024);
  CHECK(w->check(0) == Result::too_old);  // 0 is never a valid sequence number
  for (uint64_t s = 1; s <= 2000; ++s) REQUIRE(accept(*w, s) == Result::ok);
  CHECK(w->top() == 2000);
  CHECK(accept(*w, 2000) == Result::replay);
  CHECK(accept(*w, 1500) == Result::replay);
  // Window is [top - 1023, top] = [977, 2000].
  CHECK(w->check(977) == Result::replay);
  CHECK(w->check(976) == Result::too_old);
  // Jump ahead leaving holes, then fill them out of order.
  CHECK(accept(*w, 2100) == Result::ok);
  for (uint64_t s = 2099; s > 2000; s -= 2) CHECK(accept(*w, s) == Result::ok);
  for (uint64_t s = 2099; s > 2000; s -= 2) CHECK(accept(*w, s) == Result::replay);
  CHECK(accept(*w, 2100 - 1023) == Result::replay);  // oldest in window, seen before
  CHECK(accept(*w, 2100 - 1024) == Result::too_old);
}

TEST_CASE("replay: oldest slot of the window is usable exactly once; big jumps clear") {
  for (uint32_t size : {64u, 128u, 1024u, 4096u}) {
    INFO("window " << size);
    auto w = window(size);
    REQUIRE(accept(*w, 10'000) == Result::ok);
    CHECK(accept(*w, 10'000 - size + 1) == Result::ok);
    CHECK(accept(*w, 10'000 - size + 1) == Result::replay);
    CHECK(accept(*w, 10'000 - size) == Result::too_old);
    // A jump of more than the whole bitmap: nothing old may look seen.
    REQUIRE(accept(*w, 1'000'000) == Result::ok);
    for (uint64_t s = 1'000'000 - size + 1; s < 1'000'000; ++s) REQUIRE(w->check(s) == Result::ok);
    // A jump by exactly one word boundary.
    REQUIRE(accept(*w, 1'000'064) == Result::ok);
    CHECK(w->check(1'000'000) == (size > 64 ? Result::replay : Result::too_old));
  }
}

TEST_CASE("replay: ESN inference, RFC 4303 Appendix A2.2 cases A and B") {
  constexpr uint64_t k32 = uint64_t{1} << 32;
  SECTION("case A: window inside one subspace") {
    auto w = window(1024, 5 * k32 + 5000);
    CHECK(w->infer(5000) == 5 * k32 + 5000);
    CHECK(w->infer(4000) == 5 * k32 + 4000);  // inside the window
    CHECK(w->infer(5000 - 1023) == 5 * k32 + 5000 - 1023);
    CHECK(w->infer(5000 - 1024) == 6 * k32 + 5000 - 1024);  // below: next subspace
    CHECK(w->infer(0xffffffffu) == 5 * k32 + 0xffffffffu);
  }
  SECTION("case B: window spans the low-32 wrap") {
    auto w = window(1024, 7 * k32 + 100);  // window [7*2^32 - 923, 7*2^32 + 100]
    CHECK(w->infer(100) == 7 * k32 + 100);
    CHECK(w->infer(0) == 7 * k32);
    CHECK(w->infer(0xffffffffu) == 7 * k32 - 1);  // previous subspace, inside the window
    CHECK(w->infer(0xffffffffu - 922) == 7 * k32 - 923);
    CHECK(w->infer(5000) == 7 * k32 + 5000);  // ahead
  }
  SECTION("low 32 bits wrap while receiving in order") {
    auto w = window(1024, k32 - 3);
    for (uint64_t s = k32 - 2; s < k32 + 3; ++s) {
      const uint64_t seq = w->infer(static_cast<uint32_t>(s));
      REQUIRE(seq == s);
      REQUIRE(accept(*w, seq) == Result::ok);
    }
    // Late packet from before the wrap, still inside the window.
    CHECK(w->infer(0xfffffff0u) == k32 - 16);
    CHECK(accept(*w, k32 - 16) == Result::ok);
    CHECK(accept(*w, w->infer(0xfffffffeu)) == Result::replay);
  }
  SECTION("high half of 0 never goes negative") {
    auto w = window(1024, 10);
    CHECK(w->infer(0xfffffff0u) == 0xfffffff0u);
  }
}

TEST_CASE("replay: random sequences agree with a set-based model") {
  std::mt19937_64 rng(42);
  for (uint32_t size : {64u, 1024u, 2048u}) {
    auto w = window(size);
    std::set<uint64_t> seen;
    uint64_t top = 0;
    uint64_t base = 1;
    for (int i = 0; i < 200'000; ++i) {
      // Mostly near the top, sometimes far back, sometimes a jump.
      const uint64_t r = rng() % 100;
      uint64_t s;
      if (r < 80) {
        s = top + (rng() % 64) - std::min<uint64_t>(top, 32);
      } else if (r < 95) {
        s = top - std::min<uint64_t>(top, rng() % (size + 200));
      } else {
        s = top + rng() % (3 * size);
      }
      if (s == 0) s = base;
      Result expect;
      if (s > top) {
        expect = Result::ok;
      } else if (top - s >= size) {
        expect = Result::too_old;
      } else {
        expect = seen.count(s) ? Result::replay : Result::ok;
      }
      REQUIRE(w->check(s) == expect);
      REQUIRE(w->update(s) == expect);
      if (expect == Result::ok) {
        seen.insert(s);
        top = std::max(top, s);
      }
    }
  }
}
