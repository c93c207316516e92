// esp_bench.cpp — gl-bench-esp: ESP tunnel-mode encrypt and decrypt (with anti-replay)
// per core, next to the raw AEAD limit measured in the same run.
//
// Purpose: for each backend (libsodium, intel-ipsec-mb), cipher (AES-256-GCM,
// ChaCha20-Poly1305) and size (64, 512, 1400 B and IMIX 7:4:1 of 64/576/1500 B) it
// prints packets/s, Gbit/s and TSC cycles per packet of
//   raw   the bare AEAD on buffers of the same sizes with a 12-byte AAD: an ipsec-mb
//         burst job loop, or direct libsodium calls — the limit for one core;
//   encap gl::crypto ESP tunnel encap (outer IPv4, ESN) in bursts of 32;
//   decap gl::crypto ESP decap of those packets (SPI check, ESN inference, anti-replay
//         window check and update, ICV, padding), bursts of 32;
// and the share of the raw limit each reaches. "Size" is the inner IP packet (what the
// VM sent); Gbit/s counts those bytes. Packets live in a pool of 256 that stays in L2;
// decap packets are re-encrypted between timed passes (untimed) so that every sequence
// number is new. Numbers are informative: nothing here asserts a timing.
// Thread-safety: single-threaded. Complexity: ~20 s (--quick: ~2 s).
#define NO_COMPAT_IMB_API_053 1
#include <intel-ipsec-mb.h>
#include <sodium.h>
#include <x86intrin.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "bench/bench_clock.hpp"
#include "crypto/aead.hpp"
#include "crypto/esp.hpp"
#include "crypto/sa.hpp"

using namespace gl::crypto;

namespace {

using Clock = std::chrono::steady_clock;

double g_tsc_per_ns = 1.0;

void calibrate_tsc() {
  g_tsc_per_ns = gl::bench::calibrate_tsc_per_ns();
}

constexpr uint32_t kPool = 256;  // packets per timed pass (8 bursts)
constexpr int kRounds = 5;
constexpr uint32_t kHead = 128;
constexpr uint32_t kSlot = 2048;

struct SizeMix {
  const char* name;
  std::vector<uint32_t> sizes;  // cycled over the pool
};

std::vector<SizeMix> size_mixes() {
  std::vector<uint32_t> imix;
  for (int i = 0; i < 7; ++i) imix.push_back(64);
  for (int i = 0; i < 4; ++i) imix.push_back(576);
  imix.push_back(1500);
  return {{"64", {64}}, {"512", {512}}, {"1400", {1400}}, {"IMIX", imix}};
}

// 256 packet buffers with head- and tailroom; `clear` is the state before each pass.
struct Pool {
  std::vector<uint8_t, std::allocator<uint8_t>> mem;
  uint8_t* base = nullptr;
  PktBuf bufs[kPool];
  PktBuf clear[kPool];
  PktBuf* ptrs[kPool];
  uint64_t bytes = 0;  // inner bytes per pass

  explicit Pool(const SizeMix& mix) : mem(kPool * kSlot + 64) {
    base = mem.data() + (64 - reinterpret_cast<uintptr_t>(mem.data()) % 64);
    for (uint32_t i = 0; i < kPool; ++i) {
      const uint32_t size = mix.sizes[i % mix.sizes.size()];
      uint8_t* d = base + i * kSlot + kHead;
      std::memset(d, static_cast<int>(i), size);
      d[0] = 0x45;
      clear[i] = PktBuf{d, size, kHead, kSlot - kHead - size, kProtoIpv4};
      bufs[i] = clear[i];
      ptrs[i] = &bufs[i];
      bytes += size;
    }
  }
  void reset() { std::memcpy(bufs, clear, sizeof(bufs)); }
  // Restores the clear packets' bytes too (after in-place decryption).
  void refill() {
    reset();
    for (uint32_t i = 0; i < kPool; ++i) {
      std::memset(bufs[i].data, static_cast<int>(i), bufs[i].len);
      bufs[i].data[0] = 0x45;
    }
  }
};

struct Rate {
  double pps = 0;
  double gbps = 0;
  double cycles = 0;  // TSC cycles per packet
};

// Runs `pass` (one timed pass over the pool) with `prepare` (untimed) before each, for
// about `ms` milliseconds.
template <typename Prepare, typename Pass>
Rate measure(const Pool& pool, int ms, Prepare&& prepare, Pass&& pass) {
  prepare();
  pass();  // warm up
  double ns = 0;
  uint64_t cyc = 0;
  uint64_t passes = 0;
  const auto end = Clock::now() + std::chrono::milliseconds(ms);
  while (Clock::now() < end) {
    prepare();
    const auto t0 = Clock::now();
    const uint64_t c0 = __rdtsc();
    pass();
    cyc += __rdtsc() - c0;
    ns += std::chrono::duration<double, std::nano>(Clock::now() - t0).count();
    ++passes;
  }
  Rate r;
  r.pps = static_cast<double>(passes * kPool) / ns * 1e9;
  r.gbps = static_cast<double>(passes * pool.bytes) * 8 / ns;
  r.cycles = static_cast<double>(cyc) / static_cast<double>(passes * kPool);
  return r;
}

void keep_best(Rate& best, const Rate& r) {
  if (r.pps > best.pps) best = r;
}

// ---- raw AEAD limits ------------------------------------------------------------------

Rate raw_ipsecmb(Pool& pool, Cipher c, int ms) {
  IMB_MGR* mgr = alloc_mb_mgr(0);
  init_mb_mgr_auto(mgr, nullptr);
  alignas(64) static gcm_key_data gkey;
  alignas(64) static uint8_t key[32];
  randombytes_buf(key, sizeof(key));
  IMB_AES256_GCM_PRE(mgr, key, &gkey);
  static uint8_t tags[kPool][16];
  static uint8_t aad[12];
  static uint8_t iv[12];
  auto pass = [&] {
    for (uint32_t b = 0; b < kPool; b += kMaxBurst) {
      IMB_JOB* jobs[kMaxBurst];
      IMB_GET_NEXT_BURST(mgr, kMaxBurst, jobs);
      for (uint32_t i = 0; i < kMaxBurst; ++i) {
        IMB_JOB* j = jobs[i];
        const PktBuf& p = pool.bufs[b + i];
        j->src = p.data;
        j->dst = p.data;
        j->cipher_start_src_offset_in_bytes = 0;
        j->msg_len_to_cipher_in_bytes = p.len;
        j->hash_start_src_offset_in_bytes = 0;
        j->msg_len_to_hash_in_bytes = p.len;
        j->iv = iv;
        j->iv_len_in_bytes = 12;
        j->auth_tag_output = tags[b + i];
        j->auth_tag_output_len_in_bytes = 16;
        j->key_len_in_bytes = IMB_KEY_256_BYTES;
        if (c == Cipher::aes256_gcm) {
          j->enc_keys = &gkey;
          j->dec_keys = &gkey;
          j->u.GCM.aad = aad;
          j->u.GCM.aad_len_in_bytes = 12;
          j->cipher_mode = IMB_CIPHER_GCM;
          j->hash_alg = IMB_AUTH_AES_GMAC;
        } else {
          j->enc_keys = key;
          j->dec_keys = key;
          j->u.CHACHA20_POLY1305.aad = aad;
          j->u.CHACHA20_POLY1305.aad_len_in_bytes = 12;
          j->cipher_mode = IMB_CIPHER_CHACHA20_POLY1305;
          j->hash_alg = IMB_AUTH_CHACHA20_POLY1305;
        }
        j->cipher_direction = IMB_DIR_ENCRYPT;
        j->chain_order = IMB_ORDER_CIPHER_HASH;
      }
      const uint32_t done = IMB_SUBMIT_BURST_NOCHECK(mgr, kMaxBurst, jobs);
      if (done < kMaxBurst) IMB_FLUSH_BURST(mgr, kMaxBurst - done, jobs + done);
    }
  };
  const Rate r = measure(
      pool, ms, [] {}, pass);
  free_mb_mgr(mgr);
  return r;
}

Rate raw_sodium(Pool& pool, Cipher c, int ms) {
  alignas(64) static crypto_aead_aes256gcm_state st;
  static uint8_t key[32];
  randombytes_buf(key, sizeof(key));
  if (c == Cipher::aes256_gcm) crypto_aead_aes256gcm_beforenm(&st, key);
  static uint8_t tags[kPool][16];
  static uint8_t aad[12];
  static uint8_t iv[12];
  auto pass = [&] {
    for (uint32_t i = 0; i < kPool; ++i) {
      const PktBuf& p = pool.bufs[i];
      if (c == Cipher::aes256_gcm) {
        crypto_aead_aes256gcm_encrypt_detached_afternm(p.data, tags[i], nullptr, p.data, p.len, aad,
                                                       12, nullptr, iv, &st);
      } else {
        crypto_aead_chacha20poly1305_ietf_encrypt_detached(p.data, tags[i], nullptr, p.data, p.len,
                                                           aad, 12, nullptr, iv, key);
      }
    }
  };
  return measure(
      pool, ms, [] {}, pass);
}

// ---- ESP -----------------------------------------------------------------------------

SaConfig tunnel_config(Backend b, Cipher c, Direction d) {
  SaConfig cfg;
  cfg.spi = 0x1234;
  cfg.dir = d;
  cfg.cipher = c;
  cfg.backend = b;
  cfg.local = IpAddress::v4(192, 0, 2, 1);
  cfg.remote = IpAddress::v4(192, 0, 2, 2);
  return cfg;
}

struct EspRates {
  Rate encap;
  Rate decap;
};

EspRates esp(Pool& pool, Worker& w, Backend b, Cipher c, int ms) {
  uint8_t km[kKeyMatLen];
  randombytes_buf(km, sizeof(km));
  auto out = make_sa(tunnel_config(b, c, Direction::outbound), km);
  auto in = make_sa(tunnel_config(b, c, Direction::inbound), km);
  sodium_memzero(km, sizeof(km));
  if (!out || !in) {
    std::fprintf(stderr, "make_sa: %s\n", (!out ? out.error() : in.error()).c_str());
    std::exit(1);
  }
  Sa& o = **out;
  Sa& i = **in;
  Result res[kMaxBurst];
  uint64_t bad = 0;
  auto encap_pass = [&] {
    for (uint32_t k = 0; k < kPool; k += kMaxBurst) {
      bad += kMaxBurst - esp_burst(o, w, pool.ptrs + k, kMaxBurst, res);
    }
  };
  auto decap_pass = [&] {
    for (uint32_t k = 0; k < kPool; k += kMaxBurst) {
      bad += kMaxBurst - esp_burst(i, w, pool.ptrs + k, kMaxBurst, res);
    }
  };
  EspRates r;
  r.encap = measure(
      pool, ms, [&] { pool.reset(); }, encap_pass);
  // Decap: each pass gets freshly encrypted packets with new sequence numbers.
  r.decap = measure(
      pool, ms,
      [&] {
        pool.refill();
        encap_pass();
      },
      decap_pass);
  if (bad != 0 || i.stats().packets() == 0) {
    std::fprintf(stderr, "unexpected drops: %llu (in: %llu ok)\n",
                 static_cast<unsigned long long>(bad),
                 static_cast<unsigned long long>(i.stats().packets()));
    std::exit(1);
  }
  return r;
}

void usage() {
  std::printf(
      "usage: gl-bench-esp [--quick] [--ms N]\n"
      "  ESP tunnel encrypt/decrypt per core for both AEAD backends and ciphers at 64,\n"
      "  512, 1400 B and IMIX, next to the raw AEAD limit (ipsec-mb burst job loop,\n"
      "  direct libsodium calls) measured in the same run.\n"
      "  --quick   short runs (~2 s in all)\n"
      "  --ms N    milliseconds per measurement, split over 5 rounds (default 500)\n");
}

void row(const char* backend, const char* cipher, const char* size, const char* what, const Rate& r,
         const Rate& raw) {
  std::printf("%-9s %-18s %-5s %-6s %8.2f %8.2f %8.0f %7.0f%%\n", backend, cipher, size, what,
              r.pps / 1e6, r.gbps, r.cycles, raw.pps > 0 ? 100.0 * r.pps / raw.pps : 0.0);
}

}  // namespace

int main(int argc, char** argv) {
  int ms = 500;
  for (int a = 1; a < argc; ++a) {
    const std::string arg = argv[a];
    if (arg == "--help" || arg == "-h") {
      usage();
      return 0;
    }
    if (arg == "--quick") {
      ms = 50;
    } else if (arg == "--ms" && a + 1 < argc) {
      ms = std::max(kRounds, std::atoi(argv[++a]));
    } else {
      usage();
      return 2;
    }
  }
  if (sodium_init() < 0) {
    std::fprintf(stderr, "sodium_init failed\n");
    return 1;
  }
  calibrate_tsc();
  auto w = Worker::create();
  if (!w) {
    std::fprintf(stderr, "worker: %s\n", w.error().c_str());
    return 1;
  }
  std::printf("gl-bench-esp: one core, bursts of %u, pool of %u packets; TSC %.2f GHz; %s, %s\n",
              kMaxBurst, kPool, g_tsc_per_ns, backend_description(Backend::ipsec_mb).c_str(),
              backend_description(Backend::sodium).c_str());
  std::printf("%-9s %-18s %-5s %-6s %8s %8s %8s %8s\n", "backend", "cipher", "size", "op", "Mpps",
              "Gbit/s", "cyc/pkt", "of raw");
  for (Backend b : {Backend::ipsec_mb, Backend::sodium}) {
    for (Cipher c : {Cipher::aes256_gcm, Cipher::chacha20_poly1305}) {
      if (aead_impl(b, c) == nullptr) {
        std::printf("%-9s %-18s (not available on this CPU)\n", std::string(name(b)).c_str(),
                    std::string(name(c)).c_str());
        continue;
      }
      for (const SizeMix& mix : size_mixes()) {
        // Rounds interleave raw, encap and decap so that load from other processes hits
        // all three alike; the best round of each is reported.
        Pool pool(mix);
        Rate raw;
        EspRates e;
        for (int round = 0; round < kRounds; ++round) {
          pool.reset();
          keep_best(raw, b == Backend::ipsec_mb ? raw_ipsecmb(pool, c, ms / kRounds)
                                                : raw_sodium(pool, c, ms / kRounds));
          pool.reset();
          const EspRates one = esp(pool, **w, b, c, ms / kRounds);
          keep_best(e.encap, one.encap);
          keep_best(e.decap, one.decap);
        }
        const std::string bn(name(b)), cn(name(c));
        row(bn.c_str(), cn.c_str(), mix.name, "raw", raw, raw);
        row(bn.c_str(), cn.c_str(), mix.name, "encap", e.encap, raw);
        row(bn.c_str(), cn.c_str(), mix.name, "decap", e.decap, raw);
        std::printf("%-9s %-18s %-5s decap/encap %.0f%%\n", "", "", mix.name,
                    100.0 * e.decap.pps / e.encap.pps);
      }
    }
  }
  return 0;
}
