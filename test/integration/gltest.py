"""Shared helpers for Goldilocks integration tests.

Each test runs real processes (gldp, gl-dpctl, ping, ...) against network namespaces it
creates itself, with names unique to the test's pid, and removes everything it created
(processes by pid, namespaces, veth links, sockets) on exit, also when it fails.

Run with Debian's /usr/bin/python3 (scapy lives there). Needs root.
"""

import atexit
import json
import os
import signal
import subprocess
import sys
import time
import traceback

BUILD = os.environ.get("GL_BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "build"))


def binary(name):
    for sub in ("dataplane", "tools", "test/integration", "tools/pktgen", "bench"):
        p = os.path.join(BUILD, sub, name)
        if os.path.exists(p):
            return os.path.abspath(p)
    raise FileNotFoundError(f"{name} not found under {BUILD}")


class Failure(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failure(msg)


def run(cmd, check_rc=True, timeout=60, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if check_rc and r.returncode != 0:
        raise Failure(f"command failed ({r.returncode}): {' '.join(cmd)}\n{r.stdout}{r.stderr}")
    return r


def run_dpdk(cmd, check_rc=True, timeout=60, **kw):
    """run() for a DPDK program (gl-pktgen) that attaches net_af_packet ports while another
    DPDK process (gldp) has its own: DPDK 22.11 names an af_packet socket's PACKET_FANOUT
    group (pid ^ ifindex) & 0xffff, and when that equals the other process's group on
    another link the kernel refuses it. Such a start is retried (another pid), up to 5."""
    for _ in range(4):
        r = run(cmd, check_rc=False, timeout=timeout, **kw)
        if r.returncode == 0 or "PACKET_FANOUT" not in r.stdout + r.stderr:
            break
    else:
        r = run(cmd, check_rc=False, timeout=timeout, **kw)
    if check_rc and r.returncode != 0:
        raise Failure(f"command failed ({r.returncode}): {' '.join(cmd)}\n{r.stdout}{r.stderr}")
    return r


class Env:
    """Namespaces, veth pairs and processes of one test; cleaned up at exit."""

    def __init__(self, tag):
        self.tag = f"{tag}{os.getpid() % 100000}"
        self.netns = []
        self.links = []
        self.procs = []
        self.files = []
        self.state_files = set()  # gldp's firewall state (<socket>.fw-ports), removed at exit
        atexit.register(self.cleanup)
        for s in (signal.SIGTERM, signal.SIGINT):
            signal.signal(s, lambda *_: sys.exit(1))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()
        return False

    # -- topology ------------------------------------------------------------------
    def host(self, idx, ip, prefix=24, mac=None):
        """A namespace "VM" with one veth: the namespace end gets `ip`, the root end is
        returned for gldp to attach to with net_af_packet."""
        ns = f"gl{self.tag}h{idx}"
        outer = f"gl{self.tag}o{idx}"[:15]
        inner = f"gl{self.tag}i{idx}"[:15]
        run(["ip", "netns", "add", ns])
        self.netns.append(ns)
        run(["ip", "link", "add", outer, "type", "veth", "peer", "name", inner])
        self.links.append(outer)
        run(["ip", "link", "set", inner, "netns", ns])
        if mac:
            run(["ip", "-n", ns, "link", "set", inner, "address", mac])
        run(["ip", "-n", ns, "addr", "add", f"{ip}/{prefix}", "dev", inner])
        run(["ip", "-n", ns, "link", "set", inner, "up"])
        run(["ip", "-n", ns, "link", "set", "lo", "up"])
        run(["ip", "link", "set", outer, "up"])
        # No IPv6 autoconf chatter on the test links, no offloads that af_packet would see
        # as bad checksums.
        run(["sysctl", "-qw", f"net.ipv6.conf.{outer}.disable_ipv6=1"], check_rc=False)
        for dev, nsargs in ((outer, []), (inner, ["ip", "netns", "exec", ns])):
            run(nsargs + ["ethtool", "-K", dev, "tx", "off", "rx", "off"], check_rc=False)
        return ns, outer, inner

    def ns_mac(self, ns, dev):
        out = run(["ip", "-n", ns, "-j", "link", "show", dev]).stdout
        return json.loads(out)[0]["address"]

    # -- processes -------------------------------------------------------------------
    def start(self, cmd, log_name, env=None):
        log = open(f"/tmp/{self.tag}-{log_name}.log", "w")
        self.files.append(log.name)
        p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                             start_new_session=True)
        self.procs.append((p, log.name))
        return p

    def gldp(self, ports=(), pmd_cores="1", extra=()):
        sock = f"/tmp/{self.tag}-gldp.sock"
        self.sock = sock
        cmd = [binary("gldp"), "--socket", sock, "--pmd-cores", pmd_cores]
        for name, devargs in ports:
            cmd += ["--port", f"{name}={devargs}"]
        cmd += list(extra)
        p = self.launch_gldp(cmd, sock, "gldp")
        self.gldp_proc = p
        return p

    def launch_gldp(self, cmd, sock, log_name):
        """Starts a gldp command line and waits until it answers on `sock`.

        DPDK 22.11's net_af_packet names its PACKET_FANOUT group (pid ^ ifindex) & 0xffff;
        when that equals another gldp's group on another link of this namespace (tests run
        two "hypervisors"), the kernel refuses it (EINVAL) and gldp exits: it is started
        again, with another pid."""
        state = f"{sock}.fw-ports"  # gldp --fw-state's default
        if state not in self.state_files:  # none left by an earlier test of this name
            self.state_files.add(state)
            try:
                os.unlink(state)
            except OSError:
                pass
        for attempt in range(5):
            p = self.start(cmd, log_name)
            deadline = time.time() + 30
            while time.time() < deadline:
                if p.poll() is not None:
                    break
                if os.path.exists(sock) and run([binary("gl-dpctl"), "--socket", sock, "show"],
                                                check_rc=False).returncode == 0:
                    return p
                time.sleep(0.1)
            else:
                raise Failure(f"{log_name} did not come up:\n{self.log(log_name)}")
            if "PACKET_FANOUT" not in self.log(log_name) or attempt == 4:
                raise Failure(f"{log_name} exited ({p.returncode}):\n{self.log(log_name)}")

    def log(self, name):
        try:
            with open(f"/tmp/{self.tag}-{name}.log") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def dpctl(self, *args, check_rc=True):
        return run([binary("gl-dpctl"), "--socket", self.sock, *args], check_rc=check_rc)

    def show(self):
        return json.loads(self.dpctl("show", "--json").stdout)

    def port_stats(self, name):
        for p in self.show()["ports"]:
            if p["name"] == name:
                return p
        raise Failure(f"no port {name} in show --json")

    def drops(self):
        return self.show()["drops"]

    def ns(self, ns, *cmd, check_rc=True, timeout=60):
        return run(["ip", "netns", "exec", ns, *cmd], check_rc=check_rc, timeout=timeout)

    def ping(self, ns, dst, count=3, check_rc=True):
        return self.ns(ns, "ping", "-c", str(count), "-i", "0.2", "-W", "2", dst,
                       check_rc=check_rc)

    def cleanup(self):
        for p, _ in reversed(self.procs):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                    p.wait(timeout=10)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    try:
                        os.killpg(p.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
        self.procs.clear()
        for link in self.links:
            subprocess.run(["ip", "link", "del", link], capture_output=True)
        self.links.clear()
        for ns in self.netns:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        self.netns.clear()
        for f in self.state_files:
            try:
                os.unlink(f)
            except OSError:
                pass
        self.state_files.clear()
        for f in self.files:
            if not os.environ.get("GL_KEEP_LOGS"):
                try:
                    os.unlink(f)
                except OSError:
                    pass
        self.files.clear()


def main(tests):
    """Runs test functions in order; prints one line per test and a summary."""
    passed = failed = 0
    only = sys.argv[1:]
    for t in tests:
        if only and t.__name__ not in only:
            continue
        start = time.time()
        try:
            t()
            passed += 1
            print(f"PASS {t.__name__} ({time.time() - start:.1f}s)", flush=True)
        except Exception as e:  # noqa: BLE001 - report every failure, keep going
            failed += 1
            print(f"FAIL {t.__name__}: {e}", flush=True)
            if not isinstance(e, Failure):  # a bug in the test (or a tool's odd output)
                traceback.print_exc()
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
