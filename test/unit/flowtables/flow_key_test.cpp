#include <catch2/catch.hpp>

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
