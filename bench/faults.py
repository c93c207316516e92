#!/usr/bin/python3
"""Faults with traffic flowing: what each costs in datagrams and seconds.

On bench/soak.py's cluster (three hypervisors: gldp, ovs-vswitchd-gl, glctld each; a Raft
database of three ovsdb-server members; web1 on hvA -> db1 on hvB allowed, encrypted), a
numbered UDP stream web1 -> db1:5001 runs at --rate per second for --seconds; --at seconds
in, one fault is injected (a killed process is started again 1 s later, with the same
command line). The receiver reports what never arrived; the outage is the longest run of
missing datagrams / rate. Faults (each on a stream of its own):

  vswitchd-kill9  kill -9 ovs-vswitchd-gl on hvB (the receiver's host), restarted with the
                  same environment; its OpenFlow rules are installed again as soon as it
                  answers (they live in ovs-vswitchd, as with any datapath: a controller
                  would reconnect and do the same)
  glctld-kill9    kill -9 glctld on hvA (the sender's host), restarted: gldp keeps the
                  policy and SAs; the new glctld resyncs and handshakes anew
  gldp-kill9      kill -9 gldp on hvB, restarted: ovs-vswitchd notices the new boot id and
                  re-adds ports and flows, glctld installs the policy and SAs again
  ovsdb-leader    kill -9 the Raft leader of the Goldilocks database (not restarted): the
                  datapaths are not involved
  sa-expiry       rekey by volume: glctl set-rekey 120 packets=2000, SAs replaced every
                  2000 packets under the stream (make-before-break)
  conn-limit      glctl set-conn-limit 20, then web1 opens 2000 new UDP connections to
                  db1:5001 (other source ports): the new ones over web1's limit are dropped
                  (fw_conn_limit), the established stream keeps flowing
  ct-full         the firewall's connection table full: gldp runs with --fw-ct-capacity
                  CT_FULL_CAPACITY (when this fault is asked for), web1 (no per-workload
                  limit) opens 2.5x that many new UDP connections to db1:5001; the tables
                  of hvA and hvB fill, new connections are dropped (fw_conn_limit; the
                  tracker counts table_full), the established stream keeps flowing; then
                  glctl flush-conntrack on both empties them

Prints a table (fault, sent, lost, outage seconds, what the fault did) and --json FILE
writes it. Figures only, except that it exits 1 when a process does not come back or the
set-up fails.

  sudo /usr/bin/python3 bench/faults.py [--faults NAME...] [--rate 1000] [--seconds 20]
       [--at 5] [--json FILE]
"""

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tools"))
import demo_cluster as dc  # noqa: E402
import soak  # noqa: E402

FAULTS = ("vswitchd-kill9", "glctld-kill9", "gldp-kill9", "ovsdb-leader", "sa-expiry",
          "conn-limit", "ct-full")
CT_FULL_CAPACITY = 4000


class Faults(soak.Soak):
    def fw_conns(self, host):
        """Connections in the firewall's tracker of a host's gldp."""
        st = json.loads(self.dpctl(self.hvs[host], "fw-status", "--json").stdout)
        return st["connections"]

    def stream(self, port, rate, seconds):
        """Starts a numbered stream web1 -> db1:port; returns a function that waits for it
        and returns (sent, received, lost, longest run of missing datagrams)."""
        dst = dc.WORKLOADS["db1"][1]
        count = int(rate * seconds)
        r = self.udp_receiver(dst, port, count, seconds + 15)
        time.sleep(0.5)
        snd = self.udp_sender(dst, port, count, rate)

        def wait():
            out, _ = snd.communicate(timeout=seconds + 60)
            sent = int(out.strip() or 0)
            out, _ = r.communicate(timeout=60)
            got, longest = json.loads(out)
            return sent, got, count - got, longest
        return wait

    def restart(self, role, host):
        """kill -9 the daemon, start it again 1 s later with the same command line, wait
        until it answers. Returns what happened, for the table."""
        p = self.roles()[(role, host)]
        hv = self.hvs[host]
        p.kill()
        p.wait()
        if role == "gldp":  # --in-memory leaves only an empty runtime directory behind
            try:
                os.rmdir(f"/var/run/dpdk/gl-gldp-{p.pid}")
            except OSError:
                pass
        time.sleep(1.0)
        self.procs.remove(p)
        t0 = time.time()
        # ovs-vswitchd-gl finds its gldp and run directory by the environment it had.
        self.start(p.args, f"{host}/{role}.restarted.log",
                   env=hv["env"] if role == "ovs-vswitchd-gl" else None)
        if role == "gldp":
            self.wait(lambda: self.run([dc.DPCTL, "--socket", hv["sock"], "show"],
                                       check=False).returncode == 0, f"{host}'s gldp again")
        elif role == "ovs-vswitchd-gl":
            self.wait(lambda: self.run(["ovs-appctl", "-t", f"{hv['dir']}/ovs-vswitchd.ctl",
                                        "version"], check=False).returncode == 0,
                      f"{host}'s ovs-vswitchd-gl again")
            # OpenFlow rules live in ovs-vswitchd (as with any datapath): whoever installed
            # them (a controller; here the set-up's ovs-ofctl) installs them again.
            self.flows(hv)
            return (f"killed, restarted 1 s later, OpenFlow rules added again "
                    f"{time.time() - t0:.1f} s after start")
        else:
            self.wait(lambda: self.run([dc.GLCTL, "--mgmt-socket", hv["mgmt"], "status"],
                                       check=False).returncode == 0, f"{host}'s glctld again")
        return f"killed, restarted 1 s later; answering {time.time() - t0:.1f} s after start"

    def inject(self, fault):
        if fault == "vswitchd-kill9":
            return self.restart("ovs-vswitchd-gl", "hvB")
        if fault == "glctld-kill9":
            return self.restart("glctld", "hvA")
        if fault == "gldp-kill9":
            return self.restart("gldp", "hvB")
        if fault == "ovsdb-leader":
            old = self.leader()
            self.db_procs[old].kill()
            self.db_procs[old].wait()
            t0 = time.time()
            self.wait(lambda: self.leader() is not None, "a new Raft leader", timeout=30)
            return (f"gl{old + 1} (leader) killed; gl{self.leader() + 1} leads "
                    f"{time.time() - t0:.1f} s later")
        if fault == "sa-expiry":
            r0 = self.rekeys()
            self.glctl("set-rekey", "120", "packets=2000")
            time.sleep(8)
            self.glctl("set-rekey", "120", "packets=0")
            return f"{self.rekeys() - r0} rekeys by volume in 8 s"
        if fault == "conn-limit":
            d0 = self.drops().get("fw_conn_limit", 0)
            self.glctl("set-conn-limit", "20")
            time.sleep(1.0)
            flood = ("import socket\n"
                     "for i in range(2000):\n"
                     "  s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
                     f"  s.sendto(b'\\xff'*8,('{dc.WORKLOADS['db1'][1]}',5001)); s.close()\n")
            self.run(["/usr/bin/python3", "-c", flood], ns=self.vm("web1"))
            time.sleep(1.0)
            self.glctl("set-conn-limit", "0")
            return (f"2000 new connections from web1 over a limit of 20: "
                    f"{self.drops().get('fw_conn_limit', 0) - d0} dropped (fw_conn_limit)")
        if fault == "ct-full":
            d0 = self.drops().get("fw_conn_limit", 0)
            n = int(CT_FULL_CAPACITY * 2.5)
            flood = ("import socket\n"
                     f"for i in range({n}):\n"
                     "  s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
                     f"  s.sendto(b'\\xff'*8,('{dc.WORKLOADS['db1'][1]}',5001)); s.close()\n")
            self.run(["/usr/bin/python3", "-c", flood], ns=self.vm("web1"))
            time.sleep(1.0)
            dropped = self.drops().get("fw_conn_limit", 0) - d0
            full = {h: self.fw_conns(h) for h in ("hvA", "hvB")}
            for h in ("hvA", "hvB"):
                self.run([dc.GLCTL, "--mgmt-socket", self.hvs[h]["mgmt"], "flush-conntrack"])
            after = {h: self.fw_conns(h) for h in ("hvA", "hvB")}
            return (f"{n} new connections from web1, tables of {CT_FULL_CAPACITY}: "
                    f"{dropped} dropped (fw_conn_limit); connections hvA/hvB "
                    f"{full['hvA']}/{full['hvB']}, after flush-conntrack "
                    f"{after['hvA']}/{after['hvB']}")
        raise ValueError(fault)

    def all(self, faults, rate, seconds, at):
        self.setup()
        rows = []
        for i, fault in enumerate(faults):
            dc.step(f"fault {fault}: a stream of {rate}/s for {seconds} s, the fault at {at} s")
            wait = self.stream(5001, rate, seconds)
            time.sleep(at)
            what = self.inject(fault)
            sent, got, lost, longest = wait()
            row = {"fault": fault, "sent": sent, "received": got, "lost": lost,
                   "outage_s": round(longest / rate, 3), "what": what}
            dc.say(f"   {sent} sent, {lost} lost, outage {row['outage_s']} s; {what}")
            rows.append(row)
            time.sleep(2)  # let the next stream start on a settled cluster
        dc.step("faults with traffic flowing (UDP web1 -> db1, numbered)")
        dc.say(f"   {'fault':16s} {'sent':>7s} {'lost':>6s} {'outage s':>9s}  what happened")
        for r in rows:
            dc.say(f"   {r['fault']:16s} {r['sent']:7d} {r['lost']:6d} {r['outage_s']:9.3f}  "
                   f"{r['what']}")
        return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--faults", nargs="+", choices=FAULTS, default=list(FAULTS))
    ap.add_argument("--rate", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--at", type=float, default=5)
    ap.add_argument("--json")
    a = ap.parse_args()
    f = Faults(gldp_args=["--fw-ct-capacity", str(CT_FULL_CAPACITY)]
               if "ct-full" in a.faults else [])
    rows = []
    rc = 1
    try:
        rows = f.all(a.faults, a.rate, a.seconds, a.at)
        rc = 0
    except dc.Failure as e:
        dc.say(f"FAILED: {e}")
    finally:
        f.cleanup()
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(rows, fh, indent=1)
    return rc


if __name__ == "__main__":
    sys.exit(main())
