#!/usr/bin/env bash
# The fuzz targets under AddressSanitizer + UndefinedBehaviorSanitizer: configures and
# builds them (and only the libraries they need, no DPDK) into BUILD/asan, then runs each
# with the deterministic driver. Any crash or sanitizer report fails (exit != 0).
# Usage: tools/fuzz_asan.sh [BUILD] [--runs-scale N]   (CTest runs it as fuzz:asan)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-${GL_BUILD_DIR:-$top/build}}
scale=1
if [ "${2:-}" = "--runs-scale" ]; then scale=${3:?}; fi
dir=$build/asan
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
if [ ! -f "$dir/build.ninja" ]; then
  cmake -S "$top" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGL_WERROR=ON \
    -DGL_SANITIZE=ON -DGL_BUILD_DATAPLANE=OFF "${launcher[@]}" >/dev/null
fi
targets=(gl-fuzz-parser gl-fuzz-conntrack gl-fuzz-handshake gl-fuzz-rule gl-fuzz-esp gl-fuzz-ovsdb)
ninja -C "$dir" -j "${GL_JOBS:-$(nproc)}" "${targets[@]}" >/dev/null
export ASAN_OPTIONS=abort_on_error=1:detect_leaks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
declare -A runs=([gl-fuzz-parser]=300000 [gl-fuzz-conntrack]=300000 [gl-fuzz-handshake]=20000
                 [gl-fuzz-rule]=300000 [gl-fuzz-esp]=200000 [gl-fuzz-ovsdb]=100000)
for t in "${targets[@]}"; do
  n=$(( ${runs[$t]} * scale ))
  printf '%s (ASan+UBSan, %d inputs): ' "$t" "$n"
  "$dir/test/fuzz/$t" --runs "$n"
done
