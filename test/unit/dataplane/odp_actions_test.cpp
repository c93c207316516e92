#include <arpa/inet.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "dataplane/api/odp_actions.hpp"
#include "dataplane/api/odp_text.hpp"

using namespace gl::odp;

namespace {

using Blob = std::vector<uint8_t>;

// Appends one attribute header {len, type} (host order, as netlink) + raw payload.
void raw(Blob& b, uint16_t len, uint16_t type, std::initializer_list<uint8_t> payload = {},
         bool pad = true) {
  b.push_back(static_cast<uint8_t>(len));
  b.push_back(static_cast<uint8_t>(len >> 8));
  b.push_back(static_cast<uint8_t>(type));
  b.push_back(static_cast<uint8_t>(type >> 8));
  b.insert(b.end(), payload.begin(), payload.end());
  if (pad)
    while (b.size() % 4) b.push_back(0);
}

// A SET or SET_MASKED action with one nested key attribute of `size` payload bytes.
Blob set_blob(uint16_t action, uint16_t key, const std::vector<uint8_t>& key_payload) {
  ActionWriter w;
  w.begin_nested(action);
  w.attr(key, key_payload);
  w.end();
  return w.take();
}

Blob nested_clones(int depth) {
  ActionWriter w;
  for (int i = 0; i < depth; ++i) w.begin_clone();
  w.output(1);
  for (int i = 0; i < depth; ++i) w.end();
  REQUIRE(w.ok());
  return w.take();
}

}  // namespace

TEST_CASE("writer encodes output exactly as the kernel does", "[odp_actions]") {
  ActionWriter w;
  w.output(2);
  const Blob expect = {8, 0, OVS_ACTION_ATTR_OUTPUT, 0, 2, 0, 0, 0};
  CHECK(w.data() == expect);
}

TEST_CASE("writer pads and nests", "[odp_actions]") {
  ActionWriter w;
  const uint8_t ud[5] = {1, 2, 3, 4, 5};
  w.userspace(7, ud, true);
  w.pop_vlan();
  w.begin_sample(kSampleAlways).output(3).end();
  w.begin_clone().recirc(9).end();
  REQUIRE(w.ok());
  const Blob b = w.take();
  CHECK(b.size() % 4 == 0);
  REQUIRE(validate_actions(b));

  std::vector<uint16_t> types;
  for (ActionView a : ActionList(b)) types.push_back(a.type);
  CHECK(types == std::vector<uint16_t>{OVS_ACTION_ATTR_USERSPACE, OVS_ACTION_ATTR_POP_VLAN,
                                       OVS_ACTION_ATTR_SAMPLE, OVS_ACTION_ATTR_CLONE});
  auto it = ActionList(b).begin();
  const UserspaceAction u = decode_userspace((*it).payload);
  CHECK(u.pid == 7);
  CHECK(u.send_actions);
  REQUIRE(u.userdata.size() == 5);
  CHECK(u.userdata[4] == 5);
  ++it;
  CHECK((*it).payload.empty());
  ++it;
  const SampleAction s = decode_sample((*it).payload);
  CHECK(s.probability == kSampleAlways);
  int n = 0;
  for (ActionView a : ActionList(s.actions)) {
    CHECK(a.type == OVS_ACTION_ATTR_OUTPUT);
    CHECK(a.u32() == 3);
    ++n;
  }
  CHECK(n == 1);
  ++it;
  for (ActionView a : ActionList((*it).payload)) CHECK(a.u32() == 9);
  ++it;
  CHECK(it == ActionList(b).end());
}

TEST_CASE("writer set and set_masked round trip through decode_set", "[odp_actions]") {
  ovs_key_ipv4 v{}, m{};
  v.ipv4_dst = htonl(0x0a000001);
  v.ipv4_ttl = 7;
  m.ipv4_dst = htonl(0xffffff00);
  m.ipv4_ttl = 0xff;
  ActionWriter w;
  w.set_masked_ipv4(v, m);
  ovs_key_ethernet e{};
  e.eth_dst[5] = 2;
  w.set_ethernet(e);
  w.set_skb_mark(5);
  w.push_vlan(10, 3);
  w.hash(kHashAlgSymL4, 42);
  const Blob b = w.take();
  REQUIRE(validate_actions(b));

  auto it = ActionList(b).begin();
  SetAction s = decode_set(*it);
  CHECK(s.key_type == OVS_KEY_ATTR_IPV4);
  REQUIRE(s.value.size() == sizeof(ovs_key_ipv4));
  REQUIRE(s.mask.size() == sizeof(ovs_key_ipv4));
  ovs_key_ipv4 got;
  std::memcpy(&got, s.value.data(), sizeof got);
  CHECK(got.ipv4_dst == htonl(0x0a000000));  // writer cleared bits outside the mask
  CHECK(got.ipv4_ttl == 7);
  ++it;
  s = decode_set(*it);
  CHECK(s.key_type == OVS_KEY_ATTR_ETHERNET);
  CHECK(s.mask.empty());
  CHECK(s.value[11] == 2);
  ++it;
  CHECK(decode_set(*it).key_type == OVS_KEY_ATTR_SKB_MARK);
  ++it;
  ovs_action_push_vlan pv;
  std::memcpy(&pv, (*it).payload.data(), sizeof pv);
  CHECK(ntohs(pv.vlan_tpid) == 0x8100);
  CHECK(ntohs(pv.vlan_tci) == (10 | 3 << 13 | 0x1000));
  ++it;
  ovs_action_hash h;
  std::memcpy(&h, (*it).payload.data(), sizeof h);
  CHECK(h.hash_alg == kHashAlgSymL4);
  CHECK(h.hash_basis == 42);
}

TEST_CASE("writer reports unbalanced end", "[odp_actions]") {
  ActionWriter w;
  w.end();
  CHECK_FALSE(w.ok());
  ActionWriter w2;
  w2.begin_clone();
  CHECK_FALSE(w2.ok());
}

TEST_CASE("action names", "[odp_actions]") {
  STATIC_REQUIRE(action_name(OVS_ACTION_ATTR_CT) == "ct");
  STATIC_REQUIRE(action_name(OVS_ACTION_ATTR_OUTPUT) == "output");
  STATIC_REQUIRE(action_name(999) == "unknown");
}

TEST_CASE("validate_actions accepts depth 4 and empty lists", "[odp_actions]") {
  CHECK(validate_actions({}));
  CHECK(validate_actions(nested_clones(4)));
  ActionWriter w;
  w.begin_clone().end();
  w.begin_sample(0).end();
  CHECK(validate_actions(w.data()));
}

TEST_CASE("validate_actions rejects malformed blobs with a message", "[odp_actions]") {
  struct Case {
    const char* what;
    Blob blob;
    const char* expect;  // a substring of the error
  };
  std::vector<Case> cases;
  auto add = [&](const char* what, Blob b, const char* expect) {
    cases.push_back(Case{what, std::move(b), expect});
  };
  {
    add("truncated header", Blob{8, 0}, "truncated attribute header at offset 0");
    Blob b;
    raw(b, 8, OVS_ACTION_ATTR_OUTPUT, {1, 0, 0, 0});
    b.push_back(4);
    b.push_back(0);
    add("truncated second header", b, "truncated attribute header at offset 8");
  }
  {
    Blob b;
    raw(b, 2, OVS_ACTION_ATTR_OUTPUT, {0, 0});
    add("len < 4", b, "length 2 < 4");
  }
  {
    Blob b;
    raw(b, 12, OVS_ACTION_ATTR_OUTPUT, {1, 0, 0, 0});
    add("len past the end", b, "length 12 runs past the end (8 bytes left)");
  }
  {
    Blob b;
    raw(b, 5, OVS_ACTION_ATTR_OUTPUT, {1}, false);
    add("missing padding", b, "not padded");
  }
  {
    Blob b;
    raw(b, 6, OVS_ACTION_ATTR_OUTPUT, {1, 0});
    add("output size", b, "output at offset 0: payload is 2 bytes, expected 4");
  }
  {
    Blob b;
    raw(b, 4, 200);
    add("unknown type", b, "unknown action type 200");
    Blob z;
    raw(z, 4, 0);
    add("type 0", z, "unknown action type 0");
  }
  {
    Blob b;
    raw(b, 4, OVS_ACTION_ATTR_CT);
    add("ct", b, "action 12 (ct) is not supported");
    Blob t;
    raw(t, 8, OVS_ACTION_ATTR_TRUNC, {0, 1, 0, 0});
    add("trunc", t, "(trunc) is not supported");
  }
  {
    // clone whose inner attribute claims more than the clone holds
    Blob b;
    raw(b, 12, OVS_ACTION_ATTR_CLONE, {12, 0, OVS_ACTION_ATTR_OUTPUT, 0, 1, 0, 0, 0});
    raw(b, 8, OVS_ACTION_ATTR_OUTPUT, {1, 0, 0, 0});
    add("bad nesting", b, "clone at offset 0: attribute at offset 4 (type 1): length 12 runs");
  }
  add("depth 5", nested_clones(5), "nested deeper than 4");
  add("set wrong size", set_blob(OVS_ACTION_ATTR_SET, OVS_KEY_ATTR_IPV4, Blob(8)),
      "set(ipv4) at offset 0: payload is 8 bytes, expected 12");
  add("set_masked wrong size", set_blob(OVS_ACTION_ATTR_SET_MASKED, OVS_KEY_ATTR_TCP, Blob(4)),
      "set_masked(tcp) at offset 0: payload is 4 bytes, expected 8");
  add("set icmp", set_blob(OVS_ACTION_ATTR_SET, OVS_KEY_ATTR_ICMP, Blob(4)),
      "key 'icmp' cannot be set");
  add("set unknown key", set_blob(OVS_ACTION_ATTR_SET, 77, Blob(4)),
      "unknown key attribute type 77");
  {
    Blob b;
    raw(b, 4, OVS_ACTION_ATTR_SET);
    add("set without key", b, "set at offset 0: no key attribute");
    Blob two;
    raw(two, 20, OVS_ACTION_ATTR_SET,
        {8, 0, OVS_KEY_ATTR_SKB_MARK, 0, 1, 0, 0, 0, 8, 0, OVS_KEY_ATTR_SKB_MARK, 0, 1, 0, 0, 0});
    add("set with two keys", two, "more than one key attribute");
  }
  {
    Blob p(8, 0);
    p[0] = 0x03;  // value 3, mask 1
    p[4] = 0x01;
    add("set_masked outside mask", set_blob(OVS_ACTION_ATTR_SET_MASKED, OVS_KEY_ATTR_SKB_MARK, p),
        "set_masked(skb_mark) at offset 0: value bits outside the mask (byte 0)");
    Blob ip(24, 0);
    ip[12 + offsetof(ovs_key_ipv4, ipv4_proto)] = 0xff;
    add("set_masked ipv4 proto", set_blob(OVS_ACTION_ATTR_SET_MASKED, OVS_KEY_ATTR_IPV4, ip),
        "proto and frag cannot be set");
    Blob ip6(80, 0);
    ip6[40 + offsetof(ovs_key_ipv6, ipv6_label)] = 0xff;  // label mask high byte
    add("set_masked ipv6 label", set_blob(OVS_ACTION_ATTR_SET_MASKED, OVS_KEY_ATTR_IPV6, ip6),
        "label mask exceeds 20 bits");
    Blob f(12, 0);
    f[offsetof(ovs_key_ipv4, ipv4_frag)] = 9;
    add("set ipv4 frag", set_blob(OVS_ACTION_ATTR_SET, OVS_KEY_ATTR_IPV4, f), "bad frag value 9");
  }
  {
    Blob b;
    raw(b, 8, OVS_ACTION_ATTR_PUSH_VLAN, {0x81, 0x00, 0x00, 0x0a});
    add("push_vlan without CFI", b, "push_vlan at offset 0: tci lacks the CFI bit");
    Blob t;
    raw(t, 8, OVS_ACTION_ATTR_PUSH_VLAN, {0x08, 0x00, 0x10, 0x0a});
    add("push_vlan bad tpid", t, "is neither 0x8100 nor 0x88a8");
    Blob s;
    raw(s, 6, OVS_ACTION_ATTR_PUSH_VLAN, {0x81, 0x00});
    add("push_vlan short", s, "push_vlan at offset 0: payload is 2 bytes, expected 4");
  }
  {
    Blob b;
    raw(b, 4, OVS_ACTION_ATTR_POP_VLAN);
    raw(b, 12, OVS_ACTION_ATTR_HASH, {7, 0, 0, 0, 0, 0, 0, 0});
    add("hash alg", b, "hash at offset 4: unknown hash algorithm 7");
    Blob r;
    raw(r, 5, OVS_ACTION_ATTR_RECIRC, {1});
    add("recirc size", r, "recirc at offset 0: payload is 1 bytes, expected 4");
    Blob pv;
    raw(pv, 8, OVS_ACTION_ATTR_POP_VLAN, {0, 0, 0, 0});
    add("pop_vlan payload", pv, "pop_vlan at offset 0: payload is 4 bytes, expected 0");
  }
  {
    Blob b;
    raw(b, 12, OVS_ACTION_ATTR_SAMPLE, {8, 0, OVS_SAMPLE_ATTR_ACTIONS, 0, 8, 0, 0, 0});
    // The inner "actions" holds 4 bytes {8,0,0,0}: a header with len 8 past its end.
    add("sample bad inner", b, "runs past the end");
    Blob np;
    raw(np, 8, OVS_ACTION_ATTR_SAMPLE, {4, 0, OVS_SAMPLE_ATTR_ACTIONS, 0});
    add("sample without probability", np, "sample at offset 0: missing probability");
    Blob na;
    raw(na, 12, OVS_ACTION_ATTR_SAMPLE, {8, 0, OVS_SAMPLE_ATTR_PROBABILITY, 0, 1, 0, 0, 0});
    add("sample without actions", na, "sample at offset 0: missing actions");
    Blob bad;
    raw(bad, 8, OVS_ACTION_ATTR_SAMPLE, {4, 0, 9, 0});
    add("sample unknown attr", bad, "sample at offset 0: unknown attribute type 9");
  }
  {
    Blob b;
    raw(b, 8, OVS_ACTION_ATTR_USERSPACE, {4, 0, OVS_USERSPACE_ATTR_ACTIONS, 0});
    add("userspace without pid", b, "userspace at offset 0: missing pid");
    Blob t;
    raw(t, 20, OVS_ACTION_ATTR_USERSPACE,
        {8, 0, OVS_USERSPACE_ATTR_PID, 0, 1, 0, 0, 0, 8, 0, OVS_USERSPACE_ATTR_EGRESS_TUN_PORT, 0,
         1, 0, 0, 0});
    add("userspace tunnel port", t, "tunnel_out_port is not supported");
  }
  add("too big", Blob(4100, 0), "actions are 4100 bytes, limit 4096");

  for (const Case& c : cases) {
    INFO(c.what);
    const auto r = validate_actions(c.blob);
    REQUIRE_FALSE(r);
    INFO(r.error());
    CHECK(r.error().find(c.expect) != std::string::npos);
    // The reader and the printer must survive the same bytes.
    size_t n = 0;
    for (ActionView a : ActionList(c.blob)) n += a.payload.size();
    (void)n;
    // format_actions is more lenient (any size, depth 16) but never fails.
    const std::string text = format_actions(c.blob);
    if (std::string_view(c.what) != "depth 5" && std::string_view(c.what) != "too big")
      CHECK(text.starts_with("<invalid actions: "));
  }
}

TEST_CASE("random blobs never crash validation, iteration or printing", "[odp_actions]") {
  std::mt19937 rng(12345);
  // Seeds: valid blobs of every supported kind, to mutate.
  std::vector<Blob> seeds;
  for (const char* t :
       {"1,2,3", "userspace(pid=1,userdata(0102030405),actions)", "set(ipv4(src=1.2.3.4))",
        "set(eth(src=00:00:00:00:00:01,dst=00:00:00:00:00:02))", "push_vlan(vid=5,pcp=1),pop_vlan",
        "sample(sample=50.0%,actions(1,clone(2,recirc(0x3))))", "hash(l4(0)),recirc(0x1)",
        "set(skb_mark(0x1/0xff)),set(tcp(dst=80))"}) {
    auto b = parse_actions(t);
    REQUIRE(b);
    seeds.push_back(*b);
  }
  size_t valid = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    Blob b;
    if (iter % 2) {
      b.resize(rng() % 96);
      for (auto& x : b) x = static_cast<uint8_t>(rng());
      // Bias towards plausible headers.
      if (b.size() >= 4 && rng() % 2) {
        b[0] = static_cast<uint8_t>(4 + rng() % 24);
        b[1] = 0;
        b[2] = static_cast<uint8_t>(rng() % 26);
        b[3] = 0;
      }
    } else {
      b = seeds[rng() % seeds.size()];
      const int flips = 1 + rng() % 3;
      for (int f = 0; f < flips && !b.empty(); ++f)
        b[rng() % b.size()] = static_cast<uint8_t>(rng() % 3 ? rng() % 16 : rng());
      if (rng() % 4 == 0 && !b.empty()) b.resize(rng() % b.size());
    }
    const auto r = validate_actions(b);
    if (r) ++valid;
    size_t total = 0;
    for (ActionView a : ActionList(b)) total += a.payload.size() + 4;
    CHECK(total <= b.size());
    const std::string s = format_actions(b);
    CHECK_FALSE(s.empty());
    if (r) {
      // A valid blob prints as text that parses and prints the same way again.
      const auto back = parse_actions(s);
      REQUIRE(back);
      CHECK(format_actions(*back) == s);
    }
  }
  CHECK(valid > 100);
}

TEST_CASE("ESP actions: numbers, names, writer encoding, payload checks", "[odp_actions][esp]") {
  // Outside the kernel's and OVS's numbering, below the netlink flag bits.
  STATIC_REQUIRE(kActionEspEncrypt > OVS_ACTION_ATTR_MAX);
  STATIC_REQUIRE((kActionEspEncrypt & 0xc000) == 0 && (kActionEspDecrypt & 0xc000) == 0);
  CHECK(action_name(kActionEspEncrypt) == "esp_encrypt");
  CHECK(action_name(kActionEspDecrypt) == "esp_decrypt");
  ActionWriter w;
  w.esp_encrypt(7).output(2);
  Blob want;
  raw(want, 8, kActionEspEncrypt, {7, 0, 0, 0});
  raw(want, 8, OVS_ACTION_ATTR_OUTPUT, {2, 0, 0, 0});
  CHECK(w.data() == want);
  CHECK(validate_actions(w.data()));
  Blob short_enc;
  raw(short_enc, 6, kActionEspEncrypt, {7, 0});
  raw(short_enc, 8, OVS_ACTION_ATTR_OUTPUT, {2, 0, 0, 0});
  CHECK_FALSE(validate_actions(short_enc));
  Blob dec_payload;
  raw(dec_payload, 8, kActionEspDecrypt, {1, 0, 0, 0});
  raw(dec_payload, 8, OVS_ACTION_ATTR_RECIRC, {1, 0, 0, 0});
  CHECK_FALSE(validate_actions(dec_payload));
  ActionWriter d;
  d.esp_decrypt().recirc(3);
  CHECK(validate_actions(d.data()));
}
