#!/usr/bin/env bash
# Format check (CTest `format`, CI): every tracked C++ file under agent/ tests/ bench/ fuzz/ is
# already as the repo's .clang-format wants it. Prints the offending lines and exits 1 otherwise.
# Fix with:  git ls-files 'agent/*pp' 'tests/*pp' 'bench/*pp' 'fuzz/*pp' | xargs clang-format -i
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
fmt=${CLANG_FORMAT:-clang-format-14}
command -v "$fmt" >/dev/null || fmt=clang-format
mapfile -t files < <(git ls-files -- 'agent/*.cpp' 'agent/*.hpp' 'tests/*.cpp' 'tests/*.hpp' \
  'bench/*.cpp' 'bench/*.hpp' 'fuzz/*.cpp' 'fuzz/*.hpp' 2>/dev/null ||
  find agent tests bench fuzz -name '*.cpp' -o -name '*.hpp')
"$fmt" --dry-run -Werror "${files[@]}"
echo "format: ${#files[@]} files as .clang-format wants"
