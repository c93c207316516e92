// ESP encap/decap: round trips for every backend, cipher, mode and address family; header
// fields; padding; tampering; lengths and room; sequence exhaustion; ESN wrap; bursts with
// mixed results; counters; SPI table dispatch; both backends byte-identical.
#include <catch2/catch.hpp>

#include "flowtables/bytes.hpp"
#include "flowtables/checksum.hpp"
#include "test_util.hpp"

using namespace gl::crypto;
using namespace gl::crypto::test;

namespace {

using gl::flow::load_be32;
using gl::flow::load_be64;

std::vector<SaShape> all_shapes() {
  std::vector<SaShape> out;
  for (const Combo& c : available_combos()) {
    for (Mode m : {Mode::tunnel, Mode::transport}) {
      for (bool v6 : {false, true}) {
        SaShape s;
        s.backend = c.backend;
        s.cipher = c.cipher;
        s.mode = m;
        s.v6 = v6;
        out.push_back(s);
      }
    }
  }
  return out;
}

std::string describe(const SaShape& s) {
  return std::string(name(s.backend)) + "/" + std::string(name(s.cipher)) + "/" +
         (s.mode == Mode::tunnel ? "tunnel" : "transport") + (s.v6 ? "/v6" : "/v4");
}

std::vector<uint8_t> inner_with_trailer(const std::vector<uint8_t>& inner,
                                        const std::vector<uint8_t>& pad, uint8_t pad_len,
                                        uint8_t nh) {
  auto v = inner;
  v.insert(v.end(), pad.begin(), pad.end());
  v.push_back(pad_len);
  v.push_back(nh);
  return v;
}

}  // namespace

TEST_CASE("esp: round trip for every backend, cipher, mode and family, sizes 1..200 + 1400") {
  auto w = make_worker();
  for (const SaShape& shape : all_shapes()) {
    INFO(describe(shape));
    auto sa = make_pair(shape);
    uint64_t seq = 0;
    std::vector<size_t> sizes;
    for (size_t n = 1; n <= 200; ++n) sizes.push_back(n);
    sizes.push_back(1400);
    for (size_t size : sizes) {
      for (int inner_kind = 0; inner_kind < 3; ++inner_kind) {
        if (shape.mode == Mode::transport && inner_kind == 2) continue;
        INFO("size " << size << " inner " << inner_kind);
        std::vector<uint8_t> inner;
        uint8_t proto = 0;
        if (inner_kind == 0) {
          inner = ipv4_packet(17, size);
        } else if (inner_kind == 1) {
          inner = ipv6_packet(17, size);
        } else {
          inner.assign(size, 0x42);  // an Ethernet frame, say
          proto = kProtoEthernet;
        }
        Buf b(inner);
        b.p.proto = proto;
        REQUIRE(run1(*sa.out, *w, b) == Result::ok);
        REQUIRE(b.consistent());
        ++seq;
        const uint8_t* o = b.p.data;
        const uint32_t ip_len =
            shape.mode == Mode::tunnel ? (shape.v6 ? 40 : 20) : (inner_kind == 1 ? 40 : 20);
        const bool outer_v6 = shape.mode == Mode::tunnel ? shape.v6 : inner_kind == 1;
        // Outer header.
        if (outer_v6) {
          REQUIRE(o[0] >> 4 == 6);
          CHECK(o[6] == kProtoEsp);
          CHECK((uint32_t{o[4]} << 8 | o[5]) == b.p.len - 40);
        } else {
          REQUIRE(o[0] == 0x45);
          CHECK(o[9] == kProtoEsp);
          CHECK((uint32_t{o[2]} << 8 | o[3]) == b.p.len);
          CHECK(gl::flow::ipv4_header_checksum_ok(o, b.p.len));
        }
        if (shape.mode == Mode::tunnel && !shape.v6) {
          CHECK(o[12] == 192);
          CHECK(o[19] == 2);
          CHECK((o[6] & 0x40) != 0);  // DF
        }
        // ESP header: SPI, low 32 bits of seq, IV = 64-bit seq; ciphertext 4-aligned.
        const uint8_t* esp = o + ip_len;
        CHECK(load_be32(esp) == shape.spi);
        CHECK(load_be32(esp + 4) == static_cast<uint32_t>(seq));
        CHECK(load_be64(esp + 8) == seq);
        CHECK((b.p.len - ip_len - 16 - 16) % 4 == 0);
        // Inner payload is not in clear (check a 16-byte window).
        if (size >= 32) {
          CHECK(std::search(b.p.data, b.p.data + b.p.len, inner.end() - 16, inner.end()) ==
                b.p.data + b.p.len);
        }
        REQUIRE(run1(*sa.in, *w, b) == Result::ok);
        REQUIRE(b.consistent());
        CHECK(b.bytes() == inner);
        if (shape.mode == Mode::tunnel) {
          CHECK(b.p.proto == (inner_kind == 0 ? 4 : inner_kind == 1 ? 41 : kProtoEthernet));
        } else {
          CHECK(b.p.proto == 17);
        }
      }
    }
    CHECK(sa.out->stats().packets() == sa.in->stats().packets());
    CHECK(sa.out->stats().bytes == sa.in->stats().bytes);
    CHECK(sa.out->seq() == sa.in->seq());
  }
}

TEST_CASE("esp: backends produce identical packets") {
  auto w = make_worker();
  for (Cipher c : {Cipher::aes256_gcm, Cipher::chacha20_poly1305}) {
    if (!aead_impl(Backend::sodium, c) || !aead_impl(Backend::ipsec_mb, c)) continue;
    for (bool v6 : {false, true}) {
      SaShape s;
      s.cipher = c;
      s.v6 = v6;
      s.backend = Backend::sodium;
      auto a = make_pair(s);
      s.backend = Backend::ipsec_mb;
      auto b = make_pair(s);
      std::mt19937_64 rng(1);
      for (int i = 0; i < 300; ++i) {
        const auto inner = ipv4_packet(6, rng() % 1500);
        Buf x(inner), y(inner);
        REQUIRE(run1(*a.out, *w, x) == Result::ok);
        REQUIRE(run1(*b.out, *w, y) == Result::ok);
        const uint32_t skip = v6 ? 0 : 12;  // IPv4 id and checksum differ (random start)
        REQUIRE(x.p.len == y.p.len);
        REQUIRE(std::equal(x.p.data + skip, x.p.data + x.p.len, y.p.data + skip));
        // Cross decrypt.
        REQUIRE(run1(*b.in, *w, x) == Result::ok);
        REQUIRE(run1(*a.in, *w, y) == Result::ok);
        REQUIRE(x.bytes() == inner);
        REQUIRE(y.bytes() == inner);
      }
    }
  }
}

TEST_CASE("esp: padding is 1, 2, 3.. to 4-byte alignment and checked on decap") {
  auto w = make_worker();
  SaShape s;
  auto sa = make_pair(s);
  for (size_t size = 20; size < 28; ++size) {
    std::vector<uint8_t> inner(size, 0x33);
    inner[0] = 0x45;
    Buf b(inner);
    b.p.proto = 4;
    REQUIRE(run1(*sa.out, *w, b) == Result::ok);
    const uint32_t enc = b.p.len - 36 - 16;
    CHECK(enc % 4 == 0);
    CHECK(enc - size - 2 == (4 - (size + 2) % 4) % 4);
  }
  auto in = make_pair(s).in;
  const std::vector<uint8_t> inner = ipv4_packet(17, 10);  // 30 bytes
  struct Case {
    const char* what;
    std::vector<uint8_t> plain;
    Result expect;
  };
  const Case cases[] = {
      {"minimal padding", inner_with_trailer(inner, {}, 0, 4), Result::ok},
      {"longer padding 1..8", inner_with_trailer(inner, {1, 2, 3, 4, 5, 6, 7, 8}, 8, 4),
       Result::ok},
      {"wrong pad byte", inner_with_trailer(inner, {1, 2, 9, 4}, 4, 4), Result::bad_padding},
      {"zero pad bytes", inner_with_trailer(inner, {0, 0, 0, 0}, 4, 4), Result::bad_padding},
      {"pad length beyond payload", inner_with_trailer(std::vector<uint8_t>{1, 2}, {}, 200, 4),
       Result::bad_padding},
      {"dummy packet (next header 59)", inner_with_trailer(inner, {}, 0, 59), Result::dummy},
      {"next header 4 but IPv6 inside", inner_with_trailer(ipv6_packet(17, 2), {}, 0, 4),
       Result::bad_next_header},
  };
  uint64_t seq = 100;
  for (const Case& c : cases) {
    INFO(c.what);
    Buf b(craft_esp(*w, s, ++seq, c.plain));
    CHECK(run1(*in, *w, b) == c.expect);
  }
  CHECK(in->stats()[Result::bad_padding] == 3);
  CHECK(in->stats()[Result::dummy] == 1);
}

TEST_CASE("esp: tampered header, IV, ciphertext or ICV fails authentication") {
  auto w = make_worker();
  for (const Combo& c : available_combos()) {
    SaShape s;
    s.backend = c.backend;
    s.cipher = c.cipher;
    INFO(name(c.backend) << " " << name(c.cipher));
    auto sa = make_pair(s);
    const auto inner = ipv4_packet(17, 100);
    Buf ref(inner);
    REQUIRE(run1(*sa.out, *w, ref) == Result::ok);
    const auto pkt = ref.bytes();
    struct Flip {
      const char* what;
      size_t offset;
      Result expect;
    };
    const Flip flips[] = {
        {"SPI", 20 + 1, Result::unknown_spi},
        {"sequence number", 20 + 6, Result::auth_failed},
        {"IV", 20 + 12, Result::auth_failed},
        {"first ciphertext byte", 36, Result::auth_failed},
        {"last ciphertext byte (next header)", pkt.size() - 17, Result::auth_failed},
        {"ICV", pkt.size() - 1, Result::auth_failed},
    };
    for (const Flip& f : flips) {
      INFO(f.what);
      auto bad = pkt;
      bad[f.offset] ^= 0x01;
      Buf b(bad);
      CHECK(run1(*sa.in, *w, b) == f.expect);
    }
    // The window did not move on failures: the genuine packet still decrypts, once.
    Buf good(pkt);
    CHECK(run1(*sa.in, *w, good) == Result::ok);
    CHECK(good.bytes() == inner);
    Buf again(pkt);
    CHECK(run1(*sa.in, *w, again) == Result::replay);
    // A different key fails authentication.
    auto other = make_pair(s, 1);
    Buf k(pkt);
    CHECK(run1(*other.in, *w, k) == Result::auth_failed);
    CHECK(sa.in->stats()[Result::auth_failed] == 5);
  }
}

TEST_CASE("esp: length and room checks") {
  auto w = make_worker();
  SaShape s;
  auto sa = make_pair(s);
  SECTION("encap needs headroom and tailroom") {
    const auto inner = ipv4_packet(17, 30);
    Buf head(inner, 35, 64);
    CHECK(run1(*sa.out, *w, head) == Result::no_room);
    Buf head_ok(inner, 36, 64);
    CHECK(run1(*sa.out, *w, head_ok) == Result::ok);
    Buf tail(inner, 64, 17);  // 50 bytes: pad 0 + 2 + 16 = 18 needed
    CHECK(run1(*sa.out, *w, tail) == Result::no_room);
    Buf tail_ok(inner, 64, 18);
    CHECK(run1(*sa.out, *w, tail_ok) == Result::ok);
    Buf empty(std::vector<uint8_t>{});
    CHECK(run1(*sa.out, *w, empty) == Result::bad_length);
    Buf junk(std::vector<uint8_t>{0x12, 0x34});  // not IP and no proto given
    CHECK(run1(*sa.out, *w, junk) == Result::unsupported);
    CHECK(sa.out->stats()[Result::no_room] == 2);
  }
  SECTION("decap rejects short, misaligned and inconsistent packets") {
    const auto inner = ipv4_packet(17, 30);
    Buf b(inner);
    REQUIRE(run1(*sa.out, *w, b) == Result::ok);
    const auto pkt = b.bytes();
    auto with_len = [](std::vector<uint8_t> p, size_t keep, int tot_delta) {
      p.resize(keep);
      const int tot = (p[2] << 8 | p[3]) + tot_delta;
      p[2] = static_cast<uint8_t>(tot >> 8);
      p[3] = static_cast<uint8_t>(tot);
      return p;
    };
    Buf truncated(with_len(pkt, pkt.size() - 1, 0));  // total length > buffer
    CHECK(run1(*sa.in, *w, truncated) == Result::bad_length);
    Buf misaligned(with_len(pkt, pkt.size() - 1, -1));
    CHECK(run1(*sa.in, *w, misaligned) == Result::bad_length);
    Buf tiny(with_len(pkt, 20 + 35, -(static_cast<int>(pkt.size()) - 55)));
    CHECK(run1(*sa.in, *w, tiny) == Result::bad_length);
    Buf not_ip(std::vector<uint8_t>(10, 0));
    CHECK(run1(*sa.in, *w, not_ip) == Result::bad_length);
    auto frag = pkt;
    frag[7] = 8;  // fragment offset
    Buf fragment(frag);
    CHECK(run1(*sa.in, *w, fragment) == Result::unsupported);
    // Ethernet padding after the IP packet is ignored.
    auto padded = pkt;
    padded.resize(pkt.size() + 6, 0);
    Buf eth(padded);
    CHECK(run1(*sa.in, *w, eth) == Result::ok);
    CHECK(eth.bytes() == inner);
    CHECK(eth.consistent());
  }
}

TEST_CASE("esp: sequence exhaustion expires the SA and never wraps") {
  auto w = make_worker();
  SECTION("ESN: 2^64 - 1 is the last sequence number") {
    SaShape s;
    s.seq_start = UINT64_MAX - 2;
    auto sa = make_pair(s);
    for (int i = 0; i < 2; ++i) {
      Buf b(ipv4_packet(17, 10));
      REQUIRE(run1(*sa.out, *w, b) == Result::ok);
      REQUIRE(run1(*sa.in, *w, b) == Result::ok);
    }
    CHECK(sa.out->seq() == UINT64_MAX);
    CHECK(sa.out->seq_remaining() == 0);
    Buf b(ipv4_packet(17, 10));
    CHECK(run1(*sa.out, *w, b) == Result::seq_exhausted);
    CHECK(sa.out->expired());
    CHECK(sa.out->seq() == UINT64_MAX);
    CHECK(b.bytes() == ipv4_packet(17, 10));  // untouched
  }
  SECTION("no ESN: 2^32 - 1") {
    SaShape s;
    s.esn = false;
    s.seq_start = 0xfffffffdu;
    auto sa = make_pair(s);
    for (int i = 0; i < 2; ++i) {
      Buf b(ipv4_packet(17, 10));
      REQUIRE(run1(*sa.out, *w, b) == Result::ok);
      REQUIRE(run1(*sa.in, *w, b) == Result::ok);
    }
    Buf b(ipv4_packet(17, 10));
    CHECK(run1(*sa.out, *w, b) == Result::seq_exhausted);
    CHECK(sa.out->stats()[Result::seq_exhausted] == 1);
  }
  SECTION("configured limit, mid-burst") {
    SaShape s;
    s.seq_limit = 5;
    auto sa = make_pair(s);
    std::vector<Buf> bufs;
    for (int i = 0; i < 8; ++i) bufs.emplace_back(ipv4_packet(17, 10));
    PktBuf* p[8];
    Result r[8];
    for (int i = 0; i < 8; ++i) p[i] = &bufs[i].p;
    CHECK(sa.out->burst(*w, p, 8, r) == 5);
    for (int i = 0; i < 8; ++i) CHECK(r[i] == (i < 5 ? Result::ok : Result::seq_exhausted));
    CHECK(sa.out->expired());
  }
}

TEST_CASE("esp: ESN low-32 wrap, in order and reordered, high bits only in the AAD") {
  auto w = make_worker();
  constexpr uint64_t k32 = uint64_t{1} << 32;
  SaShape s;
  s.seq_start = k32 - 4;
  auto sa = make_pair(s);
  std::vector<std::vector<uint8_t>> pkts;
  for (int i = 0; i < 8; ++i) {  // seq 2^32 - 3 .. 2^32 + 4
    Buf b(ipv4_packet(17, 20 + i));
    REQUIRE(run1(*sa.out, *w, b) == Result::ok);
    pkts.push_back(b.bytes());
  }
  CHECK(load_be32(pkts[3].data() + 24) == 0);  // 2^32 on the wire: low half only
  CHECK(load_be32(pkts[2].data() + 24) == 0xffffffffu);
  // Deliver: 0, 1, 5, 3, 2, 4, 7, 6 — across the wrap and back.
  for (int i : {0, 1, 5, 3, 2, 4, 7, 6}) {
    INFO("packet " << i);
    Buf b(pkts[i]);
    CHECK(run1(*sa.in, *w, b) == Result::ok);
    CHECK(b.bytes() == ipv4_packet(17, 20 + i));
  }
  CHECK(sa.in->seq() == k32 + 4);
  for (int i = 0; i < 8; ++i) {
    Buf b(pkts[i]);
    CHECK(run1(*sa.in, *w, b) == Result::replay);
  }
  // A receiver that assumed 32-bit sequence numbers cannot authenticate them.
  SaShape no_esn = s;
  no_esn.esn = false;
  no_esn.seq_start = 0;
  auto plain = make_pair(no_esn);
  Buf b(pkts[5]);
  CHECK(run1(*plain.in, *w, b) == Result::auth_failed);
}

TEST_CASE("esp: a burst with good, replayed, duplicate and tampered packets") {
  auto w = make_worker();
  for (const Combo& c : available_combos()) {
    SaShape s;
    s.backend = c.backend;
    s.cipher = c.cipher;
    auto sa = make_pair(s);
    std::vector<Buf> bufs;
    for (int i = 0; i < 32; ++i) bufs.emplace_back(ipv4_packet(17, 50 + 13 * i));
    PktBuf* p[32];
    Result r[32];
    for (int i = 0; i < 32; ++i) p[i] = &bufs[i].p;
    REQUIRE(sa.out->burst(*w, p, 32, r) == 32);
    std::vector<std::vector<uint8_t>> enc;
    for (auto& b : bufs) enc.push_back(b.bytes());
    // Receive 0..9 first.
    std::vector<Buf> first;
    for (int i = 0; i < 10; ++i) first.emplace_back(enc[i]);
    PktBuf* q[32];
    for (int i = 0; i < 10; ++i) q[i] = &first[i].p;
    REQUIRE(sa.in->burst(*w, q, 10, r) == 10);
    // Now a burst of: 5 (replay), 10, 11, 11 (duplicate in burst), 12 tampered, 13..31.
    std::vector<std::vector<uint8_t>> mix = {enc[5], enc[10], enc[11], enc[11], enc[12]};
    mix.back()[40] ^= 0xff;
    for (int i = 13; i < 32; ++i) mix.push_back(enc[i]);
    std::vector<Buf> in;
    for (auto& m : mix) in.emplace_back(m);
    for (size_t i = 0; i < in.size(); ++i) q[i] = &in[i].p;
    const auto n = static_cast<uint32_t>(in.size());
    CHECK(sa.in->burst(*w, q, n, r) == n - 3);
    CHECK(r[0] == Result::replay);
    CHECK(r[1] == Result::ok);
    CHECK(r[2] == Result::ok);
    CHECK(r[3] == Result::replay);
    CHECK(r[4] == Result::auth_failed);
    for (uint32_t i = 5; i < n; ++i) CHECK(r[i] == Result::ok);
    const SaStats st = sa.in->stats();
    CHECK(st.packets() == 10 + n - 3);
    CHECK(st[Result::replay] == 2);
    CHECK(st[Result::auth_failed] == 1);
    // The tampered packet's genuine copy still arrives.
    Buf late(enc[12]);
    CHECK(run1(*sa.in, *w, late) == Result::ok);
  }
}

TEST_CASE("esp: SPI table dispatch over a burst of several SAs") {
  auto w = make_worker();
  std::vector<SaPair> pairs;
  std::vector<Sa*> inbound;
  for (uint32_t i = 0; i < 3; ++i) {
    SaShape s;
    s.spi = 0x2000 + i;
    s.cipher = i == 1 ? Cipher::chacha20_poly1305 : Cipher::aes256_gcm;
    pairs.push_back(make_pair(s, static_cast<uint8_t>(i)));
    inbound.push_back(pairs.back().in.get());
  }
  auto table = SaTable::build(inbound);
  REQUIRE(table.has_value());
  CHECK(table->size() == 3);
  CHECK(table->find(0x2001) == pairs[1].in.get());
  CHECK(table->find(0x3000) == nullptr);
  CHECK(table->find(0) == nullptr);
  SaShape stranger;
  stranger.spi = 0x9999;
  auto unknown = make_pair(stranger);
  std::vector<Buf> bufs;
  std::vector<std::vector<uint8_t>> inner;
  std::vector<int> owner;
  for (int i = 0; i < 30; ++i) {
    const int k = (i * 7) % 4;  // 0..2 known SAs, 3 unknown
    inner.push_back(ipv4_packet(17, 40 + i));
    bufs.emplace_back(inner.back());
    Sa& sa = k < 3 ? *pairs[k].out : *unknown.out;
    REQUIRE(run1(sa, *w, bufs.back()) == Result::ok);
    owner.push_back(k);
  }
  bufs.emplace_back(std::vector<uint8_t>(8, 0));  // not even an IP header
  PktBuf* p[32];
  Result r[32];
  Sa* sas[32];
  for (size_t i = 0; i < bufs.size(); ++i) p[i] = &bufs[i].p;
  const auto n = static_cast<uint32_t>(bufs.size());
  uint32_t expect_good = 0;
  for (int k : owner) expect_good += k < 3;
  CHECK(esp_decap_burst(*w, *table, p, n, r, sas) == expect_good);
  for (uint32_t i = 0; i < 30; ++i) {
    if (owner[i] < 3) {
      CHECK(r[i] == Result::ok);
      CHECK(sas[i] == pairs[owner[i]].in.get());
      CHECK(bufs[i].bytes() == inner[i]);
    } else {
      CHECK(r[i] == Result::unknown_spi);
      CHECK(sas[i] == nullptr);
    }
  }
  CHECK(r[30] == Result::bad_length);
  // Duplicate SPIs and outbound SAs are refused.
  std::vector<Sa*> dup = {pairs[0].in.get(), pairs[0].in.get()};
  CHECK_FALSE(SaTable::build(dup).has_value());
  std::vector<Sa*> outb = {pairs[0].out.get()};
  CHECK_FALSE(SaTable::build(outb).has_value());
}

// Known answers generated once with scapy 2.5 (SecurityAssociation, tunnel mode over
// IPv4 192.0.2.1 -> 192.0.2.2, ESN, SPI 0x1000, sequence number 2^32 + 5, IV = sequence
// number, key 00 01 .. 1f, salt a0 a1 a2 a3) and committed, so the wire format is pinned
// even where python is missing. Outer IPv4 id/checksum differ (ours start random).
TEST_CASE("esp: known-answer packets (scapy-generated test data)") {
  const auto inner = unhex(
      "45000037000700003f1167ad0a0000010a00000204d2162e0023e675476f6c64696c6f636b7320455350"
      "206b6e6f776e20616e73776572");
  struct Kat {
    Cipher cipher;
    const char* packet;
  };
  const Kat kats[] = {
      {Cipher::aes256_gcm,
       "45000070000100004032f657c0000201c00002020000100000000005000000010000000596c6365b690b5"
       "230fb4013680efd75e2b5142f71237e6daeaf54d247539d011273f9a33619f73ac372fc85c5f5506ecb4"
       "eee346bbb075a77b4b0b6254c77e04b93eb7bd6b3af1071e211f9e4"},
      {Cipher::chacha20_poly1305,
       "45000070000100004032f657c0000201c000020200001000000000050000000100000005245616f19718"
       "d572336e532d132f625012a938b55117971fd702a822d24ac39d1d1dfb46ec5747c83ce2c1b2311219e1"
       "e200ecc6db59f52ca374df7a48bf5f8ea75befc4fc3cad2fdc60c7b3"},
  };
  auto w = make_worker();
  for (const Kat& k : kats) {
    for (const Combo& c : available_combos()) {
      if (c.cipher != k.cipher) continue;
      INFO(name(c.backend) << " " << name(c.cipher));
      SaShape s;
      s.backend = c.backend;
      s.cipher = c.cipher;
      s.seq_start = (uint64_t{1} << 32) + 4;
      auto sa = make_pair(s);
      const auto expect = unhex(k.packet);
      Buf b(inner);
      REQUIRE(run1(*sa.out, *w, b) == Result::ok);
      const auto ours = b.bytes();
      REQUIRE(ours.size() == expect.size());
      CHECK(hex(ours.data() + 20, ours.size() - 20) == hex(expect.data() + 20, expect.size() - 20));
      CHECK(hex(ours.data() + 12, 8) == hex(expect.data() + 12, 8));  // addresses
      Buf theirs(expect);
      REQUIRE(run1(*sa.in, *w, theirs) == Result::ok);
      CHECK(theirs.bytes() == inner);
    }
  }
}
