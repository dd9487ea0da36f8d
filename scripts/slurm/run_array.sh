#!/usr/bin/env bash
# run_array.sh: runs a sweep as a Slurm job array of N shards, waits for it, checks every task's
# exit code and merges the shards into OUT/merged (the bytes an unsharded run writes).
# Usage: scripts/slurm/run_array.sh LPUSIM SPEC OUT N [TIMEOUT_S]   (SLURM_CONF must point at the cluster)
set -euo pipefail
LPUSIM=$(realpath "${1:?usage: run_array.sh LPUSIM SPEC OUT N [TIMEOUT_S]}")
SPEC=$(realpath "${2:?spec}")
OUT=${3:?output directory}
N=${4:?number of shards}
TIMEOUT=${5:-300}
mkdir -p "$OUT"
OUT=$(realpath "$OUT")
HERE=$(cd "$(dirname "$0")" && pwd)
export LPUSIM SPEC OUT
job=$(sbatch --parsable --array=0-$((N - 1)) --output="$OUT/slurm-%A_%a.out" --chdir="$OUT" --export=ALL \
      "$HERE/sweep_array.sh")
job=${job%%;*}
echo "run_array.sh: submitted job array $job ($N shards)"
end=$((SECONDS + TIMEOUT))
while [ -n "$(squeue -h -j "$job" 2>/dev/null)" ]; do
  if [ $SECONDS -ge $end ]; then
    echo "run_array.sh: job $job not finished after $TIMEOUT s; cancelling" >&2
    scancel "$job" || true
    exit 1
  fi
  sleep 0.2
done
# Every task must have completed with exit code 0 (scontrol keeps finished jobs for MinJobAge).
info=$(scontrol -o show job "$job" 2>/dev/null || true)
ok=$(grep -c 'JobState=COMPLETED .*ExitCode=0:0' <<<"$info" || true)
if [ "$ok" -ne "$N" ]; then
  echo "run_array.sh: only $ok of $N tasks completed with exit code 0:" >&2
  grep -o 'JobId=[0-9]* ArrayJobId=[0-9]* ArrayTaskId=[0-9]*\|JobState=[A-Z_]*\|ExitCode=[0-9:]*' <<<"$info" >&2 || true
  cat "$OUT"/slurm-*.out >&2 || true
  exit 1
fi
dirs=()
for ((i = 0; i < N; i++)); do dirs+=("$OUT/shard-$i"); done
"$LPUSIM" sweep merge "${dirs[@]}" -o "$OUT/merged"
