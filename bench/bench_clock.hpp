// bench_clock.hpp — the benchmarks' cycle clock: TSC readings converted to nanoseconds
// with a rate calibrated against steady_clock at start.
// Thread-safety: calibrate once before measuring; reads are plain. Complexity: O(1).
#pragma once

#include <x86intrin.h>

#include <chrono>
#include <cstdint>

namespace gl::bench {

// TSC ticks per nanosecond, measured over `ms` milliseconds of busy waiting.
inline double calibrate_tsc_per_ns(int ms = 50) {
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  const uint64_t c0 = __rdtsc();
  while (Clock::now() - t0 < std::chrono::milliseconds(ms)) {
  }
  const uint64_t c1 = __rdtsc();
  const double ns = std::chrono::duration<double, std::nano>(Clock::now() - t0).count();
  return static_cast<double>(c1 - c0) / ns;
}

}  // namespace gl::bench
