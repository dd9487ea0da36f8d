#!/usr/bin/env bash
# Digests of the programs a fixed set of compiles writes, for a refactor that must not change any
# schedule: run it before and after, then diff the two digest files (no line may differ).
# Usage: scripts/program_digests.sh OUTDIR [RESNET50.onnx [CALIBRATION_DIR]]
#   OUTDIR (new, or an earlier run's) gets the programs, the bench outputs and OUTDIR/digests.txt
#   (md5 of each, compile times removed). With a ResNet-50 (scripts/make_models.py --resnet50 FILE) its fp16 program and, given
#   a calibration dataset directory, its int8 program are included. Needs ./build (scripts/build.sh).
# Covers: GEMMs of decode, prefill and odd shapes at fp16 and int8; the committed ONNX models;
# BERT-base's int8 prefill pieces (bench_prefill, every step's end); Llama-2 7B fp16 and 70B int8
# attention and FFN decode pieces at contexts 127 and 2047; a Mixtral int8 expert FFN piece.
# Runs in ~40 s (ResNet-50 included) on this project's 2-core machines.
set -euo pipefail
OUT=${1:?usage: scripts/program_digests.sh OUTDIR [RESNET50.onnx [CALIBRATION_DIR]]}
R50=${2:-}
CAL=${3:-}
cd "$(dirname "$0")/.."
L=./build/tools/lpusim
B=./build/bench
[ -x "$L" ] || { echo "program_digests.sh: no $L (run scripts/build.sh first)" >&2; exit 2; }
# OUTDIR is new, or a previous run's (it holds digests.txt): nothing else in it is overwritten.
if [ -e "$OUT" ] && [ -n "$(ls -A "$OUT")" ] && [ ! -f "$OUT/digests.txt" ]; then
  echo "program_digests.sh: '$OUT' is not empty and holds no digests.txt of an earlier run; give a new directory" >&2
  exit 2
fi
mkdir -p "$OUT"
rm -f "$OUT"/*.lpu "$OUT"/*.txt
for g in 1x4096x4096 128x768x3072 320x320x320 7x1000x333 2048x2048x2048; do
  "$L" compile "gemm:$g" -o "$OUT/gemm_$g.lpu" >/dev/null
  "$L" compile "gemm:$g" --precision int8 -o "$OUT/gemm_${g}_int8.lpu" >/dev/null
done
for f in workloads/models/*/model.onnx; do
  "$L" compile "$f" -o "$OUT/model_$(basename "$(dirname "$f")").lpu" >/dev/null
done
if [ -n "$R50" ]; then
  "$L" compile "$R50" -o "$OUT/resnet50_fp16.lpu" >/dev/null
  if [ -n "$CAL" ]; then
    "$L" compile "$R50" --precision int8 --calibrate "$CAL" -o "$OUT/resnet50_int8.lpu" >/dev/null
  fi
fi
"$B/bench_prefill" --no-sim --steps > "$OUT/bench_prefill_steps.txt"
for c in 127 2047; do
  for k in attention ffn; do
    "$B/bench_piece" --model llama-2-7b --kind $k --context $c --tp 16 --no-sim --timeline \
      > "$OUT/piece_llama-2-7b_${k}_$c.txt"
    "$B/bench_piece" --model llama-2-70b --kind $k --context $c --tp 8 --int8 --no-sim --timeline \
      > "$OUT/piece_llama-2-70b_${k}_$c.txt"
  done
done
"$B/bench_piece" --model mixtral-8x7b --kind ffn --context 2047 --tp 32 --int8 --no-sim --timeline \
  > "$OUT/piece_mixtral_ffn_2047.txt"
# Compile times vary run to run: dropped (bench_piece's "build+compile N s", bench_prefill's
# "compile s" column, third from the end of a piece's line).
sed -i -E 's/build\+compile [0-9.]+ s//' "$OUT"/piece_*.txt
awk '/^(attention|ffn|output LayerNorm) / { $(NF - 2) = "-" } 1' "$OUT/bench_prefill_steps.txt" > "$OUT/steps.tmp"
mv "$OUT/steps.tmp" "$OUT/bench_prefill_steps.txt"
# Written under another name first, so the digest list never reads itself.
(cd "$OUT" && md5sum -- *.lpu *.txt) > "$OUT/digests.tmp"
mv "$OUT/digests.tmp" "$OUT/digests.txt"
echo "program_digests.sh: $(wc -l < "$OUT/digests.txt") digests in $OUT/digests.txt"
