#!/usr/bin/env bash
# The Goldilocks demo on one machine: installs what it needs, builds, then runs
# tools/demo_cluster.py: three simulated hypervisors (gldp + Open vSwitch with datapath gl
# + glctld each) on one underlay, the Goldilocks database as a 3-member Raft cluster,
# workloads behind OVS ports, a policy (web -> db allowed and encrypted, the rest denied),
# keys negotiated and rotated by glctld, a host revoked; a summary, then everything is
# torn down (also on Ctrl-C).
# Usage: tools/demo.sh [--keep]     (--keep: leave it running until Enter is pressed)
#        tools/demo.sh --basic [--keep]   the older, smaller demo:
#  1. starts gldp with two network-namespace "VMs" attached through net_af_packet ports,
#     installs flows with gl-dpctl, sends ping and UDP across, prints flows and counters;
#  2. starts two gldp "hypervisors" joined by an underlay link, each with a VM and an ESP
#     port towards the other (fresh random keys), and shows the VMs talking while the
#     underlay carries only ESP.
# Everything it creates (namespaces, links, gldp) is removed when it ends.
#     (--keep: leave part 2 running until Enter is pressed)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${GL_BUILD_DIR:-$top/build}
keep=0
basic=0
for a in "$@"; do
  case $a in
    --keep) keep=1 ;;
    --basic) basic=1 ;;
    --help | -h) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo.sh: unknown argument '$a' (try --help)" >&2; exit 2 ;;
  esac
done

"$top/tools/setup.sh"
"$top/tools/build.sh"
if [ "$basic" = 0 ]; then
  args=()
  [ "$keep" = 1 ] && args+=(--keep)
  exec /usr/bin/python3 "$top/tools/demo_cluster.py" "${args[@]}"
fi

tag=gldemo$$
sock=/tmp/$tag.sock
gldp_pid=
hv_pids=()
cleanup() {
  set +e
  [ -n "$gldp_pid" ] && kill "$gldp_pid" 2>/dev/null && wait "$gldp_pid" 2>/dev/null
  for p in "${hv_pids[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
  for i in 1 2 3 4; do
    ip link del "${tag}o$i" 2>/dev/null
    ip netns del "${tag}vm$i" 2>/dev/null
  done
  ip link del "${tag}ua" 2>/dev/null
  rm -f "$sock" "/tmp/$tag.log" /tmp/"$tag"-hv*.sock /tmp/"$tag"-hv*.sock.fw-ports \
    /tmp/"$tag"-hv*.log /tmp/"$tag".underlay
}
trap cleanup EXIT INT TERM

vm() {  # vm INDEX ADDRESS: a namespace "VM" whose veth's root end is ${tag}o<INDEX>
  local i=$1
  ip netns add "${tag}vm$i"
  ip link add "${tag}o$i" type veth peer name "${tag}i$i"
  ip link set "${tag}i$i" netns "${tag}vm$i"
  ip -n "${tag}vm$i" addr add "$2/24" dev "${tag}i$i"
  ip -n "${tag}vm$i" link set "${tag}i$i" up
  ip -n "${tag}vm$i" link set lo up
  ip netns exec "${tag}vm$i" ethtool -K "${tag}i$i" tx off >/dev/null 2>&1 || true
  ip link set "${tag}o$i" up
  # No IPv6 autoconfiguration chatter: the demo installs IPv4 and ARP flows only.
  sysctl -qw "net.ipv6.conf.${tag}o$i.disable_ipv6=1"
  ip netns exec "${tag}vm$i" sysctl -qw "net.ipv6.conf.all.disable_ipv6=1"
}

echo "== part 1: two VMs: ${tag}vm1 (10.0.0.1) and ${tag}vm2 (10.0.0.2)"
vm 1 10.0.0.1
vm 2 10.0.0.2

dpctl() { "$build/tools/gl-dpctl" --socket "$sock" "$@"; }

echo "== gldp: PMD on core 1, ports p1/p2 on the VMs' links"
"$build/dataplane/gldp" --socket "$sock" --pmd-cores 1 \
  --port "p1=net_af_packet0,iface=${tag}o1" --port "p2=net_af_packet1,iface=${tag}o2" \
  >"/tmp/$tag.log" 2>&1 &
gldp_pid=$!
for _ in $(seq 100); do dpctl show >/dev/null 2>&1 && break; sleep 0.1; done
dpctl show >/dev/null || { cat "/tmp/$tag.log"; exit 1; }

echo "== flows (ODP syntax, as ovs-dpctl)"
set -x
dpctl add-flow 'in_port(1),eth_type(0x0806)' 2
dpctl add-flow 'in_port(2),eth_type(0x0806)' 1
dpctl add-flow 'in_port(1),eth_type(0x0800),ipv4(dst=10.0.0.2)' 2
dpctl add-flow 'in_port(2),eth_type(0x0800),ipv4(dst=10.0.0.1)' 1
{ set +x; } 2>/dev/null

echo "== ping vm1 -> vm2"
ip netns exec "${tag}vm1" ping -c 3 -i 0.2 10.0.0.2
echo "== 1000 UDP datagrams vm2 -> vm1"
ip netns exec "${tag}vm1" /usr/bin/python3 -c '
import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("10.0.0.1", 7000)); s.settimeout(5); n=0
try:
    while n < 1000: s.recv(2048); n += 1
except Exception: pass
print(f"vm1 received {n} of 1000 UDP datagrams")' &
rx=$!
sleep 0.5
ip netns exec "${tag}vm2" /usr/bin/python3 -c '
import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
import time
for i in range(1000):
    s.sendto(b"x" * 64, ("10.0.0.1", 7000))
    if i % 100 == 99: time.sleep(0.005)  # let the receiving socket keep up'
wait $rx

echo "== gl-dpctl dump-flows"
dpctl dump-flows
echo "== gl-dpctl show"
dpctl show

echo
echo "== part 2: two hypervisors, the VM traffic between them encrypted (ESP ports)"
kill "$gldp_pid"; wait "$gldp_pid" 2>/dev/null || true; gldp_pid=
vm 3 10.1.0.3
vm 4 10.1.0.4
ip link add "${tag}ua" type veth peer name "${tag}ub"   # the underlay between the hosts
for d in ua ub; do
  sysctl -qw "net.ipv6.conf.${tag}$d.disable_ipv6=1"
  ethtool -K "${tag}$d" tx off rx off >/dev/null 2>&1 || true
  ip link set "${tag}$d" up
done
hv() {  # hv NAME VM_LINK UNDERLAY_LINK: a gldp with ports vm (1) and ul (2)
  # DPDK 22.11's net_af_packet names its PACKET_FANOUT group (pid ^ ifindex) & 0xffff;
  # when that equals the other hypervisor's group on another link of this namespace the
  # kernel refuses it (EINVAL): start again, with another pid.
  for _try in 1 2 3 4 5; do
    "$build/dataplane/gldp" --socket "/tmp/$tag-$1.sock" --pmd-cores 1 \
      --port "vm=net_af_packet0,iface=$2" --port "ul=net_af_packet1,iface=$3" \
      >"/tmp/$tag-$1.log" 2>&1 &
    local pid=$!
    for _ in $(seq 100); do
      if "$build/tools/gl-dpctl" --socket "/tmp/$tag-$1.sock" show >/dev/null 2>&1; then
        hv_pids+=("$pid")
        return
      fi
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    grep -q PACKET_FANOUT "/tmp/$tag-$1.log" || break
  done
  cat "/tmp/$tag-$1.log"
  exit 1
}
hv hvA "${tag}o3" "${tag}ua"
hv hvB "${tag}o4" "${tag}ub"
A() { "$build/tools/gl-dpctl" --socket "/tmp/$tag-hvA.sock" "$@"; }
B() { "$build/tools/gl-dpctl" --socket "/tmp/$tag-hvB.sock" "$@"; }
key() { /usr/bin/python3 -c 'import secrets; print(secrets.token_hex(36))'; }
kab=$(key)   # A -> B: 32-byte AES-256-GCM key + 4-byte salt
kba=$(key)   # B -> A
set -x
A add-port esp-to-B gl_esp,underlay=ul,group=1,local=192.0.2.1,remote=192.0.2.2
B add-port esp-to-A gl_esp,underlay=ul,group=1,local=192.0.2.2,remote=192.0.2.1
A add-flow 'recirc_id(0),in_port(1)' 3
A add-flow 'recirc_id(0),in_port(3)' 1
B add-flow 'recirc_id(0),in_port(1)' 3
B add-flow 'recirc_id(0),in_port(3)' 1
{ set +x; } 2>/dev/null
echo "+ A/B add-sa ... key=<72 random hex digits> (one SA per direction)"
A add-sa spi=0x1001 dir=out group=1 pmd=0 key="$kab" local=192.0.2.1 remote=192.0.2.2 \
  src_mac=02:00:00:00:ee:01 dst_mac=02:00:00:00:ee:02
A add-sa spi=0x2001 dir=in key="$kba" local=192.0.2.1 remote=192.0.2.2
B add-sa spi=0x2001 dir=out group=1 pmd=0 key="$kba" local=192.0.2.2 remote=192.0.2.1 \
  src_mac=02:00:00:00:ee:02 dst_mac=02:00:00:00:ee:01
B add-sa spi=0x1001 dir=in key="$kab" local=192.0.2.2 remote=192.0.2.1
tcpdump -i "${tag}ub" -l -nn >"/tmp/$tag.underlay" 2>/dev/null &
td=$!
sleep 1
echo "== ping vm3 (on A) -> vm4 (on B)  (both hypervisors' PMDs share core 1 here: the"
echo "   round trip shows the time slicing, not the datapath)"
ip netns exec "${tag}vm3" ping -c 3 -i 0.2 10.1.0.4
sleep 0.5
kill "$td"
wait "$td" 2>/dev/null || true
echo "== what A sent on the underlay (tcpdump on B's end): ESP only"
head -8 "/tmp/$tag.underlay"
echo "== A: the ESP port and its SAs (keys are shown only with dump-sas --show-keys)"
A show | grep -A2 "esp-to-B"
A dump-sas
if [ "$keep" = 1 ]; then
  echo "the hypervisors run on (sockets /tmp/$tag-hvA.sock, /tmp/$tag-hvB.sock);"
  echo "press Enter to stop"
  read -r _
fi
