#!/usr/bin/python3
"""Flow set-up rate through Open vSwitch: OVS with datapath type gl next to OVS-DPDK.

New megaflows per second along the whole path miss -> upcall -> ofproto translation ->
flow install, for ovs-vswitchd-gl + gldp (datapath_type=gl) and Debian's OVS-DPDK
(ovs-vswitchd-dpdk, datapath_type=netdev), one PMD on core 1 each, in one run.

The rig (the same for both):
  * a net_pcap port "in" replaying N 64-byte UDP frames that differ in their Ethernet
    source address, over and over (infinite_rx=1), and a net_null port "out";
  * OpenFlow, before "in" is added:
      priority=20,in_port=in,actions=drop           (the gate)
      priority=10,dl_src=00:00:00:00:00:01,actions=drop   (matches no packet)
      priority=1,actions=output:out
    While the gate is there, all of "in"'s traffic is one megaflow (in_port only). The
    dl_src rule makes OVS's classifier look at dl_src for everything below the gate, so
    once the gate is deleted every frame needs its own megaflow (full source MAC): N
    frames, N new megaflows. (L4 ports or IP addresses would not do: OVS's prefix
    tries unwildcard only a few bits of them.)
  * The clock starts when `ovs-ofctl del-flows --strict` removes the gate (traffic is
    already flowing, ports and caches are warm) and stops when the datapath holds N
    megaflows, sampled with `dpctl/show` ("flows: ...") every 10 ms on both, over one
    unixctl connection (no ovs-appctl process per sample).
    Misses of flows not yet installed come round again (the pcap loops), so each
    datapath also sees repeated misses for the same flow, as with real new connections.

Prints megaflows per second per system and the ratio; figures only, nothing asserted.
--json FILE writes them. bench_flow_setup() is the function other scripts call.

  sudo bench/flow_setup_ovs.py --flows 5000 --repeat 3
"""

import argparse
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import forwarding  # noqa: E402 - OvsDpdk, build_dir, pcap helpers

DROP_RULE = "priority=10,dl_src=00:00:00:00:00:01,actions=drop"


def write_mac_pcap(path, n_flows):
    """n_flows 64-byte UDP frames, frame i from Ethernet source 02:00:<i as 4 bytes>."""
    frame_len = 60
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        udp_len = frame_len - 14 - 20
        ip = struct.pack("!BBHHHBBHII", 0x45, 0, 20 + udp_len, 0, 0, 64, 17, 0,
                         0x0A000001, 0x0A640001)
        csum = sum((ip[j] << 8) | ip[j + 1] for j in range(0, 20, 2))
        while csum >> 16:
            csum = (csum & 0xFFFF) + (csum >> 16)
        ip = ip[:10] + struct.pack("!H", ~csum & 0xFFFF) + ip[12:]
        udp = struct.pack("!HHHH", 1024, 5001, udp_len, 0) + bytes(udp_len - 8)
        for i in range(n_flows):
            eth = bytes.fromhex("020000000002") + b"\x02\x00" + struct.pack("!I", i + 16)
            frame = eth + b"\x08\x00" + ip + udp
            f.write(struct.pack("<IIII", 0, i, len(frame), len(frame)) + frame)


class Unixctl:
    """A persistent connection to ovs-vswitchd's unixctl socket (JSON-RPC, as ovs-appctl
    speaks it). Sampling with `ovs-appctl` would start a process every 20 ms on core 0,
    which datapath gl's upcall handler shares while OVS-DPDK translates on its PMD core:
    the sampler itself would slow one side down."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(path)
        self.buf = ""
        self.id = 0
        self.dec = json.JSONDecoder()

    def __call__(self, method, *params):
        self.id += 1
        self.sock.sendall(json.dumps({"method": method, "params": list(params),
                                      "id": self.id}).encode())
        while True:
            try:
                msg, end = self.dec.raw_decode(self.buf.lstrip())
                self.buf = self.buf.lstrip()[end:]
                if msg.get("id") == self.id:
                    if msg.get("error"):
                        raise RuntimeError(f"{method}: {msg['error']}")
                    return msg.get("result") or ""
                continue
            except ValueError:
                pass
            data = self.sock.recv(65536)
            if not data:
                raise RuntimeError("unixctl connection closed")
            self.buf += data.decode()

    def close(self):
        self.sock.close()


def dp_flows(appctl):
    """Megaflows in the datapath, from `ovs-appctl dpctl/show` ('flows: N')."""
    m = re.search(r"^\s*flows:\s*(\d+)", appctl("dpctl/show"), re.M)
    return int(m.group(1)) if m else 0


GATE = "priority=20,in_port=2"


def settle(appctl, timeout=30):
    """Waits until the datapath's flow count stood still for 1.5 s; returns it.

    That is the gate's megaflow, and with datapath gl also exact-match drop flows for
    frames that arrived before ofproto knew the new port (OVS installs those for upcalls
    from unknown ports, with the kernel datapath as with gl; dpif-netdev drops such
    packets instead). The looping traffic keeps them alive and the revalidator adopts
    them; when the gate opens they are modified, not set up, so the rate counts only the
    flows installed after the gate opened. (Flushing them does not work: dpctl/del-flows
    leaves their ukeys behind, which make OVS ignore upcalls with the same UFID, and
    revalidator/purge races with the handlers under load in OVS 3.1: "Invalid ukey
    transition 5->4", abort.)"""
    time.sleep(0.5)
    deadline = time.monotonic() + timeout
    stable_since, last = time.monotonic(), None
    while time.monotonic() < deadline:
        n = dp_flows(appctl)
        if n != last:
            stable_since, last = time.monotonic(), n
        if n >= 1 and time.monotonic() - stable_since > 1.5:
            return n
        time.sleep(0.1)
    raise RuntimeError(f"datapath did not settle (flows: {last})")


def watch(appctl, n_flows, timeout, open_gate):
    """Opens the gate, then samples the megaflow count until n_flows exist, or it stops
    growing for 3 s, or 'timeout'. The clock starts when `ovs-ofctl del-flows` returned
    (OVS committed the change); a sample's time is the middle of its appctl call, and the
    time of the N-th flow is interpolated between the two samples around it."""
    before = settle(appctl)
    g0 = time.monotonic()
    open_gate()
    t0 = time.monotonic()
    samples = [(0.0, 0)]
    last_change = t0
    while True:
        a = time.monotonic()
        n = dp_flows(appctl)
        b = time.monotonic()
        if n != samples[-1][1]:
            last_change = b
        samples.append(((a + b) / 2 - t0, n))
        if n >= n_flows or b - t0 > timeout or b - last_change > 3.0:
            break
        time.sleep(0.01)
    reached = min(samples[-1][1], n_flows)
    # First sample at or above the final count, and the one before it.
    k = next(i for i, (_, n) in enumerate(samples) if n >= reached)
    (ta, na), (tb, nb) = samples[max(k - 1, 0)], samples[k]
    secs = tb if nb == na else ta + (reached - na) / (nb - na) * (tb - ta)
    # Before: the gate's megaflow (deleted when it opens) and exact-match flows that
    # stay; the flows set up after the gate opened are the rest.
    new_flows = reached - (before - 1)
    return {"flows": n_flows, "reached": samples[-1][1], "flows_before": before,
            "new_flows": new_flows, "seconds": round(secs, 4),
            "megaflows_per_s": round(new_flows / secs) if secs > 0 else None,
            "gate_delete_s": round(t0 - g0, 4), "samples": len(samples) - 1,
            "curve": [(round(t, 3), n) for t, n in samples[:: max(1, len(samples) // 12)]]}


def run_ovs_dpdk(pcap, n_flows, workdir, hugepages, timeout):
    ports = [("out", "net_null0,no-rx=1")]
    flows = [GATE + ",actions=drop", DROP_RULE, "priority=1,actions=output:1"]
    with forwarding.OvsDpdk(workdir, hugepages, ports, flows) as ovs:
        subprocess.run(ovs.vsctl + ["add-port", ovs.bridge, "in", "--", "set", "Interface", "in",
                                    "type=dpdk",
                                    f"options:dpdk-devargs=net_pcap0,rx_pcap={pcap},"
                                    "infinite_rx=1", "ofport_request=2"],
                       check=True, env=ovs.env, capture_output=True)
        mgmt = f"unix:{os.path.join(ovs.run_dir, ovs.bridge + '.mgmt')}"

        def open_gate():
            subprocess.run(["ovs-ofctl", "del-flows", "--strict", mgmt, GATE], check=True,
                           env=ovs.env)
        ctl = Unixctl(ovs.ctl)
        try:
            r = watch(ctl, n_flows, timeout, open_gate)
        finally:
            ctl.close()
        m = re.search(r"lost:(\d+)", ovs.appctl("dpctl/show"))
        r["upcalls_lost"] = int(m.group(1)) if m else None
        return r


def run_ovs_gl(pcap, n_flows, workdir, timeout):
    os.environ.setdefault("GL_BUILD_DIR", forwarding.build_dir())
    sys.path.insert(0, os.path.join(TOP, "test", "integration"))
    sys.path.insert(0, os.path.join(TOP, "test", "integration", "ovs"))
    import ovsgl  # noqa: E402 - ovsdb-server + gldp + ovs-vswitchd-gl, cleaned up on exit
    mbufs = max(32767, 2 * n_flows + 16384)
    with ovsgl.OvsEnv("fs") as env:
        env.ovsdb()
        env.gldp(extra=["--mbufs", str(mbufs)])
        env.vswitchd()
        # ovs-vswitchd's threads stay off the PMD core, as OVS-DPDK's do through its
        # dpdk-lcore-mask (threads created later inherit the main thread's affinity).
        subprocess.run(["taskset", "-a", "-p", "-c", "0", str(env.vswitchd_proc.pid)],
                       capture_output=True)
        br = env.bridge()
        env.add_port(br, "out", "type=dpdk", "options:dpdk-devargs=net_null0,no-rx=1",
                     "ofport_request=1")
        env.wait_ports(br, ["out"])
        env.ofctl("del-flows", br)
        for f in (GATE + ",actions=drop", DROP_RULE, "priority=1,actions=output:1"):
            env.ofctl("add-flow", br, f)
        env.add_port(br, "in", "type=dpdk",
                     f"options:dpdk-devargs=net_pcap0,rx_pcap={pcap},infinite_rx=1",
                     "ofport_request=2")
        env.wait_ports(br, ["in"])

        def appctl(*args):
            return env.appctl(*args, check_rc=False).stdout

        def open_gate():
            env.ofctl("del-flows", "--strict", br, GATE)
        s0 = env.show()
        ctl = Unixctl(env.ctl)
        try:
            r = watch(ctl, n_flows, timeout, open_gate)
        finally:
            ctl.close()
        s1 = env.show()
        d0, d1 = s0["drops"], s1["drops"]
        # Upcalls handed to ovs-vswitchd's handlers: above new_flows, the repeated misses.
        r["upcalls_delivered"] = s1["upcalls_delivered"] - s0["upcalls_delivered"]
        r["upcalls_rate_limited"] = d1["upcall_rate_limit"] - d0["upcall_rate_limit"]
        r["upcalls_lost"] = sum(d1[k] - d0[k] for k in ("upcall_queue_full",
                                                         "upcall_undelivered"))
        return r


def bench_flow_setup(n_flows=5000, repeat=1, hugepages=None, timeout=120, workdir=None):
    """Runs both systems 'repeat' times, alternating; returns the medians and rounds."""
    work = workdir or tempfile.mkdtemp(prefix="gl-fsbench-")
    try:
        pcap = os.path.join(work, "macs.pcap")
        write_mac_pcap(pcap, n_flows)
        huge = forwarding.hugepages_usable() if hugepages is None else hugepages
        runs = {"ovs_gl": [], "ovs_dpdk": []}
        for rnd in range(repeat):
            for s in runs:
                print(f"round {rnd + 1}/{repeat}: {s}, {n_flows} megaflows...", flush=True)
                try:
                    if s == "ovs_gl":
                        runs[s].append(run_ovs_gl(pcap, n_flows, work, timeout))
                    else:
                        runs[s].append(run_ovs_dpdk(pcap, n_flows, work, huge, timeout))
                except Exception as e:  # noqa: BLE001 - report, go on with the other
                    runs[s].append({"error": str(e)[-500:]})
                print(f"    {runs[s][-1]}", flush=True)
        res = {"flows": n_flows, "hugepages": huge, "rounds": runs,
               "date": time.strftime("%Y-%m-%d %H:%M:%S")}
        for s, rs in runs.items():
            ok = sorted((r for r in rs if r.get("megaflows_per_s")),
                        key=lambda r: r["megaflows_per_s"])
            res[s] = ok[len(ok) // 2] if ok else rs[-1]
        g, o = res["ovs_gl"].get("megaflows_per_s"), res["ovs_dpdk"].get("megaflows_per_s")
        if g and o:
            res["ratio_ovs_gl_ovs_dpdk"] = round(g / o, 2)
        return res
    finally:
        if workdir is None:
            shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--flows", type=int, default=5000,
                    help="distinct megaflows (5000; OVS's dynamic flow limit starts at "
                         "10000)")
    ap.add_argument("--repeat", type=int, default=1, help="rounds (median reported)")
    ap.add_argument("--timeout", type=float, default=120, help="seconds per measurement")
    ap.add_argument("--json", help="write the figures to this file")
    a = ap.parse_args()
    res = bench_flow_setup(a.flows, a.repeat, timeout=a.timeout)
    print()
    print(f"flow set-up through OVS (miss -> upcall -> install), {a.flows} megaflows, "
          f"1 PMD core, median of {a.repeat}; load average {os.getloadavg()[0]:.2f}")
    print(f"{'system':<12}{'megaflows/s':>14}{'reached':>10}{'seconds':>10}")
    for k in ("ovs_gl", "ovs_dpdk"):
        r = res[k]
        if "error" in r:
            print(f"{k:<12}  error: {r['error'][:300]}")
            continue
        print(f"{k:<12}{r['megaflows_per_s'] or 0:>14}{r['reached']:>10}{r['seconds']:>10}")
    if "ratio_ovs_gl_ovs_dpdk" in res:
        print(f"OVS datapath gl / OVS-DPDK = {res['ratio_ovs_gl_ovs_dpdk']:.2f}x")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
