#include "flowtables/emc.hpp"

#include <algorithm>
#include <bit>
#include <cstdio>
#include <cstdlib>

namespace gl::flow {

Emc::Emc(uint32_t entries) {
  if (entries < kWays || !std::has_single_bit(entries)) {
    std::fprintf(stderr, "gl::flow::Emc: %u entries is not a power of two >= %d\n", entries, kWays);
    std::abort();
  }
  buckets_ = std::make_unique<Bucket[]>(entries / kWays);
  mask_ = entries / kWays - 1;
  set_insert_inverse_prob(kDefaultInsertInverseProb);
}

void Emc::set_insert_inverse_prob(uint32_t inverse_prob) {
  inverse_prob_ = inverse_prob;
  threshold_ = inverse_prob == 0 ? 0 : UINT32_MAX / inverse_prob;
}

void Emc::insert(const FlowKey& key, uint32_t hash, const ClsRule* rule) {
  if (inverse_prob_ == 0) return;
  if (inverse_prob_ != 1 && next_random() > threshold_) return;

  Bucket& b = buckets_[hash & mask_];
  int victim = -1;
  // The same microflow (same hash, cached rule still matching it): update in place.
  for (int i = 0; i < kWays && victim < 0; ++i)
    if (b.rule[i] != nullptr && b.hash[i] == hash && b.rule[i]->matches(key)) victim = i;
  // Else an empty or dead way, else a pseudo-random one.
  for (int i = 0; i < kWays && victim < 0; ++i)
    if (b.rule[i] == nullptr || b.rule[i]->dead.load(std::memory_order_relaxed)) victim = i;
  if (victim < 0) victim = static_cast<int>(next_random() % kWays);
  b.hash[victim] = hash;
  b.rule[victim] = rule;
  bump(inserts_);
}

void Emc::sweep_dead() {
  uint32_t pos = 0;
  sweep_dead_slice(pos, mask_ + 1);
}

bool Emc::sweep_dead_slice(uint32_t& pos, uint32_t n) {
  for (const ClsRule*& h : hints_)
    if (h != nullptr && h->dead.load(std::memory_order_acquire)) h = nullptr;
  const uint32_t end = pos + std::min(n, mask_ + 1 - pos);
  for (uint32_t i = pos; i < end; ++i) {
    Bucket& b = buckets_[i];
    for (int w = 0; w < kWays; ++w) {
      if (b.rule[w] != nullptr && b.rule[w]->dead.load(std::memory_order_acquire)) {
        b.rule[w] = nullptr;
        b.hash[w] = 0;
      }
    }
  }
  pos = end > mask_ ? 0 : end;
  return pos == 0;
}

void Emc::clear() {
  for (uint32_t i = 0; i <= mask_; ++i) buckets_[i] = Bucket{};
  for (const ClsRule*& h : hints_) h = nullptr;
}

}  // namespace gl::flow
