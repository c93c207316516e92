// ufid_map.hpp — UFID → flow index of the control thread.
//
// Purpose: the datapath finds flows by their 128-bit UFID on every put, get and del.
// std::unordered_map cost two cache misses per lookup (bucket array, then a node) and an
// allocation per flow, a fifth of the control thread's time when installing flows in
// bulk. This is an open-addressing table with linear probing whose slots hold the UFID
// and the value inline: one cache miss, no allocation per entry. UFIDs are random
// (hashes of the match), so their low word is the hash.
// Thread-safety: single-threaded (the control thread). Complexity: O(1) expected per
// operation at load factor <= 1/2; growth rehashes everything (amortised O(1)).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "dataplane/api/wire.hpp"

namespace gl::dp {

template <typename V>
class UfidMap {
 public:
  UfidMap() { slots_.resize(kMinCapacity); }

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  // The value for `u`, or nullptr.
  V* find(const api::Ufid& u) {
    for (size_t i = index(u);; i = (i + 1) & mask()) {
      Slot& s = slots_[i];
      if (s.state == kEmpty) return nullptr;
      if (s.state == kFull && s.ufid == u) return &s.value;
    }
  }
  const V* find(const api::Ufid& u) const { return const_cast<UfidMap*>(this)->find(u); }

  // Inserts u → v; returns false (and changes nothing) when u is present.
  bool insert(const api::Ufid& u, const V& v) {
    if ((size_ + tombstones_ + 1) * 2 > slots_.size())
      rehash(size_ * 4 > slots_.size() ? slots_.size() * 2 : slots_.size());
    size_t grave = SIZE_MAX;
    for (size_t i = index(u);; i = (i + 1) & mask()) {
      Slot& s = slots_[i];
      if (s.state == kFull) {
        if (s.ufid == u) return false;
      } else if (s.state == kTombstone) {
        if (grave == SIZE_MAX) grave = i;
      } else {
        Slot& dst = grave != SIZE_MAX ? slots_[grave] : s;
        if (grave != SIZE_MAX) --tombstones_;
        dst = Slot{u, v, kFull};
        ++size_;
        return true;
      }
    }
  }

  // Removes u; returns false when it was absent.
  bool erase(const api::Ufid& u) {
    for (size_t i = index(u);; i = (i + 1) & mask()) {
      Slot& s = slots_[i];
      if (s.state == kEmpty) return false;
      if (s.state == kFull && s.ufid == u) {
        s.state = kTombstone;
        --size_;
        ++tombstones_;
        return true;
      }
    }
  }

  void clear() {
    slots_.assign(kMinCapacity, Slot{});
    size_ = tombstones_ = 0;
  }

  template <typename Fn>
  void for_each(Fn&& fn) const {
    for (const Slot& s : slots_)
      if (s.state == kFull) fn(s.ufid, s.value);
  }

 private:
  static constexpr size_t kMinCapacity = 64;
  enum State : uint8_t { kEmpty = 0, kFull, kTombstone };
  struct Slot {
    api::Ufid ufid{};
    V value{};
    State state = kEmpty;
  };

  size_t mask() const { return slots_.size() - 1; }
  size_t index(const api::Ufid& u) const { return (u.lo ^ (u.hi >> 29)) & mask(); }

  void rehash(size_t capacity) {
    std::vector<Slot> old(capacity);
    old.swap(slots_);
    size_ = tombstones_ = 0;
    for (const Slot& s : old)
      if (s.state == kFull) insert(s.ufid, s.value);
  }

  std::vector<Slot> slots_;
  size_t size_ = 0;
  size_t tombstones_ = 0;
};

}  // namespace gl::dp
