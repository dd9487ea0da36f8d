#!/usr/bin/env bash
# Sourced by scripts/sanitize.sh and scripts/fuzz.sh: configures one sanitized build directory that
# serves both (the whole test suite under AddressSanitizer + UndefinedBehaviorSanitizer, and the
# libFuzzer targets of fuzz/ linked against the same compiled libraries), so CI compiles the
# project twice (normal + sanitized), not three times. clang 14 from Debian (scripts/install-deps.sh).
#   configure_sanitized_build ROOT BUILD   -> sets LPU_CXX; exits 2 if clang++-14 is missing
# Flags: -O1 (the usual choice for ASan: cheaper to compile than -O2/-O3, still fast to run),
# -g1 (line tables only: file:line in reports without the size of full debug info),
# LPU_SANITIZE adds -fsanitize=address,undefined -fno-omit-frame-pointer (whole stacks in reports)
# and -fno-sanitize-recover=undefined (CMakeLists.txt); LPU_FUZZ adds the fuzz targets (fuzz/CMakeLists.txt).
configure_sanitized_build() {
  local root="$1" build="$2"
  LPU_CXX="$(command -v clang++-14 || true)"
  if [ -z "$LPU_CXX" ]; then
    echo "clang++-14 is missing: run scripts/install-deps.sh (it installs clang-14 and libclang-rt-14-dev)" >&2
    exit 2
  fi
  mkdir -p "$build"
  cmake -S "$root" -B "$build" -DCMAKE_CXX_COMPILER="$LPU_CXX" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" \
    -DLPU_SANITIZE=ON -DLPU_FUZZ=ON >"$build/lpu-configure.log" 2>&1 \
    || { cat "$build/lpu-configure.log" >&2; exit 2; }
}
