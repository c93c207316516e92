#!/usr/bin/python3
"""gldp's connection tracker through gl-dpctl: two namespace "VMs" on net_af_packet ports,
IPv4 from h1 committed in zone 5 (`ct(commit,zone=5),2`), replies tracked in zone 5
(`ct(zone=5),1`), ARP forwarded plainly.

  test_dump_and_flush   UDP, a held-open TCP connection and a ping: dump-conntrack shows
                        each with the right tuples (ICMP: id, type 8 / reply type 0), zone 5
                        and the TCP state; zone filters, -s counters, -m both TCP ends,
                        --json; ct-stats-show counts per protocol; flush-conntrack by full
                        tuple, by partial tuple, by zone; a full tuple in the wrong zone is
                        refused (exit 1)
  test_limits           ct-set-maxconns / ct-get-maxconns / ct-get-nconns: the global limit
                        holds and is counted; ct-set-limits / ct-get-limits / ct-del-limits:
                        a zone limit holds, its count is reported, the default applies to
                        zones without their own; TCP sequence checking on/off/get
  test_mark_label_nat   ct(commit,zone=5,mark=5,label=0x1234,nat(src=...)): mark, labels
                        (OVS's hex), the translated reply tuple, status=SRC_NAT with -m
  test_ipv6             an IPv6 UDP connection: addresses in OVS's form, flushed by its
                        ct_ipv6_* tuple
  test_timeout_policy   ct-set-timeout-policy 7 udp_first=2 with ct(commit,zone=5,timeout=7):
                        the UDP connection's timeout in dump-conntrack -s is <= 2 s and it is
                        gone a few seconds later; ct-get-timeout-policy, ct-dump-timeout-
                        policies (--json), ct-del-timeout-policy: later connections of the
                        deleted policy get the defaults
  test_ipf              ping -s 3000 between the namespaces (net_pcap ports: net_af_packet
                        ones get IPv4 datagrams reassembled by the kernel) through
                        ct(commit,zone=1),2 / ct(zone=1),1 after ipf-set-min-frag v4 400: the
                        pings work and ipf-get-status (OVS's text, -m, --json) counts the
                        fragments accepted and completed; with ipf-set-disabled v4 they reach
                        the tracker as they are (+inv "fragment"); ipf-set-max-nfrags shows in
                        the status
  test_two_pmds         two PMD threads, one polling each port: every connection's first
                        packet is committed by one PMD and its replies tracked by the other;
                        20 TCP connections and 20 UDP flows all end ESTABLISHED / replied
                        (SEEN_REPLY), each once in the table, and both PMDs carried traffic
  test_bad_input        malformed zones, limits, tuples, policies and numbers: usage errors
                        (exit 2, before gldp is asked) naming the problem; refusals by gldp
                        (exit 1) with its message
"""

import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from gltest import Env, binary, check, main, run  # noqa: E402

MAC1 = "02:00:00:00:00:01"
MAC2 = "02:00:00:00:00:02"
IP1, IP2 = "10.0.0.1", "10.0.0.2"


def ct_hosts(env):
    ns1, o1, _ = env.host(1, IP1, mac=MAC1)
    ns2, o2, _ = env.host(2, IP2, mac=MAC2)
    env.gldp(ports=[("p1", f"net_af_packet0,iface={o1}"), ("p2", f"net_af_packet1,iface={o2}")])
    env.dpctl("add-flow", "in_port(1),eth_type(0x0806)", "2")
    env.dpctl("add-flow", "in_port(2),eth_type(0x0806)", "1")
    env.dpctl("add-flow", "in_port(1),eth_type(0x0800)", "ct(commit,zone=5),2")
    env.dpctl("add-flow", "in_port(2),eth_type(0x0800)", "ct(zone=5),1")
    return ns1, ns2


def udp_send(env, ns, src_port, dst_port, count=5):
    code = ("import socket\n"
            "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
            f"s.bind(('{IP1}',{src_port}))\n"
            f"for i in range({count}): s.sendto(b'x'*64,('{IP2}',{dst_port}))\n")
    env.ns(ns, "/usr/bin/python3", "-c", code)


def dump(env, *args):
    out = env.dpctl("dump-conntrack", *args).stdout
    return [ln for ln in out.splitlines() if ln.strip()]


def nconns(env):
    return int(env.dpctl("ct-get-nconns").stdout.strip())


def wait_for(fn, timeout=5.0):
    """fn()'s first true value within timeout seconds, else its last value."""
    deadline = time.time() + timeout
    while True:
        v = fn()
        if v or time.time() > deadline:
            return v
        time.sleep(0.1)


def tcp_pair(env, ns1, ns2, sport, dport, ip1=IP1, ip2=IP2):
    """A TCP connection ip1:sport (in ns1) -> ip2:dport (in ns2) that stays open until
    finish() is called."""
    srv = subprocess.Popen(
        ["ip", "netns", "exec", ns2, "/usr/bin/python3", "-c",
         "import socket\n"
         "l=socket.socket(); l.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
         f"l.bind(('{ip2}',{dport})); l.listen(1); l.settimeout(30)\n"
         "c,_=l.accept(); c.settimeout(30); c.sendall(c.recv(100)); c.recv(100); c.close()\n"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)
    cli = subprocess.Popen(
        ["ip", "netns", "exec", ns1, "/usr/bin/python3", "-c",
         "import socket,sys\n"
         "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
         f"s.bind(('{ip1}',{sport})); s.settimeout(10); s.connect(('{ip2}',{dport}))\n"
         "s.sendall(b'hello'); print(s.recv(100).decode(), flush=True)\n"
         "sys.stdin.readline(); s.close()\n"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    echo = cli.stdout.readline().strip()
    err = "" if echo else cli.stderr.read()
    check(echo == "hello", f"TCP echo through ct(): got '{echo}' {err}")

    def finish():
        cli.communicate("\n", timeout=15)
        srv.communicate(timeout=15)

    return finish


def test_dump_and_flush():
    with Env("k") as env:
        ns1, ns2 = ct_hosts(env)
        check(env.dpctl("dump-conntrack").stdout == "", "a new gldp tracks nothing")
        udp_send(env, ns1, 4000, 5000, count=5)
        finish_tcp = tcp_pair(env, ns1, ns2, 34000, 8080)
        env.ping(ns1, IP2, count=3)

        udp = (f"udp,orig=(src={IP1},dst={IP2},sport=4000,dport=5000),"
               f"reply=(src={IP2},dst={IP1},sport=5000,dport=4000),zone=5")
        tcp = (f"tcp,orig=(src={IP1},dst={IP2},sport=34000,dport=8080),"
               f"reply=(src={IP2},dst={IP1},sport=8080,dport=34000),zone=5,"
               "protoinfo=(state=ESTABLISHED)")
        icmp_re = re.compile(rf"icmp,orig=\(src={IP1},dst={IP2},id=(\d+),type=8,code=0\),"
                             rf"reply=\(src={IP2},dst={IP1},id=(\d+),type=0,code=0\),zone=5$")
        wait_for(lambda: len(dump(env)) >= 3)
        lines = dump(env)
        check(len(lines) == 3, f"dump: {lines}")
        check(udp in lines, f"UDP connection missing: {lines}")
        check(tcp in lines, f"TCP connection missing: {lines}")
        icmp = [m for m in map(icmp_re.match, lines) if m]
        check(len(icmp) == 1 and icmp[0].group(1) == icmp[0].group(2),
              f"ICMP connection missing or ids differ: {lines}")
        check(sorted(dump(env, "zone=5")) == sorted(lines), "zone=5 shows the same")
        check(dump(env, "zone=6") == [], "zone=6 is empty")
        check(nconns(env) == 3, f"ct-get-nconns {nconns(env)}")

        # -s: per-direction counters and the timeout; -m: both TCP ends and the status.
        stats = dump(env, "-s")
        u = [ln for ln in stats if ln.startswith("udp,")]
        m = re.search(r"sport=4000,dport=5000,packets=(\d+),bytes=(\d+)\)", u[0]) if u else None
        check(m and int(m.group(1)) == 5 and int(m.group(2)) == 5 * 92,
              f"UDP counters (5 packets of 92 IP bytes): {u}")
        check(re.search(r",timeout=\d+", u[0]), f"no timeout in -s: {u}")
        t = [ln for ln in dump(env, "-m") if ln.startswith("tcp,")]
        check(t and "protoinfo=(state_orig=ESTABLISHED,state_reply=ESTABLISHED)" in t[0]
              and "status=SEEN_REPLY" in t[0], f"-m TCP line: {t}")
        js = json.loads(env.dpctl("dump-conntrack", "--json").stdout)
        jt = [e for e in js if e["proto"] == "tcp"]
        check(len(js) == 3 and jt and jt[0]["orig"] == {"src": IP1, "dst": IP2, "sport": 34000,
                                                         "dport": 8080}
              and jt[0]["zone"] == 5 and jt[0]["state"] == "ESTABLISHED", f"--json: {js}")

        show = env.dpctl("ct-stats-show").stdout
        for want in ("Total: 3", "TCP: 1", "UDP: 1", "ICMP: 1"):
            check(want in show, f"ct-stats-show lacks '{want}':\n{show}")
        check("[ESTABLISHED]=1" in env.dpctl("ct-stats-show", "-m").stdout,
              "ct-stats-show -m lacks the TCP state")
        sj = json.loads(env.dpctl("ct-stats-show", "--json").stdout)
        check(sj["tracker"]["created"] >= 3 and sj["tracker"]["connections"] == 3,
              f"ct-stats-show --json tracker: {sj['tracker']}")

        # A complete tuple outside its zone (no zone= means zone 0) names no connection.
        full_udp = f"ct_nw_src={IP1},ct_nw_dst={IP2},ct_nw_proto=17,ct_tp_src=4000,ct_tp_dst=5000"
        r = env.dpctl("flush-conntrack", full_udp, check_rc=False)
        check(r.returncode == 1 and "no connection udp" in r.stderr and "zone 0" in r.stderr,
              f"flush in zone 0: rc {r.returncode} {r.stderr}")
        env.dpctl("flush-conntrack", "zone=5", full_udp)
        lines = dump(env)
        check(len(lines) == 2 and udp not in lines, f"after the UDP flush: {lines}")
        # A partial tuple: every ICMP connection.
        env.dpctl("flush-conntrack", "ct_nw_proto=1")
        lines = dump(env)
        check(lines == [tcp], f"after the ICMP flush: {lines}")
        finish_tcp()
        env.dpctl("flush-conntrack", "zone=5")
        check(dump(env) == [] and nconns(env) == 0, f"after flushing zone 5: {dump(env)}")
        check(env.gldp_proc.poll() is None, "gldp died")


def test_limits():
    with Env("l") as env:
        ns1, _ = ct_hosts(env)
        cap = json.loads(env.dpctl("ct-stats-show", "--json").stdout)["tracker"]["capacity"]
        check(env.dpctl("ct-get-maxconns").stdout.strip() == str(cap),
              "maxconns starts at the capacity")
        # The global limit.
        out = env.dpctl("ct-set-maxconns", "1").stdout
        check("setting maxconns successful" in out, f"ct-set-maxconns: {out}")
        check(env.dpctl("ct-get-maxconns").stdout.strip() == "1", "ct-get-maxconns after set")
        for p in (4001, 4002, 4003):
            udp_send(env, ns1, p, 5000, count=1)
        wait_for(lambda: nconns(env) == 1)
        time.sleep(0.3)
        check(nconns(env) == 1, f"maxconns 1: {nconns(env)} connections")
        sj = json.loads(env.dpctl("ct-stats-show", "--json").stdout)["tracker"]
        check(sj["limit_global"] >= 2, f"limit_global {sj['limit_global']}")
        env.dpctl("ct-set-maxconns", str(cap))
        env.dpctl("flush-conntrack")

        # A zone limit, the default for the others.
        env.dpctl("ct-set-limits", "default=7", "zone=5,limit=2", "zone=9,limit=0")
        for p in (4011, 4012, 4013):
            udp_send(env, ns1, p, 5000, count=1)
        wait_for(lambda: nconns(env) == 2)
        time.sleep(0.3)
        check(nconns(env) == 2, f"zone 5 limit 2: {nconns(env)} connections")
        lim = env.dpctl("ct-get-limits").stdout.splitlines()
        check(lim == ["default limit=7", "zone=5,limit=2,count=2", "zone=9,limit=0,count=0"],
              f"ct-get-limits: {lim}")
        lim = env.dpctl("ct-get-limits", "zone=5,6").stdout.splitlines()
        check(lim == ["default limit=7", "zone=5,limit=2,count=2", "zone=6,limit=7,count=0"],
              f"ct-get-limits zone=5,6: {lim}")
        sj = json.loads(env.dpctl("ct-stats-show", "--json").stdout)["tracker"]
        check(sj["limit_zone"] >= 1, f"limit_zone {sj['limit_zone']}")
        env.dpctl("ct-del-limits", "zone=5,9")
        lim = env.dpctl("ct-get-limits").stdout.splitlines()
        check(lim == ["default limit=7"], f"after ct-del-limits: {lim}")
        lim = env.dpctl("ct-get-limits", "zone=5").stdout.splitlines()
        check(lim == ["default limit=7", "zone=5,limit=7,count=2"],
              f"zone 5 back to the default: {lim}")
        env.dpctl("ct-set-limits", "default=0")

        # TCP sequence checking.
        check(env.dpctl("ct-get-tcp-seq-chk").stdout.strip() == "TCP sequence checking: enabled",
              "sequence checking starts enabled")
        out = env.dpctl("ct-disable-tcp-seq-chk").stdout
        check("disabling TCP sequence checking successful" in out, out)
        check(env.dpctl("ct-get-tcp-seq-chk").stdout.strip() == "TCP sequence checking: disabled",
              "disabled")
        env.dpctl("ct-enable-tcp-seq-chk")
        check(env.dpctl("ct-get-tcp-seq-chk").stdout.strip() == "TCP sequence checking: enabled",
              "enabled again")
        env.dpctl("ct-stats-clear")
        sj = json.loads(env.dpctl("ct-stats-show", "--json").stdout)["tracker"]
        check(sj["created"] == 0 and sj["limit_zone"] == 0 and sj["connections"] == 2,
              f"after ct-stats-clear: {sj}")
        check(env.gldp_proc.poll() is None, "gldp died")


def test_mark_label_nat():
    with Env("m") as env:
        ns1, o1, _ = env.host(1, IP1, mac=MAC1)
        ns2, o2, _ = env.host(2, IP2, mac=MAC2)
        env.gldp(ports=[("p1", f"net_af_packet0,iface={o1}"), ("p2", f"net_af_packet1,iface={o2}")])
        env.dpctl("add-flow", "in_port(1),eth_type(0x0806)", "2")
        env.dpctl("add-flow", "in_port(2),eth_type(0x0806)", "1")
        env.dpctl("add-flow", "in_port(1),eth_type(0x0800)",
                  "ct(commit,zone=5,mark=5,label=0x1234,nat(src=10.0.0.100)),2")
        udp_send(env, ns1, 4000, 5000, count=2)
        line = (f"udp,orig=(src={IP1},dst={IP2},sport=4000,dport=5000),"
                f"reply=(src={IP2},dst=10.0.0.100,sport=5000,dport=4000),zone=5,mark=5,"
                "labels=0x1234")
        check(wait_for(lambda: dump(env) == [line]), f"SNAT connection: {dump(env)}")
        m = dump(env, "-m")
        check(len(m) == 1 and ",zone=5,status=SRC_NAT,mark=5," in m[0], f"-m: {m}")
        js = json.loads(env.dpctl("dump-conntrack", "--json").stdout)
        check(js[0]["labels"] == "0x1234" and js[0]["mark"] == 5 and
              js[0]["status"] == ["SRC_NAT"], f"--json: {js}")


def test_ipv6():
    with Env("v") as env:
        ns1, o1, i1 = env.host(1, IP1, mac=MAC1)
        ns2, o2, i2 = env.host(2, IP2, mac=MAC2)
        for ns, dev, ip in ((ns1, i1, "fd00::1"), (ns2, i2, "fd00::2")):
            env.ns(ns, "ip", "-6", "addr", "add", f"{ip}/64", "dev", dev, "nodad")
        env.gldp(ports=[("p1", f"net_af_packet0,iface={o1}"), ("p2", f"net_af_packet1,iface={o2}")])
        env.dpctl("add-flow", "in_port(1),eth_type(0x86dd)", "ct(commit,zone=9),2")
        env.dpctl("add-flow", "in_port(2),eth_type(0x86dd)", "ct(zone=9),1")
        code = ("import socket\n"
                "s=socket.socket(socket.AF_INET6,socket.SOCK_DGRAM)\n"
                "s.bind(('fd00::1',4000))\n"
                "for i in range(3): s.sendto(b'x'*64,('fd00::2',5000))\n")
        env.ns(ns1, "/usr/bin/python3", "-c", code)
        udp = ("udp,orig=(src=fd00::1,dst=fd00::2,sport=4000,dport=5000),"
               "reply=(src=fd00::2,dst=fd00::1,sport=5000,dport=4000),zone=9")
        check(wait_for(lambda: udp in dump(env)), f"IPv6 UDP connection missing: {dump(env)}")
        js = [e for e in json.loads(env.dpctl("dump-conntrack", "--json").stdout)
              if e["proto"] == "udp"]
        check(js and js[0]["family"] == 6 and js[0]["orig"]["src"] == "fd00::1", f"--json: {js}")
        env.dpctl("flush-conntrack", "zone=9", "ct_ipv6_src=fd00::1,ct_ipv6_dst=fd00::2,"
                  "ct_nw_proto=17,ct_tp_src=4000,ct_tp_dst=5000")
        check(udp not in dump(env), f"IPv6 UDP connection not flushed: {dump(env)}")


def test_timeout_policy():
    with Env("t") as env:
        ns1, o1, _ = env.host(1, IP1, mac=MAC1)
        ns2, o2, _ = env.host(2, IP2, mac=MAC2)
        env.gldp(ports=[("p1", f"net_af_packet0,iface={o1}"), ("p2", f"net_af_packet1,iface={o2}")])
        env.dpctl("add-flow", "in_port(1),eth_type(0x0806)", "2")
        env.dpctl("add-flow", "in_port(2),eth_type(0x0806)", "1")
        env.dpctl("add-flow", "in_port(1),eth_type(0x0800)", "ct(commit,zone=5,timeout=7),2")
        env.dpctl("add-flow", "in_port(2),eth_type(0x0800)", "ct(zone=5),1")
        pols = env.dpctl("ct-dump-timeout-policies").stdout.splitlines()
        check(pols == ["id=0 tcp_syn_sent=30 tcp_syn_recv=30 tcp_established=86400 "
                       "tcp_fin_wait=900 tcp_time_wait=45 tcp_close=30 udp_first=60 "
                       "udp_single=60 udp_multiple=30 icmp_first=60 icmp_reply=30"],
              f"a new gldp has the default policy only: {pols}")
        env.dpctl("ct-set-timeout-policy", "7", "udp_first=2")
        got = env.dpctl("ct-get-timeout-policy", "7").stdout.strip()
        check(got.startswith("id=7 tcp_syn_sent=30 ") and " udp_first=2 udp_single=60 " in got,
              f"ct-get-timeout-policy 7: {got}")
        js = json.loads(env.dpctl("ct-dump-timeout-policies", "--json").stdout)
        check([p["id"] for p in js] == [0, 7] and js[1]["timeouts"]["udp_first"] == 2 and
              js[1]["timeouts"]["icmp_reply"] == 30 and js[0]["default"], f"--json: {js}")

        # A UDP connection committed with timeout=7 (UDP to a closed port: it stays in
        # udp_first).
        udp_send(env, ns1, 4000, 5000, count=1)
        lines = wait_for(lambda: [ln for ln in dump(env, "-s") if "sport=4000" in ln])
        m = re.search(r",timeout=(\d+)", lines[0]) if lines else None
        check(m and int(m.group(1)) <= 2, f"timeout under policy 7: {lines}")
        time.sleep(2.5)
        check(wait_for(lambda: not [ln for ln in dump(env) if "sport=4000" in ln], timeout=3),
              f"the connection outlived its 2 s: {dump(env, '-s')}")

        # Deleted: connections naming policy 7 get the defaults.
        env.dpctl("ct-del-timeout-policy", "7")
        r = env.dpctl("ct-get-timeout-policy", "7", check_rc=False)
        check(r.returncode == 1 and "no timeout policy 7" in r.stderr, f"get after del: {r.stderr}")
        udp_send(env, ns1, 4001, 5000, count=1)
        lines = wait_for(lambda: [ln for ln in dump(env, "-s") if "sport=4001" in ln])
        m = re.search(r",timeout=(\d+)", lines[0]) if lines else None
        check(m and 50 <= int(m.group(1)) <= 60, f"default udp_first after the del: {lines}")
        check(env.gldp_proc.poll() is None, "gldp died")


def ipf_status(env):
    return json.loads(env.dpctl("ipf-get-status", "--json").stdout)


def test_ipf():
    # net_pcap ports: on net_af_packet ports the kernel hands gldp IPv4 datagrams already
    # reassembled (DPDK's af_packet PMD joins a PACKET_FANOUT group with the defrag flag), so
    # gldp would never see the fragments (and drops datagrams above its 2 KB buffers).
    with Env("f") as env:
        ns1, o1, _ = env.host(1, IP1, mac=MAC1)
        ns2, o2, _ = env.host(2, IP2, mac=MAC2)
        env.gldp(ports=[("p1", f"net_pcap0,rx_iface_in={o1},tx_iface={o1}"),
                        ("p2", f"net_pcap1,rx_iface_in={o2},tx_iface={o2}")])
        env.dpctl("add-flow", "in_port(1),eth_type(0x0806)", "2")
        env.dpctl("add-flow", "in_port(2),eth_type(0x0806)", "1")
        env.dpctl("add-flow", "in_port(1),eth_type(0x0800)", "ct(commit,zone=1),2")
        env.dpctl("add-flow", "in_port(2),eth_type(0x0800)", "ct(zone=1),1")
        out = env.dpctl("ipf-set-min-frag", "v4", "400").stdout
        check(out == "setting minimum fragment size successful\n", f"ipf-set-min-frag: {out!r}")
        env.ping(ns1, IP2, count=1)  # ARP resolved, no fragments yet
        st = ipf_status(env)
        check(st["v4"]["accepted"] == 0 and st["v4"]["min_frag_size"] == 400, f"before: {st}")

        env.ns(ns1, "ping", "-c", "3", "-i", "0.2", "-W", "2", "-s", "3000", IP2)
        st = ipf_status(env)
        # 3 requests and 3 replies of 3008 ICMP bytes: 3 fragments each at MTU 1500.
        check(st["v4"]["accepted"] >= 18 and st["v4"]["completed"] == st["v4"]["accepted"] and
              st["nfrag"] == 0 and st["v4"]["too_small"] == 0, f"after the pings: {st}")
        text = env.dpctl("ipf-get-status").stdout.splitlines()
        check(text[:7] == ["        Fragmentation Module Status",
                           "        ---------------------------",
                           "        v4 enabled: 1",
                           "        v6 enabled: 1",
                           "        max num frags (v4/v6): 1000",
                           "        num frag: 0",
                           "        min v4 frag size: 400"] and
              f"        v4 frags accepted: {st['v4']['accepted']}" in text and
              f"        v4 frags completed: {st['v4']['completed']}" in text and
              "        v6 frags purged: 0" == text[-1] and len(text) == 20,
              "ipf-get-status:\n" + "\n".join(text))
        more = env.dpctl("ipf-get-status", "-m").stdout
        check(more.endswith("\n        Fragment Lists:\n\n"), f"ipf-get-status -m:\n{more}")
        conns = [ln for ln in dump(env) if ln.startswith("icmp,")]
        check(len(conns) >= 1, f"the reassembled pings were tracked: {dump(env)}")

        # Reassembly off: the fragments reach the tracker as they are (+inv, counted as
        # "fragment"); these flows forward them all the same.
        def inv_fragments():
            return json.loads(env.dpctl("ct-stats-show", "--json").stdout)["tracker"]["invalid"][
                "fragment"]

        before = inv_fragments()
        out = env.dpctl("ipf-set-disabled", "v4").stdout
        check(out == "disabling fragmentation reassembly successful\n", f"{out!r}")
        env.ns(ns1, "ping", "-c", "1", "-W", "2", "-s", "3000", IP2)
        st2 = ipf_status(env)
        check(st2["v4"]["enabled"] is False and st2["v4"]["accepted"] == st["v4"]["accepted"] and
              inv_fragments() >= before + 6, f"disabled: {st2}, +inv fragments {inv_fragments()}")
        out = env.dpctl("ipf-set-enabled", "v4").stdout
        check(out == "enabling fragmentation reassembly successful\n", f"{out!r}")
        out = env.dpctl("ipf-set-max-nfrags", "500").stdout
        check(out == "setting maximum fragments successful\n", f"{out!r}")
        check("        max num frags (v4/v6): 500" in env.dpctl("ipf-get-status").stdout and
              ipf_status(env)["v4"]["enabled"] is True, "max nfrags 500 and v4 enabled again")
        check(env.gldp_proc.poll() is None, "gldp died")


def test_two_pmds():
    with Env("kp") as env:
        ns1, o1, _ = env.host(1, IP1, mac=MAC1)
        ns2, o2, _ = env.host(2, IP2, mac=MAC2)
        # Two PMDs on one CPU (this machine has two cores); each polls one port's queue.
        env.gldp(ports=[("p1", f"net_af_packet0,iface={o1}"),
                        ("p2", f"net_af_packet1,iface={o2}")],
                 pmd_cores="1,2", extra=["--", "--lcores", "0@0,1@1,2@1"])
        env.dpctl("add-flow", "in_port(1),eth_type(0x0806)", "2")
        env.dpctl("add-flow", "in_port(2),eth_type(0x0806)", "1")
        env.dpctl("add-flow", "in_port(1),eth_type(0x0800)", "ct(commit,zone=5),2")
        env.dpctl("add-flow", "recirc_id(0),in_port(2),eth_type(0x0800)", "ct(zone=5),recirc(1)")
        # Replies pass only as replies of a connection the other PMD committed.
        env.dpctl("add-flow", "recirc_id(1),in_port(2),ct_state(+est+rpl+trk),eth_type(0x0800)",
                  "1")
        pmds = env.show()["pmds"]
        check(len(pmds) == 2 and all(p["rx_queues"] == 1 for p in pmds),
              f"one rx queue per PMD: {pmds}")
        env.ping(ns1, IP2, count=2)
        finishers = [tcp_pair(env, ns1, ns2, 35000 + i, 9000 + i) for i in range(20)]
        code = ("import socket\n"
                f"r=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); r.bind(('{IP2}',7000))\n"
                "r.settimeout(5)\n"
                "for i in range(20):\n"
                "    d,a=r.recvfrom(100); r.sendto(d,a)\n")
        echo = subprocess.Popen(["ip", "netns", "exec", ns2, "/usr/bin/python3", "-c", code])
        time.sleep(0.5)
        client = ("import socket\n"
                  "n=0\n"
                  "for i in range(20):\n"
                  "    s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.settimeout(3)\n"
                  f"    s.bind(('{IP1}',6000+i)); s.sendto(b'q',('{IP2}',7000))\n"
                  "    n+=len(s.recv(10))\n"
                  "print(n)\n")
        got = env.ns(ns1, "/usr/bin/python3", "-c", client).stdout.strip()
        echo.wait(timeout=10)
        check(got == "20", f"UDP replies through the other PMD: {got} of 20")
        lines = dump(env, "-m")
        tcp = [ln for ln in lines if ln.startswith("tcp,") and "dport=9" in ln]
        udp = [ln for ln in lines if ln.startswith("udp,") and "dport=7000" in ln]
        check(len(tcp) == 20 and all("state_orig=ESTABLISHED,state_reply=ESTABLISHED" in ln
                                     for ln in tcp), f"20 TCP connections established: {tcp}")
        check(len(udp) == 20 and all("SEEN_REPLY" in ln for ln in udp),
              f"20 UDP flows replied: {udp}")
        for f in finishers:
            f()
        pmds = env.show()["pmds"]
        check(all(p["packets"] >= 40 for p in pmds), f"both PMDs carried traffic: {pmds}")
        check(env.gldp_proc.poll() is None, "gldp died")


def test_bad_input():
    with Env("b") as env:
        env.gldp(ports=[("n1", "net_null0,no-rx=1")])
        cases = [
            (["dump-conntrack", "zone=70000"], 2, "zone 70000: zone must be 0..65535"),
            (["dump-conntrack", "zone=x"], 2, "bad zone 'zone=x'"),
            (["dump-conntrack", "--bogus"], 2, "unknown argument '--bogus'"),
            (["flush-conntrack", "zone=65536"], 2, "zone must be 0..65535"),
            (["flush-conntrack", "ct_nw_src=10.0.0.300"], 2, "bad IPv4 address"),
            (["flush-conntrack", "foo=1"], 2, "unknown tuple field 'foo'"),
            (["flush-conntrack", "ct_tp_src=5"], 2, "without ct_nw_proto"),
            (["flush-conntrack", "ct_nw_proto=6,icmp_type=8"], 2, "icmp_* fields need"),
            (["flush-conntrack", "ct_nw_src=10.0.0.1,ct_ipv6_dst=::1"], 2, "IPv4 and IPv6"),
            (["flush-conntrack", "a=1", "b=2", "c=3"], 2, "too many arguments"),
            (["ct-set-maxconns"], 2, "ct-set-maxconns N"),
            (["ct-set-maxconns", "many"], 2, "ct-set-maxconns N"),
            (["ct-set-maxconns", "5000000000"], 2, "ct-set-maxconns N"),
            (["ct-set-maxconns", "4000000000"], 1, "above the table's capacity"),
            (["ct-get-maxconns", "extra"], 2, "takes no arguments"),
            (["ct-set-limits"], 2, "ct-set-limits [default=N]"),
            (["ct-set-limits", "zone=70000,limit=1"], 2,
             "zone limit for zone 70000: zone must be 0..65535"),
            (["ct-set-limits", "zone=5"], 2, "want zone=N,limit=N"),
            (["ct-set-limits", "zone=5,limit=x"], 2, "limit=x is not a number"),
            (["ct-set-limits", "default=-1"], 2, "bad default limit"),
            (["ct-del-limits"], 2, "ct-del-limits zone=N"),
            (["ct-del-limits", "zone=1,70000"], 2, "zone 70000: zone must be 0..65535"),
            (["ct-get-limits", "zones=1"], 2, "want zone=N"),
            (["ct-set-timeout-policy"], 2, "want ct-set-timeout-policy ID [CLASS=SECONDS]"),
            (["ct-set-timeout-policy", "x"], 2, "bad timeout policy id 'x'"),
            (["ct-set-timeout-policy", "1024"], 2, "timeout policy 1024: id must be 0..1023"),
            (["ct-set-timeout-policy", "3", "udp_frist=2"], 2,
             "'udp_frist=2': want CLASS=SECONDS, CLASS one of tcp_syn_sent"),
            (["ct-set-timeout-policy", "3", "udp_first=x"], 2, "seconds must be a number"),
            (["ct-set-timeout-policy", "3", "udp_first=1", "udp_first=2"], 2,
             "udp_first given twice"),
            (["ct-set-timeout-policy", "3", "udp_first=4000001"], 1,
             "timeout policy 3: udp_first 4000001 s is more than 4000000 s"),
            (["ct-get-timeout-policy"], 2, "want ct-get-timeout-policy ID"),
            (["ct-get-timeout-policy", "9"], 1, "no timeout policy 9"),
            (["ct-get-timeout-policy", "1", "2"], 2, "too many arguments"),
            (["ct-del-timeout-policy", "0"], 1, "the default timeout policy (0) cannot be deleted"),
            (["ct-del-timeout-policy", "9"], 1, "no timeout policy 9"),
            (["ct-dump-timeout-policies", "-x"], 2, "unknown argument '-x'"),
            (["ipf-set-enabled"], 2, "want ipf-set-enabled v4|v6"),
            (["ipf-set-disabled", "v5"], 2, "'v5': want v4 (IPv4) or v6 (IPv6)"),
            (["ipf-set-min-frag", "v4"], 2, "want ipf-set-min-frag v4|v6 N"),
            (["ipf-set-min-frag", "v4", "big"], 2, "minimum fragment size must be a number"),
            (["ipf-set-min-frag", "v6", "399"], 1,
             "requested minimum fragment size too small; see documentation (v6: 399 < 400)"),
            (["ipf-set-max-nfrags"], 2, "want ipf-set-max-nfrags N"),
            (["ipf-set-max-nfrags", "5001"], 1, "setting maximum fragments failed (5001 > 5000)"),
            (["ipf-get-status", "--bogus"], 2, "unknown argument '--bogus'"),
            # Refused, never ignored: gldp sends no conntrack events.
            (["add-flow", "in_port(1),eth_type(0x0800)", "ct(commit,eventmask=0x1f),recirc(1)"],
             1, "ct: eventmask is not supported (gldp generates no conntrack events)"),
        ]
        for args, rc, words in cases:
            r = env.dpctl(*args, check_rc=False)
            check(r.returncode == rc and words in r.stderr,
                  f"{args}: exit {r.returncode} (want {rc}), stderr '{r.stderr.strip()}' "
                  f"(want '{words}')")
        helptext = env.dpctl("--help").stdout
        for cmd in ("flush-conntrack", "ct-set-limits", "ct-set-timeout-policy",
                    "ct-get-timeout-policy", "ct-del-timeout-policy", "ct-dump-timeout-policies",
                    "ipf-set-enabled", "ipf-set-disabled", "ipf-set-min-frag",
                    "ipf-set-max-nfrags", "ipf-get-status"):
            check(cmd in helptext, f"--help lacks {cmd}")
        # Usage errors are found before gldp is contacted.
        r = run([binary("gl-dpctl"), "--socket", "/nonexistent.sock", "ipf-set-enabled", "v5"],
                check_rc=False)
        check(r.returncode == 2 and "want v4 (IPv4) or v6 (IPv6)" in r.stderr,
              f"usage error without gldp: {r.returncode} {r.stderr}")
        check(env.gldp_proc.poll() is None, "gldp died")


if __name__ == "__main__":
    main([test_dump_and_flush, test_limits, test_mark_label_nat, test_ipv6, test_timeout_policy,
          test_ipf, test_two_pmds, test_bad_input])
