// Datapath tests in-process: EAL with net_ring ports (a net_ring port loops its tx back
// to its rx, so the test reads what the datapath sent). PMD threads are not started;
// packets go through the same pipeline via Datapath::inject / execute on this thread.
#include <linux/openvswitch.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include <arpa/inet.h>
#include <unistd.h>
#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <thread>
#include <vector>

#include "dataplane/api/client.hpp"
#include "dataplane/api/odp_actions.hpp"
#include "dataplane/api/odp_text.hpp"
#include "dataplane/datapath.hpp"
#include "dataplane/eal_args.hpp"
#include "dataplane/pmd.hpp"
#include "dataplane/server.hpp"
#include "flowtables/bytes.hpp"
#include "flowtables/checksum.hpp"
#include "flowtables/packet_builder.hpp"

using gl::flow::load_be16;
using gl::flow::load_be32;
using gl::flow::PacketBuilder;
using Bytes = std::vector<uint8_t>;

namespace {

void eal_once() {
  static bool done = [] {
    auto args = gl::dp::eal_args("dptest", "0,1", {"--log-level=*:error"}, false, 256);
    auto argv = gl::dp::to_argv(args);
    if (rte_eal_init(static_cast<int>(args.size()), argv.data()) < 0) std::abort();
    std::atexit([] { gl::dp::eal_cleanup(); });  // no runtime directory left behind
    return true;
  }();
  (void)done;
}

// A datapath with ports 1..n on net_ring devices.
struct Rig {
  std::unique_ptr<gl::dp::Datapath> dp;
  std::vector<uint16_t> dpdk_ids;  // index i → port i+1
  static inline int seq = 0;

  explicit Rig(int n_ports = 3, uint32_t upcall_rate = 200000, uint32_t miss_hold_ms = 50) {
    eal_once();
    gl::dp::DatapathOptions o;
    o.pmd_lcores = {1};
    o.n_mbufs = 4095;
    o.emc_insert_inv_prob = 1;
    o.upcall_rate = upcall_rate;
    o.miss_hold_ms = miss_hold_ms;
    auto d = gl::dp::Datapath::create(o);
    REQUIRE(d);
    dp = std::move(*d);
    for (int i = 0; i < n_ports; ++i) {
      gl::dp::PortConfig pc;
      pc.name = "r" + std::to_string(i + 1);
      pc.devargs = "net_ring" + std::to_string(seq++);
      pc.port_no = static_cast<uint32_t>(i + 1);
      pc.n_rxq = 2;  // net_ring: tx queue i loops back to rx queue i; the control
                     // context sends on queue 1 (queue 0 belongs to the PMD)
      auto r = dp->port_add(pc);
      REQUIRE(r);
      dpdk_ids.push_back(r->dpdk_port_id);
    }
  }

  rte_mbuf* mbuf(const Bytes& b) {
    rte_mbuf* m = rte_pktmbuf_alloc(dp->pool());
    REQUIRE(m != nullptr);
    std::memcpy(rte_pktmbuf_append(m, static_cast<uint16_t>(b.size())), b.data(), b.size());
    return m;
  }

  // Everything the datapath sent to `port` so far.
  std::vector<Bytes> sent(uint32_t port) {
    std::vector<Bytes> out;
    rte_mbuf* pkts[32];
    uint16_t n;
    for (uint16_t q = 0; q < 2; ++q) {
      while ((n = rte_eth_rx_burst(dpdk_ids[port - 1], q, pkts, 32)) > 0) {
        for (uint16_t i = 0; i < n; ++i) {
          const uint8_t* d = rte_pktmbuf_mtod(pkts[i], const uint8_t*);
          out.emplace_back(d, d + rte_pktmbuf_data_len(pkts[i]));
          rte_pktmbuf_free(pkts[i]);
        }
      }
    }
    return out;
  }

  void execute(const Bytes& pkt, const std::string& actions, uint32_t in_port = 1) {
    auto a = gl::odp::parse_actions(actions);
    REQUIRE(a);
    gl::flow::FlowKey md = gl::flow::zero_key();
    md.in_port = in_port;
    auto r = dp->execute(md, *a, pkt);
    REQUIRE(r);
  }

  void add_flow(const std::string& flow, const std::string& actions) {
    auto m = gl::odp::parse_flow(flow);
    REQUIRE(m);
    auto a = gl::odp::parse_actions(actions);
    REQUIRE(a);
    gl::api::FlowPutEntry e{};
    e.ufid = gl::api::Ufid{std::hash<std::string>{}(flow), 7};
    e.flags = gl::api::kPutCreate;
    e.key = m->key;
    e.mask = m->mask;
    auto res = dp->flow_put(e, *a);
    INFO(res.message);
    REQUIRE(res.error == 0);
  }

  // ol_flags: what the port says it verified (RTE_MBUF_F_RX_*_CKSUM_*).
  void inject(const Bytes& pkt, uint32_t in_port, uint64_t ol_flags = 0) {
    rte_mbuf* m = mbuf(pkt);
    m->ol_flags |= ol_flags;
    dp->inject(in_port, &m, 1);
  }

  uint64_t drops(const char* name) {
    gl::api::StatsReply t{};
    std::vector<gl::api::PmdStats> p;
    std::vector<gl::api::DropCounter> d;
    dp->fill_stats(t, p, d);
    for (auto& x : d)
      if (std::string_view(x.name) == name) return x.count;
    FAIL("no drop counter " << name);
    return 0;
  }
};

PacketBuilder udp4() {
  PacketBuilder b;
  b.eth("02:00:00:00:00:01", "02:00:00:00:00:02")
      .ipv4("10.0.0.1", "10.0.0.2")
      .ip_id(7)
      .udp(1234, 80)
      .payload(32);
  return b;
}

}  // namespace

TEST_CASE("output sends to one or several ports, drop sends nowhere", "[datapath][actions]") {
  Rig rig;
  Bytes pkt = udp4().build();
  rig.execute(pkt, "2");
  CHECK(rig.sent(2) == std::vector<Bytes>{pkt});
  rig.execute(pkt, "2,3");
  CHECK(rig.sent(2) == std::vector<Bytes>{pkt});
  CHECK(rig.sent(3) == std::vector<Bytes>{pkt});
  uint64_t d0 = rig.drops("action_drop");
  rig.execute(pkt, "drop");
  CHECK(rig.sent(2).empty());
  CHECK(rig.drops("action_drop") == d0 + 1);
  rig.execute(pkt, "9");  // no such port
  CHECK(rig.drops("no_port") == 1);
}

TEST_CASE("push_vlan and pop_vlan", "[datapath][actions]") {
  Rig rig;
  Bytes plain = udp4().build();
  Bytes tagged = udp4().vlan(10, 3).build();
  rig.execute(plain, "push_vlan(vid=10,pcp=3),2");
  CHECK(rig.sent(2) == std::vector<Bytes>{tagged});
  rig.execute(tagged, "pop_vlan,2");
  CHECK(rig.sent(2) == std::vector<Bytes>{plain});
  rig.execute(plain, "pop_vlan,2");  // untagged: no-op
  CHECK(rig.sent(2) == std::vector<Bytes>{plain});
}

TEST_CASE("set rewrites fields and keeps checksums right", "[datapath][actions]") {
  Rig rig;
  SECTION("ethernet") {
    rig.execute(udp4().build(), "set(eth(src=02:00:00:00:00:aa,dst=02:00:00:00:00:bb)),2");
    PacketBuilder want;
    want.eth("02:00:00:00:00:aa", "02:00:00:00:00:bb")
        .ipv4("10.0.0.1", "10.0.0.2")
        .ip_id(7)
        .udp(1234, 80)
        .payload(32);
    CHECK(rig.sent(2) == std::vector<Bytes>{want.build()});
  }
  SECTION("ipv4 dst, tos, ttl with UDP") {
    rig.execute(udp4().build(), "set(ipv4(dst=10.9.8.7,tos=0x20,ttl=9)),2");
    PacketBuilder want;
    want.eth("02:00:00:00:00:01", "02:00:00:00:00:02")
        .ipv4("10.0.0.1", "10.9.8.7")
        .ip_id(7)
        .tos(0x20)
        .ttl(9)
        .udp(1234, 80)
        .payload(32);
    CHECK(rig.sent(2) == std::vector<Bytes>{want.build()});
  }
  SECTION("masked ipv4 src with TCP") {
    auto tcp = [](const char* src) {
      PacketBuilder b;
      b.eth("02:00:00:00:00:01", "02:00:00:00:00:02")
          .ipv4(src, "10.0.0.2")
          .ip_id(7)
          .tcp(1000, 22)
          .payload(10);
      return b.build();
    };
    rig.execute(tcp("10.0.0.1"), "set(ipv4(src=192.168.0.0/255.255.0.0)),2");
    CHECK(rig.sent(2) == std::vector<Bytes>{tcp("192.168.0.1")});
  }
  SECTION("UDP without checksum keeps 0") {
    auto u = [](uint16_t dport) {
      PacketBuilder b;
      b.eth("02:00:00:00:00:01", "02:00:00:00:00:02")
          .ipv4("10.0.0.1", "10.0.0.2")
          .ip_id(7)
          .udp(1234, dport)
          .no_udp_checksum()
          .payload(8);
      return b.build();
    };
    rig.execute(u(80), "set(udp(dst=8080)),2");
    CHECK(rig.sent(2) == std::vector<Bytes>{u(8080)});
  }
  SECTION("tcp ports") {
    auto t = [](uint16_t s, uint16_t d) {
      PacketBuilder b;
      b.eth("02:00:00:00:00:01", "02:00:00:00:00:02")
          .ipv4("10.0.0.1", "10.0.0.2")
          .ip_id(7)
          .tcp(s, d)
          .payload(5);
      return b.build();
    };
    rig.execute(t(1000, 22), "set(tcp(src=4000,dst=2222)),2");
    CHECK(rig.sent(2) == std::vector<Bytes>{t(4000, 2222)});
  }
  SECTION("ipv6 dst with UDP, and hop limit") {
    auto v6 = [](const char* dst, uint8_t hl) {
      PacketBuilder b;
      b.eth("02:00:00:00:00:01", "02:00:00:00:00:02")
          .ipv6("2001:db8::1", dst)
          .ttl(hl)
          .udp(5, 6)
          .payload(12);
      return b.build();
    };
    rig.execute(v6("2001:db8::2", 64), "set(ipv6(dst=2001:db8::99,hlimit=3)),2");
    CHECK(rig.sent(2) == std::vector<Bytes>{v6("2001:db8::99", 3)});
  }
  SECTION("sctp port recomputes CRC32-C") {
    auto s = [](uint16_t d) {
      PacketBuilder b;
      b.eth("02:00:00:00:00:01", "02:00:00:00:00:02")
          .ipv4("10.0.0.1", "10.0.0.2")
          .ip_id(7)
          .sctp(9, d, 0x1234)
          .payload(16);
      return b.build();
    };
    rig.execute(s(100), "set(sctp(dst=200)),2");
    CHECK(rig.sent(2) == std::vector<Bytes>{s(200)});
  }
}

TEST_CASE("clone works on a copy; the original continues unchanged", "[datapath][actions]") {
  Rig rig;
  Bytes pkt = udp4().build();
  rig.execute(pkt, "clone(set(eth(dst=02:00:00:00:00:99)),2),3");
  auto to2 = rig.sent(2);
  REQUIRE(to2.size() == 1);
  CHECK(to2[0][5] == 0x99);
  CHECK(rig.sent(3) == std::vector<Bytes>{pkt});
}

TEST_CASE("sample: 100% always, 0% never", "[datapath][actions]") {
  Rig rig;
  Bytes pkt = udp4().build();
  for (int i = 0; i < 10; ++i) rig.execute(pkt, "sample(sample=100.0%,actions(2)),3");
  CHECK(rig.sent(2).size() == 10);
  CHECK(rig.sent(3).size() == 10);
  for (int i = 0; i < 10; ++i) rig.execute(pkt, "sample(sample=0.0%,actions(2)),3");
  CHECK(rig.sent(2).empty());
  CHECK(rig.sent(3).size() == 10);
}

TEST_CASE("pipeline: megaflow match, EMC, recirculation, misses", "[datapath][pipeline]") {
  Rig rig;
  rig.add_flow("recirc_id(0),in_port(1),eth_type(0x0800),ipv4(dst=10.0.0.2)", "recirc(5)");
  rig.add_flow("recirc_id(5),in_port(1),eth_type(0x0800)", "set(ipv4(ttl=1)),3");
  Bytes pkt = udp4().build();
  for (int i = 0; i < 5; ++i) rig.inject(pkt, 1);
  auto out = rig.sent(3);
  REQUIRE(out.size() == 5);
  CHECK(out[0][14 + 8] == 1);  // TTL rewritten after recirculation
  // A packet nobody has a flow for becomes an upcall (miss), not output.
  PacketBuilder other;
  other.eth("02:00:00:00:00:01", "02:00:00:00:00:02").ipv4("10.0.0.1", "10.0.0.3").udp(1, 2);
  rig.inject(other.build(), 1);
  CHECK(rig.sent(3).empty());
  int upcalls = 0;
  rig.dp->drain_upcalls(100, [&](const gl::dp::UpcallSlot& s) {
    ++upcalls;
    CHECK(s.kind == static_cast<uint8_t>(gl::api::UpcallKind::kMiss));
    CHECK(s.key.in_port == 1);
  });
  CHECK(upcalls == 1);
}

TEST_CASE("a flood of one flow's repeated misses does not starve a new flow's miss",
          "[datapath][pipeline]") {
  // 1500 misses of flow A, then one of flow B, against an upcall budget of 1/s with bursts
  // of 1024 (so that nothing refills during the test). With the miss hold on, A's repeats
  // are charged to their own budget (128) and then to the main one only while it is more
  // than half full: B's miss still goes up. With holding off there is one budget, and A's
  // flood spends it.
  auto run = [](uint32_t miss_hold_ms) {
    Rig rig(1, /*upcall_rate=*/1, miss_hold_ms);
    PacketBuilder a, b;
    a.eth("02:00:00:00:00:01", "02:00:00:00:00:02").ipv4("10.0.0.1", "10.0.0.2").udp(1, 2);
    b.eth("02:00:00:00:00:01", "02:00:00:00:00:02").ipv4("10.0.0.1", "10.0.0.3").udp(1, 2);
    int up_a = 0, up_b = 0;
    auto drain = [&] {
      rig.dp->drain_upcalls(4096, [&](const gl::dp::UpcallSlot& s) {
        if (s.key.ipv4_dst == gl::flow::hton32(0x0a000003))
          ++up_b;
        else
          ++up_a;
      });
    };
    const Bytes pa = a.build();
    for (int i = 0; i < 1500; ++i) {
      rig.inject(pa, 1);
      if (i % 256 == 255) drain();  // the upcall ring holds 1023
    }
    drain();
    rig.inject(b.build(), 1);
    drain();
    CHECK(up_a >= 1);
    const uint64_t limited = rig.drops("upcall_rate_limit");
    if (miss_hold_ms != 0) {
      // 1 first miss + 128 repeats on their own + 511 borrowed while the main budget
      // stayed above half: the rest, 860, limited (a flow without a megaflow is not cut
      // to the repeats' eighth while nothing else needs the budget).
      CHECK(limited == 1500 - 1 - 128 - 511);
    } else {
      CHECK(limited == 1500 + 1 - 1024);  // B's miss among them
    }
    return up_b;
  };
  CHECK(run(50) == 1);  // holding on: B's first miss goes up
  CHECK(run(0) == 0);   // one budget: A's flood spent it, B's miss was dropped
}

TEST_CASE("a burst of interleaved flows keeps its order and counts every packet per flow",
          "[datapath][pipeline]") {
  // Phase 4 works per run of consecutive packets of one flow: output-only runs go to the
  // tx buffer as a block, others through the action executor. A burst of 40 (more than a
  // tx buffer holds) alternating in runs of 1, 2 and 3 between an output-only flow and a
  // rewriting one, both to port 2: every packet leaves, in arrival order, and each flow
  // counts its own.
  Rig rig;
  rig.add_flow("recirc_id(0),in_port(1),eth_type(0x0800),ipv4(dst=10.0.0.2)", "2");
  rig.add_flow("recirc_id(0),in_port(1),eth_type(0x0800),ipv4(dst=10.0.0.3)", "set(ipv4(ttl=7)),2");
  std::vector<Bytes> in;
  std::vector<rte_mbuf*> burst;
  int n_a = 0, n_b = 0;
  for (int i = 0, run = 0; i < 40; ++run) {
    const bool a = run % 2 == 0;
    for (int k = 0; k < 1 + run % 3 && i < 40; ++k, ++i) {
      PacketBuilder b;
      b.eth("02:00:00:00:00:01", "02:00:00:00:00:02")
          .ipv4("10.0.0.1", a ? "10.0.0.2" : "10.0.0.3")
          .ip_id(static_cast<uint16_t>(i))
          .udp(1234, 80)
          .payload(32);
      in.push_back(b.build());
      burst.push_back(rig.mbuf(in.back()));
      (a ? n_a : n_b)++;
    }
  }
  rig.dp->inject(1, burst.data(), static_cast<uint16_t>(burst.size()));
  auto out = rig.sent(2);
  REQUIRE(out.size() == in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    INFO("packet " << i);
    CHECK(out[i][18] == in[i][18]);  // IPv4 ID (low byte): arrival order kept
    CHECK(out[i][19] == in[i][19]);
    const bool to_b = in[i][33] == 3;             // destination 10.0.0.3
    CHECK(out[i][22] == (to_b ? 7 : in[i][22]));  // TTL rewritten for flow B only
  }
  std::vector<uint64_t> counts;
  rig.dp->flow_dump(0, [&](const gl::dp::Flow& f) {
    counts.push_back(rig.dp->flow_stats(f).packets);
    return true;
  });
  std::sort(counts.begin(), counts.end());
  CHECK(counts == std::vector<uint64_t>{static_cast<uint64_t>(std::min(n_a, n_b)),
                                        static_cast<uint64_t>(std::max(n_a, n_b))});
}

TEST_CASE("recirculation loops are cut at the depth limit and counted", "[datapath][pipeline]") {
  Rig rig;
  rig.add_flow("recirc_id(1),in_port(1)", "recirc(1)");
  Bytes pkt = udp4().build();
  rig.execute(pkt, "recirc(1)");
  CHECK(rig.drops("recirc_depth") == 1);
}

TEST_CASE("hash sets dp_hash for the next recirculation", "[datapath][pipeline]") {
  Rig rig;
  rig.add_flow("recirc_id(2),dp_hash(0/0),in_port(1)", "2");
  rig.execute(udp4().build(), "hash(l4(0)),recirc(2)");
  CHECK(rig.sent(2).size() == 1);
}

TEST_CASE("userspace action queues an upcall with its userdata", "[datapath][actions]") {
  Rig rig;
  rig.execute(udp4().build(), "userspace(pid=42,userdata(0a0b0c0d)),2");
  CHECK(rig.sent(2).size() == 1);
  int n = 0;
  rig.dp->drain_upcalls(10, [&](const gl::dp::UpcallSlot& s) {
    ++n;
    CHECK(s.kind == static_cast<uint8_t>(gl::api::UpcallKind::kAction));
    CHECK(s.pid == 42);
    REQUIRE(s.userdata_len == 4);
    CHECK(s.userdata[0] == 0x0a);
    CHECK(s.userdata[3] == 0x0d);
  });
  CHECK(n == 1);
}

TEST_CASE("flow put / modify / delete / dump semantics", "[datapath][flows]") {
  Rig rig;
  auto m = gl::odp::parse_flow("in_port(1),eth_type(0x0800)");
  REQUIRE(m);
  auto out2 = gl::odp::parse_actions("2");
  auto out3 = gl::odp::parse_actions("3");
  gl::api::FlowPutEntry e{};
  e.ufid = {1, 2};
  e.key = m->key;
  e.mask = m->mask;
  e.flags = gl::api::kPutCreate;
  CHECK(rig.dp->flow_put(e, *out2).error == 0);
  CHECK(rig.dp->flow_put(e, *out2).error == EEXIST);
  // Another UFID for a key the flow already matches: refused, megaflows do not overlap.
  gl::api::FlowPutEntry dup = e;
  dup.ufid = {9, 9};
  dup.key.ipv4_dst = 0x01020304;  // any IPv4 packet on port 1 matches the existing flow
  auto dr = rig.dp->flow_put(dup, *out3);
  CHECK(dr.error == EEXIST);
  CHECK(std::string(dr.message).find("already matches") != std::string::npos);
  rig.inject(udp4().build(), 1);
  CHECK(rig.sent(2).size() == 1);
  e.flags = gl::api::kPutModify;
  auto r = rig.dp->flow_put(e, *out3);
  CHECK(r.error == 0);
  CHECK(r.stats.packets == 1);    // stats before the modify
  rig.inject(udp4().build(), 1);  // the EMC entry now carries the new actions
  CHECK(rig.sent(3).size() == 1);
  CHECK(rig.sent(2).empty());
  int n = 0;
  rig.dp->flow_dump(0, [&](const gl::dp::Flow& f) {
    ++n;
    CHECK(rig.dp->flow_stats(f).packets == 2);
    return true;
  });
  CHECK(n == 1);
  auto d = rig.dp->flow_del(e.ufid);
  CHECK(d.error == 0);
  CHECK(d.stats.packets == 2);
  CHECK(rig.dp->flow_del(e.ufid).error == ENOENT);
  rig.inject(udp4().build(), 1);  // gone from classifier and EMC: a miss
  CHECK(rig.sent(3).empty());
  // Bad actions are refused with a message naming the problem.
  Bytes meter = {8, 0, OVS_ACTION_ATTR_METER, 0, 1, 0, 0, 0};
  e.flags = gl::api::kPutCreate;
  auto bad = rig.dp->flow_put(e, meter);
  CHECK(bad.error == EINVAL);
  CHECK(std::string(bad.message).find("meter") != std::string::npos);
}

TEST_CASE("modify by UFID keeps the installed match and accepts a wider one (OVS revalidator)",
          "[datapath][flows]") {
  Rig rig;
  // What OVS puts for a packet from a port it has not associated yet: an exact match
  // (every field of the packet) with no actions.
  auto pkt = udp4().build();
  gl::api::FlowPutEntry e{};
  e.ufid = {7, 7};
  e.key = gl::flow::zero_key();
  e.key.in_port = 1;
  gl::flow::PacketLayout lay;
  REQUIRE_FALSE(
      gl::flow::parse_is_drop(gl::flow::parse_packet(pkt.data(), pkt.size(), e.key, lay)));
  e.mask = gl::flow::exact_mask();
  e.flags = gl::api::kPutCreate;
  REQUIRE(rig.dp->flow_put(e, {}).error == 0);
  rig.inject(udp4().build(), 1);
  CHECK(rig.drops("action_drop") == 1);
  // The revalidator later modifies that UFID with its ukey's megaflow (in_port + eth_type)
  // and the bridge's actions: the flow keeps its exact match and takes the actions.
  auto wide = gl::odp::parse_flow("in_port(1),eth_type(0x0800)");
  REQUIRE(wide);
  gl::api::FlowPutEntry mod = e;
  mod.key = wide->key;
  mod.mask = wide->mask;
  mod.flags = gl::api::kPutModify;
  auto out2 = gl::odp::parse_actions("2");
  CHECK(rig.dp->flow_put(mod, *out2).error == 0);
  rig.inject(udp4().build(), 1);
  CHECK(rig.sent(2).size() == 1);
  const gl::dp::Flow* f = rig.dp->flow_find(e.ufid);
  REQUIRE(f != nullptr);
  CHECK(f->mask == e.mask);  // still the exact match
  // A match that does not contain the installed one (another destination) is refused.
  gl::api::FlowPutEntry other = e;
  other.key.ipv4_dst ^= 0x01000000;
  other.flags = gl::api::kPutModify;
  auto r = rig.dp->flow_put(other, *out2);
  CHECK(r.error == EINVAL);
  CHECK(std::string(r.message).find("keep the flow's match") != std::string::npos);
}

TEST_CASE("malformed packets are counted by reason and never forwarded", "[datapath]") {
  Rig rig;
  rig.add_flow("in_port(1)", "2");
  rig.inject(Bytes{1, 2, 3, 4, 5}, 1);  // runt
  CHECK(rig.drops("parse_runt") == 1);
  CHECK(rig.drops("parse_error") == 1);
  CHECK(rig.sent(2).empty());
  // A bad IPv4 header is forwarded as L2 (like OVS) and counted as an anomaly.
  rig.inject(udp4().ihl(3).build(), 1);
  CHECK(rig.sent(2).size() == 1);
  CHECK(rig.drops("parse_ipv4_bad_ihl") == 1);
}

// ---- ESP -------------------------------------------------------------------------------
// The Rig has one PMD (index 0, not started) and the control context (index 1), which runs
// execute and inject: the SAs these tests use belong to index 1.

namespace {

constexpr uint32_t kCtl = 1;
const uint8_t kUnderlaySrc[6] = {0x02, 0, 0, 0, 0xee, 0x01};
const uint8_t kUnderlayDst[6] = {0x02, 0, 0, 0, 0xee, 0x02};

Bytes keymat(uint8_t seed) {
  Bytes k(36);
  for (size_t i = 0; i < k.size(); ++i) k[i] = static_cast<uint8_t>(seed + i * 7);
  return k;
}

gl::api::SaAddRequest sa_req(uint32_t spi, gl::api::SaDir dir, const Bytes& km, uint32_t group = 1,
                             uint32_t pmd = kCtl) {
  gl::api::SaAddRequest r{};
  r.cfg.spi = spi;
  r.cfg.dir = static_cast<uint8_t>(dir);
  r.cfg.esn = 1;
  r.cfg.ttl = 64;
  r.cfg.df = 1;
  r.cfg.pmd = pmd;
  const uint8_t a[4] = {192, 0, 2, 1}, b[4] = {192, 0, 2, 2};
  std::memcpy(r.cfg.local, a, 4);
  std::memcpy(r.cfg.remote, b, 4);
  if (dir == gl::api::SaDir::kOut) {
    r.cfg.group = group;
    std::memcpy(r.cfg.src_mac, kUnderlaySrc, 6);
    std::memcpy(r.cfg.dst_mac, kUnderlayDst, 6);
  }
  std::memcpy(r.keymat, km.data(), 36);
  return r;
}

void add_sa(Rig& rig, const gl::api::SaAddRequest& r) {
  auto res = rig.dp->sa_add(r);
  INFO((res ? std::string() : res.error().message));
  REQUIRE(res);
}

Bytes udp_frame(uint16_t id, size_t payload) {
  PacketBuilder b;
  b.eth("02:00:00:00:00:01", "02:00:00:00:00:02")
      .ipv4("10.0.0.1", "10.0.0.2")
      .ip_id(id)
      .udp(1234, 80)
      .payload(payload);
  return b.build();
}

gl::api::SaInfo sa_info(Rig& rig, uint32_t spi, uint8_t dir, bool keys = false) {
  gl::api::SaInfo found{};
  bool ok = false;
  rig.dp->sa_dump(0, keys, [&](const gl::api::SaInfo& i) {
    if (i.cfg.spi == spi && i.cfg.dir == dir) found = i, ok = true;
    return true;
  });
  REQUIRE(ok);
  return found;
}

}  // namespace

TEST_CASE("esp_encrypt puts ESP on the underlay; esp_decrypt gives the frame back",
          "[datapath][esp]") {
  Rig rig;
  const Bytes km = keymat(1);
  add_sa(rig, sa_req(0x1000, gl::api::SaDir::kOut, km));
  add_sa(rig, sa_req(0x1000, gl::api::SaDir::kIn, km));

  // execute (one packet), then a burst of five through a flow (one SA burst call).
  std::vector<Bytes> clear = {udp_frame(1, 32)};
  rig.execute(clear[0], "esp_encrypt(group=1),2");
  rig.add_flow("recirc_id(0),in_port(1)", "esp_encrypt(group=1),2");
  rte_mbuf* burst[5];
  for (int i = 0; i < 5; ++i) {
    clear.push_back(udp_frame(static_cast<uint16_t>(10 + i), 20 + 100 * i));
    burst[i] = rig.mbuf(clear.back());
  }
  rig.dp->inject(1, burst, 5);
  std::vector<Bytes> esp = rig.sent(2);
  REQUIRE(esp.size() == 6);
  for (size_t i = 0; i < esp.size(); ++i) {
    const Bytes& e = esp[i];
    INFO("packet " << i);
    CHECK(std::memcmp(e.data(), kUnderlayDst, 6) == 0);
    CHECK(std::memcmp(e.data() + 6, kUnderlaySrc, 6) == 0);
    CHECK((e[12] == 0x08 && e[13] == 0x00));
    CHECK(e[14] == 0x45);
    CHECK(e[14 + 9] == 50);                       // ESP
    CHECK(load_be32(&e[14 + 12]) == 0xc0000201);  // 192.0.2.1 -> 192.0.2.2
    CHECK(load_be32(&e[14 + 16]) == 0xc0000202);
    CHECK(load_be32(&e[34]) == 0x1000);  // SPI
    CHECK(load_be32(&e[38]) == i + 1);   // sequence number
    // Nothing of the inner frame is visible.
    CHECK(std::search(e.begin(), e.end(), clear[i].begin() + 14, clear[i].begin() + 34) == e.end());
  }
  CHECK(rig.sent(3).empty());

  rig.add_flow("recirc_id(0),in_port(2),eth_type(0x0800),ipv4(proto=50)", "esp_decrypt,recirc(7)");
  rig.add_flow("recirc_id(7)", "3");
  rte_mbuf* in[6];
  for (size_t i = 0; i < esp.size(); ++i) in[i] = rig.mbuf(esp[i]);
  rig.dp->inject(2, in, 6);
  CHECK(rig.sent(3) == clear);  // byte for byte, in order

  auto out_info = sa_info(rig, 0x1000, 0);
  auto in_info = sa_info(rig, 0x1000, 1);
  CHECK(out_info.results[0] == 6);
  CHECK(out_info.seq == 6);
  CHECK(in_info.results[0] == 6);
  CHECK(in_info.seq == 6);
  CHECK(in_info.has_keys == 0);
  CHECK(std::all_of(std::begin(in_info.keymat), std::end(in_info.keymat),
                    [](uint8_t b) { return b == 0; }));
  const auto with_keys = sa_info(rig, 0x1000, 1, true);
  CHECK(with_keys.has_keys == 1);
  CHECK(Bytes(std::begin(with_keys.keymat), std::end(with_keys.keymat)) == km);
}

TEST_CASE("esp_encrypt fails closed: no SA, removed SA, other PMD's SA", "[datapath][esp]") {
  Rig rig;
  const Bytes pkt = udp_frame(1, 64);
  rig.execute(pkt, "esp_encrypt(group=1),2");  // no SA tables at all
  CHECK(rig.drops("esp_no_sa") == 1);
  // Group 1 has an SA for PMD 0 only: the control context has none.
  add_sa(rig, sa_req(0x1000, gl::api::SaDir::kOut, keymat(1), 1, 0));
  rig.execute(pkt, "esp_encrypt(group=1),2");
  rig.execute(pkt, "esp_encrypt(group=2),2");
  CHECK(rig.drops("esp_no_sa") == 3);
  add_sa(rig, sa_req(0x1001, gl::api::SaDir::kOut, keymat(2), 1, kCtl));
  rig.execute(pkt, "esp_encrypt(group=1),2");
  CHECK(rig.sent(2).size() == 1);
  REQUIRE(rig.dp->sa_del(0x1001, gl::api::SaDir::kOut));
  rig.dp->housekeeping();
  rig.add_flow("recirc_id(0),in_port(1)", "esp_encrypt(group=1),2");
  rig.inject(pkt, 1);
  rig.execute(pkt, "esp_encrypt(group=1),2");
  CHECK(rig.drops("esp_no_sa") == 5);
  CHECK(rig.sent(2).empty());  // never in clear
}

TEST_CASE("esp_decrypt counts tampering, replays, unknown SPIs, bad outer headers",
          "[datapath][esp]") {
  Rig rig;
  const Bytes km = keymat(3);
  add_sa(rig, sa_req(0x2000, gl::api::SaDir::kOut, km));
  add_sa(rig, sa_req(0x2000, gl::api::SaDir::kIn, km));
  add_sa(rig, sa_req(0x3000, gl::api::SaDir::kIn, keymat(4), 0, 0));  // PMD 0's SPI
  const Bytes clear = udp_frame(5, 100);
  rig.execute(clear, "esp_encrypt(group=1),2");
  auto esp = rig.sent(2);
  REQUIRE(esp.size() == 1);
  const Bytes good = esp[0];
  const char* dec = "esp_decrypt,recirc(7)";
  rig.add_flow("recirc_id(7)", "3");

  Bytes tampered = good;
  tampered[14 + 20 + 16 + 5] ^= 0x01;
  rig.execute(tampered, dec, 2);
  CHECK(rig.drops("esp_auth_failed") == 1);
  Bytes bad_icv = good;
  bad_icv.back() ^= 0x80;
  rig.execute(bad_icv, dec, 2);
  CHECK(rig.drops("esp_auth_failed") == 2);
  CHECK(rig.sent(3).empty());

  rig.execute(good, dec, 2);
  CHECK(rig.sent(3) == std::vector<Bytes>{clear});
  rig.execute(good, dec, 2);
  CHECK(rig.drops("esp_replay") == 1);
  CHECK(rig.sent(3).empty());

  Bytes unknown = good;
  unknown[34 + 3] = 0x55;  // SPI 0x2055
  rig.execute(unknown, dec, 2);
  CHECK(rig.drops("esp_unknown_spi") == 1);
  Bytes other_pmd = good;
  other_pmd[34 + 2] = 0x30;  // SPI 0x3000 belongs to PMD 0: handed off, fails there
  rig.execute(other_pmd, dec, 2);
  rig.dp->context(0).esp_handoff_drain();
  CHECK(rig.drops("esp_auth_failed") == 3);
  CHECK(rig.drops("esp_wrong_pmd") == 0);
  Bytes bad_csum = good;
  bad_csum[14 + 10] ^= 0xff;
  rig.execute(bad_csum, dec, 2);
  CHECK(rig.drops("esp_bad_outer") == 1);
  auto info = sa_info(rig, 0x2000, 1);
  CHECK(info.results[0] == 1);
  CHECK(info.results[static_cast<size_t>(gl::crypto::Result::auth_failed)] == 2);
  CHECK(info.results[static_cast<size_t>(gl::crypto::Result::replay)] == 1);
}

TEST_CASE("esp_decrypt hands a packet to the context that owns its SA", "[datapath][esp]") {
  Rig rig;
  const Bytes km = keymat(5);
  add_sa(rig, sa_req(0x4000, gl::api::SaDir::kOut, km));       // the control context's
  add_sa(rig, sa_req(0x4000, gl::api::SaDir::kIn, km, 0, 0));  // PMD 0's (not running)
  const Bytes clear = udp_frame(9, 80);
  std::vector<Bytes> esp;
  for (int i = 0; i < 3; ++i) {
    rig.execute(clear, "esp_encrypt(group=1),2");
    auto s = rig.sent(2);
    REQUIRE(s.size() == 1);
    esp.push_back(s[0]);
  }
  rig.add_flow("recirc_id(7)", "3");
  auto handoffs = [&] {
    gl::api::StatsReply t{};
    std::vector<gl::api::PmdStats> p;
    std::vector<gl::api::DropCounter> d;
    rig.dp->fill_stats(t, p, d);
    return p.at(0).esp_handoffs;  // PMD 0's: what it queued to others (none here)
  };
  // Executed on the control context: queued to PMD 0, decrypted there (its replay window),
  // then the actions after esp_decrypt run on PMD 0.
  rig.execute(esp[0], "esp_decrypt,recirc(7)", 2);
  rig.execute(esp[1], "esp_decrypt,recirc(7)", 2);
  CHECK(rig.sent(3).empty());  // not yet: PMD 0 has not run
  rig.dp->context(0).esp_handoff_drain();
  CHECK(rig.sent(3) == std::vector<Bytes>{clear, clear});
  CHECK(rig.drops("esp_unknown_spi") == 0);
  CHECK(rig.drops("esp_wrong_pmd") == 0);
  CHECK(handoffs() == 0);
  // A replay handed off is refused by the owner's window.
  rig.execute(esp[0], "esp_decrypt,recirc(7)", 2);
  rig.dp->context(0).esp_handoff_drain();
  CHECK(rig.drops("esp_replay") == 1);
  CHECK(rig.sent(3).empty());
  // The owner's queue is bounded: past it, counted drops (nothing waits unbounded).
  constexpr int kQueue = 512;  // the handoff queue (Pmd::kHandoffSlots)
  for (int i = 0; i < kQueue + 9; ++i) rig.execute(esp[2], "esp_decrypt,recirc(7)", 2);
  CHECK(rig.drops("esp_handoff_full") == 9);
  for (int i = 0; i < 20; ++i) rig.dp->context(0).esp_handoff_drain();
  CHECK(rig.sent(3).size() == 1);  // one decrypts; the other 511 are replays of it
  CHECK(rig.drops("esp_replay") == 1 + kQueue - 1);
  CHECK(rig.drops("esp_wrong_pmd") == 0);
}

TEST_CASE("SA add / del validate every field with clear errors", "[datapath][esp][api]") {
  Rig rig;
  using gl::api::SaDir;
  const Bytes km = keymat(9);
  struct Case {
    const char* what;
    gl::api::SaAddRequest req;
    const char* expect;
  };
  std::vector<Case> cases;
  auto base_out = [&] { return sa_req(0x1000, SaDir::kOut, km); };
  auto base_in = [&] { return sa_req(0x1000, SaDir::kIn, km); };
  {
    auto r = base_out();
    r.cfg.spi = 255;
    cases.push_back({"spi", r, "reserved"});
  }
  {
    auto r = base_out();
    r.cfg.dir = 2;
    cases.push_back({"dir", r, "direction"});
  }
  {
    auto r = base_out();
    r.cfg.mode = 1;
    cases.push_back({"mode", r, "transport mode"});
  }
  {
    auto r = base_out();
    r.cfg.cipher = 5;
    cases.push_back({"cipher", r, "cipher"});
  }
  {
    auto r = base_out();
    r.cfg.backend = 3;
    cases.push_back({"backend", r, "backend"});
  }
  {
    auto r = base_out();
    r.cfg.ttl = 0;
    cases.push_back({"ttl", r, "ttl"});
  }
  {
    auto r = base_out();
    r.cfg.group = 0;
    cases.push_back({"group", r, "group id"});
  }
  {
    auto r = base_out();
    r.cfg.pmd = 2;
    cases.push_back({"pmd", r, "out of range"});
  }
  {
    auto r = base_out();
    std::memset(r.cfg.dst_mac, 0, 6);
    cases.push_back({"dst_mac", r, "dst_mac"});
  }
  {
    auto r = base_out();
    r.cfg.dst_mac[0] = 1;
    cases.push_back({"multicast", r, "unicast"});
  }
  {
    auto r = base_out();
    r.cfg.replay_window = 64;
    cases.push_back({"window", r, "inbound SAs only"});
  }
  {
    auto r = base_in();
    r.cfg.group = 3;
    cases.push_back({"in group", r, "outbound SAs only"});
  }
  {
    auto r = base_in();
    r.cfg.replay_window = 100;
    cases.push_back({"in window", r, "replay"});
  }
  {
    auto r = base_out();
    r.cfg.local[7] = 1;
    cases.push_back({"v4 bytes", r, "first 4 bytes"});
  }
  {
    auto r = base_out();
    std::memset(r.cfg.remote, 0, 16);
    cases.push_back({"no remote", r, "local and remote"});
  }
  {
    auto r = base_out();
    std::memset(r.keymat, 0, 32);
    cases.push_back({"zero key", r, "all zeros"});
  }
  for (auto& c : cases) {
    INFO(c.what);
    auto res = rig.dp->sa_add(c.req);
    REQUIRE_FALSE(res);
    CHECK_THAT(res.error().message, Catch::Matchers::Contains(c.expect));
  }
  CHECK(rig.dp->n_sas() == 0);
  add_sa(rig, base_out());
  auto dup = rig.dp->sa_add(base_out());
  REQUIRE_FALSE(dup);
  CHECK(dup.error().code == EEXIST);
  auto same_slot = base_out();
  same_slot.cfg.spi = 0x1001;
  auto slot = rig.dp->sa_add(same_slot);
  REQUIRE_FALSE(slot);
  CHECK_THAT(slot.error().message, Catch::Matchers::Contains("already has SA spi 0x1000"));
  add_sa(rig, base_in());  // same SPI, other direction: fine
  auto any = base_in();
  any.cfg.spi = 0x4000;
  any.cfg.pmd = gl::api::kSaPmdAny;
  add_sa(rig, any);
  CHECK(rig.dp->n_sas() == 3);
  auto del = rig.dp->sa_del(0x9999, SaDir::kIn);
  REQUIRE_FALSE(del);
  CHECK(del.error().code == ENOENT);
  REQUIRE(rig.dp->sa_del(0x1000, SaDir::kOut));
  REQUIRE(rig.dp->sa_del(0x1000, SaDir::kIn));
  REQUIRE(rig.dp->sa_del(0x4000, SaDir::kIn));
  CHECK(rig.dp->n_sas() == 0);
  CHECK(rig.dp->sa_tables() == nullptr);
}

TEST_CASE("ESP over an IPv6 underlay with ChaCha20-Poly1305, both backends", "[datapath][esp]") {
  for (uint8_t backend : {uint8_t(1), uint8_t(2)}) {  // sodium, ipsec-mb
    INFO("backend " << int(backend));
    Rig rig;
    const Bytes km = keymat(21);
    auto out = sa_req(0x5000, gl::api::SaDir::kOut, km);
    auto in = sa_req(0x5000, gl::api::SaDir::kIn, km);
    for (auto* r : {&out, &in}) {
      r->cfg.addr_v6 = 1;
      r->cfg.cipher = 1;
      r->cfg.backend = backend;
      const uint8_t l[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
      std::memcpy(r->cfg.local, l, 16);
      std::memcpy(r->cfg.remote, l, 16);
      r->cfg.remote[15] = 2;
    }
    auto res = rig.dp->sa_add(out);
    if (!res && res.error().code == ENOTSUP) continue;  // backend cannot run here
    REQUIRE(res);
    add_sa(rig, in);
    const Bytes clear = udp_frame(3, 333);
    rig.execute(clear, "esp_encrypt(group=1),2");
    auto esp = rig.sent(2);
    REQUIRE(esp.size() == 1);
    CHECK((esp[0][12] == 0x86 && esp[0][13] == 0xdd));
    CHECK(esp[0][14 + 6] == 50);
    CHECK(load_be32(&esp[0][54]) == 0x5000);
    rig.add_flow("recirc_id(0),in_port(2),eth_type(0x86dd),ipv6(proto=50)",
                 "esp_decrypt,recirc(7)");
    rig.add_flow("recirc_id(7)", "3");
    rig.inject(esp[0], 2);
    CHECK(rig.sent(3) == std::vector<Bytes>{clear});
    CHECK(sa_info(rig, 0x5000, 1).cfg.backend == backend);
  }
}

TEST_CASE("replace switches a group's slot to a new outbound SA in one step", "[datapath][esp]") {
  Rig rig;
  add_sa(rig, sa_req(0x1000, gl::api::SaDir::kOut, keymat(1)));
  const Bytes pkt = udp_frame(1, 50);
  rig.execute(pkt, "esp_encrypt(group=1),2");
  auto next = sa_req(0x1001, gl::api::SaDir::kOut, keymat(2));
  auto plain = rig.dp->sa_add(next);
  REQUIRE_FALSE(plain);
  CHECK_THAT(plain.error().message, Catch::Matchers::Contains("or add with replace"));
  next.flags = gl::api::kSaAddReplace;
  add_sa(rig, next);
  rig.dp->housekeeping();
  CHECK(rig.dp->n_sas() == 1);
  rig.execute(pkt, "esp_encrypt(group=1),2");
  auto esp = rig.sent(2);
  REQUIRE(esp.size() == 2);
  CHECK((load_be32(&esp[0][34]) == 0x1000 && load_be32(&esp[0][38]) == 1));
  CHECK((load_be32(&esp[1][34]) == 0x1001 && load_be32(&esp[1][38]) == 1));
  auto in = sa_req(0x2000, gl::api::SaDir::kIn, keymat(3));
  in.flags = gl::api::kSaAddReplace;
  auto r = rig.dp->sa_add(in);
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error().message, Catch::Matchers::Contains("outbound SAs only"));
  in.flags = 0x80;
  r = rig.dp->sa_add(in);
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error().message, Catch::Matchers::Contains("unknown sa add flags"));
}

TEST_CASE("underlay MTU: IPv4+DF too big gets ICMP frag needed and is dropped", "[datapath][esp]") {
  Rig rig;
  auto o = sa_req(0x1000, gl::api::SaDir::kOut, keymat(1));
  o.cfg.mtu = 1000;
  add_sa(rig, o);
  // 20 (outer IP) + 16 (ESP + IV) + 16 (ICV) = 52: floor4(948) - 2 = 946-byte frames fit.
  const uint32_t max_frame = 946;
  auto frame = [](size_t len, bool df) {
    PacketBuilder b;
    b.eth("02:00:00:00:00:01", "02:00:00:00:00:02")
        .ipv4("10.0.0.1", "10.0.0.2")
        .ip_id(9)
        .df(df)
        .udp(1234, 80)
        .payload(len - 42);
    return b.build();
  };
  rig.execute(frame(max_frame, true), "esp_encrypt(group=1),2");
  auto esp = rig.sent(2);
  REQUIRE(esp.size() == 1);
  CHECK(esp[0].size() - 14 == 1000);  // exactly the MTU
  CHECK(rig.sent(1).empty());

  const Bytes big = frame(max_frame + 1, true);
  rig.execute(big, "esp_encrypt(group=1),2", 1);
  CHECK(rig.sent(2).empty());
  CHECK(rig.drops("esp_too_big") == 1);
  auto icmp = rig.sent(1);  // back out of the port it came in on
  REQUIRE(icmp.size() == 1);
  const Bytes& r = icmp[0];
  REQUIRE(r.size() == 14 + 20 + 8 + 28);
  CHECK(std::equal(r.begin(), r.begin() + 6, big.begin() + 6));  // to the sender's MAC
  CHECK(std::equal(r.begin() + 6, r.begin() + 12, big.begin()));
  CHECK(r[14 + 9] == 1);
  CHECK(load_be32(&r[14 + 12]) == 0x0a000002);  // from the destination, to the sender
  CHECK(load_be32(&r[14 + 16]) == 0x0a000001);
  CHECK(gl::flow::inet_checksum(r.data() + 14, 20) == 0);
  CHECK((r[34] == 3 && r[35] == 4));
  CHECK((r[40] << 8 | r[41]) == max_frame - 14);  // the inner IP MTU
  CHECK(std::equal(r.begin() + 42, r.end(), big.begin() + 14));
  CHECK(gl::flow::inet_checksum(r.data() + 34, r.size() - 34) == 0);

  // No DF: fragmented before encryption (1366 bytes of IPv4 payload: 912 + 454), no ICMP.
  rig.execute(frame(1400, false), "esp_encrypt(group=1),2");
  CHECK(rig.drops("esp_too_big") == 1);
  CHECK(rig.sent(1).empty());
  CHECK(rig.sent(2).size() == 2);

  auto in = sa_req(0x2000, gl::api::SaDir::kIn, keymat(2));
  in.cfg.mtu = 1500;
  auto res = rig.dp->sa_add(in);
  REQUIRE_FALSE(res);
  CHECK_THAT(res.error().message, Catch::Matchers::Contains("outbound SAs only"));
  o.cfg.spi = 0x1001;
  o.cfg.group = 2;
  o.cfg.mtu = 500;
  res = rig.dp->sa_add(o);
  REQUIRE_FALSE(res);
  CHECK_THAT(res.error().message, Catch::Matchers::Contains("below the minimum"));
}

TEST_CASE("underlay MTU: MSS of TCP SYNs clamped to fit the tunnel", "[datapath][esp]") {
  Rig rig;
  const Bytes km = keymat(7);
  auto o = sa_req(0x1000, gl::api::SaDir::kOut, km);
  o.cfg.mtu = 1000;  // 946-byte frames: inner MTU 932, MSS 892 (IPv4) / 872 (IPv6)
  add_sa(rig, o);
  add_sa(rig, sa_req(0x1000, gl::api::SaDir::kIn, km));
  rig.add_flow("recirc_id(0),in_port(2),eth_type(0x0800),ipv4(proto=50)", "esp_decrypt,recirc(7)");
  rig.add_flow("recirc_id(7)", "3");
  auto syn = [](bool v6, std::vector<uint8_t> opts, uint16_t flags = 0x002) {
    PacketBuilder b;
    b.eth("02:00:00:00:00:01", "02:00:00:00:00:02");
    if (v6)
      b.ipv6("2001:db8::1", "2001:db8::2");
    else
      b.ipv4("10.0.0.1", "10.0.0.2").ip_id(3);
    b.tcp(40000, 80).tcp_flags(flags).tcp_options(opts);
    return b.build();
  };
  struct Case {
    const char* what;
    Bytes in, want;
  };
  const Case cases[] = {
      {"v4 MSS first", syn(false, {2, 4, 0x05, 0xb4}), syn(false, {2, 4, 0x03, 0x7c})},
      {"v4 MSS after a NOP (odd offset)", syn(false, {1, 2, 4, 0x05, 0xb4}),
       syn(false, {1, 2, 4, 0x03, 0x7c})},
      {"v6", syn(true, {2, 4, 0x05, 0xa0}), syn(true, {2, 4, 0x03, 0x68})},
      {"small MSS kept", syn(false, {2, 4, 0x02, 0x00}), syn(false, {2, 4, 0x02, 0x00})},
      {"not a SYN", syn(false, {2, 4, 0x05, 0xb4}, 0x010), syn(false, {2, 4, 0x05, 0xb4}, 0x010)},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    rig.execute(c.in, "esp_encrypt(group=1),2");
    auto esp = rig.sent(2);
    REQUIRE(esp.size() == 1);
    rig.inject(esp[0], 2);
    CHECK(rig.sent(3) == std::vector<Bytes>{c.want});  // checksum included
  }
}

TEST_CASE("underlay MTU: IPv6 gets ICMPv6 packet too big", "[datapath][esp]") {
  Rig rig;
  auto o = sa_req(0x1000, gl::api::SaDir::kOut, keymat(1));
  o.cfg.mtu = 1400;  // 1346-byte frames: inner MTU 1332
  add_sa(rig, o);
  PacketBuilder b;
  b.eth("02:00:00:00:00:01", "02:00:00:00:00:02")
      .ipv6("2001:db8::1", "2001:db8::2")
      .udp(1234, 80)
      .payload(1400);
  const Bytes big = b.build();
  rig.execute(big, "esp_encrypt(group=1),2", 1);
  CHECK(rig.sent(2).empty());
  CHECK(rig.drops("esp_too_big") == 1);
  auto out = rig.sent(1);
  REQUIRE(out.size() == 1);
  const Bytes& r = out[0];
  REQUIRE(r.size() == 14 + 1280);  // as much of the packet as fits the minimum MTU
  CHECK((r[12] == 0x86 && r[13] == 0xdd && r[14 + 6] == 58));
  CHECK(std::equal(r.begin() + 14 + 8, r.begin() + 14 + 24, big.begin() + 14 + 24));  // src
  CHECK(std::equal(r.begin() + 14 + 24, r.begin() + 14 + 40, big.begin() + 14 + 8));  // dst
  CHECK((r[54] == 2 && r[55] == 0));
  CHECK(load_be32(&r[58]) == 1332);
  CHECK(std::equal(r.begin() + 62, r.end(), big.begin() + 14));
  const uint32_t ps = gl::flow::ipv6_pseudo_sum(r.data() + 22, r.data() + 38, 58, 1240);
  CHECK(gl::flow::csum_fold(gl::flow::csum_partial(r.data() + 54, 1240, ps)) == 0xffff);

  // An ICMPv6 error is never answered with another one (RFC 4443 2.4 e.1).
  Bytes err = big;
  err[14 + 6] = 58;
  err[54] = 1;  // destination unreachable
  rig.execute(err, "esp_encrypt(group=1),2", 1);
  CHECK(rig.drops("esp_too_big") == 2);
  CHECK(rig.sent(1).empty());
}

// ---- ESP ports ----------------------------------------------------------------------------
// A gl_esp port over underlay port 2. The test loops the tunnel back into the same
// datapath: the outbound SA goes 192.0.2.1 -> .2, so the ESP port is configured from the
// far end's view (local .2, remote .1) to take those packets back in.

namespace {

std::expected<gl::api::PortInfo, gl::api::Error> add_esp_port(Rig& rig, const std::string& name,
                                                              const std::string& args,
                                                              uint32_t no = gl::api::kPortAny) {
  gl::dp::PortConfig pc;
  pc.name = name;
  pc.devargs = "gl_esp," + args;
  pc.port_no = no;
  return rig.dp->port_add(pc);
}

}  // namespace

TEST_CASE("ESP port: output encrypts onto the underlay, ESP from the peer enters on the port",
          "[datapath][esp][esp_port]") {
  Rig rig;
  const Bytes km = keymat(3);
  add_sa(rig, sa_req(0x4000, gl::api::SaDir::kOut, km));
  auto in_sa = sa_req(0x4000, gl::api::SaDir::kIn, km);  // the far end's view: .2 <- .1
  std::swap(in_sa.cfg.local, in_sa.cfg.remote);
  add_sa(rig, in_sa);
  auto vp = add_esp_port(rig, "esp1", "underlay=r2,group=1,local=192.0.2.2,remote=192.0.2.1", 4);
  INFO((vp ? "" : vp.error().message));
  REQUIRE(vp);
  CHECK(std::string(vp->driver) == "gl_esp");
  CHECK(vp->mtu == 1432);  // 1500 - outer IPv4 20 - ESP 8 - IV 8 - ICV 16 - pad/trailer - 14

  rig.add_flow("recirc_id(0),in_port(1)", "4");
  std::vector<Bytes> clear;
  rte_mbuf* burst[5];
  for (int i = 0; i < 5; ++i) {
    clear.push_back(udp_frame(static_cast<uint16_t>(40 + i), 30 + 50 * i));
    burst[i] = rig.mbuf(clear.back());
  }
  rig.dp->inject(1, burst, 5);
  std::vector<Bytes> esp = rig.sent(2);
  REQUIRE(esp.size() == 5);
  for (size_t i = 0; i < esp.size(); ++i) {
    CHECK(esp[i][14 + 9] == 50);
    CHECK(load_be32(&esp[i][34]) == 0x4000);
    CHECK(load_be32(&esp[i][38]) == i + 1);
  }
  // Back in on the underlay: decrypted, entering on port 4 (a flow on in_port(4) sees it).
  rig.add_flow("recirc_id(0),in_port(4)", "3");
  rte_mbuf* in[5];
  for (size_t i = 0; i < esp.size(); ++i) in[i] = rig.mbuf(esp[i]);
  rig.dp->inject(2, in, 5);
  CHECK(rig.sent(3) == clear);
  auto info = rig.dp->port_info(4);
  REQUIRE(info);
  CHECK(info->stats.tx_packets == 5);
  CHECK(info->stats.rx_packets == 5);

  // ESP between other addresses is not the port's: it goes through the flows as it is.
  rig.add_flow("recirc_id(0),in_port(2)", "1");
  Bytes other = esp[0];
  other[14 + 12 + 3] = 9;  // outer source 192.0.2.9 (the outer header is not authenticated)
  rig.inject(other, 2);
  CHECK(rig.sent(1) == std::vector<Bytes>{other});
  CHECK(rig.sent(3).empty());
  // With an ESP port for .9, that packet would enter on it: but its SA (0x4000) is the
  // tunnel with .1, not .9's. Dropped, counted: a peer cannot pose as another.
  auto vp9 = add_esp_port(rig, "esp9", "underlay=r2,group=9,local=192.0.2.2,remote=192.0.2.9", 6);
  REQUIRE(vp9);
  rig.add_flow("recirc_id(0),in_port(6)", "3");
  rig.inject(udp_frame(99, 40), 1);  // a fresh packet of the .1 tunnel (no replay)
  auto fresh = rig.sent(2);
  REQUIRE(fresh.size() == 1);
  other = fresh[0];
  other[14 + 12 + 3] = 9;
  other[14 + 10] = other[14 + 11] = 0;  // a valid outer checksum for the new source
  const uint16_t cs = gl::flow::inet_checksum(other.data() + 14, 20);
  std::memcpy(other.data() + 14 + 10, &cs, 2);
  rig.inject(other, 2);
  CHECK(rig.sent(3).empty());
  CHECK(rig.sent(1).empty());
  CHECK(rig.drops("esp_peer_mismatch") == 1);
  REQUIRE(rig.dp->port_del(6));

  // The port's MTU follows the underlay's.
  CHECK(rig.dp->port_set_mtu(4, 1400).error().code == ENOTSUP);
  // Removed: ESP from the peer is ordinary traffic of port 2 again.
  REQUIRE(rig.dp->port_del(4));
  rig.inject(esp[1], 2);
  CHECK(rig.sent(1) == std::vector<Bytes>{esp[1]});
}

TEST_CASE("ESP port waits for its underlay: added before it, kept when it goes",
          "[datapath][esp][esp_port]") {
  Rig rig;
  add_sa(rig, sa_req(0x4100, gl::api::SaDir::kOut, keymat(5)));
  // Added before its underlay exists (OVS adds ports in any order): down, MTU unknown.
  auto vp = add_esp_port(rig, "esp1", "underlay=ul,group=1,local=192.0.2.2,remote=192.0.2.1", 5);
  REQUIRE(vp);
  CHECK(vp->link_up == 0);
  CHECK(vp->mtu == 0);
  rig.add_flow("recirc_id(0),in_port(1)", "5");
  rig.inject(udp_frame(1, 40), 1);
  CHECK(rig.drops("no_port") == 1);  // nowhere to send it: counted, never in clear
  // The underlay arrives: the ESP port attaches to it.
  gl::dp::PortConfig pc;
  pc.name = "ul";
  pc.devargs = "net_ring" + std::to_string(Rig::seq++);
  pc.port_no = 6;
  pc.n_rxq = 2;
  REQUIRE(rig.dp->port_add(pc));
  auto info = rig.dp->port_info(5);
  REQUIRE(info);
  CHECK(info->mtu == 1432);
  rig.inject(udp_frame(2, 40), 1);
  CHECK(rig.drops("no_port") == 1);
  CHECK(rig.dp->port_info(5)->stats.tx_packets == 2);
  // The underlay goes: the ESP port stays and waits again.
  REQUIRE(rig.dp->port_del(6));
  CHECK(rig.dp->port_info(5)->mtu == 0);
  rig.inject(udp_frame(3, 40), 1);
  CHECK(rig.drops("no_port") == 2);
  REQUIRE(rig.dp->port_del(5));
}

TEST_CASE("ESP port fails closed and refuses bad configuration", "[datapath][esp][esp_port]") {
  Rig rig;
  // No SA in its group: nothing leaves, counted.
  auto vp = add_esp_port(rig, "esp9", "underlay=2,group=9,local=192.0.2.1,remote=192.0.2.7", 5);
  REQUIRE(vp);
  rig.add_flow("recirc_id(0),in_port(1)", "5");
  rig.inject(udp_frame(1, 40), 1);
  CHECK(rig.sent(2).empty());
  CHECK(rig.drops("esp_no_sa") == 1);

  struct Bad {
    const char* args;
    int code;
    const char* words;
  };
  const Bad bad[] = {
      {"underlay=2,local=192.0.2.1,remote=192.0.2.8", EINVAL, "needs underlay=PORT, group=N"},
      {"underlay=2,group=0,local=192.0.2.1,remote=192.0.2.8", EINVAL, "group must be"},
      {"underlay=2,group=1,local=192.0.2.300,remote=192.0.2.8", EINVAL, "not an IPv4 or IPv6"},
      {"underlay=2,group=1,local=192.0.2.1,remote=2001:db8::1", EINVAL, "same address family"},
      {"underlay=2,group=1,local=192.0.2.1,remote=192.0.2.8,spi=3", EINVAL, "unknown option"},
      {"underlay=5,group=1,local=192.0.2.1,remote=192.0.2.8", EINVAL, "itself an ESP port"},
      {"underlay=r2,group=2,local=192.0.2.1,remote=192.0.2.7", EEXIST, "already carries"},
  };
  for (const Bad& b : bad) {
    auto r = add_esp_port(rig, "x", b.args);
    INFO(b.args);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == b.code);
    CHECK(r.error().message.find(b.words) != std::string::npos);
  }
}

TEST_CASE("underlay MTU: IPv4 without DF is fragmented before encryption", "[datapath][esp]") {
  Rig rig;
  const Bytes km = keymat(9);
  auto o = sa_req(0x1000, gl::api::SaDir::kOut, km);
  o.cfg.mtu = 600;  // 546-byte frames: 512 bytes of IPv4 payload per fragment (8 | 512)
  add_sa(rig, o);
  add_sa(rig, sa_req(0x1000, gl::api::SaDir::kIn, km));
  rig.add_flow("recirc_id(0),in_port(2),eth_type(0x0800),ipv4(proto=50)", "esp_decrypt,recirc(7)");
  rig.add_flow("recirc_id(7)", "3");
  PacketBuilder b;
  b.eth("02:00:00:00:00:01", "02:00:00:00:00:02")
      .ipv4("10.0.0.1", "10.0.0.2")
      .ip_id(0x4242)
      .df(false)
      .udp(1234, 80)
      .payload(1200);
  const Bytes big = b.build();  // 14 + 20 + 8 + 1200 = 1242 bytes: 1208 of IPv4 payload
  rig.execute(big, "esp_encrypt(group=1),2");
  auto esp = rig.sent(2);
  REQUIRE(esp.size() == 3);  // 512 + 512 + 184
  for (const Bytes& e : esp) CHECK(e.size() <= 600 + 14);
  rte_mbuf* in[3];
  for (int i = 0; i < 3; ++i) in[i] = rig.mbuf(esp[i]);
  rig.dp->inject(2, in, 3);
  auto frags = rig.sent(3);
  REQUIRE(frags.size() == 3);
  Bytes payload;
  const uint16_t want_off[3] = {0, 64, 128};  // in 8-byte units
  for (int i = 0; i < 3; ++i) {
    const Bytes& f = frags[i];
    INFO("fragment " << i);
    CHECK(std::equal(f.begin(), f.begin() + 14, big.begin()));  // Ethernet header kept
    const uint16_t tot = static_cast<uint16_t>(f[16] << 8 | f[17]);
    const uint16_t fl = static_cast<uint16_t>(f[20] << 8 | f[21]);
    CHECK(tot == f.size() - 14);
    CHECK((f[18] == 0x42 && f[19] == 0x42));                 // same IP ID
    CHECK((fl & 0x1fff) == want_off[i]);                     // offset
    CHECK(((fl & 0x2000) != 0) == (i < 2));                  // MF on all but the last
    CHECK(gl::flow::inet_checksum(f.data() + 14, 20) == 0);  // header checksum valid
    payload.insert(payload.end(), f.begin() + 34, f.end());
  }
  CHECK(payload == Bytes(big.begin() + 34, big.end()));  // reassembles to the original
  // With DF the sender is told instead (ICMP fragmentation needed), nothing is sent.
  b.df(true);
  rig.execute(b.build(), "esp_encrypt(group=1),2");
  CHECK(rig.drops("esp_too_big") == 1);
  CHECK(rig.sent(2).empty());
}

TEST_CASE("sa-del with a grace keeps the SA working until it runs out, then esp_sa_retired",
          "[datapath][esp]") {
  Rig rig;
  const Bytes km = keymat(11);
  add_sa(rig, sa_req(0x5000, gl::api::SaDir::kOut, km));
  add_sa(rig, sa_req(0x5000, gl::api::SaDir::kIn, km));
  rig.add_flow("recirc_id(0),in_port(2),eth_type(0x0800),ipv4(proto=50)", "esp_decrypt,recirc(7)");
  rig.add_flow("recirc_id(7)", "3");
  auto encrypt = [&](uint16_t id) {
    rig.execute(udp_frame(id, 40), "esp_encrypt(group=1),2");
    auto e = rig.sent(2);
    REQUIRE(e.size() == 1);
    return e[0];
  };
  const Bytes e1 = encrypt(1), e2 = encrypt(2);
  REQUIRE(rig.dp->sa_del(0x5000, gl::api::SaDir::kIn, 300));
  CHECK(sa_info(rig, 0x5000, 1).retire_ms > 0);
  CHECK(sa_info(rig, 0x5000, 1).retire_ms <= 300);
  rig.dp->housekeeping();  // not due yet
  rig.inject(e1, 2);
  CHECK(rig.sent(3).size() == 1);  // still decrypts during the grace
  std::this_thread::sleep_for(std::chrono::milliseconds(350));
  rig.dp->housekeeping();  // due: removed
  bool found = false;
  rig.dp->sa_dump(0, false, [&](const gl::api::SaInfo& i) {
    found |= i.cfg.spi == 0x5000 && i.cfg.dir == 1;
    return true;
  });
  CHECK_FALSE(found);
  // Its traffic is told apart from an SPI never seen: the SA ran out its lifetime.
  rig.inject(e2, 2);
  CHECK(rig.sent(3).empty());
  CHECK(rig.drops("esp_sa_retired") == 1);
  CHECK(rig.drops("esp_unknown_spi") == 0);
  Bytes other = e2;
  other[34 + 3] ^= 0x01;  // SPI 0x5001: never installed
  rig.inject(other, 2);
  CHECK(rig.drops("esp_unknown_spi") == 1);
  // The outbound SA too: after its grace the group's traffic is esp_sa_retired (never in
  // clear) until an SA comes for it again.
  REQUIRE(rig.dp->sa_del(0x5000, gl::api::SaDir::kOut, 20));
  std::this_thread::sleep_for(std::chrono::milliseconds(40));
  rig.dp->housekeeping();
  rig.execute(udp_frame(3, 40), "esp_encrypt(group=1),2");
  CHECK(rig.sent(2).empty());
  CHECK(rig.drops("esp_sa_retired") == 2);
  CHECK(rig.drops("esp_no_sa") == 0);
  add_sa(rig, sa_req(0x5002, gl::api::SaDir::kOut, keymat(12)));
  CHECK(encrypt(4).size() > 40);
  // A grace then a del without one: removed at once, which is no lifetime: esp_no_sa.
  REQUIRE(rig.dp->sa_del(0x5002, gl::api::SaDir::kOut, 60000));
  REQUIRE(rig.dp->sa_del(0x5002, gl::api::SaDir::kOut, 0));
  CHECK(rig.dp->sa_del(0x5002, gl::api::SaDir::kOut, 10).error().code == ENOENT);
  rig.execute(udp_frame(5, 40), "esp_encrypt(group=1),2");
  CHECK(rig.drops("esp_no_sa") == 1);
  CHECK(rig.drops("esp_sa_retired") == 2);
}

// ---- conntrack ---------------------------------------------------------------------------

namespace {

PacketBuilder udp_ab(uint16_t sport = 1234, uint16_t dport = 80) {
  PacketBuilder b;
  b.eth("02:00:00:00:00:01", "02:00:00:00:00:02")
      .ipv4("10.0.0.1", "10.0.0.2")
      .udp(sport, dport)
      .payload(16);
  return b;
}
PacketBuilder udp_ba(const char* src = "10.0.0.2", const char* dst = "10.0.0.1",
                     uint16_t sport = 80, uint16_t dport = 1234) {
  PacketBuilder b;
  b.eth("02:00:00:00:00:02", "02:00:00:00:00:01").ipv4(src, dst).udp(sport, dport).payload(16);
  return b;
}

// OVS's usual stateful pair: port 1 may open connections (zone 5), port 2 only answer.
void stateful_flows(Rig& rig) {
  rig.add_flow("recirc_id(0),in_port(1),eth_type(0x0800)", "ct(zone=5),recirc(1)");
  rig.add_flow("recirc_id(0),in_port(2),eth_type(0x0800)", "ct(zone=5),recirc(2)");
  rig.add_flow("recirc_id(1),in_port(1),ct_state(+new+trk),eth_type(0x0800)",
               "ct(commit,zone=5,mark=0x2a/0xff),2");
  rig.add_flow("recirc_id(1),in_port(1),ct_state(-new+est+trk),eth_type(0x0800)", "2");
  rig.add_flow("recirc_id(2),in_port(2),ct_state(+est+trk+rpl),eth_type(0x0800)", "1");
  rig.add_flow("recirc_id(2),in_port(2),ct_state(+new+trk),eth_type(0x0800)", "drop");
}

}  // namespace

TEST_CASE("ct: replies pass, unsolicited packets from the other side do not", "[datapath][ct]") {
  Rig rig;
  stateful_flows(rig);
  const Bytes unsolicited = udp_ba("10.0.0.2", "10.0.0.1", 53, 999).build();
  rig.inject(unsolicited, 2);
  CHECK(rig.sent(1).empty());  // +new from port 2: dropped
  const Bytes out = udp_ab().build();
  rig.inject(out, 1);
  CHECK(rig.sent(2) == std::vector<Bytes>{out});  // +new, committed with mark 0x2a
  const Bytes back = udp_ba().build();
  rig.inject(back, 2);
  CHECK(rig.sent(1) == std::vector<Bytes>{back});  // +est+rpl
  rig.inject(out, 1);
  CHECK(rig.sent(2) == std::vector<Bytes>{out});  // +est now
  CHECK(rig.dp->conntrack().n_conns() == 1);
  int seen = 0;
  rig.dp->with_conntrack([&](gl::ct::Conntrack& ct) {
    ct.dump(0, 5, 0, [&](const gl::ct::Entry& e) {
      ++seen;
      CHECK(e.orig.zone == 5);
      CHECK(e.mark == 0x2a);
      CHECK(e.packets[0] == 2);
      CHECK(e.packets[1] == 1);
      return true;
    });
    return 0;
  });
  CHECK(seen == 1);
  // Flushed: the reply direction is unsolicited again.
  rig.dp->with_conntrack([](gl::ct::Conntrack& ct) { return ct.flush(5); });
  rig.inject(back, 2);
  CHECK(rig.sent(1).empty());
}

TEST_CASE("ct_clear: the packet leaves untracked; a later ct() looks the connection up again",
          "[datapath][ct]") {
  Rig rig;
  rig.add_flow("recirc_id(0),in_port(1),eth_type(0x0800)",
               "ct(commit,zone=3,mark=0x7/0xff,label=0x5/0xff),recirc(1)");
  // Tracked, with everything ct() sets: state, zone, mark, label, original tuple.
  rig.add_flow(
      "recirc_id(1),ct_state(+new+trk),ct_zone(0x3),ct_mark(0x7),ct_label(0x5),"
      "ct_tuple4(src=10.0.0.1,dst=10.0.0.2,proto=17,tp_src=1234,tp_dst=80),eth_type(0x0800)",
      "ct_clear,recirc(2)");
  // Cleared: all of it zero (a field left over would match neither flow: a miss).
  rig.add_flow(
      "recirc_id(2),ct_state(-new-est-trk),ct_zone(0),ct_mark(0),ct_label(0),"
      "ct_tuple4(src=0.0.0.0,dst=0.0.0.0,proto=0,tp_src=0,tp_dst=0),eth_type(0x0800)",
      "ct(zone=3),recirc(3)");
  rig.add_flow("recirc_id(2),ct_state(+trk)", "3");  // not cleared
  // The ct() after ct_clear finds the committed connection again (its mark and label come
  // from the table, not from what the packet carried).
  rig.add_flow("recirc_id(3),ct_state(+new+trk),ct_zone(0x3),ct_mark(0x7),ct_label(0x5)", "2");
  const Bytes pkt = udp_ab().build();
  rig.inject(pkt, 1);
  CHECK(rig.sent(2) == std::vector<Bytes>{pkt});
  CHECK(rig.sent(3).empty());
  CHECK(rig.dp->conntrack().n_conns() == 1);
  // A second packet: the same way (the connection exists, UDP is +new until a reply).
  rig.inject(pkt, 1);
  CHECK(rig.sent(2) == std::vector<Bytes>{pkt});
}

TEST_CASE("ct: a second ct() in the same zone reuses the connection, another zone starts over",
          "[datapath][ct]") {
  Rig rig;
  rig.add_flow("recirc_id(0),in_port(1),eth_type(0x0800)", "ct(commit,zone=1),recirc(1)");
  // Same zone again: the state of the first ct() (+new) is kept.
  rig.add_flow("recirc_id(1),in_port(1),eth_type(0x0800)", "ct(zone=1),recirc(2)");
  rig.add_flow("recirc_id(2),ct_state(+new+trk),ct_zone(1),eth_type(0x0800)",
               "ct(zone=2),recirc(3)");
  // Zone 2 never committed: +new again, zone 2.
  rig.add_flow("recirc_id(3),ct_state(+new+trk),ct_zone(2),eth_type(0x0800)", "2");
  const Bytes pkt = udp_ab().build();
  rig.inject(pkt, 1);
  CHECK(rig.sent(2) == std::vector<Bytes>{pkt});
  CHECK(rig.dp->conntrack().n_conns() == 1);
}

TEST_CASE("ct: invalid packets are +inv: a TCP ACK out of window, a bad checksum",
          "[datapath][ct]") {
  Rig rig;
  rig.add_flow("recirc_id(0),in_port(1),eth_type(0x0800)", "ct(commit),recirc(1)");
  rig.add_flow("recirc_id(1),ct_state(+inv+trk),eth_type(0x0800)", "3");
  rig.add_flow("recirc_id(1),ct_state(-inv+trk),eth_type(0x0800)", "2");
  PacketBuilder syn;
  syn.eth("02:00:00:00:00:01", "02:00:00:00:00:02")
      .ipv4("10.0.0.1", "10.0.0.2")
      .tcp(4000, 80)
      .tcp_flags(gl::flow::kTcpSyn)
      .tcp_seq(1000);
  rig.inject(syn.build(), 1);
  CHECK(rig.sent(2).size() == 1);
  // A bare SYN+ACK from the originator's side makes no sense: flag check fails.
  PacketBuilder bad;
  bad.eth("02:00:00:00:00:01", "02:00:00:00:00:02")
      .ipv4("10.0.0.1", "10.0.0.9")
      .tcp(4000, 80)
      .tcp_flags(gl::flow::kTcpSyn | gl::flow::kTcpAck);
  rig.inject(bad.build(), 1);
  CHECK(rig.sent(3).size() == 1);
  Bytes corrupt = udp_ab(5555, 53).build();
  corrupt.back() ^= 0xff;  // the UDP checksum no longer matches
  rig.inject(corrupt, 1);
  CHECK(rig.sent(3).size() == 1);
  auto st = rig.dp->conntrack().stats();
  CHECK(st.invalid[static_cast<size_t>(gl::ct::Invalid::kTcpFlags)] == 1);
  CHECK(st.invalid[static_cast<size_t>(gl::ct::Invalid::kL4Checksum)] == 1);
}

TEST_CASE("ct: SNAT rewrites both directions byte for byte", "[datapath][ct][nat]") {
  Rig rig;
  rig.add_flow("recirc_id(0),in_port(1),eth_type(0x0800)",
               "ct(commit,zone=1,nat(src=192.168.9.1:3000-3000)),2");
  rig.add_flow("recirc_id(0),in_port(2),eth_type(0x0800)", "ct(zone=1,nat),recirc(1)");
  rig.add_flow("recirc_id(1),in_port(2),ct_state(+est+trk+rpl+dnat),eth_type(0x0800)", "1");
  rig.inject(udp_ab().build(), 1);
  const Bytes want_out = udp_ab().build();
  PacketBuilder exp;
  exp.eth("02:00:00:00:00:01", "02:00:00:00:00:02")
      .ipv4("192.168.9.1", "10.0.0.2")
      .udp(3000, 80)
      .payload(16);
  CHECK(rig.sent(2) == std::vector<Bytes>{exp.build()});
  // The reply, to the translated address and port, goes back to the original ones.
  rig.inject(udp_ba("10.0.0.2", "192.168.9.1", 80, 3000).build(), 2);
  CHECK(rig.sent(1) == std::vector<Bytes>{udp_ba().build()});
  (void)want_out;
  // A second connection would need the same port: the range is exhausted, not committed.
  rig.inject(udp_ab(1235, 80).build(), 1);
  CHECK(rig.dp->conntrack().n_conns() == 1);
  CHECK(rig.dp->conntrack().stats().nat_exhausted == 1);
}

namespace {

// Cuts an untagged IPv4 frame into fragments carrying `chunk` bytes of its payload each
// (a multiple of 8), headers copied, lengths, offsets, MF and checksums set.
std::vector<Bytes> fragments(const Bytes& frame, size_t chunk) {
  std::vector<Bytes> out;
  const size_t l3 = 14, ihl = (frame[l3] & 0x0f) * 4u;
  const size_t total = size_t(frame[l3 + 2]) << 8 | frame[l3 + 3];
  const size_t payload = total - ihl;
  for (size_t off = 0; off < payload; off += chunk) {
    const size_t n = std::min(chunk, payload - off);
    Bytes f(frame.begin(), frame.begin() + static_cast<ptrdiff_t>(l3 + ihl));
    f.insert(f.end(), frame.begin() + static_cast<ptrdiff_t>(l3 + ihl + off),
             frame.begin() + static_cast<ptrdiff_t>(l3 + ihl + off + n));
    const size_t tl = ihl + n;
    f[l3 + 2] = static_cast<uint8_t>(tl >> 8);
    f[l3 + 3] = static_cast<uint8_t>(tl);
    const size_t units = off / 8;
    f[l3 + 6] = static_cast<uint8_t>((off + n < payload ? 0x20 : 0) | (units >> 8));
    f[l3 + 7] = static_cast<uint8_t>(units);
    f[l3 + 10] = f[l3 + 11] = 0;
    const uint16_t cs = gl::flow::inet_checksum(f.data() + l3, ihl);
    std::memcpy(f.data() + l3 + 10, &cs, 2);
    out.push_back(f);
  }
  return out;
}

}  // namespace

TEST_CASE("ct: IP fragments are reassembled for tracking and forwarded as they came",
          "[datapath][ct][ipf]") {
  Rig rig;
  rig.add_flow("recirc_id(0),in_port(1),eth_type(0x0800)", "ct(commit,zone=1),recirc(1)");
  rig.add_flow("recirc_id(1),in_port(1),ct_state(+new+trk),eth_type(0x0800)", "2");
  rig.add_flow("recirc_id(1),in_port(1),ct_state(+inv+trk),eth_type(0x0800)", "3");
  PacketBuilder b;
  b.eth("02:00:00:00:00:01", "02:00:00:00:00:02")
      .ipv4("10.0.0.1", "10.0.0.2")
      .ip_id(99)
      .udp(1234, 80)
      .payload(600);
  const Bytes whole = b.build();
  // Non-last fragments shorter than the minimum (OVS's default 1200) are +inv.
  REQUIRE(rig.dp->conntrack().ipf().set_min_frag(gl::ct::IpfFamily::kV4, 400).has_value());
  const auto frags = fragments(whole, 480);
  REQUIRE(frags.size() == 2);
  rig.inject(frags[1], 1);  // the last one first: held
  CHECK(rig.sent(2).empty());
  CHECK(rig.sent(3).empty());
  rig.inject(frags[0], 1);  // completes the datagram: both leave, as fragments, +new
  auto out = rig.sent(2);
  REQUIRE(out.size() == 2);
  CHECK(((out[0] == frags[0] && out[1] == frags[1]) || (out[0] == frags[1] && out[1] == frags[0])));
  CHECK(rig.dp->conntrack().n_conns() == 1);  // the datagram's UDP connection
  // An overlapping fragment is +inv.
  PacketBuilder c;
  c.eth("02:00:00:00:00:01", "02:00:00:00:00:02")
      .ipv4("10.0.0.1", "10.0.0.2")
      .ip_id(100)
      .udp(1234, 81)
      .payload(600);
  const auto f2 = fragments(c.build(), 480);
  rig.inject(f2[0], 1);
  rig.inject(f2[0], 1);  // a duplicate
  CHECK(rig.sent(3).size() == 1);
}

TEST_CASE("ct: helper=ftp makes the announced data connection +rel", "[datapath][ct][alg]") {
  Rig rig;
  rig.add_flow("recirc_id(0),in_port(1),eth_type(0x0800)", "ct(zone=1),recirc(1)");
  rig.add_flow("recirc_id(0),in_port(2),eth_type(0x0800)", "ct(zone=1),recirc(2)");
  rig.add_flow("recirc_id(1),in_port(1),ct_state(+new-rel+trk),eth_type(0x0800)",
               "ct(commit,zone=1,helper=ftp),2");
  rig.add_flow("recirc_id(1),in_port(1),ct_state(+est+trk),eth_type(0x0800)", "2");
  rig.add_flow("recirc_id(2),in_port(2),ct_state(+est+rpl+trk),eth_type(0x0800)", "1");
  // From the server's side only related connections may open.
  rig.add_flow("recirc_id(2),in_port(2),ct_state(+new+rel+trk),eth_type(0x0800)",
               "ct(commit,zone=1),1");
  rig.add_flow("recirc_id(2),in_port(2),ct_state(+new-rel+trk),eth_type(0x0800)", "drop");
  auto tcp = [](bool ab, uint16_t sp, uint16_t dp, uint16_t flags, uint32_t seq, uint32_t ack,
                std::string_view payload = {}) {
    PacketBuilder b;
    if (ab)
      b.eth("02:00:00:00:00:01", "02:00:00:00:00:02").ipv4("10.0.0.1", "10.0.0.2");
    else
      b.eth("02:00:00:00:00:02", "02:00:00:00:00:01").ipv4("10.0.0.2", "10.0.0.1");
    b.tcp(sp, dp).tcp_flags(flags).tcp_seq(seq).tcp_ack(ack);
    if (!payload.empty()) b.payload(Bytes(payload.begin(), payload.end()));
    return b.build();
  };
  using gl::flow::kTcpAck;
  using gl::flow::kTcpPsh;
  using gl::flow::kTcpSyn;
  // A data connection from the server before any PORT: dropped.
  rig.inject(tcp(false, 20, 1025, kTcpSyn, 7000, 0), 2);
  CHECK(rig.sent(1).empty());
  rig.inject(tcp(true, 40000, 21, kTcpSyn, 1000, 0), 1);
  CHECK(rig.sent(2).size() == 1);
  rig.inject(tcp(false, 21, 40000, kTcpSyn | kTcpAck, 5000, 1001), 2);
  CHECK(rig.sent(1).size() == 1);
  rig.inject(tcp(true, 40000, 21, kTcpAck, 1001, 5001), 1);
  const Bytes port = tcp(true, 40000, 21, kTcpAck | kTcpPsh, 1001, 5001, "PORT 10,0,0,1,4,1\r\n");
  rig.inject(port, 1);
  CHECK(rig.sent(2).size() == 2);
  // Now the server's connection to the announced port is related and accepted.
  const Bytes data = tcp(false, 20, 1025, kTcpSyn, 7000, 0);
  rig.inject(data, 2);
  CHECK(rig.sent(1) == std::vector<Bytes>{data});
  CHECK(rig.dp->conntrack().n_conns() == 2);
}

// ---- the firewall stage at workload ports ---------------------------------------------

namespace {

constexpr uint32_t kWeb = 10, kDb = 20;  // identities

// Port 1: VM "web" 10.0.0.1, port 2: VM "db" 10.0.0.2; switching by plain flows. web may
// open TCP 5432 to db (rule 1 at web's egress, rule 2 at db's ingress); telnet from web is
// rejected (rule 3); nothing else is allowed. gen: the tables' generation; db_accepts:
// whether db's ingress still allows web.
std::unique_ptr<gl::fw::FwTables> web_db_policy(uint64_t gen, bool db_accepts,
                                                uint32_t web_limit = 0, uint32_t db_limit = 0) {
  using gl::fw::Action;
  using gl::fw::Entry;
  auto t = std::make_unique<gl::fw::FwTables>();
  t->generation = gen;
  gl::fw::Prefix w, d;
  w.family = d.family = 4;
  w.len = d.len = 32;
  const uint8_t wa[4] = {10, 0, 0, 1}, da[4] = {10, 0, 0, 2};
  std::memcpy(w.addr, wa, 4);
  std::memcpy(d.addr, da, 4);
  w.identity = kWeb;
  d.identity = kDb;
  gl::fw::Prefix rw = w;  // 10.0.1.9: a web workload on another host
  const uint8_t rwa[4] = {10, 0, 1, 9};
  std::memcpy(rw.addr, rwa, 4);
  auto ipc = gl::fw::IpCache::build(std::vector<gl::fw::Prefix>{w, d, rw});
  REQUIRE(ipc);
  t->ipcache = std::move(*ipc);
  gl::fw::PortFirewall web, db;
  web.port_no = 1;
  web.identity = kWeb;
  const uint8_t wm[6] = {2, 0, 0, 0, 0, 1}, dm[6] = {2, 0, 0, 0, 0, 2};
  std::memcpy(web.mac, wm, 6);
  uint32_t a;
  std::memcpy(&a, wa, 4);
  web.ipv4 = {a};
  web.conn_limit = web_limit;
  web.from_vm = gl::fw::PolicyTable(
      Action::kDeny, {Entry{kDb, 6, 5432, 5432, Action::kAllow, false, 1},
                      Entry{gl::fw::kAnyIdentity, 6, 23, 23, Action::kReject, true, 3}});
  web.to_vm = gl::fw::PolicyTable(Action::kDeny, {});
  db.port_no = 2;
  db.identity = kDb;
  std::memcpy(db.mac, dm, 6);
  std::memcpy(&a, da, 4);
  db.ipv4 = {a};
  db.conn_limit = db_limit;
  db.from_vm = gl::fw::PolicyTable(Action::kDeny, {});
  std::vector<Entry> in;
  if (db_accepts) in.push_back(Entry{kWeb, 6, 5432, 5432, Action::kAllow, false, 2});
  db.to_vm = gl::fw::PolicyTable(Action::kDeny, in);
  t->ports = {web, db};
  return t;
}

PacketBuilder tcp4(const char* src, const char* dst, uint16_t sport, uint16_t dport, uint16_t flags,
                   uint32_t seq, uint32_t ack, const char* smac = "02:00:00:00:00:01",
                   const char* dmac = "02:00:00:00:00:02") {
  PacketBuilder b;
  b.eth(smac, dmac).ipv4(src, dst).tcp(sport, dport).tcp_flags(flags).tcp_seq(seq).tcp_ack(ack);
  return b;
}

// web:40000 -> db:5432 through the handshake (both ports' stages pass it); the sent
// frames are taken.
void open_web_db(Rig& rig) {
  using gl::flow::kTcpAck;
  using gl::flow::kTcpSyn;
  rig.inject(tcp4("10.0.0.1", "10.0.0.2", 40000, 5432, kTcpSyn, 100, 0).build(), 1);
  rig.inject(tcp4("10.0.0.2", "10.0.0.1", 5432, 40000, kTcpSyn | kTcpAck, 500, 101,
                  "02:00:00:00:00:02", "02:00:00:00:00:01")
                 .build(),
             2);
  rig.inject(tcp4("10.0.0.1", "10.0.0.2", 40000, 5432, kTcpAck, 101, 501).build(), 1);
  REQUIRE(rig.sent(1).size() == 1);
  REQUIRE(rig.sent(2).size() == 2);
}

void switch_flows(Rig& rig) {
  rig.add_flow("in_port(1),eth_type(0x0800)", "2");
  rig.add_flow("in_port(2),eth_type(0x0800)", "1");
}

}  // namespace

TEST_CASE("firewall: policy by identity at both ends, replies by the connection, default deny",
          "[datapath][firewall]") {
  using gl::flow::kTcpAck;
  using gl::flow::kTcpSyn;
  Rig rig;
  switch_flows(rig);
  REQUIRE(rig.dp->set_firewall(web_db_policy(1, true)));
  // web -> db:5432: allowed at web's egress (rule 1) and db's ingress (rule 2).
  const Bytes syn = tcp4("10.0.0.1", "10.0.0.2", 40000, 5432, kTcpSyn, 100, 0).build();
  rig.inject(syn, 1);
  CHECK(rig.sent(2) == std::vector<Bytes>{syn});
  const Bytes synack = tcp4("10.0.0.2", "10.0.0.1", 5432, 40000, kTcpSyn | kTcpAck, 500, 101,
                            "02:00:00:00:00:02", "02:00:00:00:00:01")
                           .build();
  rig.inject(synack, 2);
  CHECK(rig.sent(1) == std::vector<Bytes>{synack});  // the reply: the connection lets it by
  const Bytes ack = tcp4("10.0.0.1", "10.0.0.2", 40000, 5432, kTcpAck, 101, 501).build();
  rig.inject(ack, 1);
  CHECK(rig.sent(2) == std::vector<Bytes>{ack});
  CHECK(rig.dp->fw_conntrack().n_conns() == 2);  // one in each port's zone
  CHECK(rig.dp->conntrack().n_conns() == 0);     // OVS's tracker is not involved

  // db may not open connections to web (db's egress: default deny).
  rig.inject(tcp4("10.0.0.2", "10.0.0.1", 5432, 80, kTcpSyn, 1, 0, "02:00:00:00:00:02",
                  "02:00:00:00:00:01")
                 .build(),
             2);
  CHECK(rig.sent(1).empty());
  CHECK(rig.drops("fw_deny") == 1);
  // web to db on another port: web's egress has no rule for it.
  rig.inject(tcp4("10.0.0.1", "10.0.0.2", 40001, 6000, kTcpSyn, 1, 0).build(), 1);
  CHECK(rig.sent(2).empty());
  CHECK(rig.drops("fw_deny") == 2);
  // A SYN+ACK cannot open a connection (OVS's tracker: +inv), even to an allowed port.
  rig.inject(tcp4("10.0.0.1", "10.0.0.2", 40002, 5432, kTcpSyn | kTcpAck, 1, 1).build(), 1);
  CHECK(rig.sent(2).empty());
  CHECK(rig.drops("fw_invalid") == 1);
}

TEST_CASE("firewall: checksums the port verified are not checked again, others are",
          "[datapath][firewall]") {
  // As ct() (and OVS): a corrupt segment must not move a connection's state, so the stage's
  // tracker checks L3/L4 checksums, except those the NIC or vhost marked good.
  using gl::flow::kTcpAck;
  Rig rig;
  switch_flows(rig);
  REQUIRE(rig.dp->set_firewall(web_db_policy(1, true)));
  open_web_db(rig);
  Bytes bad = tcp4("10.0.0.1", "10.0.0.2", 40000, 5432, kTcpAck, 101, 501).payload(10).build();
  bad[14 + 20 + 16] ^= 0x5a;  // the TCP checksum
  // Established, but corrupt: the tracker refuses it (at web's egress, the first stage).
  rig.inject(bad, 1);
  CHECK(rig.sent(2).empty());
  CHECK(rig.drops("fw_invalid") == 1);
  // The port verified the checksums (as a NIC or vhost would): tracked, delivered.
  rig.inject(bad, 1, RTE_MBUF_F_RX_IP_CKSUM_GOOD | RTE_MBUF_F_RX_L4_CKSUM_GOOD);
  CHECK(rig.sent(2) == std::vector<Bytes>{bad});
  CHECK(rig.drops("fw_invalid") == 1);
  // NONE: the checksum field is not right but the data is intact (a guest's offloaded
  // checksum, left partial, as vhost reports it): tracked, delivered.
  rig.inject(bad, 1, RTE_MBUF_F_RX_IP_CKSUM_NONE | RTE_MBUF_F_RX_L4_CKSUM_NONE);
  CHECK(rig.sent(2) == std::vector<Bytes>{bad});
  CHECK(rig.drops("fw_invalid") == 1);
  // A port that says the L4 checksum is bad, or did not look: checked, refused.
  rig.inject(bad, 1, RTE_MBUF_F_RX_IP_CKSUM_GOOD | RTE_MBUF_F_RX_L4_CKSUM_BAD);
  CHECK(rig.sent(2).empty());
  CHECK(rig.drops("fw_invalid") == 2);
  rig.inject(bad, 1, RTE_MBUF_F_RX_IP_CKSUM_GOOD | RTE_MBUF_F_RX_L4_CKSUM_UNKNOWN);
  CHECK(rig.sent(2).empty());
  CHECK(rig.drops("fw_invalid") == 3);
  // A good L4 checksum does not vouch for a bad IPv4 header checksum.
  Bytes bad_ip = tcp4("10.0.0.1", "10.0.0.2", 40000, 5432, kTcpAck, 101, 501).payload(10).build();
  bad_ip[14 + 10] ^= 0x5a;  // the IPv4 header checksum
  rig.inject(bad_ip, 1, RTE_MBUF_F_RX_IP_CKSUM_BAD | RTE_MBUF_F_RX_L4_CKSUM_GOOD);
  CHECK(rig.sent(2).empty());
  CHECK(rig.drops("fw_invalid") == 4);
}

TEST_CASE("firewall: the spoof guard drops foreign sources, lets DHCP discovery and ARP by",
          "[datapath][firewall]") {
  Rig rig;
  rig.add_flow("in_port(1)", "2");
  REQUIRE(rig.dp->set_firewall(web_db_policy(1, true)));
  // Another source address, another source MAC.
  rig.inject(tcp4("10.0.0.9", "10.0.0.2", 1, 5432, gl::flow::kTcpSyn, 1, 0).build(), 1);
  rig.inject(
      tcp4("10.0.0.1", "10.0.0.2", 1, 5432, gl::flow::kTcpSyn, 1, 0, "02:00:00:00:00:09").build(),
      1);
  CHECK(rig.sent(2).empty());
  CHECK(rig.drops("fw_spoof") == 2);
  // ARP with its own addresses passes; with another sender address it does not.
  PacketBuilder arp_ok, arp_bad;
  arp_ok.eth("02:00:00:00:00:01", "ff:ff:ff:ff:ff:ff")
      .arp_request("02:00:00:00:00:01", "10.0.0.1", "10.0.0.2");
  arp_bad.eth("02:00:00:00:00:01", "ff:ff:ff:ff:ff:ff")
      .arp_request("02:00:00:00:00:01", "10.0.0.7", "10.0.0.2");
  rig.inject(arp_ok.build(), 1);
  rig.inject(arp_bad.build(), 1);
  CHECK(rig.sent(2) == std::vector<Bytes>{arp_ok.build()});
  CHECK(rig.drops("fw_spoof") == 3);
}

TEST_CASE("firewall: reject answers the VM with a TCP RST for the segment it sent",
          "[datapath][firewall]") {
  Rig rig;
  switch_flows(rig);
  REQUIRE(rig.dp->set_firewall(web_db_policy(1, true)));
  rig.inject(tcp4("10.0.0.1", "10.0.0.2", 40000, 23, gl::flow::kTcpSyn, 1000, 0).build(), 1);
  CHECK(rig.sent(2).empty());
  CHECK(rig.drops("fw_reject") == 1);
  const std::vector<Bytes> back = rig.sent(1);
  REQUIRE(back.size() == 1);
  const Bytes want = tcp4("10.0.0.2", "10.0.0.1", 23, 40000, gl::flow::kTcpRst | gl::flow::kTcpAck,
                          0, 1001, "02:00:00:00:00:02", "02:00:00:00:00:01")
                         .tcp_window(0)
                         .ttl(64)
                         .ip_id(0)
                         .build();
  CHECK(back[0] == want);
}

TEST_CASE("firewall: a new policy version cuts what it denies and keeps what it allows",
          "[datapath][firewall]") {
  using gl::flow::kTcpAck;
  using gl::flow::kTcpSyn;
  Rig rig;
  switch_flows(rig);
  REQUIRE(rig.dp->set_firewall(web_db_policy(1, true)));
  open_web_db(rig);
  const Bytes ack = tcp4("10.0.0.1", "10.0.0.2", 40000, 5432, kTcpAck, 101, 501).build();
  // The same policy again, a new generation: the connection is checked again, and passes.
  REQUIRE(rig.dp->set_firewall(web_db_policy(2, true)));
  rig.inject(ack, 1);
  CHECK(rig.sent(2) == std::vector<Bytes>{ack});
  CHECK(rig.drops("fw_revoked") == 0);
  // db no longer accepts web: the established connection is cut at db's port.
  REQUIRE(rig.dp->set_firewall(web_db_policy(3, false)));
  rig.inject(ack, 1);
  CHECK(rig.sent(2).empty());
  CHECK(rig.drops("fw_revoked") == 1);
  // And a new one is refused at db's ingress.
  rig.inject(tcp4("10.0.0.1", "10.0.0.2", 40001, 5432, kTcpSyn, 7, 0).build(), 1);
  CHECK(rig.sent(2).empty());
  CHECK(rig.drops("fw_deny") == 1);
  // Without a firewall the ports only switch.
  REQUIRE(rig.dp->set_firewall(nullptr));
  rig.inject(ack, 1);
  CHECK(rig.sent(2) == std::vector<Bytes>{ack});
}

TEST_CASE("firewall: a workload's connection limit holds its own new connections only",
          "[datapath][firewall]") {
  Rig rig;
  switch_flows(rig);
  REQUIRE(rig.dp->set_firewall(web_db_policy(1, true, 2)));
  for (uint16_t p = 0; p < 5; ++p)
    rig.inject(tcp4("10.0.0.1", "10.0.0.2", static_cast<uint16_t>(41000 + p), 5432,
                    gl::flow::kTcpSyn, 1, 0)
                   .build(),
               1);
  CHECK(rig.sent(2).size() == 2);
  CHECK(rig.drops("fw_conn_limit") == 3);
  // Refusing a port listed twice leaves the running version as it was.
  auto bad = web_db_policy(2, true);
  bad->ports.push_back(bad->ports[0]);
  CHECK_FALSE(rig.dp->set_firewall(std::move(bad)));
  rig.inject(tcp4("10.0.0.1", "10.0.0.2", 41009, 5432, gl::flow::kTcpSyn, 1, 0).build(), 1);
  CHECK(rig.drops("fw_conn_limit") == 4);
}

TEST_CASE("firewall: a connection between two local workloads counts against its initiator",
          "[datapath][firewall]") {
  Rig rig;
  switch_flows(rig);
  rig.add_flow("in_port(3),eth_type(0x0800)", "2");  // port 3: the uplink
  REQUIRE(rig.dp->set_firewall(web_db_policy(1, true, 0, 2)));
  // web (local, no limit of its own) opens 5 connections to db (limit 2): db's limit does
  // not count them, or a flood from web would starve everyone else of db.
  for (uint16_t p = 0; p < 5; ++p)
    rig.inject(tcp4("10.0.0.1", "10.0.0.2", static_cast<uint16_t>(42000 + p), 5432,
                    gl::flow::kTcpSyn, 1, 0)
                   .build(),
               1);
  CHECK(rig.sent(2).size() == 5);
  CHECK(rig.drops("fw_conn_limit") == 0);
  CHECK(rig.dp->fw_conntrack().zone_count(2) == 0);
  CHECK(rig.dp->fw_conntrack().zone_count(1) == 5);
  // A web workload of another host, through the uplink: counted in db's zone, limit 2.
  for (uint16_t p = 0; p < 3; ++p)
    rig.inject(tcp4("10.0.1.9", "10.0.0.2", static_cast<uint16_t>(43000 + p), 5432,
                    gl::flow::kTcpSyn, 1, 0, "02:00:00:00:00:09")
                   .build(),
               3);
  CHECK(rig.sent(2).size() == 2);
  CHECK(rig.drops("fw_conn_limit") == 1);
  CHECK(rig.dp->fw_conntrack().zone_count(2) == 2);
  // A packet from the uplink forging web's address is no local connection: it is
  // counted too (refused here, db's limit is reached).
  rig.inject(tcp4("10.0.0.1", "10.0.0.2", 44000, 5432, gl::flow::kTcpSyn, 1, 0, "02:00:00:00:00:09")
                 .build(),
             3);
  CHECK(rig.sent(2).empty());
  CHECK(rig.drops("fw_conn_limit") == 2);
  // Flushing the firewall's tracker releases both zones' counts.
  rig.dp->fw_conntrack().flush(-1);
  CHECK(rig.dp->fw_conntrack().zone_count(2) == 0);
  CHECK(rig.dp->fw_conntrack().zone_count(1) == 0);
}

TEST_CASE("firewall: a packet rejected on its way to a VM is answered to its sender",
          "[datapath][firewall]") {
  Rig rig;
  rig.add_flow("in_port(3),eth_type(0x0800)", "2");  // port 3: the uplink
  rig.add_flow("in_port(2),eth_type(0x0800)", "3");
  auto t = web_db_policy(1, true);
  // db rejects telnet from web workloads (10.0.1.9 is one on another host).
  t->ports[1].to_vm = gl::fw::PolicyTable(
      gl::fw::Action::kDeny, {gl::fw::Entry{kWeb, 6, 5432, 5432, gl::fw::Action::kAllow, false, 2},
                              gl::fw::Entry{kWeb, 6, 23, 23, gl::fw::Action::kReject, false, 4}});
  REQUIRE(rig.dp->set_firewall(std::move(t)));
  rig.inject(tcp4("10.0.1.9", "10.0.0.2", 40000, 23, gl::flow::kTcpSyn, 1000, 0,
                  "02:00:00:00:00:09", "02:00:00:00:00:02")
                 .build(),
             3);
  CHECK(rig.sent(2).empty());  // db never sees it
  CHECK(rig.drops("fw_reject") == 1);
  // The RST comes back out of the uplink, from db's address and MAC (past db's own
  // egress policy, which denies everything: the answer is the firewall's, not db's).
  const auto back = rig.sent(3);
  REQUIRE(back.size() == 1);
  const Bytes& r = back[0];
  REQUIRE(r.size() >= 54);
  CHECK(Bytes(r.begin(), r.begin() + 12) ==
        Bytes{2, 0, 0, 0, 0, 9, 2, 0, 0, 0, 0, 2});  // to the sender, from db
  CHECK(Bytes(r.begin() + 26, r.begin() + 34) == Bytes{10, 0, 0, 2, 10, 0, 1, 9});  // IPs
  CHECK(r[23] == 6);
  CHECK((r[34] << 8 | r[35]) == 23);
  CHECK((r[36] << 8 | r[37]) == 40000);
  CHECK((uint32_t{r[42]} << 24 | uint32_t{r[43]} << 16 | uint32_t{r[44]} << 8 | r[45]) == 1001);
  CHECK(r[47] == 0x14);  // RST|ACK
  CHECK(gl::flow::ipv4_header_checksum_ok(r.data() + 14, 20));
  // A RST is never answered (two firewalls rejecting each other's answers would loop).
  rig.inject(tcp4("10.0.1.9", "10.0.0.2", 40001, 23, gl::flow::kTcpRst, 5, 0, "02:00:00:00:00:09",
                  "02:00:00:00:00:02")
                 .build(),
             3);
  CHECK(rig.sent(2).empty());
  CHECK(rig.sent(3).empty());
  CHECK(rig.drops("fw_reject") == 2);
  CHECK(rig.drops("fw_deny") == 0);
}

TEST_CASE("firewall: a workload's port added before its policy passes nothing (quarantine)",
          "[datapath][firewall]") {
  Rig rig;
  switch_flows(rig);
  rig.add_flow("in_port(4),eth_type(0x0800)", "2");
  rig.add_flow("in_port(3),eth_type(0x0800)", "4");  // port 3: the uplink
  // The version names "late" (a workload whose port gldp does not have yet).
  auto t = web_db_policy(1, true);
  t->quarantine = {"late"};
  REQUIRE(rig.dp->set_firewall(std::move(t)));
  gl::dp::PortConfig pc;
  pc.name = "late";
  pc.devargs = "net_ring" + std::to_string(Rig::seq++);
  pc.port_no = 4;
  pc.n_rxq = 2;
  auto added = rig.dp->port_add(pc);
  REQUIRE(added);
  rig.dpdk_ids.push_back(added->dpdk_port_id);
  CHECK(rig.dp->fw_quarantined(4));
  CHECK_FALSE(rig.dp->fw_quarantined(3));  // not a workload's port: untouched
  // Nothing from it, nothing to it.
  rig.inject(tcp4("10.0.0.4", "10.0.0.2", 40000, 5432, gl::flow::kTcpSyn, 1, 0).build(), 4);
  CHECK(rig.sent(2).empty());
  CHECK(rig.drops("fw_quarantine") == 1);
  rig.inject(tcp4("10.0.1.9", "10.0.0.4", 40000, 22, gl::flow::kTcpSyn, 1, 0).build(), 3);
  CHECK(rig.sent(4).empty());
  CHECK(rig.drops("fw_quarantine") == 2);
  // A version that binds it: it passes by its policy (no policy of its own: the default).
  auto t2 = web_db_policy(2, true);
  gl::fw::PortFirewall late;
  late.port_no = 4;
  late.from_vm = gl::fw::PolicyTable(gl::fw::Action::kAllow, {});
  late.to_vm = gl::fw::PolicyTable(gl::fw::Action::kAllow, {});
  t2->ports.push_back(late);
  REQUIRE(rig.dp->set_firewall(std::move(t2)));
  rig.inject(tcp4("10.0.1.9", "10.0.0.4", 40001, 22, gl::flow::kTcpSyn, 1, 0).build(), 3);
  CHECK(rig.sent(4).size() == 1);
  // (the flag is cleared after a grace period: no PMD may still hold the old version)
  auto cleared = [&] {
    for (int i = 0; i < 200 && rig.dp->fw_quarantined(4); ++i) {
      rig.dp->housekeeping();
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return !rig.dp->fw_quarantined(4);
  };
  CHECK(cleared());
  // A version that neither binds nor names it: an ordinary port again.
  REQUIRE(rig.dp->set_firewall(web_db_policy(3, true)));
  CHECK(cleared());
  // Named again while it exists (glctld raced with its arrival): closed at once.
  auto t4 = web_db_policy(4, true);
  t4->quarantine = {"late"};
  REQUIRE(rig.dp->set_firewall(std::move(t4)));
  CHECK(rig.dp->fw_quarantined(4));
  rig.inject(tcp4("10.0.0.4", "10.0.0.2", 40001, 5432, gl::flow::kTcpSyn, 1, 0).build(), 4);
  CHECK(rig.sent(2).empty());
  CHECK(rig.drops("fw_quarantine") == 3);
  // Deleted: forgotten.
  REQUIRE(rig.dp->port_del(4));
  CHECK_FALSE(rig.dp->fw_quarantined(4));
}

namespace {

// gldp's API server on this rig's datapath, in a thread, for as long as it lives. The
// test talks to it with the real client; packets are injected after it stopped (the
// server's housekeeping uses the control context too).
struct ServerThread {
  std::string path;
  std::unique_ptr<gl::dp::Server> server;
  std::atomic<bool> stop{false};
  std::thread th;
  explicit ServerThread(gl::dp::Datapath& dp)
      : path("/tmp/gl-dptest-" + std::to_string(::getpid()) + ".sock") {
    server = std::make_unique<gl::dp::Server>(dp, path);
    std::string err;
    REQUIRE(server->listen(err));
    th = std::thread([this] { server->run(stop); });
  }
  void join() {
    if (th.joinable()) {
      stop = true;
      th.join();
    }
  }
  ~ServerThread() { join(); }
};

// A rule's {packets, bytes, conns} (fw_rule_stats).
std::array<uint64_t, 3> rule_stat(Rig& rig, uint32_t rule_id) {
  for (const auto& [id, c] : rig.dp->fw_rule_stats())
    if (id == rule_id) return c;
  return {0, 0, 0};
}

gl::api::FwEntryWire entry(uint32_t remote, uint8_t proto, uint16_t lo, uint16_t hi,
                           gl::fw::Action a, uint32_t rule) {
  gl::api::FwEntryWire e{};
  e.remote = remote;
  e.proto = proto;
  e.port_lo = lo;
  e.port_hi = hi;
  e.action = static_cast<uint8_t>(a);
  e.rule_id = rule;
  return e;
}

// web_db_policy's identities and rule 1 / rule 2 as fw_install's arguments: web 10.0.0.1
// (10) on port 1, db 10.0.0.2 (20) on port 2; web may reach db:5432 (both ends).
std::pair<std::vector<gl::api::FwPrefixWire>, std::vector<gl::api::FwPortSpec>> web_db_wire() {
  using gl::fw::Action;
  std::vector<gl::api::FwPrefixWire> ipc(2);
  for (int i = 0; i < 2; ++i) {
    ipc[i].family = 4;
    ipc[i].len = 32;
    const uint8_t a[4] = {10, 0, 0, static_cast<uint8_t>(i + 1)};
    std::memcpy(ipc[i].addr, a, 4);
    ipc[i].identity = i == 0 ? kWeb : kDb;
  }
  std::vector<gl::api::FwPortSpec> ports(2);
  ports[0].port_no = 1;
  ports[0].identity = kWeb;
  ports[0].ipv4 = {gl::flow::ipv4_addr("10.0.0.1")};
  ports[0].from_vm = {entry(kDb, 6, 5432, 5432, Action::kAllow, 1)};
  ports[1].port_no = 2;
  ports[1].identity = kDb;
  ports[1].ipv4 = {gl::flow::ipv4_addr("10.0.0.2")};
  ports[1].to_vm = {entry(kWeb, 6, 5432, 5432, Action::kAllow, 2)};
  return {ipc, ports};
}

}  // namespace

TEST_CASE("firewall through the API: a version installed as one transaction, errors named",
          "[datapath][firewall][api]") {
  using gl::fw::Action;
  Rig rig;
  switch_flows(rig);
  ServerThread srv(*rig.dp);
  auto c = gl::api::Client::connect(srv.path);
  REQUIRE(c);
  // Identities: web 10.0.0.1 (10), db 10.0.0.2 (20); web may reach db:5432 (both ends).
  auto [ipc, ports] = web_db_wire();
  REQUIRE(c->fw_install(7, ipc, ports));
  auto st = c->fw_status();
  REQUIRE(st);
  CHECK(st->generation == 7);
  CHECK(st->n_ports == 2);
  CHECK(st->n_prefixes == 2);

  // Refusals name the problem and leave version 7 in force.
  auto bad_ports = ports;
  bad_ports[1].port_no = 9;
  auto r = c->fw_install(8, ipc, bad_ports);
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("fw port 9: no such port") != std::string::npos);
  bad_ports = ports;
  bad_ports[0].from_vm[0].port_lo = 6000;
  r = c->fw_install(8, ipc, bad_ports);
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("range 6000-5432 reversed") != std::string::npos);
  auto bad_ipc = ipc;
  bad_ipc[1].len = 40;
  r = c->fw_install(8, bad_ipc, ports);
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("length 40 too long") != std::string::npos);
  // A generation not above the one in force: connections would skip their re-check.
  r = c->fw_install(7, ipc, ports);
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("generation 7 is not above the one in force (7)") !=
        std::string::npos);
  CHECK(c->fw_status()->generation == 7);
  srv.join();

  rig.inject(tcp4("10.0.0.1", "10.0.0.2", 40000, 5432, gl::flow::kTcpSyn, 1, 0).build(), 1);
  CHECK(rig.sent(2).size() == 1);
  rig.inject(tcp4("10.0.0.1", "10.0.0.2", 40000, 22, gl::flow::kTcpSyn, 1, 0).build(), 1);
  CHECK(rig.sent(2).empty());
  CHECK(rig.drops("fw_deny") == 1);
}

// zone -> fw_current of the firewall's connections (kFwCtDump through the API).
std::map<uint32_t, int> fw_current_by_zone(Rig& rig) {
  ServerThread srv(*rig.dp);
  auto c = gl::api::Client::connect(srv.path);
  REQUIRE(c);
  std::map<uint32_t, int> m;
  REQUIRE(c->ct_dump(
      std::nullopt,
      [&](const gl::api::CtEntry& e) {
        m[e.zone] = e.fw_current;
        return true;
      },
      true));
  return m;
}

TEST_CASE("firewall: a version that changes one port re-checks only that port's connections",
          "[datapath][firewall]") {
  using gl::flow::kTcpAck;
  using gl::fw::Action;
  using gl::fw::Entry;
  Rig rig;
  switch_flows(rig);
  REQUIRE(rig.dp->set_firewall(web_db_policy(1, true)));
  open_web_db(rig);  // 3 packets each under rule 1 (web) and rule 2 (db)
  CHECK(fw_current_by_zone(rig) == std::map<uint32_t, int>{{1, 1}, {2, 1}});
  // Version 2: web's egress gains rule 7 ahead of its others; db's policy is as it was.
  auto t = web_db_policy(2, true);
  t->ports[0].from_vm = gl::fw::PolicyTable(
      Action::kDeny, {Entry{kDb, 17, 53, 53, Action::kAllow, false, 7},
                      Entry{kDb, 6, 5432, 5432, Action::kAllow, false, 1},
                      Entry{gl::fw::kAnyIdentity, 6, 23, 23, Action::kReject, true, 3}});
  REQUIRE(rig.dp->set_firewall(std::move(t)));
  // db's connection needs no re-check; web's does, on its next packet.
  CHECK(fw_current_by_zone(rig) == std::map<uint32_t, int>{{1, 0}, {2, 1}});
  const Bytes ack = tcp4("10.0.0.1", "10.0.0.2", 40000, 5432, kTcpAck, 101, 501).build();
  rig.inject(ack, 1);
  rig.inject(ack, 1);
  CHECK(rig.sent(2).size() == 2);
  CHECK(fw_current_by_zone(rig) == std::map<uint32_t, int>{{1, 1}, {2, 1}});
  // Each packet counted under the rule that allowed it at each port (db's connection
  // kept its counter slot although version 2 numbers a new rule).
  CHECK(rule_stat(rig, 1)[0] == 5);
  CHECK(rule_stat(rig, 2)[0] == 5);
  CHECK(rule_stat(rig, 3)[0] == 0);
  CHECK(rule_stat(rig, 7)[0] == 0);
  CHECK(rig.drops("fw_revoked") == 0);
  // The same policy as a new version: nothing to re-check anywhere.
  REQUIRE(rig.dp->set_firewall(web_db_policy(3, true)));
  CHECK(fw_current_by_zone(rig) == std::map<uint32_t, int>{{1, 0}, {2, 1}});
  // db stops accepting web: its connection is cut at its next packet.
  REQUIRE(rig.dp->set_firewall(web_db_policy(4, false)));
  CHECK(fw_current_by_zone(rig) == std::map<uint32_t, int>{{1, 0}, {2, 0}});
  rig.inject(ack, 1);
  CHECK(rig.sent(2).empty());
  CHECK(rig.drops("fw_revoked") == 1);
}

TEST_CASE(
    "firewall: an ipcache change re-checks only the connections of ports whose rules "
    "name an identity it changed",
    "[datapath][firewall]") {
  using gl::flow::kTcpAck;
  // web_db_policy(gen, true), its ipcache's prefixes changed by `edit`.
  auto with_ipcache = [](uint64_t gen,
                         const std::function<void(std::vector<gl::fw::Prefix>&)>& edit) {
    auto t = web_db_policy(gen, true);
    std::vector<gl::fw::Prefix> ps = t->ipcache.prefixes();
    edit(ps);
    auto ipc = gl::fw::IpCache::build(ps);
    REQUIRE(ipc);
    t->ipcache = std::move(*ipc);
    return t;
  };
  auto workload = [](uint8_t last, uint32_t identity) {
    gl::fw::Prefix p;
    p.family = 4;
    p.len = 32;
    const uint8_t a[4] = {10, 0, 2, last};
    std::memcpy(p.addr, a, 4);
    p.identity = identity;
    return p;
  };
  Rig rig;
  switch_flows(rig);
  REQUIRE(rig.dp->set_firewall(web_db_policy(1, true)));
  open_web_db(rig);  // web (port 1) -> db (port 2), TCP 5432
  CHECK(fw_current_by_zone(rig) == std::map<uint32_t, int>{{1, 1}, {2, 1}});
  // A workload of an identity neither port's rules name: nothing to re-check.
  REQUIRE(rig.dp->set_firewall(with_ipcache(2, [&](auto& ps) { ps.push_back(workload(5, 77)); })));
  CHECK(fw_current_by_zone(rig) == std::map<uint32_t, int>{{1, 1}, {2, 1}});
  // Another db workload: web's rules name db, so web's connections are checked again;
  // db's are not (its rules name web only).
  REQUIRE(rig.dp->set_firewall(with_ipcache(3, [&](auto& ps) {
    ps.push_back(workload(5, 77));
    ps.push_back(workload(6, kDb));
  })));
  CHECK(fw_current_by_zone(rig) == std::map<uint32_t, int>{{1, 0}, {2, 1}});
  const Bytes ack = tcp4("10.0.0.1", "10.0.0.2", 40000, 5432, kTcpAck, 101, 501).build();
  rig.inject(ack, 1);
  CHECK(rig.sent(2).size() == 1);
  CHECK(fw_current_by_zone(rig) == std::map<uint32_t, int>{{1, 1}, {2, 1}});
  // web's address becomes another identity: db's rule for web no longer applies to it,
  // so db's side is checked again and cut at its next packet; web's side is current.
  REQUIRE(rig.dp->set_firewall(with_ipcache(4, [&](auto& ps) {
    ps.push_back(workload(5, 77));
    ps.push_back(workload(6, kDb));
    for (gl::fw::Prefix& p : ps)
      if (p.addr[2] == 0 && p.addr[3] == 1) p.identity = 78;
  })));
  CHECK(fw_current_by_zone(rig) == std::map<uint32_t, int>{{1, 1}, {2, 0}});
  rig.inject(ack, 1);
  CHECK(rig.sent(2).empty());
  CHECK(rig.drops("fw_revoked") == 1);
}

TEST_CASE("firewall through the API: a delta changes the ports it names, on the version it names",
          "[datapath][firewall][api]") {
  using gl::flow::kTcpSyn;
  using gl::fw::Action;
  Rig rig;
  switch_flows(rig);
  auto [ipc, ports] = web_db_wire();
  auto syn = [](uint16_t sport, uint16_t dport) {
    return tcp4("10.0.0.1", "10.0.0.2", sport, dport, kTcpSyn, 1, 0).build();
  };
  {
    ServerThread srv(*rig.dp);
    auto c = gl::api::Client::connect(srv.path);
    REQUIRE(c);
    REQUIRE(c->fw_install(7, ipc, ports));
    // Version 8 as a delta of 7: web may also reach db:6379; db is not sent.
    std::vector<gl::api::FwPortSpec> web{ports[0]};
    web[0].from_vm.push_back(entry(kDb, 6, 6379, 6379, Action::kAllow, 4));
    gl::api::Client::FwDelta d;
    d.base = 7;
    d.ports = web;
    REQUIRE(c->fw_update(8, d));
    auto st = c->fw_status();
    REQUIRE(st);
    CHECK(st->generation == 8);
    CHECK(st->n_ports == 2);
    CHECK(st->n_prefixes == 2);
    // A delta on a version no longer in force changes nothing.
    auto r = c->fw_update(9, d);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == ESTALE);
    CHECK(r.error().message.find("based on version 7, but version 8 is in force") !=
          std::string::npos);
    // An ipcache in a delta that keeps it, removing a port without a firewall: named.
    gl::api::Client::FwDelta bad = d;
    bad.base = 8;
    bad.ports = {};
    bad.ipcache = ipc;
    r = c->fw_update(9, bad);
    REQUIRE_FALSE(r);
    CHECK(r.error().message.find("without new_ipcache") != std::string::npos);
    const uint32_t gone[] = {3};
    bad.ipcache = {};
    bad.removed = gone;
    r = c->fw_update(9, bad);
    REQUIRE_FALSE(r);
    CHECK(r.error().message.find("port 3 is removed but has no firewall in version 8") !=
          std::string::npos);
    CHECK(c->fw_status()->generation == 8);
    srv.join();
  }
  // web's new rule lets the SYN out; db's ingress (kept from version 7) still refuses it.
  rig.inject(syn(40000, 6379), 1);
  CHECK(rig.sent(2).empty());
  CHECK(rig.drops("fw_deny") == 1);
  rig.inject(syn(40001, 5432), 1);
  CHECK(rig.sent(2).size() == 1);
  {
    // Version 9: db leaves the firewall; 10: a new ipcache in which 10.0.0.2 is not db.
    ServerThread srv(*rig.dp);
    auto c = gl::api::Client::connect(srv.path);
    REQUIRE(c);
    const uint32_t db_port[] = {2};
    gl::api::Client::FwDelta d;
    d.base = 8;
    d.removed = db_port;
    REQUIRE(c->fw_update(9, d));
    CHECK(c->fw_status()->n_ports == 1);
    srv.join();
  }
  rig.inject(syn(40002, 6379), 1);
  CHECK(rig.sent(2).size() == 1);
  {
    ServerThread srv(*rig.dp);
    auto c = gl::api::Client::connect(srv.path);
    REQUIRE(c);
    std::vector<gl::api::FwPrefixWire> ipc2{ipc[0]};
    gl::api::Client::FwDelta d;
    d.base = 9;
    d.new_ipcache = true;
    d.ipcache = ipc2;
    REQUIRE(c->fw_update(10, d));
    CHECK(c->fw_status()->n_prefixes == 1);
    srv.join();
  }
  // 10.0.0.2 is the world now: web's rules (for db) no longer allow it.
  rig.inject(syn(40003, 5432), 1);
  CHECK(rig.sent(2).empty());
  CHECK(rig.drops("fw_deny") == 2);
}

TEST_CASE("firewall: rule counters, connection records, refusals, trace and its own conntrack",
          "[datapath][firewall][api]") {
  using gl::flow::kTcpAck;
  using gl::flow::kTcpSyn;
  Rig rig;
  switch_flows(rig);
  auto t = web_db_policy(1, true);
  t->record = gl::fw::kRecordAll;
  REQUIRE(rig.dp->set_firewall(std::move(t)));
  // A handshake web -> db:5432 (rule 1 at web, rule 2 at db), a denied SYN from db (db's
  // default), a rejected telnet from web (rule 3).
  open_web_db(rig);
  rig.inject(tcp4("10.0.0.2", "10.0.0.1", 5432, 80, kTcpSyn, 1, 0, "02:00:00:00:00:02",
                  "02:00:00:00:00:01")
                 .build(),
             2);
  rig.inject(tcp4("10.0.0.1", "10.0.0.2", 40001, 23, kTcpSyn, 1, 0).build(), 1);
  (void)rig.sent(1);
  (void)rig.sent(2);

  auto stats_of = [](gl::api::Client& c) {
    auto st = c.fw_rule_stats();
    REQUIRE(st);
    std::map<uint32_t, gl::api::FwRuleStat> by;
    for (const auto& s : *st) by[s.rule_id] = s;
    return by;
  };
  {
    ServerThread srv(*rig.dp);
    auto c = gl::api::Client::connect(srv.path);
    REQUIRE(c);
    auto by = stats_of(*c);
    // Each allowed rule: one connection, its three packets (both directions) at its port.
    CHECK(by[1].conns == 1);
    CHECK(by[1].packets == 3);
    CHECK(by[1].bytes == 3 * 40);  // IP bytes: 20 + 20, no payload
    CHECK(by[2].conns == 1);
    CHECK(by[2].packets == 3);
    CHECK(by[0].packets == 1);  // db's SYN, refused by its default
    CHECK(by[0].conns == 1);
    CHECK(by[3].packets == 1);  // telnet, rejected

    // Records: both connections started; two refusals with their reasons.
    auto ev = c->fw_events();
    REQUIRE(ev);
    int starts = 0;
    std::set<std::string> refused;
    for (const auto& e : ev->events) {
      if (e.kind == gl::api::kFwEventStart) {
        ++starts;
        CHECK(e.proto == 6);
        CHECK(ntohs(e.dport) == 5432);
        CHECK(e.rule_id == (e.port_no == 1 ? 1u : 2u));
        CHECK(e.to_vm == (e.port_no == 2 ? 1 : 0));
        CHECK(e.start_ms > 1700000000000ull);  // Unix time
      } else if (e.kind == gl::api::kFwEventRefused) {
        refused.insert(std::to_string(e.rule_id) + ":" + std::to_string(e.reason));
      }
    }
    CHECK(starts == 2);
    CHECK(refused == std::set<std::string>{"0:3", "3:4"});  // deny by default, reject rule 3
    CHECK(ev->lost == 0);
    CHECK(c->fw_events()->events.empty());  // handed out once

    // Trace: web's SYN to db:5432 from web's port: identities, rule 1, its connection.
    gl::api::FwTraceRequest tr{};
    tr.port_no = 1;
    tr.tuple.family = 4;
    tr.tuple.proto = 6;
    const uint32_t a = gl::flow::ipv4_addr("10.0.0.1"), b = gl::flow::ipv4_addr("10.0.0.2");
    std::memcpy(tr.tuple.src, &a, 4);
    std::memcpy(tr.tuple.dst, &b, 4);
    tr.tuple.sport = htons(40000);
    tr.tuple.dport = htons(5432);
    auto rep = c->fw_trace(tr);
    REQUIRE(rep);
    CHECK(rep->generation == 1);
    CHECK(rep->has_fw == 1);
    CHECK(rep->local_identity == kWeb);
    CHECK(rep->remote_identity == kDb);
    CHECK(rep->rule_id == 1);
    CHECK(rep->action == 0);
    CHECK(rep->source_ok == 1);
    CHECK(rep->conn_found == 1);
    CHECK(rep->conn_current == 1);
    CHECK(rep->conn.mark == 1);
    CHECK(rep->conn.packets[0] == 2);
    // From db's port towards web:80: db's default denies; no connection. A foreign
    // source at web's port fails the spoof guard.
    tr.port_no = 2;
    std::memcpy(tr.tuple.src, &b, 4);
    std::memcpy(tr.tuple.dst, &a, 4);
    tr.tuple.dport = htons(80);
    rep = c->fw_trace(tr);
    REQUIRE(rep);
    CHECK(rep->rule_id == 0);
    CHECK(rep->action == 1);
    CHECK(rep->conn_found == 0);
    tr.port_no = 1;
    CHECK(c->fw_trace(tr)->source_ok == 0);
    // The trace asks the stage's own spoof guard: DHCP discovery from 0.0.0.0 passes it.
    tr.tuple.proto = 17;
    std::memset(tr.tuple.src, 0, 16);
    std::memset(tr.tuple.dst, 0xff, 4);
    tr.tuple.sport = htons(68);
    tr.tuple.dport = htons(67);
    rep = c->fw_trace(tr);
    CHECK(rep->source_ok == 1);
    CHECK(rep->untracked == 0);
    // IPv6 neighbour discovery from web's link-local address passes untracked; a router
    // advertisement is the RA guard's; an echo request is tracked and checked.
    const gl::flow::Ipv6Addr ll = gl::flow::ipv6_addr("fe80::1"),
                             all_routers = gl::flow::ipv6_addr("ff02::2");
    tr.tuple = {};
    tr.tuple.family = 6;
    tr.tuple.proto = 58;
    std::memcpy(tr.tuple.src, ll.data(), 16);
    std::memcpy(tr.tuple.dst, all_routers.data(), 16);
    struct Nd {
      uint8_t type, to_vm, untracked;
    };
    for (const Nd nd : {Nd{135, 0, gl::api::kFwTraceNdPass}, Nd{136, 1, gl::api::kFwTraceNdPass},
                        Nd{143, 0, gl::api::kFwTraceNdPass}, Nd{133, 0, gl::api::kFwTraceNdPass},
                        Nd{134, 0, gl::api::kFwTraceRaGuard}, Nd{134, 1, gl::api::kFwTraceNdPass},
                        Nd{128, 0, 0}, Nd{137, 0, 0}}) {
      INFO("ICMPv6 type " << int(nd.type) << (nd.to_vm ? " to" : " from") << " the VM");
      tr.tuple.icmp_type = nd.type;
      tr.to_vm = nd.to_vm;
      rep = c->fw_trace(tr);
      REQUIRE(rep);
      CHECK(rep->untracked == nd.untracked);
      CHECK(rep->source_ok == 1);  // link-local: the spoof guard lets it through
    }
    tr.to_vm = 0;

    // The firewall's tracker: one connection per port's zone; OVS's tracker has none.
    int n1 = 0, n_all = 0, n_ovs = 0;
    REQUIRE(c->ct_dump(
        1, [&](const gl::api::CtEntry&) { return ++n1, true; }, true));
    REQUIRE(c->ct_dump(
        std::nullopt, [&](const gl::api::CtEntry&) { return ++n_all, true; }, true));
    REQUIRE(c->ct_dump(std::nullopt, [&](const gl::api::CtEntry&) { return ++n_ovs, true; }));
    CHECK(n1 == 1);
    CHECK(n_all == 2);
    CHECK(n_ovs == 0);
    auto fl = c->ct_flush(1u, nullptr, true);  // web's zone
    REQUIRE(fl);
    CHECK(*fl == 1);
  }
  // The owner's sweep reports the flushed connection's end with its counts.
  rig.dp->housekeeping();
  {
    // A new version with the same rules: the counts carry over.
    auto t2 = web_db_policy(2, true);
    t2->record = gl::fw::kRecordAll;
    REQUIRE(rig.dp->set_firewall(std::move(t2)));
    ServerThread srv(*rig.dp);
    auto c = gl::api::Client::connect(srv.path);
    REQUIRE(c);
    auto ev = c->fw_events();
    REQUIRE(ev);
    REQUIRE(ev->events.size() == 1);
    const auto& e = ev->events[0];
    CHECK(e.kind == gl::api::kFwEventEnd);
    CHECK(e.reason == 2);  // removed
    CHECK(e.port_no == 1);
    CHECK(e.rule_id == 1);
    CHECK(e.packets[0] == 2);
    CHECK(e.packets[1] == 1);
    CHECK(e.time_ms >= e.start_ms);
    auto by = stats_of(*c);
    CHECK(by[1].packets == 3);
    CHECK(by[2].packets == 3);
  }
}

// ---- the firewall stage: answers, IPv6, ICMP errors --------------------------------------

namespace {

constexpr const char* kWebMac = "02:00:00:00:00:01";
constexpr const char* kDbMac = "02:00:00:00:00:02";
constexpr const char* kRouterMac = "02:00:00:00:00:fe";  // a router behind port 3

// web_db_policy, dual stack: web also has fd00::1, db fd00::2, the remote web workload
// fd00:1::9; the same identities, so the same rules apply to both families.
std::unique_ptr<gl::fw::FwTables> web_db_policy6(uint64_t gen, bool db_accepts = true) {
  auto t = web_db_policy(gen, db_accepts);
  std::vector<gl::fw::Prefix> all;
  auto add = [&](const char* text, uint32_t identity) {
    gl::fw::Prefix p;
    p.identity = identity;
    if (std::strchr(text, ':') != nullptr) {
      p.family = 6;
      p.len = 128;
      const auto a = gl::flow::ipv6_addr(text);
      std::memcpy(p.addr, a.data(), 16);
    } else {
      const uint32_t a = gl::flow::ipv4_addr(text);
      std::memcpy(p.addr, &a, 4);
    }
    all.push_back(p);
  };
  add("10.0.0.1", kWeb);
  add("10.0.0.2", kDb);
  add("10.0.1.9", kWeb);
  add("fd00::1", kWeb);
  add("fd00::2", kDb);
  add("fd00:1::9", kWeb);
  auto ipc = gl::fw::IpCache::build(all);
  REQUIRE(ipc);
  t->ipcache = std::move(*ipc);
  t->ports[0].ipv6 = {gl::flow::ipv6_addr("fd00::1")};
  t->ports[1].ipv6 = {gl::flow::ipv6_addr("fd00::2")};
  return t;
}

// Appends entries to a policy table (evaluated after its own).
void add_rules(gl::fw::PolicyTable& p, const std::vector<gl::fw::Entry>& more) {
  std::vector<gl::fw::Entry> e = p.entries();
  e.insert(e.end(), more.begin(), more.end());
  p = gl::fw::PolicyTable(p.default_action(), std::move(e));
}

// UDP on top: web may send UDP 7000 to db (rule 5 at web's egress, rule 6 at db's
// ingress); syslog (UDP 514) from web is rejected (rule 7).
std::unique_ptr<gl::fw::FwTables> with_udp(std::unique_ptr<gl::fw::FwTables> t) {
  using gl::fw::Action;
  using gl::fw::Entry;
  add_rules(t->ports[0].from_vm,
            {Entry{kDb, 17, 7000, 7000, Action::kAllow, false, 5},
             Entry{gl::fw::kAnyIdentity, 17, 514, 514, Action::kReject, false, 7}});
  add_rules(t->ports[1].to_vm, {Entry{kWeb, 17, 7000, 7000, Action::kAllow, false, 6}});
  return t;
}

// Both families, both ways between ports 1 and 2; port 3 (an uplink) by destination MAC.
void switch_flows_all(Rig& rig) {
  rig.add_flow("in_port(1)", "2");
  rig.add_flow("in_port(2)", "1");
  rig.add_flow("in_port(3),eth(dst=02:00:00:00:00:01)", "1");
  rig.add_flow("in_port(3),eth(dst=02:00:00:00:00:02)", "2");
}

PacketBuilder& ip(PacketBuilder& b, const char* src, const char* dst) {
  if (std::strchr(src, ':') != nullptr) return b.ipv6(src, dst);
  return b.ipv4(src, dst);
}

PacketBuilder tcp_seg(const char* src, const char* dst, uint16_t sport, uint16_t dport,
                      uint16_t flags, uint32_t seq, uint32_t ack, const char* smac = kWebMac,
                      const char* dmac = kDbMac) {
  PacketBuilder b;
  b.eth(smac, dmac);
  ip(b, src, dst).tcp(sport, dport).tcp_flags(flags).tcp_seq(seq).tcp_ack(ack);
  return b;
}

PacketBuilder udp_dgram(const char* src, const char* dst, uint16_t sport, uint16_t dport,
                        size_t payload, const char* smac = kWebMac, const char* dmac = kDbMac) {
  PacketBuilder b;
  b.eth(smac, dmac);
  ip(b, src, dst).udp(sport, dport).payload(payload);
  return b;
}

// An ICMP (IPv4) or ICMPv6 error from src to dst quoting `quoted` (a frame: its IP
// packet, cut to quote_len bytes).
Bytes icmp_error(const char* src, const char* dst, uint8_t type, uint8_t code, uint32_t rest,
                 const Bytes& quoted, size_t quote_len, const char* smac, const char* dmac) {
  PacketBuilder b;
  b.eth(smac, dmac);
  const bool v6 = std::strchr(src, ':') != nullptr;
  ip(b, src, dst);
  if (v6)
    b.icmpv6(type, code, rest);
  else
    b.icmp(type, code, rest);
  const size_t n = std::min(quote_len, quoted.size() - 14);
  b.payload(std::span<const uint8_t>(quoted.data() + 14, n));
  return b.build();
}

// The checksums of an answer, checked from its bytes here (RFC 1071 sums over the
// fields as they are on the wire, not with the code that wrote them): IPv4 header and
// ICMP message; IPv6 upper-layer packet with its pseudo header (RFC 8200 section 8.1).
bool ipv4_header_sum_ok(const Bytes& f) {
  const size_t ihl = (f[14] & 0x0f) * 4u;
  return gl::flow::inet_checksum(f.data() + 14, ihl) == 0;
}
bool icmp4_sum_ok(const Bytes& f) {
  const size_t ihl = (f[14] & 0x0f) * 4u;
  const size_t total = load_be16(&f[16]);
  return gl::flow::inet_checksum(f.data() + 14 + ihl, total - ihl) == 0;
}
bool ipv6_upper_sum_ok(const Bytes& f) {
  const uint8_t* ip6 = f.data() + 14;
  const uint32_t plen = load_be16(&f[18]);
  Bytes ph(ip6 + 8, ip6 + 40);  // source and destination addresses
  const uint8_t rest[8] = {
      0, 0,     static_cast<uint8_t>(plen >> 8), static_cast<uint8_t>(plen), 0, 0,
      0, ip6[6]};  // upper-layer length, zero, next header
  ph.insert(ph.end(), rest, rest + 8);
  ph.insert(ph.end(), ip6 + 40, ip6 + 40 + plen);
  return gl::flow::inet_checksum(ph.data(), ph.size()) == 0;
}

// Neighbour discovery (RFC 4861): a solicitation for `target` (with a source link-layer
// address option unless from ::) and an advertisement (solicited, override) of `target`
// with a target link-layer address option.
Bytes nd_ns(const char* src, const char* dst, const char* dmac, const char* target,
            const char* smac, const char* sll) {
  Bytes body;
  const auto t = gl::flow::ipv6_addr(target);
  body.insert(body.end(), t.begin(), t.end());
  if (sll != nullptr) {
    body.push_back(1);
    body.push_back(1);
    const auto m = gl::flow::mac(sll);
    body.insert(body.end(), m.begin(), m.end());
  }
  PacketBuilder b;
  b.eth(smac, dmac).ipv6(src, dst).ttl(255).icmpv6(135, 0, 0).payload(body);
  return b.build();
}
Bytes nd_na(const char* src, const char* dst, const char* dmac, const char* target,
            const char* smac, const char* tll) {
  Bytes body;
  const auto t = gl::flow::ipv6_addr(target);
  body.insert(body.end(), t.begin(), t.end());
  body.push_back(2);
  body.push_back(1);
  const auto m = gl::flow::mac(tll);
  body.insert(body.end(), m.begin(), m.end());
  PacketBuilder b;
  b.eth(smac, dmac).ipv6(src, dst).ttl(255).icmpv6(136, 0, 0x60000000u).payload(body);
  return b.build();
}

}  // namespace

TEST_CASE("firewall: reject answers a UDP datagram with ICMP administratively prohibited",
          "[datapath][firewall]") {
  // As iptables' REJECT --reject-with icmp-admin-prohibited: destination unreachable,
  // code 13 (RFC 1812 5.2.7.1), from the address the datagram was sent to, quoting as
  // much of it as fits in 576 bytes (RFC 1812 4.3.2.3), out of the port it came in by.
  Rig rig;
  switch_flows_all(rig);
  REQUIRE(rig.dp->set_firewall(with_udp(web_db_policy(1, true))));
  auto check_answer = [&](const Bytes& dgram, size_t want_quote) {
    const std::vector<Bytes> back = rig.sent(1);
    REQUIRE(back.size() == 1);
    const Bytes& r = back[0];
    REQUIRE(r.size() == 14 + 20 + 8 + want_quote);
    CHECK(Bytes(r.begin(), r.begin() + 14) ==
          Bytes{2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00});  // to web, from db's MAC
    CHECK(r[14] == 0x45);
    CHECK(load_be16(&r[16]) == 20 + 8 + want_quote);  // total length
    CHECK(load_be16(&r[20]) == 0);                    // not a fragment
    CHECK(r[22] == 64);                               // TTL
    CHECK(r[23] == 1);                                // ICMP
    CHECK(Bytes(r.begin() + 26, r.begin() + 34) ==
          Bytes{10, 0, 0, 2, 10, 0, 0, 1});  // addresses swapped
    CHECK(ipv4_header_sum_ok(r));
    CHECK(r[34] == 3);   // destination unreachable
    CHECK(r[35] == 13);  // communication administratively prohibited
    CHECK(Bytes(r.begin() + 38, r.begin() + 42) == Bytes{0, 0, 0, 0});  // unused
    CHECK(icmp4_sum_ok(r));
    // The quote: the offending IP header and the start of its payload, as sent.
    REQUIRE(want_quote >= 20 + 8);
    CHECK(Bytes(r.begin() + 42, r.end()) ==
          Bytes(dgram.begin() + 14, dgram.begin() + 14 + static_cast<long>(want_quote)));
  };

  const Bytes small = udp_dgram("10.0.0.1", "10.0.0.2", 5140, 514, 100).build();
  rig.inject(small, 1);
  CHECK(rig.sent(2).empty());
  CHECK(rig.drops("fw_reject") == 1);
  check_answer(small, 20 + 8 + 100);             // whole
  CHECK(rig.dp->fw_conntrack().n_conns() == 0);  // nothing committed
  // Rule 7 counts the refused datagram and the attempt (a rule's "connections").
  CHECK(rule_stat(rig, 7)[0] == 1);
  CHECK(rule_stat(rig, 7)[1] == 20 + 8 + 100);
  CHECK(rule_stat(rig, 7)[2] == 1);

  // A large datagram: quoted up to 576 bytes of ICMP packet (548 of the datagram).
  const Bytes big = udp_dgram("10.0.0.1", "10.0.0.2", 5141, 514, 1000).build();
  rig.inject(big, 1);
  CHECK(rig.sent(2).empty());
  CHECK(rig.drops("fw_reject") == 2);
  check_answer(big, 576 - 20 - 8);

  // Never an answer to a broadcast or multicast (RFC 1812 4.3.2.7; Linux's icmp_send):
  // refused and counted all the same.
  rig.inject(
      udp_dgram("10.0.0.1", "10.0.0.255", 5142, 514, 10, kWebMac, "ff:ff:ff:ff:ff:ff").build(), 1);
  rig.inject(
      udp_dgram("10.0.0.1", "224.0.0.251", 5143, 514, 10, kWebMac, "01:00:5e:00:00:fb").build(), 1);
  CHECK(rig.sent(2).empty());
  CHECK(rig.sent(1).empty());
  CHECK(rig.drops("fw_reject") == 4);
  // Allowed UDP passes (and its reply comes back by the connection).
  const Bytes ok = udp_dgram("10.0.0.1", "10.0.0.2", 5000, 7000, 20).build();
  rig.inject(ok, 1);
  CHECK(rig.sent(2) == std::vector<Bytes>{ok});
  const Bytes reply = udp_dgram("10.0.0.2", "10.0.0.1", 7000, 5000, 20, kDbMac, kWebMac).build();
  rig.inject(reply, 2);
  CHECK(rig.sent(1) == std::vector<Bytes>{reply});
}

TEST_CASE("firewall (IPv6): policy by identity, replies by the connection, default deny",
          "[datapath][firewall][ipv6]") {
  using gl::flow::kTcpAck;
  using gl::flow::kTcpSyn;
  Rig rig;
  switch_flows_all(rig);
  REQUIRE(rig.dp->set_firewall(web_db_policy6(1)));
  // web -> db:5432 allowed (rules 1 and 2, by identity), the handshake and data pass.
  const Bytes syn = tcp_seg("fd00::1", "fd00::2", 40000, 5432, kTcpSyn, 100, 0).build();
  rig.inject(syn, 1);
  CHECK(rig.sent(2) == std::vector<Bytes>{syn});
  const Bytes synack =
      tcp_seg("fd00::2", "fd00::1", 5432, 40000, kTcpSyn | kTcpAck, 500, 101, kDbMac, kWebMac)
          .build();
  rig.inject(synack, 2);
  CHECK(rig.sent(1) == std::vector<Bytes>{synack});
  const Bytes ack = tcp_seg("fd00::1", "fd00::2", 40000, 5432, kTcpAck, 101, 501).build();
  rig.inject(ack, 1);
  CHECK(rig.sent(2) == std::vector<Bytes>{ack});
  const Bytes data = tcp_seg("fd00::2", "fd00::1", 5432, 40000, kTcpAck, 501, 101, kDbMac, kWebMac)
                         .payload(100)
                         .build();
  rig.inject(data, 2);
  CHECK(rig.sent(1) == std::vector<Bytes>{data});
  CHECK(rig.dp->fw_conntrack().n_conns() == 2);  // one in each port's zone
  CHECK(rule_stat(rig, 1)[2] == 1);
  CHECK(rule_stat(rig, 2)[2] == 1);
  CHECK(rule_stat(rig, 1)[0] == 4);

  // db may not open a connection to web (db's egress: default deny).
  rig.inject(tcp_seg("fd00::2", "fd00::1", 5432, 80, kTcpSyn, 1, 0, kDbMac, kWebMac).build(), 2);
  CHECK(rig.sent(1).empty());
  CHECK(rig.drops("fw_deny") == 1);
  // web to db on a port no rule allows.
  rig.inject(tcp_seg("fd00::1", "fd00::2", 40001, 6000, kTcpSyn, 1, 0).build(), 1);
  CHECK(rig.sent(2).empty());
  CHECK(rig.drops("fw_deny") == 2);
  // A remote web workload (through the uplink, to db): allowed at db's ingress; an
  // unknown address (the world) is not.
  const Bytes remote =
      tcp_seg("fd00:1::9", "fd00::2", 41000, 5432, kTcpSyn, 1, 0, kRouterMac, kDbMac).build();
  rig.inject(remote, 3);
  CHECK(rig.sent(2) == std::vector<Bytes>{remote});
  rig.inject(
      tcp_seg("2001:db8::7", "fd00::2", 41000, 5432, kTcpSyn, 1, 0, kRouterMac, kDbMac).build(), 3);
  CHECK(rig.sent(2).empty());
  CHECK(rig.drops("fw_deny") == 3);
  // A new version where db no longer accepts web cuts the established connection.
  REQUIRE(rig.dp->set_firewall(web_db_policy6(2, false)));
  rig.inject(ack, 1);
  CHECK(rig.sent(2).empty());
  CHECK(rig.drops("fw_revoked") == 1);
}

TEST_CASE("firewall (IPv6): reject answers TCP with a RST and UDP with ICMPv6 prohibited",
          "[datapath][firewall][ipv6]") {
  using gl::flow::kTcpAck;
  using gl::flow::kTcpRst;
  using gl::flow::kTcpSyn;
  Rig rig;
  switch_flows_all(rig);
  REQUIRE(rig.dp->set_firewall(with_udp(web_db_policy6(1))));

  SECTION("TCP: RST|ACK acknowledging the SYN (and its data), valid checksum") {
    // A SYN carrying 10 bytes (TCP Fast Open): the RST acknowledges seq + 1 + 10.
    const Bytes syn =
        tcp_seg("fd00::1", "fd00::2", 40000, 23, kTcpSyn, 0xfffffff0u, 0).payload(10).build();
    rig.inject(syn, 1);
    CHECK(rig.sent(2).empty());
    CHECK(rig.drops("fw_reject") == 1);
    const std::vector<Bytes> back = rig.sent(1);
    REQUIRE(back.size() == 1);
    const Bytes& r = back[0];
    REQUIRE(r.size() == 14 + 40 + 20);
    CHECK(Bytes(r.begin(), r.begin() + 14) ==
          Bytes{2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x86, 0xdd});
    CHECK(r[14] >> 4 == 6);
    CHECK(load_be16(&r[18]) == 20);  // payload length
    CHECK(r[20] == 6);               // next header: TCP
    CHECK(r[21] == 64);              // hop limit
    // Source: db (the address the SYN was for), destination: web.
    CHECK(Bytes(r.begin() + 22, r.begin() + 38) == Bytes(syn.begin() + 38, syn.begin() + 54));
    CHECK(Bytes(r.begin() + 38, r.begin() + 54) == Bytes(syn.begin() + 22, syn.begin() + 38));
    CHECK(load_be16(&r[54]) == 23);
    CHECK(load_be16(&r[56]) == 40000);
    CHECK(load_be32(&r[58]) == 0);                           // seq: the SYN carried no ACK
    CHECK(load_be32(&r[62]) == uint32_t{0xfffffff0u + 11});  // ack: SYN + 10 bytes (wraps)
    CHECK(r[66] >> 4 == 5);                                  // no options
    CHECK(r[67] == (kTcpRst | kTcpAck));
    CHECK(load_be16(&r[68]) == 0);  // window
    CHECK(ipv6_upper_sum_ok(r));
    // The same frame as a builder makes it.
    CHECK(r == tcp_seg("fd00::2", "fd00::1", 23, 40000, kTcpRst | kTcpAck, 0, 0xfffffff0u + 11,
                       kDbMac, kWebMac)
                   .tcp_window(0)
                   .build());
    CHECK(rig.dp->fw_conntrack().n_conns() == 0);
    CHECK(rule_stat(rig, 3)[0] == 1);  // telnet: rule 3
  }

  SECTION("UDP: ICMPv6 destination unreachable, administratively prohibited") {
    // RFC 4443 3.1, code 1; the quote: as much of the datagram as fits in 1280 bytes.
    auto check_answer = [&](const Bytes& dgram, size_t want_quote) {
      const std::vector<Bytes> back = rig.sent(1);
      REQUIRE(back.size() == 1);
      const Bytes& r = back[0];
      REQUIRE(r.size() == 14 + 40 + 8 + want_quote);
      CHECK(Bytes(r.begin(), r.begin() + 14) ==
            Bytes{2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x86, 0xdd});
      CHECK(load_be16(&r[18]) == 8 + want_quote);
      CHECK(r[20] == 58);  // ICMPv6
      CHECK(r[21] == 64);
      CHECK(Bytes(r.begin() + 22, r.begin() + 38) == Bytes(dgram.begin() + 38, dgram.begin() + 54));
      CHECK(Bytes(r.begin() + 38, r.begin() + 54) == Bytes(dgram.begin() + 22, dgram.begin() + 38));
      CHECK(r[54] == 1);  // destination unreachable
      CHECK(r[55] == 1);  // communication with destination administratively prohibited
      CHECK(load_be32(&r[58]) == 0);
      CHECK(ipv6_upper_sum_ok(r));
      CHECK(Bytes(r.begin() + 62, r.end()) ==
            Bytes(dgram.begin() + 14, dgram.begin() + 14 + static_cast<long>(want_quote)));
    };
    const Bytes small = udp_dgram("fd00::1", "fd00::2", 5140, 514, 33).build();  // odd length
    rig.inject(small, 1);
    CHECK(rig.sent(2).empty());
    CHECK(rig.drops("fw_reject") == 1);
    check_answer(small, 40 + 8 + 33);
    const Bytes big = udp_dgram("fd00::1", "fd00::2", 5141, 514, 1400).build();
    rig.inject(big, 1);
    CHECK(rig.drops("fw_reject") == 2);
    check_answer(big, 1280 - 40 - 8);
    CHECK(rule_stat(rig, 7)[2] == 2);
    // Never an answer to a multicast destination (RFC 4443 2.4 (e)).
    rig.inject(
        udp_dgram("fd00::1", "ff02::fb", 5353, 514, 10, kWebMac, "33:33:00:00:00:fb").build(), 1);
    CHECK(rig.sent(1).empty());
    CHECK(rig.sent(2).empty());
    CHECK(rig.drops("fw_reject") == 3);
  }
}

TEST_CASE("firewall (IPv6): the spoof guard drops foreign sources, lets ND and DAD by",
          "[datapath][firewall][ipv6]") {
  Rig rig;
  switch_flows_all(rig);
  REQUIRE(rig.dp->set_firewall(web_db_policy6(1)));
  // Another global source, or its own address from another MAC: dropped at web's port.
  rig.inject(tcp_seg("fd00::9", "fd00::2", 40000, 5432, gl::flow::kTcpSyn, 1, 0).build(), 1);
  rig.inject(
      tcp_seg("fd00::1", "fd00::2", 40000, 5432, gl::flow::kTcpSyn, 1, 0, "02:00:00:00:00:09")
          .build(),
      1);
  // db's address, from web.
  rig.inject(tcp_seg("fd00::2", "fd00::1", 5432, 40000, gl::flow::kTcpSyn, 1, 0).build(), 1);
  CHECK(rig.sent(2).empty());
  CHECK(rig.drops("fw_spoof") == 3);
  CHECK(rig.dp->fw_conntrack().n_conns() == 0);
  // Its registered address passes the guard (and the policy: web may open db:5432).
  const Bytes own = tcp_seg("fd00::1", "fd00::2", 40000, 5432, gl::flow::kTcpSyn, 1, 0).build();
  rig.inject(own, 1);
  CHECK(rig.sent(2) == std::vector<Bytes>{own});

  // Neighbour discovery, as a guest does it: duplicate address detection from :: for
  // its addresses, address resolution from its link-local address, and the answer.
  const Bytes dad = nd_ns("::", "ff02::1:ff00:1", "33:33:ff:00:00:01", "fd00::1", kWebMac, nullptr);
  rig.inject(dad, 1);
  CHECK(rig.sent(2) == std::vector<Bytes>{dad});
  const Bytes ns =
      nd_ns("fe80::1", "ff02::1:ff00:2", "33:33:ff:00:00:02", "fd00::2", kWebMac, kWebMac);
  rig.inject(ns, 1);
  CHECK(rig.sent(2) == std::vector<Bytes>{ns});
  const Bytes na = nd_na("fd00::2", "fe80::1", kWebMac, "fd00::2", kDbMac, kDbMac);
  rig.inject(na, 2);
  CHECK(rig.sent(1) == std::vector<Bytes>{na});
  // Link-local to link-local (fe80::/10: fe80:: to febf::).
  const Bytes ns_ll =
      nd_ns("febf::1", "ff02::1:ff00:2", "33:33:ff:00:00:02", "fe80::2", kWebMac, kWebMac);
  rig.inject(ns_ll, 1);
  CHECK(rig.sent(2) == std::vector<Bytes>{ns_ll});
  CHECK(rig.drops("fw_spoof") == 3);
  CHECK(rig.drops("fw_invalid") == 0);
  // ... but not from fec0:: (outside fe80::/10), and ND does not lend another workload's
  // address or MAC: an advertisement of db's address from web, a solicitation whose
  // link-layer address is not web's.
  rig.inject(nd_ns("fec0::1", "ff02::1:ff00:2", "33:33:ff:00:00:02", "fd00::2", kWebMac, kWebMac),
             1);
  rig.inject(nd_na("fe80::1", "ff02::1", "33:33:00:00:00:01", "fd00::2", kWebMac, kWebMac), 1);
  rig.inject(nd_ns("fe80::1", "ff02::1:ff00:2", "33:33:ff:00:00:02", "fd00::2", kWebMac,
                   "02:00:00:00:00:09"),
             1);
  CHECK(rig.sent(2).empty());
  CHECK(rig.drops("fw_spoof") == 6);
  // Its own address advertised (unsolicited, after a change of MAC, say) passes.
  const Bytes na_own =
      nd_na("fe80::1", "ff02::1", "33:33:00:00:00:01", "fd00::1", kWebMac, kWebMac);
  rig.inject(na_own, 1);
  CHECK(rig.sent(2) == std::vector<Bytes>{na_own});
  // A router advertisement from a workload (a rogue router): refused (RA guard); its
  // router solicitation passes.
  PacketBuilder ra;
  ra.eth(kWebMac, "33:33:00:00:00:01")
      .ipv6("fe80::1", "ff02::1")
      .ttl(255)
      .icmpv6(134, 0, 0x40000708u)
      .payload(Bytes(8, 0));
  rig.inject(ra.build(), 1);
  CHECK(rig.sent(2).empty());
  CHECK(rig.drops("fw_spoof") == 7);
  PacketBuilder rs;
  rs.eth(kWebMac, "33:33:00:00:00:02").ipv6("fe80::1", "ff02::2").ttl(255).icmpv6(133, 0, 0);
  const Bytes rs_b = rs.build();
  rig.inject(rs_b, 1);
  CHECK(rig.sent(2) == std::vector<Bytes>{rs_b});
}

TEST_CASE("firewall: ICMP errors about an allowed connection pass, others are dropped",
          "[datapath][firewall][ipv6]") {
  // As the connection tracker (RELATED): a router's "fragmentation needed" / "packet too
  // big" for a connection's packet reaches the workload (path MTU discovery), and so does
  // the peer's "port unreachable" for its datagram; an error quoting a tuple of no
  // connection is dropped (fw_invalid).
  using gl::flow::kTcpAck;
  using gl::flow::kTcpSyn;
  Rig rig;
  switch_flows_all(rig);
  REQUIRE(rig.dp->set_firewall(with_udp(web_db_policy6(1))));
  // A router's quote: the IP header and 8 bytes (RFC 792), or as much as fits in 1280
  // bytes (RFC 4443); the peer's: the whole datagram (as Linux).
  struct Family {
    const char *web, *db, *router;
    uint8_t unreach, port_unreach, too_big, too_big_code;
    uint32_t mtu_field;  // ICMP: the next-hop MTU in the low 16 bits (RFC 1191)
    size_t router_quote;
  };
  const Family fams[] = {
      {"10.0.0.1", "10.0.0.2", "10.0.0.254", 3, 3, 3, 4, 1400, 20 + 8},
      {"fd00::1", "fd00::2", "fd00::fe", 1, 4, 2, 0, 1280, 1280 - 40 - 8},
  };
  constexpr size_t kWhole = 65535;
  uint64_t invalid = 0;
  for (const Family& f : fams) {
    INFO(f.web);
    // UDP web:5000 -> db:7000, allowed; db has no socket there: port unreachable back.
    const Bytes dgram = udp_dgram(f.web, f.db, 5000, 7000, 64).build();
    rig.inject(dgram, 1);
    CHECK(rig.sent(2) == std::vector<Bytes>{dgram});
    const Bytes unreach =
        icmp_error(f.db, f.web, f.unreach, f.port_unreach, 0, dgram, kWhole, kDbMac, kWebMac);
    rig.inject(unreach, 2);  // db's egress and web's ingress: related to the datagram's
    CHECK(rig.sent(1) == std::vector<Bytes>{unreach});
    // The same about a datagram web never sent (another source port): no connection.
    const Bytes other = udp_dgram(f.web, f.db, 5001, 7000, 64).build();
    rig.inject(
        icmp_error(f.db, f.web, f.unreach, f.port_unreach, 0, other, kWhole, kDbMac, kWebMac), 2);
    CHECK(rig.sent(1).empty());
    CHECK(rig.drops("fw_invalid") == ++invalid);

    // TCP web:40000 -> db:5432, established; a router on the path says the segment was
    // too big: it reaches web (by the uplink, to web's ingress).
    const Bytes syn = tcp_seg(f.web, f.db, 40000, 5432, kTcpSyn, 100, 0).build();
    rig.inject(syn, 1);
    const Bytes synack =
        tcp_seg(f.db, f.web, 5432, 40000, kTcpSyn | kTcpAck, 500, 101, kDbMac, kWebMac).build();
    rig.inject(synack, 2);
    const Bytes data = tcp_seg(f.web, f.db, 40000, 5432, kTcpAck, 101, 501).payload(1300).build();
    rig.inject(data, 1);
    CHECK(rig.sent(2).size() == 2);
    CHECK(rig.sent(1).size() == 1);
    const Bytes too_big = icmp_error(f.router, f.web, f.too_big, f.too_big_code, f.mtu_field, data,
                                     f.router_quote, kRouterMac, kWebMac);
    rig.inject(too_big, 3);
    CHECK(rig.sent(1) == std::vector<Bytes>{too_big});
    // About a segment of no connection (another source port): dropped.
    const Bytes stray = tcp_seg(f.web, f.db, 40001, 5432, kTcpAck, 101, 501).payload(1300).build();
    rig.inject(icmp_error(f.router, f.web, f.too_big, f.too_big_code, f.mtu_field, stray,
                          f.router_quote, kRouterMac, kWebMac),
               3);
    CHECK(rig.sent(1).empty());
    CHECK(rig.drops("fw_invalid") == ++invalid);
    // ... and so is one quoting a packet web did not send (the quote's source must be
    // the error's destination).
    const Bytes foreign = tcp_seg(f.db, f.web, 5432, 40000, kTcpAck, 501, 101).build();
    rig.inject(icmp_error(f.router, f.web, f.too_big, f.too_big_code, f.mtu_field, foreign, kWhole,
                          kRouterMac, kWebMac),
               3);
    CHECK(rig.sent(1).empty());
    CHECK(rig.drops("fw_invalid") == ++invalid);
  }
  CHECK(rig.drops("fw_deny") == 0);
  CHECK(rig.drops("fw_spoof") == 0);
}

TEST_CASE("firewall: misses held until their flow exists go through the stage once",
          "[datapath][firewall]") {
  // Four SYNs of web's connection to db before any flow: the first commits it at web's
  // stage and goes up as a miss, the other three are held (the miss hold) and run once
  // the flow exists. They passed web's from-VM stage when they arrived; the re-run must
  // not count them again.
  using gl::flow::kTcpSyn;
  Rig rig;  // miss hold on (50 ms)
  REQUIRE(rig.dp->set_firewall(web_db_policy(1, true)));
  const Bytes syn = tcp4("10.0.0.1", "10.0.0.2", 40000, 5432, kTcpSyn, 100, 0).build();
  for (int i = 0; i < 4; ++i) rig.inject(syn, 1);
  int up = 0;
  rig.dp->drain_upcalls(64, [&](const gl::dp::UpcallSlot&) { ++up; });
  CHECK(up == 1);
  CHECK(rule_stat(rig, 1)[0] == 4);  // web's egress rule: the four SYNs
  CHECK(rule_stat(rig, 1)[2] == 1);  // one connection
  rig.add_flow("in_port(1),eth_type(0x0800)", "2");
  // The held ones run at a sweep at least 1 ms after the one that found their flow.
  for (int i = 0; i < 3; ++i) {
    rig.dp->drain_upcalls(64, [&](const gl::dp::UpcallSlot&) { ++up; });
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  CHECK(up == 1);
  CHECK(rig.sent(2).size() == 3);    // the held ones, through db's to-VM stage
  CHECK(rule_stat(rig, 1)[0] == 4);  // not 7
  CHECK(rule_stat(rig, 2)[0] == 3);  // db's ingress rule: what reached it
  CHECK(rig.drops("fw_invalid") == 0);
}
