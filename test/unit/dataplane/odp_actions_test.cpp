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
    raw(b, 8, OVS_ACTION_ATTR_METER, {1, 0, 0, 0});
    add("meter", b, "action 19 (meter) is not supported");
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
        "set(skb_mark(0x1/0xff)),set(tcp(dst=80))",
        "ct(commit,zone=5,mark=0x1/0xff,label=0x1/0xff,helper=ftp,timeout=tp1,eventmask=0x1f,"
        "nat(src=10.0.0.1-10.0.0.9:1000-2000,persistent,hash))",
        "ct_clear,ct(nat),clone(ct(force_commit,nat(dst=[fe80::1]-[fe80::2]:80,random)))"}) {
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

// ---- CT / CT_CLEAR ------------------------------------------------------------------

namespace {

// Appends one attribute with `payload`, length computed, padded.
void attr(Blob& b, uint16_t type, const Blob& payload = {}) {
  const size_t len = 4 + payload.size();
  b.push_back(static_cast<uint8_t>(len));
  b.push_back(static_cast<uint8_t>(len >> 8));
  b.push_back(static_cast<uint8_t>(type));
  b.push_back(static_cast<uint8_t>(type >> 8));
  b.insert(b.end(), payload.begin(), payload.end());
  while (b.size() % 4) b.push_back(0);
}

// The bytes of a string, NUL included unless `nul` is false.
Blob str(const std::string& s, bool nul = true) {
  Blob b(s.begin(), s.end());
  if (nul) b.push_back(0);
  return b;
}

Blob u16(uint16_t v) {
  Blob b(2);
  std::memcpy(b.data(), &v, 2);
  return b;
}

Blob u32(uint32_t v) {
  Blob b(4);
  std::memcpy(b.data(), &v, 4);
  return b;
}

Blob v4(const char* a) {
  Blob b(4);
  REQUIRE(inet_pton(AF_INET, a, b.data()) == 1);
  return b;
}

Blob v6(const char* a) {
  Blob b(16);
  REQUIRE(inet_pton(AF_INET6, a, b.data()) == 1);
  return b;
}

// A CT action whose payload is `payload`.
Blob ct_of(const Blob& payload) {
  Blob b;
  attr(b, OVS_ACTION_ATTR_CT, payload);
  return b;
}

// A CT payload {COMMIT, NAT{nat}}.
Blob commit_nat(const Blob& nat) {
  Blob p;
  attr(p, OVS_CT_ATTR_COMMIT);
  attr(p, OVS_CT_ATTR_NAT, nat);
  return p;
}

CtAction full_ct() {
  CtAction c;
  c.commit = true;
  c.zone = 5;
  c.has_mark = true;
  c.mark = 0x1;
  c.mark_mask = 0xff;
  c.has_labels = true;
  c.labels[0] = 0x1;
  c.labels_mask[0] = 0xff;
  c.labels_mask[15] = 0x80;
  c.helper = kCtHelperFtp;
  std::memcpy(c.timeout, "tp1", 3);
  c.has_eventmask = true;
  c.eventmask = 0x1f;
  c.has_nat = true;
  c.nat.src = true;
  c.nat.persistent = true;
  c.nat.proto_hash = true;
  c.nat.family = 4;
  std::memcpy(c.nat.ip_min, v4("10.0.0.1").data(), 4);
  std::memcpy(c.nat.ip_max, v4("10.0.0.9").data(), 4);
  c.nat.port_min = 1000;
  c.nat.port_max = 2000;
  return c;
}

bool same_ct(const CtAction& a, const CtAction& b) {
  const CtNat &x = a.nat, &y = b.nat;
  return a.zone == b.zone && a.commit == b.commit && a.force_commit == b.force_commit &&
         a.has_mark == b.has_mark && a.mark == b.mark && a.mark_mask == b.mark_mask &&
         a.has_labels == b.has_labels && std::memcmp(a.labels, b.labels, 16) == 0 &&
         std::memcmp(a.labels_mask, b.labels_mask, 16) == 0 && a.has_nat == b.has_nat &&
         a.helper == b.helper && a.has_eventmask == b.has_eventmask && a.eventmask == b.eventmask &&
         std::string(a.timeout) == b.timeout && x.src == y.src && x.dst == y.dst &&
         x.persistent == y.persistent && x.proto_hash == y.proto_hash &&
         x.proto_random == y.proto_random && x.family == y.family &&
         std::memcmp(x.ip_min, y.ip_min, 16) == 0 && std::memcmp(x.ip_max, y.ip_max, 16) == 0 &&
         x.port_min == y.port_min && x.port_max == y.port_max;
}

}  // namespace

TEST_CASE("CT attribute numbers match the UAPI header", "[odp_actions][ct]") {
  STATIC_REQUIRE(kCtAttrEventmask == OVS_CT_ATTR_EVENTMASK);
  STATIC_REQUIRE(kCtAttrTimeout == OVS_CT_ATTR_TIMEOUT);
  STATIC_REQUIRE(action_name(OVS_ACTION_ATTR_CT_CLEAR) == "ct_clear");
  STATIC_REQUIRE(ct_helper_name(kCtHelperFtp) == "ftp");
  STATIC_REQUIRE(ct_helper_name(kCtHelperTftp) == "tftp");
  STATIC_REQUIRE(ct_helper_name(kCtHelperNone).empty());
}

TEST_CASE("CT writer encodes like OVS's parser, byte for byte", "[odp_actions][ct]") {
  CtAction c;
  c.commit = true;
  c.zone = 5;
  ActionWriter w;
  w.ct(c).ct_clear();
  REQUIRE(w.ok());
  const Blob want = {16,
                     0,
                     OVS_ACTION_ATTR_CT,
                     0,
                     4,
                     0,
                     OVS_CT_ATTR_COMMIT,
                     0,
                     6,
                     0,
                     OVS_CT_ATTR_ZONE,
                     0,
                     5,
                     0,
                     0,
                     0,
                     4,
                     0,
                     OVS_ACTION_ATTR_CT_CLEAR,
                     0};
  CHECK(w.data() == want);
  CHECK(validate_actions(w.data()));

  // Everything, in OVS's order: commit, zone, mark, labels, helper, timeout, eventmask, nat.
  ActionWriter f;
  f.ct(full_ct());
  Blob nat;
  attr(nat, OVS_NAT_ATTR_SRC);
  attr(nat, OVS_NAT_ATTR_IP_MIN, v4("10.0.0.1"));
  attr(nat, OVS_NAT_ATTR_IP_MAX, v4("10.0.0.9"));
  attr(nat, OVS_NAT_ATTR_PROTO_MIN, u16(1000));
  attr(nat, OVS_NAT_ATTR_PROTO_MAX, u16(2000));
  attr(nat, OVS_NAT_ATTR_PERSISTENT);
  attr(nat, OVS_NAT_ATTR_PROTO_HASH);
  Blob labels(32, 0);
  labels[0] = 1;
  labels[16] = 0xff;
  labels[31] = 0x80;
  Blob p;
  attr(p, OVS_CT_ATTR_COMMIT);
  attr(p, OVS_CT_ATTR_ZONE, u16(5));
  Blob mark = u32(1);
  const Blob mm = u32(0xff);
  mark.insert(mark.end(), mm.begin(), mm.end());
  attr(p, OVS_CT_ATTR_MARK, mark);
  attr(p, OVS_CT_ATTR_LABELS, labels);
  attr(p, OVS_CT_ATTR_HELPER, str("ftp"));
  attr(p, OVS_CT_ATTR_TIMEOUT, str("tp1"));
  attr(p, OVS_CT_ATTR_EVENTMASK, u32(0x1f));
  attr(p, OVS_CT_ATTR_NAT, nat);
  CHECK(f.data() == ct_of(p));
}

TEST_CASE("decode_ct returns every field the writer wrote", "[odp_actions][ct]") {
  SECTION("IPv4 SNAT with everything") {
    ActionWriter w;
    w.ct(full_ct());
    REQUIRE(validate_actions(w.data()));
    const auto d = decode_ct((*ActionList(w.data()).begin()).payload);
    REQUIRE(d);
    CHECK(same_ct(*d, full_ct()));
    CHECK(d->nat.family == 4);
    CHECK(d->nat.ip_max[3] == 9);
    CHECK(std::string(d->timeout) == "tp1");
  }
  SECTION("IPv6 DNAT, force_commit, tftp, single address and port") {
    CtAction c;
    c.force_commit = true;
    c.helper = kCtHelperTftp;
    c.has_nat = true;
    c.nat.dst = true;
    c.nat.proto_random = true;
    c.nat.family = 6;
    std::memcpy(c.nat.ip_min, v6("fe80::1").data(), 16);
    c.nat.port_min = 80;  // max left 0: the writer omits PROTO_MAX, decode fills it in
    ActionWriter w;
    w.ct(c);
    REQUIRE(validate_actions(w.data()));
    const auto d = decode_ct((*ActionList(w.data()).begin()).payload);
    REQUIRE(d);
    CHECK(d->force_commit);
    CHECK_FALSE(d->commit);
    CHECK(d->helper == kCtHelperTftp);
    CHECK(d->nat.dst);
    CHECK(d->nat.proto_random);
    CHECK(d->nat.family == 6);
    CHECK(std::memcmp(d->nat.ip_max, v6("fe80::1").data(), 16) == 0);  // absent max = min
    CHECK(d->nat.port_min == 80);
    CHECK(d->nat.port_max == 80);
    CHECK(d->zone == 0);
    CHECK_FALSE(d->has_mark);
    CHECK_FALSE(d->has_labels);
    CHECK_FALSE(d->has_eventmask);
    CHECK(d->timeout[0] == 0);
  }
  SECTION("plain ct and ct(nat)") {
    const auto plain = decode_ct({});
    REQUIRE(plain);
    CHECK(same_ct(*plain, CtAction{}));
    Blob p;
    attr(p, OVS_CT_ATTR_NAT);
    const auto nat = decode_ct(p);
    REQUIRE(nat);
    CHECK(nat->has_nat);
    CHECK_FALSE(nat->nat.src);
    CHECK_FALSE(nat->nat.dst);
    CHECK(nat->nat.family == 0);
    CHECK_FALSE(nat->commit);  // nat without a type needs no commit
  }
  SECTION("forms OVS accepts: explicit zone 0, max == min, flags without a range") {
    Blob nat;
    attr(nat, OVS_NAT_ATTR_DST);
    attr(nat, OVS_NAT_ATTR_PERSISTENT);
    Blob p;
    attr(p, OVS_CT_ATTR_ZONE, u16(0));
    attr(p, OVS_CT_ATTR_COMMIT);
    attr(p, OVS_CT_ATTR_NAT, nat);
    const auto d = decode_ct(p);
    REQUIRE(d);
    CHECK(d->nat.dst);
    CHECK(d->nat.persistent);
    CHECK(d->nat.family == 0);
    Blob eq;
    attr(eq, OVS_NAT_ATTR_SRC);
    attr(eq, OVS_NAT_ATTR_IP_MIN, v4("10.0.0.1"));
    attr(eq, OVS_NAT_ATTR_IP_MAX, v4("10.0.0.1"));
    attr(eq, OVS_NAT_ATTR_PROTO_MIN, u16(5));
    attr(eq, OVS_NAT_ATTR_PROTO_MAX, u16(5));
    CHECK(decode_ct(commit_nat(eq)));
  }
  SECTION("mark and label value bits outside the mask are kept (OVS does not refuse them)") {
    Blob mark = u32(0xff);
    const Blob m = u32(0x0f);
    mark.insert(mark.end(), m.begin(), m.end());
    Blob p;
    attr(p, OVS_CT_ATTR_COMMIT);
    attr(p, OVS_CT_ATTR_MARK, mark);
    Blob labels(32, 0);
    labels[0] = 0xff;
    attr(p, OVS_CT_ATTR_LABELS, labels);
    const auto d = decode_ct(p);
    REQUIRE(d);
    CHECK(d->mark == 0xff);
    CHECK(d->mark_mask == 0x0f);
    CHECK(d->labels[0] == 0xff);
    CHECK(d->labels_mask[0] == 0);
  }
}

TEST_CASE("CT and CT_CLEAR nest in clone and sample; ESP rules still hold", "[odp_actions][ct]") {
  CtAction c;
  c.commit = true;
  ActionWriter w;
  w.begin_clone().ct(c).ct_clear().output(1).end();
  w.begin_sample(kSampleAlways).ct(CtAction{}).recirc(2).end();
  REQUIRE(w.ok());
  CHECK(validate_actions(w.data()));

  Blob clone;
  attr(clone, OVS_ACTION_ATTR_CLONE, ct_of([] {
         Blob p;
         attr(p, 12);
         return p;
       }()));
  const auto r = validate_actions(clone);
  REQUIRE_FALSE(r);
  CHECK(r.error() == "ct at offset 4: unknown attribute 12");

  ActionWriter esp;
  esp.esp_encrypt(1).ct(c).output(2);
  const auto e = validate_actions(esp.data());
  REQUIRE_FALSE(e);
  CHECK(e.error() == "esp_encrypt must be followed by output actions only (at least one)");
  ActionWriter dec;
  dec.esp_decrypt().ct_clear().recirc(1);
  CHECK_FALSE(validate_actions(dec.data()));

  Blob cc;
  attr(cc, OVS_ACTION_ATTR_CT_CLEAR, u32(0));
  const auto ce = validate_actions(cc);
  REQUIRE_FALSE(ce);
  CHECK(ce.error() == "ct_clear at offset 0: payload is 4 bytes, expected 0");
}

TEST_CASE("CT refusals name the attribute", "[odp_actions][ct]") {
  struct Case {
    const char* what;
    Blob payload;        // of the CT action
    std::string expect;  // decode_ct's message without "ct: "
  };
  std::vector<Case> cases;
  auto add = [&](const char* what, Blob p, std::string expect) {
    cases.push_back(Case{what, std::move(p), std::move(expect)});
  };
  auto one = [](uint16_t type, const Blob& payload = {}) {
    Blob p;
    attr(p, type, payload);
    return p;
  };
  auto nat_only = [&](std::initializer_list<std::pair<uint16_t, Blob>> attrs) {
    Blob n;
    for (const auto& [t, v] : attrs) attr(n, t, v);
    return commit_nat(n);
  };
  const Blob none;
  add("unknown attribute", one(12), "unknown attribute 12");
  add("attribute 0", one(0), "unknown attribute 0");
  {
    Blob p = one(OVS_CT_ATTR_ZONE, u16(1));
    attr(p, OVS_CT_ATTR_ZONE, u16(2));
    add("duplicate zone", p, "duplicate attribute zone");
  }
  add("commit payload", one(OVS_CT_ATTR_COMMIT, u32(1)), "commit: payload is 4 bytes, expected 0");
  add("force_commit payload", one(OVS_CT_ATTR_FORCE_COMMIT, u16(1)),
      "force_commit: payload is 2 bytes, expected 0");
  add("zone size", one(OVS_CT_ATTR_ZONE, u32(1)), "zone: payload is 4 bytes, expected 2");
  add("mark size", one(OVS_CT_ATTR_MARK, u32(1)), "mark: payload is 4 bytes, expected 8");
  add("labels size", one(OVS_CT_ATTR_LABELS, Blob(16)), "labels: payload is 16 bytes, expected 32");
  add("eventmask size", one(OVS_CT_ATTR_EVENTMASK, u16(1)),
      "eventmask: payload is 2 bytes, expected 4");
  add("helper sip", one(OVS_CT_ATTR_HELPER, str("sip")),
      "helper 'sip' is not supported (ftp, tftp)");
  add("helper ftpx", one(OVS_CT_ATTR_HELPER, str("ftpx")),
      "helper 'ftpx' is not supported (ftp, tftp)");
  add("helper empty string", one(OVS_CT_ATTR_HELPER, str("")), "helper is empty");
  add("helper no payload", one(OVS_CT_ATTR_HELPER), "helper is empty");
  add("helper unterminated", one(OVS_CT_ATTR_HELPER, str("ftp", false)),
      "helper is not NUL-terminated");
  add("helper inner NUL", one(OVS_CT_ATTR_HELPER, Blob{'f', 0, 't', 'p', 0}),
      "helper has a NUL inside");
  add("helper too long", one(OVS_CT_ATTR_HELPER, str(std::string(16, 'f'))),
      "helper is 16 characters, limit 15");
  add("helper space", one(OVS_CT_ATTR_HELPER, str("f p")), "helper has a bad character 0x20");
  add("timeout empty", one(OVS_CT_ATTR_TIMEOUT), "timeout is empty");
  add("timeout unterminated", one(OVS_CT_ATTR_TIMEOUT, str("tp", false)),
      "timeout is not NUL-terminated");
  add("timeout too long", one(OVS_CT_ATTR_TIMEOUT, str(std::string(32, 't'))),
      "timeout is 32 characters, limit 31");
  add("timeout comma", one(OVS_CT_ATTR_TIMEOUT, str("a,b")), "timeout has a bad character 0x2c");
  add("timeout control", one(OVS_CT_ATTR_TIMEOUT, str("a\nb")), "timeout has a bad character 0x0a");
  {
    Blob p = one(OVS_CT_ATTR_COMMIT);
    attr(p, OVS_CT_ATTR_FORCE_COMMIT);
    add("commit and force_commit", p, "commit and force_commit are exclusive");
  }
  {
    Blob p;
    raw(p, 12, OVS_CT_ATTR_ZONE, {5, 0});
    add("bad inner length", p,
        "attribute at offset 0 (type 2): length 12 runs past the end (8 bytes left)");
  }
  add("nat unknown attribute", nat_only({{10, none}}), "nat: unknown attribute 10");
  add("nat duplicate", nat_only({{OVS_NAT_ATTR_SRC, none}, {OVS_NAT_ATTR_SRC, none}}),
      "nat: duplicate attribute src");
  add("nat src and dst", nat_only({{OVS_NAT_ATTR_SRC, none}, {OVS_NAT_ATTR_DST, none}}),
      "nat: src and dst are exclusive");
  add("nat flag without type", nat_only({{OVS_NAT_ATTR_PERSISTENT, none}}),
      "nat: persistent needs src or dst");
  add("nat range without type", nat_only({{OVS_NAT_ATTR_IP_MIN, v4("10.0.0.1")}}),
      "nat: ip_min needs src or dst");
  add("nat flag payload", nat_only({{OVS_NAT_ATTR_SRC, u32(0)}}),
      "nat: src: payload is 4 bytes, expected 0");
  add("nat address size",
      nat_only({{OVS_NAT_ATTR_SRC, none}, {OVS_NAT_ATTR_IP_MIN, Blob{10, 0, 0, 1, 0}}}),
      "nat: ip_min: payload is 5 bytes, expected 4 or 16");
  add("nat port size",
      nat_only({{OVS_NAT_ATTR_SRC, none},
                {OVS_NAT_ATTR_IP_MIN, v4("10.0.0.1")},
                {OVS_NAT_ATTR_PROTO_MIN, u32(80)}}),
      "nat: proto_min: payload is 4 bytes, expected 2");
  add("nat ip_max without ip_min",
      nat_only({{OVS_NAT_ATTR_SRC, none}, {OVS_NAT_ATTR_IP_MAX, v4("10.0.0.1")}}),
      "nat: ip_max without ip_min");
  add("nat proto_max without proto_min",
      nat_only({{OVS_NAT_ATTR_SRC, none},
                {OVS_NAT_ATTR_IP_MIN, v4("10.0.0.1")},
                {OVS_NAT_ATTR_PROTO_MAX, u16(80)}}),
      "nat: proto_max without proto_min");
  add("nat port without address",
      nat_only({{OVS_NAT_ATTR_DST, none}, {OVS_NAT_ATTR_PROTO_MIN, u16(80)}}),
      "nat: proto_min without ip_min (a port range needs an address range)");
  add("nat mixed families",
      nat_only({{OVS_NAT_ATTR_SRC, none},
                {OVS_NAT_ATTR_IP_MIN, v4("10.0.0.1")},
                {OVS_NAT_ATTR_IP_MAX, v6("::2")}}),
      "nat: ip_min and ip_max are of different families (4 and 16 bytes)");
  add("nat port 0",
      nat_only({{OVS_NAT_ATTR_SRC, none},
                {OVS_NAT_ATTR_IP_MIN, v4("10.0.0.1")},
                {OVS_NAT_ATTR_PROTO_MIN, u16(0)}}),
      "nat: proto_min is 0");
  add("nat hash and random",
      nat_only({{OVS_NAT_ATTR_SRC, none},
                {OVS_NAT_ATTR_PROTO_HASH, none},
                {OVS_NAT_ATTR_PROTO_RANDOM, none}}),
      "nat: hash and random are exclusive");
  add("nat IPv4 min > max",
      nat_only({{OVS_NAT_ATTR_SRC, none},
                {OVS_NAT_ATTR_IP_MIN, v4("10.0.0.9")},
                {OVS_NAT_ATTR_IP_MAX, v4("10.0.0.1")}}),
      "nat: ip_min > ip_max");
  add("nat IPv4 max 0 (OVS's printer would hide it)",
      nat_only({{OVS_NAT_ATTR_SRC, none},
                {OVS_NAT_ATTR_IP_MIN, v4("10.0.0.9")},
                {OVS_NAT_ATTR_IP_MAX, v4("0.0.0.0")}}),
      "nat: ip_min > ip_max");
  add("nat IPv6 min > max",
      nat_only({{OVS_NAT_ATTR_DST, none},
                {OVS_NAT_ATTR_IP_MIN, v6("fe80::2")},
                {OVS_NAT_ATTR_IP_MAX, v6("fe80::1")}}),
      "nat: ip_min > ip_max");
  add("nat port min > max",
      nat_only({{OVS_NAT_ATTR_SRC, none},
                {OVS_NAT_ATTR_IP_MIN, v4("10.0.0.1")},
                {OVS_NAT_ATTR_PROTO_MIN, u16(2000)},
                {OVS_NAT_ATTR_PROTO_MAX, u16(1000)}}),
      "nat: proto_min > proto_max");
  {
    Blob n;
    attr(n, OVS_NAT_ATTR_SRC);
    attr(n, OVS_NAT_ATTR_IP_MIN, v4("10.0.0.1"));
    add("nat src without commit", one(OVS_CT_ATTR_NAT, n),
        "nat(src) requires commit or force_commit");
    Blob d;
    attr(d, OVS_NAT_ATTR_DST);
    add("nat dst without commit", one(OVS_CT_ATTR_NAT, d),
        "nat(dst) requires commit or force_commit");
    Blob bad;
    raw(bad, 8, OVS_NAT_ATTR_SRC);  // claims 8, holds 4
    add("nat bad inner length", one(OVS_CT_ATTR_NAT, bad),
        "nat at offset 0: attribute at offset 4 (type 1): length 8 runs past the end (4 bytes "
        "left)");
  }

  for (const Case& c : cases) {
    INFO(c.what);
    const auto d = decode_ct(c.payload);
    REQUIRE_FALSE(d);
    CHECK(d.error() == "ct: " + c.expect);
    // validate_actions refuses the same, located: CT at offset 4, after an output.
    Blob blob;
    attr(blob, OVS_ACTION_ATTR_OUTPUT, u32(1));
    attr(blob, OVS_ACTION_ATTR_CT, c.payload);
    const auto v = validate_actions(blob);
    REQUIRE_FALSE(v);
    std::string want = c.expect;
    // Offsets inside the CT payload become absolute in the blob (payload at 12).
    if (want.starts_with("attribute at offset 0")) want.replace(0, 21, "attribute at offset 12");
    if (want.starts_with("nat at offset 0: attribute at offset 4"))
      want.replace(0, 38, "nat at offset 12: attribute at offset 16");
    CHECK(v.error() == "ct at offset 8: " + want);
    CHECK(format_actions(blob).starts_with("<invalid actions: ct at offset 8: "));
  }
}

namespace {

// Every CT payload in a validated blob, depth first (inside clone and sample too).
void collect_ct(std::span<const uint8_t> list, std::vector<CtAction>& out) {
  for (ActionView a : ActionList(list)) {
    if (a.type == OVS_ACTION_ATTR_CT) {
      const auto d = decode_ct(a.payload);
      REQUIRE(d);
      out.push_back(*d);
    } else if (a.type == OVS_ACTION_ATTR_CLONE) {
      collect_ct(a.payload, out);
    } else if (a.type == OVS_ACTION_ATTR_SAMPLE) {
      collect_ct(decode_sample(a.payload).actions, out);
    }
  }
}

}  // namespace

TEST_CASE("mutated CT blobs: valid ones print, parse back and decode the same",
          "[odp_actions][ct]") {
  std::vector<Blob> seeds;
  for (const char* t :
       {"ct(commit,zone=5,mark=0x1/0xff,label=0x1/0xff,helper=ftp,timeout=tp1,eventmask=0x1f,"
        "nat(src=10.0.0.1-10.0.0.9:1000-2000,persistent,hash))",
        "ct(force_commit,nat(dst=[fe80::1]-[fe80::2]:80-90,random)),ct_clear",
        "ct(commit,nat(dst=fe80::1-fe80::2)),clone(ct(zone=7,nat))",
        "sample(sample=50.0%,actions(ct(commit,helper=tftp,nat(src)),ct_clear))"}) {
    const auto b = parse_actions(t);
    REQUIRE(b);
    seeds.push_back(*b);
  }
  std::mt19937 rng(777);
  size_t valid = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    Blob b = seeds[rng() % seeds.size()];
    const int flips = 1 + rng() % 2;
    for (int f = 0; f < flips; ++f)
      b[rng() % b.size()] = static_cast<uint8_t>(rng() % 2 ? rng() % 12 : rng());
    if (!validate_actions(b)) continue;
    ++valid;
    const std::string text = format_actions(b);
    INFO(text);
    const auto back = parse_actions(text);
    REQUIRE(back);
    CHECK(format_actions(*back) == text);
    std::vector<CtAction> x, y;
    collect_ct(b, x);
    collect_ct(*back, y);
    REQUIRE(x.size() == y.size());
    for (size_t i = 0; i < x.size(); ++i) CHECK(same_ct(x[i], y[i]));
  }
  CHECK(valid > 1000);
}

TEST_CASE("u32_action encodes as ActionWriter does; single_u32_action reads it back",
          "[odp][actions]") {
  const gl::odp::U32Action out = gl::odp::u32_action(OVS_ACTION_ATTR_OUTPUT, 0x01020304);
  gl::odp::ActionWriter w;
  w.output(0x01020304);
  const auto span = out.span();
  CHECK(std::vector<uint8_t>(span.begin(), span.end()) == w.data());
  const gl::odp::U32Action esp = gl::odp::u32_action(gl::odp::kActionEspEncrypt, 9);
  gl::odp::ActionWriter w2;
  w2.esp_encrypt(9);
  CHECK(std::vector<uint8_t>(esp.span().begin(), esp.span().end()) == w2.data());
  uint32_t arg = 0;
  CHECK(gl::odp::single_u32_action(out.span(), OVS_ACTION_ATTR_OUTPUT, arg));
  CHECK(arg == 0x01020304);
  CHECK(gl::odp::single_u32_action(esp.span(), gl::odp::kActionEspEncrypt, arg));
  CHECK(arg == 9);
  CHECK_FALSE(gl::odp::single_u32_action(out.span(), OVS_ACTION_ATTR_RECIRC, arg));
  w.output(2);  // two actions: not a single one
  CHECK_FALSE(gl::odp::single_u32_action(w.data(), OVS_ACTION_ATTR_OUTPUT, arg));
}
