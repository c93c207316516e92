// gl-bench-flow-install — how fast flows go into gldp through the datapath API.
//
// Starts its own gldp (two net_null ports, PMD on core 1) unless --socket names a running
// one, then installs N megaflows (in_port + IPv4 destination + UDP port, the shape OVS
// generates) with flow put batches of several sizes, dumps them and deletes them, and
// prints flows per second for each phase. Figures only; nothing is asserted.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "dataplane/api/client.hpp"
#include "dataplane/api/odp_actions.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double secs(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

std::vector<gl::api::FlowPut> make_flows(uint32_t n) {
  gl::flow::FlowMask mask = gl::flow::zero_key();
  mask.in_port = 0xffffffffu;
  mask.eth_type = 0xffff;
  mask.vlan_tci = 0xffff;
  mask.ipv4_dst = 0xffffffffu;
  mask.nw_proto = 0xff;
  mask.nw_frag = 0xff;
  mask.tp_dst = 0xffff;
  std::vector<uint8_t> acts = gl::odp::ActionWriter().output(2).take();
  std::vector<gl::api::FlowPut> v(n);
  for (uint32_t i = 0; i < n; ++i) {
    gl::flow::FlowKey k = gl::flow::zero_key();
    k.in_port = 1;
    k.eth_type = 0x0008;  // htons(0x0800)
    k.ipv4_dst = __builtin_bswap32(0x0a000000u + i);
    k.nw_proto = 17;
    k.tp_dst = static_cast<uint16_t>(__builtin_bswap16(static_cast<uint16_t>(1 + (i >> 24))));
    v[i].match.key = k;
    v[i].match.mask = mask;
    v[i].ufid = gl::api::ufid_from_match(v[i].match);
    v[i].flags = gl::api::kPutCreate;
    v[i].actions = acts;
  }
  return v;
}

pid_t spawn_gldp(const std::string& gldp, const std::string& sock) {
  pid_t pid = fork();
  if (pid == 0) {
    setsid();
    execl(gldp.c_str(), gldp.c_str(), "--socket", sock.c_str(), "--pmd-cores", "1", "--port",
          "a=net_null0,no-rx=1", "--port", "b=net_null1,no-rx=1", static_cast<char*>(nullptr));
    _exit(127);
  }
  return pid;
}

}  // namespace

int main(int argc, char** argv) {
  std::string sock, gldp = "build/dataplane/gldp";
  uint32_t n = 100000;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::puts(
          "usage: gl-bench-flow-install [--flows N] [--gldp PATH | --socket PATH]\n"
          "Installs N megaflows (default 100000) through the datapath API in batches of\n"
          "1, 64 and as many as fit a message, dumps and deletes them, printing flows/s.\n"
          "Without --socket it starts its own gldp (--gldp, default build/dataplane/gldp).");
      return 0;
    }
    if (a == "--flows" && i + 1 < argc) {
      n = static_cast<uint32_t>(std::strtoul(argv[++i], nullptr, 10));
    } else if (a == "--socket" && i + 1 < argc) {
      sock = argv[++i];
    } else if (a == "--gldp" && i + 1 < argc) {
      gldp = argv[++i];
    } else {
      std::fprintf(stderr, "gl-bench-flow-install: bad argument '%s' (try --help)\n", a.c_str());
      return 2;
    }
  }
  if (n == 0) n = 1;
  pid_t child = -1;
  if (sock.empty()) {
    sock = "/tmp/gl-bench-flow-" + std::to_string(getpid()) + ".sock";
    child = spawn_gldp(gldp, sock);
  }
  auto stop_child = [&] {
    if (child > 0) {
      kill(-child, SIGTERM);
      waitpid(child, nullptr, 0);
    }
  };

  std::optional<gl::api::Client> c;
  for (int tries = 0; tries < 300 && !c; ++tries) {
    auto r = gl::api::Client::connect(sock);
    if (r && r->info()) {
      c.emplace(std::move(*r));
    } else {
      usleep(100000);
    }
  }
  if (!c) {
    std::fprintf(stderr, "gl-bench-flow-install: no gldp at %s\n", sock.c_str());
    stop_child();
    return 1;
  }

  auto flows = make_flows(n);
  std::printf("flow install through the datapath API, %u megaflows (in_port+ipv4 dst+udp dst)\n",
              n);
  std::printf("%-28s %12s %14s\n", "phase", "seconds", "flows/s");
  int rc = 0;
  auto row = [](const char* what, double s, uint32_t cnt) {
    std::printf("%-28s %12.3f %14.0f\n", what, s, cnt / s);
  };
  for (size_t batch : {size_t(1), size_t(64), size_t(0)}) {
    const uint32_t cnt = batch == 1 ? std::min<uint32_t>(n, 20000) : n;  // batch 1: a sample
    auto t0 = Clock::now();
    size_t errors = 0;
    if (batch == 0) {
      auto r = c->flow_put(std::span(flows.data(), cnt));  // the client fills each message
      if (!r) {
        std::fprintf(stderr, "put: %s\n", r.error().message.c_str());
        rc = 1;
        break;
      }
      for (auto& e : *r) errors += e.error != 0;
    } else {
      for (size_t i = 0; i < cnt; i += batch) {
        auto r = c->flow_put(std::span(flows.data() + i, std::min<size_t>(batch, cnt - i)));
        if (!r) {
          rc = 1;
          break;
        }
        for (auto& e : *r) errors += e.error != 0;
      }
    }
    auto t1 = Clock::now();
    std::string label =
        batch == 0 ? "put, batch = full message" : "put, batch = " + std::to_string(batch);
    row(label.c_str(), secs(t0, t1), cnt);
    if (errors) std::printf("  (%zu entries refused)\n", errors);

    uint32_t seen = 0;
    t0 = Clock::now();
    c->flow_dump([&](const gl::api::Flow&) {
      ++seen;
      return true;
    });
    t1 = Clock::now();
    if (batch == 0) row("dump", secs(t0, t1), seen);

    std::vector<gl::api::Ufid> ufids;
    ufids.reserve(cnt);
    for (uint32_t i = 0; i < cnt; ++i) ufids.push_back(flows[i].ufid);
    t0 = Clock::now();
    auto d = c->flow_del(ufids);
    t1 = Clock::now();
    if (!d) rc = 1;
    if (batch == 0) row("delete, batched", secs(t0, t1), cnt);
  }
  stop_child();
  return rc;
}
