// gl-pktgen — Goldilocks DPDK traffic generator. See README.md and `gl-pktgen --help`.
//
// main: options, EAL, ports, the progress display on the main lcore, the JSON summary.
// The TX/RX loop is Generator (generator.hpp), on the second lcore when there is one.
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "dataplane/eal_args.hpp"
#include "tools/pktgen/frame.hpp"
#include "tools/pktgen/generator.hpp"
#include "tools/pktgen/options.hpp"

namespace gl::pktgen {
namespace {

constexpr int kExitRuntime = 1;
constexpr int kExitUsage = 2;
constexpr unsigned kPoolSize = 8191;
constexpr uint16_t kRingSize = 1024;

std::atomic<int> g_stop{0};

void on_signal(int) {
  g_stop.fetch_add(1, std::memory_order_relaxed);
}

int usage_error(const std::string& msg) {
  std::fprintf(stderr, "gl-pktgen: %s\nTry 'gl-pktgen --help'.\n", msg.c_str());
  return kExitUsage;
}

// The first two CPUs this process may run on, as an EAL core list.
std::string default_lcores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::string list;
  int found = 0;
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    for (int c = 0; c < CPU_SETSIZE && found < 2; ++c) {
      if (!CPU_ISSET(c, &set)) continue;
      list += (found++ ? "," : "") + std::to_string(c);
    }
  }
  return found ? list : "0";
}

// "0000:3b:00.0" or "3b:00.0" (optionally followed by ",key=value").
bool looks_pci(const std::string& devargs) {
  const std::string name = devargs.substr(0, devargs.find(','));
  const auto hexes = [](const std::string& s, size_t pos, size_t n) {
    if (pos + n > s.size()) return false;
    for (size_t i = pos; i < pos + n; ++i) {
      if (!std::isxdigit(static_cast<unsigned char>(s[i]))) return false;
    }
    return true;
  };
  const auto bdf = [&](size_t p) {
    return name.size() == p + 7 && hexes(name, p, 2) && name[p + 2] == ':' &&
           hexes(name, p + 3, 2) && name[p + 5] == '.' && hexes(name, p + 6, 1);
  };
  return bdf(0) || (name.size() > 5 && hexes(name, 0, 4) && name[4] == ':' && bdf(5));
}

std::string device_name(const std::string& devargs) {
  std::string name = devargs.substr(0, devargs.find(','));
  if (looks_pci(devargs) && name.size() == 7) name = "0000:" + name;
  return name;
}

std::optional<uint16_t> find_port(const std::string& name) {
  uint16_t port = 0;
  if (rte_eth_dev_get_port_by_name(name.c_str(), &port) == 0) return port;
  uint16_t p = 0;
  RTE_ETH_FOREACH_DEV(p) {
    rte_eth_dev_info info{};
    if (rte_eth_dev_info_get(p, &info) == 0 && info.device != nullptr &&
        name == rte_dev_name(info.device)) {
      return p;
    }
  }
  return std::nullopt;
}

// Probes a device given by devargs (PCI devices were allow-listed for the EAL instead).
std::expected<uint16_t, std::string> attach(const std::string& devargs, const char* what) {
  const std::string name = device_name(devargs);
  if (auto p = find_port(name)) return *p;
  if (!looks_pci(devargs)) {
    const int rc = rte_dev_probe(devargs.c_str());
    if (rc < 0 && rc != -EEXIST) {
      return std::unexpected(std::string("cannot attach ") + what + " '" + devargs + "' (error " +
                             std::to_string(rc) + "): unknown driver or bad key=value arguments");
    }
  }
  if (auto p = find_port(name)) return *p;
  return std::unexpected(std::string(what) + " '" + devargs + "': the device has no ethdev port");
}

std::optional<std::string> start_port(uint16_t port, rte_mempool* rx_pool) {
  rte_eth_conf conf{};
  uint16_t nrx = kRingSize, ntx = kRingSize;
  int rc = rte_eth_dev_configure(port, 1, 1, &conf);
  if (rc == 0) rc = rte_eth_dev_adjust_nb_rx_tx_desc(port, &nrx, &ntx);
  const int socket = rte_eth_dev_socket_id(port) < 0 ? 0 : rte_eth_dev_socket_id(port);
  if (rc == 0) rc = rte_eth_rx_queue_setup(port, 0, nrx, socket, nullptr, rx_pool);
  if (rc == 0) rc = rte_eth_tx_queue_setup(port, 0, ntx, socket, nullptr);
  if (rc == 0) rc = rte_eth_dev_start(port);
  if (rc < 0) {
    return "port " + std::to_string(port) + ": cannot start: " + std::strerror(-rc);
  }
  rte_eth_promiscuous_enable(port);  // not every driver can; fine
  return std::nullopt;
}

rte_mempool* make_pool(const char* name, bool zero) {
  rte_mempool* mp = rte_pktmbuf_pool_create(name, kPoolSize, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                            static_cast<int>(rte_socket_id()));
  if (mp && zero) {
    // Generated payloads are all zero: write them once here, never per packet.
    rte_mempool_obj_iter(
        mp,
        [](rte_mempool*, void*, void* obj, unsigned) {
          auto* m = static_cast<rte_mbuf*>(obj);
          std::memset(m->buf_addr, 0, m->buf_len);
        },
        nullptr);
  }
  return mp;
}

std::string human(double v) {
  char buf[32];
  if (v >= 1e9) {
    std::snprintf(buf, sizeof buf, "%.2fG", v / 1e9);
  } else if (v >= 1e6) {
    std::snprintf(buf, sizeof buf, "%.2fM", v / 1e6);
  } else if (v >= 1e3) {
    std::snprintf(buf, sizeof buf, "%.1fk", v / 1e3);
  } else {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  }
  return buf;
}

// The one-line progress display: "\r"-refreshed on a terminal, one line per second
// otherwise.
class Display {
 public:
  Display(FILE* out, bool enabled, const Options& o, const LiveCounters& live)
      : out_(out),
        enabled_(enabled),
        tty_(isatty(fileno(out)) == 1),
        o_(o),
        live_(live),
        start_(std::chrono::steady_clock::now()),
        last_(start_) {}

  void tick() {
    if (!enabled_) return;
    const auto now = std::chrono::steady_clock::now();
    const double dt = std::chrono::duration<double>(now - last_).count();
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    last_ = now;
    const uint64_t tx = live_.tx_pkts.load(std::memory_order_relaxed);
    const uint64_t rx = live_.rx_pkts.load(std::memory_order_relaxed);
    const uint64_t txb = live_.tx_bytes.load(std::memory_order_relaxed);
    char line[256];
    if (o_.proto == Proto::kTcp) {
      const uint64_t est = live_.conn_established.load(std::memory_order_relaxed);
      std::snprintf(line, sizeof line,
                    "%7.1fs  conn %s/s  opened %s  established %s  closed %s  failed %s  "
                    "pkts tx %s/s rx %s/s",
                    elapsed, human((est - prev_est_) / dt).c_str(),
                    human(live_.conn_opened.load(std::memory_order_relaxed)).c_str(),
                    human(est).c_str(),
                    human(live_.conn_closed.load(std::memory_order_relaxed)).c_str(),
                    human(live_.conn_failed.load(std::memory_order_relaxed)).c_str(),
                    human((tx - prev_tx_) / dt).c_str(), human((rx - prev_rx_) / dt).c_str());
      prev_est_ = est;
    } else {
      const uint64_t lost = live_.lost.load(std::memory_order_relaxed);
      std::snprintf(line, sizeof line,
                    "%7.1fs  tx %spps %sb/s  rx %spps  lost %s (%.3f%%)  total tx %s rx %s",
                    elapsed, human((tx - prev_tx_) / dt).c_str(),
                    human((txb - prev_txb_) * 8 / dt).c_str(), human((rx - prev_rx_) / dt).c_str(),
                    human(lost).c_str(), tx ? 100.0 * lost / (tx + lost) : 0.0, human(tx).c_str(),
                    human(rx).c_str());
    }
    prev_tx_ = tx;
    prev_rx_ = rx;
    prev_txb_ = txb;
    if (tty_) {
      std::fprintf(out_, "\r%-118s", line);
    } else {
      std::fprintf(out_, "%s\n", line);
    }
    std::fflush(out_);
    printed_ = true;
  }

  void finish() {
    if (enabled_ && tty_ && printed_) std::fputc('\n', out_);
  }

 private:
  FILE* out_;
  bool enabled_;
  bool tty_;
  const Options& o_;
  const LiveCounters& live_;
  std::chrono::steady_clock::time_point start_, last_;
  uint64_t prev_tx_ = 0, prev_rx_ = 0, prev_txb_ = 0, prev_est_ = 0;
  bool printed_ = false;
};

nlohmann::ordered_json latency_json(const LatencyHistogram& h) {
  nlohmann::ordered_json j;
  j["samples"] = h.count();
  j["min"] = h.min();
  j["p50"] = h.quantile(0.50);
  j["p99"] = h.quantile(0.99);
  j["max"] = h.max();
  j["mean"] = h.mean();
  return j;
}

nlohmann::ordered_json summary(const Options& o, const Results& r, const Mac& src, const Mac& dst) {
  using J = nlohmann::ordered_json;
  J cfg;
  cfg["tx"] = o.tx;
  cfg["rx"] = o.rx.empty() ? J(nullptr) : J(o.rx);
  cfg["protocol"] = proto_name(o.proto);
  cfg["flows"] = o.flows;
  cfg["sizes"] = o.imix ? J("imix") : J(o.sizes);
  cfg["src_ip"] = format_ipv4(static_cast<uint32_t>(o.src_ip.lo)) + "-" +
                  format_ipv4(static_cast<uint32_t>(o.src_ip.hi));
  cfg["dst_ip"] = format_ipv4(static_cast<uint32_t>(o.dst_ip.lo)) + "-" +
                  format_ipv4(static_cast<uint32_t>(o.dst_ip.hi));
  cfg["src_port"] = std::to_string(o.src_port.lo) + "-" + std::to_string(o.src_port.hi);
  cfg["dst_port"] = std::to_string(o.dst_port.lo) + "-" + std::to_string(o.dst_port.hi);
  cfg["src_mac"] = format_mac(src);
  cfg["dst_mac"] = format_mac(dst);
  cfg["vlan"] = o.vlan ? J(*o.vlan) : J(nullptr);
  cfg["rate"] = o.rate;
  cfg["duration_s"] = o.duration;
  cfg["count"] = o.count;
  if (o.proto == Proto::kTcp) {
    cfg["tcp_timeout_s"] = o.tcp_timeout;
    cfg["tcp_concurrency"] = o.tcp_concurrency;
  }
  cfg["inject"] = J{{"drop", o.inject_drop}, {"reorder", o.inject_reorder}, {"dup", o.inject_dup}};

  J j;
  j["tool"] = "gl-pktgen";
  j["config"] = cfg;
  j["elapsed_s"] = r.elapsed_s;
  const double tx_s = r.tx_s > 0 ? r.tx_s : 1e-9;
  J tx;
  tx["packets"] = r.tx_pkts;
  tx["bytes"] = r.tx_bytes;
  tx["seconds"] = r.tx_s;
  tx["pps"] = r.tx_pkts / tx_s;
  tx["bps"] = r.tx_bytes * 8.0 / tx_s;
  tx["backpressure_bursts"] = r.tx_full;
  tx["abandoned"] = r.tx_abandoned;
  if (o.proto != Proto::kTcp) {
    tx["sequence_numbers"] = r.seq_used;
    tx["injected"] =
        J{{"dropped", r.inj_drop}, {"reordered", r.inj_reorder}, {"duplicated", r.inj_dup}};
  } else {
    tx["dropped"] = r.tx_dropped;
  }
  j["tx"] = tx;
  if (o.rx.empty()) {
    j["rx"] = nullptr;
  } else {
    J rx;
    rx["packets"] = r.rx_pkts;
    rx["bytes"] = r.rx_bytes;
    rx["pps"] = r.rx_pkts / (r.elapsed_s > 0 ? r.elapsed_s : 1e-9);
    rx["other"] = r.rx_other;
    rx["on_tx_port"] = r.rx_on_tx;
    if (o.proto != Proto::kTcp) {
      rx["unique"] = r.rx_unique;
      rx["lost"] = r.lost;
      rx["loss_ratio"] = r.seq_used ? static_cast<double>(r.lost) / r.seq_used : 0.0;
      rx["duplicates"] = r.duplicates;
      rx["reordered"] = r.reordered;
      rx["too_late"] = r.too_old;
      rx["latency_ns"] = latency_json(r.latency);
    }
    j["rx"] = rx;
  }
  if (o.proto == Proto::kTcp) {
    J c;
    c["attempted"] = r.conn_attempted;
    c["established"] = r.conn_established;
    c["closed"] = r.conn_closed;
    c["failed"] = r.conn_failed;
    c["reset"] = r.conn_reset;
    c["server_established"] = r.srv_established;
    c["server_closed"] = r.srv_closed;
    c["unexpected_segments"] = r.tcp_unexpected;
    c["per_second"] = r.conn_established / tx_s;
    c["setup_latency_ns"] = latency_json(r.connect_latency);
    j["connections"] = c;
  }
  return j;
}

void print_human(FILE* out, const Options& o, const Results& r) {
  std::fprintf(out, "gl-pktgen: tx %llu packets in %.3f s (%spps)",
               static_cast<unsigned long long>(r.tx_pkts), r.tx_s,
               human(r.tx_s > 0 ? r.tx_pkts / r.tx_s : 0).c_str());
  if (!o.rx.empty()) {
    std::fprintf(out, ", rx %llu", static_cast<unsigned long long>(r.rx_pkts));
    if (o.proto != Proto::kTcp) {
      std::fprintf(out,
                   ", lost %llu, duplicates %llu, reordered %llu, latency ns min %llu p50 %llu "
                   "p99 %llu max %llu",
                   static_cast<unsigned long long>(r.lost),
                   static_cast<unsigned long long>(r.duplicates),
                   static_cast<unsigned long long>(r.reordered),
                   static_cast<unsigned long long>(r.latency.min()),
                   static_cast<unsigned long long>(r.latency.quantile(0.5)),
                   static_cast<unsigned long long>(r.latency.quantile(0.99)),
                   static_cast<unsigned long long>(r.latency.max()));
    } else {
      std::fprintf(out,
                   "; connections attempted %llu, established %llu, closed %llu, failed %llu, "
                   "reset %llu; set-up ns p50 %llu p99 %llu",
                   static_cast<unsigned long long>(r.conn_attempted),
                   static_cast<unsigned long long>(r.conn_established),
                   static_cast<unsigned long long>(r.conn_closed),
                   static_cast<unsigned long long>(r.conn_failed),
                   static_cast<unsigned long long>(r.conn_reset),
                   static_cast<unsigned long long>(r.connect_latency.quantile(0.5)),
                   static_cast<unsigned long long>(r.connect_latency.quantile(0.99)));
    }
  }
  std::fputc('\n', out);
}

struct WorkerArg {
  Generator* gen;
  std::atomic<bool>* done;
};

int worker_main(void* p) {
  auto* a = static_cast<WorkerArg*>(p);
  a->gen->run({});
  a->done->store(true, std::memory_order_release);
  return 0;
}

int run(int argc, char** argv) {
  auto parsed = parse_args(argc, argv);
  if (!parsed) return usage_error(parsed.error());
  if (parsed->help) {
    std::fputs(usage_text().c_str(), stdout);
    return 0;
  }
  if (parsed->version) {
    std::puts("gl-pktgen 0.1.0");
    return 0;
  }
  Options& o = parsed->opts;

  // ---- EAL ----
  const bool pci = looks_pci(o.tx) || (!o.rx.empty() && looks_pci(o.rx));
  std::vector<std::string> extra;
  extra.insert(extra.end(), o.eal.begin(), o.eal.end());
  if (looks_pci(o.tx)) extra.push_back("-a" + o.tx);
  if (!o.rx.empty() && o.rx != o.tx && looks_pci(o.rx)) extra.push_back("-a" + o.rx);
  std::vector<std::string> args =
      gl::dp::eal_args("pktgen", o.lcores.empty() ? default_lcores() : o.lcores, extra, pci, 512);
  std::vector<char*> eal_argv = gl::dp::to_argv(args);
  if (rte_eal_init(static_cast<int>(args.size()), eal_argv.data()) < 0) {
    const int err = rte_errno;
    std::fprintf(stderr, "gl-pktgen: cannot initialise DPDK EAL: %s\n", rte_strerror(err));
    return err == EINVAL ? kExitUsage : kExitRuntime;
  }
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);

  int rc = 0;
  std::vector<uint16_t> started;
  do {
    auto tx_port = attach(o.tx, "--tx");
    if (!tx_port) {
      rc = usage_error(tx_port.error());
      break;
    }
    PortSetup ports;
    ports.tx_port = *tx_port;
    if (!o.rx.empty()) {
      auto rx_port = attach(o.rx, "--rx");
      if (!rx_port) {
        rc = usage_error(rx_port.error());
        break;
      }
      ports.rx_port = *rx_port;
      ports.has_rx = true;
    }
    ports.tx_pool = make_pool("gl_pktgen_tx", true);
    rte_mempool* rx_pool = make_pool("gl_pktgen_rx", false);
    if (!ports.tx_pool || !rx_pool) {
      std::fprintf(stderr, "gl-pktgen: cannot create mbuf pools: %s\n", rte_strerror(rte_errno));
      rc = kExitRuntime;
      break;
    }
    std::vector<uint16_t> to_start{ports.tx_port};
    if (ports.has_rx && ports.rx_port != ports.tx_port) to_start.push_back(ports.rx_port);
    for (uint16_t p : to_start) {
      if (auto e = start_port(p, rx_pool)) {
        std::fprintf(stderr, "gl-pktgen: %s\n", e->c_str());
        rc = kExitRuntime;
        break;
      }
      started.push_back(p);
    }
    if (rc) break;

    rte_ether_addr a{};
    Mac src{}, dst{0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    rte_eth_macaddr_get(ports.tx_port, &a);
    std::memcpy(src.data(), a.addr_bytes, 6);
    if (ports.has_rx) {
      rte_eth_macaddr_get(ports.rx_port, &a);
      std::memcpy(dst.data(), a.addr_bytes, 6);
    }
    if (o.src_mac) src = *o.src_mac;
    if (o.dst_mac) dst = *o.dst_mac;

    const FlowSet flows(o);
    const FrameWriter writer(src, dst, o.vlan, o.vlan_pcp);
    const uint16_t run_id = static_cast<uint16_t>(rte_rdtsc() ^ (getpid() << 3));
    auto gen = std::make_unique<Generator>(o, flows, writer, ports, g_stop, run_id);

    FILE* progress = o.json == "-" ? stderr : stdout;
    Display display(progress, !o.quiet, o, gen->live());
    const unsigned worker = rte_get_next_lcore(-1, 1, 0);
    if (worker >= RTE_MAX_LCORE) {
      gen->run([&] { display.tick(); });  // one core: the loop drives the display
    } else {
      std::atomic<bool> done{false};
      WorkerArg arg{gen.get(), &done};
      rte_eal_remote_launch(worker_main, &arg, worker);
      auto next = std::chrono::steady_clock::now() + std::chrono::seconds(1);
      while (!done.load(std::memory_order_acquire)) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        if (std::chrono::steady_clock::now() >= next) {
          display.tick();
          next += std::chrono::seconds(1);
        }
      }
      rte_eal_wait_lcore(worker);
    }
    display.finish();

    const Results& r = gen->results();
    if (!o.quiet) print_human(progress, o, r);
    const auto j = summary(o, r, src, dst);
    if (o.json == "-") {
      std::cout << j.dump(2) << std::endl;
    } else if (!o.json.empty()) {
      std::ofstream f(o.json);
      f << j.dump(2) << '\n';
      if (!f) {
        std::fprintf(stderr, "gl-pktgen: cannot write %s\n", o.json.c_str());
        rc = kExitRuntime;
      }
    }
  } while (false);

  for (uint16_t p : started) rte_eth_dev_stop(p);
  uint16_t p;
  RTE_ETH_FOREACH_DEV(p) {
    rte_eth_dev_close(p);
  }
  gl::dp::eal_cleanup();
  return rc;
}

}  // namespace
}  // namespace gl::pktgen

int main(int argc, char** argv) {
  return gl::pktgen::run(argc, argv);
}
