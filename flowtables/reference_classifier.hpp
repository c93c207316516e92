// reference_classifier.hpp — trivial linear classifier, the oracle for classifier tests.
//
// Purpose: the same matching semantics as gl::flow::Classifier (highest priority wins;
// the key is stored masked), written so plainly that it is obviously right. Tests only.
// Thread-safety: none (plain data). Complexity: insert O(1), remove and lookup O(rules).
#pragma once

#include <cstdint>
#include <vector>

#include "flowtables/flow_key.hpp"

namespace gl::flow {

class ReferenceClassifier {
 public:
  struct Rule {
    FlowKey key;  // masked
    FlowMask mask;
    int32_t priority;
    uint64_t id;
  };

  void insert(const FlowKey& key, const FlowMask& mask, int32_t priority, uint64_t id) {
    Rule r{key, mask, priority, id};
    apply_mask(key, mask, r.key);
    rules_.push_back(r);
  }

  // Removes the rule with this id; false when there is none.
  bool remove(uint64_t id) {
    for (size_t i = 0; i < rules_.size(); ++i) {
      if (rules_[i].id != id) continue;
      rules_[i] = rules_.back();
      rules_.pop_back();
      return true;
    }
    return false;
  }

  // A matching rule of the highest priority, or nullptr.
  const Rule* lookup(const FlowKey& pkt) const {
    const Rule* best = nullptr;
    for (const Rule& r : rules_) {
      if (!key_matches(pkt, r.key, r.mask)) continue;
      if (best == nullptr || r.priority > best->priority) best = &r;
    }
    return best;
  }

  size_t size() const { return rules_.size(); }
  const std::vector<Rule>& rules() const { return rules_; }

 private:
  std::vector<Rule> rules_;
};

}  // namespace gl::flow
