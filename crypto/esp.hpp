// esp.hpp — ESP (RFC 4303) encapsulation and decapsulation in bursts: tunnel mode (outer
// IPv4 or IPv6 between underlay addresses, any inner protocol) and transport mode, with
// AES-256-GCM (RFC 4106) or ChaCha20-Poly1305 (RFC 7634), 64-bit extended sequence
// numbers and the anti-replay window of replay.hpp.
//
// Wire format (tunnel, outbound):
//   outer IP | SPI | seq low 32 | IV = 64-bit seq | ciphertext(inner | pad 1,2,.. | pad
//   length | next header) | ICV(16)
// AAD = SPI | seq high 32 | seq low 32 (ESN, RFC 4106 5 / RFC 7634 2.1) or SPI | seq
// (no ESN); nonce = salt | IV. The IV is the sequence number, which never repeats for a
// key because the counter never wraps (reaching seq_limit expires the SA).
//
// Each burst function makes three passes: (1) per packet: bounds, sequence number /
// replay check, headers, trailer, AEAD op; (2) one AEAD batch call for the burst; (3) per
// packet: results, trailer checks and window update (decap), counters once per burst.
// Packets keep their positions; res[i] says what happened to pkts[i]. A packet whose
// result is not ok must be dropped; its buffer contents are then unspecified.
//
// Encap input: PktBuf at the inner packet (tunnel: any L3 packet, `proto` its next
// header or 0 to take it from the IP version; transport: an IPv4/IPv6 packet without
// extension headers). Output: PktBuf at the outer IP header.
// Decap input: PktBuf at the outer IPv4/IPv6 header carrying ESP (buffer may be longer
// than the IP packet: Ethernet padding is ignored). Output: PktBuf at the inner packet
// (tunnel) or the IP packet with ESP removed (transport); `proto` = next header.
//
// Thread-safety: each SA by one thread at a time, each Worker by its own thread; see
// sa.hpp. Complexity: O(bytes); no allocation, lock, exception, syscall or log.
#pragma once

#include <cstdint>

#include "crypto/aead.hpp"
#include "crypto/sa.hpp"
#include "crypto/types.hpp"

namespace gl::crypto {

// The burst function for an SA of this shape (make_sa stores it in SaHot::burst).
SaBurstFn esp_burst_fn(Direction dir, Mode mode, bool outer_v6);

// Runs `sa`'s burst function: encap for an outbound SA, decap for an inbound one.
inline uint32_t esp_burst(Sa& sa, Worker& w, PktBuf* const* pkts, uint32_t n, Result* res) {
  return sa.hot().burst(sa, w, pkts, n, res);
}

// Inbound burst over several SAs: reads each packet's SPI, looks it up in `table`, groups
// the burst by SA and runs each group's decap. sas[i] is the SA of pkts[i] (nullptr when
// res[i] is unknown_spi or the outer header was unusable). Returns the count of ok.
uint32_t esp_decap_burst(Worker& w, const SaTable& table, PktBuf* const* pkts, uint32_t n,
                         Result* res, Sa** sas);

// SPI of an ESP packet given as for decap (host order); 0 when the outer header is not a
// usable IPv4/IPv6 header followed by at least 8 bytes of ESP.
uint32_t esp_peek_spi(const PktBuf& p);

}  // namespace gl::crypto
