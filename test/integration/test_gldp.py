#!/usr/bin/python3
"""gldp end to end: two namespace "VMs" on net_af_packet ports, flows from gl-dpctl.

  test_ping_and_udp        ping and UDP across flows installed by gl-dpctl; port, flow
                           and PMD counters rise by what was sent
  test_fw_state_across_restart
                           a workload port of the firewall in force stays closed in a gldp
                           killed and started again (fw_quarantine) until a version binds
                           it; fw-clear forgets it; a state file others may write is refused
  test_flow_actions        VLAN push seen by tcpdump on the far side; set(ipv4(dst)) rewrite
                           delivers to a rewritten address; drop action counted
  test_upcall_client       no flows: misses go to a test client (gl-upcall-client) that
                           installs a flow per miss and re-injects the packet; ping works
  test_port_removal        del-port under traffic: gldp survives, drops counted under
                           no_port, re-adding the port restores traffic
  test_two_pmds            two PMD threads, one rx queue each, traffic through both
  test_bad_cli_input       invalid devargs / flows / actions / ports get clear errors;
                           fw-install of bad JSON names the field and changes nothing;
                           a good one installs, fw-update changes it as a delta (a
                           stale base and a port without a firewall refused), fw-clear
                           removes it
  test_port_mtu            set-port mtu=N: gldp and the kernel interface of an af_packet
                           port follow; out-of-range and unsupported devices refused
  test_startup_errors      gldp refused at start (a port that cannot be created after one
                           that was, cores the EAL does not have, an unknown option): a
                           clear message, exit status 1 or 2 (no crash on the way out:
                           ports freed before the EAL is cleaned up), no socket left
  test_emc                 the PMD's exact-match cache: one flow's packets hit it after the
                           first; a deleted flow is not served from it (packets then miss);
                           emc-insert-inv-prob 0 leaves it empty (megaflow hits instead)
"""

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from gltest import Env, Failure, binary, check, main, run  # noqa: E402

MAC1 = "02:00:00:00:00:01"
MAC2 = "02:00:00:00:00:02"


def two_hosts(env, extra=()):
    ns1, o1, _ = env.host(1, "10.0.0.1", mac=MAC1)
    ns2, o2, _ = env.host(2, "10.0.0.2", mac=MAC2)
    env.gldp(ports=[("p1", f"net_af_packet0,iface={o1}"), ("p2", f"net_af_packet1,iface={o2}")],
             extra=extra)
    return ns1, ns2


def udp_send(env, ns, dst, port, count, size=100):
    code = (
        "import socket,sys\n"
        "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
        f"for i in range({count}): s.sendto(b'x'*{size},('{dst}',{port}))\n"
    )
    env.ns(ns, "/usr/bin/python3", "-c", code)


def udp_receiver(env, ns, bind_ip, port, count, timeout=10):
    """Starts a UDP receiver in ns; returns a function that waits and returns the count."""
    code = (
        "import socket,sys\n"
        "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
        f"s.bind(('{bind_ip}',{port})); s.settimeout({timeout})\n"
        "n=0\n"
        "try:\n"
        f"  while n<{count}:\n"
        "    s.recv(2048); n+=1\n"
        "except Exception: pass\n"
        "print(n)\n"
    )
    p = subprocess.Popen(["ip", "netns", "exec", ns, "/usr/bin/python3", "-c", code],
                         stdout=subprocess.PIPE, text=True)
    time.sleep(0.5)

    def wait():
        out, _ = p.communicate(timeout=timeout + 10)
        return int(out.strip() or 0)

    return wait


def test_ping_and_udp():
    with Env("f") as env:
        ns1, ns2 = two_hosts(env)
        env.dpctl("add-flow", "in_port(1)", "2")
        env.dpctl("add-flow", "in_port(2)", "1")
        env.ping(ns1, "10.0.0.2", count=5)
        env.ping(ns2, "10.0.0.1", count=2)
        before = env.port_stats("p1")
        wait = udp_receiver(env, ns2, "10.0.0.2", 5001, 200)
        udp_send(env, ns1, "10.0.0.2", 5001, 200)
        got = wait()
        check(got == 200, f"UDP: received {got} of 200 datagrams")
        after = env.port_stats("p1")
        check(after["rx_packets"] - before["rx_packets"] >= 200,
              f"p1 rx_packets rose by {after['rx_packets'] - before['rx_packets']}, want >= 200")
        p2 = env.port_stats("p2")
        check(p2["tx_packets"] >= 200, f"p2 tx_packets {p2['tx_packets']}")
        flows = env.dpctl("dump-flows").stdout
        m = re.search(r"in_port\(1\).*packets:(\d+)", flows)
        check(m and int(m.group(1)) >= 205, f"flow counter too low:\n{flows}")
        show = env.show()
        check(show["pmds"][0]["packets"] >= 210, f"PMD packets {show['pmds'][0]['packets']}")
        check(show["flows"] == 2, f"flows {show['flows']}")


def test_fw_state_across_restart():
    """#13, fail closed: a gldp killed and started again drops the traffic of the
    firewall's workload ports until a firewall version binds them (glctld's next check),
    from the names kept in <socket>.fw-ports; fw-clear removes the file, and then a
    restarted gldp passes traffic as before."""
    with Env("q") as env:
        ns1, ns2 = two_hosts(env)
        ports = [(p["name"], p["devargs"]) for p in env.show()["ports"]]
        state = f"{env.sock}.fw-ports"

        def flows():
            env.dpctl("add-flow", "in_port(1)", "2")
            env.dpctl("add-flow", "in_port(2)", "1")

        def restart():
            os.killpg(env.gldp_proc.pid, 9)
            env.gldp_proc.wait(timeout=10)
            env.gldp(ports=ports)
            flows()

        flows()
        path = f"/tmp/{env.tag}-fw.json"
        env.files.append(path)
        with open(path, "w") as f:  # p2 a workload that takes and sends anything
            f.write(json.dumps({"ports": [{"port": 2, "mac": MAC2, "ipv4": ["10.0.0.2"],
                                           "default_from_vm": "allow",
                                           "default_to_vm": "allow"}]}))
        env.dpctl("fw-install", path)
        r = env.ping(ns1, "10.0.0.2", count=2, check_rc=False)
        check(r.returncode == 0, f"no ping through the firewall: drops {env.drops()}")
        with open(state) as f:
            lines = [ln.strip() for ln in f if not ln.startswith("#")]
        check(lines == ["p2"], f"{state}: {lines}, want ['p2']")
        check(os.stat(state).st_mode & 0o777 == 0o600, "the state file is not 0600")

        restart()
        check("1 workload ports pass nothing until a firewall version binds them"
              in env.log("gldp"), f"gldp did not say it closed p2:\n{env.log('gldp')}")
        r = env.ping(ns1, "10.0.0.2", count=3, check_rc=False)
        check(r.returncode != 0, "a restarted gldp passed a workload's traffic before its policy")
        q = env.drops().get("fw_quarantine", 0)
        check(q >= 3, f"fw_quarantine {q}, want >= 3 (the pings and their ARP)")
        st = json.loads(env.dpctl("fw-status", "--json").stdout)
        check(st["generation"] == 0 and st["ports"] == 0, f"fw-status {st}")
        env.dpctl("fw-install", path)  # the policy is back: p2 bound
        env.ping(ns1, "10.0.0.2", count=2)

        env.dpctl("fw-clear")
        check(not os.path.exists(state), "fw-clear left the state file")
        restart()
        env.ping(ns1, "10.0.0.2", count=2)  # no firewall was in force: open, as before
        check(env.drops().get("fw_quarantine", 0) == 0, "quarantined with no firewall")

        # A state file that does not parse, or that anyone may write, is refused: gldp does
        # not start (rather than start open).
        os.killpg(env.gldp_proc.pid, 9)
        env.gldp_proc.wait(timeout=10)
        with open(state, "w") as f:
            f.write("# gldp\np2\nnot a name\n")
        os.chmod(state, 0o600)
        r = run([binary("gldp"), "--socket", env.sock, "--pmd-cores", "1"], check_rc=False,
                timeout=60)
        check(r.returncode == 1 and f"firewall state {state} line 3: not a port name" in r.stderr,
              f"gldp with a state file that does not parse: rc {r.returncode}: {r.stderr}")
        os.unlink(state)
        env.gldp(ports=ports)
        flows()
        env.dpctl("fw-install", path)
        os.chmod(state, 0o666)
        os.killpg(env.gldp_proc.pid, 9)
        env.gldp_proc.wait(timeout=10)
        r = run([binary("gldp"), "--socket", env.sock, "--pmd-cores", "1"], check_rc=False,
                timeout=60)
        check(r.returncode == 1 and "firewall state" in r.stderr and "remove it" in r.stderr,
              f"gldp with a world-writable state file: rc {r.returncode}: {r.stderr}")


def test_flow_actions():
    with Env("a") as env:
        ns1, ns2 = two_hosts(env)
        # ARP both ways untouched; IPv4 from 1 rewritten to 10.0.0.99 and tagged VLAN 10.
        env.dpctl("add-flow", "in_port(1),eth_type(0x0806)", "2")
        env.dpctl("add-flow", "in_port(2)", "1")
        env.ns(ns2, "ip", "addr", "add", "10.0.0.99/24", "dev", f"gl{env.tag}i2")
        env.dpctl("add-flow", "in_port(1),eth_type(0x0800),ipv4(dst=10.0.0.2,proto=17)",
                  "set(ipv4(dst=10.0.0.99)),2")
        wait = udp_receiver(env, ns2, "10.0.0.99", 6000, 20)
        udp_send(env, ns1, "10.0.0.2", 6000, 20)
        got = wait()
        check(got == 20, f"rewritten UDP: received {got} of 20 (checksums must be fixed up)")

        # VLAN push: tcpdump on the far side sees the tag.
        env.dpctl("mod-flow", "in_port(1),eth_type(0x0800),ipv4(dst=10.0.0.2,proto=17)",
                  "push_vlan(vid=10,pcp=3),2")
        cap = subprocess.Popen(["ip", "netns", "exec", ns2, "tcpdump", "-c", "5", "-nn", "-e",
                                "-i", f"gl{env.tag}i2", "vlan 10"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        time.sleep(1.0)
        udp_send(env, ns1, "10.0.0.2", 6000, 10)
        try:
            out, _ = cap.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            cap.kill()
            out, _ = cap.communicate()
        check("vlan 10" in out and "p 3" in out, f"no VLAN 10 pcp 3 frames seen:\n{out}")

        # Drop: counted by reason.
        env.dpctl("mod-flow", "in_port(1),eth_type(0x0800),ipv4(dst=10.0.0.2,proto=17)", "drop")
        d0 = env.drops().get("action_drop", 0)
        udp_send(env, ns1, "10.0.0.2", 6000, 25)
        time.sleep(0.5)
        d1 = env.drops().get("action_drop", 0)
        check(d1 - d0 == 25, f"action_drop rose by {d1 - d0}, want 25")


def test_startup_errors():
    with Env("s") as env:
        sock = f"/tmp/{env.tag}-bad.sock"
        env.files.append(sock)
        cases = [
            # The Datapath already holds port a (rings, mempool) when b fails.
            (["--port", "a=net_null0", "--port", "b=net_nosuchdriver1"],
             "cannot create device from devargs 'net_nosuchdriver1'"),
            (["--pmd-cores", "99"], "cannot start the DPDK EAL"),
            (["--frobnicate"], "unknown option '--frobnicate'"),
            (["--port", "noequals"], "--port needs NAME=DEVARGS"),
        ]
        for args, want in cases:
            r = run([binary("gldp"), "--socket", sock] + args, check_rc=False, timeout=60)
            check(r.returncode in (1, 2), f"gldp {args}: exit status {r.returncode}"
                  f" (a negative status is a signal)\n{r.stderr[-2000:]}")
            check(want in r.stderr, f"gldp {args}: no '{want}' in:\n{r.stderr[-2000:]}")
            check(not os.path.exists(sock), f"gldp {args} left its socket behind")


def test_emc():
    # The unit tests run the control context, whose EMC never inserts: this is the PMD's.
    with Env("e") as env:
        ns1, ns2 = two_hosts(env)
        env.dpctl("add-flow", "in_port(2)", "1")
        env.dpctl("add-flow", "in_port(1)", "2")
        env.dpctl("set-config", "emc-insert-inv-prob", "1")  # every miss inserts
        env.ping(ns1, "10.0.0.2", count=2)  # ARP resolved both ways

        def pmd():
            return env.show()["pmds"][0]

        def udp(n):
            wait = udp_receiver(env, ns2, "10.0.0.2", 5001, n, timeout=3)
            udp_send(env, ns1, "10.0.0.2", 5001, n)
            return wait()

        p0 = pmd()
        got = udp(200)
        p1 = pmd()
        check(got == 200, f"UDP: received {got} of 200")
        emc = p1["emc_hits"] - p0["emc_hits"]
        mf = p1["megaflow_hits"] - p0["megaflow_hits"]
        # One 5-tuple: the first rx burst's datagrams (up to 32) all miss it and insert, the
        # rest hit (and the VMs' own ARP/ND frames may add a few either way).
        check(emc >= 150 and mf <= 45, f"EMC hits +{emc}, megaflow hits +{mf} for 200 datagrams")

        # The flow goes: its EMC entries must not forward anything more.
        d0 = sum(env.drops().values())
        env.dpctl("del-flow", "in_port(1)")
        got = udp(50)
        p2 = pmd()
        check(got == 0, f"{got} datagrams delivered by a deleted flow (stale EMC entry)")
        # (The other VM's own frames, ARP or ND, may hit its flow meanwhile: a few.)
        check(p2["emc_hits"] - p1["emc_hits"] < 5,
              f"EMC hits +{p2['emc_hits'] - p1['emc_hits']} after the flow was deleted")
        check(p2["misses"] - p1["misses"] >= 50, f"misses +{p2['misses'] - p1['misses']}")
        check(sum(env.drops().values()) - d0 >= 50, f"drops {env.drops()}")

        # Insertion off: the flow again, served by the megaflow classifier alone.
        env.dpctl("set-config", "emc-insert-inv-prob", "0")
        env.dpctl("add-flow", "in_port(1)", "2")
        got = udp(100)
        p3 = pmd()
        check(got == 100, f"UDP: received {got} of 100")
        check(p3["emc_hits"] - p2["emc_hits"] < 5,
              f"EMC hits +{p3['emc_hits'] - p2['emc_hits']} with insertion off")
        check(p3["megaflow_hits"] - p2["megaflow_hits"] >= 100,
              f"megaflow hits +{p3['megaflow_hits'] - p2['megaflow_hits']}")


def test_upcall_client():
    with Env("u") as env:
        ns1, ns2 = two_hosts(env)
        # IPv6 off in the "VMs": their DAD, MLD and router solicitations go to new
        # multicast MACs for seconds after the link comes up, each one a new flow (the CI
        # run of c97936c saw 3 such upcalls during the second round of pings).
        for ns in (ns1, ns2):
            env.ns(ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
        client = env.start([binary("gl-upcall-client"), "--socket", env.sock, "--ports", "1,2"],
                           "client")
        time.sleep(0.5)
        check(client.poll() is None, f"upcall client died:\n{env.log('client')}")
        env.ping(ns1, "10.0.0.2", count=5)
        flows = env.dpctl("dump-flows").stdout
        check(flows.count("\n") >= 2, f"client installed no flows:\n{flows}")
        show = env.show()
        check(show["pmds"][0]["upcalls"] >= 2, f"upcalls {show['pmds'][0]['upcalls']}")
        check(show["upcalls_delivered"] >= 2, f"delivered {show['upcalls_delivered']}")
        # Flows installed: more pings hit them without further upcalls for those flows.
        up0 = show["pmds"][0]["upcalls"]
        env.ping(ns1, "10.0.0.2", count=5)
        up1 = env.show()["pmds"][0]["upcalls"]
        check(up1 - up0 <= 2, f"flows did not take over: {up1 - up0} more upcalls")


def test_port_removal():
    with Env("r") as env:
        ns1, ns2 = two_hosts(env)
        env.dpctl("add-flow", "in_port(1)", "2")
        env.dpctl("add-flow", "in_port(2)", "1")
        env.ping(ns1, "10.0.0.2", count=2)
        flood = subprocess.Popen(["ip", "netns", "exec", ns1, "ping", "-f", "-w", "6",
                                  "10.0.0.2"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.5)
        env.dpctl("del-port", "p2")
        time.sleep(1.5)
        check(env.gldp_proc.poll() is None, f"gldp died on del-port:\n{env.log('gldp')}")
        drops = env.drops()
        check(drops.get("no_port", 0) > 0, f"no no_port drops counted: {drops}")
        env.dpctl("add-port", "p2", f"net_af_packet1,iface=gl{env.tag}o2", "port_no=2")
        flood.wait(timeout=15)
        env.ping(ns1, "10.0.0.2", count=3)


def test_two_pmds():
    """Two PMD threads (mapped onto one CPU with --lcores: this machine has two cores),
    each polling one port's rx queue; traffic crosses both."""
    with Env("m") as env:
        ns1, o1, _ = env.host(1, "10.0.0.1", mac=MAC1)
        ns2, o2, _ = env.host(2, "10.0.0.2", mac=MAC2)
        env.gldp(ports=[("p1", f"net_af_packet0,iface={o1}"),
                        ("p2", f"net_af_packet1,iface={o2}")],
                 pmd_cores="1,2", extra=["--", "--lcores", "0@0,1@1,2@1"])
        env.dpctl("add-flow", "in_port(1)", "2")
        env.dpctl("add-flow", "in_port(2)", "1")
        env.ping(ns1, "10.0.0.2", count=4)
        pmds = env.show()["pmds"]
        check(len(pmds) == 2, f"{len(pmds)} PMDs")
        check(all(p["rx_queues"] == 1 for p in pmds), f"rx queues per PMD: {pmds}")
        check(all(p["packets"] >= 4 for p in pmds), f"each PMD forwards: {pmds}")


def test_bad_cli_input():
    with Env("b") as env:
        two_hosts(env)
        cases = [
            (["add-port", "x", "net_nosuchdriver0"], "cannot create device"),
            (["add-port", "p1", "net_null5"], "exists"),
            (["del-port", "nope"], "no port named 'nope'"),
            (["del-port", "99999999999999999999999"], "port numbers are 0..255"),
            (["set-port", "4294967297", "mtu=1400"], "port numbers are 0..255"),
            (["add-flow", "in_port(1),ipv5(dst=1.2.3.4)", "2"], "ipv5"),
            (["add-flow", "in_port(1),eth_type(0x0800),ipv4(dst=10.0.0.300)", "2"], "10.0.0.300"),
            (["add-flow", "in_port(1)", "frobnicate(3)"], "frobnicate"),
            (["del-flow", "in_port(7)"], "no such flow"),
            (["bogus-command"], "unknown command"),
        ]
        for args, want in cases:
            r = env.dpctl(*args, check_rc=False)
            check(r.returncode != 0, f"{args} succeeded")
            check(want in (r.stderr + r.stdout), f"{args}: error does not mention '{want}':"
                  f" {r.stderr}")
        # fw-install: a firewall version as JSON; every mistake names its field.
        fw_cases = [
            ("{not json", "not a JSON object"),
            ('{"frob": 1}', 'unknown field "frob"'),
            ('{"ports": [{"port": 1, "from_vm": [{"action": "maybe"}]}]}',
             "ports[0].from_vm[0].action"),
            ('{"ports": [{"port": 1, "to_vm": [{"ports": "9-3"}]}]}', "ports[0].to_vm[0].ports"),
            ('{"ports": [{"port": 1, "ipv4": ["1.2.3"]}]}', "is not an IPv4 address"),
            ('{"ports": [{"port": 99}]}', "no such port"),
            ('{"ipcache": [{"prefix": "10.0.0.0/40", "identity": 10}]}', "bad length"),
            ('{"record": "everything"}', "record: all, refusals or none"),
            ('{"ports": [{"port": 1, "identity": "x"}]}', "ports[0].identity"),
            ('{"ports": [{"port": 1, "conn_limit": -1}]}', "ports[0].conn_limit"),
            ('{"generation": -1}', "generation: -1 is not a number"),
            ('{"ports": [{"port": 1, "to_vm": [{"log": 1}]}]}', "ports[0].to_vm[0].log"),
            ('{"quarantine": "vnet7"}', "quarantine: a list"),
            ('{"ipcache": [5]}', 'ipcache[0]: an object with "prefix"'),
        ]
        path = f"/tmp/{env.tag}-fw.json"
        env.files.append(path)
        for text, want in fw_cases:
            with open(path, "w") as f:
                f.write(text)
            r = env.dpctl("fw-install", path, check_rc=False)
            check(r.returncode != 0, f"fw-install {text} succeeded")
            check(want in (r.stderr + r.stdout), f"fw-install {text}: error does not mention "
                  f"'{want}': {r.stderr}")
        check(json.loads(env.dpctl("fw-status", "--json").stdout)["generation"] == 0,
              "a refused fw-install changed the firewall")
        with open(path, "w") as f:
            f.write('{"ipcache": [{"prefix": "10.0.0.0/8", "identity": 10}], "ports": [{"port":'
                    ' 1, "to_vm": [{"remote": 10, "proto": "udp", "ports": "1-100"}],'
                    ' "quarantine_unused": 0}]}')
        r = env.dpctl("fw-install", path, check_rc=False)
        check(r.returncode == 2 and 'unknown field "quarantine_unused"' in r.stderr, r.stderr)
        with open(path, "w") as f:
            f.write('{"ipcache": [{"prefix": "10.0.0.0/8", "identity": 10}], "ports": [{"port":'
                    ' 1, "to_vm": [{"remote": 10, "proto": "udp", "ports": "1-100"}]}],'
                    ' "quarantine": ["vnet9"]}')
        env.dpctl("fw-install", path)
        st = json.loads(env.dpctl("fw-status", "--json").stdout)
        check(st["generation"] == 1 and st["ports"] == 1 and st["prefixes"] == 1, f"{st}")
        # fw-update: a delta of the version in force; a stale base changes nothing.
        def fw_update(text, ok=True):
            with open(path, "w") as f:
                f.write(text)
            return env.dpctl("fw-update", path, check_rc=ok)
        r = fw_update('{"ports": [{"port": 2, "to_vm": [{"remote": 10, "proto": "tcp"}]}]}')
        check("generation 2 installed as a delta of 1: 1 ports sent, 0 removed, the ipcache kept"
              in r.stdout, r.stdout)
        st = json.loads(env.dpctl("fw-status", "--json").stdout)
        check(st["generation"] == 2 and st["ports"] == 2 and st["prefixes"] == 1, f"{st}")
        r = fw_update('{"base": 1, "remove": [2]}', ok=False)
        check(r.returncode == 1 and "based on version 1, but version 2 is in force" in r.stderr,
              r.stderr)
        r = fw_update('{"remove": [2], "ipcache": []}')
        check("1 ports sent" not in r.stdout and "1 removed, a new ipcache" in r.stdout, r.stdout)
        st = json.loads(env.dpctl("fw-status", "--json").stdout)
        check(st["generation"] == 3 and st["ports"] == 1 and st["prefixes"] == 0, f"{st}")
        r = fw_update('{"remove": [7]}', ok=False)
        check("port 7 is removed but has no firewall in version 3" in r.stderr, r.stderr)
        r = env.dpctl("fw-install", path, check_rc=False)
        check(r.returncode == 2 and "unknown field \"remove\" (fw-update's)" in r.stderr,
              r.stderr)
        env.dpctl("fw-clear")
        check(json.loads(env.dpctl("fw-status", "--json").stdout)["generation"] == 0, "fw-clear")
        check(env.gldp_proc.poll() is None, "gldp died on bad input")
        # gldp's own command line: usage errors exit 2 and say what is wrong.
        gldp_cases = [
            (["--pmd-cores", "0"], 2, "also the control core"),
            (["--pmd-cores", "x"], 2, "bad --pmd-cores"),
            (["--port", "noequals"], 2, "NAME=DEVARGS"),
            (["--fw-state", ""], 2, "--fw-state needs a path"),
            (["--mbufs", "10"], 2, "--mbufs"),
            (["--frobnicate"], 2, "unknown option"),
            (["--socket", f"/tmp/{env.tag}-x.sock", "--port", "z=net_nosuchdriver0"], 1,
             "cannot create device"),
        ]
        for args, code, want in gldp_cases:
            r = run([binary("gldp"), *args], check_rc=False, timeout=60)
            check(r.returncode == code, f"gldp {args}: exit {r.returncode}, want {code}")
            check(want in r.stderr, f"gldp {args}: stderr does not mention '{want}': {r.stderr}")
        # --help on both binaries
        check("usage" in run([binary("gldp"), "--help"]).stdout, "gldp --help")
        check("usage" in run([binary("gl-dpctl"), "--help"]).stdout, "gl-dpctl --help")


def test_port_mtu():
    with Env("m") as env:
        ns1, o1, _ = env.host(1, "10.0.0.1", mac=MAC1)
        ns2, o2, _ = env.host(2, "10.0.0.2", mac=MAC2)
        env.gldp(ports=[("p1", f"net_af_packet0,iface={o1}"),
                        ("p2", f"net_af_packet1,iface={o2}"), ("r", "net_ring0")])
        env.dpctl("add-flow", "in_port(1)", "2")
        env.dpctl("add-flow", "in_port(2)", "1")
        r = env.dpctl("set-port", "p1", "mtu=1400")
        check("mtu 1400" in r.stdout, f"set-port output: {r.stdout}")
        check(env.port_stats("p1")["mtu"] == 1400, f"show: {env.port_stats('p1')}")
        kmtu = json.loads(run(["ip", "-j", "link", "show", o1]).stdout)[0]["mtu"]
        check(kmtu == 1400, f"kernel interface {o1} has MTU {kmtu}, want 1400")
        env.dpctl("set-port", "2", "mtu=1280")  # by number
        check(env.port_stats("p2")["mtu"] == 1280, f"show: {env.port_stats('p2')}")
        env.ping(ns1, "10.0.0.2", count=2)
        for args, want in ((["set-port", "p1", "mtu=9000"], "outside 68..2030"),
                           (["set-port", "p1", "mtu=67"], "outside 68..2030"),
                           # DPDK's af_packet receives frames of up to 1518 bytes
                           (["set-port", "p1", "mtu=1600"], "net_af_packet device takes 46..1500"),
                           (["set-port", "r", "mtu=1400"], "net_ring device cannot change its MTU"),
                           (["set-port", "nope", "mtu=1400"], "no port named 'nope'"),
                           (["set-port", "p1", "mtux=1400"], "set-port NAME|NUMBER mtu=N"),
                           (["add-port", "q", "net_null1", "mtu=9000"], "mtu=68..2030")):
            r = env.dpctl(*args, check_rc=False)
            check(r.returncode != 0, f"{args} succeeded")
            check(want in r.stderr + r.stdout, f"{args}: error does not mention '{want}': "
                  f"{r.stderr}")
        check(env.port_stats("p1")["mtu"] == 1400, "a refused set-port changed the MTU")


if __name__ == "__main__":
    main([test_ping_and_udp, test_fw_state_across_restart, test_flow_actions, test_upcall_client,
          test_port_removal, test_two_pmds, test_bad_cli_input, test_port_mtu, test_emc, test_startup_errors])
