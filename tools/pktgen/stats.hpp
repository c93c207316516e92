// stats.hpp — receive-side accounting of gl-pktgen: sequence tracking and latency.
//
// Purpose: SeqTracker classifies every received sequence number of one stream as new,
// late (arrived after a higher one: reordered) or duplicate, with a fixed sliding bitmap
// window; LatencyHistogram records latencies in log-linear buckets (6.25% resolution)
// with exact min/max. Neither allocates after construction, so both are safe on the
// fast path. No DPDK dependency (unit-testable).
// Thread-safety: plain data, one owner (the worker lcore). Complexity: O(1) per sample
// except a forward jump in SeqTracker, which clears at most kWindow bits once.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>

namespace gl::pktgen {

// Fixed-size log-linear latency histogram (values in nanoseconds).
class LatencyHistogram {
 public:
  static constexpr unsigned kLinear = 32;  // values below this have their own bucket
  static constexpr unsigned kSub = 16;     // sub-buckets per power of two above that
  static constexpr unsigned kBuckets = kLinear + 59 * kSub;

  void add(uint64_t v) {
    ++buckets_[index(v)];
    ++count_;
    sum_ += v;
    min_ = std::min(min_, v);
    max_ = std::max(max_, v);
  }

  void merge(const LatencyHistogram& o) {
    for (unsigned i = 0; i < kBuckets; ++i) buckets_[i] += o.buckets_[i];
    count_ += o.count_;
    sum_ += o.sum_;
    min_ = std::min(min_, o.min_);
    max_ = std::max(max_, o.max_);
  }

  uint64_t count() const { return count_; }
  uint64_t min() const { return count_ ? min_ : 0; }
  uint64_t max() const { return max_; }
  double mean() const { return count_ ? static_cast<double>(sum_) / count_ : 0.0; }

  // The value at quantile q (0..1): midpoint of the bucket holding the ceil(q*count)-th
  // sample, clamped to the exact [min, max]; the last sample is the exact max.
  uint64_t quantile(double q) const {
    if (count_ == 0) return 0;
    uint64_t rank = static_cast<uint64_t>(q * static_cast<double>(count_) + 0.999999);
    rank = std::clamp<uint64_t>(rank, 1, count_);
    if (rank == count_) return max_;  // the largest sample is known exactly
    uint64_t seen = 0;
    for (unsigned i = 0; i < kBuckets; ++i) {
      seen += buckets_[i];
      if (seen >= rank) return std::clamp(midpoint(i), min(), max_);
    }
    return max_;
  }

  static unsigned index(uint64_t v) {
    if (v < kLinear) return static_cast<unsigned>(v);
    const unsigned msb = 63u - static_cast<unsigned>(std::countl_zero(v));
    const unsigned shift = msb - 4;  // v >> shift is in [16, 31]
    return kLinear + (shift - 1) * kSub + static_cast<unsigned>((v >> shift) - kSub);
  }

  static uint64_t midpoint(unsigned idx) {
    if (idx < kLinear) return idx;
    const unsigned shift = (idx - kLinear) / kSub + 1;
    const uint64_t m = (idx - kLinear) % kSub + kSub;
    return (m << shift) + ((uint64_t{1} << shift) >> 1);
  }

 private:
  std::array<uint64_t, kBuckets> buckets_{};
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t max_ = 0;
};

// Sequence accounting of one stream. Sequence numbers travel as 32 bits and are
// extended to 64 bits around the highest one seen (like ESP's ESN).
class SeqTracker {
 public:
  static constexpr uint64_t kWindow = 1u << 16;  // reorder/duplicate memory, in packets

  enum class Kind : uint8_t { kNew, kLate, kDuplicate, kTooOld };

  Kind on_seq(uint32_t seq32) {
    if (!any_) {
      any_ = true;
      top_ = seq32;
      set(seq32);
      ++unique_;
      return Kind::kNew;
    }
    const uint64_t seq = extend(seq32);
    if (seq > top_) {
      const uint64_t gap = seq - top_;
      if (gap >= kWindow) {
        bits_.fill(0);
      } else {
        for (uint64_t s = top_ + 1; s < seq; ++s) clear(s);
      }
      top_ = seq;
      set(seq);
      ++unique_;
      return Kind::kNew;
    }
    if (top_ - seq >= kWindow) {
      ++too_old_;  // cannot tell late from duplicate: counted apart
      return Kind::kTooOld;
    }
    if (test(seq)) {
      ++duplicates_;
      return Kind::kDuplicate;
    }
    set(seq);
    ++unique_;
    ++late_;
    return Kind::kLate;
  }

  bool any() const { return any_; }
  uint64_t top() const { return top_; }
  uint64_t unique() const { return unique_; }
  uint64_t duplicates() const { return duplicates_; }
  uint64_t late() const { return late_; }
  uint64_t too_old() const { return too_old_; }

 private:
  uint64_t extend(uint32_t s) const {
    const uint64_t base = top_ & ~uint64_t{0xffffffff};
    uint64_t cand = base | s;
    if (cand > top_ && cand - top_ > 0x80000000u && base != 0) cand -= uint64_t{1} << 32;
    if (cand < top_ && top_ - cand > 0x80000000u) cand += uint64_t{1} << 32;
    return cand;
  }
  void set(uint64_t s) { bits_[(s % kWindow) / 64] |= uint64_t{1} << (s % 64); }
  void clear(uint64_t s) { bits_[(s % kWindow) / 64] &= ~(uint64_t{1} << (s % 64)); }
  bool test(uint64_t s) const { return (bits_[(s % kWindow) / 64] >> (s % 64)) & 1; }

  std::array<uint64_t, kWindow / 64> bits_{};
  uint64_t top_ = 0;
  uint64_t unique_ = 0;
  uint64_t duplicates_ = 0;
  uint64_t late_ = 0;
  uint64_t too_old_ = 0;
  bool any_ = false;
};

}  // namespace gl::pktgen
