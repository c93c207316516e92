#include "test_util.hpp"

#include "flowtables/checksum.hpp"

namespace gl::crypto::test {

std::vector<uint8_t> ipv4_packet(uint8_t proto, size_t payload_len, uint8_t fill) {
  std::vector<uint8_t> p(20 + payload_len, fill);
  const auto tot = static_cast<uint16_t>(p.size());
  const uint8_t hdr[20] = {0x45,
                           0,
                           static_cast<uint8_t>(tot >> 8),
                           static_cast<uint8_t>(tot),
                           0x12,
                           0x34,
                           0x40,
                           0,
                           64,
                           proto,
                           0,
                           0,
                           10,
                           0,
                           0,
                           1,
                           10,
                           0,
                           0,
                           2};
  std::memcpy(p.data(), hdr, 20);
  const uint16_t c = flow::ipv4_header_checksum(p.data(), 20);
  std::memcpy(p.data() + 10, &c, 2);
  for (size_t i = 0; i < payload_len; ++i) p[20 + i] = static_cast<uint8_t>(fill + i);
  return p;
}

std::vector<uint8_t> ipv6_packet(uint8_t nh, size_t payload_len, uint8_t fill) {
  std::vector<uint8_t> p(40 + payload_len, 0);
  p[0] = 0x60;
  p[4] = static_cast<uint8_t>(payload_len >> 8);
  p[5] = static_cast<uint8_t>(payload_len);
  p[6] = nh;
  p[7] = 64;
  p[8] = 0xfd;
  p[23] = 1;
  p[24] = 0xfd;
  p[39] = 2;
  for (size_t i = 0; i < payload_len; ++i) p[40 + i] = static_cast<uint8_t>(fill + i);
  return p;
}

}  // namespace gl::crypto::test
