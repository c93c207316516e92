// Fuzz target: ESP decapsulation with a valid SA (crypto/esp), where an attacker who holds
// no key can reach (any bytes: the header, length and SPI checks before authentication)
// and where only a key holder can (authentic packets whose decrypted payload - the inner
// packet, its padding, pad length and next header - is the fuzzer's). First byte: bit 0
// authentic (the rest is the decrypted payload, encrypted here with the SA's key) or raw
// (the rest is the packet); bit 1 the cipher; bit 2 the backend (ipsec-mb where the CPU
// has it). Nothing may crash, and a packet decapsulated as good must lie within its buffer.
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "test/unit/crypto/test_util.hpp"

using namespace gl::crypto;
using namespace gl::crypto::test;

namespace {

Worker& worker() {
  static std::unique_ptr<Worker> w = make_worker();
  return *w;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  SaShape s;
  s.cipher = (data[0] & 2) ? Cipher::chacha20_poly1305 : Cipher::aes256_gcm;
  s.backend = (data[0] & 4) ? Backend::ipsec_mb : Backend::sodium;
  if (aead_impl(s.backend, s.cipher) == nullptr) s.backend = Backend::sodium;
  s.window = 64;
  const uint64_t seq = data[1] + 1u;
  std::vector<uint8_t> rest(data + 2, data + size);
  std::vector<uint8_t> pkt = (data[0] & 1) ? craft_esp(worker(), s, seq, rest) : rest;
  auto in = make_sa(sa_config(s, Direction::inbound), test_keymat());
  if (!in) std::abort();
  Buf b(pkt, 64, 64);
  PktBuf* p = &b.p;
  Result r = Result::crypto_error;
  (*in)->burst(worker(), &p, 1, &r);
  if (r == Result::ok && (!b.consistent() || b.p.len > pkt.size())) std::abort();
  return 0;
}

std::vector<std::vector<uint8_t>> fuzz_seeds() {
  // Authentic payloads: an inner IPv4 packet with a well-formed trailer (pad 1 2, pad
  // length 2, next header 4), the same for ChaCha20, one with a bad pad.
  std::vector<uint8_t> inner = ipv4_packet(17, 12);
  inner.insert(inner.end(), {1, 2, 2, 4});
  std::vector<std::vector<uint8_t>> seeds;
  for (uint8_t mode : {1, 3, 5}) {
    std::vector<uint8_t> v{mode, 7};
    v.insert(v.end(), inner.begin(), inner.end());
    seeds.push_back(v);
  }
  std::vector<uint8_t> bad = ipv4_packet(6, 20);
  bad.insert(bad.end(), {9, 9, 2, 4});
  bad.insert(bad.begin(), {1, 9});
  seeds.push_back(bad);
  // Raw: what the authentic seed encrypts to (the header checks, then a bad tag).
  SaShape s;
  s.window = 64;
  std::vector<uint8_t> raw = craft_esp(worker(), s, 8, std::vector<uint8_t>(inner));
  raw.insert(raw.begin(), {0, 0});
  seeds.push_back(raw);
  return seeds;
}
