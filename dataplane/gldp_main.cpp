// gldp — the Goldilocks dataplane process.
//
// Starts the DPDK EAL (hugepages when usable, else --no-huge --in-memory), creates the
// datapath with one PMD thread per --pmd-cores entry, optionally adds ports given on the
// command line, and serves the datapath API on --socket until SIGINT/SIGTERM.
#include <rte_eal.h>
#include <rte_lcore.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "dataplane/datapath.hpp"
#include "dataplane/eal_args.hpp"
#include "dataplane/server.hpp"

namespace {

std::atomic<bool> g_stop{false};

void on_signal(int) {
  g_stop.store(true);
}

constexpr const char* kUsage = R"(usage: gldp [options] [-- EAL arguments]

The Goldilocks dataplane: a DPDK poll-mode datapath programmed through the
datapath API socket (gl-dpctl, ovs-vswitchd with datapath_type=gl, glctld).

Options:
  --socket PATH            API socket (default /run/gldp/gldp.sock); created 0600
  --pmd-cores LIST         cores for PMD threads, e.g. 1 or 1,3 or 2-5 (default 1);
                           the control thread runs on --control-core
  --control-core N         core of the control (API) thread (default 0)
  --port NAME=DEVARGS      add a port at start (repeatable), e.g.
                           --port p1=net_af_packet0,iface=veth0
  --mbufs N                packet buffers in the pool (default 32767)
  --upcall-rate N          misses per second per PMD sent to clients (default 200000,
                           0 = unlimited); the excess is dropped and counted. With
                           the miss hold on, repeats of misses already sent up have
                           a budget of their own, N/8 (and the main one's while it
                           is more than half full)
  --emc-insert-inv-prob N  insert into the exact-match cache with probability 1/N
                           (default 100, 0 = EMC off, 1 = always)
  --miss-hold-ms N         repeated misses of a flow whose first miss is with the
                           handler are held up to N ms (up to 10 N, at most 1 s,
                           while the handler keeps installing flows) and then run
                           through the flow that appeared, or sent up (default 50,
                           0 = off)
  --ct-capacity N          connections the tracker's table holds (default 3000000,
                           OVS's default maxconns); ct-set-maxconns may not exceed it.
                           Memory: the index, 32-64 bytes per connection of capacity
                           (128 MiB for the default), resident from the start, plus
                           192 bytes per connection, backed as connections come
  --fw-ct-capacity N       connections the firewall stage's own tracker holds
                           (default 1000000; the same memory rule as --ct-capacity)
  --fw-state PATH          where gldp keeps the names of the firewall's workload
                           ports (default: the socket's path + ".fw-ports"; "none":
                           nowhere). A gldp started with that file drops those ports'
                           traffic (fw_quarantine) until a firewall version binds
                           them, so that a restart after a crash is not open until
                           glctld's policy is back; gl-dpctl fw-clear removes it. A
                           path outside /run (e.g. /var/lib/goldilocks/gldp.fw-ports)
                           keeps them closed after a reboot too
  -h, --help               this text

EAL arguments after "--" are passed to DPDK as they are (e.g. --vdev, -a, --log-level).
Hugepages are used when mounted with free pages; otherwise gldp runs with
--no-huge --in-memory. Every gldp gets a unique --file-prefix.

Examples:
  gldp --socket /tmp/gl.sock --pmd-cores 1
  gldp --socket /tmp/gl.sock --port p1=net_tap0,iface=gl0 --port p2=net_null0
)";

bool parse_cores(const std::string& s, std::vector<unsigned>& out) {
  size_t i = 0;
  while (i < s.size()) {
    size_t j = s.find(',', i);
    std::string part = s.substr(i, j == std::string::npos ? std::string::npos : j - i);
    size_t dash = part.find('-');
    char* end = nullptr;
    unsigned long a = std::strtoul(part.c_str(), &end, 10);
    if (end == part.c_str()) return false;
    unsigned long b = a;
    if (dash != std::string::npos) {
      const char* bs = part.c_str() + dash + 1;
      b = std::strtoul(bs, &end, 10);
      if (end == bs || b < a) return false;
    } else if (*end != '\0') {
      return false;
    }
    if (b >= RTE_MAX_LCORE) return false;
    for (unsigned long c = a; c <= b; ++c) out.push_back(static_cast<unsigned>(c));
    if (j == std::string::npos) break;
    i = j + 1;
  }
  return !out.empty();
}

int usage_error(const std::string& msg) {
  std::fprintf(stderr, "gldp: %s\n(try gldp --help)\n", msg.c_str());
  return 2;
}

bool parse_uint(const std::string& s, unsigned long max, unsigned long& out) {
  char* end = nullptr;
  errno = 0;
  out = std::strtoul(s.c_str(), &end, 10);
  return !s.empty() && *end == '\0' && errno == 0 && out <= max;
}

}  // namespace

int main(int argc, char** argv) {
  std::string socket_path = "/run/gldp/gldp.sock";
  std::string pmd_cores = "1";
  unsigned long control_core = 0;
  std::vector<std::pair<std::string, std::string>> ports;
  gl::dp::DatapathOptions opts;
  opts.ct_populate_index = true;
  std::vector<std::string> eal_extra;
  std::string fw_state;  // empty: not given

  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](std::string& out) {
      if (i + 1 >= argc) return false;
      out = argv[++i];
      return true;
    };
    std::string v;
    unsigned long n;
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (a == "--") {
      for (++i; i < argc; ++i) eal_extra.emplace_back(argv[i]);
    } else if (a == "--socket") {
      if (!value(socket_path)) return usage_error("--socket needs a path");
    } else if (a == "--pmd-cores") {
      if (!value(pmd_cores)) return usage_error("--pmd-cores needs a core list");
    } else if (a == "--control-core") {
      if (!value(v) || !parse_uint(v, RTE_MAX_LCORE - 1, control_core))
        return usage_error("--control-core needs a core number");
    } else if (a == "--port") {
      if (!value(v)) return usage_error("--port needs NAME=DEVARGS");
      size_t eq = v.find('=');
      if (eq == std::string::npos || eq == 0 || eq + 1 == v.size())
        return usage_error("--port needs NAME=DEVARGS, got '" + v + "'");
      ports.emplace_back(v.substr(0, eq), v.substr(eq + 1));
    } else if (a == "--mbufs") {
      if (!value(v) || !parse_uint(v, 16u << 20, n) || n < 1024)
        return usage_error("--mbufs needs a number from 1024 to 16777216");
      opts.n_mbufs = static_cast<unsigned>(n);
    } else if (a == "--upcall-rate") {
      if (!value(v) || !parse_uint(v, UINT32_MAX, n))
        return usage_error("--upcall-rate needs a number");
      opts.upcall_rate = static_cast<uint32_t>(n);
    } else if (a == "--miss-hold-ms") {
      if (!value(v) || !parse_uint(v, 10000, n))
        return usage_error("--miss-hold-ms needs a number from 0 to 10000");
      opts.miss_hold_ms = static_cast<uint32_t>(n);
    } else if (a == "--ct-capacity") {
      if (!value(v) || !parse_uint(v, 1u << 30, n) || n < 16)
        return usage_error("--ct-capacity needs a number from 16 to 1073741824");
      opts.ct_capacity = static_cast<uint32_t>(n);
    } else if (a == "--fw-ct-capacity") {
      if (!value(v) || !parse_uint(v, 1u << 30, n) || n < 16)
        return usage_error("--fw-ct-capacity needs a number from 16 to 1073741824");
      opts.fw_ct_capacity = static_cast<uint32_t>(n);
    } else if (a == "--fw-state") {
      if (!value(fw_state) || fw_state.empty())
        return usage_error("--fw-state needs a path (or none)");
    } else if (a == "--emc-insert-inv-prob") {
      if (!value(v) || !parse_uint(v, UINT32_MAX, n))
        return usage_error("--emc-insert-inv-prob needs a number");
      opts.emc_insert_inv_prob = static_cast<uint32_t>(n);
    } else {
      return usage_error("unknown option '" + a + "'");
    }
  }
  if (fw_state.empty()) fw_state = socket_path + ".fw-ports";
  if (fw_state != "none") opts.fw_state_file = fw_state;
  if (!parse_cores(pmd_cores, opts.pmd_lcores))
    return usage_error("bad --pmd-cores '" + pmd_cores + "' (e.g. 1 or 1,3 or 2-5)");
  for (unsigned c : opts.pmd_lcores)
    if (c == control_core)
      return usage_error("PMD core " + std::to_string(c) + " is also the control core");

  // EAL: the control core is the main lcore (DPDK would take the lowest of the list), then
  // the PMD cores.
  std::string lcores = std::to_string(control_core);
  for (unsigned c : opts.pmd_lcores) lcores += "," + std::to_string(c);
  eal_extra.push_back("--main-lcore=" + std::to_string(control_core));
  auto args =
      gl::dp::eal_args("gldp", lcores, eal_extra, /*want_pci=*/false, 512 + opts.n_mbufs / 8);
  auto argv_eal = gl::dp::to_argv(args);
  if (rte_eal_init(static_cast<int>(args.size()), argv_eal.data()) < 0) {
    std::fprintf(stderr, "gldp: cannot start the DPDK EAL: %s\n", rte_strerror(rte_errno));
    return 1;
  }

  // The Datapath lives in this scope: its destructor frees ports, rings and mempools,
  // which must happen before eal_cleanup() on every path, the error paths included.
  int rc = 0;
  {
    auto dp = gl::dp::Datapath::create(opts);
    if (!dp) {
      std::fprintf(stderr, "gldp: %s\n", dp.error().c_str());
      rc = 1;
    }
    if (rc == 0 && (*dp)->fw_state_loaded() != 0)
      std::printf(
          "gldp: firewall state %s: %zu workload ports pass nothing until a firewall "
          "version binds them\n",
          fw_state.c_str(), (*dp)->fw_state_loaded());
    for (size_t i = 0; rc == 0 && i < ports.size(); ++i) {
      const auto& [name, devargs] = ports[i];
      gl::dp::PortConfig pc;
      pc.name = name;
      pc.devargs = devargs;
      auto r = (*dp)->port_add(pc);
      if (!r) {
        std::fprintf(stderr, "gldp: port %s: %s\n", name.c_str(), r.error().message.c_str());
        rc = 1;
        break;
      }
      std::printf("gldp: port %u %s (%s)\n", r->port_no, name.c_str(), devargs.c_str());
    }
    if (rc == 0) {
      gl::dp::Server server(**dp, socket_path);
      std::string err;
      if (!server.listen(err)) {
        std::fprintf(stderr, "gldp: %s\n", err.c_str());
        rc = 1;
      } else {
        std::signal(SIGINT, on_signal);
        std::signal(SIGTERM, on_signal);
        std::signal(SIGPIPE, SIG_IGN);
        (*dp)->start_pmds();
        std::printf("gldp: serving %s, PMD cores %s\n", socket_path.c_str(), pmd_cores.c_str());
        std::fflush(stdout);
        server.run(g_stop);
        std::printf("gldp: stopping\n");
      }
      (*dp)->stop_pmds();
    }
  }
  gl::dp::eal_cleanup();
  return rc;
}
