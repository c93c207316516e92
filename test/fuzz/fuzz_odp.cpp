// Fuzz target: the ODP text parsers and the action validator take any input; whatever
// they accept formats back to text that parses to the same value.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/api/odp_actions.hpp"
#include "dataplane/api/odp_text.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto m = gl::odp::parse_flow(text)) {
    auto again = gl::odp::parse_flow(gl::odp::format_flow(*m));
    if (!again || !(again->key == m->key) || !(again->mask == m->mask)) std::abort();
  }
  if (auto a = gl::odp::parse_actions(text)) {
    auto again = gl::odp::parse_actions(gl::odp::format_actions(*a));
    if (!again || *again != *a) std::abort();
  }
  // The same bytes as an encoded action list.
  std::vector<uint8_t> blob(data, data + size);
  if (gl::odp::validate_actions(blob)) {
    size_t n = 0;
    for (const auto& v : gl::odp::ActionList(blob)) n += v.payload.size();
    (void)n;
    (void)gl::odp::format_actions(blob);
  }
  return 0;
}

std::vector<std::vector<uint8_t>> fuzz_seeds() {
  std::vector<std::string> texts = {
      "in_port(1),eth_type(0x0800),ipv4(dst=10.0.0.2/255.255.255.0)",
      "recirc_id(0),in_port(2),eth(src=00:00:00:00:00:01,dst=00:00:00:00:00:02),"
      "eth_type(0x0800),ipv4(src=10.0.0.1,dst=10.0.0.2,proto=17,tos=0,ttl=64,frag=no),"
      "udp(src=1234,dst=80)",
      "eth_type(0x8100),vlan(vid=10,pcp=0),encap(eth_type(0x86dd),ipv6(src=::1,proto=58),"
      "icmpv6(type=128,code=0))",
      "2,3,push_vlan(vid=10,pcp=3),set(ipv4(dst=10.0.0.9)),recirc(0x5)",
      "clone(set(eth(dst=00:00:00:00:00:09)),3),sample(sample=50.0%,actions(1)),hash(l4(0))",
      "userspace(pid=7,userdata(0102)),pop_vlan,set(tcp(src=1/0xff)),drop",
  };
  std::vector<std::vector<uint8_t>> s;
  for (auto& t : texts) s.emplace_back(t.begin(), t.end());
  for (auto& t : {"2,3", "clone(1),recirc(2)", "set(ipv4(dst=10.0.0.9))"}) {
    auto a = gl::odp::parse_actions(t);
    if (a) s.push_back(*a);
  }
  return s;
}
