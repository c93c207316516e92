#!/usr/bin/python3
"""ESP through gldp's whole pipeline, next to the raw AEAD limit measured in the same run.

The rig: a net_pcap port with infinite_rx=1 replaying 1000 UDP flows of one frame size,
one megaflow in_port(1) -> an ESP port (gl_esp over a net_null underlay), its group's
outbound SA for PMD 0; one PMD on core 1. What leaves the underlay per second is the
encrypted rate (parse, EMC, actions, the ESP port's encryption burst, underlay header, tx).
The same rig without ESP (in -> net_null) is the pipeline's own cost, and
`gl-bench-esp` (raw ipsec-mb / libsodium AEAD on the same core, no packet I/O) the
crypto limit: both measured in the same run, figures only, nothing asserted.

Decryption is not measured here: a replayed capture of ESP packets is a replay attack
(the anti-replay window drops it); `gl-bench-esp` measures decap with anti-replay.

  sudo /usr/bin/python3 bench/esp_pipeline.py [--sizes 64,512,1400] [--seconds 4]
        [--ciphers aes256-gcm,chacha20-poly1305] [--backend ipsec-mb] [--json out.json]
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import forwarding  # noqa: E402 - build_dir, write_pcap, kill_group, pcap_packets

KEY = bytes((i * 7 + 1) & 0xff for i in range(36)).hex()


def measure_gldp(pcap, seconds, workdir, cipher=None, backend="ipsec-mb"):
    """Mpps leaving the sink port; with cipher, through an ESP port with that cipher."""
    mbufs = max(32767, 2 * forwarding.pcap_packets(pcap) + 16384)
    p, dpctl_cmd, log = forwarding.start_gldp(
        workdir, [("in", f"net_pcap0,rx_pcap={pcap},infinite_rx=1"), ("ul", "net_null0,no-rx=1")],
        mbufs)

    def dpctl(*args):
        return subprocess.run(dpctl_cmd + list(args), check=True, capture_output=True,
                              text=True).stdout

    try:
        if cipher:
            dpctl("add-port", "esp1", "gl_esp,underlay=ul,group=1,local=192.0.2.1,remote=192.0.2.2")
            dpctl("add-sa", "spi=0x1001", "dir=out", "group=1", "pmd=0", f"cipher={cipher}",
                  f"backend={backend}", f"key={KEY}", "local=192.0.2.1", "remote=192.0.2.2",
                  "src_mac=02:00:00:00:ee:01", "dst_mac=02:00:00:00:ee:02")
            dpctl("add-flow", "in_port(1)", "3")
        else:
            dpctl("add-flow", "in_port(1)", "2")
        time.sleep(2)  # warm-up: EMC filled
        s0, t0 = json.loads(dpctl("show", "--json")), time.time()
        time.sleep(seconds)
        s1, t1 = json.loads(dpctl("show", "--json")), time.time()

        def tx(s):
            return next(x for x in s["ports"] if x["name"] == "ul")["tx_packets"]

        pps = (tx(s1) - tx(s0)) / (t1 - t0)
        pm0, pm1 = s0["pmds"][0], s1["pmds"][0]
        busy = pm1["busy_cycles"] - pm0["busy_cycles"]
        pk = pm1["packets"] - pm0["packets"]
        drops = {k: v - s0["drops"].get(k, 0) for k, v in s1["drops"].items()
                 if v - s0["drops"].get(k, 0)}  # during the measurement
        return {"mpps": pps / 1e6, "busy_cycles_per_packet": busy / pk if pk else None,
                "drops": drops}
    finally:
        forwarding.kill_group(p)
        log.close()


def raw_aead(sizes):
    """gl-bench-esp on core 1: {(backend, cipher, size, op): Mpps}."""
    out = subprocess.run(["taskset", "-c", "1",
                          os.path.join(forwarding.build_dir(), "bench", "gl-bench-esp"),
                          "--ms", "1000"], check=True, capture_output=True, text=True).stdout
    res = {}
    for line in out.splitlines():
        m = re.match(r"(\S+)\s+(\S+)\s+(\d+)\s+(raw|encap|decap)\s+([\d.]+)", line)
        if m and int(m.group(3)) in sizes:
            res[(m.group(1), m.group(2), int(m.group(3)), m.group(4))] = float(m.group(5))
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="64,512,1400", help="frame sizes (64,512,1400)")
    ap.add_argument("--ciphers", default="aes256-gcm,chacha20-poly1305")
    ap.add_argument("--backend", default="ipsec-mb", choices=["ipsec-mb", "sodium"])
    ap.add_argument("--seconds", type=float, default=4.0, help="measurement time per point")
    ap.add_argument("--json", help="write the figures to this file")
    a = ap.parse_args()
    sizes = [int(x) for x in a.sizes.split(",")]
    ciphers = a.ciphers.split(",")
    work = tempfile.mkdtemp(prefix="gl-espbench-")
    rows = []
    try:
        raw = raw_aead(sizes)
        for size in sizes:
            pcap = os.path.join(work, f"udp{size}.pcap")
            forwarding.write_pcap(pcap, 1000, size)
            plain = measure_gldp(pcap, a.seconds, work)
            for c in ciphers:
                r = measure_gldp(pcap, a.seconds, work, cipher=c, backend=a.backend)
                lim = raw.get((a.backend, c, size, "raw"))
                rows.append({"size": size, "cipher": c, "backend": a.backend,
                             "esp_mpps": r["mpps"],
                             "esp_gbps": r["mpps"] * size * 8 / 1e3,
                             "busy_cycles_per_packet": r["busy_cycles_per_packet"],
                             "drops": r["drops"], "plain_mpps": plain["mpps"],
                             "raw_aead_mpps": lim,
                             "of_raw": r["mpps"] / lim if lim else None,
                             "crypto_encap_mpps": raw.get((a.backend, c, size, "encap"))})
                print(f"  {size} B {c}: {r['mpps']:.2f} Mpps", flush=True)
    finally:
        subprocess.run(["rm", "-rf", work])
    print(f"\nESP encrypt through gldp's pipeline ({a.backend}, tunnel mode, 1000 UDP flows, "
          f"1 PMD core), next to the raw AEAD on the same core (gl-bench-esp) and gldp "
          f"without ESP, same run")
    print(f"{'size':>5} {'cipher':<18} {'ESP Mpps':>9} {'Gbit/s':>7} {'cyc/pkt':>8} "
          f"{'raw AEAD':>9} {'of raw':>7} {'no-ESP Mpps':>12}")
    for r in rows:
        print(f"{r['size']:>5} {r['cipher']:<18} {r['esp_mpps']:>9.2f} {r['esp_gbps']:>7.2f} "
              f"{(r['busy_cycles_per_packet'] or 0):>8.0f} {(r['raw_aead_mpps'] or 0):>9.2f} "
              f"{(r['of_raw'] or 0) * 100:>6.0f}% {r['plain_mpps']:>12.2f}"
              + (f"  drops {r['drops']}" if r["drops"] else ""))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"date": time.strftime("%Y-%m-%d %H:%M:%S"), "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
