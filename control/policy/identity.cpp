#include "control/policy/identity.hpp"

#include <algorithm>
#include <unordered_set>

namespace gl::policy {

IdentityAllocator::IdentityAllocator(const Limits& limits) : limits_(limits) {
  workload_ = {limits.workload_first, limits.workload_last, limits.workload_first};
  cidr_ = {limits.cidr_first, limits.cidr_last, limits.cidr_first};
}

std::string IdentityAllocator::map_key(IdentityKind kind, std::string_view key) {
  std::string k(1, kind == IdentityKind::kCidr ? 'c' : 'w');
  k += '|';
  k += key;
  return k;
}

std::optional<uint32_t> IdentityAllocator::find(IdentityKind kind, std::string_view key) const {
  auto it = live_.find(map_key(kind, key));
  if (it == live_.end()) return std::nullopt;
  return it->second;
}

std::expected<IdentityAllocator, Error> IdentityAllocator::assign(
    const std::vector<std::string>& workload_keys,
    const std::vector<std::string>& cidr_keys) const {
  IdentityAllocator next(limits_);
  next.workload_ = workload_;
  next.cidr_ = cidr_;
  next.released_ = released_;
  next.released_order_ = released_order_;

  std::vector<std::string> wanted;
  wanted.reserve(workload_keys.size() + cidr_keys.size());
  for (const auto& k : workload_keys) wanted.push_back(map_key(IdentityKind::kWorkload, k));
  for (const auto& k : cidr_keys) wanted.push_back(map_key(IdentityKind::kCidr, k));
  std::sort(wanted.begin(), wanted.end());
  wanted.erase(std::unique(wanted.begin(), wanted.end()), wanted.end());

  // Keep live keys, revive released ones; the rest wait for new numbers.
  std::vector<const std::string*> fresh;
  for (const std::string& k : wanted) {
    if (auto it = live_.find(k); it != live_.end()) {
      next.live_.emplace(k, it->second);
    } else if (auto rel = next.released_.find(k); rel != next.released_.end()) {
      next.live_.emplace(k, rel->second);
      next.released_.erase(rel);
    } else {
      fresh.push_back(&k);
    }
  }
  // Release the keys that are gone (in key order: the eviction order is deterministic).
  std::vector<const std::string*> gone;
  for (const auto& [k, id] : live_)
    if (!next.live_.contains(k)) gone.push_back(&k);
  std::sort(gone.begin(), gone.end(),
            [](const std::string* a, const std::string* b) { return *a < *b; });
  for (const std::string* k : gone) {
    next.released_[*k] = live_.at(*k);
    next.released_order_.push_back(*k);
  }
  // Forgets the oldest released key (of one range if given); returns its number.
  auto evict_oldest = [&](const Range* only) -> std::optional<uint32_t> {
    for (auto it = next.released_order_.begin(); it != next.released_order_.end(); ++it) {
      auto rel = next.released_.find(*it);
      if (rel == next.released_.end()) continue;  // stale: revived or already evicted
      if (only && (rel->second < only->first || rel->second > only->last)) continue;
      uint32_t id = rel->second;
      next.released_.erase(rel);
      next.released_order_.erase(it);
      return id;
    }
    return std::nullopt;
  };
  while (next.released_.size() > limits_.max_released) evict_oldest(nullptr);
  // Drop stale entries from the order queue's front.
  while (!next.released_order_.empty() && !next.released_.contains(next.released_order_.front()))
    next.released_order_.pop_front();

  if (!fresh.empty()) {
    std::unordered_set<uint32_t> used;
    for (const auto& [k, id] : next.live_) used.insert(id);
    for (const auto& [k, id] : next.released_) used.insert(id);
    for (const std::string* k : fresh) {
      Range& range = (*k)[0] == 'c' ? next.cidr_ : next.workload_;
      uint64_t size = static_cast<uint64_t>(range.last) - range.first + 1;
      bool found = false;
      while (!found) {
        for (uint64_t tries = 0; tries < size; ++tries) {
          uint32_t candidate = range.next;
          range.next = candidate == range.last ? range.first : candidate + 1;
          if (!used.contains(candidate)) {
            next.live_.emplace(*k, candidate);
            used.insert(candidate);
            found = true;
            break;
          }
        }
        if (found) break;
        // Full: forget the oldest released number of this range, or give up.
        auto evicted = evict_oldest(&range);
        if (!evicted)
          return std::unexpected(Error("identities", (*k)[0] == 'c' ? "cidr" : "workload",
                                       "identity range " + std::to_string(range.first) + ".." +
                                           std::to_string(range.last) +
                                           " exhausted by live identities"));
        used.erase(*evicted);
      }
    }
  }
  return next;
}

std::string workload_identity_key(std::string_view name,
                                  const std::map<std::string, std::string>& labels) {
  static constexpr std::string_view kReserved = "gl:workload";
  std::string key;
  bool reserved_done = false;
  auto append = [&](std::string_view k, std::string_view v) {
    if (!key.empty()) key += ',';
    key += k;
    key += '=';
    key += v;
  };
  for (const auto& [k, v] : labels) {
    if (!reserved_done && kReserved < k) {
      append(kReserved, name);
      reserved_done = true;
    }
    if (k != kReserved) append(k, v);  // user keys never contain ':'; guard anyway
  }
  if (!reserved_done) append(kReserved, name);
  return key;
}

}  // namespace gl::policy
