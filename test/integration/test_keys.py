#!/usr/bin/python3
"""Keys negotiated by glctld: two hypervisors, no key typed by anyone.

Each hypervisor is a network namespace (hvA, hvB) holding its end of the underlay veth
pair (192.0.2.1/24, 192.0.2.2/24, the kernel's: glctld's handshakes are UDP through it),
the root end of its VM's veth, a gldp (af_packet on both; ESP port esp0 towards the other
host; flows vm <-> esp0) and a glctld with its own host key (glctld --gen-key). One
ovsdb-server (root namespace) holds the Host rows (glctl add-host NAME IP PUBKEY).

  test_keys_session       both glctlds bring a session up on their own; ping and UDP
                          between the VMs go through it; the underlay carries ESP on the
                          SPIs glctld reports (and UDP handshakes, ARP); gldp's SAs are
                          the sessions'; no key material in any log; garbage datagrams on
                          the handshake port are counted, nothing else happens
  test_rekey_lossless     rekey every second under a paced UDP stream with sequence
                          numbers: several rekeys, no datagram lost, none duplicated
  test_rekey_by_packets   set-rekey 120 packets=300, then bytes=40000: a 3000-datagram
                          stream rekeys by packets, then by bytes, none lost
  test_revocation         revoke-host while a ping flood runs: the SAs between the hosts
                          are gone on both within one second (measured), the VMs' traffic
                          stops (esp_no_sa counts), nothing leaves in clear
  test_handshake_flood    forged inits (valid mac1) from one address: past the budget
                          glctld answers with cookies and does no Diffie-Hellman; the real
                          peer keeps rekeying through the cookie round; the session lives
  test_allow_encrypted    web -> db:5432 allowed only encrypted: through the ESP ports it
                          works; with A's flow sending the VM's traffic to the underlay in
                          clear nothing leaves (fw_not_encrypted at A); SYNs claiming web's
                          address in clear from the underlay are refused at db's port
  test_identity_across_hosts  SYNs through A's SA from web's address (A's workload) are
                          let in at db's port; from the address of a workload of another host
                          they are refused (fw_host_mismatch); datagrams of an established
                          connection injected in clear from the underlay are dropped
  test_workload_moves     web (A) -> db (B) allowed; both workloads move to the other host
                          (their rows: host, port, MAC, address): web (now B) reaches db (now A),
                          db -> web stays denied: the policy follows the labels
  test_glctld_restart     glctld A killed with SIGKILL: traffic keeps flowing on the
                          installed SAs; restarted, it makes new sessions and the SAs of
                          its previous life are retired (none left behind)
  test_sa_lifetime        set-rekey 1: every SA glctld installs has a hard lifetime of 31 s
                          in gldp; glctld A stopped (SIGSTOP), so that nothing rekeys: A's
                          SAs run out in gldp on their own, A's traffic to B is dropped and
                          counted (esp_sa_retired), nothing leaves in clear; SIGCONT: new
                          sessions, traffic again
"""

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from gltest import Env, Failure, binary, check, main, run  # noqa: E402
from test_glctld import SCHEMA, ctl_binary, wait_for  # noqa: E402
from test_gldp import udp_receiver  # noqa: E402

from scapy.all import IP, UDP, rdpcap  # noqa: E402
from scapy.layers.ipsec import ESP  # noqa: E402

IP_A, IP_B = "192.0.2.1", "192.0.2.2"
VM1, VM2 = "10.0.0.1", "10.0.0.2"


class Hypervisor:
    def __init__(self, cl, name, vm_outer, ul, ip, peer_ip):
        self.cl = cl
        env = cl.env
        self.env = env
        self.name = name
        self.ns = f"gl{env.tag}{name}"
        self.ip = ip
        self.ul = ul
        run(["ip", "netns", "add", self.ns])
        env.netns.append(self.ns)
        for dev in (vm_outer, ul):
            run(["ip", "link", "set", dev, "netns", self.ns])
            run(["ip", "-n", self.ns, "link", "set", dev, "up"])
        run(["ip", "-n", self.ns, "link", "set", "lo", "up"])
        run(["ip", "-n", self.ns, "addr", "add", f"{ip}/24", "dev", ul])
        self.sock = f"{cl.tmp}/{name}-gldp.sock"
        self.mgmt = f"{cl.tmp}/{name}-glctld.sock"
        self.key = f"{cl.tmp}/{name}.key"
        cmd = ["ip", "netns", "exec", self.ns, binary("gldp"), "--socket", self.sock,
               "--pmd-cores", "1", "--mbufs", "8192",
               "--port", f"vm=net_af_packet0,iface={vm_outer}",
               "--port", f"ul=net_af_packet1,iface={ul}"]
        env.launch_gldp(cmd, self.sock, f"{name}-gldp")
        r = self.dpctl("add-port", "esp0", f"gl_esp,underlay=ul,group=1,local={ip},remote={peer_ip}")
        check("added port 3" in r.stdout, f"{name}'s ESP port: {r.stdout}")
        self.dpctl("add-flow", "recirc_id(0),in_port(1)", "3")
        self.dpctl("add-flow", "recirc_id(0),in_port(3)", "1")
        self.pub = run([ctl_binary("glctld"), "--gen-key", self.key]).stdout.strip()
        self.glctld = None

    def start_glctld(self):
        wrap = os.environ.get("GL_WRAP", "").split()
        cmd = ["ip", "netns", "exec", self.ns, *wrap, ctl_binary("glctld"), "--db",
               f"unix:{self.cl.db_sock}", "--host", self.name, "--gldp-socket", self.sock,
               "--mgmt-socket", self.mgmt, "--key-file", self.key]
        self.glctld = self.env.start(cmd, f"{self.name}-glctld")
        wait_for(lambda: self.glctl("status", check_rc=False).returncode == 0,
                 what=f"{self.name}'s glctld")

    def dpctl(self, *args, check_rc=True):
        return run([binary("gl-dpctl"), "--socket", self.sock, *args], check_rc=check_rc)

    def glctl(self, *args, check_rc=True):
        return run([ctl_binary("glctl"), "--db", f"unix:{self.cl.db_sock}", "--mgmt-socket",
                    self.mgmt, *args], check_rc=check_rc)

    def keys(self):
        return json.loads(self.glctl("--json", "keys").stdout)

    def sas(self, show_keys=False):
        args = ["dump-sas", "--json"] + (["--show-keys"] if show_keys else [])
        sas = json.loads(self.dpctl(*args).stdout)
        for s in sas:
            s["spi"] = int(s["spi"], 16)
        return sas

    def drops(self):
        return json.loads(self.dpctl("show", "--json").stdout)["drops"]

    def session(self, peer="hvB"):
        for p in self.keys()["peers"]:
            if p["name"] == peer and p["active"] is not None:
                return p["active"]
        return None


class Cluster:
    def __init__(self, env, rekey=None, add_b=True):
        self.env = env
        self.tmp = tempfile.mkdtemp(prefix=f"gl{env.tag}-")
        env.files.append(self.tmp)
        self.db = f"{self.tmp}/goldilocks.db"
        self.db_sock = f"{self.tmp}/db.sock"
        run(["ovsdb-tool", "create", self.db, SCHEMA])
        oenv = dict(os.environ, OVS_RUNDIR=self.tmp, OVS_LOGDIR=self.tmp, OVS_DBDIR=self.tmp)
        env.start(["ovsdb-server", "--no-chdir", f"--remote=punix:{self.db_sock}",
                   f"--unixctl={self.tmp}/ovsdb.ctl", f"--log-file={self.tmp}/ovsdb.log",
                   self.db], "ovsdb-server", env=oenv)
        wait_for(lambda: run(["ovsdb-client", "--timeout=2", "list-dbs", f"unix:{self.db_sock}"],
                             check_rc=False).returncode == 0, what="ovsdb-server")
        self.ns1, o1, _ = env.host(1, VM1, mac="02:00:00:00:00:01")
        self.ns2, o2, _ = env.host(2, VM2, mac="02:00:00:00:00:02")
        ua, ub = f"gl{env.tag}ua"[:15], f"gl{env.tag}ub"[:15]
        run(["ip", "link", "add", ua, "type", "veth", "peer", "name", ub])
        env.links.append(ua)
        for dev in (ua, ub):
            run(["sysctl", "-qw", f"net.ipv6.conf.{dev}.disable_ipv6=1"], check_rc=False)
            run(["ethtool", "-K", dev, "tx", "off", "rx", "off"], check_rc=False)
        self.a = Hypervisor(self, "hvA", o1, ua, IP_A, IP_B)
        self.b = Hypervisor(self, "hvB", o2, ub, IP_B, IP_A)
        self.a.glctl("init")
        if rekey:
            self.a.glctl("set-rekey", str(rekey))
        self.a.glctl("add-host", "hvA", IP_A, self.a.pub)
        if add_b:  # else the caller adds it (glctl add-host hvB IP_B b.pub) when it wants
            self.a.glctl("add-host", "hvB", IP_B, self.b.pub)
        for hv in (self.a, self.b):
            hv.start_glctld()

    def wait_sessions(self, timeout=15):
        wait_for(lambda: self.a.session("hvB") and self.b.session("hvA"), timeout=timeout,
                 what="sessions on both hosts")
        return self.a.session("hvB"), self.b.session("hvA")


def udp_stream(env, src_ns, dst_ns, dst, port, count, rate):
    """Sends `count` datagrams with sequence numbers at `rate` per second from src_ns;
    returns a function that waits and returns (received, distinct, missing)."""
    recv = (
        "import socket,struct\n"
        "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
        "s.setsockopt(socket.SOL_SOCKET,socket.SO_RCVBUF,8<<20)\n"
        f"s.bind(('{dst}',{port})); s.settimeout(3)\n"
        "seen=set(); n=0\n"
        "try:\n"
        "  while True:\n"
        "    d=s.recv(2048); n+=1; seen.add(struct.unpack('!I',d[:4])[0])\n"
        "except Exception: pass\n"
        f"missing=[i for i in range({count}) if i not in seen]\n"
        "print(n,len(seen),len(missing),missing[:20])\n"
    )
    r = subprocess.Popen(["ip", "netns", "exec", dst_ns, "/usr/bin/python3", "-c", recv],
                         stdout=subprocess.PIPE, text=True)
    time.sleep(0.5)
    send = (
        "import socket,struct,time\n"
        "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
        f"t0=time.monotonic()\n"
        f"for i in range({count}):\n"
        f"  d=t0+i/{rate}-time.monotonic()\n"
        "  if d>0: time.sleep(d)\n"
        f"  s.sendto(struct.pack('!I',i)+b'x'*60,('{dst}',{port}))\n"
    )
    s = subprocess.Popen(["ip", "netns", "exec", src_ns, "/usr/bin/python3", "-c", send])

    def wait():
        s.wait(timeout=count / rate + 30)
        out, _ = r.communicate(timeout=60)
        f = out.split(maxsplit=3)
        return int(f[0]), int(f[1]), int(f[2]), f[3] if len(f) > 3 else ""

    return wait


def test_keys_session():
    with Env("ky") as env:
        cl = Cluster(env)
        a, b = cl.wait_sessions()
        check(a["spi_out"] == b["spi_in"] and a["spi_in"] == b["spi_out"],
              f"the two ends disagree on SPIs: A {a}, B {b}")
        check(a["n_out"] == 2 and a["n_in"] == 2,
              f"one PMD + the control thread on each side: 2 SAs each way, got {a}")
        # gldp's SAs are the sessions': A's outbound SPIs are B's inbound ones.
        sa_a, sa_b = cl.a.sas(), cl.b.sas()
        out_a = sorted(s["spi"] for s in sa_a if s["dir"] == "out")
        in_b = sorted(s["spi"] for s in sa_b if s["dir"] == "in")
        check(out_a == [a["spi_out"], a["spi_out"] + 1], f"A's outbound SAs {out_a}, session {a}")
        check(set(out_a) <= set(in_b), f"A sends on {out_a}, B accepts {in_b}")
        check(sorted(str(s["pmd"]) for s in sa_a if s["dir"] == "out") == ["0", "control"],
              f"outbound SAs not one per context: {sa_a}")

        cap = subprocess.Popen(["ip", "netns", "exec", cl.b.ns, "tcpdump", "-i", cl.b.ul, "-U",
                                "-nn", "-w", f"{cl.tmp}/ul.pcap"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)
        r = env.ping(cl.ns1, VM2, count=5)
        check(" 0% packet loss" in r.stdout, f"ping through the negotiated SAs:\n{r.stdout}")
        time.sleep(0.5)
        cap.terminate()
        cap.wait(timeout=10)
        frames = rdpcap(f"{cl.tmp}/ul.pcap")
        esp = [f for f in frames if f.haslayer(IP) and f[IP].proto == 50]
        spis = {f[ESP].spi for f in esp if f.haslayer(ESP)}
        check(len(esp) >= 5, f"only {len(esp)} ESP frames on the underlay")
        check(spis <= set(range(a["spi_out"], a["spi_out"] + 2)),
              f"SPIs on the wire {sorted(spis)}, A's session sends on {a['spi_out']}+2")
        clear = [f for f in frames if f.haslayer(IP) and (
            f[IP].src.startswith("10.0.0.") or f[IP].dst.startswith("10.0.0."))]
        check(not clear, f"VM traffic in clear on the underlay: {clear[0].summary() if clear else ''}")

        # No key material in the logs (the keys as gldp holds them).
        keys = [s["key"] for hv in (cl.a, cl.b) for s in hv.sas(show_keys=True) if s.get("key")]
        check(keys, "dump-sas --show-keys showed no keys")
        logs = env.log("hvA-glctld") + env.log("hvB-glctld") + env.log("hvA-gldp")
        for k in keys:
            check(k[:16] not in logs, "key material in a log")
        # Garbage on the handshake port: counted, no crash, the session stays.
        junk = ("import socket\n"
                "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
                "for m in (b'\\x01\\x01\\x00\\x00'+b'\\x00'*152, b'\\x02\\x01\\x00\\x00'+b'y'*96,"
                " b'\\x04\\x01\\x00\\x00'+b'z'*20, b'\\x09'*40, b'\\x01\\x01'):\n"
                f"  s.sendto(m,('{IP_A}',4797))\n")
        env.ns(cl.b.ns, "/usr/bin/python3", "-c", junk)
        time.sleep(0.5)
        k = cl.a.keys()
        c = k["counters"]
        check(c["refused"]["bad_mac1"] >= 1 and c["refused"]["bad_index"] >= 1 and
              c["bad_confirm"] >= 1 and c["unknown_message"] >= 2,
              f"garbage not counted: {c}")
        check(cl.a.glctld.poll() is None, "glctld A died")
        r = env.ping(cl.ns1, VM2, count=2)
        check(" 0% packet loss" in r.stdout, "ping after the garbage")
        text = cl.a.glctl("keys").stdout
        check(re.search(r"peer hvB \(192\.0\.2\.2\): (active|await-ack), ", text),
              f"glctl keys:\n{text}")

        # Replayed and out-of-order handshake messages (#13): the genuine datagrams of a few
        # rekeys, captured on the underlay, sent to A again once the rekeys are over, and a
        # datagram larger than any message. None may start a session or disturb the one in
        # force; each is refused and counted (an init by its timestamp, a response or ack by
        # its index, a confirm of the session in force is answered with the ack again).
        cap = subprocess.Popen(["ip", "netns", "exec", cl.b.ns, "tcpdump", "-i", cl.b.ul, "-U",
                                "-nn", "-w", f"{cl.tmp}/hs.pcap", "udp", "port", "4797"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)
        s0 = cl.a.keys()["counters"]["sessions"]
        cl.a.glctl("set-rekey", "1")
        wait_for(lambda: cl.a.keys()["counters"]["sessions"] >= s0 + 3, timeout=20,
                 what="three rekeys")
        cl.a.glctl("set-rekey", "120")
        wait_for(lambda: all(hv.keys()["rekey_seconds"] == 120 for hv in (cl.a, cl.b)),
                 what="set-rekey 120 in force")
        time.sleep(1.5)  # a rekey begun under the old setting has finished
        cap.terminate()
        cap.wait(timeout=10)
        frames = rdpcap(f"{cl.tmp}/hs.pcap")
        seen = set()
        for hv, peer, ip in ((cl.a, cl.b, IP_A), (cl.b, cl.a, IP_B)):
            msgs = [bytes(f[UDP].payload) for f in frames
                    if f.haslayer(UDP) and f[IP].dst == ip and f[UDP].dport == 4797]
            seen |= {m[0] for m in msgs}
            before = hv.keys()
            replay = ("import socket,sys\n"
                      "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
                      f"for m in {msgs!r} + [b'\\x01\\x01\\x00\\x00' + b'q' * 4000]:\n"
                      f"  s.sendto(m,('{ip}',4797))\n")
            env.ns(peer.ns, "/usr/bin/python3", "-c", replay)
            time.sleep(1.0)
            after = hv.keys()
            c0, c1 = before["counters"], after["counters"]
            check(c1["sessions"] == c0["sessions"], f"a replayed handshake made a session on "
                  f"{hv.name}: {c0['sessions']} -> {c1['sessions']}")
            refused = {k: c1["refused"][k] - c0["refused"][k] for k in c1["refused"]
                       if c1["refused"][k] != c0["refused"][k]}
            counted = c1["bad_confirm"] - c0["bad_confirm"] + c1["unknown_message"] - \
                c0["unknown_message"] + sum(refused.values())
            n_init = sum(1 for m in msgs if m[0] == 1)
            print(f"  replayed to {hv.name}: {len(msgs)} handshake datagrams (types "
                  f"{sorted({m[0] for m in msgs})}) and one of 4004 bytes: refused {refused}, "
                  f"bad_confirm {c1['bad_confirm'] - c0['bad_confirm']}, sessions "
                  f"{c0['sessions']} -> {c1['sessions']}")
            check(refused.get("replay", 0) >= n_init and refused.get("truncated", 0) >= 1,
                  f"{hv.name}: replayed inits or the oversized datagram not refused as such: "
                  f"{refused}")
            # All but a confirm of the session in force (answered with its ack again).
            check(counted >= len(msgs) - sum(1 for m in msgs if m[0] == 4),
                  f"{hv.name}: replays not all refused and counted: {counted} of {len(msgs)}")
        check({1, 2} <= seen, f"no init or response among the captured handshakes: {seen}")
        check(cl.a.glctld.poll() is None and cl.b.glctld.poll() is None, "a glctld died")
        r = env.ping(cl.ns1, VM2, count=2)
        check(" 0% packet loss" in r.stdout, "ping after the replays")


def test_rekey_lossless():
    with Env("kr") as env:
        cl = Cluster(env, rekey=1)
        first, _ = cl.wait_sessions()
        env.ping(cl.ns1, VM2, count=2)
        before = cl.a.keys()["counters"]["rekeys"] + cl.b.keys()["counters"]["rekeys"]
        no_sa = [hv.drops().get("esp_no_sa", 0) for hv in (cl.a, cl.b)]
        count, rate = 8000, 1000
        wait = udp_stream(env, cl.ns1, cl.ns2, VM2, 5001, count, rate)
        n, distinct, missing, which = wait()
        after = cl.a.keys()["counters"]["rekeys"] + cl.b.keys()["counters"]["rekeys"]
        print(f"  {count} datagrams at {rate}/s across {after - before} rekeys: received {n}, "
              f"distinct {distinct}, missing {missing}")
        check(after - before >= 4, f"only {after - before} rekeys in {count / rate:.0f} s")
        check(missing == 0, f"{missing} datagrams lost across rekeys: {which}")
        check(n == distinct, f"{n - distinct} duplicates")
        # Old SAs do not pile up: per direction the current one and those in their grace.
        sa_a = cl.a.sas()
        n_in = sum(1 for s in sa_a if s["dir"] == "in")
        check(n_in <= 2 * 6, f"{n_in} inbound SAs on A after the rekeys")
        no_sa_after = [hv.drops().get("esp_no_sa", 0) for hv in (cl.a, cl.b)]
        check(no_sa_after == no_sa, f"esp_no_sa drops during rekeys: {no_sa} -> {no_sa_after}")


def test_rekey_by_packets():
    """set-rekey 120 packets=300: a stream of 3000 datagrams (A -> B, 500/s) makes A rekey
    by packets (not by time), losing none."""
    with Env("kp") as env:
        cl = Cluster(env)
        cl.wait_sessions()
        env.ping(cl.ns1, VM2, count=2)
        cl.a.glctl("set-rekey", "120", "packets=300")
        wait_for(lambda: cl.a.keys()["rekey_packets"] == 300, what="rekey_packets in force")
        before = cl.a.keys()["counters"]["rekeys"] + cl.b.keys()["counters"]["rekeys"]
        n, distinct, missing, which = udp_stream(env, cl.ns1, cl.ns2, VM2, 5002, 3000, 500)()
        after = cl.a.keys()["counters"]["rekeys"] + cl.b.keys()["counters"]["rekeys"]
        by_packets = 0
        for name in ("hvA", "hvB"):
            with open(f"/tmp/{env.tag}-{name}-glctld.log") as f:
                by_packets += f.read().count("rekey by packets")
        print(f"  3000 datagrams, rekey_packets=300: {after - before} rekeys "
              f"({by_packets} logged as by packets), missing {missing}")
        check(by_packets >= 3, f"only {by_packets} rekeys by packets")
        check(missing == 0 and n == distinct, f"{missing} lost, {n - distinct} duplicated")
        # By bytes: 40 kB on an SA (the stream's frames are ~100 bytes each).
        cl.a.glctl("set-rekey", "120", "packets=0", "bytes=40000")
        wait_for(lambda: (lambda k: k["rekey_bytes"] == 40000 and k["rekey_packets"] == 0)(
            cl.a.keys()), what="rekey_bytes in force")
        n, distinct, missing, which = udp_stream(env, cl.ns1, cl.ns2, VM2, 5003, 3000, 500)()
        by_bytes = 0
        for name in ("hvA", "hvB"):
            with open(f"/tmp/{env.tag}-{name}-glctld.log") as f:
                by_bytes += f.read().count("rekey by bytes")
        print(f"  3000 datagrams, rekey_bytes=40000: {by_bytes} rekeys by bytes, missing {missing}")
        check(by_bytes >= 3, f"only {by_bytes} rekeys by bytes")
        check(missing == 0 and n == distinct, f"{missing} lost, {n - distinct} duplicated")


def test_revocation():
    with Env("kv") as env:
        cl = Cluster(env)
        cl.wait_sessions()
        env.ping(cl.ns1, VM2, count=2)
        flood = subprocess.Popen(["ip", "netns", "exec", cl.ns1, "ping", "-i", "0.01", "-q",
                                  VM2], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(1)
            t0 = time.time()
            cl.a.glctl("revoke-host", "hvB")
            gone = {}
            while time.time() - t0 < 5 and len(gone) < 2:
                for name, hv in (("hvA", cl.a), ("hvB", cl.b)):
                    if name not in gone and not hv.sas():
                        gone[name] = time.time() - t0
                time.sleep(0.02)
            print(f"  SAs gone after revoke-host: A {gone.get('hvA')} s, B {gone.get('hvB')} s")
            check(gone.get("hvA", 9) < 1.0, f"A still had SAs of B after 1 s ({gone})")
            check(gone.get("hvB", 9) < 1.0, f"B (revoked) still had SAs after 1 s ({gone})")
            before = cl.a.drops().get("esp_no_sa", 0)
            time.sleep(1)
            check(cl.a.drops().get("esp_no_sa", 0) > before,
                  "A's traffic to the revoked host is not dropped as esp_no_sa")
        finally:
            flood.terminate()
            flood.wait(timeout=10)
        r = env.ping(cl.ns1, VM2, count=2, check_rc=False)
        check(r.returncode != 0, "ping still works after revocation")
        k = cl.a.keys()
        p = next(p for p in k["peers"] if p["name"] == "hvB")
        check(p["active"] is None and p["problem"] == "revoked", f"A's view of B: {p}")


def test_handshake_flood():
    """Inits with a valid mac1 (the responder's public key is no secret) from one address:
    beyond the budget (200 handshakes per second) glctld answers with cookies and does no
    Diffie-Hellman; the real peer still rekeys through the cookie round."""
    with Env("kf") as env:
        cl = Cluster(env)
        cl.wait_sessions()
        cl.a.glctl("set-rekey", "1")
        before = cl.a.keys()["counters"]
        flood = (
            "import socket,hashlib,os,time,base64\n"
            f"pub=base64.b64decode('{cl.a.pub}')\n"
            "k=hashlib.sha256(b'mac1----'+pub).digest()\n"
            "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
            "t0=time.monotonic(); n=0\n"
            "while time.monotonic()-t0<4:\n"
            "  m=bytes([1,1,0,0])+os.urandom(120)\n"
            "  m+=hashlib.blake2b(m,key=k,digest_size=16).digest()+bytes(16)\n"
            f"  s.sendto(m,('{IP_A}',4797)); n+=1\n"
            "  if n%200==0: time.sleep(0.01)\n"
            "print(n, time.monotonic()-t0)\n")
        out = env.ns(cl.b.ns, "/usr/bin/python3", "-c", flood).stdout.split()
        sent, secs = int(out[0]), float(out[1])
        time.sleep(1.5)
        after = cl.a.keys()["counters"]
        dh = (after["refused"]["decrypt"] - before["refused"]["decrypt"])
        cookies = after["cookies_sent"] - before["cookies_sent"]
        rekeys = (after["rekeys"] - before["rekeys"]) + cl.b.keys()["counters"]["rekeys"]
        print(f"  {sent} forged inits in {secs:.1f} s: {dh} went to Diffie-Hellman, "
              f"{cookies} cookies sent, {rekeys} rekeys of the real peer meanwhile")
        check(dh <= 200 + 200 * (secs + 2), f"{dh} DH operations for {sent} forged inits")
        # (some of the flood is lost in the socket's receive buffer: not every init is seen)
        check(cookies >= 0.9 * (sent - dh), f"only {cookies} cookies for {sent - dh} inits over "
              "budget")
        check(rekeys >= 2, f"the real peer did not rekey through the flood ({rekeys})")
        check(cl.a.glctld.poll() is None, "glctld A died")
        r = env.ping(cl.ns1, VM2, count=3)
        check(" 0% packet loss" in r.stdout, "ping after the flood")


def test_allow_encrypted():
    """Policy says web -> db on TCP 5432 only encrypted (allow-encrypted, default deny).
    Through the ESP ports it works. A's switch then sends the VM's traffic straight to the
    underlay port (a wrong flow): nothing of it leaves in clear (fw_not_encrypted at A's
    port). A frame claiming to be web's, in clear on the underlay to db:5432, is refused
    at db's port (fw_not_encrypted), though an allow rule would let it through."""
    with Env("ke") as env:
        cl = Cluster(env)
        cl.wait_sessions()
        g = cl.a.glctl
        g("add-workload", "web", "host=hvA", "port=vm", "mac=02:00:00:00:00:01", f"ip={VM1}",
          "label=app=web")
        g("add-workload", "db", "host=hvB", "port=vm", "mac=02:00:00:00:00:02", f"ip={VM2}",
          "label=app=db")
        g("add-rule", "priority=100,from=app=web,to=app=db,tcp,tp_dst=5432,actions=allow-encrypted")
        for hv in (cl.a, cl.b):
            wait_for(lambda: (lambda s: s["policy"] == "accepted" and s["in_force"] and
                              s["local_workloads"] == 1)(json.loads(hv.glctl("--json", "status").stdout)),
                     what=f"{hv.name}'s firewall")
        srv = subprocess.Popen(["ip", "netns", "exec", cl.ns2, "/usr/bin/python3", "-c",
                                "import socket\n"
                                "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
                                f"s.bind(('{VM2}',5432)); s.listen(8)\n"
                                "while True:\n"
                                "  c,_=s.accept(); c.sendall(b'db:'+c.recv(100)); c.close()\n"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
        env.procs.append((srv, ""))
        time.sleep(0.5)
        client = ("import socket,sys\n"
                  "s=socket.socket(); s.settimeout(2)\n"
                  "try:\n"
                  f"  s.connect(('{VM2}',5432)); s.sendall(b'hi'); print(s.recv(100).decode())\n"
                  "except Exception as e: print('failed', e)\n")
        out = ""
        for _ in range(5):  # the first try also resolves ARP
            out = env.ns(cl.ns1, "/usr/bin/python3", "-c", client).stdout.strip()
            if out == "db:hi":
                break
        check(out == "db:hi", f"web -> db:5432 through ESP: {out}")
        env.ns(cl.ns1, "ip", "neigh", "replace", VM2, "lladdr", "02:00:00:00:00:02", "dev",
               f"gl{env.tag}i1"[:15])

        # A wrong flow at A: the VM's traffic straight to the underlay port, in clear.
        cl.a.dpctl("del-flow", "recirc_id(0),in_port(1)")
        cl.a.dpctl("add-flow", "recirc_id(0),in_port(1)", "2")
        cap = subprocess.Popen(["ip", "netns", "exec", cl.b.ns, "tcpdump", "-i", cl.b.ul, "-U",
                                "-nn", "-w", f"{cl.tmp}/clear.pcap"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)
        before = cl.a.drops().get("fw_not_encrypted", 0)
        out = env.ns(cl.ns1, "/usr/bin/python3", "-c", client).stdout.strip()
        time.sleep(1.0)
        cap.terminate()
        cap.wait(timeout=10)
        leaked = [f for f in rdpcap(f"{cl.tmp}/clear.pcap")
                  if f.haslayer(IP) and f[IP].dst == VM2]
        n = cl.a.drops().get("fw_not_encrypted", 0) - before
        print(f"  web -> db:5432 with A's flow to the underlay: {out}; fw_not_encrypted at A: "
              f"{n}; frames to {VM2} on the underlay: {len(leaked)}")
        check(out.startswith("failed"), f"web reached db in clear: {out}")
        check(n >= 1, "A did not count fw_not_encrypted")
        check(not leaked, f"{len(leaked)} frames to db left A in clear: "
              f"{leaked[0].summary() if leaked else ''}")

        # In clear on the underlay, web's address to db:5432, into B's VM port.
        cl.b.dpctl("add-flow", "recirc_id(0),in_port(2),eth_type(0x0800),ipv4(proto=6)", "1")
        before = cl.b.drops().get("fw_not_encrypted", 0)
        forged = (
            "from scapy.all import Ether,IP,TCP,sendp\n"
            "sendp([Ether(src='02:00:00:00:00:01',dst='02:00:00:00:00:02')/"
            f"IP(src='{VM1}',dst='{VM2}')/TCP(sport=40000+i,dport=5432,flags='S') for i in range(5)],"
            f" iface='{cl.a.ul}', verbose=False)\n")
        env.ns(cl.a.ns, "/usr/bin/python3", "-c", forged)
        deadline = time.time() + 5
        while (n := cl.b.drops().get("fw_not_encrypted", 0) - before) < 5 and time.time() < deadline:
            time.sleep(0.1)
        print(f"  5 forged SYNs in clear from the underlay to db:5432: fw_not_encrypted at B: {n}")
        check(n == 5, f"B counted {n} fw_not_encrypted of 5 forged SYNs")


def test_identity_across_hosts():
    """db (on B) accepts TCP 5432 from web (on A) and from ghost, a workload of a third
    host hvC (registered, not running). A, playing a compromised host, sends SYNs through
    its ESP port to db: from web's address they pass B's check; from ghost's address they
    are refused at db's port (fw_host_mismatch): A's SA cannot vouch for hvC's workloads."""
    with Env("ki") as env:
        cl = Cluster(env)
        cl.wait_sessions()
        g = cl.a.glctl
        g("add-host", "hvC", "192.0.2.3", "XcxlcdOpL6wqqSPAn6ZVeDaYeXTb48kEJnWZRb3T9xI=")
        g("add-workload", "web", "host=hvA", "port=vm", "mac=02:00:00:00:00:01", f"ip={VM1}",
          "label=app=web")
        g("add-workload", "db", "host=hvB", "port=vm", "mac=02:00:00:00:00:02", f"ip={VM2}",
          "label=app=db")
        g("add-workload", "ghost", "host=hvC", "port=vm", "mac=02:00:00:00:00:09",
          "ip=10.0.0.9", "label=app=ghost")
        g("add-rule", "priority=100,from=app=web|app=ghost,to=app=db,tcp,tp_dst=5432,actions=allow")
        wait_for(lambda: (lambda s: s["policy"] == "accepted" and s["in_force"] and
                          s["local_workloads"] == 1)(json.loads(cl.b.glctl("--json", "status").stdout)),
                 what="B's firewall")
        # A forwards what arrives on its underlay port from those addresses into its ESP
        # port (a host that encrypts whatever it likes).
        for src in (VM1, "10.0.0.9"):
            cl.a.dpctl("add-flow", f"recirc_id(0),in_port(2),eth_type(0x0800),ipv4(src={src},proto=6)",
                       "3")

        def syns(src, first_port):
            code = ("from scapy.all import Ether,IP,TCP,sendp\n"
                    "sendp([Ether(src='02:00:00:00:00:aa',dst='02:00:00:00:00:02')/"
                    f"IP(src='{src}',dst='{VM2}')/TCP(sport={first_port}+i,dport=5432,flags='S')"
                    f" for i in range(5)], iface='{cl.b.ul}', verbose=False)\n")
            env.ns(cl.b.ns, "/usr/bin/python3", "-c", code)

        def counters():
            d = cl.b.drops()
            stats = json.loads(cl.b.dpctl("fw-rule-stats", "--json").stdout)
            if isinstance(stats, dict):
                stats = stats.get("rules", [])
            conns = sum(r.get("connections", r.get("conns", 0)) for r in stats
                        if r.get("rule_id", 0) != 0)
            return d.get("fw_host_mismatch", 0), conns

        m0, c0 = counters()
        syns(VM1, 41000)
        wait_for(lambda: counters()[1] >= c0 + 5, timeout=5, what="web's SYNs let in at db")
        m1, c1 = counters()
        syns("10.0.0.9", 42000)
        wait_for(lambda: counters()[0] >= m1 + 5, timeout=5, what="ghost's SYNs refused at db")
        m2, c2 = counters()
        print(f"  through A's SA: 5 SYNs from web's address -> {c1 - c0} connections at db, "
              f"{m1 - m0} refused; 5 from hvC's ghost -> {c2 - c1} connections, {m2 - m1} "
              "refused (fw_host_mismatch)")
        check(m1 == m0 and c1 - c0 == 5, "web's SYNs through A's SA were not let in")
        check(m2 - m1 == 5 and c2 == c1, "ghost's SYNs through A's SA were not refused")

        # An established connection keeps to its way in: web's UDP to db:5005 (through the
        # ESP ports), then datagrams of the same 5-tuple in clear from the underlay into
        # db's port are dropped (fw_host_mismatch), web's own keep arriving.
        g("add-rule", "priority=100,from=app=web,to=app=db,udp,tp_dst=5005,actions=allow")
        wait_for(lambda: json.loads(cl.b.glctl("--json", "status").stdout)["rules"] == 2,
                 what="the UDP rule")
        wait = udp_receiver(env, cl.ns2, VM2, 5005, 10, timeout=6)
        send = ("import socket,time\n"
                "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind(('{0}',33333))\n"
                "for i in range(5): s.sendto(b'web',('{1}',5005)); time.sleep(0.05)\n")
        env.ns(cl.ns1, "/usr/bin/python3", "-c", send.format(VM1, VM2))
        cl.b.dpctl("add-flow", "recirc_id(0),in_port(2),eth_type(0x0800),ipv4(proto=17)", "1")
        m3 = cl.b.drops().get("fw_host_mismatch", 0)
        forged = ("from scapy.all import Ether,IP,UDP,sendp\n"
                  "sendp([Ether(src='02:00:00:00:00:aa',dst='02:00:00:00:00:02')/"
                  f"IP(src='{VM1}',dst='{VM2}')/UDP(sport=33333,dport=5005)/b'forged'"
                  f" for i in range(5)], iface='{cl.b.ul}', verbose=False)\n")
        env.ns(cl.b.ns, "/usr/bin/python3", "-c", forged)
        env.ns(cl.ns1, "/usr/bin/python3", "-c", send.format(VM1, VM2))
        got = wait()
        m4 = cl.b.drops().get("fw_host_mismatch", 0)
        print(f"  established UDP web -> db:5005: {got} of web's 10 datagrams arrived; 5 of the "
              f"same tuple in clear from the underlay: {m4 - m3} dropped (fw_host_mismatch)")
        check(m4 - m3 == 5, f"{m4 - m3} of 5 clear datagrams into the connection dropped")
        check(got == 10, f"web's own datagrams: {got} of 10")


def tcp_try(env, ns, dst, port, tries=5):
    client = ("import socket\n"
              "s=socket.socket(); s.settimeout(2)\n"
              "try:\n"
              f"  s.connect(('{dst}',{port})); s.sendall(b'hi'); print(s.recv(100).decode())\n"
              "except Exception as e: print('failed', e)\n")
    out = ""
    for _ in range(tries):
        out = env.ns(ns, "/usr/bin/python3", "-c", client).stdout.strip()
        if not out.startswith("failed"):
            break
    return out


def echo_server(env, ns, addr, port):
    srv = subprocess.Popen(["ip", "netns", "exec", ns, "/usr/bin/python3", "-c",
                            "import socket\n"
                            "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
                            f"s.bind(('{addr}',{port})); s.listen(8)\n"
                            "while True:\n"
                            "  c,_=s.accept(); c.sendall(b'echo:'+c.recv(100)); c.close()\n"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           start_new_session=True)
    env.procs.append((srv, ""))
    time.sleep(0.5)


def test_workload_moves():
    """web (on A) may reach db (on B) on TCP 5432, encrypted. The two workloads then move
    to each other's host (Workload rows: host, port, MAC, address): the rule follows the
    labels, so the new web reaches the new db across the hosts the other way round, and the
    old direction is now db -> web, denied."""
    with Env("km") as env:
        cl = Cluster(env)
        cl.wait_sessions()
        g = cl.a.glctl
        g("add-workload", "web", "host=hvA", "port=vm", "mac=02:00:00:00:00:01", f"ip={VM1}",
          "label=app=web")
        g("add-workload", "db", "host=hvB", "port=vm", "mac=02:00:00:00:00:02", f"ip={VM2}",
          "label=app=db")
        g("add-rule", "priority=100,from=app=web,to=app=db,tcp,tp_dst=5432,actions=allow-encrypted")

        def in_force(n_local=1):
            for hv in (cl.a, cl.b):
                wait_for(lambda: (lambda s: s["policy"] == "accepted" and s["in_force"] and
                                  s["local_workloads"] == n_local)(
                                      json.loads(hv.glctl("--json", "status").stdout)),
                         what=f"{hv.name}'s firewall")
        in_force()
        echo_server(env, cl.ns2, VM2, 5432)
        echo_server(env, cl.ns1, VM1, 5432)
        before = tcp_try(env, cl.ns1, VM2, 5432)
        denied_before = tcp_try(env, cl.ns2, VM1, 5432, tries=1)
        # The move: web leaves A, db comes to A with web's former port and address, web
        # comes back on B.
        g("del-workload", "web")
        g("set-workload", "db", "host=hvA", "port=vm", "mac=02:00:00:00:00:01", f"ip={VM1}")
        g("add-workload", "web", "host=hvB", "port=vm", "mac=02:00:00:00:00:02", f"ip={VM2}",
          "label=app=web")
        in_force()
        after = tcp_try(env, cl.ns2, VM1, 5432)
        denied_after = tcp_try(env, cl.ns1, VM2, 5432, tries=1)
        print(f"  before the move: web(A)->db(B) {before!r}, db(B)->web(A) {denied_before!r}; "
              f"after: web(B)->db(A) {after!r}, db(A)->web(B) {denied_after!r}")
        check(before == "echo:hi" and denied_before.startswith("failed"), "before the move")
        check(after == "echo:hi", f"web -> db after the move: {after}")
        check(denied_after.startswith("failed"), f"db -> web after the move: {denied_after}")


def test_glctld_restart():
    with Env("kk") as env:
        cl = Cluster(env)
        first, _ = cl.wait_sessions()
        env.ping(cl.ns1, VM2, count=2)
        cl.a.glctld.kill()
        cl.a.glctld.wait(timeout=10)
        r = env.ping(cl.ns1, VM2, count=5)
        check(" 0% packet loss" in r.stdout, "traffic stopped with glctld A down")
        cl.a.start_glctld()
        wait_for(lambda: (lambda s: s and s["spi_in"] != first["spi_in"])(cl.a.session("hvB")),
                 timeout=15, what="a new session after the restart")
        r = env.ping(cl.ns1, VM2, count=3)
        check(" 0% packet loss" in r.stdout, "ping after glctld's restart")
        new = cl.a.session("hvB")
        # The previous life's inbound SAs go after their grace period.
        def only_new():
            spis = sorted(s["spi"] for s in cl.a.sas() if s["dir"] == "in")
            want = [new["spi_in"] + i for i in range(new["n_in"])]
            return spis == want or None
        wait_for(only_new, timeout=10, what="A's old inbound SAs retired")


def test_sa_lifetime():
    with Env("ke") as env:
        cl = Cluster(env, rekey=1)
        cl.wait_sessions()
        env.ping(cl.ns1, VM2, count=2)
        check(cl.a.keys()["sa_lifetime_seconds"] == 31, f"lifetime {cl.a.keys()}")
        text = cl.a.glctl("keys").stdout
        check("SA lifetime 31 s" in text and "lifetime left" in text, f"glctl keys:\n{text}")
        # Every SA of the sessions is due to go in gldp (retire_ms), within the lifetime.
        sas = cl.a.sas() + cl.b.sas()
        check(sas and all(0 < s["retire_ms"] <= 31000 for s in sas),
              f"SAs without a lifetime in gldp: {[(s['spi'], s['retire_ms']) for s in sas]}")
        cap = subprocess.Popen(["ip", "netns", "exec", cl.b.ns, "tcpdump", "-i", cl.b.ul, "-U",
                                "-nn", "-w", f"{cl.tmp}/ul.pcap"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        flood = subprocess.Popen(["ip", "netns", "exec", cl.ns1, "ping", "-i", "0.05", "-q",
                                  VM2], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        pid = cl.a.glctld.pid
        os.kill(pid, signal.SIGSTOP)
        try:
            t0 = time.time()
            wait_for(lambda: not [s for s in cl.a.sas() if s["dir"] == "out"], timeout=40,
                     what="A's outbound SAs to run out with glctld A stopped")
            gone = time.time() - t0
            before = cl.a.drops().get("esp_sa_retired", 0)
            time.sleep(1)
            dropped = cl.a.drops().get("esp_sa_retired", 0) - before
            print(f"  glctld A stopped: A's outbound SAs gone after {gone:.1f} s, then "
                  f"{dropped} pings dropped in 1 s (esp_sa_retired)")
            check(dropped > 0,
                  "A's traffic to B not dropped as esp_sa_retired once its SAs ran out")
        finally:
            os.kill(pid, signal.SIGCONT)
            flood.terminate()
            flood.wait(timeout=10)
        t0 = time.time()
        wait_for(lambda: [s for s in cl.a.sas() if s["dir"] == "out"], timeout=15,
                 what="A's outbound SAs again after SIGCONT")
        print(f"  SIGCONT: A's outbound SAs back after {time.time() - t0:.1f} s")
        r = env.ping(cl.ns1, VM2, count=3)
        check(" 0% packet loss" in r.stdout, "ping after glctld A came back")
        cap.terminate()
        cap.wait(timeout=10)
        frames = rdpcap(f"{cl.tmp}/ul.pcap")
        clear = [f for f in frames if f.haslayer(IP) and (
            f[IP].src.startswith("10.0.0.") or f[IP].dst.startswith("10.0.0."))]
        check(not clear, f"VM traffic in clear on the underlay: {clear[0].summary() if clear else ''}")


if __name__ == "__main__":
    main([test_keys_session, test_rekey_lossless, test_rekey_by_packets, test_revocation,
          test_handshake_flood, test_allow_encrypted, test_identity_across_hosts,
          test_workload_moves, test_glctld_restart, test_sa_lifetime])
