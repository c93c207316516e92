#!/usr/bin/python3
"""Open vSwitch with datapath type gl: ovsdb-server + gldp + ovs-vswitchd-gl, three
namespace hosts, driven by Debian's ovs-vsctl / ovs-ofctl / ovs-appctl.

  test_datapath_type      `gl` is in datapath_types; a gl bridge comes up with its ports in
                          gldp; dpif/show-dp-features reports what gldp supports
  test_normal             NORMAL switching: ping and TCP between three hosts attached as
                          type=dpdk, a plain system port and type=gl; megaflows in
                          dpctl/dump-flows; the NORMAL rule's counters rise
  test_openflow_rules     ovs-ofctl rules: drop (counted), mod_nw_dst rewrite (ping a
                          virtual address), VLAN push seen tagged by tcpdump, VLAN pop of
                          tagged frames sent with scapy, two tables with goto
  test_internal_port      the bridge's internal port is a net_tap in gldp: the host
                          pings a namespace through it; mtu_request reaches gldp and the
                          kernel interface (also when set before the port is added)
  test_bridge_name_taken  add-br when a kernel interface of the bridge's name is in the
                          way: OVS reports "File exists" and gldp's reason (not "Invalid
                          argument"); once it is removed the bridge's port comes up
  test_controller         an os-ken OpenFlow 1.3 app gets every packet as a packet-in and
                          floods it with a packet-out; hosts ping through the controller
  test_gldp_restart       gldp is killed (SIGKILL) and restarted: dpif-gl notices the new
                          boot id, re-adds the ports, traffic resumes
  test_vswitchd_restart   ovs-vswitchd is killed (SIGKILL) under traffic: gldp keeps
                          forwarding with the installed megaflows; the restarted
                          ovs-vswitchd takes over
"""

import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from gltest import check, main  # noqa: E402
from ovsgl import Failure, OvsEnv  # noqa: E402

NET = "10.77.0"


def three_hosts(env):
    """Hosts 1..3 on one gl bridge: h1 as type=dpdk, h2 as a plain (system) port, h3 as
    type=gl. Returns (bridge, [(ns, outer), ...])."""
    env.start_all()
    br = env.bridge()
    hosts = [env.host(i, f"{NET}.{i}") for i in (1, 2, 3)]
    (ns1, o1, _), (ns2, o2, _), (ns3, o3, _) = hosts
    env.add_port(br, o1, "type=dpdk", f"options:dpdk-devargs=net_af_packet_t1,iface={o1}")
    env.add_port(br, o2)
    env.add_port(br, o3, "type=gl", f"options:devargs=net_af_packet_t3,iface={o3}")
    env.wait_ports(br, [o1, o2, o3])
    return br, [(ns, o) for ns, o, _ in hosts]


def test_datapath_type():
    with OvsEnv("ov") as env:
        env.start_all()
        types = env.vsctl("get", "Open_vSwitch", ".", "datapath_types").stdout
        check("gl" in re.findall(r"[\w-]+", types), f"datapath_types: {types}")
        br = env.bridge()
        ns1, o1, _ = env.host(1, f"{NET}.1")
        env.add_port(br, o1, "type=dpdk", f"options:dpdk-devargs=net_af_packet_d1,iface={o1}")
        env.wait_ports(br, [o1])
        names = {p["name"] for p in env.show()["ports"]}
        check({br, o1} <= names, f"gldp ports {names}")
        show = env.appctl("dpctl/show").stdout
        check("gl@ovs-gl" in show and o1 in show, f"dpctl/show:\n{show}")
        feats = env.appctl("dpif/show-dp-features", br).stdout
        want = {"Recirc": "Yes", "Ufid": "Yes", "Clone action": "Yes",
                "Masked set action": "Yes", "Max VLAN headers": "1", "Sample nesting": "5",
                "Max MPLS depth": "0", "CT state": "Yes", "CT state NAT": "Yes", "Conntrack clear": "Yes", "Truncate action": "No",
                "Check pkt length action": "No", "Tunnel push pop": "No"}
        for k, v in want.items():
            m = re.search(rf"^{re.escape(k)}: (\S+)", feats, re.M)
            check(m and m.group(1) == v, f"{k} should be {v}:\n{feats}")
        # gldp refuses a ct eventmask (it generates no conntrack events): OVS's probe sees it.
        with open(f"{env.rundir}/ovs-vswitchd.log") as f:
            vlog = f.read()
        check("Datapath does not support eventmask in conntrack action" in vlog and
              "Datapath supports eventmask" not in vlog, f"eventmask probe:\n{vlog[-3000:]}")
        # Interface status comes from gldp.
        status = env.vsctl("get", "Interface", o1, "status").stdout
        check("net_af_packet" in status, f"status {status}")
        # Checksum offload as netdev-dpdk reports it: af_packet offers none; the bridge's
        # own port (net_tap) verifies IPv4/UDP/TCP checksums on receive, which gldp asks for.
        check('rx_csum_offload="false"' in status, f"{o1} status {status}")
        bstatus = env.vsctl("get", "Interface", br, "status").stdout
        check('rx_csum_offload="true"' in bstatus and "net_tap" in bstatus,
              f"{br} status {bstatus}")
        offl = {p["name"]: p["rx_checksum_offload"] for p in env.show()["ports"]}
        check(offl.get(br) is True and offl.get(o1) is False, f"gl-dpctl show: {offl}")
        mac = env.vsctl("get", "Interface", o1, "mac_in_use").stdout.strip().strip('"')
        gl_mac = next(p for p in env.show()["ports"] if p["name"] == o1)["mac"]
        check(mac.lower() == gl_mac.lower(), f"mac_in_use {mac} vs gldp {gl_mac}")


def tcp_transfer(env, ns_srv, ns_cli, ip, port=5001, payload="goldilocks-over-ovs"):
    srv = subprocess.Popen(["ip", "netns", "exec", ns_srv, "nc", "-l", "-N", "-w", "10",
                            "-s", ip, "-p", str(port)], stdout=subprocess.PIPE, text=True)
    time.sleep(0.5)
    env.ns(ns_cli, "sh", "-c", f"echo {payload} | nc -N -w 5 {ip} {port}")
    out, _ = srv.communicate(timeout=15)
    check(payload in out, f"TCP payload not received: {out!r}")


def test_normal():
    with OvsEnv("on") as env:
        br, hosts = three_hosts(env)
        (ns1, _), (ns2, _), (ns3, _) = hosts
        env.ping(ns1, f"{NET}.2")
        env.ping(ns1, f"{NET}.3")
        env.ping(ns3, f"{NET}.2")
        tcp_transfer(env, ns2, ns1, f"{NET}.2")
        tcp_transfer(env, ns3, ns2, f"{NET}.3", port=5002)
        flows = env.dp_flows()
        check(any("eth_type(0x0800)" in f and "actions:" in f for f in flows),
              "no IPv4 megaflow in dpctl/dump-flows:\n" + "\n".join(flows))
        check(all("dp:gl" in f for f in env.appctl("dpctl/dump-flows", "-m").stdout.splitlines()
                  if f.startswith("ufid")), "megaflows not reported as dp:gl")
        normal = [n for line, n in env.dump_flows(br) if "actions=NORMAL" in line]
        check(normal and normal[0] > 10, f"NORMAL rule counters: {env.dump_flows(br)}")
        # Port counters come from gldp (ovs-ofctl dump-ports asks the netdev directly).
        ports = env.ofctl("dump-ports", br, str(env.ofport(hosts[0][1]))).stdout
        m = re.search(r"rx pkts=(\d+)", ports)
        check(m and int(m.group(1)) > 5, f"dump-ports:\n{ports}")


def test_openflow_rules():
    with OvsEnv("oo") as env:
        br, hosts = three_hosts(env)
        (ns1, o1), (ns2, o2), (ns3, o3) = hosts
        p1, p2, p3 = env.ofport(o1), env.ofport(o2), env.ofport(o3)
        mac2 = env.ns_mac(ns2, f"gl{env.tag}i2"[:15])
        env.ofctl("del-flows", br)
        env.ofctl("add-flows", br, "-", check_rc=False)  # no-op, checks the socket
        rules = [
            "table=0,priority=0,actions=goto_table:1",
            "table=1,priority=0,actions=NORMAL",
            # drop ICMP to h3
            f"table=0,priority=100,icmp,nw_dst={NET}.3,actions=drop",
            # a virtual address .99 that is really h2: rewrite both ways
            f"table=0,priority=100,ip,nw_dst={NET}.99,actions=mod_nw_dst:{NET}.2,output:{p2}",
            f"table=0,priority=100,ip,in_port={p2},nw_src={NET}.2,nw_dst={NET}.1,"
            f"actions=mod_nw_src:{NET}.99,output:{p1}",
        ]
        for r in rules:
            env.ofctl("add-flow", br, r)
        # drop
        r = env.ping(ns1, f"{NET}.3", count=3, check_rc=False)
        check(r.returncode != 0, "ping to h3 should be dropped")
        drops = [n for line, n in env.dump_flows(br) if "actions=drop" in line]
        check(drops and drops[0] >= 3, f"drop rule counter: {env.dump_flows(br)}")
        # rewrite: h1 pings .99 (ARP entry for .99 -> h2's MAC)
        env.ns(ns1, "ip", "neigh", "replace", f"{NET}.99", "lladdr", mac2, "dev",
               f"gl{env.tag}i1"[:15])
        env.ping(ns1, f"{NET}.99")
        flows = "\n".join(env.dp_flows())
        check(f"set(ipv4(dst={NET}.2" in flows or "dst=10.77.0.2" in flows,
              f"no rewrite megaflow:\n{flows}")
        # goto_table + NORMAL still switches h1 <-> h2
        env.ping(ns1, f"{NET}.2")

        # VLAN push: h1's traffic to h3 leaves tagged with VLAN 10 (seen by tcpdump in h3).
        env.ofctl("add-flow", br,
                  f"table=0,priority=200,in_port={p1},udp,actions=mod_vlan_vid:10,output:{p3}")
        dump = subprocess.Popen(["ip", "netns", "exec", ns3, "timeout", "8", "tcpdump", "-nn",
                                 "-e", "-i", f"gl{env.tag}i3"[:15], "-c", "2", "vlan 10"],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        time.sleep(1.5)
        env.ns(ns1, "/usr/bin/python3", "-c",
               "import socket,time\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
               f"for i in range(5): s.sendto(b'x'*64,('{NET}.3',9)); time.sleep(0.2)\n")
        out, _ = dump.communicate(timeout=15)
        check("vlan 10" in out, f"no VLAN 10 frames seen in h3: {out!r}")
        flows = "\n".join(env.dp_flows())
        check("push_vlan(vid=10" in flows, f"no push_vlan megaflow:\n{flows}")

        # VLAN pop: h1 sends ICMP echo tagged with VLAN 20 (scapy); the rule strips the tag
        # towards h2, whose untagged reply comes back through NORMAL.
        env.ofctl("add-flow", br,
                  f"table=0,priority=200,in_port={p1},dl_vlan=20,actions=strip_vlan,output:{p2}")
        mac1 = env.ns_mac(ns1, f"gl{env.tag}i1"[:15])
        code = (
            "import time\nfrom scapy.all import Ether,Dot1Q,IP,ICMP,AsyncSniffer,sendp,conf\n"
            "conf.verb=0\n"
            f"iface='gl{env.tag}i1'[:15]\n"
            "sn=AsyncSniffer(iface=iface,count=1,timeout=6,"
            "lfilter=lambda x: x.haslayer(ICMP) and x[ICMP].type==0)\n"
            "sn.start(); time.sleep(0.5)\n"
            f"p=Ether(src='{mac1}',dst='{mac2}')/Dot1Q(vlan=20)/IP(src='{NET}.1',dst='{NET}.2')"
            "/ICMP(id=7,seq=1)\n"
            "for i in range(3): sendp(p,iface=iface); time.sleep(0.3)\n"
            "sn.join()\n"
            "print('REPLY' if sn.results else 'NONE')\n")
        out = env.ns(ns1, "/usr/bin/python3", "-c", code).stdout
        check("REPLY" in out, f"no reply to VLAN-tagged echo: {out}")
        flows = "\n".join(env.dp_flows())
        check("pop_vlan" in flows, f"no pop_vlan megaflow:\n{flows}")


def test_internal_port():
    with OvsEnv("oi") as env:
        env.start_all()
        br = env.bridge()
        ns1, o1, _ = env.host(1, f"{NET}.1")
        env.add_port(br, o1, "type=dpdk", f"options:dpdk-devargs=net_af_packet_i1,iface={o1}")
        env.wait_ports(br, [br, o1])
        drv = next(p for p in env.show()["ports"] if p["name"] == br)["driver"]
        check(drv == "net_tap", f"internal port driver {drv}")
        gltest_run = __import__("gltest").run
        gltest_run(["ip", "addr", "add", f"{NET}.254/24", "dev", br])
        gltest_run(["ip", "link", "set", br, "up"])
        try:
            env.ping(ns1, f"{NET}.254")
        finally:
            gltest_run(["ip", "addr", "del", f"{NET}.254/24", "dev", br], check_rc=False)
        # mtu_request on ports gldp has (internal: net_tap, the kernel tap follows) and on
        # one given with the port, before gldp has it.
        env.vsctl("set", "Interface", br, "mtu_request=1400")
        env.vsctl("add-port", br, "n9", "--", "set", "Interface", "n9", "type=dpdk",
                  "options:dpdk-devargs=net_tap_oi9,iface=glmtu9", "mtu_request=1300")
        env.wait_ports(br, [br, o1, "n9"])

        def mtus():
            ports = {p["name"]: p["mtu"] for p in env.show()["ports"]}
            return ports.get(br), ports.get("n9")

        for _ in range(50):
            if mtus() == (1400, 1300):
                break
            time.sleep(0.1)
        check(mtus() == (1400, 1300), f"gldp MTUs of {br}, n9: {mtus()}, want (1400, 1300)")
        import json
        for dev, want in ((br, 1400), ("glmtu9", 1300)):
            k = json.loads(gltest_run(["ip", "-j", "link", "show", dev]).stdout)[0]["mtu"]
            check(k == want, f"kernel MTU of {dev}: {k}, want {want}")
        got = env.vsctl("get", "Interface", "n9", "mtu").stdout.strip()
        check(got == "1300", f"ovs-vsctl get Interface n9 mtu: {got}")


def test_bridge_name_taken():
    """#13: "could not add network device br0 to ofproto (Invalid argument)" although the
    bridge then worked: a tap of the bridge's name was left over (net_tap's multi-queue
    TUNSETIFF fails with EINVAL on it). gldp names the interface and says EEXIST; OVS adds
    the port by itself once the interface is gone."""
    with OvsEnv("on") as env:
        env.start_all()
        br = f"glbon{os.getpid() % 10000}"
        gltest_run = __import__("gltest").run
        gltest_run(["ip", "tuntap", "add", "dev", br, "mode", "tap"])  # persistent, one queue
        env.links.append(br)
        r = env.vsctl("add-br", br, "--", "set", "bridge", br, "datapath_type=gl",
                      check_rc=False)
        env.bridges.append(br)
        check("File exists" in r.stderr and "Invalid argument" not in r.stderr,
              f"add-br over a tap of its name: {r.stderr!r}")
        log = env.vlog()
        check(f"interface '{br}' already exists in the kernel (a tap without multi-queue"
              in log and f"ip link del {br}" in log, f"gldp's reason not logged:\n{log}")
        check(env.ofport(br) < 0, "the bridge's port was added over the tap")
        gltest_run(["ip", "link", "del", br])
        env.wait_ports(br, [br], timeout=15)
        drv = next(p for p in env.show()["ports"] if p["name"] == br)["driver"]
        check(drv == "net_tap", f"internal port driver {drv}")


def free_tcp_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_controller():
    with OvsEnv("oc") as env:
        br, hosts = three_hosts(env)
        (ns1, _), _, _ = hosts
        log = f"{env.rundir}/packet-in.log"
        open(log, "w").close()
        port = free_tcp_port()
        app = os.path.join(os.path.dirname(os.path.abspath(__file__)), "osken_learning_app.py")
        env.start(["/usr/bin/osken-manager", "--ofp-listen-host", "127.0.0.1",
                   "--ofp-tcp-listen-port", str(port), app], "osken",
                  env=dict(os.environ, GL_PACKET_IN_LOG=log))
        env.vsctl("set", "bridge", br, "protocols=OpenFlow13", "fail-mode=secure", "--",
                  "set-controller", br, f"tcp:127.0.0.1:{port}")
        deadline = time.time() + 20
        while "connected" not in open(log).read():
            if time.time() > deadline:
                raise Failure(f"controller did not connect:\n{env.log('osken')}\n{env.vlog()}")
            time.sleep(0.2)
        env.ping(ns1, f"{NET}.2", count=3)
        pins = [line for line in open(log) if line.startswith("packet-in")]
        check(len(pins) >= 6, f"only {len(pins)} packet-ins: {pins}")
        flows = "\n".join(env.dp_flows())
        check("userspace(pid=" in flows, f"no controller (userspace) megaflow:\n{flows}")


def test_gldp_restart():
    with OvsEnv("og") as env:
        br, hosts = three_hosts(env)
        (ns1, _), _, _ = hosts
        env.ping(ns1, f"{NET}.2")
        before = {p["name"] for p in env.show()["ports"]}
        p = env.gldp_proc
        os.killpg(p.pid, 9)  # no teardown: the taps go with its file descriptors
        p.wait(timeout=10)
        time.sleep(1)
        env.gldp()
        deadline = time.time() + 15
        while time.time() < deadline:
            after = {q["name"] for q in env.show()["ports"]}
            if after == before:
                break
            time.sleep(0.2)
        check(after == before, f"ports after gldp restart {after}, before {before}")
        # Numbers may differ: the bridge may re-add a port before dpif-gl's resync does;
        # OVS follows the new numbers (within a few seconds).
        deadline = time.time() + 20
        while env.ping(ns1, f"{NET}.2", count=1, check_rc=False).returncode != 0:
            if time.time() > deadline:
                raise Failure(f"no traffic after the gldp restart:\n{env.vlog()[-3000:]}")
            time.sleep(0.5)
        env.ping(ns1, f"{NET}.2")
        check("gldp restarted" in env.vlog(), "restart not logged")


def test_vswitchd_restart():
    with OvsEnv("or") as env:
        br, hosts = three_hosts(env)
        (ns1, _), (ns2, _), _ = hosts
        env.ping(ns1, f"{NET}.2")
        # The neighbours pinned: with ovs-vswitchd gone an ARP probe (a neighbour entry
        # going stale meanwhile) has no flow and no handler, and would stop the pings for
        # a reason that is not the one under test.
        for ns, peer in ((ns1, f"{NET}.2"), (ns2, f"{NET}.1")):
            lladdr = re.search(r"lladdr (\S+)", env.ns(ns, "ip", "neigh", "show", peer).stdout)
            if lladdr:
                dev = re.search(r"dev (\S+)", env.ns(ns, "ip", "neigh", "show", peer).stdout)
                env.ns(ns, "ip", "neigh", "replace", peer, "lladdr", lladdr.group(1), "dev",
                       dev.group(1), "nud", "permanent")
        # kill -9, not `ovs-appctl exit`: exit tears the bridges down port by port while
        # the revalidator threads still run, and a revalidation round in that window
        # re-translates megaflows with a port already gone (CI saw it: every flow from
        # ns1's port became `drop` and the floods left that port out). That is OVS's
        # shutdown, the same on any datapath, not the behaviour under test here.
        env.stop_vswitchd(graceful=False)
        # gldp forwards alone with the megaflows it has: 2 s of pings while ovs-vswitchd
        # is gone.
        out = env.ns(ns1, "ping", "-c", "20", "-i", "0.1", "-W", "1", f"{NET}.2",
                     check_rc=False, timeout=30).stdout
        m = re.search(r"(\d+) received", out)
        got = int(m.group(1)) if m else 0
        if got < 18:  # what gldp had, to tell a lost flow from a lost neighbour next time
            flows = env.dpctl("dump-flows", check_rc=False).stdout
            neigh = env.ns(ns1, "ip", "neigh", check_rc=False).stdout
            out += f"\ngldp's flows:\n{flows[-1500:]}\nns1's neighbours:\n{neigh}"
        check(got >= 18, f"only {got}/20 echo replies with ovs-vswitchd down:\n{out[-2500:]}")
        # The new ovs-vswitchd flushes the datapath's flows when it opens it (as OVS does
        # with any datapath) and takes over once its bridges are up: how long that takes
        # depends on the machine's load, so it is printed, not asserted (CI once saw more
        # than 3 s on a loaded 2-core machine).
        t0 = time.time()
        env.vswitchd()
        deadline = t0 + 30
        while env.ping(ns1, f"{NET}.2", count=1, check_rc=False).returncode != 0:
            if time.time() > deadline:
                raise Failure(f"no traffic after the ovs-vswitchd restart:\n{env.vlog()[-3000:]}")
            time.sleep(0.1)
        print(f"  forwarding {time.time() - t0:.1f} s after ovs-vswitchd was started again")
        env.ping(ns2, f"{NET}.1")
        check(env.dp_flows(), "no flows after restart")


if __name__ == "__main__":
    main([test_datapath_type, test_normal, test_openflow_rules, test_internal_port,
          test_bridge_name_taken, test_controller, test_gldp_restart, test_vswitchd_restart])
