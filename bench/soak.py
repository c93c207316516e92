#!/usr/bin/python3
"""Soak: the three-hypervisor cluster of tools/demo_cluster.py under mixed traffic, policy
changes and rekeys for a bounded time; reports what a long run would show going wrong.

Set-up (tools/demo_cluster.py's): a three-member Raft database, three hypervisors (gldp,
ovs-vswitchd-gl with datapath gl, glctld with its own key), workloads web1 (hvA), db1
(hvB), cache1 (hvC), default deny, web -> db TCP 5432 and UDP 5001 allowed and encrypted.

For --duration seconds (default 600) with everything running:
  * a UDP stream web1 -> db1:5001, numbered datagrams at --rate per second (default 500);
  * a TCP connection web1 -> db1:5432 every 2 s (allowed: each must succeed);
  * a TCP connection cache1 -> db1:5432 every 5 s (denied: each must fail);
  * glctld's rekey timer at --rekey seconds (default 5): every host pair rekeys;
  * a policy change every --policy-every seconds (default 3): a rule cache -> web TCP 7000
    added, then deleted (each a new compiled version on hvA and hvC, whose workloads it
    concerns; hvB's policy does not change, so glctld pushes nothing there);
  * every 10 s: the resident memory (VmRSS) of every gldp, ovs-vswitchd-gl and glctld.

At the end it checks (exit status 1 when one fails) and prints:
  * no process died;
  * every allowed TCP connection succeeded, every denied one failed;
  * the UDP stream, on its own path: sent = received + lost, and every lost datagram is
    matched by a drop counted where the stream goes (below); the drops by host and reason;
  * rekeys happened (at least duration / rekey / 2 in all) and every second policy change
    at least reached hvA's and hvC's gldp as a new version;
  * resident memory after warm-up (the first 25% of the run), per daemon, against a slope
    per daemon kind (RSS_SLOPE_KIB_MIN: gldp 16 KiB/min, glctld and ovs-vswitchd-gl
    8 KiB/min): the growth from the first sample after warm-up to the last may be that
    slope times the minutes between them plus RSS_ALLOWANCE_KIB (32 KiB: a few pages
    touched late); over a window of 5 minutes or more, the samples' own slope (Theil-Sen:
    the median of the slopes between every two samples) must also stay under it.
    bench/README.md, "Soak and faults", says where the figures come from.

Loss accounting. The stream goes web1 -> hvA's gldp (web1's port, the firewall's from-VM
check, switching, esp_encrypt, ul0) -> the underlay -> hvB's gldp (ul0, esp_decrypt,
switching, the firewall's to-VM check at db1's port, db1's port) -> db1's socket. hvB's
firewall counts the packets it lets through to db1 under the rule that allows them
(gl-dpctl fw-rule-stats: only this stream uses it), which splits the path in two:
  upstream   sent - passed hvB's firewall: must be matched by the drops counted on hvA
             (UPSTREAM_A reasons, web1's port rx_dropped, ul0's tx_dropped) and on hvB
             before its firewall's verdict (UPSTREAM_B reasons, ul0's rx_dropped);
  downstream passed hvB's firewall - received: must be matched by db1's port tx_dropped on
             hvB and db1's kernel (Udp RcvbufErrors + InErrors in db1's namespace).
Drops on hvC, the reasons that cannot apply to this stream where they are counted
(decryption on hvA, encryption on hvB, fw_spoof on hvB, action_drop: see UPSTREAM_A) and
the parse detail counters (parse_error counts each such packet) do not count. A part with
more lost than matched is a silent loss and fails, as does a part with a negative loss
(counters inconsistent).
Not visible to gldp: af_packet ring overflows in the kernel (DPDK 22.11's af_packet reports
no imissed), the underlay bridge: a loss there shows as silent.

  sudo /usr/bin/python3 bench/soak.py [--duration 600] [--rate 500] [--rekey 5]
       [--policy-every 3] [--json FILE] [--keep-files]
"""

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tools"))
import demo_cluster as dc  # noqa: E402

CHURN_RULE = "priority=50,from=app=cache,to=app=web,tcp,tp_dst=7000,actions=allow"
CHURN_HOSTS = ("hvA", "hvC")  # web1's and cache1's: the rule changes their ports' policy

# Drop reasons that can take one of the stream's datagrams, by where they are counted. Not
# action_drop: the soak's OpenFlow rules send every frame for db1's MAC on (to hvB's ESP
# port on hvA, to db1's port on hvB) and nothing changes them during the soak, so no
# datagram of the stream can meet a flow whose actions drop it; what action_drop counts
# there is the underlay's own traffic (the hosts' handshakes and ARP that gldp sees on ul0,
# which the bridges' fail-mode secure drops), about 2 a second per host, which would hide
# as many silent losses. bench/faults.py, where rules do go away (vswitchd-kill9), reports it.
# hvA: web1's port in, the firewall's from-VM check, switching (upcalls), esp_encrypt out.
UPSTREAM_A = ("parse_error", "fw_spoof", "fw_invalid", "fw_deny", "fw_reject", "fw_conn_limit",
              "fw_revoked", "fw_quarantine", "fw_not_encrypted", "no_port",
              "upcall_queue_full", "upcall_rate_limit", "upcall_undelivered", "recirc_depth",
              "recirc_overflow", "no_mbuf", "esp_no_sa", "esp_sa_expired", "esp_sa_retired",
              "esp_no_room",
              "esp_multi_seg", "esp_bad_length", "esp_crypto_error", "esp_too_big")
# hvB: ul0 in, esp_decrypt (and the handoff to PMD 0), switching, the firewall's to-VM check.
UPSTREAM_B = ("parse_error", "esp_bad_outer", "esp_bad_length", "esp_unknown_spi", "esp_sa_retired",
              "esp_wrong_pmd", "esp_too_old", "esp_replay", "esp_auth_failed", "esp_bad_padding",
              "esp_bad_next_header", "esp_unsupported", "esp_crypto_error",
              "esp_inner_not_ethernet", "esp_peer_mismatch", "esp_handoff_full", "no_port",
              "upcall_queue_full", "upcall_rate_limit", "upcall_undelivered", "recirc_depth",
              "recirc_overflow", "no_mbuf", "fw_invalid", "fw_deny", "fw_reject",
              "fw_conn_limit", "fw_revoked", "fw_quarantine", "fw_not_encrypted",
              "fw_host_mismatch")
# Resident memory: the steepest growth after warm-up allowed, KiB per minute, per daemon
# kind (gldp twice the steepest measured, the others about four times: bench/README.md,
# "Soak and faults").
RSS_SLOPE_KIB_MIN = {"gldp": 16, "glctld": 8, "ovs-vswitchd-gl": 8}
RSS_ALLOWANCE_KIB = 32   # growth allowed on top of the slope: a few pages touched late
RSS_SLOPE_MIN_WINDOW = 300  # s after warm-up for the fitted slope to be checked (4 KiB steps)


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def slope_per_min(points):
    """The Theil-Sen slope of [(seconds, KiB)] (the median of the slopes between every two
    samples), in KiB per minute; 0 for fewer than 2. Unlike a least-squares line, one step
    (an allocator taking another arena once) barely moves it; steady growth does."""
    slopes = sorted((v2 - v1) / (t2 - t1) for i, (t1, v1) in enumerate(points)
                    for t2, v2 in points[i + 1:] if t2 != t1)
    if not slopes:
        return 0.0
    n = len(slopes)
    return 60.0 * (slopes[n // 2] if n % 2 else (slopes[n // 2 - 1] + slopes[n // 2]) / 2)


class Soak(dc.Demo):
    def roles(self):
        """(role, host) -> Popen of every long-lived daemon the set-up started."""
        out = {}
        for p in self.procs:
            args = " ".join(p.args)
            for name, hv in self.hvs.items():
                if hv["dir"] + "/" not in args and hv["sock"] not in args:
                    continue
                if dc.GLDP in p.args:
                    out[("gldp", name)] = p
                elif dc.VSWITCHD in p.args:
                    out[("ovs-vswitchd-gl", name)] = p
                elif dc.GLCTLD in p.args:
                    out[("glctld", name)] = p
        return out

    def drops(self):
        total = {}
        for hv in self.hvs.values():
            d = json.loads(self.dpctl(hv, "show", "--json").stdout)["drops"]
            for k, v in d.items():
                total[k] = total.get(k, 0) + v
        return total

    def path_counters(self):
        """What the stream's accounting reads: drops by reason on hvA and hvB, the port
        counters of the ports it crosses, hvB's firewall count for its rule, db1's kernel
        UDP receive errors."""
        out = {}
        for h in ("hvA", "hvB"):
            show = json.loads(self.dpctl(self.hvs[h], "show", "--json").stdout)
            out[h] = dict(show["drops"])
            for p in show["ports"]:
                for k in ("rx_dropped", "tx_dropped"):
                    out[h][f"port {p['name']} {k}"] = p[k]
        for h, port in (("hvA", "vm-web1"), ("hvA", "ul0"), ("hvB", "ul0"), ("hvB", "vm-db1")):
            if f"port {port} rx_dropped" not in out[h]:
                raise dc.Failure(f"{h}'s gldp has no port {port}: {sorted(out[h])}")
        stats = json.loads(self.dpctl(self.hvs["hvB"], "fw-rule-stats", "--json").stdout)
        out["hvB_fw_passed"] = next((r["packets"] for r in stats
                                     if r["rule_id"] == self.stream_rule), 0)
        snmp = self.run(["cat", "/proc/net/snmp"], ns=self.vm("db1")).stdout.splitlines()
        udp = [ln.split()[1:] for ln in snmp if ln.startswith("Udp:")]
        u = dict(zip(udp[0], (int(x) for x in udp[1])))
        out["db1_kernel"] = u["RcvbufErrors"] + u["InErrors"]
        return out

    def stream_rule_id(self):
        """The rule id of web -> db UDP 5001 (the only traffic it allows is the stream)."""
        rules = json.loads(self.glctl("--json", "dump-rules").stdout)
        for r in rules:
            if r.get("protocol") == "udp" and "5001" in str(r.get("ports")):
                return r["rule_id"]
        raise dc.Failure(f"no UDP 5001 rule in {rules}")

    @staticmethod
    def account(sent, received, c0, c1):
        """The stream's loss split at hvB's firewall, each part against the drops that can
        explain it. Returns (the accounting, failures)."""
        def delta(host, key):
            return c1[host].get(key, 0) - c0[host].get(key, 0)
        passed = c1["hvB_fw_passed"] - c0["hvB_fw_passed"]
        up = {f"hvA/{k}": delta("hvA", k) for k in UPSTREAM_A}
        up["hvA/port vm-web1 rx_dropped"] = delta("hvA", "port vm-web1 rx_dropped")
        up["hvA/port ul0 tx_dropped"] = delta("hvA", "port ul0 tx_dropped")
        up.update({f"hvB/{k}": delta("hvB", k) for k in UPSTREAM_B})
        up["hvB/port ul0 rx_dropped"] = delta("hvB", "port ul0 rx_dropped")
        down = {"hvB/port vm-db1 tx_dropped": delta("hvB", "port vm-db1 tx_dropped"),
                "db1 kernel (Udp RcvbufErrors + InErrors)": c1["db1_kernel"] - c0["db1_kernel"]}
        segs = {}
        failures = []
        for name, lost, drops in (("upstream", sent - passed, up),
                                  ("downstream", passed - received, down)):
            matched = {k: v for k, v in drops.items() if v}
            counted = sum(matched.values())
            segs[name] = {"lost": lost, "drops_counted": counted, "drops": matched,
                          "silent": max(0, lost - counted)}
            if lost < 0:
                failures.append(f"{name}: {-lost} more datagrams counted than possible "
                                f"(counters inconsistent: sent {sent}, passed hvB's firewall "
                                f"{passed}, received {received})")
            elif lost > counted:
                failures.append(f"{name}: {lost} datagrams lost, {counted} matching drops "
                                f"counted ({matched or 'none'}): {lost - counted} lost silently")
        return {"passed_hvB_firewall": passed, **segs}, failures

    def rekeys(self):
        return sum(self.keys(hv)["counters"]["rekeys"] for hv in self.hvs.values())

    def generations(self):
        return {n: json.loads(self.run([dc.GLCTL, "--mgmt-socket", hv["mgmt"], "--json",
                                        "status"]).stdout)["generation"]
                for n, hv in self.hvs.items()}

    def python_in(self, workload, code):
        """Runs Debian's python3 with `code` in the workload's namespace; its stdout is
        piped, and cleanup() kills it if it still runs. Returns the process."""
        # Its own process group: cleanup() kills by group, also when the soak fails.
        p = subprocess.Popen(["ip", "netns", "exec", self.vm(workload), "/usr/bin/python3", "-c",
                              code], stdout=subprocess.PIPE, text=True, start_new_session=True)
        self.procs.append(p)
        return p

    def udp_receiver(self, dst, port, count, run_s):
        """db1 counts the numbered datagrams 0..count-1 arriving on dst:port for up to
        run_s seconds (anything else, e.g. a flood's, is ignored); prints [how many
        arrived, the longest run of missing ones]. Returns the process."""
        recv = ("import socket,struct,time,json\n"
                "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
                "s.setsockopt(socket.SOL_SOCKET,socket.SO_RCVBUF,16<<20)\n"
                f"s.bind(('{dst}',{port})); s.settimeout(1)\n"
                f"end=time.monotonic()+{run_s}; seen=set()\n"
                f"while time.monotonic()<end and len(seen)<{count}:\n"
                "  try: d=s.recv(2048)\n"
                "  except socket.timeout: continue\n"
                f"  if len(d)>=4 and struct.unpack('!I',d[:4])[0]<{count}:\n"
                "    seen.add(struct.unpack('!I',d[:4])[0])\n"
                "run=best=0\n"
                f"for i in range({count}):\n"
                "  run = 0 if i in seen else run+1; best=max(best,run)\n"
                "print(json.dumps([len(seen), best]))\n")
        return self.python_in("db1", recv)

    def udp_sender(self, dst, port, count, rate):
        """web1 sends `count` numbered datagrams (4-byte sequence number, 64 bytes) to
        dst:port at `rate` per second; never blocks (an outage must not hold the pacing
        up); prints how many the socket took. Returns the process."""
        send = ("import socket,struct,time\n"
                "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); t0=time.monotonic()\n"
                "s.setblocking(False)\n"
                "sent=0\n"
                f"for i in range({count}):\n"
                f"  d=t0+i/{rate}-time.monotonic()\n"
                "  if d>0: time.sleep(d)\n"
                "  try:\n"
                f"    s.sendto(struct.pack('!I',i)+b'x'*60,('{dst}',{port})); sent+=1\n"
                "  except OSError: pass\n"
                "print(sent)\n")
        return self.python_in("web1", send)

    def udp_start(self, count, rate, port, run_s):
        dst = dc.WORKLOADS["db1"][1]
        self.udp_recv = self.udp_receiver(dst, port, count, run_s + 15)
        time.sleep(0.5)
        self.udp_send = self.udp_sender(dst, port, count, rate)

    def soak(self, duration, rate, rekey_s, policy_every, results):
        self.setup()
        dc.step(f"soak: {duration} s; UDP web1 -> db1 at {rate}/s, TCP probes, rekey every "
                f"{rekey_s} s, a policy change every {policy_every} s")
        daemons = self.roles()
        if len(daemons) != 9:
            raise dc.Failure(f"found {len(daemons)} daemons, want 9: {sorted(daemons)}")
        self.tcp_server("db1", 5432)
        time.sleep(0.5)
        for _ in range(10):  # ARP, first connection
            if self.tcp_client("web1", dc.WORKLOADS["db1"][1], 5432, "warm-up").returncode == 0:
                break
            time.sleep(0.5)
        self.glctl("set-rekey", str(rekey_s))
        self.stream_rule = self.stream_rule_id()
        path0 = self.path_counters()
        drops0 = self.drops()
        rekeys0 = self.rekeys()
        gens0 = self.generations()
        count = int(duration * rate)
        self.udp_start(count, rate, 5001, duration)
        t0 = time.monotonic()
        samples = []  # (t, {role/host: KiB})
        tcp = {"allowed_ok": 0, "allowed_failed": 0, "denied_ok": 0, "denied_leaked": 0}
        failures = []
        churn_id = None
        changes = 0
        next_tcp, next_deny, next_policy, next_sample = t0, t0 + 1, t0 + policy_every, t0
        while time.monotonic() - t0 < duration:
            now = time.monotonic()
            if now >= next_sample:
                samples.append((round(now - t0, 1),
                                {f"{r}/{h}": rss_kib(p.pid) for (r, h), p in daemons.items()}))
                dead = [f"{r}/{h}" for (r, h), p in daemons.items() if p.poll() is not None]
                if dead:
                    failures.append(f"died: {', '.join(dead)}")
                    break
                next_sample += 10
            if now >= next_tcp:
                r = self.tcp_client("web1", dc.WORKLOADS["db1"][1], 5432, "soak")
                tcp["allowed_ok" if r.returncode == 0 else "allowed_failed"] += 1
                next_tcp += 2
            if now >= next_deny:
                r = self.tcp_client("cache1", dc.WORKLOADS["db1"][1], 5432, "soak")
                tcp["denied_ok" if r.returncode != 0 else "denied_leaked"] += 1
                next_deny += 5
            if now >= next_policy:
                if churn_id is None:
                    out = self.glctl("add-rule", CHURN_RULE).stdout.strip()
                    churn_id = out.split()[-1]
                else:
                    self.glctl("del-rule", churn_id)
                    churn_id = None
                changes += 1
                next_policy += policy_every
            time.sleep(0.05)
        elapsed = time.monotonic() - t0
        out, _ = self.udp_send.communicate(timeout=duration + 60)
        sent = int(out.strip() or 0)
        out, _ = self.udp_recv.communicate(timeout=60)
        received = json.loads(out)[0]
        drops1 = self.drops()
        path1 = self.path_counters()
        rekeys = self.rekeys() - rekeys0
        gens1 = self.generations()
        dropped = {k: drops1.get(k, 0) - drops0.get(k, 0) for k in drops1
                   if drops1.get(k, 0) != drops0.get(k, 0)}
        lost = sent - received
        accounting, lost_failures = self.account(sent, received, path0, path1)
        dead = [f"{r}/{h}" for (r, h), p in daemons.items() if p.poll() is not None]
        if dead and not any(f.startswith("died") for f in failures):
            failures.append(f"died: {', '.join(dead)}")

        # Resident memory after warm-up (25% of the run): the slope of the samples and the
        # growth from the first to the last, against the daemon kind's bound.
        warm = [s for s in samples if s[0] >= duration * 0.25] or samples
        first, last = warm[0], samples[-1]
        minutes = max((last[0] - first[0]) / 60.0, 1e-9)
        memory = {}
        for name in sorted(last[1]):
            a, b = first[1].get(name), last[1].get(name)
            peak = max((s[1].get(name) or 0) for s in samples)
            pts = [(t, m[name]) for t, m in warm if m.get(name)]
            slope = slope_per_min(pts)
            bound = RSS_SLOPE_KIB_MIN[name.split("/")[0]]
            memory[name] = {"warm_kib": a, "last_kib": b, "peak_kib": peak,
                            "growth_kib": (b - a) if a and b else None,
                            "slope_kib_per_min": round(slope, 2),
                            "bound_kib_per_min": bound}
            if slope > bound and last[0] - first[0] >= RSS_SLOPE_MIN_WINDOW:
                failures.append(f"{name}: resident memory grows {slope:.1f} KiB/min after "
                                f"warm-up (bound {bound})")
            if a and b and b - a > bound * minutes + RSS_ALLOWANCE_KIB:
                failures.append(f"{name}: resident memory grew {a} -> {b} KiB in "
                                f"{minutes:.1f} min after warm-up (bound {bound} KiB/min + "
                                f"{RSS_ALLOWANCE_KIB} KiB)")
        if tcp["allowed_failed"]:
            failures.append(f"{tcp['allowed_failed']} allowed TCP connections failed")
        if tcp["denied_leaked"]:
            failures.append(f"{tcp['denied_leaked']} denied TCP connections got through")
        if sent != count:
            failures.append(f"the sender sent {sent} of {count} datagrams")
        failures.extend(f"UDP stream {f}" for f in lost_failures)
        want_rekeys = int(elapsed / rekey_s / 2)
        if rekeys < want_rekeys:
            failures.append(f"{rekeys} rekeys, want at least {want_rekeys}")
        moved = {n: gens1[n] - gens0[n] for n in gens1}
        if any(moved[h] < changes // 2 for h in CHURN_HOSTS):
            failures.append(f"policy versions per host {moved} for {changes} changes")

        results.update({
            "duration_s": round(elapsed, 1), "rate": rate, "rekey_s": rekey_s,
            "udp": {"sent": sent, "received": received, "lost": lost, **accounting},
            "drops": dropped,
            "tcp": tcp, "rekeys": rekeys, "policy_changes": changes,
            "policy_versions_per_host": moved, "memory": memory,
            "rss_samples": samples, "failures": failures,
        })
        dc.step("soak results")
        dc.say(f"   {elapsed:.0f} s; UDP web1 -> db1: {sent} sent, {received} received, {lost} "
               f"lost; {accounting['passed_hvB_firewall']} passed hvB's firewall")
        for seg in ("upstream", "downstream"):
            a = accounting[seg]
            dc.say(f"     {seg}: {a['lost']} lost, {a['drops_counted']} matching drops counted "
                   f"{a['drops'] or ''}")
        dc.say(f"   drops by reason (all hosts, all traffic): {dropped or 'none'}")
        dc.say(f"   TCP web1 -> db1: {tcp['allowed_ok']} ok, {tcp['allowed_failed']} failed; "
               f"cache1 -> db1: {tcp['denied_ok']} denied, {tcp['denied_leaked']} got through")
        dc.say(f"   rekeys (all hosts): {rekeys}; policy changes: {changes}, versions per host "
               f"{moved}")
        dc.say("   resident memory (KiB) after warm-up -> last (peak), slope KiB/min (bound):")
        for name, m in memory.items():
            dc.say(f"     {name:28s} {m['warm_kib']} -> {m['last_kib']} ({m['peak_kib']}), "
                   f"{m['slope_kib_per_min']:+.1f} ({m['bound_kib_per_min']})")
        for f in failures:
            dc.say(f"   FAILED: {f}")
        return not failures


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=float, default=600)
    ap.add_argument("--rate", type=int, default=500)
    ap.add_argument("--rekey", type=int, default=5)
    ap.add_argument("--policy-every", type=float, default=3)
    ap.add_argument("--json")
    ap.add_argument("--keep-files", action="store_true")
    a = ap.parse_args()
    if a.keep_files:
        os.environ["GL_DEMO_KEEP_FILES"] = "1"
    s = Soak()
    results = {}
    ok = False
    try:
        ok = s.soak(a.duration, a.rate, a.rekey, a.policy_every, results)
    except dc.Failure as e:
        dc.say(f"FAILED: {e}")
        results.setdefault("failures", []).append(str(e))
    finally:
        s.cleanup()
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
