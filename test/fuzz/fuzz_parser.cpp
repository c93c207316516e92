// Fuzz target: the packet parser never reads past the frame and reports a layout that
// stays inside it.
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "flowtables/packet_builder.hpp"
#include "flowtables/packet_parser.hpp"

using namespace gl::flow;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // An exact-size copy so that any overread is an ASan error, not a lucky read.
  std::vector<uint8_t> frame(data, data + size);
  FlowKey key = zero_key();
  PacketLayout lay;
  ParseResult r = parse_packet(frame.data(), static_cast<uint32_t>(frame.size()), key, lay);
  if (!parse_is_drop(r)) {
    if (lay.l3_ofs != kNoOffset && lay.l3_ofs > size) std::abort();
    if (lay.l4_ofs != kNoOffset && lay.l4_ofs > size) std::abort();
    if (lay.l4_ofs != kNoOffset && lay.l4_ofs + uint32_t(lay.l4_len) > size) std::abort();
  }
  return 0;
}

std::vector<std::vector<uint8_t>> fuzz_seeds() {
  std::vector<std::vector<uint8_t>> s;
  s.push_back(PacketBuilder()
                  .eth("02:00:00:00:00:01", "02:00:00:00:00:02")
                  .ipv4("10.0.0.1", "10.0.0.2")
                  .udp(1, 2)
                  .payload(8)
                  .build());
  s.push_back(PacketBuilder()
                  .eth("02:00:00:00:00:01", "02:00:00:00:00:02")
                  .vlan(5)
                  .ipv4("10.0.0.1", "10.0.0.2")
                  .tcp(1, 2)
                  .build());
  s.push_back(PacketBuilder()
                  .eth("02:00:00:00:00:01", "02:00:00:00:00:02")
                  .ipv6("2001:db8::1", "2001:db8::2")
                  .ipv6_hop_by_hop()
                  .ipv6_fragment(0, true)
                  .udp(1, 2)
                  .build());
  s.push_back(PacketBuilder()
                  .eth("02:00:00:00:00:01", "ff:ff:ff:ff:ff:ff")
                  .arp_request("02:00:00:00:00:01", "10.0.0.1", "10.0.0.2")
                  .build());
  s.push_back(PacketBuilder()
                  .eth("02:00:00:00:00:01", "02:00:00:00:00:02")
                  .ipv6("2001:db8::1", "2001:db8::2")
                  .icmpv6_echo(1, 1)
                  .build());
  return s;
}
