// replay.hpp — ESP anti-replay window (RFC 4303 3.4.3) with extended sequence numbers
// (RFC 4303 Appendix A2): a ring bitmap of 64-bit words in the style of RFC 6479, so
// that sliding the window clears whole words instead of shifting bits.
//
//   seq  = w.infer(seq_low_from_wire);   // ESN: the high 32 bits, Appendix A2.2
//   r    = w.check(seq);                 // before authenticating: cheap early drop
//   ...authenticate with seq's high half in the AAD...
//   r    = w.update(seq);                // after authenticating: check again and mark
//
// The window is [top - size + 1, top]; sequence number 0 is never valid. The bitmap has
// one word more than the window needs (rounded up to a power of two), so a word is only
// reused once every sequence number in it is left of the window.
//
// Thread-safety: single writer (the PMD that owns the inbound SA); top() may be read by
// any thread (relaxed atomic). Complexity: infer/check O(1); update O(1) amortised (a jump
// of k words clears min(k, words) words).
#pragma once

#include <atomic>
#include <bit>
#include <cstdint>

#include "crypto/types.hpp"

namespace gl::crypto {

class ReplayWindow {
 public:
  static constexpr uint32_t kMinSize = 64;
  static constexpr uint32_t kMaxSize = 4096;
  static constexpr uint32_t kDefaultSize = 1024;

  // `size`: window width in packets, a power of two in [kMinSize, kMaxSize] (the caller
  // validates). `top`: highest sequence number already received (0: none).
  void reset(uint32_t size, uint64_t top = 0) {
    size_ = size;
    const uint32_t words = std::bit_ceil(size / 64 + 1);
    mask_ = words - 1;
    for (auto& w : bits_) w = 0;
    top_.store(top, std::memory_order_relaxed);
    if (top != 0) bits_[word(top)] |= bit(top);  // `top` itself counts as seen
  }

  uint32_t size() const { return size_; }
  uint64_t top() const { return top_.load(std::memory_order_relaxed); }

  // RFC 4303 A2.2: the full 64-bit sequence number of a packet whose low 32 bits are
  // `seql`, assuming it lies in [top - size + 1, top + 2^32 - size].
  uint64_t infer(uint32_t seql) const {
    const uint64_t t = top();
    const auto tl = static_cast<uint32_t>(t);
    uint32_t th = static_cast<uint32_t>(t >> 32);
    const uint32_t bottom = tl - size_ + 1;  // wraps in case B
    if (tl >= size_ - 1) {                   // case A: window inside one 2^32 subspace
      if (seql < bottom) ++th;               // (th + 1 wrapping to 0 is caught as too_old)
    } else {                                 // case B: window spans two subspaces
      if (seql >= bottom && th != 0) --th;
    }
    return (static_cast<uint64_t>(th) << 32) | seql;
  }

  // Read-only verdict: ok (new or inside the window and unseen), too_old, replay.
  Result check(uint64_t seq) const {
    const uint64_t t = top();
    if (seq > t) return Result::ok;
    if (seq == 0 || t - seq >= size_) return Result::too_old;
    return (bits_[word(seq)] & bit(seq)) != 0 ? Result::replay : Result::ok;
  }

  // Marks `seq` as received (call only after the packet authenticated), sliding the
  // window when seq is new; returns check(seq) as it was before marking.
  Result update(uint64_t seq) {
    const uint64_t t = top();
    if (seq > t) {
      const uint64_t from = t >> 6;
      const uint64_t to = seq >> 6;
      if (to - from > mask_) {
        for (uint32_t i = 0; i <= mask_; ++i) bits_[i] = 0;
      } else {
        for (uint64_t k = from + 1; k <= to; ++k) bits_[k & mask_] = 0;
      }
      top_.store(seq, std::memory_order_relaxed);
      bits_[word(seq)] |= bit(seq);
      return Result::ok;
    }
    if (seq == 0 || t - seq >= size_) return Result::too_old;
    uint64_t& w = bits_[word(seq)];
    if ((w & bit(seq)) != 0) return Result::replay;
    w |= bit(seq);
    return Result::ok;
  }

 private:
  uint32_t word(uint64_t seq) const { return static_cast<uint32_t>(seq >> 6) & mask_; }
  static uint64_t bit(uint64_t seq) { return uint64_t{1} << (seq & 63); }

  std::atomic<uint64_t> top_{0};
  uint32_t size_ = kDefaultSize;
  uint32_t mask_ = 0;
  alignas(64) uint64_t bits_[2 * kMaxSize / 64] = {};
};

}  // namespace gl::crypto
