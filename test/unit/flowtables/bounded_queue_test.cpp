// flow::BoundedQueue: order, capacity, wrap-around, and many producers against one
// consumer on real threads (also under ThreadSanitizer: tools/sanitize.sh tsan).
#include <catch2/catch.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "flowtables/bounded_queue.hpp"

using gl::flow::BoundedQueue;

TEST_CASE("bounded queue: FIFO, full at its capacity, empty when drained", "[queue]") {
  auto q = std::make_unique<BoundedQueue<uint64_t, 8>>();
  uint64_t v = 0;
  CHECK_FALSE(q->ready());
  CHECK_FALSE(q->pop(v));
  for (uint64_t i = 0; i < 8; ++i) CHECK(q->push(100 + i));
  CHECK_FALSE(q->push(999));  // full: refused, nothing lost
  CHECK(q->ready());
  uint64_t out[16];
  CHECK(q->pop_burst(out, 3) == 3);
  CHECK((out[0] == 100 && out[1] == 101 && out[2] == 102));
  // Three cells free again: the producers' next lap uses them.
  CHECK(q->push(200));
  CHECK(q->push(201));
  CHECK(q->push(202));
  CHECK_FALSE(q->push(203));
  CHECK(q->pop_burst(out, 16) == 8);
  const uint64_t want[] = {103, 104, 105, 106, 107, 200, 201, 202};
  for (int i = 0; i < 8; ++i) CHECK(out[i] == want[i]);
  CHECK_FALSE(q->ready());
  // Many laps around the ring, one item at a time.
  for (uint64_t i = 0; i < 1000; ++i) {
    REQUIRE(q->push(i));
    REQUIRE(q->pop(v));
    REQUIRE(v == i);
  }
}

TEST_CASE(
    "bounded queue: producers on three threads, one consumer: each item once, each "
    "producer's in order",
    "[queue][threads]") {
  constexpr unsigned kProducers = 3;
  constexpr uint64_t kPerProducer = 200000;
  struct Item {
    uint32_t producer;
    uint32_t seq;
  };
  auto q = std::make_unique<BoundedQueue<Item, 64>>();  // small: full often
  std::atomic<uint64_t> full{0};
  std::vector<std::thread> producers;
  for (unsigned p = 0; p < kProducers; ++p)
    producers.emplace_back([&, p] {
      for (uint32_t s = 0; s < kPerProducer; ++s)
        while (!q->push(Item{p, s})) {
          full.fetch_add(1, std::memory_order_relaxed);
          std::this_thread::yield();
        }
    });
  std::vector<uint32_t> next(kProducers, 0);
  uint64_t got = 0, out_of_order = 0, bad = 0;
  Item buf[32];
  while (got < kProducers * kPerProducer) {
    const unsigned n = q->pop_burst(buf, 32);
    if (n == 0) {
      std::this_thread::yield();
      continue;
    }
    for (unsigned i = 0; i < n; ++i) {
      if (buf[i].producer >= kProducers) {
        ++bad;
        continue;
      }
      if (buf[i].seq != next[buf[i].producer]) ++out_of_order;
      next[buf[i].producer] = buf[i].seq + 1;
      ++got;
    }
  }
  for (auto& t : producers) t.join();
  CHECK(bad == 0);
  CHECK(out_of_order == 0);
  for (unsigned p = 0; p < kProducers; ++p) CHECK(next[p] == kPerProducer);
  CHECK_FALSE(q->ready());
  INFO("pushes refused while full: " << full.load());
  CHECK(full.load() > 0);  // the queue was full at times: that path ran too
}
