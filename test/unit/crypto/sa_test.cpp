// SA set-up: validation, keys copied and wiped at destruction (checked in the freed
// memory itself, through a replaced aligned operator delete), MTU arithmetic, counters.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <new>

#include "test_util.hpp"

using namespace gl::crypto;
using namespace gl::crypto::test;

namespace {

// The aligned delete below copies the block at `g_watch` before freeing it.
const void* g_watch = nullptr;
std::vector<uint8_t> g_freed;

void capture(void* p, size_t size) {
  if (p != nullptr && p == g_watch) {
    const auto* b = static_cast<const uint8_t*>(p);
    g_freed.assign(b, b + size);
    g_watch = nullptr;
  }
}

bool contains(const std::vector<uint8_t>& hay, const uint8_t* needle, size_t n) {
  return std::search(hay.begin(), hay.end(), needle, needle + n) != hay.end();
}

}  // namespace

// Sa is alignas(64): new/delete go through the align_val_t overloads.
void operator delete(void* p, std::size_t size, std::align_val_t) noexcept {
  capture(p, size);
  std::free(p);
}
void operator delete(void* p, std::align_val_t) noexcept {
  capture(p, sizeof(Sa));
  std::free(p);
}
void* operator new(std::size_t size, std::align_val_t al) {
  void* p = std::aligned_alloc(static_cast<size_t>(al), (size + static_cast<size_t>(al) - 1) &
                                                            ~(static_cast<size_t>(al) - 1));
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
void* operator new(std::size_t size, std::align_val_t al, const std::nothrow_t&) noexcept {
  return std::aligned_alloc(static_cast<size_t>(al),
                            (size + static_cast<size_t>(al) - 1) & ~(static_cast<size_t>(al) - 1));
}

TEST_CASE("sa: configuration is validated") {
  const auto km = test_keymat();
  SaConfig c = sa_config(SaShape{}, Direction::outbound);
  CHECK(make_sa(c, km).has_value());
  auto bad = c;
  bad.spi = 255;
  CHECK_FALSE(make_sa(bad, km).has_value());
  CHECK_FALSE(make_sa(c, std::span(km).first(32)).has_value());
  bad = c;
  bad.remote = IpAddress::parse("2001:db8::9").value();
  CHECK_FALSE(make_sa(bad, km).has_value());
  bad = c;
  bad.esn = false;
  bad.seq_limit = uint64_t{1} << 32;
  CHECK_FALSE(make_sa(bad, km).has_value());
  bad = c;
  bad.seq_start = 10;
  bad.seq_limit = 5;
  CHECK_FALSE(make_sa(bad, km).has_value());
  SaConfig in = sa_config(SaShape{}, Direction::inbound);
  for (uint32_t wsize : {0u, 32u, 1000u, 8192u}) {
    in.replay_window = wsize;
    CHECK_FALSE(make_sa(in, km).has_value());
  }
  in.replay_window = 2048;
  CHECK(make_sa(in, km).has_value());
  CHECK(IpAddress::parse("10.1.2.3").value() == IpAddress::v4(10, 1, 2, 3));
  CHECK(IpAddress::parse("2001:db8::1").value().to_string() == "2001:db8::1");
  CHECK_FALSE(IpAddress::parse("10.1.2").has_value());
}

TEST_CASE("sa: key material is copied and wiped when the SA is destroyed") {
  for (const Combo& combo : available_combos()) {
    INFO(name(combo.backend) << " " << name(combo.cipher));
    SaShape s;
    s.backend = combo.backend;
    s.cipher = combo.cipher;
    auto km = test_keymat(0x40);
    auto sa = make_sa(sa_config(s, Direction::outbound), km).value();
    // The caller's buffer is not referenced: wiping it does not affect the SA.
    const auto saved = km;
    std::fill(km.begin(), km.end(), 0);
    auto w = make_worker();
    Buf b(ipv4_packet(17, 64));
    REQUIRE(run1(*sa, *w, b) == Result::ok);
    auto in = make_sa(sa_config(s, Direction::inbound), saved).value();
    REQUIRE(run1(*in, *w, b) == Result::ok);
    // Key state is non-zero while alive.
    const AeadKey& ks = sa->key_state();
    CHECK(std::any_of(std::begin(ks.bytes), std::end(ks.bytes), [](uint8_t x) { return x; }));
    // Destroy through the normal path and inspect the memory as it is freed.
    const auto key_offset =
        reinterpret_cast<const uint8_t*>(&ks) - reinterpret_cast<const uint8_t*>(sa.get());
    g_watch = sa.get();
    sa.reset();
    REQUIRE(g_freed.size() >= sizeof(Sa));
    CHECK(std::all_of(g_freed.begin() + key_offset,
                      g_freed.begin() + key_offset + static_cast<long>(sizeof(AeadKey)),
                      [](uint8_t x) { return x == 0; }));
    CHECK_FALSE(contains(g_freed, saved.data(), kKeyLen));             // raw key
    CHECK_FALSE(contains(g_freed, saved.data() + kKeyLen, kSaltLen));  // salt
    // wipe_keys() on a live SA: it then fails closed (no packet decrypts).
    in->wipe_keys();
    Buf c(ipv4_packet(17, 64));
    SaConfig oc = sa_config(s, Direction::outbound);
    oc.seq_start = 10;  // past what `in` has seen
    auto out2 = make_sa(oc, saved).value();
    REQUIRE(run1(*out2, *w, c) == Result::ok);
    CHECK(run1(*in, *w, c) == Result::auth_failed);
  }
}

TEST_CASE("sa: overhead and largest inner packet for an underlay MTU") {
  for (bool v6 : {false, true}) {
    SaShape s;
    s.v6 = v6;
    auto p = make_pair(s);
    const uint32_t hdr = v6 ? 56 : 36;
    CHECK(p.out->max_header() == hdr);
    for (uint32_t mtu : {576u, 1280u, 1500u, 9000u}) {
      const uint32_t inner = p.out->max_inner(mtu);
      auto w = make_worker();
      for (uint32_t len : {inner, inner + 1}) {
        std::vector<uint8_t> pkt(len, 0);
        pkt[0] = 0x45;
        Buf b(pkt);
        REQUIRE(run1(*p.out, *w, b) == Result::ok);
        if (len == inner) {
          CHECK(b.p.len <= mtu);
        } else {
          CHECK(b.p.len > mtu);
        }
      }
    }
  }
}
