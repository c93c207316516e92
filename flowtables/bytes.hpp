// bytes.hpp — unaligned loads and stores of packet fields.
//
// Purpose: one place for the helpers every parser and rewriter needs: a field as stored
// (memory order, the way FlowKey keeps packet fields) or as a host-order value of a
// big-endian field.
// Thread-safety: pure functions on caller-owned memory. Complexity: O(1).
#pragma once

#include <cstdint>
#include <cstring>

namespace gl::flow {

// A 16/32-bit field in memory order (network order stays network order).
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

// The host-order value of a big-endian 16/32-bit field, and the store back.
inline uint16_t load_be16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] << 8 | p[1]);
}
inline uint32_t load_be32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
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

}  // namespace gl::flow
