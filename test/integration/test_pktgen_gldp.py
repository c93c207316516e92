#!/usr/bin/python3
"""gl-pktgen through gldp: the generator's two ends on veth pairs whose other ends are
gldp ports, permissive flows (port 1 <-> port 2).

  test_udp_through_gldp   every UDP packet arrives once and in order; gldp's counters
                          agree with the generator's
  test_tcp_through_gldp   TCP three-way handshakes and teardowns complete through gldp
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from gltest import Env, binary, check, main, run, run_dpdk  # noqa: E402


def rig(env):
    pairs = []
    for i in (1, 2):
        gen, dp = f"gl{env.tag}g{i}"[:15], f"gl{env.tag}d{i}"[:15]
        run(["ip", "link", "add", gen, "type", "veth", "peer", "name", dp])
        env.links.append(gen)
        for dev in (gen, dp):
            run(["sysctl", "-qw", f"net.ipv6.conf.{dev}.disable_ipv6=1"], check_rc=False)
            run(["ip", "link", "set", dev, "up"])
        pairs.append((gen, dp))
    env.gldp(ports=[("p1", f"net_af_packet0,iface={pairs[0][1]}"),
                    ("p2", f"net_af_packet1,iface={pairs[1][1]}")])
    env.dpctl("add-flow", "in_port(1)", "2")
    env.dpctl("add-flow", "in_port(2)", "1")
    return pairs[0][0], pairs[1][0]


def pktgen(env, tx, rx, *args):
    # The generator runs on core 0 (gldp's PMD spins on core 1).
    r = run_dpdk([binary("gl-pktgen"), "--tx", f"net_af_packet8,iface={tx}",
             "--rx", f"net_af_packet9,iface={rx}", "--lcores", "0", "--quiet", "--json", "-",
             *args], timeout=120)
    return json.loads(r.stdout)


def test_udp_through_gldp():
    with Env("pu") as env:
        tx, rx = rig(env)
        before = env.port_stats("p2")["tx_packets"]
        s = pktgen(env, tx, rx, "--count", "10000", "--rate", "20k", "--flows", "100",
                   "--src-port", "1000-1099")
        rxs = s["rx"]
        check(rxs["unique"] == 10000, f"received {rxs['unique']} of 10000: {rxs}")
        check(rxs["lost"] == 0 and rxs["duplicates"] == 0 and rxs["reordered"] == 0,
              f"loss/dup/reorder: {rxs}")
        after = env.port_stats("p2")["tx_packets"]
        check(after - before >= 10000, f"gldp p2 sent {after - before}")


def test_tcp_through_gldp():
    with Env("pt") as env:
        tx, rx = rig(env)
        s = pktgen(env, tx, rx, "--proto", "tcp", "--count", "500", "--rate", "2000",
                   "--tcp-timeout", "5")
        c = s["connections"]
        check(c["established"] == 500 and c["closed"] == 500 and c["failed"] == 0,
              f"connections: {c}")


if __name__ == "__main__":
    main([test_udp_through_gldp, test_tcp_through_gldp])
