// glctld's host handshake: the SAs both sides derive, and every refusal (unknown peer,
// replay, tampering, another host's key, stale indexes), and the cookie round under load.
#include "crypto/handshake.hpp"

#include <catch2/catch.hpp>

#include <map>

namespace gl::crypto::hs {
namespace {

struct Host {
  noise::KeyPair key = noise::KeyPair::generate();
};

// The responder's view of the cluster: registered public keys and their last timestamps.
struct Registry {
  std::map<noise::Key, Responder::PeerState> peers;
  Responder::Lookup lookup() {
    return [this](const noise::Key& k) -> std::optional<Responder::PeerState> {
      auto it = peers.find(k);
      if (it == peers.end()) return std::nullopt;
      return it->second;
    };
  }
};

const std::vector<uint8_t> kSrc = {10, 0, 0, 1, 0x1c, 0xf3};  // address and port bytes

}  // namespace

TEST_CASE("handshake: both hosts derive the same two SAs, each SPI its receiver's", "[handshake]") {
  Host a, b;
  Registry reg;
  reg.peers[a.key.pub] = {};
  Responder r(b.key);
  Initiator i(a.key, b.key.pub, 7, 0x1001, Cipher::chacha20_poly1305, tai64n(1000, 5));
  REQUIRE(i.message().size() == kInitLen);
  CHECK(message_type(i.message()) == kTypeInit);
  std::vector<uint8_t> reply;
  auto acc = r.consume_init(i.message(), kSrc, false, reg.lookup(), 9, 0x2002, reply);
  REQUIRE(acc);
  CHECK(reply.empty());
  CHECK(acc->response.size() == kResponseLen);
  CHECK(acc->sa.peer == a.key.pub);
  CHECK(acc->sa.peer_index == 7);
  CHECK(acc->timestamp == tai64n(1000, 5));
  auto sa = i.consume_response(acc->response);
  REQUIRE(sa);
  CHECK(sa->peer_index == 9);
  CHECK(sa->cipher == Cipher::chacha20_poly1305);
  CHECK(acc->sa.cipher == Cipher::chacha20_poly1305);
  // a -> b on b's SPI, b -> a on a's, the same keys on both ends, the two directions apart.
  CHECK(sa->out.spi == 0x2002);
  CHECK(sa->in.spi == 0x1001);
  CHECK(acc->sa.in.spi == 0x2002);
  CHECK(acc->sa.out.spi == 0x1001);
  CHECK(sa->out.key == acc->sa.in.key);
  CHECK(sa->out.salt == acc->sa.in.salt);
  CHECK(sa->in.key == acc->sa.out.key);
  CHECK(sa->in.salt == acc->sa.out.salt);
  CHECK(sa->in.key != sa->out.key);
  // A second handshake between the same hosts: new ephemerals, new keys.
  Initiator i2(a.key, b.key.pub, 8, 0x1001, Cipher::chacha20_poly1305, tai64n(1001, 0));
  auto acc2 = r.consume_init(i2.message(), kSrc, false, reg.lookup(), 10, 0x2002, reply);
  REQUIRE(acc2);
  auto sa2 = i2.consume_response(acc2->response);
  REQUIRE(sa2);
  CHECK(sa2->out.key != sa->out.key);
}

TEST_CASE("handshake: an unknown or revoked host, another host's key, tampering: refused",
          "[handshake]") {
  Host a, b, c;
  Registry reg;
  Responder r(b.key);
  std::vector<uint8_t> reply;
  Initiator i(a.key, b.key.pub, 1, 0x11, Cipher::aes256_gcm, tai64n(50, 0));
  // Not registered (or removed: the lookup is the registry as it is now).
  auto e = r.consume_init(i.message(), kSrc, false, reg.lookup(), 2, 0x22, reply);
  REQUIRE_FALSE(e);
  CHECK(e.error() == Error::kUnknownPeer);
  reg.peers[a.key.pub] = {};
  // Meant for another host's key: mac1 does not verify, no DH is done.
  Initiator ic(a.key, c.key.pub, 1, 0x11, Cipher::aes256_gcm, tai64n(51, 0));
  e = r.consume_init(ic.message(), kSrc, false, reg.lookup(), 2, 0x22, reply);
  REQUIRE_FALSE(e);
  CHECK(e.error() == Error::kBadMac1);
  // Any changed byte before mac1 breaks it; truncation and a foreign type are refused.
  for (size_t at : {size_t{4}, size_t{20}, size_t{100}, kInitLen - 20}) {
    auto bad = i.message();
    bad[at] ^= 0x01;
    e = r.consume_init(bad, kSrc, false, reg.lookup(), 2, 0x22, reply);
    REQUIRE_FALSE(e);
    CHECK(e.error() == Error::kBadMac1);
  }
  auto shorter = i.message();
  shorter.pop_back();
  CHECK(r.consume_init(shorter, kSrc, false, reg.lookup(), 2, 0x22, reply).error() ==
        Error::kTruncated);
  auto other = i.message();
  other[1] = 2;  // another version
  CHECK(r.consume_init(other, kSrc, false, reg.lookup(), 2, 0x22, reply).error() ==
        Error::kBadType);
  // A host's key that signs for itself only: c cannot pass as a (its own key is what
  // the responder sees, and c is unknown).
  Initiator imp(c.key, b.key.pub, 1, 0x11, Cipher::aes256_gcm, tai64n(52, 0));
  CHECK(r.consume_init(imp.message(), kSrc, false, reg.lookup(), 2, 0x22, reply).error() ==
        Error::kUnknownPeer);
  // A genuine init still works after all that.
  auto ok = r.consume_init(i.message(), kSrc, false, reg.lookup(), 2, 0x22, reply);
  REQUIRE(ok);
  // The response: tampered, or for another handshake index, or replayed to a finished one.
  auto resp = ok->response;
  resp[30] ^= 0x40;
  CHECK(i.consume_response(resp).error() == Error::kBadMac1);
  Initiator other_idx(a.key, b.key.pub, 99, 0x11, Cipher::aes256_gcm, tai64n(53, 0));
  CHECK(other_idx.consume_response(ok->response).error() == Error::kBadIndex);
  REQUIRE(i.consume_response(ok->response));
  CHECK_FALSE(i.consume_response(ok->response));  // the handshake is spent
}

TEST_CASE("handshake: a replayed or older init is refused by its timestamp", "[handshake]") {
  Host a, b;
  Registry reg;
  reg.peers[a.key.pub] = {};
  Responder r(b.key);
  std::vector<uint8_t> reply;
  Initiator i(a.key, b.key.pub, 1, 0x11, Cipher::aes256_gcm, tai64n(2000, 10));
  auto acc = r.consume_init(i.message(), kSrc, false, reg.lookup(), 2, 0x22, reply);
  REQUIRE(acc);
  reg.peers[a.key.pub].last = acc->timestamp;  // what glctld keeps per peer
  auto again = r.consume_init(i.message(), kSrc, false, reg.lookup(), 3, 0x23, reply);
  REQUIRE_FALSE(again);
  CHECK(again.error() == Error::kReplay);
  Initiator older(a.key, b.key.pub, 4, 0x11, Cipher::aes256_gcm, tai64n(1999, 999999999));
  CHECK(r.consume_init(older.message(), kSrc, false, reg.lookup(), 5, 0x24, reply).error() ==
        Error::kReplay);
  Initiator newer(a.key, b.key.pub, 6, 0x11, Cipher::aes256_gcm, tai64n(2000, 11));
  CHECK(r.consume_init(newer.message(), kSrc, false, reg.lookup(), 7, 0x25, reply));
  // Timestamps order as time does (seconds first, then nanoseconds).
  CHECK(tai64n(1, 999999999) < tai64n(2, 0));
}

TEST_CASE("handshake: under load an init must carry a cookie for its source address",
          "[handshake]") {
  Host a, b;
  Registry reg;
  reg.peers[a.key.pub] = {};
  Responder r(b.key);
  r.tick(1);
  std::vector<uint8_t> reply;
  Initiator i(a.key, b.key.pub, 3, 0x11, Cipher::aes256_gcm, tai64n(3000, 0));
  // Unknown senders cost a MAC and a cookie message, nothing else (no lookup is made).
  bool looked = false;
  Responder::Lookup spy = [&](const noise::Key& k) {
    looked = true;
    return reg.lookup()(k);
  };
  auto e = r.consume_init(i.message(), kSrc, true, spy, 4, 0x22, reply);
  REQUIRE_FALSE(e);
  CHECK(e.error() == Error::kCookieSent);
  CHECK_FALSE(looked);
  REQUIRE(reply.size() == kCookieLen);
  CHECK(message_type(reply) == kTypeCookie);
  // Another handshake's cookie, or a tampered one, is not taken.
  Initiator j(a.key, b.key.pub, 4, 0x11, Cipher::aes256_gcm, tai64n(3000, 1));
  CHECK_FALSE(j.consume_cookie(reply));
  auto bad = reply;
  bad[40] ^= 1;
  CHECK_FALSE(i.consume_cookie(bad));
  REQUIRE(i.consume_cookie(reply));
  // With the cookie's mac2 it passes, from that address only.
  const std::vector<uint8_t> elsewhere = {10, 0, 0, 2, 0x1c, 0xf3};
  CHECK(r.consume_init(i.message(), elsewhere, true, spy, 4, 0x22, reply).error() ==
        Error::kCookieSent);
  auto acc = r.consume_init(i.message(), kSrc, true, spy, 4, 0x22, reply);
  REQUIRE(acc);
  CHECK(i.consume_response(acc->response));
  // After the secret rotates (two minutes) the old cookie is worth nothing.
  Initiator k(a.key, b.key.pub, 5, 0x11, Cipher::aes256_gcm, tai64n(3001, 0));
  REQUIRE(r.consume_init(k.message(), kSrc, true, spy, 6, 0x22, reply).error() ==
          Error::kCookieSent);
  REQUIRE(k.consume_cookie(reply));
  r.tick(60);  // not yet
  CHECK(r.consume_init(k.message(), kSrc, true, spy, 6, 0x22, reply));
  Initiator l(a.key, b.key.pub, 7, 0x11, Cipher::aes256_gcm, tai64n(3002, 0));
  REQUIRE(r.consume_init(l.message(), kSrc, true, spy, 8, 0x22, reply).error() ==
          Error::kCookieSent);
  REQUIRE(l.consume_cookie(reply));
  r.tick(200);
  CHECK(r.consume_init(l.message(), kSrc, true, spy, 8, 0x22, reply).error() == Error::kCookieSent);
}

}  // namespace gl::crypto::hs
