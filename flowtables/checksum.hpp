// checksum.hpp — Internet checksum (RFC 1071), incremental update (RFC 1624), pseudo-header
// sums for IPv4 and IPv6, IPv4 header checksum check, and the byte-order helpers the
// parser, the builder and the set-field actions share.
//
// Value convention: every 16/32-bit value taken or returned by the checksum functions is
// in memory (network) order, i.e. what memcpy of the bytes into a uint16_t/uint32_t gives
// and what FlowKey stores. A checksum returned here is written back to the packet with
// memcpy, never swapped. RFC 1071's sum is byte-order independent, so this works on any
// host. Lengths (pseudo-header lengths) are host order, as noted at each function.
//
// Partial sums are uint32_t one's-complement accumulators (not folded); combine them
// with csum_add(), fold with csum_fold(), complement with csum_finish().
//
// Thread-safety: pure functions. Complexity: csum_partial is O(len), everything else O(1).
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace gl::flow {

// ---- byte order ----------------------------------------------------------------------

constexpr uint16_t hton16(uint16_t v) {
  if constexpr (std::endian::native == std::endian::little) return __builtin_bswap16(v);
  return v;
}
constexpr uint32_t hton32(uint32_t v) {
  if constexpr (std::endian::native == std::endian::little) return __builtin_bswap32(v);
  return v;
}
constexpr uint16_t ntoh16(uint16_t v) {
  return hton16(v);
}
constexpr uint32_t ntoh32(uint32_t v) {
  return hton32(v);
}

// ---- RFC 1071 --------------------------------------------------------------------------

// One's-complement addition of two partial sums (end-around carry).
constexpr uint32_t csum_add(uint32_t a, uint32_t b) {
  const uint32_t r = a + b;
  return r + (r < a ? 1u : 0u);
}

// Folds a partial sum to 16 bits (not complemented).
constexpr uint16_t csum_fold(uint32_t sum) {
  sum = (sum & 0xffffu) + (sum >> 16);
  sum = (sum & 0xffffu) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

// The checksum field value for a partial sum: ~fold(sum).
constexpr uint16_t csum_finish(uint32_t sum) {
  return static_cast<uint16_t>(~csum_fold(sum));
}

// Adds the bytes [data, data + len) to the partial sum `sum`. When a buffer is summed in
// pieces, every piece but the last must have an even length (an odd trailing byte is
// padded with a zero byte, as RFC 1071 says for the end of the data).
inline uint32_t csum_partial(const void* data, size_t len, uint32_t sum = 0) {
  const auto* p = static_cast<const uint8_t*>(data);
  uint64_t acc = sum;
  // 32-bit chunks in a 64-bit accumulator: 2^16 == 1 (mod 0xffff), so summing 32-bit
  // memory-order chunks and folding equals summing the 16-bit words.
  while (len >= 16) {
    uint64_t a, b;
    std::memcpy(&a, p, 8);
    std::memcpy(&b, p + 8, 8);
    acc += (a & 0xffffffffu) + (a >> 32) + (b & 0xffffffffu) + (b >> 32);
    p += 16;
    len -= 16;
  }
  while (len >= 4) {
    uint32_t w;
    std::memcpy(&w, p, 4);
    acc += w;
    p += 4;
    len -= 4;
  }
  if (len >= 2) {
    uint16_t w;
    std::memcpy(&w, p, 2);
    acc += w;
    p += 2;
    len -= 2;
  }
  if (len != 0) {
    uint16_t w = 0;
    std::memcpy(&w, p, 1);  // the odd byte is the first byte of a zero-padded word
    acc += w;
  }
  acc = (acc & 0xffffffffu) + (acc >> 32);
  acc = (acc & 0xffffffffu) + (acc >> 32);
  return static_cast<uint32_t>(acc);
}

// The Internet checksum of a buffer (the value to store in a zeroed checksum field).
inline uint16_t inet_checksum(const void* data, size_t len) {
  return csum_finish(csum_partial(data, len));
}

// ---- RFC 1624 incremental update -------------------------------------------------------
// HC' = ~(~HC + ~m + m') (RFC 1624 eqn. 3). `csum` is the checksum field as stored; old
// and new values are memory order. The result equals a full recomputation for every
// checksum a full computation can produce.

constexpr uint16_t csum_replace16(uint16_t csum, uint16_t old_val, uint16_t new_val) {
  uint32_t s = static_cast<uint16_t>(~csum);
  s += static_cast<uint16_t>(~old_val);
  s += new_val;
  return csum_finish(s);
}

constexpr uint16_t csum_replace32(uint16_t csum, uint32_t old_val, uint32_t new_val) {
  const uint32_t nold = ~old_val;
  uint32_t s = static_cast<uint16_t>(~csum);
  s += (nold & 0xffffu) + (nold >> 16);
  s += (new_val & 0xffffu) + (new_val >> 16);
  return csum_finish(s);
}

// An 8-bit field: `at_even_offset` is true when the byte is the first byte of its 16-bit
// word counted from the start of the checksummed data (IPv4: TTL at offset 8 and TOS at
// offset 1 → TTL is even, TOS is odd).
constexpr uint16_t csum_replace8(uint16_t csum, uint8_t old_val, uint8_t new_val,
                                 bool at_even_offset) {
  // Memory-order word holding the byte at the first (even) or second (odd) position.
  const auto word = [at_even_offset](uint8_t b) -> uint16_t {
    const uint16_t host = at_even_offset ? static_cast<uint16_t>(b << 8) : b;
    return hton16(host);
  };
  return csum_replace16(csum, word(old_val), word(new_val));
}

// A 16-byte field (an IPv6 address), old and new as stored in the packet.
inline uint16_t csum_replace128(uint16_t csum, const uint8_t* old_val, const uint8_t* new_val) {
  uint32_t s = static_cast<uint16_t>(~csum);
  for (int i = 0; i < 16; i += 4) {
    uint32_t o, n;
    std::memcpy(&o, old_val + i, 4);
    std::memcpy(&n, new_val + i, 4);
    o = ~o;
    s += (o & 0xffffu) + (o >> 16) + (n & 0xffffu) + (n >> 16);
  }
  return csum_finish(s);
}

// UDP variants: a zero UDP checksum means "none" (IPv4) and stays zero; a computed zero
// is sent as 0xffff (RFC 768).
constexpr uint16_t udp_csum_fixup(uint16_t csum) {
  return csum == 0 ? 0xffff : csum;
}

constexpr uint16_t udp_csum_replace16(uint16_t csum, uint16_t old_val, uint16_t new_val) {
  return csum == 0 ? 0 : udp_csum_fixup(csum_replace16(csum, old_val, new_val));
}
constexpr uint16_t udp_csum_replace32(uint16_t csum, uint32_t old_val, uint32_t new_val) {
  return csum == 0 ? 0 : udp_csum_fixup(csum_replace32(csum, old_val, new_val));
}
inline uint16_t udp_csum_replace128(uint16_t csum, const uint8_t* old_val, const uint8_t* new_val) {
  return csum == 0 ? 0 : udp_csum_fixup(csum_replace128(csum, old_val, new_val));
}

// ---- pseudo headers --------------------------------------------------------------------

// IPv4 pseudo-header partial sum: addresses as stored (network order), `l4_len` host
// order (TCP/UDP header + data length).
constexpr uint32_t ipv4_pseudo_sum(uint32_t src, uint32_t dst, uint8_t proto, uint16_t l4_len) {
  return (src & 0xffffu) + (src >> 16) + (dst & 0xffffu) + (dst >> 16) + hton16(proto) +
         hton16(l4_len);
}

// IPv6 pseudo-header partial sum (RFC 8200 §8.1): 16-byte addresses as stored,
// `next_header` the upper-layer protocol, `l4_len` host order upper-layer length.
inline uint32_t ipv6_pseudo_sum(const uint8_t* src, const uint8_t* dst, uint8_t next_header,
                                uint32_t l4_len) {
  uint32_t s = csum_partial(src, 16);
  s = csum_partial(dst, 16, s);
  const uint32_t len_be = hton32(l4_len);
  return csum_add(s, (len_be & 0xffffu) + (len_be >> 16) + hton16(next_header));
}

// TCP/UDP/ICMPv6 checksum of an upper-layer segment whose checksum field is zero.
inline uint16_t l4_checksum(uint32_t pseudo_sum, const void* l4, size_t len) {
  return csum_finish(csum_partial(l4, len, pseudo_sum));
}

// ---- IPv4 header -----------------------------------------------------------------------

// Checksum of an IPv4 header of `hdr_len` bytes (IHL * 4), computed as if the checksum
// field (bytes 10..11) were zero. `hdr_len` must be >= 20.
inline uint16_t ipv4_header_checksum(const uint8_t* ip, size_t hdr_len) {
  uint32_t s = csum_partial(ip, 10);
  s = csum_partial(ip + 12, hdr_len - 12, s);
  return csum_finish(s);
}

// True when `ip` (with `avail` readable bytes) starts with an IPv4 header whose IHL is
// valid, fits in `avail`, and whose checksum verifies. Never reads past `avail`.
inline bool ipv4_header_checksum_ok(const uint8_t* ip, size_t avail) {
  if (avail < 20) return false;
  const size_t hdr_len = static_cast<size_t>(ip[0] & 0x0f) * 4;
  if (hdr_len < 20 || hdr_len > avail) return false;
  return csum_fold(csum_partial(ip, hdr_len)) == 0xffff;
}

}  // namespace gl::flow
