// sa.cpp — SA creation (validation, key copy, template, burst function), counters, and
// the SPI table.
#include "crypto/sa.hpp"

#include <arpa/inet.h>
#include <sodium.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <new>

#include "crypto/esp.hpp"
#include "flowtables/checksum.hpp"

namespace gl::crypto {

// ---- IpAddress -------------------------------------------------------------------------

IpAddress IpAddress::v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  IpAddress ip;
  ip.bytes[0] = a;
  ip.bytes[1] = b;
  ip.bytes[2] = c;
  ip.bytes[3] = d;
  return ip;
}

std::expected<IpAddress, std::string> IpAddress::parse(std::string_view text) {
  const std::string s(text);
  IpAddress ip;
  if (inet_pton(AF_INET, s.c_str(), ip.bytes.data()) == 1) return ip;
  ip.v6 = true;
  if (inet_pton(AF_INET6, s.c_str(), ip.bytes.data()) == 1) return ip;
  return std::unexpected("not an IPv4 or IPv6 address: '" + s + "'");
}

std::string IpAddress::to_string() const {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(v6 ? AF_INET6 : AF_INET, bytes.data(), buf, sizeof(buf));
  return buf;
}

// ---- Sa --------------------------------------------------------------------------------

Sa::~Sa() {
  wipe_keys();
}

void Sa::wipe_keys() {
  wipe(key_);
  sodium_memzero(hot_.salt, sizeof(hot_.salt));
}

SaStats Sa::stats() const {
  SaStats st;
  st.bytes = counters_.bytes.load(std::memory_order_relaxed);
  for (size_t i = 0; i < kResultCount; ++i) {
    st.by_result[i] = counters_.by_result[i].load(std::memory_order_relaxed);
  }
  return st;
}

uint64_t Sa::seq() const {
  return cfg_.dir == Direction::outbound ? hot_.seq.load(std::memory_order_relaxed) : replay_.top();
}

uint64_t Sa::seq_remaining() const {
  const uint64_t s = hot_.seq.load(std::memory_order_relaxed);
  return s >= hot_.seq_limit ? 0 : hot_.seq_limit - s;
}

uint32_t Sa::max_header() const {
  return cfg_.mode == Mode::tunnel ? hot_.hdr_len : 16;
}

uint32_t Sa::max_inner(uint32_t mtu) const {
  // hdr + round_up4(inner + 2) + ICV <= mtu  <=>  inner <= floor4(mtu - hdr - ICV) - 2
  const uint32_t ip_hdr = cfg_.mode == Mode::tunnel ? 0 : (cfg_.remote.v6 ? 40 : 20);
  const uint32_t fixed = max_header() + ip_hdr + static_cast<uint32_t>(kIcvLen);
  if (mtu < fixed + 4) return 0;
  return ((mtu - fixed) & ~3u) - 2 + ip_hdr;
}

std::expected<SaPtr, std::string> make_sa(const SaConfig& cfg, std::span<const uint8_t> keymat) {
  if (cfg.spi < 256) return std::unexpected("SPI must be >= 256 (RFC 4303 2.1)");
  if (keymat.size() != kKeyMatLen) {
    return std::unexpected("key material must be 36 bytes (32-byte key || 4-byte salt), got " +
                           std::to_string(keymat.size()));
  }
  const AeadImpl* impl = aead_impl(cfg.backend, cfg.cipher);
  if (impl == nullptr) {
    return std::unexpected("backend " + std::string(name(cfg.backend)) + " cannot do " +
                           std::string(name(cfg.cipher)) + " on this CPU");
  }
  const uint64_t proto_limit = cfg.esn ? UINT64_MAX : UINT32_MAX;
  const uint64_t limit = cfg.seq_limit == 0 ? proto_limit : cfg.seq_limit;
  if (limit > proto_limit) return std::unexpected("seq_limit beyond the sequence number space");
  if (cfg.seq_start > limit) return std::unexpected("seq_start beyond seq_limit");
  if (cfg.dir == Direction::inbound &&
      (!std::has_single_bit(cfg.replay_window) || cfg.replay_window < ReplayWindow::kMinSize ||
       cfg.replay_window > ReplayWindow::kMaxSize)) {
    return std::unexpected("replay window must be a power of two in [64, 4096]");
  }
  if (cfg.dir == Direction::outbound && cfg.mode == Mode::tunnel && cfg.local.v6 != cfg.remote.v6) {
    return std::unexpected("tunnel endpoints must be of the same address family");
  }
  if (cfg.flow_label > 0xfffff) return std::unexpected("flow label has 20 bits");

  SaPtr sa(new (std::nothrow) Sa());
  if (!sa) return std::unexpected("out of memory");
  sa->cfg_ = cfg;
  SaHot& h = sa->hot_;
  h.spi = cfg.spi;
  h.spi_be = flow::hton32(cfg.spi);
  std::memcpy(h.salt, keymat.data() + kKeyLen, kSaltLen);
  impl->expand(sa->key_, keymat.data());
  h.key = &sa->key_;
  h.aead = cfg.dir == Direction::outbound ? impl->encrypt : impl->decrypt;
  h.esn = cfg.esn;
  h.seq.store(cfg.dir == Direction::outbound ? cfg.seq_start : 0, std::memory_order_relaxed);
  h.seq_limit = limit;
  h.expired.store(cfg.dir == Direction::outbound && cfg.seq_start >= limit,
                  std::memory_order_relaxed);
  h.burst = esp_burst_fn(cfg.dir, cfg.mode, cfg.remote.v6);
  if (cfg.dir == Direction::inbound) sa->replay_.reset(cfg.replay_window, cfg.seq_start);

  if (cfg.dir == Direction::outbound && cfg.mode == Mode::tunnel) {
    uint8_t* t = h.tmpl;
    uint32_t ip_len;
    if (cfg.remote.v6) {
      ip_len = 40;
      t[0] = static_cast<uint8_t>(0x60 | (cfg.tos >> 4));
      t[1] = static_cast<uint8_t>(((cfg.tos & 0x0f) << 4) | ((cfg.flow_label >> 16) & 0x0f));
      t[2] = static_cast<uint8_t>(cfg.flow_label >> 8);
      t[3] = static_cast<uint8_t>(cfg.flow_label);
      t[6] = kProtoEsp;
      t[7] = cfg.ttl;
      std::memcpy(t + 8, cfg.local.bytes.data(), 16);
      std::memcpy(t + 24, cfg.remote.bytes.data(), 16);
    } else {
      ip_len = 20;
      t[0] = 0x45;
      t[1] = cfg.tos;
      t[6] = cfg.df ? 0x40 : 0;
      t[8] = cfg.ttl;
      t[9] = kProtoEsp;
      std::memcpy(t + 12, cfg.local.bytes.data(), 4);
      std::memcpy(t + 16, cfg.remote.bytes.data(), 4);
      h.tmpl_sum = flow::csum_partial(t, 20);
    }
    std::memcpy(t + ip_len, &h.spi_be, 4);
    h.hdr_len = static_cast<uint8_t>(ip_len + 16);
    uint16_t id;
    randombytes_buf(&id, sizeof(id));
    h.ip_id = id;
  }
  return sa;
}

// ---- SaTable ---------------------------------------------------------------------------

std::expected<SaTable, std::string> SaTable::build(std::span<Sa* const> sas) {
  SaTable t;
  const size_t cap = std::bit_ceil(std::max<size_t>(8, sas.size() * 2));
  t.slots_.assign(cap, Slot{});
  t.mask_ = static_cast<uint32_t>(cap - 1);
  t.shift_ = 32 - static_cast<uint32_t>(std::countr_zero(cap));
  for (Sa* sa : sas) {
    if (sa == nullptr) continue;
    if (sa->direction() != Direction::inbound) {
      return std::unexpected("SA " + std::to_string(sa->spi()) + " is not inbound");
    }
    if (t.find(sa->spi()) != nullptr) {
      return std::unexpected("duplicate SPI " + std::to_string(sa->spi()));
    }
    uint32_t i = t.hash(sa->spi());
    while (t.slots_[i].sa != nullptr) i = (i + 1) & t.mask_;
    t.slots_[i] = Slot{sa->spi(), sa};
    ++t.size_;
  }
  return t;
}

void SaTable::find_burst(const uint32_t* spis, uint32_t n, Sa** out) const {
  if (slots_.empty()) {
    for (uint32_t i = 0; i < n; ++i) out[i] = nullptr;
    return;
  }
  for (uint32_t i = 0; i < n; ++i) __builtin_prefetch(&slots_[hash(spis[i])]);
  for (uint32_t i = 0; i < n; ++i) out[i] = spis[i] == 0 ? nullptr : find(spis[i]);
}

}  // namespace gl::crypto
