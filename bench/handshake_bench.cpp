// handshake_bench.cpp — glctld's host handshake (crypto/handshake.hpp) on one core: how
// many handshakes per second each side can do, next to the X25519 limit measured in the
// same run (a Noise IK side costs one key generation and four DH operations; the
// initiator also computes the responder-independent es/ss, the responder its own).
//
//   build/bench/gl-bench-handshake [--seconds S] [--json FILE]
//
// Printed: X25519 scalar multiplications per second (the limit), initiator messages
// made, responder inits consumed (DH included) with responses made, initiator responses
// consumed, full handshakes (all of it, plus deriving 2+2 SA keys and the confirm round)
// per second, and the cost of a forged init that stops at mac1 or at the cookie (no DH).
// Nothing is asserted.
#include <sodium.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "crypto/handshake.hpp"

namespace {

using Clock = std::chrono::steady_clock;
namespace hs = gl::crypto::hs;
namespace noise = gl::crypto::noise;

// Runs fn until `seconds` passed; returns operations per second.
double rate(double seconds, const std::function<void()>& fn) {
  const auto t0 = Clock::now();
  uint64_t n = 0;
  double el = 0;
  do {
    for (int i = 0; i < 16; ++i) fn();
    n += 16;
    el = std::chrono::duration<double>(Clock::now() - t0).count();
  } while (el < seconds);
  return static_cast<double>(n) / el;
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 1.0;
  std::string json_path;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      std::puts(
          "usage: gl-bench-handshake [--seconds S] [--json FILE]\n"
          "glctld's Noise IK host handshake on one core, next to the X25519 limit.");
      return 0;
    }
    if (a == "--seconds" && i + 1 < argc) {
      seconds = std::atof(argv[++i]);
      if (seconds <= 0) {
        std::fprintf(stderr, "gl-bench-handshake: --seconds wants a positive number\n");
        return 2;
      }
    } else if (a == "--json" && i + 1 < argc) {
      json_path = argv[++i];
    } else {
      std::fprintf(stderr, "gl-bench-handshake: unknown argument '%s' (try --help)\n", a.c_str());
      return 2;
    }
  }
  if (sodium_init() < 0) return 1;
  const noise::KeyPair a = noise::KeyPair::generate(), b = noise::KeyPair::generate();
  std::map<noise::Key, hs::Responder::PeerState> peers;
  peers[a.pub] = {};
  auto lookup = [&](const noise::Key& k) -> std::optional<hs::Responder::PeerState> {
    auto it = peers.find(k);
    if (it == peers.end()) return std::nullopt;
    return it->second;
  };
  hs::Responder r(b);
  const std::vector<uint8_t> src = {192, 0, 2, 1, 0x12, 0xbd};
  uint64_t ts = 1;

  uint8_t out[32], scalar[32];
  randombytes_buf(scalar, sizeof scalar);
  int sink = 0;
  const double x25519 =
      rate(seconds, [&] { sink |= crypto_scalarmult(out, scalar, b.pub.data()); });
  if (sink != 0) std::fprintf(stderr, "(a scalar multiplication failed)\n");

  const double init_make = rate(seconds, [&] {
    hs::Initiator i(a, b.pub, 7, 0x1000, 2, gl::crypto::Cipher::aes256_gcm, hs::tai64n(ts++, 0));
  });

  // Inits made ahead, so the responder alone is timed.
  std::vector<std::vector<uint8_t>> inits;
  for (int k = 0; k < 4096; ++k)
    inits.push_back(
        hs::Initiator(a, b.pub, 7, 0x1000, 2, gl::crypto::Cipher::aes256_gcm, hs::tai64n(ts++, 0))
            .message());
  size_t next = 0;
  std::vector<uint8_t> reply;
  const double respond = rate(seconds, [&] {
    peers[a.pub] = {};  // replay state reset: the same inits again
    auto acc =
        r.consume_init(inits[next++ % inits.size()], src, false, lookup, 9, 0x2000, 2, reply);
    if (!acc) std::abort();
  });

  const double full = rate(seconds, [&] {
    hs::Initiator i(a, b.pub, 7, 0x1000, 2, gl::crypto::Cipher::aes256_gcm, hs::tai64n(ts++, 0));
    auto acc = r.consume_init(i.message(), src, false, lookup, 9, 0x2000, 2, reply);
    if (!acc) std::abort();
    peers[a.pub].last = acc->timestamp;
    auto sa = i.consume_response(acc->response);
    if (!sa) std::abort();
    for (uint32_t c = 0; c < 2; ++c) {
      (void)sa->out_sa(c);
      (void)sa->in_sa(c);
      (void)acc->sa.out_sa(c);
      (void)acc->sa.in_sa(c);
    }
    if (!acc->sa.check_confirm(sa->confirm()) || !sa->check_confirm(acc->sa.confirm()))
      std::abort();
  });

  // Forged inits: one with a wrong mac1 (stops there), one under load without mac2 (a
  // cookie is made and sealed; no DH).
  std::vector<uint8_t> forged = inits[0];
  forged[10] ^= 1;
  const double bad_mac1 =
      rate(seconds, [&] { (void)r.consume_init(forged, src, false, lookup, 9, 0x2000, 2, reply); });
  const double cookie = rate(
      seconds, [&] { (void)r.consume_init(inits[0], src, true, lookup, 9, 0x2000, 2, reply); });

  std::printf("gl-bench-handshake: Noise_IK_25519_ChaChaPoly_SHA256, one core, libsodium %s\n",
              sodium_version_string());
  std::printf("%-46s %12s\n", "operation", "per second");
  std::printf("%-46s %12.0f\n", "X25519 scalar multiplication (the limit)", x25519);
  std::printf("%-46s %12.0f\n", "initiator: make an init", init_make);
  std::printf("%-46s %12.0f\n", "responder: consume an init, make the response", respond);
  std::printf("%-46s %12.0f\n", "full handshake (both sides, 4 SA keys, confirm)", full);
  std::printf("%-46s %12.0f\n", "forged init refused at mac1", bad_mac1);
  std::printf("%-46s %12.0f\n", "forged init under load: cookie reply (no DH)", cookie);
  std::printf(
      "full handshakes per second = %.1f%% of X25519/10 (ten scalar multiplications a "
      "handshake, both sides)\n",
      100.0 * full / (x25519 / 10));
  if (!json_path.empty()) {
    FILE* f = json_path == "-" ? stdout : std::fopen(json_path.c_str(), "w");
    if (f == nullptr) {
      std::perror(json_path.c_str());
      return 1;
    }
    std::fprintf(f,
                 "{\"x25519_per_s\": %.0f, \"init_make_per_s\": %.0f, \"respond_per_s\": %.0f, "
                 "\"full_handshakes_per_s\": %.0f, \"forged_mac1_per_s\": %.0f, "
                 "\"cookie_per_s\": %.0f}\n",
                 x25519, init_make, respond, full, bad_mac1, cookie);
    if (f != stdout) std::fclose(f);
  }
  return 0;
}
