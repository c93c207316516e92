// sa.hpp — ESP security association runtime: configuration, the hot/cold split, keys,
// counters, and SaTable (SPI -> inbound SA) for the datapath.
//
// An Sa is created on the control side by make_sa(), which copies the key material into
// the SA (expanding it for the chosen backend) and picks the SA's burst function once:
// encap or decap, specialised for mode, outer address family and cipher backend. The
// caller wipes its own copy of the key; the SA wipes its copy (sodium_memzero) when it is
// destroyed. Nothing else ever holds key bytes.
//
// Layout (VPP ipsec_sa.h style): SaHot is the cache-aligned part every packet touches
// (function pointers, key pointer, sequence number, salt, outer header template); the
// replay window, counters, expanded key and the cold configuration follow in their own
// cache lines.
//
// Thread-safety: an SA is processed by one thread at a time (the datapath gives each PMD
// its own outbound SAs and steers each inbound SPI to one PMD). stats(), seq(),
// replay_top() and expired() may be called from any thread at any time (relaxed atomics).
// SaTable is immutable after build(): any number of readers; the datapath publishes
// versions of it by RCU and frees an Sa only after the grace period of the table version
// that last referenced it.
// Complexity: make_sa O(replay window); SaTable::find O(1) expected (open addressing,
// load <= 1/2); SaTable::build O(n).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <expected>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/aead.hpp"
#include "crypto/replay.hpp"
#include "crypto/types.hpp"

namespace gl::crypto {

// An IPv4 or IPv6 address in network byte order.
struct IpAddress {
  bool v6 = false;
  std::array<uint8_t, 16> bytes{};  // IPv4: first 4 bytes

  static IpAddress v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d);
  // "192.0.2.1" or "2001:db8::1".
  static std::expected<IpAddress, std::string> parse(std::string_view text);
  std::string to_string() const;
  bool operator==(const IpAddress&) const = default;
};

// Everything about an SA except its key. Control side.
struct SaConfig {
  uint32_t spi = 0;  // >= 256 (RFC 4303: 1..255 reserved, 0 local use)
  Direction dir = Direction::outbound;
  Mode mode = Mode::tunnel;
  Cipher cipher = Cipher::aes256_gcm;
  Backend backend = Backend::ipsec_mb;
  bool esn = true;  // 64-bit extended sequence numbers (RFC 4304); false: 32-bit

  // Tunnel mode outer header (outbound: src = local, dst = remote; both the same family).
  IpAddress local;
  IpAddress remote;
  uint8_t ttl = 64;         // IPv4 TTL / IPv6 hop limit
  uint8_t tos = 0;          // IPv4 TOS / IPv6 traffic class of the outer header
  bool df = true;           // IPv4 outer "don't fragment"
  uint32_t flow_label = 0;  // IPv6 outer flow label (20 bits)

  uint32_t replay_window = ReplayWindow::kDefaultSize;  // inbound; power of two, 64..4096
  // Outbound: the last sequence number already used (the next packet carries
  // seq_start + 1); inbound: the highest already received. 0 for a new SA.
  uint64_t seq_start = 0;
  // Outbound: last sequence number that may be sent (0: 2^64 - 1 with ESN, 2^32 - 1
  // without). Reaching it expires the SA; the counter never wraps.
  uint64_t seq_limit = 0;
};

// Counter snapshot. by_result[ok] counts good packets; bytes counts their clear-text size
// (tunnel: the inner packet; transport: the IP packet without ESP).
struct SaStats {
  uint64_t bytes = 0;
  std::array<uint64_t, kResultCount> by_result{};
  uint64_t packets() const { return by_result[0]; }
  uint64_t operator[](Result r) const { return by_result[static_cast<size_t>(r)]; }
};

class Sa;

// Burst function of an SA: processes pkts[0, n) (n <= kMaxBurst), writes res[i] for
// every packet and returns the count of Result::ok. See esp.hpp.
using SaBurstFn = uint32_t (*)(Sa& sa, Worker& w, PktBuf* const* pkts, uint32_t n, Result* res);

// The part of an SA that each packet reads and the owning PMD writes.
struct alignas(64) SaHot {
  // ---- cache line 0 ----
  SaBurstFn burst = nullptr;  // encap or decap, specialised at set-up
  // AEAD batch function of the SA's backend for its direction.
  uint32_t (*aead)(Worker& w, AeadOp* ops, uint32_t n, uint8_t* ok) = nullptr;
  const AeadKey* key = nullptr;
  std::atomic<uint64_t> seq{0};  // outbound: last sequence number used
  uint64_t seq_limit = 0;        // outbound: last usable sequence number
  uint32_t spi = 0;              // host order
  uint32_t spi_be = 0;           // network order
  uint8_t salt[kSaltLen] = {};
  uint32_t tmpl_sum = 0;  // IPv4 template: one's-complement sum with len/id/csum zero
  uint16_t ip_id = 0;     // IPv4 identification, per SA
  uint8_t hdr_len = 0;    // outbound tunnel: outer IP + ESP header + IV
  bool esn = true;
  std::atomic<bool> expired{false};
  // ---- cache line 1: outer IP header + ESP SPI (outbound tunnel) ----
  alignas(64) uint8_t tmpl[64] = {};
};
static_assert(sizeof(SaHot) == 128);

// Per-SA counters: written by the owning PMD with relaxed load + store (never an RMW),
// read by anyone.
struct alignas(64) SaCounters {
  std::atomic<uint64_t> bytes{0};
  std::array<std::atomic<uint64_t>, kResultCount> by_result{};

  void add(Result r, uint64_t n) {
    auto& c = by_result[static_cast<size_t>(r)];
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void add_bytes(uint64_t n) {
    bytes.store(bytes.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
};

class Sa {
 public:
  ~Sa();  // wipes the key and salt
  Sa(const Sa&) = delete;
  Sa& operator=(const Sa&) = delete;

  // Processes a burst with the function chosen at set-up (encap for outbound SAs, decap
  // for inbound ones). Same contract as SaBurstFn.
  uint32_t burst(Worker& w, PktBuf* const* pkts, uint32_t n, Result* res) {
    return hot_.burst(*this, w, pkts, n, res);
  }

  const SaConfig& config() const { return cfg_; }
  uint32_t spi() const { return hot_.spi; }
  Direction direction() const { return cfg_.dir; }
  SaStats stats() const;
  // Outbound: last sequence number used. Inbound: highest sequence number accepted.
  uint64_t seq() const;
  // Outbound: sequence numbers left before expiry.
  uint64_t seq_remaining() const;
  bool expired() const { return hot_.expired.load(std::memory_order_relaxed); }
  // Bytes added in front of / behind a packet by encap, at most (tunnel: outer IP + ESP
  // header + IV; transport: ESP header + IV; trailer: 3 pad + 2 + ICV).
  uint32_t max_header() const;
  static constexpr uint32_t kMaxTrailer = 3 + 2 + kIcvLen;
  // Largest inner packet (tunnel) / IP packet (transport) whose ESP packet fits in an
  // underlay MTU of `mtu` bytes (the IP packet, without L2).
  uint32_t max_inner(uint32_t mtu) const;

  // For the datapath's fast path and for esp.cpp.
  SaHot& hot() { return hot_; }
  ReplayWindow& replay() { return replay_; }
  SaCounters& counters() { return counters_; }
  // The expanded key (tests check that it is zero after wipe_keys()).
  const AeadKey& key_state() const { return key_; }
  // Zeroes the key and salt now (destruction does it too). The SA then fails every packet.
  void wipe_keys();

 private:
  friend std::expected<std::unique_ptr<Sa>, std::string> make_sa(const SaConfig&,
                                                                 std::span<const uint8_t>);
  Sa() = default;

  SaHot hot_;
  ReplayWindow replay_;
  SaCounters counters_;
  AeadKey key_;
  SaConfig cfg_;
};

using SaPtr = std::unique_ptr<Sa>;

// Validates `cfg`, copies `keymat` (kKeyMatLen = 36 bytes: 32-byte key || 4-byte salt,
// the RFC 4106 / RFC 7634 KEYMAT layout) into a new SA and picks its burst function.
// Errors: bad SPI, wrong key length, backend unavailable, mismatched tunnel address
// families, bad replay window, seq_start beyond the limit. Control side.
std::expected<SaPtr, std::string> make_sa(const SaConfig& cfg, std::span<const uint8_t> keymat);

// SPI -> inbound SA, immutable after build(). Holds raw pointers; the owner keeps the
// SAs alive for as long as any reader may use this table (RCU on the datapath side).
class SaTable {
 public:
  SaTable() = default;
  // Fails on a duplicate SPI or an outbound SA.
  static std::expected<SaTable, std::string> build(std::span<Sa* const> sas);

  Sa* find(uint32_t spi) const {
    if (slots_.empty()) return nullptr;
    for (uint32_t i = hash(spi);; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.spi == spi) return s.sa;
      if (s.sa == nullptr) return nullptr;
    }
  }
  // Looks up n SPIs (host order): first pass prefetches every home slot, second probes.
  void find_burst(const uint32_t* spis, uint32_t n, Sa** out) const;
  size_t size() const { return size_; }

 private:
  struct Slot {
    uint32_t spi = 0;  // 0 is never a valid SPI: marks an empty slot together with sa
    Sa* sa = nullptr;
  };
  // Fibonacci hashing: the top bits of spi * 2^32/phi.
  uint32_t hash(uint32_t spi) const { return (spi * 0x9e3779b1u) >> shift_; }

  std::vector<Slot> slots_;
  uint32_t mask_ = 0;
  uint32_t shift_ = 31;
  size_t size_ = 0;
};

}  // namespace gl::crypto
