#!/usr/bin/env bash
# Unit tests under the sanitizers. Any report fails (exit != 0).
#
#   asan  AddressSanitizer + UndefinedBehaviorSanitizer (clang-16 -O1, BUILD/fuzz: the
#         build tools/fuzz.sh uses, tools/lib/asan_tree.sh): the packet parser,
#         classifier, EMC and RCU (test_flowtables), ESP, AEAD, replay window and handshake
#         (test_crypto), the connection tracker with NAT, fragments and helpers
#         (test_conntrack), the firewall's tables (test_firewall), the policy compiler
#         (test_policy), glctld's OVSDB client against the real ovsdb-server
#         (test_ovsdb), glctld's state cache, sync engine, daemon, keys and
#         management socket against a scripted gldp (test_glctld), its flow records, log
#         and IPFIX exporter (test_flow_export), and gldp's datapath in-process (test_datapath, test_miss_hold: EAL
#         with --no-huge, net_ring ports, the pipeline run on the test's thread; our code
#         instrumented, Debian's DPDK libraries not). Then gldp itself with real packets:
#         the instrumented gldp and gl-dpctl under integration:gldp's quicker cases (ping
#         and UDP, flow actions, port removal, the EMC, bad CLI input, the firewall state
#         across a kill -9), every report of either written to BUILD/fuzz/reports/ and
#         failing the run. About 6 minutes from cold on a 2-core machine, with
#         fuzz:libfuzzer building the libraries first.
#   tsan  ThreadSanitizer (BUILD/tsan): the tests that run threads against each other
#         (tag [threads]): RCU publication and reclamation with readers, the classifier
#         with concurrent readers while the writer churns, lookups and inserts on other
#         threads while the tracker's index grows, two threads reassembling fragments,
#         two contexts tracking both directions of the same connections while the control
#         thread dumps and counts them, the firewall's event ring (a PMD pushes, the
#         control thread drains), and flow::BoundedQueue, the queue of the PMDs' handoffs
#         (upcalls to the control thread and back, ESP packets to their SA's owner):
#         three producers against one consumer.
# What is not covered: gldp's PMD threads themselves (the datapath is not built with
# TSan: DPDK would need to be) and DPDK's own code; the integration tests cover those.
# Usage: tools/sanitize.sh asan|tsan [BUILD]   (CTest: sanitize:asan/tsan)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
mode=${1:?usage: tools/sanitize.sh asan|tsan [BUILD]}
build=${2:-${GL_BUILD_DIR:-$top/build}}
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
case $mode in
  asan)
    . "$top/tools/lib/asan_tree.sh"
    asan_tree "$build"
    dir=$asan_dir
    tests=(test_flowtables test_crypto test_conntrack test_firewall test_policy test_ovsdb
           test_glctld test_flow_export test_datapath test_miss_hold)
    filter=()
    export ASAN_OPTIONS=abort_on_error=1:detect_leaks=1
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    ;;
  tsan)
    dir=$build/tsan
    tests=(test_flowtables test_conntrack test_firewall)
    filter=("[threads]")
    export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
    ;;
  *)
    echo "usage: tools/sanitize.sh asan|tsan [BUILD]" >&2
    exit 2
    ;;
esac
if [ "$mode" = tsan ] && [ ! -f "$dir/build.ninja" ]; then
  cmake -S "$top" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGL_WERROR=ON \
    -DGL_TSAN=ON -DGL_BUILD_DATAPLANE=OFF "${launcher[@]}" >/dev/null
fi
if ! ninja -C "$dir" -j "${GL_JOBS:-$(nproc)}" "${tests[@]}" >"$dir/build-tests.log" 2>&1; then
  tail -30 "$dir/build-tests.log"
  echo "$(basename "$0"): the build failed (log: $dir/build-tests.log)" >&2
  exit 1
fi
# Each test's whole output in $dir/NAME.log; a failure prints its checks and reports (and
# the others still run).
failed=0
for t in "${tests[@]}"; do
  bin=$(find "$dir/test/unit" -name "$t" -type f -perm -u+x | head -1)
  echo "$t ($mode):"
  if "$bin" "${filter[@]}" >"$dir/$t.log" 2>&1; then
    tail -2 "$dir/$t.log"
  else
    failed=1
    grep -E -B2 -A14 "FAILED|ERROR: (Address|Thread|Undefined)|WARNING: ThreadSanitizer|runtime error" \
      "$dir/$t.log" | head -120 || true
    tail -3 "$dir/$t.log"
    echo "$t ($mode) FAILED (whole output: $dir/$t.log)"
  fi
done
if [ "$mode" = asan ]; then
  # gldp and gl-dpctl under ASan+UBSan with real packets (integration:gldp's rig: root,
  # network namespaces). The tests do not see a report a process writes on its way out
  # (a leak at exit): every report goes to a file, and any file fails.
  echo "gldp, gl-dpctl (asan) under integration:gldp:"
  reports=$dir/reports
  rm -rf "$reports"
  mkdir -p "$reports"
  if ! ninja -C "$dir" -j "${GL_JOBS:-$(nproc)}" dataplane/gldp tools/gl-dpctl \
    >"$dir/build-gldp.log" 2>&1; then
    tail -30 "$dir/build-gldp.log"
    echo "$(basename "$0"): the build of gldp failed (log: $dir/build-gldp.log)" >&2
    exit 1
  fi
  if ASAN_OPTIONS=$ASAN_OPTIONS:log_path=$reports/asan UBSAN_OPTIONS=$UBSAN_OPTIONS:log_path=$reports/ubsan \
    GL_BUILD_DIR=$dir /usr/bin/python3 "$top/test/integration/test_gldp.py" test_ping_and_udp \
    test_fw_state_across_restart test_flow_actions test_port_removal test_emc \
    test_bad_cli_input >"$dir/gldp-integration.log" 2>&1; then
    tail -1 "$dir/gldp-integration.log"
  else
    failed=1
    tail -20 "$dir/gldp-integration.log"
    echo "integration:gldp (asan) FAILED (whole output: $dir/gldp-integration.log)"
  fi
  if [ -n "$(ls -A "$reports")" ]; then
    failed=1
    for f in "$reports"/*; do
      echo "== $f"
      head -40 "$f"
    done
    echo "sanitizer reports from gldp or gl-dpctl (in $reports)"
  fi
fi
exit $failed
