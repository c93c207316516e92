#!/usr/bin/env bash
# Goldilocks machine set-up: installs the Debian 12 packages the build, the tests, the
# demo and the benchmarks use, and prepares hugepages when it can.
# Idempotent; takes about a second when everything is already in place.
#
# Usage: tools/setup.sh [--no-hugepages]
set -euo pipefail

want_huge=1
for a in "$@"; do
  case "$a" in
    --no-hugepages) want_huge=0 ;;
    -h|--help)
      sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'
      exit 0 ;;
    *) echo "setup.sh: unknown option '$a' (try --help)" >&2; exit 2 ;;
  esac
done

packages=(
  # build
  build-essential cmake ninja-build ccache pkg-config git clang-format autoconf
  # the fuzz targets under libFuzzer and the ASan/UBSan tree (tools/fuzz.sh, sanitize.sh):
  # libclang-rt-16-dev holds clang-16's sanitizer and fuzzer runtimes (a fresh machine
  # lacks them: CI failed to link the fuzz targets without it)
  clang-16 libfuzzer-16-dev libclang-rt-16-dev
  # libraries
  libdpdk-dev dpdk dpdk-dev libsodium-dev libboost-dev libboost-system-dev nlohmann-json3-dev
  catch2 libipsec-mb-dev libpcap-dev libnuma-dev libssl-dev libcap-ng-dev libunbound-dev
  # Open vSwitch: the real peer, and the source ovs-vswitchd-gl is built from
  openvswitch-switch-dpdk openvswitch-common openvswitch-source
  # test tools
  iputils-ping iproute2 ethtool tcpdump tshark netcat-openbsd procps psmisc wget curl
  python3 python3-scapy python3-cryptography python3-os-ken python3-matplotlib
  python3-pyftpdlib  # OVS's FTP system tests (tools/ovs-systest.py)
)

sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)

missing=()
for p in "${packages[@]}"; do
  case "$p" in \#*) continue ;; esac
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${#missing[@]} packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  echo "wireshark-common wireshark-common/install-setuid boolean false" |
    "${sudo_cmd[@]}" debconf-set-selections
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Debian starts the OVS services on install; our tests run their own instances.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet openvswitch-switch 2>/dev/null; then
  "${sudo_cmd[@]}" systemctl stop openvswitch-switch || true
fi

# Hugepages: 1 GiB of 2 MiB pages when we are root and the kernel lets us. Every DPDK
# process started by our tools checks /dev/hugepages itself and falls back to
# --no-huge --in-memory when this did not work (see dataplane/eal_args.cpp).
if [ "$want_huge" -eq 1 ] && [ "$(id -u)" -eq 0 ]; then
  cur=$(cat /proc/sys/vm/nr_hugepages 2>/dev/null || echo 0)
  if [ "$cur" -lt 1024 ]; then
    echo 1024 >/proc/sys/vm/nr_hugepages 2>/dev/null || true
  fi
  if ! grep -qs ' /dev/hugepages hugetlbfs' /proc/mounts; then
    mkdir -p /dev/hugepages
    mount -t hugetlbfs nodev /dev/hugepages 2>/dev/null || true
  fi
  now=$(cat /proc/sys/vm/nr_hugepages 2>/dev/null || echo 0)
  if [ "$now" -gt 0 ] && grep -qs ' /dev/hugepages hugetlbfs' /proc/mounts; then
    echo "setup: hugepages: $now x 2 MiB on /dev/hugepages"
  else
    echo "setup: hugepages unavailable here; DPDK processes will use --no-huge --in-memory"
  fi
fi
echo "setup: done"
