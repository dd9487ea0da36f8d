#!/usr/bin/env bash
# Builds the whole project with AddressSanitizer + UndefinedBehaviorSanitizer (LPU_SANITIZE=ON) in
# build-asan and runs the full ctest suite there; any sanitizer report fails the run.
# Usage: scripts/sanitize.sh [BUILD_DIR] [JOBS]   (defaults: <repo>/build-asan, 2)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${1:-$ROOT/build-asan}"
JOBS="${2:-2}"

# halt_on_error: the first UB report ends the process with a non-zero status, so ctest sees it.
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
# SystemC keeps process stacks that ASan's stack-use-after-return detection does not understand;
# leak checking stays on.
export ASAN_OPTIONS="detect_stack_use_after_return=0:detect_leaks=1:abort_on_error=0"

start=$(date +%s)
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLPU_SANITIZE=ON >/dev/null
cmake --build "$BUILD" -j"$JOBS" --target lpusim lpusim_tests
built=$(date +%s)
echo "sanitize.sh: build took $((built - start)) s"
status=0
ctest --test-dir "$BUILD" -j"$JOBS" --output-on-failure --timeout 600 || status=$?
echo "sanitize.sh: ctest took $(( $(date +%s) - built )) s, exit status $status"
exit $status
