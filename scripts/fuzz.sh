#!/usr/bin/env bash
# Builds the libFuzzer targets in fuzz/ (clang++ with -fsanitize=fuzzer,address,undefined) against
# the project's libraries, and runs each for SECONDS_PER_TARGET seconds on a copy of its seed corpus.
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]   (default 10 s, all four targets)
# Env: LPU_FUZZ_BUILD (build dir, default <repo>/build-fuzz), LPU_FUZZ_JOBS (build jobs, default 2).
# Crashing inputs are kept in $LPU_FUZZ_BUILD/fuzz/artifacts/<target>/; exit status 1 if any target
# found one. Longer campaigns: docs/reliability.md.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECONDS_PER_TARGET="${1:-10}"
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=(fuzz_program_loader fuzz_assembler fuzz_chip_config fuzz_onnx_import)
BUILD="${LPU_FUZZ_BUILD:-$ROOT/build-fuzz}"
JOBS="${LPU_FUZZ_JOBS:-2}"
if ! [[ "$SECONDS_PER_TARGET" =~ ^[0-9]+$ ]] || [ "$SECONDS_PER_TARGET" -lt 1 ]; then
  echo "fuzz.sh: SECONDS_PER_TARGET must be a whole number >= 1; got '$SECONDS_PER_TARGET'" >&2
  exit 2
fi

# clang 14 and its fuzzer runtime from Debian.
CXX="$(command -v clang++-14 || command -v clang++ || true)"
if [ -z "$CXX" ] || ! ls /usr/lib/llvm-14/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
  echo "fuzz.sh: installing clang-14 and libclang-rt-14-dev with apt-get"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang-14 libclang-rt-14-dev
  CXX="$(command -v clang++-14)"
fi

start=$(date +%s)
# The libraries are instrumented for coverage (fuzzer-no-link) and sanitized; the fuzz targets link
# the libFuzzer driver. UB stops the run (no recovery) so it counts as a crash.
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_CXX_COMPILER="$CXX" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS="-fsanitize=fuzzer-no-link $SAN" >/dev/null
cmake --build "$BUILD" -j"$JOBS" --target lpu_isa lpu_compiler
mkdir -p "$BUILD/fuzz"
for t in "${TARGETS[@]}"; do
  [ -f "$ROOT/fuzz/$t.cpp" ] || { echo "fuzz.sh: no fuzz target $ROOT/fuzz/$t.cpp" >&2; exit 2; }
  if [ ! -x "$BUILD/fuzz/$t" ] || [ "$ROOT/fuzz/$t.cpp" -nt "$BUILD/fuzz/$t" ] \
     || [ "$BUILD/isa/liblpu_isa.a" -nt "$BUILD/fuzz/$t" ] || [ "$BUILD/compiler/liblpu_compiler.a" -nt "$BUILD/fuzz/$t" ]; then
    echo "fuzz.sh: linking $t"
    # shellcheck disable=SC2086
    "$CXX" -std=c++17 -g -O1 -fsanitize=fuzzer $SAN -I"$ROOT" -I/usr/include/eigen3 \
      -DONNX_NAMESPACE=onnx -DONNX_ML=1 "$ROOT/fuzz/$t.cpp" \
      "$BUILD/compiler/liblpu_compiler.a" "$BUILD/isa/liblpu_isa.a" \
      -lyaml-cpp -lfmt -lonnx -lonnx_proto -lprotobuf -lpthread -o "$BUILD/fuzz/$t"
  fi
done
built=$(date +%s)
echo "fuzz.sh: build took $((built - start)) s"

# Seeds come from the repository; the fuzzer grows a private copy so the tree stays clean.
seed_dirs() {
  case "$1" in
    fuzz_program_loader) echo "$ROOT/fuzz/seeds/program $ROOT/tests/data/bad_programs" ;;
    fuzz_assembler) echo "$ROOT/workloads/asm $ROOT/tests/data/asm" ;;
    fuzz_chip_config) echo "$ROOT/workloads/chips $ROOT/tests/data/bad_configs" ;;
    fuzz_onnx_import) echo "$ROOT/tests/data/bad_onnx $ROOT/tests/data/onnx_import" ;;
  esac
}
seed_glob() {
  case "$1" in
    fuzz_program_loader) echo "*.lpu" ;; fuzz_assembler) echo "*.s" ;;
    fuzz_chip_config) echo "*.yaml" ;; fuzz_onnx_import) echo "*.onnx" ;;
  esac
}
failed=()
for t in "${TARGETS[@]}"; do
  work="$BUILD/fuzz/corpus/$t"
  art="$BUILD/fuzz/artifacts/$t/"
  mkdir -p "$work" "$art"
  # shellcheck disable=SC2046
  for d in $(seed_dirs "$t"); do find "$d" -name "$(seed_glob "$t")" -size -256k -exec cp -n {} "$work/" \; ; done
  find "$ROOT/tests/corpus/inputs" -name "$(seed_glob "$t")" -size -256k -exec cp -n {} "$work/" \; 2>/dev/null || true
  echo "fuzz.sh: running $t for $SECONDS_PER_TARGET s ($(ls "$work" | wc -l) inputs in its corpus)"
  # Fork mode with ignore_*: a finding is saved and the run goes on, so one known bug does not hide
  # the rest; any file left in the artifacts directory counts as a finding.
  rm -f "$art"crash-* "$art"timeout-* "$art"oom-* "$art"leak-*
  UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1" ASAN_OPTIONS="detect_leaks=1" \
    "$BUILD/fuzz/$t" -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
    -max_total_time="$SECONDS_PER_TARGET" -timeout=30 -rss_limit_mb=2048 -max_len=65536 \
    -artifact_prefix="$art" "$work" > "$BUILD/fuzz/$t.log" 2>&1 || true
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
