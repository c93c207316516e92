#!/usr/bin/python3
"""OVS's conntrack commands on datapath type gl: ovs-appctl dpctl/* through dpif-gl's
ct_* callbacks into gldp's tracker.

  test_dpctl_conntrack   OpenFlow commits IPv4 from h1 in zone 5 with ct_mark 5 and
                         ct_label 0x1234 and tracks replies in zone 5; after UDP, a held-open TCP connection and
                         a ping, dpctl/dump-conntrack prints what gl-dpctl dump-conntrack
                         prints (the OVS format, ICMP with id/type/code), zone filters work;
                         ct-stats-show, ct-get/set-maxconns, ct-get-nconns, ct-set/get/
                         del-limits, the TCP sequence check commands, flush-conntrack by full
                         tuple, by partial tuple and by zone answer as on OVS-DPDK; errors
                         (maxconns above the capacity, a tuple in the wrong zone) fail
"""

import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from gltest import check, main  # noqa: E402
from ovsgl import OvsEnv  # noqa: E402
from test_conntrack_dpctl import tcp_pair, wait_for  # noqa: E402

NET = "10.78.0"
IP1, IP2 = f"{NET}.1", f"{NET}.2"


def udp_send(env, ns, src_port, dst_port, count=5):
    code = ("import socket\n"
            "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
            f"s.bind(('{IP1}',{src_port}))\n"
            f"for i in range({count}): s.sendto(b'x'*64,('{IP2}',{dst_port}))\n")
    env.ns(ns, "/usr/bin/python3", "-c", code)


def test_dpctl_conntrack():
    with OvsEnv("oc") as env:
        env.start_all()
        br = env.bridge()
        ns1, o1, _ = env.host(1, IP1)
        ns2, o2, _ = env.host(2, IP2)
        env.add_port(br, o1, "type=dpdk", f"options:dpdk-devargs=net_af_packet_c1,iface={o1}")
        env.add_port(br, o2, "type=dpdk", f"options:dpdk-devargs=net_af_packet_c2,iface={o2}")
        env.wait_ports(br, [o1, o2])
        p1, p2 = env.ofport(o1), env.ofport(o2)
        env.ofctl("del-flows", br)
        env.ofctl("add-flow", br, "priority=0,actions=NORMAL")
        env.ofctl("add-flow", br, f"priority=10,ip,in_port={p1},actions=ct(commit,zone=5,"
                  "exec(set_field:5->ct_mark,set_field:0x1234->ct_label)),"
                  f"output:{p2}")
        env.ofctl("add-flow", br, f"priority=10,ip,in_port={p2},actions=ct(zone=5),output:{p1}")

        def dpctl(*args, check_rc=True):
            return env.appctl(f"dpctl/{args[0]}", *args[1:], check_rc=check_rc)

        def ovs_dump(*args):
            return sorted(ln for ln in dpctl("dump-conntrack", *args).stdout.splitlines() if ln)

        udp_send(env, ns1, 4000, 5000)
        finish_tcp = tcp_pair(env, ns1, ns2, 34000, 8080, IP1, IP2)
        env.ping(ns1, IP2, count=3)

        udp = (f"udp,orig=(src={IP1},dst={IP2},sport=4000,dport=5000),"
               f"reply=(src={IP2},dst={IP1},sport=5000,dport=4000),zone=5,mark=5,labels=0x1234")
        tcp = (f"tcp,orig=(src={IP1},dst={IP2},sport=34000,dport=8080),"
               f"reply=(src={IP2},dst={IP1},sport=8080,dport=34000),zone=5,mark=5,labels=0x1234,"
               "protoinfo=(state=ESTABLISHED)")
        icmp_re = re.compile(rf"icmp,orig=\(src={IP1},dst={IP2},id=(\d+),type=8,code=0\),"
                             rf"reply=\(src={IP2},dst={IP1},id=(\d+),type=0,code=0\),zone=5,"
                             r"mark=5,labels=0x1234$")
        wait_for(lambda: len(ovs_dump()) >= 3)
        lines = ovs_dump()
        check(len(lines) == 3 and udp in lines and tcp in lines and
              sum(1 for ln in lines if icmp_re.match(ln)) == 1,
              f"dpctl/dump-conntrack:\n" + "\n".join(lines or []) + f"\n{env.vlog()}")
        gl = sorted(ln for ln in env.dpctl("dump-conntrack").stdout.splitlines() if ln)
        check(gl == lines, f"gl-dpctl dump-conntrack differs:\n{gl}\n{lines}")
        check(ovs_dump("zone=5") == lines and ovs_dump("zone=6") == [], "zone filter")
        stats = dpctl("dump-conntrack", "-s").stdout
        check(re.search(r"sport=4000,dport=5000,packets=5,bytes=460\)", stats) and
              ",timeout=" in stats, f"dump-conntrack -s:\n{stats}")
        verbose = dpctl("dump-conntrack", "-m").stdout
        check("state_orig=ESTABLISHED,state_reply=ESTABLISHED" in verbose,
              f"dump-conntrack -m:\n{verbose}")

        show = dpctl("ct-stats-show").stdout
        for want in ("Total: 3", "TCP: 1", "UDP: 1", "ICMP: 1"):
            check(want in show, f"ct-stats-show lacks '{want}':\n{show}")
        check("[ESTABLISHED]=1" in dpctl("ct-stats-show", "-m").stdout, "ct-stats-show -m")
        check(dpctl("ct-get-nconns").stdout.strip() == "3", "ct-get-nconns")
        cap = int(dpctl("ct-get-maxconns").stdout.strip())
        check(cap == int(env.dpctl("ct-get-maxconns").stdout.strip()), "ct-get-maxconns")
        out = dpctl("ct-set-maxconns", "1000").stdout
        check("setting maxconns successful" in out and
              dpctl("ct-get-maxconns").stdout.strip() == "1000", f"ct-set-maxconns: {out}")
        r = dpctl("ct-set-maxconns", str(cap + 1), check_rc=False)
        check(r.returncode != 0 and "ct set maxconns failed (Invalid argument)" in r.stderr,
              f"maxconns above the capacity: {r.returncode} {r.stderr}")
        check("above the table's capacity" in env.vlog(), "gldp's reason is in the log")
        dpctl("ct-set-maxconns", str(cap))

        dpctl("ct-set-limits", "default=100", "zone=5,limit=10", "zone=7,limit=2")
        lim = dpctl("ct-get-limits").stdout.strip().splitlines()
        check(lim == ["default limit=100", "zone=5,limit=10,count=3", "zone=7,limit=2,count=0"],
              f"ct-get-limits: {lim}")
        lim = dpctl("ct-get-limits", "zone=5,6").stdout.strip().splitlines()
        check(lim == ["default limit=100", "zone=5,limit=10,count=3", "zone=6,limit=100,count=0"],
              f"ct-get-limits zone=5,6: {lim}")
        dpctl("ct-del-limits", "zone=5,7")
        dpctl("ct-set-limits", "default=0")
        lim = dpctl("ct-get-limits").stdout.strip().splitlines()
        check(lim == ["default limit=0"], f"after ct-del-limits: {lim}")

        out = dpctl("ct-disable-tcp-seq-chk").stdout
        check("disabling TCP sequence checking successful" in out, out)
        check(dpctl("ct-get-tcp-seq-chk").stdout.strip() == "TCP sequence checking: disabled",
              "ct-get-tcp-seq-chk after disable")
        check(env.dpctl("ct-get-tcp-seq-chk").stdout.strip() == "TCP sequence checking: disabled",
              "gldp agrees")
        dpctl("ct-enable-tcp-seq-chk")
        check(dpctl("ct-get-tcp-seq-chk").stdout.strip() == "TCP sequence checking: enabled",
              "ct-get-tcp-seq-chk after enable")

        full_udp = f"ct_nw_src={IP1},ct_nw_dst={IP2},ct_nw_proto=17,ct_tp_src=4000,ct_tp_dst=5000"
        r = dpctl("flush-conntrack", full_udp, check_rc=False)  # zone 0: not there
        check(r.returncode != 0 and "No such file or directory" in r.stderr,
              f"flush of a zone 5 tuple in zone 0: {r.returncode} {r.stderr}")
        dpctl("flush-conntrack", "zone=5", full_udp)
        check(sorted(ovs_dump()) == sorted(ln for ln in lines if ln != udp), "UDP flushed")
        # A partial tuple (OVS dumps and flushes each match by its original tuple).
        dpctl("flush-conntrack", f"ct_nw_src={IP1},ct_nw_proto=6")
        left = ovs_dump()
        check(len(left) == 1 and icmp_re.match(left[0]), f"after the TCP flush: {left}")
        finish_tcp()
        dpctl("flush-conntrack", "zone=5")
        check(ovs_dump() == [] and dpctl("ct-get-nconns").stdout.strip() == "0", "zone 5 flushed")
        udp_send(env, ns1, 4001, 5000, count=1)
        wait_for(lambda: dpctl("ct-get-nconns").stdout.strip() == "1")
        dpctl("flush-conntrack")
        check(ovs_dump() == [], "flush-conntrack with no arguments flushes everything")
        check(env.gldp_proc.poll() is None and env.vswitchd_proc.poll() is None,
              "gldp and ovs-vswitchd-gl still run")


if __name__ == "__main__":
    main([test_dpctl_conntrack])
