// AEAD backends: RFC vectors for every available (backend, cipher), in place, single and
// batched; both backends byte-identical on random inputs; tampering detected.
#include <catch2/catch.hpp>

#include "test_util.hpp"

using namespace gl::crypto;
using namespace gl::crypto::test;

namespace {

struct Vector {
  const char* name;
  Cipher cipher;
  const char* key;
  const char* nonce;
  const char* aad;
  const char* pt;
  const char* ct;
  const char* tag;
};

// McGrew & Viega, "The Galois/Counter Mode of Operation", test cases 13-16 (AES-256);
// RFC 8439 2.8.2 (ChaCha20-Poly1305 AEAD).
const Vector kVectors[] = {
    {"gcm-tc13", Cipher::aes256_gcm,
     "0000000000000000000000000000000000000000000000000000000000000000", "000000000000000000000000",
     "", "", "", "530f8afbc74536b9a963b4f1c4cb738b"},
    {"gcm-tc14", Cipher::aes256_gcm,
     "0000000000000000000000000000000000000000000000000000000000000000", "000000000000000000000000",
     "", "00000000000000000000000000000000", "cea7403d4d606b6e074ec5d3baf39d18",
     "d0d1c8a799996bf0265b98b5d48ab919"},
    {"gcm-tc15", Cipher::aes256_gcm,
     "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308", "cafebabefacedbaddecaf888",
     "",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
     "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255",
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
     "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad",
     "b094dac5d93471bdec1a502270e3cc6c"},
    {"gcm-tc16", Cipher::aes256_gcm,
     "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308", "cafebabefacedbaddecaf888",
     "feedfacedeadbeeffeedfacedeadbeefabaddad2",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
     "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
     "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
     "76fc6ece0f4e1768cddf8853bb2d551b"},
    {"rfc8439-2.8.2", Cipher::chacha20_poly1305,
     "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f", "070000004041424344454647",
     "50515253c0c1c2c3c4c5c6c7",
     // "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for
     // the future, sunscreen would be it."
     "4c616469657320616e642047656e746c656d656e206f662074686520636c6173"
     "73206f66202739393a204966204920636f756c64206f6666657220796f75206f"
     "6e6c79206f6e652074697020666f7220746865206675747572652c2073756e73"
     "637265656e20776f756c642062652069742e",
     "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6"
     "3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36"
     "92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc"
     "3ff4def08e4b7a9de576d26586cec64b6116",
     "1ae10b594f09e26a7e902ecbd0600691"},
};

struct OpBuf {
  std::vector<uint8_t> data, aad, tag = std::vector<uint8_t>(kIcvLen);
  AeadOp op{};
  void bind(const AeadKey* key, const std::vector<uint8_t>& nonce) {
    op.key = key;
    static uint8_t empty;  // libsodium's arguments are declared non-null even for len 0
    op.data = data.empty() ? &empty : data.data();
    op.len = static_cast<uint32_t>(data.size());
    op.aad = aad.data();
    op.aad_len = static_cast<uint32_t>(aad.size());
    op.tag = tag.data();
    std::memcpy(op.nonce, nonce.data(), kNonceLen);
  }
};

}  // namespace

TEST_CASE("aead: RFC test vectors, every backend, in place") {
  auto w = make_worker();
  for (const Combo& combo : available_combos()) {
    const AeadImpl* impl = aead_impl(combo.backend, combo.cipher);
    for (const Vector& v : kVectors) {
      if (v.cipher != combo.cipher) continue;
      INFO(name(combo.backend) << " " << v.name);
      auto key_state = std::make_unique<AeadKey>();
      impl->expand(*key_state, unhex(v.key).data());
      OpBuf b;
      b.data = unhex(v.pt);
      b.aad = unhex(v.aad);
      b.bind(key_state.get(), unhex(v.nonce));
      uint8_t ok = 0;
      REQUIRE(impl->encrypt(*w, &b.op, 1, &ok) == 1);
      CHECK(hex(b.data) == v.ct);
      CHECK(hex(b.tag) == v.tag);
      REQUIRE(impl->decrypt(*w, &b.op, 1, &ok) == 1);
      CHECK(hex(b.data) == v.pt);
      // Flip one tag bit: rejected.
      b.data = unhex(v.ct);
      b.bind(key_state.get(), unhex(v.nonce));
      b.tag[5] ^= 0x10;
      CHECK(impl->decrypt(*w, &b.op, 1, &ok) == 0);
      CHECK(ok == 0);
    }
  }
}

TEST_CASE("aead: backends agree on random bursts; tampering of data, aad or tag fails") {
  auto combos = available_combos();
  auto w = make_worker();
  std::mt19937_64 rng(7);
  for (Cipher c : {Cipher::aes256_gcm, Cipher::chacha20_poly1305}) {
    const AeadImpl* a = aead_impl(Backend::sodium, c);
    const AeadImpl* b = aead_impl(Backend::ipsec_mb, c);
    if (a == nullptr || b == nullptr) {
      WARN("only one backend for " << name(c) << ": cross-check skipped");
      continue;
    }
    for (int round = 0; round < 20; ++round) {
      const auto key = random_bytes(rng, kKeyLen);
      auto ka = std::make_unique<AeadKey>();
      auto kb = std::make_unique<AeadKey>();
      a->expand(*ka, key.data());
      b->expand(*kb, key.data());
      const uint32_t n = 1 + static_cast<uint32_t>(rng() % kMaxBurst);
      std::vector<OpBuf> xa(n), xb(n);
      std::vector<AeadOp> oa(n), ob(n);
      for (uint32_t i = 0; i < n; ++i) {
        const size_t len = (round == 0 && i < 17) ? i : rng() % 2100;
        const auto nonce = random_bytes(rng, kNonceLen);
        xa[i].data = random_bytes(rng, len);
        xa[i].aad = random_bytes(rng, rng() % 2 ? 12 : 8);
        xb[i].data = xa[i].data;
        xb[i].aad = xa[i].aad;
        xa[i].bind(ka.get(), nonce);
        xb[i].bind(kb.get(), nonce);
        oa[i] = xa[i].op;
        ob[i] = xb[i].op;
      }
      uint8_t ok[kMaxBurst];
      REQUIRE(a->encrypt(*w, oa.data(), n, ok) == n);
      REQUIRE(b->encrypt(*w, ob.data(), n, ok) == n);
      for (uint32_t i = 0; i < n; ++i) {
        INFO(name(c) << " round " << round << " op " << i << " len " << xa[i].data.size() << " aad "
                     << xa[i].aad.size());
        REQUIRE(xa[i].data == xb[i].data);
        REQUIRE(xa[i].tag == xb[i].tag);
      }
      // Each decrypts the other's output; tamper with some ops.
      std::vector<int> tampered(n, 0);
      for (uint32_t i = 0; i < n; ++i) {
        const int kind = static_cast<int>(rng() % 6);  // 0..2 tamper, else leave
        if (kind == 0 && !xb[i].data.empty()) xb[i].data[rng() % xb[i].data.size()] ^= 1;
        if (kind == 1) xb[i].aad[rng() % xb[i].aad.size()] ^= 0x80;
        if (kind == 2) xb[i].tag[rng() % kIcvLen] ^= 4;
        tampered[i] = kind <= 2 && !(kind == 0 && xb[i].data.empty());
        ob[i] = xb[i].op;
        ob[i].key = ka.get();  // decrypted by the other backend, with its key state
        oa[i].key = kb.get();
        ob[i].key = ka.get();  // decrypted by the other backend, with its key state
        oa[i].key = kb.get();
      }
      const uint32_t good = a->decrypt(*w, ob.data(), n, ok);
      uint32_t expect = 0;
      for (uint32_t i = 0; i < n; ++i) {
        CHECK(ok[i] == !tampered[i]);
        expect += !tampered[i];
      }
      CHECK(good == expect);
      CHECK(b->decrypt(*w, oa.data(), n, ok) == n);
    }
  }
}

TEST_CASE("aead: backend selection") {
  for (Cipher c : {Cipher::aes256_gcm, Cipher::chacha20_poly1305}) {
    auto b = choose_backend("auto", c);
    REQUIRE(b.has_value());
    CHECK(aead_impl(*b, c) != nullptr);
    if (aead_impl(Backend::ipsec_mb, c) != nullptr) CHECK(*b == Backend::ipsec_mb);
  }
  CHECK(choose_backend("sodium", Cipher::chacha20_poly1305).value() == Backend::sodium);
  CHECK_FALSE(choose_backend("openssl", Cipher::aes256_gcm).has_value());
  CHECK_FALSE(backend_description(Backend::ipsec_mb).empty());
}
