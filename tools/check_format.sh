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

# Byte loads and stores live in flowtables/bytes.hpp only (#13): a function or lambda named
# like one (load16, ld32, st64, get_be, put32, set_raw16, be16, host16, raw64, ...) whose
# first parameter is a byte pointer is a local copy. (C files cannot include the header.)
verbs='load|store|ld|st|get|put|set|read|write|rd|wr'
orders='be|le|raw|host|net|u'
name="((${verbs})_?((${orders})_?)?(16|32|64)?|(${orders})(16|32|64))(_at)?"
byteptr='(const )?(uint8_t|unsigned char|std::byte) ?\*'
fn="^[[:space:]]*((static|inline|constexpr|\[\[nodiscard\]\]) )*(u?int(8|16|32|64)_t|void|T|auto|unsigned|size_t) +(${name}) ?\(${byteptr}"
lambda="auto (${name}) = \[[^]]*\] ?\(${byteptr}"
while IFS= read -r hit; do
  echo "byte load/store helper outside flowtables/bytes.hpp (use gl::flow::load_be16 etc.): $hit"
  bad=1
done < <({ git ls-files '*.cpp' '*.hpp' 2>/dev/null || find . -name '*.[ch]pp' -not -path './build*'; } |
  grep -v 'flowtables/bytes\.hpp$' | xargs -r grep -snHE "${fn}|${lambda}" || true)
exit "$bad"
