// aead.hpp — AEAD backend interface: AES-256-GCM and ChaCha20-Poly1305 over libsodium or
// intel-ipsec-mb, as batch functions behind a small table of function pointers that an
// SA picks once, at set-up (never per packet).
//
// Usage (control side):  const AeadImpl* a = aead_impl(Backend::ipsec_mb, Cipher::aes256_gcm);
//                        a->expand(key_state, key32);           // copies/expands the key
// Data side (one Worker per PMD thread):
//                        a->encrypt(worker, ops, n);             // in place, writes tags
//                        good = a->decrypt(worker, ops, n, ok);  // in place, checks tags
//
// Both backends compute the same functions (RFC 5288/4106 GCM with a 12-byte nonce, RFC
// 8439 ChaCha20-Poly1305 AEAD), so their outputs are byte-identical; the unit tests check
// that against RFC vectors and against each other.
//
// Thread-safety: aead_impl/choose_backend/expand: any thread. encrypt/decrypt: any thread,
// each with its own Worker (a Worker is never shared; it owns the thread's IMB_MGR).
// A given AeadKey may be used by several threads at once (read-only after expand).
// Complexity: encrypt/decrypt O(total bytes); no allocation, lock, syscall or log.
#pragma once

#include <cstddef>
#include <cstdint>
#include <expected>
#include <memory>
#include <string>
#include <string_view>

#include "crypto/types.hpp"

namespace gl::crypto {

inline constexpr size_t kKeyLen = 32;     // AES-256 / ChaCha20 key
inline constexpr size_t kSaltLen = 4;     // RFC 4106 / RFC 7634 salt
inline constexpr size_t kKeyMatLen = 36;  // key || salt, as IKEv2 and `ip xfrm` hand it over
inline constexpr size_t kNonceLen = 12;   // salt || 8-byte IV
inline constexpr size_t kIvLen = 8;
inline constexpr size_t kIcvLen = 16;

// Expanded key state of one key for one backend (AES round keys and GHASH powers for
// GCM, the raw key for ChaCha20). Opaque; wiped with wipe() (sodium_memzero).
struct alignas(64) AeadKey {
  alignas(64) uint8_t bytes[1024];
};
void wipe(AeadKey& k);

// One AEAD operation, in place. `aad` may point anywhere (ESP builds it in scratch).
struct AeadOp {
  const AeadKey* key;
  uint8_t* data;  // plaintext in / ciphertext out (encrypt), the reverse on decrypt
  uint8_t* tag;   // encrypt: the 16-byte tag is written here; decrypt: read from here
  const uint8_t* aad;
  uint32_t len;  // bytes at data
  uint32_t aad_len;
  uint8_t nonce[kNonceLen];
};

class Worker;

// One cipher of one backend.
struct AeadImpl {
  Backend backend;
  Cipher cipher;
  // Expands a 32-byte key into `out` (control side; copies, keeps no reference).
  void (*expand)(AeadKey& out, const uint8_t* key);
  // Encrypts ops[0, n) in place and writes each 16-byte tag; n <= kMaxBurst. ok[i] = 1
  // when op i was done; 0 when the backend refused it (data must then not be sent: it may
  // still be plaintext). Returns the count of ok.
  uint32_t (*encrypt)(Worker& w, AeadOp* ops, uint32_t n, uint8_t* ok);
  // Decrypts ops[0, n) in place and verifies each tag in constant time. ok[i] = 1 when
  // op i is authentic (data then holds the plaintext), 0 otherwise (data is then
  // unspecified: it may be ciphertext, plaintext or zeros). Returns the count of ok.
  uint32_t (*decrypt)(Worker& w, AeadOp* ops, uint32_t n, uint8_t* ok);
};

// The implementation, or nullptr when this backend cannot run it on this CPU (libsodium
// AES-GCM needs AES-NI + PCLMUL; ipsec-mb needs at least SSE4.2 + AES-NI).
const AeadImpl* aead_impl(Backend b, Cipher c);

// Start-up choice from configuration: "auto" (ipsec-mb when it runs on this CPU, else
// libsodium), "ipsec-mb" or "sodium"; an error when the requested backend cannot do `c`.
std::expected<Backend, std::string> choose_backend(std::string_view config, Cipher c);

// Human-readable description of the CPU path a backend uses ("ipsec-mb avx512", ...).
std::string backend_description(Backend b);

// Per-thread crypto context: the thread's IMB_MGR (when ipsec-mb works here) and the
// per-burst scratch ESP processing uses. One per PMD thread, created on the control side
// before the PMD starts; never shared between threads that run at the same time.
class alignas(64) Worker {
 public:
  static std::expected<std::unique_ptr<Worker>, std::string> create();
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // intel-ipsec-mb manager (IMB_MGR*), nullptr when ipsec-mb is unavailable.
  void* imb() const { return imb_; }

  // ---- scratch for one burst, used by esp.cpp (not for callers) ----
  struct alignas(64) Scratch {
    AeadOp ops[kMaxBurst];
    uint8_t aad[kMaxBurst][16];
    uint8_t tag[kMaxBurst][kIcvLen];  // computed tags (used by the ipsec-mb backend)
    uint64_t seq[kMaxBurst];
    uint8_t slot[kMaxBurst];  // packet index of ops[i]
    uint8_t ok[kMaxBurst];
    uint8_t l3len[kMaxBurst];  // decap: outer/transport IP header length
  };
  Scratch s;

 private:
  Worker() = default;
  void* imb_ = nullptr;
};

}  // namespace gl::crypto
