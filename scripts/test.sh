#!/usr/bin/env bash
# README command 2: set up, build, and run the whole test suite (ctest, one process per test case),
# then the reliability stages (docs/reliability.md): the same suite built with AddressSanitizer +
# UndefinedBehaviorSanitizer (scripts/sanitize.sh) and a fuzz smoke run of every libFuzzer target
# (scripts/fuzz.sh, LPU_FUZZ_SECONDS per target, default 10). Prints the time of each stage.
# LPU_TEST_QUICK=1 runs only the normal build and suite (for a quick local check; CI runs all).
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
bash scripts/build.sh
t1=$(date +%s)
(cd build && ctest --output-on-failure -j"$(nproc)" --timeout 600)
t2=$(date +%s)
echo "test.sh: stage 1 build $((t1 - t0)) s, stage 2 test suite $((t2 - t1)) s"
if [ "${LPU_TEST_QUICK:-0}" = "1" ]; then
  echo "test.sh: LPU_TEST_QUICK=1: sanitizer and fuzz stages skipped"
  exit 0
fi
bash scripts/sanitize.sh
t3=$(date +%s)
bash scripts/fuzz.sh "${LPU_FUZZ_SECONDS:-10}"
t4=$(date +%s)
echo "test.sh: stage 1 build $((t1 - t0)) s, stage 2 test suite $((t2 - t1)) s, stage 3 sanitizer build + suite" \
     "$((t3 - t2)) s, stage 4 fuzz smoke $((t4 - t3)) s; total $((t4 - t0)) s"
