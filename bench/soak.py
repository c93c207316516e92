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
  * the UDP stream: sent = received + lost, and every lost datagram is matched by a drop
    some gldp counted (lost <= the drops counted during the run), with the drops by reason;
  * rekeys happened (at least duration / rekey / 2 in all) and every second policy change
    at least reached hvA's and hvC's gldp as a new version;
  * resident memory: first sample after warm-up (25% of the run) against the last; more
    than 10% + 8 MiB growth for a process fails.

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


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


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
        rekeys = self.rekeys() - rekeys0
        gens1 = self.generations()
        dropped = {k: drops1.get(k, 0) - drops0.get(k, 0) for k in drops1
                   if drops1.get(k, 0) != drops0.get(k, 0)}
        lost = sent - received
        counted = sum(v for k, v in dropped.items() if k != "fw_deny")
        dead = [f"{r}/{h}" for (r, h), p in daemons.items() if p.poll() is not None]
        if dead and not any(f.startswith("died") for f in failures):
            failures.append(f"died: {', '.join(dead)}")

        # Resident memory: the first sample after warm-up (25% of the run) against the last.
        warm = [s for s in samples if s[0] >= duration * 0.25] or samples
        first, last = warm[0], samples[-1]
        memory = {}
        for name in sorted(last[1]):
            a, b = first[1].get(name), last[1].get(name)
            peak = max((s[1].get(name) or 0) for s in samples)
            memory[name] = {"warm_kib": a, "last_kib": b, "peak_kib": peak,
                            "growth_kib": (b - a) if a and b else None}
            if a and b and b - a > a * 0.10 + 8192:
                failures.append(f"{name}: resident memory grew {a} -> {b} KiB")
        if tcp["allowed_failed"]:
            failures.append(f"{tcp['allowed_failed']} allowed TCP connections failed")
        if tcp["denied_leaked"]:
            failures.append(f"{tcp['denied_leaked']} denied TCP connections got through")
        if sent != count:
            failures.append(f"the sender sent {sent} of {count} datagrams")
        if lost > counted:
            failures.append(f"{lost} datagrams lost, only {counted} drops counted (silent loss)")
        want_rekeys = int(elapsed / rekey_s / 2)
        if rekeys < want_rekeys:
            failures.append(f"{rekeys} rekeys, want at least {want_rekeys}")
        moved = {n: gens1[n] - gens0[n] for n in gens1}
        if any(moved[h] < changes // 2 for h in CHURN_HOSTS):
            failures.append(f"policy versions per host {moved} for {changes} changes")

        results.update({
            "duration_s": round(elapsed, 1), "rate": rate, "rekey_s": rekey_s,
            "udp": {"sent": sent, "received": received, "lost": lost},
            "drops": dropped, "drops_counted_excluding_fw_deny": counted,
            "tcp": tcp, "rekeys": rekeys, "policy_changes": changes,
            "policy_versions_per_host": moved, "memory": memory,
            "rss_samples": samples, "failures": failures,
        })
        dc.step("soak results")
        dc.say(f"   {elapsed:.0f} s; UDP web1 -> db1: {sent} sent, {received} received, {lost} "
               f"lost; drops counted (not fw_deny): {counted}")
        dc.say(f"   drops by reason: {dropped or 'none'}")
        dc.say(f"   TCP web1 -> db1: {tcp['allowed_ok']} ok, {tcp['allowed_failed']} failed; "
               f"cache1 -> db1: {tcp['denied_ok']} denied, {tcp['denied_leaked']} got through")
        dc.say(f"   rekeys (all hosts): {rekeys}; policy changes: {changes}, versions per host "
               f"{moved}")
        dc.say("   resident memory (KiB) after warm-up -> last (peak):")
        for name, m in memory.items():
            dc.say(f"     {name:28s} {m['warm_kib']} -> {m['last_kib']} ({m['peak_kib']})")
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
