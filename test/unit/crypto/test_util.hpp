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
    std::copy(pkt.begin(), pkt.end(), mem.begin() + head);
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

// 36 bytes of key material: key 0x00.. 0x1f || salt a0 a1 a2 a3 (or a variant).
inline std::vector<uint8_t> test_keymat(uint8_t variant = 0) {
  std::vector<uint8_t> k(kKeyMatLen);
  for (size_t i = 0; i < kKeyLen; ++i) k[i] = static_cast<uint8_t>(i + variant);
  for (size_t i = 0; i < kSaltLen; ++i) k[kKeyLen + i] = static_cast<uint8_t>(0xa0 + i);
  return k;
}

struct SaShape {
  Backend backend = Backend::sodium;
  Cipher cipher = Cipher::aes256_gcm;
  Mode mode = Mode::tunnel;
  bool v6 = false;
  bool esn = true;
  uint64_t seq_start = 0;
  uint64_t seq_limit = 0;
  uint32_t window = 1024;
  uint32_t spi = 0x1000;
};

inline SaConfig sa_config(const SaShape& s, Direction dir) {
  SaConfig c;
  c.spi = s.spi;
  c.dir = dir;
  c.mode = s.mode;
  c.cipher = s.cipher;
  c.backend = s.backend;
  c.esn = s.esn;
  c.local = s.v6 ? IpAddress::parse("2001:db8::1").value() : IpAddress::v4(192, 0, 2, 1);
  c.remote = s.v6 ? IpAddress::parse("2001:db8::2").value() : IpAddress::v4(192, 0, 2, 2);
  c.replay_window = s.window;
  c.seq_start = s.seq_start;  // inbound: the window starts where the sender starts
  c.seq_limit = s.seq_limit;
  return c;
}

// An outbound SA and the matching inbound SA (same key, SPI).
struct SaPair {
  SaPtr out;
  SaPtr in;
};
inline SaPair make_pair(const SaShape& s, uint8_t key_variant = 0) {
  const auto km = test_keymat(key_variant);
  auto o = make_sa(sa_config(s, Direction::outbound), km);
  auto i = make_sa(sa_config(s, Direction::inbound), km);
  if (!o) throw std::runtime_error(o.error());
  if (!i) throw std::runtime_error(i.error());
  return {std::move(*o), std::move(*i)};
}

// Runs one packet through an SA's burst function.
inline Result run1(Sa& sa, Worker& w, Buf& b) {
  PktBuf* p = &b.p;
  Result r = Result::crypto_error;
  sa.burst(w, &p, 1, &r);
  return r;
}

// An ESP packet over IPv4 whose decrypted payload is exactly `plain` (which must carry
// its own trailer), encrypted with the AEAD directly: for malformed-but-authentic input.
inline std::vector<uint8_t> craft_esp(Worker& w, const SaShape& s, uint64_t seq,
                                      const std::vector<uint8_t>& plain) {
  const auto km = test_keymat();
  const AeadImpl* impl = aead_impl(s.backend, s.cipher);
  auto key = std::make_unique<AeadKey>();
  impl->expand(*key, km.data());
  std::vector<uint8_t> pkt(20 + 16 + plain.size() + kIcvLen);
  const auto tot = static_cast<uint16_t>(pkt.size());
  const uint8_t ip[20] = {0x45,
                          0,
                          static_cast<uint8_t>(tot >> 8),
                          static_cast<uint8_t>(tot),
                          0,
                          1,
                          0x40,
                          0,
                          64,
                          kProtoEsp,
                          0,
                          0,
                          192,
                          0,
                          2,
                          1,
                          192,
                          0,
                          2,
                          2};
  std::memcpy(pkt.data(), ip, 20);
  uint8_t* esp = pkt.data() + 20;
  for (int i = 0; i < 4; ++i) esp[i] = static_cast<uint8_t>(s.spi >> (24 - 8 * i));
  for (int i = 0; i < 4; ++i) esp[4 + i] = static_cast<uint8_t>(seq >> (24 - 8 * i));
  for (int i = 0; i < 8; ++i) esp[8 + i] = static_cast<uint8_t>(seq >> (56 - 8 * i));
  if (!plain.empty()) std::memcpy(esp + 16, plain.data(), plain.size());
  uint8_t aad[12];
  std::memcpy(aad, esp, 4);
  for (int i = 0; i < 8; ++i) aad[4 + i] = static_cast<uint8_t>(seq >> (56 - 8 * i));
  AeadOp op{};
  op.key = key.get();
  op.data = esp + 16;
  op.len = static_cast<uint32_t>(plain.size());
  op.tag = esp + 16 + plain.size();
  op.aad = aad;
  op.aad_len = s.esn ? 12 : 8;
  if (!s.esn) std::memcpy(aad + 4, esp + 4, 4);
  std::memcpy(op.nonce, km.data() + kKeyLen, 4);
  std::memcpy(op.nonce + 4, esp + 8, 8);
  uint8_t ok = 0;
  impl->encrypt(w, &op, 1, &ok);
  return pkt;
}

// Minimal IPv4 / IPv6 packets (header + payload) for tests.
std::vector<uint8_t> ipv4_packet(uint8_t proto, size_t payload_len, uint8_t fill = 0x5a);
std::vector<uint8_t> ipv6_packet(uint8_t nh, size_t payload_len, uint8_t fill = 0x5a);

}  // namespace gl::crypto::test
