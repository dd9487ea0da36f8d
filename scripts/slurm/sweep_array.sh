#!/usr/bin/env bash
# sweep_array.sh: one task of a Slurm job array running a sweep as shards (docs/sweeps.md).
# Task i of N runs `lpusim sweep SPEC -o OUT/shard-i --shard i/N --resume` (a requeued task resumes).
# Environment: LPUSIM (lpusim executable), SPEC (sweep spec), OUT (output root); N is the array size.
#SBATCH --job-name=lpusim-sweep
#SBATCH --ntasks=1
#SBATCH --cpus-per-task=1
set -euo pipefail
: "${LPUSIM:?set LPUSIM to the lpusim executable}" "${SPEC:?set SPEC to the sweep spec}" "${OUT:?set OUT}"
i=${SLURM_ARRAY_TASK_ID:?not running as a Slurm array task}
n=${SLURM_ARRAY_TASK_COUNT:?not running as a Slurm array task}
exec "$LPUSIM" sweep "$SPEC" -o "$OUT/shard-$i" --shard "$i/$n" --resume
