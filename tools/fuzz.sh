#!/usr/bin/env bash
# The fuzz targets coverage-guided with libFuzzer (clang-16) under AddressSanitizer +
# UndefinedBehaviorSanitizer: configures and builds them (and only the libraries they
# need; DPDK's own libraries stay uninstrumented) into BUILD/fuzz, then runs each for a
# bounded time starting from its committed corpus (test/fuzz/corpus/NAME). Inputs found on the way go to a scratch copy
# of the corpus, never into the source tree. Any crash, timeout, leak, out-of-memory or
# sanitizer report fails (exit != 0); the input that did it is kept in
# BUILD/fuzz/artifacts/ and named in the output.
#
#   tools/fuzz.sh [BUILD] [--seconds N] [--only NAME] [--merge]
#     --seconds N  time per target (default 20; CTest's fuzz:libfuzzer uses the default);
#                  the targets run side by side, one per CPU (GL_FUZZ_JOBS=N for fewer)
#     --only NAME  one target (parser, conntrack, handshake, rule, esp, ovsdb, odp, dpapi, mgmt)
#     --merge      afterwards, fold what the run found into the committed corpus,
#                  minimized (libFuzzer -merge=1): for a maintainer to review and commit
#
# Reproduce a failure: BUILD/fuzz/test/fuzz/gl-fuzz-NAME BUILD/fuzz/artifacts/<file>
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${GL_BUILD_DIR:-$top/build}
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then
  build=$1
  shift
fi
build=$(cd "$build" && pwd)
seconds=20
only=
merge=0
while [ $# -gt 0 ]; do
  case $1 in
    --seconds) seconds=${2:?--seconds needs a number}; shift 2 ;;
    --only) only=${2:?--only needs a target name}; shift 2 ;;
    --merge) merge=1; shift ;;
    -h | --help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "tools/fuzz.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done
case $seconds in '' | *[!0-9]*) echo "tools/fuzz.sh: --seconds wants a whole number" >&2; exit 2 ;; esac
. "$top/tools/lib/asan_tree.sh"
asan_tree "$build"
dir=$asan_dir
all=(parser conntrack handshake rule esp ovsdb odp dpapi mgmt)
names=("${all[@]}")
if [ -n "$only" ]; then
  if [[ " ${all[*]} " != *" $only "* ]]; then
    echo "tools/fuzz.sh: no target '$only' (one of: ${all[*]})" >&2
    exit 2
  fi
  names=("$only")
fi
targets=()
for n in "${names[@]}"; do targets+=("gl-fuzz-$n"); done
if ! ninja -C "$dir" -j "${GL_JOBS:-$(nproc)}" "${targets[@]}" >"$dir/build-targets.log" 2>&1; then
  tail -30 "$dir/build-targets.log"
  echo "$(basename "$0"): the build failed (log: $dir/build-targets.log)" >&2
  exit 1
fi

export ASAN_OPTIONS=abort_on_error=1:detect_leaks=1:allocator_may_return_null=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
mkdir -p "$dir/artifacts"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
# One target: runs it, writes its report line(s) to $scratch/$n.out, exit status = its.
fuzz_one() {
  local n=$1 seeds=$top/test/fuzz/corpus/$1 work=$scratch/$1 log=$dir/fuzz-$1.log out=$scratch/$1.out
  mkdir -p "$work"
  printf 'gl-fuzz-%s (libFuzzer, ASan+UBSan, %d s): ' "$n" "$seconds" >"$out"
  if "$dir/test/fuzz/gl-fuzz-$n" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -max_len=10000 -print_final_stats=1 -artifact_prefix="$dir/artifacts/$n-" \
    "$work" "$seeds" >"$log" 2>&1; then
    local runs cov
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
    echo "${runs:-?} inputs, ${cov:-cov: ?}, $(ls "$work" | wc -l) new in corpus, no crash" >>"$out"
  else
    {
      echo "FAILED"
      grep -E 'ERROR|runtime error|SUMMARY|Test unit written|==[0-9]+==' "$log" | head -20 || true
      echo "  full log: $log"
    } >>"$out"
    return 1
  fi
}
# The targets run side by side, one per CPU (GL_FUZZ_JOBS; each is one process): a
# fuzzer's inputs per second do not depend on the others, and the wall time is what CI
# pays. Reports are printed in the targets' order.
jobs=${GL_FUZZ_JOBS:-$(nproc)}
failed=0
pids=()
for n in "${names[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  fuzz_one "$n" &
  pids+=($!)
done
for i in "${!names[@]}"; do
  n=${names[$i]}
  wait "${pids[$i]}" || failed=1
  cat "$scratch/$n.out"
  if [ "$merge" = 1 ]; then
    seeds=$top/test/fuzz/corpus/$n
    "$dir/test/fuzz/gl-fuzz-$n" -merge=1 "$seeds" "$scratch/$n" >>"$dir/fuzz-$n.log" 2>&1
    echo "  corpus now $(ls "$seeds" | wc -l) files in test/fuzz/corpus/$n"
  fi
done
exit "$failed"
