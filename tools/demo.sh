#!/usr/bin/env bash
# The Goldilocks demo on one machine: installs what it needs, builds, then starts gldp
# with two network-namespace "VMs" attached through net_af_packet ports, installs flows
# with gl-dpctl, sends ping and UDP across and prints the flows and counters.
# Everything it creates (namespaces, links, gldp) is removed when it ends.
# Usage: tools/demo.sh [--keep]   (--keep: leave it running until Enter is pressed)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${GL_BUILD_DIR:-$top/build}
keep=0
[ "${1:-}" = "--keep" ] && keep=1
[ "${1:-}" = "--help" ] && { sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0; }

"$top/tools/setup.sh"
"$top/tools/build.sh"

tag=gldemo$$
sock=/tmp/$tag.sock
gldp_pid=
cleanup() {
  set +e
  [ -n "$gldp_pid" ] && kill "$gldp_pid" 2>/dev/null && wait "$gldp_pid" 2>/dev/null
  for i in 1 2; do
    ip link del "${tag}o$i" 2>/dev/null
    ip netns del "${tag}vm$i" 2>/dev/null
  done
  rm -f "$sock" "/tmp/$tag.log"
}
trap cleanup EXIT INT TERM

echo "== two VMs: ${tag}vm1 (10.0.0.1) and ${tag}vm2 (10.0.0.2)"
for i in 1 2; do
  ip netns add "${tag}vm$i"
  ip link add "${tag}o$i" type veth peer name "${tag}i$i"
  ip link set "${tag}i$i" netns "${tag}vm$i"
  ip -n "${tag}vm$i" addr add "10.0.0.$i/24" dev "${tag}i$i"
  ip -n "${tag}vm$i" link set "${tag}i$i" up
  ip -n "${tag}vm$i" link set lo up
  ip netns exec "${tag}vm$i" ethtool -K "${tag}i$i" tx off >/dev/null 2>&1 || true
  ip link set "${tag}o$i" up
  # No IPv6 autoconfiguration chatter: the demo installs IPv4 and ARP flows only.
  sysctl -qw "net.ipv6.conf.${tag}o$i.disable_ipv6=1"
  ip netns exec "${tag}vm$i" sysctl -qw "net.ipv6.conf.all.disable_ipv6=1"
done

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
if [ "$keep" = 1 ]; then
  echo "gldp is running (socket $sock); press Enter to stop"
  read -r _
fi
