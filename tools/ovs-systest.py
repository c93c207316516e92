#!/usr/bin/python3
"""Runs Open vSwitch's own userspace system tests against datapath type gl.

OVS's `make check-system-userspace` runs tests/system-userspace-testsuite: bridges of
datapath_type=netdev in an ovs-vswitchd started with --disable-system, veth pairs into
network namespaces, ping/http/ovs-ofctl/dpctl checks. This runner builds the same test
suite from the same OVS sources (Debian's openvswitch-source, as unpacked by
tools/build-ovs.sh into BUILD/ovs/src; nothing of it is modified or committed) with one
more macro file, test/integration/ovs/system-gl-macros.at, included after OVS's own:
it starts gldp in every test and creates the bridges with datapath_type=gl, and PATH
puts ovs-vswitchd-gl first as "ovs-vswitchd". Two OVS test files that create bridges
themselves (system-interface.at, system-userspace-packet-type-aware.at) are copied
with datapath_type=netdev switched to gl.

Which tests: by default the conformance target, i.e. the tests stock OVS passes on this
machine (ovs-systest-baseline.md; BASELINE below), minus those that need what gldp does
not offer through OVS (SKIP below: tunnels, MPLS, NSH, QoS, ...), which are reported
as skipped with the reason, plus OVS's FTP and TFTP tests (EXTRA below), counted apart.
--all runs every test of the suite (minus SKIP), --no-skip also the SKIP ones, --tests
runs exactly the numbers given. Tests run one at a time (each
starts its own gldp with a PMD on core 1).

Prints one line per test and a closing "N passed, N failed, N skipped" line; exits 0
when nothing failed, 1 otherwise, 77 when the environment cannot run the suite (not
root, autom4te missing, OVS not built). Needs root; creates namespaces, veth and tap
links and removes them (also the leftover ovs-netdev/br0 links of an interrupted run).

  tools/ovs-systest.py --build build                 # the conformance target
  tools/ovs-systest.py --build build --tests 1,2,5   # the CTest subset
  tools/ovs-systest.py --build build --all -v        # everything, autotest's output too

OVS's tests use fixed interface and namespace names, so runs on one machine take turns
(a lock in /run/lock; a second run waits up to --lock-wait seconds).

Failed tests keep their directory (logs, ovs-vswitchd.log, gldp.log, testsuite.log)
under BUILD/ovs/systest/tests/system-gl-testsuite.dir/NNN/.
"""

import argparse
import fcntl
import os
import re
import shutil
import subprocess
import sys
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OVERLAY = os.path.join(TOP, "test", "integration", "ovs", "system-gl-macros.at")
SUITE = "system-gl-testsuite"
WANT_SERIES = "3.1."

# The tests stock OVS 3.1 (datapath_type=netdev) passes on this machine (number: title),
# from /work/shared/ovs-systest-baseline.md. Titles are what is matched; numbers are
# checked against the suite's own list.
BASELINE = """
1: datapath - ping between two ports
2: datapath - http between two ports
5: datapath - ping6 between two ports
8: datapath - ping6 between two ports IPv6 later fragments
9: datapath - ping6 between two ports with header modify
11: datapath - ping over vxlan tunnel
13: datapath - ping over vxlan6 tunnel
30: datapath - clone action
31: datapath - mpls actions
32: datapath - multiple mpls label pop
33: datapath - encap decap mpls actions
34: datapath - encap decap mpls_mc actions
35: datapath - multiple encap decap mpls actions
36: datapath - multiple encap decap mpls_mc actions
37: datapath - encap mpls pop mpls actions
38: datapath - push mpls decap mpls actions
39: datapath - basic truncate action
43: datapath - simulated flow action update
44: mpls - encap header dp-support
45: mpls - encap header slow-path
46: mpls_mc - encap header dp-support
47: mpls_mc - encap header slow-path
48: mpls - decap header dp-support
49: mpls - decap header slow-path
50: QoS - basic configuration
51: conntrack - controller
52: conntrack - force commit
53: conntrack - ct flush
54: conntrack - IPv4 ping
55: conntrack - get_nconns and get/set_maxconns
56: conntrack - IPv6 ping
57: conntrack - preserve registers
58: conntrack - invalid
59: conntrack - zones
60: conntrack - zones from field
61: conntrack - zones from other field
62: conntrack - zones from other field, more tests
63: conntrack - multiple bridges
64: conntrack - multiple zones
66: conntrack - ct_mark
67: conntrack - ct_mark bit-fiddling
68: conntrack - ct_mark from register
69: conntrack - ct_label
70: conntrack - ct_label bit-fiddling
71: conntrack - ct metadata, multiple zones
72: conntrack - new connections
73: conntrack - generic IP protocol
74: conntrack - ICMP related
75: conntrack - ICMP related to original direction
76: conntrack - ICMP related 2
77: conntrack - IPv4 fragmentation
78: conntrack - IPv4 fragmentation expiry
81: conntrack - IPv4 fragmentation incomplete reassembled packet
82: conntrack - IPv4 fragmentation with fragments specified
83: conntrack - IPv4 fragmentation out of order
84: conntrack - IPv4 fragmentation overlapping fragments by 1 octet
85: conntrack - IPv4 fragmentation overlapping fragments by 1 octet out of order
86: conntrack - IPv6 fragmentation
87: conntrack - IPv6 fragmentation expiry
90: conntrack - IPv6 fragmentation incomplete reassembled packet
91: conntrack - IPv6 fragmentation with fragments specified
92: conntrack - IPv6 fragmentation out of order
93: conntrack - IPv6 fragmentation, multiple extension headers
94: conntrack - IPv6 fragmentation, multiple extension headers + out of order
95: conntrack - IPv6 fragmentation, multiple extension headers 2
96: conntrack - IPv6 fragmentation, multiple extension headers 2 + out of order
99: conntrack - IPv4 Fragmentation + NAT
100: conntrack - resubmit to ct multiple times
101: conntrack - zone-based timeout policy
103: conntrack - IPv4 HTTP
104: conntrack - IPv6 HTTP
105: conntrack - commit, recirc
108: conntrack - limit by zone
115: conntrack - simple SNAT
116: conntrack - SNAT with ct_mark change on reply
117: conntrack - SNAT with port range
118: conntrack - SNAT with port range using ICMP
119: conntrack - SNAT with port range with exhaustion
120: conntrack - more complex SNAT
121: conntrack - all-zero IP SNAT
122: conntrack - simple DNAT
123: conntrack - DNAT with additional SNAT
124: conntrack - more complex DNAT
125: conntrack - ICMP related with NAT
137: conntrack - IPv6 HTTP with SNAT
138: conntrack - IPv6 HTTP with DNAT
139: conntrack - IPv6 ICMP6 Related with SNAT
144: conntrack - DNAT load balancing
145: conntrack - DNAT load balancing with NC
146: conntrack - floating IP
147: conntrack - negative test for recirculation optimization
148: conntrack - Multiple ICMP traverse
150: conntrack - ICMP from different source related with NAT
151: IGMP - flood under normal action
152: IGMP - forward with ICMP
158: nsh - encap header
159: nsh - decap header
160: nsh - replace header
161: nsh - forward
162: layer3 - ping over VXLAN-GPE
164: layer3 - use non-local port as tunnel endpoint
167: interface - add delete add same interface
168: interface - add route to br and verify clean-up
169: ptap - triangle bridge setup with L2 and L3 GRE tunnels
170: ovs-route - add/remove system route
"""

# Tests that need what datapath gl does not offer to OVS: (title regex, reason). They are
# reported as skipped (--no-skip runs them anyway). Details: dataplane/ovs/README.md.
SKIP = [
    (r"vxlan|VXLAN|gre |GRE|geneve|erspan|^layer3 - ping|^ptap - ",
     "tunnel: dpif-gl refuses tunnel ports; gldp has no tunnel push/pop"),
    # (44-48 run: OVS skips the dp-support ones itself, the encap slow-path ones pass.)
    (r"^datapath - .*mpls|^mpls - decap header slow-path$",
     "MPLS: gldp parses no MPLS labels and has no push/pop_mpls (OVS probes MPLS depth 0)"),
    (r"^nsh - ", "NSH: gldp has no NSH key fields or encap/decap actions"),
    (r"^QoS - ", "QoS: netdev-gl has no ingress policing or egress QoS"),
    (r"^802\.1ad - ", "802.1ad: gldp carries one VLAN tag (TPID 0x8100); OVS probes 1 header"),
]

# Beyond the target, run by default too: OVS's FTP and TFTP tests (the ALGs, with
# SNAT/DNAT, IPv4 and IPv6). Stock OVS skipped them when the baseline was taken (its
# configure looked for the servers in another python3). The runner points the suite at
# Debian's python3, which has python3-pyftpdlib (tools/setup.sh installs it), and puts
# test/integration/ovs/l7 on PYTHONPATH: a TFTP server of ours with the interface of
# tftpy, which Debian does not package. Without the servers OVS skips the tests itself.
EXTRA = re.compile(r"^(FTP - no conntrack|conntrack - .*FTP.*)$")
L7 = os.path.join(TOP, "test", "integration", "ovs", "l7")

RESULT_RE = re.compile(r"^\s*(\d+): (.*?)\s+(ok|FAILED|skipped|expected failure|"
                       r"UNEXPECTED PASS)(?:\s+\((.*)\))?\s*$")


def die(msg, code=77):
    print(f"ovs-systest: {msg}", file=sys.stderr)
    sys.exit(code)


def newer(target, *sources):
    if not os.path.exists(target):
        return True
    t = os.path.getmtime(target)
    return any(os.path.getmtime(s) > t for s in sources)


def write_if_changed(path, text):
    if os.path.exists(path) and open(path).read() == text:
        return
    with open(path, "w") as f:
        f.write(text)


def link(src, dst):
    if os.path.islink(dst) or os.path.exists(dst):
        os.unlink(dst)
    os.symlink(src, dst)


def prepare(build):
    """Builds BUILD/ovs/systest/tests/system-gl-testsuite; returns (work dir, bin dir)."""
    src = os.path.join(build, "ovs", "src")
    obj = os.path.join(build, "ovs", "build")
    binaries = {
        "ovs-vswitchd": os.path.join(build, "ovs", "ovs-vswitchd-gl"),
        "gldp": os.path.join(build, "dataplane", "gldp"),
        "gl-dpctl": os.path.join(build, "tools", "gl-dpctl"),
    }
    for name, path in binaries.items():
        if not os.path.exists(path):
            die(f"{path} missing: build it first (ninja -C {build} ovs-vswitchd-gl gldp "
                "gl-dpctl)")
    for f in ("tests/system-userspace-testsuite.at", "configure.ac"):
        if not os.path.exists(os.path.join(src, f)):
            die(f"{src}/{f} missing: tools/build-ovs.sh unpacks OVS there")
    version = re.search(r"AC_INIT\(openvswitch, *([0-9.]+)",
                        open(os.path.join(src, "configure.ac")).read())
    version = version.group(1) if version else "unknown"
    if not version.startswith(WANT_SERIES):
        die(f"OVS source is {version}; the baseline and the overlay are for {WANT_SERIES}x")
    atlocal = os.path.join(obj, "tests", "atlocal")
    if not os.path.exists(atlocal):
        die(f"{atlocal} missing: OVS is not configured (tools/build-ovs.sh)")
    if not shutil.which("autom4te"):
        die("autom4te not found: apt-get install autoconf (OVS builds its test suites "
            "with it)")

    work = os.path.join(build, "ovs", "systest")
    tests = os.path.join(work, "tests")
    bindir = os.path.join(work, "bin")
    os.makedirs(tests, exist_ok=True)
    os.makedirs(bindir, exist_ok=True)
    for name, path in binaries.items():
        link(os.path.abspath(path), os.path.join(bindir, name))

    # atconfig as OVS's configure writes it, for this directory; atlocal is OVS's.
    write_if_changed(os.path.join(tests, "atconfig"), f"""\
at_testdir='tests'
abs_builddir='{tests}'
at_srcdir='{src}/tests'
abs_srcdir='{src}/tests'
at_top_srcdir='{src}'
abs_top_srcdir='{src}'
at_top_build_prefix='../'
abs_top_builddir='{work}'
at_top_builddir=$at_top_build_prefix
EXEEXT=''
AUTOTEST_PATH='tests'
SHELL=${{CONFIG_SHELL-'/bin/bash'}}
""")
    # OVS's configure took the first python3 on PATH; Debian's has the L7 servers the
    # FTP tests need (python3-pyftpdlib), and scapy.
    text = open(atlocal).read()
    if os.path.exists("/usr/bin/python3"):
        text = re.sub(r"^PYTHON3=.*$", "PYTHON3='/usr/bin/python3'", text, count=1,
                      flags=re.M)
    write_if_changed(os.path.join(tests, "atlocal"), text)
    write_if_changed(os.path.join(tests, "package.m4"), f"""\
m4_define([AT_PACKAGE_NAME],      [openvswitch])
m4_define([AT_PACKAGE_TARNAME],   [openvswitch])
m4_define([AT_PACKAGE_VERSION],   [{version}])
m4_define([AT_PACKAGE_STRING],    [openvswitch {version} with datapath type gl])
m4_define([AT_PACKAGE_BUGREPORT], [bugs@openvswitch.org])
""")

    # The suite's .at: OVS's, plus our overlay after OVS's last macro file.
    top_at = open(os.path.join(src, "tests", "system-userspace-testsuite.at")).read()
    anchor = "m4_include([tests/system-common-macros.at])\n"
    if anchor not in top_at:
        die("tests/system-userspace-testsuite.at has no system-common-macros.at include")
    top_at = top_at.replace(anchor, anchor + "m4_include([tests/system-gl-macros.at])\n")
    write_if_changed(os.path.join(tests, f"{SUITE}.at"), top_at)
    link(OVERLAY, os.path.join(tests, "system-gl-macros.at"))
    # Test files that create bridges with an explicit datapath type: same file, type gl.
    # (Found first through -I WORK, so the suite includes these copies.)
    for name in ("system-interface.at", "system-userspace-packet-type-aware.at"):
        text = open(os.path.join(src, "tests", name)).read()
        write_if_changed(os.path.join(tests, name),
                         text.replace("datapath_type=netdev", "datapath_type=gl"))

    suite = os.path.join(tests, SUITE)
    inputs = [os.path.join(tests, f) for f in os.listdir(tests) if f.endswith((".at", ".m4"))]
    inputs += [os.path.join(src, "tests", f) for f in os.listdir(os.path.join(src, "tests"))
               if f.endswith(".at")]
    if newer(suite, *inputs, os.path.realpath(OVERLAY)):
        print("ovs-systest: building the test suite (autom4te)", flush=True)
        cmd = ["autom4te", "--language=autotest", "-I", work, "-I", src, "-I", tests,
               "-o", suite + ".tmp", os.path.join(tests, f"{SUITE}.at")]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode:
            die(f"autom4te failed:\n{r.stderr}", 1)
        os.chmod(suite + ".tmp", 0o755)
        os.replace(suite + ".tmp", suite)
    return work, bindir


def suite_list(work):
    """{number: title} of the built suite."""
    tests = os.path.join(work, "tests")
    r = subprocess.run(["/bin/bash", os.path.join(tests, SUITE), "-C", tests, "-l"],
                       capture_output=True, text=True, check=True)
    out = {}
    for line in r.stdout.splitlines():
        m = re.match(r"^\s*(\d+): \S+:\d+\s+(.*?)\s*$", line)
        if m:
            out[int(m.group(1))] = m.group(2)
    return out


def parse_numbers(spec):
    nums = set()
    for part in spec.split(","):
        part = part.strip()
        if "-" in part:
            a, b = part.split("-", 1)
            nums.update(range(int(a), int(b) + 1))
        elif part:
            nums.add(int(part))
    return nums


def skip_reason(title):
    for pattern, reason in SKIP:
        if re.search(pattern, title):
            return reason
    return None


LOCK = "/run/lock/gl-ovs-systest.lock"


def lock_machine(timeout):
    """OVS's tests use fixed names (br0, p0/ovs-p0, at_ns0, ...): two runs on one machine,
    from any build tree (a CI checkout's CTest and someone's manual run), would delete
    each other's links. One run at a time: waits for the lock up to 'timeout' seconds.
    Returns the open lock file (held until the process exits)."""
    os.makedirs(os.path.dirname(LOCK), exist_ok=True)
    f = open(LOCK, "a+")
    deadline = time.monotonic() + timeout
    told = False
    while True:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            f.seek(0)
            f.truncate()
            f.write(f"{os.getpid()}\n")
            f.flush()
            return f
        except BlockingIOError:
            if time.monotonic() > deadline:
                die(f"another ovs-systest run holds {LOCK} (pid {open(LOCK).read().strip()})",
                    77)
            if not told:
                print(f"ovs-systest: waiting for another run to finish ({LOCK}, pid "
                      f"{open(LOCK).read().strip()})", file=sys.stderr, flush=True)
                told = True
            time.sleep(1)


SWITCH_PROCS = ("ovs-vswitchd", "ovs-vswitchd-gl", "ovs-vswitchd-dpdk", "gldp")


def running_switches():
    """Pids and names of running ovs-vswitchd / gldp processes (anyone's)."""
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/comm") as f:
                comm = f.read().strip()
        except OSError:
            continue
        if comm in SWITCH_PROCS or comm.startswith("ovs-vswitchd"):
            out.append(f"{comm}[{pid}]")
    return out


def check_links(remove):
    """OVS's tests all name their bridge br0, and OVS's userspace datapath adds the tap
    ovs-netdev: while another OVS (a benchmark, someone's test) has them, every test
    waits 30 s for them to go away and fails. Links left behind by an interrupted run
    (no switch process running) are removed when 'remove'; returns the names of links
    that remain."""
    present = [n for n in ("ovs-netdev", "br0")
               if subprocess.run(["ip", "link", "show", n], capture_output=True).returncode == 0]
    if not present:
        return []
    procs = running_switches()
    if procs or not remove:
        print(f"ovs-systest: links {present} exist"
              + (f" and {', '.join(procs)} run(s): another OVS or gldp uses them" if procs
                 else ""), file=sys.stderr, flush=True)
        return present
    for name in present:
        print(f"ovs-systest: removing leftover link {name}", flush=True)
        subprocess.run(["ip", "link", "del", name], capture_output=True)
    return []


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.environ.get("GL_BUILD_DIR",
                                                      os.path.join(TOP, "build")),
                    help="Goldilocks CMake build tree (default $GL_BUILD_DIR or ./build)")
    sel = ap.add_mutually_exclusive_group()
    sel.add_argument("--tests", help="test numbers, e.g. 1,2,5 or 1-10")
    sel.add_argument("--all", action="store_true",
                     help="every test of the suite, not only the baseline's")
    ap.add_argument("--no-skip", action="store_true",
                    help="also run the tests SKIP excludes (tunnels, MPLS, ...)")
    ap.add_argument("--list", action="store_true", help="print the selection and exit")
    ap.add_argument("-v", "--verbose", action="store_true",
                    help="show autotest's output as it runs")
    ap.add_argument("--lock-wait", type=float, default=1800,
                    help="seconds to wait for another run on this machine (1800)")
    ap.add_argument("--suite-flags", default="",
                    help="more flags for the test suite (e.g. '-d' keeps all directories)")
    a = ap.parse_args()

    if os.geteuid() != 0:
        die("needs root (network namespaces, veth links)")
    build = os.path.abspath(a.build)
    work, bindir = prepare(build)
    titles = suite_list(work)

    extra = set()
    if a.tests:
        wanted = sorted(parse_numbers(a.tests))
    elif a.all:
        wanted = sorted(titles)
    else:
        wanted = []
        for line in BASELINE.strip().splitlines():
            num, title = line.split(": ", 1)
            match = [n for n, t in titles.items() if t == title]
            if not match:
                print(f"ovs-systest: baseline test '{title}' not in the suite", file=sys.stderr)
                continue
            if match[0] != int(num):
                print(f"ovs-systest: note: '{title}' is test {match[0]} here, "
                      f"{num} in the baseline", file=sys.stderr)
            wanted.append(match[0])
        wanted += [n for n, t in sorted(titles.items()) if EXTRA.match(t) and n not in wanted]
        extra = {n for n in wanted if EXTRA.match(titles[n])}
    unknown = [n for n in wanted if n not in titles]
    if unknown:
        die(f"no such tests: {unknown}", 2)

    skipped = {}
    run = []
    for n in wanted:
        reason = None if (a.no_skip or a.tests) else skip_reason(titles[n])
        if reason:
            skipped[n] = reason
        else:
            run.append(n)
    if a.list:
        for n in wanted:
            print(f"{n:4}: {titles[n]}" + (f"  [skip: {skipped[n]}]" if n in skipped else ""))
        return 0

    results = {}  # number -> (status, detail)
    if run:
        lock = lock_machine(a.lock_wait)  # noqa: F841 - held until exit
        if check_links(remove=True):
            die("not starting: the tests need br0 and ovs-netdev free (see above)", 77)
        busy = running_switches()
        if busy:
            print(f"ovs-systest: note: {', '.join(busy)} running: timings and core 1 are "
                  "shared", file=sys.stderr, flush=True)
        tests = os.path.join(work, "tests")
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (L7, env.get("PYTHONPATH")) if p)
        cmd = ["/bin/bash", os.path.join(tests, SUITE), "-C", tests,
               f"AUTOTEST_PATH={bindir}", *a.suite_flags.split(), *map(str, run)]
        print(f"ovs-systest: running {len(run)} test(s): {' '.join(map(str, run))}",
              flush=True)
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             env=env)
        for line in p.stdout:
            m = RESULT_RE.match(line)
            if m:
                n, status = int(m.group(1)), m.group(3)
                results[n] = (status, m.group(4) or "")
                print(f"{n:4}: {titles.get(n, m.group(2)):<70} {status}"
                      + (f" ({m.group(4)})" if m.group(4) else ""), flush=True)
            elif a.verbose:
                print("    " + line.rstrip(), flush=True)
        p.wait()
        check_links(remove=True)

    for n in sorted(skipped):
        print(f"{n:4}: {titles[n]:<70} skipped ({skipped[n]})")
    passed = [n for n, (s, _) in results.items() if s in ("ok", "expected failure")]
    failed = [n for n, (s, _) in results.items() if s in ("FAILED", "UNEXPECTED PASS")]
    suite_skipped = [n for n, (s, _) in results.items() if s == "skipped"]
    not_run = [n for n in run if n not in results]
    failed += not_run
    for n in not_run:
        print(f"{n:4}: {titles[n]:<70} FAILED (no result: the suite stopped)")
    if failed:
        d = os.path.join(work, "tests", f"{SUITE}.dir")
        print(f"\nfailed: {' '.join(map(str, sorted(failed)))}; logs in {d}/NNN/ "
              f"(testsuite.log, ovs-vswitchd.log, gldp.log)")
    if extra:
        e_pass = len([n for n in passed if n in extra])
        e_fail = len([n for n in failed if n in extra])
        e_skip = len([n for n in extra if n in skipped or n in suite_skipped])
        print(f"\nthe target: {len(passed) - e_pass} passed, {len(failed) - e_fail} failed, "
              f"{len(skipped) + len(suite_skipped) - e_skip} skipped; beyond it (FTP, TFTP): "
              f"{e_pass} passed, {e_fail} failed, {e_skip} skipped")
    print(f"\n{len(passed)} passed, {len(failed)} failed, "
          f"{len(skipped) + len(suite_skipped)} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
