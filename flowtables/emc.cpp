#include "flowtables/emc.hpp"

#include <bit>
#include <cstdio>
#include <cstdlib>

namespace gl::flow {

Emc::Emc(uint32_t entries) {
  if (entries < 2 || !std::has_single_bit(entries)) {
    std::fprintf(stderr, "gl::flow::Emc: %u entries is not a power of two >= 2\n", entries);
    std::abort();
  }
  entries_ = std::make_unique<Entry[]>(entries);
  mask_ = entries - 1;
  shift_ = static_cast<uint32_t>(std::countr_zero(entries));
  set_insert_inverse_prob(kDefaultInsertInverseProb);
}

void Emc::set_insert_inverse_prob(uint32_t inverse_prob) {
  inverse_prob_ = inverse_prob;
  threshold_ = inverse_prob == 0 ? 0 : UINT32_MAX / inverse_prob;
}

void Emc::insert(const FlowKey& key, uint32_t hash, const ClsRule* rule) {
  if (inverse_prob_ == 0) return;
  if (inverse_prob_ != 1 && next_random() > threshold_) return;

  Entry* cand[2] = {&entries_[hash & mask_], &entries_[alt_index(hash)]};
  Entry* victim = nullptr;
  for (Entry* e : cand) {
    if (e->rule != nullptr && e->hash == hash && keys_equal(e->key, key)) {
      victim = e;  // same key: update in place
      break;
    }
  }
  if (victim == nullptr) {
    for (Entry* e : cand) {
      if (e->rule == nullptr || e->rule->dead.load(std::memory_order_relaxed)) {
        victim = e;
        break;
      }
    }
  }
  if (victim == nullptr) victim = cand[0]->hash <= cand[1]->hash ? cand[0] : cand[1];
  victim->hash = hash;
  victim->rule = rule;
  victim->key = key;
  bump(inserts_);
}

void Emc::sweep_dead() {
  for (uint32_t i = 0; i <= mask_; ++i) {
    Entry& e = entries_[i];
    if (e.rule != nullptr && e.rule->dead.load(std::memory_order_acquire)) {
      e.rule = nullptr;
      e.hash = 0;
    }
  }
}

void Emc::clear() {
  for (uint32_t i = 0; i <= mask_; ++i) {
    entries_[i].rule = nullptr;
    entries_[i].hash = 0;
  }
}

}  // namespace gl::flow
