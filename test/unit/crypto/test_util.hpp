// test_util.hpp — helpers shared by the crypto unit tests: hex, workers, SA factories,
// packet buffers with head/tailroom.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/aead.hpp"
#include "crypto/esp.hpp"
#include "crypto/sa.hpp"

namespace gl::crypto::test {

inline std::vector<uint8_t> unhex(std::string_view s) {
  std::vector<uint8_t> out;
  auto nib = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  int hi = -1;
  for (char c : s) {
    const int v = nib(c);
    if (v < 0) continue;
    if (hi < 0) {
      hi = v;
    } else {
      out.push_back(static_cast<uint8_t>(hi << 4 | v));
      hi = -1;
    }
  }
  return out;
}

inline std::string hex(const uint8_t* p, size_t n) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    s += d[p[i] >> 4];
    s += d[p[i] & 15];
  }
  return s;
}
inline std::string hex(const std::vector<uint8_t>& v) {
  return hex(v.data(), v.size());
}

inline std::unique_ptr<Worker> make_worker() {
  auto w = Worker::create();
  if (!w) throw std::runtime_error(w.error());
  return std::move(*w);
}

// Every (backend, cipher) this machine can run.
struct Combo {
  Backend backend;
  Cipher cipher;
};
inline std::vector<Combo> available_combos() {
  std::vector<Combo> out;
  for (Backend b : {Backend::sodium, Backend::ipsec_mb}) {
    for (Cipher c : {Cipher::aes256_gcm, Cipher::chacha20_poly1305}) {
      if (aead_impl(b, c) != nullptr) out.push_back({b, c});
    }
  }
  return out;
}

// A packet buffer with room on both sides.
struct Buf {
  static constexpr uint32_t kHead = 128;
  static constexpr uint32_t kTail = 128;
  std::vector<uint8_t> mem;
  PktBuf p;

  explicit Buf(const std::vector<uint8_t>& pkt, uint32_t head = kHead, uint32_t tail = kTail)
      : mem(head + pkt.size() + tail, 0xee) {
    std::memcpy(mem.data() + head, pkt.data(), pkt.size());
    p.data = mem.data() + head;
    p.len = static_cast<uint32_t>(pkt.size());
    p.headroom = head;
    p.tailroom = tail;
  }
  std::vector<uint8_t> bytes() const { return {p.data, p.data + p.len}; }
  // Invariant: data/len/headroom/tailroom still describe the same buffer.
  bool consistent() const {
    return p.data - p.headroom == mem.data() &&
           p.data + p.len + p.tailroom == mem.data() + mem.size();
  }
};

inline std::vector<uint8_t> random_bytes(std::mt19937_64& rng, size_t n) {
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

// Minimal IPv4 / IPv6 packets (header + payload) for tests.
std::vector<uint8_t> ipv4_packet(uint8_t proto, size_t payload_len, uint8_t fill = 0x5a);
std::vector<uint8_t> ipv6_packet(uint8_t nh, size_t payload_len, uint8_t fill = 0x5a);

}  // namespace gl::crypto::test
