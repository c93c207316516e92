#!/usr/bin/python3
"""Integration tests of gl-pktgen against itself.

Usage: run_pktgen_test.py --bin PATH/gl-pktgen CASE      (CASE "list" lists the cases)

Each case runs gl-pktgen with its JSON summary on stdout and checks counts, never
timings. net_ring cases use one ring port for --tx and --rx (the ring PMD loops a
port's TX queue back to its RX queue). veth cases create a fresh network namespace
(gl-pktgen-test-<pid>-<case>) with a veth pair, run gl-pktgen inside it on
net_af_packet ports, and delete the namespace on every exit path (also on SIGTERM
from a CTest timeout). Exit 0 pass, 1 fail, 77 skipped (not root, no `ip`, no scapy).
"""

import argparse
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile

SKIP = 77
RING = "net_ring0"


class Fail(Exception):
    pass


class Skip(Exception):
    pass


def check(cond, what, summary=None):
    if not cond:
        if summary is not None:
            sys.stderr.write(json.dumps(summary, indent=2) + "\n")
        raise Fail(what)
    print("ok:", what)


def run(binary, args, netns=None, expect_rc=0, timeout=120):
    cmd = [binary] + args
    if netns:
        cmd = ["ip", "netns", "exec", netns] + cmd
    print("+", " ".join(cmd), flush=True)
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=timeout)
    sys.stderr.write(p.stderr)
    if p.returncode != expect_rc:
        sys.stdout.write(p.stdout)
        raise Fail(f"exit code {p.returncode}, expected {expect_rc}")
    return p


def summary_of(binary, args, netns=None):
    cut = args.index("--") if "--" in args else len(args)  # before the EAL arguments
    p = run(binary, args[:cut] + ["--json", "-"] + args[cut:], netns)
    try:
        return json.loads(p.stdout)
    except json.JSONDecodeError as e:
        sys.stdout.write(p.stdout)
        raise Fail(f"stdout is not one JSON document: {e}")


def check_clean(s, sent):
    tx, rx = s["tx"], s["rx"]
    check(tx["packets"] == sent, f"tx.packets == {sent}", s)
    check(rx["packets"] == tx["packets"], "rx.packets == tx.packets", s)
    check(rx["unique"] == sent, f"rx.unique == {sent}", s)
    check(rx["lost"] == 0 and rx["duplicates"] == 0 and rx["reordered"] == 0,
          "lost == duplicates == reordered == 0", s)
    lat = rx["latency_ns"]
    check(lat["samples"] == rx["packets"], "one latency sample per packet", s)
    check(lat["min"] <= lat["p50"] <= lat["p99"] <= lat["max"], "min <= p50 <= p99 <= max", s)


# ---- net_ring cases --------------------------------------------------------------

def ring_clean(b):
    s = summary_of(b, ["--tx", RING, "--rx", RING, "--count", "10000", "--size", "imix",
                       "--flows", "64", "--src-port", "1000-1063"])
    check_clean(s, 10000)
    check(s["config"]["flows"] == 64, "config.flows == 64", s)


def ring_inject_drop(b):
    s = summary_of(b, ["--tx", RING, "--rx", RING, "--count", "1000", "--inject-drop", "10"])
    inj = s["tx"]["injected"]
    check(inj["dropped"] == 100, "100 of 1000 sequence numbers skipped", s)
    check(s["tx"]["packets"] == 900, "900 packets sent", s)
    check(s["rx"]["packets"] == 900, "900 packets received", s)
    check(s["rx"]["lost"] == 100, "receiver reports lost == 100", s)
    check(s["rx"]["duplicates"] == 0 and s["rx"]["reordered"] == 0, "no dup/reorder", s)


def ring_inject_reorder(b):
    s = summary_of(b, ["--tx", RING, "--rx", RING, "--count", "1000", "--inject-reorder",
                       "10"])
    inj = s["tx"]["injected"]
    check(inj["reordered"] == 50, "every 10th of 500 pairs swapped: 50", s)
    check(s["rx"]["reordered"] == 50, "receiver reports reordered == 50", s)
    check(s["rx"]["lost"] == 0 and s["rx"]["duplicates"] == 0, "no loss/dup", s)
    check(s["rx"]["packets"] == s["tx"]["packets"] == 1000, "rx == tx == 1000", s)


def ring_inject_dup(b):
    s = summary_of(b, ["--tx", RING, "--rx", RING, "--count", "1000", "--inject-dup", "10"])
    inj = s["tx"]["injected"]
    check(inj["duplicated"] == 100, "100 packets sent twice", s)
    check(s["tx"]["packets"] == 1100 and s["rx"]["packets"] == 1100, "rx == tx == 1100", s)
    check(s["rx"]["duplicates"] == 100, "receiver reports duplicates == 100", s)
    check(s["rx"]["unique"] == 1000 and s["rx"]["lost"] == 0, "1000 unique, none lost", s)
    check(s["rx"]["reordered"] == 0, "no reorder", s)


def ring_inject_all(b):
    s = summary_of(b, ["--tx", RING, "--rx", RING, "--count", "20000", "--inject-drop", "7",
                       "--inject-reorder", "3", "--inject-dup", "5", "--size", "64,128"])
    inj, rx = s["tx"]["injected"], s["rx"]
    check(rx["lost"] == inj["dropped"] > 0, "lost == injected drops", s)
    check(rx["duplicates"] == inj["duplicated"] > 0, "duplicates == injected dups", s)
    check(rx["reordered"] == inj["reordered"] > 0, "reordered == injected swaps", s)
    check(rx["packets"] == s["tx"]["packets"], "rx == tx", s)


def ring_icmp_vlan(b):
    s = summary_of(b, ["--tx", RING, "--rx", RING, "--proto", "icmp", "--vlan", "100:5",
                       "--count", "5000", "--rate", "200k", "--dst-ip", "10.0.1.0/28"])
    check(s["config"]["protocol"] == "icmp" and s["config"]["vlan"] == 100, "icmp + vlan", s)
    check(s["config"]["flows"] == 16, "16 flows from a /28", s)
    check_clean(s, 5000)


def ring_duration(b):
    # --duration with a rate: counts must still balance (no timing asserted).
    s = summary_of(b, ["--tx", RING, "--rx", RING, "--duration", "0.5", "--rate", "20k"])
    check(s["tx"]["packets"] > 0, "sent something", s)
    check_clean(s, s["tx"]["packets"])


def ring_nohuge(b):
    # The path CI takes on machines without hugepages (EAL arguments after "--").
    s = summary_of(b, ["--tx", RING, "--rx", RING, "--count", "5000", "--", "--no-huge",
                       "-m", "256"])
    check_clean(s, 5000)


def ring_tcp(b):
    s = summary_of(b, ["--tx", RING, "--rx", RING, "--proto", "tcp", "--count", "2000",
                       "--tcp-timeout", "30"])
    c = s["connections"]
    check(c["attempted"] == 2000, "2000 connections attempted", s)
    check(c["established"] == 2000 and c["server_established"] == 2000,
          "2000 handshakes completed on both ends", s)
    check(c["closed"] == 2000 and c["server_closed"] == 2000, "2000 teardowns completed", s)
    check(c["failed"] == 0 and c["reset"] == 0 and c["unexpected_segments"] == 0,
          "no failure", s)
    check(s["tx"]["packets"] == 6 * 2000 and s["rx"]["packets"] == 6 * 2000,
          "6 segments per connection", s)


def profile_json(b):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "profile.json")
        with open(path, "w") as f:
            json.dump({"tx": RING, "rx": RING, "proto": "udp", "src_ip": "10.1.0.1-10.1.0.4",
                       "dst_port": [7000], "sizes": [64, 512], "count": 3000,
                       "inject_drop": 3}, f)
        # Command-line options override the profile.
        s = summary_of(b, ["--profile", path, "--count", "4000"])
    check(s["config"]["count"] == 4000, "--count overrides the profile", s)
    check(s["config"]["flows"] == 4 and s["config"]["sizes"] == [64, 512],
          "profile ranges and sizes applied", s)
    check(s["rx"]["lost"] == s["tx"]["injected"]["dropped"] == 1333, "profile injection", s)


def pcap_frames(b):
    try:
        from scapy.all import rdpcap, Ether, IP, raw  # noqa: F401
    except ImportError:
        raise Skip("scapy is not installed for /usr/bin/python3")
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "out.pcap")
        for proto in ("udp", "icmp"):
            run(b, ["--tx", f"net_pcap0,tx_pcap={path}", "--proto", proto, "--count", "36",
                    "--size", "imix", "--vlan", "7", "--flows", "6", "--src-port", "100-105",
                    "--quiet"])
            pkts = rdpcap(path)
            check(len(pkts) == 36, f"{proto}: 36 frames written", None)
            sizes, flows = set(), set()
            for i, p in enumerate(pkts):
                q = Ether(raw(p))
                ip = q[IP]
                ip_sum, l4_sum = ip.chksum, ip.payload.chksum
                del ip.chksum
                del ip.payload.chksum
                r = Ether(raw(q))
                if r[IP].chksum != ip_sum or r[IP].payload.chksum != l4_sum:
                    raise Fail(f"{proto}: frame {i} has a bad checksum: {p.summary()}")
                magic, _run, stream, seq, _ts = struct.unpack(
                    "<HHHII", bytes(ip.payload.payload)[:14])
                if magic != 0x4C47 or stream != 0 or seq != i:
                    raise Fail(f"{proto}: frame {i}: bad signature {magic:#x} {stream} {seq}")
                if q.vlan != 7:
                    raise Fail(f"{proto}: frame {i} lacks VLAN 7")
                sizes.add(len(p) + 4)
                flows.add((ip.src, ip.dst, ip.payload.sport if proto == "udp"
                           else ip.payload.id))
            check(sizes == {64, 570, 1518}, f"{proto}: imix sizes", None)
            check(len(flows) == 6, f"{proto}: 6 flows", None)
            check(True, f"{proto}: checksums, signatures and sequence numbers valid")


def usage_errors(b):
    bad = [
        [],
        ["--tx"],
        ["--tx", RING, "--rate", "fast"],
        ["--tx", RING, "--size", "32"],
        ["--tx", RING, "--flows", "2"],
        ["--tx", RING, "--proto", "tcp"],
        ["--tx", RING, "--proto", "sctp"],
        ["--tx", RING, "--no-such-option"],
        ["--tx", RING, "--inject-drop", "1"],
        ["--tx", "net_no_such_driver0"],
        ["--tx", RING, "--rx", "net_pcap0,bogus=1"],
        ["--tx", RING, "--profile", "/nonexistent/profile.json"],
    ]
    for args in bad:
        p = run(b, args, expect_rc=2)
        check("gl-pktgen" in p.stderr, f"usage error for {args!r} explains itself")
    p = run(b, ["--help"])
    check("Examples:" in p.stdout and "--inject-drop" in p.stdout, "--help has examples")


# ---- veth cases (network namespace) -----------------------------------------------

class Netns:
    """A fresh namespace with veth0 <-> veth1, deleted on every exit path."""

    def __init__(self, case):
        if os.geteuid() != 0:
            raise Skip("needs root for network namespaces")
        if shutil.which("ip") is None:
            raise Skip("needs iproute2")
        self.name = f"gl-pktgen-test-{os.getpid()}-{case}"

    def __enter__(self):
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        try:
            for cmd in (["link", "add", "veth0", "type", "veth", "peer", "name", "veth1"],
                        ["link", "set", "veth0", "up"], ["link", "set", "veth1", "up"]):
                subprocess.run(["ip", "-n", self.name] + cmd, check=True)
            # No addresses and no IPv6: the kernel neither answers nor adds traffic.
            subprocess.run(["ip", "netns", "exec", self.name, "sysctl", "-qw",
                            "net.ipv6.conf.all.disable_ipv6=1"], check=False)
        except Exception:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        subprocess.run(["ip", "netns", "del", self.name], check=False)
        return False


VETH_ARGS = ["--tx", "net_af_packet0,iface=veth0", "--rx",
             "net_af_packet1,iface=veth1,framecnt=4096"]


def veth_udp(b):
    with Netns("udp") as ns:
        s = summary_of(b, VETH_ARGS + ["--count", "4000", "--rate", "20k", "--size", "imix",
                                       "--flows", "100", "--src-port", "2000-2099"],
                       ns.name)
        check_clean(s, 4000)
        s = summary_of(b, VETH_ARGS + ["--count", "4000", "--rate", "20k", "--inject-drop",
                                       "10", "--inject-reorder", "7"], ns.name)
        check(s["rx"]["lost"] == s["tx"]["injected"]["dropped"] == 400,
              "veth: lost == injected drops", s)
        check(s["rx"]["reordered"] == s["tx"]["injected"]["reordered"] > 0,
              "veth: reordered == injected swaps", s)


def veth_tcp(b):
    with Netns("tcp") as ns:
        s = summary_of(b, VETH_ARGS + ["--proto", "tcp", "--count", "500", "--rate", "2000",
                                       "--tcp-timeout", "30"], ns.name)
        c = s["connections"]
        check(c["attempted"] == 500, "500 connections attempted", s)
        check(c["established"] == 500, "500 connections established (client)", s)
        check(c["server_established"] == 500, "500 handshakes completed (server)", s)
        check(c["closed"] == 500 and c["server_closed"] == 500, "500 teardowns completed", s)
        check(c["failed"] == 0 and c["reset"] == 0, "no failure", s)
        lat = c["setup_latency_ns"]
        check(lat["samples"] == 500 and lat["min"] <= lat["p50"] <= lat["max"],
              "one set-up latency sample per connection", s)


CASES = {f.__name__: f for f in (
    ring_clean, ring_inject_drop, ring_inject_reorder, ring_inject_dup, ring_inject_all,
    ring_icmp_vlan, ring_duration, ring_nohuge, ring_tcp, profile_json, pcap_frames, usage_errors,
    veth_udp, veth_tcp)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True, help="path to gl-pktgen")
    ap.add_argument("case", choices=list(CASES) + ["list", "all"])
    a = ap.parse_args()
    if a.case == "list":
        print("\n".join(CASES))
        return 0
    # A CTest timeout sends SIGTERM: unwind so that namespaces are deleted.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    names = list(CASES) if a.case == "all" else [a.case]
    rc = 0
    for name in names:
        try:
            CASES[name](os.path.abspath(a.bin))
            print(f"PASS {name}")
        except Skip as e:
            print(f"SKIP {name}: {e}")
            rc = rc or (SKIP if len(names) == 1 else 0)
        except (Fail, subprocess.TimeoutExpired) as e:
            print(f"FAIL {name}: {e}")
            rc = 1
    return rc


if __name__ == "__main__":
    sys.exit(main())
