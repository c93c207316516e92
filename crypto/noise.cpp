// noise.cpp — Noise_IK_25519_ChaChaPoly_SHA256 on libsodium (see noise.hpp).
#include "crypto/noise.hpp"

#include <sodium.h>

#include <cstring>
#include <stdexcept>
#include <string_view>

namespace gl::crypto::noise {

namespace {

constexpr std::string_view kProtocolName = "Noise_IK_25519_ChaChaPoly_SHA256";
static_assert(kProtocolName.size() == kHashLen);  // used as h directly (no hash), per spec

void init_sodium() {
  if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialise");
}

// ChaChaPoly's nonce: 32 zero bits, then n little-endian.
std::array<uint8_t, crypto_aead_chacha20poly1305_IETF_NPUBBYTES> chacha_nonce(uint64_t n) {
  std::array<uint8_t, crypto_aead_chacha20poly1305_IETF_NPUBBYTES> iv{};
  for (int i = 0; i < 8; ++i) iv[4 + i] = static_cast<uint8_t>(n >> (8 * i));
  return iv;
}

}  // namespace

KeyPair KeyPair::generate() {
  init_sodium();
  KeyPair kp;
  randombytes_buf(kp.priv.data(), kp.priv.size());
  crypto_scalarmult_base(kp.pub.data(), kp.priv.data());
  return kp;
}

KeyPair KeyPair::from_private(const Key& priv) {
  init_sodium();
  KeyPair kp;
  kp.priv = priv;
  crypto_scalarmult_base(kp.pub.data(), kp.priv.data());
  return kp;
}

KeyPair::~KeyPair() {
  sodium_memzero(priv.data(), priv.size());
}

CipherState::~CipherState() {
  sodium_memzero(k_.data(), k_.size());
}

bool CipherState::encrypt(std::span<const uint8_t> ad, std::span<const uint8_t> plaintext,
                          std::vector<uint8_t>& out) {
  if (!has_key_) {
    out.insert(out.end(), plaintext.begin(), plaintext.end());
    return true;
  }
  if (n_ == UINT64_MAX) return false;  // the spec's reserved nonce: rekey instead
  const size_t at = out.size();
  out.resize(at + plaintext.size() + kTagLen);
  unsigned long long clen = 0;
  const auto iv = chacha_nonce(n_);
  crypto_aead_chacha20poly1305_ietf_encrypt(out.data() + at, &clen, plaintext.data(),
                                            plaintext.size(), ad.data(), ad.size(), nullptr,
                                            iv.data(), k_.data());
  ++n_;
  return true;
}

std::optional<std::vector<uint8_t>> CipherState::decrypt(std::span<const uint8_t> ad,
                                                         std::span<const uint8_t> ciphertext) {
  if (!has_key_) return std::vector<uint8_t>(ciphertext.begin(), ciphertext.end());
  if (ciphertext.size() < kTagLen || n_ == UINT64_MAX) return std::nullopt;
  std::vector<uint8_t> pt(ciphertext.size() - kTagLen);
  unsigned long long plen = 0;
  const auto iv = chacha_nonce(n_);
  if (crypto_aead_chacha20poly1305_ietf_decrypt(pt.data(), &plen, nullptr, ciphertext.data(),
                                                ciphertext.size(), ad.data(), ad.size(), iv.data(),
                                                k_.data()) != 0)
    return std::nullopt;
  ++n_;
  return pt;
}

std::array<uint8_t, kHashLen> hmac(std::span<const uint8_t> key, std::span<const uint8_t> data) {
  crypto_auth_hmacsha256_state st;
  std::array<uint8_t, kHashLen> out{};
  crypto_auth_hmacsha256_init(&st, key.data(), key.size());
  crypto_auth_hmacsha256_update(&st, data.data(), data.size());
  crypto_auth_hmacsha256_final(&st, out.data());
  sodium_memzero(&st, sizeof st);
  return out;
}

void hkdf2(std::span<const uint8_t> ck, std::span<const uint8_t> ikm, Key& out1, Key& out2) {
  std::array<uint8_t, kHashLen> temp = hmac(ck, ikm);
  const uint8_t one = 0x01;
  out1 = hmac(temp, std::span<const uint8_t>(&one, 1));
  uint8_t buf[kHashLen + 1];
  std::memcpy(buf, out1.data(), kHashLen);
  buf[kHashLen] = 0x02;
  out2 = hmac(temp, buf);
  sodium_memzero(temp.data(), temp.size());
  sodium_memzero(buf, sizeof buf);
}

HandshakeIK HandshakeIK::initiator(const KeyPair& s, const Key& rs,
                                   std::span<const uint8_t> prologue, const KeyPair* e) {
  init_sodium();
  HandshakeIK hs;
  hs.role_ = Role::kInitiator;
  hs.s_ = s;
  hs.e_ = e != nullptr ? *e : KeyPair::generate();
  hs.rs_ = rs;
  std::memcpy(hs.h_.data(), kProtocolName.data(), kHashLen);
  hs.ck_ = hs.h_;
  hs.mix_hash(prologue);
  hs.mix_hash(rs);  // the pre-message: <- s
  return hs;
}

HandshakeIK HandshakeIK::responder(const KeyPair& s, std::span<const uint8_t> prologue,
                                   const KeyPair* e) {
  init_sodium();
  HandshakeIK hs;
  hs.role_ = Role::kResponder;
  hs.s_ = s;
  hs.e_ = e != nullptr ? *e : KeyPair::generate();
  std::memcpy(hs.h_.data(), kProtocolName.data(), kHashLen);
  hs.ck_ = hs.h_;
  hs.mix_hash(prologue);
  hs.mix_hash(s.pub);
  return hs;
}

HandshakeIK::~HandshakeIK() {
  wipe();
}

void HandshakeIK::wipe() {
  sodium_memzero(ck_.data(), ck_.size());
  sodium_memzero(e_.priv.data(), e_.priv.size());
  sodium_memzero(s_.priv.data(), s_.priv.size());
  cs_ = CipherState{};
}

void HandshakeIK::mix_hash(std::span<const uint8_t> data) {
  crypto_hash_sha256_state st;
  crypto_hash_sha256_init(&st);
  crypto_hash_sha256_update(&st, h_.data(), h_.size());
  crypto_hash_sha256_update(&st, data.data(), data.size());
  crypto_hash_sha256_final(&st, h_.data());
}

bool HandshakeIK::mix_dh(const Key& priv, const Key& pub) {
  Key shared{};
  // libsodium refuses an all-zero result (a low-order point): the handshake fails.
  if (crypto_scalarmult(shared.data(), priv.data(), pub.data()) != 0) return false;
  Key ck{}, k{};
  hkdf2(ck_, shared, ck, k);
  ck_ = ck;
  cs_ = CipherState(k);
  sodium_memzero(shared.data(), shared.size());
  sodium_memzero(ck.data(), ck.size());
  sodium_memzero(k.data(), k.size());
  return true;
}

void HandshakeIK::encrypt_and_hash(std::span<const uint8_t> plaintext, std::vector<uint8_t>& out) {
  const size_t at = out.size();
  cs_.encrypt(h_, plaintext, out);
  mix_hash(std::span<const uint8_t>(out.data() + at, out.size() - at));
}

bool HandshakeIK::decrypt_and_hash(std::span<const uint8_t> ciphertext, std::vector<uint8_t>& out) {
  auto pt = cs_.decrypt(h_, ciphertext);
  if (!pt) return false;
  mix_hash(ciphertext);
  out = std::move(*pt);
  return true;
}

std::vector<uint8_t> HandshakeIK::write_message1(std::span<const uint8_t> payload) {
  if (role_ != Role::kInitiator || step_ != 0) return {};
  std::vector<uint8_t> out(e_.pub.begin(), e_.pub.end());  // -> e
  mix_hash(e_.pub);
  step_ = -1;                            // until it succeeds: a failed handshake object is spent
  if (!mix_dh(e_.priv, rs_)) return {};  // es
  encrypt_and_hash(s_.pub, out);         // s
  if (!mix_dh(s_.priv, rs_)) return {};  // ss
  encrypt_and_hash(payload, out);
  step_ = 1;
  return out;
}

std::optional<std::vector<uint8_t>> HandshakeIK::read_message1(std::span<const uint8_t> msg) {
  if (role_ != Role::kResponder || step_ != 0 || msg.size() < kMsg1Overhead) return std::nullopt;
  step_ = -1;
  std::memcpy(re_.data(), msg.data(), kKeyLen);  // e
  mix_hash(re_);
  if (!mix_dh(s_.priv, re_)) return std::nullopt;  // es
  std::vector<uint8_t> rs;
  if (!decrypt_and_hash(msg.subspan(kKeyLen, kKeyLen + kTagLen), rs)) return std::nullopt;  // s
  std::memcpy(rs_.data(), rs.data(), kKeyLen);
  if (!mix_dh(s_.priv, rs_)) return std::nullopt;  // ss
  std::vector<uint8_t> payload;
  if (!decrypt_and_hash(msg.subspan(2 * kKeyLen + kTagLen), payload)) return std::nullopt;
  step_ = 1;
  return payload;
}

std::vector<uint8_t> HandshakeIK::write_message2(std::span<const uint8_t> payload) {
  if (role_ != Role::kResponder || step_ != 1) return {};
  step_ = -1;
  std::vector<uint8_t> out(e_.pub.begin(), e_.pub.end());  // <- e
  mix_hash(e_.pub);
  if (!mix_dh(e_.priv, re_)) return {};  // ee
  if (!mix_dh(e_.priv, rs_)) return {};  // se (the responder's side: DH(e, rs))
  encrypt_and_hash(payload, out);
  step_ = 2;
  return out;
}

std::optional<std::vector<uint8_t>> HandshakeIK::read_message2(std::span<const uint8_t> msg) {
  if (role_ != Role::kInitiator || step_ != 1 || msg.size() < kMsg2Overhead) return std::nullopt;
  step_ = -1;
  std::memcpy(re_.data(), msg.data(), kKeyLen);  // e
  mix_hash(re_);
  if (!mix_dh(e_.priv, re_)) return std::nullopt;  // ee
  if (!mix_dh(s_.priv, re_)) return std::nullopt;  // se (the initiator's side: DH(s, re))
  std::vector<uint8_t> payload;
  if (!decrypt_and_hash(msg.subspan(kKeyLen), payload)) return std::nullopt;
  step_ = 2;
  return payload;
}

std::pair<CipherState, CipherState> HandshakeIK::split() {
  if (step_ != 2) return {};
  Key k1{}, k2{};
  hkdf2(ck_, std::span<const uint8_t>(), k1, k2);
  std::pair<CipherState, CipherState> r{CipherState(k1), CipherState(k2)};
  sodium_memzero(k1.data(), k1.size());
  sodium_memzero(k2.data(), k2.size());
  wipe();
  step_ = 3;
  return r;
}

}  // namespace gl::crypto::noise
