// address.hpp — IPv4/IPv6 addresses, prefixes and MAC addresses for the policy library.
//
// Purpose: strict text parsing and canonical printing, prefix containment. Addresses are in
// network byte order in a 16-byte array; an IPv4 address uses bytes 0..3 and leaves the
// rest zero (the convention of crypto/sa.hpp and the dataplane). The two families never
// match each other: 10.0.0.0/8 does not contain ::ffff:10.0.0.1.
//   IPv4: dotted quad, decimal octets without leading zeros ("10.0.0.1"; "10.0.0.01" is
//   refused, it is octal to some tools).
//   IPv6: RFC 4291 text ("2001:db8::1", "::", "::ffff:192.0.2.1"); printed in RFC 5952
//   form (lower case, longest run of two or more zero groups as "::").
//   Prefix: "ADDR/LEN" or "ADDR" (a host prefix). Host bits set is an error
//   ("10.1.2.3/8": host bits set, did you mean 10.0.0.0/8?).
//   MAC: "aa:bb:cc:dd:ee:ff", two hex digits per byte, either case.
//
// Thread-safety: plain values, reentrant functions. Complexity: linear in the text.
#pragma once

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>

namespace gl::policy {

enum class Family : uint8_t { kIpv4 = 4, kIpv6 = 6 };

struct IpAddress {
  Family family = Family::kIpv4;
  std::array<uint8_t, 16> bytes{};  // network order; IPv4 in bytes 0..3, the rest zero

  static IpAddress v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d);
  static IpAddress v6(const std::array<uint8_t, 16>& bytes);
  // One address, no prefix length; the error quotes the text and says what is wrong.
  static std::expected<IpAddress, std::string> parse(std::string_view text);

  uint8_t max_length() const { return family == Family::kIpv4 ? 32 : 128; }
  std::string to_string() const;
  auto operator<=>(const IpAddress&) const = default;
};

struct IpPrefix {
  IpAddress address;   // host bits zero
  uint8_t length = 0;  // 0..32 or 0..128

  // "ADDR/LEN" or "ADDR" (host prefix). Refuses host bits set.
  static std::expected<IpPrefix, std::string> parse(std::string_view text);
  static IpPrefix host(const IpAddress& a) { return IpPrefix{a, a.max_length()}; }

  bool contains(const IpAddress& a) const;
  bool contains(const IpPrefix& p) const;  // p is this prefix or inside it
  bool is_host() const { return length == address.max_length(); }
  // Always "ADDR/LEN".
  std::string to_string() const;
  // "ADDR" for a host prefix, else "ADDR/LEN" (the selector's canonical form).
  std::string to_short_string() const;
  auto operator<=>(const IpPrefix&) const = default;
};

// For unordered containers keyed by address.
struct IpAddressHash {
  size_t operator()(const IpAddress& a) const {
    uint64_t h = static_cast<uint64_t>(a.family) * 0x9e3779b97f4a7c15ull;
    for (uint8_t b : a.bytes) h = (h ^ b) * 0x100000001b3ull;  // FNV-1a style
    return static_cast<size_t>(h ^ (h >> 29));
  }
};

using Mac = std::array<uint8_t, 6>;

// "aa:bb:cc:dd:ee:ff"; nullopt if malformed.
std::optional<Mac> parse_mac(std::string_view text);
std::string format_mac(const Mac& mac);

}  // namespace gl::policy
