#include "flowtables/rcu.hpp"

#include <cassert>
#include <chrono>
#include <thread>
#include <utility>
#include <vector>

namespace gl::flow {

Qsbr::~Qsbr() {
  for (Deferred& d : deferred_) d.fn();
}

int Qsbr::register_reader() {
  for (int i = 0; i < kMaxReaders; ++i) {
    bool expected = false;
    if (!slots_[i].in_use.compare_exchange_strong(expected, true, std::memory_order_acq_rel))
      continue;
    int hw = high_water_.load(std::memory_order_relaxed);
    while (hw < i + 1 && !high_water_.compare_exchange_weak(hw, i + 1, std::memory_order_seq_cst)) {
    }
    online(i);
    return i;
  }
  return -1;
}

void Qsbr::unregister_reader(int slot) {
  assert(slot >= 0 && slot < kMaxReaders);
  offline(slot);
  slots_[slot].in_use.store(false, std::memory_order_release);
}

uint64_t Qsbr::min_seen() const {
  // Pairs with online()'s read-modify-write of sync_: either the reader sees the writer's
  // unlink, or we see the reader online.
  sync_.fetch_add(1, std::memory_order_seq_cst);
  uint64_t min = kOffline;
  const int hw = high_water_.load(std::memory_order_acquire);
  for (int i = 0; i < hw; ++i) {
    const uint64_t seen = slots_[i].seen.load(std::memory_order_acquire);
    if (seen < min) min = seen;
  }
  return min;
}

void Qsbr::synchronize() {
  const uint64_t token = start_grace();
  auto nap = std::chrono::microseconds(2);
  while (!grace_done(token)) {
    std::this_thread::sleep_for(nap);
    if (nap < std::chrono::microseconds(200)) nap *= 2;
  }
}

void Qsbr::defer(std::function<void()> fn) {
  std::lock_guard lock(deferred_mu_);
  deferred_.push_back(Deferred{start_grace(), std::move(fn)});
}

size_t Qsbr::reclaim() {
  // Tokens handed out after this read are larger than every epoch a reader can have
  // reported so far, so they cannot pass by mistake.
  const uint64_t done = min_seen();
  std::vector<std::function<void()>> ready;
  {
    std::lock_guard lock(deferred_mu_);
    while (!deferred_.empty() && deferred_.front().token <= done) {
      ready.push_back(std::move(deferred_.front().fn));
      deferred_.pop_front();
    }
  }
  // Run outside the lock: a callback may defer more work.
  for (auto& fn : ready) fn();
  return ready.size();
}

size_t Qsbr::pending() const {
  std::lock_guard lock(deferred_mu_);
  return deferred_.size();
}

}  // namespace gl::flow
