// Fuzz target: gldp's datapath API server (dataplane/server.cpp) on hostile datagrams. A
// real Datapath (EAL with --no-huge, two net_ring ports, no PMD thread) is served by the
// real Server in a thread on a Unix socket, as gldp serves it. An input is a sequence of
// datagrams ([u16 little-endian length][bytes], up to 32 of them) sent on one fresh
// connection; the connection then asks kInfo, whose reply must come (the server neither
// crashed nor hung nor stopped serving other requests), and closes. Between inputs the
// state is put back (flows, firewall, connections, the two ports), so that an input means
// the same in any order.
//
// The seeds are real clients' conversations: gl::api::Client sessions (ports, flows,
// execute, configuration, conntrack, timeout policies, fragments, the firewall
// transaction, SAs, upcall subscription) recorded by a relay between client and server.
//
// Safety: the fuzzer must not make gldp touch the machine. A kPortAdd is sent only when
// its devargs name a net_ring or net_null device (memory only); others are skipped.
// Runs under the deterministic driver (fuzz:gl-fuzz-dpapi) and under libFuzzer with ASan +
// UBSan (tools/fuzz.sh): our code is instrumented, Debian's DPDK libraries are not.
#include <poll.h>
#include <rte_eal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "dataplane/api/client.hpp"
#include "dataplane/api/message.hpp"
#include "dataplane/api/odp_text.hpp"
#include "dataplane/datapath.hpp"
#include "dataplane/eal_args.hpp"
#include "dataplane/server.hpp"
#include "flowtables/packet_builder.hpp"

namespace api = gl::api;

namespace {

constexpr uint32_t kProbeXid = 0xfffffff0u;
constexpr size_t kMaxMessages = 32;

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "gl-fuzz-dpapi: %s\n", what);
  std::abort();
}

int connect_to(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) die("connect");
  return fd;
}

struct World {
  std::string path = "/tmp/gl-fuzz-dpapi-" + std::to_string(::getpid()) + ".sock";
  std::unique_ptr<gl::dp::Datapath> dp;
  std::unique_ptr<gl::dp::Server> server;
  std::atomic<bool> stop{false};
  std::thread th;
  std::unique_ptr<api::Client> admin;  // puts the state back between inputs
  int ring_seq = 0;

  World() {
    auto args = gl::dp::eal_args("fuzzdpapi", "0,1", {"--log-level=*:critical"}, false, 256);
    auto argv = gl::dp::to_argv(args);
    if (rte_eal_init(static_cast<int>(args.size()), argv.data()) < 0) die("EAL");
    gl::dp::DatapathOptions o;
    o.pmd_lcores = {1};  // not started: the server's control context does the work
    o.n_mbufs = 4095;
    auto d = gl::dp::Datapath::create(o);
    if (!d) die("datapath");
    dp = std::move(*d);
    server = std::make_unique<gl::dp::Server>(*dp, path);
    std::string err;
    if (!server->listen(err)) die(err.c_str());
    th = std::thread([this] { server->run(stop); });
    auto c = api::Client::connect(path);
    if (!c) die("admin connect");
    admin = std::make_unique<api::Client>(std::move(*c));
    restore();
  }

  // The state every input starts from: ports r1, r2; no flows, firewall or connections.
  void restore() {
    if (!admin->flow_flush() || !admin->fw_clear() || !admin->ct_flush()) die("restore");
    auto ports = admin->port_list();
    if (!ports) die("port list");
    bool have[3] = {};
    for (const auto& p : *ports) {
      const std::string name = p.name;
      if ((name == "r1" && p.port_no == 1) || (name == "r2" && p.port_no == 2))
        have[p.port_no] = true;
      else if (p.port_no != 0 && !admin->port_del(p.port_no))
        die("port del");
    }
    for (uint32_t no = 1; no <= 2; ++no)
      if (!have[no] && !admin->port_add("r" + std::to_string(no),
                                        "net_ring_fz" + std::to_string(ring_seq++), no, 2))
        die("port add");
  }

  // Sends one input's datagrams on a fresh connection, then the kInfo probe; waits for
  // the probe's answer (or the server closing the connection: it does for unframeable
  // input) while reading whatever else comes back.
  void run(const std::vector<std::vector<uint8_t>>& msgs) {
    const int fd = connect_to(path);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    std::vector<uint8_t> rx(api::kMaxMessage + 64);
    bool closed = false, answered = false;
    auto drain = [&](int timeout_ms) {
      pollfd p{fd, POLLIN, 0};
      while (!closed && ::poll(&p, 1, timeout_ms) > 0) {
        const ssize_t n = ::recv(fd, rx.data(), rx.size(), MSG_DONTWAIT);
        if (n <= 0) {
          closed = n == 0 || (errno != EAGAIN && errno != EINTR);
          return;
        }
        api::MessageReader r({rx.data(), static_cast<size_t>(n)});
        if (r.check_header() == api::HeaderError::kOk && r.header().xid == kProbeXid &&
            (r.header().flags & api::kFlagReply) != 0)
          answered = true;
        timeout_ms = 0;
      }
    };
    auto send_all = [&](std::span<const uint8_t> m) {
      while (!closed) {
        if (::send(fd, m.data(), m.size(), MSG_NOSIGNAL | MSG_DONTWAIT) >= 0) return;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
          closed = true;  // the server closed the connection
          return;
        }
        drain(20);
        if (std::chrono::steady_clock::now() > deadline) die("server stopped reading");
      }
    };
    for (const auto& m : msgs) {
      if (!allowed(m)) continue;
      send_all(m);
      drain(0);
    }
    api::MessageBuilder probe(api::MsgType::kInfo, kProbeXid);
    send_all(probe.finish());
    while (!closed && !answered) {
      drain(100);
      if (std::chrono::steady_clock::now() > deadline) die("no answer to kInfo: server hung");
    }
    ::close(fd);
    // Whatever the input did to its own connection, the server still answers others.
    if (!admin->info()) die("the server stopped answering");
    restore();
  }

  // Only memory-backed devices may be added.
  static bool allowed(const std::vector<uint8_t>& m) {
    api::MsgHeader h;
    if (m.size() < sizeof h) return true;
    std::memcpy(&h, m.data(), sizeof h);
    if (h.type != static_cast<uint16_t>(api::MsgType::kPortAdd)) return true;
    if (m.size() < sizeof h + sizeof(api::PortAddRequest)) return true;  // refused as short
    api::PortAddRequest req;
    std::memcpy(&req, m.data() + sizeof h, sizeof req);
    return std::strncmp(req.devargs, "net_ring", 8) == 0 ||
           std::strncmp(req.devargs, "net_null", 8) == 0;
  }
};

World* g_world = nullptr;

World& world() {
  if (g_world == nullptr) {
    g_world = new World();
    std::atexit([] {
      const auto& c = g_world->server->counters();
      std::printf(
          "server: %llu requests, %llu refused as malformed, %llu connections closed "
          "for unframeable input\n",
          static_cast<unsigned long long>(c.requests),
          static_cast<unsigned long long>(c.bad_requests),
          static_cast<unsigned long long>(c.closed_protocol));
      g_world->admin.reset();
      g_world->stop = true;
      g_world->th.join();
      g_world->server.reset();
      g_world->dp.reset();
      gl::dp::eal_cleanup();
    });
  }
  return *g_world;
}

std::vector<std::vector<uint8_t>> split(const uint8_t* data, size_t size) {
  std::vector<std::vector<uint8_t>> out;
  size_t at = 0;
  while (at + 2 <= size && out.size() < kMaxMessages) {
    const size_t len = std::min<size_t>(data[at] | size_t{data[at + 1]} << 8, size - at - 2);
    out.emplace_back(data + at + 2, data + at + 2 + len);
    at += 2 + len;
  }
  return out;
}

// ---- seeds: client sessions recorded by a relay ------------------------------------------

// Accepts one client on its own socket and passes datagrams both ways to the server,
// keeping a copy of what the client sent.
std::vector<std::vector<uint8_t>> record(World& w, const std::function<void(api::Client&)>& fn) {
  const std::string rpath = w.path + ".rec";
  const int lfd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::snprintf(a.sun_path, sizeof a.sun_path, "%s", rpath.c_str());
  ::unlink(rpath.c_str());
  if (lfd < 0 || ::bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::listen(lfd, 1) != 0)
    die("relay listen");
  std::vector<std::vector<uint8_t>> sent;
  std::thread relay([&] {
    const int cfd = ::accept(lfd, nullptr, nullptr);
    const int sfd = connect_to(w.path);
    std::vector<uint8_t> buf(api::kMaxMessage + 64);
    pollfd p[2] = {{cfd, POLLIN, 0}, {sfd, POLLIN, 0}};
    for (;;) {
      if (::poll(p, 2, -1) <= 0) break;
      bool done = false;
      for (int i = 0; i < 2; ++i) {
        if (p[i].revents == 0) continue;
        const ssize_t n = ::recv(p[i].fd, buf.data(), buf.size(), 0);
        if (n <= 0) {
          done = true;
          break;
        }
        if (i == 0) sent.emplace_back(buf.data(), buf.data() + n);
        ::send(p[1 - i].fd, buf.data(), static_cast<size_t>(n), MSG_NOSIGNAL);
      }
      if (done) break;
    }
    ::close(cfd);
    ::close(sfd);
  });
  {
    auto c = api::Client::connect(rpath);
    if (!c) die("relay connect");
    fn(*c);
  }  // the client closes: the relay ends
  relay.join();
  ::close(lfd);
  ::unlink(rpath.c_str());
  w.restore();
  return sent;
}

std::vector<uint8_t> flow_bytes(const std::vector<std::vector<uint8_t>>& msgs) {
  std::vector<uint8_t> s;
  for (const auto& m : msgs) {
    const size_t n = std::min<size_t>(m.size(), 0xffff);
    s.push_back(static_cast<uint8_t>(n));
    s.push_back(static_cast<uint8_t>(n >> 8));
    s.insert(s.end(), m.begin(), m.begin() + static_cast<std::ptrdiff_t>(n));
  }
  return s;
}

std::vector<uint8_t> actions(const char* text) {
  auto a = gl::odp::parse_actions(text);
  if (!a) die(text);
  return *a;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  world().run(split(data, size));
  return 0;
}

std::vector<std::vector<uint8_t>> fuzz_seeds() {
  World& w = world();
  const auto pkt = gl::flow::PacketBuilder()
                       .eth("02:00:00:00:00:01", "02:00:00:00:00:02")
                       .ipv4("10.0.0.1", "10.0.0.2")
                       .tcp(40000, 5432)
                       .build();
  std::vector<std::vector<uint8_t>> seeds;
  auto add = [&](const std::function<void(api::Client&)>& fn) {
    seeds.push_back(flow_bytes(record(w, fn)));
  };
  add([](api::Client& c) {  // ports, statistics, configuration
    (void)c.info();
    (void)c.port_list();
    (void)c.port_get(1);
    (void)c.port_get("r2");
    (void)c.port_set_mtu(2, "", 1400);
    (void)c.port_add("n1", "net_null_fz", api::kPortAny, 1);
    (void)c.port_del("n1");
    (void)c.stats();
    (void)c.stats_clear();
    (void)c.set_config("miss-hold-ms", "20");
    (void)c.subscribe_upcalls(1, true);
  });
  add([&](api::Client& c) {  // flows and execute
    std::vector<api::FlowPut> puts(2);
    puts[0].match = *gl::odp::parse_flow(
        "recirc_id(0),in_port(1),eth_type(0x0800),ipv4(dst=10.0.0.2,proto=6),tcp(dst=5432)");
    puts[0].ufid = api::ufid_from_match(puts[0].match);
    puts[0].actions = actions("ct(zone=5,commit),2");
    puts[1].match = *gl::odp::parse_flow("recirc_id(0),in_port(2),eth_type(0x0806)");
    puts[1].ufid = api::ufid_from_match(puts[1].match);
    puts[1].actions = actions("push_vlan(vid=10,pcp=0),1");
    auto put = c.flow_put(puts);
    if (!put || (*put)[0].error != 0 || (*put)[1].error != 0) die("seed: flow put refused");
    (void)c.flow_get(puts[0].ufid);
    (void)c.flow_dump([](const api::Flow&) { return true; });
    const api::Ufid del[] = {puts[1].ufid};
    (void)c.flow_del(del);
    gl::flow::FlowKey md = gl::flow::zero_key();
    md.in_port = 1;
    const auto a = actions("set(ipv4(dst=10.0.0.9)),2");
    if (!c.execute(md, a, pkt)) die("seed: execute refused");
    const api::ExecuteOp ops[] = {{md, a, pkt}, {md, a, pkt}};
    (void)c.execute_batch(ops);
    (void)c.flow_flush();
  });
  add([](api::Client& c) {  // the connection tracker and fragment reassembly
    (void)c.ct_get_config();
    (void)c.ct_set_max_conns(5000);
    (void)c.ct_set_tcp_seq_check(false);
    const api::CtZoneLimit zl[] = {{5, 3, 0, 0}};
    (void)c.ct_set_limits(10, zl);
    const uint32_t zones[] = {5};
    (void)c.ct_get_limits(zones);
    (void)c.ct_del_limits(zones);
    (void)c.ct_dump(5, [](const api::CtEntry&) { return true; });
    api::CtTuple t{};
    t.family = 4;
    t.proto = 6;
    t.src[0] = 10, t.src[3] = 1, t.dst[0] = 10, t.dst[3] = 2;
    t.sport = 40000, t.dport = 5432;
    (void)c.ct_flush(5, &t);
    (void)c.ct_flush(3);
    (void)c.ct_stats(true);
    api::CtTimeoutPolicy tp{};
    tp.id = 1;
    tp.present = 0x3;
    tp.sec[0] = 30, tp.sec[1] = 60;
    if (!c.ct_set_timeout_policy(tp)) die("seed: timeout policy refused");
    (void)c.ct_get_timeout_policy(1);
    (void)c.ct_dump_timeout_policies();
    (void)c.ct_del_timeout_policy(1);
    (void)c.ipf_set_enabled(false, true);
    (void)c.ipf_set_min_frag(false, 1000);
    (void)c.ipf_set_max_nfrags(100);
    (void)c.ipf_get_status();
    (void)c.ipf_dump();
  });
  add([](api::Client& c) {  // a firewall version and its queries
    std::vector<api::FwPrefixWire> ipc(2);
    for (int i = 0; i < 2; ++i) {
      ipc[i].family = 4;
      ipc[i].len = 32;
      const uint8_t ad[4] = {10, 0, 0, static_cast<uint8_t>(i + 1)};
      std::memcpy(ipc[i].addr, ad, 4);
      ipc[i].identity = 10 + static_cast<uint32_t>(i);
    }
    std::vector<api::FwPortSpec> ports(2);
    for (uint32_t i = 0; i < 2; ++i) {
      ports[i].port_no = i + 1;
      ports[i].identity = 10 + i;
      ports[i].conn_limit = 100;
      ports[i].ipv4 = {gl::flow::ipv4_addr(i == 0 ? "10.0.0.1" : "10.0.0.2")};
      api::FwEntryWire e{};
      e.remote = 11 - i;
      e.rule_id = 7;
      e.port_lo = e.port_hi = 5432;
      e.proto = 6;
      e.action = 0;
      e.log = 1;
      (i == 0 ? ports[i].from_vm : ports[i].to_vm).push_back(e);
    }
    const std::string quarantine[] = {"vm9"};
    if (!c.fw_install(1, ipc, ports, 0, quarantine)) die("seed: firewall version refused");
    // Deltas: port 2's rules changed, then port 1 out and a new ipcache.
    std::vector<api::FwPortSpec> changed{ports[1]};
    changed[0].to_vm[0].port_lo = 5000;
    api::Client::FwDelta d;
    d.base = 1;
    d.ports = changed;
    if (!c.fw_update(2, d)) die("seed: firewall delta refused");
    const uint32_t out[] = {1};
    api::Client::FwDelta d2;
    d2.base = 2;
    d2.removed = out;
    d2.new_ipcache = true;
    d2.ipcache = std::span<const api::FwPrefixWire>(ipc).first(1);
    if (!c.fw_update(3, d2)) die("seed: second firewall delta refused");
    (void)c.fw_update(4, d);  // stale: refused
    (void)c.fw_status();
    (void)c.fw_rule_stats();
    api::FwTraceRequest tr{};
    tr.port_no = 1;
    tr.tuple.family = 4;
    tr.tuple.proto = 6;
    tr.tuple.dport = 5432;
    (void)c.fw_trace(tr);
    (void)c.fw_events();
    (void)c.ct_dump(
        1, [](const api::CtEntry&) { return true; }, true);
    (void)c.ct_flush(1, nullptr, true);
    (void)c.fw_clear();
  });
  add([](api::Client& c) {  // security associations
    api::SaAddRequest req{};
    req.cfg.spi = 300;
    req.cfg.dir = 1;
    req.cfg.ttl = 64;
    req.cfg.pmd = 0;
    req.cfg.local[0] = 192, req.cfg.local[3] = 1;
    req.cfg.remote[0] = 192, req.cfg.remote[3] = 2;
    for (size_t i = 0; i < sizeof req.keymat; ++i) req.keymat[i] = static_cast<uint8_t>(i);
    if (auto r = c.sa_add(req); !r) die(("seed: " + r.error().message).c_str());
    (void)c.sa_dump(true);
    (void)c.sa_del(300, api::SaDir::kIn, 1000);
    (void)c.sa_del(300, api::SaDir::kIn);
  });
  for (const auto& s : seeds)
    if (s.empty()) die("a recorded session sent nothing");
  return seeds;
}
