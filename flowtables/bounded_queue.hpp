// bounded_queue.hpp — a fixed-size lock-free queue between threads, for the datapath's
// handoffs: upcall slots between a PMD and the control thread, ESP packets handed to the
// context that owns their SA. Written here rather than taken from DPDK's rte_ring so that
// ThreadSanitizer checks it: rte_ring's x86 build orders its accesses with compiler
// barriers and volatile, which TSan cannot see (the flowtables tests run under TSan; the
// datapath, linked with DPDK, does not).
//
// The design is Dmitry Vyukov's bounded MPMC queue: each cell carries a sequence number
// that says whose turn it is (a producer's for position p when seq == p, the consumer's
// when seq == p + 1), so producers claim positions with one CAS and publish with one
// release store, and the consumer needs no CAS at all. Any number of producers; ONE
// consumer (pop/pop_burst/ready from one thread at a time), which is all the datapath
// needs and keeps the consumer's side to loads and stores.
//
// Thread-safety: push() from any thread; pop(), pop_burst() and ready() from the single
// consumer. Not copyable. N is a power of two; the queue holds up to N items.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <type_traits>

namespace gl::flow {

template <class T, size_t N>
class BoundedQueue {
  static_assert(N >= 2 && (N & (N - 1)) == 0, "N must be a power of two");
  static_assert(std::is_trivially_copyable_v<T>, "items are copied in and out");

 public:
  BoundedQueue() {
    for (size_t i = 0; i < N; ++i) cells_[i].seq.store(i, std::memory_order_relaxed);
  }
  BoundedQueue(const BoundedQueue&) = delete;
  BoundedQueue& operator=(const BoundedQueue&) = delete;

  static constexpr size_t capacity() { return N; }

  // Appends v; false when the queue is full (nothing changes then).
  bool push(const T& v) {
    size_t pos = tail_.load(std::memory_order_relaxed);
    for (;;) {
      Cell& c = cells_[pos & (N - 1)];
      const size_t seq = c.seq.load(std::memory_order_acquire);
      const auto dif = static_cast<std::ptrdiff_t>(seq - pos);
      if (dif == 0) {
        // Our turn at pos, if no other producer took it meanwhile.
        if (tail_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
          c.item = v;
          c.seq.store(pos + 1, std::memory_order_release);  // the consumer's turn
          return true;
        }
      } else if (dif < 0) {
        return false;  // the cell still holds the item of the previous lap: full
      } else {
        pos = tail_.load(std::memory_order_relaxed);  // another producer went ahead
      }
    }
  }

  // Takes the oldest item into out; false when there is none (or the oldest claimed
  // position is not published yet: its producer is between its CAS and its store).
  bool pop(T& out) { return pop_burst(&out, 1) == 1; }

  // Takes up to max items in order; returns how many.
  unsigned pop_burst(T* out, unsigned max) {
    size_t pos = head_.load(std::memory_order_relaxed);
    unsigned n = 0;
    while (n < max) {
      Cell& c = cells_[pos & (N - 1)];
      if (c.seq.load(std::memory_order_acquire) != pos + 1) break;
      out[n++] = c.item;
      c.seq.store(pos + N, std::memory_order_release);  // a producer's turn, next lap
      ++pos;
    }
    head_.store(pos, std::memory_order_relaxed);
    return n;
  }

  // Whether pop() would find an item now (the consumer's cheap check in a poll loop).
  bool ready() const {
    const size_t pos = head_.load(std::memory_order_relaxed);
    return cells_[pos & (N - 1)].seq.load(std::memory_order_acquire) == pos + 1;
  }

 private:
  struct Cell {
    std::atomic<size_t> seq;
    T item;
  };
  alignas(64) Cell cells_[N];
  alignas(64) std::atomic<size_t> tail_{0};  // producers: the next position to claim
  alignas(64) std::atomic<size_t> head_{0};  // the consumer's: the next position to take
};

}  // namespace gl::flow
