// handshake.cpp — glctld's host-to-host handshake messages (see handshake.hpp).
#include "crypto/handshake.hpp"

#include <sodium.h>

#include <cstring>
#include <ctime>
#include <stdexcept>

#include "flowtables/bytes.hpp"

namespace gl::crypto::hs {

namespace {

constexpr size_t kMac1At = kInitLen - 32, kMac2At = kInitLen - 16;  // init
constexpr size_t kRMac1At = kResponseLen - 32;  // response (its mac2 is not used)
constexpr std::string_view kPrologue = "goldilocks handshake v1";
constexpr std::string_view kEspInfo = "goldilocks esp v1";
constexpr size_t kConfirmHdr = 8;
static_assert(kConfirmHdr + 16 == kConfirmLen);

bool good_block(uint32_t spi) {
  return spi != 0 && spi % kMaxSenders == 0;
}
bool good_count(uint32_t n) {
  return n >= 1 && n <= kMaxSenders;
}

std::span<const uint8_t> prologue() {
  return {reinterpret_cast<const uint8_t*>(kPrologue.data()), kPrologue.size()};
}

// SHA-256(label || public key): the keys of mac1 and of cookie messages.
std::array<uint8_t, 32> labelled_key(std::string_view label, const noise::Key& pub) {
  std::array<uint8_t, 32> out{};
  crypto_hash_sha256_state st;
  crypto_hash_sha256_init(&st);
  crypto_hash_sha256_update(&st, reinterpret_cast<const uint8_t*>(label.data()), label.size());
  crypto_hash_sha256_update(&st, pub.data(), pub.size());
  crypto_hash_sha256_final(&st, out.data());
  return out;
}

std::array<uint8_t, 16> mac16(std::span<const uint8_t> key, std::span<const uint8_t> data) {
  std::array<uint8_t, 16> out{};
  crypto_generichash(out.data(), out.size(), data.data(), data.size(), key.data(), key.size());
  return out;
}

using flow::load_le32;
using flow::store_le32;

// One direction's ESP key and salt from its Noise transport key and SPI.
void derive(const noise::Key& k, uint32_t spi, SaKeys& out) {
  uint8_t info[kEspInfo.size() + 4];
  std::memcpy(info, kEspInfo.data(), kEspInfo.size());
  store_le32(info + kEspInfo.size(), spi);
  noise::Key o1{}, o2{};
  noise::hkdf2(k, info, o1, o2);
  out.spi = spi;
  out.key = o1;
  std::memcpy(out.salt.data(), o2.data(), out.salt.size());
  sodium_memzero(o1.data(), o1.size());
  sodium_memzero(o2.data(), o2.size());
}

void init_sodium() {
  if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialise");
}

}  // namespace

Tai64n tai64n(uint64_t unix_s, uint32_t ns) {
  Tai64n t{};
  const uint64_t label = 0x400000000000000aULL + unix_s;
  for (int i = 0; i < 8; ++i) t[i] = static_cast<uint8_t>(label >> (56 - 8 * i));
  for (int i = 0; i < 4; ++i) t[8 + i] = static_cast<uint8_t>(ns >> (24 - 8 * i));
  return t;
}

Tai64n tai64n_now() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return tai64n(static_cast<uint64_t>(ts.tv_sec), static_cast<uint32_t>(ts.tv_nsec));
}

SaKeys::~SaKeys() {
  sodium_memzero(key.data(), key.size());
  sodium_memzero(salt.data(), salt.size());
}

SaPair::~SaPair() {
  sodium_memzero(tx.data(), tx.size());
  sodium_memzero(rx.data(), rx.size());
}

SaKeys SaPair::in_sa(uint32_t i) const {
  SaKeys k;
  derive(rx, spi_in + i, k);
  return k;
}

SaKeys SaPair::out_sa(uint32_t i) const {
  SaKeys k;
  derive(tx, spi_out + i, k);
  return k;
}

namespace {

// The confirm (initiator -> responder) or its ack, sealed with the sender's transport key:
// nonce 0 (the transport keys encrypt nothing else; ESP keys are derived from them).
std::vector<uint8_t> seal_confirm(uint8_t type, uint32_t receiver, const noise::Key& k) {
  std::vector<uint8_t> m(kConfirmLen, 0);
  m[0] = type;
  m[1] = kVersion;
  store_le32(m.data() + 4, receiver);
  const uint8_t nonce[12] = {};
  unsigned long long len = 0;
  crypto_aead_chacha20poly1305_ietf_encrypt(m.data() + kConfirmHdr, &len, nullptr, 0, m.data(),
                                            kConfirmHdr, nullptr, nonce, k.data());
  return m;
}

}  // namespace

std::vector<uint8_t> SaPair::confirm() const {
  return seal_confirm(initiator ? kTypeConfirm : kTypeConfirmAck, peer_index, tx);
}

bool SaPair::check_confirm(std::span<const uint8_t> msg) const {
  if (msg.size() != kConfirmLen ||
      message_type(msg) != (initiator ? kTypeConfirmAck : kTypeConfirm))
    return false;
  if (msg[2] != 0 || msg[3] != 0 || load_le32(msg.data() + 4) != index) return false;
  const uint8_t nonce[12] = {};
  return crypto_aead_chacha20poly1305_ietf_decrypt(nullptr, nullptr, nullptr,
                                                   msg.data() + kConfirmHdr, 16, msg.data(),
                                                   kConfirmHdr, nonce, rx.data()) == 0;
}

uint32_t receiver_index(std::span<const uint8_t> msg) {
  switch (message_type(msg)) {
    case kTypeResponse:
      return msg.size() >= 12 ? load_le32(msg.data() + 8) : 0;
    case kTypeCookie:
    case kTypeConfirm:
    case kTypeConfirmAck:
      return msg.size() >= 8 ? load_le32(msg.data() + 4) : 0;
    default:
      return 0;
  }
}

Initiator::Initiator(const noise::KeyPair& self, const noise::Key& peer, uint32_t index,
                     uint32_t spi_in, uint32_t n_senders, Cipher cipher, const Tai64n& now)
    : self_(self),
      peer_(peer),
      index_(index),
      spi_in_(spi_in),
      n_senders_(n_senders),
      cipher_(cipher),
      hs_(noise::HandshakeIK::initiator(self, peer, prologue())) {
  uint8_t payload[kInitPayload] = {};
  std::memcpy(payload, now.data(), now.size());
  store_le32(payload + 12, spi_in);
  payload[16] = static_cast<uint8_t>(cipher);
  payload[17] = static_cast<uint8_t>(n_senders);
  msg_.assign(8, 0);
  if (!good_block(spi_in) || !good_count(n_senders)) {  // a caller bug: no message
    msg_.clear();
    return;
  }
  msg_[0] = kTypeInit;
  msg_[1] = kVersion;
  store_le32(msg_.data() + 4, index);
  const std::vector<uint8_t> m1 = hs_.write_message1(payload);
  sodium_memzero(payload, sizeof payload);
  if (m1.empty()) {  // a low-order peer key: a message no responder accepts
    msg_.clear();
    return;
  }
  msg_.insert(msg_.end(), m1.begin(), m1.end());
  const auto k1 = labelled_key("mac1----", peer);
  mac1_ = mac16(k1, std::span<const uint8_t>(msg_.data(), kMac1At));
  msg_.insert(msg_.end(), mac1_.begin(), mac1_.end());
  msg_.resize(kInitLen, 0);  // mac2: none yet
}

bool Initiator::consume_cookie(std::span<const uint8_t> msg) {
  if (msg.size() != kCookieLen || msg[0] != kTypeCookie || msg[1] != kVersion ||
      load_le32(msg.data() + 4) != index_ || msg_.size() != kInitLen)
    return false;
  const auto ck = labelled_key("cookie--", peer_);
  uint8_t cookie[16];
  unsigned long long len = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(cookie, &len, nullptr, msg.data() + 32, 32,
                                                 mac1_.data(), mac1_.size(), msg.data() + 8,
                                                 ck.data()) != 0)
    return false;
  const auto m2 =
      mac16(std::span<const uint8_t>(cookie, 16), std::span<const uint8_t>(msg_.data(), kMac2At));
  std::memcpy(msg_.data() + kMac2At, m2.data(), m2.size());
  sodium_memzero(cookie, sizeof cookie);
  return true;
}

std::expected<SaPair, Error> Initiator::consume_response(std::span<const uint8_t> msg) {
  if (message_type(msg) != kTypeResponse) return std::unexpected(Error::kBadType);
  if (msg.size() != kResponseLen) return std::unexpected(Error::kTruncated);
  if (msg[2] != 0 || msg[3] != 0) return std::unexpected(Error::kBadType);
  if (load_le32(msg.data() + 8) != index_) return std::unexpected(Error::kBadIndex);
  const auto k1 = labelled_key("mac1----", self_.pub);
  const auto m1 = mac16(k1, msg.first(kRMac1At));
  if (crypto_verify_16(m1.data(), msg.data() + kRMac1At) != 0)
    return std::unexpected(Error::kBadMac1);
  const auto payload = hs_.read_message2(msg.subspan(12, kRMac1At - 12));
  if (!payload) return std::unexpected(Error::kDecrypt);
  const uint8_t* p = payload->data();
  const uint32_t peer_spi = load_le32(p);
  if (!good_block(peer_spi) || p[4] != static_cast<uint8_t>(cipher_) || !good_count(p[5]) ||
      p[6] != 0 || p[7] != 0)
    return std::unexpected(Error::kBadPayload);
  auto [c1, c2] = hs_.split();
  SaPair sa;
  sa.cipher = cipher_;
  sa.peer = peer_;
  sa.initiator = true;
  sa.index = index_;
  sa.peer_index = load_le32(msg.data() + 4);
  sa.spi_in = spi_in_;
  sa.n_in = p[5];
  sa.spi_out = peer_spi;
  sa.n_out = n_senders_;
  sa.tx = c1.key();  // initiator -> responder
  sa.rx = c2.key();  // responder -> initiator
  return sa;
}

Responder::Responder(const noise::KeyPair& self) : self_(self) {
  init_sodium();
  mac1_key_ = labelled_key("mac1----", self.pub);
  cookie_key_ = labelled_key("cookie--", self.pub);
  randombytes_buf(secret_.data(), secret_.size());
}

Responder::~Responder() {
  sodium_memzero(secret_.data(), secret_.size());
}

void Responder::tick(uint64_t now_s) {
  if (secret_at_ != 0 && now_s - secret_at_ < 120) return;
  randombytes_buf(secret_.data(), secret_.size());
  secret_at_ = now_s == 0 ? 1 : now_s;
}

std::array<uint8_t, 16> Responder::cookie_for(std::span<const uint8_t> source) const {
  return mac16(secret_, source);
}

std::expected<Responder::Accepted, Error> Responder::consume_init(
    std::span<const uint8_t> msg, std::span<const uint8_t> source, bool under_load,
    const Lookup& lookup, uint32_t index, uint32_t spi_in, uint32_t n_senders,
    std::vector<uint8_t>& reply) {
  reply.clear();
  if (!good_block(spi_in) || !good_count(n_senders)) return std::unexpected(Error::kBadPayload);
  if (message_type(msg) != kTypeInit) return std::unexpected(Error::kBadType);
  if (msg.size() != kInitLen) return std::unexpected(Error::kTruncated);
  if (msg[2] != 0 || msg[3] != 0) return std::unexpected(Error::kBadType);
  // Cheap checks first: nothing below costs a DH until the sender showed it knows our key
  // (mac1) and, under load, that it receives at its address (mac2).
  const auto m1 = mac16(mac1_key_, msg.first(kMac1At));
  if (crypto_verify_16(m1.data(), msg.data() + kMac1At) != 0)
    return std::unexpected(Error::kBadMac1);
  if (under_load) {
    const auto cookie = cookie_for(source);
    const auto m2 = mac16(cookie, msg.first(kMac2At));
    if (crypto_verify_16(m2.data(), msg.data() + kMac2At) != 0) {
      reply.assign(kCookieLen, 0);
      reply[0] = kTypeCookie;
      reply[1] = kVersion;
      std::memcpy(reply.data() + 4, msg.data() + 4, 4);  // the initiator's index
      randombytes_buf(reply.data() + 8, 24);
      unsigned long long len = 0;
      crypto_aead_xchacha20poly1305_ietf_encrypt(reply.data() + 32, &len, cookie.data(),
                                                 cookie.size(), msg.data() + kMac1At, 16, nullptr,
                                                 reply.data() + 8, cookie_key_.data());
      return std::unexpected(Error::kCookieSent);
    }
  }
  auto hs = noise::HandshakeIK::responder(self_, prologue());
  auto payload = hs.read_message1(msg.subspan(8, kMac1At - 8));
  if (!payload) return std::unexpected(Error::kDecrypt);
  const std::optional<PeerState> peer = lookup(hs.remote_static());
  if (!peer) return std::unexpected(Error::kUnknownPeer);
  const uint8_t* p = payload->data();
  Accepted a;
  std::memcpy(a.timestamp.data(), p, a.timestamp.size());
  const uint32_t peer_spi = load_le32(p + 12);
  if (!good_block(peer_spi) || p[16] >= kCipherCount || !good_count(p[17]) || p[18] != 0 ||
      p[19] != 0)
    return std::unexpected(Error::kBadPayload);
  if (std::memcmp(a.timestamp.data(), peer->last.data(), a.timestamp.size()) <= 0)
    return std::unexpected(Error::kReplay);
  a.sa.cipher = static_cast<Cipher>(p[16]);
  uint8_t rp[kResponsePayload] = {};
  store_le32(rp, spi_in);
  rp[4] = p[16];
  rp[5] = static_cast<uint8_t>(n_senders);
  const uint32_t peer_senders = p[17];
  sodium_memzero(payload->data(), payload->size());
  const std::vector<uint8_t> m2 = hs.write_message2(rp);
  if (m2.empty()) return std::unexpected(Error::kDecrypt);
  a.response.assign(12, 0);
  a.response[0] = kTypeResponse;
  a.response[1] = kVersion;
  store_le32(a.response.data() + 4, index);
  std::memcpy(a.response.data() + 8, msg.data() + 4, 4);
  a.response.insert(a.response.end(), m2.begin(), m2.end());
  const auto rk = labelled_key("mac1----", hs.remote_static());
  const auto rm1 = mac16(rk, a.response);
  a.response.insert(a.response.end(), rm1.begin(), rm1.end());
  a.response.resize(kResponseLen, 0);
  a.sa.peer = hs.remote_static();
  a.sa.peer_index = load_le32(msg.data() + 4);
  a.sa.index = index;
  a.sa.spi_in = spi_in;
  a.sa.n_in = peer_senders;
  a.sa.spi_out = peer_spi;
  a.sa.n_out = n_senders;
  auto [c1, c2] = hs.split();
  a.sa.tx = c2.key();  // responder -> initiator
  a.sa.rx = c1.key();  // initiator -> responder
  return a;
}

}  // namespace gl::crypto::hs
