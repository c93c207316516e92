#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "flowtables/rcu.hpp"

using namespace gl::flow;

TEST_CASE("grace periods with no readers end at once", "[rcu]") {
  Qsbr rcu;
  const uint64_t t = rcu.start_grace();
  CHECK(rcu.grace_done(t));
  rcu.synchronize();
  int ran = 0;
  rcu.defer([&] { ++ran; });
  rcu.defer([&] { ++ran; });
  CHECK(rcu.pending() == 2);
  CHECK(rcu.reclaim() == 2);
  CHECK(ran == 2);
  CHECK(rcu.pending() == 0);
}

TEST_CASE("an online reader holds a grace period until it is quiescent", "[rcu]") {
  Qsbr rcu;
  const int a = rcu.register_reader();
  const int b = rcu.register_reader();
  REQUIRE(a >= 0);
  REQUIRE(b >= 0);
  REQUIRE(a != b);

  int ran = 0;
  rcu.defer([&] { ++ran; });
  const uint64_t t = rcu.start_grace();
  CHECK_FALSE(rcu.grace_done(t));
  CHECK(rcu.reclaim() == 0);

  rcu.quiescent(a);
  CHECK_FALSE(rcu.grace_done(t));  // b has not passed yet
  rcu.offline(b);                  // offline counts as quiescent
  CHECK(rcu.grace_done(t));
  CHECK(rcu.reclaim() == 1);
  CHECK(ran == 1);

  // Back online: a new grace period waits for b again.
  rcu.online(b);
  const uint64_t t2 = rcu.start_grace();
  rcu.quiescent(a);
  CHECK_FALSE(rcu.grace_done(t2));
  rcu.quiescent(b);
  CHECK(rcu.grace_done(t2));

  // A quiescent state reported before the grace period started does not count.
  const uint64_t t3 = rcu.start_grace();
  CHECK_FALSE(rcu.grace_done(t3));

  rcu.unregister_reader(a);
  rcu.unregister_reader(b);
  CHECK(rcu.grace_done(t3));
}

TEST_CASE("reader slots are reused and bounded", "[rcu]") {
  Qsbr rcu;
  std::vector<int> slots;
  for (int i = 0; i < Qsbr::kMaxReaders; ++i) slots.push_back(rcu.register_reader());
  CHECK(rcu.register_reader() == -1);
  rcu.unregister_reader(slots[7]);
  CHECK(rcu.register_reader() == slots[7]);
  for (int s : slots) rcu.unregister_reader(s);
}

TEST_CASE("deferred callbacks run in order and may defer more", "[rcu]") {
  Qsbr rcu;
  std::vector<int> order;
  rcu.defer([&] {
    order.push_back(1);
    rcu.defer([&] { order.push_back(3); });
  });
  rcu.defer([&] { order.push_back(2); });
  CHECK(rcu.reclaim() == 2);
  CHECK(rcu.reclaim() == 1);
  CHECK(order == std::vector<int>{1, 2, 3});
}

namespace {

struct Obj {
  static constexpr uint64_t kAlive = 0xa11fe;
  static constexpr uint64_t kFreed = 0xdead;
  std::atomic<uint64_t> state{kAlive};
  uint64_t value = 0;
};

}  // namespace

TEST_CASE("readers never see a reclaimed object (threads)", "[rcu][threads]") {
  Qsbr rcu;
  std::atomic<Obj*> current{new Obj};
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> errors{0};
  std::atomic<uint64_t> reads{0};
  std::vector<Obj*> graveyard;  // poisoned, freed at the end: a late reader sees kFreed

  auto reader = [&](bool go_offline) {
    const int slot = rcu.register_reader();  // (no Catch2 assertions off the main thread)
    if (slot < 0) {
      errors.fetch_add(1);
      return;
    }
    uint64_t n = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      for (int i = 0; i < 64; ++i) {
        const Obj* o = current.load(std::memory_order_acquire);
        if (o->state.load(std::memory_order_relaxed) != Obj::kAlive) errors.fetch_add(1);
        ++n;
      }
      rcu.quiescent(slot);
      if (go_offline && (n & 1023) == 0) {
        rcu.offline(slot);
        std::this_thread::yield();
        rcu.online(slot);
      }
    }
    reads.fetch_add(n);
    rcu.unregister_reader(slot);
  };
  std::thread r1(reader, false);
  std::thread r2(reader, true);

  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(300);
  uint64_t swaps = 0;
  while (std::chrono::steady_clock::now() < end) {
    Obj* fresh = new Obj;
    fresh->value = ++swaps;
    Obj* old = current.exchange(fresh, std::memory_order_acq_rel);
    rcu.defer([old, &graveyard] {
      old->state.store(Obj::kFreed, std::memory_order_relaxed);
      graveyard.push_back(old);
    });
    rcu.reclaim();
    if (swaps % 64 == 0) rcu.synchronize();
  }
  stop = true;
  r1.join();
  r2.join();
  rcu.synchronize();
  rcu.reclaim();
  CHECK(rcu.pending() == 0);
  CHECK(errors.load() == 0);
  CHECK(reads.load() > 0);
  CHECK(graveyard.size() == swaps);
  for (Obj* o : graveyard) delete o;
  delete current.load();
}

TEST_CASE("synchronize waits for a reader in its critical section", "[rcu][threads]") {
  Qsbr rcu;
  std::atomic<int> phase{0};
  std::thread reader([&] {
    const int slot = rcu.register_reader();
    phase = 1;  // "holding a reference"
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    phase = 2;
    rcu.quiescent(slot);
    rcu.unregister_reader(slot);
  });
  while (phase.load() == 0) std::this_thread::yield();
  rcu.synchronize();
  CHECK(phase.load() == 2);
  reader.join();
}
