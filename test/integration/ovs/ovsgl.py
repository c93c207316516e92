"""Helpers for tests of Open vSwitch with datapath type gl (ovs-vswitchd-gl + gldp).

OvsEnv extends gltest.Env: besides namespaces and gldp it starts an ovsdb-server with a
fresh database and ovs-vswitchd-gl, each with its own run directory, sockets and logs
under /tmp/<tag>-ovs, and removes all of it on exit (processes by pid, the bridge's tap
interface, the run directory). The OVS command-line tools are Debian's (same 3.1.0).
"""

import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import gltest  # noqa: E402
from gltest import Failure, check, run  # noqa: E402,F401

SCHEMA = "/usr/share/openvswitch/vswitch.ovsschema"


def vswitchd_gl():
    p = os.path.join(gltest.BUILD, "ovs", "ovs-vswitchd-gl")
    if not os.path.exists(p):
        raise FileNotFoundError(f"{p} missing: build the ovs-vswitchd-gl target")
    return os.path.abspath(p)


class OvsEnv(gltest.Env):
    def __init__(self, tag):
        super().__init__(tag)
        self.rundir = f"/tmp/{self.tag}-ovs"
        shutil.rmtree(self.rundir, ignore_errors=True)
        os.makedirs(self.rundir)
        self.db = f"unix:{self.rundir}/db.sock"
        self.ctl = f"{self.rundir}/ovs-vswitchd.ctl"
        self.env = dict(os.environ, OVS_RUNDIR=self.rundir, OVS_LOGDIR=self.rundir,
                        OVS_DBDIR=self.rundir)
        self.bridges = []
        self.vswitchd_proc = None

    # -- processes -------------------------------------------------------------------
    def ovsdb(self):
        run(["ovsdb-tool", "create", f"{self.rundir}/conf.db", SCHEMA])
        self.start(["ovsdb-server", f"{self.rundir}/conf.db", f"--remote=punix:{self.rundir}/db.sock",
                    f"--unixctl={self.rundir}/ovsdb-server.ctl", "--no-chdir",
                    f"--log-file={self.rundir}/ovsdb-server.log"], "ovsdb", env=self.env)
        deadline = time.time() + 10
        while not os.path.exists(f"{self.rundir}/db.sock"):
            if time.time() > deadline:
                raise Failure("ovsdb-server did not come up")
            time.sleep(0.05)
        self.vsctl("--no-wait", "init")

    def vswitchd(self):
        env = dict(self.env, GLDP_SOCKET=self.sock)
        p = self.start([vswitchd_gl(), self.db, f"--unixctl={self.ctl}", "--no-chdir",
                        f"--log-file={self.rundir}/ovs-vswitchd.log"], "vswitchd", env=env)
        self.vswitchd_proc = p
        deadline = time.time() + 20
        while time.time() < deadline:
            if p.poll() is not None:
                raise Failure(f"ovs-vswitchd-gl exited ({p.returncode}):\n{self.vlog()}")
            if os.path.exists(self.ctl) and self.appctl("version", check_rc=False).returncode == 0:
                return p
            time.sleep(0.1)
        raise Failure(f"ovs-vswitchd-gl did not come up:\n{self.vlog()}")

    def stop_vswitchd(self, graceful=True):
        """Stops ovs-vswitchd with `ovs-appctl exit` or, graceful=False, with SIGKILL (kill
        -9: no bridge teardown, no cleanup of its own; the datapath is left exactly as it
        was)."""
        p = self.vswitchd_proc
        if graceful:
            self.appctl("exit", check_rc=False)
        else:
            p.kill()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()

    def start_all(self):
        self.ovsdb()
        self.gldp()
        self.vswitchd()

    def vlog(self):
        try:
            with open(f"{self.rundir}/ovs-vswitchd.log") as f:
                return f.read()[-6000:]
        except OSError:
            return ""

    # -- tools -----------------------------------------------------------------------
    def vsctl(self, *args, check_rc=True):
        return run(["ovs-vsctl", f"--db={self.db}", "--timeout=30", *args], check_rc=check_rc,
                   env=self.env)

    def ofctl(self, *args, check_rc=True):
        return run(["ovs-ofctl", *args], check_rc=check_rc, env=self.env)

    def appctl(self, *args, check_rc=True):
        return run(["ovs-appctl", "-t", self.ctl, *args], check_rc=check_rc, env=self.env)

    def bridge(self, name=None):
        br = name or f"glb{self.tag}"[:15]
        self.bridges.append(br)
        self.links.append(br)  # the internal port's tap, if anything is left of it
        r = self.vsctl("add-br", br, "--", "set", "bridge", br, "datapath_type=gl",
                       "fail-mode=standalone")
        # The bridge's own port is added without complaint ("could not add network device
        # ... (Invalid argument)" was a tap of the bridge's name in the way: EEXIST now,
        # test_ovs_gl.py test_bridge_name_taken).
        bad = [line for line in self.vlog().splitlines()
               if "could not add network device" in line or "failed to create bridge" in line]
        if r.stderr.strip() or bad:
            raise Failure(f"add-br {br}: {r.stderr}{bad}")
        return br

    def add_port(self, br, name, *settings):
        args = ["add-port", br, name]
        if settings:
            args += ["--", "set", "Interface", name, *settings]
        self.vsctl(*args)

    def ofport(self, name):
        return int(self.vsctl("get", "Interface", name, "ofport").stdout.strip())

    def wait_ports(self, br, names, timeout=15):
        """Waits until every port has an OpenFlow port number (is in the datapath)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if all(self.ofport(n) > 0 for n in names):
                return
            time.sleep(0.1)
        raise Failure(f"ports {names} not up on {br}:\n{self.vsctl('show').stdout}\n{self.vlog()}")

    def dump_flows(self, br):
        """[(match, actions, n_packets)] of ovs-ofctl dump-flows."""
        out = []
        for line in self.ofctl("dump-flows", br).stdout.splitlines():
            if "actions=" not in line:
                continue
            fields = dict(kv.split("=", 1) for kv in line.strip().split(", ") if "=" in kv
                          and kv.split("=", 1)[0] in ("n_packets", "n_bytes"))
            out.append((line.strip(), int(fields.get("n_packets", "0"))))
        return out

    def dp_flows(self):
        return self.appctl("dpctl/dump-flows").stdout.splitlines()

    def cleanup(self):
        if self.vswitchd_proc is not None and self.vswitchd_proc.poll() is None:
            # Leave gldp with no bridge ports; gldp's exit removes its tap devices anyway.
            for br in self.bridges:
                subprocess.run(["ovs-vsctl", f"--db={self.db}", "--timeout=5", "--if-exists",
                                "del-br", br], capture_output=True, env=self.env)
        super().cleanup()
        if not os.environ.get("GL_KEEP_LOGS"):
            shutil.rmtree(self.rundir, ignore_errors=True)
