#!/usr/bin/env bash
# Checks that every C/C++ source in the repository is clang-format clean (.clang-format).
# Usage: tools/check_format.sh [--fix]
set -euo pipefail
cd "$(dirname "$0")/.."
fix=0
[ "${1:-}" = "--fix" ] && fix=1
command -v clang-format >/dev/null || { echo "clang-format not installed"; exit 1; }
bad=0
while IFS= read -r f; do
  [ -f "$f" ] || continue
  if ! clang-format --dry-run -Werror "$f" >/dev/null 2>&1; then
    if [ "$fix" = 1 ]; then clang-format -i "$f"; else echo "not formatted: $f"; bad=1; fi
  fi
done < <(git ls-files '*.cpp' '*.hpp' '*.h' '*.c' 2>/dev/null || find . -name '*.[ch]pp' -not -path './build*')
exit "$bad"
