// Fuzz target: the host handshake's message handling (crypto/handshake) on hostile bytes.
// The first byte picks the message kind; the rest is the message. An init or response
// gets a correct mac1 recomputed over whatever the mutation made of it (the way an
// attacker who knows the responder's public key can), so that the bytes behind the mac
// check - the Noise IK decryption, the payload's SPI block and sender count, the
// timestamp - are reached, not only the mac comparison. Nothing may crash, and a mutated
// message may never be accepted as a different valid one (its keys would then differ).
// libsodium's random bytes come from a fixed-seed stream here, so every process makes the
// same genuine messages: the committed corpus's seeds (tools/fuzz.sh) are this process's
// genuine init, and a run is reproducible from its input alone.
#include <sodium.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <vector>

#include "crypto/handshake.hpp"

using namespace gl::crypto;

namespace {

noise::KeyPair fixed_pair(uint8_t seed) {
  noise::Key priv{};
  for (size_t i = 0; i < priv.size(); ++i) priv[i] = static_cast<uint8_t>(seed + i * 7);
  return noise::KeyPair::from_private(priv);
}

std::array<uint8_t, 32> mac1_key(const noise::Key& pub) {
  std::array<uint8_t, 32> out{};
  crypto_hash_sha256_state st;
  crypto_hash_sha256_init(&st);
  crypto_hash_sha256_update(&st, reinterpret_cast<const uint8_t*>("mac1----"), 8);
  crypto_hash_sha256_update(&st, pub.data(), pub.size());
  crypto_hash_sha256_final(&st, out.data());
  return out;
}

// The mac1 a sender who knows `to`'s public key puts at `at` (16 bytes over what precedes).
void fix_mac1(std::vector<uint8_t>& m, size_t at, const noise::Key& to) {
  if (m.size() < at + 16) return;
  const auto k = mac1_key(to);
  crypto_generichash(m.data() + at, 16, m.data(), at, k.data(), k.size());
}

// randombytes_buf() and friends: ChaCha20 with a fixed seed, a counter per call.
uint64_t g_calls = 0;
void det_buf(void* buf, size_t size) {
  uint8_t seed[randombytes_SEEDBYTES] = {'g', 'l', '-', 'f', 'u', 'z', 'z'};
  std::memcpy(seed + 16, &g_calls, sizeof g_calls);
  ++g_calls;
  randombytes_buf_deterministic(buf, size, seed);
}
uint32_t det_random() {
  uint32_t v;
  det_buf(&v, sizeof v);
  return v;
}
const char* det_name() {
  return "gl-fuzz-deterministic";
}
void det_stir() {}
randombytes_implementation g_deterministic = {det_name, det_random, det_stir,
                                              nullptr,  det_buf,    nullptr};

struct World {
  noise::KeyPair a = fixed_pair(1), b = fixed_pair(101);
  hs::Tai64n now = hs::tai64n(1700000000, 0);
  std::vector<uint8_t> init, response, confirm;
  hs::SaPair pair;
  World() {
    if (randombytes_set_implementation(&g_deterministic) != 0 || sodium_init() < 0) std::abort();
    hs::Initiator ini(a, b.pub, 7, 16 * 5, 2, Cipher::aes256_gcm, now);
    init = ini.message();
    hs::Responder resp(b);
    std::vector<uint8_t> reply;
    auto acc = resp.consume_init(init, {}, false, lookup(), 9, 16 * 9, 3, reply);
    if (!acc) std::abort();
    response = acc->response;
    auto p = ini.consume_response(response);
    if (!p) std::abort();
    pair = *p;
    confirm = pair.confirm();
  }
  static hs::Responder::Lookup lookup() {
    return [](const noise::Key&) {
      return std::optional<hs::Responder::PeerState>(hs::Responder::PeerState{});
    };
  }
};

World& world() {
  static World w;
  return w;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  World& w = world();
  if (size == 0) return 0;
  const uint8_t kind = data[0] % 5;
  std::vector<uint8_t> m(data + 1, data + size);
  switch (kind) {
    case 0: {  // an init to b
      fix_mac1(m, hs::kInitLen - 32, w.b.pub);
      hs::Responder resp(w.b);
      std::vector<uint8_t> reply;
      auto acc = resp.consume_init(m, std::span<const uint8_t>(data, size > 4 ? 4 : size),
                                   data[size - 1] & 1, World::lookup(), 9, 16 * 9, 3, reply);
      // Accepted only when it is the genuine init: IK authenticates the Noise part
      // (bytes 8 up to the macs); of the header, type and reserved bytes are checked and the
      // sender index (4-7) is covered by mac1 only, as in WireGuard (an active attacker who
      // rewrites it only misdirects the response); mac2 is checked only under load.
      const size_t noise_end = hs::kInitLen - 32;
      if (acc && (m.size() != hs::kInitLen || std::memcmp(m.data(), w.init.data(), 4) != 0 ||
                  std::memcmp(m.data() + 8, w.init.data() + 8, noise_end - 8) != 0))
        std::abort();
      break;
    }
    case 1: {  // a response to a's init
      fix_mac1(m, hs::kResponseLen - 32, w.a.pub);
      hs::Initiator ini(w.a, w.b.pub, 7, 16 * 5, 2, Cipher::aes256_gcm, w.now);
      auto p = ini.consume_response(m);
      (void)p;  // the initiator's ephemeral key is new: only "no crash" holds here
      break;
    }
    case 2: {  // a cookie for a's init
      hs::Initiator ini(w.a, w.b.pub, 7, 16 * 5, 2, Cipher::aes256_gcm, w.now);
      (void)ini.consume_cookie(m);
      break;
    }
    case 3:  // a confirm for the pair
      if (w.pair.check_confirm(m) && m != w.confirm) std::abort();
      break;
    default:
      (void)hs::receiver_index(m);
      (void)hs::message_type(m);
  }
  return 0;
}

std::vector<std::vector<uint8_t>> fuzz_seeds() {
  World& w = world();
  auto with = [](uint8_t kind, const std::vector<uint8_t>& m) {
    std::vector<uint8_t> s{kind};
    s.insert(s.end(), m.begin(), m.end());
    return s;
  };
  return {with(0, w.init), with(1, w.response), with(2, std::vector<uint8_t>(hs::kCookieLen, 3)),
          with(3, w.confirm), with(4, w.init)};
}
