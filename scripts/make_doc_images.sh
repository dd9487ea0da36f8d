#!/usr/bin/env bash
# Regenerates every picture in docs/images/ from the committed sweep specs in workloads/sweeps/:
# runs each sweep (into a temporary directory) and plots it with scripts/plot_sweep.py. The
# commands are the ones printed under each image in docs/sweeps.md and docs/tutorial.md (there with
# out/<sweep> for the temporary directory). Output is deterministic: rerunning it without a change
# of the simulator, compiler or specs leaves docs/images/ byte-identical.
#   scripts/make_doc_images.sh [LPUSIM [OUTDIR]]
# LPUSIM defaults to build/tools/lpusim, OUTDIR to docs/images ($PYTHON3: default /usr/bin/python3).
# The test "docs: the pictures in docs/images are what scripts/make_doc_images.sh makes now"
# (tests/tutorial/test_doc_images.cpp) runs it into a temporary OUTDIR and compares the bytes.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
lpusim=$(realpath "${1:-$root/build/tools/lpusim}")
images=$(realpath -m "${2:-$root/docs/images}")
py=${PYTHON3:-/usr/bin/python3}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cd "$root"
mkdir -p "$images"
plot() {  # plot SWEEP PLOT_ARGS...: run workloads/sweeps/SWEEP.yaml, plot it into docs/images
  local s=$1
  shift
  "$lpusim" sweep "workloads/sweeps/$s.yaml" -o "$out/$s" --jobs 2 >/dev/null
  "$py" scripts/plot_sweep.py "$out/$s" -o "$images" "$@" | sed "s|^|$s: |"
}
plot energy_vs_clock --y items_per_joule
plot cycles_vs_mxm_latency --y cycles
plot mlp_sram_clock --y latency_us
