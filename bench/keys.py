#!/usr/bin/python3
"""Keys negotiated by glctld, measured: the rig of integration:keys (two hypervisor
namespaces, each a gldp with af_packet ports and a glctld, one ovsdb-server), figures
only, nothing asserted.

  * handshakes per second per core: build/bench/gl-bench-handshake (next to X25519);
  * time from `glctl add-host` of the second host to the first UDP datagram carried
    encrypted between the VMs (probes every 10 ms);
  * rekey under load: gl-pktgen (64 B UDP, sequence numbers) from VM A's port to VM B's
    port through A's ESP port, the underlay and B's, at a fixed rate and as fast as it
    goes, each without rekeys and with a rekey every second (set-rekey 1), same run:
    lost / duplicates, received pps, rekeys done meanwhile, gldp's ESP drop counters.

Both gldp PMDs share core 1 and gl-pktgen runs on core 0 with everything else: the rates
are this 2-core VM's, not the datapath's; the comparison with and without rekeys is the
point.

  sudo /usr/bin/python3 bench/keys.py [--rate 50k] [--seconds 8] [--json out.json]
"""

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(TOP, "test", "integration"))
os.environ.setdefault("GL_BUILD_DIR", os.path.join(TOP, "build"))
from gltest import Env, binary, run  # noqa: E402
from test_keys import Cluster, IP_B, VM2  # noqa: E402


def esp_drops(hv):
    return {k: v for k, v in hv.drops().items() if k.startswith("esp_") and v}


def add_host_to_traffic(env, cl):
    # Static neighbours in the VMs: the first datagram must not wait for an ARP retry.
    i1, i2 = f"gl{env.tag}i1"[:15], f"gl{env.tag}i2"[:15]
    run(["ip", "-n", cl.ns1, "neigh", "replace", "10.0.0.2", "lladdr", "02:00:00:00:00:02",
         "dev", i1])
    run(["ip", "-n", cl.ns2, "neigh", "replace", "10.0.0.1", "lladdr", "02:00:00:00:00:01",
         "dev", i2])
    recv = ("import socket,time\n"
            "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind(('10.0.0.2',9))\n"
            "s.settimeout(20); s.recv(64); print(time.time())\n")
    r = subprocess.Popen(["ip", "netns", "exec", cl.ns2, "/usr/bin/python3", "-c", recv],
                         stdout=subprocess.PIPE, text=True)
    send = ("import socket,time\n"
            "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
            "t=time.time()\n"
            "while time.time()-t<20:\n"
            "  s.sendto(b'probe',('10.0.0.2',9)); time.sleep(0.01)\n")
    p = subprocess.Popen(["ip", "netns", "exec", cl.ns1, "/usr/bin/python3", "-c", send])
    time.sleep(0.5)
    t0 = time.time()
    if os.environ.get("GL_DEBUG_T0"):
        print("t0", time.strftime("%H:%M:%S", time.gmtime(t0)), f"{t0 % 1:.3f}")
    cl.a.glctl("add-host", "hvB", IP_B, cl.b.pub)
    t_cmd = time.time() - t0
    out, _ = r.communicate(timeout=30)
    p.kill()
    p.wait()
    return float(out.strip()) - t0 if out.strip() else None, t_cmd


def pktgen(env, cl, rate, seconds, i1, i2):
    cmd = ["ip", "netns", "exec", cl.ns1, binary("gl-pktgen"), "--tx",
           f"net_af_packet0,iface={i1}", "--rx", f"net_af_packet1,iface={i2}",
           "--src-mac", "02:00:00:00:00:01", "--dst-mac", "02:00:00:00:00:02",
           "--size", "64", "--duration", str(seconds), "--lcores", "0", "--json", "-",
           "--quiet"]
    if rate:
        cmd += ["--rate", rate]
    r = run(cmd, timeout=seconds + 60)
    return json.loads(r.stdout)


def rekeys(cl):
    return cl.a.keys()["counters"]["rekeys"] + cl.b.keys()["counters"]["rekeys"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rate", default="20k", help="the fixed rate (gl-pktgen --rate)")
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()
    out = {}

    hb = subprocess.run(["taskset", "-c", "1", binary("gl-bench-handshake"), "--json", "-"],
                        capture_output=True, text=True, check=True,
                        env=dict(os.environ))
    print(hb.stdout.rsplit("{", 1)[0].rstrip())
    out["handshake"] = json.loads("{" + hb.stdout.rsplit("{", 1)[1])

    with Env("bk") as env:
        cl = Cluster(env, add_b=False)
        t_traffic, t_cmd = add_host_to_traffic(env, cl)
        print(f"\nadd-host -> first datagram delivered encrypted: "
              f"{t_traffic * 1000:.0f} ms (glctl add-host itself {t_cmd * 1000:.0f} ms)")
        out["add_host_to_traffic_ms"] = round(t_traffic * 1000, 1)
        # gl-pktgen sends from VM A's port and receives on VM B's: both veth ends in one
        # namespace, without addresses (the kernel there stays out of it).
        i1, i2 = f"gl{env.tag}i1"[:15], f"gl{env.tag}i2"[:15]
        run(["ip", "-n", cl.ns2, "link", "set", i2, "netns", cl.ns1])
        for dev in (i1, i2):
            run(["ip", "-n", cl.ns1, "addr", "flush", "dev", dev])
            run(["ip", "-n", cl.ns1, "link", "set", dev, "up"])
        print(f"\nrekey under load: 64 B UDP, {args.seconds} s per run, gl-pktgen on core 0, "
              "both PMDs on core 1")
        print(f"{'run':28s} {'sent':>9s} {'received':>9s} {'rx pps':>9s} {'lost':>6s} "
              f"{'dup':>4s} {'rekeys':>6s}  ESP drops (A / B)")
        out["runs"] = []
        for rate in (args.rate, None):
            for rk in (86400, 1):
                cl.a.glctl("set-rekey", str(rk))
                time.sleep(2.5)  # (after rekey 1 s: the last rekeys settle)
                d0 = (esp_drops(cl.a), esp_drops(cl.b))
                k0 = rekeys(cl)
                j = pktgen(env, cl, rate, args.seconds, i1, i2)
                k1 = rekeys(cl)
                d1 = (esp_drops(cl.a), esp_drops(cl.b))
                dd = [{k: v - d0[i].get(k, 0) for k, v in d1[i].items() if v != d0[i].get(k, 0)}
                      for i in (0, 1)]
                name = f"{rate or 'max'} pps, " + ("rekey every 1 s" if rk == 1 else "no rekey")
                rx = j["rx"]
                print(f"{name:28s} {j['tx']['packets']:9d} {rx['packets']:9d} "
                      f"{rx['pps']:9.0f} {rx['lost']:6d} {rx['duplicates']:4d} {k1 - k0:6d}  "
                      f"{dd[0] or '-'} / {dd[1] or '-'}")
                out["runs"].append({"rate": rate or "max", "rekey_s": rk, "sent": j["tx"]["packets"],
                                    "received": rx["packets"], "rx_pps": rx["pps"],
                                    "lost": rx["lost"], "duplicates": rx["duplicates"],
                                    "rekeys": k1 - k0, "esp_drops": dd})
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
