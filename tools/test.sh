#!/usr/bin/env bash
# The whole test suite on a fresh Debian 12 machine: installs what it needs (idempotent),
# builds, runs every unit and integration test, prints "N passed, N failed".
# Usage: tools/test.sh [ctest arguments, e.g. -L unit or -R gldp]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${GL_BUILD_DIR:-$top/build}
"$top/tools/setup.sh"
"$top/tools/build.sh"
cd "$build"
set +e
ctest --output-on-failure --timeout 900 "$@" 2>&1 | tee "$build/ctest.log"
rc=${PIPESTATUS[0]}
set -e
passed=$(grep -cE '^ *[0-9]+/[0-9]+ Test +#[0-9]+: .* Passed' "$build/ctest.log" || true)
failed=$(grep -cE '^ *[0-9]+/[0-9]+ Test +#[0-9]+: .*(\*\*\*|Failed|Not Run|Timeout)' "$build/ctest.log" || true)
echo "$passed passed, $failed failed"
exit "$rc"
