#!/usr/bin/env bash
# Regenerates the project's cycle-count goldens, tests/golden/<name>.json: the JSON report of
# `lpusim sim workloads/asm/<name>.s` on the built-in tsp-v1 (what `lpusim regress` reads, see
# docs/regress.md). Run it only when a change of cycle counts (or energy figures) is intended, and
# check that the new cycle counts match the hand derivations in the programs' headers; the golden
# diff then shows the change in review. The test "goldens: every project golden passes lpusim
# regress" (tests/golden/test_goldens.cpp) compares fresh runs with these files.
#   scripts/update_goldens.sh [LPUSIM]    (default build/tools/lpusim)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
lpusim=${1:-$root/build/tools/lpusim}
for g in "$root"/tests/golden/*.json; do
  name=$(basename "$g" .json)
  "$lpusim" sim "$root/workloads/asm/$name.s" --json "$g" >/dev/null
  echo "tests/golden/$name.json: $(grep -m1 '"cycles"' "$g" | tr -d ' ,')"
done
