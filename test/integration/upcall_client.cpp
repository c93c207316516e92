// gl-upcall-client — a minimal datapath client for the upcall tests: subscribes to
// misses, installs a flow per miss (in_port + eth_type + eth_dst exact, the rest
// wildcarded) that floods to the other listed ports, and re-injects the packet with
// execute. Prints one line per upcall handled.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "dataplane/api/client.hpp"
#include "dataplane/api/odp_actions.hpp"

int main(int argc, char** argv) {
  std::string sock;
  std::vector<uint32_t> ports;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::puts(
          "usage: gl-upcall-client --socket PATH --ports N,N,...\n"
          "Installs a flooding flow for every miss gldp reports (test helper).");
      return 0;
    }
    if (a == "--socket" && i + 1 < argc) {
      sock = argv[++i];
    } else if (a == "--ports" && i + 1 < argc) {
      std::string s = argv[++i];
      size_t p = 0;
      while (p < s.size()) {
        ports.push_back(static_cast<uint32_t>(std::stoul(s.substr(p))));
        size_t c = s.find(',', p);
        if (c == std::string::npos) break;
        p = c + 1;
      }
    } else {
      std::fprintf(stderr, "gl-upcall-client: bad argument '%s'\n", a.c_str());
      return 2;
    }
  }
  if (sock.empty() || ports.empty()) {
    std::fprintf(stderr, "gl-upcall-client: --socket and --ports are required\n");
    return 2;
  }
  auto c = gl::api::Client::connect(sock);
  if (!c) {
    std::fprintf(stderr, "gl-upcall-client: %s\n", c.error().message.c_str());
    return 1;
  }
  if (auto r = c->subscribe_upcalls(1, true); !r) {
    std::fprintf(stderr, "gl-upcall-client: subscribe: %s\n", r.error().message.c_str());
    return 1;
  }
  std::signal(SIGPIPE, SIG_IGN);
  for (;;) {
    auto u = c->recv_upcall(std::chrono::milliseconds(1000));
    if (!u) {
      std::fprintf(stderr, "gl-upcall-client: %s\n", u.error().message.c_str());
      return 1;
    }
    if (!u->has_value()) continue;
    const gl::api::Upcall& up = **u;
    gl::odp::ActionWriter w;
    for (uint32_t p : ports)
      if (p != up.key.in_port) w.output(p);
    std::vector<uint8_t> acts = w.take();
    gl::api::FlowPut fp;
    fp.match.key = up.key;
    fp.match.mask = gl::flow::zero_key();
    fp.match.mask.in_port = 0xffffffffu;
    fp.match.mask.eth_type = 0xffff;
    std::memset(fp.match.mask.eth_dst, 0xff, 6);
    gl::flow::apply_mask(up.key, fp.match.mask, fp.match.key);
    fp.ufid = gl::api::ufid_from_match(fp.match);
    fp.flags = gl::api::kPutCreate;
    fp.actions = acts;
    auto put = c->flow_put(std::span(&fp, 1));
    int err = put ? (*put)[0].error : -1;
    auto ex = c->execute(up.key, acts, up.packet);
    std::printf("upcall in_port=%u len=%zu put=%d execute=%s\n", up.key.in_port, up.packet.size(),
                err, ex ? "ok" : ex.error().message.c_str());
    std::fflush(stdout);
  }
}
