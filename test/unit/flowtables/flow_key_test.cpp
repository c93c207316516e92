#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>
#include <vector>

#include "flowtables/flow_key.hpp"

using namespace gl::flow;

TEST_CASE("masking keeps only the masked bits", "[flow_key]") {
  FlowKey k = zero_key();
  k.ipv4_dst = 0x0a000002;  // any value; we only check the mask arithmetic
  k.tp_dst = 0x5000;
  FlowMask m = zero_key();
  m.ipv4_dst = 0xffffffff;
  FlowKey masked;
  apply_mask(k, m, masked);
  CHECK(masked.ipv4_dst == k.ipv4_dst);
  CHECK(masked.tp_dst == 0);
  CHECK(key_matches(k, masked, m));
  k.ipv4_dst ^= 1;
  CHECK_FALSE(key_matches(k, masked, m));
  CHECK(mask_word_map(m) == (1u << GL_FLOW_WORD(ipv4_dst)));
}

TEST_CASE("exact mask leaves padding out", "[flow_key]") {
  FlowMask m = exact_mask();
  CHECK(m.pad0 == 0);
  CHECK(m.pad1 == 0);
  CHECK(m.pad2 == 0);
  CHECK(m.pad3 == 0);
  CHECK(m.eth_type == 0xffff);
}

TEST_CASE("key hash depends on every word", "[flow_key]") {
  FlowKey a = zero_key();
  const uint32_t h0 = hash_key(a);
  for (size_t w = 0; w < FlowKey::kWords; ++w) {
    FlowKey b = a;
    b.words()[w] = 1;
    CHECK(hash_key(b) != h0);
  }
}

TEST_CASE("microflow hash spreads flows that differ in one field over the EMC's buckets",
          "[flow_key]") {
  // 4096 microflows varying one field at a time (as a traffic generator does) into 1024
  // buckets: a good hash fills nearly all of them and piles no more than a few in any.
  struct Variant {
    const char* what;
    void (*set)(FlowKey&, uint32_t);
    bool ipv6 = false;
  };
  const Variant variants[] = {
      {"udp source port", [](FlowKey& k, uint32_t i) { k.tp_src = static_cast<uint16_t>(i); }},
      {"ipv4 source", [](FlowKey& k, uint32_t i) { k.ipv4_src = 0x0a000000u + i; }},
      {"ipv4 destination", [](FlowKey& k, uint32_t i) { k.ipv4_dst = i << 8; }},
      {"eth source", [](FlowKey& k, uint32_t i) { std::memcpy(k.eth_src + 2, &i, 4); }},
      {"in_port", [](FlowKey& k, uint32_t i) { k.in_port = i; }},
      {"recirc_id", [](FlowKey& k, uint32_t i) { k.recirc_id = i; }},
      {"ipv6 source", [](FlowKey& k, uint32_t i) { std::memcpy(k.ipv6_src + 12, &i, 4); }, true},
  };
  for (const Variant& v : variants) {
    INFO(v.what);
    std::vector<uint32_t> load(1024, 0);
    for (uint32_t i = 0; i < 4096; ++i) {
      FlowKey k = zero_key();
      k.eth_type = v.ipv6 ? 0xdd86 : 0x0008;  // network order
      k.nw_proto = 17;
      k.tp_dst = 0x8913;
      v.set(k, i);
      ++load[hash_microflow(k) & 1023];
    }
    uint32_t empty = 0, most = 0;
    for (uint32_t l : load) {
      empty += l == 0;
      most = std::max(most, l);
    }
    CHECK(empty < 60);  // expected for a random hash: 1024 * e^-4 = 19
    CHECK(most <= 16);  // expected maximum about 12
  }
}
