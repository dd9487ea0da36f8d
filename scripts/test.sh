#!/usr/bin/env bash
# README command 2: set up, build, and run the whole test suite (ctest, one process per test case).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
cd build
ctest --output-on-failure -j"$(nproc)" --timeout 600
