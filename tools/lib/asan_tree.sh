# Sourced by tools/fuzz.sh and tools/sanitize.sh: the one instrumented build both use,
# BUILD/fuzz (clang-16; ASan + UBSan; libFuzzer coverage; our DPDK code too, DPDK's own
# libraries as Debian ships them, uninstrumented), configured once.
# asan_tree BUILD sets $asan_dir.
asan_tree() {
  asan_dir=$1/fuzz
  if ! command -v clang++-16 >/dev/null; then
    echo "$(basename "$0"): clang++-16 is missing (tools/setup.sh installs clang-16 and libfuzzer-16-dev)" >&2
    exit 1
  fi
  # (A tree configured before the dataplane was part of it is configured again.)
  [ -f "$asan_dir/build.ninja" ] &&
    grep -q "^GL_BUILD_DATAPLANE:BOOL=ON" "$asan_dir/CMakeCache.txt" && return 0
  local launcher=()
  command -v ccache >/dev/null &&
    launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
  # -O1 -gline-tables-only: what libFuzzer and ASan recommend (line numbers in reports),
  # and a quicker build than -O2 -g.
  CC=clang-16 CXX=clang++-16 cmake -S "$top" -B "$asan_dir" -G Ninja -DCMAKE_BUILD_TYPE=None \
    -DCMAKE_CXX_FLAGS="-O1 -gline-tables-only" -DCMAKE_C_FLAGS="-O1 -gline-tables-only" \
    -DGL_WERROR=ON -DGL_LIBFUZZER=ON -DGL_BUILD_DATAPLANE=ON "${launcher[@]}" >/dev/null
}
