// aead_sodium.cpp — libsodium backend: AES-256-GCM (AES-NI + PCLMUL only) and
// ChaCha20-Poly1305 IETF, detached tags, in place, one call per op.
#include <sodium.h>

#include <cstring>
#include <mutex>

#include "crypto/aead_internal.hpp"

namespace gl::crypto {

void wipe(AeadKey& k) {
  sodium_memzero(k.bytes, sizeof(k.bytes));
}

namespace detail {
namespace {

static_assert(sizeof(crypto_aead_aes256gcm_state) <= sizeof(AeadKey::bytes));
static_assert(crypto_aead_aes256gcm_ABYTES == kIcvLen);
static_assert(crypto_aead_chacha20poly1305_ietf_ABYTES == kIcvLen);
static_assert(crypto_aead_aes256gcm_NPUBBYTES == kNonceLen);
static_assert(crypto_aead_chacha20poly1305_ietf_NPUBBYTES == kNonceLen);

auto* gcm_state(const AeadKey* k) {
  return reinterpret_cast<const crypto_aead_aes256gcm_state*>(k->bytes);
}

void gcm_expand(AeadKey& out, const uint8_t* key) {
  wipe(out);
  crypto_aead_aes256gcm_beforenm(reinterpret_cast<crypto_aead_aes256gcm_state*>(out.bytes), key);
}

uint32_t gcm_encrypt(Worker&, AeadOp* ops, uint32_t n, uint8_t* ok) {
  for (uint32_t i = 0; i < n; ++i) {
    AeadOp& op = ops[i];
    ok[i] = crypto_aead_aes256gcm_encrypt_detached_afternm(op.data, op.tag, nullptr, op.data,
                                                           op.len, op.aad, op.aad_len, nullptr,
                                                           op.nonce, gcm_state(op.key)) == 0;
  }
  uint32_t good = 0;
  for (uint32_t i = 0; i < n; ++i) good += ok[i];
  return good;
}

uint32_t gcm_decrypt(Worker&, AeadOp* ops, uint32_t n, uint8_t* ok) {
  uint32_t good = 0;
  for (uint32_t i = 0; i < n; ++i) {
    AeadOp& op = ops[i];
    ok[i] = crypto_aead_aes256gcm_decrypt_detached_afternm(op.data, nullptr, op.data, op.len,
                                                           op.tag, op.aad, op.aad_len, op.nonce,
                                                           gcm_state(op.key)) == 0;
    good += ok[i];
  }
  return good;
}

void chacha_expand(AeadKey& out, const uint8_t* key) {
  wipe(out);
  std::memcpy(out.bytes, key, kKeyLen);
}

uint32_t chacha_encrypt(Worker&, AeadOp* ops, uint32_t n, uint8_t* ok) {
  uint32_t good = 0;
  for (uint32_t i = 0; i < n; ++i) {
    AeadOp& op = ops[i];
    ok[i] = crypto_aead_chacha20poly1305_ietf_encrypt_detached(op.data, op.tag, nullptr, op.data,
                                                               op.len, op.aad, op.aad_len, nullptr,
                                                               op.nonce, op.key->bytes) == 0;
    good += ok[i];
  }
  return good;
}

uint32_t chacha_decrypt(Worker&, AeadOp* ops, uint32_t n, uint8_t* ok) {
  uint32_t good = 0;
  for (uint32_t i = 0; i < n; ++i) {
    AeadOp& op = ops[i];
    ok[i] = crypto_aead_chacha20poly1305_ietf_decrypt_detached(op.data, nullptr, op.data, op.len,
                                                               op.tag, op.aad, op.aad_len, op.nonce,
                                                               op.key->bytes) == 0;
    good += ok[i];
  }
  return good;
}

constexpr AeadImpl kGcm{Backend::sodium, Cipher::aes256_gcm, gcm_expand, gcm_encrypt, gcm_decrypt};
constexpr AeadImpl kChacha{Backend::sodium, Cipher::chacha20_poly1305, chacha_expand,
                           chacha_encrypt, chacha_decrypt};

}  // namespace

bool sodium_ready() {
  static const bool ready = sodium_init() >= 0;
  return ready;
}

const AeadImpl* sodium_impl(Cipher c) {
  if (!sodium_ready()) return nullptr;
  switch (c) {
    case Cipher::aes256_gcm:
      return crypto_aead_aes256gcm_is_available() ? &kGcm : nullptr;
    case Cipher::chacha20_poly1305:
      return &kChacha;
  }
  return nullptr;
}

}  // namespace detail
}  // namespace gl::crypto
