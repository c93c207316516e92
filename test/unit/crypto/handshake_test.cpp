// glctld's host handshake: the SAs both sides derive, and every refusal (unknown peer,
// replay, tampering, another host's key, stale indexes), and the cookie round under load.
#include "crypto/handshake.hpp"

#include <catch2/catch.hpp>

#include <map>
#include <set>

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
  Initiator i(a.key, b.key.pub, 7, 0x1000, 2, Cipher::chacha20_poly1305, tai64n(1000, 5));
  REQUIRE(i.message().size() == kInitLen);
  CHECK(message_type(i.message()) == kTypeInit);
  std::vector<uint8_t> reply;
  auto acc = r.consume_init(i.message(), kSrc, false, reg.lookup(), 9, 0x2000, 3, reply);
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
  // a -> b on b's SPI block, b -> a on a's; each side sends on as many SAs as it said
  // (a: 2, b: 3) and expects as many as the other said.
  CHECK(sa->spi_out == 0x2000);
  CHECK(sa->spi_in == 0x1000);
  CHECK(sa->n_out == 2);
  CHECK(sa->n_in == 3);
  CHECK(acc->sa.spi_in == 0x2000);
  CHECK(acc->sa.spi_out == 0x1000);
  CHECK(acc->sa.n_out == 3);
  CHECK(acc->sa.n_in == 2);
  // The same key on both ends of every SA; every SA its own key.
  std::set<std::array<uint8_t, 32>> keys;
  for (uint32_t c = 0; c < 2; ++c) {
    const SaKeys o = sa->out_sa(c), in = acc->sa.in_sa(c);
    CHECK(o.spi == 0x2000 + c);
    CHECK(in.spi == o.spi);
    CHECK(o.key == in.key);
    CHECK(o.salt == in.salt);
    keys.insert(o.key);
  }
  for (uint32_t c = 0; c < 3; ++c) {
    const SaKeys o = acc->sa.out_sa(c), in = sa->in_sa(c);
    CHECK(o.spi == 0x1000 + c);
    CHECK(in.spi == o.spi);
    CHECK(o.key == in.key);
    CHECK(o.salt == in.salt);
    keys.insert(o.key);
  }
  CHECK(keys.size() == 5);
  // Confirm and its ack: each opens only at the other end, only for this pair.
  const auto conf = sa->confirm();
  CHECK(conf.size() == kConfirmLen);
  CHECK(message_type(conf) == kTypeConfirm);
  CHECK(receiver_index(conf) == 9);
  CHECK(acc->sa.check_confirm(conf));
  CHECK_FALSE(sa->check_confirm(conf));  // its own message
  auto bent = conf;
  bent[20] ^= 1;
  CHECK_FALSE(acc->sa.check_confirm(bent));
  const auto ack = acc->sa.confirm();
  CHECK(message_type(ack) == kTypeConfirmAck);
  CHECK(receiver_index(ack) == 7);
  CHECK(sa->check_confirm(ack));
  CHECK_FALSE(acc->sa.check_confirm(ack));
  // A second handshake between the same hosts: new ephemerals, new keys.
  Initiator i2(a.key, b.key.pub, 8, 0x1000, 2, Cipher::chacha20_poly1305, tai64n(1001, 0));
  auto acc2 = r.consume_init(i2.message(), kSrc, false, reg.lookup(), 10, 0x2000, 3, reply);
  REQUIRE(acc2);
  auto sa2 = i2.consume_response(acc2->response);
  REQUIRE(sa2);
  CHECK(sa2->out_sa(0).key != sa->out_sa(0).key);
  CHECK_FALSE(acc->sa.check_confirm(sa2->confirm()));  // another handshake's confirm
}

TEST_CASE("handshake: an unknown or revoked host, another host's key, tampering: refused",
          "[handshake]") {
  Host a, b, c;
  Registry reg;
  Responder r(b.key);
  std::vector<uint8_t> reply;
  Initiator i(a.key, b.key.pub, 1, 0x110, 2, Cipher::aes256_gcm, tai64n(50, 0));
  // Not registered (or removed: the lookup is the registry as it is now).
  auto e = r.consume_init(i.message(), kSrc, false, reg.lookup(), 2, 0x220, 3, reply);
  REQUIRE_FALSE(e);
  CHECK(e.error() == Error::kUnknownPeer);
  reg.peers[a.key.pub] = {};
  // Meant for another host's key: mac1 does not verify, no DH is done.
  Initiator ic(a.key, c.key.pub, 1, 0x110, 2, Cipher::aes256_gcm, tai64n(51, 0));
  e = r.consume_init(ic.message(), kSrc, false, reg.lookup(), 2, 0x220, 3, reply);
  REQUIRE_FALSE(e);
  CHECK(e.error() == Error::kBadMac1);
  // Any changed byte before mac1 breaks it; truncation and a foreign type are refused.
  for (size_t at : {size_t{4}, size_t{20}, size_t{100}, kInitLen - 20}) {
    auto bad = i.message();
    bad[at] ^= 0x01;
    e = r.consume_init(bad, kSrc, false, reg.lookup(), 2, 0x220, 3, reply);
    REQUIRE_FALSE(e);
    CHECK(e.error() == Error::kBadMac1);
  }
  auto shorter = i.message();
  shorter.pop_back();
  CHECK(r.consume_init(shorter, kSrc, false, reg.lookup(), 2, 0x220, 3, reply).error() ==
        Error::kTruncated);
  auto other = i.message();
  other[1] = 2;  // another version
  CHECK(r.consume_init(other, kSrc, false, reg.lookup(), 2, 0x220, 3, reply).error() ==
        Error::kBadType);
  // A host's key that signs for itself only: c cannot pass as a (its own key is what
  // the responder sees, and c is unknown).
  Initiator imp(c.key, b.key.pub, 1, 0x110, 2, Cipher::aes256_gcm, tai64n(52, 0));
  CHECK(r.consume_init(imp.message(), kSrc, false, reg.lookup(), 2, 0x220, 3, reply).error() ==
        Error::kUnknownPeer);
  // A genuine init still works after all that.
  auto ok = r.consume_init(i.message(), kSrc, false, reg.lookup(), 2, 0x220, 3, reply);
  REQUIRE(ok);
  // The response: tampered, or for another handshake index, or replayed to a finished one.
  auto resp = ok->response;
  resp[30] ^= 0x40;
  CHECK(i.consume_response(resp).error() == Error::kBadMac1);
  Initiator other_idx(a.key, b.key.pub, 99, 0x110, 2, Cipher::aes256_gcm, tai64n(53, 0));
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
  Initiator i(a.key, b.key.pub, 1, 0x110, 2, Cipher::aes256_gcm, tai64n(2000, 10));
  auto acc = r.consume_init(i.message(), kSrc, false, reg.lookup(), 2, 0x220, 3, reply);
  REQUIRE(acc);
  reg.peers[a.key.pub].last = acc->timestamp;  // what glctld keeps per peer
  auto again = r.consume_init(i.message(), kSrc, false, reg.lookup(), 3, 0x230, 3, reply);
  REQUIRE_FALSE(again);
  CHECK(again.error() == Error::kReplay);
  Initiator older(a.key, b.key.pub, 4, 0x110, 2, Cipher::aes256_gcm, tai64n(1999, 999999999));
  CHECK(r.consume_init(older.message(), kSrc, false, reg.lookup(), 5, 0x240, 3, reply).error() ==
        Error::kReplay);
  Initiator newer(a.key, b.key.pub, 6, 0x110, 2, Cipher::aes256_gcm, tai64n(2000, 11));
  CHECK(r.consume_init(newer.message(), kSrc, false, reg.lookup(), 7, 0x250, 3, reply));
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
  Initiator i(a.key, b.key.pub, 3, 0x110, 2, Cipher::aes256_gcm, tai64n(3000, 0));
  // Unknown senders cost a MAC and a cookie message, nothing else (no lookup is made).
  bool looked = false;
  Responder::Lookup spy = [&](const noise::Key& k) {
    looked = true;
    return reg.lookup()(k);
  };
  auto e = r.consume_init(i.message(), kSrc, true, spy, 4, 0x220, 3, reply);
  REQUIRE_FALSE(e);
  CHECK(e.error() == Error::kCookieSent);
  CHECK_FALSE(looked);
  REQUIRE(reply.size() == kCookieLen);
  CHECK(message_type(reply) == kTypeCookie);
  // Another handshake's cookie, or a tampered one, is not taken.
  Initiator j(a.key, b.key.pub, 4, 0x110, 2, Cipher::aes256_gcm, tai64n(3000, 1));
  CHECK_FALSE(j.consume_cookie(reply));
  auto bad = reply;
  bad[40] ^= 1;
  CHECK_FALSE(i.consume_cookie(bad));
  REQUIRE(i.consume_cookie(reply));
  // With the cookie's mac2 it passes, from that address only.
  const std::vector<uint8_t> elsewhere = {10, 0, 0, 2, 0x1c, 0xf3};
  CHECK(r.consume_init(i.message(), elsewhere, true, spy, 4, 0x220, 3, reply).error() ==
        Error::kCookieSent);
  auto acc = r.consume_init(i.message(), kSrc, true, spy, 4, 0x220, 3, reply);
  REQUIRE(acc);
  CHECK(i.consume_response(acc->response));
  // After the secret rotates (two minutes) the old cookie is worth nothing.
  Initiator k(a.key, b.key.pub, 5, 0x110, 2, Cipher::aes256_gcm, tai64n(3001, 0));
  REQUIRE(r.consume_init(k.message(), kSrc, true, spy, 6, 0x220, 3, reply).error() ==
          Error::kCookieSent);
  REQUIRE(k.consume_cookie(reply));
  r.tick(60);  // not yet
  CHECK(r.consume_init(k.message(), kSrc, true, spy, 6, 0x220, 3, reply));
  Initiator l(a.key, b.key.pub, 7, 0x110, 2, Cipher::aes256_gcm, tai64n(3002, 0));
  REQUIRE(r.consume_init(l.message(), kSrc, true, spy, 8, 0x220, 3, reply).error() ==
          Error::kCookieSent);
  REQUIRE(l.consume_cookie(reply));
  r.tick(200);
  CHECK(r.consume_init(l.message(), kSrc, true, spy, 8, 0x220, 3, reply).error() ==
        Error::kCookieSent);
}

TEST_CASE("handshake: SPI blocks and sender counts out of range are refused", "[handshake]") {
  Host a, b;
  Registry reg;
  reg.peers[a.key.pub] = {};
  Responder r(b.key);
  std::vector<uint8_t> reply;
  // A caller's bad arguments make no message at all.
  CHECK(Initiator(a.key, b.key.pub, 1, 0x111, 2, Cipher::aes256_gcm, tai64n(60, 0))
            .message()
            .empty());
  CHECK(Initiator(a.key, b.key.pub, 1, 0x110, 0, Cipher::aes256_gcm, tai64n(60, 0))
            .message()
            .empty());
  CHECK(Initiator(a.key, b.key.pub, 1, 0x110, kMaxSenders + 1, Cipher::aes256_gcm, tai64n(60, 0))
            .message()
            .empty());
  Initiator i(a.key, b.key.pub, 1, 0x110, kMaxSenders, Cipher::aes256_gcm, tai64n(60, 0));
  CHECK(r.consume_init(i.message(), kSrc, false, reg.lookup(), 2, 0x221, 3, reply).error() ==
        Error::kBadPayload);
  CHECK(r.consume_init(i.message(), kSrc, false, reg.lookup(), 2, 0x220, 0, reply).error() ==
        Error::kBadPayload);
  auto acc = r.consume_init(i.message(), kSrc, false, reg.lookup(), 2, 0x220, 1, reply);
  REQUIRE(acc);
  CHECK(acc->sa.n_in == kMaxSenders);
}

}  // namespace gl::crypto::hs
