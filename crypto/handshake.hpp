// handshake.hpp — the host-to-host key exchange glctld runs over UDP: Noise IK
// (noise.hpp) in WireGuard-style messages, producing the two ESP SAs of a host pair.
//
// Messages (little-endian integers; TAI64N big-endian as its definition says):
//
//   init (156 B)     type=1 ver=1 0:16 | sender index:32 | Noise message 1 (116 B)
//                    | mac1:128 | mac2:128
//   response (100 B) type=2 ver=1 0:16 | sender index:32 | receiver index:32
//                    | Noise message 2 (56 B) | mac1:128 | mac2:128
//   cookie (64 B)    type=3 ver=1 0:16 | receiver index:32 | nonce (24 B)
//                    | cookie sealed with XChaCha20-Poly1305 (32 B)
//
//   confirm (24 B)   type=4 ver=1 0:16 | receiver index:32 | tag:128
//   confirm-ack (24 B) type=5, the same layout
//
// The init's payload (encrypted, 20 B): TAI64N timestamp (12 B), the initiator's inbound
// SPI block, the proposed cipher, its sender count, 2 zero bytes. The response's (8 B): the
// responder's inbound SPI block, the accepted cipher, its sender count, 2 zero bytes.
// Each host picks its own inbound SPIs (it alone allocates them), so SPIs never collide on
// a receiver. A block is kMaxSenders consecutive SPIs from a multiple of kMaxSenders; a
// host sends on one SA per sending context (gldp: one per PMD plus the control thread),
// SPI block + context, and says how many (its sender count) so that the peer installs that
// many inbound SAs.
//
// Confirm: the initiator, once its SAs are installed, proves it holds the new keys
// (ChaCha20-Poly1305 with its sending transport key, nonce 0, over the empty string with
// the 8-byte header as AD); the responder then moves its outbound SAs to the new keys and
// answers with confirm-ack (the same with its own sending key). Before the confirm the
// responder keeps sending on the old SAs, which the initiator still accepts: a rekey under
// load loses nothing (make-before-break).
//
// mac1 = BLAKE2b-128(key = SHA-256("mac1----" || receiver's static public key), the
// message up to mac1): a receiver drops what was not meant for its key before any DH.
// mac2 = BLAKE2b-128(key = a cookie, the message up to mac2), zero without one. A
// responder under load (the caller says when) answers an init without a valid mac2 with a
// cookie message and nothing else: no DH, no state; the cookie is BLAKE2b-128 keyed with a
// secret rotated every two minutes over the initiator's source address, so only a sender
// that receives at that address can make the next init pass (WireGuard's scheme).
//
// Replay: the responder accepts an init from a peer only with a timestamp above the last
// one it accepted from that peer (kept by the caller). Key compromise impersonation (IK's
// known limit: whoever has a host's private key can impersonate any peer to it) and the
// other choices are argued in control/DESIGN.md.
//
// ESP keys: for each SA, HKDF(its direction's Noise transport key, "goldilocks esp v1" ||
// SPI) gives a 32-byte key and a 4-byte salt (RFC 4106 / RFC 7634 keying): every SA of a
// host pair has its own key.
//
// Thread-safety: an Initiator is one handshake; a Responder is used by one thread (the
// caller serialises). No secret is logged; all are wiped when their owner is destroyed.
#pragma once

#include <array>
#include <cstdint>
#include <expected>
#include <functional>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "crypto/noise.hpp"
#include "crypto/types.hpp"

namespace gl::crypto::hs {

inline constexpr uint8_t kTypeInit = 1, kTypeResponse = 2, kTypeCookie = 3, kTypeConfirm = 4,
                         kTypeConfirmAck = 5;
inline constexpr uint8_t kVersion = 1;
inline constexpr size_t kInitPayload = 20, kResponsePayload = 8;
inline constexpr size_t kInitLen = 8 + noise::HandshakeIK::kMsg1Overhead + kInitPayload + 32;
inline constexpr size_t kResponseLen =
    12 + noise::HandshakeIK::kMsg2Overhead + kResponsePayload + 32;
inline constexpr size_t kCookieLen = 64, kConfirmLen = 24;
// SPIs per block, and the most sending contexts a host may announce.
inline constexpr uint32_t kMaxSenders = 16;
static_assert(kInitLen == 156 && kResponseLen == 100);

using Tai64n = std::array<uint8_t, 12>;
// TAI64N of a Unix time (seconds, nanoseconds): big-endian, compares as bytes.
Tai64n tai64n(uint64_t unix_s, uint32_t ns);
Tai64n tai64n_now();

enum class Error : uint8_t {
  kTruncated,    // wrong length for its type
  kBadType,      // not a message of this protocol / version
  kBadMac1,      // not meant for our key
  kCookieSent,   // under load without a valid mac2: answered with a cookie (not an error)
  kDecrypt,      // Noise refused it (tampered, wrong key, low-order point)
  kUnknownPeer,  // the static key is no registered (or a revoked) host
  kReplay,       // timestamp not above the last accepted from that peer
  kBadIndex,     // a response or cookie for no handshake of ours
  kBadPayload,   // payload fields out of range (cipher, reserved bytes, SPI 0)
  kCount,
};
inline constexpr flow::EnumName<Error> kErrorTable[] = {
    {Error::kTruncated, "truncated"},    {Error::kBadType, "bad_type"},
    {Error::kBadMac1, "bad_mac1"},       {Error::kCookieSent, "cookie_sent"},
    {Error::kDecrypt, "decrypt"},        {Error::kUnknownPeer, "unknown_peer"},
    {Error::kReplay, "replay"},          {Error::kBadIndex, "bad_index"},
    {Error::kBadPayload, "bad_payload"},
};
inline constexpr auto kErrorNames = flow::enum_names(kErrorTable);
static_assert(kErrorNames.size() == static_cast<size_t>(Error::kCount));

// One direction's ESP keying.
struct SaKeys {
  uint32_t spi = 0;
  std::array<uint8_t, 32> key{};
  std::array<uint8_t, 4> salt{};
  ~SaKeys();
};

// A host pair's SAs after one handshake, as one side sees them: the two transport keys,
// from which each SA's key is derived, and the two SPI blocks.
struct SaPair {
  Cipher cipher = Cipher::aes256_gcm;
  noise::Key peer{};
  uint32_t index = 0;       // this side's handshake index
  uint32_t peer_index = 0;  // the peer's
  uint32_t spi_in = 0;      // the block this host allocated (the peer sends on it)
  uint32_t n_in = 0;        // how many of it the peer sends on (its sender count)
  uint32_t spi_out = 0;     // the peer's block
  uint32_t n_out = 0;       // how many of it this host sends on
  bool initiator = false;
  noise::Key tx{}, rx{};  // transport keys: this host -> peer, peer -> this host
  SaPair() = default;
  SaPair(const SaPair&) = default;
  SaPair& operator=(const SaPair&) = default;
  ~SaPair();
  // The inbound SA the peer's context i sends on (i < n_in), this host's outbound SA of
  // context i (i < n_out).
  SaKeys in_sa(uint32_t i) const;
  SaKeys out_sa(uint32_t i) const;
  // Confirm (initiator) or confirm-ack (responder) for this pair.
  std::vector<uint8_t> confirm() const;
  // True when msg is the peer's confirm (responder) / confirm-ack (initiator) for this pair.
  bool check_confirm(std::span<const uint8_t> msg) const;
};

// The receiver index of a response, cookie, confirm or confirm-ack (0 when too short).
uint32_t receiver_index(std::span<const uint8_t> msg);

class Initiator {
 public:
  // self: this host's static key; peer: the responder's public key (from the cluster
  // database); index: this handshake's index (unique among this host's handshakes);
  // spi_in: the inbound SPI block this host allocated for the SAs the peer will send on
  // (a multiple of kMaxSenders, not 0); n_senders: how many SAs this host will send on
  // (1..kMaxSenders).
  Initiator(const noise::KeyPair& self, const noise::Key& peer, uint32_t index, uint32_t spi_in,
            uint32_t n_senders, Cipher cipher, const Tai64n& now);
  // The init message (again, with the cookie's mac2, after a cookie message).
  const std::vector<uint8_t>& message() const { return msg_; }
  // A cookie message for this handshake: recomputes mac2 of message(); false when it is
  // not ours or does not open.
  bool consume_cookie(std::span<const uint8_t> msg);
  std::expected<SaPair, Error> consume_response(std::span<const uint8_t> msg);
  uint32_t index() const { return index_; }

 private:
  noise::KeyPair self_;
  noise::Key peer_;
  uint32_t index_;
  uint32_t spi_in_;
  uint32_t n_senders_;
  Cipher cipher_;
  noise::HandshakeIK hs_;
  std::vector<uint8_t> msg_;
  std::array<uint8_t, 16> mac1_{};
};

class Responder {
 public:
  explicit Responder(const noise::KeyPair& self);
  ~Responder();

  // What the caller knows of a peer's static key: nothing (unknown or revoked), or the
  // last timestamp it accepted from it.
  struct PeerState {
    Tai64n last{};  // zero: none yet
  };
  using Lookup = std::function<std::optional<PeerState>(const noise::Key& peer)>;
  struct Accepted {
    SaPair sa;
    Tai64n timestamp{};  // the caller stores it as the peer's last
    std::vector<uint8_t> response;
  };
  // An init from `source` (the sender's address bytes, for the cookie). under_load: ask
  // for a cookie first (then Error::kCookieSent and `reply` holds the cookie message).
  // index / spi_in / n_senders: this side's handshake index, the inbound SPI block it
  // allocated and how many SAs it will send on (as for the Initiator).
  std::expected<Accepted, Error> consume_init(std::span<const uint8_t> msg,
                                              std::span<const uint8_t> source, bool under_load,
                                              const Lookup& lookup, uint32_t index, uint32_t spi_in,
                                              uint32_t n_senders, std::vector<uint8_t>& reply);
  // Rotates the cookie secret (every two minutes; now_s: a monotonic clock in seconds).
  void tick(uint64_t now_s);
  const noise::Key& public_key() const { return self_.pub; }

 private:
  std::array<uint8_t, 16> cookie_for(std::span<const uint8_t> source) const;

  noise::KeyPair self_;
  std::array<uint8_t, 32> mac1_key_{};
  std::array<uint8_t, 32> cookie_key_{};  // seals cookie messages (from our public key)
  std::array<uint8_t, 32> secret_{};      // the cookie secret
  uint64_t secret_at_ = 0;
};

// Only the message's type byte (0 when too short): which of the above to hand it to.
inline uint8_t message_type(std::span<const uint8_t> msg) {
  return msg.size() >= 4 && msg[1] == kVersion ? msg[0] : 0;
}

}  // namespace gl::crypto::hs
