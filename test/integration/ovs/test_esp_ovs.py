#!/usr/bin/python3
"""ESP through Open vSwitch: an OVS bridge (datapath gl) with a gl-esp port.

Hypervisor A is ovsdb-server + gldp + ovs-vswitchd-gl: bridge "br-ul" holds the underlay
port (af_packet on one end of an underlay veth pair), bridge "br-vm" holds the VM's port
and the gl-esp port esp0 (options underlay, group, local_ip, remote_ip), switched by
NORMAL. Hypervisor B is a plain gldp with an ESP port added by gl-dpctl and two flows
(vm <-> esp port). SAs are static (gl-dpctl add-sa); A has an outbound SA for its PMD and
one for the control context (OVS's handler executes the first packets of a flow through
the datapath API, i.e. on the control context).

  test_gl_esp_port      ping and UDP between the VMs through OVS's gl-esp port; the
                        underlay carries only ESP; esp0's counters in OVS and gldp rise;
                        OVS's megaflows output to esp0 and enter on it
  test_gl_esp_fail_closed  without outbound SAs nothing leaves (esp_no_sa counts)
  test_gl_esp_bad_options  missing or malformed options: the Interface's error says which;
                           a port whose underlay is not there (yet) comes up, link down
"""

import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(__file__)))
from gltest import check, main  # noqa: E402
from ovsgl import OvsEnv  # noqa: E402
from test_esp import (Capture, Hv, K1, K2, IP_A, IP_B, MAC1, MAC2, UL_A, UL_B,  # noqa: E402
                      underlay_link)
from test_gldp import udp_receiver, udp_send  # noqa: E402

from scapy.all import IP  # noqa: E402
from scapy.layers.ipsec import ESP  # noqa: E402

K5 = bytes((i * 19 + 7) & 0xff for i in range(36))  # A -> B from A's control context


def topology(env):
    ns1, o1, _ = env.host(1, "10.0.0.1", mac=MAC1)
    ns2, o2, _ = env.host(2, "10.0.0.2", mac=MAC2)
    ua, ub = underlay_link(env)

    # A: OVS. The underlay first (an ESP port needs its underlay in gldp).
    env.start_all()
    br_ul = env.bridge(f"glu{env.tag}"[:15])
    env.add_port(br_ul, "ul", "type=dpdk", f"options:dpdk-devargs=net_af_packet_ul,iface={ua}")
    env.wait_ports(br_ul, ["ul"])
    br = env.bridge(f"glv{env.tag}"[:15])
    env.add_port(br, "vm", "type=dpdk", f"options:dpdk-devargs=net_af_packet_vm,iface={o1}")
    env.add_port(br, "esp0", "type=gl-esp", "options:underlay=ul", "options:group=1",
                 f"options:local_ip={IP_A}", f"options:remote_ip={IP_B}")
    env.wait_ports(br, ["vm", "esp0"])
    a = env
    a.dpctl("add-sa", "spi=0x1001", "dir=out", "group=1", "pmd=0", f"key={K1.hex()}",
            f"local={IP_A}", f"remote={IP_B}", f"src_mac={UL_A}", f"dst_mac={UL_B}")
    a.dpctl("add-sa", "spi=0x1011", "dir=out", "group=1", "pmd=control", f"key={K5.hex()}",
            f"local={IP_A}", f"remote={IP_B}", f"src_mac={UL_A}", f"dst_mac={UL_B}")
    a.dpctl("add-sa", "spi=0x1002", "dir=in", f"key={K2.hex()}", f"local={IP_A}",
            f"remote={IP_B}")

    # B: gldp alone, with an ESP port over its underlay port and two flows.
    b = Hv(env, "hvB", o2, ub)
    r = b.dpctl("add-port", "esp0", f"gl_esp,underlay=ul,group=1,local={IP_B},remote={IP_A}")
    check("added port 3" in r.stdout, f"B's ESP port: {r.stdout}")
    b.dpctl("add-flow", "recirc_id(0),in_port(1)", "3")
    b.dpctl("add-flow", "recirc_id(0),in_port(3)", "1")
    b.dpctl("add-sa", "spi=0x1002", "dir=out", "group=1", f"key={K2.hex()}", f"local={IP_B}",
            f"remote={IP_A}", f"src_mac={UL_B}", f"dst_mac={UL_A}")
    for spi, key in ((0x1001, K1), (0x1011, K5)):
        b.dpctl("add-sa", f"spi={spi:#x}", "dir=in", f"key={key.hex()}", f"local={IP_B}",
                f"remote={IP_A}")
    return ns1, ns2, ua, ub, br, b


def port_of(show, name):
    return next(p for p in show["ports"] if p["name"] == name)


def test_gl_esp_port():
    with OvsEnv("ep") as env:
        ns1, ns2, ua, ub, br, b = topology(env)
        cap = Capture(env, ub)  # what A sends (gldp's af_packet bypasses A's side's qdisc)
        env.ping(ns1, "10.0.0.2", count=5)
        wait = udp_receiver(env, ns2, "10.0.0.2", 5001, 300)
        for _ in range(3):  # 100 at a time: the receiver's socket buffer holds them
            udp_send(env, ns1, "10.0.0.2", 5001, 100, size=1000)
            time.sleep(0.2)
        got = wait()
        rcvbuf = env.ns(ns2, "nstat", "-az", "UdpRcvbufErrors").stdout.split()[-2:]
        check(got == 300, f"UDP through gl-esp: {got} of 300 datagrams (receiver's "
              f"UdpRcvbufErrors {rcvbuf})")
        frames = cap.stop()
        # (tcpdump may miss some of a fast burst: the count is a floor, not the total)
        esp = [f for f in frames if f.haslayer(IP) and f[IP].proto == 50]
        check(len(esp) >= 100, f"only {len(esp)} ESP frames captured on the underlay")
        # Nothing of the VMs in clear (the underlay bridge's own IPv6 chatter may be there).
        clear = [f for f in frames if f.src in (MAC1, MAC2) or (
            f.haslayer(IP) and (f[IP].src.startswith("10.0.0.") or
                                f[IP].dst.startswith("10.0.0.")))]
        check(not clear, f"{len(clear)} VM frames in clear on the underlay: "
              f"{clear[0].summary() if clear else ''}")
        spis = {f[ESP].spi for f in esp}
        check(spis <= {0x1001, 0x1011} and 0x1001 in spis, f"SPIs on the wire: {spis}")
        # Counters: OVS's view of esp0 (from gldp) and gldp's.
        st = env.show()
        e = port_of(st, "esp0")
        check(e["driver"] == "gl_esp" and e["tx_packets"] >= 305 and e["rx_packets"] >= 5,
              f"gldp esp0: {e}")
        # OVS refreshes Interface statistics every 5 s.
        deadline = time.time() + 12
        while True:
            stats = env.vsctl("get", "Interface", "esp0", "statistics").stdout
            m = {k: int(v) for k, v in (kv.split("=") for kv in
                                        stats.strip("{}\n ").replace(" ", "").split(","))}
            if m.get("tx_packets", 0) >= 305 or time.time() > deadline:
                break
            time.sleep(0.5)
        check(m.get("tx_packets", 0) >= 305 and m.get("rx_packets", 0) >= 5,
              f"OVS esp0 statistics: {stats}")
        mtu = env.vsctl("get", "Interface", "esp0", "mtu").stdout.strip()
        check(mtu == "1432", f"esp0 MTU {mtu}, want 1432 (1500 underlay - ESP overhead)")
        flows = "\n".join(env.dp_flows())
        no = e["port_no"]
        check(re.search(rf"actions:(.*,)?(esp0|{no})(,|$)", flows, re.M),
              f"no megaflow outputs to esp0 (port {no}):\n{flows}")
        check(re.search(rf"in_port\((esp0|{no})\)", flows),
              f"no megaflow enters on esp0 (port {no}):\n{flows}")
        check(b.drops().get("esp_auth_failed", 0) == 0, "B counted auth failures")


def test_gl_esp_fail_closed():
    with OvsEnv("ef") as env:
        ns1, ns2, ua, ub, br, b = topology(env)
        env.ping(ns1, "10.0.0.2", count=2)
        env.dpctl("del-sa", "spi=0x1001", "dir=out")
        env.dpctl("del-sa", "spi=0x1011", "dir=out")
        before = env.drops().get("esp_no_sa", 0)
        cap = Capture(env, ub)
        r = env.ping(ns1, "10.0.0.2", count=3, check_rc=False)
        check(r.returncode != 0, "ping went through without an outbound SA")
        frames = cap.stop()
        leaked = [f for f in frames if f.haslayer(IP) and f[IP].proto != 50]
        check(not leaked and not [f for f in frames if f.haslayer(ESP)],
              f"{len(frames)} frames left on the underlay without an SA")
        after = env.drops().get("esp_no_sa", 0)
        check(after - before >= 3, f"esp_no_sa rose by {after - before}, want >= 3")


def test_gl_esp_bad_options():
    with OvsEnv("eb") as env:
        env.start_all()
        br = env.bridge()
        cases = [
            (["options:underlay=ul", "options:group=1", "options:local_ip=192.0.2.1"],
             "remote_ip"),
            (["options:underlay=ul", "options:group=1", "options:local_ip=192.0.2.1",
              "options:remote_ip=2001:db8::2"], "different address families"),
            (["options:group=1", "options:local_ip=192.0.2.1", "options:remote_ip=192.0.2.2"],
             "options:underlay"),
            (["options:underlay=ul", "options:local_ip=192.0.2.1",
              "options:remote_ip=192.0.2.2"], "options:group"),
            # Well-formed, and gldp has no port "nope" (yet): the port waits for it, down.
            (["options:underlay=nope", "options:group=1", "options:local_ip=192.0.2.1",
              "options:remote_ip=192.0.2.2"], None),
        ]
        for i, (opts, words) in enumerate(cases):
            name = f"bad{i}"
            env.add_port(br, name, "type=gl-esp", *opts)
            deadline = time.time() + 10
            err = ""
            while time.time() < deadline:
                err = env.vsctl("get", "Interface", name, "error").stdout.strip()
                if err not in ("[]", "") or (not words and env.ofport(name) > 0):
                    break
                time.sleep(0.1)
            if words:
                check(words in err, f"{opts}: Interface error '{err}' does not mention '{words}'")
            else:
                p = next(x for x in env.show()["ports"] if x["name"] == name)
                check(env.ofport(name) > 0 and not p["link_up"],
                      f"{opts}: a gl-esp port without its underlay: ofport "
                      f"{env.ofport(name)}, gldp {p}")
            env.vsctl("del-port", br, name)
        check(env.vswitchd_proc.poll() is None, "ovs-vswitchd died")


if __name__ == "__main__":
    main([test_gl_esp_port, test_gl_esp_fail_closed, test_gl_esp_bad_options])
