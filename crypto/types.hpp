// types.hpp — vocabulary shared by the AEAD backends, the SA runtime and ESP processing:
// ciphers, backends, modes, the per-packet result code with its name table, and PktBuf,
// the packet view every batch function works on.
//
// PktBuf is deliberately not an mbuf: crypto/ builds and tests without DPDK. The datapath
// wraps a single-segment mbuf as {data = mtod + l2_len, len = pkt_len - l2_len,
// headroom = rte_pktmbuf_headroom + l2_len, tailroom = rte_pktmbuf_tailroom}; after a
// batch call it applies the change of `data` and `len` with rte_pktmbuf_prepend/adj/
// append/trim (the functions keep headroom/tailroom consistent with data and len).
//
// Thread-safety: plain data. Complexity: O(1).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "flowtables/enum_names.hpp"
namespace gl::crypto {

// Packets per batch call (the datapath's burst size).
inline constexpr uint32_t kMaxBurst = 32;

enum class Cipher : uint8_t {
  aes256_gcm,         // RFC 4106, 16-byte ICV
  chacha20_poly1305,  // RFC 7634
};
inline constexpr size_t kCipherCount = 2;
inline constexpr flow::EnumName<Cipher> kCipherTable[] = {
    {Cipher::aes256_gcm, "aes256-gcm"},
    {Cipher::chacha20_poly1305, "chacha20-poly1305"},
};
inline constexpr auto kCipherNames = flow::enum_names(kCipherTable);
static_assert(kCipherNames.size() == kCipherCount);

enum class Backend : uint8_t {
  sodium,    // libsodium
  ipsec_mb,  // intel-ipsec-mb, job/burst API
};
inline constexpr size_t kBackendCount = 2;
inline constexpr flow::EnumName<Backend> kBackendTable[] = {
    {Backend::sodium, "sodium"},
    {Backend::ipsec_mb, "ipsec-mb"},
};
inline constexpr auto kBackendNames = flow::enum_names(kBackendTable);
static_assert(kBackendNames.size() == kBackendCount);

enum class Mode : uint8_t { tunnel, transport };
enum class Direction : uint8_t { outbound, inbound };

// Per-packet outcome of an encap/decap batch. Everything but `ok` is a drop; each value
// has its own counter per SA, named in kResultTable.
enum class Result : uint8_t {
  ok,
  bad_length,       // truncated, not a multiple of 4, outer length > buffer, > 64 KiB
  no_room,          // encap: not enough headroom/tailroom for ESP header and trailer
  unknown_spi,      // decap: no inbound SA with this SPI
  too_old,          // decap: sequence number left of the anti-replay window
  replay,           // decap: sequence number already seen
  auth_failed,      // decap: ICV mismatch (wrong key, tampered header/payload/ICV)
  bad_padding,      // decap: pad length too long or pad bytes not 1, 2, 3, ...
  bad_next_header,  // decap: next header does not match the inner packet (tunnel)
  dummy,            // decap: next header 59, a TFC dummy packet (RFC 4303 2.6)
  seq_exhausted,    // encap: sequence number space used up; the SA is expired
  unsupported,      // outer fragments, IPv6 extension headers, not ESP, wrong mode
  crypto_error,     // the AEAD backend rejected the operation (should not happen)
};
inline constexpr size_t kResultCount = 13;
inline constexpr flow::EnumName<Result> kResultTable[] = {
    {Result::ok, "ok"},
    {Result::bad_length, "bad_length"},
    {Result::no_room, "no_room"},
    {Result::unknown_spi, "unknown_spi"},
    {Result::too_old, "too_old"},
    {Result::replay, "replay"},
    {Result::auth_failed, "auth_failed"},
    {Result::bad_padding, "bad_padding"},
    {Result::bad_next_header, "bad_next_header"},
    {Result::dummy, "dummy"},
    {Result::seq_exhausted, "seq_exhausted"},
    {Result::unsupported, "unsupported"},
    {Result::crypto_error, "crypto_error"},
};
inline constexpr auto kResultNames = flow::enum_names(kResultTable);
static_assert(kResultNames.size() == kResultCount);

constexpr std::string_view name(Result r) {
  return kResultNames[static_cast<size_t>(r)];
}
constexpr std::string_view name(Cipher c) {
  return kCipherNames[static_cast<size_t>(c)];
}
constexpr std::string_view name(Backend b) {
  return kBackendNames[static_cast<size_t>(b)];
}

// A packet as the batch functions see it: one contiguous buffer.
//   [data - headroom, data)          writable space in front of the packet
//   [data, data + len)               the packet, starting at its L3 header
//   [data + len, data + len + tailroom)  writable space behind it
// Encap moves data back and grows len (and shrinks headroom/tailroom); decap moves
// data forward and shrinks len. `proto` is the ESP next header: encap input (the inner
// protocol, 0 = take it from the IP version nibble: 4 -> IPPROTO_IPIP, 6 -> IPPROTO_IPV6;
// tunnel mode only, transport takes it from the IP header), decap output.
struct PktBuf {
  uint8_t* data = nullptr;
  uint32_t len = 0;
  uint32_t headroom = 0;
  uint32_t tailroom = 0;
  uint8_t proto = 0;
};

// IP protocol numbers used here.
inline constexpr uint8_t kProtoIpv4 = 4;
inline constexpr uint8_t kProtoIpv6 = 41;
inline constexpr uint8_t kProtoEsp = 50;
inline constexpr uint8_t kProtoNone = 59;  // IPv6 "no next header": ESP dummy packet
inline constexpr uint8_t kProtoEthernet = 143;

}  // namespace gl::crypto
