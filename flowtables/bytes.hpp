// bytes.hpp — unaligned loads and stores of packet and wire-format fields.
//
// Purpose: the one place for the helpers every parser, rewriter and wire encoder needs: a
// field as stored (memory order, the way FlowKey keeps packet fields), or the host-order
// value of a big-endian (network) or little-endian field, and the stores back. Everyone
// may include it (flowtables/ is the bottom layer and this header needs nothing but the
// standard library); tools/check_format.sh refuses local copies elsewhere.
// Thread-safety: pure functions on caller-owned memory. Complexity: O(1), the n-byte
// forms O(n).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace gl::flow {

// A 16/32/64-bit field in memory order (network order stays network order).
inline uint16_t load_raw16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
inline uint32_t load_raw32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline uint64_t load_raw64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
inline void store_raw16(uint8_t* p, uint16_t v) {
  std::memcpy(p, &v, 2);
}
inline void store_raw32(uint8_t* p, uint32_t v) {
  std::memcpy(p, &v, 4);
}

// The host-order value of a big-endian 16/32/64-bit field, and the store back (the low
// 16/32 bits of `v`).
inline uint16_t load_be16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] << 8 | p[1]);
}
inline uint32_t load_be32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}
inline uint64_t load_be64(const uint8_t* p) {
  return uint64_t{load_be32(p)} << 32 | load_be32(p + 4);
}
inline void store_be16(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
inline void store_be32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}
inline void store_be64(uint8_t* p, uint64_t v) {
  store_be32(p, static_cast<uint32_t>(v >> 32));
  store_be32(p + 4, static_cast<uint32_t>(v));
}

// A big-endian field of n bytes (n <= 8), as a host-order number, and the store back
// (the low 8n bits of `v`).
inline uint64_t load_be_n(const uint8_t* p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v = (v << 8) | p[i];
  return v;
}
inline void store_be_n(uint8_t* p, uint64_t v, size_t n) {
  for (size_t i = n; i-- > 0;) {
    p[i] = static_cast<uint8_t>(v);
    v >>= 8;
  }
}

// The host-order value of a little-endian 32-bit field, and the store back.
inline uint32_t load_le32(const uint8_t* p) {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}
inline void store_le32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

}  // namespace gl::flow
