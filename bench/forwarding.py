#!/usr/bin/python3
"""Forwarding benchmark: gldp next to OVS-DPDK and dpdk-testpmd, in one run.

The rig (the same for all three): a net_pcap port with infinite_rx=1 replaying N UDP
flows of 64-byte frames, one forwarding rule to a net_null sink (no-rx=1), one PMD
thread on core 1, the control/main thread on core 0.

  gldp        gl-dpctl add-flow 'in_port(1)' 2
  OVS-DPDK    Debian's ovs-vswitchd-dpdk, datapath_type=netdev,
              ovs-ofctl add-flow br0 in_port=1,actions=output:2
  testpmd     dpdk-testpmd --forward-mode=io (the I/O limit)

Prints Mpps and cycles per packet (TSC Hz / packets per second on the one PMD core) for
each, and the ratios; --json FILE writes the figures. Figures only: nothing is asserted.
"""

import argparse
import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)


def tsc_hz():
    # Same source as DPDK on x86 without invariant-TSC info: /proc/cpuinfo's MHz is close
    # enough for cycles/packet; gldp reports its own TSC Hz, which we prefer.
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("cpu MHz"):
                return float(line.split(":")[1]) * 1e6
    return 0.0


PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
ETH_IPV4 = bytes.fromhex("020000000002020000000001") + b"\x08\x00"


def udp_frame(src, dst, sport, dport, ident=0, size=64):
    """One UDP/IPv4 frame of `size` bytes (FCS excluded: 60 bytes for 64-byte frames), valid
    IPv4 header checksum, UDP checksum 0 (none). Addresses are 32-bit integers."""
    udp_len = size - 4 - 14 - 20
    ip = struct.pack("!BBHHHBBHII", 0x45, 0, 20 + udp_len, ident & 0xFFFF, 0, 64, 17, 0,
                     src, dst)
    csum = sum(struct.unpack("!10H", ip))
    csum = (csum & 0xFFFF) + (csum >> 16)
    csum = (csum & 0xFFFF) + (csum >> 16)
    ip = ip[:10] + struct.pack("!H", ~csum & 0xFFFF) + ip[12:]
    return ETH_IPV4 + ip + struct.pack("!HHHH", sport, dport, udp_len, 0) + bytes(udp_len - 8)


def write_frames(path, frames):
    """A pcap file of `frames` (an iterable of bytes); returns how many were written."""
    n = 0
    with open(path, "wb") as f:
        f.write(PCAP_HEADER)
        for n, frame in enumerate(frames, 1):
            f.write(struct.pack("<IIII", 0, n - 1, len(frame), len(frame)) + frame)
    return n


def write_pcap(path, n_flows, size=64):
    """n_flows UDP/IPv4 frames of `size` bytes (FCS excluded: 60 bytes for 64-byte frames)."""
    write_frames(path, (udp_frame(0x0A000000 | (i + 1), 0x0A640001, 1024 + (i % 60000), 5001,
                                  i, size) for i in range(n_flows)))


def build_dir():
    return os.environ.get("GL_BUILD_DIR", os.path.join(TOP, "build"))


def kill_group(p):
    if p and p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGTERM)
            p.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


# ---- gldp ------------------------------------------------------------------------------

def pcap_packets(pcap):
    n = 0
    with open(pcap, "rb") as f:
        f.read(24)
        while True:
            h = f.read(16)
            if len(h) < 16:
                return n
            f.seek(struct.unpack("<IIII", h)[2], 1)
            n += 1


def start_gldp(workdir, ports, mbufs, extra=()):
    """gldp with its PMD on core 1 and `ports` [(name, devargs)], answering on its socket;
    `extra`: more of gldp's arguments (e.g. "--", EAL arguments). GL_GLDP_ARGS in the
    environment adds gldp options of the user's (e.g. "--fw-ct-capacity 100000").
    Returns (process, gl-dpctl command prefix, log file); stop with kill_group()."""
    b = build_dir()
    sock = os.path.join(workdir, "gldp.sock")
    # Each system of a run starts from no firewall: not the workload ports the last gldp
    # of this directory kept closed for its successor (gldp --fw-state).
    with contextlib.suppress(FileNotFoundError):
        os.unlink(sock + ".fw-ports")
    log = open(os.path.join(workdir, "gldp.log"), "w")
    cmd = [os.path.join(b, "dataplane", "gldp"), "--socket", sock, "--pmd-cores", "1",
           "--mbufs", str(mbufs)]
    for name, devargs in ports:
        cmd += ["--port", f"{name}={devargs}"]
    cmd += shlex.split(os.environ.get("GL_GLDP_ARGS", ""))
    cmd += list(extra)
    p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    dpctl = [os.path.join(b, "tools", "gl-dpctl"), "--socket", sock]
    for _ in range(300):
        if p.poll() is not None:
            log.close()
            raise RuntimeError("gldp exited: " + open(log.name).read()[-2000:])
        if subprocess.run(dpctl + ["show"], capture_output=True).returncode == 0:
            return p, dpctl, log
        time.sleep(0.1)
    kill_group(p)
    log.close()
    raise RuntimeError("gldp did not answer: " + open(log.name).read()[-2000:])


def bench_gldp(pcap, seconds, workdir):
    # net_pcap with infinite_rx keeps the whole file in mbufs of the port's pool.
    mbufs = max(32767, 2 * pcap_packets(pcap) + 16384)
    p, dpctl, log = start_gldp(workdir, [("in", f"net_pcap0,rx_pcap={pcap},infinite_rx=1"),
                                         ("out", "net_null0,no-rx=1")], mbufs)
    try:
        subprocess.run(dpctl + ["add-flow", "in_port(1)", "2"], check=True)
        time.sleep(2)  # warm-up: EMC filled
        s0 = json.loads(subprocess.run(dpctl + ["show", "--json"], check=True,
                                       capture_output=True, text=True).stdout)
        t0 = time.time()
        time.sleep(seconds)
        s1 = json.loads(subprocess.run(dpctl + ["show", "--json"], check=True,
                                       capture_output=True, text=True).stdout)
        t1 = time.time()
        out0 = next(x for x in s0["ports"] if x["name"] == "out")["tx_packets"]
        out1 = next(x for x in s1["ports"] if x["name"] == "out")["tx_packets"]
        pps = (out1 - out0) / (t1 - t0)
        hz = s1["tsc_hz"]
        pm0, pm1 = s0["pmds"][0], s1["pmds"][0]
        busy = pm1["busy_cycles"] - pm0["busy_cycles"]
        pk = pm1["packets"] - pm0["packets"]
        return {"mpps": pps / 1e6, "cycles_per_packet": hz / pps if pps else None,
                "busy_cycles_per_packet": busy / pk if pk else None,
                "emc_hit_rate": s1["pmds"][0]["emc_hit_rate"], "drops": s1["drops"]}
    finally:
        kill_group(p)
        log.close()


# ---- OVS-DPDK --------------------------------------------------------------------------

class OvsDpdk:
    """Debian's OVS-DPDK (ovs-vswitchd-dpdk, datapath_type=netdev) with its own database
    and run directory: `with OvsDpdk(workdir, hugepages, ports, flows) as ovs:`.
    ports: [(name, devargs)] numbered 1, 2, ...; flows: ovs-ofctl add-flow strings."""

    def __init__(self, workdir, hugepages, ports, flows):
        self.run_dir = tempfile.mkdtemp(prefix="ovs-", dir=workdir)  # fresh db every time
        self.env = dict(os.environ, OVS_RUNDIR=self.run_dir, OVS_LOGDIR=self.run_dir,
                        OVS_DBDIR=self.run_dir, OVS_SYSCONFDIR=self.run_dir)
        self.hugepages, self.ports, self.flows = hugepages, ports, flows
        self.procs = []
        self.ctl = os.path.join(self.run_dir, "vswitchd.ctl")
        # OVS's netdev datapath leaves tap devices behind when it is killed: remember what
        # exists, use a bridge name of our own, and remove what we added on the way out.
        self.bridge = f"glbr{os.getpid() % 100000}"
        self.links_before = set(os.listdir("/sys/class/net"))

    def __enter__(self):
        try:
            self._start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _start(self):
        env, run_dir = self.env, self.run_dir
        db = os.path.join(run_dir, "conf.db")
        dbsock = os.path.join(run_dir, "db.sock")
        subprocess.run(["ovsdb-tool", "create", db, "/usr/share/openvswitch/vswitch.ovsschema"],
                       check=True, env=env)
        self.procs.append(subprocess.Popen(
            ["ovsdb-server", db, f"--remote=punix:{dbsock}",
             "--pidfile=" + os.path.join(run_dir, "ovsdb.pid"),
             "--unixctl=" + os.path.join(run_dir, "ovsdb.ctl")],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
        for _ in range(100):
            if os.path.exists(dbsock):
                break
            time.sleep(0.05)
        vsctl = ["ovs-vsctl", f"--db=unix:{dbsock}", "--no-wait"]
        subprocess.run(vsctl + ["init"], check=True, env=env)
        extra = f"--file-prefix=gl-ovsbench-{os.getpid()} --no-pci --no-telemetry "
        extra += "--in-memory" if self.hugepages else "--no-huge --no-shconf -m 1024"
        subprocess.run(vsctl + ["set", "Open_vSwitch", ".",
                                "other_config:dpdk-init=true",
                                "other_config:dpdk-lcore-mask=0x1",
                                "other_config:pmd-cpu-mask=0x2",
                                f"other_config:dpdk-extra={extra}"] +
                       ([] if self.hugepages else ["other_config:dpdk-socket-mem=0"]),
                       check=True, env=env)
        self.procs.append(subprocess.Popen(
            ["/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk", f"unix:{dbsock}",
             "--pidfile=" + os.path.join(run_dir, "vswitchd.pid"), f"--unixctl={self.ctl}",
             "--log-file=" + os.path.join(run_dir, "vswitchd.log")],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
        self.vsctl = ["ovs-vsctl", f"--db=unix:{dbsock}", "--timeout=60"]
        br = self.bridge
        subprocess.run(self.vsctl + ["add-br", br, "--", "set", "bridge", br,
                                     "datapath_type=netdev"], check=True, env=env)
        for i, (name, devargs) in enumerate(self.ports, 1):
            self.add_port(name, devargs, i)
        self.mgmt = f"unix:{os.path.join(run_dir, br + '.mgmt')}"
        subprocess.run(["ovs-ofctl", "del-flows", self.mgmt], check=True, env=env)
        for f in self.flows:
            self.add_flow(f)

    def add_port(self, name, devargs, ofport):
        """A DPDK port (vdev devargs) with OpenFlow port number `ofport`; returns once
        ovs-vswitchd has applied it."""
        subprocess.run(self.vsctl + ["add-port", self.bridge, name, "--", "set", "Interface",
                                     name, "type=dpdk", f"options:dpdk-devargs={devargs}",
                                     f"ofport_request={ofport}"], check=True, env=self.env)

    def add_flow(self, flow):
        subprocess.run(["ovs-ofctl", "add-flow", self.mgmt, flow], check=True, env=self.env)

    def appctl(self, *args):
        return subprocess.run(["ovs-appctl", "-t", self.ctl, *args], capture_output=True,
                              text=True, env=self.env).stdout

    def __exit__(self, *exc):
        if self.procs and self.procs[-1].poll() is None and os.path.exists(self.ctl):
            subprocess.run(["ovs-appctl", "-t", self.ctl, "exit", "--cleanup"],
                           capture_output=True, env=self.env, timeout=20)
        for p in reversed(self.procs):
            kill_group(p)
        self.procs.clear()
        shutil.rmtree(f"/var/run/dpdk/gl-ovsbench-{os.getpid()}", ignore_errors=True)
        for link in set(os.listdir("/sys/class/net")) - self.links_before:
            if link in ("ovs-netdev", self.bridge):
                subprocess.run(["ip", "link", "del", link], capture_output=True)
        return False


def bench_ovs(pcap, seconds, workdir, hugepages):
    ports = [("in", f"net_pcap0,rx_pcap={pcap},infinite_rx=1"), ("out", "net_null0,no-rx=1")]
    with OvsDpdk(workdir, hugepages, ports, ["in_port=1,actions=output:2"]) as ovs:
        time.sleep(3)
        ovs.appctl("dpif-netdev/pmd-stats-clear")
        # Interface statistics refresh every 5 s in OVS: use the PMD counters instead.
        t0 = time.time()
        time.sleep(seconds)
        stats = ovs.appctl("dpif-netdev/pmd-stats-show")
        t1 = time.time()
        m = re.search(r"packets received:\s*(\d+)", stats)
        cyc = re.search(r"avg cycles per packet:\s*([\d.]+)", stats)
        pk = int(m.group(1)) if m else 0
        pps = pk / (t1 - t0)
        return {"mpps": pps / 1e6, "cycles_per_packet": tsc_hz() / pps if pps else None,
                "ovs_avg_cycles_per_packet": float(cyc.group(1)) if cyc else None}


# ---- OVS with datapath_type=gl ----------------------------------------------------------

class OvsGl:
    """ovs-vswitchd-gl + gldp (PMD on core 1) + ovsdb-server with a bridge of datapath type
    gl, from the OVS integration tests' process helpers (test/integration/ovs/ovsgl.py),
    all removed on exit: `with OvsGl("tag", gldp_extra) as o:` then o.env (ovsgl.OvsEnv),
    o.br, o.add_port(name, devargs, ofport)."""

    def __init__(self, tag, gldp_extra=()):
        self.tag, self.gldp_extra = tag, list(gldp_extra)

    def __enter__(self):
        os.environ.setdefault("GL_BUILD_DIR", build_dir())
        for d in (os.path.join(TOP, "test", "integration"),
                  os.path.join(TOP, "test", "integration", "ovs")):
            if d not in sys.path:
                sys.path.insert(0, d)
        import ovsgl  # noqa: E402 - test helpers: ovsdb-server + gldp + ovs-vswitchd-gl
        self.env = env = ovsgl.OvsEnv(self.tag)
        try:
            env.ovsdb()
            env.gldp(extra=self.gldp_extra)
            env.vswitchd()
            # ovs-vswitchd's threads stay off the PMD core, as OVS-DPDK's do through its
            # dpdk-lcore-mask (threads created later inherit the main thread's affinity).
            subprocess.run(["taskset", "-a", "-p", "-c", "0", str(env.vswitchd_proc.pid)],
                           capture_output=True)
            self.br = env.bridge()
        except BaseException:
            env.cleanup()
            raise
        return self

    def add_port(self, name, devargs, ofport):
        self.env.add_port(self.br, name, "type=dpdk", f"options:dpdk-devargs={devargs}",
                          f"ofport_request={ofport}")

    def __exit__(self, *exc):
        self.env.cleanup()
        return False


def bench_ovs_gl(pcap, seconds, workdir, hugepages):
    """The same rig through ovs-vswitchd-gl: OpenFlow rule from ovs-ofctl, megaflows in
    gldp (PMD on core 1)."""
    mbufs = max(32767, 2 * pcap_packets(pcap) + 16384)
    with OvsGl("bf", ["--mbufs", str(mbufs)]) as o:
        env, br = o.env, o.br
        o.add_port("in", f"net_pcap0,rx_pcap={pcap},infinite_rx=1", 1)
        o.add_port("out", "net_null0,no-rx=1", 2)
        env.wait_ports(br, ["in", "out"])
        env.ofctl("del-flows", br)
        env.ofctl("add-flow", br, "in_port=1,actions=output:2")
        time.sleep(3)  # first packets: upcall, megaflow install, EMC warm-up

        def out_tx():
            return next(x for x in env.show()["ports"] if x["name"] == "out")["tx_packets"]

        a, t0 = out_tx(), time.time()
        time.sleep(seconds)
        b, t1 = out_tx(), time.time()
        pps = (b - a) / (t1 - t0)
        flows = env.appctl("dpctl/dump-flows").stdout.strip().splitlines()
        return {"mpps": pps / 1e6, "cycles_per_packet": tsc_hz() / pps if pps else None,
                "megaflows": len(flows)}


# ---- testpmd ---------------------------------------------------------------------------

def bench_testpmd(pcap, seconds, hugepages):
    args = ["dpdk-testpmd", "-l", "0,1", "--no-pci", "--no-telemetry",
            f"--file-prefix=gl-tpbench-{os.getpid()}",
            f"--vdev=net_pcap0,rx_pcap={pcap},infinite_rx=1",
            "--vdev=net_null0,no-rx=1"]
    args += ["--in-memory"] if hugepages else ["--no-huge", "--no-shconf", "-m", "1024"]
    args += ["--", "-i", "--forward-mode=io", "--nb-cores=1"]
    p = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        script = f"start\n"
        p.stdin.write(script)
        p.stdin.flush()
        time.sleep(2)
        p.stdin.write("clear port stats all\n")
        p.stdin.flush()
        t0 = time.time()
        time.sleep(seconds)
        p.stdin.write("show port stats 1\n")
        p.stdin.flush()
        t1 = time.time()
        time.sleep(0.5)
        p.stdin.write("stop\nquit\n")
        p.stdin.flush()
        out, _ = p.communicate(timeout=30)
        blocks = out.split("NIC statistics for port 1")
        m = re.search(r"TX-packets:\s*(\d+)", blocks[-1]) if len(blocks) > 1 else None
        pk = int(m.group(1)) if m else 0
        pps = pk / (t1 - t0)
        return {"mpps": pps / 1e6, "cycles_per_packet": tsc_hz() / pps if pps else None}
    finally:
        kill_group(p)
        shutil.rmtree(f"/var/run/dpdk/gl-tpbench-{os.getpid()}", ignore_errors=True)


def hugepages_usable():
    try:
        with open("/proc/meminfo") as f:
            free = int(re.search(r"HugePages_Free:\s*(\d+)", f.read()).group(1))
        with open("/proc/mounts") as f:
            return free > 256 and "hugetlbfs" in f.read()
    except (OSError, AttributeError):
        return False


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--flows", type=int, default=1000, help="UDP flows in the pcap (1000)")
    ap.add_argument("--seconds", type=float, default=8.0, help="measurement time per system")
    ap.add_argument("--only", choices=["gldp", "ovs_gl", "ovs", "testpmd"], action="append",
                    help="run only these (repeatable)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="rounds; systems alternate within a round and the median is reported")
    ap.add_argument("--json", help="write results to this file")
    a = ap.parse_args()

    work = tempfile.mkdtemp(prefix="gl-bench-")
    try:
        pcap = os.path.join(work, "flows.pcap")
        write_pcap(pcap, a.flows)
        huge = hugepages_usable()
        res = {"flows": a.flows, "frame_bytes": 64, "hugepages": huge,
               "date": time.strftime("%Y-%m-%d %H:%M:%S"),
               "cpu": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                            if l.startswith("model name")), "?")}
        try:
            res["commit"] = subprocess.run(["git", "-C", TOP, "rev-parse", "--short", "HEAD"],
                                           capture_output=True, text=True).stdout.strip()
        except OSError:
            pass
        systems = a.only or ["gldp", "ovs_gl", "ovs", "testpmd"]
        runs = {s: [] for s in systems}
        for rnd in range(a.repeat):
            for s in systems:
                print(f"round {rnd + 1}/{a.repeat}: measuring {s} ({a.seconds:.0f} s)...",
                      flush=True)
                try:
                    if s == "gldp":
                        runs[s].append(bench_gldp(pcap, a.seconds, work))
                    elif s == "ovs":
                        runs[s].append(bench_ovs(pcap, a.seconds, work, huge))
                    elif s == "ovs_gl":
                        runs[s].append(bench_ovs_gl(pcap, a.seconds, work, huge))
                    else:
                        runs[s].append(bench_testpmd(pcap, a.seconds, huge))
                except Exception as e:  # noqa: BLE001 - report and go on with the others
                    runs[s].append({"error": str(e)})
        for s, rs in runs.items():
            ok = sorted((r for r in rs if "error" not in r), key=lambda r: r["mpps"])
            key = "ovs_dpdk" if s == "ovs" else s
            if ok:
                res[key] = dict(ok[len(ok) // 2])
                # In round order, so that a round's systems can be compared with each other.
                res[key]["mpps_runs"] = [round(r["mpps"], 3) if "error" not in r else None
                                         for r in rs]
                errs = [r["error"][:300] for r in rs if "error" in r]
                if errs:
                    res[key]["round_errors"] = errs
                    print(f"{key}: {len(errs)} round(s) failed: {errs[0]}")
            else:
                res[key] = rs[-1]
        # Ratios within each round (the systems ran minutes apart at most): the median of
        # those is robust to a machine whose speed drifts between rounds.
        def round_ratio(num, den):
            a = res.get(num, {}).get("mpps_runs") or []
            b = res.get(den, {}).get("mpps_runs") or []
            rr = sorted(x / y for x, y in zip(a, b) if x and y)
            return (rr[len(rr) // 2], rr) if rr else (None, rr)
        for num, den, name in (("gldp", "ovs_dpdk", "gldp_vs_ovs_dpdk_rounds"),
                               ("ovs_gl", "ovs_dpdk", "ovs_gl_vs_ovs_dpdk_rounds")):
            med, rr = round_ratio(num, den)
            if med:
                res[name] = {"median": med, "per_round": [round(x, 2) for x in rr]}
        print()
        print(f"forwarding, {a.flows} UDP flows of 64 B, 1 PMD core, cpu: {res['cpu']}"
              f" (median of {a.repeat} round(s); load average {os.getloadavg()[0]:.2f})")
        print(f"{'system':<12}{'Mpps':>10}{'cycles/pkt':>12}")
        for k in ("gldp", "ovs_gl", "ovs_dpdk", "testpmd"):
            r = res.get(k)
            if not r:
                continue
            if "error" in r:
                print(f"{k:<12}  error: {r['error'][:200]}")
                continue
            cpp = r["cycles_per_packet"]
            print(f"{k:<12}{r['mpps']:>10.2f}{cpp if cpp else float('nan'):>12.1f}")
        g, o, t = (res.get(k, {}) for k in ("gldp", "ovs_dpdk", "testpmd"))
        if g.get("mpps") and o.get("mpps"):
            res["gldp_vs_ovs_dpdk"] = g["mpps"] / o["mpps"]
            print(f"gldp / OVS-DPDK = {res['gldp_vs_ovs_dpdk']:.2f}x (target >= 1.5x)")
        og = res.get("ovs_gl", {})
        if og.get("mpps") and o.get("mpps"):
            res["ovs_gl_vs_ovs_dpdk"] = og["mpps"] / o["mpps"]
            print(f"OVS datapath gl / OVS-DPDK = {res['ovs_gl_vs_ovs_dpdk']:.2f}x (target >= 1.5x)")
        for name in ("gldp_vs_ovs_dpdk_rounds", "ovs_gl_vs_ovs_dpdk_rounds"):
            if name in res:
                print(f"{name}: median {res[name]['median']:.2f}x, per round {res[name]['per_round']}")
        if g.get("mpps") and t.get("mpps"):
            res["gldp_vs_testpmd"] = g["mpps"] / t["mpps"]
            print(f"gldp / testpmd  = {res['gldp_vs_testpmd']:.2f} of the I/O limit")
        if a.json:
            with open(a.json, "w") as f:
                json.dump(res, f, indent=2)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
