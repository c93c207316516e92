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
import tempfile
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


def pipeline(seconds):
    """ESP through gldp's whole pipeline at full speed (bench/esp_pipeline.py's rig: a
    net_pcap port replaying 1000 UDP flows of 64 B into an ESP port over a net_null
    underlay, PMD on core 1) with the SAs negotiated by glctld, without rekeys and with a
    rekey every second, same run. The peer host is a second gldp (PMD on core 0) with an
    ESP port back, and its glctld; the glctlds talk over a veth pair between two
    namespaces. Returns {"no_rekey": {...}, "rekey_1s": {...}}."""
    sys.path.insert(0, HERE)
    import forwarding
    from test_glctld import SCHEMA, ctl_binary, wait_for
    out = {}
    with Env("bq") as env:
        tmp = tempfile.mkdtemp(prefix=f"gl{env.tag}-")
        env.files.append(tmp)
        pcap = os.path.join(tmp, "in.pcap")
        forwarding.write_pcap(pcap, 1000, 64)
        mbufs = max(32767, 2 * forwarding.pcap_packets(pcap) + 16384)
        pa, dpa, loga = forwarding.start_gldp(
            tmp, [("in", f"net_pcap0,rx_pcap={pcap},infinite_rx=1"), ("ul", "net_null0,no-rx=1")],
            mbufs)
        env.procs.append((pa, loga.name))
        sock_b = os.path.join(tmp, "b.sock")
        env.launch_gldp([binary("gldp"), "--socket", sock_b, "--pmd-cores", "0", "--control-core", "1",
                         "--port", "ul=net_null1,no-rx=1"], sock_b, "gldp-b")

        def dpctl(cmd, *args):
            return run(cmd + list(args)).stdout
        dpb = [binary("gl-dpctl"), "--socket", sock_b]
        dpctl(dpa, "add-port", "esp1", "gl_esp,underlay=ul,group=1,local=192.0.2.1,remote=192.0.2.2")
        dpctl(dpa, "add-flow", "in_port(1)", "3")
        dpctl(dpb, "add-port", "esp1", "gl_esp,underlay=ul,group=1,local=192.0.2.2,remote=192.0.2.1")
        # The hosts' kernels: a veth pair between two namespaces, for the handshakes.
        nss = []
        for n in ("a", "b"):
            ns = f"gl{env.tag}{n}"
            run(["ip", "netns", "add", ns])
            env.netns.append(ns)
            nss.append(ns)
        run(["ip", "link", "add", f"gl{env.tag}va", "type", "veth", "peer", "name", f"gl{env.tag}vb"])
        for ns, dev, ip in ((nss[0], f"gl{env.tag}va", "192.0.2.1"),
                            (nss[1], f"gl{env.tag}vb", "192.0.2.2")):
            run(["ip", "link", "set", dev, "netns", ns])
            run(["ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", dev])
            run(["ip", "-n", ns, "link", "set", dev, "up"])
        db = os.path.join(tmp, "gl.db")
        db_sock = os.path.join(tmp, "db.sock")
        run(["ovsdb-tool", "create", db, SCHEMA])
        env.start(["ovsdb-server", "--no-chdir", f"--remote=punix:{db_sock}",
                   f"--unixctl={tmp}/db.ctl", db], "ovsdb")
        wait_for(lambda: os.path.exists(db_sock), what="ovsdb-server")
        glctl = [ctl_binary("glctl"), "--db", f"unix:{db_sock}"]
        keys = {}
        for n, ns, sock, ip in (("hvA", nss[0], os.path.join(tmp, "gldp.sock"), "192.0.2.1"),
                                ("hvB", nss[1], sock_b, "192.0.2.2")):
            key = os.path.join(tmp, f"{n}.key")
            pub = run([ctl_binary("glctld"), "--gen-key", key]).stdout.strip()
            run(glctl + ["add-host", n, ip, pub])
            mgmt = os.path.join(tmp, f"{n}.mgmt")
            env.start(["ip", "netns", "exec", ns, ctl_binary("glctld"), "--db", f"unix:{db_sock}",
                       "--host", n, "--gldp-socket", sock, "--mgmt-socket", mgmt,
                       "--key-file", key], f"glctld-{n}")
            keys[n] = mgmt

        def kj(n):
            r = run([ctl_binary("glctl"), "--mgmt-socket", keys[n], "--json", "keys"],
                    check_rc=False)
            return json.loads(r.stdout) if r.returncode == 0 else None
        wait_for(lambda: all(k and k["peers"] and k["peers"][0]["active"]
                             for k in (kj("hvA"), kj("hvB"))), timeout=30, what="sessions")

        def measure(name):
            def show():
                return json.loads(dpctl(dpa, "show", "--json"))
            s0, t0 = show(), time.time()
            r0 = kj("hvA")["counters"]["rekeys"] + kj("hvB")["counters"]["rekeys"]
            time.sleep(seconds)
            s1, t1 = show(), time.time()
            r1 = kj("hvA")["counters"]["rekeys"] + kj("hvB")["counters"]["rekeys"]

            def tx(s):
                return next(x for x in s["ports"] if x["name"] == "ul")["tx_packets"]
            drops = {k: v - s0["drops"].get(k, 0) for k, v in s1["drops"].items()
                     if v - s0["drops"].get(k, 0)}
            out[name] = {"mpps": (tx(s1) - tx(s0)) / (t1 - t0) / 1e6, "rekeys": r1 - r0,
                         "drops": drops}
        for rk, name in ((86400, "no_rekey"), (1, "rekey_1s"), (86400, "no_rekey_again")):
            run(glctl + ["set-rekey", str(rk)])
            time.sleep(3)
            measure(name)
    return out


def rekeys(cl):
    return cl.a.keys()["counters"]["rekeys"] + cl.b.keys()["counters"]["rekeys"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rate", default="20k", help="the fixed rate (gl-pktgen --rate)")
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--only", choices=["pipeline"], help="only the full-speed ESP pipeline part")
    args = ap.parse_args()
    out = {}
    if args.only == "pipeline":
        out["pipeline"] = p = pipeline(args.seconds)
        print("ESP pipeline (64 B, 1000 flows, PMD core 1), SAs from glctld:")
        for k, v in p.items():
            print(f"  {k:16s} {v['mpps']:6.2f} Mpps  rekeys {v['rekeys']:3d}  drops {v['drops'] or '-'}")
        if args.json:
            with open(args.json, "w") as f:
                json.dump(out, f, indent=1)
        return

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
