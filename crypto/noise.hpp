// noise.hpp — the Noise protocol framework's IK handshake (revision 34), instantiated as
// Noise_IK_25519_ChaChaPoly_SHA256 on libsodium: X25519 (crypto_scalarmult), ChaCha20-
// Poly1305 IETF (96-bit nonce: 32 zero bits, then the 64-bit counter little-endian),
// SHA-256 and HMAC-SHA-256 (HKDF as the Noise specification defines it).
//
//   <- s
//   ...
//   -> e, es, s, ss   (message 1: the initiator's ephemeral, its static key encrypted)
//   <- e, ee, se      (message 2)
//
// Why IK, SHA-256 and this library split: control/DESIGN.md, "Host keys and the handshake".
// The glctld messages built on it (indices, MACs, timestamps, SPIs) are in handshake.hpp.
//
// Every secret (keys, chaining key, ephemeral private key) lives in this object and is
// wiped (sodium_memzero) when it is destroyed or no longer needed. Thread-safety: one
// handshake per object, no shared state. Complexity: a constant number of X25519
// operations (4 per side) and hashes per message.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace gl::crypto::noise {

inline constexpr size_t kKeyLen = 32;   // X25519 keys, cipher keys, hashes
inline constexpr size_t kTagLen = 16;   // Poly1305
inline constexpr size_t kHashLen = 32;  // SHA-256

using Key = std::array<uint8_t, kKeyLen>;

// An X25519 key pair; the private half is wiped on destruction.
struct KeyPair {
  Key priv{};
  Key pub{};
  static KeyPair generate();                     // from libsodium's CSPRNG
  static KeyPair from_private(const Key& priv);  // pub = X25519(priv, base point)
  KeyPair() = default;
  KeyPair(const KeyPair&) = default;
  KeyPair& operator=(const KeyPair&) = default;
  ~KeyPair();
};

// A direction's transport cipher after the handshake (Noise CipherState).
class CipherState {
 public:
  CipherState() = default;
  explicit CipherState(const Key& k) : k_(k), has_key_(true) {}
  CipherState(const CipherState&) = default;
  CipherState& operator=(const CipherState&) = default;
  ~CipherState();
  // Appends ENCRYPT(k, n++, ad, plaintext) (plaintext + 16-byte tag) to out.
  bool encrypt(std::span<const uint8_t> ad, std::span<const uint8_t> plaintext,
               std::vector<uint8_t>& out);
  // The plaintext, or nothing when the tag does not verify (n then stays).
  std::optional<std::vector<uint8_t>> decrypt(std::span<const uint8_t> ad,
                                              std::span<const uint8_t> ciphertext);
  const Key& key() const { return k_; }
  bool has_key() const { return has_key_; }
  uint64_t nonce() const { return n_; }

 private:
  Key k_{};
  bool has_key_ = false;
  uint64_t n_ = 0;
};

// HMAC-SHA-256 and the Noise HKDF (two outputs).
std::array<uint8_t, kHashLen> hmac(std::span<const uint8_t> key, std::span<const uint8_t> data);
void hkdf2(std::span<const uint8_t> ck, std::span<const uint8_t> ikm, Key& out1, Key& out2);

class HandshakeIK {
 public:
  enum class Role : uint8_t { kInitiator, kResponder };
  static constexpr size_t kMsg1Overhead = kKeyLen + kKeyLen + kTagLen + kTagLen;  // 96
  static constexpr size_t kMsg2Overhead = kKeyLen + kTagLen;                      // 48

  // The initiator knows the responder's static public key rs. `e` fixes the ephemeral
  // key (test vectors only; otherwise a fresh one is generated).
  static HandshakeIK initiator(const KeyPair& s, const Key& rs, std::span<const uint8_t> prologue,
                               const KeyPair* e = nullptr);
  static HandshakeIK responder(const KeyPair& s, std::span<const uint8_t> prologue,
                               const KeyPair* e = nullptr);
  HandshakeIK(const HandshakeIK&) = delete;
  HandshakeIK& operator=(const HandshakeIK&) = delete;
  HandshakeIK(HandshakeIK&&) = default;
  HandshakeIK& operator=(HandshakeIK&&) = default;
  ~HandshakeIK();

  // Initiator: message 1 carrying payload (kMsg1Overhead + payload bytes). Empty on a
  // DH failure (a low-order remote key).
  std::vector<uint8_t> write_message1(std::span<const uint8_t> payload);
  // Responder: message 1's payload, or nothing (truncated, bad key, tag mismatch). The
  // initiator's static key is remote_static() afterwards: the caller decides whether it
  // knows that host before answering.
  std::optional<std::vector<uint8_t>> read_message1(std::span<const uint8_t> msg);
  // Responder: message 2 (kMsg2Overhead + payload bytes); empty on failure.
  std::vector<uint8_t> write_message2(std::span<const uint8_t> payload);
  // Initiator: message 2's payload, or nothing.
  std::optional<std::vector<uint8_t>> read_message2(std::span<const uint8_t> msg);

  // After message 2: the initiator-to-responder and responder-to-initiator ciphers.
  // Wipes the handshake's remaining secrets.
  std::pair<CipherState, CipherState> split();
  const std::array<uint8_t, kHashLen>& handshake_hash() const { return h_; }
  const Key& remote_static() const { return rs_; }
  Role role() const { return role_; }

 private:
  HandshakeIK() = default;
  void mix_hash(std::span<const uint8_t> data);
  bool mix_dh(const Key& priv, const Key& pub);  // MixKey(DH(priv, pub)); false: low order
  void encrypt_and_hash(std::span<const uint8_t> plaintext, std::vector<uint8_t>& out);
  bool decrypt_and_hash(std::span<const uint8_t> ciphertext, std::vector<uint8_t>& out);
  void wipe();

  Role role_ = Role::kInitiator;
  int step_ = 0;  // messages processed
  KeyPair s_, e_;
  Key rs_{}, re_{};
  std::array<uint8_t, kHashLen> ck_{}, h_{};
  CipherState cs_;
};

}  // namespace gl::crypto::noise
