// Noise IK against the Noise test vectors (the cacophony set's
// Noise_IK_25519_ChaChaPoly_SHA256, prologue "John Galt"), and its refusals.
#include "crypto/noise.hpp"

#include <catch2/catch.hpp>

#include <string>

namespace gl::crypto::noise {
namespace {

std::vector<uint8_t> unhex(const std::string& s) {
  std::vector<uint8_t> v;
  for (size_t i = 0; i + 1 < s.size(); i += 2)
    v.push_back(static_cast<uint8_t>(std::stoi(s.substr(i, 2), nullptr, 16)));
  return v;
}
Key key(const std::string& s) {
  Key k{};
  const auto v = unhex(s);
  REQUIRE(v.size() == k.size());
  std::copy(v.begin(), v.end(), k.begin());
  return k;
}
std::vector<uint8_t> bytes(const std::string& s) {
  return {s.begin(), s.end()};
}

}  // namespace

TEST_CASE("noise: Noise_IK_25519_ChaChaPoly_SHA256 test vector, both sides", "[noise]") {
  const auto prologue = bytes("John Galt");
  const KeyPair is = KeyPair::from_private(
      key("e61ef9919cde45dd5f82166404bd08e38bceb5dfdfded0a34c8df7ed542214d1"));
  const KeyPair ie = KeyPair::from_private(
      key("893e28b9dc6ca8d611ab664754b8ceb7bac5117349a4439a6b0569da977c464a"));
  const KeyPair rs = KeyPair::from_private(
      key("4a3acbfdb163dec651dfa3194dece676d437029c62a408b4c5ea9114246e4893"));
  const KeyPair re = KeyPair::from_private(
      key("bbdb4cdbd309f1a1f2e1456967fe288cadd6f712d65dc7b7793d5e63da6b375b"));
  auto init = HandshakeIK::initiator(is, rs.pub, prologue, &ie);
  auto resp = HandshakeIK::responder(rs, prologue, &re);

  const auto m1 = init.write_message1(unhex("4c756477696720766f6e204d69736573"));
  CHECK(m1 == unhex("ca35def5ae56cec33dc2036731ab14896bc4c75dbb07a61f879f8e3afa4c7944"
                    "718da798efbcd91528520204f904b9bd6c7413dccdc214d951e15253e39987f1"
                    "8146e8cd0873654207148333479d4d16c289f0294b29960a72f48e0b7bba2e89"
                    "083169825e59642148d492020664ccf7"));
  const auto p1 = resp.read_message1(m1);
  REQUIRE(p1);
  CHECK(*p1 == bytes("Ludwig von Mises"));
  CHECK(resp.remote_static() == is.pub);

  const auto m2 = resp.write_message2(unhex("4d757272617920526f746862617264"));
  CHECK(m2 == unhex("95ebc60d2b1fa672c1f46a8aa265ef51bfe38e7ccb39ec5be34069f144808843"
                    "5361e70b2ed446e6c9ec387d1d6b3b840f194e373979d241b203c4acafccf5"));
  const auto p2 = init.read_message2(m2);
  REQUIRE(p2);
  CHECK(*p2 == bytes("Murray Rothbard"));
  const auto hash = unhex("0b0f68fb0c27e03ce9b97565995ed4838cc0581b762ef72b062f6a546419fad7");
  CHECK(std::vector<uint8_t>(init.handshake_hash().begin(), init.handshake_hash().end()) == hash);
  CHECK(std::vector<uint8_t>(resp.handshake_hash().begin(), resp.handshake_hash().end()) == hash);

  // Transport: initiator -> responder on the first cipher, the reply on the second.
  auto [i_send, i_recv] = init.split();
  auto [r_recv, r_send] = resp.split();
  std::vector<uint8_t> t1;
  REQUIRE(i_send.encrypt({}, unhex("462e20412e20486179656b"), t1));
  CHECK(t1 == unhex("050e9f3c8fac16b68dbce8f8c4bfbf6617c897f9ada4aa29aa19c8"));
  CHECK(r_recv.decrypt({}, t1) == std::optional(unhex("462e20412e20486179656b")));
  std::vector<uint8_t> t2;
  REQUIRE(r_send.encrypt({}, unhex("4361726c204d656e676572"), t2));
  CHECK(t2 == unhex("344233a6cabb7141d80f3da2fedc311d9646bbb0f505afe403a667"));
  std::vector<uint8_t> t3;
  REQUIRE(i_send.encrypt({}, unhex("4a65616e2d426170746973746520536179"), t3));
  CHECK(t3 == unhex("62cdeeb172ad7ade7aa7d9e069da5790f12331bfa00177787a1d0810c67dc3b2b4"));
  CHECK(i_recv.decrypt({}, t2) == std::optional(unhex("4361726c204d656e676572")));
}

TEST_CASE("noise: a tampered message, another responder key or a low-order key fail", "[noise]") {
  const auto prologue = bytes("p");
  const KeyPair a = KeyPair::generate(), b = KeyPair::generate(), c = KeyPair::generate();
  {
    auto init = HandshakeIK::initiator(a, b.pub, prologue);
    auto m1 = init.write_message1(bytes("hello"));
    REQUIRE(m1.size() == HandshakeIK::kMsg1Overhead + 5);
    for (size_t at : {size_t{0}, size_t{40}, m1.size() - 1}) {
      auto bad = m1;
      bad[at] ^= 1;
      auto resp = HandshakeIK::responder(b, prologue);
      CHECK_FALSE(resp.read_message1(bad));
      CHECK(resp.write_message2({}).empty());  // a failed handshake is spent
    }
    auto wrong = HandshakeIK::responder(c, prologue);  // not the key the initiator meant
    CHECK_FALSE(wrong.read_message1(m1));
    auto other_prologue = HandshakeIK::responder(b, bytes("q"));
    CHECK_FALSE(other_prologue.read_message1(m1));
    auto resp = HandshakeIK::responder(b, prologue);
    REQUIRE(resp.read_message1(m1));
    auto m2 = resp.write_message2({});
    m2[5] ^= 0x80;
    CHECK_FALSE(init.read_message2(m2));
  }
  // A responder key of low order (all zero): the DH result is zero, refused.
  auto init = HandshakeIK::initiator(a, Key{}, prologue);
  CHECK(init.write_message1({}).empty());
  // Truncated messages.
  auto resp = HandshakeIK::responder(b, prologue);
  CHECK_FALSE(resp.read_message1(std::vector<uint8_t>(HandshakeIK::kMsg1Overhead - 1)));
}

}  // namespace gl::crypto::noise
