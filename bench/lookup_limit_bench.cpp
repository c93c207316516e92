// lookup_limit_bench.cpp — the lookup limit: DPDK's own hash table (rte_hash, the
// library's bulk lookup) on the keys the firewall stage looks up, as the peer of
// gl-bench-conntrack --established (the stage's whole path: the key from the frame, its
// checks and checksum, the lookup, the connection's update).
//
// Purpose: issue #11 asks for the firewall stage at >= 0.7x of gldp's forwarding without
// it. On bench/firewall.py's rig that leaves about a third of a plain packet's cycles
// for the stage; this measures what a bare exact-match lookup of a connection's key
// costs in DPDK's table on this machine, nothing else timed (keys already built, no
// checksum, no state written), as dpdk-testpmd is the I/O limit and
// dpdk-test-crypto-perf the AEAD limit. Keys: ConnKey (40 bytes: addresses, ports, zone,
// protocol, family), both directions of N UDP connections (2N keys, as the tracker
// indexes them), looked up in the order bench/firewall.py's pcap sends them (A->B then
// B->A per connection), 32 per call (the PMD's batch), each batch's keys copied into a
// hot buffer before timing (as the PMD holds a batch it has just parsed).
//
// Usage: gl-bench-lookup-limit [--conns N[,N...]] [--seconds S] [EAL arguments after --]
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_hash.h>
#include <rte_hash_crc.h>
#include <x86intrin.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "dataplane/conntrack/conn_table.hpp"
#include "dataplane/eal_args.hpp"

namespace {

constexpr unsigned kBatch = 32;

gl::ct::ConnKey key_of(uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport) {
  gl::ct::ConnKey k{};
  k.family = 4;
  k.proto = 17;
  k.zone = 1;
  k.src[0] = __builtin_bswap32(src);
  k.dst[0] = __builtin_bswap32(dst);
  k.sport = __builtin_bswap16(sport);
  k.dport = __builtin_bswap16(dport);
  return k;
}

struct Result {
  double cycles_per_key = 0;
  uint64_t keys = 0;
  uint64_t found = 0;
};

Result run(uint32_t n, double seconds) {
  std::vector<gl::ct::ConnKey> keys;
  keys.reserve(2 * size_t{n});
  for (uint32_t i = 0; i < n; ++i) {  // bench/firewall.py's connections
    const uint32_t a = 0x0a000000u | ((i + 1) & 0xffffffu), b = 0xac100001u;
    const auto sport = static_cast<uint16_t>(1024 + i % 60000);
    keys.push_back(key_of(a, b, sport, 5001));
    keys.push_back(key_of(b, a, 5001, sport));
  }
  // Room for twice the keys (the library rounds to a power of two of 8-entry buckets): at
  // most half full, most keys in their first bucket, as in the tracker's index (which
  // grows to keep its keys within a third of its slots).
  rte_hash_parameters p{};
  const std::string name = "gl_lookup_" + std::to_string(n);
  p.name = name.c_str();
  p.entries = static_cast<uint32_t>(std::max<size_t>(std::bit_ceil(keys.size() * 2), 1024));
  p.key_len = sizeof(gl::ct::ConnKey);
  p.hash_func = rte_hash_crc;
  p.hash_func_init_val = 0;
  p.socket_id = 0;
  rte_hash* h = rte_hash_create(&p);
  if (h == nullptr) {
    std::fprintf(stderr, "gl-bench-lookup-limit: rte_hash_create(%u entries) failed: %s\n",
                 p.entries, rte_strerror(rte_errno));
    std::exit(1);
  }
  for (size_t i = 0; i < keys.size(); ++i)
    if (rte_hash_add_key_data(h, &keys[i], reinterpret_cast<void*>(i + 1)) != 0) {
      std::fprintf(stderr, "gl-bench-lookup-limit: rte_hash_add_key_data failed at key %zu\n", i);
      std::exit(1);
    }
  static gl::ct::ConnKey hot[kBatch];
  const void* ptrs[kBatch];
  for (unsigned j = 0; j < kBatch; ++j) ptrs[j] = &hot[j];
  void* data[kBatch];
  Result r;
  uint64_t cycles = 0, sink = 0;
  size_t at = 0;
  const auto t_end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < t_end) {
    for (int rep = 0; rep < 256; ++rep) {
      for (unsigned j = 0; j < kBatch; ++j) hot[j] = keys[(at + j) % keys.size()];
      uint64_t hits = 0;
      const uint64_t c0 = __rdtsc();
      const int found = rte_hash_lookup_bulk_data(h, ptrs, kBatch, &hits, data);
      cycles += __rdtsc() - c0;
      r.found += static_cast<uint64_t>(found);
      sink += reinterpret_cast<uintptr_t>(data[0]);
      at = (at + kBatch) % keys.size();
    }
    r.keys += 256 * kBatch;
  }
  rte_hash_free(h);
  if (sink == 0) std::printf("(no data)\n");  // keeps the data loads
  r.cycles_per_key = static_cast<double>(cycles) / static_cast<double>(r.keys);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<uint32_t> conns = {1000, 100000};
  double seconds = 2.0;
  std::vector<std::string> eal_extra;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "gl-bench-lookup-limit: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    try {
      if (a == "--conns") {
        conns.clear();
        const std::string v = next();
        for (size_t q = 0; q < v.size();) {
          const size_t e = v.find(',', q);
          conns.push_back(static_cast<uint32_t>(std::stoul(v.substr(q, e - q))));
          q = e == std::string::npos ? v.size() : e + 1;
        }
      } else if (a == "--seconds") {
        seconds = std::stod(next());
      } else if (a == "--") {
        eal_extra.assign(argv + i + 1, argv + argc);
        break;
      } else if (a == "-h" || a == "--help") {
        std::printf(
            "usage: gl-bench-lookup-limit [--conns N[,N...]] [--seconds S] [-- EAL args]\n"
            "The lookup limit: cycles per key of DPDK's rte_hash_lookup_bulk_data() on the\n"
            "40-byte connection keys of N UDP connections (2N keys, both directions in the\n"
            "order bench/firewall.py sends them, 32 per call), keys built beforehand, nothing\n"
            "but the lookup timed; the peer of gl-bench-conntrack --established.\n"
            "Default: 1000,100000 connections, 2 s each, on core 1 (the EAL's main lcore).\n");
        return 0;
      } else {
        std::fprintf(stderr, "gl-bench-lookup-limit: unknown argument %s (try --help)\n",
                     a.c_str());
        return 2;
      }
    } catch (const std::exception&) {
      std::fprintf(stderr, "gl-bench-lookup-limit: bad value for %s\n", a.c_str());
      return 2;
    }
  }
  for (uint32_t n : conns)
    if (n == 0 || n > 4000000) {
      std::fprintf(stderr, "gl-bench-lookup-limit: --conns: 1..4000000 connections\n");
      return 2;
    }
  // The timed loop runs on the main lcore: core 1, the PMD's core in bench/firewall.py.
  std::vector<std::string> args = gl::dp::eal_args("bench-lookup", "1", eal_extra, false, 1024);
  args.emplace_back("--log-level=lib.*:error");
  std::vector<char*> av = gl::dp::to_argv(args);
  if (rte_eal_init(static_cast<int>(args.size()), av.data()) < 0) {
    std::fprintf(stderr, "gl-bench-lookup-limit: EAL init failed: %s\n", rte_strerror(rte_errno));
    return 1;
  }
  std::printf("rte_hash_lookup_bulk_data, 40-byte connection keys, both directions, 32 per call\n");
  std::printf("%10s %10s %12s %12s %10s\n", "conns", "keys", "cyc/key", "Mkeys", "found");
  for (uint32_t n : conns) {
    const Result r = run(n, seconds);
    std::printf("%10u %10u %12.1f %12.2f %9.1f%%\n", n, 2 * n, r.cycles_per_key,
                static_cast<double>(r.keys) / 1e6,
                100.0 * static_cast<double>(r.found) / static_cast<double>(r.keys));
  }
  gl::dp::eal_cleanup();
  return 0;
}
