#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ (clang 14, -fsanitize=fuzzer,address,undefined; configured
# by scripts/sanitized_build.sh, sharing build-asan with scripts/sanitize.sh) and runs each for
# SECONDS_PER_TARGET seconds from its seeds: fuzz/corpus/<target>/ and the repo files its SEEDS lists.
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]   (default 10 s, all four targets)
# Env: LPU_FUZZ_BUILD (build dir, default <repo>/build-asan), LPU_FUZZ_JOBS (build jobs, default nproc).
# Crashing inputs are kept in $LPU_FUZZ_BUILD/fuzz/artifacts/<target>/; exit status 1 if any target
# found one. Longer campaigns: docs/reliability.md.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECONDS_PER_TARGET="${1:-10}"
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=(fuzz_program_loader fuzz_assembler fuzz_chip_config fuzz_onnx_import)
BUILD="${LPU_FUZZ_BUILD:-$ROOT/build-asan}"
JOBS="${LPU_FUZZ_JOBS:-$(nproc)}"
if ! [[ "$SECONDS_PER_TARGET" =~ ^[0-9]+$ ]] || [ "$SECONDS_PER_TARGET" -lt 1 ]; then
  echo "fuzz.sh: SECONDS_PER_TARGET must be a whole number >= 1; got '$SECONDS_PER_TARGET'" >&2
  exit 2
fi
for t in "${TARGETS[@]}"; do
  [ -d "$ROOT/fuzz/corpus/$t" ] || { echo "fuzz.sh: no fuzz target '$t' (no fuzz/corpus/$t/)" >&2; exit 2; }
done
# shellcheck source=scripts/sanitized_build.sh
. "$ROOT/scripts/sanitized_build.sh"

start=$(date +%s)
configure_sanitized_build "$ROOT" "$BUILD"
cmake --build "$BUILD" -j"$JOBS" --target "${TARGETS[@]}"
built=$(date +%s)
echo "fuzz.sh: build took $((built - start)) s"

failed=()
for t in "${TARGETS[@]}"; do
  # The fuzzer grows a private copy of the seeds, so the tree stays clean; the copy persists, so
  # repeated runs continue where the last one stopped.
  work="$BUILD/fuzz/corpus/$t"
  art="$BUILD/fuzz/artifacts/$t/"
  mkdir -p "$work" "$art"
  # Seeds: the files in fuzz/corpus/<target>/ plus the repo files its SEEDS lists (globs), so the
  # bad-input corpus and the example programs seed the fuzzers without being copied into fuzz/.
  find "$ROOT/fuzz/corpus/$t" -maxdepth 1 -type f ! -name SEEDS -exec cp -n {} "$work/" \;
  while read -r glob; do
    case "$glob" in ''|'#'*) continue ;; esac
    for f in "$ROOT"/$glob; do [ -f "$f" ] && cp -n "$f" "$work/"; done
  done < "$ROOT/fuzz/corpus/$t/SEEDS"
  echo "fuzz.sh: running $t for $SECONDS_PER_TARGET s ($(find "$work" -type f | wc -l) inputs in its corpus)"
  # Fork mode with ignore_*: a finding is saved and the run goes on, so one bug does not hide the
  # rest; any file left in the artifacts directory counts as a finding.
  rm -f "$art"crash-* "$art"timeout-* "$art"oom-* "$art"leak-*
  # -malloc_limit_mb: one huge allocation is reported at once with its stack. An input that grows
  # past -rss_limit_mb in small pieces makes libFuzzer print a heap profile first, which under ASan
  # can take many minutes: `timeout` bounds the whole run, and an overrun counts as a finding.
  rc=0
  UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1" ASAN_OPTIONS="detect_leaks=1" \
    timeout -k 10 $((SECONDS_PER_TARGET + 120)) \
    "$BUILD/fuzz/$t" -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
    -max_total_time="$SECONDS_PER_TARGET" -timeout=30 -rss_limit_mb=2048 -malloc_limit_mb=1024 -max_len=65536 \
    -artifact_prefix="$art" "$work" > "$BUILD/fuzz/$t.log" 2>&1 || rc=$?
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    echo "fuzz.sh: $t overran its $SECONDS_PER_TARGET s by 120 s and was stopped (an out-of-memory input?)" >&2
    echo "overran: see $t.log" > "$art/overrun-$(date +%s)"
  fi
  grep -E "^#[0-9]+: cov" "$BUILD/fuzz/$t.log" | tail -1 || true
  findings=$(find "$art" -type f | wc -l)
  if [ "$findings" -ne 0 ]; then
    echo "fuzz.sh: $t: $findings finding(s) in $art; log $BUILD/fuzz/$t.log" >&2
    grep -E "runtime error|ERROR: (Address|libFuzzer|Leak)|SUMMARY" "$BUILD/fuzz/$t.log" | sort | uniq -c | head -8 >&2 || true
    failed+=("$t")
  fi
done
echo "fuzz.sh: fuzzing took $(( $(date +%s) - built )) s"
if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzz.sh: targets with findings: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz.sh: all targets clean"
