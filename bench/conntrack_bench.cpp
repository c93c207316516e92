// conntrack_bench.cpp — the connection tracker alone (no DPDK, no I/O): cycles per packet of
// OVS's ct() on established UDP connections, in batches of 32 as the PMD hands them over.
//
// Purpose: bench/conntrack.py measures the whole pipeline (receive, parse, two classifier
// levels, ct(), transmit); this isolates the tracker's share so that a change to it can
// be measured without the rig's noise. The packets are built and parsed once; each batch
// is copied into hot buffers with a fresh metadata block per packet (as the PMD holds
// them) and only Conntrack::execute() on it is timed. Connections: N, both directions alternating
// (A->B then B->A, as the pcap of bench/conntrack.py), all bidirectional before timing, in a table
// of the gldp default capacity (3M) with its index grown as the connections need.
//
// Usage: gl-bench-conntrack [--conns N[,N...]] [--seconds S] [--capacity N] [--commit]
//                           [--established] [--new] [--csum-good]
//   --commit       ct(commit,zone=1) instead of ct(zone=1) (a commit of a known connection)
//   --established  Conntrack::execute_established() instead (the firewall stage's path for
//                  connections of the current policy: looked up from the frames alone)
//   --new          ct(commit,zone=1) of N connections never seen, one pass (cycles per new
//                  connection; the control thread's prefault and index growth run between
//                  batches, untimed, as gldp's housekeeping does on the other core)
//   --csum-good    the port verified the checksums (as a NIC or vhost marks them): the
//                  tracker does not check them again
#include <x86intrin.h>

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_clock.hpp"
#include "dataplane/conntrack/conntrack.hpp"
#include "flowtables/packet_builder.hpp"
#include "flowtables/packet_parser.hpp"

namespace {

struct Frame {
  std::vector<uint8_t> bytes;
  gl::flow::FlowKey key{};
  gl::flow::PacketLayout lay{};
};

Frame make(uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport) {
  Frame f;
  f.bytes = gl::flow::PacketBuilder()
                .eth("02:00:00:00:00:01", "02:00:00:00:00:02")
                .ipv4(src, dst)
                .udp(sport, dport)
                .pad_to(60)
                .build();
  gl::flow::parse_packet(f.bytes.data(), static_cast<uint32_t>(f.bytes.size()), f.key, f.lay);
  return f;
}

// A batch as the PMD holds it: each packet's frame, key and layout in hot buffers of its
// own (the PMD has just received and parsed them).
constexpr uint16_t kBatch = 32;
struct Hot {
  uint8_t frame[64];
  gl::flow::FlowKey key;
  gl::flow::PacketLayout lay;
};

uint32_t be32(uint32_t v) {
  return __builtin_bswap32(v);
}

struct Result {
  double cycles_per_packet;
  uint64_t packets;
  uint64_t found;
};

// Two contexts (the PMD's and the control thread's), the index backed at once (as gldp).
gl::ct::Options options(uint32_t capacity) {
  gl::ct::Options o;
  o.capacity = capacity;
  o.contexts = 2;
  o.populate_index = true;
  return o;
}

Result run(uint32_t n, double seconds, uint32_t capacity, bool commit, bool established,
           uint8_t csum_good) {
  gl::ct::Conntrack ct(options(capacity));
  const int slot = ct.register_context();
  const int ctl = ct.register_context();
  std::vector<Frame> frames;
  frames.reserve(2 * size_t{n});
  for (uint32_t i = 0; i < n; ++i) {
    const uint32_t a = be32(0x0a000000u | (i & 0xffffffu));  // 10.x.y.z
    const uint32_t b = be32(0xc0a80001u);                    // 192.168.0.1
    const uint16_t sport = static_cast<uint16_t>(1024 + i % 60000);
    frames.push_back(make(a, b, sport, 5001));
    frames.push_back(make(b, a, 5001, sport));
  }
  gl::ct::Action track;
  track.zone = 1;
  gl::ct::Action com = track;
  com.commit = true;
  const gl::ct::Action& act = commit ? com : track;

  // As the PMD hands them over: the batch's frames and keys in hot buffers of its own
  // (the PMD has just received and parsed them), a fresh metadata block each.
  static Hot hot[kBatch];
  gl::ct::Md md[kBatch];
  gl::ct::Packet pk[kBatch];
  gl::ct::Conntrack::FastPacket fp[kBatch];
  const gl::ct::Conntrack::LabelMatch any;  // the label is not what is measured
  auto prepare = [&](size_t at) {
    for (uint16_t j = 0; j < kBatch; ++j) {
      const Frame& f = frames[(at + j) % frames.size()];
      std::memcpy(hot[j].frame, f.bytes.data(), 60);
      hot[j].key = f.key;
      hot[j].lay = f.lay;
      md[j] = gl::ct::Md{};
      pk[j] = gl::ct::Packet{hot[j].frame, 60, &hot[j].key, &hot[j].lay, &md[j]};
      fp[j] = gl::ct::Conntrack::FastPacket{};
      fp[j].frame = hot[j].frame;
      fp[j].len = 60;
      fp[j].csum_good = csum_good;
      pk[j].csum_good = csum_good;
    }
  };
  auto batch = [&](size_t at, const gl::ct::Action& a, uint64_t now) {
    prepare(at);
    ct.execute(0, a, pk, kBatch, now);
  };
  // Two passes with commit: created, then both ways seen.
  uint64_t now = 1000;
  for (int pass = 0; pass < 2; ++pass)
    for (size_t at = 0; at < frames.size(); at += kBatch) {
      batch(at, com, now);
      // The index grows on the control thread (gldp's housekeeping does this).
      if ((at / kBatch) % 64 == 0) ct.grow_index();
    }
  while (ct.grow_index()) {
  }
  ct.quiescent(slot);
  ct.quiescent(ctl);

  const gl::ct::Stats s0 = ct.stats();
  const auto t_end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  uint64_t cycles = 0, packets = 0;
  size_t at = 0;
  while (std::chrono::steady_clock::now() < t_end) {
    for (int r = 0; r < 256; ++r) {
      prepare(at);
      const uint64_t c0 = __rdtsc();
      if (established)
        ct.execute_established(0, 1, any, fp, kBatch, now);
      else
        ct.execute(0, act, pk, kBatch, now);
      cycles += __rdtsc() - c0;
      at = (at + kBatch) % frames.size();
    }
    packets += 256 * kBatch;
    ct.quiescent(slot);
  }
  const gl::ct::Stats s1 = ct.stats();
  ct.unregister_context(ctl);
  ct.unregister_context(slot);
  return {static_cast<double>(cycles) / static_cast<double>(packets), packets, s1.found - s0.found};
}

// --new: ct(commit,zone=1) of n connections never seen, in batches of 32 (one direction,
// as bench/firewall.py's new-connection pass), in a table of `capacity` with its index
// populated (as gldp). A second thread on core 0 does what gldp's control thread does
// meanwhile: backs memory ahead of the allocations (prefault) and grows the index, every
// millisecond. Besides the mean, the longest batch: a grow must not hold the commits up.
struct NewResult {
  double cycles_per_conn = 0;
  uint64_t created = 0;
  double longest_batch_us = 0;
  uint32_t grows = 0;
};

void pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

NewResult run_new(uint32_t n, uint32_t capacity, uint8_t csum_good, double tsc_per_ns) {
  gl::ct::Conntrack ct(options(capacity));
  const int slot = ct.register_context();
  const int ctl = ct.register_context();
  // The frames, built beforehand (64 B each).
  std::vector<uint8_t> frames(size_t{n} * 64);
  std::vector<gl::flow::FlowKey> keys(n);
  std::vector<gl::flow::PacketLayout> lays(n);
  for (uint32_t i = 0; i < n; ++i) {
    const Frame f = make(be32(0x0a800000u | ((i + 1) & 0x7fffffu)), be32(0xc0a80001u),
                         static_cast<uint16_t>(1024 + i % 60000), 5001);
    std::memcpy(&frames[size_t{i} * 64], f.bytes.data(), 60);
    keys[i] = f.key;
    lays[i] = f.lay;
  }
  std::atomic<bool> stop{false};
  std::atomic<uint32_t> grows{0};
  std::thread control([&] {
    pin(0);
    while (!stop.load(std::memory_order_relaxed)) {
      ct.prefault(65536);
      if (ct.grow_index()) grows.fetch_add(1, std::memory_order_relaxed);
      ct.quiescent(ctl);
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ct.unregister_context(ctl);
  });
  pin(1);
  static Hot hot[kBatch];
  gl::ct::Md md[kBatch];
  gl::ct::Packet pk[kBatch];
  gl::ct::Action com;
  com.zone = 1;
  com.commit = true;
  uint64_t cycles = 0, longest = 0;
  for (uint32_t at = 0; at < n; at += kBatch) {
    const uint16_t m = static_cast<uint16_t>(std::min<uint32_t>(kBatch, n - at));
    for (uint16_t j = 0; j < m; ++j) {
      std::memcpy(hot[j].frame, &frames[size_t{at + j} * 64], 60);
      hot[j].key = keys[at + j];
      hot[j].lay = lays[at + j];
      md[j] = gl::ct::Md{};
      pk[j] = gl::ct::Packet{hot[j].frame, 60, &hot[j].key, &hot[j].lay, &md[j]};
      pk[j].csum_good = csum_good;
    }
    const uint64_t c0 = __rdtsc();
    ct.execute(slot, com, pk, m, 1000);
    const uint64_t c = __rdtsc() - c0;
    cycles += c;
    longest = std::max(longest, c);
    ct.quiescent(slot);
  }
  stop.store(true);
  ct.offline(slot);
  control.join();
  const gl::ct::Stats s = ct.stats();
  ct.unregister_context(slot);
  NewResult r;
  r.cycles_per_conn = static_cast<double>(cycles) / n;
  r.created = s.created;
  r.longest_batch_us = static_cast<double>(longest) / tsc_per_ns / 1e3;
  r.grows = grows.load();
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<uint32_t> conns = {1000, 100000};
  double seconds = 2.0;
  uint32_t capacity = 3000000;
  bool commit = false;
  bool established = false;
  bool fresh = false;
  uint8_t csum_good = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "gl-bench-conntrack: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--conns") {
      conns.clear();
      std::string v = next();
      for (size_t p = 0; p < v.size();) {
        const size_t e = v.find(',', p);
        conns.push_back(static_cast<uint32_t>(std::stoul(v.substr(p, e - p))));
        p = e == std::string::npos ? v.size() : e + 1;
      }
    } else if (a == "--seconds") {
      seconds = std::stod(next());
    } else if (a == "--capacity") {
      capacity = static_cast<uint32_t>(std::stoul(next()));
    } else if (a == "--commit") {
      commit = true;
    } else if (a == "--established") {
      established = true;
    } else if (a == "--new") {
      fresh = true;
    } else if (a == "--csum-good") {
      csum_good = gl::ct::kCsumGoodL3 | gl::ct::kCsumGoodL4;
    } else if (a == "-h" || a == "--help") {
      std::printf(
          "usage: gl-bench-conntrack [--conns N[,N...]] [--seconds S] [--capacity N] "
          "[--commit] [--established] [--new] [--csum-good]\n"
          "The connection tracker alone: cycles per packet of ct(zone=1) on N established UDP\n"
          "connections, both directions, batches of 32 (default: 1000,100000; 2 s each;\n"
          "capacity 3000000 as gldp's default).\n"
          "  --commit       ct(commit,zone=1) instead\n"
          "  --established  the firewall stage's lookup from the frames "
          "(execute_established())\n"
          "  --new          ct(commit,zone=1) of N connections never seen (one pass; the\n"
          "                 figure is cycles per new connection)\n"
          "  --csum-good    checksums marked verified by the port (not checked again)\n");
      return 0;
    } else {
      std::fprintf(stderr, "gl-bench-conntrack: unknown argument %s (try --help)\n", a.c_str());
      return 2;
    }
  }
  if (fresh) {
    std::printf("conntrack alone, ct(commit,zone=1) of new connections, 64 B UDP, batches of 32\n");
    const double tsc_per_ns = gl::bench::calibrate_tsc_per_ns();
    std::printf("%10s %12s %12s %8s %18s\n", "conns", "cyc/conn", "created", "grows",
                "longest batch us");
    for (uint32_t n : conns) {
      const NewResult r = run_new(n, capacity, csum_good, tsc_per_ns);
      std::printf("%10u %12.1f %12llu %8u %18.1f\n", n, r.cycles_per_conn,
                  static_cast<unsigned long long>(r.created), r.grows, r.longest_batch_us);
    }
    return 0;
  }
  if (established)
    std::printf(
        "conntrack alone, execute_established(zone=1), 64 B UDP, both directions, "
        "batches of 32\n");
  else
    std::printf("conntrack alone, ct(%szone=1), 64 B UDP, both directions, batches of 32\n",
                commit ? "commit," : "");
  std::printf("%10s %12s %12s %10s\n", "conns", "cyc/pkt", "Mpkt", "found");
  for (uint32_t n : conns) {
    const Result r = run(n, seconds, capacity, commit, established, csum_good);
    std::printf("%10u %12.1f %12.2f %9.1f%%\n", n, r.cycles_per_packet,
                static_cast<double>(r.packets) / 1e6,
                100.0 * static_cast<double>(r.found) / static_cast<double>(r.packets));
  }
  return 0;
}
