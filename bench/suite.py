#!/usr/bin/python3
"""The Goldilocks benchmark suite: every scenario, Goldilocks next to its peers, one run.

  /usr/bin/python3 bench/suite.py [--quick] [--out bench]

Writes bench/results/latest.json, bench/RESULTS.md (the latest run, with date, commit,
machine and versions) and PNG plots under bench/results/. Ratios to the peer measured in
the same run are the headline; absolute figures belong to the machine they were taken
on. A scenario whose capability does not exist yet is reported as "not yet", never
faked. Figures only: nothing is asserted.

Scenarios
  forwarding   1 / 1k / 100k UDP flows of 64 B, net_pcap (infinite_rx) -> one rule ->
               net_null, one PMD: gldp (gl-dpctl), OVS with datapath_type=gl,
               OVS-DPDK (netdev), dpdk-testpmd io (the I/O limit)
  tcp_cps      new TCP connections per second through the switch (gl-pktgen on veth):
               gldp, OVS datapath gl, OVS-DPDK; plain rules and the conntrack firewall
  flow_setup   flow installation through the API (gl-bench-flow-install)
  classifier   megaflow lookup cost (gl-bench-classifier)
  esp          ESP encrypt/decrypt next to the raw AEAD limit (gl-bench-esp), and ESP
               encryption through gldp's pipeline (bench/esp_pipeline.py)
  conntrack    bench/conntrack.py: established connections (1k / 100k, --ct-1m adds
               1M) through OVS datapath gl vs OVS-DPDK (ct(table=1), ct(commit)) and
               gldp alone (gl-dpctl ct flows); new connections per second; memory per
               connection; dump/flush of 1M connections while traffic runs
  firewall     bench/firewall.py: established connections (1k / 100k) through gldp's
               distributed-firewall stage vs gldp plain, gldp ct() and OVS-DPDK ct();
               new connections per second through the stage
  policy       gl-bench-policy: 10k rules / 1k groups / 10k workloads compiled, the time
               from a change to a new version for every port of a host
  rekey        loss during SA rotation                          (not yet)

On a server with NICs: see bench/README.md (PCI devargs, several PMD cores, a 1..N PMD
scaling run).
"""

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import forwarding  # noqa: E402

NOT_YET = "not yet"


def build_dir():
    return os.environ.get("GL_BUILD_DIR", os.path.join(TOP, "build"))


def find_bin(*rel):
    for r in rel:
        p = os.path.join(build_dir(), r)
        if os.path.exists(p):
            return p
    return None


def sh(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def machine():
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                if l.startswith("model name")), "?")
    ovs = sh(["/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk", "--version"]).stdout
    ovs = ovs.splitlines()[0] if ovs else "?"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "dpdk": sh(["pkg-config", "--modversion", "libdpdk"]).stdout.strip(),
        "ovs": ovs,
        "commit": sh(["git", "-C", TOP, "rev-parse", "--short", "HEAD"]).stdout.strip(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "hugepages": forwarding.hugepages_usable(),
        "load_average": os.getloadavg()[0],
    }


# ---- scenarios -------------------------------------------------------------------------

def forwarding_scenario(a, work):
    out = {}
    ovs_gl = find_bin("ovs/ovs-vswitchd-gl", "dataplane/ovs/ovs-vswitchd-gl",
                      "tools/ovs-vswitchd-gl")
    for flows in a.flows:
        pcap = os.path.join(work, f"flows{flows}.pcap")
        forwarding.write_pcap(pcap, flows)
        huge = forwarding.hugepages_usable()
        row = {}
        for system in ("gldp", "ovs_gl", "ovs_dpdk", "testpmd"):
            if system == "ovs_gl" and ovs_gl is None:
                row[system] = NOT_YET
                continue
            runs = []
            for _ in range(a.repeat):
                print(f"forwarding {flows} flows: {system}...", flush=True)
                try:
                    if system == "gldp":
                        runs.append(forwarding.bench_gldp(pcap, a.seconds, work))
                    elif system == "ovs_gl":
                        runs.append(forwarding.bench_ovs_gl(pcap, a.seconds, work, huge))
                    elif system == "ovs_dpdk":
                        runs.append(forwarding.bench_ovs(pcap, a.seconds, work, huge))
                    else:
                        runs.append(forwarding.bench_testpmd(pcap, a.seconds, huge))
                except Exception as e:  # noqa: BLE001 - a failed peer is reported, not fatal
                    runs.append({"error": str(e)[:300]})
            ok = sorted((r for r in runs if "error" not in r), key=lambda r: r["mpps"])
            if ok:
                med = dict(ok[len(ok) // 2])
                med.pop("drops", None)
                med["mpps_runs"] = [round(r["mpps"], 3) for r in ok]
                row[system] = med
            else:
                row[system] = runs[-1]
        og = row.get("ovs_gl")
        if isinstance(og, dict) and isinstance(row.get("ovs_dpdk"), dict) and og.get("mpps") \
                and row["ovs_dpdk"].get("mpps"):
            row["ratio_ovs_gl_ovs_dpdk"] = og["mpps"] / row["ovs_dpdk"]["mpps"]
        g, o = row.get("gldp"), row.get("ovs_dpdk")
        if isinstance(g, dict) and isinstance(o, dict) and g.get("mpps") and o.get("mpps"):
            row["ratio_gldp_ovs_dpdk"] = g["mpps"] / o["mpps"]
        t = row.get("testpmd")
        if isinstance(g, dict) and isinstance(t, dict) and g.get("mpps") and t.get("mpps"):
            row["ratio_gldp_testpmd"] = g["mpps"] / t["mpps"]
        out[str(flows)] = row
    return out


def tcp_cps_scenario(a, work):
    """New TCP connections per second: gl-pktgen's client and server on two veth pairs
    whose other ends are the switch's ports (port 1 <-> port 2): gldp, OVS with datapath
    gl and OVS-DPDK, each with plain forwarding rules and with the conntrack firewall
    (bench/conntrack.py's OF_TCP_CT / GL_TCP_CT: ct(commit) on port 1's new connections,
    established ones both ways)."""
    pktgen = find_bin("tools/pktgen/gl-pktgen")
    gldp = find_bin("dataplane/gldp")
    dpctl = find_bin("tools/gl-dpctl")
    if not (pktgen and gldp and dpctl):
        return {"gldp": "binaries missing", "ovs_dpdk": "binaries missing"}
    import conntrack  # noqa: E402 - the conntrack rules
    tag = f"glb{os.getpid() % 100000}"
    links, ends = [], []
    n = 2000 if a.quick else 20000
    out = {"ct": {}}
    try:
        for i in (1, 2):
            gen, dp = f"{tag}g{i}", f"{tag}d{i}"
            subprocess.run(["ip", "link", "add", gen, "type", "veth", "peer", "name", dp],
                           check=True)
            links.append(gen)
            for dev in (gen, dp):
                sh(["sysctl", "-qw", f"net.ipv6.conf.{dev}.disable_ipv6=1"])
                subprocess.run(["ip", "link", "set", dev, "up"], check=True)
            ends.append((gen, dp))
        switch_ports = [("p1", f"net_af_packet0,iface={ends[0][1]}"),
                        ("p2", f"net_af_packet1,iface={ends[1][1]}")]
        plain_of = ["in_port=1,actions=output:2", "in_port=2,actions=output:1"]
        plain_gl = [("in_port(1)", "2"), ("in_port(2)", "1")]

        def run_pktgen():
            # run_dpdk starts it again when its af_packet fanout group collides with the
            # switch's (DPDK 22.11 names it from the pid: test/integration/gltest.py).
            sys.path.insert(0, os.path.join(os.path.dirname(HERE), "test", "integration"))
            import gltest  # noqa: E402
            r = gltest.run_dpdk([pktgen, "--tx", f"net_af_packet8,iface={ends[0][0]}",
                                 "--rx", f"net_af_packet9,iface={ends[1][0]}", "--lcores", "0",
                                 "--quiet", "--json", "-", "--proto", "tcp", "--count", str(n),
                                 "--tcp-timeout", "5"], check_rc=False, timeout=300)
            s = json.loads(r.stdout)
            c = s["connections"]
            secs = s.get("elapsed_s") or s["tx"]["seconds"]
            return {"connections": n, "established": c["established"], "failed": c["failed"],
                    "seconds": secs,
                    "connections_per_s": c["established"] / secs if secs else None}

        rounds = 1 if a.quick else a.repeat

        def measure(flush):
            """run_pktgen() `rounds` times (the tracker flushed between them, so that every
            round starts from no connection): the median round by connections/s, with
            every round's figure."""
            runs = []
            for k in range(rounds):
                if k:
                    flush()
                    time.sleep(0.5)
                runs.append(run_pktgen())
            ok = sorted((r for r in runs if r.get("connections_per_s")),
                        key=lambda r: r["connections_per_s"])
            best = dict(ok[len(ok) // 2] if ok else runs[-1])
            best["rounds"] = [r.get("connections_per_s") for r in runs]
            return best

        for variant in ("plain", "ct"):
            res = out if variant == "plain" else out["ct"]
            gl_flows = plain_gl if variant == "plain" else conntrack.GL_TCP_CT
            of_flows = plain_of if variant == "plain" else conntrack.OF_TCP_CT
            print(f"tcp_cps {variant}: gldp, ovs_gl, ovs_dpdk...", flush=True)
            # gldp
            p = None
            try:
                sock = os.path.join(work, "cps.sock")
                args = [gldp, "--socket", sock, "--pmd-cores", "1"]
                for name, devargs in switch_ports:
                    args += ["--port", f"{name}={devargs}"]
                p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
                for _ in range(100):
                    if sh([dpctl, "--socket", sock, "show"]).returncode == 0:
                        break
                    time.sleep(0.1)
                conntrack.renice_pmd(p.pid, a.pmd_nice)
                for match, actions in gl_flows:
                    r = sh([dpctl, "--socket", sock, "add-flow", match, actions])
                    if r.returncode != 0:
                        raise RuntimeError(f"add-flow {match} {actions}: {r.stderr.strip()}")
                res["gldp"] = measure(lambda: sh([dpctl, "--socket", sock, "flush-conntrack"]))
                if variant == "ct":
                    r = sh([dpctl, "--socket", sock, "ct-get-nconns"])
                    res["gldp"]["conns_tracked"] = r.stdout.strip() if r.returncode == 0 \
                        else conntrack.MISSING
            except Exception as e:  # noqa: BLE001
                res["gldp"] = {"error": str(e)[:300]}
            finally:
                forwarding.kill_group(p)
            # OVS with datapath gl, the same ports and OpenFlow rules as OVS-DPDK
            if find_bin("ovs/ovs-vswitchd-gl"):
                try:
                    with forwarding.OvsGl("cps") as o:
                        for i, (name, devargs) in enumerate(switch_ports, 1):
                            o.add_port(name, devargs, i)
                        o.env.wait_ports(o.br, [name for name, _ in switch_ports])
                        o.env.ofctl("del-flows", o.br)
                        for f in of_flows:
                            o.env.ofctl("add-flow", o.br, f)
                        conntrack.renice_pmd(o.env.gldp_proc.pid, a.pmd_nice)
                        time.sleep(1)
                        res["ovs_gl"] = measure(lambda: o.env.appctl("dpctl/flush-conntrack"))
                        res["ovs_gl"]["megaflows"] = len(
                            o.env.appctl("dpctl/dump-flows").stdout.strip().splitlines())
                except Exception as e:  # noqa: BLE001
                    res["ovs_gl"] = {"error": str(e)[:300]}
            else:
                res["ovs_gl"] = NOT_YET
            # OVS-DPDK, the same ports and rules
            try:
                with forwarding.OvsDpdk(work, forwarding.hugepages_usable(), switch_ports,
                                        of_flows) as ovs:
                    time.sleep(3)
                    conntrack.renice_pmd(ovs.procs[-1].pid, a.pmd_nice)
                    res["ovs_dpdk"] = measure(lambda: ovs.appctl("dpctl/flush-conntrack"))
                    res["ovs_dpdk"]["megaflows"] = len(
                        ovs.appctl("dpctl/dump-flows").strip().splitlines())
            except Exception as e:  # noqa: BLE001
                res["ovs_dpdk"] = {"error": str(e)[:300]}
            g, og, o = (res.get(k) for k in ("gldp", "ovs_gl", "ovs_dpdk"))
            for name, x in (("ratio_gldp_ovs_dpdk", g), ("ratio_ovs_gl_ovs_dpdk", og)):
                if isinstance(x, dict) and isinstance(o, dict) and x.get("connections_per_s") \
                        and o.get("connections_per_s"):
                    res[name] = x["connections_per_s"] / o["connections_per_s"]
        out["note"] = ("generator on core 0, switch PMD on core 1; veth + af_packet; "
                       f"median of {rounds} round{'s' if rounds != 1 else ''} of {n} "
                       "connections, the tracker flushed between rounds") + (
            f"; PMD nice {a.pmd_nice}" if a.pmd_nice else "")
        return out
    finally:
        for l in links:
            sh(["ip", "link", "del", l])


def conntrack_scenario(a, work):
    """bench/conntrack.py: established-connection forwarding through OVS (datapath gl and
    OVS-DPDK) and gldp alone, new connections per second, memory per connection, dump and
    flush while traffic runs."""
    import conntrack  # noqa: E402
    conns = list(a.ct_conns) + ([1000000] if a.ct_1m and 1000000 not in a.ct_conns else [])
    res = conntrack.bench(conns=conns, new_conns=200000 if a.quick else 1000000,
                          seconds=a.seconds, warmup=2.0 if a.quick else 3.0,
                          pmd_nice=a.pmd_nice, workdir=work,
                          log=lambda m: print(m, flush=True))
    res["table"] = conntrack.tables(res)
    print(res["table"], flush=True)
    return res


def firewall_scenario(a, work):
    """bench/firewall.py: the firewall stage next to its peers, same run."""
    import types
    import firewall  # noqa: E402
    fa = types.SimpleNamespace(repeat=1 if a.quick else a.repeat, only=None,
                               seconds=a.seconds, warmup=2.0 if a.quick else 3.0,
                               pmd_nice=a.pmd_nice, perf=None)
    conns = [1000] if a.quick else list(a.ct_conns)
    res = firewall.bench(conns, 100000 if a.quick else 500000, list(firewall.SYSTEMS), fa,
                         log=lambda m: print(m, flush=True))
    res["table"] = firewall.tables(res)
    print(res["table"], flush=True)
    return res


def policy_scenario(a, work):
    b = find_bin("bench/gl-bench-policy")
    if not b:
        return NOT_YET
    r = sh([b, "--quick"] if a.quick else [b], timeout=900)
    out = r.stdout if r.returncode == 0 else "gl-bench-policy failed: " + (
        r.stdout + r.stderr)[-1000:]
    print(out, flush=True)
    return {"table": out.strip()}


def flow_setup_scenario(a, work):
    b = find_bin("bench/gl-bench-flow-install")
    gldp = find_bin("dataplane/gldp")
    if not b:
        return NOT_YET
    r = sh([b, "--gldp", gldp, "--flows", "20000" if a.quick else "100000"], timeout=600)
    rows = {}
    for line in r.stdout.splitlines():
        m = re.match(r"(\S.*?)\s{2,}([\d.]+)\s+(\d+)$", line)
        if m:
            rows[m.group(1).strip()] = {"seconds": float(m.group(2)),
                                        "flows_per_s": int(m.group(3))}
    out = {"gldp_api": rows}
    # Miss -> upcall -> ofproto -> install, OVS datapath gl vs OVS-DPDK (flow_setup_ovs.py).
    if find_bin("ovs/ovs-vswitchd-gl"):
        import flow_setup_ovs  # noqa: E402
        try:
            out["ovs_upcall_setup"] = flow_setup_ovs.bench_flow_setup(
                n_flows=2000 if a.quick else 10000, repeat=1 if a.quick else 3, workdir=work)
        except Exception as e:  # noqa: BLE001
            out["ovs_upcall_setup"] = {"error": str(e)[:300]}
    else:
        out["ovs_upcall_setup"] = NOT_YET
    return out


def classifier_scenario(a, work):
    b = find_bin("bench/gl-bench-classifier")
    if not b:
        return NOT_YET
    r = sh([b, "--quick"], timeout=900)
    rows = []
    for line in r.stdout.splitlines():
        m = re.match(r"(.+?)\s+(\d+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)$", line)
        if m:
            rows.append({"case": m.group(1).strip(), "rules": int(m.group(2)),
                         "subtables": int(m.group(3)), "ns_per_op": float(m.group(4)),
                         "cycles_per_op": float(m.group(5)), "mops": float(m.group(6))})
    return {"rows": rows}


def esp_scenario(a, work):
    b = find_bin("bench/gl-bench-esp")
    if not b:
        return NOT_YET
    r = sh([b, "--quick"] if a.quick else [b], timeout=900)
    # ESP through the whole pipeline (an ESP port), next to the raw AEAD, same run.
    out = os.path.join(work, "esp_pipeline.json")
    p = sh([sys.executable, os.path.join(HERE, "esp_pipeline.py"), "--json", out,
            "--seconds", "2" if a.quick else "4"], timeout=900)
    table = p.stdout[p.stdout.find("ESP encrypt through"):] if p.returncode == 0 else (
        "esp_pipeline.py failed: " + (p.stdout + p.stderr)[-1000:])
    pipeline = json.load(open(out)) if os.path.exists(out) else None
    return {"output": r.stdout[-6000:], "returncode": r.returncode,
            "pipeline_table": table.strip(), "pipeline": pipeline}


# ---- reporting -------------------------------------------------------------------------

def fmt(v, spec="{:.2f}"):
    if isinstance(v, dict):
        if "error" in v:
            return "error"
        return spec.format(v.get("mpps", 0))
    return str(v)


def write_markdown(res, path):
    m = res["machine"]
    dates = res.get("scenario_dates", {})
    when = ", ".join(f"{k} {v}" for k, v in dates.items()) or m["date"]
    L = ["# Benchmark results", "",
         f"Latest run of `bench/suite.py`: commit {m['commit']}; scenarios run at: {when}.",
         f"Machine: {m['cpu']}, {m['cores']} cores, kernel {m['kernel']}, DPDK {m['dpdk']},"
         f" {m['ovs']}, hugepages: {m['hugepages']}, load average at start"
         f" {m['load_average']:.2f}.",
         "Ratios to the peer measured in the same run are the headline; absolute figures"
         " belong to this machine.", "",
         "## Forwarding (64 B UDP, one rule, one PMD core)", "",
         "| flows | gldp Mpps | OVS datapath gl Mpps | OVS-DPDK Mpps | testpmd Mpps | gldp / OVS-DPDK | OVS gl / OVS-DPDK | gldp / testpmd |",
         "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    fw = res["forwarding"] if isinstance(res["forwarding"], dict) else {}
    for flows, row in fw.items():
        L.append(f"| {flows} | {fmt(row['gldp'])} | {fmt(row['ovs_gl'])} |"
                 f" {fmt(row['ovs_dpdk'])} | {fmt(row['testpmd'])} |"
                 f" {row.get('ratio_gldp_ovs_dpdk', 0):.2f}x |"
                 f" {row.get('ratio_ovs_gl_ovs_dpdk', 0):.2f}x |"
                 f" {row.get('ratio_gldp_testpmd', 0):.2f} |")
    L += ["", "Median of the rounds; every round's figure is in `results/latest.json`.", "",
          "## New TCP connections per second", ""]
    t = res["tcp_cps"]
    if isinstance(t, dict):
        L += ["| system | plain rules: established | failed | connections/s |"
              " conntrack firewall: established | failed | connections/s |",
              "|---|---:|---:|---:|---:|---:|---:|"]
        ct = t.get("ct") if isinstance(t.get("ct"), dict) else {}

        def cells(v):
            if isinstance(v, dict) and "connections_per_s" in v:
                return (f"{v['established']} of {v['connections']} | {v['failed']} |"
                        f" {v['connections_per_s']:.0f}")
            return f"{v if v is not None else 'not run'} | |"
        for k in ("gldp", "ovs_gl", "ovs_dpdk"):
            L.append(f"| {k} | {cells(t.get(k))} | {cells(ct.get(k))} |")
        for part, name in ((t, "plain rules"), (ct, "conntrack firewall")):
            rr = [f"{label} {part[key]:.2f}x" for key, label in
                  (("ratio_gldp_ovs_dpdk", "gldp / OVS-DPDK"),
                   ("ratio_ovs_gl_ovs_dpdk", "OVS datapath gl / OVS-DPDK")) if key in part]
            if rr:
                L.append(f"\n{name}: " + ", ".join(rr) + f" ({t.get('note', '')}).")
            per = [f"{k} " + "/".join(f"{x:.0f}" for x in part[k]["rounds"] if x)
                   for k in ("gldp", "ovs_gl", "ovs_dpdk")
                   if isinstance(part.get(k), dict) and part[k].get("rounds")]
            if per:
                L.append(f"{name}, connections/s per round: " + "; ".join(per) + ".")
    else:
        L.append(str(t))
    L += ["", "## Flow set-up", ""]
    fs = res["flow_setup"]
    if isinstance(fs, dict):
        L += ["| phase (through the datapath API) | flows/s |", "|---|---:|"]
        for k, v in fs["gldp_api"].items():
            L.append(f"| {k} | {v['flows_per_s']} |")
        L.append("")
        u = fs.get("ovs_upcall_setup")
        if isinstance(u, dict) and "ovs_gl" in u:
            def mps(v):
                return f"{v['megaflows_per_s']:.0f}" if isinstance(v, dict) and v.get("megaflows_per_s") else str(v)
            L.append(f"Miss → upcall → install through OVS ({u['flows']} megaflows, median):"
                     f" datapath gl {mps(u['ovs_gl'])}/s, OVS-DPDK {mps(u['ovs_dpdk'])}/s,"
                     f" ratio {u.get('ratio_ovs_gl_ovs_dpdk', '?')}x.")
        else:
            L.append(f"Miss → upcall → install through OVS: {u}.")
    else:
        L.append(str(fs))
    L += ["", "## Megaflow classifier (ns per lookup)", ""]
    c = res["classifier"]
    if isinstance(c, dict):
        L += ["| case | rules | subtables | ns/op | Mops/s |", "|---|---:|---:|---:|---:|"]
        for r in c["rows"]:
            L.append(f"| {r['case']} | {r['rules']} | {r['subtables']} | {r['ns_per_op']} |"
                     f" {r['mops']} |")
    L += ["", "## ESP", ""]
    e = res["esp"]
    L.append("```\n" + e["output"].strip() + "\n```" if isinstance(e, dict) else str(e))
    if isinstance(e, dict) and e.get("pipeline_table"):
        L += ["", "Through gldp's whole pipeline (`bench/esp_pipeline.py`: net_pcap in, an ESP "
              "port over a net_null underlay; the pcap port's copy of every frame is part of "
              "the cost):", "", "```\n" + e["pipeline_table"] + "\n```"]
    L += ["", "## Conntrack", ""]
    c = res.get("conntrack")
    if isinstance(c, dict) and c.get("table"):
        L += ["`bench/conntrack.py` (one PMD core, 64 B UDP; OVS datapath gl and OVS-DPDK with"
              " the same OpenFlow rules `ip,ct_state=-trk,actions=ct(table=1)`,"
              " `ip,ct_state=+trk+new,actions=ct(commit),output:2`,"
              " `ip,ct_state=+trk+est,actions=output:2`; gldp alone with the datapath flows"
              " they become, zone 1). Cycles per packet: TSC Hz / packets per second; busy:"
              " the PMD's own count. New connections: one pass over distinct 5-tuples"
              f" through `ct(commit)`; the scenario took"
              f" {res.get('scenario_seconds', {}).get('conntrack', '?')} s; other programs"
              f" polling core 1: {', '.join(c.get('core1_others') or []) or 'none'}"
              f"{', PMD nice ' + str(c['pmd_nice']) if c.get('pmd_nice') else ''}.",
              "", "```", c["table"], "```"]
    else:
        L.append(str(c))
    f = res.get("firewall")
    if isinstance(f, dict) and f.get("table"):
        L += ["", "## Distributed firewall", "",
              "`bench/firewall.py` (one PMD core, 64 B UDP, both directions; method:"
              " bench/README.md, \"The firewall stage\"); the scenario took"
              f" {res.get('scenario_seconds', {}).get('firewall', '?')} s.",
              "", "```", f["table"], "```"]
    pol = res.get("policy")
    if isinstance(pol, dict) and pol.get("table"):
        L += ["", "## Policy scale", "", "`build/bench/gl-bench-policy`:", "", "```",
              pol["table"], "```"]
    L += ["", "## Loss during rekey", "", res["rekey"], ""]
    with open(path, "w") as f:
        f.write("\n".join(L))


def plot(res, outdir):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    files = []
    fw = res["forwarding"] if isinstance(res["forwarding"], dict) else {}
    if not fw:
        return files
    systems = ["gldp", "ovs_gl", "ovs_dpdk", "testpmd"]
    labels = list(fw.keys())
    fig, ax = plt.subplots(figsize=(8, 4.5))
    width = 0.2
    for i, s in enumerate(systems):
        vals = [fw[f][s]["mpps"] if isinstance(fw[f][s], dict) and "mpps" in fw[f][s] else 0
                for f in labels]
        ax.bar([x + i * width for x in range(len(labels))], vals, width, label=s)
    ax.set_xticks([x + 1.5 * width for x in range(len(labels))])
    ax.set_xticklabels([f"{f} flows" for f in labels])
    ax.set_ylabel("Mpps (64 B, one PMD core)")
    ax.set_title(f"Forwarding — {res['machine']['cpu']}")
    ax.legend()
    p = os.path.join(outdir, "forwarding.png")
    fig.tight_layout()
    fig.savefig(p, dpi=100)
    files.append(p)
    c = res["classifier"]
    if isinstance(c, dict) and c["rows"]:
        fig, ax = plt.subplots(figsize=(8, 4.5))
        for rules in sorted({r["rules"] for r in c["rows"]}):
            pts = sorted((r["subtables"], r["ns_per_op"]) for r in c["rows"]
                         if r["rules"] == rules and r["case"].startswith("megaflow lookup_batch"))
            if pts:
                ax.plot([x for x, _ in pts], [y for _, y in pts], marker="o",
                        label=f"{rules} rules")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("subtables")
        ax.set_ylabel("ns per lookup (batch of 32)")
        ax.set_title("Megaflow classifier")
        ax.legend()
        p = os.path.join(outdir, "classifier.png")
        fig.tight_layout()
        fig.savefig(p, dpi=100)
        files.append(p)
    return files


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="short runs (CI smoke, demos)")
    ap.add_argument("--seconds", type=float, default=None, help="per forwarding measurement")
    ap.add_argument("--repeat", type=int, default=None, help="rounds per forwarding system")
    ap.add_argument("--flows", type=int, nargs="+", default=[1, 1000, 100000])
    ap.add_argument("--only", nargs="+",
                    choices=["forwarding", "tcp_cps", "flow_setup", "classifier", "esp",
                             "conntrack", "firewall", "policy"],
                    help="run only these scenarios")
    ap.add_argument("--ct-conns", type=int, nargs="+", default=[1000, 100000],
                    help="conntrack: established connections (1000 100000)")
    ap.add_argument("--ct-1m", action="store_true",
                    help="conntrack: also 1M established connections (~9 GB, minutes)")
    ap.add_argument("--pmd-nice", type=int, default=0,
                    help="tcp_cps, conntrack: nice of the PMD under test (-20 when other "
                         "programs poll core 1 too; default: unchanged)")
    ap.add_argument("--out", default=HERE, help="where RESULTS.md and results/ go")
    a = ap.parse_args()
    a.seconds = a.seconds or (2.0 if a.quick else 5.0)
    a.repeat = a.repeat or (1 if a.quick else 3)

    outdir = os.path.join(a.out, "results")
    os.makedirs(outdir, exist_ok=True)
    latest = os.path.join(outdir, "latest.json")
    res = {}
    if a.only and os.path.exists(latest):
        # A partial run updates the scenarios it ran and keeps the others' last figures.
        with open(latest) as f:
            res = json.load(f)
    res.update({"machine": machine(), "quick": a.quick})
    scen = {"forwarding": forwarding_scenario, "tcp_cps": tcp_cps_scenario,
            "flow_setup": flow_setup_scenario, "classifier": classifier_scenario,
            "esp": esp_scenario, "conntrack": conntrack_scenario,
            "firewall": firewall_scenario, "policy": policy_scenario}
    with tempfile.TemporaryDirectory(prefix="gl-suite-") as work:
        for name, fn in scen.items():
            if a.only and name not in a.only:
                res.setdefault(name, "skipped")
                continue
            print(f"== {name}", flush=True)
            t0 = time.monotonic()
            res[name] = fn(a, work)
            res.setdefault("scenario_dates", {})[name] = res["machine"]["date"]
            res.setdefault("scenario_seconds", {})[name] = round(time.monotonic() - t0)
    res["rekey"] = NOT_YET
    with open(latest, "w") as f:
        json.dump(res, f, indent=2)
    write_markdown(res, os.path.join(a.out, "RESULTS.md"))
    res["plots"] = plot(res, outdir)
    print(f"wrote {latest}, {a.out}/RESULTS.md, plots")


if __name__ == "__main__":
    main()
