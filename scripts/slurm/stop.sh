#!/usr/bin/env bash
# stop.sh: stops the single-node Slurm that scripts/slurm/start.sh STATE_DIR started (slurmd,
# slurmctld and its munged), by their recorded PIDs; waits until they are gone.
# Usage: scripts/slurm/stop.sh STATE_DIR
set -uo pipefail
STATE=${1:?usage: stop.sh STATE_DIR}
pids=()
for f in slurmd.pid slurmctld.pid munge/munged.pid; do
  if [ -s "$STATE/$f" ]; then pids+=("$(cat "$STATE/$f")"); rm -f "$STATE/$f"; fi
done
# TERM all at once (each takes about 2 s to shut down), KILL whatever is left after 10 s.
for p in "${pids[@]}"; do [ -n "$p" ] && kill -TERM "$p" 2>/dev/null; done
for _ in $(seq 100); do
  alive=0
  for p in "${pids[@]}"; do [ -n "$p" ] && kill -0 "$p" 2>/dev/null && alive=1; done
  [ $alive -eq 0 ] && exit 0
  sleep 0.1
done
for p in "${pids[@]}"; do [ -n "$p" ] && kill -KILL "$p" 2>/dev/null; done
exit 0
