#!/usr/bin/python3
"""Firewall-stage benchmark: established connections and new connections per second
through gldp's distributed-firewall stage, next to gldp without it, gldp with the
equivalent ct() datapath flows and OVS-DPDK with the equivalent ct() OpenFlow rules, all
in the same run (issue #11's targets: >= 3x OVS-DPDK and >= 0.7x gldp without the
firewall).

The rig is bench/conntrack.py's: one PMD on core 1; a net_pcap port 1 with infinite_rx
replays, per connection, a 64 B UDP frame A -> B (10.0.0.0/9 -> 172.16.0.1:5001) followed
by its reply B -> A; everything goes to a net_null port 2. Systems:

  gldp_plain  gldp, flow in_port(1) -> 2: the forwarding cost without any state
  gldp_fw     the same flow, and a firewall version on port 2 (gl-dpctl fw-install):
              port 2 is a workload (identity 20) whose to-VM policy allows UDP 5001 from
              identity 10 (10.0.0.0/9), default deny. Every packet sent to port 2 goes
              through the stage: one lookup in the firewall's own tracker (zone 2); the
              first packet of a connection is checked against the policy and committed,
              the replies and later packets find the connection (generation current: the
              rules never run again). Both directions reach the same port here (the pcap
              holds both), which exercises the reply lookup as a VM's port does.
  gldp_ct     gldp with the datapath flows of conntrack.py (ct(zone=1),recirc(1); +new:
              ct(commit),2; +est: 2): what an OpenFlow ct() firewall becomes in gldp
  ovs_dpdk    OVS-DPDK (ovs-vswitchd-dpdk) with conntrack.py's OpenFlow ct() rules: the
              peer; it holds at most 240k frames (skipped at 1M with --source pcap;
              --source memif: see bench/conntrack.py)

New connections (--new-conns K distinct 5-tuples 10.128.0.0/9 -> 192.168.0.1:5001, read
once): through the stage (gldp_fw, port 3 -> 2, each packet a new connection committed by
the stage) and through ct(commit) for gldp_ct / OVS-DPDK; connections per second per
core = the connections created / the PMD's busy time over the pass.

Figures only (nothing asserted); --json FILE writes them all.

  sudo /usr/bin/python3 bench/firewall.py [--conns 1000 100000 [1000000]] [--repeat 3]
       [--new-conns 500000] [--systems gldp_plain gldp_fw gldp_ct ovs_dpdk] [--only est|new]
       [--perf DIR] [--json FILE]
"""

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import conntrack as ct  # noqa: E402 - the rig, the pcaps, the measurements
import forwarding as fwd  # noqa: E402

SYSTEMS = ("gldp_plain", "gldp_fw", "gldp_ct", "ovs_dpdk")
PLAIN = [(f"recirc_id(0),in_port({p})", "2") for p in (ct.EST_IN, ct.NEW_IN, ct.BASE_IN,
                                                       ct.NEW2_IN, ct.PRIME_IN)]


def ip4(v):
    return ".".join(str((v >> s) & 255) for s in (24, 16, 8, 0))


# Port 2's firewall: a workload receiving the established traffic (rule 1) and the new
# connections (rule 2); everything else denied.
FW_VERSION = {
    "ipcache": [{"prefix": f"{ip4(ct.EST_NET)}/9", "identity": 10},
                {"prefix": f"{ip4(ct.NEW_NET)}/9", "identity": 11},
                {"prefix": ip4(ct.EST_PEER), "identity": 20},
                {"prefix": ip4(ct.NEW_PEER), "identity": 21}],
    "ports": [{"port": ct.OUT, "identity": 20, "ipv4": [ip4(ct.EST_PEER)],
               "default_from_vm": "deny", "default_to_vm": "deny",
               "to_vm": [{"remote": 10, "proto": "udp", "ports": "5001", "action": "allow",
                          "rule_id": 1},
                         {"remote": 11, "proto": "udp", "ports": "5001", "action": "allow",
                          "rule_id": 2}]}]}


class PlainRig(ct.GldpRig):
    """gldp, plain forwarding flows, no state."""
    system = "gldp_plain"

    def add_flows(self, gl_flows, of_flows):
        for match, actions in PLAIN:
            self.dpctl("add-flow", match, actions)

    def nconns(self):
        return 0

    def ct_stats(self):
        return None


class FwRig(PlainRig):
    """gldp, plain forwarding flows, and the firewall stage at port 2."""
    system = "gldp_fw"

    def add_flows(self, gl_flows, of_flows):
        super().add_flows(gl_flows, of_flows)
        path = os.path.join(self.work, "fw.json")
        with open(path, "w") as f:
            json.dump(FW_VERSION, f)
        self.dpctl("fw-install", path)

    def nconns(self):
        r = ct.run(self.dpctl_cmd + ["fw-status", "--json"])
        return json.loads(r.stdout)["connections"] if r.returncode == 0 else ct.failure(r)

    def fw_drops(self):
        d = ct.gldp_snap(self.dpctl_cmd)["drops"]
        return {k: v for k, v in d.items() if k.startswith("fw_") and v}

    def flush_cmd(self):
        return self.dpctl_cmd + ["fw-flush-conntrack"], None, "gl-dpctl fw-flush-conntrack"


RIGS = {"gldp_plain": PlainRig, "gldp_fw": FwRig, "gldp_ct": ct.GldpRig,
        "ovs_dpdk": ct.OvsDpdkRig}


PAIRS = [("gldp_fw", "ovs_dpdk"), ("gldp_fw", "gldp_plain"), ("gldp_fw", "gldp_ct"),
         ("gldp_ct", "ovs_dpdk")]


def est_rounds(conns, systems, a, work, log):
    """conntrack.py's rounds (systems alternating, medians) with these rigs and ratios."""
    ct.RIGS.update(RIGS)  # conntrack.run_est looks the rig up there
    return ct.est_rounds(conns, systems, a, work, log, pairs=PAIRS, what="firewall")


def run_new(system, k, pcap, frames, a, work):
    """One pass of k new connections (port 3) and the same file without state (port 4:
    in_port(4) -> 2, which the firewall at port 2 would also see: for gldp_fw the baseline
    pass is run before the firewall is installed)."""
    mbufs, eal = ct.gldp_memory(frames)
    res = {"new_conns": k}
    with RIGS[system](work, mbufs, eal) as rig:
        rig.pmd_nice = a.pmd_nice
        rig.add_port("out", "net_null0,no-rx=1", ct.OUT)
        if system == "gldp_fw":
            PlainRig.add_flows(rig, None, None)
            res["no_fw"] = ct.one_pass(rig, "base", f"net_pcap2,rx_pcap={pcap}", ct.BASE_IN,
                                        frames)
            path = os.path.join(work, "fw.json")
            with open(path, "w") as f:
                json.dump(FW_VERSION, f)
            rig.dpctl("fw-install", path)
        else:
            rig.add_flows(ct.GL_CT + ct.GL_NEW, ct.OF_CT + ct.OF_NEW)
        time.sleep(1)
        n0, rss0 = rig.nconns(), ct.rss_kb(rig.pid())
        perf = os.path.join(a.perf, f"new-{system}.data") if a.perf else None
        with ct.perf_record(perf, 1):
            res["commit"] = c = ct.one_pass(rig, "new", f"net_pcap1,rx_pcap={pcap}", ct.NEW_IN,
                                            frames)
        time.sleep(1)
        n1, rss1 = rig.nconns(), ct.rss_kb(rig.pid())
        created = n1 - n0 if isinstance(n1, int) and isinstance(n0, int) else None
        c["created"] = created
        if c.get("busy_cycles_per_packet") and created:
            hz = rig.snap()["hz"]
            c["conns_per_s_per_core"] = hz * created / (c["packets"] *
                                                       c["busy_cycles_per_packet"])
        res["bytes_per_conn"] = (rss1 - rss0) * 1024 / created \
            if created and rss0 and rss1 else None
        if system == "gldp_fw":
            res["fw_drops"] = rig.fw_drops()
    return res


def tables(res):
    L = []
    est = res.get("est") or {}
    if est:
        L += ["Established connections through the firewall stage (64 B UDP, "
              + ct.source_words(res) + ", one PMD core"
              + (f"; median of {res['repeat']} rounds" if res.get("repeat", 1) > 1 else "")
              + "):",
              f"{'conns':>8} {'system':<11} {'Mpps':>7} {'cyc/pkt':>8} {'busy cyc/pkt':>12}"
              f" {'not fwd':>7} {'tracked':>9}"]
        for n, row in est.items():
            for s in SYSTEMS:
                r = row.get(s)
                if r is None:
                    continue
                if "mpps" not in r:
                    L.append(f"{n:>8} {s:<11} {r.get('error') or r.get('skipped')}"[:300])
                    continue
                notfwd = max(0.0, 1 - r["mpps"] / r["rx_mpps"]) if r.get("rx_mpps") else None
                L.append(f"{n:>8} {s:<11} {r['mpps']:>7.2f}"
                         f" {ct._f(r['cycles_per_packet'], '{:.0f}'):>8}"
                         f" {ct._f(r['busy_cycles_per_packet'], '{:.0f}'):>12}"
                         f" {ct._f(notfwd, '{:.1%}'):>7}"
                         f" {ct._f(r.get('conns_tracked'), '{}'):>9}")
            for x, y, want in (("gldp_fw", "ovs_dpdk", ">= 3x"), ("gldp_fw", "gldp_plain",
                                                                  ">= 0.7x"),
                               ("gldp_fw", "gldp_ct", ""), ("gldp_ct", "ovs_dpdk", "")):
                v = row.get(f"ratio_{x}_{y}")
                if v:
                    rounds = row.get(f"ratio_{x}_{y}_rounds")
                    L.append(f"{'':>8} {x} / {y}: {v:.2f}x"
                             f"{f' (target {want})' if want else ''}"
                             f"{f'  rounds {rounds}' if rounds and len(rounds) > 1 else ''}")
            if res.get("source") == "memif":
                # The generator may bound gldp's rates (plain forwarding above all): the
                # PMD's busy cycles per packet are what each system costs.
                for x, y in (("gldp_fw", "gldp_plain"), ("gldp_fw", "ovs_dpdk")):
                    bx = (row.get(x) or {}).get("busy_cycles_per_packet")
                    by = (row.get(y) or {}).get("busy_cycles_per_packet")
                    if bx and by:
                        L.append(f"{'':>8} {x} / {y} by busy cycles per packet ({y}'s / "
                                 f"{x}'s): {by / bx:.2f}x")
    lim = res.get("limits") or {}
    if lim and est:
        L += ["", "The stage's busy cycles per packet next to what 0.7x of plain forwarding leaves "
              "for it, the tracker's established path alone", "(gl-bench-conntrack --established) and the "
              "lookup limit (gl-bench-lookup-limit: rte_hash bulk lookup, keys ready):",
              f"{'conns':>8} {'stage':>7} {'budget at 0.7x':>15} {'tracker alone':>14}"
              f" {'rte_hash lookup':>16}"]
        # The PMD's busy cycles: with --source memif the generator bounds the rates, and
        # cycles per packet would be the generator's.
        for n, row in est.items():
            pl = (row.get("gldp_plain") or {}).get("busy_cycles_per_packet")
            fwc = (row.get("gldp_fw") or {}).get("busy_cycles_per_packet")
            li = lim.get(int(n)) or lim.get(n) or {}
            if not pl or not fwc:
                continue
            L.append(f"{n:>8} {fwc - pl:>7.0f} {pl / 0.7 - pl:>15.0f}"
                     f" {ct._f(li.get('tracker'), '{:.0f}'):>14}"
                     f" {ct._f(li.get('rte_hash'), '{:.0f}'):>16}")
    new = res.get("new") or {}
    if new:
        L += ["", "New connections (distinct 64 B UDP 5-tuples, one pass, one PMD core):",
              f"{'system':<11} {'Mconn/s':>8} {'busy cyc/conn':>13} {'created':>9}"
              f" {'B/conn':>7}  baseline"]
        for s in SYSTEMS:
            r = new.get(s)
            if r is None:
                continue
            if "error" in r:
                L.append(f"{s:<11} error: {r['error']}"[:300])
                continue
            c = r["commit"]
            cyc = c["packets"] * c["busy_cycles_per_packet"] / c["created"] \
                if c.get("created") and c.get("busy_cycles_per_packet") else None
            v = c.get("conns_per_s_per_core")
            base = r.get("no_fw")
            L.append(f"{s:<11} {ct._f(v / 1e6 if v else None, '{:.3f}'):>8}"
                     f" {ct._f(cyc, '{:.0f}'):>13} {ct._f(c.get('created'), '{}'):>9}"
                     f" {ct._f(r.get('bytes_per_conn'), '{:.0f}'):>7}"
                     f"  {'no firewall: ' + ct._f(base.get('busy_cycles_per_packet'), '{:.0f}') + ' cyc/pkt' if base else ''}")
    return "\n".join(L)


def limits(conns, seconds, log=print):
    """The stage's share measured apart, on core 1 (nothing else polling it by then): the
    tracker's established path alone (gl-bench-conntrack --established: the key from the
    frame, its checks and software checksum as net_pcap marks none, the lookup, the
    update) and the lookup limit (gl-bench-lookup-limit: DPDK's rte_hash bulk lookup of
    the same keys, built beforehand, nothing else). Figures in cycles per packet."""
    out = {}
    bdir = os.path.join(fwd.build_dir(), "bench")
    # (binary, the arguments before it, after it, the column of cycles in its table)
    runs = {"tracker": ("gl-bench-conntrack", ["taskset", "-c", "1"], ["--established"], 1),
            "rte_hash": ("gl-bench-lookup-limit", [], [], 2)}  # the EAL pins it to core 1
    for name, (binary, pre, post, col) in runs.items():
        path = os.path.join(bdir, binary)
        if not os.path.exists(path):
            continue
        sizes = [n for n in conns if n <= 4000000]
        log(f"limits: {name}...")
        try:
            p = subprocess.run(pre + [path] + post + ["--seconds", str(seconds),
                                                      "--conns", ",".join(map(str, sizes))],
                               capture_output=True, text=True, timeout=120 + 10 * len(sizes))
        except subprocess.TimeoutExpired:
            continue
        for ln in p.stdout.splitlines():
            f = ln.split()
            if len(f) >= 3 and f[0].isdigit() and int(f[0]) in sizes:
                out.setdefault(int(f[0]), {})[name] = float(f[col])
    return out


def bench(conns, new_conns, systems, a, log=print):
    res = {"repeat": a.repeat, "source": getattr(a, "source", "pcap"), "core1_others": ct.core1_others()}
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="gl-fwbench-") as work:
        if a.only in (None, "est"):
            res["est"] = est_rounds(conns, systems, a, work, log)
            if "gldp_plain" in systems and "gldp_fw" in systems:
                res["limits"] = limits(conns, 2.0, log)
        if a.only in (None, "new"):
            res["new"] = {}
            path = os.path.join(work, "fwnew.pcap")
            frames = fwd.write_frames(path, ct.conn_frames(new_conns, ct.NEW_NET, ct.NEW_PEER,
                                                           reply=False))
            try:
                for s in systems:
                    if s == "gldp_plain":
                        continue
                    log(f"firewall new connections: {s}...")
                    try:
                        res["new"][s] = run_new(s, new_conns, path, frames, a, work)
                    except Exception as e:  # noqa: BLE001
                        res["new"][s] = {"error": str(e)[-400:]}
                    log(f"    {ct.brief(res['new'][s])}")
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(path)
    res["elapsed_s"] = time.monotonic() - t0
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--conns", type=int, nargs="+", default=[1000, 100000])
    ap.add_argument("--new-conns", type=int, default=500000)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--only", choices=["est", "new"])
    ap.add_argument("--systems", nargs="+", choices=SYSTEMS, default=list(SYSTEMS))
    ap.add_argument("--pmd-nice", type=int, default=0)
    ap.add_argument("--source", choices=["pcap", "memif"], default="pcap",
                    help=ct.SOURCE_HELP)
    ap.add_argument("--json", help="write the figures to this file")
    ap.add_argument("--perf", metavar="DIR",
                    help="perf record -C 1 during each established-traffic measurement and "
                         "new-connection pass, into DIR")
    a = ap.parse_args()
    if a.perf:
        os.makedirs(a.perf, exist_ok=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    res = bench(a.conns, a.new_conns, a.systems, a, log=lambda m: print(m, flush=True))
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo")
                if ln.startswith("model name")), "?")
    print()
    print(f"firewall, cpu: {cpu}, load average {os.getloadavg()[0]:.2f},"
          f" {res['elapsed_s']:.0f} s; other programs polling core 1 at the start: "
          f"{', '.join(res['core1_others']) or 'none'}")
    print(tables(res))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=2, default=str)


if __name__ == "__main__":
    main()
