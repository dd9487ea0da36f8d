#!/usr/bin/env bash
# Regenerates every picture in docs/images/ from the committed sweep specs in workloads/sweeps/:
# runs each sweep (into a temporary directory) and plots it with scripts/plot_sweep.py. The
# commands are the ones printed under each image in docs/sweeps.md and docs/tutorial.md (there with
# out/<sweep> for the temporary directory). Output is deterministic: rerunning it without a change
# of the simulator, compiler or specs leaves docs/images/ byte-identical.
#   scripts/make_doc_images.sh [LPUSIM [OUTDIR]]
# LPUSIM defaults to build/tools/lpusim, OUTDIR to docs/images ($PYTHON3: default /usr/bin/python3).
# A normal run also rewrites docs/data/ (the committed results of the slow sweeps, see slow() below).
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
plot tiny_llm_vs_clock --y tokens_per_joule --x clock_hz
plot llm_chips_vs_sram --y chips --x sram_per_chip_bytes
# Sweeps too slow for the test (tens of seconds of CPU: real LLMs, every point compiles and simulates
# its pieces). Their results are committed in docs/data/SWEEP/ (sweep.json, results.jsonl,
# results.csv): a normal run of this script reruns the sweep and rewrites them. With
# LPU_DOC_IMAGES_REUSE=1 (what the test does) the sweep is resumed from the committed results
# instead: nothing runs when they are complete, and `lpusim sweep --resume` refuses them (this script
# fails) when the spec or the lpusim version no longer matches their sweep.json. The figures inside
# them are only as current as the last full run of this script.
slow() {  # slow SWEEP PLOT_ARGS...
  local s=$1
  shift
  local data="$root/docs/data/$s"
  if [ "${LPU_DOC_IMAGES_REUSE:-0}" = 1 ]; then
    mkdir -p "$out/$s"
    cp "$data/sweep.json" "$data/results.jsonl" "$data/results.csv" "$out/$s/"
    "$lpusim" sweep "workloads/sweeps/$s.yaml" -o "$out/$s" --jobs 2 --resume >/dev/null
  else
    "$lpusim" sweep "workloads/sweeps/$s.yaml" -o "$out/$s" --jobs 2 >/dev/null
    mkdir -p "$data"
    cp "$out/$s/sweep.json" "$out/$s/results.jsonl" "$out/$s/results.csv" "$data/"
  fi
  "$py" scripts/plot_sweep.py "$out/$s" -o "$images" "$@" | sed "s|^|$s: |"
}
slow llm_tokens_per_joule_vs_clock --y tokens_per_joule --y tokens_per_second
