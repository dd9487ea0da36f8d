#!/usr/bin/env bash
# Builds lpusim and the whole test suite with AddressSanitizer + UndefinedBehaviorSanitizer (clang
# 14, -O1; see scripts/sanitized_build.sh) in build-asan and runs every ctest test there except
# those tagged [heavy] (they still run in the plain suite): test cases that compile big LLM and
# BERT pieces, a third of the sanitized suite's time, which reach only 6 lines that no other test
# reaches (measured with gcov, docs/reliability.md "Sanitizers"; LPU_SANITIZE_ALL=1 runs them too).
# Any sanitizer report fails the run, including one from an lpusim subprocess whose exit status a
# test does not look at: reports are written to BUILD/sanitizer-logs/ and the run fails if any appear.
# Usage: scripts/sanitize.sh [BUILD_DIR] [JOBS]   (defaults: <repo>/build-asan, nproc)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${1:-$ROOT/build-asan}"
JOBS="${2:-$(nproc)}"
# shellcheck source=scripts/sanitized_build.sh
. "$ROOT/scripts/sanitized_build.sh"

start=$(date +%s)
configure_sanitized_build "$ROOT" "$BUILD"
cmake --build "$BUILD" -j"$JOBS" --target lpusim lpusim_tests
built=$(date +%s)
echo "sanitize.sh: build took $((built - start)) s"

LOGS="$BUILD/sanitizer-logs"
rm -rf "$LOGS"
mkdir -p "$LOGS"
# halt_on_error / -fno-sanitize-recover: the first report ends the process with a non-zero status.
# detect_leaks=1: LeakSanitizer checks every process at exit (nothing is suppressed; SystemC's
# uninstrumented library reports no leaks here). log_path: one file per reporting process.
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=0:log_path=$LOGS/asan"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$LOGS/ubsan"
# The [heavy] test cases by their exact names (Catch2 lists them; each escaped for ctest's regex).
skip=()
if [ "${LPU_SANITIZE_ALL:-0}" != "1" ]; then
  # Catch2 exits with the number of test cases listed, hence the `|| true` (an empty list runs all).
  heavy=$({ "$BUILD/tests/lpusim_tests" --list-test-names-only "[heavy]" || true; } | sed '/^$/d')
  if [ -n "$heavy" ]; then
    echo "sanitize.sh: $(echo "$heavy" | wc -l) [heavy] test cases run in the plain suite only:"
    echo "$heavy" | sed 's/^/  /'
    skip=(-E "$(echo "$heavy" | sed 's/[][\\.*^$()+?|]/\\&/g; s/^/^/; s/$/$/' | paste -sd'|')")
  fi
fi
status=0
ctest --test-dir "$BUILD" -j"$JOBS" --output-on-failure --timeout 900 "${skip[@]}" || status=$?
echo "sanitize.sh: ctest took $(( $(date +%s) - built )) s, exit status $status"
reports=$(find "$LOGS" -type f | sort)
if [ -n "$reports" ]; then
  echo "sanitize.sh: sanitizer reports ($(echo "$reports" | wc -l) processes):" >&2
  for f in $reports; do echo "== $f" >&2; head -60 "$f" >&2; done
  status=1
fi
exit $status
