#!/usr/bin/python3
"""Conntrack benchmark: gldp's connection tracker next to OVS-DPDK's, one PMD core, one run.

The rig is the forwarding rig's (bench/forwarding.py): net_pcap ports replaying 64-byte
UDP frames, a net_null sink as port 2, one PMD thread on core 1, everything else on core 0.

est  Established-connection forwarding, N connections (--conns, default 1000 100000).
     A net_pcap port 1 with infinite_rx=1 replays, per connection, a frame A->B followed
     by its reply B->A, all to port 2. After the first pass every connection has seen a
     reply, so the steady state is +est (OVS keeps a UDP connection +new until a reply).
       ovs_gl    OVS with datapath_type=gl (ovs-vswitchd-gl + gldp), and
       ovs_dpdk  OVS-DPDK (datapath_type=netdev), the same OpenFlow rules:
                   table=0  ip,ct_state=-trk           actions=ct(table=1)
                   table=1  ip,ct_state=+trk+new       actions=ct(commit),output:2
                   table=1  ip,ct_state=+trk+est       actions=output:2
       gldp      gldp alone, the datapath flows those rules become (zone 1), by gl-dpctl:
                   recirc_id(0),in_port(1),eth_type(0x0800)  ct(zone=1),recirc(1)
                   recirc_id(1),ct_state(+new+trk)           ct(commit,zone=1),2
                   recirc_id(1),ct_state(+est+trk)           2
     After a warm-up and once the switch forwards 99% of what it receives (under OVS the
     first packets of each connection go up to ovs-vswitchd), forwarded Mpps (port 2's
     tx) and cycles per packet (TSC Hz / pps; the PMD's busy cycles per received packet
     beside it), recirculations per packet
     (1.0 when every packet passes ct() and is recirculated once), and the connections
     tracked afterwards (ct-get-nconns, when the command exists).
     1M connections (2M frames) need about 9 GB of mbufs: gldp then runs without
     hugepages (--no-huge, one 4 KiB page per mbuf); OVS-DPDK cannot hold the file (its mempool has at most
     262144 mbufs and infinite_rx keeps every frame in one), so it is skipped there.

new  New connections, memory, dump and flush (--new-conns K distinct flows, default 1M),
     per system in one process:
       1. no-ct baseline: a net_pcap port (no infinite_rx: one pass over the file) of K
          frames, each a new 5-tuple, forwarded by a plain rule (in_port=4 -> 2);
       2. commits ("cold"): the same K frames on port 3 through ct(commit) -> 2
          (OpenFlow: in_port=3,ip,actions=ct(commit),output:2); every frame creates a
          connection. Connections per second per core = connections created (the
          tracker's count before and after) / the PMD's busy time over the pass (the
          file is read on the PMD: the baseline shows that share). The file starts
          with 200000 copies of one frame, so that the megaflow exists before the new
          connections come (OVS datapath gl installs it through an upcall; see
          write_conn_pcap); they are counted in the pass (a few % of its cycles);
       3. memory per connection: the datapath process's VmRSS before and after the
          commits (gldp's for gldp and datapath gl), divided by the connections created;
       4. commits ("warm"): flush-conntrack, then the same file on port 5: connections
          created into memory the table has used before (no page faults);
       5. dump and flush of the K connections while port 1 replays --bg-conns
          established connections: dump-conntrack piped into a line count and
          flush-conntrack timed (gl-dpctl for gldp, ovs-appctl dpctl/* for OVS), and the
          forwarded rate before and during each.
     Commands that do not exist (yet) are reported as "n/a (command missing)".

Prints tables; --json FILE writes every figure. Figures only: nothing is asserted.

  sudo /usr/bin/python3 bench/conntrack.py [--conns 1000 100000 [1000000]] [--seconds 5]
       [--new-conns 1000000] [--only est|new] [--systems gldp ovs_gl ovs_dpdk]
       [--perf DIR] [--json FILE]
"""

import argparse
import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import forwarding as fw  # noqa: E402 - start_gldp, OvsDpdk, OvsGl, pcap and process helpers

MISSING = "n/a (command missing)"
SYSTEMS = ("gldp", "ovs_gl", "ovs_dpdk")
CORE0 = ["taskset", "-c", "0"]  # the benchmark's own commands stay off the PMD core

# Port numbers, the same in gldp and in OpenFlow (ofport_request). PRIME_IN: the one-pass
# port that establishes the connections before a generator's traffic (--source memif).
EST_IN, OUT, NEW_IN, BASE_IN, NEW2_IN, PRIME_IN = 1, 2, 3, 4, 5, 6

# Addresses: established-connection traffic 10.0.0.0/9 <-> 172.16.0.1, new connections
# 10.128.0.0/9 -> 192.168.0.1 (never the same 5-tuples).
EST_NET, EST_PEER = 0x0A000000, 0xAC100001
NEW_NET, NEW_PEER = 0x0A800000, 0xC0A80001

# The firewall (OpenFlow, both OVS systems) and its datapath flows for gldp alone.
OF_CT = ["table=0,priority=10,ip,ct_state=-trk,actions=ct(table=1)",
         "table=1,priority=10,ip,ct_state=+trk+new,actions=ct(commit),output:2",
         "table=1,priority=10,ip,ct_state=+trk+est,actions=output:2"]
GL_CT = [("recirc_id(0),in_port(1),eth_type(0x0800)", "ct(zone=1),recirc(1)"),
         (f"recirc_id(0),in_port({PRIME_IN}),eth_type(0x0800)", "ct(zone=1),recirc(1)"),
         ("recirc_id(1),ct_state(+new+trk)", "ct(commit,zone=1),2"),
         ("recirc_id(1),ct_state(+est+trk)", "2")]
# New connections (port 3) and the no-ct baseline (port 4).
OF_NEW = [f"table=0,priority=20,in_port={p},ip,actions=ct(commit),output:2"
          for p in (NEW_IN, NEW2_IN)] + [f"table=0,priority=20,in_port={BASE_IN},actions=output:2"]
GL_NEW = [(f"recirc_id(0),in_port({p}),eth_type(0x0800)", "ct(commit,zone=1),2")
          for p in (NEW_IN, NEW2_IN)] + [(f"recirc_id(0),in_port({BASE_IN})", "2")]
# TCP through two ports both ways (bench/suite.py's tcp_cps, ct variant): the client's
# side (port 1) commits, replies from port 2 pass when established.
OF_TCP_CT = ["table=0,priority=10,ip,ct_state=-trk,actions=ct(table=1)",
             "table=0,priority=0,in_port=1,actions=output:2",
             "table=0,priority=0,in_port=2,actions=output:1",
             "table=1,priority=10,ip,in_port=1,ct_state=+trk+new,actions=ct(commit),output:2",
             "table=1,priority=10,ip,in_port=1,ct_state=+trk+est,actions=output:2",
             "table=1,priority=10,ip,in_port=2,ct_state=+trk+est,actions=output:1"]
GL_TCP_CT = [("recirc_id(0),in_port(1),eth_type(0x0800)", "ct(zone=1),recirc(1)"),
             ("recirc_id(0),in_port(2),eth_type(0x0800)", "ct(zone=1),recirc(1)"),
             ("recirc_id(0),in_port(1),eth_type(0x0806)", "2"),
             ("recirc_id(0),in_port(2),eth_type(0x0806)", "1"),
             ("recirc_id(1),in_port(1),ct_state(+new+trk)", "ct(commit,zone=1),2"),
             ("recirc_id(1),in_port(1),ct_state(+est+trk)", "2"),
             ("recirc_id(1),in_port(2),ct_state(+est+trk)", "1")]

PRIMER = 200000               # copies of one frame before the new connections (see above)
MBUF_BYTES = 2560             # one mbuf of gldp's pool (2176 B data room + headers), rounded up
OVS_DPDK_MAX_FRAMES = 240000  # OVS 3.1's shared mempool: 262144 mbufs, some kept for rx/tx


# ---- traffic ----------------------------------------------------------------------------

def conn_frames(n, net, peer, reply):
    """Connection i: net+i+1:(1024 + i % 60000) -> peer:5001, with reply: then the reverse."""
    for i in range(n):
        a, sport = net | (i + 1), 1024 + i % 60000
        yield fw.udp_frame(a, peer, sport, 5001, i)
        if reply:
            yield fw.udp_frame(peer, a, 5001, sport, i)


def write_conn_pcap(path, n, reply, net=EST_NET, peer=EST_PEER, primer=0):
    """The pcap of n connections; with primer, the file starts with that many copies of one
    other frame (its connection is created once, the rest find it): through OVS datapath
    gl the first packet of a port installs the megaflow through an upcall, which takes a
    few ms, and the copies wait in gldp's miss hold meanwhile, instead of n new 5-tuples
    each missing (and most being dropped by the upcall rate limit). Returns the frames."""
    first = fw.udp_frame(net | 0x7FFFFE, peer, 1023, 5001)
    return fw.write_frames(path, itertools.chain(itertools.repeat(first, primer),
                                                 conn_frames(n, net, peer, reply)))


# --source memif: gl-pktgen's flows (source port fastest over 1024..61023, then the source
# address from 10.0.0.1) to 172.16.0.1:5001, and the primer pass's pcap of the same
# connections, each frame followed by its reply.
PG_PORTS = 60000


def pg_flow(i):
    return EST_NET | (1 + i // PG_PORTS), 1024 + i % PG_PORTS


def write_pg_prime_pcap(path, n):
    """The one-pass file that establishes gl-pktgen's n connections: PRIMER copies of
    connection 0's frame (see write_conn_pcap), then every connection's frame and its
    reply. Returns the frames."""
    def frames():
        a0, p0 = pg_flow(0)
        yield from itertools.repeat(fw.udp_frame(a0, EST_PEER, p0, 5001), PRIMER)
        for i in range(n):
            a, sport = pg_flow(i)
            yield fw.udp_frame(a, EST_PEER, sport, 5001, i)
            yield fw.udp_frame(EST_PEER, a, 5001, sport, i)
    return fw.write_frames(path, frames())


def start_pktgen(work, n, sock):
    """gl-pktgen on core 0 sending n flows (pg_flow) of 64 B UDP as fast as the memif ring
    to the switch takes them (the switch's port is the memif server at `sock`); stop with
    fw.kill_group()."""
    hi = pg_flow(n - 1)[0]
    eal = [f"--file-prefix=gl-ctbench-pg-{os.getpid()}", "--no-pci", "--no-telemetry"]
    eal += ["--in-memory"] if fw.hugepages_usable() else ["--no-huge", "--no-shconf", "-m",
                                                         "512"]
    cmd = CORE0 + [os.path.join(fw.build_dir(), "tools", "pktgen", "gl-pktgen"),
                   "--tx", f"net_memif0,role=client,socket={sock}",
                   "--flows", str(n), "--src-ip", f"{fmt_ip(EST_NET | 1)}-{fmt_ip(hi)}",
                   "--src-port", f"1024-{1024 + min(n, PG_PORTS) - 1}",
                   "--dst-ip", fmt_ip(EST_PEER), "--dst-port", "5001",
                   "--duration", "3600", "--quiet", "--lcores", "0", "--"] + eal
    log = open(os.path.join(work, "pktgen.log"), "w")
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True), log


def fmt_ip(v):
    return ".".join(str((v >> s) & 255) for s in (24, 16, 8, 0))


def hugepages_free_bytes():
    try:
        with open("/proc/meminfo") as f:
            m = f.read()
        free = int(re.search(r"HugePages_Free:\s*(\d+)", m).group(1))
        size = int(re.search(r"Hugepagesize:\s*(\d+) kB", m).group(1))
        return free * size * 1024 if fw.hugepages_usable() else 0
    except (OSError, AttributeError):
        return 0


def gldp_memory(frames):
    """gldp's --mbufs for an infinite_rx port of `frames` frames (it keeps all of them in
    mbufs, plus the copies in flight), and EAL arguments: --no-huge with enough memory when
    the hugepages cannot hold the pool."""
    mbufs = max(32767, frames + 65536)
    need = mbufs * MBUF_BYTES
    if need < 0.8 * hugepages_free_bytes():
        return mbufs, []
    # Without hugepages a mempool object does not straddle a 4 KiB page: one mbuf a page.
    return mbufs, ["--", "--no-huge", "-m", str(mbufs * 4096 // 2**20 + 1024)]


# ---- the systems ------------------------------------------------------------------------

def run(cmd, timeout=120, env=None):
    return subprocess.run(CORE0 + cmd, capture_output=True, text=True, timeout=timeout, env=env)


def failure(r, text=None):
    """What a failed command (a CompletedProcess, or its exit status and output) means
    here: a command that does not exist (yet), or an error."""
    rc = r if isinstance(r, int) else r.returncode
    text = (text if text is not None else r.stdout + r.stderr).strip()
    if re.search(r"unknown command|not supported|unrecognized|usage:", text, re.I) or rc == 127:
        return MISSING
    return "error: " + (text.splitlines()[-1] if text else f"exit {rc}")[:200]


def first_int(text):
    m = re.search(r"\d+", text)
    return int(m.group(0)) if m else None


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            return int(re.search(r"VmRSS:\s*(\d+)", f.read()).group(1))
    except (OSError, AttributeError):
        return None


def renice_pmd(pid, nice):
    """Gives the threads of process `pid` that may run only on core 1 (the PMD) nice
    value `nice` (--pmd-nice: on a machine where other programs also poll core 1)."""
    if not nice:
        return
    # With CFS autogroups (kernel.sched_autogroup_enabled) a thread's nice counts only
    # inside its session's group: the datapath's session (it was started in one of its
    # own) gets the nice value too.
    with contextlib.suppress(OSError):
        with open(f"/proc/{pid}/autogroup", "w") as f:
            f.write(str(nice))
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            if os.sched_getaffinity(int(tid)) == {1}:
                os.setpriority(os.PRIO_PROCESS, int(tid), nice)
        except OSError:
            pass


def gldp_snap(dpctl_cmd):
    """Counters of a gldp, timed (the middle of the call): port "out"'s tx, PMD received
    packets, busy cycles, recirculations (under OVS, gldp's port numbers are not the
    OpenFlow ones: by name)."""
    t0 = time.monotonic()
    r = run(dpctl_cmd + ["show", "--json"])
    t1 = time.monotonic()
    if r.returncode != 0:
        raise RuntimeError("gl-dpctl show: " + (r.stdout + r.stderr)[-500:])
    s = json.loads(r.stdout)
    out = next((p["tx_packets"] for p in s["ports"] if p["name"] == "out"), 0)
    return {"t": (t0 + t1) / 2, "out_tx": out,
            "pkts": sum(p["packets"] for p in s["pmds"]),
            "busy": sum(p["busy_cycles"] for p in s["pmds"]),
            "recirc": sum(p["recirculations"] for p in s["pmds"]),
            "hz": s["tsc_hz"], "drops": s["drops"]}


class GldpRig:
    """gldp alone, programmed with gl-dpctl."""
    system = "gldp"

    def __init__(self, work, mbufs, eal):
        self.work, self.mbufs, self.eal = work, mbufs, eal

    def __enter__(self):
        self.p, self.dpctl_cmd, self.log = fw.start_gldp(self.work, [], self.mbufs, self.eal)
        return self

    def __exit__(self, *exc):
        fw.kill_group(self.p)
        self.log.close()
        return False

    def dpctl(self, *args):
        r = run(self.dpctl_cmd + list(args))
        if r.returncode != 0:
            raise RuntimeError(f"gl-dpctl {' '.join(args)}: {(r.stdout + r.stderr)[-500:]}")
        return r.stdout

    def pid(self):
        return self.p.pid

    def add_port(self, name, devargs, port_no):
        self.dpctl("add-port", name, devargs, f"port_no={port_no}")

    def add_flows(self, gl_flows, of_flows):
        for match, actions in gl_flows:
            self.dpctl("add-flow", match, actions)

    def snap(self):
        return gldp_snap(self.dpctl_cmd)

    def nconns(self):
        r = run(self.dpctl_cmd + ["ct-get-nconns"])
        return first_int(r.stdout) if r.returncode == 0 else failure(r)

    def ct_stats(self):
        """The tracker's counters (ct-stats-show; it dumps every connection: not while
        measuring)."""
        r = run(self.dpctl_cmd + ["ct-stats-show", "--json"], timeout=300)
        if r.returncode != 0:
            return failure(r)
        t = json.loads(r.stdout).get("tracker", {})
        return {k: t.get(k) for k in ("connections", "packets", "found", "created", "expired",
                                      "table_full", "invalid")}

    def megaflows(self):
        r = run(self.dpctl_cmd + ["dump-flows"])
        return len(r.stdout.strip().splitlines()) if r.returncode == 0 else None

    def flush_dp_flows(self):
        pass  # gl-dpctl's flows are the rules themselves

    def dump_cmd(self):
        return self.dpctl_cmd + ["dump-conntrack"], None, "gl-dpctl dump-conntrack"

    def flush_cmd(self):
        return self.dpctl_cmd + ["flush-conntrack"], None, "gl-dpctl flush-conntrack"


class OvsGlRig:
    """OVS with datapath type gl: ovs-vswitchd-gl + gldp, OpenFlow rules."""
    system = "ovs_gl"

    def __init__(self, work, mbufs, eal):
        self.o = fw.OvsGl("ct", ["--mbufs", str(mbufs)] + list(eal))

    def __enter__(self):
        self.o.__enter__()
        self.env = self.o.env
        self.env.ofctl("del-flows", self.o.br)
        self.dpctl_cmd = [os.path.join(fw.build_dir(), "tools", "gl-dpctl"),
                          "--socket", self.env.sock]
        return self

    def __exit__(self, *exc):
        return self.o.__exit__(*exc)

    def pid(self):
        return self.env.gldp_proc.pid  # the connections live in gldp

    def appctl(self, *args, timeout=120):
        return run(["ovs-appctl", "-t", self.env.ctl, *args], timeout=timeout, env=self.env.env)

    def add_port(self, name, devargs, port_no):
        self.o.add_port(name, devargs, port_no)
        self.env.wait_ports(self.o.br, [name])

    def add_flows(self, gl_flows, of_flows):
        for f in of_flows:
            self.env.ofctl("add-flow", self.o.br, f)

    def snap(self):
        return gldp_snap(self.dpctl_cmd)

    def nconns(self):
        r = self.appctl("dpctl/ct-get-nconns")
        if r.returncode == 0:
            return first_int(r.stdout)
        r2 = run(self.dpctl_cmd + ["ct-get-nconns"])
        return first_int(r2.stdout) if r2.returncode == 0 else failure(r)

    def ct_stats(self):
        return GldpRig.ct_stats(self)

    def megaflows(self):
        r = self.appctl("dpctl/dump-flows")
        return len(r.stdout.strip().splitlines()) if r.returncode == 0 else None

    def flush_dp_flows(self):
        self.appctl("dpctl/del-flows")

    def dump_cmd(self):
        return (["ovs-appctl", "-t", self.env.ctl, "dpctl/dump-conntrack"], self.env.env,
                "ovs-appctl dpctl/dump-conntrack")

    def flush_cmd(self):
        return (["ovs-appctl", "-t", self.env.ctl, "dpctl/flush-conntrack"], self.env.env,
                "ovs-appctl dpctl/flush-conntrack")


class OvsDpdkRig:
    """Debian's OVS-DPDK (datapath_type=netdev), OpenFlow rules."""
    system = "ovs_dpdk"

    def __init__(self, work, mbufs, eal):
        self.o = fw.OvsDpdk(work, fw.hugepages_usable(), [], [])

    def __enter__(self):
        self.o.__enter__()
        self.hz = fw.tsc_hz()
        return self

    def __exit__(self, *exc):
        return self.o.__exit__(*exc)

    def pid(self):
        return self.o.procs[-1].pid

    def appctl(self, *args, timeout=120):
        return run(["ovs-appctl", "-t", self.o.ctl, *args], timeout=timeout, env=self.o.env)

    def add_port(self, name, devargs, port_no):
        self.o.add_port(name, devargs, port_no)

    def add_flows(self, gl_flows, of_flows):
        for f in of_flows:
            self.o.add_flow(f)

    def snap(self):
        # The PMD's counters (live) and port 2's tx from the netdev (dpctl/show -s asks
        # the DPDK port; the database's statistics are refreshed only every 5 s).
        t0 = time.monotonic()
        st = self.appctl("dpif-netdev/pmd-stats-show").stdout
        sh = self.appctl("dpctl/show", "-s").stdout
        t1 = time.monotonic()

        def num(pat, text):
            m = re.search(pat, text)
            return int(m.group(1)) if m else 0
        out = 0
        m = re.search(r"port \d+: out\b.*?TX packets:(\d+)", sh, re.S)
        if m:
            out = int(m.group(1))
        return {"t": (t0 + t1) / 2, "out_tx": out,
                "pkts": num(r"packets received:\s*(\d+)", st),
                "busy": num(r"processing cycles:\s*(\d+)", st),
                "recirc": num(r"packet recirculations:\s*(\d+)", st),
                "hz": self.hz}

    def nconns(self):
        r = self.appctl("dpctl/ct-get-nconns")
        return first_int(r.stdout) if r.returncode == 0 else failure(r)

    def ct_stats(self):
        return None

    def megaflows(self):
        r = self.appctl("dpctl/dump-flows")
        return len(r.stdout.strip().splitlines()) if r.returncode == 0 else None

    def flush_dp_flows(self):
        self.appctl("dpctl/del-flows")

    def dump_cmd(self):
        return (["ovs-appctl", "-t", self.o.ctl, "dpctl/dump-conntrack"], self.o.env,
                "ovs-appctl dpctl/dump-conntrack")

    def flush_cmd(self):
        return (["ovs-appctl", "-t", self.o.ctl, "dpctl/flush-conntrack"], self.o.env,
                "ovs-appctl dpctl/flush-conntrack")


RIGS = {"gldp": GldpRig, "ovs_gl": OvsGlRig, "ovs_dpdk": OvsDpdkRig}


# ---- measurements -----------------------------------------------------------------------

def rate(s0, s1):
    """Forwarded Mpps and cycles per packet between two snapshots."""
    dt = s1["t"] - s0["t"]
    fwd = s1["out_tx"] - s0["out_tx"]
    pk = s1["pkts"] - s0["pkts"]
    pps = fwd / dt if dt > 0 else 0
    return {"mpps": pps / 1e6, "cycles_per_packet": s1["hz"] / pps if pps else None,
            "busy_cycles_per_packet": (s1["busy"] - s0["busy"]) / pk if pk else None,
            "recirc_per_packet": (s1["recirc"] - s0["recirc"]) / pk if pk else None,
            "rx_mpps": pk / dt / 1e6 if dt > 0 else 0, "seconds": dt}


@contextlib.contextmanager
def perf_record(path, seconds):
    """perf record of core 1 (the PMD) for `seconds`, when path is given."""
    p = None
    if path:
        p = subprocess.Popen(CORE0 + ["perf", "record", "-C", "1", "-g", "-o", path, "--",
                                      "sleep", str(seconds)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    try:
        yield
    finally:
        if p:
            try:
                p.wait(timeout=seconds + 30)
            except subprocess.TimeoutExpired:
                fw.kill_group(p)


def settle(rig, most=60.0):
    """Waits (after the warm-up) until the switch forwards what it receives: 99% over one
    second, at most `most` seconds. Through OVS the first packets of every connection go
    up to ovs-vswitchd, and on a busy core 0 its handlers may take longer than the warm-up
    to install the megaflows: measuring then would count the upcall storm. Returns the
    seconds waited."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < most:
        s0 = rig.snap()
        time.sleep(1.0)
        s1 = rig.snap()
        pk = s1["pkts"] - s0["pkts"]
        if pk > 0 and (s1["out_tx"] - s0["out_tx"]) >= 0.99 * pk:
            break
    return round(time.monotonic() - t0, 1)


def run_est(system, n, pcap, frames, a, work):
    """Item 1/2: established-connection forwarding of n connections through `system`."""
    if getattr(a, "source", "pcap") == "memif":
        return run_est_memif(system, n, pcap, frames, a, work)
    if system == "ovs_dpdk" and frames > OVS_DPDK_MAX_FRAMES:
        return {"skipped": f"n/a: {frames} frames do not fit OVS-DPDK's mempool (262144 "
                           "mbufs; infinite_rx keeps every frame in one)"}
    mbufs, eal = gldp_memory(frames)
    with RIGS[system](work, mbufs, eal) as rig:
        rig.add_port("out", "net_null0,no-rx=1", OUT)
        rig.add_flows(GL_CT, OF_CT)
        rig.add_port("in", f"net_pcap0,rx_pcap={pcap},infinite_rx=1", EST_IN)
        renice_pmd(rig.pid(), a.pmd_nice)
        # The port receives from the moment the datapath has it, before ovs-vswitchd has
        # associated it with its OpenFlow port: OVS answers those first upcalls with
        # exact-match drop flows ("received packet on unassociated datapath port"), which
        # its revalidator later gives the right actions but never a wider match, so each of
        # those connections would stay on a flow of its own. Flushed once OVS knows the
        # port; the megaflows then come from ordinary upcalls (OVS-DPDK alike).
        time.sleep(1.0)
        rig.flush_dp_flows()
        # Warm-up: the first pass creates the connections (OVS datapath gl: the first
        # packets through the upcall), the second makes them bidirectional, then caches.
        r = measure_est(rig, system, n, a)
        if eal:
            r["note"] = "gldp without hugepages (the mbufs do not fit)"
        return r


def measure_est(rig, system, n, a):
    """The measurement once traffic flows: warm-up, settle, a.seconds of snapshots."""
    time.sleep(a.warmup)
    settled = settle(rig)
    perf = os.path.join(a.perf, f"est-{system}-{n}.data") if a.perf else None
    with perf_record(perf, a.seconds):
        s0 = rig.snap()
        time.sleep(a.seconds)
        s1 = rig.snap()
    r = rate(s0, s1)
    r["conns"] = n
    r["settle_s"] = settled
    r["conns_tracked"] = rig.nconns()
    r["megaflows"] = rig.megaflows()
    if "drops" in s1:
        r["drops"] = {k: v - s0["drops"].get(k, 0) for k, v in s1["drops"].items()
                      if v - s0["drops"].get(k, 0)}
    st = rig.ct_stats()
    if st is not None:
        r["ct_stats"] = st
    if perf:
        r["perf"] = perf
    return r


def run_est_memif(system, n, prime_pcap, prime_frames, a, work):
    """Item 1/2 with --source memif: no file held in mbufs, so OVS-DPDK can take 1M
    connections too. A one-pass net_pcap port (PRIME_IN) reads prime_pcap (every
    connection's frame and its reply: afterwards all n are established), then gl-pktgen
    on core 0 sends the connections' forward frames round robin over net_memif into port
    EST_IN (the memif server). The PMD pays for memif's receive copy here, which a net_pcap
    replay does not: the same for every system, and a ceiling (see bench/README.md)."""
    with RIGS[system](work, 65536, []) as rig:
        rig.add_port("out", "net_null0,no-rx=1", OUT)
        rig.add_flows(GL_CT, OF_CT)
        renice_pmd(rig.pid(), a.pmd_nice)
        prime = one_pass(rig, "prime", f"net_pcap1,rx_pcap={prime_pcap}", PRIME_IN,
                         prime_frames, timeout=600)
        sock = os.path.join(work, f"memif-{system}.sock")
        with contextlib.suppress(OSError):
            os.unlink(sock)
        rig.add_port("in", f"net_memif0,role=server,socket={sock}", EST_IN)
        gen, glog = start_pktgen(work, n, sock)
        try:
            time.sleep(1.0)
            rig.flush_dp_flows()  # as run_est: no flows from before OVS knew the port
            if gen.poll() is not None:
                glog.flush()
                raise RuntimeError("gl-pktgen exited: " +
                                   open(glog.name).read()[-1500:])
            r = measure_est(rig, system, n, a)
        finally:
            fw.kill_group(gen)
            glog.close()
        r["source"] = "memif"
        r["prime"] = {k: prime[k] for k in ("frames", "packets", "forwarded")}
        return r


def one_pass(rig, name, devargs, port_no, k, timeout=180):
    """Adds a net_pcap port that reads its file once and waits until the PMD stopped
    receiving; the PMD's busy cycles per packet over the pass."""
    renice_pmd(rig.pid(), getattr(rig, "pmd_nice", 0))
    s0 = rig.snap()
    rig.add_port(name, devargs, port_no)
    last, t_last, deadline = s0, time.monotonic(), time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.25)
        s = rig.snap()
        if s["pkts"] != last["pkts"]:
            last, t_last = s, time.monotonic()
        elif s["pkts"] - s0["pkts"] >= k or (time.monotonic() - t_last > 2.0 and
                                             s["pkts"] > s0["pkts"]):
            break
    pk = last["pkts"] - s0["pkts"]
    busy = last["busy"] - s0["busy"]
    cpp = busy / pk if pk else None
    return {"frames": k, "packets": pk, "forwarded": last["out_tx"] - s0["out_tx"],
            "busy_cycles_per_packet": cpp,
            "mpps_per_core": last["hz"] / cpp / 1e6 if cpp else None}


def timed_lines(cmd, env, timeout=600):
    """Runs cmd (on core 0), counting its output lines as `| wc -l` would; (returncode,
    lines, seconds, stderr+stdout tail)."""
    t0 = time.monotonic()
    with tempfile.TemporaryFile() as err:
        p = subprocess.Popen(CORE0 + cmd, stdout=subprocess.PIPE, stderr=err, env=env,
                             start_new_session=True)
        timer = threading.Timer(timeout, fw.kill_group, [p])
        timer.start()
        n, tail = 0, b""
        try:
            for chunk in iter(lambda: p.stdout.read(1 << 20), b""):
                n += chunk.count(b"\n")
                tail = chunk[-300:]
            rc = p.wait()
        finally:
            timer.cancel()
            fw.kill_group(p)
        err.seek(0)
        msg = (err.read().decode(errors="replace") + tail.decode(errors="replace"))
    return rc, n, time.monotonic() - t0, msg


def timed_op(rig, cmd, env, what, timeout=600):
    """Times one dump/flush while traffic runs: the forwarded rate over the call."""
    s0 = rig.snap()
    rc, lines, secs, msg = timed_lines(cmd, env, timeout)
    s1 = rig.snap()
    if rc != 0:
        return {"command": what, "result": failure(rc, msg)}
    during = rate(s0, s1)
    return {"command": what, "seconds": secs, "lines": lines, "mpps_during": during["mpps"],
            "window_s": during["seconds"]}


def est_rounds(conns, systems, a, work, log, pairs=None, what="conntrack"):
    """Item 1/2 for every N and system, a.repeat rounds (systems alternating within a
    round); per N and system the median round by Mpps, and for each (x, y) of `pairs`
    (default: gldp and ovs_gl against ovs_dpdk) the ratio x / y per round and their
    median (row["ratio_x_y"], with the rounds in row["ratio_x_y_rounds"])."""
    if pairs is None:
        pairs = [(s, "ovs_dpdk") for s in ("gldp", "ovs_gl")]
    pcaps = {}
    runs = {n: {s: [] for s in systems} for n in conns}
    try:
        for rnd in range(a.repeat):
            for n in conns:
                if n not in pcaps:
                    path = os.path.join(work, f"est{n}.pcap")
                    if getattr(a, "source", "pcap") == "memif":
                        pcaps[n] = (path, write_pg_prime_pcap(path, n))
                    else:
                        pcaps[n] = (path, write_conn_pcap(path, n, reply=True))
                for s in systems:
                    log(f"{what} est, {n} connections: {s}"
                        f"{f' (round {rnd + 1}/{a.repeat})' if a.repeat > 1 else ''}...")
                    try:
                        r = run_est(s, n, pcaps[n][0], pcaps[n][1], a, work)
                    except Exception as e:  # noqa: BLE001 - a failed system is reported
                        r = {"error": str(e)[-400:]}
                    runs[n][s].append(r)
                    log(f"    {brief(r)}")
    finally:
        for path, _ in pcaps.values():
            with contextlib.suppress(OSError):
                os.unlink(path)
    out = {}
    for n in conns:
        row = {}
        for s in systems:
            ok = sorted((r for r in runs[n][s] if r.get("mpps")), key=lambda r: r["mpps"])
            row[s] = dict(ok[len(ok) // 2]) if ok else runs[n][s][-1]
            if a.repeat > 1:
                row[s]["mpps_rounds"] = [round(r["mpps"], 3) if r.get("mpps") else None
                                         for r in runs[n][s]]
        for x, y in pairs:
            if x not in systems or y not in systems:
                continue
            rr = sorted(p["mpps"] / q["mpps"] for p, q in zip(runs[n][x], runs[n][y])
                        if p.get("mpps") and q.get("mpps"))
            if rr:
                row[f"ratio_{x}_{y}"] = rr[len(rr) // 2]
                if a.repeat > 1:
                    row[f"ratio_{x}_{y}_rounds"] = [round(v, 2) for v in rr]
        out[str(n)] = row
    return out


def run_new(system, k, new_pcap, new_frames, bg_pcap, bg_frames, a, work):
    """Items 3-5: new connections per second, memory per connection, dump and flush."""
    mbufs, eal = gldp_memory(bg_frames)
    res = {"new_conns": k}
    with RIGS[system](work, mbufs, eal) as rig:
        rig.pmd_nice = a.pmd_nice
        rig.add_port("out", "net_null0,no-rx=1", OUT)
        rig.add_flows(GL_CT + GL_NEW, OF_CT + OF_NEW)
        res["no_ct"] = one_pass(rig, "base", f"net_pcap2,rx_pcap={new_pcap}", BASE_IN,
                                 new_frames)
        time.sleep(1)
        n0, rss0 = rig.nconns(), rss_kb(rig.pid())
        perf = os.path.join(a.perf, f"new-{system}.data") if a.perf else None
        with perf_record(perf, 1):
            res["commit"] = c = one_pass(rig, "new", f"net_pcap1,rx_pcap={new_pcap}", NEW_IN,
                                         new_frames)
        time.sleep(1)
        n1, rss1 = rig.nconns(), rss_kb(rig.pid())
        res["conns_tracked"] = n1
        created = n1 - n0 if isinstance(n1, int) and isinstance(n0, int) else None
        c["created"] = created if created is not None else MISSING
        if c.get("busy_cycles_per_packet") and created:
            # Connections per second per core: what the PMD did per created connection.
            hz = rig.snap()["hz"]
            c["conns_per_s_per_core"] = hz * created / (c["packets"] *
                                                       c["busy_cycles_per_packet"])
        base = created or c["packets"]
        res["memory"] = {"rss_before_kb": rss0, "rss_after_kb": rss1,
                         "conns": created if created is not None else
                         f"{c['packets']} (assumed: ct-get-nconns missing)",
                         "bytes_per_conn": (rss1 - rss0) * 1024 / base
                         if rss0 and rss1 and base else None}
        st = rig.ct_stats()
        if st is not None:
            res["ct_stats"] = st
        # The same connections again into memory the table has touched already: flushed
        # (untimed, nothing else running), then the file once more on port 5.
        cmd, env, what = rig.flush_cmd()
        fl = timed_lines(cmd, env)
        if fl[0] != 0:
            res["commit_warm"] = {"result": failure(fl[0], fl[3]) + f" ({what})"}
        else:
            time.sleep(1)
            res["commit_warm"] = w = one_pass(rig, "new2", f"net_pcap3,rx_pcap={new_pcap}",
                                              NEW2_IN, new_frames)
            time.sleep(1)
            n2 = rig.nconns()
            w["created"] = n2 if isinstance(n2, int) else MISSING
            if w.get("busy_cycles_per_packet") and isinstance(n2, int) and n2:
                w["conns_per_s_per_core"] = rig.snap()["hz"] * n2 / (
                    w["packets"] * w["busy_cycles_per_packet"])
            w["rss_kb"] = rss_kb(rig.pid())
        if a.skip_dump:
            return res
        # Dump and flush while established-connection traffic runs on port 1.
        rig.add_port("in", f"net_pcap0,rx_pcap={bg_pcap},infinite_rx=1", EST_IN)
        renice_pmd(rig.pid(), a.pmd_nice)
        time.sleep(2)
        s0 = rig.snap()
        time.sleep(2)
        s1 = rig.snap()
        df = {"bg_conns": a.bg_conns, "mpps_before": rate(s0, s1)["mpps"],
              "conns_before": rig.nconns()}
        df["dump"] = timed_op(rig, *rig.dump_cmd())
        time.sleep(1)
        s0 = rig.snap()
        time.sleep(1)
        df["mpps_between"] = rate(s0, rig.snap())["mpps"]
        df["flush"] = timed_op(rig, *rig.flush_cmd())
        time.sleep(1)
        df["conns_after_flush"] = rig.nconns()
        s0 = rig.snap()
        time.sleep(1)
        df["mpps_after"] = rate(s0, rig.snap())["mpps"]
        res["dump_flush"] = df
    return res


# ---- the whole benchmark ----------------------------------------------------------------

def bench(conns=(1000, 100000), new_conns=1000000, bg_conns=1000, seconds=5.0, warmup=3.0,
          systems=SYSTEMS, only=None, perf=None, skip_dump=False, pmd_nice=0, repeat=1,
          workdir=None, log=print, source="pcap"):
    """Runs the benchmark; returns a dict of figures (bench/suite.py calls this)."""
    a = argparse.Namespace(seconds=seconds, warmup=warmup, perf=perf, bg_conns=bg_conns,
                           skip_dump=skip_dump, pmd_nice=pmd_nice, repeat=repeat,
                           source=source)
    work = workdir or tempfile.mkdtemp(prefix="gl-ctbench-")
    started = time.monotonic()
    res = {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "hugepages": fw.hugepages_usable(),
           "systems": list(systems), "seconds": seconds, "warmup": warmup,
           "pmd_nice": pmd_nice, "repeat": repeat, "source": source,
           "core1_others": core1_others()}
    try:
        if perf:
            os.makedirs(perf, exist_ok=True)
        if only in (None, "est"):
            res["est"] = est_rounds(conns, systems, a, work, log)
        if only in (None, "new"):
            new_pcap = os.path.join(work, "new.pcap")
            bg_pcap = os.path.join(work, "bg.pcap")
            new_frames = write_conn_pcap(new_pcap, new_conns, reply=False, net=NEW_NET,
                                         peer=NEW_PEER, primer=PRIMER)
            bg_frames = write_conn_pcap(bg_pcap, bg_conns, reply=True)
            res["new"] = {}
            for s in systems:
                log(f"conntrack new connections ({new_conns}), memory, dump/flush: {s}...")
                try:
                    res["new"][s] = run_new(s, new_conns, new_pcap, new_frames, bg_pcap,
                                            bg_frames, a, work)
                except Exception as e:  # noqa: BLE001
                    res["new"][s] = {"error": str(e)[-400:]}
                log(f"    {brief(res['new'][s])}")
            for key, part in (("ratio_gldp_ovs_dpdk", "commit"),
                              ("ratio_warm_gldp_ovs_dpdk", "commit_warm")):
                g = res["new"].get("gldp", {}).get(part, {}).get("conns_per_s_per_core")
                o = res["new"].get("ovs_dpdk", {}).get(part, {}).get("conns_per_s_per_core")
                if g and o:
                    res["new"][key] = g / o
    finally:
        if workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    res["elapsed_s"] = time.monotonic() - started
    return res


def core1_others():
    """Other threads allowed only on core 1 (PMDs of other programs) when the run starts:
    they share the PMD core with the system under test."""
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if not f.read():
                    continue  # a kernel thread
            for tid in os.listdir(f"/proc/{pid}/task"):
                if os.sched_getaffinity(int(tid)) == {1}:
                    with open(f"/proc/{pid}/comm") as f:
                        out.append(f"{pid}:{f.read().strip()}")
                    break
        except OSError:
            pass
    return out


def brief(r):
    return json.dumps(r, default=str)[:600]


def _f(v, spec):
    return spec.format(v) if isinstance(v, (int, float)) else (str(v) if v is not None else "-")


def source_words(res):
    """How the established traffic reached the switch (--source)."""
    if res.get("source") == "memif":
        return ("established by a one-pass pcap, then the forward frames from gl-pktgen on "
                "core 0 over net_memif: the PMD pays memif's copy, and a gldp system may be "
                "bound by the generator (compare busy cyc/pkt)")
    return "both directions replayed by net_pcap infinite_rx"


def tables(res):
    """The figures as text tables (printed, and put into bench/RESULTS.md by the suite)."""
    L = []
    est = res.get("est") or {}
    if est:
        rounds = res.get("repeat", 1)
        L += [f"Established connections (64 B UDP, {source_words(res)}, one PMD core"
              f"{f'; median of {rounds} rounds' if rounds > 1 else ''}):",
              f"{'conns':>8} {'system':<9} {'Mpps':>7} {'cyc/pkt':>8} {'busy cyc/pkt':>12}"
              f" {'recirc/pkt':>10} {'not fwd':>7} {'tracked':>9}  vs OVS-DPDK"]
        for n, row in est.items():
            for s in SYSTEMS:
                r = row.get(s)
                if r is None:
                    continue
                if "mpps" not in r:
                    L.append(f"{n:>8} {s:<9} {r.get('error') or r.get('skipped')}"[:300])
                    continue
                L.append(f"{n:>8} {s:<9} {r['mpps']:>7.2f}"
                         f" {_f(r['cycles_per_packet'], '{:.0f}'):>8}"
                         f" {_f(r['busy_cycles_per_packet'], '{:.0f}'):>12}"
                         f" {_f(r['recirc_per_packet'], '{:.2f}'):>10}"
                         f" {_f(max(0.0, 1 - r['mpps'] / r['rx_mpps']) if r['rx_mpps'] else None, '{:.1%}'):>7}"
                         f" {_f(r['conns_tracked'], '{}'):>9}"
                         f"  {_f(row.get(f'ratio_{s}_ovs_dpdk'), '{:.2f}x')}")
        for n, row in est.items():
            for s in ("gldp", "ovs_gl"):
                if row.get(f"ratio_{s}_ovs_dpdk_rounds"):
                    L.append(f"{n} connections, {s} / OVS-DPDK per round:"
                             f" {row[f'ratio_{s}_ovs_dpdk_rounds']}")
    new = res.get("new") or {}
    if new:
        k = next((v["new_conns"] for v in new.values() if isinstance(v, dict)
                  and "new_conns" in v), "?")
        L += ["", f"New connections ({k} distinct 64 B UDP flows, one pass, ct(commit) -> 2,"
              " one PMD core; cold: a fresh table, warm: again after a flush):",
              f"{'system':<9} {'cold Mconn/s':>12} {'cyc/conn':>9} {'warm Mconn/s':>12}"
              f" {'cyc/conn':>9} {'no-ct cyc/pkt':>13} {'created':>9} {'RSS +MB':>8}"
              f" {'B/conn':>7}"]

        def per_conn(c):
            if isinstance(c.get("created"), int) and c["created"] and \
                    c.get("busy_cycles_per_packet"):
                return c["packets"] * c["busy_cycles_per_packet"] / c["created"]
            return None

        def mcps(c):
            v = c.get("conns_per_s_per_core")
            return v / 1e6 if v else c.get("result", "-")
        for s in SYSTEMS:
            r = new.get(s)
            if r is None:
                continue
            if "error" in r:
                L.append(f"{s:<9} error: {r['error']}"[:300])
                continue
            c, w, b, m = r["commit"], r.get("commit_warm", {}), r["no_ct"], r["memory"]
            drss = (m["rss_after_kb"] - m["rss_before_kb"]) / 1024 \
                if m["rss_after_kb"] and m["rss_before_kb"] else None
            L.append(f"{s:<9} {_f(mcps(c), '{:.3f}'):>12} {_f(per_conn(c), '{:.0f}'):>9}"
                     f" {_f(mcps(w), '{:.3f}'):>12} {_f(per_conn(w), '{:.0f}'):>9}"
                     f" {_f(b['busy_cycles_per_packet'], '{:.0f}'):>13}"
                     f" {_f(c['created'], '{}'):>9} {_f(drss, '{:.1f}'):>8}"
                     f" {_f(m['bytes_per_conn'], '{:.0f}'):>7}")
        for key, what in (("ratio_gldp_ovs_dpdk", "cold"), ("ratio_warm_gldp_ovs_dpdk", "warm")):
            if new.get(key):
                L.append(f"gldp / OVS-DPDK new connections per second ({what}): {new[key]:.2f}x")
        rows = [(s, new[s]["dump_flush"]) for s in SYSTEMS
                if isinstance(new.get(s), dict) and "dump_flush" in new[s]]
        if rows:
            L += ["", "Dump and flush of the table while established traffic runs"
                  " (forwarded Mpps before -> during):",
                  f"{'system':<9} {'conns':>9} {'dump s':>7} {'lines':>9} {'Mpps':>13}"
                  f" {'flush s':>8} {'Mpps':>13} {'after':>7}"]
            for s, d in rows:
                dd, ff = d["dump"], d["flush"]
                dump = (f"{dd['seconds']:>7.2f} {dd['lines']:>9}"
                        f" {d['mpps_before']:>5.2f} -> {dd['mpps_during']:<5.2f}"
                        if "seconds" in dd else f"{dd['result']:>31}")
                flush = (f"{ff['seconds']:>8.2f} {d['mpps_between']:>5.2f} -> "
                         f"{ff['mpps_during']:<5.2f}" if "seconds" in ff else f" {ff['result']}")
                L.append(f"{s:<9} {_f(d['conns_before'], '{}'):>9} {dump} {flush}"
                         f" {_f(d['conns_after_flush'], '{}'):>7}")
            L.append("(the commands: " + ", ".join(sorted({d[o]["command"] for _, d in rows
                                                          for o in ("dump", "flush")})) + ")")
    return "\n".join(L)


SOURCE_HELP = ("where the established traffic comes from: pcap (default; a net_pcap port "
               "with infinite_rx replays the connections from mbufs: OVS-DPDK cannot hold "
               "more than 240k frames) or memif (a one-pass pcap establishes the "
               "connections, then gl-pktgen on core 0 sends them over net_memif: any "
               "number of connections for every system, the memif copy paid by the PMD)")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--conns", type=int, nargs="+", default=[1000, 100000],
                    help="established connections (1000 100000; 1000000 is possible: ~9 GB "
                         "of memory for gldp, OVS-DPDK skipped)")
    ap.add_argument("--new-conns", type=int, default=1000000,
                    help="distinct flows of the new-connection pass (1000000)")
    ap.add_argument("--bg-conns", type=int, default=1000,
                    help="established connections replayed during dump/flush (1000)")
    ap.add_argument("--seconds", type=float, default=5.0, help="measurement time (5)")
    ap.add_argument("--warmup", type=float, default=3.0, help="warm-up before measuring (3)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="rounds of the established-connection part, systems alternating;"
                         " the median round is reported (1)")
    ap.add_argument("--only", choices=["est", "new"], help="only one part")
    ap.add_argument("--systems", nargs="+", choices=SYSTEMS, default=list(SYSTEMS))
    ap.add_argument("--skip-dump", action="store_true", help="no dump/flush part")
    ap.add_argument("--pmd-nice", type=int, default=0,
                    help="nice value for the PMD thread of the system under test (e.g. -20 "
                         "when other programs poll core 1 too; default 0: unchanged)")
    ap.add_argument("--perf", metavar="DIR",
                    help="perf record -C 1 during each established-traffic measurement and "
                         "for 1 s from the start of the cold new-connection pass")
    ap.add_argument("--source", choices=["pcap", "memif"], default="pcap",
                    help=SOURCE_HELP)
    ap.add_argument("--json", help="write the figures to this file")
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # clean up as on Ctrl-C
    res = bench(a.conns, a.new_conns, a.bg_conns, a.seconds, a.warmup, a.systems, a.only,
                a.perf, a.skip_dump, a.pmd_nice, a.repeat, log=lambda m: print(m, flush=True),
                source=a.source)
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                if l.startswith("model name")), "?")
    print()
    print(f"conntrack, cpu: {cpu}, hugepages: {res['hugepages']}, load average "
          f"{os.getloadavg()[0]:.2f}, {res['elapsed_s']:.0f} s; other programs polling core 1"
          f" at the start: {', '.join(res['core1_others']) or 'none'}"
          f"{'; PMD nice ' + str(a.pmd_nice) if a.pmd_nice else ''}")
    print(tables(res))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=2, default=str)


if __name__ == "__main__":
    main()
