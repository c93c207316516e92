#!/usr/bin/env bash
# Configures and builds Goldilocks into build/ (kept between runs; ccache when present).
# Usage: tools/build.sh [extra cmake -D options]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${GL_BUILD_DIR:-$top/build}
jobs=${GL_JOBS:-$(nproc)}
if [ ! -f "$build/build.ninja" ]; then
  cmake -S "$top" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGL_WERROR=ON "$@"
elif [ $# -gt 0 ]; then
  cmake "$build" "$@"
fi
ninja -C "$build" -j "$jobs"
